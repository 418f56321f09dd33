//! The ledger: how transactions and blocks change the UTXO set (spec: LEDGER).
//!
//! Validation is split the way a fast node needs it: stateless checks and signer recovery (the
//! expensive part) need no state and can run in parallel; the stateful part ([`BlockBuilder`])
//! runs in block order against any [`UtxoView`] — an in-memory [`UtxoSet`] here, the operator's or
//! watcher's database elsewhere — and produces a [`BlockDiff`] for the caller to commit.

use crate::{
    constants::MAX_TXS_PER_BLOCK,
    error::{BlockError, LedgerError, TxError},
    position::{UtxoPos, is_deposit_block},
    signing::SigningDomain,
    tx::{Output, SignedTransaction, TokenSums, Transaction, TxType},
};
use alloy_primitives::{Address, B256, U256};
use std::collections::HashMap;

/// The builder's maps: keyed by output positions the block itself makes or that passed the
/// UTXO lookup, so not chosen freely by a sender; a fast seeded hash instead of SipHash, which
/// was a fifth of a full block's ledger checks (#19).
type PosMap<V> = HashMap<UtxoPos, V, foldhash::fast::RandomState>;

/// Read access to the unspent outputs.
pub trait UtxoView {
    /// The unspent output at `pos`, if there is one.
    fn utxo(&self, pos: UtxoPos) -> Option<Output>;

    /// If the unspent output at `pos` may not be spent because it is leaving the child chain
    /// through the exit game, the L1 time it began exiting (spec: LEDGER-9). A plain UTXO set
    /// knows nothing of exits; [`crate::WithExits`] does.
    fn exiting_since(&self, _pos: UtxoPos) -> Option<u64> {
        None
    }
}

impl<V: UtxoView + ?Sized> UtxoView for &V {
    fn utxo(&self, pos: UtxoPos) -> Option<Output> {
        (**self).utxo(pos)
    }

    fn exiting_since(&self, pos: UtxoPos) -> Option<u64> {
        (**self).exiting_since(pos)
    }
}

/// The unspent output at `pos` if it may be spent (spec: LEDGER-1, LEDGER-9).
fn spendable(view: &impl UtxoView, pos: UtxoPos) -> Result<Output, LedgerError> {
    let output = view.utxo(pos).ok_or(LedgerError::InputNotFound { input: pos })?;
    match view.exiting_since(pos) {
        Some(since) => Err(LedgerError::OutputExiting { input: pos, since }),
        None => Ok(output),
    }
}

/// What a valid block does to the UTXO set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockDiff {
    /// Outputs the block spends, none created by the block itself.
    pub spent: Vec<UtxoPos>,
    /// Outputs the block creates and leaves unspent.
    pub created: Vec<(UtxoPos, Output)>,
    /// Fees collected by the block's payments, per token (spec: LEDGER-4).
    pub fees: TokenSums,
    /// Fees the block's fee transaction claimed, per token.
    pub fees_claimed: TokenSums,
}

/// Checks a payment against the UTXO set (spec: LEDGER-1..LEDGER-4) and returns its fees.
///
/// `inputs` are the parsed inputs from [`Transaction::check`], `signers` the recovered signer of
/// each input.
pub fn validate_payment(
    view: &impl UtxoView,
    tx: &Transaction,
    inputs: &[UtxoPos],
    signers: &[Address],
) -> Result<TokenSums, LedgerError> {
    payment_fees(|pos| spendable(view, pos), tx, inputs, signers)
}

