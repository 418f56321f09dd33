// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {IPlasmaFramework} from "../interfaces/IPlasmaFramework.sol";
import {BondLib} from "../libraries/BondLib.sol";
import {PlasmaEip712} from "../libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../libraries/UtxoPosLib.sol";
import {ExitGameBase} from "./ExitGameBase.sol";
import {StandardExitGame} from "./StandardExitGame.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title InFlightExitGame
/// @notice MoreVP in-flight exits: exits through a payment that may never have been included,
/// with piggybacks, canonicity challenges and responses, and challenges of spent piggybacks
/// (spec: EXIT-6, EXIT-7, EXIT-8, EXIT-11, CHAL-1 … CHAL-5).
/// @dev An exit's id is its transaction's hash as an integer, so each transaction has one
/// in-flight exit at a time, and once settled, ever; only its parties start it, and a deletion
/// (nothing piggybacked, nothing paid) frees it for a new start. Nothing is queued at start: the first piggyback of a token puts the exit into
/// that token's queue, and `processExit` settles that token's piggybacks. The verdict (canonical or
/// not) is fixed the first time any of the exit's queue entries is processed, so every token is
/// settled under the same verdict (spec: EXIT-11, `settle_in_flight_exit`).
///
/// Storage is packed for gas: the header takes two slots at start (four once challenged), an input
/// three, an ETH output one and a token output two; amounts of 2^96 or more take one slot more.
contract InFlightExitGame is ExitGameBase {
    using BondLib for BondLib.Bond;

    /// @dev Verdicts. OPEN: not processed yet. DELETED: nobody piggybacked; bond returned.
    uint8 private constant OPEN = 0;
    uint8 private constant CANONICAL = 1;
    uint8 private constant NOT_CANONICAL = 2;
    uint8 private constant DELETED = 3;
    /// @dev Competitor position meaning "the competitor was not shown included".
    uint96 private constant NOT_INCLUDED = type(uint96).max;
    /// @dev Piggyback bits: input i is bit i (0-4), output j is bit 5 + j (5-9).
    uint256 private constant OUTPUT_BIT_OFFSET = 5;
    uint256 private constant ITEM_BITS = 10;

    /// @notice An input of an in-flight exit, as the views return it: the output it spends.
    struct Input {
        address owner;
        uint96 utxoPos;
        address token;
        uint256 amount;
        bytes32 outputId;
    }

    /// @notice An output of the in-flight transaction, as the views return it.
    struct Output {
        address owner;
        address token;
        uint256 amount;
    }

    /// @dev An input as stored. `amount` 0 (never a real amount, TX-4) means "in `bigAmount`".
    struct StoredInput {
        address owner;
        uint96 utxoPos;
        address token;
        uint96 amount;
        uint256 bigAmount;
        bytes32 outputId;
    }

    /// @dev An output as stored; `token` is left unwritten for ETH, `bigAmount` as for inputs.
    struct StoredOutput {
        address owner;
        uint96 amount;
        address token;
        uint256 bigAmount;
    }

    /// @dev An in-flight exit: two header slots written at start, two more by a canonicity challenge.
    struct InFlightExit {
        // slot 0
        address initiator;
        uint40 startedAt;
        uint8 nInputs;
        uint8 nOutputs;
        uint8 verdict;
        bool nonCanonical; // an unanswered canonicity challenge stands
        uint8 youngest; // index of the youngest input, whose position is the queue position (EXIT-7)
        uint16 delegated; // piggyback bits whose bond is an exitor's (EXIT-9), in `_piggybackBondOwner`
        // slot 1
        uint40 exitableAt;
        uint16 piggybacks; // bits as OUTPUT_BIT_OFFSET says
        uint8 queued; // bit i: queued for the token of input i (the first input holding that token)
        uint8 pendingTokens; // queue entries not yet processed
        uint88 bond;
        uint88 piggybackBond; // the piggyback bond in force when the exit started
        // slot 2
        address challenger; // the last canonicity challenger
        uint96 competitorTxPos; // its competitor's position, NOT_INCLUDED if not shown included
        // slot 3
        uint96 inFlightTxPos; // the in-flight transaction's inclusion, once shown in a response
        StoredInput[5] inputs;
        StoredOutput[5] outputs;
    }

    /// @notice What starting an in-flight exit needs (spec: EXIT-6). The per-input arrays follow the
    /// transaction's input order.
    struct StartArgs {
        /// The in-flight payment (`abi.encode`, ENC-1).
        bytes inFlightTx;
        /// Per input: the transaction that created the spent output.
        bytes[] inputTxs;
        /// Per input: the spent output's position (must equal the transaction's input).
        uint256[] inputUtxoPos;
        /// Per input: the inclusion proof of `inputTxs[i]` (MERKLE-5).
        bytes[] inputProofs;
        /// Per input: the L1 timestamp of its block (from `BlockSubmitted` / `DepositCreated`).
        uint64[] inputBlockTimestamps;
        /// Per input: the owner's EIP-712 signature of the in-flight transaction (SIG-1..4).
        bytes[] signatures;
    }

    /// @notice An owner's EIP-712 `ExitAuthorization(exitor, deadline, nonce)` (spec: EXIT-9), the
    /// same one the standard exit game takes: `nonce` must be the owner's current
    /// `StandardExitGame.authorizationNonce`, so one `revokeAuthorizations` revokes both games.
    struct Authorization {
        uint256 deadline;
        uint256 nonce;
        bytes signature;
    }

    /// @notice A canonicity challenge (spec: CHAL-1). `competitorTxPos` 0 = not shown included;
    /// otherwise `competitorProof` and `competitorBlockTimestamp` prove its inclusion there.
    struct CompetitorArgs {
        uint256 exitId;
        /// The in-flight transaction's input both spend.
        uint8 inputIndex;
        bytes competingTx;
        /// The competitor's input spending it.
        uint8 competitorInputIndex;
        /// The input owner's signature of the competitor.
        bytes competitorSignature;
        uint256 competitorTxPos;
        bytes competitorProof;
        uint64 competitorBlockTimestamp;
    }

    /// @notice A challenge of a piggybacked output (spec: CHAL-4): the in-flight transaction's
    /// inclusion fixes the output's position, and `spendingTx` spends that position.
    struct OutputSpentArgs {
        uint256 exitId;
        uint8 outputIndex;
        bytes inFlightTx;
        /// The in-flight transaction's position (`blknum·1e9 + txIndex·1e4`).
        uint256 inFlightTxPos;
        /// Its inclusion proof; not checked when `inFlightTxPos` is the one a response recorded.
        bytes inclusionProof;
        uint64 blockTimestamp;
        bytes spendingTx;
        uint8 spendingInputIndex;
        /// The output owner's signature of `spendingTx`.
        bytes signature;
    }

    /// @dev What one `processExit` call pays, finalizes and refunds.
    struct Settlement {
        bytes32[] ids; // inputs finalized by a canonical verdict, then the items paid
        uint256 count; // ids used
        uint256 firstPaid; // ids[firstPaid..count) are paid items
        address[] payees; // per paid item
        uint256[] amounts; // per paid item
        address[] bondOwners; // per settled piggyback
        uint256 bonds; // bondOwners used
    }

    mapping(uint256 exitId => InFlightExit) private exits;
    /// @dev Who owns the bond of a delegated piggyback (spec: EXIT-9), by piggyback bit; meaningful
    /// only while the bit is set in `InFlightExit.delegated`.
    mapping(uint256 exitId => address[ITEM_BITS]) private _piggybackBondOwner;

    BondLib.Bond private _exitBond;
    BondLib.Bond private _piggybackBond;

    /// @notice Only payments exit in flight (spec: EXIT-6).
    error InFlightExitNotAPayment(uint8 txType);
    /// @notice A per-input array of the start arguments has `given` entries for `inputs` inputs.
    error InFlightExitLengthMismatch(uint256 inputs, uint256 given);
    /// @notice The position given for input `inputIndex` is not the transaction's input.
    error InFlightExitInputMismatch(uint256 inputIndex, uint256 expected, uint256 given);
    /// @notice A signature does not come from the owner of the output its input spends (SIG-4).
    error InFlightExitBadSignature(uint256 inputIndex, address signer, address owner);
    /// @notice The outputs of `token` exceed its inputs: no valid transaction does that, and paying
    /// its outputs would create value (LEDGER-3).
    error InFlightExitValueCreated(address token, uint256 inputSum, uint256 outputSum);
    /// @notice This transaction's in-flight exit is open or was settled (spec: EXIT-6); only a
    /// deleted one frees it.
    error InFlightExitAlreadyStarted(uint256 exitId);
    /// @notice Only a party to the transaction starts its in-flight exit: the owner of an output it
    /// spends (who signed it) or of one of its outputs (spec: EXIT-6).
    error InFlightExitNotParty(uint256 exitId, address sender);
    /// @notice The authorization `owner` signed for `exitor` expired or was revoked (its nonce is
    /// not the owner's current one; spec: EXIT-9).
    error InFlightExitBadAuthorization(address owner, address exitor);
    /// @notice No open in-flight exit with this id (never started, deleted, or processed).
    error InFlightExitNotActive(uint256 exitId);
    /// @notice Piggybacks and canonicity challenges are over: phase 1 ended at `phaseEnd` (EXIT-7).
    error InFlightExitPhaseOver(uint256 exitId, uint256 phaseEnd);
    /// @notice Deletion waits for the end of phase 1, at `phaseEnd`.
    error InFlightExitPhaseNotOver(uint256 exitId, uint256 phaseEnd);
    /// @notice The index is beyond the transaction's inputs or outputs.
    error InFlightExitNoSuchIndex(uint256 index);
    /// @notice Only the owner of an input or output piggybacks it (spec: EXIT-8).
    error InFlightExitNotOwner(address owner, address sender);
    /// @notice Already piggybacked (`bit`: input i is i, output j is 5 + j).
    error InFlightExitAlreadyPiggybacked(uint256 exitId, uint256 bit);
    /// @notice Not piggybacked, so there is nothing to challenge (`bit` as above).
    error InFlightExitNotPiggybacked(uint256 exitId, uint256 bit);
    /// @notice The challenging transaction is the in-flight transaction itself.
    error InFlightExitSameTransaction(uint256 exitId);
    /// @notice The transaction given is not the exit's in-flight transaction.
    error InFlightExitWrongTransaction(uint256 exitId, bytes32 txHash);
    /// @notice The transaction's input given spends `spent`, not `expected`.
    error InFlightExitNotASpend(uint256 expected, uint256 spent);
    /// @notice A new competitor must be older than `standingTxPos`, what stands: the unanswered
    /// competitor, or the in-flight transaction's inclusion that answered the last one (spec: CHAL-1).
    error InFlightExitCompetitorNotOlder(uint256 competitorTxPos, uint256 standingTxPos);
    /// @notice Nothing to respond to: no canonicity challenge stands.
    error InFlightExitNotChallenged(uint256 exitId);
    /// @notice The inclusion shown is not older than the competitor (spec: CHAL-2).
    error InFlightExitResponseNotOlder(uint256 inFlightTxPos, uint256 competitorTxPos);
    /// @notice The position is not a transaction position (`blknum·1e9 + txIndex·1e4`).
    error InFlightExitBadTxPos(uint256 txPos);
    /// @notice The exit was piggybacked, so it has queue entries and is settled by processing.
    error InFlightExitHasPiggybacks(uint256 exitId);

    /// @notice An in-flight exit started. `inFlightTx` carries the inputs and outputs, so a watcher
    /// can check the exit (competitors, spent inputs) without further lookups; `position` is the
    /// youngest input, the exit's queue position.
    event InFlightExitStarted(
        uint256 indexed exitId, address indexed initiator, uint64 exitableAt, uint256 position, bytes inFlightTx
    );
    /// @notice Input (`isOutput` false) or output `index`, owned by `owner`, was piggybacked: by its
    /// owner, or for it by an exitor it authorized (spec: EXIT-9; the bond is the sender's).
    event InFlightExitPiggybacked(uint256 indexed exitId, address indexed owner, bool isOutput, uint8 index);
    /// @notice The exit was marked non-canonical by a competitor (`competitorTxPos` max uint96: not
    /// shown included). Whoever can show the in-flight transaction included earlier should respond.
    event InFlightExitChallenged(
        uint256 indexed exitId, address indexed challenger, bytes32 competitorHash, uint256 competitorTxPos
    );
    /// @notice The in-flight transaction was shown included at `inFlightTxPos`, before its
    /// competitor: canonical again.
    event InFlightExitChallengeResponded(uint256 indexed exitId, address indexed responder, uint256 inFlightTxPos);
    /// @notice A piggyback was challenged away (input spent elsewhere, or output spent); the
    /// challenger was credited half its bond, the rest is burned (spec: BOND-1).
    event InFlightExitPiggybackChallenged(
        uint256 indexed exitId, address indexed challenger, bool isOutput, uint8 index
    );
    /// @notice An exit nobody piggybacked was deleted; its bond went back to the initiator.
    event InFlightExitDeleted(uint256 indexed exitId);
    /// @notice `token`'s piggybacks of the exit were settled under the verdict `canonical`.
    event InFlightExitSettled(uint256 indexed exitId, address indexed token, bool canonical);

    /// @param framework_ The framework served.
    /// @param bondAdmin_ Who may propose bond changes.
    /// @param inFlightExitBond_ The in-flight exit bond (wei).
    /// @param piggybackBond_ The piggyback bond (wei).
    constructor(IPlasmaFramework framework_, address bondAdmin_, uint256 inFlightExitBond_, uint256 piggybackBond_)
        ExitGameBase(framework_, bondAdmin_)
    {
        // Exits store bonds in 88 bits (3e8 ETH): refuse anything larger up front.
        _exitBond.size = SafeCast.toUint88(inFlightExitBond_);
        _piggybackBond.size = SafeCast.toUint88(piggybackBond_);
    }

    // ---------------------------------------------------------------- start

    /// @notice Starts an in-flight exit of a payment (spec: EXIT-6, EXIT-7). Only a party to it may:
    /// the owner of an output it spends or of one of its outputs (`InFlightExitNotParty`).
    /// @dev Send `inFlightExitBond()`. Emits `InFlightExitStarted`. Nothing is queued until the first
    /// piggyback: only piggybacked inputs and outputs are ever paid (EXIT-8). A transaction whose
    /// exit was deleted unpiggybacked may be started again, as a fresh exit (new phase 1, no
    /// challenge standing); an open or settled one may not (`InFlightExitAlreadyStarted`).
    /// Safe because: every input is proven included and every signature recovers to the owner of
    /// the output its input spends, so only a transaction the owners really signed exits; outputs
    /// never exceed inputs per token, so settling it cannot create value; the exit waits two periods
    /// after its youngest input's block, deposits included, so it never jumps ahead of exits of older
    /// outputs. Only parties start, and a deleted exit (which paid and can pay nothing) frees the
    /// transaction, so nobody else can use up the parties' one in-flight exit (issue: an operator
    /// starting it, letting it lapse, then including the payment in a withheld block). Inputs already
    /// finalized are not refused here (EXIT-6 does not ask it): settlement treats them (CHAL-5,
    /// EXIT-11), and checking would cost every honest exit a call per input.
    /// @param args The transaction, its signatures, and each input's transaction, position, proof
    /// and block timestamp.
    function startInFlightExit(StartArgs calldata args) external payable nonReentrant {
        _start(args, msg.sender);
    }

    /// @notice Starts an in-flight exit of a payment for a party to it that authorized the sender
    /// (spec: EXIT-6, EXIT-9): the signer of `auth` must own an output the payment spends or one of
    /// its outputs (`InFlightExitNotParty`). The bond is the sender's (it is the initiator); what
    /// the exit pays goes, as always, to the owners of the items piggybacked.
    /// @dev Send `inFlightExitBond()`. Emits `InFlightExitStarted` with the sender as initiator.
    /// Reverts `InFlightExitBadAuthorization` if the authorization expired or was revoked. This is
    /// how a watchtower exits a guarded owner's payment caught in flight on a byzantine chain while
    /// the owner is offline. Safe because it reaches only payments the signer is party to (so the
    /// EXIT-6 rule holds: nobody else can use up the parties' exit), starting an exit pays nobody
    /// by itself, and the owner revokes by bumping its nonce.
    /// @param args As for `startInFlightExit`.
    /// @param auth The party's `ExitAuthorization` for `msg.sender`.
    function startInFlightExitFor(StartArgs calldata args, Authorization calldata auth) external payable nonReentrant {
        _start(args, _authorizer(auth));
    }

    /// @dev spec: EXIT-6 — `party` must be a party; the sender is the initiator and owns the bond.
    function _start(StartArgs calldata args, address party) private {
        _takeBond(_exitBond, 1); // msg.value is the bond
        PlasmaTx.Transaction memory t = PlasmaTx.decodeValid(args.inFlightTx);
        if (t.txType != PlasmaTx.TYPE_PAYMENT) revert InFlightExitNotAPayment(t.txType);
        _checkLengths(args, t.inputs.length);
        uint256 exitId = uint256(keccak256(args.inFlightTx));
        InFlightExit storage e = exits[exitId];
        if (e.startedAt != 0) _restart(e, exitId);

        (uint256 youngestTimestamp, uint256 youngest, PlasmaTx.Output[] memory spent) = _storeInputs(e, t, args);
        _checkValue(spent, t.outputs);
        _checkParty(exitId, spent, t.outputs, party);
        _storeOutputs(e.outputs, t.outputs);

        // spec: EXIT-7 — the child-block rule on the youngest input, deposits included.
        uint256 soonest = block.timestamp + minExitPeriod;
        uint256 aged = youngestTimestamp + 2 * minExitPeriod;
        uint40 exitableAt = SafeCast.toUint40(aged > soonest ? aged : soonest);
        e.initiator = msg.sender;
        e.startedAt = SafeCast.toUint40(block.timestamp);
        e.nInputs = SafeCast.toUint8(t.inputs.length);
        e.nOutputs = SafeCast.toUint8(t.outputs.length);
        e.youngest = SafeCast.toUint8(youngest);
        e.exitableAt = exitableAt;
        e.bond = SafeCast.toUint88(msg.value);
        e.piggybackBond = SafeCast.toUint88(_piggybackBond.current());
        emit InFlightExitStarted(exitId, msg.sender, exitableAt, t.inputs[youngest], args.inFlightTx);
    }

    /// @dev spec: EXIT-6 — a deleted exit frees its transaction. It was never queued and holds no
    /// piggyback (deletion requires it), and its inputs and outputs are rewritten identically, so
    /// clearing the verdict and the canonicity game makes it a fresh exit. Anything else: refused.
    function _restart(InFlightExit storage e, uint256 exitId) private {
        if (e.verdict != DELETED) revert InFlightExitAlreadyStarted(exitId);
        e.verdict = OPEN;
        e.nonCanonical = false;
        e.challenger = address(0);
        e.competitorTxPos = 0;
        e.inFlightTxPos = 0;
    }

    /// @dev spec: EXIT-6 — the sender owns an output the transaction spends (and so signed it) or
    /// one of its outputs.
    function _checkParty(uint256 exitId, PlasmaTx.Output[] memory spent, PlasmaTx.Output[] memory outs, address party)
        private
        pure
    {
        for (uint256 i = 0; i < spent.length; ++i) {
            if (spent[i].owner == party) return;
        }
        for (uint256 j = 0; j < outs.length; ++j) {
            if (outs[j].owner == party) return;
        }
        revert InFlightExitNotParty(exitId, party);
    }

    /// @dev spec: EXIT-9 — the owner who signed `auth` for the sender, if the authorization is
    /// still in force: before its deadline, with the owner's current nonce (kept by the standard
    /// exit game, so one revocation covers both games).
    function _authorizer(Authorization calldata auth) private view returns (address owner) {
        bytes32 digest =
            PlasmaEip712.digest(_domain(), PlasmaEip712.hashExitAuthorization(msg.sender, auth.deadline, auth.nonce));
        owner = PlasmaEip712.recover(digest, auth.signature, 0);
        if (
            block.timestamp > auth.deadline
                || auth.nonce != StandardExitGame(framework.standardExitGame()).authorizationNonce(owner)
        ) {
            revert InFlightExitBadAuthorization(owner, msg.sender);
        }
    }

    /// @dev Every per-input array must have one entry per input.
    function _checkLengths(StartArgs calldata args, uint256 n) private pure {
        uint256[5] memory lengths = [
            args.inputTxs.length,
            args.inputUtxoPos.length,
            args.inputProofs.length,
            args.inputBlockTimestamps.length,
            args.signatures.length
        ];
        for (uint256 k = 0; k < 5; ++k) {
            if (lengths[k] != n) revert InFlightExitLengthMismatch(n, lengths[k]);
        }
    }

    /// @dev Checks and stores every input; returns the youngest input block's timestamp, the index
    /// of the youngest (highest) input position, and the spent outputs.
    function _storeInputs(InFlightExit storage e, PlasmaTx.Transaction memory t, StartArgs calldata args)
        private
        returns (uint256 youngestTimestamp, uint256 youngest, PlasmaTx.Output[] memory spent)
    {
        bytes32 digest = PlasmaEip712.digest(_domain(), PlasmaEip712.hashTx(t));
        uint256 n = t.inputs.length;
        spent = new PlasmaTx.Output[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 pos = t.inputs[i];
            if (args.inputUtxoPos[i] != pos) revert InFlightExitInputMismatch(i, pos, args.inputUtxoPos[i]);
            uint64 ts;
            (spent[i], ts) = _storeInput(e.inputs[i], args, i, digest);
            if (ts > youngestTimestamp) youngestTimestamp = ts;
            if (pos > t.inputs[youngest]) youngest = i;
        }
    }

    /// @dev Checks input `i` (its transaction, inclusion and the in-flight signature) and stores it;
    /// returns the output it spends and its block's timestamp.
    function _storeInput(StoredInput storage s, StartArgs calldata args, uint256 i, bytes32 digest)
        private
        returns (PlasmaTx.Output memory out, uint64 ts)
    {
        uint256 pos = args.inputUtxoPos[i];
        bytes memory inTxBytes = args.inputTxs[i];
        PlasmaTx.Transaction memory inTx = PlasmaTx.decodeValid(inTxBytes);
        uint256 oindex = UtxoPosLib.outputIndex(pos);
        if (oindex >= inTx.outputs.length) revert ExitGameNoSuchOutput(pos);
        if (UtxoPosLib.isDepositBlock(UtxoPosLib.blknum(pos)) != (inTx.txType == PlasmaTx.TYPE_DEPOSIT)) {
            revert ExitGameWrongBlockKind(pos, inTx.txType);
        }
        ts = args.inputBlockTimestamps[i];
        _verifyInclusion(inTxBytes, pos, args.inputProofs[i], ts);
        out = inTx.outputs[oindex];
        address signer = PlasmaEip712.recover(digest, args.signatures[i], i);
        if (signer != out.owner) revert InFlightExitBadSignature(i, signer, out.owner);

        uint96 short = _short(out.amount);
        s.owner = out.owner;
        s.utxoPos = SafeCast.toUint96(pos); // valid positions are below 2^94 (POS-2)
        s.token = out.token;
        s.amount = short;
        if (short == 0) s.bigAmount = out.amount;
        s.outputId = PlasmaTx.outputId(keccak256(inTxBytes), inTx.inputs.length != 0, oindex, pos);
    }

    /// @dev Per token, the outputs must not exceed the inputs (LEDGER-3). Every output token is
    /// thereby an input token, which the queue bits rely on (`_tokenBit`).
    function _checkValue(PlasmaTx.Output[] memory ins, PlasmaTx.Output[] memory outs) private pure {
        for (uint256 j = 0; j < outs.length; ++j) {
            address token = outs[j].token;
            bool seen;
            for (uint256 k = 0; k < j; ++k) {
                if (outs[k].token == token) seen = true;
            }
            if (seen) continue;
            uint256 outSum; // cannot overflow: TX-5 was checked on decoding
            for (uint256 k = j; k < outs.length; ++k) {
                if (outs[k].token == token) outSum += outs[k].amount;
            }
            uint256 inSum;
            for (uint256 i = 0; i < ins.length; ++i) {
                if (ins[i].token == token) {
                    // Inputs come from different transactions, so their sum may overflow; an
                    // overflowing sum covers any output sum, so saturating is exact enough.
                    unchecked {
                        uint256 next = inSum + ins[i].amount;
                        inSum = next < inSum ? type(uint256).max : next;
                    }
                }
            }
            if (outSum > inSum) revert InFlightExitValueCreated(token, inSum, outSum);
        }
    }

    function _storeOutputs(StoredOutput[5] storage slots, PlasmaTx.Output[] memory outs) private {
        for (uint256 j = 0; j < outs.length; ++j) {
            PlasmaTx.Output memory o = outs[j];
            StoredOutput storage s = slots[j];
            uint96 short = _short(o.amount);
            s.owner = o.owner;
            s.amount = short;
            if (short == 0) s.bigAmount = o.amount;
            if (o.token != address(0)) s.token = o.token;
        }
    }

    /// @dev An amount's short form: itself below 2^96 (every realistic amount), else 0, which no
    /// output has (TX-4), meaning "stored in full in `bigAmount`".
    function _short(uint256 amount) private pure returns (uint96) {
        // Checked just before: the cast is exact.
        // forge-lint: disable-next-line(unsafe-typecast)
        return amount <= type(uint96).max ? uint96(amount) : 0;
    }

    // ---------------------------------------------------------------- piggybacks

    /// @notice Piggybacks input `inputIndex` of an in-flight exit (spec: EXIT-8): its owner claims
    /// it back should the transaction turn out non-canonical.
    /// @dev Phase 1 only; send the exit's piggyback bond (`inFlightExit(exitId)`). Emits
    /// `InFlightExitPiggybacked`, and the framework's `ExitQueued` for the exit's first piggyback
    /// of the input's token. Safe because only the input's owner can claim it, once, and a claim on
    /// an input the owner also spent elsewhere loses its bond (CHAL-3).
    /// @param exitId The exit.
    /// @param inputIndex The input.
    function piggybackInput(uint256 exitId, uint8 inputIndex) external payable nonReentrant {
        _piggybackItem(exitId, false, inputIndex, msg.sender);
    }

    /// @notice Piggybacks output `outputIndex` of an in-flight exit (spec: EXIT-8): its owner claims
    /// it should the transaction turn out canonical.
    /// @dev Phase 1 only; send the exit's piggyback bond. Emits `InFlightExitPiggybacked`, and the
    /// framework's `ExitQueued` for the exit's first piggyback of the output's token. Safe because
    /// only the output's owner can claim it, once, and a claim on an output its owner spent loses
    /// its bond (CHAL-4).
    /// @param exitId The exit.
    /// @param outputIndex The output.
    function piggybackOutput(uint256 exitId, uint8 outputIndex) external payable nonReentrant {
        _piggybackItem(exitId, true, outputIndex, msg.sender);
    }

    /// @notice Piggybacks an input (`isOutput` false) or output `index` for its owner, who authorized
    /// the sender (spec: EXIT-8, EXIT-9). The item, if paid, is paid to its owner; the piggyback bond
    /// is the sender's (returned to it minus the processing bounty, or half of it to a challenger).
    /// @dev As `piggybackInput` / `piggybackOutput`; reverts `InFlightExitBadAuthorization` if the
    /// authorization expired or was revoked, `InFlightExitNotOwner` if its signer does not own the
    /// item. Emits `InFlightExitPiggybacked` naming the owner. This is how a watchtower claims an
    /// offline owner's items of a guarded payment caught in flight. Safe because it only ever claims
    /// the owner's own item for the owner, at the sender's risk (a challenged piggyback costs the
    /// sender's bond, never the owner's money), and the owner revokes by bumping its nonce.
    /// @param exitId The exit.
    /// @param isOutput Whether `index` is an output (else an input).
    /// @param index The input or output.
    /// @param auth The item owner's `ExitAuthorization` for `msg.sender`.
    function piggybackFor(uint256 exitId, bool isOutput, uint8 index, Authorization calldata auth)
        external
        payable
        nonReentrant
    {
        _piggybackItem(exitId, isOutput, index, _authorizer(auth));
    }

    /// @dev Piggybacks input or output `index` for `claimant`, who must own it.
    function _piggybackItem(uint256 exitId, bool isOutput, uint8 index, address claimant) private {
        InFlightExit storage e = _openInPhaseOne(exitId);
        if (index >= (isOutput ? e.nOutputs : e.nInputs)) revert InFlightExitNoSuchIndex(index);
        if (isOutput) {
            StoredOutput storage output = e.outputs[index];
            _piggyback(e, exitId, OUTPUT_BIT_OFFSET + index, output.owner, output.token, claimant);
        } else {
            StoredInput storage input = e.inputs[index];
            _piggyback(e, exitId, index, input.owner, input.token, claimant);
        }
    }

    /// @dev `claimant` is who must own the item: the sender, or the signer of the sender's
    /// authorization; in the latter case the bond is recorded as the sender's (spec: EXIT-9).
    function _piggyback(
        InFlightExit storage e,
        uint256 exitId,
        uint256 bit,
        address owner,
        address token,
        address claimant
    ) private {
        if (owner != claimant) revert InFlightExitNotOwner(owner, claimant);
        _setPiggyback(e, exitId, bit, claimant != msg.sender);
        uint8 tokenBit = _tokenBit(e, token);
        bool first = e.queued & tokenBit == 0;
        if (first) {
            e.queued |= tokenBit;
            ++e.pendingTokens;
        }
        bool isOutput = bit >= OUTPUT_BIT_OFFSET;
        // Below 10, and below 5 after the offset: the cast is exact.
        // forge-lint: disable-next-line(unsafe-typecast)
        emit InFlightExitPiggybacked(exitId, owner, isOutput, uint8(isOutput ? bit - OUTPUT_BIT_OFFSET : bit));
        if (first) framework.enqueue(token, e.exitableAt, e.inputs[e.youngest].utxoPos, exitId, true);
    }

    /// @dev Takes the piggyback bond and sets piggyback `bit`; a delegated piggyback records the
    /// sender as the bond's owner (spec: EXIT-9).
    function _setPiggyback(InFlightExit storage e, uint256 exitId, uint256 bit, bool delegated) private {
        uint256 bond = e.piggybackBond;
        if (msg.value != bond) revert ExitGameWrongBond(bond, msg.value);
        uint16 mask = _mask(bit);
        uint16 piggybacks = e.piggybacks;
        if (piggybacks & mask != 0) revert InFlightExitAlreadyPiggybacked(exitId, bit);
        e.piggybacks = piggybacks | mask;
        if (delegated) {
            e.delegated |= mask;
            _piggybackBondOwner[exitId][bit] = msg.sender;
        } else {
            e.delegated &= ~mask; // its own (it may be piggybacked again after a challenge)
        }
    }

    /// @dev The queue bit of `token`: that of the first input holding it. Every token an exit can
    /// claim is held by an input (`_checkValue`), so the loop always returns.
    function _tokenBit(InFlightExit storage e, address token) private view returns (uint8 bit) {
        uint256 n = e.nInputs;
        for (uint256 i = 0; i < n; ++i) {
            // forge-lint: disable-next-line(incorrect-shift, unsafe-typecast)
            if (e.inputs[i].token == token) return uint8(1 << i); // i < 5
        }
    }

    // ---------------------------------------------------------------- canonicity

    /// @notice Marks an in-flight exit non-canonical with a competing spend of one of its inputs,
    /// signed by that input's owner, optionally shown included (spec: CHAL-1).
    /// @dev Phase 1 only. A later challenge needs a competitor older than what stands
    /// (`CanonicityGame::challenge`, `replaces_competitor`): the unanswered competitor, or, once a
    /// response answered it, the in-flight transaction's inclusion shown (a younger competitor would
    /// be answered by that inclusion already, as in OMG). "Not shown included" counts as youngest.
    /// Emits `InFlightExitChallenged`. Safe because the owner's signature on two spends proves at
    /// most one happened; the honest side answers with an older inclusion (CHAL-2); and positions
    /// only ever go down, so a challenger can neither bury an old competitor under a young one nor
    /// take the challenger's place (and the exit bond) by sending the standing challenge again.
    /// @param args The exit, the shared input, the competitor and its signature, and optionally its
    /// inclusion.
    function challengeInFlightExitNotCanonical(CompetitorArgs calldata args) external {
        InFlightExit storage e = _openInPhaseOne(args.exitId);
        if (args.inputIndex >= e.nInputs) revert InFlightExitNoSuchIndex(args.inputIndex);
        bytes32 competitorHash = keccak256(args.competingTx);
        if (uint256(competitorHash) == args.exitId) revert InFlightExitSameTransaction(args.exitId);
        StoredInput storage input = e.inputs[args.inputIndex];
        _checkSpend(args.competingTx, args.competitorInputIndex, args.competitorSignature, input.utxoPos, input.owner);

        uint96 competitorPos = NOT_INCLUDED;
        if (args.competitorTxPos != 0) {
            _checkTxPos(args.competitorTxPos);
            _verifyInclusion(
                args.competingTx, args.competitorTxPos, args.competitorProof, args.competitorBlockTimestamp
            );
            competitorPos = SafeCast.toUint96(args.competitorTxPos);
        }
        // spec: CHAL-1 — what stands is the last word: an unanswered competitor, else the inclusion
        // that answered the last one (0: never challenged). Never the older of the two.
        uint96 standing = e.nonCanonical ? e.competitorTxPos : e.inFlightTxPos;
        if (standing != 0 && competitorPos >= standing) {
            revert InFlightExitCompetitorNotOlder(competitorPos, standing);
        }

        e.nonCanonical = true;
        e.challenger = msg.sender;
        e.competitorTxPos = competitorPos;
        emit InFlightExitChallenged(args.exitId, msg.sender, competitorHash, competitorPos);
    }

    /// @notice Answers a canonicity challenge by proving the in-flight transaction was included
    /// before its competitor, or at all if the competitor was not shown included (spec: CHAL-2).
    /// @dev Anyone may respond, until the exit is processed. Records the inclusion, which later
    /// challenges must beat and output challenges may reuse. Emits `InFlightExitChallengeResponded`.
    /// Safe because an included transaction older than every competitor is the one that happened.
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
    ) external {
        InFlightExit storage e = _open(exitId);
        if (!e.nonCanonical) revert InFlightExitNotChallenged(exitId);
        _checkInFlightTx(exitId, inFlightTx);
        _checkTxPos(inFlightTxPos);
        _verifyInclusion(inFlightTx, inFlightTxPos, inclusionProof, blockTimestamp);
        uint256 competitorPos = e.competitorTxPos;
        if (inFlightTxPos >= competitorPos) revert InFlightExitResponseNotOlder(inFlightTxPos, competitorPos);
        e.nonCanonical = false;
        e.inFlightTxPos = SafeCast.toUint96(inFlightTxPos);
        emit InFlightExitChallengeResponded(exitId, msg.sender, inFlightTxPos);
    }

    // ---------------------------------------------------------------- piggyback challenges

    /// @notice Removes a piggybacked input that its owner also spent in another transaction
    /// (spec: CHAL-3); the challenger is credited half the piggyback bond, the rest is burned (BOND-1).
    /// @dev Allowed until processing. Emits `InFlightExitPiggybackChallenged`. Safe because the
    /// other spend may be included and exited, so the input cannot also go back to its owner; the
    /// owner's own signature is the evidence, so an honest piggyback cannot be challenged.
    /// @param exitId The exit.
    /// @param inputIndex The piggybacked input.
    /// @param spendingTx A transaction other than the in-flight one spending that input.
    /// @param spendingInputIndex Its input that spends it.
    /// @param signature The input owner's signature of `spendingTx`.
    function challengeInFlightExitInputSpent(
        uint256 exitId,
        uint8 inputIndex,
        bytes calldata spendingTx,
        uint8 spendingInputIndex,
        bytes calldata signature
    ) external nonReentrant {
        InFlightExit storage e = _open(exitId);
        if (inputIndex >= e.nInputs) revert InFlightExitNoSuchIndex(inputIndex);
        uint16 mask = _piggybacked(e, exitId, inputIndex);
        if (uint256(keccak256(spendingTx)) == exitId) revert InFlightExitSameTransaction(exitId);
        StoredInput storage input = e.inputs[inputIndex];
        _checkSpend(spendingTx, spendingInputIndex, signature, input.utxoPos, input.owner);
        _removePiggyback(e, exitId, mask, false, inputIndex);
    }

    /// @notice Removes a piggybacked output that was spent: the in-flight transaction is shown
    /// included (fixing the output's position) and a spend of that position signed by the output's
    /// owner (spec: CHAL-4); the challenger is credited half the piggyback bond, the rest is burned
    /// (BOND-1).
    /// @dev Allowed until processing. The inclusion proof is skipped when the position is the one a
    /// response already proved. Emits `InFlightExitPiggybackChallenged`. Safe because a spent output
    /// lives on in the spending transaction, which its new owner can exit.
    /// @param args The exit, the output, the in-flight transaction's inclusion and the spend.
    function challengeInFlightExitOutputSpent(OutputSpentArgs calldata args) external nonReentrant {
        InFlightExit storage e = _open(args.exitId);
        if (args.outputIndex >= e.nOutputs) revert InFlightExitNoSuchIndex(args.outputIndex);
        uint16 mask = _piggybacked(e, args.exitId, OUTPUT_BIT_OFFSET + args.outputIndex);
        _checkInFlightTx(args.exitId, args.inFlightTx);
        _checkTxPos(args.inFlightTxPos);
        if (args.inFlightTxPos != e.inFlightTxPos) {
            _verifyInclusion(args.inFlightTx, args.inFlightTxPos, args.inclusionProof, args.blockTimestamp);
        }
        _checkSpend(
            args.spendingTx,
            args.spendingInputIndex,
            args.signature,
            args.inFlightTxPos + args.outputIndex,
            e.outputs[args.outputIndex].owner
        );
        _removePiggyback(e, args.exitId, mask, true, args.outputIndex);
    }

    /// @dev The mask of piggyback `bit`, which must be set.
    function _piggybacked(InFlightExit storage e, uint256 exitId, uint256 bit) private view returns (uint16 mask) {
        mask = _mask(bit);
        if (e.piggybacks & mask == 0) revert InFlightExitNotPiggybacked(exitId, bit);
    }

    /// @dev Removes a challenged piggyback. spec: BOND-1 — its challenger is credited half its
    /// bond; the rest stays in the game, burned, so challenging one's own piggyback still costs
    /// half a bond.
    function _removePiggyback(InFlightExit storage e, uint256 exitId, uint16 mask, bool isOutput, uint8 index) private {
        e.piggybacks &= ~mask;
        emit InFlightExitPiggybackChallenged(exitId, msg.sender, isOutput, index);
        uint256 reward = _challengeReward(e.piggybackBond);
        _payBonds(msg.sender, reward, address(0), 0);
    }

    // ---------------------------------------------------------------- deletion and settlement

    /// @notice Deletes an in-flight exit that nobody piggybacked, once phase 1 is over, crediting
    /// its bond back to the initiator (spec: EXIT-11, `can_delete_unpiggybacked`).
    /// @dev Emits `InFlightExitDeleted`. Frees the transaction: a party may start its in-flight exit
    /// again (EXIT-6). Safe because piggybacks close with phase 1, so such an exit can never pay
    /// anything, and its bond should not stay locked; and since it paid nothing, a new exit of the
    /// same transaction pays nothing twice. An exit whose piggybacks were all challenged away still
    /// has queue entries, and processing settles it (returning the bond then).
    /// @param exitId The exit.
    function deleteNonPiggybackedInFlightExit(uint256 exitId) external nonReentrant {
        InFlightExit storage e = _open(exitId);
        uint256 phaseEnd = uint256(e.startedAt) + minExitPeriod / 2;
        if (block.timestamp < phaseEnd) revert InFlightExitPhaseNotOver(exitId, phaseEnd);
        if (e.queued != 0) revert InFlightExitHasPiggybacks(exitId);
        e.verdict = DELETED;
        uint256 bond = e.bond;
        emit InFlightExitDeleted(exitId);
        _payBonds(e.initiator, bond, address(0), 0);
    }

    /// @notice Settles `token`'s piggybacks of an in-flight exit popped from that token's queue
    /// (framework only; spec: EXIT-11, `settle_in_flight_exit`).
    /// @dev The first call fixes the verdict: canonical iff no canonicity challenge stands and no
    /// input is finalized; a canonical verdict finalizes every input. Canonical pays the piggybacked
    /// outputs of `token`, otherwise the piggybacked inputs of `token`, never an output already
    /// finalized, and finalizes what it pays. Piggyback bonds of settled items go back to their
    /// piggybackers (the exitor when delegated, EXIT-9) minus the processing bounty, half the bond
    /// (BOND-1). With the last token, the exit bond goes back to the initiator minus the bounty,
    /// unless a canonicity challenge stands: then half of it is the challenger's, the rest burned. Emits
    /// `InFlightExitSettled`; the framework emits `OutputFinalized` and `Credited`.
    /// @param exitId The exit.
    /// @param token The queue it was popped from.
    /// @param processor Who called `processExits`; earns the bounties.
    function processExit(uint256 exitId, address token, address processor) external onlyFramework {
        InFlightExit storage e = exits[exitId];
        Settlement memory s;
        s.ids = new bytes32[](uint256(e.nInputs) + ITEM_BITS);
        s.payees = new address[](ITEM_BITS);
        s.amounts = new uint256[](ITEM_BITS);
        s.bondOwners = new address[](ITEM_BITS + 2); // + the exit bond's owner and the processor
        uint8 verdict = e.verdict;
        if (verdict == OPEN) {
            verdict = _decide(e, s);
            e.verdict = verdict;
        }
        bool canonical = verdict == CANONICAL;
        _collect(e, exitId, token, canonical, s);
        bool last = --e.pendingTokens == 0;
        emit InFlightExitSettled(exitId, token, canonical);
        _pay(token, s);
        _creditBonds(e, s, last, processor);
    }

    /// @dev Finalizes `s.ids` in one call, then credits each paid item unless it was finalized
    /// before (OUT-2: an output is paid at most once).
    function _pay(address token, Settlement memory s) private {
        uint256 count = s.count;
        if (count == 0) return;
        bytes32[] memory ids = s.ids;
        assembly ("memory-safe") {
            mstore(ids, count) // shrink to the entries used
        }
        uint256 alreadyFinalized = framework.finalizeOutputs(ids);
        for (uint256 j = s.firstPaid; j < count; ++j) {
            // forge-lint: disable-next-line(incorrect-shift)
            if (alreadyFinalized & (1 << j) == 0) {
                framework.credit(token, s.payees[j - s.firstPaid], s.amounts[j - s.firstPaid]);
            }
        }
    }

    /// @dev Credits the bonds settled now: each settled piggyback's bond minus the processing
    /// bounty (half, BOND-1); with the last token the exit bond: half to a standing canonicity
    /// challenger (the rest burned), else to the initiator minus the bounty; and the processor's
    /// bounties as one sum. Two accounts per framework call.
    function _creditBonds(InFlightExit storage e, Settlement memory s, bool last, address processor) private {
        uint256 piggyback = e.piggybackBond;
        uint256 bounty = _processingBounty(piggyback);
        address[] memory to = s.bondOwners;
        uint256 n = s.bonds;
        uint256[] memory amounts = new uint256[](n + 2);
        for (uint256 i = 0; i < n; ++i) {
            amounts[i] = piggyback - bounty;
        }
        uint256 bounties = bounty * n;
        if (last) {
            uint256 bond = e.bond;
            if (e.nonCanonical) {
                // spec: BOND-1 — half to the standing challenger, the rest stays here, burned.
                (to[n], amounts[n]) = (e.challenger, _challengeReward(bond));
            } else {
                uint256 exitBounty = _processingBounty(bond);
                (to[n], amounts[n]) = (e.initiator, bond - exitBounty);
                bounties += exitBounty;
            }
            ++n;
        }
        if (bounties != 0) (to[n], amounts[n++]) = (processor, bounties);
        for (uint256 i = 0; i < n; i += 2) {
            (address b, uint256 amountB) = i + 1 < n ? (to[i + 1], amounts[i + 1]) : (address(0), 0);
            _payBonds(to[i], amounts[i], b, amountB);
        }
    }

    /// @dev The verdict (spec: EXIT-11). Canonical iff no challenge stands and no input is
    /// finalized; then every input's id is put first in `s.ids`, to be finalized.
    function _decide(InFlightExit storage e, Settlement memory s) private view returns (uint8) {
        if (e.nonCanonical) return NOT_CANONICAL;
        uint256 n = e.nInputs;
        for (uint256 i = 0; i < n; ++i) {
            bytes32 id = e.inputs[i].outputId;
            if (framework.isOutputFinalized(id)) return NOT_CANONICAL;
            s.ids[i] = id;
        }
        s.count = n;
        s.firstPaid = n;
        return CANONICAL;
    }

    /// @dev Clears `token`'s piggybacks and records what the verdict pays (outputs if canonical,
    /// inputs if not) and whose bonds go back.
    function _collect(InFlightExit storage e, uint256 exitId, address token, bool canonical, Settlement memory s)
        private
    {
        uint16 piggybacks = e.piggybacks;
        for (uint256 k = 0; k < ITEM_BITS; ++k) {
            uint16 mask = _mask(k);
            if (piggybacks & mask == 0) continue;
            bool isOutput = k >= OUTPUT_BIT_OFFSET;
            (address owner, address itemToken, uint256 amount, bytes32 outputId) =
                isOutput ? _output(e, exitId, k - OUTPUT_BIT_OFFSET) : _input(e, k);
            if (itemToken != token) continue;
            piggybacks &= ~mask;
            s.bondOwners[s.bonds++] = e.delegated & mask == 0 ? owner : _piggybackBondOwner[exitId][k];
            if (isOutput == canonical) {
                s.ids[s.count] = outputId;
                s.payees[s.count - s.firstPaid] = owner;
                s.amounts[s.count - s.firstPaid] = amount;
                ++s.count;
            }
        }
        e.piggybacks = piggybacks;
    }

    function _input(InFlightExit storage e, uint256 i)
        private
        view
        returns (address owner, address token, uint256 amount, bytes32 outputId)
    {
        StoredInput storage s = e.inputs[i];
        (owner, token, amount, outputId) = (s.owner, s.token, s.amount, s.outputId);
        if (amount == 0) amount = s.bigAmount;
    }

    /// @dev An in-flight output's id: OUT-1 with the transaction hash (the exit id) and its index.
    function _output(InFlightExit storage e, uint256 exitId, uint256 j)
        private
        view
        returns (address owner, address token, uint256 amount, bytes32 outputId)
    {
        StoredOutput storage s = e.outputs[j];
        (owner, token, amount) = (s.owner, s.token, s.amount);
        if (amount == 0) amount = s.bigAmount;
        outputId = PlasmaTx.outputId(bytes32(exitId), true, j, 0);
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

    /// @dev An open exit in phase 1, `[startedAt, startedAt + p/2)` (spec: EXIT-7, `in_flight_phase`).
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

    /// @dev `spendingTx` spends `utxoPos` at `inputIndex`, signed by `owner` (spec: `spends`).
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
        bytes32 digest = PlasmaEip712.digest(_domain(), PlasmaEip712.hashTx(s));
        address signer = PlasmaEip712.recover(digest, signature, inputIndex);
        if (signer != owner) revert InFlightExitBadSignature(inputIndex, signer, owner);
    }

    /// @dev The framework's EIP-712 domain separator. Framework calls go through one call site each
    /// (here and `_payBonds`): the contract is within ~50 bytes of EIP-170's 24,576-byte limit, which
    /// `test_DeployedCodeFitsEip170` guards.
    function _domain() private view returns (bytes32) {
        return framework.domainSeparator();
    }

    /// @dev Credits bonds through the framework, forwarding their sum.
    function _payBonds(address a, uint256 amountA, address b, uint256 amountB) private {
        framework.creditBonds{value: amountA + amountB}(a, amountA, b, amountB);
    }

    // ---------------------------------------------------------------- admin and views

    /// @notice Schedules a new in-flight exit bond (bond admin only; spec: BOND-1).
    /// @dev Emits `BondChangeProposed`. Takes effect two periods later, within [current/2, 2·current]
    /// (`BondChangeOutOfBounds`); exits started before keep the bond they paid.
    /// @param newSize The new bond in wei.
    function proposeInFlightExitBond(uint256 newSize) external onlyBondAdmin {
        _proposeBond(_exitBond, "inFlightExit", newSize);
    }

    /// @notice Schedules a new piggyback bond (bond admin only; spec: BOND-1).
    /// @dev Emits `BondChangeProposed`. Exits started before keep the piggyback bond of their start.
    /// @param newSize The new bond in wei.
    function proposePiggybackBond(uint256 newSize) external onlyBondAdmin {
        _proposeBond(_piggybackBond, "piggyback", newSize);
    }

    /// @notice The bond an in-flight exit started now needs.
    function inFlightExitBond() external view returns (uint256) {
        return _exitBond.current();
    }

    /// @notice The piggyback bond of exits started now (each exit keeps the one of its start).
    function piggybackBond() external view returns (uint256) {
        return _piggybackBond.current();
    }

    /// @notice An exit's state: who started it and when, when it is exitable, its queue position
    /// (youngest input), piggyback bits (input i: bit i, output j: bit 5 + j; cleared when
    /// challenged or settled), whether a canonicity challenge stands, its verdict (0 open,
    /// 1 canonical, 2 not canonical, 3 deleted) and the piggyback bond it takes.
    /// @param exitId The exit (its transaction's hash as an integer).
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
        position = e.nInputs == 0 ? 0 : e.inputs[e.youngest].utxoPos;
        return
            (e.initiator, e.startedAt, e.exitableAt, position, e.piggybacks, e.nonCanonical, e.verdict, e.piggybackBond);
    }

    /// @notice An exit's canonicity game and bookkeeping: input and output counts, the exit bond,
    /// queue entries not yet processed, the last canonicity challenger, its competitor's position
    /// (0: none; max uint96: not shown included) and the in-flight transaction's inclusion shown
    /// in a response (0: none).
    /// @param exitId The exit.
    function inFlightExitDetails(uint256 exitId)
        external
        view
        returns (
            uint8 nInputs,
            uint8 nOutputs,
            uint256 bond,
            uint8 pendingTokens,
            address challenger,
            uint256 competitorTxPos,
            uint256 inFlightTxPos
        )
    {
        InFlightExit storage e = exits[exitId];
        return (e.nInputs, e.nOutputs, e.bond, e.pendingTokens, e.challenger, e.competitorTxPos, e.inFlightTxPos);
    }

    /// @notice Whether the exit has a queue entry for `token` (made by its first piggyback of it).
    /// @param exitId The exit.
    /// @param token The token (address(0) for ETH).
    function isQueued(uint256 exitId, address token) external view returns (bool) {
        InFlightExit storage e = exits[exitId];
        return e.queued & _tokenBit(e, token) != 0;
    }

    /// @notice Input `index` of an exit as stored at start (zero beyond its inputs).
    /// @param exitId The exit.
    /// @param index The input, below 5.
    function inFlightExitInput(uint256 exitId, uint256 index) external view returns (Input memory input) {
        InFlightExit storage e = exits[exitId];
        (input.owner, input.token, input.amount, input.outputId) = _input(e, index);
        input.utxoPos = e.inputs[index].utxoPos;
    }

    /// @notice Output `index` of an exit as stored at start (zero beyond its outputs).
    /// @param exitId The exit.
    /// @param index The output, below 5.
    function inFlightExitOutput(uint256 exitId, uint256 index) external view returns (Output memory output) {
        StoredOutput storage s = exits[exitId].outputs[index];
        uint256 amount = s.amount;
        return Output(s.owner, s.token, amount == 0 ? s.bigAmount : amount);
    }
}
