//! The Goldilocks field `p = 2^64 − 2^32 + 1` and the evaluation points of the code (spec: DA-1).
//!
//! Why this field: its elements are native 64-bit words (one multiply and a short reduction per
//! operation), a 7-byte data symbol always fits below `p` (so bytes map to symbols with no
//! arithmetic), and `p − 1` has 2-adicity 32, so radix-2 FFT domains of every size we need exist.
//! A scratch calibration measured BN254's `Fr` (the field a zk-friendly code would reach for) about
//! 2× slower per coded byte, and ark's `Fp64<MontBackend>` about 3× slower than the `SmallFp`
//! backend used here.
//!
//! Symbols are handled as *raw* Montgomery words: a data word `v < p` is taken as the element
//! whose Montgomery form is `v`, i.e. `v·R⁻¹`. Every map the code applies is linear with genuine
//! field coefficients, so `Σ cᵢ·(vᵢR⁻¹)` has Montgomery form `Σ cᵢ·vᵢ` — the raw output word is
//! exactly the standard-form answer. No conversion in or out of Montgomery form is ever needed.

use ark_ff::{FftField, Field, One, SmallFp, SmallFpConfig, Zero, batch_inversion};

/// The Goldilocks configuration for ark's native-word `SmallFp` backend.
#[derive(SmallFpConfig)]
#[modulus = "18446744069414584321"]
#[generator = "7"]
pub(crate) struct GoldilocksConfig;

/// A Goldilocks element.
pub(crate) type F = SmallFp<GoldilocksConfig>;

/// The modulus.
pub(crate) const P: u64 = 0xffff_ffff_0000_0001;

/// `2^64 mod p = 2^32 − 1`.
const EPSILON: u64 = 0xffff_ffff;

/// `x mod p` for any `x < 2^128`, canonical (Goldilocks: `2^64 ≡ 2^32 − 1`, `2^96 ≡ −1`).
#[inline(always)]
pub(crate) const fn reduce128(x: u128) -> u64 {
    let (lo, hi) = (x as u64, (x >> 64) as u64);
    let (hi_hi, hi_lo) = (hi >> 32, hi & EPSILON);
    let (mut t0, borrow) = lo.overflowing_sub(hi_hi);
    if borrow {
        t0 = t0.wrapping_sub(EPSILON); // borrowed 2^64 ≡ ε: cannot underflow again
    }
    let (t1, carry) = t0.overflowing_add(hi_lo * EPSILON);
    let t2 = t1.wrapping_add(EPSILON * carry as u64);
    if t2 >= P { t2 - P } else { t2 }
}

/// `(a + b) mod p` for canonical `a`, `b`.
#[inline(always)]
pub(crate) const fn add_mod(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    let s = if carry { s.wrapping_add(EPSILON) } else { s };
    if s >= P { s - P } else { s }
}

/// `Σ row_s · c_s mod p` for words `< 2^64` and canonical coefficients, reduced once at the end:
/// the products' low and high halves are summed in two 128-bit accumulators (no overflow for
/// fewer than 2^64 terms) and `lo + hi·2^64` is reduced.
#[inline(always)]
pub(crate) fn dot_wide(row: &[u64], coeffs: &[u64]) -> u64 {
    let (mut lo, mut hi) = (0u128, 0u128);
    for (&v, &c) in row.iter().zip(coeffs) {
        let p = u128::from(v) * u128::from(c);
        lo += u128::from(p as u64);
        hi += p >> 64;
    }
    add_mod(reduce128(lo), reduce128(u128::from(reduce128(hi)) << 64))
}

/// Most terms [`dot_narrow`] may sum: `256 · 2^56 · 2^64 = 2^128`.
pub(crate) const NARROW_MAX_TERMS: usize = 256;

/// [`dot_wide`] for words `< 2^56` (data symbols) and at most [`NARROW_MAX_TERMS`] terms: every
/// product is below `2^120`, so one 128-bit accumulator holds the sum.
#[inline(always)]
pub(crate) fn dot_narrow(row: &[u64], coeffs: &[u64]) -> u64 {
    let mut acc = 0u128;
    for (&v, &c) in row.iter().zip(coeffs) {
        acc += u128::from(v) * u128::from(c);
    }
    reduce128(acc)
}

/// The canonical (standard-form) word of an element.
pub(crate) fn canonical(x: F) -> u64 {
    use ark_ff::PrimeField;
    x.into_bigint().0[0]
}

/// The element whose raw (Montgomery) word is `v`; `v` must be below `p`.
#[inline(always)]
pub(crate) const fn raw(v: u64) -> F {
    F::from_raw(v)
}

/// `j` with its lowest `bits` bits reversed (the others must be zero).
#[inline]
pub(crate) const fn bitrev(j: usize, bits: u32) -> usize {
    if bits == 0 { 0 } else { j.reverse_bits() >> (usize::BITS - bits) }
}

/// The evaluation points of a domain of size `N`: index `j` ↦ `ω^{bitrev_N(j)}`.
#[derive(Clone, Debug)]
pub(crate) struct Points {
    omega: F,
    log_n: u32,
}

