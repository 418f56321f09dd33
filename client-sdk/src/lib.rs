//! The library wallets embed: keys, deposits, transfers, and exits that work from locally stored,
//! L1-verified proofs when the operator is down or lying. The `plasma` binary is a CLI around it.
//!
//! Nothing the operator says is trusted: every output is checked against the block commitment on
//! L1 before it is stored or counted ([`Wallet::sync`]), and a mismatch is
//! [`SdkError::ProofMismatch`].

mod client;
mod error;
mod store;
mod wallet;

pub use client::{BlockData, ExitData, Inclusion, ListedUtxo, OperatorClient};
pub use error::SdkError;
pub use store::{ChainIdentity, OutputStatus, ProofStore, StoredOutput, Verification};
pub use wallet::{SyncReport, Wallet, WalletConfig};
