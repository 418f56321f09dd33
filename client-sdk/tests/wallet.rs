//! The wallet against a real anvil, the real contracts and the real operator: deposit, send,
//! receive, exit, process, withdraw with exact balances; exits with the operator stopped; a lying
//! operator caught; the CLI driven as a user would.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::{
    network::EthereumWallet,
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, Bytes, TxHash, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{DeployConfig, Deployment, deploy};
use plasma_operator::{Config, Node};
use plasma_sdk::{SdkError, Wallet, WalletConfig};
use serde_json::Value;
use std::{path::PathBuf, time::Duration};

const PERIOD: u64 = 60;

struct Env {
    anvil: AnvilInstance,
    provider: DynProvider,
    deployment: Deployment,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    let bin = std::env::var_os("ANVIL_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/anvil")
    });
    let anvil = Anvil::at(bin).spawn();
    let key0: PrivateKeySigner = anvil.keys()[0].clone().into();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key0.clone()))
        .connect_http(anvil.endpoint_url())
        .erased();
    let deployment =
        deploy(provider.clone(), &DeployConfig::devnet(key0.address(), PERIOD)).await.unwrap();
    Env { anvil, provider, deployment, dir: tempfile::tempdir().unwrap() }
}

async fn operator(env: &Env) -> Node {
    let mut c = Config::default();
    c.data_dir = env.dir.path().join("operator");
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.l1.rpc_url = env.anvil.endpoint();
    c.l1.framework = env.deployment.framework;
    c.l1.private_key = Some(format!("0x{}", hex::encode(env.anvil.keys()[0].to_bytes())));
    c.l1.poll_interval_ms = 50;
    c.block.interval_ms = 100;
    Node::start(c).await.unwrap()
}

fn key(env: &Env, i: usize) -> PrivateKeySigner {
    env.anvil.keys()[i].clone().into()
}

async fn wallet(env: &Env, node: &Node, i: usize) -> Wallet {
    let config = WalletConfig {
        l1_rpc_url: env.anvil.endpoint(),
        operator_url: format!("http://{}", node.addr),
        framework: env.deployment.framework,
        chain_id: Some(env.anvil.chain_id()),
        store_path: env.dir.path().join(format!("wallet-{i}.redb")),
    };
    Wallet::connect(key(env, i), &config).await.unwrap()
}

/// What an L1 transaction cost its sender in gas.
async fn gas_cost(provider: &DynProvider, tx: TxHash) -> U256 {
    let r = provider.get_transaction_receipt(tx).await.unwrap().unwrap();
    U256::from(r.gas_used) * U256::from(r.effective_gas_price)
}

