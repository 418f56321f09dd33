//! The availability test vectors, `spec/vectors/availability.json` (spec: DA-1 … DA-3).
//!
//! Generated from this crate (`cargo run -p plasma-da --bin gen-da-vectors`) and checked by its
//! tests: the committed file must equal [`generate`]'s output, and every case in it must hold
//! when replayed against the library. Conventions as in `plasma_spec::vectors`: bytes and hashes
//! are `0x` hex, keys sorted, deterministic keys `keccak256("plasma test key" ‖ n)`, domain chain
//! 31337 / verifying contract `0x5FbDB2315678afecb367f032d93F642f64180aa3`.

use crate::{
    ChunkEnvelope, ChunkProof, DaError, DaHeader, Encoded, Params, Receipt, decode, encode,
    envelopes, rebuild,
};
use alloy_primitives::{B256, Bytes, hex, keccak256};
use plasma_spec::{
    Signer, SigningDomain,
    vectors::{VECTOR_CHAIN_ID, VECTOR_CONTRACT, test_key, vector_domain},
};
use serde_json::{Value, json};
use std::path::Path;

/// The block number every vector header names.
pub const VECTOR_BLKNUM: u64 = 2000;
/// The data lengths coded for every parameter set.
pub const VECTOR_LENGTHS: [usize; 6] = [0, 1, 6, 7, 100, 1000];
/// The parameter sets `(k, n)`; `(3, 40)` takes the FFT path.
pub const VECTOR_PARAMS: [(u16, u16); 7] =
    [(1, 1), (1, 3), (2, 3), (3, 5), (4, 7), (16, 32), (3, 40)];

/// The operator's key in the vectors: test key 1.
pub fn operator_key() -> Signer {
    test_key(1)
}

/// Tower `i`'s key in the vectors: test key `100 + i`.
pub fn tower_key(i: u16) -> Signer {
    test_key(100 + u64::from(i))
}

/// The deterministic data of a length: `keccak256(u64be(len) ‖ u64be(i / 32))` byte `i % 32`.
pub fn vector_data(len: usize) -> Vec<u8> {
    (0..len.div_ceil(32))
        .flat_map(|block| {
            let mut seed = (len as u64).to_be_bytes().to_vec();
            seed.extend_from_slice(&(block as u64).to_be_bytes());
            keccak256(seed).0
        })
        .take(len)
        .collect()
}

/// The L1 root a vector header names: `keccak256("tx root" ‖ data)`.
pub fn vector_tx_root(data: &[u8]) -> B256 {
    keccak256([b"tx root".as_slice(), data].concat())
}

/// Subsets every encoding is decoded from: first `k`, last `k`, every other index from the end,
/// and all `n` (deduplicated).
pub fn decode_subsets(params: Params) -> Vec<Vec<u16>> {
    let (k, n) = (params.k, params.n);
    let alternate: Vec<u16> = {
        let mut v: Vec<u16> =
            (0..n).rev().step_by(2).chain((0..n).rev().skip(1).step_by(2)).collect();
        v.truncate(usize::from(k));
        v.sort_unstable();
        v
    };
    let mut out =
        vec![(0..k).collect::<Vec<_>>(), (n - k..n).collect(), alternate, (0..n).collect()];
    out.dedup();
    let mut seen = Vec::new();
    out.retain(|s| {
        let new = !seen.contains(s);
        seen.push(s.clone());
        new
    });
    out
}

fn hex0x(bytes: impl AsRef<[u8]>) -> String {
    hex::encode_prefixed(bytes)
}

fn header_json(h: &DaHeader) -> Value {
    json!({
        "blknum": h.blknum.to_string(), "txRoot": h.tx_root, "dataLen": h.data_len.to_string(),
        "k": h.k, "n": h.n, "chunkRoot": h.chunk_root,
    })
}

fn proof_json(p: &ChunkProof) -> Value {
    Value::from(p.0.iter().map(hex0x).collect::<Vec<_>>())
}

