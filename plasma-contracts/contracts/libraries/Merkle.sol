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
    /// @dev The sibling at level k is the empty-subtree hash Z[k] (Z[0] = 0, Z[k+1] = node(Z[k],
    /// Z[k])), written here as constants (issue 19: computing them costs 16 more keccaks per
    /// deposit) and checked against the shared vectors (`test_DepositRootZeroHashesMatchVectors`).
    /// Hashes in scratch space (0x00..0x41 spans the free-memory pointer's word at 0x40, which is
    /// restored before returning).
    function depositRoot(bytes memory txBytes) internal pure returns (bytes32 current) {
        current = leaf(txBytes);
        assembly ("memory-safe") {
            let fmp := mload(0x40)
            mstore8(0, 1)
            mstore(1, current)
            mstore(33, 0)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0xc07a1e8b7e0057673fdc2affe190d8a960c5fe615663f27b7ce84f3d93ef92a6)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0xfd47517474a597637d54038a0663d1d03b931b238de06b73e3c12cf443de6e8d)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0x47a8f5e8fa70be2760378067c9c6d410dd96be07820b4230c11254c7ff10c298)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0xaed19ca4bfe2365b1b33fa94744cd0c6a2d550506c7e7efc073879cb79459b9a)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0x6e6998a7da8b2db5c98eb853099d8caec63797b5283b7dac37b2ffb630a86e24)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0x181c19735bff23b55bc295fc0b60c1c5c7288209b261a08e26924598ce72404e)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0xecb408b290ab2920e63611ef1e8ca964aebb66ea5739f19d24b92094f28e44f8)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0x294bf9785e1391d24d52abf915636a73bdaa12ed29e85e21dae14c09d0f2e34b)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0xcf7e37a934683edec795e3529db8fac0863519c2419ba24c0f6e4efa86ec7d1a)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0x72ce48cca9bc743fed84a0bdc00ad2c5b540323849c982f671a9bd8d52d15719)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0x0e2d7d0b695fdcd9dc6c54313ae652218375c3358d34ade3dcc49dda05c0db10)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0xa0a786a71d24007a23f5ce21e6997a305baeefaf348937a8b74974cb039c10c8)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0x0628cb6496193e6a55ece4a8240384e142273eeb9cc4bdae680f971fd1929f10)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0x2c3b833a3ca9d6f02055871655dd18f003a279f84a334bf6050899a9bc1cedc3)
            current := keccak256(0, 65)
            mstore(1, current)
            mstore(33, 0x1a6c5e9fd899efca64c2aca6243434b423d791f92a839c0c92ce0a5a51a07234)
            current := keccak256(0, 65)
            mstore(0x40, fmp)
        }
    }
}
