//! The operator over several L1 endpoints (issue #18): the first dead, the second https through a
//! TLS front (private CA from `[l1] ca_file`) before a real anvil. Deposits are still credited,
//! and `/v1/status` names the dead endpoint, why, and the live one's head — never a URL's key.

#![allow(clippy::unwrap_used)]

use alloy::{
    network::EthereumWallet,
    primitives::U256,
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{
    devnet::LocalChain,
    tls_front::{TestCa, TlsFront},
};
use plasma_operator::{Config, Node};

// Only the API calls and the deposit helper are used here.
#[allow(dead_code)]
mod common;
use common::Api;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_is_named_in_status_and_https_carries_the_work() {
    let LocalChain { anvil, deployment, .. } = LocalChain::start(60).await.unwrap();
    let ca = TestCa::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path()).unwrap();
    let anvil_addr = std::net::SocketAddr::from(([127, 0, 0, 1], anvil.port()));
    let front = TlsFront::start(&ca, &["127.0.0.1"], anvil_addr).await.unwrap();
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };

    let mut c = Config::devnet();
    c.data_dir = dir.path().join("operator");
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.l1.rpc_urls =
        vec![format!("http://127.0.0.1:{dead_port}/v2/SECRETKEY"), format!("{}/", front.url())];
    c.l1.ca_file = Some(ca_file);
    c.l1.framework = deployment.framework;
    c.l1.private_key = Some(format!("0x{}", hex::encode(anvil.keys()[0].to_bytes())));
    c.l1.poll_interval_ms = 50;
    c.block.interval_ms = 100;
    let node = Node::start(c).await.unwrap();
    let api = Api::new(&node);

    // The operator's L1 loops work through the https endpoint: a deposit is credited.
    let alice: PrivateKeySigner = anvil.keys()[1].clone().into();
    let l1 = ProviderBuilder::new()
        .wallet(EthereumWallet::from(alice.clone()))
        .connect_http(anvil.endpoint_url())
        .erased();
    common::deposit_eth(&l1, deployment.framework, alice.address(), U256::from(1000)).await;
    api.wait_for(&format!("/v1/utxos?owner={}", alice.address()), |v| {
        v["utxos"].as_array().is_some_and(|u| u.len() == 1)
    })
    .await;

    let status = api
        .wait_for("/v1/status", |v| {
            v["l1"]["endpoints"][1]["head"].as_u64().is_some_and(|h| h > 0)
                && v["l1"]["endpoints"][0]["lastError"].is_string()
        })
        .await;
    let endpoints = &status["l1"]["endpoints"];
    assert_eq!(endpoints[0]["url"], format!("http://127.0.0.1:{dead_port}/…"));
    assert_eq!(endpoints[0]["healthy"], false);
    let why = endpoints[0]["lastError"].as_str().unwrap();
    assert!(why.contains("connection refused"), "{why}");
    assert_eq!(endpoints[1]["url"], front.url());
    assert_eq!(endpoints[1]["healthy"], true, "{status}");
    assert!(endpoints[1]["latencyMs"].is_u64() && endpoints[1]["lastOkUnix"].is_u64());
    assert!(!status.to_string().contains("SECRETKEY"), "{status}");
    node.stop().await;
}
