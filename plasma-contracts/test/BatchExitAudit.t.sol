// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {BatchExitGame} from "../contracts/exits/BatchExitGame.sol";
import {StandardExitGame} from "../contracts/exits/StandardExitGame.sol";
import {IBatchExitGame} from "../contracts/interfaces/IBatchExitGame.sol";
import {ExitPriority} from "../contracts/libraries/ExitPriority.sol";
import {PlasmaEip712} from "../contracts/libraries/PlasmaEip712.sol";
import {UtxoPosLib} from "../contracts/libraries/UtxoPosLib.sol";
import {BatchFixtures} from "./utils/BatchFixtures.sol";

/// @title BatchExitAuditTest
/// @notice An outside audit of batch exits (#16): attacks on the batch path alone and combined with
/// standard exits. Tests named `test_Design*` document design-level findings: they asserted what the
/// attacker got, and now assert that the fixes (EXIT-16 debts for D1, CHAL-8/CHAL-10 by start time for
/// D2) defeat the attack; the others pin properties found sound.
contract BatchExitAuditTest is BatchFixtures {
    // ---------------------------------------------------------------- helpers

    function _eth(address who) internal view returns (uint256) {
        return framework.withdrawable(who, address(0));
    }

    function _inclusion(uint256 pos) internal view returns (bytes memory proof, uint64 ts) {
        uint256 blknum = UtxoPosLib.blknum(pos);
        return (_proof(blknum, UtxoPosLib.txIndex(pos)), blockTimestamp[blknum]);
    }

    function _challengeInvalid(address who, uint256 id, uint256 index, bytes memory txBytes) internal {
        IBatchExitGame.ClaimRef memory c = _ref(id, index);
        (bytes memory proof, uint64 ts) = _inclusion(c.utxoPos);
        vm.prank(who);
        batchGame.challengeBatchClaimInvalid(c, txBytes, proof, ts);
    }

    function _authGroup(uint256 ownerKey, address owner, address exitor, bytes memory claims)
        internal
        view
        returns (BatchExitGame.Group memory)
    {
        bytes32 digest = PlasmaEip712.digest(
            framework.domainSeparator(), PlasmaEip712.hashExitAuthorization(exitor, block.timestamp, 0)
        );
        return BatchExitGame.Group(owner, block.timestamp, 0, _sign(ownerKey, digest), claims);
    }

    function _processAll() internal {
        skip(2 * PERIOD);
        framework.processExits(address(0), 0, 100);
    }

    // ---------------------------------------------------------------- design-level findings (fixed)

    /// @dev D1, fixed by EXIT-16. One unstruck fake claim at an OLD position reserves the whole vault at
    /// an old priority, and the exit processed behind it (alice's) is capped to zero — but the cap is now
    /// a debt, recorded in processing order. Once the fake is released, its money goes to the debt pool
    /// (not to the vault's free balance), so the operator's exit from an invalid block, processed after
    /// alice, is capped too and queues its debt behind hers; `settleDebts` (anyone) closes the fake's
    /// own debt (its batch needs nothing) and pays alice in full. The invalid block's exit gets nothing.
    function test_DesignD1_UnstruckOldFakeClaimHandsHonestExitToInvalidBlock() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 10 ether);
        skip(2 * PERIOD);
        // The operator's accomplice claims a nonexistent output (index 1 of alice's deposit) for 2^96-1 wei.
        uint256 id = _start(mallory, address(0), _groups1(mallory, _rec(d + 1, type(uint96).max)));
        // The operator commits an invalid block paying mallory alice's deposit (L1 checks no signature).
        bytes memory theft = _pay1(d, mallory, address(0), 10 ether);
        uint256 blk = _submit1(theft);
        uint256 theftPos = UtxoPosLib.pack(blk, 0, 0);
        skip(1);
        // alice exits her older output within the period, as MoreVP asks; mallory exits the theft.
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(d, dtx));
        vm.prank(mallory);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(theftPos, theft));
        // Nobody strikes the fake within the period. Processing: the batch, then alice.
        skip(PERIOD);
        framework.processExits(address(0), 0, 10);
        assertEq(batchGame.batches(id).reserved, 10 ether, "the fake reserved the whole vault");
        assertEq(_eth(alice), SE_BOND - SE_BOND / 2, "alice: her bond back, her 10 ether owed");
        PlasmaFramework.Debt memory owed = framework.debtAt(address(0), 1);
        assertEq(abi.encode(owed.account, owed.batchId, owed.amount), abi.encode(alice, 0, 10 ether));
        // mallory releases her own fake (CHAL-6 after processing): the money goes to the debt pool.
        _challengeInvalid(mallory, id, 0, dtx);
        assertEq(framework.totalCredited(address(0)), 10 ether, "released money is not free");
        (,,, uint256 pool) = framework.debtBook(address(0));
        assertEq(pool, 10 ether);
        // Her invalid-block exit, queued behind alice, finds nothing free: capped, a debt behind alice's.
        skip(PERIOD);
        framework.processExits(address(0), 0, 10);
        owed = framework.debtAt(address(0), 2);
        assertEq(abi.encode(owed.account, owed.amount), abi.encode(mallory, 10 ether));
        // Anyone settles: the fake's debt closes (its batch needs nothing), alice is paid in full.
        vm.prank(carol);
        assertEq(framework.settleDebts(address(0), 10), 2);
        assertEq(_eth(alice), 10 ether + SE_BOND - SE_BOND / 2, "alice paid in full");
        assertEq(
            framework.withdrawable(mallory, address(0)),
            SE_BOND - SE_BOND / 2 + BATCH_BOND / 2 + CLAIM_BOND,
            "mallory: her bonds, none of alice's money"
        );
        assertEq(framework.totalCredited(address(0)), 10 ether);
        (uint256 head, uint256 tail, uint256 outstanding, uint256 left) = framework.debtBook(address(0));
        assertEq(abi.encode(head, tail, outstanding, left), abi.encode(2, 3, 10 ether, 0), "only mallory's debt");
    }

    /// @dev D1 on an honest chain, fixed by EXIT-16: the vault holds exactly what its owners exit (a mass
    /// exit), one fake claim processed first caps them all — to debts; after the release `settleDebts`
    /// pays every owner in full and nothing stays frozen in the vault.
    function test_DesignD1_UnstruckFakeClaimFreezesAnHonestMassExit() public {
        (uint256 d1, bytes memory t1) = _deposit(alice, 10 ether);
        (uint256 d2, bytes memory t2) = _deposit(bob, 5 ether);
        skip(2 * PERIOD);
        uint256 id = _start(mallory, address(0), _groups1(mallory, _rec(d1 + 4, type(uint96).max)));
        skip(1);
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(d1, t1));
        vm.prank(bob);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(d2, t2));
        skip(PERIOD);
        framework.processExits(address(0), 0, 10); // the batch, alice, bob
        assertEq(_eth(alice) + _eth(bob), SE_BOND, "bonds back, principal owed");
        _challengeInvalid(carol, id, 0, t1);
        framework.settleDebts(address(0), 10);
        assertEq(_eth(alice), 10 ether + SE_BOND / 2, "alice paid in full");
        assertEq(_eth(bob), 5 ether + SE_BOND / 2, "bob paid in full");
        assertEq(framework.totalCredited(address(0)), 15 ether);
        (uint256 head, uint256 tail, uint256 outstanding, uint256 pool) = framework.debtBook(address(0));
        assertEq(abi.encode(tail - head, outstanding, pool), abi.encode(0, 0, 0), "no debt left");
        assertEq(
            address(framework).balance - _eth(alice) - _eth(bob) - _eth(mallory) - _eth(address(this)),
            0,
            "nothing frozen"
        );
    }

    /// @dev D2, fixed: CHAL-10 now looks at which exit came first. alice's standard exit started before
    /// her watchtower's batch claimed the same output, so a third party's CHAL-10 is refused
    /// (`StandardExitStartedFirst`), and CHAL-8 strikes the later claim instead: alice keeps her
    /// earlier exit, her priority and her bond.
    function test_DesignD2_Chal10KillsAnEarlierStandardExit() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        _deposit(carol, 5 ether);
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(d, dtx)); // exitable at T0 + p
        skip(1 days);
        (uint256 young,) = _deposit(alice, 1 ether);
        // alice's watchtower (bob) claims her outputs, the old one included (a race with her own exit).
        BatchExitGame.Group[] memory g = new BatchExitGame.Group[](1);
        g[0] = _authGroup(aliceKey, alice, bob, abi.encodePacked(_rec(d, 1 ether), _rec(young, 1 ether)));
        uint256 id = _start(bob, address(0), g);
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitStartedFirst.selector, d, T0, T0 + 1 days));
        vm.prank(mallory);
        seGame.challengeStandardExitBatchClaimed(d, id, 0, c.proof);
        vm.prank(mallory);
        batchGame.challengeBatchClaimExited(c, "", "", 0);
        assertEq(batchGame.claimState(id, 0), 2, "the later claim is struck");
        assertEq(_eth(mallory), CLAIM_BOND / 2, "the striker's reward comes from the batch's claim bond");
        _processAll();
        (,, StandardExitGame.Status st,,,,,) = seGame.exits(d);
        assertTrue(st == StandardExitGame.Status.Settled, "alice's standard exit stood");
        assertEq(_eth(alice), 1 ether + SE_BOND - SE_BOND / 2);
    }

    /// @dev D2's reverse: a standard exit started after the batch claimed its output is the later one:
    /// CHAL-8 is refused on it (the claim stands) and CHAL-10 takes it.
    function test_DesignD2_Chal10StillTakesALaterStandardExit() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        _deposit(carol, 5 ether);
        BatchExitGame.Group[] memory g = new BatchExitGame.Group[](1);
        g[0] = _authGroup(aliceKey, alice, bob, _rec(d, 1 ether));
        uint256 id = _start(bob, address(0), g);
        skip(1);
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(d, dtx));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotExited.selector, id, 0));
        batchGame.challengeBatchClaimExited(c, "", "", 0);
        vm.prank(mallory);
        seGame.challengeStandardExitBatchClaimed(d, id, 0, c.proof);
        assertEq(_eth(mallory), SE_BOND / 2);
        (,, StandardExitGame.Status st,,,,,) = seGame.exits(d);
        assertTrue(st == StandardExitGame.Status.Challenged);
    }

    // ---------------------------------------------------------------- properties found sound

    /// @dev A batch whose every claim was struck processes in constant gas, reserves nothing, and the
    /// game keeps exactly the burned halves.
    function test_FullyStruckBatchProcessesAndAccountsBonds() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        uint256 id = _start(mallory, address(0), _groups1(mallory, abi.encodePacked(_rec(d, 1 ether), _rec(d + 1, 5))));
        _challengeInvalid(carol, id, 0, dtx);
        _challengeInvalid(carol, id, 1, dtx);
        _processAll();
        BatchExitGame.Batch memory b = batchGame.batches(id);
        assertEq(b.total, 0);
        assertEq(b.reserved, 0);
        assertEq(framework.totalCredited(address(0)), 0);
        assertEq(_eth(carol), CLAIM_BOND); // two halves
        assertEq(_eth(mallory), BATCH_BOND / 2); // batch bond minus the bounty (the test contract processed)
        assertEq(_eth(address(this)), BATCH_BOND / 2);
        assertEq(address(batchGame).balance, CLAIM_BOND, "only the burned halves stay");
    }

    /// @dev Releases after processing: never on a paid claim, never twice, never below what was paid.
    function test_ReleaseOnceNeverOnPaidClaim() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        (uint256 d2, bytes memory d2tx) = _deposit(alice, 2 ether);
        uint256 id = _start(alice, address(0), _groups1(alice, abi.encodePacked(_rec(d, 1 ether), _rec(d2, 3 ether))));
        _processAll();
        assertEq(batchGame.batches(id).reserved, 3 ether, "capped at the vault");
        _pay1(id, 0, dtx);
        assertEq(_eth(alice), 1 ether + 2 * CLAIM_BOND + BATCH_BOND / 2);
        // The paid claim cannot be struck (no release of paid money).
        IBatchExitGame.ClaimRef memory c0 = _ref(id, 0);
        (bytes memory proof0, uint64 ts0) = _inclusion(d);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotLive.selector, id, 0));
        batchGame.challengeBatchClaimExited(c0, dtx, proof0, ts0);
        // The wrong-amount claim is released once: its reserve goes to the debt pool (the batch's own
        // capped reserve is a debt, EXIT-16); settling closes that debt (the batch needs nothing more)
        // and frees the pool: totalCredited falls back to what was paid.
        _challengeInvalid(carol, id, 1, d2tx);
        (,,, uint256 pool) = framework.debtBook(address(0));
        assertEq(pool, 2 ether);
        framework.settleDebts(address(0), 10);
        assertEq(framework.totalCredited(address(0)), 1 ether);
        BatchExitGame.Batch memory b = batchGame.batches(id);
        assertEq(b.reserved, 0);
        assertEq(b.total, 0);
        IBatchExitGame.ClaimRef memory c1 = _ref(id, 1);
        (bytes memory proof1, uint64 ts1) = _inclusion(d2);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotLive.selector, id, 1));
        batchGame.challengeBatchClaimInvalid(c1, d2tx, proof1, ts1);
        assertEq(framework.totalCredited(address(0)), 1 ether);
    }

    /// @dev The same claim twice in one payout call (and again later) is paid once.
    function test_DuplicatePayoutEntriesPayOnce() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        _deposit(carol, 5 ether);
        uint256 id = _start(alice, address(0), _groups1(alice, _rec(d, 1 ether)));
        _processAll();
        BatchExitGame.Payout[] memory p = new BatchExitGame.Payout[](3);
        p[0] = _payout(id, 0, dtx);
        p[1] = _payout(id, 0, dtx);
        p[2] = _payout(id, 0, dtx);
        batchGame.payoutBatchClaims(p);
        batchGame.payoutBatchClaims(p);
        assertEq(_eth(alice), 1 ether + CLAIM_BOND + BATCH_BOND / 2);
        assertEq(framework.totalCredited(address(0)), 1 ether);
    }

    /// @dev Tree-proof malleability: an index at or past the count, a proof one sibling too long or too
    /// short, and another index's proof are all refused.
    function test_ClaimProofMalleabilityRefused() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        (uint256 d2,) = _deposit(alice, 1 ether);
        (uint256 d3,) = _deposit(alice, 1 ether);
        uint256 id = _start(
            alice, address(0), _groups1(alice, abi.encodePacked(_rec(d, 1 ether), _rec(d2, 1 ether), _rec(d3, 1 ether)))
        );
        IBatchExitGame.ClaimRef memory c = _ref(id, 2); // promoted at level 0: one sibling
        assertEq(c.proof.length, 1);
        assertTrue(batchGame.isLiveClaim(c));
        c.index = 3;
        assertFalse(batchGame.isLiveClaim(c), "index == count");
        c.index = type(uint256).max;
        assertFalse(batchGame.isLiveClaim(c), "index far past count");
        c.index = 2;
        bytes32[] memory longer = new bytes32[](2);
        longer[0] = c.proof[0];
        c.proof = longer;
        assertFalse(batchGame.isLiveClaim(c), "extra sibling");
        c.proof = new bytes32[](0);
        assertFalse(batchGame.isLiveClaim(c), "empty proof");
        IBatchExitGame.ClaimRef memory c0 = _ref(id, 0);
        c0.index = 1; // leaf 0 with leaf 0's proof at index 1
        assertFalse(batchGame.isLiveClaim(c0), "another index");
        c0.index = 0;
        c0.amount += 1;
        assertFalse(batchGame.isLiveClaim(c0), "another amount");
    }

    /// @dev CHAL-6's self-call cannot be starved of gas to call a valid transaction invalid: at every gas
    /// limit the strike of a valid claim fails and the claim stays live.
    function test_Chal6SelfCallGasGriefingNeverStrikesAValidClaim() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        uint256 id = _start(alice, address(0), _groups1(alice, _rec(d, 1 ether)));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        (bytes memory proof, uint64 ts) = _inclusion(d);
        bytes memory call = abi.encodeCall(BatchExitGame.challengeBatchClaimInvalid, (c, dtx, proof, ts));
        for (uint256 gasLimit = 20_000; gasLimit < 400_000; gasLimit += 3000) {
            (bool ok,) = address(batchGame).call{gas: gasLimit}(call);
            assertFalse(ok);
            assertEq(batchGame.claimState(id, 0), 0);
        }
    }

    /// @dev A demanded claim of an output under an active standard exit: CHAL-10 is refused (not live),
    /// CHAL-8 strikes it and returns the whole demand bond; the standard exit alone pays.
    function test_DemandedClaimVersusStandardExit() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        _deposit(carol, 5 ether);
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(d, dtx));
        uint256 id = _start(alice, address(0), _groups1(alice, _rec(d, 1 ether)));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        vm.prank(bob);
        batchGame.demandClaimProof{value: DEMAND_BOND}(c);
        uint64 t = uint64(block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitStartedFirst.selector, d, t, t));
        seGame.challengeStandardExitBatchClaimed(d, id, 0, c.proof);
        vm.prank(carol);
        batchGame.challengeBatchClaimExited(c, "", "", 0);
        assertEq(_eth(bob), DEMAND_BOND);
        assertEq(_eth(carol), CLAIM_BOND / 2);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotLive.selector, id, 0));
        vm.prank(bob);
        batchGame.demandClaimProof{value: DEMAND_BOND}(c);
        _processAll();
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotDemanded.selector, id, 0));
        batchGame.collectDemand(id, 0);
        assertEq(framework.totalCredited(address(0)), 1 ether, "paid once, by the standard exit");
        assertEq(batchGame.batches(id).reserved, 0);
    }

    /// @dev Dispatch: standard, batch and (unbound here) in-flight entries of one queue each reach their
    /// own game, in priority order; a batch entry carries bits 62 and 63.
    function test_QueueDispatchBit62() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        (uint256 d2,) = _deposit(bob, 1 ether);
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(d, dtx));
        uint256 id = _start(bob, address(0), _groups1(bob, _rec(d2, 1 ether)));
        (uint256 head, uint256 len) = framework.queueHead(address(0));
        assertEq(len, 2);
        assertEq(ExitPriority.nonce(head) >> 62, 0, "the standard exit: no flag");
        _processAll();
        (,, StandardExitGame.Status st,,,,,) = seGame.exits(d);
        assertTrue(st == StandardExitGame.Status.Settled);
        assertTrue(batchGame.batches(id).status == BatchExitGame.Status.Processed);
        assertEq(framework.flaggedExitIds((uint64(3) << 62) | 1), 0, "the batch's id entry cleared");
    }
}
