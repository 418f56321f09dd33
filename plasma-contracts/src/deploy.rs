//! Deploying the whole system: framework, exit games, and their one-time binding.

use alloy::{
    contract::Error as ContractError,
    primitives::{Address, U256},
    providers::{PendingTransactionError, Provider},
};

use crate::{PlasmaFramework, StandardExitGame};

/// What a deployment is parameterised by.
#[derive(Clone, Debug)]
pub struct DeployConfig {
    /// The only account allowed to submit child-block roots.
    pub operator: Address,
    /// The challenge period `p` in seconds (spec: EXIT-2): a week in production, seconds on a devnet.
    pub min_exit_period: u64,
    /// Who may propose (bounded, delayed) bond changes.
    pub bond_admin: Address,
    /// The standard exit bond in wei.
    pub standard_exit_bond: U256,
}

impl DeployConfig {
    /// A devnet configuration: `operator` also administers bonds; the bond is sized for a
    /// reference gas price of 20 gwei (spec: BOND-1).
    pub fn devnet(operator: Address, min_exit_period: u64) -> Self {
        Self {
            operator,
            min_exit_period,
            bond_admin: operator,
            standard_exit_bond: U256::from(
                Self::REFERENCE_GAS_PRICE * 2 * Self::STANDARD_CHALLENGE_GAS,
            ),
        }
    }

    /// The gas price bonds are sized against, in wei (20 gwei).
    pub const REFERENCE_GAS_PRICE: u64 = 20_000_000_000;
    /// Gas of a standard exit challenge, measured (docs/benchmarks.md), rounded up.
    pub const STANDARD_CHALLENGE_GAS: u64 = 120_000;
}

/// Where the system landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// The framework (also the EIP-712 verifying contract of the chain).
    pub framework: Address,
    /// The standard exit game.
    pub standard_exit_game: Address,
}

/// Why a deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A contract call or creation failed (RPC error, revert, out of gas).
    #[error("contract call failed: {0}")]
    Contract(#[from] ContractError),
    /// Waiting for a transaction's receipt failed.
    #[error("transaction not confirmed: {0}")]
    Pending(#[from] PendingTransactionError),
    /// A transaction was mined but reverted.
    #[error("{step} reverted (tx {tx})")]
    Reverted {
        /// Which deployment step.
        step: &'static str,
        /// The reverted transaction.
        tx: alloy::primitives::TxHash,
    },
}

/// Deploys and wires the whole system with `provider`'s default sender, which must be able to pay
/// for it. The exit games are bound in the same run, so the chain is usable when this returns.
pub async fn deploy<P: Provider + Clone>(
    provider: P,
    config: &DeployConfig,
) -> Result<Deployment, DeployError> {
    let framework = PlasmaFramework::deploy(
        provider.clone(),
        config.operator,
        U256::from(config.min_exit_period),
    )
    .await?;
    let standard = StandardExitGame::deploy(
        provider.clone(),
        *framework.address(),
        config.bond_admin,
        config.standard_exit_bond,
    )
    .await?;
    let receipt = framework
        .bindExitGames(*standard.address(), Address::ZERO)
        .send()
        .await?
        .get_receipt()
        .await?;
    if !receipt.status() {
        return Err(DeployError::Reverted { step: "bindExitGames", tx: receipt.transaction_hash });
    }
    Ok(Deployment { framework: *framework.address(), standard_exit_game: *standard.address() })
}
