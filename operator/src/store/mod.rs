//! Durable state behind one interface with two backends (issue #21):
//! - **redb** (`redb.rs`, the default): one embedded file, one process;
//! - **PostgreSQL** (`postgres.rs`, `--store postgres://…`): several operator processes share
//!   one database, one of them leader; every write is fenced by the leader epoch.
//!
//! Both give the same guarantees the operator is built on: every [`Batch`] is applied in one
//! transaction, durably, before the call returns (an acknowledged change survives a crash of
//! the process or of the database's machine), and a produced block is durable together with its
//! effects or not at all (OP-3). The same tests run against both (`tests` below), and a seeded
//! differential test (`tests/store_differential.rs`) checks that they answer every read alike.

mod postgres;
mod redb;
/// Connection set-up with a deadline, shared with the lease's connections (A21c-5).
pub(crate) use postgres::connect as pg_connect;
/// TLS to PostgreSQL, shared with the lease's connection (`crate::leader`).
pub(crate) use postgres::tls as pg_tls;

pub(crate) use postgres::{DEFAULT_CALL_DEADLINE, MIN_CALL_DEADLINE};
pub use postgres::{POSTGRES_SCHEMA, PgOptions};

use crate::blocks::{BlockInfo, EncodedBlock};
use alloy::primitives::{Address, B256};
use plasma_spec::{Output, UtxoPos};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Meta key: the store's schema version.
pub(crate) const SCHEMA_VERSION: &str = "schema_version";
/// The embedded (redb) store's schema this version writes (PostgreSQL's is
/// [`POSTGRES_SCHEMA`]): 3 = blocks in the wire form with a proof and transaction
/// index, in rows sized to fill redb's pages (OP-9); 4 = the same rows, with a block's effects
/// written behind it (`EFFECTS_PENDING`, #19), which an older binary must not open. Version 1
/// (no key, blocks as JSON) and version 2 (the same pieces in rows one page size too big) are
/// migrated at open, version 3 has its number raised; a newer one is refused. 5 = a block made
/// from its transaction groups keeps no wire rows in redb: its wire form is served from the
/// groups through a map (`WireMap`, #19), which an older binary would not read; blocks stored
/// before keep their rows and are served from them, so 3 and 4 have their number raised.
pub const SCHEMA: u64 = 5;
/// Meta key: the number the next child block will get.
pub(crate) const NEXT_CHILD_BLOCK: &str = "next_child_block";
/// Meta key: the last L1 block whose deposits were credited.
pub(crate) const DEPOSIT_CURSOR: &str = "deposit_cursor";
/// The child block stored without its effects on the tables yet (0 or absent: none). Set with the
/// block, cleared with its effects (`chain::Applier`); a start writes them if it is set.
pub(crate) const EFFECTS_PENDING: &str = "effects_pending";
/// Meta key: the last L1 block whose exit-game events were applied (OP-7).
pub(crate) const EXIT_CURSOR: &str = "exit_cursor";
/// Meta key: blocks committed without `k` receipts after the wait (DA, `/v1/status`).
pub(crate) const DA_QUORUM_MISSED: &str = "da_quorum_missed";

/// A block's availability header as stored: the fields of `DaHeader(uint64 blknum,bytes32
/// txRoot,uint64 dataLen,uint16 k,uint16 n,bytes32 chunkRoot)` and the operator's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaHeaderRow {
    /// The block.
    pub blknum: u64,
    /// The block's Merkle root (the root committed on L1).
    pub tx_root: B256,
    /// Bytes of the block's wire form.
    pub data_len: u64,
    /// Chunks to rebuild from.
    pub k: u16,
    /// Chunks (towers).
    pub n: u16,
    /// Root of the chunk tree (DA-3).
    pub chunk_root: B256,
    /// The operator's 65-byte signature of the header's EIP-712 digest.
    pub signature: Vec<u8>,
}

impl DaHeaderRow {
    const LEN: usize = 32 + 8 + 2 + 2 + 32 + 65;

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(self.tx_root.as_slice());
        out.extend_from_slice(&self.data_len.to_be_bytes());
        out.extend_from_slice(&self.k.to_be_bytes());
        out.extend_from_slice(&self.n.to_be_bytes());
        out.extend_from_slice(self.chunk_root.as_slice());
        out.extend_from_slice(&self.signature);
        out
    }

    fn from_bytes(blknum: u64, b: &[u8]) -> Result<Self, StoreError> {
        if b.len() != Self::LEN {
            return Err(StoreError::Corrupt {
                what: "da header",
                reason: format!("{blknum}: {} bytes", b.len()),
            });
        }
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let mut len = [0u8; 8];
        len.copy_from_slice(&b[32..40]);
        Ok(Self {
            blknum,
            tx_root: B256::from_slice(&b[..32]),
            data_len: u64::from_be_bytes(len),
            k: u16_at(40),
            n: u16_at(42),
            chunk_root: B256::from_slice(&b[44..76]),
            signature: b[76..].to_vec(),
        })
    }
}

/// A tower's receipt for one chunk of a block, as stored (its signature checked before).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaReceiptRow {
    /// The chunk index (= the tower's index).
    pub index: u16,
    /// The tower's address, which the signature recovers to.
    pub tower: alloy::primitives::Address,
    /// The tower's 65-byte signature of `DaReceipt(blknum, chunkRoot, index)`.
    pub signature: Vec<u8>,
}

/// A stored block: a child block's signed transactions, or a deposit block's deposit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// The block number.
    pub blknum: u64,
    /// Merkle root (MERKLE).
    pub root: B256,
    /// Child blocks: signed transactions (ENC-4). Deposit blocks: the deposit transaction (ENC-1).
    pub txs: Vec<alloy::primitives::Bytes>,
    /// The L1 timestamp of the block's commitment, once it is committed.
    pub l1_timestamp: Option<u64>,
    /// The L1 transaction that committed it.
    pub l1_tx: Option<B256>,
}

/// Storage failures. All of them are fatal for the request that hit them and nothing is changed
/// (on PostgreSQL, a commit whose acknowledgement was lost is looked up before answering: see
/// `store/postgres.rs`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] ::redb::Error),
    /// A stored record does not decode: the database was corrupted or written by another version.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The store was written by a newer version of the operator, in a schema this one does not
    /// know: refused rather than misread (OP-9).
    #[error("the store has schema version {found}; this operator reads versions 1 to {supported}")]
    UnsupportedSchema {
        /// The version found.
        found: u64,
        /// The newest this version reads.
        supported: u64,
    },
    /// A PostgreSQL write was refused by fencing (issue #21): the lease row's epoch is not the
    /// one this process was given by [`Store::set_fence`] (another operator took over, or this
    /// one was never made leader). Nothing was changed.
    #[error(
        "fenced: this operator writes as epoch {ours:?}, the database's leader epoch is {current:?}"
    )]
    Fenced {
        /// The epoch this process writes as (`None`: [`Store::set_fence`] was never called).
        ours: Option<u64>,
        /// The epoch in `plasma_leader` (`None`: no leader row).
        current: Option<u64>,
    },
    /// PostgreSQL failed: a connection or SQL error, or a commit whose outcome could not be
    /// learnt (then the store refuses every further write: see `store/postgres.rs`). Never
    /// carries the connection URL's password.
    #[error("postgres: {0}")]
    Postgres(String),
}

