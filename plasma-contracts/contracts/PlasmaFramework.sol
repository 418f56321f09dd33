// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {IBatchExitGame} from "./interfaces/IBatchExitGame.sol";
import {IExitGame} from "./interfaces/IExitGame.sol";
import {IPlasmaFramework} from "./interfaces/IPlasmaFramework.sol";
import {IStandardExitGame} from "./interfaces/IStandardExitGame.sol";
import {BlockCommitment} from "./libraries/BlockCommitment.sol";
import {ExitPriority} from "./libraries/ExitPriority.sol";
import {ExitQueue} from "./libraries/ExitQueue.sol";
import {Merkle} from "./libraries/Merkle.sol";
import {PlasmaTx} from "./libraries/PlasmaTx.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title PlasmaFramework
/// @notice The L1 anchor of the plasma chain: child-block roots, the ETH and ERC-20 vault that holds
/// every deposit, the exit queues per token, the finalized-output book and the pull-payment ledger.
/// @dev The three exit games (standard, in-flight and batch) are separate contracts, bound once right after
/// deployment and never changed (spec: UPG-1): nothing here can be upgraded, so a watcher needs to
/// check the wiring only once. The operator is fixed too: a plasma chain with a new operator is a new
/// chain, and users exit to it (spec/06-operator.md explains why rotation is not worth its risk).
contract PlasmaFramework is IPlasmaFramework, EIP712, ReentrancyGuardTransient {
    using ExitQueue for ExitQueue.Queue;
    using SafeERC20 for IERC20;

    /// @notice Child blocks are numbered at multiples of this; deposit blocks take the numbers
    /// between (spec: POS-3).
    uint64 public constant CHILD_BLOCK_INTERVAL = 1000;
    /// @notice The first this many deposit blocks after each child block are free; later ones pay
    /// `depositFee()` (spec: BOND-2).
    uint64 public constant FREE_DEPOSIT_SLOTS = 500;
    /// @notice The fee of the first paying deposit slot, in wei (0.001 ether); it doubles every
    /// `DEPOSIT_FEE_DOUBLING` slots, up to 512 times this for the last one.
    uint256 public constant DEPOSIT_BASE_FEE = 1e15;
    /// @notice How many paying deposit slots share one fee level before it doubles.
    uint64 public constant DEPOSIT_FEE_DOUBLING = 50;
    /// @dev In-flight exits set this bit in their priority's nonce so the framework knows to look up
    /// their id; a standard exit's id is its position.
    uint64 private constant FLAG_NONCE = uint64(1) << 63;
    /// @dev Set in the priority's nonce of every exit the batch game queues (spec: EXIT-3, EXIT-13):
    /// the framework dispatches such an entry to the batch game.
    uint64 private constant FLAG_BATCH = uint64(1) << 62;
    /// @dev Transient: the bounties `settleStandardExit` owes the caller of the `processExits` running
    /// now, credited once at its end. keccak256(abi.encode(uint256(keccak256("plasma.framework.bounty"))
    /// - 1)) & ~bytes32(uint256(0xff)) (ERC-7201; `cast index-erc7201 plasma.framework.bounty`).
    bytes32 private constant BOUNTY_SLOT = 0xb64ceda1ab60a741e1163598a11e917fd47f6465874f9cde6da74a911bd5ec00;

    /// @notice The only account that may submit child-block roots.
    address public immutable operator;
    /// @notice The challenge period `p` (spec: EXIT-2): a week in production, seconds on a devnet.
    uint256 public immutable minExitPeriod;
    address private immutable deployer;
    /// @notice The L1 block this contract was created in. Nothing of the system exists before it,
    /// so every follower (operator, watcher, wallet) starts reading logs here instead of at genesis:
    /// on a public chain that is millions of blocks not read (a watcher reading from genesis, 2,000
    /// blocks a step, would be blind for hours), and it needs no archive node to find (spec: WATCH-1).
    uint64 public immutable deploymentBlock;

    // One storage slot: `standardExitGame` (160 bits), the deposits' child-block hint (64) and the
    // deposit offset (32), all read by deposits with one cold SLOAD. Nothing here is upgradeable
    // (UPG-1), so the layout is fixed at deployment and never migrated; the offset stays below
    // CHILD_BLOCK_INTERVAL (< 2^32) and the game's address is written once, by `bindExitGames`.
    //
    // No block counter is written by `submitBlock` (issue 19: 2,900 gas per block; the floor with a
    // counter update is 50,465 gas, above the 50,000 goal). The committed child blocks themselves
    // are the counter, by this invariant (spec: LEDGER-8):
    //   (C) child commitments exist exactly for CHILD_BLOCK_INTERVAL, 2·CHILD_BLOCK_INTERVAL, ...,
    //       up to the last committed one, and for no multiple of CHILD_BLOCK_INTERVAL above it.
    // `submitBlock(blknum)` (and `submitBlocks`, block by block) keeps (C): it commits only a
    // multiple of the interval that is not committed and whose predecessor is (the first: once
    // started), i.e. exactly the next one. So
    // "is child block n committed" is monotone in n and `_nextChild` finds the next number by a
    // galloping search from `_childHint`, a lower bound of it (it only ever holds a value the search
    // returned, and the next number only grows). Deposits number themselves after that block as
    // before (POS-3) and store the result as the new hint; a deposit never overwrites a commitment
    // (checked, at no gas: the slot's SLOAD makes its SSTORE warm).

    /// @notice The standard exit game (zero until bound).
    address public standardExitGame;
    /// @dev The next child block's number as the last deposit found it (a lower bound of the real
    /// one; `nextChildBlock()` searches from it).
    uint64 private _childHint = CHILD_BLOCK_INTERVAL;
    /// @dev The offset of the next deposit block after child block `_childHint - CHILD_BLOCK_INTERVAL`
    /// (1..999), read through `nextDepositBlock()`.
    uint32 private _nextDepositBlock = 1;
    /// @notice The in-flight exit game (zero until bound).
    address public inFlightExitGame;
    /// @inheritdoc IPlasmaFramework
    address public batchExitGame;

    /// @inheritdoc IPlasmaFramework
    mapping(uint256 blknum => bytes32) public blockCommitments;

    /// @dev Per token, the vault's two totals in one slot (issue 19: one cold read, not two, when an
    /// exit is credited): the low 128 bits hold `totalDeposited + 1`, the high 128 bits
    /// `totalCredited + 1`, once the slot was ever written; zero means both totals are zero. The
    /// `+ 1` keeps a touched slot nonzero, so the constructor (for ETH) and `registerToken` (for an
    /// ERC-20) can write it once in advance and the first deposit of the token pays a
    /// nonzero-to-nonzero write (2,900 gas) instead of a fresh slot (20,000). Only `_vault` and
    /// `_setVault` read or write it, so the offset is never taken for money (spec: BOND-4).
    mapping(address token => uint256) private _vaults;
    /// @notice What each account can withdraw, per token (exits, bonds, bounties).
    mapping(address account => mapping(address token => uint256)) public withdrawable;
    /// @dev The outputs finalized by the in-flight and batch games, and by standard exits voided
    /// because one of those finalized the output first. The standard game's settled records are the
    /// other half of the book (spec: OUT-2); `isOutputFinalized` and `finalizeOutputs` read both.
    mapping(bytes32 outputId => bool) private _finalized;

    /// @dev Each token's exit queue: two sorted runs plus a heap (`ExitQueue` says why, EXIT-3).
    mapping(address token => ExitQueue.Queue) private queues;
    /// @notice Exit ids of flagged queue entries (in-flight exits), by priority nonce.
    mapping(uint64 nonce => uint256 exitId) public flaggedExitIds;
    /// @notice How many exits have been queued in all (the next priority nonce).
    uint64 public exitCount;

    /// @notice The unpaid part of a capped credit or reserve (spec: EXIT-16).
    struct Debt {
        address account; // the account credited, or the batch game for a reserve
        uint96 batchId; // the batch whose reserve was capped; 0 for a credit
        uint256 amount; // still owed (for a reserve: at most; the batch may need less by now)
    }

    /// @dev One token's debts, oldest first (`head` .. `tail`), and the money released back while some
    /// are outstanding: it stays in `totalCredited` until a debt takes it or the debts end.
    struct DebtBook {
        uint128 head;
        uint128 tail;
        uint256 outstanding;
        uint256 pool;
        mapping(uint256 index => Debt) at;
    }

    mapping(address token => DebtBook) private _debts;

    /// @dev A touched vault slot with both totals zero (see `_vaults`).
    uint256 private constant VAULT_EMPTY = (1 << 128) | 1;
    /// @notice The most a token's lifetime deposits may reach (spec: BOND-4): the packed totals keep
    /// `total + 1` in 128 bits. About 3.4e20 whole tokens of 18 decimals; ETH cannot come near it.
    uint256 public constant MAX_TOTAL_DEPOSITED = type(uint128).max - 1;

    /// @notice The caller is not the operator.
    error FrameworkNotOperator(address caller);
    /// @notice The caller is not one of the bound exit games.
    error FrameworkNotExitGame(address caller);
    /// @notice The exit games are already bound, or the caller is not the deployer.
    error FrameworkBindingRefused(address caller);
    /// @notice The exit games are not bound yet, so the chain has not started.
    error FrameworkNotStarted();
    /// @notice A zero root would look like a missing block.
    error FrameworkZeroRoot();
    /// @notice `submitBlocks` was given no root.
    error FrameworkNoRoots();
    /// @notice `submitBlock` named child block `blknum` but the next one is `nextChildBlock`: that
    /// root was already committed (a resent or fee-bumped submission landed first) or the operator
    /// is out of step. Refusing it keeps one root from being committed at two numbers (spec: OP-4).
    error FrameworkUnexpectedBlockNumber(uint256 blknum, uint256 nextChildBlock);
    /// @notice 999 deposit blocks follow the last child block; the operator must submit the next.
    error FrameworkDepositBlocksExhausted(uint256 nextChildBlock);
    /// @notice The ETH offered beyond the deposit (`msg.value` minus an ETH deposit's amount) is
    /// below the fee of the next deposit slot (spec: BOND-2).
    error FrameworkDepositFeeTooLow(uint256 fee, uint256 offered);
    /// @notice A deposit transaction must be a deposit with one output (spec: TX-2).
    error FrameworkNotADeposit(uint8 txType);
    /// @notice The deposit's output must belong to the depositor.
    error FrameworkDepositOwnerMismatch(address owner, address depositor);
    /// @notice The deposit's output token does not match the function (ETH vs ERC-20).
    error FrameworkDepositTokenMismatch(address token);
    /// @notice The deposit's output amount must equal what was paid.
    error FrameworkDepositAmountMismatch(uint256 declared, uint256 received);
    /// @notice The token moved a different amount than asked (fee-on-transfer or rebasing tokens
    /// are refused: the chain could not honour exits of the declared amount).
    error FrameworkTokenTransferMismatch(uint256 expected, uint256 received);
    /// @notice The queue's head is not the exit the caller meant to process.
    error FrameworkQueueHeadChanged(uint256 expected, uint256 actual);
    /// @notice No exit of the token is due yet (or the queue is empty: `head` is 0).
    error FrameworkNoExitDue(address token, uint256 head);
    /// @notice `maxExits` must be at least one.
    error FrameworkZeroMaxExits();
    /// @notice Nothing to withdraw.
    error FrameworkNothingToWithdraw(address account, address token);
    /// @notice The ETH transfer of a withdrawal failed (only the recipient is affected).
    error FrameworkEthTransferFailed(address to, uint256 amount);
    /// @notice The caller is not the batch exit game.
    error FrameworkNotBatchGame(address caller);
    /// @notice The ETH sent with `creditBonds` does not equal the amounts credited.
    error FrameworkBondValueMismatch(uint256 value, uint256 credited);
    /// @notice A deposit would take `token`'s lifetime deposits above `MAX_TOTAL_DEPOSITED`.
    error FrameworkDepositCapExceeded(address token, uint256 totalDeposited, uint256 amount);
    /// @notice `registerToken` takes an ERC-20 token; ETH (address zero) is registered at deployment.
    error FrameworkNotAToken(address token);
    /// @notice `settleDebts` found no debt of `token` it could pay: none is outstanding, or nothing
    /// was returned to the pool yet (spec: EXIT-16).
    error FrameworkNoDebtPayable(address token, uint256 outstandingDebts, uint256 pool);

    /// @notice The exit games were bound (once, right after deployment).
    event ExitGamesBound(
        address indexed standardExitGame, address indexed inFlightExitGame, address indexed batchExitGame
    );
    /// @notice A child block was committed (spec: LEDGER-8).
    event BlockSubmitted(uint256 indexed blknum, bytes32 root, uint64 timestamp);
    /// @notice A deposit made a deposit block. `depositTx` is its one transaction, so the operator
    /// and watchers can credit it without other lookups (spec: LEDGER-7).
    event DepositCreated(
        address indexed owner,
        uint256 indexed blknum,
        address indexed token,
        uint256 amount,
        uint64 timestamp,
        bytes depositTx
    );
    /// @notice An exit entered `token`'s queue.
    event ExitQueued(address indexed token, address indexed game, uint256 indexed exitId, uint256 priority);
    /// @notice `processExits` settled `count` exits of `token`, and credited `bounty` ETH to `processor`:
    /// the processing bounties of the standard exits among them, in one credit (in-flight and batch
    /// exits credit theirs with `Credited`).
    event ExitsProcessed(address indexed token, address indexed processor, uint256 count, uint256 bounty);
    /// @notice An output was finalized (spec: OUT-2) by an in-flight exit or a batch payout. A standard
    /// exit's payment says it with `StandardExitPaid` instead.
    event OutputFinalized(bytes32 indexed outputId);
    /// @notice `account` may now withdraw `amount` more of `token`. Every credit is told by one of
    /// three events: this one, `StandardExitPaid` (two credits) or `ExitsProcessed` (the bounty).
    event Credited(address indexed account, address indexed token, uint256 amount);
    /// @notice A standard exit was paid (spec: EXIT-5): its output `outputId` is finalized (OUT-2),
    /// `amount` of `token` was credited to `owner` (less than the exit's amount only when the vault was
    /// short: see `CreditShortfall`), and `bondRefund` ETH to `bondOwner` (the bond less the processing
    /// bounty, which `ExitsProcessed` counts). It stands for the `OutputFinalized` and the two
    /// `Credited` these would otherwise emit (issue 19: one log instead of three, ~3.8k gas an exit).
    event StandardExitPaid(
        bytes32 indexed outputId,
        address indexed owner,
        address indexed token,
        uint256 amount,
        address bondOwner,
        uint256 bondRefund
    );
    /// @notice A standard exit was void: its output `outputId` had been finalized by an in-flight exit
    /// or a batch payout first (OUT-2). Its whole bond went back to its bond's owner (`Credited`).
    event StandardExitVoided(bytes32 indexed outputId);
    /// @notice `token`'s storage was pre-paid by `registrar` (issue 19; see `registerToken`).
    event TokenRegistered(address indexed token, address indexed registrar);
    /// @notice An exit asked for more of `token` than the vault has left: `shortfall` was not paid.
    /// Only exits from a byzantine chain that honest owners already emptied can hit this.
    event CreditShortfall(address indexed account, address indexed token, uint256 shortfall);
    /// @notice `account` withdrew `amount` of `token`.
    event Withdrawn(address indexed account, address indexed token, uint256 amount);
    /// @notice A capped credit (`batchId` 0) or a batch's capped reserve (`account` the batch game) left
    /// debt number `index` of `token`, repaid in this order from released money (spec: EXIT-16).
    event DebtRecorded(
        address indexed token, uint256 indexed index, address indexed account, uint256 batchId, uint256 amount
    );
    /// @notice `amount` of `token` released while debts are outstanding went to the debt pool: only
    /// `settleDebts` may pay it out (spec: EXIT-16).
    event DebtPoolFunded(address indexed token, uint256 amount, uint256 pool);
    /// @notice Debt `index` of `token` was paid `paid`; `left` is still owed (0: the debt is closed). A
    /// batch that needed less than its debt (claims struck or void meanwhile) closes it with `left` 0.
    event DebtPaid(address indexed token, uint256 indexed index, uint256 paid, uint256 left);

    modifier onlyExitGame() {
        if (msg.sender != standardExitGame && msg.sender != inFlightExitGame && msg.sender != batchExitGame) {
            revert FrameworkNotExitGame(msg.sender);
        }
        _;
    }

    modifier onlyBatchGame() {
        if (msg.sender != batchExitGame) revert FrameworkNotBatchGame(msg.sender);
        _;
    }

    modifier started() {
        if (standardExitGame == address(0)) revert FrameworkNotStarted();
        _;
    }

    /// @param operator_ The block submitter.
    /// @param minExitPeriod_ The challenge period `p` in seconds.
    constructor(address operator_, uint256 minExitPeriod_) EIP712("Plasma", "1") {
        operator = operator_;
        minExitPeriod = minExitPeriod_;
        deployer = msg.sender;
        deploymentBlock = uint64(block.number);
        // ETH's vault slot, written once by the deployer so that the first ETH deposit ever does not
        // pay for a fresh slot (issue 19; see `_vaults`).
        _vaults[address(0)] = VAULT_EMPTY;
    }

    /// @notice Pre-pays the one-time storage a token's first deposit would otherwise pay (issue 19):
    /// the token's vault slot here, and the framework's balance slot in the token, by moving one base
    /// unit of the token from the caller to the framework (approve it first) if the framework holds
    /// none. Anyone may call it, for any token, any number of times; it changes no total (spec:
    /// BOND-4).
    /// @dev The unit sent is outside the vault's accounting, like the burned deposit fees: no account
    /// is credited with it and no exit can be paid from it (exits are capped by `totalDeposited -
    /// totalCredited`), so the vault only ever holds more than it owes. Deposits still work without
    /// registration; the first one then pays for both slots itself. Emits `TokenRegistered`.
    /// @param token The ERC-20 token (not address zero: ETH's slot is written at deployment).
    function registerToken(address token) external nonReentrant {
        if (token == address(0)) revert FrameworkNotAToken(token);
        if (_vaults[token] == 0) _vaults[token] = VAULT_EMPTY;
        IERC20 t = IERC20(token);
        if (t.balanceOf(address(this)) == 0) {
            t.safeTransferFrom(msg.sender, address(this), 1);
            uint256 received = t.balanceOf(address(this));
            if (received != 1) revert FrameworkTokenTransferMismatch(1, received);
        }
        emit TokenRegistered(token, msg.sender);
    }

    // ---------------------------------------------------------------- wiring

    /// @notice Binds the three exit games, once. Deposits and blocks are refused until then.
    /// @dev Only the deployer, only once; emits `ExitGamesBound`. The games are immutable contracts,
    /// so this is the whole of the system's configuration (spec: UPG-1).
    /// @param standard The standard exit game.
    /// @param inFlight The in-flight exit game.
    /// @param batch The batch exit game (spec: EXIT-12).
    function bindExitGames(address standard, address inFlight, address batch) external {
        if (msg.sender != deployer || standardExitGame != address(0) || standard == address(0)) {
            revert FrameworkBindingRefused(msg.sender);
        }
        standardExitGame = standard;
        inFlightExitGame = inFlight;
        batchExitGame = batch;
        emit ExitGamesBound(standard, inFlight, batch);
    }

    // ---------------------------------------------------------------- blocks

    /// @notice Commits child block `blknum`'s Merkle root (spec: LEDGER-8, OP-4). Operator only.
    /// @dev Emits `BlockSubmitted`. The timestamp recorded is this L1 block's, which starts the
    /// block's exit clock (spec: EXIT-2); root and timestamp are stored as one commitment.
    /// `blknum` must be `nextChildBlock`: the operator names the block it means, so a second
    /// transaction carrying the same root (a fee bump or a resend racing the first) reverts with
    /// `FrameworkUnexpectedBlockNumber` instead of committing that root again at the next number.
    /// @param blknum The child block this root belongs to; must equal `nextChildBlock`.
    /// @param root The Merkle root of the block's transactions (spec: MERKLE).
    function submitBlock(uint256 blknum, bytes32 root) external {
        if (msg.sender != operator) revert FrameworkNotOperator(msg.sender);
        _commitNext(blknum, root, uint64(block.timestamp));
    }

    /// @notice Commits consecutive child blocks in one transaction: `roots[i]` is child block
    /// `firstBlknum + i * CHILD_BLOCK_INTERVAL`'s root (spec: LEDGER-8, OP-4). Operator only.
    /// @dev Exactly `roots.length` calls of `submitBlock` in order, in one transaction: one
    /// `BlockSubmitted` and one commitment word per block (MERKLE-6), all with this L1 block's
    /// timestamp, and all or none (a zero root or a wrong first number reverts the whole run).
    /// Each block after the first saves the 21,000 gas of a transaction of its own (spec/04,
    /// "Differences"): an operator producing blocks faster than L1 makes them commits the backlog
    /// at each L1 block instead of one block per L1 block.
    /// @param firstBlknum The first block of the run; must equal `nextChildBlock`.
    /// @param roots The blocks' Merkle roots, in block order; at least one.
    function submitBlocks(uint256 firstBlknum, bytes32[] calldata roots) external {
        if (msg.sender != operator) revert FrameworkNotOperator(msg.sender);
        if (roots.length == 0) revert FrameworkNoRoots();
        uint64 timestamp = uint64(block.timestamp);
        uint256 blknum = firstBlknum;
        for (uint256 i = 0; i < roots.length; ++i) {
            // Each block's predecessor is the one just committed (a warm read): the same check as
            // `submitBlock`, so the run keeps invariant (C) block by block.
            _commitNext(blknum, roots[i], timestamp);
            blknum += CHILD_BLOCK_INTERVAL;
        }
    }

    /// @dev Commits `root` as child block `blknum` if that is the next child block, else reverts.
    function _commitNext(uint256 blknum, bytes32 root, uint64 timestamp) private {
        if (root == bytes32(0)) revert FrameworkZeroRoot();
        // `blknum` is the next child block iff it is a multiple of the interval, its predecessor is
        // committed (the first block: the chain has started) and it is not (invariant C above).
        bool next = blknum % CHILD_BLOCK_INTERVAL == 0 && blknum != 0
            && (blknum == CHILD_BLOCK_INTERVAL
                    ? standardExitGame != address(0)
                    : blockCommitments[blknum - CHILD_BLOCK_INTERVAL] != bytes32(0))
            && blockCommitments[blknum] == bytes32(0);
        if (!next) {
            if (standardExitGame == address(0)) revert FrameworkNotStarted();
            revert FrameworkUnexpectedBlockNumber(blknum, nextChildBlock());
        }
        blockCommitments[blknum] = BlockCommitment.commit(root, timestamp);
        emit BlockSubmitted(blknum, root, timestamp);
    }

    /// @notice The number the next child block will get (spec: POS-3, OP-4).
    /// @dev Searched from the deposits' hint: O(log of the blocks since the last deposit) reads.
    function nextChildBlock() public view returns (uint64) {
        return _nextChild(_childHint);
    }

    /// @dev The smallest multiple of CHILD_BLOCK_INTERVAL at or above `hint` with no commitment: the
    /// next child block, by invariant (C) and `hint` at most that number. Gallops up (one read if
    /// no block came since the hint, two if one did) and then bisects.
    function _nextChild(uint256 n) private view returns (uint64) {
        if (blockCommitments[n] == bytes32(0)) return SafeCast.toUint64(n);
        uint256 step = CHILD_BLOCK_INTERVAL;
        while (blockCommitments[n + step] != bytes32(0)) {
            n += step;
            step <<= 1;
        }
        // `n` is committed, `hi` is not, and `hi - n` is a multiple of the interval.
        uint256 hi = n + step;
        while (hi - n > CHILD_BLOCK_INTERVAL) {
            uint256 half = (hi - n) / 2; // at least one interval: n < mid < hi
            uint256 mid = n + half - half % CHILD_BLOCK_INTERVAL;
            if (blockCommitments[mid] != bytes32(0)) n = mid;
            else hi = mid;
        }
        return SafeCast.toUint64(hi);
    }

    /// @dev The next child block and the next deposit offset after the one before it: the stored
    /// offset if no child block came since the last deposit, else 1 (no deposit followed it yet).
    function _depositSlot() private view returns (uint64 next, uint32 offset) {
        uint64 hint = _childHint;
        next = _nextChild(hint);
        offset = next == hint ? _nextDepositBlock : 1;
    }

    // ---------------------------------------------------------------- deposits

    /// @notice Deposits ETH: `depositTx` must be a deposit transaction with one output owned by the
    /// sender, token address(0); `msg.value` is its amount plus at least `depositFee()`, which is
    /// zero for the first 500 deposits after each child block (spec: LEDGER-7, BOND-2).
    /// @dev Emits `DepositCreated`; any ETH sent beyond amount plus fee is credited back to the
    /// sender (`Credited`). The deposit block's root is computed here, so a deposit block holds
    /// exactly this transaction.
    /// @param depositTx `abi.encode` of the deposit transaction (spec: ENC-1).
    function depositEth(bytes calldata depositTx) external payable nonReentrant started {
        PlasmaTx.Output memory out = _checkDeposit(depositTx);
        if (out.token != address(0)) revert FrameworkDepositTokenMismatch(out.token);
        if (msg.value < out.amount) revert FrameworkDepositAmountMismatch(out.amount, msg.value);
        _chargeDepositFee(msg.value - out.amount);
        _createDeposit(out, depositTx);
    }

    /// @notice Deposits an ERC-20 token the sender approved beforehand (spec: LEDGER-7). `msg.value`
    /// carries the deposit fee in ETH (`depositFee()`, zero for the first 500 deposits after each
    /// child block; spec: BOND-2).
    /// @dev Emits `DepositCreated`; ETH sent beyond the fee is credited back (`Credited`). Pulls with
    /// SafeERC20 (tokens that return nothing work) and checks the balance moved by exactly the
    /// declared amount, refusing fee-on-transfer tokens.
    /// @param depositTx `abi.encode` of the deposit transaction (spec: ENC-1).
    function depositErc20(bytes calldata depositTx) external payable nonReentrant started {
        PlasmaTx.Output memory out = _checkDeposit(depositTx);
        if (out.token == address(0)) revert FrameworkDepositTokenMismatch(out.token);
        _chargeDepositFee(msg.value);
        IERC20 token = IERC20(out.token);
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), out.amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != out.amount) revert FrameworkTokenTransferMismatch(out.amount, received);
        _createDeposit(out, depositTx);
    }

    /// @dev A deposit in its canonical layout is read from calldata (`PlasmaTx.decodeDeposit`); anything
    /// else is decoded in full, which accepts or refuses it exactly as before (issue 19).
    function _checkDeposit(bytes calldata depositTx) private view returns (PlasmaTx.Output memory out) {
        bool ok;
        (ok, out) = PlasmaTx.decodeDeposit(depositTx);
        if (!ok) {
            PlasmaTx.Transaction memory t = PlasmaTx.decodeValid(depositTx);
            if (t.txType != PlasmaTx.TYPE_DEPOSIT) revert FrameworkNotADeposit(t.txType);
            out = t.outputs[0];
        }
        if (out.owner != msg.sender) revert FrameworkDepositOwnerMismatch(out.owner, msg.sender);
    }

    /// @notice The offset of the next deposit block after the last child block (1..999): the next
    /// deposit gets block number `nextChildBlock - CHILD_BLOCK_INTERVAL + nextDepositBlock()`.
    function nextDepositBlock() external view returns (uint64) {
        (, uint32 offset) = _depositSlot();
        return offset;
    }

    /// @notice The fee the next deposit pays, in ETH (spec: BOND-2): zero for the first
    /// `FREE_DEPOSIT_SLOTS` deposit blocks after a child block, then `DEPOSIT_BASE_FEE`, doubling
    /// every `DEPOSIT_FEE_DOUBLING` slots. Honest traffic stays in the free slots; filling all 999
    /// to lock deposits out until the next child block burns about 50.6 ether of fees.
    function depositFee() public view returns (uint256) {
        (, uint64 slot) = _depositSlot();
        if (slot <= FREE_DEPOSIT_SLOTS) return 0;
        return DEPOSIT_BASE_FEE << ((slot - FREE_DEPOSIT_SLOTS - 1) / DEPOSIT_FEE_DOUBLING);
    }

    /// @dev Takes the deposit fee out of `offered` (ETH beyond the deposit itself) and credits the
    /// rest back. The fee is burned: it stays in the framework outside every account and outside
    /// the vault's deposit accounting, so nobody (the operator included) can recover it.
    function _chargeDepositFee(uint256 offered) private {
        uint256 fee = depositFee();
        if (offered < fee) revert FrameworkDepositFeeTooLow(fee, offered);
        uint256 excess = offered - fee;
        if (excess != 0) {
            withdrawable[msg.sender][address(0)] += excess;
            emit Credited(msg.sender, address(0), excess);
        }
    }

    function _createDeposit(PlasmaTx.Output memory out, bytes calldata depositTx) private {
        (uint64 next, uint32 offset) = _depositSlot();
        if (offset >= CHILD_BLOCK_INTERVAL) revert FrameworkDepositBlocksExhausted(next);
        uint256 blknum = next - CHILD_BLOCK_INTERVAL + offset;
        (_childHint, _nextDepositBlock) = (next, offset + 1);
        // Never reached while invariant (C) holds; it guards the numbering against ever overwriting a
        // committed block, at no gas (the SLOAD warms the slot the SSTORE below writes).
        if (blockCommitments[blknum] != bytes32(0)) revert FrameworkDepositBlocksExhausted(next);
        uint64 timestamp = uint64(block.timestamp);
        blockCommitments[blknum] = BlockCommitment.commit(Merkle.depositRoot(depositTx), timestamp);
        (uint256 deposited, uint256 credited) = _vault(out.token);
        if (out.amount > MAX_TOTAL_DEPOSITED - deposited) {
            revert FrameworkDepositCapExceeded(out.token, deposited, out.amount);
        }
        _setVault(out.token, deposited + out.amount, credited);
        emit DepositCreated(out.owner, blknum, out.token, out.amount, timestamp, depositTx);
    }

    // ---------------------------------------------------------------- exit queues

    /// @inheritdoc IPlasmaFramework
    /// @dev Exit games only; emits `ExitQueued`.
    function enqueue(address token, uint64 exitableAt, uint256 position, uint256 exitId, bool flaggedNonce)
        external
        onlyExitGame
        returns (uint256 priority)
    {
        uint64 nonce = exitCount++;
        if (msg.sender == batchExitGame) nonce |= FLAG_BATCH;
        if (flaggedNonce) {
            nonce |= FLAG_NONCE;
            flaggedExitIds[nonce] = exitId;
        }
        priority = ExitPriority.pack(exitableAt, position, nonce);
        // An exit due one period from now (an old output's, a deposit's) comes in priority order
        // and joins the old run; a young output's, due later, the young run (`ExitQueue`, EXIT-3).
        queues[token].insert(priority, exitableAt <= block.timestamp + minExitPeriod);
        emit ExitQueued(token, msg.sender, exitId, priority);
    }

    /// @notice The head of `token`'s queue (0 if empty) and the queue's length.
    function queueHead(address token) external view returns (uint256 head, uint256 length) {
        length = queues[token].length();
        ExitQueue.Part part; // where the head is kept: only `processExits` needs it, to remove it
        (head, part) = queues[token].peek();
    }

    /// @notice Settles up to `maxExits` due exits of `token`, in priority order (spec: EXIT-5).
    /// @dev Stops at the first exit not yet exitable. Payments are credits (pull payments), so no
    /// recipient can block the queue. `topPriority` (0 = any) makes the call revert instead of
    /// processing other exits if someone else processed the intended head first. Each settled exit
    /// pays the caller a bounty from its bond. Emits `ExitsProcessed`.
    /// @param token The queue.
    /// @param topPriority The priority the caller expects at the head, or 0.
    /// @param maxExits Upper bound on exits settled in this call (bounds its gas).
    function processExits(address token, uint256 topPriority, uint256 maxExits) external nonReentrant {
        if (maxExits == 0) revert FrameworkZeroMaxExits();
        ExitQueue.Queue storage queue = queues[token];
        (uint256 head, ExitQueue.Part part) = queue.peek();
        if (topPriority != 0 && head != topPriority) revert FrameworkQueueHeadChanged(topPriority, head);
        if (head == 0 || ExitPriority.exitableAt(head) > block.timestamp) revert FrameworkNoExitDue(token, head);
        uint256 priority = head;
        uint256 count;
        while (true) {
            queue.pop(part);
            uint64 nonce = ExitPriority.nonce(priority);
            address game;
            uint256 exitId;
            if (nonce & FLAG_NONCE != 0) {
                game = nonce & FLAG_BATCH != 0 ? batchExitGame : inFlightExitGame;
                exitId = flaggedExitIds[nonce];
                delete flaggedExitIds[nonce];
            } else {
                game = nonce & FLAG_BATCH != 0 ? batchExitGame : standardExitGame;
                exitId = ExitPriority.position(priority);
            }
            IExitGame(game).processExit(exitId, token, msg.sender);
            if (++count == maxExits) break;
            // The next head is read after the game's call and removed before the next one, with
            // nothing between: whatever the call did, what is removed is the head `peek` gave.
            (priority, part) = queue.peek();
            if (priority == 0 || ExitPriority.exitableAt(priority) > block.timestamp) break;
        }
        // The standard exits' bounties, summed by `settleStandardExit` (only ever called from the
        // `processExit` calls above: the standard game calls it only there, and only this function
        // calls that), credited in one write. Cleared for a later call in the same transaction.
        uint256 bounty;
        assembly ("memory-safe") {
            bounty := tload(BOUNTY_SLOT)
        }
        if (bounty != 0) {
            assembly ("memory-safe") {
                tstore(BOUNTY_SLOT, 0)
            }
            withdrawable[msg.sender][address(0)] += bounty;
        }
        emit ExitsProcessed(token, msg.sender, count, bounty);
    }

    // ---------------------------------------------------------------- settlement book

    /// @inheritdoc IPlasmaFramework
    /// @dev The book of OUT-2 is kept in two places: this contract's set, and the standard game's
    /// settled exit records (a settled standard exit writes no slot here, issue 19). An output is
    /// finalized when either says so; every path that could pay an output (a standard exit's start
    /// and settlement, the in-flight game's piggybacks and settlement, the batch game's strikes and
    /// payouts) asks through this function or `finalizeOutputs`, which read both.
    function isOutputFinalized(bytes32 outputId) public view returns (bool) {
        if (_finalized[outputId]) return true;
        address standard = standardExitGame;
        return standard != address(0) && IStandardExitGame(standard).isOutputSettled(outputId);
    }

    /// @inheritdoc IPlasmaFramework
    /// @dev Exit games only; emits `OutputFinalized` for each newly finalized output. An output the
    /// standard game settled counts as finalized before (OUT-2, see `isOutputFinalized`).
    function finalizeOutputs(bytes32[] calldata outputIds) external onlyExitGame returns (uint256 alreadyFinalized) {
        for (uint256 i = 0; i < outputIds.length; ++i) {
            bytes32 id = outputIds[i];
            if (isOutputFinalized(id)) {
                // forge-lint: disable-next-line(incorrect-shift)
                alreadyFinalized |= 1 << i; // bit i = output i
            } else {
                _finalized[id] = true;
                emit OutputFinalized(id);
            }
        }
    }

    /// @inheritdoc IPlasmaFramework
    /// @dev Standard game only, which has marked the exit settled before calling (its record is then
    /// the output's finalized mark, OUT-2), so only this contract's half of the book is read here.
    /// Emits `StandardExitPaid` (with `CreditShortfall` and `DebtRecorded` before it when capped), or
    /// for a void exit `Credited` (the bond's owner) and `StandardExitVoided`. The bounty is added to
    /// the running `processExits`' sum (see there): it is paid to that call's sender, the processor.
    function settleStandardExit(
        bytes32 outputId,
        address token,
        address owner,
        uint256 amount,
        address bondOwner,
        uint256 bounty
    ) external payable {
        if (msg.sender != standardExitGame) revert FrameworkNotExitGame(msg.sender);
        uint256 bond = msg.value;
        if (_finalized[outputId]) {
            // Finalized by an in-flight exit or a batch payout first: the exit is void, not dishonest.
            _creditEth(bondOwner, bond);
            emit StandardExitVoided(outputId);
            return;
        }
        // The same credits as `_credit` and `_creditEth`, told by one event instead of their
        // `Credited` (see `StandardExitPaid`).
        uint256 paid = _take(token, owner, 0, amount);
        if (paid != 0) withdrawable[owner][token] += paid;
        uint256 refund = bond - bounty; // checked: a bounty above the bond reverts
        if (refund != 0) withdrawable[bondOwner][address(0)] += refund;
        if (bounty != 0) {
            assembly ("memory-safe") {
                // No overflow: the sum is of bonds paid into this transaction, far below 2^256.
                tstore(BOUNTY_SLOT, add(tload(BOUNTY_SLOT), bounty))
            }
        }
        emit StandardExitPaid(outputId, owner, token, paid, bondOwner, refund);
    }

    /// @dev Credits `amount` ETH that arrived with the call (bonds) to `account`, if not zero.
    function _creditEth(address account, uint256 amount) private {
        if (amount == 0) return;
        withdrawable[account][address(0)] += amount;
        emit Credited(account, address(0), amount);
    }

    /// @inheritdoc IPlasmaFramework
    /// @dev Exit games only; emits `Credited`, and `CreditShortfall` and `DebtRecorded` when capped.
    /// Never credits more than is left of the token's deposits: the vault cannot overpay. It caps
    /// rather than reverts so that an exit from an invalid block, processed after honest owners
    /// emptied the vault, cannot block the queue behind it (spec: EXIT-5); the unpaid part becomes a
    /// debt, repaid in processing order from money released later (spec: EXIT-16).
    function credit(address token, address account, uint256 amount) external onlyExitGame {
        _credit(token, account, amount);
    }

    function _credit(address token, address account, uint256 amount) private {
        uint256 paid = _take(token, account, 0, amount);
        if (paid == 0) return;
        withdrawable[account][token] += paid;
        emit Credited(account, token, paid);
    }

    /// @inheritdoc IPlasmaFramework
    /// @dev Batch game only; emits `CreditShortfall` (with the batch game as account) and
    /// `DebtRecorded` when capped. The reserved amount counts as credited: it leaves the vault's free
    /// balance at the batch's priority, exactly as if its claims had been credited one by one there
    /// (spec: EXIT-14); the unreserved part is the batch's debt (spec: EXIT-16).
    function reserve(address token, uint256 amount, uint256 batchId) external onlyBatchGame returns (uint256 reserved) {
        reserved = _take(token, msg.sender, batchId, amount);
    }

    /// @dev Takes up to `amount` from what is left of the token's deposits; the rest becomes a debt at
    /// the tail of the token's debts (spec: EXIT-16). The debt is of at most `MAX_TOTAL_DEPOSITED`
    /// less what was paid: an output of an invalid block may claim up to 2^256 - 1, but no credit can
    /// ever be paid more than the token's lifetime deposits, so the cut loses nothing, and it keeps
    /// `outstanding` from overflowing — fewer than 2^128 debts (`tail` is a uint128) of less than
    /// 2^128 each — which would make this exit's settlement revert, and with it every
    /// `processExits` of the token: its queue frozen behind the attacker's exit. (`paid` is at most
    /// what is left, itself at most `MAX_TOTAL_DEPOSITED`, so the cut never goes below it.)
    function _take(address token, address account, uint256 batchId, uint256 amount) private returns (uint256 paid) {
        (uint256 deposited, uint256 credited) = _vault(token);
        uint256 left = deposited - credited;
        paid = amount < left ? amount : left;
        if (paid != 0) _setVault(token, deposited, credited + paid);
        if (paid < amount) {
            // Only a credit not paid in full can owe more than the cap: a credit paid in full pays
            // nothing for the cut. Zero only when the whole cap was left and paid.
            uint256 shortfall = (amount < MAX_TOTAL_DEPOSITED ? amount : MAX_TOTAL_DEPOSITED) - paid;
            if (shortfall == 0) return paid;
            DebtBook storage d = _debts[token];
            uint256 index = d.tail++;
            d.at[index] = Debt(account, SafeCast.toUint96(batchId), shortfall);
            d.outstanding += shortfall;
            emit CreditShortfall(account, token, shortfall);
            emit DebtRecorded(token, index, account, batchId, shortfall);
        }
    }

    /// @inheritdoc IPlasmaFramework
    /// @dev Batch game only. The batch game releases only what it reserved and did not credit (a
    /// struck or void claim's share, spec: EXIT-15). With no debt outstanding the amount is free at
    /// once (the checked subtraction makes an over-release revert); otherwise it goes to the debt pool
    /// (`DebtPoolFunded`), which only the oldest debts may take (spec: EXIT-16): money a fake claim
    /// held back from the exits processed behind it goes back to them, not to whoever exits next.
    function release(address token, uint256 amount) external onlyBatchGame {
        DebtBook storage d = _debts[token];
        if (d.head == d.tail) {
            (uint256 deposited, uint256 credited) = _vault(token);
            _setVault(token, deposited, credited - amount);
        } else {
            uint256 pool = d.pool + amount;
            d.pool = pool;
            emit DebtPoolFunded(token, amount, pool);
        }
    }

    /// @notice Pays up to `maxDebts` of the oldest debts of `token` from its debt pool, oldest first
    /// (spec: EXIT-16). Anyone may call it. A credit's debt is credited to its account; a batch's debt
    /// tops up its reserve (`reserveRepaid`), which takes only what the batch's live claims still
    /// need and closes the debt if that is less. A debt the pool cannot cover is paid in part.
    /// When no debt is left, what remains of the pool is freed for new credits.
    /// @dev Emits `DebtPaid` per debt paid and `Credited` per credit. Reverts
    /// `FrameworkNoDebtPayable` if there is nothing to pay or nothing to pay with.
    /// @param token The token, address(0) for ETH.
    /// @param maxDebts Upper bound on the debts paid (bounds the call's gas).
    /// @return paidDebts How many debts were paid (in whole or in part).
    function settleDebts(address token, uint256 maxDebts) external nonReentrant returns (uint256 paidDebts) {
        DebtBook storage d = _debts[token];
        uint256 head = d.head;
        uint256 tail = d.tail;
        uint256 pool = d.pool;
        if (head == tail || pool == 0) revert FrameworkNoDebtPayable(token, tail - head, pool);
        uint256 settled; // debt amounts closed or paid
        while (paidDebts < maxDebts && head < tail && pool != 0) {
            Debt storage debt = d.at[head];
            uint256 owed = debt.amount;
            uint256 pay = owed < pool ? owed : pool;
            uint256 left = owed - pay;
            if (debt.batchId != 0) {
                uint256 excess = IBatchExitGame(batchExitGame).reserveRepaid(debt.batchId, pay);
                // The batch needs no more: what it did not take stays in the pool, the debt is closed.
                if (excess != 0) (pay, left) = (pay - excess, 0);
            } else {
                address account = debt.account;
                withdrawable[account][token] += pay;
                emit Credited(account, token, pay);
            }
            pool -= pay;
            settled += owed - left;
            emit DebtPaid(token, head, pay, left);
            if (left == 0) {
                delete d.at[head];
                ++head;
            } else {
                debt.amount = left;
            }
            ++paidDebts;
        }
        d.outstanding -= settled;
        if (head == tail && pool != 0) {
            (uint256 deposited, uint256 credited) = _vault(token);
            _setVault(token, deposited, credited - pool); // the debts ended: the rest is free again
            pool = 0;
        }
        // Indices are below 2^128: one debt per processed exit.
        // forge-lint: disable-next-line(unsafe-typecast)
        d.head = uint128(head);
        d.pool = pool;
    }

    /// @inheritdoc IPlasmaFramework
    /// @dev Batch game only; emits `Credited`. Does not touch `totalCredited`: the amount was
    /// counted when it was reserved.
    function creditReserved(address token, address account, uint256 amount) external onlyBatchGame {
        withdrawable[account][token] += amount;
        emit Credited(account, token, amount);
    }

    /// @inheritdoc IPlasmaFramework
    /// @dev Exit games only; emits `Credited` per non-zero amount. Bond money arrives with the call and
    /// never mixes with the vault's deposit accounting.
    function creditBonds(address a, uint256 amountA, address b, uint256 amountB) external payable onlyExitGame {
        if (msg.value != amountA + amountB) revert FrameworkBondValueMismatch(msg.value, amountA + amountB);
        _creditEth(a, amountA);
        _creditEth(b, amountB);
    }

    /// @notice Withdraws everything credited to the sender in `token` (exits paid, bonds returned,
    /// bounties).
    /// @dev Checks-effects-interactions and `nonReentrant`; emits `Withdrawn`. A failing ETH recipient
    /// only fails its own withdrawal.
    /// @param token The token, address(0) for ETH.
    function withdraw(address token) external nonReentrant {
        uint256 amount = withdrawable[msg.sender][token];
        if (amount == 0) revert FrameworkNothingToWithdraw(msg.sender, token);
        withdrawable[msg.sender][token] = 0;
        emit Withdrawn(msg.sender, token, amount);
        if (token == address(0)) {
            (bool ok,) = msg.sender.call{value: amount}("");
            if (!ok) revert FrameworkEthTransferFailed(msg.sender, amount);
        } else {
            IERC20(token).safeTransfer(msg.sender, amount);
        }
    }

    // ---------------------------------------------------------------- views

    /// @notice Amount deposited per token: the vault's lifetime inflow (spec: LEDGER-7).
    /// @param token The token, address(0) for ETH.
    function totalDeposited(address token) external view returns (uint256 deposited) {
        (deposited,) = _vault(token);
    }

    /// @notice Amount credited to exits per token, reserved for batches, or returned to the debt pool;
    /// never exceeds `totalDeposited`.
    /// @param token The token, address(0) for ETH.
    function totalCredited(address token) external view returns (uint256 credited) {
        (, credited) = _vault(token);
    }

    /// @dev The real totals of `token`'s vault slot (see `_vaults`): each field less its offset of one,
    /// or both zero for a slot never written.
    function _vault(address token) private view returns (uint256 deposited, uint256 credited) {
        uint256 v = _vaults[token];
        if (v == 0) return (0, 0);
        unchecked {
            // A written slot holds both fields at least 1 (`_setVault`), so neither subtraction wraps.
            return ((v & type(uint128).max) - 1, (v >> 128) - 1);
        }
    }

    /// @dev Writes `token`'s totals, each plus one (see `_vaults`). `deposited` is at most
    /// `MAX_TOTAL_DEPOSITED` (checked by the deposit) and `credited` never exceeds it (`_take` caps),
    /// so both fit their 128 bits; the casts check it anyway.
    function _setVault(address token, uint256 deposited, uint256 credited) private {
        _vaults[token] = (uint256(SafeCast.toUint128(credited + 1)) << 128) | SafeCast.toUint128(deposited + 1);
    }

    /// @inheritdoc IPlasmaFramework
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice `token`'s debts (spec: EXIT-16): the oldest outstanding index (`head`), the next index
    /// (`tail`; `tail - head` debts are outstanding), their sum (an upper bound: a batch may need less
    /// than its debt), and the pool of released money waiting for `settleDebts`.
    /// @param token The token, address(0) for ETH.
    function debtBook(address token)
        external
        view
        returns (uint256 head, uint256 tail, uint256 outstanding, uint256 pool)
    {
        DebtBook storage d = _debts[token];
        return (d.head, d.tail, d.outstanding, d.pool);
    }

    /// @notice Debt `index` of `token` (zero once closed).
    /// @param token The token, address(0) for ETH.
    /// @param index The debt's index (`DebtRecorded`).
    function debtAt(address token, uint256 index) external view returns (Debt memory) {
        return _debts[token].at[index];
    }
}
