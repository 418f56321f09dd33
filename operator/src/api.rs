//! The HTTP API (OP-6): JSON under `/v1`, plus `/health`, `/metrics` and `/openapi.json`.
//! Errors are `{"error": {"code": "...", "message": "..."}}` with a stable code.

// warp hands extracted values to handlers by value; borrowing is not an option there.
#![allow(clippy::needless_pass_by_value)]

use crate::{
    blocks::BlockInfo,
    chain::{Chain, SubmitError, TxStatus},
    ingest::{BATCH_MEDIA_TYPE, FrameError, decode_batch},
    l1::L1Health,
    leader::HaView,
    store::{Inclusion, Lookup, Store, StoreError},
};
use alloy::primitives::{Address, B256};
use parking_lot::Mutex;
use plasma_spec::{
    LedgerError, Output, SignedTransaction, SigningDomain, UtxoPos,
    pages::{RangeAsk, UtxoQuery, parse_range},
    routes::Refusal,
    wire,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::{
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant},
};
use warp::{Filter, Rejection, Reply, http::StatusCode, reply::Response};

/// A single submission waiting for the group committer: its bytes, when it arrived, and where
/// to send its result.
pub(crate) type Submission =
    (Vec<u8>, Instant, tokio::sync::oneshot::Sender<Result<B256, SubmitError>>);

/// Groups of single submissions in `Chain::submit` at once: while one group's write waits on
/// fsync (no lock held), the next one recovers its signatures.
const GROUPS_IN_FLIGHT: usize = 2;

/// Batch requests in `Chain::submit` at once, like the groups above (one recovers while the
/// other is written): the recovery workers' long lane then holds at most two batches' runs,
/// whatever the number of clients, so what queues behind them (a large group of single
/// submissions, a third batch) waits for two batches at most, and decoded bodies waiting for a
/// slot hold no worker.
const BATCHES_IN_FLIGHT: usize = 2;

/// Group commit: single-transaction requests that arrive together are validated and made durable
/// in one `Chain::submit` call (one signature-recovery fan-out, one fsync), so throughput does not
/// stop at one disk flush per request. Up to [`GROUPS_IN_FLIGHT`] groups run at once; a request
/// waits at most for the groups in progress.
pub(crate) async fn run_group_committer(
    chain: Arc<Chain>,
    mut rx: tokio::sync::mpsc::Receiver<Submission>,
) {
    const MAX_GROUP: usize = 4_096;
    let slots = Arc::new(tokio::sync::Semaphore::new(GROUPS_IN_FLIGHT));
    loop {
        // A slot first, then the group: what arrives while the slots are busy joins one group.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Some(first) = rx.recv().await else { return };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(s) => group.push(s),
                Err(_) => break,
            }
        }
        let mut raw = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        let mut waited = Duration::ZERO;
        for (bytes, arrived, reply) in group {
            raw.push(bytes);
            waited += arrived.elapsed();
            replies.push(reply);
        }
        chain.ingest_stats().queue_wait(raw.len(), waited);
        let chain = chain.clone();
        tokio::spawn(async move {
            // A panic in validation drops the replies: their requests get an error.
            let results = tokio::task::spawn_blocking(move || chain.submit(&raw)).await;
            drop(slot);
            if let Ok(results) = results {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
        });
    }
}

/// What the API shares whatever the process's role: limits, counters (kept across role
/// changes), the devnet faults and the election's view.
#[derive(Clone, Debug)]
pub(crate) struct Common {
    /// Largest request body.
    pub(crate) max_body_bytes: u64,
    /// Most transactions per batch.
    pub(crate) max_batch: usize,
    /// Counters for `/metrics`.
    pub(crate) metrics: Arc<Metrics>,
    /// Devnet fault: blocks never served (`[faults] withhold`).
    pub(crate) withheld: Arc<std::collections::HashSet<u64>>,
    /// The election, with a PostgreSQL store (OP-HA-1); `None` for redb (always the leader).
    pub(crate) ha: Option<Arc<HaView>>,
    /// Where the state lives, as it may be shown (no password).
    pub(crate) store: String,
    /// `redb` or `postgres`.
    pub(crate) backend: &'static str,
    /// The store reads the API may have in flight ([`STORE_READS_IN_FLIGHT`]), kept across role
    /// changes: a read stuck since the last role still holds its slot.
    pub(crate) store_reads: Arc<tokio::sync::Semaphore>,
    /// Batches in `Chain::submit` at once ([`BATCHES_IN_FLIGHT`]).
    pub(crate) batch_slots: Arc<tokio::sync::Semaphore>,
    /// Wrong-domain hints left this second ([`HINTS_PER_SECOND`]).
    pub(crate) hints: Arc<HintBudget>,
}

impl Common {
    /// From the configuration.
    pub(crate) fn new(
        config: &crate::Config,
        ha: Option<Arc<HaView>>,
        store: String,
        backend: &'static str,
    ) -> Self {
        Self {
            max_body_bytes: config.api.max_body_bytes,
            max_batch: config.api.max_batch,
            metrics: Arc::default(),
            withheld: Arc::new(config.faults.withhold.iter().copied().collect()),
            ha,
            store,
            backend,
            store_reads: Arc::new(tokio::sync::Semaphore::new(STORE_READS_IN_FLIGHT)),
            batch_slots: Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_FLIGHT)),
            hints: Arc::default(),
        }
    }
}

/// What a leader's handlers have besides [`Common`].
#[derive(Debug)]
pub(crate) struct Leader {
    /// Single submissions go through the group committer.
    pub(crate) submissions: tokio::sync::mpsc::Sender<Submission>,
    /// The chain.
    pub(crate) chain: Arc<Chain>,
    /// L1 health figures.
    pub(crate) l1: Arc<Mutex<L1Health>>,
    /// The availability distributor, when `[da]` is configured.
    pub(crate) da: Option<Arc<crate::da::Distributor>>,
}

/// What the process serves now (OP-HA-4).
#[derive(Debug)]
pub(crate) enum Serving {
    /// Everything: the leader (or a redb operator).
    Leader(Leader),
    /// Reads from the store; writes refused with `NotLeader`. A standby, or a leader that lost
    /// its lease and is on its way out.
    Standby {
        /// The shared store (its writes are fenced off: OP-HA-2), and what a standby reads of
        /// the leader's state beyond single rows (the head, the exiting outputs, the mempool),
        /// kept fresh by a background poll.
        reads: Arc<StandbyReads>,
    },
}

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct ApiContext {
    /// Role-independent parts.
    pub(crate) common: Common,
    /// The role's parts.
    pub(crate) serving: Serving,
}

impl ApiContext {
    /// A leader's context.
    pub(crate) fn leader(
        common: Common,
        chain: Arc<Chain>,
        submissions: tokio::sync::mpsc::Sender<Submission>,
        l1: Arc<Mutex<L1Health>>,
        da: Option<Arc<crate::da::Distributor>>,
    ) -> Self {
        Self { common, serving: Serving::Leader(Leader { submissions, chain, l1, da }) }
    }

    /// A standby's context: reads from `store`.
    pub(crate) fn standby(common: Common, store: Arc<Store>) -> Self {
        let reads = StandbyReads::start(store);
        Self { common, serving: Serving::Standby { reads } }
    }

    /// The leader's parts, if this process leads.
    pub(crate) fn leading(&self) -> Option<&Leader> {
        match &self.serving {
            Serving::Leader(l) => Some(l),
            Serving::Standby { .. } => None,
        }
    }

    /// Where reads go: the chain (which reads its store) or, on a standby, the store.
    pub(crate) fn reads(&self) -> Reader {
        match &self.serving {
            Serving::Leader(l) => Reader::Chain(l.chain.clone()),
            Serving::Standby { reads, .. } => Reader::Store(reads.clone()),
        }
    }

