//! Batch exits (spec: EXIT-12 … EXIT-15, CHAL-6 … CHAL-10): the tower's mass exit through
//! `startBatchExit` (WATCH-9), the payout of its own batches' claims once they are processed, and
//! the audit of everyone's batches (WATCH-16).
//!
//! Every batch is rebuilt from L1 alone: `BatchExitStarted` gives its root, count, token and
//! clock, `BatchExitGroup` its claims, and the claim tree rebuilt from them must have the root
//! (`plasma_spec::batch_exit::ClaimTree`). Claim states follow `BatchClaimStruck`,
//! `BatchClaimDemanded`, `BatchClaimAnswered`, `BatchClaimPaid` and `BatchExitProcessed`; they are
//! persisted in the store (table `watched_batches`) with the cursor's step, so a restart resumes.

#[allow(clippy::wildcard_imports)]
use super::*;
use alloy::primitives::aliases::U96;
use plasma_contracts::{BatchExitGame, IBatchExitGame};
use plasma_spec::batch_exit::{self as bx, Claim, ClaimTree};
use std::collections::{BTreeSet, HashMap, HashSet};

/// The bound batch exit game.
pub(super) type Game = BatchExitGame::BatchExitGameInstance<DynProvider>;

/// Batches read from L1: batch id → [`WatchedBatch`] as JSON.
pub(super) const BATCHES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("watched_batches");

/// `claimState`: a live claim (also the state of claims absent from [`WatchedBatch::states`]).
const LIVE: u8 = 0;
/// `claimState`: demanded (CHAL-9), not answered yet.
const DEMANDED: u8 = 1;
/// `claimState`: struck (CHAL-6 … CHAL-9) or void.
const STRUCK: u8 = 2;
/// `claimState`: paid out (EXIT-15).
const PAID: u8 = 3;

/// Claims per `startBatchExit` transaction: 20 bytes each, so a full chunk carries 100 kB of
/// claims, under the 128 KiB a node's transaction pool takes, and its gas stays under the 2^24
/// cap of one transaction (EIP-7825).
pub(super) const MAX_CLAIMS_PER_TX: usize = 5_000;
/// Calldata of one `startBatchExit`, at most: geth's pool refuses transactions over 128 KiB.
const MAX_CALLDATA: usize = 120 * 1024;
/// Gas limit of one transaction, at most (the per-transaction cap is 2^24 = 16,777,216).
const MAX_TX_GAS: u64 = 16_000_000;
/// Gas of a `startBatchExit` before its groups: the batch record, the queue entry, the bonds.
const BATCH_BASE_GAS: u64 = 300_000;
/// Gas per group: the watermark word, the owner's nonce and signature check, its event.
const BATCH_GAS_PER_GROUP: u64 = 45_000;
/// Gas per claim: 20 bytes of calldata, its leaf and its share of the tree, its event bytes.
const BATCH_GAS_PER_CLAIM: u64 = 3_000;
/// Claims paid per `payoutBatchClaims` (each carries its transaction, a 512-byte inclusion proof
/// and its claim proof: about 1.5 kB of calldata).
const PAYOUT_CHUNK: usize = 40;
/// Gas per claim paid (proofs, the output finalized, the owner credited), with room.
const PAYOUT_GAS_PER_CLAIM: u64 = 150_000;

/// What `BatchExitStarted` says about a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BatchStart {
    token: Address,
    exitor: Address,
    root: B256,
    count: u64,
    /// L1 time of the start (phase 1 of CHAL-9 runs to `started_at + p / 2`).
    started_at: u64,
    /// When the framework may process it: the deadline of every strike.
    exitable_at: u64,
}

/// A batch as the watcher follows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct WatchedBatch {
    started: Option<BatchStart>,
    /// Its live groups by first index: owner and packed claims (as `BatchExitGroup` carries them).
    groups: BTreeMap<u64, (Address, Bytes)>,
    /// Claims not live, by index: their `claimState`.
    states: BTreeMap<u64, u8>,
    /// Demands by index: the demander and the L1 block of the demand.
    demands: BTreeMap<u64, (Address, u64)>,
    processed: bool,
}

impl WatchedBatch {
    fn state(&self, index: u64) -> u8 {
        self.states.get(&index).copied().unwrap_or(LIVE)
    }

    /// Its claims in batch order, once every group was read (`None` before, or if the groups do
    /// not add up to the count).
    fn claims(&self) -> Option<Vec<Claim>> {
        let start = self.started.as_ref()?;
        let mut out = Vec::with_capacity(usize::try_from(start.count).ok()?);
        for (first, (owner, packed)) in &self.groups {
            if *first != out.len() as u64 {
                return None;
            }
            let decoded = bx::decode_claims(packed).ok()?;
            out.extend(decoded.into_iter().map(|(pos, amount)| Claim {
                owner: *owner,
                pos,
                amount,
            }));
        }
        (out.len() as u64 == start.count).then_some(out)
    }
}

/// A batch's claims in order and their tree.
type Built = (Vec<Claim>, ClaimTree);

/// One `startBatchExit`: its token and its groups (owner, claims ascending).
type Chunk = (Address, Vec<(Address, Vec<Candidate>)>);

/// The batches the watcher follows and what it derived from them.
#[derive(Debug, Default)]
pub(super) struct Batches {
    map: BTreeMap<u64, WatchedBatch>,
    /// Batches changed since the last write.
    dirty: BTreeSet<u64>,
    /// Built claim trees (a tree over 65,536 claims takes 4 MiB; at most a few are kept).
    trees: Vec<(u64, Arc<Built>)>,
    /// Batches whose tree does not have their root (reported once).
    bad_root: BTreeSet<u64>,
    /// Watermarks (`claimedUpTo`) the tower's own mined batches set, before their events are read.
    sent_watermarks: HashMap<(Address, Address), u128>,
    /// Positions of the tower's own batch transactions that reverted: exited by standard exits.
    failed: HashSet<UtxoPos>,
    /// What the last audit saw (synced block, watched exits, marks, events, handed-in payments):
    /// nothing changed, nothing to audit again.
    audited: Option<(u64, usize, usize, u64, usize)>,
    /// Changes to the batches read from L1 (events applied), for the audit's signature.
    changes: u64,
    /// Positions whose standard-exit state the audit read from L1, with the marks it saw then.
    exit_checked: HashMap<UtxoPos, usize>,
    /// The audit's actions sent and still pending when their wait ran out, by action key: what
    /// to report once one is found mined ([`Watcher::report_late_landings`]).
    pending: HashMap<String, Late>,
}

