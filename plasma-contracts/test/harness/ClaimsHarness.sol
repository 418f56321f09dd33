// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {BatchClaims} from "../../contracts/libraries/BatchClaims.sol";

/// @title ClaimsHarness
/// @notice Exposes `BatchClaims` as external calls for the fuzz and vector tests.
contract ClaimsHarness {
    /// @dev The streaming builder's root of `leaves`, pushed one by one.
    function root(bytes32[] calldata leaves) external pure returns (bytes32) {
        BatchClaims.Builder memory b = BatchClaims.builder();
        for (uint256 i = 0; i < leaves.length; ++i) {
            BatchClaims.push(b, leaves[i]);
        }
        return BatchClaims.root(b);
    }

    /// @dev The root `startBatchExit` computes for one owner's packed claims (checked, then hashed).
    function groupRoot(address owner, bytes calldata claims) external pure returns (bytes32) {
        BatchClaims.Builder memory b = BatchClaims.builder();
        BatchClaims.checkGroup(claims);
        BatchClaims.addGroup(b, claims, owner);
        return BatchClaims.root(b);
    }

    function verify(bytes32 leafHash, uint256 index, uint256 count, bytes32[] calldata proof, bytes32 root_)
        external
        pure
        returns (bool)
    {
        return BatchClaims.verify(leafHash, index, count, proof, root_);
    }

    function leaf(address owner, uint64 utxoPos, uint96 amount) external pure returns (bytes32) {
        return BatchClaims.leaf(owner, utxoPos, amount);
    }

    function node(bytes32 left, bytes32 right) external pure returns (bytes32) {
        return BatchClaims.node(left, right);
    }
}
