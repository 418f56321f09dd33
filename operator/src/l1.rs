//! The operator's L1 side: committing block roots (OP-4) and following deposits (OP-5), each
//! followed until final: L1 can reorganise what the operator already recorded (LEDGER-7).

use crate::{chain::Chain, da::Distributor};
use alloy::{
    eips::BlockId,
    primitives::{Address, B256, U256, keccak256},
    providers::{DynProvider, Provider},
    rpc::types::BlockNumberOrTag,
};
use plasma_contracts::{
    PlasmaFramework,
    sender::{Outcome, SendPolicy, Sender, nonce_used, taken_by_ours},
};
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

/// L1 failures; all but a halt and a root mismatch are retried by the loops, which log them.
#[derive(Debug, thiserror::Error)]
pub enum L1Error {
    /// An RPC call failed.
    #[error("L1 RPC: {0}")]
    Rpc(String),
    /// L1 holds a different root for one of our blocks: someone else submitted, or our state is
    /// not the chain's. The submitter stops rather than guess.
    #[error("L1 has root {on_l1} for block {blknum}, ours is {ours}")]
    RootMismatch {
        /// The block.
        blknum: u64,
        /// Root in the L1 event.
        on_l1: B256,
        /// Our root.
        ours: B256,
    },
    /// A credited deposit vanished or changed on L1: block production stopped (LEDGER-7).
    #[error(transparent)]
    Halted(#[from] Halt),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Why the operator stopped producing blocks (LEDGER-7): a deposit it credited is not what L1
/// now holds, so outputs derived from it are backed by nothing. Shown in `/v1/status` as
/// `l1.halt`, kept across restarts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "code")]
pub enum Halt {
    /// L1 no longer has the deposit block the operator credited.
    #[error("credited deposit block {blknum} (deposit {credited}) vanished from L1 (LEDGER-7)")]
    DepositVanished {
        /// The deposit block.
        blknum: u64,
        /// keccak256 of the deposit transaction the operator credited.
        credited: B256,
    },
    /// L1's deposit block of that number holds another deposit (e.g. a reorg swapped two).
    #[error(
        "credited deposit block {blknum} changed on L1: credited {credited}, L1 now has {on_l1} (LEDGER-7)"
    )]
    DepositChanged {
        /// The deposit block.
        blknum: u64,
        /// keccak256 of the deposit transaction the operator credited.
        credited: B256,
        /// keccak256 of the one L1 now holds (zero when restored after a restart).
        on_l1: B256,
    },
}

impl Halt {
    /// The stable error code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::DepositVanished { .. } => "DepositVanished",
            Self::DepositChanged { .. } => "DepositChanged",
        }
    }

    /// What the store keeps: the deposit block and the kind (0 vanished, 1 changed).
    pub(crate) const fn persisted(&self) -> (u64, u64) {
        match self {
            Self::DepositVanished { blknum, .. } => (*blknum, 0),
            Self::DepositChanged { blknum, .. } => (*blknum, 1),
        }
    }

    /// The halt rebuilt from the store after a restart.
    pub(crate) const fn restored(blknum: u64, kind: u64, credited: B256) -> Self {
        if kind == 0 {
            Self::DepositVanished { blknum, credited }
        } else {
            Self::DepositChanged { blknum, credited, on_l1: B256::ZERO }
        }
    }
}

fn rpc(e: impl std::fmt::Display) -> L1Error {
    L1Error::Rpc(e.to_string())
}

/// Runs `f`, a chain call that makes a store round trip (a write, or a read of what is not in
/// memory), on the blocking pool and never on a tokio worker (A21-3).
///
/// Why: on PostgreSQL a round trip is a network call of unbounded length (a partition, a hung
/// proxy, a frozen database VM swallow packets; no socket timeout covers a statement that was
/// sent). Made on a worker it parks that worker for as long, and with a few such calls every
/// worker: no timer fires, `/health` and `/v1/status` stop answering, and the HA supervisor that
/// stops a deposed leader's tasks never runs. Awaited here, the loop's task only waits; the
/// loops race each step against their shutdown, so a stop does not wait for the database
/// either (the call itself ends when its connection does, and the fence refuses it if a new
/// leader took over meanwhile, OP-HA-2).
pub(crate) async fn off_workers<T: Send + 'static>(
    chain: &Arc<Chain>,
    f: impl FnOnce(&Chain) -> Result<T, L1Error> + Send + 'static,
) -> Result<T, L1Error> {
    let chain = chain.clone();
    tokio::task::spawn_blocking(move || f(&chain)).await.map_err(|e| {
        L1Error::Store(crate::store::StoreError::Corrupt {
            what: "store call off the async workers",
            reason: e.to_string(),
        })
    })?
}

/// Resolves once `shutdown` is set (or its sender is gone): what each loop's step races against,
/// so a step waiting on a hung database does not hold up a stop (A21-3).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Settings of the L1 loops.
#[derive(Clone, Debug)]
pub(crate) struct L1Settings {
    /// The framework contract.
    pub framework: Address,
    /// The operator's address (sender of `submitBlock`).
    pub operator: Address,
    /// Confirmations before a deposit is credited.
    pub deposit_confirmations: u64,
    /// Confirmations before a commitment is recorded.
    pub commit_confirmations: u64,
    /// Depth at which an L1 block is final: recorded commitments and credited deposits are
    /// checked again until then.
    pub finality_depth: u64,
    /// Polling interval.
    pub poll: Duration,
    /// When an unmined submission gets its fee bumped.
    pub stuck_after: Duration,
    /// The L1 block the framework was created in (`deploymentBlock()`, 0 if the deployment
    /// predates it): the followers never read logs below it (a public chain's millions of blocks
    /// before it would take a first start tens of minutes of `eth_getLogs`).
    pub deployment_block: u64,
    /// The most one root submission may cost, gas limit times price, in wei (`[l1]
    /// max_tx_fee_wei`): a run is cut to stay under it.
    pub max_tx_fee: u128,
}

