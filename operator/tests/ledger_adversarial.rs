//! Adversarial review of the ledger rules as the operator enforces them (LEDGER-1 … LEDGER-9,
//! OP-1, OP-2, OP-3, OP-5, OP-7) on a real redb store, without L1.
//!
//! - `model_based_random_ledger`: a reference model of the ledger written here (UTXO set,
//!   exiting outputs of LEDGER-9 of every kind, mempool in acceptance order) driven by random
//!   deposits (duplicated and near 2^256 too), payments valid and invalid (double spends in the
//!   mempool and across blocks, exiting and spent inputs, wrong signers, value created, sums
//!   overflowing 2^256, replays of pending and included transactions), exit events (standard
//!   exits, in-flight exits of pending, included and never submitted transactions, output
//!   piggybacks, deletions, exact and fake batch claims, replays of the last batch), block
//!   production of random sizes and restarts by reopening the store. After every step the
//!   operator's answers, its UTXO listing, its status and each produced block must agree with the
//!   model, and every block must pass the spec crate's own `validate_child_block` against the
//!   spec's `ExitingOutputs` fed the same events. `LEDGER_SEED` replays a run, `LEDGER_STEPS`
//!   lengthens it.
//! - Targeted tests for the sharpest races: an exit between acceptance and production, submits
//!   racing exit writes and blocks on other threads, the halt across a restart, replayed events
//!   and duplicated deposits across a restart, and the findings (see each test).

// Test helpers panic on setup failures by design.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, B256, U256, U512, keccak256};
use plasma_operator::{Chain, Halt, Store, SubmitError};
use plasma_spec::{
    ExitEvent, ExitingOutputs, Output, SignedTransaction, Signer, SigningDomain, SpendRule,
    Transaction, UtxoPos, UtxoSet, WithExits,
    test_utils::{domain, key, pos},
    validate_child_block,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

const ETH: Address = Address::ZERO;
const TOK: Address = Address::repeat_byte(0x70);
/// A token deposited in amounts near 2^256 (anyone can deploy one with such a supply).
const BIG: Address = Address::repeat_byte(0xb1);
/// A token nobody deposited.
const NONE: Address = Address::repeat_byte(0x99);
const MAX_MEMPOOL: usize = 100_000;

/// xorshift64*: reproducible from the seed printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn b256(&mut self) -> B256 {
        let mut b = [0u8; 32];
        for chunk in b.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_be_bytes());
        }
        B256::from(b)
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())].clone())
    }
}

fn open(dir: &Path, fee_recipient: Address) -> Chain {
    let store = Store::open(&dir.join("operator.redb")).unwrap();
    Chain::open(store, domain(), fee_recipient, MAX_MEMPOOL).unwrap()
}

fn ife_id(tx: &Transaction) -> U256 {
    U256::from_be_bytes(keccak256(tx.encode()).0)
}

fn sign(d: &SigningDomain, tx: Transaction, keys: &[&Signer]) -> SignedTransaction {
    let signatures = keys.iter().map(|k| k.sign_tx(d, &tx)).collect();
    SignedTransaction::new(tx, signatures)
}

fn code(r: &Result<B256, SubmitError>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(e) => e.code().into(),
    }
}

fn u512(v: U256) -> U512 {
    U512::from(v)
}

/// An in-flight exit as the model keeps it.
#[derive(Clone, Debug)]
struct Ife {
    tx: Transaction,
    inputs: Vec<UtxoPos>,
    since: u64,
    deleted: bool,
    piggybacked: BTreeSet<u8>,
}

#[derive(Clone, Debug)]
struct MTx {
    hash: B256,
    signed: SignedTransaction,
    inputs: Vec<UtxoPos>,
    signers: Vec<Address>,
}

/// The reference ledger: what the spec says the operator's state is.
#[derive(Default)]
struct Model {
    utxos: BTreeMap<UtxoPos, Output>,
    mempool: Vec<MTx>,
    spent_by: HashMap<UtxoPos, B256>,
    /// Every transaction a block included (payments and fee transactions), by hash.
    included: HashMap<B256, (u64, u16)>,
    included_payments: Vec<SignedTransaction>,
    standard: BTreeMap<UtxoPos, u64>,
    ifes: BTreeMap<U256, Ife>,
    piggy: BTreeMap<UtxoPos, u64>,
    claims: Vec<(UtxoPos, Address, Address, U256, u64)>,
    next_child: u64,
    deposits_since_block: u64,
    deposits: BTreeMap<u64, Transaction>,
    /// Conservation (LEDGER invariant): deposited − fees collected + fees claimed, per token.
    deposited: BTreeMap<Address, U512>,
    fees_collected: BTreeMap<Address, U512>,
    fees_claimed: BTreeMap<Address, U512>,
    halted: bool,
}

impl Model {
    /// LEDGER-9 under `SpendRule::Now`: the earliest L1 time of a live mark, if any.
    fn exiting(&self, p: UtxoPos, out: Option<&Output>) -> Option<u64> {
        let mut since: Vec<u64> = Vec::new();
        since.extend(self.standard.get(&p));
        since.extend(self.piggy.get(&p));
        for ife in self.ifes.values() {
            if !ife.deleted && ife.inputs.contains(&p) {
                since.push(ife.since);
            }
        }
        for (cp, owner, token, amount, at) in &self.claims {
            if *cp == p
                && out
                    .is_some_and(|o| o.owner == *owner && o.token == *token && o.amount == *amount)
            {
                since.push(*at);
            }
        }
        since.into_iter().min()
    }

    fn exiting_now(&self, p: UtxoPos) -> Option<u64> {
        self.exiting(p, self.utxos.get(&p))
    }

    /// Positions carrying a live mark (what `status().exiting_outputs` counts).
    fn marked_count(&self) -> usize {
        let mut set: BTreeSet<UtxoPos> = self.standard.keys().copied().collect();
        set.extend(self.piggy.keys());
        for ife in self.ifes.values().filter(|i| !i.deleted) {
            set.extend(&ife.inputs);
        }
        set.extend(self.claims.iter().map(|c| c.0));
        set.len()
    }

    fn spendable(&self) -> Vec<UtxoPos> {
        self.utxos
            .keys()
            .filter(|p| !self.spent_by.contains_key(p) && self.exiting_now(**p).is_none())
            .copied()
            .collect()
    }

