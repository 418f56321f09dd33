//! What the dashboard shows (`GET /v1/dashboard`, issue 20): one document with everything a
//! person needs at a glance — is the chain safe, is the watcher keeping up, what is queued to
//! exit and when, what went wrong and what the tower did about it, whom it guards and whether it
//! can pay for guarding them.
//!
//! Three things here are worth the care:
//! - **The actions journal.** Every action the tower sends (`Watcher::act`) is written down with
//!   its outcome, L1 transaction, the time it went out and, once `check_margin` knows it, its
//!   deadline and the seconds that were left. Only the last [`JOURNAL_KEPT`] stay in memory; the
//!   redb `actions` table (one row per done action, kept across restarts) fills in the rest, so
//!   after a restart the page still lists every action done, only without the details.
//! - **The exit queues.** L1 only answers a queue's head and length (`queueHead`). The full queue
//!   is replayed from the framework's logs: `ExitQueued` inserts a priority, `ExitsProcessed`
//!   pops `count` of the smallest (`processExits` is the only way anything leaves a queue, and it
//!   takes them in priority order). The replay is checked against `queueHead` at every refresh;
//!   when they disagree (an L1 reorganisation under the replay, a log the node did not return)
//!   the page shows only the head and length, marked incomplete, instead of a list that could be
//!   wrong, and the replay starts again — from the framework's deployment block (its
//!   `deploymentBlock()`; nothing can be queued before it), never from L1 genesis, and only
//!   after a back-off that doubles at each disagreement in a row ([`REPLAY_BACKOFF`] up to
//!   [`REPLAY_BACKOFF_MAX`]): an endpoint that keeps dropping a log cannot make every refresh
//!   re-read the chain.
//! - **The cost of a page view.** The page polls every 2 s and anyone who can reach the port can
//!   call the route in a loop. The document is built at most once per [`REFRESH`] whatever the
//!   request rate, by one task that every concurrent caller waits on (callers do not queue
//!   behind each other), and its result — a failure too, e.g. L1 hanging until
//!   [`BUILD_TIMEOUT`] — is kept for [`REFRESH`]: with L1 hung, N open tabs get their 503 after
//!   one timeout, not N. The build runs in its own task, so a caller that goes away cannot
//!   cancel it for the others. The view lock is held for one pass over the UTXO set, and the log
//!   replay reads at most [`MAX_RANGES_PER_REFRESH`] ranges per refresh, so the dashboard can
//!   never starve the watcher's own loop.
//! - **A stall.** A chain with no bad block is not "safe" if the watcher stopped looking: when
//!   the loop has not completed a step for the stall time, the document carries `stalled` (the
//!   alert thread's verdict when alerts run, else no completed step for
//!   [`DEFAULT_STALL_AFTER`]) and the page shows STALLED instead of SAFE.

#[allow(clippy::wildcard_imports)]
use super::*;
use std::{
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap},
    time::Instant,
};

/// Actions kept in memory with their details (older ones are listed from the store).
pub(crate) const JOURNAL_KEPT: usize = 1_000;
/// Events and actions shown (the newest); the document says how many there are in all.
const SHOWN: usize = 200;
/// Exits listed per token queue (the soonest due); the document gives the queue's length.
const QUEUE_SHOWN: usize = 100;
/// The document is rebuilt at most this often.
const REFRESH: std::time::Duration = std::time::Duration::from_secs(2);
/// The longest a refresh may take (its L1 reads) before the route answers 503.
const BUILD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The first wait before replaying the exit queues again after the replay disagreed with L1.
const REPLAY_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);
/// The longest such wait.
const REPLAY_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(600);
/// Without alerts (whose `--alert.stall-after` decides otherwise), how long without a completed
/// step counts as stalled (the flag's default).
const DEFAULT_STALL_AFTER: u64 = 300;
/// `eth_getLogs` ranges (of the follower's width) the queue replay reads per refresh.
const MAX_RANGES_PER_REFRESH: u64 = 20;
/// Width of one `eth_getLogs` range (the follower's `MAX_LOG_RANGE`).
const LOG_RANGE: u64 = 2_000;
/// The framework's nonce flags (`PlasmaFramework.FLAG_NONCE`, `FLAG_BATCH`): which game queued
/// an exit, and whether its position field is its id.
const FLAG_NONCE: u64 = 1 << 63;
const FLAG_BATCH: u64 = 1 << 62;

