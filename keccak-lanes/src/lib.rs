//! Keccak-256 of many independent messages at once.
//!
//! A watcher re-verifying a block hashes every transaction twice (its Merkle leaf and its hash,
//! MERKLE-1) and one core's scalar Keccak-f\[1600\] is a fifth of its time. Independent sponges
//! have no data dependency between them, so eight of them fit the eight 64-bit lanes of an
//! AVX-512 register and are permuted by the same instructions: [`keccak256_many`] groups the
//! messages by how many 136-byte blocks they absorb and permutes eight at a time. Without
//! AVX-512 (checked at run time), or for the last few messages of a group, each message is
//! hashed alone by `alloy_primitives::keccak256`, so the result never depends on the CPU:
//! `keccak256_many(m)[i] == keccak256(m[i])` for every input, tested against alloy's Keccak on
//! random messages of every length around the block boundaries.
//!
//! The same idea serves secp256k1's field square roots (`field`, with AVX-512 IFMA): see
//! [`secp256k1_sqrt_many`].

mod field;

pub use field::{secp256k1_sqrt_many, sqrt_lanes_available};

use alloy_primitives::{B256, keccak256};

/// Bytes absorbed per permutation (Keccak-256's rate).
const RATE: usize = 136;
/// Messages permuted together.
const LANES: usize = 8;

/// Whether this CPU hashes eight messages at once (AVX-512F); without it [`keccak256_many`]
/// hashes one by one, with the same results.
pub fn lanes_available() -> bool {
    x86::available()
}

/// `keccak256` of each message, in order.
pub fn keccak256_many(messages: &[&[u8]]) -> Vec<B256> {
    let mut out = vec![B256::ZERO; messages.len()];
    if !x86::available() || messages.len() < LANES {
        for (o, m) in out.iter_mut().zip(messages) {
            *o = keccak256(m);
        }
        return out;
    }
    // Messages absorbing the same number of blocks go together.
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_unstable_by_key(|&i| messages[i].len() / RATE);
    let mut at = 0;
    while at < order.len() {
        let blocks = messages[order[at]].len() / RATE;
        let end =
            at + order[at..].iter().take_while(|&&i| messages[i].len() / RATE == blocks).count();
        let group = &order[at..end];
        let mut chunks = group.chunks_exact(LANES);
        for chunk in &mut chunks {
            let lanes: [&[u8]; LANES] = std::array::from_fn(|l| messages[chunk[l]]);
            let hashes = x86::hash8(&lanes, blocks + 1);
            for (l, &i) in chunk.iter().enumerate() {
                out[i] = hashes[l];
            }
        }
        for &i in chunks.remainder() {
            out[i] = keccak256(messages[i]);
        }
        at = end;
    }
    out
}

/// The Keccak-f\[1600\] round constants.
const RC: [u64; 24] = [
    0x0000000000000001,
    0x0000000000008082,
    0x800000000000808A,
    0x8000000080008000,
    0x000000000000808B,
    0x0000000080000001,
    0x8000000080008081,
    0x8000000000008009,
    0x000000000000008A,
    0x0000000000000088,
    0x0000000080008009,
    0x000000008000000A,
    0x000000008000808B,
    0x800000000000008B,
    0x8000000000008089,
    0x8000000000008003,
    0x8000000000008002,
    0x8000000000000080,
    0x000000000000800A,
    0x800000008000000A,
    0x8000000080008081,
    0x8000000000008080,
    0x0000000080000001,
    0x8000000080008008,
];

/// ρ's rotation of lane `x + 5y`.
const RHO: [u32; 25] =
    [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14];

/// π, inverted: lane `j` after π is lane `SRC[j]` before it (π moves lane `x + 5y` to
/// `y + 5((2x + 3y) mod 5)`).
const SRC: [usize; 25] = {
    let mut src = [0; 25];
    let mut i = 0;
    while i < 25 {
        let (x, y) = (i % 5, i / 5);
        src[y + 5 * ((2 * x + 3 * y) % 5)] = i;
        i += 1;
    }
    src
};

/// Eight 64-bit words to and from one AVX-512 vector: the crate's only memory accesses through
/// pointers, shared by the Keccak lanes and the square-root lanes.
#[cfg(target_arch = "x86_64")]
mod words {
    use std::arch::x86_64::{__m512i, _mm512_loadu_epi64, _mm512_storeu_epi64};

