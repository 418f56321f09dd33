// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title BlockCommitment
/// @notice What the framework stores per block: `keccak256(abi.encode(root, timestamp))` (spec:
/// LEDGER-8).
/// @dev One storage slot per block instead of two saves about 22,000 gas on every block submission
/// and every deposit, the chain's most frequent L1 transactions. The price is that whoever proves
/// inclusion also names the block's L1 timestamp, which every client has from the block's event
/// (and the operator serves with its exit data); a wrong timestamp simply fails the check.
library BlockCommitment {
    /// @notice The commitment to a block with `root` committed at `committedAt`.
    function commit(bytes32 root, uint64 committedAt) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            mstore(0x00, root)
            mstore(0x20, committedAt)
            result := keccak256(0x00, 0x40)
        }
    }
}
