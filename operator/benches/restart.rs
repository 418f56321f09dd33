//! Restart time with a large UTXO set: writes N unspent outputs (default 1,000,000) to a fresh
//! store, then times reopening it into a serving `Chain` (load + in-memory indexes).
//!
//! Run: `cargo bench -p plasma-operator --bench restart` (`PLASMA_RESTART_UTXOS=100000` for less).

#![allow(clippy::unwrap_used, missing_docs)]

use alloy::primitives::{Address, U256};
use plasma_operator::{Batch, Chain, Store};
use plasma_spec::{Output, SigningDomain, UtxoPos};
use std::time::Instant;

fn main() {
    let n: u64 = std::env::var("PLASMA_RESTART_UTXOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.redb");
    let write = Instant::now();
    {
        let store = Store::open(&path).unwrap();
        let mut created = Vec::with_capacity(100_000);
        for i in 0..n {
            // 5 outputs per transaction, 65,536 transactions per block.
            let blknum = 1000 * (1 + i / (5 * 65_536));
            let pos = UtxoPos::new(blknum, ((i / 5) % 65_536) as u16, (i % 5) as u8).unwrap();
            let owner =
                Address::from_word(alloy::primitives::keccak256((i % 10_000).to_be_bytes()));
            created.push((pos, Output::new(owner, Address::ZERO, U256::from(i + 1))));
            if created.len() == 100_000 {
                store
                    .apply(&Batch { created: std::mem::take(&mut created), ..Batch::default() })
                    .unwrap();
            }
        }
        store.apply(&Batch { created, ..Batch::default() }).unwrap();
    }
    let write = write.elapsed();
    let open = Instant::now();
    let store = Store::open(&path).unwrap();
    let chain =
        Chain::open(store, SigningDomain::new(31337, Address::ZERO), Address::ZERO, 1_000).unwrap();
    let open = open.elapsed();
    assert_eq!(chain.status().utxo_count as u64, n);
    let size = std::fs::metadata(&path).unwrap().len();
    println!("| Measure | Result |");
    println!("|---|---:|");
    println!("| UTXOs | {n} |");
    println!("| database size | {:.0} MB |", size as f64 / 1e6);
    println!("| writing them (100k per commit) | {:.1} s |", write.as_secs_f64());
    println!("| restart: open + load into a serving chain | {:.2} s |", open.as_secs_f64());
}
