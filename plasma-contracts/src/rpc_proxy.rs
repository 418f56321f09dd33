//! A JSON-RPC proxy before a node that misbehaves the way hosted providers do, for tests of the
//! several-endpoint failover (`l1`): it throttles `eth_getLogs`, lags a few blocks behind (and
//! answers logs only up to its own head, without an error, as a syncing node does), or loses the
//! answer to a transaction it passed on. Audit #18 F1/F6 found real losses with it; the tests of
//! the SDK, the watcher and this crate share it.

use serde_json::{Value, json};
use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the proxy misbehaves.
#[derive(Clone, Debug)]
pub enum ProxyMode {
    /// Refuses `eth_getLogs` with HTTP 503 while `on` (a provider throttling its heaviest
    /// method); counts the refusals in `refused`. Everything else is passed on.
    FlakyLogs {
        /// Throttling while true.
        on: Arc<AtomicBool>,
        /// `eth_getLogs` calls refused.
        refused: Arc<AtomicU64>,
    },
    /// A node `lag` blocks behind: its head, no block past it, and logs only up to it (no
    /// error); counts the `eth_getLogs` calls it answered in `logs_answered`.
    Lagging {
        /// Blocks behind the upstream.
        lag: u64,
        /// `eth_getLogs` calls answered.
        logs_answered: Arc<AtomicU64>,
    },
    /// Passes `eth_sendRawTransaction` on, then answers HTTP 503 (the answer lost on the way
    /// back: a load balancer timing out, a connection reset after the node took it).
    LostSendAnswer,
    /// Passes everything on, recording in `lowest` the lowest `fromBlock` any `eth_getLogs` asked
    /// for (`earliest` or none: 0; `u64::MAX` until the first call): where a follower starts
    /// reading L1.
    LogsFrom {
        /// The lowest block a log read started at.
        lowest: Arc<AtomicU64>,
    },
}

/// Starts a proxy before `upstream` on a free loopback port; returns its URL. It serves
/// HTTP/1.1 keep-alive connections with `Content-Length` bodies, which is what alloy's client
/// sends, until the runtime stops.
pub async fn start(upstream: String, mode: ProxyMode) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
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
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 8192];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Value = serde_json::from_slice(&buf[head_end..head_end + len])
                        .unwrap_or(Value::Null);
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
    Ok(format!("http://127.0.0.1:{port}"))
}

/// A [`ProxyMode::LogsFrom`] proxy before `upstream`: its URL, and the lowest `fromBlock` of the
/// `eth_getLogs` calls it passed on (`u64::MAX` until the first).
pub async fn start_logs_from(upstream: String) -> std::io::Result<(String, Arc<AtomicU64>)> {
    let lowest = Arc::new(AtomicU64::new(u64::MAX));
    let url = start(upstream, ProxyMode::LogsFrom { lowest: lowest.clone() }).await?;
    Ok((url, lowest))
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
    mode: &ProxyMode,
    mut body: Value,
) -> (&'static str, String) {
    let method = body["method"].as_str().unwrap_or_default().to_owned();
    let id = body["id"].clone();
    let ok = |result: Value| {
        ("200 OK", json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
    };
    match mode {
        ProxyMode::FlakyLogs { on, refused } => {
            if method == "eth_getLogs" && on.load(Ordering::SeqCst) {
                refused.fetch_add(1, Ordering::SeqCst);
                return ("503 Service Unavailable", "{\"error\":\"upstream busy\"}".into());
            }
            ("200 OK", forward(client, upstream, &body).await.to_string())
        }
        ProxyMode::LogsFrom { lowest } => {
            if method == "eth_getLogs" {
                let from = &body["params"][0]["fromBlock"];
                let block = if from.is_null() || from == "earliest" {
                    0
                } else {
                    hex_u64(from).unwrap_or(u64::MAX)
                };
                lowest.fetch_min(block, Ordering::SeqCst);
            }
            ("200 OK", forward(client, upstream, &body).await.to_string())
        }
        ProxyMode::LostSendAnswer => {
            let answer = forward(client, upstream, &body).await.to_string();
            if method == "eth_sendRawTransaction" {
                return ("503 Service Unavailable", "{\"error\":\"gateway timeout\"}".into());
            }
            ("200 OK", answer)
        }
        ProxyMode::Lagging { lag, logs_answered } => {
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
                    logs_answered.fetch_add(1, Ordering::SeqCst);
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
