//! Everything that can go wrong for a wallet, each with what the user needs to know.

use crate::sources::{SourceAttempt, SourceFailure};
use alloy::primitives::{Address, B256, U256};

fn attempts_text(attempts: &[impl std::fmt::Display]) -> String {
    attempts.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// One operator URL's last failure in a request no URL of the list served (see
/// [`SdkError::OperatorsUnavailable`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorAttempt {
    /// The URL, redacted to scheme, host and port (a hosted operator's path may carry a key).
    pub url: String,
    /// What went wrong there: unreachable (refused, timed out, cut off), or refused with a
    /// server error (`NotLeader`, `ShuttingDown`, `StorageFailure`, a bare HTTP 5xx, …).
    pub failure: SourceFailure,
}

impl std::fmt::Display for OperatorAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.url, self.failure)
    }
}

/// A wallet failure.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The operator could not be reached (down, wrong URL).
    #[error("operator unreachable at {url}: {reason}")]
    OperatorUnreachable {
        /// Its URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Every URL of the wallet's operator list (an active operator and its standbys) failed a
    /// request for `rounds` rounds: down, timed out, a server error, or a standby refusing a
    /// write (`NotLeader`) while no URL of the list leads. Each URL's last failure, in list
    /// order. Only with several URLs: one URL alone fails with its own error, as before.
    #[error("no operator URL could serve {what} after {rounds} round(s): {}", attempts_text(.attempts))]
    OperatorsUnavailable {
        /// The request (`POST /v1/transactions`, `GET /v1/blocks/7`, …).
        what: String,
        /// How many times the whole list was tried.
        rounds: u32,
        /// Each URL's last failure, in list order.
        attempts: Vec<OperatorAttempt>,
    },
    /// A call to the operator (one URL or several) did not get an answer within its deadline
    /// ([`crate::FailoverPolicy::deadline`]): each URL's last failure, in list order (a URL
    /// asked when the deadline ran out: "no answer before the call's deadline").
    #[error("no operator URL could serve {what} within {deadline:?}: {}", attempts_text(.attempts))]
    OperatorDeadline {
        /// The request (`POST /v1/transactions`, `GET /v1/blocks/7`, …).
        what: String,
        /// The deadline that ran out.
        deadline: std::time::Duration,
        /// Each URL's last failure, in list order.
        attempts: Vec<OperatorAttempt>,
    },
    /// The operator refused a request with a typed error.
    #[error("operator refused: {code}: {message}")]
    OperatorRefused {
        /// Stable error code (see the operator's OpenAPI document).
        code: String,
        /// Its message.
        message: String,
    },
    /// A watchtower could not be reached or refused a request.
    #[error("watchtower at {url}: {reason}")]
    Watchtower {
        /// Its URL.
        url: String,
        /// Why (its typed error code and message when it answered).
        reason: String,
    },
    /// A read no source could serve (spec: DA-12): the operator and every configured tower
    /// failed, refused or served data that does not match L1; each is named with why.
    #[error("no source could serve {what}: {}", attempts_text(.attempts))]
    AllSourcesFailed {
        /// What was read.
        what: String,
        /// Each source's failure, in the order asked (the operator first).
        attempts: Vec<SourceAttempt>,
    },
    /// The operator answered something malformed.
    #[error("malformed answer from the operator: {0}")]
    BadOperatorResponse(String),
    /// The operator served data that does not match L1 (a wrong proof, root, timestamp or
    /// output): it is lying or broken, and the data was not stored.
    #[error("operator data for output {utxo_pos} does not match L1: {reason}")]
    ProofMismatch {
        /// The output.
        utxo_pos: String,
        /// What did not match.
        reason: String,
    },
    /// Not enough verified funds.
    #[error("insufficient funds in token {token}: need {needed}, have {available}")]
    InsufficientFunds {
        /// The token.
        token: Address,
        /// Amount asked for (with fee).
        needed: U256,
        /// Verified balance.
        available: U256,
    },
    /// The L1 node is on another chain than the wallet was configured for.
    #[error("wrong chain: L1 is chain {got}, the wallet expects {expected}")]
    WrongChain {
        /// Configured.
        expected: u64,
        /// Seen.
        got: u64,
    },
    /// An L1 call or transaction failed.
    #[error("L1: {0}")]
    L1(String),
    /// A transaction was not included before the deadline.
    #[error("transaction {0} not included in time")]
    Timeout(B256),
    /// The wallet has no stored proof for this output (sync first, or it is not ours).
    #[error("no stored proof for output {0}")]
    UnknownOutput(String),
    /// The local store was written for another chain or deployment (e.g. `scripts/devnet --reset`
    /// redeployed the framework at the same address on a new chain): its outputs do not exist here.
    #[error(
        "the store {path} belongs to {stored}, but L1 is {current}: the chain was reset or \
         redeployed, and the store's outputs do not exist on it. Set it aside (plasma --fresh-store \
         renames it) or give another --store"
    )]
    StoreOfAnotherChain {
        /// The store's file.
        path: String,
        /// What it was written for.
        stored: String,
        /// What L1 is now.
        current: String,
    },
    /// The output was spent on the child chain: a standard exit of it would be challenged with
    /// the spend and lose its bond (EXIT-4).
    #[error("output {utxo_pos} is spent ({evidence}): a standard exit of it would lose its bond")]
    OutputSpent {
        /// The output.
        utxo_pos: String,
        /// How the wallet knows.
        evidence: String,
    },
    /// The output is already leaving through the exit game (LEDGER-9): its standard exit started,
    /// or it is an input or piggybacked output of an in-flight exit.
    #[error("output {utxo_pos} is already exiting ({evidence})")]
    OutputExiting {
        /// The output.
        utxo_pos: String,
        /// Which exit.
        evidence: String,
    },
    /// The output is a live claim of a batch exit (EXIT-12): a standard exit of it would be
    /// challenged with the claim (CHAL-10) and lose its bond; the claim's payout pays it.
    #[error(
        "output {utxo_pos} is claimed by batch exit {batch_id} (claim {index}): a standard exit of \
         it would lose its bond (CHAL-10); the batch pays it (plasma payout once processed)"
    )]
    OutputBatchClaimed {
        /// The output.
        utxo_pos: String,
        /// The batch.
        batch_id: u64,
        /// The claim's index in the batch.
        index: u32,
    },
    /// This deployment has no batch exit game (deployed before batch exits).
    #[error("this deployment has no batch exit game")]
    NoBatchExitGame,
    /// The output was finalized on L1 (OUT-2): paid out, no exit can pay it again.
    #[error("output {0} is finalized on L1: it was already paid out")]
    OutputFinalized(String),
    /// The transaction that created the output is invalid (the operator is byzantine).
    #[error("output {utxo_pos} comes from an invalid transaction: {problem}")]
    OutputInvalid {
        /// The output.
        utxo_pos: String,
        /// What is wrong.
        problem: String,
    },
    /// The payment is proven committed under an L1 block commitment, in a block the operator
    /// serves whole and no configured watcher suspects: its outputs exit by standard exits, and
    /// an in-flight exit would only lock a bond.
    #[error(
        "payment {tx_hash} is committed in block {blknum} (index {tx_index}), proven under L1, and \
         the block is available: exit its outputs with standard exits; an in-flight exit would lock \
         a bond for nothing (if you know the block is invalid, use --force)"
    )]
    PaymentCommitted {
        /// The payment.
        tx_hash: B256,
        /// Its block.
        blknum: u64,
        /// Its index in the block.
        tx_index: u16,
    },
    /// An in-flight exit of this transaction already started (one per transaction, EXIT-6).
    #[error("an in-flight exit of {0} already started")]
    InFlightExitExists(B256),
    /// A payment package (what a sender hands a recipient, `Wallet::payment_package`) that is
    /// malformed, for another deployment, does not prove its inputs under L1, or does not pay
    /// this wallet: refused before any bond is paid.
    #[error("payment package refused, nothing was paid: {0}")]
    BadPackage(String),
    /// Fewer than two spendable outputs of the token: there is nothing to merge.
    #[error("nothing to consolidate in token {token}: {outputs} spendable output(s)")]
    NothingToConsolidate {
        /// The token.
        token: Address,
        /// Its spendable outputs.
        outputs: usize,
    },
    /// A consolidation whose fees would eat what it merges (or one merge's inputs): refused
    /// before anything is sent.
    #[error(
        "consolidating {value} of token {token} takes {payments} payment(s) costing {fees} in \
         fees: nothing (or not every merge) would be left"
    )]
    FeeExceedsValue {
        /// The token.
        token: Address,
        /// What would be merged (all of it, or the smallest merge).
        value: U256,
        /// The fees it would cost.
        fees: U256,
        /// The payments it needs.
        payments: usize,
    },
    /// Local storage failed.
    #[error("local store: {0}")]
    Store(String),
    /// Another process (another `plasma` command on the same wallet) held the store for longer
    /// than the wait allows: nothing was done.
    #[error(
        "the store {path} stayed in use by another plasma command for {waited_secs}s: nothing was \
         done; try again when it is finished"
    )]
    StoreLocked {
        /// The store's file.
        path: String,
        /// How long this command waited.
        waited_secs: u64,
    },
    /// A deposit mined on L1 that the operator did not credit in time. The funds are safe in
    /// the framework: depositing again would deposit twice.
    #[error(
        "the deposit is SAFE ON L1 (transaction {l1_tx}, output {utxo_pos}) but the operator has \
         not credited it after {waited_secs}s ({reason}). Do NOT deposit again: the funds are in \
         the framework contract; `plasma balance --sync` shows the output once the operator \
         credits it"
    )]
    DepositNotCredited {
        /// The L1 transaction of the deposit.
        l1_tx: String,
        /// The deposit output's position.
        utxo_pos: String,
        /// How long the wallet waited.
        waited_secs: u64,
        /// What the last attempt saw.
        reason: String,
    },
    /// An amount that cannot be sent (negative, zero, over-precise, too large, malformed),
    /// refused before anything was signed or sent.
    #[error(transparent)]
    Amount(#[from] crate::units::AmountError),
    /// An address that is malformed or fails its EIP-55 checksum.
    #[error(transparent)]
    Address(#[from] crate::units::AddressError),
    /// Bad key material or configuration.
    #[error("configuration: {0}")]
    Config(String),
}

impl SdkError {
    /// Whether retrying later may succeed (network trouble rather than a refusal or a lie).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::OperatorUnreachable { .. }
            | Self::OperatorsUnavailable { .. }
            | Self::OperatorDeadline { .. }
            | Self::L1(_)
            | Self::Timeout(_) => true,
            Self::AllSourcesFailed { attempts, .. } => {
                attempts.iter().any(|a| matches!(a.failure, SourceFailure::Unreachable(_)))
            }
            _ => false,
        }
    }

    /// Whether the read's sources could not be asked or answered badly (down, a 5xx, a broken
    /// answer, or all of them failing), as opposed to a verdict about the data: a re-check then
    /// goes on against L1 alone.
    pub const fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::OperatorUnreachable { .. }
                | Self::OperatorsUnavailable { .. }
                | Self::OperatorDeadline { .. }
                | Self::BadOperatorResponse(_)
                | Self::AllSourcesFailed { .. }
        )
    }
}

macro_rules! store_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for SdkError {
            fn from(e: $t) -> Self {
                Self::Store(e.to_string())
            }
        }
    )*};
}
store_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
