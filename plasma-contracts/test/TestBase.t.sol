// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {Test} from "./utils/Test.sol";

/// @dev A tiny contract for exercising the cheatcodes our test base declares.
contract Counter {
    error CounterNotOwner(address caller);

    event Bumped(address indexed by, uint256 value);

    address public immutable owner;
    uint256 public value;
    uint256 public bumpedAt;

    constructor(address owner_) {
        owner = owner_;
    }

    function bump(uint256 by) external {
        if (msg.sender != owner) revert CounterNotOwner(msg.sender);
        value += by;
        bumpedAt = block.timestamp;
        emit Bumped(msg.sender, value);
    }
}

/// @dev Invariant handler: bumps by bounded amounts and keeps a ghost total.
contract CounterHandler is Test {
    Counter public immutable counter;
    uint256 public ghostTotal;

    constructor(Counter counter_) {
        counter = counter_;
    }

    function bump(uint256 by) external {
        by = bound(by, 0, 1e18);
        vm.prank(counter.owner());
        counter.bump(by);
        ghostTotal += by;
    }
}

/// @notice Proves each cheatcode of our own test base works the way the contract tests rely on
/// (the cheatcode interface is hand-written; a wrong signature would fail here first).
contract TestBaseTest is Test {
    Counter internal counter;
    CounterHandler internal handler;
    address internal alice;

    function setUp() public {
        (alice,) = makeAccount("alice");
        counter = new Counter(alice);
        handler = new CounterHandler(counter);
        targetContract(address(handler));
    }

    function test_PrankWarpAndEmit() public {
        vm.warp(1_800_000_000);
        vm.expectEmit(address(counter));
        emit Counter.Bumped(alice, 7);
        vm.prank(alice);
        counter.bump(7);
        assertEq(counter.value(), 7);
        assertEq(counter.bumpedAt(), 1_800_000_000);
        skip(10);
        assertEq(block.timestamp, 1_800_000_010);
    }

    function test_RevertWhen_CallerIsNotOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Counter.CounterNotOwner.selector, address(this)));
        counter.bump(1);
    }

    function test_DealRollAndSnapshots() public {
        vm.deal(alice, 3 ether);
        assertEq(alice.balance, 3 ether);
        vm.roll(100);
        assertEq(block.number, 100);
        uint256 snap = vm.snapshotState();
        vm.prank(alice);
        counter.bump(5);
        assertTrue(vm.revertToState(snap));
        assertEq(counter.value(), 0);
    }

    function test_SignAndRecover() public {
        (address signer, uint256 key) = makeAccount("signer");
        bytes32 digest = keccak256("plasma");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        assertEq(ecrecover(digest, v, r, s), signer);
    }

    function test_ReadsSharedVectors() public view {
        string memory json = readProjectFile("../spec/vectors/positions.json");
        assertEq(vm.parseJsonUint(json, ".childBlockInterval"), 1000);
    }

    function testFuzz_BoundStaysInRange(uint256 x, uint256 lo, uint256 hi) public pure {
        if (lo > hi) (lo, hi) = (hi, lo);
        uint256 y = bound(x, lo, hi);
        assertGe(y, lo);
        assertLe(y, hi);
    }

    function invariant_CounterEqualsGhostTotal() public view {
        assertEq(counter.value(), handler.ghostTotal());
    }
}
