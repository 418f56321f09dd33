//! Attacks on an honest wallet user (review E): a hostile or flaky operator answering the wallet's
//! HTTP requests, against a real anvil, the real contracts and (where a chain must run) the real
//! operator behind a lying proxy. Each test is an attack that must not hurt the user, and asserts
//! what protects them:
//! - a payment whose answer is lost (or whose sending is cut at any point) keeps its inputs marked
//!   spent by it: no standard exit of them (it would be challenged with the signed payment), no
//!   second payment of them; a payment refused outright gives them back (fixed here: the inputs
//!   were marked only after the operator's answer);
//! - an amount and fee summing past 2^256 are refused before anything is signed (fixed here);
//! - randomly mutated proofs, roots, timestamps, transactions, signatures and listings never get
//!   an output counted that L1 and the ledger rules do not back; a payment signed under another
//!   chain's domain and an output in a block not committed on L1 are never counted;
//! - huge answers are cut off at a bound instead of being held in memory (fixed here), random and
//!   malformed answers are typed errors, a trickling operator is left by the deadline.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use alloy::primitives::{Address, B256, U256};
use plasma_contracts::{PlasmaFramework, StandardExitGame};
use plasma_sdk::{
    FailoverPolicy, MAX_JSON_ANSWER, OperatorClient, OutputStatus, SdkError, Verification, Wallet,
    WalletConfig,
};
use plasma_spec::{
    BlockTree, Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos,
    deposit_block_root,
};
use plasma_testkit::{Env, env, eth, key, operator};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------- helpers

/// A small deterministic generator (xorshift64*), seeded per test and printed, so a failure can
/// be replayed.
struct Rng(u64);