/// [`validate_payment`] over a lookup that can name why an input is missing.
fn payment_fees(
    lookup: impl Fn(UtxoPos) -> Result<Output, LedgerError>,
    tx: &Transaction,
    inputs: &[UtxoPos],
    signers: &[Address],
) -> Result<TokenSums, LedgerError> {
    if signers.len() != inputs.len() {
        return Err(crate::error::SignatureError::SignatureCountMismatch {
            inputs: inputs.len(),
            signatures: signers.len(),
        }
        .into());
    }
    let mut in_sums = TokenSums::default();
    for (input_index, (pos, signer)) in inputs.iter().zip(signers).enumerate() {
        let utxo = lookup(*pos)?; // spec: LEDGER-1
        if utxo.owner != *signer {
            // spec: SIG-4
            return Err(LedgerError::WrongSigner {
                input_index,
                owner: utxo.owner,
                signer: *signer,
            });
        }
        in_sums.add(utxo.token, utxo.amount)?;
    }
    let out_sums = tx.output_sums()?;
    // spec: LEDGER-3: no token may leave with more than it came in with.
    for (token, outputs) in out_sums.iter() {
        let inputs = in_sums.get(token);
        if outputs > inputs {
            return Err(LedgerError::ValueCreated { token, inputs, outputs });
        }
    }
    // spec: LEDGER-4: what is left over is the operator's fee.
    let mut fees = TokenSums::default();
    for (token, inputs) in in_sums.iter() {
        let fee = inputs - out_sums.get(token);
        if !fee.is_zero() {
            fees.add(token, fee)?;
        }
    }
    Ok(fees)
}

/// Applies transactions to a block in order, on top of a base view, without touching the base.
///
/// Every `push_*` is atomic: it either appends the transaction or returns an error and leaves the
/// builder as it was, so an operator can skip a bad transaction and go on.
#[derive(Debug)]
pub struct BlockBuilder<V> {
    base: V,
    blknum: u64,
    /// Outputs spent so far, with the hash of the spender (for `DoubleSpend` reports).
    spent: PosMap<B256>,
    /// The inputs spent so far in the order they were spent (the keys of `spent`): the diff's
    /// spent list is made from it without walking the map.
    spent_order: Vec<UtxoPos>,
    /// Every output of the block's transactions so far (spent or not), in block order. An
    /// output's position names its transaction and index, so it is found by arithmetic
    /// ([`Self::created_at`]) instead of a map: a full block makes 131,070 of them (#19).
    outputs: Vec<Output>,
    /// Where each transaction's outputs start in `outputs`; one more entry than transactions.
    tx_outputs: Vec<u32>,
    /// Whether each of `outputs` was spent inside the block.
    spent_here: Vec<bool>,
    fees: TokenSums,
    fees_claimed: TokenSums,
    has_fee_tx: bool,
    tx_count: usize,
}

impl<V: UtxoView> BlockBuilder<V> {
    /// Starts child block `blknum` (a multiple of the interval; spec: POS-3) on top of `base`.
    pub fn new(base: V, blknum: u64) -> Result<Self, LedgerError> {
        if blknum == 0 || is_deposit_block(blknum) {
            return Err(LedgerError::WrongBlockKind { blknum, expected: "child" });
        }
        Ok(Self {
            base,
            blknum,
            spent: PosMap::default(),
            spent_order: Vec::new(),
            outputs: Vec::new(),
            tx_outputs: vec![0],
            spent_here: Vec::new(),
            fees: TokenSums::default(),
            fees_claimed: TokenSums::default(),
            has_fee_tx: false,
            tx_count: 0,
        })
    }

    /// Makes room for about `txs` more transactions of up to two inputs and two outputs, so
    /// a full block's maps grow once instead of by doubling (a builder that knows its block's
    /// size up front: the operator's production).
    pub fn reserve(&mut self, txs: usize) {
        self.spent.reserve(txs);
        self.spent_order.reserve(txs);
        self.outputs.reserve(2 * txs);
        self.spent_here.reserve(2 * txs);
        self.tx_outputs.reserve(txs);
    }

    /// The block number being built.
    pub const fn blknum(&self) -> u64 {
        self.blknum
    }

    /// Transactions appended so far.
    pub const fn len(&self) -> usize {
        self.tx_count
    }

    /// Whether nothing was appended yet.
    pub const fn is_empty(&self) -> bool {
        self.tx_count == 0
    }

    /// Fees collected so far, per token.
    pub const fn fees(&self) -> &TokenSums {
        &self.fees
    }

