// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../../contracts/PlasmaFramework.sol";
import {StandardExitGame} from "../../contracts/exits/StandardExitGame.sol";
import {PlasmaTx} from "../../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../../contracts/libraries/UtxoPosLib.sol";
import {PlasmaFixtures} from "../utils/PlasmaFixtures.sol";

/// @dev Plays an honest operator, users (some of whom try to exit spent outputs) and a perfect
/// watcher, at random. Ghost variables track what the chain owes whom.
contract StandardExitHandler is PlasmaFixtures {
    struct Utxo {
        uint256 pos;
        address owner;
        uint256 ownerKey;
        uint256 amount;
        bytes txBytes;
        bool spent;
        bytes spendingTx; // set when spent
        bool exited;
    }

    Utxo[] public utxos;
    uint256[] internal dishonestExits; // indexes into utxos of exits of spent outputs
    uint256[] internal honestExits;

    uint256 public ghostDeposited;
    uint256 public ghostPaidToHonest; // amounts of honest exits the framework credited
    uint256 public ghostOwedToHonest; // amounts of honest exits settled
    uint256 public ghostHonestUnpaidButDue;

    address[4] internal actors;
    uint256[4] internal actorKeys;

    constructor() {
        setUp();
        actors = [alice, bob, carol, mallory];
        actorKeys = [aliceKey, bobKey, carolKey, malloryKey];
    }

    function deposit(uint256 actorSeed, uint256 amount) external {
        uint256 a = actorSeed % 4;
        amount = bound(amount, 1, 100 ether);
        if (framework.nextDepositBlock() >= 999) return;
        (uint256 pos, bytes memory txBytes) = _depositEth(actors[a], amount);
        utxos.push(Utxo(pos, actors[a], actorKeys[a], amount, txBytes, false, "", false));
        ghostDeposited += amount;
    }

    function transfer(uint256 utxoSeed, uint256 toSeed) external {
        if (utxos.length == 0) return;
        uint256 i = utxoSeed % utxos.length;
        Utxo storage u = utxos[i];
        if (u.spent || u.exited) return;
        uint256 to = toSeed % 4;
        bytes memory payment = _pay1(u.pos, actors[to], address(0), u.amount);
        u.spent = true;
        u.spendingTx = payment;
        uint256 blknum = _submit1(payment);
        utxos.push(Utxo(UtxoPosLib.pack(blknum, 0, 0), actors[to], actorKeys[to], u.amount, payment, false, "", false));
    }

    function exit(uint256 utxoSeed) external {
        if (utxos.length == 0) return;
        uint256 i = utxoSeed % utxos.length;
        Utxo storage u = utxos[i];
        if (u.exited) return;
        (,, StandardExitGame.Status status,,,,,) = seGame.exits(u.pos);
        if (status != StandardExitGame.Status.None) return;
        StandardExitGame.StartArgs memory args = _startArgs(u.pos, u.txBytes);
        vm.deal(u.owner, u.owner.balance + SE_BOND);
        vm.prank(u.owner);
        seGame.startStandardExit{value: SE_BOND}(args);
        u.exited = true;
        if (u.spent) dishonestExits.push(i);
        else honestExits.push(i);
    }

    /// @dev The watcher challenges every exit of a spent output, then anyone processes what is due.
    function process(uint256 secondsAhead) external {
        _challengeAll();
        skip(bound(secondsAhead, 0, 3 * PERIOD));
        (uint256 head,) = framework.queueHead(address(0));
        if (head == 0 || head >> 192 > block.timestamp) return;
        uint256 creditedBefore = framework.totalCredited(address(0));
        framework.processExits(address(0), 0, 50);
        ghostPaidToHonest += framework.totalCredited(address(0)) - creditedBefore;
    }

    /// @dev The perfect watcher: every active exit of a spent output gets challenged.
    function _challengeAll() internal {
        for (uint256 k = 0; k < dishonestExits.length; ++k) {
            Utxo storage u = utxos[dishonestExits[k]];
            (,, StandardExitGame.Status status,,,,,) = seGame.exits(u.pos);
            if (status != StandardExitGame.Status.Active) continue;
            bytes memory sig = _signTx(u.ownerKey, u.spendingTx);
            vm.prank(carol);
            seGame.challengeStandardExit(u.pos, u.spendingTx, 0, sig);
        }
    }

    /// @dev Sum of the amounts of honest exits that are settled, and how many are not settled.
    function auditHonest() external view returns (uint256 settled, uint256 unsettled) {
        for (uint256 k = 0; k < honestExits.length; ++k) {
            Utxo storage u = utxos[honestExits[k]];
            (,, StandardExitGame.Status status,,,,,) = seGame.exits(u.pos);
            if (status == StandardExitGame.Status.Settled) settled += u.amount;
            else ++unsettled;
        }
    }

    /// @dev Lets every queued exit come due and processes the whole queue.
    function drain() external {
        _challengeAll();
        skip(3 * PERIOD);
        while (true) {
            (uint256 head,) = framework.queueHead(address(0));
            if (head == 0) break;
            uint256 creditedBefore = framework.totalCredited(address(0));
            framework.processExits(address(0), 0, 50);
            ghostPaidToHonest += framework.totalCredited(address(0)) - creditedBefore;
        }
    }

    function fw() external view returns (PlasmaFramework) {
        return framework;
    }
}

contract StandardExitInvariantsTest is PlasmaFixtures {
    StandardExitHandler internal handler;

    function setUp() public override {
        handler = new StandardExitHandler();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](4);
        selectors[0] = StandardExitHandler.deposit.selector;
        selectors[1] = StandardExitHandler.transfer.selector;
        selectors[2] = StandardExitHandler.exit.selector;
        selectors[3] = StandardExitHandler.process.selector;
        targetSelector(FuzzSelector(address(handler), selectors));
    }

    /// @notice The vault never credits more than was deposited.
    function invariant_NeverPaysMoreThanDeposited() public view {
        PlasmaFramework fw = _fw();
        assertLe(fw.totalCredited(address(0)), fw.totalDeposited(address(0)));
        assertEq(fw.totalDeposited(address(0)), handler.ghostDeposited());
    }

    /// @notice Only honest exits are ever paid, each exactly once: what the framework credited
    /// equals the amounts of honest exits settled (no challenged exit paid, nothing paid twice).
    function invariant_OnlyHonestExitsPaidOnce() public view {
        (uint256 settled,) = handler.auditHonest();
        assertEq(handler.ghostPaidToHonest(), settled);
    }

    /// @notice At the end of every run, once all exits come due, every honest exit is paid.
    function afterInvariant() public {
        handler.drain();
        (uint256 settled, uint256 unsettled) = handler.auditHonest();
        assertEq(unsettled, 0, "an honest exit was not paid");
        assertEq(handler.ghostPaidToHonest(), settled);
    }

    /// @notice The framework holds at least what it owes.
    function invariant_Solvent() public view {
        PlasmaFramework fw = _fw();
        assertGe(address(fw).balance, fw.totalDeposited(address(0)) - fw.totalCredited(address(0)));
    }

    function _fw() internal view returns (PlasmaFramework) {
        return handler.fw();
    }
}