    /// `f` with this role's reads, off the tokio workers, given up at `until` (A21b-2: see
    /// [`off_worker`]).
    async fn read<T: Send + 'static>(
        &self,
        until: Instant,
        f: impl FnOnce(&Reader) -> T + Send + 'static,
    ) -> Result<T, ReadError> {
        let reads = self.reads();
        off_worker(&self.common.store_reads, until, move || f(&reads)).await
    }

    /// [`Self::read`] of a store result.
    async fn read_store<T: Send + 'static>(
        &self,
        until: Instant,
        f: impl FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ReadError> {
        self.read(until, f).await?.map_err(ReadError::from)
    }

    /// The counters.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.common.metrics
    }

    /// The devnet fault `withhold`: the 404 every read touching `blknum` answers, if withheld.
    fn withheld(&self, blknum: u64) -> Option<Response> {
        self.common.withheld.contains(&blknum).then(|| withheld(blknum))
    }

    /// 503 `NotLeader`, naming the leader's URL if one is known, with `Retry-After: 1`
    /// (OP-HA-4). Wallets try the URL only if it is in their own list (a standby must not be able
    /// to send a wallet anywhere else).
    fn not_leader(&self) -> Response {
        let leader = self.common.ha.as_ref().and_then(|h| h.leader_url());
        let message = match &leader {
            Some(url) => format!("this operator is a standby; the leader is {url}"),
            None => "this operator is a standby and no leader is known right now".to_owned(),
        };
        let mut r = warp::reply::with_status(
            warp::reply::json(
                &json!({"error": {"code": "NotLeader", "message": message, "leader": leader}}),
            ),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .into_response();
        r.headers_mut()
            .insert(warp::http::header::RETRY_AFTER, warp::http::HeaderValue::from_static("1"));
        r
    }
}

/// The API's context of the moment: swapped whole when the role changes, so a request sees one
/// role from start to end (OP-HA-4).
#[derive(Debug)]
pub(crate) struct Shared {
    current: parking_lot::RwLock<Arc<ApiContext>>,
    max_body_bytes: u64,
}

impl Shared {
    /// Serving `ctx`.
    pub(crate) fn new(ctx: Arc<ApiContext>) -> Arc<Self> {
        let max_body_bytes = ctx.common.max_body_bytes;
        Arc::new(Self { current: parking_lot::RwLock::new(ctx), max_body_bytes })
    }

    /// The context now.
    pub(crate) fn current(&self) -> Arc<ApiContext> {
        self.current.read().clone()
    }

    /// Serves `ctx` from the next request on.
    pub(crate) fn set(&self, ctx: Arc<ApiContext>) {
        *self.current.write() = ctx;
    }
}

/// Longest a request waits on the store, all its reads together, before it answers `503
/// StorageFailure` (A21b-2). Below the wallets' 10 s answer timeout, so a wallet gets a typed
/// answer and asks the next operator URL rather than timing out; far above a healthy read
/// (milliseconds).
pub(crate) const STORE_READ_DEADLINE: Duration = Duration::from_secs(5);

/// Store reads the API may have in flight at once (each on a blocking thread). A read that
/// outlives its request's deadline keeps its thread until the store answers (a blocking call
/// cannot be cancelled); without this bound a silent database plus a stream of GETs would pile up
/// blocking threads until the pool (512) is exhausted, and the chain's own writes, which run on
/// that pool, would queue behind them. With it, the API's reads hold at most this many threads,
/// and a request that finds them all taken waits (asynchronously) until its deadline, then
/// answers 503.
const STORE_READS_IN_FLIGHT: usize = 64;

/// Why a read of the store did not give an answer (`503 StorageFailure`, or 500 if it panicked).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The store answered with an error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store did not answer within the request's deadline.
    #[error("the store did not answer within {0:?}")]
    Deadline(Duration),
    /// Every read slot was taken (by reads waiting on the store) until the deadline.
    #[error("{0} reads are already waiting on the store")]
    Busy(usize),
    /// A standby's copy of the leader's mempool is too old to say a transaction is unknown (its
    /// background refresh has not completed within [`STANDBY_CACHE_TTL`]).
    #[error("this standby's copy of the leader's mempool is {}", match .0 {
        Some(age) => format!("{} ms old (the store does not answer)", age.as_millis()),
        None => "not read yet (the store does not answer)".to_owned(),
    })]
    MempoolStale(Option<Duration>),
    /// The read panicked.
    #[error("the read failed unexpectedly")]
    Panicked,
}

impl ReadError {
    /// The response: 503 `StorageFailure` (retry, or ask another operator URL), 500 `Internal`.
    fn response(&self) -> Response {
        match self {
            Self::Panicked => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", self),
            _ => error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", self),
        }
    }
}

/// Runs `f` on a blocking thread (the store's calls block: a PostgreSQL round trip, a redb page
/// read), holding one of `permits`, and gives up waiting at `until` (A21b-2). The tokio workers
/// never wait on the database, so `/health`, `/v1/status`, `/metrics` and the election's
/// supervisor run whatever the store does.
async fn off_worker<T: Send + 'static>(
    permits: &Arc<tokio::sync::Semaphore>,
    until: Instant,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ReadError> {
    let until = tokio::time::Instant::from_std(until);
    let permit = match tokio::time::timeout_at(until, permits.clone().acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_closed)) => return Err(ReadError::Panicked),
        Err(_) => return Err(ReadError::Busy(STORE_READS_IN_FLIGHT)),
    };
    let job = tokio::task::spawn_blocking(move || {
        // Held until the store answers, not until the request gives up (see
        // `STORE_READS_IN_FLIGHT`).
        let _permit = permit;
        f()
    });
    match tokio::time::timeout_at(until, job).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(ReadError::Panicked),
        Err(_) => Err(ReadError::Deadline(STORE_READ_DEADLINE)),
    }
}

/// The reads every role serves: through the chain on a leader, from the store on a standby.
/// Every method blocks (a store read): call them through [`ApiContext::read`], never on a tokio
/// worker.
#[derive(Clone, Debug)]
pub(crate) enum Reader {
    /// A leader's chain.
    Chain(Arc<Chain>),
    /// A standby's store.
    Store(Arc<StandbyReads>),
}

impl Reader {
    fn store(&self) -> &Store {
        match self {
            Self::Chain(c) => c.store(),
            Self::Store(s) => &s.store,
        }
    }

    /// Where a transaction stands, as far as the chain (a leader: its mempool, then the stored
    /// transaction index) or the stored transaction index (a standby) knows; a standby then
    /// looks at the leader's mempool ([`tx_status`]).
    fn tx_status(&self, hash: &B256) -> Result<Option<TxStatus>, StoreError> {
        match self {
            Self::Chain(c) => c.tx_status(hash),
            Self::Store(s) => s.included(hash),
        }
    }

    fn inclusion(&self, blknum: u64, index: u32) -> Result<Lookup, StoreError> {
        self.store().inclusion(blknum, index)
    }

    fn block_info(&self, blknum: u64) -> Result<Option<BlockInfo>, StoreError> {
        self.store().block_info(blknum)
    }

    fn block(&self, blknum: u64) -> Result<Option<crate::store::BlockRecord>, StoreError> {
        self.store().block(blknum)
    }

    fn wire_chunk(&self, blknum: u64, offset: u64) -> Result<Vec<u8>, StoreError> {
        self.store().wire_chunk(blknum, offset)
    }

