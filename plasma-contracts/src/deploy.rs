//! Deploying the whole system: framework, the three exit games, and their one-time binding.

use alloy::{
    contract::Error as ContractError,
    primitives::{Address, U256},
    providers::{PendingTransactionError, Provider},
};

use crate::{BatchExitGame, InFlightExitGame, PlasmaFramework, StandardExitGame};

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
    /// The in-flight exit bond in wei.
    pub in_flight_exit_bond: U256,
    /// The piggyback bond in wei.
    pub piggyback_bond: U256,
    /// The batch exit bond in wei (the processing bounty's source; BOND-3).
    pub batch_exit_bond: U256,
    /// The bond per batch claim in wei (twice a claim challenge's gas; BOND-3).
    pub claim_bond: U256,
    /// The demand bond in wei (twice a demand answer's gas; BOND-3).
    pub demand_bond: U256,
}

impl DeployConfig {
    /// A devnet configuration: `operator` also administers bonds; the bond is sized for a
    /// reference gas price of 20 gwei (spec: BOND-1).
    pub fn devnet(operator: Address, min_exit_period: u64) -> Self {
        Self {
            operator,
            min_exit_period,
            bond_admin: operator,
            standard_exit_bond: Self::bond_for(Self::STANDARD_CHALLENGE_GAS),
            in_flight_exit_bond: Self::bond_for(Self::CANONICITY_CHALLENGE_GAS),
            piggyback_bond: Self::bond_for(Self::PIGGYBACK_CHALLENGE_GAS),
            batch_exit_bond: Self::bond_for(Self::BATCH_PROCESS_GAS),
            claim_bond: Self::bond_for(Self::CLAIM_CHALLENGE_GAS),
            demand_bond: Self::bond_for(Self::DEMAND_ANSWER_GAS),
        }
    }

    /// Twice `challenge_gas` at the reference gas price (spec: BOND-1): challenging always pays.
    pub const fn bond_for(challenge_gas: u64) -> U256 {
        U256::from_limbs([Self::REFERENCE_GAS_PRICE * 2 * challenge_gas, 0, 0, 0])
    }

    /// The gas price bonds are sized against, in wei (20 gwei).
    pub const REFERENCE_GAS_PRICE: u64 = 20_000_000_000;
    /// Gas of a standard exit challenge, measured (docs/benchmarks.md), rounded up.
    pub const STANDARD_CHALLENGE_GAS: u64 = 100_000;
    /// Gas of a canonicity challenge of an in-flight exit, measured, rounded up.
    pub const CANONICITY_CHALLENGE_GAS: u64 = 150_000;
    /// Gas of a piggyback challenge (input or output spent), measured, rounded up.
    pub const PIGGYBACK_CHALLENGE_GAS: u64 = 150_000;
    /// Gas of processing one batch exit (its share of a `processExits` call, constant per batch),
    /// rounded up: the batch bond's half is its processing bounty (EXIT-14, BOND-3).
    pub const BATCH_PROCESS_GAS: u64 = 100_000;
    /// Gas of the costliest claim challenge, rounded up (BOND-3): CHAL-6 with a 5-output payment
    /// proven at the claim's position in a 5,000-claim batch measured 82.5k of execution for the
    /// check alone (forge, `test_GasChallengeAndAnswer`), about 160k for the whole transaction with
    /// the strike's writes, its calldata (~1.3 kB of proofs) and the 21k base.
    pub const CLAIM_CHALLENGE_GAS: u64 = 200_000;
    /// Gas of answering a demand (CHAL-9: the claim's transaction proven at its position), rounded
    /// up: 115k of execution measured on the same batch, about 160k for the whole transaction.
    pub const DEMAND_ANSWER_GAS: u64 = 200_000;
}

/// Where the system landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// The framework (also the EIP-712 verifying contract of the chain).
    pub framework: Address,
    /// The standard exit game.
    pub standard_exit_game: Address,
    /// The in-flight exit game.
    pub in_flight_exit_game: Address,
    /// The batch exit game.
    pub batch_exit_game: Address,
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
    /// The standard exit bond is not a whole number of gwei below 2^48 gwei: the exit record keeps
    /// it in gwei (BOND-1), so the contract would refuse it (`StandardExitBondNotGwei`). Checked
    /// before anything is deployed.
    #[error("standard exit bond {0} wei is not a whole number of gwei below 2^48 gwei")]
    StandardExitBondNotGwei(U256),
}

/// Deploys and wires the whole system with `provider`'s default sender, which must be able to pay
/// for it. The exit games are bound in the same run, so the chain is usable when this returns.
pub async fn deploy<P: Provider + Clone>(
    provider: P,
    config: &DeployConfig,
) -> Result<Deployment, DeployError> {
    let gwei = U256::from(1_000_000_000u64);
    let bond = config.standard_exit_bond;
    if bond % gwei != U256::ZERO || bond / gwei >= U256::from(1u64 << 48) {
        return Err(DeployError::StandardExitBondNotGwei(bond));
    }
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
    let in_flight = InFlightExitGame::deploy(
        provider.clone(),
        *framework.address(),
        config.bond_admin,
        config.in_flight_exit_bond,
        config.piggyback_bond,
    )
    .await?;
    let batch = BatchExitGame::deploy(
        provider.clone(),
        *framework.address(),
        config.bond_admin,
        config.batch_exit_bond,
        config.claim_bond,
        config.demand_bond,
    )
    .await?;
    let receipt = framework
        .bindExitGames(*standard.address(), *in_flight.address(), *batch.address())
        .send()
        .await?
        .get_receipt()
        .await?;
    if !receipt.status() {
        return Err(DeployError::Reverted { step: "bindExitGames", tx: receipt.transaction_hash });
    }
    Ok(Deployment {
        framework: *framework.address(),
        standard_exit_game: *standard.address(),
        in_flight_exit_game: *in_flight.address(),
        batch_exit_game: *batch.address(),
    })
}
