//! Adversarial review of SIG-5's batch verification (`plasma_spec::batch_verify`): a byzantine
//! operator chooses every digest, signature and claimed signer of a block. Whatever it chooses,
//! `recover_batched_on` must answer, claim by claim, exactly what `recover_signer` answers.
//!
//! Beyond `audit19_batch_verify.rs`, this covers what that test does not build:
//! - signatures with a chosen nonce: one `R` (and its negation `−R`, from low-s normalisation)
//!   shared by many keys, `R = Q = G` and `R = Q = −G` (the key is the generator or its
//!   negation, the nonce the key itself), so that the batch's `R`, `G` and `Q` terms coincide;
//! - keys nobody holds the private key of, but which a signature recovers to (`Q = r⁻¹(s·R −
//!   z·G)` for any point `R`): small x-coordinates, and the recovery-id-2 confusion — a key made
//!   from the point of x = `r + n`, claimed for a signature whose `v` (27/28) says x = `r`;
//! - `r` that is no point's x-coordinate (`x³ + 7` not a square), on the AVX-512 IFMA path;
//! - cancelling errors across different owners (pairs and triples, `Σ e_i = 0`: the combination
//!   with equal weights would accept them);
//! - parses handed ahead from `ParsedSignature::new_many` (the watcher's `prepare_all`), own,
//!   a neighbour's, or none;
//! - a key cache that fills up and starts again;
//! - the lanes' square roots against decompression (a root of a non-square never yields a point).
//! - each attack alone among valid claims: a false acceptance cannot hide behind another bad
//!   claim of its group sending the whole group to recovery (dense mixes mostly do that).
//!
//! Besides the verdicts, each batch is checked for what it confirmed without recovery: never
//! more than the claims recovery attributes to their claimed (cached) owner, and no fewer than
//! those minus one leaf group (32 signatures) per bad claim in the batch.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy_primitives::{Address, B256, U256, keccak256};
use k256::{
    AffinePoint, FieldBytes, FieldElement, ProjectivePoint, Scalar,
    elliptic_curve::{ops::Reduce, point::DecompressPoint, sec1::ToEncodedPoint, subtle::Choice},
};
use plasma_spec::{
    SignatureError, Signer,
    batch_verify::{ParsedSignature, PublicKeys, SignatureClaim, recover_batched_on},
    recover_signer, recover_signer_key,
    vectors::test_key,
};
use proptest::prelude::*;

/// The order of secp256k1.
const N: U256 = U256::from_be_slice(&alloy_primitives::hex!(
    "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
));
/// The order of its base field.
const P: U256 = U256::from_be_slice(&alloy_primitives::hex!(
    "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f"
));
/// SIG-3's low-s bound.
const N_DIV_2: U256 = U256::from_be_slice(&alloy_primitives::hex!(
    "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"
));
/// `batch_verify`'s leaf: a failing group of at most this many is recovered one by one.
const LEAF: usize = 32;

fn word(x: U256) -> [u8; 32] {
    x.to_be_bytes::<32>()
}

fn scalar(x: U256) -> Scalar {
    <Scalar as Reduce<k256::U256>>::reduce_bytes(&FieldBytes::from(word(x % N)))
}

fn int(s: &Scalar) -> U256 {
    U256::from_be_slice(&s.to_bytes())
}

fn hash(tag: &str, i: u64) -> U256 {
    U256::from_be_bytes(keccak256([tag.as_bytes(), &i.to_be_bytes()].concat()).0)
}

/// The point of x-coordinate `x` (below p) with y of parity `odd`, if there is one.
fn point_at(x: U256, odd: u8) -> Option<AffinePoint> {
    AffinePoint::decompress(&FieldBytes::from(word(x)), Choice::from(odd)).into()
}

/// `R`'s x-coordinate as an integer and its y parity.
fn x_and_parity(p: &AffinePoint) -> (U256, u8) {
    let e = p.to_encoded_point(false);
    (U256::from_be_slice(e.x().unwrap()), e.y().unwrap()[31] & 1)
}

/// The uncompressed key bytes (`x ‖ y`) of a point.
fn raw(p: &AffinePoint) -> [u8; 64] {
    p.to_encoded_point(false).as_bytes()[1..].try_into().unwrap()
}

/// `r ‖ s ‖ v` with `s` made low (negating `s` and flipping `R`'s parity: the same equation).
fn encode(r: U256, s: Scalar, odd: u8) -> Vec<u8> {
    let (s, odd) = if int(&s) > N_DIV_2 { (-s, odd ^ 1) } else { (s, odd) };
    let mut sig = Vec::with_capacity(65);
    sig.extend_from_slice(&word(r));
    sig.extend_from_slice(&s.to_bytes());
    sig.push(27 + odd);
    sig
}

