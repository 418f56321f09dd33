// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {IPlasmaFramework} from "../interfaces/IPlasmaFramework.sol";
import {BondLib} from "../libraries/BondLib.sol";
import {PlasmaEip712} from "../libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../libraries/UtxoPosLib.sol";
import {ExitGameBase} from "./ExitGameBase.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title InFlightExitGame
/// @notice MoreVP in-flight exits: exits through a payment that may never have been included,
/// with piggybacks, canonicity challenges and responses, and challenges of spent piggybacks
/// (spec: EXIT-6, EXIT-7, EXIT-8, EXIT-11, CHAL-1 … CHAL-5).
/// @dev An exit's id is its transaction's hash, so each transaction can exit in flight once ever.
/// Each token the exit claims has its own queue entry; the verdict (canonical or not) is fixed the
/// first time any of them is processed, so every token is settled under the same verdict.
contract InFlightExitGame is ExitGameBase {
    using BondLib for BondLib.Bond;

    /// @dev Verdicts. Open: not processed yet. Deleted: nobody piggybacked; bond returned.
    uint8 private constant OPEN = 0;
    uint8 private constant CANONICAL = 1;
    uint8 private constant NOT_CANONICAL = 2;
    uint8 private constant DELETED = 3;
    /// @dev Competitor position meaning "the competitor was not shown included".
    uint96 private constant NOT_INCLUDED = type(uint96).max;
    /// @dev Piggyback bits: inputs in bits 0-4, outputs in bits 5-9.
    uint16 private constant OUTPUT_BIT_OFFSET = 5;

    /// @notice A spent output, as the in-flight transaction's input.
    struct Input {
        address owner;
        uint96 utxoPos;
        address token;
        uint256 amount;
        bytes32 outputId;
    }

    /// @notice An output of the in-flight transaction.
    struct Output {
        address owner;
        address token;
        uint256 amount;
    }

    /// @notice An in-flight exit (header in four slots, then its inputs and outputs).
    struct InFlightExit {
        address initiator;
        uint64 startedAt;
        uint8 nInputs;
        uint8 nOutputs;
        uint8 verdict;
        bool nonCanonical; // an unanswered canonicity challenge stands
        uint64 exitableAt;
        uint96 position; // youngest input, the queue position (spec: EXIT-7)
        uint16 piggybacks;
        uint8 pendingTokens; // queue entries not yet processed
        uint128 bond;
        uint128 piggybackBond; // the piggyback bond in force when the exit started
        address challenger; // the last canonicity challenger
        uint96 competitorTxPos; // its competitor's position, NOT_INCLUDED if not shown included
        uint96 inFlightTxPos; // the in-flight transaction's inclusion, once proven (0: unknown)
        Input[5] inputs;
        Output[5] outputs;
    }

    /// @notice What starting an in-flight exit needs (spec: EXIT-6).
    struct StartArgs {
        bytes inFlightTx;
        bytes[] inputTxs;
        uint256[] inputUtxoPos;
        bytes[] inputProofs;
        uint64[] inputBlockTimestamps;
        bytes[] signatures;
    }

    /// @notice A canonicity challenge (spec: CHAL-1). `competitorTxPos` 0 = not shown included.
    struct CompetitorArgs {
        uint256 exitId;
        uint8 inputIndex;
        bytes competingTx;
        uint8 competitorInputIndex;
        bytes competitorSignature;
        uint256 competitorTxPos;
        bytes competitorProof;
        uint64 competitorBlockTimestamp;
    }

    /// @notice A challenge of a piggybacked output (spec: CHAL-4).
    struct OutputSpentArgs {
        uint256 exitId;
        uint8 outputIndex;
        bytes inFlightTx;
        uint256 inFlightTxPos;
        bytes inclusionProof;
        uint64 blockTimestamp;
        bytes spendingTx;
        uint8 spendingInputIndex;
        bytes signature;
    }

    /// @notice In-flight exits by id (the transaction hash as an integer).
    mapping(uint256 exitId => InFlightExit) internal exits;
    /// @notice Whether an exit already has a queue entry for a token.
    mapping(uint256 exitId => mapping(address token => bool)) public isQueued;

    BondLib.Bond private _exitBond;
    BondLib.Bond private _piggybackBond;

    /// @notice Only payments exit in flight.
    error InFlightExitNotAPayment(uint8 txType);
    /// @notice The per-input arrays do not match the transaction's inputs.
    error InFlightExitLengthMismatch(uint256 inputs, uint256 given);
    /// @notice An input position given does not match the transaction's input.
    error InFlightExitInputMismatch(uint256 inputIndex, uint256 expected, uint256 given);
    /// @notice A signature does not come from the owner of the output its input spends (SIG-4).
    error InFlightExitBadSignature(uint256 inputIndex, address signer, address owner);
    /// @notice The outputs exceed the inputs of a token: no valid transaction does that.
    error InFlightExitValueCreated(address token);
    /// @notice This transaction already exited in flight (once ever; spec: EXIT-6).
    error InFlightExitAlreadyStarted(uint256 exitId);
    /// @notice No open in-flight exit with this id.
    error InFlightExitNotActive(uint256 exitId);
    /// @notice Piggybacks and canonicity challenges are over: the first half period has passed.
    error InFlightExitPhaseOver(uint256 exitId, uint256 phaseEnd);
    /// @notice Deletion waits for the end of the piggyback phase.
    error InFlightExitPhaseNotOver(uint256 exitId, uint256 phaseEnd);
    /// @notice The index is beyond the transaction's inputs or outputs.
    error InFlightExitNoSuchIndex(uint256 index);
    /// @notice Only the owner of an input or output piggybacks it.
    error InFlightExitNotOwner(address owner, address sender);
    /// @notice Already piggybacked.
    error InFlightExitAlreadyPiggybacked(uint256 exitId, uint256 bit);
    /// @notice Not piggybacked, so there is nothing to challenge.
    error InFlightExitNotPiggybacked(uint256 exitId, uint256 bit);
    /// @notice The challenging transaction is the in-flight transaction itself.
    error InFlightExitSameTransaction(uint256 exitId);
    /// @notice The transaction given is not the exit's in-flight transaction.
    error InFlightExitWrongTransaction(uint256 exitId, bytes32 txHash);
    /// @notice The transaction does not spend the output in question.
    error InFlightExitNotASpend(uint256 expected, uint256 spent);
    /// @notice A new competitor must be older than the recorded one (spec: CHAL-1).
    error InFlightExitCompetitorNotOlder(uint256 competitorTxPos, uint256 recordedTxPos);
    /// @notice Nothing to respond to: the exit is canonical.
    error InFlightExitNotChallenged(uint256 exitId);
    /// @notice The inclusion shown is not older than the competitor (spec: CHAL-2).
    error InFlightExitResponseNotOlder(uint256 inFlightTxPos, uint256 competitorTxPos);
    /// @notice The position is not a transaction position (`blknum·1e9 + txIndex·1e4`).
    error InFlightExitBadTxPos(uint256 txPos);
    /// @notice An exit with piggybacks (or queue entries) is settled by processing, not deleted.
    error InFlightExitHasPiggybacks(uint256 exitId);

    /// @notice An in-flight exit started; `inFlightTx` lets a watcher check it without lookups.
    event InFlightExitStarted(
        uint256 indexed exitId, address indexed initiator, uint64 exitableAt, uint256 position, bytes inFlightTx
    );
    /// @notice An input (`isOutput` false) or output was piggybacked.
    event InFlightExitPiggybacked(uint256 indexed exitId, address indexed owner, bool isOutput, uint8 index);
    /// @notice The exit was marked non-canonical by a competitor (`competitorTxPos` max: not included).
    event InFlightExitChallenged(
        uint256 indexed exitId, address indexed challenger, bytes32 competitorHash, uint256 competitorTxPos
    );
    /// @notice The exit was shown included before its competitor: canonical again.
    event InFlightExitChallengeResponded(uint256 indexed exitId, address indexed responder, uint256 inFlightTxPos);
    /// @notice A piggyback was challenged away (input spent elsewhere, or output spent).
    event InFlightExitPiggybackChallenged(
        uint256 indexed exitId, address indexed challenger, bool isOutput, uint8 index
    );
    /// @notice An exit nobody piggybacked was deleted; its bond went back.
    event InFlightExitDeleted(uint256 indexed exitId);
    /// @notice A token's claims of the exit were settled under `canonical`.
    event InFlightExitSettled(uint256 indexed exitId, address indexed token, bool canonical);

    /// @param framework_ The framework served.
    /// @param bondAdmin_ Who may propose bond changes.
    /// @param exitBond The in-flight exit bond.
    /// @param piggybackBond_ The piggyback bond.
    constructor(IPlasmaFramework framework_, address bondAdmin_, uint256 exitBond, uint256 piggybackBond_)
        ExitGameBase(framework_, bondAdmin_)
    {
        _exitBond.size = SafeCast.toUint128(exitBond);
        _piggybackBond.size = SafeCast.toUint128(piggybackBond_);
    }

    // ---------------------------------------------------------------- start

    /// @notice Starts an in-flight exit of a payment (spec: EXIT-6, EXIT-7).
    /// @dev Send `inFlightExitBond()`. Emits `InFlightExitStarted`. Nothing is queued until the first
    /// piggyback: only piggybacked inputs and outputs are ever paid.
    /// @param args The transaction, its signatures, and each input's transaction, position, proof
    /// and block timestamp.
    function startInFlightExit(StartArgs calldata args) external payable nonReentrant {
        uint256 bond = _takeBond(_exitBond, 1);
        PlasmaTx.Transaction memory t = PlasmaTx.decodeValid(args.inFlightTx);
        if (t.txType != PlasmaTx.TYPE_PAYMENT) revert InFlightExitNotAPayment(t.txType);
        uint256 n = t.inputs.length;
        if (
            args.inputTxs.length != n || args.inputUtxoPos.length != n || args.inputProofs.length != n
                || args.inputBlockTimestamps.length != n || args.signatures.length != n
        ) revert InFlightExitLengthMismatch(n, args.inputTxs.length);

        uint256 exitId = uint256(keccak256(args.inFlightTx));
        InFlightExit storage e = exits[exitId];
        if (e.startedAt != 0) revert InFlightExitAlreadyStarted(exitId);

        bytes32 digest = PlasmaEip712.digest(framework.domainSeparator(), PlasmaEip712.hashTx(t));
        uint64 youngest;
        uint256 position;
        for (uint256 i = 0; i < n; ++i) {
            if (args.inputUtxoPos[i] != t.inputs[i]) {
                revert InFlightExitInputMismatch(i, t.inputs[i], args.inputUtxoPos[i]);
            }
            uint64 ts = _storeInput(e.inputs[i], args, i, digest);
            if (ts > youngest) youngest = ts;
            if (t.inputs[i] > position) position = t.inputs[i];
        }
        _storeOutputs(e, t.outputs, n);

        uint64 exitableAt = _inFlightExitableAt(youngest);
        e.initiator = msg.sender;
        e.startedAt = uint64(block.timestamp);
        e.nInputs = SafeCast.toUint8(n);
        e.nOutputs = SafeCast.toUint8(t.outputs.length);
        e.exitableAt = exitableAt;
        e.position = SafeCast.toUint96(position);
        e.bond = SafeCast.toUint128(bond);
        e.piggybackBond = SafeCast.toUint128(_piggybackBond.current());
        emit InFlightExitStarted(exitId, msg.sender, exitableAt, position, args.inFlightTx);
    }

    /// @dev Checks input `i` (its transaction, inclusion and the in-flight signature) and stores it;
    /// returns its block's timestamp.
    function _storeInput(Input storage slot, StartArgs calldata args, uint256 i, bytes32 digest)
        private
        returns (uint64 ts)
    {
        uint256 pos = args.inputUtxoPos[i];
        PlasmaTx.Transaction memory inTx = PlasmaTx.decodeValid(args.inputTxs[i]);
        uint256 oindex = UtxoPosLib.outputIndex(pos);
        if (oindex >= inTx.outputs.length) revert ExitGameNoSuchOutput(pos);
        if (UtxoPosLib.isDepositBlock(UtxoPosLib.blknum(pos)) != (inTx.txType == PlasmaTx.TYPE_DEPOSIT)) {
            revert ExitGameWrongBlockKind(pos, inTx.txType);
        }
        ts = args.inputBlockTimestamps[i];
        _verifyInclusion(args.inputTxs[i], pos, args.inputProofs[i], ts);
        PlasmaTx.Output memory out = inTx.outputs[oindex];
        address signer = PlasmaEip712.recover(digest, args.signatures[i], i);
        if (signer != out.owner) revert InFlightExitBadSignature(i, signer, out.owner);
        slot.owner = out.owner;
        slot.utxoPos = SafeCast.toUint96(pos); // valid positions are below 2^94 (POS-2)
        if (out.token != address(0)) slot.token = out.token;
        slot.amount = out.amount;
        slot.outputId = PlasmaTx.outputId(keccak256(args.inputTxs[i]), inTx.inputs.length != 0, oindex, pos);
    }

    /// @dev Stores the outputs after checking that, per token, they do not exceed the inputs.
    function _storeOutputs(InFlightExit storage e, PlasmaTx.Output[] memory outs, uint256 nIn) private {
        for (uint256 j = 0; j < outs.length; ++j) {
            address token = outs[j].token;
            bool seen;
            for (uint256 k = 0; k < j; ++k) {
                if (outs[k].token == token) seen = true;
            }
            if (!seen) {
                uint256 outSum;
                for (uint256 k = j; k < outs.length; ++k) {
                    if (outs[k].token == token) outSum += outs[k].amount;
                }
                uint256 inSum;
                for (uint256 i = 0; i < nIn; ++i) {
                    if (e.inputs[i].token == token) inSum += e.inputs[i].amount;
                }
                if (outSum > inSum) revert InFlightExitValueCreated(token);
            }
            Output storage o = e.outputs[j];
            o.owner = outs[j].owner;
            if (token != address(0)) o.token = token;
            o.amount = outs[j].amount;
        }
    }

    /// @dev spec: EXIT-7 — the child-block rule on the youngest input, deposits included.
    function _inFlightExitableAt(uint64 youngestInputTimestamp) private view returns (uint64) {
        uint256 soonest = block.timestamp + minExitPeriod;
        uint256 aged = uint256(youngestInputTimestamp) + 2 * minExitPeriod;
        return SafeCast.toUint64(aged > soonest ? aged : soonest);
    }

    // ---------------------------------------------------------------- piggybacks

    /// @notice Piggybacks input `inputIndex` of an in-flight exit (spec: EXIT-8): the input's owner
    /// claims it back should the transaction turn out non-canonical.
    /// @dev Phase 1 only; send `piggybackBond` of the exit. Emits `InFlightExitPiggybacked`, and the
    /// framework's `ExitQueued` for the first claim of a token.
    function piggybackInput(uint256 exitId, uint8 inputIndex) external payable nonReentrant {
        InFlightExit storage e = _openInPhaseOne(exitId);
        if (inputIndex >= e.nInputs) revert InFlightExitNoSuchIndex(inputIndex);
        Input storage input = e.inputs[inputIndex];
        _piggyback(e, exitId, inputIndex, input.owner, input.token);
        emit InFlightExitPiggybacked(exitId, msg.sender, false, inputIndex);
    }

    /// @notice Piggybacks output `outputIndex` of an in-flight exit (spec: EXIT-8): the output's
    /// owner claims it should the transaction turn out canonical.
    /// @dev Phase 1 only; send `piggybackBond` of the exit. Emits `InFlightExitPiggybacked`, and the
    /// framework's `ExitQueued` for the first claim of a token.
    function piggybackOutput(uint256 exitId, uint8 outputIndex) external payable nonReentrant {
        InFlightExit storage e = _openInPhaseOne(exitId);
        if (outputIndex >= e.nOutputs) revert InFlightExitNoSuchIndex(outputIndex);
        Output storage output = e.outputs[outputIndex];
        _piggyback(e, exitId, OUTPUT_BIT_OFFSET + outputIndex, output.owner, output.token);
        emit InFlightExitPiggybacked(exitId, msg.sender, true, outputIndex);
    }

    function _piggyback(InFlightExit storage e, uint256 exitId, uint256 bit, address owner, address token) private {
        if (owner != msg.sender) revert InFlightExitNotOwner(owner, msg.sender);
        if (msg.value != e.piggybackBond) revert ExitGameWrongBond(e.piggybackBond, msg.value);
        uint16 mask = _mask(bit);
        if (e.piggybacks & mask != 0) revert InFlightExitAlreadyPiggybacked(exitId, bit);
        e.piggybacks |= mask;
        if (!isQueued[exitId][token]) {
            isQueued[exitId][token] = true;
            ++e.pendingTokens;
            framework.enqueue(token, e.exitableAt, e.position, exitId, true);
        }
    }

    // ---------------------------------------------------------------- canonicity

    /// @notice Marks an in-flight exit non-canonical with a competing spend of one of its inputs
    /// (spec: CHAL-1).
    /// @dev Phase 1 only. A later challenge needs an older competitor (and, after a response, one
    /// older than the in-flight transaction's inclusion). Emits `InFlightExitChallenged`.
    function challengeInFlightExitNotCanonical(CompetitorArgs calldata args) external nonReentrant {
        InFlightExit storage e = _openInPhaseOne(args.exitId);
        if (args.inputIndex >= e.nInputs) revert InFlightExitNoSuchIndex(args.inputIndex);
        bytes32 competitorHash = keccak256(args.competingTx);
        if (uint256(competitorHash) == args.exitId) revert InFlightExitSameTransaction(args.exitId);
        Input storage input = e.inputs[args.inputIndex];
        _checkSpend(args.competingTx, args.competitorInputIndex, args.competitorSignature, input.utxoPos, input.owner);

        uint96 competitorPos = NOT_INCLUDED;
        if (args.competitorTxPos != 0) {
            _checkTxPos(args.competitorTxPos);
            _verifyInclusion(
                args.competingTx, args.competitorTxPos, args.competitorProof, args.competitorBlockTimestamp
            );
            competitorPos = SafeCast.toUint96(args.competitorTxPos);
        }
        uint96 bar = e.inFlightTxPos != 0 ? e.inFlightTxPos : (e.challenger != address(0) ? e.competitorTxPos : 0);
        if (bar != 0 && competitorPos >= bar) revert InFlightExitCompetitorNotOlder(competitorPos, bar);

        e.nonCanonical = true;
        e.challenger = msg.sender;
        e.competitorTxPos = competitorPos;
        emit InFlightExitChallenged(args.exitId, msg.sender, competitorHash, competitorPos);
    }

    /// @notice Answers a canonicity challenge by proving the in-flight transaction was included
    /// before its competitor (spec: CHAL-2).
    /// @dev Allowed until the exit is processed. Emits `InFlightExitChallengeResponded`.
    /// @param exitId The exit.
    /// @param inFlightTx The in-flight transaction's bytes.
    /// @param inFlightTxPos Its transaction position.
    /// @param inclusionProof Its inclusion proof.
    /// @param blockTimestamp Its block's timestamp.
    function respondToNonCanonicalChallenge(
        uint256 exitId,
        bytes calldata inFlightTx,
        uint256 inFlightTxPos,
        bytes calldata inclusionProof,
        uint64 blockTimestamp
    ) external nonReentrant {
        InFlightExit storage e = _open(exitId);
        if (!e.nonCanonical) revert InFlightExitNotChallenged(exitId);
        _checkInFlightTx(exitId, inFlightTx);
        _checkTxPos(inFlightTxPos);
        _verifyInclusion(inFlightTx, inFlightTxPos, inclusionProof, blockTimestamp);
        if (inFlightTxPos >= e.competitorTxPos) revert InFlightExitResponseNotOlder(inFlightTxPos, e.competitorTxPos);
        e.nonCanonical = false;
        e.inFlightTxPos = SafeCast.toUint96(inFlightTxPos);
        emit InFlightExitChallengeResponded(exitId, msg.sender, inFlightTxPos);
    }

    // ---------------------------------------------------------------- piggyback challenges

    /// @notice Removes a piggybacked input that its owner also spent in another transaction
    /// (spec: CHAL-3); the challenger gets the piggyback bond.
    /// @dev Allowed until processing. Emits `InFlightExitPiggybackChallenged`.
    function challengeInFlightExitInputSpent(
        uint256 exitId,
        uint8 inputIndex,
        bytes calldata spendingTx,
        uint8 spendingInputIndex,
        bytes calldata signature
    ) external nonReentrant {
        InFlightExit storage e = _open(exitId);
        if (inputIndex >= e.nInputs) revert InFlightExitNoSuchIndex(inputIndex);
        if (uint256(keccak256(spendingTx)) == exitId) revert InFlightExitSameTransaction(exitId);
        Input storage input = e.inputs[inputIndex];
        _checkSpend(spendingTx, spendingInputIndex, signature, input.utxoPos, input.owner);
        _removePiggyback(e, exitId, inputIndex);
        emit InFlightExitPiggybackChallenged(exitId, msg.sender, false, inputIndex);
    }

    /// @notice Removes a piggybacked output that was spent: the in-flight transaction is shown
    /// included (fixing the output's position) and a spend of that position signed by the owner
    /// (spec: CHAL-4); the challenger gets the piggyback bond.
    /// @dev Allowed until processing. Emits `InFlightExitPiggybackChallenged`.
    function challengeInFlightExitOutputSpent(OutputSpentArgs calldata args) external nonReentrant {
        InFlightExit storage e = _open(args.exitId);
        if (args.outputIndex >= e.nOutputs) revert InFlightExitNoSuchIndex(args.outputIndex);
        _checkInFlightTx(args.exitId, args.inFlightTx);
        _checkTxPos(args.inFlightTxPos);
        _verifyInclusion(args.inFlightTx, args.inFlightTxPos, args.inclusionProof, args.blockTimestamp);
        Output storage output = e.outputs[args.outputIndex];
        _checkSpend(
            args.spendingTx,
            args.spendingInputIndex,
            args.signature,
            args.inFlightTxPos + args.outputIndex,
            output.owner
        );
        _removePiggyback(e, args.exitId, OUTPUT_BIT_OFFSET + args.outputIndex);
        emit InFlightExitPiggybackChallenged(args.exitId, msg.sender, true, args.outputIndex);
    }

    function _removePiggyback(InFlightExit storage e, uint256 exitId, uint256 bit) private {
        uint16 mask = _mask(bit);
        if (e.piggybacks & mask == 0) revert InFlightExitNotPiggybacked(exitId, bit);
        e.piggybacks &= ~mask;
        uint256 bond = e.piggybackBond;
        framework.creditBonds{value: bond}(msg.sender, bond, address(0), 0);
    }

    // ---------------------------------------------------------------- deletion and settlement

    /// @notice Deletes an in-flight exit that nobody piggybacked, once phase 1 is over, returning
    /// its bond to the initiator (spec: EXIT-11): it can never pay anything.
    /// @dev Emits `InFlightExitDeleted`.
    function deleteNonPiggybackedInFlightExit(uint256 exitId) external nonReentrant {
        InFlightExit storage e = _open(exitId);
        uint256 phaseEnd = uint256(e.startedAt) + minExitPeriod / 2;
        if (block.timestamp < phaseEnd) revert InFlightExitPhaseNotOver(exitId, phaseEnd);
        if (e.piggybacks != 0 || e.pendingTokens != 0) revert InFlightExitHasPiggybacks(exitId);
        e.verdict = DELETED;
        uint256 bond = e.bond;
        emit InFlightExitDeleted(exitId);
        framework.creditBonds{value: bond}(e.initiator, bond, address(0), 0);
    }

    /// @notice Settles the claims of `token` on an in-flight exit popped from that token's queue
    /// (framework only; spec: EXIT-11).
    /// @dev The first call fixes the verdict: canonical iff no canonicity challenge stands and no
    /// input is finalized; then all inputs are finalized. Canonical pays piggybacked outputs,
    /// otherwise piggybacked inputs, never a finalized output. Emits `InFlightExitSettled`.
    function processExit(uint256 exitId, address token, address processor) external onlyFramework {
        InFlightExit storage e = exits[exitId];
        if (e.verdict == OPEN) e.verdict = _decide(e);
        bool canonical = e.verdict == CANONICAL;

        // Pay the claims of this token that the verdict honours; return every standing bond.
        (uint256 first, uint256 count) = canonical ? (OUTPUT_BIT_OFFSET, uint256(e.nOutputs)) : (0, uint256(e.nInputs));
        bytes32 txHash = bytes32(exitId);
        for (uint256 k = 0; k < 10; ++k) {
            if (e.piggybacks & _mask(k) == 0) continue;
            bool isOutput = k >= OUTPUT_BIT_OFFSET;
            uint256 index = isOutput ? k - OUTPUT_BIT_OFFSET : k;
            (address owner, address itemToken, uint256 amount, bytes32 outputId) = isOutput
                ? (
                    e.outputs[index].owner,
                    e.outputs[index].token,
                    e.outputs[index].amount,
                    PlasmaTx.outputId(txHash, true, index, 0)
                )
                : (e.inputs[index].owner, e.inputs[index].token, e.inputs[index].amount, e.inputs[index].outputId);
            if (itemToken != token) continue;
            e.piggybacks &= ~_mask(k);
            if (k >= first && k < first + count) _pay(token, owner, amount, outputId);
            _returnBond(owner, e.piggybackBond, processor);
        }

        if (--e.pendingTokens == 0) {
            uint256 bond = e.bond;
            if (canonical || e.challenger == address(0)) _returnBond(e.initiator, bond, processor);
            else framework.creditBonds{value: bond}(e.challenger, bond, address(0), 0);
        }
        emit InFlightExitSettled(exitId, token, canonical);
    }

    /// @dev The verdict, fixed once; a canonical transaction's inputs are all finalized now.
    function _decide(InFlightExit storage e) private returns (uint8) {
        uint256 n = e.nInputs;
        bytes32[] memory ids = new bytes32[](n);
        bool anyFinalized;
        for (uint256 i = 0; i < n; ++i) {
            ids[i] = e.inputs[i].outputId;
            if (framework.isOutputFinalized(ids[i])) anyFinalized = true;
        }
        if (e.nonCanonical || anyFinalized) return NOT_CANONICAL;
        framework.finalizeOutputs(ids);
        return CANONICAL;
    }

    /// @dev Pays an output unless it is already finalized, and finalizes it.
    function _pay(address token, address owner, uint256 amount, bytes32 outputId) private {
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = outputId;
        if (framework.finalizeOutputs(ids) == 0) framework.credit(token, owner, amount);
    }

    // ---------------------------------------------------------------- checks

    /// @dev The piggyback bit for input `bit` (0-4) or output `bit - 5` (5-9).
    function _mask(uint256 bit) private pure returns (uint16) {
        // Bits are below 10 (checked against nInputs / nOutputs, at most 5 each), so this fits.
        // forge-lint: disable-next-line(incorrect-shift, unsafe-typecast)
        return uint16(1 << bit);
    }

    function _open(uint256 exitId) private view returns (InFlightExit storage e) {
        e = exits[exitId];
        if (e.startedAt == 0 || e.verdict != OPEN) revert InFlightExitNotActive(exitId);
    }

    function _openInPhaseOne(uint256 exitId) private view returns (InFlightExit storage e) {
        e = _open(exitId);
        uint256 phaseEnd = uint256(e.startedAt) + minExitPeriod / 2;
        if (block.timestamp >= phaseEnd) revert InFlightExitPhaseOver(exitId, phaseEnd);
    }

    function _checkInFlightTx(uint256 exitId, bytes calldata inFlightTx) private pure {
        bytes32 h = keccak256(inFlightTx);
        if (uint256(h) != exitId) revert InFlightExitWrongTransaction(exitId, h);
    }

    function _checkTxPos(uint256 txPos) private pure {
        UtxoPosLib.check(txPos);
        if (UtxoPosLib.outputIndex(txPos) != 0) revert InFlightExitBadTxPos(txPos);
    }

    /// @dev `spendingTx` spends `utxoPos` at `inputIndex`, signed by `owner` (spec: EXIT-4).
    function _checkSpend(
        bytes calldata spendingTx,
        uint256 inputIndex,
        bytes calldata signature,
        uint256 utxoPos,
        address owner
    ) private view {
        PlasmaTx.Transaction memory s = PlasmaTx.decodeValid(spendingTx);
        uint256 spent = inputIndex < s.inputs.length ? s.inputs[inputIndex] : 0;
        if (spent != utxoPos) revert InFlightExitNotASpend(utxoPos, spent);
        bytes32 digest = PlasmaEip712.digest(framework.domainSeparator(), PlasmaEip712.hashTx(s));
        address signer = PlasmaEip712.recover(digest, signature, inputIndex);
        if (signer != owner) revert InFlightExitBadSignature(inputIndex, signer, owner);
    }

    // ---------------------------------------------------------------- admin and views

    /// @notice Schedules a new in-flight exit bond (bond admin only; spec: BOND-1).
    /// @dev Emits `BondChangeProposed`.
    function proposeInFlightExitBond(uint256 newSize) external onlyBondAdmin {
        _proposeBond(_exitBond, "inFlightExit", newSize);
    }

    /// @notice Schedules a new piggyback bond (bond admin only; spec: BOND-1).
    /// @dev Emits `BondChangeProposed`.
    function proposePiggybackBond(uint256 newSize) external onlyBondAdmin {
        _proposeBond(_piggybackBond, "piggyback", newSize);
    }

    /// @notice The bond an in-flight exit needs now.
    function inFlightExitBond() external view returns (uint256) {
        return _exitBond.current();
    }

    /// @notice The bond a piggyback on an exit started now needs.
    function piggybackBond() external view returns (uint256) {
        return _piggybackBond.current();
    }

    /// @notice An exit's state: who started it and when, when it is exitable, its queue position,
    /// piggyback bits (inputs 0-4, outputs 5-9), whether a canonicity challenge stands, and its
    /// verdict (0 open, 1 canonical, 2 not canonical, 3 deleted).
    function inFlightExit(uint256 exitId)
        external
        view
        returns (
            address initiator,
            uint64 startedAt,
            uint64 exitableAt,
            uint256 position,
            uint16 piggybacks,
            bool nonCanonical,
            uint8 verdict,
            uint256 piggybackBondAmount
        )
    {
        InFlightExit storage e = exits[exitId];
        return
            (
                e.initiator,
                e.startedAt,
                e.exitableAt,
                e.position,
                e.piggybacks,
                e.nonCanonical,
                e.verdict,
                e.piggybackBond
            );
    }

    /// @notice Input `index` of an exit as stored at start.
    function inFlightExitInput(uint256 exitId, uint256 index) external view returns (Input memory) {
        return exits[exitId].inputs[index];
    }

    /// @notice Output `index` of an exit as stored at start.
    function inFlightExitOutput(uint256 exitId, uint256 index) external view returns (Output memory) {
        return exits[exitId].outputs[index];
    }
}
