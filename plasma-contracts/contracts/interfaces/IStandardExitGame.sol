// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title IStandardExitGame
/// @notice What the batch exit game reads of the standard exit game: exits by position (CHAL-8) and
/// the owners' authorization nonces (EXIT-9).
interface IStandardExitGame {
    /// @notice The exit of the output at `utxoPos` (status 0 none, 1 active, 2 challenged, 3 settled);
    /// `startedAt` is the L1 time it started (cleared with the token once settled; spec: CHAL-8, CHAL-10).
    function exits(uint256 utxoPos)
        external
        view
        returns (
            address owner,
            uint88 bond,
            uint8 status,
            address token,
            uint64 startedAt,
            uint256 amount,
            bytes32 outputId,
            address bondOwner
        );

    /// @notice Whether a standard exit of `outputId` was settled, which finalizes the output (spec:
    /// OUT-2); the framework's `isOutputFinalized` includes it.
    function isOutputSettled(bytes32 outputId) external view returns (bool);

    /// @notice The owner's current exit-authorization nonce (spec: EXIT-9).
    function authorizationNonce(address owner) external view returns (uint256);
}
