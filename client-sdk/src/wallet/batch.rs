//! Batch exits from the wallet (spec: EXIT-12 … EXIT-15, WALLET-1): all of a wallet's outputs
//! claimed in as few L1 transactions as the limits allow, then paid out once the batch is
//! processed. The claim records, the claim tree and its proofs are `plasma_spec::batch_exit`'s;
//! nothing here encodes a claim by hand.
//!
//! Nothing needs the operator: a claim is built from the stored output (position, amount, the
//! youngest block's root and L1 timestamp), and a payout from the stored transaction and its
//! inclusion proof plus the batch's claim tree, rebuilt from the batch's `BatchExitGroup` events
//! on L1 (and checked against the root the batch emitted).

use super::{ExitReport, Wallet, l1, mined};
use crate::{
    error::SdkError,
    store::{BatchClaimRef, OutputStatus, StoredOutput, Touch},
    sync::unix_now,
};
use alloy::{
    contract::SolCallBuilder,
    primitives::{Address, B256, Bytes, TxHash, U256, aliases::U96},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, TransactionReceipt},
    sol_types::{SolCall, SolEvent, SolValue},
};
use plasma_contracts::{BatchExitGame, IBatchExitGame, PlasmaFramework};
use plasma_spec::{
    UtxoPos,
    batch_exit::{self as bx, Claim, ClaimTree},
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The bound batch exit game.
pub(super) type Game = BatchExitGame::BatchExitGameInstance<DynProvider>;

/// The batch exit game of the deployment, if it has one (a deployment older than batch exits
/// answers the view with an error or address zero).
pub(super) async fn bind(
    framework: &PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    provider: &DynProvider,
) -> Option<Game> {
    match framework.batchExitGame().call().await {
        Ok(a) if a != Address::ZERO => Some(BatchExitGame::new(a, provider.clone())),
        _ => None,
    }
}

/// Claims per `startBatchExit` by default: 5,000 claims are 100 kB of calldata, under the
/// 128 KiB most nodes' transaction pools accept, and about 10M gas, under the 2^24 a transaction
/// may use (EIP-7825).
pub const DEFAULT_BATCH_CLAIMS: usize = 5_000;
/// The most claims one transaction may carry whatever is asked (120 kB of claims).
pub const MAX_BATCH_CLAIMS_PER_TX: usize = 6_000;
/// The most gas one transaction may use (EIP-7825, Osaka).
pub const TX_GAS_CAP: u64 = 1 << 24;
/// Calldata one transaction may carry, with room for the ABI's head (transaction pools refuse
/// transactions over 128 KiB).
const MAX_CALLDATA: usize = 120_000;
/// `claimState` values (EXIT-12 … EXIT-15).
const LIVE: u8 = 0;
const DEMANDED: u8 = 1;
const STRUCK: u8 = 2;
const PAID: u8 = 3;

/// How [`Wallet::start_batch_exit_with`] splits its claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchExitOptions {
    /// Most claims per L1 transaction (one batch each), at most [`MAX_BATCH_CLAIMS_PER_TX`];
    /// fewer when the block gas limit (or 2^24) needs it.
    pub max_claims: usize,
}

impl Default for BatchExitOptions {
    fn default() -> Self {
        Self { max_claims: DEFAULT_BATCH_CLAIMS }
    }
}

/// One `startBatchExit` of a [`BatchExitReport`]: one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchChunk {
    /// The L1 transaction.
    pub l1_tx: TxHash,
    /// Its L1 block.
    pub l1_block: u64,
    /// The batch it started (0: the contract skipped the group, no batch).
    pub batch_id: u64,
    /// The token.
    pub token: Address,
    /// The positions claimed, ascending: claim `first_index + i` is `claims[i]`.
    pub claims: Vec<u128>,
    /// The index of the first claim in the batch.
    pub first_index: u32,
    /// Positions the contract skipped (EXIT-12: the group's authorization or watermark), with
    /// the reason; their claim bonds were credited back.
    pub skipped: Vec<(u128, String)>,
    /// What was paid with it: the batch bond plus a claim bond per claim (BOND-3).
    pub bond: U256,
    /// Gas it used.
    pub gas_used: u64,
    /// When the batch can be processed (unix seconds; EXIT-13).
    pub exitable_at: u64,
}

/// What [`Wallet::start_batch_exit`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchExitReport {
    /// The batches started, in the order sent.
    pub batches: Vec<BatchChunk>,
    /// Outputs that cannot be claimed and were exited by standard exits instead, with why (an
    /// amount above 2^96 - 1, a position at or below the owner's watermark).
    pub standard: Vec<(u128, String)>,
    /// Those standard exits' report.
    pub standard_report: Option<ExitReport>,
    /// Positions not claimed nor exited (see `error`).
    pub not_started: Vec<u128>,
    /// Why the positions in `not_started` were not.
    pub error: Option<String>,
}

