// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {ExitQueue} from "../contracts/libraries/ExitQueue.sol";
import {Test} from "./utils/Test.sol";

/// @notice An `ExitQueue` beside a model that is obviously right: an unsorted list whose smallest key
/// is found by scanning it.
contract ExitQueueHarness {
    using ExitQueue for ExitQueue.Queue;

    ExitQueue.Queue private queue;
    uint256[] private model;

    function insert(uint256 key, bool mayRun) external {
        queue.insert(key, mayRun);
        model.push(key);
    }

    /// @notice Pops the queue's smallest key and the model's, and returns both (and where the queue's was).
    function pop() external returns (uint256 got, bool inRun, uint256 want) {
        (got, inRun) = queue.peek();
        queue.pop(inRun);
        uint256 at;
        want = type(uint256).max;
        for (uint256 i = 0; i < model.length; ++i) {
            if (model[i] < want) (want, at) = (model[i], i);
        }
        model[at] = model[model.length - 1];
        model.pop();
    }

    /// @notice Pops the queue alone (its cost without the model's scan).
    function popQueue() external {
        (, bool inRun) = queue.peek();
        queue.pop(inRun);
    }

    function peek() external view returns (uint256 key, bool inRun) {
        return queue.peek();
    }

    function length() external view returns (uint256 queued, uint256 modelled) {
        return (queue.length(), model.length);
    }

    function parts() external view returns (uint64 head, uint64 tail, uint64 heapLength) {
        return (queue.head, queue.tail, queue.heapLength);
    }
}

contract ExitQueueTest is Test {
    ExitQueueHarness internal h;

    function setUp() public {
        h = new ExitQueueHarness();
    }

    /// @dev Random operations against the model: inserts in order (the usual exit, appended to the
    /// run), out of order (to the heap), and pops; after each, the head and the length agree, and
    /// every pop gives the model's smallest key. The keys are unique, as the nonce makes them.
    function testFuzz_QueueGivesTheSmallestKeyAsAScanDoes(uint256 seed, uint8 inOrderPercent) public {
        uint256 x = seed | 1;
        uint256 top; // the largest key so far
        uint256 nonce;
        uint256 pops;
        for (uint256 step = 0; step < 160; ++step) {
            x = uint256(keccak256(abi.encode(x)));
            (uint256 queued,) = h.length();
            if (queued == 0 || x % 100 < 60) {
                uint256 value;
                if ((x >> 8) % 100 < inOrderPercent) {
                    top += 1 + ((x >> 16) % 5);
                    value = top;
                } else {
                    value = 1 + ((x >> 16) % (top + 3));
                    if (value > top) top = value;
                }
                // A quarter of the keys are kept out of the run whatever they are (young exits).
                h.insert((value << 32) | ++nonce, (x >> 24) % 4 != 0);
            } else {
                (uint256 got,, uint256 want) = h.pop();
                assertEq(got, want, "pop");
                ++pops;
            }
            (uint256 q, uint256 m) = h.length();
            assertEq(q, m, "length");
            (uint256 head,) = h.peek();
            if (m == 0) assertEq(head, 0, "empty head");
        }
        // Drain: everything left comes out in order.
        (uint256 left,) = h.length();
        uint256 previous;
        for (uint256 i = 0; i < left; ++i) {
            (uint256 got,, uint256 want) = h.pop();
            assertEq(got, want, "drain");
            assertGt(got, previous);
            previous = got;
        }
        (uint256 rest, uint256 modelled) = h.length();
        assertEq(rest + modelled, 0, "drained");
    }

    /// @dev Keys arriving in order never touch the heap, and each pop comes from the run's front.
    function test_InOrderKeysStayInTheRun() public {
        for (uint256 i = 1; i <= 50; ++i) {
            h.insert(i << 32, true);
        }
        (, uint64 tail, uint64 heapLength) = h.parts();
        assertEq(tail, 50);
        assertEq(heapLength, 0);
        for (uint256 i = 1; i <= 50; ++i) {
            (uint256 got, bool inRun, uint256 want) = h.pop();
            assertEq(got, i << 32);
            assertEq(want, got);
            assertTrue(inRun);
        }
        (uint64 head,,) = h.parts();
        assertEq(head, 50);
    }

    /// @dev A key smaller than the run's last goes to the heap and still comes out first.
    function test_AnEarlierKeyArrivingLateComesOutFirst() public {
        h.insert(10 << 32, true);
        h.insert(20 << 32, true);
        h.insert(15 << 32, true); // same second as 20, older position: not after the run's last
        h.insert(5 << 32, true);
        (,, uint64 heapLength) = h.parts();
        assertEq(heapLength, 2);
        uint256[4] memory order = [uint256(5 << 32), 10 << 32, 15 << 32, 20 << 32];
        for (uint256 i = 0; i < 4; ++i) {
            (uint256 got,, uint256 want) = h.pop();
            assertEq(got, order[i]);
            assertEq(want, order[i]);
        }
        (uint256 key,) = h.peek();
        assertEq(key, 0);
    }

    /// @dev A pop from the run costs the same whatever the queue's size: nothing scales with it.
    function test_PopFromTheRunDoesNotGrowWithTheQueue() public {
        for (uint256 i = 1; i <= 300; ++i) {
            h.insert(i << 32, true);
        }
        uint256[2] memory cost;
        for (uint256 i = 0; i < 299; ++i) {
            uint256 g = gasleft();
            h.popQueue();
            uint256 used = g - gasleft();
            if (i == 0) cost[0] = used; // 300 queued
            if (i == 297) cost[1] = used; // 3 queued
        }
        // Within a few gas (stack shuffles around the index's value); a heap of 300 would take
        // eight more levels of reads and writes (hundreds of gas even with every slot warm).
        assertLe(cost[0], cost[1] + 16);
        assertLe(cost[1], cost[0] + 16);
        (uint256 queued,) = h.length();
        assertEq(queued, 1);
    }

    /// @dev A young output's exit (due up to a period after the ordinary ones) goes to the heap,
    /// so the ordinary exits queued after it still join the run: it does not push them all into
    /// the heap for a period (a mass exit would otherwise lose the run after its first young exit).
    function test_AYoungKeyLeavesTheRunToTheKeysAfterIt() public {
        h.insert(1000 << 32, false); // young: due far ahead
        for (uint256 i = 1; i <= 20; ++i) {
            h.insert(i << 32, true);
        }
        (uint64 head, uint64 tail, uint64 heapLength) = h.parts();
        assertEq(tail - head, 20);
        assertEq(heapLength, 1);
        for (uint256 i = 1; i <= 20; ++i) {
            (uint256 got, bool inRun, uint256 want) = h.pop();
            assertEq(got, i << 32);
            assertEq(want, got);
            assertTrue(inRun);
        }
        (uint256 last, bool lastInRun,) = h.pop();
        assertEq(last, 1000 << 32);
        assertFalse(lastInRun);
    }

    /// @dev Popping an empty queue reverts instead of corrupting the counters.
    function test_PopOfAnEmptyQueueReverts() public {
        vm.expectRevert();
        h.pop();
    }
}
