//! How a block is stored (OP-9): once, when it is made, as
//! - its wire form ([`plasma_spec::wire`], zlib), cut into [`WIRE_CHUNK`]-byte rows so a download
//!   streams row by row and a range starts at the row that holds it;
//! - a proof index: the Merkle tree's lower levels cut into tiles of [`TILE_LEAVES`] leaves, and
//!   one row holding the levels above the tiles, so a proof is two small rows;
//! - a transaction index: the stored transaction bytes in groups of [`TX_GROUP`], each group
//!   deflated on its own, the groups laid end to end in [`TX_ROW`]-byte rows with one row of
//!   their offsets, so one transaction is one or two small rows inflated, never the block.
//!
//! Every row is sized for redb's allocator: a value lives in a leaf page of
//! `4 + 4 + key + value` bytes ([`ROW_OVERHEAD`] for our `(u64, u32)` keys), and pages are
//! allocated in power-of-two multiples of 4 KiB. A value one byte over a power of two takes
//! twice its size: 256 KiB wire rows, 16.6 KB tiles and ~9 KB groups in rows of their own made a
//! full block's 22 MB of rows take 44 MB of pages. The sizes below fill their pages.

use crate::store::{BlockRecord, StoreError};
use alloy::primitives::{B256, Bytes};
use parking_lot::Mutex;
use plasma_spec::wire::DeflatedGroup;
use plasma_spec::{SignedTransaction, TREE_DEPTH, leaf_hash, node_hash, wire, zero_hashes};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What redb adds to a value in a leaf page of its own: a 4-byte page header, the value's 4-byte
/// length and the 12-byte `(u64, u32)` key. A row of `2^k * 4 KiB - ROW_OVERHEAD` bytes fills its
/// allocation exactly.
pub(crate) const ROW_OVERHEAD: usize = 4 + 4 + 12;
/// Bytes per stored row of a block's wire form: a 256 KiB page with the row's overhead.
pub const WIRE_CHUNK: usize = 256 * 1024 - ROW_OVERHEAD;
/// Leaves per proof tile. A tile is one byte and the `2 * TILE_LEAVES - 2` hashes of its
/// subtree's levels below its root: 16,321 bytes, a 16 KiB page.
pub const TILE_LEAVES: usize = 256;
/// Transactions per deflated group of the transaction index: the wire form's groups.
pub const TX_GROUP: usize = wire::ZLIB_GROUP;
/// Bytes per stored row of the transaction index (deflated groups end to end): a 16 KiB page.
pub(crate) const TX_ROW: usize = 16 * 1024 - ROW_OVERHEAD;

/// What the store keeps about a block besides its bytes: small, rewritten on commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// The block number.
    pub blknum: u64,
    /// Merkle root (MERKLE).
    pub root: B256,
    /// Transactions in the block.
    pub tx_count: u32,
    /// Bytes of its wire form (`application/vnd.plasma.block`).
    pub wire_len: u64,
    /// The L1 timestamp of its commitment, once committed.
    pub l1_timestamp: Option<u64>,
    /// The L1 transaction that committed it.
    pub l1_tx: Option<B256>,
}

const INFO_LEN: usize = 32 + 4 + 8 + 1 + 8 + 32;

impl BlockInfo {
    pub(crate) fn to_bytes(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INFO_LEN);
        out.extend_from_slice(self.root.as_slice());
        out.extend_from_slice(&self.tx_count.to_be_bytes());
        out.extend_from_slice(&self.wire_len.to_be_bytes());
        out.push(u8::from(self.l1_timestamp.is_some()) | (u8::from(self.l1_tx.is_some()) << 1));
        out.extend_from_slice(&self.l1_timestamp.unwrap_or_default().to_be_bytes());
        out.extend_from_slice(self.l1_tx.unwrap_or_default().as_slice());
        out
    }

    pub(crate) fn from_bytes(blknum: u64, b: &[u8]) -> Result<Self, StoreError> {
        if b.len() != INFO_LEN {
            return Err(StoreError::Corrupt {
                what: "block info",
                reason: format!("{blknum}: {} bytes", b.len()),
            });
        }
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let flags = b[44];
        Ok(Self {
            blknum,
            root: B256::from_slice(&b[..32]),
            tx_count: u32::from_be_bytes(b[32..36].try_into().unwrap_or_default()),
            wire_len: u64_at(36),
            l1_timestamp: (flags & 1 != 0).then(|| u64_at(45)),
            l1_tx: (flags & 2 != 0).then(|| B256::from_slice(&b[53..85])),
        })
    }
}

/// Where the time of one block production went ([`crate::Chain::produce_block_staged`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProduceStages {
    /// Waiting for the chain's state lock.
    pub lock: Duration,
    /// The ledger checks of the pending transactions against the UTXO set, and the fee
    /// transaction (`BlockBuilder`).
    pub ledger: Duration,
    /// Gathering the block's signed bytes, leaves and transaction index entries.
    pub leaves: Duration,
    /// The candidates' groups still being deflated ahead when the ledger was done (this thread
    /// joins the worker on them, `DeflateAhead::finish`).
    pub ahead: Duration,
    /// The Merkle tree and its proof tiles.
    pub tree: Duration,
    /// The wire form and the transaction groups (zlib).
    pub encode: Duration,
    /// The store's write of the block's effects (UTXO set, transaction index, mempool), while
    /// other threads make the tree and the encodings.
    pub write: Duration,
    /// Then the block's own rows and the commit with its fsync (after waiting for the
    /// encodings if they were not done).
    pub commit: Duration,
    /// Applying the block to the in-memory state once durable.
    pub memory: Duration,
}