    /// Where in `outputs` the output at `pos` is, if the block made it: `pos` names this
    /// block, a transaction already appended and one of its outputs.
    fn created_at(&self, pos: UtxoPos) -> Option<usize> {
        if pos.blknum() != self.blknum {
            return None;
        }
        let tx = usize::from(pos.tx_index());
        let (start, end) = (*self.tx_outputs.get(tx)?, *self.tx_outputs.get(tx + 1)?);
        let at = start as usize + usize::from(pos.output_index());
        (at < end as usize).then_some(at)
    }

    fn lookup(&self, pos: UtxoPos) -> Result<Output, LedgerError> {
        if let Some(first_spent_in) = self.spent.get(&pos) {
            return Err(LedgerError::DoubleSpend { input: pos, first_spent_in: *first_spent_in });
        }
        // Outputs created in this block cannot have started exiting before it was committed.
        match self.created_at(pos) {
            Some(at) => Ok(self.outputs[at].clone()),
            None => spendable(&self.base, pos),
        }
    }

    fn check_room(&self) -> Result<(), LedgerError> {
        if self.has_fee_tx {
            return Err(LedgerError::FeeTxNotLast);
        }
        if self.tx_count >= MAX_TXS_PER_BLOCK {
            return Err(LedgerError::TooManyTxs { count: self.tx_count + 1 });
        }
        Ok(())
    }

    fn add_outputs(&mut self, tx: &Transaction) {
        // At most MAX_OUTPUTS (checked before) for each of at most MAX_TXS_PER_BLOCK = 2^16
        // transactions (`check_room`): the count fits a u32.
        self.outputs.extend(tx.outputs.iter().cloned());
        self.spent_here.resize(self.outputs.len(), false);
        self.tx_outputs.push(self.outputs.len() as u32);
        self.tx_count += 1;
    }

    /// Appends a payment whose signers were already recovered (spec: LEDGER-5, LEDGER-6).
    /// Returns the fees it pays.
    pub fn push_payment(
        &mut self,
        tx: &Transaction,
        signers: &[Address],
    ) -> Result<TokenSums, LedgerError> {
        self.push_payment_inner(tx, None, signers)
    }

    /// [`Self::push_payment`] with the transaction's hash (ENC-5) already computed, e.g. on all
    /// cores with the signer recovery: the same rules and state. `hash` must be `tx.hash()`; it
    /// only names the spender in a later [`LedgerError::DoubleSpend`].
    pub fn push_payment_hashed(
        &mut self,
        tx: &Transaction,
        hash: B256,
        signers: &[Address],
    ) -> Result<TokenSums, LedgerError> {
        self.push_payment_inner(tx, Some(hash), signers)
    }

    fn push_payment_inner(
        &mut self,
        tx: &Transaction,
        hash: Option<B256>,
        signers: &[Address],
    ) -> Result<TokenSums, LedgerError> {
        self.check_room()?;
        let (tx_type, inputs) = tx.check()?;
        match tx_type {
            TxType::Payment => {}
            TxType::Deposit => return Err(LedgerError::DepositTxInChildBlock),
            TxType::Fee => return Err(LedgerError::MultipleFeeTxs),
        }
        let fees = payment_fees(|pos| self.lookup(pos), tx, &inputs, signers)?;
        // The block's fee sums must not overflow either (TX-5): checked before anything changes.
        if let Some(token) = fees.iter().find_map(|(token, fee)| {
            self.fees.get(token).checked_add(fee).is_none().then_some(token)
        }) {
            return Err(TxError::AmountOverflow { token }.into());
        }
        // Validated: now, and only now, change state.
        for (token, fee) in fees.iter() {
            self.fees.add(token, fee)?; // cannot fail: checked just above
        }
        let hash = hash.unwrap_or_else(|| tx.hash());
        for pos in inputs {
            if let Some(at) = self.created_at(pos) {
                self.spent_here[at] = true;
            }
            self.spent.insert(pos, hash);
            self.spent_order.push(pos);
        }
        self.add_outputs(tx);
        Ok(fees)
    }

