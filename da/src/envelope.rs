//! A chunk as the operator sends it to a tower (spec: DA-3): the signed header, the chunk's index,
//! its proof and its bytes, in one flat big-endian encoding.

use crate::{
    ChunkProof, DaError, DaHeader, MAX_DATA_LEN, Params, encode,
    tree::{tree_depth, verify_chunk},
};
use alloy_primitives::{Address, B256, Bytes};
use plasma_spec::{SIGNATURE_LEN, Signer, SigningDomain};

/// The envelope's first four bytes.
pub const ENVELOPE_MAGIC: [u8; 4] = *b"PLC1";
/// The longest proof: depth of a tree over [`crate::MAX_TOWERS`] chunks.
pub const MAX_PROOF_LEN: usize = tree_depth(crate::MAX_TOWERS);
/// The longest chunk any valid header allows: `k = 1` and [`MAX_DATA_LEN`] bytes.
pub const MAX_CHUNK_LEN: usize = 8 * (MAX_DATA_LEN as usize).div_ceil(7);
/// Bytes before the proof: magic, header, signature, index, proof length.
const FIXED_LEN: usize = 4 + 8 + 32 + 8 + 2 + 2 + 32 + SIGNATURE_LEN + 2 + 1;

/// One tower's chunk with everything it needs to check it (spec: DA-3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkEnvelope {
    /// The operator's header.
    pub header: DaHeader,
    /// The operator's signature over the header.
    pub header_sig: Bytes,
    /// The chunk's index.
    pub index: u16,
    /// The chunk's proof against `header.chunk_root`.
    pub proof: ChunkProof,
    /// The chunk's bytes.
    pub chunk: Vec<u8>,
}

impl ChunkEnvelope {
    /// `"PLC1" ‖ blknum u64 ‖ txRoot ‖ dataLen u64 ‖ k u16 ‖ n u16 ‖ chunkRoot ‖ headerSig 65 ‖
    /// index u16 ‖ proofLen u8 ‖ proof ‖ chunkLen u32 ‖ chunk`, all big-endian. A signature that
    /// is not 65 bytes is written zero-padded or cut (it then fails [`Self::verify`]).
    pub fn encode(&self) -> Vec<u8> {
        let h = &self.header;
        let mut out =
            Vec::with_capacity(FIXED_LEN + 32 * self.proof.0.len() + 4 + self.chunk.len());
        out.extend_from_slice(&ENVELOPE_MAGIC);
        out.extend_from_slice(&h.blknum.to_be_bytes());
        out.extend_from_slice(h.tx_root.as_slice());
        out.extend_from_slice(&h.data_len.to_be_bytes());
        out.extend_from_slice(&h.k.to_be_bytes());
        out.extend_from_slice(&h.n.to_be_bytes());
        out.extend_from_slice(h.chunk_root.as_slice());
        let mut sig = [0u8; SIGNATURE_LEN];
        let take = self.header_sig.len().min(SIGNATURE_LEN);
        sig[..take].copy_from_slice(&self.header_sig[..take]);
        out.extend_from_slice(&sig);
        out.extend_from_slice(&self.index.to_be_bytes());
        // Proofs longer than 255 cannot be written; they never verify anyway (max depth 10).
        let proof = &self.proof.0[..self.proof.0.len().min(usize::from(u8::MAX))];
        out.push(proof.len() as u8);
        for p in proof {
            out.extend_from_slice(p.as_slice());
        }
        let chunk = &self.chunk[..self.chunk.len().min(u32::MAX as usize)];
        out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
        out
    }

