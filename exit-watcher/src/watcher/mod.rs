//! The watcher: one struct, one duty per file (WATCH rules in 05-watcher.md).
//!
//! | File | Duty |
//! |---|---|
//! | `follow.rs` | following L1 and its reorganisations (WATCH-1) |
//! | `blocks.rs` | block availability and validity (WATCH-2, WATCH-3) |
//! | `../judge.rs` | deciding: the validated view and what is invalid (pure, WATCH-4 … WATCH-7) |
//! | `challenge.rs` | challenges and responses (WATCH-8) |
//! | `exits.rs` | exits on a byzantine chain, budget, processing (WATCH-9, WATCH-10, WATCH-13) |
//! | `batch.rs` | batch exits: the mass exit's batches, their payout, the audit of every batch (WATCH-9, WATCH-16) |
//! | `act.rs` | sending actions, once, with margins (WATCH-11) |
//! | `guarding.rs` | guards and handed-in payments (EXIT-9, WATCH-6, WATCH-14) |
//! | `store.rs` | the redb store |
//! | `da.rs` | the tower (issue 17): chunks, rebuilds, the read routes' access (`crate::tower`) |
//!
//! [`Watcher::step`] runs them in that order, once per poll.

use crate::judge::{ChainView, Event};
use crate::{
    budget,
    guards::{self, GuardError},
};
use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::Log,
};
use parking_lot::Mutex;
use plasma_contracts::{InFlightExitGame, PlasmaFramework, StandardExitGame};
use plasma_spec::{SigningDomain, UtxoPos};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, VecDeque},
    path::Path,
    sync::Arc,
    time::Duration,
};
use tracing::{debug, info, warn};

mod act;
mod batch;
mod blocks;
mod challenge;
pub mod crosscheck;
mod da;
mod exits;
mod follow;
pub(crate) mod gauges;
mod guarding;
pub mod overview;
mod store;

const ACTIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("actions");
const GUARDS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("guards");
/// Payments guarded owners signed and handed in before they were known to be included (WATCH-6):
/// tx hash → signed transaction.
const GUARDED_IN_FLIGHT: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("guarded_in_flight");
/// Every event, in order: the watcher's record of what happened and what it did survives restarts.
const EVENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("events");
// The validated view and the work in progress, persisted so a restart resumes where it stopped
// (nothing is re-downloaded or re-verified) and a kill -9 loses nothing.
use crate::judge::history::UTXOS as V_UTXOS;
// Spends and blocks: `crate::judge::history` (WATCH-15).
const V_META: TableDefinition<'_, &str, u64> = TableDefinition::new("view_meta");
const V_PENDING: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("pending_blocks");
const V_EXITS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("watched_exits");
const V_IFES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("watched_in_flight_exits");
/// LEDGER-9's exiting outputs (`plasma_spec::ExitingOutputs` as JSON) under one key.
const V_EXITING: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("view_exiting");
/// Hashes of the L1 blocks the cursor stopped at, to notice a reorganisation under it (WATCH-1).
const L1_HASHES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("l1_hashes");
/// How many cursor hashes are kept: a reorganisation deeper than this rescans from genesis.
const L1_HASHES_KEPT: usize = 256;

/// Gas limit of one challenge or response (the heaviest, an in-flight output challenge with two
/// proofs, uses well under half of this; docs/benchmarks.md).
const ACTION_GAS: u64 = 600_000;
/// Outputs per mass-exit transaction: about 130k gas each (docs/benchmarks.md), so a batch stays
/// near 7M gas, well inside any L1 block, while a hundred owners need two transactions.
const MASS_EXIT_BATCH: usize = 50;
/// Gas limit per output of a mass exit, with room over the measured cost.
const MASS_EXIT_GAS_PER_OUTPUT: u64 = 200_000;
/// Extra gas per input of an in-flight exit start (2 inputs: 346k measured).
const IN_FLIGHT_GAS_PER_INPUT: u64 = 150_000;

/// Writes validated UTXOs straight into a watcher's store, for the restart benchmark.
#[doc(hidden)]
pub fn write_view_utxos(
    data_dir: &Path,
    utxos: &[(UtxoPos, plasma_spec::Output)],
) -> Result<(), WatcherError> {
    std::fs::create_dir_all(data_dir).map_err(st)?;
    let db = Database::create(data_dir.join("watcher.redb")).map_err(st)?;
    let tx = db.begin_write().map_err(st)?;
    {
        let mut table = tx.open_table(V_UTXOS).map_err(st)?;
        for (pos, out) in utxos {
            table.insert(pos.to_u128(), out.to_packed().as_slice()).map_err(st)?;
        }
    }
    tx.commit().map_err(st)
}