/// Health of the L1 side, for `/status` and `/metrics`.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct L1Health {
    /// The last L1 head seen.
    pub l1_head: u64,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Root submissions the node took (then mined, reverted or pending; fee bumps included). A
    /// send the node refused is not counted: nothing went out.
    pub submissions_sent: u64,
    /// Why block production stopped, if it did (LEDGER-7).
    pub halt: Option<Halt>,
    /// Each configured L1 endpoint's health (`plasma_contracts::l1`), read when shown: URLs
    /// redacted, healthy, head, latency, last error, last answer.
    pub endpoints: plasma_contracts::l1::L1Health,
    /// The root submitter's sender figures (issue 20, `/metrics`): transactions sent, fee bumps,
    /// outcomes and the last nonce. Not in `/status` (its schema is fixed).
    #[serde(skip)]
    pub submitter: Arc<plasma_contracts::sender::SendStats>,
    /// The deposit follower's figures (issue 20, `/metrics`). Not in `/status`.
    #[serde(skip)]
    pub deposits: DepositFigures,
}

/// What the deposit follower saw at its last scan (issue 20: the operator's deposits lag).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DepositFigures {
    /// L1's head at the last scan (0: none yet).
    pub head: u64,
    /// The L1 block of the newest deposit credited since this process started.
    pub newest_credited_l1_block: Option<u64>,
    /// Deposits L1 shows above the credit cursor, waiting for their confirmations, as last
    /// counted (`None`: not counted yet, or the follower is still catching up).
    pub uncredited: Option<u64>,
}

/// The L1 head a step reads everything at, so that its reads agree with each other.
#[derive(Clone, Copy, Debug)]
struct Head {
    number: u64,
    hash: B256,
}

async fn head(provider: &DynProvider) -> Result<Head, L1Error> {
    let block = provider
        .get_block(BlockId::latest())
        .await
        .map_err(rpc)?
        .ok_or_else(|| L1Error::Rpc("no latest block".into()))?;
    Ok(Head { number: block.header.number, hash: block.header.hash })
}

/// Whether a log mined at `mined_at` is at least `depth` deep under `head`.
const fn deep(head: u64, mined_at: u64, depth: u64) -> bool {
    head.saturating_sub(mined_at) + 1 >= depth
}

/// An L1 record the operator acted on, followed until final.
#[derive(Clone, Copy, Debug)]
struct Followed {
    /// The L1 block it was last seen in.
    l1_block: u64,
    /// Child blocks: the root; deposits: keccak256 of the deposit transaction.
    content: B256,
    /// The L1 timestamp the operator serves for it.
    timestamp: u64,
    /// Deposits: the L1 transaction that made it, when known (not kept across restarts): its
    /// receipt is the last check before a halt is stored.
    tx: Option<B256>,
}

/// Gas limit of a root submission's first block (explicit: see `plasma_contracts::sender`).
const SUBMIT_GAS: u64 = 120_000;
/// Gas limit added per further block of a run (`submitBlocks` spends ~25,300 a further block: a
/// fresh commitment word, its event, its calldata and the loop).
const SUBMIT_GAS_PER_BLOCK: u64 = 30_000;
/// Most blocks one submission carries: a backlog (after an L1 outage, or blocks produced faster
/// than L1 mines) is committed in runs of up to this many, ~1.6M gas each (a limit of ~2M).
const MAX_RUN: usize = 64;
/// Most L1 blocks one `eth_getLogs` spans where the range is not bounded otherwise (the deposit
/// follower's catch-up, the search for a run that landed unseen): hosted providers refuse ranges
/// over a few thousand blocks.
const LOG_RANGE: u64 = 2_000;

/// The submitter's memory between steps (fee levels live in the shared sender, by block).
#[derive(Debug, Default)]
struct Submitter {
    /// The first block of the run the attempts below are for.
    sending: u64,
    /// Every transaction sent for `sending` (the first and its fee bumps).
    sent: Vec<B256>,
    /// The last block any of those attempts carried (their runs may differ in length).
    sent_through: u64,
    /// Most blocks the next attempt for `sending` may carry (0: [`MAX_RUN`]): halved at each
    /// refusal that a higher price would not cure (a fee cap, a size limit, short funds). Reset
    /// with the rest once `sending` moves on, i.e. once blocks got committed.
    run_cap: usize,
    /// Recorded commitments not yet final, by block.
    recent: BTreeMap<u64, Followed>,
    /// Whether `recent` was rebuilt from the store after a start.
    seeded: bool,
    /// The head `recent` was last checked at.
    checked_at: Option<B256>,
}

/// Commits produced blocks' roots in order, exactly once each, and follows each commitment until
/// final (OP-4).
pub(crate) async fn run_submitter(
    chain: Arc<Chain>,
    provider: DynProvider,
    settings: L1Settings,
    health: Arc<parking_lot::Mutex<L1Health>>,
    da: Option<Arc<Distributor>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let framework = PlasmaFramework::new(settings.framework, provider.clone());
    let sender = Sender::new(
        provider.clone(),
        settings.operator,
        SendPolicy { stuck_after: settings.stuck_after, ..SendPolicy::default() },
    );
    // `/metrics` reads the sender's counters through the health handle (issue 20).
    health.lock().submitter = sender.stats().clone();
    let mut state = Submitter::default();
    // A produced block is sent at once, not at the next poll (up to `poll_interval_ms` later).
    let mut produced = chain.subscribe_produced();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let da = da.as_deref();
        let step = async {
            follow_commitments(&chain, &provider, &framework, &settings, da, &mut state).await?;
            if let Some(halt) = chain.halted() {
                // Blocks built before the halt may spend the vanished deposit: commit none.
                health.lock().halt = Some(halt);
                return Ok(false);
            }
            let l1 = L1 { provider: &provider, framework: &framework, sender: &sender };
            submit_step(&chain, &l1, &settings, da, &mut state, &health).await
        };
        let step = tokio::select! {
            step = step => step,
            () = stopped(&mut shutdown) => return,
        };
        if step.is_ok() {
            health.lock().last_error = None;
        }
        match step {
            Ok(true) => continue, // progress: look again at once
            Ok(false) => {}
            Err(L1Error::RootMismatch { blknum, on_l1, ours }) => {
                error!(target: "operator::l1", blknum, %on_l1, %ours, "L1 disagrees with our block; submitter stopped");
                health.lock().last_error = Some(format!("root mismatch at block {blknum}"));
                return;
            }
            Err(e) => {
                warn!(target: "operator::l1", error = %e, "root submission step failed; retrying");
                health.lock().last_error = Some(e.to_string());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.poll) => {}
            _ = shutdown.changed() => {}
            // A block reached its tower quorum (DA-7): commit it without waiting for the poll.
            () = quorum_reached(da) => {}
            () = block_produced(&mut produced) => {}
        }
    }
}

