//! The set-up every crate's integration tests share, written once: a real anvil with the
//! contracts deployed ([`Env`]), the real operator started in-process on it ([`operator`]), and
//! wallets of anvil's accounts talking to both ([`wallet`]). Real parts, no mocks.
//!
//! A dev-dependency only: the SDK's and the watcher's tests use it; it depends on the operator
//! and the SDK as libraries.

// Test set-up: failing to start anvil or the operator is a broken test machine, not a case to
// handle.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]
// The operator's warp routes (its batch route, #19) nest deeper than the default limit of 128
// when this crate instantiates them; the operator's binary raises it the same way.
#![recursion_limit = "256"]

use alloy::{
    node_bindings::AnvilInstance,
    primitives::U256,
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{Deployment, devnet::LocalChain};
use plasma_operator::{Config, Node};
use plasma_sdk::{Wallet, WalletConfig};

/// A URL nothing answers on, whose port stays reserved for the rest of the test process.
///
/// Binding a listener to port 0 and dropping it gives the port back to the kernel, which may
/// hand the same port out again at once: two "dead" URLs in one test could then be equal (a
/// list of towers refused as `DuplicateUrl`), or a dead URL could come alive as another
/// test's server. Here the socket is bound but never listens, so a connection is refused
/// (RST) as from a host that is down, and it is leaked so nobody else can bind the port.
#[must_use]
pub fn dead_url() -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(([127, 0, 0, 1], 0).into()).unwrap();
    let url = format!("http://{}", socket.local_addr().unwrap());
    std::mem::forget(socket);
    url
}

/// The challenge period of the test deployments, in seconds.
pub const PERIOD: u64 = 60;

/// anvil with the contracts deployed by account 0 (the operator), and a directory for the
/// processes' data, removed when the `Env` is dropped.
#[derive(Debug)]
pub struct Env {
    /// The node (stops when dropped).
    pub anvil: AnvilInstance,
    /// A provider signing as account 0.
    pub provider: DynProvider,
    /// Where the contracts are.
    pub deployment: Deployment,
    /// Data of the operator, watchers and wallets.
    pub dir: tempfile::TempDir,
}

/// Starts anvil and deploys with a [`PERIOD`] challenge period.
pub async fn env() -> Env {
    let LocalChain { anvil, provider, deployment } = LocalChain::start(PERIOD).await.unwrap();
    Env { anvil, provider, deployment, dir: tempfile::tempdir().unwrap() }
}

/// Account `i`'s key.
pub fn key(env: &Env, i: usize) -> PrivateKeySigner {
    env.anvil.keys()[i].clone().into()
}

/// A devnet operator configuration for `env`: account 0's key, a free loopback port, 50 ms polls,
/// blocks every 100 ms; tests adjust it before [`Node::start`].
pub fn operator_config(env: &Env) -> Config {
    let mut c = Config::devnet();
    c.data_dir = env.dir.path().join("operator");
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.l1.rpc_url = env.anvil.endpoint();
    c.l1.framework = env.deployment.framework;
    c.l1.private_key = Some(format!("0x{}", hex::encode(env.anvil.keys()[0].to_bytes())));
    c.l1.poll_interval_ms = 50;
    c.block.interval_ms = 100;
    c
}

/// Starts the operator with [`operator_config`].
pub async fn operator(env: &Env) -> Node {
    Node::start(operator_config(env)).await.unwrap()
}

/// The wallet configuration of account `i` against `node`, its store in `env`'s directory.
pub fn wallet_config(env: &Env, node: &Node, i: usize) -> WalletConfig {
    WalletConfig {
        l1_rpc_url: env.anvil.endpoint(),
        operator_url: format!("http://{}", node.addr),
        framework: env.deployment.framework,
        chain_id: Some(env.anvil.chain_id()),
        store_path: env.dir.path().join(format!("wallet-{i}.redb")),
    }
}

/// Account `i`'s wallet against `node`.
pub async fn wallet(env: &Env, node: &Node, i: usize) -> Wallet {
    Wallet::connect(key(env, i), &wallet_config(env, node, i)).await.unwrap()
}

/// Moves L1 time `seconds` ahead and mines a block.
pub async fn advance(provider: &DynProvider, seconds: u64) {
    type Any = serde_json::Value;
    provider.raw_request::<_, Any>("evm_increaseTime".into(), (seconds,)).await.unwrap();
    provider.raw_request::<_, Any>("anvil_mine".into(), (1u64,)).await.unwrap();
}

/// `n` ether in wei.
pub fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}
