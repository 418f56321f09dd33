//! Leader election among operators sharing one PostgreSQL store (issue #21; spec: OP-HA-1..6 in
//! spec/06-operator.md).
//!
//! Every process on a PostgreSQL store runs [`HaNode`]: it serves the standby API at once (reads
//! from the store, writes refused with `NotLeader`), and an election thread of its own (the
//! `postgres` client is synchronous and must never run on a tokio worker) tries to take the lease
//! every `lease/5`. Two rows (migration 0002, A21-1):
//!
//! - `plasma_lease(id = 1, epoch, holder, url, expires_at)` — the **lease** (liveness): who holds
//!   it, where wallets reach them, until when by the **database's** clock. Renewals, releases
//!   and every read of the expiry touch only this row.
//! - `plasma_leader(id = 1, epoch, …)` — the **fence** (safety): the epoch every write of the
//!   store checks. Only a takeover changes it.
//!
//! Winning — the lease row is missing, or its `expires_at` is behind the database's clock — moves
//! both to a new epoch in one transaction ([`LeaseDb::try_acquire`] says how and in what order).
//! The winner fences the store to that epoch ([`Store::set_fence`]), opens the chain exactly as a
//! restarted operator does (the store, then L1's `nextChildBlock`), starts every task and serves
//! the full API on the same port. It renews every `lease/5`; a renewal that finds another epoch
//! (in either row), or no renewal before the lease runs out by our own monotonic clock, makes it
//! stop leading at once: writes refused, tasks stopped, and [`HaNode::deposed`] resolves so the
//! binary exits (its supervisor restarts it as a standby).
//!
//! Why two rows: every write holds `FOR SHARE` on the fence row until it commits. When the
//! renewal was an `UPDATE` of that same row it queued behind every write in flight, so a write
//! longer than a lease (a full block on a slow database) deposed the very leader making it, and
//! the next leader, reloading the same work, could do the same for ever (audit A21-1). A renewal
//! now never waits for a write.
//!
//! # Why two leaders cannot corrupt the chain (the safety argument, OP-HA-2, OP-HA-3)
//!
//! The lease is only *liveness*: clocks, pauses (GC, swap, a stopped VM) and partitions can make
//! two processes both believe they lead for a while — after the split just as before it. Safety
//! rests on **fencing**, which needs no clock: every write transaction of the store first takes
//! `SELECT epoch FROM plasma_leader WHERE id = 1 FOR SHARE` and aborts (`StoreError::Fenced`)
//! unless it equals the epoch the process was given. A takeover moves that epoch with an
//! `UPDATE plasma_leader … WHERE epoch = <the one it read>`, which needs the row exclusively and
//! so **waits for every in-flight write's share lock** (this wait is the whole of the safety:
//! the split keeps it, because the fence row is still where both the writes and the takeover
//! meet). Hence every write of the old leader either committed before the takeover (and the new
//! leader, which loads the store only after it holds the new epoch, sees it) or starts after it
//! and is refused. Two processes may both *believe* they lead; at most one can *write*: the one
//! whose epoch the fence row holds, and the fence moves only by a takeover that waited for the
//! previous holder's writes. Two takeovers cannot both win one epoch: they queue on the lease
//! row's `FOR UPDATE`, and the fence's `WHERE epoch = <read>` is re-checked on the newest row
//! after the wait (READ COMMITTED), so the second finds it moved and gives up. So:
//!
//! - *No acknowledged transaction is lost*: the operator acknowledges a submission only after
//!   its write committed (OP-2); committed before the takeover means loaded by the new leader.
//! - *None is applied twice*: the new leader's state is exactly the committed state; the old
//!   leader can no longer commit anything, so nothing it holds in memory reaches the store.
//! - *No two different roots for one block*: a root is sent only for a block already persisted
//!   (OP-3, persist before commit). A deposed leader cannot persist a block, so every root it can
//!   still send is for a block the new leader loaded too — the same block, the same root — and
//!   the contract accepts only `nextChildBlock`, once. The new leader resumes from L1's
//!   `nextChildBlock` as any restarted operator does (OP-4).
//! - *A standby cannot redirect a wallet*: `NotLeader` names the leader's URL, but wallets go only
//!   to URLs in their own configured list (client-sdk), so a lying standby can at worst make a
//!   wallet try the next operator it already trusts.
//!
//! What the split changes for an attacker or a fault: a renewal no longer proves that the
//! leader's writes are moving (it never did). So each renewal first probes the store's kind of
//! connection under the renewal's deadline ([`LeaseDb::probe_store`], A21b-8), and every store
//! call has a deadline past which a begun write poisons the store (`[store] call_deadline_ms`,
//! 60 s by default; a poisoned leader stops leading, A21b-3). A takeover no longer waits behind
//! a write the old epoch left open: once the lease has run out it ends the sessions holding the
//! fence ([`LeaseDb::end_fence_holders`], A21b-7, with why that is as safe as waiting); a
//! write of the old leader that is merely slow is ended the same way, and the new leader reloads
//! whatever committed. A standby takes a row lock only once the
//! lease has run out (it checks with a plain read first), so a standby that hangs mid-check
//! cannot hold up a live leader's renewal; a takeover transaction abandoned by a silent process
//! is ended by the server after a lease (`idle_in_transaction_session_timeout`).
//!
//! What the lease adds: at most one process *acts* as leader at a time in the normal case, and a
//! deposed one stops within one renewal period, so it does not keep sending fee bumps for roots
//! the new leader also sends (harmless — the same root, refused once one lands — but wasted gas).

use crate::{
    api::{self, ApiContext, Common},
    config::{Config, redact_store_url},
    node::{Leading, NodeError, Server, bind},
    store::{Store, StoreError, pg_connect},
};
use serde::Serialize;
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Why the election could not run.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The database refused or failed (the message never carries the URL's password).
    #[error("lease database: {0}")]
    Postgres(String),
    /// The election thread could not be started.
    #[error("election thread: {0}")]
    Thread(String),
}

impl From<postgres::Error> for LeaseError {
    fn from(e: postgres::Error) -> Self {
        // The server's own code and message (postgres::Error's Display says only "db error" for
        // them: a statement timeout, a lock wait and a refused login looked alike, audit A21-4);
        // else the I/O failure. Never the configuration, where the password lives.
        match e.as_db_error() {
            Some(db) => Self::Postgres(format!(
                "{} ({}): {}",
                db.severity(),
                db.code().code(),
                db.message()
            )),
            None => Self::Postgres(crate::store::pg_tls::with_causes(&e)),
        }
    }
}

/// The lease row as a process read it (`/v1/status` `leader`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderInfo {
    /// The takeover count: each new leader bumps it (OP-HA-2).
    pub epoch: u64,
    /// The holder's node id.
    pub holder: String,
    /// The API URL the holder advertises.
    pub url: String,
    /// When the lease runs out unless renewed, by the database's clock (RFC 3339, UTC).
    pub expires_at: String,
}

/// This process's part in the election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not leading; `leader` is the lease row as last read (`None`: no row, or unreadable).
    Standby {
        /// The current holder.
        leader: Option<LeaderInfo>,
    },
    /// Leading in `epoch`.
    Leader {
        /// Our epoch (the store is fenced to it).
        epoch: u64,
        /// Our lease row.
        lease: LeaderInfo,
    },
    /// Led in `epoch` and lost it: the process must exit.
    Deposed {
        /// The epoch we led in.
        epoch: u64,
        /// Why (another epoch found, or no renewal in time).
        reason: String,
    },
}

