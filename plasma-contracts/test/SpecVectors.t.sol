// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {Merkle} from "../contracts/libraries/Merkle.sol";
import {PlasmaEip712} from "../contracts/libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../contracts/libraries/UtxoPosLib.sol";
import {LibraryHarness} from "./harness/LibraryHarness.sol";
import {Test} from "./utils/Test.sol";

/// @notice The Solidity libraries against the shared vectors in spec/vectors, written by the Rust
/// generator (`cargo run -p plasma-spec --bin gen-vectors`). If either side drifts, these fail.
contract SpecVectorsTest is Test {
    LibraryHarness internal lib;

    function setUp() public {
        lib = new LibraryHarness();
    }

    function _vectors(string memory name) internal view returns (string memory) {
        return readProjectFile(string.concat("../spec/vectors/", name, ".json"));
    }

    function _key(string memory array, uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(array, "[", vm.toString(i), "]", field);
    }

    function _count(string memory json, string memory array) internal view returns (uint256 n) {
        while (vm.keyExistsJson(json, _key(array, n, ""))) ++n;
    }

    /// @dev The Solidity error a Rust decode or check error maps to (spec/01-transactions.md).
    function _txError(string memory rustError) internal pure returns (bytes4) {
        bytes32 e = keccak256(bytes(rustError));
        if (e == keccak256("TooLarge")) return PlasmaTx.PlasmaTxTooLarge.selector;
        if (e == keccak256("Malformed") || e == keccak256("NonCanonical")) {
            return PlasmaTx.PlasmaTxNonCanonical.selector;
        }
        if (e == keccak256("UnknownTxType")) return PlasmaTx.PlasmaTxUnknownType.selector;
        if (e == keccak256("WrongInputCount")) return PlasmaTx.PlasmaTxWrongInputCount.selector;
        if (e == keccak256("WrongOutputCount")) return PlasmaTx.PlasmaTxWrongOutputCount.selector;
        if (e == keccak256("DuplicateInput")) return PlasmaTx.PlasmaTxDuplicateInput.selector;
        if (e == keccak256("InvalidPosition")) return PlasmaTx.PlasmaTxInvalidPosition.selector;
        if (e == keccak256("ZeroAmount")) return PlasmaTx.PlasmaTxZeroAmount.selector;
        if (e == keccak256("ZeroOwner")) return PlasmaTx.PlasmaTxZeroOwner.selector;
        if (e == keccak256("AmountOverflow")) return PlasmaTx.PlasmaTxAmountOverflow.selector;
        revert(string.concat("no Solidity mapping for Rust error ", rustError));
    }

    function test_TransactionsMatchRust() public view {
        string memory json = _vectors("transactions");
        bytes32 separator = vm.parseJsonBytes32(json, ".domain.separator");
        assertEq(PlasmaEip712.TRANSACTION_TYPEHASH, vm.parseJsonBytes32(json, ".typeHashes.Transaction"));
        assertEq(PlasmaEip712.OUTPUT_TYPEHASH, vm.parseJsonBytes32(json, ".typeHashes.Output"));
        assertEq(PlasmaEip712.EXIT_AUTHORIZATION_TYPEHASH, vm.parseJsonBytes32(json, ".typeHashes.ExitAuthorization"));
        assertEq(PlasmaTx.MAX_TX_BYTES, vm.parseJsonUint(json, ".maxTxBytes"));

        uint256 n = _count(json, ".cases");
        assertGt(n, 0);
        for (uint256 i = 0; i < n; ++i) {
            bytes memory txBytes = vm.parseJsonBytes(json, _key(".cases", i, ".txBytes"));
            PlasmaTx.Transaction memory t = lib.decodeValid(txBytes);
            assertEq(abi.encode(t), txBytes, "re-encoding");
            assertEq(PlasmaTx.hash(txBytes), vm.parseJsonBytes32(json, _key(".cases", i, ".txHash")), "txHash");
            bytes32 structHash = lib.structHash(txBytes);
            assertEq(structHash, vm.parseJsonBytes32(json, _key(".cases", i, ".structHash")), "structHash");
            bytes32 digest = lib.digest(separator, structHash);
            assertEq(digest, vm.parseJsonBytes32(json, _key(".cases", i, ".digest")), "digest");
            assertEq(lib.leaf(txBytes), vm.parseJsonBytes32(json, _key(".cases", i, ".leaf")), "leaf");

            bytes[] memory sigs = vm.parseJsonBytesArray(json, _key(".cases", i, ".signatures"));
            address[] memory signers = abi.decode(vm.parseJson(json, _key(".cases", i, ".signers")), (address[]));
            assertEq(sigs.length, signers.length);
            for (uint256 s = 0; s < sigs.length; ++s) {
                assertEq(lib.recover(digest, sigs[s]), signers[s], "signer");
            }

            _checkOutputIds(json, i, PlasmaTx.hash(txBytes), t.inputs.length > 0);
        }
    }

    function _checkOutputIds(string memory json, uint256 i, bytes32 txHash, bool hasInputs) internal view {
        string memory ids = _key(".cases", i, ".outputIds");
        uint256 nIds = _count(json, ids);
        for (uint256 k = 0; k < nIds; ++k) {
            uint256 utxoPos = vm.parseJsonUint(json, _key(ids, k, ".utxoPos"));
            assertEq(
                lib.outputId(txHash, hasInputs, UtxoPosLib.outputIndex(utxoPos), utxoPos),
                vm.parseJsonBytes32(json, _key(ids, k, ".outputId")),
                "outputId"
            );
        }
    }

    function test_InvalidTransactionsFailWithTheMappedError() public {
        string memory json = _vectors("decoding");
        uint256 n = _count(json, ".invalid");
        assertGt(n, 0);
        for (uint256 i = 0; i < n; ++i) {
            bytes memory txBytes = vm.parseJsonBytes(json, _key(".invalid", i, ".txBytes"));
            lib.decode(txBytes); // Well-formed: decoding alone succeeds.
            vm.expectPartialRevert(_txError(vm.parseJsonString(json, _key(".invalid", i, ".error"))));
            lib.decodeValid(txBytes);
        }
    }

    function test_RejectedEncodingsFailToDecode() public {
        string memory json = _vectors("decoding");
        uint256 n = _count(json, ".rejected");
        assertGt(n, 0);
        for (uint256 i = 0; i < n; ++i) {
            bytes memory data = vm.parseJsonBytes(json, _key(".rejected", i, ".bytes"));
            vm.expectPartialRevert(_txError(vm.parseJsonString(json, _key(".rejected", i, ".error"))));
            lib.decode(data);
        }
    }

    function test_SignaturesMatchRust() public {
        string memory json = _vectors("signatures");
        uint256 n = _count(json, ".cases");
        assertGt(n, 0);
        for (uint256 i = 0; i < n; ++i) {
            bytes32 digest = vm.parseJsonBytes32(json, _key(".cases", i, ".digest"));
            bytes memory signature = vm.parseJsonBytes(json, _key(".cases", i, ".signature"));
            // A valid case has `"error": null`, which forge reads back as the string "null".
            if (keccak256(bytes(vm.parseJsonString(json, _key(".cases", i, ".error")))) == keccak256("null")) {
                assertEq(lib.recover(digest, signature), vm.parseJsonAddress(json, _key(".cases", i, ".signer")));
            } else {
                // Every Rust rejection (high s, bad v, zero or out-of-range r, wrong length) is one
                // Solidity error: the signature recovers no one.
                vm.expectRevert(abi.encodeWithSelector(PlasmaEip712.PlasmaSignatureInvalid.selector, 0));
                lib.recover(digest, signature);
            }
        }
    }

    function test_ExitAuthorizationMatchesRust() public view {
        string memory json = _vectors("signatures");
        string memory tjson = _vectors("transactions");
        bytes32 structHash = lib.exitAuthorizationHash(
            vm.parseJsonAddress(json, ".exitAuthorization.exitor"),
            vm.parseJsonUint(json, ".exitAuthorization.deadline"),
            vm.parseJsonUint(json, ".exitAuthorization.nonce")
        );
        bytes32 digest = lib.digest(vm.parseJsonBytes32(tjson, ".domain.separator"), structHash);
        assertEq(digest, vm.parseJsonBytes32(json, ".exitAuthorization.digest"));
        assertEq(
            lib.recover(digest, vm.parseJsonBytes(json, ".exitAuthorization.signature")),
            vm.parseJsonAddress(json, ".exitAuthorization.owner")
        );
    }

    function test_MerkleTreesMatchRust() public view {
        string memory json = _vectors("merkle");
        bytes32[] memory zero = vm.parseJsonBytes32Array(json, ".zeroHashes");
        assertEq(zero.length, 17);
        assertEq(zero[0], bytes32(0));
        for (uint256 k = 0; k < 16; ++k) {
            assertEq(lib.node(zero[k], zero[k]), zero[k + 1], "zero hash");
        }
        uint256 n = _count(json, ".trees");
        assertGt(n, 0);
        for (uint256 i = 0; i < n; ++i) {
            bytes32 root = vm.parseJsonBytes32(json, _key(".trees", i, ".root"));
            bytes[] memory txs = vm.parseJsonBytesArray(json, _key(".trees", i, ".txs"));
            string memory proofs = _key(".trees", i, ".proofs");
            assertEq(txs.length, _count(json, proofs));
            if (txs.length == 0) assertEq(root, zero[16], "empty tree");
            if (txs.length == 1) assertEq(lib.depositRoot(txs[0]), root, "one-leaf tree");
            for (uint256 t = 0; t < txs.length; ++t) {
                bytes32 leafHash = lib.leaf(txs[t]);
                assertEq(leafHash, vm.parseJsonBytes32(json, _key(proofs, t, ".leaf")), "leaf");
                assertEq(vm.parseJsonUint(json, _key(proofs, t, ".index")), t, "index");
                bytes memory proof = vm.parseJsonBytes(json, _key(proofs, t, ".proof"));
                assertEq(lib.computeRoot(leafHash, t, proof), root, "proof verifies");
                assertFalse(lib.verify(leafHash, t + 65_536, proof, root), "index beyond tree");
            }
        }
    }

    function test_BadProofsDoNotVerify() public {
        string memory json = _vectors("merkle");
        bytes32 root = vm.parseJsonBytes32(json, ".badProofs.root");
        uint256 n = _count(json, ".badProofs.cases");
        assertGt(n, 0);
        for (uint256 i = 0; i < n; ++i) {
            bytes memory proof = vm.parseJsonBytes(json, _key(".badProofs.cases", i, ".proof"));
            bytes32 leafHash = vm.parseJsonBytes32(json, _key(".badProofs.cases", i, ".leaf"));
            uint256 index = vm.parseJsonUint(json, _key(".badProofs.cases", i, ".index"));
            if (proof.length != 512) {
                vm.expectRevert(abi.encodeWithSelector(Merkle.MerkleProofLength.selector, proof.length));
            }
            assertFalse(lib.verify(leafHash, index, proof, root));
        }
    }

    function test_PositionsMatchRust() public view {
        string memory json = _vectors("positions");
        uint256 n = _count(json, ".valid");
        for (uint256 i = 0; i < n; ++i) {
            uint256 pos = vm.parseJsonUint(json, _key(".valid", i, ".utxoPos"));
            assertTrue(lib.isValidPos(pos));
            assertEq(UtxoPosLib.blknum(pos), vm.parseJsonUint(json, _key(".valid", i, ".blknum")));
            assertEq(UtxoPosLib.txIndex(pos), vm.parseJsonUint(json, _key(".valid", i, ".txIndex")));
            assertEq(UtxoPosLib.outputIndex(pos), vm.parseJsonUint(json, _key(".valid", i, ".outputIndex")));
            assertEq(UtxoPosLib.txPos(pos), vm.parseJsonUint(json, _key(".valid", i, ".txPos")));
            assertEq(
                UtxoPosLib.isDepositBlock(UtxoPosLib.blknum(pos)),
                vm.parseJsonBool(json, _key(".valid", i, ".isDeposit"))
            );
        }
        n = _count(json, ".invalid");
        assertGt(n, 0);
        for (uint256 i = 0; i < n; ++i) {
            assertFalse(lib.isValidPos(vm.parseJsonUint(json, _key(".invalid", i, ".utxoPos"))));
        }
    }

    function test_PrioritiesAndOutputIdsMatchRust() public view {
        string memory json = _vectors("exit_game");
        uint256 n = _count(json, ".priorities");
        assertGt(n, 0);
        for (uint256 i = 0; i < n; ++i) {
            uint256 expected = vm.parseJsonUint(json, _key(".priorities", i, ".priority"));
            uint256 got = lib.priority(
                uint64(vm.parseJsonUint(json, _key(".priorities", i, ".exitableAt"))),
                vm.parseJsonUint(json, _key(".priorities", i, ".utxoPos")),
                uint64(vm.parseJsonUint(json, _key(".priorities", i, ".nonce")))
            );
            assertEq(got, expected);
        }
        // Equal deposit bytes in two blocks never share an output id (spec: OUT-1).
        bytes32 txHash = vm.parseJsonBytes32(json, ".outputIds[0].txHash");
        bytes32 a = lib.outputId(txHash, false, 0, vm.parseJsonUint(json, ".outputIds[0].ids[0].utxoPos"));
        bytes32 b = lib.outputId(txHash, false, 0, vm.parseJsonUint(json, ".outputIds[0].ids[1].utxoPos"));
        assertEq(a, vm.parseJsonBytes32(json, ".outputIds[0].ids[0].outputId"));
        assertEq(b, vm.parseJsonBytes32(json, ".outputIds[0].ids[1].outputId"));
        assertNotEq(a, b);
    }
}
