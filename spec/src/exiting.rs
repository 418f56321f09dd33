//! Outputs that are leaving the child chain through the exit game (spec: LEDGER-9).
//!
//! The ledger of 03-ledger.md only knows spends made on the child chain. The exit game moves
//! outputs out of it on L1: a standard exit, an in-flight exit of a transaction that spends the
//! output, or a piggyback of the output. [`ExitingOutputs`] is the record of those L1 facts, with
//! the L1 time each began, that the operator and every watcher keep the same way from the same
//! events, so that both apply one rule:
//!
//! - the operator refuses any spend of an output that is exiting *now* ([`SpendRule::Now`]);
//! - a committed child block is invalid if it spends an output that was already exiting
//!   [`exit_spend_grace`] before the block's commitment ([`SpendRule::CommittedAt`]).
//!
//! The grace absorbs the time an honest operator needs to see an exit start (its confirmation
//! depth and polling) and to get an already-built block committed; it is a quarter of the
//! challenge period, so a spend committed inside the grace can still be used to challenge the exit
//! (EXIT-4 until processing, CHAL-1 until the end of phase 1 at half a period, CHAL-4 until
//! processing). The argument is in 03-ledger.md, LEDGER-9.

use crate::{position::UtxoPos, tx::Transaction};
use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The grace between an output starting to exit and the first commitment that may not spend it
/// (spec: LEDGER-9): a quarter of the challenge period `p` (`minExitPeriod`, in seconds).
pub const fn exit_spend_grace(min_exit_period: u64) -> u64 {
    min_exit_period / 4
}

/// Which exit-game fact makes an output exiting (spec: LEDGER-9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ExitSource {
    /// Its standard exit started (EXIT-1). Never undone: an output exits by a standard exit once
    /// ever, and a challenged one was spent by its owner anyway.
    Standard,
    /// An in-flight exit (by exit id) of a transaction that spends it started (EXIT-6). Undone
    /// when that exit is deleted unpiggybacked: it paid nothing and can pay nothing.
    InFlightInput {
        /// The in-flight exit's id.
        exit_id: U256,
    },
    /// A batch exit claimed it (EXIT-12) for `owner`, `amount` of `token`. It counts only for an
    /// output that is exactly that: a claim of someone else's output, or of another amount, is a
    /// fake that CHAL-6 strikes and must not freeze the real owner's coin. Never undone: a claim
    /// struck later was spent (CHAL-7) or exited (CHAL-8) anyway, or went unproven (CHAL-9), and
    /// its owner can still exit it by a standard exit (CHAL-10 needs a live claim).
    BatchClaim {
        /// Who the claim pays.
        owner: Address,
        /// The batch's token.
        token: Address,
        /// The claimed amount.
        amount: U256,
    },
    /// It was piggybacked as output `index` of an in-flight exit (EXIT-8). Never undone.
    PiggybackedOutput {
        /// The in-flight exit's id.
        exit_id: U256,
        /// The output's index in the in-flight transaction.
        index: u8,
    },
}

/// An exit-game event that LEDGER-9 follows, as read from L1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitEvent {
    /// `StandardExitGame.ExitStarted` (the exit id is the position).
    StandardExitStarted {
        /// The exiting output.
        pos: UtxoPos,
    },
    /// `InFlightExitGame.InFlightExitStarted`.
    InFlightExitStarted {
        /// The exit id.
        exit_id: U256,
        /// The in-flight transaction.
        tx: Transaction,
    },
    /// `InFlightExitGame.InFlightExitPiggybacked` with `isOutput` (input piggybacks change
    /// nothing: the exit's start already took every input).
    OutputPiggybacked {
        /// The exit id.
        exit_id: U256,
        /// The output index.
        index: u8,
    },
    /// `InFlightExitGame.InFlightExitDeleted`.
    InFlightExitDeleted {
        /// The exit id.
        exit_id: U256,
    },
    /// One claim of `BatchExitGame.BatchExitGroup` (EXIT-12), with its batch's token.
    BatchClaimed {
        /// The claimed position.
        pos: UtxoPos,
        /// The group's owner.
        owner: Address,
        /// The batch's token.
        token: Address,
        /// The claimed amount.
        amount: U256,
    },
}