/// Returns when a block was produced since the last return (at once if one already was), and
/// never once the chain is gone (the poll and the shutdown still end the wait).
async fn block_produced(produced: &mut watch::Receiver<u64>) {
    if produced.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn quorum_reached(da: Option<&Distributor>) {
    match da {
        Some(da) => da.quorum_reached().await,
        None => std::future::pending().await,
    }
}

/// What the submitter talks to on L1.
#[derive(Clone, Copy)]
struct L1<'a> {
    provider: &'a DynProvider,
    framework: &'a PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    sender: &'a Sender,
}

/// Checks recorded commitments again at each new L1 head until they are final: one that moved to
/// another L1 block gets its new timestamp stored (exit data must match L1, MERKLE-6); one that
/// was dropped goes back to the submitter (OP-4).
async fn follow_commitments(
    chain: &Arc<Chain>,
    provider: &DynProvider,
    framework: &PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    settings: &L1Settings,
    da: Option<&Distributor>,
    s: &mut Submitter,
) -> Result<(), L1Error> {
    let head = head(provider).await?;
    if !s.seeded {
        let final_through =
            seed_commitments(chain, provider, head, settings.finality_depth, s).await?;
        if let (Some(da), Some(b)) = (da, final_through) {
            da.final_through(b);
        }
        s.seeded = true;
    }
    if s.recent.is_empty() || s.checked_at == Some(head.hash) {
        return Ok(());
    }
    let lowest = s.recent.values().map(|f| f.l1_block).min().unwrap_or(head.number);
    let from = lowest.saturating_sub(settings.finality_depth);
    let logs = framework
        .BlockSubmitted_filter()
        .from_block(from)
        .to_block(head.number)
        .query()
        .await
        .map_err(rpc)?;
    let mut on_l1: BTreeMap<u64, (PlasmaFramework::BlockSubmitted, u64, Option<B256>)> =
        BTreeMap::new();
    for (event, log) in logs {
        if let Ok(blknum) = u64::try_from(event.blknum) {
            let at = log.block_number.unwrap_or(head.number);
            on_l1.insert(blknum, (event, at, log.transaction_hash));
        }
    }
    let tracked: Vec<(u64, Followed)> = s.recent.iter().map(|(b, f)| (*b, *f)).collect();
    let mut complete = true;
    for (blknum, followed) in tracked {
        let Some((event, at, tx)) = on_l1.get(&blknum) else {
            if head.number < followed.l1_block {
                // spec: LEDGER-7 (audit18 F1) — a view whose head is below the L1 block the
                // commitment was seen in (a fallback endpoint a few blocks behind answered the
                // head) cannot show it, whether or not it was dropped: not evidence. L1 grows, so
                // the next view past that block decides; checked again then.
                debug!(target: "operator::l1", blknum, l1_block = followed.l1_block, head = head.number, "commitment past this view's head; checked again later");
                complete = false;
                continue;
            }
            // Dropped: this block and every later one are uncommitted again; resend in order.
            off_workers(chain, move |c| Ok(c.reopen_commitment(blknum)?)).await?;
            s.recent.remove(&blknum);
            continue;
        };
        if event.root != followed.content {
            return Err(L1Error::RootMismatch {
                blknum,
                on_l1: event.root,
                ours: followed.content,
            });
        }
        if event.timestamp != followed.timestamp {
            let (timestamp, tx) = (event.timestamp, *tx);
            off_workers(chain, move |c| Ok(c.move_commitment(blknum, timestamp, tx)?)).await?;
        }
        if deep(head.number, *at, settings.finality_depth) {
            debug!(target: "operator::l1", blknum, l1_block = at, "commitment final");
            s.recent.remove(&blknum);
            if let Some(da) = da
                && s.recent.range(..blknum).next().is_none()
            {
                // Every commitment up to it is final: its chunks are no longer pushed.
                da.final_through(blknum);
            }
        } else {
            s.recent.insert(
                blknum,
                Followed {
                    l1_block: *at,
                    content: event.root,
                    timestamp: event.timestamp,
                    tx: None,
                },
            );
        }
    }
    if complete {
        s.checked_at = Some(head.hash);
    }
    Ok(())
}

/// After a start: the recorded commitments that may not be final yet, newest first until one is
/// (found through its L1 transaction's receipt). Returns that final one, if found.
async fn seed_commitments(
    chain: &Arc<Chain>,
    provider: &DynProvider,
    head: Head,
    finality_depth: u64,
    s: &mut Submitter,
) -> Result<Option<u64>, L1Error> {
    let mut blknum = chain.status().next_child_block;
    while blknum > plasma_spec::CHILD_BLOCK_INTERVAL {
        blknum -= plasma_spec::CHILD_BLOCK_INTERVAL;
        let Some(record) = off_workers(chain, move |c| Ok(c.block_info(blknum)?)).await? else {
            break;
        };
        let Some(timestamp) = record.l1_timestamp else { continue };
        let mined_at = match record.l1_tx {
            Some(tx) => provider
                .get_transaction_receipt(tx)
                .await
                .map_err(rpc)?
                .and_then(|r| r.block_number),
            None => None,
        };
        if mined_at.is_some_and(|at| deep(head.number, at, finality_depth)) {
            return Ok(Some(blknum)); // final, and so is everything before it
        }
        // Unknown (dropped, or not found): checked from the head back.
        let l1_block = mined_at.unwrap_or(head.number);
        s.recent.insert(blknum, Followed { l1_block, content: record.root, timestamp, tx: None });
    }
    Ok(None)
}