/// A block ready to be written: everything computed once, outside the write transaction.
#[derive(Clone, Debug)]
pub struct EncodedBlock {
    /// Its info row.
    pub info: BlockInfo,
    /// The wire form.
    pub wire: Vec<u8>,
    /// Proof tiles, in order.
    pub tiles: Vec<Vec<u8>>,
    /// The tree's levels above the tiles (see [`tree_proof`]).
    pub top: Vec<u8>,
    /// Where each deflated group starts in [`EncodedBlock::tx_stream`], and where the last ends:
    /// `groups + 1` big-endian u32s.
    pub tx_offsets: Vec<u8>,
    /// The deflated transaction groups end to end, stored in [`TX_ROW`]-byte rows.
    pub tx_stream: Vec<u8>,
    /// How the wire form is made of `tx_stream` ([`WireMap`]), when it is: the store then
    /// keeps the groups once instead of also as the wire form's rows (schema 5).
    pub wire_map: Option<WireMap>,
}

/// A block's wire form as pieces of its transaction stream and a few bytes of its own (#19,
/// schema 5): the zlib body of the wire form is its groups' deflate data end to end (see
/// [`wire::DeflatedGroup`]), so the store need not keep those ~9 MB twice. A map is only ever
/// made by [`WireMap::of`], which checks that it gives back the wire form byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireMap {
    pieces: Vec<Piece>,
    len: u64,
}

/// A run of wire bytes: its own bytes, or a range of the transaction stream.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Inline(Vec<u8>),
    Stream { start: u64, len: u64 },
}

impl Piece {
    fn len(&self) -> u64 {
        match self {
            Self::Inline(b) => b.len() as u64,
            Self::Stream { len, .. } => *len,
        }
    }
}

impl WireMap {
    /// The map of `wire` over `stream` built from `groups` (laid end to end in `stream`), if it
    /// gives back `wire` exactly; `None` otherwise (the wire form is then stored as it is).
    fn of(wire: &[u8], stream: &[u8], groups: &[DeflatedGroup]) -> Option<Self> {
        let header = wire.get(..wire::HEADER_LEN)?;
        let mut pieces = vec![Piece::Inline(header.to_vec())];
        let mut at = 0u64;
        let last = groups.len().checked_sub(1)?;
        for (i, g) in groups.iter().enumerate() {
            let (skip, flushed, len) = (if i == 0 { 0 } else { 2 }, g.flushed(), g.zlib().len());
            let body = flushed.checked_sub(skip)? as u64;
            pieces.push(Piece::Stream { start: at + skip as u64, len: body });
            if i == last {
                let tail = len.checked_sub(flushed + 4)? as u64;
                pieces.push(Piece::Stream { start: at + flushed as u64, len: tail });
            }
            at += len as u64;
        }
        pieces.push(Piece::Inline(wire.get(wire.len().checked_sub(4)?..)?.to_vec()));
        let map = Self { len: pieces.iter().map(Piece::len).sum(), pieces };
        map.gives(wire, stream).then_some(map)
    }

    /// Whether the map over `stream` is `wire`, byte for byte (compared in place).
    fn gives(&self, wire: &[u8], stream: &[u8]) -> bool {
        if self.len != wire.len() as u64 {
            return false;
        }
        let mut at = 0usize;
        self.pieces.iter().all(|piece| {
            let len = piece.len() as usize;
            let Some(want) = wire.get(at..at + len) else { return false };
            at += len;
            match piece {
                Piece::Inline(own) => own.as_slice() == want,
                Piece::Stream { start, .. } => {
                    let start = *start as usize;
                    stream.get(start..start + len) == Some(want)
                }
            }
        })
    }

    /// Bytes of the wire form.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends the wire bytes `range` (clamped to the wire form) to `out`; `stream` gives the
    /// stream bytes of a range (read once, spanning every stream piece the range touches).
    pub(crate) fn read(
        &self,
        range: std::ops::Range<u64>,
        stream: impl FnOnce(std::ops::Range<u64>) -> Option<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        let (from, to) = (range.start, range.end.min(self.len));
        if from >= to {
            return Ok(());
        }
        // The pieces the range touches, with the part of each it wants.
        let mut wanted = Vec::new();
        let mut at = 0u64;
        for piece in &self.pieces {
            let (start, end) = (at, at + piece.len());
            at = end;
            if end <= from || start >= to {
                continue;
            }
            wanted.push((piece, from.max(start) - start, to.min(end) - start));
        }
        let span = wanted
            .iter()
            .filter_map(|(p, a, b)| match p {
                Piece::Stream { start, .. } => Some((start + a, start + b)),
                Piece::Inline(_) => None,
            })
            .fold(None, |acc: Option<(u64, u64)>, (a, b)| {
                Some(acc.map_or((a, b), |(x, y)| (x.min(a), y.max(b))))
            });
        let bytes = match span {
            Some((a, b)) => {
                let got =
                    stream(a..b).ok_or_else(|| corrupt("block wire map", "stream rows missing"))?;
                if got.len() as u64 != b - a {
                    return Err(corrupt(
                        "block wire map",
                        format!("{} stream bytes of {}", got.len(), b - a),
                    ));
                }
                Some((a, got))
            }
            None => None,
        };
        for (piece, a, b) in wanted {
            match piece {
                Piece::Inline(own) => out.extend_from_slice(&own[a as usize..b as usize]),
                Piece::Stream { start, .. } => {
                    let (base, got) =
                        bytes.as_ref().ok_or_else(|| corrupt("block wire map", "no stream"))?;
                    let (x, y) = ((start + a - base) as usize, (start + b - base) as usize);
                    out.extend_from_slice(&got[x..y]);
                }
            }
        }
        Ok(())
    }

