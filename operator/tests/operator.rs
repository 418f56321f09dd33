//! The operator against a real anvil with the real contracts: deposits, transfers, commitments,
//! proofs checked against L1, refusals, and restarts.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::Provider,
    sol_types::SolValue,
};
use plasma_contracts::PlasmaFramework;
use plasma_operator::{Config, Node};
use plasma_spec::{
    Output, Proof, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos, leaf_hash,
};
use serde_json::{Value, json};
use std::{path::PathBuf, time::Duration};

mod common;
use common::Api;

type Env = common::devnet::Chain;

async fn env() -> Env {
    common::devnet::chain().await
}

fn config(env: &Env, data_dir: &std::path::Path) -> Config {
    common::devnet::devnet_config(&env.anvil, env.deployment.framework, data_dir)
}

async fn deposit(env: &Env, owner: &Signer, amount: U256) -> UtxoPos {
    common::deposit_eth(&env.provider, env.deployment.framework, owner.address(), amount).await
}

fn utxo_count(v: &Value) -> usize {
    v["utxos"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_transfer_commit_and_prove_against_l1() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(&env, dir.path())).await.unwrap();
    let api = Api::new(&node);
    assert_eq!(api.get("/health").await.0, 200);

    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    let alice = env.alice.address();
    api.wait_for(&format!("/v1/utxos?owner={alice}"), |v| utxo_count(v) == 1).await;

    // alice pays bob 0.6 with 0.39 change and a 0.01 fee.
    let tx = Transaction::payment(
        &[dep],
        vec![
            Output::new(env.bob.address(), Address::ZERO, eth * U256::from(6) / U256::from(10)),
            Output::new(alice, Address::ZERO, eth * U256::from(39) / U256::from(100)),
        ],
        B256::ZERO,
    );
    let signed = SignedTransaction::new(tx.clone(), vec![env.alice.sign_tx(&env.domain, &tx)]);
    let (status, body) = api.submit(&signed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["txHash"].as_str().unwrap().parse::<B256>().unwrap(), tx.hash());

    // Spending the same deposit again is refused while the first is pending, and after.
    let double =
        Transaction::payment(&[dep], vec![Output::new(alice, Address::ZERO, eth)], B256::ZERO);
    let double =
        SignedTransaction::new(double.clone(), vec![env.alice.sign_tx(&env.domain, &double)]);
    let (status, body) = api.submit(&double).await;
    assert_eq!(status, 422);
    assert!(
        matches!(body["error"]["code"].as_str(), Some("MempoolConflict" | "InputNotFound")),
        "{body}"
    );

    let path = format!("/v1/transactions/{}", tx.hash());
    let info = api.wait_for(&path, |v| v["status"] == "committed").await;
    let blknum = info["blknum"].as_u64().unwrap();
    assert_eq!(blknum, 1000);

    // The proof the operator serves verifies against the commitment on L1.
    let proof = Proof::from_bytes(
        &hex::decode(info["proof"].as_str().unwrap().trim_start_matches("0x")).unwrap(),
    )
    .unwrap();
    let root: B256 = info["root"].as_str().unwrap().parse().unwrap();
    assert!(proof.verify(
        leaf_hash(&tx.encode()),
        info["txIndex"].as_u64().unwrap() as usize,
        root
    ));
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let commitment = framework.blockCommitments(U256::from(blknum)).call().await.unwrap();
    let ts = info["blockTimestamp"].as_u64().unwrap();
    assert_eq!(commitment, keccak256((root, U256::from(ts)).abi_encode()));

    // The fee went to the operator in a fee transaction; bob's output has exit data.
    let (_, block) = api.get(&format!("/v1/blocks/{blknum}")).await;
    assert_eq!(block["txs"].as_array().unwrap().len(), 2);
    let bob_pos = UtxoPos::new(blknum, 0, 0).unwrap();
    let (status, exit) = api.get(&format!("/v1/utxos/{}/exit-data", bob_pos.to_u128())).await;
    assert_eq!(status, 200, "{exit}");
    assert_eq!(exit["blockTimestamp"].as_u64(), Some(ts));
    let (_, again) = api.submit(&double).await;
    assert_eq!(again["error"]["code"], "InputNotFound");

    node.stop().await;
}