    /// A page of `owner`'s outputs, exiting ones left out (LEDGER-9, OP-7). A standby reads the
    /// store's owner index and the stored exiting set ([`StandbyReads::utxos_page`]).
    fn utxos_page(
        &self,
        owner: Address,
        after: Option<UtxoPos>,
        limit: usize,
    ) -> Result<(Vec<(UtxoPos, Output)>, bool), StoreError> {
        match self {
            Self::Chain(c) => Ok(c.utxos_page(owner, after, limit)),
            Self::Store(s) => s.utxos_page(owner, after, limit),
        }
    }

    fn utxo(&self, pos: UtxoPos) -> Result<Option<Output>, StoreError> {
        match self {
            Self::Chain(c) => Ok(c.utxo(pos)),
            Self::Store(s) => s.store.utxo(pos),
        }
    }
}

/// Where a transaction stands (`GET /v1/transactions/{hash}`). A standby reads the stored
/// transaction index, then its copy of the leader's mempool (refreshed in the background, see
/// [`StandbyReads`]), and checks a hit against the stored row.
async fn tx_status(
    ctx: &ApiContext,
    until: Instant,
    hash: B256,
) -> Result<Option<TxStatus>, ReadError> {
    let found = ctx.read_store(until, move |r| r.tx_status(&hash)).await?;
    let Serving::Standby { reads, .. } = &ctx.serving else { return Ok(found) };
    if found.is_some() {
        return Ok(found);
    }
    let Some(seq) = reads.pending_seq(&hash, until).await? else { return Ok(None) };
    let reads = reads.clone();
    ctx.read_store(until, move |_| reads.confirm_pending(seq, &hash)).await
}

/// How long a standby trusts its copies of the stored exiting set and mempool index before
/// reading the store again. The leader's own answers change at the moment its write commits; a
/// standby's may lag them by this much (a wallet asks the other URLs when a standby does not know
/// a transaction yet).
const STANDBY_CACHE_TTL: Duration = Duration::from_millis(500);
/// How often a standby's background poll reads the store's head, the exiting set and the new
/// mempool rows: twice per [`STANDBY_CACHE_TTL`], so the copies are fresh when a request comes.
const STANDBY_POLL_EVERY: Duration = Duration::from_millis(250);
/// A poll unanswered this long is reported in `/v1/status` `standby.storeError`.
const STANDBY_POLL_SLOW: Duration = Duration::from_secs(1);
/// Mempool rows read per page, and pages read per refresh of the index: a refresh reads at most
/// 256k rows (more than the default `api.max_mempool`), what is left is read at the next one.
const MEMPOOL_PAGE: usize = 1_000;
const MEMPOOL_PAGES_PER_REFRESH: usize = 256;

/// What a standby reads of the leader's state beyond single rows, so that it answers as the
/// leader would (OP-HA-4), and without a request ever waiting on the database for it (A21b-2):
/// - the **store's head** for `/v1/status`: read by a background poll every
///   [`STANDBY_POLL_EVERY`] and served with its age (`storeHeadAgeMs`); `/v1/status` and
///   `/metrics` read memory only;
/// - the **exiting outputs** (LEDGER-9): one stored row, read by the poll (and, if the poll's
///   copy is older than [`STANDBY_CACHE_TTL`], by the request itself, off the workers, with no
///   lock held during the read); `/v1/utxos` leaves them out as the leader does;
/// - the **mempool**: the leader stores every accepted transaction before acknowledging it, so a
///   standby can answer `pending` for it. Looking a hash up in the rows would mean decoding every
///   one of them (the rows are keyed by sequence number), so the standby keeps an index, hash →
///   sequence number, refreshed by the poll alone, reading only the rows after the last one it
///   saw (in bounded pages) and forgetting those below the oldest stored.
///
/// Attacks and failure modes considered:
/// - A flood of lookups of made-up hashes costs one indexed read of the transaction index each
///   and an in-memory miss; the mempool is read by the poll alone, whatever the request rate.
/// - No lock is held while the store is read: the poll reads a page, then takes the index's lock
///   to insert it; a request takes the lock only to look a hash up. A silent database stalls the
///   poll (one blocking thread, never one per tick: the next poll starts after the last ends),
///   never a request on a lock.
/// - A miss is an answer (`UnknownTransaction`) only from an index whose refresh started less
///   than [`STANDBY_CACHE_TTL`] ago, so everything the leader acknowledged before that is in it;
///   an older index makes the request wait for the next refresh until its deadline, then answer
///   503 `StorageFailure` rather than a possibly false "unknown".
/// - The index never answers alone: a hit is checked against the stored row (one primary-key
///   read, its bytes hashed again), so a transaction the leader has since included or dropped is
///   never reported `pending` from a stale index; an included one is then found in the
///   transaction index (the leader removes the row and indexes the transaction in one write).
/// - A new leader that finds the mempool empty numbers its entries from 0 again: the oldest
///   stored row is compared with the index, and a numbering that changed under it makes the index
///   start over rather than miss the new entries.
/// - Memory: the index holds at most the rows stored since its oldest stored row, bounded by the
///   leader's `api.max_mempool` plus entries dropped out of order (forgotten once the oldest
///   stored row passes them).
/// - The poll ends with the context: it holds only a weak reference between rounds, so a role
///   change (a new context) stops it at its next tick.
#[derive(Debug)]
pub(crate) struct StandbyReads {
    store: Arc<Store>,
    exiting: Mutex<Option<(Instant, Arc<plasma_spec::ExitingOutputs>)>>,
    mempool: Mutex<MempoolIndex>,
    /// When the last completed refresh of the mempool index started (`None`: none yet).
    refreshed: tokio::sync::watch::Sender<Option<Instant>>,
    /// The store's head as the poll last read it.
    head: Mutex<HeadRead>,
}

/// The store's head as a standby's poll last read it (`/v1/status` `standby`).
#[derive(Debug, Default)]
struct HeadRead {
    /// The head, and when the read that gave it started.
    head: Option<(Option<u64>, Instant)>,
    /// The last poll's error, if it failed.
    error: Option<String>,
    /// When the poll in progress started.
    polling_since: Option<Instant>,
}

/// A standby's index of the stored mempool (see [`StandbyReads`]). Only the poll writes it.
#[derive(Debug, Default)]
struct MempoolIndex {
    /// The highest sequence number read.
    last_seq: Option<u64>,
    by_hash: std::collections::HashMap<B256, u64>,
    by_seq: std::collections::BTreeMap<u64, B256>,
}

/// The hash of a stored mempool entry (a signed transaction, ENC-4); `None` if it does not decode.
fn mempool_hash(bytes: &[u8]) -> Option<B256> {
    SignedTransaction::decode(bytes).ok().map(|s| s.transaction.hash())
}

impl MempoolIndex {
    fn forget_below(&mut self, seq: u64) {
        let keep = self.by_seq.split_off(&seq);
        for hash in self.by_seq.values() {
            self.by_hash.remove(hash);
        }
        self.by_seq = keep;
    }

    /// Starts over if the oldest stored row (`first`, with its entry's hash) shows that the rows
    /// were numbered again; otherwise forgets what is below it.
    fn rebase(&mut self, first: Option<(u64, Option<B256>)>) {
        match first {
            // Empty: start over (a new leader may number its entries from 0 again).
            None => *self = Self::default(),
            Some((first, hash)) => {
                let renumbered = self.last_seq.is_some_and(|last| first <= last)
                    && self.by_seq.get(&first).copied() != hash;
                if renumbered {
                    *self = Self::default();
                } else {
                    self.forget_below(first);
                }
            }
        }
    }

    fn insert(&mut self, rows: Vec<(u64, Option<B256>)>) {
        for (seq, hash) in rows {
            self.last_seq = Some(seq);
            if let Some(hash) = hash {
                self.by_hash.insert(hash, seq);
                self.by_seq.insert(seq, hash);
            }
        }
    }
}

