//! Deploying the whole system: framework, the three exit games, and their one-time binding.
//!
//! [`plan`] estimates every transaction's gas and the EIP-1559 fees before anything is sent, so a
//! deployer on a public network knows what to fund and can stop (`plasma-deploy --dry-run`);
//! [`deploy_with`] sends the transactions one after the other, each waited for to the requested
//! depth, and reports every transaction hash and the deployment block.

use alloy::{
    contract::Error as ContractError,
    primitives::{Address, TxHash, U256},
    providers::{PendingTransactionError, Provider},
    rpc::types::{TransactionReceipt, state::StateOverridesBuilder},
    transports::TransportError,
};
use std::time::Duration;

use crate::{BatchExitGame, InFlightExitGame, PlasmaFramework, StandardExitGame, TestToken};

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

    /// Checks what the contracts would refuse, before anything is sent.
    fn check(&self) -> Result<(), DeployError> {
        let gwei = U256::from(1_000_000_000u64);
        let bond = self.standard_exit_bond;
        if bond % gwei != U256::ZERO || bond / gwei >= U256::from(1u64 << 40) {
            return Err(DeployError::StandardExitBondNotGwei(bond));
        }
        Ok(())
    }
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

/// One transaction of a deployment, in the order they are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeployStep {
    /// Creating the framework.
    Framework,
    /// Creating the standard exit game.
    StandardExitGame,
    /// Creating the in-flight exit game.
    InFlightExitGame,
    /// Creating the batch exit game.
    BatchExitGame,
    /// `bindExitGames` on the framework (UPG-1): the chain is usable after it.
    BindExitGames,
    /// Creating the devnet's ERC-20 ([`TestToken`]); only with [`DeployOptions::test_token`].
    TestToken,
}

impl DeployStep {
    /// The step's name, as `contracts.json` keys it (camelCase).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Framework => "framework",
            Self::StandardExitGame => "standardExitGame",
            Self::InFlightExitGame => "inFlightExitGame",
            Self::BatchExitGame => "batchExitGame",
            Self::BindExitGames => "bindExitGames",
            Self::TestToken => "testToken",
        }
    }

    /// The steps of a deployment, in order. The test token comes last, so that the system's
    /// addresses (from the deployer's nonce) do not depend on whether it is deployed.
    pub fn all(test_token: bool) -> Vec<Self> {
        let mut steps = vec![
            Self::Framework,
            Self::StandardExitGame,
            Self::InFlightExitGame,
            Self::BatchExitGame,
            Self::BindExitGames,
        ];
        if test_token {
            steps.push(Self::TestToken);
        }
        steps
    }
}

impl std::fmt::Display for DeployStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// EIP-1559 fees per gas, in wei.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fees {
    /// `maxFeePerGas`: the most a transaction pays per gas (base fee + tip, capped).
    pub max_fee_per_gas: u128,
    /// `maxPriorityFeePerGas`: the tip to the block builder.
    pub max_priority_fee_per_gas: u128,
}

/// How a deployment is sent.
#[derive(Clone, Debug)]
pub struct DeployOptions {
    /// Blocks each transaction must be deep (1 = mined) before the next is sent. On a public
    /// network a few more than 1: a deployment transaction dropped by a reorganisation after the
    /// next one was sent would leave the later ones pointing at nothing.
    pub confirmations: u64,
    /// Also deploy the [`TestToken`] ERC-20 (devnets and testnets only: anyone can mint it).
    pub test_token: bool,
    /// Fees for every transaction; `None`: the provider estimates them per transaction.
    pub fees: Option<Fees>,
    /// How long one transaction may take to be mined and confirmed before giving up.
    pub timeout: Duration,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self { confirmations: 1, test_token: false, fees: None, timeout: Duration::from_secs(600) }
    }
}

/// A transaction's gas, as planned before sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedTx {
    /// Which step.
    pub step: DeployStep,
    /// Gas units.
    pub gas: u64,
    /// `true`: the node estimated it (`eth_estimateGas`); `false`: a bound computed from the
    /// bytecode's size, because the node refused the state override the estimate needs (the
    /// exit games read the framework, which does not exist yet).
    pub estimated: bool,
    /// The contract's address, for a creation: predicted from the deployer's nonce.
    pub address: Option<Address>,
}

