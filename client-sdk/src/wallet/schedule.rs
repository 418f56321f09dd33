//! "Is my exit ready, and when?" (spec: EXIT-2, EXIT-3, EXIT-5, EXIT-7, EXIT-11, EXIT-13).
//!
//! Every time comes from L1, never from a local guess: an exit's exitable time is the top 64
//! bits of the priority the framework queued it under (`ExitQueued`, EXIT-3), or for an in-flight
//! exit not queued yet the `exitableAt` its game recorded at start (EXIT-7). "Now" is the latest
//! L1 block's timestamp, the contracts' clock. Which exits are this wallet's is read from L1
//! events as well: standard exits of its outputs (`ExitStarted`, owner indexed, whoever started
//! them), in-flight exits it started or where an item of its own is piggybacked
//! (`InFlightExitStarted`, `InFlightExitPiggybacked`), and its batch claims (`BatchExitGroup`,
//! owner indexed) — so the answer holds for exits a watchtower started for it, and for a store
//! restored from scratch.
//!
//! How many exits are ahead of one in its token's queue, exactly, from L1 events alone: every
//! exit queued later than a `processExits` call is exitable after that call's block (a start is
//! exitable at least a period later, a piggyback comes in phase 1, before its exit's exitable
//! time), so the exits processed so far are always the smallest priorities queued so far, and the
//! queue holds the queued priorities minus the `Σ ExitsProcessed.count` smallest.

use super::{Wallet, l1};
use crate::error::SdkError;
use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::{Filter, Log},
    sol_types::SolEvent,
};
use plasma_contracts::{BatchExitGame, InFlightExitGame, PlasmaFramework, StandardExitGame};
use plasma_spec::{batch_exit as bx, split_priority};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// When one exit of this wallet can be processed, and what stands in its way
/// ([`Wallet::exit_schedule`]). JSON: camelCase, positions and amounts as decimal strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitTiming {
    /// The exited output's position (decimal). For an in-flight exit, its queue position: its
    /// youngest input's (EXIT-7); its outputs have no position known to be on chain.
    pub utxo_pos: String,
    /// `standard`, `inFlight` or `batchClaim`.
    pub kind: String,
    /// Standard: `active`, `challenged`, `processed`. In-flight: `open`, `challenged` (a
    /// canonicity challenge stands), `notPiggybacked` (not queued for this token), `processed`,
    /// `deleted`. Batch claim: `live`, `demanded`, `struck`, `processed` (awaiting its payout),
    /// `paid`.
    pub state: String,
    /// When it can be processed (unix seconds, from L1): the exitable time of its queue priority
    /// (EXIT-3), or the one its in-flight exit recorded at start (EXIT-7).
    pub exitable_at: Option<u64>,
    /// Whether the next step can be taken now, by L1's clock: `processExits` settles it (its
    /// exitable time has passed and nothing voids it; the exits ahead of it, all due too, are
    /// settled by the same call, see `exits_ahead`), or, for a claim of a processed batch,
    /// `payoutBatchClaims` pays it.
    pub ready: bool,
    /// What stands in its way besides time: a challenge, a demand, nothing piggybacked, older
    /// exits of the same token ahead in the queue; `None` when nothing does.
    pub blocked_by: Option<String>,
    /// The exit's id on L1: the position (standard), the payment's hash (in-flight), the batch
    /// (batch claim).
    pub exit_id: String,
    /// The token of its queue.
    pub token: Address,
    /// What it pays this wallet if it settles as things stand (decimal, base units).
    pub amount: String,
    /// Exits of the same token ahead of it in the queue now (`None`: not queued).
    pub exits_ahead: Option<u64>,
}

/// An exit found, before its place in the queue is known.
struct Found {
    timing: ExitTiming,
    /// Where its `ExitQueued` event is: the game and the exit id (`None`: not in the queue).
    queued_as: Option<(Address, U256)>,
    /// Its exitable time is known without the queue (in-flight exits record it at start).
    live: bool,
}

/// A token's queue as its events show it.
#[derive(Default)]
struct Queue {
    /// Every priority ever queued, with its game and exit id.
    queued: BTreeMap<U256, (Address, U256)>,
    /// By game and exit id.
    by_exit: HashMap<(Address, U256), U256>,
    /// `Σ ExitsProcessed.count`: the smallest this many are gone.
    processed: u64,
    /// The head now (`queueHead`), 0 when empty.
    head: U256,
}

