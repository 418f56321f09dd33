// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title IExitGame
/// @notice What the framework asks of an exit game when one of its exits reaches the head of a
/// queue (spec: EXIT-5, EXIT-11).
interface IExitGame {
    /// @notice Settles exit `exitId` of `token`: pays what the rules allow through the framework's
    /// credit functions, or does nothing if the exit was challenged or already settled.
    /// @dev Only the framework calls this, from `processExits`, after popping the exit.
    /// @param exitId The exit's id within this game.
    /// @param token The queue the exit was in.
    /// @param processor Who called `processExits`; receives the processing bounty.
    function processExit(uint256 exitId, address token, address processor) external;
}
