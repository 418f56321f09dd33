//! Sending L1 transactions: one policy for the operator's root submitter, the watcher's actions
//! and the wallet (issue: Shape).
//!
//! What every sender here needs, written once:
//! - **Confirmed nonce.** Each attempt of one action goes out at the account's *confirmed* nonce,
//!   so a re-send replaces a pending earlier attempt instead of queuing behind it: at most one
//!   attempt can ever be mined.
//! - **Fee bumps.** Attempt `n` pays the node's gas price plus `min(n, MAX_BUMPS)` times
//!   `bump_percent` of it (and one wei, so attempt 0 never underprices an equal pending one);
//!   nodes refuse replacements that do not raise the fee by about 10 %, so 25 % always replaces.
//!   A bump is earned by an attempt not mined in time, or by a refusal that says our own
//!   pending attempt holds the nonce ([`taken_by_ours`]), never by any other refusal: those
//!   (no funds, a fee or size cap, a used nonce) are not cured by a higher price, and a caller
//!   bumping on them at every poll would ratchet the fee without bound.
//! - **Batches, back to back (issue 19).** [`Sender::send_batch`] sends several actions at
//!   consecutive nonces from the confirmed one, without waiting between them, then confirms them
//!   together under one `stuck_after`: a burst of actions lands in one block instead of one block
//!   each. The confirmed-nonce rule still holds for the batch as a whole: every batch is laid out
//!   again from the confirmed nonce, so whatever an earlier batch left pending at those nonces is
//!   replaced (each nonce's last price is kept, and a replacement pays `bump_percent` above it),
//!   and our own pending transactions above the batch (a batch that shrank) are replaced by
//!   empty self-transfers. So no action is pending at two nonces (no duplicate can be mined), no
//!   stale action lingers, and no gap outlives a batch: a send the node refuses does not take a
//!   nonce (the next action gets it), and a transaction the node dropped leaves its nonce to the
//!   next batch, which starts at the confirmed nonce again. Within a batch a revert consumes its
//!   nonce and holds nothing back; a stuck transaction holds back the ones above it only until
//!   the next batch re-sends all of them with bumped fees.
//! - **Explicit gas.** Estimating would run against the pending state, where a stuck earlier
//!   attempt may already have done the job, and refuse the replacement.
//! - **Idempotency keys.** Callers name each action; [`Sender`] counts its attempts and remembers
//!   the last one's hash, and [`Sender::landed_late`] finds an earlier attempt that was mined
//!   after all. Persisting "done" across restarts is the caller's journal (the watcher's actions
//!   table, the operator's L1 state); this module never sends an action its caller says is done.
//! - **Reverts by name.** [`describe`] decodes the contracts' custom errors by name with a
//!   sentence (`StandardExitAlreadyStarted (utxoPos: 7): an exit of this output was already
//!   started …`, see [`crate::errors`]) instead of showing a raw selector.
//! - **Figures.** [`SendStats`] counts what went out and what became of it (sent, fee bumps,
//!   mined, reverted, refused, stuck) and the last nonce used: the operator's and the watcher's
//!   `/metrics` read them (issue 20), so a submitter that bumps fees forever or a tower whose
//!   actions keep being refused shows on a graph before it matters.

use alloy::{
    contract::SolCallBuilder,
    network::Ethereum,
    primitives::{Address, B256, U256},
    providers::{DynProvider, PendingTransactionBuilder, Provider},
    rpc::types::{TransactionReceipt, TransactionRequest},
    sol_types::SolCall,
};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

/// How a [`Sender`] prices and waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendPolicy {
    /// Fee increase per re-send, in percent of the node's gas price.
    pub bump_percent: u32,
    /// How long to wait for a receipt before the next attempt bumps the fee.
    pub stuck_after: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self { bump_percent: 25, stuck_after: Duration::from_secs(60) }
    }
}

