//! The wallet must not trust itself too long (issue 13, items 5 and 7), against a real anvil, the
//! real contracts, the real operator and the real watcher:
//! - after the key spent an output elsewhere, `plasma exit` with no arguments refuses instead of
//!   exiting the spent output (which lost its bond); outputs exiting or finalized on L1 are neither
//!   counted nor exited;
//! - a store written on a chain that `scripts/devnet --reset` replaced (same framework address)
//!   is refused, and `--fresh-store` starts over;
//! - an in-flight exit of a payment already committed is refused before it locks a bond;
//! - a payment out of nothing, committed by a lying operator, is not counted, and a watcher's
//!   verdict is what makes a payment final.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
};
use plasma_contracts::{InFlightExitGame, PlasmaFramework, StandardExitGame};
use plasma_operator::Node;
use plasma_sdk::{OutputStatus, SdkError, Verification, Wallet, WalletConfig};
use plasma_spec::{
    BlockTree, Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos,
    deposit_block_root,
};
use plasma_testkit::{Env, PERIOD, advance, env, eth, key, operator};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

fn config(env: &Env, operator_url: String, store: PathBuf) -> WalletConfig {
    WalletConfig {
        l1_rpc_url: env.anvil.endpoint(),
        operator_url,
        framework: env.deployment.framework,
        chain_id: Some(env.anvil.chain_id()),
        store_path: store,
    }
}

async fn wallet(env: &Env, node: &Node, i: usize, store: &str) -> Wallet {
    let c = config(env, format!("http://{}", node.addr), env.dir.path().join(store));
    Wallet::connect(key(env, i), &c).await.unwrap()
}

/// Runs the `plasma` CLI as a user would, with key `i` and the store `store`.
fn plasma(env: &Env, operator_url: &str, i: usize, store: &Path, args: &[&str]) -> (bool, Value) {
    plasma_with(env, operator_url, i, store, args, &[])
}

/// As [`plasma`], with environment variables. `PLASMA_CLI_BIN` runs another build of the CLI
/// (how these tests were shown to fail with the CLI from before the fix).
fn plasma_with(
    env: &Env,
    operator_url: &str,
    i: usize,
    store: &Path,
    args: &[&str],
    vars: &[(&str, &str)],
) -> (bool, Value) {
    let bin =
        std::env::var("PLASMA_CLI_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_plasma").into());
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(bin)
            .args(["--json", "--l1.rpc-url", &env.anvil.endpoint()])
            .args(["--operator.url", operator_url])
            .args(["--framework", &env.deployment.framework.to_string()])
            .args(["--store", store.to_str().unwrap()])
            .args(["--private-key", &format!("0x{}", hex::encode(env.anvil.keys()[i].to_bytes()))])
            .args(args)
            .env_remove("PLASMA_WATCHERS")
            .envs(vars.iter().copied())
            .output()
            .unwrap()
    });
    (out.status.success(), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null))
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

