//! Acting on L1 (WATCH-11): every action goes out through the shared sender, recorded once mined,
//! never twice, with its deadline margin checked.
//!
//! Two ways out, both through the one sender (one nonce stream, never two sends at once: the
//! step runs its duties one after another): [`Watcher::act`] sends one action and waits for it;
//! [`Watcher::act_all`] sends a duty's actions back to back at consecutive nonces and confirms
//! them together (issue 19), so a burst of invalid exits is challenged in one L1 block instead
//! of one block per exit. Challenges go out by `act_all` (`challenge.rs`); the tower's own exits
//! and processing still go one by one, after the challenges are confirmed, so the balance their
//! budget reads (WATCH-13) is what the challenges left.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Watcher {
    /// Nonce and gas price for the next attempt of action `key`: always the confirmed nonce, so a
    /// re-send replaces a stuck one instead of adding to it, and 25% more fee per attempt.
    /// Sends action `key` as the call `call` (with `value` wei) through the shared sender
    /// (`plasma_contracts::sender`: confirmed nonce, 25 % fee bump per stuck attempt, explicit
    /// gas). Returns the hash once mined and successful; a revert is recorded as done too (the
    /// chain's state already moved on) and reported; a refused send is reported as `ActionFailed`
    /// (with the contract's error by name) and retried at the next step.
    pub(super) async fn act<C: alloy::sol_types::SolCall>(
        &self,
        key: &str,
        call: alloy::contract::SolCallBuilder<&DynProvider, C>,
        value: U256,
        gas: u64,
    ) -> Result<Option<B256>, WatcherError> {
        // The monitor gate (issue 20, `crosscheck.rs`): a monitor records what it would send and
        // sends nothing; callers see "not done yet", as for a send still pending.
        if self.is_monitor() {
            self.would_act(key, C::SIGNATURE, value);
            return Ok(None);
        }
        // An earlier attempt that was still pending when its wait ran out may have been mined
        // since: that is this action done, not a reason to send again. A new attempt would
        // revert against the state the first one already changed (a claim already struck, an
        // exit already challenged), pay gas for nothing, and report `ActionFailed` for an
        // action that succeeded — so every caller checks here, not each on its own.
        if let Some(hash) = self.landed_late(key).await? {
            return Ok(Some(hash));
        }
        let outcome = self.sender.send(key, call, value, gas).await.map_err(l1)?;
        self.settle(key, outcome)
    }

    /// Sends `planned` back to back and confirms them together (see the module docs): what
    /// [`Watcher::act`] returns, per action, in order. An action already done by an earlier
    /// attempt mined late is not sent again; a key planned twice is sent once. One action
    /// refused, reverted or stuck holds back none of the others: a refusal takes no nonce, a
    /// revert consumes its own, and a stuck one is re-sent with the rest, fee bumped, next step.
    pub(super) async fn act_all(
        &self,
        planned: &[Planned],
    ) -> Result<Vec<Option<B256>>, WatcherError> {
        let mut results = vec![None; planned.len()];
        if self.is_monitor() {
            for p in planned {
                self.would_act(&p.action.key, p.call, p.value);
            }
            return Ok(results);
        }
        let mut seen = std::collections::HashSet::new();
        let mut batch = Vec::new();
        let mut index = Vec::new();
        for (i, p) in planned.iter().enumerate() {
            if !seen.insert(p.action.key.as_str()) {
                continue;
            }
            // As in `act`: an earlier attempt mined late is this action done.
            if let Some(hash) = self.landed_late(&p.action.key).await? {
                results[i] = Some(hash);
                continue;
            }
            batch.push(p.action.clone());
            index.push(i);
        }
        if batch.len() > 1 {
            debug!(target: "watcher::sender", actions = batch.len(), "sending back to back");
        }
        let outcomes = self.sender.send_batch(&batch).await.map_err(l1)?;
        for (i, outcome) in index.into_iter().zip(outcomes) {
            results[i] = self.settle(&planned[i].action.key, outcome)?;
        }
        Ok(results)
    }

    /// Records and reports what became of one attempt of `key`: its hash once mined and
    /// successful; a revert is recorded as done too (the chain's state already moved on) and
    /// reported; a refusal is reported as `ActionFailed` and retried at the next step.
    fn settle(
        &self,
        key: &str,
        outcome: plasma_contracts::sender::Outcome,
    ) -> Result<Option<B256>, WatcherError> {
        use plasma_contracts::sender::Outcome;
        match outcome {
            Outcome::Mined(receipt) => {
                self.record_action(key, receipt.transaction_hash)?;
                self.dashboard.record(key, "mined", Some(receipt.transaction_hash), None);
                Ok(Some(receipt.transaction_hash))
            }
            Outcome::Reverted { hash, reason } => {
                self.record_action(key, hash)?;
                let reason = reason.map_or_else(
                    || format!("reverted in {hash}"),
                    |r| format!("reverted in {hash}: {r}"),
                );
                self.dashboard.record(key, "reverted", Some(hash), Some(reason.clone()));
                self.event(Event::ActionFailed { action: key.to_owned(), reason });
                Ok(None)
            }
            Outcome::Pending { hash } => {
                self.dashboard.record(key, "pending", Some(hash), None);
                warn!(target: "watcher::sender", action = key, "action not mined yet; will bump its fee");
                Ok(None)
            }
            Outcome::Refused { reason } => {
                self.dashboard.record(key, "refused", None, Some(reason.clone()));
                self.event(Event::ActionFailed { action: key.to_owned(), reason });
                Ok(None)
            }
        }
    }

    /// If an earlier, stuck attempt of `key` was mined after all, records it and returns its hash.
    pub(super) async fn landed_late(&self, key: &str) -> Result<Option<B256>, WatcherError> {
        match self.sender.landed_late(key).await.map_err(l1)? {
            Some(receipt) if receipt.status() => {
                self.record_action(key, receipt.transaction_hash)?;
                self.dashboard.record(key, "landedLate", Some(receipt.transaction_hash), None);
                Ok(Some(receipt.transaction_hash))
            }
            _ => Ok(None),
        }
    }

    /// WATCH-11: alerts when an action went out with less than the margin left.
    pub(super) async fn check_margin(&self, action: &str, deadline: u64) {
        let Ok(Some(block)) =
            self.provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await
        else {
            return;
        };
        let now = block.header.timestamp;
        let left = deadline.saturating_sub(now);
        let tight = left <= self.settings.deadline_margin.as_secs();
        // The dashboard shows every action's deadline and margin (issue 20).
        self.dashboard.note_deadline(action, deadline, left, tight);
        if tight {
            self.event(Event::DeadlineTight { action: action.to_owned(), seconds_left: left });
        }
    }
}

/// One action a duty planned for [`Watcher::act_all`]: the action and, for a monitor's record,
/// the call's signature and value.
#[derive(Clone, Debug)]
pub(super) struct Planned {
    pub(super) action: plasma_contracts::sender::Action,
    call: &'static str,
    value: U256,
}

impl Planned {
    /// Action `key`: `call` with `value` wei under the explicit gas limit `gas`.
    pub(super) fn new<C: alloy::sol_types::SolCall>(
        key: String,
        call: alloy::contract::SolCallBuilder<&DynProvider, C>,
        value: U256,
        gas: u64,
    ) -> Self {
        Self {
            action: plasma_contracts::sender::Action::call(key, call, value, gas),
            call: C::SIGNATURE,
            value,
        }
    }

    /// Its key.
    pub(super) fn key(&self) -> &str {
        &self.action.key
    }
}
