// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title IPlasmaFramework
/// @notice What the exit games use of the framework: block roots, exit queues, finalized outputs
/// and the vault's credit book.
interface IPlasmaFramework {
    /// @notice `keccak256(abi.encode(root, timestamp))` of a committed child or deposit block; zero if
    /// the block is unknown (see BlockCommitment).
    function blockCommitments(uint256 blknum) external view returns (bytes32);

    /// @notice The standard exit game, which keeps the owners' exit-authorization nonces (EXIT-9).
    function standardExitGame() external view returns (address);

    /// @notice The batch exit game (spec: EXIT-12), the only caller of `reserve`, `release` and
    /// `creditReserved`.
    function batchExitGame() external view returns (address);

    /// @notice The challenge period `p` of the spec, in seconds (spec: EXIT-2).
    function minExitPeriod() external view returns (uint256);

    /// @notice The EIP-712 domain separator of the plasma chain (spec: SIG-1).
    function domainSeparator() external view returns (bytes32);

    /// @notice Whether an output was paid out or spent by a processed exit (spec: OUT-2).
    function isOutputFinalized(bytes32 outputId) external view returns (bool);

    /// @notice Puts an exit into `token`'s queue (exit games only).
    /// @param flaggedNonce Whether the game needs a nonce-to-exit-id mapping (in-flight exits); a
    /// standard exit's id is its position, so it needs none.
    /// @return priority The exit's queue key (spec: EXIT-3).
    function enqueue(address token, uint64 exitableAt, uint256 position, uint256 exitId, bool flaggedNonce)
        external
        returns (uint256 priority);

    /// @notice Marks outputs finalized (exit games only).
    /// @return alreadyFinalized Bit i set if `outputIds[i]` was finalized before this call.
    function finalizeOutputs(bytes32[] calldata outputIds) external returns (uint256 alreadyFinalized);

    /// @notice Credits `amount` of deposited `token` to `account` (exit games only); a part the vault
    /// cannot cover becomes a debt (spec: EXIT-16).
    function credit(address token, address account, uint256 amount) external;

    /// @notice Settles a standard exit its game has marked settled (standard game only, from its
    /// `processExit`; spec: EXIT-5, OUT-2), with its bond as the ETH sent. If the output was finalized
    /// by another game first, the exit is void: the whole bond goes back to `bondOwner`
    /// (`StandardExitVoided`). Otherwise credits `amount` of `token` to `owner` (capped like `credit`)
    /// and the bond minus `bounty` to `bondOwner` (`StandardExitPaid`); `bounty` goes to the caller of
    /// the running `processExits`, credited at its end (`ExitsProcessed`).
    function settleStandardExit(
        bytes32 outputId,
        address token,
        address owner,
        uint256 amount,
        address bondOwner,
        uint256 bounty
    ) external payable;

    /// @notice Credits the ETH sent along (bonds) to up to three accounts (exit games only).
    function creditBonds(address a, uint256 amountA, address b, uint256 amountB) external payable;

    /// @notice Sets aside up to `amount` of deposited `token` for processed batch `batchId` (batch game
    /// only; spec: EXIT-14): like `credit`, capped at what is left, but to no account yet; the part not
    /// set aside is the batch's debt (spec: EXIT-16), repaid later through `reserveRepaid`.
    /// @return reserved What was set aside (`amount`, or less when the vault is short).
    function reserve(address token, uint256 amount, uint256 batchId) external returns (uint256 reserved);

    /// @notice Gives back `amount` of an earlier reserve (batch game only; spec: EXIT-15): to the vault,
    /// or to the debt pool while debts are outstanding (spec: EXIT-16).
    function release(address token, uint256 amount) external;

    /// @notice Credits `amount` of an earlier reserve to `account` (batch game only; spec: EXIT-15).
    function creditReserved(address token, address account, uint256 amount) external;
}
