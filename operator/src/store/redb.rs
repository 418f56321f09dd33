//! The embedded backend (the default): durable state in redb — the UTXO set, blocks, the
//! transaction index, the mempool and the cursors. Every change that an API response
//! acknowledges is committed (fsync) before the response, so it survives `kill -9`. One process
//! owns the file (redb locks it), so there is no fencing to do: [`super::Store::set_fence`] is a
//! no-op here.

use super::{
    Batch, BlockRecord, BlockRows, DEPOSIT_CURSOR, DaHeaderRow, DaReceiptRow, EXIT_CURSOR,
    EXITING_KEY, Loaded, Lookup, NEXT_CHILD_BLOCK, Rows, SCHEMA, SCHEMA_VERSION, StoreError,
    TxRead, block_of, check_wire, decode_output, exiting_from_json,
};
use crate::blocks::{BlockInfo, EncodedBlock, TX_ROW, WIRE_CHUNK, WireMap};
use alloy::primitives::{Address, B256};
use plasma_spec::{Output, UtxoPos};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::time::{Duration, Instant};

const UTXOS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("utxos");
/// Schema 1 (before #15): each block as one JSON record. Migrated away at open (OP-9).
const LEGACY_BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");
/// Block number → [`BlockInfo`] (root, count, wire length, commitment).
const BLOCK_INFO: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("block_info");
/// (block, row) → the next [`WIRE_CHUNK`] bytes of the block's wire form.
const BLOCK_WIRE: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("block_wire");
/// Block → how its wire form is made of its `BLOCK_TXS` rows ([`WireMap`], schema 5): a block
/// with a map has no `BLOCK_WIRE` rows.
const BLOCK_WIRE_MAP: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("block_wire_map");
/// (block, tile) → a proof tile (see `blocks.rs`).
const BLOCK_TILES: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("block_tiles");
/// Block → the tree's levels above its tiles (see `blocks.rs`).
const BLOCK_TOP: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("block_tree_top");
/// (block, row) → the next [`TX_ROW`](crate::blocks::TX_ROW) bytes of its deflated transaction
/// groups (of [`TX_GROUP`](crate::blocks::TX_GROUP) transactions each), end to end.
const BLOCK_TXS: TableDefinition<'_, (u64, u32), &[u8]> = TableDefinition::new("block_txs");
/// Block → where each of its deflated groups starts in its `BLOCK_TXS` rows (u32s).
const BLOCK_TX_OFFSETS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("block_tx_offsets");
const TXS: TableDefinition<'_, &[u8], (u64, u32)> = TableDefinition::new("txs");
const MEMPOOL: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("mempool");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// The exit-game facts of LEDGER-9 (`plasma_spec::ExitingOutputs` as JSON), under one key.
const EXITING: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("exiting");
/// Block → its availability header and the operator's signature on it ([`DaHeaderRow`], DA-4).
const DA_HEADERS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("da_headers");
/// (block, chunk index) → the tower's address (20 bytes) and its receipt signature (65 bytes).
const DA_RECEIPTS: TableDefinition<'_, (u64, u16), &[u8]> = TableDefinition::new("da_receipts");
/// Blocks whose chunks some tower still lacks and that are still pushed: resumed after a restart.
const DA_PENDING: TableDefinition<'_, u64, u8> = TableDefinition::new("da_pending");