/// An owner's exit authorization for this watcher (EXIT-9), given through the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Guard {
    /// The owner whose funds the watcher guards.
    pub owner: Address,
    /// Authorization deadline.
    pub deadline: U256,
    /// Authorization nonce.
    pub nonce: U256,
    /// The owner's EIP-712 signature of `ExitAuthorization(watcher, deadline, nonce)`.
    pub signature: Bytes,
}

/// Settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The framework.
    pub framework: Address,
    /// The operator's API.
    pub operator_url: String,
    /// L1 confirmations before an event is acted on.
    pub confirmations: u64,
    /// Poll interval.
    pub poll: Duration,
    /// How long a committed block may stay unavailable before it counts as withheld.
    pub availability_timeout: Duration,
    /// Call `processExits` for ETH when the queue head is due (WATCH-10).
    pub process_exits: bool,
    /// An action sent with less than this left before its deadline raises an alert (WATCH-11).
    pub deadline_margin: Duration,
    /// An action not mined after this long is re-sent with a higher fee (same nonce).
    pub stuck_after: Duration,
    /// L1's block time (12 s on Ethereum), for the timing condition (WATCH-12).
    pub l1_block_time: Duration,
    /// How blocks are downloaded: stall timeout, prefetch (WATCH-3).
    pub download: crate::download::DownloadSettings,
}

impl Settings {
    /// The longest the watcher may take from a bad block's commitment to its exits' inclusion on
    /// L1 (WATCH-12): the availability timeout, the confirmation depth, one fee bump of a stuck
    /// transaction, and one poll.
    pub fn reaction_time(&self) -> Duration {
        let depth = self
            .l1_block_time
            .saturating_mul(u32::try_from(self.confirmations).unwrap_or(u32::MAX));
        self.availability_timeout
            .saturating_add(depth)
            .saturating_add(self.stuck_after)
            .saturating_add(self.poll)
    }

    /// WATCH-12: refuses settings whose reaction time exceeds half the challenge period
    /// `min_exit_period` (seconds): with them, the exits of a bad block could come first.
    pub fn check_timing(&self, min_exit_period: u64) -> Result<(), WatcherError> {
        let reaction = self.reaction_time();
        if reaction.as_secs_f64() * 2.0 > min_exit_period as f64 {
            return Err(WatcherError::UnsafeTiming {
                availability_timeout: self.availability_timeout.as_secs_f64(),
                confirmations: self.confirmations,
                l1_block_time: self.l1_block_time.as_secs_f64(),
                stuck_after: self.stuck_after.as_secs_f64(),
                poll: self.poll.as_secs_f64(),
                reaction: reaction.as_secs_f64(),
                min_exit_period,
            });
        }
        Ok(())
    }
}

/// Why the watcher failed a step.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// L1 RPC.
    #[error("L1: {0}")]
    L1(String),
    /// Local storage.
    #[error("store: {0}")]
    Store(String),
    /// The `--da.*` settings (issue 17).
    #[error("{0}")]
    Da(#[from] crate::tower::DaConfigError),
    /// WATCH-12: the watcher could not react to a bad block in time to protect anyone.
    #[error(
        "unsafe timing (WATCH-12): availability timeout {availability_timeout}s + {confirmations} \
         confirmations x {l1_block_time}s + stuck-after {stuck_after}s + poll {poll}s = {reaction}s, \
         more than half the challenge period ({min_exit_period}s): guarded owners' exits could \
         come after the exits of a withheld or invalid block; lower --availability-timeout or \
         --stuck-after, or deploy a longer period"
    )]
    UnsafeTiming {
        /// Seconds.
        availability_timeout: f64,
        /// Confirmation depth.
        confirmations: u64,
        /// Seconds per L1 block.
        l1_block_time: f64,
        /// Seconds before a fee bump.
        stuck_after: f64,
        /// Seconds between polls.
        poll: f64,
        /// Their sum.
        reaction: f64,
        /// The deployment's `minExitPeriod`.
        min_exit_period: u64,
    },
}

fn l1(e: impl std::fmt::Display) -> WatcherError {
    WatcherError::L1(e.to_string())
}

fn st(e: impl std::fmt::Display) -> WatcherError {
    WatcherError::Store(e.to_string())
}

