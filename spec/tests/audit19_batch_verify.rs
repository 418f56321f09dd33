//! Audit of issue 19's batch signature verification (SIG-5): differential against per-signature
//! recovery (`recover_signer`), with signatures crafted by a malicious operator.
//!
//! Whatever the claims, `recover_batched` must answer, claim by claim, exactly what
//! `recover_signer` answers (address or error), whatever the number of threads.

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy_primitives::{Address, B256, U256, keccak256};
use plasma_spec::{
    Signer,
    batch_verify::{ParsedSignature, PublicKeys, SignatureClaim, recover_batched_on},
    recover_signer, recover_signer_key,
    vectors::test_key as key,
};
use proptest::prelude::*;

/// The order of secp256k1.
const N: U256 = U256::from_be_slice(&alloy_primitives::hex!(
    "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
));

const OWNERS: u64 = 5;

fn owners() -> Vec<Signer> {
    (1..=OWNERS).map(key).collect()
}

/// The cache after recovering every owner but the last once (the last stays unknown).
fn cache(owners: &[Signer]) -> PublicKeys {
    let mut keys = PublicKeys::default();
    for o in &owners[..owners.len() - 1] {
        let d = keccak256(o.address());
        let (a, k) = recover_signer_key(d, &o.sign_digest(d), 0).unwrap();
        assert_eq!(keys.insert(&k), Some(a));
    }
    keys
}

fn word(x: U256) -> [u8; 32] {
    x.to_be_bytes::<32>()
}

fn r_of(sig: &[u8]) -> U256 {
    U256::from_be_slice(&sig[..32])
}
fn s_of(sig: &[u8]) -> U256 {
    U256::from_be_slice(&sig[32..64])
}
fn set_r(sig: &mut [u8], r: U256) {
    sig[..32].copy_from_slice(&word(r));
}
fn set_s(sig: &mut [u8], s: U256) {
    sig[32..64].copy_from_slice(&word(s));
}

/// One claim as the watcher builds it: digest, signature, claimed owner.
#[derive(Clone, Debug)]
struct Item {
    digest: B256,
    sig: Vec<u8>,
    claimed: Option<Address>,
}

/// A mutation a malicious operator may apply to an honest signature.
#[derive(Clone, Copy, Debug)]
enum Attack {
    None,
    /// Signed by another (known) owner, the claim unchanged.
    OtherSigner,
    /// Signed by the owner whose key is not cached.
    UnknownSigner,
    /// Presented with another digest.
    OtherDigest,
    /// The other parity of R.
    FlipParity,
    /// `v` outside 27/28.
    BadV(u8),
    /// r = 0, s = 0.
    ZeroR,
    ZeroS,
    /// The high-s twin (n − s): the same ECDSA signature, which SIG-3 refuses.
    HighS,
    /// s = n, s = n + k, r = n, r = n + k (k small), r = 2^256 − 1.
    SAtN,
    RAtN,
    RPlusN,
    RMax,
    /// A random r (most are not an x on the curve; those that are give another key).
    RandomR(u64),
    /// r of another signature (R on the curve, equation false).
    BorrowR,
    /// The claim names another known owner.
    ClaimOther,
    /// The claim names nobody / somebody unknown.
    ClaimNone,
    ClaimStranger,
    /// 64 or 66 bytes.
    Short,
    Long,
    /// A digest ≥ n whose reduction is the signed digest (both recover the same).
    DigestPlusN,
    /// Two signatures of the same owner whose errors cancel when the weights are equal:
    /// z₁' = z₁ + δ·s₁ and z₂' = z₂ − δ·s₂ (applied to this claim and the next of its owner).
    Cancel(u64),
    /// The same signature twice in a row (the next claim becomes a copy of this one).
    Duplicate,
}

fn attack() -> impl Strategy<Value = Attack> {
    prop_oneof![
        // Mostly valid claims, so that groups with no bad claim are confirmed by the batch too.
        200 => Just(Attack::None),
        1 => Just(Attack::OtherSigner),
        1 => Just(Attack::UnknownSigner),
        1 => Just(Attack::OtherDigest),
        1 => Just(Attack::FlipParity),
        1 => prop_oneof![Just(0u8), Just(1), Just(26), Just(29), Just(255)].prop_map(Attack::BadV),
        1 => Just(Attack::ZeroR),
        1 => Just(Attack::ZeroS),
        1 => Just(Attack::HighS),
        1 => Just(Attack::SAtN),
        1 => Just(Attack::RAtN),
        1 => Just(Attack::RPlusN),
        1 => Just(Attack::RMax),
        1 => any::<u64>().prop_map(Attack::RandomR),
        1 => Just(Attack::BorrowR),
        1 => Just(Attack::ClaimOther),
        1 => Just(Attack::ClaimNone),
        1 => Just(Attack::ClaimStranger),
        1 => Just(Attack::Short),
        1 => Just(Attack::Long),
        1 => Just(Attack::DigestPlusN),
        2 => (1u64..u64::MAX).prop_map(Attack::Cancel),
        1 => Just(Attack::Duplicate),
    ]
}

