//! The operator configuration the integration tests start from: the devnet's, on a real anvil
//! with the contracts deployed, anvil's first key as the operator's, a free loopback port, and
//! everything quick (50 ms polls, one confirmation, a block every 100 ms). Tests change what
//! they look at before starting a node.
//!
//! Included by `common/mod.rs` and by `common/ha.rs` (which the PostgreSQL tests include alone).

use alloy::{node_bindings::AnvilInstance, primitives::Address};
use plasma_operator::Config;
use std::path::Path;

/// The devnet config for the contracts at `framework` on `anvil`, keeping its data in
/// `data_dir`.
pub(crate) fn devnet_config(anvil: &AnvilInstance, framework: Address, data_dir: &Path) -> Config {
    let mut c = Config::devnet();
    c.data_dir = data_dir.into();
    c.listen = "127.0.0.1:0".parse().expect("a socket address");
    c.l1.rpc_url = anvil.endpoint();
    c.l1.framework = framework;
    c.l1.private_key = Some(format!("0x{}", hex::encode(anvil.keys()[0].to_bytes())));
    c.l1.poll_interval_ms = 50;
    c.l1.deposit_confirmations = 1;
    c.l1.commit_confirmations = 1;
    c.block.interval_ms = 100;
    c
}
