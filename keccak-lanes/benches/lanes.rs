//! Keccak-256 of many messages: eight to an AVX-512 register against one by one.
//! `cargo bench -p plasma-keccak-lanes --bench lanes`
#![allow(missing_docs)]

use alloy_primitives::keccak256;
use plasma_keccak_lanes::{keccak256_many, lanes_available};
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
}
