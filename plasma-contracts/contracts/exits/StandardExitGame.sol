// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {IBatchExitGame} from "../interfaces/IBatchExitGame.sol";
import {IPlasmaFramework} from "../interfaces/IPlasmaFramework.sol";
import {BondLib} from "../libraries/BondLib.sol";
import {PlasmaEip712} from "../libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../libraries/UtxoPosLib.sol";
import {ExitGameBase} from "./ExitGameBase.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title StandardExitGame
/// @notice Standard exits of included outputs: start with an inclusion proof and a bond, challenge
/// with a signed spend, settle in priority order (spec: EXIT-1..5, EXIT-9, EXIT-10).
/// @dev An exit's id is its output's position: one position holds one output under a committed root,
/// so ids never collide (equal deposit bytes in two deposit blocks have different positions;
/// spec: OUT-1), and the framework's queue needs no id table for standard exits.
contract StandardExitGame is ExitGameBase {
    using BondLib for BondLib.Bond;

    enum Status {
        None,
        Active,
        Challenged,
        Settled
    }

    /// @notice An exit, packed into three slots (four when delegated), plus the position's entry in
    /// `_outputIdAt`. The first slot holds owner, bond, status and start time together, so starting
    /// an ETH exit (token zero) writes three fresh slots, not four.
    /// @dev The bond is kept in gwei (bond sizes are whole gwei: `StandardExitBondNotGwei`), so it
    /// round-trips to the wei; `exits(pos)` returns it in wei. `startedAt` (uint40: seconds until
    /// the year 36812) is cleared at settlement (spec: CHAL-8, CHAL-10). `delegated` says whether
    /// `bondOwner` was written, so settling an exit its owner started reads no fourth slot (issue 19:
    /// a cold read, 2,100 gas, on the first exit of a `processExits` call).
    struct StandardExit {
        address owner; // gets the funds
        uint40 bondGwei; // the bond in gwei (at most 2^40 - 1 gwei, about 1,099 ETH)
        bool delegated; // started by a delegate (EXIT-9): `bondOwner` holds the bond's owner
        Status status;
        uint40 startedAt; // L1 time of the start
        address token; // alone in its slot: zero (never written) for ETH
        uint256 amount;
        address bondOwner; // zero unless started by a delegate; then it owns the bond
    }

    /// @notice What became of one entry of a batched start (spec: EXIT-10): `Started`, or why it
    /// was skipped. Only what a third party (or time) can change after the batch was signed is
    /// skipped; a malformed entry (bad proof, unknown block, wrong bond) still reverts the batch.
    enum StartOutcome {
        Started,
        AlreadyStarted, // a standard exit of the output exists (the owner's own, or an earlier entry)
        OutputFinalized, // paid or spent by a processed exit (spec: OUT-2)
        NotOwner, // the output's owner is not the sender, nor the signer of the authorization
        BadAuthorization // expired, revoked by the owner, or for another exitor (spec: EXIT-9)
    }

    /// @notice What starting one exit needs.
    struct StartArgs {
        uint256 utxoPos;
        bytes txBytes;
        bytes inclusionProof;
        uint64 blockTimestamp; // the L1 timestamp of the output's block (from its event)
    }

    /// @notice An owner's EIP-712 `ExitAuthorization(exitor, deadline, nonce)` (spec: EXIT-9).
    struct Authorization {
        uint256 deadline;
        uint256 nonce;
        bytes signature;
    }

    /// @dev Exits by output id (spec: OUT-1), read through `exits(pos)`. A settled record is this
    /// game's half of the finalized-output book (spec: OUT-2): `isOutputSettled` answers for it and the
    /// framework's `isOutputFinalized` and `finalizeOutputs` consult it, so settling a standard exit
    /// writes no new slot (issue 19: the framework's fresh book slot was 22,100 gas per exit). The
    /// record is never deleted and its status never leaves `Settled`, so a settled output stays
    /// finalized for every game, for ever.
    mapping(bytes32 outputId => StandardExit) private _exits;
    /// @dev The output id exited at each position (exit id), zero if none was ever started. Written
    /// once, at the start, and never cleared: one standard exit per position ever (EXIT-1).
    mapping(uint256 utxoPos => bytes32 outputId) private _outputIdAt;
    /// @notice Each owner's current authorization nonce; bumping it revokes every authorization.
    mapping(address owner => uint256) public authorizationNonce;

    BondLib.Bond private _bond;

    /// @notice The sender does not own the output (and holds no authorization from its owner).
    error StandardExitNotOwner(address owner, address sender);
    /// @notice An exit of this output was started before (one per output ever; spec: EXIT-1).
    error StandardExitAlreadyStarted(uint256 utxoPos);
    /// @notice The output was already paid or spent by a processed exit (spec: OUT-2).
    error StandardExitOutputFinalized(uint256 utxoPos);
    /// @notice No active exit with this id.
    error StandardExitNotActive(uint256 exitId);
    /// @notice The challenging transaction's input does not spend the exiting output.
    error StandardExitNotASpend(uint256 exitId, uint256 spentPos);
    /// @notice The spend is not signed by the exiting output's owner (spec: EXIT-4).
    error StandardExitBadSpendSignature(address signer, address owner);
    /// @notice The authorization expired, was revoked, or is for another exitor (spec: EXIT-9).
    error StandardExitBadAuthorization(address owner, address exitor);
    /// @notice CHAL-10 refused: the batch has no live claim of this exit's output (position, owner,
    /// amount and token) at that index with that proof.
    error StandardExitNotBatchClaimed(uint256 exitId);
    /// @notice CHAL-10 refused: the exit started no later than the batch (`exitStartedAt <=
    /// batchStartedAt`), so it stands and CHAL-8 strikes the claim instead.
    error StandardExitStartedFirst(uint256 exitId, uint64 exitStartedAt, uint64 batchStartedAt);
    /// @notice A standard-exit bond size must be a whole number of gwei, at most 2^40 - 1 gwei: the
    /// exit record keeps the bond in gwei (so every bond is paid back to the wei).
    error StandardExitBondNotGwei(uint256 size);
    /// @notice Batches need one authorization per exit.
    error StandardExitLengthMismatch(uint256 exits, uint256 authorizations);

    /// @notice An exit started: everything a watcher needs to check it (spec: EXIT-1).
    event ExitStarted(
        uint256 indexed exitId,
        address indexed owner,
        address indexed token,
        uint256 amount,
        bytes32 outputId,
        uint64 exitableAt,
        address exitor
    );
    /// @notice An exit was challenged with a spend of its output: the challenger was credited
    /// `reward` (half the bond), the rest of the bond is burned (spec: BOND-1).
    event ExitChallenged(uint256 indexed exitId, address indexed challenger, bytes32 spendingTxHash, uint256 reward);
    /// @notice A batched start skipped the entry for `utxoPos`; its bond was credited back to
    /// `exitor` (spec: EXIT-10).
    event ExitStartSkipped(uint256 indexed utxoPos, address indexed exitor, StartOutcome reason);
    /// @notice `owner` revoked every exit authorization up to `nonce`.
    event AuthorizationsRevoked(address indexed owner, uint256 nonce);

    /// @param framework_ The framework served.
    /// @param bondAdmin_ Who may propose bond changes.
    /// @param initialBond The initial bond (about twice a challenge's gas at a reference price; BOND-1).
    constructor(IPlasmaFramework framework_, address bondAdmin_, uint256 initialBond)
        ExitGameBase(framework_, bondAdmin_)
    {
        _checkBondSize(initialBond);
        _bond.size = SafeCast.toUint128(initialBond);
    }

    // ---------------------------------------------------------------- start

    /// @notice Starts a standard exit of an output the sender owns (spec: EXIT-1, EXIT-2).
    /// @dev Send the bond (`bondSize()`). Emits `ExitStarted` and the framework's `ExitQueued`.
    /// @param args The output's position, its transaction, the inclusion proof and the block's timestamp.
    function startStandardExit(StartArgs calldata args) external payable nonReentrant {
        uint256 bond = _takeBond(_bond, 1);
        _start(args, msg.sender, address(0), bond, false);
    }

    /// @notice Starts many standard exits of outputs the sender owns, one bond each (spec: EXIT-10).
    /// Entries that can no longer start (already exiting, finalized, not the sender's) are skipped
    /// and their bonds credited back, so one stale entry cannot revert a mass exit.
    /// @dev For mass exits; `msg.value` must be `bondSize() * exits.length`. Emits `ExitStarted` per
    /// started entry and `ExitStartSkipped` per skipped one; the refund is a `Credited` to the sender.
    /// @param args One entry per exit.
    /// @return outcomes Per entry, `Started` or why it was skipped.
    function startStandardExits(StartArgs[] calldata args)
        external
        payable
        nonReentrant
        returns (StartOutcome[] memory outcomes)
    {
        uint256 bond = _takeBond(_bond, args.length);
        outcomes = new StartOutcome[](args.length);
        uint256 skipped;
        for (uint256 i = 0; i < args.length; ++i) {
            StartOutcome outcome = _start(args[i], msg.sender, address(0), bond, true);
            if (outcome != StartOutcome.Started) {
                outcomes[i] = outcome;
                ++skipped;
                emit ExitStartSkipped(args[i].utxoPos, msg.sender, outcome);
            }
        }
        _refundSkipped(skipped * bond);
    }

    /// @notice Starts a standard exit on behalf of the output's owner, who authorized the sender
    /// (spec: EXIT-9). The funds go to the owner; the bond stays the sender's.
    /// @dev This is how a watchtower exits the funds it guards when the chain turns byzantine.
    /// @param args The exit.
    /// @param auth The owner's signed authorization for `msg.sender`.
    function startStandardExitFor(StartArgs calldata args, Authorization calldata auth) external payable nonReentrant {
        uint256 bond = _takeBond(_bond, 1);
        _startFor(args, auth, bond, false);
    }

    /// @notice Batched `startStandardExitFor` (spec: EXIT-9, EXIT-10). Entries that can no longer
    /// start (authorization revoked or expired, output already exiting or finalized, not the
    /// signer's) are skipped and their bonds credited back: an owner who revokes or exits first
    /// cannot revert a watchtower's mass exit.
    /// @dev Emits `ExitStarted` per started entry and `ExitStartSkipped` per skipped one; the refund
    /// is a `Credited` to the sender.
    /// @param args One entry per exit.
    /// @param auths The owner's authorization for each exit (repeat an owner's for each of its exits).
    /// @return outcomes Per entry, `Started` or why it was skipped.
    function startStandardExitsFor(StartArgs[] calldata args, Authorization[] calldata auths)
        external
        payable
        nonReentrant
        returns (StartOutcome[] memory outcomes)
    {
        if (args.length != auths.length) revert StandardExitLengthMismatch(args.length, auths.length);
        uint256 bond = _takeBond(_bond, args.length);
        outcomes = new StartOutcome[](args.length);
        uint256 skipped;
        for (uint256 i = 0; i < args.length; ++i) {
            StartOutcome outcome = _startFor(args[i], auths[i], bond, true);
            if (outcome != StartOutcome.Started) {
                outcomes[i] = outcome;
                ++skipped;
                emit ExitStartSkipped(args[i].utxoPos, msg.sender, outcome);
            }
        }
        _refundSkipped(skipped * bond);
    }

    function _startFor(StartArgs calldata args, Authorization calldata auth, uint256 bond, bool batch)
        private
        returns (StartOutcome)
    {
        bytes32 digest = PlasmaEip712.digest(
            framework.domainSeparator(), PlasmaEip712.hashExitAuthorization(msg.sender, auth.deadline, auth.nonce)
        );
        address owner = PlasmaEip712.recover(digest, auth.signature, 0);
        if (block.timestamp > auth.deadline || auth.nonce != authorizationNonce[owner]) {
            if (batch) return StartOutcome.BadAuthorization;
            revert StandardExitBadAuthorization(owner, msg.sender);
        }
        return _start(args, owner, msg.sender, bond, batch);
    }

    /// @dev Credits the bonds of skipped batch entries back to the sender (pull payment, like
    /// every other payment of the game).
    function _refundSkipped(uint256 refund) private {
        if (refund != 0) framework.creditBonds{value: refund}(msg.sender, refund, address(0), 0);
    }

    /// @dev `owner` is who must own the output; `delegate` is the bond owner when not the owner.
    /// In a batch (`batch`), the conditions someone else or time can change after the batch was
    /// built return a skip reason instead of reverting (spec: EXIT-10); anything the sender got
    /// wrong still reverts.
    function _start(StartArgs calldata args, address owner, address delegate, uint256 bond, bool batch)
        private
        returns (StartOutcome)
    {
        uint256 utxoPos = args.utxoPos;
        UtxoPosLib.check(utxoPos);
        if (_outputIdAt[utxoPos] != bytes32(0)) {
            if (batch) return StartOutcome.AlreadyStarted;
            revert StandardExitAlreadyStarted(utxoPos);
        }
        PlasmaTx.Transaction memory t = PlasmaTx.decodeValid(args.txBytes);
        uint256 oindex = UtxoPosLib.outputIndex(utxoPos);
        if (oindex >= t.outputs.length) revert ExitGameNoSuchOutput(utxoPos);
        bool depositBlock = UtxoPosLib.isDepositBlock(UtxoPosLib.blknum(utxoPos));
        if (depositBlock != (t.txType == PlasmaTx.TYPE_DEPOSIT)) revert ExitGameWrongBlockKind(utxoPos, t.txType);
        uint64 blockTimestamp = args.blockTimestamp;
        _verifyInclusion(args.txBytes, utxoPos, args.inclusionProof, blockTimestamp);

        PlasmaTx.Output memory out = t.outputs[oindex];
        if (out.owner != owner) {
            if (batch) return StartOutcome.NotOwner;
            revert StandardExitNotOwner(out.owner, delegate == address(0) ? msg.sender : owner);
        }
        bytes32 outputId = PlasmaTx.outputId(keccak256(args.txBytes), t.inputs.length != 0, oindex, utxoPos);
        // The same output id at another position (the same transaction committed twice): one output,
        // one standard exit ever (EXIT-1), and its record is never overwritten.
        StandardExit storage e = _exits[outputId];
        if (e.status != Status.None) {
            if (batch) return StartOutcome.AlreadyStarted;
            revert StandardExitAlreadyStarted(utxoPos);
        }
        if (framework.isOutputFinalized(outputId)) {
            if (batch) return StartOutcome.OutputFinalized;
            revert StandardExitOutputFinalized(utxoPos);
        }

        // Bond sizes are whole gwei below 2^40 gwei (`_checkBondSize`), so this division is exact and
        // the cast cannot truncate.
        e.owner = owner;
        // forge-lint: disable-next-line(unsafe-typecast)
        e.bondGwei = uint40(bond / 1 gwei);
        e.status = Status.Active;
        e.startedAt = SafeCast.toUint40(block.timestamp);
        if (out.token != address(0)) e.token = out.token; // a fresh record's slot is zero already
        e.amount = out.amount;
        _outputIdAt[utxoPos] = outputId;
        if (delegate != address(0)) (e.delegated, e.bondOwner) = (true, delegate);

        uint64 exitableAt = _exitableAt(utxoPos, blockTimestamp);
        framework.enqueue(out.token, exitableAt, utxoPos, utxoPos, false);
        emit ExitStarted(utxoPos, owner, out.token, out.amount, outputId, exitableAt, msg.sender);
        return StartOutcome.Started;
    }

    // ---------------------------------------------------------------- challenge

    /// @notice Challenges an exit with a transaction spending its output, signed by the output's
    /// owner (spec: EXIT-4). The spend need not be included anywhere. The challenger is credited
    /// half the bond; the other half is burned (spec: BOND-1), so an exiter who challenges her own
    /// dishonest exit still loses half of it.
    /// @dev Emits `ExitChallenged`. The output is not finalized: the spend may still exit in flight.
    /// @param exitId The exit (its position).
    /// @param spendingTx The spending transaction (any type with inputs).
    /// @param inputIndex Which of its inputs spends the exiting output.
    /// @param signature The owner's signature of the spending transaction for that input.
    function challengeStandardExit(
        uint256 exitId,
        bytes calldata spendingTx,
        uint256 inputIndex,
        bytes calldata signature
    ) external nonReentrant {
        StandardExit storage e = _exits[_outputIdAt[exitId]];
        if (e.status != Status.Active) revert StandardExitNotActive(exitId);
        PlasmaTx.Transaction memory t = PlasmaTx.decodeValid(spendingTx);
        uint256 spent = inputIndex < t.inputs.length ? t.inputs[inputIndex] : 0;
        if (spent != exitId) revert StandardExitNotASpend(exitId, spent);
        bytes32 digest = PlasmaEip712.digest(framework.domainSeparator(), PlasmaEip712.hashTx(t));
        address signer = PlasmaEip712.recover(digest, signature, inputIndex);
        if (signer != e.owner) revert StandardExitBadSpendSignature(signer, e.owner);

        e.status = Status.Challenged;
        uint256 reward = _challengeReward(_bondWei(e));
        emit ExitChallenged(exitId, msg.sender, keccak256(spendingTx), reward);
        framework.creditBonds{value: reward}(msg.sender, reward, address(0), 0);
    }

    /// @notice Challenges an exit whose output is a live claim of a batch exit with the same owner,
    /// amount and token, started strictly before the exit (spec: CHAL-10). The challenger is credited
    /// half the bond, the rest is burned.
    /// @dev The claim is the exit's own output (position, owner, amount), so only where it sits in
    /// the batch is given. The earlier of the two exits stands: this challenge needs the batch to have
    /// started before the exit (`StandardExitStartedFirst` otherwise), and CHAL-8 strikes the claim of
    /// an active standard exit only if the exit started no later than the batch; at equal times the
    /// standard exit, which carried its proof, stands. So exactly one of the two applies to any pair,
    /// and an owner's earlier standard exit cannot be taken by a later batch claiming its output.
    /// Emits `ExitChallenged` with `spendingTxHash` zero.
    /// @param exitId The exit (its position).
    /// @param batchId The batch claiming the same output.
    /// @param index The claim's index in the batch's claim tree.
    /// @param proof The claim's proof in that tree.
    function challengeStandardExitBatchClaimed(uint256 exitId, uint256 batchId, uint256 index, bytes32[] calldata proof)
        external
        nonReentrant
    {
        StandardExit storage e = _exits[_outputIdAt[exitId]];
        if (e.status != Status.Active) revert StandardExitNotActive(exitId);
        IBatchExitGame batchGame = IBatchExitGame(framework.batchExitGame());
        (address token, uint64 batchStartedAt) = batchGame.batchStart(batchId);
        uint64 exitStartedAt = e.startedAt;
        if (batchStartedAt >= exitStartedAt) revert StandardExitStartedFirst(exitId, exitStartedAt, batchStartedAt);
        // A position or amount beyond a claim's 64 and 96 bits cannot be claimed: the casts below would
        // then truncate, so they are refused first.
        bool live = exitId <= type(uint64).max && e.amount <= type(uint96).max && token == e.token
            && batchGame.isLiveClaim(
                // forge-lint: disable-next-line(unsafe-typecast)
                IBatchExitGame.ClaimRef(batchId, index, e.owner, uint64(exitId), uint96(e.amount), proof)
            );
        if (!live) revert StandardExitNotBatchClaimed(exitId);
        e.status = Status.Challenged;
        uint256 reward = _challengeReward(_bondWei(e));
        emit ExitChallenged(exitId, msg.sender, bytes32(0), reward);
        framework.creditBonds{value: reward}(msg.sender, reward, address(0), 0);
    }

    // ---------------------------------------------------------------- settle

    /// @notice Settles a standard exit popped from its queue (framework only; spec: EXIT-5): pays the
    /// owner and returns the bond minus the processing bounty, or, if an in-flight exit finalized the
    /// output first, voids the exit and returns the whole bond. Challenged exits are skipped.
    /// @dev Emits nothing itself: the framework's `StandardExitPaid` or `StandardExitVoided` tells the
    /// settlement, and the bounty is credited to the processor (the third parameter, unused here) by
    /// the framework at the end of its `processExits`. `token` is the queue the exit was popped from, which is the exit's
    /// token: `_start` enqueues every standard exit in its output's token's queue, and only this game
    /// queues entries the framework dispatches here (unflagged, non-batch nonces). So the record's
    /// `token` slot is not read (issue 19: a cold read, 2,100 gas, on the first exit of a call), only
    /// cleared when it holds a token.
    /// @param exitId The exit (its position).
    /// @param token The token of the queue the exit was popped from.
    function processExit(uint256 exitId, address token, address) external onlyFramework {
        bytes32 outputId = _outputIdAt[exitId];
        StandardExit storage e = _exits[outputId];
        if (e.status != Status.Active) return; // challenged: the bond is gone, nothing to pay
        // Only the slots settlement needs: not `token` (the queue's), and `bondOwner` only when a
        // delegate started the exit (`delegated`, in the first slot). `x.bondOwner` is who gets the bond.
        StandardExit memory x;
        (x.owner, x.bondGwei, x.delegated) = (e.owner, e.bondGwei, e.delegated);
        x.amount = e.amount;
        x.bondOwner = x.delegated ? e.bondOwner : x.owner;
        // Keep owner, bond and status in the first slot: `Settled` is the output's finalized mark
        // (OUT-2, see `_exits`) and keeps "one exit per output ever". Clearing the rest refunds gas to
        // whoever processes the queue.
        e.status = Status.Settled;
        e.startedAt = 0;
        if (token != address(0)) delete e.token;
        delete e.amount;
        if (x.delegated) delete e.bondOwner;
        uint256 bond = uint256(x.bondGwei) * 1 gwei;
        // One call: the framework voids the exit if another game finalized the output first (whole
        // bond back), else pays the owner and the bond minus the processing bounty, which it credits
        // to `processor`, the caller of the `processExits` running now (EXIT-5). Its events
        // (`StandardExitPaid` or `StandardExitVoided`) tell the settlement: this game emits none.
        framework.settleStandardExit{value: bond}(
            outputId, token, x.owner, x.amount, x.bondOwner, _processingBounty(bond)
        );
    }

    /// @notice Whether a standard exit of `outputId` was settled (spec: OUT-2): paid, or void because
    /// another game had finalized the output. Either way the output is finalized; the framework's
    /// `isOutputFinalized` includes this.
    /// @param outputId The output's id (spec: OUT-1).
    function isOutputSettled(bytes32 outputId) external view returns (bool) {
        return _exits[outputId].status == Status.Settled;
    }

    // ---------------------------------------------------------------- admin and views

    /// @notice Revokes every exit authorization the sender signed so far (spec: EXIT-9).
    /// @dev Emits `AuthorizationsRevoked`.
    function revokeAuthorizations() external {
        uint256 nonce = ++authorizationNonce[msg.sender];
        emit AuthorizationsRevoked(msg.sender, nonce);
    }

    /// @notice Schedules a new bond size (bond admin only; bounded and delayed, spec: BOND-1).
    /// @dev Emits `BondChangeProposed`.
    /// @param newSize The new bond in wei, within [current / 2, current * 2] and a whole number of
    /// gwei (`StandardExitBondNotGwei` otherwise).
    function proposeBondSize(uint256 newSize) external onlyBondAdmin {
        _checkBondSize(newSize);
        _proposeBond(_bond, "standardExit", newSize);
    }

    /// @notice The bond a standard exit needs now.
    function bondSize() external view returns (uint256) {
        return _bond.current();
    }

    /// @notice The exit of the output at `utxoPos` (= its exit id).
    /// @dev Same fields and units as before the bond was stored in gwei: `bond` is in wei.
    /// `startedAt` is the L1 time the exit started, zero once settled (spec: CHAL-8, CHAL-10);
    /// `token`, `amount`, `outputId` and `bondOwner` are zero once settled too.
    /// @param utxoPos The exit id.
    /// @return owner Who gets the funds.
    /// @return bond The bond in wei.
    /// @return status None, Active, Challenged or Settled.
    /// @return token The exiting output's token (zero for ETH).
    /// @return startedAt L1 time of the start.
    /// @return amount The exiting amount.
    /// @return outputId The output's id (spec: OUT-1).
    /// @return bondOwner Zero unless started by a delegate (spec: EXIT-9); then it owns the bond.
    function exits(uint256 utxoPos)
        external
        view
        returns (
            address owner,
            uint88 bond,
            Status status,
            address token,
            uint64 startedAt,
            uint256 amount,
            bytes32 outputId,
            address bondOwner
        )
    {
        bytes32 id = _outputIdAt[utxoPos];
        StandardExit storage e = _exits[id];
        return (
            e.owner,
            // forge-lint: disable-next-line(unsafe-typecast)
            uint88(_bondWei(e)), // below 2^70: the bond in gwei is below 2^40
            e.status,
            e.token,
            e.startedAt,
            e.amount,
            e.status == Status.Settled ? bytes32(0) : id,
            e.bondOwner
        );
    }

    /// @dev An exit's bond in wei.
    function _bondWei(StandardExit storage e) private view returns (uint256) {
        return uint256(e.bondGwei) * 1 gwei;
    }

    /// @dev Bond sizes are whole gwei and fit the exit record's 40 bits of gwei.
    function _checkBondSize(uint256 size) private pure {
        if (size % 1 gwei != 0 || size / 1 gwei > type(uint40).max) revert StandardExitBondNotGwei(size);
    }
}
