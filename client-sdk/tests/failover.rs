//! Wallets through a list of operator URLs (issue #21): real HTTP servers on loopback play a
//! standby refusing writes with `NotLeader`, a URL that is down, a leader answering, a standby
//! behind, a URL redirecting elsewhere and a host outside the list; then the wallet against the
//! real operator with a dead URL first in its list, and the real operator's answer to a payment
//! submitted twice.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, B256, Bytes, U256};
use plasma_sdk::{
    FailoverPolicy, InclusionItem, OperatorClient, SdkError, SourceFailure, Wallet, WalletConfig,
};
use plasma_spec::{Output, SignedTransaction, Transaction, UtxoPos};
use plasma_testkit::{env, eth, key, operator, wallet_config};
use serde_json::{Value, json};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::net::TcpListener;

/// What a fake server answers: status, extra headers, JSON body.
type Answer = (u16, Vec<(&'static str, String)>, Value);

/// A real HTTP server on a loopback port answering every request with `answer(method, path)`,
/// recording each request as `"METHOD /path"`.
struct Fake {
    url: String,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    async fn start(answer: impl Fn(&str, &str) -> Answer + Send + Sync + 'static) -> Self {
        use warp::Filter;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (seen, answer) = (hits.clone(), Arc::new(answer));
        let route = warp::method().and(warp::path::full()).map(
            move |method: warp::http::Method, path: warp::path::FullPath| {
                seen.lock().unwrap().push(format!("{method} {}", path.as_str()));
                let (status, headers, body) = answer(method.as_str(), path.as_str());
                let mut resp = warp::http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json");
                for (name, value) in headers {
                    resp = resp.header(name, value);
                }
                resp.body(body.to_string()).unwrap()
            },
        );
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Self { url, hits }
    }

    /// A standby: refuses writes with `503 NotLeader` naming `leader`, `Retry-After: 1`; reads
    /// get `read`.
    async fn standby(leader: Option<String>, read: Answer) -> Self {
        Self::start(move |method, path| {
            if method == "POST" && path.starts_with("/v1/transactions") {
                not_leader(leader.as_deref())
            } else {
                read.clone()
            }
        })
        .await
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }
}

fn not_leader(leader: Option<&str>) -> Answer {
    (
        503,
        vec![("retry-after", "1".into())],
        json!({"error": {"code": "NotLeader", "message": "this operator is a standby", "leader": leader}}),
    )
}

fn refused(status: u16, code: &str) -> Answer {
    (status, vec![], json!({"error": {"code": code, "message": format!("{code} here")}}))
}

fn ok(body: Value) -> Answer {
    (200, vec![], body)
}

/// A loopback URL nothing listens on (connection refused).
async fn down() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// Quick rounds for tests (the `Retry-After: 1` of a standby still lengthens a pause to 1 s).
const QUICK: FailoverPolicy =
    FailoverPolicy { rounds: 3, pause: Duration::from_millis(20), ..FailoverPolicy::DEFAULT };

fn client(urls: &[&str]) -> OperatorClient {
    OperatorClient::with_urls(urls.iter().copied()).with_failover(QUICK)
}

/// Signed bytes of a well-formed payment (signatures are not checked by the fakes).
fn signed_payment() -> (Vec<u8>, B256) {
    let tx = Transaction::payment(
        &[UtxoPos::new(1, 0, 0).unwrap()],
        vec![Output::new(Address::repeat_byte(7), Address::ZERO, U256::from(5))],
        B256::ZERO,
    );
    let signed = SignedTransaction::new(tx, vec![Bytes::from(vec![1u8; 65])]);
    let bytes = signed.encode();
    assert_eq!(SignedTransaction::decode(&bytes).unwrap().hash(), signed.hash());
    (bytes, signed.hash())
}

#[tokio::test]
async fn submit_passes_a_down_url_and_a_standby_to_the_leader_and_stays_there() {
    let hash = B256::repeat_byte(0xab);
    let gone = down().await;
    let standby = Fake::standby(None, ok(json!({}))).await;
    let leader = Fake::start(move |_, _| ok(json!({"txHash": hash}))).await;
    let c = client(&[&gone, &standby.url, &leader.url]);

    assert_eq!(c.submit(b"anything").await.unwrap(), hash);
    assert_eq!(standby.hits(), ["POST /v1/transactions"]);
    assert_eq!(leader.hits(), ["POST /v1/transactions"]);
    assert_eq!(c.url(), leader.url, "the URL that took the write is preferred");

    // The next request (on a clone: clones share the preference) goes straight to the leader.
    c.clone().submit(b"again").await.unwrap();
    assert_eq!(standby.count(), 1, "the standby is not asked again");
    assert_eq!(leader.count(), 2);
}

#[tokio::test]
async fn a_leader_named_by_a_standby_is_asked_first_if_it_is_in_the_list() {
    let hash = B256::repeat_byte(1);
    let leader = Fake::start(move |_, _| ok(json!({"txHash": hash}))).await;
    let other = Fake::standby(None, ok(json!({}))).await;
    let standby = Fake::standby(Some(format!("{}/", leader.url)), ok(json!({}))).await;
    // List order: the standby, another standby, the leader; the hint skips the middle one.
    let c = client(&[&standby.url, &other.url, &leader.url]);
    assert_eq!(c.submit(b"tx").await.unwrap(), hash);
    assert_eq!(standby.count(), 1);
    assert_eq!(other.count(), 0, "the named leader is asked before the rest of the list");
    assert_eq!(leader.count(), 1);
}

#[tokio::test]
async fn a_leader_outside_the_list_is_never_contacted_nor_a_redirect_followed() {
    let attacker = Fake::start(|_, _| ok(json!({"txHash": B256::repeat_byte(0xee)}))).await;
    let hash = B256::repeat_byte(2);
    let leader = Fake::start(move |_, _| ok(json!({"txHash": hash}))).await;
    let standby = Fake::standby(Some(attacker.url.clone()), ok(json!({}))).await;
    let to = attacker.url.clone();
    let redirector =
        Fake::start(move |_, p| (307, vec![("location", format!("{to}{p}"))], json!({}))).await;

    let c = client(&[&standby.url, &redirector.url, &leader.url]);
    assert_eq!(c.submit(b"tx").await.unwrap(), hash);
    assert_eq!(redirector.count(), 1);
    assert_eq!(attacker.count(), 0, "neither the NotLeader hint nor the redirect reached it");
}

#[tokio::test]
async fn every_url_failing_is_a_typed_error_naming_each_after_bounded_rounds() {
    let gone = down().await;
    let broken = Fake::start(|_, _| (502, vec![], json!("bad gateway"))).await;
    let standby = Fake::start(|_, _| {
        (503, vec![], json!({"error": {"code": "NotLeader", "message": "m", "leader": null}}))
    })
    .await;
    let c = client(&[&gone, &broken.url, &standby.url]);
    let started = Instant::now();
    let e = c.submit(b"tx").await.unwrap_err();
    let SdkError::OperatorsUnavailable { what, rounds, attempts } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(what, "POST /v1/transactions");
    assert_eq!(*rounds, 3);
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0].url, gone);
    assert!(
        matches!(&attempts[0].failure, SourceFailure::Unreachable(r) if r.contains("onnect")),
        "{e}"
    );
    assert!(
        matches!(&attempts[1].failure, SourceFailure::Malformed(m) if m.contains("502")),
        "{e}"
    );
    assert!(
        matches!(&attempts[2].failure, SourceFailure::Refused { code, .. } if code == "NotLeader"),
        "{e}"
    );
    assert_eq!(broken.count(), 3, "one request per round, three rounds");
    assert_eq!(standby.count(), 3);
    assert!(e.is_retryable() && e.is_unavailable());
    assert!(started.elapsed() < Duration::from_secs(5), "two short pauses, no more");
    let text = e.to_string();
    assert!(text.contains(&broken.url) && text.contains(&standby.url), "{text}");
}