    /// What the operator must answer to `tx` signed by `signers` (OP-1's order of checks).
    fn predict(&self, tx: &Transaction, signers: &[Address]) -> String {
        let hash = tx.hash();
        let inputs = match tx.check() {
            Ok((_, inputs)) => inputs,
            Err(e) => return plasma_spec::LedgerError::from(e).code().into(),
        };
        let refusal = self.predict_state(tx, &inputs, signers, hash);
        match refusal {
            Some(r) if r != "AlreadyKnown" && self.included.contains_key(&hash) => {
                "AlreadyKnown".into()
            }
            Some(r) => r,
            None => "Ok".into(),
        }
    }

    fn predict_state(
        &self,
        tx: &Transaction,
        inputs: &[UtxoPos],
        signers: &[Address],
        hash: B256,
    ) -> Option<String> {
        if self.mempool.iter().any(|m| m.hash == hash) {
            return Some("AlreadyKnown".into());
        }
        if inputs.iter().any(|i| self.spent_by.contains_key(i)) {
            return Some("MempoolConflict".into());
        }
        let mut sums: BTreeMap<Address, U256> = BTreeMap::new();
        for (i, signer) in inputs.iter().zip(signers) {
            let Some(out) = self.utxos.get(i) else { return Some("InputNotFound".into()) };
            if self.exiting(*i, Some(out)).is_some() {
                return Some("OutputExiting".into());
            }
            if out.owner != *signer {
                return Some("WrongSigner".into());
            }
            let sum = sums.entry(out.token).or_default();
            match sum.checked_add(out.amount) {
                Some(s) => *sum = s,
                None => return Some("AmountOverflow".into()),
            }
        }
        for (token, outputs) in tx.output_sums().unwrap().iter() {
            if outputs > sums.get(&token).copied().unwrap_or_default() {
                return Some("ValueCreated".into());
            }
        }
        None
    }

    fn accept(&mut self, signed: &SignedTransaction, signers: Vec<Address>) {
        let hash = signed.transaction.hash();
        let inputs = signed.transaction.input_positions().unwrap();
        for i in &inputs {
            self.spent_by.insert(*i, hash);
        }
        self.mempool.push(MTx { hash, signed: signed.clone(), inputs, signers });
    }

    /// OP-7: pending transactions spending an exiting output leave the mempool.
    fn drop_exiting(&mut self) -> usize {
        let (gone, kept): (Vec<MTx>, Vec<MTx>) = std::mem::take(&mut self.mempool)
            .into_iter()
            .partition(|m| m.inputs.iter().any(|i| self.exiting_now(*i).is_some()));
        self.mempool = kept;
        for m in &gone {
            for i in &m.inputs {
                self.spent_by.remove(i);
            }
        }
        gone.len()
    }

    fn apply_event(&mut self, event: &ExitEvent, at: u64) {
        match event {
            ExitEvent::StandardExitStarted { pos } => {
                self.standard.entry(*pos).or_insert(at);
            }
            ExitEvent::InFlightExitStarted { exit_id, tx } => {
                let inputs = tx.input_positions().unwrap();
                match self.ifes.get_mut(exit_id) {
                    // A deleted exit restarted (EXIT-6): its inputs exit again from `at`.
                    Some(ife) if ife.deleted => {
                        ife.deleted = false;
                        ife.since = at;
                    }
                    Some(_) => {}
                    None => {
                        let ife = Ife {
                            tx: tx.clone(),
                            inputs,
                            since: at,
                            deleted: false,
                            piggybacked: BTreeSet::new(),
                        };
                        self.ifes.insert(*exit_id, ife);
                    }
                }
            }
            ExitEvent::OutputPiggybacked { exit_id, index } => {
                let Some(ife) = self.ifes.get_mut(exit_id) else { return };
                ife.piggybacked.insert(*index);
                if let Some((b, t)) = self.included.get(&ife.tx.hash()) {
                    self.piggy.entry(pos(*b, *t, *index)).or_insert(at);
                }
            }
            ExitEvent::InFlightExitDeleted { exit_id } => {
                if let Some(ife) = self.ifes.get_mut(exit_id) {
                    ife.deleted = true;
                }
            }
            ExitEvent::BatchClaimed { pos, owner, token, amount } => {
                // The same claim again (another batch): the mark takes the later time, as the
                // spec's `ExitingOutputs` keeps one mark per source.
                let same = |c: &&mut (UtxoPos, Address, Address, U256, u64)| {
                    (c.0, c.1, c.2, c.3) == (*pos, *owner, *token, *amount)
                };
                match self.claims.iter_mut().find(same) {
                    Some(c) => c.4 = at,
                    None => self.claims.push((*pos, *owner, *token, *amount, at)),
                }
            }
        }
    }

    fn totals(&self) -> BTreeMap<Address, U512> {
        let mut t: BTreeMap<Address, U512> = BTreeMap::new();
        for o in self.utxos.values() {
            *t.entry(o.token).or_default() += u512(o.amount);
        }
        t
    }

    fn check_conservation(&self) {
        let mut want: BTreeMap<Address, U512> = BTreeMap::new();
        for (token, d) in &self.deposited {
            let fees = self.fees_collected.get(token).copied().unwrap_or_default();
            let claimed = self.fees_claimed.get(token).copied().unwrap_or_default();
            assert!(claimed <= fees, "fee outputs claimed more than was collected");
            let v = *d - fees + claimed;
            if !v.is_zero() {
                want.insert(*token, v);
            }
        }
        assert_eq!(self.totals(), want, "the ledger created or lost value");
    }
}

/// The run: the operator, the model and the spec's own reference beside it.
struct Run {
    dir: tempfile::TempDir,
    chain: Option<Chain>,
    model: Model,
    keys: Vec<Signer>,
    fee_recipient: Address,
    d: SigningDomain,
    rng: Rng,
    now: u64,
    cursor: u64,
    last_exit_batch: Option<Vec<(ExitEvent, u64)>>,
    /// The spec's reference: a UTXO set and the exiting outputs fed the same events.
    spec_set: UtxoSet,
    spec_exiting: ExitingOutputs,
    log: Vec<String>,
}

impl Run {
    fn new(seed: u64) -> Self {
        let keys: Vec<Signer> = (1..=4).map(key).collect();
        let fee_recipient = keys[3].address();
        let dir = tempfile::tempdir().unwrap();
        let chain = open(dir.path(), fee_recipient);
        Self {
            dir,
            chain: Some(chain),
            model: Model { next_child: 1000, ..Model::default() },
            keys,
            fee_recipient,
            d: domain(),
            rng: Rng(seed | 1),
            now: 1_700_000_000,
            cursor: 0,
            last_exit_batch: None,
            spec_set: UtxoSet::new(),
            spec_exiting: ExitingOutputs::new(),
            log: Vec::new(),
        }
    }

    fn chain(&self) -> &Chain {
        self.chain.as_ref().unwrap()
    }