/// An ECDSA signature of `digest` by `secret` with the chosen nonce `k` (low s).
fn sign_with(secret: &Scalar, k: &Scalar, digest: B256) -> Vec<u8> {
    let big_r = (ProjectivePoint::GENERATOR * k).to_affine();
    let (x, odd) = x_and_parity(&big_r);
    assert!(x < N, "R's x above n: not a recovery-id 0/1 signature");
    let r = scalar(x);
    let z = scalar(U256::from_be_bytes(digest.0));
    let k_inv: Scalar = Option::from(k.invert()).unwrap();
    encode(x, k_inv * (z + r * secret), odd)
}

/// The key `Q = r⁻¹·(s·R − z·G)` that signature `(r, s)` with point `R` recovers to when
/// recovery takes that `R`: nobody knows its private key, yet a signature recovers to it.
fn forged_key(big_r: &AffinePoint, r: U256, s: &Scalar, digest: B256) -> AffinePoint {
    let z = scalar(U256::from_be_bytes(digest.0));
    let r_inv: Scalar = Option::from(scalar(r).invert()).unwrap();
    ((ProjectivePoint::from(*big_r) * s - ProjectivePoint::GENERATOR * z) * r_inv).to_affine()
}

/// A low, non-zero `s` from a seed.
fn low_s(i: u64) -> Scalar {
    scalar(hash("s", i) % N_DIV_2 + U256::from(1))
}

/// One claim as the watcher builds it: digest, signature, claimed owner.
#[derive(Clone, Debug)]
struct Item {
    digest: B256,
    sig: Vec<u8>,
    claimed: Option<Address>,
}

/// The owners, the keys the watcher would have cached, and the crafted claims to draw from.
struct World {
    /// Owners whose key is cached, and their secrets.
    owners: Vec<(Signer, Scalar)>,
    /// An owner whose key is not cached.
    stranger: Signer,
    /// The cache: the owners' keys, the generator's and its negation's owners, and the forged
    /// keys below (each recovered from a signature, as the watcher files them).
    keys: PublicKeys,
    /// Every cached address.
    cached: Vec<Address>,
    /// Key `G` (secret 1) and key `−G` (secret n − 1), as signers.
    key_g: Signer,
    key_minus_g: Signer,
    /// Valid claims for keys nobody holds: `R` with a small x.
    small_x: Vec<Item>,
    /// Claims naming the key made from the point of x = `r + n` for a signature whose `v` says
    /// x = `r`: recovery never attributes them to that key.
    recid_two: Vec<Item>,
    /// x-coordinates below n that are no point's.
    no_point: Vec<U256>,
}

fn world() -> World {
    let owners: Vec<(Signer, Scalar)> = (1..=4u64)
        .map(|i| {
            let secret = scalar(hash("owner", i));
            (Signer::from_bytes(&B256::from(word(int(&secret)))).unwrap(), secret)
        })
        .collect();
    let stranger = test_key(77);
    let key_g = Signer::from_bytes(&B256::from(word(U256::from(1)))).unwrap();
    let key_minus_g = Signer::from_bytes(&B256::from(word(N - U256::from(1)))).unwrap();
    let mut keys = PublicKeys::default();
    let mut cached = Vec::new();
    let mut file = |keys: &mut PublicKeys, digest: B256, sig: &[u8]| {
        let (a, k) = recover_signer_key(digest, sig, 0).unwrap();
        assert_eq!(keys.insert(&k), Some(a));
        cached.push(a);
        a
    };
    for (o, _) in &owners {
        let d = keccak256(o.address());
        file(&mut keys, d, &o.sign_digest(d));
    }
    for s in [&key_g, &key_minus_g] {
        let d = keccak256(s.address());
        file(&mut keys, d, &s.sign_digest(d));
    }
    // Forged keys from points of small x (x and x + n both below p): valid claims.
    let mut small_x = Vec::new();
    for x in 1..60u64 {
        let x = U256::from(x);
        for odd in [0u8, 1] {
            let Some(big_r) = point_at(x, odd) else { continue };
            let digest = B256::from(word(hash("small-x", x.to::<u64>() * 2 + u64::from(odd))));
            let s = low_s(x.to::<u64>() * 2 + u64::from(odd));
            let q = forged_key(&big_r, x, &s, digest);
            let sig = encode(x, s, odd);
            assert_eq!(int(&scalar(U256::from_be_slice(&sig[32..64]))), int(&s), "s kept low");
            let a = file(&mut keys, digest, &sig);
            assert_eq!(Address::from_raw_public_key(&raw(&q)), a, "recovery finds the forged key");
            small_x.push(Item { digest, sig, claimed: Some(a) });
        }
    }
    assert!(small_x.len() >= 20, "{}", small_x.len());
    // Recovery id 2/3's point (x = r + n, which v = 27/28 never selects): its key is cached
    // (filed as a key of its own, under its own address), then claimed for the signature.
    let mut recid_two = Vec::new();
    for t in 1..200u64 {
        let t_int = U256::from(t);
        let x = N + t_int;
        assert!(x < P);
        for odd in [0u8, 1] {
            let Some(big_r) = point_at(x, odd) else { continue };
            let digest = B256::from(word(hash("recid-two", t * 2 + u64::from(odd))));
            let s = low_s(1_000 + t * 2 + u64::from(odd));
            let q = forged_key(&big_r, t_int, &s, digest);
            assert!(keys.insert(&raw(&q)).is_some());
            let claimed = Address::from_raw_public_key(&raw(&q));
            cached.push(claimed);
            let sig = encode(t_int, s, odd);
            assert_ne!(recover_signer(digest, &sig, 0), Ok(claimed), "recovery takes x = r");
            recid_two.push(Item { digest, sig, claimed: Some(claimed) });
        }
        if recid_two.len() >= 8 {
            break;
        }
    }
    assert!(recid_two.len() >= 8);
    let no_point: Vec<U256> = (0..400u64)
        .map(|i| hash("no-point", i) % N)
        .filter(|x| !x.is_zero() && point_at(*x, 0).is_none())
        .take(64)
        .collect();
    assert!(no_point.len() >= 32);
    World { owners, stranger, keys, cached, key_g, key_minus_g, small_x, recid_two, no_point }
}

