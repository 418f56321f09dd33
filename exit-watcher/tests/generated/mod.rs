//! Generated chains for the WATCH-15 tests: blocks of 1-in-1-out payments, each spending every
//! output of the block before, and the view over a store opened as the watcher opens it.

#![allow(dead_code, clippy::unwrap_used, clippy::cast_possible_truncation)]

use alloy::primitives::{Address, B256, Bytes, U256};
use plasma_spec::{Output, Signer, Transaction, UtxoPos, test_utils::*};
use plasma_watcher::{ChainView, History};
use std::{path::Path, sync::Arc};

/// Block `blknum`: `n` payments, payment `i` spending output 0 of transaction `i` of block
/// `prev`, signed on two threads.
pub(crate) fn block(keys: &[Signer], prev: u64, n: usize, blknum: u64) -> Vec<Bytes> {
    let d = domain();
    let threads = 2usize;
    let parts: Vec<Vec<Bytes>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let d = d.clone();
                s.spawn(move || {
                    (0..n)
                        .filter(|i| i % threads == t)
                        .map(|i| {
                            let k = &keys[i % keys.len()];
                            let tx = Transaction::payment(
                                &[pos(prev, i as u16, 0)],
                                vec![Output::new(k.address(), Address::ZERO, U256::from(1_000))],
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

pub(crate) fn genesis(keys: &[Signer], n: usize) -> Vec<(UtxoPos, Output)> {
    (0..n)
        .map(|i| {
            let owner = keys[i % keys.len()].address();
            (pos(1000, i as u16, 0), Output::new(owner, Address::ZERO, U256::from(1_000)))
        })
        .collect()
}

/// Opens the view over the store at `dir` as the watcher does.
pub(crate) fn open(dir: &Path) -> (Arc<redb::Database>, ChainView) {
    let db = Arc::new(History::open_database(&dir.join("watcher.redb")).unwrap());
    let view = ChainView::with_history(domain(), History::open(db.clone()).unwrap());
    (db, view)
}

/// Persists what the view applied, as `Watcher::persist_block` does: one transaction.
pub(crate) fn persist(db: &redb::Database, view: &mut ChainView) {
    let tx = db.begin_write().unwrap();
    view.write_journal(&tx).unwrap();
    tx.commit().unwrap();
    view.journal_persisted();
}
