//! Block availability from a tower quorum (spec: DA-7, OP-10; issue 17): every child block the
//! operator stores is erasure-coded into one chunk per tower (DA-1, DA-2), under a header the
//! operator signs (DA-4), and pushed to the towers; the submitter commits the block's root once
//! `k` towers signed receipts for their chunks (DA-5), so that any `k` of them can rebuild the
//! block if the operator withholds it (DA-10).
//!
//! The pieces:
//! - [`Distributor::run`] learns of each stored child block (OP-3) and starts its distribution:
//!   the block's stored wire bytes (OP-9) are encoded off the async workers and off the chain's
//!   lock, the header is stored, and one push loop per tower still without a receipt runs.
//! - A push loop PUTs its envelope every `retry_ms` while the block is *fresh* (not committed,
//!   and stored less than `wait_ms` ago). After that it continues in the *background*: with a
//!   backoff, one block at a time per tower (a down tower is probed by one loop while the others
//!   wait, holding no chunk bytes), until the tower answers, the block is final on L1, or a
//!   generous number of attempts failed. Fresh pushes never wait behind background ones, so a
//!   lagging tower never delays later blocks.
//! - A receipt counts only if its signature recovers to the tower's configured address and it
//!   names this block, this chunk root and this index (DA-5, DA-7); it is stored durably (redb)
//!   before it counts.
//! - [`Distributor::may_commit`] is the submitter's gate: `k` receipts, or `wait_ms` since the
//!   block was stored — then the block is committed anyway (DA-7, liveness: towers must not get a
//!   veto on the chain; the operator still serves the block, and towers that miss a chunk fall
//!   back to downloading it, WATCH-3), with a `warn!` and `/v1/status` `da.quorumMissed` counted.
//!
//! Deposit blocks are not distributed: their data is on L1. Blocks stored but not yet committed,
//! and blocks still being pushed, resume after a restart (receipts already stored count).

use crate::{
    chain::Chain,
    config::{DaConfig, TowerConfig},
    store::{Batch, DA_QUORUM_MISSED, DaHeaderRow, DaReceiptRow, StoreError},
};
use alloy::primitives::{Address, B256};
use bytes::Bytes;
use parking_lot::Mutex;
use plasma_spec::{CHILD_BLOCK_INTERVAL, SigningDomain};
use serde::Deserialize;
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::{
    sync::{Notify, Semaphore, mpsc, watch},
    task::JoinSet,
};
use tracing::{debug, error, info, warn};

/// How long one PUT of an envelope may take: a full block's chunk is a few MB.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest pause between two background pushes of a chunk to a tower that does not answer.
pub(crate) const BACKGROUND_MAX_DELAY: Duration = Duration::from_secs(30);
/// Background pushes of one chunk before giving up on it (about 1.5 hours at the longest pause),
/// unless the block is final first.
pub(crate) const MAX_BACKGROUND_ATTEMPTS: u32 = 200;
/// Refusals (4xx answers, or receipts that do not count) of one chunk in the background before
/// giving up on it: a tower that refuses a chunk is misconfigured or holds another chunk root for
/// the block, and pushing the same bytes again changes nothing.
pub(crate) const MAX_REFUSALS: u32 = 5;
/// Bytes of encoded blocks kept for pushes (fresh pushes of recent blocks, a returning tower's
/// catch-up); older ones are encoded again from the store when a tower needs them. A block's
/// envelopes are about `n / k · 8/7` times its wire bytes (17 MB for a full block at k = 3, n =
/// 5); the newest block is always kept, whatever its size.
const CACHE_BYTES: usize = 128 * 1024 * 1024;
/// The most bytes of a tower's answer read: a receipt is a few hundred.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why distributing a block failed before any push.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DaRunError {
    /// Reading the block or writing its header failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The block is not stored.
    #[error("block {0} is not stored")]
    NoBlock(u64),
    /// Encoding failed (the block is longer than the code allows).
    #[error(transparent)]
    Code(#[from] plasma_da::DaError),
    /// The encoding task panicked.
    #[error("the encoder panicked")]
    Panicked,
}

