// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../../contracts/PlasmaFramework.sol";
import {PlasmaFixtures} from "../utils/PlasmaFixtures.sol";
import {console} from "../utils/console.sol";
import {InFlightExitHandler} from "./InFlightExitHandler.sol";

/// @notice Random sequences of deposits, included and in-flight payments, mallory's double spends,
/// in-flight exits (started by a party), piggybacks of inputs and outputs, standard exits of the
/// same outputs, canonicity challenges and responses, piggyback challenges, deletions, processing
/// and withdrawals, against the real framework and both exit games (spec: EXIT-1..11, CHAL-1..5,
/// OUT-2, BOND-1). The handler's ghost model says who is owed what.
contract InFlightExitInvariantsTest is PlasmaFixtures {
    InFlightExitHandler internal handler;

    function setUp() public override {
        handler = new InFlightExitHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](15);
        selectors[0] = InFlightExitHandler.deposit.selector;
        selectors[1] = InFlightExitHandler.pay.selector;
        selectors[2] = InFlightExitHandler.doubleSpend.selector;
        selectors[3] = InFlightExitHandler.startInFlightExit.selector;
        selectors[4] = InFlightExitHandler.piggybackOutput.selector;
        selectors[5] = InFlightExitHandler.piggybackInput.selector;
        selectors[6] = InFlightExitHandler.startStandardExit.selector;
        selectors[7] = InFlightExitHandler.deleteInFlightExit.selector;
        selectors[8] = InFlightExitHandler.stealChallenge.selector;
        selectors[9] = InFlightExitHandler.advance.selector;
        selectors[10] = InFlightExitHandler.withdraw.selector;
        selectors[11] = InFlightExitHandler.pay.selector; // payments twice as often: more to exit
        selectors[12] = InFlightExitHandler.operatorGrief.selector;
        selectors[13] = InFlightExitHandler.piggybackSpent.selector;
        selectors[14] = InFlightExitHandler.malloryReexit.selector;
        targetSelector(FuzzSelector(address(handler), selectors));
    }

    /// @notice After every call: the five properties below. One campaign checks them all (each
    /// failure names its property): one campaign per property would cost five times as much for
    /// the same sequences. Deeper than the default (100 calls): the cheats that matter take several
    /// steps (exit, process, spend again, exit in flight, piggyback). The handler never reverts, so a
    /// revert is a failure too.
    /// forge-config: default.invariant.depth = 100
    /// forge-config: default.invariant.fail-on-revert = true
    function invariant_InFlightExitSafety() public view {
        checkVaultNeverPaysMoreThanDeposited();
        checkNoOutputPaidTwice();
        checkBondsConserved();
        checkHonestStepsSucceed();
        checkCheaterNeverAhead();
    }

    /// @notice The vault never credits more of a token than was deposited, and holds what it owes.
    function checkVaultNeverPaysMoreThanDeposited() public view {
        PlasmaFramework fw = handler.fw();
        assertEq(fw.totalDeposited(address(0)), handler.ghostDeposited(), "deposits");
        assertLe(fw.totalCredited(address(0)), fw.totalDeposited(address(0)), "credited > deposited");
        uint256 owed = fw.totalDeposited(address(0)) - fw.totalCredited(address(0));
        for (uint256 i = 0; i < handler.nAccounts(); ++i) {
            owed += fw.withdrawable(handler.account(i), address(0));
        }
        assertGe(address(fw).balance, owed, "insolvent");
        // Every wei that came in is in the framework, a game, or was withdrawn.
        assertEq(
            address(fw).balance + address(handler.se()).balance + address(handler.ife()).balance
                + handler.ghostWithdrawn(),
            handler.ghostEthIn(),
            "ETH leaked"
        );
    }

    /// @notice No output is paid twice, each processing pays exactly what the settlement rule
    /// says, and no deposit's lineage is paid more than the deposit.
    function checkNoOutputPaidTwice() public view {
        assertEq(handler.ghostPaidTwice(), 0, "an output was paid twice");
        assertEq(handler.ghostUnexpectedPayout(), 0, "a processing paid other than the rule says");
        assertEq(handler.lineageExcess(), 0, "a deposit's outputs were paid more than the deposit");
    }

    /// @notice Every bond wei is held by a game, or credited back, to a challenger or to a processor
    /// (a burned share stays in its game).
    function checkBondsConserved() public view {
        bytes32 at = handler.firstImbalanceAt();
        uint256 n = 0;
        while (n < 32 && at[n] != 0) {
            ++n;
        }
        bytes memory name = new bytes(n);
        for (uint256 i = 0; i < n; ++i) {
            name[i] = at[i];
        }
        assertTrue(
            handler.ghostBondImbalance() == 0, string.concat("bond wei unaccounted for, first in ", string(name))
        );
    }

    /// @notice Honest users and the watcher are never refused a step the protocol allows them.
    function checkHonestStepsSucceed() public view {
        assertEq(
            handler.ghostHonestFailures(),
            0,
            string.concat("an honest step was refused, error ", vm.toString(handler.lastHonestFailure()))
        );
    }

    /// @notice The cheater never ends up with more than she legitimately received plus her bonds.
    function checkCheaterNeverAhead() public view {
        assertLe(handler.malloryTotal(), handler.ghostMalloryBudget() + handler.ghostMalloryBondsIn(), "mallory ahead");
    }

    /// @notice At the end of every run, with every duty done and every exit processed, honest users
    /// got exactly their entitlement, and the in-flight game holds no bond but the burned halves of
    /// defeated ones (BOND-1).
    function afterInvariant() public {
        handler.drain();
        (uint256 owed, uint256 paid, uint256 unpaid) = handler.auditHonest();
        assertEq(unpaid, 0, "an honest output was not paid");
        assertEq(paid, owed);
        assertEq(
            address(handler.ife()).balance, handler.ifeBurned(), "the in-flight game holds other bonds than the burned"
        );
        checkVaultNeverPaysMoreThanDeposited();
        checkNoOutputPaidTwice();
        checkBondsConserved();
        checkHonestStepsSucceed();
        checkCheaterNeverAhead();
    }
}

