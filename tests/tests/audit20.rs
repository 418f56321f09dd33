//! Audit of issue 20 (dashboard, alerts, metrics, monitor and cross-checks), as an attacker and as
//! the person woken at 3 a.m. Each test reproduces one finding on the real binaries (a devnet,
//! real monitors, a real webhook receiver, an L1 proxy that can be made to hang). They are
//! written to PASS once the finding is fixed; at the time of the audit the ones marked
//! "FAILS at audit time" failed.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, U256};
use plasma_e2e::{Devnet, Monitor, MonitorOptions};
use serde_json::{Value, json};
use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

fn events_of<'a>(events: &'a Value, kind: &str) -> Vec<&'a Value> {
    events["events"]
        .as_array()
        .map(|e| e.iter().filter(|x| x["kind"] == kind).collect())
        .unwrap_or_default()
}

/// A tiny HTTP/1.1 server on a free loopback port: each request is answered by
/// `handle(path, body)` with (status, JSON body), then the connection is closed.
async fn serve<F, Fut>(handle: F) -> String
where
    F: Fn(String, Vec<u8>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (u16, Vec<u8>)> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&bytes[..head_end]).to_string();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim()
                            .eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0usize);
                while bytes.len() < head_end + length {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                    }
                }
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body) =
                    handle(path, bytes[head_end..head_end + length].to_vec()).await;
                let mut response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                response.extend_from_slice(&body);
                let _ = sock.write_all(&response).await;
            });
        }
    });
    format!("http://{addr}")
}

/// A JSON-RPC proxy in front of `upstream`; while `hang` is set, every call except
/// `eth_blockNumber` and `eth_chainId` never answers (an L1 endpoint that accepts and then hangs
/// on the heavier calls: the watcher's loop hangs, a cheap head read still works).
async fn hangable_l1_proxy(upstream: String, hang: Arc<AtomicBool>) -> String {
    let http = reqwest::Client::new();
    serve(move |_path, body| {
        let (http, upstream, hang) = (http.clone(), upstream.clone(), hang.clone());
        async move {
            if hang.load(Ordering::SeqCst) {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let calls = v.as_array().cloned().unwrap_or_else(|| vec![v]);
                let cheap = calls.iter().all(|c| {
                    matches!(c["method"].as_str(), Some("eth_blockNumber" | "eth_chainId"))
                });
                if !cheap {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
            }
            match http
                .post(&upstream)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(r) => {
                    (r.status().as_u16(), r.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
                }
                Err(_) => (502, b"{}".to_vec()),
            }
        }
    })
    .await
}

/// A webhook receiver recording every body it gets.
async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    let url = serve(move |_path, body| {
        let seen = seen.clone();
        async move {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                seen.lock().unwrap().push(v);
            }
            (200, b"{}".to_vec())
        }
    })
    .await;
    (url, got)
}

