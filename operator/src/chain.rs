//! The child chain's state machine: the UTXO set and mempool in memory, mirrored durably in the
//! store. Accepts transactions (OP-1), produces blocks (OP-2, OP-3), credits deposits (OP-5) and
//! answers queries (OP-6).

use crate::store::{Batch, BlockRecord, DEPOSIT_CURSOR, NEXT_CHILD_BLOCK, Store, StoreError};
use alloy::primitives::{Address, B256, Bytes};
use parking_lot::Mutex;
use plasma_spec::{
    BlockBuilder, BlockTree, CHILD_BLOCK_INTERVAL, DecodeError, LedgerError, Output,
    SignatureError, SignedTransaction, SigningDomain, Transaction, TxType, UtxoPos, UtxoView,
    validate_deposit_block, validate_payment,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use tracing::{info, warn};

/// Why a submitted transaction was refused. Nothing changes when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The bytes are not a signed transaction (ENC).
    #[error("undecodable transaction: {0}")]
    Decode(#[from] DecodeError),
    /// A signature is unusable (SIG-3).
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The UTXO set refuses it (LEDGER).
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Only payments are accepted from users.
    #[error("only payments (type 1) are accepted, got type {0}")]
    NotAPayment(u8),
    /// The same transaction is already pending or included.
    #[error("transaction {0} is already known")]
    AlreadyKnown(B256),
    /// An input is already spent by a pending transaction (OP-1: refused, not queued).
    #[error("input {input} is already spent by pending transaction {spent_by}")]
    MempoolConflict {
        /// The contested input.
        input: UtxoPos,
        /// The pending transaction spending it.
        spent_by: B256,
    },
    /// The mempool is full.
    #[error("the mempool is full ({0} transactions)")]
    MempoolFull(usize),
    /// Storage failed; the transaction was not accepted.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SubmitError {
    /// The stable error code the API reports.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Decode(e) => e.code(),
            Self::Signature(e) => e.code(),
            Self::Ledger(e) => e.code(),
            Self::NotAPayment(_) => "NotAPayment",
            Self::AlreadyKnown(_) => "AlreadyKnown",
            Self::MempoolConflict { .. } => "MempoolConflict",
            Self::MempoolFull(_) => "MempoolFull",
            Self::Store(_) => "StorageFailure",
        }
    }

    /// Whether the fault is the client's (4xx) rather than the server's (5xx).
    pub const fn is_client_error(&self) -> bool {
        !matches!(self, Self::Store(_) | Self::MempoolFull(_))
    }
}

#[derive(Debug, Clone)]
struct Pending {
    seq: u64,
    hash: B256,
    signed: SignedTransaction,
    bytes: Vec<u8>,
    signers: Vec<Address>,
}

#[derive(Debug, Default)]
struct State {
    utxos: HashMap<UtxoPos, Output>,
    /// Index of `utxos` by owner, for `/v1/utxos?owner=`.
    by_owner: HashMap<Address, BTreeSet<UtxoPos>>,
    mempool: VecDeque<Pending>,
    mempool_spent: HashMap<UtxoPos, B256>,
    mempool_hashes: HashSet<B256>,
    next_seq: u64,
    next_child_block: u64,
    uncommitted: VecDeque<u64>,
    deposit_cursor: u64,
}

impl State {
    fn insert_utxo(&mut self, pos: UtxoPos, out: Output) {
        self.by_owner.entry(out.owner).or_default().insert(pos);
        self.utxos.insert(pos, out);
    }

    fn remove_utxo(&mut self, pos: &UtxoPos) {
        if let Some(out) = self.utxos.remove(pos)
            && let Some(set) = self.by_owner.get_mut(&out.owner)
        {
            set.remove(pos);
            if set.is_empty() {
                self.by_owner.remove(&out.owner);
            }
        }
    }
}

struct View<'a>(&'a HashMap<UtxoPos, Output>);

impl UtxoView for View<'_> {
    fn utxo(&self, pos: UtxoPos) -> Option<Output> {
        self.0.get(&pos).cloned()
    }
}