/// One step: returns whether to step again at once (blocks got committed, or a submission was
/// just mined and the next step can record it).
///
/// The blocks produced and not yet committed go in one transaction, up to [`MAX_RUN`]: one
/// `submitBlock` for a lone block, `submitBlocks` for a run (OP-4). A run starts at the oldest
/// uncommitted block, which is what the framework's `nextChildBlock` check and the fee-bump logic
/// are keyed on, so a bump may carry a longer run than the attempt it replaces; whichever of them
/// lands, the blocks it carried are recorded and the rest go in the next run.
async fn submit_step(
    chain: &Arc<Chain>,
    l1: &L1<'_>,
    settings: &L1Settings,
    da: Option<&Distributor>,
    s: &mut Submitter,
    health: &parking_lot::Mutex<L1Health>,
) -> Result<bool, L1Error> {
    let L1 { provider, framework, sender } = *l1;
    let front = contiguous(chain.uncommitted_front(MAX_RUN));
    let Some(&blknum) = front.first() else { return Ok(false) };
    if s.sending != blknum {
        *s = Submitter {
            sending: blknum,
            recent: std::mem::take(&mut s.recent),
            seeded: s.seeded,
            checked_at: s.checked_at,
            ..Submitter::default()
        };
    }
    // The earlier attempts first: once one of them landed, nothing else is ever sent for it.
    let mut landed = false;
    // Where a landed attempt was mined: its events are searched from there, not from L1's genesis
    // (a range providers refuse on a long chain). Should a reorg have moved it lower, the search
    // misses, the step fails and the next one reads the receipt again. With no landed attempt
    // known (a crash between sending and recording, a send whose answer was lost) they are
    // searched from the head back to the deployment block, a range at a time.
    let mut search_from = settings.deployment_block;
    for tx in &s.sent {
        if let Some(receipt) = provider.get_transaction_receipt(*tx).await.map_err(rpc)?
            && receipt.status()
        {
            landed = true;
            search_from = receipt.block_number.unwrap_or(settings.deployment_block);
        }
    }
    // Pinned reads: nextChildBlock and the nonce at one L1 block, so that a submission mined
    // between the two reads cannot make them disagree (issue 12 item 6).
    let head = head(provider).await?;
    health.lock().l1_head = head.number;
    let at = BlockId::hash(head.hash);
    let on_l1 = framework.nextChildBlock().block(at).call().await.map_err(rpc)?;
    if on_l1 > blknum {
        // Committed (by us, maybe before a restart), the run's first block and maybe more.
        let done: Vec<u64> = front.iter().copied().filter(|b| *b < on_l1).collect();
        return record_committed(chain, l1, settings, da, s, &done, search_from, head).await;
    }
    if landed {
        // A receipt newer than the head we read: the next step sees it on L1.
        return Ok(false);
    }
    if on_l1 < blknum {
        return Err(L1Error::Rpc(format!("L1 expects block {on_l1} before our block {blknum}")));
    }
    // spec: DA-7 — a block's first send waits for k tower receipts, or the wait (liveness). A
    // block an earlier attempt carried was cleared then: a bump carries it again.
    let run: Vec<u64> = front
        .iter()
        .copied()
        .take_while(|b| *b <= s.sent_through || da.is_none_or(|da| da.may_commit(*b)))
        .collect();
    if run.is_empty() {
        return Ok(false);
    }
    // spec: OP-4 — a run's gas limit must stay payable and under the fee nodes take: a node
    // refuses a transaction whose limit times its price exceeds the balance, or its fee cap
    // (geth's and reth's `--rpc.txfeecap`, 1 ether by default), and a run refused for that would
    // stall every commitment where a lone block would still go through. The run is cut to what
    // the balance pays for at this attempt's price with a quarter to spare, to what keeps its
    // fee under `max_tx_fee`, and to what the node last refused halved (the sender reads the
    // price again).
    let key = format!("submit:{blknum}");
    let balance = provider.get_balance(settings.operator).block_id(at).await.map_err(rpc)?;
    let base = provider.get_gas_price().await.map_err(rpc)?;
    let price = sender.policy().price(base, sender.attempts_of(&key));
    let cap = if s.run_cap == 0 { MAX_RUN } else { s.run_cap };
    let mut run = run;
    run.truncate(affordable(balance, price).min(fee_capped(price, settings.max_tx_fee)).min(cap));
    let Some(&last) = run.last() else { return Ok(false) };
    let infos = stored_infos(chain, &run).await?;
    let mut roots = Vec::with_capacity(infos.len());
    for (b, info) in run.iter().zip(infos) {
        let Some(info) = info else {
            return Err(L1Error::Rpc(format!("produced block {b} is not in the store")));
        };
        roots.push(info.root);
    }
    // on_l1 == blknum at `head`: no attempt had landed by then, and the nonce at `head` is the one
    // any attempt still pending holds, so this send replaces it (at most one can be mined); and
    // should an attempt land after all, the framework refuses the twin (it names `blknum`).
    let nonce =
        provider.get_transaction_count(settings.operator).block_id(at).await.map_err(rpc)?;
    let gas = run_gas(roots.len());
    let outcome = if let [root] = roots[..] {
        let call = framework.submitBlock(U256::from(blknum), root);
        sender.send_at(&key, call, U256::ZERO, gas, nonce).await
    } else {
        let call = framework.submitBlocks(U256::from(blknum), roots);
        sender.send_at(&key, call, U256::ZERO, gas, nonce).await
    }
    .map_err(rpc)?;
    s.sent_through = s.sent_through.max(last);
    let blocks = run.len();
    // Counted once the node took the transaction (docs/operations.md: at most one per block,
    // plus bumps), never for a refusal: nothing went out then.
    if !matches!(outcome, Outcome::Refused { .. }) {
        health.lock().submissions_sent += 1;
    }
    match outcome {
        Outcome::Mined(receipt) => {
            s.sent.push(receipt.transaction_hash);
            info!(target: "operator::l1", blknum, last, blocks, nonce, tx = %receipt.transaction_hash, "roots submitted");
            // The next step finds them on L1 and records them once they have their
            // confirmations: at once when one is enough, instead of a poll later.
            Ok(true)
        }
        Outcome::Reverted { hash, .. } => {
            Err(L1Error::Rpc(format!("root submission reverted in {hash}")))
        }
        Outcome::Pending { hash } => {
            s.sent.push(hash);
            let attempt = sender.attempts_of(&key);
            warn!(target: "operator::l1", blknum, last, blocks, attempt, max_bumps = SendPolicy::MAX_BUMPS, "submission stuck; bumping its fee");
            Ok(false)
        }
        Outcome::Refused { reason } => {
            if taken_by_ours(&reason) {
                // Our own earlier attempt is pending at this nonce (sent before a restart, or
                // already at the price tried): only a higher price replaces it. Bumps are capped
                // (`SendPolicy::MAX_BUMPS`): at the cap the pending attempt is left to be mined.
                sender.bump(&key);
                debug!(target: "operator::l1", blknum, %reason, "submission not accepted: our pending attempt holds the nonce; the next pays more");
            } else if nonce_used(&reason) {
                // A transaction of ours was mined at this nonce since it was read (an attempt
                // that landed): the next step reads L1 again and finds it. Neither a price nor
                // a shorter run would help.
                debug!(target: "operator::l1", blknum, %reason, "submission not accepted: nonce used; will re-check L1");
            } else {
                // Not a price problem (the node's fee cap, a size limit, short funds): a higher
                // price would be refused the same way, for ever. A shorter run costs less and
                // is smaller; halved at each such refusal down to a lone block, which is what
                // the chain needs to move on.
                let cap = (blocks / 2).max(1);
                s.run_cap = cap;
                if blocks > 1 {
                    warn!(target: "operator::l1", blknum, blocks, next = cap, %reason, "run refused by the node; sending a shorter one");
                } else {
                    debug!(target: "operator::l1", blknum, %reason, "submission refused by the node; will retry");
                }
            }
            Ok(false)
        }
    }
}

