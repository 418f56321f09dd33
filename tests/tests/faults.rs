//! L1 faults on the real binaries (see docs/e2e.md): the L1 node stopped and restarted during
//! traffic, and an L1 reorganisation of recent deposits and exits. Each ends with exact balances.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
};
use plasma_contracts::{DeployConfig, PlasmaFramework, StandardExitGame};
use plasma_e2e::{Devnet, PERIOD};
use serde_json::Value;
use std::time::Duration;

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

fn standard_bond() -> U256 {
    DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond
}

/// Every commitment on L1 is for a distinct block number, in sequence, and no root was submitted
/// twice.
async fn assert_committed_once(net: &Devnet) -> u64 {
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let next = framework.nextChildBlock().call().await.unwrap();
    let submitted = framework.BlockSubmitted_filter().from_block(0).query().await.unwrap();
    assert_eq!(submitted.len() as u64, (next - 1000) / 1000, "one commitment per block number");
    let mut roots: Vec<B256> = submitted.iter().map(|(e, _)| e.root).collect();
    roots.sort();
    roots.dedup();
    assert_eq!(roots.len(), submitted.len(), "no root was submitted twice");
    next
}

/// Polls the framework until `account` can withdraw `expected` of ETH (or the deadline passes).
async fn wait_withdrawable(net: &Devnet, account: Address, expected: U256) {
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let have = framework.withdrawable(account, Address::ZERO).call().await.unwrap();
        if have == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{account} can withdraw {have}, expected {expected}\n{}",
            net.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The L1 node stops (gracefully, keeping its chain) while payments flow, and comes back on the
/// same port. A payment acknowledged while L1 was down is committed once L1 is back; nothing is
/// committed twice; the watcher catches up, calls the chain safe, and still wins a challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_node_stopped_and_restarted_during_traffic_loses_nothing() {
    let mut net = Devnet::start().await.unwrap();
    let (alice, bob, carol) =
        (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap(), net.wallet(3).await.unwrap());
    let (dep_a, dep_c) =
        (alice.deposit_eth(eth(4)).await.unwrap(), carol.deposit_eth(eth(3)).await.unwrap());
    alice.wait_for_output(dep_a, Duration::from_secs(30)).await.unwrap();
    carol.wait_for_output(dep_c, Duration::from_secs(30)).await.unwrap();
    let before = alice.send(bob.address(), Address::ZERO, eth(4), U256::ZERO).await.unwrap();
    alice.wait_for_commit(before, Duration::from_secs(30)).await.unwrap();

    // L1 goes away; the operator still takes payments (it needs L1 only to commit them).
    let last = net.stop_anvil().await.unwrap();
    let during = carol.send(bob.address(), Address::ZERO, eth(3), U256::ZERO).await.unwrap();
    let status: Value = reqwest::get(format!("{}/v1/transactions/{during}", net.operator_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(status["status"], "committed", "not committed while L1 is down: {status}");

    net.restart_anvil(last).await.unwrap();
    let blknum = carol.wait_for_commit(during, Duration::from_secs(30)).await.unwrap();
    let next = assert_committed_once(&net).await;
    assert_eq!(next, blknum + 1000, "the payment's block is the last committed");
    net.wait_watcher("synced and safe after the outage", |s, _| {
        s["status"]["safe"] == Value::Bool(true)
            && s["status"]["syncedBlock"].as_u64() >= Some(blknum)
    })
    .await
    .unwrap();
    bob.sync().await.unwrap();
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(7));

    // The watcher still acts on L1: carol exits the deposit she spent while L1 was down.
    carol.start_exits(&[dep_c]).await.unwrap();
    net.wait_watcher("challenged", |_, e| {
        e["events"].as_array().is_some_and(|ev| ev.iter().any(|x| x["kind"] == "challenged"))
    })
    .await
    .unwrap();
    let se = StandardExitGame::new(net.deployment.standard_exit_game, net.provider.clone());
    assert_eq!(se.exits(U256::from(dep_c)).call().await.unwrap().status, 2);
    wait_withdrawable(&net, net.watcher, standard_bond()).await;
}

/// L1 reorganises away its last blocks: a fresh deposit, a byzantine exit of a spent output, an
/// honest exit, and the watcher's challenge. The new chain includes the deposit and both exits
/// again, not the challenge. The operator credits the deposit once, the watcher challenges again,
/// and after processing every honest party has exactly what it owned; the cheat gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_reorg_of_recent_deposits_and_exits_changes_no_balance() {
    let net = Devnet::start().await.unwrap();
    let (alice, bob, carol) =
        (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap(), net.wallet(3).await.unwrap());
    let dep_a = alice.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(dep_a, Duration::from_secs(30)).await.unwrap();
    let paid = alice.send(bob.address(), Address::ZERO, eth(3), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(30)).await.unwrap();
    let bob_pos = u128::from(blknum) * 1_000_000_000;
    bob.wait_for_output(bob_pos, Duration::from_secs(30)).await.unwrap();
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(blknum))
        .await
        .unwrap();

    // The recent blocks: carol deposits, alice exits what she spent, bob exits what he owns, and
    // the watcher challenges alice.
    let dep_c = carol.deposit_eth(eth(2)).await.unwrap();
    carol.wait_for_output(dep_c, Duration::from_secs(30)).await.unwrap();
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let deposit_tx = framework
        .DepositCreated_filter()
        .from_block(0)
        .query()
        .await
        .unwrap()
        .into_iter()
        .find(|(e, _)| e.blknum == U256::from(dep_c / 1_000_000_000))
        .and_then(|(_, log)| log.transaction_hash)
        .unwrap();
    let cheat = alice.start_exits(&[dep_a]).await.unwrap();
    let honest = bob.start_exits(&[bob_pos]).await.unwrap();
    net.wait_watcher("challenged", |_, e| {
        e["events"].as_array().is_some_and(|ev| ev.iter().any(|x| x["kind"] == "challenged"))
    })
    .await
    .unwrap();

    let first = net.provider.get_transaction_receipt(deposit_tx).await.unwrap().unwrap();
    let head = net.provider.get_block_number().await.unwrap();
    let mut replay = Vec::new();
    for hash in [deposit_tx, cheat, honest] {
        replay.push(net.raw_transaction(hash).await.unwrap());
    }
    net.reorg(head - first.block_number.unwrap() + 1, &replay).await.unwrap();

    net.wait_watcher("reorganisation seen and challenge sent again", |_, e| {
        e["events"].as_array().is_some_and(|ev| {
            ev.iter().any(|x| x["kind"] == "actionLost")
                && ev.iter().filter(|x| x["kind"] == "challenged").count() == 2
        })
    })
    .await
    .unwrap();
    let se = StandardExitGame::new(net.deployment.standard_exit_game, net.provider.clone());
    assert_eq!(se.exits(U256::from(dep_a)).call().await.unwrap().status, 2, "challenged again");

    // The operator still has carol's deposit, once, at the same position; she exits it.
    carol.sync().await.unwrap();
    let carols: Vec<u128> =
        carol.spendable(Address::ZERO).unwrap().iter().map(|o| o.utxo_pos).collect();
    assert_eq!(carols, vec![dep_c]);
    carol.start_exits(&[dep_c]).await.unwrap();

    net.advance(3 * PERIOD).await.unwrap();
    let bond = standard_bond();
    let bounty = bond / U256::from(20);
    wait_withdrawable(&net, bob.address(), eth(3) + bond - bounty).await;
    wait_withdrawable(&net, carol.address(), eth(2) + bond - bounty).await;
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), U256::ZERO);
    // The watcher holds alice's bond once (one standing challenge) and the two bounties.
    wait_withdrawable(&net, net.watcher, bond + bounty * U256::from(2)).await;
    assert_eq!(
        framework.totalCredited(Address::ZERO).call().await.unwrap(),
        framework.totalDeposited(Address::ZERO).call().await.unwrap(),
        "the vault pays exactly what was deposited and kept"
    );
    assert_committed_once(&net).await;
}
