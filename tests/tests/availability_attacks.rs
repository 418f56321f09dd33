//! An outside audit of issue 17 (spec/07-availability.md) on the real binaries: attacks by a
//! tower, a wallet-facing server, a slow network and a byzantine operator on the availability
//! design. Tests marked `Audit Fn` failed when the audit found them and pin the fixes; the others
//! pin attacks that were defended from the start.
//!
//! - F1: one tower that trickles its answer holds the rebuild's whole round until the deadline,
//!   so towers that were briefly unreachable are never asked again: a block that `k` honest
//!   towers hold is called withheld.
//! - F2: a watcher that looks at a withheld (and rebuilt) block only after its deadline — one that
//!   starts late, syncs from scratch or was down — gives its verdict after two polls, before its
//!   rebuild can finish on a slow link: the chain the other towers call safe it calls byzantine.
//! - F3: a wallet-facing server that claims to have validated far ahead and lists nothing makes a
//!   wallet mark its unspent output spent; no honest tower's listing undoes it later.
//! - F4: a byzantine operator fills a tower's fault log (disk and memory) with one equivocation
//!   fault per PUT of yet another header for the same block.
//! - Defended (pins): hostile PUTs (unsigned headers, other blocks, far-future blocks, oversized
//!   bodies) are refused before anything is stored or named; a late watcher with fast peers
//!   rebuilds a historical withheld block.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::{
    primitives::{Address, U256, keccak256},
    signers::local::PrivateKeySigner,
};
use plasma_da::{ChunkEnvelope, Params};
use plasma_e2e::{
    Devnet, bin_dir, block_of, put_chunk,
    status::{da, faults, rebuilt, validated},
};
use plasma_testkit::dead_url;
use serde_json::Value;
use std::{
    process::{Child, Command},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PERIOD: u64 = 60;
/// The availability timeout `A` (WATCH-3).
const AVAILABILITY: u64 = 10;

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

fn safe(status: &Value) -> Option<bool> {
    status["status"]["safe"].as_bool()
}

async fn wait_committed(net: &Devnet, blknum: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while net.next_child_block().await.unwrap() <= blknum {
        assert!(tokio::time::Instant::now() < deadline, "block {blknum} never committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put_raw(url: &str, blknum: u64, body: Vec<u8>) -> (u16, Value) {
    put_chunk(url, blknum, body).await.unwrap()
}

async fn put_envelope(url: &str, blknum: u64, envelope: &ChunkEnvelope) -> (u16, Value) {
    put_raw(url, blknum, envelope.encode()).await
}

fn free_port() -> u16 {
    plasma_e2e::reserve_port().unwrap()
}

// ------------------------------------------------------------------------------------------------
// Network actors played in the test: proxies in front of real towers, a trickling tower, a lying
// wallet-facing server. Each reads the request head, then answers as it is told.

async fn read_head(sock: &mut tokio::net::TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    while !bytes.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&bytes).to_string()
}

fn path_of(head: &str) -> String {
    head.split_whitespace().nth(1).unwrap_or("/").to_owned()
}

async fn respond(sock: &mut tokio::net::TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    let _ = sock.write_all(&out).await;
}

/// Forwards GETs to `target` after `delay` (a slow link), or answers 503 while `open` is false
/// (a tower briefly unreachable).
async fn proxy(target: String, delay: Duration, open: Arc<AtomicBool>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let (http, target, open) = (http.clone(), target.clone(), open.clone());
            tokio::spawn(async move {
                let head = read_head(&mut sock).await;
                if !open.load(Ordering::SeqCst) {
                    let body = br#"{"error":{"code":"Unavailable","message":"down"}}"#;
                    return respond(&mut sock, 503, "application/json", body).await;
                }
                tokio::time::sleep(delay).await;
                match http.get(format!("{target}{}", path_of(&head))).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let ct = r
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("application/json")
                            .to_owned();
                        let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                        respond(&mut sock, status, &ct, &body).await;
                    }
                    Err(_) => respond(&mut sock, 502, "application/json", b"{}").await,
                }
            });
        }
    });
    url
}