/// One reason an output is exiting, over an interval of L1 time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitMark {
    /// Why.
    pub source: ExitSource,
    /// L1 timestamp of the event that started it.
    pub since: u64,
    /// L1 timestamp of the event that ended it (only an in-flight exit's deletion does).
    pub until: Option<u64>,
}

impl ExitMark {
    const fn active_at(&self, time: u64) -> bool {
        match self.until {
            Some(until) => time < until,
            None => true,
        }
    }
}

/// Against which moment a spend is judged (spec: LEDGER-9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendRule {
    /// The operator accepting a transaction or building a block: any exit known now forbids it.
    Now,
    /// A block committed on L1 at `time`: an exit that began at least `grace` before forbids it.
    CommittedAt {
        /// The commitment's L1 timestamp.
        time: u64,
        /// [`exit_spend_grace`] of the deployment.
        grace: u64,
    },
}

/// An in-flight exit as far as LEDGER-9 needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct InFlight {
    tx_hash: B256,
    inputs: Vec<UtxoPos>,
}

/// The exit-game facts that take outputs off the child chain (spec: LEDGER-9), fed from L1 events
/// in L1 order. Every method is idempotent, so events read twice (after an L1 reorganisation, or
/// a restart between reading and persisting a cursor) change nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitingOutputs {
    /// Every mark, by the exiting output's position.
    marks: BTreeMap<UtxoPos, Vec<ExitMark>>,
    /// In-flight exits seen started, by exit id.
    in_flight: BTreeMap<U256, InFlight>,
    /// Piggybacked outputs of transactions not (yet) known to be included: tx hash → (exit id,
    /// output index, since). They become marks when the transaction's position is learned.
    unplaced: HashMap<B256, Vec<(U256, u8, u64)>>,
}

impl ExitingOutputs {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many outputs carry a mark.
    pub fn len(&self) -> usize {
        self.marks.len()
    }

    /// Whether no output carries a mark.
    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// Marks `pos` exiting by `source` from `since`. Only an in-flight exit's input mark is ever
    /// closed (its deletion), and the contract lets a deleted in-flight exit be started again
    /// under the same exit id (EXIT-6): that start opens a new interval, it does not move the
    /// closed one — moved, its `until` would stay set and the inputs of a live exit would count
    /// as spendable (the operator would include a spend of them, OP-7, and every watcher call
    /// that block valid). A start read again (an L1 reorganisation, a restart before the cursor
    /// was stored) updates the latest interval instead: an open one, or a closed one it began
    /// before (the deletion read again next closes it again). Applied in L1 order, the latest
    /// interval of a source is open exactly when its last event was a start.
    fn mark(&mut self, pos: UtxoPos, source: ExitSource, since: u64) {
        let marks = self.marks.entry(pos).or_default();
        match marks.iter_mut().rev().find(|m| m.source == source) {
            // Read again: the event may sit in a block with another time.
            Some(m) if m.until.is_none_or(|until| since < until) => m.since = since,
            // First started, or started again after its deletion.
            _ => marks.push(ExitMark { source, since, until: None }),
        }
    }

    /// Applies `event`, read from an L1 block of timestamp `at`; `locate` finds an included
    /// transaction's `(blknum, tx_index)` by its hash and inputs.
    pub fn apply(
        &mut self,
        event: &ExitEvent,
        at: u64,
        locate: impl FnOnce(B256, &[UtxoPos]) -> Option<(u64, u16)>,
    ) {
        match event {
            ExitEvent::StandardExitStarted { pos } => self.standard_exit_started(*pos, at),
            ExitEvent::InFlightExitStarted { exit_id, tx } => {
                self.in_flight_exit_started(*exit_id, tx, at);
            }
            ExitEvent::OutputPiggybacked { exit_id, index } => {
                self.output_piggybacked(*exit_id, *index, at, locate);
            }
            ExitEvent::InFlightExitDeleted { exit_id } => self.in_flight_exit_deleted(*exit_id, at),
            ExitEvent::BatchClaimed { pos, owner, token, amount } => {
                self.batch_claimed(*pos, *owner, *token, *amount, at);
            }
        }
    }