#[tokio::test]
async fn the_retry_after_of_a_standby_spaces_the_rounds() {
    let standby = Fake::standby(None, ok(json!({}))).await;
    let gone = down().await;
    let c = OperatorClient::with_urls([standby.url.as_str(), gone.as_str()]).with_failover(
        FailoverPolicy { rounds: 2, pause: Duration::from_millis(1), ..FailoverPolicy::DEFAULT },
    );
    let started = Instant::now();
    assert!(matches!(c.submit(b"tx").await, Err(SdkError::OperatorsUnavailable { .. })));
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    assert_eq!(standby.count(), 2);
}

/// A real loopback server that accepts every connection and never answers (a frozen leader: a
/// stopped process whose kernel still completes handshakes). Returns its URL and how many
/// connections it took.
async fn frozen() -> (String, Arc<Mutex<usize>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            *count.lock().unwrap() += 1;
            held.push(socket); // never read, never answered, never closed
        }
    });
    (url, accepted)
}

/// Short bounds for the tests: 300 ms per answer, 3 s per call.
const FROZEN: FailoverPolicy = FailoverPolicy {
    rounds: 8,
    pause: Duration::from_millis(20),
    connect_timeout: Duration::from_millis(500),
    answer_timeout: Duration::from_millis(300),
    deadline: Duration::from_secs(3),
};