/// A hostile tower: answers every request `200` with a chunk's content type and a body it sends
/// one byte a second — never stalling long enough for a read timeout.
async fn trickling_tower() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let _ = read_head(&mut sock).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncontent-length: 100000\r\n\r\n",
                    plasma_da::CHUNK_MEDIA_TYPE
                );
                if sock.write_all(head.as_bytes()).await.is_err() {
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
    url
}

/// A lying wallet-facing server (DA-11's "tower"): says it validated up to a far block and lists
/// no output for anyone.
async fn lying_listing_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let path = path_of(&read_head(&mut sock).await);
                if path.starts_with("/status") {
                    let body = br#"{"status":{"syncedBlock":1000000000000,"safe":true}}"#;
                    respond(&mut sock, 200, "application/json", body).await;
                } else if path.starts_with("/v1/utxos") {
                    respond(&mut sock, 200, "application/json", br#"{"utxos":[],"next":null}"#)
                        .await;
                } else {
                    let body = br#"{"error":{"code":"BlockUnknown","message":"no"}}"#;
                    respond(&mut sock, 404, "application/json", body).await;
                }
            });
        }
    });
    url
}

/// A watcher process started by the test: a *reader* (DA-10: it rebuilds, keeps no chunk) with
/// its own tower list — the set's towers, or proxies and hostile servers in their places.
struct Reader {
    child: Child,
    url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Reader {
    async fn start(net: &Devnet, name: &str, towers: &[String], extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let key = PrivateKeySigner::from_bytes(&keccak256(format!("audit reader {name}"))).unwrap();
        net.fund(key.address(), eth(10)).await.unwrap();
        let log = dir.path().join("reader.log");
        let child = Command::new(bin_dir().join("plasma-watcher"))
            .args(["--l1.rpc-url", &net.anvil.endpoint()])
            .args(["--l1.framework", &net.deployment.framework.to_string()])
            .args(["--operator.url", &net.operator_url])
            .args(["--api.listen", &format!("127.0.0.1:{port}")])
            .args(["--availability-timeout", &AVAILABILITY.to_string()])
            .args(["--stuck-after", "5", "--l1.block-time", "1"])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--da.k", "3", "--da.towers", &towers.join(",")])
            .args(extra)
            .env("PLASMA_WATCHER_L1_PRIVATE_KEY", format!("0x{}", hex::encode(key.to_bytes())))
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
            .spawn()
            .expect("plasma-watcher (build it first)");
        let url = format!("http://127.0.0.1:{port}");
        let reader = Self { child, url, log, _dir: dir };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if reqwest::get(format!("{}/health", reader.url))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return reader;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "reader not healthy:\n{}",
                reader.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn status(&self) -> Value {
        match reqwest::get(format!("{}/status", self.url)).await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    /// Waits until the reader gave a verdict on `blknum`: validated it (safe) or called the chain
    /// byzantine. Returns the status.
    async fn verdict(&self, blknum: u64, secs: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status().await;
            if validated(&s) >= blknum || safe(&s) == Some(false) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no verdict on {blknum}: {s}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alice deposits 10 ETH and pays bob 4: the block that carries it is the first child block
/// (1000), which the operator's devnet fault withholds. Returns after its commitment.
async fn pay_into_withheld_block(net: &Devnet) {
    let alice = net.wallet(1).await.unwrap();
    let bob = net.anvil.addresses()[2];
    let dep = alice.deposit_eth(eth(10)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    alice.sync().await.unwrap();
    alice.send(bob, Address::ZERO, eth(4), U256::ZERO).await.unwrap();
    wait_committed(net, 1000).await;
}

// ------------------------------------------------------------------------------------------------

/// Audit F1, fixed (DA-10, "rebuilding … in parallel, again and again until the deadline"): a reader
/// whose towers 1 and 2 are unreachable for the first two seconds after the commitment, and
/// whose tower 3 answers one byte a second. Towers 0, 1 and 2 hold good chunks (k = 3) long
/// before the deadline. The control reader (tower 3 simply down) rebuilds the block; the
/// attacked one never asks towers 1 and 2 again — `Tower::rebuild` waits for every ask of a round
/// (`while let Some(done) = asks.join_next().await`) and a peer's request may last the whole
/// availability window — so it calls the block withheld and the chain byzantine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_tower_does_not_stop_the_rebuild_from_asking_the_others_again() {
    let net =
        Devnet::start_with_towers(5, 3, PERIOD, AVAILABILITY, "[faults]\nwithhold = [1000]\n")
            .await
            .unwrap();
    let towers = net.tower_urls();
    let open = Arc::new(AtomicBool::new(false));
    let gated1 = proxy(towers[1].clone(), Duration::ZERO, open.clone()).await;
    let gated2 = proxy(towers[2].clone(), Duration::ZERO, open.clone()).await;
    let trickler = trickling_tower().await;
    // A stall timeout above A: the trickler never stalls a read (the tower's per-request timeout
    // is then max(A, stall), longer than the block's whole window).
    let extra = ["--stall-timeout", "12", "--poll-ms", "50"];
    let control = Reader::start(
        &net,
        "control",
        &[towers[0].clone(), gated1.clone(), gated2.clone(), dead_url(), dead_url()],
        &extra,
    )
    .await;
    let attacked = Reader::start(
        &net,
        "attacked",
        &[towers[0].clone(), gated1, gated2, trickler, dead_url()],
        &extra,
    )
    .await;

    pay_into_withheld_block(&net).await;
    // Towers 1 and 2 come back two seconds after the commitment (8 s before the deadline).
    tokio::time::sleep(Duration::from_secs(2)).await;
    open.store(true, Ordering::SeqCst);

    let s = control.verdict(1000, 60).await;
    assert_eq!(safe(&s), Some(true), "control reader: {s}\n{}", control.logs());
    assert!(rebuilt(&s).contains(&1000), "control reader rebuilt 1000: {s}");

    let s = attacked.verdict(1000, 60).await;
    assert_eq!(
        safe(&s),
        Some(true),
        "k honest towers held block 1000 eight seconds before its deadline, yet the reader with \
         one trickling peer called the chain byzantine: {s}\n{}",
        attacked.logs()
    );
    assert!(rebuilt(&s).contains(&1000), "{s}");
}

/// Pin (DA-10 for a late watcher): a reader started after block 1000's deadline, whose peers
/// answer at once, rebuilds the historical withheld block and calls the chain safe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reader_with_fast_peers_rebuilds_a_historical_withheld_block() {
    let net =
        Devnet::start_with_towers(5, 3, PERIOD, AVAILABILITY, "[faults]\nwithhold = [1000]\n")
            .await
            .unwrap();
    pay_into_withheld_block(&net).await;
    net.wait_tower(0, "block 1000 rebuilt", 60, |s| validated(s) >= 1000).await.unwrap();
    tokio::time::sleep(Duration::from_secs(AVAILABILITY)).await; // well past the deadline
    let towers = net.tower_urls();
    let late = Reader::start(
        &net,
        "late-fast",
        &[towers[0].clone(), towers[1].clone(), towers[2].clone(), dead_url(), dead_url()],
        &["--poll-ms", "500"],
    )
    .await;
    let s = late.verdict(1000, 60).await;
    assert_eq!(safe(&s), Some(true), "{s}\n{}", late.logs());
    assert!(rebuilt(&s).contains(&1000), "{s}");
}

/// Audit F2, fixed (WATCH-3 × DA-10): the same late reader, with the default poll (500 ms) and one of
/// its three reachable peers three seconds away (a 3 MB chunk of a full block over ~10 Mbit/s).
/// The towers rebuilt block 1000 and call the chain safe; the late reader gives its verdict two
/// polls after it first looked (`withheld_by_now`: `looked >= min(A, 2·poll)`), before its
/// rebuild holds k chunks, and calls the chain byzantine — two honest watchers, two verdicts on
/// one block. Every watcher that syncs from scratch, or was down through a withheld block's
/// window, meets this for every historical withheld block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reader_on_a_slow_link_still_rebuilds_a_historical_withheld_block() {
    let net =
        Devnet::start_with_towers(5, 3, PERIOD, AVAILABILITY, "[faults]\nwithhold = [1000]\n")
            .await
            .unwrap();
    pay_into_withheld_block(&net).await;
    let tower0 = net.wait_tower(0, "block 1000 rebuilt", 60, |s| validated(s) >= 1000).await;
    assert_eq!(safe(&tower0.unwrap()), Some(true));
    tokio::time::sleep(Duration::from_secs(AVAILABILITY)).await; // well past the deadline
    let towers = net.tower_urls();
    let slow2 =
        proxy(towers[2].clone(), Duration::from_secs(3), Arc::new(AtomicBool::new(true))).await;
    let late = Reader::start(
        &net,
        "late-slow",
        &[towers[0].clone(), towers[1].clone(), slow2, dead_url(), dead_url()],
        &["--poll-ms", "500"],
    )
    .await;
    let s = late.verdict(1000, 60).await;
    assert_eq!(
        safe(&s),
        Some(true),
        "towers 0-4 call block 1000 valid; the late reader calls it withheld: {s}\n{}",
        late.logs()
    );
    assert!(rebuilt(&s).contains(&1000), "{s}");
}

/// Audit F3, fixed (DA-12, `Listing::gone` / `TowerListings::vouched_to`): with the operator down, a
/// wallet-facing server that says it validated up to block 10^12 and lists nothing makes bob's
/// wallet mark his 4 ETH output spent ("no tower that did lists it though one validated its
/// block"): one unverifiable `/status` number vouches for every block. And once marked, an
/// honest tower's listing does not undo it (a tower listing never turns Spent back to Unspent):
/// with the operator gone for good, the wallet shows 0 and refuses a plain exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_tower_cannot_make_a_wallet_mark_its_output_spent() {
    let mut net = Devnet::start().await.unwrap();
    let alice = net.wallet(1).await.unwrap();
    let dep = alice.deposit_eth(eth(10)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    alice.sync().await.unwrap();
    let bob_address = net.anvil.addresses()[2];
    let h = alice.send(bob_address, Address::ZERO, eth(4), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(h, Duration::from_secs(30)).await.unwrap();
    {
        let bob = net.wallet(2).await.unwrap();
        bob.sync().await.unwrap();
        assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(4));
    }
    net.wait_watcher("payment validated", |s, _| validated(s) >= blknum).await.unwrap();
    net.kill_operator();

    let liar = lying_listing_server().await;
    {
        let bob = net.wallet(2).await.unwrap().with_towers(vec![liar]);
        let report = bob.sync().await;
        assert_eq!(
            bob.balance(Address::ZERO).unwrap(),
            eth(4),
            "one server's word (syncedBlock 10^12, empty listing) must not make bob's unspent \
             output spent: sync {report:?}"
        );
    }
    // The honest watcher (it validated the block and serves the read routes) lists it.
    let bob = net.wallet(2).await.unwrap().with_towers(vec![net.watcher_url.clone()]);
    bob.sync().await.unwrap();
    assert_eq!(
        bob.balance(Address::ZERO).unwrap(),
        eth(4),
        "an honest tower's listing restores it"
    );
}

/// Audit F4, fixed (DA-8/DA-9): a byzantine operator PUTs twenty different signed headers for one
/// block to tower 1. The first is stored; each other one is a new `Equivocation` fault kept on
/// disk for ever with both headers, and in memory (`fault_keys`) — so headers the operator signs
/// at no cost grow a tower's store and memory without bound. One equivocation per block proves
/// the fault; the rest are noise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocation_spam_does_not_grow_a_towers_fault_log() {
    let net = Devnet::start_with_towers(5, 3, PERIOD, AVAILABILITY, "").await.unwrap();
    net.wait_tower(1, "synced", 30, |s| validated(s) >= 1 || s["status"].is_object())
        .await
        .unwrap();
    let blknum = net.next_child_block().await.unwrap();
    let (signer, domain) = (net.operator_signer().unwrap(), net.domain());
    let params = Params::new(3, 5).unwrap();
    let url = net.tower_url(1).unwrap();
    let mut codes = Vec::new();
    for i in 0u8..20 {
        let (root, wire) = block_of(blknum, &[]);
        let mut wire = wire;
        wire.push(i); // another coding each time (the bytes need not decode for a PUT)
        let env = plasma_da::envelopes(&wire, blknum, root, params, &domain, &signer).unwrap();
        let (status, body) = put_envelope(&url, blknum, &env[1]).await;
        codes.push((status, body["error"]["code"].as_str().unwrap_or("").to_owned()));
    }
    assert_eq!(codes[0].0, 200, "{codes:?}");
    assert!(codes[1..].iter().all(|(s, c)| *s == 409 && c == "Equivocation"), "{codes:?}");
    let status = net.tower_status(1).await.unwrap();
    let equivocations =
        faults(&status).iter().filter(|(b, k)| *b == blknum && k == "Equivocation").count();
    assert!(
        equivocations <= 1,
        "{equivocations} equivocation faults stored for one block (one proves it): {status}"
    );
}

/// Pin (DA-8 against anyone on the network and the operator's far-future headers): refused
/// before anything is stored, and only operator-signed refusals are named as faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_puts_are_refused_before_anything_is_stored() {
    let net = Devnet::start_with_towers(5, 3, PERIOD, AVAILABILITY, "").await.unwrap();
    net.wait_tower(1, "running", 30, |s| s["status"].is_object()).await.unwrap();
    let url = net.tower_url(1).unwrap();
    let blknum = net.next_child_block().await.unwrap();
    let params = Params::new(3, 5).unwrap();
    let (signer, domain) = (net.operator_signer().unwrap(), net.domain());
    let (root, wire) = block_of(blknum, &[]);
    let before = net.tower_status(1).await.unwrap();

    // A header signed by someone else: NotOperator, not a fault (anyone can send it).
    let stranger = plasma_spec::Signer::from_bytes(&keccak256("stranger")).unwrap();
    let forged = plasma_da::envelopes(&wire, blknum, root, params, &domain, &stranger).unwrap();
    let (status, body) = put_envelope(&url, blknum, &forged[1]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("NotOperator")), "{body}");

