//! Everything that can go wrong for a wallet, each with what the user needs to know.

use alloy::primitives::{Address, B256, U256};

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
    /// Local storage failed.
    #[error("local store: {0}")]
    Store(String),
    /// Bad key material or configuration.
    #[error("configuration: {0}")]
    Config(String),
}

impl SdkError {
    /// Whether retrying later may succeed (network trouble rather than a refusal or a lie).
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::OperatorUnreachable { .. } | Self::L1(_) | Self::Timeout(_))
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