/// The gas limit of a submission carrying `blocks` blocks (at least one).
fn run_gas(blocks: usize) -> u64 {
    SUBMIT_GAS + SUBMIT_GAS_PER_BLOCK * (blocks.max(1) as u64 - 1)
}

/// How many blocks a submission may carry when its fee, gas limit times `price`, must stay at or
/// under `max_fee`: at least one (a lone block is always tried: the node decides), at most
/// [`MAX_RUN`].
fn fee_capped(price: u128, max_fee: u128) -> usize {
    let price = price.max(1);
    (2..=MAX_RUN)
        .take_while(|&k| u128::from(run_gas(k)).saturating_mul(price) <= max_fee)
        .last()
        .unwrap_or(1)
}

/// How many blocks a submission may carry when `balance` must cover its gas limit at `price`
/// plus a quarter: at least one (a lone block is always tried, as before runs), at most
/// [`MAX_RUN`].
fn affordable(balance: U256, price: u128) -> usize {
    let price = U256::from(price.max(1));
    (2..=MAX_RUN)
        .take_while(|&k| U256::from(run_gas(k)) * price * U256::from(5) / U256::from(4) <= balance)
        .last()
        .unwrap_or(1)
}

/// The stored records of `blocks`, in order (`None` for one not stored), in one call off the
/// async workers.
async fn stored_infos(
    chain: &Arc<Chain>,
    blocks: &[u64],
) -> Result<Vec<Option<crate::blocks::BlockInfo>>, L1Error> {
    let wanted = blocks.to_vec();
    off_workers(chain, move |c| {
        wanted.iter().map(|b| c.block_info(*b)).collect::<Result<Vec<_>, _>>().map_err(Into::into)
    })
    .await
}

/// The leading blocks of `front` that follow each other by the interval (a reorg may reopen an
/// older block behind later ones: it goes first, alone if need be).
fn contiguous(mut front: Vec<u64>) -> Vec<u64> {
    let keep = front
        .windows(2)
        .position(|w| w[1] != w[0] + plasma_spec::CHILD_BLOCK_INTERVAL)
        .map_or(front.len(), |i| i + 1);
    front.truncate(keep);
    front
}

/// A block's `BlockSubmitted` as found: the event, the L1 block it was mined in, its transaction.
type Submitted = (PlasmaFramework::BlockSubmitted, u64, B256);

/// The `BlockSubmitted` events of `done` (committed blocks, oldest first) on L1 up to `head`.
///
/// spec: OP-4 — searched from the head back, one range of at most [`LOG_RANGE`] blocks at a
/// time, down to `search_from` (a landed attempt's L1 block, else the deployment block) and no
/// further once the first of `done` is found. Why: what was just committed lies near the head,
/// so one range is the usual cost; and when no landed attempt is known (a crash between sending
/// and recording, an HA takeover, a send whose answer was lost) the search may have to reach
/// back to the deployment, which one `eth_getLogs` cannot span on a hosted provider (they refuse
/// ranges over a few thousand blocks): the step would fail at every poll and nothing would be
/// recorded or committed again. Blocks are committed in order, so the later ones of `done` were
/// mined no earlier than the first: once it is found, the ranges read hold the rest (or they
/// are not visible yet, and the next step looks again).
async fn find_submitted(
    l1: &L1<'_>,
    done: &[u64],
    search_from: u64,
    head: Head,
) -> Result<BTreeMap<u64, Submitted>, L1Error> {
    let topics: Vec<B256> = done.iter().map(|b| B256::from(U256::from(*b))).collect();
    let floor = search_from.min(head.number);
    let mut found: BTreeMap<u64, Submitted> = BTreeMap::new();
    let mut to = head.number;
    loop {
        let from = to.saturating_sub(LOG_RANGE - 1).max(floor);
        let logs = l1
            .framework
            .BlockSubmitted_filter()
            .topic1(topics.clone())
            .from_block(from)
            .to_block(BlockNumberOrTag::Number(to))
            .query()
            .await
            .map_err(rpc)?;
        // Within a range the newest log of a block wins, and a newer range's over an older's
        // (one chain holds one of each; two are only a view mixing endpoints).
        let mut range: BTreeMap<u64, Submitted> = BTreeMap::new();
        for (event, log) in logs {
            if let Ok(b) = u64::try_from(event.blknum) {
                let mined_at = log.block_number.unwrap_or(to);
                range.insert(b, (event, mined_at, log.transaction_hash.unwrap_or_default()));
            }
        }
        for (b, submitted) in range {
            found.entry(b).or_insert(submitted);
        }
        let first_found = done.first().is_none_or(|b| found.contains_key(b));
        if from <= floor || first_found {
            return Ok(found);
        }
        to = from - 1;
    }
}

