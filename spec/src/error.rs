//! Every way an input can break a rule of the protocol, one enum per concern.
//!
//! Each variant names the rule it enforces and carries the values that prove the breach. Each
//! enum has a `code()`: a stable name used by the shared test vectors and by the operator's API,
//! so clients can match on it across versions.

use crate::position::UtxoPos;
use alloy_primitives::{Address, B256, U256};

/// An integer that is not exactly one valid UTXO position (spec: POS-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PositionError {
    /// Block number zero holds nothing.
    #[error("position is in block 0")]
    ZeroBlock,
    /// The block number does not fit 64 bits.
    #[error("position's block number does not fit 64 bits")]
    BlockTooLarge,
    /// The transaction index is beyond the last leaf of the tree.
    #[error("transaction index {tx_index} is beyond the last leaf")]
    TxIndex {
        /// The offending index.
        tx_index: u64,
    },
    /// The output index is not below `MAX_OUTPUTS`.
    #[error("output index {output_index} is out of range")]
    OutputIndex {
        /// The offending index.
        output_index: u64,
    },
}

/// Bytes that are not the one canonical encoding of a value (spec: ENC-2, ENC-3).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Longer than any valid encoding; refused before decoding.
    #[error("{len} bytes is more than the maximum {max}")]
    TooLarge {
        /// Length received.
        len: usize,
        /// Largest length a valid value can have.
        max: usize,
    },
    /// Not an ABI encoding of the expected type at all.
    #[error("malformed encoding: {reason}")]
    Malformed {
        /// What the ABI decoder said.
        reason: String,
    },
    /// Decodes, but is not the canonical encoding: trailing bytes, unusual offsets, dirty
    /// padding. Two encodings of one value would give one transaction two hashes.
    #[error("non-canonical encoding")]
    NonCanonical,
}

impl DecodeError {
    /// The stable name of the rejection.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "TooLarge",
            Self::Malformed { .. } => "Malformed",
            Self::NonCanonical => "NonCanonical",
        }
    }
}

/// A transaction that is invalid whatever the state (spec: TX).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// spec: TX-1.
    #[error("unknown transaction type {tx_type}")]
    UnknownTxType {
        /// The type found.
        tx_type: u8,
    },
    /// spec: TX-2.
    #[error("a type {tx_type} transaction cannot have {count} inputs")]
    WrongInputCount {
        /// The transaction's type.
        tx_type: u8,
        /// Inputs found.
        count: usize,
    },
    /// spec: TX-2.
    #[error("a type {tx_type} transaction cannot have {count} outputs")]
    WrongOutputCount {
        /// The transaction's type.
        tx_type: u8,
        /// Outputs found.
        count: usize,
    },
    /// spec: TX-3.
    #[error("input {input} appears twice")]
    DuplicateInput {
        /// The repeated position.
        input: UtxoPos,
    },
    /// spec: TX-3.
    #[error("input {input_index} is not a valid position: {source}")]
    InvalidPosition {
        /// Which input.
        input_index: usize,
        /// Why.
        source: PositionError,
    },
    /// spec: TX-4.
    #[error("output {output_index} has a zero amount")]
    ZeroAmount {
        /// Which output.
        output_index: usize,
    },
    /// spec: TX-4.
    #[error("output {output_index} is owned by the zero address")]
    ZeroOwner {
        /// Which output.
        output_index: usize,
    },
    /// spec: TX-5, LEDGER-3.
    #[error("amounts of token {token} overflow uint256")]
    AmountOverflow {
        /// The token whose sum overflowed.
        token: Address,
    },
}

impl TxError {
    /// The stable name of the rejection.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::UnknownTxType { .. } => "UnknownTxType",
            Self::WrongInputCount { .. } => "WrongInputCount",
            Self::WrongOutputCount { .. } => "WrongOutputCount",
            Self::DuplicateInput { .. } => "DuplicateInput",
            Self::InvalidPosition { .. } => "InvalidPosition",
            Self::ZeroAmount { .. } => "ZeroAmount",
            Self::ZeroOwner { .. } => "ZeroOwner",
            Self::AmountOverflow { .. } => "AmountOverflow",
        }
    }
}

/// A signature that cannot stand for any signer (spec: SIG).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// spec: SIG-2.
    #[error("{inputs} inputs but {signatures} signatures")]
    SignatureCountMismatch {
        /// Inputs of the transaction.
        inputs: usize,
        /// Signatures supplied.
        signatures: usize,
    },
    /// spec: SIG-3: not 65 bytes, or `r`/`s` zero or not below the curve order.
    #[error("signature {index} is malformed")]
    MalformedSignature {
        /// Which signature.
        index: usize,
    },
    /// spec: SIG-3: `s` in the upper half of the curve order, the malleable twin of a valid one.
    #[error("signature {index} has a high s value")]
    HighS {
        /// Which signature.
        index: usize,
    },
    /// spec: SIG-3: `v` other than 27 or 28.
    #[error("signature {index} has recovery byte {v}, expected 27 or 28")]
    BadRecoveryId {
        /// Which signature.
        index: usize,
        /// The byte found.
        v: u8,
    },
    /// No public key recovers from the signature and digest.
    #[error("no key recovers from signature {index}")]
    RecoveryFailed {
        /// Which signature.
        index: usize,
    },
}

impl SignatureError {
    /// The stable name of the rejection.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::SignatureCountMismatch { .. } => "SignatureCountMismatch",
            Self::MalformedSignature { .. } => "MalformedSignature",
            Self::HighS { .. } => "HighS",
            Self::BadRecoveryId { .. } => "BadRecoveryId",
            Self::RecoveryFailed { .. } => "RecoveryFailed",
        }
    }
}

