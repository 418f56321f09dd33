//! The watcher's validated history as the operator's read routes serve it (issue 17): blocks in
//! the wire form, unspent outputs by owner, inclusion proofs and exit data, so a wallet whose
//! operator withholds can sync, restore and exit from a tower.
//!
//! Only blocks the watcher validated are served — downloaded or rebuilt, and before the first bad
//! block (`byzantineFrom`): a block in the history (`history_times`) is one the watcher applied,
//! and nothing after the first bad block is applied but deposits, which are refused here too so
//! that every answer is about the chain the watcher vouches for. Everything else is `404
//! BlockUnknown`. Every proof is built from the stored leaf hashes of a block whose root the
//! watcher checked against L1, so it verifies against L1 (the SDK checks it anyway).
//!
//! Blocks, transactions and leaves are read straight from the store, without the view's lock
//! (validation holds it for a block's whole application): a validated block's records never
//! change once written. The owner listing scans the in-memory UTXO set under the lock — there is
//! no owner index (see [`Watcher::utxo_page`] for its cost).

use crate::{
    judge::history::{self, KIND_DEPOSIT, KIND_SIGNED, TIMES, TXS, tx_key},
    watcher::Watcher,
};
use alloy::primitives::{Address, Bytes};
use parking_lot::Mutex;
use plasma_spec::{BlockTree, Output, SignedTransaction, UtxoPos, wire};
use redb::ReadableDatabase;
use serde_json::{Value, json};
use std::{collections::VecDeque, sync::Arc};

/// Built trees and encoded blocks kept for repeated reads (a full block's tree is ~4 MiB, its
/// wire form ~9 MB).
const TREES_KEPT: usize = 4;
const WIRES_KEPT: usize = 2;

/// Why a read was refused: each has its HTTP status and the operator's JSON code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// Not a block this watcher validated (or one at or after the first bad block).
    #[error("block {0} is not a block this watcher validated")]
    BlockUnknown(u64),
    /// Past the block's last transaction.
    #[error("block {blknum} has {tx_count} transactions")]
    TxIndexOutOfRange {
        /// Block.
        blknum: u64,
        /// Its transactions.
        tx_count: usize,
    },
    /// Not an unspent output of the validated view.
    #[error("{0} is not an unspent output this watcher validated")]
    UnknownUtxo(UtxoPos),
    /// The store failed or holds a damaged record.
    #[error("{0}")]
    Store(String),
}

impl ReadError {
    pub(crate) const fn status(&self) -> u16 {
        match self {
            Self::BlockUnknown(_) | Self::TxIndexOutOfRange { .. } | Self::UnknownUtxo(_) => 404,
            Self::Store(_) => 503,
        }
    }

    pub(crate) const fn code(&self) -> &'static str {
        match self {
            Self::BlockUnknown(_) => "BlockUnknown",
            Self::TxIndexOutOfRange { .. } => "TxIndexOutOfRange",
            Self::UnknownUtxo(_) => "UnknownUtxo",
            Self::Store(_) => "StorageFailure",
        }
    }
}

fn st(e: impl std::fmt::Display) -> ReadError {
    ReadError::Store(e.to_string())
}

/// Trees and wire forms of recently read blocks.
#[derive(Debug, Default)]
pub(crate) struct ReadCache {
    trees: Mutex<VecDeque<(u64, Arc<BlockTree>)>>,
    wires: Mutex<VecDeque<(u64, Arc<Vec<u8>>)>>,
}

/// A served block: its commitment time and tree.
#[derive(Clone, Debug)]
pub(crate) struct Served {
    pub(crate) blknum: u64,
    pub(crate) timestamp: u64,
    pub(crate) tree: Arc<BlockTree>,
}

