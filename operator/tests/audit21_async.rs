//! A21-3 (issue #21, HIGH availability): no store round trip on a tokio worker while the chain's
//! state lock is held. A leader whose database goes silent (a proxy that swallows every byte: a
//! partition, a hung pgbouncer, a frozen database VM) while deposits arrive on L1 and an exit
//! starts must keep answering `/health` and `/v1/status` within a second, and must be deposed
//! and STOP within a few leases (its tasks ended, the supervisor done).
//!
//! Before the fix, `l1.rs deposit_step` → `Chain::credit_deposit`/`set_deposit_cursor` →
//! `Store::apply` ran on a tokio worker holding the `State` mutex, and the exit follower then
//! waited on that mutex on the other worker: both workers parked for as long as the database
//! stayed silent, so no HTTP request was answered and the supervisor that stops a deposed
//! leader never ran. The probes below are plain threads and blocking sockets, and the deadlines
//! are `std` timers, so the test FAILS on that code instead of hanging with it.
//!
//! Real PostgreSQL (`plasma-test-postgres`), real anvil with the real contracts, an in-process
//! `HaNode`, as `ha.rs` sets them up.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, Bytes, U256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{PlasmaFramework, StandardExitGame};
use plasma_operator::{HaNode, Role};
use plasma_spec::{Transaction, UtxoPos};
use serde_json::Value;
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
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

/// A deadline that fires on a plain thread (a tokio timer needs a free worker to fire).
fn std_deadline(after: Duration) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        let _ = tx.send(());
    });
    rx
}

/// The exit arguments of `pos` (a deposit output) as the operator serves them.
fn exit_args(addr: SocketAddr, pos: UtxoPos) -> StandardExitGame::StartArgs {
    let path = format!("/v1/utxos/{}/exit-data", pos.to_u128());
    let (code, body) = get(addr, &path, Duration::from_secs(5)).unwrap();
    assert_eq!(code, 200, "{body}");
    let data: Value = serde_json::from_str(&body).unwrap();
    let field = |k: &str| {
        Bytes::from(hex::decode(data[k].as_str().unwrap().trim_start_matches("0x")).unwrap())
    };
    StandardExitGame::StartArgs {
        utxoPos: pos.to_u256(),
        txBytes: field("txBytes"),
        inclusionProof: field("inclusionProof"),
        blockTimestamp: data["blockTimestamp"].as_u64().unwrap(),
    }
}

