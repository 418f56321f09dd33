//! The PostgreSQL backend (issue #21): the same rows as the redb store, in a database that
//! several operator processes share, one of them leader.
//!
//! # Threads
//! `postgres::Client` runs a Tokio runtime of its own and panics inside another's, so it must
//! never be called from a Tokio worker thread. The store owns a small pool of OS threads, each
//! with one connection; a call sends a job to the pool and blocks on its reply, exactly as a
//! call blocks on redb's I/O, so the store is callable from any thread (`spawn_blocking` or
//! not, as today).
//!
//! # Why an acknowledged write is never lost and a block never half-applied
//! - **One transaction per write.** Every [`super::Batch`] (and a produced block with its
//!   effects, OP-3) is one PostgreSQL transaction, built from bulk statements (`unnest` of
//!   arrays: a full block is ~330k row changes in a handful of statements). A failure anywhere
//!   before `COMMIT` rolls all of it back (the `Transaction` is dropped, or the server aborts
//!   it when the connection dies): nothing half-applied is ever visible or durable.
//! - **Durable before acknowledged.** The call returns `Ok` only after `COMMIT` returned, and
//!   each session runs with `synchronous_commit = on` (raised from `off`/`local` if the server
//!   is configured so): the commit record is flushed to the WAL (and, with a synchronous standby
//!   configured, on the standby) before `COMMIT` returns. `fsync = off` cannot be overridden by
//!   a session: it is logged as an error at connect (docs/operations.md).
//! - **A commit whose answer was lost** (the connection broke after `COMMIT` was sent) may or
//!   may not have happened. Answering "failed" when it happened would make the chain re-produce
//!   a block it already stored; answering "done" when it did not would lose a write. So every
//!   write transaction learns its transaction id (`txid_current()`) first, and after such a
//!   failure the store reconnects and asks the server (`txid_status`): `committed` → `Ok`,
//!   `aborted` → the error. If the server cannot tell within [`RESOLVE_FOR`], the store is
//!   **poisoned**: it refuses every further write (reads go on), and the operator must be
//!   restarted to reload its state from the database — it fails closed, never guesses.
//! - **Fencing.** Every write transaction first runs
//!   `SELECT epoch FROM plasma_leader WHERE id = 1 FOR SHARE` and aborts with
//!   [`StoreError::Fenced`], having changed nothing, unless the epoch is the one
//!   [`PgStore::set_fence`] gave this process; before `set_fence` every write is refused. The
//!   share lock is held until the transaction ends, and a takeover's
//!   `UPDATE plasma_leader SET epoch = epoch + 1` needs the row exclusively, so it waits for
//!   every in-flight write of the old leader: that write either commits before the takeover (and
//!   the new leader's `load`, which runs after it, sees it) or runs its `SELECT` after the
//!   takeover and is refused (in READ COMMITTED a `FOR SHARE` that waited on the `UPDATE` reads
//!   the updated row). No acknowledged write is lost, none lands after the takeover. The lease's
//!   timing plays no part in this.
//! - **Schema.** The migrations in `operator/migrations/` are applied at open in one
//!   transaction under an advisory lock (two processes opening at once do not both migrate) and
//!   recorded in `plasma_schema`; a database with a migration this binary does not know is
//!   refused ([`StoreError::UnsupportedSchema`]) rather than misread.
//! - **Secrets.** Errors and logs name the database by [`super::redact_url`]: never the
//!   password.

use super::{
    Batch, BlockRecord, DaHeaderRow, DaReceiptRow, EXITING_KEY, Inclusion, Loaded, Lookup,
    StoreError, decode_output,
};
use crate::blocks::{
    BlockInfo, EncodedBlock, TX_GROUP, TX_ROW, WIRE_CHUNK, group_range, group_tx, tile_of,
    tree_proof, tx_bytes_of,
};
use ::postgres::{
    Client, Config, IsolationLevel, NoTls, Statement, Transaction, binary_copy::BinaryCopyOutIter,
    fallible_iterator::FallibleIterator, types::Type,
};
use alloy::primitives::{Address, B256};
use parking_lot::Mutex;
use plasma_spec::{Output, UtxoPos};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// Options of the PostgreSQL store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections (each on its own thread): concurrent store calls beyond this queue.
    pub pool: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self { pool: 8 }
    }
}

/// The migrations, in order: (version, name, SQL). Append only; a shipped one never changes.
const MIGRATIONS: &[(i32, &str, &str)] =
    &[(1, "init", include_str!("../../migrations/0001_init.sql"))];

/// How long a commit whose answer was lost is looked up before the store gives up and poisons
/// itself.
const RESOLVE_FOR: Duration = Duration::from_secs(30);

/// The advisory lock key migrations run under ("plasma" in ASCII).
const MIGRATION_LOCK: i64 = 0x0000_706c_6173_6d61;

/// The fence: the leader row's epoch, read under a share lock held to the end of the write
/// transaction; and the transaction's id, to look its commit up if the answer is lost.
const FENCE: &str = "SELECT epoch, txid_current() FROM plasma_leader WHERE id = 1 FOR SHARE";

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// What the store's threads share with it.
#[derive(Debug)]
struct Shared {
    /// The epoch this process writes as.
    fence: Mutex<Option<u64>>,
    /// Why writes are refused for good (a commit whose outcome is unknown).
    poisoned: Mutex<Option<String>>,
    /// The URL without its password, for errors and logs.
    redacted: String,
}

/// The PostgreSQL store: a pool of connection threads.
pub(crate) struct PgStore {
    jobs: Option<mpsc::Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shared.redacted)
            .field("pool", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Closing the queue ends each worker after its current job; its connection closes.
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// One worker's connection and its prepared statements.
struct Conn {
    config: Config,
    client: Option<Client>,
    stmts: HashMap<&'static str, Statement>,
    shared: Arc<Shared>,
}

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> Self {
        Self::Postgres(describe(&e))
    }
}