/// Why one push of a chunk did not yield a receipt.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushError {
    /// The tower could not be reached, or did not answer in time.
    #[error("unreachable: {0}")]
    Transport(String),
    /// The tower refused the chunk (4xx): its error code and message.
    #[error("refused ({status} {code}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The tower's error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The tower failed (5xx, 408, 429).
    #[error("failed ({status}): {body}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The start of its answer.
        body: String,
    },
    /// A 200 whose receipt does not count: unreadable, another block, chunk root or index, or a
    /// signature that does not recover to the tower's configured address (DA-5).
    #[error("receipt does not count: {0}")]
    BadReceipt(String),
    /// Storing the receipt failed; it is asked again.
    #[error("storing the receipt: {0}")]
    Store(String),
}

impl PushError {
    /// Whether pushing the same bytes again cannot help by itself (the tower must change).
    const fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused { .. } | Self::BadReceipt(_))
    }
}

/// A block encoded for the towers: its stored header and one envelope per tower.
#[derive(Debug)]
struct Prepared {
    header: DaHeaderRow,
    envelopes: Vec<Bytes>,
}

/// What the distributor knows of one block being distributed or waiting for its commitment.
#[derive(Debug)]
struct BlockDa {
    /// When the distributor first heard of it (after a restart: when it resumed).
    first_seen: Instant,
    /// Which towers' receipts are stored (valid for the stored header).
    receipts: Vec<bool>,
    /// Towers a push loop still runs for.
    pushing: Vec<bool>,
    /// Whether its distribution was started.
    requested: bool,
    /// Whether the quorum was missed (counted once).
    missed: bool,
    /// Whether the submitter committed it.
    committed: bool,
    /// Whether its push loops ended.
    done: bool,
}

impl BlockDa {
    fn new(n: usize) -> Self {
        Self {
            first_seen: Instant::now(),
            receipts: vec![false; n],
            pushing: vec![false; n],
            requested: false,
            missed: false,
            committed: false,
            done: false,
        }
    }

    fn count(&self) -> usize {
        self.receipts.iter().filter(|r| **r).count()
    }
}

#[derive(Debug, Default)]
struct State {
    blocks: BTreeMap<u64, BlockDa>,
    /// Per tower: the last push's error, `None` after a receipt.
    last_error: Vec<Option<String>>,
    quorum_missed: u64,
}

/// How one push loop ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Receipt,
    Final,
    GaveUp,
    Shutdown,
}

/// Distributes blocks to the towers and tells the submitter when a block may be committed.
#[derive(Debug)]
pub(crate) struct Distributor {
    k: u16,
    towers: Vec<TowerConfig>,
    wait: Duration,
    retry: Duration,
    params: plasma_da::Params,
    domain: SigningDomain,
    signer: plasma_spec::Signer,
    chain: Arc<Chain>,
    http: reqwest::Client,
    state: Mutex<State>,
    cache: Mutex<VecDeque<(u64, Arc<Prepared>)>>,
    /// One encode at a time: a returning tower's catch-up must not encode many blocks at once.
    encode_lock: tokio::sync::Mutex<()>,
    /// Per tower: background pushes go one at a time (see the module doc).
    background: Vec<Arc<Semaphore>>,
    /// Per tower: woken when the tower gave a receipt (background loops retry at once).
    tower_up: Vec<Notify>,
    /// Every block up to this one is final on L1 (from the submitter's finality tracking).
    final_through: watch::Sender<u64>,
    /// Wakes the submitter when a block reaches `k` receipts.
    quorum: Notify,
    start_tx: mpsc::UnboundedSender<u64>,
    start_rx: Mutex<Option<mpsc::UnboundedReceiver<u64>>>,
    /// The highest `quorumMissed` count stored: the count's writes run on the blocking pool and
    /// may finish out of order; one that would store a lower count than a finished one is
    /// skipped, so the stored count never goes back.
    missed_stored: Arc<Mutex<u64>>,
}