#[tokio::test]
async fn a_frozen_leader_costs_one_answer_timeout_and_the_next_url_serves() {
    let (stuck, accepted) = frozen().await;
    let hash = B256::repeat_byte(0xcd);
    let leader = Fake::start(move |_, path| match path {
        "/v1/blocks/1000" => ok(json!({"root": B256::ZERO, "l1Timestamp": 7, "txs": []})),
        _ => ok(json!({"txHash": hash})),
    })
    .await;
    let c = OperatorClient::with_urls([stuck.as_str(), leader.url.as_str()]).with_failover(FROZEN);

    let started = Instant::now();
    assert_eq!(c.submit(b"tx").await.unwrap(), hash);
    let took = started.elapsed();
    assert!(*accepted.lock().unwrap() >= 1, "the frozen URL was asked first");
    assert!(took >= FROZEN.answer_timeout, "it waited for the frozen URL: {took:?}");
    assert!(
        took < FROZEN.answer_timeout + Duration::from_secs(1),
        "the healthy URL served one answer timeout later, not at a 30 s timeout: {took:?}"
    );
    assert_eq!(c.url(), leader.url, "the URL that took the write is preferred from now on");

    // A block download too: its answer must start within the answer timeout.
    let c = OperatorClient::with_urls([stuck.as_str(), leader.url.as_str()]).with_failover(FROZEN);
    let started = Instant::now();
    let block = c.block(1000).await.unwrap();
    assert_eq!((block.l1_timestamp, block.txs.len()), (Some(7), 0));
    assert!(started.elapsed() < FROZEN.answer_timeout + Duration::from_secs(1));
}