/// Honest claims (owner `who[i]` signs digest `i`), then the attacks applied in order.
fn build(owners: &[Signer], who: &[usize], attacks: &[Attack], salt: u64) -> Vec<Item> {
    let known = owners.len() - 1; // owners[known] is not in the cache
    let digest = |i: usize| keccak256([salt.to_be_bytes(), (i as u64).to_be_bytes()].concat());
    let mut items: Vec<Item> = who
        .iter()
        .enumerate()
        .map(|(i, &o)| {
            let o = o % known;
            Item {
                digest: digest(i),
                sig: owners[o].sign_digest(digest(i)).to_vec(),
                claimed: Some(owners[o].address()),
            }
        })
        .collect();
    let n = items.len();
    for (i, a) in attacks.iter().enumerate().take(n) {
        match *a {
            Attack::Cancel(delta) => {
                let Some(j) = (i + 1..n).find(|&j| items[j].claimed == items[i].claimed) else {
                    continue;
                };
                let d = U256::from(delta);
                let (z1, s1) = (U256::from_be_bytes(items[i].digest.0) % N, s_of(&items[i].sig));
                let (z2, s2) = (U256::from_be_bytes(items[j].digest.0) % N, s_of(&items[j].sig));
                items[i].digest = B256::from(word(z1.add_mod(d.mul_mod(s1, N), N)));
                items[j].digest = B256::from(word(z2.add_mod(N - d.mul_mod(s2, N), N)));
                continue;
            }
            Attack::Duplicate => {
                if i + 1 < n {
                    items[i + 1] = items[i].clone();
                }
                continue;
            }
            _ => {}
        }
        let it = &mut items[i];
        let signer_of = |it: &Item| owners.iter().position(|o| Some(o.address()) == it.claimed);
        match *a {
            Attack::None => {}
            Attack::OtherSigner => {
                let o = (signer_of(it).unwrap_or(0) + 1) % known;
                it.sig = owners[o].sign_digest(it.digest).to_vec();
            }
            Attack::UnknownSigner => it.sig = owners[known].sign_digest(it.digest).to_vec(),
            Attack::OtherDigest => it.digest = digest(n + i + 1),
            Attack::FlipParity => it.sig[64] ^= 27 ^ 28,
            Attack::BadV(v) => it.sig[64] = v,
            Attack::ZeroR => set_r(&mut it.sig, U256::ZERO),
            Attack::ZeroS => set_s(&mut it.sig, U256::ZERO),
            Attack::HighS => {
                let s = s_of(&it.sig);
                set_s(&mut it.sig, N - s);
                it.sig[64] ^= 27 ^ 28;
            }
            Attack::SAtN => {
                let s = s_of(&it.sig);
                set_s(&mut it.sig, N + (s & U256::from(0xff)));
            }
            Attack::RAtN => set_r(&mut it.sig, N),
            Attack::RPlusN => {
                let r = r_of(&it.sig);
                // r + n fits for r < 2^256 − n (about 2^128): rarely; otherwise n + (r mod 2^64).
                set_r(&mut it.sig, r.checked_add(N).unwrap_or(N + (r & U256::from(u64::MAX))));
            }
            Attack::RMax => set_r(&mut it.sig, U256::MAX),
            Attack::RandomR(x) => {
                set_r(&mut it.sig, U256::from_be_bytes(keccak256(x.to_be_bytes()).0) % N)
            }
            Attack::BorrowR => {
                let other = owners[0].sign_digest(digest(10_000 + i)).to_vec();
                it.sig[..32].copy_from_slice(&other[..32]);
                it.sig[64] = other[64];
            }
            Attack::ClaimOther => {
                let o = (signer_of(it).unwrap_or(0) + 1) % known;
                it.claimed = Some(owners[o].address());
            }
            Attack::ClaimNone => it.claimed = None,
            Attack::ClaimStranger => it.claimed = Some(Address::repeat_byte(0x5a)),
            Attack::Short => {
                it.sig.pop();
            }
            Attack::Long => it.sig.push(0),
            Attack::DigestPlusN => {
                // Sign z (< 2^256 − n so z + n fits), present z + n: both are z mod n.
                let z = U256::from_be_bytes(it.digest.0) >> 130;
                let o = signer_of(it).unwrap_or(0);
                it.sig = owners[o].sign_digest(B256::from(word(z))).to_vec();
                it.digest = B256::from(word(z + N));
            }
            Attack::Cancel(_) | Attack::Duplicate => {}
        }
    }
    items
}

