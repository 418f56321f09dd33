//! A21-3 on the availability path (issue #21 with #17): a leader distributing its blocks to the
//! towers keeps answering, and stops, when its database goes silent while the distributor's
//! store calls are in flight.
//!
//! The distributor (`src/da.rs`) calls the store when it starts (`meta`, `da_pending`), for each
//! block it encodes (`wire`, `put_da_header` with the pending mark, `da_receipts`), to see whether
//! a block was committed (`block_info`), for every receipt that counts (`put_da_receipt`: stored
//! before it counts), when a block's pushes end (`clear_da_pending`) and for the quorum-missed
//! count (`apply`). On PostgreSQL each is a round trip bounded only by the call deadline; one made
//! on a tokio worker parks that worker, which `/health`, `/v1/status` and the supervisor that
//! stops a deposed leader then cannot use.
//!
//! The scene is made deterministic with three stub towers (k = 2; a wait of a minute, so only
//! receipts commit) behind *gates*, loopback proxies that can hold the towers' answers. Block 1000
//! goes through with the gates open: its three receipts land in PostgreSQL (the path works here).
//! The gates close and block 2000 is made: encoded, its header stored, its chunk accepted by
//! every tower, the three receipts held at the gates. Then the store's connections go silent (the
//! proxy swallows their bytes; the lease's connection goes on, so what deposes the leader is its
//! store probe, A21b-8) and the gates open: three receipts that count arrive at once and each
//! push loop calls `put_da_receipt`, which now waits out the call deadline (1.5 s here, set low
//! so the push loops report it before the deposed leader's stop aborts them). Were those calls
//! made on the workers (the test runtime has two), both would be
//! parked for the whole deadline and no probe could be answered within a second; the probes are
//! plain threads and blocking sockets, the deadlines `std` timers, so the test fails on such code
//! instead of hanging with it.
//!
//! That the availability work really was in flight during the silence is asserted, not assumed:
//! the gates delivered the receipts after the cut; each tower's push loop logged its receipt's
//! store call failing on the deadline, at least 90 % of the deadline after the receipts were let
//! through (the call was made, and waited, during the silence); no receipt of block 2000 was
//! stored, in the log nor in the database (read directly, around the proxy, while still silent).
//!
//! The deposed leader's crash-stop is made once the database answers again, not while it is
//! silent: `PgStore::drop` waits for the store's threads stuck on the silent connections (for
//! ever before A21c-5, `DROP_WAIT` after), on whichever thread drops the leader's chain last —
//! a blocking-pool thread when a store call is still running there, else the supervisor's tokio
//! worker at the end of `Leading::stop` (seen with gdb on this scene), and the stop then waits.
//!
//! Real PostgreSQL (`plasma-test-postgres`), real anvil with the real contracts, an in-process
//! `HaNode`, as `ha.rs` sets them up; stub towers (`common/towers.rs`) on a runtime of their own.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use parking_lot::Mutex;
use plasma_contracts::PlasmaFramework;
use plasma_operator::{DaConfig, HaNode, Role, TowerConfig};
use plasma_spec::{Output, SignedTransaction, Signer, Transaction, UtxoPos};
use serde_json::{Value, json};
use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

#[path = "common/ha.rs"]
mod ha_env;
use ha_env::{Env, LEASE_MS, config_at, env};

#[path = "common/proxy.rs"]
#[allow(dead_code)] // each audit file uses part of it
mod proxy;
use proxy::Proxy;

#[path = "common/towers.rs"]
mod towers;
use towers::{Received, StubConfig, StubTower, tower_key};

/// The store's call deadline in this test: the least allowed is 1 s. Longer than the probes'
/// second (a worker parked for it fails a probe), shorter than the 2 s a deposed leader's stop
/// waits for its tasks (the push loops report the failed call before they are aborted).
const CALL_DEADLINE_MS: u64 = 1_500;

/// Towers (n), and the receipts a block needs (k).
const N: u16 = 3;
const K: u16 = 2;

/// One GET with a plain blocking socket (no tokio: its workers are what is under test), at most
/// `limit` in all. The status code and body, or why not.
fn get(addr: SocketAddr, path: &str, limit: Duration) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(limit)).unwrap();
    s.set_write_timeout(Some(limit)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).map_err(|e| format!("no answer within {limit:?}: {e}"))?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or("not HTTP")?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((code, body))
}

