//! Square roots in secp256k1's base field, eight at a time.
//!
//! Batch verification (SIG-5 in the spec) needs each signature's `R` as a point, and a
//! signature carries only `R`'s x-coordinate and the parity of its y: one square root per
//! signature, `a^((p+1)/4)`, 253 squarings and 13 multiplications in a row. After the batch's
//! multi-scalar multiplication it was the largest cost of a watcher's re-verification (about
//! 30 % of its CPU, libsecp256k1's scalar square root). The roots of different signatures are
//! independent, so eight of them share one chain of AVX-512 IFMA instructions (52-bit
//! multiply-accumulate), one field element per 64-bit lane.
//!
//! Field elements are five 52-bit limbs (`Σ l_i·2^(52i)`, each limb below `2^52` — IFMA reads
//! only those bits — and the value below `2^260`, not necessarily reduced); a product's ten
//! columns are folded with `2^260 ≡ 0x1000003D10 (mod p)`. Only the result is reduced to its
//! canonical form, on one lane at a time in plain Rust.

/// Bytes of a field element (big-endian).
const BYTES: usize = 32;
/// Elements taken together.
const LANES: usize = 8;
/// The field's order, `p = 2^256 − 2^32 − 977`, as four little-endian 64-bit words.
const P: [u64; 4] = [0xFFFF_FFFE_FFFF_FC2F, u64::MAX, u64::MAX, u64::MAX];
/// `2^256 mod p`.
const FOLD_256: u64 = 0x1_0000_03D1;

/// Whether this CPU takes square roots eight at a time (AVX-512F and IFMA); without them
/// [`secp256k1_sqrt_many`] answers `None` and the caller takes its roots one by one.
pub fn sqrt_lanes_available() -> bool {
    x86::available()
}

/// `a^((p+1)/4) mod p` for each big-endian field element `a` (a value `≥ p` is taken mod `p`),
/// in order, canonical and big-endian: the square root of `a` whose own square root exists
/// when `a` is a square, and otherwise a value whose square is not `a` (the caller checks the
/// square: `secp256k1_sqrt_many(&[a])[0]^2 == a` exactly when `a` is a square). `None` if this
/// CPU has not the lanes ([`sqrt_lanes_available`]). The last `len % 8` values are computed in
/// lanes too, the spare lanes filled with zeros.
pub fn secp256k1_sqrt_many(values: &[[u8; BYTES]]) -> Option<Vec<[u8; BYTES]>> {
    if !x86::available() {
        return None;
    }
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.chunks(LANES) {
        let mut limbs = [[0u64; LANES]; 5];
        for (lane, value) in chunk.iter().enumerate() {
            for (i, l) in to_limbs(value).into_iter().enumerate() {
                limbs[i][lane] = l;
            }
        }
        let roots = x86::pow_sqrt8(&limbs);
        out.extend(
            (0..chunk.len())
                .map(|lane| to_bytes(canonical(std::array::from_fn(|i| roots[i][lane])))),
        );
    }
    Some(out)
}

/// Five 52-bit limbs of a big-endian 256-bit value.
fn to_limbs(bytes: &[u8; BYTES]) -> [u64; 5] {
    let w: [u64; 4] = std::array::from_fn(|i| {
        let at = BYTES - 8 * (i + 1);
        u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]))
    });
    const M: u64 = (1 << 52) - 1;
    [
        w[0] & M,
        (w[0] >> 52 | w[1] << 12) & M,
        (w[1] >> 40 | w[2] << 24) & M,
        (w[2] >> 28 | w[3] << 36) & M,
        w[3] >> 16,
    ]
}

