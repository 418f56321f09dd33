//! An outside audit of the coding crate (issue 17, DA-1 … DA-3): what a byzantine operator can
//! commit to under a signed chunk root, and what a rebuilding tower makes of it.
//!
//! The property every test pins is DA-10's "every tower that rebuilds gets the same block": for a
//! committed chunk set, either **every** `k`-subset rebuilds the same bytes, or **none** does
//! (`BadEncoding`) — whatever the operator put in the chunks (parity that does not match,
//! symbols not below `p`, data symbols of 8 bytes, non-zero padding, a short `dataLen`).
//! Also pinned: the bounds hostile headers meet before anything is allocated, and that headers
//! and receipts do not replay across deployments.

#![allow(clippy::unwrap_used)] // test helpers: a panic is how they fail

use alloy_primitives::{Address, B256};
use plasma_da::{
    ChunkEnvelope, DaError, DaHeader, MAX_DATA_LEN, Params, Receipt, chunk_root, encode, envelopes,
    rebuild,
};
use plasma_spec::{
    SigningDomain,
    vectors::{VECTOR_CHAIN_ID, VECTOR_CONTRACT, test_key, vector_domain},
};

/// Goldilocks' modulus.
const P: u64 = 0xffff_ffff_0000_0001;

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// Each subset's indices and what it rebuilt.
type Rebuilds = Vec<(Vec<u16>, Result<Vec<u8>, DaError>)>;

/// Every `k`-subset of `0..n`.
fn subsets(n: u16, k: u16) -> Vec<Vec<u16>> {
    let mut out = Vec::new();
    for mask in 0u32..(1 << n) {
        if mask.count_ones() == u32::from(k) {
            out.push((0..n).filter(|i| mask & (1 << i) != 0).collect());
        }
    }
    out
}

/// What each `k`-subset of `chunks` rebuilds under `root`.
fn every_rebuild(params: Params, data_len: u64, root: B256, chunks: &[Vec<u8>]) -> Rebuilds {
    subsets(params.n, params.k)
        .into_iter()
        .map(|s| {
            let given: Vec<(u16, &[u8])> =
                s.iter().map(|&i| (i, chunks[usize::from(i)].as_slice())).collect();
            let r = rebuild(params, data_len, root, &given);
            (s, r)
        })
        .collect()
}

/// All subsets agree: every one gives `Ok(same bytes)` or every one gives `BadEncoding`.
fn assert_all_or_nothing(results: &Rebuilds) -> Option<Vec<u8>> {
    let oks: Vec<&Vec<u8>> = results.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    if oks.is_empty() {
        for (s, r) in results {
            assert!(
                matches!(r, Err(DaError::BadEncoding { .. })),
                "subset {s:?}: expected BadEncoding, got {r:?}"
            );
        }
        return None;
    }
    assert_eq!(oks.len(), results.len(), "some subsets rebuild, others not: {results:?}");
    assert!(oks.iter().all(|b| *b == oks[0]), "two subsets rebuilt different bytes");
    Some(oks[0].clone())
}

fn set_symbol(chunk: &mut [u8], row: usize, value: u64) {
    chunk[8 * row..8 * row + 8].copy_from_slice(&value.to_le_bytes());
}

fn symbol(chunk: &[u8], row: usize) -> u64 {
    u64::from_le_bytes(chunk[8 * row..8 * row + 8].try_into().unwrap())
}

/// The honest case, for reference: every subset rebuilds the data (3 of 5, and the FFT path).
#[test]
fn an_honest_codeword_rebuilds_from_every_subset() {
    for (k, n, len) in [(3u16, 5u16, 1000usize), (2, 3, 1), (4, 7, 0), (5, 9, 4096)] {
        let params = Params::new(k, n).unwrap();
        let d = data(len);
        let enc = encode(&d, params).unwrap();
        let got =
            assert_all_or_nothing(&every_rebuild(params, len as u64, enc.root(), &enc.chunks));
        assert_eq!(got, Some(d), "k={k} n={n} len={len}");
    }
}