    fn key_of(&self, owner: Address) -> &Signer {
        self.keys.iter().find(|k| k.address() == owner).unwrap()
    }

    fn random_owner(&mut self) -> Address {
        let i = self.rng.below(self.keys.len());
        self.keys[i].address()
    }

    fn note(&mut self, s: String) {
        self.log.push(s);
        if self.log.len() > 40 {
            self.log.remove(0);
        }
    }

    // ---------------------------------------------------------------------------------------

    fn deposit(&mut self) {
        // OP-5: a halted operator credits nothing more (its deposit loop stops).
        if self.model.deposits_since_block >= 998 || self.model.halted {
            return;
        }
        let owner = self.random_owner();
        let (token, amount) = match self.rng.below(10) {
            0..=4 => (ETH, U256::from(1 + self.rng.below(1_000) as u64)),
            5..=7 => (TOK, U256::from(1 + self.rng.below(50) as u64)),
            8 => (BIG, U256::MAX - U256::from(self.rng.below(3) as u64)),
            _ => (BIG, U256::from(1u64) << 255),
        };
        let blknum = self.model.next_child - 1000 + self.model.deposits_since_block + 1;
        let tx = Transaction::deposit(owner, token, amount);
        let credited = self.chain().credit_deposit(blknum, &tx.encode(), self.now).unwrap();
        assert!(credited, "a new deposit {blknum} is credited");
        self.note(format!("deposit {blknum} {token} {amount}"));
        self.model.deposits_since_block += 1;
        let p = pos(blknum, 0, 0);
        self.model.utxos.insert(p, Output::new(owner, token, amount));
        self.model.deposits.insert(blknum, tx.clone());
        *self.model.deposited.entry(token).or_default() += u512(amount);
        self.spec_set.apply_deposit(blknum, &tx).unwrap();
    }

    /// A deposit number credited again, with the same or another content: skipped (OP-5).
    fn duplicate_deposit(&mut self) {
        let at = self.rng.below(self.model.deposits.len());
        let Some((blknum, tx)) = self.model.deposits.iter().nth(at).map(|(b, t)| (*b, t.clone()))
        else {
            return;
        };
        let other = Transaction::deposit(self.random_owner(), ETH, U256::from(777u64));
        let bytes = if self.rng.chance(50) { tx.encode() } else { other.encode() };
        self.note(format!("duplicate deposit {blknum}"));
        assert!(!self.chain().credit_deposit(blknum, &bytes, self.now).unwrap());
    }

    /// A payment over `inputs` (owners from the model, or anyone for unknown inputs), its
    /// outputs the inputs' sums less a random fee, split among random owners.
    fn payment(&mut self, inputs: &[UtxoPos]) -> (SignedTransaction, Vec<Address>) {
        let mut sums: Vec<(Address, U256)> = Vec::new();
        let mut signers = Vec::new();
        for p in inputs {
            let (owner, token, amount) = match self.model.utxos.get(p) {
                Some(o) => (o.owner, o.token, o.amount),
                None => (self.random_owner(), ETH, U256::from(5u64)),
            };
            signers.push(owner);
            match sums.iter_mut().find(|(t, _)| *t == token) {
                Some((_, s)) => *s = s.saturating_add(amount),
                None => sums.push((token, amount)),
            }
        }
        let mut outputs = Vec::new();
        for (token, sum) in sums {
            let fee = match self.rng.below(4) {
                0 => U256::ZERO,
                1 if sum > U256::from(1u64) => U256::from(1u64),
                2 if sum > U256::from(1u64) => sum / U256::from(3u64),
                _ => U256::ZERO,
            };
            let mut left = sum - fee;
            if left.is_zero() {
                continue;
            }
            if outputs.len() + 2 <= plasma_spec::MAX_OUTPUTS
                && left > U256::from(1u64)
                && self.rng.chance(40)
            {
                let part = left / U256::from(2u64);
                outputs.push(Output::new(self.random_owner(), token, part));
                left -= part;
            }
            if outputs.len() < plasma_spec::MAX_OUTPUTS {
                outputs.push(Output::new(self.random_owner(), token, left));
            }
        }
        if outputs.is_empty() {
            outputs.push(Output::new(self.random_owner(), ETH, U256::from(1u64)));
        }
        let tx = Transaction::payment(inputs, outputs, self.rng.b256());
        let keys: Vec<&Signer> = signers.iter().map(|a| self.key_of(*a)).collect();
        (sign(&self.d, tx, &keys), signers)
    }

    fn submit_and_check(&mut self, signed: &SignedTransaction, signers: &[Address], what: &str) {
        let want = self.model.predict(&signed.transaction, signers);
        let want = if self.model.halted { "OperatorHalted".to_string() } else { want };
        let got = self.chain().submit(&[signed.encode()]).pop().unwrap();
        self.note(format!("{what}: {} -> {}", signed.transaction.hash(), code(&got)));
        assert_eq!(code(&got), want, "{what}: {got:?}");
        if let Ok(h) = got {
            assert_eq!(h, signed.transaction.hash());
            self.model.accept(signed, signers.to_vec());
        }
    }

    fn pay_valid(&mut self) {
        let spendable = self.model.spendable();
        if spendable.is_empty() {
            return;
        }
        let n = 1 + self.rng.below(spendable.len().min(plasma_spec::MAX_INPUTS).min(3));
        let mut inputs = Vec::new();
        while inputs.len() < n {
            let p = self.rng.pick(&spendable).unwrap();
            if !inputs.contains(&p) {
                inputs.push(p);
            }
        }
        let (signed, signers) = self.payment(&inputs);
        self.submit_and_check(&signed, &signers, "payment");
    }

