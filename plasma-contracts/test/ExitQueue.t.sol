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
    function pop() external returns (uint256 got, ExitQueue.Part part, uint256 want) {
        (got, part) = queue.peek();
        queue.pop(part);
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
        (, ExitQueue.Part part) = queue.peek();
        queue.pop(part);
    }

    function peek() external view returns (uint256 key, ExitQueue.Part part) {
        return queue.peek();
    }

    function length() external view returns (uint256 queued, uint256 modelled) {
        return (queue.length(), model.length);
    }

    /// @notice How many keys each part holds: the old run, the heap, the young run.
    function sizes() external view returns (uint256 oldRun, uint256 heap, uint256 youngRun) {
        return (queue.tail - queue.head, queue.heapLength, queue.youngTail - queue.youngHead);
    }

    function heads() external view returns (uint48 head, uint48 youngHead) {
        return (queue.head, queue.youngHead);
    }
}

contract ExitQueueTest is Test {
    ExitQueueHarness internal h;

    function setUp() public {
        h = new ExitQueueHarness();
    }

    /// @dev Random operations against the model: inserts of old exits' keys (`mayRun`) and of young
    /// ones', each kind in order (appended to its run) or out of order (to the heap), and pops;
    /// after each, the head and the length agree, and every pop gives the model's smallest key. The
    /// young keys run ahead of the old ones, as a young output's exit is due up to a period after
    /// an old one's. The keys are unique, as the nonce makes them.
    function testFuzz_QueueGivesTheSmallestKeyAsAScanDoes(uint256 seed, uint8 inOrderPercent) public {
        uint256 x = seed | 1;
        uint256 top; // the largest old key so far
        uint256 youngTop; // the largest young key so far
        uint256 nonce;
        uint256[3] memory seen; // keys popped from the old run, the heap, the young run
        for (uint256 step = 0; step < 160; ++step) {
            x = uint256(keccak256(abi.encode(x)));
            (uint256 queued,) = h.length();
            if (queued == 0 || x % 100 < 60) {
                bool young = (x >> 24) % 3 == 0;
                uint256 value;
                if ((x >> 8) % 100 < inOrderPercent) {
                    if (young) {
                        youngTop = (youngTop > top ? youngTop : top) + 1 + ((x >> 16) % 5);
                        value = youngTop;
                    } else {
                        top += 1 + ((x >> 16) % 5);
                        value = top;
                    }
                } else {
                    uint256 most = top > youngTop ? top : youngTop;
                    value = 1 + ((x >> 16) % (most + 3));
                    if (young && value > youngTop) youngTop = value;
                    if (!young && value > top) top = value;
                }
                h.insert((value << 32) | ++nonce, !young);
            } else {
                (uint256 got, ExitQueue.Part part, uint256 want) = h.pop();
                assertEq(got, want, "pop");
                ++seen[uint8(part)];
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
            (uint256 got, ExitQueue.Part part, uint256 want) = h.pop();
            assertEq(got, want, "drain");
            assertGt(got, previous);
            previous = got;
            ++seen[uint8(part)];
        }
        (uint256 rest, uint256 modelled) = h.length();
        assertEq(rest + modelled, 0, "drained");
        // With keys in and out of order, every part served pops (the runs always: their first key
        // is appended whatever it is).
        assertTrue(seen[uint8(ExitQueue.Part.OldRun)] > 0, "old run used");
        assertTrue(seen[uint8(ExitQueue.Part.YoungRun)] > 0, "young run used");
        if (inOrderPercent < 50) assertTrue(seen[uint8(ExitQueue.Part.Heap)] > 0, "heap used");
    }

    /// @dev Keys arriving in order never touch the heap, and each pop comes from the run's front.
    function test_InOrderKeysStayInTheRun() public {
        for (uint256 i = 1; i <= 50; ++i) {
            h.insert(i << 32, true);
        }
        (uint256 oldRun, uint256 heap, uint256 youngRun) = h.sizes();
        assertEq(oldRun, 50);
        assertEq(heap + youngRun, 0);
        for (uint256 i = 1; i <= 50; ++i) {
            (uint256 got, ExitQueue.Part part, uint256 want) = h.pop();
            assertEq(got, i << 32);
            assertEq(want, got);
            assertEq(uint8(part), uint8(ExitQueue.Part.OldRun));
        }
        (uint48 head,) = h.heads();
        assertEq(head, 50);
    }

    /// @dev A key smaller than the run's last goes to the heap and still comes out first.
    function test_AnEarlierKeyArrivingLateComesOutFirst() public {
        h.insert(10 << 32, true);
        h.insert(20 << 32, true);
        h.insert(15 << 32, true); // same second as 20, older position: not after the run's last
        h.insert(5 << 32, true);
        (, uint256 heap,) = h.sizes();
        assertEq(heap, 2);
        uint256[4] memory order = [uint256(5 << 32), 10 << 32, 15 << 32, 20 << 32];
        for (uint256 i = 0; i < 4; ++i) {
            (uint256 got,, uint256 want) = h.pop();
            assertEq(got, order[i]);
            assertEq(want, order[i]);
        }
        (uint256 key,) = h.peek();
        assertEq(key, 0);
    }

    /// @dev A pop from either run costs the same whatever the queue's size: nothing scales with it.
    function test_PopFromARunDoesNotGrowWithTheQueue() public {
        for (uint256 young = 0; young < 2; ++young) {
            for (uint256 i = 1; i <= 300; ++i) {
                h.insert((young * 1000 + i) << 32, young == 0);
            }
            uint256[2] memory cost;
            for (uint256 i = 0; i < 300; ++i) {
                uint256 g = gasleft();
                h.popQueue();
                uint256 used = g - gasleft();
                if (i == 0) cost[0] = used; // 300 queued
                if (i == 297) cost[1] = used; // 3 queued
            }
            // Within a few gas (stack shuffles around the index's value); a heap of 300 would
            // take eight more levels of reads and writes (hundreds of gas even with every slot warm).
            assertLe(cost[0], cost[1] + 16);
            assertLe(cost[1], cost[0] + 16);
            (uint256 oldRun, uint256 heap, uint256 youngRun) = h.sizes();
            assertEq(oldRun + heap + youngRun, 0);
        }
    }

    /// @dev A young output's exit (due up to a period after the ordinary ones) goes to the young run,
    /// so the ordinary exits queued after it still join the old run: it does not push them all into
    /// the heap for a period (a mass exit would otherwise lose the run after its first young exit).
    function test_AYoungKeyLeavesTheRunToTheKeysAfterIt() public {
        h.insert(1000 << 32, false); // young: due far ahead
        for (uint256 i = 1; i <= 20; ++i) {
            h.insert(i << 32, true);
        }
        (uint256 oldRun, uint256 heap, uint256 youngRun) = h.sizes();
        assertEq(oldRun, 20);
        assertEq(heap, 0);
        assertEq(youngRun, 1);
        for (uint256 i = 1; i <= 20; ++i) {
            (uint256 got, ExitQueue.Part part, uint256 want) = h.pop();
            assertEq(got, i << 32);
            assertEq(want, got);
            assertEq(uint8(part), uint8(ExitQueue.Part.OldRun));
        }
        (uint256 last, ExitQueue.Part lastPart,) = h.pop();
        assertEq(last, 1000 << 32);
        assertEq(uint8(lastPart), uint8(ExitQueue.Part.YoungRun));
    }

    /// @dev Young exits made as their outputs are (keys in order, each due after the old exits
    /// queued beside it) stay in the young run, old ones in the old run: the heap is never used,
    /// and the pops interleave the two runs in key order.
    function test_YoungAndOldKeysInOrderKeepToTheirRuns() public {
        for (uint256 i = 1; i <= 30; ++i) {
            h.insert((10 * i) << 32, true); // old: due at now + p
            h.insert((10 * i + 15) << 32, false); // young: due later, and later for later outputs
        }
        (uint256 oldRun, uint256 heap, uint256 youngRun) = h.sizes();
        assertEq(oldRun, 30);
        assertEq(heap, 0);
        assertEq(youngRun, 30);
        uint256 previous;
        uint256[3] memory from;
        for (uint256 i = 0; i < 60; ++i) {
            (uint256 got, ExitQueue.Part part, uint256 want) = h.pop();
            assertEq(got, want);
            assertGt(got, previous);
            previous = got;
            ++from[uint8(part)];
        }
        assertEq(from[uint8(ExitQueue.Part.OldRun)], 30);
        assertEq(from[uint8(ExitQueue.Part.YoungRun)], 30);
    }

    /// @dev A young key smaller than the young run's last (an older output exited later) goes to the
    /// heap and comes out first: no run is ever out of order.
    function test_AYoungKeyOutOfOrderGoesToTheHeap() public {
        h.insert(100 << 32, false);
        h.insert(50 << 32, false);
        h.insert(60 << 32, true); // old, between the two
        (uint256 oldRun, uint256 heap, uint256 youngRun) = h.sizes();
        assertEq(oldRun, 1);
        assertEq(heap, 1);
        assertEq(youngRun, 1);
        uint256[3] memory order = [uint256(50 << 32), 60 << 32, 100 << 32];
        ExitQueue.Part[3] memory partOf = [ExitQueue.Part.Heap, ExitQueue.Part.OldRun, ExitQueue.Part.YoungRun];
        for (uint256 i = 0; i < 3; ++i) {
            (uint256 got, ExitQueue.Part part, uint256 want) = h.pop();
            assertEq(got, order[i]);
            assertEq(want, order[i]);
            assertEq(uint8(part), uint8(partOf[i]));
        }
    }

    /// @dev Popping an empty queue reverts instead of corrupting the counters.
    function test_PopOfAnEmptyQueueReverts() public {
        vm.expectRevert();
        h.pop();
    }
}
