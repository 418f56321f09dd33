//! WATCH-3 end to end: the watcher downloads blocks from the real operator (anvil, the real
//! contracts) through a TCP proxy that plays a bad link — slow, dropping the connection in the
//! middle of a block, or going silent for good. A slow link or a dropped connection is not
//! withholding: the watcher resumes with an HTTP range and validates the block. A link that stops
//! for good makes the block withheld at its availability deadline, and not before.
//!
//! The proxy relays to the operator's own binary route (`GET /v1/blocks/{n}` with
//! `Accept: application/vnd.plasma.block`, ranges, OP-9). A small gateway that serves the same
//! bytes but ignores ranges plays a server that answers a resumed request with the whole block.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256},
    providers::{Provider, ProviderBuilder},
};
use plasma_contracts::PlasmaFramework;
use plasma_operator::Node;
use plasma_spec::wire;
use plasma_testkit::{Env, env, key, operator, wallet};
use plasma_watcher::{
    DownloadSettings, Event, Settings, Watcher,
    download::{DownloadProgress, Fetcher, Job},
};
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Logs with `RUST_LOG` (e.g. `watcher::download=debug`).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The operator's block `blknum`: its root and signed transactions (from its JSON).
async fn operator_block(node: SocketAddr, blknum: u64) -> Option<(B256, Vec<Bytes>)> {
    let resp = reqwest::get(format!("http://{node}/v1/blocks/{blknum}")).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let v: serde_json::Value = resp.json().await.ok()?;
    let root: B256 = v["root"].as_str()?.parse().ok()?;
    let txs = v["txs"]
        .as_array()?
        .iter()
        .map(|t| hex::decode(t.as_str().unwrap().trim_start_matches("0x")).unwrap().into())
        .collect();
    Some((root, txs))
}

/// The block in the wire format: the operator's own bytes when it serves them, else encoded here.
async fn wire_block(node: SocketAddr, blknum: u64) -> Option<Vec<u8>> {
    let resp = reqwest::Client::new()
        .get(format!("http://{node}/v1/blocks/{blknum}"))
        .header("accept", wire::MEDIA_TYPE)
        .send()
        .await
        .ok()?;
    let binary = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or_default().starts_with(wire::MEDIA_TYPE));
    if resp.status().is_success() && binary {
        return Some(resp.bytes().await.ok()?.to_vec());
    }
    let (root, txs) = operator_block(node, blknum).await?;
    Some(wire::encode_block(blknum, root, &txs, wire::Encoding::Zlib).unwrap())
}

/// A one-response-per-connection HTTP/1.1 server of `/v1/blocks/{n}` in the wire format, with
/// `Range: bytes=a-` (or, when told to, ignoring it).
struct Gateway {
    addr: SocketAddr,
    /// When false, a range is ignored (200 with the whole block), as some servers do.
    honour_range: Arc<AtomicBool>,
}

async fn gateway(node: &Node) -> Gateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let honour_range = Arc::new(AtomicBool::new(true));
    let node_addr = node.addr;
    let h = honour_range.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            let h = h.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while find(&head, b"\r\n\r\n").is_none() {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_lowercase();
                let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
                let from: Option<u64> = head
                    .lines()
                    .find_map(|l| l.strip_prefix("range: bytes="))
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.trim().parse().ok());
                let blknum: Option<u64> =
                    path.strip_prefix("/v1/blocks/").and_then(|n| n.parse().ok());
                let block = match blknum {
                    Some(n) => wire_block(node_addr, n).await,
                    None => None,
                };
                let reply = match (block, from) {
                    (None, _) => {
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_vec()
                    }
                    (Some(bytes), Some(a)) if h.load(Ordering::SeqCst) => {
                        let len = bytes.len() as u64;
                        if a >= len {
                            format!("HTTP/1.1 416 Range Not Satisfiable\r\ncontent-range: bytes */{len}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").into_bytes()
                        } else {
                            let mut out = format!(
                                "HTTP/1.1 206 Partial Content\r\ncontent-type: {}\r\ncontent-range: bytes {a}-{}/{len}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                                wire::MEDIA_TYPE, len - 1, len - a
                            )
                            .into_bytes();
                            out.extend_from_slice(&bytes[usize::try_from(a).unwrap()..]);
                            out
                        }
                    }
                    (Some(bytes), _) => {
                        let mut out = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: {}\r\naccept-ranges: bytes\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            wire::MEDIA_TYPE,
                            bytes.len()
                        )
                        .into_bytes();
                        out.extend_from_slice(&bytes);
                        out
                    }
                };
                let _ = conn.write_all(&reply).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Gateway { addr, honour_range }
}

