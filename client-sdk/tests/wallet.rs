//! The wallet against a real anvil, the real contracts and the real operator: deposit, send,
//! receive, exit, process, withdraw with exact balances; exits with the operator stopped; a lying
//! operator caught; the CLI driven as a user would.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::{
    primitives::{Address, Bytes, TxHash, U256},
    providers::{DynProvider, Provider},
};
use plasma_contracts::DeployConfig;
use plasma_operator::{Config, Node};
use plasma_sdk::{SdkError, Wallet, WalletConfig};
use plasma_testkit::{PERIOD, advance, env, key, operator, wallet};
use serde_json::Value;
use std::time::Duration;

/// What an L1 transaction cost its sender in gas.
async fn gas_cost(provider: &DynProvider, tx: TxHash) -> U256 {
    let r = provider.get_transaction_receipt(tx).await.unwrap().unwrap();
    U256::from(r.gas_used) * U256::from(r.effective_gas_price)
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
    let start = bob.start_exits(&[1000 * 1_000_000_000]).await.unwrap().chunks[0].l1_tx;
    assert_eq!(
        bob.balance(Address::ZERO).unwrap(),
        U256::ZERO,
        "an exiting output is not spendable"
    );
    advance(&env.provider, 3 * PERIOD).await;
    alice.process_exits(Address::ZERO, 10).await.unwrap();
    let bounty = bond / U256::from(2); // EXIT-5: half a standard exit's bond (BOND-1)
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
        let (ok, v) = plasma(&["balance", "--sync"], 2);
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
    let pb_bounty = pb / U256::from(2); // half a settled piggyback bond (BOND-1)
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

/// Flips the last hex digit of every `inclusionProof` in `v`, however deep (the listing with
/// proofs nests them).
fn flip_proofs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, field) in map.iter_mut() {
                if (k == "inclusionProof" || k == "proof")
                    && let Some(p) = field.as_str()
                {
                    let mut p = p.to_owned();
                    let last = if p.ends_with('0') { "1" } else { "0" };
                    p.replace_range(p.len() - 1.., last);
                    *field = Value::String(p);
                } else {
                    flip_proofs(field);
                }
            }
        }
        Value::Array(list) => list.iter_mut().for_each(flip_proofs),
        _ => {}
    }
}