/// An in-flight exit being watched: its transaction and which inputs are piggybacked.
#[derive(Clone, Debug)]
struct WatchedInFlight {
    tx: plasma_spec::Transaction,
    piggybacked_inputs: Vec<u8>,
    piggybacked_outputs: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct StoredInFlight {
    tx: Bytes,
    inputs: Vec<u8>,
    outputs: Vec<u8>,
}

/// A committed block (or deposit) not yet applied to the view.
struct Pending {
    blknum: u64,
    root: B256,
    timestamp: u64,
    /// Deposit blocks carry their transaction; child blocks are downloaded.
    deposit_tx: Option<Bytes>,
}

#[derive(Serialize, Deserialize)]
struct StoredPending {
    root: B256,
    timestamp: u64,
    deposit_tx: Option<Bytes>,
}

/// Status for `/status`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Last L1 block scanned.
    pub l1_cursor: u64,
    /// Last child-chain block validated.
    pub synced_block: u64,
    /// Whether the chain is safe (no withheld or invalid block).
    pub safe: bool,
    /// The first bad block.
    pub byzantine_from: Option<u64>,
    /// Blocks committed but not yet downloaded.
    pub pending_blocks: usize,
    /// Standard exits being watched.
    pub exits_watched: usize,
    /// Owners guarded.
    pub guarded: usize,
    /// Guarded outputs worth exiting, at the last funding check (WATCH-13).
    pub guarded_outputs: usize,
    /// Of those, how many the balance could not pay to exit at that check.
    pub unaffordable_outputs: usize,
    /// Events so far.
    pub events: usize,
    /// Block downloads in progress (WATCH-3): bytes received of expected, rate, last error.
    pub downloads: Vec<crate::download::DownloadProgress>,
    /// The newest availability faults (issue 17; empty without `--da.*`).
    pub da_faults: Vec<crate::tower::Fault>,
    /// The tower: index, `k`, `n`, chunks stored, rebuilt blocks (`None` without `--da.*`).
    pub da: Option<crate::tower::DaStatus>,
    /// A read-only monitor (`--monitor`, issue 20): it judges and sends nothing.
    pub monitor: bool,
    /// The cross-checked peers (`--cross-check`, issue 20): reachability, the blocks agreed and
    /// any standing disagreement.
    pub cross_check: Vec<crosscheck::PeerStatus>,
}

/// The last funding check (WATCH-13): what exiting every guarded output worth exiting would
/// cost the tower now, against its balance. Made at every new synced block, and at a mass exit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Funding {
    /// The synced block the check was made at (`u64::MAX`: none yet).
    pub synced_block: u64,
    /// Guarded outputs worth exiting (not dust).
    pub worth: usize,
    /// Of those, how many the balance could not pay to exit.
    pub short: usize,
    /// The tower's L1 balance (wei).
    pub balance: U256,
    /// What exiting all `worth` outputs would cost up front (bonds and gas at the current price
    /// with the tower's margin, in batches), wei.
    pub needed: U256,
    /// When the check was made (unix seconds, this machine's clock).
    pub at: u64,
}