    fn pay_invalid(&mut self) {
        let all: Vec<UtxoPos> = self.model.utxos.keys().copied().collect();
        let taken: Vec<UtxoPos> = self.model.spent_by.keys().copied().collect();
        let exiting: Vec<UtxoPos> =
            all.iter().filter(|p| self.model.exiting_now(**p).is_some()).copied().collect();
        let spent: Vec<UtxoPos> = self
            .model
            .included_payments
            .iter()
            .flat_map(|s| s.transaction.input_positions().unwrap())
            .collect();
        let spendable = self.model.spendable();
        let kind = self.rng.below(9);
        let input = match kind {
            0 => self.rng.pick(&taken),
            1 => self.rng.pick(&exiting),
            2 => self.rng.pick(&spent),
            3 => Some(pos(self.model.next_child + 1000 * self.rng.below(3) as u64, 0, 0)),
            _ => self.rng.pick(&spendable).or_else(|| self.rng.pick(&all)),
        };
        let Some(input) = input else { return };
        let (mut signed, mut signers) = self.payment(&[input]);
        let tx = &mut signed.transaction;
        match kind {
            // Value created: a token no input holds.
            4 if tx.outputs.len() < plasma_spec::MAX_OUTPUTS => {
                tx.outputs.push(Output::new(self.keys[0].address(), NONE, U256::from(1u64)));
            }
            5 => {
                // Value created: one more than the input's amount of its own token.
                if let Some(o) = self.model.utxos.get(&input)
                    && let Some(more) = o.amount.checked_add(U256::from(1u64))
                {
                    tx.outputs = vec![Output::new(o.owner, o.token, more)];
                }
            }
            6 => {
                // Outputs overflowing 2^256 (TX-5).
                tx.outputs = vec![
                    Output::new(self.keys[0].address(), BIG, U256::MAX),
                    Output::new(self.keys[1].address(), BIG, U256::from(1u64)),
                ];
            }
            7 => {
                // Another key signs: a wrong signer (SIG-4).
                let other = self.keys.iter().find(|k| k.address() != signers[0]).unwrap();
                signers[0] = other.address();
            }
            _ => {}
        }
        let tx = signed.transaction.clone();
        let keys: Vec<&Signer> = signers.iter().map(|a| self.key_of(*a)).collect();
        let signed = sign(&self.d, tx, &keys);
        self.submit_and_check(&signed, &signers, &format!("invalid payment kind {kind}"));
    }

    /// Two inputs of BIG summing past 2^256 in one payment (LEDGER-3's checked arithmetic).
    fn pay_overflowing_inputs(&mut self) {
        let big: Vec<UtxoPos> = self
            .model
            .spendable()
            .into_iter()
            .filter(|p| self.model.utxos[p].token == BIG)
            .collect();
        if big.len() < 2 {
            return;
        }
        let (a, b) = (big[0], big[1]);
        let owners = [self.model.utxos[&a].owner, self.model.utxos[&b].owner];
        let tx = Transaction::payment(
            &[a, b],
            vec![Output::new(owners[0], BIG, U256::MAX)],
            self.rng.b256(),
        );
        let keys: Vec<&Signer> = owners.iter().map(|o| self.key_of(*o)).collect();
        let signed = sign(&self.d, tx, &keys);
        self.submit_and_check(&signed, &owners, "overflowing inputs");
    }

    /// A pending or included transaction sent again.
    fn resubmit(&mut self) {
        let pending: Vec<SignedTransaction> =
            self.model.mempool.iter().map(|m| m.signed.clone()).collect();
        let pick = if self.rng.chance(50) {
            self.rng.pick(&pending)
        } else {
            self.rng.pick(&self.model.included_payments)
        };
        let Some(signed) = pick else { return };
        let signers: Vec<Address> =
            signed.transaction.input_positions().unwrap().iter().map(|_| Address::ZERO).collect();
        // The answer does not depend on the signers here: known transactions are refused first.
        let got = self.chain().submit(&[signed.encode()]).pop().unwrap();
        let want = if self.model.halted { "OperatorHalted" } else { "AlreadyKnown" };
        self.note(format!("resubmit {} -> {}", signed.transaction.hash(), code(&got)));
        assert_eq!(code(&got), want, "resubmit {signers:?}: {got:?}");
    }

    fn exit_events(&mut self) {
        let mut events = Vec::new();
        let n = 1 + self.rng.below(3);
        for _ in 0..n {
            self.now += 1 + self.rng.below(20) as u64;
            if let Some(e) = self.random_event() {
                // Applied to the model as generated, so the next one sees it.
                self.model.apply_event(&e, self.now);
                events.push((e, self.now));
            }
        }
        self.cursor += 1 + self.rng.below(5) as u64;
        self.apply_events(&events, false);
        self.last_exit_batch = Some(events);
    }

    fn apply_events(&mut self, events: &[(ExitEvent, u64)], replay: bool) {
        let want_dropped = self.model.drop_exiting();
        let included = self.model.included.clone();
        for (e, at) in events {
            self.spec_exiting.apply(e, *at, |h, _| included.get(&h).copied());
        }
        self.note(format!("exit events (replay {replay}) {events:?}"));
        let dropped = self.chain().apply_exit_events(events, self.cursor).unwrap();
        assert_eq!(dropped, want_dropped, "pending transactions dropped for exits");
        if replay {
            assert_eq!(dropped, 0);
        }
    }

    fn replay_exit_batch(&mut self) {
        let Some(events) = self.last_exit_batch.clone() else { return };
        self.apply_events(&events, true);
    }

    fn random_event(&mut self) -> Option<ExitEvent> {
        let utxos: Vec<UtxoPos> = self.model.utxos.keys().copied().collect();
        match self.rng.below(6) {
            0 => {
                // Standard exit of an unspent output (pending-spent or not), or of a spent one.
                let spent: Vec<UtxoPos> = self
                    .model
                    .included_payments
                    .iter()
                    .flat_map(|s| s.transaction.input_positions().unwrap())
                    .collect();
                let p = if self.rng.chance(80) {
                    self.rng.pick(&utxos)
                } else {
                    self.rng.pick(&spent)
                }?;
                (!self.model.standard.contains_key(&p))
                    .then_some(ExitEvent::StandardExitStarted { pos: p })
            }
            1 => {
                // An in-flight exit of a pending, an included or a never submitted payment.
                let tx = match self.rng.below(3) {
                    0 => self.rng.pick(&self.model.mempool)?.signed.transaction,
                    1 => self.rng.pick(&self.model.included_payments)?.transaction,
                    _ => {
                        let p = self.rng.pick(&self.model.spendable())?;
                        self.payment(&[p]).0.transaction
                    }
                };
                let exit_id = ife_id(&tx);
                // Once per transaction here: a restart after deletion is a finding of its own.
                (!self.model.ifes.contains_key(&exit_id))
                    .then_some(ExitEvent::InFlightExitStarted { exit_id, tx })
            }
            2 | 3 => {
                let live: Vec<(U256, usize)> = self
                    .model
                    .ifes
                    .iter()
                    .filter(|(_, i)| !i.deleted)
                    .map(|(id, i)| (*id, i.tx.outputs.len()))
                    .collect();
                let (exit_id, outputs) = self.rng.pick(&live)?;
                let ife = &self.model.ifes[&exit_id];
                if self.rng.chance(50) && ife.piggybacked.is_empty() {
                    Some(ExitEvent::InFlightExitDeleted { exit_id })
                } else {
                    // The contract refuses an output piggybacked twice.
                    let index = self.rng.below(outputs) as u8;
                    (!ife.piggybacked.contains(&index))
                        .then_some(ExitEvent::OutputPiggybacked { exit_id, index })
                }
            }
            _ => {
                // A batch claim, exact or fake (another owner, amount or token).
                let p = self.rng.pick(&utxos)?;
                let o = self.model.utxos[&p].clone();
                let (mut owner, mut token, mut amount) = (o.owner, o.token, o.amount);
                match self.rng.below(5) {
                    0 => owner = self.keys.iter().map(Signer::address).find(|a| *a != o.owner)?,
                    1 => amount = amount.wrapping_add(U256::from(1u64)),
                    2 => token = if token == ETH { TOK } else { ETH },
                    _ => {}
                }
                Some(ExitEvent::BatchClaimed { pos: p, owner, token, amount })
            }
        }
    }