/// One action the tower sent (WATCH-11), as the journal keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    /// The action's key (`challenge:…`, `mass-exit:…`; its kind before the first `:`).
    pub key: String,
    /// The kind (the key's prefix).
    pub kind: String,
    /// `mined`, `reverted`, `pending` (not mined yet, its fee will be bumped), `refused` (the
    /// node refused it, nothing sent), `landedLate` (an earlier attempt was mined after all),
    /// `done` (listed from the store: done before this process started).
    pub outcome: String,
    /// Its L1 transaction, when one was sent.
    pub l1_tx: Option<B256>,
    /// The node's or contract's reason, for `reverted` and `refused`.
    pub reason: Option<String>,
    /// When it went out (unix seconds, this machine's clock); `None` for `done`.
    pub sent_at: Option<u64>,
    /// The deadline it raced (unix seconds, L1 time), when the action has one.
    pub deadline: Option<u64>,
    /// Seconds that were left before the deadline when it was mined (L1 time).
    pub seconds_left: Option<u64>,
    /// Whether fewer than the margin's seconds were left (a `deadlineTight` event was raised).
    pub tight: bool,
    /// Attempts folded into this row (a pending one re-polled, a refusal repeated).
    pub attempts: u32,
}

/// A built document or why it could not be built (shared by every caller, so behind `Arc`s).
pub type Built = Result<Arc<Overview>, Arc<WatcherError>>;

/// The dashboard's state inside the watcher: the journal and the caches.
#[derive(Debug)]
pub(crate) struct DashboardState {
    journal: Mutex<VecDeque<ActionRecord>>,
    queues: tokio::sync::Mutex<QueueReplay>,
    doc: Mutex<DocCache>,
    /// When this process started (unix seconds): the "stalled since" of a loop that never
    /// completed a step.
    started: u64,
    /// The last step that completed without error (unix seconds, 0: none yet).
    last_step_ok: std::sync::atomic::AtomicU64,
}

impl Default for DashboardState {
    fn default() -> Self {
        Self {
            journal: Mutex::default(),
            queues: tokio::sync::Mutex::default(),
            doc: Mutex::default(),
            started: unix_now(),
            last_step_ok: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// The last document (or failure) and the build in flight, if any.
#[derive(Debug, Default)]
struct DocCache {
    last: Option<(Instant, Built)>,
    /// Set (to `Some`) by the build task when it ends; its sender dropped without a value means
    /// the task died, and the next caller starts another.
    building: Option<tokio::sync::watch::Receiver<Option<Built>>>,
}

/// The exit queues replayed from the framework's logs.
#[derive(Debug, Default)]
struct QueueReplay {
    /// Where the replay starts: the framework's deployment block, once the first refresh set it.
    start: Option<u64>,
    /// The last L1 block read (`start - 1` before the first range).
    scanned_to: Option<u64>,
    /// Disagreements with L1 in a row, and when the replay may start again.
    disagreements: u32,
    retry_at: Option<Instant>,
    heaps: BTreeMap<Address, BinaryHeap<Reverse<U256>>>,
    /// Priority → exit id (for flagged nonces: in-flight and batch exits).
    ids: BTreeMap<U256, U256>,
}

/// Everything the dashboard shows.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    /// This watcher's L1 address.
    pub watcher: Address,
    /// A read-only monitor: it takes no action.
    pub monitor: bool,
    /// When the document was built (unix seconds, this machine's clock).
    pub generated_at: u64,
    /// Chain safety.
    pub safety: Safety,
    /// L1: head, cursor, lag.
    pub l1: L1Overview,
    /// The child chain: committed head on L1, synced block, lag.
    pub child: ChildOverview,
    /// The exit queues per token.
    pub queues: Vec<QueueOverview>,
    /// The newest events (at most 200), oldest first.
    pub events: Vec<IndexedEvent>,
    /// How many events there are in all.
    pub events_total: usize,
    /// The newest actions (at most 200), oldest first.
    pub actions: Vec<ActionRecord>,
    /// How many actions there are in all (this process's and the store's).
    pub actions_total: usize,
    /// The deadline margin (seconds, WATCH-11): an action sent with less left is tight.
    pub deadline_margin: u64,
    /// Guarded owners and what they hold in the validated view.
    pub guarded: Vec<GuardedOwner>,
    /// The last funding check (WATCH-13), `None` before the first.
    pub funding: Option<FundingOverview>,
}

/// Safe, or byzantine since when and why.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Safety {
    /// No withheld or invalid block.
    pub safe: bool,
    /// The first bad block.
    pub byzantine_from: Option<u64>,
    /// The first `blockWithheld` or `invalidBlock` event.
    pub why: Option<Event>,
    /// The watcher's loop has not completed a step for the stall time: "safe" only means no
    /// bad block was seen while it still looked.
    pub stalled: bool,
    /// When it last completed one (unix seconds; this process's start if never), when stalled.
    pub stalled_since: Option<u64>,
}

/// L1 as the watcher sees it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct L1Overview {
    /// L1's latest block.
    pub head: u64,
    /// Its timestamp.
    pub head_time: u64,
    /// The last L1 block the watcher read.
    pub cursor: u64,
    /// The newest L1 timestamp it read.
    pub cursor_time: u64,
    /// Confirmations it waits for.
    pub confirmations: u64,
    /// `head - cursor`: `confirmations - 1` when it keeps up.
    pub lag_blocks: u64,
    /// `head_time - cursor_time`.
    pub lag_seconds: u64,
}