/// Where a transaction stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Accepted, waiting for a block.
    Pending,
    /// In block `blknum` at `tx_index`; `committed` once its root is on L1.
    Included {
        /// The block.
        blknum: u64,
        /// Its index in the block.
        tx_index: u32,
        /// Whether the block's root is committed on L1.
        committed: bool,
    },
}

/// The chain.
#[derive(Debug)]
pub struct Chain {
    store: Store,
    domain: SigningDomain,
    fee_recipient: Address,
    max_mempool: usize,
    state: Mutex<State>,
}

/// Status figures.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainStatus {
    /// The next child block number.
    pub next_child_block: u64,
    /// Produced child blocks whose roots are not yet committed on L1.
    pub uncommitted_blocks: Vec<u64>,
    /// Transactions waiting.
    pub mempool_size: usize,
    /// Unspent outputs.
    pub utxo_count: usize,
    /// The last L1 block whose deposits were credited.
    pub deposit_cursor: u64,
}

impl Chain {
    /// Opens the chain from its store, rebuilding the in-memory state.
    pub fn open(
        store: Store,
        domain: SigningDomain,
        fee_recipient: Address,
        max_mempool: usize,
    ) -> Result<Self, StoreError> {
        let loaded = store.load()?;
        let mut state = State {
            utxos: HashMap::with_capacity(loaded.utxos.len()),
            next_child_block: loaded.next_child_block.unwrap_or(CHILD_BLOCK_INTERVAL),
            uncommitted: loaded.uncommitted.into_iter().collect(),
            deposit_cursor: loaded.deposit_cursor.unwrap_or(0),
            ..State::default()
        };
        for (pos, out) in loaded.utxos {
            state.insert_utxo(pos, out);
        }
        for (seq, bytes) in loaded.mempool {
            // Stored entries were validated when accepted; re-derive their index data.
            let Ok(signed) = SignedTransaction::decode(&bytes) else {
                warn!(target: "operator::chain", seq, "dropping an undecodable mempool entry");
                continue;
            };
            let Ok(signers) = signed.recover_signers(&domain) else { continue };
            let hash = signed.transaction.hash();
            if let Ok(inputs) = signed.transaction.input_positions() {
                for input in inputs {
                    state.mempool_spent.insert(input, hash);
                }
            }
            state.mempool_hashes.insert(hash);
            state.next_seq = state.next_seq.max(seq + 1);
            state.mempool.push_back(Pending { seq, hash, signed, bytes, signers });
        }
        info!(
            target: "operator::chain",
            utxos = state.utxos.len(),
            mempool = state.mempool.len(),
            next_child_block = state.next_child_block,
            "state loaded"
        );
        Ok(Self { store, domain, fee_recipient, max_mempool, state: Mutex::new(state) })
    }

    /// The signing domain transactions are checked against.
    pub const fn domain(&self) -> &SigningDomain {
        &self.domain
    }