impl StandbyReads {
    /// Reads of `store`, nothing cached yet, and (inside a tokio runtime) the background poll
    /// that keeps the copies fresh.
    pub(crate) fn start(store: Arc<Store>) -> Arc<Self> {
        let reads = Arc::new(Self {
            store,
            exiting: Mutex::default(),
            mempool: Mutex::default(),
            refreshed: tokio::sync::watch::Sender::new(None),
            head: Mutex::default(),
        });
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(poll(Arc::downgrade(&reads)));
            }
            Err(_) => {
                tracing::warn!(target: "operator::api", "no runtime: the standby's store copies are not polled");
            }
        }
        reads
    }

    /// One round of the background poll: the head, the exiting set, the new mempool rows. Blocks
    /// (store reads): runs on a blocking thread.
    fn poll_once(&self) {
        let started = Instant::now();
        self.head.lock().polling_since = Some(started);
        let head = self.store.head();
        let exiting = self.store.exiting();
        if let Ok(exiting) = &exiting {
            *self.exiting.lock() = Some((started, Arc::new(exiting.clone())));
        }
        let mempool = self.refresh_mempool();
        if mempool.is_ok() {
            self.refreshed.send_replace(Some(started));
        }
        let mut h = self.head.lock();
        h.polling_since = None;
        if let Ok(head) = &head {
            h.head = Some((*head, started));
        }
        h.error = [head.err(), exiting.err(), mempool.err()]
            .into_iter()
            .flatten()
            .next()
            .map(|e| e.to_string());
        if let Some(e) = &h.error {
            tracing::warn!(target: "operator::api", error = %e, "standby: reading the store failed");
        }
    }

    /// Reads the mempool rows stored since the last refresh into the index. The store is read
    /// with no lock held; the index's lock is taken only to apply what was read.
    fn refresh_mempool(&self) -> Result<(), StoreError> {
        let first = self.store.mempool_page(None, 1)?;
        let first = first.first().map(|(seq, bytes)| (*seq, mempool_hash(bytes)));
        let mut after = {
            let mut index = self.mempool.lock();
            index.rebase(first);
            index.last_seq
        };
        for _ in 0..MEMPOOL_PAGES_PER_REFRESH {
            let page = self.store.mempool_page(after, MEMPOOL_PAGE)?;
            let full = page.len() == MEMPOOL_PAGE;
            let rows: Vec<_> =
                page.into_iter().map(|(seq, bytes)| (seq, mempool_hash(&bytes))).collect();
            let mut index = self.mempool.lock();
            index.insert(rows);
            after = index.last_seq;
            drop(index);
            if !full {
                break;
            }
        }
        Ok(())
    }

    /// `/v1/status` `standby`: the store's head as last read, its age, and why the poll fails if
    /// it does. Memory only.
    fn status(&self) -> Value {
        let h = self.head.lock();
        let (head, age) = match h.head {
            Some((head, at)) => (head, Some(at.elapsed())),
            None => (None, None),
        };
        let slow = h
            .polling_since
            .map(|since| since.elapsed())
            .filter(|waited| *waited >= STANDBY_POLL_SLOW)
            .map(|waited| format!("the store has not answered for {} ms", waited.as_millis()));
        let mut v = json!({
            "storeHead": head,
            "storeHeadAgeMs": age.map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)),
        });
        if let Some(e) = slow.or_else(|| h.error.clone()) {
            v["storeError"] = Value::String(e);
        }
        v
    }

    /// The stored exiting set, at most [`STANDBY_CACHE_TTL`] old: the poll's copy, or read now
    /// (no lock held while reading). Blocks.
    fn exiting(&self) -> Result<Arc<plasma_spec::ExitingOutputs>, StoreError> {
        if let Some((at, exiting)) = &*self.exiting.lock()
            && at.elapsed() < STANDBY_CACHE_TTL
        {
            return Ok(exiting.clone());
        }
        let started = Instant::now();
        let exiting = Arc::new(self.store.exiting()?);
        let mut cached = self.exiting.lock();
        if cached.as_ref().is_none_or(|(at, _)| *at < started) {
            *cached = Some((started, exiting.clone()));
        }
        Ok(exiting)
    }

    /// A page of `owner`'s outputs as the leader's `Chain::utxos_page` gives it: exiting ones
    /// left out (LEDGER-9, `SpendRule::Now`), up to `limit`, and whether more follow. Stored
    /// pages are read until the page is full: an owner's exiting outputs cost one more read
    /// each at most, never a short page with `more` set. Blocks.
    fn utxos_page(
        &self,
        owner: Address,
        after: Option<UtxoPos>,
        limit: usize,
    ) -> Result<(Vec<(UtxoPos, Output)>, bool), StoreError> {
        let exiting = self.exiting()?;
        let mut page = Vec::new();
        let mut cursor = after;
        loop {
            let want = limit.saturating_add(1).saturating_sub(page.len()).max(1);
            let (rows, more) = self.store.utxos_page(owner, cursor, want)?;
            cursor = rows.last().map(|(p, _)| *p).or(cursor);
            page.extend(rows.into_iter().filter(|(p, o)| {
                exiting.forbids_output(*p, Some(o), plasma_spec::SpendRule::Now).is_none()
            }));
            if page.len() > limit || !more {
                break;
            }
        }
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
    }

    /// The sequence number of `hash` in the index of the leader's mempool, from an index whose
    /// refresh started less than [`STANDBY_CACHE_TTL`] ago: waits for the next refresh if the
    /// index is older, until `until`. Memory only.
    async fn pending_seq(&self, hash: &B256, until: Instant) -> Result<Option<u64>, ReadError> {
        let fresh = |at: &Option<Instant>| at.is_some_and(|at| at.elapsed() < STANDBY_CACHE_TTL);
        let mut refreshed = self.refreshed.subscribe();
        let waited = tokio::time::timeout_at(
            tokio::time::Instant::from_std(until),
            refreshed.wait_for(fresh),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if !waited {
            let age = (*self.refreshed.borrow()).map(|at| at.elapsed());
            return Err(ReadError::MempoolStale(age));
        }
        Ok(self.mempool.lock().by_hash.get(hash).copied())
    }

    /// `pending` if the stored mempool row `seq` still holds `hash`; otherwise (included or
    /// dropped since the index was read) the index forgets it and the transaction index answers.
    /// Blocks.
    fn confirm_pending(&self, seq: u64, hash: &B256) -> Result<Option<TxStatus>, StoreError> {
        let row = self.store.mempool_page(seq.checked_sub(1), 1)?;
        if row.first().is_some_and(|(s, bytes)| *s == seq && mempool_hash(bytes) == Some(*hash)) {
            return Ok(Some(TxStatus::Pending));
        }
        let mut index = self.mempool.lock();
        if index.by_seq.get(&seq) == Some(hash) {
            index.by_seq.remove(&seq);
            index.by_hash.remove(hash);
        }
        drop(index);
        self.included(hash)
    }

    /// Where the stored transaction index says `hash` was included. Blocks.
    fn included(&self, hash: &B256) -> Result<Option<TxStatus>, StoreError> {
        let Some((blknum, tx_index)) = self.store.tx_location(hash)? else { return Ok(None) };
        let committed = self.store.block_info(blknum)?.is_some_and(|b| b.l1_timestamp.is_some());
        Ok(Some(TxStatus::Included { blknum, tx_index, committed }))
    }
}