/// Issue 13 item 5, reproduced: the key spends an output from another device; the CLI wallet
/// then must not count it, must not pick it for a send, and `plasma exit` with no arguments must
/// not exit it (the watcher challenged that exit and the wallet lost its bond). Outputs whose
/// standard exit started elsewhere are shown as exiting, and finalized ones refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_with_no_arguments_after_spending_elsewhere_is_refused_and_no_bond_is_lost() {
    let env = env().await;
    let node = operator(&env).await;
    let op = format!("http://{}", node.addr);
    let store = env.dir.path().join("cli-alice.redb");
    let bob = key(&env, 2).address();
    let alice = key(&env, 1).address();

    let (ok, v) = plasma(&env, &op, 1, &store, &["deposit", "1"]);
    assert!(ok, "{v}");
    let dep: u128 = v["utxoPos"].as_str().unwrap().parse().unwrap();

    // The same key on another device (another store) spends the deposit.
    let elsewhere = wallet(&env, &node, 1, "elsewhere.redb").await;
    elsewhere.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let paid = elsewhere.send(bob, Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    elsewhere.wait_for_commit(paid, Duration::from_secs(20)).await.unwrap();

    // The reproduction: `plasma exit` with no arguments. Nothing is exited, no bond is paid.
    let before = env.provider.get_balance(alice).await.unwrap();
    let (ok, v) = plasma(&env, &op, 1, &store, &["exit"]);
    assert!(!ok, "{v}");
    assert!(error_of(&v).contains("nothing to exit"), "{v}");
    let (ok, v) = plasma(&env, &op, 1, &store, &["exit", &dep.to_string()]);
    assert!(!ok, "{v}");
    assert!(error_of(&v).contains("is spent"), "{v}");
    let se = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    assert_eq!(se.exits(U256::from(dep)).call().await.unwrap().status, 0, "no exit started");
    assert_eq!(env.provider.get_balance(alice).await.unwrap(), before, "no bond, no gas spent");

    let (ok, v) = plasma(&env, &op, 1, &store, &["balance", "--sync"]);
    assert!(ok, "{v}");
    assert_eq!(v["balance"], "0", "the spent deposit is not counted: {v}");
    let (ok, v) = plasma(&env, &op, 1, &store, &["send", &bob.to_string(), "0.1"]);
    assert!(!ok);
    assert!(error_of(&v).contains("insufficient funds"), "not InputNotFound: {v}");

    // A second deposit; the other device starts its standard exit.
    let dep2 = elsewhere.deposit_eth(eth(2)).await.unwrap();
    elsewhere.wait_for_output(dep2, Duration::from_secs(20)).await.unwrap();
    let (ok, v) = plasma(&env, &op, 1, &store, &["sync"]);
    assert!(ok, "{v}");
    let (_, v) = plasma(&env, &op, 1, &store, &["balance"]);
    assert_eq!(v["balance"], eth(2).to_string(), "{v}");
    elsewhere.start_exits(&[dep2]).await.unwrap();
    let (ok, v) = plasma(&env, &op, 1, &store, &["balance", "--sync"]);
    assert!(ok, "{v}");
    assert_eq!(v["balance"], "0", "an exiting output is not spendable: {v}");
    assert_eq!(v["exiting"], eth(2).to_string(), "{v}");
    let (ok, v) = plasma(&env, &op, 1, &store, &["utxos"]);
    assert!(ok, "{v}");
    assert!(v["lastSync"]["at"].as_u64().is_some(), "the answer says how fresh it is: {v}");
    let status = |pos: u128| {
        v["utxos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["utxoPos"] == json!(pos) || o["utxoPos"] == json!(pos.to_string()))
            .map(|o| o["status"].clone())
            .unwrap()
    };
    assert_eq!(status(dep), "spent", "{v}");
    assert_eq!(status(dep2), "exiting", "{v}");
    let (ok, v) = plasma(&env, &op, 1, &store, &["exit", &dep2.to_string()]);
    assert!(!ok);
    assert!(error_of(&v).contains("already exiting"), "{v}");

    // Processed: finalized on L1 (OUT-2), refused as such.
    advance(&env.provider, 3 * PERIOD).await;
    elsewhere.process_exits(Address::ZERO, 10).await.unwrap();
    let (ok, v) = plasma(&env, &op, 1, &store, &["exit", &dep2.to_string()]);
    assert!(!ok);
    assert!(error_of(&v).contains("finalized"), "{v}");
    let (_, v) = plasma(&env, &op, 1, &store, &["balance", "--sync"]);
    assert_eq!((v["balance"].as_str(), v["exiting"].as_str()), (Some("0"), Some("0")), "{v}");
    node.stop().await;
}

/// `scripts/devnet --reset`: a new chain, the framework at the same address. The wallet's store
/// from the old chain is refused with a clear error instead of showing the old balances, and the
/// CLI's `--fresh-store` sets it aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_a_reset_chain_is_refused_not_shown() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("alice.redb");
    let old_framework = {
        let env = env().await;
        let node = operator(&env).await;
        let c = config(&env, format!("http://{}", node.addr), store.clone());
        let alice = Wallet::connect(key(&env, 1), &c).await.unwrap();
        let dep = alice.deposit_eth(eth(1)).await.unwrap();
        alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
        assert_eq!(alice.balance(Address::ZERO).unwrap(), eth(1));
        node.stop().await;
        let genesis = env.provider.get_block_by_number(0.into()).await.unwrap().unwrap();
        (env.deployment.framework, genesis.header.timestamp)
    }; // the old chain's anvil is gone
    let (old_framework, old_genesis_time) = old_framework;
    // anvil stamps its genesis with the current second and deploys deterministically: a chain
    // started in the same second as the old one would be the same chain, block hashes and all,
    // which no wallet can tell apart. The reset the test plays happens later than that.
    while std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        <= old_genesis_time
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let env = env().await;
    assert_eq!(env.deployment.framework, old_framework, "same framework address, new chain");
    let node = operator(&env).await;
    let c = config(&env, format!("http://{}", node.addr), store.clone());
    match Wallet::connect(key(&env, 1), &c).await {
        Err(SdkError::StoreOfAnotherChain { .. }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(w) => panic!(
            "the old chain's store was opened; balance {}",
            w.balance(Address::ZERO).unwrap()
        ),
    }

    let op = format!("http://{}", node.addr);
    let (ok, v) = plasma(&env, &op, 1, &store, &["balance"]);
    assert!(!ok);
    assert!(error_of(&v).contains("reset"), "{v}");
    let (ok, v) = plasma(&env, &op, 1, &store, &["--fresh-store", "balance"]);
    assert!(ok, "{v}");
    assert_eq!(v["balance"], "0", "{v}");
    let aside = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("alice.redb.stale-"));
    assert!(aside, "the old store was kept aside, not deleted");
    // The fresh store is bound to the new chain: it opens again without the flag.
    let (ok, v) = plasma(&env, &op, 1, &store, &["balance"]);
    assert!(ok, "{v}");
    node.stop().await;
}