/// An item of an in-flight exit: (is an output, index).
type Item = (bool, u8);

/// Blocks per `eth_getLogs` (most providers cap a range).
const LOG_RANGE: u64 = 50_000;

fn topic(a: Address) -> B256 {
    B256::left_padding_from(a.as_slice())
}

fn timing(kind: &str, pos: u128, exit_id: String, token: Address, amount: U256) -> ExitTiming {
    ExitTiming {
        utxo_pos: pos.to_string(),
        kind: kind.into(),
        state: String::new(),
        exitable_at: None,
        ready: false,
        blocked_by: None,
        exit_id,
        token,
        amount: amount.to_string(),
        exits_ahead: None,
    }
}

impl Wallet {
    /// Every exit this wallet started or holds a stake in — standard exits of its outputs,
    /// in-flight exits it started or piggybacked (one row per token), claims of its outputs in
    /// batch exits — with when each can be processed, whether it can be now, and what stands in
    /// its way; ordered by exitable time. Reads L1 only (events since the deployment, the games'
    /// views, the queue heads): works with the operator down. See [`ExitTiming`].
    pub async fn exit_schedule(&self) -> Result<Vec<ExitTiming>, SdkError> {
        let head = self.provider.get_block_number().await.map_err(l1)?;
        let now = self.l1_now().await?;
        let from = self.deployment_block.unwrap_or(0);
        let me = topic(self.address());
        let mut found = self.standard_exits(me, from, head).await?;
        found.extend(self.in_flight_exits(me, from, head, now).await?);
        found.extend(self.batch_claims(me, from, head).await?);
        // The queues of the tokens that have a live queued exit of this wallet.
        let tokens: BTreeSet<Address> = found
            .iter()
            .filter(|f| f.live && f.queued_as.is_some())
            .map(|f| f.timing.token)
            .collect();
        let mut queues = HashMap::new();
        for token in tokens {
            queues.insert(token, self.queue(token, from, head).await?);
        }
        let mut out = Vec::new();
        for mut f in found {
            let t = &mut f.timing;
            let queue = f.queued_as.and_then(|key| {
                queues.get(&t.token).and_then(|q| q.by_exit.get(&key).map(|p| (q, *p)))
            });
            if let Some((_, priority)) = queue {
                t.exitable_at = Some(split_priority(priority).0);
            }
            if f.live {
                if let Some((q, priority)) = queue {
                    let older = q.queued.range(..priority).count() as u64;
                    let ahead = older.saturating_sub(q.processed);
                    t.exits_ahead = Some(ahead);
                    if ahead > 0 && t.blocked_by.is_none() {
                        t.blocked_by = Some(describe_ahead(q, ahead, t.token));
                    }
                }
                t.ready = t.exitable_at.is_some_and(|at| at <= now);
            }
            out.push(f.timing);
        }
        out.sort_by(|a, b| {
            (a.exitable_at.unwrap_or(u64::MAX), &a.kind, &a.exit_id, &a.utxo_pos).cmp(&(
                b.exitable_at.unwrap_or(u64::MAX),
                &b.kind,
                &b.exit_id,
                &b.utxo_pos,
            ))
        });
        tracing::debug!(exits = out.len(), now, "exit schedule read from L1");
        Ok(out)
    }