    /// Appends the block's fee transaction (spec: LEDGER-6). It must come last and claim no
    /// more of any token than the payments before it paid.
    pub fn push_fee(&mut self, tx: &Transaction) -> Result<(), LedgerError> {
        if self.has_fee_tx {
            return Err(LedgerError::MultipleFeeTxs);
        }
        self.check_room()?;
        let (tx_type, _) = tx.check()?;
        if tx_type != TxType::Fee {
            return Err(TxError::UnknownTxType { tx_type: tx.txType }.into());
        }
        let claimed = tx.output_sums()?;
        for (token, amount) in claimed.iter() {
            let collected = self.fees.get(token);
            if amount > collected {
                return Err(LedgerError::FeeExceedsCollected { token, collected, claimed: amount });
            }
        }
        self.fees_claimed = claimed;
        self.has_fee_tx = true;
        self.add_outputs(tx);
        Ok(())
    }

    /// Appends any transaction as found in a block: recovers signatures and dispatches on the
    /// type. Used to replay blocks (the watcher); the operator recovers in parallel up front.
    pub fn push_signed(
        &mut self,
        signed: &SignedTransaction,
        domain: &SigningDomain,
    ) -> Result<(), LedgerError> {
        match signed.transaction.tx_type()? {
            TxType::Fee => {
                if !signed.signatures.is_empty() {
                    return Err(crate::error::SignatureError::SignatureCountMismatch {
                        inputs: 0,
                        signatures: signed.signatures.len(),
                    }
                    .into());
                }
                self.push_fee(&signed.transaction)
            }
            TxType::Deposit => {
                self.check_room()?;
                Err(LedgerError::DepositTxInChildBlock)
            }
            TxType::Payment => {
                // Stateless checks first: they are cheap and recovery is not.
                signed.transaction.check()?;
                let signers = signed.recover_signers(domain)?;
                self.push_payment(&signed.transaction, &signers).map(drop)
            }
        }
    }

    /// Ends the block and returns what it changes.
    pub fn finish(self) -> BlockDiff {
        let mut spent: Vec<UtxoPos> = self
            .spent_order
            .iter()
            .copied()
            .filter(|pos| self.created_at(*pos).is_none())
            .collect();
        spent.sort_unstable();
        let mut created = Vec::with_capacity(self.outputs.len());
        let mut outputs = self.outputs.into_iter().zip(self.spent_here);
        for (tx_index, w) in self.tx_outputs.windows(2).enumerate() {
            for output_index in 0..(w[1] - w[0]) {
                let Some((output, spent_here)) = outputs.next() else { break };
                // Valid positions: blknum >= 1000, tx_index < 2^16 and output_index < MAX_OUTPUTS
                // were checked when the transaction was appended.
                if let (false, Ok(pos)) =
                    (spent_here, UtxoPos::new(self.blknum, tx_index as u16, output_index as u8))
                {
                    created.push((pos, output));
                }
            }
        }
        BlockDiff { spent, created, fees: self.fees, fees_claimed: self.fees_claimed }
    }
}

/// Validates a whole child block against `base` (spec: LEDGER-6) and returns its diff, or the
/// first broken rule with the index of the offending transaction.
pub fn validate_child_block(
    base: &impl UtxoView,
    blknum: u64,
    txs: &[SignedTransaction],
    domain: &SigningDomain,
) -> Result<BlockDiff, BlockError> {
    let err = |tx_index, error| BlockError { blknum, tx_index, error };
    if txs.len() > MAX_TXS_PER_BLOCK {
        return Err(err(MAX_TXS_PER_BLOCK, LedgerError::TooManyTxs { count: txs.len() }));
    }
    let mut builder = BlockBuilder::new(base, blknum).map_err(|e| err(0, e))?;
    for (tx_index, signed) in txs.iter().enumerate() {
        builder.push_signed(signed, domain).map_err(|e| err(tx_index, e))?;
    }
    Ok(builder.finish())
}

