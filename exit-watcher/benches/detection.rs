//! Detection latency (issue 19): L1 blocks from an invalid standard exit's start to the watcher's
//! challenge, against a real anvil mining a block every second (`--block-time 1`), the real
//! contracts, the real operator and the real watcher (in-process, its production poll and
//! confirmation settings unless overridden).
//!
//! alice deposits, pays the deposits to bob (committed, up to MAX_INPUTS per payment), then starts
//! the exit of deposits she spent: one at a time (`PLASMA_DETECT_ROUNDS`, default 3), then bursts
//! each started in one L1 transaction (`PLASMA_DETECT_BURST`, sizes separated by commas, default
//! `3,20`). For each: the exit's L1 block, the challenge's L1 block, the difference (1 = the next
//! block, the goal: a burst's challenges go out back to back and are confirmed together).
//!
//! Run: `cargo bench -p plasma-watcher --bench detection`
//! (`PLASMA_DETECT_POLL_MS`, default 500 as `plasma-watcher --poll-ms`; `PLASMA_DETECT_CONFIRMATIONS`, default 1).

#![allow(clippy::unwrap_used, missing_docs)]
// The operator's warp routes, started in-process, nest deeper than the default 128.
#![recursion_limit = "256"]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, U256},
    providers::{Provider, ProviderBuilder},
};
use plasma_contracts::devnet::{LocalChain, anvil};
use plasma_testkit::{Env, PERIOD, key, operator, wallet};
use plasma_watcher::{Event, Settings, Watcher};
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn block_of(env: &Env, tx: B256) -> u64 {
    loop {
        if let Some(r) = env.provider.get_transaction_receipt(tx).await.unwrap() {
            return r.block_number.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = env_u64("PLASMA_DETECT_ROUNDS", 3) as usize;
    let bursts: Vec<usize> = std::env::var("PLASMA_DETECT_BURST")
        .unwrap_or_else(|_| "3,20".to_owned())
        .split(',')
        .filter_map(|b| b.trim().parse().ok())
        .filter(|&b| b > 0)
        .collect();
    let burst: usize = bursts.iter().sum();
    let poll = Duration::from_millis(env_u64("PLASMA_DETECT_POLL_MS", 500));
    let confirmations = env_u64("PLASMA_DETECT_CONFIRMATIONS", 1);
    let LocalChain { anvil, provider, deployment } =
        LocalChain::start_with(anvil().block_time(1), PERIOD).await.unwrap();
    let env = Env { anvil, provider, deployment, dir: tempfile::tempdir().unwrap() };
    let node = operator(&env).await;
    let signer = key(&env, 5);
    let me = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let settings = Settings {
        framework: env.deployment.framework,
        operator_url: format!("http://{}", node.addr),
        confirmations,
        poll,
        availability_timeout: Duration::from_secs(10),
        process_exits: false,
        deadline_margin: Duration::from_secs(30),
        stuck_after: Duration::from_secs(5),
        l1_block_time: Duration::from_secs(1),
        download: plasma_watcher::DownloadSettings::default(),
    };
    let w = Watcher::new(settings, me, provider, &env.dir.path().join("watcher")).await.unwrap();
    let w = plasma_watcher::start(w, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let amount = U256::from(10).pow(U256::from(17));
    let mut spent = Vec::new();
    for _ in 0..rounds + burst {
        spent.push(alice.deposit_eth(amount).await.unwrap());
    }
    for &dep in &spent {
        alice.wait_for_output(dep, Duration::from_secs(60)).await.unwrap();
    }
    // Every deposit paid to bob, as many per payment as one can spend (the amounts are equal and
    // there is no fee, so each payment spends whole deposits and leaves no change).
    for chunk in spent.chunks(plasma_spec::MAX_INPUTS) {
        let total = amount * U256::from(chunk.len());
        let hash = alice.send(bob.address(), Address::ZERO, total, U256::ZERO).await.unwrap();
        alice.wait_for_commit(hash, Duration::from_secs(60)).await.unwrap();
    }
    // Let the watcher validate every block before the exits start.
    let head = env.provider.get_block_number().await.unwrap();
    while w.watcher.status().l1_cursor < head || w.watcher.status().pending_blocks > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let challenge_of = |pos: u128| {
        w.watcher.events().into_iter().find_map(|e| match e {
            Event::Challenged { utxo_pos, l1_tx }
                if utxo_pos == plasma_spec::UtxoPos::from_u128(pos).unwrap().to_string() =>
            {
                Some(l1_tx)
            }
            _ => None,
        })
    };
    println!("poll {} ms, {confirmations} confirmation(s), anvil --block-time 1", poll.as_millis());
    println!();
    println!(
        "| exit | exit's L1 block | challenge's L1 block | L1 blocks later | seen → challenge mined |"
    );
    println!("|---|---:|---:|---:|---:|");
    let mut latencies = Vec::new();
    let mut groups: Vec<&[u128]> = spent[..rounds].chunks(1).collect();
    let mut rest = &spent[rounds..];
    for &b in &bursts {
        let (group, tail) = rest.split_at(b);
        groups.push(group);
        rest = tail;
    }
    let mut summaries = Vec::new();
    for group in groups {
        let mut group_latencies = Vec::new();
        // The wallet splits a long list into L1 transactions (a probe of 8, then the rest), one
        // after another: each exit is measured from the block of its own transaction.
        let report = alice.start_exits_with(group, true, &mut |_| {}).await.unwrap();
        assert!(report.error.is_none(), "{:?}", report.error);
        let seen = Instant::now();
        let mut chunk_blocks = Vec::new();
        let mut exit_block_of = std::collections::HashMap::new();
        for chunk in &report.chunks {
            let block = block_of(&env, chunk.l1_tx).await;
            chunk_blocks.push(format!("{} in block {block}", chunk.started.len()));
            for &pos in &chunk.started {
                exit_block_of.insert(pos, block);
            }
        }
        for &pos in group {
            let exit_block = exit_block_of[&pos];
            let l1_tx = loop {
                if let Some(t) = challenge_of(pos) {
                    break t;
                }
                assert!(seen.elapsed() < Duration::from_secs(60), "no challenge of {pos}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let challenge_block = block_of(&env, l1_tx).await;
            let blocks = challenge_block - exit_block;
            latencies.push(blocks);
            group_latencies.push(blocks);
            println!(
                "| {pos}{} | {exit_block} | {challenge_block} | {blocks} | {} ms |",
                if group.len() > 1 { " (burst)" } else { "" },
                seen.elapsed().as_millis()
            );
        }
        if group.len() > 1 {
            summaries.push(format!(
                "burst of {} started in {} L1 transaction(s) ({}): challenged {} L1 blocks later \
                 (min {}, max {})",
                group.len(),
                report.chunks.len(),
                chunk_blocks.join(", "),
                if group_latencies.iter().all(|&l| l == group_latencies[0]) {
                    group_latencies[0].to_string()
                } else {
                    format!("{group_latencies:?}")
                },
                group_latencies.iter().min().unwrap(),
                group_latencies.iter().max().unwrap()
            ));
        }
    }
    println!();
    for s in summaries {
        println!("{s}");
    }
    latencies.sort_unstable();
    println!();
    println!(
        "L1 blocks from the exit to its challenge: median {}, max {} ({} exits)",
        latencies[latencies.len() / 2],
        latencies.last().unwrap(),
        latencies.len()
    );
    w.stop().await;
    node.stop().await;
}
