//! Load generator: pre-signs payments for many owners, submits them to a real operator over HTTP
//! with many connections, waits until their block is committed on L1 (anvil), and prints in one
//! run: the signer-recovery ceiling of this machine, end-to-end accepted tx/s, submit latency
//! p50/p99, and the build + persist time of the block.
//!
//! The same load runs twice on one anvil, each on its own deployment and data directory: without
//! availability distribution, then with 5 local stub towers and `k = 3` (issue 17: every block is
//! encoded, pushed to the towers, and committed only once 3 receipts are in), so the two figures
//! come from the same machine state.
//!
//! Run: `cargo bench -p plasma-operator --bench load` (`PLASMA_LOAD_LEVELS=5` for a short run;
//! `PLASMA_LOAD_DA=off` or `only` for one of the two; `PLASMA_LOAD_RUNS=5` alternates the two
//! five times and reports the medians, the way to compare them on a shared, noisy machine).

#![allow(clippy::unwrap_used, missing_docs, clippy::field_reassign_with_default)]

use alloy::{
    network::EthereumWallet,
    node_bindings::Anvil,
    primitives::{Address, B256, U256, keccak256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{DeployConfig, PlasmaFramework, deploy};
use plasma_operator::{Config, DaConfig, Node, TowerConfig};
use plasma_spec::{
    Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos, recover_signer,
};
use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

#[path = "../tests/common/towers.rs"]
mod towers;

const OWNERS: u64 = 200;
/// Towers and quorum of the distribution variant.
const TOWERS: u16 = 5;
const K: u16 = 3;

fn owner(i: u64) -> Signer {
    Signer::from_bytes(&keccak256(format!("load owner {i}"))).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
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

/// What one run measured.
struct Figures {
    n: usize,
    connections: usize,
    accepted_per_s: f64,
    p50: Duration,
    p99: Duration,
    block_txs: usize,
    wire_len: u64,
    build: Duration,
    e2e_per_s: f64,
    /// From the block stored to its root recorded as committed on L1.
    stored_to_committed: Duration,
    /// With distribution: receipts stored for the measured block, and blocks committed without a
    /// quorum (0 expected: the wait is far longer than the run).
    da: Option<(usize, u64)>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let levels: u32 =
        std::env::var("PLASMA_LOAD_LEVELS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let variants: &[bool] = match std::env::var("PLASMA_LOAD_DA").as_deref() {
        Ok("off") => &[false],
        Ok("only") => &[true],
        _ => &[false, true],
    };
    let bin = std::env::var_os("ANVIL_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/anvil")
    });
    let runs: usize =
        std::env::var("PLASMA_LOAD_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let anvil = Anvil::at(bin).spawn();
    let mut all_runs: Vec<(bool, Figures)> = Vec::new();
    for _ in 0..runs {
        for &distribute in variants {
            all_runs.push((distribute, run(&anvil, levels, distribute).await));
        }
    }
    let median = |distribute: bool, f: &dyn Fn(&Figures) -> f64| -> Option<f64> {
        let mut v: Vec<f64> =
            all_runs.iter().filter(|(d, _)| *d == distribute).map(|(_, x)| f(x)).collect();
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| v[v.len() / 2])
    };
    let (e2e_off, e2e_on) = (median(false, &|f| f.e2e_per_s), median(true, &|f| f.e2e_per_s));
    let stored_off = median(false, &|f| f.stored_to_committed.as_secs_f64() * 1e3);
    let stored_on = median(true, &|f| f.stored_to_committed.as_secs_f64() * 1e3);
    // The detailed table: the first run of each variant.
    let results: Vec<(bool, Figures)> = variants
        .iter()
        .filter_map(|d| {
            let i = all_runs.iter().position(|(x, _)| x == d)?;
            Some(all_runs.remove(i))
        })
        .collect();

    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let domain = SigningDomain::new(anvil.chain_id(), Address::ZERO);
    let one = recovery_rate(1, &domain);
    let all = recovery_rate(cores, &domain);
    println!("| Measure | Result |");
    println!("|---|---:|");
    println!("| signer recovery ceiling, 1 thread | {one:.0} /s |");
    println!("| signer recovery ceiling, {cores} threads | {all:.0} /s |");
    for (distribute, f) in &results {
        let label = if *distribute {
            format!("with distribution ({TOWERS} stub towers, k = {K})")
        } else {
            "without distribution".to_owned()
        };
        println!("| **{label}** | |");
        println!("| transactions | {} (one block) |", f.n);
        println!(
            "| accepted over HTTP ({} connections, 1 tx/request) | {:.0} tx/s |",
            f.connections, f.accepted_per_s
        );
        println!(
            "| submit latency p50 / p99 | {:.2} ms / {:.2} ms |",
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3
        );
        println!(
            "| block build + persist ({} txs, {} bytes in the wire form) | {:.0} ms |",
            f.block_txs,
            f.wire_len,
            f.build.as_secs_f64() * 1e3
        );
        let what = match f.da {
            Some((receipts, missed)) => {
                format!("encode, push, {receipts} receipts stored, quorum missed {missed}, submit")
            }
            None => "submit".to_owned(),
        };
        println!(
            "| block stored → root committed ({what}) | {:.0} ms |",
            f.stored_to_committed.as_secs_f64() * 1e3
        );
        println!("| end to end, first submit to root committed on L1 | {:.0} tx/s |", f.e2e_per_s);
        println!("| end to end / {cores}-thread recovery ceiling | {:.2} |", f.e2e_per_s / all);
    }
    if let [(false, off), (true, on)] = results.as_slice() {
        println!(
            "| end to end kept with distribution | {:.1} % |",
            100.0 * on.e2e_per_s / off.e2e_per_s
        );
    }
    if runs > 1
        && let (Some(off), Some(on), Some(s_off), Some(s_on)) =
            (e2e_off, e2e_on, stored_off, stored_on)
    {
        let list = |d: bool| -> String {
            let mut all: Vec<f64> = results
                .iter()
                .chain(all_runs.iter())
                .filter(|(x, _)| *x == d)
                .map(|(_, f)| f.e2e_per_s)
                .collect();
            all.sort_by(f64::total_cmp);
            all.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ")
        };
        println!("| **medians of {runs} alternating runs** | |");
        println!("| end to end without / with distribution | {off:.0} / {on:.0} tx/s |");
        println!("| block stored → root committed, without / with | {s_off:.0} / {s_on:.0} ms |");
        println!("| end to end kept with distribution (medians) | {:.1} % |", 100.0 * on / off);
        println!("| every run, without (tx/s) | {} |", list(false));
        println!("| every run, with (tx/s) | {} |", list(true));
    }
}

/// One run on its own deployment: fund, pre-sign, load, cut the block, wait for its root on L1.
async fn run(
    anvil: &alloy::node_bindings::AnvilInstance,
    levels: u32,
    distribute: bool,
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
    let presigned: Vec<String> = utxos
        .iter()
        .map(|(pos, signer, amount)| {
            let tx = Transaction::payment(
                &[*pos],
                vec![Output::new(signer.address(), Address::ZERO, *amount - U256::from(1))],
                B256::ZERO,
            );
            format!(
                "0x{}",
                hex::encode(
                    SignedTransaction::new(tx.clone(), vec![signer.sign_tx(&domain, &tx)]).encode()
                )
            )
        })
        .collect();

    // Load: single-transaction requests over many connections.
    let connections = 64;
    let http = reqwest::Client::builder().pool_max_idle_per_host(connections).build().unwrap();
    let url = Arc::new(format!("http://{}/v1/transactions", node.addr));
    let queue = Arc::new(parking_lot::Mutex::new(presigned));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (http, url, queue) = (http.clone(), url.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(tx) = queue.lock().pop() else { break };
                let t = Instant::now();
                let r = http
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .body(format!("{{\"tx\":\"{tx}\"}}"))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.text().await.unwrap());
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let submit_time = start.elapsed();
    let build = Instant::now();
    let block = chain.produce_block(plasma_spec::MAX_TXS_PER_BLOCK - 1).unwrap().unwrap();
    let build_time = build.elapsed();
    while chain.status().uncommitted_blocks.contains(&block.blknum) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total_time = start.elapsed();
    let after_build = build.elapsed() - build_time;
    latencies.sort();
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
        n,
        connections,
        accepted_per_s: n as f64 / submit_time.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        block_txs: block.txs.len(),
        wire_len,
        build: build_time,
        e2e_per_s: n as f64 / total_time.as_secs_f64(),
        stored_to_committed: after_build,
        da,
    }
}
