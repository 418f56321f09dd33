//! Multi-scalar multiplication `Σ k_i·P_i` for batch verification (SIG-5): Pippenger's bucket
//! method, with the buckets summed in affine coordinates (one field inversion shared by a whole
//! round of additions) when there are enough points for that to pay.
//!
//! Why affine: k256's mixed addition (complete formulas, 11 multiplications and the reductions
//! between them) is most of a batch's cost — about 13 of them per signature. An affine addition
//! is a slope, its square and one more product (`λ = Δy/Δx`, `x₃ = λ² − x₁ − x₂`,
//! `y₃ = λ(x₁ − x₃) − y₁`) once `1/Δx` is known, and Montgomery's trick gives the `1/Δx` of every
//! addition of a round for one inversion and three multiplications each: about half the work.
//! The chord is undefined when `x₁ = x₂`: a point and itself takes the tangent (`λ = 3x²/2y`,
//! its `1/2y` in the same shared inversion), a point and its negation sums to nothing. Random
//! weights make both rare, but a block can repeat one `R` on purpose (one nonce, many keys), and
//! then they are the common case: they cost what an addition costs.
//!
//! Everything here is variable time: every input (signatures, public keys, weights once drawn)
//! is public or used once.

use k256::{
    AffinePoint, FieldElement, ProjectivePoint, Scalar, Secp256k1,
    elliptic_curve::sec1::{Coordinates, EncodedPoint, FromEncodedPoint, ToEncodedPoint},
};

/// From this many points on, the buckets are summed in affine coordinates.
const AFFINE_FROM: usize = 256;

/// Little-endian 64-bit limbs of a scalar.
pub(crate) fn limbs(s: &Scalar) -> [u64; 4] {
    let b = s.to_bytes();
    let mut out = [0u64; 4];
    for (i, limb) in out.iter_mut().enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&b[32 - 8 * (i + 1)..32 - 8 * i]);
        *limb = u64::from_be_bytes(word);
    }
    out
}

/// Bits `bit .. bit + c` of `k` (c ≤ 16).
fn digit(k: &[u64; 4], bit: usize, c: usize) -> usize {
    let (limb, off) = (bit / 64, bit % 64);
    if limb >= 4 {
        return 0;
    }
    let mut v = k[limb] >> off;
    if off + c > 64 && limb + 1 < 4 {
        v |= k[limb + 1] << (64 - off);
    }
    (v & ((1u64 << c) - 1)) as usize
}

/// `Σ k_i·P_i` for scalars below `2^bits`; `None` only if an internal conversion failed, which
/// the caller takes as "not confirmed" (the signatures are then recovered one by one).
pub(crate) fn msm(
    points: &[&AffinePoint],
    scalars: &[[u64; 4]],
    bits: usize,
) -> Option<ProjectivePoint> {
    if points.len() < AFFINE_FROM {
        return Some(msm_projective(points, scalars, bits));
    }
    msm_affine(points, scalars, bits)
}

/// Pippenger with projective buckets (k256's complete mixed addition).
pub(crate) fn msm_projective(
    points: &[&AffinePoint],
    scalars: &[[u64; 4]],
    bits: usize,
) -> ProjectivePoint {
    let n = points.len();
    if n == 0 {
        return ProjectivePoint::IDENTITY;
    }
    // Additions: ceil(bits/c) windows of n bucket additions and 2·2^c to sum the buckets.
    let cost = |c: usize| bits.div_ceil(c) * (n + (2 << c));
    // At most 2^10 buckets (about 120 KiB): larger tables spill out of a core's L2 cache, and two
    // threads sharing one (SMT siblings) then ran slower than one.
    let c = (1..=10).min_by_key(|&c| cost(c)).unwrap_or(8);
    let mut buckets = vec![ProjectivePoint::IDENTITY; (1 << c) - 1];
    let mut total = ProjectivePoint::IDENTITY;
    for w in (0..bits.div_ceil(c)).rev() {
        for _ in 0..c {
            total = total.double();
        }
        buckets.fill(ProjectivePoint::IDENTITY);
        for (p, k) in points.iter().zip(scalars) {
            let d = digit(k, w * c, c);
            if d != 0 {
                buckets[d - 1] += *p;
            }
        }
        total += &bucket_sum(buckets.iter().rev().copied());
    }
    total
}

/// `Σ_d d·B_d` for buckets `B_1 … B_m` given from the highest down, by running sums.
fn bucket_sum(from_highest: impl Iterator<Item = ProjectivePoint>) -> ProjectivePoint {
    let (mut running, mut sum) = (ProjectivePoint::IDENTITY, ProjectivePoint::IDENTITY);
    for b in from_highest {
        running += b;
        sum += &running;
    }
    sum
}

/// A curve point other than the identity in affine coordinates, each of magnitude 1 (k256's
/// lazily reduced field elements: at most one reduction short of canonical).
#[derive(Clone, Copy, Debug)]
struct Aff {
    x: FieldElement,
    y: FieldElement,
}