/// Alice's L1 traffic while the database is silent, on a thread and a runtime of its own (the
/// test's runtime is what is under test): the exit of `exiting` starts, then a deposit every
/// 200 ms until `stop`. Returns how many deposits were mined and whether the exit started.
fn l1_traffic(
    env: &Env,
    exiting: StandardExitGame::StartArgs,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(u32, bool)> {
    let url = env.anvil.endpoint_url();
    let key: PrivateKeySigner = env.anvil.keys()[1].clone().into();
    let (framework, game) = (env.deployment.framework, env.deployment.standard_exit_game);
    let owner = env.alice.address();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let l1 = ProviderBuilder::new().wallet(EthereumWallet::new(key)).connect_http(url);
            let game = StandardExitGame::new(game, l1.clone().erased());
            let bond = game.bondSize().call().await.unwrap();
            let started = game
                .startStandardExit(exiting)
                .value(bond)
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap()
                .status();
            let framework = PlasmaFramework::new(framework, l1.erased());
            let amount = U256::from(10u64.pow(15));
            let mut deposits = 0;
            while !stop.load(Ordering::SeqCst) {
                let tx = Transaction::deposit(owner, Address::ZERO, amount);
                let receipt = framework
                    .depositEth(tx.encode().into())
                    .value(amount)
                    .send()
                    .await
                    .unwrap()
                    .get_receipt()
                    .await
                    .unwrap();
                deposits += u32::from(receipt.status());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (deposits, started)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_database_hangs_keeps_answering_and_stops_within_a_few_leases() {
    let env = env().await;
    let pg_port: u16 =
        env.pg.url().rsplit(':').next().unwrap().split('/').next().unwrap().parse().unwrap();
    let proxy = Proxy::start(pg_port);
    let via_proxy = env.pg.url().replace(&format!(":{pg_port}/"), &format!(":{}/", proxy.port));
    let node = HaNode::start(config_at(&env, "a", &via_proxy)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), node.leading()).await.expect("never led");
    let addr = node.addr;

    // A deposit credited while the database is healthy: its output is the one that exits.
    let eth = U256::from(10u64.pow(18));
    let exiting = {
        let l1 = &env.provider;
        let tx = Transaction::deposit(env.alice.address(), Address::ZERO, eth);
        let receipt = PlasmaFramework::new(env.deployment.framework, l1.clone())
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
    let credited = Instant::now() + Duration::from_secs(10);
    let args = loop {
        let path = format!("/v1/utxos/{}/exit-data", exiting.to_u128());
        if get(addr, &path, Duration::from_secs(2)).is_ok_and(|(c, _)| c == 200) {
            break exit_args(addr, exiting);
        }
        assert!(Instant::now() < credited, "the deposit was never credited");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_ne!(args.blockTimestamp, 0);

    // The database goes silent; L1 goes on: an exit starts, deposits arrive.
    proxy.blackhole.store(true, Ordering::SeqCst);
    let cut = Instant::now();
    let stop_traffic = Arc::new(AtomicBool::new(false));
    let traffic = l1_traffic(&env, args, stop_traffic.clone());

    // Until deposed (by the election thread, which needs no worker), and one more lease after:
    // every probe answered within a second. `/v1/status` is probed only while leading: a
    // deposed process serves the standby's status, which reads the store (see the report).
    let second = Duration::from_secs(1);
    let mut failures: Vec<String> = Vec::new();
    let mut probes = 0;
    let mut deposed_at = None;
    let probe_until = cut + Duration::from_millis(LEASE_MS * 6);
    while Instant::now() < probe_until {
        let leading = matches!(node.role(), Role::Leader { .. });
        if !leading && deposed_at.is_none() {
            deposed_at = Some(cut.elapsed());
        }
        if deposed_at.is_some_and(|d| cut.elapsed() > d + Duration::from_millis(LEASE_MS)) {
            break;
        }
        let mut paths = vec!["/health"];
        if leading {
            paths.push("/v1/status");
        }
        for path in paths {
            let t = Instant::now();
            probes += 1;
            match get(addr, path, second) {
                Ok((200, _)) if t.elapsed() <= second => {}
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

    // Deposed, and stopped: the supervisor reports it (it runs on a worker) and a crash-stop
    // (its tasks, the API, the election thread) completes, each within a bound on a std timer.
    let reported = tokio::select! {
        why = node.deposed() => Some((why, cut.elapsed())),
        _ = std_deadline(Duration::from_millis(LEASE_MS * 2)) => None,
    };
    let role = node.role();
    let stopped = if reported.is_some() {
        let t = Instant::now();
        let crash = node.crash();
        tokio::select! {
            () = crash => Some(t.elapsed()),
            _ = std_deadline(Duration::from_secs(4)) => None,
        }
    } else {
        std::mem::forget(node);
        None
    };

    // Unblock what waits on the database before asserting, so a failure ends the test.
    stop_traffic.store(true, Ordering::SeqCst);
    proxy.heal();
    let traffic = traffic.join();

    assert!(
        failures.is_empty(),
        "A21-3: with the database silent, the API stopped answering in time ({} of {probes} \
         probes failed): {failures:#?}",
        failures.len()
    );
    assert!(probes > 5, "too few probes: {probes}");
    let (deposits, exit_started) = traffic.expect("L1 traffic thread");
    assert!(exit_started && deposits > 0, "L1 traffic: exit {exit_started}, {deposits} deposits");
    assert!(matches!(role, Role::Deposed { .. }), "never deposed: {role:?}");
    let (why, after) = reported.expect(
        "A21-3: deposed by the election, but the supervisor never reported it within 2 more \
         leases (the workers it runs on are stuck on the database?)",
    );
    assert!(
        after <= Duration::from_millis(LEASE_MS * 5),
        "deposed only {after:?} after the cut: {why}"
    );
    let took = stopped.expect("the deposed leader's stop did not finish within 4 s");
    println!(
        "deposed {after:?} after the cut ({why}); stopped in {took:?}; {probes} probes answered \
         in time; {deposits} deposits and an exit on L1 meanwhile"
    );
}