/// What an audit action that was still pending did, to be reported when it is found mined.
/// Needed because the audit chooses its actions from the claims' L1 states: once the pending
/// transaction is mined, the claim is no longer live, the audit no longer picks it, and the
/// action's own path (which reports on success) never runs again for it.
#[derive(Clone, Debug)]
enum Late {
    Strike { batch_id: u64, index: u64, rule: &'static str, released: bool },
    Demand { batch_id: u64, index: u64 },
    Answer { batch_id: u64, index: u64 },
    ChallengeExit { pos: UtxoPos, batch_id: u64, index: u64 },
}

/// An output the tower would claim for a guarded owner.
#[derive(Clone, Debug)]
pub(super) struct Candidate {
    pub(super) owner: Address,
    pub(super) token: Address,
    pub(super) pos: UtxoPos,
    pub(super) amount: U256,
}

/// What the batch path of a mass exit did with its candidates.
#[derive(Debug, Default)]
pub(super) struct BatchOutcome {
    /// Candidates to exit by standard exits instead (claims that cannot be batched).
    pub(super) standard: Vec<Candidate>,
    /// Outputs worth exiting, and of those how many the balance could not pay for (WATCH-13).
    pub(super) worth: usize,
    pub(super) unaffordable: usize,
    pub(super) dust: usize,
}

/// The proof that a claim's output exists as claimed: its transaction and inclusion.
#[derive(Clone, Debug)]
struct Shown {
    tx: Bytes,
    proof: Bytes,
    timestamp: u64,
}

/// What the watcher's history says about one claim (WATCH-16).
#[derive(Clone, Debug)]
enum Verdict {
    /// The claim's output exists exactly as claimed.
    Proven(Shown),
    /// CHAL-6 (a): its block was never committed.
    NotCommitted,
    /// CHAL-6 (b): the leaf at its position is empty or another output (`reason`).
    Invalid(Shown, String),
    /// Committed, but the watcher does not have the block (withheld, or after the first bad
    /// block): only a demand (CHAL-9) can make it proven.
    Unknown,
    /// Not judged yet (the block is being downloaded).
    Wait,
}

/// One action of the audit, with the value it protects.
enum AuditAction {
    /// CHAL-6, CHAL-7 or CHAL-8 (before processing), or a release (after).
    Strike {
        rule: &'static str,
        call: StrikeCall,
    },
    Demand,
    Answer(Shown, u64),
    ChallengeExit(UtxoPos),
}

enum StrikeCall {
    Invalid(Shown),
    Spent(crate::judge::Spend),
    Exited(Option<Shown>),
}

impl Watcher {
    /// Binds the deployment's batch exit game, if it has one (a framework bound before #16 has
    /// none, and the watcher exits by standard exits only).
    pub(super) async fn bind_batch_game(
        framework: &PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
        provider: DynProvider,
    ) -> Result<Option<BatchExitGame::BatchExitGameInstance<DynProvider>>, WatcherError> {
        let address = framework.batchExitGame().call().await.map_err(l1)?;
        Ok((!address.is_zero()).then(|| BatchExitGame::new(address, provider)))
    }

    /// WATCH-1 for batch exits: reads the batch game's events of L1 blocks `from ..= to`, in L1
    /// order, into the followed batches; returns each claim as a LEDGER-9 exit event.
    pub(super) async fn follow_batches(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<(Log, plasma_spec::ExitEvent)>, WatcherError> {
        let Some(game) = &self.batch_game else { return Ok(Vec::new()) };
        macro_rules! query {
            ($filter:ident) => {
                game.$filter().from_block(from).to_block(to).query().await.map_err(l1)?
            };
        }
        let started = query!(BatchExitStarted_filter);
        let groups = query!(BatchExitGroup_filter);
        let struck = query!(BatchClaimStruck_filter);
        let demanded = query!(BatchClaimDemanded_filter);
        let answered = query!(BatchClaimAnswered_filter);
        let processed = query!(BatchExitProcessed_filter);
        let paid = query!(BatchClaimPaid_filter);
        if started.is_empty()
            && groups.is_empty()
            && struck.is_empty()
            && demanded.is_empty()
            && answered.is_empty()
            && processed.is_empty()
            && paid.is_empty()
        {
            return Ok(Vec::new());
        }
        let mut started_at = HashMap::new();
        for (_, log) in &started {
            started_at.insert(log.block_number, self.log_time(log).await?);
        }
        let key = |log: &Log| (log.block_number.unwrap_or(0), log.log_index.unwrap_or(0));
        let id = |v: U256| u64::try_from(v).unwrap_or(u64::MAX);
        // Starts and groups first (one transaction emits both); then the claim states in L1 order.
        let mut exit_events = Vec::new();
        {
            let mut b = self.batches.lock();
            for (ev, log) in &started {
                let batch_id = id(ev.batchId);
                self.tokens.lock().insert(ev.token);
                let entry = b.map.entry(batch_id).or_default();
                entry.started = Some(BatchStart {
                    token: ev.token,
                    exitor: ev.exitor,
                    root: ev.root,
                    count: id(ev.count),
                    started_at: started_at.get(&log.block_number).copied().unwrap_or(0),
                    exitable_at: ev.exitableAt,
                });
                b.dirty.insert(batch_id);
            }
            for (ev, log) in &groups {
                let batch_id = id(ev.batchId);
                let entry = b.map.entry(batch_id).or_default();
                entry.groups.insert(id(ev.firstIndex), (ev.owner, ev.claims.clone()));
                let token = entry.started.as_ref().map(|s| s.token);
                b.dirty.insert(batch_id);
                // LEDGER-9: each claim of exactly an output takes it off the child chain.
                if let (Some(token), Ok(claims)) = (token, bx::decode_claims(&ev.claims)) {
                    for (pos, amount) in claims {
                        exit_events.push((
                            log.clone(),
                            plasma_spec::ExitEvent::BatchClaimed {
                                pos,
                                owner: ev.owner,
                                token,
                                amount,
                            },
                        ));
                    }
                }
            }
            enum Change {
                State(u8),
                Demand(Address, u64),
                Answer,
                Processed,
            }
            let mut changes: Vec<((u64, u64), u64, u64, Change)> = Vec::new();
            for (ev, log) in &struck {
                changes.push((key(log), id(ev.batchId), id(ev.index), Change::State(STRUCK)));
            }
            for (ev, log) in &paid {
                // A void claim is paid nothing (EXIT-15): either way it is over.
                let state = if ev.amount.is_zero() { STRUCK } else { PAID };
                changes.push((key(log), id(ev.batchId), id(ev.index), Change::State(state)));
            }
            for (ev, log) in &demanded {
                let at = log.block_number.unwrap_or(0);
                changes.push((
                    key(log),
                    id(ev.batchId),
                    id(ev.index),
                    Change::Demand(ev.demander, at),
                ));
            }
            for (ev, log) in &answered {
                changes.push((key(log), id(ev.batchId), id(ev.index), Change::Answer));
            }
            for (ev, log) in &processed {
                changes.push((key(log), id(ev.batchId), 0, Change::Processed));
            }
            changes.sort_by_key(|c| c.0);
            for (_, batch_id, index, change) in changes {
                let entry = b.map.entry(batch_id).or_default();
                match change {
                    Change::State(s) => {
                        entry.states.insert(index, s);
                    }
                    Change::Demand(demander, at) => {
                        if entry.state(index) == LIVE {
                            entry.states.insert(index, DEMANDED);
                        }
                        entry.demands.insert(index, (demander, at));
                    }
                    Change::Answer => {
                        if entry.state(index) == DEMANDED {
                            entry.states.remove(&index);
                        }
                    }
                    Change::Processed => entry.processed = true,
                }
                b.dirty.insert(batch_id);
            }
            b.changes += 1;
        }
        self.persist_batches()?;
        Ok(exit_events)
    }

    /// Writes the batches changed since the last write.
    pub(super) fn persist_batches(&self) -> Result<(), WatcherError> {
        let mut b = self.batches.lock();
        if b.dirty.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write().map_err(st)?;
        {
            let mut table = tx.open_table(BATCHES).map_err(st)?;
            for batch_id in &b.dirty {
                if let Some(batch) = b.map.get(batch_id) {
                    let json = serde_json::to_vec(batch).map_err(st)?;
                    table.insert(*batch_id, json.as_slice()).map_err(st)?;
                }
            }
        }
        tx.commit().map_err(st)?;
        b.dirty.clear();
        Ok(())
    }

    /// Loads the followed batches from the store.
    pub(super) fn restore_batches(&self) -> Result<(), WatcherError> {
        use redb::ReadableTable;
        let tx = self.db.begin_read().map_err(st)?;
        let mut b = self.batches.lock();
        for entry in tx.open_table(BATCHES).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            let batch: WatchedBatch = serde_json::from_slice(v.value()).map_err(st)?;
            if let Some(s) = &batch.started {
                self.tokens.lock().insert(s.token);
            }
            b.map.insert(k.value(), batch);
        }
        Ok(())
    }