impl SendPolicy {
    /// Most bumps an attempt's price carries: attempt `n` pays `min(n, MAX_BUMPS)` bumps, so at
    /// 25 % a price never passes six times the node's gas price of the moment, however long an
    /// action stays stuck or refused. (A constant, not a field: callers build the policy as a
    /// struct literal.)
    ///
    /// Can the cap leave an attempt un-replaceable? A replacement must pay the node's minimum
    /// bump (geth: +10 %) over the pending attempt at its nonce. Once the attempts of an action
    /// reach the cap, the next one pays what the pending one paid (at an unchanged gas price),
    /// and the node refuses it as underpriced (or, the very same transaction, as already known).
    /// That is accepted: the pending attempt already pays the most this policy pays, so it is
    /// left to be mined rather than bumped in a loop. Each refusal costs one call and raises
    /// nothing. It stays replaceable whenever replacing it means something: should the node's
    /// gas price rise by more than the minimum bump, the capped price follows it and a
    /// replacement is taken; should the node drop the pending attempt, a re-send at the same
    /// price is taken. (A batch's replacement of its own pending transaction at a nonce pays
    /// above that transaction's price whatever the cap, [`Sender::send_batch`]: a batch that
    /// did not would leave the action stuck behind it, and a batch is re-sent once per
    /// `stuck_after`, not per refusal.)
    pub const MAX_BUMPS: u32 = 20;

    /// The gas price of attempt `attempt` (0-based) at the node's gas price `base`: at most
    /// [`Self::MAX_BUMPS`] bumps.
    pub fn price(&self, base: u128, attempt: u32) -> u128 {
        price_for_attempt(base, attempt.min(Self::MAX_BUMPS), self.bump_percent)
    }
}

/// The gas price of attempt `attempt` (0-based) of an action, uncapped (see the module docs;
/// senders price through [`SendPolicy::price`], which caps the bumps).
pub fn price_for_attempt(base: u128, attempt: u32, bump_percent: u32) -> u128 {
    base.saturating_add(
        base.saturating_mul(u128::from(attempt)).saturating_mul(u128::from(bump_percent)) / 100,
    )
    .saturating_add(1)
}

/// Why sending failed. Nothing is recorded as done when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The node could not be reached or answered an error other than a refusal.
    #[error("L1 RPC: {0}")]
    Rpc(String),
}

/// What became of one attempt.
#[derive(Debug)]
pub enum Outcome {
    /// Mined and successful.
    Mined(Box<TransactionReceipt>),
    /// Mined and reverted (the chain moved on: the action is over either way), with the reason
    /// when the node gives it.
    Reverted {
        /// The transaction.
        hash: B256,
        /// The decoded revert, if it could be read.
        reason: Option<String>,
    },
    /// Not mined within `stuck_after`, or sent and its receipt could not be read (the hash is
    /// kept either way: [`Sender::landed_late`] looks for it): the next attempt bumps the fee.
    Pending {
        /// The attempt's transaction.
        hash: B256,
    },
    /// The node refused the transaction (underpriced replacement, nonce already used, not enough
    /// funds for value and gas, or a revert at estimation): nothing was sent.
    Refused {
        /// The node's reason, with custom errors decoded by name.
        reason: String,
    },
}

/// What a [`Sender`] did, counted since it was made (for `/metrics`; atomics, never a lock, so a
/// scrape cannot wait on a send in progress).
#[derive(Debug, Default)]
pub struct SendStats {
    sent: AtomicU64,
    fee_bumps: AtomicU64,
    mined: AtomicU64,
    reverted: AtomicU64,
    refused: AtomicU64,
    stuck: AtomicU64,
    /// The last nonce a transaction went out at, plus one (0: none yet).
    next_nonce: AtomicU64,
}

