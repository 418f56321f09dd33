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
//!   is withheld as before, and every bad chunk is named;
//! - the audit's findings: a trickling tower does not stop the rebuild from asking the others
//!   again (F1); a bad answer is asked again and named once, only under the operator's
//!   signature (F1); a reader that looks after the deadline rebuilds over a slow link before
//!   its verdict (F2); header and bad-chunk spam name one fault per block (F4); PUT bodies are
//!   read under a bounded number of slots.

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
use plasma_testkit::{Env, dead_url, env, key};
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
    let timing = Timing { poll: Duration::from_millis(50), stall: Duration::from_secs(15) };
    tower_with(env, account, dir, da, listener, availability, timing).await
}

/// A watcher's poll interval (also its retry) and its stall timeout.
#[derive(Clone, Copy)]
struct Timing {
    poll: Duration,
    stall: Duration,
}

/// [`tower`] with its own poll and stall timeout.
async fn tower_with(
    env: &Env,
    account: usize,
    dir: &str,
    da: TowerSettings,
    listener: TcpListener,
    availability: Duration,
    timing: Timing,
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
        operator_url: dead_url(),
        confirmations: 1,
        poll: timing.poll,
        availability_timeout: availability,
        process_exits: false,
        deadline_margin: Duration::from_secs(30),
        stuck_after: Duration::from_millis(300),
        l1_block_time: Duration::from_millis(100),
        download: plasma_watcher::DownloadSettings {
            stall_timeout: timing.stall,
            ..plasma_watcher::DownloadSettings::default()
        },
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
        towers.push(if i == 1 { urls[0].clone() } else { dead_url() });
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
    urls.push(dead_url());
    urls.push(dead_url());
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
    urls.push(dead_url());
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
    urls.push(dead_url());
    urls.push(dead_url());
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

/// What a fake tower answers to a request: after `delay`, `status` with `body` (a chunk's
/// content type).
struct FakeAnswer {
    delay: Duration,
    status: u16,
    body: Vec<u8>,
}

impl FakeAnswer {
    fn now(body: Vec<u8>) -> Self {
        Self { delay: Duration::ZERO, status: 200, body }
    }
}

/// A fake tower on `listener`: its `i`-th `GET /v1/da/chunks/{blknum}` gets `answer(i)`, other
/// blocks 404. Returns how many it was asked.
fn fake_tower(
    listener: TcpListener,
    blknum: u64,
    answer: impl Fn(usize) -> FakeAnswer + Send + Sync + 'static,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::sync::{Arc, atomic::AtomicUsize, atomic::Ordering};
    use warp::{Filter, Reply};
    let asked = Arc::new(AtomicUsize::new(0));
    let (count, answer) = (asked.clone(), Arc::new(answer));
    let route = warp::path!("v1" / "da" / "chunks" / u64).then(move |n: u64| {
        let (count, answer) = (count.clone(), answer.clone());
        async move {
            if n != blknum {
                return warp::reply::with_status(Vec::new(), warp::http::StatusCode::NOT_FOUND)
                    .into_response();
            }
            let FakeAnswer { delay, status, body } = answer(count.fetch_add(1, Ordering::SeqCst));
            tokio::time::sleep(delay).await;
            let status = warp::http::StatusCode::from_u16(status).unwrap();
            warp::reply::with_status(
                warp::reply::with_header(body, "content-type", plasma_da::CHUNK_MEDIA_TYPE),
                status,
            )
            .into_response()
        }
    });
    tokio::spawn(warp::serve(route).incoming(listener).run());
    asked
}

/// A hostile tower on `listener`: answers every request `200` with a chunk's content type and a
/// 100,000-byte body it sends one byte a second (never silent long enough for a read timeout).
/// Returns how many connections it accepted.
fn trickling_tower(listener: TcpListener) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::sync::{Arc, atomic::AtomicUsize, atomic::Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncontent-length: 100000\r\n\r\n",
                    plasma_da::CHUNK_MEDIA_TYPE
                );
                if sock.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if sock.write_all(b"P").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    accepted
}

