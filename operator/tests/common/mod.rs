//! What the operator's integration tests share: its HTTP API, called and polled.

// Test helpers panic on failures by design.
#![allow(clippy::unwrap_used)]

use alloy::{
    primitives::{Address, U256},
    providers::DynProvider,
};
use plasma_contracts::PlasmaFramework;
use plasma_operator::Node;
use plasma_spec::{SignedTransaction, Transaction, UtxoPos};
use serde_json::{Value, json};
use std::time::Duration;

// Not every test binary that includes `common` starts a node from the devnet config.
#[allow(dead_code)]
pub(crate) mod devnet;

/// The operator's API at a running node.
pub(crate) struct Api {
    /// `http://host:port` of the node.
    pub(crate) base: String,
    /// The client every call uses.
    pub(crate) http: reqwest::Client,
}

impl Api {
    pub(crate) fn new(node: &Node) -> Self {
        Self { base: format!("http://{}", node.addr), http: reqwest::Client::new() }
    }
    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
    pub(crate) async fn post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
    pub(crate) async fn submit(&self, tx: &SignedTransaction) -> (u16, Value) {
        self.post(
            "/v1/transactions",
            json!({"tx": format!("0x{}", hex::encode(tx.encode()))}).to_string().into_bytes(),
        )
        .await
    }
    /// Polls until `check` accepts the response (the operator works asynchronously; this waits
    /// on its observable state, with a deadline, rather than sleeping a fixed time).
    pub(crate) async fn wait_for(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, v) = self.get(path).await;
            if check(&v) {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting on {path}: last {v}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Deposits `amount` wei for `owner` through the framework at `framework` (sent from `owner`
/// over `provider`); returns the deposit's output position.
pub(crate) async fn deposit_eth(
    provider: &DynProvider,
    framework: Address,
    owner: Address,
    amount: U256,
) -> UtxoPos {
    let framework = PlasmaFramework::new(framework, provider.clone());
    let tx = Transaction::deposit(owner, Address::ZERO, amount).encode();
    let receipt = framework
        .depositEth(tx.into())
        .value(amount)
        .from(owner)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let ev = receipt.decoded_log::<PlasmaFramework::DepositCreated>().unwrap();
    UtxoPos::from_u256(ev.blknum * U256::from(1_000_000_000u64)).unwrap()
}