/// A first start on a long L1 — here the genesis block is number 20,000, ten of the followers'
/// 2,000-block log ranges; a public chain has millions of blocks before a deployment — reads
/// logs from the framework's `deploymentBlock()` on, never from genesis: every `eth_getLogs`
/// starts at or above it, and the deposit is credited as on a fresh devnet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_reads_l1_from_the_deployment_block() {
    let env =
        common::devnet::chain_on(plasma_contracts::devnet::anvil().args(["--number", "20000"]))
            .await;
    let created = PlasmaFramework::new(env.deployment.framework, env.provider.clone())
        .deploymentBlock()
        .call()
        .await
        .unwrap();
    assert!(created > 20_000, "created at {created}");
    let (proxy, lowest) =
        plasma_contracts::rpc_proxy::start_logs_from(env.anvil.endpoint()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&env, dir.path());
    c.l1.rpc_url = proxy;
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);
    deposit(&env, &env.alice, U256::from(5)).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.alice.address()), |v| utxo_count(v) == 1).await;
    let lowest = lowest.load(std::sync::atomic::Ordering::SeqCst);
    assert!(lowest != u64::MAX, "the operator read no logs through the proxy");
    assert!(
        lowest >= created,
        "a log read started at block {lowest}, below the deployment at {created}"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_input_with_typed_errors() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&env, dir.path());
    // A small limit, so an oversized body still fits the socket buffers: the client finishes
    // sending and reads the 413 instead of racing the server's close.
    c.api.max_body_bytes = 16 * 1024;
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);
    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.alice.address()), |v| utxo_count(v) == 1).await;

    // Signed by bob, but alice owns the input.
    let tx = Transaction::payment(
        &[dep],
        vec![Output::new(env.bob.address(), Address::ZERO, eth)],
        B256::ZERO,
    );
    let forged = SignedTransaction::new(tx.clone(), vec![env.bob.sign_tx(&env.domain, &tx)]);
    let (status, body) = api.submit(&forged).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("WrongSigner")), "{body}");
    // bob owns nothing here: the refusal says a wrong signing domain is the likely cause.
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("another chain id or verifying contract"), "{message}");

    // Value created.
    let greedy = Transaction::payment(
        &[dep],
        vec![Output::new(env.bob.address(), Address::ZERO, eth * U256::from(2))],
        B256::ZERO,
    );
    let greedy =
        SignedTransaction::new(greedy.clone(), vec![env.alice.sign_tx(&env.domain, &greedy)]);
    assert_eq!(api.submit(&greedy).await.1["error"]["code"], "ValueCreated");

    // Malformed JSON, bad hex, undecodable bytes, unknown fields, huge bodies.
    assert_eq!(
        api.post("/v1/transactions", b"{not json".to_vec()).await.1["error"]["code"],
        "MalformedJson"
    );
    assert_eq!(
        api.post("/v1/transactions", br#"{"tx":"0xzz"}"#.to_vec()).await.1["error"]["code"],
        "MalformedHex"
    );
    let (status, body) = api.post("/v1/transactions", br#"{"tx":"0x0102"}"#.to_vec()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("Malformed")));
    assert_eq!(
        api.post("/v1/transactions", br#"{"tx":"0x","x":1}"#.to_vec()).await.1["error"]["code"],
        "MalformedJson"
    );
    let huge = vec![b' '; 32 * 1024];
    assert_eq!(api.post("/v1/transactions", huge).await.0, 413);
    // The server drops that connection unread; continue on a fresh client, not the pooled one.
    let api = Api::new(&node);
    assert_eq!(api.get("/v1/utxos?owner=nope").await.1["error"]["code"], "MalformedAddress");
    assert_eq!(api.get("/v1/transactions/0x12").await.1["error"]["code"], "MalformedHash");
    assert_eq!(api.get("/nowhere").await.0, 404);

    // Nothing was accepted by any of that.
    let (_, status) = api.get("/v1/status").await;
    assert_eq!(status["chain"]["mempoolSize"], 0);
    // Three reached the chain's rules (wrong signer, value created, undecodable); the rest were
    // refused by the API before that.
    let metrics =
        reqwest::get(format!("{}/metrics", api.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("plasma_operator_txs_rejected_total 3"), "{metrics}");
    assert!(metrics.contains("plasma_operator_txs_accepted_total 0"), "{metrics}");
    let (status, doc) = api.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["paths"]["/v1/transactions"].is_object());

    // Signed by the owner for another chain id: named (SIG-4 recovers someone else).
    let mainnet = SigningDomain::new(1, env.deployment.framework);
    let elsewhere = SignedTransaction::new(tx.clone(), vec![env.alice.sign_tx(&mainnet, &tx)]);
    let (status, body) = api.submit(&elsewhere).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("WrongSigner")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("for chain id 1;"), "{message}");
    // For another verifying contract: the likely cause, not a certainty.
    let other = SigningDomain::new(env.anvil.chain_id(), Address::repeat_byte(7));
    let elsewhere = SignedTransaction::new(tx.clone(), vec![env.alice.sign_tx(&other, &tx)]);
    let message = api.submit(&elsewhere).await.1["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("likely made for another chain id or verifying contract"),
        "{message}"
    );
    // The wrong key of someone who owns outputs here: no hint (a wrong domain is not the likely
    // cause).
    deposit(&env, &env.bob, eth).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.bob.address()), |v| utxo_count(v) == 1).await;
    let (status, body) = api.submit(&forged).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("WrongSigner")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.contains("chain id"), "{message}");

    // Undocumented methods: 405 with Allow, the typed JSON error; a path number that is not one:
    // 400; an unknown path: 404 — from the document's route table.
    let r = api.http.delete(format!("{}/v1/transactions", api.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "MethodNotAllowed");
    let r = api.http.get(format!("{}/v1/transactions/batch", api.base)).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["allow"].to_str().unwrap()), (405, "POST"));
    for path in ["/v1/blocks/abc", "/v1/blocks/-1/availability", "/v1/blocks/18446744073709551616"]
    {
        let (status, body) = api.get(path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("MalformedParameter")),
            "{path}"
        );
    }
    assert_eq!(api.get("/v1/blocks/abc/nothing").await.1["error"]["code"], "NotFound");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_without_losing_or_resubmitting() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let eth = U256::from(10).pow(U256::from(18));
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());

    let node = Node::start(config(&env, dir.path())).await.unwrap();
    let api = Api::new(&node);
    let dep = deposit(&env, &env.alice, eth).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.alice.address()), |v| utxo_count(v) == 1).await;
    let tx = Transaction::payment(
        &[dep],
        vec![Output::new(env.bob.address(), Address::ZERO, eth)],
        B256::ZERO,
    );
    let signed = SignedTransaction::new(tx.clone(), vec![env.alice.sign_tx(&env.domain, &tx)]);
    assert_eq!(api.submit(&signed).await.0, 200);
    api.wait_for(&format!("/v1/transactions/{}", tx.hash()), |v| v["status"] == "committed").await;
    node.stop().await;
    let next_on_l1 = framework.nextChildBlock().call().await.unwrap();

    // Start again on the same data directory.
    let node = Node::start(config(&env, dir.path())).await.unwrap();
    let api = Api::new(&node);
    let (_, bob_utxos) = api.get(&format!("/v1/utxos?owner={}", env.bob.address())).await;
    assert_eq!(utxo_count(&bob_utxos), 1);
    let (_, info) = api.get(&format!("/v1/transactions/{}", tx.hash())).await;
    assert_eq!(info["status"], "committed");
    // A new transaction goes into the next block; the old root is not sent again.
    let bob_pos = UtxoPos::new(1000, 0, 0).unwrap();
    let tx2 = Transaction::payment(
        &[bob_pos],
        vec![Output::new(env.alice.address(), Address::ZERO, eth)],
        B256::ZERO,
    );
    let signed2 = SignedTransaction::new(tx2.clone(), vec![env.bob.sign_tx(&env.domain, &tx2)]);
    assert_eq!(api.submit(&signed2).await.0, 200);
    let info2 = api
        .wait_for(&format!("/v1/transactions/{}", tx2.hash()), |v| v["status"] == "committed")
        .await;
    assert_eq!(info2["blknum"], 2000);
    assert_eq!(framework.nextChildBlock().call().await.unwrap(), next_on_l1 + 1000);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_reorged_away_before_its_depth_is_never_credited() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&env, dir.path());
    c.l1.deposit_confirmations = 3;
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);
    let eth = U256::from(10).pow(U256::from(18));
    let alice = env.alice.address();

    // A deposit that L1 keeps: credited once 3 blocks deep, not before.
    deposit(&env, &env.alice, eth).await;
    let kept_at = env.provider.get_block_number().await.unwrap();
    api.wait_for("/v1/status", |v| v["chain"]["depositCursor"].as_u64() == Some(kept_at - 2)).await;
    assert_eq!(utxo_count(&api.get(&format!("/v1/utxos?owner={alice}")).await.1), 0);
    env.provider.raw_request::<_, Value>("anvil_mine".into(), (2u64,)).await.unwrap();
    api.wait_for(&format!("/v1/utxos?owner={alice}"), |v| utxo_count(v) == 1).await;

    // A second deposit, then L1 reorganises its block away (replaced by an empty one).
    deposit(&env, &env.alice, eth).await;
    let gone_at = env.provider.get_block_number().await.unwrap();
    env.provider
        .raw_request::<_, Value>("anvil_reorg".into(), (1u64, Vec::<Value>::new()))
        .await
        .unwrap();
    env.provider.raw_request::<_, Value>("anvil_mine".into(), (5u64,)).await.unwrap();
    api.wait_for("/v1/status", |v| v["chain"]["depositCursor"].as_u64() >= Some(gone_at + 2)).await;
    assert_eq!(
        utxo_count(&api.get(&format!("/v1/utxos?owner={alice}")).await.1),
        1,
        "the reorged deposit was credited"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_submissions_are_replaced_never_duplicated() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&env, dir.path());
    c.l1.stuck_after_ms = 150;
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);
    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.alice.address()), |v| utxo_count(v) == 1).await;

    // L1 stops mining: the root submission sits in the pool, and gets re-sent with higher fees.
    env.provider.raw_request::<_, Value>("evm_setAutomine".into(), (false,)).await.unwrap();
    let tx = Transaction::payment(
        &[dep],
        vec![Output::new(env.bob.address(), Address::ZERO, eth)],
        B256::ZERO,
    );
    let signed = SignedTransaction::new(tx.clone(), vec![env.alice.sign_tx(&env.domain, &tx)]);
    assert_eq!(api.submit(&signed).await.0, 200);
    api.wait_for("/v1/status", |v| v["l1"]["submissionsSent"].as_u64() >= Some(3)).await;

    // Mining resumes: exactly one of the submissions lands.
    env.provider.raw_request::<_, Value>("evm_setAutomine".into(), (true,)).await.unwrap();
    env.provider.raw_request::<_, Value>("anvil_mine".into(), (1u64,)).await.unwrap();
    api.wait_for(&format!("/v1/transactions/{}", tx.hash()), |v| v["status"] == "committed").await;
    env.provider.raw_request::<_, Value>("anvil_mine".into(), (3u64,)).await.unwrap();
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    assert_eq!(
        framework.nextChildBlock().call().await.unwrap(),
        2000,
        "block 1000 was committed more than once"
    );
    node.stop().await;
}