/// What `/v1/status` and `/metrics` show of the election.
#[derive(Clone, Debug)]
pub(crate) struct HaSnapshot {
    pub(crate) role: &'static str,
    pub(crate) epoch: Option<u64>,
    pub(crate) leader: Option<LeaderInfo>,
    pub(crate) node_id: String,
    pub(crate) transitions: u64,
    /// Why the leader's store refuses every write for good (A21b-3), while this process still
    /// has it: `/v1/status` and `/metrics` page on it (read by api.rs/metrics.rs).
    pub(crate) store_poisoned: Option<String>,
    /// Why this process stopped leading, once it did (the [`ExitSignal`]).
    pub(crate) exit_reason: Option<String>,
}

/// The election as the API sees it.
#[derive(Debug)]
pub(crate) struct HaView {
    node_id: String,
    role: watch::Receiver<Role>,
    transitions: AtomicU64,
    /// The role the API serves (differs from `role` while a new leader is still loading).
    serving_leader: std::sync::atomic::AtomicBool,
    /// The leader's store, as the election thread watches it.
    leader_store: LeaderStore,
    /// Set once this process must stop leading.
    exit: Arc<ExitSignal>,
}

impl HaView {
    /// Where a `NotLeader` answer sends wallets: the lease holder's advertised URL, unless it is
    /// this very process (deposed, or still loading the chain).
    pub(crate) fn leader_url(&self) -> Option<String> {
        match &*self.role.borrow() {
            Role::Standby { leader } => leader.as_ref().map(|l| l.url.clone()),
            Role::Leader { .. } | Role::Deposed { .. } => None,
        }
    }

    pub(crate) fn snapshot(&self) -> HaSnapshot {
        let role = self.role.borrow().clone();
        let serving = self.serving_leader.load(Ordering::Acquire);
        let (name, epoch, leader) = match role {
            Role::Leader { epoch, lease } if serving => ("leader", Some(epoch), Some(lease)),
            // Won the lease, still loading: not accepting anything yet.
            Role::Leader { lease, .. } => ("standby", None, Some(lease)),
            Role::Standby { leader } => ("standby", None, leader),
            Role::Deposed { .. } => ("deposed", None, None),
        };
        HaSnapshot {
            role: name,
            epoch,
            leader,
            node_id: self.node_id.clone(),
            transitions: self.transitions.load(Ordering::Relaxed),
            store_poisoned: self.leader_store.poisoned(None),
            exit_reason: self.exit.get(),
        }
    }
}

/// The leader's store as the election thread watches it: the epoch it is fenced to and its
/// [`Store::poison_probe`]. Set by the supervisor once it opened that store (A21b-3).
#[derive(Clone, Default)]
struct LeaderStore(Arc<parking_lot::Mutex<Option<(u64, PoisonProbe)>>>);

/// [`Store::poison_probe`].
type PoisonProbe = Arc<dyn Fn() -> Option<String> + Send + Sync>;

impl std::fmt::Debug for LeaderStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderStore")
            .field("epoch", &self.0.lock().as_ref().map(|(e, _)| *e))
            .finish()
    }
}

impl LeaderStore {
    fn set(&self, epoch: u64, probe: PoisonProbe) {
        *self.0.lock() = Some((epoch, probe));
    }

    /// Why the leader's store refuses every write for good, if it does; only the store fenced
    /// to `epoch` when one is given. The probe runs outside this lock.
    fn poisoned(&self, epoch: Option<u64>) -> Option<String> {
        let probe = self
            .0
            .lock()
            .as_ref()
            .filter(|(fenced, _)| epoch.is_none_or(|e| e == *fenced))
            .map(|(_, p)| p.clone());
        probe.and_then(|poisoned| poisoned())
    }
}

/// The way out of leadership (OP-HA-5): set once, with why, by whichever thread first finds
/// that this process must stop leading — the election thread (the lease lost, the store
/// poisoned) or the supervisor (could not start leading). The first reason wins.
///
/// Readable both from async code ([`HaNode::deposed`]) and from a plain thread
/// ([`HaNode::on_exit`]) without any tokio worker: the election thread sets it itself, so a
/// process whose workers are all blocked (in store calls against a silent database) still
/// learns it was deposed, and the binary's hard exit is still armed (A21b-6). Before, only the
/// supervisor — a tokio task — reported it.
#[derive(Debug)]
pub(crate) struct ExitSignal {
    why: parking_lot::Mutex<Option<String>>,
    set: parking_lot::Condvar,
    watch: watch::Sender<Option<String>>,
}

impl ExitSignal {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            why: parking_lot::Mutex::new(None),
            set: parking_lot::Condvar::new(),
            watch: watch::Sender::new(None),
        })
    }

    /// Records why, unless a reason is recorded already; wakes every waiter.
    fn fire(&self, why: String) {
        let mut slot = self.why.lock();
        if slot.is_some() {
            return;
        }
        *slot = Some(why.clone());
        self.set.notify_all();
        self.watch.send_replace(Some(why));
    }

    /// The reason, once set.
    pub(crate) fn get(&self) -> Option<String> {
        self.why.lock().clone()
    }

    /// Blocks the calling (plain) thread until set.
    fn wait(&self) -> String {
        let mut slot = self.why.lock();
        loop {
            if let Some(why) = slot.as_ref() {
                return why.clone();
            }
            self.set.wait(&mut slot);
        }
    }
}

/// Stops leading in `epoch`: the role first (the API and the supervisor follow it), then the
/// exit signal, from the election thread itself (A21b-6).
fn depose(role: &watch::Sender<Role>, exit: &ExitSignal, epoch: u64, reason: String) {
    let why = format!("lost the lease of epoch {epoch}: {reason}");
    role.send_replace(Role::Deposed { epoch, reason });
    exit.fire(why);
}

// ----------------------------------------------------------------------------------------------
// The lease row.

/// `expires_at` as RFC 3339 UTC text, so no date type crosses the wire.
/// (`to_char` of an infinite time is NULL: then the time's own text, so a hand-edited row can
/// never stop every election with a decoding error, A21c-3.)
const EXPIRES: &str = r#"coalesce(to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), expires_at::text)"#;

/// One connection to the lease row, owned by the election thread.
struct LeaseDb {
    config: postgres::Config,
    /// TLS as the URL's `sslmode` asks, as the store's connections.
    tls: crate::store::pg_tls::MakeRustls,
    client: Option<postgres::Client>,
    statement_timeout: Duration,
    /// The URL without its password, for errors.
    redacted: String,
    /// A connection made as the store's are (same URL and path, the store's `application_name`
    /// family), probed before every renewal: a leader renews only while the database answers
    /// its store's kind of connection too (A21b-8). See [`Self::probe_store`].
    probe_config: postgres::Config,
    probe: Option<postgres::Client>,
}

/// What an attempt to take the lease found.
#[derive(Debug)]
enum Attempt {
    /// Ours, in this epoch.
    Won(LeaderInfo),
    /// Someone else's (or the row as read).
    Held(Option<LeaderInfo>),
}

impl LeaseDb {
    fn new(url: &str, lease: Duration) -> Result<Self, LeaseError> {
        let crate::store::pg_tls::PgConnect { mut config, tls, .. } =
            crate::store::pg_tls::parse(url)
                .map_err(|e| LeaseError::Postgres(format!("{}: {e}", redact_store_url(url))))?;
        // A renewal must not hang past the lease: the connection gives up after one lease.
        config.connect_timeout(lease);
        // `statement_timeout` is the server's: against a database that stopped answering (a
        // partition, a dead host) the client would wait on the socket for ever and never depose
        // itself. Unacknowledged data for half a lease breaks the connection instead (Linux).
        config.tcp_user_timeout(lease / 2);
        let mut probe_config = config.clone();
        probe_config.application_name("plasma-operator-probe");
        config.application_name("plasma-operator-lease");
        Ok(Self {
            config,
            tls,
            client: None,
            statement_timeout: lease,
            redacted: redact_store_url(url),
            probe_config,
            probe: None,
        })
    }

