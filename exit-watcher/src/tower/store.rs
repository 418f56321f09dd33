//! The tower's tables in the watcher's redb store: chunks, faults, rebuilt blocks and the roots
//! committed on L1. Every write is one redb transaction, committed (fsync) before the caller
//! answers anyone: a receipt names a chunk that survives a crash.
//!
//! | Table | Key | Value |
//! |---|---|---|
//! | `da_chunks` | block number | the chunk envelope as received (DA-3 bytes) |
//! | `da_faults` | sequence number | a [`Fault`] as JSON |
//! | `da_rebuilt` | block number | the chunk indices the rebuild used, as JSON |
//! | `da_committed` | block number | the root committed on L1 (32 bytes) |

use super::{Culprit, Evidence, Fault, FaultKind, SignedHeader, Tower, TowerError, st};
use alloy::primitives::{B256, Bytes};
use plasma_da::{ChunkEnvelope, DaError, Receipt};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::collections::BTreeMap;

const CHUNKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("da_chunks");
const FAULTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("da_faults");
const REBUILT: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("da_rebuilt");
const COMMITTED: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("da_committed");

pub(super) fn create_tables(db: &Database) -> Result<(), TowerError> {
    let tx = db.begin_write().map_err(st)?;
    tx.open_table(CHUNKS).map_err(st)?;
    tx.open_table(FAULTS).map_err(st)?;
    tx.open_table(REBUILT).map_err(st)?;
    tx.open_table(COMMITTED).map_err(st)?;
    tx.commit().map_err(st)
}

/// Rebuilt blocks and the chunk indices each used.
pub(super) type Rebuilt = BTreeMap<u64, Vec<u16>>;

/// Every fault in order, and the rebuilt blocks.
pub(super) fn load(db: &Database) -> Result<(Vec<Fault>, Rebuilt), TowerError> {
    let tx = db.begin_read().map_err(st)?;
    let mut faults = Vec::new();
    for entry in tx.open_table(FAULTS).map_err(st)?.iter().map_err(st)? {
        let (k, v) = entry.map_err(st)?;
        faults.push(
            serde_json::from_slice(v.value())
                .map_err(|_| TowerError::Corrupt { what: format!("fault {}", k.value()) })?,
        );
    }
    let mut rebuilt = BTreeMap::new();
    for entry in tx.open_table(REBUILT).map_err(st)?.iter().map_err(st)? {
        let (k, v) = entry.map_err(st)?;
        rebuilt.insert(
            k.value(),
            serde_json::from_slice(v.value())
                .map_err(|_| TowerError::Corrupt { what: format!("rebuilt {}", k.value()) })?,
        );
    }
    Ok((faults, rebuilt))
}

pub(super) fn append_fault(db: &Database, fault: &Fault) -> Result<(), TowerError> {
    let json = serde_json::to_vec(fault).map_err(st)?;
    let tx = db.begin_write().map_err(st)?;
    {
        let mut t = tx.open_table(FAULTS).map_err(st)?;
        let next = t.last().map_err(st)?.map_or(0, |(k, _)| k.value() + 1);
        t.insert(next, json.as_slice()).map_err(st)?;
    }
    tx.commit().map_err(st)
}

pub(super) fn chunk_count(db: &Database) -> Result<u64, TowerError> {
    let tx = db.begin_read().map_err(st)?;
    tx.open_table(CHUNKS).map_err(st)?.len().map_err(st)
}