    /// The stored row.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 17 * self.pieces.len());
        out.extend_from_slice(&(self.pieces.len() as u32).to_be_bytes());
        for piece in &self.pieces {
            match piece {
                Piece::Inline(b) => {
                    out.push(0);
                    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
                    out.extend_from_slice(b);
                }
                Piece::Stream { start, len } => {
                    out.push(1);
                    out.extend_from_slice(&start.to_be_bytes());
                    out.extend_from_slice(&len.to_be_bytes());
                }
            }
        }
        out
    }

    /// Reads a stored row back; refused if it does not parse to the end.
    pub(crate) fn from_bytes(b: &[u8]) -> Result<Self, StoreError> {
        let bad = || corrupt("block wire map", "malformed");
        let mut r = b;
        let mut take = |n: usize| -> Result<&[u8], StoreError> {
            let (head, rest) = r.split_at_checked(n).ok_or_else(bad)?;
            r = rest;
            Ok(head)
        };
        let u32_of = |x: &[u8]| u32::from_be_bytes([x[0], x[1], x[2], x[3]]);
        let u64_of = |x: &[u8]| u64::from_be_bytes(x.try_into().unwrap_or_default());
        let count = u32_of(take(4)?) as usize;
        let mut pieces = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            match take(1)?[0] {
                0 => {
                    let n = u32_of(take(4)?) as usize;
                    pieces.push(Piece::Inline(take(n)?.to_vec()));
                }
                1 => {
                    let start = u64_of(take(8)?);
                    let len = u64_of(take(8)?);
                    pieces.push(Piece::Stream { start, len });
                }
                _ => return Err(bad()),
            }
        }
        if !r.is_empty() {
            return Err(bad());
        }
        Ok(Self { len: pieces.iter().map(Piece::len).sum(), pieces })
    }
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what, reason: e.to_string() }
}

/// The leaves of a block's stored transactions: signed transactions of a child block are
/// hashed over their unsigned encoding (MERKLE-1), a deposit block's transaction as it is.
pub fn leaves_of(blknum: u64, txs: &[Bytes]) -> Result<Vec<B256>, StoreError> {
    if plasma_spec::is_deposit_block(blknum) {
        return Ok(txs.iter().map(|t| leaf_hash(t)).collect());
    }
    txs.iter()
        .map(|t| {
            SignedTransaction::decode(t)
                .map(|s| leaf_hash(&s.transaction.encode()))
                .map_err(|e| corrupt("stored transaction", e))
        })
        .collect()
}

/// The leaf preimage (`txBytes` of exit data) of a stored transaction.
pub(crate) fn tx_bytes_of(blknum: u64, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    if plasma_spec::is_deposit_block(blknum) {
        return Ok(stored.to_vec());
    }
    SignedTransaction::decode(stored)
        .map(|s| s.transaction.encode())
        .map_err(|e| corrupt("stored transaction", e))
}

impl EncodedBlock {
    /// Encodes a block whose leaf hashes the caller already has (block production). The tree
    /// first (its root heads the wire form), its subtrees on all cores; then the transactions
    /// deflated once, in groups on all cores, which are both the transaction index and, end to
    /// end, the wire form's body ([`wire::DeflatedGroup`]).
    pub fn new(
        blknum: u64,
        txs: &[Bytes],
        leaves: &[B256],
        l1_timestamp: Option<u64>,
        l1_tx: Option<B256>,
    ) -> Result<Self, StoreError> {
        Self::build(
            blknum,
            txs,
            leaves,
            l1_timestamp,
            l1_tx,
            None,
            Vec::new(),
            &mut ProduceStages::default(),
        )
    }

