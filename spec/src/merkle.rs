//! Block Merkle trees (spec: MERKLE).
//!
//! A fixed-depth binary keccak tree with domain-separated leaves and nodes. The tree over the
//! block's transactions is built with `rs_merkle` on the smallest power of two that holds them;
//! the levels above are all-empty subtrees whose hashes are constants, so a small block costs
//! only as much as its transactions while every proof has the same 16 levels.

use crate::{
    constants::{MAX_TXS_PER_BLOCK, TREE_DEPTH},
    error::MerkleError,
};
use alloy_primitives::{B256, keccak256};
use std::sync::OnceLock;

/// Bytes of a serialised proof: one 32-byte sibling per level (spec: MERKLE-4).
pub const PROOF_LEN: usize = 32 * TREE_DEPTH;

/// Prefix of a leaf's preimage (spec: MERKLE-1).
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an inner node's preimage (spec: MERKLE-2).
const NODE_PREFIX: u8 = 0x01;

/// The leaf of a transaction: `keccak256(0x00 ‖ txBytes)` (spec: MERKLE-1).
pub fn leaf_hash(tx_bytes: &[u8]) -> B256 {
    let mut hasher = alloy_primitives::Keccak256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(tx_bytes);
    hasher.finalize()
}

/// `0x00 ‖ abi.encode(tx)` for the unsigned transaction inside `signed`, a signed
/// transaction's canonical encoding (ENC-4: [`crate::SignedTransaction::decode`] accepted it), copied
/// out in place instead of encoding the transaction again: its keccak is the leaf (MERKLE-1) and
/// the keccak of all but its first byte the transaction's hash (ENC-5). `abi.encode(signed)` is
/// the word `0x20`, then the tuple's head (the transaction's offset, `0x40`, and the signatures'
/// offset `S`), then the transaction's tuple up to `S`; `abi.encode(tx)` is the word `0x20` then
/// that same tuple. `None` if `signed` is not laid out so (never, once decoded: the caller
/// then encodes the transaction again).
pub fn leaf_message(signed: &[u8]) -> Option<Vec<u8>> {
    let word = |at: usize| -> Option<usize> {
        let w = signed.get(at..at + 32)?;
        // A canonical offset fits in a few bytes; anything else is not this layout.
        if w[..24].iter().any(|b| *b != 0) {
            return None;
        }
        usize::try_from(u64::from_be_bytes(w[24..].try_into().ok()?)).ok()
    };
    if word(0)? != 0x20 || word(32)? != 0x40 {
        return None;
    }
    let tuple = signed.get(96..32usize.checked_add(word(64)?)?)?;
    let mut message = Vec::with_capacity(33 + tuple.len());
    message.push(LEAF_PREFIX);
    message.extend_from_slice(&[0u8; 31]);
    message.push(0x20);
    message.extend_from_slice(tuple);
    Some(message)
}

/// [`leaf_message`] of `signed`, the encoding of `tx`, or `0x00 ‖ tx.encode()` where it is not
/// laid out so: the same message either way.
pub fn leaf_message_of(signed: &[u8], tx: &crate::Transaction) -> Vec<u8> {
    leaf_message(signed).unwrap_or_else(|| {
        let mut message = vec![LEAF_PREFIX];
        message.extend(tx.encode());
        message
    })
}

/// The leaf (MERKLE-1) and hash (ENC-5) of every transaction whose [`leaf_message`] is given,
/// in order: sixteen messages, eight transactions, to each run of the lanes' Keccak.
pub fn leaves_and_hashes(messages: &[&[u8]]) -> Vec<(B256, B256)> {
    let both: Vec<&[u8]> =
        messages.iter().flat_map(|m| [*m, m.get(1..).unwrap_or_default()]).collect();
    let hashed = plasma_keccak_lanes::keccak256_many(&both);
    hashed.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

/// An inner node: `keccak256(0x01 ‖ left ‖ right)` (spec: MERKLE-2).
pub fn node_hash(left: &B256, right: &B256) -> B256 {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left.as_slice());
    buf[33..].copy_from_slice(right.as_slice());
    keccak256(buf)
}

