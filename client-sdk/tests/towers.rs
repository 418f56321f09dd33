//! The wallet's tower fallback and restore (spec: DA-12) against a real anvil, the real contracts
//! and the real operator. Small loopback HTTP stubs stand in front of the operator: as the
//! wallet's "operator" they are down, answer 503, withhold child blocks (`BlockWithheld`) or lie
//! about proofs; as "towers" they relay the real operator's (honest) data, or lie, or leave the
//! wallet's outputs out of their listing (claiming to have validated every block), or list an
//! output that is not the wallet's, or one that is spent. The full system with real towers is
//! `tests/tests/availability.rs`.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, U256};
use plasma_contracts::DeployConfig;
use plasma_operator::Node;
use plasma_sdk::{
    OutputStatus, ProofStore, SdkError, SourceFailure, SourceId, SpentSource, Verification, Wallet,
    WalletConfig,
};
use plasma_testkit::{Env, PERIOD, advance, env, eth, key, operator, wallet};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// How a stub answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Relays the real operator: an honest tower.
    Relay,
    /// 503 with a text body to everything: an operator behind a failing proxy.
    Unavailable,
    /// Relays, but every read of a child block (the block, exit data, inclusion items) is
    /// `404 BlockWithheld`, as the devnet operator's withholding fault answers.
    Withholding,
    /// Relays, with one hex digit of every proof flipped.
    Lying,
    /// Relays, but lists no outputs, and claims in `/status` to have validated block 10^12.
    Omitting,
    /// Relays, and also lists this position as the owner's (1 wei of ETH): an output that is
    /// not the owner's, or one that is spent (a stale or lying tower).
    Inventing(u128),
}

/// A stub HTTP server on a loopback port, counting the requests it got by route.
struct Stub {
    url: String,
    hits: Arc<Mutex<HashMap<&'static str, usize>>>,
}

impl Stub {
    async fn start(upstream: &str, mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits: Arc<Mutex<HashMap<&'static str, usize>>> = Arc::default();
        let (upstream, counter) = (upstream.to_owned(), hits.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                let (http, upstream, counter) = (http.clone(), upstream.clone(), counter.clone());
                tokio::spawn(serve(sock, http, upstream, mode, counter));
            }
        });
        Self { url, hits }
    }

    /// How many requests of `route` it answered.
    fn hits(&self, route: &str) -> usize {
        self.hits.lock().unwrap().get(route).copied().unwrap_or(0)
    }
}

struct Request {
    method: String,
    path: String,
    accept: Option<String>,
    body: Vec<u8>,
}

/// Reads one HTTP/1.1 request (headers, then `content-length` bytes of body).
async fn read_request(sock: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let mut length = 0;
    let mut accept = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().ok()?,
                "accept" => accept = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request { method, path, accept, body })
}

fn route(r: &Request) -> &'static str {
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", p) if p.starts_with("/v1/utxos?") => "utxos",
        ("GET", p) if p.ends_with("/exit-data") => "exit-data",
        ("POST", "/v1/inclusions") => "inclusions",
        ("GET", p) if p.starts_with("/v1/blocks/") => "block",
        ("GET", p) if p.starts_with("/v1/transactions/") => "tx",
        ("GET", "/status") => "status",
        _ => "other",
    }
}

/// Flips the last hex digit of every proof in `v`, however deep.
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

fn withheld(blknum: u64) -> Value {
    json!({"code": "BlockWithheld", "message": format!("block {blknum} is withheld")})
}

/// The child block a path's block number or position names, if any.
fn child_block_of(path: &str) -> Option<u64> {
    let tail = path.split('/').nth(3)?;
    let n: u128 = tail.parse().ok()?;
    let blknum = if path.ends_with("/exit-data") { n / 1_000_000_000 } else { n };
    let blknum = u64::try_from(blknum).ok()?;
    (blknum % 1000 == 0).then_some(blknum)
}