    /// [`EncodedBlock::new`], adding the time of the tree and of the encodings to `stages`;
    /// `ahead` are the block's first groups, already deflated ([`DeflateAhead`]).
    pub(crate) fn new_staged(
        blknum: u64,
        txs: &[Bytes],
        leaves: &[B256],
        ahead: Vec<DeflatedGroup>,
        stages: &mut ProduceStages,
    ) -> Result<Self, StoreError> {
        Self::build(blknum, txs, leaves, None, None, None, ahead, stages)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        blknum: u64,
        txs: &[Bytes],
        leaves: &[B256],
        l1_timestamp: Option<u64>,
        l1_tx: Option<B256>,
        stored_wire: Option<Vec<u8>>,
        ahead: Vec<DeflatedGroup>,
        stages: &mut ProduceStages,
    ) -> Result<Self, StoreError> {
        if txs.len() != leaves.len() || txs.len() > plasma_spec::MAX_TXS_PER_BLOCK {
            return Err(corrupt("block", format!("{} txs, {} leaves", txs.len(), leaves.len())));
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let t = Instant::now();
        let tree = Tiles::build(leaves, threads);
        stages.tree += t.elapsed();
        // The transactions are deflated once, in groups on all cores: the groups are the
        // transaction index and, laid end to end, the wire form's zlib body (`DeflatedGroup`).
        let t = Instant::now();
        // The groups deflated ahead are the block's first ones when they are whole and their
        // frames' bytes are those of the block's first transactions (a cheap check that the
        // caller counted right; `DeflateAhead` says why the contents match); otherwise all are
        // deflated here.
        let done = ahead.len() * TX_GROUP;
        let framed = |txs: &[Bytes]| txs.iter().map(|t| 4 + t.len() as u64).sum::<u64>();
        let fits = done <= txs.len()
            && ahead.iter().all(|g| g.count() == TX_GROUP)
            && ahead.iter().map(|g| g.raw_len()).sum::<u64>()
                == framed(&txs[..done.min(txs.len())]);
        let (mut groups, rest) = if fits { (ahead, &txs[done..]) } else { (Vec::new(), txs) };
        groups.extend(wire::deflate_groups(rest, threads).map_err(|e| corrupt("block", e))?);
        let fresh = stored_wire.is_none();
        let wire = match stored_wire {
            Some(w) => w,
            None => wire::encode_zlib_block(blknum, tree.root, &groups)
                .map_err(|e| corrupt("block", e))?,
        };
        let mut tx_offsets = Vec::with_capacity(4 * (groups.len() + 1));
        let mut tx_stream = Vec::with_capacity(groups.iter().map(|g| g.zlib().len()).sum());
        for g in &groups {
            let at = u32::try_from(tx_stream.len()).map_err(|e| corrupt("tx groups", e))?;
            tx_offsets.extend_from_slice(&at.to_be_bytes());
            tx_stream.extend_from_slice(g.zlib());
        }
        let end = u32::try_from(tx_stream.len()).map_err(|e| corrupt("tx groups", e))?;
        tx_offsets.extend_from_slice(&end.to_be_bytes());
        // A wire form made here from the groups is kept as a map over them (schema 5); one
        // stored as it was (migration) keeps its own rows.
        let wire_map = if fresh { WireMap::of(&wire, &tx_stream, &groups) } else { None };
        stages.encode += t.elapsed();
        Ok(Self {
            info: BlockInfo {
                blknum,
                root: tree.root,
                tx_count: txs.len() as u32,
                wire_len: wire.len() as u64,
                l1_timestamp,
                l1_tx,
            },
            wire,
            tiles: tree.tiles,
            top: tree.top,
            tx_offsets,
            tx_stream,
            wire_map,
        })
    }

    /// Encodes a block from its record (deposits, migration), checking its root.
    pub fn from_record(record: &BlockRecord) -> Result<Self, StoreError> {
        let leaves = leaves_of(record.blknum, &record.txs)?;
        let encoded =
            Self::new(record.blknum, &record.txs, &leaves, record.l1_timestamp, record.l1_tx)?;
        check_root(record.blknum, record.root, encoded.info.root)?;
        Ok(encoded)
    }

    /// Re-indexes a stored block from its wire form, keeping those bytes as they are (schema
    /// migration): the header must name the block and its root, and the transactions give it.
    pub fn from_wire(info: BlockInfo, wire: Vec<u8>) -> Result<Self, StoreError> {
        let blknum = info.blknum;
        let (header, txs) =
            wire::decode_block(&wire).map_err(|e| corrupt("block", format!("{blknum}: {e}")))?;
        if header.blknum != blknum || header.root != info.root {
            return Err(corrupt("block", format!("{blknum}: header")));
        }
        let leaves = leaves_of(blknum, &txs)?;
        let encoded = Self::build(
            blknum,
            &txs,
            &leaves,
            info.l1_timestamp,
            info.l1_tx,
            Some(wire),
            Vec::new(),
            &mut ProduceStages::default(),
        )?;
        check_root(blknum, info.root, encoded.info.root)?;
        Ok(encoded)
    }
}

/// Transactions one thread of [`DeflateAhead`] takes at a time (one compressor per run).
const AHEAD_RUN: usize = 8 * TX_GROUP;

/// A block's candidate transactions deflated on another core while the ledger checks them
/// (block production, #19): the deflate no longer waits for the ledger.
///
/// Why the groups made here are the block's own: a group is an independent zlib stream of the
/// frames of [`TX_GROUP`] consecutive transactions, cut from the block's first transaction, and
/// depends on nothing else. The block is the candidates in order minus those the ledger drops,
/// plus the fee transaction last. So up to the first dropped candidate the block's transactions
/// are the candidates', and every whole group ending there is the block's group, byte for byte;
/// [`DeflateAhead::finish`] returns exactly those, and the rest (the groups after a drop, and
/// the last one, which holds the fee transaction) is deflated once the block is known.
pub(crate) struct DeflateAhead {
    shared: Arc<AheadShared>,
    worker: Option<JoinHandle<()>>,
}

struct AheadShared {
    txs: Vec<Bytes>,
    /// The next run to claim.
    next: AtomicUsize,
    /// Runs at or past this are not deflated (lowered by `finish`, zeroed by a drop).
    wanted: AtomicUsize,
    runs: Mutex<Vec<Option<Vec<DeflatedGroup>>>>,
}

impl AheadShared {
    /// Claims runs and deflates them until none is wanted.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.wanted.load(Ordering::Relaxed) {
                return;
            }
            let start = i * AHEAD_RUN;
            let end = (start + AHEAD_RUN).min(self.txs.len());
            // An error (a transaction over the size limit) leaves the run to `build`, which
            // reports it.
            let groups = wire::deflate_groups(&self.txs[start..end], 1).ok();
            if let Some(slot) = self.runs.lock().get_mut(i) {
                *slot = groups;
            }
        }
    }
}