    /// `ExitStarted` for the output at `pos`, in an L1 block of time `at` (EXIT-1).
    pub fn standard_exit_started(&mut self, pos: UtxoPos, at: u64) {
        self.mark(pos, ExitSource::Standard, at);
    }

    /// A claim of the output at `pos` for `owner`, `amount` of `token` in a `BatchExitGroup` of
    /// an L1 block of time `at` (EXIT-12). It marks the output only if the output is exactly that
    /// (see [`Self::forbids_output`]).
    pub fn batch_claimed(
        &mut self,
        pos: UtxoPos,
        owner: Address,
        token: Address,
        amount: U256,
        at: u64,
    ) {
        self.mark(pos, ExitSource::BatchClaim { owner, token, amount }, at);
    }

    /// `InFlightExitStarted` for `tx` (EXIT-6): each of its inputs is exiting from `at`.
    /// A transaction whose inputs do not parse was refused by the contract; it is ignored.
    pub fn in_flight_exit_started(&mut self, exit_id: U256, tx: &Transaction, at: u64) {
        let Ok(inputs) = tx.input_positions() else { return };
        for pos in &inputs {
            self.mark(*pos, ExitSource::InFlightInput { exit_id }, at);
        }
        self.in_flight.insert(exit_id, InFlight { tx_hash: tx.hash(), inputs });
    }

    /// `InFlightExitDeleted` (an exit nobody piggybacked, deleted after phase 1): its inputs stop
    /// exiting by it at `at`.
    pub fn in_flight_exit_deleted(&mut self, exit_id: U256, at: u64) {
        let Some(exit) = self.in_flight.get(&exit_id) else { return };
        let source = ExitSource::InFlightInput { exit_id };
        for pos in &exit.inputs {
            // The latest interval: a deleted exit may have been started again (see `mark`).
            if let Some(m) = self
                .marks
                .get_mut(pos)
                .and_then(|ms| ms.iter_mut().rev().find(|m| m.source == source))
            {
                m.until = Some(at);
            }
        }
    }

    /// `InFlightExitPiggybacked` of output `index` at `at` (EXIT-8). `locate` gives the in-flight
    /// transaction's `(blknum, tx_index)`, from its hash and inputs, if it is known to be included; otherwise the mark waits
    /// for [`Self::transaction_included`]. A piggyback of an exit never seen started is ignored
    /// (the contract refuses those).
    pub fn output_piggybacked(
        &mut self,
        exit_id: U256,
        index: u8,
        at: u64,
        locate: impl FnOnce(B256, &[UtxoPos]) -> Option<(u64, u16)>,
    ) {
        let Some(exit) = self.in_flight.get(&exit_id) else { return };
        let tx_hash = exit.tx_hash;
        match locate(tx_hash, &exit.inputs.clone())
            .and_then(|(b, t)| UtxoPos::new(b, t, index).ok())
        {
            Some(pos) => self.mark(pos, ExitSource::PiggybackedOutput { exit_id, index }, at),
            None => {
                let waiting = self.unplaced.entry(tx_hash).or_default();
                match waiting.iter_mut().find(|w| w.0 == exit_id && w.1 == index) {
                    Some(w) => w.2 = at,
                    None => waiting.push((exit_id, index, at)),
                }
            }
        }
    }

    /// The transaction `tx_hash` was found at `(blknum, tx_index)`: piggybacks of its outputs
    /// made before that become marks.
    pub fn transaction_included(&mut self, tx_hash: &B256, blknum: u64, tx_index: u16) {
        let Some(waiting) = self.unplaced.remove(tx_hash) else { return };
        for (exit_id, index, since) in waiting {
            if let Ok(pos) = UtxoPos::new(blknum, tx_index, index) {
                self.mark(pos, ExitSource::PiggybackedOutput { exit_id, index }, since);
            }
        }
    }

