//! TLS to L1 endpoints and the reasons an endpoint cannot be reached (issue #18), against real
//! sockets: a TLS front (private CA) before a real anvil, reached through `l1::connect` as the
//! operator, the watcher and the wallet reach L1; a certificate the client does not trust, one
//! for another name, TLS to a plain-HTTP port, DNS, refused, timeout and HTTP 401/429.

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
    tls_front::{TestCa, TlsFront},
};
use std::{net::SocketAddr, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn anvil_addr(chain: &LocalChain) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], chain.anvil.port()))
}

/// The error text of a chain-id read through `connect_with(url, options)`, with its health.
async fn failure(url: &str, options: &ClientOptions) -> (String, Vec<l1::EndpointStatus>) {
    let endpoints = Endpoints::parse(url).unwrap();
    let key = alloy::signers::local::PrivateKeySigner::random();
    let (provider, health) =
        l1::connect_with(&endpoints, EthereumWallet::from(key), options).unwrap();
    let err = provider.get_chain_id().await.unwrap_err();
    (err.to_string(), health.snapshot())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_private_ca_reaches_anvil_over_https() {
    let chain = LocalChain::start(60).await.unwrap();
    let ca = TestCa::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path()).unwrap();
    let front =
        TlsFront::start(&ca, &["127.0.0.1", "localhost"], anvil_addr(&chain)).await.unwrap();
    let endpoints = Endpoints::parse(&front.url()).unwrap();
    let options = ClientOptions::default().with_ca_file(&ca_file);
    let (provider, health) =
        l1::connect_with(&endpoints, EthereumWallet::from(chain.key(1)), &options).unwrap();
    assert_eq!(provider.get_chain_id().await.unwrap(), chain.anvil.chain_id());
    // A signed transaction goes through the TLS front and is mined.
    let to = Address::repeat_byte(0x51);
    let tx = TransactionRequest::default().with_to(to).with_value(U256::from(9));
    let receipt = provider.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
    assert!(receipt.status());
    assert_eq!(chain.provider.get_balance(to).await.unwrap(), U256::from(9));
    health.probe().await;
    let [status] = health.snapshot().try_into().unwrap();
    assert_eq!(status.url, front.url());
    assert!(status.healthy, "{status:?}");
    assert_eq!(status.head, Some(chain.provider.get_block_number().await.unwrap()));
    assert!(status.last_error.is_none() && status.last_ok_unix.is_some(), "{status:?}");
    assert_eq!(health.chain_id(), Some(chain.anvil.chain_id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_named_and_the_key_in_the_url_never_shown() {
    let chain = LocalChain::start(60).await.unwrap();
    let ca = TestCa::new().unwrap();
    let front = TlsFront::start(&ca, &["127.0.0.1"], anvil_addr(&chain)).await.unwrap();
    // Mozilla's roots only: the private CA is unknown.
    let url = format!("{}/v3/SECRETKEY123?apikey=SECRETKEY123", front.url());
    let (err, health) = failure(&url, &ClientOptions::default()).await;
    assert!(err.contains("TLS: certificate not trusted (unknown issuer"), "{err}");
    assert!(err.contains(&format!("cannot reach {}/…", front.url())), "{err}");
    assert!(!err.contains("SECRETKEY123"), "{err}");
    assert!(!health[0].healthy);
    let last = health[0].last_error.clone().unwrap();
    assert!(last.contains("certificate not trusted"), "{last}");
    assert!(!format!("{health:?}").contains("SECRETKEY123"));

    // A certificate from the trusted CA but for another name.
    let dir = tempfile::tempdir().unwrap();
    let options = ClientOptions::default().with_ca_file(ca.write_pem(dir.path()).unwrap());
    let other = TlsFront::start(&ca, &["rpc.example.org"], anvil_addr(&chain)).await.unwrap();
    let (err, _) = failure(&other.url(), &options).await;
    assert!(err.contains("TLS: certificate not valid for this host name"), "{err}");

    // https:// to anvil's plain-HTTP port.
    let (err, _) = failure(&format!("https://{}", anvil_addr(&chain)), &options).await;
    assert!(err.contains("does not speak TLS"), "{err}");
}

/// A server that answers every request with `response` (a whole HTTP/1.1 response).
async fn canned(response: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the headers and the body (JSON-RPC requests are small).
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
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

#[tokio::test]
async fn each_reach_failure_says_why() {
    let options = ClientOptions::default();
    // DNS: `.invalid` never resolves (RFC 2606).
    let (err, _) = failure("http://no-such-node.invalid:8545", &options).await;
    assert!(
        err.contains("cannot reach http://no-such-node.invalid:8545: DNS lookup failed"),
        "{err}"
    );

    // Refused: a port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (err, health) = failure(&format!("http://127.0.0.1:{port}"), &options).await;
    assert!(err.contains("connection refused"), "{err}");
    assert!(health[0].last_error.as_deref().unwrap().contains("connection refused"));

    // Timeout: a server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let quick = ClientOptions { request_timeout: Duration::from_millis(300), ..options.clone() };
    let (err, _) = failure(&format!("http://{silent_addr}"), &quick).await;
    assert!(err.ends_with("timed out"), "{err}");

    // HTTP statuses of hosted providers.
    let unauthorized = canned(
        "HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\ncontent-length: 15\r\nconnection: close\r\n\r\ninvalid api key",
    )
    .await;
    let (err, _) = failure(&format!("http://{unauthorized}/v2/KEY"), &options).await;
    assert!(
        err.contains(
            "HTTP 401 Unauthorized: the endpoint refused the credentials: check the API key"
        ),
        "{err}"
    );
    assert!(err.contains("(invalid api key)") && !err.contains("/v2/KEY"), "{err}");
    let limited = canned(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 4\r\nconnection: close\r\n\r\nslow",
    )
    .await;
    let (err, _) = failure(&format!("http://{limited}"), &options).await;
    assert!(err.contains("HTTP 429 Too Many Requests: rate limited by the provider"), "{err}");
}

/// `PLASMA_CA_FILE` is read by `l1::connect` (the wallet's, operator's and watcher's path).
/// Environment variables are process-wide, so the check runs in a child process: this test
/// binary re-run on this one test with the variable set (and once without, which must fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plasma_ca_file_in_the_environment_is_trusted() {
    const URL: &str = "PLASMA_TEST_TLS_URL";
    const CHAIN: &str = "PLASMA_TEST_TLS_CHAIN_ID";
    if let (Ok(url), Ok(chain_id)) = (std::env::var(URL), std::env::var(CHAIN)) {
        // The child: exactly what the binaries do.
        let key = alloy::signers::local::PrivateKeySigner::random();
        let (provider, _) =
            l1::connect(&Endpoints::parse(&url).unwrap(), EthereumWallet::from(key)).unwrap();
        let got = provider.get_chain_id().await.map_err(|e| e.to_string());
        assert_eq!(got, Ok(chain_id.parse::<u64>().unwrap()));
        return;
    }
    let chain = LocalChain::start(60).await.unwrap();
    let ca = TestCa::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path()).unwrap();
    let front = TlsFront::start(&ca, &["127.0.0.1"], anvil_addr(&chain)).await.unwrap();
    let (url, chain_id) = (front.url(), chain.anvil.chain_id().to_string());
    let (with, without) = tokio::task::spawn_blocking(move || {
        let run = |ca: Option<&std::path::Path>| {
            let mut child = std::process::Command::new(std::env::current_exe().unwrap());
            child
                .args(["--exact", "plasma_ca_file_in_the_environment_is_trusted", "--nocapture"])
                .env(URL, &url)
                .env(CHAIN, &chain_id)
                .env_remove(l1::CA_FILE_ENV);
            if let Some(ca) = ca {
                child.env(l1::CA_FILE_ENV, ca);
            }
            child.output().unwrap()
        };
        (run(Some(&ca_file)), run(None))
    })
    .await
    .unwrap();
    assert!(with.status.success(), "{}", String::from_utf8_lossy(&with.stderr));
    assert!(!without.status.success());
    // The child's failed assertion prints the error it got.
    let said = String::from_utf8_lossy(&without.stderr);
    assert!(said.contains("certificate not trusted"), "{said}");
}
