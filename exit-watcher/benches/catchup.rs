//! Catch-up: how fast the watcher re-verifies full blocks (decode, signatures on all cores,
//! ledger), beside how fast the operator produces them (accept + validate + persist + build), in
//! one run on the same machine.
//!
//! Run: `cargo bench -p plasma-watcher --bench catchup` (`PLASMA_CATCHUP_TXS=5000` for less).

#![allow(clippy::unwrap_used, missing_docs)]

use alloy::primitives::{Address, B256, U256, keccak256};
use plasma_operator::{Batch, Chain, Store};
use plasma_spec::{
    BlockDiff, Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos,
};
use plasma_watcher::ChainView;
use std::time::Instant;

fn main() {
    let n: u64 =
        std::env::var("PLASMA_CATCHUP_TXS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let domain = SigningDomain::new(31337, Address::repeat_byte(0x5f));
    let owners: Vec<Signer> =
        (0..100u64).map(|i| Signer::from_bytes(&keccak256(i.to_be_bytes())).unwrap()).collect();
    // n deposits (as deposit outputs), one payment spending each.
    let deposits: Vec<(UtxoPos, Output)> = (0..n)
        .map(|i| {
            let blknum = (i / 999) * 1000 + i % 999 + 1;
            let o = &owners[(i % 100) as usize];
            (
                UtxoPos::new(blknum, 0, 0).unwrap(),
                Output::new(o.address(), Address::ZERO, U256::from(1_000)),
            )
        })
        .collect();
    let txs: Vec<SignedTransaction> = deposits
        .iter()
        .enumerate()
        .map(|(i, (pos, _))| {
            let o = &owners[i % 100];
            let tx = Transaction::payment(
                &[*pos],
                vec![Output::new(o.address(), Address::ZERO, U256::from(999))],
                B256::ZERO,
            );
            SignedTransaction::new(tx.clone(), vec![o.sign_tx(&domain, &tx)])
        })
        .collect();
    let raw: Vec<Vec<u8>> = txs.iter().map(SignedTransaction::encode).collect();

    // Operator: accept (recover, validate, persist) and produce the block.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("operator.redb")).unwrap();
    store.apply(&Batch { created: deposits.clone(), meta: vec![], ..Batch::default() }).unwrap();
    let chain = Chain::open(store, domain.clone(), Address::repeat_byte(1), 1_000_000).unwrap();
    let start = Instant::now();
    for group in raw.chunks(4_096) {
        for r in chain.submit(group) {
            r.unwrap();
        }
    }
    let block = loop {
        if let Some(b) = chain.produce_block(plasma_spec::MAX_TXS_PER_BLOCK - 1).unwrap() {
            break b;
        }
    };
    let produce = start.elapsed();

    // Watcher: re-verify the same block from its signed bytes.
    let mut view = ChainView::new(domain);
    view.utxos.apply(&BlockDiff { created: deposits, ..BlockDiff::default() });
    let start = Instant::now();
    view.apply_child_block(block.blknum, &block.txs, 0).unwrap();
    let verify = start.elapsed();

    let produce_rate = n as f64 / produce.as_secs_f64();
    let verify_rate = block.txs.len() as f64 / verify.as_secs_f64();
    println!("| Measure | Result |");
    println!("|---|---:|");
    println!("| block | {} transactions |", block.txs.len());
    println!(
        "| operator: accept + validate + persist + build | {produce_rate:.0} tx/s ({:.0} ms) |",
        produce.as_secs_f64() * 1e3
    );
    println!(
        "| watcher: decode + recover (all cores) + ledger | {verify_rate:.0} tx/s ({:.0} ms, {:.1} blocks/s) |",
        verify.as_secs_f64() * 1e3,
        1.0 / verify.as_secs_f64()
    );
    println!("| watcher / operator | {:.1}x |", verify_rate / produce_rate);
}
