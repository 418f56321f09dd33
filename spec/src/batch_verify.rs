//! Batch verification of signatures against public keys already known (spec: SIG-5).
//!
//! Recovering a signer costs one libsecp256k1 recovery per signature (about 27 µs of one core).
//! A watcher re-verifying blocks knows, for every input, who must have signed it (the input's
//! owner), and owners repeat: once an owner's public key `Q` was recovered, a signature
//! `(r, s, v)` on digest `z` recovers to `Q` exactly when `s·R = z·G + r·Q`, where `R` is the
//! curve point with x-coordinate `r` and the y parity `v − 27` (SIG-5 in `01-transactions.md`
//! says why, and why the random combination below is sound). Many such equations are checked at
//! once: with fresh random 128-bit weights `w_i` from the OS-seeded CSPRNG,
//!
//! `Σ w_i·R_i = (Σ w_i·z_i/s_i)·G + Σ_Q (Σ_{i signed by Q} w_i·r_i/s_i)·Q`
//!
//! is one multi-scalar multiplication whose `R` terms have 128-bit scalars and whose `Q` terms
//! collapse to one point per owner. If it fails, the batch is split and each half checked again
//! (new weights), down to small groups whose signatures are recovered one by one: the result of
//! [`recover_batched`] is always, signature by signature, what [`crate::recover_signer`] gives —
//! the address and the same error — except with probability at most 2^-128 per check that a
//! signature not recovering to its claimed key is taken as recovering to it.