    // The operator's header for a block a million blocks ahead: not stored.
    let far = blknum + 1_000_000_000;
    let ahead = plasma_da::envelopes(&wire, far, root, params, &domain, &signer).unwrap();
    let (status, body) = put_envelope(&url, far, &ahead[1]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("TooFarAhead")), "{body}");

    // Another tower's chunk, and a body over the 64 MiB bound.
    let good = plasma_da::envelopes(&wire, blknum, root, params, &domain, &signer).unwrap();
    let (status, body) = put_envelope(&url, blknum, &good[2]).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("WrongIndex")), "{body}");
    // Refused by its Content-Length before it is read: 413, or the connection closed under the
    // sender's body.
    let huge = reqwest::Client::new()
        .put(format!("{url}/v1/da/chunks/{blknum}"))
        .header("content-type", plasma_da::CHUNK_MEDIA_TYPE)
        .body(vec![0u8; (64 << 20) + 1])
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    match huge {
        Ok(r) => assert_eq!(r.status().as_u16(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }

    let after = net.tower_status(1).await.unwrap();
    assert_eq!(da(&after)["chunksStored"], da(&before)["chunksStored"], "nothing stored: {after}");
    assert_eq!(faults(&after), faults(&before), "no fault named for strangers' PUTs");
    // A forged chunk served by a peer does not displace the real one: tower 1 still takes it.
    let (status, body) = put_envelope(&url, blknum, &good[1]).await;
    assert_eq!(status, 200, "{body}");
}