    /// The eight words as one vector.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn load8(w: &[u64; 8]) -> __m512i {
        // SAFETY: `w` is 64 readable bytes and an unaligned load needs no alignment.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_loadu_epi64(w.as_ptr().cast::<i64>())
        }
    }

    /// The vector's eight words.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) fn store8(v: __m512i) -> [u64; 8] {
        let mut w = [0u64; 8];
        // SAFETY: `w` is 64 writable bytes and an unaligned store needs no alignment.
        #[allow(unsafe_code)]
        unsafe {
            _mm512_storeu_epi64(w.as_mut_ptr().cast::<i64>(), v);
        }
        w
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{
        B256, LANES, RATE, RC, RHO, SRC,
        words::{load8, store8},
    };
    use std::arch::x86_64::{
        __m512i, _mm512_rol_epi64, _mm512_set1_epi64, _mm512_setzero_si512,
        _mm512_ternarylogic_epi64, _mm512_xor_si512,
    };

    /// Whether this CPU runs [`hash8`]'s AVX-512 code (checked once, then cached by std).
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    /// Keccak-256 of eight messages that each absorb exactly `blocks` blocks.
    pub(super) fn hash8(m: &[&[u8]; LANES], blocks: usize) -> [B256; LANES] {
        assert!(available(), "hash8 needs AVX-512F");
        assert!(m.iter().all(|m| m.len() / RATE + 1 == blocks), "messages of {blocks} blocks");
        // The padded messages, word by word, the eight lanes of each word side by side: what
        // one vector load takes.
        let total = blocks * (RATE / 8);
        let mut words = vec![[0u64; LANES]; total];
        for (l, msg) in m.iter().enumerate() {
            let mut chunks = msg.chunks_exact(8);
            let mut i = 0;
            for c in &mut chunks {
                words[i][l] = c.try_into().map_or(0, u64::from_le_bytes);
                i += 1;
            }
            // Keccak's padding: 0x01 after the message, 0x80 in the block's last byte.
            let rest = chunks.remainder();
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            last[rest.len()] = 0x01;
            words[i][l] = u64::from_le_bytes(last);
            words[total - 1][l] |= 0x80 << 56;
        }
        // SAFETY: the CPU has AVX-512F (asserted above), the only target feature
        // `hash8_avx512` is compiled for; its memory accesses are `load8`'s and `store8`'s.
        #[allow(unsafe_code)]
        let hashed = unsafe { hash8_avx512(&words) };
        hashed.map(B256::from)
    }

    #[target_feature(enable = "avx512f")]
    fn hash8_avx512(words: &[[u64; LANES]]) -> [[u8; 32]; LANES] {
        let mut a = [_mm512_setzero_si512(); 25];
        for block in words.chunks_exact(RATE / 8) {
            for (lane, w) in a.iter_mut().zip(block) {
                *lane = _mm512_xor_si512(*lane, load8(w));
            }
            permute(&mut a);
        }
        let mut out = [[0u8; 32]; LANES];
        for (w, lane) in a.iter().take(4).enumerate() {
            for (l, word) in store8(*lane).into_iter().enumerate() {
                out[l][w * 8..w * 8 + 8].copy_from_slice(&word.to_le_bytes());
            }
        }
        out
    }

    /// Keccak-f\[1600\] on eight states, lane `i` of each in `a[i]`. θ's column mix is applied
    /// as each lane is read for ρ and π, and χ writes a new state row by row: every old lane is
    /// read once, so about 35 vectors are live at a time instead of 50 (32 registers).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn permute(a: &mut [__m512i; 25]) {
        for rc in RC {
            // θ: the columns' parities, and what each column gets.
            let c: [__m512i; 5] = std::array::from_fn(|x| {
                let t = _mm512_ternarylogic_epi64::<0x96>(a[x], a[x + 5], a[x + 10]);
                _mm512_ternarylogic_epi64::<0x96>(t, a[x + 15], a[x + 20])
            });
            let d: [__m512i; 5] = std::array::from_fn(|x| {
                _mm512_xor_si512(c[(x + 4) % 5], _mm512_rol_epi64::<1>(c[(x + 1) % 5]))
            });
            let mut n = [_mm512_setzero_si512(); 25];
            // Row `y` of the new state: its lanes come from lanes `SRC[x + 5y]` of the old one
            // (π), each with θ's column value and ρ's rotation, then χ.
            macro_rules! row {
                ($y:literal: $($x:literal)*) => {{
                    let b: [__m512i; 5] = [$(
                        _mm512_rol_epi64::<{ RHO[SRC[$x + 5 * $y]] as i32 }>(_mm512_xor_si512(
                            a[SRC[$x + 5 * $y]],
                            d[SRC[$x + 5 * $y] % 5],
                        )),
                    )*];
                    for x in 0..5 {
                        n[x + 5 * $y] = _mm512_ternarylogic_epi64::<0xD2>(
                            b[x],
                            b[(x + 1) % 5],
                            b[(x + 2) % 5],
                        );
                    }
                }};
            }
            row!(0: 0 1 2 3 4);
            row!(1: 0 1 2 3 4);
            row!(2: 0 1 2 3 4);
            row!(3: 0 1 2 3 4);
            row!(4: 0 1 2 3 4);
            // ι
            n[0] = _mm512_xor_si512(n[0], _mm512_set1_epi64(rc as i64));
            *a = n;
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    use super::{B256, LANES};

    pub(super) fn available() -> bool {
        false
    }

    pub(super) fn hash8(_: &[&[u8]; LANES], _: usize) -> [B256; LANES] {
        unreachable!("never called: `available` is false")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_length_around_the_block_boundaries_hashes_as_alloy_does() {
        let data: Vec<u8> = (0..1200u32).map(|i| (i * 31 + 7) as u8).collect();
        let lens: Vec<usize> = (0..=3 * RATE + 2).collect();
        let msgs: Vec<&[u8]> = lens.iter().map(|&n| &data[n % 5..n % 5 + n]).collect();
        let got = keccak256_many(&msgs);
        for (m, h) in msgs.iter().zip(&got) {
            assert_eq!(*h, keccak256(m), "length {}", m.len());
        }
        // The path under test is the lanes' one on this CPU (else the test proves nothing new).
        eprintln!("AVX-512 lanes: {}", x86::available());
    }

    proptest! {
        #[test]
        fn any_messages_hash_as_alloy_does(msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..40)) {
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            let got = keccak256_many(&refs);
            prop_assert_eq!(got.len(), msgs.len());
            for (m, h) in msgs.iter().zip(&got) {
                prop_assert_eq!(*h, keccak256(m));
            }
        }
    }
}
