// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaTx} from "./PlasmaTx.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title PlasmaEip712
/// @notice EIP-712 struct hashes and signer recovery for transactions and exit authorisations
/// (spec: SIG, EXIT-9).
/// @dev The domain separator comes from the caller (the framework's OpenZeppelin `EIP712`
/// base, domain `Plasma`/`1`/chain id/framework address). Recovery goes through OpenZeppelin's
/// `ECDSA.tryRecover`, which refuses high-s and any `v` but 27/28 (spec: SIG-3).
library PlasmaEip712 {
    bytes32 internal constant OUTPUT_TYPEHASH = keccak256("Output(address owner,address token,uint256 amount)");
    bytes32 internal constant TRANSACTION_TYPEHASH = keccak256(
        "Transaction(uint8 txType,uint256[] inputs,Output[] outputs,bytes32 metadata)Output(address owner,address token,uint256 amount)"
    );
    bytes32 internal constant EXIT_AUTHORIZATION_TYPEHASH =
        keccak256("ExitAuthorization(address exitor,uint256 deadline,uint256 nonce)");

    /// @notice The signature does not recover to anyone (spec: SIG-3).
    /// @param index Which signature.
    error PlasmaSignatureInvalid(uint256 index);

    /// @notice `hashStruct(transaction)` (spec: SIG-1).
    function hashTx(PlasmaTx.Transaction memory transaction) internal pure returns (bytes32) {
        uint256 nOut = transaction.outputs.length;
        bytes32[] memory outputHashes = new bytes32[](nOut);
        for (uint256 i = 0; i < nOut; ++i) {
            PlasmaTx.Output memory o = transaction.outputs[i];
            outputHashes[i] = keccak256(abi.encode(OUTPUT_TYPEHASH, o.owner, o.token, o.amount));
        }
        return keccak256(
            abi.encode(
                TRANSACTION_TYPEHASH,
                transaction.txType,
                keccak256(abi.encodePacked(transaction.inputs)),
                keccak256(abi.encodePacked(outputHashes)),
                transaction.metadata
            )
        );
    }

    /// @notice `hashStruct(ExitAuthorization)` (spec: EXIT-9).
    function hashExitAuthorization(address exitor, uint256 deadline, uint256 nonce) internal pure returns (bytes32) {
        return keccak256(abi.encode(EXIT_AUTHORIZATION_TYPEHASH, exitor, deadline, nonce));
    }

    /// @notice `keccak256(0x1901 ‖ domainSeparator ‖ structHash)`.
    function digest(bytes32 domainSeparator, bytes32 structHash) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), domainSeparator)
            mstore(add(ptr, 0x22), structHash)
            result := keccak256(ptr, 0x42)
        }
    }

    /// @notice Who signed `hash`; reverts on a malformed, high-s or wrong-`v` signature.
    /// @param index Reported in the error so callers see which signature failed.
    function recover(bytes32 hash, bytes memory signature, uint256 index) internal pure returns (address) {
        if (signature.length != 65) revert PlasmaSignatureInvalid(index);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        if (err != ECDSA.RecoverError.NoError) revert PlasmaSignatureInvalid(index);
        return signer;
    }
}
