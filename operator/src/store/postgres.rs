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
//!   restarted to reload its state from the database — it fails closed, never guesses. A
//!   leader does that by itself: its election thread watches [`PgStore::poisoned`], stops
//!   leading, releases the lease and the binary exits 3 to be restarted as a standby (A21b-3,
//!   `leader.rs`).
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
    Batch, BlockRecord, BlockRows, DaHeaderRow, DaReceiptRow, EXITING_KEY, Loaded, Lookup, Rows,
    StoreError, TxRead, block_of, check_wire, decode_output, exiting_from_json,
};
use crate::blocks::{BlockInfo, EncodedBlock, WIRE_CHUNK};
use ::postgres::{
    Client, Config, IsolationLevel, Statement, Transaction, binary_copy::BinaryCopyOutIter,
    fallible_iterator::FallibleIterator, types::Type,
};
use alloy::primitives::{Address, B256};
use parking_lot::Mutex;
use plasma_spec::{Output, UtxoPos};
use std::collections::HashMap;
use std::sync::{
    Arc,
    atomic::{AtomicI32, AtomicU8, Ordering},
    mpsc,
};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// Options of the PostgreSQL store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections (each on its own thread): concurrent store calls beyond this queue.
    pub pool: usize,
    /// How long a store call's caller waits for its answer; past it a write poisons the store
    /// (A21b-8). Default 60 s (`[store] call_deadline_ms`).
    pub call_deadline: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self { pool: 8, call_deadline: DEFAULT_CALL_DEADLINE }
    }
}

impl PgOptions {
    /// The defaults with `pool` connections.
    pub fn pool(pool: usize) -> Self {
        Self { pool, ..Self::default() }
    }
}

pub(crate) mod connect;
pub(crate) mod tls;

/// The migrations, in order: (version, name, SQL). Append only; a shipped one never changes.
/// The PostgreSQL schema this version writes: its last migration. It moves on its own from
/// the embedded store's [`super::SCHEMA`]: schema 5 (the wire form served from the transaction
/// groups) is redb's alone, PostgreSQL still keeps the wire rows.
pub const POSTGRES_SCHEMA: u64 = MIGRATIONS.len() as u64;

const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (2, "lease", include_str!("../../migrations/0002_lease.sql")),
    (3, "lease_row", include_str!("../../migrations/0003_lease_row.sql")),
    (4, "effects_behind", include_str!("../../migrations/0004_effects_behind.sql")),
];

// Migrations are numbered 1, 2, ... in order, so `POSTGRES_SCHEMA` is the last one's number.
const _: () = {
    let mut i = 0;
    while i < MIGRATIONS.len() {
        assert!(MIGRATIONS[i].0 == i as i32 + 1);
        i += 1;
    }
};

/// How long a commit whose answer was lost is looked up before the store gives up and poisons
/// itself.
const RESOLVE_FOR: Duration = Duration::from_secs(30);

/// How long dropping the store waits for its threads to end before detaching those still busy
/// (A21c-5; `impl Drop for PgStore`). A healthy worker ends within milliseconds of the queue
/// closing; one still busy after this is stuck on a job its caller already gave up on.
const DROP_WAIT: Duration = Duration::from_secs(5);

/// The part of [`DROP_WAIT`] the thread dropping the store waits itself (`impl Drop for
/// PgStore`): enough for healthy workers to end, short enough for a tokio worker.
const DROP_AT_ONCE: Duration = Duration::from_millis(50);

/// The advisory lock key migrations run under ("plasma" in ASCII).
const MIGRATION_LOCK: i64 = 0x0000_706c_6173_6d61;

/// The fence: the leader row's epoch, read under a share lock held to the end of the write
/// transaction; the transaction's id, to look its commit up if the answer is lost; the server's
/// identity ([`SERVER`]) the id means something on; and the session's backend pid (to tell a
/// write the server is still executing from a silent one, `PgStore::wait`).
const FENCE: &str = "SELECT epoch, txid_current(), \
                     (SELECT system_identifier FROM pg_control_system())::text \
                     || '/' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8), \
                     pg_backend_pid() \
                     FROM plasma_leader WHERE id = 1 FOR SHARE";

/// Which database history a transaction id belongs to (A21c-4): the cluster's system identifier
/// and the current timeline, as `<sysid>/<timeline in hex>`. A transaction id means something
/// only there. A replica promoted after a failover keeps the system identifier but starts a new
/// timeline, and may hand out again the very ids the old primary used for writes it never
/// received; a server restored from a backup starts a new timeline too; a different cluster has
/// a different identifier. A restart of the same server (the common case of a lost `COMMIT`
/// answer) keeps both, so its `txid_status` is still asked. `pg_walfile_name` refuses to run
/// on a server in recovery: a standby answering is never taken for the primary. Both functions
/// are open to every role.
const SERVER: &str = "(SELECT system_identifier FROM pg_control_system())::text \
                      || '/' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)";

