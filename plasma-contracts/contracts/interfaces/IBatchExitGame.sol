// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title IBatchExitGame
/// @notice What the standard exit game asks of the batch exit game (spec: CHAL-10).
interface IBatchExitGame {
    /// @notice One claim of a batch, with its proof in the batch's claim tree (spec: EXIT-12).
    struct ClaimRef {
        uint256 batchId;
        uint256 index;
        address owner;
        uint64 utxoPos;
        uint96 amount;
        bytes32[] proof;
    }

    /// @notice Whether `c` is a claim of a started batch (active or processed), neither struck, demanded
    /// nor paid, and its proof verifies against the batch's root.
    function isLiveClaim(ClaimRef calldata c) external view returns (bool);

    /// @notice The token of batch `batchId` (zero if there is none).
    function batchToken(uint256 batchId) external view returns (address);
}
