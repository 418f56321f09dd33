// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {BatchExitGame} from "../contracts/exits/BatchExitGame.sol";
import {ExitGameBase} from "../contracts/exits/ExitGameBase.sol";
import {InFlightExitGame} from "../contracts/exits/InFlightExitGame.sol";
import {StandardExitGame} from "../contracts/exits/StandardExitGame.sol";
import {IPlasmaFramework} from "../contracts/interfaces/IPlasmaFramework.sol";
import {Merkle} from "../contracts/libraries/Merkle.sol";
import {PlasmaEip712} from "../contracts/libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../contracts/libraries/UtxoPosLib.sol";
import {LibraryHarness} from "./harness/LibraryHarness.sol";
import {BatchFixtures} from "./utils/BatchFixtures.sol";
import {TestToken} from "./utils/Tokens.sol";

/// @notice Attacks on the in-flight exit game (spec: EXIT-6 … EXIT-11, CHAL-1 … CHAL-5, OUT-2, BOND-1),
/// played against the whole system (framework, standard, in-flight and batch games). Every test is
/// an attack that must fail; each asserts what protects the users: who is paid, how much, which
/// revert stops the attacker, and where every bond went.
contract InFlightExitAdversarialTest is BatchFixtures {
    uint256 internal constant IFE_BOND = 0.02 ether;
    uint256 internal constant PB_BOND = 0.005 ether;
    uint96 internal constant NOT_INCLUDED = type(uint96).max;
    uint8 internal constant CANONICAL = 1;
    uint8 internal constant NOT_CANONICAL = 2;

    InFlightExitGame internal ife;
    TestToken internal token;
    LibraryHarness internal lib;
    /// @dev Calls `processExits`, so the bounties never mix with the parties' balances.
    address internal keeper;

    function _deployInFlightGame() internal override returns (address) {
        ife = new InFlightExitGame(IPlasmaFramework(address(framework)), operator, IFE_BOND, PB_BOND);
        return address(ife);
    }

    function setUp() public override {
        super.setUp();
        token = new TestToken();
        lib = new LibraryHarness();
        (keeper,) = makeAccount("keeper");
    }

    // ---------------------------------------------------------------- helpers

    function _one(uint256 x) internal pure returns (uint256[] memory r) {
        r = new uint256[](1);
        r[0] = x;
    }

    /// @dev alice pays bob 6 and herself 4 of `tok` from her 10 at `input`.
    function _aliceToBob(uint256 input, address tok) internal view returns (bytes memory) {
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](2);
        outs[0] = _out(bob, tok, 6 ether);
        outs[1] = _out(alice, tok, 4 ether);
        return _payment(_one(input), outs);
    }

    function _depositTok(address owner, uint256 amount) internal returns (uint256 utxoPos, bytes memory txBytes) {
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

    /// @dev Start arguments of a one-input transaction signed by `key`.
    function _args1(bytes memory txBytes, uint256 pos, bytes memory inTx, uint256 key)
        internal
        view
        returns (InFlightExitGame.StartArgs memory a)
    {
        uint256 blknum = UtxoPosLib.blknum(pos);
        a.inFlightTx = txBytes;
        a.inputTxs = new bytes[](1);
        a.inputTxs[0] = inTx;
        a.inputUtxoPos = _one(pos);
        a.inputProofs = new bytes[](1);
        a.inputProofs[0] = _proof(blknum, UtxoPosLib.txIndex(pos));
        a.inputBlockTimestamps = new uint64[](1);
        a.inputBlockTimestamps[0] = blockTimestamp[blknum];
        a.signatures = new bytes[](1);
        a.signatures[0] = _signTx(key, txBytes);
    }

    function _startIfe(address party, InFlightExitGame.StartArgs memory a) internal returns (uint256) {
        vm.prank(party);
        ife.startInFlightExit{value: IFE_BOND}(a);
        return uint256(keccak256(a.inFlightTx));
    }

    function _pbOut(uint256 id, address who, uint8 index) internal {
        vm.prank(who);
        ife.piggybackOutput{value: PB_BOND}(id, index);
    }

    function _pbIn(uint256 id, address who, uint8 index) internal {
        vm.prank(who);
        ife.piggybackInput{value: PB_BOND}(id, index);
    }

    /// @dev A canonicity challenge of input 0 of exit `id` with `competing` signed by `key`, shown at
    /// `txPos` (0: not included) with the proof of the block as the test built it.
    function _comp(uint256 id, bytes memory competing, uint256 key, uint256 txPos)
        internal
        view
        returns (InFlightExitGame.CompetitorArgs memory c)
    {
        c.exitId = id;
        c.competingTx = competing;
        c.competitorSignature = _signTx(key, competing);
        c.competitorTxPos = txPos;
        if (txPos != 0) {
            uint256 blknum = UtxoPosLib.blknum(txPos);
            c.competitorProof = _proof(blknum, UtxoPosLib.txIndex(txPos));
            c.competitorBlockTimestamp = blockTimestamp[blknum];
        }
    }

    /// @dev Sends a call as `who`; returns the revert data (empty: accepted).
    function _try(address who, address target, bytes memory data) internal returns (bytes memory err) {
        vm.prank(who);
        (bool ok, bytes memory ret) = target.call(data);
        if (ok) return "";
        require(ret.length != 0, "a refusal must carry its reason");
        return ret;
    }

    function _tryChallenge(address who, InFlightExitGame.CompetitorArgs memory c) internal returns (bytes memory) {
        return _try(who, address(ife), abi.encodeCall(ife.challengeInFlightExitNotCanonical, (c)));
    }

    function _tryRespondRaw(address who, uint256 id, bytes memory txBytes, uint256 pos, bytes memory proof, uint64 ts)
        internal
        returns (bytes memory)
    {
        return
            _try(who, address(ife), abi.encodeCall(ife.respondToNonCanonicalChallenge, (id, txBytes, pos, proof, ts)));
    }

    /// @dev Responds with `txBytes`'s inclusion at `pos` as the test built it.
    function _tryRespond(address who, uint256 id, bytes memory txBytes, uint256 pos) internal returns (bytes memory) {
        uint256 blknum = UtxoPosLib.blknum(pos);
        return _tryRespondRaw(who, id, txBytes, pos, _proof(blknum, UtxoPosLib.txIndex(pos)), blockTimestamp[blknum]);
    }

    function _verdict(uint256 id) internal view returns (uint8 verdict) {
        (,,,,,, verdict,) = ife.inFlightExit(id);
    }

    function _nonCanonical(uint256 id) internal view returns (bool nonCanonical) {
        (,,,,, nonCanonical,,) = ife.inFlightExit(id);
    }

    function _startedAt(uint256 id) internal view returns (uint256 startedAt) {
        (, startedAt,,,,,,) = ife.inFlightExit(id);
    }

    function _exitableAt(uint256 id) internal view returns (uint256 exitableAt) {
        (,, exitableAt,,,,,) = ife.inFlightExit(id);
    }

    function _eth(address who) internal view returns (uint256) {
        return framework.withdrawable(who, address(0));
    }

    /// @dev The keeper settles `queueToken`'s due exits until none is left.
    function _drain(address queueToken) internal {
        while (true) {
            (uint256 head,) = framework.queueHead(queueToken);
            if (head == 0) break;
            vm.prank(keeper);
            framework.processExits(queueToken, 0, 10);
        }
    }

    function _sel(bytes memory err) internal pure returns (bytes4 s) {
        assembly {
            s := mload(add(err, 32))
        }
    }

    function _ifeAuth(uint256 ownerKey, address exitor) internal view returns (InFlightExitGame.Authorization memory) {
        uint256 deadline = block.timestamp + 30 days;
        bytes32 digest =
            PlasmaEip712.digest(framework.domainSeparator(), PlasmaEip712.hashExitAuthorization(exitor, deadline, 0));
        return InFlightExitGame.Authorization(deadline, 0, _sign(ownerKey, digest));
    }

    // ---------------------------------------------------------------- OUT-2: paid once across games

    /// @dev Attack: bob is owed one output (6 tokens of a payment that was included) and exits it by
    /// all three roads at once — a piggybacked in-flight exit, a standard exit and a batch claim — in
    /// every start order (so every settlement order), paying out the batch the moment it is
    /// processed. Whatever comes first finalizes the output id; the other two are void (spec: OUT-2,
    /// EXIT-5, EXIT-11, EXIT-15). Bob gets 6 tokens once, the vault credits 6 tokens in all.
    function testFuzz_OneOutputIsPaidOnceAcrossInFlightStandardAndBatch(uint8 order) public {
        (uint256 dPos,) = _depositTok(alice, 10 ether);
        _depositTok(carol, 10 ether); // the vault could pay bob twice
        bytes memory t = _aliceToBob(dPos, address(token));
        uint256 bobPos = _submit1(t) * 1e9;
        uint256 id = uint256(keccak256(t));
        skip(2 * PERIOD); // every input is old: each exit is due one period after its start

        uint256[3] memory seq;
        uint256 p = order % 6;
        seq[0] = p / 2;
        (uint256 a, uint256 b) = ((seq[0] + 1) % 3, (seq[0] + 2) % 3);
        (seq[1], seq[2]) = p % 2 == 0 ? (a, b) : (b, a);
        uint256 batchId;
        for (uint256 k = 0; k < 3; ++k) {
            if (seq[k] == 0) {
                // bob, a party (he owns an output), starts the in-flight exit with alice's signature.
                _startIfe(bob, _args1(t, dPos, _depositTx(alice, address(token), 10 ether), aliceKey));
                _pbOut(id, bob, 0);
            } else if (seq[k] == 1) {
                StandardExitGame.StartArgs memory se = _startArgs(bobPos, t);
                vm.prank(bob);
                seGame.startStandardExit{value: SE_BOND}(se);
            } else {
                batchId = _start(bob, address(token), _groups1(bob, _rec(bobPos, 6 ether)));
            }
            skip(1 hours);
        }

        skip(PERIOD);
        bool paidOut;
        for (uint256 k = 0; k < 3; ++k) {
            vm.prank(keeper);
            framework.processExits(address(token), 0, 1);
            if (!paidOut) {
                BatchExitGame.Payout[] memory po = new BatchExitGame.Payout[](1);
                po[0] = _payout(batchId, 0, t);
                (paidOut,) = address(batchGame).call(abi.encodeCall(batchGame.payoutBatchClaims, (po)));
            }
        }
        (uint256 head,) = framework.queueHead(address(token));
        assertEq(head, 0, "all three exits settled");
        assertTrue(paidOut, "the batch claim was paid out (or voided)");
        assertEq(_verdict(id), CANONICAL);
        assertTrue(framework.isOutputFinalized(PlasmaTx.outputId(bytes32(id), true, 0, 0)));
        assertEq(framework.withdrawable(bob, address(token)), 6 ether, "bob is paid his output exactly once");
        assertEq(framework.totalCredited(address(token)), 6 ether, "the vault credits 6 tokens in all");
        assertEq(framework.withdrawable(alice, address(token)), 0, "alice's change was never claimed");
    }

    /// @dev Attack: alice double-spends her deposit in two in-flight payments (to bob and alice, and
    /// to carol) and also exits the deposit by a standard exit; no watcher challenges anything. The
    /// three exits start in any order (ties included) and every party piggybacks every item it
    /// owns. Whatever settles first spends the deposit (a canonical exit finalizes its input, a
    /// standard exit settles it); every later claim on it is non-canonical or void (spec: OUT-2,
    /// CHAL-5, EXIT-11). 10 ether was deposited; exactly 10 ether is credited, and at most one of
    /// the two payments settles canonical.
    function testFuzz_DoubleSpentInputIsPaidOnceWhateverTheOrder(
        uint32 offT,
        uint32 offC,
        uint32 offS,
        bool withStandardExit,
        bool piggybackInputs
    ) public {
        (uint256 dPos, bytes memory dTx) = _depositEth(alice, 10 ether);
        _depositEth(carol, 50 ether); // the vault could overpay
        bytes memory t = _aliceToBob(dPos, address(0));
        bytes memory c = _pay1(dPos, carol, address(0), 10 ether);
        skip(2 * PERIOD);
        uint256 base = block.timestamp;
        uint256[3] memory at = [bound(offT, 0, 3 days), bound(offC, 0, 3 days), bound(offS, 0, 3 days)];
        bool[3] memory done;
        for (uint256 n = 0; n < 3; ++n) {
            uint256 k = 3;
            for (uint256 j = 0; j < 3; ++j) {
                if (!done[j] && (k == 3 || at[j] < at[k])) k = j;
            }
            done[k] = true;
            vm.warp(base + at[k]);
            if (k == 0) {
                uint256 id = _startIfe(bob, _args1(t, dPos, dTx, aliceKey));
                _pbOut(id, bob, 0);
                _pbOut(id, alice, 1);
                if (piggybackInputs) _pbIn(id, alice, 0);
            } else if (k == 1) {
                uint256 id = _startIfe(carol, _args1(c, dPos, dTx, aliceKey));
                _pbOut(id, carol, 0);
                if (piggybackInputs) _pbIn(id, alice, 0);
            } else if (withStandardExit) {
                StandardExitGame.StartArgs memory se = _startArgs(dPos, dTx);
                vm.prank(alice);
                seGame.startStandardExit{value: SE_BOND}(se);
            }
        }
        skip(3 days + PERIOD + 1);
        _drain(address(0));

        uint8 vT = _verdict(uint256(keccak256(t)));
        uint8 vC = _verdict(uint256(keccak256(c)));
        assertTrue(vT != 0 && vC != 0, "both in-flight exits settled");
        assertTrue(vT != CANONICAL || vC != CANONICAL, "two spends of one input cannot both be canonical");
        assertEq(framework.totalCredited(address(0)), 10 ether, "the deposit is paid exactly once");
        assertTrue(framework.isOutputFinalized(PlasmaTx.outputId(keccak256(dTx), false, 0, dPos)));
    }

    /// @dev Attack: "exit an input of a canonical transaction". Once the payment settled canonical,
    /// alice tries to get her spent deposit back by every road: a standard exit (refused at start),
    /// the in-flight exit of a double spend of it with her input piggybacked (non-canonical: its input
    /// is finalized, and the input itself is not paid), and a batch claim (void at payout). The vault
    /// pays the payment's 10 ether once and nothing else.
    function test_InputsOfACanonicalPaymentStaySpentForEveryGame() public {
        (uint256 dPos, bytes memory dTx) = _deposit(alice, 10 ether);
        _depositEth(carol, 50 ether);
        bytes memory t = _aliceToBob(dPos, address(0));
        uint256 id = _startIfe(bob, _args1(t, dPos, dTx, aliceKey));
        _pbOut(id, bob, 0);
        _pbOut(id, alice, 1);
        _pbIn(id, alice, 0); // alice hedges: a canonical verdict returns her bond, never the input
        skip(2 * PERIOD);
        _drain(address(0));
        assertEq(_verdict(id), CANONICAL);
        assertEq(framework.totalCredited(address(0)), 10 ether);

        // Standard exit of the spent input: refused at start.
        StandardExitGame.StartArgs memory se = _startArgs(dPos, dTx);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitOutputFinalized.selector, dPos));
        seGame.startStandardExit{value: SE_BOND}(se);

        // A double spend of it exited in flight: alice piggybacks the input, carol the output.
        bytes memory c = _pay1(dPos, carol, address(0), 10 ether);
        uint256 cid = _startIfe(carol, _args1(c, dPos, dTx, aliceKey));
        _pbOut(cid, carol, 0);
        _pbIn(cid, alice, 0);
        // A batch claim of the same deposit.
        uint256 batchId = _start(alice, address(0), _groups1(alice, _rec(dPos, 10 ether)));
        skip(2 * PERIOD + 1);
        _drain(address(0));
        _pay1(batchId, 0, dTx);

        assertEq(_verdict(cid), NOT_CANONICAL, "a finalized input makes the double spend non-canonical");
        assertEq(batchGame.claimState(batchId, 0), 2, "the batch claim is void");
        assertEq(framework.totalCredited(address(0)), 10 ether, "nothing more left the vault");
        assertEq(_eth(carol), PB_BOND / 2 + IFE_BOND / 2, "carol only gets her bonds back, minus bounties");
    }

    // ---------------------------------------------------------------- CHAL-1 / CHAL-2: the race

    /// @dev Attack: the canonicity race, with an operator that includes the in-flight payment and
    /// competing spends of its input in any arrangement of four blocks (several inclusions of each),
    /// and an attacker who plays eight moves — challenges with any competitor (or an unincluded one,
    /// or the payment itself) and responses with any inclusion (or a wrong one) — spread over phase 1
    /// down to its last second and after it. The honest side plays once: the recipient of the oldest
    /// competing spend challenges with it at a fuzzed moment of phase 1 if it is older than every
    /// inclusion of the payment; otherwise bob answers with the payment's oldest inclusion after
    /// everything else. Whatever the attacker does, the verdict is the truth: canonical iff the
    /// payment was included before every competitor (spec: CHAL-1, CHAL-2, `CanonicityGame`; the
    /// issue-12 swap is one of the attacker's move sequences).
    function testFuzz_CanonicityRaceEndsOnTheOldestEvidence(uint8 layout, uint256 moves, uint8 honestAt) public {
        _race(layout, moves, honestAt);
    }

    /// @dev The issue-12 swap replayed through the same race (spec: CHAL-1): blocks [carol's honest
    /// competitor 1000, payment 2000, second competitor 3000, payment 4000]. mallory challenges with
    /// an unincluded competitor and answers it with the late inclusion (4000); carol challenges with
    /// 1000; at the last second of phase 1 mallory swaps in 3000, then after phase 1 answers with
    /// 2000. Both refused: the double spend settles non-canonical and carol's competitor stands.
    function test_CanonicityRace_Issue12SwapAtTheLastSecond() public {
        uint256 moves = 8 | (7 << 8) | (8 << 16) | (8 << 24) | (8 << 32) | (4 << 40) | (3 << 48) | (3 << 56);
        (bool truth, uint256 id) = _race(0x0a, moves, 2);
        assertFalse(truth);
        (,,,, address challenger, uint256 competitorTxPos, uint256 inFlightTxPos) = ife.inFlightExitDetails(id);
        assertEq(challenger, carol, "carol's challenge stands: the swap was refused");
        assertEq(competitorTxPos, 1000e9);
        assertEq(inFlightTxPos, 4000e9, "the late answer was accepted, the early one refused");
        assertEq(_eth(carol), IFE_BOND / 2);
    }

    /// @dev The race of `testFuzz_CanonicityRaceEndsOnTheOldestEvidence`; returns the truth.
    function _race(uint256 layout, uint256 moves, uint256 honestAt) internal returns (bool truth, uint256 id) {
        (uint256 dPos, bytes memory dTx) = _depositEth(alice, 10 ether);
        _depositEth(carol, 10 ether);
        bytes memory t = _aliceToBob(dPos, address(0));
        id = uint256(keccak256(t));
        bytes[5] memory txs; // txs[4]: a competitor never included
        uint256 tStar;
        uint256 cStar;
        for (uint256 b = 0; b < 4; ++b) {
            bool isT = (layout >> b) & 1 == 1;
            txs[b] = isT ? t : _pay1(dPos, address(uint160(0xC0 + b)), address(0), 10 ether);
            uint256 pos = _submit1(txs[b]) * 1e9;
            if (isT && tStar == 0) tStar = pos;
            if (!isT && cStar == 0) cStar = pos;
        }
        txs[4] = _pay1(dPos, address(0xCC), address(0), 10 ether);
        truth = tStar != 0 && (cStar == 0 || tStar < cStar);

        _startIfe(bob, _args1(t, dPos, dTx, aliceKey));
        _pbOut(id, bob, 0);
        uint256 start = block.timestamp;
        for (uint256 i = 0; i < 8; ++i) {
            // Six moves in phase 1, the last at its last second; two after it.
            vm.warp(i < 6 ? start + (i * (PERIOD / 2 - 1)) / 5 : start + PERIOD / 2 + i * 1 hours);
            if (!truth && i == honestAt % 6) {
                bytes memory honest = cStar == 0 ? txs[4] : txs[cStar / 1e12 - 1];
                _tryChallenge(carol, _comp(id, honest, aliceKey, cStar));
                assertTrue(_nonCanonical(id), "the oldest competitor always lands in phase 1");
            }
            uint256 m = uint8(moves >> (8 * i));
            uint256 idx = (m >> 1) % 5;
            uint256 pos = idx == 4 ? 0 : (idx + 1) * 1e12;
            if (m & 1 == 0) {
                _tryChallenge(mallory, _comp(id, txs[idx], aliceKey, pos));
            } else if (pos != 0) {
                _tryRespond(mallory, id, t, pos);
            }
        }
        if (truth && _nonCanonical(id)) {
            assertEq(_tryRespond(bob, id, t, tStar), "", "the oldest inclusion always answers");
        }
        vm.warp(_exitableAt(id));
        _drain(address(0));

        assertEq(_verdict(id), truth ? CANONICAL : NOT_CANONICAL, "the verdict is the truth");
        assertEq(framework.totalCredited(address(0)), truth ? 6 ether : 0, "bob is paid iff the payment happened");
        if (!truth && cStar != 0) {
            (,,,, address challenger, uint256 competitorTxPos,) = ife.inFlightExitDetails(id);
            assertEq(competitorTxPos, cStar, "the oldest competitor stands at settlement");
            assertGe(_eth(challenger), IFE_BOND / 2, "its challenger takes half the exit bond");
        }
    }

    /// @dev Attack: in one block the operator puts the competitor first and the in-flight payment
    /// second (so the payment is the invalid double spend) — the attacker answers the challenge with
    /// the payment's inclusion in the same block. Refused: within a block the lower index is older.
    /// The mirror case (payment first) answers, and then the same-block competitor cannot come back.
    function test_SameBlockCompetitorAndPaymentAreOrderedByIndex() public {
        (uint256 dPos, bytes memory dTx) = _depositEth(alice, 10 ether);
        (uint256 ePos, bytes memory eTx) = _depositEth(carol, 10 ether);
        // Exit X: [competitor, payment] in one block.
        bytes memory t = _aliceToBob(dPos, address(0));
        bytes memory c = _pay1(dPos, mallory, address(0), 10 ether);
        // Exit Y: [payment, competitor] in the next.
        bytes memory t2 = _pay1(ePos, bob, address(0), 10 ether);
        bytes memory c2 = _pay1(ePos, mallory, address(0), 10 ether);
        bytes[] memory blk = new bytes[](2);
        (blk[0], blk[1]) = (c, t);
        uint256 bx = _submitBlock(blk) * 1e9;
        (blk[0], blk[1]) = (t2, c2);
        uint256 by = _submitBlock(blk) * 1e9;

        uint256 x = _startIfe(bob, _args1(t, dPos, dTx, aliceKey));
        uint256 y = _startIfe(bob, _args1(t2, ePos, eTx, carolKey));
        _pbOut(x, bob, 0);
        _pbOut(y, bob, 0);
        assertEq(_tryChallenge(carol, _comp(x, c, aliceKey, bx)), "");
        assertEq(_tryChallenge(carol, _comp(y, c2, carolKey, by + 1e4)), "");

        assertEq(
            _tryRespond(bob, x, t, bx + 1e4),
            abi.encodeWithSelector(InFlightExitGame.InFlightExitResponseNotOlder.selector, bx + 1e4, bx)
        );
        assertEq(_tryRespond(bob, y, t2, by), "");
        assertEq(
            _tryChallenge(mallory, _comp(y, c2, carolKey, by + 1e4)),
            abi.encodeWithSelector(InFlightExitGame.InFlightExitCompetitorNotOlder.selector, by + 1e4, by)
        );
        skip(2 * PERIOD);
        _drain(address(0));
        assertEq(_verdict(x), NOT_CANONICAL);
        assertEq(_verdict(y), CANONICAL);
        assertEq(framework.totalCredited(address(0)), 10 ether, "only the payment that happened pays bob");
        assertEq(_eth(carol), IFE_BOND / 2, "carol's standing challenge of X takes half its bond; Y's nothing");
    }

    /// @dev Attack: the same transaction, or a malleated form of it, as its own competitor. The
    /// payment itself is refused; a longer encoding or one with dirty address bits does not decode;
    /// a high-s or 64-byte form of the owner's signature on a real competitor does not recover
    /// (spec: ENC-2, SIG-3). Only the genuine competitor with the genuine signature challenges.
    function test_TheSameTxMalleatedOrReSignedCannotCompete() public {
        (uint256 dPos, bytes memory dTx) = _depositEth(alice, 10 ether);
        bytes memory t = _aliceToBob(dPos, address(0));
        uint256 id = _startIfe(bob, _args1(t, dPos, dTx, aliceKey));
        _pbOut(id, bob, 0);

        InFlightExitGame.CompetitorArgs memory c = _comp(id, t, aliceKey, 0);
        assertEq(
            _tryChallenge(mallory, c), abi.encodeWithSelector(InFlightExitGame.InFlightExitSameTransaction.selector, id)
        );
        c.competingTx = abi.encodePacked(t, bytes32(0));
        assertEq(_sel(_tryChallenge(mallory, c)), PlasmaTx.PlasmaTxNonCanonical.selector, "padding");
        bytes memory dirty = abi.encodePacked(t);
        dirty[7 * 32 + 1 * 32 + 11] = 0x01; // a bit above output 0's 160-bit owner
        c.competingTx = dirty;
        assertEq(_sel(_tryChallenge(mallory, c)), PlasmaTx.PlasmaTxNonCanonical.selector, "dirty address word");

        bytes memory real = _pay1(dPos, carol, address(0), 10 ether);
        c = _comp(id, real, aliceKey, 0);
        bytes memory sig = c.competitorSignature;
        (bytes32 r, bytes32 s) = (bytes32(0), bytes32(0));
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
        }
        uint8 v = uint8(sig[64]);
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        c.competitorSignature = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        assertEq(
            _tryChallenge(mallory, c), abi.encodeWithSelector(PlasmaEip712.PlasmaSignatureInvalid.selector, 0), "high s"
        );
        uint256 vs = uint256(s) | (uint256(v - 27) << 255);
        c.competitorSignature = abi.encodePacked(r, bytes32(vs));
        assertEq(
            _tryChallenge(mallory, c),
            abi.encodeWithSelector(PlasmaEip712.PlasmaSignatureInvalid.selector, 0),
            "EIP-2098"
        );
        assertFalse(_nonCanonical(id), "no malleated challenge landed");
        c.competitorSignature = sig;
        assertEq(_tryChallenge(mallory, c), "", "the genuine competitor does");
        assertTrue(_nonCanonical(id));
    }

    /// @dev Attack: flip any bits of any word of the in-flight payment and present it, with the
    /// owner's signature of the payment, as a competitor. Either the bytes do not decode, or they are
    /// a different transaction (another EIP-712 struct hash), which the payment's signature does not
    /// sign: the canonical encoding is the only one, so there is no second hash for "the same" tx.
    function testFuzz_NoOtherEncodingOfThePaymentCompetesWithIt(uint256 wordSeed, uint256 mask) public {
        vm.assume(mask != 0);
        (uint256 dPos, bytes memory dTx) = _depositEth(alice, 10 ether);
        bytes memory t = _aliceToBob(dPos, address(0));
        uint256 id = _startIfe(bob, _args1(t, dPos, dTx, aliceKey));
        bytes memory mutated = abi.encodePacked(t);
        uint256 w = wordSeed % (t.length / 32);
        assembly {
            let p := add(add(mutated, 32), mul(w, 32))
            mstore(p, xor(mload(p), mask))
        }
        try lib.decodeValid(mutated) returns (PlasmaTx.Transaction memory) {
            assertNotEq(lib.structHash(mutated), lib.structHash(t));
        } catch {}
        InFlightExitGame.CompetitorArgs memory c;
        (c.exitId, c.competingTx, c.competitorSignature) = (id, mutated, _signTx(aliceKey, t));
        assertTrue(_tryChallenge(mallory, c).length != 0, "refused");
        assertFalse(_nonCanonical(id));
    }

    /// @dev The evidence scene: alice's deposit `dPos`, carol's `ePos`; the payment `t` (alice to bob)
    /// at index 1 of a block (`tPos`), a competing spend `c` (alice to carol) in the next (`cPos`);
    /// bob's exit `id` of `t`, its output 0 piggybacked.
    struct Scene {
        uint256 dPos;
        uint256 ePos;
        bytes eTx;
        bytes t;
        bytes c;
        uint256 tPos;
        uint256 cPos;
        uint256 id;
        bytes proof; // t's proof at tPos
        uint64 ts; // tPos's block time
    }

    function _scene() internal returns (Scene memory z) {
        bytes memory dTx;
        (z.dPos, dTx) = _depositEth(alice, 10 ether);
        (z.ePos, z.eTx) = _depositEth(carol, 10 ether);
        z.t = _aliceToBob(z.dPos, address(0));
        z.c = _pay1(z.dPos, carol, address(0), 10 ether);
        bytes[] memory blk = new bytes[](2);
        (blk[0], blk[1]) = (_pay1(z.ePos, carol, address(0), 1 ether), z.t);
        uint256 blkT = _submitBlock(blk);
        z.tPos = blkT * 1e9 + 1e4;
        z.cPos = _submit1(z.c) * 1e9;
        z.id = _startIfe(bob, _args1(z.t, z.dPos, dTx, aliceKey));
        _pbOut(z.id, bob, 0);
        z.proof = _proof(blkT, 1);
        z.ts = blockTimestamp[blkT];
    }

    /// @dev Attack: transplant a competitor's inclusion evidence — claim it in a block not committed
    /// yet, at a misstated block time, at a committed position that holds something else, at a
    /// deposit block's position. Every one is refused and the exit stays canonical; the genuine
    /// evidence lands.
    function testFuzz_CompetitorEvidenceIsBoundToItsPlace(uint32 tsShift, uint8 blockShift) public {
        vm.assume(tsShift != 0);
        Scene memory z = _scene();
        InFlightExitGame.CompetitorArgs memory ca = _comp(z.id, z.c, aliceKey, z.cPos);
        uint256 future = (UtxoPosLib.blknum(z.cPos) + 1000 * (1 + uint256(blockShift))) * 1e9;
        ca.competitorTxPos = future;
        assertEq(
            _tryChallenge(mallory, ca),
            abi.encodeWithSelector(ExitGameBase.ExitGameUnknownBlock.selector, UtxoPosLib.blknum(future))
        );
        ca.competitorTxPos = z.cPos;
        ca.competitorBlockTimestamp += tsShift;
        assertEq(
            _tryChallenge(mallory, ca),
            abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, z.cPos)
        );
        uint256 other = z.tPos - 1e4; // a committed block, another transaction at that index
        ca = _comp(z.id, z.c, aliceKey, z.cPos);
        (ca.competitorTxPos, ca.competitorBlockTimestamp) = (other, z.ts);
        assertEq(
            _tryChallenge(mallory, ca),
            abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, other)
        );
        (ca.competitorTxPos, ca.competitorBlockTimestamp) = (z.dPos, blockTimestamp[UtxoPosLib.blknum(z.dPos)]);
        assertEq(
            _tryChallenge(mallory, ca),
            abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, z.dPos)
        );
        assertFalse(_nonCanonical(z.id), "no transplanted competitor landed");
        assertEq(_tryChallenge(mallory, _comp(z.id, z.c, aliceKey, z.cPos)), "");
        assertTrue(_nonCanonical(z.id));
    }

    /// @dev Attack: transplant a response's inclusion evidence — the tx index aliased modulo the
    /// tree's 2^16 leaves, an output position instead of a transaction position, a misstated block
    /// time, the neighbouring index; then use the inclusion one exit's response recorded to skip the
    /// proof in another exit's output challenge (CHAL-4), and one exit's payment proof to answer
    /// another exit. Every one is refused; the genuine evidence answers.
    function testFuzz_ResponseEvidenceIsBoundToItsPlaceAndExit(uint32 tsShift, uint8 oindex) public {
        vm.assume(tsShift != 0);
        Scene memory z = _scene();
        assertEq(_tryChallenge(mallory, _comp(z.id, z.c, aliceKey, z.cPos)), "");
        uint256 aliased = z.tPos + 65_536 * 1e4; // index 65537: the same leaf modulo 2^16
        assertEq(
            _tryRespondRaw(bob, z.id, z.t, aliased, z.proof, z.ts),
            abi.encodeWithSelector(UtxoPosLib.UtxoPosInvalid.selector, aliased)
        );
        uint256 withOutput = z.tPos + 1 + (oindex % 4);
        assertEq(
            _tryRespondRaw(bob, z.id, z.t, withOutput, z.proof, z.ts),
            abi.encodeWithSelector(InFlightExitGame.InFlightExitBadTxPos.selector, withOutput)
        );
        assertEq(
            _tryRespondRaw(bob, z.id, z.t, z.tPos, z.proof, z.ts + tsShift),
            abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, z.tPos)
        );
        assertEq(
            _tryRespondRaw(bob, z.id, z.t, z.tPos - 1e4, z.proof, z.ts),
            abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, z.tPos - 1e4)
        );
        assertTrue(_nonCanonical(z.id), "no transplanted response landed");
        assertEq(_tryRespondRaw(bob, z.id, z.t, z.tPos, z.proof, z.ts), "");
        assertFalse(_nonCanonical(z.id));

        // Exit Y, with a piggybacked output: X's recorded inclusion does not excuse Y's proof.
        bytes memory t2 = _pay1(z.ePos, bob, address(0), 10 ether);
        uint256 y = _startIfe(bob, _args1(t2, z.ePos, z.eTx, carolKey));
        _pbOut(y, bob, 0);
        bytes memory spend = _pay1(z.tPos, mallory, address(0), 10 ether);
        InFlightExitGame.OutputSpentArgs memory os =
            InFlightExitGame.OutputSpentArgs(y, 0, t2, z.tPos, "", 0, spend, 0, _signTx(bobKey, spend));
        assertEq(
            _try(mallory, address(ife), abi.encodeCall(ife.challengeInFlightExitOutputSpent, (os))),
            abi.encodeWithSelector(Merkle.MerkleProofLength.selector, 0)
        );
        // X's payment proof answering Y: the wrong transaction.
        assertEq(_tryChallenge(mallory, _comp(y, _pay1(z.ePos, mallory, address(0), 10 ether), carolKey, 0)), "");
        assertEq(
            _tryRespondRaw(bob, y, z.t, z.tPos, z.proof, z.ts),
            abi.encodeWithSelector(InFlightExitGame.InFlightExitWrongTransaction.selector, y, keccak256(z.t))
        );
        assertTrue(_nonCanonical(y));
    }

    // ---------------------------------------------------------------- timing

    /// @dev Attack: act at the phase boundaries, to the second, whenever the exit starts. At the last
    /// second of phase 1 piggybacks and challenges land and an unpiggybacked exit cannot be deleted;
    /// at its end they are refused and deletion opens; a challenge at the last second still leaves
    /// the honest responder until the exit is processable (at least half a period); processing waits
    /// for `exitableAt` exactly; after processing nothing can change the outcome.
    function testFuzz_PhaseBoundariesToTheSecond(uint32 delay) public {
        (uint256 dPos, bytes memory dTx) = _depositEth(alice, 10 ether);
        uint256 y = _bobsOwnExitLater(bound(delay, 0, 4 * PERIOD));
        bytes memory t = _aliceToBob(dPos, address(0));
        uint256 x = _startIfe(bob, _args1(t, dPos, dTx, aliceKey));
        uint256 phaseEnd = _startedAt(x) + PERIOD / 2;
        bytes memory c = _pay1(dPos, carol, address(0), 10 ether);

        vm.warp(phaseEnd - 1);
        _pbOut(x, bob, 0);
        assertEq(_tryChallenge(carol, _comp(x, c, aliceKey, 0)), "", "a challenge at the last second lands");
        assertEq(
            _try(mallory, address(ife), abi.encodeCall(ife.deleteNonPiggybackedInFlightExit, (y))),
            abi.encodeWithSelector(InFlightExitGame.InFlightExitPhaseNotOver.selector, y, phaseEnd)
        );

        vm.warp(phaseEnd);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitPhaseOver.selector, x, phaseEnd));
        ife.piggybackOutput{value: PB_BOND}(x, 1);
        uint256 cPos = _submit1(c) * 1e9;
        assertEq(
            _tryChallenge(mallory, _comp(x, c, aliceKey, cPos)),
            abi.encodeWithSelector(InFlightExitGame.InFlightExitPhaseOver.selector, x, phaseEnd)
        );
        assertEq(_try(mallory, address(ife), abi.encodeCall(ife.deleteNonPiggybackedInFlightExit, (y))), "");
        assertEq(_eth(bob), IFE_BOND, "the deleted exit's whole bond back to its initiator");

        uint256 exitableAt = _exitableAt(x);
        assertGe(exitableAt - phaseEnd, PERIOD / 2, "at least half a period to answer");
        uint256 tPos = _submit1(t) * 1e9; // the payment's block, younger than the competitor's
        vm.warp(exitableAt - 1);
        // The standing competitor is the unincluded one (the included one came too late): any
        // inclusion answers it, one second before the exit is due.
        assertEq(_tryRespond(bob, x, t, tPos), "");
        assertFalse(_nonCanonical(x));
        (uint256 head,) = framework.queueHead(address(0));
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, address(0), head));
        framework.processExits(address(0), 0, 1);

        vm.warp(exitableAt);
        vm.prank(keeper);
        framework.processExits(address(0), head, 1);
        assertEq(_verdict(x), CANONICAL);
        assertEq(framework.withdrawable(bob, address(0)), IFE_BOND + 6 ether + PB_BOND / 2 + IFE_BOND / 2);
        _assertClosed(x, t, tPos, c);
    }

    /// @dev bob deposits 5 now and, `delay` later, starts the exit of paying it to carol (never
    /// piggybacked).
    function _bobsOwnExitLater(uint256 delay) internal returns (uint256) {
        (uint256 ePos, bytes memory eTx) = _depositEth(bob, 5 ether);
        skip(delay);
        return _startIfe(bob, _args1(_pay1(ePos, carol, address(0), 5 ether), ePos, eTx, bobKey));
    }

    /// @dev After processing nothing reaches exit `x`: challenges, responses, piggyback challenges.
    function _assertClosed(uint256 x, bytes memory t, uint256 tPos, bytes memory c) internal {
        bytes memory closed = abi.encodeWithSelector(InFlightExitGame.InFlightExitNotActive.selector, x);
        assertEq(_tryChallenge(mallory, _comp(x, c, aliceKey, 0)), closed);
        assertEq(_tryRespond(bob, x, t, tPos), closed);
        bytes memory chal3 = abi.encodeCall(ife.challengeInFlightExitInputSpent, (x, 0, c, 0, _signTx(aliceKey, c)));
        assertEq(_try(mallory, address(ife), chal3), closed);
        vm.prank(bob);
        vm.expectRevert(closed);
        ife.piggybackOutput{value: PB_BOND}(x, 0);
    }

    // ---------------------------------------------------------------- griefing

    /// @dev Attack: use up or block the recipient's in-flight exit. mallory, no party, cannot start it
    /// herself, through her own authorization, or through bob's authorization for someone else; bob's
    /// own start with a misstated input time is refused; mallory cannot piggyback bob's items (no
    /// slots to fill); the colluding sender's lapsed exit is deleted and mallory cannot restart it,
    /// but bob can, and is paid (spec: EXIT-6, EXIT-8, EXIT-9).
    function test_GriefersCannotUseUpOrBlockTheRecipientsExit() public {
        (uint256 dPos, bytes memory dTx) = _depositEth(alice, 10 ether);
        (address tower,) = makeAccount("tower");
        bytes memory t = _aliceToBob(dPos, address(0));
        uint256 id = uint256(keccak256(t));
        InFlightExitGame.StartArgs memory a = _args1(t, dPos, dTx, aliceKey);

        bytes memory notParty = abi.encodeWithSelector(InFlightExitGame.InFlightExitNotParty.selector, id, mallory);
        vm.prank(mallory);
        vm.expectRevert(notParty);
        ife.startInFlightExit{value: IFE_BOND}(a);
        InFlightExitGame.Authorization memory own = _ifeAuth(malloryKey, mallory);
        vm.prank(mallory);
        vm.expectRevert(notParty);
        ife.startInFlightExitFor{value: IFE_BOND}(a, own);
        // bob's authorization for his tower, replayed by mallory, recovers to some other signer.
        vm.prank(mallory);
        (bool ok, bytes memory ret) =
            address(ife).call{value: IFE_BOND}(abi.encodeCall(ife.startInFlightExitFor, (a, _ifeAuth(bobKey, tower))));
        assertFalse(ok);
        assertEq(_sel(ret), InFlightExitGame.InFlightExitNotParty.selector, "another exitor's authorization");

        InFlightExitGame.StartArgs memory forged = _args1(t, dPos, dTx, aliceKey);
        forged.inputBlockTimestamps[0] += 1; // to move the exitable time
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, dPos));
        ife.startInFlightExit{value: IFE_BOND}(forged);

        // The colluding sender starts it on a healthy chain and lets it lapse.
        _startIfe(alice, a);
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotOwner.selector, bob, mallory));
        ife.piggybackOutput{value: PB_BOND}(id, 0);
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(InFlightExitGame.InFlightExitNotOwner.selector, bob, mallory));
        ife.piggybackFor{value: PB_BOND}(id, true, 0, own);
        skip(PERIOD / 2);
        vm.prank(mallory);
        ife.deleteNonPiggybackedInFlightExit(id);
        vm.prank(mallory);
        vm.expectRevert(notParty);
        ife.startInFlightExit{value: IFE_BOND}(a);

        _startIfe(bob, a);
        _pbOut(id, bob, 0);
        skip(2 * PERIOD);
        _drain(address(0));
        assertEq(_verdict(id), CANONICAL);
        assertEq(_eth(bob), 6 ether + PB_BOND / 2 + IFE_BOND / 2, "bob paid, his bonds back minus bounties");
        assertEq(_eth(alice), IFE_BOND, "the lapsed exit's bond back, nothing else");
        assertEq(_eth(mallory), 0, "mallory gained nothing");
        assertEq(_eth(keeper), PB_BOND / 2 + IFE_BOND / 2);
    }

    // ---------------------------------------------------------------- bonds

    /// @dev Attack: steal or recycle bonds. A piggyback challenged once cannot be challenged again
    /// with the same evidence; a re-piggyback is a fresh bond; challenging one's own piggyback or
    /// one's own exit recovers only half (BOND-1); resending the standing challenge does not take the
    /// challenger's place. At the end every wei of bond is either credited to its rightful party or
    /// burned in the game: the game holds exactly the burned halves.
    function test_BondsCannotBeStolenOrRecycled_TheGameHoldsExactlyTheBurnedHalves() public {
        (uint256 dPos, bytes memory dTx) = _depositEth(alice, 10 ether);
        bytes memory t = _aliceToBob(dPos, address(0));
        uint256 tPos = _submit1(t) * 1e9;
        bytes memory c = _pay1(dPos, carol, address(0), 10 ether);
        bytes memory cSig = _signTx(aliceKey, c);
        uint256 id = _startIfe(alice, _args1(t, dPos, dTx, aliceKey));
        _pbIn(id, alice, 0);
        _pbOut(id, bob, 0);

        bytes memory chal3 = abi.encodeCall(ife.challengeInFlightExitInputSpent, (id, 0, c, 0, cSig));
        assertEq(_try(mallory, address(ife), chal3), "");
        assertEq(
            _try(mallory, address(ife), chal3),
            abi.encodeWithSelector(InFlightExitGame.InFlightExitNotPiggybacked.selector, id, 0),
            "the same evidence pays once per bond"
        );
        _pbIn(id, alice, 0); // a fresh bond
        assertEq(_try(mallory, address(ife), chal3), "");
        assertEq(_eth(mallory), PB_BOND, "two halves for two bonds");

        // bob challenges his own output piggyback with his own spend of it (CHAL-4): half back.
        bytes memory spend = _pay1(tPos, bob, address(0), 6 ether);
        InFlightExitGame.OutputSpentArgs memory os = InFlightExitGame.OutputSpentArgs(
            id, 0, t, tPos, _proof(tPos / 1e9, 0), blockTimestamp[tPos / 1e9], spend, 0, _signTx(bobKey, spend)
        );
        vm.prank(bob);
        ife.challengeInFlightExitOutputSpent(os);
        assertEq(_eth(bob), PB_BOND / 2);

        // alice marks her own exit non-canonical to recover its bond; mallory replays her challenge.
        InFlightExitGame.CompetitorArgs memory ca = _comp(id, c, aliceKey, 0);
        assertEq(_tryChallenge(alice, ca), "");
        assertEq(
            _tryChallenge(mallory, ca),
            abi.encodeWithSelector(InFlightExitGame.InFlightExitCompetitorNotOlder.selector, NOT_INCLUDED, NOT_INCLUDED)
        );
        skip(2 * PERIOD);
        _drain(address(0));
        (,,,, address challenger,,) = ife.inFlightExitDetails(id);
        assertEq(challenger, alice);
        assertEq(_verdict(id), NOT_CANONICAL);
        assertEq(_eth(alice), IFE_BOND / 2, "self-challenge recovers half the exit bond");
        assertEq(_eth(mallory), PB_BOND);
        assertEq(_eth(keeper), 0, "nothing settled, no bounty");
        assertEq(framework.totalCredited(address(0)), 0, "no item paid");
        assertEq(address(ife).balance, 3 * (PB_BOND / 2) + IFE_BOND / 2, "the game holds the burned halves only");
    }

    // ---------------------------------------------------------------- freezing the queue

    /// @dev Attack: freeze the ETH queue with a hostile in-flight exit. The operator commits an invalid
    /// block paying mallory 2^200 wei out of nothing; mallory exits a payment of it in flight with
    /// five outputs of 2^190 each and piggybacks all six items. Processing never reverts: the credit
    /// is capped at what is left, the rest becomes debts (EXIT-5, EXIT-16), and the honest exits
    /// queued before and after it settle in the same `processExits` call. The exit from the invalid
    /// block queues behind every honest exit started within a period of the block (EXIT-7).
    function test_HostileInFlightExitFromAnInvalidBlockCannotFreezeTheQueue() public {
        (uint256 aPos, bytes memory aTx) = _depositEth(alice, 10 ether);
        (uint256 cPos, bytes memory cTx) = _depositEth(carol, 10 ether);
        _se(alice, aPos, aTx);

        skip(1 days);
        uint256 id = _malloryExitsOutOfNothing(cPos);
        // carol, late, exits her deposit more than a period after the invalid block.
        skip(PERIOD + 1 hours);
        _se(carol, cPos, cTx);

        vm.warp(block.timestamp + PERIOD);
        (, uint256 length) = framework.queueHead(address(0));
        assertEq(length, 3);
        vm.prank(keeper);
        framework.processExits(address(0), 0, 10);
        (uint256 head,) = framework.queueHead(address(0));
        assertEq(head, 0, "all three exits settled in one call");
        assertEq(_verdict(id), CANONICAL);
        assertEq(_eth(alice), 10 ether + SE_BOND / 2, "the honest exit before it is paid in full");
        assertEq(framework.totalCredited(address(0)), 20 ether, "never more than was deposited");
        assertEq(_eth(mallory), 10 ether + 6 * (PB_BOND / 2) + IFE_BOND / 2, "capped at what was left");
        assertTrue(framework.isOutputFinalized(PlasmaTx.outputId(keccak256(cTx), false, 0, cPos)));
        (uint256 dHead, uint256 dTail,,) = framework.debtBook(address(0));
        assertEq(dTail - dHead, 6, "five capped outputs and carol's exit are debts, in order");
    }

    function _se(address owner, uint256 pos, bytes memory txBytes) internal {
        StandardExitGame.StartArgs memory se = _startArgs(pos, txBytes);
        vm.prank(owner);
        seGame.startStandardExit{value: SE_BOND}(se);
    }

    /// @dev The operator commits a payment of 2^200 wei to mallory spending `input` (invalid: it
    /// creates value); mallory exits a payment of it in flight, five outputs of 2^190 each, and
    /// piggybacks all six items.
    function _malloryExitsOutOfNothing(uint256 input) internal returns (uint256 id) {
        bytes memory bad = _pay1(input, mallory, address(0), 2 ** 200);
        uint256 badPos = _submit1(bad) * 1e9;
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](5);
        for (uint256 j = 0; j < 5; ++j) {
            outs[j] = _out(mallory, address(0), 2 ** 190);
        }
        id = _startIfe(mallory, _args1(_payment(_one(badPos), outs), badPos, bad, malloryKey));
        _pbIn(id, mallory, 0);
        for (uint8 j = 0; j < 5; ++j) {
            _pbOut(id, mallory, j);
        }
    }
}
