//! The chain on the PostgreSQL store (issue #21): open, deposits, submit, produce, commit,
//! reopen — the same state as before, as on redb; and a deposed leader's chain cannot produce.

#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, B256, U256};
use plasma_operator::{Chain, Lookup, PgOptions, Store, StoreError, TxStatus};
use plasma_spec::{
    Transaction,
    test_utils::{domain, key, pay_eth, pos},
};
use plasma_test_postgres::TempPostgres;

const FEE_RECIPIENT: Address = Address::repeat_byte(0xfe);

fn open(pg: &TempPostgres, epoch: u64) -> Chain {
    let store = Store::open_postgres(pg.url(), &PgOptions::pool(2)).unwrap();
    assert_eq!(store.backend(), "postgres");
    store.set_fence(epoch);
    Chain::open(store, domain(), FEE_RECIPIENT, 100).unwrap()
}

#[test]
fn a_chain_on_postgres_reopens_to_the_same_state() {
    let pg = TempPostgres::start().unwrap();
    // The lease row part B's election makes.
    Store::open_postgres(pg.url(), &PgOptions::pool(1)).unwrap();
    pg.psql("INSERT INTO plasma_leader VALUES (1, 1, 'a', 'http://a', now() + interval '1 hour')")
        .unwrap();
    let (alice, bob, carol) = (key(1), key(2), key(3));
    let chain = open(&pg, 1);
    for (i, (owner, amount)) in [(&alice, 100u64), (&bob, 50)].iter().enumerate() {
        let tx = Transaction::deposit(owner.address(), Address::ZERO, U256::from(*amount));
        assert!(chain.credit_deposit(i as u64 + 1, &tx.encode(), 1_700_000_000).unwrap());
    }
    let pay = pay_eth(
        &domain(),
        &[pos(1, 0, 0)],
        &[(carol.address(), 60), (alice.address(), 40)],
        &[&alice],
    );
    let pending = pay_eth(&domain(), &[pos(2, 0, 0)], &[(carol.address(), 50)], &[&bob]);
    let hash = chain.submit(&[pay.encode()]).pop().unwrap().unwrap();
    let block = chain.produce_block(100).unwrap().unwrap();
    assert_eq!(block.blknum, 1000);
    chain.mark_committed(1000, 1_700_000_100, B256::repeat_byte(9)).unwrap();
    let pending_hash = chain.submit(&[pending.encode()]).pop().unwrap().unwrap();
    let before = (
        chain.utxos_of(carol.address()),
        chain.utxos_of(alice.address()),
        chain.utxos_of(bob.address()),
        chain.status(),
    );
    assert_eq!(
        chain.tx_status(&hash).unwrap(),
        Some(TxStatus::Included { blknum: 1000, tx_index: 0, committed: true })
    );
    drop(chain);

    let chain = open(&pg, 1);
    let after = (
        chain.utxos_of(carol.address()),
        chain.utxos_of(alice.address()),
        chain.utxos_of(bob.address()),
        chain.status(),
    );
    assert_eq!(format!("{after:?}"), format!("{before:?}"));
    assert_eq!(chain.mempool_len(), 1);
    assert_eq!(chain.tx_status(&pending_hash).unwrap(), Some(TxStatus::Pending));
    let stored = chain.block(1000).unwrap().unwrap();
    assert_eq!(
        (stored.root, &stored.txs, stored.l1_timestamp),
        (block.root, &block.txs, Some(1_700_000_100))
    );
    let Lookup::Found(inc) = chain.inclusion(1000, 0).unwrap() else { panic!() };
    let proof = plasma_spec::Proof::from_bytes(&inc.proof).unwrap();
    assert!(proof.verify(plasma_spec::leaf_hash(&inc.tx_bytes), 0, block.root));
    // The pending payment goes into the next block, after the reopen.
    let next = chain.produce_block(100).unwrap().unwrap();
    assert_eq!(next.blknum, 2000);
    assert_eq!(chain.utxos_of(carol.address()).len(), 2);

    // Another operator takes over: this chain can no longer produce, and changes nothing.
    pg.psql("UPDATE plasma_leader SET epoch = 2").unwrap();
    let late = pay_eth(&domain(), &[pos(1000, 0, 1)], &[(bob.address(), 40)], &[&alice]);
    let refused = chain.submit(&[late.encode()]).pop().unwrap();
    assert!(refused.is_err(), "{refused:?}");
    match chain.produce_block(100) {
        Err(StoreError::Fenced { ours: Some(1), current: Some(2) }) | Ok(None) => {}
        other => panic!("expected nothing produced, got {other:?}"),
    }
    let successor = open(&pg, 2);
    assert_eq!(successor.mempool_len(), 0);
    assert_eq!(successor.block(3000).unwrap(), None);
    assert_eq!(successor.utxos_of(alice.address()).len(), 1, "the late payment never landed");
}