/// A copy of [`SendStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendFigures {
    /// Transactions the node accepted (every attempt, fee bumps included).
    pub sent: u64,
    /// Of those, re-sends of a stuck action at a higher fee (attempt 2 and later).
    pub fee_bumps: u64,
    /// Attempts mined and successful.
    pub mined: u64,
    /// Attempts mined and reverted.
    pub reverted: u64,
    /// Sends the node refused (nothing went out).
    pub refused: u64,
    /// Attempts not mined within `stuck_after` (each is followed by a fee bump, if still needed).
    pub stuck: u64,
    /// The nonce of the last transaction sent, `None` before the first.
    pub last_nonce: Option<u64>,
}

impl SendStats {
    /// The figures now.
    pub fn figures(&self) -> SendFigures {
        SendFigures {
            sent: self.sent.load(Relaxed),
            fee_bumps: self.fee_bumps.load(Relaxed),
            mined: self.mined.load(Relaxed),
            reverted: self.reverted.load(Relaxed),
            refused: self.refused.load(Relaxed),
            stuck: self.stuck.load(Relaxed),
            last_nonce: self.next_nonce.load(Relaxed).checked_sub(1),
        }
    }
}

/// One action of a batch ([`Sender::send_batch`]): its idempotency key and its transaction
/// (recipient, calldata, value and explicit gas limit; the sender sets `from`, nonce and price).
#[derive(Clone, Debug)]
pub struct Action {
    /// The caller's name of the action (see the module docs).
    pub key: String,
    /// The transaction without `from`, nonce or price.
    pub tx: TransactionRequest,
}

impl Action {
    /// The action `key` calling `call` with `value` wei under the explicit gas limit `gas`.
    pub fn call<C: SolCall>(
        key: impl Into<String>,
        call: SolCallBuilder<&DynProvider, C>,
        value: U256,
        gas: u64,
    ) -> Self {
        Self { key: key.into(), tx: call.value(value).gas(gas).into_transaction_request() }
    }
}

/// What this sender last sent at one nonce (see [`Sender::send_batch`]).
#[derive(Clone, Debug)]
struct Slot {
    /// The action's key (`cancel` for an empty self-transfer).
    key: String,
    /// Its gas price: a replacement at this nonce must pay more.
    price: u128,
}

/// Key of the empty self-transfers that replace stale transactions above a batch.
const CANCEL: &str = "cancel";
/// Nonces whose last price is remembered (a bound: the operator never sends batches, so nothing
/// else prunes its slots).
const SLOTS_KEPT: usize = 1024;
/// Gas of an empty self-transfer.
const TRANSFER_GAS: u64 = 21_000;
/// How many times one action of a batch is re-priced at once when the node says our own pending
/// transaction holds its nonce (one this sender does not know, e.g. from before a restart).
const UNDERPRICED_RETRIES: u32 = 2;

/// Sends actions from one account under one [`SendPolicy`].
#[derive(Debug)]
pub struct Sender {
    provider: DynProvider,
    from: Address,
    policy: SendPolicy,
    /// Per action still pending: attempts so far and the last attempt's hash.
    attempts: Mutex<HashMap<String, (u32, B256)>>,
    /// Per nonce this sender used recently: the last transaction sent at it.
    slots: Mutex<BTreeMap<u64, Slot>>,
    stats: Arc<SendStats>,
}

impl Sender {
    /// A sender for `from`, whose key `provider` holds.
    pub fn new(provider: DynProvider, from: Address, policy: SendPolicy) -> Self {
        Self {
            provider,
            from,
            policy,
            attempts: Mutex::new(HashMap::new()),
            slots: Mutex::new(BTreeMap::new()),
            stats: Arc::new(SendStats::default()),
        }
    }

    /// What this sender did so far (shared: a caller may keep the handle for its `/metrics`).
    pub fn stats(&self) -> &Arc<SendStats> {
        &self.stats
    }

