//! The chunk commitment: a keccak Merkle tree over the `n` chunks (spec: DA-2).

use crate::MAX_TOWERS;
use alloy_primitives::{B256, Keccak256};

/// Domain prefix of a chunk leaf (MERKLE's leaves use `0x00`).
const LEAF_PREFIX: u8 = 0x02;
/// Domain prefix of an inner node (MERKLE's use `0x01`).
const NODE_PREFIX: u8 = 0x03;

/// The sibling hashes from a chunk's leaf up to the root (spec: DA-2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChunkProof(pub Vec<B256>);

/// `keccak256(0x02 ‖ u16be(index) ‖ chunk)` (spec: DA-2).
pub fn chunk_leaf(index: u16, chunk: &[u8]) -> B256 {
    let mut h = Keccak256::new();
    h.update([LEAF_PREFIX]);
    h.update(index.to_be_bytes());
    h.update(chunk);
    h.finalize()
}

/// `keccak256(0x03 ‖ left ‖ right)` (spec: DA-2).
pub fn chunk_node(left: &B256, right: &B256) -> B256 {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left.as_slice());
    buf[33..].copy_from_slice(right.as_slice());
    alloy_primitives::keccak256(buf)
}

/// The depth of the tree over `n` chunks, `ceil(log2 n)` (0 for one chunk).
pub const fn tree_depth(n: u16) -> usize {
    (n as usize).next_power_of_two().trailing_zeros() as usize
}

/// The tree over a codeword's leaves, every level kept so proofs are lookups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChunkTree {
    /// `levels[0]` = the leaves padded with zero leaves to a power of two; the last is the root.
    levels: Vec<Vec<B256>>,
}

impl ChunkTree {
    /// The tree over the given leaves (at most [`MAX_TOWERS`]).
    pub(crate) fn from_leaves(mut leaves: Vec<B256>) -> Self {
        debug_assert!(!leaves.is_empty() && leaves.len() <= MAX_TOWERS as usize);
        leaves.resize(leaves.len().next_power_of_two(), B256::ZERO);
        let mut levels = vec![leaves];
        while let Some(level) = levels.last().filter(|l| l.len() > 1) {
            let up = level.chunks_exact(2).map(|p| chunk_node(&p[0], &p[1])).collect();
            levels.push(up);
        }
        Self { levels }
    }

    /// The tree over `chunks` (chunk `i` at leaf `i`), hashed on up to two threads.
    pub(crate) fn from_chunks<C: AsRef<[u8]> + Sync>(chunks: &[C]) -> Self {
        let leaf = |(i, c): (usize, &C)| chunk_leaf(i as u16, c.as_ref());
        let total: usize = chunks.iter().map(|c| c.as_ref().len()).sum();
        let leaves = if chunks.len() < 2 || total < crate::code::PARALLEL_MIN_BYTES {
            chunks.iter().enumerate().map(leaf).collect()
        } else {
            let mid = chunks.len() / 2;
            std::thread::scope(|s| {
                let hi = s.spawn(|| {
                    chunks[mid..]
                        .iter()
                        .enumerate()
                        .map(|(i, c)| leaf((i + mid, c)))
                        .collect::<Vec<_>>()
                });
                let mut lo: Vec<B256> = chunks[..mid].iter().enumerate().map(leaf).collect();
                match hi.join() {
                    Ok(hi) => lo.extend(hi),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
                lo
            })
        };
        Self::from_leaves(leaves)
    }

    /// The root.
    pub(crate) fn root(&self) -> B256 {
        self.levels.last().and_then(|l| l.first()).copied().unwrap_or_default()
    }

    /// The proof of leaf `index` (empty if out of range, which verifies nothing for n > 1).
    pub(crate) fn proof(&self, index: usize) -> ChunkProof {
        if index >= self.levels[0].len() {
            return ChunkProof::default();
        }
        let depth = self.levels.len() - 1;
        ChunkProof((0..depth).map(|d| self.levels[d][(index >> d) ^ 1]).collect())
    }
}

/// The chunk root of a full set of chunks (chunk `i` at position `i`), hashed on up to two
/// threads (spec: DA-2). `chunks` must hold 1 to [`MAX_TOWERS`] chunks; otherwise zero.
pub fn chunk_root<C: AsRef<[u8]> + Sync>(chunks: &[C]) -> B256 {
    if chunks.is_empty() || chunks.len() > usize::from(MAX_TOWERS) {
        return B256::ZERO;
    }
    ChunkTree::from_chunks(chunks).root()
}

/// Whether `chunk` is chunk `index` of the `n` chunks under `root` (spec: DA-2).
pub fn verify_chunk(root: B256, n: u16, index: u16, chunk: &[u8], proof: &ChunkProof) -> bool {
    if n == 0 || n > MAX_TOWERS || index >= n || proof.0.len() != tree_depth(n) {
        return false;
    }
    let mut h = chunk_leaf(index, chunk);
    for (d, sibling) in proof.0.iter().enumerate() {
        h = if (index >> d) & 1 == 1 { chunk_node(sibling, &h) } else { chunk_node(&h, sibling) };
    }
    h == root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_for_every_size() {
        for n in [1u16, 2, 3, 5, 8, 33] {
            let chunks: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 3]).collect();
            let tree = ChunkTree::from_chunks(&chunks);
            for i in 0..n {
                let proof = tree.proof(i as usize);
                assert_eq!(proof.0.len(), tree_depth(n));
                assert!(verify_chunk(tree.root(), n, i, &chunks[i as usize], &proof));
                assert!(!verify_chunk(tree.root(), n, i, b"other", &proof));
            }
            assert!(!verify_chunk(tree.root(), n, n, &chunks[0], &tree.proof(0)));
        }
    }

    #[test]
    fn one_chunk_root_is_its_leaf() {
        let tree = ChunkTree::from_chunks(&[b"abc"]);
        assert_eq!(tree.root(), chunk_leaf(0, b"abc"));
        assert!(verify_chunk(tree.root(), 1, 0, b"abc", &ChunkProof::default()));
    }
}
