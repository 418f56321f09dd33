//! `spec/vectors/availability.json` is exactly what the generator writes, and every case in it
//! holds when replayed against the library (spec: DA-1 … DA-3). Regenerate with
//! `cargo run -p plasma-da --bin gen-da-vectors`.

#![allow(clippy::unwrap_used)] // test helpers: a panic is how they fail

use alloy_primitives::{Address, B256, hex};
use plasma_da::{
    ChunkEnvelope, ChunkProof, DaHeader, Params, Receipt, chunk_leaf, decode, encode, rebuild,
    vectors::{default_path, generate},
    verify_chunk,
};
use plasma_spec::{SigningDomain, recover_signer};
use serde_json::Value;

fn file() -> Value {
    let text = std::fs::read_to_string(default_path()).expect("spec/vectors/availability.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn b256(v: &Value) -> B256 {
    v.as_str().expect("hash").parse().expect("32-byte hex")
}

fn num(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).expect("integer")
}

fn domain(v: &Value) -> SigningDomain {
    let contract: Address = v["domain"]["verifyingContract"].as_str().unwrap().parse().unwrap();
    SigningDomain::new(num(&v["domain"]["chainId"]), contract)
}

#[test]
fn committed_vectors_match_the_generator() {
    let on_disk = std::fs::read_to_string(default_path()).unwrap_or_default();
    assert!(
        on_disk == generate(),
        "spec/vectors/availability.json is stale; run `cargo run -p plasma-da --bin gen-da-vectors`"
    );
}

#[test]
fn generation_is_deterministic() {
    assert_eq!(generate(), generate());
}

#[test]
fn every_encoding_case_holds() {
    let v = file();
    let d = domain(&v);
    let operator: Address = v["operator"].as_str().unwrap().parse().unwrap();
    let encodings = v["encodings"].as_array().unwrap();
    assert_eq!(encodings.len(), 42);
    let mut fft_cases = 0;
    for case in encodings {
        let name = case["name"].as_str().unwrap();
        let params = Params::new(num(&case["k"]) as u16, num(&case["n"]) as u16).unwrap();
        let data = bytes(&case["data"]);
        let len = num(&case["dataLen"]);
        assert_eq!(data.len() as u64, len, "{name}");
        assert_eq!(case["fft"].as_bool().unwrap(), params.uses_fft(), "{name}");
        fft_cases += usize::from(params.uses_fft());
        let chunks: Vec<Vec<u8>> = case["chunks"].as_array().unwrap().iter().map(bytes).collect();
        let root = b256(&case["chunkRoot"]);

        // Encoding gives exactly these chunks and this root.
        let enc = encode(&data, params).unwrap();
        assert_eq!(enc.chunks, chunks, "{name}");
        assert_eq!(enc.root(), root, "{name}");
        assert_eq!(num(&case["chunkLen"]) as usize, params.chunk_len(len), "{name}");

        // Every proof verifies its chunk, and only its chunk.
        for (i, (chunk, proof)) in chunks.iter().zip(case["proofs"].as_array().unwrap()).enumerate()
        {
            let proof = ChunkProof(proof.as_array().unwrap().iter().map(b256).collect());
            let i = i as u16;
            assert_eq!(proof, enc.proof(i), "{name}");
            assert!(verify_chunk(root, params.n, i, chunk, &proof), "{name} chunk {i}");
            if params.n > 1 {
                assert!(!verify_chunk(root, params.n, (i + 1) % params.n, chunk, &proof));
            }
            assert_ne!(chunk_leaf(i, chunk), chunk_leaf(i.wrapping_add(1), chunk));
        }

        // The header, its digest and the operator's signature.
        let h = &case["header"];
        let header = DaHeader {
            blknum: num(&h["blknum"]),
            tx_root: b256(&h["txRoot"]),
            data_len: num(&h["dataLen"]),
            k: num(&h["k"]) as u16,
            n: num(&h["n"]) as u16,
            chunk_root: b256(&h["chunkRoot"]),
        };
        assert_eq!(
            (header.k, header.n, header.chunk_root, header.data_len),
            (params.k, params.n, root, len)
        );
        assert_eq!(header.digest(&d), b256(&case["headerDigest"]), "{name}");
        let sig = bytes(&case["headerSignature"]);
        assert_eq!(header.signer(&d, &sig).unwrap(), operator, "{name}");
        assert_eq!(recover_signer(header.digest(&d), &sig, 0).unwrap(), operator);

        // Every tower's receipt.
        for r in case["receipts"].as_array().unwrap() {
            let receipt =
                Receipt { blknum: header.blknum, chunk_root: root, index: num(&r["index"]) as u16 };
            assert_eq!(receipt.digest(&d), b256(&r["digest"]), "{name}");
            let tower: Address = r["tower"].as_str().unwrap().parse().unwrap();
            assert_eq!(receipt.signer(&d, &bytes(&r["signature"])).unwrap(), tower, "{name}");
        }

        // Envelopes decode to the listed parts, verify, and re-encode to the same bytes.
        for e in case["envelopes"].as_array().unwrap() {
            let raw = bytes(&e["bytes"]);
            let env = ChunkEnvelope::decode(&raw).unwrap();
            let i = num(&e["index"]) as u16;
            assert_eq!(env.index, i);
            assert_eq!(env.header, header);
            assert_eq!(env.header_sig.as_ref(), sig.as_slice());
            assert_eq!(env.chunk, chunks[usize::from(i)]);
            assert_eq!(env.proof, enc.proof(i));
            env.verify(&d, operator).unwrap();
            assert_eq!(env.encode(), raw);
        }

        // Decoding from every listed subset, unchecked and checked.
        for subset in case["decodeFrom"].as_array().unwrap() {
            let set: Vec<(u16, &[u8])> = subset
                .as_array()
                .unwrap()
                .iter()
                .map(|i| (num(i) as u16, chunks[num(i) as usize].as_slice()))
                .collect();
            assert_eq!(decode(params, len, &set).unwrap(), data, "{name} from {subset}");
            assert_eq!(rebuild(params, len, root, &set).unwrap(), data, "{name} from {subset}");
        }
    }
    assert_eq!(fft_cases, 6);
}

#[test]
fn every_bad_case_fails_with_its_code() {
    let v = file();
    let d = domain(&v);
    let operator: Address = v["operator"].as_str().unwrap().parse().unwrap();
    let bad = v["bad"].as_array().unwrap();
    assert!(bad.len() >= 20);
    for case in bad {
        let name = case["name"].as_str().unwrap();
        let expected = case["error"].as_str().unwrap_or_else(|| panic!("{name} has an error code"));
        let got = match case["op"].as_str().unwrap() {
            "verifyEnvelope" => ChunkEnvelope::decode(&bytes(&case["envelope"]))
                .and_then(|e| e.verify(&d, operator))
                .unwrap_err(),
            op => {
                let params = Params { k: num(&case["k"]) as u16, n: num(&case["n"]) as u16 };
                let owned: Vec<(u16, Vec<u8>)> = case["chunks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| (num(&c["index"]) as u16, bytes(&c["chunk"])))
                    .collect();
                let set: Vec<(u16, &[u8])> =
                    owned.iter().map(|(i, c)| (*i, c.as_slice())).collect();
                let len = num(&case["dataLen"]);
                if op == "rebuild" {
                    rebuild(params, len, b256(&case["chunkRoot"]), &set).unwrap_err()
                } else {
                    decode(params, len, &set).unwrap_err()
                }
            }
        };
        assert_eq!(got.code(), expected, "{name}: {got}");
    }
}