    /// Counts an attempt the node accepted at `nonce` and `price` for action `key`.
    fn count_sent(&self, key: &str, nonce: u64, price: u128) {
        self.stats.sent.fetch_add(1, Relaxed);
        if self.attempts_of(key) > 0 {
            self.stats.fee_bumps.fetch_add(1, Relaxed);
        }
        self.stats.next_nonce.store(nonce.saturating_add(1), Relaxed);
        let mut slots = self.slots();
        slots.insert(nonce, Slot { key: key.to_owned(), price });
        while slots.len() > SLOTS_KEPT {
            slots.pop_first();
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Slot>> {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The least price that replaces what this sender last sent at `nonce` (0: nothing known).
    fn floor(&self, nonce: u64) -> u128 {
        self.slots().get(&nonce).map_or(0, |s| self.above(s.price))
    }

    /// `price` raised by the policy's bump (and one wei): enough to replace a transaction at it.
    fn above(&self, price: u128) -> u128 {
        price_for_attempt(price, 1, self.policy.bump_percent)
    }

    /// The account.
    pub const fn address(&self) -> Address {
        self.from
    }

    /// The policy.
    pub const fn policy(&self) -> SendPolicy {
        self.policy
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, B256)>> {
        self.attempts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many attempts of `key` went out and are not settled yet.
    pub fn attempts_of(&self, key: &str) -> u32 {
        self.attempts().get(key).map_or(0, |a| a.0)
    }

    /// The confirmed nonce and this attempt's gas price for action `key`.
    pub async fn tx_params(&self, key: &str) -> Result<(u64, u128), SendError> {
        let nonce = self.provider.get_transaction_count(self.from).latest().await.map_err(rpc)?;
        let base = self.provider.get_gas_price().await.map_err(rpc)?;
        Ok((nonce, self.policy.price(base, self.attempts_of(key))))
    }

    /// Sends action `key` as `call` with `value` wei under the explicit gas limit `gas`, at the
    /// confirmed nonce and this attempt's fee, and waits up to `stuck_after` for its receipt.
    pub async fn send<C: SolCall>(
        &self,
        key: &str,
        call: SolCallBuilder<&DynProvider, C>,
        value: U256,
        gas: u64,
    ) -> Result<Outcome, SendError> {
        let (nonce, price) = self.tx_params(key).await?;
        match call.from(self.from).value(value).nonce(nonce).gas_price(price).gas(gas).send().await
        {
            Ok(pending) => {
                self.count_sent(key, nonce, price);
                self.confirm(key, pending).await
            }
            Err(e) => {
                self.stats.refused.fetch_add(1, Relaxed);
                Ok(Outcome::Refused { reason: describe(&e) })
            }
        }
    }

    /// As [`Sender::send`], at a nonce the caller read itself (the operator pins its reads to
    /// one L1 block, so the nonce and the state it judged come from the same block).
    pub async fn send_at<C: SolCall>(
        &self,
        key: &str,
        call: SolCallBuilder<&DynProvider, C>,
        value: U256,
        gas: u64,
        nonce: u64,
    ) -> Result<Outcome, SendError> {
        let base = self.provider.get_gas_price().await.map_err(rpc)?;
        let price = self.policy.price(base, self.attempts_of(key));
        match call.from(self.from).value(value).nonce(nonce).gas_price(price).gas(gas).send().await
        {
            Ok(pending) => {
                self.count_sent(key, nonce, price);
                self.confirm(key, pending).await
            }
            Err(e) => {
                self.stats.refused.fetch_add(1, Relaxed);
                Ok(Outcome::Refused { reason: describe(&e) })
            }
        }
    }

    /// Sends `actions` back to back at consecutive nonces from the confirmed one, then confirms
    /// them together: one [`Outcome`] per action, in order (see the module docs, "Batches").
    ///
    /// Each action pays its attempt's price ([`SendPolicy::price`]), and at least
    /// `bump_percent` more than what this sender last sent at its nonce, so it replaces an
    /// earlier batch's transaction there. A refused action does not take a nonce. Our pending
    /// transactions above the last nonce used are replaced by empty self-transfers. The receipts
    /// are awaited in nonce order until one deadline, `stuck_after` after the last send; the
    /// actions not mined by then are `Pending` (the next batch bumps them).
    pub async fn send_batch(&self, actions: &[Action]) -> Result<Vec<Outcome>, SendError> {
        if actions.is_empty() {
            return Ok(Vec::new());
        }
        let confirmed =
            self.provider.get_transaction_count(self.from).latest().await.map_err(rpc)?;
        let base = self.provider.get_gas_price().await.map_err(rpc)?;
        // Below the confirmed nonce everything is mined: nothing there can be replaced.
        let above = self.slots().split_off(&confirmed);
        *self.slots() = above;
        let mut outcomes: Vec<Option<Outcome>> = actions.iter().map(|_| None).collect();
        let mut sent = Vec::with_capacity(actions.len());
        let mut nonce = confirmed;
        for (i, action) in actions.iter().enumerate() {
            let key = action.key.as_str();
            let mut price = self.policy.price(base, self.attempts_of(key)).max(self.floor(nonce));
            let mut retries = 0;
            loop {
                let tx = action.tx.clone().from(self.from).nonce(nonce).gas_price(price);
                match self.provider.send_transaction(tx).await {
                    Ok(pending) => {
                        self.count_sent(key, nonce, price);
                        sent.push((i, pending));
                        nonce += 1;
                        break;
                    }
                    Err(e) => {
                        let reason = describe(&alloy::contract::Error::from(e));
                        // A pending transaction of ours at this nonce that this sender does not
                        // know (sent before a restart, maybe this very one) is replaced at a
                        // higher price at once, rather than leaving every action of the batch
                        // refused behind it.
                        if taken_by_ours(&reason) && retries < UNDERPRICED_RETRIES {
                            retries += 1;
                            self.bump(key);
                            price = self.above(price);
                            continue;
                        }
                        self.stats.refused.fetch_add(1, Relaxed);
                        // A stale transaction of ours may have been mined since the nonce was
                        // read: the next action goes after it, never at a used nonce.
                        if reason.contains("nonce too low")
                            && let Ok(now) =
                                self.provider.get_transaction_count(self.from).latest().await
                        {
                            nonce = nonce.max(now);
                        }
                        outcomes[i] = Some(Outcome::Refused { reason });
                        break;
                    }
                }
            }
        }
        self.cancel_above(nonce, base).await;
        let deadline = tokio::time::Instant::now() + self.policy.stuck_after;
        for (i, pending) in sent {
            let (key, hash) = (&actions[i].key, *pending.tx_hash());
            // One receipt the node could not give fails no other action: this one is looked up
            // again by `landed_late` before it is re-sent.
            let outcome = match self.confirm_until(key, pending, deadline).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::warn!(target: "sender", action = %key, error = %e, "receipt not read");
                    self.note_stuck(key, hash);
                    Outcome::Pending { hash }
                }
            };
            outcomes[i] = Some(outcome);
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Refused { reason: "not sent".to_owned() }))
            .collect())
    }