fn rebuilt(w: &Watcher) -> Vec<u64> {
    w.status().da.map(|d| d.rebuilt).unwrap_or_default()
}

fn withheld(w: &Watcher) -> bool {
    w.events().iter().any(|e| matches!(e, Event::BlockWithheld { .. }))
}

/// Audit F1 (DA-10, "again and again until the deadline"): towers 1 and 2 answer 503 at first
/// and tower 3 trickles its answer a byte a second. Every source is asked on its own clock: the
/// trickler is cut after one stall timeout (2 s) and asked again, and towers 1 and 2 are asked
/// again while it trickles, so once they serve, the block is rebuilt well before its deadline.
/// (Before, one round waited for every answer, and the trickler's request could last the whole
/// window: towers 1 and 2 were never asked again and the block was called withheld.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_tower_does_not_stop_the_rebuild_from_asking_the_others_again() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    logs();
    let env = env().await;
    let operator = signer(&env, 0);
    let availability = Duration::from_secs(8);
    let (mut ls, mut urls) = listeners(4).await;
    urls.push(dead_url());
    let (alice, bob) = (signer(&env, 1), signer(&env, 2));
    let d = domain(&env);
    let dep = deposit(&env, 1, 1_000_000).await;
    let b = block(1000, &[pay_eth(&d, &[dep], &[(bob.address(), 1_000_000)], &[&alice])]);
    let envs = envelopes(&env, &b, k3n5(), &operator);
    let trickler = trickling_tower(ls.pop().unwrap());
    let open = Arc::new(AtomicBool::new(false));
    let mut gated = Vec::new();
    for i in (1..3).rev() {
        let (open, body) = (open.clone(), envs[i].encode());
        gated.push(fake_tower(ls.pop().unwrap(), 1000, move |_| {
            if open.load(Ordering::SeqCst) {
                FakeAnswer::now(body.clone())
            } else {
                FakeAnswer { delay: Duration::ZERO, status: 503, body: b"down".to_vec() }
            }
        }));
    }
    let good = envs[0].encode();
    fake_tower(ls.pop().unwrap(), 1000, move |_| FakeAnswer::now(good.clone()));
    let (mut rl, _) = listeners(1).await;
    let da = settings(None, 3, &urls, availability);
    let timing = Timing { poll: Duration::from_millis(50), stall: Duration::from_secs(2) };
    let w = tower_with(&env, 8, "reader", da, rl.remove(0), availability, timing).await;
    commit(&env, 1000, b.root).await;

    // The trickler is cut after a stall timeout and asked again, and the closed towers are asked
    // again and again meanwhile.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while trickler.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the trickler was never cut and re-asked");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(gated.iter().all(|asked| asked.load(Ordering::SeqCst) >= 2), "asked again");
    assert!(!withheld(&w.watcher) && rebuilt(&w.watcher).is_empty(), "not decided yet");
    open.store(true, Ordering::SeqCst);
    wait_for(&w, "block 1000 rebuilt", |w| w.status().synced_block >= 1000).await;
    let s = w.watcher.status();
    assert!(s.safe, "{s:?}");
    assert_eq!(rebuilt(&w.watcher), vec![1000]);
    assert!(!withheld(&w.watcher), "{:?}", w.watcher.events());
    // Trickling, like being down, is no evidence: nothing is named.
    assert!(w.watcher.da_faults().is_empty(), "{:?}", w.watcher.da_faults());
    w.stop().await;
}

