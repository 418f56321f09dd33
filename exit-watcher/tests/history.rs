//! WATCH-15: what the watcher keeps on disk (every spend, every block's leaf hashes) serves the
//! same challenges and proofs after a restart, without loading it into memory; a store written
//! before WATCH-15 (spends and blocks as JSON) is migrated.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

mod generated;

use alloy::primitives::{Address, U256};
use generated::{block, genesis, open, persist};
use plasma_spec::{
    BlockDiff, BlockTree, Proof, SignedTransaction, Signer, Transaction, test_utils::*,
};
use plasma_watcher::History;
use redb::TableDefinition;

#[test]
fn a_restarted_view_serves_the_same_challenges_and_proofs() {
    let (blocks, n) = (6u64, 600usize);
    let keys: Vec<Signer> = (1..=8).map(key).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut roots = Vec::new();
    let mut before = Vec::new();
    {
        let (db, mut view) = open(dir.path());
        view.utxos.apply(&BlockDiff { created: genesis(&keys, n), ..BlockDiff::default() });
        let dep = Transaction::deposit(keys[0].address(), Address::ZERO, U256::from(5)).encode();
        view.apply_deposit(1, &dep, 1);
        persist(&db, &mut view);
        for b in 1..=blocks {
            let blknum = 1000 * (b + 1);
            let txs = block(&keys, blknum - 1000, n, blknum);
            let leaves: Vec<Vec<u8>> = txs
                .iter()
                .map(|t| SignedTransaction::decode(t).unwrap().transaction.encode())
                .collect();
            roots.push((blknum, BlockTree::from_txs(&leaves).unwrap().root(), leaves));
            view.apply_child_block(blknum, &txs, 100 + b).unwrap();
            // Half the blocks persisted one by one, the rest together: reads see both.
            if b % 2 == 0 || b == blocks {
                persist(&db, &mut view);
            }
        }
        for b in 1..blocks {
            for i in [0u16, 1, 299, (n - 1) as u16] {
                let spent = pos(1000 * b, i, 0);
                let proof = view.inclusion_proof(1000 * (b + 1), i).unwrap().unwrap();
                before.push((spent, view.challenge_for(spent).unwrap().unwrap(), proof));
            }
        }
    }
    // A restart: a new view on the same store; nothing of the history is loaded.
    let (_db, view) = open(dir.path());
    for (spent, spend, proof) in &before {
        let after = view.challenge_for(*spent).unwrap().unwrap();
        assert_eq!(&after, spend, "the same challenge data for {spent}");
        assert_eq!(
            &view.inclusion_proof(spend.blknum, spend.tx_index).unwrap().unwrap(),
            proof,
            "{spent}"
        );
        let (blknum, root, leaves) = roots.iter().find(|(b, _, _)| *b == spend.blknum).unwrap();
        assert_eq!(spend.tx.as_ref(), leaves[usize::from(spend.tx_index)].as_slice());
        let p = Proof::from_bytes(&proof.0).unwrap();
        let leaf = plasma_spec::leaf_hash(&spend.tx);
        assert!(p.verify(leaf, usize::from(spend.tx_index), *root), "block {blknum}");
        assert_eq!(proof.1, 100 + blknum / 1000 - 1, "the commitment's timestamp");
        assert_eq!(
            view.tx_bytes(spend.blknum, spend.tx_index).unwrap().unwrap().as_ref(),
            spend.tx.as_ref()
        );
    }
    // The last block's outputs are unspent; the deposit is provable with its transaction.
    assert!(view.challenge_for(pos(1000 * (blocks + 1), 0, 0)).unwrap().is_none());
    assert!(view.inclusion_proof(1, 0).unwrap().is_some());
    assert_eq!(
        view.tx_bytes(1, 0).unwrap().unwrap().as_ref(),
        Transaction::deposit(keys[0].address(), Address::ZERO, U256::from(5)).encode().as_slice()
    );
}

#[test]
fn a_store_written_before_watch_15_is_migrated() {
    // The old view: every spend as JSON by spent position, every block's unsigned leaves as JSON.
    const OLD_SPENDS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("view_spends");
    const OLD_BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("view_blocks");
    let keys: Vec<Signer> = (1..=4).map(key).collect();
    let dir = tempfile::tempdir().unwrap();
    let txs = block(&keys, 1000, 5, 2000);
    let signed: Vec<SignedTransaction> =
        txs.iter().map(|t| SignedTransaction::decode(t).unwrap()).collect();
    let dep = Transaction::deposit(keys[0].address(), Address::ZERO, U256::from(5)).encode();
    {
        let db = History::open_database(&dir.path().join("watcher.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut spends = tx.open_table(OLD_SPENDS).unwrap();
            for (i, s) in signed.iter().enumerate() {
                let spend = plasma_watcher::Spend {
                    tx: s.transaction.encode().into(),
                    hash: s.transaction.hash(),
                    input_index: 0,
                    signature: s.signatures[0].clone(),
                    blknum: 2000,
                    tx_index: i as u16,
                };
                let json = serde_json::to_vec(&spend).unwrap();
                spends.insert(pos(1000, i as u16, 0).to_u128(), json.as_slice()).unwrap();
            }
            let mut blocks = tx.open_table(OLD_BLOCKS).unwrap();
            let leaves: Vec<Vec<u8>> = signed.iter().map(|s| s.transaction.encode()).collect();
            let json = serde_json::json!({ "leaves": leaves, "timestamp": 77 });
            blocks.insert(2000, serde_json::to_vec(&json).unwrap().as_slice()).unwrap();
            let json = serde_json::json!({ "leaves": [dep], "timestamp": 5 });
            blocks.insert(1001, serde_json::to_vec(&json).unwrap().as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let (db, view) = open(dir.path());
    let leaves: Vec<Vec<u8>> = signed.iter().map(|s| s.transaction.encode()).collect();
    let root = BlockTree::from_txs(&leaves).unwrap().root();
    for (i, s) in signed.iter().enumerate() {
        let spend = view.challenge_for(pos(1000, i as u16, 0)).unwrap().unwrap();
        assert_eq!(spend.hash, s.transaction.hash());
        assert_eq!(spend.signature, s.signatures[0]);
        let (proof, ts) = view.inclusion_proof(2000, i as u16).unwrap().unwrap();
        assert_eq!(ts, 77);
        let leaf = plasma_spec::leaf_hash(&leaves[i]);
        assert!(Proof::from_bytes(&proof).unwrap().verify(leaf, i, root));
    }
    assert_eq!(view.tx_bytes(1001, 0).unwrap().unwrap().as_ref(), dep.as_slice());
    // The old tables are emptied.
    use redb::{ReadableDatabase, ReadableTableMetadata};
    let tx = db.begin_read().unwrap();
    assert!(tx.open_table(OLD_SPENDS).unwrap().is_empty().unwrap());
    assert!(tx.open_table(OLD_BLOCKS).unwrap().is_empty().unwrap());
}