    /// Replaces our own pending transactions at `from` and above with empty self-transfers, so
    /// none of them can be mined as a duplicate or a stale action: those an earlier, longer
    /// batch left (actions no longer wanted, or wanted at a lower nonce now), and those the node
    /// counts pending that this sender does not know (sent before a restart).
    async fn cancel_above(&self, from: u64, base: u128) {
        let known: BTreeMap<u64, Slot> =
            self.slots().range(from..).map(|(n, s)| (*n, s.clone())).collect();
        let pending = match self.provider.get_transaction_count(self.from).pending().await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(target: "sender", error = %e, "pending nonce not read");
                from
            }
        };
        let top = known.keys().next_back().map_or(from, |n| n + 1).max(pending);
        // Bounded: an account with more than this pending is not ours alone to clean up.
        let top = top.min(from.saturating_add(SLOTS_KEPT as u64));
        for nonce in from..top {
            let slot = known.get(&nonce);
            let replaced = slot.map_or("unknown (sent before a restart?)", |s| s.key.as_str());
            let mut price = slot.map_or(0, |s| self.above(s.price)).max(base + 1);
            for retry in 0..=UNDERPRICED_RETRIES {
                let tx = TransactionRequest::default()
                    .from(self.from)
                    .to(self.from)
                    .value(U256::ZERO)
                    .gas_limit(TRANSFER_GAS)
                    .nonce(nonce)
                    .gas_price(price);
                match self.provider.send_transaction(tx).await {
                    Ok(sent) => {
                        tracing::info!(target: "sender", nonce, replaced, tx = %sent.tx_hash(),
                            "stale transaction replaced by an empty one");
                        self.count_sent(CANCEL, nonce, price);
                        break;
                    }
                    Err(e) => {
                        let reason = e.to_string();
                        if taken_by_ours(&reason) && retry < UNDERPRICED_RETRIES {
                            price = self.above(price);
                            continue;
                        }
                        self.stats.refused.fetch_add(1, Relaxed);
                        tracing::warn!(target: "sender", nonce, replaced, error = %reason,
                            "stale transaction not replaced");
                        break;
                    }
                }
            }
        }
    }

    /// Waits for an attempt's receipt (see [`Sender::send`]); a mined attempt settles `key`.
    pub async fn confirm(
        &self,
        key: &str,
        pending: PendingTransactionBuilder<Ethereum>,
    ) -> Result<Outcome, SendError> {
        let deadline = tokio::time::Instant::now() + self.policy.stuck_after;
        self.confirm_until(key, pending, deadline).await
    }

    /// [`Sender::confirm`] with a deadline shared by several attempts (a batch).
    async fn confirm_until(
        &self,
        key: &str,
        pending: PendingTransactionBuilder<Ethereum>,
        deadline: tokio::time::Instant,
    ) -> Result<Outcome, SendError> {
        let hash = *pending.tx_hash();
        let waited = match tokio::time::timeout_at(deadline, pending.get_receipt()).await {
            // Past a batch's deadline the wait may end before its first look: look once more.
            Err(elapsed) => match self.provider.get_transaction_receipt(hash).await {
                Ok(Some(receipt)) => Ok(Ok(receipt)),
                _ => Err(elapsed),
            },
            waited => waited,
        };
        match waited {
            Ok(Ok(receipt)) => {
                self.attempts().remove(key);
                if receipt.status() {
                    self.stats.mined.fetch_add(1, Relaxed);
                    Ok(Outcome::Mined(Box::new(receipt)))
                } else {
                    self.stats.reverted.fetch_add(1, Relaxed);
                    Ok(Outcome::Reverted { hash, reason: None })
                }
            }
            // The attempt went out: its hash is kept (the caller, or `landed_late`, looks for it
            // landing later), as for a batch. Forgetting it would leave a run that lands unseen
            // to be found only by its logs.
            Ok(Err(e)) => {
                tracing::warn!(target: "sender", action = %key, tx = %hash, error = %e, "receipt not read; taken as pending");
                self.note_stuck(key, hash);
                Ok(Outcome::Pending { hash })
            }
            Err(_) => {
                self.note_stuck(key, hash);
                Ok(Outcome::Pending { hash })
            }
        }
    }

    /// Counts attempt `hash` of `key` as not mined in time: the next attempt bumps the fee, and
    /// [`Sender::landed_late`] looks for this one first.
    fn note_stuck(&self, key: &str, hash: B256) {
        self.stats.stuck.fetch_add(1, Relaxed);
        let mut attempts = self.attempts();
        let entry = attempts.entry(key.to_owned()).or_insert((0, hash));
        *entry = (entry.0.saturating_add(1), hash);
    }

    /// If the last attempt of `key` was mined after all (while a later one was being prepared,
    /// or after a restart of the wait), its receipt; `key` is then settled.
    pub async fn landed_late(&self, key: &str) -> Result<Option<TransactionReceipt>, SendError> {
        let Some((_, hash)) = self.attempts().get(key).copied() else { return Ok(None) };
        let receipt = self.provider.get_transaction_receipt(hash).await.map_err(rpc)?;
        if let Some(r) = &receipt {
            self.attempts().remove(key);
            let counter = if r.status() { &self.stats.mined } else { &self.stats.reverted };
            counter.fetch_add(1, Relaxed);
        }
        Ok(receipt)
    }

    /// Counts one more attempt of `key` without a new hash (a caller whose send was refused
    /// because our own pending attempt holds the nonce, [`taken_by_ours`], wants the next one to
    /// pay more; up to [`SendPolicy::MAX_BUMPS`]).
    pub fn bump(&self, key: &str) {
        let mut attempts = self.attempts();
        let entry = attempts.entry(key.to_owned()).or_insert((0, B256::ZERO));
        entry.0 = entry.0.saturating_add(1);
    }

    /// Forgets `key`'s attempts (its action is over for another reason).
    pub fn forget(&self, key: &str) {
        self.attempts().remove(key);
    }
}

