// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {PlasmaFixtures} from "./utils/PlasmaFixtures.sol";

/// @notice Audit of issue 19's submitBlock without a block counter (invariant C): only the operator
/// commits, only the next child block, deposits are numbered after the last committed child block
/// and never land on a child block's number or on each other, whatever the interleaving.
contract Audit19FrameworkTest is PlasmaFixtures {
    uint64 internal constant I = 1000;

    function _commit(address who, uint256 blknum, bytes32 root) internal {
        vm.prank(who);
        framework.submitBlock(blknum, root);
    }

    function _refused(uint256 blknum, uint256 expectedNext) internal {
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(PlasmaFramework.FrameworkUnexpectedBlockNumber.selector, blknum, expectedNext)
        );
        framework.submitBlock(blknum, keccak256(abi.encode(blknum)));
    }

    function test_OnlyTheOperatorCommitsAndOnlyTheNextNumber() public {
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotOperator.selector, mallory));
        framework.submitBlock(I, keccak256("r"));
        uint256[6] memory bad = [uint256(0), 1, 500, 2 * I, 3 * I, type(uint256).max - (type(uint256).max % I)];
        for (uint256 i = 0; i < bad.length; ++i) {
            _refused(bad[i], I);
        }
        _commit(operator, I, keccak256("1"));
        _refused(I, 2 * I); // the same number again (a resend racing the first)
        _refused(3 * I, 2 * I);
        _refused(I + 1, 2 * I);
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotOperator.selector, mallory));
        framework.submitBlock(2 * I, keccak256("2"));
        _commit(operator, 2 * I, keccak256("2"));
        assertEq(framework.nextChildBlock(), 3 * I);
        vm.prank(operator);
        vm.expectRevert(PlasmaFramework.FrameworkZeroRoot.selector);
        framework.submitBlock(3 * I, bytes32(0));
    }

    /// @dev A deposit right after a long run of blocks with none in between is numbered after the last
    /// one (the galloping search), and the next child block is still the one after.
    function test_DepositAfterManyBlocksIsNumberedAfterTheLast() public {
        _depositEth(alice, 1 ether);
        for (uint256 b = 1; b <= 77; ++b) {
            _commit(operator, b * I, keccak256(abi.encode(b)));
        }
        assertEq(framework.nextChildBlock(), 78 * I);
        assertEq(framework.nextDepositBlock(), 1);
        uint256 blknum = framework.nextChildBlock() - I + framework.nextDepositBlock();
        assertEq(blknum, 77 * I + 1);
        vm.prank(bob);
        framework.depositEth{value: 1 ether}(_depositTx(bob, address(0), 1 ether));
        assertTrue(framework.blockCommitments(blknum) != bytes32(0));
        assertEq(framework.nextDepositBlock(), 2);
        _refused(77 * I, 78 * I);
        _commit(operator, 78 * I, keccak256("78"));
        assertEq(framework.nextDepositBlock(), 1);
        assertEq(framework.depositFee(), 0);
    }

    /// @dev Any interleaving of deposits, single blocks and runs of blocks (`submitBlocks`): the
    /// model's next numbers are the contract's, each deposit gets a fresh slot that is never a child
    /// number, each block of a run gets the commitment `submitBlock` would have written, and every
    /// commitment written stays.
    function testFuzz_InterleavingKeepsNumbering(uint256 seed) public {
        uint256 next = I;
        uint256 offset = 1;
        uint256 n = 0;
        uint256[] memory written = new uint256[](64 * 5);
        bytes32[] memory commits = new bytes32[](64 * 5);
        for (uint256 k = 0; k < 64; ++k) {
            seed = uint256(keccak256(abi.encode(seed, k)));
            uint256 from = n;
            if (seed % 3 == 0) {
                bytes32 root = keccak256(abi.encode(seed));
                _commit(operator, next, root);
                written[n++] = next;
                next += I;
                offset = 1;
            } else if (seed % 3 == 1 && seed % 2 == 0) {
                bytes32[] memory roots = new bytes32[](1 + (seed >> 8) % 5);
                for (uint256 r = 0; r < roots.length; ++r) {
                    roots[r] = keccak256(abi.encode(seed, r));
                }
                vm.prank(operator);
                framework.submitBlocks(next, roots);
                for (uint256 r = 0; r < roots.length; ++r) {
                    assertEq(framework.blockCommitments(next), keccak256(abi.encode(roots[r], uint64(block.timestamp))));
                    written[n++] = next;
                    next += I;
                }
                offset = 1;
            } else {
                uint256 blknum = framework.nextChildBlock() - I + framework.nextDepositBlock();
                assertEq(blknum, next - I + offset);
                assertTrue(blknum % I != 0);
                assertEq(framework.blockCommitments(blknum), bytes32(0));
                vm.prank(alice);
                framework.depositEth{value: 1 + k}(_depositTx(alice, address(0), 1 + k));
                written[n++] = blknum;
                ++offset;
            }
            for (uint256 j = from; j < n; ++j) {
                commits[j] = framework.blockCommitments(written[j]);
                assertTrue(commits[j] != bytes32(0));
            }
            assertEq(framework.nextChildBlock(), next);
            assertEq(framework.nextDepositBlock(), offset);
            vm.warp(block.timestamp + 1 + seed % 13);
        }
        for (uint256 k = 0; k < n; ++k) {
            assertEq(framework.blockCommitments(written[k]), commits[k]);
        }
        _refused(next + I, next);
        _refused(next - I, next);
    }

    /// @dev A run commits each block as `submitBlock` would, one event each, with one timestamp.
    function test_ARunCommitsEachBlockAsSingleSubmissionsWould() public {
        _commit(operator, I, keccak256("1"));
        bytes32[] memory roots = new bytes32[](4);
        for (uint256 r = 0; r < 4; ++r) {
            roots[r] = keccak256(abi.encode("run", r));
            vm.expectEmit(address(framework));
            emit PlasmaFramework.BlockSubmitted((2 + r) * I, roots[r], uint64(block.timestamp));
        }
        vm.prank(operator);
        framework.submitBlocks(2 * I, roots);
        for (uint256 r = 0; r < 4; ++r) {
            assertEq(framework.blockCommitments((2 + r) * I), keccak256(abi.encode(roots[r], uint64(block.timestamp))));
        }
        assertEq(framework.nextChildBlock(), 6 * I);
        assertEq(framework.nextDepositBlock(), 1);
        (uint256 pos,) = _depositEth(alice, 1 ether);
        assertEq(pos / 1e9, 5 * I + 1); // numbered after the run's last block
        _refused(5 * I, 6 * I);
    }

    /// @dev A run is all or nothing, and refused exactly where `submitBlock` would refuse its first
    /// block: a resend racing a run that landed, a gap, a zero root anywhere, a stranger, no roots.
    function test_ARunIsRefusedWholeWhereverItIsWrong() public {
        bytes32[] memory roots = new bytes32[](3);
        roots[0] = keccak256("a");
        roots[1] = keccak256("b");
        roots[2] = keccak256("c");
        _refusedRun(
            2 * I, roots, abi.encodeWithSelector(PlasmaFramework.FrameworkUnexpectedBlockNumber.selector, 2 * I, I)
        );
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotOperator.selector, mallory));
        framework.submitBlocks(I, roots);
        _refusedRun(I, new bytes32[](0), abi.encodeWithSelector(PlasmaFramework.FrameworkNoRoots.selector));
        roots[2] = bytes32(0);
        _refusedRun(I, roots, abi.encodeWithSelector(PlasmaFramework.FrameworkZeroRoot.selector));
        assertEq(framework.blockCommitments(I), bytes32(0)); // the first two were not kept
        assertEq(framework.nextChildBlock(), I);
        roots[2] = keccak256("c");
        vm.prank(operator);
        framework.submitBlocks(I, roots);
        // The same run again (a fee bump racing the one that landed), or one overlapping it.
        _refusedRun(I, roots, abi.encodeWithSelector(PlasmaFramework.FrameworkUnexpectedBlockNumber.selector, I, 4 * I));
        _refusedRun(
            3 * I, roots, abi.encodeWithSelector(PlasmaFramework.FrameworkUnexpectedBlockNumber.selector, 3 * I, 4 * I)
        );
        assertEq(framework.nextChildBlock(), 4 * I);
        PlasmaFramework fresh = new PlasmaFramework(operator, PERIOD);
        vm.prank(operator);
        vm.expectRevert(PlasmaFramework.FrameworkNotStarted.selector);
        fresh.submitBlocks(I, roots);
    }

    function _refusedRun(uint256 first, bytes32[] memory roots, bytes memory err) internal {
        vm.prank(operator);
        vm.expectRevert(err);
        framework.submitBlocks(first, roots);
    }
}
