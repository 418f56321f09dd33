// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title Merkle
/// @notice Inclusion proofs in the fixed-depth, domain-separated block tree (spec: MERKLE).
/// @dev Leaves are `keccak256(0x00 ‖ txBytes)`, nodes `keccak256(0x01 ‖ left ‖ right)`: a node
/// can never pass for a leaf (no second-preimage trick). Depth is fixed at 16, so every proof is
/// exactly 512 bytes and the leaf index alone fixes the path.
library Merkle {
    uint256 internal constant DEPTH = 16;
    uint256 internal constant PROOF_LENGTH = 32 * DEPTH;
    uint256 internal constant MAX_LEAVES = 65_536;

    /// @notice A proof is exactly 512 bytes (spec: MERKLE-4).
    /// @param length The length received.
    error MerkleProofLength(uint256 length);

    /// @notice The leaf of an encoded transaction (spec: MERKLE-1).
    function leaf(bytes memory txBytes) internal pure returns (bytes32 result) {
        // keccak256(abi.encodePacked(bytes1(0x00), txBytes)) without copying txBytes: hash the
        // word before the data with its last byte cleared, which stays in place.
        assembly ("memory-safe") {
            let len := mload(txBytes)
            let start := add(txBytes, 31) // the byte just before the data
            let saved := mload(txBytes)
            mstore8(start, 0)
            result := keccak256(start, add(len, 1))
            mstore(txBytes, saved)
        }
    }

    /// @notice An inner node (spec: MERKLE-2).
    function node(bytes32 left, bytes32 right) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 1)
            mstore(add(ptr, 1), left)
            mstore(add(ptr, 33), right)
            result := keccak256(ptr, 65)
        }
    }

    /// @notice The root `proof` gives for `leafHash` at `index` (spec: MERKLE-5).
    /// @param proof 16 sibling hashes, bottom-up, concatenated.
    function computeRoot(bytes32 leafHash, uint256 index, bytes memory proof) internal pure returns (bytes32) {
        if (proof.length != PROOF_LENGTH) revert MerkleProofLength(proof.length);
        bytes32 current = leafHash;
        for (uint256 level = 0; level < DEPTH; ++level) {
            bytes32 sibling;
            assembly ("memory-safe") {
                sibling := mload(add(add(proof, 32), mul(level, 32)))
            }
            current = (index >> level) & 1 == 1 ? node(sibling, current) : node(current, sibling);
        }
        return current;
    }

    /// @notice Whether `leafHash` sits at `index` under `root` (spec: MERKLE-5). Indexes beyond the
    /// tree never verify.
    function verify(bytes32 leafHash, uint256 index, bytes memory proof, bytes32 root) internal pure returns (bool) {
        return index < MAX_LEAVES && computeRoot(leafHash, index, proof) == root;
    }

    /// @notice The root of a deposit block: its one transaction at leaf 0 (spec: MERKLE-5).
    /// @dev The empty-subtree hashes Z[0..15] are constants (Z[0] = 0, Z[k+1] = node(Z[k], Z[k])),
    /// checked against the shared vectors.
    function depositRoot(bytes memory txBytes) internal pure returns (bytes32 current) {
        current = leaf(txBytes);
        bytes32 zero = bytes32(0);
        for (uint256 level = 0; level < DEPTH; ++level) {
            current = node(current, zero);
            zero = node(zero, zero);
        }
    }
}