fn encoding(domain: &SigningDomain, k: u16, n: u16, len: usize) -> Value {
    let params = Params { k, n };
    let data = vector_data(len);
    let tx_root = vector_tx_root(&data);
    let envs = envelopes(&data, VECTOR_BLKNUM, tx_root, params, domain, &operator_key())
        .unwrap_or_else(|e| unreachable!("vector params are valid: {e}"));
    let header = envs.first().map(|e| e.header).unwrap_or_else(|| unreachable!("n >= 1"));
    let receipts: Vec<Value> = (0..n)
        .map(|index| {
            let r = Receipt { blknum: VECTOR_BLKNUM, chunk_root: header.chunk_root, index };
            let key = tower_key(index);
            json!({
                "index": index, "tower": key.address(), "digest": r.digest(domain),
                "signature": r.sign(domain, &key),
            })
        })
        .collect();
    json!({
        "name": format!("k{k} n{n} len{len}"),
        "k": k, "n": n, "fft": params.uses_fft(), "dataLen": len.to_string(), "data": hex0x(&data),
        "chunkLen": params.chunk_len(len as u64),
        "chunks": envs.iter().map(|e| hex0x(&e.chunk)).collect::<Vec<_>>(),
        "chunkRoot": header.chunk_root,
        "proofs": envs.iter().map(|e| proof_json(&e.proof)).collect::<Vec<_>>(),
        "header": header_json(&header),
        "headerDigest": header.digest(domain),
        "headerSignature": envs.first().map(|e| e.header_sig.clone()),
        "receipts": receipts,
        // The first and the last chunk's envelope: the others differ only in index, proof, chunk.
        "envelopes": envs
            .iter()
            .filter(|e| e.index == 0 || e.index == n - 1)
            .map(|e| json!({ "index": e.index, "bytes": hex0x(e.encode()) }))
            .collect::<Vec<_>>(),
        "decodeFrom": decode_subsets(params),
    })
}

fn code(r: Result<impl Sized, DaError>) -> Value {
    match r {
        Ok(_) => Value::Null,
        Err(e) => Value::from(e.code()),
    }
}

fn chunk_set(chunks: &[(u16, Vec<u8>)]) -> Value {
    Value::from(
        chunks.iter().map(|(i, c)| json!({ "index": i, "chunk": hex0x(c) })).collect::<Vec<_>>(),
    )
}

fn set_of(encoded: &Encoded, idx: &[u16]) -> Vec<(u16, Vec<u8>)> {
    idx.iter().map(|&i| (i, encoded.chunks[usize::from(i)].clone())).collect()
}

fn borrowed(chunks: &[(u16, Vec<u8>)]) -> Vec<(u16, &[u8])> {
    chunks.iter().map(|(i, c)| (*i, c.as_slice())).collect()
}

/// A bad chunk set: `rebuild` (or `decode`) must fail with `error`.
fn bad_set(
    name: &str,
    op: &str,
    params: Params,
    len: u64,
    root: B256,
    chunks: &[(u16, Vec<u8>)],
) -> Value {
    let set = borrowed(chunks);
    let result = if op == "rebuild" {
        code(rebuild(params, len, root, &set))
    } else {
        code(decode(params, len, &set))
    };
    json!({
        "name": name, "op": op, "k": params.k, "n": params.n, "dataLen": len.to_string(),
        "chunkRoot": root, "chunks": chunk_set(chunks), "error": result,
    })
}

/// A bad envelope: `ChunkEnvelope::decode` then `verify(domain, operator)` must fail with `error`.
fn bad_envelope(name: &str, domain: &SigningDomain, bytes: &[u8]) -> Value {
    let operator = operator_key().address();
    let result = code(ChunkEnvelope::decode(bytes).and_then(|e| e.verify(domain, operator)));
    json!({ "name": name, "op": "verifyEnvelope", "envelope": hex0x(bytes), "error": result })
}