/// The level above `level`: [`node_hash`] of each pair, in order (a last node without a pair is
/// left out), the pairs hashed eight at a time where the CPU has AVX-512
/// (`plasma_keccak_lanes`; the same hashes on any CPU).
pub fn parent_level(level: &[B256]) -> Vec<B256> {
    let preimages: Vec<[u8; 65]> = level
        .chunks_exact(2)
        .map(|p| {
            let mut buf = [0u8; 65];
            buf[0] = NODE_PREFIX;
            buf[1..33].copy_from_slice(p[0].as_slice());
            buf[33..].copy_from_slice(p[1].as_slice());
            buf
        })
        .collect();
    plasma_keccak_lanes::keccak256_many(&preimages.iter().map(|b| b.as_slice()).collect::<Vec<_>>())
}

/// The root of the block whose leaves are `leaves` (MERKLE-3): `BlockTree::from_leaves(leaves)`'s
/// root, without keeping the tree (a watcher checking a downloaded block against L1 needs the
/// root only), each level hashed by [`parent_level`].
pub fn root_of_leaves(leaves: &[B256]) -> Result<B256, MerkleError> {
    let len = leaves.len();
    if len > MAX_TXS_PER_BLOCK {
        return Err(MerkleError::TooManyLeaves { count: len });
    }
    let zeros = zero_hashes();
    if len == 0 {
        return Ok(zeros[TREE_DEPTH]);
    }
    let width = len.next_power_of_two();
    let height = width.trailing_zeros() as usize;
    let mut level = Vec::with_capacity(width);
    level.extend_from_slice(leaves);
    level.resize(width, B256::ZERO);
    while level.len() > 1 {
        level = parent_level(&level);
    }
    let mut root = level[0];
    for zero in &zeros[height..TREE_DEPTH] {
        root = node_hash(&root, zero);
    }
    Ok(root)
}

/// Hashes of empty subtrees: `Z[0]` is the empty leaf (zero), `Z[k+1] = node(Z[k], Z[k])`
/// (spec: MERKLE-3). `Z[16]` is the root of an empty block.
pub fn zero_hashes() -> &'static [B256; TREE_DEPTH + 1] {
    static ZEROS: OnceLock<[B256; TREE_DEPTH + 1]> = OnceLock::new();
    ZEROS.get_or_init(|| {
        let mut z = [B256::ZERO; TREE_DEPTH + 1];
        for k in 0..TREE_DEPTH {
            z[k + 1] = node_hash(&z[k], &z[k]);
        }
        z
    })
}

/// The `rs_merkle` hasher for our tree: keccak256 with the node prefix.
#[derive(Clone, Copy, Debug)]
pub struct PlasmaHasher;

impl rs_merkle::Hasher for PlasmaHasher {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> Self::Hash {
        keccak256(data).0
    }

    fn concat_and_hash(left: &Self::Hash, right: Option<&Self::Hash>) -> Self::Hash {
        // We pad the leaves to a power of two, so every real node has two children. rs_merkle
        // still adds one layer above a power-of-two tree (its depth is the bit length of the
        // leaf count) whose single node has no sibling: pass it through unchanged, which is
        // rs_merkle's own convention, so its root is our subtree root.
        match right {
            Some(right) => node_hash(&B256::from(*left), &B256::from(*right)).0,
            None => *left,
        }
    }
}

/// A block's tree over the leaves of its transactions.
#[derive(Clone)]
pub struct BlockTree {
    /// Tree over the leaves padded to `2^height` entries; `None` for an empty block.
    tree: Option<rs_merkle::MerkleTree<PlasmaHasher>>,
    height: usize,
    len: usize,
    root: B256,
}

