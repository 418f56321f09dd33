// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title ExitPriority
/// @notice Exit queue keys (spec: EXIT-3): `exitableAt << 192 | position << 64 | nonce`.
/// @dev Ordering by the packed integer orders by exitable time, then by the age of the output
/// (its position), then by arrival; the nonce makes every key unique within a queue.
library ExitPriority {
    /// @notice Packs a priority. `position` must be below 2^128: every valid position is (blknum < 2^64
    /// times 1e9 is below 2^94), so the truncation below never drops a bit.
    function pack(uint64 exitableAt_, uint256 position_, uint64 nonce_) internal pure returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return (uint256(exitableAt_) << 192) | (uint256(uint128(position_)) << 64) | uint256(nonce_);
    }

    /// @notice The exitable time of a priority.
    function exitableAt(uint256 priority) internal pure returns (uint64) {
        // Exact: the top 64 bits.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint64(priority >> 192);
    }

    /// @notice The position of a priority.
    function position(uint256 priority) internal pure returns (uint256) {
        // Bits 64..191, by design.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint128(priority >> 64);
    }

    /// @notice The nonce of a priority.
    function nonce(uint256 priority) internal pure returns (uint64) {
        // The low 64 bits, by design.
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint64(priority);
    }
}