/// The database.
#[derive(Debug)]
pub(crate) struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens (or creates) the database at `path` with the default cache.
    #[cfg(test)]
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, super::DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the database at `path` with a page cache of `cache_bytes`. A store of
    /// schema 1 (blocks as JSON) or 2 (the rows of OP-9 in the old sizes) is migrated block by
    /// block, each block in one transaction, so an interrupted migration resumes; a store of a
    /// newer schema is refused (OP-9).
    pub(crate) fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(redb::Error::Io(e)))?;
        }
        let db = redb::Builder::new().set_cache_size(cache_bytes).create(path)?;
        // Create every table so readers never see a missing one.
        let tx = db.begin_write()?;
        let legacy = tx.list_tables()?.any(|t| redb::TableHandle::name(&t) == "blocks");
        let version = tx.open_table(META)?.get(SCHEMA_VERSION)?.map(|v| v.value());
        if let Some(found) = version
            && found > SCHEMA
        {
            return Err(StoreError::UnsupportedSchema { found, supported: SCHEMA });
        }
        tx.open_table(UTXOS)?;
        tx.open_table(BLOCK_INFO)?;
        tx.open_table(BLOCK_WIRE)?;
        tx.open_table(BLOCK_WIRE_MAP)?;
        tx.open_table(BLOCK_TILES)?;
        tx.open_table(BLOCK_TOP)?;
        tx.open_table(BLOCK_TXS)?;
        tx.open_table(BLOCK_TX_OFFSETS)?;
        tx.open_table(TXS)?;
        tx.open_table(MEMPOOL)?;
        tx.open_table(META)?;
        tx.open_table(EXITING)?;
        tx.open_table(DA_HEADERS)?;
        tx.open_table(DA_RECEIPTS)?;
        tx.open_table(DA_PENDING)?;
        if !legacy && version.is_none() {
            tx.open_table(META)?.insert(SCHEMA_VERSION, SCHEMA)?;
        }
        tx.commit()?;
        let store = Self { db };
        if legacy {
            store.migrate_v1()?;
        } else if version == Some(2) {
            store.migrate_v2()?;
        } else if let Some(found @ (3 | 4)) = version {
            // Schemas 4 and 5 change no stored row: their number keeps an older binary from
            // opening the store — one that would load a UTXO set without a block's effects
            // written behind it (4), or find no wire rows for the blocks made from here on (5).
            let tx = store.db.begin_write()?;
            tx.open_table(META)?.insert(SCHEMA_VERSION, SCHEMA)?;
            tx.commit()?;
            tracing::info!(target: "operator::store", from = found, to = SCHEMA, "store schema raised (#19: effects written behind a block; wire form served from the transaction groups)");
        }
        Ok(store)
    }

    /// Schema 2 → 3: each block's wire rows read back whole (their concatenation is the wire
    /// form whatever the row size), its rows deleted and written again in the new sizes, the
    /// wire bytes unchanged, in one transaction per block. Re-indexing a block twice gives the
    /// same rows, so an interrupted migration simply runs again; the version is set at the end.
    fn migrate_v2(&self) -> Result<(), StoreError> {
        let infos: Vec<BlockInfo> = {
            let tx = self.db.begin_read()?;
            let infos = tx.open_table(BLOCK_INFO)?;
            let mut all = Vec::new();
            for entry in infos.iter()? {
                let (k, v) = entry?;
                all.push(BlockInfo::from_bytes(k.value(), v.value())?);
            }
            all
        };
        for info in &infos {
            let tx = self.db.begin_write()?;
            {
                let blknum = info.blknum;
                let rows = (blknum, 0)..=(blknum, u32::MAX);
                let mut wire = Vec::with_capacity(info.wire_len as usize);
                for entry in tx.open_table(BLOCK_WIRE)?.range(rows.clone())? {
                    wire.extend_from_slice(entry?.1.value());
                }
                let encoded = EncodedBlock::from_wire(*info, wire)?;
                tx.open_table(BLOCK_WIRE)?.retain_in(rows.clone(), |_, _| false)?;
                tx.open_table(BLOCK_TILES)?.retain_in(rows.clone(), |_, _| false)?;
                tx.open_table(BLOCK_TXS)?.retain_in(rows, |_, _| false)?;
                write_block(&tx, &encoded)?;
            }
            tx.commit()?;
        }
        let tx = self.db.begin_write()?;
        tx.open_table(META)?.insert(SCHEMA_VERSION, SCHEMA)?;
        tx.commit()?;
        tracing::info!(target: "operator::store", blocks = infos.len(), "store migrated from schema 2 to 3 (rows sized to the allocator's pages, OP-9)");
        Ok(())
    }

    /// Schema 1 → 2: every JSON block re-encoded (wire form and index), its JSON row deleted in
    /// the same transaction; then the JSON table is dropped and the version set.
    fn migrate_v1(&self) -> Result<(), StoreError> {
        let keys: Vec<u64> = {
            let tx = self.db.begin_read()?;
            let legacy = tx.open_table(LEGACY_BLOCKS)?;
            legacy.iter()?.map(|e| e.map(|(k, _)| k.value())).collect::<Result<_, _>>()?
        };
        let count = keys.len();
        for blknum in keys {
            let tx = self.db.begin_write()?;
            {
                let mut legacy = tx.open_table(LEGACY_BLOCKS)?;
                let record: BlockRecord = match legacy.get(blknum)? {
                    Some(v) => serde_json::from_slice(v.value()).map_err(|e| {
                        StoreError::Corrupt { what: "schema 1 block", reason: e.to_string() }
                    })?,
                    None => continue,
                };
                let encoded = EncodedBlock::from_record(&record)?;
                write_block(&tx, &encoded)?;
                legacy.remove(blknum)?;
            }
            tx.commit()?;
        }
        let tx = self.db.begin_write()?;
        tx.delete_table(LEGACY_BLOCKS)?;
        tx.open_table(META)?.insert(SCHEMA_VERSION, SCHEMA)?;
        tx.commit()?;
        tracing::info!(target: "operator::store", blocks = count, "store migrated from schema 1 (JSON blocks) to 2 (OP-9)");
        Ok(())
    }

    /// Applies `batch` atomically and durably.
    pub(crate) fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        let rows = Rows::of(batch)?;
        let tx = self.db.begin_write()?;
        for b in &batch.blocks {
            write_block(&tx, b)?;
        }
        write_rows(&tx, &rows)?;
        tx.commit()?;
        Ok(())
    }

    /// [`RedbStore::apply`] of `batch` and of one more block, encoded by `encode` on another thread
    /// while this one writes the batch's rows (a produced block's effects), in the same write
    /// transaction: nothing is durable, or visible, before the commit of both (OP-3). Returns the
    /// block's info and how long this thread spent on the rows, then on the block's rows and
    /// the commit with its fsync (waiting for the encoding first).
    pub(crate) fn apply_with_block<F>(
        &self,
        batch: &Batch,
        encode: F,
    ) -> Result<(BlockInfo, Duration, Duration), StoreError>
    where
        F: FnOnce() -> Result<EncodedBlock, StoreError> + Send,
    {
        std::thread::scope(|s| {
            let encoding = s.spawn(encode);
            let t = Instant::now();
            let rows = Rows::of(batch)?;
            let tx = self.db.begin_write()?;
            write_rows(&tx, &rows)?;
            let rows = t.elapsed();
            let encoded = encoding.join().map_err(|_| StoreError::Corrupt {
                what: "block",
                reason: "encoder panicked".into(),
            })??;
            let t = Instant::now();
            write_block(&tx, &encoded)?;
            tx.commit()?;
            Ok((encoded.info, rows, t.elapsed()))
        })
    }
}

