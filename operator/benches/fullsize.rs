//! Issue #15, the operator's storage at full size: one block of 65,536 transactions (65,535
//! signed 1-in-2-out payments over 200 owners and a fee transaction), encoded and stored as the
//! operator stores it (OP-9), then served from the index. Prints: encode time (wire form alone
//! and with the indexes), write time, disk per block against the JSON record it replaces (the
//! rows, redb's pages, the blocks the file really takes, and its apparent length, over
//! `PLASMA_FULLSIZE_BLOCKS` blocks, default 4), proof latency and proofs/s on one core from the
//! index, against the old rebuild per proof, and a full read of the stored wire rows.
//!
//! Run: `cargo bench -p plasma-operator --bench fullsize` (`PLASMA_FULLSIZE_TXS=8192` for less).

#![allow(clippy::unwrap_used, missing_docs)]

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use plasma_operator::{Batch, BlockRecord, EncodedBlock, Lookup, Store, leaves_of};
use plasma_spec::{
    BlockTree, Output, Proof, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos,
    leaf_hash, wire,
};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

fn owner(i: u64) -> Signer {
    Signer::from_bytes(&keccak256(format!("fullsize owner {i}"))).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::var("PLASMA_FULLSIZE_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(plasma_spec::MAX_TXS_PER_BLOCK)
        .clamp(2, plasma_spec::MAX_TXS_PER_BLOCK);
    let blknum = 1000;
    let domain = SigningDomain::new(31337, Address::repeat_byte(0xaa));
    let owners: Vec<Signer> = (0..200).map(owner).collect();

    // 1-in-2-out payments, signed on every core.
    let sign = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let payments = n - 1;
    let mut txs: Vec<Bytes> = std::thread::scope(|s| {
        let per = payments.div_ceil(threads);
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (owners, domain) = (&owners, &domain);
                s.spawn(move || {
                    (t * per..((t + 1) * per).min(payments))
                        .map(|i| {
                            let from = &owners[i % 200];
                            let to = owners[(i * 7 + 1) % 200].address();
                            let input = UtxoPos::new(
                                1000 * (1 + i as u64 / 65_536),
                                (i % 65_536) as u16,
                                1,
                            )
                            .unwrap();
                            let amount = U256::from(1_000_000 + i as u64);
                            let tx = Transaction::payment(
                                &[input],
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
                            Bytes::from(SignedTransaction::new(tx, vec![sig]).encode())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let fee = Transaction::fee(vec![Output::new(
        Address::repeat_byte(0xfe),
        Address::ZERO,
        U256::from(n),
    )]);
    txs.push(SignedTransaction::new(fee, Vec::new()).encode().into());
    let signing = sign.elapsed();
    let raw: usize = txs.iter().map(|t| t.len()).sum();

    // What production has in hand: the leaves (hashes of the unsigned encodings).
    let leaves = leaves_of(blknum, &txs).unwrap();
    let t = Instant::now();
    let tree_root = BlockTree::from_leaves(&leaves).unwrap().root();
    let tree_only = t.elapsed();

    let t = Instant::now();
    let wire_only = wire::encode_block(blknum, tree_root, &txs, wire::Encoding::Zlib).unwrap();
    let wire_time = t.elapsed();
    let t = Instant::now();
    let encoded = EncodedBlock::new(blknum, &txs, &leaves, None, None).unwrap();
    let encode_time = t.elapsed();
    assert_eq!(encoded.info.root, tree_root);
    assert_eq!(encoded.wire, wire_only);
    let tiles: usize = encoded.tiles.iter().map(Vec::len).sum::<usize>() + encoded.top.len();
    let groups: usize = encoded.tx_stream.len() + encoded.tx_offsets.len();
    let rows = encoded.wire.len() + tiles + groups;

    let record = BlockRecord {
        blknum,
        root: tree_root,
        txs: txs.clone(),
        l1_timestamp: Some(1),
        l1_tx: None,
    };
    let json_len = serde_json::to_vec(&record).unwrap().len();

    // Disk: what the file really takes (allocated blocks) and its apparent length, which redb
    // doubles ahead of its use (sparse), after each of `blocks` blocks.
    let blocks: usize = std::env::var("PLASMA_FULLSIZE_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
        .max(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.redb");
    let store = Store::open(&path).unwrap();
    let size = || {
        let m = std::fs::metadata(&path).unwrap();
        (m.blocks() * 512, m.len())
    };
    let empty = size();
    let t = Instant::now();
    store.apply(&Batch { blocks: vec![encoded], ..Batch::default() }).unwrap();
    let write_time = t.elapsed();
    let mut disk = vec![size()];
    for b in 1..blocks {
        let next = EncodedBlock::new(blknum + 1000 * b as u64, &txs, &leaves, None, None).unwrap();
        store.apply(&Batch { blocks: vec![next], ..Batch::default() }).unwrap();
        disk.push(size());
    }
    drop(store);
    let store = Store::open(&path).unwrap();

    // Proofs from the index, one core, random positions.
    let samples = 20_000;
    let mut latencies = Vec::with_capacity(samples);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let all = Instant::now();
    for k in 0..samples {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % n as u64) as u32;
        let t = Instant::now();
        let Lookup::Found(inc) = store.inclusion(blknum, i).unwrap() else { panic!("{i}") };
        latencies.push(t.elapsed());
        if k % 1000 == 0 {
            let proof = Proof::from_bytes(&inc.proof).unwrap();
            assert!(proof.verify(leaf_hash(&inc.tx_bytes), i as usize, tree_root));
            assert_eq!(inc.stored, txs[i as usize].to_vec());
        }
    }
    let proofs_per_s = samples as f64 / all.elapsed().as_secs_f64();
    latencies.sort_unstable();

    // Before #15: every proof decoded the whole block and rebuilt its tree.
    let t = Instant::now();
    let old_leaves: Vec<Vec<u8>> = record
        .txs
        .iter()
        .map(|t| SignedTransaction::decode(t).unwrap().transaction.encode())
        .collect();
    let old = BlockTree::from_txs(&old_leaves).unwrap().proof(n / 2).unwrap();
    let old_proof = t.elapsed();
    assert!(old.verify(leaves[n / 2], n / 2, tree_root));

    // A whole download's reads: every stored row in turn.
    let t = Instant::now();
    let mut at = 0u64;
    loop {
        let c = store.wire_chunk(blknum, at).unwrap();
        if c.is_empty() {
            break;
        }
        at += c.len() as u64;
    }
    let read_all = t.elapsed();
    assert_eq!(at, wire_only.len() as u64);

    let mb = |b: usize| b as f64 / 1e6;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| Measure ({n} transactions, {threads} cores) | Result |");
    println!("|---|---:|");
    println!(
        "| signed transactions, raw | {:.1} MB ({:.1} s to sign) |",
        mb(raw),
        signing.as_secs_f64()
    );
    println!("| before: the JSON record stored per block | {:.1} MB |", mb(json_len));
    println!("| wire form, zlib (served and stored) | {:.1} MB |", mb(wire_only.len()));
    println!("| proof tiles and the tree's top row | {:.1} MB |", mb(tiles));
    println!(
        "| transaction groups (zlib, {} per group) and their offsets | {:.1} MB |",
        plasma_operator::TX_GROUP,
        mb(groups)
    );
    println!("| rows of one block, all together | {:.1} MB |", mb(rows));
    let used: Vec<String> =
        disk.iter().map(|d| format!("{:.1}", mb((d.0 - empty.0) as usize))).collect();
    let len: Vec<String> =
        disk.iter().map(|d| format!("{:.1}", mb((d.1 - empty.1) as usize))).collect();
    let per_block = mb((disk[blocks - 1].0 - empty.0) as usize) / blocks as f64;
    println!(
        "| disk used (allocated blocks) after 1..{blocks} blocks | {} MB: {per_block:.1} MB per block ({:.2}x the rows) |",
        used.join(" / "),
        per_block / mb(rows)
    );
    println!(
        "| file length (apparent, sparse) after 1..{blocks} blocks | {} MB |",
        len.join(" / ")
    );
    println!("| tree over the leaves alone | {:.0} ms |", ms(tree_only));
    println!("| encode: wire form alone (zlib level 1) | {:.0} ms |", ms(wire_time));
    println!("| encode: wire + tiles + groups (EncodedBlock::new) | {:.0} ms |", ms(encode_time));
    println!("| write + fsync of the block | {:.0} ms |", ms(write_time));
    println!(
        "| proof from the index, p50 / p99 | {:.3} / {:.3} ms |",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99))
    );
    println!("| proofs/s, one core (with the signed tx) | {proofs_per_s:.0} |");
    println!("| before: one proof by decode + rebuild | {:.0} ms |", ms(old_proof));
    println!("| reading every wire row (one download's reads) | {:.0} ms |", ms(read_all));
}
