//! Issue #19 (G2): a full block built, rooted and persisted. A mempool of 65,535 valid signed
//! 1-in-2-out payments over 200 owners, accepted through `Chain::submit` on a real store, then
//! one `Chain::produce_block` timed (ledger checks, leaves, the tree, the wire form and the
//! indexes, the store's write with its fsync, the in-memory update), with its stages. The goal
//! is < 250 ms for the whole call.
//!
//! Each run opens a fresh store with the same genesis outputs and submits the same signed
//! transactions again, so the runs measure the same block; the table gives the median and the
//! best run of each stage.
//!
//! Run: `cargo bench -p plasma-operator --bench produce`. Short: `PLASMA_PRODUCE_TXS=8192`
//! (payments per block, default 65,535) and `PLASMA_PRODUCE_RUNS=1` (default 5).

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

use alloy::primitives::{Address, B256, U256, keccak256};
use plasma_operator::{Batch, Chain, ProduceStages, Store};
use plasma_spec::{
    Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos, leaf_hash,
};
use std::time::{Duration, Instant};

/// The daemon's allocator (`main.rs`): what is measured is what the daemon runs on.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const OWNERS: usize = 200;
const GENESIS: u64 = 1000;
const AMOUNT: u64 = 1_000_000;

fn owner(i: usize) -> Signer {
    Signer::from_bytes(&keccak256(format!("produce owner {i}"))).unwrap()
}

fn genesis_pos(i: usize) -> UtxoPos {
    UtxoPos::new(GENESIS, i as u16, 0).unwrap()
}

/// Payment `i`: spends genesis output `i` and pays a third to another owner, half back to its
/// owner (the rest is the fee), signed on every core.
fn payments(owners: &[Signer], domain: &SigningDomain, count: usize) -> Vec<Vec<u8>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = count.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t * per..((t + 1) * per).min(count))
                        .map(|i| {
                            let from = &owners[i % OWNERS];
                            let to = owners[(i * 7 + 1) % OWNERS].address();
                            let amount = U256::from(AMOUNT + i as u64);
                            let tx = Transaction::payment(
                                &[genesis_pos(i)],
                                vec![
                                    Output::new(to, Address::ZERO, amount / U256::from(3)),
                                    Output::new(
                                        from.address(),
                                        Address::ZERO,
                                        amount / U256::from(2),
                                    ),
                                ],
                                B256::ZERO,
                            );
                            let sig = from.sign_tx(domain, &tx);
                            SignedTransaction::new(tx, vec![sig]).encode()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    })
}

/// A stage of the table: its name and how to read it from a run.
type Row<'a> = (&'a str, &'a dyn Fn(&Run) -> Duration);

struct Run {
    total: Duration,
    stages: ProduceStages,
    wire_len: u64,
}

fn run(owners: &[Signer], domain: &SigningDomain, txs: &[Vec<u8>]) -> Run {
    let n = txs.len();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.redb");
    {
        let store = Store::open(&path).unwrap();
        let created: Vec<(UtxoPos, Output)> = (0..n)
            .map(|i| {
                let owner = owners[i % OWNERS].address();
                (genesis_pos(i), Output::new(owner, Address::ZERO, U256::from(AMOUNT + i as u64)))
            })
            .collect();
        let batch =
            Batch { created, meta: vec![("next_child_block", 2 * GENESIS)], ..Batch::default() };
        store.apply(&batch).unwrap();
    }
    let chain =
        Chain::open(Store::open(&path).unwrap(), domain.clone(), Address::repeat_byte(0xfe), n)
            .unwrap();
    for batch in txs.chunks(4_096) {
        if let Some(e) = chain.submit(batch).into_iter().find_map(Result::err) {
            panic!("submit: {e}");
        }
    }
    assert_eq!(chain.mempool_len(), n);

    let t = Instant::now();
    let (record, stages) =
        chain.produce_block_staged(plasma_spec::MAX_TXS_PER_BLOCK).unwrap().unwrap();
    let total = t.elapsed();

    // What was made is the block: every payment and the fee transaction, under the root the
    // spec's tree gives, stored and served.
    assert_eq!((record.blknum, record.txs.len()), (2 * GENESIS, n + 1));
    assert!(record.txs[..n].iter().zip(txs).all(|(a, b)| a.as_ref() == b.as_slice()));
    let leaves: Vec<B256> = record
        .txs
        .iter()
        .map(|t| leaf_hash(&SignedTransaction::decode(t).unwrap().transaction.encode()))
        .collect();
    assert_eq!(record.root, plasma_spec::BlockTree::from_leaves(&leaves).unwrap().root());
    assert_eq!(chain.mempool_len(), 0);
    let info = chain.block_info(record.blknum).unwrap().unwrap();
    assert_eq!((info.root, info.tx_count as usize), (record.root, n + 1));
    let mut wire = Vec::new();
    while (wire.len() as u64) < info.wire_len {
        wire.extend_from_slice(&chain.wire_chunk(record.blknum, wire.len() as u64).unwrap());
    }
    let (header, decoded) = plasma_spec::wire::decode_block(&wire).unwrap();
    assert_eq!((header.root, decoded), (record.root, record.txs));
    Run { total, stages, wire_len: info.wire_len }
}

fn main() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let n = env("PLASMA_PRODUCE_TXS")
        .unwrap_or(plasma_spec::MAX_TXS_PER_BLOCK - 1)
        .clamp(1, plasma_spec::MAX_TXS_PER_BLOCK - 1);
    let runs = env("PLASMA_PRODUCE_RUNS").unwrap_or(5).max(1);
    let domain = SigningDomain::new(31337, Address::repeat_byte(0xaa));
    let owners: Vec<Signer> = (0..OWNERS).map(owner).collect();
    let t = Instant::now();
    let txs = payments(&owners, &domain, n);
    let signing = t.elapsed();

    let results: Vec<Run> = (0..runs).map(|_| run(&owners, &domain, &txs)).collect();
    let stat = |f: &dyn Fn(&Run) -> Duration| {
        let mut v: Vec<Duration> = results.iter().map(f).collect();
        v.sort_unstable();
        (v[v.len() / 2], v[0])
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "Chain::produce_block: {n} payments (1 in, 2 out) and the fee transaction, {threads} cores, {runs} runs ({:.1} s to sign); wire form {:.2} MB",
        signing.as_secs_f64(),
        results[0].wire_len as f64 / 1e6
    );
    println!("| stage | median ms | best ms |");
    println!("|---|---:|---:|");
    let rows: [Row<'_>; 9] = [
        ("state lock", &|r| r.stages.lock),
        ("ledger checks (UTXO set, fee)", &|r| r.stages.ledger),
        ("leaves, signed bytes, tx index", &|r| r.stages.leaves),
        ("Merkle tree and proof tiles", &|r| r.stages.tree),
        ("encode: wire form and tx groups", &|r| r.stages.encode),
        ("store: effects rows (beside tree + encode)", &|r| r.stages.write),
        ("store: block rows + commit (fsync)", &|r| r.stages.commit),
        ("in-memory update", &|r| r.stages.memory),
        ("**produce_block, total**", &|r| r.total),
    ];
    for (name, f) in rows {
        let (median, best) = stat(f);
        println!("| {name} | {:.1} | {:.1} |", ms(median), ms(best));
    }
}