    /// Validates and accepts transactions (OP-1), in order; each gets its own result. Signatures
    /// are recovered in parallel on all cores before the state is locked. Accepted transactions
    /// are durable when this returns.
    pub fn submit(&self, raw: &[Vec<u8>]) -> Vec<Result<B256, SubmitError>> {
        let prepared = recover_parallel(raw, &self.domain);
        let mut state = self.state.lock();
        let mut results = Vec::with_capacity(raw.len());
        let mut accepted = Vec::new();
        // Conflicts within this batch count too.
        let mut batch_spent: HashMap<UtxoPos, B256> = HashMap::new();
        let mut batch_hashes: HashSet<B256> = HashSet::new();
        for (bytes, prep) in raw.iter().zip(prepared) {
            let result = (|| {
                let (signed, signers) = prep?;
                let hash = signed.transaction.hash();
                if state.mempool_hashes.contains(&hash)
                    || batch_hashes.contains(&hash)
                    || self.store.tx_location(&hash)?.is_some()
                {
                    return Err(SubmitError::AlreadyKnown(hash));
                }
                if state.mempool.len() + accepted.len() >= self.max_mempool {
                    return Err(SubmitError::MempoolFull(self.max_mempool));
                }
                let (tx_type, inputs) = signed.transaction.check().map_err(LedgerError::from)?;
                if tx_type != TxType::Payment {
                    return Err(SubmitError::NotAPayment(signed.transaction.txType));
                }
                for input in &inputs {
                    if let Some(spent_by) =
                        state.mempool_spent.get(input).or_else(|| batch_spent.get(input))
                    {
                        return Err(SubmitError::MempoolConflict {
                            input: *input,
                            spent_by: *spent_by,
                        });
                    }
                }
                validate_payment(&View(&state.utxos), &signed.transaction, &inputs, &signers)?;
                for input in inputs {
                    batch_spent.insert(input, hash);
                }
                batch_hashes.insert(hash);
                accepted.push((hash, signed, bytes.clone(), signers));
                Ok(hash)
            })();
            results.push(result);
        }
        if accepted.is_empty() {
            return results;
        }
        let first_seq = state.next_seq;
        let batch = Batch {
            mempool_add: accepted
                .iter()
                .enumerate()
                .map(|(i, a)| (first_seq + i as u64, a.2.clone()))
                .collect(),
            ..Batch::default()
        };
        if let Err(e) = self.store.apply(&batch) {
            // Nothing was acknowledged: report the failure for every transaction we meant to accept.
            let msg = e.to_string();
            return results
                .into_iter()
                .map(|r| match r {
                    Ok(_) => Err(SubmitError::Store(StoreError::Corrupt {
                        what: "mempool write",
                        reason: msg.clone(),
                    })),
                    err => err,
                })
                .collect();
        }
        for (i, (hash, signed, bytes, signers)) in accepted.into_iter().enumerate() {
            for (input, spender) in batch_spent.iter() {
                if *spender == hash {
                    state.mempool_spent.insert(*input, hash);
                }
            }
            state.mempool_hashes.insert(hash);
            state.mempool.push_back(Pending {
                seq: first_seq + i as u64,
                hash,
                signed,
                bytes,
                signers,
            });
        }
        state.next_seq = first_seq + batch.mempool_add.len() as u64;
        results
    }

    /// Number of pending transactions.
    pub fn mempool_len(&self) -> usize {
        self.state.lock().mempool.len()
    }