/// One transaction of a served block, with its proof.
#[derive(Clone, Debug)]
pub(crate) struct Included {
    pub(crate) block: Served,
    /// The stored bytes: signed (ENC-4) for child blocks, the deposit transaction (ENC-1).
    pub(crate) stored: Bytes,
    /// The leaf's preimage (unsigned).
    pub(crate) tx_bytes: Bytes,
    pub(crate) proof: Vec<u8>,
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

impl Watcher {
    /// Block `blknum` if it is served (validated, before the first bad block).
    pub(crate) fn served_block(&self, blknum: u64) -> Result<Served, ReadError> {
        let cache = self.read_cache();
        let tx = self.db().begin_read().map_err(st)?;
        // The verdicts and the blocks are persisted together (`persist_block`): one snapshot,
        // and no wait for the view's lock, which validation holds for a whole block.
        if Self::stored_byzantine_from(&tx).map_err(st)?.is_some_and(|bad| blknum >= bad) {
            return Err(ReadError::BlockUnknown(blknum));
        }
        let Some(timestamp) = tx.open_table(TIMES).map_err(st)?.get(blknum).map_err(st)? else {
            return Err(ReadError::BlockUnknown(blknum));
        };
        let timestamp = timestamp.value();
        if let Some((_, tree)) = cache.trees.lock().iter().find(|(n, _)| *n == blknum) {
            return Ok(Served { blknum, timestamp, tree: tree.clone() });
        }
        let leaves = history::read_leaves(&tx, blknum)
            .map_err(st)?
            .ok_or(ReadError::BlockUnknown(blknum))?;
        let tree = Arc::new(BlockTree::from_leaves(&leaves).map_err(st)?);
        let mut trees = cache.trees.lock();
        trees.push_front((blknum, tree.clone()));
        trees.truncate(TREES_KEPT);
        Ok(Served { blknum, timestamp, tree })
    }

    /// Transaction `tx_index` of served block `blknum` with its proof.
    pub(crate) fn included(&self, blknum: u64, tx_index: u32) -> Result<Included, ReadError> {
        let block = self.served_block(blknum)?;
        let tx_count = block.tree.len();
        let out_of_range = || ReadError::TxIndexOutOfRange { blknum, tx_count };
        let index = u16::try_from(tx_index).map_err(|_| out_of_range())?;
        if usize::from(index) >= tx_count {
            return Err(out_of_range());
        }
        let key = tx_key(blknum, index).ok_or_else(out_of_range)?;
        let tx = self.db().begin_read().map_err(st)?;
        let stored = tx
            .open_table(TXS)
            .map_err(st)?
            .get(key)
            .map_err(st)?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| ReadError::Store(format!("transaction {blknum}/{index} not stored")))?;
        let (stored, tx_bytes) = split_stored(&stored, blknum, index)?;
        let proof = block.tree.proof(usize::from(index)).map_err(st)?.to_bytes();
        Ok(Included { block, stored, tx_bytes, proof })
    }

    /// Served block `blknum`'s transactions as stored, in order.
    pub(crate) fn block_txs(&self, blknum: u64) -> Result<(Served, Vec<Bytes>), ReadError> {
        let block = self.served_block(blknum)?;
        let count = block.tree.len();
        let tx = self.db().begin_read().map_err(st)?;
        let table = tx.open_table(TXS).map_err(st)?;
        let mut txs = Vec::with_capacity(count);
        if count > 0 {
            let last = u16::try_from(count - 1).map_err(st)?;
            let (Some(from), Some(to)) = (tx_key(blknum, 0), tx_key(blknum, last)) else {
                return Err(ReadError::BlockUnknown(blknum));
            };
            for (i, entry) in table.range(from..=to).map_err(st)?.enumerate() {
                let (k, v) = entry.map_err(st)?;
                let index = u16::try_from(i).map_err(st)?;
                if Some(k.value()) != tx_key(blknum, index) {
                    return Err(ReadError::Store(format!(
                        "block {blknum}: transaction {index} not stored"
                    )));
                }
                txs.push(split_stored(v.value(), blknum, index)?.0);
            }
        }
        if txs.len() != count {
            return Err(ReadError::Store(format!(
                "block {blknum}: {} of {count} transactions stored",
                txs.len()
            )));
        }
        Ok((block, txs))
    }