/// How long a caller waits for a store call's answer (A21b-8). Past it the call fails: a read
/// changes nothing; a write that had begun may still commit, so its outcome is unknown and the
/// store **poisons** itself exactly as for a lost `COMMIT` answer (its holder stops leading and
/// a new leader reloads whatever did commit; A21b-3). A write still queued is dropped unrun.
/// The default ([`PgOptions::call_deadline`], `[store] call_deadline_ms`) is generous: a full
/// 2^16-payment block's transaction took 5 s on a loopback database (docs/benchmarks.md), and a
/// lost `COMMIT` answer is looked up for [`RESOLVE_FOR`] inside the call. A database across a slow
/// link may need more: a deadline shorter than a full block's write poisons every leader in turn
/// (each deposed at the same block), so the store warns when a write takes half of it.
pub(crate) const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(60);

/// The least call deadline a configuration may set. Below [`RESOLVE_FOR`] a lost `COMMIT`
/// answer always poisons the store (the deadline runs out before the lookup can settle it):
/// safe, only less available.
pub(crate) const MIN_CALL_DEADLINE: Duration = Duration::from_secs(1);

/// The call deadline for [`PgStore::load`] (a restart reads every UTXO): ten times the calls'.
const LOAD_DEADLINE_FACTOR: u32 = 10;

/// The server ends a session of ours that sits idle inside a transaction this long (A21b-7):
/// a process frozen (SIGSTOP, a paused VM) with a write open would otherwise keep the fence
/// row's share lock for ever (its kernel still answers keepalives). No healthy write of ours is
/// idle that long: its statements follow each other, and a block's encoding, which runs beside
/// the transaction, takes well under a second for a full block.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(10);

/// TCP liveness of the store's sessions, both ends (A21b-7, A21b-8): an idle peer is probed
/// after `IDLE`, every `INTERVAL`, given up after `COUNT` unanswered probes; data unacknowledged
/// for `USER_TIMEOUT` breaks the connection (Linux). Before, a partitioned peer was kept for
/// the kernel's default of about 2 h 11 min.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_COUNT: u32 = 3;
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// A job's progress, shared by its caller (who may stop waiting) and the pool thread: a caller
/// that gives up on a job still `QUEUED` drops it unrun; on one `WRITING` it poisons the store.
const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const WRITING: u8 = 2;
const DONE: u8 = 3;
const ABANDONED: u8 = 4;

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
    /// How a caller past its deadline reaches the server to ask whether its write is still
    /// being executed (`PgStore::wait`, A21c-1): the store's connection settings and TLS.
    probe: (Config, tls::MakeRustls),
}

/// A write past its call deadline is waited for longer while the server shows its session
/// working, up to this many deadlines in all (A21c-1); then its outcome is taken as unknown.
const PROGRESS_DEADLINES: u32 = 10;

/// How long the caller gives the server to say whether a late write's session is working.
const PROGRESS_PROBE: Duration = Duration::from_secs(5);

/// A job sent to the pool: its answer to come, and its progress.
struct Pending<R> {
    answer: mpsc::Receiver<Result<R, StoreError>>,
    state: Arc<AtomicU8>,
    /// The backend pid of the server session running the job's write, once its fence is read
    /// (0 before, and for reads).
    pid: Arc<AtomicI32>,
}

/// The PostgreSQL store: a pool of connection threads.
pub(crate) struct PgStore {
    jobs: Option<mpsc::Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
    /// [`PgOptions::call_deadline`].
    call_deadline: Duration,
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
        // Waited for only so long (A21c-5): a worker can be stuck in a statement on a connection
        // whose peer went silent, which nothing on our side can cancel, and joining it hung the
        // drop — a node stopping — for ever. No caller can be waiting for a job here (a call
        // borrows the store), so a worker still busy after DROP_WAIT runs a job whose caller
        // already gave up on it: it is detached, and ends (its connection closing) when its
        // peer answers or closes.
        //
        // The drop itself waits only DROP_AT_ONCE (healthy workers end within it, so a store
        // dropped and reopened finds its sessions gone); the rest of DROP_WAIT is waited by a
        // thread of its own. Whoever drops the last handle can be a tokio worker (a deposed
        // leader's chain, dropped at the end of its stop), and it must not be parked for
        // seconds on a silent database (found by the DA hang test, audit21_da.rs).
        let at_once = Instant::now() + DROP_AT_ONCE;
        while self.workers.iter().any(|w| !w.is_finished()) && Instant::now() < at_once {
            std::thread::sleep(Duration::from_millis(1));
        }
        let workers = std::mem::take(&mut self.workers);
        if workers.iter().all(JoinHandle::is_finished) {
            for w in workers {
                let _ = w.join();
            }
            return;
        }
        let redacted = self.shared.redacted.clone();
        let reap = move || {
            let deadline = Instant::now() + DROP_WAIT;
            while workers.iter().any(|w| !w.is_finished()) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let (done, busy): (Vec<_>, Vec<_>) =
                workers.into_iter().partition(JoinHandle::is_finished);
            for w in done {
                let _ = w.join();
            }
            if !busy.is_empty() {
                warn!(target: "operator::store", url = %redacted, busy = busy.len(), waited = ?DROP_WAIT, "store threads still busy when the store closed (stuck on a silent connection?): detached; each ends when its peer answers or closes");
            }
        };
        // If no thread can be started, the workers are detached as they are.
        let _ = std::thread::Builder::new().name("store-pg-reaper".into()).spawn(reap);
    }
}