#[tokio::test]
async fn a_call_ends_by_its_deadline_with_a_typed_error_naming_every_url() {
    let (stuck, _) = frozen().await;
    let (also_stuck, _) = frozen().await;
    let gone = down().await;
    // Answer timeouts longer than the deadline: only the deadline can end the call.
    let policy = FailoverPolicy {
        answer_timeout: Duration::from_secs(60),
        deadline: Duration::from_millis(800),
        ..FROZEN
    };
    let c = OperatorClient::with_urls([gone.as_str(), stuck.as_str(), also_stuck.as_str()])
        .with_failover(policy);
    let started = Instant::now();
    let e = c.submit(b"tx").await.unwrap_err();
    let took = started.elapsed();
    assert!(took >= policy.deadline && took < policy.deadline + Duration::from_secs(1), "{took:?}");
    let SdkError::OperatorDeadline { what, deadline, attempts } = &e else { panic!("{e:?}") };
    assert_eq!((what.as_str(), *deadline), ("POST /v1/transactions", policy.deadline));
    assert_eq!(
        attempts.iter().map(|a| a.url.as_str()).collect::<Vec<_>>(),
        [gone.as_str(), stuck.as_str(), also_stuck.as_str()]
    );
    assert!(
        matches!(&attempts[0].failure, SourceFailure::Unreachable(r) if r.contains("onnect")),
        "{e}"
    );
    assert!(
        matches!(&attempts[1].failure, SourceFailure::Unreachable(r) if r.contains("deadline")),
        "{e}"
    );
    assert!(matches!(&attempts[2].failure, SourceFailure::Other(r) if r == "not asked"), "{e}");
    assert!(e.is_retryable() && e.is_unavailable());
    let text = e.to_string();
    assert!(text.contains(&gone) && text.contains(&stuck) && text.contains("800ms"), "{text}");

    // With the answer timeout inside the deadline, every URL is asked and each reason given.
    let c = OperatorClient::with_urls([stuck.as_str(), also_stuck.as_str()]).with_failover(FROZEN);
    let started = Instant::now();
    let e = c.tx_status(B256::ZERO).await.unwrap_err();
    assert!(started.elapsed() < FROZEN.deadline + Duration::from_secs(1));
    let SdkError::OperatorDeadline { attempts, .. } = &e else { panic!("{e:?}") };
    for a in attempts {
        assert!(
            matches!(&a.failure, SourceFailure::Unreachable(r)
                if r.contains("timed out") || r.contains("deadline")),
            "{e}"
        );
    }
}

#[tokio::test]
async fn one_frozen_url_alone_ends_by_the_deadline_too() {
    let (stuck, accepted) = frozen().await;
    let policy = FailoverPolicy {
        answer_timeout: Duration::from_secs(60),
        deadline: Duration::from_millis(500),
        ..FROZEN
    };
    let c = OperatorClient::new(stuck.clone()).with_failover(policy);
    let started = Instant::now();
    let e = c.tx_status(B256::ZERO).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(1_500), "{:?}", started.elapsed());
    assert_eq!(*accepted.lock().unwrap(), 1, "one URL: one attempt");
    let SdkError::OperatorDeadline { attempts, .. } = &e else { panic!("{e:?}") };
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].url, stuck);
}

#[tokio::test]
async fn one_url_alone_keeps_its_own_error() {
    let gone = down().await;
    let c = client(&[&gone]);
    assert!(
        matches!(c.submit(b"tx").await, Err(SdkError::OperatorUnreachable { url, .. }) if url == gone)
    );
    let standby = Fake::standby(None, ok(json!({}))).await;
    let c = client(&[&standby.url]);
    assert!(matches!(
        c.submit(b"tx").await,
        Err(SdkError::OperatorRefused { code, .. }) if code == "NotLeader"
    ));
    assert_eq!(standby.count(), 1, "one URL: one attempt");
}

#[tokio::test]
async fn a_typed_refusal_is_an_answer_and_not_retried_elsewhere() {
    let first = Fake::start(|_, _| refused(422, "InputSpent")).await;
    let second = Fake::start(|_, _| ok(json!({"txHash": B256::ZERO}))).await;
    let c = client(&[&first.url, &second.url]);
    assert!(matches!(
        c.submit(b"tx").await,
        Err(SdkError::OperatorRefused { code, .. }) if code == "InputSpent"
    ));
    assert_eq!(second.count(), 0);
}