/// The signature an honest claim starts from.
#[derive(Clone, Copy, Debug)]
enum Base {
    /// Owner `o` signs (libsecp256k1's nonce).
    Owner(usize),
    /// Owner `o` signs with the block's one shared nonce (R or −R in every such signature).
    SharedNonce(usize),
    /// Key G with nonce 1 (R = Q = G), or key −G with nonce n − 1 (R = Q = −G).
    GeneratorSelf(bool),
    /// Key G or −G with libsecp256k1's nonce.
    Generator(bool),
    /// A forged key's valid claim, `R` of small x.
    SmallX(usize),
    /// Signed by the uncached owner.
    Stranger,
}

/// What the operator does to it.
#[derive(Clone, Copy, Debug)]
enum Attack {
    None,
    /// Another cached owner signed it; the claim unchanged.
    OtherSigner(usize),
    /// Another digest signed (the claim's digest kept).
    OtherDigest,
    /// `v` flipped (the other `R`), or set outside 27/28.
    FlipParity,
    BadV(u8),
    /// `r` or `s` zero, `s` the high twin, `s ≥ n`, `r ≥ n`, `r = 2^256 − 1`.
    ZeroR,
    ZeroS,
    HighS,
    SAtLeastN(u8),
    RAtLeastN(u8),
    RMax,
    /// `r` no point's x; `r + 1`; `s` with its lowest bit flipped.
    NoPointR(usize),
    RPlusOne,
    SBit,
    /// `r` and `v` of the next claim's signature (its `R`, a point; the equation false).
    BorrowR,
    /// The claim names another cached address, nobody, or an address with no cached key.
    ClaimOther(usize),
    ClaimNone,
    ClaimStranger,
    /// 64 or 66 bytes.
    Short,
    Long,
    /// Replaced by a recovery-id-2 claim.
    RecidTwo(usize),
    /// This claim and the next of another owner err by `−δ·G` and `+δ·G`.
    CrossCancel(u64),
    /// This claim and the next two err by `−δ₁·G`, `−δ₂·G`, `(δ₁ + δ₂)·G`.
    TripleCancel(u64, u64),
    /// The next claim becomes a copy of this one.
    Duplicate,
}

fn base() -> impl Strategy<Value = Base> {
    prop_oneof![
        6 => (0usize..4).prop_map(Base::Owner),
        4 => (0usize..4).prop_map(Base::SharedNonce),
        1 => any::<bool>().prop_map(Base::GeneratorSelf),
        1 => any::<bool>().prop_map(Base::Generator),
        2 => (0usize..64).prop_map(Base::SmallX),
        1 => Just(Base::Stranger),
    ]
}