/// The real binary, killed with SIGKILL while a transaction it acknowledged is still pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_transactions_survive_kill_9() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let spawn = |interval_ms: u64| {
        let file = dir.path().join(format!("operator-{interval_ms}.toml"));
        std::fs::write(
            &file,
            format!(
                "devnet = true\ndata_dir = {:?}\nlisten = \"127.0.0.1:{port}\"\n[l1]\nrpc_url = \"{}\"\nframework = \"{}\"\npoll_interval_ms = 50\n[block]\ninterval_ms = {interval_ms}\n",
                dir.path().join("data"),
                env.anvil.endpoint(),
                env.deployment.framework
            ),
        )
        .unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_plasma-operator"))
            .args(["run", "--config"])
            .arg(&file)
            .env(
                "PLASMA_OPERATOR_L1_PRIVATE_KEY",
                format!("0x{}", hex::encode(env.anvil.keys()[0].to_bytes())),
            )
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap()
    };
    let api = Api { base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() };
    let healthy = || async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while api.http.get(format!("{}/health", api.base)).send().await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "operator did not come up");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };

    // First life: blocks only every hour, so the acknowledged transaction stays pending.
    let mut child = spawn(3_600_000);
    healthy().await;
    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.alice.address()), |v| utxo_count(v) == 1).await;
    let tx = Transaction::payment(
        &[dep],
        vec![Output::new(env.bob.address(), Address::ZERO, eth)],
        B256::ZERO,
    );
    let signed = SignedTransaction::new(tx.clone(), vec![env.alice.sign_tx(&env.domain, &tx)]);
    assert_eq!(api.submit(&signed).await.0, 200);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Second life: the transaction is still there and makes it into block 1000, committed once.
    let mut child = spawn(100);
    healthy().await;
    let (_, info) = api.get(&format!("/v1/transactions/{}", tx.hash())).await;
    assert!(
        info["status"] == "pending"
            || info["status"] == "included"
            || info["status"] == "committed",
        "{info}"
    );
    let info = api
        .wait_for(&format!("/v1/transactions/{}", tx.hash()), |v| v["status"] == "committed")
        .await;
    assert_eq!(info["blknum"], 1000);
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    assert_eq!(framework.nextChildBlock().call().await.unwrap(), 2000);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A loopback TCP proxy to anvil that can be cut (refusing new connections and dropping open
/// ones), to make the L1 RPC fail and come back.
async fn cuttable_proxy(target: String) -> (String, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (up, watch) = tokio::sync::watch::channel(true);
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else { return };
            if !*watch.borrow() {
                continue; // refused: dropped at once
            }
            let target = target.clone();
            let mut watch = watch.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else { return };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = watch.wait_for(|up| !*up) => {} // cut: drop both ends
                }
            });
        }
    });
    (format!("http://{addr}"), up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_from_l1_rpc_failures() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let (proxy, up) =
        cuttable_proxy(env.anvil.endpoint().trim_start_matches("http://").to_owned()).await;
    let mut c = config(&env, dir.path());
    c.l1.rpc_url = proxy;
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);
    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.alice.address()), |v| utxo_count(v) == 1).await;

    up.send_replace(false);
    let tx = Transaction::payment(
        &[dep],
        vec![Output::new(env.bob.address(), Address::ZERO, eth)],
        B256::ZERO,
    );
    let signed = SignedTransaction::new(tx.clone(), vec![env.alice.sign_tx(&env.domain, &tx)]);
    assert_eq!(api.submit(&signed).await.0, 200, "the API keeps accepting while L1 is down");
    api.wait_for("/v1/status", |v| v["l1"]["lastError"].is_string()).await;
    let (_, info) = api.get(&format!("/v1/transactions/{}", tx.hash())).await;
    assert_ne!(info["status"], "committed");

    up.send_replace(true);
    api.wait_for(&format!("/v1/transactions/{}", tx.hash()), |v| v["status"] == "committed").await;
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    assert_eq!(framework.nextChildBlock().call().await.unwrap(), 2000);
    node.stop().await;
}

