// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {Merkle} from "../contracts/libraries/Merkle.sol";
import {PlasmaTx} from "../contracts/libraries/PlasmaTx.sol";
import {PlasmaFixtures} from "./utils/PlasmaFixtures.sol";
import {FeeOnTransferToken, NoReturnToken, TestToken} from "./utils/Tokens.sol";

contract PlasmaFrameworkTest is PlasmaFixtures {
    TestToken internal token;

    function setUp() public override {
        super.setUp();
        token = new TestToken();
        token.mint(alice, 1e24);
    }

    // ---------------------------------------------------------------- wiring

    /// @dev Followers start reading logs at the block the framework was created in (WATCH-1).
    function test_DeploymentBlockIsTheCreationBlock() public {
        vm.roll(17_000_123);
        PlasmaFramework fresh = new PlasmaFramework(operator, PERIOD);
        vm.roll(17_000_200);
        assertEq(fresh.deploymentBlock(), 17_000_123);
        assertLt(framework.deploymentBlock(), 17_000_123); // the fixture's, created in setUp
    }

    function test_RevertWhen_BindingTwice() public {
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkBindingRefused.selector, address(this)));
        framework.bindExitGames(address(1), address(2), address(3));
    }

    function test_RevertWhen_BindingByStranger() public {
        PlasmaFramework fresh = new PlasmaFramework(operator, PERIOD);
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkBindingRefused.selector, mallory));
        fresh.bindExitGames(address(1), address(2), address(3));
    }

    function test_RevertWhen_NotStarted() public {
        PlasmaFramework fresh = new PlasmaFramework(operator, PERIOD);
        vm.prank(operator);
        vm.expectRevert(PlasmaFramework.FrameworkNotStarted.selector);
        fresh.submitBlock(1000, bytes32(uint256(1)));
    }

    // ---------------------------------------------------------------- blocks

    function test_SubmitBlock() public {
        bytes32 root = keccak256("root");
        vm.expectEmit(address(framework));
        emit PlasmaFramework.BlockSubmitted(1000, root, uint64(T0));
        vm.prank(operator);
        framework.submitBlock(1000, root);
        assertEq(framework.blockCommitments(1000), keccak256(abi.encode(root, uint64(T0))));
        assertEq(framework.nextChildBlock(), 2000);
        assertEq(framework.nextDepositBlock(), 1);
    }

    /// @dev The race of issue 12 item 6: the operator's first submission of block 1000 and its
    /// fee-bumped (or resent) twin both get mined. The second must revert, not commit the same root
    /// as block 2000.
    function test_RevertWhen_SameRoundSubmittedTwice() public {
        bytes32 root = keccak256("root");
        vm.prank(operator);
        framework.submitBlock(1000, root);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkUnexpectedBlockNumber.selector, 1000, 2000));
        framework.submitBlock(1000, root);
        assertEq(framework.nextChildBlock(), 2000);
        assertEq(framework.blockCommitments(2000), bytes32(0));
    }

    function test_RevertWhen_SubmitBlockAhead() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkUnexpectedBlockNumber.selector, 2000, 1000));
        framework.submitBlock(2000, keccak256("root"));
        assertEq(framework.nextChildBlock(), 1000);
    }

    /// @dev Issue 19: no counter is written per block; the committed child blocks are the counter
    /// (invariant C in PlasmaFramework). Only the next multiple of the interval is accepted: not a
    /// deposit number, not zero, not one ahead, not one already committed.
    function test_RevertWhen_SubmitBlockIsNotTheNextChildBlock() public {
        bytes32 root = keccak256("root");
        uint256[5] memory wrong = [uint256(0), 500, 1001, 2000, 3000];
        for (uint256 i = 0; i < wrong.length; ++i) {
            vm.prank(operator);
            vm.expectRevert(
                abi.encodeWithSelector(PlasmaFramework.FrameworkUnexpectedBlockNumber.selector, wrong[i], 1000)
            );
            framework.submitBlock(wrong[i], root);
        }
        vm.prank(operator);
        framework.submitBlock(1000, root);
        _depositEth(alice, 1 ether); // deposit block 1001
        uint256[4] memory wrong2 = [uint256(1000), 1001, 1002, 3000];
        for (uint256 i = 0; i < wrong2.length; ++i) {
            vm.prank(operator);
            vm.expectRevert(
                abi.encodeWithSelector(PlasmaFramework.FrameworkUnexpectedBlockNumber.selector, wrong2[i], 2000)
            );
            framework.submitBlock(wrong2[i], root);
        }
    }

    /// @dev Deposits find the next child block by a search from their hint, however many blocks came
    /// since the last deposit (here 0, 1, 2, ..., 70 in turn), and number themselves right after the
    /// last one, offsets restarting at 1 (POS-3); the views agree with what a deposit then gets.
    function testFuzz_DepositsNumberAfterAnyRunOfBlocks(uint8 seed) public {
        uint256 next = 1000;
        uint256 rounds = 1 + seed % 4;
        for (uint256 r = 0; r < rounds; ++r) {
            uint256 blocks = (uint256(keccak256(abi.encode(seed, r))) % 71);
            for (uint256 b = 0; b < blocks; ++b) {
                vm.prank(operator);
                framework.submitBlock(next, keccak256(abi.encode(next)));
                next += 1000;
            }
            assertEq(framework.nextChildBlock(), next);
            if (blocks != 0 || r == 0) assertEq(framework.nextDepositBlock(), 1);
            uint256 expected = next - 1000 + framework.nextDepositBlock();
            assertEq(framework.blockCommitments(expected), bytes32(0));
            (uint256 pos,) = _depositEth(alice, 1 ether);
            assertEq(pos / 1e9, expected);
            assertTrue(framework.blockCommitments(expected) != bytes32(0)); // this deposit's block
            assertEq(framework.nextChildBlock(), next);
        }
    }

    function test_RevertWhen_SubmitBlockByNonOperator() public {
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotOperator.selector, mallory));
        framework.submitBlock(1000, keccak256("root"));
    }

    function test_RevertWhen_SubmitZeroRoot() public {
        vm.prank(operator);
        vm.expectRevert(PlasmaFramework.FrameworkZeroRoot.selector);
        framework.submitBlock(1000, bytes32(0));
    }

    // ---------------------------------------------------------------- deposits

    function test_DepositEth() public {
        bytes memory depositTx = _depositTx(alice, address(0), 1 ether);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.DepositCreated(alice, 1, address(0), 1 ether, uint64(T0), depositTx);
        vm.prank(alice);
        framework.depositEth{value: 1 ether}(depositTx);
        assertEq(framework.blockCommitments(1), keccak256(abi.encode(Merkle.depositRoot(depositTx), uint64(T0))));
        assertEq(framework.totalDeposited(address(0)), 1 ether);
        assertEq(address(framework).balance, 1 ether);
        assertEq(framework.nextDepositBlock(), 2);
    }

    function test_DepositsNumberBetweenChildBlocks() public {
        _depositEth(alice, 1);
        _submit1(_depositTx(alice, address(0), 5)); // any tx, the root is what matters here
        (uint256 pos,) = _depositEth(alice, 1);
        assertEq(pos / 1e9, 1001);
    }

    function test_RevertWhen_DepositBlocksExhausted() public {
        _fillDepositSlots(alice, 999);
        bytes memory depositTx = _depositTx(alice, address(0), 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkDepositBlocksExhausted.selector, 1000));
        framework.depositEth{value: 1 + 1 ether}(depositTx);
    }

    /// @dev Dust deposits by `who` until `lastSlot` is taken, each paying the fee due; returns the
    /// fees paid.
    function _fillDepositSlots(address who, uint256 lastSlot) internal returns (uint256 fees) {
        bytes memory dust = _depositTx(who, address(0), 1);
        while (framework.nextDepositBlock() <= lastSlot) {
            uint256 fee = framework.depositFee();
            fees += fee;
            vm.deal(who, who.balance + 1 + fee);
            vm.prank(who);
            framework.depositEth{value: 1 + fee}(dust);
        }
    }

    /// @dev Issue 12 item 4: 999 deposits of 1 wei used to fill every deposit slot until the next
    /// child block for gas alone (~75.7k each), and honest deposits then reverted. Free dust now
    /// stops at slot 500; an honest deposit still goes through for the current fee, and filling the
    /// rest burns about 50.6 ether (spec: BOND-2).
    function test_DustDepositsCannotFillEverySlotForFree() public {
        bytes memory dust = _depositTx(mallory, address(0), 1);
        uint256 filled;
        for (uint256 i = 1; i < 1000; ++i) {
            vm.prank(mallory);
            try framework.depositEth{value: 1}(dust) {
                ++filled;
            } catch {
                break;
            }
        }
        assertEq(filled, framework.FREE_DEPOSIT_SLOTS(), "free dust deposits must stop at the free slots");

        uint256 fee = framework.depositFee();
        assertEq(fee, 1e15);
        bytes memory honest = _depositTx(alice, address(0), 1 ether);
        vm.prank(alice);
        framework.depositEth{value: 1 ether + fee}(honest);

        uint256 burned = address(framework).balance - framework.totalDeposited(address(0));
        uint256 fees = _fillDepositSlots(mallory, 999);
        assertGt(fee + fees, 50 ether); // locking deposits out costs the attacker dearly
        assertEq(address(framework).balance - framework.totalDeposited(address(0)), burned + fees, "fees burned");
        assertEq(framework.withdrawable(mallory, address(0)), 0, "no fee comes back");
    }

    function test_DepositFeeDoublesEveryFiftySlotsAndResetsWithChildBlock() public {
        assertEq(framework.depositFee(), 0);
        _fillDepositSlots(alice, 500);
        assertEq(framework.depositFee(), 1e15); // slot 501
        _fillDepositSlots(alice, 550);
        assertEq(framework.depositFee(), 2e15); // slot 551
        _fillDepositSlots(alice, 900);
        assertEq(framework.depositFee(), 256e15); // slot 901
        _fillDepositSlots(alice, 950);
        assertEq(framework.depositFee(), 512e15); // slot 951
        _fillDepositSlots(alice, 998);
        assertEq(framework.depositFee(), 512e15); // slot 999, the last
        _submit1(_depositTx(alice, address(0), 5));
        assertEq(framework.depositFee(), 0);
    }

    function test_RevertWhen_DepositFeeTooLow() public {
        _fillDepositSlots(alice, 500);
        bytes memory depositTx = _depositTx(alice, address(0), 1 ether);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkDepositFeeTooLow.selector, 1e15, 1e15 - 1));
        framework.depositEth{value: 1 ether + 1e15 - 1}(depositTx);
    }

    function test_DepositOverpaymentIsCreditedBack() public {
        _fillDepositSlots(alice, 500);
        bytes memory depositTx = _depositTx(bob, address(0), 1 ether);
        vm.prank(bob);
        framework.depositEth{value: 1 ether + 5e15}(depositTx); // offered more than the fee due
        assertEq(framework.withdrawable(bob, address(0)), 4e15);
        assertEq(framework.totalDeposited(address(0)), 1 ether + 500);
    }

    function test_Erc20DepositPaysTheFeeInEth() public {
        _fillDepositSlots(bob, 500);
        bytes memory depositTx = _depositTx(alice, address(token), 5e18);
        vm.startPrank(alice);
        token.approve(address(framework), 5e18);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkDepositFeeTooLow.selector, 1e15, 0));
        framework.depositErc20(depositTx);
        framework.depositErc20{value: 1e15}(depositTx);
        vm.stopPrank();
        assertEq(framework.totalDeposited(address(token)), 5e18);
    }

    function test_RevertWhen_DepositAmountMismatch() public {
        bytes memory depositTx = _depositTx(alice, address(0), 2 ether);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(PlasmaFramework.FrameworkDepositAmountMismatch.selector, 2 ether, 1 ether)
        );
        framework.depositEth{value: 1 ether}(depositTx);
    }

    function test_RevertWhen_DepositForSomeoneElse() public {
        bytes memory depositTx = _depositTx(bob, address(0), 1 ether);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkDepositOwnerMismatch.selector, bob, alice));
        framework.depositEth{value: 1 ether}(depositTx);
    }

    function test_RevertWhen_DepositIsAPayment() public {
        bytes memory payment = _pay1(1e9, alice, address(0), 1 ether);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotADeposit.selector, 1));
        framework.depositEth{value: 1 ether}(payment);
    }

    function test_RevertWhen_DepositTxMalformed() public {
        bytes memory depositTx = _depositTx(alice, address(0), 1 ether);
        bytes memory trailing = abi.encodePacked(depositTx, bytes32(0));
        vm.prank(alice);
        vm.expectPartialRevert(PlasmaTx.PlasmaTxNonCanonical.selector);
        framework.depositEth{value: 1 ether}(trailing);
    }

    function test_RevertWhen_EthDepositNamesAToken() public {
        bytes memory depositTx = _depositTx(alice, address(token), 1 ether);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkDepositTokenMismatch.selector, address(token)));
        framework.depositEth{value: 1 ether}(depositTx);
    }

    function test_DepositErc20() public {
        bytes memory depositTx = _depositTx(alice, address(token), 5e18);
        vm.startPrank(alice);
        token.approve(address(framework), 5e18);
        framework.depositErc20(depositTx);
        vm.stopPrank();
        assertEq(token.balanceOf(address(framework)), 5e18);
        assertEq(framework.totalDeposited(address(token)), 5e18);
    }

    function test_DepositErc20WithoutReturnValue() public {
        NoReturnToken usdtLike = new NoReturnToken();
        usdtLike.mint(alice, 100);
        bytes memory depositTx = _depositTx(alice, address(usdtLike), 100);
        vm.startPrank(alice);
        usdtLike.approve(address(framework), 100);
        framework.depositErc20(depositTx);
        vm.stopPrank();
        assertEq(usdtLike.balanceOf(address(framework)), 100);
    }

    function test_RevertWhen_FeeOnTransferToken() public {
        FeeOnTransferToken fot = new FeeOnTransferToken();
        fot.mint(alice, 1000);
        bytes memory depositTx = _depositTx(alice, address(fot), 1000);
        vm.startPrank(alice);
        fot.approve(address(framework), 1000);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkTokenTransferMismatch.selector, 1000, 990));
        framework.depositErc20(depositTx);
        vm.stopPrank();
    }

    function test_RevertWhen_Erc20DepositNamesEth() public {
        bytes memory depositTx = _depositTx(alice, address(0), 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkDepositTokenMismatch.selector, address(0)));
        framework.depositErc20(depositTx);
    }

    // ---------------------------------------------------------------- restricted entries

    function test_RevertWhen_StrangerUsesExitGameEntries() public {
        vm.startPrank(mallory);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotExitGame.selector, mallory));
        framework.enqueue(address(0), 1, 1e9, 1e9, false);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotExitGame.selector, mallory));
        framework.credit(address(0), mallory, 1);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotExitGame.selector, mallory));
        framework.finalizeOutputs(new bytes32[](1));
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotExitGame.selector, mallory));
        framework.creditBonds(mallory, 0, mallory, 0);
        vm.stopPrank();
    }

    function test_CreditIsCappedAtWhatIsLeft() public {
        _depositEth(alice, 1 ether);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.CreditShortfall(mallory, address(0), 1 ether);
        vm.prank(address(seGame));
        framework.credit(address(0), mallory, 2 ether);
        assertEq(framework.withdrawable(mallory, address(0)), 1 ether);
        assertEq(framework.totalCredited(address(0)), 1 ether);
        // Nothing left: the next credit pays nothing and does not revert (the queue goes on).
        vm.prank(address(seGame));
        framework.credit(address(0), mallory, 1);
        assertEq(framework.withdrawable(mallory, address(0)), 1 ether);
    }

    function test_RevertWhen_BondValueMismatch() public {
        vm.deal(address(seGame), 1 ether);
        vm.prank(address(seGame));
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkBondValueMismatch.selector, 1, 3));
        framework.creditBonds{value: 1}(alice, 1, bob, 2);
    }

    function test_FinalizeOutputsReportsAlreadyFinalized() public {
        bytes32[] memory ids = new bytes32[](2);
        ids[0] = keccak256("a");
        ids[1] = keccak256("b");
        vm.startPrank(address(seGame));
        assertEq(framework.finalizeOutputs(ids), 0);
        ids[0] = keccak256("c");
        assertEq(framework.finalizeOutputs(ids), 2); // only "b" (bit 1) was finalized before
        vm.stopPrank();
        assertTrue(framework.isOutputFinalized(keccak256("c")));
    }

    // ---------------------------------------------------------------- queue and withdrawals

    function test_RevertWhen_ProcessingEmptyQueue() public {
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, address(0), 0));
        framework.processExits(address(0), 0, 10);
    }

    function test_RevertWhen_ZeroMaxExits() public {
        vm.expectRevert(PlasmaFramework.FrameworkZeroMaxExits.selector);
        framework.processExits(address(0), 0, 0);
    }

    function test_RevertWhen_NothingToWithdraw() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNothingToWithdraw.selector, alice, address(0)));
        framework.withdraw(address(0));
    }

    function test_Erc20CreditAndWithdraw() public {
        bytes memory depositTx = _depositTx(alice, address(token), 5e18);
        vm.startPrank(alice);
        token.approve(address(framework), 5e18);
        framework.depositErc20(depositTx);
        vm.stopPrank();
        vm.prank(address(seGame));
        framework.credit(address(token), bob, 2e18);
        vm.prank(bob);
        framework.withdraw(address(token));
        assertEq(token.balanceOf(bob), 2e18);
        assertEq(framework.withdrawable(bob, address(token)), 0);
    }

    function test_RevertWhen_EthRecipientRejects() public {
        _depositEth(alice, 1 ether);
        Rejecter rejecter = new Rejecter();
        vm.prank(address(seGame));
        framework.credit(address(0), address(rejecter), 1 ether);
        vm.prank(address(rejecter));
        vm.expectRevert(
            abi.encodeWithSelector(PlasmaFramework.FrameworkEthTransferFailed.selector, address(rejecter), 1 ether)
        );
        framework.withdraw(address(0));
        assertEq(framework.withdrawable(address(rejecter), address(0)), 1 ether); // still there
    }
}

/// @dev A recipient that refuses ETH: it can only hurt its own withdrawal.
contract Rejecter {
    receive() external payable {
        revert("no");
    }
}