/// Records `done` (blocks L1 has committed, oldest first) once their commitments have
/// `commit_confirmations`: finds each one's `BlockSubmitted` (searched from the head back to
/// `search_from`, [`find_submitted`]), checks the root against ours, and stores them all in one
/// write.
#[allow(clippy::too_many_arguments)]
async fn record_committed(
    chain: &Arc<Chain>,
    l1: &L1<'_>,
    settings: &L1Settings,
    da: Option<&Distributor>,
    s: &mut Submitter,
    done: &[u64],
    search_from: u64,
    head: Head,
) -> Result<bool, L1Error> {
    let found = find_submitted(l1, done, search_from, head).await?;
    let infos = stored_infos(chain, done).await?;
    let mut run = Vec::with_capacity(done.len());
    let mut follow = Vec::with_capacity(done.len());
    for (&blknum, info) in done.iter().zip(infos) {
        let Some((event, mined_at, tx)) = found.get(&blknum) else {
            if run.is_empty() {
                return Err(L1Error::Rpc(format!(
                    "no BlockSubmitted event for committed block {blknum}"
                )));
            }
            break; // the first ones are recorded; the next step searches again for the rest
        };
        let Some(info) = info else {
            return Err(L1Error::Rpc(format!("produced block {blknum} is not in the store")));
        };
        if event.root != info.root {
            return Err(L1Error::RootMismatch { blknum, on_l1: event.root, ours: info.root });
        }
        if !deep(head.number, *mined_at, settings.commit_confirmations) {
            break; // later blocks were mined no earlier: not deep enough either
        }
        run.push((blknum, event.timestamp, *tx));
        follow.push((
            blknum,
            Followed {
                l1_block: *mined_at,
                content: info.root,
                timestamp: event.timestamp,
                tx: None,
            },
        ));
    }
    if run.is_empty() {
        return Ok(false);
    }
    let recorded = run.clone();
    off_workers(chain, move |c| Ok(c.mark_committed_run(&recorded)?)).await?;
    for (blknum, followed) in follow {
        if let Some(da) = da {
            da.committed(blknum);
        }
        s.recent.insert(blknum, followed);
    }
    s.checked_at = None;
    Ok(true)
}

/// The deposit follower's memory between steps.
#[derive(Debug, Default)]
struct Deposits {
    /// Credited deposits not yet final, by deposit block.
    recent: BTreeMap<u64, Followed>,
    /// Whether `recent` was rebuilt from the store after a start.
    seeded: bool,
    /// The head `recent` was last checked at.
    checked_at: Option<B256>,
    /// The highest deposit block credited or known final.
    highest: u64,
    /// What the store says is final.
    final_through: u64,
    /// A halt one read showed and no later read has confirmed yet (see [`confirm_halt`]).
    suspect: Option<Halt>,
    /// For `/metrics` (issue 20).
    figures: DepositFigures,
    /// The head whose uncredited deposits `figures.uncredited` counted.
    counted_at: Option<B256>,
}