/// Audit F1 (WATCH-3: bad bytes are not a verdict): tower 2's first answers are junk, an
/// envelope whose header signature is broken, a chunk that fails its proof and one of the wrong
/// length; then it serves its good chunk. It is asked again after each (backing off), the block
/// is rebuilt, and only the answers under the operator's signature are named — once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_answer_is_asked_again_and_named_once_only_under_the_operators_signature() {
    logs();
    let env = env().await;
    let operator = signer(&env, 0);
    let availability = Duration::from_secs(8);
    let (mut ls, mut urls) = listeners(3).await;
    urls.push(dead_url());
    urls.push(dead_url());
    let (alice, bob) = (signer(&env, 1), signer(&env, 2));
    let d = domain(&env);
    let dep = deposit(&env, 1, 1_000_000).await;
    let b = block(1000, &[pay_eth(&d, &[dep], &[(bob.address(), 1_000_000)], &[&alice])]);
    let envs = envelopes(&env, &b, k3n5(), &operator);
    let good = envs[2].encode();
    let mut unsigned = envs[2].clone();
    let mut sig = unsigned.header_sig.to_vec();
    sig[10] ^= 0xff;
    unsigned.header_sig = sig.into();
    let mut tampered = envs[2].clone();
    tampered.chunk[0] ^= 1;
    let mut short = envs[2].clone();
    short.chunk.pop();
    let answers =
        [b"not an envelope".to_vec(), unsigned.encode(), tampered.encode(), short.encode()];
    let flaky = fake_tower(ls.pop().unwrap(), 1000, move |i| {
        FakeAnswer::now(answers.get(i).cloned().unwrap_or_else(|| good.clone()))
    });
    for i in (0..2).rev() {
        let body = envs[i].encode();
        fake_tower(ls.pop().unwrap(), 1000, move |_| FakeAnswer::now(body.clone()));
    }
    let (mut rl, _) = listeners(1).await;
    let da = settings(None, 3, &urls, availability);
    let w = tower(&env, 8, "reader", da, rl.remove(0), availability).await;
    commit(&env, 1000, b.root).await;
    wait_for(&w, "block 1000 rebuilt", |w| w.status().synced_block >= 1000).await;
    let s = w.watcher.status();
    assert!(s.safe, "{s:?}");
    assert_eq!(rebuilt(&w.watcher), vec![1000]);
    assert!(flaky.load(std::sync::atomic::Ordering::SeqCst) >= 5, "asked until it served");
    let faults = w.watcher.da_faults();
    let kinds: Vec<FaultKind> = faults.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, vec![FaultKind::BadChunkProof], "{faults:?}");
    assert!(faults[0].detail.starts_with("tower 2: chunk 2: "), "{faults:?}");
    assert_eq!(s.da.unwrap().faults_total, 1);
    w.stop().await;
}

/// Audit F2 (WATCH-3 × DA-10): a reader that starts after block 1000's deadline, one of whose
/// three reachable towers answers in 3 s (a chunk of a big block over a slow link), with the
/// default poll. Its rebuild gets `A − rebuild-after` from its first look, as an in-time rebuild
/// does: it rebuilds the block instead of calling it withheld two polls after it looked. Block
/// 2000, which no tower holds, is still called withheld — after that window, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reader_on_a_slow_link_rebuilds_a_historical_withheld_block() {
    logs();
    let env = env().await;
    let operator = signer(&env, 0);
    let availability = Duration::from_secs(6);
    let (mut ls, mut urls) = listeners(3).await;
    urls.push(dead_url());
    urls.push(dead_url());
    let (alice, bob) = (signer(&env, 1), signer(&env, 2));
    let d = domain(&env);
    let dep = deposit(&env, 1, 1_000_000).await;
    let b = block(1000, &[pay_eth(&d, &[dep], &[(bob.address(), 1_000_000)], &[&alice])]);
    let envs = envelopes(&env, &b, k3n5(), &operator);
    let slow = envs[2].encode();
    fake_tower(ls.pop().unwrap(), 1000, move |_| FakeAnswer {
        delay: Duration::from_secs(3),
        status: 200,
        body: slow.clone(),
    });
    for i in (0..2).rev() {
        let body = envs[i].encode();
        fake_tower(ls.pop().unwrap(), 1000, move |_| FakeAnswer::now(body.clone()));
    }
    commit(&env, 1000, b.root).await;
    let l1_block = commit(&env, 2000, B256::repeat_byte(0x20)).await;
    // Wait until both deadlines passed (L1's clock, which the watcher reads too).
    let committed_at =
        env.provider.get_block_by_number(l1_block.into()).await.unwrap().unwrap().header.timestamp;
    let past = committed_at + availability.as_secs() + 1;
    while std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        < past
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (mut rl, _) = listeners(1).await;
    let da = settings(None, 3, &urls, availability);
    let window = availability - da.rebuild_after;
    let timing = Timing { poll: Duration::from_millis(500), stall: Duration::from_secs(15) };
    let started = tokio::time::Instant::now();
    let w = tower_with(&env, 8, "late-reader", da, rl.remove(0), availability, timing).await;
    wait_for(&w, "a verdict on block 2000", withheld).await;
    let judged_after = started.elapsed();
    let s = w.watcher.status();
    assert_eq!(rebuilt(&w.watcher), vec![1000], "{s:?}");
    assert_eq!(s.synced_block, 1000, "block 1000 validated: {s:?}");
    assert_eq!(s.byzantine_from, Some(2000), "block 2000 withheld: {s:?}");
    assert!(
        !w.watcher.events().iter().any(|e| matches!(e, Event::BlockWithheld { blknum: 1000 })),
        "{:?}",
        w.watcher.events()
    );
    // Block 2000's task started after the reader did: the verdict waited for the window, and no
    // longer than a few polls after it.
    assert!(judged_after >= window, "judged {judged_after:?} after the first look");
    assert!(judged_after < window + Duration::from_secs(5), "judged {judged_after:?}");
    assert!(has_fault(&w.watcher, 2000, FaultKind::TooFewChunks));
    w.stop().await;
}