/// One worker's connection and its prepared statements.
struct Conn {
    config: Config,
    /// TLS as the URL's `sslmode` asks (`tls` module).
    tls: tls::MakeRustls,
    client: Option<Client>,
    stmts: HashMap<&'static str, Statement>,
    shared: Arc<Shared>,
    /// The running job's progress (`QUEUED`…): [`Conn::write`] marks it `WRITING` before it
    /// begins, unless its caller already gave up.
    job: Option<Arc<AtomicU8>>,
    /// Where [`Conn::write`] tells the running job's caller which server session runs it (its
    /// backend pid, from the fence; 0 before), so a caller past its deadline can ask the server
    /// whether that session is still executing (`PgStore::wait`).
    job_pid: Option<Arc<AtomicI32>>,
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
        None => tls::with_causes(e),
    }
}

/// Whether a server error ends the session (FATAL, PANIC) rather than answering a statement.
fn ends_session(db: &::postgres::error::DbError) -> bool {
    matches!(
        db.parsed_severity(),
        Some(::postgres::error::Severity::Fatal | ::postgres::error::Severity::Panic)
    ) || matches!(db.severity(), "FATAL" | "PANIC")
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

    /// A new session, set up as ours (below), all within the connect deadline (A21c-5,
    /// `connect` module): a connection the server (or a pooler or proxy on its path) accepts and
    /// then never answers gives this pool thread back after `connect_timeout` (10 s) with an
    /// error naming the URL, instead of holding it for ever.
    fn connect(&self) -> Result<Client, StoreError> {
        let redacted = self.shared.redacted.clone();
        let url = redacted.clone();
        connect::connect(&self.config, &self.tls, &url, &connect::STORE, move |client| {
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
            // The server's side of A21b-7: it ends a session of ours left idle inside a
            // transaction (a frozen process holding the fence's share lock), and probes a silent
            // peer instead of keeping it for hours. (A new leader also ends such sessions itself
            // once the lease has run out: `leader.rs`, `LeaseDb::take`.)
            client.batch_execute(&format!(
                "SET idle_in_transaction_session_timeout = {}; SET tcp_keepalives_idle = {}; \
                 SET tcp_keepalives_interval = {}; SET tcp_keepalives_count = {}; \
                 SET tcp_user_timeout = {}",
                IDLE_IN_TRANSACTION.as_millis(),
                KEEPALIVE_IDLE.as_secs(),
                KEEPALIVE_INTERVAL.as_secs(),
                KEEPALIVE_COUNT,
                TCP_USER_TIMEOUT.as_millis(),
            ))
        })
        .map_err(|e| StoreError::Postgres(e.to_string()))
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
        // From here the write may commit: its caller, if it gives up waiting, must treat the
        // outcome as unknown (`PgStore::wait`). If the caller already gave up, nothing is begun.
        if let Some(job) = &self.job
            && job
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                    matches!(s, RUNNING | WRITING).then_some(WRITING)
                })
                .is_err()
        {
            return Err(StoreError::Postgres(
                "the caller stopped waiting before this write began: nothing written".into(),
            ));
        }
        let ours = *self.shared.fence.lock();
        let job_pid = self.job_pid.clone();
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
            let (current, xid, server) = match fence {
                Some(row) => {
                    if let Some(job) = &job_pid {
                        job.store(row.get::<_, i32>(3), Ordering::SeqCst);
                    }
                    (
                        Some(row.get::<_, i64>(0) as u64),
                        row.get::<_, i64>(1),
                        row.get::<_, String>(2),
                    )
                }
                None => (None, 0, String::new()),
            };
            if ours.is_none() || current != ours {
                // Dropped: rolled back, nothing changed.
                return Err(StoreError::Fenced { ours, current });
            }
            let value = f(&mut tx, stmts)?;
            break (value, tx.commit().map_err(|e| (e, xid, server)));
        };
        match commit {
            Ok(()) => Ok(value),
            // The server answered the COMMIT with an error of the statement: it did not happen.
            // A FATAL or PANIC ends the session instead (an administrator's or a takeover's
            // `pg_terminate_backend`, a crash): PostgreSQL holds interrupts from its commit
            // record to the release of the locks, so such an answer should mean "not committed"
            // too, but asking costs one query and rests on no reading of the server's code.
            Err((e, _, _)) if e.as_db_error().is_some_and(|db| !ends_session(db)) => Err(e.into()),
            Err((e, xid, server)) => self.resolve(xid, &server, &e).map(|()| value),
        }
    }

    /// The connection broke with `COMMIT` sent: ask the server whether transaction `xid`
    /// committed; poison the store if it cannot be learnt. Only the server the write went to,
    /// on the same history (`server`, see [`SERVER`]), can say: any other answer is "unknown".
    fn resolve(
        &mut self,
        xid: i64,
        server: &str,
        cause: &::postgres::Error,
    ) -> Result<(), StoreError> {
        self.client = None;
        let redacted = self.shared.redacted.clone();
        warn!(target: "operator::store", url = %redacted, xid, error = %cause, "the answer to a commit was lost: asking the database whether it committed");
        let deadline = Instant::now() + RESOLVE_FOR;
        let ask = format!("SELECT txid_status($1), {SERVER}");
        let mut elsewhere = None;
        let status = loop {
            let asked = self.client().and_then(|c| {
                c.query_one(&ask, &[&xid])
                    .map(|row| (row.get::<_, Option<String>>(0), row.get::<_, String>(1)))
                    .map_err(Into::into)
            });
            match asked {
                // Another cluster, or the same one on another timeline (a failover, a restore):
                // the id may name someone else's transaction there (A21c-4).
                Ok((_, now)) if now != server => {
                    elsewhere = Some(now);
                    break None;
                }
                Ok((Some(s), _)) if s == "in progress" => {}
                Ok((status, _)) => break status,
                Err(_) => self.client = None,
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if let Some(now) = &elsewhere {
            warn!(target: "operator::store", url = %redacted, xid, then = %server, now = %now, "the database answering is not the one the write went to (another cluster or timeline: a failover?); its transaction ids say nothing about ours");
        }
        match status.as_deref() {
            Some("committed") => {
                info!(target: "operator::store", xid, "the commit had happened");
                Ok(())
            }
            Some("aborted") => Err(StoreError::Postgres(format!(
                "the connection broke during COMMIT ({cause}); the transaction was rolled back"
            ))),
            _ => {
                let asked = match &elsewhere {
                    Some(now) => format!(
                        "the database answering now is another one ({now}, the write went to \
                         {server}: a failover?)"
                    ),
                    None => "the database could not be asked".to_owned(),
                };
                let why = format!(
                    "the outcome of a commit is unknown (the connection to {redacted} broke \
                     during COMMIT: {cause}, and {asked}): this store refuses every further \
                     write; restart the operator to reload its state"
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

/// A block's rows ([`BlockRows`]: the same rows redb stores, so both serve the same bytes).
fn write_block(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    b: &EncodedBlock,
) -> Result<(), StoreError> {
    let rows = BlockRows::of(b);
    let blknum = rows.blknum as i64;
    let st = prepared(stmts, tx, PUT_INFOS)?;
    tx.execute(&st, &[&vec![blknum], &vec![rows.info.as_slice()]])?;
    for (sql, data) in
        [(PUT_WIRE, &rows.wire), (PUT_TILES, &rows.tiles), (PUT_TX_ROWS, &rows.tx_rows)]
    {
        let st = prepared(stmts, tx, sql)?;
        tx.execute(&st, &[&blknum, data])?;
    }
    let st = prepared(stmts, tx, PUT_TOP)?;
    tx.execute(&st, &[&blknum, &rows.top])?;
    let st = prepared(stmts, tx, PUT_OFFSETS)?;
    tx.execute(&st, &[&blknum, &rows.tx_offsets])?;
    Ok(())
}

/// A batch's rows ([`Rows`]: each key once, as one statement may touch a row only once), one
/// bulk statement a table, in redb's order (spent before created, mempool adds before
/// removals). Only the binding is PostgreSQL's: positions as 16 big-endian bytes (they sort
/// as the positions do), numbers as `bigint` (u64 bit for bit).
fn write_rows(
    tx: &mut Transaction<'_>,
    stmts: &mut HashMap<&'static str, Statement>,
    rows: &Rows,
) -> Result<(), StoreError> {
    if !rows.spent.is_empty() {
        let spent: Vec<Vec<u8>> = rows.spent.iter().map(|p| pos_key(*p)).collect();
        let st = prepared(stmts, tx, DEL_UTXOS)?;
        tx.execute(&st, &[&spent])?;
    }
    if !rows.created.is_empty() {
        let pos: Vec<Vec<u8>> = rows.created.iter().map(|(p, _, _)| pos_key(*p)).collect();
        let owners: Vec<&[u8]> = rows.created.iter().map(|(_, o, _)| o.as_slice()).collect();
        let outputs: Vec<&[u8]> = rows.created.iter().map(|(_, _, b)| b.as_slice()).collect();
        let st = prepared(stmts, tx, PUT_UTXOS)?;
        tx.execute(&st, &[&pos, &owners, &outputs])?;
    }
    if !rows.infos.is_empty() {
        let blknums: Vec<i64> = rows.infos.iter().map(|(b, _)| *b as i64).collect();
        let infos: Vec<&[u8]> = rows.infos.iter().map(|(_, i)| i.as_slice()).collect();
        let st = prepared(stmts, tx, PUT_INFOS)?;
        tx.execute(&st, &[&blknums, &infos])?;
    }
    if !rows.txs.is_empty() {
        let hashes: Vec<&[u8]> = rows.txs.iter().map(|(h, _, _)| h.as_slice()).collect();
        let blknums: Vec<i64> = rows.txs.iter().map(|(_, b, _)| *b as i64).collect();
        let indexes: Vec<i32> = rows.txs.iter().map(|(_, _, i)| *i as i32).collect();
        let st = prepared(stmts, tx, PUT_TXS)?;
        tx.execute(&st, &[&hashes, &blknums, &indexes])?;
    }
    if !rows.mempool_add.is_empty() {
        let seqs: Vec<i64> = rows.mempool_add.iter().map(|(s, _)| *s as i64).collect();
        let bytes: Vec<&[u8]> = rows.mempool_add.iter().map(|(_, b)| b.as_slice()).collect();
        let st = prepared(stmts, tx, PUT_MEMPOOL)?;
        tx.execute(&st, &[&seqs, &bytes])?;
    }
    if !rows.mempool_remove.is_empty() {
        let seqs: Vec<i64> = rows.mempool_remove.iter().map(|s| *s as i64).collect();
        let st = prepared(stmts, tx, DEL_MEMPOOL)?;
        tx.execute(&st, &[&seqs])?;
    }
    if !rows.meta.is_empty() {
        let keys: Vec<&str> = rows.meta.iter().map(|(k, _)| *k).collect();
        let values: Vec<i64> = rows.meta.iter().map(|(_, v)| *v as i64).collect();
        let st = prepared(stmts, tx, PUT_META)?;
        tx.execute(&st, &[&keys, &values])?;
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
        let tls::PgConnect { mut config, tls, mode } =
            tls::parse(url).map_err(|e| StoreError::Postgres(format!("{redacted}: {e}")))?;
        if !mode.verifies() && !tls::is_loopback(&config) {
            warn!(target: "operator::store", url = %redacted, ?mode, "the database is reached over the network without a verified certificate: anyone on the path can read and change the session; use sslmode=verify-full (docs/operations.md)");
        }
        config
            .application_name("plasma-operator")
            .connect_timeout(Duration::from_secs(10))
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_COUNT)
            .tcp_user_timeout(TCP_USER_TIMEOUT);
        let shared = Arc::new(Shared {
            fence: Mutex::new(None),
            poisoned: Mutex::new(None),
            redacted,
            probe: (config.clone(), tls.clone()),
        });
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut workers = Vec::new();
        for i in 0..options.pool.max(1) {
            let queue = Arc::clone(&queue);
            let mut conn = Conn {
                config: config.clone(),
                tls: tls.clone(),
                client: None,
                stmts: HashMap::new(),
                shared: Arc::clone(&shared),
                job: None,
                job_pid: None,
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
        let call_deadline = options.call_deadline;
        let store = Self { jobs: Some(jobs), workers, shared, call_deadline };
        let redacted = store.shared.redacted.clone();
        store.call(move |conn| {
            let client = conn.client()?;
            migrate(client, &redacted)
        })?;
        Ok(store)
    }

    /// Sends `f` to the pool; the reply comes on the returned channel, [`Self::wait`] for it.
    fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<Pending<R>, StoreError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let state = Arc::new(AtomicU8::new(QUEUED));
        let progress = Arc::clone(&state);
        let pid = Arc::new(AtomicI32::new(0));
        let session = Arc::clone(&pid);
        let job: Job = Box::new(move |conn| {
            // Given up on before it started: never run (a write is then surely not done).
            if progress
                .compare_exchange(QUEUED, RUNNING, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                return;
            }
            conn.job = Some(Arc::clone(&progress));
            conn.job_pid = Some(session);
            let result = f(conn);
            conn.job = None;
            conn.job_pid = None;
            progress.store(DONE, Ordering::SeqCst);
            let _ = reply.send(result);
        });
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StoreError::Postgres("the store's threads have stopped".into()))?;
        Ok(Pending { answer, state, pid })
    }

    /// Waits for a job's answer at most `within` (A21b-8: against a database that stopped
    /// answering, a call used to wait for ever). Giving up on a write that had begun leaves its
    /// outcome unknown: the store is poisoned (every later write refused, the leader stops
    /// leading), never guessing either way — as for a lost `COMMIT` answer.
    ///
    /// A deadline counts time, not silence (A21c-1): a write the server is still executing
    /// (a full block on a slow disk, a `COMMIT` waiting for a synchronous standby) would be
    /// poisoned and then commit, and every leader in turn would stand down at the same block.
    /// So before giving up on a write that has begun, the caller asks the server, on a fresh
    /// connection and within [`PROGRESS_PROBE`], what the write's session is doing: while it is
    /// executing or waiting for our next statement (`active`, `idle in transaction`) the wait
    /// goes on, a deadline's quarter at a time, up to [`PROGRESS_DEADLINES`] deadlines in all.
    /// A server that does not answer the question, or shows the session gone, is the silence
    /// the deadline is for (A21b-8): the outcome is unknown and the store is poisoned, as before.
    /// A session stuck for ever in a live server is still bounded by the cap.
    fn wait<R>(&self, pending: &Pending<R>, within: Duration) -> Result<R, StoreError> {
        let stopped = || {
            StoreError::Postgres(
                "a store thread stopped before answering (a bug: see the log)".into(),
            )
        };
        let started = Instant::now();
        let cap = within.saturating_mul(PROGRESS_DEADLINES);
        let mut next = within;
        loop {
            match pending.answer.recv_timeout(next) {
                Ok(result) => return result,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(stopped()),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            let pid = pending.pid.load(Ordering::SeqCst);
            if pending.state.load(Ordering::SeqCst) != WRITING
                || pid == 0
                || started.elapsed() >= cap
            {
                break;
            }
            match self.session_state(pid) {
                Some(state) if state == "active" || state == "idle in transaction" => {
                    warn!(target: "operator::store", url = %self.shared.redacted, pid, %state, took = ?started.elapsed(), deadline = ?within, "a write is past its deadline but the database is still working on it: waiting (raise [store] call_deadline_ms)");
                    next = (within / 4).max(Duration::from_millis(100));
                }
                _ => break,
            }
        }
        match pending.state.swap(ABANDONED, Ordering::SeqCst) {
            // Answered just now.
            DONE => pending.answer.recv().map_err(|_| stopped())?,
            WRITING => {
                let why = format!(
                    "a write to {} got no answer within {:?} (deadline {within:?}): \
                     its outcome is unknown, so this store refuses every further write; \
                     restart the operator to reload its state",
                    self.shared.redacted,
                    started.elapsed(),
                );
                error!(target: "operator::store", "{why}");
                self.shared.poisoned.lock().get_or_insert_with(|| why.clone());
                Err(StoreError::Postgres(why))
            }
            _ => Err(StoreError::Postgres(format!(
                "the database {} did not answer within {within:?}",
                self.shared.redacted
            ))),
        }
    }

    /// The `pg_stat_activity` state of server session `pid`, asked on a fresh connection on a
    /// thread of its own and waited for at most [`PROGRESS_PROBE`]: `None` when the server does
    /// not answer in time or no longer has the session. (A thread that stays stuck on a silent
    /// server is left behind; it ends with its connection. It exists only once a write has
    /// already outlived its deadline.) Our sessions' states are visible to our own role.
    fn session_state(&self, pid: i32) -> Option<String> {
        let (config, tls) = self.shared.probe.clone();
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("store-pg-progress".into())
            .spawn(move || {
                let mut config = config;
                config.connect_timeout(PROGRESS_PROBE);
                let state = config.connect(tls).ok().and_then(|mut c| {
                    c.query_opt("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
                        .ok()
                        .flatten()
                        .and_then(|row| row.get::<_, Option<String>>(0))
                });
                let _ = tx.send(state);
            })
            .ok()?;
        rx.recv_timeout(PROGRESS_PROBE).ok().flatten()
    }

    /// Runs `f` on a pool thread and waits for its answer, at most the call deadline.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.call_within(self.call_deadline, f)
    }

    /// [`Self::call`] with its own deadline.
    fn call_within<R: Send + 'static>(
        &self,
        within: Duration,
        f: impl FnOnce(&mut Conn) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let pending = self.submit(f)?;
        let started = Instant::now();
        let answer = self.wait(&pending, within);
        self.warn_if_slow(started.elapsed(), within);
        answer
    }

    /// A call that took more than half its deadline is one slower database away from poisoning
    /// the store (and, on a write, deposing its leader): said before it happens.
    fn warn_if_slow(&self, took: Duration, within: Duration) {
        if took > within / 2 {
            warn!(target: "operator::store", url = %self.shared.redacted, ?took, deadline = ?within, "a store call took more than half its deadline; raise [store] call_deadline_ms before a slower one poisons the store");
        }
    }

    pub(crate) fn set_fence(&self, epoch: u64) {
        *self.shared.fence.lock() = Some(epoch);
        info!(target: "operator::store", epoch, "writes fenced by the leader epoch");
    }

    /// Why this store refuses every write for good (`Conn::resolve`), if it does.
    pub(crate) fn poisoned(&self) -> Option<String> {
        self.shared.poisoned.lock().clone()
    }

    /// [`Self::poisoned`] as a probe another thread can keep and call (the election thread,
    /// A21b-3): it holds only the state the store's threads share, never the store itself, so
    /// dropping it can never wait for a pool thread stuck on a silent database.
    pub(crate) fn poison_probe(&self) -> impl Fn() -> Option<String> + Send + Sync + 'static {
        let shared = Arc::clone(&self.shared);
        move || shared.poisoned.lock().clone()
    }

    pub(crate) fn apply(&self, batch: &Batch) -> Result<(), StoreError> {
        let rows = Rows::of(batch)?;
        // Owned by the pool thread's job: the blocks are copied (deposit blocks, migrations;
        // a produced block comes by `apply_with_block` without a copy).
        let blocks = batch.blocks.clone();
        self.call(move |conn| {
            conn.write(|tx, stmts| {
                for b in &blocks {
                    write_block(tx, stmts, b)?;
                }
                write_rows(tx, stmts, &rows)
            })
        })
    }

    /// The batch's rows are written on a pool thread while `encode` runs on another; the
    /// block's rows follow in the same transaction once encoded. An encoding that fails drops
    /// its channel: the transaction is rolled back, nothing of the batch is durable (OP-3).
    ///
    /// Why the encoding overlaps the transaction instead of preceding it (the audit's
    /// "encode before the transaction", A21b-7 defence in depth): it saves a full block's
    /// encoding (about 240 ms of the 250 ms goal, docs/benchmarks.md) on every block. What it
    /// costs is that the transaction may wait for the encoder holding the fence's share lock. That
    /// wait is bounded: the rows usually take longer than the encoding (410 ms against 240 ms for
    /// a full block); while it waits the session sends a no-op statement every quarter of
    /// [`IDLE_IN_TRANSACTION`], so a slow encoder is waited for (A21c-2) while a frozen process
    /// is still ended by the server after 10 s; the call deadline bounds the whole (and
    /// [`Self::wait`]'s cap a write the server keeps working on); and a new leader ends the
    /// sessions holding the fence once the lease has run out. A session ended that way never
    /// acknowledged anything: the block is made again from the mempool.
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
                    // Waiting for the encoder, the session would be idle in its transaction and
                    // ended by the server after IDLE_IN_TRANSACTION (A21c-2: a slow encoder
                    // then stalled the chain at that block). A live process says so with a
                    // no-op statement every quarter of it; a frozen one says nothing and is
                    // still ended.
                    let block = loop {
                        match block_rx.recv_timeout(IDLE_IN_TRANSACTION / 4) {
                            Ok(block) => break block,
                            Err(mpsc::RecvTimeoutError::Timeout) => tx.batch_execute("SELECT 1")?,
                            Err(mpsc::RecvTimeoutError::Disconnected) => {
                                return Err(StoreError::Corrupt {
                                    what: "block",
                                    reason: "its encoding failed".into(),
                                });
                            }
                        }
                    };
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
                    // The transaction cannot commit without its block: waited for only so the
                    // rollback is done before the caller retries, never past the deadline.
                    let _ = answer.answer.recv_timeout(self.call_deadline);
                    return Err(e);
                }
            };
            let t = Instant::now();
            let _ = block_tx.send(encoded);
            let answer = self.wait(&answer, self.call_deadline);
            self.warn_if_slow(t.elapsed(), self.call_deadline);
            let (info, rows_took) = answer?;
            Ok((info, rows_took, t.elapsed()))
        })
    }

    pub(crate) fn load(&self) -> Result<Loaded, StoreError> {
        self.call_within(self.call_deadline * LOAD_DEADLINE_FACTOR, |conn| {
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
                    loaded.exiting = exiting_from_json(row.get::<_, &[u8]>(0))?;
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
        block_of(&info, &wire).map(Some)
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
                check_wire(&info, &wire)?;
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
        let value = receipt.to_value();
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
                        DaReceiptRow::from_value(blknum, row.get::<_, i32>(0) as u16, row.get(1))
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
                let tile = match TxRead::tile(&info, index) {
                    Ok(tile) => tile as i32,
                    Err(answer) => return Ok(answer),
                };
                let tile = tx.query_opt(
                    "SELECT data FROM block_tiles WHERE blknum = $1 AND row_no = $2",
                    &[&key, &tile],
                )?;
                let top =
                    tx.query_opt("SELECT data FROM block_tree_top WHERE blknum = $1", &[&key])?;
                let offsets =
                    tx.query_opt("SELECT data FROM block_tx_offsets WHERE blknum = $1", &[&key])?;
                let mut read = TxRead::new(
                    info,
                    index,
                    tile.as_ref().map(|r| r.get(0)),
                    top.as_ref().map(|r| r.get(0)),
                    offsets.as_ref().map(|r| r.get(0)),
                )?;
                let (first, last) = (read.first_row() as i32, read.last_row() as i32);
                for r in tx.query(
                    "SELECT row_no, data FROM block_txs \
                     WHERE blknum = $1 AND row_no BETWEEN $2 AND $3 ORDER BY row_no",
                    &[&key, &first, &last],
                )? {
                    read.add_row(r.get::<_, i32>(0) as u32, r.get(1))?;
                }
                tx.commit()?;
                read.finish()
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

    /// [`PostgresStore::tx_location`] of each of `hashes`, in one query.
    pub(crate) fn tx_locations(
        &self,
        hashes: &[B256],
    ) -> Result<Vec<Option<(u64, u32)>>, StoreError> {
        let keys: Vec<Vec<u8>> = hashes.iter().map(|h| h.to_vec()).collect();
        let found: HashMap<Vec<u8>, (u64, u32)> = self.call(move |conn| {
            conn.read(|client, stmts| {
                let st = prepared_c(
                    stmts,
                    client,
                    "SELECT hash, blknum, idx FROM txs WHERE hash = ANY($1::bytea[])",
                )?;
                Ok(client
                    .query(&st, &[&keys])?
                    .into_iter()
                    .map(|row| {
                        let at = (row.get::<_, i64>(1) as u64, row.get::<_, i32>(2) as u32);
                        (row.get::<_, Vec<u8>>(0), at)
                    })
                    .collect())
            })
        })?;
        Ok(hashes.iter().map(|h| found.get(h.as_slice()).copied()).collect())
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

    pub(crate) fn exiting(&self) -> Result<plasma_spec::ExitingOutputs, StoreError> {
        self.call(|conn| {
            conn.read(|client, _| {
                let row = client
                    .query_opt("SELECT value FROM exiting WHERE key = $1", &[&EXITING_KEY])?;
                row.map_or_else(
                    || Ok(plasma_spec::ExitingOutputs::default()),
                    |row| exiting_from_json(row.get::<_, &[u8]>(0)),
                )
            })
        })
    }

    pub(crate) fn mempool_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        // Sequence numbers are stored `as i64` and stay far below 2^63: -1 is before them all,
        // and nothing follows i64::MAX.
        let after = match after {
            None => -1,
            Some(a) => match i64::try_from(a) {
                Ok(a) => a,
                Err(_) => return Ok(Vec::new()),
            },
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |conn| {
            conn.read(|client, stmts| {
                let st = prepared_c(
                    stmts,
                    client,
                    "SELECT seq, bytes FROM mempool WHERE seq > $1 ORDER BY seq LIMIT $2",
                )?;
                Ok(client
                    .query(&st, &[&after, &limit])?
                    .iter()
                    .map(|row| (row.get::<_, i64>(0) as u64, row.get(1)))
                    .collect())
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
        let other = Store::open_postgres(db.pg().url(), &PgOptions::pool(1)).unwrap();
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
            db.pg()
                .psql("SELECT version, name FROM plasma_schema ORDER BY version")
                .unwrap()
                .trim(),
            "1|init\n2|lease\n3|lease_row\n4|effects_behind"
        );
        assert_eq!(
            db.pg().psql("SELECT value FROM meta WHERE key = 'effects_pending'").unwrap().trim(),
            "0"
        );
        drop(db.open());
        assert_eq!(count(&db, "plasma_schema"), 4, "a migration applies once");
        db.pg().psql("INSERT INTO plasma_schema (version, name) VALUES (5, 'future')").unwrap();
        match Store::open_postgres(db.pg().url(), &PgOptions::default()) {
            Err(StoreError::UnsupportedSchema { found: 5, supported: 4 }) => {}
            other => panic!("expected UnsupportedSchema, got {other:?}"),
        }
    }

    #[test]
    fn operators_opening_a_new_database_at_once_migrate_it_once() {
        let db = Db::new("postgres");
        let url = db.pg().url().to_owned();
        let opened: Vec<Result<Store, StoreError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| Store::open_postgres(&url, &PgOptions::pool(1))))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(opened.iter().all(Result::is_ok), "{opened:?}");
        assert_eq!(count(&db, "plasma_schema"), MIGRATIONS.len() as u64);
    }

    #[test]
    fn an_unreachable_database_is_an_error_without_its_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("postgres://plasma:hunter2secret@127.0.0.1:{port}/plasma");
        let err = Store::open_postgres(&url, &PgOptions::pool(1)).unwrap_err();
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

    /// A21b-8: a store call waits at most its deadline. A write that began and got no answer
    /// in time may still commit (here it does, once the lock it waits on goes): the store is
    /// poisoned rather than report it failed; a write still queued when its caller gave up is
    /// never run.
    #[test]
    fn a_write_past_its_deadline_poisons_the_store_and_a_queued_one_never_runs() {
        let db = Db::new("postgres");
        let store = PgStore::open(db.pg().url(), &PgOptions::pool(1)).unwrap();
        db.pg()
            .psql("INSERT INTO plasma_leader VALUES (1, 1, 't', 'http://t', now() + interval '1 hour')")
            .unwrap();
        store.set_fence(1);
        // Another session holds the UTXO table: the store's write waits inside its transaction.
        let mut locker = ::postgres::Client::connect(db.pg().url(), ::postgres::NoTls).unwrap();
        let mut lock = locker.transaction().unwrap();
        lock.batch_execute("LOCK TABLE utxos IN ACCESS EXCLUSIVE MODE").unwrap();

        let write = |n| {
            let rows = Rows::of(&one_utxo(n)).unwrap();
            store.submit(move |conn| conn.write(|tx, stmts| write_rows(tx, stmts, &rows))).unwrap()
        };
        let first = write(1);
        let queued = write(2); // behind `first` on the one connection
        let deadline = Instant::now() + Duration::from_secs(10);
        while first.state.load(Ordering::SeqCst) != WRITING {
            assert!(Instant::now() < deadline, "the write never began");
            std::thread::sleep(Duration::from_millis(10));
        }
        let err = store.wait(&first, Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("outcome is"), "{err}");
        assert!(store.poisoned().is_some(), "a begun write past its deadline poisons");
        let err = store.wait(&queued, Duration::from_millis(50)).unwrap_err();
        assert!(err.to_string().contains("did not answer"), "{err}");

        lock.rollback().unwrap();
        // The abandoned write commits after all (why the store could not call it failed); the
        // queued one never ran.
        let deadline = Instant::now() + Duration::from_secs(10);
        while count(&db, "utxos") == 0 {
            assert!(Instant::now() < deadline, "the first write never committed");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(count(&db, "utxos"), 1, "the queued write must never run");
        assert!(store.apply(&one_utxo(3)).is_err(), "every later write is refused");
        assert!(store.utxo(UtxoPos::new(1, 0, 0).unwrap()).unwrap().is_some(), "reads go on");
    }
}
