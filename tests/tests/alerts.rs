//! Alerts (issue 20) on the real binaries: a devnet whose watcher posts to a webhook receiver
//! running in this test (a plain HTTP/1.1 server on loopback that records every POST and can
//! answer 500 first). Byzantine events reach generic, Slack and Discord webhooks; a webhook that
//! fails first gets the alert on a retry; L1 frozen under the watcher (anvil SIGSTOPped: the
//! watcher's loop hangs on its L1 call) is reported by the alert thread, and "resolved" after
//! SIGCONT; a tower whose balance falls below what its guarded outputs need is reported, and
//! "resolved" once funded again.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
};
use plasma_e2e::{Devnet, DevnetOptions};
use serde_json::Value;
use std::{
    collections::HashMap,
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// A path part that stands for a webhook's secret: it must never appear in the watcher's log.
const SECRET: &str = "s3cr3t-token";

/// One POST the receiver got.
#[derive(Clone, Debug)]
struct Hit {
    path: String,
    body: Value,
    /// What the receiver answered.
    status: u16,
}

/// A webhook receiver on loopback.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    /// Starts it; `fail_first` paths answer 500 to that many requests first.
    async fn start(fail_first: &[(&str, usize)]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let fails: Arc<Mutex<HashMap<String, usize>>> =
            Arc::new(Mutex::new(fail_first.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect()));
        let recorded = hits.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, recorded.clone(), fails.clone()));
            }
        });
        Self { url, hits }
    }

    /// The URL of `path` on this receiver (with the secret in it).
    fn hook(&self, path: &str) -> String {
        format!("{}/{path}/{SECRET}", self.url)
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        let prefix = format!("/{path}/");
        self.hits.lock().unwrap().iter().filter(|h| h.path.starts_with(&prefix)).cloned().collect()
    }

    /// Polls until `path` has a hit (answered 200) for which `pick` holds; returns it.
    async fn wait(
        &self,
        net: &Devnet,
        path: &str,
        what: &str,
        pick: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(h) = self.hits(path).into_iter().find(|h| h.status == 200 && pick(&h.body))
            {
                return h.body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/{path} never received {what}: {:?}\n{}",
                self.hits(path),
                net.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One request: headers, a body of `content-length` bytes, answered and closed.
async fn serve(
    mut sock: TcpStream,
    hits: Arc<Mutex<Vec<Hit>>>,
    fails: Arc<Mutex<HashMap<String, usize>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let l = l.to_ascii_lowercase();
            l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < end + len {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body: Value = serde_json::from_slice(&buf[end..end + len]).unwrap_or(Value::Null);
    let status = {
        let mut fails = fails.lock().unwrap();
        let left = fails.iter_mut().find(|(p, _)| path.starts_with(&format!("/{p}/")));
        match left {
            Some((_, n)) if *n > 0 => {
                *n -= 1;
                500
            }
            _ => 200,
        }
    };
    hits.lock().unwrap().push(Hit { path, body, status });
    let reason = if status == 200 { "OK" } else { "Internal Server Error" };
    let answer =
        format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = sock.write_all(answer.as_bytes()).await;
    let _ = sock.shutdown().await;
}

async fn devnet_alerting(args: Vec<String>) -> Devnet {
    Devnet::start_with(DevnetOptions { watcher_args: args, ..DevnetOptions::default() })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_block_reaches_generic_slack_and_discord_webhooks_and_a_500_is_retried() {
    let rx = Receiver::start(&[("flaky", 1)]).await;
    let hooks = [
        rx.hook("generic"),
        format!("slack+{}", rx.hook("slack")),
        format!("discord+{}", rx.hook("discord")),
        format!("generic+{}", rx.hook("flaky")),
    ];
    let mut net = devnet_alerting(vec![
        "--alert.webhook".into(),
        hooks[..2].join(","),
        "--alert.webhook".into(),
        hooks[2..].join(","),
        "--alert.name".into(),
        "e2e-tower".into(),
    ])
    .await;

    // The operator commits a block and serves it to nobody.
    net.kill_operator();
    let block = net.byzantine_operator().commit_withheld(Vec::new()).await.unwrap();
    let n = block.blknum;

    let generic =
        rx.wait(&net, "generic", "blockWithheld", |b| b["alert"] == "blockWithheld").await;
    assert_eq!(generic["severity"], "critical", "{generic}");
    assert_eq!(generic["status"], "firing", "{generic}");
    assert_eq!(generic["details"]["blknum"], n, "{generic}");
    assert_eq!(generic["watcher"], "e2e-tower", "{generic}");
    let summary = generic["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("block {n} withheld")), "{summary}");
    let at = generic["at"].as_str().unwrap();
    assert!(at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T', "RFC 3339: {at}");

    let slack = rx.wait(&net, "slack", "blockWithheld", |b| b["text"].is_string()).await;
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("[e2e-tower] CRITICAL blockWithheld: block {n} withheld")),
        "{text}"
    );
    assert_eq!(slack.as_object().unwrap().len(), 1, "Slack's body is {{text}}: {slack}");
    let discord = rx.wait(&net, "discord", "blockWithheld", |b| b["content"].is_string()).await;
    // Discord's markdown is escaped (an attacker's text cannot become a masked link); without
    // the escapes it is the same line.
    let content = discord["content"].as_str().unwrap();
    assert!(content.starts_with(r"\[e2e\-tower\] CRITICAL blockWithheld\: block"), "{content}");
    assert_eq!(content.replace('\\', ""), text, "{discord}");
    assert_eq!(discord["allowed_mentions"]["parse"], serde_json::json!([]), "{discord}");

    // The flaky receiver answered 500 first: the same body came again and was accepted.
    let retried = rx
        .wait(&net, "flaky", "blockWithheld after a retry", |b| b["alert"] == "blockWithheld")
        .await;
    let flaky = rx.hits("flaky");
    assert_eq!(flaky[0].status, 500, "{flaky:?}");
    assert_eq!(flaky[0].body, retried, "the retry sends the same message");
    assert_eq!(flaky[1].status, 200, "{flaky:?}");

    // One message per webhook for the one withheld block (no duplicates).
    for path in ["generic", "slack", "discord"] {
        let withheld =
            rx.hits(path).iter().filter(|h| h.body.to_string().contains("blockWithheld")).count();
        assert_eq!(withheld, 1, "/{path}: {:?}", rx.hits(path));
    }
    let logs = net.logs();
    assert!(logs.contains("alert delivery failed; retrying"), "the retry is logged");
    assert!(!logs.contains(SECRET), "a webhook URL is never logged in full");
    net.kill_operator();
}

/// Resumes a SIGSTOPped process when dropped, so that a failing assertion cannot leave it frozen.
struct Frozen(u32);

impl Frozen {
    fn new(pid: u32) -> Self {
        signal(pid, "-STOP");
        Self(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").args([sig, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

fn stalls(rx: &Receiver, status: &str) -> Vec<String> {
    let mut causes: Vec<String> = rx
        .hits("stall")
        .iter()
        .filter(|h| h.status == 200 && h.body["alert"] == "stalled" && h.body["status"] == status)
        .map(|h| h.body["details"]["cause"].as_str().unwrap_or_default().to_owned())
        .collect();
    causes.sort();
    causes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_frozen_under_the_watcher_is_reported_by_the_alert_thread_and_resolved() {
    let rx = Receiver::start(&[]).await;
    // Anvil is on loopback and mines on demand: the L1-head check is off by default, so an idle
    // devnet is not a stall.
    let net = devnet_alerting(vec![
        "--alert.webhook".into(),
        rx.hook("stall"),
        // Short for the test, with room for a slow step on a loaded CI machine.
        "--alert.stall-after".into(),
        "3".into(),
    ])
    .await;
    // Healthy and idle for longer than the stall time: nothing is reported.
    let quiet_until = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < quiet_until {
        assert!(rx.hits("stall").is_empty(), "a healthy watcher stalled: {:?}", rx.hits("stall"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Freeze L1: the watcher's loop hangs in its L1 request (nothing answers, nothing fails for
    // the request timeout); the alert thread's own reads time out.
    let frozen = Frozen::new(net.anvil.child().id());
    rx.wait(&net, "stall", "a stall of the loop", |b| {
        b["alert"] == "stalled" && b["status"] == "firing" && b["details"]["cause"] == "loop"
    })
    .await;
    let unreachable = rx
        .wait(&net, "stall", "L1 unreachable", |b| {
            b["alert"] == "stalled" && b["details"]["cause"] == "l1Unreachable"
        })
        .await;
    assert_eq!(unreachable["severity"], "critical", "{unreachable}");
    assert!(unreachable["details"]["error"].is_string(), "{unreachable}");
    assert!(unreachable["summary"].as_str().unwrap().contains("watcher stalled"), "{unreachable}");
    // The API runs on the watcher's runtime, not the loop: it still answers while the loop hangs.
    let status = reqwest::get(format!("{}/health", net.watcher_url)).await.unwrap();
    assert!(status.status().is_success());

    drop(frozen); // SIGCONT
    let fired = stalls(&rx, "firing");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while stalls(&rx, "resolved") != fired {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fired {fired:?}, resolved {:?}\n{}",
            stalls(&rx, "resolved"),
            net.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fired.contains(&"loop".to_owned()) && fired.contains(&"l1Unreachable".to_owned()));
    // And the watcher works again: it follows L1 past the freeze.
    let head = net.provider.get_block_number().await.unwrap();
    net.mine(1).await.unwrap();
    net.wait_watcher("past the freeze", |s, _| s["status"]["l1Cursor"].as_u64() > Some(head))
        .await
        .unwrap();
    assert!(!net.logs().contains(SECRET));
}

fn milli(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000_000_000_000u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tower_below_what_its_guarded_outputs_need_is_reported_until_funded() {
    let rx = Receiver::start(&[]).await;
    let net = devnet_alerting(vec!["--alert.webhook".into(), rx.hook("funds")]).await;
    let owner = net.wallet(1).await.unwrap();
    let pos = owner.deposit_eth(milli(500)).await.unwrap();
    owner.wait_for_output(pos, Duration::from_secs(30)).await.unwrap();
    net.guard(&owner).await.unwrap();
    // A new block makes the watcher check its funding with the guard counted (WATCH-13).
    let pos = owner.deposit_eth(milli(500)).await.unwrap();
    owner.wait_for_output(pos, Duration::from_secs(30)).await.unwrap();
    net.wait_watcher("a funding check with the guard", |s, _| {
        s["status"]["guardedOutputs"].as_u64() >= Some(1)
    })
    .await
    .unwrap();

    // The tower's account keeps 1 gwei (sent away while it is idle).
    let tower = net.provider_for(9);
    let balance = net.provider.get_balance(net.watcher).await.unwrap();
    let price = 10_000_000_000u128;
    let fee = U256::from(21_000u64) * U256::from(price);
    let keep = U256::from(1_000_000_000u64);
    let tx = TransactionRequest::default()
        .with_to(Address::repeat_byte(0xee))
        .with_value(balance - keep - fee)
        .with_gas_limit(21_000)
        .with_gas_price(price);
    assert!(tower.send_transaction(tx).await.unwrap().get_receipt().await.unwrap().status());

    let short = rx
        .wait(&net, "funds", "underfunded", |b| {
            b["alert"] == "underfunded" && b["status"] == "firing"
        })
        .await;
    assert_eq!(short["details"]["balance"], keep.to_string(), "{short}");
    let needed: U256 = short["details"]["needed"].as_str().unwrap().parse().unwrap();
    assert!(needed > keep, "{short}");
    assert!(
        short["summary"].as_str().unwrap().contains(&net.watcher.to_string()),
        "names whom to fund"
    );

    net.fund(net.watcher, needed).await.unwrap();
    let ok = rx
        .wait(&net, "funds", "underfunded resolved", |b| {
            b["alert"] == "underfunded" && b["status"] == "resolved"
        })
        .await;
    assert_eq!(ok["details"]["balance"], (needed + keep).to_string(), "{ok}");
    let messages = rx.hits("funds").iter().filter(|h| h.body["alert"] == "underfunded").count();
    assert_eq!(
        messages,
        2,
        "one when it fell short, one when it recovered: {:?}",
        rx.hits("funds")
    );
}