/// A transaction or block that the UTXO set refuses (spec: LEDGER).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// Stateless rules.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// Signature rules.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// spec: LEDGER-1: the input is not in the UTXO set (never existed, or spent before this block).
    #[error("input {input} is not an unspent output")]
    InputNotFound {
        /// The missing position.
        input: UtxoPos,
    },
    /// spec: LEDGER-9: the input is leaving the child chain through the exit game (its standard
    /// exit, an in-flight exit spending it, or its piggyback started on L1 at `since`).
    #[error("input {input} is exiting on L1 since {since} (LEDGER-9)")]
    OutputExiting {
        /// The exiting position.
        input: UtxoPos,
        /// L1 timestamp of the exit-game event that took it.
        since: u64,
    },
    /// spec: LEDGER-6: the input was already spent by an earlier transaction of the same block.
    #[error("input {input} was already spent in this block by {first_spent_in}")]
    DoubleSpend {
        /// The twice-spent position.
        input: UtxoPos,
        /// Hash of the transaction that spent it first.
        first_spent_in: B256,
    },
    /// spec: SIG-4.
    #[error("input {input_index} is owned by {owner} but signed by {signer}")]
    WrongSigner {
        /// Which input.
        input_index: usize,
        /// The owner of the spent output.
        owner: Address,
        /// Who signed.
        signer: Address,
    },
    /// spec: LEDGER-3.
    #[error("token {token}: outputs {outputs} exceed inputs {inputs}")]
    ValueCreated {
        /// The token.
        token: Address,
        /// Sum of the inputs of that token.
        inputs: U256,
        /// Sum of the outputs of that token.
        outputs: U256,
    },
    /// spec: LEDGER-6: deposit transactions only live in deposit blocks.
    #[error("a deposit transaction cannot be in a child block")]
    DepositTxInChildBlock,
    /// spec: LEDGER-6: the fee transaction must be the block's last.
    #[error("the fee transaction is not the last of its block")]
    FeeTxNotLast,
    /// spec: LEDGER-6.
    #[error("a block can hold only one fee transaction")]
    MultipleFeeTxs,
    /// spec: LEDGER-6: the fee transaction claims more than the block's payments paid.
    #[error(
        "fee transaction claims {claimed} of token {token} but the block collected {collected}"
    )]
    FeeExceedsCollected {
        /// The token.
        token: Address,
        /// Fees of that token paid by the block's payments.
        collected: U256,
        /// What the fee transaction claims.
        claimed: U256,
    },
    /// spec: LEDGER-6.
    #[error("a block holds at most 65536 transactions, got {count}")]
    TooManyTxs {
        /// Transactions in the block.
        count: usize,
    },
    /// spec: LEDGER-7: a deposit block holds exactly one deposit transaction.
    #[error("a deposit block must hold exactly one deposit transaction")]
    NotADepositTx,
    /// spec: POS-3: a child block numbered like a deposit block or the other way round.
    #[error("block {blknum} is not a {expected} block")]
    WrongBlockKind {
        /// The block number.
        blknum: u64,
        /// The kind the caller asked for.
        expected: &'static str,
    },
}

impl LedgerError {
    /// The stable name of the rejection, forwarded from the inner enum where there is one.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Tx(e) => e.code(),
            Self::Signature(e) => e.code(),
            Self::InputNotFound { .. } => "InputNotFound",
            Self::OutputExiting { .. } => "OutputExiting",
            Self::DoubleSpend { .. } => "DoubleSpend",
            Self::WrongSigner { .. } => "WrongSigner",
            Self::ValueCreated { .. } => "ValueCreated",
            Self::DepositTxInChildBlock => "DepositTxInChildBlock",
            Self::FeeTxNotLast => "FeeTxNotLast",
            Self::MultipleFeeTxs => "MultipleFeeTxs",
            Self::FeeExceedsCollected { .. } => "FeeExceedsCollected",
            Self::TooManyTxs { .. } => "TooManyTxs",
            Self::NotADepositTx => "NotADepositTx",
            Self::WrongBlockKind { .. } => "WrongBlockKind",
        }
    }

    /// Whether the error is about the transaction alone (true) or about it against the current
    /// state (false). A stateless rejection will never succeed; a stateful one may after a
    /// deposit is credited or a block lands.
    pub const fn is_stateless(&self) -> bool {
        matches!(self, Self::Tx(_) | Self::Signature(_))
    }
}

/// A block that breaks a ledger rule, with the index of the first offending transaction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("transaction {tx_index} of block {blknum}: {error}")]
pub struct BlockError {
    /// The block number.
    pub blknum: u64,
    /// Index of the first transaction that broke a rule (0 for block-level rules).
    pub tx_index: usize,
    /// The rule broken.
    pub error: LedgerError,
}

/// A tree or proof that cannot be built or read (spec: MERKLE).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// More leaves than the fixed-depth tree has.
    #[error("{count} leaves do not fit a tree of 65536")]
    TooManyLeaves {
        /// Leaves given.
        count: usize,
    },
    /// No leaf at that index.
    #[error("leaf index {index} is out of range (len {len})")]
    IndexOutOfRange {
        /// Index asked for.
        index: usize,
        /// Leaves present.
        len: usize,
    },
    /// A proof is exactly 512 bytes (spec: MERKLE-4).
    #[error("a proof is 512 bytes, got {len}")]
    ProofLength {
        /// Length received.
        len: usize,
    },
}
