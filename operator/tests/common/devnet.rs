//! The devnet the integration tests run on: a real anvil with the contracts deployed, a
//! provider signing for the operator, alice and bob (anvil's accounts 0, 1, 2), and the operator
//! configuration they start from: anvil's first key as the operator's, a free loopback port, and
//! everything quick (50 ms polls, one confirmation, a block every 100 ms). Tests change what
//! they look at before starting a node.
//!
//! Included by `common/mod.rs` and by `common/ha.rs` (which the PostgreSQL tests include alone).

use alloy::{
    network::EthereumWallet,
    node_bindings::AnvilInstance,
    primitives::{Address, B256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{Deployment, devnet::LocalChain};
use plasma_operator::Config;
use plasma_spec::{Signer, SigningDomain};
use std::path::Path;

/// A running devnet with its three parties.
pub(crate) struct Chain {
    pub(crate) anvil: AnvilInstance,
    /// Signs for the operator, alice and bob (anvil's accounts 0, 1, 2).
    pub(crate) provider: DynProvider,
    pub(crate) deployment: Deployment,
    pub(crate) domain: SigningDomain,
    pub(crate) operator: Signer,
    pub(crate) alice: Signer,
    pub(crate) bob: Signer,
}

/// Starts anvil with the contracts (a 60 s exit period).
pub(crate) async fn chain() -> Chain {
    chain_on(plasma_contracts::devnet::anvil()).await
}

/// [`chain`] on an anvil the caller configured.
pub(crate) async fn chain_on(launcher: alloy::node_bindings::Anvil) -> Chain {
    let LocalChain { anvil, deployment, .. } =
        LocalChain::start_with(launcher, 60).await.expect("a devnet");
    let keys: Vec<PrivateKeySigner> =
        anvil.keys().iter().take(3).map(|k| k.clone().into()).collect();
    let mut wallet = EthereumWallet::new(keys[0].clone());
    wallet.register_signer(keys[1].clone());
    wallet.register_signer(keys[2].clone());
    let provider =
        ProviderBuilder::new().wallet(wallet).connect_http(anvil.endpoint_url()).erased();
    let spec_key = |i: usize| {
        Signer::from_bytes(&B256::from_slice(&anvil.keys()[i].to_bytes())).expect("anvil's key")
    };
    let domain = SigningDomain::new(anvil.chain_id(), deployment.framework);
    Chain {
        operator: spec_key(0),
        alice: spec_key(1),
        bob: spec_key(2),
        anvil,
        provider,
        deployment,
        domain,
    }
}

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