/// What a deployment will cost, before anything is sent ([`plan`]).
#[derive(Clone, Debug)]
pub struct DeployPlan {
    /// The chain.
    pub chain_id: u64,
    /// Who pays.
    pub deployer: Address,
    /// The deployer's balance in wei.
    pub balance: U256,
    /// The deployer's next nonce (the framework's address follows from it).
    pub nonce: u64,
    /// Every transaction, in order.
    pub txs: Vec<PlannedTx>,
    /// The fees the estimate is priced at.
    pub fees: Fees,
    /// The latest block's base fee, if the chain has one.
    pub base_fee: Option<u128>,
}

impl DeployPlan {
    /// Total gas of every transaction.
    pub fn total_gas(&self) -> u64 {
        self.txs.iter().map(|t| t.gas).sum()
    }

    /// The most the deployment can cost: every transaction at `maxFeePerGas`.
    pub fn max_cost(&self) -> U256 {
        U256::from(self.total_gas()) * U256::from(self.fees.max_fee_per_gas)
    }

    /// What it likely costs at today's base fee plus the tip (the max fee when the chain has no
    /// base fee).
    pub fn likely_cost(&self) -> U256 {
        let per_gas = self.base_fee.map_or(self.fees.max_fee_per_gas, |b| {
            (b + self.fees.max_priority_fee_per_gas).min(self.fees.max_fee_per_gas)
        });
        U256::from(self.total_gas()) * U256::from(per_gas)
    }

    /// Where the system will land if nothing else is sent from the deployer first.
    pub fn predicted(&self) -> Deployment {
        predict(self.deployer, self.nonce)
    }
}

/// One sent and confirmed transaction of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentTx {
    /// Which step.
    pub step: DeployStep,
    /// Its hash.
    pub hash: TxHash,
    /// The L1 block it was mined in.
    pub block: u64,
    /// Gas it used.
    pub gas_used: u64,
    /// What it paid per gas, in wei.
    pub effective_gas_price: u128,
    /// The contract it created, for a creation.
    pub address: Option<Address>,
}

impl SentTx {
    /// What it cost, in wei.
    pub fn cost(&self) -> U256 {
        U256::from(self.gas_used) * U256::from(self.effective_gas_price)
    }
}

/// A finished deployment ([`deploy_with`]).
#[derive(Clone, Debug)]
pub struct DeployReport {
    /// The system's addresses.
    pub deployment: Deployment,
    /// The test ERC-20, if deployed.
    pub test_token: Option<Address>,
    /// Every transaction, in order.
    pub txs: Vec<SentTx>,
}

impl DeployReport {
    /// The L1 block the framework was created in: nothing of the system exists before it, so
    /// log scans can start there instead of at genesis.
    pub fn deploy_block(&self) -> u64 {
        self.txs.first().map_or(0, |t| t.block)
    }

    /// What the whole deployment cost, in wei.
    pub fn cost(&self) -> U256 {
        self.txs.iter().map(SentTx::cost).sum()
    }
}

/// What [`deploy_with`] reports while it runs.
#[derive(Clone, Copy, Debug)]
pub enum Progress {
    /// A transaction was sent and is being waited for.
    Sent {
        /// Which step.
        step: DeployStep,
        /// Its hash.
        hash: TxHash,
    },
    /// A transaction is mined and `confirmations` deep.
    Confirmed(SentTx),
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
    /// An RPC call failed.
    #[error("L1 RPC: {0}")]
    Rpc(#[from] TransportError),
    /// The node could not estimate a step's gas (it would revert, or the node refused).
    #[error("estimating the gas of {step}: {reason}")]
    Estimate {
        /// Which step.
        step: DeployStep,
        /// The node's answer.
        reason: String,
    },
    /// A transaction was mined but reverted.
    #[error("{step} reverted (tx {tx})")]
    Reverted {
        /// Which deployment step.
        step: DeployStep,
        /// The reverted transaction.
        tx: TxHash,
    },
    /// A creation's receipt names no contract.
    #[error("{step}: the receipt of tx {tx} names no created contract")]
    NoContract {
        /// Which step.
        step: DeployStep,
        /// The transaction.
        tx: TxHash,
    },
    /// A transaction was not mined and confirmed in time. It may still be mined: look it up
    /// before sending anything else from the deployer.
    #[error(
        "{step}: tx {tx} not mined and {confirmations} deep after {waited:?}; it may still be \
         mined (look it up before sending again: a new deployment would use the next nonce)"
    )]
    Timeout {
        /// Which step.
        step: DeployStep,
        /// The transaction.
        tx: TxHash,
        /// The depth waited for.
        confirmations: u64,
        /// How long.
        waited: Duration,
    },
    /// The standard exit bond is not a whole number of gwei below 2^40 gwei: the exit record keeps
    /// it in gwei (BOND-1), so the contract would refuse it (`StandardExitBondNotGwei`). Checked
    /// before anything is deployed.
    #[error("standard exit bond {0} wei is not a whole number of gwei below 2^40 gwei")]
    StandardExitBondNotGwei(U256),
}