#[tokio::test]
async fn already_known_is_success_with_our_hash() {
    let (bytes, hash) = signed_payment();
    // The operator's answer to the same signed transaction submitted again.
    let op = Fake::start(|_, _| refused(422, "AlreadyKnown")).await;
    assert_eq!(client(&[&op.url]).submit(&bytes).await.unwrap(), hash);
    // Bytes that are not a transaction cannot be "already known" as ours: the refusal stands.
    assert!(matches!(
        client(&[&op.url]).submit(b"junk").await,
        Err(SdkError::OperatorRefused { code, .. }) if code == "AlreadyKnown"
    ));
    // A leader killed after accepting it (its answer lost): the new leader already has it.
    let gone = down().await;
    assert_eq!(client(&[&gone, &op.url]).submit(&bytes).await.unwrap(), hash);
}

#[tokio::test]
async fn a_read_a_standby_does_not_know_yet_is_asked_of_the_next_url() {
    let hash = B256::repeat_byte(3);
    let path = format!("/v1/transactions/{hash}");
    let behind = Fake::start(|_, _| refused(404, "UnknownTransaction")).await;
    let p = path.clone();
    let leader = Fake::start(move |_, q| {
        if q == p { ok(json!({"status": "pending"})) } else { refused(404, "NotFound") }
    })
    .await;
    let c = client(&[&behind.url, &leader.url]);
    assert_eq!(c.tx_status(hash).await.unwrap(), ("pending".to_owned(), None));
    assert_eq!(behind.hits(), [format!("GET {path}")]);
    assert_eq!(c.url(), behind.url, "a read does not move the preference off a live URL");

    // Known nowhere: the refusal itself, not an outage.
    let also_behind = Fake::start(|_, _| refused(404, "UnknownTransaction")).await;
    let c = client(&[&behind.url, &also_behind.url]);
    assert!(matches!(
        c.tx_status(hash).await,
        Err(SdkError::OperatorRefused { code, .. }) if code == "UnknownTransaction"
    ));
    // A block: the same, through the JSON fallback of `block`.
    let block = json!({"root": B256::repeat_byte(9), "l1Timestamp": 5, "txs": ["0x01"]});
    let has_block = Fake::start(move |_, _| ok(block.clone())).await;
    let no_block = Fake::start(|_, _| refused(404, "UnknownBlock")).await;
    let got = client(&[&no_block.url, &has_block.url]).block(1000).await.unwrap();
    assert_eq!(got.root, B256::repeat_byte(9));
    assert_eq!(got.txs, [Bytes::from(vec![1u8])]);
}

#[tokio::test]
async fn inclusions_a_standby_lacks_are_taken_from_the_url_that_has_them() {
    let found = json!({"inclusions": [{
        "blknum": 1000, "txIndex": 0, "txBytes": "0x01", "proof": "0x02",
        "root": B256::repeat_byte(4), "blockTimestamp": 7, "signedTx": null
    }]});
    let behind = Fake::start(|_, _| {
        ok(json!({"inclusions": [{"blknum": 1000, "txIndex": 0,
            "error": {"code": "UnknownBlock", "message": "no block 1000"}}]}))
    })
    .await;
    let leader = Fake::start(move |_, _| ok(found.clone())).await;
    let items = client(&[&behind.url, &leader.url]).inclusions(&[(1000, 0)]).await.unwrap();
    assert!(matches!(&items[0], InclusionItem::Found { committed: true, .. }), "{items:?}");
    assert_eq!((behind.count(), leader.count()), (1, 1));
    // Nobody has it: the standby's answer stands (one request each, no extra rounds).
    let items = client(&[&behind.url]).inclusions(&[(1000, 0)]).await.unwrap();
    assert!(matches!(&items[0], InclusionItem::Refused { code, .. } if code == "UnknownBlock"));
}

