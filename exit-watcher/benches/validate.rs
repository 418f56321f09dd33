//! Where a watcher's time goes from "every byte of a full block received" to "block valid and
//! persisted" (#15): the same steps the watcher runs, timed one by one, on a generated block of
//! 65,536 signed payments against a store on disk (fsync on commit, as the watcher opens it).
//!
//! Steps, as the watcher runs them: `download::finish_block` (frames out of the decoder, each
//! transaction decoded, the leaves hashed, the root compared with L1's), then
//! `ChainView::apply_child_block` (`validate_parallel`: signatures recovered on all cores, the
//! ledger in order; spends and leaves recorded), then the block's one atomic write
//! (`ChainView::write_journal` in a redb transaction, committed durably). Below them, the cost of
//! each primitive over the whole block on one thread, to say where the CPU goes.
//!
//! Run: `cargo bench -p plasma-watcher --bench validate`
//! (`PLASMA_BENCH_TXS=16384` for a smaller block, `PLASMA_BENCH_OUTPUTS=2` for 1-in-2-out
//! payments, `PLASMA_BENCH_BLOCKS=3` for more blocks in a row).

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

use alloy::primitives::{Address, B256, Bytes, U256};
use plasma_spec::{
    BlockDiff, BlockTree, Output, SignedTransaction, Signer, Transaction, UtxoPos,
    test_utils::{domain, key, sign},
    wire::{BlockDecoder, Encoding, encode_block},
};
use plasma_watcher::{ChainView, History, download::finish_block};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Block `blknum`: `n` payments, payment `i` spending output 0 of transaction `i` of block
/// `prev` into `outputs` outputs, signed on all cores.
fn block(keys: &[Signer], prev: u64, n: usize, blknum: u64, outputs: usize) -> Vec<Bytes> {
    let d = domain();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let parts: Vec<Vec<Bytes>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let d = d.clone();
                s.spawn(move || {
                    (0..n)
                        .filter(|i| i % threads == t)
                        .map(|i| {
                            let k = &keys[i % keys.len()];
                            let outs = (0..outputs)
                                .map(|o| {
                                    let to = &keys[(i + o) % keys.len()];
                                    Output::new(to.address(), Address::ZERO, U256::from(1_000))
                                })
                                .collect();
                            let tx = Transaction::payment(
                                &[UtxoPos::new(prev, i as u16, 0).unwrap()],
                                outs,
                                B256::from(U256::from(blknum)),
                            );
                            Bytes::from(sign(&d, tx, &[k]).encode())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    (0..n).map(|i| parts[i % threads][i / threads].clone()).collect()
}

/// CPU seconds (user + system) of this process so far, every thread.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<f64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    // Fields 14 and 15 (utime, stime), counted from after the command name (field 3 first).
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn main() {
    let n = env("PLASMA_BENCH_TXS", 65_536);
    let outputs = env("PLASMA_BENCH_OUTPUTS", 1);
    let blocks = env("PLASMA_BENCH_BLOCKS", 2) as u64;
    let keys: Vec<Signer> = (1..=64).map(key).collect();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(History::open_database(&dir.path().join("watcher.redb")).unwrap());
    let mut view = ChainView::with_history(domain(), History::open(db.clone()).unwrap());
    view.utxos.apply(&BlockDiff {
        created: (0..n)
            .map(|i| {
                let owner = keys[i % keys.len()].address();
                (
                    UtxoPos::new(1000, i as u16, 0).unwrap(),
                    Output::new(owner, Address::ZERO, U256::from(10_000)),
                )
            })
            .collect(),
        ..BlockDiff::default()
    });
    println!(
        "{n} payments per block, 1 in {outputs} out, {} threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!(
        "| block | finish_block (decode + root) | apply | persist: write + commit (fsync) | \
         total | CPU |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut last = Vec::new();
    for b in 1..=blocks {
        let blknum = 1000 * (b + 1);
        let txs = block(&keys, blknum - 1000, n, blknum, outputs);
        let leaves: Vec<Vec<u8>> = txs
            .iter()
            .map(|t| SignedTransaction::decode(t).unwrap().transaction.encode())
            .collect();
        let root = BlockTree::from_txs(&leaves).unwrap().root();
        let wire = encode_block(blknum, root, &txs, Encoding::Zlib).unwrap();
        drop(leaves);
        // The download: every byte pushed into the decoder as it arrives (inflating on the way).
        let mut dec = BlockDecoder::new();
        for chunk in wire.chunks(64 << 10) {
            dec.push(chunk).unwrap();
        }
        let start = Instant::now();
        let cpu0 = cpu_s();
        let (got, t_finish) = timed(|| finish_block(dec, blknum, root).unwrap());
        let (result, t_apply) = timed(|| view.apply_decoded_block(blknum, got, b));
        result.unwrap();
        let (t_write, t_commit) = {
            let tx = db.begin_write().unwrap();
            let ((), t_write) = timed(|| view.write_journal(&tx).unwrap());
            let ((), t_commit) = timed(|| tx.commit().unwrap());
            view.journal_persisted();
            (t_write, t_commit)
        };
        let total = start.elapsed();
        let cpu = cpu_s() - cpu0;
        println!(
            "| {b} | {} | {} | {} + {} | {} | {:.2} s |",
            ms(t_finish),
            ms(t_apply),
            ms(t_write),
            ms(t_commit),
            ms(total),
            cpu
        );
        last = txs;
    }

    // apply_child_block, split: the same block decoded, validated (all cores), then applied.
    let blknum = 1000 * (blocks + 2);
    let next = block(&keys, blknum - 1000, n, blknum, outputs);
    let (decoded, t_dec) =
        timed(|| next.iter().map(|t| SignedTransaction::decode(t).unwrap()).collect::<Vec<_>>());
    let (_, t_val) = timed(|| {
        plasma_watcher::validate_parallel(&view.utxos, blknum, &decoded, &domain()).unwrap()
    });
    let (_, t_apply) = timed(|| view.apply_child_block(blknum, &next, blocks + 1).unwrap());
    println!();
    println!(
        "apply_child_block split: decode {} + validate_parallel {} (apply_child_block alone: {})",
        ms(t_dec),
        ms(t_val),
        ms(t_apply)
    );
    drop(decoded);

    // Where the CPU goes: each primitive over the last block's transactions, one thread.
    let d = domain();
    println!();
    println!("| primitive, whole block, one thread | time |");
    println!("|---|---:|");
    let (decoded, t) =
        timed(|| last.iter().map(|t| SignedTransaction::decode(t).unwrap()).collect::<Vec<_>>());
    println!("| SignedTransaction::decode (strict: decode + re-encode) | {} |", ms(t));
    let (encoded, t) = timed(|| decoded.iter().map(|s| s.transaction.encode()).collect::<Vec<_>>());
    println!("| Transaction::encode | {} |", ms(t));
    let (leaf_hashes, t) =
        timed(|| encoded.iter().map(|e| plasma_spec::leaf_hash(e)).collect::<Vec<_>>());
    println!("| leaf_hash | {} |", ms(t));
    let (_, t) = timed(|| BlockTree::from_leaves(&leaf_hashes).unwrap());
    println!("| BlockTree::from_leaves | {} |", ms(t));
    let (_, t) = timed(|| decoded.iter().map(|s| s.transaction.hash()).collect::<Vec<_>>());
    println!("| Transaction::hash (encode + keccak) | {} |", ms(t));
    let (_, t) = timed(|| decoded.iter().map(|s| d.tx_digest(&s.transaction)).collect::<Vec<_>>());
    println!("| EIP-712 digest | {} |", ms(t));
    let (_, t) =
        timed(|| decoded.iter().map(|s| s.recover_signers(&d).unwrap()).collect::<Vec<_>>());
    println!("| recover_signers (digest + secp256k1) | {} |", ms(t));
    let (_, t) =
        timed(|| decoded.iter().map(|s| s.transaction.check().unwrap()).collect::<Vec<_>>());
    println!("| Transaction::check | {} |", ms(t));
}