/// Validates a deposit block (spec: LEDGER-7): exactly one deposit transaction, whose output
/// lands at `(blknum, 0, 0)`.
pub fn validate_deposit_block(blknum: u64, tx: &Transaction) -> Result<BlockDiff, BlockError> {
    let err = |error| BlockError { blknum, tx_index: 0, error };
    if !is_deposit_block(blknum) {
        return Err(err(LedgerError::WrongBlockKind { blknum, expected: "deposit" }));
    }
    let (tx_type, _) = tx.check().map_err(|e| err(e.into()))?;
    if tx_type != TxType::Deposit {
        return Err(err(LedgerError::NotADepositTx));
    }
    let pos = UtxoPos::new(blknum, 0, 0).map_err(|_| err(LedgerError::NotADepositTx))?;
    Ok(BlockDiff { created: vec![(pos, tx.outputs[0].clone())], ..BlockDiff::default() })
}

/// An in-memory UTXO set: the reference ledger for tests, vectors and small tools.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UtxoSet {
    utxos: HashMap<UtxoPos, Output>,
}

impl UtxoView for UtxoSet {
    fn utxo(&self, pos: UtxoPos) -> Option<Output> {
        self.utxos.get(&pos).cloned()
    }
}

impl UtxoSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of unspent outputs.
    pub fn len(&self) -> usize {
        self.utxos.len()
    }

    /// Whether there are no unspent outputs.
    pub fn is_empty(&self) -> bool {
        self.utxos.is_empty()
    }

    /// Every unspent output.
    pub fn iter(&self) -> impl Iterator<Item = (&UtxoPos, &Output)> {
        self.utxos.iter()
    }

    /// Applies a validated block's diff.
    pub fn apply(&mut self, diff: &BlockDiff) {
        for pos in &diff.spent {
            self.utxos.remove(pos);
        }
        for (pos, output) in &diff.created {
            self.utxos.insert(*pos, output.clone());
        }
    }

    /// Validates and applies a deposit block (spec: LEDGER-7).
    pub fn apply_deposit(
        &mut self,
        blknum: u64,
        tx: &Transaction,
    ) -> Result<BlockDiff, BlockError> {
        let diff = validate_deposit_block(blknum, tx)?;
        if self.utxos.contains_key(&diff.created[0].0) {
            return Err(BlockError {
                blknum,
                tx_index: 0,
                error: LedgerError::WrongBlockKind { blknum, expected: "new deposit" },
            });
        }
        self.apply(&diff);
        Ok(diff)
    }

    /// Validates and applies a child block (spec: LEDGER-6); on error nothing changes.
    pub fn apply_child_block(
        &mut self,
        blknum: u64,
        txs: &[SignedTransaction],
        domain: &SigningDomain,
    ) -> Result<BlockDiff, BlockError> {
        let diff = validate_child_block(&*self, blknum, txs, domain)?;
        self.apply(&diff);
        Ok(diff)
    }

    /// Total value per token, in token order. Saturates rather than overflow: a set whose
    /// total overflows could only come from an invalid ledger, which the callers test for.
    pub fn totals(&self) -> Vec<(Address, U256)> {
        let mut totals: std::collections::BTreeMap<Address, U256> = Default::default();
        for output in self.utxos.values() {
            let sum = totals.entry(output.token).or_default();
            *sum = sum.saturating_add(output.amount);
        }
        totals.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{domain, key, pay_eth, pos};

    #[test]
    fn a_payment_pushed_with_its_hash_is_pushed_as_without() {
        let (alice, bob) = (key(1), key(2));
        let mut set = UtxoSet::new();
        let dep = Transaction::deposit(alice.address(), Address::ZERO, U256::from(10));
        set.apply_deposit(1, &dep).unwrap();
        let pay = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 9)], &[&alice]).transaction;
        let again = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 8)], &[&alice]);
        let run = |hashed: bool| {
            let mut b = BlockBuilder::new(&set, 1000).unwrap();
            let fees = if hashed {
                b.push_payment_hashed(&pay, pay.hash(), &[alice.address()])
            } else {
                b.push_payment(&pay, &[alice.address()])
            };
            let double = b.push_payment(&again.transaction, &[alice.address()]);
            (fees, double, b.finish())
        };
        assert_eq!(run(true), run(false));
        assert_eq!(
            run(true).1,
            Err(LedgerError::DoubleSpend { input: pos(1, 0, 0), first_spent_in: pay.hash() })
        );
    }
}
