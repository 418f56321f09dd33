// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {ExitGameBase} from "../contracts/exits/ExitGameBase.sol";
import {StandardExitGame} from "../contracts/exits/StandardExitGame.sol";
import {IPlasmaFramework} from "../contracts/interfaces/IPlasmaFramework.sol";
import {BondLib} from "../contracts/libraries/BondLib.sol";
import {ExitPriority} from "../contracts/libraries/ExitPriority.sol";
import {PlasmaEip712} from "../contracts/libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../contracts/libraries/UtxoPosLib.sol";
import {PlasmaFixtures} from "./utils/PlasmaFixtures.sol";
import {Vm} from "./utils/Vm.sol";

contract StandardExitGameTest is PlasmaFixtures {
    uint256 internal constant BOUNTY = SE_BOND / 2;
    uint256 internal constant REWARD = SE_BOND / 2;

    // ---------------------------------------------------------------- helpers

    function _args(uint256 utxoPos, bytes memory txBytes) internal view returns (StandardExitGame.StartArgs memory) {
        return _startArgs(utxoPos, txBytes);
    }

    function _exit(address who, uint256 utxoPos, bytes memory txBytes) internal {
        StandardExitGame.StartArgs memory args = _args(utxoPos, txBytes);
        vm.prank(who);
        seGame.startStandardExit{value: SE_BOND}(args);
    }

    /// @dev alice deposits 10 ether, pays 4 to bob with 6 change, in child block 1000.
    function _aliceToBob()
        internal
        returns (uint256 depositPos, uint256 bobPos, uint256 changePos, bytes memory payment)
    {
        (depositPos,) = _depositEth(alice, 10 ether);
        uint256[] memory ins = new uint256[](1);
        ins[0] = depositPos;
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](2);
        outs[0] = _out(bob, address(0), 4 ether);
        outs[1] = _out(alice, address(0), 6 ether);
        payment = _payment(ins, outs);
        uint256 blknum = _submit1(payment);
        bobPos = UtxoPosLib.pack(blknum, 0, 0);
        changePos = UtxoPosLib.pack(blknum, 0, 1);
    }

    function _authorize(uint256 ownerKey, address exitor, uint256 deadline, uint256 nonce)
        internal
        view
        returns (StandardExitGame.Authorization memory)
    {
        bytes32 digest = PlasmaEip712.digest(
            framework.domainSeparator(), PlasmaEip712.hashExitAuthorization(exitor, deadline, nonce)
        );
        return StandardExitGame.Authorization(deadline, nonce, _sign(ownerKey, digest));
    }

    // ---------------------------------------------------------------- start

    function test_StartExitOfDeposit() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        bytes32 outputId = PlasmaTx.outputId(keccak256(depositTx), false, 0, pos);
        vm.expectEmit(address(seGame));
        emit StandardExitGame.ExitStarted(pos, alice, address(0), 1 ether, outputId, uint64(T0 + PERIOD), alice);
        _exit(alice, pos, depositTx);
        (
            address owner,
            uint88 bond,
            StandardExitGame.Status status,
            address token,
            uint64 startedAt,
            uint256 amount,
            bytes32 id,
        ) = seGame.exits(pos);
        assertEq(startedAt, block.timestamp);
        assertEq(owner, alice);
        assertEq(bond, SE_BOND);
        assertTrue(status == StandardExitGame.Status.Active);
        assertEq(token, address(0));
        assertEq(amount, 1 ether);
        assertEq(id, outputId);
        (uint256 head, uint256 len) = framework.queueHead(address(0));
        assertEq(len, 1);
        assertEq(ExitPriority.exitableAt(head), T0 + PERIOD); // deposits: now + p (EXIT-2)
        assertEq(ExitPriority.position(head), pos);
    }

    function test_FreshChildBlockOutputWaitsTwoPeriods() public {
        (, uint256 bobPos,, bytes memory payment) = _aliceToBob();
        skip(1 days);
        _exit(bob, bobPos, payment);
        (uint256 head,) = framework.queueHead(address(0));
        assertEq(ExitPriority.exitableAt(head), T0 + 2 * PERIOD); // block time + 2p > now + p
    }

    function test_OldChildBlockOutputWaitsOnePeriod() public {
        (, uint256 bobPos,, bytes memory payment) = _aliceToBob();
        skip(30 days);
        _exit(bob, bobPos, payment);
        (uint256 head,) = framework.queueHead(address(0));
        assertEq(ExitPriority.exitableAt(head), block.timestamp + PERIOD);
    }

    function test_OlderOutputsExitFirst() public {
        // An exit from a newer block started first still queues behind an older output's exit.
        (, uint256 bobPos,, bytes memory payment) = _aliceToBob();
        (uint256 carolDeposit, bytes memory carolTx) = _depositEth(carol, 1 ether);
        _exit(bob, bobPos, payment);
        _exit(carol, carolDeposit, carolTx);
        (uint256 head,) = framework.queueHead(address(0));
        // carol's deposit is exitable at now + p, bob's child output at block + 2p: carol first.
        assertEq(ExitPriority.position(head), carolDeposit);
    }

    function test_RevertWhen_WrongBond() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        StandardExitGame.StartArgs memory args = _args(pos, depositTx);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameWrongBond.selector, SE_BOND, 1));
        seGame.startStandardExit{value: 1}(args);
    }

    function test_RevertWhen_NotOwner() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        StandardExitGame.StartArgs memory args = _args(pos, depositTx);
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitNotOwner.selector, alice, mallory));
        seGame.startStandardExit{value: SE_BOND}(args);
    }

    function test_RevertWhen_ExitStartedTwice() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        _exit(alice, pos, depositTx);
        StandardExitGame.StartArgs memory args = _args(pos, depositTx);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitAlreadyStarted.selector, pos));
        seGame.startStandardExit{value: SE_BOND}(args);
    }

    function test_RevertWhen_BadProof() public {
        (, uint256 bobPos,, bytes memory payment) = _aliceToBob();
        StandardExitGame.StartArgs memory args = _args(bobPos, payment);
        args.inclusionProof[0] ^= 0x01;
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, bobPos));
        seGame.startStandardExit{value: SE_BOND}(args);
    }

    function test_RevertWhen_WrongBlockTimestamp() public {
        (, uint256 bobPos,, bytes memory payment) = _aliceToBob();
        StandardExitGame.StartArgs memory args = _args(bobPos, payment);
        args.blockTimestamp -= 1; // an exiter cannot backdate its block to gain priority
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, bobPos));
        seGame.startStandardExit{value: SE_BOND}(args);
    }

    function test_RevertWhen_UnknownBlock() public {
        bytes memory payment = _pay1(1e9, bob, address(0), 1);
        StandardExitGame.StartArgs memory args =
            StandardExitGame.StartArgs(5000 * 1e9, payment, new bytes(512), uint64(T0));
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameUnknownBlock.selector, 5000));
        seGame.startStandardExit{value: SE_BOND}(args);
    }

    function test_RevertWhen_NoSuchOutput() public {
        (, uint256 bobPos,, bytes memory payment) = _aliceToBob();
        uint256 pos = bobPos + 2; // the payment has two outputs
        StandardExitGame.StartArgs memory args = _args(bobPos, payment);
        args.utxoPos = pos;
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameNoSuchOutput.selector, pos));
        seGame.startStandardExit{value: SE_BOND}(args);
    }

    function test_RevertWhen_InvalidPosition() public {
        (, bytes memory depositTx) = _depositEth(alice, 1 ether);
        StandardExitGame.StartArgs memory args = StandardExitGame.StartArgs(7, depositTx, new bytes(512), uint64(T0));
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(UtxoPosLib.UtxoPosInvalid.selector, 7));
        seGame.startStandardExit{value: SE_BOND}(args);
    }

    function test_RevertWhen_DepositTxInChildBlock() public {
        // A byzantine operator commits a "deposit" in a child block: it cannot be exited as one.
        bytes memory fakeDeposit = _depositTx(mallory, address(0), 100 ether);
        uint256 blknum = _submit1(fakeDeposit);
        uint256 pos = UtxoPosLib.pack(blknum, 0, 0);
        StandardExitGame.StartArgs memory args = _args(pos, fakeDeposit);
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameWrongBlockKind.selector, pos, 2));
        seGame.startStandardExit{value: SE_BOND}(args);
    }

    function test_RevertWhen_OutputFinalized() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = PlasmaTx.outputId(keccak256(depositTx), false, 0, pos);
        vm.prank(address(seGame)); // as an in-flight exit would
        framework.finalizeOutputs(ids);
        StandardExitGame.StartArgs memory args = _args(pos, depositTx);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitOutputFinalized.selector, pos));
        seGame.startStandardExit{value: SE_BOND}(args);
    }

    // ---------------------------------------------------------------- challenge

    function test_ChallengeWithSpend() public {
        (uint256 depositPos,, uint256 changePos, bytes memory payment) = _aliceToBob();
        (, bytes memory depositTx) = (depositPos, _depositTx(alice, address(0), 10 ether));
        _exit(alice, depositPos, depositTx); // alice exits the deposit she already spent
        bytes memory sig = _signTx(aliceKey, payment);
        vm.expectEmit(address(seGame));
        emit StandardExitGame.ExitChallenged(depositPos, carol, keccak256(payment), REWARD);
        vm.prank(carol);
        seGame.challengeStandardExit(depositPos, payment, 0, sig);
        assertEq(framework.withdrawable(carol, address(0)), REWARD);
        (,, StandardExitGame.Status status,,,,,) = seGame.exits(depositPos);
        assertTrue(status == StandardExitGame.Status.Challenged);
        changePos; // unused here
        // Processing skips the challenged exit and pays nothing.
        skip(PERIOD);
        framework.processExits(address(0), 0, 1);
        assertEq(framework.withdrawable(alice, address(0)), 0);
        assertEq(framework.totalCredited(address(0)), 0);
    }

    function test_RevertWhen_ChallengeWithWrongSigner() public {
        (uint256 depositPos,,, bytes memory payment) = _aliceToBob();
        _exit(alice, depositPos, _depositTx(alice, address(0), 10 ether));
        bytes memory sig = _signTx(malloryKey, payment);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitBadSpendSignature.selector, mallory, alice));
        seGame.challengeStandardExit(depositPos, payment, 0, sig);
    }

    function test_RevertWhen_ChallengeWithNonSpend() public {
        (uint256 depositPos,,, bytes memory payment) = _aliceToBob();
        (uint256 other, bytes memory otherTx) = _depositEth(alice, 1 ether);
        _exit(alice, other, otherTx);
        bytes memory sig = _signTx(aliceKey, payment);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitNotASpend.selector, other, depositPos));
        seGame.challengeStandardExit(other, payment, 0, sig);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitNotASpend.selector, other, 0));
        seGame.challengeStandardExit(other, payment, 3, sig);
    }

    function test_RevertWhen_ChallengeInactiveExit() public {
        bytes memory payment = _pay1(1e9, bob, address(0), 1);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitNotActive.selector, 1e9));
        seGame.challengeStandardExit(1e9, payment, 0, new bytes(65));
    }

    function test_RevertWhen_ChallengeSignatureMalformed() public {
        (uint256 depositPos,,, bytes memory payment) = _aliceToBob();
        _exit(alice, depositPos, _depositTx(alice, address(0), 10 ether));
        vm.expectRevert(abi.encodeWithSelector(PlasmaEip712.PlasmaSignatureInvalid.selector, 0));
        seGame.challengeStandardExit(depositPos, payment, 0, new bytes(64));
    }

    // ---------------------------------------------------------------- process

    function test_ProcessPaysOwnerBondAndBounty() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        _exit(alice, pos, depositTx);
        skip(PERIOD);
        vm.prank(carol);
        framework.processExits(address(0), 0, 10);
        assertEq(framework.withdrawable(alice, address(0)), 1 ether + SE_BOND - BOUNTY);
        assertEq(framework.withdrawable(carol, address(0)), BOUNTY);
        uint256 before = alice.balance;
        vm.prank(alice);
        framework.withdraw(address(0));
        assertEq(alice.balance - before, 1 ether + SE_BOND - BOUNTY);
        assertEq(address(framework).balance, BOUNTY);
    }

    function test_ProcessStopsAtFirstNotExitable() public {
        (uint256 a, bytes memory aTx) = _depositEth(alice, 1 ether);
        _exit(alice, a, aTx);
        skip(1 days);
        (uint256 b, bytes memory bTx) = _depositEth(bob, 2 ether);
        _exit(bob, b, bTx);
        skip(PERIOD - 1 days);
        framework.processExits(address(0), 0, 10);
        (, uint256 len) = framework.queueHead(address(0));
        assertEq(len, 1); // bob's exit is not due yet
        assertEq(framework.withdrawable(bob, address(0)), 0);
        vm.expectRevert(); // nothing due now
        framework.processExits(address(0), 0, 10);
    }

    function test_RevertWhen_QueueHeadChanged() public {
        (uint256 a, bytes memory aTx) = _depositEth(alice, 1 ether);
        _exit(alice, a, aTx);
        skip(PERIOD);
        (uint256 head,) = framework.queueHead(address(0));
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkQueueHeadChanged.selector, head + 1, head));
        framework.processExits(address(0), head + 1, 1);
        framework.processExits(address(0), head, 1);
    }

    function test_ExitVoidWhenOutputFinalizedMeanwhile() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        _exit(alice, pos, depositTx);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = PlasmaTx.outputId(keccak256(depositTx), false, 0, pos);
        vm.prank(address(seGame)); // as a processed in-flight exit would
        framework.finalizeOutputs(ids);
        skip(PERIOD);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.Credited(alice, address(0), SE_BOND);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.StandardExitVoided(ids[0]);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.ExitsProcessed(address(0), address(this), 1, 0);
        framework.processExits(address(0), 0, 1);
        assertEq(framework.withdrawable(alice, address(0)), SE_BOND); // bond back, no payout
        assertEq(framework.withdrawable(address(this), address(0)), 0); // no bounty from a void exit
        assertEq(framework.totalCredited(address(0)), 0);
    }

    /// @dev Issue 19: a settled standard exit writes nothing into the framework's set; its record is
    /// the mark (OUT-2). Every reader of the book must still see it: the framework's view, and
    /// `finalizeOutputs` (how the in-flight and batch games finalize) reports it already finalized,
    /// emits nothing and pays nothing; a new standard exit of it is refused.
    function test_SettledExitIsFinalizedForEveryGame() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        bytes32 id = PlasmaTx.outputId(keccak256(depositTx), false, 0, pos);
        _exit(alice, pos, depositTx);
        assertFalse(framework.isOutputFinalized(id));
        assertFalse(seGame.isOutputSettled(id));
        skip(PERIOD);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.StandardExitPaid(id, alice, address(0), 1 ether, alice, SE_BOND - BOUNTY);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.ExitsProcessed(address(0), address(this), 1, BOUNTY);
        framework.processExits(address(0), 0, 1);
        assertEq(framework.withdrawable(alice, address(0)), 1 ether + SE_BOND - BOUNTY);
        assertEq(framework.withdrawable(address(this), address(0)), BOUNTY);
        assertTrue(seGame.isOutputSettled(id));
        assertTrue(framework.isOutputFinalized(id));

        bytes32[] memory ids = new bytes32[](2);
        ids[0] = id;
        ids[1] = keccak256("another output");
        vm.prank(address(seGame)); // as a processed in-flight exit or a batch payout would
        assertEq(framework.finalizeOutputs(ids), 1); // bit 0: already finalized by the standard exit
        assertTrue(framework.isOutputFinalized(ids[1]));
        (,, StandardExitGame.Status status,,,, bytes32 shownId,) = seGame.exits(pos);
        assertTrue(status == StandardExitGame.Status.Settled);
        assertEq(shownId, bytes32(0)); // cleared once settled, as before
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitAlreadyStarted.selector, pos));
        _exit(alice, pos, depositTx);
    }

    /// @dev The record is keyed by output id: the same payment committed at two positions (an
    /// operator's duplicate) is one output (OUT-1) and gets one standard exit, never two records.
    function test_RevertWhen_SameOutputIdAtTwoPositions() public {
        (, uint256 bobPos,, bytes memory payment) = _aliceToBob();
        uint256 again = UtxoPosLib.pack(_submit1(payment), 0, 0);
        vm.prank(bob);
        seGame.startStandardExit{value: SE_BOND}(_args(bobPos, payment));
        StandardExitGame.StartArgs memory second = _args(again, payment);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitAlreadyStarted.selector, again));
        seGame.startStandardExit{value: SE_BOND}(second);
    }

    function test_RevertWhen_SettleStandardExitNotFromTheStandardGame() public {
        vm.deal(address(this), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotExitGame.selector, address(this)));
        framework.settleStandardExit{value: SE_BOND}(keccak256("x"), address(0), alice, 1 ether, alice, BOUNTY);
    }

    /// @dev Issue 19: a settled standard exit emits one `StandardExitPaid` for its output's finalization
    /// and two credits, and the processor's bounties are summed into one credit that `ExitsProcessed`
    /// tells, held in transient storage until the end of the call. What an indexer rebuilds from the
    /// events (`Credited`, `StandardExitPaid`, `ExitsProcessed`) must be exactly the ledger, and the
    /// ledger must hold exactly the money that came in: the exits' amounts and their bonds. Random
    /// owners, amounts, void exits, delegated bond owners and processors, with some pairs of calls in
    /// one transaction (a bounty left in the transient sum would be paid twice there).
    function testFuzz_SettlementEventsTellEveryCredit(uint256 seed) public {
        uint256 n = 1 + seed % 12;
        address[3] memory owners = [alice, bob, carol];
        uint256[3] memory keys = [aliceKey, bobKey, carolKey];
        uint256 paidAmounts;
        for (uint256 i = 0; i < n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            uint256 o = r % 3;
            uint256 amount = 1 + (r >> 8) % 1 ether;
            (uint256 pos, bytes memory depositTx) = _depositEth(owners[o], amount);
            if ((r >> 80) % 3 == 0) {
                // started by mallory for the owner: the bond (and its refund) is mallory's
                StandardExitGame.Authorization memory auth = _authorize(keys[o], mallory, T0 + 30 days, 0);
                vm.deal(mallory, SE_BOND);
                vm.prank(mallory);
                seGame.startStandardExitFor{value: SE_BOND}(_args(pos, depositTx), auth);
            } else {
                _exit(owners[o], pos, depositTx);
            }
            if ((r >> 96) % 4 == 0) {
                bytes32[] memory ids = new bytes32[](1);
                ids[0] = PlasmaTx.outputId(keccak256(depositTx), false, 0, pos);
                vm.prank(address(seGame)); // as a processed in-flight exit would: this exit is void
                framework.finalizeOutputs(ids);
            } else {
                paidAmounts += amount;
            }
        }
        skip(PERIOD);
        TwoProcessCalls pair = new TwoProcessCalls();
        vm.recordLogs();
        uint256 left = n;
        for (uint256 c = 0; left != 0; ++c) {
            uint256 r = uint256(keccak256(abi.encode(seed, "call", c)));
            uint256 k = 1 + r % left;
            if (k < left && (r >> 8) % 2 == 0) {
                uint256 k2 = 1 + (r >> 16) % (left - k);
                pair.run(framework, k, k2);
                left -= k + k2;
            } else {
                vm.prank((r >> 24) % 2 == 0 ? bob : address(this));
                framework.processExits(address(0), 0, k);
                left -= k;
            }
        }
        Vm.Log[] memory logs = vm.getRecordedLogs();

        address[6] memory accounts = [alice, bob, carol, mallory, address(this), address(pair)];
        uint256[6] memory told;
        uint256 paidInCall;
        uint256 settled;
        for (uint256 j = 0; j < logs.length; ++j) {
            if (logs[j].emitter != address(framework)) continue;
            bytes32 sig = logs[j].topics[0];
            if (sig == PlasmaFramework.Credited.selector) {
                _tell(accounts, told, address(uint160(uint256(logs[j].topics[1]))), abi.decode(logs[j].data, (uint256)));
            } else if (sig == PlasmaFramework.StandardExitPaid.selector) {
                (uint256 amount, address bondOwner, uint256 refund) =
                    abi.decode(logs[j].data, (uint256, address, uint256));
                _tell(accounts, told, address(uint160(uint256(logs[j].topics[2]))), amount);
                _tell(accounts, told, bondOwner, refund);
                assertEq(refund, SE_BOND - BOUNTY);
                ++paidInCall;
                ++settled;
            } else if (sig == PlasmaFramework.StandardExitVoided.selector) {
                ++settled;
            } else if (sig == PlasmaFramework.ExitsProcessed.selector) {
                (, uint256 bounty) = abi.decode(logs[j].data, (uint256, uint256));
                assertEq(bounty, paidInCall * BOUNTY, "a call's bounty is its own paid exits'");
                _tell(accounts, told, address(uint160(uint256(logs[j].topics[2]))), bounty);
                paidInCall = 0;
            }
        }
        assertEq(settled, n);
        uint256 total;
        for (uint256 a = 0; a < accounts.length; ++a) {
            assertEq(framework.withdrawable(accounts[a], address(0)), told[a], "the events tell the ledger");
            total += told[a];
        }
        assertEq(total, paidAmounts + n * SE_BOND, "credits are the exits paid and their bonds, once");
        assertEq(framework.totalCredited(address(0)), paidAmounts);
    }

    function _tell(address[6] memory accounts, uint256[6] memory told, address who, uint256 amount) internal pure {
        for (uint256 a = 0; a < accounts.length; ++a) {
            if (accounts[a] == who) {
                told[a] += amount;
                return;
            }
        }
        revert("credit to an unknown account");
    }

    // ---------------------------------------------------------------- delegated and batched

    function test_DelegatedExitPaysOwnerAndKeepsBondWithExitor() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        StandardExitGame.Authorization memory auth = _authorize(aliceKey, carol, T0 + 1 days, 0);
        StandardExitGame.StartArgs memory args = _args(pos, depositTx);
        vm.prank(carol);
        seGame.startStandardExitFor{value: SE_BOND}(args, auth);
        (, address bondOwner) = _bondOwner(pos);
        assertEq(bondOwner, carol);
        skip(PERIOD);
        framework.processExits(address(0), 0, 1);
        assertEq(framework.withdrawable(alice, address(0)), 1 ether);
        // Issue 19: the record's `delegated` flag, not a read of `bondOwner`, sends the bond to carol.
        assertEq(framework.withdrawable(carol, address(0)), SE_BOND - BOUNTY);
        (, bondOwner) = _bondOwner(pos);
        assertEq(bondOwner, address(0), "cleared at settlement");
    }

    function test_RevertWhen_AuthorizationRevoked() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        StandardExitGame.Authorization memory auth = _authorize(aliceKey, carol, T0 + 1 days, 0);
        vm.prank(alice);
        seGame.revokeAuthorizations();
        StandardExitGame.StartArgs memory args = _args(pos, depositTx);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitBadAuthorization.selector, alice, carol));
        seGame.startStandardExitFor{value: SE_BOND}(args, auth);
    }

    function test_RevertWhen_AuthorizationExpired() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        StandardExitGame.Authorization memory auth = _authorize(aliceKey, carol, T0 + 1 days, 0);
        skip(2 days);
        StandardExitGame.StartArgs memory args = _args(pos, depositTx);
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitBadAuthorization.selector, alice, carol));
        seGame.startStandardExitFor{value: SE_BOND}(args, auth);
    }

    function test_RevertWhen_AuthorizationForAnotherExitor() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        StandardExitGame.Authorization memory auth = _authorize(aliceKey, carol, T0 + 1 days, 0);
        StandardExitGame.StartArgs memory args = _args(pos, depositTx);
        // mallory replays carol's authorization: it recovers to someone else, not alice.
        vm.prank(mallory);
        vm.expectPartialRevert(StandardExitGame.StandardExitNotOwner.selector);
        seGame.startStandardExitFor{value: SE_BOND}(args, auth);
    }

    function test_BatchedExits() public {
        uint256 n = 5;
        StandardExitGame.StartArgs[] memory batch = new StandardExitGame.StartArgs[](n);
        for (uint256 i = 0; i < n; ++i) {
            (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether + i);
            batch[i] = _args(pos, depositTx);
        }
        vm.prank(alice);
        seGame.startStandardExits{value: SE_BOND * n}(batch);
        (, uint256 len) = framework.queueHead(address(0));
        assertEq(len, n);
        skip(PERIOD);
        framework.processExits(address(0), 0, n);
        assertEq(framework.withdrawable(alice, address(0)), 5 ether + 10 + n * (SE_BOND - BOUNTY));
    }

    function test_BatchedDelegatedExits() public {
        StandardExitGame.StartArgs[] memory batch = new StandardExitGame.StartArgs[](2);
        StandardExitGame.Authorization[] memory auths = new StandardExitGame.Authorization[](2);
        (uint256 a, bytes memory aTx) = _depositEth(alice, 1 ether);
        (uint256 b, bytes memory bTx) = _depositEth(bob, 2 ether);
        batch[0] = _args(a, aTx);
        batch[1] = _args(b, bTx);
        auths[0] = _authorize(aliceKey, carol, T0 + 1 days, 0);
        auths[1] = _authorize(bobKey, carol, T0 + 1 days, 0);
        vm.prank(carol);
        seGame.startStandardExitsFor{value: 2 * SE_BOND}(batch, auths);
        skip(PERIOD);
        framework.processExits(address(0), 0, 2);
        assertEq(framework.withdrawable(alice, address(0)), 1 ether);
        assertEq(framework.withdrawable(bob, address(0)), 2 ether);
    }

    /// @dev Issue 12 item 4: a watchtower's 50-exit delegated batch where one guarded owner revoked
    /// every authorization and another started its own exit first. Both entries are skipped with
    /// their reason and bond refunded; the other 48 start. Before, either griefer reverted it all.
    function test_DelegatedBatchSkipsRevokedAndAlreadyStartedEntries() public {
        uint256 n = 50;
        StandardExitGame.StartArgs[] memory batch = new StandardExitGame.StartArgs[](n);
        StandardExitGame.Authorization[] memory auths = new StandardExitGame.Authorization[](n);
        StandardExitGame.Authorization memory aliceAuth = _authorize(aliceKey, carol, T0 + 1 days, 0);
        for (uint256 i = 0; i < n - 2; ++i) {
            (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether + i);
            (batch[i], auths[i]) = (_args(pos, depositTx), aliceAuth);
        }
        (uint256 bobPos, bytes memory bobTx) = _depositEth(bob, 2 ether);
        (batch[n - 2], auths[n - 2]) = (_args(bobPos, bobTx), _authorize(bobKey, carol, T0 + 1 days, 0));
        (uint256 malPos, bytes memory malTx) = _depositEth(mallory, 3 ether);
        (batch[n - 1], auths[n - 1]) = (_args(malPos, malTx), _authorize(malloryKey, carol, T0 + 1 days, 0));
        // The griefers move first (front-running the batch they saw in the mempool).
        _exit(bob, bobPos, bobTx);
        vm.prank(mallory);
        seGame.revokeAuthorizations();

        vm.expectEmit(address(seGame));
        emit StandardExitGame.ExitStartSkipped(bobPos, carol, StandardExitGame.StartOutcome.AlreadyStarted);
        vm.expectEmit(address(seGame));
        emit StandardExitGame.ExitStartSkipped(malPos, carol, StandardExitGame.StartOutcome.BadAuthorization);
        vm.prank(carol);
        StandardExitGame.StartOutcome[] memory outcomes = seGame.startStandardExitsFor{value: n * SE_BOND}(batch, auths);

        for (uint256 i = 0; i < n - 2; ++i) {
            assertTrue(outcomes[i] == StandardExitGame.StartOutcome.Started);
        }
        assertTrue(outcomes[n - 2] == StandardExitGame.StartOutcome.AlreadyStarted);
        assertTrue(outcomes[n - 1] == StandardExitGame.StartOutcome.BadAuthorization);
        (, uint256 len) = framework.queueHead(address(0));
        assertEq(len, n - 1); // 48 of carol's + bob's own
        assertEq(framework.withdrawable(carol, address(0)), 2 * SE_BOND, "skipped bonds refunded");
        (, address bondOwner) = _bondOwner(bobPos);
        assertEq(bondOwner, address(0), "bob's own exit untouched");
    }

    function _bondOwner(uint256 pos) internal view returns (address owner, address bondOwner) {
        (owner,,,,,,, bondOwner) = seGame.exits(pos);
    }

    /// @dev Own batches skip what can no longer start too: an entry repeated in the batch, an output
    /// already finalized, an output of someone else.
    function test_BatchSkipsDuplicateFinalizedAndForeignEntries() public {
        (uint256 a, bytes memory aTx) = _depositEth(alice, 1 ether);
        (uint256 b, bytes memory bTx) = _depositEth(alice, 2 ether);
        (uint256 c, bytes memory cTx) = _depositEth(bob, 3 ether);
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = PlasmaTx.outputId(keccak256(bTx), false, 0, b);
        vm.prank(address(seGame)); // as a processed in-flight exit would
        framework.finalizeOutputs(ids);
        StandardExitGame.StartArgs[] memory batch = new StandardExitGame.StartArgs[](4);
        (batch[0], batch[1], batch[2], batch[3]) = (_args(a, aTx), _args(a, aTx), _args(b, bTx), _args(c, cTx));
        vm.prank(alice);
        StandardExitGame.StartOutcome[] memory outcomes = seGame.startStandardExits{value: 4 * SE_BOND}(batch);
        assertTrue(outcomes[0] == StandardExitGame.StartOutcome.Started);
        assertTrue(outcomes[1] == StandardExitGame.StartOutcome.AlreadyStarted);
        assertTrue(outcomes[2] == StandardExitGame.StartOutcome.OutputFinalized);
        assertTrue(outcomes[3] == StandardExitGame.StartOutcome.NotOwner);
        assertEq(framework.withdrawable(alice, address(0)), 3 * SE_BOND);
        (, uint256 len) = framework.queueHead(address(0));
        assertEq(len, 1);
    }

    /// @dev What the sender got wrong still reverts the whole batch: skipping is only for what
    /// someone else (or time) changed.
    function test_RevertWhen_BatchEntryHasBadProof() public {
        (uint256 a, bytes memory aTx) = _depositEth(alice, 1 ether);
        (, bytes memory bTx) = _depositEth(alice, 2 ether);
        StandardExitGame.StartArgs[] memory batch = new StandardExitGame.StartArgs[](2);
        (batch[0], batch[1]) = (_args(a, aTx), _args(a + 1e9, aTx)); // deposit a's tx at b's position
        bTx;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, a + 1e9));
        seGame.startStandardExits{value: 2 * SE_BOND}(batch);
    }

    /// @dev Issue 12 item 5: a cheater who exits an output she already spent and challenges the
    /// exit herself right away gets only the challenge reward back: she loses half the bond (spec:
    /// BOND-1). Before, the challenger got the whole bond and cheating cost nothing.
    function test_SelfChallengeLosesHalfTheBond() public {
        (uint256 depositPos,,, bytes memory payment) = _aliceToBob(); // alice spent her deposit
        uint256 before = alice.balance;
        _exit(alice, depositPos, _depositTx(alice, address(0), 10 ether));
        bytes memory sig = _signTx(aliceKey, payment);
        vm.prank(alice);
        seGame.challengeStandardExit(depositPos, payment, 0, sig);
        vm.prank(alice);
        framework.withdraw(address(0));
        assertEq(before - alice.balance, SE_BOND - REWARD, "self-challenge must cost the burned half");
        assertGt(before - alice.balance, 0);
        assertEq(address(seGame).balance, SE_BOND - REWARD, "the burned half stays locked in the game");
    }

    function test_RevertWhen_BatchLengthMismatch() public {
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitLengthMismatch.selector, 1, 0));
        seGame.startStandardExitsFor(new StandardExitGame.StartArgs[](1), new StandardExitGame.Authorization[](0));
    }

    // ---------------------------------------------------------------- bonds

    function test_BondChangeIsDelayedAndBounded() public {
        vm.prank(operator);
        seGame.proposeBondSize(2 * SE_BOND);
        assertEq(seGame.bondSize(), SE_BOND);
        skip(2 * PERIOD);
        assertEq(seGame.bondSize(), 2 * SE_BOND);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(BondLib.BondChangeOutOfBounds.selector, 2 * SE_BOND, 5 * SE_BOND));
        seGame.proposeBondSize(5 * SE_BOND);
    }

    /// @dev The exit record keeps the bond in gwei, so a bond size that is not whole gwei is refused
    /// where it is set: at deployment and when proposed.
    function test_RevertWhen_BondNotGwei() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitBondNotGwei.selector, SE_BOND + 1));
        seGame.proposeBondSize(SE_BOND + 1);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitBondNotGwei.selector, SE_BOND - 1));
        seGame.proposeBondSize(SE_BOND - 1);
        assertEq(seGame.bondSize(), SE_BOND);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitBondNotGwei.selector, SE_BOND + 1));
        new StandardExitGame(IPlasmaFramework(address(framework)), operator, SE_BOND + 1);
        uint256 tooLarge = (uint256(type(uint40).max) + 1) * 1 gwei;
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitBondNotGwei.selector, tooLarge));
        new StandardExitGame(IPlasmaFramework(address(framework)), operator, tooLarge);
        // A whole-gwei size is accepted.
        vm.prank(operator);
        seGame.proposeBondSize(SE_BOND + 1 gwei);
    }

    /// @dev A bond of an odd number of gwei (halves that are not whole gwei) is read back, paid back
    /// at settlement and split at a challenge to the wei.
    function test_BondRoundTripsToTheWei() public {
        uint256 bond = SE_BOND + 7 gwei;
        vm.prank(operator);
        seGame.proposeBondSize(bond);
        skip(2 * PERIOD);
        assertEq(seGame.bondSize(), bond);

        // Settled: the owner gets the amount and the bond minus the bounty, the processor the bounty.
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        StandardExitGame.StartArgs memory args = _args(pos, depositTx);
        vm.prank(alice);
        seGame.startStandardExit{value: bond}(args);
        (, uint88 stored,,,,,,) = seGame.exits(pos);
        assertEq(stored, bond);
        skip(PERIOD);
        vm.prank(carol);
        framework.processExits(address(0), 0, 10);
        uint256 bounty = framework.withdrawable(carol, address(0));
        assertEq(bounty, bond / 2);
        assertEq(framework.withdrawable(alice, address(0)), 1 ether + bond - bounty);
        assertEq(framework.withdrawable(alice, address(0)) + bounty, 1 ether + bond);

        // Challenged: the challenger gets half the bond, to the wei.
        (uint256 depositPos,,, bytes memory payment) = _aliceToBob();
        args = _args(depositPos, _depositTx(alice, address(0), 10 ether));
        vm.prank(alice);
        seGame.startStandardExit{value: bond}(args);
        bytes memory sig = _signTx(aliceKey, payment);
        vm.prank(mallory);
        seGame.challengeStandardExit(depositPos, payment, 0, sig);
        assertEq(framework.withdrawable(mallory, address(0)), bond / 2);
    }

    /// @dev The gas fix: an ETH exit's start time shares the first slot with owner, bond and status,
    /// so the token slot stays zero (never written) and starting fills three fresh slots, not four.
    /// Settlement clears the start time and keeps owner, bond and status.
    function test_EthExitLeavesTokenSlotZero() public {
        (uint256 pos, bytes memory depositTx) = _depositEth(alice, 1 ether);
        _exit(alice, pos, depositTx);
        // `_exits` (by output id) is the game's first variable, `_outputIdAt` (by position) its second.
        bytes32 outputId = PlasmaTx.outputId(keccak256(depositTx), false, 0, pos);
        assertEq(vm.load(address(seGame), keccak256(abi.encode(pos, uint256(1)))), outputId);
        bytes32 base = keccak256(abi.encode(outputId, uint256(0)));
        uint256 first = uint256(vm.load(address(seGame), base));
        assertEq(address(uint160(first)), alice);
        assertEq((first >> 160) & type(uint40).max, SE_BOND / 1 gwei);
        assertEq((first >> 200) & 0xff, 0, "not delegated");
        assertEq((first >> 208) & 0xff, uint256(StandardExitGame.Status.Active));
        assertEq(first >> 216, block.timestamp);
        assertEq(vm.load(address(seGame), bytes32(uint256(base) + 1)), bytes32(0));
        (,,,, uint64 startedAt,,,) = seGame.exits(pos);
        assertEq(startedAt, block.timestamp);

        skip(PERIOD);
        framework.processExits(address(0), 0, 10);
        (address owner, uint88 bond, StandardExitGame.Status status,, uint64 settledStartedAt,,,) = seGame.exits(pos);
        assertEq(owner, alice);
        assertEq(bond, SE_BOND);
        assertTrue(status == StandardExitGame.Status.Settled);
        assertEq(settledStartedAt, 0);
    }

    function test_RevertWhen_StrangerChangesBond() public {
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameNotBondAdmin.selector, mallory));
        seGame.proposeBondSize(SE_BOND);
    }

    function test_RevertWhen_StrangerProcesses() public {
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameNotFramework.selector, mallory));
        seGame.processExit(1e9, address(0), mallory);
    }
}

/// @dev Two `processExits` calls in one transaction, from one sender.
contract TwoProcessCalls {
    function run(PlasmaFramework framework, uint256 first, uint256 second) external {
        framework.processExits(address(0), 0, first);
        framework.processExits(address(0), 0, second);
    }
}