fn attack() -> impl Strategy<Value = Attack> {
    prop_oneof![
        200 => Just(Attack::None),
        1 => (0usize..8).prop_map(Attack::OtherSigner),
        1 => Just(Attack::OtherDigest),
        1 => Just(Attack::FlipParity),
        1 => prop_oneof![Just(0u8), Just(1), Just(26), Just(29)].prop_map(Attack::BadV),
        1 => Just(Attack::ZeroR),
        1 => Just(Attack::ZeroS),
        2 => Just(Attack::HighS),
        1 => any::<u8>().prop_map(Attack::SAtLeastN),
        1 => any::<u8>().prop_map(Attack::RAtLeastN),
        1 => Just(Attack::RMax),
        2 => (0usize..64).prop_map(Attack::NoPointR),
        1 => Just(Attack::RPlusOne),
        1 => Just(Attack::SBit),
        1 => Just(Attack::BorrowR),
        2 => (0usize..64).prop_map(Attack::ClaimOther),
        1 => Just(Attack::ClaimNone),
        1 => Just(Attack::ClaimStranger),
        1 => Just(Attack::Short),
        1 => Just(Attack::Long),
        2 => (0usize..16).prop_map(Attack::RecidTwo),
        2 => (1u64..u64::MAX).prop_map(Attack::CrossCancel),
        2 => (1u64..u64::MAX, 1u64..u64::MAX).prop_map(|(a, b)| Attack::TripleCancel(a, b)),
        1 => Just(Attack::Duplicate),
    ]
}

/// The honest claim `i` of base `b` (the digest salted by `salt`).
fn honest(w: &World, b: Base, i: usize, salt: u64) -> Item {
    let digest = B256::from(word(hash("digest", salt ^ (i as u64).wrapping_mul(0x9e37))));
    let shared_nonce = scalar(hash("nonce", salt));
    match b {
        Base::Owner(o) => {
            let (s, _) = &w.owners[o];
            Item { digest, sig: s.sign_digest(digest).to_vec(), claimed: Some(s.address()) }
        }
        Base::SharedNonce(o) => {
            let (s, secret) = &w.owners[o];
            Item {
                digest,
                sig: sign_with(secret, &shared_nonce, digest),
                claimed: Some(s.address()),
            }
        }
        Base::GeneratorSelf(minus) => {
            let (signer, secret) =
                if minus { (&w.key_minus_g, -Scalar::ONE) } else { (&w.key_g, Scalar::ONE) };
            Item {
                digest,
                sig: sign_with(&secret, &secret, digest),
                claimed: Some(signer.address()),
            }
        }
        Base::Generator(minus) => {
            let signer = if minus { &w.key_minus_g } else { &w.key_g };
            Item {
                digest,
                sig: signer.sign_digest(digest).to_vec(),
                claimed: Some(signer.address()),
            }
        }
        Base::SmallX(k) => w.small_x[k % w.small_x.len()].clone(),
        Base::Stranger => Item {
            digest,
            sig: w.stranger.sign_digest(digest).to_vec(),
            claimed: Some(w.stranger.address()),
        },
    }
}

fn s_of(sig: &[u8]) -> U256 {
    U256::from_be_slice(&sig[32..64])
}

fn set(sig: &mut [u8], at: usize, x: U256) {
    sig[at..at + 32].copy_from_slice(&word(x));
}

/// Moves claim `i`'s digest so that its equation errs by `−δ·G`: `z' = z + δ·s` (only for a
/// 65-byte signature; the signature itself unchanged).
fn shift(item: &mut Item, delta: U256) {
    if item.sig.len() != 65 {
        return;
    }
    let z = U256::from_be_bytes(item.digest.0) % N;
    let s = s_of(&item.sig) % N;
    item.digest = B256::from(word(z.add_mod(delta.mul_mod(s, N), N)));
}