/// Why a `PUT /v1/da/chunks/{blknum}` was refused: each has its HTTP status and JSON code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PutError {
    /// This watcher has no `--da.index`.
    #[error("this watcher is not a tower (no --da.index)")]
    NotATower,
    /// The body is not an envelope, or names another block than the path.
    #[error("{0}")]
    Malformed(String),
    /// Not a child block number (deposit blocks are never distributed).
    #[error("{0} is not a child block number")]
    NotAChildBlock(u64),
    /// Further past the last committed child block than [`super::MAX_BLOCKS_AHEAD`] (or this
    /// watcher has not read L1 that far yet): try again later.
    #[error(
        "block {blknum} is more than {ahead} blocks past the last committed child block {last}"
    )]
    TooFarAhead {
        /// Block.
        blknum: u64,
        /// The last committed child block this watcher read.
        last: u64,
        /// The bound.
        ahead: u64,
    },
    /// The chunk is not this tower's.
    #[error("chunk {got} sent to tower {mine}")]
    WrongIndex {
        /// This tower's index.
        mine: u16,
        /// The envelope's.
        got: u16,
    },
    /// The header's `k`, `n` are not the configured ones.
    #[error("header k={k} n={n}, this tower is configured with k={want_k} n={want_n}")]
    BadParams {
        /// Header's `k`.
        k: u16,
        /// Header's `n`.
        n: u16,
        /// Configured.
        want_k: u16,
        /// Configured.
        want_n: u16,
    },
    /// `ChunkEnvelope::verify` refused it.
    #[error("{0}")]
    Da(#[from] DaError),
    /// The block is committed on L1 with another root.
    #[error("block {blknum} is committed on L1 with root {committed}, the header says {header}")]
    ChunkMismatch {
        /// Block.
        blknum: u64,
        /// On L1.
        committed: B256,
        /// In the header.
        header: B256,
    },
    /// Another operator-signed header for this block is stored.
    #[error("block {blknum} already has chunk root {stored}; this header says {sent}")]
    Equivocation {
        /// Block.
        blknum: u64,
        /// Stored.
        stored: B256,
        /// Sent.
        sent: B256,
    },
    /// The store failed.
    #[error("{0}")]
    Store(#[from] TowerError),
}

impl PutError {
    /// HTTP status.
    pub(crate) const fn status(&self) -> u16 {
        match self {
            Self::NotATower => 404,
            Self::Malformed(_) | Self::WrongIndex { .. } | Self::BadParams { .. } | Self::Da(_) => {
                400
            }
            Self::NotAChildBlock(_) => 400,
            Self::ChunkMismatch { .. } | Self::Equivocation { .. } => 409,
            Self::Store(_) | Self::TooFarAhead { .. } => 503,
        }
    }

    /// The JSON error code (the contract's names; `plasma-da`'s for its own refusals).
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::NotATower => "NotATower",
            Self::Malformed(_) => "Malformed",
            Self::NotAChildBlock(_) => "NotAChildBlock",
            Self::TooFarAhead { .. } => "TooFarAhead",
            Self::WrongIndex { .. } => "WrongIndex",
            Self::BadParams { .. } => "BadParams",
            Self::Da(e) => da_code(e),
            Self::ChunkMismatch { .. } => "ChunkMismatch",
            Self::Equivocation { .. } => "Equivocation",
            Self::Store(_) => "StorageFailure",
        }
    }
}

/// `DaError`'s code, with a signature that does not recover named as a header not signed by
/// the operator (the contract's `NotOperator`).
pub(crate) fn da_code(e: &DaError) -> &'static str {
    match e {
        DaError::BadSignature(_) => "NotOperator",
        e => e.code(),
    }
}

/// The signed receipt of a stored chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SignedReceipt {
    pub(crate) receipt: Receipt,
    pub(crate) tower: alloy::primitives::Address,
    pub(crate) signature: Bytes,
}

impl Tower {
    /// `PUT /v1/da/chunks/{blknum}` (blocking: decodes, verifies, writes and fsyncs). Checks in
    /// the contract's order; stores the envelope in one transaction with the equivocation check
    /// (two PUTs of one block cannot both win), then signs the receipt.
    /// `last_committed` is the highest child block L1 committed, as the watcher read it.
    pub(crate) fn put_chunk(
        &self,
        blknum: u64,
        body: &[u8],
        last_committed: u64,
    ) -> Result<SignedReceipt, PutError> {
        let (Some(index), Some(signer)) = (self.settings.index, self.signer.as_ref()) else {
            return Err(PutError::NotATower);
        };
        if blknum == 0 || !blknum.is_multiple_of(plasma_spec::CHILD_BLOCK_INTERVAL) {
            return Err(PutError::NotAChildBlock(blknum));
        }
        let ahead = super::MAX_BLOCKS_AHEAD;
        if blknum > last_committed.saturating_add(ahead * plasma_spec::CHILD_BLOCK_INTERVAL) {
            return Err(PutError::TooFarAhead { blknum, last: last_committed, ahead });
        }
        let env = ChunkEnvelope::decode(body).map_err(|e| PutError::Malformed(e.to_string()))?;
        let h = &env.header;
        if h.blknum != blknum {
            return Err(PutError::Malformed(format!(
                "the path names block {blknum}, the header block {}",
                h.blknum
            )));
        }
        if env.index != index {
            return Err(PutError::WrongIndex { mine: index, got: env.index });
        }
        let (k, n) = (self.settings.k(), self.settings.n());
        if h.k != k || h.n != n {
            return Err(PutError::BadParams { k: h.k, n: h.n, want_k: k, want_n: n });
        }
        if let Err(e) = env.verify(&self.domain, self.operator) {
            // Evidence only when the operator signed the header: anyone can send a header that is
            // not signed, and such a PUT is refused without filling the fault list.
            if self.signed_by_operator(&env) {
                self.fault(
                    blknum,
                    FaultKind::BadChunkProof,
                    Culprit::Put,
                    format_args!("chunk {}: {e}", env.index),
                    None,
                );
            } else {
                tracing::warn!(target: "watcher::da", blknum, error = %e,
                    "chunk refused: header not signed by the operator");
            }
            return Err(e.into());
        }
        if let Some(committed) = self.committed_root(blknum)?
            && committed != h.tx_root
        {
            let e = PutError::ChunkMismatch { blknum, committed, header: h.tx_root };
            self.fault(blknum, FaultKind::ChunkMismatch, Culprit::Put, &e, None);
            return Err(e);
        }
        let tx = self.db.begin_write().map_err(st)?;
        let equivocation = {
            let mut chunks = tx.open_table(CHUNKS).map_err(st)?;
            let stored = match chunks.get(blknum).map_err(st)? {
                Some(v) => Some(ChunkEnvelope::decode(v.value()).map_err(|_| {
                    TowerError::Corrupt { what: format!("chunk of block {blknum}") }
                })?),
                None => None,
            };
            match stored {
                // The same header again: idempotent, nothing written.
                Some(old) if old.header == env.header => None,
                Some(old) => Some(old),
                None => {
                    chunks.insert(blknum, body).map_err(st)?;
                    None
                }
            }
        };
        tx.commit().map_err(st)?;
        if let Some(old) = equivocation {
            let e = PutError::Equivocation {
                blknum,
                stored: old.header.chunk_root,
                sent: env.header.chunk_root,
            };
            self.fault(
                blknum,
                FaultKind::Equivocation,
                Culprit::Put,
                &e,
                Some(Evidence { first: signed_header(&old), second: signed_header(&env) }),
            );
            return Err(e);
        }
        let receipt = Receipt { blknum, chunk_root: env.header.chunk_root, index };
        let signature = receipt.sign(&self.domain, signer);
        Ok(SignedReceipt { receipt, tower: signer.address(), signature })
    }