/// An operator that lies: it relays the real operator's answers but flips a byte of every
/// inclusion proof it serves (exit data and batch inclusions).
async fn lying_operator(real: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let (http, real) = (http.clone(), real.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let req = if request.starts_with("POST") {
                    let body = request.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
                    http.post(format!("{real}{path}"))
                        .header("content-type", "application/json")
                        .body(body.to_owned())
                } else {
                    http.get(format!("{real}{path}"))
                };
                let mut body: Value = req.send().await.unwrap().json().await.unwrap();
                flip_proofs(&mut body);
                let text = body.to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_operator_over_http_is_caught_and_nothing_is_stored() {
    let env = env().await;
    let node = operator(&env).await;
    let honest = wallet(&env, &node, 1).await;
    let eth = U256::from(10).pow(U256::from(18));
    let pos = honest.deposit_eth(eth).await.unwrap();
    honest.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();

    let config = WalletConfig {
        l1_rpc_url: env.anvil.endpoint(),
        operator_url: lying_operator(format!("http://{}", node.addr)).await,
        framework: env.deployment.framework,
        chain_id: Some(env.anvil.chain_id()),
        store_path: env.dir.path().join("fooled.redb"),
    };
    let fooled = Wallet::connect(key(&env, 1), &config).await.unwrap();
    assert!(matches!(fooled.sync().await, Err(SdkError::ProofMismatch { .. })));
    assert!(fooled.outputs().unwrap().is_empty(), "nothing from the liar was stored");
    assert_eq!(fooled.balance(Address::ZERO).unwrap(), U256::ZERO);

    // A wallet pinned to another chain refuses to start.
    let mut wrong = config.clone();
    wrong.chain_id = Some(1);
    wrong.store_path = env.dir.path().join("wrong.redb");
    assert!(matches!(
        Wallet::connect(key(&env, 1), &wrong).await,
        Err(SdkError::WrongChain { expected: 1, .. })
    ));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_a_config_file_and_reports_its_exits() {
    let env = env().await;
    let node = operator(&env).await;
    let file = env.dir.path().join("plasma.toml");
    std::fs::write(
        &file,
        format!(
            "l1_rpc_url = \"{}\"\noperator_url = \"http://{}\"\nframework = \"{}\"\nstore = {:?}\n",
            env.anvil.endpoint(),
            node.addr,
            env.deployment.framework,
            env.dir.path().join("cfg.redb")
        ),
    )
    .unwrap();
    let key1 = format!("0x{}", hex::encode(env.anvil.keys()[1].to_bytes()));
    let cfg = file.to_str().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        let plasma = |args: &[&str]| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_plasma"))
                .args(["--json", "--config", &cfg, "--private-key", &key1])
                .args(args)
                .env_remove("PLASMA_L1_RPC_URL")
                .env_remove("PLASMA_OPERATOR_URL")
                .output()
                .unwrap();
            (
                out.status.success(),
                serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null),
            )
        };
        let (ok, v) = plasma(&["deposit", "1"]);
        assert!(ok, "{v}");
        let (ok, v) = plasma(&["exit"]);
        assert!(ok, "{v}");
        let (ok, v) = plasma(&["exits"]);
        assert!(ok, "{v}");
        assert_eq!(v["exits"][0]["state"], "active");
        assert_eq!(v["exits"][0]["amount"], "1000000000000000000");
        let (ok, v) = plasma(&[
            "piggyback",
            "0x00000000000000000000000000000000000000000000000000000000000000aa",
        ]);
        assert!(!ok);
        assert!(v["error"].as_str().unwrap().contains("--output"), "{v}");
    })
    .await
    .unwrap();
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_exits_in_flight_a_payment_whose_block_never_comes() {
    let env = env().await;
    // An operator that accepts transactions but never cuts a block.
    let mut c = Config::devnet();
    c.data_dir = env.dir.path().join("slow-operator");
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.l1.rpc_url = env.anvil.endpoint();
    c.l1.framework = env.deployment.framework;
    c.l1.private_key = Some(format!("0x{}", hex::encode(env.anvil.keys()[0].to_bytes())));
    c.l1.poll_interval_ms = 50;
    c.block.interval_ms = 3_600_000;
    let node = Node::start(c).await.unwrap();
    let store = env.dir.path().join("alice.redb");
    let eth = U256::from(10).pow(U256::from(18));
    let hash = {
        let config = WalletConfig {
            l1_rpc_url: env.anvil.endpoint(),
            operator_url: format!("http://{}", node.addr),
            framework: env.deployment.framework,
            chain_id: None,
            store_path: store.clone(),
        };
        let alice = Wallet::connect(key(&env, 1), &config).await.unwrap();
        let pos = alice.deposit_eth(eth * U256::from(2)).await.unwrap();
        alice.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();
        let bob = key(&env, 2).address();
        alice.send(bob, Address::ZERO, eth, U256::ZERO).await.unwrap()
    }; // the wallet (and its store) is closed here

    let (rpc, op, fw) = (
        env.anvil.endpoint(),
        format!("http://{}", node.addr),
        env.deployment.framework.to_string(),
    );
    let key1 = format!("0x{}", hex::encode(env.anvil.keys()[1].to_bytes()));
    let store_arg = store.to_str().unwrap().to_owned();
    let hash_arg = hash.to_string();
    tokio::task::spawn_blocking(move || {
        let plasma = |args: &[&str]| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_plasma"))
                .args(["--json", "--l1.rpc-url", &rpc, "--operator.url", &op, "--framework", &fw])
                .args(["--store", &store_arg, "--private-key", &key1])
                .args(args)
                .output()
                .unwrap();
            (
                out.status.success(),
                serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null),
            )
        };
        let (ok, v) = plasma(&["in-flight-exit", &hash_arg]);
        assert!(ok, "{v}");
        let (ok, v) = plasma(&["piggyback", &hash_arg, "--output", "1"]);
        assert!(ok, "{v}");
    })
    .await
    .unwrap();
    let ife = plasma_contracts::InFlightExitGame::new(
        env.deployment.in_flight_exit_game,
        env.provider.clone(),
    );
    let state = ife.inFlightExit(U256::from_be_bytes(hash.0)).call().await.unwrap();
    assert_eq!(state.initiator, key(&env, 1).address());
    assert_eq!(state.piggybacks, 1 << 6, "alice's change output is piggybacked");
    node.stop().await;
}
