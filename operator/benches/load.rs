//! Load generator: pre-signs payments for many owners, submits them to a real operator over HTTP,
//! waits until their block is committed on L1 (anvil), and prints in one run: the signer-recovery
//! ceiling of this machine on 1 and all threads (measured before and after the loads), the load
//! generator's own cost (measured alone, against a sink answering canned replies, and during the
//! real load), accepted tx/s, submit latency p50/p99, end-to-end tx/s (to the root on L1, and
//! to the operator's record of it) and its ratio to the ceiling, the operator's ingest stages
//! (`Chain::ingest_stats`) and the block's build + persist.
//!
//! Two ways to submit (`PLASMA_LOAD_MODE`): `binary` (the default, the headline) sends
//! `POST /v1/transactions/batch` with the binary body (OP-1: length-framed signed transactions),
//! `PLASMA_LOAD_BATCH` transactions a request (default 100) over `PLASMA_LOAD_CONNECTIONS`
//! connections (default 2: one group recovers while the other is written); `single` sends one JSON transaction a request over 64 connections (the
//! issue-5 figure); `all` runs both. The generator runs on its own thread (one core at most), its
//! CPU time read from the kernel (`/proc/thread-self/schedstat`).
//!
//! The same load runs without and with availability distribution, each on its own deployment and
//! data directory on one anvil: with 5 local stub towers and `k = 3` (issue 17: every block is
//! encoded, pushed to the towers, and committed only once 3 receipts are in).
//!
//! Run: `cargo bench -p plasma-operator --bench load` (`PLASMA_LOAD_LEVELS=5` for a short run:
//! 5^levels transactions, 15,625 by default; `PLASMA_LOAD_DA=off` or `only` for one of the two;
//! `PLASMA_LOAD_RUNS=5` alternates the variants five times and reports the medians, the way to
//! compare them on a shared, noisy machine).

#![allow(clippy::unwrap_used, missing_docs, clippy::field_reassign_with_default)]
// warp's filter types of the stub towers and the sink nest deeply.
#![recursion_limit = "256"]

use alloy::{
    network::EthereumWallet,
    node_bindings::Anvil,
    primitives::{Address, B256, U256, keccak256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{DeployConfig, PlasmaFramework, deploy};
use plasma_operator::{
    Config, DaConfig, Node, TowerConfig,
    ingest::{BATCH_MEDIA_TYPE, IngestFigures, encode_batch},
};
use plasma_spec::{
    Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos, recover_signer,
};
use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

#[path = "common/cpu.rs"]
mod cpu;
use cpu::process_cpu;

#[path = "../tests/common/towers.rs"]
mod towers;

const OWNERS: u64 = 200;
/// Towers and quorum of the distribution variant.
const TOWERS: u16 = 5;
const K: u16 = 3;

fn owner(i: u64) -> Signer {
    Signer::from_bytes(&keccak256(format!("load owner {i}"))).unwrap()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn recovery_rate(threads: usize, domain: &SigningDomain) -> f64 {
    let tx = Transaction::payment(
        &[UtxoPos::new(1, 0, 0).unwrap()],
        vec![Output::new(Address::repeat_byte(1), Address::ZERO, U256::from(1))],
        B256::ZERO,
    );
    let signer = owner(0);
    let digest = domain.tx_digest(&tx);
    let sig = signer.sign_tx(domain, &tx);
    let per_thread = 20_000;
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    std::hint::black_box(recover_signer(digest, &sig, 0).unwrap());
                }
            });
        }
    });
    (threads * per_thread) as f64 / start.elapsed().as_secs_f64()
}

/// CPU time of the calling thread so far, from the kernel's scheduler statistics.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// How the load is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `POST /v1/transactions/batch`, binary body, `batch` transactions a request.
    Binary { batch: usize, connections: usize },
    /// `POST /v1/transactions`, one JSON transaction a request.
    Single { connections: usize },
    /// Batches as `Binary`, and beside them one JSON transaction a request over `singles`
    /// connections for as long as the batches last: the one-tx route's latency under bulk load.
    Mixed { batch: usize, connections: usize, singles: usize },
}

impl Mode {
    const fn connections(self) -> usize {
        match self {
            Self::Binary { connections, .. }
            | Self::Single { connections }
            | Self::Mixed { connections, .. } => connections,
        }
    }

