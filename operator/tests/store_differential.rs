//! The two store backends answer alike (issue #21): random sequences of batches, produced
//! blocks (some whose encoding fails), deposit blocks, commitments and availability rows are
//! applied to a redb store and to a PostgreSQL store, and after every step every read the
//! operator makes — `load`, `block`, `wire`, `wire_chunk`, `inclusion`, `tx_location`,
//! `utxo`, `utxos_page`, `head`, the DA rows, meta — is compared.
//!
//! Seeded: the seed is printed; `PLASMA_STORE_SEED=<seed>` replays a run,
//! `PLASMA_STORE_STEPS=<n>` makes it longer (default 25 steps, ~15 s in a debug build).

#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use plasma_operator::{
    Batch, BlockInfo, BlockRecord, DaHeaderRow, DaReceiptRow, EncodedBlock, PgOptions, Store,
    StoreError,
};
use plasma_spec::{Output, SignedTransaction, Transaction, UtxoPos};
use plasma_test_postgres::TempPostgres;
use std::collections::BTreeSet;

/// splitmix64: small, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const META_KEYS: [&str; 5] =
    ["next_child_block", "deposit_cursor", "exit_cursor", "da_quorum_missed", "deposits_final"];
/// Owners are few, so pages have several outputs each.
const OWNERS: u8 = 4;

/// What the test knows was written, to aim reads and spends at it.
#[derive(Default)]
struct Known {
    utxos: BTreeSet<UtxoPos>,
    blocks: BTreeSet<u64>,
    hashes: Vec<B256>,
    next_child: u64,
    next_deposit: u64,
    next_seq: u64,
    mempool: BTreeSet<u64>,
}

fn output(rng: &mut Rng) -> Output {
    Output::new(
        Address::repeat_byte(1 + rng.below(u64::from(OWNERS)) as u8),
        if rng.chance(20) { Address::repeat_byte(0xee) } else { Address::ZERO },
        U256::from(rng.below(1_000_000)),
    )
}

fn payment_block(rng: &mut Rng, blknum: u64, n: usize) -> BlockRecord {
    let txs: Vec<Bytes> = (0..n)
        .map(|_| {
            let tx = Transaction::payment(
                &[UtxoPos::new(1 + rng.below(50), rng.below(100) as u16, 0).unwrap()],
                vec![output(rng)],
                B256::from(U256::from(rng.next())),
            );
            SignedTransaction::new(tx, vec![vec![7u8; 65].into()]).encode().into()
        })
        .collect();
    let leaves = plasma_operator::leaves_of(blknum, &txs).unwrap();
    let root = plasma_spec::BlockTree::from_leaves(&leaves).unwrap().root();
    BlockRecord { blknum, root, txs, l1_timestamp: None, l1_tx: None }
}

fn deposit_block(rng: &mut Rng, blknum: u64) -> BlockRecord {
    let out = output(rng);
    let tx = Transaction::deposit(out.owner, out.token, out.amount).encode();
    BlockRecord {
        blknum,
        root: plasma_spec::deposit_block_root(&tx),
        txs: vec![tx.into()],
        l1_timestamp: Some(1_700_000_000 + rng.below(1000)),
        l1_tx: None,
    }
}

/// A batch of random effects: spends of known (and unknown) outputs, new outputs, index
/// entries, mempool changes, meta, sometimes the exiting outputs or a commitment.
fn effects(rng: &mut Rng, known: &mut Known, created_in: u64) -> Batch {
    let mut batch = Batch::default();
    for _ in 0..rng.below(6) {
        if let Some(p) = known.utxos.iter().nth(rng.below(known.utxos.len() as u64) as usize) {
            let p = *p;
            known.utxos.remove(&p);
            batch.spent.push(p);
        }
    }
    if rng.chance(20) {
        batch.spent.push(UtxoPos::new(999_999, 1, 1).unwrap());
    }
    for i in 0..rng.below(12) {
        let p = UtxoPos::new(created_in, rng.below(500) as u16, (i % 4) as u8).unwrap();
        known.utxos.insert(p);
        batch.created.push((p, output(rng)));
    }
    for _ in 0..rng.below(4) {
        let h = B256::from(U256::from(rng.next()));
        known.hashes.push(h);
        batch.txs.push((h, created_in, rng.below(1000) as u32));
    }
    for _ in 0..rng.below(4) {
        let seq = known.next_seq;
        known.next_seq += 1;
        known.mempool.insert(seq);
        batch.mempool_add.push((seq, (0..rng.below(40)).map(|_| rng.next() as u8).collect()));
    }
    for _ in 0..rng.below(3) {
        if let Some(s) = known.mempool.iter().nth(rng.below(known.mempool.len() as u64) as usize) {
            let s = *s;
            known.mempool.remove(&s);
            batch.mempool_remove.push(s);
        }
    }
    if rng.chance(10) {
        batch.mempool_remove.push(10_000_000);
    }
    for _ in 0..rng.below(3) {
        batch.meta.push((META_KEYS[rng.below(5) as usize], rng.next()));
    }
    if rng.chance(15) {
        let mut exiting = plasma_spec::ExitingOutputs::new();
        if let Some(p) = known.utxos.iter().next() {
            exiting.standard_exit_started(*p, rng.below(1000));
        }
        batch.exiting = Some(exiting);
    }
    batch
}