impl StoreError {
    /// Whether this is [`StoreError::Fenced`]: another operator leads, this one must stop.
    pub const fn is_fenced(&self) -> bool {
        matches!(self, Self::Fenced { .. })
    }
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                Self::Db(e.into())
            }
        }
    )*};
}
redb_errors!(
    ::redb::DatabaseError,
    ::redb::TransactionError,
    ::redb::TableError,
    ::redb::StorageError,
    ::redb::CommitError
);

/// What loading the store at start-up yields.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every unspent output.
    pub utxos: Vec<(UtxoPos, Output)>,
    /// The mempool, in arrival order.
    pub mempool: Vec<(u64, Vec<u8>)>,
    /// Meta values.
    pub next_child_block: Option<u64>,
    /// Deposit cursor.
    pub deposit_cursor: Option<u64>,
    /// Child blocks not yet committed on L1, in order.
    pub uncommitted: Vec<u64>,
    /// Exit cursor (OP-7).
    pub exit_cursor: Option<u64>,
    /// The exiting outputs (LEDGER-9).
    pub exiting: plasma_spec::ExitingOutputs,
}

/// One atomic change: applied in one write transaction (redb or PostgreSQL).
#[derive(Debug, Default)]
pub struct Batch {
    /// Outputs spent.
    pub spent: Vec<UtxoPos>,
    /// Outputs created.
    pub created: Vec<(UtxoPos, Output)>,
    /// New blocks, encoded (OP-9).
    pub blocks: Vec<EncodedBlock>,
    /// Info rows rewritten (a commitment recorded, moved or dropped).
    pub block_infos: Vec<BlockInfo>,
    /// Transactions indexed: hash → (block, index).
    pub txs: Vec<(B256, u64, u32)>,
    /// Mempool entries added.
    pub mempool_add: Vec<(u64, Vec<u8>)>,
    /// Mempool entries removed.
    pub mempool_remove: Vec<u64>,
    /// Meta values set.
    pub meta: Vec<(&'static str, u64)>,
    /// The exiting outputs, when they changed (LEDGER-9).
    pub exiting: Option<plasma_spec::ExitingOutputs>,
}

/// One transaction of a stored block with its proof, read from the index (OP-9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// The block.
    pub info: BlockInfo,
    /// The stored transaction: signed (ENC-4) in a child block, the deposit (ENC-1) in a deposit
    /// block.
    pub stored: Vec<u8>,
    /// The leaf preimage (`txBytes` of exit data).
    pub tx_bytes: Vec<u8>,
    /// The inclusion proof (MERKLE-4, 512 bytes).
    pub proof: Vec<u8>,
}

/// What looking a transaction up by position found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No such block.
    UnknownBlock,
    /// The block has fewer transactions.
    OutOfRange {
        /// Transactions in the block.
        tx_count: u32,
    },
    /// Found.
    Found(Box<Inclusion>),
}

/// Default size of the database's page cache: the operator's memory for serving is bounded by
/// it (redb's own default is 1 GiB).
pub const DEFAULT_CACHE_BYTES: usize = 128 * 1024 * 1024;

/// Output bytes in the UTXO table ([`Output::to_packed`]).
fn decode_output(b: &[u8]) -> Result<Output, StoreError> {
    Output::from_packed(b)
        .ok_or_else(|| StoreError::Corrupt { what: "utxo", reason: format!("{} bytes", b.len()) })
}

/// Key of the exiting outputs' single row.
const EXITING_KEY: &str = "exiting";

/// The exiting outputs as stored (JSON, one row under [`EXITING_KEY`]).
fn exiting_to_json(exiting: &plasma_spec::ExitingOutputs) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(exiting)
        .map_err(|e| StoreError::Corrupt { what: "exiting", reason: e.to_string() })
}

/// The stored exiting outputs' row, decoded.
fn exiting_from_json(json: &[u8]) -> Result<plasma_spec::ExitingOutputs, StoreError> {
    serde_json::from_slice(json)
        .map_err(|e| StoreError::Corrupt { what: "exiting", reason: e.to_string() })
}

/// The rows of a [`Batch`] but its blocks, built once for both backends, which only write them
/// (redb into its tables in this order, PostgreSQL one bulk statement a table):
/// - each key once: the last entry of a key listed twice, which is what writing the entries in
///   order leaves (one SQL statement may not touch a row twice; redb's unstable sort of the
///   outputs would have kept either);
/// - in key order: the B-trees' pages (redb's, PostgreSQL's indexes) are visited once each,
///   not at random;
/// - outputs packed ([`Output::to_packed`]) with their owner (PostgreSQL's `(owner, pos)`
///   index), info rows and the exiting set serialised.
///
/// Spent outputs are removed before created ones are written and mempool entries added before
/// removals, in both backends.
#[derive(Debug, Default)]
struct Rows {
    /// Outputs spent.
    spent: Vec<UtxoPos>,
    /// Outputs created: position, owner, packed output.
    created: Vec<(UtxoPos, Address, [u8; Output::PACKED_LEN])>,
    /// Info rows rewritten: block number, [`BlockInfo::to_bytes`].
    infos: Vec<(u64, Vec<u8>)>,
    /// Transactions indexed: hash, block, index.
    txs: Vec<(B256, u64, u32)>,
    /// Mempool entries added: sequence number, signed transaction.
    mempool_add: Vec<(u64, Vec<u8>)>,
    /// Mempool entries removed.
    mempool_remove: Vec<u64>,
    /// Meta values set.
    meta: Vec<(&'static str, u64)>,
    /// The exiting outputs as JSON, when they changed.
    exiting: Option<Vec<u8>>,
}

/// `items` sorted by `key` with only the last entry of each key (the sort is stable: of equal
/// keys, the one listed last stays last).
fn last_per_key<T, K: Ord>(mut items: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    items.sort_by_key(&key);
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        match out.last_mut() {
            Some(last) if key(last) == key(&item) => *last = item,
            _ => out.push(item),
        }
    }
    out
}

impl Rows {
    fn of(batch: &Batch) -> Result<Self, StoreError> {
        let mut spent: Vec<UtxoPos> = batch.spent.clone();
        spent.sort_unstable_by_key(|p| p.to_u128());
        spent.dedup();
        let created = last_per_key(batch.created.iter().collect(), |(p, _)| p.to_u128())
            .into_iter()
            .map(|(pos, out)| (*pos, out.owner, out.to_packed()))
            .collect();
        let infos = last_per_key(batch.block_infos.iter().collect(), |i| i.blknum)
            .into_iter()
            .map(|info| (info.blknum, info.to_bytes()))
            .collect();
        let txs = last_per_key(batch.txs.clone(), |(hash, _, _)| *hash);
        let mempool_add = last_per_key(batch.mempool_add.iter().collect(), |(seq, _)| *seq)
            .into_iter()
            .map(|(seq, bytes)| (*seq, bytes.clone()))
            .collect();
        let mut mempool_remove = batch.mempool_remove.clone();
        mempool_remove.sort_unstable();
        mempool_remove.dedup();
        let meta = last_per_key(batch.meta.clone(), |(key, _)| *key);
        let exiting = batch.exiting.as_ref().map(exiting_to_json).transpose()?;
        Ok(Self { spent, created, infos, txs, mempool_add, mempool_remove, meta, exiting })
    }
}