/// A standby's background poll (see [`StandbyReads`]): a round every [`STANDBY_POLL_EVERY`], one
/// at a time, until the context is gone.
async fn poll(reads: std::sync::Weak<StandbyReads>) {
    let mut tick = tokio::time::interval(STANDBY_POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(reads) = reads.upgrade() else { return };
        // Awaited however long the store takes: a silent database holds one blocking thread,
        // and `/v1/status` shows how long it has been silent.
        if tokio::task::spawn_blocking(move || reads.poll_once()).await.is_err() {
            tracing::error!(target: "operator::api", "standby: the store poll panicked");
        }
    }
}

/// 404 `BlockWithheld` (devnet fault): the SDK falls back to the towers on this code.
fn withheld(blknum: u64) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "BlockWithheld",
        format!("block {blknum} is withheld (devnet fault); ask the availability towers"),
    )
}

/// Request counters (Prometheus, `crate::metrics`).
pub(crate) use crate::metrics::Metrics;

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    warp::reply::with_status(
        warp::reply::json(&json!({"error": {"code": code, "message": message.to_string()}})),
        status,
    )
    .into_response()
}

fn ok(value: Value) -> Response {
    warp::reply::json(&value).into_response()
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// A refused submission's message: the error, and for `WrongSigner` a hint when the likely cause
/// is a signature made under another signing domain (SIG-4) rather than by the wrong key.
///
/// A hint costs up to 17 signature recoveries and a state read, where the refusal itself cost
/// one recovery: `hints` rations them ([`HintBudget`]), so refused payments cannot buy 17 times
/// the operator's CPU. Callers run this off the async workers.
fn submit_message(chain: &Chain, hints: &HintBudget, e: &SubmitError, raw: &[u8]) -> String {
    match e {
        SubmitError::Ledger(LedgerError::WrongSigner { input_index, owner, signer })
            if hints.take() =>
        {
            match wrong_domain_hint(chain, raw, *input_index, *owner, *signer) {
                Some(hint) => format!("{e}: {hint}"),
                None => e.to_string(),
            }
        }
        _ => e.to_string(),
    }
}

/// How many wrong-domain hints ([`submit_message`]) the operator looks for per second, over all
/// requests: a wallet signing for the wrong chain learns why from its first refusals; a flood
/// of wrongly signed payments gets the plain refusal beyond this.
const HINTS_PER_SECOND: u32 = 64;

/// The hints left in the current second.
#[derive(Debug)]
pub(crate) struct HintBudget(Mutex<(Instant, u32)>);

impl Default for HintBudget {
    fn default() -> Self {
        Self(Mutex::new((Instant::now(), 0)))
    }
}

impl HintBudget {
    /// One hint, if this second has one left.
    fn take(&self) -> bool {
        let mut window = self.0.lock();
        if window.0.elapsed() >= Duration::from_secs(1) {
            *window = (Instant::now(), 0);
        }
        let left = window.1 < HINTS_PER_SECOND;
        window.1 += u32::from(left);
        left
    }
}

/// Chain ids a wallet is likely to have signed for by mistake: mainnets and testnets in wide use,
/// and the devnets'.
const LIKELY_CHAIN_IDS: [u64; 17] = [
    1, 10, 56, 100, 137, 1337, 8453, 17000, 31337, 42161, 43114, 59144, 80002, 84532, 421_614,
    11_155_111, 11_155_420,
];

/// Why input `index`'s signature recovers `signer`, not `owner`, when that is likely a wrong
/// signing domain: the signature recovers `owner` under a well-known chain id (certain), or
/// `signer` owns nothing on this chain (a digest under another domain recovers an unrelated,
/// empty address; a real wrong key is usually someone's). `None` when `signer` is someone here.
fn wrong_domain_hint(
    chain: &Chain,
    raw: &[u8],
    index: usize,
    owner: Address,
    signer: Address,
) -> Option<String> {
    let ours = chain.domain().domain();
    let chain_id = ours.chain_id.map_or_else(|| "?".to_owned(), |c| c.to_string());
    let contract = ours.verifying_contract.unwrap_or_default();
    let signed = SignedTransaction::decode(raw).ok()?;
    let other = LIKELY_CHAIN_IDS.iter().find(|id| {
        ours.chain_id != Some(alloy::primitives::U256::from(**id))
            && signed
                .recover_signers(&SigningDomain::new(**id, contract))
                .is_ok_and(|s| s.get(index) == Some(&owner))
    });
    if let Some(id) = other {
        return Some(format!(
            "the signature is {owner}'s for chain id {id}; this chain signs under chain id {chain_id}, verifying contract {contract} (EIP-712 domain): sign again for this chain"
        ));
    }
    let (owned, _) = chain.utxos_page(signer, None, 1);
    owned.is_empty().then(|| {
        format!(
            "{signer} owns nothing on this chain: if you signed with {owner}'s key, the signature was likely made for another chain id or verifying contract; this chain signs under chain id {chain_id}, verifying contract {contract} (EIP-712 domain)"
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitOne {
    tx: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBatch {
    txs: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionsRequest {
    txs: Vec<InclusionRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InclusionRef {
    blknum: u64,
    tx_index: u32,
}

/// The transactions of a JSON batch body, or the response refusing it.
#[allow(clippy::result_large_err)] // the error is the response itself, built once per request
fn json_batch(body: &[u8], max_batch: usize) -> Result<Vec<Vec<u8>>, Response> {
    let req: SubmitBatch = serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "MalformedJson", e))?;
    if req.txs.len() > max_batch {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BatchTooLarge",
            format!("at most {max_batch} transactions"),
        ));
    }
    req.txs
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            parse_hex(tx).ok_or_else(|| {
                error(StatusCode::BAD_REQUEST, "MalformedHex", format!("txs[{i}] is not hex"))
            })
        })
        .collect()
}

/// The batch route's items, one per transaction in request order, and how many were accepted
/// and refused. Off the async workers: a refusal's message may recover signatures
/// ([`submit_message`]).
fn batch_items(
    chain: &Chain,
    hints: &HintBudget,
    raw: &[Vec<u8>],
    results: &[Result<B256, SubmitError>],
) -> (Vec<Value>, u64, u64) {
    let (mut accepted, mut rejected) = (0, 0);
    let results: Vec<Value> = results
        .iter()
        .zip(raw)
        .map(|(r, raw)| match r {
            Ok(hash) => {
                accepted += 1;
                json!({"txHash": hash})
            }
            Err(e) => {
                rejected += 1;
                let message = submit_message(chain, hints, e, raw);
                json!({"error": {"code": e.code(), "message": message}})
            }
        })
        .collect();
    (results, accepted, rejected)
}

/// All routes.
#[allow(clippy::result_large_err)] // a lookup's error is the response itself, built once
pub(crate) fn routes(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let limit = warp::body::content_length_limit(shared.max_body_bytes);
    // Each request takes the context of the moment once, and keeps it to its end.
    let with = warp::any().map(move || shared.current());

    let submit = warp::path!("v1" / "transactions")
        .and(warp::post())
        .and(limit)
        .and(warp::body::bytes())
        .and(with.clone())
        .then(|body: bytes::Bytes, ctx: Arc<ApiContext>| async move {
            let Some(leader) = ctx.leading() else { return ctx.not_leader() };
            let req: SubmitOne = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return error(StatusCode::BAD_REQUEST, "MalformedJson", e),
            };
            let Some(bytes) = parse_hex(&req.tx) else {
                return error(StatusCode::BAD_REQUEST, "MalformedHex", "`tx` is not hex");
            };
            let (reply, result) = tokio::sync::oneshot::channel();
            if leader.submissions.send((bytes, Instant::now(), reply)).await.is_err() {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ShuttingDown",
                    "the operator is stopping",
                );
            }
            match result.await {
                Ok(Ok(hash)) => {
                    ctx.metrics().accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    ok(json!({"txHash": hash}))
                }
                // The fence refused the write: another process leads now (OP-HA-2, OP-HA-5).
                Ok(Err(SubmitError::Store(e))) if e.is_fenced() => {
                    ctx.metrics().rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    ctx.not_leader()
                }
                Ok(Err(e)) => {
                    ctx.metrics().rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let status = if e.is_client_error() {
                        StatusCode::UNPROCESSABLE_ENTITY
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let (chain, hints, code) =
                        (leader.chain.clone(), ctx.common.hints.clone(), e.code());
                    let message = tokio::task::spawn_blocking(move || {
                        let raw = parse_hex(&req.tx).unwrap_or_default();
                        submit_message(&chain, &hints, &e, &raw)
                    })
                    .await
                    .unwrap_or_else(|_| "refused".to_owned());
                    error(status, code, message)
                }
                Err(_) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal",
                    "validation failed unexpectedly",
                ),
            }
        });

    let submit_batch = warp::path!("v1" / "transactions" / "batch")
        .and(warp::post())
        .and(limit)
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::bytes())
        .and(with.clone())
        .then(
            |content_type: Option<String>, body: bytes::Bytes, ctx: Arc<ApiContext>| async move {
                let arrived = Instant::now();
                let Some(leader) = ctx.leading() else { return ctx.not_leader() };
                let binary = content_type.as_deref().is_some_and(|t| {
                    t.split(';')
                        .next()
                        .is_some_and(|m| m.trim().eq_ignore_ascii_case(BATCH_MEDIA_TYPE))
                });
                let raw = if binary {
                    match decode_batch(&body, ctx.common.max_batch) {
                        Ok(raw) => raw,
                        Err(e @ FrameError::TooMany { .. }) => {
                            return error(StatusCode::PAYLOAD_TOO_LARGE, e.code(), e);
                        }
                        Err(e) => return error(StatusCode::BAD_REQUEST, e.code(), e),
                    }
                } else {
                    match json_batch(&body, ctx.common.max_batch) {
                        Ok(raw) => raw,
                        Err(response) => return response,
                    }
                };
                // At most `BATCHES_IN_FLIGHT` batches in `Chain::submit`, whatever the number of
                // clients; the slot goes into the blocking task, so a client that hangs up does
                // not free it while its batch still runs.
                let Ok(slot) = ctx.common.batch_slots.clone().acquire_owned().await else {
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ShuttingDown",
                        "the operator is stopping",
                    );
                };
                // Recovery fans out over every core and the write waits on fsync: keep both off the
                // async workers that serve the other requests.
                let (chain, hints) = (leader.chain.clone(), ctx.common.hints.clone());
                let Ok(answered) = tokio::task::spawn_blocking(move || {
                    let _slot = slot;
                    chain.ingest_stats().queue_wait(raw.len(), arrived.elapsed());
                    let results = chain.submit(&raw);
                    // A fenced write (OP-HA-2) accepted nothing: another process leads now.
                    let fenced = results
                        .iter()
                        .any(|r| matches!(r, Err(SubmitError::Store(e)) if e.is_fenced()));
                    (!fenced).then(|| batch_items(&chain, &hints, &raw, &results))
                })
                .await
                else {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal",
                        "validation failed unexpectedly",
                    );
                };
                // As the single route answers it: 503 with the leader's address.
                let Some((items, accepted, rejected)) = answered else { return ctx.not_leader() };
                ctx.metrics().accepted.fetch_add(accepted, std::sync::atomic::Ordering::Relaxed);
                ctx.metrics().rejected.fetch_add(rejected, std::sync::atomic::Ordering::Relaxed);
                ok(json!({"results": items}))
            },
        );

    // `batch` is the batch route's, whatever the method: a GET of it is a 405 (`unrouted`), not
    // a malformed hash.
    let hash_segment =
        warp::path!("v1" / "transactions" / String).and_then(|h: String| async move {
            if h == "batch" { Err(warp::reject::not_found()) } else { Ok(h) }
        });
    let tx = hash_segment.and(warp::get()).and(with.clone()).then(
        |hash: String, ctx: Arc<ApiContext>| async move {
            let until = Instant::now() + STORE_READ_DEADLINE;
            let Some(hash) =
                parse_hex(&hash).filter(|h| h.len() == 32).map(|h| B256::from_slice(&h))
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "MalformedHash",
                    "expected a 32-byte hex hash",
                );
            };
            match tx_status(&ctx, until, hash).await {
                Ok(None) => error(StatusCode::NOT_FOUND, "UnknownTransaction", hash),
                Ok(Some(TxStatus::Pending)) => ok(json!({"txHash": hash, "status": "pending"})),
                Ok(Some(TxStatus::Included { blknum, tx_index, committed })) => {
                    if let Some(r) = ctx.withheld(blknum) {
                        return r;
                    }
                    let found = ctx.read(until, move |r| inclusion(r, blknum, tx_index)).await;
                    match found {
                        Ok(Ok(inc)) => ok(json!({
                            "txHash": hash,
                            "status": if committed { "committed" } else { "included" },
                            "blknum": blknum,
                            "txIndex": tx_index,
                            "txBytes": hex0x(&inc.tx_bytes),
                            "proof": hex0x(&inc.proof),
                            "root": inc.info.root,
                            "blockTimestamp": inc.info.l1_timestamp,
                        })),
                        Ok(Err(r)) => r,
                        Err(e) => e.response(),
                    }
                }
                Err(e) => e.response(),
            }
        },
    );

    let block =
        warp::path!("v1" / "blocks" / u64)
            .and(warp::get())
            .and(warp::header::optional::<String>("accept"))
            .and(warp::header::optional::<String>("range"))
            .and(with.clone())
            .then(
                |blknum: u64,
                 accept: Option<String>,
                 range: Option<String>,
                 ctx: Arc<ApiContext>| async move {
                    if let Some(r) = ctx.withheld(blknum) {
                        return r;
                    }
                    let until = Instant::now() + STORE_READ_DEADLINE;
                    let info = match ctx.read_store(until, move |r| r.block_info(blknum)).await {
                        Ok(Some(info)) => info,
                        Ok(None) => return error(StatusCode::NOT_FOUND, "UnknownBlock", blknum),
                        Err(e) => return e.response(),
                    };
                    if accept.is_some_and(|a| a.contains(wire::MEDIA_TYPE)) {
                        return block_binary(&ctx, info, range.as_deref());
                    }
                    block_json(&ctx, until, info).await
                },
            );

    let utxos = warp::path!("v1" / "utxos")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with.clone())
        .then(|query: String, ctx: Arc<ApiContext>| async move {
            let q = match UtxoQuery::parse(&query) {
                Ok(q) => q,
                Err(e) => return error(StatusCode::BAD_REQUEST, e.code(), e),
            };
            let until = Instant::now() + STORE_READ_DEADLINE;
            let (owner, after, limit) = (q.owner, q.after, q.limit);
            let (page, more) =
                match ctx.read_store(until, move |r| r.utxos_page(owner, after, limit)).await {
                    Ok(page) => page,
                    Err(e) => return e.response(),
                };
            if q.proofs
                && let Some(r) = page.iter().find_map(|(p, _)| ctx.withheld(p.blknum()))
            {
                return r;
            }
            let next = more.then(|| page.last().map(|(p, _)| p.to_u256().to_string())).flatten();
            let proofs = q.proofs;
            let listed = ctx.read(until, move |reads| -> Result<Vec<Value>, Response> {
                page.into_iter()
                    .map(|(pos, o)| {
                        let mut v = json!({"utxoPos": pos.to_u256().to_string(), "owner": o.owner, "token": o.token, "amount": o.amount.to_string()});
                        if proofs {
                            let inc = inclusion(reads, pos.blknum(), u32::from(pos.tx_index()))?;
                            v["exitData"] = exit_data_json(pos, &inc).unwrap_or(Value::Null);
                        }
                        Ok(v)
                    })
                    .collect()
            })
            .await;
            match listed {
                Ok(Ok(list)) => ok(json!({"utxos": list, "next": next})),
                Ok(Err(r)) => r,
                Err(e) => e.response(),
            }
        });

    let inclusions = warp::path!("v1" / "inclusions")
        .and(warp::post())
        .and(limit)
        .and(warp::body::bytes())
        .and(with.clone())
        .then(|body: bytes::Bytes, ctx: Arc<ApiContext>| async move {
            let req: InclusionsRequest = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return error(StatusCode::BAD_REQUEST, "MalformedJson", e),
            };
            if req.txs.len() > MAX_INCLUSIONS {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "BatchTooLarge",
                    format!("at most {MAX_INCLUSIONS} positions per request"),
                );
            }
            let until = Instant::now() + STORE_READ_DEADLINE;
            let held = ctx.clone();
            let items = ctx.read(until, move |reads| {
                req.txs
                    .iter()
                    .map(|t| {
                        if held.common.withheld.contains(&t.blknum) {
                            return json!({"blknum": t.blknum, "txIndex": t.tx_index, "error": {
                                "code": "BlockWithheld",
                                "message": format!("block {} is withheld (devnet fault); ask the availability towers", t.blknum),
                            }});
                        }
                        inclusion_item(reads, t.blknum, t.tx_index)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            match items {
                Ok(items) => ok(json!({"inclusions": items})),
                Err(e) => e.response(),
            }
        });

    let exit_data = warp::path!("v1" / "utxos" / String / "exit-data")
        .and(warp::get())
        .and(with.clone())
        .then(|pos: String, ctx: Arc<ApiContext>| async move {
            let Some(pos) = pos.parse::<u128>().ok().and_then(|p| UtxoPos::from_u128(p).ok())
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "MalformedPosition",
                    "expected a decimal UTXO position",
                );
            };
            if let Some(r) = ctx.withheld(pos.blknum()) {
                return r;
            }
            let until = Instant::now() + STORE_READ_DEADLINE;
            ctx.read(until, move |reads| exit_data(reads, pos))
                .await
                .unwrap_or_else(|e| e.response())
        });

    let status = warp::path!("v1" / "status")
        .and(warp::get())
        .and(with.clone())
        .map(|ctx: Arc<ApiContext>| ok(status_json(&ctx)));

    let availability = warp::path!("v1" / "blocks" / u64 / "availability")
        .and(warp::get())
        .and(with.clone())
        .then(|blknum: u64, ctx: Arc<ApiContext>| async move {
            // The header and receipts are the leader's distributor's; a standby sends the asker
            // on (it could read them from the store too: not needed by any client yet).
            let Some(leader) = ctx.leading() else { return ctx.not_leader() };
            let chain = leader.chain.clone();
            let until = Instant::now() + STORE_READ_DEADLINE;
            match ctx.read_store(until, move |_| crate::da::availability(&chain, blknum)).await {
                Ok(Some(v)) => ok(v),
                Ok(None) => error(
                    StatusCode::NOT_FOUND,
                    "NoAvailability",
                    format!(
                        "block {blknum} has no availability header (not distributed: a deposit block, no towers configured, or not encoded yet)"
                    ),
                ),
                Err(e) => e.response(),
            }
        });

    let health = warp::path!("health").and(warp::get()).map(|| ok(json!({"status": "ok"})));

    // `/metrics` (issue 20): `crate::metrics`, every figure documented in docs/operations.md.
    let metrics = warp::path!("metrics").and(warp::get()).and(with).map(|ctx: Arc<ApiContext>| {
        warp::reply::with_header(
            crate::metrics::render(&ctx),
            "content-type",
            "text/plain; version=0.0.4",
        )
        .into_response()
    });

    let openapi = warp::path!("openapi.json").and(warp::get()).map(|| {
        warp::reply::with_header(crate::openapi::DOCUMENT, "content-type", "application/json")
            .into_response()
    });

    submit_batch
        .or(submit)
        .unify()
        .or(tx)
        .unify()
        .or(block)
        .unify()
        .or(availability)
        .unify()
        .or(exit_data)
        .unify()
        .or(utxos)
        .unify()
        .or(inclusions)
        .unify()
        .or(status)
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
        .or(unrouted())
        .unify()
        .recover(|r: Rejection| async move { Ok::<_, Infallible>(rejection(&r)) })
        .unify()
}