/// Runs a store call on the blocking pool, never on an async worker: on PostgreSQL every store
/// call is a network round trip with no bound but the connection's, and a worker parked in one
/// is a worker `/health`, `/v1/status` and the supervisor that stops a deposed leader cannot use
/// (A21-3; DA's share of it). A panic of the call is reported as a store error.
async fn off_workers<T: Send + 'static>(
    chain: &Arc<Chain>,
    call: impl FnOnce(&Chain) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let chain = chain.clone();
    tokio::task::spawn_blocking(move || call(&chain)).await.map_err(|e| StoreError::Corrupt {
        what: "availability store call",
        reason: format!("the call panicked: {e}"),
    })?
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceiptJson {
    blknum: u64,
    chunk_root: B256,
    index: u16,
    #[serde(default)]
    tower: Option<Address>,
    signature: alloy::primitives::Bytes,
}

#[derive(Deserialize)]
struct ReceiptAnswer {
    receipt: ReceiptJson,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

impl Distributor {
    /// A distributor for a validated `[da]` section, signing headers with the operator's key;
    /// https towers are trusted as L1 endpoints are (`tls`).
    pub(crate) async fn new(
        config: &DaConfig,
        devnet: bool,
        domain: SigningDomain,
        signer: plasma_spec::Signer,
        chain: Arc<Chain>,
        tls: &plasma_contracts::l1::ClientOptions,
    ) -> Result<Self, crate::node::NodeError> {
        use crate::{config::ConfigError, node::NodeError};
        config.validate().map_err(ConfigError::from)?;
        let n = config.n();
        // Validated: 1 <= k <= n <= 1024.
        let params = u16::try_from(n)
            .ok()
            .and_then(|n| plasma_da::Params::new(config.k, n).ok())
            .ok_or_else(|| {
            NodeError::Da(format!("k = {} and n = {n} are not usable", config.k))
        })?;
        let http = plasma_contracts::l1::tls_builder(tls)
            .map_err(|e| NodeError::Da(format!("http client: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| NodeError::Da(format!("http client: {e}")))?;
        let quorum_missed =
            off_workers(&chain, |c| c.store().meta(DA_QUORUM_MISSED)).await?.unwrap_or(0);
        let (start_tx, start_rx) = mpsc::unbounded_channel();
        Ok(Self {
            k: config.k,
            towers: config.towers.clone(),
            wait: config.wait(devnet),
            retry: config.retry(),
            params,
            domain,
            signer,
            chain,
            http,
            state: Mutex::new(State {
                blocks: BTreeMap::new(),
                last_error: vec![None; n],
                quorum_missed,
            }),
            cache: Mutex::new(VecDeque::new()),
            encode_lock: tokio::sync::Mutex::new(()),
            background: (0..n).map(|_| Arc::new(Semaphore::new(1))).collect(),
            tower_up: (0..n).map(|_| Notify::new()).collect(),
            final_through: watch::Sender::new(0),
            quorum: Notify::new(),
            start_tx,
            start_rx: Mutex::new(Some(start_rx)),
            missed_stored: Arc::new(Mutex::new(quorum_missed)),
        })
    }

    fn n(&self) -> usize {
        self.towers.len()
    }

    /// Starts distributing `blknum` if nobody did yet (idempotent).
    fn request(&self, blknum: u64) {
        if !blknum.is_multiple_of(CHILD_BLOCK_INTERVAL) {
            return; // deposit blocks: their data is on L1
        }
        let mut st = self.state.lock();
        let n = self.n();
        let entry = st.blocks.entry(blknum).or_insert_with(|| BlockDa::new(n));
        if !entry.requested {
            entry.requested = true;
            let _ = self.start_tx.send(blknum);
        }
    }

    /// Runs until `shutdown`: starts each stored child block's distribution, resumes those a
    /// restart interrupted, and waits for every push loop before returning.
    pub(crate) async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(mut starts) = self.start_rx.lock().take() else { return };
        let mut produced = self.chain.subscribe_produced();
        // Read before the uncommitted blocks: a block stored in between is announced again.
        let mut seen = *produced.borrow_and_update();
        // After a restart: blocks whose pushes were interrupted, then blocks stored but not yet
        // committed (their stored receipts count).
        let pending = match off_workers(&self.chain, |c| c.store().da_pending()).await {
            Ok(p) => p,
            Err(e) => {
                error!(target: "operator::da", error = %e, "reading the blocks still being distributed failed");
                Vec::new()
            }
        };
        let status = self.chain.status();
        let resumed: Vec<u64> =
            pending.iter().chain(&status.uncommitted_blocks).copied().collect::<Vec<_>>();
        for b in &resumed {
            self.request(*b);
        }
        if !resumed.is_empty() {
            info!(target: "operator::da", blocks = ?resumed, "resuming distribution");
        }
        info!(target: "operator::da", k = self.k, n = self.n(), wait_ms = self.wait.as_millis() as u64, "distributing blocks to the availability towers");
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(blknum) = starts.recv() => {
                    tasks.spawn(self.clone().distribute(blknum, shutdown.clone()));
                }
                changed = produced.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let next = *produced.borrow_and_update();
                    let mut b = seen.max(CHILD_BLOCK_INTERVAL);
                    while b < next {
                        self.request(b);
                        b += CHILD_BLOCK_INTERVAL;
                    }
                    seen = seen.max(next);
                }
                Some(done) = tasks.join_next() => {
                    if let Err(e) = done {
                        error!(target: "operator::da", error = %e, "a distribution task failed");
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Distributes one block: encodes it, then pushes to every tower without a receipt.
    async fn distribute(self: Arc<Self>, blknum: u64, shutdown: watch::Receiver<bool>) {
        let prepared = match self.prepared(blknum).await {
            Ok(p) => p,
            Err(e) => {
                // The submitter commits it after the wait (liveness); towers download it.
                error!(target: "operator::da", blknum, error = %e, "block not distributed");
                self.finish(blknum, &[]).await;
                return;
            }
        };
        // Committed before a restart: its pushes are background ones at once.
        let committed = matches!(
            off_workers(&self.chain, move |c| c.block_info(blknum)).await,
            Ok(Some(i)) if i.l1_timestamp.is_some()
        );
        let missing: Vec<usize> = {
            let mut st = self.state.lock();
            let n = self.n();
            let entry = st.blocks.entry(blknum).or_insert_with(|| BlockDa::new(n));
            entry.committed |= committed;
            let missing: Vec<usize> = (0..n).filter(|i| !entry.receipts[*i]).collect();
            for i in &missing {
                entry.pushing[*i] = true;
            }
            missing
        };
        if self.count(blknum) >= usize::from(self.k) {
            self.quorum.notify_one();
        }
        debug!(target: "operator::da", blknum, chunk_root = %prepared.header.chunk_root, missing = missing.len(), "pushing chunks");
        let mut loops = JoinSet::new();
        for i in missing {
            let envelope = prepared.envelopes[i].clone();
            let chunk_root = prepared.header.chunk_root;
            loops.spawn(self.clone().push_loop(blknum, i, chunk_root, envelope, shutdown.clone()));
        }
        drop(prepared);
        let mut outcomes = Vec::new();
        while let Some(done) = loops.join_next().await {
            match done {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    error!(target: "operator::da", blknum, error = %e, "a push loop failed");
                    outcomes.push(Outcome::GaveUp);
                }
            }
        }
        self.finish(blknum, &outcomes).await;
    }

    /// A block's push loops ended: unless the operator is stopping (then a restart resumes
    /// them), the block is no longer pending.
    async fn finish(&self, blknum: u64, outcomes: &[Outcome]) {
        if !outcomes.contains(&Outcome::Shutdown)
            && let Err(e) =
                off_workers(&self.chain, move |c| c.store().clear_da_pending(blknum)).await
        {
            warn!(target: "operator::da", blknum, error = %e, "could not clear the pending mark");
        }
        let mut st = self.state.lock();
        if let Some(entry) = st.blocks.get_mut(&blknum) {
            entry.pushing.iter_mut().for_each(|p| *p = false);
            entry.done = true;
            if entry.committed || *self.final_through.borrow() >= blknum {
                st.blocks.remove(&blknum);
            }
        }
    }

    fn count(&self, blknum: u64) -> usize {
        self.state.lock().blocks.get(&blknum).map_or(0, BlockDa::count)
    }

    fn is_final(&self, blknum: u64) -> bool {
        *self.final_through.borrow() >= blknum
    }

    /// Fresh: not committed, and stored less than `wait` ago.
    fn is_fresh(&self, blknum: u64) -> bool {
        let st = self.state.lock();
        st.blocks.get(&blknum).is_some_and(|b| !b.committed && b.first_seen.elapsed() < self.wait)
    }

    /// Pushes chunk `index` of `blknum` until a receipt, finality, giving up, or shutdown.
    async fn push_loop(
        self: Arc<Self>,
        blknum: u64,
        index: usize,
        mut chunk_root: B256,
        envelope: Bytes,
        mut shutdown: watch::Receiver<bool>,
    ) -> Outcome {
        let mut held = Some(envelope);
        let mut permit: Option<tokio::sync::OwnedSemaphorePermit> = None;
        let (mut background_attempts, mut refusals) = (0u32, 0u32);
        let mut backoff = self.retry;
        let mut failures = 0u32;
        let mut finality = self.final_through.subscribe();
        let outcome = loop {
            if *shutdown.borrow() {
                break Outcome::Shutdown;
            }
            if self.is_final(blknum) {
                break Outcome::Final;
            }
            let fresh = self.is_fresh(blknum);
            if !fresh && permit.is_none() {
                // Background: wait for this tower's turn without holding the chunk's bytes.
                held = None;
                let semaphore = self.background[index].clone();
                tokio::select! {
                    p = semaphore.acquire_owned() => match p {
                        Ok(p) => permit = Some(p),
                        Err(_) => break Outcome::Shutdown,
                    },
                    _ = shutdown.changed() => break Outcome::Shutdown,
                    _ = finality.wait_for(|f| *f >= blknum) => break Outcome::Final,
                }
                continue; // look at shutdown and finality again
            }
            let envelope = match &held {
                Some(e) => e.clone(),
                None => match self.prepared(blknum).await {
                    Ok(p) => {
                        chunk_root = p.header.chunk_root;
                        let e = p.envelopes[index].clone();
                        held = Some(e.clone());
                        e
                    }
                    Err(e) => {
                        error!(target: "operator::da", blknum, tower = index, error = %e, "block not encoded again; giving up on this tower");
                        break Outcome::GaveUp;
                    }
                },
            };
            if !fresh {
                background_attempts += 1;
            }
            let sent = tokio::select! {
                r = self.send(blknum, index, chunk_root, envelope) => r,
                // A hanging tower must not hold up a stop for the request's timeout.
                _ = shutdown.changed() => break Outcome::Shutdown,
            };
            let pushed = match sent {
                Ok(receipt) => self.accept(blknum, receipt).await,
                Err(e) => Err(e),
            };
            let refused = match pushed {
                Ok(()) => break Outcome::Receipt,
                Err(e) => {
                    failures += 1;
                    let tower = &self.towers[index];
                    if failures == 1 {
                        warn!(target: "operator::da", blknum, tower = index, url = %tower.url, error = %e, "chunk push failed; retrying");
                    } else {
                        debug!(target: "operator::da", blknum, tower = index, failures, error = %e, "chunk push failed again");
                    }
                    let refused = e.is_refusal();
                    refusals += u32::from(refused);
                    self.state.lock().last_error[index] = Some(e.to_string());
                    refused
                }
            };
            if !fresh
                && (background_attempts >= MAX_BACKGROUND_ATTEMPTS || refusals >= MAX_REFUSALS)
            {
                warn!(target: "operator::da", blknum, tower = index, background_attempts, refusals, "giving up pushing this chunk; the tower can download the block (WATCH-3)");
                break Outcome::GaveUp;
            }
            let delay = if fresh && !refused {
                self.retry
            } else {
                backoff = (backoff * 2).min(BACKGROUND_MAX_DELAY.max(self.retry));
                backoff
            };
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.tower_up[index].notified() => {}
                _ = shutdown.changed() => break Outcome::Shutdown,
                _ = finality.wait_for(|f| *f >= blknum) => break Outcome::Final,
            }
        };
        drop(permit);
        let mut st = self.state.lock();
        if let Some(entry) = st.blocks.get_mut(&blknum) {
            entry.pushing[index] = false;
        }
        drop(st);
        if outcome == Outcome::Receipt && failures > 0 {
            info!(target: "operator::da", blknum, tower = index, failures, "tower caught up");
        }
        outcome
    }

    /// One PUT of an envelope; the receipt answered if it counts (DA-5, DA-7).
    async fn send(
        &self,
        blknum: u64,
        index: usize,
        chunk_root: B256,
        envelope: Bytes,
    ) -> Result<DaReceiptRow, PushError> {
        let tower = &self.towers[index];
        let url = format!("{}/v1/da/chunks/{blknum}", tower.url.trim_end_matches('/'));
        let mut response = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, plasma_da::CHUNK_MEDIA_TYPE)
            .body(envelope)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| PushError::Transport(e.to_string()))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(part) =
            response.chunk().await.map_err(|e| PushError::Transport(e.to_string()))?
        {
            body.extend_from_slice(&part);
            if body.len() > MAX_ANSWER_BYTES {
                return Err(PushError::BadReceipt(format!("answer over {MAX_ANSWER_BYTES} bytes")));
            }
        }
        let code = status.as_u16();
        if !status.is_success() {
            let retryable = status.is_server_error() || code == 408 || code == 429;
            if retryable || !status.is_client_error() {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                return Err(PushError::Server { status: code, body: text });
            }
            let (code_s, message) = match serde_json::from_slice::<ErrorAnswer>(&body) {
                Ok(a) => (a.error.code, a.error.message),
                Err(_) => ("Unknown".to_owned(), String::from_utf8_lossy(&body).into_owned()),
            };
            return Err(PushError::Refused { status: code, code: code_s, message });
        }
        let answer: ReceiptAnswer = serde_json::from_slice(&body)
            .map_err(|e| PushError::BadReceipt(format!("unreadable: {e}")))?;
        let r = answer.receipt;
        let index16 = index as u16;
        if r.blknum != blknum || r.chunk_root != chunk_root || r.index != index16 {
            return Err(PushError::BadReceipt(format!(
                "names block {} chunk root {} index {}, pushed block {blknum} chunk root {chunk_root} index {index}",
                r.blknum, r.chunk_root, r.index
            )));
        }
        // spec: DA-7 — the receipt is the tower's signature, by the key configured for it.
        let receipt = plasma_da::Receipt { blknum, chunk_root, index: index16 };
        let signer = receipt
            .signer(&self.domain, &r.signature)
            .map_err(|e| PushError::BadReceipt(format!("signature: {e}")))?;
        if signer != tower.address {
            return Err(PushError::BadReceipt(format!(
                "signed by {signer}, tower {index} is {}",
                tower.address
            )));
        }
        if let Some(claimed) = r.tower
            && claimed != tower.address
        {
            debug!(target: "operator::da", blknum, tower = index, %claimed, "receipt names another tower address; its signature is the tower's");
        }
        Ok(DaReceiptRow { index: index16, tower: signer, signature: r.signature.to_vec() })
    }

