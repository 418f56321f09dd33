//! The chain's history on disk (WATCH-15): every spend the watcher saw in a valid block and every
//! validated block's leaf hashes, in the watcher's redb store, packed binary. Memory holds only
//! what was applied but not yet persisted (at most the blocks between two `persist_block`s) and a
//! few built trees for repeated proofs.
//!
//! | Table | Key | Value |
//! |---|---|---|
//! | `history_txs` | transaction position (POS-1, output 0) | kind (0 deposit, 1 signed) ‖ bytes |
//! | `history_spent` | spent output position | transaction position (16, BE) ‖ input index (1) |
//! | `history_leaf_rows` | (block number, row) | the leaf hashes, 32 bytes each, in order, [`LEAF_ROW`] a row |
//! | `history_leaves` | block number | before #15's row split: all the block's leaf hashes (read, never written) |
//! | `history_times` | block number | L1 timestamp of the commitment |
//!
//! Each transaction is stored once, however many inputs it has; a block's 65,536 leaves take 2 MiB,
//! enough for any inclusion proof ([`BlockTree::from_leaves`]) without the transactions. They are
//! cut into rows of [`LEAF_ROW`] hashes because redb gives a value a power-of-two run of 4 KiB
//! pages for its length plus [`ROW_OVERHEAD`] bytes: one 2 MiB row took a 4 MiB run, rows of
//! 8,191 hashes fill their 256 KiB runs (9 rows, 2.03 MiB of pages, per full block).

use super::Spend;
use alloy::primitives::{B256, Bytes};
use parking_lot::Mutex;
use plasma_spec::{BlockTree, SignedTransaction, Transaction, UtxoPos};
use redb::{Database, ReadableDatabase, TableDefinition, WriteTransaction};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
};

/// The validated UTXO set (position → packed output), loaded into memory on restart.
pub(crate) const UTXOS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("view_utxos");
/// Transaction position → kind ‖ bytes (a deposit transaction, or a signed one, ENC-4).
pub(crate) const TXS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("history_txs");
/// Spent position → transaction position ‖ input index.
pub(crate) const SPENT: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("history_spent");
/// (Block number, row) → the block's leaf hashes `row * LEAF_ROW ..`, at most [`LEAF_ROW`].
pub(crate) const LEAF_ROWS: TableDefinition<'_, (u64, u32), &[u8]> =
    TableDefinition::new("history_leaf_rows");
/// Block number → all its leaf hashes in one row: written before the rows of [`LEAF_ROWS`] (a
/// store of the first WATCH-15 version), read when a block has no rows, never written.
pub(crate) const LEAVES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("history_leaves");
/// What redb adds to a value alone in its pages: a 4-byte page header, the value's 4-byte length
/// and the 12-byte `(u64, u32)` key (as measured for the operator's rows, operator/src/blocks.rs).
pub(crate) const ROW_OVERHEAD: usize = 4 + 4 + 12;
/// Leaf hashes per row of [`LEAF_ROWS`]: the most whose row fits a 256 KiB run of pages
/// (8,191 × 32 + 20 = 262,132 ≤ 262,144); a full block takes 9 rows.
pub(crate) const LEAF_ROW: usize = (256 * 1024 - ROW_OVERHEAD) / 32;
/// Block number → L1 timestamp of its commitment.
pub(crate) const TIMES: TableDefinition<'_, u64, u64> = TableDefinition::new("history_times");
/// Before WATCH-15: every spend as JSON (migrated on open, then emptied).
pub(crate) const OLD_SPENDS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("view_spends");
/// Before WATCH-15: every block's leaves as JSON (migrated on open, then emptied).
pub(crate) const OLD_BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("view_blocks");

/// `history_txs` kind byte: a deposit transaction (ENC-1).
pub(crate) const KIND_DEPOSIT: u8 = 0;
/// `history_txs` kind byte: a signed transaction (ENC-4).
pub(crate) const KIND_SIGNED: u8 = 1;

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

