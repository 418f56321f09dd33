//! EIP-712 signing and signer recovery (spec: SIG, EXIT-9).
//!
//! Recovery goes through libsecp256k1 (the `secp256k1` crate), as reth does for sender recovery:
//! it is several times faster than the pure-Rust k256 that alloy uses by default, and recovery is
//! the operator's throughput ceiling.

use crate::{
    constants::{EIP712_NAME, EIP712_VERSION, SIGNATURE_LEN},
    error::SignatureError,
    tx::{SignedTransaction, Transaction},
};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_sol_types::{Eip712Domain, SolStruct, sol};
use secp256k1::{
    Message, SECP256K1, SecretKey,
    ecdsa::{RecoverableSignature, RecoveryId},
};
use std::borrow::Cow;

sol! {
    /// An owner's permission for `exitor` to start exits of the owner's outputs on their behalf
    /// until `deadline`, valid while `nonce` equals the owner's authorisation nonce on L1
    /// (spec: EXIT-9).
    #[derive(Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct ExitAuthorization {
        address exitor;
        uint256 deadline;
        uint256 nonce;
    }
}

/// Half the order of secp256k1; `s` above it is the malleable twin (spec: SIG-3, EIP-2).
const SECP256K1_N_DIV_2: U256 = U256::from_be_slice(&alloy_primitives::hex!(
    "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"
));
/// The order of secp256k1.
const SECP256K1_N: U256 = U256::from_be_slice(&alloy_primitives::hex!(
    "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
));

/// The EIP-712 domain of one deployment, with its separator computed once (spec: SIG-1).
///
/// Binding signatures to the chain id and the contract address means a transaction signed for a
/// testnet or another deployment can never be replayed here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningDomain {
    domain: Eip712Domain,
    separator: B256,
}

impl SigningDomain {
    /// The domain of the plasma contract at `verifying_contract` on chain `chain_id`.
    pub fn new(chain_id: u64, verifying_contract: Address) -> Self {
        let domain = Eip712Domain::new(
            Some(Cow::Borrowed(EIP712_NAME)),
            Some(Cow::Borrowed(EIP712_VERSION)),
            Some(U256::from(chain_id)),
            Some(verifying_contract),
            None,
        );
        let separator = domain.separator();
        Self { domain, separator }
    }

    /// The alloy domain, for wallets that sign typed data themselves.
    pub const fn domain(&self) -> &Eip712Domain {
        &self.domain
    }

    /// The domain separator.
    pub const fn separator(&self) -> B256 {
        self.separator
    }

    /// `keccak256(0x1901 ‖ separator ‖ hashStruct(value))`.
    pub fn digest<T: SolStruct>(&self, value: &T) -> B256 {
        let mut buf = [0u8; 66];
        buf[0] = 0x19;
        buf[1] = 0x01;
        buf[2..34].copy_from_slice(self.separator.as_slice());
        buf[34..].copy_from_slice(value.eip712_hash_struct().as_slice());
        keccak256(buf)
    }

    /// The digest an input's owner signs to spend it (spec: SIG-1).
    ///
    /// The same value as [`Self::digest`] of `tx` (tested against alloy's
    /// `eip712_signing_hash`), without what alloy's generic `hashStruct` redoes for every value:
    /// building both type strings and hashing them (once per process here), and a heap buffer
    /// per struct. Every transaction the operator accepts and the watcher re-verifies needs one.
    pub fn tx_digest(&self, tx: &Transaction) -> B256 {
        let (tx_type_hash, output_type_hash) = type_hashes();
        // hashStruct(Output) for each output, hashed together (EIP-712's array encoding).
        let mut outputs = alloy_primitives::Keccak256::new();
        for o in &tx.outputs {
            let mut word = [0u8; 4 * 32];
            word[..32].copy_from_slice(output_type_hash.as_slice());
            word[32 + 12..64].copy_from_slice(o.owner.as_slice());
            word[64 + 12..96].copy_from_slice(o.token.as_slice());
            word[96..].copy_from_slice(&o.amount.to_be_bytes::<32>());
            outputs.update(keccak256(word));
        }
        let mut inputs = alloy_primitives::Keccak256::new();
        for i in &tx.inputs {
            inputs.update(i.to_be_bytes::<32>());
        }
        let mut data = [0u8; 5 * 32];
        data[..32].copy_from_slice(tx_type_hash.as_slice());
        data[63] = tx.txType;
        data[64..96].copy_from_slice(inputs.finalize().as_slice());
        data[96..128].copy_from_slice(outputs.finalize().as_slice());
        data[128..].copy_from_slice(tx.metadata.as_slice());
        let mut buf = [0u8; 66];
        buf[0] = 0x19;
        buf[1] = 0x01;
        buf[2..34].copy_from_slice(self.separator.as_slice());
        buf[34..].copy_from_slice(keccak256(data).as_slice());
        keccak256(buf)
    }

