// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title UtxoPosLib
/// @notice Packing and validation of UTXO positions (spec: POS).
/// @dev `utxoPos = blknum * 1e9 + txIndex * 1e4 + outputIndex`. Decimal packing keeps positions
/// readable in logs and explorers; the bounds below make every valid value unique.
library UtxoPosLib {
    uint256 internal constant BLOCK_OFFSET = 1_000_000_000;
    uint256 internal constant TX_OFFSET = 10_000;
    uint256 internal constant MAX_OUTPUTS = 5;
    uint256 internal constant MAX_TXS_PER_BLOCK = 65_536;
    uint256 internal constant CHILD_BLOCK_INTERVAL = 1000;

    /// @notice The position is not exactly one valid UTXO position (spec: POS-2).
    /// @param utxoPos The offending value.
    error UtxoPosInvalid(uint256 utxoPos);

    /// @notice Whether `utxoPos` is a valid position (spec: POS-2).
    function isValid(uint256 utxoPos) internal pure returns (bool) {
        uint256 blockNumber = utxoPos / BLOCK_OFFSET;
        uint256 rest = utxoPos % BLOCK_OFFSET;
        return blockNumber != 0 && blockNumber <= type(uint64).max && rest / TX_OFFSET < MAX_TXS_PER_BLOCK
            && rest % TX_OFFSET < MAX_OUTPUTS;
    }

    /// @notice Reverts unless `utxoPos` is valid.
    function check(uint256 utxoPos) internal pure {
        if (!isValid(utxoPos)) revert UtxoPosInvalid(utxoPos);
    }

    /// @notice Packs a position (spec: POS-1). Callers pass in-range parts.
    function pack(uint256 blockNumber, uint256 index, uint256 oindex) internal pure returns (uint256) {
        return blockNumber * BLOCK_OFFSET + index * TX_OFFSET + oindex;
    }

    /// @notice The block number of a position.
    function blknum(uint256 utxoPos) internal pure returns (uint256) {
        return utxoPos / BLOCK_OFFSET;
    }

    /// @notice The transaction index of a position (its Merkle leaf index).
    function txIndex(uint256 utxoPos) internal pure returns (uint256) {
        return (utxoPos % BLOCK_OFFSET) / TX_OFFSET;
    }

    /// @notice The output index of a position.
    function outputIndex(uint256 utxoPos) internal pure returns (uint256) {
        return utxoPos % TX_OFFSET;
    }

    /// @notice The transaction position, `blknum * 1e9 + txIndex * 1e4` (spec: POS-1).
    function txPos(uint256 utxoPos) internal pure returns (uint256) {
        return utxoPos - utxoPos % TX_OFFSET;
    }

    /// @notice Whether a block number is a deposit block's (spec: POS-3).
    function isDepositBlock(uint256 blockNumber) internal pure returns (bool) {
        return blockNumber % CHILD_BLOCK_INTERVAL != 0;
    }
}