/// A block's rows, as both backends store them (OP-9): the info row, the wire form in
/// [`crate::WIRE_CHUNK`]-byte rows, a row a proof tile, the tree's top, the deflated
/// transaction groups end to end in `TX_ROW`-byte rows and their offsets — the same rows in
/// both, so both serve the same bytes. Row numbers are the rows' indexes here.
struct BlockRows<'a> {
    blknum: u64,
    info: Vec<u8>,
    wire: Vec<&'a [u8]>,
    tiles: Vec<&'a [u8]>,
    top: &'a [u8],
    tx_rows: Vec<&'a [u8]>,
    tx_offsets: &'a [u8],
}

impl<'a> BlockRows<'a> {
    fn of(b: &'a EncodedBlock) -> Self {
        Self {
            blknum: b.info.blknum,
            info: b.info.to_bytes(),
            wire: b.wire.chunks(crate::WIRE_CHUNK).collect(),
            tiles: b.tiles.iter().map(Vec::as_slice).collect(),
            top: &b.top,
            tx_rows: b.tx_stream.chunks(crate::blocks::TX_ROW).collect(),
            tx_offsets: &b.tx_offsets,
        }
    }
}

/// A block's wire rows read back whole: refused unless they are as long as its info says.
fn check_wire(info: &BlockInfo, wire: &[u8]) -> Result<(), StoreError> {
    if wire.len() as u64 == info.wire_len {
        return Ok(());
    }
    Err(StoreError::Corrupt {
        what: "block wire rows",
        reason: format!("{}: {} bytes, info says {}", info.blknum, wire.len(), info.wire_len),
    })
}

/// A stored block decoded from its wire form; refused unless its header is the info row's.
fn block_of(info: &BlockInfo, wire: &[u8]) -> Result<BlockRecord, StoreError> {
    let blknum = info.blknum;
    let (header, txs) = plasma_spec::wire::decode_block(wire)
        .map_err(|e| StoreError::Corrupt { what: "block", reason: format!("{blknum}: {e}") })?;
    if header.root != info.root || header.blknum != blknum {
        return Err(StoreError::Corrupt { what: "block", reason: format!("{blknum}: header") });
    }
    Ok(BlockRecord {
        blknum,
        root: info.root,
        txs,
        l1_timestamp: info.l1_timestamp,
        l1_tx: info.l1_tx,
    })
}

impl DaReceiptRow {
    /// The stored value: the tower's address (20 bytes), then its signature.
    fn to_value(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(20 + self.signature.len());
        value.extend_from_slice(self.tower.as_slice());
        value.extend_from_slice(&self.signature);
        value
    }

    fn from_value(blknum: u64, index: u16, v: &[u8]) -> Result<Self, StoreError> {
        if v.len() < 20 {
            return Err(StoreError::Corrupt {
                what: "da receipt",
                reason: format!("{blknum}: {} bytes", v.len()),
            });
        }
        Ok(Self { index, tower: Address::from_slice(&v[..20]), signature: v[20..].to_vec() })
    }
}

/// Transaction `index` of a block read from its index rows (OP-9), as both backends do: the
/// info row says whether it is there; its proof comes from a tile and the tree's top; it is
/// cut from its deflated group, which lies in one or two `block_txs` rows ([`Self::first_row`]
/// to [`Self::last_row`], fed to [`Self::add_row`] in order).
struct TxRead {
    info: BlockInfo,
    index: u32,
    range: std::ops::Range<u64>,
    group: Vec<u8>,
    proof: Vec<u8>,
}

impl TxRead {
    /// The tile row holding `index`'s proof, or what to answer without reading further.
    fn tile(info: &BlockInfo, index: u32) -> Result<u32, Lookup> {
        if index >= info.tx_count {
            return Err(Lookup::OutOfRange { tx_count: info.tx_count });
        }
        Ok(crate::blocks::tile_of(info.tx_count as usize, index as usize))
    }

    /// The error for a row of the block that should be there and is not (or is short).
    fn missing(info: &BlockInfo, index: u32, what: &'static str) -> StoreError {
        StoreError::Corrupt { what, reason: format!("block {} tx {index}", info.blknum) }
    }

    /// From the tile, the tree's top and the group offsets rows (`None`: not found).
    fn new(
        info: BlockInfo,
        index: u32,
        tile: Option<&[u8]>,
        top: Option<&[u8]>,
        offsets: Option<&[u8]>,
    ) -> Result<Self, StoreError> {
        let tile = tile.ok_or_else(|| Self::missing(&info, index, "proof tile"))?;
        let top = top.ok_or_else(|| Self::missing(&info, index, "tree top"))?;
        let proof = crate::blocks::tree_proof(tile, top, index as usize)?;
        let offsets = offsets.ok_or_else(|| Self::missing(&info, index, "tx offsets"))?;
        let range = crate::blocks::group_range(offsets, index as usize / crate::blocks::TX_GROUP)?;
        let group = Vec::with_capacity((range.end - range.start) as usize);
        Ok(Self { info, index, range, group, proof })
    }

    fn row_of(at: u64) -> u32 {
        (at / crate::blocks::TX_ROW as u64) as u32
    }

    /// The first `block_txs` row holding the group.
    fn first_row(&self) -> u32 {
        Self::row_of(self.range.start)
    }

    /// The last `block_txs` row holding the group.
    fn last_row(&self) -> u32 {
        Self::row_of(self.range.end.saturating_sub(1).max(self.range.start))
    }

    /// Takes the group's part of `block_txs` row `row_no`.
    fn add_row(&mut self, row_no: u32, data: &[u8]) -> Result<(), StoreError> {
        let row = crate::blocks::TX_ROW as u64;
        let base = u64::from(row_no) * row;
        let from = self.range.start.saturating_sub(base) as usize;
        let to = (self.range.end - base).min(row) as usize;
        let part =
            data.get(from..to).ok_or_else(|| Self::missing(&self.info, self.index, "tx row"))?;
        self.group.extend_from_slice(part);
        Ok(())
    }

    /// The transaction with its proof, once every row of its group is in.
    fn finish(self) -> Result<Lookup, StoreError> {
        if self.group.len() as u64 != self.range.end - self.range.start {
            return Err(Self::missing(&self.info, self.index, "tx group"));
        }
        let stored =
            crate::blocks::group_tx(&self.group, self.index as usize % crate::blocks::TX_GROUP)?;
        let tx_bytes = crate::blocks::tx_bytes_of(self.info.blknum, &stored)?;
        Ok(Lookup::Found(Box::new(Inclusion {
            info: self.info,
            stored,
            tx_bytes,
            proof: self.proof,
        })))
    }
}

/// The operator's durable state, in redb or in PostgreSQL.
#[derive(Debug)]
pub struct Store {
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Redb(redb::RedbStore),
    Postgres(postgres::PgStore),
}

/// Calls the same method on whichever backend this is.
macro_rules! dispatch {
    ($self:ident.$method:ident($($arg:expr),*)) => {
        match &$self.backend {
            Backend::Redb(s) => s.$method($($arg),*),
            Backend::Postgres(s) => s.$method($($arg),*),
        }
    };
}