    fn signed_by_operator(&self, env: &ChunkEnvelope) -> bool {
        env.header.signer(&self.domain, &env.header_sig).is_ok_and(|a| a == self.operator)
    }

    /// The stored envelope of `blknum`, as received.
    pub(crate) fn chunk(&self, blknum: u64) -> Result<Option<Vec<u8>>, TowerError> {
        let tx = self.db.begin_read().map_err(st)?;
        let t = tx.open_table(CHUNKS).map_err(st)?;
        Ok(t.get(blknum).map_err(st)?.map(|v| v.value().to_vec()))
    }

    /// The root L1 committed for child block `blknum`, as the watcher read it.
    pub(crate) fn committed_root(&self, blknum: u64) -> Result<Option<B256>, TowerError> {
        let tx = self.db.begin_read().map_err(st)?;
        let t = tx.open_table(COMMITTED).map_err(st)?;
        let Some(v) = t.get(blknum).map_err(st)? else { return Ok(None) };
        let v = v.value();
        if v.len() != 32 {
            return Err(TowerError::Corrupt { what: format!("committed root of {blknum}") });
        }
        Ok(Some(B256::from_slice(v)))
    }

    /// L1 committed child block `blknum` with `root` (read by the watcher, WATCH-1): remembered
    /// for later PUTs, and a stored header that claims another root is a `ChunkMismatch`.
    pub(crate) fn on_commit(&self, blknum: u64, root: B256) -> Result<(), TowerError> {
        if self.committed_root(blknum)? != Some(root) {
            let tx = self.db.begin_write().map_err(st)?;
            tx.open_table(COMMITTED).map_err(st)?.insert(blknum, root.as_slice()).map_err(st)?;
            tx.commit().map_err(st)?;
        }
        if let Some(bytes) = self.chunk(blknum)? {
            let env = ChunkEnvelope::decode(&bytes)
                .map_err(|_| TowerError::Corrupt { what: format!("chunk of block {blknum}") })?;
            if env.header.tx_root != root {
                self.fault(
                    blknum,
                    FaultKind::ChunkMismatch,
                    Culprit::Stored,
                    format_args!(
                        "header (chunk root {}) claims root {}, L1 committed {root}",
                        env.header.chunk_root, env.header.tx_root
                    ),
                    None,
                );
            }
        }
        Ok(())
    }

    /// Records that `blknum` was rebuilt from chunks `indices`.
    pub(crate) fn record_rebuilt(&self, blknum: u64, indices: &[u16]) {
        self.rebuilt.lock().insert(blknum, indices.to_vec());
        let written = (|| -> Result<(), TowerError> {
            let json = serde_json::to_vec(indices).map_err(st)?;
            let tx = self.db.begin_write().map_err(st)?;
            tx.open_table(REBUILT).map_err(st)?.insert(blknum, json.as_slice()).map_err(st)?;
            tx.commit().map_err(st)
        })();
        if let Err(e) = written {
            tracing::warn!(target: "watcher::da", blknum, error = %e, "rebuilt block not persisted");
        }
    }
}

pub(super) fn signed_header(env: &ChunkEnvelope) -> SignedHeader {
    SignedHeader { header: (&env.header).into(), header_signature: env.header_sig.clone() }
}