impl Rng {
    fn seeded(name: &str) -> Self {
        let seed = std::env::var("ADVERSARIAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
                as u64,
        ) | 1;
        eprintln!("{name}: ADVERSARIAL_SEED={seed}");
        Self(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn config(env: &Env, operator_url: String, store: PathBuf) -> WalletConfig {
    WalletConfig {
        l1_rpc_url: env.anvil.endpoint(),
        operator_url,
        framework: env.deployment.framework,
        chain_id: Some(env.anvil.chain_id()),
        store_path: store,
    }
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// Reads one HTTP request: method, target and body (by `content-length`).
async fn read_request(sock: &mut tokio::net::TcpStream) -> (String, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 65536];
    loop {
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0usize);
        if buf.len() >= end + 4 + len {
            let mut words = head.split_whitespace();
            let method = words.next().unwrap_or("GET").to_owned();
            let target = words.next().unwrap_or("/").to_owned();
            return (method, target, buf[end + 4..end + 4 + len].to_vec());
        }
    }
    ("GET".into(), "/".into(), Vec::new())
}

async fn respond(sock: &mut tokio::net::TcpStream, status: u16, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body).await;
}

/// What a handler does with one request.
enum Reply {
    /// Answer this status and body.
    Answer(u16, Vec<u8>),
    /// Close the connection without answering.
    Drop,
}

type Answering = std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>;
type Handler = Arc<dyn Fn(String, String, Vec<u8>) -> Answering + Send + Sync>;

/// A loopback HTTP server answering each request with `handler`.
async fn serve(handler: Handler) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let handler = handler.clone();
            tokio::spawn(async move {
                let (method, target, body) = read_request(&mut sock).await;
                if let Reply::Answer(status, body) = handler(method, target, body).await {
                    respond(&mut sock, status, &body).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

/// Forwards a request to the real operator.
async fn forward(real: &str, method: &str, target: &str, body: Vec<u8>) -> Reply {
    let client = reqwest::Client::new();
    let url = format!("{real}{target}");
    let req = if method == "POST" {
        client.post(url).header("content-type", "application/json").body(body)
    } else {
        client.get(url)
    };
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            Reply::Answer(status, r.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
        }
        Err(_) => Reply::Drop,
    }
}

async fn latest_timestamp(env: &Env) -> u64 {
    use alloy::providers::Provider;
    env.provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp
}

/// The operator's listing of `owner` straight from `real` (one page).
async fn listing_of(real: &str, owner: Address) -> Vec<u8> {
    reqwest::get(format!("{real}/v1/utxos?owner={owner}&limit=1000"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

// ---------------------------------------------------------------- a lost answer, a crash

/// Attack: the operator takes a payment, answers 502 (a lost answer, a crash after its write, or
/// a lie), then withholds it and keeps listing the payment's input as unspent. The old wallet
/// kept the input spendable: the user's next `plasma exit` paid a bond for an exit the operator
/// challenges with the signed payment (EXIT-4), and a second send signed a double spend of its
/// own. Now the input is marked spent by the payment before it leaves the wallet, so the exit is
/// refused before any bond, nothing is counted twice, and the payment is there for its in-flight
/// exit. A payment refused outright (a typed refusal) gives its input back. And an amount and
/// fee whose sum wraps past 2^256 are refused before anything is signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_whose_answer_is_lost_keeps_its_inputs_spent_and_unexitable() {
    let env = env().await;
    let node = operator(&env).await;
    let real = format!("http://{}", node.addr);
    // 0: forward; 1: refuse every payment outright; 2: forward payments, answer 502, and list
    // the frozen listing; 3: drop payments, answer 502.
    let mode = Arc::new(AtomicU64::new(0));
    let frozen = Arc::new(Mutex::new(Vec::<u8>::new()));
    let proxy = {
        let (real, mode, frozen) = (real.clone(), mode.clone(), frozen.clone());
        serve(Arc::new(move |method: String, target: String, body: Vec<u8>| {
            let (real, mode, frozen) = (real.clone(), mode.clone(), frozen.clone());
            Box::pin(async move {
                let m = mode.load(Ordering::SeqCst);
                let path = target.split('?').next().unwrap_or("/").to_owned();
                if method == "POST" && path == "/v1/transactions" {
                    if m == 1 {
                        let err = json!({"error": {"code": "FeeTooLow", "message": "pay more"}});
                        return Reply::Answer(422, err.to_string().into_bytes());
                    }
                    if m == 2 {
                        let _ = forward(&real, &method, &target, body).await;
                        return Reply::Answer(502, b"<html>bad gateway</html>".to_vec());
                    }
                    if m == 3 {
                        return Reply::Answer(502, b"<html>bad gateway</html>".to_vec());
                    }
                }
                if m == 2 && path == "/v1/utxos" {
                    return Reply::Answer(200, frozen.lock().unwrap().clone());
                }
                forward(&real, &method, &target, body).await
            })
        }))
        .await
    };
    let alice =
        Wallet::connect(key(&env, 1), &config(&env, proxy.clone(), env.dir.path().join("a.redb")))
            .await
            .unwrap();
    let bob = key(&env, 2).address();
    let dep = alice.deposit_eth(eth(1)).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(alice.balance(Address::ZERO).unwrap(), eth(1));

    // Wrapping amounts: 2^255 + 1 and a fee of 2^255 "need" 1 wei; the old wallet signed a
    // payment of 2^255 + 1 out of 1 ETH (well-formed by TX-5, so a valid challenge of the
    // input's exit, and never exitable in flight: it creates value).
    let half = U256::from(1) << 255;
    let wrapped = alice.build_payment(bob, Address::ZERO, half + U256::from(1), half);
    assert!(
        matches!(wrapped, Err(SdkError::Config(ref m)) if m.contains("overflows")),
        "{wrapped:?}"
    );

    // Refused outright: the input comes back.
    mode.store(1, Ordering::SeqCst);
    let refused = alice.send(bob, Address::ZERO, eth(1) / U256::from(4), U256::ZERO).await;
    assert!(
        matches!(refused, Err(SdkError::OperatorRefused { ref code, .. }) if code == "FeeTooLow")
    );
    assert_eq!(alice.balance(Address::ZERO).unwrap(), eth(1), "a refused payment spends nothing");
    // But the refusal is only the operator's word, and it may have kept the payment: the
    // output's standard exit, which it could challenge with it, needs `--force`.
    let away = alice.signed_away().unwrap();
    assert_eq!(away.iter().map(|(o, _)| o.utxo_pos).collect::<Vec<_>>(), vec![dep]);
    assert!(alice.exitable().unwrap().iter().all(|o| o.utxo_pos != dep));
    let exit = alice.start_exits(&[dep]).await;
    assert!(
        matches!(exit, Err(SdkError::OutputSpent { ref evidence, .. }) if evidence.contains("a payment this wallet signed")),
        "{exit:?}"
    );

    // Never delivered (dropped, answered 502): the wallet cannot tell, so the input stays
    // marked; the next sync asks the operator, which does not know the payment: given back.
    mode.store(3, Ordering::SeqCst);
    let dropped = alice.send(bob, Address::ZERO, eth(1) / U256::from(8), U256::ZERO).await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(alice.balance(Address::ZERO).unwrap(), U256::ZERO, "marked: it may have arrived");
    mode.store(0, Ordering::SeqCst);
    let report = alice.sync().await.unwrap();
    assert_eq!(report.freed, 1, "{report:?}");
    assert_eq!(alice.balance(Address::ZERO).unwrap(), eth(1), "unknown to the operator: free");
    assert!(
        alice.exitable().unwrap().iter().all(|o| o.utxo_pos != dep),
        "exit still needs --force"
    );

    // The answer lost, the block withheld, the input listed as unspent.
    *frozen.lock().unwrap() = listing_of(&real, alice.address()).await;
    mode.store(2, Ordering::SeqCst);
    let lost = alice.send(bob, Address::ZERO, eth(1) / U256::from(4), U256::ZERO).await;
    assert!(lost.is_err(), "{lost:?}");
    let sent = alice.store().all_sent().unwrap();
    let hash = sent
        .iter()
        .map(|(h, _)| *h)
        .find(|h| {
            let s = alice.sent_transaction(*h).unwrap();
            s.transaction.outputs[0].amount == eth(1) / U256::from(4)
                && s.transaction.input_positions().unwrap()[0].to_u128() == dep
        })
        .unwrap();
    // The operator does hold it.
    let (status, _) = OperatorClient::new(real.clone()).tx_status(hash).await.unwrap();
    assert!(["pending", "included", "committed"].contains(&status.as_str()), "{status}");

    let o = alice.outputs().unwrap().into_iter().find(|o| o.utxo_pos == dep).unwrap();
    assert_eq!(o.spent_by, Some(hash), "marked spent by the payment that left the wallet");
    alice.sync().await.unwrap();
    assert_eq!(alice.balance(Address::ZERO).unwrap(), U256::ZERO, "{:?}", alice.outputs());
    assert!(alice.spendable(Address::ZERO).unwrap().is_empty());
    // No second payment of the same input.
    let again = alice.send(bob, Address::ZERO, eth(1) / U256::from(4), U256::ZERO).await;
    assert!(matches!(again, Err(SdkError::InsufficientFunds { .. })), "{again:?}");
    // No standard exit (it would be challenged with the signed payment), and no bond paid.
    let exit = alice.start_exits(&[dep]).await;
    assert!(
        matches!(exit, Err(SdkError::OutputSpent { ref evidence, .. }) if evidence.contains(&hash.to_string())),
        "{exit:?}"
    );
    let standard = StandardExitGame::new(
        *plasma_contracts::Contracts::bind(env.deployment.framework, env.provider.clone())
            .await
            .unwrap()
            .standard
            .address(),
        env.provider.clone(),
    );
    assert_eq!(standard.exits(U256::from(dep)).call().await.unwrap().status, 0, "no exit started");
    // What the in-flight exit needs is kept.
    assert_eq!(alice.sent_transaction(hash).unwrap().transaction.hash(), hash);
    node.stop().await;
}

/// Attack: the wallet is killed at a random moment of a send (before, during or after the store
/// writes and the operator's answer, the operator slowed so every step is hit). Whatever the
/// moment, a reopened store never holds a sent payment whose inputs look spendable, and never
/// counts more than the wallet owns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_moment_of_a_send_never_leaves_a_signed_spend_unmarked() {
    let env = env().await;
    let node = operator(&env).await;
    let real = format!("http://{}", node.addr);
    let proxy = {
        let real = real.clone();
        serve(Arc::new(move |method: String, target: String, body: Vec<u8>| {
            let real = real.clone();
            Box::pin(async move {
                if method == "POST" {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    let r = forward(&real, &method, &target, body).await;
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    return r;
                }
                forward(&real, &method, &target, body).await
            })
        }))
        .await
    };
    let store = env.dir.path().join("crash.redb");
    let cfg = config(&env, proxy.clone(), store.clone());
    let bob = key(&env, 2).address();
    let mut total = U256::ZERO;
    {
        let w = Wallet::connect(key(&env, 1), &cfg).await.unwrap();
        let mut last = 0;
        for _ in 0..5 {
            last = w.deposit_eth(eth(1)).await.unwrap();
            total += eth(1);
        }
        w.wait_for_output(last, Duration::from_secs(20)).await.unwrap();
        w.sync().await.unwrap();
        assert_eq!(w.balance(Address::ZERO).unwrap(), total);
    }
    let mut rng = Rng::seeded("crash");
    let mut paid = U256::ZERO;
    for round in 0..5 {
        let w = Wallet::connect(key(&env, 1), &cfg).await.unwrap();
        let cut = Duration::from_millis(rng.below(1200));
        let amount = eth(1) / U256::from(10);
        let r = tokio::time::timeout(cut, w.send(bob, Address::ZERO, amount, U256::ZERO)).await;
        if matches!(r, Ok(Ok(_))) {
            paid += amount;
        }
        drop(w); // the process dies: only the store remains
        let w = Wallet::connect(key(&env, 1), &cfg).await.unwrap();
        let outputs = w.outputs().unwrap();
        for (hash, bytes) in w.store().all_sent().unwrap() {
            let s = SignedTransaction::decode(&bytes).unwrap();
            for input in s.transaction.input_positions().unwrap() {
                let o = outputs.iter().find(|o| o.utxo_pos == input.to_u128()).unwrap();
                assert!(
                    !o.is_spendable(),
                    "round {round} (cut at {cut:?}): payment {hash} was signed and kept, its \
                     input {} still spendable",
                    o.utxo_pos
                );
            }
        }
        assert!(w.balance(Address::ZERO).unwrap() <= total - paid, "round {round}");
    }
    node.stop().await;
}

// ---------------------------------------------------------------- lies about proofs

/// A hand-made operator: fixed JSON bodies by path, `POST /v1/inclusions` from the entries
/// `inclusion/{blknum}/{txIndex}` (the world it serves can be swapped between syncs).
async fn fake_operator(bodies: Arc<Mutex<HashMap<String, Value>>>) -> String {
    serve(Arc::new(move |method: String, target: String, body: Vec<u8>| {
        let reply = fake_answer(&bodies, &method, &target, &body);
        Box::pin(async move { reply })
    }))
    .await
}

/// What [`fake_operator`] answers.
fn fake_answer(
    bodies: &Mutex<HashMap<String, Value>>,
    method: &str,
    target: &str,
    body: &[u8],
) -> Reply {
    {
        let path = target.split('?').next().unwrap_or("/").to_owned();
        let b = bodies.lock().unwrap();
        let found = if method == "POST" && path == "/v1/inclusions" {
            let req: Value = serde_json::from_slice(body).unwrap_or_default();
            let items: Vec<Value> = req["txs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    b.get(&format!("inclusion/{}/{}", t["blknum"], t["txIndex"]))
                        .cloned()
                        .unwrap_or_else(|| {
                            json!({"blknum": t["blknum"], "txIndex": t["txIndex"],
                                  "error": {"code": "UnknownBlock", "message": "no such block"}})
                        })
                })
                .collect();
            Some(json!({"inclusions": items}))
        } else {
            b.get(&path).cloned()
        };
        match found {
            Some(v) => Reply::Answer(200, v.to_string().into_bytes()),
            None => Reply::Answer(
                404,
                json!({"error": {"code": "NotFound", "message": path}}).to_string().into_bytes(),
            ),
        }
    }
}

/// Flips one random bit of a hex string's bytes.
fn flip_hex(rng: &mut Rng, v: &Value) -> Value {
    let s = v.as_str().unwrap_or("0x");
    let mut b = hex::decode(s.trim_start_matches("0x")).unwrap_or_default();
    if b.is_empty() {
        return json!("0x00");
    }
    let i = rng.below(b.len() as u64) as usize;
    b[i] ^= 1 << rng.below(8);
    json!(hex0x(&b))
}

/// Attack: a hostile operator serves the victim a listing and inclusions with one random lie at a
/// time — a flipped proof, root, transaction or signature bit, a shifted timestamp, another
/// item's answer replayed, a listed amount or owner changed, a transaction rewritten to pay more —
/// on top of a world with its own lies: a payment signed under another chain's signing domain
/// (SIG-1) and an output in a block not committed on L1. Whatever it serves, the wallet counts
/// only outputs that L1 and the ledger rules back (the honest deposit and the valid payment), at
/// their true amounts; with no lie it counts exactly those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_lies_about_proofs_and_listings_never_count_an_unbacked_output() {
    let env = env().await;
    let chain_id = env.anvil.chain_id();
    let domain = SigningDomain::new(chain_id, env.deployment.framework);
    let other_domain = SigningDomain::new(chain_id + 1, env.deployment.framework);
    let thief_key = key(&env, 3);
    let thief = Signer::from_bytes(&B256::from(thief_key.to_bytes())).unwrap();
    let victim_key = key(&env, 2);
    let victim = victim_key.address();
    let bodies = Arc::new(Mutex::new(HashMap::new()));
    let liar = fake_operator(bodies.clone()).await;
    let mut honest: HashMap<String, Value> = HashMap::new();

    // Real deposits: the victim's (block 1), the thief's two (blocks 2, 3).
    let deposit = |owner: &alloy::signers::local::PrivateKeySigner, store: &str| {
        let c = config(&env, liar.clone(), env.dir.path().join(store));
        let k = owner.clone();
        async move { Wallet::connect(k, &c).await.unwrap() }
    };
    let victim_wallet = deposit(&victim_key, "v0.redb").await;
    let thief_wallet = deposit(&thief_key, "t0.redb").await;
    let mut deposits = Vec::new();
    for (w, owner) in [
        (&victim_wallet, victim),
        (&thief_wallet, thief_key.address()),
        (&thief_wallet, thief_key.address()),
    ] {
        let pos = w.deposit_eth(eth(1)).await.unwrap();
        let tx = Transaction::deposit(owner, Address::ZERO, eth(1)).encode();
        let ts = latest_timestamp(&env).await;
        let blknum = UtxoPos::from_u128(pos).unwrap().blknum();
        let tree = BlockTree::from_txs(std::slice::from_ref(&tx)).unwrap();
        assert_eq!(tree.root(), deposit_block_root(&tx));
        honest.insert(
            format!("inclusion/{blknum}/0"),
            json!({"blknum": blknum, "txIndex": 0, "signedTx": null, "txBytes": hex0x(&tx),
                   "proof": hex0x(&tree.proof(0).unwrap().to_bytes()), "root": tree.root(),
                   "blockTimestamp": ts}),
        );
        deposits.push(pos);
    }
    drop((victim_wallet, thief_wallet));

    // Child block 1000: a valid payment to the victim, and one signed under another domain.
    let pay = |input: u128, amount: U256, d: &SigningDomain| {
        let tx = Transaction::payment(
            &[UtxoPos::from_u128(input).unwrap()],
            vec![Output::new(victim, Address::ZERO, amount)],
            B256::ZERO,
        );
        let sig = thief.sign_tx(d, &tx);
        SignedTransaction::new(tx, vec![sig])
    };
    let half = eth(1) / U256::from(2);
    let txs = [pay(deposits[1], half, &domain), pay(deposits[2], half, &other_domain)];
    let leaves: Vec<Vec<u8>> = txs.iter().map(|t| t.transaction.encode()).collect();
    let tree = BlockTree::from_txs(&leaves).unwrap();
    let framework = PlasmaFramework::new(env.deployment.framework, env.provider.clone());
    let receipt = framework
        .submitBlock(U256::from(1000), tree.root())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let ts = receipt.decoded_log::<PlasmaFramework::BlockSubmitted>().unwrap().timestamp;
    let mut list = vec![json!({"utxoPos": deposits[0].to_string(), "owner": victim,
        "token": Address::ZERO, "amount": eth(1).to_string()})];
    for (i, t) in txs.iter().enumerate() {
        let pos = 1000u128 * 1_000_000_000 + i as u128 * 10_000;
        list.push(json!({"utxoPos": pos.to_string(), "owner": victim, "token": Address::ZERO,
                         "amount": half.to_string()}));
        honest.insert(
            format!("inclusion/1000/{i}"),
            json!({"blknum": 1000, "txIndex": i, "signedTx": hex0x(&t.encode()),
                   "txBytes": hex0x(&leaves[i]), "proof": hex0x(&tree.proof(i).unwrap().to_bytes()),
                   "root": tree.root(), "blockTimestamp": ts}),
        );
    }
    // Block 2000, never committed: a self-consistent proof under a root of the liar's choosing.
    let rich = pay(deposits[1], eth(1), &domain);
    let rich_tree = BlockTree::from_txs(&[rich.transaction.encode()]).unwrap();
    list.push(json!({"utxoPos": "2000000000000", "owner": victim, "token": Address::ZERO,
                     "amount": eth(1).to_string()}));
    honest.insert(
        "inclusion/2000/0".into(),
        json!({"blknum": 2000, "txIndex": 0, "signedTx": hex0x(&rich.encode()),
               "txBytes": hex0x(&rich.transaction.encode()),
               "proof": hex0x(&rich_tree.proof(0).unwrap().to_bytes()), "root": rich_tree.root(),
               "blockTimestamp": ts + 1}),
    );
    honest.insert("/v1/utxos".into(), json!({"utxos": list, "next": null}));

    // What L1 and the rules back: the deposit (1 ETH) and the valid payment (0.5 ETH).
    let backed: HashMap<u128, U256> =
        [(deposits[0], eth(1)), (1000u128 * 1_000_000_000, half)].into_iter().collect();
    let check = |w: &Wallet, what: &str| {
        let mut sum = U256::ZERO;
        for o in w.outputs().unwrap().iter().filter(|o| o.is_spendable()) {
            assert_eq!(backed.get(&o.utxo_pos), Some(&o.amount), "{what}: counted {o:?}");
            assert_eq!((o.owner, o.token), (victim, Address::ZERO), "{what}");
            sum += o.amount;
        }
        assert_eq!(w.balance(Address::ZERO).unwrap(), sum, "{what}");
        sum
    };

    // The honest world (with its own two lies).
    *bodies.lock().unwrap() = honest.clone();
    let w = Wallet::connect(
        victim_key.clone(),
        &config(&env, liar.clone(), env.dir.path().join("h.redb")),
    )
    .await
    .unwrap();
    let report = w.sync().await.unwrap();
    assert_eq!((report.added, report.invalid, report.pending), (2 + 1, 1, 1), "{report:?}");
    assert_eq!(check(&w, "honest"), eth(1) + half);
    let foreign = w
        .outputs()
        .unwrap()
        .into_iter()
        .find(|o| o.utxo_pos == 1000 * 1_000_000_000 + 10_000)
        .unwrap();
    assert_eq!(foreign.status, OutputStatus::Invalid, "another domain's signature: {foreign:?}");
    assert!(foreign.problem.as_deref().unwrap_or_default().contains("signed by"), "{foreign:?}");
    assert!(w.outputs().unwrap().iter().all(|o| o.utxo_pos != 2_000_000_000_000), "not committed");
    drop(w);

    let mut rng = Rng::seeded("lies");
    let keys = ["inclusion/1/0", "inclusion/1000/0", "inclusion/1000/1", "inclusion/2000/0"];
    for round in 0..36 {
        let mut world = honest.clone();
        let what;
        if rng.below(4) == 0 {
            // A lie in the listing.
            let list = world.get_mut("/v1/utxos").unwrap()["utxos"].as_array_mut().unwrap();
            let i = rng.below(list.len() as u64) as usize;
            match rng.below(3) {
                0 => {
                    let a: U256 = list[i]["amount"].as_str().unwrap().parse().unwrap();
                    list[i]["amount"] = json!((a + U256::from(1 + rng.below(1 << 40))).to_string());
                    what = format!("listing {i}: amount raised");
                }
                1 => {
                    list[i]["owner"] = json!(thief_key.address());
                    what = format!("listing {i}: owner changed");
                }
                _ => {
                    list[i]["utxoPos"] =
                        json!((deposits[0] + 1 + u128::from(rng.below(3))).to_string());
                    what = format!("listing {i}: position changed");
                }
            }
        } else {
            let k = keys[rng.below(keys.len() as u64) as usize];
            let item = world.get_mut(k).unwrap();
            match rng.below(8) {
                0 => {
                    item["proof"] = flip_hex(&mut rng, &item["proof"]);
                    what = format!("{k}: proof bit");
                }
                1 => {
                    item["root"] = json!(B256::from(U256::from(rng.next())));
                    what = format!("{k}: root");
                }
                2 => {
                    let t = item["blockTimestamp"].as_u64().unwrap_or_default();
                    item["blockTimestamp"] = json!(t + 1 + rng.below(100));
                    what = format!("{k}: timestamp");
                }
                3 => {
                    item["txBytes"] = flip_hex(&mut rng, &item["txBytes"]);
                    what = format!("{k}: tx bit");
                }
                4 if !item["signedTx"].is_null() => {
                    item["signedTx"] = flip_hex(&mut rng, &item["signedTx"]);
                    what = format!("{k}: signed tx bit");
                }
                5 => {
                    // Rewritten to pay the victim more, proof and root recomputed, signed again.
                    let more = pay(deposits[1], eth(1), &domain);
                    let t = BlockTree::from_txs(&[more.transaction.encode()]).unwrap();
                    item["signedTx"] = json!(hex0x(&more.encode()));
                    item["txBytes"] = json!(hex0x(&more.transaction.encode()));
                    item["proof"] = json!(hex0x(&t.proof(0).unwrap().to_bytes()));
                    item["root"] = json!(t.root());
                    what = format!("{k}: rewritten to pay more");
                }
                _ => {
                    // Another item's answer replayed under this key.
                    let other = keys[rng.below(keys.len() as u64) as usize];
                    let mut replay = honest[other].clone();
                    replay["blknum"] = item["blknum"].clone();
                    replay["txIndex"] = item["txIndex"].clone();
                    *item = replay;
                    what = format!("{k}: {other} replayed");
                }
            }
        }
        *bodies.lock().unwrap() = world;
        let store = env.dir.path().join(format!("lie-{round}.redb"));
        let w =
            Wallet::connect(victim_key.clone(), &config(&env, liar.clone(), store)).await.unwrap();
        let r = w.sync().await;
        let sum = check(&w, &format!("round {round}, {what}, sync {r:?}"));
        assert!(sum <= eth(1) + half, "round {round}: {what}");
        // The lie withdrawn, the same store comes to the truth.
        *bodies.lock().unwrap() = honest.clone();
        let _ = w.sync().await;
        check(&w, &format!("round {round} after the truth ({what})"));
    }
}

// ---------------------------------------------------------------- hostile HTTP

/// Bytes a handler-less server wrote, and its URL: serves `head` and then `body_len` bytes of
/// `fill` to every request, counting what the client took.
async fn flooding_server(
    head: String,
    prefix: Vec<u8>,
    body_len: usize,
) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let (head, prefix, counter) = (head.clone(), prefix.clone(), counter.clone());
            tokio::spawn(async move {
                let _ = read_request(&mut sock).await;
                if sock.write_all(head.as_bytes()).await.is_err()
                    || sock.write_all(&prefix).await.is_err()
                {
                    return;
                }
                let chunk = vec![b' '; 1 << 20];
                let mut sent = prefix.len();
                while sent < body_len {
                    let n = chunk.len().min(body_len - sent);
                    if sock.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                    sent += n;
                    counter.fetch_add(n as u64, Ordering::SeqCst);
                }
            });
        }
    });
    (format!("http://{addr}"), written)
}

