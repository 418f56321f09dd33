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