/// The addresses a deployment from `deployer` starting at `nonce` creates (CREATE: sender and
/// nonce), in [`DeployStep::all`]'s order.
pub fn predict(deployer: Address, nonce: u64) -> Deployment {
    Deployment {
        framework: deployer.create(nonce),
        standard_exit_game: deployer.create(nonce + 1),
        in_flight_exit_game: deployer.create(nonce + 2),
        batch_exit_game: deployer.create(nonce + 3),
    }
}

/// The test token's address in a deployment from `deployer` starting at `nonce`.
pub fn predict_test_token(deployer: Address, nonce: u64) -> Address {
    deployer.create(nonce + 5)
}

/// A bound on a creation's gas when the node cannot estimate it: the intrinsic cost (21,000 +
/// 32,000 for a creation, calldata at 16 gas a byte, EIP-3860's 2 a word of init code), 200 a
/// byte of deployed code, and 500,000 for the constructor's own work (a few storage writes).
fn creation_bound(init_code_len: usize, runtime_len: usize) -> u64 {
    let (init, runtime) = (init_code_len as u64, runtime_len as u64);
    53_000 + 16 * init + 2 * init.div_ceil(32) + 200 * runtime + 500_000
}

/// `bindExitGames`' bound when the node cannot estimate it: three cold storage writes of new
/// slots (22,100 each), the event, the 21,000 base and the calldata, rounded up generously.
const BIND_BOUND: u64 = 150_000;