    /// A read through a connection like the store's, before each renewal (A21b-8). The lease
    /// proves only that *its* connection works; a leader whose store connections are silent (a
    /// wedged pooler or proxy on their path, a per-connection fault) used to renew for ever
    /// while accepting and producing nothing. Now such a renewal fails, and the election thread
    /// deposes the leader once no renewal succeeded before its deadline — the probe runs on the
    /// renewal's thread, under the same deadline, so a probe that never answers deposes it as a
    /// renewal that never answers does. The probe is a plain read (no lock), on a connection of
    /// its own: a long write of the store never delays it (A21-1 stays fixed). What it cannot
    /// see — the store's own pool connections stuck while fresh ones work — is the store's
    /// call deadline's (`[store] call_deadline_ms`: a write left without an answer
    /// poisons the store, and a poisoned leader stops leading, A21b-3).
    fn probe_store(&mut self) -> Result<(), LeaseError> {
        self.probe_connection()?;
        let Some(client) = self.probe.as_mut() else {
            return Err(LeaseError::Postgres("no probe connection".into()));
        };
        let read = client.query_opt("SELECT epoch FROM plasma_leader WHERE id = 1", &[]);
        if let Err(e) = read {
            self.probe = None;
            return Err(Self::probe_failed(e));
        }
        Ok(())
    }

    /// Opens the probe's connection ahead of need, as a standby (errors are the renewal's to
    /// report): a connection made inside the first renewal would spend that renewal's deadline
    /// on a connect.
    fn warm_probe(&mut self) {
        if let Err(err) = self.probe_connection() {
            tracing::debug!(target: "operator::ha", error = %err, "could not open the store probe's connection yet");
        }
    }

    fn probe_failed(e: postgres::Error) -> LeaseError {
        match LeaseError::from(e) {
            LeaseError::Postgres(m) => {
                LeaseError::Postgres(format!("the store's connections do not answer: {m}"))
            }
            other => other,
        }
    }

    /// The probe's connection, made again if it is closed. The connect and its set-up together
    /// take at most one lease (A21c-5: `store::pg_connect`): an endpoint that accepts and never
    /// answers no longer holds the election thread in [`Self::warm_probe`].
    fn probe_connection(&mut self) -> Result<(), LeaseError> {
        if self.probe.as_ref().is_none_or(postgres::Client::is_closed) {
            self.probe = None;
            let ms = self.statement_timeout.as_millis().max(1);
            let client = pg_connect::connect(
                &self.probe_config,
                &self.tls,
                &self.redacted,
                &pg_connect::ELECTION,
                move |client| client.batch_execute(&format!("SET statement_timeout = {ms}")),
            )
            .map_err(|e| {
                LeaseError::Postgres(format!("the store's connections do not answer: {e}"))
            })?;
            self.probe = Some(client);
        }
        Ok(())
    }