    /// [`Self::tx_digest`] of each transaction, in order, with the Keccaks of all of them run
    /// together, level by level of EIP-712's `hashStruct` (the outputs' structs and the inputs,
    /// then the outputs' array, the transaction's struct, the digest): eight messages to each
    /// run of the lanes' Keccak where the CPU has AVX-512 (`plasma_keccak_lanes`). Equal to
    /// `tx_digest` for every transaction (tested on every shape).
    pub fn tx_digests(&self, txs: &[&Transaction]) -> Vec<B256> {
        use plasma_keccak_lanes::keccak256_many;
        let (tx_type_hash, output_type_hash) = type_hashes();
        // Level 1: hashStruct(Output) of every output, and the inputs' array of every
        // transaction.
        let mut messages: Vec<Vec<u8>> = Vec::with_capacity(txs.len() * 3);
        for tx in txs {
            for o in &tx.outputs {
                let mut word = vec![0u8; 4 * 32];
                word[..32].copy_from_slice(output_type_hash.as_slice());
                word[32 + 12..64].copy_from_slice(o.owner.as_slice());
                word[64 + 12..96].copy_from_slice(o.token.as_slice());
                word[96..].copy_from_slice(&o.amount.to_be_bytes::<32>());
                messages.push(word);
            }
            messages.push(tx.inputs.iter().flat_map(|i| i.to_be_bytes::<32>()).collect());
        }
        let level1 = keccak256_many(&messages.iter().map(Vec::as_slice).collect::<Vec<_>>());
        // Level 2: the outputs' array of every transaction.
        let mut at = 0;
        let mut inputs_hashes = Vec::with_capacity(txs.len());
        let arrays: Vec<Vec<u8>> = txs
            .iter()
            .map(|tx| {
                let n = tx.outputs.len();
                let array = level1[at..at + n].iter().flat_map(|h| h.0).collect();
                inputs_hashes.push(level1[at + n]);
                at += n + 1;
                array
            })
            .collect();
        let outputs_hashes = keccak256_many(&arrays.iter().map(Vec::as_slice).collect::<Vec<_>>());
        // Level 3: hashStruct(Transaction).
        let structs: Vec<[u8; 5 * 32]> = txs
            .iter()
            .zip(inputs_hashes.iter().zip(&outputs_hashes))
            .map(|(tx, (inputs, outputs))| {
                let mut data = [0u8; 5 * 32];
                data[..32].copy_from_slice(tx_type_hash.as_slice());
                data[63] = tx.txType;
                data[64..96].copy_from_slice(inputs.as_slice());
                data[96..128].copy_from_slice(outputs.as_slice());
                data[128..].copy_from_slice(tx.metadata.as_slice());
                data
            })
            .collect();
        let struct_hashes =
            keccak256_many(&structs.iter().map(|d| d.as_slice()).collect::<Vec<_>>());
        // Level 4: the digest.
        let bufs: Vec<[u8; 66]> = struct_hashes
            .iter()
            .map(|h| {
                let mut buf = [0u8; 66];
                buf[0] = 0x19;
                buf[1] = 0x01;
                buf[2..34].copy_from_slice(self.separator.as_slice());
                buf[34..].copy_from_slice(h.as_slice());
                buf
            })
            .collect();
        keccak256_many(&bufs.iter().map(|b| b.as_slice()).collect::<Vec<_>>())
    }

    /// The digest an owner signs to authorise a watchtower (spec: EXIT-9).
    pub fn exit_authorization_digest(&self, auth: &ExitAuthorization) -> B256 {
        self.digest(auth)
    }
}

/// The EIP-712 type hashes of [`Transaction`] and [`Output`], from alloy's own type strings,
/// computed once.
fn type_hashes() -> &'static (B256, B256) {
    static HASHES: std::sync::OnceLock<(B256, B256)> = std::sync::OnceLock::new();
    HASHES.get_or_init(|| {
        (
            keccak256(Transaction::eip712_encode_type().as_bytes()),
            keccak256(crate::tx::Output::eip712_encode_type().as_bytes()),
        )
    })
}

/// Checks a signature's form (spec: SIG-3) and recovers who signed `digest`.
pub fn recover_signer(
    digest: B256,
    signature: &[u8],
    index: usize,
) -> Result<Address, SignatureError> {
    recover_signer_key(digest, signature, index).map(|(address, _)| address)
}

