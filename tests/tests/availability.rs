//! Block availability from a tower quorum (issue 17, spec/07-availability.md) on the real
//! binaries: five towers (the watcher is tower 0), any three of which rebuild a block.
//!
//! - The operator withholds a block from everyone and two towers are dead: the other three
//!   rebuild it, nobody exits, payments and exits go on, and every wei is accounted for.
//! - The operator hands out a bad chunk, a chunk of another block and a second coding: each is
//!   refused or named by the tower that got it, and the block is still rebuilt from the rest.
//! - Only `k − 1` towers got chunks: the block cannot be rebuilt, it is withheld, and the guarded
//!   owner exits as without towers.
//! - A wallet whose store was deleted, with the operator gone, recovers its money through the
//!   towers and exits it.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, B256, U256};
use plasma_contracts::{BatchExitGame, DeployConfig, PlasmaFramework};
use plasma_da::{ChunkEnvelope, Params};
use plasma_e2e::{
    Devnet, block_of, payouts, put_chunk,
    status::{faults, rebuilt, validated},
};
use plasma_spec::{Output, SignedTransaction, Transaction, UtxoPos};
use serde_json::Value;
use std::time::Duration;

const PERIOD: u64 = 60;
/// The availability timeout `A` (WATCH-3): rebuilding starts at the first failed download.
const AVAILABILITY: u64 = 10;

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

/// From the watcher's events: how many exits it started for guarded owners (standard or batch).
fn mass_exits(events: &Value) -> usize {
    events["events"]
        .as_array()
        .map(|ev| {
            ev.iter().filter(|x| x["kind"] == "massExit" || x["kind"] == "batchMassExit").count()
        })
        .unwrap_or_default()
}

async fn put_envelope(url: &str, blknum: u64, envelope: &ChunkEnvelope) -> (u16, Value) {
    put_chunk(url, blknum, envelope.encode()).await.unwrap()
}

fn safe(status: &Value) -> bool {
    status["status"]["safe"] == Value::Bool(true)
}

/// `from` pays `amount` of its output at `pos` (worth `value`) to `to`, change back.
fn payment(
    net: &Devnet,
    from: usize,
    pos: u128,
    value: U256,
    to: Address,
    amount: U256,
) -> SignedTransaction {
    let key =
        plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[from].to_bytes()))
            .unwrap();
    let tx = Transaction::payment(
        &[UtxoPos::from_u128(pos).unwrap()],
        vec![
            Output::new(to, Address::ZERO, amount),
            Output::new(key.address(), Address::ZERO, value - amount),
        ],
        B256::ZERO,
    );
    let sig = key.sign_tx(&net.domain(), &tx);
    SignedTransaction::new(tx, vec![sig])
}

async fn batch_exits_on_l1(net: &Devnet) -> usize {
    let batch = BatchExitGame::new(net.deployment.batch_exit_game, net.provider.clone());
    batch.BatchExitStarted_filter().from_block(0).query().await.unwrap().len()
}

