//! OP-9: the operator's memory stays flat however many full blocks it makes (one test alone in
//! this binary: the resident set is the process's, another test would blur it).
//!
//! Drives the real `Chain` on a real store: each block is `n - 1` signed 1-in-1-out payments
//! (each spending output 0 of the same transaction of the block before, paying a fee of 1, so
//! the UTXO set keeps its size) and the fee transaction, submitted in batches of 4,096 through
//! `Chain::submit`, produced with `Chain::produce_block`, marked committed, then served as the
//! API serves it (every wire row read once, proofs of 1,000 transactions). The resident set is
//! read from `/proc/self/statm` after each block.
//!
//! Default (CI): 5 blocks of 8,192 transactions (`PLASMA_MEMORY_BLOCKS=N` for more). Full size:
//! `PLASMA_FULL_SIZE=1 cargo test --release -p plasma-operator --test memory -- --nocapture`
//! (10 blocks of 65,536; signing and recovery dominate).

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

use alloy::primitives::{Address, B256, U256};
use plasma_operator::{Batch, Chain, Lookup, Store};
use plasma_spec::{Output, Signer, Transaction, UtxoPos, test_utils::*};

/// The daemon's allocator (`main.rs`, OP-9): what is measured is what the daemon runs on.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

type Job = Box<dyn FnOnce() + Send>;

/// Long-lived threads the work is spread over.
const WORKERS: usize = 4;

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: f64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0 / 1e6
}

/// The payments of block `blknum`: payment `i` spends output 0 of transaction `i` of block
/// `prev` (holding `amount`) and pays `amount - 1` to the next key, signed on two threads.
fn payments(keys: &[Signer], b: usize, count: usize, amount: u64) -> Vec<Vec<u8>> {
    let prev = 1000 * b as u64;
    let d = domain();
    let threads = 2usize;
    let parts: Vec<Vec<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let d = d.clone();
                s.spawn(move || {
                    (0..count)
                        .filter(|i| i % threads == t)
                        .map(|i| {
                            let k = &keys[(i + b - 1) % keys.len()];
                            let to = keys[(i + b) % keys.len()].address();
                            let tx = Transaction::payment(
                                &[pos(prev, i as u16, 0)],
                                vec![Output::new(to, Address::ZERO, U256::from(amount - 1))],
                                B256::ZERO,
                            );
                            sign(&d, tx, &[k]).encode()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    (0..count).map(|i| parts[i % threads][i / threads].clone()).collect()
}

#[test]
fn memory_stays_flat_across_full_blocks() {
    let full = std::env::var("PLASMA_FULL_SIZE").is_ok_and(|v| v == "1");
    let (blocks, n) = if full { (10u64, 65_536usize) } else { (5, 8_192) };
    let blocks =
        std::env::var("PLASMA_MEMORY_BLOCKS").ok().and_then(|v| v.parse().ok()).unwrap_or(blocks);
    let count = n - 1; // payments per block; the fee transaction makes n
    let keys: Vec<Signer> = (1..=64).map(key).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.redb");
    let start = 1_000_000u64;
    {
        // Genesis: `count` outputs in "block 1000", as if a first block had made them.
        let store = Store::open(&path).unwrap();
        let created: Vec<(UtxoPos, Output)> = (0..count)
            .map(|i| {
                let owner = keys[i % keys.len()].address();
                (pos(1000, i as u16, 0), Output::new(owner, Address::ZERO, U256::from(start)))
            })
            .collect();
        store
            .apply(&Batch { created, meta: vec![("next_child_block", 2000)], ..Batch::default() })
            .unwrap();
    }
    let empty = rss_mb();
    let chain =
        Chain::open(Store::open(&path).unwrap(), domain(), Address::repeat_byte(0xfe), n).unwrap();
    let loaded = rss_mb();
    println!(
        "UTXO set and owner index: about {:.0} bytes per output",
        (loaded - empty) * 1e6 / count as f64
    );
    let chain = std::sync::Arc::new(chain);
    // As in the daemon, the work runs on a pool of long-lived threads (tokio's blocking pool: the
    // batch route, the group committer, the block producer): each job on the next of them.
    let workers: Vec<std::sync::mpsc::Sender<Job>> = (0..WORKERS)
        .map(|_| {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            std::thread::spawn(move || rx.into_iter().for_each(|job| job()));
            tx
        })
        .collect();
    let mut next = 0usize;
    let mut on_worker = |job: Job| {
        workers[next % WORKERS].send(job).unwrap();
        next += 1;
    };
    let (done, finished) = std::sync::mpsc::channel::<Option<String>>();
    let mut rss = Vec::new();
    println!("before block 1: rss {:.0} MB", rss_mb());
    for b in 1..=blocks {
        let blknum = 1000 * (b + 1);
        let raw = payments(&keys, b as usize, count, start - (b - 1));
        for batch in raw.chunks(4_096) {
            let (chain, batch, done) = (chain.clone(), batch.to_vec(), done.clone());
            on_worker(Box::new(move || {
                let failed = chain.submit(&batch).into_iter().find_map(Result::err);
                done.send(failed.map(|e| e.to_string())).unwrap();
            }));
            if let Some(e) = finished.recv().unwrap() {
                panic!("block {b}: {e}");
            }
        }
        drop(raw);
        let submitted = rss_mb();
        let (c, done2) = (chain.clone(), done.clone());
        on_worker(Box::new(move || {
            let record = c.produce_block(n).unwrap().unwrap();
            assert_eq!((record.blknum, record.txs.len()), (blknum, n));
            done2.send(None).unwrap();
        }));
        finished.recv().unwrap();
        let produced = rss_mb();
        chain.mark_committed(blknum, 1_700_000_000 + b, B256::repeat_byte(b as u8)).unwrap();
        // Served as the API serves it: one download (every wire row once), 1,000 proofs.
        let info = chain.block_info(blknum).unwrap().unwrap();
        let mut offset = 0;
        while offset < info.wire_len {
            offset += chain.wire_chunk(blknum, offset).unwrap().len() as u64;
        }
        for i in (0..n as u32).step_by(n / 1_000) {
            assert!(matches!(chain.inclusion(blknum, i).unwrap(), Lookup::Found(_)));
        }
        let disk = std::fs::metadata(&path).unwrap().len();
        rss.push(rss_mb());
        println!(
            "block {b} ({n} txs): rss after submit {submitted:.0} MB, after produce {produced:.0} MB, after commit and serving {:.0} MB; store file {:.1} MB",
            rss_mb(),
            disk as f64 / 1e6,
        );
    }
    assert_eq!(chain.status().utxo_count, count + blocks as usize, "one fee output per block");
    let growth = rss[rss.len() - 1] - rss[1];
    let margin = if full { 120.0 } else { 80.0 };
    assert!(
        growth <= margin,
        "RSS grew {growth:.0} MB from block 2 to block {blocks} (margin {margin} MB): {rss:?}"
    );
}