impl Store {
    /// Opens (or creates) the redb database at `path` with the default cache.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the redb database at `path` with a page cache of `cache_bytes`. A store
    /// of schema 1 (blocks as JSON) or 2 (the rows of OP-9 in the old sizes) is migrated block
    /// by block, each block in one transaction, so an interrupted migration resumes; a store of
    /// a newer schema is refused (OP-9).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        Ok(Self { backend: Backend::Redb(redb::RedbStore::open_with_cache(path, cache_bytes)?) })
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user:password@host:port/db`)
    /// with a pool of `options.pool` connections on the store's own threads, and applies the
    /// checked-in migrations (`operator/migrations/`) it lacks; a database migrated by a newer
    /// operator is refused ([`StoreError::UnsupportedSchema`]). Writes are refused
    /// ([`StoreError::Fenced`]) until [`Store::set_fence`] gives this process its leader epoch.
    pub fn open_postgres(url: &str, options: &PgOptions) -> Result<Self, StoreError> {
        Ok(Self { backend: Backend::Postgres(postgres::PgStore::open(url, options)?) })
    }

    /// Opens the store `spec` names: a `postgres://` or `postgresql://` URL is PostgreSQL (a
    /// pool of the default size), anything else a redb file at that path, used as given; an
    /// empty `spec` is the default, `data_dir/operator.redb`.
    pub fn open_spec(spec: &str, data_dir: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        if is_postgres_url(spec) {
            Self::open_postgres(spec, &PgOptions::default())
        } else if spec.is_empty() {
            Self::open_with_cache(&data_dir.join("operator.redb"), cache_bytes)
        } else {
            Self::open_with_cache(Path::new(spec), cache_bytes)
        }
    }

    /// `"redb"` or `"postgres"`.
    pub const fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Redb(_) => "redb",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// From now on every write checks, inside its transaction, that the lease row's epoch is
    /// `epoch` (PostgreSQL; see `postgres.rs` for why this makes a deposed leader's writes
    /// harmless). On redb, a no-op: one process owns the file.
    pub fn set_fence(&self, epoch: u64) {
        if let Backend::Postgres(s) = &self.backend {
            s.set_fence(epoch);
        }
    }

    /// Why this store refuses every write for good, if it does: PostgreSQL poisons itself when
    /// the answer to a `COMMIT` was lost and the database could not be asked whether it
    /// happened (`postgres.rs`); only reloading from the database clears it. A leader whose
    /// store is poisoned can no longer lead and gives the lease up (A21b-3, `leader.rs`).
    /// `None` on redb, which never guesses about a commit.
    pub fn poisoned(&self) -> Option<String> {
        match &self.backend {
            Backend::Redb(_) => None,
            Backend::Postgres(s) => s.poisoned(),
        }
    }

    /// [`Self::poisoned`] as a probe for another thread that must not hold the store (dropping
    /// a PostgreSQL store joins its threads, which may be stuck on a silent database).
    pub(crate) fn poison_probe(&self) -> std::sync::Arc<dyn Fn() -> Option<String> + Send + Sync> {
        match &self.backend {
            Backend::Redb(_) => std::sync::Arc::new(|| None),
            Backend::Postgres(s) => std::sync::Arc::new(s.poison_probe()),
        }
    }

    /// Applies `batch` atomically and durably.
    pub fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        dispatch!(self.apply(batch))
    }

    /// [`Store::apply`] of `batch` and of one more block, encoded by `encode` on another thread
    /// while this one writes the batch's rows (a produced block's effects), in the same write
    /// transaction: nothing is durable, or visible, before the commit of both (OP-3). Returns the
    /// block's info and how long this thread spent on the rows, then on the block's rows and
    /// the commit with its fsync (waiting for the encoding first).
    pub fn apply_with_block<F>(
        &self,
        batch: &Batch,
        encode: F,
    ) -> Result<(BlockInfo, Duration, Duration), StoreError>
    where
        F: FnOnce() -> Result<EncodedBlock, StoreError> + Send,
    {
        dispatch!(self.apply_with_block(batch, encode))
    }

    /// Reads everything the in-memory state is rebuilt from (one consistent snapshot).
    pub fn load(&self) -> Result<Loaded, StoreError> {
        dispatch!(self.load())
    }

    /// A stored block's info row.
    pub fn block_info(&self, blknum: u64) -> Result<Option<BlockInfo>, StoreError> {
        dispatch!(self.block_info(blknum))
    }

    /// A stored block, decoded whole: for deposit blocks and small child blocks (a full child
    /// block is served from [`Store::wire_chunk`], never decoded).
    pub fn block(&self, blknum: u64) -> Result<Option<BlockRecord>, StoreError> {
        dispatch!(self.block(blknum))
    }

    /// The stored wire bytes of `blknum` from `offset` to the end of the row that holds it (at
    /// most [`crate::WIRE_CHUNK`] bytes); empty at or past the end.
    pub fn wire_chunk(&self, blknum: u64, offset: u64) -> Result<Vec<u8>, StoreError> {
        dispatch!(self.wire_chunk(blknum, offset))
    }

    /// A block's whole wire form (OP-9) with its info row, read in one transaction: what the
    /// availability code encodes (DA-1).
    pub fn wire(&self, blknum: u64) -> Result<Option<(BlockInfo, Vec<u8>)>, StoreError> {
        dispatch!(self.wire(blknum))
    }

    /// Stores a block's availability header and marks the block pending (its chunks are being
    /// pushed). A different header stored before for the block (another `k`, `n` or tower set
    /// after a restart) is replaced and its receipts are deleted: they name the old chunk root.
    /// Returns whether receipts were dropped so.
    pub fn put_da_header(&self, header: &DaHeaderRow) -> Result<bool, StoreError> {
        dispatch!(self.put_da_header(header))
    }

    /// A block's stored availability header.
    pub fn da_header(&self, blknum: u64) -> Result<Option<DaHeaderRow>, StoreError> {
        dispatch!(self.da_header(blknum))
    }

    /// Stores a tower's receipt (checked by the caller against the stored header), durably.
    pub fn put_da_receipt(&self, blknum: u64, receipt: &DaReceiptRow) -> Result<(), StoreError> {
        dispatch!(self.put_da_receipt(blknum, receipt))
    }

    /// A block's stored receipts, by chunk index.
    pub fn da_receipts(&self, blknum: u64) -> Result<Vec<DaReceiptRow>, StoreError> {
        dispatch!(self.da_receipts(blknum))
    }

    /// Blocks whose chunks were still being pushed when the operator stopped.
    pub fn da_pending(&self) -> Result<Vec<u64>, StoreError> {
        dispatch!(self.da_pending())
    }

    /// The block's chunks are no longer pushed (every tower answered, the block is final, or the
    /// pushes gave up).
    pub fn clear_da_pending(&self, blknum: u64) -> Result<(), StoreError> {
        dispatch!(self.clear_da_pending(blknum))
    }

    /// Transaction `index` of block `blknum` with its proof, read in one transaction from the
    /// block's index rows; the block is never decoded (OP-9).
    pub fn inclusion(&self, blknum: u64, index: u32) -> Result<Lookup, StoreError> {
        dispatch!(self.inclusion(blknum, index))
    }

    /// Where a transaction was included.
    pub fn tx_location(&self, hash: &B256) -> Result<Option<(u64, u32)>, StoreError> {
        dispatch!(self.tx_location(hash))
    }

    /// [`Store::tx_location`] of each of `hashes`, in order, in one read (one query with
    /// PostgreSQL).
    pub fn tx_locations(&self, hashes: &[B256]) -> Result<Vec<Option<(u64, u32)>>, StoreError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self.tx_locations(hashes))
    }

    /// A meta value.
    pub fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        dispatch!(self.meta(key))
    }

    /// One unspent output (standbys serve it without an in-memory UTXO set).
    pub fn utxo(&self, pos: UtxoPos) -> Result<Option<Output>, StoreError> {
        dispatch!(self.utxo(pos))
    }

    /// Up to `limit` of `owner`'s unspent outputs after `after`, in position order, and whether
    /// there are more. PostgreSQL reads them from its `(owner, pos)` index; redb scans its UTXO
    /// table (keyed by position only), which is fine for its single operator, who serves owners
    /// from memory.
    pub fn utxos_page(
        &self,
        owner: Address,
        after: Option<UtxoPos>,
        limit: usize,
    ) -> Result<(Vec<(UtxoPos, Output)>, bool), StoreError> {
        dispatch!(self.utxos_page(owner, after, limit))
    }

    /// The highest stored block number (child or deposit).
    pub fn head(&self) -> Result<Option<u64>, StoreError> {
        dispatch!(self.head())
    }

    /// The exiting outputs (LEDGER-9) as the leader last stored them: one row (empty when none
    /// was ever stored). A standby filters its `/v1/utxos` with it; a leader keeps them in memory.
    pub fn exiting(&self) -> Result<plasma_spec::ExitingOutputs, StoreError> {
        dispatch!(self.exiting())
    }

    /// Up to `limit` mempool entries (sequence number, signed transaction) after sequence number
    /// `after` (exclusive; `None`: from the first), in order. What a standby learns the
    /// leader's pending transactions from, a bounded page at a time (the mempool holds at most
    /// `api.max_mempool` entries).
    pub fn mempool_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        dispatch!(self.mempool_page(after, limit))
    }
}

