//! What the store benches share (`produce.rs`, `store_backends.rs`, `restart.rs`): a fresh store
//! on either backend, the signed payments of a full block, a chain holding the outputs they
//! spend, one timed `Chain::produce_block` with the checks that it made the block, and a large
//! UTXO set written for a restart. One copy, so the backends are measured on the same set-up.
//!
//! Each bench uses a part of it; the rest would be dead code in that bench's crate.

#![allow(dead_code)]

use alloy::primitives::{Address, B256, U256, keccak256};
use plasma_operator::{Batch, Chain, PgOptions, ProduceStages, Store};
use plasma_spec::{
    Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos, leaf_hash,
};
use plasma_test_postgres::TempPostgres;
use std::time::{Duration, Instant};

pub(crate) const OWNERS: usize = 200;
pub(crate) const GENESIS: u64 = 1000;
pub(crate) const AMOUNT: u64 = 1_000_000;

pub(crate) fn owner(i: usize) -> Signer {
    Signer::from_bytes(&keccak256(format!("produce owner {i}"))).unwrap()
}

pub(crate) fn owners() -> Vec<Signer> {
    (0..OWNERS).map(owner).collect()
}

pub(crate) fn genesis_pos(i: usize) -> UtxoPos {
    UtxoPos::new(GENESIS, i as u16, 0).unwrap()
}

/// The store backends, as `PLASMA_*_STORE` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// One embedded file.
    Redb,
    /// A local server started for the run by `plasma-test-postgres`: `initdb` defaults with
    /// fsync and `synchronous_commit = on`, on loopback, the database on the same disk.
    Postgres,
}

impl Backend {
    pub(crate) const BOTH: [Self; 2] = [Self::Redb, Self::Postgres];

    /// `redb` (also when unset) or `postgres`, from the environment variable `var`.
    pub(crate) fn from_env(var: &str) -> Self {
        match std::env::var(var).as_deref() {
            Ok("postgres" | "postgresql") => Self::Postgres,
            Ok("redb" | "") | Err(_) => Self::Redb,
            Ok(other) => panic!("{var}={other}: expected redb or postgres"),
        }
    }

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Redb => "redb",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// Where a run's store lives: a fresh redb file or a fresh PostgreSQL server (its leader row
/// made as an election would, epoch 1). [`Fresh::open`] again is a restart.
pub(crate) enum Fresh {
    Redb(tempfile::TempDir),
    Postgres(TempPostgres),
}

impl Fresh {
    pub(crate) fn new(backend: Backend) -> Self {
        match backend {
            Backend::Redb => Self::Redb(tempfile::tempdir().unwrap()),
            Backend::Postgres => {
                let pg = TempPostgres::start().unwrap();
                drop(Store::open_postgres(pg.url(), &PgOptions::default()).unwrap());
                pg.psql(
                    "INSERT INTO plasma_leader VALUES (1, 1, 'bench', 'http://bench', \
                     now() + interval '1 day')",
                )
                .unwrap();
                Self::Postgres(pg)
            }
        }
    }

    pub(crate) fn open(&self) -> Store {
        match self {
            Self::Redb(dir) => Store::open(&dir.path().join("operator.redb")).unwrap(),
            Self::Postgres(pg) => {
                let store = Store::open_postgres(pg.url(), &PgOptions::default()).unwrap();
                store.set_fence(1);
                store
            }
        }
    }

