//! The watcher's dashboard (issue 20) in a real browser: Debian's chromium driven by
//! playwright-core (`tests/browser/dashboard.mjs`) against a devnet. The page first shows the
//! chain SAFE; then alice exits a deposit she already paid to bob (the watcher challenges it) and
//! the operator commits a block it withholds, stealing bob's coin (the watcher exits bob, whom it
//! guards): the page shows BYZANTINE since that block and the challenge with its L1 transaction,
//! on a desktop and on a 390 px phone that must not scroll sideways. `/v1/dashboard` is checked
//! beside it against L1 and `/events`.
//!
//! With `PLASMA_SCREENSHOTS=docs/img` (a path from the workspace root) the script writes the
//! README's screenshots.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, B256, U256};
use plasma_contracts::PlasmaFramework;
use plasma_e2e::{ByzantineOperator, Devnet};
use serde_json::Value;
use std::{path::PathBuf, process::Command, time::Duration};

const CHROMIUM: &str = "/usr/bin/chromium";

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the browser script; returns its `RESULT` object, failing the test with the script's
/// output when it reports a failure.
fn browse(url: &str, expect: &str, extra: &[&str]) -> Value {
    // Never a silent skip: a machine without chromium fails, naming the installer.
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/test (its ensure_chromium, in scripts/lib.sh, installs \
         Debian's chromium package with apt) or `apt-get install chromium`"
    );
    let mut cmd = Command::new("node");
    cmd.current_dir(root())
        .arg("tests/browser/dashboard.mjs")
        .args(["--url", url, "--expect", expect, "--timeout", "40"])
        .args(extra);
    if let Some(dir) = std::env::var_os("PLASMA_SCREENSHOTS") {
        // Relative to the workspace root, as a person running it from there means it.
        let dir = PathBuf::from(dir);
        cmd.env("PLASMA_SCREENSHOTS", if dir.is_absolute() { dir } else { root().join(dir) });
    }
    let out = cmd.output().expect("node runs (npm ci installs playwright-core)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .unwrap_or_else(|| panic!("no RESULT from the browser script\n{stdout}\n{stderr}"));
    assert!(
        out.status.success() && result["failures"].as_array().is_some_and(Vec::is_empty),
        "the browser saw something else: {result:#}\n{stderr}"
    );
    result
}

/// The watcher's exit of guarded owners: standard exits for them (`mass-exit`) or one batch exit
/// (`batch-exit`, EXIT-12), whichever it chose.
fn is_mass_exit(action: &Value) -> bool {
    action["kind"] == "mass-exit" || action["kind"] == "batch-exit"
}

async fn dashboard(net: &Devnet) -> Value {
    reqwest::get(format!("{}/v1/dashboard", net.watcher_url)).await.unwrap().json().await.unwrap()
}

/// Polls `/v1/dashboard` until `check` holds (it is rebuilt at most every 2 s).
async fn wait_dashboard(net: &Devnet, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = dashboard(net).await;
        if check(&d) {
            return d;
        }
        assert!(tokio::time::Instant::now() < deadline, "dashboard never showed {what}: {d:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_safe_chain_turn_byzantine_with_the_challenge_and_its_tx() {
    let mut net = Devnet::start().await.unwrap();
    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    net.guard(&alice).await.unwrap();
    net.guard(&bob).await.unwrap();
    let dep = alice.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(30)).await.unwrap();
    let paid = alice.send(bob.address(), Address::ZERO, eth(3), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(30)).await.unwrap();
    let bob_pos = u128::from(blknum) * 1_000_000_000;
    net.wait_watcher("synced", |s, _| s["status"]["syncedBlock"].as_u64() >= Some(blknum))
        .await
        .unwrap();

    // Safe: the document, then the page.
    let d = wait_dashboard(&net, "bob's 3 ETH", |d| {
        d["guarded"].as_array().is_some_and(|g| {
            g.iter().any(|o| {
                o["owner"].as_str().map(str::to_lowercase)
                    == Some(bob.address().to_string().to_lowercase())
                    && o["holdings"][0]["amount"] == eth(3).to_string()
            })
        })
    })
    .await;
    assert_eq!(d["safety"]["safe"], true);
    assert_eq!(d["child"]["committed"].as_u64(), Some(blknum), "{d:#}");
    assert!(d["funding"]["enough"].as_bool().unwrap(), "the devnet tower is funded: {d:#}");
    let url = format!("{}/", net.watcher_url);
    let safe = browse(&url, "safe", &[]);
    assert_eq!(safe["title"], "SAFE");
    assert!(safe["phoneScrollWidth"].as_u64().unwrap() <= 390);
    assert_eq!(safe["guarded"].as_array().unwrap().len(), 2, "{safe:#}");

    // alice exits the deposit she spent: the watcher challenges it.
    alice.start_exits_unchecked(&[dep]).await.unwrap();
    net.wait_watcher("challenged", |_, e| {
        e["events"].as_array().is_some_and(|ev| ev.iter().any(|x| x["kind"] == "challenged"))
    })
    .await
    .unwrap();
    let (_, events) = net.watcher_state().await.unwrap();
    let challenge_tx = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "challenged")
        .and_then(|x| x["l1_tx"].as_str())
        .unwrap()
        .to_owned();
    // The challenge is a real L1 transaction from the watcher.
    let receipt = alloy::providers::Provider::get_transaction_receipt(
        &net.provider,
        challenge_tx.parse::<B256>().unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(receipt.status() && receipt.from == net.watcher);

    // The operator turns: it stops serving and commits a block stealing bob's coin.
    net.kill_operator();
    let thief = plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[0].to_bytes()))
        .unwrap();
    let theft = ByzantineOperator::steal(bob_pos, eth(3), &thief, bob.domain()).unwrap();
    let bad = net.byzantine_operator().commit_withheld(vec![theft]).await.unwrap();

    let d = wait_dashboard(&net, "byzantine and bob exited", |d| {
        d["safety"]["byzantineFrom"].as_u64() == Some(bad.blknum)
            && d["actions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| is_mass_exit(x) && x["outcome"] == "mined"))
    })
    .await;
    assert_eq!(d["safety"]["safe"], false);
    assert_eq!(d["safety"]["why"]["kind"], "blockWithheld", "{d:#}");
    assert_eq!(d["safety"]["why"]["blknum"].as_u64(), Some(bad.blknum));
    assert_eq!(d["child"]["committed"].as_u64(), Some(bad.blknum));
    // The challenge in the journal: its transaction, its deadline (the exit's exitable time) and
    // the margin that was left.
    let actions = d["actions"].as_array().unwrap();
    let challenge = actions
        .iter()
        .find(|a| a["kind"] == "challenge")
        .unwrap_or_else(|| panic!("no challenge action: {d:#}"));
    assert_eq!(challenge["l1Tx"].as_str(), Some(challenge_tx.as_str()));
    assert_eq!(challenge["outcome"], "mined");
    let deadline = challenge["deadline"].as_u64().unwrap();
    assert!(deadline > 0 && challenge["secondsLeft"].as_u64().unwrap() <= deadline);
    // The exit queue replayed from L1 agrees with queueHead, and holds alice's challenged exit
    // (it leaves only when processed) and bob's exit started by the watcher.
    let framework = PlasmaFramework::new(net.deployment.framework, net.provider.clone());
    let q = framework.queueHead(Address::ZERO).call().await.unwrap();
    let eth_queue = d["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["token"] == Address::ZERO.to_string())
        .unwrap();
    assert_eq!(eth_queue["complete"], true, "{d:#}");
    assert_eq!(eth_queue["length"].as_u64(), Some(q.length.to::<u64>()));
    let exits = eth_queue["exits"].as_array().unwrap();
    assert_eq!(exits.len() as u64, eth_queue["length"].as_u64().unwrap(), "{d:#}");
    let alice_exit = plasma_spec::UtxoPos::from_u128(dep).unwrap().to_string();
    let bob_exit = plasma_spec::UtxoPos::from_u128(bob_pos).unwrap().to_string();
    assert!(
        exits.iter().any(|x| x["position"] == alice_exit.as_str() && x["game"] == "standard"),
        "alice's exit queued: {d:#}"
    );
    assert!(
        exits.iter().any(|x| x["game"] == "batch" || x["position"] == bob_exit.as_str()),
        "bob's exit queued: {d:#}"
    );

    // The page: BYZANTINE since the block, the challenge with its transaction.
    let blk = bad.blknum.to_string();
    let byz = browse(&url, "byzantine", &["--blknum", &blk, "--tx", &challenge_tx]);
    assert_eq!(byz["title"], format!("BYZANTINE since block {}", bad.blknum));
    assert_eq!(byz["txVisible"], true);
    assert!(byz["phoneScrollWidth"].as_u64().unwrap() <= 390);
    let shown = |rows: &Value, kind: &str| {
        rows.as_array().unwrap().iter().any(|r| {
            r["kind"] == kind
                && (kind != "challenged" && kind != "challenge"
                    || r["txs"].as_array().unwrap().iter().any(|t| t == challenge_tx.as_str()))
        })
    };
    assert!(shown(&byz["events"], "blockWithheld"), "{byz:#}");
    assert!(shown(&byz["events"], "challenged"), "{byz:#}");
    assert!(shown(&byz["actions"], "challenge"), "{byz:#}");
    assert!(byz["actions"].as_array().unwrap().iter().any(is_mass_exit), "{byz:#}");
    net.restart_watcher().await.unwrap();
    // After a restart the journal's details are gone, the actions are not: the store lists them.
    let d = wait_dashboard(&net, "the actions after a restart", |d| {
        d["actions"].as_array().is_some_and(|a| {
            a.iter().any(|x| x["kind"] == "challenge" && x["l1Tx"] == challenge_tx.as_str())
        })
    })
    .await;
    assert_eq!(d["safety"]["byzantineFrom"].as_u64(), Some(bad.blknum));
}

/// A JSON-RPC proxy in front of `upstream` that answers every `eth_getLogs` asking for
/// `DepositCreated` with an error: the watcher's loop fails at its first stage (following L1)
/// at every step, while the dashboard's own reads (head, queues, their logs) still work.
async fn failing_follow_proxy(upstream: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let topic = format!(
        "{:x}",
        <PlasmaFramework::DepositCreated as alloy::sol_types::SolEvent>::SIGNATURE_HASH
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (http, upstream, topic) = (http.clone(), upstream.clone(), topic.clone());
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
                let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse()))
                    .and_then(Result::ok)
                    .unwrap_or(0);
                while bytes.len() < head_end + length {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = bytes[head_end..head_end + length].to_vec();
                let text = String::from_utf8_lossy(&body).to_lowercase();
                let answer = if text.contains("eth_getlogs") && text.contains(&topic) {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    serde_json::to_vec(&serde_json::json!({"jsonrpc": "2.0", "id": v["id"],
                        "error": {"code": -32000, "message": "test: refused"}}))
                    .unwrap()
                } else {
                    match http
                        .post(&upstream)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) => r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
                        Err(_) => return,
                    }
                };
                let mut response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    answer.len()
                )
                .into_bytes();
                response.extend_from_slice(&answer);
                let _ = sock.write_all(&response).await;
            });
        }
    });
    format!("http://{addr}")
}

