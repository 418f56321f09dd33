//! The chain's history on disk (WATCH-15): every spend the watcher saw in a valid block and every
//! validated block's leaf hashes, in the watcher's redb store, packed binary. Memory holds only
//! what was applied but not yet persisted (at most the blocks between two `persist_block`s) and a
//! few built trees for repeated proofs.
//!
//! | Table | Key | Value |
//! |---|---|---|
//! | `history_txs` | transaction position (POS-1, output 0) | kind (0 deposit, 1 signed) ‖ bytes |
//! | `history_spent` | spent output position | transaction position (16, BE) ‖ input index (1) |
//! | `history_leaves` | block number | the leaf hashes, 32 bytes each, in order |
//! | `history_times` | block number | L1 timestamp of the commitment |
//!
//! Each transaction is stored once, however many inputs it has; a block's 65,536 leaves take 2 MiB,
//! enough for any inclusion proof ([`BlockTree::from_leaves`]) without the transactions.

use super::Spend;
use alloy::primitives::{B256, Bytes};
use parking_lot::Mutex;
use plasma_spec::{BlockTree, SignedTransaction, Transaction, UtxoPos};
use redb::{Database, ReadableDatabase, TableDefinition, WriteTransaction};
use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

/// The validated UTXO set (position → packed output), loaded into memory on restart.
pub(crate) const UTXOS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("view_utxos");
/// Transaction position → kind ‖ bytes (a deposit transaction, or a signed one, ENC-4).
pub(crate) const TXS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("history_txs");
/// Spent position → transaction position ‖ input index.
pub(crate) const SPENT: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("history_spent");
/// Block number → leaf hashes.
pub(crate) const LEAVES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("history_leaves");
/// Block number → L1 timestamp of its commitment.
pub(crate) const TIMES: TableDefinition<'_, u64, u64> = TableDefinition::new("history_times");
/// Before WATCH-15: every spend as JSON (migrated on open, then emptied).
pub(crate) const OLD_SPENDS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("view_spends");
/// Before WATCH-15: every block's leaves as JSON (migrated on open, then emptied).
pub(crate) const OLD_BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("view_blocks");

const KIND_DEPOSIT: u8 = 0;
const KIND_SIGNED: u8 = 1;

/// Built trees kept for repeated proofs, by default (a full block's tree is about 4 MiB).
pub(crate) const DEFAULT_TREE_CACHE: usize = 4;
/// The store's page cache (redb's default is 1 GiB, which memory would grow into as the
/// history grows): WATCH-15 counts it in the watcher's memory bound.
pub(crate) const STORE_CACHE_BYTES: usize = 64 << 20;

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The store failed.
    #[error("history store: {0}")]
    Store(String),
    /// A record did not decode (the store is damaged).
    #[error("history record {what} is corrupt")]
    Corrupt {
        /// Which record.
        what: String,
    },
}

pub(crate) fn st(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Store(e.to_string())
}

fn corrupt(what: impl std::fmt::Display) -> HistoryError {
    HistoryError::Corrupt { what: what.to_string() }
}

/// The position of transaction `tx_index` of block `blknum`: its output 0 (POS-1).
pub(crate) fn tx_key(blknum: u64, tx_index: u16) -> Option<u128> {
    UtxoPos::new(blknum, tx_index, 0).ok().map(|p| p.to_u128())
}

/// Applied, not yet persisted: what the next `persist_block` writes in its one transaction.
#[derive(Default)]
struct Unpersisted {
    txs: HashMap<u128, Vec<u8>>,
    spent: HashMap<u128, (u128, u8)>,
    leaves: HashMap<u64, Arc<Vec<B256>>>,
    times: HashMap<u64, u64>,
}

/// The spends and blocks of the chain, on disk (see the module docs).
pub struct History {
    db: Arc<Database>,
    unpersisted: Unpersisted,
    trees: Mutex<VecDeque<(u64, Arc<BlockTree>)>>,
    tree_cache: usize,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("unpersisted_txs", &self.unpersisted.txs.len())
            .field("tree_cache", &self.tree_cache)
            .finish_non_exhaustive()
    }
}

impl History {
    /// The history in `db` (its tables created if missing, a pre-WATCH-15 JSON view migrated).
    pub fn open(db: Arc<Database>) -> Result<Self, HistoryError> {
        let tx = db.begin_write().map_err(st)?;
        tx.open_table(UTXOS).map_err(st)?;
        tx.open_table(TXS).map_err(st)?;
        tx.open_table(SPENT).map_err(st)?;
        tx.open_table(LEAVES).map_err(st)?;
        tx.open_table(TIMES).map_err(st)?;
        migrate(&tx)?;
        tx.commit().map_err(st)?;
        Ok(Self {
            db,
            unpersisted: Unpersisted::default(),
            trees: Mutex::new(VecDeque::new()),
            tree_cache: DEFAULT_TREE_CACHE,
        })
    }