use crate::{
    constants::SIGNATURE_LEN,
    error::SignatureError,
    msm::{limbs, msm},
    signing::recover_signer_key,
};
use alloy_primitives::{Address, B256, U256};
use k256::{
    AffinePoint, FieldBytes, ProjectivePoint, Scalar,
    elliptic_curve::{
        PrimeField,
        ops::{MulByGenerator, Reduce},
        sec1::{EncodedPoint, FromEncodedPoint},
    },
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::collections::HashMap;

/// Half the order of secp256k1 (SIG-3's low-s bound), as in `signing`.
const N_DIV_2: U256 = U256::from_be_slice(&alloy_primitives::hex!(
    "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"
));
/// The order of secp256k1.
const N: U256 = U256::from_be_slice(&alloy_primitives::hex!(
    "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
));

/// A failing group of at most this many signatures is recovered one by one instead of split.
const LEAF: usize = 32;
/// Below this many signatures per thread, one thread does the whole batch.
const PER_THREAD_MIN: usize = 512;

/// Public keys of the signers seen so far, filed under their own address (recovered once, then
/// used by [`recover_batched`]).
///
/// A key is only ever filed under the address computed from it here: a caller cannot put a key
/// under another address, which is what makes a verified equation mean "this address signed".
#[derive(Clone, Debug)]
pub struct PublicKeys {
    index: HashMap<Address, u32>,
    points: Vec<AffinePoint>,
    limit: usize,
}

impl Default for PublicKeys {
    fn default() -> Self {
        Self::with_limit(1 << 20)
    }
}

impl PublicKeys {
    /// An empty cache holding at most `limit` keys (about 100 bytes each); when full it starts
    /// again empty (keys are recovered again as signatures come).
    pub fn with_limit(limit: usize) -> Self {
        Self { index: HashMap::new(), points: Vec::new(), limit: limit.max(1) }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Whether `address`'s key is held.
    pub fn contains(&self, address: &Address) -> bool {
        self.index.contains_key(address)
    }

    /// Files an uncompressed public key (`x ‖ y`, 64 bytes, as recovery gives it) under its
    /// address; returns that address, or `None` if the bytes are not a point of the curve.
    pub fn insert(&mut self, key: &[u8; 64]) -> Option<Address> {
        let address = Address::from_raw_public_key(key);
        if self.index.contains_key(&address) {
            return Some(address);
        }
        let encoded = EncodedPoint::<k256::Secp256k1>::from_untagged_bytes(key.into());
        let point: Option<AffinePoint> = AffinePoint::from_encoded_point(&encoded).into();
        let point = point?;
        if self.points.len() >= self.limit {
            self.index.clear();
            self.points.clear();
        }
        self.index.insert(address, self.points.len() as u32);
        self.points.push(point);
        Some(address)
    }

    fn get(&self, address: &Address) -> Option<u32> {
        self.index.get(address).copied()
    }
}

/// One signature to check: the digest signed, the 65-byte signature, the input index it is
/// reported under, and the address it must recover to (the input's owner), if known.
#[derive(Clone, Copy, Debug)]
pub struct SignatureClaim<'a> {
    /// The digest signed (EIP-712, SIG-1).
    pub digest: B256,
    /// `r ‖ s ‖ v`.
    pub signature: &'a [u8],
    /// The input index errors name (as [`crate::recover_signer`]'s `index`).
    pub index: usize,
    /// Who should have signed; `None`: recover it.
    pub claimed: Option<Address>,
    /// [`ParsedSignature::new`] of `digest` and `signature`, if done ahead (else done here).
    pub parsed: Option<&'a ParsedSignature>,
}

/// A signature parsed ahead of the batch (SIG-3's form checked, `R` decompressed, `z` reduced):
/// the part of batch verification that needs no key, which a pipeline can do while earlier
/// blocks are still validated. It remembers what it parsed: a claim uses it only for that very
/// digest and signature (any other claim is parsed again).
#[derive(Clone, Debug)]
pub struct ParsedSignature {
    digest: B256,
    signature: [u8; SIGNATURE_LEN],
    parsed: Option<Parts>,
}

/// `r`, `s`, `z` and `R`.
type Parts = (Scalar, Scalar, Scalar, AffinePoint);

impl ParsedSignature {
    /// Parses `signature` on `digest` (one square root: most of the per-signature cost besides
    /// the batch's multi-scalar multiplication).
    pub fn new(digest: B256, signature: &[u8]) -> Self {
        let mut bytes = [0u8; SIGNATURE_LEN];
        let fits = signature.len() == SIGNATURE_LEN;
        if fits {
            bytes.copy_from_slice(signature);
        }
        let parsed = if fits { parse(&digest, signature) } else { None };
        Self { digest, signature: bytes, parsed }
    }

    /// [`Self::new`] of each `(digest, signature)`, in order, the square roots of all their
    /// `R`s taken together (eight at a time where the CPU has AVX-512 IFMA): the same parses.
    pub fn new_many(claims: &[(B256, &[u8])]) -> Vec<Self> {
        claims
            .iter()
            .zip(parse_many(claims))
            .map(|((digest, signature), parsed)| {
                let mut bytes = [0u8; SIGNATURE_LEN];
                if signature.len() == SIGNATURE_LEN {
                    bytes.copy_from_slice(signature);
                }
                Self { digest: *digest, signature: bytes, parsed }
            })
            .collect()
    }

    /// The parse of `(digest, signature)` if this is it.
    fn of(&self, digest: &B256, signature: &[u8]) -> Option<Option<Parts>> {
        (self.digest == *digest && self.signature.as_slice() == signature).then_some(self.parsed)
    }
}

/// A signature in the form the batch equation uses: `u1 = z/s`, `u2 = r/s`, and `R`.
#[derive(Clone, Copy, Debug)]
struct Prepared {
    u1: Scalar,
    u2: Scalar,
    big_r: AffinePoint,
    key: u32,
    /// Position in the caller's claims.
    at: usize,
}

/// 32 big-endian bytes (callers pass exactly 32).
fn field_bytes(b: &[u8]) -> FieldBytes {
    let mut a = [0u8; 32];
    a.copy_from_slice(b);
    FieldBytes::from(a)
}

/// `r`, `s` and `R` of a signature passing SIG-3's form checks, with `R` on the curve; `None`
/// for any other (those are recovered, which names their error exactly).
fn parse(digest: &B256, sig: &[u8]) -> Option<(Scalar, Scalar, Scalar, AffinePoint)> {
    let form = form(digest, sig)?;
    let big_r = decompress(&sig[..32], form.odd);
    Some((form.r?, form.s?, form.z, big_r?))
}

/// What SIG-3's form checks leave of a signature: its scalars, and the parity of `R`'s y.
struct Form {
    r: Option<Scalar>,
    s: Option<Scalar>,
    z: Scalar,
    odd: u8,
}

/// The form checks of [`parse`], without `R`.
fn form(digest: &B256, sig: &[u8]) -> Option<Form> {
    let sig: &[u8; SIGNATURE_LEN] = sig.try_into().ok()?;
    let r_int = U256::from_be_slice(&sig[..32]);
    let s_int = U256::from_be_slice(&sig[32..64]);
    if r_int.is_zero() || s_int.is_zero() || r_int >= N || s_int > N_DIV_2 {
        return None;
    }
    let odd = match sig[64] {
        27 => 0,
        28 => 1,
        _ => return None,
    };
    let r: Option<Scalar> = Scalar::from_repr(field_bytes(&sig[..32])).into();
    let s: Option<Scalar> = Scalar::from_repr(field_bytes(&sig[32..64])).into();
    // R: x = r (v is 27 or 28, so never r + n), y of parity v − 27, as libsecp256k1 recovers.
    let z = <Scalar as Reduce<k256::U256>>::reduce_bytes(&FieldBytes::from(digest.0));
    Some(Form { r, s, z, odd })
}

/// [`parse`] of each `(digest, signature)`, in order, with the square roots of all their `R`s
/// taken eight at a time where the CPU has AVX-512 IFMA (`plasma_keccak_lanes`); the same
/// results on any CPU (tested against [`parse`]).
fn parse_many(claims: &[(B256, &[u8])]) -> Vec<Option<(Scalar, Scalar, Scalar, AffinePoint)>> {
    let forms: Vec<Option<Form>> = claims.iter().map(|(d, sig)| form(d, sig)).collect();
    // x³ + 7 for every R's x (r < n < p: always a field element).
    let xs: Vec<Option<k256::FieldElement>> = claims
        .iter()
        .zip(&forms)
        .map(|((_, sig), f)| {
            f.as_ref()?;
            Option::from(k256::FieldElement::from_bytes(&field_bytes(&sig[..32])))
        })
        .collect();
    let seven = k256::FieldElement::from_u64(7);
    let rhs: Vec<[u8; 32]> =
        xs.iter().flatten().map(|x| (x.square() * x + seven).to_bytes().into()).collect();
    let roots = if rhs.len() >= LIFT_LANES_FROM {
        plasma_keccak_lanes::secp256k1_sqrt_many(&rhs)
    } else {
        None
    };
    let Some(roots) = roots else {
        return claims.iter().map(|(d, sig)| parse(d, sig)).collect();
    };
    let mut lifted = xs.iter().flatten().zip(roots);
    claims
        .iter()
        .zip(forms.into_iter().zip(&xs))
        .map(|(_, (f, x))| {
            let f = f?;
            x.as_ref()?;
            let (x, root) = lifted.next()?;
            let big_r = lift(x, &root, f.odd);
            Some((f.r?, f.s?, f.z, big_r?))
        })
        .collect()
}

/// Below this many signatures [`parse_many`] takes the roots one by one: eight lanes for fewer
/// cost more than one by one.
const LIFT_LANES_FROM: usize = 4;

/// The point `(x, y)` with `y` the one of `±root` of parity `odd`, `root` being
/// `(x³ + 7)^((p+1)/4)`: [`decompress`]'s point, from a root taken elsewhere. When `x³ + 7` is
/// no square, `root²` is not it and `(x, ±root)` is off the curve: k256's check of the curve
/// equation on the way in refuses it, as [`decompress`] refuses such an `x`.
fn lift(x: &k256::FieldElement, root: &[u8; 32], odd: u8) -> Option<AffinePoint> {
    let y: k256::FieldElement =
        Option::from(k256::FieldElement::from_bytes(&FieldBytes::from(*root)))?;
    let y = y.normalize();
    let y = if y.is_odd().unwrap_u8() == odd { y } else { y.negate(1).normalize() };
    let encoded = EncodedPoint::<k256::Secp256k1>::from_affine_coordinates(
        &x.to_bytes(),
        &y.to_bytes(),
        false,
    );
    AffinePoint::from_encoded_point(&encoded).into()
}

/// The point of x-coordinate `x` (32 bytes, below the field's order) whose `y` has parity `odd`
/// (0 or 1), as k256's `AffinePoint::decompress` gives it; `None` if `x` is no point's.
///
/// The square root is libsecp256k1's (the signature recovery's library), several times faster
/// than k256's and most of a signature's parse; the uncompressed point it gives is checked on
/// the curve again by k256 on the way in.
fn decompress(x: &[u8], odd: u8) -> Option<AffinePoint> {
    let mut compressed = [0u8; 33];
    compressed[0] = 0x02 | odd;
    compressed.get_mut(1..)?.copy_from_slice(x.get(..32)?);
    let key = secp256k1::PublicKey::from_slice(&compressed).ok()?;
    let encoded = EncodedPoint::<k256::Secp256k1>::from_bytes(key.serialize_uncompressed()).ok()?;
    AffinePoint::from_encoded_point(&encoded).into()
}

/// `1/x` for every `x` (all non-zero) with one inversion (Montgomery's trick).
fn batch_invert(xs: &mut [Scalar]) {
    if xs.is_empty() {
        return;
    }
    let mut prefix = Vec::with_capacity(xs.len());
    let mut acc = Scalar::ONE;
    for x in xs.iter() {
        prefix.push(acc);
        acc *= x;
    }
    let mut inv: Scalar = Option::from(acc.invert()).unwrap_or(Scalar::ZERO);
    for (x, before) in xs.iter_mut().zip(prefix).rev() {
        let this = inv * before;
        inv *= *x;
        *x = this;
    }
}

/// Whether `Σ w_i·R_i = (Σ w_i·u1_i)·G + Σ_Q (Σ w_i·u2_i)·Q` for fresh random 128-bit `w_i`.
fn check(group: &[Prepared], keys: &PublicKeys, rng: &mut StdRng) -> bool {
    let mut weights = Vec::with_capacity(group.len());
    let mut g = Scalar::ZERO;
    // Key → its slot in `q`.
    let mut slots: HashMap<u32, usize> = HashMap::new();
    let mut q_points: Vec<&AffinePoint> = Vec::new();
    let mut q: Vec<Scalar> = Vec::new();
    for p in group {
        let w: u128 = rng.random();
        let ws = Scalar::from(w);
        weights.push([w as u64, (w >> 64) as u64, 0, 0]);
        g += ws * p.u1;
        let slot = *slots.entry(p.key).or_insert_with(|| {
            q_points.push(&keys.points[p.key as usize]);
            q.push(Scalar::ZERO);
            q.len() - 1
        });
        q[slot] += ws * p.u2;
    }
    let r_points: Vec<&AffinePoint> = group.iter().map(|p| &p.big_r).collect();
    let q_limbs: Vec<[u64; 4]> = q.iter().map(limbs).collect();
    // A failed conversion inside the sums confirms nothing: those signatures are recovered.
    let (Some(lhs), Some(q_sum)) = (msm(&r_points, &weights, 128), msm(&q_points, &q_limbs, 256))
    else {
        return false;
    };
    lhs == ProjectivePoint::mul_by_generator(&g) + q_sum
}

/// Positions (in `group`) of the signatures the batch could not confirm: a failing group is
/// split in two, each half checked with new weights, down to [`LEAF`] signatures.
fn unconfirmed(group: &[Prepared], keys: &PublicKeys, rng: &mut StdRng, out: &mut Vec<usize>) {
    if group.is_empty() || check(group, keys, rng) {
        return;
    }
    if group.len() <= LEAF {
        out.extend(group.iter().map(|p| p.at));
        return;
    }
    let (a, b) = group.split_at(group.len() / 2);
    unconfirmed(a, keys, rng, out);
    unconfirmed(b, keys, rng, out);
}

/// `f` over `items` on up to `threads` threads (contiguous chunks), results in order.
fn par_chunks<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    min_chunk: usize,
    f: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < 2 * min_chunk {
        return vec![f(items)];
    }
    let chunk = items.len().div_ceil(threads).max(min_chunk);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(chunk).map(|c| s.spawn(move || f(c))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

/// What [`recover_batched`] found.
#[derive(Debug)]
pub struct BatchOutcome {
    /// For each claim, in order: exactly what [`crate::recover_signer`] returns for it.
    pub signers: Vec<Result<Address, SignatureError>>,
    /// Public keys recovered one by one on the way (file them with [`PublicKeys::insert`]).
    pub learned: Vec<[u8; 64]>,
    /// How many signatures the batch equation confirmed (the rest were recovered).
    pub batched: usize,
}

/// The signer of every claim, as [`crate::recover_signer`] gives it, checking the claims whose
/// claimed signer's key is in `keys` in batches (spec: SIG-5) and recovering the others — and
/// any the batches could not confirm — one by one, on all cores.
pub fn recover_batched(claims: &[SignatureClaim<'_>], keys: &PublicKeys) -> BatchOutcome {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    recover_batched_on(claims, keys, threads)
}

/// [`recover_batched`] on at most `threads` threads (benchmarks compare one and all cores).
pub fn recover_batched_on(
    claims: &[SignatureClaim<'_>],
    keys: &PublicKeys,
    threads: usize,
) -> BatchOutcome {
    // Parse on all cores; claims without a known key, or not of SIG-3's form, are recovered.
    type Parsed = (Scalar, Scalar, Scalar, AffinePoint, u32);
    let parsed: Vec<Option<Parsed>> = par_chunks(claims, threads, 256, |chunk| {
        let keyed: Vec<Option<u32>> = chunk.iter().map(|c| keys.get(&c.claimed?)).collect();
        let ahead: Vec<Option<Option<Parts>>> =
            chunk.iter().map(|c| c.parsed.and_then(|p| p.of(&c.digest, c.signature))).collect();
        // Those not parsed ahead, parsed here together (their roots eight at a time).
        let todo: Vec<(B256, &[u8])> = chunk
            .iter()
            .zip(keyed.iter().zip(&ahead))
            .filter(|(_, (key, ahead))| key.is_some() && ahead.is_none())
            .map(|(c, _)| (c.digest, c.signature))
            .collect();
        let mut here = parse_many(&todo).into_iter();
        keyed
            .into_iter()
            .zip(ahead)
            .map(|(key, ahead)| {
                let key = key?;
                let (r, s, z, big_r) = match ahead {
                    Some(parsed) => parsed?,
                    None => here.next().flatten()?,
                };
                Some((r, s, z, big_r, key))
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    let mut s_inv: Vec<Scalar> = parsed.iter().flatten().map(|p| p.1).collect();
    batch_invert(&mut s_inv);
    let mut prepared = Vec::with_capacity(s_inv.len());
    let mut inv = s_inv.into_iter();
    for (at, p) in parsed.iter().enumerate() {
        if let Some((r, _, z, big_r, key)) = p
            && let Some(si) = inv.next()
        {
            prepared.push(Prepared { u1: *z * si, u2: *r * si, big_r: *big_r, key: *key, at });
        }
    }
    // Each thread checks its share with its own OS-seeded generator; no generator, no batch.
    let mut recover: Vec<usize> = Vec::new();
    let failed: Vec<Vec<usize>> = par_chunks(&prepared, threads, PER_THREAD_MIN, |group| {
        let mut out = Vec::new();
        match StdRng::try_from_os_rng() {
            Ok(mut rng) => unconfirmed(group, keys, &mut rng, &mut out),
            Err(_) => out.extend(group.iter().map(|p| p.at)),
        }
        out
    });
    let mut confirmed = vec![false; claims.len()];
    for p in &prepared {
        confirmed[p.at] = true;
    }
    for at in failed.into_iter().flatten() {
        confirmed[at] = false;
    }
    let batched = confirmed.iter().filter(|c| **c).count();
    recover.extend((0..claims.len()).filter(|i| !confirmed[*i]));
    type Recovered = Result<(Address, [u8; 64]), SignatureError>;
    let recovered: Vec<(usize, Recovered)> = par_chunks(&recover, threads, 64, |chunk| {
        chunk
            .iter()
            .map(|&i| {
                let c = &claims[i];
                (i, recover_signer_key(c.digest, c.signature, c.index))
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect();
    let mut signers: Vec<Result<Address, SignatureError>> = claims
        .iter()
        .zip(&confirmed)
        .map(|(c, ok)| match (ok, c.claimed) {
            (true, Some(a)) => Ok(a),
            _ => Err(SignatureError::RecoveryFailed { index: c.index }),
        })
        .collect();
    let mut learned = Vec::new();
    for (i, result) in recovered {
        signers[i] = result.map(|(address, key)| {
            if !keys.contains(&address) {
                learned.push(key);
            }
            address
        });
    }
    BatchOutcome { signers, learned, batched }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{recover_signer, signing::Signer, test_utils::key};
    use alloy_primitives::keccak256;
    use k256::elliptic_curve::{point::DecompressPoint, sec1::ToEncodedPoint, subtle::Choice};

    fn digest(i: u64) -> B256 {
        keccak256(i.to_be_bytes())
    }

    /// Parsed together (the roots eight at a time where the CPU has the lanes), every signature
    /// parses as it does alone: valid ones of both parities, random `r` (about half are no
    /// point's x), `r` = 0, `r` ≥ n, `s` = 0, high `s`, `v` not 27 or 28, wrong lengths —
    /// interleaved, in counts below and above the lanes' threshold and eight.
    #[test]
    fn signatures_parsed_together_parse_as_alone() {
        use rand::Rng;
        let mut rng = rand::rng();
        let mut claims: Vec<(B256, Vec<u8>)> = Vec::new();
        for i in 0..400u64 {
            let d = digest(i);
            let mut sig = key(1 + i % 7).sign_digest(d).to_vec();
            match i % 11 {
                1..=3 => sig[..32].copy_from_slice(&rng.random::<[u8; 32]>()),
                4 => sig[..32].fill(0),
                5 => sig[..32].copy_from_slice(&N.to_be_bytes::<32>()),
                6 => sig[32..64].fill(0),
                7 => {
                    let s = U256::from_be_slice(&sig[32..64]);
                    sig[32..64].copy_from_slice(&(N - s).to_be_bytes::<32>());
                }
                8 => sig[64] = 29,
                9 => sig.push(0),
                10 => sig[64] = 55 - sig[64],
                _ => {}
            }
            claims.push((d, sig));
        }
        let refs: Vec<(B256, &[u8])> = claims.iter().map(|(d, s)| (*d, s.as_slice())).collect();
        let alone: Vec<_> = refs.iter().map(|(d, s)| ParsedSignature::new(*d, s).parsed).collect();
        assert!(alone.iter().filter(|p| p.is_some()).count() > 100);
        assert!(alone.iter().filter(|p| p.is_none()).count() > 100);
        for range in [0..refs.len(), 0..1, 0..3, 0..4, 5..13, 17..25, 30..31] {
            let together: Vec<_> = ParsedSignature::new_many(&refs[range.clone()])
                .into_iter()
                .map(|p| p.parsed)
                .collect();
            assert_eq!(together, alone[range.clone()], "{range:?}");
        }
        // The parity flipped (`v` 27 ↔ 28) gives the other point, on both paths.
        let flipped: Vec<(B256, Vec<u8>)> = claims
            .iter()
            .filter(|(_, s)| s.len() == 65 && (s[64] == 27 || s[64] == 28))
            .map(|(d, s)| {
                let mut s = s.clone();
                s[64] = 55 - s[64];
                (*d, s)
            })
            .collect();
        let refs: Vec<(B256, &[u8])> = flipped.iter().map(|(d, s)| (*d, s.as_slice())).collect();
        let together: Vec<_> =
            ParsedSignature::new_many(&refs).into_iter().map(|p| p.parsed).collect();
        let alone: Vec<_> = refs.iter().map(|(d, s)| ParsedSignature::new(*d, s).parsed).collect();
        assert_eq!(together, alone);
    }

    /// The key cache after recovering the first `owners` signatures of `items` (each owner's
    /// first, when they sign round robin).
    fn keys_of(items: &[(B256, Vec<u8>, Address)], owners: u64) -> PublicKeys {
        let mut keys = PublicKeys::default();
        for (d, sig, _) in items.iter().take(owners as usize) {
            let (address, key) = recover_signer_key(*d, sig, 0).unwrap();
            assert_eq!(keys.insert(&key), Some(address));
        }
        keys
    }

    /// `n` signatures by `owners` keys (round robin), and the key cache after recovering each
    /// owner once.
    fn signed(n: u64, owners: u64) -> (Vec<(B256, Vec<u8>, Address)>, PublicKeys) {
        let signers: Vec<Signer> = (0..owners).map(|i| key(i + 1)).collect();
        let items: Vec<(B256, Vec<u8>, Address)> = (0..n)
            .map(|i| {
                let s = &signers[(i % owners) as usize];
                (digest(i), s.sign_digest(digest(i)).to_vec(), s.address())
            })
            .collect();
        let keys = keys_of(&items, owners);
        (items, keys)
    }

    fn claims(items: &[(B256, Vec<u8>, Address)]) -> Vec<SignatureClaim<'_>> {
        items
            .iter()
            .enumerate()
            .map(|(i, (d, sig, a))| SignatureClaim {
                digest: *d,
                signature: sig,
                index: i,
                claimed: Some(*a),
                parsed: None,
            })
            .collect()
    }

    fn expected(items: &[(B256, Vec<u8>, Address)]) -> Vec<Result<Address, SignatureError>> {
        items.iter().enumerate().map(|(i, (d, sig, _))| recover_signer(*d, sig, i)).collect()
    }

    /// Valid signatures that all share one `R` (one nonce `k`, many keys and digests: what a
    /// byzantine operator may fill a block with), low-s as SIG-3 wants, and the address of each.
    fn sharing_one_r(n: u64, owners: u64) -> (Vec<(B256, Vec<u8>, Address)>, PublicKeys) {
        let k = Scalar::from(0x5eed_u64) * Scalar::from(u128::MAX);
        let big_r = (ProjectivePoint::GENERATOR * k).to_affine();
        let encoded = big_r.to_encoded_point(false);
        let x = encoded.x().unwrap();
        let r = <Scalar as Reduce<k256::U256>>::reduce_bytes(x);
        let r_odd = encoded.y().unwrap()[31] & 1;
        let k_inv: Scalar = Option::from(k.invert()).unwrap();
        let items: Vec<(B256, Vec<u8>, Address)> = (0..n)
            .map(|i| {
                let secret = Scalar::from(1_000 + i % owners);
                let z =
                    <Scalar as Reduce<k256::U256>>::reduce_bytes(&FieldBytes::from(digest(i).0));
                let mut sig_s = k_inv * (z + r * secret);
                let mut odd = r_odd;
                if U256::from_be_slice(&sig_s.to_bytes()) > N_DIV_2 {
                    sig_s = -sig_s;
                    odd ^= 1;
                }
                let mut sig = Vec::with_capacity(SIGNATURE_LEN);
                sig.extend_from_slice(&r.to_bytes());
                sig.extend_from_slice(&sig_s.to_bytes());
                sig.push(27 + odd);
                let (address, _) = recover_signer_key(digest(i), &sig, 0).unwrap();
                (digest(i), sig, address)
            })
            .collect();
        let keys = keys_of(&items, owners);
        (items, keys)
    }

    /// A batch of signatures that all repeat one `R` puts equal points in every bucket, pair
    /// after pair: the tangent's case of the affine sums, on every round. Confirmed as recovery
    /// confirms them, and one forged signature among them still named.
    #[test]
    fn signatures_repeating_one_r_are_judged_as_recovery_judges_them() {
        let (mut items, keys) = sharing_one_r(3_000, 7);
        assert!(items.iter().all(|(_, sig, _)| sig[..32] == items[0].1[..32]));
        let out = recover_batched(&claims(&items), &keys);
        assert_eq!(out.batched, 3_000);
        assert_eq!(out.signers, expected(&items));
        // The same R, another owner claimed: refused as recovery refuses it.
        items[1_234].2 = items[1_235].2;
        let out = recover_batched(&claims(&items), &keys);
        assert_eq!(out.signers, expected(&items));
        // Its group, split down to at most LEAF signatures, was recovered; the rest confirmed.
        assert!((3_000 - LEAF..3_000).contains(&out.batched), "{}", out.batched);
    }

    #[test]
    fn a_good_batch_is_confirmed_without_recovery() {
        let (items, keys) = signed(600, 7);
        let out = recover_batched(&claims(&items), &keys);
        assert_eq!(out.batched, 600);
        assert!(out.learned.is_empty());
        assert_eq!(out.signers, expected(&items));
    }

    #[test]
    fn unknown_keys_are_recovered_and_learned() {
        let (items, _) = signed(40, 4);
        let out = recover_batched(&claims(&items), &PublicKeys::default());
        assert_eq!(out.batched, 0);
        assert_eq!(out.signers, expected(&items));
        let mut keys = PublicKeys::default();
        for k in &out.learned {
            keys.insert(k).unwrap();
        }
        assert_eq!(keys.len(), 4);
        assert_eq!(recover_batched(&claims(&items), &keys).batched, 40);
    }

    #[test]
    fn a_key_is_filed_only_under_its_own_address() {
        let (items, _) = signed(1, 1);
        let (address, key) = recover_signer_key(items[0].0, &items[0].1, 0).unwrap();
        let mut keys = PublicKeys::default();
        assert_eq!(keys.insert(&key), Some(address));
        assert!(keys.contains(&address));
        let mut off_curve = key;
        off_curve[63] ^= 1;
        assert_eq!(keys.insert(&off_curve), None);
    }

    /// The randomized test SIG-5 asks for: a batch with any one bad signature (anywhere, of any
    /// kind) is refused, and exactly that one is named, with recovery's own answer for it.
    #[test]
    fn any_one_bad_signature_is_refused_and_named() {
        use rand::Rng;
        let mut rng = rand::rng();
        let (good, keys) = signed(700, 9);
        let other = key(99);
        for round in 0..24 {
            let mut items = good.clone();
            let i = rng.random_range(0..items.len());
            let kind = round % 6;
            match kind {
                // Signed by someone else than the claimed owner.
                0 => items[i].1 = other.sign_digest(items[i].0).to_vec(),
                // Another digest's signature (valid, but not for this one).
                1 => items[i].0 = digest(1_000_000 + i as u64),
                // The other parity of R: recovers to another key.
                2 => items[i].1[64] ^= 27 ^ 28,
                // A flipped bit in s (still low).
                3 => items[i].1[63] ^= 1,
                // Claimed by another known owner.
                4 => items[i].2 = items[(i + 1) % items.len()].2,
                // Malformed: the high-s twin (n − s, other parity), whose equation holds: only
                // SIG-3's form check refuses it.
                _ => {
                    let s = U256::from_be_slice(&items[i].1[32..64]);
                    items[i].1[32..64].copy_from_slice(&(N - s).to_be_bytes::<32>());
                    items[i].1[64] ^= 27 ^ 28;
                }
            }
            let out = recover_batched(&claims(&items), &keys);
            let want = expected(&items);
            assert_eq!(out.signers, want, "round {round} kind {kind} at {i}");
            let named: Vec<usize> = (0..items.len())
                .filter(|&j| out.signers[j].as_ref().ok() != Some(&items[j].2))
                .collect();
            assert_eq!(named, vec![i], "round {round} kind {kind}: only the bad one is named");
            assert!(out.batched >= items.len() - LEAF, "the rest stays batched: {}", out.batched);
        }
    }

    #[test]
    fn a_signature_parsed_ahead_is_used_only_for_itself() {
        let (items, keys) = signed(100, 3);
        let parsed: Vec<ParsedSignature> =
            items.iter().map(|(d, sig, _)| ParsedSignature::new(*d, sig)).collect();
        let mut all = claims(&items);
        for (c, p) in all.iter_mut().zip(&parsed) {
            c.parsed = Some(p);
        }
        let out = recover_batched(&all, &keys);
        assert_eq!((out.batched, out.signers), (100, expected(&items)));
        // A parse of another signature handed with a claim is not taken for it.
        let mut bad = items.clone();
        bad[7].1 = key(50).sign_digest(items[7].0).to_vec();
        let mut all = claims(&bad);
        all[7].parsed = Some(&parsed[7]);
        let out = recover_batched(&all, &keys);
        assert_eq!(out.signers, expected(&bad));
        assert_ne!(out.signers[7].as_ref().ok(), Some(&bad[7].2));
        // Half parsed ahead, half here (together): every one is still batched, none recovered —
        // a parse handed to the wrong claim would fail its batch and send it to recovery.
        let mut all = claims(&items);
        for (c, p) in all.iter_mut().zip(&parsed).step_by(2) {
            c.parsed = Some(p);
        }
        let out = recover_batched(&all, &keys);
        assert_eq!((out.batched, out.signers), (100, expected(&items)));
    }

    #[test]
    fn errors_are_recoverys_own() {
        let (mut items, keys) = signed(3, 1);
        items[0].1.truncate(64);
        items[1].1[64] = 1;
        items[2].1[..32].fill(0);
        let out = recover_batched(&claims(&items), &keys);
        assert_eq!(out.signers, expected(&items));
        assert_eq!(out.signers[1], Err(SignatureError::BadRecoveryId { index: 1, v: 1 }));
    }

    #[test]
    fn decompression_is_k256s() {
        // Random x (about half are no point's), the curve's small x, and the largest below p.
        let mut rng = StdRng::seed_from_u64(7);
        let mut xs: Vec<[u8; 32]> = (0..2_000).map(|_| rng.random()).collect();
        xs.push([0; 32]);
        xs.push({
            let mut x = [0; 32];
            x[31] = 1;
            x
        });
        xs.push([0xff; 32]);
        let p_minus_1 = alloy_primitives::hex!(
            "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2e"
        );
        xs.push(p_minus_1);
        let mut points = 0;
        for x in &xs {
            for odd in [0u8, 1] {
                let k256: Option<AffinePoint> =
                    AffinePoint::decompress(&field_bytes(x), Choice::from(odd)).into();
                assert_eq!(decompress(x, odd), k256, "{x:?} {odd}");
                points += usize::from(k256.is_some());
            }
        }
        assert!(points > 1_000, "{points}");
    }

    #[test]
    fn pippenger_matches_plain_scalar_multiplication() {
        let points: Vec<AffinePoint> = (1..=50u64)
            .map(|i| (ProjectivePoint::GENERATOR * Scalar::from(i * 7919)).to_affine())
            .collect();
        let scalars: Vec<Scalar> = (0..50u64)
            .map(|i| {
                Scalar::from(u64::from(digest(i).0[0]) + 1)
                    * Scalar::from(u128::MAX - u128::from(i))
            })
            .collect();
        let want = points
            .iter()
            .zip(&scalars)
            .fold(ProjectivePoint::IDENTITY, |acc, (p, k)| acc + ProjectivePoint::from(*p) * k);
        let refs: Vec<&AffinePoint> = points.iter().collect();
        let l: Vec<[u64; 4]> = scalars.iter().map(limbs).collect();
        assert_eq!(msm(&refs, &l, 256), Some(want));
        let mut inv = scalars.clone();
        batch_invert(&mut inv);
        for (a, b) in inv.iter().zip(&scalars) {
            assert_eq!(*a * b, Scalar::ONE);
        }
    }
}