/// What no route took, answered from the document's route table: 405 with `Allow` (the
/// documented methods), 400 for a path number that is not one, 404 for an undocumented path. A
/// documented route rejects on (the routes' own refusal, e.g. 411 or 413, stands).
fn unrouted() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::method().and(warp::path::full()).and_then(
        |method: warp::http::Method, path: warp::path::FullPath| async move {
            crate::openapi::ROUTES
                .find(method.as_str(), path.as_str())
                .refusal()
                .map(refused)
                .ok_or_else(warp::reject::not_found)
        },
    )
}

/// A [`Refusal`] as the response.
fn refused(r: Refusal) -> Response {
    let mut response =
        error(StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST), r.code, r.message);
    if let Some(allow) = r.allow.and_then(|a| warp::http::HeaderValue::from_str(&a).ok()) {
        response.headers_mut().insert(warp::http::header::ALLOW, allow);
    }
    response
}

/// Most transactions a JSON block answer may hold; larger blocks are served only in the wire
/// form (a full block as hex in JSON was 92.6 MB, built whole per request: issue #15).
pub(crate) const MAX_JSON_BLOCK_TXS: u32 = 4_096;
/// Most positions in one `POST /v1/inclusions`.
pub(crate) const MAX_INCLUSIONS: usize = 1_000;
/// A transaction and its proof from the index (OP-9); or the error response to send.
#[allow(clippy::result_large_err)] // the error is the response itself, built once per request
fn inclusion(reads: &Reader, blknum: u64, index: u32) -> Result<Inclusion, Response> {
    match reads.inclusion(blknum, index) {
        Ok(Lookup::Found(inc)) => Ok(*inc),
        Ok(Lookup::UnknownBlock) => Err(error(StatusCode::NOT_FOUND, "UnknownBlock", blknum)),
        Ok(Lookup::OutOfRange { tx_count }) => Err(error(
            StatusCode::NOT_FOUND,
            "TxIndexOutOfRange",
            format!("block {blknum} has {tx_count} transactions"),
        )),
        Err(e) => Err(error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e)),
    }
}

