//! Deterministic keys, domains and builders for tests, here and in other crates.

use crate::{
    position::UtxoPos,
    signing::{Signer, SigningDomain},
    tx::{Output, SignedTransaction, Transaction},
    vectors,
};
use alloy_primitives::{Address, B256, U256};

/// The `n`th deterministic test key (the same keys the shared vectors use).
pub fn key(n: u64) -> Signer {
    vectors::test_key(n)
}

/// The domain of the shared vectors: chain 31337, the first contract anvil deploys.
pub fn domain() -> SigningDomain {
    vectors::vector_domain()
}

/// Signs `tx` with one key per input, in order.
pub fn sign(domain: &SigningDomain, tx: Transaction, keys: &[&Signer]) -> SignedTransaction {
    let signatures = keys.iter().map(|k| k.sign_tx(domain, &tx)).collect();
    SignedTransaction::new(tx, signatures)
}

/// A payment of ETH from `inputs` to `(owner, amount)` pairs, signed by `keys`.
pub fn pay_eth(
    domain: &SigningDomain,
    inputs: &[UtxoPos],
    outputs: &[(Address, u64)],
    keys: &[&Signer],
) -> SignedTransaction {
    let outputs =
        outputs.iter().map(|(o, a)| Output::new(*o, Address::ZERO, U256::from(*a))).collect();
    sign(domain, Transaction::payment(inputs, outputs, B256::ZERO), keys)
}

/// Shorthand for a valid position; panics on an invalid one (tests only).
pub fn pos(blknum: u64, tx_index: u16, output_index: u8) -> UtxoPos {
    match UtxoPos::new(blknum, tx_index, output_index) {
        Ok(p) => p,
        Err(e) => panic!("invalid test position: {e}"),
    }
}
