// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {IExitGame} from "../interfaces/IExitGame.sol";
import {IPlasmaFramework} from "../interfaces/IPlasmaFramework.sol";
import {BlockCommitment} from "../libraries/BlockCommitment.sol";
import {BondLib} from "../libraries/BondLib.sol";
import {Merkle} from "../libraries/Merkle.sol";
import {UtxoPosLib} from "../libraries/UtxoPosLib.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title ExitGameBase
/// @notice What both exit games share: the framework they serve, bonds, inclusion proofs and the
/// exitable-time rule.
abstract contract ExitGameBase is IExitGame, ReentrancyGuardTransient {
    using BondLib for BondLib.Bond;

    /// @notice A settled exit's bond pays `bond / BOUNTY_DIVISOR` to whoever processes it (spec:
    /// EXIT-5). Bonds are twice a challenge's gas at the reference gas price (BOND-1), and
    /// processing an exit in a batch costs less than a challenge's gas (~29k, ~75k alone when it
    /// leaves from one of the queue's runs, EXIT-3; measured by `cargo bench -p plasma-contracts
    /// --bench gas`): half a bond pays for it at the reference price, so processing is worth doing
    /// for anyone.
    uint256 public constant BOUNTY_DIVISOR = 2;
    /// @notice A defeated bond pays `bond / CHALLENGE_REWARD_DIVISOR` to the challenger; the rest is
    /// burned (spec: BOND-1). Half a bond is one challenge's gas at the reference price, rounded up,
    /// so challenging pays; the burned half is what an exiter who challenges herself still loses.
    uint256 public constant CHALLENGE_REWARD_DIVISOR = 2;

    /// @notice The framework this game serves.
    IPlasmaFramework public immutable framework;
    /// @notice The challenge period `p` (copied from the framework).
    uint256 public immutable minExitPeriod;
    /// @notice Who may propose bond changes (bounded and delayed; spec: BOND-1).
    address public immutable bondAdmin;

    /// @notice The caller is not the framework.
    error ExitGameNotFramework(address caller);
    /// @notice The caller is not the bond admin.
    error ExitGameNotBondAdmin(address caller);
    /// @notice The ETH sent is not the bond due.
    error ExitGameWrongBond(uint256 expected, uint256 sent);
    /// @notice No block with this number was committed.
    error ExitGameUnknownBlock(uint256 blknum);
    /// @notice The Merkle proof (with the block timestamp given) does not put the transaction at this
    /// position of a committed block (spec: MERKLE-5).
    error ExitGameInvalidInclusionProof(uint256 utxoPos);
    /// @notice The position names an output index the transaction does not have.
    error ExitGameNoSuchOutput(uint256 utxoPos);
    /// @notice A deposit transaction outside a deposit block, or another type inside one (spec: LEDGER-6/7).
    error ExitGameWrongBlockKind(uint256 utxoPos, uint8 txType);

    /// @notice A bond size change was scheduled.
    event BondChangeProposed(bytes32 indexed bond, uint256 newSize, uint64 effectiveAt);

    modifier onlyFramework() {
        if (msg.sender != address(framework)) revert ExitGameNotFramework(msg.sender);
        _;
    }

    modifier onlyBondAdmin() {
        if (msg.sender != bondAdmin) revert ExitGameNotBondAdmin(msg.sender);
        _;
    }

    constructor(IPlasmaFramework framework_, address bondAdmin_) {
        framework = framework_;
        minExitPeriod = framework_.minExitPeriod();
        bondAdmin = bondAdmin_;
    }

    function _proposeBond(BondLib.Bond storage bond, bytes32 name, uint256 newSize) internal {
        uint64 effectiveAt = bond.propose(newSize, 2 * minExitPeriod);
        emit BondChangeProposed(name, newSize, effectiveAt);
    }

    function _takeBond(BondLib.Bond storage bond, uint256 count) internal view returns (uint256 each) {
        each = bond.current();
        if (msg.value != each * count) revert ExitGameWrongBond(each * count, msg.value);
    }

    /// @dev Checks `txBytes` sits at `utxoPos`'s block and index, in the block committed at
    /// `blockTimestamp` (spec: MERKLE-5, LEDGER-8).
    function _verifyInclusion(bytes memory txBytes, uint256 utxoPos, bytes memory proof, uint64 blockTimestamp)
        internal
        view
    {
        uint256 blknum = UtxoPosLib.blknum(utxoPos);
        bytes32 commitment = framework.blockCommitments(blknum);
        if (commitment == bytes32(0)) revert ExitGameUnknownBlock(blknum);
        bytes32 root = Merkle.computeRoot(Merkle.leaf(txBytes), UtxoPosLib.txIndex(utxoPos), proof);
        if (BlockCommitment.commit(root, blockTimestamp) != commitment) revert ExitGameInvalidInclusionProof(utxoPos);
    }

    /// @dev The exit clock of an output (spec: EXIT-2): deposits now + p, because a deposit block is
    /// made by the contract and cannot be invalid; child-block outputs also wait until two periods
    /// after their block, so exits from a freshly committed invalid block queue behind every older
    /// honest exit.
    function _exitableAt(uint256 utxoPos, uint64 blockTimestamp) internal view returns (uint64) {
        uint256 soonest = block.timestamp + minExitPeriod;
        if (UtxoPosLib.isDepositBlock(UtxoPosLib.blknum(utxoPos))) return SafeCast.toUint64(soonest);
        uint256 aged = uint256(blockTimestamp) + 2 * minExitPeriod;
        return SafeCast.toUint64(aged > soonest ? aged : soonest);
    }

    /// @dev Pays a settled exit's bond: the bounty to the processor, the rest back to its owner.
    function _returnBond(address owner, uint256 bond, address processor) internal {
        uint256 bounty = _processingBounty(bond);
        framework.creditBonds{value: bond}(owner, bond - bounty, processor, bounty);
    }

    /// @dev The processing bounty of a settled exit's bond (spec: EXIT-5).
    function _processingBounty(uint256 bond) internal pure returns (uint256) {
        return bond / BOUNTY_DIVISOR;
    }

    /// @dev What the challenger of a defeated exit is credited (spec: BOND-1). The caller forwards
    /// only this to the framework; the rest of the bond stays in the game, which has no way to pay
    /// it out: it is burned, so nobody (least of all the exiter herself) recovers the whole bond.
    function _challengeReward(uint256 bond) internal pure returns (uint256) {
        return bond / CHALLENGE_REWARD_DIVISOR;
    }
}
