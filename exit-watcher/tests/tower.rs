//! Issue 17: the watcher as a tower, against a real anvil with the real contracts. The test plays
//! the operator: it builds a block's wire bytes (`plasma_spec::wire::encode_block`), cuts them
//! into chunks signed with the operator key (`plasma_da::envelopes`), PUTs them to the towers and
//! commits the root on L1 with the operator key — and never serves the block.
//!
//! - a tower stores its chunk, answers a signed receipt, serves it back, refuses every malformed
//!   or foreign chunk with its typed code, names an equivocation and a header that contradicts
//!   L1, and keeps all of it across a restart;
//! - three of five towers (k = 3; two towers absent) rebuild a committed block the operator does
//!   not serve: the watchers validate it (no withheld block, no byzantine chain) and serve its
//!   exit data, whose proof verifies against L1, to the SDK's own client;
//! - with only k − 1 good chunks (the others missing, tampered, or under another root) the block
//!   is withheld as before, and every bad chunk is named.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::{Provider, ProviderBuilder},
    sol_types::SolValue,
};
use plasma_contracts::PlasmaFramework;
use plasma_da::{ChunkEnvelope, Params, Receipt};
use plasma_spec::{
    BlockTree, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos,
    test_utils::{pay_eth, pos},
    wire,
};
use plasma_testkit::{Env, env, key};
use plasma_watcher::{Event, FaultKind, Running, Settings, TowerSettings, Watcher};
use serde_json::{Value, json};
use std::{path::PathBuf, time::Duration};
use tokio::net::TcpListener;

/// Logs with `RUST_LOG` (e.g. `watcher::da=debug`).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn signer(env: &Env, i: usize) -> Signer {
    Signer::from_bytes(&key(env, i).to_bytes()).unwrap()
}

fn domain(env: &Env) -> SigningDomain {
    SigningDomain::new(env.anvil.chain_id(), env.deployment.framework)
}

/// A URL nothing listens on (a port bound, then released).
async fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// A block the test made: its number, root and wire bytes.
struct Block {
    blknum: u64,
    root: B256,
    wire: Vec<u8>,
}

fn block(blknum: u64, txs: &[SignedTransaction]) -> Block {
    let leaves: Vec<Vec<u8>> = txs.iter().map(|t| t.transaction.encode()).collect();
    let root = BlockTree::from_txs(&leaves).unwrap().root();
    let signed: Vec<Bytes> = txs.iter().map(|t| Bytes::from(t.encode())).collect();
    let wire = wire::encode_block(blknum, root, &signed, wire::Encoding::Zlib).unwrap();
    Block { blknum, root, wire }
}

fn envelopes(env: &Env, b: &Block, params: Params, by: &Signer) -> Vec<ChunkEnvelope> {
    plasma_da::envelopes(&b.wire, b.blknum, b.root, params, &domain(env), by).unwrap()
}

fn k3n5() -> Params {
    Params::new(3, 5).unwrap()
}

/// A watcher of account `account`'s key on `listener`, its store in `dir`, with `da`.
async fn tower(
    env: &Env,
    account: usize,
    dir: &str,
    da: TowerSettings,
    listener: TcpListener,
    availability: Duration,
) -> Running {
    let key = key(env, account);
    let me = key.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let settings = Settings {
        framework: env.deployment.framework,
        // The operator never serves anything: every block comes from the towers or not at all.
        operator_url: dead_url().await,
        confirmations: 1,
        poll: Duration::from_millis(50),
        availability_timeout: availability,
        process_exits: false,
        deadline_margin: Duration::from_secs(30),
        stuck_after: Duration::from_millis(300),
        l1_block_time: Duration::from_millis(100),
        download: plasma_watcher::DownloadSettings::default(),
    };
    let dir: PathBuf = env.dir.path().join(dir);
    let w = Watcher::new(settings, me, provider, &dir).await.unwrap();
    let w = w.with_tower(da, Some(signer(env, account))).await.unwrap();
    plasma_watcher::start_on(w, listener).await.unwrap()
}