async fn advance(provider: &DynProvider, seconds: u64) {
    provider.raw_request::<_, Value>("evm_increaseTime".into(), (seconds,)).await.unwrap();
    provider.raw_request::<_, Value>("anvil_mine".into(), (1u64,)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_send_receive_exit_process_withdraw_to_the_wei() {
    let env = env().await;
    let node = operator(&env).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let eth = U256::from(10).pow(U256::from(18));

    let pos = alice.deposit_eth(eth * U256::from(10)).await.unwrap();
    alice.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();
    assert_eq!(alice.balance(Address::ZERO).unwrap(), eth * U256::from(10));

    let fee = U256::from(1_000_000_000u64);
    let hash = alice.send(bob.address(), Address::ZERO, eth * U256::from(4), fee).await.unwrap();
    let blknum = alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    assert_eq!(blknum, 1000);
    bob.wait_for_output(1000 * 1_000_000_000, Duration::from_secs(20)).await.unwrap();
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth * U256::from(4));
    alice.sync().await.unwrap();
    assert_eq!(alice.balance(Address::ZERO).unwrap(), eth * U256::from(6) - fee);

    // bob exits, alice processes (and earns the bounty), bob withdraws: exact to the wei.
    let before = env.provider.get_balance(bob.address()).await.unwrap();
    let bond = DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond;
    let start = bob.start_exits(&[1000 * 1_000_000_000]).await.unwrap();
    assert_eq!(
        bob.balance(Address::ZERO).unwrap(),
        U256::ZERO,
        "an exiting output is not spendable"
    );
    advance(&env.provider, 3 * PERIOD).await;
    alice.process_exits(Address::ZERO, 10).await.unwrap();
    let bounty = bond / U256::from(20);
    assert_eq!(alice.withdrawable(Address::ZERO).await.unwrap(), bounty);
    assert_eq!(bob.withdrawable(Address::ZERO).await.unwrap(), eth * U256::from(4) + bond - bounty);
    let withdrawn = bob.withdraw(Address::ZERO).await.unwrap();
    let after = env.provider.get_balance(bob.address()).await.unwrap();
    let gas = gas_cost(&env.provider, start).await;
    let withdraw_gas = {
        // The withdrawal is the last transaction bob sent.
        let block = env
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .full()
            .await
            .unwrap()
            .unwrap();
        let tx = block.transactions.hashes().next().unwrap();
        gas_cost(&env.provider, tx).await
    };
    assert_eq!(withdrawn, eth * U256::from(4) + bond - bounty);
    assert_eq!(after, before - bond - gas + withdrawn - withdraw_gas);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_from_stored_proofs_with_the_operator_stopped() {
    let env = env().await;
    let node = operator(&env).await;
    let alice = wallet(&env, &node, 1).await;
    let eth = U256::from(10).pow(U256::from(18));
    let a = alice.deposit_eth(eth).await.unwrap();
    let b = alice.deposit_eth(eth * U256::from(2)).await.unwrap();
    alice.wait_for_output(a, Duration::from_secs(20)).await.unwrap();
    alice.wait_for_output(b, Duration::from_secs(20)).await.unwrap();
    node.stop().await; // the operator is gone

    assert!(matches!(alice.sync().await, Err(SdkError::OperatorUnreachable { .. })));
    alice.start_exits(&[a, b]).await.unwrap(); // batched, from the local store and L1 only
    advance(&env.provider, 2 * PERIOD).await;
    alice.process_exits(Address::ZERO, 10).await.unwrap();
    let bond = DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond;
    // alice processed her own exits, so the bounty comes back to her too.
    assert_eq!(
        alice.withdrawable(Address::ZERO).await.unwrap(),
        eth * U256::from(3) + bond * U256::from(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_proof_from_the_operator_is_caught() {
    let env = env().await;
    let node = operator(&env).await;
    let alice = wallet(&env, &node, 1).await;
    let eth = U256::from(10).pow(U256::from(18));
    let pos = alice.deposit_eth(eth).await.unwrap();
    // Wait for the operator to list it, without storing it (we verify by hand below).
    let listed = loop {
        let list = alice.operator().utxos(alice.address()).await.unwrap();
        if let Some(u) = list.into_iter().find(|u| u.utxo_pos == pos) {
            break u;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let data = alice.operator().exit_data(pos).await.unwrap();
    assert!(alice.verify(&listed, &data).await.is_ok());

    let mut proof = data.proof.to_vec();
    proof[5] ^= 1;
    let mut lying = data.clone();
    lying.proof = Bytes::from(proof);
    assert!(matches!(alice.verify(&listed, &lying).await, Err(SdkError::ProofMismatch { .. })));
    let mut lying = data.clone();
    lying.block_timestamp -= 1;
    assert!(matches!(alice.verify(&listed, &lying).await, Err(SdkError::ProofMismatch { .. })));
    let mut inflated = listed.clone();
    inflated.amount += U256::from(1);
    assert!(matches!(alice.verify(&inflated, &data).await, Err(SdkError::ProofMismatch { .. })));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_deposits_sends_and_reports_errors() {
    let env = env().await;
    let node = operator(&env).await;
    let rpc = env.anvil.endpoint();
    let operator_url = format!("http://{}", node.addr);
    let framework = env.deployment.framework.to_string();
    let dir = env.dir.path().to_path_buf();
    let keys: Vec<String> =
        env.anvil.keys().iter().map(|k| format!("0x{}", hex::encode(k.to_bytes()))).collect();
    let plasma = move |args: &[&str], key: usize| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plasma"))
            .args([
                "--json",
                "--l1.rpc-url",
                &rpc,
                "--operator.url",
                &operator_url,
                "--framework",
                &framework,
            ])
            .args(["--store", dir.join(format!("cli-{key}.redb")).to_str().unwrap()])
            .args(["--private-key", &keys[key]])
            .args(args)
            .output()
            .unwrap();
        (out.status.success(), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null))
    };
    let cli = tokio::task::spawn_blocking(move || {
        let (ok, v) = plasma(&["deposit", "1.5"], 1);
        assert!(ok, "{v}");
        let (ok, v) = plasma(&["balance"], 1);
        assert!(ok);
        assert_eq!(v["balance"], "1500000000000000000");
        let bob = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
        let (ok, v) = plasma(&["send", bob, "0.5"], 1);
        assert!(ok, "{v}");
        assert_eq!(v["blknum"], 1000);
        let (ok, v) = plasma(&["send", bob, "5"], 1);
        assert!(!ok);
        assert!(v["error"].as_str().unwrap().contains("insufficient funds"), "{v}");
        let (ok, v) = plasma(&["balance"], 2);
        assert!(ok);
        assert_eq!(v["balance"], "500000000000000000");
    });
    cli.await.unwrap();
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erc20_round_trip() {
    let env = env().await;
    let node = operator(&env).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let token = plasma_contracts::TestToken::deploy(env.provider.clone()).await.unwrap();
    token
        .mint(alice.address(), U256::from(1_000))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let t = *token.address();

    let pos = alice.deposit_erc20(t, U256::from(1_000)).await.unwrap();
    alice.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), t, U256::from(300), U256::from(1)).await.unwrap();
    let blknum = alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    bob.wait_for_output(u128::from(blknum) * 1_000_000_000, Duration::from_secs(20)).await.unwrap();
    assert_eq!(bob.balance(t).unwrap(), U256::from(300));
    bob.start_exits(&[u128::from(blknum) * 1_000_000_000]).await.unwrap();
    advance(&env.provider, 3 * PERIOD).await;
    bob.process_exits(t, 10).await.unwrap();
    assert_eq!(bob.withdraw(t).await.unwrap(), U256::from(300));
    assert_eq!(token.balanceOf(bob.address()).call().await.unwrap(), U256::from(300));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_exit_of_a_payment_the_operator_never_included() {
    let env = env().await;
    let node = operator(&env).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let eth = U256::from(10).pow(U256::from(18));
    let pos = alice.deposit_eth(eth * U256::from(10)).await.unwrap();
    alice.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();
    node.stop().await; // the operator goes dark before alice's payment is included

    let signed =
        alice.build_payment(bob.address(), Address::ZERO, eth * U256::from(4), U256::ZERO).unwrap();
    alice.start_in_flight_exit(&signed).await.unwrap();
    let hash = signed.transaction.hash();
    alice.piggyback(hash, true, 1).await.unwrap(); // her change
    bob.piggyback(hash, true, 0).await.unwrap(); // his payment
    advance(&env.provider, 3 * PERIOD).await;
    alice.process_exits(Address::ZERO, 10).await.unwrap();
    let config = DeployConfig::devnet(Address::ZERO, PERIOD);
    let (pb, ife) = (config.piggyback_bond, config.in_flight_exit_bond);
    let pb_bounty = pb / U256::from(20);
    assert_eq!(
        bob.withdrawable(Address::ZERO).await.unwrap(),
        eth * U256::from(4) + pb - pb_bounty
    );
    assert_eq!(
        alice.withdrawable(Address::ZERO).await.unwrap(),
        // Her bonds come back whole (she processed, so their bounties are hers) plus the bounty
        // from bob's piggyback.
        eth * U256::from(6) + pb + ife + pb_bounty
    );
}
