//! Several L1 endpoints against a real anvil: with the first endpoint dead, reads and a
//! transaction still go through the second, and the health view names the dead one and why
//! (issue #18; Shape: failover in one place).

#![allow(clippy::unwrap_used)]

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
};
use plasma_contracts::{
    devnet::LocalChain,
    l1::{self, ClientOptions, Endpoints},
    sender::connect,
    tls_front::{TestCa, TlsFront},
};

/// A server answering every request with `response` (a whole HTTP/1.1 response): a hosted
/// endpoint over its quota.
async fn canned(response: &'static str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

/// A local port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_dead_endpoint_fails_over_to_a_live_one() {
    let chain = LocalChain::start(60).await.unwrap();
    let dead: alloy::transports::http::reqwest::Url =
        format!("http://127.0.0.1:{}", dead_port()).parse().unwrap();
    let provider =
        connect(&[dead, chain.anvil.endpoint_url()], EthereumWallet::from(chain.key(1))).unwrap();
    assert_eq!(provider.get_chain_id().await.unwrap(), chain.anvil.chain_id());
    let to = Address::repeat_byte(0x42);
    let tx = TransactionRequest::default().with_to(to).with_value(U256::from(7));
    let receipt = provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    assert_eq!(chain.provider.get_balance(to).await.unwrap(), U256::from(7));
    // None is an error.
    assert!(connect(&[], EthereumWallet::from(chain.key(1))).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_view_names_the_dead_endpoint_and_why() {
    let chain = LocalChain::start(60).await.unwrap();
    let ca = TestCa::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = ClientOptions::default().with_ca_file(ca.write_pem(dir.path()).unwrap());
    let anvil = std::net::SocketAddr::from(([127, 0, 0, 1], chain.anvil.port()));
    let front = TlsFront::start(&ca, &["127.0.0.1"], anvil).await.unwrap();
    let dead = format!("http://127.0.0.1:{}/v2/SECRET", dead_port());
    let endpoints = Endpoints::parse(&format!("{dead},{}", front.url())).unwrap();
    let (provider, health) =
        l1::connect_with(&endpoints, EthereumWallet::from(chain.key(2)), &options).unwrap();

    // The dead endpoint is tried first (configured order), fails, and the request is answered
    // by the second.
    let head = provider.get_block_number().await.unwrap();
    assert_eq!(head, chain.provider.get_block_number().await.unwrap());
    let [first, second] = health.snapshot().try_into().unwrap();
    assert_eq!(
        first.url,
        format!(
            "http://127.0.0.1:{}/…",
            dead.split(':').nth(2).unwrap().split('/').next().unwrap()
        )
    );
    assert!(!first.healthy);
    assert!(first.last_error.as_deref().unwrap().contains("connection refused"), "{first:?}");
    assert_eq!(first.last_ok_unix, None);
    assert!(second.healthy, "{second:?}");
    assert_eq!(second.head, Some(head));
    assert!(second.latency_ms.is_some());

    // A transaction goes through, the dead endpoint skipped.
    let to = Address::repeat_byte(0x43);
    let tx = TransactionRequest::default().with_to(to).with_value(U256::from(3));
    assert!(provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap().status());

    // The probe keeps saying so, and the status body shows no secret.
    health.probe().await;
    let view = serde_json::to_value(&health).unwrap();
    assert_eq!(view[0]["healthy"], false);
    assert_eq!(view[1]["healthy"], true);
    assert_eq!(view[1]["head"], chain.provider.get_block_number().await.unwrap());
    assert!(view[0]["lastError"].as_str().unwrap().contains("connection refused"));
    assert!(!view.to_string().contains("SECRET"), "{view}");
    assert!(health.any_healthy());

    // Every endpoint dead: the error names each one with why.
    let all_dead = Endpoints::parse(&format!(
        "http://127.0.0.1:{},http://127.0.0.1:{}",
        dead_port(),
        dead_port()
    ))
    .unwrap();
    let (provider, health) =
        l1::connect_with(&all_dead, EthereumWallet::from(chain.key(2)), &options).unwrap();
    let err = provider.get_chain_id().await.unwrap_err().to_string();
    assert!(err.contains("no L1 endpoint answered: http://127.0.0.1:"), "{err}");
    assert_eq!(err.matches("connection refused").count(), 2, "{err}");
    assert!(!health.any_healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_endpoints_hand_over_to_the_next() {
    let chain = LocalChain::start(60).await.unwrap();
    let http_429 = canned(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 4\r\nconnection: close\r\n\r\nslow",
    )
    .await;
    let body = r#"{"jsonrpc":"2.0","id":0,"error":{"code":-32005,"message":"daily request count exceeded, request rate limited"}}"#;
    let rpc_limit: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    );
    let json_limited = canned(rpc_limit).await;
    let endpoints = Endpoints::parse(&format!(
        "http://{http_429}/v2/KEY,http://{json_limited}/v3/KEY,{}",
        chain.anvil.endpoint()
    ))
    .unwrap();
    let (provider, health) =
        l1::connect_with(&endpoints, EthereumWallet::from(chain.key(3)), &ClientOptions::default())
            .unwrap();
    assert_eq!(
        provider.get_block_number().await.unwrap(),
        chain.provider.get_block_number().await.unwrap()
    );
    let [a, b, c] = health.snapshot().try_into().unwrap();
    assert!(!a.healthy && !b.healthy && c.healthy, "{a:?} {b:?} {c:?}");
    let a = a.last_error.unwrap();
    assert!(a.starts_with("HTTP 429 Too Many Requests: rate limited by the provider"), "{a}");
    let b = b.last_error.unwrap();
    assert!(b.starts_with("rate limited (JSON-RPC error -32005"), "{b}");
}
