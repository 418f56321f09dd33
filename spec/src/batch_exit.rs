//! Batch exits: many outputs claimed in one L1 call, proven only when doubted (spec: EXIT-12 …
//! EXIT-15, CHAL-6 … CHAL-10).
//!
//! A claim is 20 bytes of calldata — the output's position and amount — in a group of one owner.
//! The contract hashes the claims of a batch into a tree ([`ClaimTree`]) and keeps only its root;
//! everything else (a challenge, a demand's answer, a payout) names one claim with a proof into that
//! tree. The exact bytes are fixed here and in `BatchClaims.sol`, and `spec/vectors/batch_exit.json`
//! holds both sides to them.

use crate::{
    position::UtxoPos,
    tx::{Transaction, TxType},
};
use alloy_primitives::{Address, B256, U256, keccak256};

/// Bytes of one packed claim record: `uint64 utxoPos ‖ uint96 amount`, big-endian (EXIT-12).
pub const CLAIM_BYTES: usize = 20;
/// Most claims one batch may hold (its tree indexes fit 16 bits).
pub const MAX_BATCH_CLAIMS: usize = 65_536;
/// Prefix of a claim leaf's preimage; block trees use 0x00 and 0x01 (MERKLE-1, -2).
pub const CLAIM_LEAF_PREFIX: u8 = 0x02;
/// Prefix of a claim-tree node's preimage.
pub const CLAIM_NODE_PREFIX: u8 = 0x03;

/// The largest amount a claim can carry: `2^96 - 1`. Larger outputs exit by the standard path.
pub fn max_claim_amount() -> U256 {
    (U256::from(1u8) << 96) - U256::from(1u8)
}

/// Why claims cannot be encoded, decoded or grouped (spec: EXIT-12).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchExitError {
    /// The packed claims are empty or not a whole number of 20-byte records.
    #[error("packed claims of {len} bytes are not a non-empty multiple of {CLAIM_BYTES}")]
    MalformedClaims {
        /// The length given.
        len: usize,
    },
    /// The amount is zero or does not fit 96 bits.
    #[error("claim of {pos} has amount {amount}: must be 1 ..= 2^96 - 1")]
    Amount {
        /// The claim's position.
        pos: UtxoPos,
        /// The amount.
        amount: U256,
    },
    /// The position does not fit 64 bits (a block number of 2^34 or more).
    #[error("position {pos} does not fit 64 bits")]
    PositionTooLarge {
        /// The position.
        pos: UtxoPos,
    },
    /// A packed record holds an invalid position (POS-2).
    #[error("packed record holds invalid position {raw}")]
    InvalidPosition {
        /// The raw 64-bit value.
        raw: u64,
    },
    /// A group's positions are not strictly ascending, or start at or below the owner's
    /// watermark (what an exitor already claimed for the owner in this token).
    #[error(
        "claim {pos} is not above {floor}: a group's claims ascend strictly from above the owner's watermark"
    )]
    NotAscending {
        /// The offending position.
        pos: UtxoPos,
        /// What it had to exceed (the previous claim, or the watermark).
        floor: u128,
    },
    /// More claims than a batch may hold.
    #[error("{count} claims: a batch holds at most {MAX_BATCH_CLAIMS}")]
    TooManyClaims {
        /// The count.
        count: usize,
    },
    /// A tree needs at least one leaf; a proof's index must be below the leaf count.
    #[error("no claim {index} among {count}")]
    NoSuchClaim {
        /// The index asked for.
        index: usize,
        /// The leaf count.
        count: usize,
    },
}

/// One claimed output: who is paid, which output, how much (spec: EXIT-12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The output's owner, who is paid (the group's owner).
    pub owner: Address,
    /// The output's position.
    pub pos: UtxoPos,
    /// The output's amount, at most `2^96 - 1`.
    pub amount: U256,
}

