// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../../contracts/PlasmaFramework.sol";
import {BatchExitGame} from "../../contracts/exits/BatchExitGame.sol";
import {PlasmaFixtures} from "../utils/PlasmaFixtures.sol";
import {console} from "../utils/console.sol";
import {BatchExitHandler} from "./BatchExitHandler.sol";

/// @notice Random sequences of deposits (ETH and an ERC-20), blocks of real payments, batch exits
/// (own groups and under authorizations, random ascending subsets; mallory's claims of nonexistent,
/// foreign, inflated, spent and exited outputs), standard exits of the same outputs, strikes (CHAL-6,
/// CHAL-7, CHAL-8, releases after processing), CHAL-10 and EXIT-4 challenges, demands and answers
/// (CHAL-9), a watchtower's rounds, processing with time warps, payouts (EXIT-15),
/// collections and withdrawals, against the real framework and both exit games (spec: EXIT-12..15,
/// CHAL-6..10, OUT-2). The handler's ghost model books every settlement by output.
contract BatchExitInvariantsTest is PlasmaFixtures {
    BatchExitHandler internal handler;

    function setUp() public override {
        handler = new BatchExitHandler();
        targetContract(address(handler));
        // Weighted by repetition: cheats and settlement steps come often enough to meet within a run.
        bytes4[23] memory sel = [
            BatchExitHandler.deposit.selector,
            BatchExitHandler.pay.selector,
            BatchExitHandler.mallorySpends.selector,
            BatchExitHandler.startBatch.selector,
            BatchExitHandler.startBatch.selector,
            BatchExitHandler.malloryBatch.selector,
            BatchExitHandler.malloryDoubleExit.selector,
            BatchExitHandler.malloryDoubleExit.selector,
            BatchExitHandler.startStandardExit.selector,
            BatchExitHandler.strike.selector,
            BatchExitHandler.challengeStandardExit.selector,
            BatchExitHandler.demand.selector,
            BatchExitHandler.answer.selector,
            BatchExitHandler.watch.selector,
            BatchExitHandler.advance.selector,
            BatchExitHandler.advance.selector,
            BatchExitHandler.payout.selector,
            BatchExitHandler.payout.selector,
            BatchExitHandler.payoutUnproven.selector,
            BatchExitHandler.collect.selector,
            BatchExitHandler.withdraw.selector,
            BatchExitHandler.demand.selector,
            BatchExitHandler.settle.selector
        ];
        bytes4[] memory selectors = new bytes4[](sel.length);
        for (uint256 i = 0; i < sel.length; ++i) {
            selectors[i] = sel[i];
        }
        targetSelector(FuzzSelector(address(handler), selectors));
    }

    /// @notice After every call, the four properties below (one campaign checks them all; each
    /// failure names its property). The handler never reverts, so a revert is a failure too.
    /// forge-config: default.invariant.depth = 60
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_BatchExitSafety() public view {
        checkVaultCoversWhatItOwes();
        checkNoOutputPaidTwice();
        checkBatchPaysAtMostItsReserve();
        checkStruckOrUnprovenNeverPaid();
        checkDebtPool();
        checkHonestStepsSucceed();
    }

    /// @notice (e) The debt pool (spec: EXIT-16) holds exactly what batches released into it minus what
    /// it repaid into reserves, credited to accounts and freed; it is empty whenever no debt is
    /// outstanding; and a claim is only ever paid in full (or nothing, when void).
    function checkDebtPool() public view {
        PlasmaFramework fw = handler.fw();
        for (uint256 t = 0; t < 2; ++t) {
            address token = handler.tokenAt(t);
            (uint256 head, uint256 tail,, uint256 pool) = fw.debtBook(token);
            assertEq(
                pool + handler.ghostToppedUp(token) + handler.ghostDebtCredited(token) + handler.ghostPoolFreed(token),
                handler.ghostToPool(token),
                "(e) debt pool not conserved"
            );
            assertTrue(pool == 0 || head < tail, "(e) a pool without debts");
        }
        assertEq(handler.ghostPartialPaid(), 0, "(e) a claim was paid in part");
    }

    /// @notice (a) Per token: the vault never credits more than was deposited; what processings
    /// credited is exactly what standard exits were paid plus what batches reserved minus what batches
    /// released to the vault and the debt pool freed; and the framework's balance covers the free
    /// deposits, every batch's reserve, the debt pool and every withdrawable amount (with nothing else
    /// in the framework, exactly).
    function checkVaultCoversWhatItOwes() public view {
        PlasmaFramework fw = handler.fw();
        for (uint256 t = 0; t < 2; ++t) {
            address token = handler.tokenAt(t);
            uint256 deposited = fw.totalDeposited(token);
            uint256 credited = fw.totalCredited(token);
            assertEq(deposited, handler.ghostDeposited(token), "deposits");
            assertLe(credited, deposited, "(a) credited > deposited");
            (uint256 reserved,, uint256 holding,) = handler.batchBooks(token);
            assertEq(
                credited + handler.ghostReleased(token) + handler.ghostPoolFreed(token),
                handler.ghostSeCredited(token) + reserved,
                "(a) credited != standard exits paid + reserved - released - pool freed"
            );
            (,,, uint256 pool) = fw.debtBook(token);
            uint256 owed = deposited - credited + holding + pool;
            for (uint256 i = 0; i < handler.nAccounts(); ++i) {
                owed += fw.withdrawable(handler.account(i), token);
            }
            uint256 balance = token == address(0) ? address(fw).balance : handler.tok().balanceOf(address(fw));
            assertGe(balance, owed, "(a) insolvent");
            assertEq(balance, owed, "(a) the framework holds money nobody is owed");
        }
    }

    /// @notice (b) No output is settled twice across standard exits and batch payouts.
    function checkNoOutputPaidTwice() public view {
        assertEq(handler.ghostPaidTwice(), 0, "(b) an output was paid twice");
    }

    /// @notice (c) A batch pays at most what it reserved and was repaid on its debt: per batch, paid +
    /// still reserved <= reserved at processing + repaid; per token, reserved + repaid = paid + still
    /// reserved + released (to the vault or the debt pool).
    function checkBatchPaysAtMostItsReserve() public view {
        for (uint256 t = 0; t < 2; ++t) {
            address token = handler.tokenAt(t);
            (uint256 reserved, uint256 paid, uint256 holding, uint256 overpaid) = handler.batchBooks(token);
            assertEq(overpaid, 0, "(c) a batch paid more than it reserved");
            assertEq(
                reserved + handler.ghostToppedUp(token),
                paid + holding + handler.ghostReleased(token) + handler.ghostToPool(token),
                "(c) reserve not conserved"
            );
        }
    }

    /// @notice (d) A struck claim, or one that claims no output exactly, is never paid.
    function checkStruckOrUnprovenNeverPaid() public view {
        assertEq(handler.ghostStruckPaid(), 0, "(d) a struck claim was paid");
        assertEq(handler.ghostUnprovenPaid(), 0, "(d) an unproven claim was paid");
        (uint256 struckButPaid,) = handler.auditClaims();
        assertEq(struckButPaid, 0, "(d) a struck or unproven claim is in state paid");
    }

    /// @notice Honest owners, the watchtower and challengers are never refused a step the rules allow.
    function checkHonestStepsSucceed() public view {
        assertEq(
            handler.ghostHonestFailures(),
            0,
            string.concat(
                "an honest step was refused: ",
                string(abi.encodePacked(handler.lastHonestStep())),
                " ",
                vm.toString(handler.lastHonestFailure())
            )
        );
    }

    /// @notice At the end of every run, with every duty done, every exit processed, every real claim
    /// paid out and every unproven one released: the same properties, and no real claim left unpaid.
    function afterInvariant() public {
        handler.drain();
        (, uint256 unpaidLive) = handler.auditClaims();
        assertEq(unpaidLive, 0, "a real claim of a processed batch was left unpaid");
        checkVaultCoversWhatItOwes();
        checkNoOutputPaidTwice();
        checkBatchPaysAtMostItsReserve();
        checkStruckOrUnprovenNeverPaid();
        checkDebtPool();
        checkHonestStepsSucceed();
    }
}