/// DA-7, DA-10, DA-11, DA-12: the operator distributes block 1000 to the three live towers,
/// commits it and serves it to nobody. The towers rebuild it and find it valid: the chain is safe,
/// no mass exit starts, the recipient spends its output, the sender exits its change from the
/// withheld block with exit data from the towers, and every wei is where it should be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_block_is_rebuilt_by_three_of_five_towers_and_nobody_exits() {
    let mut net =
        Devnet::start_with_towers(5, 3, PERIOD, AVAILABILITY, "[faults]\nwithhold = [1000]\n")
            .await
            .unwrap();
    let (alice, bob, carol) = (
        net.wallet_with_towers(1).await.unwrap(),
        net.wallet_with_towers(2).await.unwrap(),
        net.wallet_with_towers(3).await.unwrap(),
    );
    let dep = alice.deposit_eth(eth(10)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    for w in [&alice, &bob, &carol] {
        net.guard(w).await.unwrap();
    }
    // Two towers die: the operator reaches exactly k = 3.
    net.kill_tower(3);
    net.kill_tower(4);

    alice.sync().await.unwrap();
    alice.send(bob.address(), Address::ZERO, eth(4), U256::ZERO).await.unwrap();
    // Block 1000 is committed (the operator waited for its three receipts) and served to nobody.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while net.next_child_block().await.unwrap() <= 1000 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "block 1000 never committed\n{}",
            net.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = reqwest::get(format!("{}/v1/blocks/1000", net.operator_url)).await.unwrap();
    assert_eq!(r.status().as_u16(), 404, "the operator withholds block 1000");
    let availability: Value =
        reqwest::get(format!("{}/v1/blocks/1000/availability", net.operator_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let receipts = availability["receipts"].as_array().cloned().unwrap_or_default();
    let mut signers: Vec<String> =
        receipts.iter().filter_map(|r| r["tower"].as_str().map(str::to_lowercase)).collect();
    signers.sort();
    let mut live: Vec<String> =
        (0..3).map(|i| net.tower_address(i).unwrap().to_string().to_lowercase()).collect();
    live.sort();
    assert_eq!(signers, live, "receipts from exactly the three live towers: {availability}");

    // Each live tower rebuilds the block and validates it: no verdict, no exit.
    for i in 0..3 {
        let status = net
            .wait_tower(i, "block 1000 rebuilt and validated", 60, |s| {
                rebuilt(s).contains(&1000) && validated(s) >= 1000
            })
            .await
            .unwrap();
        assert!(safe(&status), "tower {i} calls the chain safe: {status}");
    }

    // Payments go on: bob learns of his money from the towers and spends it.
    bob.sync().await.unwrap();
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(4), "bob sees block 1000's output");
    let h = bob.send(carol.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    bob.wait_for_commit(h, Duration::from_secs(30)).await.unwrap();
    net.wait_tower(0, "block 2000 validated", 60, |s| validated(s) >= 2000).await.unwrap();

    // Exits go on: alice exits her change from the withheld block, carol her payment.
    alice.sync().await.unwrap();
    carol.sync().await.unwrap();
    assert_eq!(alice.balance(Address::ZERO).unwrap(), eth(6));
    assert_eq!(carol.balance(Address::ZERO).unwrap(), eth(1));
    for w in [&alice, &carol] {
        let positions: Vec<u128> =
            w.spendable(Address::ZERO).unwrap().iter().map(|o| o.utxo_pos).collect();
        assert_eq!(positions.len(), 1);
        w.start_exits(&positions).await.unwrap();
    }
    net.process_all_exits(Address::ZERO).await.unwrap();
    let bond = DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond;
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), eth(6) + payouts::se_back(bond));
    assert_eq!(carol.withdrawable(Address::ZERO).await.unwrap(), eth(1) + payouts::se_back(bond));

    // Nobody was forced out: no mass exit, no batch exit; bob's 3 ETH stay on the chain.
    let (status, events) = net.watcher_state().await.unwrap();
    assert!(safe(&status), "{status}");
    assert_eq!(mass_exits(&events), 0, "no mass exit: {events}");
    assert_eq!(batch_exits_on_l1(&net).await, 0);
    bob.sync().await.unwrap();
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(3));
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    assert_eq!(framework.totalCredited(Address::ZERO).call().await.unwrap(), eth(7));
    assert_eq!(framework.totalDeposited(Address::ZERO).call().await.unwrap(), eth(10));
    net.assert_committed_once().await.unwrap();
}

/// DA-8, DA-9: the byzantine operator (its key, the daemon stopped) hands tower 1 a chunk that
/// fails its proof, tower 2 a chunk of another block, and tower 3 a second coding after the first.
/// Each is refused or named; the block is still rebuilt from towers 0, 3 and 4 — tower 1 too
/// rebuilds it without a chunk of its own — and the chain stays safe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_mismatching_and_equivocating_chunks_are_caught_and_named() {
    let mut net = Devnet::start_with_towers(5, 3, PERIOD, AVAILABILITY, "").await.unwrap();
    let alice = net.wallet(1).await.unwrap();
    let dep = alice.deposit_eth(eth(5)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    net.wait_tower(0, "synced", 30, |s| validated(s) >= 1).await.unwrap();
    net.kill_operator();

    let blknum = net.next_child_block().await.unwrap();
    let pay = payment(&net, 1, dep, eth(5), net.anvil.addresses()[2], eth(2));
    let (root, wire) = block_of(blknum, std::slice::from_ref(&pay));
    let params = Params::new(3, 5).unwrap();
    let signer = net.operator_signer().unwrap();
    let domain = net.domain();
    let good = plasma_da::envelopes(&wire, blknum, root, params, &domain, &signer).unwrap();

    // Tower 1: a chunk that does not match its proof — refused, named.
    let mut bad = good[1].clone();
    bad.chunk[0] ^= 1;
    let (status, body) = put_envelope(&net.tower_url(1).unwrap(), blknum, &bad).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("BadChunkProof")), "{body}");

    // Tower 2: a chunk of another block (an empty one), signed as the operator — kept for now.
    let (other_root, other_wire) = block_of(blknum, &[]);
    let other =
        plasma_da::envelopes(&other_wire, blknum, other_root, params, &domain, &signer).unwrap();
    let (status, body) = put_envelope(&net.tower_url(2).unwrap(), blknum, &other[2]).await;
    assert_eq!(status, 200, "not committed yet: nothing to compare with ({body})");

    // Towers 0, 3, 4: the real chunks, with receipts signed by each tower.
    for i in [0usize, 3, 4] {
        let (status, body) = put_envelope(&net.tower_url(i).unwrap(), blknum, &good[i]).await;
        assert_eq!(status, 200, "{body}");
        let receipt = plasma_da::Receipt {
            blknum,
            chunk_root: good[i].header.chunk_root,
            index: u16::try_from(i).unwrap(),
        };
        let sig: alloy::primitives::Bytes =
            body["receipt"]["signature"].as_str().unwrap().parse().unwrap();
        assert_eq!(receipt.signer(&domain, &sig).unwrap(), net.tower_address(i).unwrap());
    }
    // Tower 3 again, with the other coding: an equivocation, refused and named.
    let (status, body) = put_envelope(&net.tower_url(3).unwrap(), blknum, &other[3]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("Equivocation")), "{body}");

    // The real block is committed and served to nobody.
    let block = net.byzantine_operator().commit_withheld(vec![pay]).await.unwrap();
    assert_eq!(block.blknum, blknum);

    let named = |i: usize, kind: &'static str| {
        let net = &net;
        async move {
            net.wait_tower(i, kind, 60, |s| faults(s).contains(&(blknum, kind.to_owned())))
                .await
                .unwrap()
        }
    };
    named(1, "BadChunkProof").await;
    named(2, "ChunkMismatch").await;
    named(3, "Equivocation").await;
    // Rebuilt from the good chunks by every tower, including the ones that hold a bad or no chunk.
    for i in 0..5 {
        let status = net
            .wait_tower(i, "block rebuilt", 60, |s| {
                rebuilt(s).contains(&blknum) && validated(s) >= blknum
            })
            .await
            .unwrap();
        assert!(safe(&status), "tower {i}: {status}");
    }
    let (_, events) = net.watcher_state().await.unwrap();
    assert_eq!(mass_exits(&events), 0, "{events}");
}