    /// Served block `blknum` in the wire form (OP-9): its stored transactions re-encoded (zlib,
    /// as the operator encodes), under the root the watcher checked against L1.
    pub(crate) fn block_wire(&self, blknum: u64) -> Result<(Served, Arc<Vec<u8>>), ReadError> {
        let cache = self.read_cache();
        let hit = cache.wires.lock().iter().find(|(n, _)| *n == blknum).map(|(_, w)| w.clone());
        if let Some(wire) = hit {
            return Ok((self.served_block(blknum)?, wire));
        }
        let (block, txs) = self.block_txs(blknum)?;
        let bytes = wire::encode_block(blknum, block.tree.root(), &txs, wire::Encoding::Zlib)
            .map_err(st)?;
        let bytes = Arc::new(bytes);
        let mut wires = cache.wires.lock();
        wires.push_front((blknum, bytes.clone()));
        wires.truncate(WIRES_KEPT);
        Ok((block, bytes))
    }

    /// Exit data of the unspent output `pos` (the operator's `GET /v1/utxos/{pos}/exit-data`).
    pub(crate) fn exit_data(&self, pos: UtxoPos) -> Result<Value, ReadError> {
        // Unspent in the persisted view (the block itself is checked by `included`).
        let tx = self.db().begin_read().map_err(st)?;
        if !Self::stored_unspent(&tx, pos).map_err(st)? {
            return Err(ReadError::UnknownUtxo(pos));
        }
        let inc = self.included(pos.blknum(), u32::from(pos.tx_index()))?;
        Ok(exit_data_json(pos, &inc))
    }

    /// One page of `owner`'s unspent outputs after `after` in ascending position, at most
    /// `limit`, and whether more follow.
    ///
    /// *Cost:* there is no owner index — the UTXO set is a hash table the ledger needs by
    /// position (WATCH-15 counts every byte of it; an index by owner would add ~45 bytes per
    /// output), so a page is a scan of the whole set under the view's lock, O(set size), plus
    /// sorting the owner's outputs after `after`. Measured (`owner_page_cost`, release, two
    /// shared cores): 32 ms per page of 1,000 over a set of 1,000,000 outputs, 45 ms when the
    /// owner holds 100,000 of them — a wallet of 100,000 outputs restores in ~100 pages, ~4.5 s
    /// of scanning, during which validation waits for the lock a page at a time. Outputs of
    /// blocks at or after the first bad block (late deposits) are not listed.
    pub(crate) fn utxo_page(
        &self,
        owner: Address,
        after: Option<UtxoPos>,
        limit: usize,
    ) -> (Vec<(UtxoPos, Output)>, bool) {
        let view = self.view().lock();
        owner_page(&view.utxos, view.byzantine_from, owner, after, limit)
    }
}

/// [`Watcher::utxo_page`] over `utxos`: a scan of the whole set (no owner index).
pub(crate) fn owner_page(
    utxos: &plasma_spec::UtxoSet,
    byzantine_from: Option<u64>,
    owner: Address,
    after: Option<UtxoPos>,
    limit: usize,
) -> (Vec<(UtxoPos, Output)>, bool) {
    let bad = byzantine_from.unwrap_or(u64::MAX);
    let mut mine: Vec<(UtxoPos, &Output)> = utxos
        .iter()
        .filter(|(p, o)| o.owner == owner && p.blknum() < bad && after.is_none_or(|a| **p > a))
        .map(|(p, o)| (*p, o))
        .collect();
    mine.sort_unstable_by_key(|(p, _)| *p);
    let more = mine.len() > limit;
    mine.truncate(limit);
    (mine.into_iter().map(|(p, o)| (p, o.clone())).collect(), more)
}