/// A provider over one or more L1 endpoints that signs with `wallet`: [`crate::l1::connect`]
/// (TLS with `PLASMA_CA_FILE` trusted, failover one endpoint at a time, URLs redacted in errors)
/// without its health view. Callers that show endpoint health use `l1::connect` directly.
pub fn connect(
    urls: &[alloy::transports::http::reqwest::Url],
    wallet: alloy::network::EthereumWallet,
) -> Result<DynProvider, SendError> {
    let endpoints = crate::l1::Endpoints::new(urls.to_vec()).map_err(rpc)?;
    crate::l1::connect(&endpoints, wallet).map(|(provider, _health)| provider).map_err(rpc)
}

/// Whether a node's refusal says our own pending transaction holds the nonce, so that a higher
/// price (and only that) gets the next attempt taken:
/// - "replacement transaction underpriced" (geth, reth, erigon, anvil; besu's
///   `REPLACEMENT_UNDERPRICED`): a transaction from our account is pending at this nonce, and
///   only our key signs for our account, so it is ours; the replacement must pay the node's
///   minimum bump over it.
/// - "already known" (geth, reth) or "transaction already imported" (anvil): the very same
///   transaction is pending (same hash, so ours); a different price makes a replacement.
///
/// Not these, though they look alike:
/// - "nonce too low": the nonce is used by a transaction already *mined*, not pending. No price
///   replaces it; the caller reads its nonce (and what landed) again.
/// - "transaction underpriced" without "replacement" (geth): under the pool's minimum price, or
///   the pool is full. Nothing of ours holds the nonce; the node's gas price, read again at the
///   next attempt, is what to pay.
/// - "insufficient funds", a fee cap ("tx fee … exceeds the configured cap", geth's and reth's
///   `--rpc.txfeecap`), a size limit ("oversized data"): a higher price makes them worse.
pub fn taken_by_ours(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    reason.contains("replacement transaction underpriced")
        || reason.contains("replacement_underpriced")
        || reason.contains("already known")
        || reason.contains("already imported")
}