/// DA-6, WATCH-3: the byzantine operator gives chunks to two towers only (k − 1) and withholds
/// the block: nobody can rebuild it, the watcher calls it withheld and exits the guarded owner as
/// it would without towers, and she is paid in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_only_k_minus_one_chunks_the_block_is_withheld_and_guarded_owners_exit() {
    let mut net = Devnet::start_with_towers(5, 3, PERIOD, AVAILABILITY, "").await.unwrap();
    let alice = net.wallet(1).await.unwrap();
    let dep = alice.deposit_eth(eth(5)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    net.guard(&alice).await.unwrap();
    net.wait_tower(0, "synced", 30, |s| validated(s) >= 1).await.unwrap();
    net.kill_operator();

    let blknum = net.next_child_block().await.unwrap();
    let pay = payment(&net, 1, dep, eth(5), net.anvil.addresses()[2], eth(2));
    let (root, wire) = block_of(blknum, std::slice::from_ref(&pay));
    let params = Params::new(3, 5).unwrap();
    let envelopes = plasma_da::envelopes(
        &wire,
        blknum,
        root,
        params,
        &net.domain(),
        &net.operator_signer().unwrap(),
    )
    .unwrap();
    for i in [0usize, 1] {
        let (status, body) = put_envelope(&net.tower_url(i).unwrap(), blknum, &envelopes[i]).await;
        assert_eq!(status, 200, "{body}");
    }
    net.byzantine_operator().commit_withheld(vec![pay]).await.unwrap();

    net.wait_watcher("withheld and mass exit", |s, e| {
        s["status"]["safe"] == Value::Bool(false) && mass_exits(e) >= 1
    })
    .await
    .unwrap();
    let status = net.tower_status(0).await.unwrap();
    assert!(!rebuilt(&status).contains(&blknum), "{status}");
    net.process_all_exits(Address::ZERO).await.unwrap();
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), eth(5), "alice is paid in full");
}

/// DA-11, DA-12: bob was paid, then lost his wallet's store; the operator is gone. From his key
/// alone and the towers he recovers the output, proves it against L1 and exits it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_whose_store_was_deleted_recovers_its_funds_through_the_towers() {
    let mut net = Devnet::start_with_towers(5, 3, PERIOD, AVAILABILITY, "").await.unwrap();
    let alice = net.wallet(1).await.unwrap();
    let dep = alice.deposit_eth(eth(5)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    let bob_address = net.anvil.addresses()[2];
    alice.sync().await.unwrap();
    let h = alice.send(bob_address, Address::ZERO, eth(2), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(h, Duration::from_secs(30)).await.unwrap();
    {
        let bob = net.wallet_with_towers(2).await.unwrap();
        bob.sync().await.unwrap();
        assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(2));
    }
    for i in 0..5 {
        net.wait_tower(i, "payment validated", 60, |s| validated(s) >= blknum).await.unwrap();
    }
    // Bob's store is gone, and so is the operator.
    net.delete_wallet_store(2).unwrap();
    net.kill_operator();

    let bob = net.wallet_with_towers(2).await.unwrap();
    assert_eq!(bob.balance(Address::ZERO).unwrap(), U256::ZERO, "an empty store");
    bob.restore().await.unwrap();
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(2), "recovered through the towers");
    let positions: Vec<u128> =
        bob.spendable(Address::ZERO).unwrap().iter().map(|o| o.utxo_pos).collect();
    bob.start_exits(&positions).await.unwrap();
    net.process_all_exits(Address::ZERO).await.unwrap();
    let bond = DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond;
    assert_eq!(bob.withdrawable(Address::ZERO).await.unwrap(), eth(2) + payouts::se_back(bond));
}
