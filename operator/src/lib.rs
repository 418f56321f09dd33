//! The plasma child-chain operator: accepts signed transactions over HTTP, packs them into
//! blocks, stores them durably (redb), commits each block's root to the framework contract on L1,
//! credits L1 deposits, and serves blocks, proofs, UTXOs and exit data (spec/06-operator.md).
//!
//! [`Node::start`] runs everything from a [`Config`]; the `plasma-operator` binary is a thin CLI
//! around it.

// The API's warp filter chain (`api.rs`) nests deeper than the default limit of 128 when the
// optimiser's release build instantiates it (E0275 on `AndFuture: Unpin`; the dev build is
// fine): as `plasma-testkit` and `benches/load.rs` do.
#![recursion_limit = "256"]

mod api;
mod blocks;
mod chain;
mod config;
mod da;
mod exits;
pub mod ingest;
mod l1;
mod leader;
mod merged_writes;
mod metrics;
mod node;
mod openapi;
mod store;
mod workers;

pub use blocks::{
    BlockInfo, EncodedBlock, ProduceStages, TILE_LEAVES, TX_GROUP, WIRE_CHUNK, leaves_of,
};
pub use chain::{Chain, ChainStatus, SubmitError, TxStatus};
pub use config::{
    ApiConfig, BlockConfig, Config, ConfigError, DaConfig, DaConfigError, FaultsConfig, HaConfig,
    L1Config, MAX_TOWERS, StoreConfig, TowerConfig,
};
pub use l1::{DepositFigures, Halt, L1Error, L1Health};
pub use leader::{HaNode, LeaderInfo, LeaseError, Role};
pub use node::{DEPOSIT_SLOTS_BEFORE_BLOCK, Node, NodeError};
pub use store::{
    Batch, BlockRecord, DEFAULT_CACHE_BYTES, DaHeaderRow, DaReceiptRow, Inclusion, Loaded, Lookup,
    POSTGRES_SCHEMA, PgOptions, SCHEMA, Store, StoreError, is_postgres_url, redact_url,
};