    /// Parses an envelope. Bounded: the proof is at most [`MAX_PROOF_LEN`] hashes, the chunk at
    /// most [`MAX_CHUNK_LEN`] bytes and exactly the rest of the input; nothing is allocated before
    /// the input is known to hold it. Semantic checks are [`Self::verify`]'s.
    pub fn decode(bytes: &[u8]) -> Result<Self, DaError> {
        let mut r = Reader { bytes, at: 0 };
        if r.take::<4>()? != ENVELOPE_MAGIC {
            return Err(DaError::Malformed("not a chunk envelope (magic)".into()));
        }
        let header = DaHeader {
            blknum: u64::from_be_bytes(r.take()?),
            tx_root: B256::new(r.take()?),
            data_len: u64::from_be_bytes(r.take()?),
            k: u16::from_be_bytes(r.take()?),
            n: u16::from_be_bytes(r.take()?),
            chunk_root: B256::new(r.take()?),
        };
        let header_sig = Bytes::copy_from_slice(&r.take::<SIGNATURE_LEN>()?);
        let index = u16::from_be_bytes(r.take()?);
        let [proof_len] = r.take::<1>()?;
        let proof_len = usize::from(proof_len);
        if proof_len > MAX_PROOF_LEN {
            return Err(DaError::Malformed(format!(
                "proof of {proof_len} hashes, at most {MAX_PROOF_LEN}"
            )));
        }
        let proof = (0..proof_len).map(|_| r.take().map(B256::new)).collect::<Result<_, _>>()?;
        let chunk_len = u32::from_be_bytes(r.take()?) as usize;
        if chunk_len > MAX_CHUNK_LEN {
            return Err(DaError::Malformed(format!(
                "chunk of {chunk_len} bytes, at most {MAX_CHUNK_LEN}"
            )));
        }
        let rest = r.rest();
        if rest.len() != chunk_len {
            return Err(DaError::Malformed(format!(
                "chunk length {chunk_len} but {} bytes follow",
                rest.len()
            )));
        }
        Ok(Self { header, header_sig, index, proof: ChunkProof(proof), chunk: rest.to_vec() })
    }

    /// Checks the envelope (spec: DA-3): the header's params are valid and its data length
    /// allowed, the index is in range, the header is signed by `operator`, the chunk is
    /// `params.chunk_len(data_len)` bytes and its proof leads to `header.chunk_root`.
    pub fn verify(&self, domain: &SigningDomain, operator: Address) -> Result<(), DaError> {
        let h = &self.header;
        let params = h.params()?;
        crate::params::check_len(h.data_len)?;
        if self.index >= params.n {
            return Err(DaError::IndexOutOfRange { index: self.index, n: params.n });
        }
        let signer = h.signer(domain, &self.header_sig)?;
        if signer != operator {
            return Err(DaError::NotOperator { signer, operator });
        }
        let expected = params.chunk_len(h.data_len);
        if self.chunk.len() != expected {
            return Err(DaError::ChunkLength {
                index: self.index,
                expected: expected as u64,
                got: self.chunk.len() as u64,
            });
        }
        if !verify_chunk(h.chunk_root, params.n, self.index, &self.chunk, &self.proof) {
            return Err(DaError::BadProof { index: self.index });
        }
        Ok(())
    }
}

/// A cursor over untrusted bytes: every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take<const L: usize>(&mut self) -> Result<[u8; L], DaError> {
        let b =
            self.bytes.get(self.at..).and_then(<[u8]>::first_chunk::<L>).ok_or_else(|| {
                DaError::Malformed(format!("envelope truncated at byte {}", self.at))
            })?;
        self.at += L;
        Ok(*b)
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.at..).unwrap_or_default()
    }
}

