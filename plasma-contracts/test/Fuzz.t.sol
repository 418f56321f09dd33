// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {StandardExitGame} from "../contracts/exits/StandardExitGame.sol";
import {ExitPriority} from "../contracts/libraries/ExitPriority.sol";
import {Merkle} from "../contracts/libraries/Merkle.sol";
import {PlasmaTx} from "../contracts/libraries/PlasmaTx.sol";
import {LibraryHarness} from "./harness/LibraryHarness.sol";
import {PlasmaFixtures} from "./utils/PlasmaFixtures.sol";

/// @notice Fuzz tests of decoding, proofs and the exit queue.
contract FuzzTest is PlasmaFixtures {
    LibraryHarness internal lib;

    function setUp() public override {
        super.setUp();
        lib = new LibraryHarness();
    }

    /// @dev Any bytes either decode to a transaction that re-encodes to exactly those bytes, or are
    /// refused with one of the decoder's own errors (never a panic or an ABI-decoder revert).
    function testFuzz_DecodeIsStrictAndTyped(bytes calldata data) public view {
        try lib.decode(data) returns (PlasmaTx.Transaction memory t) {
            assertEq(abi.encode(t), data);
        } catch (bytes memory reason) {
            bytes4 sel = bytes4(reason);
            assertTrue(
                sel == PlasmaTx.PlasmaTxNonCanonical.selector || sel == PlasmaTx.PlasmaTxTooLarge.selector,
                "untyped decode failure"
            );
        }
    }

    /// @dev Round trip of arbitrary well-formed transactions.
    function testFuzz_EncodeDecodeRoundTrip(uint8 txType, uint256[3] memory ins, address owner, uint256 amount)
        public
        view
    {
        uint256[] memory inputs = new uint256[](bound(ins[0], 0, 3));
        for (uint256 i = 0; i < inputs.length; ++i) {
            inputs[i] = ins[i];
        }
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](1);
        outs[0] = _out(owner, address(0), amount);
        bytes memory txBytes = _tx(txType, inputs, outs);
        PlasmaTx.Transaction memory t = lib.decode(txBytes);
        assertEq(abi.encode(t), txBytes);
    }

    /// @dev Every leaf of a random tree verifies at its index and at no other; a flipped sibling
    /// byte never verifies.
    function testFuzz_ProofsOfRandomTrees(bytes32 seed, uint8 size, uint16 flip) public view {
        uint256 n = bound(size, 1, 20);
        bytes[] memory txs = new bytes[](n);
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            txs[i] = abi.encode(seed, i);
            leaves[i] = Merkle.leaf(txs[i]);
        }
        bytes32 root = _root(txs);
        uint256 index = uint256(seed) % n;
        bytes memory proof = _proofOf(leaves, index);
        assertTrue(lib.verify(leaves[index], index, proof, root));
        if (n > 1) assertFalse(lib.verify(leaves[index], (index + 1) % n, proof, root));
        proof[bound(flip, 0, 511)] ^= 0x01;
        assertFalse(lib.verify(leaves[index], index, proof, root));
    }

    /// @dev Priorities order by exitable time, then position, then nonce.
    function testFuzz_PriorityOrder(uint64 t1, uint64 t2, uint128 p1, uint128 p2, uint64 n1, uint64 n2) public pure {
        p1 = uint128(bound(p1, 0, type(uint96).max));
        p2 = uint128(bound(p2, 0, type(uint96).max));
        uint256 a = ExitPriority.pack(t1, p1, n1);
        uint256 b = ExitPriority.pack(t2, p2, n2);
        if (t1 != t2) assertEq(a < b, t1 < t2);
        else if (p1 != p2) assertEq(a < b, p1 < p2);
        else assertEq(a < b, n1 < n2);
        assertEq(ExitPriority.exitableAt(a), t1);
        assertEq(ExitPriority.position(a), p1);
        assertEq(ExitPriority.nonce(a), n1);
    }

    /// @dev The queue pays exits in priority order whatever order they were started in.
    function testFuzz_QueueProcessesInPriorityOrder(uint256[6] memory amounts, uint256 delaySeed) public {
        uint256[] memory positions = new uint256[](6);
        for (uint256 i = 0; i < 6; ++i) {
            (uint256 pos, bytes memory txBytes) = _depositEth(alice, bound(amounts[i], 1, 1 ether));
            positions[i] = pos;
            skip(bound(delaySeed >> (i * 8), 0, 1 days));
            vm.prank(alice);
            seGame.startStandardExit{value: SE_BOND}(_startArgs(pos, txBytes));
        }
        skip(2 * PERIOD);
        uint256 last;
        for (uint256 i = 0; i < 6; ++i) {
            (uint256 head,) = framework.queueHead(address(0));
            assertGt(head, last);
            last = head;
            framework.processExits(address(0), head, 1);
        }
    }
}