impl Claim {
    /// The claim's leaf: `keccak256(0x02 ‖ owner ‖ uint64 pos ‖ uint96 amount)`.
    pub fn leaf(&self) -> Result<B256, BatchExitError> {
        let record = encode_record(self.pos, self.amount)?;
        let mut preimage = [0u8; 1 + 20 + CLAIM_BYTES];
        preimage[0] = CLAIM_LEAF_PREFIX;
        preimage[1..21].copy_from_slice(self.owner.as_slice());
        preimage[21..].copy_from_slice(&record);
        Ok(keccak256(preimage))
    }
}

/// The packed record of one claim.
pub fn encode_record(pos: UtxoPos, amount: U256) -> Result<[u8; CLAIM_BYTES], BatchExitError> {
    if amount.is_zero() || amount > max_claim_amount() {
        return Err(BatchExitError::Amount { pos, amount });
    }
    let raw = u64::try_from(pos.to_u128()).map_err(|_| BatchExitError::PositionTooLarge { pos })?;
    let mut out = [0u8; CLAIM_BYTES];
    out[..8].copy_from_slice(&raw.to_be_bytes());
    out[8..].copy_from_slice(&amount.to_be_bytes::<32>()[20..]);
    Ok(out)
}

/// Packs a group's claims, checking each (amount in range, position fits).
pub fn encode_claims(claims: &[(UtxoPos, U256)]) -> Result<Vec<u8>, BatchExitError> {
    let mut out = Vec::with_capacity(claims.len() * CLAIM_BYTES);
    for (pos, amount) in claims {
        out.extend_from_slice(&encode_record(*pos, *amount)?);
    }
    Ok(out)
}

/// Unpacks a group's claims (as `BatchExitGroup` events carry them).
pub fn decode_claims(bytes: &[u8]) -> Result<Vec<(UtxoPos, U256)>, BatchExitError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(CLAIM_BYTES) {
        return Err(BatchExitError::MalformedClaims { len: bytes.len() });
    }
    bytes
        .chunks_exact(CLAIM_BYTES)
        .map(|record| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&record[..8]);
            let raw = u64::from_be_bytes(raw);
            let pos = UtxoPos::from_u128(u128::from(raw))
                .map_err(|_| BatchExitError::InvalidPosition { raw })?;
            let amount = U256::from_be_slice(&record[8..]);
            if amount.is_zero() {
                return Err(BatchExitError::Amount { pos, amount });
            }
            Ok((pos, amount))
        })
        .collect()
}

/// Checks a group's order (spec: EXIT-12): positions strictly ascending, the first above the
/// owner's watermark `claimed_up_to` (0 if the owner never had claims in this token). Ascending
/// order makes a duplicate inside a batch impossible; the watermark makes one across batches
/// impossible.
pub fn check_group(claims: &[(UtxoPos, U256)], claimed_up_to: u128) -> Result<(), BatchExitError> {
    let mut floor = claimed_up_to;
    for (pos, _) in claims {
        if pos.to_u128() <= floor {
            return Err(BatchExitError::NotAscending { pos: *pos, floor });
        }
        floor = pos.to_u128();
    }
    Ok(())
}

/// A claim-tree node: `keccak256(0x03 ‖ left ‖ right)`.
pub fn claim_node(left: &B256, right: &B256) -> B256 {
    let mut preimage = [0u8; 65];
    preimage[0] = CLAIM_NODE_PREFIX;
    preimage[1..33].copy_from_slice(left.as_slice());
    preimage[33..].copy_from_slice(right.as_slice());
    keccak256(preimage)
}

/// The tree over a batch's claim leaves, in batch order (spec: EXIT-12). Each level pairs
/// neighbours; an odd last node is promoted unchanged. The root of one leaf is the leaf.
///
/// *Why not a fixed depth as block trees:* a batch's size varies from one claim to 65,536 and the
/// contract builds the tree at start; padding to a power of two would hash up to twice as many
/// nodes, and proofs would carry siblings that are known zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimTree {
    levels: Vec<Vec<B256>>,
}