    /// Whether any transaction hash is waiting for its position (so callers can skip hashing).
    pub fn waits_for_inclusions(&self) -> bool {
        !self.unplaced.is_empty()
    }

    /// The marks of `pos`.
    pub fn marks(&self, pos: UtxoPos) -> &[ExitMark] {
        self.marks.get(&pos).map_or(&[], Vec::as_slice)
    }

    /// If `pos` may not be spent under `rule`, the L1 time it began exiting (the earliest mark
    /// that forbids it); `None` if it may be spent (spec: LEDGER-9).
    ///
    /// Batch claims are not counted here, since whether one applies depends on the output (see
    /// [`Self::forbids_output`], which callers that know the output use).
    pub fn forbids(&self, pos: UtxoPos, rule: SpendRule) -> Option<u64> {
        self.forbids_output(pos, None, rule)
    }

    /// As [`Self::forbids`] for the output `output` at `pos`: a batch claim of it forbids the
    /// spend too when it names exactly this output's owner, token and amount (EXIT-12). A claim
    /// naming anything else is a fake (CHAL-6) and cannot freeze the real owner's coin.
    pub fn forbids_output(
        &self,
        pos: UtxoPos,
        output: Option<&crate::Output>,
        rule: SpendRule,
    ) -> Option<u64> {
        let marks = self.marks.get(&pos)?;
        marks
            .iter()
            .filter(|m| match m.source {
                ExitSource::BatchClaim { owner, token, amount } => output
                    .is_some_and(|o| o.owner == owner && o.token == token && o.amount == amount),
                _ => true,
            })
            .filter(|m| match rule {
                SpendRule::Now => m.until.is_none(),
                SpendRule::CommittedAt { time, grace } => {
                    m.since.saturating_add(grace) <= time && m.active_at(time)
                }
            })
            .map(|m| m.since)
            .min()
    }

    /// Positions exiting now (for listing an owner's spendable outputs). Batch claims are
    /// included whatever they name: check them with [`Self::forbids_output`].
    pub fn exiting_now(&self) -> impl Iterator<Item = UtxoPos> + '_ {
        self.marks.iter().filter(|(_, ms)| ms.iter().any(|m| m.until.is_none())).map(|(p, _)| *p)
    }
}

/// A [`crate::UtxoView`] that hides exiting outputs under a [`SpendRule`] (spec: LEDGER-9).
#[derive(Clone, Copy, Debug)]
pub struct WithExits<'a, V> {
    /// The UTXO set.
    pub utxos: V,
    /// The exit-game facts.
    pub exiting: &'a ExitingOutputs,
    /// The moment spends are judged at.
    pub rule: SpendRule,
}