impl core::fmt::Debug for BlockTree {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlockTree").field("len", &self.len).field("root", &self.root).finish()
    }
}

impl BlockTree {
    /// Builds the tree of leaves (spec: MERKLE-3). At most `MAX_TXS_PER_BLOCK` leaves.
    pub fn from_leaves(leaves: &[B256]) -> Result<Self, MerkleError> {
        let len = leaves.len();
        if len > MAX_TXS_PER_BLOCK {
            return Err(MerkleError::TooManyLeaves { count: len });
        }
        let zeros = zero_hashes();
        if len == 0 {
            return Ok(Self { tree: None, height: 0, len, root: zeros[TREE_DEPTH] });
        }
        let width = len.next_power_of_two();
        let height = width.trailing_zeros() as usize;
        let mut padded: Vec<[u8; 32]> = Vec::with_capacity(width);
        padded.extend(leaves.iter().map(|l| l.0));
        padded.resize(width, [0u8; 32]);
        let tree = rs_merkle::MerkleTree::<PlasmaHasher>::from_leaves(&padded);
        let mut root = B256::from(tree.root().unwrap_or_default());
        for zero in &zeros[height..TREE_DEPTH] {
            root = node_hash(&root, zero);
        }
        Ok(Self { tree: Some(tree), height, len, root })
    }

    /// Builds the tree of a block's encoded transactions.
    pub fn from_txs<T: AsRef<[u8]>>(txs: &[T]) -> Result<Self, MerkleError> {
        let leaves: Vec<B256> = txs.iter().map(|tx| leaf_hash(tx.as_ref())).collect();
        Self::from_leaves(&leaves)
    }

    /// The root committed on L1.
    pub const fn root(&self) -> B256 {
        self.root
    }

    /// Number of transactions.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the block is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The inclusion proof of the leaf at `index`: 16 siblings, bottom-up (spec: MERKLE-4).
    pub fn proof(&self, index: usize) -> Result<Proof, MerkleError> {
        let tree = match &self.tree {
            Some(tree) if index < self.len => tree,
            _ => return Err(MerkleError::IndexOutOfRange { index, len: self.len }),
        };
        let mut siblings = Vec::with_capacity(TREE_DEPTH);
        // For one leaf of a full tree, rs_merkle's proof is exactly the sibling on each level,
        // bottom-up.
        siblings.extend(tree.proof(&[index]).proof_hashes().iter().map(|h| B256::from(*h)));
        debug_assert_eq!(siblings.len(), self.height);
        siblings.extend_from_slice(&zero_hashes()[self.height..TREE_DEPTH]);
        Ok(Proof(siblings))
    }
}

/// An inclusion proof: the 16 siblings of a leaf, bottom-up (spec: MERKLE-4).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Proof(Vec<B256>);

impl Proof {
    /// Parses the 512-byte wire form (spec: MERKLE-4).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MerkleError> {
        if bytes.len() != PROOF_LEN {
            return Err(MerkleError::ProofLength { len: bytes.len() });
        }
        Ok(Self(bytes.chunks_exact(32).map(B256::from_slice).collect()))
    }

    /// The 512-byte wire form, as the contracts take it.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|h| h.0).collect()
    }

    /// The siblings, bottom-up.
    pub fn siblings(&self) -> &[B256] {
        &self.0
    }

    /// The root this proof gives for `leaf` at `index` (spec: MERKLE-5).
    pub fn compute_root(&self, leaf: B256, index: usize) -> Result<B256, MerkleError> {
        if index >= MAX_TXS_PER_BLOCK {
            return Err(MerkleError::IndexOutOfRange { index, len: MAX_TXS_PER_BLOCK });
        }
        let mut node = leaf;
        for (level, sibling) in self.0.iter().enumerate() {
            node = if (index >> level) & 1 == 1 {
                node_hash(sibling, &node)
            } else {
                node_hash(&node, sibling)
            };
        }
        Ok(node)
    }

    /// Whether `leaf` sits at `index` under `root` (spec: MERKLE-5).
    pub fn verify(&self, leaf: B256, index: usize, root: B256) -> bool {
        self.0.len() == TREE_DEPTH && self.compute_root(leaf, index) == Ok(root)
    }
}