    /// Opens (or creates) the watcher's store at `path` with its page cache bounded
    /// ([`STORE_CACHE_BYTES`], WATCH-15).
    pub fn open_database(path: &std::path::Path) -> Result<Database, HistoryError> {
        Database::builder().set_cache_size(STORE_CACHE_BYTES).create(path).map_err(st)
    }

    /// A history in memory only (for a view that is never persisted: tests, benchmarks).
    pub fn in_memory() -> Self {
        #[allow(clippy::expect_used)] // an in-memory backend cannot fail to open
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("in-memory redb");
        #[allow(clippy::expect_used)]
        Self::open(Arc::new(db)).expect("in-memory history")
    }

    /// Keeps at most `n` built trees for repeated proofs (0: none).
    pub fn set_tree_cache(&mut self, n: usize) {
        self.tree_cache = n;
        self.trees.lock().truncate(n);
    }

    /// Records a validated block's leaf hashes and commitment time.
    pub fn record_block(&mut self, blknum: u64, leaves: Vec<B256>, timestamp: u64) {
        self.trees.lock().retain(|(n, _)| *n != blknum);
        self.unpersisted.leaves.insert(blknum, Arc::new(leaves));
        self.unpersisted.times.insert(blknum, timestamp);
    }

    /// Records a new commitment time of a known block (an L1 reorganisation moved it).
    pub fn record_time(&mut self, blknum: u64, timestamp: u64) {
        self.unpersisted.times.insert(blknum, timestamp);
    }

    /// Records a deposit block's transaction.
    pub fn record_deposit(&mut self, blknum: u64, deposit_tx: &[u8]) {
        if let Some(key) = tx_key(blknum, 0) {
            let mut v = Vec::with_capacity(1 + deposit_tx.len());
            v.push(KIND_DEPOSIT);
            v.extend_from_slice(deposit_tx);
            self.unpersisted.txs.insert(key, v);
        }
    }

    /// Records a signed transaction of a valid block and the outputs it spends.
    pub fn record_signed(&mut self, blknum: u64, tx_index: u16, signed: &[u8], inputs: &[UtxoPos]) {
        let Some(key) = tx_key(blknum, tx_index) else { return };
        let mut v = Vec::with_capacity(1 + signed.len());
        v.push(KIND_SIGNED);
        v.extend_from_slice(signed);
        self.unpersisted.txs.insert(key, v);
        for (i, input) in inputs.iter().enumerate() {
            #[allow(clippy::cast_possible_truncation)] // a payment has at most 4 inputs
            self.unpersisted.spent.insert(input.to_u128(), (key, i as u8));
        }
    }

    /// Writes what was recorded since the last write into `tx` (the caller's one atomic
    /// transaction). Call [`Self::persisted`] once `tx` committed.
    pub fn write(&self, tx: &WriteTransaction) -> Result<(), HistoryError> {
        let u = &self.unpersisted;
        let mut txs = tx.open_table(TXS).map_err(st)?;
        let mut keys: Vec<&u128> = u.txs.keys().collect();
        keys.sort_unstable(); // in key order: redb appends instead of splitting pages at random
        for k in keys {
            txs.insert(*k, u.txs[k].as_slice()).map_err(st)?;
        }
        let mut spent = tx.open_table(SPENT).map_err(st)?;
        let mut keys: Vec<&u128> = u.spent.keys().collect();
        keys.sort_unstable();
        for k in keys {
            let (txk, input) = u.spent[k];
            let mut v = [0u8; 17];
            v[..16].copy_from_slice(&txk.to_be_bytes());
            v[16] = input;
            spent.insert(*k, v.as_slice()).map_err(st)?;
        }
        let mut leaves = tx.open_table(LEAVES).map_err(st)?;
        for (n, l) in &u.leaves {
            let bytes: Vec<u8> = l.iter().flat_map(|h| h.0).collect();
            leaves.insert(*n, bytes.as_slice()).map_err(st)?;
        }
        let mut times = tx.open_table(TIMES).map_err(st)?;
        for (n, t) in &u.times {
            times.insert(*n, *t).map_err(st)?;
        }
        Ok(())
    }

    /// Forgets what [`Self::write`] wrote, once its transaction committed.
    pub fn persisted(&mut self) {
        self.unpersisted = Unpersisted::default();
    }