/// The watcher.
pub struct Watcher {
    settings: Settings,
    me: Address,
    provider: DynProvider,
    framework: PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    standard: StandardExitGame::StandardExitGameInstance<DynProvider>,
    in_flight: InFlightExitGame::InFlightExitGameInstance<DynProvider>,
    /// The batch exit game (EXIT-12), if the deployment has one.
    batch_game: Option<batch::Game>,
    /// Every batch exit read from L1, its claims' states and what the tower derived (WATCH-16).
    batches: Mutex<batch::Batches>,
    in_flight_exits: Mutex<BTreeMap<B256, WatchedInFlight>>,
    /// Block downloads: the next block and the prefetched ones (WATCH-3).
    downloads: crate::download::Downloader,
    db: Arc<Database>,
    domain: SigningDomain,
    view: Mutex<ChainView>,
    pending: Mutex<VecDeque<Pending>>,
    exits: Mutex<BTreeMap<UtxoPos, (Address, u64)>>,
    /// Guarded outputs whose standard exit L1 showed started (a cache; cleared by a reorg).
    exit_seen_started: Mutex<std::collections::BTreeSet<U256>>,
    min_exit_period: u64,
    /// The L1 block the framework was created in (`deploymentBlock()`): no log of the system is
    /// older, so reading L1 starts here, never at genesis (WATCH-1).
    deployment_block: u64,
    /// Tokens with exit queues the watcher has seen (ETH always).
    tokens: Mutex<std::collections::BTreeSet<Address>>,
    /// Sends every action (confirmed nonce, fee bumps, attempts per action key).
    sender: plasma_contracts::sender::Sender,
    events: Mutex<Vec<Event>>,
    cursor: Mutex<u64>,
    /// The newest L1 block timestamp read (the availability clock's L1 side, WATCH-3).
    l1_time: Mutex<u64>,
    /// Last funding check (WATCH-13).
    funding: Mutex<Funding>,
    /// Dust outputs last reported skipped.
    dust_reported: Mutex<usize>,
    /// The highest child block committed on L1 (late deposits below it may be spent, WATCH-6).
    last_child_committed: Mutex<u64>,
    /// Late deposits already reported as left to their owners.
    late_reported: Mutex<std::collections::BTreeSet<UtxoPos>>,
    /// The tower or reader (issue 17), once [`Watcher::with_tower`] set it.
    tower: Option<Arc<crate::tower::Tower>>,
    /// Trees and wire forms the read routes built recently.
    reads: crate::tower::read::ReadCache,
    /// The L1 endpoints' health (issue #18), once [`Watcher::with_l1_health`] set it.
    l1_health: plasma_contracts::l1::L1Health,
    /// Alerts (issue 20, `crate::alerts`), once [`Watcher::with_alerts`] set them.
    alerts: Option<Arc<crate::alerts::Alerts>>,
    /// The dashboard's actions journal and caches (issue 20, `overview.rs`).
    dashboard: overview::DashboardState,
    /// Monitor mode and cross-checks between watchers (issue 20, `crosscheck.rs`).
    oversight: crosscheck::Oversight,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("me", &self.me).finish_non_exhaustive()
    }
}

impl Watcher {
    /// Opens the watcher's store and binds it to L1.
    pub async fn new(
        settings: Settings,
        me: Address,
        provider: DynProvider,
        data_dir: &Path,
    ) -> Result<Self, WatcherError> {
        std::fs::create_dir_all(data_dir).map_err(st)?;
        let db = Arc::new(
            crate::judge::History::open_database(&data_dir.join("watcher.redb")).map_err(st)?,
        );
        let history = crate::judge::History::open(db.clone()).map_err(st)?;
        let tx = db.begin_write().map_err(st)?;
        tx.open_table(ACTIONS).map_err(st)?;
        tx.open_table(GUARDS).map_err(st)?;
        tx.open_table(EVENTS).map_err(st)?;
        tx.open_table(V_UTXOS).map_err(st)?;
        tx.open_table(V_META).map_err(st)?;
        tx.open_table(V_PENDING).map_err(st)?;
        tx.open_table(V_EXITS).map_err(st)?;
        tx.open_table(V_IFES).map_err(st)?;
        tx.open_table(V_EXITING).map_err(st)?;
        tx.open_table(L1_HASHES).map_err(st)?;
        tx.open_table(GUARDED_IN_FLIGHT).map_err(st)?;
        tx.open_table(batch::BATCHES).map_err(st)?;
        tx.commit().map_err(st)?;
        let past_events: Vec<Event> = {
            use redb::ReadableTable;
            let tx = db.begin_read().map_err(st)?;
            let table = tx.open_table(EVENTS).map_err(st)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(st)? {
                let (_, v) = entry.map_err(st)?;
                out.push(serde_json::from_slice(v.value()).map_err(st)?);
            }
            out
        };
        let chain_id = provider.get_chain_id().await.map_err(l1)?;
        let plasma_contracts::Contracts { framework, standard, in_flight } =
            plasma_contracts::Contracts::bind(settings.framework, provider.clone())
                .await
                .map_err(l1)?;
        let batch_game = Self::bind_batch_game(&framework, provider.clone()).await?;
        let domain = SigningDomain::new(chain_id, settings.framework);
        let min_exit_period: u64 =
            framework.minExitPeriod().call().await.map_err(l1)?.try_into().unwrap_or(u64::MAX);
        settings.check_timing(min_exit_period)?;
        // Where reading L1 starts on a fresh store (0 for a deployment from before the getter).
        let deployment_block = plasma_contracts::deployment_block(&framework).await.map_err(l1)?;
        let sender = plasma_contracts::sender::Sender::new(
            provider.clone(),
            me,
            plasma_contracts::sender::SendPolicy {
                bump_percent: 25,
                stuck_after: settings.stuck_after,
            },
        );
        let downloads = crate::download::Downloader::new(
            &settings.operator_url,
            settings.download,
            settings.poll,
        );
        let watcher = Self {
            view: Mutex::new(
                ChainView::with_history(domain.clone(), history)
                    .with_exit_grace(plasma_spec::exit_spend_grace(min_exit_period)),
            ),
            domain,
            settings,
            me,
            provider,
            framework,
            standard,
            in_flight,
            batch_game,
            batches: Mutex::new(batch::Batches::default()),
            in_flight_exits: Mutex::new(BTreeMap::new()),
            min_exit_period,
            deployment_block,
            sender,
            tokens: Mutex::new(std::collections::BTreeSet::from([Address::ZERO])),
            downloads,
            db,
            pending: Mutex::new(VecDeque::new()),
            exits: Mutex::new(BTreeMap::new()),
            exit_seen_started: Mutex::new(std::collections::BTreeSet::new()),
            events: Mutex::new(past_events),
            cursor: Mutex::new(0),
            l1_time: Mutex::new(0),
            funding: Mutex::new(Funding { synced_block: u64::MAX, ..Funding::default() }),
            dust_reported: Mutex::new(0),
            last_child_committed: Mutex::new(0),
            late_reported: Mutex::new(std::collections::BTreeSet::new()),
            tower: None,
            reads: crate::tower::read::ReadCache::default(),
            l1_health: plasma_contracts::l1::L1Health::default(),
            alerts: None,
            dashboard: overview::DashboardState::default(),
            oversight: crosscheck::Oversight::new(chain_id),
        };
        watcher.restore()?;
        Ok(watcher)
    }