/// A JSON GET before the silence (a healthy operator answers within seconds).
fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (code, body) = get(addr, path, Duration::from_secs(5)).unwrap();
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `check` every 50 ms until it holds, for `within` at most; `what` names it on failure.
fn poll(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A deadline that fires on a plain thread (a tokio timer needs a free worker to fire).
fn std_deadline(after: Duration) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        let _ = tx.send(());
    });
    rx
}

/// Every log line the operator writes, with when it was written (and echoed to stderr).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<(Instant, String)>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        let now = Instant::now();
        let text = String::from_utf8_lossy(buf);
        self.0.lock().extend(text.lines().map(|l| (now, l.to_owned())));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// The process's subscriber, installed once (before `env()`, whose own then stays out): the
    /// election's transitions, the distributor's pushes and receipts, the store's warnings.
    fn get() -> Self {
        static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Self::default();
            let writer = logs.clone();
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "operator::ha=info,operator::da=debug,operator::store=warn,operator=warn",
                ))
                .init();
            logs
        })
        .clone()
    }

    /// The lines written from `from` on, with when.
    fn since(&self, from: usize) -> Vec<(Instant, String)> {
        self.0.lock()[from..].to_vec()
    }

    fn len(&self) -> usize {
        self.0.lock().len()
    }
}

/// `field=<number>` of a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    line[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// A loopback proxy in front of a tower that can hold the tower's answers (`hold`): the tower
/// has taken the chunk and signed its receipt, the operator waits for it. Requests always go
/// through; answers are let through once `hold` is cleared.
struct Gate {
    url: String,
    hold: Arc<AtomicBool>,
    /// Reads of the tower's answers forwarded to the operator.
    delivered: Arc<AtomicUsize>,
}

impl Gate {
    fn start(tower: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (hold, delivered) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let gate = (hold.clone(), delivered.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(tower) else { continue };
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap(), None);
                pipe(server, client, Some(gate.clone()));
            }
        });
        Self { url, hold, delivered }
    }
}

/// Copies `from` to `to` until either closes; with a gate, each read waits while it holds.
fn pipe(mut from: TcpStream, mut to: TcpStream, gate: Option<(Arc<AtomicBool>, Arc<AtomicUsize>)>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some((hold, delivered)) = &gate {
                while hold.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                delivered.fetch_add(1, Ordering::SeqCst);
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// Starts honest stub towers on a runtime and thread of their own (the test's runtime is what is
/// under test), for the rest of the process: each one's address, where it listens, and the
/// envelopes it accepted.
fn start_towers(configs: Vec<StubConfig>) -> Vec<(Address, SocketAddr, Received)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut towers = Vec::new();
            for c in configs {
                towers.push(StubTower::start("127.0.0.1:0".parse().unwrap(), c).await);
            }
            let info = towers.iter().map(|t| (t.address, t.addr, t.received.clone())).collect();
            tx.send(info).unwrap();
            std::future::pending::<()>().await;
            drop(towers);
        });
    });
    rx.recv().unwrap()
}

/// Whether `received` holds an envelope of `blknum`.
fn has_chunk(received: &Received, blknum: u64) -> bool {
    received.lock().iter().any(|(b, _)| *b == blknum)
}

fn pay(env: &Env, from: &Signer, input: UtxoPos, to: Address, amount: U256) -> SignedTransaction {
    let tx =
        Transaction::payment(&[input], vec![Output::new(to, Address::ZERO, amount)], B256::ZERO);
    SignedTransaction::new(tx.clone(), vec![from.sign_tx(&env.domain, &tx)])
}

async fn submit(addr: SocketAddr, tx: &SignedTransaction) {
    let body = json!({"tx": format!("0x{}", hex::encode(tx.encode()))});
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/transactions"))
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 200, "submit: {}", r.text().await.unwrap_or_default());
}

/// The number of rows `sql` (a `SELECT count(*)` with one `bigint` parameter) counts, read from
/// the database directly, around the proxy.
fn count(pg: &mut postgres::Client, sql: &str, blknum: u64) -> i64 {
    pg.query_one(sql, &[&i64::try_from(blknum).unwrap()]).unwrap().get(0)
}