    /// The claims and tree of batch `batch_id`, if all its groups were read (cached). Reports a
    /// batch whose rebuilt tree does not have the root L1 gave, once.
    fn batch_tree(&self, batch_id: u64) -> Option<Arc<Built>> {
        let mut b = self.batches.lock();
        if let Some((_, t)) = b.trees.iter().find(|(id, _)| *id == batch_id) {
            return Some(t.clone());
        }
        let batch = b.map.get(&batch_id)?;
        let root = batch.started.as_ref()?.root;
        let claims = batch.claims()?;
        let tree = ClaimTree::from_claims(&claims).ok()?;
        if tree.root() != root {
            if b.bad_root.insert(batch_id) {
                drop(b);
                warn!(target: "watcher::batch", batch_id, "the claim tree rebuilt from BatchExitGroup does not have the batch's root");
                self.event(Event::BatchRootMismatch { batch_id, root, rebuilt: tree.root() });
            }
            return None;
        }
        let built = Arc::new((claims, tree));
        b.trees.insert(0, (batch_id, built.clone()));
        b.trees.truncate(4);
        Some(built)
    }

    /// The contract's reference to claim `index` of batch `batch_id`.
    fn claim_ref(batch_id: u64, index: u64, claims: &Built) -> Option<IBatchExitGame::ClaimRef> {
        let i = usize::try_from(index).ok()?;
        let claim = claims.0.get(i)?;
        let proof = claims.1.proof(i).ok()?;
        Some(IBatchExitGame::ClaimRef {
            batchId: U256::from(batch_id),
            index: U256::from(index),
            owner: claim.owner,
            utxoPos: u64::try_from(claim.pos.to_u128()).ok()?,
            amount: U96::checked_from_limbs_slice(claim.amount.as_limbs())?,
            proof,
        })
    }

    /// Per owner and token, what the claims read from L1 say: the positions claimed and not
    /// struck, and the watermark they set (`claimedUpTo` as of the events read). One pass over
    /// every batch.
    fn claimed_positions(&self) -> HashMap<(Address, Address), (HashSet<UtxoPos>, u128)> {
        let b = self.batches.lock();
        let mut out: HashMap<(Address, Address), (HashSet<UtxoPos>, u128)> = HashMap::new();
        for batch in b.map.values() {
            let Some(start) = &batch.started else { continue };
            for (first, (owner, packed)) in &batch.groups {
                let Ok(claims) = bx::decode_claims(packed) else { continue };
                let entry = out.entry((*owner, start.token)).or_default();
                for (i, (pos, _)) in claims.iter().enumerate() {
                    entry.1 = entry.1.max(pos.to_u128());
                    if batch.state(first + i as u64) != STRUCK {
                        entry.0.insert(*pos);
                    }
                }
            }
        }
        out
    }

    /// WATCH-9 through batch exits (EXIT-12): claims `candidates` (guarded owners' outputs older
    /// than the first bad block, none over 2^96 − 1) in `startBatchExit` transactions, per token,
    /// one group per owner with its authorization, positions ascending above the owner's
    /// watermark. Returns what must go by standard exits instead: outputs below a watermark
    /// another exitor set without claiming them, and those of a batch that reverted.
    pub(super) async fn batch_mass_exit(
        &self,
        candidates: Vec<Candidate>,
        guards: &HashMap<Address, Guard>,
    ) -> Result<BatchOutcome, WatcherError> {
        let mut out = BatchOutcome::default();
        let Some(game) = &self.batch_game else {
            out.standard = candidates;
            return Ok(out);
        };
        let mut todo: Vec<(U256, Candidate)> = Vec::new();
        let mut l1_watermarks: HashMap<(Address, Address), u128> = HashMap::new();
        let claimed = self.claimed_positions();
        let (failed, sent) = {
            let b = self.batches.lock();
            (b.failed.clone(), b.sent_watermarks.clone())
        };
        let none = (HashSet::new(), 0);
        for c in candidates {
            if failed.contains(&c.pos) {
                out.standard.push(c);
                continue;
            }
            let (live, read) = claimed.get(&(c.owner, c.token)).unwrap_or(&none);
            if live.contains(&c.pos) {
                continue; // claimed, by this tower or another exitor of the owner
            }
            let p = c.pos.to_u128();
            if p <= *read {
                // Below the watermark of claims read from L1 and not claimed live: another
                // exitor of the owner passed it over (or it was struck). Only a standard exit can
                // take it now.
                out.standard.push(c);
                continue;
            }
            if p <= sent.get(&(c.owner, c.token)).copied().unwrap_or(0) {
                continue; // in one of this tower's batches whose events are not read yet
            }
            let key = (c.owner, c.token);
            let l1_wm = match l1_watermarks.get(&key) {
                Some(w) => *w,
                None => {
                    let w = game.claimedUpTo(c.owner, c.token).call().await.map_err(l1)?;
                    let w = u128::try_from(w).unwrap_or(u128::MAX);
                    l1_watermarks.insert(key, w);
                    w
                }
            };
            if p <= l1_wm {
                continue; // claimed in a batch whose events are not read yet: wait for them
            }
            todo.push((c.amount, c));
        }
        if todo.is_empty() {
            return Ok(out);
        }
        // WATCH-13: claim bonds (they come back at processing), the batch bond per transaction,
        // and the gas — the start and the payout the tower sends later — within the balance.
        let batch_bond = game.batchBondSize().call().await.map_err(l1)?;
        let claim_bond = game.claimBondSize().call().await.map_err(l1)?;
        let balance = self.provider.get_balance(self.me).await.map_err(l1)?;
        let price = self.provider.get_gas_price().await.map_err(l1)?;
        let costs = budget::ExitCosts {
            bond: claim_bond,
            gas_price: price + price / 2 + 1,
            gas_per_batch: BATCH_BASE_GAS,
            gas_per_output: BATCH_GAS_PER_CLAIM + BATCH_GAS_PER_GROUP + PAYOUT_GAS_PER_CLAIM,
        };
        // Older positions first among equal amounts (the plan's sort is stable).
        todo.sort_by_key(|(_, c)| c.pos);
        out.worth = todo.len();
        let plan = plan_claims(&todo, balance, batch_bond, &costs);
        out.dust = plan.dust.len();
        out.worth -= out.dust;
        out.unaffordable = plan.unaffordable.len();
        let chosen: Vec<Candidate> = plan.batches.into_iter().flatten().collect();
        for (token, chunk) in chunk_claims(chosen) {
            if let Some(failed) =
                self.send_batch_exit(game, token, &chunk, guards, batch_bond, claim_bond).await?
            {
                out.standard.extend(failed);
            }
        }
        Ok(out)
    }