    fn produce(&mut self) {
        let max_txs = match self.rng.below(4) {
            0 => 1,
            1 => 2 + self.rng.below(4),
            _ => 1_000,
        };
        let for_deposits = self.rng.chance(10);
        let record = if for_deposits {
            self.chain().produce_block_for_deposits(max_txs).unwrap()
        } else {
            self.chain().produce_block(max_txs).unwrap()
        };
        self.note(format!("produce max {max_txs} for deposits {for_deposits}"));
        if self.model.halted {
            assert!(record.is_none(), "a halted operator produced a block (LEDGER-7)");
            return;
        }
        if self.model.mempool.is_empty() && !for_deposits {
            assert!(record.is_none());
            return;
        }
        let record = record.expect("a block");
        let blknum = self.model.next_child;
        assert_eq!(record.blknum, blknum);

        // The model's block: the front of the mempool, in acceptance order, each a valid spend
        // of the set (the mempool holds nothing exiting: dropped at each exit event). Fee sums
        // overflowing 2^256 drop the later payment (BlockBuilder's TX-5 check).
        let take = self.model.mempool.len().min(max_txs);
        let candidates: Vec<MTx> = self.model.mempool.drain(..take).collect();
        let mut fees: Vec<(Address, U256)> = Vec::new();
        let mut included: Vec<MTx> = Vec::new();
        for m in candidates {
            for i in &m.inputs {
                self.model.spent_by.remove(i);
            }
            let mut in_sums: BTreeMap<Address, U256> = BTreeMap::new();
            for (i, s) in m.inputs.iter().zip(&m.signers) {
                let o = &self.model.utxos[i];
                assert_eq!(o.owner, *s);
                assert!(self.model.exiting(*i, Some(o)).is_none(), "model: exiting in mempool");
                let e = in_sums.entry(o.token).or_default();
                *e = e.checked_add(o.amount).unwrap();
            }
            let out = m.signed.transaction.output_sums().unwrap();
            let mut tx_fees = Vec::new();
            for (token, sum) in &in_sums {
                let fee = *sum - out.get(*token);
                if !fee.is_zero() {
                    tx_fees.push((*token, fee));
                }
            }
            let overflow = tx_fees.iter().any(|(t, f)| {
                fees.iter()
                    .find(|(ft, _)| ft == t)
                    .is_some_and(|(_, a)| a.checked_add(*f).is_none())
            });
            if overflow {
                continue;
            }
            for (t, f) in tx_fees {
                match fees.iter_mut().find(|(ft, _)| *ft == t) {
                    Some((_, a)) => *a += f,
                    None => fees.push((t, f)),
                }
            }
            included.push(m);
        }
        let has_fee = !fees.is_empty();
        assert_eq!(record.txs.len(), included.len() + usize::from(has_fee), "block {blknum} size");
        let signed: Vec<SignedTransaction> =
            record.txs.iter().map(|b| SignedTransaction::decode(b).unwrap()).collect();
        for (i, m) in included.iter().enumerate() {
            assert_eq!(signed[i].transaction.hash(), m.hash, "block {blknum} tx {i}");
        }
        // The spec's own validation, against the spec's exits fed the same events.
        let view =
            WithExits { utxos: &self.spec_set, exiting: &self.spec_exiting, rule: SpendRule::Now };
        let diff = validate_child_block(&view, blknum, &signed, &self.d)
            .unwrap_or_else(|e| panic!("produced block {blknum} is invalid: {e}"));
        self.spec_set.apply(&diff);

        // The model moves.
        for (i, m) in included.iter().enumerate() {
            for p in &m.inputs {
                self.model.utxos.remove(p);
            }
            for (o, out) in m.signed.transaction.outputs.iter().enumerate() {
                self.model.utxos.insert(pos(blknum, i as u16, o as u8), out.clone());
            }
            self.model.included.insert(m.hash, (blknum, i as u16));
            self.model.included_payments.push(m.signed.clone());
        }
        for (t, f) in &fees {
            *self.model.fees_collected.entry(*t).or_default() += u512(*f);
        }
        if has_fee {
            let fee_tx = &signed.last().unwrap().transaction;
            assert_eq!(fee_tx.txType, 3, "the block ends with its fee transaction");
            let mut want: Vec<(Address, U256)> =
                fees.iter().take(plasma_spec::MAX_OUTPUTS).copied().collect();
            want.sort();
            let mut got: Vec<(Address, U256)> =
                fee_tx.outputs.iter().map(|o| (o.token, o.amount)).collect();
            got.sort();
            assert_eq!(got, want, "fee outputs");
            let i = included.len() as u16;
            for (o, out) in fee_tx.outputs.iter().enumerate() {
                assert_eq!(out.owner, self.fee_recipient);
                self.model.utxos.insert(pos(blknum, i, o as u8), out.clone());
                *self.model.fees_claimed.entry(out.token).or_default() += u512(out.amount);
            }
            self.model.included.insert(fee_tx.hash(), (blknum, i));
        }
        self.model.next_child += 1000;
        self.model.deposits_since_block = 0;
    }

    fn restart(&mut self) {
        let before = (self.chain().status(), self.owners_view());
        self.note("restart".into());
        drop(self.chain.take());
        self.chain = Some(open(self.dir.path(), self.fee_recipient));
        let after = (self.chain().status(), self.owners_view());
        assert_eq!(before, after, "the state after a restart differs");
    }

    fn halt(&mut self) {
        let blknum = self.model.deposits.keys().next().copied().unwrap_or(1);
        self.note("halt".into());
        self.chain().halt(Halt::DepositVanished { blknum, credited: B256::ZERO }).unwrap();
        self.model.halted = true;
    }