    /// Stores a receipt that counts (durably, before it counts) and counts it.
    async fn accept(&self, blknum: u64, row: DaReceiptRow) -> Result<(), PushError> {
        let index = usize::from(row.index);
        let chain = self.chain.clone();
        tokio::task::spawn_blocking(move || chain.store().put_da_receipt(blknum, &row))
            .await
            .map_err(|e| PushError::Store(e.to_string()))?
            .map_err(|e| PushError::Store(e.to_string()))?;
        let reached = {
            let mut st = self.state.lock();
            st.last_error[index] = None;
            st.blocks.get_mut(&blknum).is_some_and(|b| {
                let before = b.count();
                b.receipts[index] = true;
                before < usize::from(self.k) && b.count() >= usize::from(self.k)
            })
        };
        debug!(target: "operator::da", blknum, tower = index, "receipt stored");
        if reached {
            info!(target: "operator::da", blknum, k = self.k, "availability quorum reached");
            self.quorum.notify_one();
        }
        self.tower_up[index].notify_waiters();
        Ok(())
    }

    /// The block encoded for the towers, from the cache or encoded now (one at a time, off the
    /// async workers, without the chain's lock): its header stored, its stored receipts loaded.
    async fn prepared(&self, blknum: u64) -> Result<Arc<Prepared>, DaRunError> {
        if let Some(p) = self.cached(blknum) {
            return Ok(p);
        }
        let _one = self.encode_lock.lock().await;
        if let Some(p) = self.cached(blknum) {
            return Ok(p);
        }
        let (chain, signer, domain, params) =
            (self.chain.clone(), self.signer.clone(), self.domain.clone(), self.params);
        let started = Instant::now();
        let (prepared, receipts) = tokio::task::spawn_blocking(move || {
            let (info, wire) = chain.store().wire(blknum)?.ok_or(DaRunError::NoBlock(blknum))?;
            let envelopes =
                plasma_da::envelopes(&wire, blknum, info.root, params, &domain, &signer)?;
            drop(wire);
            let first = envelopes.first().ok_or(DaRunError::Code(plasma_da::DaError::BadParams {
                k: params.k,
                n: params.n,
            }))?;
            let h = &first.header;
            let header = DaHeaderRow {
                blknum,
                tx_root: h.tx_root,
                data_len: h.data_len,
                k: h.k,
                n: h.n,
                chunk_root: h.chunk_root,
                signature: first.header_sig.to_vec(),
            };
            if chain.store().put_da_header(&header)? {
                warn!(target: "operator::da", blknum, "the stored header differed (other towers or k): its receipts were dropped");
            }
            let receipts = chain.store().da_receipts(blknum)?;
            let envelopes = envelopes.iter().map(|e| Bytes::from(e.encode())).collect();
            Ok::<_, DaRunError>((Prepared { header, envelopes }, receipts))
        })
        .await
        .map_err(|_| DaRunError::Panicked)??;
        debug!(target: "operator::da", blknum, ms = started.elapsed().as_millis() as u64, data_len = prepared.header.data_len, "block encoded");
        {
            let mut st = self.state.lock();
            let n = self.n();
            let entry = st.blocks.entry(blknum).or_insert_with(|| BlockDa::new(n));
            for r in receipts {
                // Only receipts of the tower configured at that index now count.
                let i = usize::from(r.index);
                if self.towers.get(i).is_some_and(|t| t.address == r.tower) {
                    entry.receipts[i] = true;
                }
            }
        }
        let prepared = Arc::new(prepared);
        let mut cache = self.cache.lock();
        cache.push_back((blknum, prepared.clone()));
        let size = |p: &Prepared| p.envelopes.iter().map(Bytes::len).sum::<usize>();
        let mut total: usize = cache.iter().map(|(_, p)| size(p)).sum();
        while total > CACHE_BYTES && cache.len() > 1 {
            if let Some((_, old)) = cache.pop_front() {
                total -= size(&old);
            }
        }
        Ok(prepared)
    }