/// An in-flight exit of a payment already committed in a block would lock a bond for nothing:
/// refused, whether the wallet proves the inclusion from its own store or from the operator's
/// inclusion data checked against L1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_exit_of_a_committed_payment_is_refused() {
    let env = env().await;
    let node = operator(&env).await;
    let alice = wallet(&env, &node, 1, "alice.redb").await;
    let bob = key(&env, 2).address();
    let ife = InFlightExitGame::new(env.deployment.in_flight_exit_game, env.provider.clone());

    // Exact amount: no change, so the store holds nothing of the payment; the operator's
    // inclusion data is checked against L1.
    let dep = alice.deposit_eth(eth(2)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let paid = alice.send(bob, Address::ZERO, eth(2), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(20)).await.unwrap();
    let signed = alice.sent_transaction(paid).unwrap();
    match alice.start_in_flight_exit(&signed).await {
        Err(SdkError::PaymentCommitted { tx_hash, blknum: b, tx_index: 0 }) => {
            assert_eq!((tx_hash, b), (paid, blknum));
        }
        other => panic!("expected PaymentCommitted, got {other:?}"),
    }
    let state = ife.inFlightExit(U256::from_be_bytes(paid.0)).call().await.unwrap();
    assert_eq!(state.initiator, Address::ZERO, "no in-flight exit, no bond locked");

    // With change: the wallet's own store proves it; the CLI refuses too.
    let dep = alice.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let paid = alice.send(bob, Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(20)).await.unwrap();
    alice
        .wait_for_output(u128::from(blknum) * 1_000_000_000 + 1, Duration::from_secs(20))
        .await
        .unwrap();
    let signed = alice.sent_transaction(paid).unwrap();
    assert!(matches!(
        alice.start_in_flight_exit(&signed).await,
        Err(SdkError::PaymentCommitted { .. })
    ));
    drop(alice); // the CLI opens the same store
    let op = format!("http://{}", node.addr);
    let store = env.dir.path().join("alice.redb");
    let (ok, v) = plasma(&env, &op, 1, &store, &["in-flight-exit", &paid.to_string()]);
    assert!(!ok, "{v}");
    assert!(error_of(&v).contains("is committed in block"), "{v}");
    let state = ife.inFlightExit(U256::from_be_bytes(paid.0)).call().await.unwrap();
    assert_eq!(state.initiator, Address::ZERO);

    // A block the operator no longer serves may be withheld: then the in-flight exit is what
    // protects the payment, and it is not refused.
    node.stop().await;
    let (ok, v) = plasma(&env, &op, 1, &store, &["in-flight-exit", &paid.to_string()]);
    assert!(ok, "{v}");
    let state = ife.inFlightExit(U256::from_be_bytes(paid.0)).call().await.unwrap();
    assert_eq!(state.initiator, key(&env, 1).address());
}