    fn stored_tx(&self, key: u128) -> Result<Option<Vec<u8>>, HistoryError> {
        if let Some(v) = self.unpersisted.txs.get(&key) {
            return Ok(Some(v.clone()));
        }
        let tx = self.db.begin_read().map_err(st)?;
        let table = tx.open_table(TXS).map_err(st)?;
        Ok(table.get(key).map_err(st)?.map(|v| v.value().to_vec()))
    }

    /// The spend of `pos` the watcher saw in a valid block, if any (WATCH-4).
    pub fn spend(&self, pos: UtxoPos) -> Result<Option<Spend>, HistoryError> {
        let found = match self.unpersisted.spent.get(&pos.to_u128()) {
            Some(s) => Some(*s),
            None => {
                let tx = self.db.begin_read().map_err(st)?;
                let table = tx.open_table(SPENT).map_err(st)?;
                match table.get(pos.to_u128()).map_err(st)? {
                    Some(v) => {
                        let v = v.value();
                        let k: [u8; 16] = v
                            .get(..16)
                            .and_then(|s| s.try_into().ok())
                            .ok_or_else(|| corrupt(pos))?;
                        Some((u128::from_be_bytes(k), *v.get(16).ok_or_else(|| corrupt(pos))?))
                    }
                    None => None,
                }
            }
        };
        let Some((key, input_index)) = found else { return Ok(None) };
        let stored = self.stored_tx(key)?.ok_or_else(|| corrupt(format!("tx of spend {pos}")))?;
        let txpos = UtxoPos::from_u128(key).map_err(|_| corrupt(key))?;
        let (&KIND_SIGNED, bytes) = stored.split_first().ok_or_else(|| corrupt(key))? else {
            return Err(corrupt(format!("spend {pos} by a deposit")));
        };
        let signed = SignedTransaction::decode(bytes).map_err(|_| corrupt(txpos))?;
        let input_index = usize::from(input_index);
        Ok(Some(Spend {
            tx: signed.transaction.encode().into(),
            hash: signed.transaction.hash(),
            input_index,
            signature: signed.signatures.get(input_index).cloned().unwrap_or_default(),
            blknum: txpos.blknum(),
            tx_index: txpos.tx_index(),
        }))
    }

    /// Every position the watcher saw spent, in order: a scan of the whole index, for tests and
    /// tools that walk the history (the watcher itself only looks positions up).
    pub fn spent_positions(&self) -> Result<Vec<UtxoPos>, HistoryError> {
        use redb::ReadableTable;
        let mut keys: std::collections::BTreeSet<u128> =
            self.unpersisted.spent.keys().copied().collect();
        let tx = self.db.begin_read().map_err(st)?;
        for entry in tx.open_table(SPENT).map_err(st)?.iter().map_err(st)? {
            keys.insert(entry.map_err(st)?.0.value());
        }
        keys.into_iter().map(|k| UtxoPos::from_u128(k).map_err(|_| corrupt(k))).collect()
    }

    /// The transaction bytes (the leaf's preimage, unsigned) of transaction `tx_index` of block
    /// `blknum`: what an exit of one of its outputs presents.
    pub fn tx_bytes(&self, blknum: u64, tx_index: u16) -> Result<Option<Bytes>, HistoryError> {
        let Some(key) = tx_key(blknum, tx_index) else { return Ok(None) };
        let Some(stored) = self.stored_tx(key)? else { return Ok(None) };
        match stored.split_first() {
            Some((&KIND_DEPOSIT, bytes)) => Ok(Some(Bytes::copy_from_slice(bytes))),
            Some((&KIND_SIGNED, bytes)) => {
                let signed = SignedTransaction::decode(bytes).map_err(|_| corrupt(key))?;
                Ok(Some(signed.transaction.encode().into()))
            }
            _ => Err(corrupt(key)),
        }
    }

    /// The L1 timestamp of a validated block's commitment (`None`: not a validated block).
    pub fn timestamp(&self, blknum: u64) -> Result<Option<u64>, HistoryError> {
        if let Some(t) = self.unpersisted.times.get(&blknum) {
            return Ok(Some(*t));
        }
        let tx = self.db.begin_read().map_err(st)?;
        let table = tx.open_table(TIMES).map_err(st)?;
        Ok(table.get(blknum).map_err(st)?.map(|v| v.value()))
    }

