// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {StandardExitGame} from "../contracts/exits/StandardExitGame.sol";
import {Merkle} from "../contracts/libraries/Merkle.sol";
import {PlasmaTx} from "../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../contracts/libraries/UtxoPosLib.sol";
import {LibraryHarness} from "./harness/LibraryHarness.sol";
import {PlasmaFixtures} from "./utils/PlasmaFixtures.sol";
import {TestToken} from "./utils/Tokens.sol";

/// @notice Issue 19's gas changes to the vault: the per-token totals packed in one slot with an offset
/// of one, the slot (and the framework's balance slot in the token) written in advance by the
/// constructor for ETH and by `registerToken` for an ERC-20, the deposit cap that packing needs, the
/// standard exit settled with its queue's token, and the deposit root's constant zero hashes. Each
/// test fails if the pre-written values were ever taken for money.
contract VaultPrepayTest is PlasmaFixtures {
    address internal constant ETH = address(0);
    TestToken internal token;

    function setUp() public override {
        super.setUp();
        token = new TestToken();
        token.mint(alice, 1e24);
        token.mint(carol, 1e24);
    }

    /// @dev `_vaults` is the framework's first mapping after the block commitments; find its slot
    /// from the layout rather than hard-coding it: the ETH entry is the one the constructor wrote.
    function _vaultSlot(address t) internal view returns (bytes32) {
        for (uint256 s = 0; s < 32; ++s) {
            bytes32 slot = keccak256(abi.encode(ETH, s));
            if (uint256(vm.load(address(framework), slot)) == (1 << 128) | 1) {
                return keccak256(abi.encode(t, s));
            }
        }
        revert("vault slot not found");
    }

    function _register(address registrar) internal {
        vm.startPrank(registrar);
        token.approve(address(framework), 1);
        framework.registerToken(address(token));
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- the pre-written slots

    function test_FreshFrameworkHasEthSlotWrittenButZeroTotals() public {
        PlasmaFramework fresh = new PlasmaFramework(operator, PERIOD);
        assertEq(fresh.totalDeposited(ETH), 0);
        assertEq(fresh.totalCredited(ETH), 0);
        assertEq(uint256(vm.load(address(framework), _vaultSlot(ETH))), (1 << 128) | 1, "pre-written");
    }

    /// @dev The sentinel's "1" must never be paid: with nothing deposited, a credit pays nothing and
    /// the whole amount becomes a debt (EXIT-16).
    function test_SentinelIsNeverCreditedAsMoney() public {
        vm.prank(address(seGame));
        framework.credit(ETH, bob, 1);
        assertEq(framework.withdrawable(bob, ETH), 0);
        (uint256 head, uint256 tail, uint256 outstanding,) = framework.debtBook(ETH);
        assertEq(tail - head, 1);
        assertEq(outstanding, 1);
        assertEq(framework.totalCredited(ETH), 0);
    }

    function test_RegisterTokenPrepaysBothSlotsAndCountsNothing() public {
        assertEq(uint256(vm.load(address(framework), _vaultSlot(address(token)))), 0);
        vm.prank(carol);
        token.approve(address(framework), 1);
        vm.expectEmit(address(framework));
        emit PlasmaFramework.TokenRegistered(address(token), carol);
        vm.prank(carol);
        framework.registerToken(address(token));
        assertEq(uint256(vm.load(address(framework), _vaultSlot(address(token)))), (1 << 128) | 1);
        assertEq(token.balanceOf(address(framework)), 1, "one unit pre-pays the balance slot");
        assertEq(token.balanceOf(carol), 1e24 - 1, "paid by the registrar");
        assertEq(framework.totalDeposited(address(token)), 0);
        assertEq(framework.totalCredited(address(token)), 0);

        // Neither the slot's offset nor the registrar's unit can be paid to anyone.
        vm.prank(address(seGame));
        framework.credit(address(token), bob, 1);
        assertEq(framework.withdrawable(bob, address(token)), 0);
        (,, uint256 outstanding,) = framework.debtBook(address(token));
        assertEq(outstanding, 1);
    }

    function test_RegisteredTokenDepositsAndCreditsExactAmounts() public {
        _register(carol);
        bytes memory depositTx = _depositTx(alice, address(token), 5e18);
        vm.startPrank(alice);
        token.approve(address(framework), 5e18);
        framework.depositErc20(depositTx);
        vm.stopPrank();
        assertEq(framework.totalDeposited(address(token)), 5e18);
        assertEq(token.balanceOf(address(framework)), 5e18 + 1);

        // Asking one more than was deposited: the deposit is paid, the extra unit is a debt.
        vm.prank(address(seGame));
        framework.credit(address(token), bob, 5e18 + 1);
        assertEq(framework.withdrawable(bob, address(token)), 5e18);
        assertEq(framework.totalCredited(address(token)), 5e18);
        (,, uint256 outstanding,) = framework.debtBook(address(token));
        assertEq(outstanding, 1);
        vm.prank(bob);
        framework.withdraw(address(token));
        assertEq(token.balanceOf(address(framework)), 1, "the registrar's unit stays");
    }

    function test_RegisterTwiceTakesNoSecondUnit() public {
        _register(carol);
        _register(carol);
        assertEq(token.balanceOf(carol), 1e24 - 1);
        assertEq(uint256(vm.load(address(framework), _vaultSlot(address(token)))), (1 << 128) | 1);
    }

    /// @dev Registering after deposits must not reset the totals.
    function test_RegisterAfterDepositsKeepsTheTotals() public {
        bytes memory depositTx = _depositTx(alice, address(token), 5e18);
        vm.startPrank(alice);
        token.approve(address(framework), 5e18);
        framework.depositErc20(depositTx);
        vm.stopPrank();
        vm.prank(carol);
        framework.registerToken(address(token)); // the framework holds tokens: nothing is pulled
        assertEq(framework.totalDeposited(address(token)), 5e18);
        assertEq(token.balanceOf(carol), 1e24);
    }

    function test_RevertWhen_RegisteringEth() public {
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNotAToken.selector, ETH));
        framework.registerToken(ETH);
    }

    function test_RevertWhen_RegistrarGaveNoAllowance() public {
        vm.prank(carol);
        vm.expectRevert(); // the token's own insufficient-allowance error
        framework.registerToken(address(token));
        assertEq(uint256(vm.load(address(framework), _vaultSlot(address(token)))), 0, "nothing written");
    }

    function test_UnregisteredTokenStillDeposits() public {
        bytes memory depositTx = _depositTx(alice, address(token), 5e18);
        vm.startPrank(alice);
        token.approve(address(framework), 5e18);
        framework.depositErc20(depositTx);
        vm.stopPrank();
        assertEq(framework.totalDeposited(address(token)), 5e18);
        assertEq(token.balanceOf(address(framework)), 5e18);
    }

    // ---------------------------------------------------------------- packing and its cap

    /// @dev Both totals live in one slot: any deposits and credits keep each exact and independent.
    function testFuzz_PackedTotalsStayExact(uint128 deposit, uint128 ask) public {
        uint256 d = bound(deposit, 1, 1e30);
        uint256 a = bound(ask, 1, 2e30);
        token.mint(alice, d);
        bytes memory depositTx = _depositTx(alice, address(token), d);
        vm.startPrank(alice);
        token.approve(address(framework), d);
        framework.depositErc20(depositTx);
        vm.stopPrank();
        vm.prank(address(seGame));
        framework.credit(address(token), bob, a);
        uint256 paid = a < d ? a : d;
        assertEq(framework.totalDeposited(address(token)), d);
        assertEq(framework.totalCredited(address(token)), paid);
        assertEq(framework.withdrawable(bob, address(token)), paid);
        (,, uint256 outstanding,) = framework.debtBook(address(token));
        assertEq(outstanding, a - paid);
    }

    function test_RevertWhen_DepositsExceedTheCap() public {
        uint256 cap = framework.MAX_TOTAL_DEPOSITED();
        assertEq(cap, type(uint128).max - 1);
        token.mint(alice, cap + 1);
        vm.startPrank(alice);
        token.approve(address(framework), type(uint256).max);
        framework.depositErc20(_depositTx(alice, address(token), cap - 1e24));
        bytes memory over = _depositTx(alice, address(token), 1e24 + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                PlasmaFramework.FrameworkDepositCapExceeded.selector, address(token), cap - 1e24, 1e24 + 1
            )
        );
        framework.depositErc20(over);
        framework.depositErc20(_depositTx(alice, address(token), 1e24)); // exactly to the cap
        vm.stopPrank();
        assertEq(framework.totalDeposited(address(token)), cap);
        assertEq(framework.totalCredited(address(token)), 0);
    }

    // ---------------------------------------------------------------- standard exits by queue token

    /// @dev The settlement takes the token from the queue, not the record: an ERC-20 exit is paid in
    /// its token, the record's token slot is cleared, and nothing is paid in ETH.
    function test_Erc20StandardExitIsPaidInItsToken() public {
        bytes memory depositTx = _depositTx(alice, address(token), 5e18);
        uint256 blknum = framework.nextChildBlock() - framework.CHILD_BLOCK_INTERVAL() + framework.nextDepositBlock();
        vm.startPrank(alice);
        token.approve(address(framework), 5e18);
        framework.depositErc20(depositTx);
        blockTimestamp[blknum] = uint64(block.timestamp);
        uint256 pos = UtxoPosLib.pack(blknum, 0, 0);
        seGame.startStandardExit{value: SE_BOND}(_startArgs(pos, depositTx));
        vm.stopPrank();
        (,,, address recorded,,,,) = seGame.exits(pos);
        assertEq(recorded, address(token));

        skip(2 * PERIOD);
        vm.expectRevert(abi.encodeWithSelector(PlasmaFramework.FrameworkNoExitDue.selector, ETH, 0));
        framework.processExits(ETH, 0, 1);
        vm.prank(carol);
        framework.processExits(address(token), 0, 1);
        assertEq(framework.withdrawable(alice, address(token)), 5e18);
        assertEq(framework.totalCredited(address(token)), 5e18);
        assertEq(framework.withdrawable(alice, ETH), SE_BOND - SE_BOND / 2);
        assertEq(framework.withdrawable(carol, ETH), SE_BOND / 2);
        (,, StandardExitGame.Status status, address token_,, uint256 amount,,) = seGame.exits(pos);
        assertTrue(status == StandardExitGame.Status.Settled);
        assertEq(token_, address(0), "token slot cleared");
        assertEq(amount, 0);
    }

    // ---------------------------------------------------------------- deposit root constants

    /// @dev The deposit root's hard-coded zero hashes are the tree's (Z[k+1] = node(Z[k], Z[k])), and
    /// hashing in scratch space leaves the free-memory pointer and allocated memory as they were.
    function testFuzz_DepositRootMatchesTheTree(bytes calldata txBytes) public pure {
        bytes memory data = txBytes;
        bytes memory guard = hex"deadbeef";
        uint256 fmpBefore;
        assembly ("memory-safe") {
            fmpBefore := mload(0x40)
        }
        bytes32 root = Merkle.depositRoot(data);
        uint256 fmpAfter;
        assembly ("memory-safe") {
            fmpAfter := mload(0x40)
        }
        assertEq(fmpAfter, fmpBefore, "free-memory pointer restored");
        assertEq(keccak256(guard), keccak256(hex"deadbeef"), "memory untouched");
        bytes32 current = Merkle.leaf(data);
        bytes32 zero;
        for (uint256 k = 0; k < Merkle.DEPTH; ++k) {
            current = Merkle.node(current, zero);
            zero = Merkle.node(zero, zero);
        }
        assertEq(root, current);
    }

    // ---------------------------------------------------------------- deposit fast path

    /// @dev The calldata fast path accepts exactly the valid deposits `decodeValid` accepts, with the
    /// same output: canonical deposits with any subset of words replaced by fuzzed (often near-miss)
    /// values, and a wrong length.
    function testFuzz_DepositFastPathAgreesWithDecodeValid(uint256[10] memory w, uint32 mask, bool longer) public {
        LibraryHarness lib = new LibraryHarness();
        uint256[10] memory c =
            [uint256(0x20), 2, 0x80, 0xa0, w[4], 0, 1, uint256(uint160(w[7])), uint256(uint160(w[8])), w[9]];
        for (uint256 i = 0; i < 10; ++i) {
            if ((mask >> i) & 1 == 1) c[i] = (mask >> (i + 10)) & 1 == 1 ? w[i] % 4 : w[i];
        }
        bytes memory b = abi.encodePacked(c);
        if (longer) b = abi.encodePacked(b, bytes32(0));
        (bool ok, PlasmaTx.Output memory out) = lib.decodeDeposit(b);
        bool validDeposit;
        PlasmaTx.Output memory slow;
        try lib.decodeValid(b) returns (PlasmaTx.Transaction memory t) {
            validDeposit = t.txType == PlasmaTx.TYPE_DEPOSIT;
            if (validDeposit) slow = t.outputs[0];
        } catch {}
        assertTrue(ok == validDeposit, "same verdict");
        if (ok) {
            assertEq(out.owner, slow.owner);
            assertEq(out.token, slow.token);
            assertEq(out.amount, slow.amount);
        }
    }

    /// @dev The fixtures' deposits take the fast path; a deposit the fast path refuses still gets
    /// decodeValid's own error.
    function test_DepositFastPathKeepsTheDecodeErrors() public {
        LibraryHarness lib = new LibraryHarness();
        (bool ok,) = lib.decodeDeposit(_depositTx(alice, address(0), 1 ether));
        assertTrue(ok);
        bytes memory zeroAmount = _depositTx(alice, address(0), 0);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(PlasmaTx.PlasmaTxZeroAmount.selector, 0));
        framework.depositEth(zeroAmount);
    }
}