/// A batch's rows ([`Rows`]: each key once, in key order) in `tx`; the mempool's removals in
/// one pass over their range (the table holds only pending entries, at most
/// `api.max_mempool`).
fn write_rows(tx: &redb::WriteTransaction, rows: &Rows) -> Result<(), StoreError> {
    let mut utxos = tx.open_table(UTXOS)?;
    for pos in &rows.spent {
        utxos.remove(pos.to_u128())?;
    }
    for (pos, _, packed) in &rows.created {
        utxos.insert(pos.to_u128(), packed.as_slice())?;
    }
    let mut infos = tx.open_table(BLOCK_INFO)?;
    for (blknum, info) in &rows.infos {
        infos.insert(*blknum, info.as_slice())?;
    }
    let mut txs = tx.open_table(TXS)?;
    for (hash, blknum, index) in &rows.txs {
        txs.insert(hash.as_slice(), (*blknum, *index))?;
    }
    let mut mempool = tx.open_table(MEMPOOL)?;
    for (seq, bytes) in &rows.mempool_add {
        mempool.insert(*seq, bytes.as_slice())?;
    }
    let removed = &rows.mempool_remove;
    match removed.as_slice() {
        [] => {}
        [seq] => {
            mempool.remove(*seq)?;
        }
        [first, .., last] => {
            mempool.retain_in(*first..=*last, |seq, _| removed.binary_search(&seq).is_err())?;
        }
    }
    let mut meta = tx.open_table(META)?;
    for (key, value) in &rows.meta {
        meta.insert(*key, *value)?;
    }
    if let Some(json) = &rows.exiting {
        tx.open_table(EXITING)?.insert(EXITING_KEY, json.as_slice())?;
    }
    Ok(())
}