fn claims<'a>(items: &'a [Item], ahead: &'a [Option<ParsedSignature>]) -> Vec<SignatureClaim<'a>> {
    items
        .iter()
        .enumerate()
        .map(|(i, it)| SignatureClaim {
            digest: it.digest,
            signature: &it.sig,
            index: i % 4,
            claimed: it.claimed,
            parsed: ahead.get(i).and_then(Option::as_ref),
        })
        .collect()
}

/// Parses handed with the claims, as the watcher's pipeline does: claim `i` gets the parse of
/// its own signature, of its neighbour's (a parse that is not its own must not be used), or none.
fn parses(items: &[Item], salt: u64) -> Vec<Option<ParsedSignature>> {
    (0..items.len())
        .map(|i| match (salt >> (i % 60)) & 3 {
            0 => None,
            1 => {
                let j = (i + 1) % items.len();
                Some(ParsedSignature::new(items[j].digest, &items[j].sig))
            }
            _ => Some(ParsedSignature::new(items[i].digest, &items[i].sig)),
        })
        .collect()
}

/// The batch answers exactly what recovery answers, on any number of threads; keys it learns
/// are exactly the recovered keys not yet cached.
fn differential(items: &[Item], keys: &PublicKeys, threads: usize) -> Result<(), TestCaseError> {
    let want: Vec<_> =
        items.iter().enumerate().map(|(i, it)| recover_signer(it.digest, &it.sig, i % 4)).collect();
    let ahead =
        parses(items, (threads as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ items.len() as u64);
    let out = recover_batched_on(&claims(items, &ahead), keys, threads);
    for (i, (got, want)) in out.signers.iter().zip(&want).enumerate() {
        prop_assert_eq!(got, want, "claim {} ({:?}) on {} threads", i, items[i], threads);
    }
    prop_assert_eq!(out.signers.len(), items.len());
    for k in &out.learned {
        let address = Address::from_raw_public_key(k);
        prop_assert!(!keys.contains(&address), "learned a cached key");
        prop_assert!(
            want.iter().any(|w| w.as_ref() == Ok(&address)),
            "learned {} unrecovered",
            address
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn batch_is_recovery_under_adversarial_mutations(
        who in proptest::collection::vec(0usize..16, 1..140),
        attacks in proptest::collection::vec(attack(), 0..140),
        salt in any::<u64>(),
        threads in 1usize..4,
    ) {
        let owners = owners();
        let keys = cache(&owners);
        let items = build(&owners, &who, &attacks, salt);
        differential(&items, &keys, threads)?;
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Mostly honest, large (past the per-thread and split thresholds), few attacks in random
    /// places: the rest stays batched and the answers are recovery's.
    #[test]
    fn large_batches_with_a_few_attacks(
        spots in proptest::collection::vec((0usize..1200, attack()), 0..4),
        salt in any::<u64>(),
        threads in 1usize..5,
    ) {
        let owners = owners();
        let keys = cache(&owners);
        let who: Vec<usize> = (0..1200).collect();
        let mut attacks = vec![Attack::None; 1200];
        for (at, a) in spots {
            attacks[at] = a;
        }
        let items = build(&owners, &who, &attacks, salt);
        differential(&items, &keys, threads)?;
    }
}

/// The cancelling pair alone, every weight equal to one would accept it: recovery refuses both
/// (they recover to other keys), so must the batch.
#[test]
fn a_cancelling_pair_of_one_owner_is_refused() {
    let owners = owners();
    let keys = cache(&owners);
    for delta in [1u64, 2, 12345, u64::MAX] {
        let who = vec![0usize, 0];
        let items = build(&owners, &who, &[Attack::Cancel(delta), Attack::None], delta);
        let want: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(i, it)| recover_signer(it.digest, &it.sig, i % 4))
            .collect();
        assert!(want.iter().all(|w| w.as_ref().ok() != items[0].claimed.as_ref()));
        let out = recover_batched_on(&claims(&items, &[]), &keys, 1);
        assert_eq!(out.signers, want);
        assert_eq!(out.batched, 0, "nothing of a cancelling pair is confirmed");
    }
}
