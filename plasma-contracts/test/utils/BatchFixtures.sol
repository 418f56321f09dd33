// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {BatchExitGame} from "../../contracts/exits/BatchExitGame.sol";
import {IBatchExitGame} from "../../contracts/interfaces/IBatchExitGame.sol";
import {IPlasmaFramework} from "../../contracts/interfaces/IPlasmaFramework.sol";
import {BatchClaims} from "../../contracts/libraries/BatchClaims.sol";
import {UtxoPosLib} from "../../contracts/libraries/UtxoPosLib.sol";
import {PlasmaFixtures} from "./PlasmaFixtures.sol";
import {Vm} from "./Vm.sol";

/// @dev The reference claim tree of the spec (level by level, odd last node promoted), written
/// independently of `BatchClaims`' streaming builder.
library ClaimTreeRef {
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory level = leaves;
        while (level.length > 1) {
            level = _up(level);
        }
        return level[0];
    }

    function proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory out) {
        bytes32[] memory tmp = new bytes32[](32);
        uint256 k;
        bytes32[] memory level = leaves;
        while (level.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < level.length) tmp[k++] = level[sibling];
            level = _up(level);
            index >>= 1;
        }
        out = new bytes32[](k);
        for (uint256 i = 0; i < k; ++i) {
            out[i] = tmp[i];
        }
    }

    function _up(bytes32[] memory level) private pure returns (bytes32[] memory next) {
        next = new bytes32[]((level.length + 1) / 2);
        for (uint256 i = 0; i < next.length; ++i) {
            next[i] = 2 * i + 1 < level.length
                ? keccak256(abi.encodePacked(bytes1(0x03), level[2 * i], level[2 * i + 1]))
                : level[2 * i];
        }
    }

    function leaf(address owner, uint256 pos, uint256 amount) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes1(0x02), owner, uint64(pos), uint96(amount)));
    }
}