#[tokio::test]
async fn wallet_config_lists_operator_urls_and_refuses_a_bad_one() {
    let env = env().await;
    let config = |urls: &str| WalletConfig {
        l1_rpc_url: env.anvil.endpoint(),
        operator_url: urls.to_owned(),
        framework: env.deployment.framework,
        chain_id: Some(env.anvil.chain_id()),
        store_path: env.dir.path().join("w.redb"),
    };
    assert_eq!(
        config(" http://a:1/, http://b:2,,http://a:1").operator_urls(),
        ["http://a:1", "http://b:2"]
    );
    let e = Wallet::connect(key(&env, 1), &config("http://a:1,ftp://b/KEY")).await.unwrap_err();
    assert!(matches!(&e, SdkError::Config(m) if m.contains("ftp://b/…")), "{e}");
    assert!(!e.to_string().contains("KEY"), "{e}");
    assert!(matches!(
        Wallet::connect(key(&env, 1), &config(" , ")).await,
        Err(SdkError::Config(_))
    ));
}

/// The real operator, a dead URL first in the wallets' list: deposits are credited, payments
/// accepted and committed, reads served; a payment submitted again (to the real operator,
/// pending and then committed) is answered `AlreadyKnown` and taken as accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallets_work_through_a_dead_url_first_and_resubmits_are_safe() {
    let env = env().await;
    let node = operator(&env).await;
    let gone = down().await;
    let live = format!("http://{}", node.addr);
    let config = |i: usize| {
        let mut c = wallet_config(&env, &node, i);
        c.operator_url = format!("{gone},{live}");
        c
    };
    let alice =
        Wallet::connect(key(&env, 1), &config(1)).await.unwrap().with_operator_failover(QUICK);
    let bob =
        Wallet::connect(key(&env, 2), &config(2)).await.unwrap().with_operator_failover(QUICK);
    assert_eq!(alice.operator().urls(), [gone.clone(), live.clone()]);

    let pos = alice.deposit_eth(eth(3)).await.unwrap();
    alice.wait_for_output(pos, Duration::from_secs(20)).await.unwrap();
    let fee = U256::from(1_000u64);
    let hash = alice.send(bob.address(), Address::ZERO, eth(1), fee).await.unwrap();
    assert_eq!(alice.operator().url(), live, "the live URL took the write and is preferred");

    // The same signed bytes again, while pending: the real operator's answer is 422
    // `AlreadyKnown`, which the client reads as accepted.
    let bytes = alice.store().sent(hash).unwrap().unwrap();
    let raw = reqwest::Client::new()
        .post(format!("{live}/v1/transactions"))
        .json(&json!({"tx": format!("0x{}", hex::encode(&bytes))}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 422);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AlreadyKnown", "{body}");
    let fresh = OperatorClient::with_urls([gone.as_str(), live.as_str()]).with_failover(QUICK);
    assert_eq!(fresh.submit(&bytes).await.unwrap(), hash);

    let blknum = alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    // Committed: still known by its hash, still success, and nothing applied twice.
    assert_eq!(fresh.submit(&bytes).await.unwrap(), hash);
    bob.wait_for_output(u128::from(blknum) * 1_000_000_000, Duration::from_secs(20)).await.unwrap();
    assert_eq!(bob.balance(Address::ZERO).unwrap(), eth(1));
    alice.sync().await.unwrap();
    assert_eq!(alice.balance(Address::ZERO).unwrap(), eth(2) - fee);
    let block = bob.operator().block(blknum).await.unwrap();
    let copies = block
        .txs
        .iter()
        .filter(|t| SignedTransaction::decode(t).is_ok_and(|s| s.hash() == hash))
        .count();
    assert_eq!(copies, 1, "the payment is in its block once");
    node.stop().await;
}

/// The CLI takes `--operator-url a,b` and the flag repeated, and a config file's
/// `operator_urls`; a file giving both `operator_url` and `operator_urls` is refused.
#[test]
fn cli_refuses_a_config_file_with_both_url_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plasma.toml");
    std::fs::write(&path, "operator_url = \"http://a:1\"\noperator_urls = [\"http://b:2\"]\n")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plasma"))
        .args(["--json", "--config", path.to_str().unwrap(), "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("operator_url or operator_urls"), "{text}");
}
