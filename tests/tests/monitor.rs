//! Read-only monitors and cross-checks between watchers (issue 20) on the real binaries: a
//! `plasma-watcher --monitor` with no key beside the devnet's guarding watcher reaches the same
//! verdicts, records what it would have done, and sends nothing to L1 — its L1 endpoint is a
//! recording proxy in front of anvil, which sees every method it ever calls; monitors that
//! cross-check each other agree; a peer that lies about a block is a `verdictDisagreement`, and
//! one that is down is reported as down, never as a disagreement.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
};
use plasma_e2e::{ByzantineOperator, Devnet, MonitorOptions, reserve_port};
use serde_json::{Value, json};
use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
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

/// A tiny HTTP/1.1 server on a free loopback port: each request (head and `content-length`
/// body) is answered by `handle(path, body)` with (status, JSON body), then the connection is
/// closed. Returns its base URL.
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

/// A JSON-RPC proxy in front of `upstream` that records every method called through it.
async fn recording_l1_proxy(upstream: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let methods = Arc::new(Mutex::new(Vec::new()));
    let seen = methods.clone();
    let http = reqwest::Client::new();
    let url = serve(move |_path, body| {
        let (http, upstream, seen) = (http.clone(), upstream.clone(), seen.clone());
        async move {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                let calls = v.as_array().cloned().unwrap_or_else(|| vec![v]);
                let mut seen = seen.lock().unwrap();
                seen.extend(calls.iter().filter_map(|c| c["method"].as_str().map(str::to_owned)));
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
    .await;
    (url, methods)
}

/// WATCH-4 seen by a monitor: alice exits the deposit she paid to bob while the guarding watcher
/// is down. The monitor finds the invalid exit and records, once, the challenge it would send;
/// the watcher, back, is the one that challenges. Then the operator withholds a block: both
/// judge it withheld and serve the same verdicts. Through all of it the monitor's L1 endpoint
/// saw reads only — not one transaction or signing method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_judges_like_the_watcher_records_what_it_would_do_and_never_sends() {
    let mut net = Devnet::start().await.unwrap();
    let (rpc, methods) = recording_l1_proxy(net.anvil.endpoint()).await;
    let monitor = net
        .start_monitor(MonitorOptions { l1_rpc_url: Some(rpc), ..MonitorOptions::default() })
        .await
        .unwrap();
    let (status, _) = monitor.state().await.unwrap();
    assert_eq!(status["status"]["monitor"], true);
    assert_eq!(status["watcher"], Address::ZERO.to_string(), "a monitor has no address");
    let (status, _) = net.watcher_state().await.unwrap();
    assert_eq!(status["status"]["monitor"], false);

    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    // A monitor guards no one: an authorization is refused with a typed error, not kept.
    let (auth, sig) = alice.authorize_watchtower(Address::ZERO, 4_000_000_000).await.unwrap();
    let body = json!({"owner": alice.address(), "deadline": auth.deadline, "nonce": auth.nonce, "signature": sig});
    let r = reqwest::Client::new()
        .post(format!("{}/v1/guards", monitor.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "MonitorOnly");

    let dep = alice.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    let paid = alice.send(bob.address(), Address::ZERO, eth(3), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(30)).await.unwrap();
    let synced = |s: &Value, _: &Value| s["status"]["syncedBlock"].as_u64() >= Some(blknum);
    net.wait_watcher("synced", synced).await.unwrap();
    monitor.wait("synced", synced).await.unwrap();

    // The guarding watcher is down; alice exits her spent deposit (unchecked: her wallet would
    // refuse a doomed exit).
    net.stop_watcher();
    alice.start_exits_unchecked(&[dep]).await.unwrap();
    let key = format!("challenge:{dep}");
    monitor
        .wait("would challenge", |_, e| {
            events_of(e, "wouldAct").iter().any(|x| {
                x["action"] == key.as_str()
                    && x["call"] == "challengeStandardExit"
                    && x["reason"].as_str().is_some_and(|r| r.contains("WATCH-4"))
            })
        })
        .await
        .unwrap();
    // Many polls later it is still recorded once (its challenge never lands, so a monitor
    // would otherwise report the same finding every poll).
    net.mine(3).await.unwrap();
    let head = net.provider.get_block_number().await.unwrap();
    monitor
        .wait("cursor past the mined blocks", |s, _| {
            s["status"]["l1Cursor"].as_u64() >= Some(head - 1)
        })
        .await
        .unwrap();
    let (status, events) = monitor.state().await.unwrap();
    assert_eq!(events_of(&events, "invalidStandardExit").len(), 1, "{events}");
    assert_eq!(events_of(&events, "wouldAct").len(), 1, "{events}");
    assert_eq!(status["status"]["exitsWatched"], 1, "still watching the exit it cannot challenge");

    // The watcher comes back and challenges; the monitor sees the exit end without acting.
    net.restart_watcher().await.unwrap();
    net.wait_watcher("challenged", |_, e| !events_of(e, "challenged").is_empty()).await.unwrap();
    assert_eq!(alice.exit_status(dep).await.unwrap(), 2, "alice's exit was challenged");
    let (_, events) = net.watcher_state().await.unwrap();
    let l1_tx: B256 =
        events_of(&events, "challenged")[0]["l1_tx"].as_str().unwrap().parse().unwrap();
    let receipt = net.provider.get_transaction_receipt(l1_tx).await.unwrap().unwrap();
    assert_eq!(receipt.from, net.watcher, "the guarding watcher challenged");
    monitor.wait("exit no longer watched", |s, _| s["status"]["exitsWatched"] == 0).await.unwrap();
    let (_, events) = monitor.state().await.unwrap();
    assert!(
        events_of(&events, "challenged").is_empty(),
        "the monitor challenged nothing: {events}"
    );

    // The operator turns and withholds a block: the same verdict from both.
    let bob_pos = u128::from(blknum) * 1_000_000_000;
    net.kill_operator();
    let thief = plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[0].to_bytes()))
        .unwrap();
    let theft = ByzantineOperator::steal(bob_pos, eth(3), &thief, bob.domain()).unwrap();
    let withheld = net.byzantine_operator().commit_withheld(vec![theft]).await.unwrap();
    let judged = |s: &Value, e: &Value| {
        s["status"]["byzantineFrom"] == withheld.blknum
            && events_of(e, "blockWithheld").iter().any(|x| x["blknum"] == withheld.blknum)
    };
    net.wait_watcher("withheld", judged).await.unwrap();
    monitor.wait("withheld", judged).await.unwrap();
    let verdicts = |url: String| async move {
        reqwest::get(format!("{url}/v1/verdicts?limit=1000"))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let (ours, theirs) =
        (verdicts(net.watcher_url.clone()).await, verdicts(monitor.url.clone()).await);
    assert_eq!(ours, theirs, "one judgement");
    let last = ours["verdicts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last, json!({"blknum": withheld.blknum, "verdict": "withheld"}));
    assert_eq!(ours["byzantineFrom"], withheld.blknum);

    // Every L1 call the monitor ever made was a read.
    let methods = methods.lock().unwrap().clone();
    assert!(
        methods.iter().any(|m| m == "eth_getLogs"),
        "the proxy saw the monitor's reads: {methods:?}"
    );
    let writes: Vec<&String> = methods
        .iter()
        .filter(|m| {
            m.starts_with("eth_send") || m.starts_with("eth_sign") || m.starts_with("personal_")
        })
        .collect();
    assert!(writes.is_empty(), "a monitor sends nothing: {writes:?}");
    assert!(!monitor.log().contains("action not mined"), "no action went through the sender");
}

/// Two monitors and the guarding watcher cross-check each other and agree; a peer that serves
/// a different verdict for a judged block raises `verdictDisagreement` (once, with its URL
/// redacted and its text sanitised), and a peer that is down is reported down, never as a
/// disagreement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_checked_monitors_agree_and_a_lying_peer_is_a_disagreement() {
    let net = Devnet::start().await.unwrap();
    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    let dep = alice.deposit_eth(eth(2)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    let paid = alice.send(bob.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(30)).await.unwrap();

    // A peer that lies: block `blknum` is invalid, it says (with a line break in its reason, as
    // if to forge a log line), for the right deployment.
    let page = json!({
        "framework": net.deployment.framework, "chainId": net.anvil.chain_id(),
        "judgedTo": blknum, "byzantineFrom": blknum, "next": null,
        "verdicts": [{"blknum": blknum, "verdict": "invalid", "reason": "forged\nERROR fake log line"}],
    });
    let liar = serve(move |_, _| {
        let body = serde_json::to_vec(&page).unwrap();
        async move { (200, body) }
    })
    .await;
    // Its URL with credentials: never shown.
    let liar = liar.replace("http://", "http://auditor:s3cret@") + "/";
    let dead = format!("http://127.0.0.1:{}", reserve_port().unwrap());

    let (pa, pb) = (reserve_port().unwrap(), reserve_port().unwrap());
    let (url_a, url_b) = (format!("http://127.0.0.1:{pa}"), format!("http://127.0.0.1:{pb}"));
    let cross = |peers: &[&str]| {
        vec![
            "--cross-check".to_owned(),
            peers.join(","),
            "--cross-check.interval".to_owned(),
            "0.2".to_owned(),
        ]
    };
    let a = net
        .start_monitor(MonitorOptions {
            port: Some(pa),
            args: cross(&[&url_b, &liar, &dead]),
            ..MonitorOptions::default()
        })
        .await
        .unwrap();
    let b = net
        .start_monitor(MonitorOptions {
            port: Some(pb),
            args: cross(&[&url_a, &net.watcher_url]),
            ..MonitorOptions::default()
        })
        .await
        .unwrap();

    let agreed = |peer: String| {
        move |s: &Value, _: &Value| {
            s["status"]["crossCheck"].as_array().is_some_and(|peers| {
                peers
                    .iter()
                    .any(|p| p["peer"] == peer.as_str() && p["agreedTo"].as_u64() >= Some(blknum))
            })
        }
    };
    a.wait("agreed with b", agreed(url_b.clone())).await.unwrap();
    b.wait("agreed with a", agreed(url_a.clone())).await.unwrap();
    b.wait("agreed with the watcher", agreed(net.watcher_url.clone())).await.unwrap();

    let liar_shown =
        format!("http://127.0.0.1:{}", liar.rsplit(':').next().unwrap().trim_end_matches('/'));
    a.wait("disagreement with the liar", |_, e| {
        events_of(e, "verdictDisagreement").iter().any(|x| x["peer"] == liar_shown.as_str())
    })
    .await
    .unwrap();
    a.wait("the dead peer reported down", |_, e| {
        events_of(e, "crossCheckPeerDown").iter().any(|x| x["peer"] == dead.as_str())
    })
    .await
    .unwrap();
    // More polls: still one disagreement, one outage.
    let polled = |s: &Value| s["status"]["crossCheck"][0]["lastPollUnix"].as_u64().unwrap_or(0);
    let (status, _) = a.state().await.unwrap();
    let before = polled(&status);
    a.wait("two more polls", |s, _| polled(s) >= before + 2).await.unwrap();

    let (status, events) = a.state().await.unwrap();
    let disagreements = events_of(&events, "verdictDisagreement");
    assert_eq!(disagreements.len(), 1, "raised once, about the liar only: {events}");
    let d = disagreements[0];
    assert_eq!(d["blknum"], blknum);
    assert_eq!(d["ours"], json!({"verdict": "valid"}));
    assert_eq!(d["theirs"]["verdict"], "invalid");
    assert!(
        !d["theirs"]["reason"].as_str().unwrap().contains('\n'),
        "a peer's text cannot break a log line"
    );
    let down = events_of(&events, "crossCheckPeerDown");
    assert_eq!(
        down.iter().filter(|x| x["peer"] == dead.as_str()).count(),
        1,
        "one outage, one event: {events}"
    );
    let peers = status["status"]["crossCheck"].as_array().unwrap();
    let of = |url: &str| peers.iter().find(|p| p["peer"] == url).unwrap().clone();
    assert_eq!(of(&liar_shown)["disagreements"][0]["blknum"], blknum, "standing in /status");
    assert_eq!(of(&dead)["reachable"], false);
    assert!(
        of(&dead)["disagreements"].as_array().unwrap().is_empty(),
        "down is not a disagreement"
    );
    assert!(of(&url_b)["disagreements"].as_array().unwrap().is_empty());
    // The peer's credentials appear nowhere.
    let shown = format!("{status}{events}{}", a.log());
    assert!(!shown.contains("s3cret"), "a peer URL's secret leaked");
    assert!(a.log().contains("verdict disagreement"), "logged");

    // b agrees with everyone; no disagreement at all.
    let (_, events) = b.state().await.unwrap();
    assert!(events_of(&events, "verdictDisagreement").is_empty(), "{events}");

    // The route itself: a page and a typed refusal.
    let page: Value = reqwest::get(format!("{}/v1/verdicts?from={blknum}&limit=1", a.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["verdicts"], json!([{"blknum": blknum, "verdict": "valid"}]));
    assert_eq!(
        page["framework"].as_str().unwrap().parse::<Address>().unwrap(),
        net.deployment.framework
    );
    let r = reqwest::get(format!("{}/v1/verdicts?limit=0", a.url)).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "BadLimit");
}
