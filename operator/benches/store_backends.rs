//! Issue #21: the two store backends side by side, in one run on one machine — redb (one
//! embedded file) and PostgreSQL (a local server started for the run by `plasma-test-postgres`:
//! `initdb` defaults with fsync and `synchronous_commit = on`, `shared_buffers = 64MB`, on
//! loopback, the database on the same disk).
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

use alloy::primitives::{Address, B256, U256, keccak256};
use plasma_operator::{Batch, Chain, PgOptions, ProduceStages, Store};
use plasma_spec::{Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos};
use plasma_test_postgres::TempPostgres;
use std::time::{Duration, Instant};

/// The daemon's allocator (`main.rs`): what is measured is what the daemon runs on.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const OWNERS: usize = 200;
const GENESIS: u64 = 1000;
const AMOUNT: u64 = 1_000_000;

fn owner(i: usize) -> Signer {
    Signer::from_bytes(&keccak256(format!("produce owner {i}"))).unwrap()
}

fn genesis_pos(i: usize) -> UtxoPos {
    UtxoPos::new(GENESIS, i as u16, 0).unwrap()
}

/// Where a run's store lives: a fresh redb file or a fresh PostgreSQL server.
enum Fresh {
    Redb(tempfile::TempDir),
    Postgres(TempPostgres),
}

impl Fresh {
    fn new(backend: &str) -> Self {
        match backend {
            "redb" => Self::Redb(tempfile::tempdir().unwrap()),
            _ => {
                let pg = TempPostgres::start().unwrap();
                drop(Store::open_postgres(pg.url(), &PgOptions::default()).unwrap());
                pg.psql(
                    "INSERT INTO plasma_leader VALUES (1, 1, 'bench', 'http://bench', \
                     now() + interval '1 day')",
                )
                .unwrap();
                Self::Postgres(pg)
            }
        }
    }

    fn open(&self) -> Store {
        match self {
            Self::Redb(dir) => Store::open(&dir.path().join("operator.redb")).unwrap(),
            Self::Postgres(pg) => {
                let store = Store::open_postgres(pg.url(), &PgOptions::default()).unwrap();
                store.set_fence(1);
                store
            }
        }
    }

    fn size_mb(&self) -> f64 {
        match self {
            Self::Redb(dir) => {
                std::fs::metadata(dir.path().join("operator.redb")).unwrap().len() as f64 / 1e6
            }
            Self::Postgres(pg) => {
                let bytes: f64 = pg
                    .psql("SELECT pg_database_size(current_database())")
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                bytes / 1e6
            }
        }
    }
}