/// Whether `spec` names a PostgreSQL database rather than a redb file: exactly the prefixes the
/// client (`postgres::Config`) parses as a URL, so that what is elected on is what connects.
pub fn is_postgres_url(spec: &str) -> bool {
    spec.starts_with("postgres://") || spec.starts_with("postgresql://")
}

/// A PostgreSQL URL cut where the client (`tokio-postgres`' `UrlParser`) cuts it — one splitter
/// for the redaction ([`redact_url`]) and for the TLS options (`pg_tls`), so that what is hidden
/// is exactly what the client takes for the credentials.
///
/// The client's rule: the credentials run from `://` to the FIRST `@` anywhere after it (so
/// a password may hold `/`, `?`, `#`, `:` unencoded, and libpq-style "authority ends at `/`"
/// splitting is wrong for it); then the host list up to `/` or `?`, the database up to `?`, and
/// the query to the end. `#` is nothing special to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PgUrlParts<'a> {
    /// `postgres://` or `postgresql://`.
    pub(crate) scheme: &'a str,
    /// Between `://` and the first `@` (user, then `:password`), if there is an `@`.
    pub(crate) credentials: Option<&'a str>,
    /// Host list and path: after the credentials' `@`, up to the query's `?`.
    pub(crate) location: &'a str,
    /// After the first `?` that follows the credentials, if any.
    pub(crate) query: Option<&'a str>,
}

impl<'a> PgUrlParts<'a> {
    /// `url` cut as the client cuts it; `None` if it is not a PostgreSQL URL.
    pub(crate) fn split(url: &'a str) -> Option<Self> {
        if !is_postgres_url(url) {
            return None;
        }
        let at = url.find("://")? + 3;
        let (scheme, rest) = url.split_at(at);
        let (credentials, rest) = match rest.split_once('@') {
            Some((c, r)) => (Some(c), r),
            None => (None, rest),
        };
        let (location, query) = match rest.split_once('?') {
            Some((l, q)) => (l, Some(q)),
            None => (rest, None),
        };
        Some(Self { scheme, credentials, location, query })
    }

    /// The URL without its query: `scheme`, credentials and location as written.
    pub(crate) fn without_query(&self) -> String {
        match self.credentials {
            Some(c) => format!("{}{c}@{}", self.scheme, self.location),
            None => format!("{}{}", self.scheme, self.location),
        }
    }
}

/// `url` without its password (and without any query parameters, which may carry one): what
/// logs, errors and `/v1/status` may show, e.g. `postgres://plasma@db.internal:5432/plasma`.
/// The one redaction of a store spec (`config.rs` shows the same).
///
/// Cut by [`PgUrlParts`], the client's own rule (credentials end at the first `@`), so a
/// password holding `/`, `?`, `#` or `:` is hidden whole. What the client does NOT agree with
/// a human on is a second, unencoded `@` (`postgres://u:p@ss@host/db`: the client takes
/// password `p` and host `ss@host`); the text after the first `@` may then hold the rest of the
/// password, so the location is not shown at all (`postgres://u@…`). A user name holding a URL
/// delimiter means the `@` was not where the user meant it (`postgres://h/db?password=x@y`):
/// it is not shown either. The query and anything from a `#` are dropped.
///
/// A key/value connection string (`host=… password=…`), which the configuration refuses, is
/// never echoed: it is replaced by a placeholder. Anything else is a redb path, shown as is.
pub fn redact_url(url: &str) -> String {
    let Some(parts) = PgUrlParts::split(url) else {
        return if looks_like_conninfo(url) {
            "<a PostgreSQL key/value connection string: not shown>".to_owned()
        } else {
            url.to_owned()
        };
    };
    let location = parts.location.split('#').next().unwrap_or_default();
    let rest_has_at = parts.location.contains('@') || parts.query.is_some_and(|q| q.contains('@'));
    let location = if parts.credentials.is_some() && rest_has_at { "…" } else { location };
    let user = parts.credentials.map(|c| c.split(':').next().unwrap_or_default());
    match user {
        Some(u)
            if u.contains(['/', '?', '#', '&', '=', '@', '[', ']'])
                || u.contains(char::is_whitespace) =>
        {
            format!("{}…@{location}", parts.scheme)
        }
        Some(u) if !u.is_empty() => format!("{}{u}@{location}", parts.scheme),
        _ => format!("{}{location}", parts.scheme),
    }
}

/// Whether a store spec that is not a `postgres://` URL is still meant for PostgreSQL: a
/// mis-cased or indented URL, or the key/value form (`host=db user=op password=…`), which the
/// client parses as well. Such a spec is refused by the configuration rather than opened as a
/// redb file named after it, and never shown.
pub(crate) fn looks_like_conninfo(spec: &str) -> bool {
    let lower = spec.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://")
        || lower.starts_with("postgresql://")
        || lower.contains("password=")
        || (spec.contains('=') && spec.parse::<::postgres::Config>().is_ok())
}

#[cfg(test)]
pub(crate) mod tests {
    //! The store's behaviour, run against both backends (`<test>::redb`, `<test>::postgres`,
    //! each PostgreSQL test on a throwaway server of its own), and what only PostgreSQL has:
    //! fencing, its schema, its crash.

    use super::*;
    use alloy::primitives::U256;
    use plasma_test_postgres::TempPostgres;

    /// Where a test's store lives; [`Db::open`] again is a restart.
    pub(crate) enum Db {
        Redb(tempfile::TempDir),
        Postgres(TempPostgres),
    }

    impl Db {
        pub(crate) fn new(backend: &str) -> Self {
            match backend {
                "redb" => Self::Redb(tempfile::tempdir().unwrap()),
                _ => Self::Postgres(TempPostgres::start().unwrap()),
            }
        }