    /// Sends one `startBatchExit`. Returns the chunk's candidates if this very batch was mined
    /// and reverted (they go by standard exits), `None` otherwise.
    async fn send_batch_exit(
        &self,
        game: &BatchExitGame::BatchExitGameInstance<DynProvider>,
        token: Address,
        chunk: &[(Address, Vec<Candidate>)],
        guards: &HashMap<Address, Guard>,
        batch_bond: U256,
        claim_bond: U256,
    ) -> Result<Option<Vec<Candidate>>, WatcherError> {
        let Some(youngest) = chunk.iter().flat_map(|(_, cs)| cs.iter().map(|c| c.pos)).max() else {
            return Ok(None);
        };
        let (root, timestamp) = {
            let view = self.view.lock();
            let tree = view.history.tree(youngest.blknum()).map_err(st)?;
            let ts = view.history.timestamp(youngest.blknum()).map_err(st)?;
            match (tree, ts) {
                (Some(t), Some(ts)) => (t.root(), ts),
                _ => return Ok(None), // not a validated block: nothing of it is claimed
            }
        };
        let mut groups = Vec::with_capacity(chunk.len());
        let mut n = 0usize;
        for (owner, claims) in chunk {
            let records: Vec<(UtxoPos, U256)> = claims.iter().map(|c| (c.pos, c.amount)).collect();
            let packed = bx::encode_claims(&records).map_err(st)?;
            n += records.len();
            // The tower's own outputs need no authorization (EXIT-12).
            let group = if *owner == self.me {
                BatchExitGame::Group {
                    owner: *owner,
                    deadline: U256::ZERO,
                    nonce: U256::ZERO,
                    signature: Bytes::new(),
                    claims: packed.into(),
                }
            } else {
                let Some(g) = guards.get(owner) else { continue };
                BatchExitGame::Group {
                    owner: *owner,
                    deadline: g.deadline,
                    nonce: g.nonce,
                    signature: g.signature.clone(),
                    claims: packed.into(),
                }
            };
            groups.push(group);
        }
        if groups.is_empty() {
            return Ok(None);
        }
        let digest = {
            use alloy::sol_types::SolValue;
            let mut pre = token.to_vec();
            for g in &groups {
                pre.extend_from_slice(g.owner.as_slice());
                pre.extend_from_slice(&g.claims);
                pre.extend_from_slice(&g.nonce.abi_encode());
            }
            alloy::primitives::keccak256(pre)
        };
        let key = format!("batch-exit:{token}:{digest}");
        let all: Vec<Candidate> = chunk.iter().flat_map(|(_, cs)| cs.iter().cloned()).collect();
        if self.action_done(&key)? {
            // Mined before and still not claimed: it reverted. Standard exits from now on.
            self.batches.lock().failed.extend(all.iter().map(|c| c.pos));
            return Ok(Some(all));
        }
        let value = batch_bond + claim_bond * U256::from(n);
        let gas = batch_gas(groups.len(), n);
        let n_groups = groups.len();
        let call = game.startBatchExit(token, root, timestamp, groups);
        match self.act(&key, call, value, gas).await? {
            Some(l1_tx) => {
                let gas_used = self
                    .provider
                    .get_transaction_receipt(l1_tx)
                    .await
                    .map_err(l1)?
                    .map_or(0, |r| r.gas_used);
                {
                    let mut b = self.batches.lock();
                    for (owner, claims) in chunk {
                        if let Some(last) = claims.last() {
                            let w = b.sent_watermarks.entry((*owner, token)).or_default();
                            *w = (*w).max(last.pos.to_u128());
                        }
                    }
                }
                info!(target: "watcher::batch", claims = n, owners = n_groups, gas_used, %l1_tx, "batch exit started for guarded owners");
                self.event(Event::BatchMassExit {
                    token,
                    claims: n,
                    owners: n_groups,
                    gas_used,
                    l1_tx,
                });
                Ok(None)
            }
            None if self.action_done(&key)? => {
                self.batches.lock().failed.extend(all.iter().map(|c| c.pos));
                Ok(Some(all))
            }
            None => Ok(None), // refused or pending: the next step tries again
        }
    }

    /// EXIT-15: pays every live claim of the tower's own processed batches, in chunks, with the
    /// proofs from its history, so each guarded owner is credited without doing anything. Also
    /// collects the bonds of its demands that went unanswered (CHAL-9).
    pub(super) async fn pay_out_batches(&self) -> Result<(), WatcherError> {
        let Some(game) = &self.batch_game else { return Ok(()) };
        let processed: Vec<(u64, WatchedBatch)> = self
            .batches
            .lock()
            .map
            .iter()
            .filter(|(_, b)| b.processed)
            .map(|(id, b)| (*id, b.clone()))
            .collect();
        for (batch_id, batch) in processed {
            let Some(start) = &batch.started else { continue };
            // Demands of ours that stood at processing: the claim lost; collect (CHAL-9).
            for (index, (demander, _)) in &batch.demands {
                if *demander != self.me || batch.state(*index) != DEMANDED {
                    continue;
                }
                let key = format!("batch-collect:{batch_id}:{index}");
                if self.action_done(&key)? {
                    continue;
                }
                let call = game.collectDemand(U256::from(batch_id), U256::from(*index));
                if let Some(l1_tx) = self.act(&key, call, U256::ZERO, ACTION_GAS).await? {
                    self.event(Event::BatchDemandCollected { batch_id, index: *index, l1_tx });
                }
            }
            if start.exitor != self.me {
                continue;
            }
            let live: Vec<u64> = (0..start.count).filter(|i| batch.state(*i) == LIVE).collect();
            if live.is_empty() {
                continue;
            }
            let Some(tree) = self.batch_tree(batch_id) else { continue };
            for chunk in live.chunks(PAYOUT_CHUNK) {
                let key = format!("batch-payout:{batch_id}:{}:{}", chunk[0], chunk.len());
                if !self.action_done(&key)? {
                    self.send_payout(game, &key, batch_id, chunk, &tree).await?;
                    continue;
                }
                // This very chunk was mined and reverted: pay its claims one by one.
                for index in chunk {
                    let key = format!("batch-payout:{batch_id}:{index}:1");
                    if !self.action_done(&key)? {
                        self.send_payout(game, &key, batch_id, &[*index], &tree).await?;
                    }
                }
            }
        }
        self.persist_batches()
    }

