//! The `plasma-watcher` binary over several L1 endpoints (issue #18): the first dead, the second
//! https through a TLS front whose private CA is trusted through `PLASMA_CA_FILE`, before a real
//! anvil. `/status` names the dead endpoint and why, shows the live one's head, and never the
//! API key in a URL.

#![allow(clippy::unwrap_used)]

use plasma_contracts::{
    devnet::LocalChain,
    tls_front::{TestCa, TlsFront},
};
use serde_json::Value;
use std::{process::Command, time::Duration};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Kills the child when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_a_dead_endpoint_and_the_https_one_works() {
    let chain = LocalChain::start(3600).await.unwrap();
    let ca = TestCa::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path()).unwrap();
    let anvil = std::net::SocketAddr::from(([127, 0, 0, 1], chain.anvil.port()));
    let front = TlsFront::start(&ca, &["127.0.0.1"], anvil).await.unwrap();
    let dead = free_port();
    let api = free_port();
    let log = dir.path().join("watcher.log");
    let child = Command::new(env!("CARGO_BIN_EXE_plasma-watcher"))
        .args(["--l1.rpc-url", &format!("http://127.0.0.1:{dead}/v2/SECRETKEY,{}", front.url())])
        .args(["--l1.framework", &chain.deployment.framework.to_string()])
        .args(["--operator.url", &format!("http://127.0.0.1:{}", free_port())])
        .args(["--api.listen", &format!("127.0.0.1:{api}")])
        .args(["--availability-timeout", "5", "--stuck-after", "5", "--l1.block-time", "1"])
        .args(["--poll-ms", "50", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("PLASMA_WATCHER_L1_PRIVATE_KEY", chain.key_hex(9))
        .env("PLASMA_CA_FILE", &ca_file)
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap())
        .spawn()
        .unwrap();
    let mut child = Killed(child);

    // Wait for the status to show both endpoints probed (the watcher's own observable state).
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status: Value = loop {
        if let Some(code) = child.0.try_wait().unwrap() {
            panic!("watcher exited ({code}): {}", std::fs::read_to_string(&log).unwrap());
        }
        let got = http.get(format!("http://127.0.0.1:{api}/status")).send().await;
        if let Ok(r) = got {
            let v: Value = r.json().await.unwrap();
            let e = &v["l1"]["endpoints"];
            if e[1]["head"].is_u64() && e[0]["lastError"].is_string() {
                break v;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no status: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let e = &status["l1"]["endpoints"];
    assert_eq!(e[0]["url"], format!("http://127.0.0.1:{dead}/…"));
    assert_eq!(e[0]["healthy"], false);
    assert!(e[0]["lastError"].as_str().unwrap().contains("connection refused"), "{status}");
    assert_eq!(e[1]["url"], front.url());
    assert_eq!(e[1]["healthy"], true, "{status}");
    // The watcher follows L1 through the https endpoint.
    assert!(status["status"]["l1Cursor"].is_u64(), "{status}");
    assert!(!status.to_string().contains("SECRETKEY"), "{status}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("SECRETKEY"), "{logged}");
    assert!(logged.contains("connection refused"), "{logged}");
}