/// Attack: the operator answers a listing, and a block, with a body far larger than any honest
/// one, fast (a few hundred MB here; gigabytes over a real link within the answer timeout, a
/// full 300 s window for a block). The old client held it all in memory before parsing — a
/// hostile operator could crash the wallet at every sync, exit check or in-flight exit check.
/// Now a JSON answer is cut off at [`MAX_JSON_ANSWER`] and a block at the length its header
/// announces: the client stops reading and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_answers_are_cut_off_not_held() {
    let big = 256usize << 20;
    // JSON without a length (read until close), and with a length announced up front.
    for announce in [false, true] {
        let head = if announce {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {big}\r\n\r\n"
            )
        } else {
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n".into()
        };
        let (url, written) = flooding_server(head, b"{\"utxos\": [] ".to_vec(), big).await;
        let started = Instant::now();
        let r = OperatorClient::new(url).utxo_page(Address::ZERO, None, 10, false).await;
        assert!(
            matches!(r, Err(SdkError::BadOperatorResponse(ref m)) if m.contains("longer than")),
            "{r:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let took = written.load(Ordering::SeqCst);
        assert!(
            took < (MAX_JSON_ANSWER as u64) + (16 << 20),
            "announce {announce}: the client read {took} bytes in {:?}",
            started.elapsed()
        );
    }
    // A block in the wire format: a header announcing 100 plain bytes, then hundreds of MB.
    let mut header = Vec::new();
    header.extend_from_slice(b"PLB1");
    header.push(0); // plain
    header.extend_from_slice(&1000u64.to_be_bytes());
    header.extend_from_slice(&[0u8; 32]);
    header.extend_from_slice(&1u32.to_be_bytes());
    header.extend_from_slice(&100u64.to_be_bytes());
    header.extend_from_slice(&100u64.to_be_bytes());
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {}\r\nx-plasma-l1-timestamp: 1\r\nconnection: close\r\n\r\n",
        plasma_spec::wire::MEDIA_TYPE
    );
    let (url, written) = flooding_server(head, header, big).await;
    let r = OperatorClient::new(url).block(1000).await;
    assert!(matches!(r, Err(SdkError::BadOperatorResponse(_))), "{r:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let took = written.load(Ordering::SeqCst);
    assert!(took < 32 << 20, "the client read {took} bytes of a block announced as 165");
}