    fn label(self) -> String {
        match self {
            Self::Binary { batch, connections } => format!(
                "binary batches of {batch} ({connections} connections, POST /v1/transactions/batch)"
            ),
            Self::Single { connections } => {
                format!("1 JSON tx a request ({connections} connections, POST /v1/transactions)")
            }
            Self::Mixed { batch, connections, singles } => format!(
                "binary batches of {batch} ({connections} connections) with 1 JSON tx a request beside them ({singles} connections)"
            ),
        }
    }

    /// The request bodies of `txs` and how many transactions each holds.
    fn bodies(self, txs: &[Vec<u8>]) -> Vec<(Vec<u8>, usize)> {
        match self {
            Self::Binary { batch, .. } | Self::Mixed { batch, .. } => {
                txs.chunks(batch).map(|c| (encode_batch(c), c.len())).collect()
            }
            Self::Single { .. } => txs
                .iter()
                .map(|t| (format!("{{\"tx\":\"0x{}\"}}", hex::encode(t)).into_bytes(), 1))
                .collect(),
        }
    }

    const fn path(self) -> &'static str {
        match self {
            Self::Binary { .. } | Self::Mixed { .. } => "/v1/transactions/batch",
            Self::Single { .. } => "/v1/transactions",
        }
    }

    const fn content_type(self) -> &'static str {
        match self {
            Self::Binary { .. } | Self::Mixed { .. } => BATCH_MEDIA_TYPE,
            Self::Single { .. } => "application/json",
        }
    }
}

/// What the generator measured.
struct Generated {
    /// Wall time from the first request to the last answer.
    wall: Duration,
    /// The generator thread's CPU time over that.
    cpu: Duration,
    /// Per request.
    latencies: Vec<Duration>,
    /// Transactions answered accepted.
    accepted: usize,
}

/// Request bodies, with how many transactions each holds.
type BodyList = Vec<(Vec<u8>, usize)>;
/// Bodies waiting to be sent.
type Bodies = Arc<parking_lot::Mutex<BodyList>>;

/// One connection's loop: sends the bodies it takes from `queue` until it is empty (or `stop`
/// is set), each answer checked to accept every transaction; the latencies and how many were
/// accepted.
async fn send_all(
    http: reqwest::Client,
    url: String,
    content_type: &'static str,
    queue: Bodies,
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> (Vec<Duration>, usize) {
    let (mut latencies, mut accepted) = (Vec::new(), 0);
    while !stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
        let Some((body, n)) = queue.lock().pop() else { break };
        let t = Instant::now();
        let r = http
            .post(url.as_str())
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let answer = r.bytes().await.unwrap();
        latencies.push(t.elapsed());
        // Every transaction accepted: one txHash each, no error.
        let text = std::str::from_utf8(&answer).unwrap();
        assert!(!text.contains("\"error\""), "{text}");
        let hashes = text.matches("\"txHash\"").count();
        assert_eq!(hashes, n, "{text}");
        accepted += hashes;
    }
    (latencies, accepted)
}