/// A commitment recorded on a known block's info row (as `mark_committed` does).
fn commitment(rng: &mut Rng, known: &Known, store: &Store) -> Option<BlockInfo> {
    let b = *known.blocks.iter().nth(rng.below(known.blocks.len() as u64) as usize)?;
    let mut info = store.block_info(b).unwrap()?;
    info.l1_timestamp = Some(1_800_000_000 + rng.below(1000));
    info.l1_tx = rng.chance(50).then(|| B256::from(U256::from(rng.next())));
    Some(info)
}

/// Every read, labelled, as text: what the two backends must agree on.
fn reads(store: &Store, known: &Known, rng: &mut Rng) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut read = |label: String, value: String| out.push((label, value));
    let loaded = store.load().unwrap();
    read("load.utxos".into(), format!("{:?}", loaded.utxos));
    read("load.mempool".into(), format!("{:?}", loaded.mempool));
    read(
        "load.cursors".into(),
        format!(
            "{:?} {:?} {:?} {:?}",
            loaded.next_child_block, loaded.deposit_cursor, loaded.exit_cursor, loaded.uncommitted
        ),
    );
    read("load.exiting".into(), format!("{:?}", loaded.exiting));
    read("head".into(), format!("{:?}", store.head()));
    for key in META_KEYS {
        read(format!("meta {key}"), format!("{:?}", store.meta(key)));
    }
    for &b in known.blocks.iter().chain([&7_777_000]) {
        read(format!("block_info {b}"), format!("{:?}", store.block_info(b)));
        read(format!("block {b}"), format!("{:?}", store.block(b)));
        let wire = store.wire(b).unwrap();
        read(format!("wire {b}"), format!("{:?}", wire.as_ref().map(|(i, w)| (i, keccak256(w)))));
        let len = wire.as_ref().map_or(10, |(_, w)| w.len() as u64);
        for offset in [0, rng.below(len + 1), len, len + 5] {
            read(
                format!("wire_chunk {b} {offset}"),
                format!("{:?}", store.wire_chunk(b, offset).map(|c| keccak256(&c))),
            );
        }
        let count = wire.as_ref().map_or(1, |(i, _)| u64::from(i.tx_count));
        for index in [0, rng.below(count), count.saturating_sub(1), count] {
            read(
                format!("inclusion {b} {index}"),
                format!("{:?}", store.inclusion(b, index as u32)),
            );
        }
        read(format!("da_header {b}"), format!("{:?}", store.da_header(b)));
        read(format!("da_receipts {b}"), format!("{:?}", store.da_receipts(b)));
    }
    read("da_pending".into(), format!("{:?}", store.da_pending()));
    for h in known.hashes.iter().chain([&B256::ZERO]) {
        read(format!("tx_location {h}"), format!("{:?}", store.tx_location(h)));
    }
    // All at once, unknown hashes among them, in an order of their own.
    let mut asked: Vec<B256> = known.hashes.iter().rev().copied().collect();
    asked.insert(asked.len() / 2, B256::ZERO);
    asked.push(B256::repeat_byte(0xab));
    let at_once = store.tx_locations(&asked).unwrap();
    let one_by_one: Vec<_> = asked.iter().map(|h| store.tx_location(h).unwrap()).collect();
    assert_eq!(at_once, one_by_one, "tx_locations is tx_location of each, in order");
    assert!(at_once.iter().filter(|a| a.is_some()).count() == known.hashes.len());
    read("tx_locations".into(), format!("{at_once:?}"));
    read("tx_locations of none".into(), format!("{:?}", store.tx_locations(&[])));
    let probes: Vec<UtxoPos> = known
        .utxos
        .iter()
        .step_by(3)
        .copied()
        .chain([UtxoPos::new(999_999, 1, 1).unwrap()])
        .collect();
    for p in probes {
        read(format!("utxo {p:?}"), format!("{:?}", store.utxo(p)));
    }
    for owner in 1..=OWNERS + 1 {
        let owner = Address::repeat_byte(owner);
        let limit = 1 + rng.below(7) as usize;
        let mut after = None;
        for page in 0.. {
            let got = store.utxos_page(owner, after, limit).unwrap();
            read(format!("utxos_page {owner} #{page} limit {limit}"), format!("{got:?}"));
            after = got.0.last().map(|(p, _)| *p);
            if !got.1 || page > 200 {
                break;
            }
        }
    }
    out
}