    /// Logs of `filter` over L1 blocks `from..=to`, [`LOG_RANGE`] blocks per request.
    async fn logs_in(&self, filter: &Filter, from: u64, to: u64) -> Result<Vec<Log>, SdkError> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(LOG_RANGE - 1));
            let f = filter.clone().from_block(start).to_block(end);
            out.extend(self.provider.get_logs(&f).await.map_err(l1)?);
            start = end + 1;
        }
        Ok(out)
    }

    /// Standard exits of this owner's outputs (EXIT-1, EXIT-2, EXIT-4, EXIT-5).
    async fn standard_exits(&self, me: B256, from: u64, to: u64) -> Result<Vec<Found>, SdkError> {
        let filter = Filter::new()
            .address(*self.standard.address())
            .event_signature(StandardExitGame::ExitStarted::SIGNATURE_HASH)
            .topic2(me);
        let mut out = Vec::new();
        for log in self.logs_in(&filter, from, to).await? {
            let Ok(e) = log.log_decode::<StandardExitGame::ExitStarted>() else { continue };
            let e = e.inner.data;
            let Ok(pos) = u128::try_from(e.exitId) else { continue };
            let mut t = timing("standard", pos, pos.to_string(), e.token, e.amount);
            t.exitable_at = Some(e.exitableAt);
            let live = match self.standard.exits(e.exitId).call().await.map_err(l1)?.status {
                1 => {
                    t.state = "active".into();
                    if self.framework.isOutputFinalized(e.outputId).call().await.map_err(l1)? {
                        t.blocked_by = Some(
                            "its output was finalized by another exit (OUT-2): processing it \
                             pays nothing (void, EXIT-5) and returns its bond"
                                .into(),
                        );
                    }
                    true
                }
                2 => {
                    t.state = "challenged".into();
                    t.blocked_by = Some(
                        "challenged with a spend its owner signed (EXIT-4): it is skipped at \
                         processing and pays nothing"
                            .into(),
                    );
                    false
                }
                3 => {
                    t.state = "processed".into();
                    false
                }
                _ => continue, // a start a reorg undid
            };
            out.push(Found {
                timing: t,
                queued_as: Some((*self.standard.address(), e.exitId)),
                live,
            });
        }
        Ok(out)
    }

    /// In-flight exits this wallet started, or where an item of its own is piggybacked (EXIT-6,
    /// EXIT-8, EXIT-11): one row per token of its items (of the payment's first output's token
    /// when it has none).
    async fn in_flight_exits(
        &self,
        me: B256,
        from: u64,
        to: u64,
        now: u64,
    ) -> Result<Vec<Found>, SdkError> {
        let game = *self.in_flight.address();
        let started = Filter::new()
            .address(game)
            .event_signature(InFlightExitGame::InFlightExitStarted::SIGNATURE_HASH)
            .topic2(me);
        let piggybacked = Filter::new()
            .address(game)
            .event_signature(InFlightExitGame::InFlightExitPiggybacked::SIGNATURE_HASH)
            .topic2(me);
        // Exit id → this wallet's items (is_output, index).
        let mut exits: BTreeMap<U256, BTreeSet<Item>> = BTreeMap::new();
        for log in self.logs_in(&started, from, to).await? {
            if let Ok(e) = log.log_decode::<InFlightExitGame::InFlightExitStarted>() {
                exits.entry(e.inner.exitId).or_default();
            }
        }
        for log in self.logs_in(&piggybacked, from, to).await? {
            if let Ok(e) = log.log_decode::<InFlightExitGame::InFlightExitPiggybacked>() {
                exits.entry(e.inner.exitId).or_default().insert((e.inner.isOutput, e.inner.index));
            }
        }
        if exits.is_empty() {
            return Ok(Vec::new());
        }
        let period = self.framework.minExitPeriod().call().await.map_err(l1)?;
        let period = u64::try_from(period).unwrap_or(u64::MAX);
        let mut out = Vec::new();
        for (exit_id, items) in exits {
            let e = self.in_flight.inFlightExit(exit_id).call().await.map_err(l1)?;
            if e.initiator == Address::ZERO {
                continue; // a start a reorg undid
            }
            let hash = B256::from(exit_id.to_be_bytes());
            let pos = u128::try_from(e.position).unwrap_or_default();
            // This wallet's items by token: (item, amount).
            let mut by_token: BTreeMap<Address, Vec<(Item, U256)>> = BTreeMap::new();
            for &(is_output, index) in &items {
                let (token, amount) = if is_output {
                    let o = self
                        .in_flight
                        .inFlightExitOutput(exit_id, U256::from(index))
                        .call()
                        .await
                        .map_err(l1)?;
                    (o.token, o.amount)
                } else {
                    let i = self
                        .in_flight
                        .inFlightExitInput(exit_id, U256::from(index))
                        .call()
                        .await
                        .map_err(l1)?;
                    (i.token, i.amount)
                };
                by_token.entry(token).or_default().push(((is_output, index), amount));
            }
            if by_token.is_empty() {
                let first = self
                    .in_flight
                    .inFlightExitOutput(exit_id, U256::ZERO)
                    .call()
                    .await
                    .map_err(l1)?;
                by_token.insert(first.token, Vec::new());
            }
            let phase_end = e.startedAt.saturating_add(period / 2);
            for (token, mine) in by_token {
                let bit = |(is_output, index): Item| {
                    1u16 << (u16::from(index) + if is_output { 5 } else { 0 })
                };
                let standing: Vec<_> =
                    mine.iter().filter(|(item, _)| e.piggybacks & bit(*item) != 0).collect();
                // What it pays this wallet under the verdict as it stands (EXIT-11).
                let canonical = !e.nonCanonical;
                let amount = standing
                    .iter()
                    .filter(|((is_output, _), _)| *is_output == canonical)
                    .fold(U256::ZERO, |a, (_, v)| a + *v);
                let mut t = timing("inFlight", pos, hash.to_string(), token, amount);
                t.exitable_at = Some(e.exitableAt);
                let queued = self.in_flight.isQueued(exit_id, token).call().await.map_err(l1)?;
                let settled = queued && e.verdict != 0 && standing.is_empty();
                let live = if e.verdict == 3 {
                    t.state = "deleted".into();
                    t.blocked_by = Some(
                        "deleted with nothing piggybacked (EXIT-11): it pays nothing; a party may \
                         start it again"
                            .into(),
                    );
                    false
                } else if settled {
                    t.state = "processed".into();
                    false
                } else if !queued {
                    t.state = "notPiggybacked".into();
                    t.blocked_by = Some(if now < phase_end {
                        format!(
                            "nothing of token {token} is piggybacked, so it is not queued and \
                             pays nothing (EXIT-8): piggyback before phase 1 ends at {phase_end}"
                        )
                    } else {
                        format!(
                            "nothing of token {token} was piggybacked in phase 1 (ended at \
                             {phase_end}): it pays nothing; if nothing at all is, anyone may \
                             delete it and its bond goes back (EXIT-11)"
                        )
                    });
                    false
                } else {
                    t.state = if e.nonCanonical { "challenged" } else { "open" }.into();
                    if standing.is_empty() {
                        t.blocked_by = Some(
                            "no item of this wallet is piggybacked (any more): it pays this \
                             wallet nothing"
                                .into(),
                        );
                    } else if e.nonCanonical {
                        t.blocked_by = Some(
                            "a canonicity challenge stands (CHAL-1): unless the payment's \
                             inclusion answers it before processing (CHAL-2), it settles \
                             non-canonical: piggybacked inputs are paid, outputs are not"
                                .into(),
                        );
                    }
                    true
                };
                out.push(Found {
                    timing: t,
                    queued_as: Some((*self.in_flight.address(), exit_id)),
                    live,
                });
            }
        }
        Ok(out)
    }

    /// Claims of this owner's outputs in batch exits (EXIT-12 … EXIT-15): one row per claim.
    async fn batch_claims(&self, me: B256, from: u64, to: u64) -> Result<Vec<Found>, SdkError> {
        let Some(game) = &self.batch else { return Ok(Vec::new()) };
        let groups = Filter::new()
            .address(*game.address())
            .event_signature(BatchExitGame::BatchExitGroup::SIGNATURE_HASH)
            .topic2(me);
        let mut out = Vec::new();
        let mut batches = HashMap::new();
        for log in self.logs_in(&groups, from, to).await? {
            let Ok(e) = log.log_decode::<BatchExitGame::BatchExitGroup>() else { continue };
            let e = e.inner.data;
            let Ok(claims) = bx::decode_claims(&e.claims) else { continue };
            let batch = match batches.get(&e.batchId) {
                Some(b) => b,
                None => {
                    let b = game.batches(e.batchId).call().await.map_err(l1)?;
                    batches.entry(e.batchId).or_insert(b)
                }
            };
            for (i, (pos, amount)) in claims.into_iter().enumerate() {
                let index = e.firstIndex + U256::from(i);
                let state = game.claimState(e.batchId, index).call().await.map_err(l1)?;
                let mut t =
                    timing("batchClaim", pos.to_u128(), e.batchId.to_string(), batch.token, amount);
                t.exitable_at = Some(batch.exitableAt);
                let processed = batch.status == 2;
                let live = match (state, processed) {
                    (2, _) => {
                        t.state = "struck".into();
                        t.blocked_by = Some(
                            "struck by a challenge (CHAL-6 … CHAL-9): it is never paid".into(),
                        );
                        false
                    }
                    (3, _) => {
                        t.state = "paid".into();
                        false
                    }
                    (_, true) => {
                        t.state = "processed".into();
                        t.blocked_by = Some(
                            "its batch is processed and the claim not paid yet: pay it out \
                             (payoutBatchClaims, EXIT-15)"
                                .into(),
                        );
                        t.ready = true;
                        false
                    }
                    (1, false) => {
                        t.state = "demanded".into();
                        t.blocked_by = Some(
                            "its proof is demanded (CHAL-9): unless answered before the batch is \
                             processed, the claim is struck"
                                .into(),
                        );
                        true
                    }
                    _ => {
                        t.state = "live".into();
                        true
                    }
                };
                out.push(Found { timing: t, queued_as: Some((*game.address(), e.batchId)), live });
            }
        }
        Ok(out)
    }

    /// `token`'s queue from its events (see the module's note) and its head now.
    async fn queue(&self, token: Address, from: u64, to: u64) -> Result<Queue, SdkError> {
        let framework = *self.framework.address();
        let queued = Filter::new()
            .address(framework)
            .event_signature(PlasmaFramework::ExitQueued::SIGNATURE_HASH)
            .topic1(topic(token));
        let processed = Filter::new()
            .address(framework)
            .event_signature(PlasmaFramework::ExitsProcessed::SIGNATURE_HASH)
            .topic1(topic(token));
        let mut q = Queue::default();
        for log in self.logs_in(&queued, from, to).await? {
            if let Ok(e) = log.log_decode::<PlasmaFramework::ExitQueued>() {
                let e = e.inner.data;
                q.queued.insert(e.priority, (e.game, e.exitId));
                q.by_exit.insert((e.game, e.exitId), e.priority);
            }
        }
        for log in self.logs_in(&processed, from, to).await? {
            if let Ok(e) = log.log_decode::<PlasmaFramework::ExitsProcessed>() {
                q.processed += u64::try_from(e.inner.count).unwrap_or(u64::MAX);
            }
        }
        q.head = self.framework.queueHead(token).call().await.map_err(l1)?.head;
        Ok(q)
    }
}

