// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {StandardExitGame} from "../contracts/exits/StandardExitGame.sol";
import {IExitGame} from "../contracts/interfaces/IExitGame.sol";
import {ExitPriority} from "../contracts/libraries/ExitPriority.sol";
import {PlasmaTx} from "../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../contracts/libraries/UtxoPosLib.sol";
import {PlasmaFixtures} from "./utils/PlasmaFixtures.sol";
import {Vm} from "./utils/Vm.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @dev Bound in the in-flight game's slot: a game whose queue entries the framework dispatches by
/// a looked-up id (flagged nonce), and which records the order it is asked to settle them. It can
/// also queue new entries from inside `processExit`, which no real game does: it checks that the
/// framework's loop stays exact even if the queue changes under it (defense in depth).
contract RecordingGame is IExitGame {
    struct Later {
        address token;
        uint64 exitableAt;
        uint256 position;
        uint256 exitId;
    }

    PlasmaFramework internal immutable framework;
    uint256[] internal _processed;
    mapping(uint256 exitId => Later[]) internal _onProcess;

    constructor(PlasmaFramework framework_) {
        framework = framework_;
    }

    function enqueue(address token, uint64 exitableAt, uint256 position, uint256 exitId) external returns (uint256) {
        return framework.enqueue(token, exitableAt, position, exitId, true);
    }

    /// @notice When `trigger` is settled, queue this entry from inside `processExit`.
    function enqueueWhenProcessed(uint256 trigger, address token, uint64 exitableAt, uint256 position, uint256 exitId)
        external
    {
        _onProcess[trigger].push(Later(token, exitableAt, position, exitId));
    }

    function processExit(uint256 exitId, address, address) external {
        require(msg.sender == address(framework), "framework only");
        _processed.push(exitId);
        Later[] storage later = _onProcess[exitId];
        for (uint256 i = 0; i < later.length; ++i) {
            Later storage l = later[i];
            framework.enqueue(l.token, l.exitableAt, l.position, l.exitId, true);
        }
    }

    function processed() external view returns (uint256[] memory) {
        return _processed;
    }
}

