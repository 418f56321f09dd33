// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {BatchExitGame} from "../contracts/exits/BatchExitGame.sol";
import {ExitGameBase} from "../contracts/exits/ExitGameBase.sol";
import {StandardExitGame} from "../contracts/exits/StandardExitGame.sol";
import {IBatchExitGame} from "../contracts/interfaces/IBatchExitGame.sol";
import {BatchClaims} from "../contracts/libraries/BatchClaims.sol";
import {ExitPriority} from "../contracts/libraries/ExitPriority.sol";
import {PlasmaEip712} from "../contracts/libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../contracts/libraries/UtxoPosLib.sol";
import {BatchFixtures, ClaimTreeRef} from "./utils/BatchFixtures.sol";

contract BatchExitGameTest is BatchFixtures {
    /// @dev alice deposits 10 ether and pays 4 to bob with 6 change in child block 1000.
    function _aliceToBob()
        internal
        returns (uint256 depositPos, uint256 bobPos, uint256 changePos, bytes memory payment)
    {
        (depositPos,) = _deposit(alice, 10 ether);
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

    function test_StartProcessPayout() public {
        (,, uint256 changePos, bytes memory payment) = _aliceToBob();
        (uint256 d2, bytes memory dtx) = _deposit(alice, 1 ether);
        skip(1 days);
        // alice's change (block 1000) and her deposit (block 1001), ascending.
        uint256 id =
            _start(alice, address(0), _groups1(alice, abi.encodePacked(_rec(changePos, 6 ether), _rec(d2, 1 ether))));
        assertEq(id, 1);
        assertEq(batchGame.claimedUpTo(alice, address(0)), d2);
        BatchExitGame.Batch memory b = batchGame.batches(id);
        assertEq(b.count, 2);
        assertEq(b.total, 7 ether);
        assertEq(b.root, ClaimTreeRef.root(_leaves(id)));
        skip(2 * PERIOD);
        framework.processExits(address(0), 0, 1);
        assertTrue(_status(id) == BatchExitGame.Status.Processed);
        assertEq(batchGame.batches(id).reserved, 7 ether);
        BatchExitGame.Payout[] memory p = new BatchExitGame.Payout[](2);
        p[0] = _payout(id, 0, payment);
        p[1] = _payout(id, 1, dtx);
        batchGame.payoutBatchClaims(p);
        assertEq(framework.withdrawable(alice, address(0)), 7 ether + 2 * CLAIM_BOND + BATCH_BOND / 2);
        assertEq(batchGame.claimState(id, 0), 3);
        assertEq(batchGame.claimState(id, 1), 3);
        assertEq(framework.totalCredited(address(0)), 7 ether);
    }

    // ---------------------------------------------------------------- helpers

    function _startFor(address exitor, BatchExitGame.Group[] memory groups) internal returns (uint256) {
        return _start(exitor, address(0), groups);
    }

    function _authGroup(
        uint256 ownerKey,
        address owner,
        address exitor,
        uint256 deadline,
        uint256 nonce,
        bytes memory claims
    ) internal view returns (BatchExitGame.Group memory) {
        bytes32 digest = PlasmaEip712.digest(
            framework.domainSeparator(), PlasmaEip712.hashExitAuthorization(exitor, deadline, nonce)
        );
        return BatchExitGame.Group(owner, deadline, nonce, _sign(ownerKey, digest), claims);
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

    function _processAll() internal {
        skip(2 * PERIOD); // every exit started so far is due
        framework.processExits(address(0), 0, 100);
    }

    function _eth(address who) internal view returns (uint256) {
        return framework.withdrawable(who, address(0));
    }

    // ---------------------------------------------------------------- start (EXIT-12, EXIT-13)

    function test_StartRecordsTreeWatermarkAndQueue() public {
        (, uint256 bobPos, uint256 changePos,) = _aliceToBob();
        BatchExitGame.Group[] memory g = new BatchExitGame.Group[](2);
        g[0] = _group(alice, _rec(changePos, 6 ether));
        g[1] = _authGroup(bobKey, bob, alice, block.timestamp, 0, _rec(bobPos, 4 ether));
        uint256 id = _startFor(alice, g);
        BatchExitGame.Batch memory b = batchGame.batches(id);
        assertEq(b.exitor, alice);
        assertEq(b.count, 2);
        assertEq(b.total, 10 ether);
        assertEq(b.root, ClaimTreeRef.root(_leaves(id)));
        assertEq(known[id][0].owner, alice);
        assertEq(known[id][1].owner, bob);
        assertEq(batchGame.claimedUpTo(bob, address(0)), bobPos);
        (uint256 head, uint256 len) = framework.queueHead(address(0));
        assertEq(len, 1);
        assertEq(ExitPriority.position(head), changePos); // youngest claim
        assertEq(ExitPriority.exitableAt(head), T0 + 2 * PERIOD); // child-block rule (EXIT-13)
        assertTrue(ExitPriority.nonce(head) & (uint64(1) << 62) != 0, "bit 62 marks a batch");
        assertEq(batchGame.batchCount(), 1);
        assertEq(address(batchGame).balance, BATCH_BOND + 2 * CLAIM_BOND);
    }

    function test_DepositClaimsWaitAsChildBlockOutputs() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        uint256 id = _startFor(alice, _groups1(alice, _rec(d, 1 ether)));
        assertEq(batchGame.batches(id).exitableAt, T0 + 2 * PERIOD); // not T0 + PERIOD (EXIT-13)
    }

    function test_RevertWhen_NoGroups() public {
        vm.expectRevert(BatchExitGame.BatchExitNoGroups.selector);
        batchGame.startBatchExit{value: BATCH_BOND}(address(0), 0, 0, new BatchExitGame.Group[](0));
    }

    function test_RevertWhen_MalformedClaims() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        bytes memory bad = new bytes(19);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchExitMalformedClaims.selector, 0));
        batchGame.startBatchExit{value: BATCH_BOND}(address(0), 0, 0, _groups1(alice, bad));
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchExitMalformedClaims.selector, 0));
        batchGame.startBatchExit{value: BATCH_BOND}(address(0), 0, 0, _groups1(alice, ""));
        d;
    }

    function _expectStartRevert(bytes memory claims, bytes memory err) internal {
        vm.prank(alice);
        vm.expectRevert(err);
        batchGame.startBatchExit{value: BATCH_BOND + CLAIM_BOND * (claims.length / 20)}(
            address(0), 0, 0, _groups1(alice, claims)
        );
    }

    function test_RevertWhen_InvalidClaim() public {
        bytes4 sel = BatchClaims.BatchExitInvalidClaim.selector;
        _expectStartRevert(_rec(1_000_000_000, 0), abi.encodeWithSelector(sel, 1_000_000_000)); // zero amount
        _expectStartRevert(_rec(5, 1), abi.encodeWithSelector(sel, 5)); // block 0
        uint256 badTx = 1000 * 1e9 + 65_536 * 1e4;
        _expectStartRevert(_rec(badTx, 1), abi.encodeWithSelector(sel, badTx)); // txIndex 65,536
        _expectStartRevert(_rec(1000 * 1e9 + 5, 1), abi.encodeWithSelector(sel, 1000 * 1e9 + 5)); // output 5
    }

    function test_RevertWhen_NotAscending() public {
        bytes4 sel = BatchClaims.BatchExitNotAscending.selector;
        uint256 p = 1000 * 1e9;
        _expectStartRevert(abi.encodePacked(_rec(p, 1), _rec(p, 1)), abi.encodeWithSelector(sel, p));
        _expectStartRevert(abi.encodePacked(_rec(p + 1, 1), _rec(p, 1)), abi.encodeWithSelector(sel, p));
    }

    function test_RevertWhen_WrongBond() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        vm.prank(alice);
        vm.expectRevert(
            abi.encodeWithSelector(ExitGameBase.ExitGameWrongBond.selector, BATCH_BOND + CLAIM_BOND, BATCH_BOND)
        );
        batchGame.startBatchExit{value: BATCH_BOND}(address(0), 0, 0, _groups1(alice, _rec(d, 1 ether)));
    }

    function test_RevertWhen_YoungestBlockUnknownOrWrong() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        uint256 future = 5000 * 1e9;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameUnknownBlock.selector, 5000));
        batchGame.startBatchExit{value: BATCH_BOND + 2 * CLAIM_BOND}(
            address(0), 0, 0, _groups1(alice, abi.encodePacked(_rec(d, 1 ether), _rec(future, 1)))
        );
        uint256 blk = UtxoPosLib.blknum(d);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchExitBadYoungestBlock.selector, blk));
        batchGame.startBatchExit{value: BATCH_BOND + CLAIM_BOND}(
            address(0), depositRoots[blk], blockTimestamp[blk] - 1, _groups1(alice, _rec(d, 1 ether))
        );
    }

    function test_RevertWhen_TooManyClaims() public {
        bytes memory claims = new bytes(20 * 65_537);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchExitTooManyClaims.selector, 65_537));
        batchGame.startBatchExit{value: BATCH_BOND + CLAIM_BOND * 65_537}(address(0), 0, 0, _groups1(alice, claims));
    }

    function test_DelegatedGroupsAndSkips() public {
        (, uint256 bobPos, uint256 changePos,) = _aliceToBob();
        (uint256 carolPos,) = _deposit(carol, 1 ether);
        seGame.revokeAuthorizations(); // the test contract's nonce, irrelevant
        BatchExitGame.Group[] memory g = new BatchExitGame.Group[](4);
        g[0] = _authGroup(aliceKey, alice, mallory, block.timestamp, 0, _rec(changePos, 6 ether)); // ok
        g[1] = _authGroup(bobKey, bob, mallory, block.timestamp - 1, 0, _rec(bobPos, 4 ether)); // expired
        g[2] = _authGroup(carolKey, carol, bob, block.timestamp, 0, _rec(carolPos, 1 ether)); // for bob, not mallory
        g[3] = _group(bob, _rec(bobPos, 4 ether)); // bob's own group sent by mallory without signature
        uint256 before = _eth(mallory);
        vm.expectEmit(address(batchGame));
        emit BatchExitGame.BatchGroupSkipped(1, bob, BatchExitGame.GroupSkip.BadAuthorization);
        uint256 id = _startFor(mallory, g);
        assertEq(batchGame.batches(id).count, 1);
        assertEq(known[id].length, 1);
        assertEq(_eth(mallory) - before, 3 * CLAIM_BOND, "skipped claim bonds credited back");
        // The youngest of all groups, skipped ones included: carol's deposit (block 1001).
        (uint256 head,) = framework.queueHead(address(0));
        assertEq(ExitPriority.position(head), carolPos);
    }

    function test_RevokedAuthorizationSkips() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        BatchExitGame.Group[] memory g = new BatchExitGame.Group[](1);
        g[0] = _authGroup(aliceKey, alice, bob, block.timestamp, 0, _rec(d, 1 ether));
        vm.prank(alice);
        seGame.revokeAuthorizations();
        uint256 id = _startFor(bob, g);
        assertEq(id, 0, "every group skipped: no batch");
        assertEq(_eth(bob), BATCH_BOND + CLAIM_BOND, "everything credited back");
        assertEq(batchGame.claimedUpTo(alice, address(0)), 0);
        (, uint256 len) = framework.queueHead(address(0));
        assertEq(len, 0);
    }

    /// @dev Attack: the same output claimed in two batches. The watermark skips the second group.
    function test_DuplicateAcrossBatchesSkippedByWatermark() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        (uint256 d2,) = _deposit(alice, 2 ether);
        _startFor(alice, _groups1(alice, abi.encodePacked(_rec(d, 1 ether), _rec(d2, 2 ether))));
        vm.expectEmit(address(batchGame));
        emit BatchExitGame.BatchGroupSkipped(2, alice, BatchExitGame.GroupSkip.BelowWatermark);
        uint256 id2 = _startFor(alice, _groups1(alice, _rec(d2, 2 ether)));
        assertEq(id2, 0);
        // Also inside one batch: a second group of the same owner below the first one's last claim.
        (uint256 d3,) = _deposit(alice, 3 ether);
        BatchExitGame.Group[] memory g = new BatchExitGame.Group[](2);
        g[0] = _group(alice, _rec(d3, 3 ether));
        g[1] = _group(alice, _rec(d3, 3 ether));
        uint256 id3 = _startFor(alice, g);
        assertEq(batchGame.batches(id3).count, 1);
    }

    // ---------------------------------------------------------------- priority (EXIT-13)

    function test_BatchOfOldOutputsBeforeYoungerStandardExit() public {
        (uint256 d1,) = _deposit(alice, 1 ether);
        (uint256 d2,) = _deposit(bob, 1 ether);
        (, uint256 bobPos,, bytes memory payment) = _aliceToBob(); // block 1000, younger
        skip(3 * PERIOD);
        // bob's younger output exits first in time, alice's batch of old deposits later...
        vm.prank(bob);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(bobPos, payment));
        uint256 id = _startFor(alice, _groups1(alice, _rec(d1, 1 ether)));
        d2;
        // ...but both are exitable at now + p, and the batch's position (its youngest claim) is older.
        (uint256 head,) = framework.queueHead(address(0));
        assertEq(ExitPriority.position(head), d1);
        skip(PERIOD);
        framework.processExits(address(0), 0, 1);
        assertTrue(_status(id) == BatchExitGame.Status.Processed);
    }

    function test_OneYoungClaimQueuesTheBatchByIt() public {
        (uint256 d1,) = _deposit(alice, 1 ether);
        skip(3 * PERIOD);
        (, uint256 bobPos,, bytes memory payment) = _aliceToBob(); // a fresh child block
        uint256 changePos = bobPos + 1;
        // bob exits his fresh output by a standard exit; alice batches her old deposit with her fresh change.
        vm.prank(bob);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(bobPos, payment));
        uint256 id = _startFor(alice, _groups1(alice, abi.encodePacked(_rec(d1, 1 ether), _rec(changePos, 6 ether))));
        BatchExitGame.Batch memory b = batchGame.batches(id);
        assertEq(b.exitableAt, block.timestamp + 2 * PERIOD); // the fresh block's clock
        (uint256 head,) = framework.queueHead(address(0));
        assertEq(
            ExitPriority.position(head), bobPos, "bob's older position goes first; the batch queues at its youngest"
        );
    }

    // ---------------------------------------------------------------- CHAL-6

    /// @dev Attack: claims of outputs that do not exist, each struck, the striker paid half a claim bond.
    function test_StrikeNonexistentOutputs() public {
        (uint256 d,) = _deposit(alice, 10 ether);
        (, uint256 bobPos,, bytes memory payment) = _aliceToBob();
        uint256 blk = UtxoPosLib.blknum(bobPos);
        // mallory claims: an unused deposit slot (block 1002: uncommitted), an empty leaf (tx 1 of block
        // 1000), bob's output as hers, bob's output with a larger amount (as bob? she cannot: her own),
        // output index 3 of the 2-output payment.
        uint256 uncommitted = (blk - 1000 + 999) * 1e9; // deposit slot 999 before block 1000: never used
        uint256 emptyLeaf = UtxoPosLib.pack(blk, 1, 0);
        uint256 noOutput = UtxoPosLib.pack(blk, 0, 3);
        bytes memory claims = abi.encodePacked(_rec(d, 10 ether), _rec(bobPos, 4 ether), _rec(bobPos + 1, 7 ether));
        claims = abi.encodePacked(claims, _rec(noOutput, 1 ether), _rec(emptyLeaf, 1 ether));
        uint256 id = _startFor(mallory, _groups1(mallory, claims));
        assertEq(uncommitted, 999 * 1e9);
        uint256 before = _eth(carol);
        _challengeInvalid(carol, id, 0, _depositTxOf(alice, 10 ether)); // alice's deposit, not mallory's
        _challengeInvalid(carol, id, 1, payment); // bob's output
        _challengeInvalid(carol, id, 2, payment); // alice's change, wrong owner and amount
        _challengeInvalid(carol, id, 3, payment); // no output 3
        _challengeInvalid(carol, id, 4, ""); // empty leaf
        assertEq(_eth(carol) - before, 5 * CLAIM_BOND / 2);
        BatchExitGame.Batch memory b = batchGame.batches(id);
        assertEq(b.total, 0);
        assertEq(b.struck, 5);
        for (uint256 i = 0; i < 5; ++i) {
            assertEq(batchGame.claimState(id, i), 2);
        }
        // Processing reserves nothing; mallory gets back only the batch bond minus the bounty.
        uint256 m0 = _eth(mallory);
        _processAll();
        assertEq(batchGame.batches(id).reserved, 0);
        assertEq(_eth(mallory) - m0, BATCH_BOND / 2);
        assertEq(framework.totalCredited(address(0)), 0);
    }

    function _depositTxOf(address owner, uint256 amount) internal pure returns (bytes memory) {
        return _depositTx(owner, address(0), amount);
    }

    function test_StrikeClaimInUncommittedBlock() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        _submit1(_pay1(d, bob, address(0), 1 ether)); // block 1000
        uint256 ghost = 999 * 1e9; // a deposit slot never used
        uint256 id =
            _startFor(mallory, _groups1(mallory, abi.encodePacked(_rec(ghost, 5 ether), _rec(1000 * 1e9, 1 ether))));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        vm.prank(carol);
        batchGame.challengeBatchClaimInvalid(c, "", "", 0);
        assertEq(batchGame.claimState(id, 0), 2);
    }

    function test_StrikeInvalidTransactionAndWrongKind() public {
        bytes[] memory txs = new bytes[](2);
        txs[0] = hex"deadbeef"; // not a transaction
        txs[1] = _depositTx(mallory, address(0), 5 ether); // a deposit inside a child block
        uint256 blk = _submitBlock(txs);
        bytes memory claims =
            abi.encodePacked(_rec(UtxoPosLib.pack(blk, 0, 0), 1 ether), _rec(UtxoPosLib.pack(blk, 1, 0), 5 ether));
        uint256 id = _startFor(mallory, _groups1(mallory, claims));
        _challengeInvalid(carol, id, 0, txs[0]);
        _challengeInvalid(carol, id, 1, txs[1]);
        assertEq(batchGame.batches(id).total, 0);
    }

    function test_RevertWhen_StrikingAValidClaim() public {
        (,, uint256 changePos, bytes memory payment) = _aliceToBob();
        uint256 id = _startFor(alice, _groups1(alice, _rec(changePos, 6 ether)));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        (bytes memory proof, uint64 ts) = _inclusion(changePos);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotInvalid.selector, id, 0));
        batchGame.challengeBatchClaimInvalid(c, payment, proof, ts);
        // A wrong inclusion proof or claim proof reverts too.
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameInvalidInclusionProof.selector, changePos));
        batchGame.challengeBatchClaimInvalid(c, payment, proof, ts + 1);
        c.amount = 7 ether;
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimBadProof.selector, id, 0));
        batchGame.challengeBatchClaimInvalid(c, payment, proof, ts);
    }

    function test_RevertWhen_StrikingTwice() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        uint256 id = _startFor(mallory, _groups1(mallory, _rec(d, 1 ether)));
        _challengeInvalid(carol, id, 0, _depositTxOf(alice, 1 ether));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        (bytes memory proof, uint64 ts) = _inclusion(d);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotLive.selector, id, 0));
        batchGame.challengeBatchClaimInvalid(c, _depositTxOf(alice, 1 ether), proof, ts);
    }

    /// @dev After processing, CHAL-6 releases the fake claim's reserve to the vault, without reward.
    function test_StrikeAfterProcessingReleases() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        (uint256 d2,) = _deposit(mallory, 1 ether);
        uint256 id = _startFor(mallory, _groups1(mallory, abi.encodePacked(_rec(d, 1 ether), _rec(d2, 1 ether))));
        _processAll();
        assertEq(framework.totalCredited(address(0)), 2 ether);
        uint256 before = _eth(carol);
        _challengeInvalid(carol, id, 0, _depositTxOf(alice, 1 ether));
        assertEq(_eth(carol), before, "no reward after processing");
        assertEq(framework.totalCredited(address(0)), 1 ether, "released");
        assertEq(batchGame.batches(id).reserved, 1 ether);
    }

    // ---------------------------------------------------------------- CHAL-7

    /// @dev Attack: a claim of an output its owner already spent.
    function test_StrikeSpentClaim() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        bytes memory spend = _pay1(d, bob, address(0), 1 ether);
        _submit1(spend);
        uint256 id = _startFor(alice, _groups1(alice, _rec(d, 1 ether)));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        bytes memory malSig = _signTx(malloryKey, spend);
        bytes memory aliceSig = _signTx(aliceKey, spend);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimBadSpendSignature.selector, mallory, alice));
        batchGame.challengeBatchClaimSpent(c, spend, 0, malSig);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotASpend.selector, id, 0, 0));
        batchGame.challengeBatchClaimSpent(c, spend, 1, aliceSig);
        vm.expectEmit(address(batchGame));
        emit BatchExitGame.BatchClaimStruck(id, 0, bob, BatchExitGame.StrikeReason.Spent);
        vm.prank(bob);
        batchGame.challengeBatchClaimSpent(c, spend, 0, aliceSig);
        assertEq(_eth(bob), CLAIM_BOND / 2);
        _processAll();
        assertEq(framework.totalCredited(address(0)), 0, "alice gains nothing");
    }

    function test_RevertWhen_SpentChallengeAfterProcessing() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        bytes memory spend = _pay1(d, bob, address(0), 1 ether);
        uint256 id = _startFor(alice, _groups1(alice, _rec(d, 1 ether)));
        _processAll();
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        bytes memory sig = _signTx(aliceKey, spend);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchExitNotActive.selector, id));
        batchGame.challengeBatchClaimSpent(c, spend, 0, sig);
    }

    // ---------------------------------------------------------------- CHAL-8 and CHAL-10

    /// @dev Attack: a claim of an output already exiting by a standard exit.
    function test_StrikeClaimOfStandardExit() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(d, dtx));
        uint256 id = _startFor(alice, _groups1(alice, _rec(d, 1 ether)));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        vm.prank(carol);
        batchGame.challengeBatchClaimExited(c, "", "", 0);
        assertEq(batchGame.claimState(id, 0), 2);
        // CHAL-10 is refused: the standard exit came no later than the batch; exactly one stands.
        uint64 t = uint64(block.timestamp);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitStartedFirst.selector, d, t, t));
        seGame.challengeStandardExitBatchClaimed(d, id, 0, c.proof);
        _processAll();
        assertEq(_eth(alice) > 1 ether, true);
        assertEq(framework.totalCredited(address(0)), 1 ether, "paid once");
    }

    function test_Chal10FirstDisablesChal8() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        uint256 id = _startFor(alice, _groups1(alice, _rec(d, 1 ether)));
        skip(1); // the batch came first: CHAL-10 applies to the standard exit
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(d, dtx));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        // Wrong index or proof: refused.
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitNotBatchClaimed.selector, d));
        seGame.challengeStandardExitBatchClaimed(d, id, 1, c.proof);
        vm.prank(carol);
        seGame.challengeStandardExitBatchClaimed(d, id, 0, c.proof);
        assertEq(_eth(carol), SE_BOND / 2);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotExited.selector, id, 0));
        batchGame.challengeBatchClaimExited(c, "", "", 0);
        _processAll();
        _pay1(id, 0, dtx);
        assertEq(framework.totalCredited(address(0)), 1 ether, "paid once, by the batch");
    }

    /// @dev Attack: a claim of an output already paid (finalized) by a processed standard exit.
    function test_StrikeClaimOfFinalizedOutput() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(d, dtx));
        _processAll();
        uint256 id = _startFor(alice, _groups1(alice, _rec(d, 1 ether)));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        (bytes memory proof, uint64 ts) = _inclusion(d);
        batchGame.challengeBatchClaimExited(c, dtx, proof, ts); // settled exit, and finalized
        assertEq(batchGame.claimState(id, 0), 2);
    }

    function test_RevertWhen_ExitedChallengeWithoutExit() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        uint256 id = _startFor(alice, _groups1(alice, _rec(d, 1 ether)));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        (bytes memory proof, uint64 ts) = _inclusion(d);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotExited.selector, id, 0));
        batchGame.challengeBatchClaimExited(c, dtx, proof, ts);
    }

    // ---------------------------------------------------------------- CHAL-9

    function _demand(address who, uint256 id, uint256 index) internal {
        IBatchExitGame.ClaimRef memory c = _ref(id, index);
        vm.prank(who);
        batchGame.demandClaimProof{value: DEMAND_BOND}(c);
    }

    /// @dev Attack: the operator claims outputs of a block it withholds. A watcher demands; nobody can
    /// answer; the claims are struck at processing and the demander collects.
    function test_WithheldBlockClaimsStruckByDemand() public {
        (uint256 d,) = _deposit(alice, 5 ether);
        // The operator commits a block paying itself alice's deposit (invalid: no signature) and withholds it.
        vm.deal(operator, 1 ether);
        bytes memory theft = _pay1(d, operator, address(0), 5 ether);
        uint256 blk = _submit1(theft);
        uint256 pos = UtxoPosLib.pack(blk, 0, 0);
        uint256 id = _startFor(operator, _groups1(operator, _rec(pos, 5 ether)));
        _demand(carol, id, 0);
        assertEq(batchGame.claimState(id, 0), 1);
        assertEq(batchGame.batches(id).demanded, 5 ether);
        _processAll();
        BatchExitGame.Batch memory b = batchGame.batches(id);
        assertEq(b.reserved, 0, "nothing reserved");
        assertEq(b.total, 0);
        assertEq(framework.totalCredited(address(0)), 0);
        // The claim is not live: no payout, no CHAL-10 use.
        assertFalse(batchGame.isLiveClaim(_ref(id, 0)));
        batchGame.collectDemand(id, 0);
        assertEq(_eth(carol), DEMAND_BOND + CLAIM_BOND / 2);
        assertEq(batchGame.claimState(id, 0), 2);
        assertEq(_eth(operator), BATCH_BOND / 2, "the operator's claim bond is gone");
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotDemanded.selector, id, 0));
        batchGame.collectDemand(id, 0);
    }

    function test_DemandAnsweredByAnyone() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        uint256 id = _startFor(alice, _groups1(alice, _rec(d, 1 ether)));
        _demand(mallory, id, 0);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotLive.selector, id, 0));
        this.demandAgain(id);
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        (bytes memory proof, uint64 ts) = _inclusion(d);
        vm.prank(bob);
        batchGame.answerClaimDemand(c, dtx, proof, ts);
        assertEq(_eth(bob), DEMAND_BOND / 2);
        assertEq(_eth(mallory), DEMAND_BOND - DEMAND_BOND / 2);
        assertEq(batchGame.claimState(id, 0), 0);
        assertEq(batchGame.batches(id).demanded, 0);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotDemanded.selector, id, 0));
        batchGame.answerClaimDemand(c, dtx, proof, ts);
        _processAll();
        assertEq(batchGame.batches(id).reserved, 1 ether);
        _pay1(id, 0, dtx);
        assertEq(_eth(alice), 1 ether + CLAIM_BOND + BATCH_BOND / 2);
    }

    function demandAgain(uint256 id) external {
        _demand(carol, id, 0);
    }

    function test_RevertWhen_AnswerDoesNotMatch() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        uint256 id = _startFor(mallory, _groups1(mallory, _rec(d, 1 ether))); // alice's output, as mallory's
        _demand(carol, id, 0);
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        (bytes memory proof, uint64 ts) = _inclusion(d);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimMismatch.selector, id, 0));
        batchGame.answerClaimDemand(c, dtx, proof, ts);
        // Struck by CHAL-6 instead: the demander gets its whole demand bond back.
        _challengeInvalid(bob, id, 0, dtx);
        assertEq(_eth(carol), DEMAND_BOND);
        assertEq(_eth(bob), CLAIM_BOND / 2);
        assertEq(batchGame.batches(id).demanded, 0);
    }

    function test_RevertWhen_DemandLateOrWrongBond() public {
        (uint256 d,) = _deposit(alice, 1 ether);
        uint256 id = _startFor(alice, _groups1(alice, _rec(d, 1 ether)));
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameWrongBond.selector, DEMAND_BOND, 1));
        batchGame.demandClaimProof{value: 1}(c);
        skip(PERIOD / 2 + 1);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchDemandClosed.selector, id, T0 + PERIOD / 2));
        batchGame.demandClaimProof{value: DEMAND_BOND}(c);
    }

    function test_RevertWhen_AnswerOrCollectAtTheWrongTime() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        uint256 id = _startFor(alice, _groups1(alice, _rec(d, 1 ether)));
        _demand(carol, id, 0);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchExitNotProcessed.selector, id));
        batchGame.collectDemand(id, 0);
        _processAll();
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        (bytes memory proof, uint64 ts) = _inclusion(d);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchExitNotActive.selector, id));
        batchGame.answerClaimDemand(c, dtx, proof, ts);
        // A claim struck as demanded is never paid.
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotLive.selector, id, 0));
        batchGame.challengeBatchClaimInvalid(c, dtx, proof, ts);
        _pay1(id, 0, dtx); // skipped: not live
        assertEq(framework.totalCredited(address(0)), 0);
    }

    // ---------------------------------------------------------------- processing and payout

    /// @dev Attack: an old position claimed to jump the queue (alice's old deposit as mallory's, with a
    /// young output of her own): the batch queues at its youngest claim, the fake is struck before
    /// processing, and mallory gains nothing she did not own.
    function test_OldPositionClaimStruckBeforeProcessing() public {
        (uint256 old, bytes memory oldTx) = _deposit(alice, 5 ether);
        skip(3 * PERIOD);
        (uint256 mine, bytes memory mineTx) = _deposit(mallory, 1 ether);
        uint256 id = _startFor(mallory, _groups1(mallory, abi.encodePacked(_rec(old, 5 ether), _rec(mine, 1 ether))));
        (uint256 head,) = framework.queueHead(address(0));
        assertEq(ExitPriority.position(head), mine, "queued at the youngest claim, not the old one");
        _challengeInvalid(carol, id, 0, oldTx);
        _processAll();
        _pay1(id, 1, mineTx);
        assertEq(framework.withdrawable(mallory, address(0)), 1 ether + CLAIM_BOND + BATCH_BOND / 2);
        assertEq(framework.totalCredited(address(0)), 1 ether);
    }

    /// @dev An unchallenged fake is reserved but never paid: the payout proves it; CHAL-6 releases it.
    function test_UnchallengedFakeNeverPaid() public {
        (uint256 old, bytes memory oldTx) = _deposit(alice, 5 ether);
        uint256 id = _startFor(mallory, _groups1(mallory, _rec(old, 5 ether)));
        _processAll();
        assertEq(batchGame.batches(id).reserved, 5 ether);
        BatchExitGame.Payout[] memory p = new BatchExitGame.Payout[](1);
        p[0] = _payout(id, 0, oldTx);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimMismatch.selector, id, 0));
        batchGame.payoutBatchClaims(p);
        _challengeInvalid(carol, id, 0, oldTx);
        assertEq(framework.totalCredited(address(0)), 0);
    }

    /// @dev A claim whose output a standard exit paid first (CHAL-8 missed) is void at payout.
    function test_PayoutVoidWhenPaidByStandardExit() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        (uint256 d2, bytes memory d2tx) = _deposit(alice, 2 ether);
        _deposit(carol, 5 ether); // the vault is not short
        vm.prank(alice);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(d, dtx));
        uint256 id = _startFor(alice, _groups1(alice, abi.encodePacked(_rec(d, 1 ether), _rec(d2, 2 ether))));
        _processAll(); // the standard exit first (older), then the batch
        assertEq(framework.totalCredited(address(0)), 4 ether); // 1 paid + 3 reserved
        BatchExitGame.Payout[] memory p = new BatchExitGame.Payout[](2);
        p[0] = _payout(id, 0, dtx);
        p[1] = _payout(id, 1, d2tx);
        vm.expectEmit(address(batchGame));
        emit BatchExitGame.BatchClaimPaid(id, 0, alice, 0);
        batchGame.payoutBatchClaims(p);
        assertEq(batchGame.claimState(id, 0), 2);
        assertEq(batchGame.claimState(id, 1), 3);
        assertEq(framework.totalCredited(address(0)), 3 ether, "the void claim's reserve released");
        BatchExitGame.Batch memory b = batchGame.batches(id);
        assertEq(b.total, 0);
        assertEq(b.reserved, 0);
        // Paying again does nothing (skipped).
        batchGame.payoutBatchClaims(p);
        assertEq(framework.totalCredited(address(0)), 3 ether);
    }

    /// @dev The vault is short (an invalid block's exit drained it): the reserve is capped and the rest
    /// recorded as the batch's debt (EXIT-16); the batch's payouts share the reserve first come first
    /// paid, each in full: a claim the reserve cannot cover is deferred, never paid in part.
    function test_ShortfallReserveCappedFirstComeFirstPaid() public {
        (uint256 d1, bytes memory t1) = _deposit(alice, 1 ether);
        (uint256 d2, bytes memory t2) = _deposit(bob, 1 ether);
        (uint256 d3, bytes memory t3) = _deposit(carol, 1 ether);
        // An exit processed earlier takes 2 of the 3 ether (simulated: a credit by the standard game).
        vm.prank(address(seGame));
        framework.credit(address(0), mallory, 2 ether);
        BatchExitGame.Group[] memory g = new BatchExitGame.Group[](3);
        g[0] = _group(alice, _rec(d1, 1 ether));
        g[1] = _authGroup(bobKey, bob, alice, block.timestamp, 0, _rec(d2, 1 ether));
        g[2] = _authGroup(carolKey, carol, alice, block.timestamp, 0, _rec(d3, 1 ether));
        uint256 id = _startFor(alice, g);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.DebtRecorded(address(0), 0, address(batchGame), id, 2 ether);
        _processAll();
        assertEq(batchGame.batches(id).reserved, 1 ether, "capped");
        assertEq(framework.totalCredited(address(0)), 3 ether);
        (uint256 head, uint256 tail, uint256 outstanding, uint256 pool) = framework.debtBook(address(0));
        assertEq(abi.encode(head, tail, outstanding, pool), abi.encode(0, 1, 2 ether, 0));
        _pay1(id, 1, t2); // bob first: paid in full
        vm.expectEmit(address(batchGame));
        emit BatchExitGame.BatchClaimDeferred(id, 0, 0);
        _pay1(id, 0, t1); // alice: nothing left, deferred (still live)
        assertEq(_eth(bob), 1 ether);
        assertEq(batchGame.claimState(id, 0), 0);
        assertTrue(batchGame.isLiveClaim(_ref(id, 0)));
        assertEq(batchGame.batches(id).total, 2 ether, "alice's and carol's claims still owed");
        assertLe(framework.totalCredited(address(0)), framework.totalDeposited(address(0)));
        t3;
    }

    function test_PayoutManyOwnersInOneCall() public {
        uint256 n = 12;
        address[] memory owners = new address[](3);
        owners[0] = alice;
        owners[1] = bob;
        owners[2] = carol;
        uint256[] memory keys = new uint256[](3);
        keys[0] = aliceKey;
        keys[1] = bobKey;
        keys[2] = carolKey;
        bytes[] memory txs = new bytes[](n);
        bytes[3] memory claims;
        for (uint256 i = 0; i < n; ++i) {
            (uint256 pos, bytes memory t) = _deposit(owners[i % 3], 1 ether + i);
            txs[i] = t;
            claims[i % 3] = abi.encodePacked(claims[i % 3], _rec(pos, 1 ether + i));
        }
        BatchExitGame.Group[] memory g = new BatchExitGame.Group[](3);
        for (uint256 o = 0; o < 3; ++o) {
            g[o] = _authGroup(keys[o], owners[o], mallory, block.timestamp, 0, claims[o]);
        }
        uint256 id = _startFor(mallory, g);
        _processAll();
        BatchExitGame.Payout[] memory p = new BatchExitGame.Payout[](n);
        for (uint256 k = 0; k < n; ++k) {
            // tree order: alice's 4, bob's 4, carol's 4; deposit i went to owner i % 3 as its (i / 3)-th claim
            uint256 i = (k % 4) * 3 + k / 4;
            p[k] = _payout(id, k, txs[i]);
        }
        vm.prank(mallory); // anyone pays
        batchGame.payoutBatchClaims(p);
        uint256 sum;
        for (uint256 o = 0; o < 3; ++o) {
            sum += _eth(owners[o]);
        }
        assertEq(sum, 12 ether + 66);
        assertEq(batchGame.batches(id).total, 0);
        assertEq(batchGame.batches(id).reserved, 0);
    }

    function test_RevertWhen_PayoutBeforeProcessingOrTooMany() public {
        (uint256 d, bytes memory dtx) = _deposit(alice, 1 ether);
        uint256 id = _startFor(alice, _groups1(alice, _rec(d, 1 ether)));
        BatchExitGame.Payout[] memory p = new BatchExitGame.Payout[](1);
        p[0] = _payout(id, 0, dtx);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchExitNotProcessed.selector, id));
        batchGame.payoutBatchClaims(p);
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchPayoutTooMany.selector, 257));
        batchGame.payoutBatchClaims(new BatchExitGame.Payout[](257));
        // Duplicate entries: the second is skipped, the claim paid once.
        _processAll();
        BatchExitGame.Payout[] memory two = new BatchExitGame.Payout[](2);
        two[0] = p[0];
        two[1] = p[0];
        batchGame.payoutBatchClaims(two);
        assertEq(framework.totalCredited(address(0)), 1 ether);
        assertEq(_eth(alice), 1 ether + CLAIM_BOND + BATCH_BOND / 2);
    }

    function test_OnlyFrameworkProcessesAndOnlyBatchGameReserves() public {
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameNotFramework.selector, address(this)));
        batchGame.processExit(1, address(0), address(this));
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotBatchGame.selector, address(this)));
        framework.reserve(address(0), 1, 1);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotBatchGame.selector, address(seGame)));
        vm.prank(address(seGame));
        framework.release(address(0), 1);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotBatchGame.selector, address(this)));
        framework.creditReserved(address(0), alice, 1);
    }

    function test_BondChangesBoundedAndDelayed() public {
        vm.prank(operator);
        batchGame.proposeClaimBondSize(CLAIM_BOND * 2);
        assertEq(batchGame.claimBondSize(), CLAIM_BOND);
        skip(2 * PERIOD);
        assertEq(batchGame.claimBondSize(), CLAIM_BOND * 2);
        vm.prank(operator);
        vm.expectRevert();
        batchGame.proposeDemandBondSize(DEMAND_BOND * 3);
        vm.expectRevert(abi.encodeWithSelector(ExitGameBase.ExitGameNotBondAdmin.selector, address(this)));
        batchGame.proposeBatchBondSize(BATCH_BOND);
        assertEq(batchGame.batchBondSize(), BATCH_BOND);
        assertEq(batchGame.demandBondSize(), DEMAND_BOND);
    }

    // ---------------------------------------------------------------- gas (the issue's goal)

    function _manyClaims(uint256 firstBlk, uint256 n) internal pure returns (bytes memory claims) {
        claims = new bytes(20 * n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 pos = UtxoPosLib.pack(firstBlk, i, 0);
            uint256 w = (pos << 192) | (uint256(1 ether + i) << 96);
            assembly {
                let p := add(add(claims, 32), mul(i, 20))
                mstore(p, or(w, and(mload(p), 0xffffffffffffffffffffffff)))
            }
        }
    }

    /// @dev One owner, 5,000 claims: the start's gas per claim (goal: <= ~2,000; the issue: < 3,000).
    function test_GasStart5000ClaimsOneOwner() public {
        _submit1(_depositTx(alice, address(0), 1));
        uint256 n = 5000;
        BatchExitGame.Group[] memory g = _groups1(alice, _manyClaims(1000, n));
        bytes32 root = _root(blockTxs[1000]);
        uint64 ts = blockTimestamp[1000];
        uint256 value = BATCH_BOND + CLAIM_BOND * n;
        vm.prank(alice);
        uint256 g0 = gasleft();
        batchGame.startBatchExit{value: value}(address(0), root, ts, g);
        uint256 used = g0 - gasleft();
        // Calldata is not metered by forge: 20 bytes a claim at <= 16 gas a byte (+ ABI overhead) is added.
        uint256 calldataGas = 16 * 20 * n;
        uint256 perClaim = (used + calldataGas) / n;
        emit log_named_uint("start: execution gas per claim", used / n);
        emit log_named_uint("start: with calldata, gas per claim", perClaim);
        assertLe(perClaim, 2000);
    }

    /// @dev The gas BOND-3 sizes the claim and demand bonds by: the costliest strike (CHAL-6 with a
    /// full payment proven in a batch of 5,000) and a demand's answer.
    function test_GasChallengeAndAnswer() public {
        (uint256 d,) = _deposit(alice, 10 ether);
        uint256[] memory ins = new uint256[](1);
        ins[0] = d;
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](5);
        for (uint256 i = 0; i < 5; ++i) {
            outs[i] = _out(i == 4 ? bob : alice, address(0), 1 ether);
        }
        bytes memory payment = _payment(ins, outs);
        bytes[] memory txs = new bytes[](40);
        for (uint256 i = 0; i < 40; ++i) {
            txs[i] = payment;
        }
        uint256 blk = _submitBlock(txs);
        // 5,000 claims: bob's real output at index 0 (tx 0 output 4), then fakes.
        bytes memory claims = abi.encodePacked(_rec(UtxoPosLib.pack(blk, 0, 4), 1 ether), _manyClaims(blk + 1000, 4999));
        vm.prank(operator);
        framework.submitBlock(blk + 1000, keccak256("x"));
        blockTimestamp[blk + 1000] = uint64(block.timestamp);
        vm.deal(bob, 100 ether);
        vm.recordLogs();
        vm.prank(bob);
        uint256 id = batchGame.startBatchExit{value: BATCH_BOND + CLAIM_BOND * 5000}(
            address(0), keccak256("x"), uint64(block.timestamp), _groups1(bob, claims)
        );
        _learn(id, _groups1(bob, claims));
        // Strike a claim of output 4 of tx 39 as bob's with the wrong amount: a full proof path.
        IBatchExitGame.ClaimRef memory c = _ref(id, 0);
        (bytes memory proof, uint64 ts) = _inclusion(c.utxoPos);
        _demand(carol, id, 0);
        uint256 g0 = gasleft();
        batchGame.answerClaimDemand(c, payment, proof, ts);
        emit log_named_uint("answer gas (5-output payment, 5,000-claim batch)", g0 - gasleft());
        // Now a CHAL-6 of a fake (an uncommitted-ish block with a committed root: wrong leaf) on claim 4,999.
        IBatchExitGame.ClaimRef memory f = _ref(id, 0);
        f.amount = 1 ether;
        vm.prank(bob);
        PlasmaTx.Output[] memory outs2 = new PlasmaTx.Output[](5);
        for (uint256 i = 0; i < 5; ++i) {
            outs2[i] = _out(alice, address(0), 1 ether);
        }
        g0 = gasleft();
        vm.expectRevert(abi.encodeWithSelector(BatchExitGame.BatchClaimNotInvalid.selector, id, 0));
        batchGame.challengeBatchClaimInvalid(c, payment, proof, ts);
        emit log_named_uint("CHAL-6 gas (full check, refused)", g0 - gasleft());
    }

    event log_named_uint(string key, uint256 val);
}
