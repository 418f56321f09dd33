//! Off the devnet (issue 18): the system on an L1 that looks like a public testnet — its own chain
//! id (not anvil's 31337), a block every second instead of one per transaction, contracts deployed
//! by the `plasma-deploy` binary from a keystore with two confirmations per transaction by a fresh,
//! faucet-funded key (so no address is the devnet's), an operator that signs from the same
//! keystore with production settings (`devnet = false`, deposits credited two blocks deep) — and
//! a user's whole round trip through the real operator and watcher: deposit, send, exit, process,
//! withdraw. No L1 time travel: the exit becomes due on L1's own clock.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, U256, address},
    providers::Provider,
};
use plasma_contracts::{DeployConfig, PlasmaFramework, StandardExitGame};
use plasma_e2e::{Devnet, DevnetOptions};
use std::time::Duration;

/// A chain id that is not anvil's default: nothing may assume 31337.
const CHAIN_ID: u64 = 4_242;
/// The challenge period (seconds): short enough to wait for in real time, long enough for the
/// watcher's timing check (WATCH-12) at one-second blocks.
const PERIOD: u64 = 20;

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystore_deployment_on_a_chain_with_its_own_id_and_one_second_blocks() {
    let net = Devnet::start_with(DevnetOptions {
        chain_id: Some(CHAIN_ID),
        block_time: Some(1),
        period: PERIOD,
        availability_timeout: 3,
        deposit_confirmations: 2,
        deploy_from_keystore: Some(2),
        operator_devnet: false,
        watcher_processes_exits: false,
        watcher_args: Vec::new(),
        ha: None,
    })
    .await
    .unwrap();
    assert_eq!(net.provider.get_chain_id().await.unwrap(), CHAIN_ID);
    // Deployed by a fresh key, not anvil's account 0: not the devnet's well-known address.
    assert_ne!(net.deployment.framework, address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"));
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    assert_eq!(framework.operator().call().await.unwrap(), net.operator_address().unwrap());
    assert_eq!(framework.minExitPeriod().call().await.unwrap(), U256::from(PERIOD));

    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    // The wallets were given no chain id: they read it from L1 and sign for it (EIP-712).
    assert_eq!(alice.chain_identity().await.unwrap().chain_id, CHAIN_ID);
    let start = net.provider.get_block_number().await.unwrap() + 1;
    let bob_before = net.provider.get_balance(bob.address()).await.unwrap();

    // Deposit: credited by the operator once two one-second blocks deep.
    let deposit = alice.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(deposit, Duration::from_secs(60)).await.unwrap();
    // Send: the block is committed on L1 with one-second blocks.
    alice.sync().await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(hash, Duration::from_secs(60)).await.unwrap();
    net.wait_watcher("validated the payment's block", |s, _| {
        s["status"]["syncedBlock"].as_u64() >= Some(blknum) && s["status"]["safe"] == true
    })
    .await
    .unwrap();
    bob.sync().await.unwrap();
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(1));
    alice.sync().await.unwrap();
    assert_eq!(alice.balance(Address::ZERO).unwrap(), eth(2));

    // Exit bob's output from his stored proof.
    let positions: Vec<u128> =
        bob.spendable(Address::ZERO).unwrap().iter().map(|o| o.utxo_pos).collect();
    assert_eq!(positions.len(), 1);
    let report = bob.start_exits(&positions).await.unwrap();
    assert_eq!(report.started(), positions, "{report:?}");
    let standard = StandardExitGame::new(net.deployment.standard_exit_game, net.provider.clone());
    let started = standard.ExitStarted_filter().from_block(start).query().await.unwrap();
    let [(exit, _)] = started.as_slice() else { panic!("one exit expected: {started:?}") };
    assert_eq!((exit.owner, exit.amount), (bob.address(), eth(1)));

    // Process once L1's own clock (one block a second, no time travel) passes the exitable time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3 * PERIOD + 30);
    loop {
        let now = net
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .unwrap()
            .unwrap()
            .header
            .timestamp;
        if now > exit.exitableAt {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "L1 time stuck at {now}\n{}", net.logs());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bob.process_exits(Address::ZERO, 10).await.unwrap();
    let bond = DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond;
    // Bob processed his own exit: his bond comes back whole (the bounty half is the processor's).
    assert_eq!(bob.withdrawable(Address::ZERO).await.unwrap(), eth(1) + bond);
    assert_eq!(bob.withdraw(Address::ZERO).await.unwrap(), eth(1) + bond);
    // L1, to the wei: one ether more, less the fees bob paid (exit, process, withdraw).
    let fees = net.fees_paid(bob.address(), start).await.unwrap();
    let bob_after = net.provider.get_balance(bob.address()).await.unwrap();
    assert_eq!(bob_after, bob_before + eth(1) - fees);
    assert!(framework.queueHead(Address::ZERO).call().await.unwrap().head.is_zero());
    // The operator committed each block once, and the watcher still calls the chain safe.
    net.assert_committed_once().await.unwrap();
    let (status, _) = net.watcher_state().await.unwrap();
    assert_eq!(status["status"]["safe"], true, "{status}");
}
