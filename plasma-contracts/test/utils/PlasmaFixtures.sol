// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../../contracts/PlasmaFramework.sol";
import {StandardExitGame} from "../../contracts/exits/StandardExitGame.sol";
import {IPlasmaFramework} from "../../contracts/interfaces/IPlasmaFramework.sol";
import {Merkle} from "../../contracts/libraries/Merkle.sol";
import {PlasmaEip712} from "../../contracts/libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../../contracts/libraries/UtxoPosLib.sol";
import {Test} from "./Test.sol";

/// @title PlasmaFixtures
/// @notice A deployed plasma system and the tools to play the child chain in tests: build and sign
/// transactions, make deposits, commit blocks and produce inclusion proofs.
/// @dev The in-flight game is deployed through `_deployInFlightGame`, which suites that need it
/// override, so each suite compiles only what it uses.
abstract contract PlasmaFixtures is Test {
    uint256 internal constant PERIOD = 1 weeks;
    uint256 internal constant SE_BOND = 0.01 ether;
    /// @dev A realistic start time, so `timestamp - 2 * PERIOD` never underflows.
    uint256 internal constant T0 = 1_800_000_000;

    PlasmaFramework internal framework;
    StandardExitGame internal seGame;
    address internal ifeGameAddr;
    address internal batchGameAddr;

    address internal operator;
    address internal alice;
    uint256 internal aliceKey;
    address internal bob;
    uint256 internal bobKey;
    address internal carol;
    uint256 internal carolKey;
    address internal mallory;
    uint256 internal malloryKey;

    /// @dev Transactions of each committed child block, to build proofs later.
    mapping(uint256 blknum => bytes[]) internal blockTxs;
    /// @dev The L1 timestamp each block was committed at (what its event reports).
    mapping(uint256 blknum => uint64) internal blockTimestamp;

    function setUp() public virtual {
        vm.warp(T0);
        (operator,) = makeAccount("operator");
        (alice, aliceKey) = makeAccount("alice");
        (bob, bobKey) = makeAccount("bob");
        (carol, carolKey) = makeAccount("carol");
        (mallory, malloryKey) = makeAccount("mallory");
        vm.deal(alice, 1000 ether);
        vm.deal(bob, 1000 ether);
        vm.deal(carol, 1000 ether);
        vm.deal(mallory, 1000 ether);

        framework = new PlasmaFramework(operator, PERIOD);
        seGame = new StandardExitGame(IPlasmaFramework(address(framework)), operator, SE_BOND);
        ifeGameAddr = _deployInFlightGame();
        batchGameAddr = _deployBatchGame();
        framework.bindExitGames(address(seGame), ifeGameAddr, batchGameAddr);
    }

    /// @dev Overridden by suites that exercise batch exits.
    function _deployBatchGame() internal virtual returns (address) {
        return address(0);
    }

    /// @dev Overridden by suites that exercise in-flight exits.
    function _deployInFlightGame() internal virtual returns (address) {
        return address(0);
    }

    // ---------------------------------------------------------------- transactions

    function _out(address owner, address token, uint256 amount) internal pure returns (PlasmaTx.Output memory) {
        return PlasmaTx.Output(owner, token, amount);
    }

    function _tx(uint8 txType, uint256[] memory inputs, PlasmaTx.Output[] memory outputs)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encode(PlasmaTx.Transaction(txType, inputs, outputs, bytes32(0)));
    }

    /// @dev A payment from `inputs` to `outputs`.
    function _payment(uint256[] memory inputs, PlasmaTx.Output[] memory outputs) internal pure returns (bytes memory) {
        return _tx(PlasmaTx.TYPE_PAYMENT, inputs, outputs);
    }

    /// @dev A one-input one-output payment.
    function _pay1(uint256 input, address to, address token, uint256 amount) internal pure returns (bytes memory) {
        uint256[] memory ins = new uint256[](1);
        ins[0] = input;
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](1);
        outs[0] = _out(to, token, amount);
        return _payment(ins, outs);
    }

    function _depositTx(address owner, address token, uint256 amount) internal pure returns (bytes memory) {
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](1);
        outs[0] = _out(owner, token, amount);
        return _tx(PlasmaTx.TYPE_DEPOSIT, new uint256[](0), outs);
    }

    /// @dev The EIP-712 digest a wallet signs for `txBytes` (spec: SIG-1).
    function _digest(bytes memory txBytes) internal view returns (bytes32) {
        return PlasmaEip712.digest(
            framework.domainSeparator(), PlasmaEip712.hashTx(abi.decode(txBytes, (PlasmaTx.Transaction)))
        );
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _signTx(uint256 key, bytes memory txBytes) internal view returns (bytes memory) {
        return _sign(key, _digest(txBytes));
    }

    // ---------------------------------------------------------------- L1 actions

    /// @dev Deposits `amount` wei for `owner`; returns the deposit output's position and tx.
    function _depositEth(address owner, uint256 amount) internal returns (uint256 utxoPos, bytes memory txBytes) {
        txBytes = _depositTx(owner, address(0), amount);
        uint256 blknum = framework.nextChildBlock() - framework.CHILD_BLOCK_INTERVAL() + framework.nextDepositBlock();
        vm.prank(owner);
        framework.depositEth{value: amount}(txBytes);
        blockTimestamp[blknum] = uint64(block.timestamp);
        utxoPos = UtxoPosLib.pack(blknum, 0, 0);
    }

    /// @dev Commits a child block of `txs`; returns its number.
    function _submitBlock(bytes[] memory txs) internal returns (uint256 blknum) {
        blknum = framework.nextChildBlock();
        for (uint256 i = 0; i < txs.length; ++i) {
            blockTxs[blknum].push(txs[i]);
        }
        vm.prank(operator);
        framework.submitBlock(blknum, _root(txs));
        blockTimestamp[blknum] = uint64(block.timestamp);
    }

    /// @dev Everything `startStandardExit` needs for the output at `utxoPos` of `txBytes`.
    function _startArgs(uint256 utxoPos, bytes memory txBytes)
        internal
        view
        returns (StandardExitGame.StartArgs memory)
    {
        uint256 blknum = UtxoPosLib.blknum(utxoPos);
        return StandardExitGame.StartArgs(
            utxoPos, txBytes, _proof(blknum, UtxoPosLib.txIndex(utxoPos)), blockTimestamp[blknum]
        );
    }

    function _submit1(bytes memory txBytes) internal returns (uint256 blknum) {
        bytes[] memory txs = new bytes[](1);
        txs[0] = txBytes;
        return _submitBlock(txs);
    }

    /// @dev The inclusion proof of tx `index` of committed block `blknum` (a deposit block's proof
    /// is the all-empty-siblings one).
    function _proof(uint256 blknum, uint256 index) internal view returns (bytes memory) {
        if (UtxoPosLib.isDepositBlock(blknum)) return _proofOf(new bytes32[](1), 0);
        bytes[] storage txs = blockTxs[blknum];
        bytes32[] memory leaves = new bytes32[](txs.length);
        for (uint256 i = 0; i < txs.length; ++i) {
            leaves[i] = Merkle.leaf(txs[i]);
        }
        return _proofOf(leaves, index);
    }

    // ---------------------------------------------------------------- Merkle tree (spec: MERKLE)

    function _zeroHashes() internal pure returns (bytes32[17] memory z) {
        for (uint256 k = 0; k < 16; ++k) {
            z[k + 1] = Merkle.node(z[k], z[k]);
        }
    }

    function _root(bytes[] memory txs) internal pure returns (bytes32) {
        bytes32[] memory level = new bytes32[](txs.length);
        for (uint256 i = 0; i < txs.length; ++i) {
            level[i] = Merkle.leaf(txs[i]);
        }
        bytes32[17] memory z = _zeroHashes();
        for (uint256 depth = 0; depth < 16; ++depth) {
            uint256 n = (level.length + 1) / 2;
            bytes32[] memory next = new bytes32[](n);
            for (uint256 i = 0; i < n; ++i) {
                bytes32 left = level[2 * i];
                bytes32 right = 2 * i + 1 < level.length ? level[2 * i + 1] : z[depth];
                next[i] = Merkle.node(left, right);
            }
            level = next;
        }
        return level.length == 0 ? z[16] : level[0];
    }

    function _proofOf(bytes32[] memory leaves, uint256 index) internal pure returns (bytes memory proof) {
        bytes32[17] memory z = _zeroHashes();
        bytes32[] memory level = leaves;
        for (uint256 depth = 0; depth < 16; ++depth) {
            uint256 sibling = index ^ 1;
            proof = abi.encodePacked(proof, sibling < level.length ? level[sibling] : z[depth]);
            uint256 n = (level.length + 1) / 2;
            bytes32[] memory next = new bytes32[](n);
            for (uint256 i = 0; i < n; ++i) {
                bytes32 left = level[2 * i];
                bytes32 right = 2 * i + 1 < level.length ? level[2 * i + 1] : z[depth];
                next[i] = Merkle.node(left, right);
            }
            level = next;
            index >>= 1;
        }
    }
}