impl ClaimTree {
    /// Builds the tree; refuses zero leaves and more than [`MAX_BATCH_CLAIMS`].
    pub fn new(leaves: Vec<B256>) -> Result<Self, BatchExitError> {
        if leaves.is_empty() {
            return Err(BatchExitError::NoSuchClaim { index: 0, count: 0 });
        }
        if leaves.len() > MAX_BATCH_CLAIMS {
            return Err(BatchExitError::TooManyClaims { count: leaves.len() });
        }
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            let up = below
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => claim_node(l, r),
                    [single] => *single,
                    _ => unreachable!("chunks(2) yields one or two"),
                })
                .collect();
            levels.push(up);
        }
        Ok(Self { levels })
    }

    /// The tree of `claims`.
    pub fn from_claims(claims: &[Claim]) -> Result<Self, BatchExitError> {
        Self::new(claims.iter().map(Claim::leaf).collect::<Result<_, _>>()?)
    }

    /// The number of leaves.
    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// Never true: a tree has at least one leaf.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The root.
    pub fn root(&self) -> B256 {
        self.levels.last().and_then(|l| l.first()).copied().unwrap_or_default()
    }

    /// The proof of leaf `index`: its siblings from the leaf up, levels where it was promoted
    /// skipped.
    pub fn proof(&self, index: usize) -> Result<Vec<B256>, BatchExitError> {
        if index >= self.len() {
            return Err(BatchExitError::NoSuchClaim { index, count: self.len() });
        }
        let mut out = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sibling = i ^ 1;
            if sibling < level.len() {
                out.push(level[sibling]);
            }
            i /= 2;
        }
        Ok(out)
    }
}

/// Whether `proof` puts `leaf` at `index` of a tree of `count` leaves with root `root`
/// (`BatchClaims.verify` in Solidity).
pub fn verify_claim(leaf: B256, index: usize, count: usize, proof: &[B256], root: B256) -> bool {
    if index >= count || count > MAX_BATCH_CLAIMS {
        return false;
    }
    let (mut h, mut i, mut n, mut k) = (leaf, index, count, 0usize);
    while n > 1 {
        if i % 2 == 1 {
            let Some(s) = proof.get(k) else { return false };
            h = claim_node(s, &h);
            k += 1;
        } else if i + 1 < n {
            let Some(s) = proof.get(k) else { return false };
            h = claim_node(&h, s);
            k += 1;
        }
        i /= 2;
        n = n.div_ceil(2);
    }
    k == proof.len() && h == root
}

/// When a batch may be processed, and the position it queues at (spec: EXIT-13): the rule of a
/// child-block output (EXIT-2) applied to the batch's youngest claim, whatever its kind, with
/// that claim's position. No claim is processed earlier than it would be alone.
pub fn batch_exitable_at(now: u64, youngest_block_timestamp: u64, period: u64) -> u64 {
    now.saturating_add(period)
        .max(youngest_block_timestamp.saturating_add(period.saturating_mul(2)))
}

/// Why a transaction shown at a claim's position does not back the claim (spec: CHAL-6, EXIT-15).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimMismatch {
    /// The transaction breaks a stateless rule: nothing there can be paid.
    #[error("transaction at the claim's position is invalid")]
    InvalidTransaction,
    /// A deposit outside a deposit block, or another type inside one (EXIT-1).
    #[error("transaction kind does not match its block")]
    WrongBlockKind,
    /// The transaction has no output at the claim's index.
    #[error("no output {output_index}")]
    NoSuchOutput {
        /// The claimed output index.
        output_index: u8,
    },
    /// The output is someone else's, another token's or another amount.
    #[error("output differs from the claim")]
    OutputDiffers,
}