/// Payment `i`: spends genesis output `i`, a third to another owner, half back (the rest is
/// the fee), signed on every core.
fn payments(owners: &[Signer], domain: &SigningDomain, count: usize) -> Vec<Vec<u8>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = count.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * per..((t + 1) * per).min(count))
                        .map(|i| {
                            let from = &owners[i % OWNERS];
                            let to = owners[(i * 7 + 1) % OWNERS].address();
                            let amount = U256::from(AMOUNT + i as u64);
                            let tx = Transaction::payment(
                                &[genesis_pos(i)],
                                vec![
                                    Output::new(to, Address::ZERO, amount / U256::from(3)),
                                    Output::new(
                                        from.address(),
                                        Address::ZERO,
                                        amount / U256::from(2),
                                    ),
                                ],
                                B256::ZERO,
                            );
                            let sig = from.sign_tx(domain, &tx);
                            SignedTransaction::new(tx, vec![sig]).encode()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// A chain on a fresh store holding the `n` genesis outputs the payments spend.
fn genesis_chain(fresh: &Fresh, owners: &[Signer], domain: &SigningDomain, n: usize) -> Chain {
    {
        let store = fresh.open();
        let created: Vec<(UtxoPos, Output)> = (0..n)
            .map(|i| {
                let owner = owners[i % OWNERS].address();
                (genesis_pos(i), Output::new(owner, Address::ZERO, U256::from(AMOUNT + i as u64)))
            })
            .collect();
        let batch =
            Batch { created, meta: vec![("next_child_block", 2 * GENESIS)], ..Batch::default() };
        store.apply(&batch).unwrap();
    }
    Chain::open(fresh.open(), domain.clone(), Address::repeat_byte(0xfe), n.max(1)).unwrap()
}

fn produce(
    backend: &str,
    owners: &[Signer],
    domain: &SigningDomain,
    txs: &[Vec<u8>],
) -> (Duration, ProduceStages) {
    let n = txs.len();
    let fresh = Fresh::new(backend);
    let chain = genesis_chain(&fresh, owners, domain, n);
    for batch in txs.chunks(4_096) {
        if let Some(e) = chain.submit(batch).into_iter().find_map(Result::err) {
            panic!("submit: {e}");
        }
    }
    assert_eq!(chain.mempool_len(), n);
    let t = Instant::now();
    let (record, stages) =
        chain.produce_block_staged(plasma_spec::MAX_TXS_PER_BLOCK).unwrap().unwrap();
    let total = t.elapsed();
    assert_eq!((record.blknum, record.txs.len()), (2 * GENESIS, n + 1));
    assert_eq!(chain.mempool_len(), 0);
    let info = chain.block_info(record.blknum).unwrap().unwrap();
    assert_eq!((info.root, info.tx_count as usize), (record.root, n + 1));
    (total, stages)
}

/// Transactions per second of `Chain::submit` of `txs` in calls of `per_call` from `threads`.
fn ingest(
    backend: &str,
    owners: &[Signer],
    domain: &SigningDomain,
    txs: &[Vec<u8>],
    per_call: usize,
    threads: usize,
) -> f64 {
    let fresh = Fresh::new(backend);
    let chain = genesis_chain(&fresh, owners, domain, txs.len());
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

/// (write seconds, restart seconds, database MB) for `n` UTXOs.
fn restart(backend: &str, n: u64) -> (f64, f64, f64) {
    let fresh = Fresh::new(backend);
    let write = Instant::now();
    {
        let store = fresh.open();
        let mut created = Vec::with_capacity(100_000);
        for i in 0..n {
            // 5 outputs per transaction, 65,536 transactions per block.
            let blknum = 1000 * (1 + i / (5 * 65_536));
            let pos = UtxoPos::new(blknum, ((i / 5) % 65_536) as u16, (i % 5) as u8).unwrap();
            let owner = Address::from_word(keccak256((i % 10_000).to_be_bytes()));
            created.push((pos, Output::new(owner, Address::ZERO, U256::from(i + 1))));
            if created.len() == 100_000 {
                store
                    .apply(&Batch { created: std::mem::take(&mut created), ..Batch::default() })
                    .unwrap();
            }
        }
        store.apply(&Batch { created, ..Batch::default() }).unwrap();
    }
    let write = write.elapsed().as_secs_f64();
    let t = Instant::now();
    let chain =
        Chain::open(fresh.open(), SigningDomain::new(31337, Address::ZERO), Address::ZERO, 1_000)
            .unwrap();
    let open = t.elapsed().as_secs_f64();
    assert_eq!(chain.status().utxo_count as u64, n);
    (write, open, fresh.size_mb())
}

fn main() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let n = env("PLASMA_BENCH_TXS")
        .unwrap_or(plasma_spec::MAX_TXS_PER_BLOCK - 1)
        .clamp(1, plasma_spec::MAX_TXS_PER_BLOCK - 1);
    let runs = env("PLASMA_BENCH_RUNS").unwrap_or(3).max(1);
    let utxos = env("PLASMA_RESTART_UTXOS").unwrap_or(1_000_000) as u64;
    let domain = SigningDomain::new(31337, Address::repeat_byte(0xaa));
    let owners: Vec<Signer> = (0..OWNERS).map(owner).collect();
    let txs = payments(&owners, &domain, n);
    let backends = ["redb", "postgres"];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    println!(
        "store backends: {threads} cores; produce {n} payments, {runs} runs each (median); restart {utxos} UTXOs"
    );
    println!();
    println!("| produce_block, full block (median ms) | redb | PostgreSQL |");
    println!("|---|---:|---:|");
    let mut produced: Vec<Vec<(Duration, ProduceStages)>> = Vec::new();
    for backend in backends {
        produced.push((0..runs).map(|_| produce(backend, &owners, &domain, &txs)).collect());
    }
    let median = |v: &[(Duration, ProduceStages)],
                  f: &dyn Fn(&(Duration, ProduceStages)) -> Duration| {
        let mut d: Vec<Duration> = v.iter().map(f).collect();
        d.sort_unstable();
        d[d.len() / 2]
    };
    type Stage<'a> = (&'a str, &'a dyn Fn(&(Duration, ProduceStages)) -> Duration);
    let stages: [Stage<'_>; 4] = [
        ("store: effects rows (beside tree + encode)", &|r| r.1.write),
        ("store: block rows + commit", &|r| r.1.commit),
        ("everything else (ledger, tree, encode, memory)", &|r| {
            r.0.saturating_sub(r.1.write + r.1.commit)
        }),
        ("**total**", &|r| r.0),
    ];
    for (name, f) in stages {
        println!(
            "| {name} | {:.0} | {:.0} |",
            ms(median(&produced[0], f)),
            ms(median(&produced[1], f))
        );
    }

    println!();
    println!("| ingest, `Chain::submit` (tx/s) | redb | PostgreSQL |");
    println!("|---|---:|---:|");
    let batched: Vec<f64> = backends
        .iter()
        .map(|b| ingest(b, &owners, &domain, &txs[..n.min(20_000)], 100, 2))
        .collect();
    println!(
        "| batches of 100, 2 threads ({} txs) | {:.0} | {:.0} |",
        n.min(20_000),
        batched[0],
        batched[1]
    );
    let single: Vec<f64> =
        backends.iter().map(|b| ingest(b, &owners, &domain, &txs[..n.min(2_000)], 1, 16)).collect();
    println!(
        "| one a call, 16 threads ({} txs) | {:.0} | {:.0} |",
        n.min(2_000),
        single[0],
        single[1]
    );

    println!();
    println!("| restart with {utxos} UTXOs | redb | PostgreSQL |");
    println!("|---|---:|---:|");
    let r: Vec<(f64, f64, f64)> = backends.iter().map(|b| restart(b, utxos)).collect();
    println!("| writing them (100k per commit) | {:.1} s | {:.1} s |", r[0].0, r[1].0);
    println!("| restart: open + `Chain::open` | {:.2} s | {:.2} s |", r[0].1, r[1].1);
    println!("| database size | {:.0} MB | {:.0} MB |", r[0].2, r[1].2);
}