/// The child chain.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildOverview {
    /// The highest child block committed on L1 (read from L1's latest state; 0: none).
    pub committed: u64,
    /// The last block (child or deposit) the watcher validated.
    pub synced: u64,
    /// Child blocks committed and not yet validated.
    pub lag_blocks: u64,
    /// How long the oldest commitment not yet validated has waited (L1 time), 0 when none.
    pub lag_seconds: u64,
    /// Blocks (child and deposit) read from L1 and not yet validated.
    pub pending_blocks: usize,
}

/// One token's exit queue.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueOverview {
    /// The token (`0x0…0`: ETH).
    pub token: Address,
    /// The head's priority (L1's `queueHead`), `None` when empty.
    pub head: Option<U256>,
    /// The queue's length on L1.
    pub length: u64,
    /// Whether `exits` is the whole queue (false while the replay catches up or disagrees with
    /// L1: then only the head is listed).
    pub complete: bool,
    /// Its exits, soonest first (at most 100).
    pub exits: Vec<QueuedExit>,
}

/// One queued exit.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedExit {
    /// Its priority.
    pub priority: U256,
    /// When it may be processed (unix seconds, L1 time).
    pub exitable_at: u64,
    /// Whether it is due at L1's head.
    pub due: bool,
    /// `standard`, `inFlight` or `batch`.
    pub game: &'static str,
    /// The output position (`blknum/txindex/oindex`) for a standard exit; the priority's
    /// position field otherwise.
    pub position: String,
    /// The exit id (the position for a standard exit), when known.
    pub exit_id: Option<U256>,
}

/// An event and its index in `/events`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexedEvent {
    /// Its index.
    pub index: usize,
    /// The event.
    pub event: Event,
}

/// A guarded owner.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuardedOwner {
    /// The owner.
    pub owner: Address,
    /// Its authorization's deadline (unix seconds).
    pub deadline: U256,
    /// What it holds, per token, in outputs the watcher could exit (before any bad block).
    pub holdings: Vec<Holding>,
}

/// An owner's value in one token.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Holding {
    /// The token.
    pub token: Address,
    /// The sum (base units, decimal).
    pub amount: String,
    /// How many outputs.
    pub outputs: usize,
}

/// The funding check, amounts as decimal wei strings.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FundingOverview {
    /// The tower's L1 balance (wei).
    pub balance: String,
    /// What exiting every guarded output worth exiting would cost (wei).
    pub needed: String,
    /// `balance >= needed`.
    pub enough: bool,
    /// Guarded outputs worth exiting.
    pub worth: usize,
    /// Of which the balance cannot pay for.
    pub short: usize,
    /// When the check was made (unix seconds).
    pub at: u64,
    /// The synced block it was made at.
    pub synced_block: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The kind of an action key: what comes before the first `:`.
fn kind_of(key: &str) -> String {
    key.split(':').next().unwrap_or(key).to_owned()
}