fn build(w: &World, plan: &[(Base, Attack)], salt: u64) -> Vec<Item> {
    let mut items: Vec<Item> =
        plan.iter().enumerate().map(|(i, (b, _))| honest(w, *b, i, salt)).collect();
    let n = items.len();
    for (i, (_, a)) in plan.iter().enumerate() {
        let next_other =
            |items: &[Item]| (i + 1..n).find(|&j| items[j].claimed != items[i].claimed);
        match *a {
            Attack::None => {}
            Attack::OtherSigner(o) => {
                let (s, _) = &w.owners[o % w.owners.len()];
                items[i].sig = s.sign_digest(items[i].digest).to_vec();
            }
            Attack::OtherDigest => {
                items[i].digest = B256::from(word(hash("other digest", salt ^ i as u64)));
            }
            Attack::FlipParity => items[i].sig[64] ^= 27 ^ 28,
            Attack::BadV(v) => items[i].sig[64] = v,
            Attack::ZeroR => set(&mut items[i].sig, 0, U256::ZERO),
            Attack::ZeroS => set(&mut items[i].sig, 32, U256::ZERO),
            Attack::HighS => {
                // The twin: the same ECDSA equation, which SIG-3 refuses.
                let s = s_of(&items[i].sig);
                set(&mut items[i].sig, 32, N - s);
                items[i].sig[64] ^= 27 ^ 28;
            }
            Attack::SAtLeastN(k) => set(&mut items[i].sig, 32, N + U256::from(k)),
            Attack::RAtLeastN(k) => set(&mut items[i].sig, 0, N + U256::from(k)),
            Attack::RMax => set(&mut items[i].sig, 0, U256::MAX),
            Attack::NoPointR(k) => set(&mut items[i].sig, 0, w.no_point[k % w.no_point.len()]),
            Attack::RPlusOne => {
                let r = U256::from_be_slice(&items[i].sig[..32]);
                set(&mut items[i].sig, 0, r.add_mod(U256::from(1), N).max(U256::from(1)));
            }
            Attack::SBit => items[i].sig[63] ^= 1,
            Attack::BorrowR => {
                if let Some(j) = (i + 1..n).find(|&j| items[j].sig.len() == 65) {
                    let (r, v) = (items[j].sig[..32].to_vec(), items[j].sig[64]);
                    items[i].sig[..32].copy_from_slice(&r);
                    items[i].sig[64] = v;
                }
            }
            Attack::ClaimOther(k) => items[i].claimed = Some(w.cached[k % w.cached.len()]),
            Attack::ClaimNone => items[i].claimed = None,
            Attack::ClaimStranger => items[i].claimed = Some(Address::repeat_byte(0x5a)),
            Attack::Short => {
                items[i].sig.pop();
            }
            Attack::Long => items[i].sig.push(0),
            Attack::RecidTwo(k) => items[i] = w.recid_two[k % w.recid_two.len()].clone(),
            Attack::CrossCancel(delta) => {
                if let Some(j) = next_other(&items) {
                    let d = U256::from(delta);
                    shift(&mut items[i], d);
                    shift(&mut items[j], N - d);
                }
            }
            Attack::TripleCancel(d1, d2) => {
                if i + 2 < n {
                    let (d1, d2) = (U256::from(d1), U256::from(d2));
                    shift(&mut items[i], d1);
                    shift(&mut items[i + 1], d2);
                    shift(&mut items[i + 2], N - d1.add_mod(d2, N));
                }
            }
            Attack::Duplicate => {
                if i + 1 < n {
                    items[i + 1] = items[i].clone();
                }
            }
        }
    }
    items
}

/// How claim `i` gets a parse ahead (as the watcher's pipeline hands them): its own from
/// `new_many` over the whole batch, a neighbour's (which must not be used for it), or none.
fn ahead(items: &[Item], salt: u64) -> Vec<Option<ParsedSignature>> {
    let pairs: Vec<(B256, &[u8])> = items.iter().map(|it| (it.digest, it.sig.as_slice())).collect();
    let many = ParsedSignature::new_many(&pairs);
    (0..items.len())
        .map(|i| match (salt.rotate_left(i as u32 % 64)) & 3 {
            0 => None,
            1 => Some(many[(i + 1) % many.len()].clone()),
            _ => Some(many[i].clone()),
        })
        .collect()
}