impl DeflateAhead {
    /// Starts deflating `candidates` (the block's candidate transactions, in order) on a thread
    /// of its own; nothing is started for fewer than two runs' worth.
    pub(crate) fn start(candidates: Vec<Bytes>) -> Self {
        let runs = candidates.len().div_ceil(AHEAD_RUN);
        let shared = Arc::new(AheadShared {
            txs: candidates,
            next: AtomicUsize::new(0),
            wanted: AtomicUsize::new(if runs >= 2 { runs } else { 0 }),
            runs: Mutex::new(vec![None; runs]),
        });
        let worker = (runs >= 2)
            .then(|| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name("deflate-ahead".into())
                    .spawn(move || shared.work())
                    .ok()
            })
            .flatten();
        Self { shared, worker }
    }

    /// The block's first groups: the whole groups among the first `same` candidates, which the
    /// block holds unchanged and in order (those before the first the ledger dropped). This
    /// thread deflates the runs still unclaimed beside the worker.
    pub(crate) fn finish(mut self, same: usize) -> Vec<DeflatedGroup> {
        let whole = same.min(self.shared.txs.len()) / TX_GROUP * TX_GROUP;
        let wanted = whole.div_ceil(AHEAD_RUN);
        self.shared.wanted.fetch_min(wanted, Ordering::Relaxed);
        if self.worker.is_some() {
            self.shared.work();
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        let runs = std::mem::take(&mut *self.shared.runs.lock());
        let mut out = Vec::with_capacity(whole / TX_GROUP);
        'runs: for run in runs.into_iter().take(wanted) {
            let Some(run) = run else { break };
            for group in run {
                if (out.len() + 1) * TX_GROUP > whole || group.count() != TX_GROUP {
                    break 'runs;
                }
                out.push(group);
            }
        }
        out
    }
}

impl Drop for DeflateAhead {
    fn drop(&mut self) {
        // Not finished (an error on the way): the worker stops after its current run.
        self.shared.wanted.store(0, Ordering::Relaxed);
    }
}

fn check_root(blknum: u64, claimed: B256, computed: B256) -> Result<(), StoreError> {
    if claimed == computed {
        return Ok(());
    }
    Err(corrupt("block", format!("{blknum}: root {claimed} but its transactions give {computed}")))
}

/// The byte range of group `g` in the transaction stream, from the offsets row.
pub(crate) fn group_range(offsets: &[u8], g: usize) -> Result<std::ops::Range<u64>, StoreError> {
    let at = |i: usize| {
        offsets
            .get(4 * i..4 * i + 4)
            .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            .ok_or_else(|| corrupt("tx offsets", format!("group {g} of {} bytes", offsets.len())))
    };
    let (start, end) = (at(g)?, at(g + 1)?);
    if start > end {
        return Err(corrupt("tx offsets", format!("group {g}: {start} > {end}")));
    }
    Ok(start..end)
}

/// Transaction `at` of a deflated group.
pub(crate) fn group_tx(group: &[u8], at: usize) -> Result<Vec<u8>, StoreError> {
    let mut raw = Vec::with_capacity(group.len() * 4);
    flate2::read::ZlibDecoder::new(group)
        .take((TX_GROUP * (4 + plasma_spec::MAX_SIGNED_TX_BYTES)) as u64)
        .read_to_end(&mut raw)
        .map_err(|e| corrupt("tx group", e))?;
    let mut off = 0;
    for i in 0..=at {
        let len = raw
            .get(off..off + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| corrupt("tx group", "truncated"))?;
        let body =
            raw.get(off + 4..off + 4 + len).ok_or_else(|| corrupt("tx group", "truncated"))?;
        if i == at {
            return Ok(body.to_vec());
        }
        off += 4 + len;
    }
    Err(corrupt("tx group", "index"))
}

/// The proof index of a tree.
struct Tiles {
    root: B256,
    tiles: Vec<Vec<u8>>,
    top: Vec<u8>,
}

impl Tiles {
    /// Levels of the tree over `leaves` padded to the next power of two (zero leaves, as
    /// `BlockTree`) of height `h`, cut at height `t = min(h, 8)`:
    /// - a tile row per `2^t` leaves: `t` (one byte), then the `2^(t+1) - 2` hashes of its
    ///   subtree's levels `0..t` (leaves first; its root is not needed by any proof);
    /// - one top row: `t` and `h` (a byte each), then the levels `t..h` of the whole tree, level
    ///   by level from the bottom (`2^(h-t+1) - 2` hashes).
    ///
    /// The siblings above `h` are zero hashes. A full block: 256 tiles and a top row of 16.3 KB.
    ///
    /// The levels are hashed on up to `threads` threads, each a whole subtree of at least
    /// [`MIN_SUBTREE`] leaves; the result does not depend on `threads`.
    fn build(leaves: &[B256], threads: usize) -> Self {
        let zeros = zero_hashes();
        if leaves.is_empty() {
            return Self { root: zeros[TREE_DEPTH], tiles: Vec::new(), top: Vec::new() };
        }
        let width = leaves.len().next_power_of_two();
        let height = width.trailing_zeros() as usize;
        let levels = tree_levels(leaves, width, threads);
        let mut root = levels[height][0];
        for z in &zeros[height..TREE_DEPTH] {
            root = node_hash(&root, z);
        }
        let tile_h = height.min(TILE_LEAVES.trailing_zeros() as usize);
        let tile_w = 1usize << tile_h;
        let count = leaves.len().div_ceil(tile_w);
        let tiles = (0..count)
            .map(|t| {
                let mut row = Vec::with_capacity(1 + 32 * (2 * tile_w - 2));
                row.push(tile_h as u8);
                for (l, level) in levels.iter().enumerate().take(tile_h) {
                    let w = tile_w >> l;
                    for h in &level[t * w..(t + 1) * w] {
                        row.extend_from_slice(h.as_slice());
                    }
                }
                row
            })
            .collect();
        let mut top = Vec::with_capacity(2 + 32 * ((2usize << (height - tile_h)) - 2));
        top.extend_from_slice(&[tile_h as u8, height as u8]);
        for level in &levels[tile_h..height] {
            for h in level {
                top.extend_from_slice(h.as_slice());
            }
        }
        Self { root, tiles, top }
    }
}