    /// Shows `health` (the provider's endpoints, from `plasma_contracts::l1::connect`) in
    /// `/status` as `l1.endpoints`.
    #[must_use]
    pub fn with_l1_health(mut self, health: plasma_contracts::l1::L1Health) -> Self {
        self.l1_health = health;
        self
    }

    /// Hands events to `alerts` and writes its heartbeat (issue 20): the alert thread reads
    /// only those atomics, never a lock of the loop.
    #[must_use]
    pub fn with_alerts(mut self, alerts: Arc<crate::alerts::Alerts>) -> Self {
        self.alerts = Some(alerts);
        self.beat(false);
        self
    }

    /// The alerts handle (its `metrics_text()` for `/metrics`), when set.
    pub fn alerts(&self) -> Option<&crate::alerts::Alerts> {
        self.alerts.as_deref()
    }

    /// Writes the alert thread's heartbeat: cursor, synced block, blocks waiting, the last
    /// funding check, and (`step_ok`) that a step just completed without error.
    fn beat(&self, step_ok: bool) {
        let Some(alerts) = &self.alerts else { return };
        let hb = alerts.heartbeat();
        hb.cursor(*self.cursor.lock());
        hb.synced(self.view.lock().synced_block);
        hb.pending(self.pending.lock().len());
        if let Some(f) = self.funding() {
            hb.funding(f.worth, f.short, f.needed);
        }
        if step_ok {
            hb.step_ok();
        }
    }

    /// Each L1 endpoint's health (empty when the provider was not built by `l1::connect`).
    pub fn l1_endpoints(&self) -> Vec<plasma_contracts::l1::EndpointStatus> {
        self.l1_health.snapshot()
    }

    /// This watcher's L1 address (the `exitor` owners authorize).
    pub const fn address(&self) -> Address {
        self.me
    }

    /// The signing domain.
    pub const fn domain(&self) -> &SigningDomain {
        &self.domain
    }

    fn event(&self, e: Event) {
        // A monitor never acts, so its findings would repeat every poll (`crosscheck.rs`).
        if self.is_monitor() && self.oversight.repeats(&e, &self.events.lock()) {
            return;
        }
        info!(target: "watcher::event", event = ?e, "event");
        if let Some(alerts) = &self.alerts {
            alerts.event(&e); // never waits (issue 20)
        }
        let mut events = self.events.lock();
        let persisted = (|| -> Result<(), WatcherError> {
            let json = serde_json::to_vec(&e).map_err(st)?;
            let tx = self.db.begin_write().map_err(st)?;
            tx.open_table(EVENTS)
                .map_err(st)?
                .insert(events.len() as u64, json.as_slice())
                .map_err(st)?;
            tx.commit().map_err(st)
        })();
        if let Err(err) = persisted {
            warn!(target: "watcher::event", error = %err, "event not persisted");
        }
        events.push(e);
    }