/// Reads one HTTP request: its target and its body (by `content-length`).
async fn read_request(sock: &mut tokio::net::TcpStream) -> (String, String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    loop {
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0usize);
        if buf.len() >= end + 4 + len {
            let mut words = head.split_whitespace();
            let method = words.next().unwrap_or("GET").to_owned();
            let target = words.next().unwrap_or("/").to_owned();
            return (method, target, buf[end + 4..end + 4 + len].to_vec());
        }
    }
    ("GET".into(), "/".into(), Vec::new())
}

/// A hand-made operator: serves fixed JSON bodies by path (the query string ignored), and
/// `POST /v1/inclusions` from the entries `inclusion/{blknum}/{txIndex}`.
async fn fake_operator(bodies: Arc<Mutex<HashMap<String, Value>>>) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let (method, target, body) = read_request(&mut sock).await;
                let path = target.split('?').next().unwrap_or("/").to_owned();
                let found = if method == "POST" && path == "/v1/inclusions" {
                    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let b = bodies.lock().unwrap();
                    let items: Vec<Value> = req["txs"]
                        .as_array()
                        .unwrap_or(&Vec::new())
                        .iter()
                        .map(|t| {
                            b.get(&format!("inclusion/{}/{}", t["blknum"], t["txIndex"]))
                                .cloned()
                                .unwrap_or_else(|| {
                                    json!({"blknum": t["blknum"], "txIndex": t["txIndex"],
                                    "error": {"code": "UnknownBlock", "message": "no such block"}})
                                })
                        })
                        .collect();
                    Some(json!({"inclusions": items}))
                } else {
                    bodies.lock().unwrap().get(&path).cloned()
                };
                let (status, body) = match found {
                    Some(b) => ("200 OK", b),
                    None => {
                        ("404 Not Found", json!({"error": {"code": "NotFound", "message": path}}))
                    }
                };
                let text = body.to_string();
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

async fn latest_timestamp(provider: &DynProvider) -> u64 {
    provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp
}