/// Sends `bodies` to `base` from a thread of its own (a current-thread runtime: the generator
/// takes one core at most) over `connections` connections, each request's answer checked. With
/// `beside` (`Mode::Mixed`: connections and one-transaction JSON bodies), single submissions go
/// out beside the bodies over their own connections until the last body is answered; their
/// figures come second (its CPU is counted in the first's: one thread sends both).
fn generate(
    base: String,
    mode: Mode,
    bodies: BodyList,
    beside: Option<(usize, BodyList)>,
) -> (Generated, Option<Generated>) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let extra = beside.as_ref().map_or(0, |(c, _)| *c);
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(mode.connections() + extra)
                .build()
                .unwrap();
            let url = format!("{base}{}", mode.path());
            let queue: Bodies = Arc::new(parking_lot::Mutex::new(bodies));
            let (cpu0, start) = (thread_cpu(), Instant::now());
            let tasks: Vec<_> = (0..mode.connections())
                .map(|_| {
                    let job = send_all(
                        http.clone(),
                        url.clone(),
                        mode.content_type(),
                        queue.clone(),
                        None,
                    );
                    tokio::spawn(job)
                })
                .collect();
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let side: Vec<_> = beside
                .into_iter()
                .flat_map(|(connections, bodies)| {
                    let queue: Bodies = Arc::new(parking_lot::Mutex::new(bodies));
                    let (http, url, stop) =
                        (http.clone(), format!("{base}/v1/transactions"), stop.clone());
                    (0..connections).map(move |_| {
                        let job = send_all(
                            http.clone(),
                            url.clone(),
                            "application/json",
                            queue.clone(),
                            Some(stop.clone()),
                        );
                        tokio::spawn(job)
                    })
                })
                .collect();
            let (mut latencies, mut accepted) = (Vec::new(), 0);
            for t in tasks {
                let (l, a) = t.await.unwrap();
                latencies.extend(l);
                accepted += a;
            }
            let wall = start.elapsed();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let beside = if side.is_empty() {
                None
            } else {
                let (mut latencies, mut accepted) = (Vec::new(), 0);
                for t in side {
                    let (l, a) = t.await.unwrap();
                    latencies.extend(l);
                    accepted += a;
                }
                latencies.sort();
                Some(Generated { wall, cpu: Duration::ZERO, latencies, accepted })
            };
            latencies.sort();
            (Generated { wall, cpu: thread_cpu() - cpu0, latencies, accepted }, beside)
        })
    })
    .join()
    .unwrap()
}