    async fn send_payout(
        &self,
        game: &BatchExitGame::BatchExitGameInstance<DynProvider>,
        key: &str,
        batch_id: u64,
        indexes: &[u64],
        tree: &Built,
    ) -> Result<(), WatcherError> {
        let mut payouts = Vec::with_capacity(indexes.len());
        let mut paid = Vec::new();
        for index in indexes {
            let Some(claim) = Self::claim_ref(batch_id, *index, tree) else { continue };
            let Ok(pos) = UtxoPos::from_u128(u128::from(claim.utxoPos)) else { continue };
            let shown = {
                let view = self.view.lock();
                let tx = view.tx_bytes(pos.blknum(), pos.tx_index()).map_err(st)?;
                let proof = view.inclusion_proof(pos.blknum(), pos.tx_index()).map_err(st)?;
                match (tx, proof) {
                    (Some(tx), Some((proof, ts))) => {
                        Shown { tx, proof: proof.into(), timestamp: ts }
                    }
                    _ => continue,
                }
            };
            payouts.push(BatchExitGame::Payout {
                claim,
                txBytes: shown.tx,
                inclusionProof: shown.proof,
                blockTimestamp: shown.timestamp,
            });
            paid.push(*index);
        }
        if payouts.is_empty() {
            return Ok(());
        }
        let gas = (ACTION_GAS + PAYOUT_GAS_PER_CLAIM * payouts.len() as u64).min(MAX_TX_GAS);
        let n = payouts.len();
        let call = game.payoutBatchClaims(payouts);
        if let Some(l1_tx) = self.act(key, call, U256::ZERO, gas).await? {
            {
                let mut b = self.batches.lock();
                if let Some(batch) = b.map.get_mut(&batch_id) {
                    for index in &paid {
                        batch.states.insert(*index, PAID);
                    }
                }
                b.dirty.insert(batch_id);
            }
            info!(target: "watcher::batch", batch_id, claims = n, %l1_tx, "batch claims paid out");
            self.event(Event::BatchPaidOut { batch_id, claims: n, l1_tx });
        }
        Ok(())
    }

    /// What the history says about `claim` of a batch of `token` (WATCH-16). `commitments`
    /// caches L1's `blockCommitments` for blocks the watcher has not validated.
    async fn judge_claim(
        &self,
        claim: &Claim,
        token: Address,
        commitments: &mut HashMap<u64, bool>,
    ) -> Result<Verdict, WatcherError> {
        let (b, i) = (claim.pos.blknum(), claim.pos.tx_index());
        let (have, pending, bad_from) = {
            let view = self.view.lock();
            let have = view.history.timestamp(b).map_err(st)?.is_some();
            (have, self.pending.lock().iter().any(|p| p.blknum == b), view.byzantine_from)
        };
        if have {
            let view = self.view.lock();
            let Some((proof, timestamp)) = view.inclusion_proof(b, i).map_err(st)? else {
                // An index past the block's last transaction: the leaf is empty (MERKLE-3).
                let Some(leaves) = view.history.leaves(b).map_err(st)? else {
                    return Ok(Verdict::Wait);
                };
                let timestamp = view.history.timestamp(b).map_err(st)?.unwrap_or(0);
                let mut padded = leaves;
                if usize::from(i) < padded.len() {
                    return Ok(Verdict::Wait);
                }
                padded.resize(usize::from(i) + 1, B256::ZERO);
                let tree = plasma_spec::BlockTree::from_leaves(&padded).map_err(st)?;
                let proof = tree.proof(usize::from(i)).map_err(st)?.to_bytes().into();
                let shown = Shown { tx: Bytes::new(), proof, timestamp };
                return Ok(Verdict::Invalid(shown, "no transaction at its position".into()));
            };
            let Some(tx) = view.tx_bytes(b, i).map_err(st)? else { return Ok(Verdict::Wait) };
            let shown = Shown { tx: tx.clone(), proof: proof.into(), timestamp };
            return Ok(match plasma_spec::Transaction::decode(&tx) {
                Ok(t) => match bx::claim_matches(&t, claim, token) {
                    Ok(()) => Verdict::Proven(shown),
                    Err(e) => Verdict::Invalid(shown, e.to_string()),
                },
                Err(e) => Verdict::Invalid(shown, format!("not a transaction: {e}")),
            });
        }
        let committed = if pending {
            true
        } else if let Some(c) = commitments.get(&b) {
            *c
        } else {
            let c =
                !self.framework.blockCommitments(U256::from(b)).call().await.map_err(l1)?.is_zero();
            commitments.insert(b, c);
            c
        };
        if !committed {
            return Ok(Verdict::NotCommitted);
        }
        if bad_from.is_some_and(|f| b >= f) {
            return Ok(Verdict::Unknown);
        }
        Ok(Verdict::Wait)
    }