impl RedbStore {
    /// Reads everything the in-memory state is rebuilt from.
    pub(crate) fn load(&self) -> Result<Loaded, StoreError> {
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
            loaded.exiting = exiting_from_json(v.value())?;
        }
        let infos = tx.open_table(BLOCK_INFO)?;
        for entry in infos.iter()? {
            let (k, v) = entry?;
            let blknum = k.value();
            if blknum % plasma_spec::CHILD_BLOCK_INTERVAL != 0 {
                continue;
            }
            if BlockInfo::from_bytes(blknum, v.value())?.l1_timestamp.is_none() {
                loaded.uncommitted.push(blknum);
            }
        }
        Ok(loaded)
    }

    /// A stored block's info row.
    pub(crate) fn block_info(&self, blknum: u64) -> Result<Option<BlockInfo>, StoreError> {
        let tx = self.db.begin_read()?;
        let infos = tx.open_table(BLOCK_INFO)?;
        infos.get(blknum)?.map(|v| BlockInfo::from_bytes(blknum, v.value())).transpose()
    }

    /// A stored block, decoded whole: for deposit blocks and small child blocks (a full child
    /// block is served from [`RedbStore::wire_chunk`], never decoded).
    pub(crate) fn block(&self, blknum: u64) -> Result<Option<BlockRecord>, StoreError> {
        let Some((info, wire)) = self.wire(blknum)? else { return Ok(None) };
        block_of(&info, &wire).map(Some)
    }

    /// The stored wire bytes of `blknum` from `offset` to the end of the row that holds it (at
    /// most [`WIRE_CHUNK`] bytes); empty at or past the end.
    pub(crate) fn wire_chunk(&self, blknum: u64, offset: u64) -> Result<Vec<u8>, StoreError> {
        let row = (offset / WIRE_CHUNK as u64) as u32;
        let skip = (offset % WIRE_CHUNK as u64) as usize;
        let tx = self.db.begin_read()?;
        if let Some(map) = wire_map(&tx, blknum)? {
            // The same chunks as the rows would give: to the end of the row holding `offset`.
            let end = (u64::from(row) + 1) * WIRE_CHUNK as u64;
            let mut out = Vec::new();
            map.read(offset..end, |range| stream_bytes(&tx, blknum, range), &mut out)?;
            return Ok(out);
        }
        let wire = tx.open_table(BLOCK_WIRE)?;
        Ok(match wire.get((blknum, row))? {
            Some(v) => v.value().get(skip..).unwrap_or_default().to_vec(),
            None => Vec::new(),
        })
    }

    /// A block's whole wire form (OP-9) with its info row, read in one transaction: what the
    /// availability code encodes (DA-1).
    pub(crate) fn wire(&self, blknum: u64) -> Result<Option<(BlockInfo, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read()?;
        let Some(info) = tx.open_table(BLOCK_INFO)?.get(blknum)? else { return Ok(None) };
        let info = BlockInfo::from_bytes(blknum, info.value())?;
        let mut wire = Vec::with_capacity(usize::try_from(info.wire_len).unwrap_or(0));
        if let Some(map) = wire_map(&tx, blknum)? {
            map.read(0..map.len(), |range| stream_bytes(&tx, blknum, range), &mut wire)?;
            check_wire(&info, &wire)?;
            return Ok(Some((info, wire)));
        }
        for entry in tx.open_table(BLOCK_WIRE)?.range((blknum, 0)..=(blknum, u32::MAX))? {
            wire.extend_from_slice(entry?.1.value());
        }
        check_wire(&info, &wire)?;
        Ok(Some((info, wire)))
    }

    /// Stores a block's availability header and marks the block pending (its chunks are being
    /// pushed). A different header stored before for the block (another `k`, `n` or tower set
    /// after a restart) is replaced and its receipts are deleted: they name the old chunk root.
    /// Returns whether receipts were dropped so.
    pub(crate) fn put_da_header(&self, header: &DaHeaderRow) -> Result<bool, StoreError> {
        let blknum = header.blknum;
        let tx = self.db.begin_write()?;
        let replaced;
        {
            let mut headers = tx.open_table(DA_HEADERS)?;
            let old = headers
                .get(blknum)?
                .map(|v| DaHeaderRow::from_bytes(blknum, v.value()))
                .transpose()?;
            replaced = old.as_ref().is_some_and(|old| old != header);
            if old.as_ref() != Some(header) {
                headers.insert(blknum, header.to_bytes().as_slice())?;
            }
            if replaced {
                let rows = (blknum, 0)..=(blknum, u16::MAX);
                tx.open_table(DA_RECEIPTS)?.retain_in(rows, |_, _| false)?;
            }
            tx.open_table(DA_PENDING)?.insert(blknum, 1)?;
        }
        tx.commit()?;
        Ok(replaced)
    }

    /// A block's stored availability header.
    pub(crate) fn da_header(&self, blknum: u64) -> Result<Option<DaHeaderRow>, StoreError> {
        let tx = self.db.begin_read()?;
        let headers = tx.open_table(DA_HEADERS)?;
        headers.get(blknum)?.map(|v| DaHeaderRow::from_bytes(blknum, v.value())).transpose()
    }

    /// Stores a tower's receipt (checked by the caller against the stored header), durably.
    pub(crate) fn put_da_receipt(
        &self,
        blknum: u64,
        receipt: &DaReceiptRow,
    ) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        let value = receipt.to_value();
        tx.open_table(DA_RECEIPTS)?.insert((blknum, receipt.index), value.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// A block's stored receipts, by chunk index.
    pub(crate) fn da_receipts(&self, blknum: u64) -> Result<Vec<DaReceiptRow>, StoreError> {
        let tx = self.db.begin_read()?;
        let receipts = tx.open_table(DA_RECEIPTS)?;
        let mut out = Vec::new();
        for entry in receipts.range((blknum, 0)..=(blknum, u16::MAX))? {
            let (k, v) = entry?;
            out.push(DaReceiptRow::from_value(blknum, k.value().1, v.value())?);
        }
        Ok(out)
    }

    /// Blocks whose chunks were still being pushed when the operator stopped.
    pub(crate) fn da_pending(&self) -> Result<Vec<u64>, StoreError> {
        let tx = self.db.begin_read()?;
        let pending = tx.open_table(DA_PENDING)?;
        pending.iter()?.map(|e| e.map(|(k, _)| k.value()).map_err(Into::into)).collect()
    }

    /// The block's chunks are no longer pushed (every tower answered, the block is final, or the
    /// pushes gave up).
    pub(crate) fn clear_da_pending(&self, blknum: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(DA_PENDING)?.remove(blknum)?;
        tx.commit()?;
        Ok(())
    }

    /// Transaction `index` of block `blknum` with its proof: one read transaction; the info row,
    /// the proof from a tile and the tree's top row, the transaction from its group (the offsets
    /// row, then the one or two rows the group lies in); the block is never decoded (OP-9).
    pub(crate) fn inclusion(&self, blknum: u64, index: u32) -> Result<Lookup, StoreError> {
        let tx = self.db.begin_read()?;
        let Some(info) = tx.open_table(BLOCK_INFO)?.get(blknum)? else {
            return Ok(Lookup::UnknownBlock);
        };
        let info = BlockInfo::from_bytes(blknum, info.value())?;
        let tile = match TxRead::tile(&info, index) {
            Ok(tile) => tile,
            Err(answer) => return Ok(answer),
        };
        let tile = tx.open_table(BLOCK_TILES)?.get((blknum, tile))?;
        let top = tx.open_table(BLOCK_TOP)?.get(blknum)?;
        let offsets = tx.open_table(BLOCK_TX_OFFSETS)?.get(blknum)?;
        let mut read = TxRead::new(
            info,
            index,
            tile.as_ref().map(|v| v.value()),
            top.as_ref().map(|v| v.value()),
            offsets.as_ref().map(|v| v.value()),
        )?;
        let rows = (blknum, read.first_row())..=(blknum, read.last_row());
        for entry in tx.open_table(BLOCK_TXS)?.range(rows)? {
            let (k, v) = entry?;
            read.add_row(k.value().1, v.value())?;
        }
        read.finish()
    }

    /// Where a transaction was included.
    pub(crate) fn tx_location(&self, hash: &B256) -> Result<Option<(u64, u32)>, StoreError> {
        let tx = self.db.begin_read()?;
        let txs = tx.open_table(TXS)?;
        Ok(txs.get(hash.as_slice())?.map(|v| v.value()))
    }

    /// [`RedbStore::tx_location`] of each of `hashes`, in one read transaction.
    pub(crate) fn tx_locations(
        &self,
        hashes: &[B256],
    ) -> Result<Vec<Option<(u64, u32)>>, StoreError> {
        let tx = self.db.begin_read()?;
        let txs = tx.open_table(TXS)?;
        hashes.iter().map(|h| Ok(txs.get(h.as_slice())?.map(|v| v.value()))).collect()
    }

    /// A meta value.
    pub(crate) fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        Ok(meta.get(key)?.map(|v| v.value()))
    }

    /// One unspent output.
    pub(crate) fn utxo(&self, pos: UtxoPos) -> Result<Option<Output>, StoreError> {
        let tx = self.db.begin_read()?;
        let utxos = tx.open_table(UTXOS)?;
        utxos.get(pos.to_u128())?.map(|v| decode_output(v.value())).transpose()
    }

    /// An owner's outputs after `after`, in position order. The UTXO table is keyed by position
    /// only, so this is a scan of the whole table (1M outputs: ~0.3 s): acceptable for redb,
    /// whose operator serves owners from its in-memory index; a PostgreSQL standby uses the
    /// `(owner, pos)` index instead.
    pub(crate) fn utxos_page(
        &self,
        owner: Address,
        after: Option<UtxoPos>,
        limit: usize,
    ) -> Result<(Vec<(UtxoPos, Output)>, bool), StoreError> {
        let tx = self.db.begin_read()?;
        let utxos = tx.open_table(UTXOS)?;
        let start = after.map_or(0, |p| p.to_u128().saturating_add(1));
        let mut page = Vec::new();
        for entry in utxos.range(start..)? {
            let (k, v) = entry?;
            let v = v.value();
            if v.get(..20) != Some(owner.as_slice()) {
                continue;
            }
            if page.len() == limit {
                return Ok((page, true));
            }
            let pos = UtxoPos::from_u128(k.value())
                .map_err(|e| StoreError::Corrupt { what: "utxo key", reason: e.to_string() })?;
            page.push((pos, decode_output(v)?));
        }
        Ok((page, false))
    }

    /// The highest stored block number.
    pub(crate) fn head(&self) -> Result<Option<u64>, StoreError> {
        let tx = self.db.begin_read()?;
        let infos = tx.open_table(BLOCK_INFO)?;
        Ok(infos.last()?.map(|(k, _)| k.value()))
    }

    /// The exiting outputs as last stored (one row; empty if none was ever stored).
    pub(crate) fn exiting(&self) -> Result<plasma_spec::ExitingOutputs, StoreError> {
        let tx = self.db.begin_read()?;
        match tx.open_table(EXITING)?.get(EXITING_KEY)? {
            Some(v) => exiting_from_json(v.value()),
            None => Ok(plasma_spec::ExitingOutputs::default()),
        }
    }

    /// Up to `limit` mempool entries after sequence number `after`, in order.
    pub(crate) fn mempool_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read()?;
        let mempool = tx.open_table(MEMPOOL)?;
        let range = match after {
            Some(a) if a == u64::MAX => return Ok(Vec::new()),
            Some(a) => mempool.range(a + 1..)?,
            None => mempool.range(0..)?,
        };
        let mut page = Vec::new();
        for entry in range.take(limit) {
            let (k, v) = entry?;
            page.push((k.value(), v.value().to_vec()));
        }
        Ok(page)
    }
}

