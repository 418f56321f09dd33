//! Audit of issue 19's grouped zlib body (groups deflated on all cores, laid end to end with a
//! combined adler32): for incompressible and mixed transactions up to the largest signed size,
//! group boundaries anywhere, any thread count, the body is one ordinary zlib stream that every
//! reader decodes to exactly the frames — in one piece, byte by byte (the watcher's streaming
//! download) and with an independent inflater — and any corruption is refused, never misread.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy_primitives::B256;
use plasma_spec::{
    MAX_SIGNED_TX_BYTES,
    wire::{self, BlockDecoder, Encoding, HEADER_LEN},
};
use proptest::prelude::*;

fn txs_of(sizes: &[(usize, u8)], seed: u64) -> Vec<Vec<u8>> {
    let mut x = seed | 1;
    sizes
        .iter()
        .map(|&(n, kind)| {
            (0..n.min(MAX_SIGNED_TX_BYTES))
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match kind % 3 {
                        0 => x as u8,       // incompressible
                        1 => (i % 7) as u8, // very compressible
                        _ => {
                            if i % 32 > 24 {
                                x as u8
                            } else {
                                0
                            }
                        } // ABI-like
                    }
                })
                .collect()
        })
        .collect()
}

fn frames(txs: &[Vec<u8>]) -> Vec<u8> {
    txs.iter().flat_map(|t| (t.len() as u32).to_be_bytes().into_iter().chain(t.clone())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn grouped_body_reads_the_same_everywhere(
        sizes in proptest::collection::vec(
            (prop_oneof![Just(0usize), 1usize..64, Just(MAX_SIGNED_TX_BYTES), 1usize..MAX_SIGNED_TX_BYTES], any::<u8>()),
            0..300,
        ),
        seed in any::<u64>(),
        threads in 1usize..6,
    ) {
        let txs = txs_of(&sizes, seed);
        let root = B256::repeat_byte(7);
        let groups = wire::deflate_groups(&txs, threads).unwrap();
        let bytes = wire::encode_zlib_block(5000, root, &groups).unwrap();
        prop_assert_eq!(&bytes, &wire::encode_block(5000, root, &txs, Encoding::Zlib).unwrap());
        // One piece.
        let (h, got) = wire::decode_block(&bytes).unwrap();
        prop_assert_eq!((h.blknum, h.root, h.count as usize), (5000, root, txs.len()));
        prop_assert!(got.iter().map(|b| b.to_vec()).eq(txs.iter().cloned()));
        // Byte by byte, as a slow download feeds it.
        let mut d = BlockDecoder::new();
        for b in bytes.chunks(1 + (seed % 997) as usize) {
            d.push(b).unwrap();
        }
        let (_, streamed) = d.finish().unwrap();
        prop_assert!(streamed.iter().map(|b| b.to_vec()).eq(txs.iter().cloned()));
        // An independent inflater, which checks the adler32 itself.
        let mut z = flate2::Decompress::new(true);
        let mut out = Vec::with_capacity(frames(&txs).len() + 16);
        let st = z.decompress_vec(&bytes[HEADER_LEN..], &mut out, flate2::FlushDecompress::Finish).unwrap();
        prop_assert_eq!(st, flate2::Status::StreamEnd);
        prop_assert_eq!(z.total_in() as usize, bytes.len() - HEADER_LEN, "nothing after the stream");
        prop_assert_eq!(out, frames(&txs));
        // Corruption anywhere in the body (a flipped bit) is an error or other bytes, never a
        // panic (whatever it decodes to is then judged by its Merkle root); a cut is refused.
        if bytes.len() > HEADER_LEN {
            let at = HEADER_LEN + (seed as usize) % (bytes.len() - HEADER_LEN);
            let mut bad = bytes.clone();
            bad[at] ^= 1 << (seed % 8);
            let _ = wire::decode_block(&bad);
            prop_assert!(wire::decode_block(&bytes[..bytes.len() - 1]).is_err());
        }
    }
}