impl<V: crate::UtxoView> crate::UtxoView for WithExits<'_, V> {
    fn utxo(&self, pos: UtxoPos) -> Option<crate::Output> {
        self.utxos.utxo(pos)
    }

    fn exiting_since(&self, pos: UtxoPos) -> Option<u64> {
        // Most outputs carry no mark: skip the second UTXO lookup for them.
        if self.exiting.marks(pos).is_empty() {
            return None;
        }
        let output = self.utxos.utxo(pos);
        self.exiting.forbids_output(pos, output.as_ref(), self.rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::Output;
    use alloy_primitives::Address;

    fn pos(b: u64, t: u16, o: u8) -> UtxoPos {
        UtxoPos::new(b, t, o).unwrap()
    }

    fn payment(inputs: &[UtxoPos]) -> Transaction {
        Transaction::payment(
            inputs,
            vec![Output::new(Address::repeat_byte(7), Address::ZERO, U256::from(1))],
            B256::ZERO,
        )
    }

    #[test]
    fn a_batch_claim_freezes_only_the_output_it_names() {
        use alloy_primitives::Address;
        let (alice, mallory) = (Address::repeat_byte(0xa1), Address::repeat_byte(0x66));
        let coin = crate::Output::new(alice, Address::ZERO, U256::from(7u8));
        let mut e = ExitingOutputs::new();
        // Mallory claims alice's coin as hers: a fake (CHAL-6), it must not freeze the coin.
        e.apply(
            &ExitEvent::BatchClaimed {
                pos: pos(1000, 0, 0),
                owner: mallory,
                token: Address::ZERO,
                amount: U256::from(7u8),
            },
            100,
            |_, _| None,
        );
        assert_eq!(e.forbids_output(pos(1000, 0, 0), Some(&coin), SpendRule::Now), None);
        // A claim of another amount: a fake too.
        e.batch_claimed(pos(1000, 0, 0), alice, Address::ZERO, U256::from(8u8), 100);
        assert_eq!(e.forbids_output(pos(1000, 0, 0), Some(&coin), SpendRule::Now), None);
        // Alice's own claim (or her exitor's): exiting from its time, as a standard exit.
        e.batch_claimed(pos(1000, 0, 0), alice, Address::ZERO, U256::from(7u8), 200);
        assert_eq!(e.forbids_output(pos(1000, 0, 0), Some(&coin), SpendRule::Now), Some(200));
        let at = |time| SpendRule::CommittedAt { time, grace: 15 };
        assert_eq!(
            e.forbids_output(pos(1000, 0, 0), Some(&coin), at(214)),
            None,
            "inside the grace"
        );
        assert_eq!(e.forbids_output(pos(1000, 0, 0), Some(&coin), at(215)), Some(200));
        // Without the output, no claim can be judged.
        assert_eq!(e.forbids(pos(1000, 0, 0), SpendRule::Now), None);
        // Through the ledger's view.
        struct One(crate::Output);
        impl crate::UtxoView for One {
            fn utxo(&self, p: UtxoPos) -> Option<crate::Output> {
                (p == pos(1000, 0, 0)).then(|| self.0.clone())
            }
        }
        let view = WithExits { utxos: One(coin), exiting: &e, rule: SpendRule::Now };
        assert_eq!(crate::UtxoView::exiting_since(&view, pos(1000, 0, 0)), Some(200));
    }

    #[test]
    fn a_standard_exit_forbids_spends_now_and_after_the_grace() {
        let mut e = ExitingOutputs::new();
        e.standard_exit_started(pos(1000, 0, 0), 100);
        assert_eq!(e.forbids(pos(1000, 0, 0), SpendRule::Now), Some(100));
        assert_eq!(e.forbids(pos(1000, 0, 1), SpendRule::Now), None);
        let at = |time| SpendRule::CommittedAt { time, grace: 15 };
        assert_eq!(e.forbids(pos(1000, 0, 0), at(114)), None, "inside the grace");
        assert_eq!(e.forbids(pos(1000, 0, 0), at(115)), Some(100));
        assert_eq!(e.forbids(pos(1000, 0, 0), at(10_000)), Some(100), "never undone");
    }

    #[test]
    fn an_in_flight_exit_takes_its_inputs_until_it_is_deleted() {
        let mut e = ExitingOutputs::new();
        let tx = payment(&[pos(1000, 0, 0), pos(2000, 3, 1)]);
        let id = U256::from(9);
        e.in_flight_exit_started(id, &tx, 50);
        assert_eq!(e.forbids(pos(2000, 3, 1), SpendRule::Now), Some(50));
        e.in_flight_exit_deleted(id, 90);
        assert_eq!(e.forbids(pos(2000, 3, 1), SpendRule::Now), None, "deleted: spendable again");
        let at = |time| SpendRule::CommittedAt { time, grace: 10 };
        assert_eq!(e.forbids(pos(1000, 0, 0), at(70)), Some(50), "a block committed meanwhile");
        assert_eq!(e.forbids(pos(1000, 0, 0), at(90)), None, "a block committed after deletion");
        // Idempotent: the same events again change nothing.
        let before = e.clone();
        e.in_flight_exit_started(id, &tx, 50);
        e.in_flight_exit_deleted(id, 90);
        assert_eq!(e, before);
    }

    /// A deleted in-flight exit started again under the same exit id (EXIT-6 allows it) takes
    /// its inputs again, from its new start (review H: the start used to move the closed
    /// interval, whose `until` stayed set, so the inputs of a live exit counted as spendable).
    /// Re-reading any suffix of the events (a reorganisation, a restart before the cursor was
    /// stored) leaves every judgement as it was.
    #[test]
    fn an_in_flight_exit_started_again_after_its_deletion_takes_its_inputs_again() {
        let tx = payment(&[pos(1000, 0, 0)]);
        let p = pos(1000, 0, 0);
        let id = U256::from(9);
        let events = [(true, 50), (false, 90), (true, 120), (false, 200), (true, 260)];
        let apply = |e: &mut ExitingOutputs, (start, at): (bool, u64)| {
            if start {
                e.in_flight_exit_started(id, &tx, at)
            } else {
                e.in_flight_exit_deleted(id, at)
            }
        };
        let mut e = ExitingOutputs::new();
        for (i, ev) in events.into_iter().enumerate() {
            apply(&mut e, ev);
            let expect = ev.0.then_some(ev.1);
            assert_eq!(e.forbids(p, SpendRule::Now), expect, "after event {i}");
        }
        // Blocks committed in each interval (grace 10) and between them.
        let at = |time| SpendRule::CommittedAt { time, grace: 10 };
        let judged = |e: &ExitingOutputs| {
            [55, 60, 89, 95, 125, 130, 199, 230, 265, 270, 10_000].map(|t| e.forbids(p, at(t)))
        };
        assert_eq!(
            judged(&e),
            [
                None,
                Some(50),
                Some(50),
                None,
                None,
                Some(120),
                Some(120),
                None,
                None,
                Some(260),
                Some(260)
            ]
        );
        // Any suffix read again, in order: nothing changes.
        let want = (e.forbids(p, SpendRule::Now), judged(&e));
        for from in 0..events.len() {
            let mut again = e.clone();
            for ev in &events[from..] {
                apply(&mut again, *ev);
            }
            assert_eq!((again.forbids(p, SpendRule::Now), judged(&again)), want, "from {from}");
        }
    }

    #[test]
    fn a_piggybacked_output_is_placed_when_its_transaction_is_known() {
        let mut e = ExitingOutputs::new();
        let tx = payment(&[pos(1000, 0, 0)]);
        let id = U256::from(1);
        e.in_flight_exit_started(id, &tx, 10);
        e.output_piggybacked(id, 0, 12, |_, _| None);
        assert!(e.waits_for_inclusions());
        e.transaction_included(&tx.hash(), 3000, 4);
        assert_eq!(e.forbids(pos(3000, 4, 0), SpendRule::Now), Some(12));
        assert!(!e.waits_for_inclusions());
        // Known at once.
        let tx2 = payment(&[pos(1000, 0, 1)]);
        e.in_flight_exit_started(U256::from(2), &tx2, 20);
        e.output_piggybacked(U256::from(2), 0, 21, |h, _| (h == tx2.hash()).then_some((4000, 0)));
        assert_eq!(e.forbids(pos(4000, 0, 0), SpendRule::Now), Some(21));
        // A piggyback of an unknown exit is ignored.
        e.output_piggybacked(U256::from(3), 0, 22, |_, _| Some((5000, 0)));
        assert_eq!(e.forbids(pos(5000, 0, 0), SpendRule::Now), None);
    }

    #[test]
    fn the_earliest_forbidding_mark_is_reported() {
        let mut e = ExitingOutputs::new();
        let p = pos(1000, 0, 0);
        e.in_flight_exit_started(U256::from(1), &payment(&[p]), 5);
        e.standard_exit_started(p, 30);
        assert_eq!(e.forbids(p, SpendRule::Now), Some(5));
        e.in_flight_exit_deleted(U256::from(1), 40);
        assert_eq!(e.forbids(p, SpendRule::Now), Some(30));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<ExitingOutputs>(&json).unwrap(), e);
    }
}