    fn owners_view(&self) -> Vec<(Address, Vec<(UtxoPos, Output)>)> {
        let mut owners: Vec<Address> = self.keys.iter().map(Signer::address).collect();
        owners.push(Address::repeat_byte(0x66));
        owners.into_iter().map(|o| (o, self.chain().utxos_of(o).into_iter().collect())).collect()
    }

    /// Everything observable agrees with the model.
    fn check(&self) {
        let chain = self.chain();
        let status = chain.status();
        assert_eq!(status.next_child_block, self.model.next_child);
        assert_eq!(status.mempool_size, self.model.mempool.len(), "mempool size");
        assert_eq!(chain.mempool_len(), self.model.mempool.len());
        assert_eq!(status.utxo_count, self.model.utxos.len(), "UTXO count");
        assert_eq!(status.exit_cursor, self.cursor);
        assert_eq!(status.exiting_outputs, self.model.marked_count(), "exiting outputs");
        for (owner, listed) in self.owners_view() {
            let want: Vec<(UtxoPos, Output)> = self
                .model
                .utxos
                .iter()
                .filter(|(p, o)| o.owner == owner && self.model.exiting(**p, Some(o)).is_none())
                .map(|(p, o)| (*p, o.clone()))
                .collect();
            assert_eq!(listed, want, "utxos of {owner}");
        }
        for (p, o) in &self.model.utxos {
            assert_eq!(chain.utxo(*p).as_ref(), Some(o));
            assert_eq!(chain.exiting_since(*p), self.model.exiting(*p, Some(o)), "exiting {p}");
        }
        let mut spec: Vec<(UtxoPos, Output)> =
            self.spec_set.iter().map(|(p, o)| (*p, o.clone())).collect();
        spec.sort_by_key(|(p, _)| *p);
        let model: Vec<(UtxoPos, Output)> =
            self.model.utxos.iter().map(|(p, o)| (*p, o.clone())).collect();
        assert_eq!(spec, model, "the spec's UTXO set and the model's");
        assert_eq!(chain.halted().is_some(), self.model.halted);
        self.model.check_conservation();
    }