        /// Opens the store; on PostgreSQL as the leader of epoch 1 (the lease row made as part
        /// B's election would).
        pub(crate) fn open(&self) -> Store {
            match self {
                Self::Redb(dir) => Store::open(&dir.path().join("state.redb")).unwrap(),
                Self::Postgres(pg) => {
                    let store = Store::open_postgres(pg.url(), &PgOptions::pool(2)).unwrap();
                    pg.psql(
                        "INSERT INTO plasma_leader VALUES (1, 1, 'test', 'http://test', \
                         now() + interval '1 hour') ON CONFLICT (id) DO NOTHING",
                    )
                    .unwrap();
                    store.set_fence(1);
                    store
                }
            }
        }

        pub(crate) fn pg(&self) -> &TempPostgres {
            match self {
                Self::Postgres(pg) => pg,
                Self::Redb(_) => panic!("not PostgreSQL"),
            }
        }
    }

    /// A test run once on each backend: `name::redb` and `name::postgres`.
    macro_rules! both {
        ($(#[$m:meta])* fn $name:ident($db:ident) $body:block) => {
            $(#[$m])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                fn run($db: Db) $body
                #[test]
                fn redb() {
                    run(Db::new("redb"));
                }
                #[test]
                fn postgres() {
                    run(Db::new("postgres"));
                }
            }
        };
    }

    fn out(owner: u8, amount: u64) -> Output {
        Output::new(Address::repeat_byte(owner), Address::ZERO, U256::from(amount))
    }

    fn upos(blknum: u64, tx: u16, o: u8) -> UtxoPos {
        UtxoPos::new(blknum, tx, o).unwrap()
    }

    both! {
        fn batches_survive_reopening(db) {
            let pos = upos(1, 0, 0);
            {
                let store = db.open();
                let batch = Batch {
                    created: vec![(pos, out(1, 5))],
                    mempool_add: vec![(0, vec![1, 2, 3])],
                    meta: vec![(NEXT_CHILD_BLOCK, 2000)],
                    ..Batch::default()
                };
                store.apply(&batch).unwrap();
            }
            let store = db.open();
            let loaded = store.load().unwrap();
            assert_eq!(loaded.utxos, vec![(pos, out(1, 5))]);
            assert_eq!(loaded.mempool, vec![(0, vec![1, 2, 3])]);
            assert_eq!(loaded.next_child_block, Some(2000));
        }
    }

    both! {
        fn mempool_removals_take_exactly_the_listed_entries(db) {
            let store = db.open();
            let mempool_add = (0..12u64).map(|seq| (seq, vec![seq as u8; 3])).collect();
            store.apply(&Batch { mempool_add, ..Batch::default() }).unwrap();
            // Out of order, with a key that is not there, inside and past the stored range.
            let mempool_remove = vec![9, 2, 5, 3, 40, 11];
            store.apply(&Batch { mempool_remove, ..Batch::default() }).unwrap();
            let seqs = |s: &Store| -> Vec<u64> {
                s.load().unwrap().mempool.into_iter().map(|(s, _)| s).collect()
            };
            assert_eq!(seqs(&store), vec![0, 1, 4, 6, 7, 8, 10]);
            store.apply(&Batch { mempool_remove: vec![7], ..Batch::default() }).unwrap();
            assert_eq!(seqs(&store), vec![0, 1, 4, 6, 8, 10]);
        }
    }

    both! {
        fn a_block_encoded_beside_its_effects_is_durable_with_them_or_not_at_all(db) {
            let store = db.open();
            let pos = upos(2000, 0, 0);
            let batch = Batch {
                created: vec![(pos, out(1, 5))],
                meta: vec![(NEXT_CHILD_BLOCK, 3000)],
                ..Batch::default()
            };
            let record = payment_block(2000, 300);
            let failed = store.apply_with_block(&batch, || {
                Err(StoreError::Corrupt { what: "block", reason: "test".into() })
            });
            assert!(failed.is_err());
            assert!(store.load().unwrap().utxos.is_empty(), "no effect without its block");
            assert_eq!(store.block_info(2000).unwrap(), None);
            let (info, _, _) =
                store.apply_with_block(&batch, || EncodedBlock::from_record(&record)).unwrap();
            assert_eq!((info.blknum, info.root, info.tx_count), (2000, record.root, 300));
            drop(store);
            let store = db.open();
            let loaded = store.load().unwrap();
            assert_eq!((loaded.utxos, loaded.next_child_block), (vec![(pos, out(1, 5))], Some(3000)));
            assert_eq!(store.block(2000).unwrap().unwrap().txs, record.txs);
            assert_eq!(store.head().unwrap(), Some(2000));
        }
    }

    both! {
        fn wire_rows_give_back_the_block_from_any_offset(db) {
            let store = db.open();
            let record = payment_block(1000, 10_000);
            let encoded = EncodedBlock::from_record(&record).unwrap();
            let wire = encoded.wire.clone();
            assert!(wire.len() > crate::WIRE_CHUNK, "spans several rows: {}", wire.len());
            store.apply(&Batch { blocks: vec![encoded], ..Batch::default() }).unwrap();
            let chunk = crate::WIRE_CHUNK as u64;
            for start in [0, 1, chunk - 1, chunk, wire.len() as u64 - 1] {
                let mut got = Vec::new();
                let mut at = start;
                loop {
                    let c = store.wire_chunk(1000, at).unwrap();
                    if c.is_empty() {
                        break;
                    }
                    assert!(c.len() <= crate::WIRE_CHUNK);
                    at += c.len() as u64;
                    got.extend(c);
                }
                assert_eq!(got, wire[start as usize..], "from {start}");
            }
            assert!(store.wire_chunk(1000, wire.len() as u64).unwrap().is_empty());
            assert_eq!(store.block_info(1000).unwrap().unwrap().wire_len, wire.len() as u64);
            assert_eq!(store.wire(1000).unwrap().unwrap().1, wire);
            for i in [0u32, 63, 64, 5_000, 9_999] {
                let Lookup::Found(inc) = store.inclusion(1000, i).unwrap() else { panic!() };
                assert_eq!(inc.stored, record.txs[i as usize].to_vec());
                let proof = plasma_spec::Proof::from_bytes(&inc.proof).unwrap();
                let leaf = plasma_spec::leaf_hash(&inc.tx_bytes);
                assert!(proof.verify(leaf, i as usize, record.root), "proof of {i}");
            }
            assert_eq!(store.inclusion(1000, 10_000).unwrap(), Lookup::OutOfRange { tx_count: 10_000 });
            assert_eq!(store.inclusion(2000, 0).unwrap(), Lookup::UnknownBlock);
        }
    }

    both! {
        fn an_owner_s_outputs_come_in_pages_in_position_order(db) {
            let store = db.open();
            assert_eq!(store.head().unwrap(), None);
            let created: Vec<(UtxoPos, Output)> = (1..=25u64)
                .map(|b| (upos(b * 1000, (b % 3) as u16, 0), out(if b % 2 == 0 { 1 } else { 2 }, b)))
                .collect();
            store.apply(&Batch { created: created.clone(), ..Batch::default() }).unwrap();
            store.apply(&Batch { spent: vec![upos(4000, 1, 0)], ..Batch::default() }).unwrap();
            let mut want: Vec<_> = created
                .iter()
                .filter(|(p, o)| o.owner == Address::repeat_byte(1) && *p != upos(4000, 1, 0))
                .cloned()
                .collect();
            want.sort_by_key(|(p, _)| *p);
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let (page, more) = store.utxos_page(Address::repeat_byte(1), after, 5).unwrap();
                assert!(page.len() <= 5);
                after = page.last().map(|(p, _)| *p);
                got.extend(page);
                if !more {
                    break;
                }
            }
            assert_eq!(got, want);
            let (page, more) = store.utxos_page(Address::repeat_byte(1), None, want.len()).unwrap();
            assert_eq!((page.len(), more), (want.len(), false), "exactly a page: no more");
            assert_eq!(store.utxos_page(Address::repeat_byte(9), None, 10).unwrap(), (vec![], false));
            assert_eq!(store.utxo(upos(2000, 2, 0)).unwrap(), Some(out(1, 2)));
            assert_eq!(store.utxo(upos(4000, 1, 0)).unwrap(), None, "spent");
        }
    }

