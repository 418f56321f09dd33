//! The operator's signed header of a coded block and a tower's receipt for its chunk
//! (spec: DA-3), both EIP-712 typed data in the deployment's [`SigningDomain`].

use crate::{DaError, Params};
use alloy_primitives::{Address, B256, Bytes};
use plasma_spec::{Signer, SigningDomain, recover_signer};

/// The EIP-712 structs; their type strings are the spec's (spec: DA-3).
#[allow(missing_docs, unreachable_pub)]
mod typed {
    alloy_sol_types::sol! {
        struct DaHeader {
            uint64 blknum;
            bytes32 txRoot;
            uint64 dataLen;
            uint16 k;
            uint16 n;
            bytes32 chunkRoot;
        }
        struct DaReceipt {
            uint64 blknum;
            bytes32 chunkRoot;
            uint16 index;
        }
    }
}

/// What the operator signs for a block it hands to the towers (spec: DA-3): the block's
/// committed Merkle root (`tx_root`, MERKLE-6) binds the chunks to the L1 commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaHeader {
    /// The child block's number.
    pub blknum: u64,
    /// The block's Merkle root as committed on L1.
    pub tx_root: B256,
    /// Length of the coded bytes (the block's wire form, OP-9).
    pub data_len: u64,
    /// Chunks needed to rebuild.
    pub k: u16,
    /// Chunks in all.
    pub n: u16,
    /// The root of the chunk tree (spec: DA-2).
    pub chunk_root: B256,
}

impl DaHeader {
    /// The code parameters, checked.
    pub const fn params(&self) -> Result<Params, DaError> {
        Params::new(self.k, self.n)
    }

    fn typed(&self) -> typed::DaHeader {
        typed::DaHeader {
            blknum: self.blknum,
            txRoot: self.tx_root,
            dataLen: self.data_len,
            k: self.k,
            n: self.n,
            chunkRoot: self.chunk_root,
        }
    }

    /// The EIP-712 digest the operator signs.
    pub fn digest(&self, domain: &SigningDomain) -> B256 {
        domain.digest(&self.typed())
    }

    /// The operator's signature (65 bytes).
    pub fn sign(&self, domain: &SigningDomain, signer: &Signer) -> Bytes {
        signer.sign_digest(self.digest(domain))
    }

    /// Who signed `sig` over this header.
    pub fn signer(&self, domain: &SigningDomain, sig: &[u8]) -> Result<Address, DaError> {
        Ok(recover_signer(self.digest(domain), sig, 0)?)
    }
}

/// A tower's word that it durably holds chunk `index` of the codeword `chunk_root` of block
/// `blknum` (spec: DA-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The child block's number.
    pub blknum: u64,
    /// The chunk root of the header the chunk came with.
    pub chunk_root: B256,
    /// The chunk's index (the tower's index).
    pub index: u16,
}

impl Receipt {
    fn typed(&self) -> typed::DaReceipt {
        typed::DaReceipt { blknum: self.blknum, chunkRoot: self.chunk_root, index: self.index }
    }

    /// The EIP-712 digest the tower signs.
    pub fn digest(&self, domain: &SigningDomain) -> B256 {
        domain.digest(&self.typed())
    }

    /// The tower's signature (65 bytes).
    pub fn sign(&self, domain: &SigningDomain, signer: &Signer) -> Bytes {
        signer.sign_digest(self.digest(domain))
    }

    /// Who signed `sig` over this receipt.
    pub fn signer(&self, domain: &SigningDomain, sig: &[u8]) -> Result<Address, DaError> {
        Ok(recover_signer(self.digest(domain), sig, 0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_sol_types::SolStruct;
    use plasma_spec::vectors::{test_key, vector_domain};

    #[test]
    fn type_strings_are_the_specs() {
        assert_eq!(
            typed::DaHeader::eip712_encode_type(),
            "DaHeader(uint64 blknum,bytes32 txRoot,uint64 dataLen,uint16 k,uint16 n,bytes32 chunkRoot)"
        );
        assert_eq!(
            typed::DaReceipt::eip712_encode_type(),
            "DaReceipt(uint64 blknum,bytes32 chunkRoot,uint16 index)"
        );
    }

    #[test]
    fn signatures_recover_their_signer() {
        let d = vector_domain();
        let h = DaHeader {
            blknum: 2000,
            tx_root: B256::repeat_byte(1),
            data_len: 100,
            k: 3,
            n: 5,
            chunk_root: B256::repeat_byte(2),
        };
        let key = test_key(1);
        let sig = h.sign(&d, &key);
        assert_eq!(h.signer(&d, &sig), Ok(key.address()));
        let other = DaHeader { blknum: 3000, ..h };
        assert_ne!(other.signer(&d, &sig), Ok(key.address()));
        let r = Receipt { blknum: 2000, chunk_root: h.chunk_root, index: 4 };
        let sig = r.sign(&d, &test_key(2));
        assert_eq!(r.signer(&d, &sig), Ok(test_key(2).address()));
        assert!(matches!(r.signer(&d, &sig[..64]), Err(DaError::BadSignature(_))));
        assert_eq!(h.digest(&d), h.typed().eip712_signing_hash(d.domain()));
    }
}