/// What the link does to the next responses (their bodies: bytes after the response head).
#[derive(Debug, Default)]
struct Link {
    /// Bytes per second from the server to the client, in 50 ms slices.
    rate: Option<u64>,
    /// One-shot: the next successful response is cut (connection closed) after this many body
    /// bytes.
    drop_after: Option<u64>,
    /// The link delivers the block's bytes up to this offset, then goes silent for good: every
    /// response (a resumed one too, by its Content-Range) stops there with its connection open.
    stall_at: Option<u64>,
}

struct Proxy {
    addr: SocketAddr,
    link: Arc<parking_lot::Mutex<Link>>,
    /// Requests with a `Range` header seen going up.
    ranged: Arc<AtomicUsize>,
}

async fn proxy(upstream: SocketAddr) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let link = Arc::new(parking_lot::Mutex::new(Link::default()));
    let ranged = Arc::new(AtomicUsize::new(0));
    let (l, r) = (link.clone(), ranged.clone());
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            tokio::spawn(relay(client, upstream, l.clone(), r.clone()));
        }
    });
    Proxy { addr, link, ranged }
}

/// Relays one connection (HTTP/1.1, keep-alive: responses one after the other), applying the
/// link's modes to each response.
async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    link: Arc<parking_lot::Mutex<Link>>,
    ranged: Arc<AtomicUsize>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let mut up = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let text = String::from_utf8_lossy(&buf[..n]).to_lowercase();
            ranged.fetch_add(text.matches("\r\nrange: bytes=").count(), Ordering::SeqCst);
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
    });
    let mut buf = vec![0u8; 16 * 1024];
    // The response being relayed: its head so far, its head's and body's lengths, bytes sent.
    let mut head = Vec::new();
    let mut lens: Option<(u64, u64)> = None;
    let (mut drop_at, mut stall_at) = (None, None);
    let mut sent = 0u64;
    loop {
        let rate = link.lock().rate;
        let max = rate.map_or(buf.len(), |r| usize::try_from(r / 20).unwrap().clamp(1, buf.len()));
        let n = match sr.read(&mut buf[..max]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if lens.is_none() {
            head.extend_from_slice(&buf[..n]);
            if let Some(i) = find(&head, b"\r\n\r\n") {
                let h = i as u64 + 4;
                let text = String::from_utf8_lossy(&head[..i]).to_lowercase();
                let header = |name: &str| {
                    text.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned())
                };
                let body: u64 = header("content-length:").and_then(|v| v.parse().ok()).unwrap_or(0);
                lens = Some((h, body));
                if head.starts_with(b"HTTP/1.1 2") {
                    let offset: u64 = header("content-range: bytes ")
                        .and_then(|r| r.split('-').next().and_then(|a| a.parse().ok()))
                        .unwrap_or(0);
                    let mut l = link.lock();
                    drop_at = l.drop_after.take().map(|k| h + k);
                    stall_at = l.stall_at.map(|k| h + k.saturating_sub(offset));
                }
            }
        }
        let mut allowed = n as u64;
        let (mut cut, mut silent) = (false, false);
        if let Some(at) = drop_at
            && sent + allowed >= at
        {
            allowed = at - sent;
            cut = true;
        }
        if let Some(at) = stall_at
            && sent + allowed >= at
        {
            allowed = allowed.min(at - sent);
            silent = true;
        }
        let allowed_len = usize::try_from(allowed).unwrap();
        if cw.write_all(&buf[..allowed_len]).await.is_err() {
            break;
        }
        sent += allowed;
        if cut {
            up.abort();
            return; // both halves dropped: the connection is cut mid-body
        }
        if silent {
            // Hold the connection open, sending nothing, until the client gives up on it.
            let _ = (&mut up).await;
            return;
        }
        if let Some((h, body)) = lens
            && sent >= h + body
        {
            // The response is complete: the next bytes are the next response's.
            (head, lens, drop_at, stall_at, sent) = (Vec::new(), None, None, None, 0);
        }
        if rate.is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let _ = cw.shutdown().await;
    let _ = up.await;
}

