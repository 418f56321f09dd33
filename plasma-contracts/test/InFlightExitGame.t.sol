// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {ExitGameBase} from "../contracts/exits/ExitGameBase.sol";
import {InFlightExitGame} from "../contracts/exits/InFlightExitGame.sol";
import {StandardExitGame} from "../contracts/exits/StandardExitGame.sol";
import {IPlasmaFramework} from "../contracts/interfaces/IPlasmaFramework.sol";
import {BondLib} from "../contracts/libraries/BondLib.sol";
import {ExitPriority} from "../contracts/libraries/ExitPriority.sol";
import {PlasmaEip712} from "../contracts/libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../contracts/libraries/UtxoPosLib.sol";
import {PlasmaFixtures} from "./utils/PlasmaFixtures.sol";
import {TestToken} from "./utils/Tokens.sol";
import {console} from "./utils/console.sol";

/// @dev forge's `cool(address)` cheatcode (marks an account's storage cold), declared here so the
/// shared Vm interface stays as it is; only the gas tests use it.
interface VmCool {
    function cool(address target) external;
}

/// @notice The in-flight exit game (spec: EXIT-6, EXIT-7, EXIT-8, EXIT-11, CHAL-1 … CHAL-5): every
/// function's happy path and custom-error reverts, the phases, priority, settlement under both
/// verdicts, exact balances, the spec predicates of `spec/src/exit_game.rs`, and gas.
contract InFlightExitGameTest is PlasmaFixtures {
    uint256 internal constant IFE_BOND = 0.02 ether;
    uint256 internal constant PB_BOND = 0.005 ether;
    // spec: BOND-1 — half a settled bond is the processing bounty, half a defeated one the
    // challenger's reward (the rest burned).
    uint256 internal constant PB_BOUNTY = PB_BOND / 2;
    uint256 internal constant IFE_BOUNTY = IFE_BOND / 2;
    uint256 internal constant PB_REWARD = PB_BOND / 2;
    uint256 internal constant IFE_REWARD = IFE_BOND / 2;
    uint96 internal constant NOT_INCLUDED = type(uint96).max;

    /// @dev Gas budgets: half of OMG plasma-contracts' figures for the same steps (docs/benchmarks.md).
    uint256 internal constant START_1_1_BUDGET = 333_919;
    uint256 internal constant START_2_2_BUDGET = 582_270;
    uint256 internal constant PIGGYBACK_OUTPUT_BUDGET = 201_539;
    uint256 internal constant PIGGYBACK_INPUT_BUDGET = 144_305;
    uint256 internal constant NON_CANONICAL_BUDGET = 206_262;
    uint256 internal constant PROCESS_BUDGET = 269_237;

    InFlightExitGame internal ife;
    TestToken internal token;

    // The usual scenario: alice's 10 ether deposit, an in-flight payment of 6 to bob and 4 back.
    uint256 internal depositPos;
    bytes internal depositTx;
    bytes internal inFlight;
    uint256 internal exitId;

    /// @dev `inFlightExit(exitId)` as a struct, for readable assertions.
    struct State {
        address initiator;
        uint64 startedAt;
        uint64 exitableAt;
        uint256 position;
        uint16 piggybacks;
        bool nonCanonical;
        uint8 verdict;
        uint256 piggybackBond;
    }

    /// @dev `inFlightExitDetails(exitId)` as a struct.
    struct Details {
        uint8 nInputs;
        uint8 nOutputs;
        uint256 bond;
        uint8 pendingTokens;
        address challenger;
        uint256 competitorTxPos;
        uint256 inFlightTxPos;
    }

    /// @dev A two-input exit: alice's 10 (depositPos) and bob's 5 → carol 12, alice 3.
    struct Pair {
        uint256 id;
        bytes txBytes;
        uint256 bobPos;
        bytes bobDeposit;
    }

    function _deployInFlightGame() internal override returns (address) {
        ife = new InFlightExitGame(IPlasmaFramework(address(framework)), operator, IFE_BOND, PB_BOND);
        return address(ife);
    }

    function setUp() public override {
        super.setUp();
        token = new TestToken();
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

    function _two(uint256 a, uint256 b) internal pure returns (uint256[] memory r) {
        r = new uint256[](2);
        (r[0], r[1]) = (a, b);
    }

    /// @dev Start arguments for `txBytes` spending `positions` (created by `inputTxs`), signed by `keys`.
    function _ifeArgs(bytes memory txBytes, uint256[] memory positions, bytes[] memory inputTxs, uint256[] memory keys)
        internal
        view
        returns (InFlightExitGame.StartArgs memory a)
    {
        uint256 n = positions.length;
        a.inFlightTx = txBytes;
        a.inputTxs = inputTxs;
        a.inputUtxoPos = positions;
        a.inputProofs = new bytes[](n);
        a.inputBlockTimestamps = new uint64[](n);
        a.signatures = new bytes[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 blknum = UtxoPosLib.blknum(positions[i]);
            a.inputProofs[i] = _proof(blknum, UtxoPosLib.txIndex(positions[i]));
            a.inputBlockTimestamps[i] = blockTimestamp[blknum];
            a.signatures[i] = _signTx(keys[i], txBytes);
        }
    }

    function _ifeArgs1(bytes memory txBytes, uint256 pos, bytes memory inTx, uint256 key)
        internal
        view
        returns (InFlightExitGame.StartArgs memory)
    {
        uint256[] memory positions = new uint256[](1);
        positions[0] = pos;
        bytes[] memory inputTxs = new bytes[](1);
        inputTxs[0] = inTx;
        uint256[] memory keys = new uint256[](1);
        keys[0] = key;
        return _ifeArgs(txBytes, positions, inputTxs, keys);
    }

    /// @dev Starts `a` as alice, a party to every exit the suite starts this way (EXIT-6).
    function _startWith(InFlightExitGame.StartArgs memory a) internal returns (uint256 id) {
        return _startAs(alice, a);
    }

    function _startAs(address party, InFlightExitGame.StartArgs memory a) internal returns (uint256 id) {
        vm.prank(party);
        ife.startInFlightExit{value: IFE_BOND}(a);
        return uint256(keccak256(a.inFlightTx));
    }

    /// @dev Starts the usual exit (alice → bob 6, alice 4).
    function _start() internal {
        _startWith(_ifeArgs1(inFlight, depositPos, depositTx, aliceKey));
    }

    /// @dev Starts the two-input exit (alice's 10 and bob's 5 → carol 12, alice 3).
    function _startPair() internal returns (Pair memory p) {
        (p.bobPos, p.bobDeposit) = _depositEth(bob, 5 ether);
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](2);
        outs[0] = _out(carol, address(0), 12 ether);
        outs[1] = _out(alice, address(0), 3 ether);
        uint256[] memory positions = _two(depositPos, p.bobPos);
        p.txBytes = _payment(positions, outs);
        bytes[] memory inputTxs = new bytes[](2);
        (inputTxs[0], inputTxs[1]) = (depositTx, p.bobDeposit);
        p.id = _startWith(_ifeArgs(p.txBytes, positions, inputTxs, _two(aliceKey, bobKey)));
    }

    function _piggybackOutput(address who, uint8 index) internal {
        _piggybackOutputOf(exitId, who, index);
    }

    function _piggybackInput(address who, uint8 index) internal {
        _piggybackInputOf(exitId, who, index);
    }

    function _piggybackOutputOf(uint256 id, address who, uint8 index) internal {
        vm.prank(who);
        ife.piggybackOutput{value: PB_BOND}(id, index);
    }

    function _piggybackInputOf(uint256 id, address who, uint8 index) internal {
        vm.prank(who);
        ife.piggybackInput{value: PB_BOND}(id, index);
    }

    /// @dev A competitor: alice also spends her deposit, to `to`.
    function _competitorTo(address to) internal view returns (bytes memory) {
        return _pay1(depositPos, to, address(0), 10 ether);
    }

    function _competitor() internal view returns (bytes memory) {
        return _competitorTo(carol);
    }

    /// @dev A canonicity challenge of the usual exit with `competing` (signed by alice) at `txPos`
    /// (0: not shown included).
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

    function _challenge(address challenger, bytes memory competing, uint256 txPos) internal {
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(competing, txPos);
        vm.prank(challenger);
        ife.challengeInFlightExitNotCanonical(c);
    }

    /// @dev Includes the in-flight transaction alone in a new child block; returns its tx position.
    function _includeInFlight() internal returns (uint256 txPos) {
        return _submit1(inFlight) * 1e9;
    }

    function _respond(address responder, uint256 txPos) internal {
        uint256 blknum = UtxoPosLib.blknum(txPos);
        bytes memory proof = _proof(blknum, UtxoPosLib.txIndex(txPos));
        vm.prank(responder);
        ife.respondToNonCanonicalChallenge(exitId, inFlight, txPos, proof, blockTimestamp[blknum]);
    }

    /// @dev A challenge of piggybacked output `index` of the usual exit, included at `txPos`, spent by
    /// `spend` signed with `key`.
    function _outputSpentArgs(uint8 index, uint256 txPos, bytes memory spend, uint256 key)
        internal
        view
        returns (InFlightExitGame.OutputSpentArgs memory a)
    {
        uint256 blknum = UtxoPosLib.blknum(txPos);
        a.exitId = exitId;
        a.outputIndex = index;
        a.inFlightTx = inFlight;
        a.inFlightTxPos = txPos;
        a.inclusionProof = _proof(blknum, UtxoPosLib.txIndex(txPos));
        a.blockTimestamp = blockTimestamp[blknum];
        a.spendingTx = spend;
        a.spendingInputIndex = 0;
        a.signature = _signTx(key, spend);
    }

    /// @dev Waits past every exitable time and processes `queueToken`'s queue to the end.
    function _processAll(address queueToken) internal {
        skip(3 * PERIOD);
        while (true) {
            (uint256 head,) = framework.queueHead(queueToken);
            if (head == 0) break;
            framework.processExits(queueToken, 0, 10);
        }
    }

    function _processAll() internal {
        _processAll(address(0));
    }

    function _state(uint256 id) internal view returns (State memory s) {
        (s.initiator, s.startedAt, s.exitableAt, s.position, s.piggybacks, s.nonCanonical, s.verdict, s.piggybackBond) =
            ife.inFlightExit(id);
    }

    function _details(uint256 id) internal view returns (Details memory d) {
        (d.nInputs, d.nOutputs, d.bond, d.pendingTokens, d.challenger, d.competitorTxPos, d.inFlightTxPos) =
            ife.inFlightExitDetails(id);
    }

    function _eth(address account) internal view returns (uint256) {
        return framework.withdrawable(account, address(0));
    }

    function _depositToken(address owner, uint256 amount) internal returns (uint256 utxoPos, bytes memory txBytes) {
        txBytes = _depositTx(owner, address(token), amount);
        uint256 blknum = framework.nextChildBlock() - framework.CHILD_BLOCK_INTERVAL() + framework.nextDepositBlock();
        token.mint(owner, amount);
        vm.startPrank(owner);
        token.approve(address(framework), amount);
        framework.depositErc20(txBytes);
        vm.stopPrank();
        blockTimestamp[blknum] = uint64(block.timestamp);
        utxoPos = UtxoPosLib.pack(blknum, 0, 0);
    }

    function _depositId() internal view returns (bytes32) {
        return PlasmaTx.outputId(keccak256(depositTx), false, 0, depositPos);
    }

    function _inFlightOutputId(bytes memory txBytes, uint256 index) internal pure returns (bytes32) {
        return PlasmaTx.outputId(keccak256(txBytes), true, index, 0);
    }

    /// @dev Alice's standard exit of her deposit (the usual exit's input).
    function _standardExitDeposit() internal {
        StandardExitGame.StartArgs memory args = _startArgs(depositPos, depositTx);
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(args);
    }

    // ---------------------------------------------------------------- start

    function test_StartInFlightExit() public {
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitStarted(exitId, alice, uint64(T0 + 2 * PERIOD), depositPos, inFlight);
        _start();

        State memory s = _state(exitId);
        assertEq(s.initiator, alice);
        assertEq(s.startedAt, T0);
        // A deposit input still gets the child-block rule: youngest input + 2p (spec: EXIT-7).
        assertEq(s.exitableAt, T0 + 2 * PERIOD);
        assertEq(s.position, depositPos);
        assertEq(s.piggybacks, 0);
        assertFalse(s.nonCanonical);
        assertEq(s.verdict, 0);
        assertEq(s.piggybackBond, PB_BOND);

        Details memory d = _details(exitId);
        assertEq(d.nInputs, 1);
        assertEq(d.nOutputs, 2);
        assertEq(d.bond, IFE_BOND);
        assertEq(d.pendingTokens, 0);
        assertEq(d.challenger, address(0));

        InFlightExitGame.Input memory input = ife.inFlightExitInput(exitId, 0);
        assertEq(input.owner, alice);
        assertEq(input.utxoPos, depositPos);
        assertEq(input.token, address(0));
        assertEq(input.amount, 10 ether);
        assertEq(input.outputId, _depositId());
        InFlightExitGame.Output memory output = ife.inFlightExitOutput(exitId, 1);
        assertEq(output.owner, alice);
        assertEq(output.token, address(0));
        assertEq(output.amount, 4 ether);

        // Nothing is queued before a piggyback; the bond is held by the game.
        (, uint256 queued) = framework.queueHead(address(0));
        assertEq(queued, 0);
        assertFalse(ife.isQueued(exitId, address(0)));
        assertEq(address(ife).balance, IFE_BOND);
    }

    function test_PositionIsTheYoungestInputAndDepositsGetTheChildBlockRule() public {
        // alice's deposit is spent in block 1000 at T0; three periods later she makes a fresh deposit
        // and spends both in flight.
        uint256 oldPos = _submit1(_pay1(depositPos, alice, address(0), 10 ether)) * 1e9;
        skip(3 * PERIOD);
        (uint256 freshPos, bytes memory freshTx) = _depositEth(alice, 1 ether);
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](1);
        outs[0] = _out(bob, address(0), 11 ether);
        uint256[] memory positions = _two(oldPos, freshPos);
        bytes memory t = _payment(positions, outs);
        bytes[] memory inputTxs = new bytes[](2);
        (inputTxs[0], inputTxs[1]) = (blockTxs[1000][0], freshTx);
        uint256 id = _startWith(_ifeArgs(t, positions, inputTxs, _two(aliceKey, aliceKey)));

        State memory s = _state(id);
        assertEq(s.position, freshPos); // 1001e9 > 1000e9
        // The deposit input gives no earlier slot: its block timestamp + 2p, not now + p (EXIT-7).
        assertEq(s.exitableAt, block.timestamp + 2 * PERIOD);
        assertEq(ExitPriority.position(_queueAfterPiggyback(id)), freshPos);
    }

    function _queueAfterPiggyback(uint256 id) internal returns (uint256 head) {
        _piggybackOutputOf(id, bob, 0);
        (head,) = framework.queueHead(address(0));
    }

    function test_OldInputsExitOnePeriodAfterStart() public {
        skip(5 * PERIOD);
        _start();
        assertEq(_state(exitId).exitableAt, block.timestamp + PERIOD);
    }

    function test_ExitableAtMatchesSpecVector() public {
        string memory json = readProjectFile("../spec/vectors/exit_game.json");
        uint256 vNow = vm.parseJsonUint(json, ".inFlightExitableAt.now");
        uint256 youngest = vm.parseJsonUint(json, ".inFlightExitableAt.youngestInputBlockTimestamp");
        assertEq(vm.parseJsonUint(json, ".inFlightExitableAt.period"), PERIOD);
        vm.warp(youngest);
        (uint256 pos, bytes memory dep) = _depositEth(alice, 1 ether);
        vm.warp(vNow);
        uint256 id = _startWith(_ifeArgs1(_pay1(pos, bob, address(0), 1 ether), pos, dep, aliceKey));
        assertEq(_state(id).exitableAt, vm.parseJsonUint(json, ".inFlightExitableAt.exitableAt"));
    }

    function test_AmountsOf96BitsAndMoreAreStoredAndPaidExactly() public {
        uint256 big = 2 ** 100;
        vm.deal(alice, big + 1 ether); // the deposit and the bonds
        (uint256 pos, bytes memory dep) = _depositEth(alice, big);
        uint256[] memory ins = new uint256[](1);
        ins[0] = pos;
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](2);
        outs[0] = _out(bob, address(0), 2 ** 96); // the first amount that takes its own slot
        outs[1] = _out(alice, address(0), 2 ** 96 - 1); // the largest that shares one
        bytes memory t = _payment(ins, outs);
        uint256 id = _startWith(_ifeArgs1(t, pos, dep, aliceKey));
        assertEq(ife.inFlightExitInput(id, 0).amount, big);
        assertEq(ife.inFlightExitOutput(id, 0).amount, 2 ** 96);
        assertEq(ife.inFlightExitOutput(id, 1).amount, 2 ** 96 - 1);
        _piggybackOutputOf(id, bob, 0);
        _piggybackOutputOf(id, alice, 1);
        _processAll();
        assertEq(_eth(bob), 2 ** 96 + PB_BOND - PB_BOUNTY);
        assertEq(_eth(alice), 2 ** 96 - 1 + PB_BOND - PB_BOUNTY + IFE_BOND - IFE_BOUNTY);
    }

    function test_StartWithTokenAndEthInputs() public {
        (uint256 tokenPos, bytes memory tokenDep) = _depositToken(alice, 100e18);
        uint256[] memory positions = _two(depositPos, tokenPos);
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](3);
        outs[0] = _out(bob, address(0), 6 ether);
        outs[1] = _out(bob, address(token), 100e18);
        outs[2] = _out(alice, address(0), 4 ether);
        bytes memory t = _payment(positions, outs);
        bytes[] memory inputTxs = new bytes[](2);
        (inputTxs[0], inputTxs[1]) = (depositTx, tokenDep);
        uint256 id = _startWith(_ifeArgs(t, positions, inputTxs, _two(aliceKey, aliceKey)));
        assertEq(ife.inFlightExitInput(id, 1).token, address(token));
        assertEq(ife.inFlightExitInput(id, 1).amount, 100e18);
        assertEq(ife.inFlightExitOutput(id, 1).token, address(token));
        assertEq(ife.inFlightExitOutput(id, 2).token, address(0));
        assertEq(_state(id).position, tokenPos);
    }

    /// @dev Documented choice: inputs already finalized do not stop a start (EXIT-6 lists no such
    /// check); settlement then treats the transaction as non-canonical (EXIT-11, CHAL-5).
    function test_StartIsAllowedWhenInputsAreFinalized_SettlementPaysNothing() public {
        _standardExitDeposit();
        skip(PERIOD);
        framework.processExits(address(0), 0, 1); // alice's deposit is paid and finalized
        assertTrue(framework.isOutputFinalized(_depositId()));
        _start();
        _piggybackOutput(bob, 0);
        _piggybackInput(alice, 0);
        _processAll();
        assertEq(framework.totalCredited(address(0)), 10 ether); // the standard exit only
        assertEq(_state(exitId).verdict, 2);
        assertEq(_eth(bob), PB_BOND - PB_BOUNTY);
        // Nobody challenged: the initiator gets the exit bond back.
        assertEq(_eth(alice), 10 ether + SE_BOND - SE_BOND / 2 + PB_BOND - PB_BOUNTY + IFE_BOND - IFE_BOUNTY);
    }

    function test_RevertWhen_StartWithWrongBond() public {
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameWrongBond.selector, IFE_BOND, 1));
        ife.startInFlightExit{value: 1}(a);
    }

    function test_RevertWhen_StartedTwice() public {
        _start();
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitAlreadyStarted.selector, exitId));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_StartedAgainAfterSettlement() public {
        _start();
        _piggybackOutput(bob, 0);
        _processAll();
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitAlreadyStarted.selector, exitId));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    /// @dev spec: EXIT-6 — only a party starts: the operator, a challenger-to-be, anyone else with
    /// the signed payment is refused (issue 12 item 3).
    function test_RevertWhen_StartedByNonParty() public {
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        address[2] memory strangers = [operator, mallory];
        for (uint256 k = 0; k < strangers.length; ++k) {
            vm.deal(strangers[k], IFE_BOND);
            vm.prank(strangers[k]);
            vm.expectRevert(
                abi.encodeWithSelector(InFlightExitGame.InFlightExitNotParty.selector, exitId, strangers[k])
            );
            ife.startInFlightExit{value: IFE_BOND}(a);
        }
        assertEq(_state(exitId).startedAt, 0);
    }

    /// @dev spec: EXIT-6 — the owner of an input (who signed) or of any output is a party.
    function test_EveryPartyMayStart() public {
        Pair memory p = _startPair(); // alice, owner of input 0
        assertEq(_state(p.id).initiator, alice);
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        assertEq(_startAs(bob, a), exitId); // bob owns output 0 only
        assertEq(_state(exitId).initiator, bob);
        // carol owns output 0 of a payment from bob's deposit.
        bytes memory t = _pay1(p.bobPos, carol, address(0), 5 ether);
        uint256 id = _startAs(carol, _ifeArgs1(t, p.bobPos, p.bobDeposit, bobKey));
        assertEq(_state(id).initiator, carol);
    }

    /// @dev Issue 12 item 3 (spec: EXIT-6, EXIT-11). The operator colludes with alice, the sender:
    /// alice starts the exit of her payment to bob while the chain is healthy, nobody piggybacks,
    /// it is deleted after phase 1, and the operator includes the payment in a block it withholds.
    /// The deletion freed the transaction: bob starts its exit again and is paid, and alice's
    /// standard exit of the spent input is challenged with the payment itself.
    function test_RestartAfterDeletionPaysTheRecipient() public {
        _start();
        skip(PERIOD / 2);
        ife.deleteNonPiggybackedInFlightExit(exitId);
        _includeInFlight(); // block 1000, withheld: nobody can prove bob's output
        _standardExitDeposit();
        bytes memory sig = _signTx(aliceKey, inFlight);
        vm.prank(bob);
        seGame.challengeStandardExit(depositPos, inFlight, 0, sig);
        uint256 bobBefore = _eth(bob);

        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitStarted(exitId, bob, uint64(T0 + 2 * PERIOD), depositPos, inFlight);
        _startAs(bob, a);
        _piggybackOutput(bob, 0);
        _processAll();
        assertEq(_state(exitId).verdict, 1);
        assertEq(_eth(bob) - bobBefore, 6 ether + PB_BOND - PB_BOUNTY + IFE_BOND - IFE_BOUNTY);
        assertEq(framework.totalCredited(address(0)), 6 ether);
        assertTrue(framework.isOutputFinalized(_depositId()));
    }

    /// @dev spec: EXIT-6 — a restarted exit is a fresh one: new phase 1 and exitable time, no
    /// canonicity challenge or response standing from the deleted one; then it can be deleted again.
    function test_RestartIsAFreshExit() public {
        _start();
        _challenge(carol, _competitor(), 0);
        _respond(bob, _includeInFlight());
        skip(PERIOD / 2);
        ife.deleteNonPiggybackedInFlightExit(exitId);
        assertEq(_eth(alice), IFE_BOND);

        skip(2 * PERIOD);
        uint256 restartedAt = block.timestamp;
        _startAs(bob, _ifeArgs1(inFlight, depositPos, depositTx, aliceKey));
        State memory s = _state(exitId);
        assertEq(s.initiator, bob);
        assertEq(s.startedAt, restartedAt);
        assertEq(s.exitableAt, restartedAt + PERIOD);
        assertFalse(s.nonCanonical);
        assertEq(s.verdict, 0);
        assertEq(s.piggybacks, 0);
        Details memory d = _details(exitId);
        assertEq(d.challenger, address(0));
        assertEq(d.competitorTxPos, 0);
        assertEq(d.inFlightTxPos, 0);
        assertEq(d.bond, IFE_BOND);
        assertEq(d.pendingTokens, 0);
        assertEq(ife.inFlightExitInput(exitId, 0).outputId, _depositId());
        assertEq(address(ife).balance, IFE_BOND);
        // The new phase 1: a competitor not shown included is accepted again.
        _challenge(carol, _competitor(), 0);
        assertTrue(_state(exitId).nonCanonical);
        skip(PERIOD / 2);
        ife.deleteNonPiggybackedInFlightExit(exitId);
        assertEq(_eth(bob), IFE_BOND);
    }

    // ---------------------------------------------------------------- delegation (EXIT-9)

    /// @dev An owner's `ExitAuthorization` for `exitor` (spec: EXIT-9), as the in-flight game takes it.
    function _ifeAuth(uint256 ownerKey, address exitor, uint256 deadline, uint256 nonce)
        internal
        view
        returns (InFlightExitGame.Authorization memory)
    {
        bytes32 digest = PlasmaEip712.digest(
            framework.domainSeparator(), PlasmaEip712.hashExitAuthorization(exitor, deadline, nonce)
        );
        return InFlightExitGame.Authorization(deadline, nonce, _sign(ownerKey, digest));
    }

    function _tower() internal returns (address tower) {
        (tower,) = makeAccount("tower");
        vm.deal(tower, 10 ether);
    }

    /// @dev The tower starts the usual exit for alice (a party) with her authorization.
    function _startForAlice(address tower) internal {
        InFlightExitGame.Authorization memory auth = _ifeAuth(aliceKey, tower, T0 + 1 days, 0);
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        vm.prank(tower);
        ife.startInFlightExitFor{value: IFE_BOND}(a, auth);
    }

    /// @dev spec: EXIT-6, EXIT-9 — without an authorization a tower is a stranger.
    function test_RevertWhen_TowerStartsWithoutAuthorization() public {
        address tower = _tower();
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        vm.prank(tower);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotParty.selector, exitId, tower));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    /// @dev spec: EXIT-9 — a revoked authorization (the standard game's nonce, one for both games).
    function test_RevertWhen_StartedForWithRevokedAuthorization() public {
        address tower = _tower();
        InFlightExitGame.Authorization memory auth = _ifeAuth(aliceKey, tower, T0 + 1 days, 0);
        vm.prank(alice);
        seGame.revokeAuthorizations();
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        vm.prank(tower);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadAuthorization.selector, alice, tower));
        ife.startInFlightExitFor{value: IFE_BOND}(a, auth);
    }

    function test_RevertWhen_StartedForWithExpiredAuthorization() public {
        address tower = _tower();
        InFlightExitGame.Authorization memory auth = _ifeAuth(aliceKey, tower, T0 + 1 days, 0);
        vm.warp(T0 + 1 days + 1);
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        vm.prank(tower);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadAuthorization.selector, alice, tower));
        ife.startInFlightExitFor{value: IFE_BOND}(a, auth);
    }

    /// @dev spec: EXIT-6 — delegation reaches only payments the signer is party to: mallory's
    /// authorization does not let the tower start alice's payment.
    function test_RevertWhen_StartedForANonParty() public {
        address tower = _tower();
        InFlightExitGame.Authorization memory auth = _ifeAuth(malloryKey, tower, T0 + 1 days, 0);
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        vm.prank(tower);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotParty.selector, exitId, mallory));
        ife.startInFlightExitFor{value: IFE_BOND}(a, auth);
    }

    /// @dev An authorization signed for another exitor recovers to a stranger, who is no party.
    function test_RevertWhen_StartedForWithAnotherExitorsAuthorization() public {
        address tower = _tower();
        InFlightExitGame.Authorization memory auth = _ifeAuth(aliceKey, carol, T0 + 1 days, 0);
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        bytes32 asTower = PlasmaEip712.digest(
            framework.domainSeparator(), PlasmaEip712.hashExitAuthorization(tower, auth.deadline, auth.nonce)
        );
        address stranger = PlasmaEip712.recover(asTower, auth.signature, 0);
        vm.prank(tower);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotParty.selector, exitId, stranger));
        ife.startInFlightExitFor{value: IFE_BOND}(a, auth);
    }

    /// @dev spec: EXIT-8, EXIT-9 — piggybacking someone else's item needs its owner's live
    /// authorization, and only that owner's items.
    function test_RevertWhen_PiggybackedForWithoutValidAuthorization() public {
        address tower = _tower();
        _start();
        vm.prank(tower);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotOwner.selector, bob, tower));
        ife.piggybackOutput{value: PB_BOND}(exitId, 0);
        // alice's authorization does not reach bob's output.
        InFlightExitGame.Authorization memory aliceAuth = _ifeAuth(aliceKey, tower, T0 + 1 days, 0);
        vm.prank(tower);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotOwner.selector, bob, alice));
        ife.piggybackFor{value: PB_BOND}(exitId, true, 0, aliceAuth);
        // bob's, once revoked, reaches nothing.
        InFlightExitGame.Authorization memory bobAuth = _ifeAuth(bobKey, tower, T0 + 1 days, 0);
        vm.prank(bob);
        seGame.revokeAuthorizations();
        vm.prank(tower);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadAuthorization.selector, bob, tower));
        ife.piggybackFor{value: PB_BOND}(exitId, true, 0, bobAuth);
        // Nor does an expired one.
        InFlightExitGame.Authorization memory late = _ifeAuth(aliceKey, tower, block.timestamp - 1, 0);
        vm.prank(tower);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadAuthorization.selector, alice, tower));
        ife.piggybackFor{value: PB_BOND}(exitId, false, 0, late);
        assertEq(_state(exitId).piggybacks, 0);
    }

    /// @dev spec: EXIT-9 — the offline owners' case: the tower starts alice's payment to bob for
    /// alice and piggybacks every item for its owner. Canonical: bob and alice are paid exactly
    /// their outputs; every bond is the tower's (back minus the bounty, BOND-1); the processor gets
    /// the bounties.
    function test_TowerStartsAndPiggybacksForOfflineOwners_OwnersPaidBondsTheTowers() public {
        address tower = _tower();
        _startForAlice(tower);
        assertEq(_state(exitId).initiator, tower, "the tower's bond");
        InFlightExitGame.Authorization memory aliceAuth = _ifeAuth(aliceKey, tower, T0 + 1 days, 0);
        InFlightExitGame.Authorization memory bobAuth = _ifeAuth(bobKey, tower, T0 + 1 days, 0);
        vm.startPrank(tower);
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitPiggybacked(exitId, alice, false, 0);
        ife.piggybackFor{value: PB_BOND}(exitId, false, 0, aliceAuth);
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitPiggybacked(exitId, bob, true, 0);
        ife.piggybackFor{value: PB_BOND}(exitId, true, 0, bobAuth);
        ife.piggybackFor{value: PB_BOND}(exitId, true, 1, aliceAuth);
        vm.stopPrank();
        assertEq(_state(exitId).piggybacks, 1 | (1 << 5) | (1 << 6));

        _processAll();
        assertEq(_state(exitId).verdict, 1);
        assertEq(_eth(bob), 6 ether, "bob: his output, exactly");
        assertEq(_eth(alice), 4 ether, "alice: her change, exactly");
        assertEq(_eth(tower), IFE_BOND - IFE_BOUNTY + 3 * (PB_BOND - PB_BOUNTY), "the tower's bonds back");
        assertEq(_eth(address(this)), IFE_BOUNTY + 3 * PB_BOUNTY, "half of each settled bond");
        assertEq(address(ife).balance, 0);
    }

    /// @dev spec: EXIT-9, EXIT-11, BOND-1 — non-canonical: the tower's input piggyback pays alice
    /// her input back and the tower its bond minus the bounty; the standing challenger takes half
    /// the tower's exit bond, the other half is burned.
    function test_TowerPiggybackedInputPaysTheOwnerWhenNotCanonical() public {
        address tower = _tower();
        _startForAlice(tower);
        InFlightExitGame.Authorization memory aliceAuth = _ifeAuth(aliceKey, tower, T0 + 1 days, 0);
        InFlightExitGame.Authorization memory bobAuth = _ifeAuth(bobKey, tower, T0 + 1 days, 0);
        vm.startPrank(tower);
        ife.piggybackFor{value: PB_BOND}(exitId, false, 0, aliceAuth);
        ife.piggybackFor{value: PB_BOND}(exitId, true, 0, bobAuth);
        vm.stopPrank();
        _challenge(carol, _competitor(), 0);
        _processAll();
        assertEq(_state(exitId).verdict, 2);
        assertEq(_eth(alice), 10 ether, "alice: her input back, exactly");
        assertEq(_eth(bob), 0);
        assertEq(_eth(carol), IFE_REWARD);
        assertEq(_eth(tower), 2 * (PB_BOND - PB_BOUNTY));
        assertEq(_eth(address(this)), 2 * PB_BOUNTY);
        assertEq(address(ife).balance, IFE_BOND - IFE_REWARD, "the burned half");
    }

    /// @dev spec: CHAL-3, BOND-1, EXIT-9 — a delegated piggyback of an input the owner also spent is
    /// challenged at the tower's cost: the challenger takes half the tower's bond. If the owner then
    /// piggybacks it again herself, that bond is hers.
    function test_ChallengedDelegatedPiggybackCostsTheTower_OwnersOwnPiggybackIsHers() public {
        address tower = _tower();
        _startForAlice(tower);
        InFlightExitGame.Authorization memory aliceAuth = _ifeAuth(aliceKey, tower, T0 + 1 days, 0);
        vm.prank(tower);
        ife.piggybackFor{value: PB_BOND}(exitId, false, 0, aliceAuth);
        bytes memory spend = _competitor();
        bytes memory sig = _signTx(aliceKey, spend);
        vm.prank(carol);
        ife.challengeInFlightExitInputSpent(exitId, 0, spend, 0, sig);
        assertEq(_eth(carol), PB_REWARD);
        _piggybackInput(alice, 0);
        _processAll();
        assertEq(_eth(tower), IFE_BOND - IFE_BOUNTY, "the tower's exit bond back, its piggyback bond lost");
        // Canonical (no canonicity challenge): the input is not paid, but alice's own bond is hers.
        assertEq(_state(exitId).verdict, 1);
        assertEq(_eth(alice), PB_BOND - PB_BOUNTY, "alice's own piggyback bond is hers");
    }

    /// @dev spec: EXIT-6, EXIT-9, WATCH-9 — a deleted exit is started again by the tower for bob
    /// (a recipient is a party) and bob is paid.
    function test_TowerRestartsADeletedExitForTheRecipient() public {
        address tower = _tower();
        _start();
        skip(PERIOD / 2);
        ife.deleteNonPiggybackedInFlightExit(exitId);
        InFlightExitGame.Authorization memory bobAuth = _ifeAuth(bobKey, tower, block.timestamp + 1 days, 0);
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        vm.startPrank(tower);
        ife.startInFlightExitFor{value: IFE_BOND}(a, bobAuth);
        ife.piggybackFor{value: PB_BOND}(exitId, true, 0, bobAuth);
        vm.stopPrank();
        _processAll();
        assertEq(_eth(bob), 6 ether);
        assertEq(_eth(tower), IFE_BOND - IFE_BOUNTY + PB_BOND - PB_BOUNTY);
    }

    /// @dev EIP-170: a contract's deployed code is at most 24,576 bytes, or it cannot be deployed on
    /// any Ethereum network (forge's test EVM does not enforce it; anvil and mainnet do).
    function test_DeployedCodeFitsEip170() public view {
        assertLe(address(ife).code.length, 24_576, "InFlightExitGame exceeds EIP-170");
        assertLe(address(seGame).code.length, 24_576, "StandardExitGame exceeds EIP-170");
        assertLe(address(framework).code.length, 24_576, "PlasmaFramework exceeds EIP-170");
    }

    function test_RevertWhen_NotAPayment() public {
        InFlightExitGame.StartArgs memory a = _ifeArgs1(depositTx, depositPos, depositTx, aliceKey);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotAPayment.selector, 2));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_InFlightTxNotCanonicallyEncoded() public {
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        a.inFlightTx = abi.encodePacked(inFlight, bytes32(0)); // a trailing word
        // 1 input, 2 outputs: the output count sits in word 6 + 1 (spec: ENC-2).
        vm.expectRevert(abi.encodeWithSelector(PlasmaTx.PlasmaTxNonCanonical.selector, 7));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_PerInputArraysMismatch() public {
        for (uint256 k = 0; k < 5; ++k) {
            InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
            if (k == 0) a.inputTxs = new bytes[](0);
            if (k == 1) a.inputUtxoPos = new uint256[](2);
            if (k == 2) a.inputProofs = new bytes[](0);
            if (k == 3) a.inputBlockTimestamps = new uint64[](3);
            if (k == 4) a.signatures = new bytes[](0);
            uint256 given = k == 1 ? 2 : (k == 3 ? 3 : 0);
            vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitLengthMismatch.selector, 1, given));
            ife.startInFlightExit{value: IFE_BOND}(a);
        }
    }

    function test_RevertWhen_InputPositionMismatch() public {
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        a.inputUtxoPos[0] = 2e9;
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitInputMismatch.selector, 0, depositPos, 2e9));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_SignedByStranger() public {
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, malloryKey);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadSignature.selector, 0, mallory, alice));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_SignaturesInTheWrongOrder() public {
        (uint256 bobPos, bytes memory bobDep) = _depositEth(bob, 5 ether);
        uint256[] memory positions = _two(depositPos, bobPos);
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](1);
        outs[0] = _out(carol, address(0), 15 ether);
        bytes memory t = _payment(positions, outs);
        bytes[] memory inputTxs = new bytes[](2);
        (inputTxs[0], inputTxs[1]) = (depositTx, bobDep);
        InFlightExitGame.StartArgs memory a = _ifeArgs(t, positions, inputTxs, _two(bobKey, aliceKey));
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadSignature.selector, 0, bob, alice));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_SignatureMalformed() public {
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        a.signatures[0] = new bytes(64);
        vm.expectRevert(abi.encodeWithSelector(PlasmaEip712.PlasmaSignatureInvalid.selector, 0));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_ValueCreated() public {
        bytes memory greedy = _pay1(depositPos, bob, address(0), 11 ether);
        InFlightExitGame.StartArgs memory a = _ifeArgs1(greedy, depositPos, depositTx, aliceKey);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitValueCreated.selector, address(0), 10 ether, 11 ether)
        );
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_OutputTokenIsNotAmongTheInputs() public {
        bytes memory minting = _pay1(depositPos, bob, address(token), 1);
        InFlightExitGame.StartArgs memory a = _ifeArgs1(minting, depositPos, depositTx, aliceKey);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitValueCreated.selector, address(token), 0, 1)
        );
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_InputNamesAMissingOutput() public {
        bytes memory t = _pay1(depositPos + 1, bob, address(0), 1 ether);
        InFlightExitGame.StartArgs memory a = _ifeArgs1(t, depositPos + 1, depositTx, aliceKey);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameNoSuchOutput.selector, depositPos + 1));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_PaymentClaimedFromADepositBlock() public {
        bytes memory payment = _pay1(5e9, alice, address(0), 10 ether);
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, payment, aliceKey);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameWrongBlockKind.selector, depositPos, 1));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_InputBlockUnknown() public {
        bytes memory t = _pay1(5000e9, bob, address(0), 1 ether);
        bytes memory inTx = _pay1(depositPos, alice, address(0), 10 ether);
        InFlightExitGame.StartArgs memory a = _ifeArgs1(t, 5000e9, inTx, aliceKey);
        a.inputProofs[0] = new bytes(512);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameUnknownBlock.selector, 5000));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    function test_RevertWhen_InputProofWrong() public {
        InFlightExitGame.StartArgs memory a = _ifeArgs1(inFlight, depositPos, depositTx, aliceKey);
        a.inputBlockTimestamps[0] += 1;
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, depositPos));
        ife.startInFlightExit{value: IFE_BOND}(a);
    }

    // ---------------------------------------------------------------- piggybacks

    function test_PiggybackOutputQueuesTheExit() public {
        _start();
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitPiggybacked(exitId, bob, true, 0);
        _piggybackOutput(bob, 0);

        assertEq(_state(exitId).piggybacks, 1 << 5);
        assertEq(_details(exitId).pendingTokens, 1);
        assertTrue(ife.isQueued(exitId, address(0)));
        assertEq(address(ife).balance, IFE_BOND + PB_BOND);
        (uint256 head, uint256 len) = framework.queueHead(address(0));
        assertEq(len, 1);
        assertEq(ExitPriority.exitableAt(head), T0 + 2 * PERIOD);
        assertEq(ExitPriority.position(head), depositPos);
        assertEq(framework.flaggedExitIds(ExitPriority.nonce(head)), exitId);
    }

    function test_PiggybackInput() public {
        _start();
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitPiggybacked(exitId, alice, false, 0);
        _piggybackInput(alice, 0);
        assertEq(_state(exitId).piggybacks, 1);
        assertTrue(ife.isQueued(exitId, address(0)));
    }

    function test_PiggybackQueuesOncePerToken() public {
        _start();
        _piggybackOutput(bob, 0);
        _piggybackOutput(alice, 1);
        _piggybackInput(alice, 0);
        (, uint256 len) = framework.queueHead(address(0));
        assertEq(len, 1);
        assertEq(_state(exitId).piggybacks, (1 << 5) | (1 << 6) | 1);
        assertEq(_details(exitId).pendingTokens, 1);
    }

    function test_PiggybacksOfTwoTokensQueueTwice() public {
        uint256 id = _startTokenExit();
        _piggybackOutputOf(id, bob, 1); // the token output
        _piggybackOutputOf(id, bob, 0); // ETH
        (, uint256 ethLen) = framework.queueHead(address(0));
        (, uint256 tokenLen) = framework.queueHead(address(token));
        assertEq(ethLen, 1);
        assertEq(tokenLen, 1);
        assertEq(_details(id).pendingTokens, 2);
        assertTrue(ife.isQueued(id, address(token)));
    }

    /// @dev alice's 10 ether and 100 tokens → bob 6 ether and 100 tokens, alice 4 ether.
    function _startTokenExit() internal returns (uint256 id) {
        (uint256 tokenPos, bytes memory tokenDep) = _depositToken(alice, 100e18);
        uint256[] memory positions = _two(depositPos, tokenPos);
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](3);
        outs[0] = _out(bob, address(0), 6 ether);
        outs[1] = _out(bob, address(token), 100e18);
        outs[2] = _out(alice, address(0), 4 ether);
        bytes memory t = _payment(positions, outs);
        bytes[] memory inputTxs = new bytes[](2);
        (inputTxs[0], inputTxs[1]) = (depositTx, tokenDep);
        id = _startWith(_ifeArgs(t, positions, inputTxs, _two(aliceKey, aliceKey)));
    }

    function test_PiggybackBondIsTheOneInForceAtStart() public {
        vm.prank(operator);
        ife.proposePiggybackBond(2 * PB_BOND);
        skip(2 * PERIOD - 1);
        _start(); // one second before the new size applies
        skip(1);
        assertEq(ife.piggybackBond(), 2 * PB_BOND);
        assertEq(_state(exitId).piggybackBond, PB_BOND);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameWrongBond.selector, PB_BOND, 2 * PB_BOND));
        ife.piggybackOutput{value: 2 * PB_BOND}(exitId, 0);
        _piggybackOutput(bob, 0);
    }

    function test_RevertWhen_PiggybackByNonOwner() public {
        _start();
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotOwner.selector, bob, mallory));
        ife.piggybackOutput{value: PB_BOND}(exitId, 0);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotOwner.selector, alice, bob));
        ife.piggybackInput{value: PB_BOND}(exitId, 0);
    }

    function test_RevertWhen_PiggybackTwice() public {
        _start();
        _piggybackInput(alice, 0);
        _piggybackOutput(bob, 0);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitAlreadyPiggybacked.selector, exitId, 0));
        ife.piggybackInput{value: PB_BOND}(exitId, 0);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitAlreadyPiggybacked.selector, exitId, 5));
        ife.piggybackOutput{value: PB_BOND}(exitId, 0);
    }

    function test_RevertWhen_PiggybackAfterPhaseOne() public {
        _start();
        skip(PERIOD / 2);
        vm.prank(bob);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitPhaseOver.selector, exitId, T0 + PERIOD / 2)
        );
        ife.piggybackOutput{value: PB_BOND}(exitId, 0);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitPhaseOver.selector, exitId, T0 + PERIOD / 2)
        );
        ife.piggybackInput{value: PB_BOND}(exitId, 0);
    }

    function test_RevertWhen_PiggybackNoSuchIndex() public {
        _start();
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNoSuchIndex.selector, 2));
        ife.piggybackOutput{value: PB_BOND}(exitId, 2);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNoSuchIndex.selector, 1));
        ife.piggybackInput{value: PB_BOND}(exitId, 1);
    }

    function test_RevertWhen_PiggybackUnknownExit() public {
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, 7));
        ife.piggybackOutput{value: PB_BOND}(7, 0);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, 7));
        ife.piggybackInput{value: PB_BOND}(7, 0);
    }

    function test_RevertWhen_PiggybackWrongBond() public {
        _start();
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameWrongBond.selector, PB_BOND, 0));
        ife.piggybackOutput(exitId, 0);
    }

    // ---------------------------------------------------------------- canonicity (CHAL-1, CHAL-2)

    function test_ChallengeWithACompetitorNotIncluded() public {
        _start();
        bytes memory competing = _competitor();
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitChallenged(exitId, carol, keccak256(competing), NOT_INCLUDED);
        _challenge(carol, competing, 0);
        assertTrue(_state(exitId).nonCanonical);
        Details memory d = _details(exitId);
        assertEq(d.challenger, carol);
        assertEq(d.competitorTxPos, NOT_INCLUDED);
    }

    function test_ChallengeWithAnIncludedCompetitor() public {
        _start();
        bytes memory competing = _competitor();
        uint256 txPos = _submit1(competing) * 1e9;
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitChallenged(exitId, carol, keccak256(competing), txPos);
        _challenge(carol, competing, txPos);
        assertEq(_details(exitId).competitorTxPos, txPos);
    }

    /// @dev spec: `replaces_competitor` — each row of its table.
    function test_LaterChallengesFollowReplacesCompetitor() public {
        _start();
        bytes memory c1 = _competitorTo(carol);
        bytes memory c2 = _competitorTo(mallory);
        bytes memory c3 = _competitorTo(bob);
        uint256 p1 = _submit1(c1) * 1e9; // 1000e9, the oldest
        uint256 p2 = _submit1(c2) * 1e9; // 2000e9
        _submit1(c3);

        // (None, None): the first challenge may be anything.
        _challenge(carol, c3, 0);
        // (Some(None), None): not included cannot replace not included.
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(c2, 0);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitCompetitorNotOlder.selector, NOT_INCLUDED, NOT_INCLUDED)
        );
        ife.challengeInFlightExitNotCanonical(c);
        // (Some(None), Some(p2)): accepted.
        _challenge(mallory, c2, p2);
        // (Some(Some(p2)), Some(p2)): not older.
        c = _competitorArgs(c2, p2);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitCompetitorNotOlder.selector, p2, p2));
        ife.challengeInFlightExitNotCanonical(c);
        // (Some(Some(p2)), None): not older.
        c = _competitorArgs(c1, 0);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitCompetitorNotOlder.selector, NOT_INCLUDED, p2)
        );
        ife.challengeInFlightExitNotCanonical(c);
        // (Some(Some(p2)), Some(p1 < p2)): accepted; the challenger is the last one.
        _challenge(bob, c1, p1);
        Details memory d = _details(exitId);
        assertEq(d.challenger, bob);
        assertEq(d.competitorTxPos, p1);
        // (Some(Some(p1)), Some(p2 > p1)): younger, refused.
        c = _competitorArgs(c2, p2);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitCompetitorNotOlder.selector, p2, p1));
        ife.challengeInFlightExitNotCanonical(c);
    }

    function test_AfterAResponseANewCompetitorMustBeOlderThanTheInclusion() public {
        _start();
        bytes memory old = _competitorTo(mallory);
        uint256 oldPos = _submit1(old) * 1e9; // 1000e9
        uint256 inFlightPos = _includeInFlight(); // 2000e9
        bytes memory young = _competitorTo(carol);
        uint256 youngPos = _submit1(young) * 1e9; // 3000e9
        _challenge(carol, young, youngPos);
        _respond(bob, inFlightPos);
        assertEq(_details(exitId).inFlightTxPos, inFlightPos);
        // Younger than the inclusion: the response already answers it (as in OMG).
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(young, youngPos);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitCompetitorNotOlder.selector, youngPos, inFlightPos)
        );
        ife.challengeInFlightExitNotCanonical(c);
        // Older than the inclusion: the in-flight transaction was a double spend after all.
        _challenge(mallory, old, oldPos);
        assertTrue(_state(exitId).nonCanonical);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitResponseNotOlder.selector, inFlightPos, oldPos)
        );
        this.respondAs(bob, inFlightPos);
    }

    /// @dev `_respond` as an external call, so `expectRevert` applies to the game's call only.
    function respondAs(address responder, uint256 txPos) external {
        _respond(responder, txPos);
    }

    /// @dev Sends `c` as `challenger`; returns the revert data (empty: accepted).
    function _tryChallenge(address challenger, InFlightExitGame.CompetitorArgs memory c)
        internal
        returns (bytes memory err)
    {
        vm.prank(challenger);
        (bool ok, bytes memory ret) = address(ife).call(abi.encodeCall(ife.challengeInFlightExitNotCanonical, (c)));
        return ok ? bytes("") : ret;
    }

    /// @dev Responds with the inclusion at `txPos` as `responder`; returns the revert data.
    function _tryRespond(address responder, uint256 txPos) internal returns (bytes memory err) {
        uint256 blknum = UtxoPosLib.blknum(txPos);
        bytes memory proof = _proof(blknum, UtxoPosLib.txIndex(txPos));
        vm.prank(responder);
        (bool ok, bytes memory ret) = address(ife)
            .call(
                abi.encodeCall(
                    ife.respondToNonCanonicalChallenge, (exitId, inFlight, txPos, proof, blockTimestamp[blknum])
                )
            );
        return ok ? bytes("") : ret;
    }

    /// @dev Issue 12 item 2, first consequence (spec: CHAL-1). A byzantine operator includes the
    /// in-flight double spend twice (2000, 4000) around a second competitor (3000); carol's honest
    /// payment (1000) is the oldest spend. Once a response recorded 4000 and carol challenged with
    /// 1000, the attackers swap carol's competitor for the younger 3000 at the end of phase 1 and
    /// answer it with 2000. The swap must be refused: 3000 is not older than the standing 1000.
    /// Otherwise the double spend settles canonical with its deposit input's priority, the deposit
    /// is paid twice, and carol's standard exit gets `CreditShortfall` for all of it.
    function test_AYoungerCompetitorCannotReplaceTheStandingOneAfterAResponse() public {
        bytes memory honest = _competitorTo(carol);
        uint256 honestPos = _submit1(honest) * 1e9; // 1000e9: carol's payment, the oldest spend
        uint256 early = _includeInFlight(); // 2000e9
        bytes memory second = _competitorTo(mallory);
        uint256 secondPos = _submit1(second) * 1e9; // 3000e9
        uint256 late = _includeInFlight(); // 4000e9

        // carol sees the invalid blocks and exits her output; alice exits her double spend in
        // flight, with the priority of her deposit, and piggybacks its outputs with bob.
        StandardExitGame.StartArgs memory args = _startArgs(honestPos, honest);
        vm.prank(carol);
        seGame.startStandardExit{value: SE_BOND}(args);
        _start();
        _piggybackOutput(bob, 0);
        _piggybackOutput(alice, 1);

        // mallory's throwaway challenge, answered with the late inclusion.
        _challenge(mallory, _competitorTo(bob), 0);
        _respond(alice, late);
        // carol's legitimate challenge: her payment is older than the in-flight inclusion.
        _challenge(carol, honest, honestPos);
        // Last second of phase 1: the swap, then the answer with the early inclusion.
        skip(PERIOD / 2 - 1);
        bytes memory swapErr = _tryChallenge(mallory, _competitorArgs(second, secondPos));
        skip(1);
        bytes memory answerErr = _tryRespond(alice, early);

        _processAll();
        assertEq(_state(exitId).verdict, 2, "the double spend must not settle canonical");
        // carol: her 10 ether and half the exit bond (BOND-1; her standard exit bond back, less
        // whatever it pays).
        assertGe(_eth(carol), 10 ether + IFE_REWARD, "carol paid in full, and half the exit bond");
        assertLe(_eth(carol), 10 ether + IFE_REWARD + SE_BOND);
        assertEq(_eth(bob), PB_BOND - PB_BOUNTY, "bob's piggyback bond back, no payout");
        assertEq(framework.totalCredited(address(0)), 10 ether, "the deposit is paid once");
        assertEq(
            swapErr,
            abi.encodeWithSelector(InFlightExitGame.InFlightExitCompetitorNotOlder.selector, secondPos, honestPos)
        );
        assertEq(
            answerErr, abi.encodeWithSelector(InFlightExitGame.InFlightExitResponseNotOlder.selector, early, honestPos)
        );
    }

    /// @dev Issue 12 item 2, second consequence (spec: CHAL-1, EXIT-11): no operator needed. After a
    /// response and carol's legitimate older challenge, mallory sends carol's exact calldata again.
    /// It must be refused (not older than the competitor that stands), so the exit bond stays carol's.
    function test_ResubmittingTheStandingChallengeDoesNotStealTheChallengerRole() public {
        bytes memory honest = _competitorTo(carol);
        uint256 honestPos = _submit1(honest) * 1e9; // 1000e9
        uint256 inFlightPos = _includeInFlight(); // 2000e9
        _start();
        _piggybackOutput(bob, 0);
        _challenge(alice, _competitorTo(bob), 0);
        _respond(bob, inFlightPos);
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(honest, honestPos);
        vm.prank(carol);
        ife.challengeInFlightExitNotCanonical(c);

        bytes memory err = _tryChallenge(mallory, c);

        assertEq(_details(exitId).challenger, carol, "the challenger role stays carol's");
        _processAll();
        assertEq(_eth(carol), IFE_REWARD, "carol takes half the exit bond (BOND-1)");
        assertEq(_eth(mallory), 0, "mallory takes nothing");
        assertEq(
            err, abi.encodeWithSelector(InFlightExitGame.InFlightExitCompetitorNotOlder.selector, honestPos, honestPos)
        );
    }

    function test_RevertWhen_ChallengeAfterPhaseOne() public {
        _start();
        skip(PERIOD / 2 - 1);
        _challenge(carol, _competitor(), 0); // last second of phase 1
        skip(1);
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(_competitor(), _submit1(_competitor()) * 1e9);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitPhaseOver.selector, exitId, T0 + PERIOD / 2)
        );
        ife.challengeInFlightExitNotCanonical(c);
    }

    function test_RevertWhen_ChallengeUnknownExit() public {
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(_competitor(), 0);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, exitId));
        ife.challengeInFlightExitNotCanonical(c);
    }

    function test_RevertWhen_ChallengeNoSuchInput() public {
        _start();
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(_competitor(), 0);
        c.inputIndex = 1;
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNoSuchIndex.selector, 1));
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
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(_pay1(5e9, carol, address(0), 1), 0);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotASpend.selector, depositPos, 5e9));
        ife.challengeInFlightExitNotCanonical(c);
        // An input index beyond the competitor's inputs spends nothing.
        c = _competitorArgs(_competitor(), 0);
        c.competitorInputIndex = 1;
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotASpend.selector, depositPos, 0));
        ife.challengeInFlightExitNotCanonical(c);
    }

    function test_RevertWhen_CompetitorPositionIsNotATxPosition() public {
        _start();
        uint256 txPos = _submit1(_competitor()) * 1e9;
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(_competitor(), txPos);
        c.competitorTxPos = txPos + 1;
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadTxPos.selector, txPos + 1));
        ife.challengeInFlightExitNotCanonical(c);
        c.competitorTxPos = 5; // block 0
        vm.expectRevert(abi.encodeWithSelector(UtxoPosLib.UtxoPosInvalid.selector, 5));
        ife.challengeInFlightExitNotCanonical(c);
    }

    function test_RevertWhen_CompetitorInclusionWrong() public {
        _start();
        uint256 txPos = _submit1(_competitor()) * 1e9;
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(_competitor(), txPos);
        c.competitorBlockTimestamp += 1;
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, txPos));
        ife.challengeInFlightExitNotCanonical(c);
        c.competitorTxPos = 9000e9;
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameUnknownBlock.selector, 9000));
        ife.challengeInFlightExitNotCanonical(c);
    }

    function test_ResponseRestoresCanonicity() public {
        _start();
        _piggybackOutput(bob, 0);
        _challenge(carol, _competitor(), 0);
        // The in-flight tx was in fact included: anyone may answer.
        uint256 txPos = _includeInFlight();
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitChallengeResponded(exitId, bob, txPos);
        _respond(bob, txPos);
        assertFalse(_state(exitId).nonCanonical);
        assertEq(_details(exitId).inFlightTxPos, txPos);
        _processAll();
        assertEq(_eth(bob), 6 ether + PB_BOND - PB_BOUNTY);
        assertEq(_eth(carol), 0); // a refuted challenger gets nothing
        assertEq(_eth(alice), IFE_BOND - IFE_BOUNTY);
    }

    function test_ResponsesLandUntilProcessing() public {
        _start();
        _piggybackOutput(bob, 0);
        _challenge(carol, _competitor(), 0);
        uint256 txPos = _includeInFlight();
        vm.warp(_state(exitId).exitableAt); // exitable, not yet processed
        _respond(bob, txPos);
        framework.processExits(address(0), 0, 1);
        assertEq(_state(exitId).verdict, 1);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, exitId));
        this.respondAs(bob, txPos);
    }

    /// @dev spec: `answers_competitor` — any inclusion answers a competitor not shown included; an
    /// included one needs an older inclusion.
    function test_ResponseFollowsAnswersCompetitor() public {
        _start();
        uint256 inFlightPos = _includeInFlight(); // 1000e9
        bytes memory younger = _competitor();
        uint256 youngerPos = _submit1(younger) * 1e9; // 2000e9
        _challenge(carol, younger, youngerPos);
        _respond(bob, inFlightPos); // 1000e9 < 2000e9
        assertFalse(_state(exitId).nonCanonical);
    }

    function test_RevertWhen_ResponseNotOlderThanCompetitor() public {
        _start();
        bytes memory competing = _competitor();
        uint256 competitorPos = _submit1(competing) * 1e9;
        _challenge(carol, competing, competitorPos);
        uint256 later = _includeInFlight();
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitResponseNotOlder.selector, later, competitorPos)
        );
        this.respondAs(bob, later);
    }

    function test_RevertWhen_RespondingWithoutChallenge() public {
        _start();
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotChallenged.selector, exitId));
        ife.respondToNonCanonicalChallenge(exitId, inFlight, 1000e9, new bytes(512), 0);
    }

    function test_RevertWhen_RespondingToUnknownExit() public {
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, exitId));
        ife.respondToNonCanonicalChallenge(exitId, inFlight, 1000e9, new bytes(512), 0);
    }

    function test_RevertWhen_RespondingWithOtherTransaction() public {
        _start();
        _challenge(carol, _competitor(), 0);
        bytes memory other = _competitor();
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitWrongTransaction.selector, exitId, keccak256(other))
        );
        ife.respondToNonCanonicalChallenge(exitId, other, 1000e9, new bytes(512), 0);
    }

    function test_RevertWhen_RespondingWithBadInclusion() public {
        _start();
        _challenge(carol, _competitor(), 0);
        uint256 txPos = _includeInFlight();
        bytes memory proof = _proof(UtxoPosLib.blknum(txPos), 0);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadTxPos.selector, txPos + 1));
        ife.respondToNonCanonicalChallenge(exitId, inFlight, txPos + 1, proof, blockTimestamp[1000]);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, txPos + 1e4));
        ife.respondToNonCanonicalChallenge(exitId, inFlight, txPos + 1e4, proof, blockTimestamp[1000]);
    }

    // ---------------------------------------------------------------- piggyback challenges (CHAL-3, CHAL-4)

    function test_ChallengeSpentInput() public {
        _start();
        _piggybackInput(alice, 0);
        bytes memory spend = _competitor();
        bytes memory sig = _signTx(aliceKey, spend);
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitPiggybackChallenged(exitId, carol, false, 0);
        vm.prank(carol);
        ife.challengeInFlightExitInputSpent(exitId, 0, spend, 0, sig);
        assertEq(_eth(carol), PB_REWARD, "half the piggyback bond (BOND-1)");
        assertEq(_state(exitId).piggybacks, 0);
        assertEq(address(ife).balance, IFE_BOND + PB_BOND - PB_REWARD, "the other half is burned in the game");
        // The queue entry stays; processing pays nothing and returns the exit bond.
        _processAll();
        assertEq(framework.totalCredited(address(0)), 0);
        assertEq(_eth(alice), IFE_BOND - IFE_BOUNTY);
    }

    function test_ChallengeSpentInputAfterPhaseOne() public {
        _start();
        _piggybackInput(alice, 0);
        vm.warp(_state(exitId).exitableAt);
        bytes memory spend = _competitor();
        bytes memory sig = _signTx(aliceKey, spend);
        vm.prank(carol);
        ife.challengeInFlightExitInputSpent(exitId, 0, spend, 0, sig);
        assertEq(_eth(carol), PB_REWARD);
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

    function test_RevertWhen_ChallengingInputBadly() public {
        _start();
        _piggybackInput(alice, 0);
        bytes memory spend = _competitor();
        bytes memory sig = _signTx(aliceKey, spend);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNoSuchIndex.selector, 1));
        ife.challengeInFlightExitInputSpent(exitId, 1, spend, 0, sig);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotASpend.selector, depositPos, 0));
        ife.challengeInFlightExitInputSpent(exitId, 0, spend, 1, sig);
        bytes memory strangerSig = _signTx(malloryKey, spend);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadSignature.selector, 0, mallory, alice));
        ife.challengeInFlightExitInputSpent(exitId, 0, spend, 0, strangerSig);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, 7));
        ife.challengeInFlightExitInputSpent(7, 0, spend, 0, sig);
    }

    function test_ChallengeSpentOutput() public {
        _start();
        _piggybackOutput(bob, 0);
        uint256 txPos = _includeInFlight();
        bytes memory spend = _pay1(txPos, carol, address(0), 6 ether);
        InFlightExitGame.OutputSpentArgs memory a = _outputSpentArgs(0, txPos, spend, bobKey);
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitPiggybackChallenged(exitId, carol, true, 0);
        vm.prank(carol);
        ife.challengeInFlightExitOutputSpent(a);
        assertEq(_eth(carol), PB_REWARD);
        assertEq(_state(exitId).piggybacks, 0);
        _processAll();
        assertEq(framework.totalCredited(address(0)), 0); // bob's spent output is not paid
        assertEq(_eth(alice), IFE_BOND - IFE_BOUNTY);
    }

    function test_ChallengeSpentOutputReusesTheRecordedInclusion() public {
        _start();
        _piggybackOutput(alice, 1);
        _challenge(carol, _competitor(), 0);
        uint256 txPos = _includeInFlight();
        _respond(bob, txPos);
        bytes memory spend = _pay1(txPos + 1, carol, address(0), 4 ether);
        InFlightExitGame.OutputSpentArgs memory a = _outputSpentArgs(1, txPos, spend, aliceKey);
        a.inclusionProof = ""; // the response proved it already
        vm.prank(mallory);
        ife.challengeInFlightExitOutputSpent(a);
        assertEq(_eth(mallory), PB_REWARD);
    }

    function test_RevertWhen_OutputSpendSignedByStranger() public {
        _start();
        _piggybackOutput(bob, 0);
        uint256 txPos = _includeInFlight();
        bytes memory spend = _pay1(txPos, carol, address(0), 6 ether);
        InFlightExitGame.OutputSpentArgs memory a = _outputSpentArgs(0, txPos, spend, malloryKey);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadSignature.selector, 0, mallory, bob));
        ife.challengeInFlightExitOutputSpent(a);
    }

    function test_RevertWhen_OutputSpendSpendsAnotherOutput() public {
        _start();
        _piggybackOutput(bob, 0);
        uint256 txPos = _includeInFlight();
        bytes memory spend = _pay1(txPos + 1, carol, address(0), 4 ether); // alice's change
        InFlightExitGame.OutputSpentArgs memory a = _outputSpentArgs(0, txPos, spend, bobKey);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotASpend.selector, txPos, txPos + 1));
        ife.challengeInFlightExitOutputSpent(a);
    }

    function test_RevertWhen_OutputChallengeArgumentsWrong() public {
        _start();
        _piggybackOutput(bob, 0);
        uint256 txPos = _includeInFlight();
        bytes memory spend = _pay1(txPos, carol, address(0), 6 ether);
        InFlightExitGame.OutputSpentArgs memory a = _outputSpentArgs(1, txPos, spend, bobKey);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotPiggybacked.selector, exitId, 6));
        ife.challengeInFlightExitOutputSpent(a);
        a.outputIndex = 2;
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNoSuchIndex.selector, 2));
        ife.challengeInFlightExitOutputSpent(a);
        a = _outputSpentArgs(0, txPos, spend, bobKey);
        a.inFlightTx = spend;
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitWrongTransaction.selector, exitId, keccak256(spend))
        );
        ife.challengeInFlightExitOutputSpent(a);
        a = _outputSpentArgs(0, txPos, spend, bobKey);
        a.inFlightTxPos = txPos + 1;
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitBadTxPos.selector, txPos + 1));
        ife.challengeInFlightExitOutputSpent(a);
        a = _outputSpentArgs(0, txPos, spend, bobKey);
        a.blockTimestamp += 1;
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, txPos));
        ife.challengeInFlightExitOutputSpent(a);
        a = _outputSpentArgs(0, txPos, spend, bobKey);
        a.exitId = 7;
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, 7));
        ife.challengeInFlightExitOutputSpent(a);
    }

    // ---------------------------------------------------------------- deletion

    function test_DeleteUnpiggybacked() public {
        _start();
        skip(PERIOD / 2);
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitDeleted(exitId);
        vm.prank(mallory); // anyone may delete; the bond goes to the initiator
        ife.deleteNonPiggybackedInFlightExit(exitId);
        assertEq(_eth(alice), IFE_BOND);
        assertEq(_eth(mallory), 0);
        assertEq(_state(exitId).verdict, 3);
        assertEq(address(ife).balance, 0);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, exitId));
        ife.deleteNonPiggybackedInFlightExit(exitId);
    }

    function test_RevertWhen_DeletingDuringPhaseOne() public {
        _start();
        skip(PERIOD / 2 - 1);
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

    function test_RevertWhen_DeletingAfterPiggybacksWereChallengedAway() public {
        // The queue entry remains, so processing settles the exit (and returns its bond then).
        _start();
        _piggybackInput(alice, 0);
        bytes memory spend = _competitor();
        bytes memory sig = _signTx(aliceKey, spend);
        ife.challengeInFlightExitInputSpent(exitId, 0, spend, 0, sig);
        skip(PERIOD / 2);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitHasPiggybacks.selector, exitId));
        ife.deleteNonPiggybackedInFlightExit(exitId);
    }

    function test_RevertWhen_DeletingUnknownExit() public {
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, exitId));
        ife.deleteNonPiggybackedInFlightExit(exitId);
    }

    // ---------------------------------------------------------------- settlement (EXIT-11)

    function test_CanonicalPaysPiggybackedOutputsAndFinalizesInputs() public {
        _start();
        _piggybackOutput(bob, 0);
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitSettled(exitId, address(0), true);
        _processAll();
        assertEq(_eth(bob), 6 ether + PB_BOND - PB_BOUNTY);
        assertEq(_eth(alice), IFE_BOND - IFE_BOUNTY);
        assertEq(_eth(address(this)), PB_BOUNTY + IFE_BOUNTY);
        assertTrue(framework.isOutputFinalized(_depositId()));
        assertTrue(framework.isOutputFinalized(_inFlightOutputId(inFlight, 0)));
        // alice's change was not piggybacked: not paid, not finalized.
        assertFalse(framework.isOutputFinalized(_inFlightOutputId(inFlight, 1)));
        assertEq(_state(exitId).verdict, 1);
        assertEq(_state(exitId).piggybacks, 0);
        assertEq(_details(exitId).pendingTokens, 0);
        assertEq(address(ife).balance, 0);
    }

    function test_CanonicalReturnsTheBondOfAPiggybackedInputWithoutPayingIt() public {
        _start();
        _piggybackInput(alice, 0);
        _piggybackOutput(bob, 0);
        _processAll();
        assertEq(framework.totalCredited(address(0)), 6 ether);
        assertEq(_eth(alice), PB_BOND - PB_BOUNTY + IFE_BOND - IFE_BOUNTY);
        assertEq(_eth(address(this)), 2 * PB_BOUNTY + IFE_BOUNTY);
    }

    function test_NonCanonicalPaysPiggybackedInputs() public {
        _start();
        _piggybackInput(alice, 0);
        _piggybackOutput(bob, 0);
        _challenge(carol, _competitor(), 0);
        vm.expectEmit(address(ife));
        emit InFlightExitGame.InFlightExitSettled(exitId, address(0), false);
        _processAll();
        assertEq(framework.totalCredited(address(0)), 10 ether);
        assertEq(_eth(carol), IFE_REWARD); // the standing challenger takes half the exit bond (BOND-1)
        assertEq(_eth(alice), 10 ether + PB_BOND - PB_BOUNTY);
        assertEq(_eth(bob), PB_BOND - PB_BOUNTY);
        assertEq(_eth(address(this)), 2 * PB_BOUNTY);
        assertTrue(framework.isOutputFinalized(_depositId()));
        assertFalse(framework.isOutputFinalized(_inFlightOutputId(inFlight, 0)));
        assertEq(_state(exitId).verdict, 2);
    }

    function test_InputExitedByStandardExitMakesItNonCanonical() public {
        // alice standard-exits her deposit first; the in-flight tx spending it then settles as
        // non-canonical and pays nothing for that input again (spec: EXIT-11, CHAL-5). The standard
        // exit of a deposit (now + p) comes before the in-flight exit (deposit time + 2p).
        _standardExitDeposit();
        _start();
        _piggybackOutput(bob, 0);
        _piggybackInput(alice, 0);
        _processAll();
        assertEq(framework.totalCredited(address(0)), 10 ether); // only the standard exit
        assertEq(_state(exitId).verdict, 2);
        assertEq(_eth(bob), PB_BOND - PB_BOUNTY); // bond back, no payout
        assertEq(_eth(alice), 10 ether + SE_BOND - SE_BOND / 2 + PB_BOND - PB_BOUNTY + IFE_BOND - IFE_BOUNTY);
    }

    function test_StandardExitOfSpentInputCannotBePaidTwice() public {
        // The in-flight tx is canonical and settles first; alice's later standard exit of her
        // deposit (the tx's input) cannot start.
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

    function test_StandardExitQueuedBehindACanonicalInFlightExitIsVoid() public {
        _start();
        _piggybackOutput(bob, 0);
        skip(PERIOD + 1);
        _standardExitDeposit(); // exitable after the in-flight exit
        _processAll();
        assertEq(framework.totalCredited(address(0)), 6 ether);
        assertEq(_eth(alice), IFE_BOND - IFE_BOUNTY + SE_BOND); // the void exit's whole bond back
    }

    function test_OutputAlreadyExitedIsNotPaidAgain() public {
        // The in-flight tx was included; bob standard-exits his output long before the in-flight
        // exit is exitable, so the in-flight exit must not pay it again.
        uint256 txPos = _includeInFlight();
        StandardExitGame.StartArgs memory args = _startArgs(txPos, inFlight);
        vm.prank(bob);
        seGame.startStandardExit{value: SE_BOND}(args); // exitable at T0 + 2p
        skip(PERIOD + 1);
        _start(); // exitable at T0 + 2p + 1, after the standard exit
        _piggybackOutput(bob, 0);
        _processAll();
        assertEq(framework.totalCredited(address(0)), 6 ether);
        assertEq(_state(exitId).verdict, 1);
        assertEq(_eth(bob), 6 ether + SE_BOND - SE_BOND / 2 + PB_BOND - PB_BOUNTY);
    }

    function test_RefutedChallengerGetsNoBondWhenAnInputIsFinalized() public {
        // The verdict is non-canonical because of the standard exit, not because of carol's refuted
        // challenge: the exit bond goes back to the initiator.
        _standardExitDeposit();
        _start();
        _piggybackOutput(bob, 0);
        _challenge(carol, _competitor(), 0);
        _respond(bob, _includeInFlight());
        _processAll();
        assertEq(_state(exitId).verdict, 2);
        assertEq(_eth(carol), 0);
        assertEq(_eth(alice), 10 ether + SE_BOND - SE_BOND / 2 + IFE_BOND - IFE_BOUNTY);
    }

    function test_TwoTokensSettleUnderOneVerdict() public {
        uint256 id = _startTokenExit();
        _piggybackOutputOf(id, bob, 0);
        _piggybackOutputOf(id, bob, 1);
        skip(3 * PERIOD);
        framework.processExits(address(token), 0, 1);
        assertEq(_state(id).verdict, 1);
        assertEq(framework.withdrawable(bob, address(token)), 100e18);
        assertEq(_eth(alice), 0); // the exit bond waits for the last queue entry
        assertEq(_details(id).pendingTokens, 1);
        // The verdict is fixed: no more challenges, and the ETH side settles under it.
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(_competitor(), 0);
        c.exitId = id;
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, id));
        ife.challengeInFlightExitNotCanonical(c);
        framework.processExits(address(0), 0, 1);
        assertEq(_eth(bob), 6 ether + 2 * (PB_BOND - PB_BOUNTY));
        assertEq(_eth(alice), IFE_BOND - IFE_BOUNTY);
        assertEq(framework.totalCredited(address(0)), 6 ether);
        assertEq(address(ife).balance, 0);
    }

    function test_PriorityGoesToOlderStandardExitsOverAFreshDepositInput() public {
        // alice's output of block 1000 (T0) vs bob's in-flight payment of a deposit made three
        // periods later: the in-flight exit, though started first, queues behind alice's exit.
        uint256 alicePos = _submit1(_pay1(depositPos, alice, address(0), 10 ether)) * 1e9;
        skip(3 * PERIOD);
        (uint256 bobPos, bytes memory bobDep) = _depositEth(bob, 5 ether);
        bytes memory t = _pay1(bobPos, carol, address(0), 5 ether);
        uint256 id = _startAs(bob, _ifeArgs1(t, bobPos, bobDep, bobKey));
        _piggybackOutputOf(id, carol, 0);
        skip(1 hours);
        StandardExitGame.StartArgs memory args = _startArgs(alicePos, blockTxs[1000][0]);
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(args);
        (uint256 head, uint256 len) = framework.queueHead(address(0));
        assertEq(len, 2);
        assertEq(ExitPriority.position(head), alicePos);
        assertLt(ExitPriority.exitableAt(head), _state(id).exitableAt);
    }

    function test_RevertWhen_StrangerProcesses() public {
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameNotFramework.selector, mallory));
        ife.processExit(exitId, address(0), mallory);
    }

    // ---------------------------------------------------------------- spec predicates

    /// @dev spec: `in_flight_phase`, `can_delete_unpiggybacked` — phase 1 is [start, start + p/2).
    function test_PhasesFollowSpec() public {
        _start();
        skip(PERIOD / 2 - 1);
        _piggybackOutput(bob, 0); // Piggyback phase, last second
        _challenge(carol, _competitor(), 0);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitPhaseNotOver.selector, exitId, T0 + PERIOD / 2)
        );
        ife.deleteNonPiggybackedInFlightExit(exitId);
        skip(1); // Challenge phase: piggyback challenges and responses only
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(InFlightExitGame.InFlightExitPhaseOver.selector, exitId, T0 + PERIOD / 2)
        );
        ife.piggybackInput{value: PB_BOND}(exitId, 0);
        _respond(bob, _includeInFlight());
        vm.warp(T0 + 2 * PERIOD - 1); // not yet exitable: nothing to process
        (uint256 head,) = framework.queueHead(address(0));
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, address(0), head));
        framework.processExits(address(0), 0, 1);
        skip(1); // Exitable
        framework.processExits(address(0), 0, 1);
        assertEq(_state(exitId).verdict, 1);
    }

    /// @dev spec: `settle_in_flight_exit`, the state of its unit test — canonical, inputs
    /// piggybacked [yes, no], outputs piggybacked [yes, yes] with output 1 already finalized (by a
    /// standard exit of the included transaction, due first): pays output 0 only and finalizes
    /// both inputs.
    function test_SettlementMatchesSpec_Canonical() public {
        (uint256 bobPos, bytes memory bobDep) = _depositEth(bob, 5 ether);
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](2);
        outs[0] = _out(carol, address(0), 12 ether);
        outs[1] = _out(alice, address(0), 3 ether);
        uint256[] memory positions = _two(depositPos, bobPos);
        bytes memory pair = _payment(positions, outs);
        uint256 txPos = _submit1(pair) * 1e9; // included at T0
        StandardExitGame.StartArgs memory se = _startArgs(txPos + 1, pair);
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(se); // exitable at T0 + 2p
        skip(PERIOD + 1);
        bytes[] memory inputTxs = new bytes[](2);
        (inputTxs[0], inputTxs[1]) = (depositTx, bobDep);
        // Exitable at T0 + 2p + 1, after the standard exit.
        uint256 id = _startWith(_ifeArgs(pair, positions, inputTxs, _two(aliceKey, bobKey)));
        _piggybackInputOf(id, alice, 0);
        _piggybackOutputOf(id, carol, 0);
        _piggybackOutputOf(id, alice, 1);
        _processAll();
        // pay_outputs = [0]; finalize_inputs = [0, 1]; pay_inputs = [].
        assertEq(_state(id).verdict, 1);
        assertEq(_eth(carol), 12 ether + PB_BOND - PB_BOUNTY);
        assertEq(_eth(alice), 3 ether + SE_BOND - SE_BOND / 2 + 2 * (PB_BOND - PB_BOUNTY) + IFE_BOND - IFE_BOUNTY);
        assertEq(framework.totalCredited(address(0)), 15 ether);
        assertTrue(framework.isOutputFinalized(_depositId()));
        assertTrue(framework.isOutputFinalized(PlasmaTx.outputId(keccak256(bobDep), false, 0, bobPos)));
    }

    /// @dev The spec test's second state: input 1 finalized elsewhere → pays input 0 only.
    function test_SettlementMatchesSpec_FinalizedInputMakesItNonCanonical() public {
        Pair memory p = _startPair();
        StandardExitGame.StartArgs memory se = _startArgs(p.bobPos, p.bobDeposit);
        vm.prank(bob);
        seGame.startStandardExit{value: SE_BOND}(se); // a deposit: now + p, before the pair's exit
        _piggybackInputOf(p.id, alice, 0);
        _piggybackOutputOf(p.id, carol, 0);
        _piggybackOutputOf(p.id, alice, 1);
        _processAll();
        assertEq(_state(p.id).verdict, 2);
        assertEq(framework.totalCredited(address(0)), 15 ether); // bob's 5 and alice's 10
        assertEq(_eth(carol), PB_BOND - PB_BOUNTY);
        assertEq(_eth(alice), 10 ether + 2 * (PB_BOND - PB_BOUNTY) + IFE_BOND - IFE_BOUNTY);
        assertFalse(framework.isOutputFinalized(_inFlightOutputId(p.txBytes, 0)));
    }

    /// @dev The spec test's third state: not canonical, nothing finalized → pays input 0 only.
    function test_SettlementMatchesSpec_ChallengedPaysInputs() public {
        Pair memory p = _startPair();
        _piggybackInputOf(p.id, alice, 0);
        _piggybackOutputOf(p.id, carol, 0);
        InFlightExitGame.CompetitorArgs memory c = _competitorArgs(_competitor(), 0);
        c.exitId = p.id;
        vm.prank(mallory);
        ife.challengeInFlightExitNotCanonical(c);
        _processAll();
        assertEq(_state(p.id).verdict, 2);
        assertEq(framework.totalCredited(address(0)), 10 ether);
        assertEq(_eth(alice), 10 ether + PB_BOND - PB_BOUNTY);
        assertEq(_eth(mallory), IFE_REWARD);
        // bob's input was not piggybacked: not finalized, still his to exit.
        assertFalse(framework.isOutputFinalized(PlasmaTx.outputId(keccak256(p.bobDeposit), false, 0, p.bobPos)));
    }

    // ---------------------------------------------------------------- bonds and access

    function test_BondProposals() public {
        vm.startPrank(operator);
        vm.expectEmit(address(ife));
        emit ExitGameBase.BondChangeProposed("inFlightExit", 2 * IFE_BOND, uint64(T0 + 2 * PERIOD));
        ife.proposeInFlightExitBond(2 * IFE_BOND);
        ife.proposePiggybackBond(PB_BOND / 2);
        vm.stopPrank();
        skip(2 * PERIOD - 1);
        assertEq(ife.inFlightExitBond(), IFE_BOND);
        assertEq(ife.piggybackBond(), PB_BOND);
        skip(1);
        assertEq(ife.inFlightExitBond(), 2 * IFE_BOND);
        assertEq(ife.piggybackBond(), PB_BOND / 2);
    }

    function test_RevertWhen_BondProposalOutOfBounds() public {
        vm.startPrank(operator);
        vm.expectRevert(abi.encodeWithSelector(BondLib.BondChangeOutOfBounds.selector, IFE_BOND, 2 * IFE_BOND + 1));
        ife.proposeInFlightExitBond(2 * IFE_BOND + 1);
        vm.expectRevert(abi.encodeWithSelector(BondLib.BondChangeOutOfBounds.selector, PB_BOND, PB_BOND / 2 - 1));
        ife.proposePiggybackBond(PB_BOND / 2 - 1);
        vm.stopPrank();
    }

    function test_RevertWhen_StrangerProposesBond() public {
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameNotBondAdmin.selector, mallory));
        ife.proposeInFlightExitBond(IFE_BOND);
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameNotBondAdmin.selector, mallory));
        ife.proposePiggybackBond(PB_BOND);
    }

    // ---------------------------------------------------------------- gas
    //
    // Each test runs one step in a used system (the framework has queued and paid exits before)
    // and checks the step's transaction gas against half of OMG's figure. The estimate is 21,000 +
    // calldata + the call's gas with the games' and framework's storage cold; it ignores refunds
    // and counts the value transfer of the test's call, so it errs high. `forge test --gas-report`
    // gives the exact isolated figures.

    function _calldataGas(bytes memory data) internal pure returns (uint256 g) {
        for (uint256 i = 0; i < data.length; ++i) {
            g += data[i] == 0 ? 4 : 16;
        }
    }

    function _txGas(string memory step, address target, address from, uint256 value, bytes memory data)
        internal
        returns (uint256 txGas)
    {
        VmCool(address(vm)).cool(address(ife));
        VmCool(address(vm)).cool(address(framework));
        VmCool(address(vm)).cool(address(seGame));
        vm.prank(from);
        uint256 before = gasleft();
        (bool ok, bytes memory ret) = target.call{value: value}(data);
        uint256 used = before - gasleft();
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        txGas = 21_000 + _calldataGas(data) + used;
        console.log(step, txGas);
    }

    /// @dev A used system: an earlier in-flight exit queued and processed, so the framework's
    /// counters, queue and totals are initialised as on a live chain.
    function _warmUp() internal {
        (uint256 pos, bytes memory dep) = _depositEth(carol, 1 ether);
        bytes memory t = _pay1(pos, mallory, address(0), 1 ether);
        _startAs(carol, _ifeArgs1(t, pos, dep, carolKey));
        _piggybackOutputOf(uint256(keccak256(t)), mallory, 0);
        skip(3 * PERIOD);
        framework.processExits(address(0), 0, 1);
        // A pending exit in the queue, as on a live chain.
        (pos, dep) = _depositEth(carol, 1 ether);
        t = _pay1(pos, mallory, address(0), 1 ether);
        _startAs(carol, _ifeArgs1(t, pos, dep, carolKey));
        _piggybackOutputOf(uint256(keccak256(t)), mallory, 0);
    }

    function test_Gas_StartInFlightExit_1In1Out() public {
        _warmUp();
        (uint256 pos, bytes memory dep) = _depositEth(alice, 1 ether);
        bytes memory t = _pay1(pos, bob, address(0), 1 ether);
        bytes memory data = abi.encodeCall(ife.startInFlightExit, (_ifeArgs1(t, pos, dep, aliceKey)));
        assertLe(_txGas("startInFlightExit 1 in 1 out", address(ife), alice, IFE_BOND, data), START_1_1_BUDGET);
    }

    function test_Gas_StartInFlightExit_2In2Out() public {
        _warmUp();
        Pair memory p;
        (p.bobPos, p.bobDeposit) = _depositEth(bob, 5 ether);
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](2);
        outs[0] = _out(carol, address(0), 12 ether);
        outs[1] = _out(alice, address(0), 3 ether);
        uint256[] memory positions = _two(depositPos, p.bobPos);
        p.txBytes = _payment(positions, outs);
        bytes[] memory inputTxs = new bytes[](2);
        (inputTxs[0], inputTxs[1]) = (depositTx, p.bobDeposit);
        bytes memory data =
            abi.encodeCall(ife.startInFlightExit, (_ifeArgs(p.txBytes, positions, inputTxs, _two(aliceKey, bobKey))));
        assertLe(_txGas("startInFlightExit 2 in 2 out", address(ife), alice, IFE_BOND, data), START_2_2_BUDGET);
    }

    function test_Gas_StartInFlightExit_2In2Out_ChildBlockInputs() public {
        _warmUp();
        // Two outputs of a full-ish child block (proofs with non-empty siblings).
        bytes[] memory txs = new bytes[](3);
        txs[0] = _pay1(depositPos, alice, address(0), 10 ether);
        (uint256 bobPos,) = _depositEth(bob, 5 ether);
        txs[1] = _pay1(bobPos, bob, address(0), 5 ether);
        txs[2] = _pay1(7e9, carol, address(0), 1);
        uint256 blknum = _submitBlock(txs);
        uint256[] memory positions = _two(blknum * 1e9, blknum * 1e9 + 1e4);
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](2);
        outs[0] = _out(carol, address(0), 12 ether);
        outs[1] = _out(alice, address(0), 3 ether);
        bytes memory t = _payment(positions, outs);
        bytes[] memory inputTxs = new bytes[](2);
        (inputTxs[0], inputTxs[1]) = (txs[0], txs[1]);
        bytes memory data =
            abi.encodeCall(ife.startInFlightExit, (_ifeArgs(t, positions, inputTxs, _two(aliceKey, bobKey))));
        assertLe(
            _txGas("startInFlightExit 2 in 2 out, child blocks", address(ife), alice, IFE_BOND, data), START_2_2_BUDGET
        );
    }

    function test_Gas_PiggybackOutput() public {
        _warmUp();
        _start();
        bytes memory data = abi.encodeCall(ife.piggybackOutput, (exitId, 0));
        assertLe(
            _txGas("piggybackOutput (first of the exit)", address(ife), bob, PB_BOND, data), PIGGYBACK_OUTPUT_BUDGET
        );
    }

    function test_Gas_PiggybackInput() public {
        _warmUp();
        _start();
        bytes memory data = abi.encodeCall(ife.piggybackInput, (exitId, 0));
        assertLe(
            _txGas("piggybackInput (first of the exit)", address(ife), alice, PB_BOND, data), PIGGYBACK_INPUT_BUDGET
        );
    }

    /// @dev EXIT-9: a tower's delegated start, the party check on the authorization's signer
    /// (one signature recovery and two framework/standard-game reads more than a party's own start).
    function test_Gas_StartInFlightExitFor_1In1Out() public {
        _warmUp();
        (uint256 pos, bytes memory dep) = _depositEth(alice, 1 ether);
        bytes memory t = _pay1(pos, bob, address(0), 1 ether);
        (address tower,) = makeAccount("tower");
        vm.deal(tower, 1 ether);
        InFlightExitGame.Authorization memory auth = _ifeAuth(aliceKey, tower, block.timestamp + 1 days, 0);
        bytes memory data = abi.encodeCall(ife.startInFlightExitFor, (_ifeArgs1(t, pos, dep, aliceKey), auth));
        assertLe(
            _txGas("startInFlightExitFor 1 in 1 out", address(ife), tower, IFE_BOND, data), START_1_1_BUDGET + 30_000
        );
    }

    /// @dev EXIT-9: a tower's delegated piggyback (records the tower as the bond's owner).
    function test_Gas_PiggybackFor() public {
        _warmUp();
        _start();
        (address tower,) = makeAccount("tower");
        vm.deal(tower, 1 ether);
        InFlightExitGame.Authorization memory auth = _ifeAuth(bobKey, tower, block.timestamp + 1 days, 0);
        bytes memory data = abi.encodeCall(ife.piggybackFor, (exitId, true, 0, auth));
        assertLe(
            _txGas("piggybackFor output (first of the exit)", address(ife), tower, PB_BOND, data),
            PIGGYBACK_OUTPUT_BUDGET + 60_000
        );
    }

    function test_Gas_PiggybackOutput_Second() public {
        _warmUp();
        _start();
        _piggybackInput(alice, 0);
        bytes memory data = abi.encodeCall(ife.piggybackOutput, (exitId, 0));
        _txGas("piggybackOutput (token already queued)", address(ife), bob, PB_BOND, data);
    }

    function test_Gas_ChallengeInFlightExitNotCanonical() public {
        _warmUp();
        _start();
        bytes memory data = abi.encodeCall(ife.challengeInFlightExitNotCanonical, (_competitorArgs(_competitor(), 0)));
        assertLe(_txGas("challengeInFlightExitNotCanonical", address(ife), carol, 0, data), NON_CANONICAL_BUDGET);
    }

    function test_Gas_ChallengeInFlightExitNotCanonical_IncludedCompetitor() public {
        _warmUp();
        _start();
        bytes memory competing = _competitor();
        uint256 txPos = _submit1(competing) * 1e9;
        bytes memory data = abi.encodeCall(ife.challengeInFlightExitNotCanonical, (_competitorArgs(competing, txPos)));
        assertLe(
            _txGas("challengeInFlightExitNotCanonical, included", address(ife), carol, 0, data), NON_CANONICAL_BUDGET
        );
    }

    function test_Gas_RespondToNonCanonicalChallenge() public {
        _warmUp();
        _start();
        _challenge(carol, _competitor(), 0);
        uint256 txPos = _includeInFlight();
        uint256 blknum = UtxoPosLib.blknum(txPos);
        bytes memory data = abi.encodeCall(
            ife.respondToNonCanonicalChallenge, (exitId, inFlight, txPos, _proof(blknum, 0), blockTimestamp[blknum])
        );
        _txGas("respondToNonCanonicalChallenge", address(ife), bob, 0, data);
    }

    function test_Gas_ChallengeInFlightExitInputSpent() public {
        _warmUp();
        _start();
        _piggybackInput(alice, 0);
        bytes memory spend = _competitor();
        bytes memory data =
            abi.encodeCall(ife.challengeInFlightExitInputSpent, (exitId, 0, spend, 0, _signTx(aliceKey, spend)));
        _txGas("challengeInFlightExitInputSpent", address(ife), carol, 0, data);
    }

    function test_Gas_ChallengeInFlightExitOutputSpent() public {
        _warmUp();
        _start();
        _piggybackOutput(bob, 0);
        uint256 txPos = _includeInFlight();
        bytes memory spend = _pay1(txPos, carol, address(0), 6 ether);
        bytes memory data =
            abi.encodeCall(ife.challengeInFlightExitOutputSpent, (_outputSpentArgs(0, txPos, spend, bobKey)));
        _txGas("challengeInFlightExitOutputSpent", address(ife), carol, 0, data);
    }

    function test_Gas_DeleteNonPiggybackedInFlightExit() public {
        _warmUp();
        _start();
        skip(PERIOD / 2);
        bytes memory data = abi.encodeCall(ife.deleteNonPiggybackedInFlightExit, (exitId));
        _txGas("deleteNonPiggybackedInFlightExit", address(ife), alice, 0, data);
    }

    function test_Gas_ProcessOneInFlightExit_Canonical() public {
        _warmUp();
        _start();
        _piggybackOutput(bob, 0);
        skip(3 * PERIOD);
        framework.processExits(address(0), 0, 1); // the warm-up's pending exit
        bytes memory data = abi.encodeCall(framework.processExits, (address(0), 0, 1));
        assertLe(
            _txGas("processExits, one in-flight exit (canonical, 1 output)", address(framework), carol, 0, data),
            PROCESS_BUDGET
        );
        assertEq(_state(exitId).verdict, 1);
    }

    function test_Gas_ProcessOneInFlightExit_NonCanonical() public {
        _warmUp();
        _start();
        _piggybackInput(alice, 0);
        _challenge(carol, _competitor(), 0);
        skip(3 * PERIOD);
        framework.processExits(address(0), 0, 1); // the warm-up's pending exit
        bytes memory data = abi.encodeCall(framework.processExits, (address(0), 0, 1));
        assertLe(
            _txGas("processExits, one in-flight exit (non-canonical, 1 input)", address(framework), carol, 0, data),
            PROCESS_BUDGET
        );
        assertEq(_state(exitId).verdict, 2);
    }

    function test_Gas_ProcessOneInFlightExit_2In2Out() public {
        _warmUp();
        Pair memory p = _startPair();
        _piggybackOutputOf(p.id, carol, 0);
        _piggybackOutputOf(p.id, alice, 1);
        skip(3 * PERIOD);
        framework.processExits(address(0), 0, 1); // the warm-up's pending exit
        bytes memory data = abi.encodeCall(framework.processExits, (address(0), 0, 1));
        assertLe(
            _txGas("processExits, one in-flight exit (canonical, 2 in, 2 outputs)", address(framework), carol, 0, data),
            PROCESS_BUDGET
        );
    }
}