    /// Produces the next child block from up to `max_txs` pending transactions, with a fee
    /// transaction last, and stores it before anything else sees it (OP-2, OP-3). `None` if the
    /// mempool is empty.
    pub fn produce_block(&self, max_txs: usize) -> Result<Option<BlockRecord>, StoreError> {
        let mut state = self.state.lock();
        if state.mempool.is_empty() {
            return Ok(None);
        }
        let blknum = state.next_child_block;
        let take = state.mempool.len().min(max_txs).min(plasma_spec::MAX_TXS_PER_BLOCK - 1);
        let mut builder = match BlockBuilder::new(View(&state.utxos), blknum) {
            Ok(b) => b,
            Err(e) => {
                return Err(StoreError::Corrupt {
                    what: "next child block",
                    reason: e.to_string(),
                });
            }
        };
        let mut included: Vec<&Pending> = Vec::with_capacity(take);
        let mut dropped = Vec::new();
        for pending in state.mempool.iter().take(take) {
            match builder.push_payment(&pending.signed.transaction, &pending.signers) {
                Ok(_) => included.push(pending),
                Err(e) => {
                    // Cannot happen for transactions validated at submission; drop rather than stall.
                    warn!(target: "operator::block", tx = %pending.hash, error = %e, "dropping a pending transaction");
                    dropped.push(pending.seq);
                }
            }
        }
        let fee_outputs: Vec<Output> = builder
            .fees()
            .iter()
            .filter(|(_, amount)| !amount.is_zero())
            .take(plasma_spec::MAX_OUTPUTS)
            .map(|(token, amount)| Output::new(self.fee_recipient, token, amount))
            .collect();
        let fee_tx = (!fee_outputs.is_empty()).then(|| Transaction::fee(fee_outputs));
        if let Some(fee_tx) = &fee_tx
            && let Err(e) = builder.push_fee(fee_tx)
        {
            return Err(StoreError::Corrupt { what: "fee transaction", reason: e.to_string() });
        }
        let diff = builder.finish();

        let mut signed_txs: Vec<Bytes> =
            included.iter().map(|p| Bytes::from(p.bytes.clone())).collect();
        let mut leaves: Vec<Vec<u8>> =
            included.iter().map(|p| p.signed.transaction.encode()).collect();
        let mut index: Vec<(B256, u64, u32)> =
            included.iter().enumerate().map(|(i, p)| (p.hash, blknum, i as u32)).collect();
        if let Some(fee_tx) = fee_tx {
            let signed = SignedTransaction::new(fee_tx, Vec::new());
            index.push((signed.transaction.hash(), blknum, leaves.len() as u32));
            leaves.push(signed.transaction.encode());
            signed_txs.push(Bytes::from(signed.encode()));
        }
        let root = BlockTree::from_txs(&leaves)
            .map_err(|e| StoreError::Corrupt { what: "block tree", reason: e.to_string() })?
            .root();
        let record = BlockRecord { blknum, root, txs: signed_txs, l1_timestamp: None, l1_tx: None };
        let removed: Vec<u64> =
            included.iter().map(|p| p.seq).chain(dropped.iter().copied()).collect();
        let batch = Batch {
            spent: diff.spent.clone(),
            created: diff.created.clone(),
            blocks: vec![record.clone()],
            txs: index,
            mempool_remove: removed.clone(),
            meta: vec![(NEXT_CHILD_BLOCK, blknum + CHILD_BLOCK_INTERVAL)],
            ..Batch::default()
        };
        self.store.apply(&batch)?;

        // Durable: now change memory.
        let removed: HashSet<u64> = removed.into_iter().collect();
        let gone: Vec<Pending> =
            state.mempool.iter().filter(|p| removed.contains(&p.seq)).cloned().collect();
        state.mempool.retain(|p| !removed.contains(&p.seq));
        for p in gone {
            state.mempool_hashes.remove(&p.hash);
            if let Ok(inputs) = p.signed.transaction.input_positions() {
                for input in inputs {
                    state.mempool_spent.remove(&input);
                }
            }
        }
        for pos in &diff.spent {
            state.remove_utxo(pos);
        }
        for (pos, out) in diff.created {
            state.insert_utxo(pos, out);
        }
        state.next_child_block = blknum + CHILD_BLOCK_INTERVAL;
        state.uncommitted.push_back(blknum);
        info!(target: "operator::block", blknum, txs = record.txs.len(), root = %root, "block produced");
        Ok(Some(record))
    }

    /// The oldest produced block whose root is not committed yet.
    pub fn next_uncommitted(&self) -> Option<u64> {
        self.state.lock().uncommitted.front().copied()
    }

    /// Records that `blknum`'s root was committed on L1 at `timestamp` by `l1_tx`.
    pub fn mark_committed(
        &self,
        blknum: u64,
        timestamp: u64,
        l1_tx: B256,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        let Some(mut record) = self.store.block(blknum)? else {
            return Err(StoreError::Corrupt { what: "block", reason: format!("{blknum} missing") });
        };
        record.l1_timestamp = Some(timestamp);
        record.l1_tx = Some(l1_tx);
        self.store.apply(&Batch { blocks: vec![record], ..Batch::default() })?;
        state.uncommitted.retain(|b| *b != blknum);
        info!(target: "operator::l1", blknum, timestamp, "block committed");
        Ok(())
    }

    /// Credits a deposit seen on L1 (OP-5). Idempotent: a deposit already credited is skipped.
    pub fn credit_deposit(
        &self,
        blknum: u64,
        deposit_tx: &[u8],
        timestamp: u64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.lock();
        if self.store.block(blknum)?.is_some() {
            return Ok(false);
        }
        let tx = Transaction::decode(deposit_tx)
            .map_err(|e| StoreError::Corrupt { what: "deposit from L1", reason: e.to_string() })?;
        let diff = validate_deposit_block(blknum, &tx)
            .map_err(|e| StoreError::Corrupt { what: "deposit from L1", reason: e.to_string() })?;
        let record = BlockRecord {
            blknum,
            root: plasma_spec::deposit_block_root(deposit_tx),
            txs: vec![Bytes::copy_from_slice(deposit_tx)],
            l1_timestamp: Some(timestamp),
            l1_tx: None,
        };
        let batch = Batch {
            created: diff.created.clone(),
            blocks: vec![record],
            txs: vec![(tx.hash(), blknum, 0)],
            ..Batch::default()
        };
        self.store.apply(&batch)?;
        for (pos, out) in diff.created {
            state.insert_utxo(pos, out);
        }
        info!(target: "operator::deposits", blknum, "deposit credited");
        Ok(true)
    }