/// [`recover_signer`], with the recovered public key (`x ‖ y`, uncompressed without its tag):
/// what batch verification files under the address (spec: SIG-5).
pub fn recover_signer_key(
    digest: B256,
    signature: &[u8],
    index: usize,
) -> Result<(Address, [u8; 64]), SignatureError> {
    let sig: &[u8; SIGNATURE_LEN] =
        signature.try_into().map_err(|_| SignatureError::MalformedSignature { index })?;
    let r = U256::from_be_slice(&sig[..32]);
    let s = U256::from_be_slice(&sig[32..64]);
    if r.is_zero() || s.is_zero() || r >= SECP256K1_N {
        return Err(SignatureError::MalformedSignature { index });
    }
    if s > SECP256K1_N_DIV_2 {
        return Err(SignatureError::HighS { index });
    }
    let v = sig[64];
    let recid = match v {
        27 | 28 => RecoveryId::try_from(i32::from(v - 27))
            .map_err(|_| SignatureError::BadRecoveryId { index, v })?,
        _ => return Err(SignatureError::BadRecoveryId { index, v }),
    };
    let sig = RecoverableSignature::from_compact(&sig[..64], recid)
        .map_err(|_| SignatureError::MalformedSignature { index })?;
    let key = SECP256K1
        .recover_ecdsa(Message::from_digest(digest.0), &sig)
        .map_err(|_| SignatureError::RecoveryFailed { index })?;
    let mut raw = [0u8; 64];
    raw.copy_from_slice(&key.serialize_uncompressed()[1..]);
    Ok((Address::from_raw_public_key(&raw), raw))
}

impl SignedTransaction {
    /// Recovers the signer of every input (spec: SIG-2, SIG-3). Whether each signer owns its
    /// input is the ledger's question (spec: SIG-4).
    pub fn recover_signers(&self, domain: &SigningDomain) -> Result<Vec<Address>, SignatureError> {
        let inputs = self.transaction.inputs.len();
        if self.signatures.len() != inputs {
            return Err(SignatureError::SignatureCountMismatch {
                inputs,
                signatures: self.signatures.len(),
            });
        }
        if inputs == 0 {
            return Ok(Vec::new());
        }
        let digest = domain.tx_digest(&self.transaction);
        self.signatures.iter().enumerate().map(|(i, sig)| recover_signer(digest, sig, i)).collect()
    }

    /// [`Self::recover_signers`] of each transaction, in order, with the digests of all of them
    /// computed together ([`SigningDomain::tx_digests`], the lanes' Keccak): the same results,
    /// errors included (tested on every shape and on each error).
    pub fn recover_signers_many(
        txs: &[&Self],
        domain: &SigningDomain,
    ) -> Vec<Result<Vec<Address>, SignatureError>> {
        // Those `recover_signers` would hash: some inputs, one signature each.
        let hashed = |t: &Self| {
            !t.transaction.inputs.is_empty() && t.signatures.len() == t.transaction.inputs.len()
        };
        let refs: Vec<&Transaction> =
            txs.iter().filter(|t| hashed(t)).map(|t| &t.transaction).collect();
        let mut digests = domain.tx_digests(&refs).into_iter();
        txs.iter()
            .map(|t| match if hashed(t) { digests.next() } else { None } {
                Some(digest) => t
                    .signatures
                    .iter()
                    .enumerate()
                    .map(|(i, sig)| recover_signer(digest, sig, i))
                    .collect(),
                None => t.recover_signers(domain),
            })
            .collect()
    }
}

/// A secp256k1 private key that signs typed-data digests the way Ethereum wallets do.
#[derive(Clone)]
pub struct Signer {
    key: SecretKey,
    address: Address,
}