async fn serve(
    mut sock: TcpStream,
    http: reqwest::Client,
    upstream: String,
    mode: Mode,
    hits: Arc<Mutex<HashMap<&'static str, usize>>>,
) {
    let Some(req) = read_request(&mut sock).await else { return };
    let route = route(&req);
    *hits.lock().unwrap().entry(route).or_default() += 1;
    let json_answer = |status: u16, v: &Value| {
        (status, "application/json".to_owned(), None, v.to_string().into_bytes())
    };
    let (status, content_type, l1_timestamp, body) = match (mode, route) {
        // A tower's /status: it validated everything so far (the omitting one: far beyond).
        (_, "status") => {
            let synced: u64 =
                if mode == Mode::Omitting { 1_000_000_000_000 } else { 1_000_000_000 };
            json_answer(200, &json!({"status": {"syncedBlock": synced, "safe": true}}))
        }
        (Mode::Unavailable, _) => {
            (503, "text/plain".to_owned(), None, b"service unavailable".to_vec())
        }
        (Mode::Withholding, "block" | "exit-data") if let Some(b) = child_block_of(&req.path) => {
            json_answer(404, &json!({"error": withheld(b)}))
        }
        _ => {
            let mut call = match req.method.as_str() {
                "POST" => http.post(format!("{upstream}{}", req.path)),
                _ => http.get(format!("{upstream}{}", req.path)),
            };
            call = call.header("content-type", "application/json").body(req.body.clone());
            if let Some(a) = &req.accept {
                call = call.header("accept", a);
            }
            let resp = call.send().await.unwrap();
            let status = resp.status().as_u16();
            let header = |name: &str| {
                resp.headers().get(name).and_then(|v| v.to_str().ok()).map(ToOwned::to_owned)
            };
            let (content_type, l1_timestamp) =
                (header("content-type").unwrap_or_default(), header("x-plasma-l1-timestamp"));
            let bytes = resp.bytes().await.unwrap().to_vec();
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(mut v) if content_type.starts_with("application/json") => {
                    match (mode, route) {
                        (Mode::Lying, _) => flip_proofs(&mut v),
                        (Mode::Omitting, "utxos") => v = json!({"utxos": [], "next": null}),
                        (Mode::Inventing(pos), "utxos") => {
                            let owner = req.path.split("owner=").nth(1).unwrap_or_default();
                            let owner = owner.split('&').next().unwrap_or_default();
                            let list = v["utxos"].as_array_mut().unwrap();
                            list.push(json!({"utxoPos": pos.to_string(), "owner": owner, "token": Address::ZERO, "amount": "1"}));
                            list.sort_by_key(|u| {
                                u["utxoPos"].as_str().unwrap().parse::<u128>().unwrap()
                            });
                        }
                        (Mode::Withholding, "inclusions") => {
                            for item in v["inclusions"].as_array_mut().unwrap() {
                                let b = item["blknum"].as_u64().unwrap();
                                if b % 1000 == 0 {
                                    *item = json!({"blknum": b, "txIndex": item["txIndex"], "error": withheld(b)});
                                }
                            }
                        }
                        _ => {}
                    }
                    (status, content_type, l1_timestamp, v.to_string().into_bytes())
                }
                _ => (status, content_type, l1_timestamp, bytes),
            }
        }
    };
    let mut head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    if let Some(ts) = l1_timestamp {
        head.push_str(&format!("x-plasma-l1-timestamp: {ts}\r\n"));
    }
    head.push_str("\r\n");
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(&body).await;
    let _ = sock.shutdown().await;
}

/// Account `i`'s wallet reading from `operator_url` (and no towers yet), its store `name`.
async fn wallet_at(env: &Env, i: usize, operator_url: &str, name: &str) -> Wallet {
    let config = WalletConfig {
        l1_rpc_url: env.anvil.endpoint(),
        operator_url: operator_url.to_owned(),
        framework: env.deployment.framework,
        chain_id: Some(env.anvil.chain_id()),
        store_path: env.dir.path().join(format!("{name}.redb")),
    };
    Wallet::connect(key(env, i), &config).await.unwrap()
}

