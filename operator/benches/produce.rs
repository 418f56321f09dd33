//! Issue #19 (G2): a full block built, rooted and persisted. A mempool of 65,535 valid signed
//! 1-in-2-out payments over 200 owners, accepted through `Chain::submit` on a real store, then
//! one `Chain::produce_block` timed (ledger checks, leaves, the tree, the wire form and the
//! indexes, the store's write with its fsync, the in-memory update), with its stages. The goal
//! is < 250 ms for the whole call.
//!
//! Each run opens a fresh store with the same genesis outputs and submits the same signed
//! transactions again, so the runs measure the same block; the table gives the median and the
//! best run of each stage.
//!
//! Run: `cargo bench -p plasma-operator --bench produce`. Short: `PLASMA_PRODUCE_TXS=8192`
//! (payments per block, default 65,535) and `PLASMA_PRODUCE_RUNS=1` (default 5). On
//! PostgreSQL (a throwaway local server a run, `plasma-test-postgres`):
//! `PLASMA_PRODUCE_STORE=postgres`; `benches/store_backends.rs` runs both side by side.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

mod common;

use alloy::primitives::Address;
use common::{Backend, Produced, env_usize, median_best, ms};
use plasma_spec::SigningDomain;
use std::time::Instant;

/// The daemon's allocator (`main.rs`): what is measured is what the daemon runs on.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let n = env_usize("PLASMA_PRODUCE_TXS")
        .unwrap_or(plasma_spec::MAX_TXS_PER_BLOCK - 1)
        .clamp(1, plasma_spec::MAX_TXS_PER_BLOCK - 1);
    let runs = env_usize("PLASMA_PRODUCE_RUNS").unwrap_or(5).max(1);
    let backend = Backend::from_env("PLASMA_PRODUCE_STORE");
    let domain = SigningDomain::new(31337, Address::repeat_byte(0xaa));
    let owners = common::owners();
    let t = Instant::now();
    let txs = common::payments(&owners, &domain, n);
    let signing = t.elapsed();

    let results: Vec<Produced> =
        (0..runs).map(|_| common::produce(backend, &owners, &domain, &txs)).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "Chain::produce_block on {}: {n} payments (1 in, 2 out) and the fee transaction, {threads} cores, {runs} runs ({:.1} s to sign); wire form {:.2} MB",
        backend.name(),
        signing.as_secs_f64(),
        results[0].wire_len as f64 / 1e6
    );
    println!("| stage | median ms | best ms |");
    println!("|---|---:|---:|");
    for (name, f) in common::STAGES {
        let (median, best) = median_best(results.iter().map(f).collect());
        println!("| {name} | {:.1} | {:.1} |", ms(median), ms(best));
    }
}