/// `GET /v1/utxos/{pos}/exit-data`'s answer. Blocks (store reads).
fn exit_data(reads: &Reader, pos: UtxoPos) -> Response {
    match reads.utxo(pos) {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::NOT_FOUND, "UnknownUtxo", pos),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e),
    }
    match inclusion(reads, pos.blknum(), u32::from(pos.tx_index())) {
        Ok(inc) => match exit_data_json(pos, &inc) {
            Some(v) => ok(v),
            None => {
                error(StatusCode::CONFLICT, "NotCommitted", "the block is not committed on L1 yet")
            }
        },
        Err(r) => r,
    }
}

/// Exit data of the output at `pos`, once its block is committed.
fn exit_data_json(pos: UtxoPos, inc: &Inclusion) -> Option<Value> {
    let ts = inc.info.l1_timestamp?;
    Some(json!({
        "utxoPos": pos.to_u256().to_string(),
        "blknum": pos.blknum(),
        "txBytes": hex0x(&inc.tx_bytes),
        "inclusionProof": hex0x(&inc.proof),
        "root": inc.info.root,
        "blockTimestamp": ts,
    }))
}

/// One item of `POST /v1/inclusions`.
fn inclusion_item(reads: &Reader, blknum: u64, index: u32) -> Value {
    let fail = |code: &str, message: String| json!({"blknum": blknum, "txIndex": index, "error": {"code": code, "message": message}});
    match reads.inclusion(blknum, index) {
        Ok(Lookup::Found(inc)) => json!({
            "blknum": blknum,
            "txIndex": index,
            "signedTx": (!plasma_spec::is_deposit_block(blknum)).then(|| hex0x(&inc.stored)),
            "txBytes": hex0x(&inc.tx_bytes),
            "proof": hex0x(&inc.proof),
            "root": inc.info.root,
            "blockTimestamp": inc.info.l1_timestamp,
        }),
        Ok(Lookup::UnknownBlock) => fail("UnknownBlock", format!("no block {blknum}")),
        Ok(Lookup::OutOfRange { tx_count }) => {
            fail("TxIndexOutOfRange", format!("block {blknum} has {tx_count} transactions"))
        }
        Err(e) => fail("StorageFailure", e.to_string()),
    }
}

