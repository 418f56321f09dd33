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

    /// @dev Any interleaving of deposits and blocks: the model's next numbers are the contract's, each
    /// deposit gets a fresh slot that is never a child number, and every commitment written stays.
    function testFuzz_InterleavingKeepsNumbering(uint256 seed) public {
        uint256 next = I;
        uint256 offset = 1;
        uint256[] memory written = new uint256[](64);
        bytes32[] memory commits = new bytes32[](64);
        for (uint256 k = 0; k < 64; ++k) {
            seed = uint256(keccak256(abi.encode(seed, k)));
            if (seed % 3 == 0) {
                bytes32 root = keccak256(abi.encode(seed));
                _commit(operator, next, root);
                written[k] = next;
                next += I;
                offset = 1;
            } else {
                uint256 blknum = framework.nextChildBlock() - I + framework.nextDepositBlock();
                assertEq(blknum, next - I + offset);
                assertTrue(blknum % I != 0);
                assertEq(framework.blockCommitments(blknum), bytes32(0));
                vm.prank(alice);
                framework.depositEth{value: 1 + k}(_depositTx(alice, address(0), 1 + k));
                written[k] = blknum;
                ++offset;
            }
            commits[k] = framework.blockCommitments(written[k]);
            assertTrue(commits[k] != bytes32(0));
            assertEq(framework.nextChildBlock(), next);
            assertEq(framework.nextDepositBlock(), offset);
        }
        for (uint256 k = 0; k < 64; ++k) {
            assertEq(framework.blockCommitments(written[k]), commits[k]);
        }
        _refused(next + I, next);
        _refused(next - I, next);
    }
}