/// @dev A deployed system with the batch game, and the tools to start, prove and pay batches.
abstract contract BatchFixtures is PlasmaFixtures {
    uint256 internal constant BATCH_BOND = 0.004 ether;
    uint256 internal constant CLAIM_BOND = 0.002 ether;
    uint256 internal constant DEMAND_BOND = 0.003 ether;

    BatchExitGame internal batchGame;

    /// @dev What the test knows of each batch it started: its claims in tree order.
    struct Known {
        address owner;
        uint256 pos;
        uint256 amount;
    }

    mapping(uint256 batchId => Known[]) internal known;

    function _deployBatchGame() internal virtual override returns (address) {
        batchGame =
            new BatchExitGame(IPlasmaFramework(address(framework)), operator, BATCH_BOND, CLAIM_BOND, DEMAND_BOND);
        return address(batchGame);
    }

    function _rec(uint256 pos, uint256 amount) internal pure returns (bytes memory) {
        return abi.encodePacked(uint64(pos), uint96(amount));
    }

    function _group(address owner, bytes memory claims) internal pure returns (BatchExitGame.Group memory) {
        return BatchExitGame.Group(owner, 0, 0, "", claims);
    }

    function _groups1(address owner, bytes memory claims) internal pure returns (BatchExitGame.Group[] memory g) {
        g = new BatchExitGame.Group[](1);
        g[0] = _group(owner, claims);
    }

    function _claimCount(BatchExitGame.Group[] memory groups) internal pure returns (uint256 n) {
        for (uint256 i = 0; i < groups.length; ++i) {
            n += groups[i].claims.length / 20;
        }
    }

    /// @dev The youngest position of all groups and its block's root (from the test's blocks).
    function _youngest(BatchExitGame.Group[] memory groups) internal pure returns (uint256 y) {
        for (uint256 i = 0; i < groups.length; ++i) {
            bytes memory c = groups[i].claims;
            uint256 last;
            assembly {
                last := shr(192, mload(add(add(c, 32), sub(mload(c), 20))))
            }
            if (last > y) y = last;
        }
    }

    function _blockRoot(uint256 blknum) internal view returns (bytes32) {
        if (UtxoPosLib.isDepositBlock(blknum)) {
            // The deposit block's root is recomputed from its one transaction by the test that made it.
            return depositRoots[blknum];
        }
        return _root(blockTxs[blknum]);
    }

    mapping(uint256 blknum => bytes32) internal depositRoots;

    /// @dev Starts a batch as `exitor`, remembering its live claims (the caller says which groups will
    /// be skipped by passing `skipped`, or none).
    function _start(address exitor, address token, BatchExitGame.Group[] memory groups)
        internal
        returns (uint256 batchId)
    {
        uint256 y = _youngest(groups);
        uint256 blknum = UtxoPosLib.blknum(y);
        uint256 value = BATCH_BOND + CLAIM_BOND * _claimCount(groups);
        vm.recordLogs();
        vm.prank(exitor);
        batchId = batchGame.startBatchExit{value: value}(token, _blockRoot(blknum), blockTimestamp[blknum], groups);
        _learn(batchId, groups);
    }

    /// @dev Records the live groups of `batchId` from the logs of its start.
    function _learn(uint256 batchId, BatchExitGame.Group[] memory groups) internal {
        if (batchId == 0) return;
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 sig = BatchExitGame.BatchExitGroup.selector;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics.length == 3 && logs[i].topics[0] == sig && uint256(logs[i].topics[1]) == batchId) {
                address owner = address(uint160(uint256(logs[i].topics[2])));
                (, bytes memory claims) = abi.decode(logs[i].data, (uint256, bytes));
                for (uint256 k = 0; k < claims.length / 20; ++k) {
                    (uint256 pos, uint256 amount) = _decodeRec(claims, k);
                    known[batchId].push(Known(owner, pos, amount));
                }
            }
        }
        groups; // the logs are the source of truth
    }

    function _decodeRec(bytes memory claims, uint256 k) internal pure returns (uint256 pos, uint256 amount) {
        uint256 w;
        assembly {
            w := mload(add(add(claims, 32), mul(k, 20)))
        }
        pos = w >> 192;
        amount = uint96(w >> 96);
    }

    function _leaves(uint256 batchId) internal view returns (bytes32[] memory leaves) {
        Known[] storage ks = known[batchId];
        leaves = new bytes32[](ks.length);
        for (uint256 i = 0; i < ks.length; ++i) {
            leaves[i] = ClaimTreeRef.leaf(ks[i].owner, ks[i].pos, ks[i].amount);
        }
    }

    /// @dev The ClaimRef of claim `index` of `batchId`.
    function _ref(uint256 batchId, uint256 index) internal view returns (IBatchExitGame.ClaimRef memory) {
        Known storage k = known[batchId][index];
        return IBatchExitGame.ClaimRef(
            batchId, index, k.owner, uint64(k.pos), uint96(k.amount), ClaimTreeRef.proof(_leaves(batchId), index)
        );
    }

    /// @dev The payout entry of claim `index`, its transaction being `txBytes`.
    function _payout(uint256 batchId, uint256 index, bytes memory txBytes)
        internal
        view
        returns (BatchExitGame.Payout memory)
    {
        uint256 pos = known[batchId][index].pos;
        uint256 blknum = UtxoPosLib.blknum(pos);
        return BatchExitGame.Payout(
            _ref(batchId, index), txBytes, _proof(blknum, UtxoPosLib.txIndex(pos)), blockTimestamp[blknum]
        );
    }

    function _pay1(uint256 batchId, uint256 index, bytes memory txBytes) internal {
        BatchExitGame.Payout[] memory p = new BatchExitGame.Payout[](1);
        p[0] = _payout(batchId, index, txBytes);
        batchGame.payoutBatchClaims(p);
    }

    /// @dev Deposits and remembers the deposit block's root.
    function _deposit(address owner, uint256 amount) internal returns (uint256 pos, bytes memory txBytes) {
        (pos, txBytes) = _depositEth(owner, amount);
        bytes[] memory one = new bytes[](1);
        one[0] = txBytes;
        depositRoots[UtxoPosLib.blknum(pos)] = _root(one);
    }

    function _status(uint256 batchId) internal view returns (BatchExitGame.Status) {
        return batchGame.batches(batchId).status;
    }
}