/// The operator commits the right data chunks and a wrong parity chunk: the three data chunks
/// decode (a plain `decode` is happy), but no subset rebuilds — a tower holding the data chunks
/// and one holding the bad parity chunk cannot end up with different verdicts.
#[test]
fn a_wrong_parity_chunk_condemns_every_subset() {
    let params = Params::new(3, 5).unwrap();
    let d = data(500);
    let mut chunks = encode(&d, params).unwrap().chunks;
    chunks[4][3] ^= 0x40;
    let root = chunk_root(&chunks);
    let given: Vec<(u16, &[u8])> = (0..3).map(|i| (i, chunks[usize::from(i)].as_slice())).collect();
    assert_eq!(plasma_da::decode(params, 500, &given).unwrap(), d, "unchecked decode is fooled");
    assert_all_or_nothing(&every_rebuild(params, 500, root, &chunks));
}

/// A data symbol written as `v + p` (the same field element, another 8-byte word) under a root
/// the operator computed over it: subsets with and without that chunk must agree (none rebuilds).
#[test]
fn a_non_canonical_data_symbol_condemns_every_subset() {
    let params = Params::new(3, 5).unwrap();
    let mut d = data(300);
    // Data symbol (chunk 0, row 2) = 5: small enough that 5 + p is still a 64-bit word.
    d[14..21].copy_from_slice(&[5, 0, 0, 0, 0, 0, 0]);
    let mut chunks = encode(&d, params).unwrap().chunks;
    let v = symbol(&chunks[0], 2);
    assert_eq!(v, 5);
    set_symbol(&mut chunks[0], 2, v + P);
    let root = chunk_root(&chunks);
    assert_all_or_nothing(&every_rebuild(params, 300, root, &chunks));
}

/// The same with a parity symbol written as `v + p` where it fits.
#[test]
fn a_non_canonical_parity_symbol_condemns_every_subset() {
    let params = Params::new(3, 5).unwrap();
    let d = data(300);
    let enc = encode(&d, params).unwrap();
    let mut chunks = enc.chunks;
    // Find a parity symbol small enough that v + p is still a u64 (value < 2^32 - 1).
    let rows = params.rows(300);
    let found = (3..5).find_map(|c| {
        (0..rows).find(|&r| symbol(&chunks[c], r) < u64::MAX - P + 1).map(|r| (c, r))
    });
    let Some((c, r)) = found else {
        // No such symbol in this codeword: make one by choosing data so a parity symbol is 0.
        let zeros = vec![0u8; 300];
        let mut chunks = encode(&zeros, params).unwrap().chunks;
        set_symbol(&mut chunks[3], 0, P);
        let root = chunk_root(&chunks);
        assert_all_or_nothing(&every_rebuild(params, 300, root, &chunks));
        return;
    };
    let v = symbol(&chunks[c], r);
    set_symbol(&mut chunks[c], r, v + P);
    let root = chunk_root(&chunks);
    assert_all_or_nothing(&every_rebuild(params, 300, root, &chunks));
}