/// What one run of the scene saw.
struct Scene {
    /// Probes not answered 200 within a second, and how many were made.
    failures: Vec<String>,
    probes: usize,
    /// The role once the probing ended.
    role: Role,
    /// Why and when (after the cut) the supervisor reported the deposition, if it did in time.
    reported: Option<(String, Duration)>,
    /// How long the deposed leader's crash-stop took, made once the database answered again,
    /// if it finished within 15 s.
    stopped: Option<Duration>,
    /// The push loops' failed receipt store calls of block 2000 after the cut: (tower, when after
    /// the receipts were let through, the line).
    failed: Vec<(u64, Duration, String)>,
    /// Log lines of a receipt of block 2000 stored.
    stored_2000: Vec<String>,
    /// Per gate, reads of the tower's answers forwarded after the cut.
    delivered: Vec<usize>,
    /// Block 1000's receipts, block 2000's header, its pending mark, its receipts, in the
    /// database while it was still silent for the operator.
    rows: (i64, i64, i64, i64),
    /// The towers' `lastError` values `/v1/status` showed while leading.
    last_errors: Vec<String>,
}

/// The towers that had a failed receipt store call.
fn towers_failed(failed: &[(u64, Duration, String)]) -> Vec<u64> {
    let mut t: Vec<u64> = failed.iter().map(|(i, _, _)| *i).collect();
    t.sort_unstable();
    t.dedup();
    t
}