/// Whether a node's refusal says the nonce is used by a transaction already mined ("nonce too
/// low"): the caller's nonce read is stale (an attempt of ours landed since); neither a price
/// nor a shorter transaction helps, a fresh read does.
pub fn nonce_used(reason: &str) -> bool {
    reason.to_ascii_lowercase().contains("nonce too low")
}

fn rpc(e: impl std::fmt::Display) -> SendError {
    SendError::Rpc(e.to_string())
}

/// Waits for the receipt of a transaction sent once (no fee bumping: a wallet's user is there to
/// retry); a revert is `Err` with `what` and the transaction.
pub async fn mined(
    sent: Result<PendingTransactionBuilder<Ethereum>, alloy::contract::Error>,
    what: &str,
) -> Result<TransactionReceipt, MinedError> {
    let pending =
        sent.map_err(|e| MinedError::Refused { what: what.to_owned(), reason: describe(&e) })?;
    let receipt =
        pending.get_receipt().await.map_err(|e| MinedError::Rpc(format!("{what}: {e}")))?;
    if receipt.status() {
        Ok(receipt)
    } else {
        Err(MinedError::Reverted { what: what.to_owned(), hash: receipt.transaction_hash })
    }
}

/// Why [`mined`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MinedError {
    /// The node refused it before sending (a revert at estimation is decoded by name).
    #[error("{what}: {reason}")]
    Refused {
        /// The action.
        what: String,
        /// Why.
        reason: String,
    },
    /// It was mined and reverted.
    #[error("{what} reverted in {hash}")]
    Reverted {
        /// The action.
        what: String,
        /// The transaction.
        hash: B256,
    },
    /// The node could not be reached.
    #[error("L1 RPC: {0}")]
    Rpc(String),
}