/// What an exit waits behind: how many, and the head.
fn describe_ahead(q: &Queue, ahead: u64, token: Address) -> String {
    let head = match q.queued.get(&q.head) {
        Some((game, id)) => format!(
            "the head is exit {id} of game {game}, exitable at {}",
            split_priority(q.head).0
        ),
        None => "the head is not known from the events read".into(),
    };
    format!(
        "{ahead} older exit(s) of token {token} ahead in the queue ({head}): processExits settles \
         them first, so a call with maxExits >= {} settles this one too",
        ahead + 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use plasma_spec::{UtxoPos, exit_priority};

    #[test]
    fn the_exits_ahead_are_the_older_queued_minus_the_processed() {
        let p = |at: u64, pos: u128, nonce: u64| {
            exit_priority(at, UtxoPos::from_u128(pos).unwrap(), nonce)
        };
        let game = Address::repeat_byte(1);
        let mut q = Queue::default();
        for (i, pr) in
            [p(100, 1_000_000_000, 0), p(100, 2_000_000_000, 1), p(160, 1_000_000_000, 2)]
                .into_iter()
                .enumerate()
        {
            q.queued.insert(pr, (game, U256::from(i)));
        }
        q.processed = 1;
        q.head = p(100, 2_000_000_000, 1);
        let mine = p(160, 1_000_000_000, 2);
        let ahead = (q.queued.range(..mine).count() as u64).saturating_sub(q.processed);
        assert_eq!(ahead, 1);
        let text = describe_ahead(&q, ahead, Address::ZERO);
        assert!(text.contains("exit 1 of game"), "{text}");
        assert!(text.contains("exitable at 100"), "{text}");
        assert!(text.contains("maxExits >= 2"), "{text}");
    }
}