/// Alice (account 1) deposits 10 ether and pays bob (account 2) 4 in child block 1000; returns
/// bob's output's position, once his honest wallet verified it.
async fn alice_pays_bob(env: &Env, node: &Node) -> u128 {
    let alice = wallet(env, node, 1).await;
    let pos = alice.deposit_eth(eth(10)).await.unwrap();
    alice.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(key(env, 2).address(), Address::ZERO, eth(4), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    let bob_pos = u128::from(blknum) * 1_000_000_000;
    wallet(env, node, 2).await.wait_for_output(bob_pos, Duration::from_secs(20)).await.unwrap();
    bob_pos
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_reads_from_a_tower_when_the_operator_is_down_unavailable_or_withholding() {
    let env = env().await;
    let node = operator(&env).await;
    let real = format!("http://{}", node.addr);
    let bob_pos = alice_pays_bob(&env, &node).await;
    let tower = Stub::start(&real, Mode::Relay).await;
    let withholding = Stub::start(&real, Mode::Withholding).await;

    // Without towers, a withheld block leaves the payment pending: nothing is proven.
    let alone = wallet_at(&env, 2, &withholding.url, "alone").await;
    let r = alone.sync().await.unwrap();
    assert_eq!((r.added, r.pending), (0, 1));
    assert_eq!(alone.balance(Address::ZERO).unwrap(), U256::ZERO);

    let unavailable = Stub::start(&real, Mode::Unavailable).await;
    let cases = [
        ("down", plasma_testkit::dead_url()),
        ("unavailable", unavailable.url.clone()),
        ("withholding", withholding.url.clone()),
    ];
    for (name, operator_url) in cases {
        let listed_before = tower.hits("utxos");
        let proofs_before = tower.hits("inclusions");
        let bob =
            wallet_at(&env, 2, &operator_url, name).await.with_towers(vec![tower.url.clone()]);
        let r = bob.sync().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((r.added, r.pending), (1, 0), "{name}");
        assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(4), "{name}");
        let o = &bob.outputs().unwrap()[0];
        assert_eq!(o.utxo_pos, bob_pos);
        // The creating payment was checked too, its input's proof from the tower.
        assert_eq!(o.verification, Verification::ProofTx, "{name}: {:?}", o.problem);
        assert!(tower.hits("inclusions") > proofs_before, "{name}: the tower served the proofs");
        if name == "withholding" {
            // The operator still lists: only the withheld block's data came from the tower.
            assert_eq!(tower.hits("utxos"), listed_before, "{name}");
            assert!(withholding.hits("inclusions") > 0);
        } else {
            assert!(tower.hits("utxos") > listed_before, "{name}: the tower listed");
        }
        // A refresh (what exits run first) keeps the output unspent: the towers list it.
        bob.refresh().await.unwrap();
        assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(4), "{name}");
    }
    assert!(unavailable.hits("utxos") > 0, "the operator is always asked first");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_source_is_skipped_and_when_every_source_fails_each_is_named() {
    let env = env().await;
    let node = operator(&env).await;
    let real = format!("http://{}", node.addr);
    alice_pays_bob(&env, &node).await;
    let lying_operator = Stub::start(&real, Mode::Lying).await;
    let lying_tower = Stub::start(&real, Mode::Lying).await;
    let honest_tower = Stub::start(&real, Mode::Relay).await;

    // The operator and the first tower lie; the second tower's data verifies and is kept.
    let bob = wallet_at(&env, 2, &lying_operator.url, "skips")
        .await
        .with_towers(vec![lying_tower.url.clone(), honest_tower.url.clone()]);
    assert_eq!(bob.towers(), [lying_tower.url.clone(), honest_tower.url.clone()]);
    let r = bob.sync().await.unwrap();
    assert_eq!(r.added, 1);
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(4));
    assert_eq!(bob.outputs().unwrap()[0].verification, Verification::ProofTx);
    assert!(lying_tower.hits("inclusions") > 0, "the lying tower was asked, and skipped");
    assert!(honest_tower.hits("inclusions") > 0);

    // A 503 operator and a lying tower: the sync fails, naming both, and stores nothing.
    let fooled = wallet_at(&env, 2, &Stub::start(&real, Mode::Unavailable).await.url, "fooled")
        .await
        .with_towers(vec![lying_tower.url.clone()]);
    match fooled.sync().await {
        Err(SdkError::AllSourcesFailed { attempts, .. }) => {
            assert_eq!(attempts.len(), 2, "{attempts:?}");
            assert!(attempts[0].source.is_operator());
            assert!(
                matches!(&attempts[0].failure, SourceFailure::Malformed(m) if m.contains("503")),
                "{attempts:?}"
            );
            assert_eq!(
                attempts[1].source,
                SourceId::Tower { index: 0, url: lying_tower.url.clone() }
            );
            assert!(matches!(attempts[1].failure, SourceFailure::Mismatch(_)), "{attempts:?}");
        }
        other => panic!("expected AllSourcesFailed, got {other:?}"),
    }
    assert!(fooled.outputs().unwrap().is_empty(), "nothing from the liar was stored");

    // Nobody answers: named too, and worth retrying.
    let (dead_operator, dead_tower) = (plasma_testkit::dead_url(), plasma_testkit::dead_url());
    let alone =
        wallet_at(&env, 2, &dead_operator, "alone").await.with_towers(vec![dead_tower.clone()]);
    let e = alone.sync().await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    let text = e.to_string();
    assert!(text.contains(&dead_operator) && text.contains(&dead_tower), "{text}");
    match e {
        SdkError::AllSourcesFailed { attempts, .. } => {
            assert_eq!(attempts.len(), 2);
            assert!(attempts.iter().all(|a| matches!(a.failure, SourceFailure::Unreachable(_))));
        }
        other => panic!("expected AllSourcesFailed, got {other:?}"),
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_from_the_towers_alone_then_exit_with_the_operator_down() {
    let env = env().await;
    let node = operator(&env).await;
    let real = format!("http://{}", node.addr);
    // bob pays alice 3 of 5 ether (child block), alice deposits 1 and 2.
    let bob = wallet(&env, &node, 2).await;
    let alice = wallet(&env, &node, 1).await;
    let d = bob.deposit_eth(eth(5)).await.unwrap();
    bob.wait_for_output(d, Duration::from_secs(20)).await.unwrap();
    let hash = bob.send(alice.address(), Address::ZERO, eth(3), U256::ZERO).await.unwrap();
    let blknum = bob.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    let (paid, bob_change) =
        (u128::from(blknum) * 1_000_000_000, u128::from(blknum) * 1_000_000_000 + 1);
    let a1 = alice.deposit_eth(eth(1)).await.unwrap();
    let a2 = alice.deposit_eth(eth(2)).await.unwrap();
    for p in [paid, a1, a2] {
        alice.wait_for_output(p, Duration::from_secs(20)).await.unwrap();
    }
    assert_eq!(alice.balance(Address::ZERO).unwrap(), eth(6));

    // Alice's store is lost and the operator is gone. Three towers: one leaves her outputs out
    // of its listing, one also lists bob's change as hers, one is honest.
    let omitting = Stub::start(&real, Mode::Omitting).await;
    let inventing = Stub::start(&real, Mode::Inventing(bob_change)).await;
    let honest = Stub::start(&real, Mode::Relay).await;
    let restored = wallet_at(&env, 1, &plasma_testkit::dead_url(), "restored")
        .await
        .with_towers(vec![omitting.url.clone(), inventing.url.clone(), honest.url.clone()]);
    assert!(restored.outputs().unwrap().is_empty());
    let r = restored.restore().await.unwrap();
    assert_eq!(r.sources.len(), 4);
    assert!(r.sources[0].source.is_operator());
    assert_eq!(r.sources[0].listed, None);
    assert!(matches!(r.sources[0].error, Some(SourceFailure::Unreachable(_))), "{r:?}");
    assert_eq!((r.sources[1].listed, r.sources[1].only_here), (Some(0), 0));
    assert_eq!((r.sources[2].listed, r.sources[2].only_here), (Some(4), 1));
    assert_eq!((r.sources[3].listed, r.sources[3].only_here), (Some(3), 0));
    assert_eq!((r.listed, r.added, r.known, r.pending), (4, 3, 0, 0), "{r:?}");
    // Proofs from the first source that answered: the omitting tower serves honest proofs.
    assert_eq!(r.sources.iter().map(|s| s.proofs).collect::<Vec<_>>(), [0, 3, 0, 0]);
    // Bob's change is not hers: rejected, and the rest restored anyway.
    assert_eq!(r.rejected.len(), 1, "{r:?}");
    assert_eq!(r.rejected[0].0, bob_change);
    assert_eq!(restored.balance(Address::ZERO).unwrap(), eth(6));
    let mut positions: Vec<u128> = restored.outputs().unwrap().iter().map(|o| o.utxo_pos).collect();
    positions.sort_unstable();
    // The operator is down: every output stands on the towers' word (labelled), and the
    // omitting tower's empty listing marks nothing.
    assert_eq!(r.tower_only, positions, "{r:?}");
    assert!(r.unlisted.is_empty() && r.gone == 0, "{r:?}");
    assert_eq!(
        positions,
        [a1, paid, a2]
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert!(
        restored
            .outputs()
            .unwrap()
            .iter()
            .all(|o| o.verification == Verification::ProofTx && o.status == OutputStatus::Unspent)
    );

    // Exit everything with the operator still down: the re-check before the exits lists from the
    // towers (the omitting one does not make her outputs look spent), the data is in the store.
    let report = restored.start_exits(&positions).await.unwrap();
    assert_eq!(report.started().len(), 3, "{report:?}");
    advance(&env.provider, 3 * PERIOD).await;
    restored.process_exits(Address::ZERO, 10).await.unwrap();
    let bond = DeployConfig::devnet(Address::ZERO, PERIOD).standard_exit_bond;
    // She processed her own exits: the bounties come back to her too.
    assert_eq!(restored.withdrawable(Address::ZERO).await.unwrap(), eth(6) + bond * U256::from(3));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exit_reads_an_output_never_synced_from_a_tower() {
    let env = env().await;
    let node = operator(&env).await;
    let real = format!("http://{}", node.addr);
    let bob_pos = alice_pays_bob(&env, &node).await;
    let tower = Stub::start(&real, Mode::Relay).await;
    // A fresh store, the operator withholding the block: the exit data comes from the tower.
    let withholding = Stub::start(&real, Mode::Withholding).await;
    let bob = wallet_at(&env, 2, &withholding.url, "never-synced")
        .await
        .with_towers(vec![tower.url.clone()]);
    let report = bob.start_exits(&[bob_pos]).await.unwrap();
    assert_eq!(report.started(), [bob_pos]);
    assert!(withholding.hits("exit-data") > 0 && tower.hits("exit-data") > 0);
    let o = bob.outputs().unwrap().pop().unwrap();
    assert_eq!((o.utxo_pos, o.amount, o.status), (bob_pos, eth(4), OutputStatus::Exiting));
    assert_eq!(bob.exit_status(bob_pos).await.unwrap(), 1);

    // Without a tower, the withheld output cannot be read: named, nothing sent.
    let alone = wallet_at(&env, 2, &withholding.url, "alone").await;
    match alone.start_exits(&[bob_pos]).await {
        Err(SdkError::OperatorRefused { code, .. }) => assert_eq!(code, "BlockWithheld"),
        other => panic!("expected BlockWithheld, got {other:?}"),
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_restores_from_a_tower_and_exits_with_the_operator_down() {
    let env = env().await;
    let node = operator(&env).await;
    let real = format!("http://{}", node.addr);
    let alice = wallet(&env, &node, 1).await;
    let pos = alice.deposit_eth(eth(1)).await.unwrap();
    alice.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();
    let tower = Stub::start(&real, Mode::Relay).await;
    let (rpc, framework) = (env.anvil.endpoint(), env.deployment.framework.to_string());
    let store = env.dir.path().join("cli-restored.redb").to_str().unwrap().to_owned();
    let key1 = format!("0x{}", hex::encode(env.anvil.keys()[1].to_bytes()));
    let dead = plasma_testkit::dead_url();
    let tower_url = tower.url.clone();
    tokio::task::spawn_blocking(move || {
        let plasma = |args: &[&str], towers_env: Option<&str>| {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_plasma"));
            cmd.args(["--json", "--l1.rpc-url", &rpc, "--operator.url", &dead])
                .args(["--framework", &framework, "--private-key", &key1, "--store", &store])
                .args(args)
                .env_remove("PLASMA_TOWERS")
                .env_remove("PLASMA_CONFIG");
            if let Some(t) = towers_env {
                cmd.env("PLASMA_TOWERS", t);
            }
            let out = cmd.output().unwrap();
            (
                out.status.success(),
                serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        // Without towers there is nothing to restore from.
        let (ok, v, _) = plasma(&["restore"], None);
        assert!(!ok, "{v}");
        assert!(v["error"].as_str().unwrap().contains(&dead), "{v}");
        let (ok, v, stderr) = plasma(&["--towers", &tower_url, "restore"], None);
        assert!(ok, "{v}");
        assert_eq!(v["added"], 1, "{v}");
        // Only the tower lists it (the operator is down): labelled, and the exit's risk told.
        assert_eq!(v["towerOnly"], json!([pos.to_string()]), "{v}");
        assert_eq!(v["unlisted"], json!([]), "{v}");
        assert!(
            stderr.contains("listed only by towers") && stderr.contains("LOSES ITS BOND"),
            "{stderr}"
        );
        assert_eq!(v["balance"], "1000000000000000000");
        assert_eq!(v["sources"][0]["operator"], true);
        assert!(v["sources"][0]["error"].as_str().unwrap().starts_with("unreachable"), "{v}");
        assert_eq!(v["sources"][1]["listed"], 1);
        assert_eq!(v["sources"][1]["proofs"], 1);
        // The towers from the environment this time; the exit needs only L1 and the store.
        let (ok, v, _) = plasma(&["exit"], Some(&tower_url));
        assert!(ok, "{v}");
        assert_eq!(v["exits"], json!([pos.to_string()]));
    })
    .await
    .unwrap();
    assert_eq!(alice.exit_status(pos).await.unwrap(), 1);
    node.stop().await;
}

/// Rewrites stored output `pos` of the wallet whose store is `name` (no wallet may hold it open).
fn edit_stored(env: &Env, name: &str, pos: u128, edit: impl FnOnce(&mut plasma_sdk::StoredOutput)) {
    let store = ProofStore::open(&env.dir.path().join(format!("{name}.redb"))).unwrap();
    let mut o = store.get(pos).unwrap().unwrap();
    edit(&mut o);
    store.put(&o).unwrap();
}

/// F3 (DA-11: a tower is trusted for nothing). With the operator down, a tower that lists
/// nothing and claims to have validated block 10^12 does not make the wallet take its unspent
/// output for spent: the output stays counted and exitable, named "not listed by the towers".
/// A `spent` status an older wallet took from towers' listings alone is no evidence either: the
/// next listing restores it. A spend the operator showed stays, whatever a tower lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_towers_empty_listing_never_marks_an_output_spent() {
    let env = env().await;
    let node = operator(&env).await;
    let real = format!("http://{}", node.addr);
    let bob_pos = alice_pays_bob(&env, &node).await;
    let liar = Stub::start(&real, Mode::Omitting).await;
    let honest = Stub::start(&real, Mode::Relay).await;
    let dead = plasma_testkit::dead_url();
    {
        let bob = wallet_at(&env, 2, &real, "bob").await;
        bob.sync().await.unwrap();
        assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(4));
    }

    // The operator is down; the only tower lies by omission.
    let mut bob = wallet_at(&env, 2, &dead, "bob").await.with_towers(vec![liar.url.clone()]);
    let r = bob.sync().await.unwrap();
    assert!(liar.hits("utxos") > 0, "the tower listed");
    assert_eq!((r.gone, r.unlisted.as_slice()), (0, [bob_pos].as_slice()), "{r:?}");
    assert!(r.tower_only.is_empty(), "{r:?}");
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(4), "{r:?}");
    let o = bob.outputs().unwrap().pop().unwrap();
    assert_eq!((o.status, o.evidence, o.spent_source), (OutputStatus::Unspent, None, None));
    // What an exit runs first: still unspent, still exitable.
    assert_eq!(bob.refresh().await.unwrap(), 0);
    assert_eq!(bob.exitable().unwrap().len(), 1);
    // With an honest tower beside the liar, the union lists it: on the towers' word alone.
    bob.set_towers(vec![liar.url.clone(), honest.url.clone()]);
    let r = bob.sync().await.unwrap();
    assert!(r.unlisted.is_empty() && r.gone == 0, "{r:?}");
    assert_eq!(r.tower_only, [bob_pos], "{r:?}");
    drop(bob);

    // An older version marked it spent on the liar's word (its evidence text, no source).
    let old_evidence = "the operator did not answer, and no tower that did (tower 0 http://x) \
                        lists it as unspent though one validated its block (to block \
                        1000000000000); if they lie, exit it unchecked (plasma exit --force)";
    let mark = |source: Option<SpentSource>, evidence: &str| {
        let evidence = evidence.to_owned();
        move |o: &mut plasma_sdk::StoredOutput| {
            o.status = OutputStatus::Spent;
            o.evidence = Some(evidence);
            o.spent_source = source;
        }
    };
    edit_stored(&env, "bob", bob_pos, mark(None, old_evidence));
    let bob = wallet_at(&env, 2, &dead, "bob").await.with_towers(vec![honest.url.clone()]);
    assert_eq!(bob.balance(Address::ZERO).unwrap(), U256::ZERO, "as the old version left it");
    let r = bob.sync().await.unwrap();
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(4), "the listing restores it: {r:?}");
    assert!(r.unlisted.is_empty(), "{r:?}");
    let o = bob.outputs().unwrap().pop().unwrap();
    assert_eq!((o.status, o.spent_source), (OutputStatus::Unspent, None));
    drop(bob);

    // Recorded as the towers' word and no tower lists it: no evidence either way, so unspent,
    // named as not listed.
    edit_stored(&env, "bob", bob_pos, mark(Some(SpentSource::Towers), old_evidence));
    let bob = wallet_at(&env, 2, &dead, "bob").await.with_towers(vec![liar.url.clone()]);
    let r = bob.sync().await.unwrap();
    assert_eq!((r.gone, r.unlisted.as_slice()), (0, [bob_pos].as_slice()), "{r:?}");
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(4));
    drop(bob);

    // The operator's word (it no longer listed it) holds against a tower's listing.
    let by_operator = "the operator no longer lists it as unspent; if the operator lies, exit it \
                       unchecked (plasma exit --force)";
    for source in [None, Some(SpentSource::Operator)] {
        edit_stored(&env, "bob", bob_pos, mark(source, by_operator));
        let bob = wallet_at(&env, 2, &dead, "bob").await.with_towers(vec![honest.url.clone()]);
        let r = bob.sync().await.unwrap();
        let o = bob.outputs().unwrap().pop().unwrap();
        assert_eq!(o.status, OutputStatus::Spent, "{source:?}: {r:?}");
        assert_eq!(o.spent_source(), Some(SpentSource::Operator));
        assert_eq!(bob.balance(Address::ZERO).unwrap(), U256::ZERO, "{source:?}");
        // A plain exit is refused on the operator's word, as before.
        assert!(matches!(bob.start_exits(&[bob_pos]).await, Err(SdkError::OutputSpent { .. })));
    }
    // And the operator itself, once back, lists it again: unspent.
    let bob = wallet_at(&env, 2, &real, "bob").await;
    bob.sync().await.unwrap();
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(4));
    node.stop().await;
}

/// DA-12 with the operator down: a restore stores what only towers list, but a tower lists from
/// its own (possibly stale) history, so such an output may already be spent. The report names
/// them (`tower_only`). With the operator answering, its listing shows the spent one gone and
/// nothing is labelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_labels_the_outputs_only_towers_list() {
    let env = env().await;
    let node = operator(&env).await;
    let real = format!("http://{}", node.addr);
    // Alice deposits 10 and pays bob 4: her deposit is spent, her change (6) is not.
    let alice = wallet(&env, &node, 1).await;
    let dep = alice.deposit_eth(eth(10)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(key(&env, 2).address(), Address::ZERO, eth(4), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    let change = u128::from(blknum) * 1_000_000_000 + 1;
    alice.wait_for_output(change, Duration::from_secs(20)).await.unwrap();
    // A stale tower still lists her spent deposit; an honest one lists her change.
    let stale = Stub::start(&real, Mode::Inventing(dep)).await;
    let honest = Stub::start(&real, Mode::Relay).await;
    let towers = vec![stale.url.clone(), honest.url.clone()];

    let down =
        wallet_at(&env, 1, &plasma_testkit::dead_url(), "down").await.with_towers(towers.clone());
    let r = down.restore().await.unwrap();
    assert_eq!((r.listed, r.added, r.gone), (2, 2, 0), "{r:?}");
    assert!(r.rejected.is_empty() && r.unlisted.is_empty(), "{r:?}");
    assert_eq!(r.tower_only, [dep, change], "the operator is down: both on the towers' word");
    // Counted (nothing verifiable says the deposit is spent): hence the label.
    assert_eq!(down.balance(Address::ZERO).unwrap(), eth(16));

    let up = wallet_at(&env, 1, &real, "up").await.with_towers(towers);
    let r = up.restore().await.unwrap();
    assert_eq!((r.listed, r.added, r.gone), (2, 2, 1), "{r:?}");
    assert!(r.tower_only.is_empty() && r.unlisted.is_empty(), "{r:?}");
    assert_eq!(r.sources[1].only_here, 1, "the stale tower alone lists the deposit");
    let spent = up.outputs().unwrap().into_iter().find(|o| o.utxo_pos == dep).unwrap();
    assert_eq!(
        (spent.status, spent.spent_source),
        (OutputStatus::Spent, Some(SpentSource::Operator))
    );
    assert_eq!(up.balance(Address::ZERO).unwrap(), eth(6));
    node.stop().await;
}