    fn cached(&self, blknum: u64) -> Option<Arc<Prepared>> {
        self.cache.lock().iter().find(|(b, _)| *b == blknum).map(|(_, p)| p.clone())
    }

    // ------------------------------------------------------------------------------------------
    // The submitter's side.

    /// Whether the submitter may commit `blknum` now: `k` receipts, or `wait` since it was stored
    /// (spec: liveness — towers must not get a veto on the chain). Starts its distribution if
    /// nothing did yet.
    pub(crate) fn may_commit(&self, blknum: u64) -> bool {
        self.request(blknum);
        let k = usize::from(self.k);
        let (missed, count, waited) = {
            let mut st = self.state.lock();
            let n = self.n();
            let entry = st.blocks.entry(blknum).or_insert_with(|| BlockDa::new(n));
            let count = entry.count();
            if count >= k {
                return true;
            }
            let waited = entry.first_seen.elapsed();
            if waited < self.wait {
                return false;
            }
            let first = !entry.missed;
            entry.missed = true;
            if first {
                st.quorum_missed += 1;
            }
            (first.then_some(st.quorum_missed), count, waited)
        };
        if let Some(total) = missed {
            warn!(
                target: "operator::da",
                blknum, receipts = count, k, n = self.n(), waited_ms = waited.as_millis() as u64,
                quorum_missed = total,
                "committing without k tower receipts after the wait: liveness over a tower veto; \
                 the operator serves the block, towers without the chunk download it (WATCH-3)"
            );
            self.store_quorum_missed(total);
        }
        true
    }