impl BatchExitReport {
    /// Every position claimed in a batch.
    pub fn claimed(&self) -> Vec<u128> {
        self.batches.iter().flat_map(|b| b.claims.iter().copied()).collect()
    }

    /// Bonds paid for the batches.
    pub fn bonds(&self) -> U256 {
        self.batches.iter().fold(U256::ZERO, |a, b| a + b.bond)
    }

    /// Gas used by the batches.
    pub fn gas_used(&self) -> u64 {
        self.batches.iter().map(|b| b.gas_used).sum()
    }
}

/// One `payoutBatchClaims` of a [`PayoutReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutChunk {
    /// The L1 transaction.
    pub l1_tx: TxHash,
    /// Claims paid: position, batch, and the amount credited (less than the claim's only when
    /// the batch's reserve was short, EXIT-14).
    pub paid: Vec<(u128, u64, U256)>,
    /// Claims void: their output was already paid by another exit (OUT-2), nothing credited.
    pub void: Vec<u128>,
    /// Gas it used.
    pub gas_used: u64,
}

/// What [`Wallet::payout_batch_claims`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PayoutReport {
    /// The L1 transactions mined.
    pub chunks: Vec<PayoutChunk>,
    /// Claims whose batch is not processed yet: position, batch, when it can be.
    pub waiting: Vec<(u128, u64, u64)>,
    /// Claims that cannot be paid (struck by a challenge, lost to an unanswered demand), and why.
    pub lost: Vec<(u128, String)>,
    /// Why a chunk failed (the claims it held stay claimed; run the payout again).
    pub error: Option<String>,
}

impl PayoutReport {
    /// What was credited to the owner, in all tokens together (one token in practice).
    pub fn credited(&self) -> U256 {
        self.chunks.iter().flat_map(|c| &c.paid).fold(U256::ZERO, |a, (_, _, v)| a + *v)
    }

    /// Gas used.
    pub fn gas_used(&self) -> u64 {
        self.chunks.iter().map(|c| c.gas_used).sum()
    }
}

/// What [`Wallet::send_chunked`] calls with each mined chunk and its receipt.
type OnMined<'f, T> = dyn FnMut(&[T], &TransactionReceipt) -> Result<(), SdkError> + Send + 'f;

/// One `BatchExitGroup`: its first claim's index, its owner, its claims.
type GroupClaims = (U256, Address, Vec<(UtxoPos, U256)>);

/// What a claimed output's `evidence` says.
fn claim_evidence(c: &BatchClaimRef) -> String {
    format!(
        "claim {} of batch {} started by {} in {}, processable from {}",
        c.index, c.batch_id, c.exitor, c.l1_tx, c.exitable_at
    )
}

fn u64_of(v: U256, what: &str) -> Result<u64, SdkError> {
    u64::try_from(v).map_err(|_| SdkError::L1(format!("{what} {v} overflows")))
}

impl Wallet {
    /// Whether the deployment has a batch exit game (every deployment since batch exits).
    pub const fn has_batch_exit_game(&self) -> bool {
        self.batch.is_some()
    }

    fn batch_game(&self) -> Result<&Game, SdkError> {
        self.batch.as_ref().ok_or(SdkError::NoBatchExitGame)
    }

    /// The last position a batch claimed for this owner in `token` (EXIT-12): a batch can only
    /// claim positions above it.
    pub async fn claimed_up_to(&self, token: Address) -> Result<u128, SdkError> {
        let w = self.batch_game()?.claimedUpTo(self.address(), token).call().await.map_err(l1)?;
        u128::try_from(w).map_err(|_| SdkError::L1(format!("watermark {w} overflows")))
    }

    /// The L1 state of claim `index` of batch `batch_id`: 0 live, 1 demanded, 2 struck, 3 paid.
    pub async fn claim_state(&self, batch_id: u64, index: u32) -> Result<u8, SdkError> {
        self.batch_game()?
            .claimState(U256::from(batch_id), U256::from(index))
            .call()
            .await
            .map_err(l1)
    }

    /// Whether batch `batch_id` was processed (EXIT-14), from its `BatchExitProcessed` event.
    pub async fn batch_processed(&self, batch_id: u64, from_block: u64) -> Result<bool, SdkError> {
        let filter = Filter::new()
            .address(*self.batch_game()?.address())
            .event_signature(BatchExitGame::BatchExitProcessed::SIGNATURE_HASH)
            .topic1(B256::from(U256::from(batch_id)))
            .from_block(from_block);
        Ok(!self.provider.get_logs(&filter).await.map_err(l1)?.is_empty())
    }

