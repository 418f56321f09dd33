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

mod rpc_proxy {
    //! A JSON-RPC proxy before anvil that behaves like a real endpoint: `Flaky` refuses
    //! `eth_getLogs` with HTTP 503 while its switch is on (a hosted provider throttles its heaviest
    //! method first); `Lagging(n)` is a node `n` blocks behind (its head, no block past it, and
    //! logs only up to it, without error). `Flaky` counts the `eth_getLogs` it refused.
    use serde_json::{Value, json};
    use std::sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[derive(Clone, Debug)]
    #[allow(unreachable_pub)]
    pub enum Mode {
        Flaky(Arc<AtomicBool>, Arc<AtomicU64>),
        Lagging(u64),
    }

    #[allow(unreachable_pub)]
    pub async fn start(upstream: String, mode: Mode) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = reqwest::Client::new();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let (client, upstream, mode) = (client.clone(), upstream.clone(), mode.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            let mut chunk = [0u8; 8192];
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < head_end + len {
                            let mut chunk = [0u8; 8192];
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body: Value =
                            serde_json::from_slice(&buf[head_end..head_end + len]).unwrap();
                        buf.drain(..head_end + len);
                        let (status, answer) = handle(&client, &upstream, &mode, body).await;
                        let out = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        if sock.write_all(out.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        format!("http://127.0.0.1:{port}")
    }

    /// The upstream's answer (`null` once it is gone: the test is over).
    async fn forward(client: &reqwest::Client, upstream: &str, body: &Value) -> Value {
        match client.post(upstream).json(body).send().await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => Value::Null,
        }
    }

    fn hex_u64(v: &Value) -> Option<u64> {
        u64::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
    }

    async fn handle(
        client: &reqwest::Client,
        upstream: &str,
        mode: &Mode,
        mut body: Value,
    ) -> (&'static str, String) {
        let method = body["method"].as_str().unwrap_or_default().to_owned();
        let id = body["id"].clone();
        let ok = |result: Value| {
            ("200 OK", json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
        };
        match mode {
            Mode::Flaky(on, refused) => {
                if method == "eth_getLogs" && on.load(Ordering::SeqCst) {
                    refused.fetch_add(1, Ordering::SeqCst);
                    return ("503 Service Unavailable", "{\"error\":\"upstream busy\"}".into());
                }
                ("200 OK", forward(client, upstream, &body).await.to_string())
            }
            Mode::Lagging(lag) => {
                let real = forward(
                    client,
                    upstream,
                    &json!({"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}),
                )
                .await;
                let Some(head) = hex_u64(&real["result"]) else {
                    return ("502 Bad Gateway", "{}".into());
                };
                let cap = head.saturating_sub(*lag);
                match method.as_str() {
                    "eth_blockNumber" => ok(json!(format!("{cap:#x}"))),
                    "eth_getBlockByNumber" => {
                        let tag = &body["params"][0];
                        if tag == "latest" {
                            body["params"][0] = json!(format!("{cap:#x}"));
                        } else if hex_u64(tag).is_some_and(|n| n > cap) {
                            return ok(Value::Null);
                        }
                        ("200 OK", forward(client, upstream, &body).await.to_string())
                    }
                    "eth_getLogs" => {
                        let filter = &mut body["params"][0];
                        if hex_u64(&filter["fromBlock"]).is_some_and(|f| f > cap) {
                            return ok(json!([]));
                        }
                        if filter["toBlock"] == "latest"
                            || hex_u64(&filter["toBlock"]).is_some_and(|t| t > cap)
                        {
                            filter["toBlock"] = json!(format!("{cap:#x}"));
                        }
                        ("200 OK", forward(client, upstream, &body).await.to_string())
                    }
                    _ => ("200 OK", forward(client, upstream, &body).await.to_string()),
                }
            }
        }
    }
}

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
    let primary = rpc_proxy::start(
        env.anvil.endpoint(),
        rpc_proxy::Mode::Flaky(flaky.clone(), refused.clone()),
    )
    .await;
    let fallback = rpc_proxy::start(env.anvil.endpoint(), rpc_proxy::Mode::Lagging(6)).await;
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