    /// The lease connection, made again if it is closed; the connect and its set-up within one
    /// lease (A21c-5), like the probe's.
    fn client(&mut self) -> Result<&mut postgres::Client, LeaseError> {
        if self.client.as_ref().is_none_or(postgres::Client::is_closed) {
            self.client = None;
            // A takeover's transaction holds the lease row: if this process goes silent in the
            // middle of one, the server ends it after a lease instead of keeping the row locked.
            let ms = self.statement_timeout.as_millis().max(1);
            let client = pg_connect::connect(
                &self.config,
                &self.tls,
                &self.redacted,
                &pg_connect::ELECTION,
                move |client| {
                    client.batch_execute(&format!(
                        "SET statement_timeout = {ms}; SET idle_in_transaction_session_timeout = {ms}"
                    ))
                },
            )
            .map_err(|e| LeaseError::Postgres(e.to_string()))?;
            self.client = Some(client);
        }
        self.client.as_mut().ok_or_else(|| LeaseError::Postgres("no connection".into()))
    }

    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error>,
    ) -> Result<T, LeaseError> {
        let result = f(self.client()?);
        if result.is_err() {
            // Reconnect next time: the connection may be broken or mid-transaction.
            self.client = None;
        }
        result.map_err(LeaseError::from)
    }

    fn row(r: &postgres::Row) -> Result<LeaderInfo, postgres::Error> {
        Ok(LeaderInfo {
            epoch: u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or(0),
            holder: r.try_get(1)?,
            url: r.try_get(2)?,
            expires_at: r.try_get(3)?,
        })
    }

    /// Takes the lease if the row is missing or expired by the database's clock, bumping the
    /// fenced epoch (OP-HA-2). `None` when it is not ours to take: held, or taken by another
    /// process in the same instant.
    ///
    /// First a plain read (no lock): a standby takes a lock only once the lease has run out, so
    /// a standby whose connection hangs mid-check can never hold up a live leader's renewal.
    /// Then ONE transaction:
    /// 1. the lease row `FOR UPDATE`, its expiry checked again: takeovers (and renewals) queue
    ///    here, never behind the store's writes;
    /// 2. the fence row `plasma_leader` moved to `max(fence, lease) + 1` **only if it still holds
    ///    the epoch just read** (`WHERE epoch = $old`, re-checked on the newest row version after
    ///    any wait). This `UPDATE` needs the row exclusively, so it waits for every in-flight
    ///    write of the old leader (each holds `FOR SHARE` on it to its end): the wait OP-HA-2's
    ///    safety rests on — whatever committed before is loaded by us, nothing of theirs can
    ///    commit after;
    /// 3. the lease row: ours, its expiry set from the database's clock *after* that wait, so a
    ///    long wait does not eat the new lease.
    ///
    /// The commit makes the three visible at once. A takeover that times out while waiting in 2
    /// (`statement_timeout` = one lease) rolls back whole and is tried again.
    fn try_acquire(
        &mut self,
        node: &str,
        url: &str,
        lease: Duration,
    ) -> Result<Attempt, LeaseError> {
        match self.take(node, url, lease)? {
            Some(info) => Ok(Attempt::Won(info)),
            None => Ok(Attempt::Held(self.read()?)),
        }
    }

    /// [`Self::try_acquire`]'s takeover: `Some` if won.
    fn take(
        &mut self,
        node: &str,
        url: &str,
        lease: Duration,
    ) -> Result<Option<LeaderInfo>, LeaseError> {
        if let Some(held) = self.read_lease()?
            && !held.1
        {
            return Ok(None);
        }
        let ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let expiry = "clock_timestamp() + $4::bigint * interval '1 millisecond'";
        // The fence row's `expires_at` is set to 'infinity': no process renews it any more, and
        // an operator of the previous release still running during an upgrade (it elects on
        // `plasma_leader` alone) must never find it expired and take over from us.
        let take_fence = "UPDATE plasma_leader SET epoch = $1, holder = $2, url = $3, \
                          expires_at = 'infinity' WHERE id = 1 AND epoch = $4";
        let create_fence = "INSERT INTO plasma_leader (id, epoch, holder, url, expires_at) \
                            VALUES (1, $1, $2, $3, 'infinity') ON CONFLICT (id) DO NOTHING";
        let take_lease = format!(
            "INSERT INTO plasma_lease AS l (id, epoch, holder, url, expires_at) \
             VALUES (1, $1, $2, $3, {expiry}) \
             ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch, holder = EXCLUDED.holder, \
             url = EXCLUDED.url, expires_at = EXCLUDED.expires_at \
             RETURNING epoch, holder, url, {EXPIRES}"
        );
        self.run(|c| {
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::ReadCommitted)
                .start()?;
            // 1. The lease, locked; still out?
            let lease_row = tx.query_opt(
                "SELECT epoch, expires_at < clock_timestamp() FROM plasma_lease WHERE id = 1 \
                 FOR UPDATE",
                &[],
            )?;
            if lease_row.as_ref().is_some_and(|r| !r.get::<_, bool>(1)) {
                return Ok(None); // renewed or taken meanwhile; dropped = rolled back
            }
            let had_lease = lease_row.is_some();
            let lease_epoch = lease_row.map_or(0, |r| r.get::<_, i64>(0));
            // 1b. The lease has run out and is locked by us: end every session still holding
            // the fence's share lock (A21b-7). Only when there was a lease row to lock. Since
            // migration 0003 there always is one (an expired epoch-0 row on a new database), so
            // two first takeovers queue on it like any others; without a row (a database that a
            // hand edit left without one) `FOR UPDATE` locks nothing, and a round trip here
            // would widen the window in which a concurrent takeover commits between our reads.
            if had_lease {
                Self::end_fence_holders(&mut tx)?;
            }
            // 2. The fence, last committed value (a plain read: no wait), then moved on.
            let fence: Option<i64> = tx
                .query_opt("SELECT epoch FROM plasma_leader WHERE id = 1", &[])?
                .map(|r| r.get(0));
            let epoch = fence.unwrap_or(0).max(lease_epoch).saturating_add(1);
            let moved = match fence {
                Some(old) => tx.execute(take_fence, &[&epoch, &node, &url, &old])?,
                None => tx.execute(create_fence, &[&epoch, &node, &url])?,
            };
            if moved != 1 {
                return Ok(None); // another process moved the fence first
            }
            // 3. The lease, ours from now.
            let row = tx.query_one(&take_lease, &[&epoch, &node, &url, &ms])?;
            let info = Self::row(&row)?;
            tx.commit()?;
            Ok(Some(info))
        })
    }

    /// A21b-7: the sessions still holding the fence row's share lock once the lease has run out
    /// are ended (`pg_terminate_backend`), so the `UPDATE` of step 2 waits milliseconds for
    /// them instead of for ever. Without this, a leader frozen (SIGSTOP, a paused VM, a swap
    /// storm) or partitioned while one of its write transactions was open kept the share lock
    /// for as long as the server kept its session — for a stopped process indefinitely — and
    /// every takeover timed out behind it: no failover in exactly the faults the pair is for.
    ///
    /// **Why this is as safe as waiting (OP-HA-2).** Safety never rested on *how long* the
    /// takeover waits but on *what* it waits for: its `UPDATE` proceeds only once every
    /// transaction holding the share lock has ended. Terminating a session ends its transaction
    /// too, only sooner, and the `UPDATE` still proceeds only after that end:
    /// - not yet at `COMMIT`: it aborts; nothing of it is durable, and it was never
    ///   acknowledged (the operator acknowledges only after `COMMIT` returned, OP-2) — its
    ///   caller sees an error, exactly as for a database restart;
    /// - inside `COMMIT` (e.g. waiting for a synchronous standby): it is committed locally and
    ///   becomes visible before its locks go, so before our `UPDATE` proceeds and before we load
    ///   the chain; its caller, which lost the answer, asks `txid_status` (`Conn::resolve`);
    /// - a write of the old epoch that starts afterwards takes `FOR SHARE` after our `UPDATE`
    ///   and is refused (`Fenced`).
    ///
    /// So every old-epoch write committed before the new leader loads, or never commits. Only
    /// holders of `RowShareLock` on `plasma_leader` are ended — the store's fenced writes take
    /// exactly that (`FOR SHARE`); renewals, takeovers and reads take other modes — and only
    /// inside the takeover transaction, with the lease row locked and seen expired, so a live
    /// leader (which renews before its lease runs out) never loses a write to this. Ending a
    /// session of another database role needs `pg_signal_backend` (or the same role: the usual
    /// set-up, docs/operations.md); without it the takeover logs why and waits as before (and
    /// the store's `idle_in_transaction_session_timeout` still ends a frozen session).
    fn end_fence_holders(tx: &mut postgres::Transaction<'_>) -> Result<(), postgres::Error> {
        let holders: Vec<i32> = tx
            .query(
                "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'relation' \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND relation = 'plasma_leader'::regclass AND mode = 'RowShareLock' \
                 AND granted AND pid <> pg_backend_pid()",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for pid in holders {
            // A savepoint each: a refusal (no privilege) must not abort the takeover.
            let mut sp = tx.savepoint("end_fence_holder")?;
            match sp.query_one("SELECT pg_terminate_backend($1)", &[&pid]) {
                Ok(row) => {
                    sp.commit()?;
                    if row.get::<_, bool>(0) {
                        warn!(target: "operator::ha", pid, "the lease ran out with a write of the old epoch still open: its session ended so the takeover need not wait for it (A21b-7)");
                    }
                }
                Err(e) => {
                    drop(sp); // rolled back to the savepoint
                    warn!(target: "operator::ha", pid, error = %LeaseError::from(e), "could not end a session holding the fence after the lease ran out (grant pg_signal_backend); waiting for it instead");
                }
            }
        }
        Ok(())
    }

    /// Extends our lease if the lease row and the fence still carry our epoch; `None` if either
    /// does not (taken). Touches only `plasma_lease` (the fence is read, not locked: a plain
    /// read never waits for the writes' share locks), so a write of any length does not delay
    /// it (A21-1). A takeover in progress holds the lease row, so this waits for it and then
    /// finds the new epoch — but a takeover only starts once the lease ran out, i.e. after this
    /// process's own deadline.
    fn renew(
        &mut self,
        epoch: u64,
        node: &str,
        lease: Duration,
    ) -> Result<Option<LeaderInfo>, LeaseError> {
        let ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let sql = format!(
            "UPDATE plasma_lease SET expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond' \
             WHERE id = 1 AND epoch = $1 AND holder = $2 \
             AND epoch = (SELECT f.epoch FROM plasma_leader f WHERE f.id = 1) \
             RETURNING epoch, holder, url, {EXPIRES}"
        );
        // Renew only while the store's kind of connection answers too (A21b-8).
        self.probe_store()?;
        self.run(|c| c.query_opt(&sql, &[&epoch, &node, &ms])?.as_ref().map(Self::row).transpose())
    }

    /// Gives the lease up (a graceful stop): a standby takes over at its next attempt instead of
    /// after the lease. Only ours: the epoch must still be ours.
    fn release(&mut self, epoch: u64) -> Result<(), LeaseError> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        self.run(|c| {
            c.execute(
                "UPDATE plasma_lease SET expires_at = clock_timestamp() - interval '1 millisecond' \
                 WHERE id = 1 AND epoch = $1",
                &[&epoch],
            )
        })?;
        Ok(())
    }

    /// The lease row, and whether it has run out by the database's clock.
    fn read_lease(&mut self) -> Result<Option<(LeaderInfo, bool)>, LeaseError> {
        let sql = format!(
            "SELECT epoch, holder, url, {EXPIRES}, expires_at < clock_timestamp() \
             FROM plasma_lease WHERE id = 1"
        );
        self.run(|c| {
            c.query_opt(&sql, &[])?
                .as_ref()
                .map(|r| Ok((Self::row(r)?, r.try_get::<_, bool>(4)?)))
                .transpose()
        })
    }

    /// The lease row; `None` before the first election (migration 0003's epoch-0 row names
    /// nobody).
    fn read(&mut self) -> Result<Option<LeaderInfo>, LeaseError> {
        Ok(self.read_lease()?.map(|(info, _)| info).filter(|info| info.epoch > 0))
    }

    /// Why a renewal found the lease gone: the fence row names who took the epoch over (a
    /// takeover writes its holder there too), else the lease row.
    fn lost_reason(&mut self, ours: u64) -> String {
        let fence = self.run(|c| {
            c.query_opt("SELECT epoch, holder, url FROM plasma_leader WHERE id = 1", &[]).map(|r| {
                r.map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1), r.get::<_, String>(2)))
            })
        });
        match fence {
            Ok(Some((epoch, holder, url))) if u64::try_from(epoch).ok() != Some(ours) => {
                format!("the lease is now epoch {epoch} held by {holder} ({url})")
            }
            Ok(None) => "the lease row is gone".to_owned(),
            _ => match self.read() {
                Ok(Some(l)) => {
                    format!("the lease is now epoch {} held by {} ({})", l.epoch, l.holder, l.url)
                }
                Ok(None) => "the lease row is gone".to_owned(),
                Err(e) => format!("the lease is no longer ours (then: {e})"),
            },
        }
    }
}