impl DashboardState {
    /// Writes down an attempt of action `key`.
    pub(crate) fn record(
        &self,
        key: &str,
        outcome: &str,
        l1_tx: Option<B256>,
        reason: Option<String>,
    ) {
        let mut journal = self.journal.lock();
        // A pending attempt that is re-polled or fee-bumped, or an action refused again for the
        // same reason at every step, stays one row (with its attempts counted): a stuck action
        // cannot flood the journal and push the ones that matter out.
        if let Some(last) = journal.iter_mut().rev().find(|a| a.key == key)
            && (last.outcome == "pending" || (last.outcome == outcome && last.reason == reason))
        {
            last.outcome = outcome.to_owned();
            last.l1_tx = l1_tx.or(last.l1_tx);
            last.reason = reason;
            last.attempts = last.attempts.saturating_add(1);
            return;
        }
        if journal.len() >= JOURNAL_KEPT {
            journal.pop_front();
        }
        journal.push_back(ActionRecord {
            key: key.to_owned(),
            kind: kind_of(key),
            outcome: outcome.to_owned(),
            l1_tx,
            reason,
            sent_at: Some(unix_now()),
            deadline: None,
            seconds_left: None,
            tight: false,
            attempts: 1,
        });
    }

    /// Adds the deadline `check_margin` measured to the newest record of `key`.
    pub(crate) fn note_deadline(&self, key: &str, deadline: u64, left: u64, tight: bool) {
        if let Some(a) = self.journal.lock().iter_mut().rev().find(|a| a.key == key) {
            a.deadline = Some(deadline);
            a.seconds_left = Some(left);
            a.tight = tight;
        }
    }
}

impl QueueReplay {
    /// Forgets what was replayed (keeping the deployment block) and waits before replaying
    /// again, longer at each disagreement in a row.
    fn disagreed(&mut self) {
        self.disagreements = self.disagreements.saturating_add(1);
        let wait = REPLAY_BACKOFF
            .saturating_mul(1u32 << self.disagreements.saturating_sub(1).min(16))
            .min(REPLAY_BACKOFF_MAX);
        *self = Self {
            start: self.start,
            disagreements: self.disagreements,
            retry_at: Some(Instant::now() + wait),
            ..Self::default()
        };
    }
}

/// What a caller of [`Watcher::overview`] does.
enum Join {
    /// Answer this (built less than [`REFRESH`] ago).
    Fresh(Built),
    /// Wait for the build in flight.
    Wait(tokio::sync::watch::Receiver<Option<Built>>),
    /// Start the build and send its result (every later caller waits on it until then).
    Start(tokio::sync::watch::Sender<Option<Built>>, tokio::sync::watch::Receiver<Option<Built>>),
}

impl DocCache {
    fn join(&mut self) -> Join {
        if let Some((at, built)) = &self.last
            && at.elapsed() < REFRESH
        {
            return Join::Fresh(built.clone());
        }
        match &self.building {
            // A build in flight (its task alive: the sender not dropped).
            Some(rx) if rx.has_changed().is_ok() => Join::Wait(rx.clone()),
            _ => {
                let (tx, rx) = tokio::sync::watch::channel(None);
                self.building = Some(rx.clone());
                Join::Start(tx, rx)
            }
        }
    }

    /// The build ended: its result, success or failure, is what callers get for [`REFRESH`].
    fn finish(&mut self, built: Built) {
        self.last = Some((Instant::now(), built));
        self.building = None;
    }
}