    both! {
        fn availability_rows_replace_a_changed_header_and_its_receipts(db) {
            let store = db.open();
            let header = DaHeaderRow {
                blknum: 1000,
                tx_root: B256::repeat_byte(1),
                data_len: 77,
                k: 2,
                n: 3,
                chunk_root: B256::repeat_byte(2),
                signature: vec![5; 65],
            };
            assert!(!store.put_da_header(&header).unwrap());
            let receipt = |index: u16| DaReceiptRow {
                index,
                tower: Address::repeat_byte(index as u8 + 1),
                signature: vec![index as u8; 65],
            };
            store.put_da_receipt(1000, &receipt(2)).unwrap();
            store.put_da_receipt(1000, &receipt(0)).unwrap();
            assert_eq!(store.da_receipts(1000).unwrap(), vec![receipt(0), receipt(2)]);
            assert!(!store.put_da_header(&header).unwrap(), "the same header keeps its receipts");
            assert_eq!(store.da_receipts(1000).unwrap().len(), 2);
            let other = DaHeaderRow { k: 3, ..header };
            assert!(store.put_da_header(&other).unwrap(), "a new header drops the old receipts");
            assert_eq!(store.da_receipts(1000).unwrap(), vec![]);
            assert_eq!(store.da_header(1000).unwrap(), Some(other));
            assert_eq!(store.da_pending().unwrap(), vec![1000]);
            store.clear_da_pending(1000).unwrap();
            assert_eq!(store.da_pending().unwrap(), Vec::<u64>::new());
            assert_eq!(store.da_header(2000).unwrap(), None);
        }
    }

    both! {
        fn meta_exiting_and_the_transaction_index_round_trip(db) {
            let store = db.open();
            let mut exiting = plasma_spec::ExitingOutputs::default();
            exiting.standard_exit_started(upos(1000, 0, 0), 99);
            let hash = B256::repeat_byte(7);
            store
                .apply(&Batch {
                    meta: vec![(DEPOSIT_CURSOR, 10), (EXIT_CURSOR, 11), (DEPOSIT_CURSOR, 12)],
                    txs: vec![(hash, 1000, 4)],
                    exiting: Some(exiting.clone()),
                    ..Batch::default()
                })
                .unwrap();
            drop(store);
            let store = db.open();
            let loaded = store.load().unwrap();
            assert_eq!((loaded.deposit_cursor, loaded.exit_cursor), (Some(12), Some(11)));
            assert_eq!(loaded.exiting, exiting);
            assert_eq!(store.meta(DEPOSIT_CURSOR).unwrap(), Some(12));
            assert_eq!(store.meta("nothing").unwrap(), None);
            assert_eq!(store.tx_location(&hash).unwrap(), Some((1000, 4)));
            assert_eq!(store.tx_location(&B256::ZERO).unwrap(), None);
            // u64 values beyond i64 survive PostgreSQL's bigint bit for bit.
            store.apply(&Batch { meta: vec![(EXIT_CURSOR, u64::MAX)], ..Batch::default() }).unwrap();
            assert_eq!(store.meta(EXIT_CURSOR).unwrap(), Some(u64::MAX));
        }
    }

    both! {
        fn a_standby_reads_the_exiting_set_and_the_mempool_in_pages(db) {
            let store = db.open();
            assert_eq!(store.exiting().unwrap(), plasma_spec::ExitingOutputs::default());
            assert!(store.mempool_page(None, 10).unwrap().is_empty());
            let mut exiting = plasma_spec::ExitingOutputs::default();
            exiting.standard_exit_started(upos(1000, 0, 0), 99);
            let mempool_add = (0..7u64).map(|seq| (seq * 2, vec![seq as u8; 3])).collect();
            store.apply(&Batch { mempool_add, exiting: Some(exiting.clone()), ..Batch::default() })
                .unwrap();
            store.apply(&Batch { mempool_remove: vec![4], ..Batch::default() }).unwrap();
            assert_eq!(store.exiting().unwrap(), exiting);
            let seqs = |after, limit| -> Vec<u64> {
                store.mempool_page(after, limit).unwrap().into_iter().map(|(s, _)| s).collect()
            };
            assert_eq!(seqs(None, 100), vec![0, 2, 6, 8, 10, 12]);
            assert_eq!(seqs(None, 2), vec![0, 2]);
            assert_eq!(seqs(Some(2), 2), vec![6, 8], "after is exclusive, a removed key skipped");
            assert_eq!(seqs(Some(3), 1), vec![6]);
            assert_eq!(seqs(Some(12), 5), Vec::<u64>::new());
            assert_eq!(seqs(Some(u64::MAX), 5), Vec::<u64>::new());
            assert_eq!(store.mempool_page(Some(5), 1).unwrap(), vec![(6, vec![3u8; 3])]);
        }
    }

    #[test]
    fn a_batch_s_rows_keep_the_last_entry_of_each_key_in_key_order() {
        let (a, b, c) = (upos(3000, 0, 0), upos(1000, 5, 1), upos(2000, 0, 0));
        let batch = Batch {
            spent: vec![c, a, c],
            created: vec![(a, out(1, 1)), (b, out(2, 2)), (a, out(3, 3))],
            txs: vec![(B256::repeat_byte(9), 1000, 0), (B256::repeat_byte(1), 1000, 1)],
            mempool_add: vec![(7, vec![1]), (2, vec![2]), (7, vec![3])],
            mempool_remove: vec![5, 1, 5],
            meta: vec![(DEPOSIT_CURSOR, 10), (EXIT_CURSOR, 11), (DEPOSIT_CURSOR, 12)],
            ..Batch::default()
        };
        let rows = Rows::of(&batch).unwrap();
        assert_eq!(rows.spent, vec![c, a]);
        let created: Vec<_> = rows.created.iter().map(|(p, o, _)| (*p, *o)).collect();
        assert_eq!(created, vec![(b, out(2, 2).owner), (a, out(3, 3).owner)]);
        assert_eq!(rows.created[1].2, out(3, 3).to_packed());
        assert_eq!(rows.txs[0].0, B256::repeat_byte(1));
        assert_eq!(rows.mempool_add, vec![(2, vec![2]), (7, vec![3])]);
        assert_eq!(rows.mempool_remove, vec![1, 5]);
        assert_eq!(rows.meta, vec![(DEPOSIT_CURSOR, 12), (EXIT_CURSOR, 11)]);
        assert_eq!(rows.exiting, None);
    }