// ----------------------------------------------------------------------------------------------
// The election thread.

/// What the election needs.
#[derive(Clone, Debug)]
pub(crate) struct Election {
    pub(crate) url: String,
    pub(crate) node_id: String,
    pub(crate) advertise: String,
    pub(crate) lease: Duration,
}

/// A running election thread.
#[derive(Debug)]
struct ElectionThread {
    /// Closing it (a message or a drop) stops the thread; `Some(epoch)` releases that lease first.
    stop: mpsc::Sender<Option<u64>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ElectionThread {
    fn spawn(
        e: Election,
        role: watch::Sender<Role>,
        exit: Arc<ExitSignal>,
        store: LeaderStore,
    ) -> Result<Self, LeaseError> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("operator-election".into())
            .spawn(move || election_loop(&e, &role, &stopped, &exit, &store))
            .map_err(|err| LeaseError::Thread(err.to_string()))?;
        Ok(Self { stop, thread: Some(thread) })
    }

    /// Stops the thread, releasing the lease of `epoch` if it still holds it.
    fn stop(mut self, release: Option<u64>) {
        let _ = self.stop.send(release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The loop: as a standby, try every `lease/5`; as leader, renew every `lease/5` and give up
/// (Deposed) the moment another epoch holds the row, or when no renewal succeeded before our
/// own clock says the lease is out. Our clock is measured from *before* each renewal was sent
/// and the database sets `expires_at` from its clock *after* receiving it, so our deadline
/// never falls later than the database's (clock rates aside, hence the margin).
fn election_loop(
    e: &Election,
    role: &watch::Sender<Role>,
    stopped: &mpsc::Receiver<Option<u64>>,
    exit: &ExitSignal,
    store: &LeaderStore,
) {
    let period = e.lease / 5;
    let margin = e.lease / 10;
    let mut db = match LeaseDb::new(&e.url, e.lease) {
        Ok(db) => Some(db),
        Err(err) => {
            error!(target: "operator::ha", error = %err, "the lease database URL is unusable");
            return;
        }
    };
    // The epoch we lead in, and until when (our clock) the lease is surely ours.
    let mut leading: Option<(u64, Instant)> = None;
    let mut wait = Duration::ZERO;
    loop {
        match stopped.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(release) => {
                if let (Some(epoch), Some((ours, _)), Some(db)) = (release, leading, db.as_mut())
                    && epoch == ours
                {
                    match db.release(epoch) {
                        Ok(()) => info!(target: "operator::ha", epoch, "lease released"),
                        Err(err) => {
                            warn!(target: "operator::ha", epoch, error = %err, "could not release the lease; it runs out by itself")
                        }
                    }
                }
                return;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        wait = period;
        match leading {
            None => match standby_attempt(e, &mut db) {
                Ok((Attempt::Won(info), sent)) => {
                    let epoch = info.epoch;
                    // Measured from before the attempt was sent: the database set the expiry
                    // from its clock later than that, so our deadline is never the later one.
                    leading = Some((epoch, sent + e.lease.saturating_sub(margin)));
                    info!(target: "operator::ha", epoch, node = %e.node_id, url = %e.advertise, expires_at = %info.expires_at, "lease acquired: leading");
                    role.send_replace(Role::Leader { epoch, lease: info });
                }
                Ok((Attempt::Held(leader), _)) => {
                    let changed = role.send_if_modified(|r| {
                        let new = Role::Standby { leader: leader.clone() };
                        // Only the holder or epoch changing is news (expires_at moves on every renewal).
                        let news = match (&*r, &new) {
                            (
                                Role::Standby { leader: Some(a) },
                                Role::Standby { leader: Some(b) },
                            ) => a.epoch != b.epoch || a.url != b.url,
                            _ => true,
                        };
                        *r = new;
                        news
                    });
                    if changed {
                        info!(target: "operator::ha", leader = ?leader.as_ref().map(|l| (&l.holder, &l.url, l.epoch)), "standing by");
                    }
                }
                Err(err) => {
                    warn!(target: "operator::ha", error = %err, "could not try the lease; still a standby");
                    role.send_replace(Role::Standby { leader: None });
                }
            },
            Some((epoch, deadline)) => {
                if let Some(why) = store.poisoned(Some(epoch)) {
                    give_up_poisoned(role, exit, &mut db, epoch, &why, period);
                    return;
                }
                let sent = Instant::now();
                // The renewal runs on a thread of its own and is waited for only until the
                // deadline (A21-2): a connection that accepts bytes and never answers (a hung
                // proxy, a half-open socket) blocks the call itself, and timeouts on the socket
                // or the server's `statement_timeout` do not cover it. Past the deadline this
                // process stops leading whatever the call is doing; the stuck thread keeps the
                // old connection and ends with it.
                let Some(conn) = db.take() else { return };
                let (tx, rx) = mpsc::sync_channel(1);
                let node = e.node_id.clone();
                let lease = e.lease;
                let spawned = std::thread::Builder::new()
                    .name("operator-lease-renew".into())
                    .spawn(move || {
                        let mut conn = conn;
                        let result = conn.renew(epoch, &node, lease);
                        let _ = tx.send((conn, result));
                    });
                let answer = match spawned {
                    Ok(_) => rx.recv_timeout(deadline.saturating_duration_since(Instant::now())),
                    Err(_) => Err(mpsc::RecvTimeoutError::Disconnected),
                };
                let renewed = match answer {
                    Ok((conn, result)) => {
                        db = Some(conn);
                        result
                    }
                    Err(_) => {
                        let reason = "the database did not answer the renewal before the lease \
                                      ran out"
                            .to_owned();
                        error!(target: "operator::ha", epoch, %reason, "lease lost: stopped leading");
                        depose(role, exit, epoch, reason);
                        return;
                    }
                };
                match renewed {
                    Ok(Some(info)) => {
                        leading = Some((epoch, sent + e.lease.saturating_sub(margin)));
                        role.send_if_modified(|r| {
                            if let Role::Leader { lease, .. } = r {
                                *lease = info;
                            }
                            false
                        });
                    }
                    Ok(None) => {
                        // Who took it over, asked on a thread of its own and waited for half
                        // a lease at most: a database that answered the renewal and then went
                        // silent must not keep this process from stepping down (the thread is
                        // left behind; we return right after).
                        let generic = || "the lease is no longer ours".to_owned();
                        let reason = match db.take() {
                            Some(mut db) => {
                                let (tx, rx) = mpsc::channel();
                                let asked = std::thread::Builder::new()
                                    .name("operator-lease-lost".into())
                                    .spawn(move || {
                                        let _ = tx.send(db.lost_reason(epoch));
                                    });
                                asked
                                    .ok()
                                    .and_then(|_| rx.recv_timeout(period * 5 / 2).ok())
                                    .unwrap_or_else(generic)
                            }
                            None => generic(),
                        };
                        error!(target: "operator::ha", epoch, %reason, "lease lost: stopped leading");
                        depose(role, exit, epoch, reason);
                        return;
                    }
                    Err(err) => {
                        if Instant::now() >= deadline {
                            let reason =
                                format!("no renewal before the lease ran out (last error: {err})");
                            error!(target: "operator::ha", epoch, %reason, "lease lost: stopped leading");
                            depose(role, exit, epoch, reason);
                            return;
                        }
                        warn!(target: "operator::ha", epoch, error = %err, "lease renewal failed; retrying");
                        // Retry sooner, but never past the deadline.
                        wait = (period / 4).min(deadline.saturating_duration_since(Instant::now()));
                    }
                }
            }
        }
    }
}

/// A standby's attempt to take the lease, which can never hold the election thread (A21c-5):
/// before, a standby whose connection landed on an endpoint that accepts and never answers (a
/// hung pooler or proxy) stopped electing for good — even once the database answered again —
/// and the pair silently lost its failover.
///
/// - The probe's connection is opened first ([`LeaseDb::warm_probe`]), on this thread: a
///   connect and one `SET`, bounded as a whole by one lease (`store::pg_connect`).
/// - The attempt itself runs on a thread of its own and is waited for until the deadline it
///   would lead under (one lease less the margin, from before it was sent), as the leader's
///   renewal is (A21-2). Bounding the connect is not enough here: a connection whose peer goes
///   silent *after* it was made (a proxy hanging mid-session) blocks a query just as it blocks
///   a connect, and neither the server's `statement_timeout` (the server never sees the query)
///   nor `tcp_user_timeout` and keepalives (the proxy's kernel acknowledges) end that wait. An
///   attempt that outlasts its deadline could not lead anyway: its lease would have run out by
///   our own clock before it began.
///
/// Past the deadline the attempt is abandoned with its connections (counted against the
/// election's share of stuck threads, `pg_connect::ELECTION`, and ending when its peer answers
/// or closes), and the next attempt starts on fresh ones. If an abandoned attempt still wins
/// later, nobody leads in that epoch: its lease runs out unrenewed and the next takeover moves
/// the fence again — safe (the fence, not the lease, keeps every other epoch's writes out,
/// OP-HA-2) and costing one lease at most.
fn standby_attempt(
    e: &Election,
    db: &mut Option<LeaseDb>,
) -> Result<(Attempt, Instant), LeaseError> {
    let mut conn = match db.take() {
        Some(conn) => conn,
        None => LeaseDb::new(&e.url, e.lease)?,
    };
    conn.warm_probe(); // connected now, not inside the first renewal's deadline
    let sent = Instant::now();
    let within = e.lease.saturating_sub(e.lease / 10);
    let (node, advertise, lease) = (e.node_id.clone(), e.advertise.clone(), e.lease);
    let redacted = conn.redacted.clone();
    let answer =
        pg_connect::run_bounded(&pg_connect::ELECTION, "operator-lease-try", within, move || {
            let result = conn.try_acquire(&node, &advertise, lease);
            (conn, result)
        });
    match answer {
        Ok((conn, result)) => {
            *db = Some(conn);
            result.map(|attempt| (attempt, sent))
        }
        Err(stuck) => Err(LeaseError::Postgres(format!("{redacted}: trying the lease: {stuck}"))),
    }
}

/// The leader's store poisoned itself (A21b-3: a `COMMIT`'s outcome could not be learnt, so it
/// refuses every write until the state is reloaded from the database). Such a leader can accept,
/// produce and send nothing, yet its lease connection works: renewing on would halt the chain
/// with no failover. It is treated as deposed instead — the role and the exit signal first (the
/// API refuses writes, the tasks stop, the binary exits 3 and is restarted as a standby: the
/// reload the store asks for), then the lease released, so a standby, which loads the store
/// afresh, takes over at its next attempt instead of one lease later. Releasing is as safe as
/// any takeover: the fence, not the lease, keeps the old epoch's writes out (OP-HA-2). The
/// release is bounded like a renewal (a thread of its own, waited for `within`); past that the
/// lease simply runs out.
fn give_up_poisoned(
    role: &watch::Sender<Role>,
    exit: &ExitSignal,
    db: &mut Option<LeaseDb>,
    epoch: u64,
    why: &str,
    within: Duration,
) {
    let reason = format!("the store refuses every write until reloaded: {why}");
    error!(target: "operator::ha", epoch, %reason, "store poisoned: stopped leading; releasing the lease");
    depose(role, exit, epoch, reason);
    let Some(mut conn) = db.take() else { return };
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned =
        std::thread::Builder::new().name("operator-lease-release".into()).spawn(move || {
            let _ = tx.send(conn.release(epoch));
        });
    match spawned.map(|_| rx.recv_timeout(within)) {
        Ok(Ok(Ok(()))) => info!(target: "operator::ha", epoch, "lease released"),
        Ok(Ok(Err(err))) => {
            warn!(target: "operator::ha", epoch, error = %err, "could not release the lease; it runs out by itself");
        }
        _ => {
            warn!(target: "operator::ha", epoch, "the lease release got no answer in time; it runs out by itself");
        }
    }
}

// ----------------------------------------------------------------------------------------------
// The process.

/// An operator on a PostgreSQL store: a standby until it wins the lease, then the leader until it
/// stops or loses it (OP-HA-1..6).
#[derive(Debug)]
pub struct HaNode {
    /// Where the API listens (the same port in every role).
    pub addr: SocketAddr,
    role: watch::Receiver<Role>,
    /// Resolves (with why) once the process stopped leading or could not start leading.
    exit: watch::Receiver<Option<String>>,
    /// The same, for plain threads.
    signal: Arc<ExitSignal>,
    server: Server,
    supervisor: tokio::task::JoinHandle<Option<Leading>>,
    stop: watch::Sender<bool>,
    election: Option<ElectionThread>,
    view: Arc<HaView>,
}

impl HaNode {
    /// Opens the store, serves the standby API and starts the election; returns once the API is
    /// listening (as a standby). The store must be PostgreSQL.
    pub async fn start(config: Config) -> Result<Self, NodeError> {
        config.validate()?;
        let Some(url) = config.store.url.clone().filter(|_| config.store.is_postgres()) else {
            return Err(NodeError::Config(crate::ConfigError::Ha {
                section: "store",
                reason: "leader election needs a postgres:// store".into(),
            }));
        };
        config.signer()?; // a standby that could never lead is refused now, not at takeover
        let shown = redact_store_url(&url);
        let store = Arc::new(open_postgres(&url, &config.store).await?);
        let listener = bind(config.listen).await?;
        let addr = listener
            .local_addr()
            .map_err(|source| NodeError::Listen { addr: config.listen, source })?;
        if config.ha.advertise_url.is_none() && addr.ip().is_unspecified() {
            warn!(target: "operator::ha", %addr, "no --ha.advertise-url and the API listens on every interface: standbys will name http://{addr}, which wallets cannot reach; set --ha.advertise-url");
        }
        let election = Election {
            url,
            node_id: config.ha.node_id(),
            advertise: config.ha.advertise(addr),
            lease: config.ha.lease(),
        };
        let (role_tx, role) = watch::channel(Role::Standby { leader: None });
        let signal = ExitSignal::new();
        let leader_store = LeaderStore::default();
        let view = Arc::new(HaView {
            node_id: election.node_id.clone(),
            role: role.clone(),
            transitions: AtomicU64::new(0),
            serving_leader: false.into(),
            leader_store: leader_store.clone(),
            exit: signal.clone(),
        });
        let common = Common::new(&config, Some(view.clone()), shown.clone(), "postgres");
        let shared = api::Shared::new(Arc::new(ApiContext::standby(common.clone(), store.clone())));
        let server = Server::serve(listener, shared.clone());
        info!(target: "operator::ha", %addr, node = %election.node_id, url = %election.advertise, store = %shown, lease_ms = config.ha.lease_ms, "standby API up; electing");
        let thread =
            ElectionThread::spawn(election, role_tx, signal.clone(), leader_store.clone())?;
        let exit = signal.watch.subscribe();
        let (stop, stop_rx) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(
            config,
            role.clone(),
            stop_rx,
            Takeover {
                shared,
                common,
                standby: store,
                view: view.clone(),
                election: thread.stop.clone(),
                leader_store,
            },
            signal.clone(),
        ));
        Ok(Self {
            addr,
            role,
            exit,
            signal,
            server,
            supervisor,
            stop,
            election: Some(thread),
            view,
        })
    }

    /// The election's current view.
    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// Waits until the process stopped leading (lost its lease) or could not start leading, and
    /// says why: the binary exits on it (OP-HA-5).
    pub async fn deposed(&self) -> String {
        let mut exit = self.exit.clone();
        match exit.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => "the supervisor stopped".into(),
        }
    }

    /// Runs `f` with why, on a plain thread of its own, once this process must stop leading
    /// (what [`Self::deposed`] reports). The election thread decides that by itself, so `f` runs
    /// even when every tokio worker is blocked (A21b-6): the binary arms its hard exit here.
    /// The thread waits for the whole life of the process if it never has to stop leading.
    pub fn on_exit(&self, f: impl FnOnce(String) + Send + 'static) -> std::io::Result<()> {
        let signal = self.signal.clone();
        std::thread::Builder::new()
            .name("operator-exit-watch".into())
            .spawn(move || f(signal.wait()))
            .map(drop)
    }

    /// Why the store of this process's leadership refuses every write for good, if it does
    /// (A21b-3; [`Store::poisoned`]). Such a leader stops leading within a renewal period.
    pub fn store_poisoned(&self) -> Option<String> {
        self.view.leader_store.poisoned(None)
    }

    /// Waits until this process serves as the leader (the chain loaded, every task started).
    pub async fn leading(&self) -> u64 {
        let mut role = self.role.clone();
        loop {
            let epoch = match &*role.borrow_and_update() {
                Role::Leader { epoch, .. } => Some(*epoch),
                _ => None,
            };
            if let Some(epoch) = epoch
                && self.exit.borrow().is_none()
                && self.is_serving_leader()
            {
                return epoch;
            }
            // The supervisor flips the API after the role changes: poll briefly for it.
            tokio::select! {
                _ = role.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }

    fn is_serving_leader(&self) -> bool {
        self.view.serving_leader.load(Ordering::Acquire)
    }

    /// Stops: the leader's tasks first, then its lease (released, so a standby takes over at
    /// once), then the API.
    pub async fn stop(self) {
        self.shut(true).await;
    }

    /// Stops as a crash would for the others: the lease is not released, so a standby takes over
    /// only once it runs out (tests and the failover figures).
    pub async fn crash(self) {
        self.shut(false).await;
    }

    async fn shut(mut self, release: bool) {
        let _ = self.stop.send(true);
        let leading = self.supervisor.await.ok().flatten();
        let epoch = leading.as_ref().map(|_| self.role.borrow().clone()).and_then(|r| match r {
            Role::Leader { epoch, .. } => Some(epoch),
            _ => None,
        });
        // The API first (it holds the leader's context, whose queue the group committer drains
        // until the last handle is gone), then the tasks, then the lease.
        self.server.stop().await;
        if let Some(l) = leading {
            l.stop().await;
        }
        let release = epoch.filter(|_| release);
        if let Some(thread) = self.election.take() {
            let _ = tokio::task::spawn_blocking(move || thread.stop(release)).await;
        }
    }
}

/// What the supervisor changes on a takeover.
struct Takeover {
    shared: Arc<api::Shared>,
    common: Common,
    standby: Arc<Store>,
    view: Arc<HaView>,
    /// Stops the election thread (releasing the lease of the epoch sent).
    election: mpsc::Sender<Option<u64>>,
    /// Where the leader's store is shown to the election thread (A21b-3).
    leader_store: LeaderStore,
}

/// Opens the PostgreSQL store off the async workers (its connections live on threads of its own).
async fn open_postgres(url: &str, config: &crate::config::StoreConfig) -> Result<Store, NodeError> {
    let url = url.to_owned();
    let options = crate::store::PgOptions {
        pool: config.pool,
        call_deadline: Duration::from_millis(config.call_deadline_ms),
    };
    tokio::task::spawn_blocking(move || Store::open_postgres(&url, &options))
        .await
        .map_err(|e| NodeError::Store(StoreError::Postgres(e.to_string())))?
        .map_err(NodeError::Store)
}

/// Follows the election: on winning, fences a fresh store handle to the epoch, starts leading
/// and switches the API to the leader's; on losing, refuses writes at once, stops every task and
/// reports why. Returns the leader's parts still running when asked to stop.
async fn supervise(
    config: Config,
    mut role: watch::Receiver<Role>,
    mut stop: watch::Receiver<bool>,
    t: Takeover,
    exit: Arc<ExitSignal>,
) -> Option<Leading> {
    let mut leading: Option<Leading> = None;
    loop {
        let now = role.borrow_and_update().clone();
        match now {
            Role::Leader { epoch, .. } if leading.is_none() => {
                match start_leading(&config, epoch, &t.common, &t.leader_store).await {
                    Ok(l) => {
                        t.shared.set(l.ctx.clone());
                        t.view.serving_leader.store(true, Ordering::Release);
                        t.view.transitions.fetch_add(1, Ordering::Relaxed);
                        info!(target: "operator::ha", epoch, chain_id = l.chain_id, operator = %l.operator, "leading: accepting transactions, producing blocks, sending roots");
                        leading = Some(l);
                    }
                    Err(e) => {
                        // Could not lead (L1 unreachable, the store refused): step out and let
                        // another process take the lease when it runs out.
                        error!(target: "operator::ha", epoch, error = %e, "won the lease but could not start leading; releasing it and exiting");
                        // Not keep renewing a lease nobody uses: give it to a standby now.
                        let _ = t.election.send(Some(epoch));
                        exit.fire(format!("could not start leading in epoch {epoch}: {e}"));
                        return None;
                    }
                }
            }
            Role::Deposed { epoch, reason } => {
                // Writes refused first (the next request sees the standby context), then the
                // tasks stopped: the fence already refuses their writes (OP-HA-5).
                t.shared.set(Arc::new(ApiContext::standby(t.common.clone(), t.standby.clone())));
                t.view.serving_leader.store(false, Ordering::Release);
                t.view.transitions.fetch_add(1, Ordering::Relaxed);
                exit.fire(format!("lost the lease of epoch {epoch}: {reason}"));
                if let Some(l) = leading.take() {
                    l.stop().await;
                }
                return None;
            }
            _ => {}
        }
        let ended = tokio::select! {
            changed = role.changed() => changed.is_err(),
            _ = stop.wait_for(|s| *s) => return leading,
        };
        if ended {
            // The election thread ended without deposing us (its URL was unusable).
            t.shared.set(Arc::new(ApiContext::standby(t.common.clone(), t.standby.clone())));
            t.view.serving_leader.store(false, Ordering::Release);
            if let Some(l) = leading.take() {
                l.stop().await;
            }
            exit.fire("the election stopped".into());
            return None;
        }
    }
}

/// A fresh store handle fenced to `epoch`, and everything a leader runs on it. The chain is
/// loaded only after the fence is set: every write of the previous leader that committed is in
/// what it loads, and none can commit afterwards (OP-HA-2).
async fn start_leading(
    config: &Config,
    epoch: u64,
    common: &Common,
    leader_store: &LeaderStore,
) -> Result<Leading, NodeError> {
    let url = config.store.url.clone().unwrap_or_default();
    let store = open_postgres(&url, &config.store).await?;
    store.set_fence(epoch);
    // Watched by the election thread from now on: a poisoned store ends the leadership (A21b-3).
    leader_store.set(epoch, store.poison_probe());
    Leading::start(config, store, common.clone()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PgOptions;
    use plasma_test_postgres::TempPostgres;

    fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !done() {
            assert!(Instant::now() < deadline, "{what} not within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A21b-3, the election's side in seconds (the whole path, a real `COMMIT` cut short and
    /// the store poisoning itself, is `audit21b::a21b_3_…`, ~45 s): a leader that renews fine
    /// stops leading within a renewal period of its store's poisoning, from the election thread
    /// alone (no tokio runtime here at all: A21b-6), says why through the exit signal a plain
    /// thread waits on, and gives the lease up so a standby need not wait for it to run out.
    #[test]
    fn a_leader_whose_store_poisoned_itself_is_deposed_and_releases_the_lease() {
        let pg = TempPostgres::start().unwrap();
        drop(Store::open_postgres(pg.url(), &PgOptions::pool(1)).unwrap());
        // Every wait below is a fraction of the lease: 3 s leaves a loaded CI machine room for
        // a renewal and a `psql` start within them (1 s flaked there).
        let lease = Duration::from_millis(3_000);
        let election = Election {
            url: pg.url().to_owned(),
            node_id: "a".into(),
            advertise: "http://127.0.0.1:9".into(),
            lease,
        };
        let (role_tx, role) = watch::channel(Role::Standby { leader: None });
        let exit = ExitSignal::new();
        let store = LeaderStore::default();
        let thread = ElectionThread::spawn(election, role_tx, exit.clone(), store.clone()).unwrap();
        let mut epoch = 0;
        wait_until(Duration::from_secs(10), "leading", || {
            if let Role::Leader { epoch: e, .. } = &*role.borrow() {
                epoch = *e;
            }
            epoch != 0
        });
        let poison: Arc<parking_lot::Mutex<Option<String>>> = Arc::default();
        let probe = poison.clone();
        store.set(epoch, Arc::new(move || probe.lock().clone()));
        // A healthy store: the leader renews past its first lease.
        std::thread::sleep(lease + lease / 2);
        assert!(matches!(&*role.borrow(), Role::Leader { epoch: e, .. } if *e == epoch));
        assert_eq!(exit.get(), None);

        let (tx, rx) = mpsc::channel();
        let waiter = exit.clone();
        std::thread::spawn(move || tx.send(waiter.wait()));
        *poison.lock() = Some("the outcome of a commit is unknown".into());
        let why = rx.recv_timeout(lease).expect("no exit signal within a lease of the poisoning");
        assert!(why.contains("the outcome of a commit is unknown"), "{why}");
        assert_eq!(exit.get().as_deref(), Some(why.as_str()));
        assert!(
            matches!(&*role.borrow(), Role::Deposed { epoch: e, reason } if *e == epoch && reason.contains("refuses every write")),
            "{:?}",
            role.borrow()
        );
        // Released: the lease row has run out by the database's clock, long before its lease.
        wait_until(lease / 2, "the lease released", || {
            pg.psql("SELECT expires_at < clock_timestamp() FROM plasma_lease WHERE id = 1")
                .unwrap()
                .trim()
                == "t"
        });
        thread.stop(None);
    }

    /// The first-election race (#21): on a new database a takeover's first step, the lease
    /// row's `FOR UPDATE`, must already have a row to queue on. Process `a` is mid-takeover
    /// (it holds that lock, as step 1 does); `b`'s takeover must wait for it and then find the
    /// lease held. Before migration 0003 the table was empty, `a`'s lock held nothing, and `b`
    /// went on to win epoch 1 too (deposing `a` once both had committed).
    #[test]
    fn a_first_takeover_queues_behind_another_in_progress() {
        let pg = TempPostgres::start().unwrap();
        drop(Store::open_postgres(pg.url(), &PgOptions::pool(1)).unwrap());
        let mut a = postgres::Client::connect(pg.url(), postgres::NoTls).unwrap();
        let mut a_tx = a.transaction().unwrap();
        let locked =
            a_tx.query("SELECT epoch FROM plasma_lease WHERE id = 1 FOR UPDATE", &[]).unwrap();
        assert_eq!(locked.len(), 1, "a new database has a lease row to lock");
        assert_eq!(locked[0].get::<_, i64>(0), 0, "epoch 0: nobody's");

        let lease = Duration::from_secs(5);
        let url = pg.url().to_owned();
        let (tx, rx) = mpsc::channel();
        let b = std::thread::spawn(move || {
            let mut db = LeaseDb::new(&url, lease).unwrap();
            tx.send(db.try_acquire("b", "http://b", lease)).unwrap();
        });
        // `b` is waiting for `a`'s lock, or has already finished (the bug).
        let waiting = "SELECT count(*) FROM pg_stat_activity \
                       WHERE application_name = 'plasma-operator-lease' AND wait_event_type = 'Lock'";
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(done) = rx.try_recv() {
                panic!("b's takeover did not wait for a's: {done:?}");
            }
            if pg.psql(waiting).unwrap().trim() == "1" {
                break;
            }
            assert!(Instant::now() < deadline, "b neither waited nor finished");
            std::thread::sleep(Duration::from_millis(10));
        }
        // `a` ends its takeover as `take` does, and commits.
        a_tx.execute(
            "INSERT INTO plasma_leader (id, epoch, holder, url, expires_at) \
             VALUES (1, 1, 'a', 'http://a', 'infinity')",
            &[],
        )
        .unwrap();
        a_tx.execute(
            "UPDATE plasma_lease SET epoch = 1, holder = 'a', url = 'http://a', \
             expires_at = clock_timestamp() + interval '1 hour' WHERE id = 1",
            &[],
        )
        .unwrap();
        a_tx.commit().unwrap();
        match rx.recv_timeout(Duration::from_secs(10)).expect("b's takeover returned") {
            Ok(Attempt::Held(Some(info))) => {
                assert_eq!((info.epoch, info.holder.as_str()), (1, "a"), "{info:?}");
            }
            other => panic!("expected the lease held by a, got {other:?}"),
        }
        b.join().unwrap();
        assert_eq!(pg.psql("SELECT epoch FROM plasma_leader").unwrap().trim(), "1", "a kept it");
    }
}