    /// The tree of validated block `blknum`, from its leaf hashes (cached).
    pub fn tree(&self, blknum: u64) -> Result<Option<Arc<BlockTree>>, HistoryError> {
        if let Some((_, t)) = self.trees.lock().iter().find(|(n, _)| *n == blknum) {
            return Ok(Some(t.clone()));
        }
        let leaves: Vec<B256> = match self.unpersisted.leaves.get(&blknum) {
            Some(l) => l.to_vec(),
            None => {
                let tx = self.db.begin_read().map_err(st)?;
                let table = tx.open_table(LEAVES).map_err(st)?;
                let Some(v) = table.get(blknum).map_err(st)? else { return Ok(None) };
                let v = v.value();
                if v.len() % 32 != 0 {
                    return Err(corrupt(format!("leaves of block {blknum}")));
                }
                v.chunks_exact(32).map(B256::from_slice).collect()
            }
        };
        let tree = Arc::new(
            BlockTree::from_leaves(&leaves).map_err(|_| corrupt(format!("block {blknum}")))?,
        );
        if self.tree_cache > 0 {
            let mut trees = self.trees.lock();
            trees.push_front((blknum, tree.clone()));
            trees.truncate(self.tree_cache);
        }
        Ok(Some(tree))
    }
}

/// Moves a pre-WATCH-15 view (every spend and block as JSON) into the packed tables, in the open
/// transaction: signed transactions are put back together from their spends' signatures.
fn migrate(tx: &WriteTransaction) -> Result<(), HistoryError> {
    use redb::{ReadableTable, ReadableTableMetadata};
    #[derive(serde::Deserialize)]
    struct OldBlock {
        leaves: Vec<Vec<u8>>,
        timestamp: u64,
    }
    let mut old_spends = tx.open_table(OLD_SPENDS).map_err(st)?;
    let mut old_blocks = tx.open_table(OLD_BLOCKS).map_err(st)?;
    if old_spends.is_empty().map_err(st)? && old_blocks.is_empty().map_err(st)? {
        return Ok(());
    }
    let mut signatures: HashMap<u128, Vec<Bytes>> = HashMap::new();
    let mut spent = tx.open_table(SPENT).map_err(st)?;
    for entry in old_spends.iter().map_err(st)? {
        let (k, v) = entry.map_err(st)?;
        let s: Spend = serde_json::from_slice(v.value()).map_err(|_| corrupt("old spend"))?;
        let key = tx_key(s.blknum, s.tx_index).ok_or_else(|| corrupt("old spend"))?;
        let sigs = signatures.entry(key).or_default();
        if sigs.len() <= s.input_index {
            sigs.resize(s.input_index + 1, Bytes::new());
        }
        sigs[s.input_index] = s.signature;
        #[allow(clippy::cast_possible_truncation)]
        let mut v = [0u8; 17];
        v[..16].copy_from_slice(&key.to_be_bytes());
        v[16] = u8::try_from(s.input_index).map_err(|_| corrupt("old spend"))?;
        spent.insert(k.value(), v.as_slice()).map_err(st)?;
    }
    let mut txs = tx.open_table(TXS).map_err(st)?;
    let mut leaves = tx.open_table(LEAVES).map_err(st)?;
    let mut times = tx.open_table(TIMES).map_err(st)?;
    for entry in old_blocks.iter().map_err(st)? {
        let (k, v) = entry.map_err(st)?;
        let blknum = k.value();
        let b: OldBlock = serde_json::from_slice(v.value()).map_err(|_| corrupt("old block"))?;
        let hashes: Vec<u8> = b.leaves.iter().flat_map(|l| plasma_spec::leaf_hash(l).0).collect();
        leaves.insert(blknum, hashes.as_slice()).map_err(st)?;
        times.insert(blknum, b.timestamp).map_err(st)?;
        for (i, leaf) in b.leaves.iter().enumerate() {
            let Some(key) = u16::try_from(i).ok().and_then(|i| tx_key(blknum, i)) else { continue };
            let mut value = Vec::with_capacity(leaf.len() + 100);
            match signatures.remove(&key) {
                Some(sigs) => {
                    let t = Transaction::decode(leaf).map_err(|_| corrupt("old leaf"))?;
                    value.push(KIND_SIGNED);
                    value.extend(SignedTransaction::new(t, sigs).encode());
                }
                None if plasma_spec::is_deposit_block(blknum) => {
                    value.push(KIND_DEPOSIT);
                    value.extend_from_slice(leaf);
                }
                // A transaction whose spends were not recorded: only its leaf hash is kept.
                None => continue,
            }
            txs.insert(key, value.as_slice()).map_err(st)?;
        }
    }
    old_spends.retain(|_, _| false).map_err(st)?;
    old_blocks.retain(|_, _| false).map_err(st)?;
    Ok(())
}