/// The root of a deposit block: its one transaction at leaf 0 (spec: MERKLE-5).
pub fn deposit_block_root(tx_bytes: &[u8]) -> B256 {
    let zeros = zero_hashes();
    zeros[..TREE_DEPTH].iter().fold(leaf_hash(tx_bytes), |node, zero| node_hash(&node, zero))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<B256> {
        (0..n).map(|i| leaf_hash(&(i as u64).to_be_bytes())).collect()
    }

    proptest! {
        /// The leaf and hash read inside a signed transaction's encoding are those of the
        /// transaction encoded again, for every shape (0..=5 inputs and outputs, any count of
        /// signatures, any type byte, metadata), alone and many together (the lanes' Keccak
        /// eight at a time); a body that is not the layout has no message.
        #[test]
        fn leaf_messages_hash_as_the_encoded_transaction(
            shapes in prop::collection::vec(
                (0..=5u16, 0..=5u8, 0..=6usize, any::<u8>(), any::<[u8; 32]>(), any::<u64>()),
                1..40,
            ),
        ) {
            use crate::{Output, SignedTransaction, Transaction, UtxoPos};
            use alloy_primitives::{Address, Bytes, U256};
            let mut messages = Vec::new();
            let mut expected = Vec::new();
            for (n_in, n_out, n_sig, tx_type, metadata, seed) in shapes {
                let inputs: Vec<UtxoPos> = (0..n_in)
                    .map(|i| UtxoPos::new(1 + (seed >> 24), i, 0).unwrap())
                    .collect();
                let outputs = (0..n_out)
                    .map(|o| {
                        Output::new(
                            Address::repeat_byte(o + 1),
                            Address::repeat_byte(seed as u8),
                            U256::from(seed) << (8 * usize::from(o)),
                        )
                    })
                    .collect();
                let mut tx = Transaction::payment(&inputs, outputs, B256::from(metadata));
                tx.txType = tx_type;
                let sigs = (0..n_sig).map(|s| Bytes::from(vec![s as u8 ^ tx_type; 65])).collect();
                let bytes = SignedTransaction::new(tx.clone(), sigs).encode();
                let message = leaf_message(&bytes).unwrap();
                let want = (leaf_hash(&tx.encode()), tx.hash());
                prop_assert_eq!(leaves_and_hashes(&[&message]), vec![want]);
                messages.push(message);
                expected.push(want);
            }
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(leaves_and_hashes(&refs), expected);
            prop_assert_eq!(leaf_message(&[]), None);
            prop_assert_eq!(leaf_message(&[0u8; 96]), None);
        }
    }

    /// The root alone, levels hashed eight pairs at a time: the tree's root for every size
    /// around the powers of two, the empty block and the full one, and the size limit.
    #[test]
    fn root_of_leaves_is_the_trees_root() {
        let mut sizes: Vec<usize> = (0..=40).collect();
        for k in 6..=16 {
            sizes.extend([(1 << k) - 1, 1 << k, (1 << k) + 1]);
        }
        for n in sizes.into_iter().filter(|n| *n <= MAX_TXS_PER_BLOCK) {
            let l = leaves(n);
            assert_eq!(
                root_of_leaves(&l).unwrap(),
                BlockTree::from_leaves(&l).unwrap().root(),
                "{n}"
            );
        }
        assert_eq!(
            root_of_leaves(&leaves(MAX_TXS_PER_BLOCK)).unwrap(),
            naive_root(&leaves(MAX_TXS_PER_BLOCK))
        );
        assert!(matches!(
            root_of_leaves(&leaves(MAX_TXS_PER_BLOCK + 1)),
            Err(MerkleError::TooManyLeaves { .. })
        ));
        let l = leaves(37);
        let pairs: Vec<B256> = l.chunks_exact(2).map(|p| node_hash(&p[0], &p[1])).collect();
        assert_eq!(parent_level(&l), pairs, "an odd last node is left out");
    }

    /// The tree by definition: 65,536 leaves, level by level. Slow, so used on few sizes.
    fn naive_root(leaves: &[B256]) -> B256 {
        let mut level: Vec<B256> = leaves.to_vec();
        level.resize(MAX_TXS_PER_BLOCK, B256::ZERO);
        while level.len() > 1 {
            level = level.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
        }
        level[0]
    }

    #[test]
    fn root_equals_the_full_depth_definition() {
        for n in [0, 1, 2, 3, 100] {
            assert_eq!(
                BlockTree::from_leaves(&leaves(n)).unwrap().root(),
                naive_root(&leaves(n)),
                "n = {n}"
            );
        }
    }

    #[test]
    fn deposit_root_is_a_one_leaf_tree() {
        let tx = b"deposit";
        assert_eq!(deposit_block_root(tx), BlockTree::from_txs(&[tx]).unwrap().root());
    }

    #[test]
    fn leaves_and_nodes_are_domain_separated() {
        // A node's 64-byte preimage presented as a "transaction" gives a different hash.
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let mut concat = a.to_vec();
        concat.extend_from_slice(b.as_slice());
        assert_ne!(leaf_hash(&concat), node_hash(&a, &b));
    }

    #[test]
    fn rejects_bad_proofs() {
        let tree = BlockTree::from_leaves(&leaves(3)).unwrap();
        assert!(matches!(tree.proof(3), Err(MerkleError::IndexOutOfRange { index: 3, len: 3 })));
        assert_eq!(Proof::from_bytes(&[0; 511]), Err(MerkleError::ProofLength { len: 511 }));
        let short = Proof(tree.proof(0).unwrap().siblings()[..15].to_vec());
        assert!(!short.verify(leaves(3)[0], 0, tree.root()));
        assert!(BlockTree::from_leaves(&vec![B256::ZERO; MAX_TXS_PER_BLOCK + 1]).is_err());
    }

    #[test]
    fn full_block_proofs_verify() {
        let leaves = leaves(MAX_TXS_PER_BLOCK);
        let tree = BlockTree::from_leaves(&leaves).unwrap();
        for index in [0, 1, 12_345, MAX_TXS_PER_BLOCK - 1] {
            let proof = tree.proof(index).unwrap();
            assert!(proof.verify(leaves[index], index, tree.root()));
        }
    }

    proptest! {
        #[test]
        fn every_proof_verifies_and_no_tampered_one_does(
            n in 1usize..300,
            pick in any::<prop::sample::Index>(),
            flip_level in 0usize..TREE_DEPTH,
            flip_byte in 0usize..32,
        ) {
            let leaves = leaves(n);
            let tree = BlockTree::from_leaves(&leaves).unwrap();
            let index = pick.index(n);
            let proof = tree.proof(index).unwrap();
            prop_assert!(proof.verify(leaves[index], index, tree.root()));
            let bytes = proof.to_bytes();
            prop_assert_eq!(&Proof::from_bytes(&bytes).unwrap(), &proof);

            // Tampered sibling.
            let mut tampered = bytes;
            tampered[flip_level * 32 + flip_byte] ^= 1;
            prop_assert!(!Proof::from_bytes(&tampered).unwrap().verify(leaves[index], index, tree.root()));
            // Wrong index.
            let other = (index + 1) % MAX_TXS_PER_BLOCK;
            prop_assert!(!proof.verify(leaves[index], other, tree.root()));
            // Wrong leaf.
            prop_assert!(!proof.verify(leaf_hash(b"forged"), index, tree.root()));
        }
    }
}
