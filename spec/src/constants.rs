//! Protocol constants (spec: CONST).

/// Most inputs a payment may spend (OMG's limit).
pub const MAX_INPUTS: usize = 5;
/// Most outputs any transaction may create.
pub const MAX_OUTPUTS: usize = 5;
/// Child blocks are numbered at multiples of this; deposit blocks take the numbers in between.
pub const CHILD_BLOCK_INTERVAL: u64 = 1000;
/// Depth of every block's Merkle tree.
pub const TREE_DEPTH: usize = 16;
/// Most transactions one block can hold: one per leaf of the fixed-depth tree.
pub const MAX_TXS_PER_BLOCK: usize = 1 << TREE_DEPTH;
/// Multiplier of the block number in a UTXO position.
pub const BLOCK_OFFSET: u128 = 1_000_000_000;
/// Multiplier of the transaction index in a UTXO position.
pub const TX_OFFSET: u128 = 10_000;

/// The EIP-712 domain name every signature is bound to.
pub const EIP712_NAME: &str = "Plasma";
/// The EIP-712 domain version.
pub const EIP712_VERSION: &str = "1";

/// Length in bytes of `abi.encode(tx)` for a transaction with `inputs` inputs and `outputs`
/// outputs (spec: ENC-3).
///
/// The struct is dynamic, so the encoding is one offset word, the tuple head (`txType`, the two
/// array offsets, `metadata`), then each array as a length word followed by its elements (one
/// word per input, three per output).
pub const fn encoded_tx_len(inputs: usize, outputs: usize) -> usize {
    32 * (1 + 4 + (1 + inputs) + (1 + 3 * outputs))
}

/// The longest valid encoded transaction: five inputs and five outputs (spec: ENC-3).
pub const MAX_TX_BYTES: usize = encoded_tx_len(MAX_INPUTS, MAX_OUTPUTS);

/// Length of one signature: `r ‖ s ‖ v` (spec: SIG-3).
pub const SIGNATURE_LEN: usize = 65;

/// The longest valid encoded signed transaction (spec: ENC-4): the transaction plus a `bytes[]` of
/// five 65-byte signatures (each padded to three words: length, and 65 bytes in three words).
pub const MAX_SIGNED_TX_BYTES: usize =
    32 * (1 + 2) + (MAX_TX_BYTES - 32) + 32 * (1 + MAX_INPUTS) + MAX_INPUTS * 32 * (1 + 3);
