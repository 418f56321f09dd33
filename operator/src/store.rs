//! Durable state in redb: the UTXO set, blocks, the transaction index, the mempool and the
//! cursors. Every change that an API response acknowledges is committed (fsync) before the
//! response, so it survives `kill -9`.

use alloy::primitives::B256;
use plasma_spec::{Output, UtxoPos};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;

const UTXOS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("utxos");
const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");
const TXS: TableDefinition<'_, &[u8], (u64, u32)> = TableDefinition::new("txs");
const MEMPOOL: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("mempool");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// The exit-game facts of LEDGER-9 (`plasma_spec::ExitingOutputs` as JSON), under one key.
const EXITING: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("exiting");
const EXITING_KEY: &str = "exiting";

/// Meta key: the number the next child block will get.
pub(crate) const NEXT_CHILD_BLOCK: &str = "next_child_block";
/// Meta key: the last L1 block whose deposits were credited.
pub(crate) const DEPOSIT_CURSOR: &str = "deposit_cursor";
/// Meta key: the last L1 block whose exit-game events were applied (OP-7).
pub(crate) const EXIT_CURSOR: &str = "exit_cursor";

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

/// Storage failures. All of them are fatal for the request that hit them and nothing is changed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    /// A stored record does not decode: the database was corrupted or written by another version.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
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
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Output bytes in the UTXO table ([`Output::to_packed`]).
fn decode_output(b: &[u8]) -> Result<Output, StoreError> {
    Output::from_packed(b)
        .ok_or_else(|| StoreError::Corrupt { what: "utxo", reason: format!("{} bytes", b.len()) })
}

/// The database.
#[derive(Debug)]
pub struct Store {
    db: Database,
}

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

/// One atomic change: applied in one redb write transaction.
#[derive(Debug, Default)]
pub struct Batch {
    /// Outputs spent.
    pub spent: Vec<UtxoPos>,
    /// Outputs created.
    pub created: Vec<(UtxoPos, Output)>,
    /// Blocks written (or rewritten, e.g. when committed).
    pub blocks: Vec<BlockRecord>,
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

impl Store {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(redb::Error::Io(e)))?;
        }
        let db = Database::create(path)?;
        // Create every table so readers never see a missing one.
        let tx = db.begin_write()?;
        tx.open_table(UTXOS)?;
        tx.open_table(BLOCKS)?;
        tx.open_table(TXS)?;
        tx.open_table(MEMPOOL)?;
        tx.open_table(META)?;
        tx.open_table(EXITING)?;
        tx.commit()?;
        Ok(Self { db })
    }

    /// Applies `batch` atomically and durably.
    pub fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut utxos = tx.open_table(UTXOS)?;
            for pos in &batch.spent {
                utxos.remove(pos.to_u128())?;
            }
            for (pos, out) in &batch.created {
                utxos.insert(pos.to_u128(), out.to_packed().as_slice())?;
            }
            let mut blocks = tx.open_table(BLOCKS)?;
            for b in &batch.blocks {
                let json = serde_json::to_vec(b)
                    .map_err(|e| StoreError::Corrupt { what: "block", reason: e.to_string() })?;
                blocks.insert(b.blknum, json.as_slice())?;
            }
            let mut txs = tx.open_table(TXS)?;
            for (hash, blknum, index) in &batch.txs {
                txs.insert(hash.as_slice(), (*blknum, *index))?;
            }
            let mut mempool = tx.open_table(MEMPOOL)?;
            for (seq, bytes) in &batch.mempool_add {
                mempool.insert(*seq, bytes.as_slice())?;
            }
            for seq in &batch.mempool_remove {
                mempool.remove(*seq)?;
            }
            let mut meta = tx.open_table(META)?;
            for (key, value) in &batch.meta {
                meta.insert(*key, *value)?;
            }
            if let Some(exiting) = &batch.exiting {
                let json = serde_json::to_vec(exiting)
                    .map_err(|e| StoreError::Corrupt { what: "exiting", reason: e.to_string() })?;
                tx.open_table(EXITING)?.insert(EXITING_KEY, json.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Reads everything the in-memory state is rebuilt from.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let tx = self.db.begin_read()?;
        let mut loaded = Loaded::default();
        let utxos = tx.open_table(UTXOS)?;
        for entry in utxos.iter()? {
            let (k, v) = entry?;
            let pos = UtxoPos::from_u128(k.value())
                .map_err(|e| StoreError::Corrupt { what: "utxo key", reason: e.to_string() })?;
            loaded.utxos.push((pos, decode_output(v.value())?));
        }
        let mempool = tx.open_table(MEMPOOL)?;
        for entry in mempool.iter()? {
            let (k, v) = entry?;
            loaded.mempool.push((k.value(), v.value().to_vec()));
        }
        let meta = tx.open_table(META)?;
        loaded.next_child_block = meta.get(NEXT_CHILD_BLOCK)?.map(|v| v.value());
        loaded.deposit_cursor = meta.get(DEPOSIT_CURSOR)?.map(|v| v.value());
        loaded.exit_cursor = meta.get(EXIT_CURSOR)?.map(|v| v.value());
        if let Some(v) = tx.open_table(EXITING)?.get(EXITING_KEY)? {
            loaded.exiting = serde_json::from_slice(v.value())
                .map_err(|e| StoreError::Corrupt { what: "exiting", reason: e.to_string() })?;
        }
        let blocks = tx.open_table(BLOCKS)?;
        for entry in blocks.iter()? {
            let (k, v) = entry?;
            let blknum = k.value();
            if blknum % plasma_spec::CHILD_BLOCK_INTERVAL != 0 {
                continue;
            }
            let record: BlockRecord = serde_json::from_slice(v.value())
                .map_err(|e| StoreError::Corrupt { what: "block", reason: e.to_string() })?;
            if record.l1_timestamp.is_none() {
                loaded.uncommitted.push(blknum);
            }
        }
        Ok(loaded)
    }

    /// A stored block.
    pub fn block(&self, blknum: u64) -> Result<Option<BlockRecord>, StoreError> {
        let tx = self.db.begin_read()?;
        let blocks = tx.open_table(BLOCKS)?;
        match blocks.get(blknum)? {
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|e| StoreError::Corrupt { what: "block", reason: e.to_string() }),
            None => Ok(None),
        }
    }

    /// Where a transaction was included.
    pub fn tx_location(&self, hash: &B256) -> Result<Option<(u64, u32)>, StoreError> {
        let tx = self.db.begin_read()?;
        let txs = tx.open_table(TXS)?;
        Ok(txs.get(hash.as_slice())?.map(|v| v.value()))
    }

    /// A meta value.
    pub fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        Ok(meta.get(key)?.map(|v| v.value()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Address, U256};

    #[test]
    fn batches_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let pos = UtxoPos::new(1, 0, 0).unwrap();
        let out = Output::new(Address::repeat_byte(1), Address::ZERO, U256::from(5));
        {
            let store = Store::open(&path).unwrap();
            let batch = Batch {
                created: vec![(pos, out.clone())],
                mempool_add: vec![(0, vec![1, 2, 3])],
                meta: vec![(NEXT_CHILD_BLOCK, 2000)],
                ..Batch::default()
            };
            store.apply(&batch).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.utxos, vec![(pos, out)]);
        assert_eq!(loaded.mempool, vec![(0, vec![1, 2, 3])]);
        assert_eq!(loaded.next_child_block, Some(2000));
    }
}
