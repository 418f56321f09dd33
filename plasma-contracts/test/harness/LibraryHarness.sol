// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {ExitPriority} from "../../contracts/libraries/ExitPriority.sol";
import {Merkle} from "../../contracts/libraries/Merkle.sol";
import {PlasmaEip712} from "../../contracts/libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../../contracts/libraries/UtxoPosLib.sol";

/// @title LibraryHarness
/// @notice Exposes the internal library functions as external calls so tests can expect their
/// reverts and measure their gas.
contract LibraryHarness {
    function decode(bytes memory txBytes) external pure returns (PlasmaTx.Transaction memory) {
        return PlasmaTx.decode(txBytes);
    }

    function decodeValid(bytes memory txBytes) external pure returns (PlasmaTx.Transaction memory) {
        return PlasmaTx.decodeValid(txBytes);
    }

    function decodeDeposit(bytes calldata txBytes) external pure returns (bool ok, PlasmaTx.Output memory out) {
        return PlasmaTx.decodeDeposit(txBytes);
    }

    function structHash(bytes memory txBytes) external pure returns (bytes32) {
        return PlasmaEip712.hashTx(PlasmaTx.decode(txBytes));
    }

    function digest(bytes32 domainSeparator, bytes32 structHash_) external pure returns (bytes32) {
        return PlasmaEip712.digest(domainSeparator, structHash_);
    }

    function exitAuthorizationHash(address exitor, uint256 deadline, uint256 nonce) external pure returns (bytes32) {
        return PlasmaEip712.hashExitAuthorization(exitor, deadline, nonce);
    }

    function recover(bytes32 hash, bytes memory signature) external pure returns (address) {
        return PlasmaEip712.recover(hash, signature, 0);
    }

    function leaf(bytes memory txBytes) external pure returns (bytes32) {
        return Merkle.leaf(txBytes);
    }

    function node(bytes32 left, bytes32 right) external pure returns (bytes32) {
        return Merkle.node(left, right);
    }

    function computeRoot(bytes32 leafHash, uint256 index, bytes memory proof) external pure returns (bytes32) {
        return Merkle.computeRoot(leafHash, index, proof);
    }

    function verify(bytes32 leafHash, uint256 index, bytes memory proof, bytes32 root) external pure returns (bool) {
        return Merkle.verify(leafHash, index, proof, root);
    }

    function depositRoot(bytes memory txBytes) external pure returns (bytes32) {
        return Merkle.depositRoot(txBytes);
    }

    function isValidPos(uint256 utxoPos) external pure returns (bool) {
        return UtxoPosLib.isValid(utxoPos);
    }

    function outputId(bytes32 txHash, bool hasInputs, uint256 outputIndex, uint256 utxoPos)
        external
        pure
        returns (bytes32)
    {
        return PlasmaTx.outputId(txHash, hasInputs, outputIndex, utxoPos);
    }

    function priority(uint64 exitableAt, uint256 position, uint64 nonce) external pure returns (uint256) {
        return ExitPriority.pack(exitableAt, position, nonce);
    }
}
