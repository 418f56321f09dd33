//! UTXO positions (spec: POS).

use crate::{
    constants::{BLOCK_OFFSET, CHILD_BLOCK_INTERVAL, MAX_OUTPUTS, MAX_TXS_PER_BLOCK, TX_OFFSET},
    error::PositionError,
};
use alloy_primitives::U256;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Where an output lives on the child chain: block number, transaction index, output index.
///
/// On the wire (and on L1) it is one integer, `blknum * 1e9 + txIndex * 1e4 + outputIndex`
/// (spec: POS-1). Decimal packing keeps positions readable in logs and explorers. The fields are
/// private so that every value of this type is valid (spec: POS-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u128", into = "u128")]
pub struct UtxoPos {
    blknum: u64,
    tx_index: u16,
    output_index: u8,
}

impl UtxoPos {
    /// A position from its parts (spec: POS-2): `blknum >= 1`, `output_index < MAX_OUTPUTS`.
    /// The transaction index is a `u16`, so it is always below `MAX_TXS_PER_BLOCK`.
    pub const fn new(blknum: u64, tx_index: u16, output_index: u8) -> Result<Self, PositionError> {
        if blknum == 0 {
            return Err(PositionError::ZeroBlock);
        }
        if output_index as usize >= MAX_OUTPUTS {
            return Err(PositionError::OutputIndex { output_index: output_index as u64 });
        }
        Ok(Self { blknum, tx_index, output_index })
    }

    /// The block number.
    pub const fn blknum(&self) -> u64 {
        self.blknum
    }

    /// The transaction's index in its block (its Merkle leaf index).
    pub const fn tx_index(&self) -> u16 {
        self.tx_index
    }

    /// The output's index in its transaction.
    pub const fn output_index(&self) -> u8 {
        self.output_index
    }

    /// Whether the output was created by a deposit (spec: POS-3).
    pub const fn is_deposit(&self) -> bool {
        is_deposit_block(self.blknum)
    }

    /// The packed integer (spec: POS-1).
    pub const fn to_u128(&self) -> u128 {
        self.blknum as u128 * BLOCK_OFFSET
            + self.tx_index as u128 * TX_OFFSET
            + self.output_index as u128
    }

    /// The packed integer as a `uint256`, as the contracts see it.
    pub fn to_u256(&self) -> U256 {
        U256::from(self.to_u128())
    }

    /// The position of the transaction, `blknum * 1e9 + txIndex * 1e4` (spec: POS-1).
    pub const fn tx_pos(&self) -> u128 {
        self.to_u128() - self.output_index as u128
    }

    /// Parses a packed position, rejecting every integer that is not exactly one valid position.
    pub fn from_u128(pos: u128) -> Result<Self, PositionError> {
        let blknum = pos / BLOCK_OFFSET;
        let rest = pos % BLOCK_OFFSET;
        let tx_index = rest / TX_OFFSET;
        let output_index = rest % TX_OFFSET;
        let blknum = u64::try_from(blknum).map_err(|_| PositionError::BlockTooLarge)?;
        if tx_index >= MAX_TXS_PER_BLOCK as u128 {
            return Err(PositionError::TxIndex { tx_index: tx_index as u64 });
        }
        if output_index >= MAX_OUTPUTS as u128 {
            return Err(PositionError::OutputIndex { output_index: output_index as u64 });
        }
        Self::new(blknum, tx_index as u16, output_index as u8)
    }

    /// Parses a packed position given as a `uint256` (as in a transaction's inputs).
    pub fn from_u256(pos: U256) -> Result<Self, PositionError> {
        let pos = u128::try_from(pos).map_err(|_| PositionError::BlockTooLarge)?;
        Self::from_u128(pos)
    }
}

impl TryFrom<u128> for UtxoPos {
    type Error = PositionError;

    fn try_from(pos: u128) -> Result<Self, Self::Error> {
        Self::from_u128(pos)
    }
}

impl From<UtxoPos> for u128 {
    fn from(pos: UtxoPos) -> Self {
        pos.to_u128()
    }
}

impl From<UtxoPos> for U256 {
    fn from(pos: UtxoPos) -> Self {
        pos.to_u256()
    }
}

impl fmt::Display for UtxoPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.blknum, self.tx_index, self.output_index)
    }
}

/// Whether a block number belongs to a deposit block, i.e. is not a multiple of the child block
/// interval (spec: POS-3).
pub const fn is_deposit_block(blknum: u64) -> bool {
    !blknum.is_multiple_of(CHILD_BLOCK_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packs_like_the_contracts() {
        let pos = UtxoPos::new(2000, 3, 1).unwrap();
        assert_eq!(pos.to_u128(), 2_000_000_030_001);
        assert_eq!(pos.tx_pos(), 2_000_000_030_000);
        assert!(!pos.is_deposit());
        assert!(UtxoPos::new(1001, 0, 0).unwrap().is_deposit());
        assert_eq!(pos.to_string(), "2000/3/1");
    }

    #[test]
    fn rejects_invalid_positions() {
        assert_eq!(UtxoPos::from_u128(4), Err(PositionError::ZeroBlock));
        assert_eq!(
            UtxoPos::from_u128(1_000_000_005),
            Err(PositionError::OutputIndex { output_index: 5 })
        );
        assert_eq!(
            UtxoPos::from_u128(1_000_000_000 + 65_536 * 10_000),
            Err(PositionError::TxIndex { tx_index: 65_536 })
        );
        assert_eq!(UtxoPos::from_u256(U256::MAX), Err(PositionError::BlockTooLarge));
        assert_eq!(
            UtxoPos::from_u128((u64::MAX as u128 + 1) * BLOCK_OFFSET),
            Err(PositionError::BlockTooLarge)
        );
    }

    proptest! {
        #[test]
        fn packing_round_trips(blknum in 1u64.., tx in any::<u16>(), out in 0u8..5) {
            let pos = UtxoPos::new(blknum, tx, out).unwrap();
            prop_assert_eq!(UtxoPos::from_u128(pos.to_u128()).unwrap(), pos);
            prop_assert_eq!(UtxoPos::from_u256(pos.to_u256()).unwrap(), pos);
        }

        #[test]
        fn parsing_never_panics_and_round_trips(raw in any::<u128>()) {
            if let Ok(pos) = UtxoPos::from_u128(raw) {
                prop_assert_eq!(pos.to_u128(), raw);
            }
        }
    }
}
