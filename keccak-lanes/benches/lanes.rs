//! Keccak-256 of many messages, and secp256k1 square roots: eight to an AVX-512 register
//! against one by one.
//! `cargo bench -p plasma-keccak-lanes --bench lanes`
#![allow(missing_docs, clippy::unwrap_used)]

use alloy_primitives::keccak256;
use plasma_keccak_lanes::{
    keccak256_many, lanes_available, secp256k1_sqrt_many, sqrt_lanes_available,
};
use std::time::Instant;

fn main() {
    println!("AVX-512 lanes on this CPU: {}", lanes_available());
    println!("| message | alloy keccak256, one by one | keccak256_many | ratio |");
    println!("|---|---:|---:|---:|");
    for len in [64usize, 200, 290, 600] {
        let n = 65_536;
        let data: Vec<Vec<u8>> =
            (0..n).map(|i| (0..len).map(|k| (i * 7 + k * 13) as u8).collect()).collect();
        let msgs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut best = [f64::MAX; 2];
        for _ in 0..5 {
            let t = Instant::now();
            let one: Vec<_> = msgs.iter().map(keccak256).collect();
            best[0] = best[0].min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let many = keccak256_many(&msgs);
            best[1] = best[1].min(t.elapsed().as_secs_f64());
            assert_eq!(one, many);
        }
        println!(
            "| {len} bytes | one by one {:.3} µs | lanes {:.3} µs | {:.2}x |",
            best[0] * 1e6 / n as f64,
            best[1] * 1e6 / n as f64,
            best[0] / best[1]
        );
    }
    // Square roots as a signature's R needs them: x³ + 7 for x-coordinates of points, one by
    // one by libsecp256k1 (a compressed key parsed: the root and its parity), and eight at a
    // time (the root alone; the caller's square check and parity are a few multiplications).
    println!();
    println!("AVX-512 IFMA lanes on this CPU: {}", sqrt_lanes_available());
    println!(
        "| secp256k1 square root | libsecp256k1, one by one (key parse) | secp256k1_sqrt_many | ratio |"
    );
    println!("|---|---:|---:|---:|");
    let n = 65_536u64;
    let keys: Vec<[u8; 33]> = (1..=n)
        .map(|i| {
            let sk = secp256k1::SecretKey::from_byte_array(keccak256(i.to_be_bytes()).0).unwrap();
            secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &sk).serialize()
        })
        .collect();
    let p =
        alloy_primitives::U256::from_limbs([0xFFFF_FFFE_FFFF_FC2F, u64::MAX, u64::MAX, u64::MAX]);
    let rhs: Vec<[u8; 32]> = keys
        .iter()
        .map(|k| {
            let x = alloy_primitives::U256::from_be_slice(&k[1..]);
            x.mul_mod(x, p).mul_mod(x, p).add_mod(alloy_primitives::U256::from(7), p).to_be_bytes()
        })
        .collect();
    let mut best = [f64::MAX; 2];
    for _ in 0..5 {
        let t = Instant::now();
        let one: Vec<_> =
            keys.iter().map(|k| secp256k1::PublicKey::from_slice(k).unwrap()).collect();
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        assert_eq!(one.len(), keys.len());
        let t = Instant::now();
        let many = secp256k1_sqrt_many(&rhs);
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        if let Some(roots) = many {
            // Each root is the key's y or its negation.
            for ((root, key), one) in roots.iter().zip(&keys).zip(&one).take(64) {
                let y = &one.serialize_uncompressed()[33..];
                let neg = (p - alloy_primitives::U256::from_be_slice(y)).to_be_bytes::<32>();
                assert!(root.as_slice() == y || *root == neg, "{key:?}");
            }
        }
    }
    println!(
        "| x³ + 7 of {n} keys | one by one {:.3} µs | lanes {:.3} µs | {:.2}x |",
        best[0] * 1e6 / n as f64,
        best[1] * 1e6 / n as f64,
        best[0] / best[1]
    );
}
