//! How a block is stored (OP-9): once, when it is made, as
//! - its wire form ([`plasma_spec::wire`], zlib), cut into [`WIRE_CHUNK`]-byte rows so a download
//!   streams row by row and a range starts at the row that holds it;
//! - a proof index: the Merkle tree cut into tiles of [`TILE_LEAVES`] leaves, each tile holding
//!   its subtree's levels and the siblings above it, so one tile row is a whole proof;
//! - a transaction index: the stored transaction bytes in groups of [`TX_GROUP`], each group
//!   deflated on its own, so one transaction is one small row inflated, never the block.

use crate::store::{BlockRecord, StoreError};
use alloy::primitives::{B256, Bytes};
use plasma_spec::{SignedTransaction, TREE_DEPTH, leaf_hash, node_hash, wire, zero_hashes};
use std::io::{Read, Write};

/// Bytes per stored row of a block's wire form.
pub const WIRE_CHUNK: usize = 256 * 1024;
/// Leaves per proof tile (a tile is `2 * TILE_LEAVES - 1` hashes plus the siblings above it).
pub const TILE_LEAVES: usize = 256;
/// Transactions per deflated group of the transaction index.
pub const TX_GROUP: usize = 64;

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

/// A block ready to be written: everything computed once, outside the write transaction.
#[derive(Clone, Debug)]
pub struct EncodedBlock {
    /// Its info row.
    pub info: BlockInfo,
    /// The wire form.
    pub wire: Vec<u8>,
    /// Proof tiles, in order.
    pub tiles: Vec<Vec<u8>>,
    /// Deflated transaction groups, in order.
    pub tx_groups: Vec<Vec<u8>>,
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
    /// Encodes a block whose leaf hashes the caller already has (block production). The wire
    /// form, the transaction groups and the tree are computed on up to three threads.
    pub fn new(
        blknum: u64,
        txs: &[Bytes],
        leaves: &[B256],
        l1_timestamp: Option<u64>,
        l1_tx: Option<B256>,
    ) -> Result<Self, StoreError> {
        if txs.len() != leaves.len() || txs.len() > plasma_spec::MAX_TXS_PER_BLOCK {
            return Err(corrupt("block", format!("{} txs, {} leaves", txs.len(), leaves.len())));
        }
        // The tree first (its root heads the wire form), then the wire form and the groups on
        // two threads: the two deflates are most of the time.
        let tree = Tiles::build(leaves);
        let (wire, groups) = std::thread::scope(|s| {
            let groups = s.spawn(|| txs.chunks(TX_GROUP).map(deflate_group).collect::<Vec<_>>());
            let wire = wire::encode_block(blknum, tree.root, txs, wire::Encoding::Zlib);
            (wire, groups.join())
        });
        let groups = groups.map_err(|_| corrupt("block", "group encoder panicked"))?;
        let tx_groups = groups.into_iter().collect::<Result<Vec<_>, _>>()?;
        let wire = wire.map_err(|e| corrupt("block", e))?;
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
            tx_groups,
        })
    }

    /// Encodes a block from its record (deposits, migration), checking its root.
    pub fn from_record(record: &BlockRecord) -> Result<Self, StoreError> {
        let leaves = leaves_of(record.blknum, &record.txs)?;
        let encoded =
            Self::new(record.blknum, &record.txs, &leaves, record.l1_timestamp, record.l1_tx)?;
        if encoded.info.root != record.root {
            return Err(corrupt(
                "block",
                format!(
                    "{}: root {} but its transactions give {}",
                    record.blknum, record.root, encoded.info.root
                ),
            ));
        }
        Ok(encoded)
    }
}