/// The generator alone: the same requests against a sink that reads each body and answers the
/// reply the operator would (pre-built), so the generator's own cost shows without the
/// operator's.
async fn generator_alone(mode: Mode, txs: &[Vec<u8>]) -> Generated {
    use warp::Filter;
    let hash = format!("{{\"txHash\":\"{}\"}}", B256::repeat_byte(0xab));
    let reply = match mode {
        Mode::Binary { batch, .. } | Mode::Mixed { batch, .. } => {
            format!("{{\"results\":[{}]}}", vec![hash.as_str(); batch].join(","))
        }
        Mode::Single { .. } => hash,
    };
    let per_request = match mode {
        Mode::Binary { batch, .. } | Mode::Mixed { batch, .. } => batch,
        Mode::Single { .. } => 1,
    };
    let reply = Arc::new(reply);
    let sink = warp::post().and(warp::body::bytes()).map(move |_body: bytes::Bytes| {
        warp::reply::with_header(reply.to_string(), "content-type", "application/json")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(warp::serve(sink).incoming(listener).run());
    // Whole requests only: the canned reply holds `per_request` results.
    let whole = txs.len() / per_request * per_request;
    let bodies = mode.bodies(&txs[..whole]);
    let base = format!("http://{addr}");
    let generated =
        tokio::task::spawn_blocking(move || generate(base, mode, bodies, None)).await.unwrap().0;
    server.abort();
    generated
}

/// What one run measured.
struct Figures {
    mode: Mode,
    n: usize,
    accepted_per_s: f64,
    p50: Duration,
    p99: Duration,
    /// `Mode::Mixed`: the single submissions answered beside the batches, their p50 and p99.
    beside: Option<(usize, Duration, Duration)>,
    generator_cpu: Duration,
    block_txs: usize,
    wire_len: u64,
    build: Duration,
    e2e_per_s: f64,
    /// From the block stored to its root recorded as committed on L1.
    stored_to_committed: Duration,
    /// From the block stored to its root seen on L1 (`nextChildBlock` past it: the submission
    /// mined), polled every millisecond.
    stored_to_mined: Duration,
    /// First submit to the root seen on L1.
    e2e_mined_per_s: f64,
    /// The operator's ingest stages over the load.
    stages: IngestFigures,
    /// This process's CPU over the load (the operator, the generator, and the bench's idle
    /// runtime), and the load's wall time.
    load_cpu: Duration,
    load_wall: Duration,
    /// With distribution: receipts stored for the measured block, and blocks committed without a
    /// quorum (0 expected: the wait is far longer than the run).
    da: Option<(usize, u64)>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let levels: u32 = env_or("PLASMA_LOAD_LEVELS", 6);
    let variants: &[bool] = match std::env::var("PLASMA_LOAD_DA").as_deref() {
        Ok("off") => &[false],
        Ok("only") => &[true],
        _ => &[false, true],
    };
    let binary = Mode::Binary {
        batch: env_or("PLASMA_LOAD_BATCH", 100usize).max(1),
        connections: env_or("PLASMA_LOAD_CONNECTIONS", 2usize).max(1),
    };
    let single = Mode::Single { connections: 64 };
    let mixed = Mode::Mixed {
        batch: env_or("PLASMA_LOAD_MIXED_BATCH", 1_000usize).max(1),
        connections: env_or("PLASMA_LOAD_CONNECTIONS", 2usize).max(1),
        singles: env_or("PLASMA_LOAD_MIXED_SINGLES", 8usize).max(1),
    };
    let modes: Vec<Mode> = match std::env::var("PLASMA_LOAD_MODE").as_deref() {
        Ok("single") => vec![single],
        Ok("mixed") => vec![mixed],
        Ok("all") => vec![binary, single, mixed],
        _ => vec![binary],
    };
    let bin = std::env::var_os("ANVIL_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/anvil")
    });
    let runs: usize = env_or("PLASMA_LOAD_RUNS", 1usize).max(1);
    let anvil = Anvil::at(bin).spawn();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let domain = SigningDomain::new(anvil.chain_id(), Address::ZERO);
    let ceiling_before = (recovery_rate(1, &domain), recovery_rate(cores, &domain));

    // The generator alone, on the transactions a run sends (signed for another domain: the sink
    // does not look at them).
    let sample: Vec<Vec<u8>> = (0..5u64.pow(levels))
        .map(|i| {
            let signer = owner(i % OWNERS);
            let tx = Transaction::payment(
                &[UtxoPos::new(1000 + i / 60_000, (i % 60_000) as u16, 0).unwrap()],
                vec![Output::new(signer.address(), Address::ZERO, U256::from(999_999))],
                B256::ZERO,
            );
            SignedTransaction::new(tx.clone(), vec![signer.sign_tx(&domain, &tx)]).encode()
        })
        .collect();
    let mut alone = Vec::new();
    // A mixed load's two kinds of request are each measured alone by the other two modes.
    for &mode in modes.iter().filter(|m| !matches!(m, Mode::Mixed { .. })) {
        alone.push((mode, generator_alone(mode, &sample).await));
    }
    drop(sample);

    let mut all_runs: Vec<(bool, Figures)> = Vec::new();
    for _ in 0..runs {
        for &mode in &modes {
            for &distribute in variants {
                all_runs.push((distribute, run(&anvil, levels, distribute, mode).await));
            }
        }
    }
    let ceiling_after = (recovery_rate(1, &domain), recovery_rate(cores, &domain));
    // The ratio is taken to the higher of the two measures (the stricter ratio).
    let all = ceiling_before.1.max(ceiling_after.1);

    println!("| Measure | Result |");
    println!("|---|---:|");
    println!(
        "| signer recovery ceiling, 1 thread (before / after the loads) | {:.0} / {:.0} /s |",
        ceiling_before.0, ceiling_after.0
    );
    println!(
        "| signer recovery ceiling, {cores} threads (before / after the loads) | {:.0} / {:.0} /s |",
        ceiling_before.1, ceiling_after.1
    );
    for (mode, g) in &alone {
        let n = g.accepted as f64;
        println!("| **load generator alone**, {} | |", mode.label());
        println!(
            "| generator alone: rate against a sink, its CPU per tx | {:.0} tx/s, {:.2} µs |",
            n / g.wall.as_secs_f64(),
            g.cpu.as_secs_f64() * 1e6 / n
        );
    }
    for &mode in &modes {
        let median = |distribute: bool, f: &dyn Fn(&Figures) -> f64| -> Option<f64> {
            let mut v: Vec<f64> = all_runs
                .iter()
                .filter(|(d, x)| *d == distribute && x.mode == mode)
                .map(|(_, x)| f(x))
                .collect();
            v.sort_by(f64::total_cmp);
            (!v.is_empty()).then(|| v[v.len() / 2])
        };
        for &distribute in variants {
            let Some((_, f)) = all_runs.iter().find(|(d, x)| *d == distribute && x.mode == mode)
            else {
                continue;
            };
            let label = if distribute {
                format!("with distribution ({TOWERS} stub towers, k = {K})")
            } else {
                "without distribution".to_owned()
            };
            println!("| **{}, {label}** | |", mode.label());
            println!("| transactions | {} (one block) |", f.n);
            println!("| accepted over HTTP | {:.0} tx/s |", f.accepted_per_s);
            println!(
                "| submit latency (per request) p50 / p99 | {:.2} ms / {:.2} ms |",
                ms(f.p50),
                ms(f.p99)
            );
            if let Some((answered, p50, p99)) = f.beside {
                println!(
                    "| **one-tx requests beside the batches**: answered, latency p50 / p99 | {answered}, {:.2} ms / **{:.2} ms** |",
                    ms(p50),
                    ms(p99)
                );
            }
            let gen_share = f.generator_cpu.as_secs_f64() * f.accepted_per_s / f.n as f64;
            println!(
                "| load generator during the load: CPU per tx, share of one core | {:.2} µs, {:.0} % |",
                f.generator_cpu.as_secs_f64() * 1e6 / f.n as f64,
                100.0 * gen_share
            );
            let busy = f.load_cpu.as_secs_f64() / f.load_wall.as_secs_f64();
            println!(
                "| cores busy during the load (this process: operator and generator), of {cores} | {busy:.2}: operator {:.2}, generator {:.2} |",
                busy - gen_share,
                gen_share
            );
            println!(
                "| operator CPU per accepted tx (all threads, the generator's taken out) | {:.1} µs |",
                (f.load_cpu.as_secs_f64() - f.generator_cpu.as_secs_f64()) * 1e6 / f.n as f64
            );
            for (name, s) in f.stages.stages() {
                if s.txs > 0 {
                    println!(
                        "| ingest stage `{name}`: time per tx (summed over concurrent groups), groups | {:.2} µs, {} |",
                        s.per_tx().as_secs_f64() * 1e6,
                        s.calls
                    );
                }
            }
            println!(
                "| block build + persist ({} txs, {} bytes in the wire form) | {:.0} ms |",
                f.block_txs,
                f.wire_len,
                ms(f.build)
            );
            let what = match f.da {
                Some((receipts, missed)) => {
                    format!(
                        "encode, push, {receipts} receipts stored, quorum missed {missed}, submit"
                    )
                }
                None => "submit".to_owned(),
            };
            println!(
                "| block stored → root on L1 (submission mined) / recorded by the operator ({what}) | {:.0} / {:.0} ms |",
                ms(f.stored_to_mined),
                ms(f.stored_to_committed)
            );
            println!(
                "| **end to end, first submit to root on L1** (recorded by the operator) | **{:.0} tx/s** ({:.0}) |",
                f.e2e_mined_per_s, f.e2e_per_s
            );
            println!(
                "| end to end / {cores}-thread recovery ceiling (recorded by the operator) | {:.2} ({:.2}) |",
                f.e2e_mined_per_s / all,
                f.e2e_per_s / all
            );
            // What the generator's CPU left of the cores, at the rate it ran.
            let left = all * (1.0 - gen_share / cores as f64);
            println!(
                "| end to end / the ceiling left beside the generator ({left:.0} /s) | {:.2} |",
                f.e2e_mined_per_s / left
            );
        }
        if let (Some(off), Some(on)) =
            (median(false, &|f| f.e2e_per_s), median(true, &|f| f.e2e_per_s))
        {
            println!("| end to end kept with distribution | {:.1} % |", 100.0 * on / off);
            if runs > 1 {
                let list = |d: bool| -> String {
                    let mut v: Vec<f64> = all_runs
                        .iter()
                        .filter(|(x, f)| *x == d && f.mode == mode)
                        .map(|(_, f)| f.e2e_per_s)
                        .collect();
                    v.sort_by(f64::total_cmp);
                    v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ")
                };
                let stored = |d| median(d, &|f| ms(f.stored_to_committed)).unwrap_or(0.0);
                println!("| **medians of {runs} alternating runs** | |");
                println!("| end to end without / with distribution | {off:.0} / {on:.0} tx/s |");
                println!(
                    "| block stored → root committed, without / with | {:.0} / {:.0} ms |",
                    stored(false),
                    stored(true)
                );
                println!("| every run, without (tx/s) | {} |", list(false));
                println!("| every run, with (tx/s) | {} |", list(true));
            }
        }
    }
}

