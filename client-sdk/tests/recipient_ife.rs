//! A recipient exits in flight from the sender's package (spec: EXIT-6, EXIT-8, WALLET-3),
//! against a real anvil, the real contracts and the real operator withholding the payment's
//! block (the devnet fault `[faults] withhold`): the recipient, who can never sync the output,
//! is paid on L1 to the wei; bad packages and useless exits are refused before any bond.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::{
    primitives::{Address, B256, Bytes, TxHash, U256},
    providers::{DynProvider, Provider},
};
use plasma_contracts::{DeployConfig, InFlightExitGame, PlasmaFramework};
use plasma_operator::Node;
use plasma_sdk::{PaymentPackage, SdkError, Wallet};
use plasma_testkit::{Env, PERIOD, advance, env, eth, operator_config, wallet};
use std::time::Duration;

/// The child block the operator commits but never serves.
const WITHHELD: u64 = 1000;

/// What an L1 transaction cost its sender.
async fn gas_cost(provider: &DynProvider, tx: TxHash) -> U256 {
    let r = provider.get_transaction_receipt(tx).await.unwrap().unwrap();
    U256::from(r.gas_used) * U256::from(r.effective_gas_price)
}

/// The L1 timestamp of the block that mined `tx`.
async fn mined_at(provider: &DynProvider, tx: TxHash) -> u64 {
    let r = provider.get_transaction_receipt(tx).await.unwrap().unwrap();
    let block = provider.get_block_by_number(r.block_number.unwrap().into()).await.unwrap();
    block.unwrap().header.timestamp
}

/// The operator with block [`WITHHELD`] withheld.
async fn withholding_operator(env: &Env) -> Node {
    let mut c = operator_config(env);
    c.faults.withhold = vec![WITHHELD];
    Node::start(c).await.unwrap()
}

