//! A local L1 for tests and benchmarks across the workspace: anvil from the repository's pinned npm
//! toolchain, with the contracts deployed. Behind the `devnet` feature, so that what runs in
//! production does not carry a node launcher.

use crate::{DeployConfig, DeployError, Deployment, deploy};
use alloy::{
    network::EthereumWallet,
    node_bindings::AnvilInstance,
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use std::path::PathBuf;

pub use alloy::node_bindings::Anvil;

/// Why a local chain did not start.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// anvil did not start (not installed: run `npm ci`, or set `ANVIL_BIN`).
    #[error("anvil from {path}: {reason}")]
    Anvil {
        /// The binary tried.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The contracts did not deploy.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// An anvil cheat call failed.
    #[error("anvil {method}: {reason}")]
    Cheat {
        /// The RPC method.
        method: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// Saves anvil's whole state (`evm_snapshot`) for [`revert_to`]; tests that run many cases on one
/// deployment start each from the same state.
pub async fn snapshot(provider: &DynProvider) -> Result<alloy::primitives::U256, DevnetError> {
    use alloy::providers::Provider;
    provider
        .raw_request("evm_snapshot".into(), ())
        .await
        .map_err(|e| DevnetError::Cheat { method: "evm_snapshot", reason: e.to_string() })
}

/// Returns anvil to snapshot `id` (`evm_revert`; anvil consumes the snapshot, so take a new one
/// to return again). `false` if anvil did not know the snapshot.
pub async fn revert_to(
    provider: &DynProvider,
    id: alloy::primitives::U256,
) -> Result<bool, DevnetError> {
    use alloy::providers::Provider;
    provider
        .raw_request("evm_revert".into(), (id,))
        .await
        .map_err(|e| DevnetError::Cheat { method: "evm_revert", reason: e.to_string() })
}

/// The anvil binary: `$ANVIL_BIN`, else the one `npm ci` installs at the workspace root.
pub fn anvil_binary() -> PathBuf {
    std::env::var_os("ANVIL_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/anvil"),
        PathBuf::from,
    )
}

/// An anvil launcher using [`anvil_binary`]; add arguments (a port, `--state`) before spawning.
pub fn anvil() -> Anvil {
    Anvil::at(anvil_binary())
}

/// A running anvil with the contracts deployed by its account 0 (the operator).
#[derive(Debug)]
pub struct LocalChain {
    /// The node; dropping it stops the node.
    pub anvil: AnvilInstance,
    /// A provider signing as account 0.
    pub provider: DynProvider,
    /// Where the contracts are.
    pub deployment: Deployment,
}

impl LocalChain {
    /// Starts anvil and deploys with [`DeployConfig::devnet`] and a challenge period of
    /// `exit_period` seconds.
    pub async fn start(exit_period: u64) -> Result<Self, DevnetError> {
        Self::start_with(anvil(), exit_period).await
    }

    /// As [`LocalChain::start`], with a launcher the caller configured (see [`anvil`]).
    pub async fn start_with(launcher: Anvil, exit_period: u64) -> Result<Self, DevnetError> {
        let anvil = launcher.try_spawn().map_err(|e| DevnetError::Anvil {
            path: anvil_binary().display().to_string(),
            reason: e.to_string(),
        })?;
        let key0: PrivateKeySigner = anvil.keys()[0].clone().into();
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(key0.clone()))
            .connect_http(anvil.endpoint_url())
            .erased();
        let deployment =
            deploy(provider.clone(), &DeployConfig::devnet(key0.address(), exit_period)).await?;
        Ok(Self { anvil, provider, deployment })
    }

    /// Account `i`'s key.
    pub fn key(&self, i: usize) -> PrivateKeySigner {
        self.anvil.keys()[i].clone().into()
    }

    /// Account `i`'s key as `0x`-hex, as the binaries take it from the environment.
    pub fn key_hex(&self, i: usize) -> String {
        format!("0x{}", alloy::primitives::hex::encode(self.anvil.keys()[i].to_bytes()))
    }

    /// A provider signing as account `i`.
    pub fn provider_for(&self, i: usize) -> DynProvider {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(self.key(i)))
            .connect_http(self.anvil.endpoint_url())
            .erased()
    }
}