/// The value of five 52-bit limbs (below `2^260`) reduced mod `p`, as four little-endian words.
fn canonical(l: [u64; 5]) -> [u64; 4] {
    // The 260 bits as four words and the bits above 256.
    let mut w = [
        l[0] | l[1] << 52,
        l[1] >> 12 | l[2] << 40,
        l[2] >> 24 | l[3] << 28,
        l[3] >> 36 | l[4] << 16,
    ];
    let mut high = l[4] >> 48;
    // Fold `high·2^256` as `high·(2^256 mod p)` until nothing is left above 256 bits (twice at
    // most: the first fold leaves at most a carry of one).
    while high != 0 {
        let mut carry = u128::from(high) * u128::from(FOLD_256);
        for word in &mut w {
            let v = u128::from(*word) + carry;
            *word = v as u64;
            carry = v >> 64;
        }
        high = carry as u64;
    }
    // Now below 2^256 < 2p: subtract p once if it is at least p.
    let at_least_p = w.iter().zip(&P).rev().find(|(a, b)| a != b).is_none_or(|(a, b)| a > b);
    if at_least_p {
        let mut borrow = 0u64;
        for (word, p) in w.iter_mut().zip(P) {
            let (v, b1) = word.overflowing_sub(p);
            let (v, b2) = v.overflowing_sub(borrow);
            *word = v;
            borrow = u64::from(b1 || b2);
        }
    }
    w
}