/// Audit 20, finding 7: a chain with no bad block is not shown SAFE while the watcher has
/// stopped looking. A monitor whose every step fails (its L1 endpoint refuses the follower's
/// deposit logs) while L1 moves: the document says `stalled` with the time of its last good
/// step, and the banner says STALLED, not SAFE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_watcher_is_not_shown_safe() {
    let net = Devnet::start().await.unwrap();
    let l1 = failing_follow_proxy(net.anvil.endpoint()).await;
    let m = net
        .start_monitor(plasma_e2e::MonitorOptions {
            l1_rpc_url: Some(l1),
            args: vec![
                "--alert.stall-after".into(),
                "3".into(),
                "--alert.l1-stall-after".into(),
                "0".into(),
            ],
            ..plasma_e2e::MonitorOptions::default()
        })
        .await
        .unwrap();
    let url = format!("{}/v1/dashboard", m.url);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let d = loop {
        net.mine(1).await.unwrap();
        let d: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if d["safety"]["stalled"] == true {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "never shown stalled: {d:#}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(d["safety"]["safe"], true, "no bad block was seen: {d:#}");
    let since = d["safety"]["stalledSince"].as_u64().expect("stalledSince");
    assert!(since > 0 && since <= d["generatedAt"].as_u64().unwrap(), "{d:#}");
    let page = browse(&m.url, "stalled", &[]);
    assert!(
        page["title"].as_str().is_some_and(|t| t.starts_with("STALLED since")),
        "the banner: {page:#}"
    );
}