fn deflate_group(txs: &[Bytes]) -> Result<Vec<u8>, StoreError> {
    let raw: usize = txs.iter().map(|t| 4 + t.len()).sum();
    let mut z =
        flate2::write::ZlibEncoder::new(Vec::with_capacity(raw / 2), flate2::Compression::fast());
    for t in txs {
        z.write_all(&(t.len() as u32).to_be_bytes()).map_err(|e| corrupt("tx group", e))?;
        z.write_all(t).map_err(|e| corrupt("tx group", e))?;
    }
    z.finish().map_err(|e| corrupt("tx group", e))
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

/// The proof tiles of a tree.
struct Tiles {
    root: B256,
    tiles: Vec<Vec<u8>>,
}

impl Tiles {
    /// Levels of the tree over `leaves` padded to the next power of two (zero leaves, as
    /// `BlockTree`), cut into tiles. A tile row is: its height `h` (one byte), the `2^(h+1) - 1`
    /// hashes of its subtree level by level from the leaves up, then the `TREE_DEPTH - h`
    /// siblings above its root, bottom-up.
    fn build(leaves: &[B256]) -> Self {
        let zeros = zero_hashes();
        if leaves.is_empty() {
            return Self { root: zeros[TREE_DEPTH], tiles: Vec::new() };
        }
        let width = leaves.len().next_power_of_two();
        let height = width.trailing_zeros() as usize;
        let mut levels: Vec<Vec<B256>> = Vec::with_capacity(height + 1);
        let mut level = leaves.to_vec();
        level.resize(width, B256::ZERO);
        levels.push(level);
        for k in 0..height {
            let next: Vec<B256> = levels[k].chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
            levels.push(next);
        }
        let mut root = levels[height][0];
        for z in &zeros[height..TREE_DEPTH] {
            root = node_hash(&root, z);
        }
        let tile_h = height.min(TILE_LEAVES.trailing_zeros() as usize);
        let tile_w = 1usize << tile_h;
        let count = leaves.len().div_ceil(tile_w);
        let tiles = (0..count)
            .map(|t| {
                let mut row = Vec::with_capacity(1 + 32 * (2 * tile_w - 1 + TREE_DEPTH - tile_h));
                row.push(tile_h as u8);
                for (l, level) in levels.iter().enumerate().take(tile_h + 1) {
                    let w = tile_w >> l;
                    for h in &level[t * w..(t + 1) * w] {
                        row.extend_from_slice(h.as_slice());
                    }
                }
                for k in tile_h..height {
                    row.extend_from_slice(levels[k][(t >> (k - tile_h)) ^ 1].as_slice());
                }
                for z in &zeros[height..TREE_DEPTH] {
                    row.extend_from_slice(z.as_slice());
                }
                row
            })
            .collect();
        Self { root, tiles }
    }
}

/// The tile holding leaf `index` of a block of `count` leaves, and the leaf's place in it.
pub(crate) const fn tile_of(count: usize, index: usize) -> (u32, usize) {
    let width = count.next_power_of_two();
    let tile_h = if width.trailing_zeros() < TILE_LEAVES.trailing_zeros() {
        width.trailing_zeros()
    } else {
        TILE_LEAVES.trailing_zeros()
    };
    ((index >> tile_h) as u32, index & ((1 << tile_h) - 1))
}

/// The proof (MERKLE-4, 16 siblings bottom-up, 512 bytes) of leaf `j` of a tile, and the leaf.
pub(crate) fn tile_proof(tile: &[u8], j: usize) -> Result<(B256, Vec<u8>), StoreError> {
    let bad = || corrupt("proof tile", format!("{} bytes", tile.len()));
    let tile_h = *tile.first().ok_or_else(bad)? as usize;
    let tile_w = 1usize << tile_h;
    let body = &tile[1..];
    if tile_h > TREE_DEPTH
        || j >= tile_w
        || body.len() != 32 * (2 * tile_w - 1 + TREE_DEPTH - tile_h)
    {
        return Err(bad());
    }
    let hash = |i: usize| &body[32 * i..32 * (i + 1)];
    let mut proof = Vec::with_capacity(plasma_spec::PROOF_LEN);
    let mut offset = 0;
    for l in 0..tile_h {
        proof.extend_from_slice(hash(offset + ((j >> l) ^ 1)));
        offset += tile_w >> l;
    }
    let upper = 2 * tile_w - 1;
    for k in 0..TREE_DEPTH - tile_h {
        proof.extend_from_slice(hash(upper + k));
    }
    Ok((B256::from_slice(hash(j)), proof))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plasma_spec::{BlockTree, Proof};

    fn leaves(n: usize) -> Vec<B256> {
        (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect()
    }

    #[test]
    fn tile_proofs_are_the_block_trees_proofs() {
        for n in [1usize, 2, 3, 5, 255, 256, 257, 600, 1024, 4097] {
            let l = leaves(n);
            let tree = BlockTree::from_leaves(&l).unwrap();
            let tiles = Tiles::build(&l);
            assert_eq!(tiles.root, tree.root(), "root of {n}");
            for i in [0, n / 3, n / 2, n - 1] {
                let (t, j) = tile_of(n, i);
                let (leaf, proof) = tile_proof(&tiles.tiles[t as usize], j).unwrap();
                assert_eq!(leaf, l[i]);
                assert_eq!(proof, tree.proof(i).unwrap().to_bytes(), "proof {i} of {n}");
                assert!(Proof::from_bytes(&proof).unwrap().verify(l[i], i, tree.root()));
            }
        }
        assert_eq!(Tiles::build(&[]).root, BlockTree::from_leaves(&[]).unwrap().root());
    }

    #[test]
    fn groups_give_back_each_transaction() {
        let txs: Vec<Bytes> =
            (0..150u32).map(|i| Bytes::from(vec![i as u8; 10 + i as usize])).collect();
        let groups: Vec<Vec<u8>> =
            txs.chunks(TX_GROUP).map(|c| deflate_group(c).unwrap()).collect();
        for (i, tx) in txs.iter().enumerate() {
            assert_eq!(group_tx(&groups[i / TX_GROUP], i % TX_GROUP).unwrap(), tx.to_vec());
        }
        assert!(group_tx(&groups[2], 30).is_err());
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
