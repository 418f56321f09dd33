// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity 0.8.30;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title BondLib
/// @notice A bond size that changes only after a delay and only within a factor of two (spec: BOND-1).
/// @dev The delay (two challenge periods) lets every exit started under the old size settle, and
/// lets users and watchers see the change coming: nobody can be priced out of a challenge they
/// are already in, and a sudden bond spike cannot block exits.
library BondLib {
    struct Bond {
        uint128 size;
        uint128 pending;
        uint64 effectiveAt;
    }

    /// @notice The new size is outside [current / 2, current * 2] or zero.
    error BondChangeOutOfBounds(uint256 current, uint256 proposed);

    /// @notice The size in force now.
    function current(Bond storage self) internal view returns (uint256) {
        return self.pending != 0 && block.timestamp >= self.effectiveAt ? self.pending : self.size;
    }

    /// @notice Schedules `proposed` to take effect after `delay` seconds, replacing any earlier proposal.
    /// @return effectiveAt When the new size applies.
    function propose(Bond storage self, uint256 proposed, uint256 delay) internal returns (uint64 effectiveAt) {
        uint256 size = current(self);
        if (proposed == 0 || proposed < size / 2 || proposed > size * 2) revert BondChangeOutOfBounds(size, proposed);
        self.size = SafeCast.toUint128(size);
        self.pending = SafeCast.toUint128(proposed);
        effectiveAt = SafeCast.toUint64(block.timestamp + delay);
        self.effectiveAt = effectiveAt;
    }
}