async fn watcher(
    env: &Env,
    operator_url: String,
    availability: Duration,
    stall: Duration,
) -> plasma_watcher::Running {
    let key = key(env, 5);
    let me = key.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let settings = Settings {
        framework: env.deployment.framework,
        operator_url,
        confirmations: 1,
        poll: Duration::from_millis(50),
        availability_timeout: availability,
        process_exits: false,
        deadline_margin: Duration::from_secs(30),
        stuck_after: Duration::from_millis(300),
        l1_block_time: Duration::from_millis(100),
        download: DownloadSettings { stall_timeout: stall, prefetch: 2 },
    };
    let w = Watcher::new(settings, me, provider, &env.dir.path().join("watcher")).await.unwrap();
    plasma_watcher::start(w, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Pays `to` one ether; the block it was committed in.
async fn pay(from: &plasma_sdk::Wallet, to: Address) -> u64 {
    let hash = from.send(to, Address::ZERO, plasma_testkit::eth(1), U256::ZERO).await.unwrap();
    from.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap()
}

/// The L1 timestamp of block `blknum`'s commitment.
async fn committed_at(env: &Env, blknum: u64) -> u64 {
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let logs = framework.BlockSubmitted_filter().from_block(0).query().await.unwrap();
    logs.iter().find(|(e, _)| e.blknum == U256::from(blknum)).map(|(e, _)| e.timestamp).unwrap()
}

/// Waits until the watcher validated block `blknum` (or fails on a verdict, or after `within`).
async fn wait_validated(w: &plasma_watcher::Running, blknum: u64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let status = w.watcher.status();
        assert!(status.safe, "the watcher called the chain byzantine: {:?}", w.watcher.events());
        if status.synced_block >= blknum {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "block {blknum} not validated: {status:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_or_a_dropped_connection_is_not_withholding() {
    logs();
    let env = env().await;
    let node = operator(&env).await;
    let gw = gateway(&node).await;
    let px = proxy(node.addr).await;
    // Availability 20 s (2R <= p = 60 s); a two-second stall timeout, so any pause of the slow
    // link longer than that would show as a stall.
    let availability = Duration::from_secs(20);
    let w =
        watcher(&env, format!("http://{}", px.addr), availability, Duration::from_secs(2)).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let carol = wallet(&env, &node, 3).await;
    let dave = wallet(&env, &node, 4).await;
    for w in [&alice, &bob, &carol, &dave] {
        let dep = w.deposit_eth(plasma_testkit::eth(3)).await.unwrap();
        w.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    }

    // A slow link: 250 bytes a second, in 12-byte slices every 50 ms (never a stall; the
    // operator's response head, about 300 bytes, arrives well within the stall timeout). Four
    // payments at once make blocks of about a kilobyte in all: seconds over this link.
    px.link.lock().rate = Some(250);
    let started = std::time::Instant::now();
    let (a, b, c, d) = tokio::join!(
        pay(&alice, bob.address()),
        pay(&bob, carol.address()),
        pay(&carol, dave.address()),
        pay(&dave, alice.address())
    );
    let slow = a.max(b).max(c).max(d);
    let mut bytes = 0;
    for blknum in [a, b, c, d].into_iter().collect::<std::collections::BTreeSet<_>>() {
        bytes += wire_block(node.addr, blknum).await.unwrap().len();
    }
    wait_validated(&w, slow, availability).await;
    let took = started.elapsed();
    println!("blocks {a} {b} {c} {d}: {bytes} bytes over the slow link, validated after {took:?}");
    assert!(took >= Duration::from_secs(2), "the link was meant to take seconds: {took:?}");
    px.link.lock().rate = None;

    // A dropped connection in the middle of the body: resumed with a range.
    px.link.lock().drop_after = Some(70);
    let ranged_before = px.ranged.load(Ordering::SeqCst);
    alice.sync().await.unwrap();
    let hash =
        alice.send(bob.address(), Address::ZERO, plasma_testkit::eth(1), U256::ZERO).await.unwrap();
    let cut = alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    wait_validated(&w, cut, availability).await;
    assert!(px.link.lock().drop_after.is_none(), "the connection was cut");
    assert!(px.ranged.load(Ordering::SeqCst) > ranged_before, "the download resumed with a range");
    assert!(
        !w.watcher.events().iter().any(|e| matches!(e, Event::BlockWithheld { .. })),
        "{:?}",
        w.watcher.events()
    );

    // What a resumed download decodes is the operator's block, transaction for transaction —
    // also from a server that ignores the range and sends the whole block again (the gateway).
    let (root, txs) = operator_block(node.addr, cut).await.unwrap();
    let job = Job { blknum: cut, root, deadline_ms: now_ms() + 10_000 };
    gw.honour_range.store(false, Ordering::SeqCst);
    let px_ignoring = proxy(gw.addr).await;
    for via in [&px, &px_ignoring] {
        let fetcher = Fetcher::new(&format!("http://{}", via.addr), Duration::from_secs(1));
        via.link.lock().drop_after = Some(70);
        let progress = parking_lot::Mutex::new(DownloadProgress::default());
        let got = tokio::time::timeout(
            Duration::from_secs(10),
            fetcher.obtain(job, Duration::from_millis(50), &progress),
        )
        .await
        .unwrap();
        assert_eq!(got.signed, txs);
        let p = progress.lock().clone();
        assert!(p.done && p.attempts == 2 && p.resumes == 1, "{p:?}");
    }
    assert!(w.watcher.status().safe);
    w.stop().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_goes_silent_for_good_is_withheld_at_the_deadline_and_not_before() {
    logs();
    let env = env().await;
    let node = operator(&env).await;
    let px = proxy(node.addr).await;
    let availability = Duration::from_secs(6);
    let w =
        watcher(&env, format!("http://{}", px.addr), availability, Duration::from_secs(1)).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let dep = alice.deposit_eth(plasma_testkit::eth(3)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();

    // The link delivers the block's first 70 bytes, then nothing, the connection open.
    px.link.lock().stall_at = Some(70);
    let hash =
        alice.send(bob.address(), Address::ZERO, plasma_testkit::eth(1), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    let deadline_ms = committed_at(&env, blknum).await * 1000 + 6_000;
    let mut saw_stall = false;
    let seen_ms = loop {
        if w.watcher
            .events()
            .iter()
            .any(|e| matches!(e, Event::BlockWithheld { blknum: b } if *b == blknum))
        {
            break now_ms();
        }
        let status = w.watcher.status();
        let now = now_ms();
        assert!(now < deadline_ms + 10_000, "no verdict 10 s after the deadline: {status:?}");
        if now < deadline_ms {
            assert!(status.safe, "a verdict before the deadline: {:?}", w.watcher.events());
        }
        saw_stall |= status.downloads.iter().any(|d| {
            d.blknum == blknum
                && d.received > 0
                && d.last_error.as_deref().unwrap_or_default().starts_with("stalled")
        });
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(seen_ms >= deadline_ms, "withheld {} ms before the deadline", deadline_ms - seen_ms);
    assert!(saw_stall, "the download stalled and the status said so");
    let status = w.watcher.status();
    assert!(!status.safe && status.byzantine_from == Some(blknum), "{status:?}");
    assert!(status.downloads.iter().all(|d| d.blknum != blknum), "the download was stopped");
    w.stop().await;
    node.stop().await;
}

/// A server answering its connections in turn with `replies` (the last one for every connection
/// after), each sent in pieces of `piece` bytes every `every`.
async fn scripted(replies: Vec<Vec<u8>>, piece: usize, every: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut i = 0;
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            let reply = replies[i.min(replies.len() - 1)].clone();
            i += 1;
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while find(&head, b"\r\n\r\n").is_none() {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                for c in reply.chunks(piece) {
                    if conn.write_all(c).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(every).await;
                }
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}

fn ok_reply(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        wire::MEDIA_TYPE,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A block of `n` signed payments and its root.
fn sample_block(n: u16) -> (Vec<Bytes>, B256) {
    use plasma_spec::test_utils::{domain, key, pay_eth, pos};
    let k = key(1);
    let txs: Vec<plasma_spec::SignedTransaction> = (0..n)
        .map(|i| pay_eth(&domain(), &[pos(1000, i, 0)], &[(k.address(), 1)], &[&k]))
        .collect();
    let leaves: Vec<Vec<u8>> = txs.iter().map(|t| t.transaction.encode()).collect();
    let root = plasma_spec::BlockTree::from_txs(&leaves).unwrap().root();
    (txs.iter().map(|t| Bytes::from(t.encode())).collect(), root)
}

#[tokio::test]
async fn bad_bytes_are_named_and_tried_again_not_judged() {
    logs();
    let (txs, root) = sample_block(20);
    let good = wire::encode_block(2000, root, &txs, wire::Encoding::Zlib).unwrap();
    let (other, _) = sample_block(3);
    let replies = vec![
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy"
            .to_vec(),
        ok_reply(
            b"{\"txs\": []} and some more bytes to fill a wire header ........................",
        ),
        ok_reply(&wire::encode_block(3000, root, &txs, wire::Encoding::Zlib).unwrap()),
        ok_reply(
            &wire::encode_block(2000, B256::repeat_byte(7), &txs, wire::Encoding::Zlib).unwrap(),
        ),
        ok_reply(&wire::encode_block(2000, root, &other, wire::Encoding::Zlib).unwrap()),
        ok_reply(&good),
    ];
    let addr = scripted(replies, 1 << 20, Duration::ZERO).await;
    let fetcher = Fetcher::new(&format!("http://{addr}"), Duration::from_secs(2));
    let job = Job { blknum: 2000, root, deadline_ms: now_ms() + 60_000 };
    let progress = parking_lot::Mutex::new(DownloadProgress::default());
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        fetcher.obtain(job, Duration::from_millis(10), &progress),
    )
    .await
    .unwrap();
    assert_eq!(got.signed, txs);
    let p = progress.lock().clone();
    assert_eq!((p.attempts, p.resumes, p.done), (6, 0, true), "{p:?}");
    // Each failure by name, one at a time.
    for (reply, name) in [
        (
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
            "unavailable: HTTP 404",
        ),
        (ok_reply(&[0u8; 80]), "malformed block: not an encoded block (bad magic)"),
        (
            ok_reply(&wire::encode_block(3000, root, &txs, wire::Encoding::Zlib).unwrap()),
            "the operator sent block 3000 when asked for block 2000",
        ),
        (
            ok_reply(&wire::encode_block(2000, root, &other, wire::Encoding::Zlib).unwrap()),
            "root mismatch",
        ),
    ] {
        let addr = scripted(vec![reply], 1 << 20, Duration::ZERO).await;
        let fetcher = Fetcher::new(&format!("http://{addr}"), Duration::from_secs(2));
        let progress = parking_lot::Mutex::new(DownloadProgress::default());
        let _ = tokio::time::timeout(
            Duration::from_millis(300),
            fetcher.obtain(job, Duration::from_millis(50), &progress),
        )
        .await;
        let p = progress.lock().clone();
        assert!(
            !p.done && p.last_error.as_deref().unwrap_or_default().starts_with(name),
            "{name}: {p:?}"
        );
    }
}

#[tokio::test]
async fn a_download_too_slow_for_its_deadline_is_flagged_while_it_runs() {
    logs();
    let (txs, root) = sample_block(40);
    let good = wire::encode_block(2000, root, &txs, wire::Encoding::Plain).unwrap();
    // About 2 kB/s: the block takes several seconds; its deadline is in two.
    let addr = scripted(vec![ok_reply(&good)], 100, Duration::from_millis(50)).await;
    let fetcher = Fetcher::new(&format!("http://{addr}"), Duration::from_secs(2));
    let job = Job { blknum: 2000, root, deadline_ms: now_ms() + 2_000 };
    let progress = parking_lot::Mutex::new(DownloadProgress::default());
    let run = fetcher.obtain(job, Duration::from_millis(50), &progress);
    let _ = tokio::time::timeout(Duration::from_millis(1_800), run).await;
    let p = progress.lock().clone();
    assert!(p.projected_late && !p.done && p.received > 0, "{p:?}");
    assert_eq!(p.expected, Some(good.len() as u64));
}