/// One run on its own deployment: fund, pre-sign, load, cut the block, wait for its root on L1.
async fn run(
    anvil: &alloy::node_bindings::AnvilInstance,
    levels: u32,
    distribute: bool,
    mode: Mode,
) -> Figures {
    let key0: PrivateKeySigner = anvil.keys()[0].clone().into();
    let op = key0.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key0))
        .connect_http(anvil.endpoint_url())
        .erased();
    let d = deploy(provider.clone(), &DeployConfig::devnet(op, 60)).await.unwrap();
    let domain = SigningDomain::new(anvil.chain_id(), d.framework);

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::devnet();
    config.data_dir = dir.path().into();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.l1.rpc_url = anvil.endpoint();
    config.l1.framework = d.framework;
    config.l1.private_key = Some(format!("0x{}", hex::encode(anvil.keys()[0].to_bytes())));
    config.l1.poll_interval_ms = 20;
    config.block.interval_ms = 3_600_000; // blocks are cut by this bench
    config.block.max_txs = plasma_spec::MAX_TXS_PER_BLOCK - 1;
    config.api.max_mempool = 1_000_000;
    if let Mode::Binary { batch, .. } | Mode::Mixed { batch, .. } = mode {
        config.api.max_batch = config.api.max_batch.max(batch);
        config.api.max_body_bytes = config.api.max_body_bytes.max(batch as u64 * 1024);
    }
    let operator = Signer::from_bytes(&B256::from_slice(&anvil.keys()[0].to_bytes())).unwrap();
    let mut stubs = Vec::new();
    if distribute {
        for i in 0..TOWERS {
            let key = towers::tower_key(i.into());
            let stub = towers::StubConfig {
                index: i,
                receipt_key: key.clone(),
                key,
                domain: domain.clone(),
                operator: operator.address(),
            };
            stubs.push(towers::StubTower::start("127.0.0.1:0".parse().unwrap(), stub).await);
        }
        config.da = Some(DaConfig {
            k: K,
            // Far longer than the run: only the quorum commits a block here.
            wait_ms: Some(600_000),
            retry_ms: 500,
            towers: stubs
                .iter()
                .map(|s| TowerConfig { address: s.address, url: s.url.clone() })
                .collect(),
        });
    }
    let node = Node::start(config).await.unwrap();
    let chain = node.chain.clone();

    // Fund: one deposit to owner 0, then fan out 1 -> 5 per level (setup, not measured).
    // The depositor must own its deposit: anvil's first account is the faucet.
    let faucet = Signer::from_bytes(&B256::from_slice(&anvil.keys()[0].to_bytes())).unwrap();
    let framework = PlasmaFramework::new(d.framework, provider.clone());
    let total = U256::from(5u64.pow(levels)) * U256::from(1_000_000u64);
    let dep = Transaction::deposit(faucet.address(), Address::ZERO, total).encode();
    framework
        .depositEth(dep.into())
        .value(total)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    while chain.status().utxo_count == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut utxos: Vec<(UtxoPos, Signer, U256)> =
        vec![(UtxoPos::new(1, 0, 0).unwrap(), faucet, total)];
    let mut next_owner = 1u64;
    for _ in 0..levels {
        let mut raw = Vec::new();
        let mut planned = Vec::new();
        for (pos, signer, amount) in &utxos {
            let part = *amount / U256::from(5);
            let outs: Vec<(Signer, U256)> = (0..5)
                .map(|_| {
                    let o = owner(next_owner % OWNERS);
                    next_owner += 1;
                    (o, part)
                })
                .collect();
            let tx = Transaction::payment(
                &[*pos],
                outs.iter().map(|(o, a)| Output::new(o.address(), Address::ZERO, *a)).collect(),
                B256::ZERO,
            );
            raw.push(
                SignedTransaction::new(tx.clone(), vec![signer.sign_tx(&domain, &tx)]).encode(),
            );
            planned.push(outs);
        }
        for r in chain.submit(&raw) {
            r.unwrap();
        }
        let block = chain.produce_block(plasma_spec::MAX_TXS_PER_BLOCK - 1).unwrap().unwrap();
        utxos = planned
            .into_iter()
            .enumerate()
            .flat_map(|(i, outs)| {
                outs.into_iter().enumerate().map(move |(j, (o, a))| {
                    (UtxoPos::new(block.blknum, i as u16, j as u8).unwrap(), o, a)
                })
            })
            .collect();
    }
    let n = utxos.len();

    // Pre-sign one payment per UTXO (a fee of 1 wei each).
    let presigned: Vec<Vec<u8>> = utxos
        .iter()
        .map(|(pos, signer, amount)| {
            let tx = Transaction::payment(
                &[*pos],
                vec![Output::new(signer.address(), Address::ZERO, *amount - U256::from(1))],
                B256::ZERO,
            );
            SignedTransaction::new(tx.clone(), vec![signer.sign_tx(&domain, &tx)]).encode()
        })
        .collect();
    // A mixed load keeps a fifth of the payments for its single submissions: more than they
    // can send while the batches last.
    let (bodies, beside) = match mode {
        Mode::Mixed { singles, .. } => {
            let (bulk, one_by_one) = presigned.split_at(n - n / 5);
            let bodies = Mode::Single { connections: singles }.bodies(one_by_one);
            (mode.bodies(bulk), Some((singles, bodies)))
        }
        Mode::Binary { .. } | Mode::Single { .. } => (mode.bodies(&presigned), None),
    };
    let bulk: usize = bodies.iter().map(|(_, n)| n).sum();
    drop(presigned);

    // Load, from the generator's own thread.
    let stages_before = chain.ingest_stats().figures();
    let cpu_before = process_cpu();
    let start = Instant::now();
    let base = format!("http://{}", node.addr);
    let (generated, beside) =
        tokio::task::spawn_blocking(move || generate(base, mode, bodies, beside)).await.unwrap();
    assert_eq!(generated.accepted, bulk);
    let n = bulk + beside.as_ref().map_or(0, |g| g.accepted);
    let submit_time = start.elapsed();
    let load_cpu = process_cpu().saturating_sub(cpu_before);
    let stages = chain.ingest_stats().figures().since(&stages_before);
    let build = Instant::now();
    let block = chain.produce_block(plasma_spec::MAX_TXS_PER_BLOCK - 1).unwrap().unwrap();
    let build_time = build.elapsed();
    // The root on L1: the framework's next block number passes this one once its submission is
    // mined — seen here within about a millisecond, before the operator records it (which
    // waits for its own reads of L1 and for the block's effects to be written, see `Applier`).
    let seen = {
        let framework = framework.clone();
        let blknum = block.blknum;
        tokio::spawn(async move {
            loop {
                if framework.nextChildBlock().call().await.is_ok_and(|next| next > blknum) {
                    return Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    while chain.status().uncommitted_blocks.contains(&block.blknum) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total_time = start.elapsed();
    let mined_at = seen.await.unwrap();
    let after_build = build.elapsed() - build_time;
    let http = reqwest::Client::new();
    let da = if distribute {
        let status: serde_json::Value = http
            .get(format!("http://{}/v1/status", node.addr))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let availability: serde_json::Value = http
            .get(format!("http://{}/v1/blocks/{}/availability", node.addr, block.blknum))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let receipts = availability["receipts"].as_array().map_or(0, Vec::len);
        let missed = status["da"]["quorumMissed"].as_u64().unwrap_or(u64::MAX);
        assert!(receipts >= usize::from(K), "committed with {receipts} receipts");
        Some((receipts, missed))
    } else {
        None
    };
    let wire_len = chain.block_info(block.blknum).unwrap().map_or(0, |i| i.wire_len);
    let _ = provider.get_block_number().await;
    node.stop().await;
    for s in stubs {
        s.stop().await;
    }
    Figures {
        mode,
        n,
        accepted_per_s: n as f64 / submit_time.as_secs_f64(),
        p50: percentile(&generated.latencies, 0.5),
        p99: percentile(&generated.latencies, 0.99),
        beside: beside
            .map(|g| (g.accepted, percentile(&g.latencies, 0.5), percentile(&g.latencies, 0.99))),
        generator_cpu: generated.cpu,
        block_txs: block.txs.len(),
        wire_len,
        build: build_time,
        e2e_per_s: n as f64 / total_time.as_secs_f64(),
        stored_to_committed: after_build,
        stored_to_mined: mined_at.duration_since(build) - build_time,
        e2e_mined_per_s: n as f64 / mined_at.duration_since(start).as_secs_f64(),
        stages,
        load_cpu,
        load_wall: submit_time,
        da,
    }
}
