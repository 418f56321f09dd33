// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {ExitGameBase} from "../contracts/exits/ExitGameBase.sol";
import {InFlightExitGame} from "../contracts/exits/InFlightExitGame.sol";
import {StandardExitGame} from "../contracts/exits/StandardExitGame.sol";
import {IPlasmaFramework} from "../contracts/interfaces/IPlasmaFramework.sol";
import {ExitPriority} from "../contracts/libraries/ExitPriority.sol";
import {PlasmaEip712} from "../contracts/libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../contracts/libraries/UtxoPosLib.sol";
import {PlasmaFixtures} from "./utils/PlasmaFixtures.sol";

contract InFlightExitGameTest is PlasmaFixtures {
    uint256 internal constant IFE_BOND = 0.02 ether;
    uint256 internal constant PB_BOND = 0.005 ether;
    uint256 internal constant PB_BOUNTY = PB_BOND / 20;
    uint256 internal constant IFE_BOUNTY = IFE_BOND / 20;

    InFlightExitGame internal ife;

    // The usual scenario: alice's 10 ether deposit, an in-flight payment of 6 to bob and 4 back.
    uint256 internal depositPos;
    bytes internal depositTx;
    bytes internal inFlight;
    uint256 internal exitId;

    function _deployInFlightGame() internal override returns (address) {
        ife = new InFlightExitGame(IPlasmaFramework(address(framework)), operator, IFE_BOND, PB_BOND);
        return address(ife);
    }

    function setUp() public override {
        super.setUp();
        (depositPos, depositTx) = _depositEth(alice, 10 ether);
        inFlight = _aliceToBob(depositPos);
        exitId = uint256(keccak256(inFlight));
    }

    // ---------------------------------------------------------------- helpers

    function _aliceToBob(uint256 input) internal view returns (bytes memory) {
        uint256[] memory ins = new uint256[](1);
        ins[0] = input;
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](2);
        outs[0] = _out(bob, address(0), 6 ether);
        outs[1] = _out(alice, address(0), 4 ether);
        return _payment(ins, outs);
    }

    function _args1(bytes memory txBytes, uint256 inPos, bytes memory inTx, uint256 key)
        internal
        view
        returns (InFlightExitGame.StartArgs memory a)
    {
        a.inFlightTx = txBytes;
        a.inputTxs = new bytes[](1);
        a.inputTxs[0] = inTx;
        a.inputUtxoPos = new uint256[](1);
        a.inputUtxoPos[0] = inPos;
        a.inputProofs = new bytes[](1);
        a.inputProofs[0] = _proof(UtxoPosLib.blknum(inPos), UtxoPosLib.txIndex(inPos));
        a.inputBlockTimestamps = new uint64[](1);
        a.inputBlockTimestamps[0] = blockTimestamp[UtxoPosLib.blknum(inPos)];
        a.signatures = new bytes[](1);
        a.signatures[0] = _signTx(key, txBytes);
    }

    function _start() internal {
        InFlightExitGame.StartArgs memory a = _args1(inFlight, depositPos, depositTx, aliceKey);
        vm.prank(alice);
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function _piggybackOutput(address who, uint8 index) internal {
        vm.prank(who);
        ife.piggybackOutput{value: PB_BOND}(exitId, index);
    }

    function _piggybackInput(address who, uint8 index) internal {
        vm.prank(who);
        ife.piggybackInput{value: PB_BOND}(exitId, index);
    }

    /// @dev A competitor: alice also spends her deposit to carol.
    function _competitor() internal view returns (bytes memory) {
        return _pay1(1e9, carol, address(0), 10 ether);
    }

    function _competitorArgs(bytes memory competing, uint256 txPos)
        internal
        view
        returns (InFlightExitGame.CompetitorArgs memory c)
    {
        c.exitId = exitId;
        c.inputIndex = 0;
        c.competingTx = competing;
        c.competitorInputIndex = 0;
        c.competitorSignature = _signTx(aliceKey, competing);
        c.competitorTxPos = txPos;
        if (txPos != 0) {
            c.competitorProof = _proof(UtxoPosLib.blknum(txPos), UtxoPosLib.txIndex(txPos));
            c.competitorBlockTimestamp = blockTimestamp[UtxoPosLib.blknum(txPos)];
        }
    }

    function _processAll() internal {
        skip(3 * PERIOD);
        while (true) {
            (uint256 head,) = framework.queueHead(address(0));
            if (head == 0) break;
            framework.processExits(address(0), 0, 10);
        }
    }

    // ---------------------------------------------------------------- start

    function test_StartInFlightExit() public {
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitStarted(exitId, alice, uint64(T0 + 2 * PERIOD), depositPos, inFlight);
        _start();
        (address initiator, uint64 startedAt, uint64 exitableAt, uint256 position,,, uint8 verdict,) =
            ife.inFlightExit(exitId);
        assertEq(initiator, alice);
        assertEq(startedAt, T0);
        // A deposit input still gets the child-block rule: youngest input + 2p (spec: EXIT-7).
        assertEq(exitableAt, T0 + 2 * PERIOD);
        assertEq(position, depositPos);
        assertEq(verdict, 0);
        InFlightExitGame.Input memory input = ife.inFlightExitInput(exitId, 0);
        assertEq(input.owner, alice);
        assertEq(input.amount, 10 ether);
        assertEq(input.outputId, PlasmaTx.outputId(keccak256(depositTx), false, 0, depositPos));
        assertEq(ife.inFlightExitOutput(exitId, 0).owner, bob);
        (, uint256 queued) = framework.queueHead(address(0));
        assertEq(queued, 0); // nothing queued before a piggyback
    }

    function test_PositionIsYoungestInput() public {
        (uint256 second, bytes memory secondTx) = _depositEth(alice, 1 ether);
        uint256[] memory ins = new uint256[](2);
        ins[0] = depositPos;
        ins[1] = second;
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](1);
        outs[0] = _out(bob, address(0), 11 ether);
        bytes memory t = _payment(ins, outs);
        InFlightExitGame.StartArgs memory a;
        a.inFlightTx = t;
        a.inputTxs = new bytes[](2);
        a.inputTxs[0] = depositTx;
        a.inputTxs[1] = secondTx;
        a.inputUtxoPos = ins;
        a.inputProofs = new bytes[](2);
        a.inputProofs[0] = _proof(1, 0);
        a.inputProofs[1] = _proof(2, 0);
        a.inputBlockTimestamps = new uint64[](2);
        a.inputBlockTimestamps[0] = uint64(T0);
        a.inputBlockTimestamps[1] = uint64(T0);
        a.signatures = new bytes[](2);
        a.signatures[0] = _signTx(aliceKey, t);
        a.signatures[1] = _signTx(aliceKey, t);
        vm.prank(alice);
        ife.startInFlightExit{value: IFE_BOND}(a);
        (,,, uint256 position,,,,) = ife.inFlightExit(uint256(keccak256(t)));
        assertEq(position, second);
    }

    function test_RevertWhen_StartedTwice() public {
        _start();
        InFlightExitGame.StartArgs memory a = _args1(inFlight, depositPos, depositTx, aliceKey);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitAlreadyStarted.selector, exitId));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_SignedByStranger() public {
        InFlightExitGame.StartArgs memory a = _args1(inFlight, depositPos, depositTx, malloryKey);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadSignature.selector, 0, mallory, alice));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_ValueCreated() public {
        bytes memory greedy = _pay1(depositPos, bob, address(0), 11 ether);
        InFlightExitGame.StartArgs memory a = _args1(greedy, depositPos, depositTx, aliceKey);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitValueCreated.selector, address(0)));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_InputPositionMismatch() public {
        InFlightExitGame.StartArgs memory a = _args1(inFlight, depositPos, depositTx, aliceKey);
        a.inputUtxoPos[0] = 2e9;
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitInputMismatch.selector, 0, depositPos, 2e9));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_LengthMismatch() public {
        InFlightExitGame.StartArgs memory a = _args1(inFlight, depositPos, depositTx, aliceKey);
        a.signatures = new bytes[](0);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitLengthMismatch.selector, 1, 1));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_NotAPayment() public {
        InFlightExitGame.StartArgs memory a = _args1(depositTx, depositPos, depositTx, aliceKey);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotAPayment.selector, 2));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_InputProofWrong() public {
        InFlightExitGame.StartArgs memory a = _args1(inFlight, depositPos, depositTx, aliceKey);
        a.inputBlockTimestamps[0] += 1;
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, depositPos));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_WrongBond() public {
        InFlightExitGame.StartArgs memory a = _args1(inFlight, depositPos, depositTx, aliceKey);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameWrongBond.selector, IFE_BOND, 1));
        ife.startInFlightExit{value: 1}(a);
    }

    // ---------------------------------------------------------------- piggybacks

    function test_PiggybackQueuesOncePerToken() public {
        _start();
        _piggybackOutput(bob, 0);
        _piggybackOutput(alice, 1);
        (uint256 head, uint256 len) = framework.queueHead(address(0));
        assertEq(len, 1);
        assertEq(ExitPriority.exitableAt(head), T0 + 2 * PERIOD);
        assertEq(ExitPriority.position(head), depositPos);
        (,,,, uint16 piggybacks,,,) = ife.inFlightExit(exitId);
        assertEq(piggybacks, (1 << 5) | (1 << 6));
    }

    function test_RevertWhen_PiggybackByNonOwner() public {
        _start();
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotOwner.selector, bob, mallory));
        ife.piggybackOutput{value: PB_BOND}(exitId, 0);
    }

    function test_RevertWhen_PiggybackTwice() public {
        _start();
        _piggybackInput(alice, 0);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitAlreadyPiggybacked.selector, exitId, 0));
        ife.piggybackInput{value: PB_BOND}(exitId, 0);
    }

    function test_RevertWhen_PiggybackAfterPhaseOne() public {
        _start();
        skip(PERIOD / 2);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitPhaseOver.selector, exitId, T0 + PERIOD / 2)
        );
        ife.piggybackOutput{value: PB_BOND}(exitId, 0);
    }

    function test_RevertWhen_PiggybackNoSuchIndex() public {
        _start();
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNoSuchIndex.selector, 2));
        ife.piggybackOutput{value: PB_BOND}(exitId, 2);
    }

    function test_RevertWhen_PiggybackUnknownExit() public {
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, 7));
        ife.piggybackOutput{value: PB_BOND}(7, 0);
    }

    function test_RevertWhen_PiggybackWrongBond() public {
        _start();
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameWrongBond.selector, PB_BOND, 0));
        ife.piggybackOutput(exitId, 0);
    }

    // ---------------------------------------------------------------- settlement

    function test_CanonicalPaysPiggybackedOutputsAndFinalizesInputs() public {
        _start();
        _piggybackOutput(bob, 0);
        _processAll();
        assertEq(framework.withdrawable(bob, address(0)), 6 ether + PB_BOND - PB_BOUNTY);
        assertEq(framework.withdrawable(alice, address(0)), IFE_BOND - IFE_BOUNTY);
        assertEq(framework.withdrawable(address(this), address(0)), PB_BOUNTY + IFE_BOUNTY);
        assertTrue(framework.isOutputFinalized(PlasmaTx.outputId(keccak256(depositTx), false, 0, depositPos)));
        assertTrue(framework.isOutputFinalized(PlasmaTx.outputId(keccak256(inFlight), true, 0, 0)));
        // alice's change was not piggybacked: not paid, not finalized.
        assertFalse(framework.isOutputFinalized(PlasmaTx.outputId(keccak256(inFlight), true, 1, 0)));
        (,,,,,, uint8 verdict,) = ife.inFlightExit(exitId);
        assertEq(verdict, 1);
    }

    function test_StandardExitOfSpentInputCannotBePaidTwice() public {
        // The in-flight tx is canonical and settles first; alice's later standard exit of her
        // deposit (the tx's input) is void at processing.
        _start();
        _piggybackOutput(bob, 0);
        skip(2 * PERIOD);
        framework.processExits(address(0), 0, 1);
        StandardExitGame.StartArgs memory args = _startArgs(depositPos, depositTx);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitOutputFinalized.selector, depositPos));
        seGame.startStandardExit{value: SE_BOND}(args);
        assertEq(framework.totalCredited(address(0)), 6 ether);
    }

    function test_InputExitedByStandardExitMakesItNonCanonical() public {
        // alice standard-exits her deposit first; the in-flight tx spending it then settles as
        // non-canonical and pays nothing for that input again (spec: EXIT-11, CHAL-5).
        StandardExitGame.StartArgs memory args = _startArgs(depositPos, depositTx);
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(args);
        _start();
        _piggybackOutput(bob, 0);
        _piggybackInput(alice, 0);
        _processAll();
        assertEq(framework.totalCredited(address(0)), 10 ether); // only the standard exit
        (,,,,,, uint8 verdict,) = ife.inFlightExit(exitId);
        assertEq(verdict, 2);
        assertEq(framework.withdrawable(bob, address(0)), PB_BOND - PB_BOUNTY); // bond back, no payout
    }

    function test_NonCanonicalPaysPiggybackedInputs() public {
        _start();
        _piggybackInput(alice, 0);
        _piggybackOutput(bob, 0);
        InFlightExitGame.CompetitorArgs memory challenge = _competitorArgs(_competitor(), 0);
        vm.prank(carol);
        ife.challengeInFlightExitNotCanonical(challenge);
        _processAll();
        assertEq(framework.totalCredited(address(0)), 10 ether);
        assertEq(framework.withdrawable(carol, address(0)), IFE_BOND); // the challenger takes the exit bond
        assertGe(framework.withdrawable(alice, address(0)), 10 ether);
        assertEq(framework.withdrawable(bob, address(0)), PB_BOND - PB_BOUNTY);
    }

    function test_ResponseRestoresCanonicity() public {
        _start();
        _piggybackOutput(bob, 0);
        InFlightExitGame.CompetitorArgs memory challenge = _competitorArgs(_competitor(), 0);
        vm.prank(carol);
        ife.challengeInFlightExitNotCanonical(challenge);
        // The in-flight tx was in fact included (block 1000): anyone may answer.
        uint256 blknum = _submit1(inFlight);
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitChallengeResponded(exitId, bob, blknum * 1e9);
        vm.prank(bob);
        ife.respondToNonCanonicalChallenge(exitId, inFlight, blknum * 1e9, _proof(blknum, 0), blockTimestamp[blknum]);
        _processAll();
        assertEq(framework.withdrawable(bob, address(0)), 6 ether + PB_BOND - PB_BOUNTY);
        assertEq(framework.withdrawable(carol, address(0)), 0); // a refuted challenger gets nothing
        assertEq(framework.withdrawable(alice, address(0)), IFE_BOND - IFE_BOUNTY);
    }

    function test_RevertWhen_ResponseNotOlderThanCompetitor() public {
        _start();
        bytes memory competing = _competitor();
        uint256 competitorBlock = _submit1(competing);
        InFlightExitGame.CompetitorArgs memory challenge = _competitorArgs(competing, competitorBlock * 1e9);
        vm.prank(carol);
        ife.challengeInFlightExitNotCanonical(challenge);
        uint256 later = _submit1(inFlight);
        vm.expectRevert(
            abi.encodeWithSelector(
                InFlightExitGame.InFlightExitResponseNotOlder.selector, later * 1e9, competitorBlock * 1e9
            )
        );
        ife.respondToNonCanonicalChallenge(exitId, inFlight, later * 1e9, _proof(later, 0), blockTimestamp[later]);
    }

    function test_RevertWhen_ChallengeWithYoungerCompetitor() public {
        _start();
        bytes memory competing = _competitor();
        uint256 b1 = _submit1(competing);
        InFlightExitGame.CompetitorArgs memory challenge = _competitorArgs(competing, b1 * 1e9);
        vm.prank(carol);
        ife.challengeInFlightExitNotCanonical(challenge);
        // Not shown included is "youngest": it cannot replace an included competitor.
        bytes memory other = _pay1(depositPos, mallory, address(0), 10 ether);
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(other, 0);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitCompetitorNotOlder.selector, type(uint96).max, b1 * 1e9)
        );
        ife.challengeInFlightExitNotCanonical(c);
    }

    function test_RevertWhen_ChallengeWithItself() public {
        _start();
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(inFlight, 0);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitSameTransaction.selector, exitId));
        ife.challengeInFlightExitNotCanonical(c);
    }

    function test_RevertWhen_CompetitorSignedByStranger() public {
        _start();
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(_competitor(), 0);
        c.competitorSignature = _signTx(malloryKey, c.competingTx);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadSignature.selector, 0, mallory, alice));
        ife.challengeInFlightExitNotCanonical(c);
    }

    function test_RevertWhen_CompetitorSpendsSomethingElse() public {
        _start();
        bytes memory unrelated = _pay1(5e9, carol, address(0), 1);
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(unrelated, 0);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotASpend.selector, depositPos, 5e9));
        ife.challengeInFlightExitNotCanonical(c);
    }

    function test_RevertWhen_CanonicityChallengeAfterPhaseOne() public {
        _start();
        skip(PERIOD / 2);
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(_competitor(), 0);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitPhaseOver.selector, exitId, T0 + PERIOD / 2)
        );
        ife.challengeInFlightExitNotCanonical(c);
    }

    function test_RevertWhen_RespondingWithoutChallenge() public {
        _start();
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotChallenged.selector, exitId));
        ife.respondToNonCanonicalChallenge(exitId, inFlight, 1000e9, new bytes(512), 0);
    }

    function test_RevertWhen_RespondingWithOtherTransaction() public {
        _start();
        InFlightExitGame.CompetitorArgs memory challenge = _competitorArgs(_competitor(), 0);
        vm.prank(carol);
        ife.challengeInFlightExitNotCanonical(challenge);
        bytes memory other = _competitor();
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitWrongTransaction.selector, exitId, keccak256(other))
        );
        ife.respondToNonCanonicalChallenge(exitId, other, 1000e9, new bytes(512), 0);
    }

    // ---------------------------------------------------------------- piggyback challenges

    function test_ChallengeSpentInput() public {
        _start();
        _piggybackInput(alice, 0);
        bytes memory spend = _competitor();
        bytes memory sig = _signTx(aliceKey, spend);
        vm.prank(carol);
        ife.challengeInFlightExitInputSpent(exitId, 0, spend, 0, sig);
        assertEq(framework.withdrawable(carol, address(0)), PB_BOND);
        (,,,, uint16 piggybacks,,,) = ife.inFlightExit(exitId);
        assertEq(piggybacks, 0);
        _processAll();
        assertEq(framework.totalCredited(address(0)), 0);
    }

    function test_RevertWhen_ChallengingInputWithTheInFlightTx() public {
        _start();
        _piggybackInput(alice, 0);
        bytes memory sig = _signTx(aliceKey, inFlight);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitSameTransaction.selector, exitId));
        ife.challengeInFlightExitInputSpent(exitId, 0, inFlight, 0, sig);
    }

    function test_RevertWhen_ChallengingUnpiggybackedInput() public {
        _start();
        bytes memory spend = _competitor();
        bytes memory sig = _signTx(aliceKey, spend);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotPiggybacked.selector, exitId, 0));
        ife.challengeInFlightExitInputSpent(exitId, 0, spend, 0, sig);
    }

    function test_ChallengeSpentOutput() public {
        _start();
        _piggybackOutput(bob, 0);
        uint256 blknum = _submit1(inFlight);
        uint256 bobPos = blknum * 1e9;
        bytes memory spend = _pay1(bobPos, carol, address(0), 6 ether);
        InFlightExitGame.OutputSpentArgs memory a = InFlightExitGame.OutputSpentArgs({
            exitId: exitId,
            outputIndex: 0,
            inFlightTx: inFlight,
            inFlightTxPos: bobPos,
            inclusionProof: _proof(blknum, 0),
            blockTimestamp: blockTimestamp[blknum],
            spendingTx: spend,
            spendingInputIndex: 0,
            signature: _signTx(bobKey, spend)
        });
        vm.prank(carol);
        ife.challengeInFlightExitOutputSpent(a);
        assertEq(framework.withdrawable(carol, address(0)), PB_BOND);
        _processAll();
        assertEq(framework.totalCredited(address(0)), 0); // bob's spent output is not paid
    }

    function test_RevertWhen_OutputSpendSignedByStranger() public {
        _start();
        _piggybackOutput(bob, 0);
        uint256 blknum = _submit1(inFlight);
        bytes memory spend = _pay1(blknum * 1e9, carol, address(0), 6 ether);
        InFlightExitGame.OutputSpentArgs memory a = InFlightExitGame.OutputSpentArgs({
            exitId: exitId,
            outputIndex: 0,
            inFlightTx: inFlight,
            inFlightTxPos: blknum * 1e9,
            inclusionProof: _proof(blknum, 0),
            blockTimestamp: blockTimestamp[blknum],
            spendingTx: spend,
            spendingInputIndex: 0,
            signature: _signTx(malloryKey, spend)
        });
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadSignature.selector, 0, mallory, bob));
        ife.challengeInFlightExitOutputSpent(a);
    }

    function test_RevertWhen_TxPosHasOutputIndex() public {
        _start();
        _piggybackOutput(bob, 0);
        InFlightExitGame.OutputSpentArgs memory a;
        a.exitId = exitId;
        a.inFlightTx = inFlight;
        a.inFlightTxPos = 1000e9 + 1;
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadTxPos.selector, 1000e9 + 1));
        ife.challengeInFlightExitOutputSpent(a);
    }

    // ---------------------------------------------------------------- deletion, bonds, access

    function test_DeleteUnpiggybacked() public {
        _start();
        skip(PERIOD / 2);
        ife.deleteNonPiggybackedInFlightExit(exitId);
        assertEq(framework.withdrawable(alice, address(0)), IFE_BOND);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, exitId));
        ife.deleteNonPiggybackedInFlightExit(exitId);
    }

    function test_RevertWhen_DeletingDuringPhaseOne() public {
        _start();
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitPhaseNotOver.selector, exitId, T0 + PERIOD / 2)
        );
        ife.deleteNonPiggybackedInFlightExit(exitId);
    }

    function test_RevertWhen_DeletingPiggybacked() public {
        _start();
        _piggybackOutput(bob, 0);
        skip(PERIOD / 2);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitHasPiggybacks.selector, exitId));
        ife.deleteNonPiggybackedInFlightExit(exitId);
    }

    function test_BondProposals() public {
        vm.startPrank(operator);
        ife.proposeInFlightExitBond(2 * IFE_BOND);
        ife.proposePiggybackBond(PB_BOND / 2);
        vm.stopPrank();
        skip(2 * PERIOD);
        assertEq(ife.inFlightExitBond(), 2 * IFE_BOND);
        assertEq(ife.piggybackBond(), PB_BOND / 2);
    }

    function test_RevertWhen_StrangerProcesses() public {
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameNotFramework.selector, mallory));
        ife.processExit(exitId, address(0), mallory);
    }
}
