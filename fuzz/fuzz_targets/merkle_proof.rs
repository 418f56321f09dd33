//! Merkle proofs: verifying arbitrary (leaf, index, proof, root) never panics; a proof from a
//! real tree of fuzzer-chosen leaves verifies, and flipping any one of its bits makes it fail.
#![no_main]

use alloy_primitives::B256;
use libfuzzer_sys::fuzz_target;
use plasma_spec::{BlockTree, Proof, leaf_hash};

fuzz_target!(|data: &[u8]| {
    // Arbitrary inputs to the verifier.
    if data.len() >= 66 {
        let leaf = B256::from_slice(&data[..32]);
        let root = B256::from_slice(&data[32..64]);
        let index = u16::from_be_bytes([data[64], data[65]]) as usize;
        if let Ok(proof) = Proof::from_bytes(&data[66..]) {
            let _ = proof.verify(leaf, index, root);
        }
    }
    // A real tree: leaves are 8-byte chunks of the input.
    let leaves: Vec<B256> = data.chunks(8).take(300).map(leaf_hash).collect();
    if leaves.is_empty() {
        return;
    }
    let tree = BlockTree::from_leaves(&leaves).expect("at most 300 leaves fit");
    let index = data[0] as usize % leaves.len();
    let proof = tree.proof(index).expect("index in range");
    assert!(proof.verify(leaves[index], index, tree.root()));
    let mut bytes = proof.to_bytes();
    let bit = data[data.len() - 1] as usize % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
    let tampered = Proof::from_bytes(&bytes).expect("same length");
    assert!(!tampered.verify(leaves[index], index, tree.root()), "a tampered proof verified");
});