/// A real codeword over the field (every row one polynomial of degree < K) whose data symbols are
/// not 7-byte values: no byte string encodes to it, so no subset may rebuild one.
#[test]
fn a_codeword_with_a_data_symbol_of_eight_bytes_condemns_every_subset() {
    let params = Params::new(3, 5).unwrap();
    // Chunks of the data "all zero but data symbol (chunk 1, row 0) = 2^60": by linearity the
    // encoding of a unit vector scaled; build it from encodings of bytes (7-byte symbols) and
    // add field-wise. 2^60 = 16 · 2^56: sixteen copies of the symbol 2^56 - 1 plus 16.
    let len = 7 * 3; // one row
    let mut unit = vec![0u8; len];
    unit[7..14].copy_from_slice(&[0xff; 7]); // chunk 1's symbol = 2^56 - 1
    let a = encode(&unit, params).unwrap().chunks;
    let mut small = vec![0u8; len];
    small[7] = 16; // chunk 1's symbol = 16
    let b = encode(&small, params).unwrap().chunks;
    let add = |x: u64, y: u64| {
        let (s, over) = x.overflowing_add(y);
        let s = if over { s.wrapping_sub(P) } else { s };
        if s >= P { s - P } else { s }
    };
    let mut chunks = vec![vec![0u8; 8]; 5];
    for c in 0..5 {
        let mut acc = 0u64;
        for _ in 0..16 {
            acc = add(acc, symbol(&a[c], 0));
        }
        acc = add(acc, symbol(&b[c], 0));
        set_symbol(&mut chunks[c], 0, acc);
    }
    assert_eq!(symbol(&chunks[1], 0), 16 * ((1u64 << 56) - 1) + 16, "= 2^60");
    let root = chunk_root(&chunks);
    assert_all_or_nothing(&every_rebuild(params, len as u64, root, &chunks));
}

/// The operator signs a `dataLen` shorter than the coded bytes (the padding is not zero): every
/// subset agrees that it is no encoding of that many bytes.
#[test]
fn a_short_data_len_over_longer_data_condemns_every_subset() {
    let params = Params::new(3, 5).unwrap();
    // 40 bytes coded (2 rows), signed as 30: same chunk length (8·2), non-zero padding.
    let enc = encode(&data(40), params).unwrap();
    assert_eq!(params.chunk_len(30), params.chunk_len(40));
    assert_all_or_nothing(&every_rebuild(params, 30, enc.root(), &enc.chunks));
}

/// Two codings of one block (an equivocating operator, DA-8): each rebuilds the same bytes from
/// every subset of its own chunks, and chunks mixed across the two roots rebuild under neither.
#[test]
fn chunks_mixed_across_two_codings_rebuild_under_neither_root() {
    let params = Params::new(3, 5).unwrap();
    let (x, y) = (data(200), {
        let mut y = data(200);
        y[0] ^= 1; // chunk 0 (bytes 0 … 69)
        y[199] ^= 1; // chunk 2 (bytes 140 … 209)
        y
    });
    let (ex, ey) = (encode(&x, params).unwrap(), encode(&y, params).unwrap());
    let mixed = [ex.chunks[0].clone(), ex.chunks[1].clone(), ey.chunks[2].clone()];
    for root in [ex.root(), ey.root()] {
        let given: Vec<(u16, &[u8])> =
            mixed.iter().zip(0u16..).map(|(c, i)| (i, c.as_slice())).collect();
        assert!(
            matches!(rebuild(params, 200, root, &given), Err(DaError::BadEncoding { .. })),
            "mixed chunks must not rebuild under {root}"
        );
    }
}

/// Decoding bombs: a header that claims the largest data (128 MiB) with a tiny chunk is refused
/// by its length before anything is allocated, and one beyond the bound is refused outright.
#[test]
fn huge_claimed_lengths_are_refused_before_allocation() {
    let params = Params::new(1, 1).unwrap();
    let tiny = vec![0u8; 8];
    let r = rebuild(params, MAX_DATA_LEN, B256::ZERO, &[(0, tiny.as_slice())]);
    assert!(matches!(r, Err(DaError::ChunkLength { .. })), "{r:?}");
    let r = rebuild(params, MAX_DATA_LEN + 1, B256::ZERO, &[(0, tiny.as_slice())]);
    assert!(matches!(r, Err(DaError::DataTooLong { .. })), "{r:?}");
    let r = plasma_da::decode(params, u64::MAX, &[(0, tiny.as_slice())]);
    assert!(matches!(r, Err(DaError::DataTooLong { .. })), "{r:?}");

    // The same through an envelope a tower would receive: signed, but its chunk is not 8m bytes.
    let d = vector_domain();
    let op = test_key(1);
    let mut env =
        envelopes(&data(10), 2000, B256::repeat_byte(1), Params::new(1, 1).unwrap(), &d, &op)
            .unwrap()
            .remove(0);
    env.header.data_len = MAX_DATA_LEN;
    env.header_sig = env.header.sign(&d, &op);
    assert!(matches!(env.verify(&d, op.address()), Err(DaError::ChunkLength { .. })));
    env.header.data_len = u64::MAX;
    env.header_sig = env.header.sign(&d, &op);
    assert!(matches!(env.verify(&d, op.address()), Err(DaError::DataTooLong { .. })));
}