/// Attack: random and malformed answers to every read and to a submit — garbage bytes, JSON of
/// the wrong shape, numbers where strings go, hex that is not, huge or negative numbers,
/// inclusions out of order or of the wrong count, listings out of order or with a cursor that
/// does not advance, error bodies with 200. Each is a typed error or a well-formed value, never a
/// panic or a hang, and a listing is never taken out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_malformed_answers_are_typed_errors() {
    let rng = Arc::new(Mutex::new(Rng::seeded("malformed")));
    let shapes = |r: &mut Rng| -> (u16, Vec<u8>) {
        let junk = || json!(["x", -1, 1e300, null, {"a": []}, "0xzz", "18446744073709551616"]);
        let pick = |r: &mut Rng, v: &Value| -> Value {
            let a = v.as_array().unwrap();
            a[r.below(a.len() as u64) as usize].clone()
        };
        let j = junk();
        let body = match r.below(12) {
            0 => (0..r.below(200)).map(|_| r.next() as u8).collect(),
            1 => b"{\"utxos\": [".to_vec(),
            2 => json!({"utxos": pick(r, &j), "next": pick(r, &j)}).to_string().into_bytes(),
            3 => json!({"utxos": [{"utxoPos": pick(r, &j), "owner": pick(r, &j), "token": pick(r, &j),
                         "amount": pick(r, &j)}]}).to_string().into_bytes(),
            4 => json!({"utxos": [
                    {"utxoPos": "2000000000", "owner": Address::ZERO, "token": Address::ZERO, "amount": "1"},
                    {"utxoPos": "1000000000", "owner": Address::ZERO, "token": Address::ZERO, "amount": "1"}],
                    "next": null}).to_string().into_bytes(),
            5 => json!({"utxos": [], "next": "0"}).to_string().into_bytes(),
            6 => json!({"inclusions": [{"blknum": 7, "txIndex": 0, "txBytes": "0x", "proof": "0x",
                         "root": B256::ZERO, "blockTimestamp": 1}]}).to_string().into_bytes(),
            7 => json!({"inclusions": [{"blknum": 1000, "txIndex": 0, "txBytes": pick(r, &j),
                         "proof": pick(r, &j), "root": pick(r, &j), "blockTimestamp": pick(r, &j),
                         "signedTx": pick(r, &j)}]}).to_string().into_bytes(),
            8 => json!({"error": pick(r, &j)}).to_string().into_bytes(),
            9 => json!({"status": pick(r, &j), "txHash": pick(r, &j), "blknum": pick(r, &j),
                         "txIndex": pick(r, &j)}).to_string().into_bytes(),
            10 => json!({"root": pick(r, &j), "txs": pick(r, &j), "l1Timestamp": pick(r, &j)})
                .to_string()
                .into_bytes(),
            _ => json!({"txBytes": pick(r, &j), "inclusionProof": pick(r, &j), "root": pick(r, &j),
                         "blockTimestamp": pick(r, &j)}).to_string().into_bytes(),
        };
        let status = [200, 200, 200, 400, 404, 500, 503][r.below(7) as usize];
        (status, body)
    };
    let url = {
        let rng = rng.clone();
        serve(Arc::new(move |_: String, _: String, _: Vec<u8>| {
            let (status, body) = shapes(&mut rng.lock().unwrap());
            Box::pin(async move { Reply::Answer(status, body) })
        }))
        .await
    };
    let policy = FailoverPolicy {
        rounds: 1,
        pause: Duration::from_millis(1),
        connect_timeout: Duration::from_secs(1),
        answer_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(3),
    };
    let client = OperatorClient::new(url).with_failover(policy).with_page_size(5);
    let started = Instant::now();
    for _ in 0..150 {
        let which = rng.lock().unwrap().below(7);
        match which {
            0 => {
                if let Ok(list) = client.utxos(Address::ZERO).await {
                    assert!(list.windows(2).all(|w| w[0].utxo_pos < w[1].utxo_pos), "{list:?}");
                }
            }
            1 => {
                if let Ok(items) = client.inclusions(&[(1000, 0)]).await {
                    assert_eq!(items.len(), 1);
                }
            }
            2 => drop(client.tx_status(B256::ZERO).await),
            3 => drop(client.tx_inclusion(B256::ZERO).await),
            4 => drop(client.block(1000).await),
            5 => drop(client.exit_data(1_000_000_000).await),
            _ => {
                // A submit answered with garbage is an error, never "accepted".
                let tx = Transaction::payment(
                    &[UtxoPos::from_u128(1_000_000_000).unwrap()],
                    vec![Output::new(Address::repeat_byte(1), Address::ZERO, U256::from(1))],
                    B256::ZERO,
                );
                let signed = SignedTransaction::new(tx.clone(), vec![]);
                // None of the shapes carries a hash that parses: never "accepted".
                let r = client.submit(&signed.encode()).await;
                assert!(r.is_err(), "{r:?}");
            }
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
}

/// Attack: a slow-loris operator — it accepts, sends headers, then trickles a byte every 200 ms
/// for ever. Every call is left by its deadline with a typed error naming it: the wallet moves on
/// (to a tower, or to L1 alone for an exit) instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_operator_is_left_by_the_deadline() {
    let stop = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let flag = stop.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let flag = flag.clone();
            tokio::spawn(async move {
                let _ = read_request(&mut sock).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{")
                    .await;
                while !flag.load(Ordering::SeqCst) {
                    if sock.write_all(b" ").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        }
    });
    let policy = FailoverPolicy {
        rounds: 2,
        pause: Duration::from_millis(10),
        connect_timeout: Duration::from_secs(1),
        answer_timeout: Duration::from_secs(1),
        deadline: Duration::from_secs(2),
    };
    let client = OperatorClient::new(url).with_failover(policy);
    for what in ["utxos", "inclusions", "status"] {
        let started = Instant::now();
        let failed = match what {
            "utxos" => client.utxo_page(Address::ZERO, None, 10, false).await.is_err(),
            "inclusions" => client.inclusions(&[(1000, 0)]).await.is_err(),
            _ => client.tx_status(B256::ZERO).await.is_err(),
        };
        assert!(failed, "{what}");
        assert!(started.elapsed() < Duration::from_secs(4), "{what}: {:?}", started.elapsed());
    }
    stop.store(true, Ordering::SeqCst);
}

/// Attack: the operator lists a deposit of the victim's under the victim's own name but in a
/// block whose L1 commitment is another (a position of someone else's deposit) or none: the
/// wallet proves every output under L1, so neither is stored. Checked through the public
/// `verify` a wallet embedding the SDK calls on data it got elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_data_under_another_blocks_commitment_or_none_is_refused() {
    let env = env().await;
    let victim_key = key(&env, 2);
    let victim = victim_key.address();
    let w = Wallet::connect(
        victim_key.clone(),
        &config(&env, plasma_testkit::dead_url(), env.dir.path().join("v.redb")),
    )
    .await
    .unwrap();
    let mine = w.deposit_eth(eth(1)).await.unwrap();
    let ts = latest_timestamp(&env).await;
    let tx = Transaction::deposit(victim, Address::ZERO, eth(1)).encode();
    let tree = BlockTree::from_txs(std::slice::from_ref(&tx)).unwrap();
    let data = plasma_sdk::ExitData {
        tx_bytes: tx.clone().into(),
        proof: tree.proof(0).unwrap().to_bytes().into(),
        root: tree.root(),
        block_timestamp: ts,
    };
    let listed = |pos: u128| plasma_sdk::ListedUtxo {
        utxo_pos: pos,
        owner: victim,
        token: Address::ZERO,
        amount: eth(1),
    };
    let ok = w.verify(&listed(mine), &data).await.unwrap();
    assert_eq!(ok.verification, Verification::Proof);
    // The same data under the next deposit block (uncommitted), and a child block.
    for pos in [mine + 1_000_000_000, 1000 * 1_000_000_000, mine + 1] {
        let r = w.verify(&listed(pos), &data).await;
        assert!(matches!(r, Err(SdkError::ProofMismatch { .. })), "{pos}: {r:?}");
    }
}