impl Points {
    /// The points of the domain of size `n` (a power of two `≤ 2^32`).
    pub(crate) fn new(n: usize) -> Self {
        // spec: DA-1 — ark's primitive N-th root of unity.
        let omega = F::get_root_of_unity(n as u64).unwrap_or_else(|| {
            unreachable!("Goldilocks has roots of unity of every order up to 2^32, asked {n}")
        });
        Self { omega, log_n: n.trailing_zeros() }
    }

    /// The point of domain index `j`.
    pub(crate) fn point(&self, j: usize) -> F {
        self.omega.pow([bitrev(j, self.log_n) as u64])
    }
}

/// The matrix `targets × live` that interpolates the polynomial of degree `< live + zeros`
/// through values at the `live` domain indices and zero at the `zeros` indices, and evaluates it
/// at the `targets` indices (none of which may be among the sources). Row-major.
pub(crate) fn lagrange(
    points: &Points,
    live: &[usize],
    zeros: &[usize],
    targets: &[usize],
) -> Vec<F> {
    let all: Vec<F> = live.iter().chain(zeros).map(|&j| points.point(j)).collect();
    let xt: Vec<F> = targets.iter().map(|&j| points.point(j)).collect();
    // d_s = Π_{s' ≠ s} (x_s − x_s') for the live sources only: the zero sources contribute 0.
    let denom: Vec<F> = (0..live.len())
        .map(|s| {
            all.iter()
                .enumerate()
                .filter(|&(s2, _)| s2 != s)
                .fold(F::one(), |d, (_, &x)| d * (all[s] - x))
        })
        .collect();
    // L_s(x_t) = ℓ(x_t) / ((x_t − x_s)·d_s) with ℓ(x) = Π_all (x − x_s).
    let mut inv: Vec<F> = Vec::with_capacity(targets.len() * live.len());
    for &t in &xt {
        inv.extend(live.iter().zip(&denom).map(|(_, &d)| d).zip(&all).map(|(d, &x)| (t - x) * d));
    }
    batch_inversion(&mut inv);
    for (row, &t) in inv.chunks_mut(live.len().max(1)).zip(&xt) {
        let ell = all.iter().fold(F::one(), |acc, &x| acc * (t - x));
        debug_assert!(!ell.is_zero(), "a target coincides with a source");
        for c in row {
            *c *= ell;
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::PrimeField;

    #[test]
    fn modulus_and_raw_words() {
        assert_eq!(F::MODULUS.0[0], P);
        // Raw words act linearly: raw(a)·c + raw(b)·c has raw word (a + b)·c in standard form.
        let c = F::from(12345u64);
        let (a, b) = (1u64 << 55, 987_654_321u64);
        let sum = raw(a) * c + raw(b) * c;
        let expected = ((u128::from(a + b) * 12345u128) % u128::from(P)) as u64;
        assert_eq!(sum.value, expected);
    }

    #[test]
    fn integer_kernels_match_the_field() {
        let words = [0u64, 1, P - 1, (1 << 56) - 1, u64::MAX, P, 0xdead_beef_cafe_f00d, 1 << 63];
        for &a in &words {
            for &b in &words {
                let x = u128::from(a) * u128::from(b);
                assert_eq!(u128::from(reduce128(x)), x % u128::from(P), "{a} * {b}");
                let (a, b) = (a % P, b % P);
                assert_eq!(
                    u128::from(add_mod(a, b)),
                    (u128::from(a) + u128::from(b)) % u128::from(P)
                );
            }
        }
        assert_eq!(u128::from(reduce128(u128::MAX)), u128::MAX % u128::from(P));
        let row: Vec<u64> = (0..300).map(|i| u64::MAX - i * 977).collect();
        let coeffs: Vec<u64> = (0..300).map(|i| (P - 1) - i * 31).collect();
        let expected =
            row.iter().zip(&coeffs).fold(F::zero(), |acc, (&v, &c)| acc + F::from(v) * F::from(c));
        assert_eq!(dot_wide(&row, &coeffs), canonical(expected));
        let narrow: Vec<u64> = row.iter().map(|v| v >> 8).collect();
        let expected = narrow[..256]
            .iter()
            .zip(&coeffs)
            .fold(F::zero(), |acc, (&v, &c)| acc + F::from(v) * F::from(c));
        assert_eq!(dot_narrow(&narrow[..256], &coeffs), canonical(expected));
    }

    #[test]
    fn points_are_bit_reversed_powers() {
        let p = Points::new(8);
        let w = F::get_root_of_unity(8).unwrap();
        assert_eq!(p.point(1), w.pow([4]));
        assert_eq!(p.point(3), w.pow([6]));
        // The first K indices are the subgroup of size K.
        let p4 = Points::new(4);
        for j in 0..4 {
            assert_eq!(p.point(j).pow([4]), F::one());
            assert!(p4.point(j) == p.point(j));
        }
    }

    #[test]
    fn lagrange_interpolates_a_line() {
        // Values 0 at index 1 (zero source), v at index 0: the line through them, evaluated at 2.
        let pts = Points::new(4);
        let m = lagrange(&pts, &[0], &[1], &[2]);
        let (x0, x1, x2) = (pts.point(0), pts.point(1), pts.point(2));
        assert_eq!(m[0], (x2 - x1) / (x0 - x1));
    }
}