/// The operator key from a Web3 Secret Storage keystore written by Foundry's `cast`.
#[test]
fn loads_the_operator_key_from_a_cast_keystore() {
    let dir = tempfile::tempdir().unwrap();
    let cast = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/cast");
    let out = std::process::Command::new(cast)
        .args(["wallet", "new"])
        .arg(dir.path())
        .args(["--unsafe-password", "correct horse"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let address: Address =
        text.lines().find_map(|l| l.strip_prefix("Address:")).unwrap().trim().parse().unwrap();
    let keystore = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
    let password = dir.path().join("password");
    std::fs::write(&password, "correct horse\n").unwrap();

    let mut c = Config::default();
    c.l1.keystore = Some(keystore);
    c.l1.keystore_password_file = Some(password.clone());
    assert_eq!(c.signer().unwrap().address(), address);
    std::fs::write(&password, "wrong").unwrap();
    assert!(matches!(c.signer(), Err(plasma_operator::ConfigError::Key(_))));
}

// ------------------------------------------------------------------------------------------------
// L1 moving under the operator (issue 12 item 6): one root committed twice, commitments moved or
// dropped by a reorg, deposits swapped by a reorg.

async fn anvil(env: &Env, method: &str, params: Value) -> Value {
    env.provider.raw_request::<_, Value>(method.to_owned().into(), params).await.unwrap()
}

/// A JSON-RPC proxy to anvil that, while the returned flag is set, mines a block before it
/// forwards an `eth_getTransactionCount`: the moment a submission in the pool lands between the
/// submitter's reads of `nextChildBlock` and of its nonce.
async fn mining_proxy(target: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::{Arc, atomic::AtomicBool};
    use warp::Filter;
    let mine = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::new();
    let flag = mine.clone();
    let route = warp::post().and(warp::body::bytes()).then(move |body: bytes::Bytes| {
        let (http, target, flag) = (http.clone(), target.clone(), flag.clone());
        async move {
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if flag.load(std::sync::atomic::Ordering::SeqCst)
                && request["method"] == "eth_getTransactionCount"
            {
                let evm_mine =
                    json!({"jsonrpc": "2.0", "id": 0, "method": "evm_mine", "params": []});
                let _ = http.post(&target).json(&evm_mine).send().await;
            }
            // After the test ends anvil is gone: answer an error instead of panicking.
            let answer = match http
                .post(&target)
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
                .await
            {
                Ok(r) => r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            warp::http::Response::builder()
                .header("content-type", "application/json")
                .body(answer)
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (format!("http://{addr}"), mine)
}

/// Every `BlockSubmitted` on L1 so far: (blknum, root).
async fn submitted(env: &Env) -> Vec<(u64, B256)> {
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let logs = framework.BlockSubmitted_filter().from_block(0).query().await.unwrap();
    logs.into_iter().map(|(e, _)| (e.blknum.to::<u64>(), e.root)).collect()
}

fn pay(env: &Env, from: &Signer, input: UtxoPos, to: Address, amount: U256) -> SignedTransaction {
    let tx =
        Transaction::payment(&[input], vec![Output::new(to, Address::ZERO, amount)], B256::ZERO);
    SignedTransaction::new(tx.clone(), vec![from.sign_tx(&env.domain, &tx)])
}

/// OP-4: the submitter's first attempt lands while it re-reads L1 to bump the fee. The old
/// submitter read `nextChildBlock` (still 1000), then the nonce (already past the attempt), and
/// sent the same root again: L1 recorded it as block 1000 and 2000, and the operator's real
/// block 2000 then hit `RootMismatch` and the chain stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_bump_racing_the_landed_attempt_commits_the_root_once() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let (proxy, mine_before_nonce) = mining_proxy(env.anvil.endpoint()).await;
    let mut c = config(&env, dir.path());
    c.l1.rpc_url = proxy;
    c.l1.stuck_after_ms = 300;
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);
    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.alice.address()), |v| utxo_count(v) == 1).await;

    // L1 mines only when the proxy does: the first attempt waits in the pool until the
    // submitter reads its nonce again to bump the fee.
    anvil(&env, "evm_setAutomine", json!([false])).await;
    mine_before_nonce.store(true, std::sync::atomic::Ordering::SeqCst);
    let first = pay(&env, &env.alice, dep, env.bob.address(), eth);
    assert_eq!(api.submit(&first).await.0, 200);
    let path = format!("/v1/transactions/{}", first.transaction.hash());
    api.wait_for(&path, |v| v["status"] == "committed").await;
    mine_before_nonce.store(false, std::sync::atomic::Ordering::SeqCst);
    // Whatever is still in the pool lands now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    anvil(&env, "evm_setAutomine", json!([true])).await;
    anvil(&env, "anvil_mine", json!([2])).await;

    let (_, block) = api.get("/v1/blocks/1000").await;
    let root: B256 = block["root"].as_str().unwrap().parse().unwrap();
    assert_eq!(submitted(&env).await, vec![(1000, root)], "the root was committed more than once");

    // The chain goes on: bob's payment is block 2000, with its own root.
    let second = pay(&env, &env.bob, UtxoPos::new(1000, 0, 0).unwrap(), env.alice.address(), eth);
    assert_eq!(api.submit(&second).await.0, 200);
    let info = api
        .wait_for(&format!("/v1/transactions/{}", second.transaction.hash()), |v| {
            v["status"] == "committed"
        })
        .await;
    assert_eq!(info["blknum"], 2000);
    assert_eq!(submitted(&env).await.len(), 2);
    node.stop().await;
}

/// OP-4: a recorded commitment is followed until final. An L1 reorg that mines it again in a
/// later block changes its timestamp (exit data must carry the new one, MERKLE-6); one that drops
/// it makes the operator submit it again (it used to stay "committed" while L1 expected block
/// 1000 again, and every later block failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commitments_moved_or_dropped_by_a_reorg_are_followed() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(&env, dir.path())).await.unwrap();
    let api = Api::new(&node);
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let eth = U256::from(10).pow(U256::from(18));
    let dep = deposit(&env, &env.alice, eth).await;
    api.wait_for(&format!("/v1/utxos?owner={}", env.alice.address()), |v| utxo_count(v) == 1).await;
    // The commitment's L1 block comes 1000 s after its parent; anvil gives a reorg's new blocks
    // their parent's time plus one, so the commitment moves to an earlier time.
    anvil(&env, "evm_increaseTime", json!([1000])).await;
    let first = pay(&env, &env.alice, dep, env.bob.address(), eth);
    assert_eq!(api.submit(&first).await.0, 200);
    api.wait_for(&format!("/v1/transactions/{}", first.transaction.hash()), |v| {
        v["status"] == "committed"
    })
    .await;
    let bob_pos = UtxoPos::new(1000, 0, 0).unwrap();
    let exit_path = format!("/v1/utxos/{}/exit-data", bob_pos.to_u128());
    let before = api.get(&exit_path).await.1["blockTimestamp"].as_u64().unwrap();

    // Moved: the commitment is mined again, in the second of two new blocks.
    let logs = framework.BlockSubmitted_filter().from_block(0).query().await.unwrap();
    let submission = logs[0].1.transaction_hash.unwrap();
    let raw: alloy::primitives::Bytes = env
        .provider
        .raw_request("eth_getRawTransactionByHash".into(), (submission,))
        .await
        .unwrap();
    let mined_in = env
        .provider
        .get_transaction_receipt(submission)
        .await
        .unwrap()
        .unwrap()
        .block_number
        .unwrap();
    anvil(&env, "anvil_mine", json!([1])).await;
    let head = env.provider.get_block_number().await.unwrap();
    anvil(&env, "anvil_reorg", json!([head - mined_in + 1, [[raw, 1]]])).await;
    let logs = framework.BlockSubmitted_filter().from_block(0).query().await.unwrap();
    assert_eq!(logs.len(), 1);
    let moved = logs[0].0.timestamp;
    assert_ne!(moved, before, "the reorg moved the commitment to another time");
    let served = api.wait_for(&exit_path, |v| v["blockTimestamp"].as_u64() == Some(moved)).await;
    let root: B256 = served["root"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        framework.blockCommitments(U256::from(1000)).call().await.unwrap(),
        keccak256((root, U256::from(moved)).abi_encode()),
        "the exit data matches L1's commitment (MERKLE-6)"
    );

    // Dropped: a reorg replaces the commitment's block by an empty one.
    let mined_in = framework.BlockSubmitted_filter().from_block(0).query().await.unwrap()[0]
        .1
        .block_number
        .unwrap();
    let head = env.provider.get_block_number().await.unwrap();
    anvil(&env, "anvil_reorg", json!([head - mined_in + 1, []])).await;
    anvil(&env, "anvil_mine", json!([1])).await;
    // The operator submits block 1000 again, then goes on with block 2000.
    let second = pay(&env, &env.bob, bob_pos, env.alice.address(), eth);
    assert_eq!(api.submit(&second).await.0, 200);
    let info = api
        .wait_for(&format!("/v1/transactions/{}", second.transaction.hash()), |v| {
            v["status"] == "committed"
        })
        .await;
    assert_eq!(info["blknum"], 2000);
    let blocks: Vec<u64> = submitted(&env).await.into_iter().map(|(b, _)| b).collect();
    assert_eq!(blocks, vec![1000, 2000]);
    // L1 holds block 1000 with the timestamp the operator serves for it.
    let (_, block) = api.get("/v1/blocks/1000").await;
    let stamp = block["l1Timestamp"].as_u64().unwrap();
    assert_eq!(
        framework.blockCommitments(U256::from(1000)).call().await.unwrap(),
        keccak256((root, U256::from(stamp)).abi_encode())
    );
    node.stop().await;
}

/// LEDGER-7: a reorg swaps two deposits. The operator had credited alice's as deposit block 1;
/// L1 now has bob's there and alice's as block 2. The old operator skipped block 1 by number and
/// credited block 2 to alice again: alice twice, bob never. It must halt instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_swapped_by_a_reorg_halt_block_production() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&env, dir.path());
    c.l1.deposit_confirmations = 2;
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);
    let eth = U256::from(10).pow(U256::from(18));
    let (alice, bob) = (env.alice.address(), env.bob.address());

    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let send = |owner: &Signer, amount: U256| {
        let tx = Transaction::deposit(owner.address(), Address::ZERO, amount).encode();
        // A fixed gas limit: replayed in the other order, the estimate would fall short.
        let call = framework.depositEth(tx.into()).value(amount).from(owner.address()).gas(300_000);
        async move { call.send().await.unwrap().get_receipt().await.unwrap() }
    };
    let a = send(&env.alice, eth).await;
    let b = send(&env.bob, eth * U256::from(2)).await;
    let alice_at = a.block_number.unwrap();
    assert_eq!(b.block_number.unwrap(), alice_at + 1);
    // Alice's deposit is 2 deep and credited; bob's is not yet.
    api.wait_for(&format!("/v1/utxos?owner={alice}"), |v| utxo_count(v) == 1).await;
    assert_eq!(api.get("/v1/status").await.1["chain"]["depositCursor"], alice_at);

    // The reorg: bob's deposit first (block 1), alice's second (block 2).
    let raw = |hash: B256| {
        let provider = env.provider.clone();
        async move {
            provider
                .raw_request::<_, alloy::primitives::Bytes>(
                    "eth_getRawTransactionByHash".into(),
                    (hash,),
                )
                .await
                .unwrap()
        }
    };
    let (raw_a, raw_b) = (raw(a.transaction_hash).await, raw(b.transaction_hash).await);
    anvil(&env, "anvil_reorg", json!([2, [[raw_b, 0], [raw_a, 1]]])).await;
    anvil(&env, "anvil_mine", json!([3])).await;
    let on_l1: Vec<(Address, u64)> = framework
        .DepositCreated_filter()
        .from_block(0)
        .query()
        .await
        .unwrap()
        .into_iter()
        .map(|(e, _)| (e.owner, e.blknum.to::<u64>()))
        .collect();
    assert_eq!(on_l1, vec![(bob, 1), (alice, 2)], "the reorg swapped the deposits");

    let status = api.wait_for("/v1/status", |v| !v["l1"]["halt"].is_null()).await;
    assert_eq!(status["l1"]["halt"]["code"], "DepositChanged", "{status}");
    assert_eq!(status["l1"]["halt"]["blknum"], 1);
    assert_eq!(utxo_count(&api.get(&format!("/v1/utxos?owner={alice}")).await.1), 1);
    assert_eq!(utxo_count(&api.get(&format!("/v1/utxos?owner={bob}")).await.1), 0);

    // No block is built on it: a payment is refused at once, with the halt named, and nothing is
    // acknowledged that could never be included.
    let spend = pay(&env, &env.alice, UtxoPos::new(1, 0, 0).unwrap(), bob, eth);
    let (code, body) = api.submit(&spend).await;
    assert_eq!((code, body["error"]["code"].as_str()), (503, Some("OperatorHalted")), "{body}");
    let (code, _) = api.get(&format!("/v1/transactions/{}", spend.transaction.hash())).await;
    assert_eq!(code, 404, "not acknowledged");
    assert_eq!(framework.nextChildBlock().call().await.unwrap(), 1000);
    node.stop().await;

    // The halt survives a restart.
    let mut c = config(&env, dir.path());
    c.l1.deposit_confirmations = 2;
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);
    let status = api.wait_for("/v1/status", |v| !v["l1"]["halt"].is_null()).await;
    assert_eq!(status["l1"]["halt"]["code"], "DepositChanged");
    assert_eq!(utxo_count(&api.get(&format!("/v1/utxos?owner={alice}")).await.1), 1);
    node.stop().await;
}

