// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {ClaimsHarness} from "./harness/ClaimsHarness.sol";
import {ClaimTreeRef} from "./utils/BatchFixtures.sol";
import {Test} from "./utils/Test.sol";

/// @notice `BatchClaims` against the reference claim tree (level by level, odd node promoted) and the
/// shared vectors of `plasma-spec` (spec/vectors/batch_exit.json).
contract BatchClaimsTest is Test {
    ClaimsHarness internal h;

    function setUp() public {
        h = new ClaimsHarness();
    }

    function _leaves(uint256 n, uint256 seed) internal pure returns (bytes32[] memory leaves) {
        leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            leaves[i] = keccak256(abi.encode(seed, i));
        }
    }

    /// @dev The streaming root equals the reference root, and every reference proof verifies, for random
    /// n and index; a proof verifies at no other index, count or leaf.
    function testFuzz_RootAndProofMatchReference(uint256 n, uint256 index, uint256 seed) public view {
        n = bound(n, 1, 600);
        index = bound(index, 0, n - 1);
        bytes32[] memory leaves = _leaves(n, seed);
        bytes32 root = ClaimTreeRef.root(leaves);
        assertEq(h.root(leaves), root);
        bytes32[] memory proof = ClaimTreeRef.proof(leaves, index);
        assertTrue(h.verify(leaves[index], index, n, proof, root));
        assertFalse(h.verify(leaves[index], index, n, proof, keccak256("other")));
        assertFalse(h.verify(keccak256("other"), index, n, proof, root));
        if (n > 1) {
            assertFalse(h.verify(leaves[index], (index + 1) % n, n, proof, root));
            assertFalse(h.verify(leaves[(index + 1) % n], index, n, proof, root));
        }
        assertFalse(h.verify(leaves[index], n, n, proof, root)); // index beyond the count
        assertFalse(h.verify(leaves[index], index, 65_537, proof, root)); // too many claims
    }

    /// @dev Sizes around powers of two, where promotion changes, all indexes.
    function test_EveryIndexOfSmallTrees() public view {
        for (uint256 n = 1; n <= 33; ++n) {
            bytes32[] memory leaves = _leaves(n, n);
            bytes32 root = ClaimTreeRef.root(leaves);
            assertEq(h.root(leaves), root);
            for (uint256 i = 0; i < n; ++i) {
                assertTrue(h.verify(leaves[i], i, n, ClaimTreeRef.proof(leaves, i), root));
            }
        }
    }

    /// @dev The group path of `startBatchExit` (records from calldata) gives the reference root.
    function testFuzz_GroupRootMatchesReference(address owner, uint256 n, uint256 seed) public view {
        n = bound(n, 1, 200);
        bytes memory claims;
        bytes32[] memory leaves = new bytes32[](n);
        uint256 pos = 1000 * 1e9;
        for (uint256 i = 0; i < n; ++i) {
            pos += (1 + uint256(keccak256(abi.encode(seed, i))) % 3) * 1e4;
            uint96 amount = uint96(uint256(keccak256(abi.encode(seed, i, 1)))) | 1;
            claims = abi.encodePacked(claims, uint64(pos), amount);
            leaves[i] = ClaimTreeRef.leaf(owner, pos, amount);
        }
        assertEq(h.groupRoot(owner, claims), ClaimTreeRef.root(leaves));
    }

    // ---------------------------------------------------------------- shared vectors

    function _json() internal view returns (string memory) {
        return readProjectFile("../spec/vectors/batch_exit.json");
    }

    function _key(string memory array, uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(array, "[", vm.toString(i), "]", field);
    }

    function _count(string memory json, string memory array) internal view returns (uint256 n) {
        while (vm.keyExistsJson(json, _key(array, n, ""))) ++n;
    }

    function _b32(bytes memory b) internal pure returns (bytes32 r) {
        require(b.length == 32, "not 32 bytes");
        assembly {
            r := mload(add(b, 32))
        }
    }

    function _b32s(bytes[] memory bs) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](bs.length);
        for (uint256 i = 0; i < bs.length; ++i) {
            out[i] = _b32(bs[i]);
        }
    }

    function test_VectorsClaims() public view {
        string memory json = _json();
        uint256 n = _count(json, ".claims");
        assertGt(n, 0);
        for (uint256 i = 0; i < n; ++i) {
            address owner = vm.parseJsonAddress(json, _key(".claims", i, ".owner"));
            uint256 pos = vm.parseJsonUint(json, _key(".claims", i, ".utxoPos"));
            uint256 amount = vm.parseJsonUint(json, _key(".claims", i, ".amount"));
            bytes memory record = vm.parseJsonBytes(json, _key(".claims", i, ".record"));
            assertEq(record, abi.encodePacked(uint64(pos), uint96(amount)));
            bytes32 leaf = _b32(vm.parseJsonBytes(json, _key(".claims", i, ".leaf")));
            assertEq(h.leaf(owner, uint64(pos), uint96(amount)), leaf);
            assertEq(h.groupRoot(owner, record), leaf, "root of one leaf is the leaf");
        }
    }

    function test_VectorsTrees() public view {
        string memory json = _json();
        uint256 n = _count(json, ".trees");
        assertGt(n, 0);
        for (uint256 t = 0; t < n; ++t) {
            string memory tree = _key(".trees", t, "");
            bytes32[] memory leaves = _b32s(vm.parseJsonBytesArray(json, string.concat(tree, ".leaves")));
            uint256 count = vm.parseJsonUint(json, string.concat(tree, ".count"));
            bytes32 root = _b32(vm.parseJsonBytes(json, string.concat(tree, ".root")));
            assertEq(leaves.length, count);
            assertEq(h.root(leaves), root);
            uint256 np = _count(json, string.concat(tree, ".proofs"));
            for (uint256 k = 0; k < np; ++k) {
                string memory pk = _key(string.concat(tree, ".proofs"), k, "");
                uint256 index = vm.parseJsonUint(json, string.concat(pk, ".index"));
                bytes32[] memory proof = _b32s(vm.parseJsonBytesArray(json, string.concat(pk, ".proof")));
                assertTrue(h.verify(leaves[index], index, count, proof, root));
                bytes32[] memory ref = ClaimTreeRef.proof(leaves, index);
                assertEq(keccak256(abi.encode(ref)), keccak256(abi.encode(proof)));
            }
        }
    }
}
