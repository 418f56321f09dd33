//! The plasma protocol as code.
//!
//! This crate is `spec/` made executable: the types, their canonical encoding, EIP-712 signing
//! and signer recovery, the block Merkle tree, the ledger state transition and the pure
//! predicates of the exit game. Every other crate (operator, watcher, SDK, contract bindings)
//! builds on it, and the shared test vectors in `spec/vectors/` are generated from it, so the
//! Solidity contracts and the Rust code check themselves against the same answers.
//!
//! Functions cite the rule they implement as `spec: RULE-N`; the rules are in `spec/*.md`.
//!
//! # Feature flags
//! - `test-utils`: deterministic keys and builders for other crates' tests.

pub mod batch_exit;
pub mod batch_verify;
mod constants;
mod error;
mod exit_game;
mod exiting;
mod ledger;
mod merkle;
mod msm;
pub mod pages;
mod position;
pub mod routes;
mod signing;
mod tx;
pub mod vectors;
pub mod wire;

#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

pub use constants::{
    BLOCK_OFFSET, CHILD_BLOCK_INTERVAL, EIP712_NAME, EIP712_VERSION, MAX_INPUTS, MAX_OUTPUTS,
    MAX_SIGNED_TX_BYTES, MAX_TX_BYTES, MAX_TXS_PER_BLOCK, SIGNATURE_LEN, TREE_DEPTH, TX_OFFSET,
    encoded_tx_len,
};
pub use error::{
    BlockError, DecodeError, LedgerError, MerkleError, PositionError, SignatureError, TxError,
};
pub use exit_game::*;
pub use exiting::{
    ExitEvent, ExitMark, ExitSource, ExitingOutputs, SpendRule, WithExits, exit_spend_grace,
};
pub use ledger::{
    BlockBuilder, BlockDiff, UtxoSet, UtxoView, validate_child_block, validate_deposit_block,
    validate_payment,
};
pub use merkle::{
    BlockTree, PROOF_LEN, PlasmaHasher, Proof, deposit_block_root, leaf_hash, leaf_message,
    leaf_message_of, leaves_and_hashes, node_hash, parent_level, root_of_leaves, zero_hashes,
};
pub use position::{UtxoPos, is_deposit_block};
pub use signing::{ExitAuthorization, Signer, SigningDomain, recover_signer, recover_signer_key};
pub use tx::{Output, SignedTransaction, TokenSums, Transaction, TxType, output_id};
