// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {PlasmaFixtures} from "./utils/PlasmaFixtures.sol";
import {Vm} from "./utils/Vm.sol";

/// @notice Adversarial review of `submitBlocks` (a run of child blocks in one transaction, OP-4):
/// numbering at the edges (far numbers, deposit numbers, the tail of a run that landed), one event
/// and one commitment word (MERKLE-6) per block, and the gas of a run against the limit the
/// operator's submitter gives it (`operator/src/l1.rs`: `SUBMIT_GAS` + `SUBMIT_GAS_PER_BLOCK` a
/// further block, up to `MAX_RUN` blocks).
/// @dev `setUp` commits child block 1000 and makes deposit block 1001, so every test starts with
/// `nextChildBlock` 2000 and cold storage (each test is its own transaction).
contract SubmitBlocksAdversarialTest is PlasmaFixtures {
    uint64 internal constant I = 1000;
    /// @dev The operator's gas limit of a run: `run_gas` in `operator/src/l1.rs`.
    uint256 internal constant SUBMIT_GAS = 120_000;
    uint256 internal constant SUBMIT_GAS_PER_BLOCK = 30_000;
    uint256 internal constant MAX_RUN = 64;

    bytes32 internal constant BLOCK_SUBMITTED = keccak256("BlockSubmitted(uint256,bytes32,uint64)");

    bytes32 internal depositCommitment;

    function setUp() public override {
        super.setUp();
        vm.prank(operator);
        framework.submitBlock(I, keccak256("block 1000"));
        _depositEth(alice, 1 ether);
        depositCommitment = framework.blockCommitments(I + 1);
        assertTrue(depositCommitment != bytes32(0));
    }

    function _roots(uint256 n, bytes32 salt) internal pure returns (bytes32[] memory roots) {
        roots = new bytes32[](n);
        for (uint256 r = 0; r < n; ++r) {
            roots[r] = keccak256(abi.encode(salt, r));
        }
    }

    function _refusedRun(uint256 first, bytes32[] memory roots, bytes memory err) internal {
        vm.prank(operator);
        vm.expectRevert(err);
        framework.submitBlocks(first, roots);
    }

    function _unexpected(uint256 blknum, uint256 next) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(PlasmaFramework.FrameworkUnexpectedBlockNumber.selector, blknum, next);
    }

    /// @dev A run may only start at `nextChildBlock`: not at a deposit block's number, not one past a
    /// child number, not at a committed or a future child number, not at zero, not at numbers whose
    /// run would pass 2^256 (refused at the first block, by number, never a panic). Each refusal
    /// writes nothing and leaves the deposit's commitment as it was.
    function test_ARunStartingAnywhereButTheNextChildBlockIsRefusedWhole() public {
        bytes32[] memory roots = _roots(3, "r");
        uint256 top = type(uint256).max - (type(uint256).max % I); // the highest multiple of I
        uint256[9] memory bad = [uint256(0), 1, I, I + 1, 2 * I + 1, 2 * I - 1, 3 * I, top, type(uint256).max];
        for (uint256 i = 0; i < bad.length; ++i) {
            _refusedRun(bad[i], roots, _unexpected(bad[i], 2 * I));
        }
        // A run as long as the gas allows starting near the top: refused at its first block.
        _refusedRun(top - I, _roots(MAX_RUN, "top"), _unexpected(top - I, 2 * I));
        assertEq(framework.blockCommitments(I + 1), depositCommitment);
        for (uint256 b = 2; b <= 5; ++b) {
            assertEq(framework.blockCommitments(b * I), bytes32(0));
        }
        assertEq(framework.nextChildBlock(), 2 * I);
        assertEq(framework.nextDepositBlock(), 2);
    }

    /// @dev Only the operator: not the deployer, not an exit game, not anyone else, whatever the run.
    function test_OnlyTheOperatorSubmitsARun() public {
        bytes32[] memory roots = _roots(2, "o");
        address[3] memory strangers = [address(this), address(seGame), mallory];
        for (uint256 i = 0; i < strangers.length; ++i) {
            vm.prank(strangers[i]);
            vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotOperator.selector, strangers[i]));
            framework.submitBlocks(2 * I, roots);
        }
        // The operator check comes before any other: an empty run from a stranger is refused as such.
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotOperator.selector, mallory));
        framework.submitBlocks(2 * I, new bytes32[](0));
        assertEq(framework.nextChildBlock(), 2 * I);
    }

    /// @dev The replacement race at the contract: an earlier attempt carrying blocks N..N+2 lands,
    /// then the fee-bumped replacement carrying N..N+3 (same first block) is refused whole (it
    /// commits neither N+3 nor anything twice), and the tail N+3 goes alone in the next run.
    function test_AReplacementRacingTheLandedShorterRunCommitsNothingAndTheTailGoesNext() public {
        bytes32[] memory longer = _roots(4, "run");
        bytes32[] memory shorter = new bytes32[](3);
        for (uint256 r = 0; r < 3; ++r) {
            shorter[r] = longer[r];
        }
        vm.prank(operator);
        framework.submitBlocks(2 * I, shorter);
        _refusedRun(2 * I, longer, _unexpected(2 * I, 5 * I));
        assertEq(framework.blockCommitments(5 * I), bytes32(0));
        bytes32[] memory tail = new bytes32[](1);
        tail[0] = longer[3];
        vm.warp(block.timestamp + 12);
        vm.prank(operator);
        framework.submitBlocks(5 * I, tail);
        for (uint256 r = 0; r < 3; ++r) {
            assertEq(
                framework.blockCommitments((2 + r) * I),
                keccak256(abi.encode(longer[r], uint64(block.timestamp - 12))),
                "the first run's blocks keep its time"
            );
        }
        assertEq(framework.blockCommitments(5 * I), keccak256(abi.encode(longer[3], uint64(block.timestamp))));
        assertEq(framework.nextChildBlock(), 6 * I);
    }

    /// @dev Deposits and a run in one L1 block (one timestamp): a deposit before the run is numbered
    /// after the last child block before it, one after the run after the run's last block; no
    /// deposit number is ever a child number, nothing is overwritten, and each deposit's slot
    /// counter restarts after the run.
    function test_DepositsRacingARunInOneL1BlockAreNumberedAroundIt() public {
        (uint256 before,) = _depositEth(bob, 2 ether);
        assertEq(before / 1e9, I + 2);
        vm.prank(operator);
        framework.submitBlocks(2 * I, _roots(5, "race"));
        (uint256 afterRun,) = _depositEth(carol, 3 ether);
        assertEq(afterRun / 1e9, 6 * I + 1);
        assertEq(framework.nextChildBlock(), 7 * I);
        assertEq(framework.nextDepositBlock(), 2);
        assertEq(framework.depositFee(), 0);
        assertEq(framework.blockCommitments(I + 1), depositCommitment);
        bytes32[] memory again = _roots(1, "again");
        _refusedRun(6 * I + 1, again, _unexpected(6 * I + 1, 7 * I));
        _refusedRun(6 * I, again, _unexpected(6 * I, 7 * I));
        vm.prank(operator);
        framework.submitBlocks(7 * I, again);
        assertTrue(framework.blockCommitments(6 * I + 1) != bytes32(0), "the deposit after the run stays");
    }

    /// @dev A run of `MAX_RUN` blocks emits exactly `MAX_RUN` logs, all `BlockSubmitted` from the
    /// framework, in block order, each with its root and this L1 block's timestamp; each block's
    /// word is `keccak256(abi.encode(root, timestamp))` (MERKLE-6) and nothing else: the same root
    /// with another timestamp does not match it.
    function test_ARunOf64EmitsOneEventAndOneWordPerBlockInOrder() public {
        bytes32[] memory roots = _roots(MAX_RUN, "events");
        uint64 ts = uint64(block.timestamp);
        vm.recordLogs();
        vm.prank(operator);
        framework.submitBlocks(2 * I, roots);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, MAX_RUN);
        for (uint256 r = 0; r < MAX_RUN; ++r) {
            uint256 blknum = (2 + r) * I;
            assertEq(logs[r].emitter, address(framework));
            assertEq(logs[r].topics.length, 2);
            assertEq(logs[r].topics[0], BLOCK_SUBMITTED);
            assertEq(uint256(logs[r].topics[1]), blknum);
            (bytes32 root, uint64 at) = abi.decode(logs[r].data, (bytes32, uint64));
            assertEq(root, roots[r]);
            assertEq(uint256(at), uint256(ts));
            bytes32 word = framework.blockCommitments(blknum);
            assertEq(word, keccak256(abi.encode(roots[r], ts)));
            assertNotEq(word, keccak256(abi.encode(roots[r], ts - 1)));
            assertNotEq(word, keccak256(abi.encode(roots[r], ts + 1)));
        }
        assertEq(framework.nextChildBlock(), (2 + MAX_RUN) * I);
    }

    /// @dev The same root twice in a run is taken exactly as two `submitBlock`s would take it (the
    /// contract never compared roots across numbers): each number gets its own word. Only the
    /// operator's own numbering keeps roots apart; recorded here so a change to that is deliberate.
    function test_ARepeatedRootIsTakenAsSubmitBlockWouldTakeIt() public {
        bytes32[] memory roots = new bytes32[](3);
        roots[0] = keccak256("same");
        roots[1] = roots[0];
        roots[2] = roots[0];
        vm.prank(operator);
        framework.submitBlocks(2 * I, roots);
        bytes32 word = keccak256(abi.encode(roots[0], uint64(block.timestamp)));
        for (uint256 b = 2; b <= 4; ++b) {
            assertEq(framework.blockCommitments(b * I), word);
        }
    }

    /// @dev A zero root anywhere in a run of `MAX_RUN` (here the last) refuses the whole run after
    /// the work of the others: nothing stays written.
    function test_AZeroRootAtTheEndOfAFullRunUndoesTheRun() public {
        bytes32[] memory roots = _roots(MAX_RUN, "zero");
        roots[MAX_RUN - 1] = bytes32(0);
        _refusedRun(2 * I, roots, abi.encodeWithSelector(PlasmaFramework.FrameworkZeroRoot.selector));
        assertEq(framework.blockCommitments(2 * I), bytes32(0));
        assertEq(framework.blockCommitments((MAX_RUN) * I), bytes32(0));
        assertEq(framework.nextChildBlock(), 2 * I);
    }

    /// @dev The gas a run really costs, calldata and the floor of EIP-7623 included, stays within
    /// the operator's limit for it at every length up to `MAX_RUN`, with storage cold (the first
    /// thing a test does) and the call's cold account access counted (a transaction's `to` is
    /// warm: the measure is ~2,500 above what L1 charges).
    function testFuzz_ARunFitsTheOperatorsGasLimit(uint256 n) public {
        n = bound(n, 1, MAX_RUN);
        bytes32[] memory roots = _roots(n, bytes32(n));
        uint256 cost = _runCost(2 * I, roots);
        assertLe(cost, SUBMIT_GAS + SUBMIT_GAS_PER_BLOCK * (n - 1), "the run would run out of gas");
    }

    /// @dev The longest run, measured alone: what a backlog's runs cost, against its limit (2,010,000),
    /// a fraction of any L1 block's gas limit.
    function test_AFullRunFitsItsLimitWithAMargin() public {
        bytes32[] memory roots = _roots(MAX_RUN, "full");
        uint256 cost = _runCost(2 * I, roots);
        uint256 limit = SUBMIT_GAS + SUBMIT_GAS_PER_BLOCK * (MAX_RUN - 1);
        assertLe(cost, limit);
        assertLe(cost * 100, limit * 90, "less than a tenth to spare");
        assertLe(limit, 30_000_000 / 10);
    }

    /// @dev What the transaction `submitBlocks(first, roots)` costs on L1: 21,000, its calldata, and
    /// the execution (the larger of that and the EIP-7623 floor).
    function _runCost(uint256 first, bytes32[] memory roots) internal returns (uint256) {
        bytes memory data = abi.encodeCall(PlasmaFramework.submitBlocks, (first, roots));
        uint256 zeros;
        for (uint256 i = 0; i < data.length; ++i) {
            if (data[i] == 0) ++zeros;
        }
        uint256 nonZeros = data.length - zeros;
        vm.prank(operator);
        uint256 before = gasleft();
        framework.submitBlocks(first, roots);
        uint256 execution = before - gasleft();
        uint256 standard = 21_000 + 4 * zeros + 16 * nonZeros + execution;
        uint256 floor = 21_000 + 10 * (zeros + 4 * nonZeros);
        return standard > floor ? standard : floor;
    }
}