/// A devnet with one valid child block committed and validated; returns it and the block.
async fn devnet_with_a_block() -> (Devnet, u64) {
    let net = Devnet::start().await.unwrap();
    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    let dep = alice.deposit_eth(eth(2)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    let paid = alice.send(bob.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(30)).await.unwrap();
    (net, blknum)
}

/// A cross-check peer that lies about `blknum` with a fresh wording at every poll (`per_page`
/// entries per answer, every reason distinct): the deployment is right, so it is compared.
async fn lying_peer(net: &Devnet, blknum: u64, per_page: usize) -> String {
    let framework = net.deployment.framework;
    let chain_id = net.anvil.chain_id();
    let polls = Arc::new(AtomicU64::new(0));
    serve(move |_, _| {
        let n = polls.fetch_add(1, Ordering::SeqCst);
        let verdicts: Vec<Value> = (0..per_page)
            .map(|i| json!({"blknum": blknum, "verdict": "invalid", "reason": format!("lie {n}-{i}")}))
            .collect();
        let page = json!({
            "framework": framework, "chainId": chain_id,
            "judgedTo": blknum, "byzantineFrom": blknum, "next": null, "verdicts": verdicts,
        });
        let body = serde_json::to_vec(&page).unwrap();
        async move { (200, body) }
    })
    .await
}

fn cross(peers: &[&str], interval: &str) -> Vec<String> {
    vec![
        "--cross-check".to_owned(),
        peers.join(","),
        "--cross-check.interval".to_owned(),
        interval.to_owned(),
    ]
}

async fn wait_judged(m: &Monitor, blknum: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page: Value = reqwest::get(format!("{}/v1/verdicts?from=0&limit=10", m.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if page["judgedTo"].as_u64() >= Some(blknum) {
            return;
        }
        assert!(Instant::now() < deadline, "monitor never judged {blknum}: {page}\n{}", m.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// FINDING 1 (FAILS at audit time). A cross-check peer is untrusted input, and the module says a
/// lying peer "can raise disagreements … but cannot flood". But a disagreement is deduplicated on
/// the whole event, including the peer's free-text `reason`: a peer that words its lie
/// differently at each poll (or lists the same block many times with distinct reasons in one
/// page, up to the 1 MiB body cap) adds that many `verdictDisagreement` events — each a redb
/// commit, kept in memory forever, served whole by `/events` and cloned by every dashboard
/// refresh. One peer, one block: the event store grows without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_peer_cannot_flood_the_event_store() {
    let (net, blknum) = devnet_with_a_block().await;
    let liar = lying_peer(&net, blknum, 200).await;
    let m = net
        .start_monitor(MonitorOptions { args: cross(&[&liar], "0.2"), ..MonitorOptions::default() })
        .await
        .unwrap();
    wait_judged(&m, blknum).await;
    m.wait("a disagreement with the liar", |_, e| !events_of(e, "verdictDisagreement").is_empty())
        .await
        .unwrap();
    // A few more polls of the same lie about the same block.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, events) = m.state().await.unwrap();
    let n = events_of(&events, "verdictDisagreement").len();
    let total = events["events"].as_array().map_or(0, Vec::len);
    assert!(
        n <= 1,
        "one peer lying about one block must be one disagreement event, found {n} \
         ({total} events in all, growing at every poll)"
    );
}

/// FINDING 2 (FAILS at audit time). The stall detector's "loop" liveness is
/// `max(last successful step, last event)`, and `Alerts::event` refreshes it for EVERY event —
/// including those raised by the cross-check task (`crossCheckPeerDown/Up`,
/// `verdictDisagreement`), which runs beside the loop and keeps running while the loop hangs.
/// Here L1 hangs on everything but `eth_blockNumber` (so the detector's own head read works
/// and L1 does not move, as on a quiet chain or a devnet): a monitor without cross-check
/// peers raises `stalled`; the same monitor with a peer whose answers change keeps resetting the
/// heartbeat and never raises it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_loop_is_reported_stalled_even_while_cross_check_events_arrive() {
    let (net, blknum) = devnet_with_a_block().await;
    let hang = Arc::new(AtomicBool::new(false));
    let l1 = hangable_l1_proxy(net.anvil.endpoint(), hang.clone()).await;
    let (hook, got) = webhook_receiver().await;
    let alerts = |extra: Vec<String>| {
        let mut a = vec![
            "--alert.webhook".to_owned(),
            format!("{hook}/secret-path"),
            "--alert.stall-after".to_owned(),
            "3".to_owned(),
            "--alert.l1-stall-after".to_owned(),
            "0".to_owned(),
        ];
        a.extend(extra);
        a
    };
    let control = net
        .start_monitor(MonitorOptions {
            l1_rpc_url: Some(l1.clone()),
            args: alerts(vec!["--alert.name".into(), "control".into()]),
            ..MonitorOptions::default()
        })
        .await
        .unwrap();
    let liar = lying_peer(&net, blknum, 1).await;
    let checked = net
        .start_monitor(MonitorOptions {
            l1_rpc_url: Some(l1.clone()),
            args: alerts(
                [vec!["--alert.name".into(), "checked".into()], cross(&[&liar], "0.5")].concat(),
            ),
            ..MonitorOptions::default()
        })
        .await
        .unwrap();
    wait_judged(&control, blknum).await;
    wait_judged(&checked, blknum).await;
    checked
        .wait("a disagreement", |_, e| !events_of(e, "verdictDisagreement").is_empty())
        .await
        .unwrap();

    // SOUND (checked): the webhook URL (a secret) shows nowhere a person or a scraper can read.
    for path in ["/status", "/metrics", "/events", "/v1/dashboard", "/v1/verdicts"] {
        let body =
            reqwest::get(format!("{}{path}", checked.url)).await.unwrap().text().await.unwrap();
        assert!(!body.contains("secret-path"), "{path} shows the webhook URL: {body}");
    }
    assert!(!checked.log().contains("secret-path") && !control.log().contains("secret-path"));

    hang.store(true, Ordering::SeqCst);
    let stalled = |name: &str| {
        got.lock()
            .unwrap()
            .iter()
            .any(|b| b["alert"] == "stalled" && b["status"] == "firing" && b["watcher"] == name)
    };
    let deadline = Instant::now() + Duration::from_secs(25);
    while Instant::now() < deadline && !(stalled("control") && stalled("checked")) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let control_stalled = stalled("control");
    let checked_stalled = stalled("checked");
    hang.store(false, Ordering::SeqCst);
    let received = got.lock().unwrap().clone();
    assert!(
        control_stalled,
        "the control monitor's hung loop raised no stall alert: {received:?}\n{}",
        control.log()
    );
    assert!(
        checked_stalled,
        "a monitor whose loop hangs for 25 s (stall-after 3 s) raised no stall alert because the \
         cross-check task's events keep its heartbeat fresh: {received:?}"
    );
}

/// FINDING 3 (FAILS at audit time). `/v1/dashboard` holds one async lock while it rebuilds,
/// each rebuild may take the whole 10 s `BUILD_TIMEOUT` when L1 hangs, and a failed rebuild is
/// not cached: N concurrent page loads (N open tabs, or anyone on the port) are answered one
/// after the other, the last after N × 10 s. The page should say "L1 could not be read" within
/// about one timeout, whatever the request rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_answers_within_one_timeout_when_l1_hangs() {
    let net = Devnet::start().await.unwrap();
    let hang = Arc::new(AtomicBool::new(false));
    let l1 = hangable_l1_proxy(net.anvil.endpoint(), hang.clone()).await;
    let m = net
        .start_monitor(MonitorOptions { l1_rpc_url: Some(l1), ..MonitorOptions::default() })
        .await
        .unwrap();
    let ok = reqwest::get(format!("{}/v1/dashboard", m.url)).await.unwrap();
    assert_eq!(ok.status(), 200);
    // SOUND (checked): the page is served with a CSP allowing scripts from this origin only.
    let page = reqwest::get(format!("{}/", m.url)).await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    tokio::time::sleep(Duration::from_millis(2100)).await; // the cached document expires
    hang.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let calls = (0..4).map(|_| {
        let url = format!("{}/v1/dashboard", m.url);
        tokio::spawn(async move {
            let r = reqwest::Client::new()
                .get(url)
                .timeout(Duration::from_secs(90))
                .send()
                .await
                .map(|r| r.status().as_u16());
            (r, started.elapsed())
        })
    });
    let mut slowest = Duration::ZERO;
    for c in calls {
        let (status, took) = c.await.unwrap();
        assert_eq!(status.ok(), Some(503), "hung L1: the page says it cannot see");
        slowest = slowest.max(took);
    }
    hang.store(false, Ordering::SeqCst);
    assert!(
        slowest < Duration::from_secs(15),
        "4 concurrent dashboard loads with L1 hung: the last answered after {slowest:?} \
         (one 10 s rebuild after the other under the cache lock)"
    );
}

/// Checked and SOUND: a monitor refuses a key given through the environment (not only the
/// flag), so a process holding a key never silently guards nobody.
#[test]
fn a_monitor_refuses_a_key_from_the_environment() {
    let out = std::process::Command::new(plasma_e2e::bin_dir().join("plasma-watcher"))
        .args(["--monitor", "--l1.framework", "0x0000000000000000000000000000000000000001"])
        .args(["--l1.rpc-url", "http://127.0.0.1:1"])
        .env(
            "PLASMA_WATCHER_L1_PRIVATE_KEY",
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--monitor") && err.contains("--l1.private-key"), "{err}");
    assert!(!err.contains("59c6995e"), "the key is not echoed: {err}");
}

/// A JSON-RPC proxy in front of `upstream` that, while `refuse` is set, answers every `eth_call`
/// whose calldata starts with `selector` with a JSON-RPC error (an endpoint that fails one read
/// persistently: a provider's method limit, a node bug, a contract that reverts on it).
async fn refusing_l1_proxy(upstream: String, refuse: Arc<AtomicBool>, selector: String) -> String {
    let http = reqwest::Client::new();
    serve(move |_path, body| {
        let (http, upstream, refuse, selector) =
            (http.clone(), upstream.clone(), refuse.clone(), selector.clone());
        async move {
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if refuse.load(Ordering::SeqCst) && v["method"] == "eth_call" {
                let tx = &v["params"][0];
                let data = tx["input"].as_str().or(tx["data"].as_str()).unwrap_or("");
                if data.starts_with(&selector) {
                    let e = json!({"jsonrpc": "2.0", "id": v["id"],
                        "error": {"code": -32000, "message": "audit: refused"}});
                    return (200, serde_json::to_vec(&e).unwrap());
                }
            }
            match http
                .post(&upstream)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(r) => {
                    (r.status().as_u16(), r.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
                }
                Err(_) => (502, b"{}".to_vec()),
            }
        }
    })
    .await
}

/// FINDING 4 (FAILS at audit time). The stall detector counts the cursor or the synced block
/// moving as "alive", so a loop that fails at EVERY step after following L1 and validating
/// blocks — here `challenge_exits`' read of the exit's status fails each time, so the invalid exit
/// is never challenged and nothing after it in the step (mass exit, funding check, processing)
/// ever runs — is never reported while L1 moves: no `stalled` alert, `plasma_watcher_stalled` 0,
/// and no metric counts failed steps. Only the log says "step failed; retrying".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_failing_every_step_after_following_l1_is_reported() {
    let mut net = Devnet::start().await.unwrap();
    let refuse = Arc::new(AtomicBool::new(false));
    let selector =
        format!("0x{}", hex::encode(&alloy::primitives::keccak256("exits(uint256)")[..4]));
    let l1 = refusing_l1_proxy(net.anvil.endpoint(), refuse.clone(), selector).await;
    let (hook, got) = webhook_receiver().await;
    let m = net
        .start_monitor(MonitorOptions {
            l1_rpc_url: Some(l1),
            args: vec![
                "--alert.webhook".into(),
                hook,
                "--alert.stall-after".into(),
                "3".into(),
                "--alert.l1-stall-after".into(),
                "0".into(),
            ],
            ..MonitorOptions::default()
        })
        .await
        .unwrap();
    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    let dep = alice.deposit_eth(eth(2)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    let paid = alice.send(bob.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(30)).await.unwrap();
    m.wait("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(blknum)).await.unwrap();
    // The guarding watcher is away; alice exits the deposit she spent.
    net.stop_watcher();
    refuse.store(true, Ordering::SeqCst);
    alice.start_exits_unchecked(&[dep]).await.unwrap();
    m.wait("the exit watched", |s, _| s["status"]["exitsWatched"].as_u64() >= Some(1))
        .await
        .unwrap();
    // L1 moves on (as it does on a real chain); every step of the monitor fails in
    // challenge_exits, after following L1.
    let (status, _) = m.state().await.unwrap();
    let cursor_before = status["status"]["l1Cursor"].as_u64().unwrap();
    let last_stalled = || {
        got.lock()
            .unwrap()
            .iter()
            .rev()
            .find(|b| b["alert"] == "stalled")
            .map(|b| b["status"].as_str().unwrap_or("").to_owned())
    };
    for _ in 0..40 {
        net.mine(1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (status, events) = m.state().await.unwrap();
    let metrics = reqwest::get(format!("{}/metrics", m.url)).await.unwrap().text().await.unwrap();
    refuse.store(false, Ordering::SeqCst);
    let failures = m.log().matches("step failed; retrying").count();
    assert!(failures > 10, "precondition: the monitor's steps fail ({failures})");
    assert!(
        status["status"]["l1Cursor"].as_u64().unwrap() > cursor_before + 10,
        "precondition: the cursor follows L1"
    );
    assert!(events_of(&events, "wouldAct").is_empty(), "the challenge was never reached");
    let received = got.lock().unwrap().clone();
    let stall_line =
        metrics.lines().find(|l| l.starts_with("plasma_watcher_stalled ")).unwrap_or("").to_owned();
    assert!(
        last_stalled().as_deref() == Some("firing") && stall_line.ends_with(" 1"),
        "{failures} failed steps in a row over 20 s (stall-after 3 s), the invalid exit never \
         challenged; last stall message: {:?}; /metrics: {stall_line:?}; alerts: {:?}",
        last_stalled(),
        received
    );
}
