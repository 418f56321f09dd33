//! Throughput of the protocol primitives, printed as one table from one run: signer recovery on
//! one core and on all cores (the ceiling the operator's tx/s is compared with), decoding,
//! encoding, Merkle roots and proofs, and whole-block validation.
//!
//! Run: `cargo bench -p plasma-spec --bench spec` (`PLASMA_BENCH_QUICK=1` for a short run).
//! `docs/benchmarks.md` holds the latest figures.

// A bench is a harness: a failed setup step should stop it loudly.
#![allow(clippy::unwrap_used, missing_docs)]

use alloy_primitives::{Address, B256, U256};
use plasma_spec::{
    BlockTree, Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos, UtxoSet,
    leaf_hash, recover_signer, validate_child_block,
};
use std::{
    hint::black_box,
    time::{Duration, Instant},
};

fn budget() -> Duration {
    if std::env::var_os("PLASMA_BENCH_QUICK").is_some() {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(2)
    }
}

/// Runs `f` (which does `per_call` operations) repeatedly for the time budget after a warm-up;
/// returns operations per second.
fn rate(per_call: u64, mut f: impl FnMut()) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < budget() / 4 {
        f();
    }
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < budget() {
        f();
        ops += per_call;
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

fn key(n: u64) -> Signer {
    let mut bytes = [0u8; 32];
    bytes[24..].copy_from_slice(&(n + 1).to_be_bytes());
    bytes[0] = 0x42;
    Signer::from_bytes(&B256::from(bytes)).unwrap()
}

/// The block number of the `k`th deposit (1-based), skipping the child-block multiples of 1000.
fn deposit_blknum(k: u64) -> u64 {
    (k - 1) / 999 * 1000 + (k - 1) % 999 + 1
}

fn pos(blknum: u64, tx_index: u16, oindex: u8) -> UtxoPos {
    UtxoPos::new(blknum, tx_index, oindex).unwrap()
}

/// A typical 2-in 2-out ETH payment, signed.
fn payment(domain: &SigningDomain, signer: &Signer, a: UtxoPos, b: UtxoPos) -> SignedTransaction {
    let tx = Transaction::payment(
        &[a, b],
        vec![
            Output::new(Address::repeat_byte(7), Address::ZERO, U256::from(60)),
            Output::new(signer.address(), Address::ZERO, U256::from(39)),
        ],
        B256::ZERO,
    );
    let sig = signer.sign_tx(domain, &tx);
    SignedTransaction::new(tx, vec![sig.clone(), sig])
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let domain = SigningDomain::new(31337, Address::repeat_byte(0x5f));
    let signer = key(0);
    let signed = payment(&domain, &signer, pos(1, 0, 0), pos(2, 0, 0));
    let digest = domain.tx_digest(&signed.transaction);
    let sig = signed.signatures[0].clone();
    let tx_bytes = signed.transaction.encode();
    let mut rows: Vec<(String, String)> = Vec::new();

    // Recovery: 1 thread, then all cores, each thread recovering its own batch.
    let one = rate(1, || {
        black_box(recover_signer(black_box(digest), &sig, 0).unwrap());
    });
    rows.push(("signer recovery, 1 thread".into(), format!("{one:.0} /s")));
    let batch = 256u64;
    let all = rate(batch * cores as u64, || {
        std::thread::scope(|s| {
            for _ in 0..cores {
                s.spawn(|| {
                    for _ in 0..batch {
                        black_box(recover_signer(black_box(digest), &sig, 0).unwrap());
                    }
                });
            }
        });
    });
    rows.push((format!("signer recovery, {cores} threads"), format!("{all:.0} /s")));

    let decode = rate(1, || {
        black_box(Transaction::decode(black_box(&tx_bytes)).unwrap());
    });
    rows.push(("strict decode, 2-in 2-out payment".into(), format!("{decode:.0} /s")));
    let encode = rate(1, || {
        black_box(black_box(&signed.transaction).encode());
    });
    rows.push(("encode, 2-in 2-out payment".into(), format!("{encode:.0} /s")));
    let digests = rate(1, || {
        black_box(domain.tx_digest(black_box(&signed.transaction)));
    });
    rows.push(("EIP-712 digest".into(), format!("{digests:.0} /s")));

    // Merkle: a full block of 65,536 leaves, a typical block of 4,096.
    for n in [65_536usize, 4_096] {
        let leaves: Vec<B256> = (0..n as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let per_sec = rate(1, || {
            black_box(BlockTree::from_leaves(black_box(&leaves)).unwrap());
        });
        rows.push((format!("Merkle root of {n} leaves"), format!("{:.2} ms", 1e3 / per_sec)));
    }
    let leaves: Vec<B256> = (0..65_536u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let tree = BlockTree::from_leaves(&leaves).unwrap();
    let mut i = 0usize;
    let proofs = rate(1, || {
        i = (i + 7919) % leaves.len();
        black_box(tree.proof(i).unwrap());
    });
    rows.push(("proof generation (65,536-leaf tree)".into(), format!("{proofs:.0} /s")));
    let proof = tree.proof(12_345).unwrap();
    let verify = rate(1, || {
        assert!(black_box(&proof).verify(leaves[12_345], 12_345, tree.root()));
    });
    rows.push(("proof verify".into(), format!("{verify:.0} /s")));

    // Whole-block validation (single thread): 10,000 payments, each spending two deposits.
    let n = 10_000u64;
    let mut set = UtxoSet::new();
    let owner = signer.address();
    let mut txs = Vec::with_capacity(n as usize);
    for k in 0..n {
        let (a, b) = (2 * k + 1, 2 * k + 2);
        for blk in [a, b] {
            let dep = Transaction::deposit(owner, Address::ZERO, U256::from(50));
            set.apply_deposit(deposit_blknum(blk), &dep).unwrap();
        }
        let (pa, pb) = (pos(deposit_blknum(a), 0, 0), pos(deposit_blknum(b), 0, 0));
        txs.push(payment(&domain, &signer, pa, pb));
    }
    let blknum = 1_000_000;
    let per_sec = rate(n, || {
        black_box(validate_child_block(&set, blknum, black_box(&txs), &domain).unwrap());
    });
    rows.push((
        "child block validation, 10,000 payments, 1 thread".into(),
        format!("{per_sec:.0} tx/s"),
    ));

    println!("| Measure | Result |");
    println!("|---|---:|");
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
}