    /// WATCH-16: audits every batch not processed yet — strikes each claim the watcher can
    /// disprove (CHAL-6 not committed or not as claimed, CHAL-7 spent, CHAL-8 exited), demands the
    /// proof of each claim in a block it does not have while phase 1 lasts (CHAL-9), answers every
    /// demand on a claim it can prove, and challenges standard exits of live claims (CHAL-10);
    /// after processing, releases claims it can disprove and then settles the token's debts
    /// (EXIT-16). The most valuable claims first; every action once, through the one sender.
    pub(super) async fn audit_batches(&self) -> Result<(), WatcherError> {
        let Some(game) = &self.batch_game else { return Ok(()) };
        let late_released = self.report_late_landings().await?;
        if late_released {
            self.settle_debts().await?;
        }
        let handed_in = self.guarded_in_flight()?;
        let signature = {
            let view = self.view.lock();
            let marks = view.exiting.len();
            (
                view.synced_block,
                self.exits.lock().len(),
                marks,
                self.batches.lock().changes,
                handed_in.len(),
            )
        };
        if self.batches.lock().audited == Some(signature) {
            return Ok(());
        }
        let now = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(l1)?
            .map_or(0, |b| b.header.timestamp);
        let ids: Vec<(u64, WatchedBatch)> = self
            .batches
            .lock()
            .map
            .iter()
            .filter(|(_, b)| b.started.is_some())
            .map(|(id, b)| (*id, b.clone()))
            .collect();
        let mut commitments = HashMap::new();
        let mut actions: Vec<(U256, u64, u64, u64, AuditAction)> = Vec::new();
        let mut complete = true;
        for (batch_id, batch) in &ids {
            let Some(start) = &batch.started else { continue };
            let Some(tree) = self.batch_tree(*batch_id) else {
                complete = false;
                continue;
            };
            let own = start.exitor == self.me;
            let phase1_end = start.started_at + self.min_exit_period / 2;
            for (i, claim) in tree.0.iter().enumerate() {
                let index = i as u64;
                let state = batch.state(index);
                if state == STRUCK || state == PAID {
                    continue;
                }
                if batch.processed && own {
                    continue;
                }
                let verdict = self.judge_claim(claim, start.token, &mut commitments).await?;
                let deadline = start.exitable_at;
                let strike = |rule, call| AuditAction::Strike { rule, call };
                match verdict {
                    Verdict::Wait => complete = false,
                    Verdict::NotCommitted if !own => {
                        let call = StrikeCall::Invalid(Shown {
                            tx: Bytes::new(),
                            proof: Bytes::new(),
                            timestamp: 0,
                        });
                        actions.push((
                            claim.amount,
                            *batch_id,
                            index,
                            deadline,
                            strike("CHAL-6", call),
                        ));
                    }
                    Verdict::Invalid(shown, reason) if !own => {
                        debug!(target: "watcher::batch", batch_id, index, %reason, "invalid claim");
                        let call = StrikeCall::Invalid(shown);
                        actions.push((
                            claim.amount,
                            *batch_id,
                            index,
                            deadline,
                            strike("CHAL-6", call),
                        ));
                    }
                    // CHAL-9 demands close with phase 1.
                    Verdict::Unknown
                        if !own && !batch.processed && state == LIVE && now <= phase1_end =>
                    {
                        actions.push((
                            claim.amount,
                            *batch_id,
                            index,
                            phase1_end,
                            AuditAction::Demand,
                        ));
                    }
                    Verdict::Proven(shown) => {
                        let spend =
                            self.view.lock().challenge_for(claim.pos).map_err(st)?.or_else(|| {
                                super::challenge::in_flight_spend_of(&handed_in, claim.pos)
                            });
                        if let Some(spend) = spend {
                            if !own && !batch.processed {
                                let call = StrikeCall::Spent(spend);
                                actions.push((
                                    claim.amount,
                                    *batch_id,
                                    index,
                                    deadline,
                                    strike("CHAL-7", call),
                                ));
                            }
                            continue;
                        }
                        match self.exit_state(*batch_id, claim, &shown).await? {
                            ExitState::None => {}
                            ExitState::ClaimFirst => {
                                if !batch.processed {
                                    actions.push((
                                        claim.amount,
                                        *batch_id,
                                        index,
                                        deadline,
                                        AuditAction::ChallengeExit(claim.pos),
                                    ));
                                }
                                continue;
                            }
                            ExitState::Exited(shown) => {
                                let call = StrikeCall::Exited(shown);
                                actions.push((
                                    claim.amount,
                                    *batch_id,
                                    index,
                                    deadline,
                                    strike("CHAL-8", call),
                                ));
                                continue;
                            }
                        }
                        if state == DEMANDED && !batch.processed {
                            let at = batch.demands.get(&index).map_or(0, |d| d.1);
                            actions.push((
                                claim.amount,
                                *batch_id,
                                index,
                                deadline,
                                AuditAction::Answer(shown, at),
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
        // A release while debts are outstanding goes to the debt pool (EXIT-16): settled below.
        let mut released = false;
        // The most valuable claims first.
        actions.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        for (amount, batch_id, index, deadline, action) in actions {
            let Some(tree) = self.batch_tree(batch_id) else { continue };
            let Some(c) = Self::claim_ref(batch_id, index, &tree) else { continue };
            let processed = self.batches.lock().map.get(&batch_id).is_some_and(|b| b.processed);
            match action {
                AuditAction::Strike { rule, call } => {
                    let key = if processed {
                        format!("batch-release:{batch_id}:{index}")
                    } else {
                        format!("batch-strike:{batch_id}:{index}")
                    };
                    if self.action_done(&key)? {
                        continue;
                    }
                    let sent = match call {
                        StrikeCall::Invalid(s) => {
                            let call =
                                game.challengeBatchClaimInvalid(c, s.tx, s.proof, s.timestamp);
                            self.act(&key, call, U256::ZERO, ACTION_GAS).await?
                        }
                        StrikeCall::Spent(spend) => {
                            let call = game.challengeBatchClaimSpent(
                                c,
                                spend.tx,
                                U256::from(spend.input_index),
                                spend.signature,
                            );
                            self.act(&key, call, U256::ZERO, ACTION_GAS).await?
                        }
                        StrikeCall::Exited(s) => {
                            let s = s.unwrap_or(Shown {
                                tx: Bytes::new(),
                                proof: Bytes::new(),
                                timestamp: 0,
                            });
                            let call =
                                game.challengeBatchClaimExited(c, s.tx, s.proof, s.timestamp);
                            self.act(&key, call, U256::ZERO, ACTION_GAS).await?
                        }
                    };
                    if sent.is_none() {
                        let late = Late::Strike { batch_id, index, rule, released: processed };
                        self.note_pending(&key, late);
                    }
                    if let Some(l1_tx) = sent {
                        released |= processed;
                        self.mark_claim(batch_id, index, STRUCK);
                        info!(target: "watcher::batch", batch_id, index, rule, %amount, "batch claim struck");
                        self.event(Event::BatchClaimStruck {
                            batch_id,
                            index,
                            rule: rule.to_owned(),
                            released: processed,
                            l1_tx,
                        });
                        // A release has no deadline (EXIT-15): the reserve waits.
                        if !processed {
                            self.check_margin(&key, deadline).await;
                        }
                    } else if !self.action_done(&key)? {
                        complete = false; // refused or pending: the next step sends it again
                    }
                }
                AuditAction::Demand => {
                    let key = format!("batch-demand:{batch_id}:{index}");
                    if self.action_done(&key)? {
                        continue;
                    }
                    let bond = game.demandBondSize().call().await.map_err(l1)?;
                    let call = game.demandClaimProof(c);
                    let sent = self.act(&key, call, bond, ACTION_GAS).await?;
                    if sent.is_none() {
                        self.note_pending(&key, Late::Demand { batch_id, index });
                    }
                    if let Some(l1_tx) = sent {
                        self.mark_claim(batch_id, index, DEMANDED);
                        self.event(Event::BatchClaimDemanded { batch_id, index, l1_tx });
                        self.check_margin(&key, deadline).await;
                    } else if !self.action_done(&key)? {
                        complete = false;
                    }
                }
                AuditAction::Answer(s, at) => {
                    let key = format!("batch-answer:{batch_id}:{index}:{at}");
                    if self.action_done(&key)? {
                        continue;
                    }
                    let call = game.answerClaimDemand(c, s.tx, s.proof, s.timestamp);
                    let sent = self.act(&key, call, U256::ZERO, ACTION_GAS).await?;
                    if sent.is_none() {
                        self.note_pending(&key, Late::Answer { batch_id, index });
                    }
                    if let Some(l1_tx) = sent {
                        self.mark_claim(batch_id, index, LIVE);
                        self.event(Event::BatchDemandAnswered { batch_id, index, l1_tx });
                        self.check_margin(&key, deadline).await;
                    } else if !self.action_done(&key)? {
                        complete = false;
                    }
                }
                AuditAction::ChallengeExit(pos) => {
                    let key = format!("batch-claimed-exit:{}", pos.to_u128());
                    if self.action_done(&key)? {
                        continue;
                    }
                    // The contract takes the claim's place in its batch; owner and amount are
                    // the exit's own.
                    let call = self.standard.challengeStandardExitBatchClaimed(
                        pos.to_u256(),
                        c.batchId,
                        c.index,
                        c.proof,
                    );
                    let sent = self.act(&key, call, U256::ZERO, ACTION_GAS).await?;
                    if sent.is_none() {
                        self.note_pending(&key, Late::ChallengeExit { pos, batch_id, index });
                    }
                    if let Some(l1_tx) = sent {
                        self.event(Event::StandardExitOfClaimChallenged {
                            utxo_pos: pos.to_string(),
                            batch_id,
                            index,
                            l1_tx,
                        });
                        self.check_margin(&key, deadline).await;
                    } else if !self.action_done(&key)? {
                        complete = false;
                    }
                }
            }
        }
        self.persist_batches()?;
        if complete {
            self.batches.lock().audited = Some(signature);
        }
        if released {
            // The money the released claims held back repays the exits they displaced only
            // once settled (EXIT-16), whether or not this watcher processes exits (WATCH-10).
            self.settle_debts().await?;
        }
        Ok(())
    }

    /// Keeps what action `key` would report, if its transaction went out and is still pending
    /// (not when it was refused: nothing to find mined then).
    fn note_pending(&self, key: &str, late: Late) {
        if self.sender.attempts_of(key) > 0 {
            self.batches.lock().pending.insert(key.to_owned(), late);
        }
    }

    /// Reports the audit's pending actions found mined since (recorded as done, with their
    /// events, as if their wait had not run out) and forgets those settled otherwise (reverted,
    /// or sent again and mined through the audit's own path). Returns whether a mined one
    /// released a claim's reserve (EXIT-16: debts to settle).
    async fn report_late_landings(&self) -> Result<bool, WatcherError> {
        let pending: Vec<(String, Late)> =
            self.batches.lock().pending.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut released = false;
        for (key, late) in pending {
            let Some(l1_tx) = self.landed_late(&key).await? else {
                if self.sender.attempts_of(&key) == 0 || self.action_done(&key)? {
                    self.batches.lock().pending.remove(&key);
                }
                continue;
            };
            self.batches.lock().pending.remove(&key);
            info!(target: "watcher::batch", action = %key, %l1_tx, "pending action found mined");
            match late {
                Late::Strike { batch_id, index, rule, released: r } => {
                    released |= r;
                    self.mark_claim(batch_id, index, STRUCK);
                    let rule = rule.to_owned();
                    self.event(Event::BatchClaimStruck {
                        batch_id,
                        index,
                        rule,
                        released: r,
                        l1_tx,
                    });
                }
                Late::Demand { batch_id, index } => {
                    self.mark_claim(batch_id, index, DEMANDED);
                    self.event(Event::BatchClaimDemanded { batch_id, index, l1_tx });
                }
                Late::Answer { batch_id, index } => {
                    self.mark_claim(batch_id, index, LIVE);
                    self.event(Event::BatchDemandAnswered { batch_id, index, l1_tx });
                }
                Late::ChallengeExit { pos, batch_id, index } => {
                    let utxo_pos = pos.to_string();
                    self.event(Event::StandardExitOfClaimChallenged {
                        utxo_pos,
                        batch_id,
                        index,
                        l1_tx,
                    });
                }
            }
        }
        Ok(released)
    }

    /// Records a claim state the tower's own action set (its event confirms it later).
    fn mark_claim(&self, batch_id: u64, index: u64, state: u8) {
        let mut b = self.batches.lock();
        if let Some(batch) = b.map.get_mut(&batch_id) {
            if state == LIVE {
                batch.states.remove(&index);
            } else {
                batch.states.insert(index, state);
            }
        }
        b.dirty.insert(batch_id);
        b.changes += 1;
    }

    /// Whether a proven claim's output was exited another way (CHAL-8), or a standard exit of it
    /// started after the claim's batch (CHAL-10). Reads L1 only for outputs with an exit mark
    /// other than batch claims, once per change of their marks.
    ///
    /// Which came first is decided exactly as the contracts decide it: by the L1 timestamps
    /// `batchStart(batchId)` and the exit's `startedAt`. CHAL-10 only if the batch started
    /// strictly before the exit (`StandardExitStartedFirst` otherwise); CHAL-8 on an active
    /// exit only if it started no later than the batch, on a settled one always. Two L1 blocks
    /// may share a second: at equal times the exit stands and the claim is struck, whichever
    /// block came first — an order by (block, log index) would send a CHAL-10 that reverts and
    /// leave the duplicate claim unstruck.
    async fn exit_state(
        &self,
        batch_id: u64,
        claim: &Claim,
        shown: &Shown,
    ) -> Result<ExitState, WatcherError> {
        let marks = {
            let view = self.view.lock();
            view.exiting
                .marks(claim.pos)
                .iter()
                .filter(|m| !matches!(m.source, plasma_spec::ExitSource::BatchClaim { .. }))
                .count()
        };
        if marks == 0 {
            return Ok(ExitState::None);
        }
        if self.batches.lock().exit_checked.get(&claim.pos) == Some(&marks) {
            return Ok(ExitState::None);
        }
        /// `StandardExitGame.Status`: Active, Settled.
        const ACTIVE: u8 = 1;
        const SETTLED: u8 = 3;
        let exit = self.standard.exits(claim.pos.to_u256()).call().await.map_err(l1)?;
        if exit.status == SETTLED {
            return Ok(ExitState::Exited(None));
        }
        if exit.status == ACTIVE {
            let Some(game) = &self.batch_game else { return Ok(ExitState::None) };
            let batch_started_at =
                game.batchStart(U256::from(batch_id)).call().await.map_err(l1)?.startedAt;
            return Ok(if batch_started_at < exit.startedAt {
                ExitState::ClaimFirst
            } else {
                ExitState::Exited(None)
            });
        }
        let tx = plasma_spec::Transaction::decode(&shown.tx).map_err(st)?;
        let id = tx.output_id(claim.pos.output_index(), claim.pos);
        if self.framework.isOutputFinalized(id).call().await.map_err(l1)? {
            return Ok(ExitState::Exited(Some(shown.clone())));
        }
        self.batches.lock().exit_checked.insert(claim.pos, marks);
        Ok(ExitState::None)
    }
}

/// What became of a proven claim's output outside its batch.
enum ExitState {
    None,
    /// An active standard exit of it started strictly after the claim's batch: CHAL-10 defeats
    /// the exit.
    ClaimFirst,
    /// A standard exit settled, or active and started no later than the batch, or its output
    /// finalized: CHAL-8 strikes it
    /// (with the transaction shown when the output id must be proven).
    Exited(Option<Shown>),
}

/// WATCH-13 for batch exits: the claims `todo` (with their amounts) that `balance` pays for,
/// richest first, with one `batch_bond` per `startBatchExit` transaction they take. The
/// transactions are counted as [`chunk_claims`] cuts them (by claims, calldata and gas: a few
/// hundred owners already take two), not as batches of [`MAX_CLAIMS_PER_TX`] claims, which
/// reserved one bond for them all and sent a last transaction the balance could not pay for.
/// Each further transaction's base gas is reserved too.
fn plan_claims(
    todo: &[(U256, Candidate)],
    balance: U256,
    batch_bond: U256,
    costs: &budget::ExitCosts,
) -> budget::Plan<Candidate> {
    // Each transaction past the first also pays its own base gas, which `budget::plan` counts
    // once per batch of `MAX_CLAIMS_PER_TX` (over-reserved when it makes several: conservative).
    let base = U256::from(costs.gas_per_batch) * U256::from(costs.gas_price);
    let mut batches_paid = 1u64;
    loop {
        let reserved = batch_bond * U256::from(batches_paid) + base * U256::from(batches_paid - 1);
        let plan =
            budget::plan(todo.to_vec(), balance.saturating_sub(reserved), costs, MAX_CLAIMS_PER_TX);
        let needed = chunk_claims(plan.batches.iter().flatten().cloned().collect()).len() as u64;
        if needed <= batches_paid || batches_paid >= 64 {
            return plan;
        }
        batches_paid = needed;
    }
}

/// Gas limit of a `startBatchExit` of `groups` groups and `claims` claims.
fn batch_gas(groups: usize, claims: usize) -> u64 {
    (BATCH_BASE_GAS + BATCH_GAS_PER_GROUP * groups as u64 + BATCH_GAS_PER_CLAIM * claims as u64)
        .min(MAX_TX_GAS)
}

/// ABI bytes of one group of `claims` claims with an authorization signature (head, signature
/// and claims, each padded).
fn group_calldata(claims: usize) -> usize {
    32 * 8 + 96 + (claims * bx::CLAIM_BYTES).div_ceil(32) * 32
}

/// Cuts the chosen claims into `startBatchExit` transactions: per token, one group per owner with
/// its positions ascending, owners in the order of their oldest output, each transaction within
/// [`MAX_CLAIMS_PER_TX`] claims, [`MAX_CALLDATA`] bytes and [`MAX_TX_GAS`] gas (an owner with
/// more claims than fit continues in the next transaction, above its own watermark).
fn chunk_claims(chosen: Vec<Candidate>) -> Vec<Chunk> {
    let mut by_token: BTreeMap<Address, BTreeMap<Address, Vec<Candidate>>> = BTreeMap::new();
    for c in chosen {
        by_token.entry(c.token).or_default().entry(c.owner).or_default().push(c);
    }
    let mut out = Vec::new();
    for (token, owners) in by_token {
        let mut owners: Vec<(Address, Vec<Candidate>)> = owners.into_iter().collect();
        for (_, cs) in &mut owners {
            cs.sort_by_key(|c| c.pos);
        }
        owners.sort_by_key(|(_, cs)| cs.first().map(|c| c.pos));
        let mut chunk: Vec<(Address, Vec<Candidate>)> = Vec::new();
        let (mut claims, mut bytes, mut groups) = (0usize, 4 + 32 * 5, 0usize);
        for (owner, cs) in owners {
            let mut rest = cs.as_slice();
            while !rest.is_empty() {
                // How many of this owner's claims fit the open transaction.
                let mut fit = rest.len().min(MAX_CLAIMS_PER_TX - claims);
                while fit > 0
                    && (bytes + group_calldata(fit) > MAX_CALLDATA
                        || batch_gas(groups + 1, claims + fit) >= MAX_TX_GAS)
                {
                    fit -= 1;
                }
                if fit == 0 {
                    if chunk.is_empty() {
                        break; // cannot happen with these limits; never loop forever
                    }
                    out.push((token, std::mem::take(&mut chunk)));
                    (claims, bytes, groups) = (0, 4 + 32 * 5, 0);
                    continue;
                }
                chunk.push((owner, rest[..fit].to_vec()));
                claims += fit;
                bytes += group_calldata(fit);
                groups += 1;
                rest = &rest[fit..];
            }
        }
        if !chunk.is_empty() {
            out.push((token, chunk));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(owner: u8, blknum: u64, amount: u64) -> Candidate {
        Candidate {
            owner: Address::repeat_byte(owner),
            token: Address::ZERO,
            pos: UtxoPos::new(blknum, 0, 0).unwrap(),
            amount: U256::from(amount),
        }
    }

    /// Audit F (WATCH-13): 400 guarded owners with one claim each take two `startBatchExit`
    /// transactions (calldata), so two batch bonds. A balance that pays every claim and one bond
    /// planned them all and the second transaction was refused for want of funds; the plan must
    /// leave out what the second bond costs, the poorest first, and every transaction it plans
    /// must be paid.
    #[test]
    fn a_plan_reserves_a_batch_bond_per_transaction_it_will_send() {
        let costs = budget::ExitCosts {
            bond: U256::from(8_000_000_000_000_000u64),
            gas_price: 3_000_000_000,
            gas_per_batch: BATCH_BASE_GAS,
            gas_per_output: BATCH_GAS_PER_CLAIM + BATCH_GAS_PER_GROUP + PAYOUT_GAS_PER_CLAIM,
        };
        let batch_bond = U256::from(4_000_000_000_000_000u64);
        let todo: Vec<(U256, Candidate)> = (0..400u16)
            .map(|i| {
                let c = Candidate {
                    owner: Address::left_padding_from(&(u32::from(i) + 1).to_be_bytes()),
                    token: Address::ZERO,
                    pos: UtxoPos::new(1 + u64::from(i), 0, 0).unwrap(),
                    amount: U256::from(10u64.pow(18) + u64::from(i)),
                };
                (c.amount, c)
            })
            .collect();
        let all = todo.len();
        assert_eq!(chunk_claims(todo.iter().map(|t| t.1.clone()).collect()).len(), 2);
        // Every claim and one batch bond (with gas): short of the second bond.
        let balance = batch_bond + costs.batch(all);
        let plan = plan_claims(&todo, balance, batch_bond, &costs);
        let chosen: Vec<Candidate> = plan.batches.iter().flatten().cloned().collect();
        let txs = chunk_claims(chosen.clone());
        let mut spent = U256::ZERO;
        for (_, groups) in &txs {
            let n: usize = groups.iter().map(|(_, cs)| cs.len()).sum();
            spent += batch_bond + costs.batch(n);
        }
        assert!(spent <= balance, "{} transactions planned, {spent} > {balance}", txs.len());
        assert!(chosen.len() < all && chosen.len() >= all - 2, "{} of {all}", chosen.len());
        // The ones left out are the poorest.
        let least = chosen.iter().map(|c| c.amount).min().unwrap();
        assert!(plan.unaffordable.iter().all(|c| c.amount < least));
    }

    #[test]
    fn chunks_respect_every_limit_and_keep_groups_ascending() {
        // 9,000 claims of one owner: two transactions, the second continuing above the first.
        let one: Vec<Candidate> = (1..=9_000).rev().map(|b| cand(1, b, 5)).collect();
        let chunks = chunk_claims(one);
        assert_eq!(chunks.len(), 2);
        let (first, second) = (&chunks[0].1, &chunks[1].1);
        assert_eq!(first[0].1.len(), MAX_CLAIMS_PER_TX);
        assert!(first[0].1.windows(2).all(|w| w[0].pos < w[1].pos));
        assert!(first[0].1.last().unwrap().pos < second[0].1[0].pos);
        // 2,000 owners of one output each: calldata and gas bound the groups per transaction.
        let many: Vec<Candidate> = (0..2_000u64).map(|i| cand((i % 250) as u8, 1 + i, 5)).collect();
        let chunks = chunk_claims(many);
        let total: usize = chunks.iter().flat_map(|(_, g)| g.iter().map(|(_, c)| c.len())).sum();
        assert_eq!(total, 2_000);
        for (_, groups) in &chunks {
            let claims: usize = groups.iter().map(|(_, c)| c.len()).sum();
            let bytes: usize =
                164 + groups.iter().map(|(_, c)| group_calldata(c.len())).sum::<usize>();
            assert!(claims <= MAX_CLAIMS_PER_TX && bytes <= MAX_CALLDATA);
            assert!(batch_gas(groups.len(), claims) < MAX_TX_GAS);
        }
    }

    #[test]
    fn a_batch_waits_for_all_its_groups_and_rebuilds_in_index_order() {
        let claims = [(UtxoPos::new(1, 0, 0).unwrap(), U256::from(7u8))];
        let packed: Bytes = bx::encode_claims(&claims).unwrap().into();
        let mut batch = WatchedBatch {
            started: Some(BatchStart {
                token: Address::ZERO,
                exitor: Address::ZERO,
                root: B256::ZERO,
                count: 2,
                started_at: 0,
                exitable_at: 0,
            }),
            ..WatchedBatch::default()
        };
        batch.groups.insert(1, (Address::repeat_byte(2), packed.clone()));
        assert!(batch.claims().is_none(), "group 0 missing");
        batch.groups.insert(0, (Address::repeat_byte(1), packed));
        let all = batch.claims().unwrap();
        assert_eq!(all[0].owner, Address::repeat_byte(1));
        assert_eq!(all[1].owner, Address::repeat_byte(2));
    }
}
