//! Leader election among operators sharing one PostgreSQL store (issue #21; spec: OP-HA-1..6 in
//! spec/06-operator.md).
//!
//! Every process on a PostgreSQL store runs [`HaNode`]: it serves the standby API at once (reads
//! from the store, writes refused with `NotLeader`), and an election thread of its own (the
//! `postgres` client is synchronous and must never run on a tokio worker) tries to take the lease
//! row `plasma_leader(id = 1, epoch, holder, url, expires_at)` every `lease/5`. Winning it —
//! the row is missing, or its `expires_at` is behind the **database's** clock — bumps `epoch`.
//! The winner fences the store to that epoch ([`Store::set_fence`]), opens the chain exactly as a
//! restarted operator does (the store, then L1's `nextChildBlock`), starts every task and serves
//! the full API on the same port. It renews every `lease/5`; a renewal that finds another epoch,
//! or no renewal before the lease runs out by our own monotonic clock, makes it stop leading at
//! once: writes refused, tasks stopped, and [`HaNode::deposed`] resolves so the binary exits
//! (its supervisor restarts it as a standby).
//!
//! # Why two leaders cannot corrupt the chain (the safety argument, OP-HA-2, OP-HA-3)
//!
//! The lease is only *liveness*: clocks, pauses (GC, swap, a stopped VM) and partitions can make
//! two processes both believe they lead for a while. Safety rests on **fencing**, which needs no
//! clock: every write transaction of the store first takes `SELECT epoch FROM plasma_leader
//! WHERE id = 1 FOR SHARE` and aborts (`StoreError::Fenced`) unless it equals the epoch the
//! process was given. A takeover is `UPDATE … SET epoch = epoch + 1`, which needs the row
//! exclusively and so waits for every in-flight write's share lock. Hence every write of the
//! old leader either committed before the takeover (and the new leader, which loads the store
//! only after it holds the new epoch, sees it) or starts after it and is refused. So:
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
//! What the lease adds: at most one process *acts* as leader at a time in the normal case, and a
//! deposed one stops within one renewal period, so it does not keep sending fee bumps for roots
//! the new leader also sends (harmless — the same root, refused once one lands — but wasted gas).

use crate::{
    api::{self, ApiContext, Common},
    config::{Config, redact_store_url},
    node::{Leading, NodeError, Server, bind},
    store::{Store, StoreError},
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
            None => Self::Postgres(e.to_string()),
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
}

/// The election as the API sees it.
#[derive(Debug)]
pub(crate) struct HaView {
    node_id: String,
    role: watch::Receiver<Role>,
    transitions: AtomicU64,
    /// The role the API serves (differs from `role` while a new leader is still loading).
    serving_leader: std::sync::atomic::AtomicBool,
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
        }
    }
}

// ----------------------------------------------------------------------------------------------
// The lease row.

/// `expires_at` as RFC 3339 UTC text, so no date type crosses the wire.
const EXPIRES: &str = r#"to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#;

/// One connection to the lease row, owned by the election thread.
struct LeaseDb {
    config: postgres::Config,
    client: Option<postgres::Client>,
    statement_timeout: Duration,
}

/// What an attempt to take the lease found.
enum Attempt {
    /// Ours, in this epoch.
    Won(LeaderInfo),
    /// Someone else's (or the row as read).
    Held(Option<LeaderInfo>),
}