fn bad_cases(domain: &SigningDomain) -> Vec<Value> {
    let params = Params { k: 3, n: 5 };
    let (a, b) = (vector_data(100), vector_data(1000));
    let b_as_100 = b[..100].to_vec();
    let (Ok(ea), Ok(eb)) = (encode(&a, params), encode(&b_as_100, params)) else {
        unreachable!("vector params are valid")
    };
    let envs = envelopes(&a, VECTOR_BLKNUM, vector_tx_root(&a), params, domain, &operator_key())
        .unwrap_or_else(|e| unreachable!("vector params are valid: {e}"));
    let good = &envs[1];
    let mut out = Vec::new();

    let mut e = good.clone();
    e.chunk[0] ^= 1;
    out.push(bad_envelope("tampered chunk", domain, &e.encode()));
    let mut e = good.clone();
    e.proof.0[0].0[31] ^= 1;
    out.push(bad_envelope("tampered proof", domain, &e.encode()));
    let mut e = good.clone();
    e.index = 2;
    out.push(bad_envelope("chunk under another index", domain, &e.encode()));
    let mut e = good.clone();
    e.header_sig = e.header.sign(domain, &test_key(2));
    out.push(bad_envelope("header signed by another key", domain, &e.encode()));
    let mut e = good.clone();
    e.header.tx_root = B256::repeat_byte(0xee);
    out.push(bad_envelope("header changed after signing", domain, &e.encode()));
    let mut e = good.clone();
    e.header_sig = Bytes::from(vec![0u8; 65]);
    out.push(bad_envelope("unrecoverable header signature", domain, &e.encode()));
    let mut e = good.clone();
    e.chunk.truncate(e.chunk.len() - 8);
    out.push(bad_envelope("short chunk", domain, &e.encode()));
    let mut e = good.clone();
    e.header.k = 6;
    e.header_sig = e.header.sign(domain, &operator_key());
    out.push(bad_envelope("k above n", domain, &e.encode()));
    let mut e = good.clone();
    e.index = 5;
    out.push(bad_envelope("index out of range", domain, &e.encode()));
    let bytes = good.encode();
    out.push(bad_envelope("truncated envelope", domain, &bytes[..bytes.len() - 1]));
    out.push(bad_envelope("trailing byte", domain, &[bytes.as_slice(), &[0]].concat()));
    out.push(bad_envelope("wrong magic", domain, &[b"PLC2".as_slice(), &bytes[4..]].concat()));

    let mixed =
        vec![(0, ea.chunks[0].clone()), (2, ea.chunks[2].clone()), (4, eb.chunks[4].clone())];
    out.push(bad_set("chunks of two codewords", "rebuild", params, 100, ea.root(), &mixed));
    let mut tampered = set_of(&ea, &[0, 3, 4]);
    tampered[1].1[5] ^= 0x40;
    out.push(bad_set("tampered parity chunk", "rebuild", params, 100, ea.root(), &tampered));
    out.push(bad_set(
        "right chunks, another root",
        "rebuild",
        params,
        100,
        eb.root(),
        &set_of(&ea, &[1, 2, 3]),
    ));
    let mut extra = set_of(&ea, &[0, 1, 2, 3]);
    extra[3].1[0] ^= 1;
    out.push(bad_set("an extra chunk not committed", "rebuild", params, 100, ea.root(), &extra));
    let mut noncanonical = set_of(&ea, &[0, 1, 4]);
    noncanonical[2].1[..8].fill(0xff);
    out.push(bad_set("symbol not below p", "decode", params, 100, ea.root(), &noncanonical));
    out.push(bad_set("too few chunks", "rebuild", params, 100, ea.root(), &set_of(&ea, &[0, 4])));
    out.push(bad_set(
        "duplicate index",
        "rebuild",
        params,
        100,
        ea.root(),
        &set_of(&ea, &[0, 4, 4]),
    ));
    out.push(bad_set(
        "index out of range",
        "decode",
        Params { k: 3, n: 4 },
        100,
        ea.root(),
        &set_of(&ea, &[0, 1, 4]),
    ));
    let mut short = set_of(&ea, &[0, 1, 2]);
    short[0].1.pop();
    out.push(bad_set("chunk of the wrong length", "decode", params, 100, ea.root(), &short));
    out.push(bad_set(
        "k of zero",
        "decode",
        Params { k: 0, n: 5 },
        100,
        ea.root(),
        &set_of(&ea, &[0, 1, 2]),
    ));
    out
}

/// The vector file's text: pretty JSON with a trailing newline.
pub fn generate() -> String {
    let domain = vector_domain();
    let encodings: Vec<Value> = VECTOR_PARAMS
        .iter()
        .flat_map(|&(k, n)| VECTOR_LENGTHS.iter().map(move |&len| (k, n, len)))
        .map(|(k, n, len)| encoding(&domain, k, n, len))
        .collect();
    let value = json!({
        "domain": { "chainId": VECTOR_CHAIN_ID, "verifyingContract": VECTOR_CONTRACT },
        "operator": operator_key().address(),
        "blknum": VECTOR_BLKNUM.to_string(),
        "encodings": encodings,
        "bad": bad_cases(&domain),
    });
    let mut text = serde_json::to_string_pretty(&value)
        .unwrap_or_else(|e| unreachable!("vectors are plain JSON: {e}"));
    text.push('\n');
    text
}

/// Writes the vector file to `path`.
pub fn write(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, generate())
}

/// Where the committed vector file lives: `spec/vectors/availability.json`.
pub fn default_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors/availability.json")
}