    /// Records that deposits up to L1 block `l1_block` were credited.
    pub fn set_deposit_cursor(&self, l1_block: u64) -> Result<(), StoreError> {
        let mut state = self.state.lock();
        self.store.apply(&Batch { meta: vec![(DEPOSIT_CURSOR, l1_block)], ..Batch::default() })?;
        state.deposit_cursor = l1_block;
        Ok(())
    }

    /// The last L1 block whose deposits were credited.
    pub fn deposit_cursor(&self) -> u64 {
        self.state.lock().deposit_cursor
    }

    /// Unspent outputs of `owner`, by position.
    pub fn utxos_of(&self, owner: Address) -> BTreeMap<UtxoPos, Output> {
        self.state
            .lock()
            .utxos
            .iter()
            .filter(|(_, o)| o.owner == owner)
            .map(|(p, o)| (*p, o.clone()))
            .collect()
    }

    /// An unspent output.
    pub fn utxo(&self, pos: UtxoPos) -> Option<Output> {
        self.state.lock().utxos.get(&pos).cloned()
    }

    /// A stored block.
    pub fn block(&self, blknum: u64) -> Result<Option<BlockRecord>, StoreError> {
        self.store.block(blknum)
    }

    /// Where a transaction stands, if known.
    pub fn tx_status(&self, hash: &B256) -> Result<Option<TxStatus>, StoreError> {
        if self.state.lock().mempool_hashes.contains(hash) {
            return Ok(Some(TxStatus::Pending));
        }
        let Some((blknum, tx_index)) = self.store.tx_location(hash)? else { return Ok(None) };
        let committed = self.store.block(blknum)?.is_some_and(|b| b.l1_timestamp.is_some());
        Ok(Some(TxStatus::Included { blknum, tx_index, committed }))
    }

    /// Status figures.
    pub fn status(&self) -> ChainStatus {
        let state = self.state.lock();
        ChainStatus {
            next_child_block: state.next_child_block,
            uncommitted_blocks: state.uncommitted.iter().copied().collect(),
            mempool_size: state.mempool.len(),
            utxo_count: state.utxos.len(),
            deposit_cursor: state.deposit_cursor,
        }
    }
}

/// The leaves (unsigned transaction bytes) of a stored block, for proofs.
pub(crate) fn block_leaves(record: &BlockRecord) -> Vec<Vec<u8>> {
    if plasma_spec::is_deposit_block(record.blknum) {
        return record.txs.iter().map(|t| t.to_vec()).collect();
    }
    record
        .txs
        .iter()
        .filter_map(|t| SignedTransaction::decode(t).ok().map(|s| s.transaction.encode()))
        .collect()
}

type Prepared = Result<(SignedTransaction, Vec<Address>), SubmitError>;

/// Decodes and recovers signers on all cores.
fn recover_parallel(raw: &[Vec<u8>], domain: &SigningDomain) -> Vec<Prepared> {
    let one = |bytes: &Vec<u8>| -> Prepared {
        let signed = SignedTransaction::decode(bytes)?;
        let signers = signed.recover_signers(domain)?;
        Ok((signed, signers))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if raw.len() < 64 || threads == 1 {
        return raw.iter().map(one).collect();
    }
    let chunk = raw.len().div_ceil(threads);
    let results: Vec<Prepared> = std::thread::scope(|s| {
        let handles: Vec<_> = raw
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(one).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    // A worker cannot panic on any input (decoding and recovery return errors), but never let a
    // lost chunk shift results onto the wrong transactions.
    if results.len() == raw.len() { results } else { raw.iter().map(one).collect() }
}