    both! {
        fn an_output_created_twice_in_a_batch_is_stored_as_last_listed(db) {
            let store = db.open();
            let pos = upos(1000, 0, 0);
            let created = vec![(pos, out(1, 1)), (upos(1000, 1, 0), out(2, 2)), (pos, out(3, 3))];
            store.apply(&Batch { created, ..Batch::default() }).unwrap();
            assert_eq!(store.utxo(pos).unwrap(), Some(out(3, 3)));
            assert_eq!(store.load().unwrap().utxos.len(), 2);
        }
    }

    #[test]
    fn a_spec_names_its_backend() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_spec("", dir.path(), DEFAULT_CACHE_BYTES).unwrap();
        assert_eq!(store.backend(), "redb");
        assert!(dir.path().join("operator.redb").exists());
        let other = dir.path().join("elsewhere.redb");
        let store = Store::open_spec(other.to_str().unwrap(), dir.path(), 1 << 20).unwrap();
        assert_eq!(store.backend(), "redb");
        assert!(other.exists());
        assert!(is_postgres_url("postgresql://a@b/c") && is_postgres_url("postgres://x"));
        assert!(!is_postgres_url("/var/lib/postgres://x"));
    }

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            redact_url(
                "postgres://plasma:s3cret@db.internal:5432/plasma?sslmode=require&password=x"
            ),
            "postgres://plasma@db.internal:5432/plasma"
        );
        assert_eq!(redact_url("postgresql://db/plasma"), "postgresql://db/plasma");
        assert_eq!(redact_url("postgres://u:p:q@h"), "postgres://u@h");
        assert_eq!(redact_url("/data/operator.redb"), "/data/operator.redb");
    }

    /// Every character a URL treats specially (RFC 3986 gen- and sub-delims, `%`, space).
    pub(crate) const URL_DELIMITERS: &str = ":/?#[]@!$&'()*+,;=% ";

    /// Passwords made of upper-case letters (the rest of the test URLs is lower case and digits,
    /// so any upper-case letter in a redacted URL is a leak) and URL delimiters: each delimiter
    /// alone, every ordered pair, then `random` pseudo-random ones (seeded: a failure repeats).
    pub(crate) fn awkward_passwords(random: usize) -> Vec<String> {
        let delims: Vec<char> = URL_DELIMITERS.chars().collect();
        let mut out: Vec<String> = delims.iter().map(|d| format!("PA{d}SS")).collect();
        for a in &delims {
            for b in &delims {
                out.push(format!("{a}HUNT{b}ER{a}"));
            }
        }
        let alphabet: Vec<char> = delims.iter().copied().chain('A'..='Z').collect();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            // xorshift64*: deterministic, no dependency.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        for _ in 0..random {
            let len = 1 + (next() % 24) as usize;
            let mut p: String =
                (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            p.push('Q'); // at least one letter to look for
            out.push(p);
        }
        out
    }

    /// A21b-1: the redaction follows the client's own rule (credentials end at the first `@`
    /// after `://`) for passwords holding any URL delimiter, with and without a query: the
    /// password never shows; the rest of the URL shows whenever it is unambiguous.
    #[test]
    fn no_password_of_url_delimiters_is_ever_shown() {
        for pw in awkward_passwords(3_000) {
            for query in ["", "?sslmode=disable&application_name=op", "#frag"] {
                let url = format!("postgres://op:{pw}@db.example:5432/plasma{query}");
                let shown = redact_url(&url);
                assert!(
                    !shown.contains(|c: char| c.is_ascii_uppercase()),
                    "{url:?} shown as {shown:?}"
                );
                let expected = if pw.contains('@') {
                    // The client cuts at the first `@`; the rest of the password would be in
                    // what follows it: nothing of it is shown.
                    "postgres://op@…"
                } else {
                    "postgres://op@db.example:5432/plasma"
                };
                assert_eq!(shown, expected, "{url:?}");
                // And the client agrees on where the password ends.
                if !pw.contains(['@', '%']) {
                    let parsed: ::postgres::Config = url.parse().unwrap();
                    assert_eq!(parsed.get_password(), Some(pw.as_bytes()), "{url:?}");
                    assert_eq!(parsed.get_user(), Some("op"), "{url:?}");
                }
            }
            // Without a user name, or with a password but no host, nothing leaks either.
            for url in [format!("postgresql://:{pw}@db/plasma"), format!("postgres://op:{pw}@")] {
                let shown = redact_url(&url);
                assert!(
                    !shown.contains(|c: char| c.is_ascii_uppercase()),
                    "{url:?} shown as {shown:?}"
                );
            }
        }
        // A password in the query, or an `@` only there, is never shown either.
        for url in [
            "postgres://db/plasma?password=SECRET",
            "postgres://db/plasma?user=op&password=SE@CRET",
            "postgres://db/plasma#password=SECRET",
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains("SE"), "{url:?} shown as {shown:?}");
        }
        // The key/value form is never echoed; paths are.
        let kv = redact_url("host=db user=op password=SECRET dbname=plasma");
        assert!(!kv.contains("SECRET"), "{kv}");
        assert_eq!(redact_url("/var/lib/a=b/op.redb"), "/var/lib/a=b/op.redb");
    }

    #[test]
    fn a_postgres_url_is_cut_as_the_client_cuts_it() {
        let p = PgUrlParts::split("postgres://u:a?b/c#d@h:1,g:2/db?sslmode=require").unwrap();
        assert_eq!(p.scheme, "postgres://");
        assert_eq!(p.credentials, Some("u:a?b/c#d"));
        assert_eq!(p.location, "h:1,g:2/db");
        assert_eq!(p.query, Some("sslmode=require"));
        assert_eq!(p.without_query(), "postgres://u:a?b/c#d@h:1,g:2/db");
        let p = PgUrlParts::split("postgresql://h/db").unwrap();
        assert_eq!((p.credentials, p.location, p.query), (None, "h/db", None));
        assert_eq!(PgUrlParts::split("host=h"), None);
        assert!(looks_like_conninfo("host=db user=op password=x dbname=plasma"));
        assert!(looks_like_conninfo("host=db dbname=plasma"));
        assert!(looks_like_conninfo(" Postgres://op:x@db/plasma"));
        assert!(!looks_like_conninfo("/var/lib/op.redb"));
        assert!(!looks_like_conninfo("/var/lib/a=b/op.redb"));
        assert!(!looks_like_conninfo("operator.redb"));
    }

    pub(crate) fn payment_block(blknum: u64, n: usize) -> BlockRecord {
        let txs: Vec<alloy::primitives::Bytes> = (0..n)
            .map(|i| {
                let tx = plasma_spec::Transaction::payment(
                    &[UtxoPos::new(1, 0, 0).unwrap()],
                    vec![Output::new(
                        Address::from_word(alloy::primitives::keccak256((i as u64).to_be_bytes())),
                        Address::ZERO,
                        U256::from(i + 1),
                    )],
                    B256::ZERO,
                );
                plasma_spec::SignedTransaction::new(tx, vec![vec![7u8; 65].into()]).encode().into()
            })
            .collect();
        let leaves = crate::blocks::leaves_of(blknum, &txs).unwrap();
        let root = plasma_spec::BlockTree::from_leaves(&leaves).unwrap().root();
        BlockRecord { blknum, root, txs, l1_timestamp: Some(1_700_000_000), l1_tx: None }
    }
}
