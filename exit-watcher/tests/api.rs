//! The watcher's HTTP API refuses in typed JSON (issue 18), against a real anvil, the real
//! contracts and the real operator: an undocumented method is a 405 with `Allow` listing the
//! document's methods, a body without a length a 411, one too large a 413, a path number that is
//! not one a 400, an unknown path a 404; a request body with an unknown field is refused; the
//! document is served at `/openapi.json`. (`scripts/schemathesis` fuzzes the whole API.)

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::{
    network::EthereumWallet,
    providers::{Provider, ProviderBuilder},
};
use plasma_testkit::{env, key, operator};
use plasma_watcher::{Settings, Watcher};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_typed_json_with_allow() {
    let env = env().await;
    let node = operator(&env).await;
    let key = key(&env, 5);
    let me = key.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(env.anvil.endpoint_url())
        .erased();
    let settings = Settings {
        framework: env.deployment.framework,
        operator_url: format!("http://{}", node.addr),
        confirmations: 1,
        poll: Duration::from_millis(50),
        availability_timeout: Duration::from_secs(5),
        process_exits: false,
        deadline_margin: Duration::from_secs(30),
        stuck_after: Duration::from_millis(300),
        l1_block_time: Duration::from_millis(100),
        download: plasma_watcher::DownloadSettings::default(),
    };
    let w = Watcher::new(settings, me, provider, &env.dir.path().join("watcher")).await.unwrap();
    let running = plasma_watcher::start(w, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let code = |v: &Value| v["error"]["code"].as_str().map(str::to_owned);

    // 405 with Allow: exactly the document's methods of that path, in typed JSON.
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/status", "GET"),
        (reqwest::Method::POST, "/v1/da/faults", "GET"),
        (reqwest::Method::PATCH, "/v1/da/chunks/1000", "GET, PUT"),
        (reqwest::Method::GET, "/v1/guards", "POST"),
        (reqwest::Method::PUT, "/v1/blocks/abc", "GET"),
    ] {
        let r = http.request(method.clone(), format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 405, "{method} {path}");
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(code(&body).as_deref(), Some("MethodNotAllowed"), "{body}");
    }

    // A path number that is not one: 400, not "no such route".
    for path in ["/v1/blocks/abc", "/v1/blocks/-1", "/v1/da/chunks/1e3"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(code(&body).as_deref(), Some("MalformedParameter"), "{body}");
    }
    let r = http.get(format!("{base}/v1/nothing")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(code(&r.json().await.unwrap()).as_deref(), Some("NotFound"));

    // A body without Content-Length (chunked): 411; too large: 413.
    let mut tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    tcp.write_all(
        b"POST /v1/guards/in-flight HTTP/1.1\r\nhost: w\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nb\r\n{\"tx\":\"0x\"}\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
    assert!(answer.contains(r#""code":"LengthRequired""#), "{answer}");
    let r = http
        .post(format!("{base}/v1/guards"))
        .body(vec![b' '; 64 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(code(&r.json().await.unwrap()).as_deref(), Some("BodyTooLarge"));

    // Request bodies are closed: an unknown field is malformed, as the document says.
    let http = reqwest::Client::new(); // the 413 connection was dropped unread
    let r = http
        .post(format!("{base}/v1/guards/in-flight"))
        .body(r#"{"tx":"0x","extra":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(code(&r.json().await.unwrap()).as_deref(), Some("MalformedJson"));

    // The document is served and names every route the watcher answers.
    let doc: Value =
        http.get(format!("{base}/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["paths"]["/v1/guards/in-flight"]["post"].is_object());
    assert!(doc["paths"]["/v1/blocks/{blknum}"]["get"]["responses"]["400"].is_object());
    node.stop().await;
}
