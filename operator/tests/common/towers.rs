//! Stub availability towers for the operator's tests and bench: small warp servers on loopback
//! that take `PUT /v1/da/chunks/{blknum}` as a tower does (contract of issue 17), check the
//! envelope with `plasma-da` (operator's header signature, proof, index), keep it in memory, and
//! answer a receipt signed with a test key — or with a wrong key, to test that the operator does
//! not count it.

// Test helpers panic on failures by design; each test binary uses part of them.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use alloy::primitives::Address;
use parking_lot::Mutex;
use plasma_da::{ChunkEnvelope, Receipt};
use plasma_spec::{Signer, SigningDomain};
use serde_json::json;
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};
use warp::{Filter, http::StatusCode, reply::Reply};

/// Envelopes a stub accepted: (block, envelope bytes), in arrival order.
pub type Received = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

/// What a stub tower checks envelopes against and signs receipts with.
#[derive(Clone, Debug)]
pub struct StubConfig {
    /// Its chunk index.
    pub index: u16,
    /// The key whose address the operator is configured with.
    pub key: Signer,
    /// The key receipts are signed with: `key` for an honest tower, another to test refusals.
    pub receipt_key: Signer,
    /// The operator's signing domain.
    pub domain: SigningDomain,
    /// The operator's address (header signer).
    pub operator: Address,
}

/// A running stub tower.
pub struct StubTower {
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its configured address.
    pub address: Address,
    /// Envelopes accepted, by block, in arrival order.
    pub received: Received,
    /// PUTs received (accepted or not).
    pub puts: Arc<AtomicUsize>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn refuse(
    status: StatusCode,
    code: &str,
    message: impl std::fmt::Display,
) -> warp::reply::Response {
    warp::reply::with_status(
        warp::reply::json(&json!({"error": {"code": code, "message": message.to_string()}})),
        status,
    )
    .into_response()
}

impl StubTower {
    /// Starts a stub tower on `addr` (port 0: any free port).
    pub async fn start(addr: SocketAddr, config: StubConfig) -> Self {
        let received: Received = Arc::default();
        let puts = Arc::new(AtomicUsize::new(0));
        let address = config.key.address();
        let state = (received.clone(), puts.clone(), Arc::new(config));
        let route = warp::path!("v1" / "da" / "chunks" / u64)
            .and(warp::put())
            .and(warp::body::content_length_limit(64 * 1024 * 1024))
            .and(warp::body::bytes())
            .map(move |blknum: u64, body: bytes::Bytes| {
                let (received, puts, config) = &state;
                puts.fetch_add(1, Ordering::SeqCst);
                let envelope = match ChunkEnvelope::decode(&body) {
                    Ok(e) => e,
                    Err(e) => return refuse(StatusCode::BAD_REQUEST, e.code(), e),
                };
                if envelope.header.blknum != blknum {
                    return refuse(StatusCode::BAD_REQUEST, "Malformed", "path and header differ");
                }
                if envelope.index != config.index {
                    return refuse(StatusCode::BAD_REQUEST, "WrongIndex", envelope.index);
                }
                if let Err(e) = envelope.verify(&config.domain, config.operator) {
                    return refuse(StatusCode::BAD_REQUEST, e.code(), e);
                }
                let chunk_root = envelope.header.chunk_root;
                received.lock().push((blknum, body.to_vec()));
                let receipt = Receipt { blknum, chunk_root, index: config.index };
                let signature = receipt.sign(&config.domain, &config.receipt_key);
                warp::reply::json(&json!({"receipt": {
                    "blknum": blknum,
                    "chunkRoot": chunk_root,
                    "index": config.index,
                    "tower": config.key.address(),
                    "signature": signature,
                }}))
                .into_response()
            });
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = warp::serve(route).incoming(listener).graceful(async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(server.run());
        Self { url: format!("http://{addr}"), addr, address, received, puts, stop, task }
    }

    /// Stops it and waits until its port is closed.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    /// The envelopes accepted for `blknum`.
    pub fn envelopes(&self, blknum: u64) -> Vec<ChunkEnvelope> {
        self.received
            .lock()
            .iter()
            .filter(|(b, _)| *b == blknum)
            .map(|(_, bytes)| ChunkEnvelope::decode(bytes).unwrap())
            .collect()
    }

    /// PUTs received so far.
    pub fn puts(&self) -> usize {
        self.puts.load(Ordering::SeqCst)
    }
}

/// A loopback address nobody listens on now: a tower that is down until started there.
pub async fn free_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A test tower key.
pub fn tower_key(i: usize) -> Signer {
    Signer::from_bytes(&alloy::primitives::keccak256(format!("stub tower {i}"))).unwrap()
}