/// @dev An account that is a contract: it deposits and exits through `exec`, and on receiving ETH
/// accepts it, reverts, burns all gas, or tries to reenter the framework.
contract Actor {
    enum Mode {
        Accept,
        Revert,
        BurnGas,
        Reenter
    }

    PlasmaFramework internal immutable framework;
    Mode public mode;
    uint256 public received;
    bytes public reenterWithdrawError;
    bytes public reenterProcessError;

    constructor(PlasmaFramework framework_) {
        framework = framework_;
    }

    function setMode(Mode m) external {
        mode = m;
    }

    /// @notice Calls `target` with `value` of this contract's ETH, bubbling any revert.
    function exec(address target, uint256 value, bytes calldata data) external returns (bytes memory ret) {
        bool ok;
        (ok, ret) = target.call{value: value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
    }

    receive() external payable {
        Mode m = mode;
        if (m == Mode.Revert) revert("Actor: no ETH");
        if (m == Mode.BurnGas) {
            uint256 spin;
            while (gasleft() > 0) {
                ++spin;
            }
        }
        if (m == Mode.Reenter) {
            try framework.withdraw(address(0)) {}
            catch (bytes memory err) {
                reenterWithdrawError = err;
            }
            try framework.processExits(address(0), 0, 10) {}
            catch (bytes memory err) {
                reenterProcessError = err;
            }
        }
        received += msg.value;
    }
}

/// @dev An ERC-20 that turns hostile after deposits: every call reverts, or transfers return false
/// without moving anything, or a transfer out of the vault first tries to reenter the framework.
contract HostileToken {
    enum Mode {
        Normal,
        Revert,
        ReturnFalse,
        Reenter
    }

    error HostileTokenRefuses();

    Mode public mode;
    PlasmaFramework public framework;
    mapping(address account => uint256) internal _balances;
    mapping(address owner => mapping(address spender => uint256)) public allowance;
    bytes public reenterWithdrawError;
    bytes public reenterProcessError;

    function setFramework(PlasmaFramework framework_) external {
        framework = framework_;
    }

    function setMode(Mode m) external {
        mode = m;
    }

    function mint(address to, uint256 amount) external {
        _balances[to] += amount;
    }

    function balanceOf(address account) external view returns (uint256) {
        if (mode == Mode.Revert) revert HostileTokenRefuses();
        return _balances[account];
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        if (mode == Mode.Revert) revert HostileTokenRefuses();
        if (mode == Mode.ReturnFalse) return false;
        allowance[from][msg.sender] -= amount;
        _balances[from] -= amount;
        _balances[to] += amount;
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        Mode m = mode;
        if (m == Mode.Revert) revert HostileTokenRefuses();
        if (m == Mode.ReturnFalse) return false;
        if (m == Mode.Reenter) {
            try framework.withdraw(address(this)) {}
            catch (bytes memory err) {
                reenterWithdrawError = err;
            }
            try framework.processExits(address(0), 0, 10) {}
            catch (bytes memory err) {
                reenterProcessError = err;
            }
        }
        _balances[msg.sender] -= amount;
        _balances[to] += amount;
        return true;
    }
}

/// @dev A keeper that calls `processExits` several times in one transaction (the transient bounty sum
/// must be credited once per call and cleared between calls).
contract ProcessorPair {
    bytes public thirdError;

    function run(PlasmaFramework framework, address token, uint256 k1, uint256 k2) external {
        framework.processExits(token, 0, k1);
        framework.processExits(token, 0, k2);
        try framework.processExits(token, 0, 1) {}
        catch (bytes memory err) {
            thirdError = err;
        }
    }

    function withdraw(PlasmaFramework framework) external {
        framework.withdraw(address(0));
    }

    receive() external payable {}
}

/// @notice Attacks on the exit queues and on settlement (spec: EXIT-2, EXIT-3, EXIT-5, EXIT-16, BOND-1):
/// each test is an attack on honest users' money, on the queue's order or on `processExits`, and
/// asserts what stops it.
contract ExitQueueAdversarialTest is PlasmaFixtures {
    uint256 internal constant BOUNTY = SE_BOND / 2;
    uint256 internal constant REFUND = SE_BOND - BOUNTY;

    RecordingGame internal rec;
    address internal keeper;

    /// @dev Which exit (index + 1 in the model, or position + 1 elsewhere) an output id belongs to.
    mapping(bytes32 outputId => uint256) internal _tagOf;

    // ---------------------------------------------------------------- the reference model's state

    struct ModelExit {
        uint64 exitableAt;
        uint256 pos;
        address owner;
        uint256 amount;
        bool settled;
    }

    struct Unstarted {
        uint256 pos;
        bytes txBytes;
        address owner;
        uint256 amount;
        bool deposit;
    }

    ModelExit[] internal _model;
    Unstarted[] internal _unstarted;

    function _deployInFlightGame() internal override returns (address) {
        rec = new RecordingGame(framework);
        return address(rec);
    }

    function setUp() public override {
        super.setUp();
        (keeper,) = makeAccount("keeper");
        vm.deal(keeper, 1000 ether);
    }

    // ---------------------------------------------------------------- helpers

    function _outputId(uint256 pos, bytes memory txBytes) internal pure returns (bytes32) {
        PlasmaTx.Transaction memory t = abi.decode(txBytes, (PlasmaTx.Transaction));
        return PlasmaTx.outputId(keccak256(txBytes), t.inputs.length != 0, UtxoPosLib.outputIndex(pos), pos);
    }

    /// @dev Starts `who`'s exit of the output at `pos` and tags its output id with the position.
    function _exit(address who, uint256 pos, bytes memory txBytes) internal {
        StandardExitGame.StartArgs memory args = _startArgs(pos, txBytes);
        vm.prank(who);
        seGame.startStandardExit{value: SE_BOND}(args);
        _tagOf[_outputId(pos, txBytes)] = pos + 1;
    }

    function _depositAndExit(address who, uint256 amount) internal returns (uint256 pos, bytes memory txBytes) {
        (pos, txBytes) = _depositEth(who, amount);
        _exit(who, pos, txBytes);
    }

    function _depositToken(address owner, address token, uint256 amount)
        internal
        returns (uint256 pos, bytes memory txBytes)
    {
        txBytes = _depositTx(owner, token, amount);
        uint256 blknum = framework.nextChildBlock() - framework.CHILD_BLOCK_INTERVAL() + framework.nextDepositBlock();
        vm.prank(owner);
        framework.depositErc20(txBytes);
        blockTimestamp[blknum] = uint64(block.timestamp);
        pos = UtxoPosLib.pack(blknum, 0, 0);
    }

    /// @dev `challenger` challenges the exit at `pos` with a spend its owner (key `ownerKey`) signed.
    function _challenge(address challenger, uint256 pos, uint256 ownerKey, uint256 amount) internal {
        bytes memory spend = _pay1(pos, carol, address(0), amount);
        bytes memory sig = _signTx(ownerKey, spend);
        vm.prank(challenger);
        seGame.challengeStandardExit(pos, spend, 0, sig);
    }

    /// @dev The tags of the standard exits paid, in the order of the recorded `StandardExitPaid` logs.
    function _paidTags() internal view returns (uint256[] memory tags) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        tags = new uint256[](logs.length);
        uint256 n;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(framework)) continue;
            if (logs[i].topics[0] != PlasmaFramework.StandardExitPaid.selector) continue;
            uint256 tag = _tagOf[logs[i].topics[1]];
            assertTrue(tag != 0, "a paid exit the test did not start");
            tags[n++] = tag - 1;
        }
        assembly ("memory-safe") {
            mstore(tags, n)
        }
    }

    function _queueLength(address token) internal view returns (uint256 length) {
        (, length) = framework.queueHead(token);
    }

    function _head(address token) internal view returns (uint256 head) {
        (head,) = framework.queueHead(token);
    }

    function _status(uint256 pos) internal view returns (StandardExitGame.Status status) {
        (,, status,,,,,) = seGame.exits(pos);
    }

    // ---------------------------------------------------------------- ordering

    /// @dev Attack: queue exits in a scrambled order within one second (all due at the same time) to
    /// jump older outputs. Every key has the same exitable time, so the position alone orders them
    /// (EXIT-3): some go to the old run, the rest to the heap, and they leave in position order in
    /// calls of any size, each owner paid exactly once.
    function test_EqualExitableTimesSettleByPositionWhateverTheArrivalOrder() public {
        uint256 n = 24;
        uint256[] memory pos = new uint256[](n);
        bytes[] memory txs = new bytes[](n);
        address[3] memory owners = [alice, bob, carol];
        for (uint256 i = 0; i < n; ++i) {
            (pos[i], txs[i]) = _depositEth(owners[i % 3], 1 ether + i);
        }
        for (uint256 i = 0; i < n; ++i) {
            uint256 j = (i * 7 + 3) % n; // 7 is coprime with 24: a permutation, neither sorted nor reversed
            _exit(owners[j % 3], pos[j], txs[j]);
        }
        (uint256 head, uint256 length) = framework.queueHead(address(0));
        assertEq(length, n);
        assertEq(ExitPriority.position(head), pos[0], "the oldest output is the head");
        assertEq(ExitPriority.exitableAt(head), block.timestamp + PERIOD);

        skip(PERIOD);
        uint256 next;
        uint256[5] memory chunks = [uint256(1), 5, 2, 7, 100];
        for (uint256 c = 0; next < n; ++c) {
            vm.recordLogs();
            vm.prank(keeper);
            framework.processExits(address(0), 0, chunks[c]);
            uint256[] memory paid = _paidTags();
            for (uint256 k = 0; k < paid.length; ++k) {
                assertEq(paid[k], pos[next + k], "settled in position order");
            }
            next += paid.length;
        }
        assertEq(_queueLength(address(0)), 0);
        uint256[3] memory expected;
        for (uint256 i = 0; i < n; ++i) {
            expected[i % 3] += 1 ether + i + REFUND;
        }
        for (uint256 o = 0; o < 3; ++o) {
            assertEq(framework.withdrawable(owners[o], address(0)), expected[o], "each paid once");
        }
        assertEq(framework.withdrawable(keeper, address(0)), n * BOUNTY);
    }

    /// @dev Attack: mallory queues dishonest exits at the head and inside the heap, is challenged, and
    /// hopes the dead entries stall or misdirect settlement. Challenged entries stay queued but are
    /// skipped: no payout, no bounty (their bond is gone: half to the challenger, half burned), they
    /// count toward `maxExits`, and the honest exits around them are paid in order.
    function test_ChallengedExitsAtTheHeadAndInsideTheHeapAreSkipped() public {
        (uint256 m1, bytes memory m1Tx) = _depositEth(mallory, 7 ether);
        (uint256 a, bytes memory aTx) = _depositEth(alice, 1 ether);
        (uint256 m2, bytes memory m2Tx) = _depositEth(mallory, 8 ether);
        (uint256 b, bytes memory bTx) = _depositEth(bob, 2 ether);
        (uint256 c, bytes memory cTx) = _depositEth(carol, 3 ether);
        // b and c start the old run; m1, a and m2 are older than its last key: they go to the heap.
        _exit(bob, b, bTx);
        _exit(carol, c, cTx);
        _exit(mallory, m1, m1Tx);
        _exit(alice, a, aTx);
        _exit(mallory, m2, m2Tx);
        assertEq(ExitPriority.position(_head(address(0))), m1, "mallory's first exit is the head");

        _challenge(bob, m1, malloryKey, 7 ether); // the head
        _challenge(bob, m2, malloryKey, 8 ether); // inside the heap
        assertEq(_queueLength(address(0)), 5, "challenged entries stay queued");

        skip(PERIOD);
        // maxExits 2: the dead head and alice's exit; the dead entry counts, pays no bounty.
        vm.expectEmit(address(framework));
        emit PlasmaFramework.ExitsProcessed(address(0), keeper, 2, BOUNTY);
        vm.prank(keeper);
        framework.processExits(address(0), 0, 2);
        assertEq(framework.withdrawable(alice, address(0)), 1 ether + REFUND);
        assertEq(ExitPriority.position(_head(address(0))), m2);

        vm.expectEmit(address(framework));
        emit PlasmaFramework.ExitsProcessed(address(0), keeper, 3, 2 * BOUNTY);
        vm.prank(keeper);
        framework.processExits(address(0), 0, type(uint256).max);

        assertEq(framework.withdrawable(mallory, address(0)), 0, "nothing for mallory");
        assertEq(framework.withdrawable(bob, address(0)), 2 ether + REFUND + 2 * (SE_BOND / 2), "rewards");
        assertEq(framework.withdrawable(carol, address(0)), 3 ether + REFUND);
        assertEq(framework.withdrawable(keeper, address(0)), 3 * BOUNTY, "bounties of honest exits only");
        assertEq(framework.totalCredited(address(0)), 6 ether, "mallory's 15 ether stay in the vault");
        assertEq(address(seGame).balance, 2 * (SE_BOND - SE_BOND / 2), "the burned halves, nothing else");
        assertTrue(_status(m1) == StandardExitGame.Status.Challenged);
        assertTrue(_status(m2) == StandardExitGame.Status.Challenged);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, address(0), 0));
        framework.processExits(address(0), 0, 1);
    }

    /// @dev Attack on the loop's bounds: `maxExits` of 0, exactly the number due, exactly the queue's
    /// length, and `type(uint256).max` with exits not due behind. Zero is refused; the loop stops
    /// at `maxExits`, at the first exit not due and at an empty queue, never popping a key it does
    /// not settle.
    function test_MaxExitsOfZeroExactAndHuge() public {
        for (uint256 i = 0; i < 5; ++i) {
            _depositAndExit(alice, 1 ether);
        }
        skip(1 days);
        for (uint256 i = 0; i < 2; ++i) {
            _depositAndExit(bob, 1 ether); // due a day later
        }
        skip(PERIOD - 1 days);

        vm.expectRevert(PlasmaFramework.FrameworkZeroMaxExits.selector);
        framework.processExits(address(0), 0, 0);

        vm.prank(keeper);
        framework.processExits(address(0), 0, 2);
        assertEq(_queueLength(address(0)), 5);
        vm.prank(keeper);
        framework.processExits(address(0), 0, 3); // exactly the exits due
        assertEq(_queueLength(address(0)), 2);
        assertEq(framework.withdrawable(alice, address(0)), 5 * (1 ether + REFUND));
        uint256 head = _head(address(0));
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, address(0), head));
        framework.processExits(address(0), 0, type(uint256).max);

        skip(1 days);
        vm.prank(keeper);
        framework.processExits(address(0), head, 2); // exactly the queue's length
        assertEq(_queueLength(address(0)), 0);
        assertEq(framework.withdrawable(bob, address(0)), 2 * (1 ether + REFUND));
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, address(0), 0));
        framework.processExits(address(0), 0, type(uint256).max);
        assertEq(framework.withdrawable(keeper, address(0)), 7 * BOUNTY);
    }

    /// @dev Attack on the clock: process a dishonest exit one second early, or in the very second it
    /// becomes due before its challenger. An exit is due at `exitableAt` and not before (EXIT-2); a
    /// standard exit can be challenged until it is processed (EXIT-4), so the challenge sent in that
    /// second still lands; once settled, an honest exit can no longer be challenged.
    function test_BoundarySecond() public {
        (uint256 a,) = _depositAndExit(alice, 1 ether);
        (uint256 m,) = _depositAndExit(mallory, 2 ether);
        uint256 due = block.timestamp + PERIOD;
        uint256 head = _head(address(0));
        assertEq(ExitPriority.exitableAt(head), due);

        vm.warp(due - 1);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, address(0), head));
        framework.processExits(address(0), head, 10);

        vm.warp(due);
        _challenge(bob, m, malloryKey, 2 ether);
        vm.prank(mallory);
        framework.processExits(address(0), head, 10);
        assertEq(framework.withdrawable(alice, address(0)), 1 ether + REFUND);
        assertEq(framework.withdrawable(mallory, address(0)), BOUNTY, "only alice's bounty");
        assertEq(framework.totalCredited(address(0)), 1 ether);

        bytes memory spend = _pay1(a, carol, address(0), 1 ether);
        bytes memory sig = _signTx(aliceKey, spend);
        vm.expectRevert(abi.encodeWithSelector(StandardExitGame.StandardExitNotActive.selector, a));
        seGame.challengeStandardExit(a, spend, 0, sig);
    }

    /// @dev Attack: the operator commits an invalid block minting 50 ether to mallory, who exits at
    /// once. Alice (an older output) waits exactly one period before exiting: her exit is due in the
    /// same second as mallory's, and her older position puts her first (EXIT-2, EXIT-3); bob, who
    /// exited sooner, is due earlier. Both are paid in full; mallory is capped at what is left
    /// (nothing) and her shortfall is a debt, not a revert (EXIT-5, EXIT-16).
    function test_InvalidBlockExitCannotJumpAnOlderOutputExitedAPeriodLater() public {
        (uint256 a, bytes memory aTx) = _depositEth(alice, 10 ether);
        (uint256 b, bytes memory bTx) = _depositEth(bob, 5 ether);
        skip(10);
        bytes memory mint = _pay1(a, mallory, address(0), 50 ether); // spends alice's deposit, unsigned
        uint256 blk = _submit1(mint);
        uint256 ts = block.timestamp;
        uint256 m = UtxoPosLib.pack(blk, 0, 0);
        _exit(mallory, m, mint);
        skip(PERIOD / 2);
        _exit(bob, b, bTx);
        vm.warp(ts + PERIOD);
        _exit(alice, a, aTx);

        vm.warp(ts + 2 * PERIOD);
        uint256[3] memory order = [b, a, m];
        for (uint256 i = 0; i < 3; ++i) {
            uint256 head = _head(address(0));
            assertEq(ExitPriority.position(head), order[i], "bob, alice, then mallory");
            vm.prank(keeper);
            framework.processExits(address(0), head, 1);
        }
        assertEq(framework.withdrawable(alice, address(0)), 10 ether + REFUND);
        assertEq(framework.withdrawable(bob, address(0)), 5 ether + REFUND);
        assertEq(framework.withdrawable(mallory, address(0)), REFUND, "her bond less the bounty, no ether");
        assertEq(framework.totalCredited(address(0)), framework.totalDeposited(address(0)));
        (uint256 dHead, uint256 dTail, uint256 outstanding,) = framework.debtBook(address(0));
        assertEq(dTail - dHead, 1);
        assertEq(outstanding, 50 ether);
        assertEq(framework.debtAt(address(0), dHead).account, mallory);
    }

    // ---------------------------------------------------------------- hostile recipients

    function _actorDepositAndExit(Actor actor, uint256 amount) internal returns (uint256 pos) {
        bytes memory txBytes;
        txBytes = _depositTx(address(actor), address(0), amount);
        uint256 blknum = framework.nextChildBlock() - framework.CHILD_BLOCK_INTERVAL() + framework.nextDepositBlock();
        vm.deal(address(actor), amount + SE_BOND);
        actor.exec(address(framework), amount, abi.encodeCall(PlasmaFramework.depositEth, (txBytes)));
        blockTimestamp[blknum] = uint64(block.timestamp);
        pos = UtxoPosLib.pack(blknum, 0, 0);
        actor.exec(
            address(seGame), SE_BOND, abi.encodeCall(StandardExitGame.startStandardExit, (_startArgs(pos, txBytes)))
        );
    }

    /// @dev Attack: exits owned by contracts that revert on ETH, or burn all the gas they get, queued
    /// ahead of alice, to make the queue unprocessable. Settlement only credits (EXIT-5): the queue is
    /// processed, alice withdraws, and the hostile owners fail only their own withdrawals, keeping
    /// their credit until they accept ETH.
    function test_RevertingAndGasBurningOwnersCannotBlockTheQueue() public {
        Actor reverter = new Actor(framework);
        Actor burner = new Actor(framework);
        _actorDepositAndExit(reverter, 1 ether);
        _actorDepositAndExit(burner, 2 ether);
        _depositAndExit(alice, 3 ether);
        reverter.setMode(Actor.Mode.Revert);
        burner.setMode(Actor.Mode.BurnGas);

        skip(PERIOD);
        vm.prank(keeper);
        framework.processExits(address(0), 0, 10);
        assertEq(_queueLength(address(0)), 0);

        uint256 before = alice.balance;
        vm.prank(alice);
        framework.withdraw(address(0));
        assertEq(alice.balance - before, 3 ether + REFUND);

        bytes memory withdrawCall = abi.encodeCall(PlasmaFramework.withdraw, (address(0)));
        uint256 owed = 1 ether + REFUND;
        vm.expectRevert(
            abi.encodeWithSelector(PlasmaFramework.FrameworkEthTransferFailed.selector, address(reverter), owed)
        );
        reverter.exec(address(framework), 0, withdrawCall);
        assertEq(framework.withdrawable(address(reverter), address(0)), owed, "credit kept");

        uint256 burnerOwed = 2 ether + REFUND;
        vm.expectRevert(
            abi.encodeWithSelector(PlasmaFramework.FrameworkEthTransferFailed.selector, address(burner), burnerOwed)
        );
        burner.exec{gas: 3_000_000}(address(framework), 0, withdrawCall);
        assertEq(framework.withdrawable(address(burner), address(0)), burnerOwed, "credit kept");

        reverter.setMode(Actor.Mode.Accept);
        reverter.exec(address(framework), 0, withdrawCall);
        assertEq(address(reverter).balance, owed);
        assertEq(framework.withdrawable(keeper, address(0)), 3 * BOUNTY);
    }

    /// @dev Attack: a contract owner reenters `withdraw` (to be paid twice) and `processExits` (to
    /// settle alice's due exit out of turn and take its bounty) from its ETH receipt. Both are refused
    /// by the shared guard; it is paid once, and alice's exit is settled later by whoever processes it.
    function test_ReentrantOwnerIsPaidOnceAndCannotReenterProcessing() public {
        Actor attacker = new Actor(framework);
        _actorDepositAndExit(attacker, 1 ether);
        skip(1);
        _depositAndExit(alice, 4 ether);
        attacker.setMode(Actor.Mode.Reenter);

        skip(PERIOD); // both due
        vm.prank(keeper);
        framework.processExits(address(0), 0, 1); // the attacker's exit only
        assertEq(_queueLength(address(0)), 1);

        uint256 owed = 1 ether + REFUND;
        attacker.exec(address(framework), 0, abi.encodeCall(PlasmaFramework.withdraw, (address(0))));
        bytes memory reentrancy = abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        assertEq(attacker.reenterWithdrawError(), reentrancy);
        assertEq(attacker.reenterProcessError(), reentrancy);
        assertEq(attacker.received(), owed, "paid once");
        assertEq(address(attacker).balance, owed);
        assertEq(framework.withdrawable(address(attacker), address(0)), 0);
        assertEq(_queueLength(address(0)), 1, "alice's exit untouched by the reentry");
        assertEq(framework.withdrawable(keeper, address(0)), BOUNTY, "the attacker took no bounty");

        vm.prank(keeper);
        framework.processExits(address(0), 0, 1);
        assertEq(framework.withdrawable(alice, address(0)), 4 ether + REFUND);
        assertEq(framework.withdrawable(keeper, address(0)), 2 * BOUNTY);
        assertEq(address(framework).balance, 4 ether + REFUND + 2 * BOUNTY, "the vault holds what it owes");
    }

    /// @dev Attack: a token turns hostile after deposits (reverts on every call, returns false, or
    /// reenters the framework from `transfer`). Processing never calls the token, so its queue and
    /// the ETH queue still settle; a failed withdrawal keeps the credit; a reentering transfer cannot
    /// withdraw twice nor process exits, and everyone is paid exactly once when it behaves.
    function test_HostileTokenCannotBlockProcessingNorWithdrawTwice() public {
        HostileToken token = new HostileToken();
        token.setFramework(framework);
        token.mint(alice, 5e18);
        token.mint(mallory, 3e18);
        vm.prank(alice);
        token.approve(address(framework), type(uint256).max);
        vm.prank(mallory);
        token.approve(address(framework), type(uint256).max);
        (uint256 a, bytes memory aTx) = _depositToken(alice, address(token), 5e18);
        (uint256 m, bytes memory mTx) = _depositToken(mallory, address(token), 3e18);
        _exit(alice, a, aTx);
        _exit(mallory, m, mTx);
        _depositAndExit(bob, 1 ether);
        skip(1 days);
        _depositAndExit(carol, 2 ether); // due a day after the others

        skip(PERIOD - 1 days);
        token.setMode(HostileToken.Mode.Revert);
        vm.prank(keeper);
        framework.processExits(address(token), 0, 10);
        vm.prank(keeper);
        framework.processExits(address(0), 0, 10);
        assertEq(framework.withdrawable(alice, address(token)), 5e18);
        assertEq(framework.withdrawable(mallory, address(token)), 3e18);
        assertEq(framework.withdrawable(bob, address(0)), 1 ether + REFUND);

        vm.prank(alice);
        vm.expectRevert(HostileToken.HostileTokenRefuses.selector);
        framework.withdraw(address(token));
        token.setMode(HostileToken.Mode.ReturnFalse);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(token)));
        framework.withdraw(address(token));
        assertEq(framework.withdrawable(alice, address(token)), 5e18, "credit kept");

        skip(1 days); // carol's exit is due while the token tries to process it from inside a transfer
        token.setMode(HostileToken.Mode.Reenter);
        vm.prank(alice);
        framework.withdraw(address(token));
        bytes memory reentrancy = abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);
        assertEq(token.reenterWithdrawError(), reentrancy);
        assertEq(token.reenterProcessError(), reentrancy);
        token.setMode(HostileToken.Mode.Normal);
        assertEq(token.balanceOf(alice), 5e18, "paid once");
        assertEq(token.balanceOf(address(framework)), 3e18);
        assertEq(framework.withdrawable(alice, address(token)), 0);
        assertEq(_queueLength(address(0)), 1, "carol's exit was not processed by the token");

        vm.prank(mallory);
        framework.withdraw(address(token));
        assertEq(token.balanceOf(mallory), 3e18);
        assertEq(token.balanceOf(address(framework)), 0);
        vm.prank(keeper);
        framework.processExits(address(0), 0, 10);
        assertEq(framework.withdrawable(carol, address(0)), 2 ether + REFUND);
        assertEq(framework.withdrawable(keeper, address(0)), 4 * BOUNTY);
    }

    // ---------------------------------------------------------------- bounty

    /// @dev Attack on the transient bounty sum: a keeper processes twice in one transaction (three
    /// honest exits, then a challenged one), hoping the first call's sum is paid again by the second.
    /// Each call credits its own standard exits' bounties once and clears the sum: the second call,
    /// which settles only a dead exit, credits nothing; a third finds nothing due.
    function test_BountyIsCreditedOncePerCallWithinOneTransaction() public {
        _depositAndExit(alice, 1 ether);
        _depositAndExit(bob, 2 ether);
        _depositAndExit(carol, 3 ether);
        (uint256 m,) = _depositAndExit(mallory, 4 ether);
        _challenge(alice, m, malloryKey, 4 ether);
        skip(PERIOD);

        ProcessorPair pair = new ProcessorPair();
        vm.recordLogs();
        pair.run(framework, address(0), 3, 1);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 calls;
        uint256[2] memory bounties;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(framework)) continue;
            if (logs[i].topics[0] != PlasmaFramework.ExitsProcessed.selector) continue;
            assertEq(address(uint160(uint256(logs[i].topics[2]))), address(pair));
            (, bounties[calls++]) = abi.decode(logs[i].data, (uint256, uint256));
        }
        assertEq(calls, 2);
        assertEq(bounties[0], 3 * BOUNTY);
        assertEq(bounties[1], 0, "the sum was cleared after the first call");
        assertEq(
            pair.thirdError(),
            abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, address(0), uint256(0))
        );
        assertEq(framework.withdrawable(address(pair), address(0)), 3 * BOUNTY);

        pair.withdraw(framework);
        assertEq(address(pair).balance, 3 * BOUNTY);
        vm.expectRevert(
            abi.encodeWithSelector(PlasmaFramework.FrameworkNothingToWithdraw.selector, address(pair), address(0))
        );
        pair.withdraw(framework);
        // What the framework still holds is exactly what it owes: the exits' credits and refunds.
        uint256 owed = framework.withdrawable(alice, address(0)) + framework.withdrawable(bob, address(0))
            + framework.withdrawable(carol, address(0)) + framework.withdrawable(mallory, address(0))
            + framework.totalDeposited(address(0)) - framework.totalCredited(address(0));
        assertEq(address(framework).balance, owed);
        assertEq(framework.withdrawable(mallory, address(0)), 0);
    }

    // ---------------------------------------------------------------- per-token queues

    /// @dev Attack on the per-token queues: process a token nobody exited, or an address that is not a
    /// token, or name another queue's head. Each refuses cleanly, and a token queue's undue head
    /// never holds the ETH queue back.
    function test_EmptyAndForeignQueuesAreIndependent() public {
        address nobody = address(0xdead);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, nobody, 0));
        framework.processExits(nobody, 0, 1);
        (uint256 h0, uint256 l0) = framework.queueHead(nobody);
        assertEq(h0 + l0, 0);

        HostileToken token = new HostileToken();
        token.mint(alice, 1e18);
        vm.prank(alice);
        token.approve(address(framework), 1e18);
        _depositAndExit(bob, 1 ether);
        skip(1 days);
        (uint256 a, bytes memory aTx) = _depositToken(alice, address(token), 1e18);
        _exit(alice, a, aTx); // due a day after bob's
        skip(PERIOD - 1 days);

        uint256 tokenHead = _head(address(token));
        uint256 ethHead = _head(address(0));
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, address(token), tokenHead));
        framework.processExits(address(token), 0, 10);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkQueueHeadChanged.selector, ethHead, tokenHead));
        framework.processExits(address(token), ethHead, 10);
        vm.prank(keeper);
        framework.processExits(address(0), ethHead, 10);
        assertEq(framework.withdrawable(bob, address(0)), 1 ether + REFUND);
        assertEq(_queueLength(address(token)), 1);

        skip(1 days);
        vm.prank(keeper);
        framework.processExits(address(token), tokenHead, 10);
        assertEq(framework.withdrawable(alice, address(token)), 1e18);
        assertEq(framework.withdrawable(alice, address(0)), REFUND, "the bond is ETH whatever the queue");
        assertEq(framework.withdrawable(keeper, address(0)), 2 * BOUNTY);
    }

    // ---------------------------------------------------------------- gas griefing

    /// @dev Attack: call `processExits` with just too little gas, hoping an exit is popped while its
    /// settlement runs out of gas (a lost exit). A game's `processExit` is a plain call, so any
    /// failure reverts the whole call: whatever the gas, each exit is either still queued and unpaid,
    /// or popped and paid in full, in order, with its bounty.
    function testFuzz_ProcessWithAnyGasIsAllOrNothing(uint256 gasSeed) public {
        uint256 n = 6;
        uint256[] memory pos = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            (pos[i],) = _depositAndExit(i % 2 == 0 ? alice : bob, 1 ether + i);
        }
        skip(PERIOD);
        uint256 gas = bound(gasSeed, 20_000, 700_000);
        (bool ok,) = address(framework).call{gas: gas}(abi.encodeCall(PlasmaFramework.processExits, (address(0), 0, n)));
        uint256 popped = n - _queueLength(address(0));
        if (!ok) assertEq(popped, 0, "a failed call pops nothing");
        else assertGt(popped, 0);
        uint256[2] memory expected;
        for (uint256 i = 0; i < n; ++i) {
            bool settled = _status(pos[i]) == StandardExitGame.Status.Settled;
            assertTrue(settled == (i < popped), "popped exactly the exits settled, in order");
            if (settled) expected[i % 2] += 1 ether + i + REFUND;
        }
        assertEq(framework.withdrawable(alice, address(0)), expected[0]);
        assertEq(framework.withdrawable(bob, address(0)), expected[1]);
        assertEq(framework.withdrawable(address(this), address(0)), popped * BOUNTY);
    }

    // ---------------------------------------------------------------- reference model

    /// @dev Whether model exit `i` comes before model exit `j`: earlier exitable time, then older
    /// position, then earlier start (spec: EXIT-3; standard exits carry no flag in their nonce).
    function _before(uint256 i, uint256 j) internal view returns (bool) {
        ModelExit storage x = _model[i];
        ModelExit storage y = _model[j];
        if (x.exitableAt != y.exitableAt) return x.exitableAt < y.exitableAt;
        if (x.pos != y.pos) return x.pos < y.pos;
        return i < j;
    }

    /// @dev The model's next exit: a scan of every unsettled one (type(uint256).max if none).
    function _modelNext() internal view returns (uint256 best) {
        best = type(uint256).max;
        for (uint256 i = 0; i < _model.length; ++i) {
            if (_model[i].settled) continue;
            if (best == type(uint256).max || _before(i, best)) best = i;
        }
    }

    function _modelDue() internal view returns (uint256 due) {
        for (uint256 i = 0; i < _model.length; ++i) {
            if (!_model[i].settled && _model[i].exitableAt <= block.timestamp) ++due;
        }
    }

    /// @dev Starts the exit of unstarted output `u`, recording its expected exitable time (EXIT-2).
    function _modelStart(uint256 u) internal {
        Unstarted memory o = _unstarted[u];
        _unstarted[u] = _unstarted[_unstarted.length - 1];
        _unstarted.pop();
        uint256 soonest = block.timestamp + PERIOD;
        uint256 aged = uint256(blockTimestamp[UtxoPosLib.blknum(o.pos)]) + 2 * PERIOD;
        uint256 exitableAt = o.deposit || aged < soonest ? soonest : aged;
        StandardExitGame.StartArgs memory args = _startArgs(o.pos, o.txBytes);
        vm.prank(o.owner);
        seGame.startStandardExit{value: SE_BOND}(args);
        _model.push(ModelExit(uint64(exitableAt), o.pos, o.owner, o.amount, false));
        _tagOf[_outputId(o.pos, o.txBytes)] = _model.length; // index + 1
    }

    /// @dev One `processExits(k)` call checked against the model: exactly the exits the model has due
    /// (up to k) are settled, in the model's order, and the head left is the model's next.
    function _modelProcess(uint256 k) internal {
        uint256 due = _modelDue();
        if (due == 0) {
            vm.expectRevert(
                abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, address(0), _head(address(0)))
            );
            framework.processExits(address(0), 0, k);
            return;
        }
        vm.recordLogs();
        vm.prank(keeper);
        framework.processExits(address(0), 0, k);
        uint256[] memory paid = _paidTags();
        assertEq(paid.length, due < k ? due : k, "settles every due exit up to maxExits");
        for (uint256 j = 0; j < paid.length; ++j) {
            uint256 want = _modelNext();
            assertEq(paid[j], want, "settles in the model's order");
            _model[want].settled = true;
        }
        uint256 next = _modelNext();
        uint256 head = _head(address(0));
        if (next == type(uint256).max) {
            assertEq(head, 0);
        } else {
            assertEq(ExitPriority.exitableAt(head), _model[next].exitableAt, "head's time");
            assertEq(ExitPriority.position(head), _model[next].pos, "head's position");
        }
    }

    /// @dev A random life of the ETH queue: deposits (exited at once or later), child blocks of
    /// four-output payments (their outputs exited while young, or once old), exits started out of
    /// order and in the same second, time passing by 0 to a third of a period, and `processExits` of
    /// random sizes, each checked against the model; then everything is drained and each owner holds
    /// exactly its exits' amounts and refunds.
    function _runModel(uint256 seed, uint256 steps) internal {
        address[3] memory owners = [alice, bob, carol];
        // Backing for the child-block outputs, never exited: no credit is ever capped.
        _depositEth(keeper, 100 ether);
        for (uint256 step = 0; step < steps; ++step) {
            uint256 r = uint256(keccak256(abi.encode(seed, step)));
            uint256 action = r % 100;
            if (action < 28) {
                if (framework.nextDepositBlock() > 400) {
                    _submit1(_pay1(UtxoPosLib.pack(1, 0, 0), alice, address(0), 1));
                }
                address owner = owners[(r >> 8) % 3];
                uint256 amount = 1 ether + (r >> 16) % 1 ether;
                (uint256 pos, bytes memory txBytes) = _depositEth(owner, amount);
                _unstarted.push(Unstarted(pos, txBytes, owner, amount, true));
                if ((r >> 80) % 3 != 0) _modelStart(_unstarted.length - 1);
            } else if (action < 38) {
                uint256[] memory ins = new uint256[](1);
                ins[0] = UtxoPosLib.pack(1, 0, 0);
                PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](4);
                for (uint256 k = 0; k < 4; ++k) {
                    outs[k] = _out(owners[(step + k) % 3], address(0), 1 + step * 4 + k);
                }
                bytes memory payment = _payment(ins, outs);
                uint256 blk = _submit1(payment);
                for (uint256 k = 0; k < 4; ++k) {
                    _unstarted.push(
                        Unstarted(UtxoPosLib.pack(blk, 0, k), payment, outs[k].owner, outs[k].amount, false)
                    );
                }
            } else if (action < 66) {
                if (_unstarted.length != 0) _modelStart((r >> 8) % _unstarted.length);
            } else if (action < 84) {
                if ((r >> 8) % 4 != 0) skip((r >> 16) % (PERIOD / 3));
            } else {
                _modelProcess(1 + (r >> 8) % 8);
            }
        }
        while (_unstarted.length != 0) {
            _modelStart(_unstarted.length - 1);
        }
        skip(3 * PERIOD);
        for (uint256 c = 0; _modelNext() != type(uint256).max; ++c) {
            _modelProcess(1 + (uint256(keccak256(abi.encode(seed, "drain", c))) % 40));
        }
        uint256[3] memory expected;
        for (uint256 i = 0; i < _model.length; ++i) {
            for (uint256 o = 0; o < 3; ++o) {
                if (_model[i].owner == owners[o]) expected[o] += _model[i].amount + REFUND;
            }
        }
        for (uint256 o = 0; o < 3; ++o) {
            assertEq(framework.withdrawable(owners[o], address(0)), expected[o], "paid exactly once");
        }
        assertEq(framework.withdrawable(keeper, address(0)), _model.length * BOUNTY);
        assertEq(address(seGame).balance, 0, "every bond went back or to the keeper");
    }

    /// @dev A few hundred real standard exits (deposits and child-block outputs, old and young, in
    /// and out of order: the old run, the young run and the heap) settle exactly as the model says.
    function test_AFewHundredExitsSettleInTheReferenceOrder() public {
        _runModel(0x5eed, 520);
        assertGt(_model.length, 200);
    }

    /// forge-config: default.fuzz.runs = 24
    /// forge-config: ci.fuzz.runs = 64
    function testFuzz_ExitsSettleInTheReferenceOrder(uint256 seed) public {
        _runModel(seed, 90);
    }

    // ---------------------------------------------------------------- defense in depth

    /// @dev Ties on exitable time and position, and entries queued while the queue is being processed.
    /// Entries with the same time and position leave by nonce: arrival among entries of one kind, and
    /// a standard exit (no flag bit in its nonce) before flagged ones whatever their arrival (the key
    /// is the packed integer of EXIT-3, flags included). An entry queued from inside a settlement
    /// (no real game does this) is still taken in exact key order: due and smallest, it is settled
    /// next in the same call; not yet due, it stops the loop.
    function test_TiesAndEntriesQueuedDuringProcessingKeepTheExactOrder() public {
        (uint256 s, bytes memory sTx) = _depositEth(alice, 1 ether);
        uint64 due = uint64(block.timestamp + PERIOD);
        rec.enqueue(address(0), due, s, 1);
        rec.enqueue(address(0), due, s, 2);
        rec.enqueue(address(0), due, s, 3);
        _exit(alice, s, sTx); // same time and position as 1..3, arrives after them
        rec.enqueue(address(0), due, s - UtxoPosLib.BLOCK_OFFSET / 2, 4); // older position, arrives last
        rec.enqueueWhenProcessed(1, address(0), due, 7, 5); // due at once, smaller than 2 and 3
        rec.enqueueWhenProcessed(1, address(0), due + 1, 7, 6); // not due in this call
        assertEq(_queueLength(address(0)), 5);

        vm.warp(due);
        framework.processExits(address(0), 0, 1);
        _assertProcessed(_list(4));
        framework.processExits(address(0), 0, 1);
        assertTrue(_status(s) == StandardExitGame.Status.Settled, "the standard exit before flagged ties");
        _assertProcessed(_list(4));
        framework.processExits(address(0), 0, 10);
        uint256[] memory want = new uint256[](5);
        (want[0], want[1], want[2], want[3], want[4]) = (4, 1, 5, 2, 3);
        _assertProcessed(want);
        uint256 head = _head(address(0));
        assertEq(ExitPriority.exitableAt(head), due + 1, "the undue entry stopped the loop and is the head");
        assertEq(_queueLength(address(0)), 1);
        assertEq(framework.withdrawable(alice, address(0)), 1 ether + REFUND);
    }

    function _list(uint256 a) internal pure returns (uint256[] memory l) {
        l = new uint256[](1);
        l[0] = a;
    }

    function _assertProcessed(uint256[] memory want) internal view {
        uint256[] memory got = rec.processed();
        assertEq(got.length, want.length, "entries processed");
        for (uint256 i = 0; i < want.length; ++i) {
            assertEq(got[i], want[i], "processing order");
        }
    }

    // ---------------------------------------------------------------- findings

    // Found by this review (fixed in `PlasmaFramework._take`): an output amount is any uint256
    // (TX-4/TX-5 only bound a transaction's sum per token), so an invalid block can give mallory
    // outputs of ~2^256 wei. Their exits are capped (EXIT-5) and the shortfall recorded as a debt
    // (EXIT-16); `_take` added the whole shortfall to `outstanding`, which overflowed on the second
    // such shortfall (or on any capped credit after one): that head's settlement panicked (0x11) and
    // `processExits` reverted for ever, freezing every exit queued behind it (late honest exits,
    // exits of later deposits, in-flight and batch entries) and their bonds. `_take` now cuts an
    // amount to `MAX_TOTAL_DEPOSITED` first (no credit can be paid more than a token's lifetime
    // deposits). Without the cut this test fails with that panic.
    function test_HugeInvalidOutputsAreCutAndCannotFreezeTheQueue() public {
        (uint256 a,) = _depositAndExit(alice, 10 ether); // timely, ahead of everything
        skip(10);
        bytes[] memory mint = new bytes[](2);
        mint[0] = _pay1(a, mallory, address(0), type(uint256).max);
        mint[1] = _pay1(a, mallory, address(0), type(uint256).max - 1);
        uint256 blk = _submitBlock(mint);
        _exit(mallory, UtxoPosLib.pack(blk, 0, 0), mint[0]);
        _exit(mallory, UtxoPosLib.pack(blk, 1, 0), mint[1]);

        skip(2 * PERIOD); // alice's and both of mallory's exits are due
        vm.prank(keeper);
        framework.processExits(address(0), 0, 2); // alice paid in full; mallory's first capped to nothing
        assertEq(framework.withdrawable(alice, address(0)), 10 ether + REFUND);
        (,, uint256 outstanding,) = framework.debtBook(address(0));
        uint256 cap = framework.MAX_TOTAL_DEPOSITED();
        assertEq(outstanding, cap, "a debt of the lifetime cap, not of ~2^256");

        // Mallory's second exit is the head: it must be capped to nothing like the first, not revert.
        vm.prank(keeper);
        framework.processExits(address(0), 0, 1); // was: panic 0x11 (arithmetic overflow), for ever
        assertEq(_queueLength(address(0)), 0);
        (,, outstanding,) = framework.debtBook(address(0));
        assertEq(outstanding, 2 * cap, "two capped debts");

        // Carol deposits afterwards and exits at once: nothing dishonest is ahead of her any more.
        (uint256 c,) = _depositAndExit(carol, 3 ether);
        skip(PERIOD);
        vm.prank(keeper);
        framework.processExits(address(0), 0, 10);
        assertTrue(_status(c) == StandardExitGame.Status.Settled, "carol's exit settles");
        assertEq(framework.withdrawable(carol, address(0)), 3 ether + REFUND, "carol is paid in full");
        assertEq(_queueLength(address(0)), 0);
    }
}
