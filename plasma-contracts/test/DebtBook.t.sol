// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {BatchExitGame} from "../contracts/exits/BatchExitGame.sol";
import {ExitGameBase} from "../contracts/exits/ExitGameBase.sol";
import {UtxoPosLib} from "../contracts/libraries/UtxoPosLib.sol";
import {BatchFixtures} from "./utils/BatchFixtures.sol";

/// @title DebtBookTest
/// @notice The framework's debts (spec: EXIT-16): a capped credit or reserve leaves a debt, in
/// processing order; money released while debts are outstanding goes to a pool only `settleDebts`
/// pays out, oldest debt first, in part when short; when the debts end the pool is freed.
contract DebtBookTest is BatchFixtures {
    address internal constant ETH = address(0);

    function _eth(address who) internal view returns (uint256) {
        return framework.withdrawable(who, ETH);
    }

    /// @dev A credit by the standard game, as its processing makes.
    function _credit(address who, uint256 amount) internal {
        vm.prank(address(seGame));
        framework.credit(ETH, who, amount);
    }

    /// @dev A release by the batch game, as a strike or void after processing makes.
    function _release(uint256 amount) internal {
        vm.prank(address(batchGame));
        framework.release(ETH, amount);
    }

    function _book() internal view returns (uint256 head, uint256 tail, uint256 outstanding, uint256 pool) {
        return framework.debtBook(ETH);
    }

    function _challengeInvalid(uint256 id, uint256 index, bytes memory txBytes, uint256 blknum) internal {
        vm.prank(carol);
        batchGame.challengeBatchClaimInvalid(_ref(id, index), txBytes, _proof(blknum, 0), blockTimestamp[blknum]);
    }

    /// @dev Debts are recorded in processing order and paid oldest first; a pool too small pays the
    /// next debt in part; once the last debt is paid the rest of the pool is free again.
    function test_DebtsPaidOldestFirstInPartAndPoolFreedWhenDebtsEnd() public {
        _deposit(alice, 3 ether);
        _credit(alice, 3 ether); // the vault is empty now
        vm.expectEmit(address(framework));
        emit PlasmaFramework.CreditShortfall(bob, ETH, 2 ether);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.DebtRecorded(ETH, 0, bob, 0, 2 ether);
        _credit(bob, 2 ether);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.DebtRecorded(ETH, 1, carol, 0, 1 ether);
        _credit(carol, 1 ether);
        (uint256 head, uint256 tail, uint256 outstanding, uint256 pool) = _book();
        assertEq(abi.encode(head, tail, outstanding, pool), abi.encode(0, 2, 3 ether, 0));

        // Released money is not free while debts are outstanding: it goes to the pool.
        vm.expectEmit(address(framework));
        emit PlasmaFramework.DebtPoolFunded(ETH, 2.5 ether, 2.5 ether);
        _release(2.5 ether);
        assertEq(framework.totalCredited(ETH), 3 ether);
        _credit(mallory, 1 ether); // a new credit cannot take it
        assertEq(_eth(mallory), 0);

        vm.expectEmit(address(framework));
        emit PlasmaFramework.DebtPaid(ETH, 0, 2 ether, 0);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.DebtPaid(ETH, 1, 0.5 ether, 0.5 ether);
        assertEq(framework.settleDebts(ETH, 10), 2);
        assertEq(_eth(bob), 2 ether, "the oldest in full");
        assertEq(_eth(carol), 0.5 ether, "the next in part");
        (head, tail, outstanding, pool) = _book();
        assertEq(abi.encode(head, tail, outstanding, pool), abi.encode(1, 3, 1.5 ether, 0));
        PlasmaFramework.Debt memory d = framework.debtAt(ETH, 1);
        assertEq(d.amount, 0.5 ether);

        // Nothing in the pool: nothing to settle.
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoDebtPayable.selector, ETH, 2, 0));
        framework.settleDebts(ETH, 10);

        _release(2 ether);
        framework.settleDebts(ETH, 10);
        assertEq(_eth(carol), 1 ether);
        assertEq(_eth(mallory), 1 ether, "mallory's debt is younger: paid after carol's");
        (head, tail, outstanding, pool) = _book();
        assertEq(abi.encode(head, tail, outstanding, pool), abi.encode(3, 3, 0, 0));
        // Released money stayed counted until the debts ended; then the 0.5 left was freed.
        assertEq(framework.totalCredited(ETH), 2.5 ether, "0.5 freed");

        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoDebtPayable.selector, ETH, 0, 0));
        framework.settleDebts(ETH, 10);
    }

    /// @dev Without outstanding debts a release frees the money at once, as before EXIT-16.
    function test_ReleaseWithoutDebtsIsFreeAtOnce() public {
        _deposit(alice, 3 ether);
        _credit(alice, 3 ether);
        _release(1 ether);
        assertEq(framework.totalCredited(ETH), 2 ether);
        _credit(bob, 1 ether);
        assertEq(_eth(bob), 1 ether);
    }

    /// @dev `settleDebts` pays at most `maxDebts` debts per call; the rest wait for the next call.
    function test_SettleDebtsIsBounded() public {
        _deposit(alice, 1 ether);
        _credit(alice, 1 ether);
        address[5] memory who = [bob, carol, mallory, operator, address(0xbeef)];
        for (uint256 i = 0; i < 5; ++i) {
            _credit(who[i], 1 ether);
        }
        _release(5 ether);
        assertEq(framework.settleDebts(ETH, 2), 2);
        (uint256 head, uint256 tail, uint256 outstanding, uint256 pool) = _book();
        assertEq(abi.encode(head, tail, outstanding, pool), abi.encode(2, 5, 3 ether, 3 ether));
        assertEq(_eth(carol), 1 ether);
        assertEq(_eth(mallory), 0);
        assertEq(framework.settleDebts(ETH, 100), 3);
        for (uint256 i = 0; i < 5; ++i) {
            assertEq(_eth(who[i]), 1 ether);
        }
    }

    /// @dev A batch's capped reserve is a debt; repaying it tops up the reserve, and what the batch no
    /// longer needs (a claim struck meanwhile) stays in the pool and is freed when the debts end. A
    /// claim the reserve could not cover was deferred, not paid in part, and is paid after the top-up.
    function test_ReserveDebtTopsUpBatchAndHandsBackWhatStruckClaimsFreed() public {
        (uint256 d1, bytes memory t1) = _deposit(alice, 1 ether);
        (uint256 d2, bytes memory t2) = _deposit(bob, 1 ether);
        _deposit(carol, 1 ether);
        // A fake claim at an old position (mallory) and alice's batch: her real output and a fake one.
        uint256 f = _start(mallory, ETH, _groups1(mallory, _rec(d1 + 1, 5 ether)));
        uint256 h = _start(alice, ETH, _groups1(alice, abi.encodePacked(_rec(d1, 1 ether), _rec(d2 + 1, 1 ether))));
        skip(2 * PERIOD);
        framework.processExits(ETH, 0, 10); // f reserves the whole vault, h nothing
        assertEq(batchGame.batches(f).reserved, 3 ether);
        assertEq(batchGame.batches(h).reserved, 0);
        PlasmaFramework.Debt memory d = framework.debtAt(ETH, 1);
        assertEq(abi.encode(d.account, d.batchId, d.amount), abi.encode(address(batchGame), h, 2 ether));

        // alice's claim cannot be paid in part: deferred, still live.
        vm.expectEmit(address(batchGame));
        emit BatchExitGame.BatchClaimDeferred(h, 0, 0);
        _pay1(h, 0, t1);
        assertEq(batchGame.claimState(h, 0), 0);

        _challengeInvalid(h, 1, t2, UtxoPosLib.blknum(d2)); // h now needs 1 ether, not 2
        _challengeInvalid(f, 0, t1, UtxoPosLib.blknum(d1)); // releases f's 3 ether to the pool
        (,,, uint256 pool) = _book();
        assertEq(pool, 3 ether);

        vm.expectEmit(address(framework));
        emit PlasmaFramework.DebtPaid(ETH, 0, 0, 0); // f needs nothing: closed
        vm.expectEmit(address(batchGame));
        emit BatchExitGame.BatchReserveRepaid(h, 1 ether);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.DebtPaid(ETH, 1, 1 ether, 0); // h takes what it needs, the excess stays
        framework.settleDebts(ETH, 10);
        assertEq(batchGame.batches(h).reserved, 1 ether);
        assertEq(framework.totalCredited(ETH), 1 ether, "the rest of the pool freed");
        (uint256 head, uint256 tail, uint256 outstanding, uint256 left) = _book();
        assertEq(abi.encode(head, tail, outstanding, left), abi.encode(2, 2, 0, 0));

        _pay1(h, 0, t1);
        assertEq(batchGame.claimState(h, 0), 3);
        assertEq(_eth(alice), 1 ether + 2 * CLAIM_BOND + BATCH_BOND / 2);
        assertEq(batchGame.batches(h).reserved, 0);
        assertEq(batchGame.batches(h).total, 0);
    }

    /// @dev Only the framework tops up a batch's reserve.
    function test_RevertWhen_ReserveRepaidNotByFramework() public {
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameNotFramework.selector, address(this)));
        batchGame.reserveRepaid(1, 1);
    }
}