#[test]
fn redb_and_postgres_answer_every_read_alike() {
    let seed =
        std::env::var("PLASMA_STORE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
                as u64
        });
    let steps: usize =
        std::env::var("PLASMA_STORE_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(25);
    println!("store differential: PLASMA_STORE_SEED={seed} PLASMA_STORE_STEPS={steps}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let redb = Store::open(&dir.path().join("state.redb")).unwrap();
    let pg_server = TempPostgres::start().unwrap();
    let pg = Store::open_postgres(pg_server.url(), &PgOptions::pool(3)).unwrap();
    pg_server
        .psql("INSERT INTO plasma_leader VALUES (1, 1, 't', 'http://t', now() + interval '1 hour')")
        .unwrap();
    pg.set_fence(1);
    let stores = [&redb, &pg];
    let mut known = Known { next_child: 1000, next_deposit: 1, ..Known::default() };

    for step in 0..steps {
        let kind = rng.below(100);
        let what: String;
        if kind < 35 {
            let b = known.next_child;
            let batch = effects(&mut rng, &mut known, b.max(1));
            what = format!("batch of {} spent, {} created", batch.spent.len(), batch.created.len());
            for s in stores {
                s.apply(&batch).unwrap();
            }
        } else if kind < 65 {
            // A produced block with its effects; sometimes its encoding fails (nothing lands).
            let blknum = known.next_child;
            let n = if rng.chance(8) { 2_000 + rng.below(2_000) } else { 1 + rng.below(300) };
            let record = payment_block(&mut rng, blknum, n as usize);
            let fail = rng.chance(15);
            let mut kept = Known {
                utxos: known.utxos.clone(),
                mempool: known.mempool.clone(),
                next_seq: known.next_seq,
                ..Known::default()
            };
            let mut batch = effects(&mut rng, &mut kept, blknum);
            batch.meta.push(("next_child_block", blknum + 1000));
            what = format!("block {blknum} of {n} txs (encoding fails: {fail})");
            for s in stores {
                let r = s.apply_with_block(&batch, || {
                    if fail {
                        Err(StoreError::Corrupt { what: "block", reason: "test".into() })
                    } else {
                        EncodedBlock::from_record(&record)
                    }
                });
                assert_eq!(r.is_ok(), !fail, "step {step} seed {seed}: {r:?}");
            }
            if !fail {
                known.utxos = kept.utxos;
                known.mempool = kept.mempool;
                known.next_seq = kept.next_seq;
                known.hashes.extend(kept.hashes);
                known.blocks.insert(blknum);
                known.next_child += 1000;
                known.next_deposit = 1;
            }
        } else if kind < 75 {
            let blknum = known.next_child - 1000 + known.next_deposit;
            known.next_deposit += 1;
            let record = deposit_block(&mut rng, blknum);
            let pos = UtxoPos::new(blknum, 0, 0).unwrap();
            let out = Output::new(Address::repeat_byte(2), Address::ZERO, U256::from(blknum));
            known.utxos.insert(pos);
            known.blocks.insert(blknum);
            let batch = Batch {
                blocks: vec![EncodedBlock::from_record(&record).unwrap()],
                created: vec![(pos, out)],
                meta: vec![("deposit_cursor", blknum)],
                ..Batch::default()
            };
            what = format!("deposit block {blknum}");
            for s in stores {
                s.apply(&batch).unwrap();
            }
        } else if kind < 85 {
            let info = commitment(&mut rng, &known, &redb);
            what = format!("commitment {info:?}");
            let batch = Batch { block_infos: info.into_iter().collect(), ..Batch::default() };
            for s in stores {
                s.apply(&batch).unwrap();
            }
        } else {
            let Some(&b) = known.blocks.iter().nth(rng.below(known.blocks.len() as u64) as usize)
            else {
                continue;
            };
            let header = DaHeaderRow {
                blknum: b,
                tx_root: B256::repeat_byte(1),
                data_len: 100,
                k: 1 + rng.below(2) as u16,
                n: 3,
                chunk_root: B256::repeat_byte(2),
                signature: vec![5; 65],
            };
            let receipt = DaReceiptRow {
                index: rng.below(3) as u16,
                tower: Address::repeat_byte(9),
                signature: vec![rng.next() as u8; 65],
            };
            let op = rng.below(3);
            what = format!("availability op {op} on {b}");
            for s in stores {
                match op {
                    0 => drop(s.put_da_header(&header).unwrap()),
                    1 => s.put_da_receipt(b, &receipt).unwrap(),
                    _ => s.clear_da_pending(b).unwrap(),
                }
            }
        }
        let probe = rng.next();
        let a = reads(&redb, &known, &mut Rng(probe));
        let b = reads(&pg, &known, &mut Rng(probe));
        assert_eq!(a.len(), b.len(), "step {step} ({what}), seed {seed}: read counts differ");
        for ((label, x), (_, y)) in a.iter().zip(&b) {
            assert!(
                x == y,
                "step {step} ({what}), PLASMA_STORE_SEED={seed}: `{label}` differs\n redb: {x}\n   pg: {y}"
            );
        }
    }
}
