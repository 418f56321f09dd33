//! Catch-up: how fast the watcher re-verifies blocks (decode, signatures, ledger) beside how fast
//! the operator produces them (accept + validate + persist + build), in one run on the same
//! machine, with the signature-recovery ceiling of the same run.
//!
//! The watcher's signatures: owners it has seen before are batch-verified against their cached
//! public keys (SIG-5); the first signature of each new owner is recovered. The same blocks are
//! also re-verified by recovery alone (`validate_parallel`, what the watcher did before SIG-5).
//!
//! Run: `cargo bench -p plasma-watcher --bench catchup`
//! (`PLASMA_CATCHUP_TXS=5000` for less, `PLASMA_CATCHUP_BLOCKS` blocks, `PLASMA_CATCHUP_OWNERS`,
//! `PLASMA_CATCHUP_WARMUP=0` to time a cold heap).

#![allow(clippy::unwrap_used, missing_docs)]

use alloy::primitives::{Address, B256, U256, keccak256};
use plasma_operator::{Batch, Chain, Store};
use plasma_spec::{
    BlockDiff, Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos,
    recover_signer,
};
use plasma_watcher::{ChainView, DecodedBlock, validate_parallel};
use std::time::Instant;

#[path = "../../operator/benches/common/cpu.rs"]
mod cpu;
use cpu::process_cpu;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let n = env("PLASMA_CATCHUP_TXS", 20_000);
    let blocks = env("PLASMA_CATCHUP_BLOCKS", 2).max(1);
    let owners_n = env("PLASMA_CATCHUP_OWNERS", 100).max(1);
    let domain = SigningDomain::new(31337, Address::repeat_byte(0x5f));
    let owners: Vec<Signer> =
        (0..owners_n).map(|i| Signer::from_bytes(&keccak256(i.to_be_bytes())).unwrap()).collect();
    let owner = |i: u64| &owners[(i % owners_n) as usize];
    // n deposits (as deposit outputs), one payment spending each.
    let deposits: Vec<(UtxoPos, Output)> = (0..n)
        .map(|i| {
            let blknum = (i / 999) * 1000 + i % 999 + 1;
            (
                UtxoPos::new(blknum, 0, 0).unwrap(),
                Output::new(owner(i).address(), Address::ZERO, U256::from(1_000)),
            )
        })
        .collect();
    let txs: Vec<SignedTransaction> = deposits
        .iter()
        .enumerate()
        .map(|(i, (pos, _))| {
            let o = owner(i as u64);
            let tx = Transaction::payment(
                &[*pos],
                vec![Output::new(o.address(), Address::ZERO, U256::from(999))],
                B256::ZERO,
            );
            SignedTransaction::new(tx.clone(), vec![o.sign_tx(&domain, &tx)])
        })
        .collect();
    let raw: Vec<Vec<u8>> = txs.iter().map(SignedTransaction::encode).collect();

    // The recovery ceiling of this run: every signature recovered, 1 thread and 2.
    let sigs: Vec<(B256, &[u8])> =
        txs.iter().map(|t| (domain.tx_digest(&t.transaction), t.signatures[0].as_ref())).collect();
    let ceiling = |threads: usize| {
        let start = Instant::now();
        std::thread::scope(|s| {
            for part in sigs.chunks(sigs.len().div_ceil(threads)) {
                s.spawn(move || {
                    for (d, sig) in part {
                        std::hint::black_box(recover_signer(*d, sig, 0).unwrap());
                    }
                });
            }
        });
        sigs.len() as f64 / start.elapsed().as_secs_f64()
    };
    let (ceiling1, ceiling2) = (ceiling(1), ceiling(2));

    // Operator: accept (recover, validate, persist) and produce the blocks.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("operator.redb")).unwrap();
    store.apply(&Batch { created: deposits.clone(), meta: vec![], ..Batch::default() }).unwrap();
    let chain = Chain::open(store, domain.clone(), Address::repeat_byte(1), 1_000_000).unwrap();
    let per_block = n.div_ceil(blocks) as usize;
    let start = Instant::now();
    for group in raw.chunks(4_096) {
        for r in chain.submit(group) {
            r.unwrap();
        }
    }
    let mut produced = Vec::new();
    let mut in_blocks = 0;
    while in_blocks < n as usize {
        // The fee transaction comes on top of the payments.
        if let Some(b) =
            chain.produce_block(per_block.min(plasma_spec::MAX_TXS_PER_BLOCK - 1)).unwrap()
        {
            in_blocks += b.txs.iter().filter(|t| t.len() > 200).count();
            produced.push(b);
        }
    }
    let produce = start.elapsed();
    let total_txs: usize = produced.iter().map(|b| b.txs.len()).sum();

    let fresh = || {
        let mut view = ChainView::new(domain.clone());
        view.utxos.apply(&BlockDiff { created: deposits.clone(), ..BlockDiff::default() });
        view
    };
    // Watcher, as it runs: the download stage decodes and hashes each block and prepares its
    // signatures (digests, parsed `R`) on the blocking pool while the watcher validates and
    // records the blocks before it, in order (download.rs: `finish_block_for` with the domain,
    // a few blocks ahead); owners' keys learnt from their first signature.
    // One untimed pass first (`PLASMA_CATCHUP_WARMUP=0` to skip it): whichever timed pass ran
    // first paid for the heap's first touch (page faults), which favoured the second by ~10 %
    // on two blocks; a running watcher's heap is warm after its first block.
    if env("PLASMA_CATCHUP_WARMUP", 1) != 0 {
        let mut warm = fresh();
        for b in &produced {
            let block = DecodedBlock::decode_prepared(b.txs.clone(), &domain);
            warm.apply_decoded_block(b.blknum, block, 0).unwrap();
        }
    }
    let mut view = fresh();
    let (mut decode, mut apply) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    let cpu_before = process_cpu();
    let start = Instant::now();
    std::thread::scope(|s| {
        let (ready, decoded) = std::sync::mpsc::sync_channel(2);
        let (produced, domain) = (&produced, &domain);
        s.spawn(move || {
            for b in produced {
                let at = Instant::now();
                let block = DecodedBlock::decode_prepared(b.txs.clone(), domain);
                if ready.send((b.blknum, block, at.elapsed())).is_err() {
                    return;
                }
            }
        });
        for (blknum, block, took) in decoded {
            decode += took;
            let at = Instant::now();
            view.apply_decoded_block(blknum, block, 0).unwrap();
            apply += at.elapsed();
        }
    });
    let verify = start.elapsed();
    let verify_cpu = process_cpu().saturating_sub(cpu_before);
    let stages = view.timings();
    // The same work one stage after the other (decode, then apply, block by block): how much the
    // pipeline's overlap is worth.
    let mut serial_view = fresh();
    let start = Instant::now();
    for b in &produced {
        let block = DecodedBlock::decode_prepared(b.txs.clone(), &domain);
        serial_view.apply_decoded_block(b.blknum, block, 0).unwrap();
    }
    let serial = start.elapsed();
    // The same blocks by recovery alone (the watcher before SIG-5), without recording them.
    let mut utxos = fresh().utxos;
    let start = Instant::now();
    for b in &produced {
        let decoded = DecodedBlock::decode(b.txs.clone());
        let txs = decoded.txs.unwrap();
        let diff = validate_parallel(&utxos, b.blknum, &txs, &domain).unwrap();
        utxos.apply(&diff);
    }
    let recovery_only = start.elapsed();

    let produce_rate = n as f64 / produce.as_secs_f64();
    let verify_rate = total_txs as f64 / verify.as_secs_f64();
    let recovery_rate = total_txs as f64 / recovery_only.as_secs_f64();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!("| Measure | Result |");
    println!("|---|---:|");
    println!(
        "| blocks | {} of {} transactions ({owners_n} owners) |",
        produced.len(),
        produced.iter().map(|b| b.txs.len().to_string()).collect::<Vec<_>>().join(", ")
    );
    println!("| recovery ceiling, 1 thread | {ceiling1:.0} /s |");
    println!("| recovery ceiling, 2 threads | {ceiling2:.0} /s |");
    println!(
        "| operator: accept + validate + persist + build | {produce_rate:.0} tx/s ({:.0} ms) |",
        ms(produce)
    );
    println!(
        "| watcher: decode + signatures (batch, cached keys) + ledger + record | {verify_rate:.0} tx/s ({:.0} ms, {:.1} blocks/s) |",
        ms(verify),
        produced.len() as f64 / verify.as_secs_f64()
    );
    println!(
        "| the same, decode then apply (no overlap) | {:.0} tx/s ({:.0} ms) |",
        total_txs as f64 / serial.as_secs_f64(),
        ms(serial)
    );
    println!(
        "| watcher by recovery alone (before SIG-5), no record | {recovery_rate:.0} tx/s ({:.0} ms) |",
        ms(recovery_only)
    );
    println!(
        "| cores busy as it runs (this process's CPU over the wall time), of {} | {:.2} |",
        std::thread::available_parallelism().map_or(1, |c| c.get()),
        verify_cpu.as_secs_f64() / verify.as_secs_f64()
    );
    println!("| watcher / operator in-process | {:.1}x |", verify_rate / produce_rate);
    println!("| watcher / 2-thread recovery ceiling | {:.2}x |", verify_rate / ceiling2);
    println!(
        "| watcher / operator at 0.5 x ceiling (the G1 goal) | {:.1}x |",
        verify_rate / (0.5 * ceiling2)
    );
    println!("| batch / recovery alone | {:.2}x |", verify_rate / recovery_rate);
    println!();
    println!(
        "| Watcher stage (pipelined: the download stage overlaps the validation of earlier \
         blocks) | Time | Share of the total | µs per tx |"
    );
    println!("|---|---:|---:|---:|");
    let stage = |name: &str, d: std::time::Duration| {
        println!(
            "| {name} | {:.1} ms | {:.0} % | {:.2} |",
            ms(d),
            100.0 * d.as_secs_f64() / verify.as_secs_f64(),
            d.as_secs_f64() * 1e6 / total_txs as f64
        );
    };
    stage(
        "download stage: decode, leaf and tx hashes, EIP-712 digests, signature parsing \
         (DecodedBlock::decode_prepared)",
        decode,
    );
    stage("validation: digests and parsing left to do (none when prepared)", stages.prepare);
    stage("validation: signatures (batch, cached keys; recovery of new owners)", stages.signatures);
    stage("validation: ledger (spec BlockBuilder)", stages.ledger);
    stage("validation: record (history, journal, UTXO set)", stages.record);
    stage("validation total (ChainView::apply_decoded_block: the above, moves, drops)", apply);
    stage("total, pipelined (wall clock)", verify);

    // What each piece of the per-transaction work costs on one core (the first block's
    // payments), to say where the download stage's time goes.
    let (sample, decoded): (Vec<&alloy::primitives::Bytes>, Vec<SignedTransaction>) = produced[0]
        .txs
        .iter()
        .map(|b| (b, SignedTransaction::decode(b).unwrap()))
        .filter(|(_, t)| !t.signatures.is_empty())
        .unzip();
    let digests: Vec<B256> = decoded.iter().map(|t| domain.tx_digest(&t.transaction)).collect();
    let one = |name: &str, f: &dyn Fn(usize)| {
        let start = Instant::now();
        for i in 0..sample.len() {
            f(i);
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / sample.len() as f64;
        println!("| {name} | {us:.2} |");
    };
    println!();
    println!("| One core, per payment | µs |");
    println!("|---|---:|");
    one("SignedTransaction::decode (ABI decode, canonical re-encoding check)", &|i| {
        std::hint::black_box(SignedTransaction::decode(sample[i]).ok());
    });
    one("leaf hash + tx hash (keccak over the signed bytes, their size)", &|i| {
        std::hint::black_box(plasma_spec::leaf_hash(sample[i]));
        std::hint::black_box(keccak256(sample[i]));
    });
    one("EIP-712 digest (SigningDomain::tx_digest)", &|i| {
        std::hint::black_box(domain.tx_digest(&decoded[i].transaction));
    });
    one("signature parse (SIG-3 form, R decompressed: ParsedSignature::new)", &|i| {
        std::hint::black_box(plasma_spec::batch_verify::ParsedSignature::new(
            digests[i],
            &decoded[i].signatures[0],
        ));
    });
}