/// Audit F4 (DA-8, DA-9): an operator that signs header after header for one block, or sends a
/// tower chunk after bad chunk, gets one fault per block and kind: the first evidence is kept,
/// the rest is refused as before but stored nowhere — across a restart too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocation_and_bad_chunk_spam_name_one_fault_per_block() {
    logs();
    let env = env().await;
    let operator = signer(&env, 0);
    let availability = Duration::from_secs(20);
    let (mut ls, urls) = listeners(1).await;
    let mut towers = vec![dead_url()];
    towers.extend(urls.iter().cloned());
    towers.push(dead_url());
    towers.push(dead_url());
    towers.push(dead_url());
    let da = settings(Some(1), 3, &towers, availability);
    let w = tower(&env, 5, "tower", da.clone(), ls.remove(0), availability).await;
    let url = format!("http://{}", w.addr);
    let (alice, bob) = (signer(&env, 1), signer(&env, 2));
    let d = domain(&env);
    let first = block(1000, &[pay_eth(&d, &[pos(1, 0, 0)], &[(bob.address(), 1)], &[&alice])]);
    let (status, v) = put(&url, 1000, envelopes(&env, &first, k3n5(), &operator)[1].encode()).await;
    assert_eq!(status, 200, "{v}");
    let spam = |w: &Watcher| {
        let f = w.da_faults();
        (
            f.iter().filter(|f| f.kind == FaultKind::Equivocation).count(),
            f.iter().filter(|f| f.kind == FaultKind::BadChunkProof).count(),
            f.len(),
        )
    };
    for i in 0..10u64 {
        let other =
            block(1000, &[pay_eth(&d, &[pos(1, 0, 0)], &[(bob.address(), 2 + i)], &[&alice])]);
        let (status, v) =
            put(&url, 1000, envelopes(&env, &other, k3n5(), &operator)[1].encode()).await;
        assert_eq!((status, code(&v)), (409, "Equivocation"), "{v}");
        // Chunks of block 2000 that fail in ever different ways.
        let b2 = block(2000, &[pay_eth(&d, &[pos(2, 0, 0)], &[(bob.address(), 2 + i)], &[&alice])]);
        let mut bad = envelopes(&env, &b2, k3n5(), &operator)[1].clone();
        bad.chunk.truncate(bad.chunk.len() - 1 - usize::try_from(i).unwrap());
        let (status, v) = put(&url, 2000, bad.encode()).await;
        assert_eq!((status, code(&v)), (400, "ChunkLength"), "{v}");
    }
    assert_eq!(spam(&w.watcher), (1, 1, 2), "{:?}", w.watcher.da_faults());
    let eq = w.watcher.da_faults().into_iter().find(|f| f.kind == FaultKind::Equivocation).unwrap();
    let ev = eq.evidence.unwrap();
    assert_eq!(
        ev.first.header.chunk_root,
        envelopes(&env, &first, k3n5(), &operator)[1].header.chunk_root,
        "the stored header"
    );
    assert_eq!(w.watcher.status().da.unwrap().faults_total, 2);
    w.stop().await;

    // After a restart the same spam still adds nothing.
    let (mut ls, _) = listeners(1).await;
    let w = tower(&env, 5, "tower", da, ls.remove(0), availability).await;
    let url = format!("http://{}", w.addr);
    let other = block(1000, &[pay_eth(&d, &[pos(1, 0, 0)], &[(bob.address(), 99)], &[&alice])]);
    let (status, _) = put(&url, 1000, envelopes(&env, &other, k3n5(), &operator)[1].encode()).await;
    assert_eq!(status, 409);
    assert_eq!(spam(&w.watcher), (1, 1, 2), "{:?}", w.watcher.da_faults());
    w.stop().await;
}