/// One call for the operator (spec: DA-3): encodes the block's wire bytes, signs the header with
/// the operator key, and returns one envelope per tower, in index order.
pub fn envelopes(
    wire: &[u8],
    blknum: u64,
    tx_root: B256,
    params: Params,
    domain: &SigningDomain,
    operator: &Signer,
) -> Result<Vec<ChunkEnvelope>, DaError> {
    let encoded = encode(wire, params)?;
    let header = DaHeader {
        blknum,
        tx_root,
        data_len: encoded.data_len,
        k: params.k,
        n: params.n,
        chunk_root: encoded.root(),
    };
    let header_sig = header.sign(domain, operator);
    let proofs: Vec<ChunkProof> = (0..params.n).map(|i| encoded.proof(i)).collect();
    Ok(encoded
        .chunks
        .into_iter()
        .zip(proofs)
        .zip(0u16..)
        .map(|((chunk, proof), index)| ChunkEnvelope {
            header,
            header_sig: header_sig.clone(),
            index,
            proof,
            chunk,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use plasma_spec::vectors::{test_key, vector_domain};
    use proptest::prelude::*;

    fn sample(len: usize, k: u16, n: u16) -> Vec<ChunkEnvelope> {
        let wire: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let params = Params::new(k, n).unwrap();
        envelopes(&wire, 2000, B256::repeat_byte(0x11), params, &vector_domain(), &test_key(1))
            .unwrap()
    }

    #[test]
    fn envelopes_verify_and_round_trip() {
        let operator = test_key(1).address();
        for env in sample(1000, 3, 5) {
            env.verify(&vector_domain(), operator).unwrap();
            let bytes = env.encode();
            assert_eq!(&bytes[..4], b"PLC1");
            assert_eq!(ChunkEnvelope::decode(&bytes).unwrap(), env);
        }
    }

    #[test]
    fn verify_names_what_is_wrong() {
        let d = vector_domain();
        let operator = test_key(1).address();
        let env = sample(1000, 3, 5).remove(1);
        let mut e = env.clone();
        e.chunk[0] ^= 1;
        assert_eq!(e.verify(&d, operator), Err(DaError::BadProof { index: 1 }));
        assert_eq!(e.verify(&d, operator).unwrap_err().code(), "BadChunkProof");
        let mut e = env.clone();
        e.index = 2;
        assert_eq!(e.verify(&d, operator), Err(DaError::BadProof { index: 2 }));
        let mut e = env.clone();
        e.chunk.pop();
        assert!(matches!(e.verify(&d, operator), Err(DaError::ChunkLength { index: 1, .. })));
        let other = test_key(2).address();
        assert_eq!(
            env.verify(&d, other),
            Err(DaError::NotOperator { signer: operator, operator: other })
        );
        let mut e = env.clone();
        e.header.blknum += 1; // the signature no longer covers the header
        assert!(matches!(e.verify(&d, operator), Err(DaError::NotOperator { .. })));
        let mut e = env.clone();
        e.header.k = 6;
        assert_eq!(e.verify(&d, operator), Err(DaError::BadParams { k: 6, n: 5 }));
        let mut e = env.clone();
        e.index = 5;
        assert_eq!(e.verify(&d, operator), Err(DaError::IndexOutOfRange { index: 5, n: 5 }));
        let mut e = env;
        e.header_sig = Bytes::from(vec![0u8; 65]);
        assert!(matches!(e.verify(&d, operator), Err(DaError::BadSignature(_))));
    }

    #[test]
    fn hostile_bytes_are_refused_without_panics() {
        let good = sample(100, 2, 3).remove(2).encode();
        // Every truncation and every one-byte extension.
        for len in 0..good.len() {
            assert!(matches!(ChunkEnvelope::decode(&good[..len]), Err(DaError::Malformed(_))));
        }
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(ChunkEnvelope::decode(&long), Err(DaError::Malformed(_))));
        // A huge claimed chunk length does not allocate: refused by the bound.
        let proof_len_at = FIXED_LEN - 1;
        let chunk_len_at = FIXED_LEN + 32 * usize::from(good[proof_len_at]);
        let mut huge = good.clone();
        huge[chunk_len_at..chunk_len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(ChunkEnvelope::decode(&huge), Err(DaError::Malformed(_))));
        let mut deep = good.clone();
        deep[proof_len_at] = 11;
        assert!(matches!(ChunkEnvelope::decode(&deep), Err(DaError::Malformed(_))));
        let mut magic = good;
        magic[3] = b'2';
        assert!(matches!(ChunkEnvelope::decode(&magic), Err(DaError::Malformed(_))));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = ChunkEnvelope::decode(&bytes);
            let mut framed = ENVELOPE_MAGIC.to_vec();
            framed.extend_from_slice(&bytes);
            if let Ok(env) = ChunkEnvelope::decode(&framed) {
                prop_assert_eq!(env.encode(), framed);
            }
        }

        #[test]
        fn envelopes_round_trip(
            blknum in any::<u64>(), data_len in any::<u64>(), k in any::<u16>(), n in any::<u16>(),
            index in any::<u16>(), roots in any::<[u8; 64]>(), sig in any::<[u8; 32]>(),
            proof_len in 0usize..=10, chunk in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let env = ChunkEnvelope {
                header: DaHeader {
                    blknum, tx_root: B256::from_slice(&roots[..32]), data_len, k, n,
                    chunk_root: B256::from_slice(&roots[32..]),
                },
                header_sig: Bytes::from([sig.as_slice(), sig.as_slice(), &[27]].concat()),
                index,
                proof: ChunkProof((0..proof_len).map(|i| B256::repeat_byte(i as u8)).collect()),
                chunk,
            };
            prop_assert_eq!(ChunkEnvelope::decode(&env.encode()).unwrap(), env);
        }
    }
}