/// Credits deposits once they are `deposit_confirmations` deep (OP-5), and checks each credited
/// deposit again until final: one that vanished or changed halts block production (LEDGER-7).
pub(crate) async fn run_deposit_follower(
    chain: Arc<Chain>,
    provider: DynProvider,
    settings: L1Settings,
    health: Arc<parking_lot::Mutex<L1Health>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let framework = PlasmaFramework::new(settings.framework, provider.clone());
    let mut state = Deposits::default();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Some(halt) = chain.halted() {
            // Nothing more is credited: the chain stops where it went wrong.
            let mut h = health.lock();
            h.last_error = Some(halt.to_string());
            h.halt = Some(halt);
        } else {
            let step = tokio::select! {
                step = deposit_step(&chain, &provider, &framework, &settings, &mut state) => step,
                () = stopped(&mut shutdown) => return,
            };
            health.lock().deposits = state.figures;
            if step.is_ok() && state.suspect.take().is_some() {
                info!(target: "operator::deposits", "the deposit discrepancy one read showed is gone: no halt");
            }
            match step {
                Ok(true) => continue,
                Ok(false) => {}
                Err(L1Error::Halted(halt)) => {
                    match confirm_halt(&provider, &framework, &mut state, halt).await {
                        Ok(Some(halt)) => {
                            error!(target: "operator::deposits", code = halt.code(), %halt, "a credited deposit is not on L1 as credited: block production HALTED (LEDGER-7)");
                            let stored = halt.clone();
                            let halted = tokio::select! {
                                r = off_workers(&chain, move |c| Ok(c.halt(stored)?)) => r,
                                () = stopped(&mut shutdown) => return,
                            };
                            if let Err(e) = halted {
                                error!(target: "operator::deposits", error = %e, "could not store the halt");
                            }
                            let mut h = health.lock();
                            h.last_error = Some(halt.to_string());
                            h.halt = Some(halt);
                        }
                        Ok(None) => {
                            health.lock().last_error = state
                                .suspect
                                .as_ref()
                                .map(|h| format!("unconfirmed, read again at the next poll: {h}"));
                        }
                        Err(e) => {
                            warn!(target: "operator::deposits", error = %e, "confirming a deposit discrepancy failed; retrying");
                            health.lock().last_error = Some(e.to_string());
                        }
                    }
                }
                Err(e) => {
                    warn!(target: "operator::deposits", error = %e, "deposit scan failed; retrying");
                    health.lock().last_error = Some(e.to_string());
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn deposit_step(
    chain: &Arc<Chain>,
    provider: &DynProvider,
    framework: &PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    settings: &L1Settings,
    s: &mut Deposits,
) -> Result<bool, L1Error> {
    let head = head(provider).await?;
    s.figures.head = head.number;
    if !s.seeded {
        let (final_through, records) = off_workers(chain, |c| {
            let final_through = c.deposits_final_through()?;
            Ok((final_through, c.deposit_blocks_after(final_through)?))
        })
        .await?;
        s.final_through = final_through;
        s.highest = s.final_through;
        for record in records {
            let content = record.txs.first().map(keccak256).unwrap_or_default();
            let timestamp = record.l1_timestamp.unwrap_or_default();
            // Its L1 block is not kept: at most the cursor, and the scan below finds it.
            let l1_block = chain.deposit_cursor();
            s.recent.insert(record.blknum, Followed { l1_block, content, timestamp, tx: None });
            s.highest = s.highest.max(record.blknum);
        }
        s.seeded = true;
    }
    follow_deposits(chain, framework, settings, head, s).await?;

    // A deposit mined in block b has head - b + 1 confirmations.
    let Some(safe) = (head.number + 1).checked_sub(settings.deposit_confirmations.max(1)) else {
        return Ok(false);
    };
    let from = (chain.deposit_cursor() + 1).max(settings.deployment_block);
    if from > safe {
        count_uncredited(framework, head, safe, s).await;
        return Ok(false);
    }
    let to = safe.min(from + (LOG_RANGE - 1));
    let logs = framework
        .DepositCreated_filter()
        .from_block(from)
        .to_block(to)
        .query()
        .await
        .map_err(rpc)?;
    for (event, log) in logs {
        let blknum: u64 = event
            .blknum
            .try_into()
            .map_err(|_| L1Error::Rpc("deposit block number overflows".into()))?;
        let content = keccak256(&event.depositTx);
        let (deposit_tx, timestamp) = (event.depositTx.clone(), event.timestamp);
        off_workers(chain, move |c| {
            if !c.credit_deposit(blknum, &deposit_tx, timestamp)? {
                // Already credited (skipped by number before): it must be the same deposit.
                check_credited(c, blknum, content)?;
            }
            Ok(())
        })
        .await?;
        let l1_block = log.block_number.unwrap_or(to);
        let tx = log.transaction_hash;
        s.recent.insert(blknum, Followed { l1_block, content, timestamp: event.timestamp, tx });
        s.highest = s.highest.max(blknum);
        s.figures.newest_credited_l1_block =
            Some(s.figures.newest_credited_l1_block.unwrap_or(0).max(l1_block));
    }
    off_workers(chain, move |c| Ok(c.set_deposit_cursor(to)?)).await?;
    if to < safe {
        // Still catching up: what waits above the cursor is not a few blocks' worth.
        s.figures.uncredited = None;
        s.counted_at = None;
    } else {
        count_uncredited(framework, head, safe, s).await;
    }
    Ok(to < safe)
}

/// Counts the deposits L1 shows above `safe` (mined, not yet `deposit_confirmations` deep) for
/// `/metrics`, once per head. Only a figure: a failed read leaves the last count and never
/// fails the step (crediting must not wait on a gauge).
async fn count_uncredited(
    framework: &PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    head: Head,
    safe: u64,
    s: &mut Deposits,
) {
    if safe >= head.number {
        s.figures.uncredited = Some(0);
        return;
    }
    if s.counted_at == Some(head.hash) {
        return;
    }
    match framework.DepositCreated_filter().from_block(safe + 1).to_block(head.number).query().await
    {
        Ok(logs) => {
            s.figures.uncredited = Some(logs.len() as u64);
            s.counted_at = Some(head.hash);
        }
        Err(e) => {
            debug!(target: "operator::deposits", error = %e, "counting uncredited deposits failed");
        }
    }
}

/// Whether a halt one step found is stored (LEDGER-7). A stored halt stops the chain for good, so
/// one read is never enough (audit18 F1): with several L1 endpoints, one read may come from a node
/// that lags or disagrees, and a single short answer must not end the chain.
///
/// Safety argument. A halt is stored only when
/// 1. two reads on two successive polls (each a fresh head and fresh logs, each from an endpoint
///    whose head is at or past the deposit's L1 block: [`follow_deposits`] skips a deposit above
///    its view's head, and `plasma_contracts::l1` asks `eth_getLogs` up to block N only of an
///    endpoint whose head is at least N) show the same discrepancy, and
/// 2. when the credited deposit's transaction is known, its receipt (asked of any endpoint) does
///    not show that very deposit (same deposit block, same deposit transaction) — a node that
///    still has it mined proves it did not vanish, whatever another node's logs said.
///
/// A real reorganisation that dropped or swapped a deposit passes both (every node on the new
/// chain agrees, and the old transaction's receipt is gone or shows another deposit block), one
/// poll later than before: blocks built in that poll are stopped from committing by the halt
/// just the same. A lagging or inconsistent endpoint fails 1 or 2 and the operator retries.
/// spec: OP-5 ("a halt is evidence, never one read").
async fn confirm_halt(
    provider: &DynProvider,
    framework: &PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    s: &mut Deposits,
    halt: Halt,
) -> Result<Option<Halt>, L1Error> {
    if s.suspect.as_ref() != Some(&halt) {
        warn!(target: "operator::deposits", code = halt.code(), %halt, "one read shows a credited deposit not as credited; confirming at the next poll before halting");
        s.suspect = Some(halt);
        return Ok(None);
    }
    let (blknum, credited) = match &halt {
        Halt::DepositVanished { blknum, credited }
        | Halt::DepositChanged { blknum, credited, .. } => (*blknum, *credited),
    };
    if let Some(tx) = s.recent.get(&blknum).and_then(|f| f.tx)
        && let Some(receipt) = provider.get_transaction_receipt(tx).await.map_err(rpc)?
    {
        let still_there = receipt.status()
            && receipt.inner.logs().iter().any(|log| {
                log.address() == *framework.address()
                    && log.log_decode::<PlasmaFramework::DepositCreated>().is_ok_and(|d| {
                        d.inner.data.blknum == U256::from(blknum)
                            && keccak256(&d.inner.data.depositTx) == credited
                    })
            });
        if still_there {
            s.suspect = None;
            return Err(L1Error::Rpc(format!(
                "L1 endpoints disagree about deposit block {blknum}: its transaction {tx} is \
                 still mined with it ({halt}); not halting, reading again"
            )));
        }
    }
    s.suspect = None;
    Ok(Some(halt))
}

/// A deposit block L1 shows with `content` that the operator already credited: the same
/// deposit, or a halt (LEDGER-7).
fn check_credited(chain: &Chain, blknum: u64, content: B256) -> Result<(), L1Error> {
    let credited =
        chain.block(blknum)?.and_then(|r| r.txs.first().map(keccak256)).unwrap_or_default();
    if credited != content {
        return Err(Halt::DepositChanged { blknum, credited, on_l1: content }.into());
    }
    Ok(())
}

/// Checks credited deposits again at each new L1 head until final (LEDGER-7): gone or different
/// halts; the same deposit in another L1 block gets that block's timestamp (it is part of the
/// deposit block's commitment, MERKLE-6).
async fn follow_deposits(
    chain: &Arc<Chain>,
    framework: &PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    settings: &L1Settings,
    head: Head,
    s: &mut Deposits,
) -> Result<(), L1Error> {
    if s.recent.is_empty() || s.checked_at == Some(head.hash) {
        return Ok(());
    }
    let lowest = s.recent.values().map(|f| f.l1_block).min().unwrap_or(head.number);
    let from = lowest.saturating_sub(settings.finality_depth);
    let logs = framework
        .DepositCreated_filter()
        .from_block(from)
        .to_block(head.number)
        .query()
        .await
        .map_err(rpc)?;
    let mut on_l1: BTreeMap<u64, (B256, u64, u64, Option<B256>)> = BTreeMap::new();
    for (event, log) in logs {
        if let Ok(blknum) = u64::try_from(event.blknum) {
            let at = log.block_number.unwrap_or(head.number);
            let content = keccak256(&event.depositTx);
            on_l1.insert(blknum, (content, at, event.timestamp, log.transaction_hash));
        }
    }
    let cursor = chain.deposit_cursor();
    // Deposits credited earlier that are not followed any more (or not yet): same check.
    let unfollowed: Vec<(u64, B256)> = on_l1
        .iter()
        .filter(|(blknum, (_, at, ..))| !s.recent.contains_key(blknum) && *at <= cursor)
        .map(|(blknum, (content, ..))| (*blknum, *content))
        .collect();
    if !unfollowed.is_empty() {
        off_workers(chain, move |c| {
            for (blknum, content) in unfollowed {
                if c.block_info(blknum)?.is_some() {
                    check_credited(c, blknum, content)?;
                }
            }
            Ok(())
        })
        .await?;
    }
    let tracked: Vec<(u64, Followed)> = s.recent.iter().map(|(b, f)| (*b, *f)).collect();
    let mut complete = true;
    for (blknum, followed) in tracked {
        let Some((content, at, timestamp, tx)) = on_l1.get(&blknum).copied() else {
            if head.number < followed.l1_block {
                // spec: LEDGER-7 (audit18 F1) — this view's head is below the L1 block the
                // deposit was read in (the head came from a fallback a few blocks behind, whose
                // logs are complete only up to its head): it cannot show the deposit, vanished
                // or not. Not evidence; L1 grows and a view past that block decides.
                debug!(target: "operator::deposits", blknum, l1_block = followed.l1_block, head = head.number, "credited deposit past this view's head; checked again later");
                complete = false;
                continue;
            }
            return Err(Halt::DepositVanished { blknum, credited: followed.content }.into());
        };
        if content != followed.content {
            return Err(Halt::DepositChanged {
                blknum,
                credited: followed.content,
                on_l1: content,
            }
            .into());
        }
        if timestamp != followed.timestamp {
            off_workers(chain, move |c| Ok(c.move_commitment(blknum, timestamp, None)?)).await?;
        }
        if deep(head.number, at, settings.finality_depth) {
            s.recent.remove(&blknum);
        } else {
            let tx = tx.or(followed.tx);
            s.recent.insert(blknum, Followed { l1_block: at, content, timestamp, tx });
        }
    }
    if !complete {
        // Not every credited deposit was visible: nothing more is known final, and the next
        // head is checked in full.
        return Ok(());
    }
    let final_through = s.recent.keys().next().map_or(s.highest, |b| b - 1);
    if final_through > s.final_through {
        off_workers(chain, move |c| Ok(c.set_deposits_final_through(final_through)?)).await?;
        s.final_through = final_through;
    }
    s.checked_at = Some(head.hash);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run is as long as the balance pays its gas limit for, a quarter to spare, and never
    /// shorter than one block or longer than `MAX_RUN`.
    #[test]
    fn a_run_is_cut_to_what_the_balance_pays_for() {
        let price = 7_000_000_000u128;
        let pays =
            |k: usize| U256::from(run_gas(k)) * U256::from(price) * U256::from(5) / U256::from(4);
        assert_eq!(affordable(U256::ZERO, price), 1, "a lone block is always tried");
        assert_eq!(affordable(pays(1), price), 1);
        assert_eq!(affordable(pays(2) - U256::from(1), price), 1);
        assert_eq!(affordable(pays(2), price), 2);
        assert_eq!(affordable(pays(5), price), 5);
        assert_eq!(affordable(pays(6) - U256::from(1), price), 5);
        assert_eq!(affordable(pays(MAX_RUN) * U256::from(1000), price), MAX_RUN);
        assert_eq!(affordable(U256::MAX, 0), MAX_RUN, "a zero price is taken as one wei");
        // The limit covers what a run spends: ~25,300 gas a further block (the gas bench).
        assert!(run_gas(8) >= 226_072 && run_gas(2) >= 74_624 && run_gas(1) >= 48_510);
    }

    /// A run's fee (gas limit times price) stays under the cap; a lone block is always tried.
    #[test]
    fn a_run_is_cut_to_what_stays_under_the_fee_cap() {
        let ether = 1_000_000_000_000_000_000u128;
        let gwei = 1_000_000_000u128;
        assert_eq!(fee_capped(gwei, ether), MAX_RUN, "2.01M gas at 1 gwei is far under 1 ether");
        // A run of 64 (2,010,000 gas) passes 1 ether above ~497.5 gwei.
        assert_eq!(fee_capped(497 * gwei, ether), MAX_RUN);
        assert_eq!(fee_capped(498 * gwei, ether), MAX_RUN - 1);
        for price in [498 * gwei, 1_000 * gwei, 5_000 * gwei] {
            let k = fee_capped(price, ether);
            assert!(u128::from(run_gas(k)) * price <= ether, "{price}: {k}");
            assert!(u128::from(run_gas(k + 1)) * price > ether, "{price}: {k} is the most");
        }
        assert_eq!(fee_capped(ether, ether), 1, "a lone block is always tried");
        assert_eq!(fee_capped(0, u128::MAX), MAX_RUN, "a zero price is taken as one wei");
    }
}
