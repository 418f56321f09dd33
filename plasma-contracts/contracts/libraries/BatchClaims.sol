// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

/// @title BatchClaims
/// @notice Batch-exit claims (spec: EXIT-12): packed records, leaves, the claim tree and its proofs.
/// The encodings are fixed by `plasma-spec`'s `batch_exit` module and `spec/vectors/batch_exit.json`.
/// @dev A claim record is 20 bytes, `uint64 utxoPos ‖ uint96 amount` big-endian; its leaf is
/// `keccak256(0x02 ‖ owner ‖ record)` and a node `keccak256(0x03 ‖ left ‖ right)` (the block tree
/// uses 0x00/0x01, so no claim hash can pass for a block-tree hash). The tree pairs each level's
/// nodes left to right and promotes an odd last node unchanged. That tree is exactly the one a
/// binary-counter stack builds while streaming the leaves (complete power-of-two subtrees merge as
/// they fill; at the end the stack folds right to left), so `startBatchExit` hashes the claims
/// straight from calldata with a stack of at most 17 words: no leaf array, one leaf hash and on
/// average one node hash per claim.
library BatchClaims {
    /// @notice Bytes of one packed claim record.
    uint256 internal constant RECORD_BYTES = 20;
    /// @notice Most claims one batch holds (spec: EXIT-12).
    uint256 internal constant MAX_CLAIMS = 65_536;
    /// @dev Stack words of the streaming builder: log2(MAX_CLAIMS) + 1.
    uint256 private constant STACK_WORDS = 17;

    /// @notice A claim record holds an invalid position (POS-2) or a zero amount.
    error BatchExitInvalidClaim(uint256 utxoPos);
    /// @notice A group's positions do not ascend strictly.
    error BatchExitNotAscending(uint256 utxoPos);

    /// @notice The streaming tree builder. `mem` points at 160 bytes of hashing scratch (a leaf's
    /// preimage at 0..40, a node's at 64..128) followed by the stack; `sp` is the stack's top and
    /// `count` the number of leaves pushed so far.
    struct Builder {
        uint256 mem;
        uint256 sp;
        uint256 count;
    }

    /// @notice The record `index` of packed `claims` (no bounds check beyond calldata's).
    function record(bytes calldata claims, uint256 index) internal pure returns (uint64 utxoPos, uint96 amount) {
        uint256 w;
        assembly ("memory-safe") {
            w := calldataload(add(claims.offset, mul(index, 20)))
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        utxoPos = uint64(w >> 192);
        // forge-lint: disable-next-line(unsafe-typecast)
        amount = uint96(w >> 96);
    }

    /// @notice The leaf of a claim: `keccak256(0x02 ‖ owner ‖ uint64 utxoPos ‖ uint96 amount)`.
    function leaf(address owner, uint64 utxoPos, uint96 amount) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, or(shl(248, 2), shl(88, owner)))
            mstore(add(ptr, 21), or(shl(192, utxoPos), shl(96, amount)))
            result := keccak256(ptr, 41)
        }
    }

    /// @notice A claim-tree node: `keccak256(0x03 ‖ left ‖ right)`.
    function node(bytes32 left, bytes32 right) internal pure returns (bytes32 result) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 3)
            mstore(add(ptr, 1), left)
            mstore(add(ptr, 33), right)
            result := keccak256(ptr, 65)
        }
    }

    /// @notice Whether `proof` puts `leafHash` at `index` of a tree of `count` leaves with `root`:
    /// the siblings from the leaf up, levels where the node was promoted skipped.
    function verify(bytes32 leafHash, uint256 index, uint256 count, bytes32[] calldata proof, bytes32 expectedRoot)
        internal
        pure
        returns (bool)
    {
        if (index >= count || count > MAX_CLAIMS) return false;
        bytes32 h = leafHash;
        uint256 k;
        uint256 len = proof.length;
        while (count > 1) {
            if (index & 1 == 1) {
                if (k == len) return false;
                h = node(proof[k++], h);
            } else if (index + 1 < count) {
                if (k == len) return false;
                h = node(h, proof[k++]);
            }
            index >>= 1;
            count = (count + 1) >> 1;
        }
        return k == len && h == expectedRoot;
    }

    /// @notice A fresh builder (its scratch and stack allocated in memory).
    function builder() internal pure returns (Builder memory b) {
        uint256 mem;
        assembly ("memory-safe") {
            mem := mload(0x40)
            mstore(0x40, add(mem, add(160, mul(32, STACK_WORDS))))
            mstore8(add(mem, 64), 3) // the node prefix, first byte of the node preimage
        }
        b.mem = mem;
        b.sp = mem + 160;
    }

    /// @notice Checks one group's packed claims: valid positions (POS-2), non-zero amounts, strictly
    /// ascending positions.
    /// @dev The caller checks that `claims.length` is a non-zero multiple of 20.
    /// @return last The group's last position (its youngest).
    /// @return sum The sum of the group's amounts.
    function checkGroup(bytes calldata claims) internal pure returns (uint256 last, uint256 sum) {
        uint256 bad; // 1: invalid claim, 2: not ascending; the offending position in `last`
        assembly ("memory-safe") {
            let end := add(claims.offset, claims.length)
            // `last` starts at 0, below every valid position.
            for { let p := claims.offset } lt(p, end) { p := add(p, 20) } {
                let w := calldataload(p)
                let pos := shr(192, w)
                let amount := shr(160, shl(64, w))
                // POS-2: blknum != 0, txIndex < 65536, outputIndex < 5; and amount != 0.
                if or(
                    or(lt(pos, 1000000000), iszero(amount)),
                    or(gt(div(mod(pos, 1000000000), 10000), 65535), gt(mod(pos, 10000), 4))
                ) {
                    bad := 1
                    last := pos
                    break
                }
                if iszero(gt(pos, last)) {
                    bad := 2
                    last := pos
                    break
                }
                last := pos
                sum := add(sum, amount)
            }
        }
        if (bad == 1) revert BatchExitInvalidClaim(last);
        if (bad == 2) revert BatchExitNotAscending(last);
    }

    /// @notice Pushes the leaves of one group's packed claims, all owned by `owner`, into `b`.
    /// @dev The caller checks the claims (`checkGroup`) and that the batch stays within `MAX_CLAIMS`
    /// (the stack holds 17 words).
    function addGroup(Builder memory b, bytes calldata claims, address owner) internal pure {
        uint256 count = b.count;
        uint256 sp = b.sp;
        uint256 mem = b.mem;
        assembly ("memory-safe") {
            // Bytes 0..20 of the leaf preimage (0x02 ‖ owner) stay for the whole group: each record
            // is written at 21.., and node preimages live at 64...
            mstore(mem, or(shl(248, 2), shl(88, owner)))
            let end := add(claims.offset, claims.length)
            for { let p := claims.offset } lt(p, end) { p := add(p, 20) } {
                mstore(add(mem, 21), calldataload(p))
                let h := keccak256(mem, 41)
                // Merge the complete subtrees this leaf closes: one per trailing one bit of its index.
                for { let c := count } and(c, 1) { c := shr(1, c) } {
                    sp := sub(sp, 32)
                    mstore(add(mem, 65), mload(sp))
                    mstore(add(mem, 97), h)
                    h := keccak256(add(mem, 64), 65)
                }
                mstore(sp, h)
                sp := add(sp, 32)
                count := add(count, 1)
            }
        }
        b.count = count;
        b.sp = sp;
    }

    /// @notice Pushes one leaf (for references and tests; `addGroup` inlines this).
    function push(Builder memory b, bytes32 leafHash) internal pure {
        uint256 count = b.count;
        uint256 sp = b.sp;
        uint256 mem = b.mem;
        assembly ("memory-safe") {
            let h := leafHash
            for { let c := count } and(c, 1) { c := shr(1, c) } {
                sp := sub(sp, 32)
                mstore(add(mem, 65), mload(sp))
                mstore(add(mem, 97), h)
                h := keccak256(add(mem, 64), 65)
            }
            mstore(sp, h)
            sp := add(sp, 32)
        }
        b.count = count + 1;
        b.sp = sp;
    }

    /// @notice The root of the leaves pushed (zero if none): the stack folded right to left.
    function root(Builder memory b) internal pure returns (bytes32 h) {
        uint256 sp = b.sp;
        uint256 mem = b.mem;
        uint256 base = mem + 160;
        if (sp == base) return bytes32(0);
        assembly ("memory-safe") {
            sp := sub(sp, 32)
            h := mload(sp)
            for {} gt(sp, base) {} {
                sp := sub(sp, 32)
                mstore(add(mem, 65), mload(sp))
                mstore(add(mem, 97), h)
                h := keccak256(add(mem, 64), 65)
            }
        }
    }
}