impl DashboardState {
    /// The loop finished a step (`ok`: without error).
    pub(crate) fn step_done(&self, ok: bool) {
        if ok {
            self.last_step_ok.store(unix_now(), std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Watcher {
    /// The dashboard's document, rebuilt at most every 2 s by one task every caller waits on;
    /// a failure is kept as long as a document (see the module's docs).
    pub async fn overview(self: &Arc<Self>) -> Built {
        let join = self.dashboard.doc.lock().join();
        let mut building = match join {
            Join::Fresh(built) => return built,
            Join::Wait(rx) => rx,
            Join::Start(tx, rx) => {
                {
                    let watcher = Arc::clone(self);
                    tokio::spawn(async move {
                        // An L1 endpoint that hangs must not hang the page: it then says the
                        // watcher cannot see instead of waiting forever.
                        let built =
                            match tokio::time::timeout(BUILD_TIMEOUT, watcher.build_overview())
                                .await
                            {
                                Ok(Ok(doc)) => Ok(Arc::new(doc)),
                                Ok(Err(e)) => Err(Arc::new(e)),
                                Err(_) => Err(Arc::new(WatcherError::L1(format!(
                                    "L1 did not answer within {BUILD_TIMEOUT:?}"
                                )))),
                            };
                        if let Err(e) = &built {
                            warn!(target: "watcher::dashboard", error = %e, "dashboard not built");
                        }
                        watcher.dashboard.doc.lock().finish(built.clone());
                        let _ = tx.send(Some(built));
                    });
                    rx
                }
            }
        };
        let result = match building.wait_for(Option::is_some).await {
            Ok(built) => built.clone(),
            Err(_) => None,
        };
        result.unwrap_or_else(|| {
            Err(Arc::new(WatcherError::L1("the dashboard's build stopped".into())))
        })
    }

    /// Whether the loop is stalled: `Some(since)` (unix seconds: its last completed step, or
    /// this process's start) when it is.
    fn stalled_since(&self) -> Option<u64> {
        let last = self.dashboard.last_step_ok.load(std::sync::atomic::Ordering::Relaxed);
        let since = if last == 0 { self.dashboard.started } else { last };
        let stalled = match &self.alerts {
            // The alert thread's verdict (its stall time, its own view of L1's head).
            Some(alerts) => alerts.stalled(),
            None => unix_now().saturating_sub(since) >= DEFAULT_STALL_AFTER,
        };
        stalled.then_some(since)
    }

    async fn build_overview(&self) -> Result<Overview, WatcherError> {
        let latest = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(l1)?
            .ok_or_else(|| WatcherError::L1("no latest block".into()))?;
        let (head, head_time) = (latest.header.number, latest.header.timestamp);
        let next_child =
            self.framework.nextChildBlock().block(head.into()).call().await.map_err(l1)?;
        let committed = next_child.saturating_sub(1000);
        let queues = self.queues_overview(head, head_time).await?;

        let events = self.events();
        let why = events
            .iter()
            .find(|e| matches!(e, Event::BlockWithheld { .. } | Event::InvalidBlock { .. }))
            .cloned();
        let events_total = events.len();
        let shown_from = events_total.saturating_sub(SHOWN);
        let events: Vec<IndexedEvent> = events
            .into_iter()
            .enumerate()
            .skip(shown_from)
            .map(|(index, event)| IndexedEvent { index, event })
            .collect();

        let actions = self.actions_overview()?;
        let actions_total = actions.len();
        let actions: Vec<ActionRecord> =
            actions.into_iter().skip(actions_total.saturating_sub(SHOWN)).collect();

        let guards = self.guards()?;
        let owners: BTreeSet<Address> = guards.iter().map(|g| g.owner).collect();
        let (synced, byzantine_from, holdings) = {
            let view = self.view.lock();
            let limit = view.byzantine_from.unwrap_or(u64::MAX);
            // One pass over the set for every owner (not one per owner): the view lock is the
            // watcher's, and held as briefly as possible.
            let mut holdings: BTreeMap<Address, BTreeMap<Address, (U256, usize)>> = BTreeMap::new();
            for (pos, out) in view.utxos.iter() {
                if pos.blknum() < limit && owners.contains(&out.owner) {
                    let h = holdings.entry(out.owner).or_default().entry(out.token).or_default();
                    h.0 = h.0.saturating_add(out.amount);
                    h.1 += 1;
                }
            }
            (view.synced_block, view.byzantine_from, holdings)
        };
        let guarded = guards
            .into_iter()
            .map(|g| GuardedOwner {
                owner: g.owner,
                deadline: g.deadline,
                holdings: holdings
                    .get(&g.owner)
                    .map(|m| {
                        m.iter()
                            .map(|(token, (amount, outputs))| Holding {
                                token: *token,
                                amount: amount.to_string(),
                                outputs: *outputs,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();

        let (pending_blocks, oldest_pending) = {
            let pending = self.pending.lock();
            (pending.len(), pending.iter().map(|p| p.timestamp).min())
        };
        let cursor = *self.cursor.lock();
        let cursor_time = *self.l1_time.lock();
        let stalled_since = self.stalled_since();
        Ok(Overview {
            watcher: self.me,
            monitor: self.is_monitor(),
            generated_at: unix_now(),
            safety: Safety {
                safe: byzantine_from.is_none(),
                byzantine_from,
                why,
                stalled: stalled_since.is_some(),
                stalled_since,
            },
            l1: L1Overview {
                head,
                head_time,
                cursor,
                cursor_time,
                confirmations: self.settings.confirmations,
                lag_blocks: head.saturating_sub(cursor),
                lag_seconds: head_time.saturating_sub(cursor_time),
            },
            child: ChildOverview {
                committed,
                synced,
                lag_blocks: committed.saturating_sub(synced).div_ceil(1000),
                lag_seconds: oldest_pending.map_or(0, |t| head_time.saturating_sub(t)),
                pending_blocks,
            },
            queues,
            events,
            events_total,
            actions,
            actions_total,
            deadline_margin: self.settings.deadline_margin.as_secs(),
            guarded,
            funding: self.funding().map(|f| FundingOverview {
                enough: f.balance >= f.needed,
                balance: f.balance.to_string(),
                needed: f.needed.to_string(),
                worth: f.worth,
                short: f.short,
                at: f.at,
                synced_block: f.synced_block,
            }),
        })
    }

    /// The journal, preceded by the actions the store holds that the journal does not (done
    /// before this process started, or fallen out of the journal).
    fn actions_overview(&self) -> Result<Vec<ActionRecord>, WatcherError> {
        use redb::ReadableTable;
        let journal: Vec<ActionRecord> = self.dashboard.journal.lock().iter().cloned().collect();
        let in_journal: BTreeSet<&str> = journal.iter().map(|a| a.key.as_str()).collect();
        let mut out = Vec::new();
        let tx = self.db.begin_read().map_err(st)?;
        for entry in tx.open_table(ACTIONS).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            let key = k.value();
            if in_journal.contains(key) {
                continue;
            }
            out.push(ActionRecord {
                key: key.to_owned(),
                kind: kind_of(key),
                outcome: "done".into(),
                l1_tx: (v.value().len() == 32).then(|| B256::from_slice(v.value())),
                reason: None,
                sent_at: None,
                deadline: None,
                seconds_left: None,
                tight: false,
                attempts: 1,
            });
        }
        out.extend(journal);
        Ok(out)
    }

    /// Every followed token's queue: L1's head and length, and the replayed list when it agrees.
    async fn queues_overview(
        &self,
        head: u64,
        head_time: u64,
    ) -> Result<Vec<QueueOverview>, WatcherError> {
        let mut replay = self.dashboard.queues.lock().await;
        let waiting = replay.retry_at.is_some_and(|at| Instant::now() < at);
        let caught_up = !waiting && self.replay_queues(&mut replay, head).await?;
        let mut tokens: BTreeSet<Address> = self.tokens.lock().clone();
        tokens.extend(replay.heaps.keys().copied());
        let mut out = Vec::new();
        let mut disagree = false;
        for token in tokens {
            // Read at the block the logs were read to, so the two describe the same state.
            let q = self.framework.queueHead(token).block(head.into()).call().await.map_err(l1)?;
            let length: u64 = q.length.try_into().unwrap_or(u64::MAX);
            let head_priority = (!q.length.is_zero()).then_some(q.head);
            let heap = replay.heaps.get(&token);
            let replayed_len = heap.map_or(0, BinaryHeap::len) as u64;
            let replayed_head = heap.and_then(|h| h.peek()).map(|r| r.0);
            let agrees = caught_up && replayed_len == length && replayed_head == head_priority;
            disagree |= caught_up && !agrees;
            let exits = if agrees {
                let mut sorted: Vec<U256> =
                    heap.map(|h| h.iter().map(|r| r.0).collect()).unwrap_or_default();
                sorted.sort_unstable();
                sorted.truncate(QUEUE_SHOWN);
                sorted.into_iter().map(|p| queued_exit(p, &replay.ids, head_time)).collect()
            } else {
                head_priority
                    .map(|p| vec![queued_exit(p, &replay.ids, head_time)])
                    .unwrap_or_default()
            };
            out.push(QueueOverview { token, head: head_priority, length, complete: agrees, exits });
        }
        if disagree {
            // Something the replay missed (a reorganisation under it, a log not returned): start
            // again from the deployment block, after a back-off, rather than show a list that
            // may be wrong.
            warn!(target: "watcher::dashboard", in_a_row = replay.disagreements + 1,
                "exit queue replay disagrees with L1; replaying again after a back-off");
            replay.disagreed();
        } else if caught_up {
            replay.disagreements = 0;
        }
        Ok(out)
    }

    /// Reads `ExitQueued` and `ExitsProcessed` logs up to `head`, at most
    /// [`MAX_RANGES_PER_REFRESH`] ranges; true once caught up.
    async fn replay_queues(
        &self,
        replay: &mut QueueReplay,
        head: u64,
    ) -> Result<bool, WatcherError> {
        let start = *replay.start.get_or_insert(self.deployment_block);
        for _ in 0..MAX_RANGES_PER_REFRESH {
            let from = replay.scanned_to.map_or(start, |n| n + 1);
            if from > head {
                return Ok(true);
            }
            let to = head.min(from + LOG_RANGE - 1);
            let queued = self
                .framework
                .ExitQueued_filter()
                .from_block(from)
                .to_block(to)
                .query()
                .await
                .map_err(l1)?;
            let processed = self
                .framework
                .ExitsProcessed_filter()
                .from_block(from)
                .to_block(to)
                .query()
                .await
                .map_err(l1)?;
            // In L1 order: a queue is processed only as far as it was filled before.
            let key = |log: &Log| (log.block_number.unwrap_or(0), log.log_index.unwrap_or(0));
            let mut ordered: Vec<((u64, u64), bool, usize)> = Vec::new();
            ordered.extend(queued.iter().enumerate().map(|(i, (_, l))| (key(l), true, i)));
            ordered.extend(processed.iter().enumerate().map(|(i, (_, l))| (key(l), false, i)));
            ordered.sort_unstable();
            for (_, is_queued, i) in ordered {
                if is_queued {
                    let ev = &queued[i].0;
                    replay.heaps.entry(ev.token).or_default().push(Reverse(ev.priority));
                    replay.ids.insert(ev.priority, ev.exitId);
                } else {
                    let ev = &processed[i].0;
                    let heap = replay.heaps.entry(ev.token).or_default();
                    for _ in 0..u64::try_from(ev.count).unwrap_or(u64::MAX) {
                        match heap.pop() {
                            Some(Reverse(p)) => {
                                replay.ids.remove(&p);
                            }
                            None => break,
                        }
                    }
                }
            }
            replay.scanned_to = Some(to);
        }
        Ok(replay.scanned_to.is_some_and(|n| n >= head))
    }
}

/// A priority decoded (`ExitPriority`: exitable time in the top 64 bits, the position in the
/// next 128, the nonce with its flags in the low 64).
fn queued_exit(priority: U256, ids: &BTreeMap<U256, U256>, now: u64) -> QueuedExit {
    let exitable_at = u64::try_from(priority >> 192usize).unwrap_or(u64::MAX);
    let position = (priority >> 64usize) & U256::from(u128::MAX);
    let nonce = u64::try_from(priority & U256::from(u64::MAX)).unwrap_or(0);
    let game = match (nonce & FLAG_NONCE != 0, nonce & FLAG_BATCH != 0) {
        (_, true) => "batch",
        (true, false) => "inFlight",
        (false, false) => "standard",
    };
    let position_text = u128::try_from(position)
        .ok()
        .and_then(|p| UtxoPos::from_u128(p).ok())
        .map_or_else(|| position.to_string(), |p| p.to_string());
    QueuedExit {
        priority,
        exitable_at,
        due: exitable_at <= now,
        game,
        position: position_text,
        exit_id: if game == "standard" { Some(position) } else { ids.get(&priority).copied() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_priority_decodes_to_its_time_position_and_game() {
        let pos = UtxoPos::new(2000, 1, 0).unwrap();
        let pack = |at: u64, nonce: u64| {
            (U256::from(at) << 192usize)
                | (U256::from(pos.to_u128()) << 64usize)
                | U256::from(nonce)
        };
        let e = queued_exit(pack(1_000, 7), &BTreeMap::new(), 999);
        assert_eq!((e.exitable_at, e.due, e.game), (1_000, false, "standard"));
        assert_eq!(e.position, pos.to_string());
        assert_eq!(e.exit_id, Some(U256::from(pos.to_u128())));
        let ife = pack(1_000, 7 | FLAG_NONCE);
        let ids = BTreeMap::from([(ife, U256::from(42))]);
        let e = queued_exit(ife, &ids, 1_000);
        assert_eq!((e.due, e.game, e.exit_id), (true, "inFlight", Some(U256::from(42))));
        assert_eq!(queued_exit(pack(5, 7 | FLAG_NONCE | FLAG_BATCH), &ids, 0).game, "batch");
    }

    fn kind(j: &Join) -> &'static str {
        match j {
            Join::Fresh(_) => "fresh",
            Join::Wait(_) => "wait",
            Join::Start(..) => "start",
        }
    }

    /// Finding 5 of the audit: concurrent callers share one build, and its failure is kept for
    /// the refresh period (N tabs on a hung L1 wait one timeout, not N).
    #[tokio::test]
    async fn callers_share_one_build_and_a_failure_is_kept() {
        let mut cache = DocCache::default();
        let Join::Start(tx, _) = cache.join() else { panic!("the first caller builds") };
        let waiters: Vec<Join> = (0..3).map(|_| cache.join()).collect();
        assert!(waiters.iter().all(|j| kind(j) == "wait"), "later callers wait on it");
        let failed: Built = Err(Arc::new(WatcherError::L1("hung".into())));
        cache.finish(failed.clone());
        tx.send(Some(failed)).unwrap();
        for j in waiters {
            let Join::Wait(mut rx) = j else { unreachable!() };
            let got = rx.wait_for(Option::is_some).await.unwrap().clone().unwrap();
            assert!(got.is_err(), "each waiter gets the build's own result");
        }
        assert_eq!(kind(&cache.join()), "fresh", "the failure is answered without a new build");
        cache.last = Some((Instant::now() - REFRESH, Err(Arc::new(WatcherError::L1("x".into())))));
        assert_eq!(kind(&cache.join()), "start", "after the refresh period, a new build");
        // A build task that died (its sender dropped) does not leave callers waiting forever.
        assert_eq!(kind(&cache.join()), "start");
    }

    #[test]
    fn a_disagreement_replays_from_the_deployment_block_after_a_growing_back_off() {
        let mut r = QueueReplay { start: Some(500), scanned_to: Some(9_000), ..Default::default() };
        r.heaps.entry(Address::ZERO).or_default().push(Reverse(U256::from(1)));
        r.disagreed();
        assert_eq!((r.start, r.scanned_to, r.heaps.len()), (Some(500), None, 0));
        let first = r.retry_at.unwrap().saturating_duration_since(Instant::now());
        assert!(first <= REPLAY_BACKOFF && first > REPLAY_BACKOFF / 2, "{first:?}");
        r.disagreed();
        let second = r.retry_at.unwrap().saturating_duration_since(Instant::now());
        assert!(second > REPLAY_BACKOFF, "doubles: {second:?}");
        for _ in 0..40 {
            r.disagreed();
        }
        assert!(
            r.retry_at.unwrap().saturating_duration_since(Instant::now()) <= REPLAY_BACKOFF_MAX
        );
    }

    #[test]
    fn a_completed_step_is_recorded() {
        let d = DashboardState::default();
        d.step_done(false);
        assert_eq!(d.last_step_ok.load(std::sync::atomic::Ordering::Relaxed), 0);
        d.step_done(true);
        assert!(d.last_step_ok.load(std::sync::atomic::Ordering::Relaxed) >= d.started);
    }

    #[test]
    fn a_pending_attempt_is_one_row_and_the_journal_is_bounded() {
        let d = DashboardState::default();
        d.record("challenge:1", "pending", Some(B256::repeat_byte(1)), None);
        d.record("challenge:1", "mined", Some(B256::repeat_byte(2)), None);
        d.note_deadline("challenge:1", 100, 40, false);
        let j = d.journal.lock().clone();
        assert_eq!(j.len(), 1);
        assert_eq!((j[0].outcome.as_str(), j[0].l1_tx), ("mined", Some(B256::repeat_byte(2))));
        assert_eq!(
            (j[0].kind.as_str(), j[0].deadline, j[0].seconds_left),
            ("challenge", Some(100), Some(40))
        );
        d.record("settle-debts:x", "refused", None, Some("no funds".into()));
        d.record("settle-debts:x", "refused", None, Some("no funds".into()));
        assert_eq!(d.journal.lock().back().unwrap().attempts, 2, "a repeated refusal is one row");
        for i in 0..JOURNAL_KEPT + 10 {
            d.record(&format!("mass-exit:{i}:1"), "refused", None, Some("no funds".into()));
        }
        assert_eq!(d.journal.lock().len(), JOURNAL_KEPT);
    }
}