/// Writes a new block's rows ([`BlockRows`]).
fn write_block(tx: &redb::WriteTransaction, b: &EncodedBlock) -> Result<(), StoreError> {
    let rows = BlockRows::of(b);
    let blknum = rows.blknum;
    tx.open_table(BLOCK_INFO)?.insert(blknum, rows.info.as_slice())?;
    // A wire form made of the groups is kept as its map, not a second time (schema 5).
    let no_rows = Vec::new();
    let wire_rows = match &b.wire_map {
        Some(map) => {
            tx.open_table(BLOCK_WIRE_MAP)?.insert(blknum, map.to_bytes().as_slice())?;
            &no_rows
        }
        None => &rows.wire,
    };
    for (table, data) in
        [(BLOCK_WIRE, wire_rows), (BLOCK_TILES, &rows.tiles), (BLOCK_TXS, &rows.tx_rows)]
    {
        let mut table = tx.open_table(table)?;
        for (i, row) in data.iter().enumerate() {
            table.insert((blknum, i as u32), *row)?;
        }
    }
    tx.open_table(BLOCK_TOP)?.insert(blknum, rows.top)?;
    tx.open_table(BLOCK_TX_OFFSETS)?.insert(blknum, rows.tx_offsets)?;
    Ok(())
}

/// A block's wire map, if it was stored with one (schema 5).
fn wire_map(tx: &redb::ReadTransaction, blknum: u64) -> Result<Option<WireMap>, StoreError> {
    tx.open_table(BLOCK_WIRE_MAP)?.get(blknum)?.map(|v| WireMap::from_bytes(v.value())).transpose()
}

