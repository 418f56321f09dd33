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

pub use postgres::PgOptions;

use crate::blocks::{BlockInfo, EncodedBlock};
use alloy::primitives::{Address, B256};
use plasma_spec::{Output, UtxoPos};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Meta key: the store's schema version.
pub(crate) const SCHEMA_VERSION: &str = "schema_version";
/// The schema this version writes: 3 = blocks in the wire form with a proof and transaction
/// index, in rows sized to fill redb's pages (OP-9). Version 1 (no key, blocks as JSON) and
/// version 2 (the same pieces in rows one page size too big) are migrated at open; a newer one
/// is refused.
pub const SCHEMA: u64 = 3;
/// Meta key: the number the next child block will get.
pub(crate) const NEXT_CHILD_BLOCK: &str = "next_child_block";
/// Meta key: the last L1 block whose deposits were credited.
pub(crate) const DEPOSIT_CURSOR: &str = "deposit_cursor";
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
}

/// Whether `spec` names a PostgreSQL database rather than a redb file.
pub fn is_postgres_url(spec: &str) -> bool {
    spec.starts_with("postgres://") || spec.starts_with("postgresql://")
}

/// `url` without its password (and without any query parameters, which may carry one): what
/// logs, errors and `/v1/status` may show, e.g. `postgres://plasma@db.internal:5432/plasma`.
/// Anything that is not a URL is returned as is (a redb path).
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{user}{host}")
        }
        None => authority.to_owned(),
    };
    format!("{scheme}{authority}{path}")
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
                    let store = Store::open_postgres(pg.url(), &PgOptions { pool: 2 }).unwrap();
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