/// A small block as JSON, as before #15; larger ones are refused (413).
async fn block_json(ctx: &ApiContext, until: Instant, info: BlockInfo) -> Response {
    if info.tx_count > MAX_JSON_BLOCK_TXS {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BlockTooLargeForJson",
            format!(
                "block {} has {} transactions; JSON is served up to {MAX_JSON_BLOCK_TXS}: ask with Accept: {}",
                info.blknum,
                info.tx_count,
                wire::MEDIA_TYPE
            ),
        );
    }
    let blknum = info.blknum;
    match ctx.read_store(until, move |r| r.block(blknum)).await {
        Ok(Some(b)) => ok(json!({
            "blknum": b.blknum,
            "root": b.root,
            "l1Timestamp": b.l1_timestamp,
            "l1Tx": b.l1_tx,
            "txs": b.txs.iter().map(|t| hex0x(t)).collect::<Vec<_>>(),
        })),
        Ok(None) => error(StatusCode::NOT_FOUND, "UnknownBlock", blknum),
        Err(e) => e.response(),
    }
}

/// The body of a streamed block: chunks read from the store by a task, at most two ahead of the
/// socket, so a download holds about two stored rows in memory whatever the block's size.
struct ChunkStream(tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>);

impl warp::Stream for ChunkStream {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// `GET /v1/blocks/{n}` in the wire form: the stored bytes as they are, streamed, with ranges.
/// Each chunk is read off the workers with its own [`STORE_READ_DEADLINE`]: a store that stops
/// answering mid-stream ends the body with an error, and a client that stops reading holds no
/// read slot (the task waits on the socket with at most two chunks read ahead).
fn block_binary(ctx: &ApiContext, info: BlockInfo, range: Option<&str>) -> Response {
    use warp::http::header::{HeaderName, HeaderValue};
    let len = info.wire_len;
    let (status, start, end) = match parse_range(range, len) {
        RangeAsk::Whole => (StatusCode::OK, 0, len),
        RangeAsk::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        RangeAsk::Unsatisfiable => {
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RangeNotSatisfiable",
                format!("the block is {len} bytes; ask one range, bytes=<from>-[<to>]"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(warp::http::header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let reads = ctx.reads();
    let permits = ctx.common.store_reads.clone();
    let blknum = info.blknum;
    tokio::spawn(async move {
        let mut at = start;
        while at < end {
            let c = reads.clone();
            let until = Instant::now() + STORE_READ_DEADLINE;
            let read = off_worker(&permits, until, move || c.wire_chunk(blknum, at)).await;
            let mut chunk = match read {
                Ok(Ok(chunk)) if !chunk.is_empty() => chunk,
                failed => {
                    tracing::error!(target: "operator::api", blknum, at, ?failed, "block read failed mid-stream");
                    let _ = tx.send(Err(std::io::Error::other("storage failure"))).await;
                    return;
                }
            };
            chunk.truncate(usize::try_from(end - at).unwrap_or(usize::MAX));
            at += chunk.len() as u64;
            if tx.send(Ok(bytes::Bytes::from(chunk))).await.is_err() {
                return; // the client went away
            }
        }
    });
    let mut r = warp::reply::stream(ChunkStream(rx)).into_response();
    *r.status_mut() = status;
    let h = r.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set("content-type", wire::MEDIA_TYPE.to_owned());
    set("content-length", (end - start).to_string());
    set("accept-ranges", "bytes".to_owned());
    set("x-plasma-root", info.root.to_string());
    set("x-plasma-tx-count", info.tx_count.to_string());
    if let Some(ts) = info.l1_timestamp {
        set("x-plasma-l1-timestamp", ts.to_string());
    }
    if status == StatusCode::PARTIAL_CONTENT {
        set("content-range", format!("bytes {start}-{}/{len}", end - 1));
    }
    r
}

/// `/v1/status`: the leader's chain, L1 and availability figures (memory); a standby's store
/// head as its background poll last read it, with its age (never a read of the store). With
/// an election, `role` (`leader`, `standby`), the `epoch` this process leads in and the lease
/// row's `leader` (OP-HA-4). A redb operator is always `leader`, epoch 0.
fn status_json(ctx: &ApiContext) -> Value {
    let ha = ctx.common.ha.as_ref().map(|h| h.snapshot());
    let (role, epoch, leader) = match &ha {
        Some(s) => (
            s.role,
            s.epoch,
            s.leader.as_ref().map(|l| serde_json::to_value(l).unwrap_or(Value::Null)),
        ),
        None => ("leader", Some(0), None),
    };
    let mut v = json!({
        "role": role,
        "epoch": epoch,
        "leader": leader,
        "node": ha.as_ref().map(|s| s.node_id.clone()),
        "storePoisoned": ha.as_ref().and_then(|s| s.store_poisoned.clone()),
        "exitReason": ha.as_ref().and_then(|s| s.exit_reason.clone()),
        "store": {"backend": ctx.common.backend, "url": ctx.common.store},
    });
    match &ctx.serving {
        Serving::Leader(l) => {
            v["chain"] = serde_json::to_value(l.chain.status()).unwrap_or(Value::Null);
            v["l1"] = serde_json::to_value(&*l.l1.lock()).unwrap_or(Value::Null);
            v["da"] = l.da.as_ref().map_or(Value::Null, |d| d.status());
        }
        // The background poll's copy: `/v1/status` never waits on the database (A21b-2).
        Serving::Standby { reads, .. } => v["standby"] = reads.status(),
    }
    v
}

fn rejection(r: &Rejection) -> Response {
    if r.is_not_found() {
        error(StatusCode::NOT_FOUND, "NotFound", "no such route")
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        error(StatusCode::PAYLOAD_TOO_LARGE, "BodyTooLarge", "request body too large")
    } else if r.find::<warp::reject::LengthRequired>().is_some() {
        error(StatusCode::LENGTH_REQUIRED, "LengthRequired", "send a Content-Length")
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        // `unrouted` answers these with Allow; this is only a fallback.
        error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "method not allowed")
    } else if let Some(e) = r.find::<warp::reject::InvalidHeader>() {
        error(StatusCode::BAD_REQUEST, "MalformedHeader", e)
    } else if let Some(e) = r.find::<warp::reject::InvalidQuery>() {
        error(StatusCode::BAD_REQUEST, "MalformedQuery", e)
    } else {
        tracing::debug!(target: "operator::api", rejection = ?r, "request refused");
        error(StatusCode::BAD_REQUEST, "BadRequest", "the request could not be read")
    }
}