    /// Events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().clone()
    }

    /// The last funding check (WATCH-13); `None` before the first.
    pub fn funding(&self) -> Option<Funding> {
        let f = self.funding.lock().clone();
        (f.synced_block != u64::MAX).then_some(f)
    }

    /// Status figures.
    pub fn status(&self) -> Status {
        let (da_faults, da) = match &self.tower {
            Some(t) => (t.faults(crate::tower::STATUS_FAULTS), Some(t.status())),
            None => (Vec::new(), None),
        };
        let funding = self.funding.lock().clone();
        let view = self.view.lock();
        Status {
            l1_cursor: *self.cursor.lock(),
            synced_block: view.synced_block,
            safe: view.byzantine_from.is_none(),
            byzantine_from: view.byzantine_from,
            pending_blocks: self.pending.lock().len(),
            exits_watched: self.exits.lock().len(),
            guarded: self.guards().map_or(0, |g| g.len()),
            guarded_outputs: funding.worth,
            unaffordable_outputs: funding.short,
            events: self.events.lock().len(),
            downloads: self.downloads.progress(),
            da_faults,
            da,
            monitor: self.is_monitor(),
            cross_check: self.cross_check_status(),
        }
    }

    /// Runs until `shutdown` flips.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Only the loop's own events refresh the stall detector's heartbeat (issue 20).
            let stepped = crate::alerts::in_loop(self.step()).await;
            self.beat(stepped.is_ok());
            self.dashboard.step_done(stepped.is_ok()); // the dashboard's stall banner
            match stepped {
                // Behind L1 by more than a step's range (WATCH-1): the next step at once.
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    if let Some(alerts) = &self.alerts {
                        alerts.heartbeat().step_failed(); // stall detector: `stepFailing`
                    }
                    warn!(target: "watcher", error = %e, "step failed; retrying");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One round, the WATCH rules in order: follow L1 (WATCH-1), download and validate blocks
    /// (WATCH-2, WATCH-3), challenge what is invalid (WATCH-4, WATCH-5, WATCH-8), audit batch
    /// exits (WATCH-16), exit guarded funds on a byzantine chain (WATCH-9) within the budget
    /// (WATCH-13), process due exits (WATCH-10) and pay out the tower's processed batches
    /// (EXIT-15). Every action goes through `act` (WATCH-11). Returns whether L1 still holds
    /// confirmed blocks this step did not read (the next step is due at once).
    pub async fn step(&self) -> Result<bool, WatcherError> {
        let behind = self.follow_l1().await?;
        self.beat(false);
        self.validate_blocks().await?;
        self.beat(false);
        // Standard and in-flight challenges together: sent back to back (issue 19).
        self.challenge_exits().await?;
        self.audit_batches().await?;
        self.mass_exit_if_byzantine().await?;
        self.check_funding().await?;
        self.beat(false);
        if self.settings.process_exits {
            self.process_due_exits().await?;
        }
        self.pay_out_batches().await?;
        Ok(behind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(availability: u64, stuck: u64) -> Settings {
        Settings {
            framework: Address::ZERO,
            operator_url: String::new(),
            confirmations: 1,
            poll: Duration::from_millis(500),
            availability_timeout: Duration::from_secs(availability),
            process_exits: false,
            deadline_margin: Duration::from_secs(3600),
            stuck_after: Duration::from_secs(stuck),
            l1_block_time: Duration::from_secs(1),
            download: crate::download::DownloadSettings::default(),
        }
    }

    #[test]
    fn timing_that_lets_a_bad_block_exit_first_is_refused() {
        // The reproduced theft: p = 20 s with the old fixed 30 s timeout.
        let err = settings(30, 60).check_timing(20).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("WATCH-12") && msg.contains("(20s)") && msg.contains("30s"), "{msg}");
        // What scripts/devnet derives (A = p/6, s = p/10) works at both periods.
        settings(3, 2).check_timing(20).unwrap();
        settings(10, 6).check_timing(60).unwrap();
        // The production defaults against a week.
        settings(30, 60).check_timing(7 * 24 * 3600).unwrap();
        // The boundary: R = 10 + 1 + 3 + 0.5 = 14.5 s needs p >= 29 s.
        assert!(settings(10, 3).check_timing(28).is_err());
        settings(10, 3).check_timing(29).unwrap();
    }
}
