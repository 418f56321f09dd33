// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {IBatchExitGame} from "../interfaces/IBatchExitGame.sol";
import {IPlasmaFramework} from "../interfaces/IPlasmaFramework.sol";
import {IStandardExitGame} from "../interfaces/IStandardExitGame.sol";
import {BatchClaims} from "../libraries/BatchClaims.sol";
import {BlockCommitment} from "../libraries/BlockCommitment.sol";
import {BondLib} from "../libraries/BondLib.sol";
import {Merkle} from "../libraries/Merkle.sol";
import {PlasmaEip712} from "../libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../libraries/UtxoPosLib.sol";
import {ExitGameBase} from "./ExitGameBase.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title BatchExitGame
/// @notice Batch exits: many outputs of one token claimed in one call without proofs, 20 bytes each,
/// grouped by owner, recorded as one claim-tree root and one queue entry at the batch's youngest
/// claim; proven only when doubted (strikes and demands) and when paid (spec: EXIT-12 … EXIT-15,
/// CHAL-6 … CHAL-9, BOND-3).
/// @dev Claim states are packed two bits per claim (0 live, 1 demanded, 2 struck, 3 paid). Every path
/// pays an output only by finalizing its OUT-1 id in the framework's one book, so no output is paid
/// twice across standard, in-flight and batch exits; processing reserves the batch's total from the
/// vault at the batch's priority, and payouts credit from that reserve later.
contract BatchExitGame is ExitGameBase, IBatchExitGame {
    using BondLib for BondLib.Bond;

    /// @notice A batch's life: started (challengeable, demandable), then processed (payable).
    enum Status {
        None,
        Active,
        Processed
    }

    /// @notice Why a group of a start was skipped (spec: EXIT-12): the owner's authorization is
    /// expired, revoked or for another exitor; or its first claim is not above the owner's watermark.
    enum GroupSkip {
        BadAuthorization,
        BelowWatermark
    }

    /// @notice Why a claim was struck (spec: CHAL-6 … CHAL-9, EXIT-15).
    enum StrikeReason {
        NoSuchOutput,
        Spent,
        Exited,
        DemandUnanswered,
        Void
    }

    /// @notice One owner's claims. `signature` empty and `owner == msg.sender`: no authorization is
    /// needed (`deadline` and `nonce` ignored); otherwise the owner's EIP-712
    /// `ExitAuthorization(msg.sender, deadline, nonce)` (spec: EXIT-9). `claims` are packed 20-byte
    /// records `uint64 utxoPos ‖ uint96 amount`, positions strictly ascending.
    struct Group {
        address owner;
        uint256 deadline;
        uint256 nonce;
        bytes signature;
        bytes claims;
    }

    /// @notice A claim to pay: the claim, its transaction, the transaction's inclusion proof and the
    /// block's timestamp (spec: EXIT-15).
    struct Payout {
        ClaimRef claim;
        bytes txBytes;
        bytes inclusionProof;
        uint64 blockTimestamp;
    }

    /// @notice One batch, six slots.
    struct Batch {
        address exitor; // owns the bonds
        uint64 startedAt;
        Status status;
        address token;
        uint64 exitableAt;
        uint32 count; // claims in the tree
        bytes32 root;
        uint128 total; // amounts still owed: claims neither struck, void nor paid
        uint128 demanded; // amounts under unanswered demand
        uint128 reserved; // what the framework set aside at processing and is not yet paid or released
        uint96 claimBond; // per claim, as paid at start
        uint32 struck;
        uint96 batchBond;
        uint32 demandedCount; // claims under demand (before processing), or demanded at processing
    }

    /// @dev What checking a start's groups found: the tree builder, the youngest position of all groups,
    /// the live total and the number of skipped claims.
    struct Start {
        BatchClaims.Builder b;
        uint256 youngest;
        uint256 total;
        uint256 skipped;
        bytes32 domain; // read once, at the first group that needs an authorization
        address seGame;
    }

    /// @notice An open demand (spec: CHAL-9).
    struct Demand {
        address demander;
        uint96 bond;
    }

    uint256 private constant LIVE = 0;
    uint256 private constant DEMANDED = 1;
    uint256 private constant STRUCK = 2;
    uint256 private constant PAID = 3;
    /// @dev `StandardExitGame.Status.Active` and `.Settled`.
    uint8 private constant SE_ACTIVE = 1;
    uint8 private constant SE_SETTLED = 3;
    /// @notice Most payouts one `payoutBatchClaims` call takes (the framework's finalize bitmap).
    uint256 public constant MAX_PAYOUTS = 256;

    mapping(uint256 batchId => Batch) private _batches;
    /// @notice The last batch id handed out.
    uint256 public batchCount;
    /// @notice The owner's watermark per token: the last position any batch claimed for it (spec: EXIT-12).
    mapping(address owner => mapping(address token => uint256)) public claimedUpTo;
    /// @notice Open demands by batch and claim index.
    mapping(uint256 batchId => mapping(uint256 index => Demand)) public demands;
    mapping(uint256 batchId => mapping(uint256 word => uint256)) private _states;

    BondLib.Bond private _batchBond;
    BondLib.Bond private _claimBond;
    BondLib.Bond private _demandBond;

    /// @notice `startBatchExit` got no group.
    error BatchExitNoGroups();
    /// @notice Group `group`'s claims are empty or not a whole number of 20-byte records.
    error BatchExitMalformedClaims(uint256 group);
    /// @notice More claims than a batch holds (65,536).
    error BatchExitTooManyClaims(uint256 count);
    /// @notice The youngest claim's block was committed with another root or timestamp.
    error BatchExitBadYoungestBlock(uint256 blknum);
    /// @notice The batch is not active (not started, or processed already).
    error BatchExitNotActive(uint256 batchId);
    /// @notice The batch is not processed yet (or does not exist).
    error BatchExitNotProcessed(uint256 batchId);
    /// @notice The claim is not in the batch's tree (wrong owner, record, index or proof).
    error BatchClaimBadProof(uint256 batchId, uint256 index);
    /// @notice The claim is struck, paid, or (after processing) demanded.
    error BatchClaimNotLive(uint256 batchId, uint256 index);
    /// @notice The claim is not under demand.
    error BatchClaimNotDemanded(uint256 batchId, uint256 index);
    /// @notice The transaction shown is not the claim's output exactly (spec: EXIT-15, CHAL-9).
    error BatchClaimMismatch(uint256 batchId, uint256 index);
    /// @notice CHAL-6 refused: the output exists exactly as claimed.
    error BatchClaimNotInvalid(uint256 batchId, uint256 index);
    /// @notice CHAL-8 refused: no active or settled standard exit, and the output id is not finalized.
    error BatchClaimNotExited(uint256 batchId, uint256 index);
    /// @notice CHAL-7 refused: the input shown does not spend the claim's position.
    error BatchClaimNotASpend(uint256 batchId, uint256 index, uint256 spentPos);
    /// @notice CHAL-7 refused: the spend is not signed by the claim's owner.
    error BatchClaimBadSpendSignature(address signer, address owner);
    /// @notice Demands are accepted only in the batch's first half period (spec: CHAL-9).
    error BatchDemandClosed(uint256 batchId, uint256 closedAt);
    /// @notice More than `MAX_PAYOUTS` payouts in one call.
    error BatchPayoutTooMany(uint256 count);
    /// @notice The transaction decoder ran out of gas: the verdict "invalid" cannot be trusted.
    error BatchDecodeOutOfGas();

    /// @notice A batch started (spec: EXIT-12, EXIT-13): its tree's root, claim count and total, the
    /// youngest claimed position (its queue position) and when it can be processed.
    event BatchExitStarted(
        uint256 indexed batchId,
        address indexed token,
        address indexed exitor,
        bytes32 root,
        uint256 count,
        uint256 total,
        uint256 youngestPos,
        uint64 exitableAt
    );
    /// @notice One live group of a batch: its claims are leaves `firstIndex ..` of the tree. Watchers
    /// rebuild the tree from these events alone.
    event BatchExitGroup(uint256 indexed batchId, address indexed owner, uint256 firstIndex, bytes claims);
    /// @notice A group of the start of batch `batchId` was skipped and its claim bonds credited back
    /// (if every group was skipped, no batch `batchId` exists).
    event BatchGroupSkipped(uint256 indexed batchId, address indexed owner, GroupSkip reason);
    /// @notice A claim was struck: never paid.
    event BatchClaimStruck(
        uint256 indexed batchId, uint256 indexed index, address indexed challenger, StrikeReason reason
    );
    /// @notice A claim's proof was demanded (spec: CHAL-9).
    event BatchClaimDemanded(uint256 indexed batchId, uint256 indexed index, address indexed demander);
    /// @notice A demand was answered with the claim's output (spec: CHAL-9).
    event BatchClaimAnswered(uint256 indexed batchId, uint256 indexed index, address indexed answerer);
    /// @notice A batch was processed: `reserved` of its `total` set aside (spec: EXIT-14).
    event BatchExitProcessed(uint256 indexed batchId, uint256 reserved, uint256 total);
    /// @notice A claim was paid `amount` (0 when void: its output was paid by another path).
    event BatchClaimPaid(uint256 indexed batchId, uint256 indexed index, address indexed owner, uint256 amount);
    /// @notice A payout skipped a claim: its batch's reserve (`reserved`) is below its amount. The claim
    /// stays live and is paid once the batch's debt is repaid (spec: EXIT-15, EXIT-16).
    event BatchClaimDeferred(uint256 indexed batchId, uint256 indexed index, uint256 reserved);
    /// @notice The framework repaid `amount` of the batch's debt into its reserve (spec: EXIT-16).
    event BatchReserveRepaid(uint256 indexed batchId, uint256 amount);

    /// @param framework_ The framework served.
    /// @param bondAdmin_ Who may propose bond changes.
    /// @param initialBatchBond The batch bond (the processing bounty's source; BOND-3).
    /// @param initialClaimBond The bond per claim (twice a claim challenge's gas; BOND-3).
    /// @param initialDemandBond The demand bond (twice a demand answer's gas; BOND-3).
    constructor(
        IPlasmaFramework framework_,
        address bondAdmin_,
        uint256 initialBatchBond,
        uint256 initialClaimBond,
        uint256 initialDemandBond
    ) ExitGameBase(framework_, bondAdmin_) {
        _batchBond.size = SafeCast.toUint128(initialBatchBond);
        _claimBond.size = SafeCast.toUint128(initialClaimBond);
        _demandBond.size = SafeCast.toUint128(initialDemandBond);
    }

    // ---------------------------------------------------------------- start

    /// @notice Starts a batch exit of outputs of `token` (spec: EXIT-12, EXIT-13).
    /// @dev `msg.value` must be `batchBondSize() + claimBondSize() * (claims in all groups)`. Groups
    /// whose authorization fails or whose first claim is not above the owner's watermark are skipped
    /// (`BatchGroupSkipped`) and their claim bonds credited back; if every group is skipped nothing
    /// starts, everything is credited back and 0 is returned. The batch queues once, at the youngest
    /// claim of all groups (skipped ones included): `youngestBlockRoot` and `youngestBlockTimestamp`
    /// must be that claim's block's commitment. Emits `BatchExitStarted` and one `BatchExitGroup`
    /// per live group.
    /// @param token The token of every claim.
    /// @param youngestBlockRoot The root of the youngest claim's block.
    /// @param youngestBlockTimestamp The commitment time of that block.
    /// @param groups The claims, one group per owner.
    /// @return batchId The batch started, or 0 if every group was skipped.
    function startBatchExit(
        address token,
        bytes32 youngestBlockRoot,
        uint64 youngestBlockTimestamp,
        Group[] calldata groups
    ) external payable nonReentrant returns (uint256 batchId) {
        uint256 claimBond = _claimBond.current();
        {
            uint256 due = _batchBond.current() + claimBond * _countClaims(groups);
            if (msg.value != due) revert ExitGameWrongBond(due, msg.value);
        }
        batchId = ++batchCount;
        Start memory st = _addGroups(batchId, token, groups);
        if (st.b.count == 0) {
            _refund(msg.value);
            return 0;
        }
        _record(batchId, token, st, _checkYoungest(st.youngest, youngestBlockRoot, youngestBlockTimestamp));
        _refund(st.skipped * claimBond);
    }

    /// @dev Stores the batch, queues it once and announces it.
    function _record(uint256 batchId, address token, Start memory st, uint64 exitableAt) private {
        BatchClaims.Builder memory b = st.b;
        uint256 total = st.total;
        bytes32 root = BatchClaims.root(b);
        Batch storage x = _batches[batchId];
        x.exitor = msg.sender;
        x.startedAt = uint64(block.timestamp);
        x.status = Status.Active;
        x.token = token;
        x.exitableAt = exitableAt;
        x.count = uint32(b.count); // at most MAX_CLAIMS
        x.root = root;
        // At most 2^16 amounts below 2^96.
        // forge-lint: disable-next-line(unsafe-typecast)
        x.total = uint128(total);
        x.claimBond = SafeCast.toUint96(_claimBond.current());
        x.batchBond = SafeCast.toUint96(_batchBond.current());
        framework.enqueue(token, exitableAt, st.youngest, batchId, true);
        emit BatchExitStarted(batchId, token, msg.sender, root, b.count, total, st.youngest, exitableAt);
    }

    function _countClaims(Group[] calldata groups) private pure returns (uint256 claims) {
        uint256 n = groups.length;
        if (n == 0) revert BatchExitNoGroups();
        for (uint256 i = 0; i < n; ++i) {
            uint256 len = groups[i].claims.length;
            if (len == 0 || len % BatchClaims.RECORD_BYTES != 0) revert BatchExitMalformedClaims(i);
            claims += len / BatchClaims.RECORD_BYTES;
        }
        // Checked over all groups, skipped ones included, so the builder's stack can never overflow.
        if (claims > BatchClaims.MAX_CLAIMS) revert BatchExitTooManyClaims(claims);
    }

    /// @dev Checks every group, hashes the live ones into the tree and raises their watermarks.
    /// Returns the builder, the youngest position of all groups, the live total and the number of
    /// skipped claims.
    function _addGroups(uint256 batchId, address token, Group[] calldata groups) private returns (Start memory st) {
        st.b = BatchClaims.builder();
        for (uint256 i = 0; i < groups.length; ++i) {
            _addGroup(st, batchId, token, groups[i], i);
        }
    }

    function _addGroup(Start memory st, uint256 batchId, address token, Group calldata g, uint256 i) private {
        (bool live, GroupSkip reason) = _admitted(st, token, g, i);
        uint256 firstIndex = st.b.count;
        (uint256 last, uint256 sum) = BatchClaims.checkGroup(g.claims);
        if (last > st.youngest) st.youngest = last;
        if (live) {
            BatchClaims.addGroup(st.b, g.claims, g.owner);
            claimedUpTo[g.owner][token] = last;
            st.total += sum;
            emit BatchExitGroup(batchId, g.owner, firstIndex, g.claims);
        } else {
            st.skipped += g.claims.length / BatchClaims.RECORD_BYTES;
            emit BatchGroupSkipped(batchId, g.owner, reason);
        }
    }

    /// @dev Whether group `g` starts (spec: EXIT-12): the sender is the owner or holds its
    /// authorization, and the first claim is above the owner's watermark.
    function _admitted(Start memory st, address token, Group calldata g, uint256 i)
        private
        view
        returns (bool, GroupSkip)
    {
        if (g.owner != msg.sender || g.signature.length != 0) {
            if (st.seGame == address(0)) {
                (st.domain, st.seGame) = (framework.domainSeparator(), framework.standardExitGame());
            }
            if (!_authorized(g, st.domain, st.seGame, i)) return (false, GroupSkip.BadAuthorization);
        }
        (uint64 first,) = BatchClaims.record(g.claims, 0);
        if (first <= claimedUpTo[g.owner][token]) return (false, GroupSkip.BelowWatermark);
        return (true, GroupSkip.BadAuthorization);
    }

    /// @dev The owner's authorization of the sender (spec: EXIT-9): unexpired, current nonce, signed by
    /// the group's owner. A malformed signature reverts (the sender's mistake).
    function _authorized(Group calldata g, bytes32 domain, address seGame, uint256 i) private view returns (bool) {
        if (block.timestamp > g.deadline) return false;
        bytes32 digest =
            PlasmaEip712.digest(domain, PlasmaEip712.hashExitAuthorization(msg.sender, g.deadline, g.nonce));
        address signer = PlasmaEip712.recover(digest, g.signature, i);
        return signer == g.owner && g.nonce == IStandardExitGame(seGame).authorizationNonce(signer);
    }

    /// @dev The batch's clock (spec: EXIT-13): the child-block rule of EXIT-2 applied to the youngest
    /// claim's block, whose commitment the caller names.
    function _checkYoungest(uint256 youngest, bytes32 root, uint64 timestamp) private view returns (uint64) {
        uint256 blknum = UtxoPosLib.blknum(youngest);
        bytes32 commitment = framework.blockCommitments(blknum);
        if (commitment == bytes32(0)) revert ExitGameUnknownBlock(blknum);
        if (BlockCommitment.commit(root, timestamp) != commitment) revert BatchExitBadYoungestBlock(blknum);
        uint256 soonest = block.timestamp + minExitPeriod;
        uint256 aged = uint256(timestamp) + 2 * minExitPeriod;
        return SafeCast.toUint64(aged > soonest ? aged : soonest);
    }

    function _refund(uint256 amount) private {
        if (amount != 0) framework.creditBonds{value: amount}(msg.sender, amount, address(0), 0);
    }

    // ---------------------------------------------------------------- challenges (CHAL-6, -7, -8)

    /// @notice Strikes a claim whose output does not exist as claimed (spec: CHAL-6): its block was
    /// never committed; or, with the leaf at the claim's transaction index proven under the block's
    /// commitment, the leaf is empty (`txBytes` empty), or the transaction is invalid, of the wrong
    /// kind for its block, has no such output, or the output's owner, token or amount differ.
    /// @dev Before processing the challenger is credited half the claim bond (the rest is burned); after
    /// processing the strike releases the claim's share of the reserve to the vault (no reward).
    /// Emits `BatchClaimStruck` (reason `NoSuchOutput`).
    /// @param c The claim and its proof in the batch's tree.
    /// @param txBytes The transaction at the claim's transaction index, or empty for an empty leaf.
    /// @param inclusionProof Its inclusion proof (ignored when the block is unknown).
    /// @param blockTimestamp The block's commitment time.
    function challengeBatchClaimInvalid(
        ClaimRef calldata c,
        bytes calldata txBytes,
        bytes calldata inclusionProof,
        uint64 blockTimestamp
    ) external nonReentrant {
        (Batch storage b, uint256 state) = _challengeable(c);
        if (!_invalid(b.token, c, txBytes, inclusionProof, blockTimestamp)) {
            revert BatchClaimNotInvalid(c.batchId, c.index);
        }
        _strike(b, c, state, StrikeReason.NoSuchOutput);
    }

    /// @notice Strikes a claim whose output its owner spent (spec: CHAL-7, as EXIT-4): a transaction
    /// with the claim's position as input `inputIndex`, signed for it by the claim's owner. The
    /// spend need not be included. Only before processing.
    /// @dev Credits the challenger half the claim bond; emits `BatchClaimStruck` (reason `Spent`).
    /// @param c The claim and its proof.
    /// @param spendingTx The spending transaction.
    /// @param inputIndex Which of its inputs spends the claim's position.
    /// @param signature The owner's signature of the spending transaction for that input.
    function challengeBatchClaimSpent(
        ClaimRef calldata c,
        bytes calldata spendingTx,
        uint256 inputIndex,
        bytes calldata signature
    ) external nonReentrant {
        (Batch storage b, uint256 state) = _challengeable(c);
        if (b.status != Status.Active) revert BatchExitNotActive(c.batchId);
        PlasmaTx.Transaction memory t = PlasmaTx.decodeValid(spendingTx);
        uint256 spent = inputIndex < t.inputs.length ? t.inputs[inputIndex] : 0;
        if (spent != c.utxoPos) revert BatchClaimNotASpend(c.batchId, c.index, spent);
        bytes32 digest = PlasmaEip712.digest(framework.domainSeparator(), PlasmaEip712.hashTx(t));
        address signer = PlasmaEip712.recover(digest, signature, inputIndex);
        if (signer != c.owner) revert BatchClaimBadSpendSignature(signer, c.owner);
        _strike(b, c, state, StrikeReason.Spent);
    }

    /// @notice Strikes a claim whose output already exits or was paid (spec: CHAL-8): its position has
    /// a standard exit that is settled, or active and started no later than the batch (`txBytes` may be
    /// empty; a standard exit started after the batch is CHAL-10's), or the output id of the
    /// transaction proven at its position (OUT-1) is finalized.
    /// @dev As CHAL-6: a reward before processing, a release after. Emits `BatchClaimStruck`
    /// (reason `Exited`).
    /// @param c The claim and its proof.
    /// @param txBytes The claim's transaction (empty to rely on the standard exit).
    /// @param inclusionProof Its inclusion proof.
    /// @param blockTimestamp Its block's commitment time.
    function challengeBatchClaimExited(
        ClaimRef calldata c,
        bytes calldata txBytes,
        bytes calldata inclusionProof,
        uint64 blockTimestamp
    ) external nonReentrant {
        (Batch storage b, uint256 state) = _challengeable(c);
        if (!_exited(b.startedAt, c.utxoPos, txBytes, inclusionProof, blockTimestamp)) {
            revert BatchClaimNotExited(c.batchId, c.index);
        }
        _strike(b, c, state, StrikeReason.Exited);
    }

    /// @dev A claim that can be struck: verified in its tree; live or demanded while the batch is
    /// active, live once it is processed.
    function _challengeable(ClaimRef calldata c) private view returns (Batch storage b, uint256 state) {
        b = _batches[c.batchId];
        Status status = b.status;
        if (status == Status.None) revert BatchExitNotActive(c.batchId);
        _verifyClaim(b, c);
        state = _state(c.batchId, c.index);
        if (state != LIVE && (state != DEMANDED || status != Status.Active)) {
            revert BatchClaimNotLive(c.batchId, c.index);
        }
    }

    function _invalid(
        address token,
        ClaimRef calldata c,
        bytes calldata txBytes,
        bytes calldata inclusionProof,
        uint64 blockTimestamp
    ) private view returns (bool) {
        uint256 pos = c.utxoPos;
        {
            bytes32 commitment = framework.blockCommitments(UtxoPosLib.blknum(pos));
            if (commitment == bytes32(0)) return true;
            bytes32 root = Merkle.computeRoot(
                txBytes.length == 0 ? bytes32(0) : Merkle.leaf(txBytes), UtxoPosLib.txIndex(pos), inclusionProof
            );
            if (BlockCommitment.commit(root, blockTimestamp) != commitment) revert ExitGameInvalidInclusionProof(pos);
        }
        if (txBytes.length == 0) return true; // an empty leaf: no transaction there (MERKLE-3)
        if (!_isValid(txBytes)) return true;
        return _differs(PlasmaTx.decode(txBytes), pos, c.owner, token, c.amount);
    }

    /// @dev Whether `txBytes` is a valid transaction (spec: ENC, TX), without reverting on an invalid
    /// one. The check reverts with a reason on every invalid transaction; no reason means it ran out
    /// of gas, which a challenger could provoke to strike a valid claim, so that reverts the challenge.
    function _isValid(bytes calldata txBytes) private view returns (bool) {
        try this.checkTransaction(txBytes) {
            return true;
        } catch (bytes memory reason) {
            if (reason.length == 0) revert BatchDecodeOutOfGas();
            return false;
        }
    }

    /// @dev Whether `t`, at `pos`, does not back a claim of (owner, token, amount) (spec:
    /// `claim_matches`): wrong kind for its block, no such output, or another output.
    function _differs(PlasmaTx.Transaction memory t, uint256 pos, address owner, address token, uint256 amount)
        private
        pure
        returns (bool)
    {
        if (UtxoPosLib.isDepositBlock(UtxoPosLib.blknum(pos)) != (t.txType == PlasmaTx.TYPE_DEPOSIT)) {
            return true;
        }
        uint256 oindex = UtxoPosLib.outputIndex(pos);
        if (oindex >= t.outputs.length) return true;
        PlasmaTx.Output memory o = t.outputs[oindex];
        return o.owner != owner || o.token != token || o.amount != amount;
    }

    /// @dev The earlier of the two exits of an output stands (spec: CHAL-8, CHAL-10): an active standard
    /// exit strikes the claim only if it started no later than the batch. A settled one was paid, so
    /// the claim is void whenever it started (its start time is cleared at settlement).
    function _exited(
        uint64 batchStartedAt,
        uint256 pos,
        bytes calldata txBytes,
        bytes calldata inclusionProof,
        uint64 blockTimestamp
    ) private view returns (bool) {
        if (_standardExitFirst(batchStartedAt, pos)) return true;
        if (txBytes.length == 0) return false;
        _verifyInclusion(txBytes, pos, inclusionProof, blockTimestamp);
        PlasmaTx.Transaction memory t = PlasmaTx.decodeValid(txBytes);
        uint256 oindex = UtxoPosLib.outputIndex(pos);
        if (oindex >= t.outputs.length) revert ExitGameNoSuchOutput(pos);
        return framework.isOutputFinalized(PlasmaTx.outputId(keccak256(txBytes), t.inputs.length != 0, oindex, pos));
    }

    function _standardExitFirst(uint64 batchStartedAt, uint256 pos) private view returns (bool) {
        (,, uint8 st,, uint64 seStartedAt,,,) = IStandardExitGame(framework.standardExitGame()).exits(pos);
        return st == SE_SETTLED || (st == SE_ACTIVE && seStartedAt <= batchStartedAt);
    }

    /// @dev Strikes a live or demanded claim. Active batch: the challenger gets half the claim bond
    /// and a demander its whole demand bond back. Processed batch: the claim's share of the reserve
    /// goes back to the vault.
    function _strike(Batch storage b, ClaimRef calldata c, uint256 state, StrikeReason reason) private {
        _setState(c.batchId, c.index, STRUCK);
        b.total -= c.amount;
        ++b.struck;
        if (b.status == Status.Active) {
            uint256 reward = _challengeReward(b.claimBond);
            Demand memory d;
            if (state == DEMANDED) {
                b.demanded -= c.amount;
                --b.demandedCount;
                d = demands[c.batchId][c.index];
                delete demands[c.batchId][c.index];
            }
            framework.creditBonds{value: reward + d.bond}(msg.sender, reward, d.demander, d.bond);
        } else {
            _releaseExcess(b);
        }
        emit BatchClaimStruck(c.batchId, c.index, msg.sender, reason);
    }

    /// @dev After processing `reserved <= total` holds; when `total` drops below the reserve, the
    /// difference goes back to the vault.
    function _releaseExcess(Batch storage b) private {
        uint256 reserved = b.reserved;
        uint256 total = b.total;
        if (reserved > total) {
            // Below the reserve, itself a uint128.
            // forge-lint: disable-next-line(unsafe-typecast)
            b.reserved = uint128(total);
            framework.release(b.token, reserved - total);
        }
    }

    // ---------------------------------------------------------------- demands (CHAL-9)

    /// @notice Demands the proof of a live claim, with the demand bond (`demandBondSize()`), in the
    /// batch's first half period (spec: CHAL-9). Unanswered when the batch is processed, the claim is
    /// struck and the demander collects its bond and half the claim bond (`collectDemand`).
    /// @dev Emits `BatchClaimDemanded`.
    /// @param c The claim and its proof.
    function demandClaimProof(ClaimRef calldata c) external payable nonReentrant {
        Batch storage b = _batches[c.batchId];
        if (b.status != Status.Active) revert BatchExitNotActive(c.batchId);
        uint256 closedAt = b.startedAt + minExitPeriod / 2;
        if (block.timestamp > closedAt) revert BatchDemandClosed(c.batchId, closedAt);
        _verifyClaim(b, c);
        if (_state(c.batchId, c.index) != LIVE) revert BatchClaimNotLive(c.batchId, c.index);
        uint256 bond = _takeBond(_demandBond, 1);
        _setState(c.batchId, c.index, DEMANDED);
        b.demanded += c.amount;
        ++b.demandedCount;
        demands[c.batchId][c.index] = Demand(msg.sender, SafeCast.toUint96(bond));
        emit BatchClaimDemanded(c.batchId, c.index, msg.sender);
    }

    /// @notice Answers a demand with the claim's transaction proven at its position, showing exactly
    /// the claimed output (spec: CHAL-9). Anyone may answer, until the batch is processed; the answerer
    /// is credited half the demand bond and the demander the other half.
    /// @dev Reverts `BatchClaimMismatch` if the output differs (then strike it by CHAL-6). Emits
    /// `BatchClaimAnswered`.
    /// @param c The claim and its proof.
    /// @param txBytes The claim's transaction.
    /// @param inclusionProof Its inclusion proof.
    /// @param blockTimestamp Its block's commitment time.
    function answerClaimDemand(
        ClaimRef calldata c,
        bytes calldata txBytes,
        bytes calldata inclusionProof,
        uint64 blockTimestamp
    ) external nonReentrant {
        Batch storage b = _batches[c.batchId];
        if (b.status != Status.Active) revert BatchExitNotActive(c.batchId);
        _verifyClaim(b, c);
        if (_state(c.batchId, c.index) != DEMANDED) revert BatchClaimNotDemanded(c.batchId, c.index);
        _proveOutput(b.token, c, txBytes, inclusionProof, blockTimestamp);
        _setState(c.batchId, c.index, LIVE);
        b.demanded -= c.amount;
        --b.demandedCount;
        Demand memory d = demands[c.batchId][c.index];
        delete demands[c.batchId][c.index];
        uint256 half = d.bond / 2;
        framework.creditBonds{value: d.bond}(msg.sender, half, d.demander, d.bond - half);
        emit BatchClaimAnswered(c.batchId, c.index, msg.sender);
    }

    /// @notice After processing, credits the demander of a claim left unanswered its demand bond and
    /// half the claim bond; the claim is struck (spec: CHAL-9). Anyone may call it.
    /// @dev Emits `BatchClaimStruck` (reason `DemandUnanswered`, challenger = the demander).
    /// @param batchId The batch.
    /// @param index The claim's index.
    function collectDemand(uint256 batchId, uint256 index) external nonReentrant {
        Batch storage b = _batches[batchId];
        if (b.status != Status.Processed) revert BatchExitNotProcessed(batchId);
        if (_state(batchId, index) != DEMANDED) revert BatchClaimNotDemanded(batchId, index);
        _setState(batchId, index, STRUCK);
        ++b.struck;
        Demand memory d = demands[batchId][index];
        delete demands[batchId][index];
        uint256 amount = d.bond + _challengeReward(b.claimBond);
        framework.creditBonds{value: amount}(d.demander, amount, address(0), 0);
        emit BatchClaimStruck(batchId, index, d.demander, StrikeReason.DemandUnanswered);
    }

    // ---------------------------------------------------------------- processing (EXIT-14)

    /// @notice Settles a batch popped from its queue (framework only; spec: EXIT-14): claims still
    /// demanded are struck, the batch's total is reserved from the vault (capped), the claim bonds of
    /// claims not struck go back to the exitor with the batch bond minus the processing bounty.
    /// @dev Emits `BatchExitProcessed`.
    function processExit(uint256 batchId, address token, address processor) external onlyFramework {
        Batch storage b = _batches[batchId];
        if (b.status != Status.Active) return;
        b.status = Status.Processed;
        uint256 total = b.total - b.demanded;
        // At most the old total.
        // forge-lint: disable-next-line(unsafe-typecast)
        b.total = uint128(total);
        b.demanded = 0;
        uint256 reserved = total == 0 ? 0 : framework.reserve(token, total, batchId);
        // At most `total`.
        // forge-lint: disable-next-line(unsafe-typecast)
        b.reserved = uint128(reserved);
        uint256 bonds = uint256(b.claimBond) * (b.count - b.struck - b.demandedCount) + b.batchBond;
        uint256 bounty = _processingBounty(b.batchBond);
        framework.creditBonds{value: bonds}(b.exitor, bonds - bounty, processor, bounty);
        emit BatchExitProcessed(batchId, reserved, total);
    }

    // ---------------------------------------------------------------- payout (EXIT-15)

    /// @notice Pays claims of processed batches to their owners (spec: EXIT-15): per entry, the claim
    /// is proven in its tree and its transaction at its position with exactly the claimed output, and
    /// the output id is finalized. An output finalized before (paid by another path) makes the claim
    /// void: nothing paid, its share of the reserve released. Otherwise the owner is credited the
    /// amount from the batch's reserve, in full: a claim the reserve cannot cover (the vault was short,
    /// spec: EXIT-16) is skipped and stays live until the batch's debt is repaid. Claims already paid
    /// or struck are skipped. Anyone may call it, for any owners and batches.
    /// @dev At most `MAX_PAYOUTS` entries. Emits `BatchClaimPaid` per claim paid or void (amount 0),
    /// `BatchClaimStruck` (reason `Void`) for void ones and `BatchClaimDeferred` for skipped ones.
    /// @param payouts The claims with their transactions and inclusion proofs.
    function payoutBatchClaims(Payout[] calldata payouts) external nonReentrant {
        uint256 n = payouts.length;
        if (n > MAX_PAYOUTS) revert BatchPayoutTooMany(n);
        bytes32[] memory ids = new bytes32[](n);
        uint256[] memory which = new uint256[](n);
        uint256 m;
        for (uint256 i = 0; i < n; ++i) {
            Payout calldata p = payouts[i];
            ClaimRef calldata c = p.claim;
            Batch storage b = _batches[c.batchId];
            if (b.status != Status.Processed) revert BatchExitNotProcessed(c.batchId);
            _verifyClaim(b, c);
            if (_state(c.batchId, c.index) != LIVE) continue; // paid or struck meanwhile
            bytes32 id = _proveOutput(b.token, c, p.txBytes, p.inclusionProof, p.blockTimestamp);
            uint256 reserved = b.reserved;
            if (reserved < c.amount) {
                // Never paid in part (spec: EXIT-16): a void claim is struck now, another waits.
                if (framework.isOutputFinalized(id)) {
                    _void(b, c);
                } else {
                    emit BatchClaimDeferred(c.batchId, c.index, reserved);
                }
                continue;
            }
            // Taken now, so a later entry of the same batch sees what is left.
            // forge-lint: disable-next-line(unsafe-typecast)
            b.reserved = uint128(reserved - c.amount);
            b.total -= c.amount;
            ids[m] = id;
            _setState(c.batchId, c.index, PAID); // also stops a duplicate entry
            which[m++] = i;
        }
        _truncate(ids, m);
        uint256 already = m == 0 ? 0 : framework.finalizeOutputs(ids);
        for (uint256 j = 0; j < m; ++j) {
            _pay(payouts[which[j]].claim, (already >> j) & 1 == 1);
        }
    }

    /// @dev Shortens `ids` to its first `m` entries in place.
    function _truncate(bytes32[] memory ids, uint256 m) private pure {
        assembly ("memory-safe") {
            mstore(ids, m)
        }
    }

    /// @dev Pays a claim already taken from the reserve and the total, or puts it back and voids it.
    function _pay(ClaimRef calldata c, bool void) private {
        Batch storage b = _batches[c.batchId];
        uint96 amount = c.amount;
        if (void) {
            b.reserved += amount;
            b.total += amount;
            _void(b, c);
            return;
        }
        framework.creditReserved(b.token, c.owner, amount);
        emit BatchClaimPaid(c.batchId, c.index, c.owner, amount);
    }

    /// @dev Strikes a claim whose output was paid by another path; its share of the reserve goes back.
    function _void(Batch storage b, ClaimRef calldata c) private {
        b.total -= c.amount;
        _setState(c.batchId, c.index, STRUCK);
        ++b.struck;
        _releaseExcess(b);
        emit BatchClaimStruck(c.batchId, c.index, msg.sender, StrikeReason.Void);
        emit BatchClaimPaid(c.batchId, c.index, c.owner, 0);
    }

    // ---------------------------------------------------------------- claims

    /// @dev Reverts unless `c` is leaf `c.index` of the batch's tree.
    function _verifyClaim(Batch storage b, ClaimRef calldata c) private view {
        bytes32 leafHash = BatchClaims.leaf(c.owner, c.utxoPos, c.amount);
        if (!BatchClaims.verify(leafHash, c.index, b.count, c.proof, b.root)) {
            revert BatchClaimBadProof(c.batchId, c.index);
        }
    }

    /// @dev Proves `txBytes` at the claim's position with exactly the claimed output; returns its
    /// output id (OUT-1). Reverts `BatchClaimMismatch` otherwise.
    function _proveOutput(
        address token,
        ClaimRef calldata c,
        bytes calldata txBytes,
        bytes calldata inclusionProof,
        uint64 blockTimestamp
    ) private view returns (bytes32) {
        uint256 pos = c.utxoPos;
        _verifyInclusion(txBytes, pos, inclusionProof, blockTimestamp);
        PlasmaTx.Transaction memory t = PlasmaTx.decodeValid(txBytes);
        if (_differs(t, pos, c.owner, token, c.amount)) revert BatchClaimMismatch(c.batchId, c.index);
        return PlasmaTx.outputId(keccak256(txBytes), t.inputs.length != 0, UtxoPosLib.outputIndex(pos), pos);
    }

    function _state(uint256 batchId, uint256 index) private view returns (uint256) {
        return (_states[batchId][index >> 7] >> ((index & 127) << 1)) & 3;
    }

    function _setState(uint256 batchId, uint256 index, uint256 state) private {
        uint256 shift = (index & 127) << 1;
        uint256 w = _states[batchId][index >> 7];
        _states[batchId][index >> 7] = (w & ~(uint256(3) << shift)) | (state << shift);
    }

    // ---------------------------------------------------------------- views and admin

    /// @notice Batch `batchId` (ids start at 1; status `None` if there is no such batch).
    /// @param batchId The batch.
    function batches(uint256 batchId) external view returns (Batch memory) {
        return _batches[batchId];
    }

    /// @notice A claim's state: 0 live, 1 demanded, 2 struck, 3 paid.
    /// @param batchId The batch.
    /// @param index The claim's index in the batch's tree.
    function claimState(uint256 batchId, uint256 index) external view returns (uint8) {
        return uint8(_state(batchId, index));
    }

    /// @inheritdoc IBatchExitGame
    function isLiveClaim(ClaimRef calldata c) external view returns (bool) {
        Batch storage b = _batches[c.batchId];
        if (b.status == Status.None || _state(c.batchId, c.index) != LIVE) return false;
        return BatchClaims.verify(BatchClaims.leaf(c.owner, c.utxoPos, c.amount), c.index, b.count, c.proof, b.root);
    }

    /// @inheritdoc IBatchExitGame
    function batchToken(uint256 batchId) external view returns (address) {
        return _batches[batchId].token;
    }

    /// @inheritdoc IBatchExitGame
    function batchStart(uint256 batchId) external view returns (address token, uint64 startedAt) {
        Batch storage b = _batches[batchId];
        return (b.token, b.startedAt);
    }

    /// @inheritdoc IBatchExitGame
    /// @dev Framework only, from `settleDebts`; emits `BatchReserveRepaid`. Reserve debts are recorded
    /// only at processing, so the batch is processed. Its claims' `total` only falls after processing
    /// (strikes, voids and payouts), so the reserve it still lacks (`total - reserved`) never exceeds
    /// its debt; what tops it up beyond `total` is handed back rather than released, so the framework
    /// keeps it in the pool for the next debt.
    function reserveRepaid(uint256 batchId, uint256 amount) external onlyFramework returns (uint256 excess) {
        Batch storage b = _batches[batchId];
        uint256 reserved = b.reserved + amount;
        uint256 total = b.total;
        if (reserved > total) (excess, reserved) = (reserved - total, total);
        // At most `total`, a uint128.
        // forge-lint: disable-next-line(unsafe-typecast)
        b.reserved = uint128(reserved);
        emit BatchReserveRepaid(batchId, amount - excess);
    }

    /// @notice Reverts with the decoder's error unless `txBytes` is a valid transaction (strict
    /// encoding and the stateless rules, spec: ENC, TX). The game calls itself through it to tell an
    /// invalid transaction from a valid one without reverting (CHAL-6).
    /// @param txBytes The transaction.
    function checkTransaction(bytes calldata txBytes) external pure {
        PlasmaTx.decodeValid(txBytes);
    }

    /// @notice The batch bond in force (spec: BOND-3).
    function batchBondSize() external view returns (uint256) {
        return _batchBond.current();
    }

    /// @notice The bond per claim in force (spec: BOND-3).
    function claimBondSize() external view returns (uint256) {
        return _claimBond.current();
    }

    /// @notice The demand bond in force (spec: BOND-3).
    function demandBondSize() external view returns (uint256) {
        return _demandBond.current();
    }

    /// @notice Schedules a new batch bond (bond admin only; bounded and delayed, spec: BOND-1).
    /// @dev Emits `BondChangeProposed`.
    /// @param newSize The new bond in wei, within [current / 2, current * 2].
    function proposeBatchBondSize(uint256 newSize) external onlyBondAdmin {
        _proposeBond(_batchBond, "batchExit", newSize);
    }

    /// @notice Schedules a new claim bond (bond admin only; bounded and delayed, spec: BOND-1).
    /// @dev Emits `BondChangeProposed`.
    /// @param newSize The new bond in wei, within [current / 2, current * 2].
    function proposeClaimBondSize(uint256 newSize) external onlyBondAdmin {
        _proposeBond(_claimBond, "batchClaim", newSize);
    }

    /// @notice Schedules a new demand bond (bond admin only; bounded and delayed, spec: BOND-1).
    /// @dev Emits `BondChangeProposed`.
    /// @param newSize The new bond in wei, within [current / 2, current * 2].
    function proposeDemandBondSize(uint256 newSize) external onlyBondAdmin {
        _proposeBond(_demandBond, "batchDemand", newSize);
    }
}