/// The smallest subtree [`Tiles::build`] hands to a thread of its own.
const MIN_SUBTREE: usize = 1024;

/// Levels `0..=h` of the tree over `leaves` padded with zero leaves to `width = 2^h`. The
/// subtrees of the lowest levels go to `parts` threads (a power of two), then the levels above
/// them are hashed here.
fn tree_levels(leaves: &[B256], width: usize, threads: usize) -> Vec<Vec<B256>> {
    let height = width.trailing_zeros() as usize;
    let mut parts = 1;
    while parts * 2 <= threads && width / (parts * 2) >= MIN_SUBTREE {
        parts *= 2;
    }
    let part_w = width / parts;
    let subtree = |p: usize| -> Vec<Vec<B256>> {
        let mut level: Vec<B256> = Vec::with_capacity(part_w);
        let start = (p * part_w).min(leaves.len());
        level.extend_from_slice(&leaves[start..((p + 1) * part_w).min(leaves.len())]);
        level.resize(part_w, B256::ZERO);
        let mut levels = Vec::with_capacity(part_w.trailing_zeros() as usize + 1);
        while level.len() > 1 {
            let next = plasma_spec::parent_level(&level);
            levels.push(std::mem::replace(&mut level, next));
        }
        levels.push(level);
        levels
    };
    let mut parts_levels: Vec<Vec<Vec<B256>>> = if parts == 1 {
        vec![subtree(0)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (1..parts).map(|p| s.spawn(move || subtree(p))).collect();
            let first = subtree(0);
            std::iter::once(first)
                .chain(
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))),
                )
                .collect()
        })
    };
    let mut levels: Vec<Vec<B256>> = Vec::with_capacity(height + 1);
    if parts == 1 {
        levels = parts_levels.swap_remove(0);
    } else {
        for l in 0..=part_w.trailing_zeros() as usize {
            let mut level = Vec::with_capacity(width >> l);
            for p in &parts_levels {
                level.extend_from_slice(&p[l]);
            }
            levels.push(level);
        }
    }
    for k in levels.len() - 1..height {
        let next = plasma_spec::parent_level(&levels[k]);
        levels.push(next);
    }
    levels
}

/// The tile holding leaf `index` of a block of `count` leaves.
pub(crate) const fn tile_of(count: usize, index: usize) -> u32 {
    let width = count.next_power_of_two();
    let tile_h = if width.trailing_zeros() < TILE_LEAVES.trailing_zeros() {
        width.trailing_zeros()
    } else {
        TILE_LEAVES.trailing_zeros()
    };
    (index >> tile_h) as u32
}