impl core::fmt::Debug for Signer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the key.
        f.debug_struct("Signer").field("address", &self.address).finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from a 32-byte private key; `None` if the bytes are not a valid key.
    pub fn from_bytes(key: &B256) -> Option<Self> {
        let key = SecretKey::from_byte_array(key.0).ok()?;
        let public = key.public_key(SECP256K1);
        let address = Address::from_raw_public_key(&public.serialize_uncompressed()[1..]);
        Some(Self { key, address })
    }

    /// The signer's Ethereum address.
    pub const fn address(&self) -> Address {
        self.address
    }

    /// Signs a digest: 65 bytes `r ‖ s ‖ v`, low-s (libsecp256k1 always normalises), `v` 27/28.
    pub fn sign_digest(&self, digest: B256) -> Bytes {
        let sig = SECP256K1.sign_ecdsa_recoverable(Message::from_digest(digest.0), &self.key);
        let (recid, compact) = sig.serialize_compact();
        let mut out = Vec::with_capacity(SIGNATURE_LEN);
        out.extend_from_slice(&compact);
        out.push(27 + i32::from(recid) as u8);
        Bytes::from(out)
    }

    /// Signs a transaction's EIP-712 digest (spec: SIG-1).
    pub fn sign_tx(&self, domain: &SigningDomain, tx: &Transaction) -> Bytes {
        self.sign_digest(domain.tx_digest(tx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{position::UtxoPos, tx::Output};
    use alloy_primitives::address;

    fn signer(n: u8) -> Signer {
        Signer::from_bytes(&B256::repeat_byte(n)).unwrap()
    }

    fn domain() -> SigningDomain {
        SigningDomain::new(31337, address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"))
    }

    fn tx() -> Transaction {
        Transaction::payment(
            &[UtxoPos::new(1000, 0, 0).unwrap()],
            vec![Output::new(signer(2).address(), Address::ZERO, U256::from(10))],
            B256::ZERO,
        )
    }

    #[test]
    fn digest_matches_alloys_eip712_signing_hash() {
        let d = domain();
        assert_eq!(d.tx_digest(&tx()), tx().eip712_signing_hash(d.domain()));
    }

    #[test]
    fn tx_digest_is_the_generic_eip712_digest_for_any_shape() {
        // Every count of inputs and outputs (and some out of the rules: the digest does not
        // judge), several tokens, amounts, types and metadata.
        let d = domain();
        let mut all = Vec::new();
        for n_in in 0..=6u16 {
            for n_out in 0..=6u8 {
                let inputs: Vec<_> =
                    (0..n_in).map(|i| UtxoPos::new(1000 + u64::from(i), i, 1).unwrap()).collect();
                let outputs = (0..n_out)
                    .map(|o| {
                        Output::new(
                            signer(o + 1).address(),
                            Address::repeat_byte(o),
                            U256::MAX >> (u32::from(o) * 7),
                        )
                    })
                    .collect();
                let mut tx =
                    Transaction::payment(&inputs, outputs, B256::repeat_byte(n_out ^ 0x5a));
                for tx_type in [1, 2, 3, 0, 255] {
                    tx.txType = tx_type;
                    assert_eq!(d.tx_digest(&tx), tx.eip712_signing_hash(d.domain()));
                    assert_eq!(d.tx_digest(&tx), d.digest(&tx));
                    all.push(tx.clone());
                }
            }
        }
        // Together (the lanes' Keccak, level by level): the same digests, in order, for the
        // whole set, for runs of one shape, and for none.
        let refs: Vec<&Transaction> = all.iter().collect();
        let one_by_one: Vec<B256> = all.iter().map(|t| d.tx_digest(t)).collect();
        assert_eq!(d.tx_digests(&refs), one_by_one);
        let same_shape: Vec<&Transaction> = all.iter().filter(|t| t.inputs.len() == 1).collect();
        assert!(same_shape.len() > 16);
        let expected: Vec<B256> = same_shape.iter().map(|t| d.tx_digest(t)).collect();
        assert_eq!(d.tx_digests(&same_shape), expected);
        assert!(d.tx_digests(&[]).is_empty());
    }

    /// Recovered together, each transaction's result is its own `recover_signers`': valid
    /// signatures of 1..=4 inputs, no inputs, a signature too many or too few, a malformed one,
    /// a high-s twin, a signature of another transaction, interleaved so that a misaligned
    /// digest would show.
    #[test]
    fn signers_recovered_together_are_each_transactions_own() {
        use crate::SignedTransaction;
        let d = domain();
        let mut all = Vec::new();
        for n_in in 0..=4u16 {
            for case in 0..6 {
                let inputs: Vec<_> =
                    (0..n_in).map(|i| UtxoPos::new(7 + case as u64, i, 0).unwrap()).collect();
                let outputs =
                    vec![Output::new(signer(9).address(), Address::ZERO, U256::from(case))];
                let tx = Transaction::payment(&inputs, outputs, B256::repeat_byte(case as u8));
                let mut sigs: Vec<Bytes> =
                    (0..n_in).map(|i| signer(1 + i as u8).sign_tx(&d, &tx)).collect();
                match case {
                    1 => sigs.push(signer(1).sign_tx(&d, &tx)),
                    2 => {
                        sigs.pop();
                    }
                    3 if n_in > 0 => sigs[0] = Bytes::from(vec![0u8; 65]),
                    4 if n_in > 0 => {
                        // The malleable twin: s' = n - s, v flipped.
                        let mut b = sigs[0].to_vec();
                        let s = U256::from_be_slice(&b[32..64]);
                        b[32..64].copy_from_slice(&(SECP256K1_N - s).to_be_bytes::<32>());
                        b[64] ^= 1;
                        sigs[0] = Bytes::from(b);
                    }
                    5 if n_in > 0 => sigs[0] = signer(1).sign_tx(&d, &self::tx()),
                    _ => {}
                }
                all.push(SignedTransaction::new(tx, sigs));
            }
        }
        let refs: Vec<&SignedTransaction> = all.iter().collect();
        let together = SignedTransaction::recover_signers_many(&refs, &d);
        let one_by_one: Vec<_> = all.iter().map(|t| t.recover_signers(&d)).collect();
        assert_eq!(together, one_by_one);
        for kind in [
            |r: &Result<Vec<Address>, SignatureError>| r.is_ok(),
            |r: &Result<Vec<Address>, SignatureError>| {
                matches!(r, Err(SignatureError::SignatureCountMismatch { .. }))
            },
            |r: &Result<Vec<Address>, SignatureError>| {
                matches!(r, Err(SignatureError::MalformedSignature { .. }))
            },
            |r: &Result<Vec<Address>, SignatureError>| {
                matches!(r, Err(SignatureError::HighS { .. }))
            },
        ] {
            assert!(together.iter().any(kind));
        }
        // A signature of another transaction recovers someone else, never its own signer.
        let valid: Vec<Address> = (0..4u8).map(|i| signer(1 + i).address()).collect();
        assert!(
            together.iter().any(|r| r.as_ref().is_ok_and(|s| !s.is_empty() && s[0] != valid[0]))
        );
        assert!(SignedTransaction::recover_signers_many(&[], &d).is_empty());
    }

    #[test]
    fn type_string_is_the_one_in_the_spec() {
        assert_eq!(
            Transaction::eip712_encode_type(),
            "Transaction(uint8 txType,uint256[] inputs,Output[] outputs,bytes32 metadata)Output(address owner,address token,uint256 amount)"
        );
        assert_eq!(
            ExitAuthorization::eip712_encode_type(),
            "ExitAuthorization(address exitor,uint256 deadline,uint256 nonce)"
        );
    }

    #[test]
    fn recovers_the_signer() {
        let s = signer(1);
        let signed = SignedTransaction::new(tx(), vec![s.sign_tx(&domain(), &tx())]);
        assert_eq!(signed.recover_signers(&domain()).unwrap(), vec![s.address()]);
    }

    #[test]
    fn another_domain_recovers_someone_else() {
        let s = signer(1);
        let signed = SignedTransaction::new(tx(), vec![s.sign_tx(&domain(), &tx())]);
        let other = SigningDomain::new(1, address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"));
        assert_ne!(signed.recover_signers(&other).unwrap(), vec![s.address()]);
    }

    #[test]
    fn rejects_malleable_and_malformed_signatures() {
        let digest = domain().tx_digest(&tx());
        let good = signer(1).sign_digest(digest);
        // The high-s twin: s' = n - s, v flipped. Valid for ecrecover, refused by us.
        let s = U256::from_be_slice(&good[32..64]);
        let mut twin = good.to_vec();
        twin[32..64].copy_from_slice(&(SECP256K1_N - s).to_be_bytes::<32>());
        twin[64] = if good[64] == 27 { 28 } else { 27 };
        assert_eq!(recover_signer(digest, &twin, 0), Err(SignatureError::HighS { index: 0 }));
        let mut bad_v = good.to_vec();
        bad_v[64] = 1;
        assert_eq!(
            recover_signer(digest, &bad_v, 0),
            Err(SignatureError::BadRecoveryId { index: 0, v: 1 })
        );
        assert_eq!(
            recover_signer(digest, &good[..64], 3),
            Err(SignatureError::MalformedSignature { index: 3 })
        );
        let mut zero_r = good.to_vec();
        zero_r[..32].fill(0);
        assert_eq!(
            recover_signer(digest, &zero_r, 0),
            Err(SignatureError::MalformedSignature { index: 0 })
        );
    }

    #[test]
    fn counts_signatures() {
        let signed = SignedTransaction::new(tx(), vec![]);
        assert_eq!(
            signed.recover_signers(&domain()),
            Err(SignatureError::SignatureCountMismatch { inputs: 1, signatures: 0 })
        );
    }
}