    /// Stores the `quorumMissed` count on the blocking pool, without waiting: `may_commit` is
    /// called from the submitter's async step and the count is a statistic (a restart that
    /// loses the last increment under-counts by one), not worth a worker parked on the database.
    /// Writes are ordered by `missed_stored`: a count lower than one already stored is skipped.
    fn store_quorum_missed(&self, total: u64) {
        let (chain, stored) = (self.chain.clone(), self.missed_stored.clone());
        let write = move || {
            let mut stored = stored.lock();
            if total <= *stored {
                return;
            }
            let batch = Batch { meta: vec![(DA_QUORUM_MISSED, total)], ..Batch::default() };
            match chain.store().apply(&batch) {
                Ok(()) => *stored = total,
                Err(e) => {
                    warn!(target: "operator::da", error = %e, "could not store the quorumMissed count");
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(write)),
            // Outside a runtime (no worker to protect): write here.
            Err(_) => write(),
        }
    }

    /// The submitter recorded `blknum`'s commitment: background pushes from now on.
    pub(crate) fn committed(&self, blknum: u64) {
        let mut st = self.state.lock();
        if let Some(entry) = st.blocks.get_mut(&blknum) {
            entry.committed = true;
            if entry.done {
                st.blocks.remove(&blknum);
            }
        }
    }

    /// Every commitment up to `blknum` is final on L1 (the submitter's finality tracking):
    /// background pushes of those blocks stop.
    pub(crate) fn final_through(&self, blknum: u64) {
        self.final_through.send_if_modified(|f| {
            let moved = blknum > *f;
            *f = (*f).max(blknum);
            moved
        });
        let mut st = self.state.lock();
        st.blocks.retain(|b, e| *b > blknum || !e.done);
    }

    /// Waits until some block reaches `k` receipts.
    pub(crate) async fn quorum_reached(&self) {
        self.quorum.notified().await;
    }

    /// `/metrics` lines: blocks committed without a quorum, and per tower the blocks it lacks.
    pub(crate) fn metrics(&self) -> String {
        use std::fmt::Write as _;
        let st = self.state.lock();
        let mut out = format!(
            "# TYPE plasma_operator_da_quorum_missed_total counter\nplasma_operator_da_quorum_missed_total {}\n\
             # TYPE plasma_operator_da_tower_behind gauge\n",
            st.quorum_missed
        );
        for i in 0..self.n() {
            let behind = st.blocks.values().filter(|b| b.pushing[i]).count();
            let _ = writeln!(out, "plasma_operator_da_tower_behind{{index=\"{i}\"}} {behind}");
        }
        out
    }

    /// `/v1/status` `da`.
    pub(crate) fn status(&self) -> Value {
        let st = self.state.lock();
        let towers: Vec<Value> = self
            .towers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let behind = st.blocks.values().filter(|b| b.pushing[i]).count();
                json!({
                    "index": i,
                    "url": t.url,
                    "address": t.address,
                    "lastError": st.last_error[i],
                    "behind": behind,
                })
            })
            .collect();
        json!({"k": self.k, "n": self.n(), "towers": towers, "quorumMissed": st.quorum_missed})
    }
}

/// `GET /v1/blocks/{blknum}/availability`: the stored header, its signature and the receipts;
/// `None` when the block has no header (not distributed: a deposit block, no `[da]`, or not yet
/// encoded).
pub(crate) fn availability(chain: &Chain, blknum: u64) -> Result<Option<Value>, StoreError> {
    let Some(h) = chain.store().da_header(blknum)? else { return Ok(None) };
    let receipts: Vec<Value> = chain
        .store()
        .da_receipts(blknum)?
        .into_iter()
        .map(|r| {
            json!({
                "index": r.index,
                "tower": r.tower,
                "signature": format!("0x{}", hex::encode(&r.signature)),
            })
        })
        .collect();
    Ok(Some(json!({
        "header": {
            "blknum": h.blknum,
            "txRoot": h.tx_root,
            "dataLen": h.data_len,
            "k": h.k,
            "n": h.n,
            "chunkRoot": h.chunk_root,
        },
        "headerSignature": format!("0x{}", hex::encode(&h.signature)),
        "receipts": receipts,
    })))
}