/// @notice The handler reaches every protocol step it is meant to exercise: a fixed pseudo-random
/// sequence (so a change that makes the handler skip a step fails here, not silently).
contract InFlightExitHandlerCoverageTest is PlasmaFixtures {
    function setUp() public override {}

    /// @dev Named `invariant…` so that `forge snapshot --no-match-test 'invariant|testFuzz'` leaves it
    /// out: its gas is that of a 600-step campaign, not a figure to track.
    function test_invariantHandlerReachesEveryStep() public {
        InFlightExitHandler h = new InFlightExitHandler();
        for (uint256 i = 0; i < 600; ++i) {
            uint256 r = uint256(keccak256(abi.encode("coverage-2", i)));
            uint256 a = r >> 8;
            uint256 b = r >> 64;
            uint256 op = r % 15;
            if (op == 0) h.deposit(a, b);
            else if (op <= 2) h.pay(a, b, r >> 128, (r >> 200) % 2 == 0);
            else if (op == 3) h.doubleSpend(a, (r >> 200) % 2 == 0);
            else if (op == 4) h.startInFlightExit(a);
            else if (op == 5) h.piggybackOutput(a, b);
            else if (op == 6) h.piggybackInput(a);
            else if (op == 7) h.startStandardExit(a);
            else if (op == 8) h.deleteInFlightExit(a);
            else if (op == 9) h.stealChallenge(a);
            else if (op == 10) h.advance(a % (PERIOD / 3), b);
            else if (op == 11) h.withdraw(a);
            else if (op == 12) h.operatorGrief(a);
            else if (op == 13) h.piggybackSpent(a, (r >> 200) % 2 == 0);
            else h.malloryReexit(a);
        }
        h.drain();
        string[15] memory steps = [
            "ifeStart",
            "ifeRestart",
            "piggybackInput",
            "piggybackOutput",
            "chal1NotIncluded",
            "chal1Included",
            "chal2Response",
            "chal3InputSpent",
            "chal4OutputSpent",
            "seChallenge",
            "delete",
            "settledCanonical",
            "settledNotCanonical",
            "sePaid",
            "seStartSpent"
        ];
        for (uint256 k = 0; k < steps.length; ++k) {
            uint256 n = h.done(bytes32(bytes(steps[k])));
            console.log(steps[k], n);
        }
        assertEq(
            h.ghostHonestFailures(),
            0,
            string.concat("an honest step was refused: ", vm.toString(h.lastHonestFailure()))
        );
        for (uint256 k = 0; k < steps.length; ++k) {
            assertTrue(h.done(bytes32(bytes(steps[k]))) > 0, steps[k]);
        }

        (uint256 owed, uint256 paid, uint256 unpaid) = h.auditHonest();
        assertEq(unpaid, 0, "an honest output was not paid");
        assertEq(paid, owed);
    }
}