/// Applied, not yet persisted: what the next `persist_block` writes in its one transaction. In
/// key order, so the write appends to redb's trees instead of splitting pages at random.
#[derive(Default)]
struct Unpersisted {
    /// Transaction position → kind, bytes (shared with the downloaded block: not copied).
    txs: BTreeMap<u128, (u8, Bytes)>,
    spent: BTreeMap<u128, (u128, u8)>,
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
        tx.open_table(LEAF_ROWS).map_err(st)?;
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
            self.unpersisted.txs.insert(key, (KIND_DEPOSIT, Bytes::copy_from_slice(deposit_tx)));
        }
    }

    /// Records a signed transaction of a valid block and the outputs it spends.
    pub fn record_signed(&mut self, blknum: u64, tx_index: u16, signed: &[u8], inputs: &[UtxoPos]) {
        self.record_signed_bytes(blknum, tx_index, Bytes::copy_from_slice(signed), inputs);
    }

    /// [`Self::record_signed`] keeping `signed` itself (no copy until the write).
    pub fn record_signed_bytes(
        &mut self,
        blknum: u64,
        tx_index: u16,
        signed: Bytes,
        inputs: &[UtxoPos],
    ) {
        let Some(key) = tx_key(blknum, tx_index) else { return };
        self.unpersisted.txs.insert(key, (KIND_SIGNED, signed));
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
        let mut value = Vec::new();
        for (k, (kind, bytes)) in &u.txs {
            value.clear();
            value.push(*kind);
            value.extend_from_slice(bytes);
            txs.insert(*k, value.as_slice()).map_err(st)?;
        }
        let mut spent = tx.open_table(SPENT).map_err(st)?;
        for (k, (txk, input)) in &u.spent {
            let mut v = [0u8; 17];
            v[..16].copy_from_slice(&txk.to_be_bytes());
            v[16] = *input;
            spent.insert(*k, v.as_slice()).map_err(st)?;
        }
        let mut rows = tx.open_table(LEAF_ROWS).map_err(st)?;
        let mut old = tx.open_table(LEAVES).map_err(st)?;
        for (n, l) in &u.leaves {
            // A block written again (never, today) keeps no row of its former self.
            rows.retain_in((*n, 0)..=(*n, u32::MAX), |_, _| false).map_err(st)?;
            old.remove(*n).map_err(st)?;
            for (row, hashes) in leaf_rows(l).enumerate() {
                value.clear();
                value.extend(hashes.iter().flat_map(|h| h.0));
                let row = u32::try_from(row).map_err(st)?;
                rows.insert((*n, row), value.as_slice()).map_err(st)?;
            }
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
        if let Some((kind, bytes)) = self.unpersisted.txs.get(&key) {
            return Ok(Some([&[*kind], bytes.as_ref()].concat()));
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

    /// The leaf hashes of validated block `blknum` (`None`: not a validated block), e.g. to prove
    /// an empty leaf past its last transaction (CHAL-6).
    pub fn leaves(&self, blknum: u64) -> Result<Option<Vec<B256>>, HistoryError> {
        match self.unpersisted.leaves.get(&blknum) {
            Some(l) => Ok(Some(l.to_vec())),
            None => self.stored_leaves(blknum),
        }
    }

    /// The tree of validated block `blknum`, from its leaf hashes (cached).
    pub fn tree(&self, blknum: u64) -> Result<Option<Arc<BlockTree>>, HistoryError> {
        if let Some((_, t)) = self.trees.lock().iter().find(|(n, _)| *n == blknum) {
            return Ok(Some(t.clone()));
        }
        let leaves: Vec<B256> = match self.unpersisted.leaves.get(&blknum) {
            Some(l) => l.to_vec(),
            None => match self.stored_leaves(blknum)? {
                Some(leaves) => leaves,
                None => return Ok(None),
            },
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

/// A block's leaf hashes cut into rows of [`LEAF_ROW`]; an empty block is one empty row.
fn leaf_rows(leaves: &[B256]) -> impl Iterator<Item = &[B256]> {
    let empty: &[B256] = &[];
    leaves.chunks(LEAF_ROW).chain(leaves.is_empty().then_some(empty))
}

impl History {
    /// Block `blknum`'s leaf hashes from the store: its rows, or its one row of a store written
    /// before the split.
    fn stored_leaves(&self, blknum: u64) -> Result<Option<Vec<B256>>, HistoryError> {
        let tx = self.db.begin_read().map_err(st)?;
        read_leaves(&tx, blknum)
    }
}

/// Block `blknum`'s leaf hashes in the store read by `tx`: its rows, or its one row of a store
/// written before the split (also what the tower's read routes use, without the view's lock).
pub(crate) fn read_leaves(
    tx: &redb::ReadTransaction,
    blknum: u64,
) -> Result<Option<Vec<B256>>, HistoryError> {
    let bad = || corrupt(format!("leaves of block {blknum}"));
    let rows = tx.open_table(LEAF_ROWS).map_err(st)?;
    let mut leaves = Vec::new();
    let mut found = false;
    for (expected, entry) in rows.range((blknum, 0)..=(blknum, u32::MAX)).map_err(st)?.enumerate() {
        let (k, v) = entry.map_err(st)?;
        let v = v.value();
        // Rows 0, 1, ... in order, every one but the last full (an empty block: one empty row).
        if k.value().1 as usize != expected
            || leaves.len() != expected * LEAF_ROW
            || v.len() % 32 != 0
            || v.len() > LEAF_ROW * 32
            || (v.is_empty() && expected > 0)
        {
            return Err(bad());
        }
        leaves.extend(v.chunks_exact(32).map(B256::from_slice));
        found = true;
    }
    if found {
        return Ok(Some(leaves));
    }
    let table = tx.open_table(LEAVES).map_err(st)?;
    let Some(v) = table.get(blknum).map_err(st)? else { return Ok(None) };
    let v = v.value();
    if v.len() % 32 != 0 {
        return Err(bad());
    }
    Ok(Some(v.chunks_exact(32).map(B256::from_slice).collect()))
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
    let mut leaves = tx.open_table(LEAF_ROWS).map_err(st)?;
    let mut times = tx.open_table(TIMES).map_err(st)?;
    for entry in old_blocks.iter().map_err(st)? {
        let (k, v) = entry.map_err(st)?;
        let blknum = k.value();
        let b: OldBlock = serde_json::from_slice(v.value()).map_err(|_| corrupt("old block"))?;
        let hashes: Vec<B256> = b.leaves.iter().map(|l| plasma_spec::leaf_hash(l)).collect();
        for (row, part) in leaf_rows(&hashes).enumerate() {
            let bytes: Vec<u8> = part.iter().flat_map(|h| h.0).collect();
            let row = u32::try_from(row).map_err(st)?;
            leaves.insert((blknum, row), bytes.as_slice()).map_err(st)?;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<B256> {
        (0..n).map(|i| plasma_spec::leaf_hash(&(i as u64).to_be_bytes())).collect()
    }

    fn persist(db: &Database, history: &mut History) {
        let tx = db.begin_write().unwrap();
        history.write(&tx).unwrap();
        tx.commit().unwrap();
        history.persisted();
    }

    fn allocated(db: &Database) -> u64 {
        let stats = db.begin_write().unwrap().stats().unwrap();
        stats.allocated_pages() * stats.page_size() as u64
    }

    #[test]
    fn a_full_blocks_leaves_take_about_their_bytes_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(History::open_database(&dir.path().join("w.redb")).unwrap());
        let mut history = History::open(db.clone()).unwrap();
        let full = leaves(plasma_spec::MAX_TXS_PER_BLOCK);
        let before = allocated(&db);
        history.record_block(2000, full.clone(), 7);
        persist(&db, &mut history);
        let grown = allocated(&db) - before;
        // 2 MiB of hashes. One 2 MiB row took a 4 MiB run of pages; 9 rows take 8 × 256 KiB,
        // a page for the last 8 hashes and the tables' own pages.
        assert!(grown < 2_200_000, "{grown} bytes of pages for 2 MiB of leaf hashes");
        let tree = history.tree(2000).unwrap().unwrap();
        assert_eq!(tree.root(), BlockTree::from_leaves(&full).unwrap().root());
        // Read back from disk, not from the cache or memory.
        let fresh = History::open(db).unwrap();
        assert_eq!(fresh.tree(2000).unwrap().unwrap().root(), tree.root());
        assert_eq!(fresh.tree(3000).unwrap().map(|t| t.root()), None);
    }

    #[test]
    fn rows_of_every_size_and_the_old_single_row_are_read() {
        let db = Arc::new(
            Database::builder()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .unwrap(),
        );
        let mut history = History::open(db.clone()).unwrap();
        let sizes = [0, 1, LEAF_ROW - 1, LEAF_ROW, LEAF_ROW + 1, 3 * LEAF_ROW];
        for (i, n) in sizes.iter().enumerate() {
            history.record_block(1000 * (i as u64 + 1), leaves(*n), 1);
        }
        persist(&db, &mut history);
        // A block written by the first WATCH-15 version: all its leaves in one row of LEAVES.
        let old = leaves(LEAF_ROW + 5);
        let tx = db.begin_write().unwrap();
        let bytes: Vec<u8> = old.iter().flat_map(|h| h.0).collect();
        tx.open_table(LEAVES).unwrap().insert(9000, bytes.as_slice()).unwrap();
        tx.commit().unwrap();
        let fresh = History::open(db.clone()).unwrap();
        for (i, n) in sizes.iter().enumerate() {
            let tree = fresh.tree(1000 * (i as u64 + 1)).unwrap().unwrap();
            assert_eq!(tree.root(), BlockTree::from_leaves(&leaves(*n)).unwrap().root(), "{n}");
            assert_eq!(tree.len(), *n);
        }
        let tree = fresh.tree(9000).unwrap().unwrap();
        assert_eq!(tree.root(), BlockTree::from_leaves(&old).unwrap().root());
        // A missing middle row is corruption, not a shorter block.
        let tx = db.begin_write().unwrap();
        tx.open_table(LEAF_ROWS).unwrap().remove((6000, 1)).unwrap();
        tx.commit().unwrap();
        assert!(matches!(History::open(db).unwrap().tree(6000), Err(HistoryError::Corrupt { .. })));
    }
}
