// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title IBatchExitGame
/// @notice What the standard exit game (spec: CHAL-10) and the framework (spec: EXIT-16) ask of the
/// batch exit game.
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

    /// @notice The token of batch `batchId` and when it started (zeros if there is none; spec: CHAL-10).
    function batchStart(uint256 batchId) external view returns (address token, uint64 startedAt);

    /// @notice Tops up the reserve of processed batch `batchId` with `amount` repaid on its debt
    /// (framework only; spec: EXIT-16). The reserve never exceeds what its live claims still need:
    /// the excess is handed back.
    /// @return excess What the batch did not need (the framework keeps it in the debt pool).
    function reserveRepaid(uint256 batchId, uint256 amount) external returns (uint256 excess);
}