async fn watcher(env: &Env, operator_url: String) -> plasma_watcher::Running {
    let key = key(env, 5);
    let me = key.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let settings = plasma_watcher::Settings {
        framework: env.deployment.framework,
        operator_url,
        confirmations: 1,
        poll: Duration::from_millis(50),
        availability_timeout: Duration::from_millis(400),
        process_exits: false,
        deadline_margin: Duration::from_secs(30),
        stuck_after: Duration::from_millis(300),
        l1_block_time: Duration::from_millis(100),
        download: plasma_watcher::DownloadSettings::default(),
    };
    let dir = env.dir.path().join(format!("watcher-{}", rand_suffix()));
    let w = plasma_watcher::Watcher::new(settings, me, provider, &dir).await.unwrap();
    plasma_watcher::start(w, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Issue 13 item 7: a lying operator commits a block that pays the victim out of nothing — a
/// payment creating value, a deposit-type transaction inside a child block, a payment of an
/// output that does not exist — next to one honest payment. Every one is under the L1 root, so
/// the old wallet counted 10.5 ETH as verified; the wallet now counts only the valid 0.5 ETH, and
/// the watcher's verdict (the block is invalid) keeps even that from being called final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_out_of_nothing_under_a_root_is_not_verified() {
    let env = env().await;
    let chain_id = env.anvil.chain_id();
    let domain = SigningDomain::new(chain_id, env.deployment.framework);
    let thief_key = key(&env, 3);
    let thief = Signer::from_bytes(&B256::from(thief_key.to_bytes())).unwrap();
    let victim = key(&env, 2).address();
    let bodies = Arc::new(Mutex::new(HashMap::new()));
    let liar = fake_operator(bodies.clone()).await;

    // The thief's two real deposits (blocks 1 and 2).
    let thief_wallet = Wallet::connect(
        thief_key.clone(),
        &config(&env, liar.clone(), env.dir.path().join("t.redb")),
    )
    .await
    .unwrap();
    let mut deposits = Vec::new();
    for amount in [eth(1), eth(1) / U256::from(2)] {
        let pos = thief_wallet.deposit_eth(amount).await.unwrap();
        let tx = Transaction::deposit(thief_key.address(), Address::ZERO, amount).encode();
        let ts = latest_timestamp(&env.provider).await;
        let blknum = UtxoPos::from_u128(pos).unwrap().blknum();
        bodies.lock().unwrap().insert(
            format!("/v1/blocks/{blknum}"),
            json!({"blknum": blknum, "root": deposit_block_root(&tx), "l1Timestamp": ts, "txs": [hex0x(&tx)]}),
        );
        // A deposit block of one transaction: its proof is the empty tree's siblings.
        let tree = BlockTree::from_txs(std::slice::from_ref(&tx)).unwrap();
        bodies.lock().unwrap().insert(
            format!("inclusion/{blknum}/0"),
            json!({"blknum": blknum, "txIndex": 0, "signedTx": null, "txBytes": hex0x(&tx),
                   "proof": hex0x(&tree.proof(0).unwrap().to_bytes()), "root": tree.root(),
                   "blockTimestamp": ts}),
        );
        deposits.push(pos);
    }

    // The fabricated child block 1000.
    let pay = |input: u128, amount: U256| {
        let tx = Transaction::payment(
            &[UtxoPos::from_u128(input).unwrap()],
            vec![Output::new(victim, Address::ZERO, amount)],
            B256::ZERO,
        );
        let sig = thief.sign_tx(&domain, &tx);
        SignedTransaction::new(tx, vec![sig])
    };
    let txs = [
        pay(deposits[0], eth(5)), // creates value
        SignedTransaction::new(Transaction::deposit(victim, Address::ZERO, eth(3)), vec![]), // deposit type
        pay(deposits[1], eth(1) / U256::from(2)), // valid
        pay(3_000_000_000, eth(2)),               // spends deposit block 3, which does not exist
    ];
    let leaves: Vec<Vec<u8>> = txs.iter().map(|t| t.transaction.encode()).collect();
    let tree = BlockTree::from_txs(&leaves).unwrap();
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let receipt = framework
        .submitBlock(U256::from(1000), tree.root())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let ts = receipt.decoded_log::<PlasmaFramework::BlockSubmitted>().unwrap().timestamp;
    {
        let mut b = bodies.lock().unwrap();
        b.insert(
            "/v1/blocks/1000".into(),
            json!({"blknum": 1000, "root": tree.root(), "l1Timestamp": ts,
                   "txs": txs.iter().map(|t| hex0x(&t.encode())).collect::<Vec<_>>()}),
        );
        let mut list = Vec::new();
        for (i, t) in txs.iter().enumerate() {
            let pos = 1000u128 * 1_000_000_000 + i as u128 * 10_000;
            let out = &t.transaction.outputs[0];
            let exit_data = json!({"utxoPos": pos.to_string(), "blknum": 1000, "txBytes": hex0x(&leaves[i]),
                       "inclusionProof": hex0x(&tree.proof(i).unwrap().to_bytes()),
                       "root": tree.root(), "blockTimestamp": ts});
            list.push(json!({"utxoPos": pos.to_string(), "owner": out.owner, "token": out.token,
                             "amount": out.amount.to_string(), "exitData": exit_data}));
            b.insert(format!("/v1/utxos/{pos}/exit-data"), exit_data);
            b.insert(
                format!("inclusion/1000/{i}"),
                json!({"blknum": 1000, "txIndex": i, "signedTx": hex0x(&t.encode()),
                       "txBytes": hex0x(&leaves[i]),
                       "proof": hex0x(&tree.proof(i).unwrap().to_bytes()), "root": tree.root(),
                       "blockTimestamp": ts}),
            );
        }
        b.insert("/v1/utxos".into(), json!({"utxos": list, "next": null}));
    }

    // A watcher reading the same operator judges block 1000.
    let w = watcher(&env, liar.clone()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while w.watcher.status().byzantine_from != Some(1000) {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", w.watcher.status());
        env.provider.raw_request::<_, Value>("anvil_mine".into(), (1u64,)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let fooled =
        Wallet::connect(key(&env, 2), &config(&env, liar.clone(), env.dir.path().join("v.redb")))
            .await
            .unwrap()
            .with_watchers(vec![format!("http://{}", w.addr)]);
    let report = fooled.sync().await.unwrap();
    assert_eq!((report.added, report.invalid), (4, 3), "{report:?}");
    let half = eth(1) / U256::from(2);
    assert_eq!(fooled.balance(Address::ZERO).unwrap(), half, "only the valid payment counts");
    assert_eq!(fooled.final_balance(Address::ZERO).unwrap(), U256::ZERO, "and it is not final");
    let outputs = fooled.outputs().unwrap();
    let by_index = |i: u128| {
        outputs.iter().find(|o| o.utxo_pos == 1000 * 1_000_000_000 + i * 10_000).unwrap().clone()
    };
    for i in [0, 1, 3] {
        let o = by_index(i);
        assert_eq!(o.status, OutputStatus::Invalid, "tx {i}: {o:?}");
        assert_ne!(o.verification, Verification::ProofTxWatcher);
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["status"], "invalid");
    }
    assert!(by_index(0).problem.unwrap().contains("creates value"));
    assert!(by_index(1).problem.unwrap().contains("deposit-type"));
    assert!(by_index(3).problem.unwrap().contains("not committed"));
    let valid = by_index(2);
    assert_eq!(valid.verification, Verification::ProofTx);
    assert!(valid.problem.unwrap().contains("byzantine from block 1000"));
    assert_eq!(serde_json::to_value(by_index(2)).unwrap()["verification"], "proof+tx");
    // The CLI says the same (the watchers given by the environment, as a user's shell would).
    let watcher_url = format!("http://{}", w.addr);
    let store = env.dir.path().join("v-cli.redb");
    let (ok, v) = plasma_with(
        &env,
        &liar,
        2,
        &store,
        &["balance", "--sync"],
        &[("PLASMA_WATCHERS", &watcher_url)],
    );
    assert!(ok, "{v}");
    assert_eq!(v["balance"], half.to_string(), "not the 10.5 ETH under the root: {v}");
    assert_eq!((v["final"].as_str(), v["unverified"].as_str()), (Some("0"), Some("0")), "{v}");
    // Invalid outputs are not exited either.
    assert!(matches!(
        fooled.start_exits(&[by_index(1).utxo_pos]).await,
        Err(SdkError::OutputInvalid { .. })
    ));
    w.stop().await;
}

/// An honest payment: `proof+tx` from the wallet's own checks, `proof+tx+watcher` (final) once a
/// configured watcher has validated its block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_payment_is_final_once_a_watcher_vouches_for_it() {
    let env = env().await;
    let node = operator(&env).await;
    let w = watcher(&env, format!("http://{}", node.addr)).await;
    let alice = wallet(&env, &node, 1, "alice.redb").await;
    let bob = wallet(&env, &node, 2, "bob.redb").await;
    let dep = alice.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let paid = alice.send(bob.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(20)).await.unwrap();
    let pos = u128::from(blknum) * 1_000_000_000;
    bob.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();
    let o = bob.outputs().unwrap().into_iter().find(|o| o.utxo_pos == pos).unwrap();
    assert_eq!(o.verification, Verification::ProofTx, "checked, no watcher configured");
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(1));
    assert_eq!(bob.final_balance(Address::ZERO).unwrap(), U256::ZERO);

    let bob = bob.with_watchers(vec![format!("http://{}", w.addr)]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        bob.sync().await.unwrap();
        if bob.final_balance(Address::ZERO).unwrap() == eth(1) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{:?}", w.watcher.status());
        env.provider.raw_request::<_, Value>("anvil_mine".into(), (1u64,)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let o = bob.outputs().unwrap().into_iter().find(|o| o.utxo_pos == pos).unwrap();
    assert_eq!(serde_json::to_value(&o).unwrap()["verification"], "proof+tx+watcher");
    w.stop().await;
    node.stop().await;
}