/// `n` bound listeners and their URLs.
async fn listeners(n: usize) -> (Vec<TcpListener>, Vec<String>) {
    let mut ls = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..n {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(format!("http://{}", l.local_addr().unwrap()));
        ls.push(l);
    }
    (ls, urls)
}

fn settings(
    index: Option<u16>,
    k: u16,
    towers: &[String],
    availability: Duration,
) -> TowerSettings {
    TowerSettings::new(index, Some(k), towers, Some(availability / 10), availability)
        .unwrap()
        .unwrap()
}

async fn put(url: &str, blknum: u64, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .put(format!("{url}/v1/da/chunks/{blknum}"))
        .header("content-type", plasma_da::CHUNK_MEDIA_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A PUT whose head announces `len` body bytes, and nothing sent after the head: the answer to
/// the head alone (an HTTP client would break its pipe writing a body the server refused).
async fn put_announcing(addr: std::net::SocketAddr, blknum: u64, len: u64) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT /v1/da/chunks/{blknum} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {}\r\n\
         content-length: {len}\r\n\r\n",
        plasma_da::CHUNK_MEDIA_TYPE
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let body = loop {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before an answer: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).to_string();
        let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
        let want: usize = head
            .lines()
            .find_map(|l| {
                l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
            })
            .unwrap();
        if body.len() >= want {
            break text;
        }
    };
    let status = body.split_whitespace().nth(1).unwrap().parse().unwrap();
    let json = serde_json::from_str(body.split_once("\r\n\r\n").unwrap().1).unwrap();
    (status, json)
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

/// Commits `root` as child block `blknum` with the operator key (account 0); the L1 block.
async fn commit(env: &Env, blknum: u64, root: B256) -> u64 {
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let receipt = framework
        .submitBlock(U256::from(blknum), root)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    receipt.block_number.unwrap()
}

/// Deposits `amount` wei of ETH for account `account` (its key pays); the deposit's position.
async fn deposit(env: &Env, account: usize, amount: u64) -> UtxoPos {
    let key = key(env, account);
    let owner = key.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let framework = PlasmaFramework::new(env.deployment.framework, provider);
    let tx = Transaction::deposit(owner, Address::ZERO, U256::from(amount)).encode();
    let receipt = framework
        .depositEth(tx.into())
        .value(U256::from(amount))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let logs = framework.DepositCreated_filter().from_block(0).query().await.unwrap();
    let (ev, _) = logs.iter().rev().find(|(e, _)| e.owner == owner).unwrap();
    pos(ev.blknum.try_into().unwrap(), 0, 0)
}

/// Waits (with a deadline) until `f` holds of the watcher.
async fn wait_for(w: &Running, what: &str, f: impl Fn(&Watcher) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f(&w.watcher) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: status {:?}, events {:?}",
            w.watcher.status(),
            w.watcher.events()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn has_fault(w: &Watcher, blknum: u64, kind: FaultKind) -> bool {
    w.da_faults().iter().any(|f| f.blknum == blknum && f.kind == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_stores_its_chunk_refuses_every_bad_one_and_keeps_them_across_a_restart() {
    logs();
    let env = env().await;
    let operator = signer(&env, 0);
    let availability = Duration::from_secs(20);
    let (mut ls, urls) = listeners(1).await;
    // Tower 1 of five; the others are not running (this test never rebuilds).
    let mut towers: Vec<String> = Vec::new();
    for i in 0..5 {
        towers.push(if i == 1 { urls[0].clone() } else { dead_url().await });
    }
    let da = settings(Some(1), 3, &towers, availability);
    let w = tower(&env, 5, "tower", da.clone(), ls.remove(0), availability).await;
    let url = format!("http://{}", w.addr);
    let me = w.watcher.address();

    let (alice, bob) = (signer(&env, 1), signer(&env, 2));
    let d = domain(&env);
    let b1 = block(1000, &[pay_eth(&d, &[pos(1, 0, 0)], &[(bob.address(), 5)], &[&alice])]);
    let envs = envelopes(&env, &b1, k3n5(), &operator);

    // Stored, and the receipt is the tower's signature of (blknum, chunkRoot, index).
    let (status, first) = put(&url, 1000, envs[1].encode()).await;
    assert_eq!(status, 200, "{first}");
    let r = &first["receipt"];
    assert_eq!(r["blknum"], 1000);
    assert_eq!(r["chunkRoot"], json!(envs[1].header.chunk_root));
    assert_eq!(r["index"], 1);
    assert_eq!(r["tower"], json!(me));
    let sig: Bytes = serde_json::from_value(r["signature"].clone()).unwrap();
    let receipt = Receipt { blknum: 1000, chunk_root: envs[1].header.chunk_root, index: 1 };
    assert_eq!(receipt.signer(&d, &sig).unwrap(), me, "signed by the tower's L1 key");
    // Idempotent: the same receipt again.
    let (status, again) = put(&url, 1000, envs[1].encode()).await;
    assert_eq!((status, &again), (200, &first));
    // Served back as stored.
    let got = reqwest::get(format!("{url}/v1/da/chunks/1000")).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], plasma_da::CHUNK_MEDIA_TYPE);
    assert_eq!(got.bytes().await.unwrap().to_vec(), envs[1].encode());
    let (status, v) = get_json(&format!("{url}/v1/da/chunks/7000")).await;
    assert_eq!((status, code(&v)), (404, "NoChunk"));

    // Every typed refusal.
    let (status, v) = put(&url, 1000, envs[2].encode()).await;
    assert_eq!((status, code(&v)), (400, "WrongIndex"), "{v}");
    let (status, v) = put(&url, 2000, envs[1].encode()).await;
    assert_eq!((status, code(&v)), (400, "Malformed"), "path and header disagree: {v}");
    let (status, v) = put(&url, 1000, b"not an envelope".to_vec()).await;
    assert_eq!((status, code(&v)), (400, "Malformed"), "{v}");
    let (status, v) = put(&url, 1500, envs[1].encode()).await;
    assert_eq!((status, code(&v)), (400, "NotAChildBlock"), "{v}");
    // Far past the last committed block (none yet): not stored, the operator may retry later.
    let far = block(65_000, &[pay_eth(&d, &[pos(1, 0, 0)], &[(bob.address(), 5)], &[&alice])]);
    let (status, v) = put(&url, 65_000, envelopes(&env, &far, k3n5(), &operator)[1].encode()).await;
    assert_eq!((status, code(&v)), (503, "TooFarAhead"), "{v}");
    let b2 = block(2000, &[pay_eth(&d, &[pos(2, 0, 0)], &[(bob.address(), 7)], &[&alice])]);
    let other_params = envelopes(&env, &b2, Params::new(2, 5).unwrap(), &operator);
    let (status, v) = put(&url, 2000, other_params[1].encode()).await;
    assert_eq!((status, code(&v)), (400, "BadParams"), "{v}");
    let forged = envelopes(&env, &b2, k3n5(), &signer(&env, 9));
    let (status, v) = put(&url, 2000, forged[1].encode()).await;
    assert_eq!((status, code(&v)), (400, "NotOperator"), "{v}");
    let envs2 = envelopes(&env, &b2, k3n5(), &operator);
    let mut tampered = envs2[1].clone();
    tampered.chunk[0] ^= 1;
    let (status, v) = put(&url, 2000, tampered.encode()).await;
    assert_eq!((status, code(&v)), (400, "BadChunkProof"), "{v}");
    let mut short = envs2[1].clone();
    short.chunk.pop();
    let (status, v) = put(&url, 2000, short.encode()).await;
    assert_eq!((status, code(&v)), (400, "ChunkLength"), "{v}");
    let (status, v) = put_announcing(w.addr, 2000, (64 << 20) + 1).await;
    assert_eq!((status, code(&v)), (413, "BodyTooLarge"), "{v}");
    // The operator's bad chunk is named; a header someone else signed is not the operator's fault.
    assert!(has_fault(&w.watcher, 2000, FaultKind::BadChunkProof), "{:?}", w.watcher.da_faults());
    assert!(!w.watcher.da_faults().iter().any(|f| f.kind == FaultKind::NotOperator));

    // Another operator-signed header for block 1000: equivocation, both headers kept.
    let b1x = block(1000, &[pay_eth(&d, &[pos(1, 0, 0)], &[(bob.address(), 6)], &[&alice])]);
    let envs1x = envelopes(&env, &b1x, k3n5(), &operator);
    let (status, v) = put(&url, 1000, envs1x[1].encode()).await;
    assert_eq!((status, code(&v)), (409, "Equivocation"), "{v}");
    let (_, faults) = get_json(&format!("{url}/v1/da/faults")).await;
    let eq = faults["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "Equivocation")
        .unwrap_or_else(|| panic!("no equivocation in {faults}"))
        .clone();
    assert_eq!(eq["blknum"], 1000);
    assert!(eq["at"].as_u64().unwrap() > 0);
    assert_eq!(eq["evidence"]["first"]["header"]["chunkRoot"], json!(envs[1].header.chunk_root));
    assert_eq!(eq["evidence"]["second"]["header"]["chunkRoot"], json!(envs1x[1].header.chunk_root));
    assert_eq!(eq["evidence"]["second"]["headerSignature"], json!(envs1x[1].header_sig));
    // The first chunk stays.
    let got = reqwest::get(format!("{url}/v1/da/chunks/1000")).await.unwrap();
    assert_eq!(got.bytes().await.unwrap().to_vec(), envs[1].encode());

    // Block 2000's chunk (root R2) is stored; L1 then commits 1000 with b1's root and 2000 with
    // another root: the stored header is named ChunkMismatch, and a PUT for a committed block
    // under another root is refused as ChunkMismatch.
    let (status, v) = put(&url, 2000, envs2[1].encode()).await;
    assert_eq!(status, 200, "{v}");
    commit(&env, 1000, b1.root).await;
    commit(&env, 2000, B256::repeat_byte(0x22)).await;
    wait_for(&w, "the commitment of 2000 read", |w| has_fault(w, 2000, FaultKind::ChunkMismatch))
        .await;
    let (status, v) = put(&url, 1000, envs1x[1].encode()).await;
    assert_eq!((status, code(&v)), (409, "ChunkMismatch"), "{v}");
    let (status, s) = get_json(&format!("{url}/status")).await;
    assert_eq!(status, 200);
    let shown = &s["status"]["da"];
    assert_eq!(
        (shown["index"].clone(), shown["k"].clone(), shown["n"].clone()),
        (json!(1), json!(3), json!(5))
    );
    assert_eq!(shown["chunksStored"], 2);
    assert_eq!(shown["rebuilt"], json!([]));
    let kinds: Vec<&str> = s["status"]["daFaults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for kind in ["BadChunkProof", "Equivocation", "ChunkMismatch"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let faults_before = w.watcher.da_faults();
    w.stop().await;

    // A restart on the same store: chunks and faults are still there.
    let (mut ls, _) = listeners(1).await;
    let listener = ls.remove(0);
    // Same URL list (the tower's own URL changes with the port; its index does not).
    let w = tower(&env, 5, "tower", da, listener, availability).await;
    let url = format!("http://{}", w.addr);
    let got = reqwest::get(format!("{url}/v1/da/chunks/1000")).await.unwrap();
    assert_eq!(got.bytes().await.unwrap().to_vec(), envs[1].encode());
    let got = reqwest::get(format!("{url}/v1/da/chunks/2000")).await.unwrap();
    assert_eq!(got.bytes().await.unwrap().to_vec(), envs2[1].encode());
    assert_eq!(w.watcher.da_faults()[..faults_before.len()], faults_before[..]);
    let (status, again) = put(&url, 1000, envs[1].encode()).await;
    assert_eq!((status, &again), (200, &first), "the same receipt after the restart");
    w.stop().await;
}

/// The L1 commitment check the contracts make: `keccak256(abi.encode(root, timestamp))`.
async fn commitment(env: &Env, blknum: u64) -> B256 {
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    framework.blockCommitments(U256::from(blknum)).call().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_of_five_towers_rebuild_a_block_the_operator_does_not_serve() {
    logs();
    let env = env().await;
    let operator = signer(&env, 0);
    let availability = Duration::from_secs(6);
    let (ls, mut urls) = listeners(3).await;
    // Towers 3 and 4 are absent.
    urls.push(dead_url().await);
    urls.push(dead_url().await);
    let (alice, bob) = (signer(&env, 1), signer(&env, 2));
    let d = domain(&env);
    let dep = deposit(&env, 1, 1_000_000).await;
    let pay =
        pay_eth(&d, &[dep], &[(bob.address(), 600_000), (alice.address(), 400_000)], &[&alice]);
    let b = block(1000, std::slice::from_ref(&pay));
    let envs = envelopes(&env, &b, k3n5(), &operator);

    let mut running = Vec::new();
    for (i, l) in ls.into_iter().enumerate() {
        let da = settings(Some(u16::try_from(i).unwrap()), 3, &urls, availability);
        running.push(tower(&env, 5 + i, &format!("tower-{i}"), da, l, availability).await);
    }
    for (i, w) in running.iter().enumerate() {
        let (status, v) = put(&format!("http://{}", w.addr), 1000, envs[i].encode()).await;
        assert_eq!(status, 200, "tower {i}: {v}");
    }
    // A watcher that is no tower, only told the towers and k: a reader, it rebuilds too.
    let (mut rl, _) = listeners(1).await;
    let reader_da = settings(None, 3, &urls, availability);
    running.push(tower(&env, 8, "reader", reader_da, rl.remove(0), availability).await);
    let (status, v) = put(&format!("http://{}", running[3].addr), 1000, envs[3].encode()).await;
    assert_eq!((status, code(&v)), (404, "NotATower"), "a reader stores nothing: {v}");
    commit(&env, 1000, b.root).await;

    for (i, w) in running.iter().enumerate() {
        wait_for(w, &format!("tower {i} validates block 1000"), |w| {
            w.status().synced_block >= 1000
        })
        .await;
        let s = w.watcher.status();
        assert!(s.safe, "tower {i} not byzantine: {s:?}");
        let da = s.da.as_ref().unwrap();
        assert_eq!(da.rebuilt, vec![1000], "tower {i}");
        assert_eq!(da.index, (i < 3).then(|| u16::try_from(i).unwrap()));
        assert!(
            !w.watcher.events().iter().any(|e| matches!(e, Event::BlockWithheld { .. })),
            "tower {i}: {:?}",
            w.watcher.events()
        );
    }

    let metrics = reqwest::get(format!("http://{}/metrics", running[0].addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("plasma_watcher_da_rebuilt_blocks_total 1\n"), "{metrics}");
    assert!(metrics.contains("plasma_watcher_da_chunks_stored 1\n"), "{metrics}");

    // A tower serves the rebuilt block's exit data to the SDK's client, and it verifies on L1.
    let url = format!("http://{}", running[0].addr);
    let client = plasma_sdk::OperatorClient::new(url.clone());
    let bob_out = pos(1000, 0, 0);
    let exit = client.exit_data(bob_out.to_u128()).await.unwrap();
    assert_eq!(exit.root, b.root);
    assert_eq!(exit.tx_bytes, Bytes::from(pay.transaction.encode()));
    let proof = plasma_spec::Proof::from_bytes(&exit.proof).unwrap();
    assert!(proof.verify(plasma_spec::leaf_hash(&exit.tx_bytes), 0, exit.root));
    let on_l1 = keccak256((exit.root, U256::from(exit.block_timestamp)).abi_encode());
    assert_eq!(on_l1, commitment(&env, 1000).await, "root and timestamp are L1's commitment");
    // The same through the owner listing with proofs, the inclusions and the wire block.
    let page = client.utxo_page(bob.address(), None, 10, true).await.unwrap();
    assert_eq!(page.utxos.len(), 1);
    assert_eq!(page.utxos[0].utxo_pos, bob_out.to_u128());
    assert_eq!(page.exit_data[0].as_ref().unwrap().as_ref().unwrap(), &exit);
    assert!(page.next.is_none());
    let page = client.utxo_page(alice.address(), None, 10, false).await.unwrap();
    assert_eq!(
        page.utxos.iter().map(|u| u.utxo_pos).collect::<Vec<_>>(),
        vec![pos(1000, 0, 1).to_u128()]
    );
    let items =
        client.inclusions(&[(1000, 0), (1000, 1), (dep.blknum(), 0), (3000, 0)]).await.unwrap();
    match &items[0] {
        plasma_sdk::InclusionItem::Found { inclusion, signed_tx, committed } => {
            assert!(committed);
            assert_eq!(signed_tx.as_ref().unwrap(), &Bytes::from(pay.encode()));
            assert_eq!(inclusion.proof, exit.proof);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&items[1], plasma_sdk::InclusionItem::Refused { code, .. } if code == "TxIndexOutOfRange")
    );
    assert!(
        matches!(&items[2], plasma_sdk::InclusionItem::Found { signed_tx: None, .. }),
        "a deposit: {:?}",
        items[2]
    );
    assert!(
        matches!(&items[3], plasma_sdk::InclusionItem::Refused { code, .. } if code == "BlockUnknown")
    );
    let served = client.block(1000).await.unwrap();
    assert_eq!(served.root, b.root);
    assert_eq!(served.txs, vec![Bytes::from(pay.encode())]);
    let (status, v) = get_json(&format!("{url}/v1/blocks/3000")).await;
    assert_eq!((status, code(&v)), (404, "BlockUnknown"));
    let (status, v) = get_json(&format!("{url}/v1/utxos/{}/exit-data", dep.to_u128())).await;
    assert_eq!((status, code(&v)), (404, "UnknownUtxo"), "the deposit is spent: {v}");
    // Resumed download of the wire form (a range).
    let r = reqwest::Client::new()
        .get(format!("{url}/v1/blocks/1000"))
        .header("accept", wire::MEDIA_TYPE)
        .header("range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    let whole = reqwest::Client::new()
        .get(format!("{url}/v1/blocks/1000"))
        .header("accept", wire::MEDIA_TYPE)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), whole.slice(10..));
    assert_eq!(whole.to_vec(), b.wire, "the same bytes the operator encoded");

    for w in running {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_k_minus_one_good_chunks_the_block_is_withheld_and_bad_chunks_are_named() {
    logs();
    let env = env().await;
    let operator = signer(&env, 0);
    let availability = Duration::from_secs(4);
    let (mut ls, urls) = listeners(5).await;
    let (alice, bob) = (signer(&env, 1), signer(&env, 2));
    let d = domain(&env);
    let dep = deposit(&env, 1, 1_000_000).await;
    let b = block(1000, &[pay_eth(&d, &[dep], &[(bob.address(), 1_000_000)], &[&alice])]);
    let envs = envelopes(&env, &b, k3n5(), &operator);

    // Towers 0 and 1 hold good chunks; tower 2 runs but has none. Tower 3 is a fake serving its
    // chunk tampered; tower 4 a fake serving a chunk under a header of another root.
    let fake4 = ls.pop().unwrap();
    let fake3 = ls.pop().unwrap();
    let mut tampered = envs[3].clone();
    tampered.chunk[0] ^= 1;
    serve_chunk(fake3, 1000, tampered.encode());
    let other = block(1000, &[pay_eth(&d, &[dep], &[(alice.address(), 1_000_000)], &[&alice])]);
    serve_chunk(fake4, 1000, envelopes(&env, &other, k3n5(), &operator)[4].encode());

    let mut running = Vec::new();
    for (i, l) in ls.into_iter().enumerate() {
        let da = settings(Some(u16::try_from(i).unwrap()), 3, &urls, availability);
        running.push(tower(&env, 5 + i, &format!("tower-{i}"), da, l, availability).await);
    }
    for i in 0..2 {
        let (status, v) = put(&format!("http://{}", running[i].addr), 1000, envs[i].encode()).await;
        assert_eq!(status, 200, "tower {i}: {v}");
    }
    commit(&env, 1000, b.root).await;

    let w = &running[2];
    wait_for(w, "block 1000 withheld", |w| {
        w.events().iter().any(|e| matches!(e, Event::BlockWithheld { blknum: 1000 }))
    })
    .await;
    let s = w.watcher.status();
    assert_eq!(s.byzantine_from, Some(1000), "{s:?}");
    assert!(s.da.unwrap().rebuilt.is_empty());
    let faults = w.watcher.da_faults();
    let named = |kind: FaultKind, tower: &str| {
        faults.iter().any(|f| f.blknum == 1000 && f.kind == kind && f.detail.contains(tower))
    };
    assert!(named(FaultKind::BadChunkProof, "tower 3"), "{faults:?}");
    assert!(named(FaultKind::ChunkMismatch, "tower 4"), "{faults:?}");
    assert!(named(FaultKind::TooFewChunks, "2 good chunk(s) of the 3"), "{faults:?}");
    // Nothing of block 1000 is served.
    let (status, v) = get_json(&format!("http://{}/v1/blocks/1000", w.addr)).await;
    assert_eq!((status, code(&v)), (404, "BlockUnknown"));
    for w in running {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_operator_that_serves_the_download_wins_and_nothing_is_rebuilt() {
    logs();
    let env = env().await;
    let node = plasma_testkit::operator(&env).await;
    let availability = Duration::from_secs(6);
    let (mut ls, mut urls) = listeners(1).await;
    urls.push(dead_url().await);
    // The download races a rebuild that starts at a failed attempt or 0.6 s after the
    // commitment; the towers have nothing, the operator serves: the download wins.
    let da = settings(Some(0), 1, &urls, availability);
    let key = key(&env, 5);
    let me = key.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let settings = Settings {
        framework: env.deployment.framework,
        operator_url: format!("http://{}", node.addr),
        confirmations: 1,
        poll: Duration::from_millis(50),
        availability_timeout: availability,
        process_exits: false,
        deadline_margin: Duration::from_secs(30),
        stuck_after: Duration::from_millis(300),
        l1_block_time: Duration::from_millis(100),
        download: plasma_watcher::DownloadSettings::default(),
    };
    let w = Watcher::new(settings, me, provider, &env.dir.path().join("tower")).await.unwrap();
    let w = w.with_tower(da, Some(signer(&env, 5))).await.unwrap();
    let w = plasma_watcher::start_on(w, ls.remove(0)).await.unwrap();
    let alice = plasma_testkit::wallet(&env, &node, 1).await;
    let bob = plasma_testkit::wallet(&env, &node, 2).await;
    let dep = alice.deposit_eth(plasma_testkit::eth(1)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash =
        alice.send(bob.address(), Address::ZERO, plasma_testkit::eth(1), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    wait_for(&w, "the block validated", |w| w.status().synced_block >= blknum).await;
    let s = w.watcher.status();
    assert!(s.safe, "{s:?}");
    assert!(s.da.unwrap().rebuilt.is_empty(), "downloaded, not rebuilt");
    // The block is served from the tower as the operator serves it.
    let client = plasma_sdk::OperatorClient::new(format!("http://{}", w.addr));
    let from_tower = client.block(blknum).await.unwrap();
    let from_operator = plasma_sdk::OperatorClient::new(format!("http://{}", node.addr))
        .block(blknum)
        .await
        .unwrap();
    assert_eq!((from_tower.root, &from_tower.txs), (from_operator.root, &from_operator.txs));
    assert_eq!(from_tower.l1_timestamp, from_operator.l1_timestamp);
    let out = pos(blknum, 0, 0).to_u128();
    assert_eq!(
        client.exit_data(out).await.unwrap(),
        plasma_sdk::OperatorClient::new(format!("http://{}", node.addr))
            .exit_data(out)
            .await
            .unwrap(),
        "the same exit data as the operator's"
    );
    w.stop().await;
    node.stop().await;
}

/// Chunks that are not one codeword, committed and signed by the operator: each verifies against
/// the header, but re-encoding any `k` of them gives another chunk root.
fn non_codeword(env: &Env, b: &Block, operator: &Signer) -> Vec<ChunkEnvelope> {
    use plasma_da::{ChunkProof, chunk_leaf, chunk_node};
    let mut envs = envelopes(env, b, k3n5(), operator);
    envs[0].chunk[0] ^= 1;
    let mut levels: Vec<Vec<B256>> = vec![
        envs.iter()
            .map(|e| chunk_leaf(e.index, &e.chunk))
            .chain(std::iter::repeat(B256::ZERO))
            .take(8)
            .collect(),
    ];
    while levels.last().unwrap().len() > 1 {
        let up = levels.last().unwrap().chunks(2).map(|p| chunk_node(&p[0], &p[1])).collect();
        levels.push(up);
    }
    let root = levels.last().unwrap()[0];
    let mut header = envs[0].header;
    header.chunk_root = root;
    let header_sig = header.sign(&domain(env), operator);
    for e in &mut envs {
        let mut at = usize::from(e.index);
        let mut proof = Vec::new();
        for level in &levels[..levels.len() - 1] {
            proof.push(level[at ^ 1]);
            at /= 2;
        }
        e.header = header;
        e.header_sig = header_sig.clone();
        e.proof = ChunkProof(proof);
        e.verify(&domain(env), operator.address()).unwrap();
    }
    envs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_that_are_not_one_codeword_are_named_bad_encoding() {
    logs();
    let env = env().await;
    let operator = signer(&env, 0);
    let availability = Duration::from_secs(4);
    let (ls, mut urls) = listeners(3).await;
    urls.push(dead_url().await);
    urls.push(dead_url().await);
    let (alice, bob) = (signer(&env, 1), signer(&env, 2));
    let d = domain(&env);
    let dep = deposit(&env, 1, 1_000_000).await;
    let b = block(1000, &[pay_eth(&d, &[dep], &[(bob.address(), 1_000_000)], &[&alice])]);
    let envs = non_codeword(&env, &b, &operator);
    let mut running = Vec::new();
    for (i, l) in ls.into_iter().enumerate() {
        let da = settings(Some(u16::try_from(i).unwrap()), 3, &urls, availability);
        running.push(tower(&env, 5 + i, &format!("tower-{i}"), da, l, availability).await);
    }
    for (i, w) in running.iter().enumerate() {
        let (status, v) = put(&format!("http://{}", w.addr), 1000, envs[i].encode()).await;
        assert_eq!(status, 200, "each chunk verifies alone: {v}");
    }
    commit(&env, 1000, b.root).await;
    let w = &running[0];
    wait_for(w, "block 1000 withheld", |w| {
        w.events().iter().any(|e| matches!(e, Event::BlockWithheld { blknum: 1000 }))
    })
    .await;
    assert!(has_fault(&w.watcher, 1000, FaultKind::BadEncoding), "{:?}", w.watcher.da_faults());
    assert!(w.watcher.status().da.unwrap().rebuilt.is_empty());
    for w in running {
        w.stop().await;
    }
}

/// A fake tower on `listener`: `GET /v1/da/chunks/{blknum}` answers `body`, anything else 404.
fn serve_chunk(listener: TcpListener, blknum: u64, body: Vec<u8>) {
    use warp::{Filter, Reply};
    let route = warp::path!("v1" / "da" / "chunks" / u64).map(move |n: u64| {
        if n == blknum {
            warp::reply::with_header(body.clone(), "content-type", plasma_da::CHUNK_MEDIA_TYPE)
                .into_response()
        } else {
            warp::reply::with_status(Vec::<u8>::new(), warp::http::StatusCode::NOT_FOUND)
                .into_response()
        }
    });
    tokio::spawn(warp::serve(route).incoming(listener).run());
}