/// The proof (MERKLE-4, 16 siblings bottom-up, 512 bytes) of leaf `index`, from the tile that
/// holds it and the block's top row.
pub(crate) fn tree_proof(tile: &[u8], top: &[u8], index: usize) -> Result<Vec<u8>, StoreError> {
    let bad = |what, len: usize| corrupt(what, format!("{len} bytes, leaf {index}"));
    let (&tile_h, tile) = tile.split_first().ok_or_else(|| bad("proof tile", 0))?;
    let (tile_h, tile_w) = (tile_h as usize, 1usize << (tile_h as usize).min(TREE_DEPTH));
    if tile_h > TREE_DEPTH || tile.len() != 32 * (2 * tile_w - 2) {
        return Err(bad("proof tile", tile.len() + 1));
    }
    let [top_tile_h, height, upper @ ..] = top else { return Err(bad("tree top", top.len())) };
    let height = *height as usize;
    if usize::from(*top_tile_h) != tile_h
        || height < tile_h
        || height > TREE_DEPTH
        || index >> height != 0
        || upper.len() != 32 * ((2usize << (height - tile_h)) - 2)
    {
        return Err(bad("tree top", top.len()));
    }
    let mut proof = Vec::with_capacity(plasma_spec::PROOF_LEN);
    let (j, t) = (index & (tile_w - 1), index >> tile_h);
    let mut offset = 0;
    for l in 0..tile_h {
        let at = 32 * (offset + ((j >> l) ^ 1));
        proof.extend_from_slice(&tile[at..at + 32]);
        offset += tile_w >> l;
    }
    offset = 0;
    for k in tile_h..height {
        let at = 32 * (offset + ((t >> (k - tile_h)) ^ 1));
        proof.extend_from_slice(&upper[at..at + 32]);
        offset += 1 << (height - k);
    }
    for z in &zero_hashes()[height..TREE_DEPTH] {
        proof.extend_from_slice(z.as_slice());
    }
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plasma_spec::{BlockTree, Proof};

    fn leaves(n: usize) -> Vec<B256> {
        (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect()
    }

    /// `n` transaction-like byte strings of 100–400 bytes, partly repetitive (so they deflate
    /// as blocks do), from `seed`.
    fn random_txs(seed: u64, n: usize) -> Vec<Bytes> {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|_| {
                let len = 100 + (next() % 301) as usize;
                let owner = (next() % 16) as u8;
                (0..len)
                    .map(|i| if i % 3 == 0 { next() as u8 } else { owner ^ (i as u8) })
                    .collect::<Vec<u8>>()
                    .into()
            })
            .collect()
    }

    fn assert_same_block(a: &EncodedBlock, b: &EncodedBlock, case: &str) {
        assert_eq!(a.info, b.info, "{case}");
        assert!(a.wire == b.wire, "{case}: wire form");
        assert!(a.tx_stream == b.tx_stream, "{case}: tx groups");
        assert_eq!(a.tx_offsets, b.tx_offsets, "{case}");
        assert_eq!(a.tiles, b.tiles, "{case}");
        assert_eq!(a.top, b.top, "{case}");
    }

    /// Differential: a block built with the candidates' groups deflated ahead is, byte for
    /// byte, the block built from its transactions alone — whatever the ledger dropped (none,
    /// the first, one in the middle, the last) and whatever the candidate count (below two
    /// runs, run and group boundaries, a full block). The groups reused are exactly the whole
    /// ones before the first drop, so the test fails if reuse is off or oversteps.
    #[test]
    fn groups_deflated_ahead_give_the_block_built_without_them() {
        let sizes = [0usize, 1, 63, 64, 2 * AHEAD_RUN - 1, 2 * AHEAD_RUN, 2 * AHEAD_RUN + 65, 5000];
        let mut reused_any = false;
        for (k, &n) in sizes.iter().enumerate() {
            let candidates = random_txs(k as u64 + 7, n);
            let mut drops: Vec<Option<usize>> = vec![None];
            if n > 0 {
                drops.extend([Some(0), Some(n / 2), Some(n - 1)]);
            }
            if n > AHEAD_RUN {
                drops.push(Some(AHEAD_RUN + TX_GROUP)); // on a group boundary
            }
            for drop in drops {
                // The block: the candidates in order without the dropped one, then a fee tx.
                let mut block: Vec<Bytes> = candidates.clone();
                if let Some(d) = drop {
                    block.remove(d);
                }
                block.push(Bytes::from(vec![0xfe; 120]));
                let same = drop.unwrap_or(n);
                let l = leaves(block.len());
                let ahead = DeflateAhead::start(candidates.clone()).finish(same);
                let expected = if n > AHEAD_RUN { same / TX_GROUP } else { 0 };
                let case = format!("{n} candidates, drop {drop:?}");
                assert_eq!(ahead.len(), expected, "{case}: groups reused");
                reused_any |= !ahead.is_empty();
                let with = EncodedBlock::new_staged(
                    1000,
                    &block,
                    &l,
                    ahead,
                    &mut ProduceStages::default(),
                )
                .unwrap();
                let without = EncodedBlock::new(1000, &block, &l, None, None).unwrap();
                assert_same_block(&with, &without, &case);
            }
        }
        assert!(reused_any);
    }

    /// Groups that do not fit the block (a caller counting wrong) are not used: the block is
    /// deflated whole and comes out the same.
    #[test]
    fn groups_not_matching_the_block_are_not_used() {
        let candidates = random_txs(3, 3 * AHEAD_RUN);
        let ahead = DeflateAhead::start(candidates.clone()).finish(candidates.len());
        assert!(!ahead.is_empty());
        // A block whose first transactions are shorter than the candidates'.
        let block: Vec<Bytes> = candidates.iter().map(|t| t.slice(1..)).collect();
        let l = leaves(block.len());
        let with = EncodedBlock::new_staged(1000, &block, &l, ahead, &mut ProduceStages::default())
            .unwrap();
        let without = EncodedBlock::new(1000, &block, &l, None, None).unwrap();
        assert_same_block(&with, &without, "shorter");
    }

    /// A production abandoned before `finish` stops the worker instead of deflating the rest.
    #[test]
    fn an_unfinished_deflate_ahead_stops_its_worker() {
        let ahead = DeflateAhead::start(random_txs(5, 40 * AHEAD_RUN));
        let shared = ahead.shared.clone();
        drop(ahead);
        // The worker finishes at most the run it holds, then exits: its clone of `shared` goes.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Arc::strong_count(&shared) > 1 {
            assert!(Instant::now() < deadline, "the worker did not stop");
            std::thread::yield_now();
        }
        let done = shared.runs.lock().iter().filter(|r| r.is_some()).count();
        assert!(done < 40, "{done} of 40 runs deflated after the drop");
    }

    #[test]
    fn tile_proofs_are_the_block_trees_proofs() {
        for n in [1usize, 2, 3, 5, 255, 256, 257, 600, 1024, 4097] {
            let l = leaves(n);
            let tree = BlockTree::from_leaves(&l).unwrap();
            let tiles = Tiles::build(&l, 2);
            assert_eq!(tiles.root, tree.root(), "root of {n}");
            for i in [0, n / 3, n / 2, n - 1] {
                let tile = &tiles.tiles[tile_of(n, i) as usize];
                let proof = tree_proof(tile, &tiles.top, i).unwrap();
                assert_eq!(proof, tree.proof(i).unwrap().to_bytes(), "proof {i} of {n}");
                assert!(Proof::from_bytes(&proof).unwrap().verify(l[i], i, tree.root()));
            }
            let other = &tiles.tiles[(tile_of(n, n - 1) as usize + 1) % tiles.tiles.len()];
            if tiles.tiles.len() > 1 {
                assert_ne!(
                    tree_proof(other, &tiles.top, n - 1).unwrap(),
                    tree.proof(n - 1).unwrap().to_bytes()
                );
            }
            assert!(tree_proof(&tiles.tiles[0][1..], &tiles.top, 0).is_err());
            assert!(tree_proof(&tiles.tiles[0], &tiles.top[1..], 0).is_err());
        }
        assert_eq!(Tiles::build(&[], 2).root, BlockTree::from_leaves(&[]).unwrap().root());
    }

    #[test]
    fn the_tree_on_many_threads_is_the_tree_on_one() {
        // Random sizes across the thresholds where the subtrees go to threads of their own.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..12 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = 1 + (x % 20_000) as usize;
            let l: Vec<B256> = (0..n).map(|i| leaf_hash(&(x ^ i as u64).to_be_bytes())).collect();
            let one = Tiles::build(&l, 1);
            for threads in [2, 3, 4, 8] {
                let many = Tiles::build(&l, threads);
                assert_eq!(
                    (many.root, &many.tiles, &many.top),
                    (one.root, &one.tiles, &one.top),
                    "{n} leaves on {threads} threads"
                );
            }
            assert_eq!(one.root, BlockTree::from_leaves(&l).unwrap().root(), "{n} leaves");
        }
    }

    #[test]
    fn the_wire_form_is_the_groups_end_to_end_and_decodes() {
        let txs: Vec<Bytes> = (0..1000u32)
            .map(|i| Bytes::from(vec![(i % 7) as u8; 100 + i as usize % 300]))
            .collect();
        let l = leaves(txs.len());
        let b = EncodedBlock::new(3000, &txs, &l, None, None).unwrap();
        let root = BlockTree::from_leaves(&l).unwrap().root();
        assert_eq!(b.wire, wire::encode_block(3000, root, &txs, wire::Encoding::Zlib).unwrap());
        let (header, got) = wire::decode_block(&b.wire).unwrap();
        assert_eq!((header.root, header.count, got), (root, 1000, txs));
        assert_eq!(b.info.wire_len, b.wire.len() as u64);
    }

    #[test]
    fn full_size_rows_fill_their_pages() {
        // redb gives a row `ROW_OVERHEAD + len` bytes rounded up to a power of two times 4 KiB:
        // each row kind of a full block must fill its allocation, not spill into twice of it.
        let fits = |len: usize, pages: usize| len + ROW_OVERHEAD <= pages * 4096;
        let tiles = Tiles::build(&leaves(plasma_spec::MAX_TXS_PER_BLOCK), 2);
        assert_eq!(tiles.tiles.len(), 256);
        assert!(tiles.tiles.iter().all(|t| t.len() == 16_321 && fits(t.len(), 4)));
        // The top row is keyed by the block number alone (8 bytes, not 12).
        assert!(tiles.top.len() == 16_322 && fits(tiles.top.len(), 4));
        assert!(fits(WIRE_CHUNK, 64) && !fits(WIRE_CHUNK + 1, 64));
        assert!(fits(TX_ROW, 4) && !fits(TX_ROW + 1, 4));
    }

    #[test]
    fn groups_give_back_each_transaction() {
        let txs: Vec<Bytes> =
            (0..150u32).map(|i| Bytes::from(vec![i as u8; 10 + i as usize])).collect();
        let leaves = leaves(txs.len());
        let b = EncodedBlock::build(
            1001,
            &txs,
            &leaves,
            None,
            None,
            Some(Vec::new()),
            Vec::new(),
            &mut ProduceStages::default(),
        )
        .unwrap();
        assert_eq!(b.tx_offsets.len(), 4 * 4, "3 groups and the end");
        for (i, tx) in txs.iter().enumerate() {
            let r = group_range(&b.tx_offsets, i / TX_GROUP).unwrap();
            let group = &b.tx_stream[r.start as usize..r.end as usize];
            assert_eq!(group_tx(group, i % TX_GROUP).unwrap(), tx.to_vec());
        }
        let r = group_range(&b.tx_offsets, 2).unwrap();
        assert_eq!(r.end, b.tx_stream.len() as u64);
        assert!(group_tx(&b.tx_stream[r.start as usize..], 30).is_err());
        assert!(group_range(&b.tx_offsets, 3).is_err());
    }

    #[test]
    fn info_round_trips() {
        let mut info = BlockInfo {
            blknum: 7000,
            root: B256::repeat_byte(1),
            tx_count: 65_536,
            wire_len: 12_345_678,
            l1_timestamp: None,
            l1_tx: None,
        };
        assert_eq!(BlockInfo::from_bytes(7000, &info.to_bytes()).unwrap(), info);
        info.l1_timestamp = Some(1_700_000_000);
        info.l1_tx = Some(B256::repeat_byte(9));
        assert_eq!(BlockInfo::from_bytes(7000, &info.to_bytes()).unwrap(), info);
        assert!(BlockInfo::from_bytes(7000, &[0; 3]).is_err());
    }
}
