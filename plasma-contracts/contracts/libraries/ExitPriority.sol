// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title ExitPriority
/// @notice Exit queue keys (spec: EXIT-3): `exitableAt << 192 | position << 64 | nonce`.
/// @dev Ordering by the packed integer orders by exitable time, then by the age of the output
/// (its position), then by arrival; the nonce makes every key unique within a queue.
library ExitPriority {
    /// @notice Packs a priority. `position` must be below 2^128 (true of every valid position).
    function pack(uint64 exitableAt, uint256 position, uint64 nonce) internal pure returns (uint256) {
        return (uint256(exitableAt) << 192) | (uint256(uint128(position)) << 64) | uint256(nonce);
    }

    /// @notice The exitable time of a priority.
    function exitableAt(uint256 priority) internal pure returns (uint64) {
        return uint64(priority >> 192);
    }

    /// @notice The position of a priority.
    function position(uint256 priority) internal pure returns (uint256) {
        return uint128(priority >> 64);
    }

    /// @notice The nonce of a priority.
    function nonce(uint256 priority) internal pure returns (uint64) {
        return uint64(priority);
    }
}