impl Aff {
    /// `None` for the identity.
    fn of(p: &AffinePoint) -> Option<Self> {
        let e = p.to_encoded_point(false);
        let Coordinates::Uncompressed { x, y } = e.coordinates() else { return None };
        Some(Self {
            x: Option::from(FieldElement::from_bytes(x))?,
            y: Option::from(FieldElement::from_bytes(y))?,
        })
    }

    /// The same point as k256's (checked on the curve again on the way).
    fn point(&self) -> Option<AffinePoint> {
        let e = EncodedPoint::<Secp256k1>::from_affine_coordinates(
            &self.x.to_bytes(),
            &self.y.to_bytes(),
            false,
        );
        AffinePoint::from_encoded_point(&e).into()
    }
}

/// What a pair of a bucket's points sums by.
#[derive(Clone, Copy, Debug)]
enum Pair {
    /// Different x: the chord.
    Add,
    /// The same point: the tangent.
    Double,
    /// A point and its negation: the identity, nothing kept.
    Cancel,
}

/// Pippenger with the buckets summed in affine coordinates: each window's points are sorted by
/// their digit, then every bucket's points are added pairwise, round after round, all the
/// additions of a round (over all buckets) sharing one inversion, until each bucket holds at
/// most one point.
fn msm_affine(
    points: &[&AffinePoint],
    scalars: &[[u64; 4]],
    bits: usize,
) -> Option<ProjectivePoint> {
    let mut src = Vec::with_capacity(points.len());
    let mut keys = Vec::with_capacity(points.len());
    for (p, k) in points.iter().zip(scalars) {
        // The identity adds nothing.
        if let Some(a) = Aff::of(p) {
            src.push(a);
            keys.push(k);
        }
    }
    let n = src.len();
    if n == 0 {
        return Some(ProjectivePoint::IDENTITY);
    }
    // Relative costs measured against k256's mixed addition: an affine addition in a round
    // about 0.45, a bucket in the running sums (conversion, mixed and full addition) about 2.5.
    let cost = |c: usize| bits.div_ceil(c) * (45 * n + 250 * (1 << c));
    let c = (4..=12).min_by_key(|&c| cost(c)).unwrap_or(8);
    let m = (1usize << c) - 1;
    let mut starts = vec![0u32; m + 2];
    let mut lens = vec![0u32; m + 1];
    let mut work: Vec<Aff> = Vec::with_capacity(n);
    let mut digits: Vec<u16> = Vec::with_capacity(n);
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut den: Vec<FieldElement> = Vec::new();
    let mut prefix: Vec<FieldElement> = Vec::new();
    let mut kinds: Vec<Pair> = Vec::new();
    let mut total = ProjectivePoint::IDENTITY;
    for w in (0..bits.div_ceil(c)).rev() {
        for _ in 0..c {
            total = total.double();
        }
        // Counting sort by digit (digit 0 adds nothing).
        digits.clear();
        digits.extend(keys.iter().map(|k| digit(k, w * c, c) as u16));
        lens.fill(0);
        for &d in &digits {
            lens[usize::from(d)] += 1;
        }
        let mut at = 0u32;
        for d in 1..=m {
            starts[d] = at;
            at += lens[d];
        }
        work.clear();
        work.resize(at as usize, src[0]);
        let mut fill = starts.clone();
        for (p, &d) in src.iter().zip(&digits) {
            let d = usize::from(d);
            if d != 0 {
                work[fill[d] as usize] = *p;
                fill[d] += 1;
            }
        }
        // Rounds of pairwise additions within each bucket.
        loop {
            pairs.clear();
            for d in 1..=m {
                let (s, l) = (starts[d], lens[d]);
                for j in 0..l / 2 {
                    pairs.push((s + 2 * j, s + 2 * j + 1));
                }
            }
            if pairs.is_empty() {
                break;
            }
            // Each pair's denominator — x_b − x_a for an addition, 2·y_a for a doubling (a = b),
            // none for a point and its negation (their sum is the identity) — all inverted at
            // once (Montgomery). Doublings share the inversion too: signatures that repeat one
            // R (a nonce reused on purpose, by any number of keys) cost no more than others.
            den.clear();
            prefix.clear();
            kinds.clear();
            let mut acc = FieldElement::ONE;
            for &(a, b) in &pairs {
                let (a, b) = (&work[a as usize], &work[b as usize]);
                let dx = b.x + a.x.negate(1);
                let (kind, d) = if !bool::from(dx.normalizes_to_zero()) {
                    (Pair::Add, dx)
                } else if bool::from((b.y + a.y.negate(1)).normalizes_to_zero()) {
                    let two_y = a.y.double();
                    // No point of secp256k1 has y = 0 (its order is odd): never, but never
                    // divide by zero either.
                    if bool::from(two_y.normalizes_to_zero()) {
                        return None;
                    }
                    (Pair::Double, two_y)
                } else {
                    (Pair::Cancel, FieldElement::ONE)
                };
                prefix.push(acc);
                acc *= d;
                den.push(d);
                kinds.push(kind);
            }
            let mut inv: FieldElement = Option::from(acc.invert())?;
            for (d, before) in den.iter_mut().zip(&prefix).rev() {
                let this = inv * before;
                inv *= *d;
                *d = this;
            }
            // The sums, written in place: bucket d's k-th surviving sum goes to starts[d] + k,
            // never past the pair it is read from.
            let mut next = 0usize;
            for d in 1..=m {
                let (s, l) = (starts[d] as usize, lens[d] as usize);
                if l < 2 {
                    continue;
                }
                let mut out = s;
                for _ in 0..l / 2 {
                    let (ia, ib) = pairs[next];
                    let (inv_d, kind) = (den[next], kinds[next]);
                    next += 1;
                    let (a, b) = (work[ia as usize], work[ib as usize]);
                    // λ = (y_b − y_a)/(x_b − x_a), or 3·x_a²/(2·y_a) for a doubling; then
                    // x = λ² − x_a − x_b and y = λ·(x_a − x) − y_a either way.
                    let lambda = match kind {
                        Pair::Add => (b.y + a.y.negate(1)) * inv_d,
                        Pair::Double => a.x.square().mul_single(3) * inv_d,
                        Pair::Cancel => continue,
                    };
                    let x = (lambda.square() + (a.x + b.x).negate(2)).normalize_weak();
                    let y = (lambda * (a.x + x.negate(1)) + a.y.negate(1)).normalize_weak();
                    work[out] = Aff { x, y };
                    out += 1;
                }
                if l % 2 == 1 {
                    work[out] = work[s + l - 1];
                    out += 1;
                }
                lens[d] = (out - s) as u32;
            }
        }
        let mut buckets = Vec::with_capacity(m);
        for d in (1..=m).rev() {
            buckets.push(match lens[d] {
                0 => ProjectivePoint::IDENTITY,
                _ => ProjectivePoint::from(work[starts[d] as usize].point()?),
            });
        }
        total += &bucket_sum(buckets.into_iter());
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::keccak256;

    fn scalar(i: u64, salt: u8) -> Scalar {
        let h = keccak256([&i.to_be_bytes()[..], &[salt]].concat());
        <Scalar as k256::elliptic_curve::ops::Reduce<k256::U256>>::reduce_bytes(&h.0.into())
    }

    fn naive(points: &[AffinePoint], scalars: &[Scalar]) -> ProjectivePoint {
        points
            .iter()
            .zip(scalars)
            .fold(ProjectivePoint::IDENTITY, |acc, (p, k)| acc + ProjectivePoint::from(*p) * k)
    }

    /// Both bucket methods against plain scalar multiplication, for 128- and 256-bit scalars,
    /// including the pairs the affine formulas cannot add: a point twice in one bucket, a point
    /// and its negation in one bucket, the identity, and zero scalars.
    #[test]
    fn both_bucket_methods_match_plain_scalar_multiplication() {
        for (n, bits) in [(300usize, 128usize), (700, 256), (40, 128)] {
            let mut points: Vec<AffinePoint> = (0..n as u64)
                .map(|i| (ProjectivePoint::GENERATOR * scalar(i, 1)).to_affine())
                .collect();
            let mut scalars: Vec<Scalar> = (0..n as u64)
                .map(|i| {
                    let s = scalar(i, 2);
                    if bits == 128 {
                        Scalar::from(u128::from_be_bytes(s.to_bytes()[16..].try_into().unwrap()))
                    } else {
                        s
                    }
                })
                .collect();
            // The same point with the same scalar (doubling in a bucket), a point with its
            // negation under the same scalar (cancelling), the identity, a zero scalar.
            points[1] = points[0];
            scalars[1] = scalars[0];
            points[3] = (-ProjectivePoint::from(points[2])).to_affine();
            scalars[3] = scalars[2];
            points[4] = AffinePoint::IDENTITY;
            scalars[5] = Scalar::ZERO;
            let want = naive(&points, &scalars);
            let refs: Vec<&AffinePoint> = points.iter().collect();
            let l: Vec<[u64; 4]> = scalars.iter().map(limbs).collect();
            assert_eq!(msm_projective(&refs, &l, bits), want, "projective, {n} points");
            assert_eq!(msm_affine(&refs, &l, bits), Some(want), "affine, {n} points");
            assert_eq!(msm(&refs, &l, bits), Some(want), "dispatch, {n} points");
        }
    }

    /// Many equal points in one bucket: doublings at every round, cancellations by the dozen.
    #[test]
    fn a_bucket_of_repeated_points_sums_exactly() {
        let p = (ProjectivePoint::GENERATOR * scalar(9, 3)).to_affine();
        let q = (-ProjectivePoint::from(p)).to_affine();
        let mut points = vec![p; 300];
        points.extend(vec![q; 50]);
        let scalars: Vec<Scalar> = (0..points.len()).map(|_| Scalar::from(5u64)).collect();
        let want = ProjectivePoint::from(p) * Scalar::from(5u64 * 250);
        let refs: Vec<&AffinePoint> = points.iter().collect();
        let l: Vec<[u64; 4]> = scalars.iter().map(limbs).collect();
        assert_eq!(msm_affine(&refs, &l, 128), Some(want));
        assert_eq!(naive(&points, &scalars), want);
    }
}
