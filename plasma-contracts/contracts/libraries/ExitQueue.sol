// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title ExitQueue
/// @notice A token's exit queue (spec: EXIT-3): a min-priority queue of distinct nonzero keys, made
/// of a sorted **run** and a binary **heap** beside it.
/// @dev Why two parts. The exit of any output older than a period (and of any deposit) is exitable
/// at `now + p` (EXIT-2), a time that only grows: such keys arrive in priority order. The caller
/// says which keys those are (`mayRun`); each is appended to the run, a list kept sorted by
/// construction (a key goes there only if it is also greater than the run's last one), and leaves
/// it from the front: a pop touches two cold slots whatever the queue's size, where a heap's pop
/// reads two children on each of its log2(n) levels (~7k gas a level; issue 19). Every other key —
/// a young output's exit, exitable at its block's time plus two periods, or a key of the same second
/// with an older position than the run's last — goes to the heap, as every key did before. Young
/// keys never enter the run: one of them, up to a period ahead of `now + p`, would otherwise send
/// every ordinary exit of the next period to the heap (in a mass exit, all of them).
///
/// Why the order is exact: the run is strictly increasing (appends only of greater keys) and the heap
/// keeps the heap property, so the smallest key queued is the smaller of the run's first and the
/// heap's root; `peek` and `pop` compare exactly those two. Keys are unique (the nonce, EXIT-3), so
/// the two are never equal. Nothing here loops over the queue: an insert into the run and a pop from
/// it are O(1), the heap's are O(log n) as before, so no one can make processing unbounded by
/// queueing many exits; a key in the wrong part only costs gas, never changes the order.
///
/// Layout: one slot for the three counters (read once per call), then the two maps. Run indices only
/// grow (`head` ≤ `tail` < 2^64: one key per exit ever queued, and `exitCount` is a uint64 too).
library ExitQueue {
    struct Queue {
        /// Index in `run` of the run's first live key.
        uint64 head;
        /// One past the run's last key; the run is empty when `head == tail`.
        uint64 tail;
        /// How many keys the heap holds (at indices 0 .. heapLength - 1).
        uint64 heapLength;
        /// The run: strictly increasing over [head, tail).
        mapping(uint256 index => uint256 key) run;
        /// The heap: `heap[i] < heap[2i + 1]` and `heap[i] < heap[2i + 2]` for children that exist.
        mapping(uint256 index => uint256 key) heap;
    }

    /// @notice How many keys are queued.
    function length(Queue storage q) internal view returns (uint256) {
        return uint256(q.tail - q.head) + q.heapLength;
    }

    /// @notice The smallest key queued, or 0 if the queue is empty, and whether it heads the run.
    function peek(Queue storage q) internal view returns (uint256 key, bool inRun) {
        (uint64 head, uint64 tail, uint64 heapLength) = (q.head, q.tail, q.heapLength);
        if (head != tail) {
            key = q.run[head];
            inRun = true;
        }
        if (heapLength != 0) {
            uint256 root = q.heap[0];
            if (!inRun || root < key) (key, inRun) = (root, false);
        }
    }

    /// @notice Queues `key` (nonzero, and not already queued: the caller's nonce makes it unique).
    /// `mayRun`: whether the key may join the run (its exitable time is `now + p` or earlier); the
    /// order is exact either way, this only decides the gas.
    function insert(Queue storage q, uint256 key, bool mayRun) internal {
        if (mayRun) {
            (uint64 head, uint64 tail) = (q.head, q.tail);
            if (head == tail || q.run[tail - 1] < key) {
                q.run[tail] = key;
                q.tail = tail + 1;
                return;
            }
        }
        // Out of order: sift up from the heap's first free place, moving each greater parent down.
        uint64 n = q.heapLength;
        q.heapLength = n + 1;
        uint256 i = n;
        while (i != 0) {
            uint256 parent = (i - 1) >> 1;
            uint256 above = q.heap[parent];
            if (above < key) break;
            q.heap[i] = above;
            i = parent;
        }
        q.heap[i] = key;
    }

    /// @notice Removes the smallest key, which `peek` just gave with `inRun`. The queue must not be
    /// empty and nothing may have changed it since that `peek`.
    function pop(Queue storage q, bool inRun) internal {
        if (inRun) {
            uint64 head = q.head;
            delete q.run[head];
            q.head = head + 1;
            return;
        }
        uint64 last = q.heapLength - 1;
        q.heapLength = last;
        uint256 moved = q.heap[last];
        delete q.heap[last];
        if (last == 0) return; // the root was the only key
        // Sift the former last key down from the root, moving each smaller child up.
        uint256 i = 0;
        while (true) {
            uint256 child = 2 * i + 1;
            if (child >= last) break;
            uint256 smaller = q.heap[child];
            if (child + 1 < last) {
                uint256 right = q.heap[child + 1];
                if (right < smaller) (child, smaller) = (child + 1, right);
            }
            if (moved < smaller) break;
            q.heap[i] = smaller;
            i = child;
        }
        q.heap[i] = moved;
    }
}