/// Bytes `range` of a block's transaction stream (its `BLOCK_TXS` rows end to end); `None` if
/// the rows do not hold them all.
fn stream_bytes(
    tx: &redb::ReadTransaction,
    blknum: u64,
    range: std::ops::Range<u64>,
) -> Option<Vec<u8>> {
    let row_len = TX_ROW as u64;
    if range.start >= range.end {
        return Some(Vec::new());
    }
    let (first, last) = (range.start / row_len, (range.end - 1) / row_len);
    let (first_row, last_row) = (u32::try_from(first).ok()?, u32::try_from(last).ok()?);
    let mut bytes = Vec::with_capacity(((last - first + 1) * row_len) as usize);
    let table = tx.open_table(BLOCK_TXS).ok()?;
    for (expected, entry) in
        (first_row..).zip(table.range((blknum, first_row)..=(blknum, last_row)).ok()?)
    {
        let (k, v) = entry.ok()?;
        if k.value().1 != expected {
            return None;
        }
        bytes.extend_from_slice(v.value());
    }
    // Cut to the range in place (no second copy).
    let skip = (range.start - first * row_len) as usize;
    let len = (range.end - range.start) as usize;
    if bytes.len() < skip + len {
        return None;
    }
    bytes.truncate(skip + len);
    bytes.drain(..skip);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::TX_ROW;
    use crate::store::tests::payment_block;
    use alloy::primitives::U256;

    #[test]
    fn a_schema_1_store_is_migrated_at_open_and_served_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let child = payment_block(1000, 300);
        let deposit_tx = plasma_spec::Transaction::deposit(
            Address::repeat_byte(3),
            Address::ZERO,
            U256::from(9),
        )
        .encode();
        let deposit = BlockRecord {
            blknum: 1001,
            root: plasma_spec::deposit_block_root(&deposit_tx),
            txs: vec![deposit_tx.into()],
            l1_timestamp: Some(5),
            l1_tx: None,
        };
        {
            // What an operator before #15 wrote: JSON blocks, no schema version.
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut blocks = tx.open_table(LEGACY_BLOCKS).unwrap();
                for b in [&child, &deposit] {
                    blocks.insert(b.blknum, serde_json::to_vec(b).unwrap().as_slice()).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.meta(SCHEMA_VERSION).unwrap(), Some(SCHEMA));
        assert_eq!(store.block(1000).unwrap().unwrap(), child);
        assert_eq!(store.block(1001).unwrap().unwrap(), deposit);
        let tree = plasma_spec::BlockTree::from_txs(&[&deposit.txs[0]]).unwrap();
        assert_eq!(tree.root(), deposit.root);
        let Lookup::Found(inc) = store.inclusion(1000, 299).unwrap() else { panic!() };
        assert_eq!(inc.stored, child.txs[299].to_vec());
        let proof = plasma_spec::Proof::from_bytes(&inc.proof).unwrap();
        assert!(proof.verify(plasma_spec::leaf_hash(&inc.tx_bytes), 299, child.root));
        assert_eq!(store.inclusion(1000, 300).unwrap(), Lookup::OutOfRange { tx_count: 300 });
        assert_eq!(store.inclusion(2000, 0).unwrap(), Lookup::UnknownBlock);
        drop(store);
        // The JSON copies are gone; opening again changes nothing.
        let store = RedbStore::open(&path).unwrap();
        let tx = store.db.begin_read().unwrap();
        assert!(tx.open_table(LEGACY_BLOCKS).is_err(), "the schema 1 table is dropped");
        assert_eq!(store.block(1000).unwrap().unwrap(), child);
    }

    /// Row counts of a block in the block tables.
    fn rows_of(store: &RedbStore, blknum: u64) -> [usize; 3] {
        let tx = store.db.begin_read().unwrap();
        let rows = (blknum, 0)..=(blknum, u32::MAX);
        [BLOCK_WIRE, BLOCK_TILES, BLOCK_TXS]
            .map(|t| tx.open_table(t).unwrap().range(rows.clone()).unwrap().count())
    }

    #[test]
    fn a_schema_2_store_is_migrated_at_open_keeping_the_wire_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let child = payment_block(1000, 5_000);
        let encoded = EncodedBlock::from_record(&child).unwrap();
        let wire = encoded.wire.clone();
        {
            // What the previous commit wrote (schema 2): the wire form in 256 KiB rows, tiles of
            // 16,609 bytes (the siblings above in each), one row per group of 64.
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            {
                tx.open_table(META).unwrap().insert(SCHEMA_VERSION, 2).unwrap();
                let info = encoded.info.to_bytes();
                tx.open_table(BLOCK_INFO).unwrap().insert(1000, info.as_slice()).unwrap();
                let mut rows = tx.open_table(BLOCK_WIRE).unwrap();
                for (i, c) in wire.chunks(256 * 1024).enumerate() {
                    rows.insert((1000, i as u32), c).unwrap();
                }
                let mut tiles = tx.open_table(BLOCK_TILES).unwrap();
                for i in 0..20 {
                    tiles.insert((1000, i), [8u8; 16_609].as_slice()).unwrap();
                }
                let mut groups = tx.open_table(BLOCK_TXS).unwrap();
                for i in 0..79 {
                    groups.insert((1000, i), [1u8; 9_000].as_slice()).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        let check = |store: &RedbStore| {
            assert_eq!(store.meta(SCHEMA_VERSION).unwrap(), Some(SCHEMA));
            assert_eq!(store.block(1000).unwrap().unwrap(), child);
            let mut served = Vec::new();
            while served.len() < wire.len() {
                served.extend(store.wire_chunk(1000, served.len() as u64).unwrap());
            }
            assert_eq!(served, wire, "the same wire bytes");
            for i in [0u32, 63, 64, 2_500, 4_999] {
                let Lookup::Found(inc) = store.inclusion(1000, i).unwrap() else { panic!() };
                assert_eq!(inc.stored, child.txs[i as usize].to_vec());
                let proof = plasma_spec::Proof::from_bytes(&inc.proof).unwrap();
                let leaf = plasma_spec::leaf_hash(&inc.tx_bytes);
                assert!(proof.verify(leaf, i as usize, child.root), "proof of {i}");
            }
            // No row of the old layout is left behind.
            let new = [
                wire.len().div_ceil(WIRE_CHUNK),
                encoded.tiles.len(),
                encoded.tx_stream.len().div_ceil(TX_ROW),
            ];
            assert_eq!(rows_of(store, 1000), new);
        };
        check(&RedbStore::open(&path).unwrap());
        // Interrupted after some blocks: the version is still 2 and the blocks done are done
        // again, to the same rows.
        RedbStore::open(&path)
            .unwrap()
            .apply(&Batch { meta: vec![(SCHEMA_VERSION, 2)], ..Batch::default() })
            .unwrap();
        check(&RedbStore::open(&path).unwrap());
    }

    /// Every chunk a download asks for, from offset 0 on, row by row (what `/v1/blocks` serves).
    fn chunks_of(store: &RedbStore, blknum: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let chunk = store.wire_chunk(blknum, out.len() as u64).unwrap();
            if chunk.is_empty() {
                return out;
            }
            assert!(chunk.len() <= WIRE_CHUNK);
            out.extend_from_slice(&chunk);
        }
    }

    #[test]
    fn schemas_3_and_4_are_raised_to_5_and_their_wire_rows_still_served() {
        for found in [3, 4] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.redb");
            let store = RedbStore::open(&path).unwrap();
            // A block as schema 4 stored it: its wire form in rows of its own.
            let mut old = EncodedBlock::from_record(&payment_block(1000, 3000)).unwrap();
            assert!(old.wire_map.is_some());
            old.wire_map = None;
            let old_wire = old.wire.clone();
            store
                .apply(&Batch {
                    blocks: vec![old],
                    meta: vec![(SCHEMA_VERSION, found)],
                    ..Batch::default()
                })
                .unwrap();
            drop(store);
            let store = RedbStore::open(&path).unwrap();
            assert_eq!(SCHEMA, 5);
            assert_eq!(store.meta(SCHEMA_VERSION).unwrap(), Some(5), "from {found}");
            assert!(store.wire(1000).unwrap().unwrap().1 == old_wire);
            assert!(chunks_of(&store, 1000) == old_wire);
            // A block stored now: no wire rows, served from its groups, the same bytes.
            let new = EncodedBlock::from_record(&payment_block(2000, 3000)).unwrap();
            let new_wire = new.wire.clone();
            store.apply(&Batch { blocks: vec![new], ..Batch::default() }).unwrap();
            let tx = store.db.begin_read().unwrap();
            let rows = tx.open_table(BLOCK_WIRE).unwrap();
            assert_eq!(rows.range((2000, 0)..=(2000, u32::MAX)).unwrap().count(), 0);
            assert!(rows.range((1000, 0)..=(1000, u32::MAX)).unwrap().count() > 0);
            assert!(store.wire(2000).unwrap().unwrap().1 == new_wire);
            assert!(chunks_of(&store, 2000) == new_wire);
        }
    }

    /// The wire form served from the groups is the wire form at every offset: each chunk from
    /// any offset (row starts and ends, the header's end, mid-row, past the end) is the wire
    /// bytes from there to the end of the row that holds it, for blocks of 1 to 2^16 - 1
    /// transactions.
    #[test]
    fn chunks_served_from_the_groups_are_the_wire_forms_at_every_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("state.redb")).unwrap();
        for (k, n) in [1usize, 2, 63, 64, 65, 1000, 20_000].into_iter().enumerate() {
            let blknum = 1000 * (k as u64 + 1);
            let block = EncodedBlock::from_record(&payment_block(blknum, n)).unwrap();
            assert!(block.wire_map.is_some(), "{n}");
            let wire = block.wire.clone();
            store.apply(&Batch { blocks: vec![block], ..Batch::default() }).unwrap();
            let w = WIRE_CHUNK as u64;
            let len = wire.len() as u64;
            let mut offsets = vec![0, 1, 64, 65, 66, len / 2, len - 1, len, len + 1, len + w];
            for row in 1..=len / w {
                offsets.extend([row * w - 1, row * w, row * w + 1]);
            }
            for offset in offsets {
                let expected = if offset >= len {
                    &[][..]
                } else {
                    let end = ((offset / w + 1) * w).min(len);
                    &wire[offset as usize..end as usize]
                };
                assert!(
                    store.wire_chunk(blknum, offset).unwrap() == expected,
                    "{n} txs, offset {offset}"
                );
            }
            assert!(chunks_of(&store, blknum) == wire, "{n}");
            assert!(store.wire(blknum).unwrap().unwrap().1 == wire, "{n}");
        }
    }

    /// A map row that does not parse, or whose stream rows are missing, is a typed corruption,
    /// never wrong bytes.
    #[test]
    fn a_broken_wire_map_is_reported_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("state.redb")).unwrap();
        let block = EncodedBlock::from_record(&payment_block(1000, 500)).unwrap();
        store.apply(&Batch { blocks: vec![block], ..Batch::default() }).unwrap();
        // The stream's rows gone.
        let tx = store.db.begin_write().unwrap();
        tx.open_table(BLOCK_TXS)
            .unwrap()
            .retain_in((1000, 0)..=(1000, u32::MAX), |_, _| false)
            .unwrap();
        tx.commit().unwrap();
        assert!(matches!(store.wire_chunk(1000, 0), Err(StoreError::Corrupt { .. })));
        assert!(matches!(store.wire(1000), Err(StoreError::Corrupt { .. })));
        // A map row cut short.
        let tx = store.db.begin_write().unwrap();
        tx.open_table(BLOCK_WIRE_MAP).unwrap().insert(1000, &[0u8, 0, 0, 3, 1][..]).unwrap();
        tx.commit().unwrap();
        assert!(matches!(store.wire_chunk(1000, 0), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_block_takes_about_its_bytes_on_disk() {
        // redb allocates a row `20 + len` bytes rounded up to a power-of-two number of 4 KiB
        // pages: rows of 256 KiB (wire), 16.6 KB (tiles) or ~9 KB (a group each) took twice
        // their size (schema 2: 22.4 MB of rows, 44 MB of pages per full block).
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("state.redb")).unwrap();
        let allocated = |store: &RedbStore| {
            let stats = store.db.begin_write().unwrap().stats().unwrap();
            stats.allocated_pages() * stats.page_size() as u64
        };
        let before = allocated(&store);
        let block = EncodedBlock::from_record(&payment_block(1000, 16_384)).unwrap();
        // The wire form is not stored again beside the groups it is made of (schema 5).
        let map = block.wire_map.as_ref().unwrap().to_bytes().len();
        assert!(map < 20_000, "{map}");
        let rows = map
            + block.tiles.iter().map(Vec::len).sum::<usize>()
            + block.top.len()
            + block.tx_stream.len()
            + block.tx_offsets.len();
        store.apply(&Batch { blocks: vec![block], ..Batch::default() }).unwrap();
        let grown = allocated(&store) - before;
        let ratio = grown as f64 / rows as f64;
        assert!(ratio < 1.1, "{grown} bytes of pages for {rows} bytes of rows ({ratio:.2}x)");
    }

    #[test]
    fn a_store_of_a_newer_schema_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        RedbStore::open(&path)
            .unwrap()
            .apply(&Batch { meta: vec![(SCHEMA_VERSION, SCHEMA + 1)], ..Batch::default() })
            .unwrap();
        match RedbStore::open(&path) {
            Err(e @ StoreError::UnsupportedSchema { found, supported: SCHEMA })
                if found == SCHEMA + 1 =>
            {
                assert!(e.to_string().contains(&format!("schema version {}", SCHEMA + 1)));
            }
            other => panic!("expected UnsupportedSchema, got {other:?}"),
        }
    }
}
