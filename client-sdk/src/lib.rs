//! The library wallets embed: keys, deposits, transfers, and exits that work from locally stored,
//! L1-verified proofs when the operator is down or lying. The `plasma` binary is a CLI around it.
//!
//! Nothing the operator says is trusted: every output is checked against the block commitment on
//! L1 before it is stored or counted ([`Wallet::sync`]), and a mismatch is
//! [`SdkError::ProofMismatch`].
//!
//! With towers configured ([`Wallet::with_towers`], spec DA-12), every read falls back from the
//! operator to each tower in turn when the operator fails, refuses (`BlockWithheld`) or serves
//! data that does not verify; [`Wallet::restore`] recovers a wallet from its key alone.
//!
//! With several operator URLs ([`WalletConfig::operator_url`] `"http://a,http://b"`: an active
//! operator and its standbys), every request fails over between them ([`FailoverPolicy`]): a
//! URL that is down, times out, answers a 5xx or refuses a write as a standby (`NotLeader`) is
//! left for the next, and a payment sent again is safe (the operator applies it once, by hash).

mod client;
mod error;
mod sources;
mod store;
mod sync;
pub mod units;
mod wallet;

pub use client::{
    BlockData, DEFAULT_PAGE_SIZE, ExitData, FailoverPolicy, Inclusion, InclusionItem, ListedUtxo,
    MAX_INCLUSIONS, MAX_JSON_ANSWER, OperatorClient, UtxoPage,
};
pub use error::{OperatorAttempt, SdkError};
pub use sources::{SourceAttempt, SourceFailure, SourceId};
pub use store::{
    Balances, BatchClaimRef, ChainIdentity, HistoryEntry, HistoryKind, LOCK_NOTICE_AFTER,
    LOCK_WAIT, OutputStatus, ProofStore, SpentSource, StoredOutput, SyncRecord, TokenInfo, Touch,
    Verification, on_lock_wait,
};
pub use sync::{SyncOptions, SyncProgress};
pub use wallet::{
    BatchChunk, BatchExitOptions, BatchExitReport, ConsolidateOptions, ConsolidateReport,
    DEFAULT_BATCH_CLAIMS, ExitChunk, ExitReport, ExitTiming, MAX_BATCH_CLAIMS_PER_TX, MergePayment,
    PAYMENT_PACKAGE_VERSION, PackageInput, PaymentPackage, PayoutChunk, PayoutReport,
    RecipientExit, RestoreReport, SourceReport, SyncReport, TX_GAS_CAP, Wallet, WalletConfig,
};
