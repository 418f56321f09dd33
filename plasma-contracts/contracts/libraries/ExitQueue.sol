// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title ExitQueue
/// @notice A token's exit queue (spec: EXIT-3): a min-priority queue of distinct nonzero keys, made
/// of two sorted **runs** and a binary **heap** beside them.
/// @dev Why runs. The exit of any output older than a period (and of any deposit) is exitable at
/// `now + p` (EXIT-2), a time that only grows: such keys arrive in priority order. The caller says
/// which keys those are (`mayRun`); each is appended to the **old run**, a list kept sorted by
/// construction (a key goes there only if it is also greater than the run's last one), and leaves
/// it from the front: a pop touches two cold slots whatever the queue's size, where a heap's pop
/// reads two children on each of its log2(n) levels (~7k gas a level; issue 19). A young output's
/// exit is exitable at its block's time plus two periods, up to a period after `now + p`: appended
/// to the old run it would send every ordinary exit of the next period to the heap behind it (in a
/// mass exit, all of them), so young keys have a run of their own, the **young run**. Young
/// outputs are exited mostly as they are made, so their keys mostly arrive in order too: each is
/// appended to the young run if greater than its last. Every other key — one of the same second
/// with an older position than its run's last, or a young output's older than the young run's last
/// — goes to the heap. A key in the wrong part only costs gas, never changes the order. A young exit
/// far ahead (of an output from the newest block) sends the young exits queued after it with
/// smaller keys to the heap, where every young exit went before the young run; for at most a
/// period, since keys queued a period later are due after it.
///
/// Why the order is exact: each run is strictly increasing (appends only of greater keys) and the
/// heap keeps the heap property, so the smallest key queued is the smallest of the two runs' first
/// and the heap's root; `peek` and `pop` compare exactly those three. Keys are unique (the nonce,
/// EXIT-3), so no two are equal. Nothing here loops over the queue: an insert into a run and a pop
/// from it are O(1), the heap's are O(log n), so no one can make processing unbounded by queueing
/// many exits.
///
/// Layout: one slot for the five counters (read once per call), then the three maps. Run indices
/// only grow, one per exit ever queued in the run: 2^48 is far beyond what any chain can queue (at
/// 100k gas an exit, 2.8e19 gas).
library ExitQueue {
    /// @notice Where a key is kept: what `peek` says and `pop` needs.
    enum Part {
        Heap,
        OldRun,
        YoungRun
    }

    struct Queue {
        /// Index in `run` of the old run's first live key.
        uint48 head;
        /// One past the old run's last key; the run is empty when `head == tail`.
        uint48 tail;
        /// How many keys the heap holds (at indices 0 .. heapLength - 1).
        uint48 heapLength;
        /// The young run's first live key and one past its last, in `youngRun`.
        uint48 youngHead;
        uint48 youngTail;
        /// The old run: strictly increasing over [head, tail).
        mapping(uint256 index => uint256 key) run;
        /// The heap: `heap[i] < heap[2i + 1]` and `heap[i] < heap[2i + 2]` for children that exist.
        mapping(uint256 index => uint256 key) heap;
        /// The young run: strictly increasing over [youngHead, youngTail).
        mapping(uint256 index => uint256 key) youngRun;
    }

    /// @notice How many keys are queued.
    function length(Queue storage q) internal view returns (uint256) {
        return uint256(q.tail - q.head) + q.heapLength + (q.youngTail - q.youngHead);
    }

    /// @notice The smallest key queued, or 0 if the queue is empty, and where it is kept.
    function peek(Queue storage q) internal view returns (uint256 key, Part part) {
        (uint48 head, uint48 tail, uint48 heapLength, uint48 youngHead, uint48 youngTail) =
            (q.head, q.tail, q.heapLength, q.youngHead, q.youngTail);
        // `key` stays 0 until a part gives one; every queued key is nonzero.
        if (head != tail) (key, part) = (q.run[head], Part.OldRun);
        if (youngHead != youngTail) {
            uint256 young = q.youngRun[youngHead];
            if (key == 0 || young < key) (key, part) = (young, Part.YoungRun);
        }
        if (heapLength != 0) {
            uint256 root = q.heap[0];
            if (key == 0 || root < key) (key, part) = (root, Part.Heap);
        }
    }

    /// @notice Queues `key` (nonzero, and not already queued: the caller's nonce makes it unique).
    /// `mayRun`: whether the key is due at `now + p` or earlier (a deposit's, an old output's), for
    /// the old run; any other goes to the young run. The order is exact either way: this only
    /// decides the gas.
    function insert(Queue storage q, uint256 key, bool mayRun) internal {
        if (mayRun) {
            (uint48 head, uint48 tail) = (q.head, q.tail);
            if (head == tail || q.run[tail - 1] < key) {
                q.run[tail] = key;
                q.tail = tail + 1;
                return;
            }
        } else {
            (uint48 youngHead, uint48 youngTail) = (q.youngHead, q.youngTail);
            if (youngHead == youngTail || q.youngRun[youngTail - 1] < key) {
                q.youngRun[youngTail] = key;
                q.youngTail = youngTail + 1;
                return;
            }
        }
        // Out of order: sift up from the heap's first free place, moving each greater parent down.
        uint48 n = q.heapLength;
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

    /// @notice Removes the smallest key, which `peek` just gave with `part`. The queue must not be
    /// empty and nothing may have changed it since that `peek`.
    function pop(Queue storage q, Part part) internal {
        if (part == Part.OldRun) {
            uint48 head = q.head;
            delete q.run[head];
            q.head = head + 1;
            return;
        }
        if (part == Part.YoungRun) {
            uint48 youngHead = q.youngHead;
            delete q.youngRun[youngHead];
            q.youngHead = youngHead + 1;
            return;
        }
        uint48 last = q.heapLength - 1;
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