/// Estimates every transaction of a deployment from `deployer` and the fees they would pay now,
/// without sending anything. The exit games' constructors read the framework, which does not
/// exist yet: they (and `bindExitGames`) are estimated with the framework's code placed at its
/// predicted address by a state override; a node that refuses overrides gets a size bound.
pub async fn plan<P: Provider>(
    provider: &P,
    deployer: Address,
    config: &DeployConfig,
    test_token: bool,
) -> Result<DeployPlan, DeployError> {
    config.check()?;
    let chain_id = provider.get_chain_id().await?;
    let balance = provider.get_balance(deployer).await?;
    let nonce = provider.get_transaction_count(deployer).await?;
    let at = predict(deployer, nonce);
    let mut txs = Vec::new();
    for (i, step) in DeployStep::all(test_token).into_iter().enumerate() {
        // The framework's code at its address, and the deployer's nonce as it will be when this
        // step is sent: a creation estimated at today's nonce would land on the framework's
        // address and collide with the code placed there.
        let overrides = StateOverridesBuilder::default()
            .with_code(at.framework, PlasmaFramework::DEPLOYED_BYTECODE.clone())
            .with_nonce(deployer, nonce + i as u64)
            .build();
        let (init_len, runtime_len, address) = match step {
            DeployStep::Framework => (
                PlasmaFramework::BYTECODE.len(),
                PlasmaFramework::DEPLOYED_BYTECODE.len(),
                Some(at.framework),
            ),
            DeployStep::StandardExitGame => (
                StandardExitGame::BYTECODE.len(),
                StandardExitGame::DEPLOYED_BYTECODE.len(),
                Some(at.standard_exit_game),
            ),
            DeployStep::InFlightExitGame => (
                InFlightExitGame::BYTECODE.len(),
                InFlightExitGame::DEPLOYED_BYTECODE.len(),
                Some(at.in_flight_exit_game),
            ),
            DeployStep::BatchExitGame => (
                BatchExitGame::BYTECODE.len(),
                BatchExitGame::DEPLOYED_BYTECODE.len(),
                Some(at.batch_exit_game),
            ),
            DeployStep::BindExitGames => (0, 0, None),
            DeployStep::TestToken => (
                TestToken::BYTECODE.len(),
                TestToken::DEPLOYED_BYTECODE.len(),
                Some(predict_test_token(deployer, nonce)),
            ),
        };
        let estimate = match step {
            DeployStep::Framework => {
                PlasmaFramework::deploy_builder(
                    provider,
                    config.operator,
                    U256::from(config.min_exit_period),
                )
                .from(deployer)
                .estimate_gas()
                .await
            }
            DeployStep::StandardExitGame => {
                StandardExitGame::deploy_builder(
                    provider,
                    at.framework,
                    config.bond_admin,
                    config.standard_exit_bond,
                )
                .from(deployer)
                .state(overrides.clone())
                .estimate_gas()
                .await
            }
            DeployStep::InFlightExitGame => {
                InFlightExitGame::deploy_builder(
                    provider,
                    at.framework,
                    config.bond_admin,
                    config.in_flight_exit_bond,
                    config.piggyback_bond,
                )
                .from(deployer)
                .state(overrides.clone())
                .estimate_gas()
                .await
            }
            DeployStep::BatchExitGame => {
                BatchExitGame::deploy_builder(
                    provider,
                    at.framework,
                    config.bond_admin,
                    config.batch_exit_bond,
                    config.claim_bond,
                    config.demand_bond,
                )
                .from(deployer)
                .state(overrides.clone())
                .estimate_gas()
                .await
            }
            // The overridden code has no constructor run: its immutable `deployer` is zero, so
            // the estimate is sent from the zero address, which passes the same checks with the
            // same writes as the real call from the deployer.
            DeployStep::BindExitGames => {
                PlasmaFramework::new(at.framework, provider)
                    .bindExitGames(
                        at.standard_exit_game,
                        at.in_flight_exit_game,
                        at.batch_exit_game,
                    )
                    .from(Address::ZERO)
                    .state(overrides.clone())
                    .estimate_gas()
                    .await
            }
            DeployStep::TestToken => {
                TestToken::deploy_builder(provider).from(deployer).estimate_gas().await
            }
        };
        let planned = match estimate {
            Ok(gas) => PlannedTx { step, gas, estimated: true, address },
            // Without the override the exit games' estimates revert: fall back to a bound. The
            // framework and the token need none, so their failure is a real one.
            Err(e) if matches!(step, DeployStep::Framework | DeployStep::TestToken) => {
                return Err(DeployError::Estimate { step, reason: e.to_string() });
            }
            Err(_) => {
                let gas = if step == DeployStep::BindExitGames {
                    BIND_BOUND
                } else {
                    creation_bound(init_len, runtime_len)
                };
                PlannedTx { step, gas, estimated: false, address }
            }
        };
        txs.push(planned);
    }
    let estimation = provider.estimate_eip1559_fees().await?;
    let latest = provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await?;
    Ok(DeployPlan {
        chain_id,
        deployer,
        balance,
        nonce,
        txs,
        fees: Fees {
            max_fee_per_gas: estimation.max_fee_per_gas,
            max_priority_fee_per_gas: estimation.max_priority_fee_per_gas,
        },
        base_fee: latest.and_then(|b| b.header.base_fee_per_gas).map(u128::from),
    })
}

/// Deploys and wires the whole system with `provider`'s default sender, which must be able to pay
/// for it. The exit games are bound in the same run, so the chain is usable when this returns.
pub async fn deploy<P: Provider + Clone>(
    provider: P,
    config: &DeployConfig,
) -> Result<Deployment, DeployError> {
    let report = deploy_with(provider, config, &DeployOptions::default(), |_| {}).await?;
    Ok(report.deployment)
}