/// A produced block's root goes to L1 at once and is recorded as soon as it is mined, not at the
/// submitter's next poll: with a poll of ten minutes, two blocks produced one after the other
/// are each committed within the test's timeout. (Before, a block waited up to a poll to be sent
/// and another to be recorded: 500 ms each by default.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produced_block_is_committed_without_waiting_for_the_poll() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&env, dir.path());
    config.l1.poll_interval_ms = 600_000;
    config.block.interval_ms = 3_600_000; // blocks are produced by this test
    let node = Node::start(config).await.unwrap();
    for expected in [1000u64, 2000] {
        let block = node.chain.produce_block_for_deposits(100).unwrap().unwrap();
        assert_eq!(block.blknum, expected);
        tokio::time::timeout(Duration::from_secs(60), async {
            while node.chain.status().uncommitted_blocks.contains(&block.blknum) {
                // Polled: the chain publishes no event when a root is recorded.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("block {expected} not committed within a minute"));
    }
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    assert_eq!(framework.nextChildBlock().call().await.unwrap(), 3000);
    node.stop().await;
}

/// OP-4: blocks produced while L1 does not mine are committed together, by one `submitBlocks`
/// transaction replacing the stuck attempt that carried the first alone. One block per
/// transaction, each waiting for the one before to be mined, committed at most one block per L1
/// block: an operator producing faster than that (a full block every ~2.6 s at 25k tx/s, one L1
/// block every 12 s) fell further behind L1 without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_produced_while_l1_stalls_are_committed_in_one_transaction() {
    let env = env().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&env, dir.path());
    c.l1.stuck_after_ms = 150;
    c.block.interval_ms = 3_600_000; // blocks are produced by this test
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);
    anvil(&env, "evm_setAutomine", json!([false])).await;
    let mut roots = Vec::new();
    for expected in [1000u64, 2000, 3000, 4000] {
        let block = node.chain.produce_block_for_deposits(100).unwrap().unwrap();
        assert_eq!(block.blknum, expected);
        roots.push((expected, block.root));
    }
    // Two more sends after the fourth block exists: the last one carries all four.
    let sent = |v: &Value| v["l1"]["submissionsSent"].as_u64().unwrap_or(0);
    let before = sent(&api.get("/v1/status").await.1);
    api.wait_for("/v1/status", |v| sent(v) >= before + 2).await;
    anvil(&env, "evm_setAutomine", json!([true])).await;
    anvil(&env, "anvil_mine", json!([1])).await;
    api.wait_for("/v1/status", |v| {
        v["chain"]["uncommittedBlocks"].as_array().is_some_and(Vec::is_empty)
    })
    .await;

    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    assert_eq!(framework.nextChildBlock().call().await.unwrap(), 5000);
    let logs = framework.BlockSubmitted_filter().from_block(0).query().await.unwrap();
    let on_l1: Vec<(u64, B256)> =
        logs.iter().map(|(e, _)| (e.blknum.to::<u64>(), e.root)).collect();
    assert_eq!(on_l1, roots, "each block committed once, with its root");
    let txs: std::collections::BTreeSet<_> =
        logs.iter().map(|(_, log)| log.transaction_hash.unwrap()).collect();
    assert_eq!(txs.len(), 1, "the four blocks were committed by one transaction: {txs:?}");
    // The operator recorded each with the L1 transaction and timestamp L1 gave it.
    for (blknum, _) in &roots {
        let info = node.chain.block_info(*blknum).unwrap().unwrap();
        assert_eq!(info.l1_tx, txs.first().copied(), "block {blknum}");
        assert_eq!(info.l1_timestamp, Some(logs[0].0.timestamp), "block {blknum}");
    }
    node.stop().await;
}