/// PUT memory: a body is read only under one of `MAX_PUTS_AT_ONCE` slots. Four senders that
/// announce a body and hold it back fill them; the operator's PUT is answered `503 TooBusy`
/// (its pusher retries) without a byte read, and gets its receipt once a sender gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_bodies_are_read_under_a_bounded_number_of_slots() {
    use tokio::io::AsyncWriteExt;
    logs();
    let env = env().await;
    let operator = signer(&env, 0);
    let availability = Duration::from_secs(20);
    let (mut ls, urls) = listeners(1).await;
    let mut towers = vec![dead_url()];
    towers.extend(urls.iter().cloned());
    for _ in 0..3 {
        towers.push(dead_url());
    }
    let da = settings(Some(1), 3, &towers, availability);
    let w = tower(&env, 5, "tower", da, ls.remove(0), availability).await;
    let url = format!("http://{}", w.addr);
    let (alice, bob) = (signer(&env, 1), signer(&env, 2));
    let d = domain(&env);
    let b = block(1000, &[pay_eth(&d, &[pos(1, 0, 0)], &[(bob.address(), 1)], &[&alice])]);
    let body = envelopes(&env, &b, k3n5(), &operator)[1].encode();

    let mut hogs = Vec::new();
    for _ in 0..plasma_watcher::MAX_PUTS_AT_ONCE {
        let mut conn = tokio::net::TcpStream::connect(w.addr).await.unwrap();
        let head = format!(
            "PUT /v1/da/chunks/1000 HTTP/1.1\r\nhost: {}\r\ncontent-type: {}\r\n\
             content-length: {}\r\n\r\n",
            w.addr,
            plasma_da::CHUNK_MEDIA_TYPE,
            1 << 20
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(&[0u8; 1000]).await.unwrap();
        hogs.push(conn);
    }
    // The hogs' requests reach the handler in their own time: wait until every slot is taken,
    // probing with another tower's chunk (refused, never stored, while a slot is free).
    let probe = envelopes(&env, &b, k3n5(), &operator)[2].encode();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, v) = put(&url, 1000, probe.clone()).await;
        if (status, code(&v)) == (503, "TooBusy") {
            break;
        }
        assert_eq!((status, code(&v)), (400, "WrongIndex"), "{v}");
        assert!(tokio::time::Instant::now() < deadline, "the slots never filled: {v}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(w.watcher.status().da.unwrap().chunks_stored, 0);
    drop(hogs.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, v) = put(&url, 1000, body.clone()).await;
        if status == 200 {
            assert_eq!(v["receipt"]["blknum"], 1000, "{v}");
            break;
        }
        assert_eq!((status, code(&v)), (503, "TooBusy"), "{v}");
        assert!(tokio::time::Instant::now() < deadline, "no slot came free");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(w.watcher.status().da.unwrap().chunks_stored, 1);
    drop(hogs); // a graceful stop waits for their requests
    w.stop().await;
}