/// Whether `tx`, shown at `claim.pos`, has exactly the claimed output of `token` (spec: CHAL-6,
/// CHAL-9, EXIT-15).
pub fn claim_matches(tx: &Transaction, claim: &Claim, token: Address) -> Result<(), ClaimMismatch> {
    let (tx_type, _) = tx.check().map_err(|_| ClaimMismatch::InvalidTransaction)?;
    if claim.pos.is_deposit() != (tx_type == TxType::Deposit) {
        return Err(ClaimMismatch::WrongBlockKind);
    }
    let output_index = claim.pos.output_index();
    let out = tx
        .outputs
        .get(usize::from(output_index))
        .ok_or(ClaimMismatch::NoSuchOutput { output_index })?;
    if out.owner != claim.owner || out.token != token || out.amount != claim.amount {
        return Err(ClaimMismatch::OutputDiffers);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(b: u64, t: u16, o: u8) -> UtxoPos {
        UtxoPos::new(b, t, o).unwrap()
    }

    fn leaves(n: usize) -> Vec<B256> {
        (0..n).map(|i| keccak256((i as u64).to_be_bytes())).collect()
    }

    #[test]
    fn every_proof_verifies_and_no_other() {
        for n in 1..=33 {
            let tree = ClaimTree::new(leaves(n)).unwrap();
            for i in 0..n {
                let proof = tree.proof(i).unwrap();
                assert!(verify_claim(leaves(n)[i], i, n, &proof, tree.root()), "n={n} i={i}");
                // Wrong index, wrong count, wrong leaf, truncated or extended proof: refused.
                if n > 1 {
                    assert!(!verify_claim(leaves(n)[i], (i + 1) % n, n, &proof, tree.root()));
                }
                assert!(!verify_claim(B256::ZERO, i, n, &proof, tree.root()));
                let mut longer = proof.clone();
                longer.push(B256::ZERO);
                assert!(!verify_claim(leaves(n)[i], i, n, &longer, tree.root()));
                if !proof.is_empty() {
                    assert!(!verify_claim(leaves(n)[i], i, n, &proof[1..], tree.root()));
                }
            }
            assert!(!verify_claim(leaves(n)[0], n, n, &[], tree.root()));
        }
    }

    #[test]
    fn odd_nodes_are_promoted_unchanged() {
        let l = leaves(3);
        let tree = ClaimTree::new(l.clone()).unwrap();
        assert_eq!(tree.root(), claim_node(&claim_node(&l[0], &l[1]), &l[2]));
        assert_eq!(tree.proof(2).unwrap(), vec![claim_node(&l[0], &l[1])]);
        assert_eq!(ClaimTree::new(vec![l[0]]).unwrap().root(), l[0]);
        assert!(ClaimTree::new(vec![]).is_err());
    }

    #[test]
    fn records_round_trip_and_refuse_bad_amounts() {
        let claims = vec![(p(1, 0, 0), U256::from(5u8)), (p(1000, 7, 3), max_claim_amount())];
        let bytes = encode_claims(&claims).unwrap();
        assert_eq!(bytes.len(), 40);
        assert_eq!(decode_claims(&bytes).unwrap(), claims);
        assert!(encode_claims(&[(p(1, 0, 0), U256::ZERO)]).is_err());
        assert!(encode_claims(&[(p(1, 0, 0), max_claim_amount() + U256::from(1u8))]).is_err());
        assert!(decode_claims(&bytes[..19]).is_err());
        assert!(decode_claims(&[]).is_err());
        assert!(decode_claims(&[0u8; 20]).is_err(), "position 0 is invalid");
    }

    #[test]
    fn groups_ascend_from_above_the_watermark() {
        let a = (p(1000, 1, 0), U256::from(1u8));
        let b = (p(1000, 1, 1), U256::from(1u8));
        assert!(check_group(&[a, b], 0).is_ok());
        assert!(check_group(&[b, a], 0).is_err());
        assert!(check_group(&[a, a], 0).is_err());
        assert!(check_group(&[a, b], a.0.to_u128()).is_err());
        assert!(check_group(&[b], a.0.to_u128()).is_ok());
    }

    #[test]
    fn the_batch_waits_for_its_youngest_claim() {
        assert_eq!(batch_exitable_at(100, 0, 10), 110);
        assert_eq!(batch_exitable_at(100, 95, 10), 115);
    }
}