/// Waits until child block `blknum`'s root is committed on L1 (polls the framework, as the
/// wallet's own `wait_for_commit` polls the operator: the block is withheld, so only L1 says).
async fn committed(env: &Env, blknum: u64) {
    let fw = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while fw.blockCommitments(U256::from(blknum)).call().await.unwrap() == B256::ZERO {
        assert!(tokio::time::Instant::now() < deadline, "block {blknum} never committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipient_exits_in_flight_from_the_senders_package_and_is_paid_to_the_wei() {
    let env = env().await;
    let node = withholding_operator(&env).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let pos = alice.deposit_eth(eth(10)).await.unwrap();
    alice.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();
    let fee = U256::from(1_000_000_000u64);
    let hash = alice.send(bob.address(), Address::ZERO, eth(4), fee).await.unwrap();
    committed(&env, WITHHELD).await;
    // bob cannot read his output: its block is withheld.
    assert!(bob.fetch_output(u128::from(WITHHELD) * 1_000_000_000).await.is_err());

    // alice hands bob the package, as JSON.
    let json = serde_json::to_string_pretty(&alice.payment_package(hash).unwrap()).unwrap();
    let pkg: PaymentPackage = serde_json::from_str(&json).unwrap();
    assert_eq!(pkg.inputs.len(), 1);
    assert_eq!(pkg.inputs[0].utxo_pos, pos.to_string());

    let config = DeployConfig::devnet(Address::ZERO, PERIOD);
    let (ife_bond, pb) = (config.in_flight_exit_bond, config.piggyback_bond);
    let before = env.provider.get_balance(bob.address()).await.unwrap();
    let done = bob.in_flight_exit_from(&pkg, false).await.unwrap();
    let start = done.start_tx.expect("bob started it");
    assert_eq!(done.exit_id, hash);
    assert_eq!(done.piggybacks.len(), 1);
    assert_eq!(done.piggybacks[0].0, 0, "bob's output is output 0");
    assert_eq!(done.amounts, vec![(Address::ZERO, eth(4))]);
    assert_eq!(done.bonds, ife_bond + pb);

    // On L1: bob's exit, his output piggybacked, timed by EXIT-7 from the youngest input.
    let game = InFlightExitGame::new(env.deployment.in_flight_exit_game, env.provider.clone());
    let state = game.inFlightExit(U256::from_be_bytes(hash.0)).call().await.unwrap();
    assert_eq!(state.initiator, bob.address());
    assert_eq!(state.piggybacks, 1 << 5, "output 0 piggybacked, nothing else");
    assert_eq!(state.exitableAt, done.exitable_at);
    let started_at = mined_at(&env.provider, start).await;
    let expected = (started_at + PERIOD).max(pkg.inputs[0].block_timestamp + 2 * PERIOD);
    assert_eq!(done.exitable_at, expected, "EXIT-7");

    // The schedule shows it, from L1, not ready yet.
    let rows = bob.exit_schedule().await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!((row.kind.as_str(), row.state.as_str()), ("inFlight", "open"));
    assert_eq!(row.exitable_at, Some(expected));
    assert_eq!(row.amount, eth(4).to_string());
    assert_eq!(row.exits_ahead, Some(0));
    assert!(!row.ready && row.blocked_by.is_none(), "{row:?}");
    // A second start from the same package only fails: the exit exists (and phase 1 is open,
    // but bob's output is piggybacked already, so there is nothing to add).
    assert!(matches!(
        bob.start_in_flight_exit_from(&pkg).await,
        Err(SdkError::InFlightExitExists(h)) if h == hash
    ));

    advance(&env.provider, 3 * PERIOD).await;
    let row = bob.exit_schedule().await.unwrap().remove(0);
    assert!(row.ready, "{row:?}");
    let process = bob.process_exits(Address::ZERO, 10).await.unwrap();
    // bob processed it himself: every bounty comes back to him (BOND-1, EXIT-11).
    assert_eq!(bob.withdrawable(Address::ZERO).await.unwrap(), eth(4) + ife_bond + pb);
    let row = bob.exit_schedule().await.unwrap().remove(0);
    assert_eq!(row.state, "processed");
    assert!(!row.ready);
    let withdrawn = bob.withdraw(Address::ZERO).await.unwrap();
    assert_eq!(withdrawn, eth(4) + ife_bond + pb);
    let after = env.provider.get_balance(bob.address()).await.unwrap();
    let withdraw_tx = {
        let block = env
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .unwrap()
            .unwrap();
        block.transactions.hashes().next().unwrap()
    };
    let mut gas = U256::ZERO;
    for tx in [start, done.piggybacks[0].1, process, withdraw_tx] {
        gas += gas_cost(&env.provider, tx).await;
    }
    assert_eq!(after, before + eth(4) - gas, "bob is paid 4 ETH on L1, to the wei");
    // alice's change was not piggybacked: the canonical settlement finalized her input, and
    // nothing else was paid (the vault keeps her 6 ETH - fee until she piggybacks another exit).
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), U256::ZERO);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_packages_and_useless_exits_are_refused_before_any_bond() {
    let env = env().await;
    let node = withholding_operator(&env).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let carol = wallet(&env, &node, 3).await;
    let dave: Wallet = wallet(&env, &node, 4).await;
    let a = alice.deposit_eth(eth(10)).await.unwrap();
    let c = carol.deposit_eth(eth(5)).await.unwrap();
    alice.wait_for_output(a, Duration::from_secs(20)).await.unwrap();
    carol.wait_for_output(c, Duration::from_secs(20)).await.unwrap();
    // alice pays bob in the withheld block; carol pays bob in a later block, served.
    let withheld = alice.send(bob.address(), Address::ZERO, eth(4), U256::ZERO).await.unwrap();
    committed(&env, WITHHELD).await;
    let served = carol.send(bob.address(), Address::ZERO, eth(2), U256::ZERO).await.unwrap();
    let served_in = carol.wait_for_commit(served, Duration::from_secs(30)).await.unwrap();
    assert!(served_in > WITHHELD);
    let pkg = alice.payment_package(withheld).unwrap();
    let balances = || async {
        let mut v = Vec::new();
        for w in [&bob, &dave] {
            v.push(env.provider.get_balance(w.address()).await.unwrap());
        }
        v
    };
    let before = balances().await;

    // A proof that does not match the input block's L1 commitment.
    let mut tampered = pkg.clone();
    let mut proof = tampered.inputs[0].proof.to_vec();
    proof[0] ^= 1;
    tampered.inputs[0].proof = Bytes::from(proof);
    match bob.in_flight_exit_from(&tampered, false).await {
        Err(SdkError::BadPackage(why)) => assert!(why.contains("L1 commitment"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A wrong block timestamp, likewise.
    let mut late = pkg.clone();
    late.inputs[0].block_timestamp += 1;
    assert!(matches!(bob.in_flight_exit_from(&late, false).await, Err(SdkError::BadPackage(_))));
    // A payment that pays dave nothing.
    match dave.in_flight_exit_from(&pkg, false).await {
        Err(SdkError::BadPackage(why)) => assert!(why.contains("pays"), "{why}"),
        other => panic!("{other:?}"),
    }
    // carol's payment is committed in a later block, which the operator serves: bob exits it by a
    // standard exit once synced; an in-flight exit would only lock bonds (WALLET-3).
    let committed_pkg = carol.payment_package(served).unwrap();
    match bob.start_in_flight_exit_from(&committed_pkg).await {
        Err(SdkError::PaymentCommitted { tx_hash, blknum, .. }) => {
            assert_eq!((tx_hash, blknum), (served, served_in));
        }
        other => panic!("{other:?}"),
    }
    // carol exits the output her payment spent: processed first, it would make the payment
    // non-canonical, so the recipient is told to challenge it first.
    carol.start_exits_unchecked(&[c]).await.unwrap();
    match bob.in_flight_exit_from(&committed_pkg, true).await {
        Err(SdkError::OutputExiting { utxo_pos, evidence }) => {
            assert_eq!(utxo_pos, c.to_string());
            assert!(evidence.contains("challenge it with this payment"), "{evidence}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(balances().await, before, "nothing was paid, not even gas");
    let game = InFlightExitGame::new(env.deployment.in_flight_exit_game, env.provider.clone());
    for h in [withheld, served] {
        let state = game.inFlightExit(U256::from_be_bytes(h.0)).call().await.unwrap();
        assert_eq!(state.initiator, Address::ZERO, "no exit of {h} on L1");
    }
    // The sender starts the exit herself: the recipient joins it, piggybacking only.
    let signed = alice.sent_transaction(withheld).unwrap();
    alice.start_in_flight_exit_unchecked(&signed).await.unwrap();
    let joined = bob.in_flight_exit_from(&pkg, false).await.unwrap();
    assert_eq!((joined.start_tx, joined.piggybacks.len()), (None, 1));
    assert_eq!(joined.bonds, DeployConfig::devnet(Address::ZERO, PERIOD).piggyback_bond);
    let state = game.inFlightExit(U256::from_be_bytes(withheld.0)).call().await.unwrap();
    assert_eq!((state.initiator, state.piggybacks), (alice.address(), 1 << 5));
    // Joining again adds nothing: refused.
    assert!(matches!(
        bob.in_flight_exit_from(&pkg, false).await,
        Err(SdkError::InFlightExitExists(h)) if h == withheld
    ));
    node.stop().await;
}

/// Runs the `plasma` binary as account `i` on its test store, with `--json`.
fn plasma(env: &Env, node: &Node, i: usize, args: &[&str]) -> (bool, serde_json::Value) {
    let c = plasma_testkit::wallet_config(env, node, i);
    let key = format!("0x{}", hex::encode(env.anvil.keys()[i].to_bytes()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plasma"))
        .args(["--json", "--l1.rpc-url", &c.l1_rpc_url, "--operator.url", &c.operator_url])
        .args(["--framework", &c.framework.to_string(), "--private-key", &key])
        .args(["--store", c.store_path.to_str().unwrap()])
        .args(args)
        .env_remove("PLASMA_CONFIG")
        .env_remove("PLASMA_WATCHERS")
        .env_remove("PLASMA_TOWERS")
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_default();
    (out.status.success(), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_hands_over_a_package_exits_with_it_and_consolidates() {
    let env = env().await;
    let node = withholding_operator(&env).await;
    let bob_address = plasma_testkit::key(&env, 2).address();
    let hash = {
        let alice = wallet(&env, &node, 1).await;
        let carol = wallet(&env, &node, 3).await;
        for (w, amount) in [(&alice, eth(10)), (&carol, eth(1)), (&carol, eth(2)), (&carol, eth(3))]
        {
            let pos = w.deposit_eth(amount).await.unwrap();
            w.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();
        }
        alice.send(bob_address, Address::ZERO, eth(4), U256::ZERO).await.unwrap()
    }; // the wallets (and their stores) are closed here
    committed(&env, WITHHELD).await;
    let file = env.dir.path().join("package.json");
    let config = DeployConfig::devnet(Address::ZERO, PERIOD);
    let bonds = (config.in_flight_exit_bond + config.piggyback_bond).to_string();
    let hash_arg = hash.to_string();
    let file_arg = file.to_str().unwrap().to_owned();
    let (env, node) = tokio::task::spawn_blocking(move || {
        let (ok, v) = plasma(&env, &node, 1, &["payment-package", &hash_arg, "--out", &file_arg]);
        assert!(ok, "{v}");
        assert_eq!(v["inputs"], 1);
        let pkg: PaymentPackage =
            serde_json::from_str(&std::fs::read_to_string(&file_arg).unwrap()).unwrap();
        assert_eq!(pkg.tx_hash, hash);

        let (ok, v) = plasma(&env, &node, 2, &["in-flight-exit", "--package", &file_arg]);
        assert!(ok, "{v}");
        assert_eq!(v["exitId"], hash_arg);
        assert_eq!(v["piggybacks"][0]["output"], 0);
        assert_eq!(v["amounts"][0]["amount"], eth(4).to_string());
        assert_eq!(v["bonds"], bonds);
        assert_eq!(v["schedule"][0]["kind"], "inFlight");
        assert_eq!(v["schedule"][0]["exitableAt"], v["exitableAt"]);
        let (ok, v) = plasma(&env, &node, 2, &["in-flight-exit", "--package", &file_arg]);
        assert!(!ok && v["error"].as_str().unwrap().contains("already started"), "{v}");

        let (ok, v) = plasma(&env, &node, 3, &["consolidate", "--fee", "1gwei"]);
        assert!(ok, "{v}");
        assert_eq!(v["outputsBefore"], 3);
        assert_eq!(v["payments"].as_array().unwrap().len(), 1);
        assert_eq!(v["amount"], (eth(6) - U256::from(1_000_000_000u64)).to_string());
        let (ok, v) = plasma(&env, &node, 3, &["consolidate"]);
        assert!(!ok && v["error"].as_str().unwrap().contains("nothing to consolidate"), "{v}");
        (env, node)
    })
    .await
    .unwrap();
    let game = InFlightExitGame::new(env.deployment.in_flight_exit_game, env.provider.clone());
    let state = game.inFlightExit(U256::from_be_bytes(hash.0)).call().await.unwrap();
    assert_eq!((state.initiator, state.piggybacks), (bob_address, 1 << 5));
    node.stop().await;
}