/// Stored bytes (kind ‖ bytes) → (what the operator calls the stored transaction, the leaf's
/// preimage).
fn split_stored(stored: &[u8], blknum: u64, index: u16) -> Result<(Bytes, Bytes), ReadError> {
    match stored.split_first() {
        Some((&KIND_DEPOSIT, bytes)) => {
            let b = Bytes::copy_from_slice(bytes);
            Ok((b.clone(), b))
        }
        Some((&KIND_SIGNED, bytes)) => {
            let signed = SignedTransaction::decode(bytes).map_err(|_| {
                ReadError::Store(format!("transaction {blknum}/{index} is corrupt"))
            })?;
            Ok((Bytes::copy_from_slice(bytes), signed.transaction.encode().into()))
        }
        _ => Err(ReadError::Store(format!("transaction {blknum}/{index} is corrupt"))),
    }
}

/// The operator's exit-data JSON.
pub(crate) fn exit_data_json(pos: UtxoPos, inc: &Included) -> Value {
    json!({
        "utxoPos": pos.to_u256().to_string(),
        "blknum": pos.blknum(),
        "txBytes": hex0x(&inc.tx_bytes),
        "inclusionProof": hex0x(&inc.proof),
        "root": inc.block.tree.root(),
        "blockTimestamp": inc.block.timestamp,
    })
}

/// One item of `POST /v1/inclusions`, as the operator answers it.
pub(crate) fn inclusion_item(w: &Watcher, blknum: u64, index: u32) -> Value {
    match w.included(blknum, index) {
        Ok(inc) => json!({
            "blknum": blknum,
            "txIndex": index,
            "signedTx": (!plasma_spec::is_deposit_block(blknum)).then(|| hex0x(&inc.stored)),
            "txBytes": hex0x(&inc.tx_bytes),
            "proof": hex0x(&inc.proof),
            "root": inc.block.tree.root(),
            "blockTimestamp": inc.block.timestamp,
        }),
        Err(e) => json!({"blknum": blknum, "txIndex": index,
            "error": {"code": e.code(), "message": e.to_string()}}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;
    use plasma_spec::BlockDiff;

    /// `owners` owners with `per_owner` outputs each, interleaved over blocks.
    fn set(owners: u64, per_owner: u64) -> plasma_spec::UtxoSet {
        let mut s = plasma_spec::UtxoSet::new();
        let created = (0..owners * per_owner)
            .map(|i| {
                let pos = UtxoPos::new(1000 * (1 + i / 60_000), (i % 60_000) as u16, 0).unwrap();
                let owner = Address::left_padding_from(&(i % owners).to_be_bytes());
                (pos, Output::new(owner, Address::ZERO, U256::from(i)))
            })
            .collect();
        s.apply(&BlockDiff { created, ..BlockDiff::default() });
        s
    }

    #[test]
    fn pages_ascend_and_stop_before_the_first_bad_block() {
        let s = set(3, 100);
        let owner = Address::left_padding_from(&1u64.to_be_bytes());
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let (page, more) = owner_page(&s, None, owner, after, 7);
            assert!(page.windows(2).all(|w| w[0].0 < w[1].0));
            all.extend(page.iter().map(|(p, _)| *p));
            after = page.last().map(|(p, _)| *p);
            if !more {
                break;
            }
        }
        assert_eq!(all.len(), 100);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        // Nothing at or after the first bad block.
        let (page, more) = owner_page(&s, Some(1000), owner, None, 1000);
        assert!(page.is_empty() && !more);
    }

    /// The cost of a page without an owner index: `cargo test --release -p plasma-watcher --lib
    /// owner_page_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run in release"]
    fn owner_page_cost() {
        for (owners, per_owner) in [(1_000, 1_000), (10, 100_000)] {
            let s = set(owners, per_owner);
            let owner = Address::left_padding_from(&3u64.to_be_bytes());
            let started = std::time::Instant::now();
            let rounds = 20;
            for _ in 0..rounds {
                let (page, _) = owner_page(&s, None, owner, None, 1_000);
                assert_eq!(page.len(), 1_000);
            }
            println!(
                "{} outputs, {per_owner} of the owner's: {:?} per page of 1,000",
                s.len(),
                started.elapsed() / rounds
            );
        }
    }
}