    /// The database's size on disk, in MB.
    pub(crate) fn size_mb(&self) -> f64 {
        match self {
            Self::Redb(dir) => {
                std::fs::metadata(dir.path().join("operator.redb")).unwrap().len() as f64 / 1e6
            }
            Self::Postgres(pg) => {
                let bytes: f64 = pg
                    .psql("SELECT pg_database_size(current_database())")
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                bytes / 1e6
            }
        }
    }
}

/// Payment `i`: spends genesis output `i` and pays a third to another owner, half back to its
/// owner (the rest is the fee), signed on every core.
pub(crate) fn payments(owners: &[Signer], domain: &SigningDomain, count: usize) -> Vec<Vec<u8>> {
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

/// A chain on `fresh` holding the `n` genesis outputs the payments spend (written in one
/// batch, then the store opened again as a restarted operator would).
pub(crate) fn genesis_chain(
    fresh: &Fresh,
    owners: &[Signer],
    domain: &SigningDomain,
    n: usize,
) -> Chain {
    {
        let store = fresh.open();
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
    Chain::open(fresh.open(), domain.clone(), Address::repeat_byte(0xfe), n.max(1)).unwrap()
}

/// One produced block: the whole call, its stages, and its wire form's length.
pub(crate) struct Produced {
    pub(crate) total: Duration,
    pub(crate) stages: ProduceStages,
    /// From `produce_block`'s return until the block's effects were written behind it.
    pub(crate) behind: Duration,
    pub(crate) wire_len: u64,
}

/// On a fresh store of `backend`: the genesis outputs, `txs` submitted (4,096 a call), then one
/// `Chain::produce_block` timed. What was made is checked to be the block: every payment and
/// the fee transaction, under the root the spec's tree gives, stored and served back whole.
pub(crate) fn produce(
    backend: Backend,
    owners: &[Signer],
    domain: &SigningDomain,
    txs: &[Vec<u8>],
) -> Produced {
    let n = txs.len();
    let fresh = Fresh::new(backend);
    let chain = genesis_chain(&fresh, owners, domain, n);
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
    // The block's effects on the tables, written behind it (`chain::Applier`): not on the
    // block's path, but the next chain write waits for them.
    chain.settle_effects().unwrap();
    let behind = t.elapsed() - total;

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
    Produced { total, stages, behind, wire_len: info.wire_len }
}

/// Writes `n` unspent outputs to `store`, 100,000 a commit: 5 outputs per transaction, 65,536
/// transactions per block, over 10,000 owners.
pub(crate) fn write_utxos(store: &Store, n: u64) {
    let mut created = Vec::with_capacity(100_000);
    for i in 0..n {
        let blknum = 1000 * (1 + i / (5 * 65_536));
        let pos = UtxoPos::new(blknum, ((i / 5) % 65_536) as u16, (i % 5) as u8).unwrap();
        let owner = Address::from_word(keccak256((i % 10_000).to_be_bytes()));
        created.push((pos, Output::new(owner, Address::ZERO, U256::from(i + 1))));
        if created.len() == 100_000 {
            store
                .apply(&Batch { created: std::mem::take(&mut created), ..Batch::default() })
                .unwrap();
        }
    }
    store.apply(&Batch { created, ..Batch::default() }).unwrap();
}

/// A restart with a large UTXO set: what writing it took, what reopening the store into a
/// serving chain (load + in-memory indexes) took, and the database's size.
pub(crate) struct Restarted {
    pub(crate) write: Duration,
    pub(crate) open: Duration,
    pub(crate) size_mb: f64,
}

/// On a fresh store of `backend`: [`write_utxos`] of `n`, then a fresh `Store` opened and
/// `Chain::open` timed (what a restarted — or a newly elected — operator does).
pub(crate) fn restart(backend: Backend, n: u64) -> Restarted {
    let fresh = Fresh::new(backend);
    let t = Instant::now();
    write_utxos(&fresh.open(), n);
    let write = t.elapsed();
    let t = Instant::now();
    let chain =
        Chain::open(fresh.open(), SigningDomain::new(31337, Address::ZERO), Address::ZERO, 1_000)
            .unwrap();
    let open = t.elapsed();
    assert_eq!(chain.status().utxo_count as u64, n);
    drop(chain);
    Restarted { write, open, size_mb: fresh.size_mb() }
}

/// A row of a stage table: its name and how to read it from a run.
pub(crate) type Stage = (&'static str, fn(&Produced) -> Duration);

/// `Chain::produce_block`'s stages, as both benches print them. The store's two overlap the
/// tree and the encodings (the effects rows are written while other threads make them); on
/// PostgreSQL the second is counted from the encoded block's hand-over to the store's thread,
/// so it also holds whatever of the effects rows was still being written then.
pub(crate) const STAGES: [Stage; 11] = [
    ("state lock", |r| r.stages.lock),
    ("ledger checks (UTXO set, fee)", |r| r.stages.ledger),
    ("leaves, signed bytes, tx index", |r| r.stages.leaves),
    ("deflate ahead: groups left after the ledger (both cores)", |r| r.stages.ahead),
    ("Merkle tree and proof tiles", |r| r.stages.tree),
    ("encode: wire form and tx groups", |r| r.stages.encode),
    ("store: the block's log rows (beside tree + encode)", |r| r.stages.write),
    ("store: block rows + commit", |r| r.stages.commit),
    ("in-memory update", |r| r.stages.memory),
    ("**produce_block, total**", |r| r.total),
    ("behind the block: its effects' rows + commit (not on its path)", |r| r.behind),
];

/// The median and the best of `values`.
pub(crate) fn median_best(mut values: Vec<Duration>) -> (Duration, Duration) {
    values.sort_unstable();
    (values[values.len() / 2], values[0])
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// An environment variable as a number.
pub(crate) fn env_usize(var: &str) -> Option<usize> {
    std::env::var(var).ok().and_then(|v| v.parse().ok())
}