/// As [`deploy`], with `options` (confirmations, fees, the test token), reporting each
/// transaction through `progress` as it is sent and confirmed.
pub async fn deploy_with<P: Provider + Clone>(
    provider: P,
    config: &DeployConfig,
    options: &DeployOptions,
    mut progress: impl FnMut(Progress) + Send,
) -> Result<DeployReport, DeployError> {
    config.check()?;
    let mut txs = Vec::new();
    let mut send = async |step: DeployStep,
                          request: alloy::rpc::types::TransactionRequest|
           -> Result<SentTx, DeployError> {
        let mut request = request;
        if let Some(fees) = options.fees {
            request.max_fee_per_gas = Some(fees.max_fee_per_gas);
            request.max_priority_fee_per_gas = Some(fees.max_priority_fee_per_gas);
        }
        let pending = provider.send_transaction(request).await?;
        let hash = *pending.tx_hash();
        progress(Progress::Sent { step, hash });
        let receipt = tokio::time::timeout(
            options.timeout,
            confirmed(&provider, hash, options.confirmations.max(1)),
        )
        .await
        .map_err(|_| DeployError::Timeout {
            step,
            tx: hash,
            confirmations: options.confirmations.max(1),
            waited: options.timeout,
        })??;
        if !receipt.status() {
            return Err(DeployError::Reverted { step, tx: hash });
        }
        let sent = SentTx {
            step,
            hash,
            block: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
            effective_gas_price: receipt.effective_gas_price,
            address: receipt.contract_address,
        };
        if step != DeployStep::BindExitGames && sent.address.is_none() {
            return Err(DeployError::NoContract { step, tx: hash });
        }
        progress(Progress::Confirmed(sent));
        Ok(sent)
    };
    let created = |t: &SentTx| t.address.unwrap_or_default();

    let framework = send(
        DeployStep::Framework,
        PlasmaFramework::deploy_builder(
            provider.clone(),
            config.operator,
            U256::from(config.min_exit_period),
        )
        .into_transaction_request(),
    )
    .await?;
    txs.push(framework);
    let framework = created(&framework);
    let standard = send(
        DeployStep::StandardExitGame,
        StandardExitGame::deploy_builder(
            provider.clone(),
            framework,
            config.bond_admin,
            config.standard_exit_bond,
        )
        .into_transaction_request(),
    )
    .await?;
    txs.push(standard);
    let in_flight = send(
        DeployStep::InFlightExitGame,
        InFlightExitGame::deploy_builder(
            provider.clone(),
            framework,
            config.bond_admin,
            config.in_flight_exit_bond,
            config.piggyback_bond,
        )
        .into_transaction_request(),
    )
    .await?;
    txs.push(in_flight);
    let batch = send(
        DeployStep::BatchExitGame,
        BatchExitGame::deploy_builder(
            provider.clone(),
            framework,
            config.bond_admin,
            config.batch_exit_bond,
            config.claim_bond,
            config.demand_bond,
        )
        .into_transaction_request(),
    )
    .await?;
    txs.push(batch);
    let deployment = Deployment {
        framework,
        standard_exit_game: created(&standard),
        in_flight_exit_game: created(&in_flight),
        batch_exit_game: created(&batch),
    };
    let bind = send(
        DeployStep::BindExitGames,
        PlasmaFramework::new(framework, provider.clone())
            .bindExitGames(
                deployment.standard_exit_game,
                deployment.in_flight_exit_game,
                deployment.batch_exit_game,
            )
            .into_transaction_request(),
    )
    .await?;
    txs.push(bind);
    let mut test_token = None;
    if options.test_token {
        let token = send(
            DeployStep::TestToken,
            TestToken::deploy_builder(provider.clone()).into_transaction_request(),
        )
        .await?;
        test_token = token.address;
        txs.push(token);
    }
    Ok(DeployReport { deployment, test_token, txs })
}

/// Waits until transaction `hash` is mined and `confirmations` blocks deep, and returns its
/// receipt as of then. Read afresh at every poll: a transaction a reorganisation moves to another
/// block is followed there, one it drops is waited for again.
async fn confirmed<P: Provider>(
    provider: &P,
    hash: TxHash,
    confirmations: u64,
) -> Result<TransactionReceipt, DeployError> {
    let poll = provider.client().poll_interval().min(Duration::from_secs(4));
    loop {
        if let Some(receipt) = provider.get_transaction_receipt(hash).await?
            && let Some(block) = receipt.block_number
        {
            let head = provider.get_block_number().await?;
            // A transaction mined in block b has head - b + 1 confirmations.
            if head + 1 >= block + confirmations {
                return Ok(receipt);
            }
        }
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicted_addresses_follow_the_nonce_and_the_token_comes_last() {
        let me = Address::repeat_byte(7);
        let at = predict(me, 3);
        assert_eq!(at.framework, me.create(3));
        assert_eq!(at.batch_exit_game, me.create(6));
        assert_eq!(predict_test_token(me, 3), me.create(8));
        assert_eq!(DeployStep::all(true).last(), Some(&DeployStep::TestToken));
        assert_eq!(DeployStep::all(false).len(), 5);
        assert_eq!(
            DeployStep::all(true).iter().position(|s| *s == DeployStep::TestToken),
            Some(5),
            "the token's nonce is the deployer's + 5"
        );
    }

    #[test]
    fn the_size_bound_covers_the_code_deposit() {
        assert!(creation_bound(10_000, 9_000) > 200 * 9_000 + 53_000);
    }
}