/// Recovery's verdicts; the batch's, with the parses handed ahead; both compared, the keys
/// learned checked, and how many the batch confirmed bounded from both sides.
fn differential(
    items: &[Item],
    keys: &PublicKeys,
    threads: usize,
    salt: u64,
) -> Result<(), TestCaseError> {
    let want: Vec<Result<Address, SignatureError>> =
        items.iter().enumerate().map(|(i, it)| recover_signer(it.digest, &it.sig, i % 3)).collect();
    let parses = ahead(items, salt);
    let claims: Vec<SignatureClaim<'_>> = items
        .iter()
        .zip(&parses)
        .enumerate()
        .map(|(i, (it, p))| SignatureClaim {
            digest: it.digest,
            signature: &it.sig,
            index: i % 3,
            claimed: it.claimed,
            parsed: p.as_ref(),
        })
        .collect();
    let out = recover_batched_on(&claims, keys, threads);
    prop_assert_eq!(out.signers.len(), items.len());
    for (i, (got, want)) in out.signers.iter().zip(&want).enumerate() {
        prop_assert_eq!(got, want, "claim {} ({:?}) on {} threads", i, items[i], threads);
    }
    for k in &out.learned {
        let a = Address::from_raw_public_key(k);
        prop_assert!(!keys.contains(&a), "learned a cached key");
        prop_assert!(want.iter().any(|w| w.as_ref() == Ok(&a)), "learned {} unrecovered", a);
    }
    // Claims with a cached claimed key: those recovery attributes to it, and the others.
    let cached = |it: &Item| it.claimed.is_some_and(|a| keys.contains(&a));
    let good = items
        .iter()
        .zip(&want)
        .filter(|(it, w)| cached(it) && w.as_ref().ok() == it.claimed.as_ref())
        .count();
    let bad = items
        .iter()
        .zip(&want)
        .filter(|(it, w)| cached(it) && w.as_ref().ok() != it.claimed.as_ref())
        .count();
    prop_assert!(out.batched <= good, "{} confirmed, {} recover to their claim", out.batched, good);
    prop_assert!(
        out.batched + LEAF * bad >= good,
        "{} confirmed of {} good, {} bad: more recovered than the bad ones' leaf groups",
        out.batched,
        good,
        bad
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random adversarial mixes of every base and attack, 1 to 3 threads.
    #[test]
    fn batch_verdicts_are_recoverys_under_crafted_mixes(
        plan in proptest::collection::vec((base(), attack()), 1..160),
        salt in any::<u64>(),
        threads in 1usize..4,
    ) {
        let w = world();
        let items = build(&w, &plan, salt);
        differential(&items, &w.keys, threads, salt)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Large batches (the affine bucket sums, several threads' shares, splits down to leaves)
    /// mostly sharing one nonce (R and −R in the same buckets), a few attacks anywhere,
    /// including the thread-share boundaries.
    #[test]
    fn large_shared_nonce_batches_with_a_few_attacks(
        spots in proptest::collection::vec((0usize..1100, attack()), 0..5),
        salt in any::<u64>(),
        threads in 1usize..4,
    ) {
        let w = world();
        let mut plan: Vec<(Base, Attack)> = (0..1100)
            .map(|i| (if i % 5 == 4 { Base::Owner(i % 4) } else { Base::SharedNonce(i % 4) }, Attack::None))
            .collect();
        for (at, a) in spots {
            plan[at].1 = a;
        }
        // Boundaries of per-thread shares (512 each at least) and of the parse chunks (256).
        plan[255].1 = Attack::FlipParity;
        plan[512].1 = Attack::CrossCancel(salt | 1);
        let items = build(&w, &plan, salt);
        differential(&items, &w.keys, threads, salt)?;
    }
}

/// Every attack alone (or with the claims it pairs with) among valid claims of every kind, at
/// the start, in the middle and at the end: in a batch that is otherwise valid its group is
/// the only one to fail, so a batch that confirmed it would answer differently from recovery
/// (a denser mix mostly sends every group to recovery and proves less).
#[test]
fn each_attack_alone_is_answered_as_recovery_answers_it() {
    let w = world();
    let attacks = [
        Attack::OtherSigner(1),
        Attack::OtherDigest,
        Attack::FlipParity,
        Attack::BadV(0),
        Attack::BadV(1),
        Attack::BadV(29),
        Attack::ZeroR,
        Attack::ZeroS,
        Attack::HighS,
        Attack::SAtLeastN(0),
        Attack::SAtLeastN(3),
        Attack::RAtLeastN(0),
        Attack::RAtLeastN(3),
        Attack::RMax,
        Attack::NoPointR(0),
        Attack::NoPointR(1),
        Attack::RPlusOne,
        Attack::SBit,
        Attack::BorrowR,
        Attack::ClaimOther(0),
        Attack::ClaimOther(5),
        Attack::ClaimNone,
        Attack::ClaimStranger,
        Attack::Short,
        Attack::Long,
        Attack::RecidTwo(0),
        Attack::RecidTwo(1),
        Attack::CrossCancel(1),
        Attack::CrossCancel(u64::MAX),
        Attack::TripleCancel(3, 4),
        Attack::Duplicate,
    ];
    let bases = [
        Base::Owner(0),
        Base::SharedNonce(1),
        Base::SmallX(3),
        Base::GeneratorSelf(false),
        Base::GeneratorSelf(true),
        Base::Generator(true),
        Base::Owner(2),
        Base::SharedNonce(3),
    ];
    for (k, attack) in attacks.into_iter().enumerate() {
        for at in [0usize, 45, 93] {
            let mut plan: Vec<(Base, Attack)> =
                (0..96).map(|i| (bases[(i + k) % bases.len()], Attack::None)).collect();
            plan[at].1 = attack;
            let salt = (k * 100 + at) as u64;
            let items = build(&w, &plan, salt);
            differential(&items, &w.keys, 1 + at % 2, salt)
                .unwrap_or_else(|e| panic!("{attack:?} at {at}: {e}"));
        }
    }
}

/// Valid claims of every crafted kind are confirmed by the batch, none recovered: the checks
/// above are not passing because everything falls back to recovery.
#[test]
fn crafted_valid_claims_are_all_batched() {
    let w = world();
    let mut plan = Vec::new();
    for i in 0..64 {
        plan.push((Base::SharedNonce(i % 4), Attack::None));
        plan.push((Base::SmallX(i), Attack::None));
        plan.push((Base::GeneratorSelf(i % 2 == 0), Attack::None));
        plan.push((Base::Generator(i % 2 == 1), Attack::None));
        plan.push((Base::Owner(i % 4), Attack::None));
    }
    let items = build(&w, &plan, 3);
    let want: Vec<_> = items.iter().map(|it| recover_signer(it.digest, &it.sig, 0)).collect();
    assert!(want.iter().zip(&items).all(|(w, it)| w.as_ref().ok() == it.claimed.as_ref()));
    // Both parities of the shared R occur.
    let shared: Vec<u8> = items.iter().step_by(5).map(|it| it.sig[64]).collect();
    assert!(shared.contains(&27) && shared.contains(&28));
    for threads in [1, 2] {
        let parses = ahead(&items, 0xffff_ffff_ffff_ffff);
        let claims: Vec<SignatureClaim<'_>> = items
            .iter()
            .zip(&parses)
            .map(|(it, p)| SignatureClaim {
                digest: it.digest,
                signature: &it.sig,
                index: 0,
                claimed: it.claimed,
                parsed: p.as_ref(),
            })
            .collect();
        let out = recover_batched_on(&claims, &w.keys, threads);
        assert_eq!(out.signers, want);
        assert_eq!(out.batched, items.len());
        assert!(out.learned.is_empty());
    }
}

/// The recovery-id-2 confusion: the key of the point with x = r + n is cached and claimed; the
/// signature's `v` is 27 or 28, so recovery takes x = r (another key, or none). Alone, in pairs,
/// and among valid claims, the batch never confirms it.
#[test]
fn the_point_of_x_plus_n_is_never_taken() {
    let w = world();
    for item in &w.recid_two {
        let want = recover_signer(item.digest, &item.sig, 0);
        assert_ne!(want.as_ref().ok(), item.claimed.as_ref());
        let claims = [SignatureClaim {
            digest: item.digest,
            signature: &item.sig,
            index: 0,
            claimed: item.claimed,
            parsed: None,
        }];
        let out = recover_batched_on(&claims, &w.keys, 1);
        assert_eq!(out.signers, vec![want]);
        assert_eq!(out.batched, 0);
    }
    let mut plan: Vec<(Base, Attack)> =
        (0..300).map(|i| (Base::Owner(i % 4), Attack::None)).collect();
    for (k, at) in [7usize, 100, 101, 299].into_iter().enumerate() {
        plan[at].1 = Attack::RecidTwo(k);
    }
    let items = build(&w, &plan, 11);
    for threads in [1, 2] {
        differential(&items, &w.keys, threads, 5).unwrap();
    }
}

/// Errors that cancel with equal weights, across different owners (pairs and a triple), are
/// refused as recovery refuses them, and only they are named in a large batch.
#[test]
fn cancelling_errors_across_owners_are_refused() {
    let w = world();
    for delta in [1u64, 2, 0xdead_beef, u64::MAX] {
        let plan = [(Base::Owner(0), Attack::CrossCancel(delta)), (Base::Owner(1), Attack::None)];
        let items = build(&w, &plan, delta);
        let want: Vec<_> = items.iter().map(|it| recover_signer(it.digest, &it.sig, 0)).collect();
        assert!(want.iter().zip(&items).all(|(w, it)| w.as_ref().ok() != it.claimed.as_ref()));
        let claims: Vec<SignatureClaim<'_>> = items
            .iter()
            .map(|it| SignatureClaim {
                digest: it.digest,
                signature: &it.sig,
                index: 0,
                claimed: it.claimed,
                parsed: None,
            })
            .collect();
        let out = recover_batched_on(&claims, &w.keys, 1);
        assert_eq!(out.signers, want);
        assert_eq!(out.batched, 0);
    }
    let mut plan: Vec<(Base, Attack)> =
        (0..700).map(|i| (Base::Owner(i % 4), Attack::None)).collect();
    plan[10].1 = Attack::CrossCancel(5);
    plan[400].1 = Attack::TripleCancel(7, 9);
    let items = build(&w, &plan, 99);
    let want: Vec<_> = items.iter().map(|it| recover_signer(it.digest, &it.sig, 0)).collect();
    let wrong: Vec<usize> =
        (0..items.len()).filter(|&i| want[i].as_ref().ok() != items[i].claimed.as_ref()).collect();
    assert_eq!(wrong, vec![10, 11, 400, 401, 402]);
    let claims: Vec<SignatureClaim<'_>> = items
        .iter()
        .map(|it| SignatureClaim {
            digest: it.digest,
            signature: &it.sig,
            index: 0,
            claimed: it.claimed,
            parsed: None,
        })
        .collect();
    for threads in [1, 2] {
        let out = recover_batched_on(&claims, &w.keys, threads);
        assert_eq!(out.signers, want);
        assert!(out.batched + 3 * LEAF >= items.len() - wrong.len(), "{}", out.batched);
    }
}

/// A cache that fills up starts again empty: keys filed before are gone (their claims
/// recovered), keys filed after are batched, and every verdict is recovery's.
#[test]
fn a_cache_that_starts_again_keeps_verdicts() {
    let w = world();
    let mut keys = PublicKeys::with_limit(2);
    let file = |keys: &mut PublicKeys, s: &Signer| {
        let d = keccak256(s.address());
        let (a, k) = recover_signer_key(d, &s.sign_digest(d), 0).unwrap();
        assert_eq!(keys.insert(&k), Some(a));
    };
    let (a, b, c) = (&w.owners[0].0, &w.owners[1].0, &w.owners[2].0);
    file(&mut keys, a);
    file(&mut keys, b);
    file(&mut keys, c);
    assert_eq!(keys.len(), 1);
    assert!(keys.contains(&c.address()) && !keys.contains(&a.address()));
    let mut plan: Vec<(Base, Attack)> =
        (0..300).map(|i| (Base::Owner(i % 3), Attack::None)).collect();
    plan[2].1 = Attack::OtherSigner(0); // c's claim, a's signature
    plan[5].1 = Attack::ClaimOther(0);
    let items = build(&w, &plan, 1);
    differential(&items, &keys, 1, 7).unwrap();
    let claims: Vec<SignatureClaim<'_>> = items
        .iter()
        .map(|it| SignatureClaim {
            digest: it.digest,
            signature: &it.sig,
            index: 0,
            claimed: it.claimed,
            parsed: None,
        })
        .collect();
    let out = recover_batched_on(&claims, &keys, 1);
    // c's 100 claims (every third) less the two changed: 98 recover to c, all confirmed but at
    // most the rest of the forged one's leaf group.
    assert!((98 - (LEAF - 1)..=98).contains(&out.batched), "{}", out.batched);
}

/// The lanes' square roots (AVX-512 IFMA, when the CPU has it) against decompression: a root
/// squares back exactly when x is a point's, and is then that point's y up to sign; for x with
/// no point the "root" squares to something else, so it never makes a point. Then
/// the same x's as signatures' r, parsed eight at a time: accepted exactly when recovery
/// accepts them.
#[test]
fn lane_roots_never_make_a_point_decompression_refuses() {
    let mut xs: Vec<U256> = (1..=40u64).map(U256::from).collect();
    xs.extend((1..=40u64).map(|k| N - U256::from(k)));
    xs.extend((0..40u64).map(|k| P - N - U256::from(k)));
    xs.extend((0..600u64).map(|i| hash("x", i) % N));
    let seven = FieldElement::from_u64(7);
    let rhs: Vec<[u8; 32]> = xs
        .iter()
        .map(|x| {
            let x: FieldElement =
                Option::from(FieldElement::from_bytes(&FieldBytes::from(word(*x)))).unwrap();
            (x.square() * x + seven).to_bytes().into()
        })
        .collect();
    let mut points = 0;
    if let Some(roots) = plasma_keccak_lanes::secp256k1_sqrt_many(&rhs) {
        for ((x, a), root) in xs.iter().zip(&rhs).zip(&roots) {
            let root_int = U256::from_be_bytes(*root);
            assert!(root_int < P, "canonical root");
            let squares_back = root_int.mul_mod(root_int, P) == U256::from_be_bytes(*a);
            let point = point_at(*x, 0);
            assert_eq!(squares_back, point.is_some(), "x = {x:#x}");
            if let Some(p) = point {
                let y = U256::from_be_slice(p.to_encoded_point(false).y().unwrap());
                assert!(root_int == y || root_int == P - y, "x = {x:#x}");
                points += 1;
            }
        }
        assert!(points > 300, "{points}");
    }
    // The same x's as r of otherwise valid signatures, both parities, parsed together.
    let signer = test_key(5);
    let items: Vec<Item> = xs
        .iter()
        .enumerate()
        .flat_map(|(i, x)| {
            let digest = B256::from(word(hash("r", i as u64)));
            let sig = signer.sign_digest(digest).to_vec();
            [27u8, 28].map(|v| {
                let mut sig = sig.clone();
                set(&mut sig, 0, *x);
                sig[64] = v;
                Item { digest, sig, claimed: Some(signer.address()) }
            })
        })
        .collect();
    let mut keys = PublicKeys::default();
    let d = keccak256(signer.address());
    keys.insert(&recover_signer_key(d, &signer.sign_digest(d), 0).unwrap().1).unwrap();
    let want: Vec<_> = items.iter().map(|it| recover_signer(it.digest, &it.sig, 0)).collect();
    assert!(want.contains(&Err(SignatureError::RecoveryFailed { index: 0 })));
    differential(&items, &keys, 2, 0xaaaa_aaaa_aaaa_aaaa).unwrap();
}
