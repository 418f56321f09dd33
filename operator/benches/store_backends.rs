//! Issue #21: the two store backends side by side, in one run on one machine — redb (one
//! embedded file) and PostgreSQL (a local server started for the run by `plasma-test-postgres`:
//! `initdb` defaults with fsync and `synchronous_commit = on`, `shared_buffers = 64MB`, on
//! loopback, the database on the same disk). The set-up is `benches/produce.rs`'s
//! (`benches/common`), parameterised by the backend.
//!
//! - **produce**: one full block (65,535 signed 1-in-2-out payments and the fee transaction),
//!   `Chain::produce_block` timed with its stages (as `benches/produce.rs`), each run on a
//!   fresh store;
//! - **ingest**: `Chain::submit` of valid payments, in batches of 100 from 2 threads (what
//!   `POST /v1/transactions/batch` does below HTTP) and one a call from 16 threads (one durable
//!   write each: the commit latency shows), in transactions per second;
//! - **restart**: N unspent outputs (default 1,000,000) written, then a fresh `Store` opened
//!   and `Chain::open` timed (what a restarted — or a newly elected — operator does).
//!
//! Run: `cargo bench -p plasma-operator --bench store_backends`. Shorter:
//! `PLASMA_BENCH_TXS=8192` (payments per block, default 65,535), `PLASMA_BENCH_RUNS=1`
//! (produce runs per backend, default 3), `PLASMA_RESTART_UTXOS=100000`.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

mod common;

use alloy::primitives::Address;
use common::{Backend, Fresh, Produced, env_usize, median_best, ms};
use plasma_spec::{Signer, SigningDomain};
use std::time::{Duration, Instant};

/// The daemon's allocator (`main.rs`): what is measured is what the daemon runs on.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Transactions per second of `Chain::submit` of `txs` in calls of `per_call` from `threads`,
/// on a fresh store of `backend` holding the outputs they spend.
fn ingest(
    backend: Backend,
    owners: &[Signer],
    domain: &SigningDomain,
    txs: &[Vec<u8>],
    per_call: usize,
    threads: usize,
) -> f64 {
    let fresh = Fresh::new(backend);
    let chain = common::genesis_chain(&fresh, owners, domain, txs.len());
    let calls: Vec<&[Vec<u8>]> = txs.chunks(per_call).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(call) = calls.get(i) else { break };
                    if let Some(e) = chain.submit(call).into_iter().find_map(Result::err) {
                        panic!("submit: {e}");
                    }
                }
            });
        }
    });
    let took = t.elapsed();
    assert_eq!(chain.mempool_len(), txs.len());
    txs.len() as f64 / took.as_secs_f64()
}

/// One table row: the name and the two backends' figures, with PostgreSQL / redb.
fn row(name: &str, redb: f64, pg: f64, unit: &str, decimals: usize) {
    // A stage that rounds to nothing on redb has no meaningful ratio.
    let ratio = if redb >= 0.05 { format!("{:.2}", pg / redb) } else { "–".to_owned() };
    println!("| {name} | {redb:.decimals$}{unit} | {pg:.decimals$}{unit} | {ratio} |");
}

fn main() {
    let n = env_usize("PLASMA_BENCH_TXS")
        .unwrap_or(plasma_spec::MAX_TXS_PER_BLOCK - 1)
        .clamp(1, plasma_spec::MAX_TXS_PER_BLOCK - 1);
    let runs = env_usize("PLASMA_BENCH_RUNS").unwrap_or(3).max(1);
    let utxos = env_usize("PLASMA_RESTART_UTXOS").unwrap_or(1_000_000) as u64;
    let domain = SigningDomain::new(31337, Address::repeat_byte(0xaa));
    let owners = common::owners();
    let txs = common::payments(&owners, &domain, n);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    println!(
        "store backends: {threads} cores; produce {n} payments, {runs} runs each (median); restart {utxos} UTXOs"
    );
    println!();
    println!("| produce_block, {n} payments (median ms) | redb | PostgreSQL | PG / redb |");
    println!("|---|---:|---:|---:|");
    // The runs alternate between the backends, so a noisy neighbour on the shared machine
    // hits both alike.
    let mut produced: [Vec<Produced>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (i, backend) in Backend::BOTH.into_iter().enumerate() {
            produced[i].push(common::produce(backend, &owners, &domain, &txs));
        }
    }
    for (name, f) in common::STAGES {
        let [redb, pg] = [0, 1].map(|i| ms(median_best(produced[i].iter().map(f).collect()).0));
        row(name, redb, pg, "", 1);
    }

    println!();
    println!("| ingest, `Chain::submit` (tx/s) | redb | PostgreSQL | PG / redb |");
    println!("|---|---:|---:|---:|");
    let batched = n.min(20_000);
    let [redb, pg] = Backend::BOTH.map(|b| ingest(b, &owners, &domain, &txs[..batched], 100, 2));
    row(&format!("batches of 100, 2 threads ({batched} txs)"), redb, pg, "", 0);
    let single = n.min(2_000);
    let [redb, pg] = Backend::BOTH.map(|b| ingest(b, &owners, &domain, &txs[..single], 1, 16));
    row(&format!("one a call, 16 threads ({single} txs)"), redb, pg, "", 0);

    println!();
    println!("| restart with {utxos} UTXOs | redb | PostgreSQL | PG / redb |");
    println!("|---|---:|---:|---:|");
    let [redb, pg] = Backend::BOTH.map(|b| common::restart(b, utxos));
    let secs = |d: Duration| d.as_secs_f64();
    row("writing them (100k per commit)", secs(redb.write), secs(pg.write), " s", 1);
    row("restart: open + `Chain::open`", secs(redb.open), secs(pg.open), " s", 2);
    row("database size", redb.size_mb, pg.size_mb, " MB", 0);
}