/// The scene of the module doc, the push loops retrying every `retry_ms`. The deposed leader's
/// crash-stop is made once the database answers again: a stop while it is silent can wait on
/// it (see the report of this audit: `PgStore::drop` waits for the store's stuck threads on
/// whichever thread drops the chain last, sometimes the supervisor's worker).
async fn scene(retry_ms: u64) -> Scene {
    let logs = Logs::get();
    let start = logs.len();
    let env = env().await;
    let pg_port: u16 =
        env.pg.url().rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    let proxy = Proxy::start(pg_port);
    let via_proxy = env.pg.url().replace(&format!(":{pg_port}/"), &format!(":{}/", proxy.port));

    let operator = PrivateKeySigner::from(env.anvil.keys()[0].clone()).address();
    let towers = start_towers(
        (0..N)
            .map(|index| {
                let key = tower_key(index.into());
                StubConfig {
                    index,
                    receipt_key: key.clone(),
                    key,
                    domain: env.domain.clone(),
                    operator,
                }
            })
            .collect(),
    );
    let gates: Vec<Gate> = towers.iter().map(|(_, addr, _)| Gate::start(*addr)).collect();
    let mut c = config_at(&env, "a", &via_proxy);
    c.store.call_deadline_ms = CALL_DEADLINE_MS;
    c.da = Some(DaConfig {
        k: K,
        // Only receipts commit within the test: a missed quorum would commit (and write) by
        // itself, and is not what is tested here.
        wait_ms: Some(60_000),
        retry_ms,
        towers: towers
            .iter()
            .zip(&gates)
            .map(|((address, _, _), gate)| TowerConfig { address: *address, url: gate.url.clone() })
            .collect(),
    });
    let node = HaNode::start(c).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), node.leading()).await.expect("never led");
    let addr = node.addr;

    // Block 1000, the gates open: committed on k receipts, all three stored.
    let eth = U256::from(10u64.pow(18));
    let deposit = {
        let tx = Transaction::deposit(env.alice.address(), Address::ZERO, eth);
        let receipt = PlasmaFramework::new(env.deployment.framework, env.provider.clone())
            .depositEth(tx.encode().into())
            .value(eth)
            .from(env.alice.address())
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let ev = receipt.decoded_log::<PlasmaFramework::DepositCreated>().unwrap();
        UtxoPos::from_u256(ev.blknum * U256::from(1_000_000_000u64)).unwrap()
    };
    let alice = env.alice.address();
    poll("the deposit credited", Duration::from_secs(20), || {
        get_json(addr, &format!("/v1/utxos?owner={alice}"))["utxos"]
            .as_array()
            .is_some_and(|u| u.len() == 1)
    });
    submit(addr, &pay(&env, &env.alice, deposit, env.bob.address(), eth)).await;
    let settled = |v: &Value, through: u64, behind: u64| {
        v["chain"]["nextChildBlock"].as_u64().is_some_and(|n| n > through)
            && v["da"]["towers"].as_array().is_some_and(|t| {
                t.len() == usize::from(N) && t.iter().all(|t| t["behind"] == behind)
            })
    };
    poll("block 1000 committed and fully distributed", Duration::from_secs(30), || {
        let v = get_json(addr, "/v1/status");
        settled(&v, 1000, 0) && v["chain"]["uncommittedBlocks"] == json!([])
    });
    let availability = get_json(addr, "/v1/blocks/1000/availability");
    assert_eq!(
        availability["receipts"].as_array().map(Vec::len),
        Some(usize::from(N)),
        "{availability}"
    );

    // Block 2000, the gates closed: every tower takes its chunk, its receipt is held.
    for g in &gates {
        g.hold.store(true, Ordering::SeqCst);
    }
    submit(addr, &pay(&env, &env.bob, UtxoPos::new(1000, 0, 0).unwrap(), alice, eth)).await;
    poll("every tower holding block 2000's chunk", Duration::from_secs(20), || {
        towers.iter().all(|(_, _, received)| has_chunk(received, 2000))
    });
    let before = get_json(addr, "/v1/status");
    assert!(settled(&before, 2000, 1), "block 2000 is not being pushed: {before}");
    assert_eq!(before["chain"]["uncommittedBlocks"], json!([2000]), "{before}");

    // The store's connections go silent; the receipts are let through.
    let mark = logs.len();
    proxy.swallow_store.store(true, Ordering::SeqCst);
    let cut = Instant::now();
    let delivered_before: Vec<usize> =
        gates.iter().map(|g| g.delivered.load(Ordering::SeqCst)).collect();
    for g in &gates {
        g.hold.store(false, Ordering::SeqCst);
    }
    let released = Instant::now();

    // Until deposed (by the election thread, which needs no worker), and one more lease after:
    // every probe answered within a second. `/v1/status` and `/metrics` read memory only, as a
    // leader and as the deposed process's standby context alike.
    let second = Duration::from_secs(1);
    let mut failures: Vec<String> = Vec::new();
    let mut probes = 0;
    let mut deposed_at = None;
    let mut last_errors: Vec<String> = Vec::new();
    let probe_until = cut + Duration::from_millis(LEASE_MS * 6);
    while Instant::now() < probe_until {
        let leading = matches!(node.role(), Role::Leader { .. });
        if !leading && deposed_at.is_none() {
            deposed_at = Some(cut.elapsed());
        }
        if deposed_at.is_some_and(|d| cut.elapsed() > d + Duration::from_millis(LEASE_MS)) {
            break;
        }
        for path in ["/health", "/v1/status", "/metrics"] {
            let t = Instant::now();
            probes += 1;
            match get(addr, path, second) {
                Ok((200, body)) if t.elapsed() <= second => {
                    if path == "/v1/status"
                        && let Ok(v) = serde_json::from_str::<Value>(&body)
                        && let Some(towers) = v["da"]["towers"].as_array()
                    {
                        last_errors.extend(
                            towers
                                .iter()
                                .filter_map(|t| t["lastError"].as_str().map(str::to_owned)),
                        );
                    }
                }
                Ok((code, body)) => failures.push(format!(
                    "{path} at {:?} after the cut: {code} in {:?}: {body}",
                    t - cut,
                    t.elapsed()
                )),
                Err(e) => failures.push(format!("{path} at {:?} after the cut: {e}", t - cut)),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // Deposed: the supervisor reports it (it runs on a worker) within a bound on a std timer.
    let reported = tokio::select! {
        why = node.deposed() => Some((why, cut.elapsed())),
        _ = std_deadline(Duration::from_millis(LEASE_MS * 2)) => None,
    };
    let role = node.role();
    // What the distributor did during the silence: each tower's receipt went to the store and
    // its call failed on the deadline (logged by the push loop; polled, as the loops log it
    // `CALL_DEADLINE_MS` after the receipts were let through).
    let deadline = Duration::from_millis(CALL_DEADLINE_MS);
    let failed_stores = || -> Vec<(u64, Duration, String)> {
        logs.since(mark)
            .into_iter()
            .filter(|(_, l)| {
                l.contains("chunk push failed")
                    && l.contains("storing the receipt")
                    && field(l, "blknum") == Some(2000)
            })
            .filter_map(|(at, l)| Some((field(&l, "tower")?, at.duration_since(released), l)))
            .collect()
    };
    let wait_logs = released + deadline + Duration::from_secs(3);
    while towers_failed(&failed_stores()).len() < usize::from(N) && Instant::now() < wait_logs {
        std::thread::sleep(Duration::from_millis(50));
    }
    let failed = failed_stores();
    let stored_2000: Vec<String> = logs
        .since(start)
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| l.contains("receipt stored") && field(l, "blknum") == Some(2000))
        .collect();
    let delivered: Vec<usize> = gates
        .iter()
        .zip(&delivered_before)
        .map(|(g, b)| g.delivered.load(Ordering::SeqCst) - b)
        .collect();

    // The database as the silence left it, read around the proxy before healing it.
    let url = env.pg.url().to_owned();
    let rows = std::thread::spawn(move || {
        let mut pg = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        (
            count(&mut pg, "SELECT count(*) FROM da_receipts WHERE blknum = $1", 1000),
            count(&mut pg, "SELECT count(*) FROM da_headers WHERE blknum = $1", 2000),
            count(&mut pg, "SELECT count(*) FROM da_pending WHERE blknum = $1", 2000),
            count(&mut pg, "SELECT count(*) FROM da_receipts WHERE blknum = $1", 2000),
        )
    })
    .join()
    .unwrap();
    proxy.heal();

    let t = Instant::now();
    let stopped = tokio::select! {
        () = node.crash() => Some(t.elapsed()),
        _ = std_deadline(Duration::from_secs(15)) => None,
    };
    Scene {
        failures,
        probes,
        role,
        reported,
        stopped,
        failed,
        stored_2000,
        delivered,
        rows,
        last_errors,
    }
}

/// The A21-3 properties every run of the scene must show: the API answered in time throughout,
/// the leader was deposed and the supervisor said so, and the availability work was really in
/// flight during the silence and waited on it.
fn assert_answered_deposed_and_da_in_flight(s: &Scene) {
    assert!(
        s.failures.is_empty(),
        "A21-3 (DA): with the database silent while receipts arrived, the API stopped answering \
         in time ({} of {} probes failed): {:#?}",
        s.failures.len(),
        s.probes,
        s.failures
    );
    assert!(s.probes > 5, "too few probes: {}", s.probes);
    assert!(matches!(s.role, Role::Deposed { .. }), "never deposed: {:?}", s.role);
    let (why, after) = s.reported.as_ref().expect(
        "A21-3 (DA): deposed by the election, but the supervisor never reported it within 2 more \
         leases (the workers it runs on are stuck on the database?)",
    );
    assert!(
        *after <= Duration::from_millis(LEASE_MS * 5),
        "deposed only {after:?} after the cut: {why}"
    );

    assert!(
        s.delivered.iter().all(|d| *d > 0),
        "the gates let no receipt through after the cut: {:?}",
        s.delivered
    );
    assert_eq!(
        towers_failed(&s.failed),
        (0..u64::from(N)).collect::<Vec<_>>(),
        "not every tower's receipt of block 2000 went to the silent store and failed there \
         (the push loops' failures after the cut: {:#?})",
        s.failed
    );
    let deadline = Duration::from_millis(CALL_DEADLINE_MS);
    for (tower, at, line) in &s.failed {
        assert!(
            *at >= deadline.mul_f64(0.9),
            "tower {tower}'s receipt store call failed {at:?} after the receipts were let \
             through, before the {deadline:?} deadline: it did not wait on the silent store: \
             {line}"
        );
    }
    assert!(s.stored_2000.is_empty(), "a receipt of block 2000 was stored: {:#?}", s.stored_2000);
    assert_eq!(
        s.rows,
        (i64::from(N), 1, 1, 0),
        "(block 1000's receipts, block 2000's header, its pending mark, its receipts) stored"
    );
    println!(
        "supervisor reported the deposition {after:?} after the cut ({why}); {} probes answered \
         in time; receipt store calls \
         failed at {:?} after the receipts were let through; towers' lastError seen while \
         leading: {:?}; stopped in {:?}",
        s.probes,
        s.failed.iter().map(|(t, at, _)| (*t, *at)).collect::<Vec<_>>(),
        s.last_errors,
        s.stopped
    );
}

/// The distributor's store calls stay off the workers: while three receipts' store calls wait
/// on the silent database (and are retried every 100 ms until the leader is deposed), `/health`,
/// `/v1/status` and `/metrics` answer within a second and the supervisor reports the deposition.
/// The crash-stop is made once the database answers again (see [`scene`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_database_hangs_while_receipts_arrive_keeps_answering_and_steps_down() {
    let s = scene(100).await;
    assert_answered_deposed_and_da_in_flight(&s);
    assert!(
        s.stopped.is_some(),
        "the deposed leader's stop did not finish once the store answered"
    );
}
