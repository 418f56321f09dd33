// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {PlasmaFramework} from "../contracts/PlasmaFramework.sol";
import {BatchExitGame} from "../contracts/exits/BatchExitGame.sol";
import {ExitGameBase} from "../contracts/exits/ExitGameBase.sol";
import {StandardExitGame} from "../contracts/exits/StandardExitGame.sol";
import {IBatchExitGame} from "../contracts/interfaces/IBatchExitGame.sol";
import {BatchClaims} from "../contracts/libraries/BatchClaims.sol";
import {ExitPriority} from "../contracts/libraries/ExitPriority.sol";
import {PlasmaEip712} from "../contracts/libraries/PlasmaEip712.sol";
import {PlasmaTx} from "../contracts/libraries/PlasmaTx.sol";
import {UtxoPosLib} from "../contracts/libraries/UtxoPosLib.sol";
import {BatchFixtures, ClaimTreeRef} from "./utils/BatchFixtures.sol";

contract BatchExitGameTest is BatchFixtures {
    /// @dev alice deposits 10 ether and pays 4 to bob with 6 change in child block 1000.
    function _aliceToBob()
        internal
        returns (uint256 depositPos, uint256 bobPos, uint256 changePos, bytes memory payment)
    {
        (depositPos,) = _deposit(alice, 10 ether);
        uint256[] memory ins = new uint256[](1);
        ins[0] = depositPos;
        PlasmaTx.Output[] memory outs = new PlasmaTx.Output[](2);
        outs[0] = _out(bob, address(0), 4 ether);
        outs[1] = _out(alice, address(0), 6 ether);
        payment = _payment(ins, outs);
        uint256 blknum = _submit1(payment);
        bobPos = UtxoPosLib.pack(blknum, 0, 0);
        changePos = UtxoPosLib.pack(blknum, 0, 1);
    }

    function test_StartProcessPayout() public {
        (,, uint256 changePos, bytes memory payment) = _aliceToBob();
        (uint256 d2, bytes memory dtx) = _deposit(alice, 1 ether);
        skip(1 days);
        // alice's change (block 1000) and her deposit (block 1001), ascending.
        uint256 id =
            _start(alice, address(0), _groups1(alice, abi.encodePacked(_rec(changePos, 6 ether), _rec(d2, 1 ether))));
        assertEq(id, 1);
        assertEq(batchGame.claimedUpTo(alice, address(0)), d2);
        BatchExitGame.Batch memory b = batchGame.batches(id);
        assertEq(b.count, 2);
        assertEq(b.total, 7 ether);
        assertEq(b.root, ClaimTreeRef.root(_leaves(id)));
        skip(2 * PERIOD);
        framework.processExits(address(0), 0, 1);
        assertTrue(_status(id) == BatchExitGame.Status.Processed);
        assertEq(batchGame.batches(id).reserved, 7 ether);
        BatchExitGame.Payout[] memory p = new BatchExitGame.Payout[](2);
        p[0] = _payout(id, 0, payment);
        p[1] = _payout(id, 1, dtx);
        batchGame.payoutBatchClaims(p);
        assertEq(framework.withdrawable(alice, address(0)), 7 ether + 2 * CLAIM_BOND + BATCH_BOND / 2);
        assertEq(batchGame.claimState(id, 0), 3);
        assertEq(batchGame.claimState(id, 1), 3);
        assertEq(framework.totalCredited(address(0)), 7 ether);
    }
}