/// Four little-endian words as 32 big-endian bytes.
fn to_bytes(w: [u64; 4]) -> [u8; BYTES] {
    let mut out = [0u8; BYTES];
    for (i, word) in w.iter().enumerate() {
        let at = BYTES - 8 * (i + 1);
        out[at..at + 8].copy_from_slice(&word.to_be_bytes());
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::LANES;
    use crate::words::{load8, store8};
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_madd52hi_epu64, _mm512_madd52lo_epu64,
        _mm512_set1_epi64, _mm512_setzero_si512, _mm512_srli_epi64,
    };

    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512ifma")
    }

    /// `a^((p+1)/4)` of eight field elements given as five limbs each (`limbs[i][lane]`, each
    /// below `2^52`), as five limbs each (below `2^52`, the value below `2^260`).
    pub(super) fn pow_sqrt8(limbs: &[[u64; LANES]; 5]) -> [[u64; LANES]; 5] {
        assert!(available(), "pow_sqrt8 needs AVX-512F and IFMA");
        // SAFETY: the CPU has AVX-512F and AVX-512 IFMA (asserted above), the only target
        // features `pow_sqrt8_ifma` is compiled for; its memory accesses are `load8`'s and
        // `store8`'s (`crate::words`).
        #[allow(unsafe_code)]
        unsafe {
            pow_sqrt8_ifma(limbs)
        }
    }

    /// [`reduce`] of ten columns given lane by lane (`columns[k][lane]`), for tests of its
    /// rarest path (a carry out of the last limb after the second fold).
    #[cfg(test)]
    pub(super) fn reduce8(columns: &[[u64; LANES]; 10]) -> [[u64; LANES]; 5] {
        assert!(available(), "reduce8 needs AVX-512F and IFMA");
        #[target_feature(enable = "avx512f,avx512ifma")]
        fn inner(columns: &[[u64; LANES]; 10]) -> [[u64; LANES]; 5] {
            let r = reduce(std::array::from_fn(|k| load8(&columns[k])));
            [store8(r.0[0]), store8(r.0[1]), store8(r.0[2]), store8(r.0[3]), store8(r.0[4])]
        }
        // SAFETY: as in `pow_sqrt8`: the features were asserted above.
        #[allow(unsafe_code)]
        unsafe {
            inner(columns)
        }
    }

    /// Eight field elements, limb `i` of each in `.0[i]`.
    #[derive(Clone, Copy)]
    struct Fe([__m512i; 5]);

    #[target_feature(enable = "avx512f,avx512ifma")]
    fn pow_sqrt8_ifma(limbs: &[[u64; LANES]; 5]) -> [[u64; LANES]; 5] {
        let a = Fe(std::array::from_fn(|i| load8(&limbs[i])));
        // libsecp256k1's addition chain for (p+1)/4: `xN` is `a^(2^N − 1)`.
        let x2 = mul(&sqr(&a), &a);
        let x3 = mul(&sqr(&x2), &a);
        let x6 = mul(&sqr_n(&x3, 3), &x3);
        let x9 = mul(&sqr_n(&x6, 3), &x3);
        let x11 = mul(&sqr_n(&x9, 2), &x2);
        let x22 = mul(&sqr_n(&x11, 11), &x11);
        let x44 = mul(&sqr_n(&x22, 22), &x22);
        let x88 = mul(&sqr_n(&x44, 44), &x44);
        let x176 = mul(&sqr_n(&x88, 88), &x88);
        let x220 = mul(&sqr_n(&x176, 44), &x44);
        let x223 = mul(&sqr_n(&x220, 3), &x3);
        // (p+1)/4 in binary: 223 ones, a zero, 22 ones, four zeros, two ones, two zeros.
        let t = mul(&sqr_n(&x223, 23), &x22);
        let t = mul(&sqr_n(&t, 6), &x2);
        let r = sqr_n(&t, 2);
        [store8(r.0[0]), store8(r.0[1]), store8(r.0[2]), store8(r.0[3]), store8(r.0[4])]
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn sqr_n(a: &Fe, n: usize) -> Fe {
        let mut r = *a;
        for _ in 0..n {
            r = sqr(&r);
        }
        r
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn sqr(a: &Fe) -> Fe {
        mul(a, a)
    }

    /// `a·b`, limbs below `2^52`, the value below `2^260` (congruent mod p, not reduced).
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn mul(a: &Fe, b: &Fe) -> Fe {
        let z = _mm512_setzero_si512();
        // Column k: the low halves of a_i·b_j with i + j = k and the high halves with
        // i + j = k − 1; at most ten terms below 2^52 each, so below 2^56.
        let mut c = [z; 10];
        for i in 0..5 {
            for j in 0..5 {
                c[i + j] = _mm512_madd52lo_epu64(c[i + j], a.0[i], b.0[j]);
                c[i + j + 1] = _mm512_madd52hi_epu64(c[i + j + 1], a.0[i], b.0[j]);
            }
        }
        reduce(c)
    }

    /// Ten columns of a product (each below 2^56, the value below 2^520) to five limbs below
    /// 2^52 of a congruent value below 2^260.
    #[target_feature(enable = "avx512f,avx512ifma")]
    #[inline]
    fn reduce(mut c: [__m512i; 10]) -> Fe {
        let mask = _mm512_set1_epi64(((1u64 << 52) - 1) as i64);
        // 2^260 mod p, below 2^52 as IFMA needs.
        let r = _mm512_set1_epi64(0x10_0000_3D10);
        let z = _mm512_setzero_si512();
        // Columns 5..9 below 2^52, as they are multiplied next (column 9 is: the product is
        // below 2^520).
        for k in 4..9 {
            let (lo, hi) = c.split_at_mut(k + 1);
            carry(&mut lo[k], &mut hi[0], mask);
        }
        // c_{k+5}·2^(52(k+5)) ≡ c_{k+5}·r·2^(52k): its low half to limb k, its high to k + 1.
        let mut d = [
            _mm512_madd52lo_epu64(c[0], c[5], r),
            _mm512_madd52lo_epu64(_mm512_madd52hi_epu64(c[1], c[5], r), c[6], r),
            _mm512_madd52lo_epu64(_mm512_madd52hi_epu64(c[2], c[6], r), c[7], r),
            _mm512_madd52lo_epu64(_mm512_madd52hi_epu64(c[3], c[7], r), c[8], r),
            _mm512_madd52lo_epu64(_mm512_madd52hi_epu64(c[4], c[8], r), c[9], r),
            _mm512_madd52hi_epu64(z, c[9], r),
        ];
        for k in 0..5 {
            let (lo, hi) = d.split_at_mut(k + 1);
            carry(&mut lo[k], &mut hi[0], mask);
        }
        // d5 (below 2^38) at 2^260: fold it the same way (below 2^75: limbs 0 and 1).
        d[0] = _mm512_madd52lo_epu64(d[0], d[5], r);
        d[1] = _mm512_madd52hi_epu64(d[1], d[5], r);
        d[5] = z;
        // The value is now below 2^260 + 2^76: one more pass leaves a carry t of 0 or 1 at
        // 2^260, and when it is 1 what stays is below 2^76, so adding t·r to limb 0 carries
        // into limb 1 at most.
        for k in 0..5 {
            let (lo, hi) = d.split_at_mut(k + 1);
            carry(&mut lo[k], &mut hi[0], mask);
        }
        d[0] = _mm512_madd52lo_epu64(d[0], d[5], r);
        let (lo, hi) = d.split_at_mut(1);
        carry(&mut lo[0], &mut hi[0], mask);
        Fe([d[0], d[1], d[2], d[3], d[4]])
    }

    /// Moves what `lo` holds above 52 bits into `hi`.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn carry(lo: &mut __m512i, hi: &mut __m512i, mask: __m512i) {
        *hi = _mm512_add_epi64(*hi, _mm512_srli_epi64::<52>(*lo));
        *lo = _mm512_and_si512(*lo, mask);
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    use super::LANES;

    pub(super) fn available() -> bool {
        false
    }

    pub(super) fn pow_sqrt8(_: &[[u64; LANES]; 5]) -> [[u64; LANES]; 5] {
        unreachable!("no lanes on this architecture: callers check `available` first")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;
    use proptest::prelude::*;

    fn p() -> U256 {
        U256::from_limbs(P)
    }

    /// The reference: `a^((p+1)/4) mod p` by ruint's modular exponentiation.
    fn reference(a: &[u8; 32]) -> [u8; 32] {
        let a = U256::from_be_bytes(*a) % p();
        let e = (p() + U256::from(1)) >> 2;
        a.pow_mod(e, p()).to_be_bytes()
    }

    fn check(values: &[[u8; 32]]) {
        let Some(got) = secp256k1_sqrt_many(values) else {
            assert!(!sqrt_lanes_available());
            return;
        };
        let want: Vec<[u8; 32]> = values.iter().map(reference).collect();
        assert_eq!(got, want);
    }

    /// Edge values: zero, one, p − 1, p, p + 1, 2^256 − 1 (above p: taken mod p), values whose
    /// limbs are all ones, and counts around the eight lanes.
    #[test]
    fn edges_are_the_modular_power() {
        let pm = |d: u64| (p() - U256::from(d)).to_be_bytes::<32>();
        let mut values = vec![
            [0u8; 32],
            U256::from(1).to_be_bytes(),
            U256::from(4).to_be_bytes(),
            pm(1),
            pm(2),
            p().to_be_bytes(),
            (p() + U256::from(1)).to_be_bytes(),
            [0xff; 32],
            (U256::MAX >> 4usize).to_be_bytes(),
            (U256::from(1) << 255usize).to_be_bytes(),
        ];
        for k in [52usize, 104, 156, 208] {
            values.push(((U256::from(1) << k) - U256::from(1)).to_be_bytes());
            values.push((U256::from(1) << k).to_be_bytes());
        }
        for n in 0..=values.len() {
            check(&values[..n]);
        }
    }

    /// Canonical reduction of any 260-bit limb value, against ruint.
    #[test]
    fn canonical_reduces_any_260_bit_value() {
        let m = (1u64 << 52) - 1;
        for l in [[m; 5], [0; 5], [m, 0, 0, 0, m], [0, 0, 0, 0, m], [1, 0, 0, 0, 1 << 48]] {
            let value = (0..5).fold(alloy_primitives::U512::ZERO, |acc, i| {
                acc + (alloy_primitives::U512::from(l[i]) << (52 * i))
            });
            let want = value % alloy_primitives::U512::from(p());
            let got = U256::from_limbs(canonical(l));
            assert_eq!(alloy_primitives::U512::from(got), want, "{l:?}");
        }
    }

    /// Inputs whose limbs are at their largest (the value up to 2^260 − 1, as every product's
    /// reduction may leave it), lane by lane: the power of the value mod p. Bytes cannot give
    /// these (they stop at 2^256); the chain's own intermediate values can.
    #[test]
    fn largest_limbs_are_the_modular_power_of_their_value() {
        if !sqrt_lanes_available() {
            return;
        }
        use alloy_primitives::U512;
        let m = (1u64 << 52) - 1;
        let inputs: [[u64; 5]; LANES] = [
            [m; 5],
            [m, 0, 0, 0, m],
            [0, 0, 0, 0, m],
            [m, m, m, m, 0],
            [1, 0, 0, 0, m],
            [m, 1, m, 1, m],
            [0; 5],
            [0x3D1, 0x1000, 0, 0, 1 << 48],
        ];
        let limbs: [[u64; LANES]; 5] = std::array::from_fn(|i| inputs.map(|l| l[i]));
        let roots = x86::pow_sqrt8(&limbs);
        for (lane, l) in inputs.iter().enumerate() {
            let value = (0..5).fold(U512::ZERO, |acc, i| acc + (U512::from(l[i]) << (52 * i)));
            let a = U256::from(value % U512::from(p()));
            let want = a.pow_mod((p() + U256::from(1)) >> 2, p());
            let got = U256::from_limbs(canonical(std::array::from_fn(|i| roots[i][lane])));
            assert_eq!(got, want, "lane {lane}: {l:?}");
        }
    }

    /// A product's reduction on columns that take its rarest path: after the first fold every
    /// limb is full and 2^260 is owed once more, so the second fold carries out of the last
    /// limb and `2^260 ≡ 0x1000003D10` is added a third time. Beside it, columns at their
    /// largest and a few ordinary ones: the limbs' value is the columns' value mod p.
    #[test]
    fn reduction_takes_every_fold() {
        if !sqrt_lanes_available() {
            return;
        }
        use alloy_primitives::U512;
        let m = (1u64 << 52) - 1;
        let big = (1u64 << 56) - 1;
        let cases: [[u64; 10]; LANES] = [
            [m, m, m, m, m - 0x3D10_0000, 0, 0, 0, 0, 1 << 16],
            [m, m, m, m, m - 0x3D10_0000, 0, 0, 0, 0, (1 << 16) + 1],
            [big, big, big, big, big, m, m, m, m, (1 << 20) - 1],
            [0; 10],
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
            [m, m, m, m, m, m, m, m, m, 0],
            [big, 0, big, 0, big, 0, m, 0, m, 1 << 30],
        ];
        let columns: [[u64; LANES]; 10] = std::array::from_fn(|k| cases.map(|c| c[k]));
        let limbs = x86::reduce8(&columns);
        for (lane, c) in cases.iter().enumerate() {
            let l: [u64; 5] = std::array::from_fn(|i| limbs[i][lane]);
            assert!(l.iter().all(|x| *x < 1 << 52), "lane {lane}: limbs {l:?}");
            let value = (0..10).fold(U512::ZERO, |acc, k| acc + (U512::from(c[k]) << (52 * k)));
            let want = value % U512::from(p());
            assert_eq!(U512::from(U256::from_limbs(canonical(l))), want, "lane {lane}");
        }
        // The first case's path: the result is small (2·0x1000003D10 − 1 in the first limb).
        assert_eq!(
            std::array::from_fn::<u64, 5, _>(|i| limbs[i][0]),
            [2 * 0x10_0000_3D10 - 1, 0, 0, 0, 0]
        );
    }

    proptest! {
        /// Random values, random counts: the modular power, lane for lane.
        #[test]
        fn random_values_are_the_modular_power(
            values in prop::collection::vec(any::<[u8; 32]>(), 0..40),
        ) {
            check(&values);
        }

        /// Squares' roots square back: for `a = b²`, the root `s` has `s² = a`.
        #[test]
        fn roots_of_squares_square_back(bs in prop::collection::vec(any::<[u8; 32]>(), 1..20)) {
            let squares: Vec<[u8; 32]> = bs
                .iter()
                .map(|b| {
                    let b: U256 = U256::from_be_bytes(*b) % p();
                    b.mul_mod(b, p()).to_be_bytes()
                })
                .collect();
            if let Some(roots) = secp256k1_sqrt_many(&squares) {
                for (s, a) in roots.iter().zip(&squares) {
                    let s = U256::from_be_bytes(*s);
                    prop_assert_eq!(s.mul_mod(s, p()), U256::from_be_bytes(*a));
                }
            }
        }
    }
}