    /// Claims every output a standard exit could still pay ([`Wallet::exitable`]) — or the given
    /// `positions` — through batch exits (EXIT-12), this wallet the sender and owner (no
    /// authorization). See [`Wallet::start_batch_exit_with`].
    pub async fn start_batch_exit(
        &self,
        positions: Option<&[u128]>,
    ) -> Result<BatchExitReport, SdkError> {
        self.start_batch_exit_with(positions, BatchExitOptions::default(), &mut |_| {}).await
    }

    /// Batch exit of this wallet's outputs. First re-checks them (WALLET-1) and refuses, before
    /// any bond is paid, a given output that is spent, exiting, claimed, finalized, invalid or no
    /// longer under its commitment (the errors of [`Wallet::start_exits`]); with no positions,
    /// takes every output that passes. Per token: the positions above the owner's watermark
    /// (`claimedUpTo`, read from L1), ascending, in chunks of at most `options.max_claims`
    /// claims, one `startBatchExit` each with the youngest claimed block's root and L1 timestamp
    /// and `msg.value = batchBond + claimBond * n` (BOND-3); a chunk is estimated before it is
    /// sent and halved while it does not fit 90 % of the block gas limit (or 2^24). Each chunk
    /// raises the watermark to its last claim, so the next one starts above it. Each claimed
    /// output is recorded in the store as soon as its transaction is mined, with its batch and
    /// claim index (from the receipt's `BatchExitStarted` and `BatchExitGroup`). Outputs a batch
    /// cannot claim (amounts above 2^96 − 1, positions at or below the watermark) are exited by
    /// standard exits instead. Fails (nothing sent) only if the first transaction cannot be sent.
    pub async fn start_batch_exit_with(
        &self,
        positions: Option<&[u128]>,
        options: BatchExitOptions,
        progress: &mut (dyn FnMut(&BatchChunk) + Send),
    ) -> Result<BatchExitReport, SdkError> {
        let game = self.batch_game()?;
        if let Some(list) = positions {
            // Outputs never synced are read from the sources (the towers when the operator is
            // down, DA-12) and verified first.
            self.fetch_missing(list).await?;
        }
        self.refresh().await?;
        let mut outputs: Vec<StoredOutput> = match positions {
            Some(list) => {
                let outputs: Vec<StoredOutput> =
                    list.iter().map(|p| self.stored(*p)).collect::<Result<_, _>>()?;
                if let Some(e) = outputs.iter().find_map(Self::doomed) {
                    return Err(e);
                }
                outputs
            }
            None => self.exitable()?,
        };
        outputs.sort_by_key(|o| o.utxo_pos);
        outputs.dedup_by_key(|o| o.utxo_pos);
        if outputs.is_empty() {
            return Err(SdkError::UnknownOutput("nothing to exit".into()));
        }
        let mut report = BatchExitReport::default();
        let mut by_token: BTreeMap<Address, Vec<StoredOutput>> = BTreeMap::new();
        for o in outputs {
            if o.amount > bx::max_claim_amount() || o.amount.is_zero() {
                report.standard.push((o.utxo_pos, "amount does not fit a claim (2^96 - 1)".into()));
            } else {
                by_token.entry(o.token).or_default().push(o);
            }
        }
        let (batch_bond, claim_bond) = (
            game.batchBondSize().call().await.map_err(l1)?,
            game.claimBondSize().call().await.map_err(l1)?,
        );
        let me = self.address();
        let max = options.max_claims.clamp(1, MAX_BATCH_CLAIMS_PER_TX);
        let mut unsent: Vec<u128> = Vec::new();
        for (token, mut list) in by_token {
            let watermark = self.claimed_up_to(token).await?;
            list.retain(|o| {
                let above = o.utxo_pos > watermark;
                if !above {
                    report.standard.push((
                        o.utxo_pos,
                        format!("at or below the watermark {watermark}: a batch cannot claim it"),
                    ));
                }
                above
            });
            if list.is_empty() {
                continue;
            }
            if report.error.is_some() {
                unsent.extend(list.iter().map(|o| o.utxo_pos));
                continue;
            }
            let claims: Vec<(UtxoPos, U256)> = list
                .iter()
                .map(|o| {
                    UtxoPos::from_u128(o.utxo_pos)
                        .map(|p| (p, o.amount))
                        .map_err(|e| SdkError::Store(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            bx::check_group(&claims, watermark).map_err(|e| SdkError::Store(e.to_string()))?;
            let build = |chunk: &[StoredOutput]| {
                let records: Vec<(UtxoPos, U256)> = chunk
                    .iter()
                    .map(|o| {
                        UtxoPos::from_u128(o.utxo_pos)
                            .map(|p| (p, o.amount))
                            .map_err(|e| SdkError::Store(e.to_string()))
                    })
                    .collect::<Result<_, _>>()?;
                let packed =
                    bx::encode_claims(&records).map_err(|e| SdkError::Store(e.to_string()))?;
                let youngest = chunk.last().ok_or_else(|| SdkError::Store("empty chunk".into()))?;
                let group = BatchExitGame::Group {
                    owner: me,
                    deadline: U256::ZERO,
                    nonce: U256::ZERO,
                    signature: Bytes::new(),
                    claims: packed.into(),
                };
                let value = batch_bond + claim_bond * U256::from(chunk.len());
                Ok(game
                    .startBatchExit(token, youngest.root, youngest.block_timestamp, vec![group])
                    .value(value))
            };
            let mut on_mined = |chunk: &[StoredOutput], receipt: &TransactionReceipt| {
                let done = self.record_batch(token, chunk, receipt, batch_bond, claim_bond)?;
                progress(&done);
                report.batches.push(done);
                Ok(())
            };
            let (sent, error) =
                self.send_chunked(&list, max, "startBatchExit", build, &mut on_mined).await;
            match error {
                Some(e) if report.batches.is_empty() => return Err(e),
                Some(e) => {
                    report.error = Some(e.to_string());
                    unsent.extend(list[sent..].iter().map(|o| o.utxo_pos));
                }
                None => {}
            }
        }
        if !report.standard.is_empty() {
            let positions: Vec<u128> = report.standard.iter().map(|(p, _)| *p).collect();
            if report.error.is_some() {
                unsent.extend(positions);
            } else {
                // Checked above (WALLET-1): no second re-check.
                let standard = self.start_exits_with(&positions, true, &mut |_| {}).await?;
                unsent.extend(standard.not_started.iter().copied());
                if let Some(e) = &standard.error {
                    report.error.get_or_insert_with(|| e.clone());
                }
                report.standard_report = Some(standard);
            }
        }
        report.not_started = unsent;
        Ok(report)
    }

    /// Reads a mined `startBatchExit` and records its claims in the store.
    fn record_batch(
        &self,
        token: Address,
        chunk: &[StoredOutput],
        receipt: &TransactionReceipt,
        batch_bond: U256,
        claim_bond: U256,
    ) -> Result<BatchChunk, SdkError> {
        let logs = receipt.inner.logs();
        let started =
            logs.iter().find_map(|l| l.log_decode::<BatchExitGame::BatchExitStarted>().ok());
        let group = logs.iter().find_map(|l| l.log_decode::<BatchExitGame::BatchExitGroup>().ok());
        let l1_block = receipt.block_number.unwrap_or_default();
        let mut done = BatchChunk {
            l1_tx: receipt.transaction_hash,
            l1_block,
            batch_id: 0,
            token,
            claims: Vec::new(),
            first_index: 0,
            skipped: Vec::new(),
            bond: batch_bond + claim_bond * U256::from(chunk.len()),
            gas_used: receipt.gas_used,
            exitable_at: 0,
        };
        let (Some(started), Some(group)) = (started, group) else {
            let reason = logs
                .iter()
                .find_map(|l| l.log_decode::<BatchExitGame::BatchGroupSkipped>().ok())
                .map_or_else(
                    || "no batch started".to_owned(),
                    |e| match e.inner.reason {
                        0 => "BadAuthorization: the group's authorization is not valid".to_owned(),
                        1 => "BelowWatermark: a batch already claimed these positions (another \
                              exitor of this owner got there first)"
                            .to_owned(),
                        r => format!("skipped (reason {r})"),
                    },
                );
            done.skipped = chunk.iter().map(|o| (o.utxo_pos, reason.clone())).collect();
            return Ok(done);
        };
        done.batch_id = u64_of(started.inner.batchId, "batch id")?;
        done.exitable_at = started.inner.exitableAt;
        done.first_index = u32::try_from(group.inner.firstIndex)
            .map_err(|_| SdkError::L1("claim index overflows".into()))?;
        let claimed =
            bx::decode_claims(&group.inner.claims).map_err(|e| SdkError::L1(e.to_string()))?;
        let mine: HashMap<(u128, U256), &StoredOutput> =
            chunk.iter().map(|o| ((o.utxo_pos, o.amount), o)).collect();
        let mut changed = Vec::with_capacity(chunk.len());
        for (i, (pos, amount)) in claimed.iter().enumerate() {
            let Some(o) = mine.get(&(pos.to_u128(), *amount)) else { continue };
            let index = done.first_index + u32::try_from(i).unwrap_or(u32::MAX);
            let mut o = (*o).clone();
            o.status = OutputStatus::BatchClaimed;
            o.checked_at = unix_now();
            let claim = BatchClaimRef {
                batch_id: done.batch_id,
                index,
                token,
                exitor: self.address(),
                l1_tx: receipt.transaction_hash,
                l1_block,
                exitable_at: done.exitable_at,
            };
            o.evidence = Some(claim_evidence(&claim));
            o.batch_claim = Some(claim);
            done.claims.push(o.utxo_pos);
            changed.push(o);
        }
        self.store.put_many(&changed)?;
        Ok(done)
    }

    /// Sends `items` in chunks of at most `max` (fewer when the gas needs it: each chunk
    /// estimated, halved while it fails or does not fit 90 % of `min(block gas limit, 2^24)`),
    /// one after another, calling `on_mined` for each mined one. Returns how many items were
    /// sent and the error that stopped it, if one did.
    async fn send_chunked<'p, T, C: SolCall>(
        &self,
        items: &[T],
        max: usize,
        what: &str,
        build: impl Fn(&[T]) -> Result<SolCallBuilder<&'p DynProvider, C>, SdkError>,
        on_mined: &mut OnMined<'_, T>,
    ) -> (usize, Option<SdkError>) {
        let cap =
            match self.provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await {
                Ok(Some(b)) => b.header.gas_limit.min(TX_GAS_CAP),
                Ok(None) => return (0, Some(SdkError::L1("no latest block".into()))),
                Err(e) => return (0, Some(l1(e))),
            };
        let budget = cap / 10 * 9;
        let mut sent = 0;
        let mut size = max.min(items.len());
        while sent < items.len() {
            size = size.clamp(1, items.len() - sent);
            let chunk = &items[sent..sent + size];
            let call = match build(chunk) {
                Ok(c) => c,
                Err(e) => return (sent, Some(e)),
            };
            let estimate = match call.estimate_gas().await {
                Ok(g) if g <= budget => g,
                result if size > 1 => {
                    tracing::debug!(size, ?result, budget, what, "chunk does not fit: halving");
                    size /= 2;
                    continue;
                }
                Ok(g) => {
                    let why = format!("{what}: one item needs {g} gas, over the budget {budget}");
                    return (sent, Some(SdkError::L1(why)));
                }
                Err(e) => {
                    let why = format!("{what}: {}", plasma_contracts::sender::describe(&e));
                    return (sent, Some(SdkError::L1(why)));
                }
            };
            let gas = (estimate + estimate / 5).min(cap);
            let receipt = match mined(call.gas(gas).send().await, what).await {
                Ok(r) => r,
                Err(e) => return (sent, Some(e)),
            };
            if let Err(e) = on_mined(chunk, &receipt) {
                return (sent + size, Some(e));
            }
            sent += size;
            // The next chunks sized from what this one took (the fixed part makes it
            // conservative).
            let fits = u128::from(budget) * size as u128 / u128::from(estimate.max(1));
            size = usize::try_from(fits).unwrap_or(usize::MAX).clamp(1, max);
        }
        (sent, None)
    }

    /// EXIT-16: where a token has debts outstanding and released money in its pool, pays the
    /// oldest debts first (`settleDebts`, anyone may), so a batch of this wallet's claims whose
    /// reserve was capped behind an unstruck fake gets its top-up before the payout.
    async fn settle_debts_of_claims(&self) -> Result<(), SdkError> {
        let tokens: BTreeSet<Address> = self
            .store
            .all()?
            .into_iter()
            .filter(|o| o.status == OutputStatus::BatchClaimed)
            .map(|o| o.token)
            .collect();
        for token in tokens {
            let book = self.framework.debtBook(token).call().await.map_err(l1)?;
            if book.head < book.tail && !book.pool.is_zero() {
                let receipt = self
                    .framework
                    .settleDebts(token, U256::from(100u8))
                    .send()
                    .await
                    .map_err(l1)?
                    .get_receipt()
                    .await
                    .map_err(l1)?;
                tracing::info!(%token, tx = %receipt.transaction_hash, "settled debts (EXIT-16)");
            }
        }
        Ok(())
    }

    /// Pays this wallet's claims in processed batches (EXIT-15): per claim its proof in the
    /// batch's claim tree (rebuilt from the batch's `BatchExitGroup` events and checked against
    /// the root its `BatchExitStarted` emitted), its creating transaction and inclusion proof from
    /// the store, in chunks that fit the gas and calldata limits. Claims of batches not processed
    /// yet are reported with when they can be; struck ones as lost. Every paid claim's output is
    /// marked finalized. `withdraw` then takes the credit out.
    ///
    /// Needs only L1: claims made for this wallet by others (a watchtower's mass exit, usually
    /// when the operator is gone) are learned from L1's events first.
    pub async fn payout_batch_claims(&self) -> Result<PayoutReport, SdkError> {
        let game = self.batch_game()?;
        self.recheck(None).await?;
        self.settle_debts_of_claims().await?;
        let mut report = PayoutReport::default();
        let mut claimed: BTreeMap<u64, Vec<StoredOutput>> = BTreeMap::new();
        for o in self.store.all()? {
            if let (OutputStatus::BatchClaimed, Some(c)) = (o.status, &o.batch_claim) {
                claimed.entry(c.batch_id).or_default().push(o.clone());
            }
        }
        let mut payouts: Vec<(StoredOutput, BatchExitGame::Payout)> = Vec::new();
        for (batch_id, mut outputs) in claimed {
            outputs.sort_by_key(|o| o.batch_claim.as_ref().map(|c| c.index));
            let Some(first) = outputs.first().and_then(|o| o.batch_claim.clone()) else { continue };
            if !self.batch_processed(batch_id, first.l1_block).await? {
                let at = first.exitable_at;
                report.waiting.extend(outputs.iter().map(|o| (o.utxo_pos, batch_id, at)));
                continue;
            }
            let states = self.claim_states(game, batch_id, &outputs).await?;
            let tree = self.claim_tree(batch_id, first.l1_block).await?;
            let mut lost = Vec::new();
            for (o, state) in outputs.into_iter().zip(states) {
                let Some(c) = o.batch_claim.clone() else { continue };
                match state {
                    LIVE => {}
                    PAID => continue,
                    DEMANDED | STRUCK => {
                        let why = if state == STRUCK {
                            "struck by a challenge (CHAL-6 … CHAL-9)"
                        } else {
                            "its proof was demanded and not answered before processing (CHAL-9)"
                        };
                        report.lost.push((o.utxo_pos, why.into()));
                        lost.push((
                            Touch::BatchClaimStruck,
                            BatchClaimRef::key(batch_id, c.index.into()),
                        ));
                        continue;
                    }
                    s => {
                        report.lost.push((o.utxo_pos, format!("unknown claim state {s}")));
                        continue;
                    }
                }
                let proof =
                    tree.proof(c.index as usize).map_err(|e| SdkError::L1(e.to_string()))?;
                let pos = u64::try_from(o.utxo_pos)
                    .map_err(|_| SdkError::Store(format!("position {} overflows", o.utxo_pos)))?;
                let payout = BatchExitGame::Payout {
                    claim: IBatchExitGame::ClaimRef {
                        batchId: U256::from(batch_id),
                        index: U256::from(c.index),
                        owner: o.owner,
                        utxoPos: pos,
                        amount: U96::saturating_from(o.amount),
                        proof,
                    },
                    txBytes: o.tx_bytes.clone(),
                    inclusionProof: o.proof.clone(),
                    blockTimestamp: o.block_timestamp,
                };
                payouts.push((o, payout));
            }
            self.store.touch(&lost)?;
        }
        if payouts.is_empty() {
            return Ok(report);
        }
        // Calldata per payout decides how many fit one transaction's size.
        let widest = payouts.iter().map(|(_, p)| p.abi_encoded_size()).max().unwrap_or(1);
        let most = game.MAX_PAYOUTS().call().await.map_err(l1)?;
        let most = usize::try_from(most).unwrap_or(usize::MAX);
        let max = (MAX_CALLDATA / widest.max(1)).clamp(1, most.max(1));
        let build = |chunk: &[(StoredOutput, BatchExitGame::Payout)]| {
            Ok(game.payoutBatchClaims(chunk.iter().map(|(_, p)| p.clone()).collect()))
        };
        let mut on_mined = |chunk: &[(StoredOutput, BatchExitGame::Payout)],
                            receipt: &TransactionReceipt| {
            let done = self.record_payout(chunk, receipt)?;
            report.chunks.push(done);
            Ok(())
        };
        let (_, error) =
            self.send_chunked(&payouts, max, "payoutBatchClaims", build, &mut on_mined).await;
        match error {
            Some(e) if report.chunks.is_empty() => return Err(e),
            Some(e) => report.error = Some(e.to_string()),
            None => {}
        }
        Ok(report)
    }

    /// `claimState` of each output's claim, 32 reads at a time.
    async fn claim_states(
        &self,
        game: &Game,
        batch_id: u64,
        outputs: &[StoredOutput],
    ) -> Result<Vec<u8>, SdkError> {
        let mut states = vec![0u8; outputs.len()];
        let indexed: Vec<(usize, u32)> = outputs
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.batch_claim.as_ref().map(|c| (i, c.index)))
            .collect();
        for part in indexed.chunks(32) {
            let mut set = tokio::task::JoinSet::new();
            for &(i, index) in part {
                let game = game.clone();
                set.spawn(async move {
                    (i, game.claimState(U256::from(batch_id), U256::from(index)).call().await)
                });
            }
            while let Some(joined) = set.join_next().await {
                let (i, state) = joined.map_err(|e| SdkError::L1(e.to_string()))?;
                states[i] = state.map_err(l1)?;
            }
        }
        Ok(states)
    }

    /// Batch `batch_id`'s claim tree, rebuilt from its events (in L1 block `l1_block`) and
    /// checked against the root it emitted.
    async fn claim_tree(&self, batch_id: u64, l1_block: u64) -> Result<ClaimTree, SdkError> {
        let game = self.batch_game()?;
        let topic = B256::from(U256::from(batch_id));
        let filter = |sig: B256| {
            Filter::new()
                .address(*game.address())
                .event_signature(sig)
                .topic1(topic)
                .from_block(l1_block)
                .to_block(l1_block)
        };
        let started = self
            .provider
            .get_logs(&filter(BatchExitGame::BatchExitStarted::SIGNATURE_HASH))
            .await
            .map_err(l1)?
            .iter()
            .find_map(|l| l.log_decode::<BatchExitGame::BatchExitStarted>().ok())
            .ok_or_else(|| SdkError::L1(format!("no BatchExitStarted of batch {batch_id}")))?;
        let mut groups: Vec<GroupClaims> = Vec::new();
        for log in self
            .provider
            .get_logs(&filter(BatchExitGame::BatchExitGroup::SIGNATURE_HASH))
            .await
            .map_err(l1)?
        {
            let e = log.log_decode::<BatchExitGame::BatchExitGroup>().map_err(l1)?.inner;
            let claims = bx::decode_claims(&e.claims).map_err(|e| SdkError::L1(e.to_string()))?;
            groups.push((e.firstIndex, e.owner, claims));
        }
        groups.sort_by_key(|g| g.0);
        let claims: Vec<Claim> = groups
            .into_iter()
            .flat_map(|(_, owner, claims)| {
                claims.into_iter().map(move |(pos, amount)| Claim { owner, pos, amount })
            })
            .collect();
        let tree = ClaimTree::from_claims(&claims).map_err(|e| SdkError::L1(e.to_string()))?;
        if tree.root() != started.inner.root {
            return Err(SdkError::L1(format!(
                "batch {batch_id}'s claims do not hash to its root {}",
                started.inner.root
            )));
        }
        Ok(tree)
    }

    /// Reads a mined `payoutBatchClaims` and marks the paid outputs finalized.
    fn record_payout(
        &self,
        chunk: &[(StoredOutput, BatchExitGame::Payout)],
        receipt: &TransactionReceipt,
    ) -> Result<PayoutChunk, SdkError> {
        let logs = receipt.inner.logs();
        // A void claim (its output paid by another path) is struck as it is "paid" 0; a claim
        // paid 0 from an exhausted reserve is not.
        let void: HashSet<(U256, U256)> = logs
            .iter()
            .filter_map(|l| l.log_decode::<BatchExitGame::BatchClaimStruck>().ok())
            .map(|e| (e.inner.batchId, e.inner.index))
            .collect();
        let paid: HashMap<(u64, u64), (U256, bool)> = logs
            .iter()
            .filter_map(|l| l.log_decode::<BatchExitGame::BatchClaimPaid>().ok())
            .filter_map(|e| {
                let e = e.inner;
                let is_void = void.contains(&(e.batchId, e.index));
                Some((
                    (u64::try_from(e.batchId).ok()?, u64::try_from(e.index).ok()?),
                    (e.amount, is_void),
                ))
            })
            .collect();
        let mut done = PayoutChunk {
            l1_tx: receipt.transaction_hash,
            paid: Vec::new(),
            void: Vec::new(),
            gas_used: receipt.gas_used,
        };
        let mut changed = Vec::new();
        for (o, _) in chunk {
            let Some(c) = &o.batch_claim else { continue };
            let Some((amount, is_void)) = paid.get(&(c.batch_id, u64::from(c.index))) else {
                continue;
            };
            let mut o = o.clone();
            o.status = OutputStatus::Finalized;
            o.checked_at = unix_now();
            if *is_void {
                o.evidence = Some(format!(
                    "claim {} of batch {} void in {}: the output was already paid",
                    c.index, c.batch_id, receipt.transaction_hash
                ));
                done.void.push(o.utxo_pos);
            } else {
                o.evidence = Some(format!(
                    "paid {amount} by claim {} of batch {} in {}",
                    c.index, c.batch_id, receipt.transaction_hash
                ));
                done.paid.push((o.utxo_pos, c.batch_id, *amount));
            }
            changed.push(o);
        }
        self.store.put_many(&changed)?;
        Ok(done)
    }

    /// The status a re-check gives an output claimed in a batch: `None` when the claim is
    /// struck (the output's other facts decide), else [`OutputStatus::BatchClaimed`]. Only a
    /// claim a `BatchClaimStruck` event named is read on L1; a paid claim's output is finalized
    /// (`OutputFinalized`), which the re-check sees first.
    pub(super) async fn batch_claim_status(
        &self,
        c: &BatchClaimRef,
        touched: &HashSet<(u8, B256)>,
    ) -> Result<Option<(OutputStatus, Option<String>)>, SdkError> {
        let key = BatchClaimRef::key(c.batch_id, c.index.into());
        if touched.contains(&(Touch::BatchClaimStruck as u8, key))
            && self.batch.is_some()
            && matches!(self.claim_state(c.batch_id, c.index).await?, STRUCK | PAID)
        {
            return Ok(None);
        }
        Ok(Some((OutputStatus::BatchClaimed, Some(claim_evidence(c)))))
    }

    /// The batch events of L1 blocks `from..=to` that concern this wallet: groups claiming its
    /// outputs (`BatchExitGroup`, owner indexed; by this wallet or an exitor it authorized)
    /// recorded on the stored outputs they name exactly (owner, token, amount: only such a claim
    /// makes the output exiting, LEDGER-9, and only such a claim is a CHAL-10 challenge of its
    /// standard exit), and struck claims (`BatchClaimStruck`) touched for the re-check.
    pub(super) async fn scan_batch_events(
        &self,
        from: u64,
        to: u64,
        touched: &mut Vec<(Touch, B256)>,
    ) -> Result<(), SdkError> {
        let Some(game) = &self.batch else { return Ok(()) };
        let owner = B256::left_padding_from(self.address().as_slice());
        let groups = Filter::new()
            .address(*game.address())
            .event_signature(BatchExitGame::BatchExitGroup::SIGNATURE_HASH)
            .topic2(owner)
            .from_block(from)
            .to_block(to);
        let struck = Filter::new()
            .address(*game.address())
            .event_signature(BatchExitGame::BatchClaimStruck::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        for log in self.provider.get_logs(&struck).await.map_err(l1)? {
            if let Ok(e) = log.log_decode::<BatchExitGame::BatchClaimStruck>()
                && let (Ok(b), Ok(i)) =
                    (u64::try_from(e.inner.batchId), u64::try_from(e.inner.index))
            {
                touched.push((Touch::BatchClaimStruck, BatchClaimRef::key(b, i)));
            }
        }
        let mut found = Vec::new();
        for log in self.provider.get_logs(&groups).await.map_err(l1)? {
            if let Ok(e) = log.log_decode::<BatchExitGame::BatchExitGroup>() {
                found.push((
                    e.inner.batchId,
                    e.inner.firstIndex,
                    e.inner.claims.clone(),
                    log.transaction_hash.unwrap_or_default(),
                    log.block_number.unwrap_or_default(),
                ));
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        let ids: Vec<B256> = found.iter().map(|f| B256::from(f.0)).collect();
        let started = Filter::new()
            .address(*game.address())
            .event_signature(BatchExitGame::BatchExitStarted::SIGNATURE_HASH)
            .topic1(ids)
            .from_block(from)
            .to_block(to);
        let mut batches: HashMap<U256, (Address, Address, u64)> = HashMap::new();
        for log in self.provider.get_logs(&started).await.map_err(l1)? {
            if let Ok(e) = log.log_decode::<BatchExitGame::BatchExitStarted>() {
                let e = e.inner;
                batches.insert(e.batchId, (e.token, e.exitor, e.exitableAt));
            }
        }
        let mut changed = Vec::new();
        for (batch_id, first, claims, l1_tx, l1_block) in found {
            let Some(&(token, exitor, exitable_at)) = batches.get(&batch_id) else { continue };
            let (Ok(batch_id), Ok(first)) = (u64::try_from(batch_id), u32::try_from(first)) else {
                continue;
            };
            let Ok(claims) = bx::decode_claims(&claims) else { continue };
            for (i, (pos, amount)) in claims.into_iter().enumerate() {
                let Some(mut o) = self.store.get(pos.to_u128())? else { continue };
                if o.owner != self.address() || o.token != token || o.amount != amount {
                    continue;
                }
                let index = first + u32::try_from(i).unwrap_or(u32::MAX);
                if o.batch_claim.as_ref().is_some_and(|c| c.batch_id >= batch_id) {
                    continue;
                }
                o.batch_claim = Some(BatchClaimRef {
                    batch_id,
                    index,
                    token,
                    exitor,
                    l1_tx,
                    l1_block,
                    exitable_at,
                });
                changed.push(o);
            }
        }
        self.store.put_many(&changed)
    }
}