/// @notice The handler reaches every protocol step it is meant to exercise: a fixed pseudo-random
/// sequence (so a change that makes the handler skip a step fails here, not silently).
contract BatchExitHandlerCoverageTest is PlasmaFixtures {
    function setUp() public override {}

    /// @dev Named `invariant…` so that `forge snapshot --no-match-test 'invariant|testFuzz'` leaves it
    /// out: its gas is that of a long campaign, not a figure to track.
    function test_invariantBatchHandlerReachesEveryStep() public {
        BatchExitHandler h = new BatchExitHandler();
        for (uint256 i = 0; i < 600; ++i) {
            uint256 r = uint256(keccak256(abi.encode("batch-coverage", i)));
            uint256 a = r >> 8;
            uint256 b = r >> 64;
            uint256 c = r >> 128;
            uint256 op = r % 18;
            bool flag = (r >> 200) % 2 == 0;
            if (op <= 1) h.deposit(a, b, (r >> 201) % 4 == 0);
            else if (op <= 3) h.pay(a, b);
            else if (op == 4) h.mallorySpends(a);
            else if (op <= 6) h.startBatch(a, b, c, (r >> 201) % 4 == 0);
            else if (op == 7) h.malloryBatch(a, b, (r >> 201) % 4 == 0);
            else if (op == 8) h.startStandardExit(a);
            else if (op == 9) h.strike(a, b);
            else if (op == 10) h.challengeStandardExit(a);
            else if (op == 11) h.demand(a, b, flag);
            else if (op == 12) h.answer(a);
            else if (op == 13) h.advance(a % (2 * PERIOD), b);
            else if (op == 14) h.payout(a, b);
            else if (op == 16) h.malloryDoubleExit(a, flag);
            else if (op == 17) h.watch();
            else if (a % 4 == 0) h.payoutUnproven(a);
            else if (a % 4 == 1) h.collect(a);
            else if (a % 4 == 2) h.settle(b);
            else h.withdraw(a, flag);
        }
        h.drain();
        string[28] memory steps = [
            "watched",
            "fakeProcessed",
            "doubleExit",
            "blockCommitted",
            "mallorySpent",
            "batchStarted",
            "batchAuthorized",
            "groupSkipped",
            "malloryBatch",
            "seStarted",
            "chal6",
            "chal7",
            "chal8",
            "release6",
            "chal10",
            "seChallenged",
            "demanded",
            "answered",
            "collected",
            "batchProcessed",
            "sePaid",
            "claimPaid",
            "payoutVoid",
            "unprovenRefused",
            "withdrawn",
            "debtsSettled",
            "claimDeferred",
            "reserveRepaid"
        ];
        for (uint256 k = 0; k < steps.length; ++k) {
            console.log(steps[k], h.done(bytes32(bytes(steps[k]))));
        }
        assertEq(
            h.ghostHonestFailures(),
            0,
            string.concat(
                "an honest step was refused: ",
                string(abi.encodePacked(h.lastHonestStep())),
                " ",
                vm.toString(h.lastHonestFailure())
            )
        );
        for (uint256 k = 0; k < steps.length; ++k) {
            assertTrue(h.done(bytes32(bytes(steps[k]))) > 0, steps[k]);
        }
        assertEq(h.ghostPaidTwice(), 0);
        assertEq(h.ghostStruckPaid() + h.ghostUnprovenPaid(), 0);
        (, uint256 unpaidLive) = h.auditClaims();
        assertEq(unpaidLive, 0);
    }
}