pub use crate::errors::revert_reason;

/// A contract call's error for people: a revert of the plasma contracts by name, with its fields
/// and a sentence ([`crate::errors::decode_revert`]), else the node's message.
pub fn describe(e: &alloy::contract::Error) -> String {
    match e.as_revert_data().and_then(|data| crate::errors::decode_revert(&data)) {
        Some(decoded) => format!("reverted: {decoded}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StandardExitGame;
    use alloy::sol_types::SolError;

    #[test]
    fn attempts_bump_by_the_policy() {
        assert_eq!(price_for_attempt(1_000, 0, 25), 1_001);
        assert_eq!(price_for_attempt(1_000, 1, 25), 1_251);
        assert_eq!(price_for_attempt(1_000, 4, 25), 2_001);
        assert_eq!(price_for_attempt(u128::MAX, 3, 25), u128::MAX, "saturates");
    }

    #[test]
    fn bumps_are_capped() {
        let policy = SendPolicy::default();
        assert_eq!(policy.price(1_000, 0), 1_001);
        assert_eq!(policy.price(1_000, 4), 2_001);
        let cap = policy.price(1_000, SendPolicy::MAX_BUMPS);
        assert_eq!(cap, 6_001, "20 bumps of 25 %");
        assert_eq!(policy.price(1_000, SendPolicy::MAX_BUMPS + 1), cap);
        assert_eq!(policy.price(1_000, u32::MAX), cap);
    }

    #[test]
    fn only_our_pending_attempt_earns_a_bump() {
        for ours in [
            "server returned an error response: error code -32000: replacement transaction underpriced",
            "error code -32003: Replacement transaction underpriced",
            "REPLACEMENT_UNDERPRICED",
            "error code -32000: already known",
            "error code -32003: transaction already imported",
        ] {
            assert!(taken_by_ours(ours), "{ours}");
            assert!(!nonce_used(ours), "{ours}");
        }
        for other in [
            "error code -32000: nonce too low",
            "error code -32000: transaction underpriced",
            "error code -32000: insufficient funds for gas * price + value",
            "error code -32000: tx fee (2.01 ether) exceeds the configured cap (1.00 ether)",
            "error code -32000: oversized data",
            "L1 RPC: error sending request",
        ] {
            assert!(!taken_by_ours(other), "{other}");
        }
        assert!(nonce_used("error code -32003: Nonce too low"));
    }

    #[test]
    fn custom_errors_are_named() {
        let data =
            StandardExitGame::StandardExitAlreadyStarted { utxoPos: U256::from(7) }.abi_encode();
        let reason = revert_reason(&data).unwrap();
        assert!(reason.starts_with("StandardExitAlreadyStarted"), "{reason}");
        assert!(reason.contains('7'), "{reason}");
        assert_eq!(revert_reason(&[0xde, 0xad, 0xbe, 0xef]), None);
    }
}