/// Identical chunk bytes at two indices (all-zero data): a chunk's proof still names its index,
/// so a tower cannot present a peer's chunk as its own index.
#[test]
fn identical_chunks_are_not_interchangeable_across_indices() {
    let d = vector_domain();
    let op = test_key(1);
    let envs =
        envelopes(&[0u8; 42], 2000, B256::repeat_byte(2), Params::new(3, 5).unwrap(), &d, &op)
            .unwrap();
    assert_eq!(envs[0].chunk, envs[1].chunk, "zero data: identical data chunks");
    let mut moved = envs[0].clone();
    moved.index = 1;
    assert_eq!(moved.verify(&d, op.address()), Err(DaError::BadProof { index: 1 }));
}

/// Headers and receipts are signed in the deployment's domain: another chain id or framework
/// (a second deployment by the same operator key, a testnet) recovers another signer.
#[test]
fn headers_and_receipts_do_not_replay_across_deployments() {
    let home = vector_domain();
    let op = test_key(1);
    let env =
        envelopes(&data(64), 3000, B256::repeat_byte(3), Params::new(2, 3).unwrap(), &home, &op)
            .unwrap()
            .remove(0);
    env.verify(&home, op.address()).unwrap();
    let other_chain = SigningDomain::new(VECTOR_CHAIN_ID + 1, VECTOR_CONTRACT);
    let other_framework = SigningDomain::new(VECTOR_CHAIN_ID, Address::repeat_byte(0xee));
    for d in [&other_chain, &other_framework] {
        assert!(
            matches!(
                env.verify(d, op.address()),
                Err(DaError::NotOperator { .. } | DaError::BadSignature(_))
            ),
            "a header signed for one deployment verifies in another"
        );
    }
    let tower = test_key(2);
    let receipt = Receipt { blknum: 3000, chunk_root: env.header.chunk_root, index: 0 };
    let sig = receipt.sign(&home, &tower);
    assert_eq!(receipt.signer(&home, &sig).unwrap(), tower.address());
    assert_ne!(receipt.signer(&other_chain, &sig).ok(), Some(tower.address()));
    // A receipt is not a header signature either (distinct EIP-712 types).
    let header_as_receipt = DaHeader { ..env.header };
    assert_ne!(header_as_receipt.digest(&home), receipt.digest(&home));
}

/// Hostile envelope bytes never panic and never verify: random flips of a good envelope.
#[test]
fn flipped_envelope_bytes_never_verify() {
    let d = vector_domain();
    let op = test_key(1);
    let good =
        envelopes(&data(300), 2000, B256::repeat_byte(4), Params::new(3, 5).unwrap(), &d, &op)
            .unwrap()
            .remove(3)
            .encode();
    for at in 0..good.len() {
        let mut b = good.clone();
        b[at] ^= 0x01;
        if let Ok(env) = ChunkEnvelope::decode(&b) {
            // A flip in the signature's `v` byte or a proof byte may still parse; none verifies —
            // except a flip that changes nothing the signature or proof covers (none exists).
            assert!(env.verify(&d, op.address()).is_err(), "flip at byte {at} still verifies");
        }
    }
}