    /// One random operation; `late` allows the halt (near the end of a run, so that most of
    /// the run exercises a live chain).
    fn step(&mut self, late: bool) {
        let halted_allowed = late && std::env::var("LEDGER_NO_HALT").is_err();
        match self.rng.below(100) {
            0..=11 => self.deposit(),
            12..=13 => self.duplicate_deposit(),
            14..=39 => self.pay_valid(),
            40..=54 => self.pay_invalid(),
            55..=56 => self.pay_overflowing_inputs(),
            57..=61 => self.resubmit(),
            62..=73 => self.exit_events(),
            74..=75 => self.replay_exit_batch(),
            76..=92 => self.produce(),
            93..=98 => self.restart(),
            _ => {
                if halted_allowed && !self.model.halted && self.rng.chance(30) {
                    self.halt();
                }
            }
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[test]
fn model_based_random_ledger() {
    let seed = env_u64("LEDGER_SEED", 0x5eed_1ed6_e700_0001);
    let steps = env_u64("LEDGER_STEPS", 500);
    let runs = env_u64("LEDGER_RUNS", 2);
    for run in 0..runs {
        let seed = seed.wrapping_add(run.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        eprintln!("LEDGER_SEED={seed} LEDGER_STEPS={steps}");
        let mut r = Run::new(seed);
        for _ in 0..8 {
            r.deposit();
        }
        for step in 0..steps {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                r.step(step * 10 >= steps * 9);
                r.check();
            }));
            if let Err(panic) = outcome {
                eprintln!("failed at step {step} of seed {seed}; last operations:");
                for l in &r.log {
                    eprintln!("  {l}");
                }
                std::panic::resume_unwind(panic);
            }
        }
        eprintln!(
            "run {run}: {} blocks, {} utxos, {} included, {} exits",
            (r.model.next_child - 1000) / 1000,
            r.model.utxos.len(),
            r.model.included_payments.len(),
            r.model.marked_count()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Targeted tests.

struct Env {
    dir: tempfile::TempDir,
    chain: Option<Chain>,
    d: SigningDomain,
    alice: Signer,
    bob: Signer,
}

impl Env {
    /// A chain with `n` deposits of 100 wei to alice at deposit blocks 1..=n.
    fn new(n: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let chain = open(dir.path(), Address::repeat_byte(0xfe));
        let (alice, bob) = (key(1), key(2));
        for b in 1..=n {
            let tx = Transaction::deposit(alice.address(), ETH, U256::from(100u64));
            assert!(chain.credit_deposit(b, &tx.encode(), 1_700_000_000).unwrap());
        }
        Self { dir, chain: Some(chain), d: domain(), alice, bob }
    }

    fn chain(&self) -> &Chain {
        self.chain.as_ref().unwrap()
    }

    fn reopen(&mut self) {
        drop(self.chain.take());
        self.chain = Some(open(self.dir.path(), Address::repeat_byte(0xfe)));
    }

    fn pay(&self, input: UtxoPos, to: &Signer, amount: u64, by: &Signer) -> SignedTransaction {
        let out = vec![Output::new(to.address(), ETH, U256::from(amount))];
        sign(&self.d, Transaction::payment(&[input], out, B256::ZERO), &[by])
    }

    fn submit(&self, tx: &SignedTransaction) -> String {
        code(&self.chain().submit(&[tx.encode()]).pop().unwrap())
    }
}

/// Found by this review, fixed in the spec crate (`ExitingOutputs::mark`): an in-flight exit
/// deleted unpiggybacked frees its transaction, and a party may start it again (EXIT-6) under the
/// same exit id (`keccak256(inFlightTx)`); LEDGER-9 makes its inputs exiting again from the new
/// start. `mark` used to find the old, closed interval of the same source and only move its
/// `since`, leaving `until` (the deletion) set: the restarted exit marked nothing, the operator
/// accepted and included spends of its inputs (OP-7), and every watcher (`SpendRule::CommittedAt`,
/// same code) called such a block valid. A start after a deletion now opens a new interval.
#[test]
fn a_restarted_in_flight_exit_takes_its_inputs_again() {
    let mut env = Env::new(2);
    let t = env.pay(pos(1, 0, 0), &env.bob, 100, &env.alice).transaction;
    let exit_id = ife_id(&t);
    let start = ExitEvent::InFlightExitStarted { exit_id, tx: t };
    let chain = env.chain();
    chain.apply_exit_events(&[(start.clone(), 100)], 1).unwrap();
    assert_eq!(chain.exiting_since(pos(1, 0, 0)), Some(100));
    chain.apply_exit_events(&[(ExitEvent::InFlightExitDeleted { exit_id }, 200)], 2).unwrap();
    assert_eq!(chain.exiting_since(pos(1, 0, 0)), None, "deleted: spendable again");
    // Started again by a party (EXIT-6): the inputs exit again.
    chain.apply_exit_events(&[(start, 300)], 3).unwrap();
    let other = env.pay(pos(1, 0, 0), &env.alice, 99, &env.alice);
    let refused = env.submit(&other);
    let since = chain.exiting_since(pos(1, 0, 0));
    // Whatever happens, a block must not spend it.
    let block = chain.produce_block(10).unwrap();
    env.reopen();
    assert_eq!(since, Some(300), "the restarted exit marks its input");
    assert_eq!(refused, "OutputExiting", "a spend of a restarted in-flight exit's input");
    assert!(block.is_none(), "a block spent an input of a live in-flight exit");
}

/// OP-7 for every kind of LEDGER-9: a payment accepted before the event is dropped when the
/// event arrives, never included, not back after a restart, and refused when sent again.
#[test]
fn an_exit_between_acceptance_and_production_keeps_the_spend_out() {
    for kind in 0..5 {
        let mut env = Env::new(3);
        // An included payment whose outputs a piggyback or a claim can name.
        let first = env.pay(pos(3, 0, 0), &env.alice, 100, &env.alice);
        assert_eq!(env.submit(&first), "Ok");
        env.chain().produce_block(10).unwrap().unwrap();
        let (victim, event) = match kind {
            0 => (pos(1, 0, 0), ExitEvent::StandardExitStarted { pos: pos(1, 0, 0) }),
            1 => {
                let t = env.pay(pos(1, 0, 0), &env.bob, 50, &env.alice).transaction;
                (pos(1, 0, 0), ExitEvent::InFlightExitStarted { exit_id: ife_id(&t), tx: t })
            }
            2 => {
                let t = first.transaction.clone();
                let exit_id = ife_id(&t);
                let start = ExitEvent::InFlightExitStarted { exit_id, tx: t };
                env.chain().apply_exit_events(&[(start, 90)], 1).unwrap();
                (pos(1000, 0, 0), ExitEvent::OutputPiggybacked { exit_id, index: 0 })
            }
            3 => (
                pos(1000, 0, 0),
                ExitEvent::BatchClaimed {
                    pos: pos(1000, 0, 0),
                    owner: env.alice.address(),
                    token: ETH,
                    amount: U256::from(100u64),
                },
            ),
            _ => (
                pos(2, 0, 0),
                ExitEvent::BatchClaimed {
                    pos: pos(2, 0, 0),
                    owner: env.alice.address(),
                    token: ETH,
                    amount: U256::from(100u64),
                },
            ),
        };
        let spend = env.pay(victim, &env.bob, 100, &env.alice);
        let innocent = env.pay(
            if victim == pos(2, 0, 0) { pos(1, 0, 0) } else { pos(2, 0, 0) },
            &env.bob,
            100,
            &env.alice,
        );
        assert_eq!(env.submit(&spend), "Ok");
        assert_eq!(env.submit(&innocent), "Ok");
        assert_eq!(env.chain().apply_exit_events(&[(event, 100)], 5).unwrap(), 1, "kind {kind}");
        assert_eq!(env.chain().exiting_since(victim), Some(100), "kind {kind}");
        env.reopen();
        assert_eq!(env.chain().mempool_len(), 1, "kind {kind}: the dropped spend is not stored");
        let block = env.chain().produce_block(10).unwrap().unwrap();
        let hashes: Vec<B256> =
            block.txs.iter().map(|b| SignedTransaction::decode(b).unwrap().hash()).collect();
        assert_eq!(hashes, vec![innocent.hash()], "kind {kind}");
        assert_eq!(env.submit(&spend), "OutputExiting", "kind {kind}");
        env.reopen();
        assert_eq!(env.submit(&spend), "OutputExiting", "kind {kind} after a restart");
        assert!(env.chain().produce_block(10).unwrap().is_none());
        assert!(!env.chain().utxos_of(env.alice.address()).contains_key(&victim));
    }
}

/// Submissions on four threads race exit writes and blocks on a fifth: no block produced after
/// an exit event was applied spends an output it marked, every acknowledged payment is either
/// included or spends a marked output, and nothing is included twice — before and after a
/// restart.
#[test]
fn submits_racing_exits_and_blocks_never_include_an_exiting_spend() {
    const N: u64 = 400;
    let mut env = Env::new(N);
    let marked = std::sync::Mutex::new(BTreeSet::<UtxoPos>::new());
    let acked = std::sync::Mutex::new(Vec::<(B256, UtxoPos)>::new());
    let mut included: HashMap<B256, u64> = HashMap::new();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (env, acked, done) = (&env, &acked, &done);
            s.spawn(move || {
                let mut rng = Rng(0x1234 + t);
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    // Groups of 1..20 payments of random deposits, conflicting at times.
                    let n = 1 + rng.below(20);
                    let txs: Vec<SignedTransaction> = (0..n)
                        .map(|_| {
                            let p = pos(1 + rng.below(N as usize) as u64, 0, 0);
                            let amount = 1 + rng.below(100) as u64;
                            let out = vec![Output::new(env.bob.address(), ETH, U256::from(amount))];
                            let tx = Transaction::payment(&[p], out, rng.b256());
                            sign(&env.d, tx, &[&env.alice])
                        })
                        .collect();
                    let raw: Vec<Vec<u8>> = txs.iter().map(SignedTransaction::encode).collect();
                    for (tx, r) in txs.iter().zip(env.chain().submit(&raw)) {
                        if r.is_ok() {
                            let input = tx.transaction.input_positions().unwrap()[0];
                            acked.lock().unwrap().push((tx.hash(), input));
                        }
                    }
                }
            });
        }
        let mut rng = Rng(99);
        let mut at = 1_700_000_000;
        for round in 0..60u64 {
            // Mark a few deposits (standard exits and in-flight exits of unrelated payments).
            let mut events = Vec::new();
            for _ in 0..3 {
                at += 1;
                let p = pos(1 + rng.below(N as usize) as u64, 0, 0);
                let e = if rng.chance(50) {
                    ExitEvent::StandardExitStarted { pos: p }
                } else {
                    let out = vec![Output::new(env.bob.address(), ETH, U256::from(1u64))];
                    let tx = Transaction::payment(&[p], out, rng.b256());
                    ExitEvent::InFlightExitStarted { exit_id: ife_id(&tx), tx }
                };
                marked.lock().unwrap().insert(p);
                events.push((e, at));
            }
            env.chain().apply_exit_events(&events, round + 1).unwrap();
            let block = env.chain().produce_block(1 + rng.below(50)).unwrap();
            let marked_now = marked.lock().unwrap().clone();
            for b in block.iter() {
                for raw in &b.txs {
                    let signed = SignedTransaction::decode(raw).unwrap();
                    for i in signed.transaction.input_positions().unwrap() {
                        assert!(!marked_now.contains(&i), "block {} spends exiting {i}", b.blknum);
                    }
                    // Payments only: two blocks' equal fee transactions share a hash.
                    if signed.transaction.txType == 1 {
                        assert!(included.insert(signed.hash(), b.blknum).is_none(), "twice");
                    }
                }
            }
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    env.reopen();
    while let Some(b) = env.chain().produce_block(65_535).unwrap() {
        let marked = marked.lock().unwrap();
        for raw in &b.txs {
            let signed = SignedTransaction::decode(raw).unwrap();
            for i in signed.transaction.input_positions().unwrap() {
                assert!(
                    !marked.contains(&i),
                    "after a restart: block {} spends exiting {i}",
                    b.blknum
                );
            }
            if signed.transaction.txType == 1 {
                assert!(included.insert(signed.hash(), b.blknum).is_none(), "twice");
            }
        }
    }
    let marked = marked.lock().unwrap();
    let acked = acked.lock().unwrap();
    let mut spent: BTreeSet<UtxoPos> = BTreeSet::new();
    for (hash, input) in acked.iter() {
        if included.contains_key(hash) {
            assert!(spent.insert(*input), "{input} spent twice");
        } else {
            assert!(marked.contains(input), "acknowledged {hash} lost without an exit");
        }
    }
    assert!(!included.is_empty() && included.len() <= acked.len());
}

/// LEDGER-7: a stored halt stops every block (also OP-8's empty ones) and refuses submissions,
/// across a restart; a payment accepted before the halt stays pending, never included.
#[test]
fn a_halt_stops_production_and_submission_across_a_restart() {
    let mut env = Env::new(3);
    let before = env.pay(pos(1, 0, 0), &env.bob, 100, &env.alice);
    assert_eq!(env.submit(&before), "Ok");
    env.chain().halt(Halt::DepositVanished { blknum: 2, credited: B256::ZERO }).unwrap();
    let status = env.chain().status();
    for round in 0..2 {
        assert!(env.chain().produce_block(10).unwrap().is_none(), "round {round}");
        assert!(env.chain().produce_block_for_deposits(10).unwrap().is_none(), "round {round}");
        let after = env.pay(pos(3, 0, 0), &env.bob, 100, &env.alice);
        assert_eq!(env.submit(&after), "OperatorHalted", "round {round}");
        assert_eq!(env.chain().status(), status, "round {round}");
        assert!(env.chain().halted().is_some());
        env.reopen();
    }
}

/// The events of a range read again (a restart before the cursor moved on, a reorg re-read)
/// and deposits read again change nothing, before or after a restart.
#[test]
fn replayed_exit_events_and_duplicate_deposits_change_nothing_across_a_restart() {
    let mut env = Env::new(4);
    let t = env.pay(pos(2, 0, 0), &env.bob, 100, &env.alice);
    assert_eq!(env.submit(&t), "Ok");
    env.chain().produce_block(10).unwrap().unwrap();
    let ife = ife_id(&t.transaction);
    let deleted = env.pay(pos(3, 0, 0), &env.bob, 100, &env.alice).transaction;
    let deleted_id = ife_id(&deleted);
    let events = vec![
        (ExitEvent::StandardExitStarted { pos: pos(1, 0, 0) }, 10),
        (ExitEvent::InFlightExitStarted { exit_id: ife, tx: t.transaction }, 11),
        (ExitEvent::OutputPiggybacked { exit_id: ife, index: 0 }, 12),
        (ExitEvent::InFlightExitStarted { exit_id: deleted_id, tx: deleted }, 13),
        (ExitEvent::InFlightExitDeleted { exit_id: deleted_id }, 14),
        (
            ExitEvent::BatchClaimed {
                pos: pos(4, 0, 0),
                owner: env.bob.address(),
                token: ETH,
                amount: U256::from(100u64),
            },
            15,
        ),
    ];
    env.chain().apply_exit_events(&events, 7).unwrap();
    let snapshot = |env: &Env| {
        let c = env.chain();
        let positions = [pos(1, 0, 0), pos(2, 0, 0), pos(3, 0, 0), pos(4, 0, 0), pos(1000, 0, 0)];
        (
            c.status(),
            c.utxos_of(env.alice.address()),
            c.utxos_of(env.bob.address()),
            positions.map(|p| c.exiting_since(p)),
        )
    };
    let want = snapshot(&env);
    assert_eq!(want.3, [Some(10), Some(11), None, None, Some(12)]);
    for round in 0..3 {
        env.chain().apply_exit_events(&events, 7).unwrap();
        for b in 1..=4u64 {
            let dep = Transaction::deposit(env.alice.address(), ETH, U256::from(100u64));
            assert!(!env.chain().credit_deposit(b, &dep.encode(), 1_700_000_000).unwrap());
            let other = Transaction::deposit(env.bob.address(), ETH, U256::from(1u64 << 40));
            assert!(!env.chain().credit_deposit(b, &other.encode(), 1_700_000_000).unwrap());
        }
        assert_eq!(snapshot(&env), want, "round {round}");
        env.reopen();
        assert_eq!(snapshot(&env), want, "round {round} after a restart");
    }
    // The freed input of the deleted exit is spendable; the rest are not.
    assert_eq!(env.submit(&env.pay(pos(3, 0, 0), &env.bob, 100, &env.alice)), "Ok");
    assert_eq!(env.submit(&env.pay(pos(1, 0, 0), &env.bob, 100, &env.alice)), "OutputExiting");
    let bobs = env.pay(pos(1000, 0, 0), &env.alice, 100, &env.bob);
    assert_eq!(env.submit(&bobs), "OutputExiting");
    // A fake claim (bob named on alice's coin) froze nothing.
    assert_eq!(env.submit(&env.pay(pos(4, 0, 0), &env.bob, 100, &env.alice)), "Ok");
}

/// OP-8 after a restart: the deposit slots used since the last child block are what they were.
#[test]
fn deposit_slots_used_survive_a_restart() {
    let mut env = Env::new(300);
    let before = env.chain().deposit_slots_used();
    assert_eq!(before, 300);
    env.reopen();
    assert_eq!(env.chain().deposit_slots_used(), before, "OP-8 forgets the deposits at a restart");
}