/// An error's text with the server's detail (never the connection string: the client does
/// not put it in its errors).
fn describe(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({}): {}", db.severity(), db.code().code(), db.message());
            if let Some(detail) = db.detail() {
                s.push_str(&format!(" — {detail}"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// Whether the error is the connection's (it broke, or was never there) rather than the
/// server's answer to a statement.
fn is_connection_error(e: &StoreError, client: Option<&Client>) -> bool {
    matches!(e, StoreError::Postgres(_)) && client.is_none_or(Client::is_closed)
}

impl Conn {
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        self.parts().map(|(client, _)| client)
    }

    /// The connection (made again if it is closed) and its statements, borrowed apart.
    #[allow(clippy::type_complexity)]
    fn parts(
        &mut self,
    ) -> Result<(&mut Client, &mut HashMap<&'static str, Statement>), StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.stmts.clear();
            self.client = None;
            self.client = Some(self.connect()?);
        }
        match self.client.as_mut() {
            Some(client) => Ok((client, &mut self.stmts)),
            None => Err(StoreError::Postgres("no connection".into())),
        }
    }

    fn connect(&self) -> Result<Client, StoreError> {
        let redacted = &self.shared.redacted;
        let mut client = self.config.connect(NoTls).map_err(|e| {
            StoreError::Postgres(format!("connecting to {redacted}: {}", describe(&e)))
        })?;
        // An acknowledged write must survive the database's crash (and, with a synchronous
        // standby, its failover): never `off` or `local` for our sessions.
        let sc: String = client.query_one("SHOW synchronous_commit", &[])?.get(0);
        if sc == "off" || sc == "local" {
            warn!(target: "operator::store", url = %redacted, server = %sc, "synchronous_commit raised to on for the operator's sessions");
            client.batch_execute("SET synchronous_commit = on")?;
        }
        let fsync: String = client.query_one("SHOW fsync", &[])?.get(0);
        if fsync != "on" {
            error!(target: "operator::store", url = %redacted, "the database runs with fsync = off: a crash of its machine can lose acknowledged payments (docs/operations.md)");
        }
        Ok(client)
    }

    /// Runs a read, once more on a fresh connection if the first attempt found it broken (a
    /// restarted server): reads change nothing, so a retry is always safe.
    fn read<R>(
        &mut self,
        mut f: impl FnMut(&mut Client, &mut HashMap<&'static str, Statement>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let result = match self.parts() {
                Ok((client, stmts)) => f(client, stmts),
                Err(_) if tries < 2 => continue,
                Err(e) => return Err(e),
            };
            match result {
                Err(e) if tries < 2 && is_connection_error(&e, self.client.as_ref()) => {
                    self.client = None;
                }
                other => return other,
            }
        }
    }

    /// Runs a write transaction: the fence first (a connection found broken there is replaced
    /// once: nothing was written yet), then `f`'s statements, then the commit, resolved as the
    /// module's doc says if its answer is lost.
    fn write<R>(
        &mut self,
        f: impl FnOnce(
            &mut Transaction<'_>,
            &mut HashMap<&'static str, Statement>,
        ) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        if let Some(why) = self.shared.poisoned.lock().clone() {
            return Err(StoreError::Postgres(why));
        }
        let ours = *self.shared.fence.lock();
        let mut tries = 0;
        let mut reconnect = false;
        let (value, commit) = loop {
            tries += 1;
            if reconnect {
                self.client = None;
            }
            let (client, stmts) = match self.parts() {
                Ok(parts) => parts,
                Err(_) if tries < 2 => continue,
                Err(e) => return Err(e),
            };
            // READ COMMITTED whatever the server's default: the fence's `FOR SHARE` then
            // reads the row as a takeover left it (under REPEATABLE READ it would fail instead:
            // safe, but a spurious error).
            let begun =
                client.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start();
            let mut tx = match begun {
                Ok(tx) => tx,
                Err(e) if tries < 2 && e.as_db_error().is_none() => {
                    reconnect = true;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let fence =
                match prepared_raw(stmts, &mut tx, FENCE).and_then(|st| tx.query_opt(&st, &[])) {
                    Ok(row) => row,
                    // Not the server's answer (the connection is broken: a restarted server):
                    // nothing was written yet, so once more on a new connection.
                    Err(e) if tries < 2 && e.as_db_error().is_none() => {
                        drop(tx);
                        reconnect = true;
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
            let (current, xid) = match fence {
                Some(row) => (Some(row.get::<_, i64>(0) as u64), row.get::<_, i64>(1)),
                None => (None, 0),
            };
            if ours.is_none() || current != ours {
                // Dropped: rolled back, nothing changed.
                return Err(StoreError::Fenced { ours, current });
            }
            let value = f(&mut tx, stmts)?;
            break (value, tx.commit().map_err(|e| (e, xid)));
        };
        match commit {
            Ok(()) => Ok(value),
            // The server answered the COMMIT: it did not happen.
            Err((e, _)) if e.as_db_error().is_some() => Err(e.into()),
            Err((e, xid)) => self.resolve(xid, &e).map(|()| value),
        }
    }

    /// The connection broke with `COMMIT` sent: ask the server whether transaction `xid`
    /// committed; poison the store if it cannot be learnt.
    fn resolve(&mut self, xid: i64, cause: &::postgres::Error) -> Result<(), StoreError> {
        self.client = None;
        let redacted = self.shared.redacted.clone();
        warn!(target: "operator::store", url = %redacted, xid, error = %cause, "the answer to a commit was lost: asking the database whether it committed");
        let deadline = Instant::now() + RESOLVE_FOR;
        let status = loop {
            let asked = self.client().and_then(|c| {
                c.query_one("SELECT txid_status($1)", &[&xid])
                    .map(|row| row.get::<_, Option<String>>(0))
                    .map_err(Into::into)
            });
            match asked {
                Ok(Some(s)) if s == "in progress" => {}
                Ok(status) => break status,
                Err(_) => self.client = None,
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        match status.as_deref() {
            Some("committed") => {
                info!(target: "operator::store", xid, "the commit had happened");
                Ok(())
            }
            Some("aborted") => Err(StoreError::Postgres(format!(
                "the connection broke during COMMIT ({cause}); the transaction was rolled back"
            ))),
            _ => {
                let why = format!(
                    "the outcome of a commit is unknown (the connection to {redacted} broke \
                     during COMMIT: {cause}, and the database could not be asked): this store \
                     refuses every further write; restart the operator to reload its state"
                );
                error!(target: "operator::store", xid, "{why}");
                *self.shared.poisoned.lock() = Some(why.clone());
                Err(StoreError::Postgres(why))
            }
        }
    }
}

/// A prepared statement of this connection, prepared on first use.
fn prepared(
    stmts: &mut HashMap<&'static str, Statement>,
    tx: &mut Transaction<'_>,
    sql: &'static str,
) -> Result<Statement, StoreError> {
    Ok(prepared_raw(stmts, tx, sql)?)
}

/// [`prepared`] with the client's own error.
fn prepared_raw(
    stmts: &mut HashMap<&'static str, Statement>,
    tx: &mut Transaction<'_>,
    sql: &'static str,
) -> Result<Statement, ::postgres::Error> {
    if let Some(st) = stmts.get(sql) {
        return Ok(st.clone());
    }
    let st = tx.prepare(sql)?;
    stmts.insert(sql, st.clone());
    Ok(st)
}

/// [`prepared`] on a client outside a transaction.
fn prepared_c(
    stmts: &mut HashMap<&'static str, Statement>,
    client: &mut Client,
    sql: &'static str,
) -> Result<Statement, StoreError> {
    if let Some(st) = stmts.get(sql) {
        return Ok(st.clone());
    }
    let st = client.prepare(sql)?;
    stmts.insert(sql, st.clone());
    Ok(st)
}

/// A repeatable-read, read-only transaction: several statements, one snapshot.
fn snapshot(client: &mut Client) -> Result<Transaction<'_>, StoreError> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?)
}

fn pos_key(pos: UtxoPos) -> Vec<u8> {
    pos.to_u128().to_be_bytes().to_vec()
}

fn pos_of(b: &[u8]) -> Result<UtxoPos, StoreError> {
    let bytes: [u8; 16] = b.try_into().map_err(|_| StoreError::Corrupt {
        what: "utxo key",
        reason: format!("{} bytes", b.len()),
    })?;
    UtxoPos::from_u128(u128::from_be_bytes(bytes))
        .map_err(|e| StoreError::Corrupt { what: "utxo key", reason: e.to_string() })
}

/// `items` with only the last entry of each key, in their order (redb's inserts of one key
/// twice leave the last; one SQL statement may not touch a row twice).
fn last_per_key<T, K: Hash + Eq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut seen = HashSet::with_capacity(items.len());
    let mut out: Vec<&T> = items.iter().rev().filter(|t| seen.insert(key(t))).collect();
    out.reverse();
    out
}

/// Values of one `bytea[]` parameter.
type ByteaArray = Vec<Vec<u8>>;

/// A batch's rows as owned arrays, ready to be bound (built on the caller's thread).
#[derive(Default)]
struct Rows {
    spent: ByteaArray,
    /// Positions, owners, packed outputs.
    created: (ByteaArray, ByteaArray, ByteaArray),
    infos: (Vec<i64>, Vec<Vec<u8>>),
    txs: (Vec<Vec<u8>>, Vec<i64>, Vec<i32>),
    mempool_add: (Vec<i64>, Vec<Vec<u8>>),
    mempool_remove: Vec<i64>,
    meta: (Vec<String>, Vec<i64>),
    exiting: Option<Vec<u8>>,
    blocks: Vec<EncodedBlock>,
}

impl Rows {
    fn of(batch: &Batch) -> Result<Self, StoreError> {
        let mut rows = Self {
            spent: batch.spent.iter().map(|p| pos_key(*p)).collect(),
            blocks: batch.blocks.clone(),
            ..Self::default()
        };
        for (pos, out) in last_per_key(&batch.created, |(p, _)| *p) {
            rows.created.0.push(pos_key(*pos));
            rows.created.1.push(out.owner.to_vec());
            rows.created.2.push(out.to_packed().to_vec());
        }
        for info in last_per_key(&batch.block_infos, |i| i.blknum) {
            rows.infos.0.push(info.blknum as i64);
            rows.infos.1.push(info.to_bytes());
        }
        for (hash, blknum, index) in last_per_key(&batch.txs, |(h, _, _)| *h) {
            rows.txs.0.push(hash.to_vec());
            rows.txs.1.push(*blknum as i64);
            rows.txs.2.push(*index as i32);
        }
        for (seq, bytes) in last_per_key(&batch.mempool_add, |(s, _)| *s) {
            rows.mempool_add.0.push(*seq as i64);
            rows.mempool_add.1.push(bytes.clone());
        }
        rows.mempool_remove = batch.mempool_remove.iter().map(|s| *s as i64).collect();
        for (key, value) in last_per_key(&batch.meta, |(k, _)| *k) {
            rows.meta.0.push((*key).to_owned());
            rows.meta.1.push(*value as i64);
        }
        if let Some(exiting) = &batch.exiting {
            rows.exiting = Some(
                serde_json::to_vec(exiting)
                    .map_err(|e| StoreError::Corrupt { what: "exiting", reason: e.to_string() })?,
            );
        }
        Ok(rows)
    }
}

const DEL_UTXOS: &str = "DELETE FROM utxos WHERE pos = ANY($1::bytea[])";
const PUT_UTXOS: &str = "INSERT INTO utxos (pos, owner, output) \
     SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[]) \
     ON CONFLICT (pos) DO UPDATE SET owner = EXCLUDED.owner, output = EXCLUDED.output";
const PUT_INFOS: &str = "INSERT INTO block_info (blknum, info) \
     SELECT * FROM unnest($1::bigint[], $2::bytea[]) \
     ON CONFLICT (blknum) DO UPDATE SET info = EXCLUDED.info";
const PUT_TXS: &str = "INSERT INTO txs (hash, blknum, idx) \
     SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::integer[]) \
     ON CONFLICT (hash) DO UPDATE SET blknum = EXCLUDED.blknum, idx = EXCLUDED.idx";
const PUT_MEMPOOL: &str = "INSERT INTO mempool (seq, bytes) \
     SELECT * FROM unnest($1::bigint[], $2::bytea[]) \
     ON CONFLICT (seq) DO UPDATE SET bytes = EXCLUDED.bytes";
const DEL_MEMPOOL: &str = "DELETE FROM mempool WHERE seq = ANY($1::bigint[])";
const PUT_META: &str = "INSERT INTO meta (key, value) \
     SELECT * FROM unnest($1::text[], $2::bigint[]) \
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
const PUT_EXITING: &str = "INSERT INTO exiting (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value";
const PUT_WIRE: &str = "INSERT INTO block_wire (blknum, row_no, data) \
     SELECT $1, (t.n - 1)::integer, t.d FROM unnest($2::bytea[]) WITH ORDINALITY AS t(d, n) \
     ON CONFLICT (blknum, row_no) DO UPDATE SET data = EXCLUDED.data";
const PUT_TILES: &str = "INSERT INTO block_tiles (blknum, row_no, data) \
     SELECT $1, (t.n - 1)::integer, t.d FROM unnest($2::bytea[]) WITH ORDINALITY AS t(d, n) \
     ON CONFLICT (blknum, row_no) DO UPDATE SET data = EXCLUDED.data";
const PUT_TX_ROWS: &str = "INSERT INTO block_txs (blknum, row_no, data) \
     SELECT $1, (t.n - 1)::integer, t.d FROM unnest($2::bytea[]) WITH ORDINALITY AS t(d, n) \
     ON CONFLICT (blknum, row_no) DO UPDATE SET data = EXCLUDED.data";
const PUT_TOP: &str = "INSERT INTO block_tree_top (blknum, data) VALUES ($1, $2) \
     ON CONFLICT (blknum) DO UPDATE SET data = EXCLUDED.data";
const PUT_OFFSETS: &str = "INSERT INTO block_tx_offsets (blknum, data) VALUES ($1, $2) \
     ON CONFLICT (blknum) DO UPDATE SET data = EXCLUDED.data";

/// A block's rows (redb's `write_block`): the info row, the wire form in [`WIRE_CHUNK`]-byte
/// rows, the tiles, the tree's top, the transaction groups in [`TX_ROW`]-byte rows and their
/// offsets — the same rows redb stores, so both serve the same bytes.
fn write_block(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    b: &EncodedBlock,
) -> Result<(), StoreError> {
    let blknum = b.info.blknum as i64;
    let st = prepared(stmts, tx, PUT_INFOS)?;
    tx.execute(&st, &[&vec![blknum], &vec![b.info.to_bytes()]])?;
    let wire: Vec<&[u8]> = b.wire.chunks(WIRE_CHUNK).collect();
    let st = prepared(stmts, tx, PUT_WIRE)?;
    tx.execute(&st, &[&blknum, &wire])?;
    let tiles: Vec<&[u8]> = b.tiles.iter().map(Vec::as_slice).collect();
    let st = prepared(stmts, tx, PUT_TILES)?;
    tx.execute(&st, &[&blknum, &tiles])?;
    let st = prepared(stmts, tx, PUT_TOP)?;
    tx.execute(&st, &[&blknum, &b.top])?;
    let rows: Vec<&[u8]> = b.tx_stream.chunks(TX_ROW).collect();
    let st = prepared(stmts, tx, PUT_TX_ROWS)?;
    tx.execute(&st, &[&blknum, &rows])?;
    let st = prepared(stmts, tx, PUT_OFFSETS)?;
    tx.execute(&st, &[&blknum, &b.tx_offsets])?;
    Ok(())
}

/// Every row of a batch but its blocks, in redb's order (spent before created, mempool adds
/// before removals), one statement per table.
fn write_rows(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    rows: &Rows,
) -> Result<(), StoreError> {
    if !rows.spent.is_empty() {
        let st = prepared(stmts, tx, DEL_UTXOS)?;
        tx.execute(&st, &[&rows.spent])?;
    }
    if !rows.created.0.is_empty() {
        let st = prepared(stmts, tx, PUT_UTXOS)?;
        tx.execute(&st, &[&rows.created.0, &rows.created.1, &rows.created.2])?;
    }
    if !rows.infos.0.is_empty() {
        let st = prepared(stmts, tx, PUT_INFOS)?;
        tx.execute(&st, &[&rows.infos.0, &rows.infos.1])?;
    }
    if !rows.txs.0.is_empty() {
        let st = prepared(stmts, tx, PUT_TXS)?;
        tx.execute(&st, &[&rows.txs.0, &rows.txs.1, &rows.txs.2])?;
    }
    if !rows.mempool_add.0.is_empty() {
        let st = prepared(stmts, tx, PUT_MEMPOOL)?;
        tx.execute(&st, &[&rows.mempool_add.0, &rows.mempool_add.1])?;
    }
    if !rows.mempool_remove.is_empty() {
        let st = prepared(stmts, tx, DEL_MEMPOOL)?;
        tx.execute(&st, &[&rows.mempool_remove])?;
    }
    if !rows.meta.0.is_empty() {
        let st = prepared(stmts, tx, PUT_META)?;
        tx.execute(&st, &[&rows.meta.0, &rows.meta.1])?;
    }
    if let Some(json) = &rows.exiting {
        let st = prepared(stmts, tx, PUT_EXITING)?;
        tx.execute(&st, &[&EXITING_KEY, json])?;
    }
    Ok(())
}

/// Applies the migrations this database lacks, in one transaction under an advisory lock.
fn migrate(client: &mut Client, redacted: &str) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS plasma_schema (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    let found: Option<i32> = tx.query_one("SELECT max(version) FROM plasma_schema", &[])?.get(0);
    let found = found.unwrap_or(0);
    let supported = MIGRATIONS.last().map_or(0, |m| m.0);
    if found > supported {
        return Err(StoreError::UnsupportedSchema {
            found: found as u64,
            supported: supported as u64,
        });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        tx.batch_execute(sql).map_err(|e| {
            StoreError::Postgres(format!("migration {version} ({name}): {}", describe(&e)))
        })?;
        tx.execute("INSERT INTO plasma_schema (version, name) VALUES ($1, $2)", &[version, name])?;
        info!(target: "operator::store", url = %redacted, version, name, "schema migration applied");
    }
    tx.commit()?;
    Ok(())
}

impl PgStore {
    pub(crate) fn open(url: &str, options: &PgOptions) -> Result<Self, StoreError> {
        let redacted = super::redact_url(url);
        let mut config: Config = url
            .parse()
            .map_err(|_| StoreError::Postgres(format!("not a valid PostgreSQL URL: {redacted}")))?;
        config
            .application_name("plasma-operator")
            .connect_timeout(Duration::from_secs(10))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        let shared =
            Arc::new(Shared { fence: Mutex::new(None), poisoned: Mutex::new(None), redacted });
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut workers = Vec::new();
        for i in 0..options.pool.max(1) {
            let queue = Arc::clone(&queue);
            let mut conn = Conn {
                config: config.clone(),
                client: None,
                stmts: HashMap::new(),
                shared: Arc::clone(&shared),
            };
            let worker = std::thread::Builder::new()
                .name(format!("store-pg-{i}"))
                .spawn(move || {
                    loop {
                        let job = queue.lock().recv();
                        let Ok(job) = job else { return };
                        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            job(&mut conn)
                        }));
                        if ran.is_err() {
                            // A transaction open on it was rolled back by the unwinding; start
                            // clean.
                            conn.client = None;
                        }
                    }
                })
                .map_err(|e| StoreError::Postgres(format!("starting a store thread: {e}")))?;
            workers.push(worker);
        }
        let store = Self { jobs: Some(jobs), workers, shared };
        let redacted = store.shared.redacted.clone();
        store.call(move |conn| {
            let client = conn.client()?;
            migrate(client, &redacted)
        })?;
        Ok(store)
    }

    /// Sends `f` to the pool; the reply comes on the returned channel.
    fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<mpsc::Receiver<Result<R, StoreError>>, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StoreError::Postgres("the store's threads have stopped".into()))?;
        Ok(answer)
    }

    /// Runs `f` on a pool thread and waits for its answer.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(f)?.recv().map_err(|_| {
            StoreError::Postgres(
                "a store thread stopped before answering (a bug: see the log)".into(),
            )
        })?
    }

    pub(crate) fn set_fence(&self, epoch: u64) {
        *self.shared.fence.lock() = Some(epoch);
        info!(target: "operator::store", epoch, "writes fenced by the leader epoch");
    }

    pub(crate) fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        let rows = Rows::of(batch)?;
        self.call(move |conn| {
            conn.write(|tx, stmts| {
                for b in &rows.blocks {
                    write_block(tx, stmts, b)?;
                }
                write_rows(tx, stmts, &rows)
            })
        })
    }

    /// The batch's rows are written on a pool thread while `encode` runs on another; the
    /// block's rows follow in the same transaction once encoded. An encoding that fails drops
    /// its channel: the transaction is rolled back, nothing of the batch is durable (OP-3).
    pub(crate) fn apply_with_block<F>(
        &self,
        batch: &Batch,
        encode: F,
    ) -> Result<(BlockInfo, Duration, Duration), StoreError>
    where
        F: FnOnce() -> Result<EncodedBlock, StoreError> + Send,
    {
        let rows = Rows::of(batch)?;
        let (block_tx, block_rx) = mpsc::sync_channel::<EncodedBlock>(1);
        std::thread::scope(|s| {
            let encoding = s.spawn(encode);
            let answer = self.submit(move |conn| {
                conn.write(|tx, stmts| {
                    let t = Instant::now();
                    write_rows(tx, stmts, &rows)?;
                    let rows_took = t.elapsed();
                    let block = block_rx.recv().map_err(|_| StoreError::Corrupt {
                        what: "block",
                        reason: "its encoding failed".into(),
                    })?;
                    write_block(tx, stmts, &block)?;
                    Ok((block.info, rows_took))
                })
            });
            let encoded = encoding.join().map_err(|_| StoreError::Corrupt {
                what: "block",
                reason: "encoder panicked".into(),
            });
            let answer = answer?;
            let encoded = match encoded {
                Ok(Ok(encoded)) => encoded,
                Ok(Err(e)) | Err(e) => {
                    drop(block_tx);
                    let _ = answer.recv();
                    return Err(e);
                }
            };
            let t = Instant::now();
            let _ = block_tx.send(encoded);
            let (info, rows_took) = answer.recv().map_err(|_| {
                StoreError::Postgres("a store thread stopped before answering".into())
            })??;
            Ok((info, rows_took, t.elapsed()))
        })
    }

    pub(crate) fn load(&self) -> Result<Loaded, StoreError> {
        self.call(|conn| {
            conn.read(|client, _| {
                let mut tx = snapshot(client)?;
                let mut loaded = Loaded::default();
                {
                    let reader = tx.copy_out(
                        "COPY (SELECT pos, output FROM utxos ORDER BY pos) TO STDOUT (FORMAT binary)",
                    )?;
                    let mut rows = BinaryCopyOutIter::new(reader, &[Type::BYTEA, Type::BYTEA]);
                    while let Some(row) = rows.next()? {
                        let pos = pos_of(row.try_get::<&[u8]>(0)?)?;
                        loaded.utxos.push((pos, decode_output(row.try_get::<&[u8]>(1)?)?));
                    }
                }
                for row in tx.query("SELECT seq, bytes FROM mempool ORDER BY seq", &[])? {
                    loaded.mempool.push((row.get::<_, i64>(0) as u64, row.get(1)));
                }
                for row in tx.query("SELECT key, value FROM meta", &[])? {
                    let value = row.get::<_, i64>(1) as u64;
                    match row.get::<_, &str>(0) {
                        super::NEXT_CHILD_BLOCK => loaded.next_child_block = Some(value),
                        super::DEPOSIT_CURSOR => loaded.deposit_cursor = Some(value),
                        super::EXIT_CURSOR => loaded.exit_cursor = Some(value),
                        _ => {}
                    }
                }
                if let Some(row) =
                    tx.query_opt("SELECT value FROM exiting WHERE key = $1", &[&EXITING_KEY])?
                {
                    loaded.exiting = serde_json::from_slice(row.get::<_, &[u8]>(0))
                        .map_err(|e| StoreError::Corrupt { what: "exiting", reason: e.to_string() })?;
                }
                let child = plasma_spec::CHILD_BLOCK_INTERVAL as i64;
                for row in tx.query(
                    "SELECT blknum, info FROM block_info WHERE blknum % $1 = 0 ORDER BY blknum",
                    &[&child],
                )? {
                    let blknum = row.get::<_, i64>(0) as u64;
                    if BlockInfo::from_bytes(blknum, row.get(1))?.l1_timestamp.is_none() {
                        loaded.uncommitted.push(blknum);
                    }
                }
                tx.commit()?;
                Ok(loaded)
            })
        })
    }

    pub(crate) fn block_info(&self, blknum: u64) -> Result<Option<BlockInfo>, StoreError> {
        self.call(move |conn| {
            conn.read(|client, stmts| {
                let st =
                    prepared_c(stmts, client, "SELECT info FROM block_info WHERE blknum = $1")?;
                client
                    .query_opt(&st, &[&(blknum as i64)])?
                    .map(|row| BlockInfo::from_bytes(blknum, row.get(0)))
                    .transpose()
            })
        })
    }

    pub(crate) fn block(&self, blknum: u64) -> Result<Option<BlockRecord>, StoreError> {
        let Some((info, wire)) = self.wire(blknum)? else { return Ok(None) };
        let (header, txs) = plasma_spec::wire::decode_block(&wire)
            .map_err(|e| StoreError::Corrupt { what: "block", reason: format!("{blknum}: {e}") })?;
        if header.root != info.root || header.blknum != blknum {
            return Err(StoreError::Corrupt { what: "block", reason: format!("{blknum}: header") });
        }
        Ok(Some(BlockRecord {
            blknum,
            root: info.root,
            txs,
            l1_timestamp: info.l1_timestamp,
            l1_tx: info.l1_tx,
        }))
    }

    pub(crate) fn wire_chunk(&self, blknum: u64, offset: u64) -> Result<Vec<u8>, StoreError> {
        let row = (offset / WIRE_CHUNK as u64) as u32;
        let skip = (offset % WIRE_CHUNK as u64) as usize;
        self.call(move |conn| {
            conn.read(|client, stmts| {
                let st = prepared_c(
                    stmts,
                    client,
                    "SELECT data FROM block_wire WHERE blknum = $1 AND row_no = $2",
                )?;
                Ok(match client.query_opt(&st, &[&(blknum as i64), &(row as i32)])? {
                    Some(r) => r.get::<_, &[u8]>(0).get(skip..).unwrap_or_default().to_vec(),
                    None => Vec::new(),
                })
            })
        })
    }

    pub(crate) fn wire(&self, blknum: u64) -> Result<Option<(BlockInfo, Vec<u8>)>, StoreError> {
        self.call(move |conn| {
            conn.read(|client, _| {
                let mut tx = snapshot(client)?;
                let key = blknum as i64;
                let Some(info) =
                    tx.query_opt("SELECT info FROM block_info WHERE blknum = $1", &[&key])?
                else {
                    return Ok(None);
                };
                let info = BlockInfo::from_bytes(blknum, info.get(0))?;
                let mut wire = Vec::with_capacity(usize::try_from(info.wire_len).unwrap_or(0));
                for row in tx.query(
                    "SELECT data FROM block_wire WHERE blknum = $1 ORDER BY row_no",
                    &[&key],
                )? {
                    wire.extend_from_slice(row.get::<_, &[u8]>(0));
                }
                tx.commit()?;
                if wire.len() as u64 != info.wire_len {
                    return Err(StoreError::Corrupt {
                        what: "block wire rows",
                        reason: format!(
                            "{blknum}: {} bytes, info says {}",
                            wire.len(),
                            info.wire_len
                        ),
                    });
                }
                Ok(Some((info, wire)))
            })
        })
    }

    pub(crate) fn put_da_header(&self, header: &DaHeaderRow) -> Result<bool, StoreError> {
        let header = header.clone();
        self.call(move |conn| {
            conn.write(|tx, _| {
                let blknum = header.blknum as i64;
                let old = tx
                    .query_opt(
                        "SELECT data FROM da_headers WHERE blknum = $1 FOR UPDATE",
                        &[&blknum],
                    )?
                    .map(|row| DaHeaderRow::from_bytes(header.blknum, row.get(0)))
                    .transpose()?;
                let replaced = old.as_ref().is_some_and(|old| *old != header);
                if old.as_ref() != Some(&header) {
                    tx.execute(
                        "INSERT INTO da_headers (blknum, data) VALUES ($1, $2) \
                         ON CONFLICT (blknum) DO UPDATE SET data = EXCLUDED.data",
                        &[&blknum, &header.to_bytes()],
                    )?;
                }
                if replaced {
                    tx.execute("DELETE FROM da_receipts WHERE blknum = $1", &[&blknum])?;
                }
                tx.execute(
                    "INSERT INTO da_pending (blknum) VALUES ($1) ON CONFLICT DO NOTHING",
                    &[&blknum],
                )?;
                Ok(replaced)
            })
        })
    }

    pub(crate) fn da_header(&self, blknum: u64) -> Result<Option<DaHeaderRow>, StoreError> {
        self.call(move |conn| {
            conn.read(|client, _| {
                client
                    .query_opt(
                        "SELECT data FROM da_headers WHERE blknum = $1",
                        &[&(blknum as i64)],
                    )?
                    .map(|row| DaHeaderRow::from_bytes(blknum, row.get(0)))
                    .transpose()
            })
        })
    }

    pub(crate) fn put_da_receipt(
        &self,
        blknum: u64,
        receipt: &DaReceiptRow,
    ) -> Result<(), StoreError> {
        let mut value = Vec::with_capacity(20 + receipt.signature.len());
        value.extend_from_slice(receipt.tower.as_slice());
        value.extend_from_slice(&receipt.signature);
        let index = i32::from(receipt.index);
        self.call(move |conn| {
            conn.write(|tx, _| {
                tx.execute(
                    "INSERT INTO da_receipts (blknum, idx, data) VALUES ($1, $2, $3) \
                     ON CONFLICT (blknum, idx) DO UPDATE SET data = EXCLUDED.data",
                    &[&(blknum as i64), &index, &value],
                )?;
                Ok(())
            })
        })
    }

    pub(crate) fn da_receipts(&self, blknum: u64) -> Result<Vec<DaReceiptRow>, StoreError> {
        self.call(move |conn| {
            conn.read(|client, _| {
                let rows = client.query(
                    "SELECT idx, data FROM da_receipts WHERE blknum = $1 ORDER BY idx",
                    &[&(blknum as i64)],
                )?;
                rows.iter()
                    .map(|row| {
                        let v: &[u8] = row.get(1);
                        if v.len() < 20 {
                            return Err(StoreError::Corrupt {
                                what: "da receipt",
                                reason: format!("{blknum}: {} bytes", v.len()),
                            });
                        }
                        Ok(DaReceiptRow {
                            index: row.get::<_, i32>(0) as u16,
                            tower: Address::from_slice(&v[..20]),
                            signature: v[20..].to_vec(),
                        })
                    })
                    .collect()
            })
        })
    }

    pub(crate) fn da_pending(&self) -> Result<Vec<u64>, StoreError> {
        self.call(|conn| {
            conn.read(|client, _| {
                Ok(client
                    .query("SELECT blknum FROM da_pending ORDER BY blknum", &[])?
                    .iter()
                    .map(|row| row.get::<_, i64>(0) as u64)
                    .collect())
            })
        })
    }

    pub(crate) fn clear_da_pending(&self, blknum: u64) -> Result<(), StoreError> {
        self.call(move |conn| {
            conn.write(|tx, _| {
                tx.execute("DELETE FROM da_pending WHERE blknum = $1", &[&(blknum as i64)])?;
                Ok(())
            })
        })
    }

    pub(crate) fn inclusion(&self, blknum: u64, index: u32) -> Result<Lookup, StoreError> {
        self.call(move |conn| {
            conn.read(|client, _| {
                let mut tx = snapshot(client)?;
                let key = blknum as i64;
                let Some(info) =
                    tx.query_opt("SELECT info FROM block_info WHERE blknum = $1", &[&key])?
                else {
                    return Ok(Lookup::UnknownBlock);
                };
                let info = BlockInfo::from_bytes(blknum, info.get(0))?;
                if index >= info.tx_count {
                    return Ok(Lookup::OutOfRange { tx_count: info.tx_count });
                }
                let missing = |what| StoreError::Corrupt {
                    what,
                    reason: format!("block {blknum} tx {index}"),
                };
                let tile = tile_of(info.tx_count as usize, index as usize) as i32;
                let tile = tx
                    .query_opt(
                        "SELECT data FROM block_tiles WHERE blknum = $1 AND row_no = $2",
                        &[&key, &tile],
                    )?
                    .ok_or_else(|| missing("proof tile"))?;
                let top = tx
                    .query_opt("SELECT data FROM block_tree_top WHERE blknum = $1", &[&key])?
                    .ok_or_else(|| missing("tree top"))?;
                let proof = tree_proof(tile.get(0), top.get(0), index as usize)?;
                let offsets = tx
                    .query_opt("SELECT data FROM block_tx_offsets WHERE blknum = $1", &[&key])?
                    .ok_or_else(|| missing("tx offsets"))?;
                let range = group_range(offsets.get(0), index as usize / TX_GROUP)?;
                let row = |at: u64| (at / TX_ROW as u64) as i32;
                let (first, last) =
                    (row(range.start), row(range.end.saturating_sub(1).max(range.start)));
                let mut group = Vec::with_capacity((range.end - range.start) as usize);
                for r in tx.query(
                    "SELECT row_no, data FROM block_txs \
                     WHERE blknum = $1 AND row_no BETWEEN $2 AND $3 ORDER BY row_no",
                    &[&key, &first, &last],
                )? {
                    let base = u64::from(r.get::<_, i32>(0) as u32) * TX_ROW as u64;
                    let v: &[u8] = r.get(1);
                    let from = range.start.saturating_sub(base) as usize;
                    let to = (range.end - base).min(TX_ROW as u64) as usize;
                    group.extend_from_slice(v.get(from..to).ok_or_else(|| missing("tx row"))?);
                }
                tx.commit()?;
                if group.len() as u64 != range.end - range.start {
                    return Err(missing("tx group"));
                }
                let stored = group_tx(&group, index as usize % TX_GROUP)?;
                let tx_bytes = tx_bytes_of(blknum, &stored)?;
                Ok(Lookup::Found(Box::new(Inclusion { info, stored, tx_bytes, proof })))
            })
        })
    }

    pub(crate) fn tx_location(&self, hash: &B256) -> Result<Option<(u64, u32)>, StoreError> {
        let hash = hash.to_vec();
        self.call(move |conn| {
            conn.read(|client, stmts| {
                let st = prepared_c(stmts, client, "SELECT blknum, idx FROM txs WHERE hash = $1")?;
                Ok(client
                    .query_opt(&st, &[&hash])?
                    .map(|row| (row.get::<_, i64>(0) as u64, row.get::<_, i32>(1) as u32)))
            })
        })
    }

    pub(crate) fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let key = key.to_owned();
        self.call(move |conn| {
            conn.read(|client, _| {
                Ok(client
                    .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
                    .map(|row| row.get::<_, i64>(0) as u64))
            })
        })
    }

    pub(crate) fn utxo(&self, pos: UtxoPos) -> Result<Option<Output>, StoreError> {
        self.call(move |conn| {
            conn.read(|client, stmts| {
                let st = prepared_c(stmts, client, "SELECT output FROM utxos WHERE pos = $1")?;
                client
                    .query_opt(&st, &[&pos_key(pos)])?
                    .map(|r| decode_output(r.get(0)))
                    .transpose()
            })
        })
    }

    pub(crate) fn utxos_page(
        &self,
        owner: Address,
        after: Option<UtxoPos>,
        limit: usize,
    ) -> Result<(Vec<(UtxoPos, Output)>, bool), StoreError> {
        let after = after.map_or_else(Vec::new, pos_key);
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1).saturating_add(1);
        self.call(move |conn| {
            conn.read(|client, stmts| {
                // `pos > ''` holds for every key: no position means from the start.
                let st = prepared_c(
                    stmts,
                    client,
                    "SELECT pos, output FROM utxos WHERE owner = $1 AND pos > $2 \
                     ORDER BY pos LIMIT $3",
                )?;
                let rows = client.query(&st, &[&owner.as_slice(), &after, &fetch])?;
                let more = rows.len() > limit;
                let page = rows
                    .iter()
                    .take(limit)
                    .map(|r| Ok((pos_of(r.get(0))?, decode_output(r.get(1))?)))
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok((page, more))
            })
        })
    }

    pub(crate) fn head(&self) -> Result<Option<u64>, StoreError> {
        self.call(|conn| {
            conn.read(|client, _| {
                let max: Option<i64> =
                    client.query_one("SELECT max(blknum) FROM block_info", &[])?.get(0);
                Ok(max.map(|m| m as u64))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    //! What only the PostgreSQL store has: fencing, its schema record, a server crash, a
    //! connection killed mid-write. (The behaviour both backends share is tested in
    //! `store::tests` on both.)

    use super::super::tests::{Db, payment_block};
    use super::super::{NEXT_CHILD_BLOCK, Store};
    use super::*;
    use alloy::primitives::U256;

    fn one_utxo(n: u64) -> Batch {
        let pos = UtxoPos::new(n, 0, 0).unwrap();
        let out = Output::new(Address::repeat_byte(1), Address::ZERO, U256::from(n));
        Batch { created: vec![(pos, out)], meta: vec![(NEXT_CHILD_BLOCK, n)], ..Batch::default() }
    }

    /// A row count, through psql (not through the store under test).
    fn count(db: &Db, table: &str) -> u64 {
        db.pg().psql(&format!("SELECT count(*) FROM {table}")).unwrap().trim().parse().unwrap()
    }

    #[test]
    fn writes_before_the_fence_is_set_are_refused_and_change_nothing() {
        let db = Db::new("postgres");
        let store = Store::open_postgres(db.pg().url(), &PgOptions::default()).unwrap();
        assert_eq!(store.backend(), "postgres");
        match store.apply(&one_utxo(1)) {
            Err(StoreError::Fenced { ours: None, current: None }) => {}
            other => panic!("expected Fenced without a leader row, got {other:?}"),
        }
        db.pg()
            .psql("INSERT INTO plasma_leader VALUES (1, 7, 'b', 'http://b', now() + interval '1 hour')")
            .unwrap();
        match store.clear_da_pending(5) {
            Err(e @ StoreError::Fenced { ours: None, current: Some(7) }) => assert!(e.is_fenced()),
            other => panic!("expected Fenced before set_fence, got {other:?}"),
        }
        store.set_fence(7);
        store.apply(&one_utxo(1)).unwrap();
        assert_eq!(count(&db, "utxos"), 1);
    }

    #[test]
    fn a_write_with_a_stale_epoch_is_refused_and_changes_nothing() {
        let db = Db::new("postgres");
        let store = db.open();
        store.apply(&one_utxo(1)).unwrap();
        let before = store.load().unwrap();
        // Another operator takes over.
        db.pg().psql("UPDATE plasma_leader SET epoch = epoch + 1, holder = 'other'").unwrap();
        let block = payment_block(1000, 50);
        for attempt in [
            store.apply(&one_utxo(2)),
            store.apply_with_block(&one_utxo(3), || EncodedBlock::from_record(&block)).map(|_| ()),
            store.put_da_receipt(
                1000,
                &DaReceiptRow { index: 0, tower: Address::ZERO, signature: vec![1; 65] },
            ),
        ] {
            match attempt {
                Err(StoreError::Fenced { ours: Some(1), current: Some(2) }) => {}
                other => panic!("expected Fenced {{ ours: 1, current: 2 }}, got {other:?}"),
            }
        }
        let after = store.load().unwrap();
        assert_eq!(after.utxos, before.utxos, "nothing changed");
        assert_eq!(after.next_child_block, Some(1));
        assert_eq!(store.block_info(1000).unwrap(), None);
        assert_eq!((count(&db, "block_wire"), count(&db, "da_receipts")), (0, 0));
        // Reads go on (a deposed leader or a standby still serves them).
        assert_eq!(store.head().unwrap(), None);
    }

    #[test]
    fn the_takeover_waits_for_an_in_flight_write_which_is_then_kept() {
        let db = Db::new("postgres");
        let store = db.open();
        let block = payment_block(1000, 200);
        let (go, wait) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            // A block write holding its transaction open (its encoding waits for `go`): the
            // fence's share lock is held.
            let (store, block) = (&store, &block);
            let writer = s.spawn(move || {
                store.apply_with_block(&one_utxo(1000), move || {
                    wait.recv().unwrap();
                    EncodedBlock::from_record(block)
                })
            });
            // The store's write is in its transaction once a backend holds a row lock on
            // plasma_leader.
            let deadline = Instant::now() + Duration::from_secs(10);
            while db.pg().psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'plasma_leader' AND l.mode = 'RowShareLock'").unwrap().trim() == "0" {
                assert!(Instant::now() < deadline, "the write never took the fence");
                std::thread::sleep(Duration::from_millis(10));
            }
            let takeover = s.spawn(|| {
                db.pg().psql("UPDATE plasma_leader SET epoch = epoch + 1 RETURNING epoch").unwrap()
            });
            // The UPDATE blocks on the share lock (it is seen waiting for a lock) ...
            let deadline = Instant::now() + Duration::from_secs(10);
            while db.pg().psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE plasma_leader%'").unwrap().trim() == "0" {
                assert!(Instant::now() < deadline, "the takeover did not wait");
                assert!(!takeover.is_finished(), "the takeover did not wait for the write");
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(!takeover.is_finished());
            // ... until the write commits; then it goes through.
            go.send(()).unwrap();
            let (info, _, _) = writer.join().unwrap().unwrap();
            assert_eq!(info.blknum, 1000);
            assert_eq!(takeover.join().unwrap().trim(), "2");
        });
        // The write committed before the takeover: a new leader's load sees it.
        let other = Store::open_postgres(db.pg().url(), &PgOptions { pool: 1 }).unwrap();
        other.set_fence(2);
        let loaded = other.load().unwrap();
        assert_eq!(loaded.next_child_block, Some(1000));
        assert_eq!(other.block(1000).unwrap().unwrap().txs, block.txs);
        // And the old leader's next write is refused.
        match store.apply(&one_utxo(5)) {
            Err(StoreError::Fenced { ours: Some(1), current: Some(2) }) => {}
            other => panic!("expected Fenced, got {other:?}"),
        }
        other.apply(&one_utxo(6)).unwrap();
    }

    #[test]
    fn acknowledged_writes_survive_a_crash_of_the_server() {
        let mut db = Db::new("postgres");
        let store = db.open();
        let block = payment_block(1000, 300);
        for n in 1..=20 {
            store.apply(&one_utxo(n)).unwrap();
        }
        store.apply_with_block(&one_utxo(21), || EncodedBlock::from_record(&block)).unwrap();
        let before = store.load().unwrap();
        let Db::Postgres(pg) = &mut db else { unreachable!() };
        pg.crash_and_restart().unwrap();
        // The same store goes on: its connections are made again.
        let after = store.load().unwrap();
        assert_eq!(after.utxos.len(), 21);
        assert_eq!((after.utxos, after.next_child_block), (before.utxos, Some(21)));
        assert_eq!(store.block(1000).unwrap().unwrap().txs, block.txs);
        store.apply(&one_utxo(22)).unwrap();
        store.apply(&one_utxo(23)).unwrap();
        drop(store);
        let store = db.open();
        assert_eq!(store.load().unwrap().utxos.len(), 23);
    }

    #[test]
    fn a_connection_killed_mid_write_applies_nothing_and_the_next_write_reconnects() {
        let db = Db::new("postgres");
        let store = db.open();
        let block = payment_block(1000, 100);
        let (go, wait) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            let (store, block) = (&store, &block);
            let writer = s.spawn(move || {
                store.apply_with_block(&one_utxo(1000), move || {
                    wait.recv().unwrap();
                    EncodedBlock::from_record(block)
                })
            });
            let deadline = Instant::now() + Duration::from_secs(10);
            // The write's rows are in, its block not yet: kill its backend.
            while db.pg().psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'plasma-operator' AND state = 'idle in transaction'").unwrap().trim() == "0" {
                assert!(Instant::now() < deadline, "the write never started");
                std::thread::sleep(Duration::from_millis(10));
            }
            go.send(()).unwrap();
            assert!(writer.join().unwrap().is_err(), "a write whose connection died failed");
        });
        assert_eq!((count(&db, "utxos"), count(&db, "block_info")), (0, 0), "nothing applied");
        store.apply(&one_utxo(2)).unwrap();
        assert_eq!(store.load().unwrap().utxos.len(), 1);
    }

    #[test]
    fn a_database_of_a_newer_schema_is_refused_by_name() {
        let db = Db::new("postgres");
        drop(db.open());
        assert_eq!(
            db.pg().psql("SELECT version, name FROM plasma_schema").unwrap().trim(),
            "1|init"
        );
        drop(db.open());
        assert_eq!(count(&db, "plasma_schema"), 1, "a migration applies once");
        db.pg().psql("INSERT INTO plasma_schema (version, name) VALUES (2, 'future')").unwrap();
        match Store::open_postgres(db.pg().url(), &PgOptions::default()) {
            Err(StoreError::UnsupportedSchema { found: 2, supported: 1 }) => {}
            other => panic!("expected UnsupportedSchema, got {other:?}"),
        }
    }

    #[test]
    fn operators_opening_a_new_database_at_once_migrate_it_once() {
        let db = Db::new("postgres");
        let url = db.pg().url().to_owned();
        let opened: Vec<Result<Store, StoreError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| Store::open_postgres(&url, &PgOptions { pool: 1 })))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(opened.iter().all(Result::is_ok), "{opened:?}");
        assert_eq!(count(&db, "plasma_schema"), 1);
    }

    #[test]
    fn an_unreachable_database_is_an_error_without_its_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("postgres://plasma:hunter2secret@127.0.0.1:{port}/plasma");
        let err = Store::open_postgres(&url, &PgOptions { pool: 1 }).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(matches!(err, StoreError::Postgres(_)), "{text}");
        assert!(text.contains(&format!("postgres://plasma@127.0.0.1:{port}/plasma")), "{text}");
        assert!(!text.contains("hunter2secret"), "{text}");
        let err = Store::open_postgres("postgres://u:pw@[bad", &PgOptions::default()).unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn the_store_is_usable_from_a_tokio_worker_thread() {
        let db = Db::new("postgres");
        let store = Arc::new(db.open());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let s = Arc::clone(&store);
        rt.block_on(async move {
            tokio::spawn(async move {
                s.apply(&one_utxo(3)).unwrap();
                s.load().unwrap().utxos.len()
            })
            .await
            .unwrap()
        });
        assert_eq!(
            store.utxo(UtxoPos::new(3, 0, 0).unwrap()).unwrap().map(|o| o.amount),
            Some(U256::from(3))
        );
    }
}
