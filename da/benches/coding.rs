//! Coding speed of plasma-da on a full block's bytes, beside reed-solomon-simd (a binary-field
//! Reed-Solomon coder, the speed reference). Prints a markdown table.
//!
//! `cargo bench -p plasma-da --bench coding` (env: `PLASMA_DA_BENCH_REPS`, default 3: the best of
//! that many runs is reported; `PLASMA_DA_BENCH_SHAPES`, e.g. `3/5,16/32`).
//!
//! Two inputs: 32 MiB (the "2^16 payments, ~32 MB") and the real wire form of a full
//! block (65,536 signed 1-in-2-out payments, zlib, OP-9), built here. Decode is the worst case:
//! every data chunk that can be missing is (parity chunks first, then the lowest data chunks).

#![allow(clippy::unwrap_used, missing_docs)]

use alloy_primitives::{Address, B256, U256};
use plasma_da::{Params, chunk_root, decode, encode, rebuild, tree_depth};
use plasma_spec::{
    Output, Signer, Transaction, UtxoPos,
    test_utils::{domain, key, sign},
    wire::{Encoding, encode_block},
};
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The wire form of a full block: 65,536 payments over 200 owners, signed on two threads.
fn full_block_wire() -> Vec<u8> {
    let keys: Vec<Signer> = (1..=200).map(key).collect();
    let d = domain();
    let n = plasma_spec::MAX_TXS_PER_BLOCK;
    let txs: Vec<Vec<u8>> = std::thread::scope(|s| {
        let parts: Vec<_> = (0..2)
            .map(|t| {
                let (d, keys) = (d.clone(), &keys);
                s.spawn(move || {
                    (0..n)
                        .filter(|i| i % 2 == t)
                        .map(|i| {
                            let from = &keys[i % keys.len()];
                            let outs = (1..=2)
                                .map(|o| {
                                    let to = keys[(i * 7 + o) % keys.len()].address();
                                    Output::new(to, Address::ZERO, U256::from(1_000 + i as u64))
                                })
                                .collect();
                            let tx = Transaction::payment(
                                &[UtxoPos::new(1000, i as u16, 0).unwrap()],
                                outs,
                                B256::ZERO,
                            );
                            (i, sign(&d, tx, &[from]).encode())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, Vec<u8>)> =
            parts.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, t)| t).collect()
    });
    encode_block(2000, B256::repeat_byte(7), &txs, Encoding::Zlib).unwrap()
}

/// CPU time of this process (all threads), user + system, from `/proc/self/stat` (10 ms ticks).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3; utime, stime are
    // fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Runs `f` `reps` times: the result, the best wall time, and the mean CPU time per run.
fn best<T>(reps: usize, mut f: impl FnMut() -> T) -> (T, Duration, Duration) {
    let mut out = None;
    let mut best = Duration::MAX;
    let reps = reps.max(1);
    let cpu0 = cpu();
    for _ in 0..reps {
        let start = Instant::now();
        let v = f();
        best = best.min(start.elapsed());
        out = Some(v);
    }
    let cpu = (cpu() - cpu0) / reps as u32;
    (out.unwrap(), best, cpu)
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn mbps(bytes: usize, d: Duration) -> String {
    format!("{:.0}", bytes as f64 / 1e6 / d.as_secs_f64())
}

/// The worst erasure pattern: all parity chunks, then the lowest data chunks, `k` in all; the
/// data chunks present are the highest ones so the missing ones are the first.
fn worst_set(p: Params) -> Vec<u16> {
    let (k, n) = (p.k, p.n);
    let parity = n - k;
    let mut set: Vec<u16> = (k..n).take(usize::from(k)).collect();
    let data_needed = k.saturating_sub(parity);
    set.extend(k - data_needed..k);
    set
}

fn main() {
    let reps = env("PLASMA_DA_BENCH_REPS", 3);
    let shapes: Vec<(u16, u16)> = std::env::var("PLASMA_DA_BENCH_SHAPES")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|p| {
                    let (k, n) = p.split_once('/').unwrap();
                    (k.parse().unwrap(), n.parse().unwrap())
                })
                .collect()
        })
        .unwrap_or_else(|| vec![(3, 5), (8, 16), (16, 32), (32, 64), (64, 128)]);
    let wire = full_block_wire();
    let big: Vec<u8> =
        (0..32usize << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    println!(
        "plasma-da coding, best of {reps}, {} threads available; full block wire = {} bytes",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        wire.len()
    );
    println!();
    println!(
        "| data | k/n | encoder | encode ms (chunk tree) | encode MB/s | decode ms, worst | \
         decode MB/s | decode ms, all data present | checked rebuild ms, worst (all data present) | CPU ms: encode (tree) / \
         decode / rebuild | per tower (envelope) | ÷ data | rs-simd encode ms (MB/s) | \
         rs-simd decode ms (MB/s) |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (label, data) in [("32 MiB", &big), ("full block wire", &wire)] {
        let len = data.len();
        for &(k, n) in &shapes {
            let p = Params::new(k, n).unwrap();
            let (enc, t_enc, c_enc) = best(reps, || encode(data, p).unwrap());
            let (root, t_tree, c_tree) = best(reps, || chunk_root(&enc.chunks));
            assert_eq!(root, enc.root());
            let worst: Vec<(u16, &[u8])> = worst_set(p)
                .into_iter()
                .map(|i| (i, enc.chunks[usize::from(i)].as_slice()))
                .collect();
            let (out, t_dec, c_dec) = best(reps, || decode(p, len as u64, &worst).unwrap());
            assert!(out == *data);
            drop(out);
            let all_data: Vec<(u16, &[u8])> =
                (0..k).map(|i| (i, enc.chunks[usize::from(i)].as_slice())).collect();
            let (_, t_copy, _) = best(reps, || decode(p, len as u64, &all_data).unwrap());
            let (out, t_reb, c_reb) =
                best(reps, || rebuild(p, len as u64, enc.root(), &worst).unwrap());
            let (_, t_reb_copy, _) =
                best(reps, || rebuild(p, len as u64, enc.root(), &all_data).unwrap());
            assert!(out == *data);
            drop(out);
            let envelope = 156 + 32 * tree_depth(n) + 4 + p.chunk_len(len as u64);

            // reed-solomon-simd on the same shape: k original shards of ceil(len/k) bytes (even).
            let shard = len.div_ceil(usize::from(k)).next_multiple_of(2);
            let originals: Vec<Vec<u8>> = (0..usize::from(k))
                .map(|i| {
                    let mut s =
                        data.get(i * shard..len.min((i + 1) * shard)).unwrap_or(&[]).to_vec();
                    s.resize(shard, 0);
                    s
                })
                .collect();
            let (recovery, t_rs_enc, _) = best(reps, || {
                reed_solomon_simd::encode(usize::from(k), usize::from(n - k), &originals).unwrap()
            });
            let present: Vec<(usize, &Vec<u8>)> = worst_set(p)
                .into_iter()
                .filter(|&i| i < k)
                .map(|i| (usize::from(i), &originals[usize::from(i)]))
                .collect();
            let (restored, t_rs_dec, _) = best(reps, || {
                reed_solomon_simd::decode(
                    usize::from(k),
                    usize::from(n - k),
                    present.iter().map(|(i, s)| (*i, s.as_slice())),
                    recovery.iter().enumerate().map(|(i, s)| (i, s.as_slice())),
                )
                .unwrap()
            });
            assert_eq!(restored.len(), usize::from(k) - present.len());
            println!(
                "| {label} | {k}/{n} | {} | {} ({}) | {} | {} | {} | {} | {} ({}) | {} ({}) / {} / {} | {} B | {:.3} = {:.2}/k | {} ({}) | {} ({}) |",
                if p.uses_fft() { "FFT" } else { "matrix" },
                ms(t_enc),
                ms(t_tree),
                mbps(len, t_enc),
                ms(t_dec),
                mbps(len, t_dec),
                ms(t_copy),
                ms(t_reb),
                ms(t_reb_copy),
                c_enc.as_millis(),
                c_tree.as_millis(),
                c_dec.as_millis(),
                c_reb.as_millis(),
                envelope,
                envelope as f64 / len as f64,
                envelope as f64 / len as f64 * f64::from(k),
                ms(t_rs_enc),
                mbps(len, t_rs_enc),
                ms(t_rs_dec),
                mbps(len, t_rs_dec),
            );
        }
    }
}
