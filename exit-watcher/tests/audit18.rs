//! Audit of issue #18 (watcher side): the real watcher, in-process as `plasma-watcher` runs it
//! (`plasma_contracts::l1::connect` over several endpoints, the 10 s probe), against a real
//! anvil, the real contracts and the real operator, with its L1 endpoints behind JSON-RPC proxies
//! that behave as real endpoints do (a primary that throttles `eth_getLogs`, a fallback a few
//! blocks behind).
//!
//! Tests that fail today are `#[ignore = "audit18 F<n>: …"]`; run them with
//! `cargo nextest run -p plasma-watcher --test audit18 --run-ignored all`.

#![allow(clippy::unwrap_used)]

use alloy::{
    network::EthereumWallet,
    primitives::{Address, U256},
    providers::Provider,
};
use plasma_contracts::{
    StandardExitGame,
    l1::{self, ClientOptions, Endpoints},
    rpc_proxy::{self, ProxyMode},
};
use plasma_operator::Node;
use plasma_testkit::{Env, env, key, operator, wallet};
use plasma_watcher::{Event, Settings, Watcher};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

/// The watcher as `plasma-watcher --l1.rpc-url primary,fallback` runs it.
async fn watcher_over(env: &Env, node: &Node, endpoints: &str) -> plasma_watcher::Running {
    let key = key(env, 5);
    let me = key.address();
    let endpoints = Endpoints::parse(endpoints).unwrap();
    let (provider, health) =
        l1::connect_with(&endpoints, EthereumWallet::from(key), &ClientOptions::default()).unwrap();
    health.spawn_probe(Duration::from_secs(10));
    let settings = Settings {
        framework: env.deployment.framework,
        operator_url: format!("http://{}", node.addr),
        confirmations: 1,
        poll: Duration::from_millis(50),
        availability_timeout: Duration::from_millis(400),
        process_exits: true,
        deadline_margin: Duration::from_secs(30),
        stuck_after: Duration::from_millis(300),
        l1_block_time: Duration::from_millis(100),
        download: plasma_watcher::DownloadSettings::default(),
    };
    let w = Watcher::new(settings, me, provider, &env.dir.path().join("watcher"))
        .await
        .unwrap()
        .with_l1_health(health);
    plasma_watcher::start(w, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Waits (event-driven: the watcher's own status) until it has read L1 up to `block`.
async fn until_read(w: &plasma_watcher::Running, block: u64) {
    for _ in 0..800 {
        if w.watcher.status().l1_cursor >= block {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the watcher never read L1 up to block {block}: {:?}", w.watcher.status().l1_cursor);
}

/// F1 (watcher, an invalid exit never challenged): alice exits a deposit she spent. While the
/// watcher reads the blocks around her exit, its primary endpoint throttles `eth_getLogs` and
/// the request goes to the fallback, 6 blocks behind (marked lagging by the probe, still the
/// fallback): `[]` for the exit's block. `follow_l1` stored its cursor past the exit and never
/// read that block again: the exit was never challenged, though the primary answers again at
/// once and the challenge period is long. Now no endpoint answers those logs while the primary
/// throttles (the fallback is passed over), the cursor waits before the exit's block, and the
/// exit is challenged once the primary answers. (The test waited for the cursor to reach the
/// exit's block while the primary still throttled, which no correct watcher can do: no endpoint
/// had those logs. It now waits for several refused log reads, then lifts the throttle.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_exit_is_challenged_though_one_log_read_hit_a_lagging_endpoint() {
    invalid_exit_scenario(true).await;
}

/// Control for F1: the same scenario with the primary never throttling: challenged (passes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_exit_is_challenged_over_two_endpoints() {
    invalid_exit_scenario(false).await;
}

async fn invalid_exit_scenario(throttle: bool) {
    let env = env().await;
    let node = operator(&env).await;
    let flaky = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let throttled = ProxyMode::FlakyLogs { on: flaky.clone(), refused: refused.clone() };
    let primary = rpc_proxy::start(env.anvil.endpoint(), throttled).await.unwrap();
    let lagging = ProxyMode::Lagging { lag: 6, logs_answered: Arc::default() };
    let fallback = rpc_proxy::start(env.anvil.endpoint(), lagging).await.unwrap();
    let w = watcher_over(&env, &node, &format!("{primary},{fallback}")).await;
    let alice = wallet(&env, &node, 1).await;
    let bob = wallet(&env, &node, 2).await;
    let eth = U256::from(10).pow(U256::from(18));
    let dep = alice.deposit_eth(eth).await.unwrap();
    alice.wait_for_output(dep, Duration::from_secs(20)).await.unwrap();
    let hash = alice.send(bob.address(), Address::ZERO, eth, U256::ZERO).await.unwrap();
    alice.wait_for_commit(hash, Duration::from_secs(20)).await.unwrap();
    let before = env.provider.get_block_number().await.unwrap();
    until_read(&w, before).await;

    flaky.store(throttle, Ordering::SeqCst);
    alice.start_exits_unchecked(&[dep]).await.unwrap();
    let exit_block = env.provider.get_block_number().await.unwrap();
    if throttle {
        // Several log reads of the exit's block refused by the primary: the watcher must not
        // take the fallback's short answer and move its cursor past the exit.
        let from = refused.load(Ordering::SeqCst);
        for _ in 0..800 {
            if refused.load(Ordering::SeqCst) >= from + 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(refused.load(Ordering::SeqCst) >= from + 3, "the primary was never asked");
        let cursor = w.watcher.status().l1_cursor;
        assert!(
            cursor < exit_block,
            "the cursor moved to {cursor}, past the exit's block {exit_block}, while only the \
             primary (throttling) had its logs"
        );
    } else {
        until_read(&w, exit_block).await;
    }
    flaky.store(false, Ordering::SeqCst);
    // L1 goes on; the primary answers everything again.
    env.provider.raw_request::<_, serde_json::Value>("anvil_mine".into(), (3u64,)).await.unwrap();
    until_read(&w, exit_block + 3).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < deadline
        && !w.watcher.events().iter().any(|e| matches!(e, Event::Challenged { .. }))
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let se = StandardExitGame::new(env.deployment.standard_exit_game, env.provider.clone());
    let status = se.exits(U256::from(dep)).call().await.unwrap().status;
    assert_eq!(
        status,
        2,
        "alice's exit of her spent deposit is not challenged (status {status}); watcher status \
         {:?}; events {:?}",
        w.watcher.status(),
        w.watcher.events()
    );
    w.stop().await;
    node.stop().await;
}