impl LeaseDb {
    fn new(url: &str, lease: Duration) -> Result<Self, LeaseError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| LeaseError::Postgres(format!("{}: {e}", redact_store_url(url))))?;
        // A renewal must not hang past the lease: the connection gives up after one lease.
        config.connect_timeout(lease);
        // `statement_timeout` is the server's: against a database that stopped answering (a
        // partition, a dead host) the client would wait on the socket for ever and never depose
        // itself. Unacknowledged data for half a lease breaks the connection instead (Linux).
        config.tcp_user_timeout(lease / 2);
        config.application_name("plasma-operator-lease");
        Ok(Self { config, client: None, statement_timeout: lease })
    }

    fn client(&mut self) -> Result<&mut postgres::Client, LeaseError> {
        if self.client.as_ref().is_none_or(postgres::Client::is_closed) {
            let mut client = self.config.connect(postgres::NoTls)?;
            client.batch_execute(&format!(
                "SET statement_timeout = {}",
                self.statement_timeout.as_millis().max(1)
            ))?;
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
    /// epoch (OP-HA-2). The `UPDATE` waits for the share locks of the writes in flight, and its
    /// `WHERE` is checked again on the row as it is once they are gone (READ COMMITTED), so a
    /// renewal that committed meanwhile wins.
    fn try_acquire(
        &mut self,
        node: &str,
        url: &str,
        lease: Duration,
    ) -> Result<Attempt, LeaseError> {
        let ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let sql = format!(
            "INSERT INTO plasma_leader AS l (id, epoch, holder, url, expires_at) \
             VALUES (1, 1, $1, $2, clock_timestamp() + $3::bigint * interval '1 millisecond') \
             ON CONFLICT (id) DO UPDATE SET epoch = l.epoch + 1, holder = EXCLUDED.holder, \
             url = EXCLUDED.url, expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond' \
             WHERE l.expires_at < clock_timestamp() \
             RETURNING epoch, holder, url, {EXPIRES}"
        );
        let won = self
            .run(|c| c.query_opt(&sql, &[&node, &url, &ms])?.as_ref().map(Self::row).transpose())?;
        match won {
            Some(info) => Ok(Attempt::Won(info)),
            None => Ok(Attempt::Held(self.read()?)),
        }
    }

    /// Extends our lease if the row still carries our epoch; `None` if it does not (taken).
    fn renew(
        &mut self,
        epoch: u64,
        node: &str,
        lease: Duration,
    ) -> Result<Option<LeaderInfo>, LeaseError> {
        let ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let sql = format!(
            "UPDATE plasma_leader SET expires_at = clock_timestamp() + $3::bigint * interval '1 millisecond' \
             WHERE id = 1 AND epoch = $1 AND holder = $2 RETURNING epoch, holder, url, {EXPIRES}"
        );
        self.run(|c| c.query_opt(&sql, &[&epoch, &node, &ms])?.as_ref().map(Self::row).transpose())
    }

    /// Gives the lease up (a graceful stop): a standby takes over at its next attempt instead of
    /// after the lease. Only ours: the epoch must still be ours.
    fn release(&mut self, epoch: u64) -> Result<(), LeaseError> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        self.run(|c| {
            c.execute(
                "UPDATE plasma_leader SET expires_at = clock_timestamp() - interval '1 millisecond' \
                 WHERE id = 1 AND epoch = $1",
                &[&epoch],
            )
        })?;
        Ok(())
    }

    /// The lease row.
    fn read(&mut self) -> Result<Option<LeaderInfo>, LeaseError> {
        let sql = format!("SELECT epoch, holder, url, {EXPIRES} FROM plasma_leader WHERE id = 1");
        self.run(|c| c.query_opt(&sql, &[])?.as_ref().map(Self::row).transpose())
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
    fn spawn(e: Election, role: watch::Sender<Role>) -> Result<Self, LeaseError> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("operator-election".into())
            .spawn(move || election_loop(&e, &role, &stopped))
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
fn election_loop(e: &Election, role: &watch::Sender<Role>, stopped: &mpsc::Receiver<Option<u64>>) {
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
            None => match db.as_mut().map_or_else(
                || Err(LeaseError::Postgres("no connection".into())),
                |db| db.try_acquire(&e.node_id, &e.advertise, e.lease),
            ) {
                Ok(Attempt::Won(info)) => {
                    let epoch = info.epoch;
                    // Measured after the answer: conservative (the lease began before).
                    leading = Some((epoch, Instant::now() + e.lease.saturating_sub(margin)));
                    info!(target: "operator::ha", epoch, node = %e.node_id, url = %e.advertise, expires_at = %info.expires_at, "lease acquired: leading");
                    role.send_replace(Role::Leader { epoch, lease: info });
                }
                Ok(Attempt::Held(leader)) => {
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
                        role.send_replace(Role::Deposed { epoch, reason });
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
                        let now = db.as_mut().and_then(|db| db.read().ok().flatten());
                        let reason = match now {
                            Some(l) => format!(
                                "the lease is now epoch {} held by {} ({})",
                                l.epoch, l.holder, l.url
                            ),
                            None => "the lease row is gone".to_owned(),
                        };
                        error!(target: "operator::ha", epoch, %reason, "lease lost: stopped leading");
                        role.send_replace(Role::Deposed { epoch, reason });
                        return;
                    }
                    Err(err) => {
                        if Instant::now() >= deadline {
                            let reason =
                                format!("no renewal before the lease ran out (last error: {err})");
                            error!(target: "operator::ha", epoch, %reason, "lease lost: stopped leading");
                            role.send_replace(Role::Deposed { epoch, reason });
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
        let store = Arc::new(open_postgres(&url, config.store.pool).await?);
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
        let view = Arc::new(HaView {
            node_id: election.node_id.clone(),
            role: role.clone(),
            transitions: AtomicU64::new(0),
            serving_leader: false.into(),
        });
        let common = Common::new(&config, Some(view.clone()), shown.clone(), "postgres");
        let shared = api::Shared::new(Arc::new(ApiContext::standby(common.clone(), store.clone())));
        let server = Server::serve(listener, shared.clone());
        info!(target: "operator::ha", %addr, node = %election.node_id, url = %election.advertise, store = %shown, lease_ms = config.ha.lease_ms, "standby API up; electing");
        let thread = ElectionThread::spawn(election, role_tx)?;
        let (exit_tx, exit) = watch::channel(None);
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
            },
            exit_tx,
        ));
        Ok(Self { addr, role, exit, server, supervisor, stop, election: Some(thread), view })
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
}

/// Opens the PostgreSQL store off the async workers (its connections live on threads of its own).
async fn open_postgres(url: &str, pool: usize) -> Result<Store, NodeError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        Store::open_postgres(&url, &crate::store::PgOptions { pool })
    })
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
    exit: watch::Sender<Option<String>>,
) -> Option<Leading> {
    let mut leading: Option<Leading> = None;
    loop {
        let now = role.borrow_and_update().clone();
        match now {
            Role::Leader { epoch, .. } if leading.is_none() => {
                match start_leading(&config, epoch, &t.common).await {
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
                        let _ = exit
                            .send(Some(format!("could not start leading in epoch {epoch}: {e}")));
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
                let _ = exit.send(Some(format!("lost the lease of epoch {epoch}: {reason}")));
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
            let _ = exit.send(Some("the election stopped".into()));
            return None;
        }
    }
}

/// A fresh store handle fenced to `epoch`, and everything a leader runs on it. The chain is
/// loaded only after the fence is set: every write of the previous leader that committed is in
/// what it loads, and none can commit afterwards (OP-HA-2).
async fn start_leading(config: &Config, epoch: u64, common: &Common) -> Result<Leading, NodeError> {
    let url = config.store.url.clone().unwrap_or_default();
    let store = open_postgres(&url, config.store.pool).await?;
    store.set_fence(epoch);
    Leading::start(config, store, common.clone()).await
}
