//! The child chain's state machine: the UTXO set and mempool in memory, mirrored durably in the
//! store. Accepts transactions (OP-1), produces blocks (OP-2, OP-3), credits deposits (OP-5) and
//! answers queries (OP-6).

use crate::{
    blocks::{BlockInfo, DeflateAhead, EncodedBlock, ProduceStages},
    store::{
        Batch, BlockRecord, DEPOSIT_CURSOR, EFFECTS_PENDING, EXIT_CURSOR, Lookup, NEXT_CHILD_BLOCK,
        Store, StoreError,
    },
};
use alloy::primitives::{Address, B256, Bytes};
use parking_lot::{Condvar, Mutex};
use plasma_spec::{
    BlockBuilder, CHILD_BLOCK_INTERVAL, DecodeError, ExitEvent, ExitingOutputs, LedgerError,
    Output, SignatureError, SignedTransaction, SigningDomain, SpendRule, Transaction, TxType,
    UtxoPos, UtxoView, WithExits, leaf_hash, leaf_message_of, leaves_and_hashes,
    validate_deposit_block, validate_payment,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;
use tracing::{info, warn};

/// The state's maps keyed by output positions or transaction hashes: what goes in was made by
/// the chain (positions) or is a keccak digest, so not chosen freely by a sender. A fast seeded
/// hash instead of SipHash: these maps take a full block's ~330,000 updates (#19).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;
/// Keyed by owners, whom any sender names: the seeded hash of higher quality.
type OwnerMap<V> = HashMap<Address, V, foldhash::quality::RandomState>;

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
    /// The same transaction is being written by a concurrent request and is not acknowledged
    /// yet. Not `AlreadyKnown`: wallets take that as accepted (a resubmit after a lost answer),
    /// and this write may still fail — then nothing was accepted. Asked again, it answers with
    /// the outcome: `AlreadyKnown` once written, or accepted anew if the write failed.
    #[error(
        "transaction {0} is being written by a concurrent request and not acknowledged yet; ask again"
    )]
    InFlight(B256),
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
    /// Block production stopped for good (LEDGER-7): nothing accepted now could ever be included.
    #[error("the operator halted: {0}")]
    Halted(crate::l1::Halt),
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
            Self::InFlight(_) => "SubmitInProgress",
            Self::MempoolConflict { .. } => "MempoolConflict",
            Self::MempoolFull(_) => "MempoolFull",
            Self::Halted(_) => "OperatorHalted",
            Self::Store(StoreError::Fenced { .. }) => "NotLeader",
            Self::Store(_) => "StorageFailure",
        }
    }

    /// Whether the fault is the client's (4xx) rather than the server's (5xx).
    pub const fn is_client_error(&self) -> bool {
        !matches!(self, Self::Store(_) | Self::MempoolFull(_) | Self::Halted(_) | Self::InFlight(_))
    }
}

/// A pending transaction (OP-1). Memory per entry: its signed bytes once (shared with the block
/// that includes it, never copied), the decoded transaction without its signatures (what block
/// production checks again) and the recovered signers (OP-9).
#[derive(Debug)]
struct Pending {
    seq: u64,
    hash: B256,
    /// The transaction's Merkle leaf, `leaf_hash(tx.encode())` (MERKLE-1), computed at submission
    /// off the state lock so block production does not hash each transaction again.
    leaf: B256,
    tx: Transaction,
    bytes: Bytes,
    signers: Vec<Address>,
}

#[derive(Debug, Default)]
struct State {
    utxos: FastMap<UtxoPos, Output>,
    /// Index of `utxos` by owner, for `/v1/utxos?owner=`.
    by_owner: OwnerMap<BTreeSet<UtxoPos>>,
    /// The pending transactions, durable, in acceptance (`seq`) order: what blocks take (OP-2).
    mempool: VecDeque<Pending>,
    /// Every input of a pending or reserved transaction, with that transaction (OP-1).
    mempool_spent: FastMap<UtxoPos, B256>,
    /// Hashes of the pending (durable) transactions: what `tx_status` answers `Pending` for.
    mempool_hashes: FastSet<B256>,
    /// Hashes of transactions reserved by a `submit` whose write is in flight: not acknowledged,
    /// not in `mempool`, but their inputs are taken in `mempool_spent` (see `Chain::submit`).
    reserved_hashes: FastSet<B256>,
    next_seq: u64,
    next_child_block: u64,
    uncommitted: VecDeque<u64>,
    deposit_cursor: u64,
    /// Outputs leaving through the exit game (LEDGER-9, OP-7).
    exiting: ExitingOutputs,
    exit_cursor: u64,
    /// The highest deposit block credited (OP-8 counts the slots used since the last child block).
    last_deposit: u64,
    /// The exiting set an exit write in flight is storing (`Chain::apply_exit_events`, written
    /// without this lock held, A21-3): step 4 of `submit` refuses what it forbids too, so no
    /// payment spending an output that is being recorded as exiting is acknowledged meanwhile.
    exiting_next: Option<ExitingOutputs>,
}

impl State {
    fn insert_utxo(&mut self, pos: UtxoPos, out: Output) {
        self.by_owner.entry(out.owner).or_default().insert(pos);
        self.utxos.insert(pos, out);
    }

    /// Drops the pending entries `seqs` (ascending) with their index entries. What stays moves
    /// to a queue sized to it, and the indexes give back what a full block's worth of entries
    /// made them take: after a block the mempool holds what is pending, not the high-water mark
    /// (OP-9).
    fn drop_pending(&mut self, seqs: &[u64]) {
        let _gone = Self::drop_pending_of(
            &mut self.mempool,
            &mut self.mempool_hashes,
            &mut self.mempool_spent,
            seqs,
        );
    }

    /// [`State::drop_pending`] on the mempool's fields alone, so that a block's update can run
    /// it on one core while the UTXO set changes on another ([`State::apply_block`]). Returns
    /// the entries dropped, for the caller to free after it lets the state go (65,535 entries'
    /// allocations are not worth holding the lock for).
    ///
    /// The mempool is in `seq` order (`publish`) and so is `seqs`: one walk from the front
    /// until the last of `seqs` finds them all, and what lies behind it is not touched — a
    /// block takes the front of the queue (#19: a full block's update walked and re-queued the
    /// whole mempool, looking every entry up in a hash set).
    fn drop_pending_of(
        mempool: &mut VecDeque<Pending>,
        mempool_hashes: &mut FastSet<B256>,
        mempool_spent: &mut FastMap<UtxoPos, B256>,
        seqs: &[u64],
    ) -> VecDeque<Pending> {
        debug_assert!(seqs.is_sorted(), "seqs must be ascending");
        let Some(&last) = seqs.last() else { return VecDeque::new() };
        let rebuild_hashes = mempool.len() < 2 * seqs.len();
        // The usual block: exactly the front of the queue. The queue is cut after it and the
        // front part handed back whole (its ~13 MB of entries are not moved one by one).
        let front = seqs.len();
        if mempool.len() >= front && mempool.iter().zip(seqs).all(|(p, seq)| p.seq == *seq) {
            let rest = mempool.split_off(front);
            let gone = std::mem::replace(mempool, rest);
            for p in &gone {
                if !rebuild_hashes {
                    mempool_hashes.remove(&p.hash);
                }
                for raw in &p.tx.inputs {
                    // As below.
                    if let Ok(input) = UtxoPos::from_u256(*raw) {
                        mempool_spent.remove(&input);
                    }
                }
            }
            Self::shrink_pending(mempool, mempool_hashes, mempool_spent, rebuild_hashes);
            return gone;
        }
        let mut gone = VecDeque::with_capacity(seqs.len());
        // Entries among the dropped ones that stay (a group published late, spliced in).
        let mut stay = Vec::new();
        let mut wanted = seqs.iter().copied().peekable();
        while mempool.front().is_some_and(|p| p.seq <= last) {
            let Some(p) = mempool.pop_front() else { break };
            while wanted.next_if(|want| *want < p.seq).is_some() {} // not (or no longer) pending
            if wanted.next_if_eq(&p.seq).is_none() {
                stay.push(p);
                continue;
            }
            if !rebuild_hashes {
                mempool_hashes.remove(&p.hash);
            }
            for raw in &p.tx.inputs {
                // Parsed when the payment was accepted; a position that does not parse was
                // never taken.
                if let Ok(input) = UtxoPos::from_u256(*raw) {
                    mempool_spent.remove(&input);
                }
            }
            gone.push_back(p);
        }
        for p in stay.into_iter().rev() {
            mempool.push_front(p);
        }
        Self::shrink_pending(mempool, mempool_hashes, mempool_spent, rebuild_hashes);
        gone
    }

    /// After entries left the mempool: its queue and indexes sized to what stays. When most of
    /// the mempool went (a full block takes the front of the queue), the set of pending hashes
    /// is made again from what stays instead of losing the rest one by one.
    fn shrink_pending(
        mempool: &mut VecDeque<Pending>,
        mempool_hashes: &mut FastSet<B256>,
        mempool_spent: &mut FastMap<UtxoPos, B256>,
        rebuild_hashes: bool,
    ) {
        mempool.shrink_to(mempool.len());
        if rebuild_hashes {
            *mempool_hashes = mempool.iter().map(|p| p.hash).collect();
        } else {
            mempool_hashes.shrink_to(mempool.len());
        }
        mempool_spent.shrink_to(mempool_spent.len());
    }

    /// A durable block's change of memory, on three threads: its entries leave the mempool;
    /// its spent outputs leave, and its new ones join, the UTXO set; and the same for the owner
    /// index. The three touch disjoint fields; the caller holds the state lock across all, so no
    /// reader sees a part without the rest. `spent` are the outputs the block spends with their
    /// owners (what the owner index needs, so it does not wait on the UTXO set's removals).
    fn apply_block(
        &mut self,
        removed: &[u64],
        spent: &[(UtxoPos, Address)],
        created: &[(UtxoPos, Output)],
    ) -> VecDeque<Pending> {
        let Self { mempool, mempool_hashes, mempool_spent, utxos, by_owner, .. } = self;
        std::thread::scope(|scope| {
            let gone = scope
                .spawn(|| Self::drop_pending_of(mempool, mempool_hashes, mempool_spent, removed));
            // Created positions are new and the diff nets out what the block both made and
            // spent, so the index may take the new outputs before the spent ones leave.
            let owners = scope.spawn(|| {
                for (pos, out) in created {
                    by_owner.entry(out.owner).or_default().insert(*pos);
                }
                for (pos, owner) in spent {
                    if let Some(set) = by_owner.get_mut(owner) {
                        set.remove(pos);
                        if set.is_empty() {
                            by_owner.remove(owner);
                        }
                    }
                }
            });
            for (pos, _) in spent {
                utxos.remove(pos);
            }
            utxos.reserve(created.len().saturating_sub(spent.len()));
            for (pos, out) in created {
                utxos.insert(*pos, out.clone());
            }
            owners.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            gone.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Publishes durable entries to the queue in `seq` order, moving their hashes from reserved
    /// to pending. A group's seqs are consecutive (reserved in one lock hold), so it goes in one
    /// place: at the back, unless a later group's write finished first.
    fn publish(&mut self, entries: Vec<Pending>) {
        let Some(first) = entries.first().map(|p| p.seq) else { return };
        for p in &entries {
            self.reserved_hashes.remove(&p.hash);
            self.mempool_hashes.insert(p.hash);
        }
        if self.mempool.back().is_none_or(|last| last.seq < first) {
            self.mempool.extend(entries);
        } else {
            // A later group's write finished first: splice this one in before it, in linear time
            // (one insert per entry would move every later entry each time, under the lock;
            // audit19 P1).
            let at = self.mempool.partition_point(|p| p.seq < first);
            let tail = self.mempool.split_off(at);
            self.mempool.extend(entries);
            self.mempool.extend(tail);
        }
    }

    /// Gives back the reservations of entries whose write failed: their hashes and the inputs
    /// they took (each still maps to its own hash: nothing else can take a reserved input).
    fn unreserve(&mut self, entries: &[Pending]) {
        for p in entries {
            self.reserved_hashes.remove(&p.hash);
            for input in p.tx.input_positions().unwrap_or_default() {
                if self.mempool_spent.get(&input) == Some(&p.hash) {
                    self.mempool_spent.remove(&input);
                }
            }
        }
    }
}

struct View<'a>(&'a FastMap<UtxoPos, Output>);

impl UtxoView for View<'_> {
    fn utxo(&self, pos: UtxoPos) -> Option<Output> {
        self.0.get(&pos).cloned()
    }
}

impl State {
    /// The UTXO set as the operator may spend it now: exiting outputs hidden (LEDGER-9, OP-7).
    fn spendable(&self) -> WithExits<'_, View<'_>> {
        WithExits { utxos: View(&self.utxos), exiting: &self.exiting, rule: SpendRule::Now }
    }
}

/// Writes a produced block's effects behind it (OP-3, #19).
///
/// A block is stored in two write transactions: first the block itself (its rows, the next
/// block number, `EFFECTS_PENDING` = the block), then its effects (UTXO rows, transaction index,
/// its entries' removal from the stored mempool, `EFFECTS_PENDING` = 0). The first is all OP-3
/// needs before the root may go to L1; the second is most of a full block's rows and runs here,
/// on its own thread, while the producer updates memory and returns.
///
/// Why this is safe:
/// - **Memory never runs ahead of the log.** Memory takes the block only after the first
///   transaction is durable, as before; what memory says about the block is what the stored
///   block says.
/// - **No write lands between a block and its effects.** Every other chain write (the next
///   block, a deposit, exit events, a commitment, the halt) takes `writer` through
///   [`Chain::write_lock`], which waits for the effects first (and writes them itself if the
///   applier failed, or fails). The tables therefore go through the same sequence of states as
///   when the block and its effects were one transaction, with one more state in between.
///   Submissions, which write only new mempool rows, do not wait: their keys are not the
///   effects' keys.
/// - **A crash in between loses nothing.** `EFFECTS_PENDING` names the block; on open,
///   [`replay_effects`] derives its effects from the stored block ([`effects_of`]: inputs spent,
///   outputs created, hashes indexed, the same net diff as the ledger's `BlockDiff`) and its
///   entries from the stored mempool by hash, and writes them before anything is loaded.
/// - **Readers.** The last block's transaction hashes stay in memory ([`Behind::index`]) from
///   before memory drops its entries until the next block replaces them, long after its
///   effects are written. The leader's transaction status and submission's "already known"
///   ask memory, then that index, then the stored index: a transaction of the block is never
///   "unknown" nor refused as a spend of its own inputs in between. A standby reads a stored
///   mempool row and the stored index, which the second transaction changes together, so it
///   answers "pending" until both change, never "unknown".
/// - **Fencing (PostgreSQL).** The effects' write is fenced like every write: a deposed
///   leader's effects are refused, and the new leader replays them on open.
#[derive(Debug, Default)]
struct Applier {
    slot: Mutex<Option<Behind>>,
    done: Condvar,
}

/// The last block's effects: in flight, failed, or written.
#[derive(Debug)]
struct Behind {
    blknum: u64,
    /// The effects, until written.
    batch: Option<std::sync::Arc<Batch>>,
    /// `None` while the applier writes; then its outcome (the error as text).
    outcome: Option<Result<(), String>>,
    /// The block's transactions: hash → index in the block.
    index: FastMap<B256, u32>,
}

impl Applier {
    /// Where the last block holds `hash`, from memory.
    fn locate(&self, hash: &B256) -> Option<(u64, u32)> {
        let slot = self.slot.lock();
        let behind = slot.as_ref()?;
        behind.index.get(hash).map(|i| (behind.blknum, *i))
    }
}

/// A stored child block's effects on the tables, derived from its transactions alone: every
/// input spent and every output created, netted within the block (an output made and spent in
/// the same block is neither), and each transaction's hash indexed — what the ledger's
/// `BlockDiff` of that block gives, as the stored block is what the ledger accepted.
pub(crate) fn effects_of(record: &BlockRecord) -> Result<Batch, StoreError> {
    let blknum = record.blknum;
    let corrupt = |reason: String| StoreError::Corrupt { what: "stored block", reason };
    let mut spent_all: FastSet<UtxoPos> = FastSet::default();
    let mut created = Vec::with_capacity(2 * record.txs.len());
    let mut txs = Vec::with_capacity(record.txs.len());
    for (i, bytes) in record.txs.iter().enumerate() {
        let signed = SignedTransaction::decode(bytes)
            .map_err(|e| corrupt(format!("{blknum}: tx {i}: {e}")))?;
        let tx = &signed.transaction;
        let inputs = tx.input_positions().map_err(|e| corrupt(format!("{blknum}: tx {i}: {e}")))?;
        spent_all.extend(inputs);
        let index = u16::try_from(i).map_err(|e| corrupt(format!("{blknum}: tx {i}: {e}")))?;
        for (o, out) in tx.outputs.iter().enumerate() {
            let pos = UtxoPos::new(blknum, index, o as u8)
                .map_err(|e| corrupt(format!("{blknum}: tx {i}: {e}")))?;
            created.push((pos, out.clone()));
        }
        txs.push((tx.hash(), blknum, i as u32));
    }
    let made: FastSet<UtxoPos> = created.iter().map(|(p, _)| *p).collect();
    let mut spent: Vec<UtxoPos> = spent_all.iter().filter(|p| !made.contains(p)).copied().collect();
    spent.sort_unstable();
    created.retain(|(p, _)| !spent_all.contains(p));
    Ok(Batch { spent, created, txs, ..Batch::default() })
}

/// Writes the effects of a block stored without them (a crash between the two transactions of
/// [`Applier`]) before the state is loaded: derived from the stored block, with its entries'
/// removal from the stored mempool found by hash (one row a hash: a copy is refused at
/// submission).
fn replay_effects(store: &Store) -> Result<(), StoreError> {
    let Some(blknum) = store.meta(EFFECTS_PENDING)?.filter(|b| *b != 0) else { return Ok(()) };
    let record = store.block(blknum)?.ok_or_else(|| StoreError::Corrupt {
        what: "effects pending",
        reason: format!("block {blknum} is not stored"),
    })?;
    let mut batch = effects_of(&record)?;
    let hashes: FastSet<B256> = batch.txs.iter().map(|(h, _, _)| *h).collect();
    // The stored mempool in pages (not the whole store: `Chain::open` loads it next).
    let mut after = None;
    loop {
        let page = store.mempool_page(after, 4_096)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        batch.mempool_remove.extend(page.iter().filter_map(|(seq, bytes)| {
            SignedTransaction::decode(bytes)
                .is_ok_and(|s| hashes.contains(&s.transaction.hash()))
                .then_some(*seq)
        }));
    }
    batch.meta = vec![(EFFECTS_PENDING, 0)];
    store.apply(&batch)?;
    info!(target: "operator::chain", blknum, spent = batch.spent.len(), created = batch.created.len(), "a block's effects were cut off before a restart: written from the stored block");
    Ok(())
}

/// Aborts the process if dropped while unwinding (see its use in `Chain::produce`).
struct AbortOnUnwind(&'static str);

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(target: "operator::block", during = self.0, "a panic left the chain's memory half-updated; stopping (the next start replays the stored block)");
            std::process::abort();
        }
    }
}

impl Drop for Chain {
    /// Waits a while for the last block's effects, so that the store reopened after this (a
    /// restart in-process, the tests) finds them written and a clean stop leaves nothing to
    /// replay. Bounded: a write stuck on a hung database is left to its thread, which holds the
    /// store until it ends, and to the next start's replay.
    fn drop(&mut self) {
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let mut slot = self.applier.slot.lock();
        while slot.as_ref().is_some_and(|b| b.outcome.is_none()) {
            if self.applier.done.wait_until(&mut slot, deadline).timed_out() {
                warn!(target: "operator::block", "stopping with a block's effects still being written; the next start writes them");
                break;
            }
        }
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
    store: std::sync::Arc<Store>,
    /// The last produced block's effects, written behind it (OP-3): see [`Applier`].
    applier: std::sync::Arc<Applier>,
    domain: SigningDomain,
    fee_recipient: Address,
    max_mempool: usize,
    state: Mutex<State>,
    /// Serialises the chain's own writes — blocks, deposits, cursors, commitments, exit events,
    /// the halt — so that each one's read, write and change of memory is one step against the
    /// others (as `state` made them before). Never taken by readers nor by `submit`. Held across
    /// the store's round trip so that `state` need not be (A21-3): on PostgreSQL that round trip
    /// is a network call of unbounded length, and `state` is what `/v1/status`, the UTXO reads
    /// and the L1 loops' cursors wait on. Lock order: `writer`, then `state` (or `halt`).
    writer: Mutex<()>,
    /// Where submissions spend their time (`/metrics`, the load bench).
    ingest: crate::ingest::IngestStats,
    /// Step 1 of `submit` for every group, one worker per core, first come first served.
    recovery: crate::workers::Workers,
    /// Step 3 of `submit`: the groups' writes, those queued during one write made in the next.
    commits: crate::merged_writes::MergedWrites,
    /// Test hook run before each submission write (step 3 of `submit`): may fail it as a storage
    /// failure would, or hold it to look at the state while the write is in flight.
    #[cfg(test)]
    write_hook: Mutex<Option<WriteHook>>,
    /// Test hook: the exit writes' look-ups of piggybacked transactions fail as a store read
    /// would.
    #[cfg(test)]
    locate_fails: std::sync::atomic::AtomicBool,
    /// Test hook run before a block's effects are written (by the applier, and again by a
    /// retry): may fail the write (as a crash before it would leave the store) or hold it to
    /// look at the window.
    #[cfg(test)]
    effects_hook: Mutex<Option<EffectsHook>>,
    /// Set when a credited deposit vanished or changed on L1 (LEDGER-7): no more blocks.
    halt: Mutex<Option<crate::l1::Halt>>,
    /// The next child block number, published after each block is stored (OP-3): the
    /// availability distributor starts on a block as soon as it is durable (DA-7).
    produced: tokio::sync::watch::Sender<u64>,
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
    /// The last L1 block whose exit-game events were applied (OP-7).
    pub exit_cursor: u64,
    /// Outputs leaving through the exit game (LEDGER-9) that the operator refuses to spend.
    pub exiting_outputs: usize,
}

impl Chain {
    /// Opens the chain from its store, rebuilding the in-memory state.
    pub fn open(
        store: Store,
        domain: SigningDomain,
        fee_recipient: Address,
        max_mempool: usize,
    ) -> Result<Self, StoreError> {
        replay_effects(&store)?;
        let loaded = store.load()?;
        let mut state = State {
            utxos: FastMap::with_capacity_and_hasher(loaded.utxos.len(), Default::default()),
            next_child_block: loaded.next_child_block.unwrap_or(CHILD_BLOCK_INTERVAL),
            uncommitted: loaded.uncommitted.into_iter().collect(),
            deposit_cursor: loaded.deposit_cursor.unwrap_or(0),
            exiting: loaded.exiting,
            exit_cursor: loaded.exit_cursor.unwrap_or(0),
            ..State::default()
        };
        for (pos, out) in loaded.utxos {
            state.insert_utxo(pos, out);
        }
        // OP-8 counts the deposits credited since the last child block produced: found again
        // here (numbered densely after it), or a restart would forget them until the next one.
        let mut deposit = state.next_child_block.saturating_sub(CHILD_BLOCK_INTERVAL) + 1;
        while !deposit.is_multiple_of(CHILD_BLOCK_INTERVAL) && store.block_info(deposit)?.is_some()
        {
            state.last_deposit = deposit;
            deposit += 1;
        }
        for (seq, bytes) in loaded.mempool {
            // Stored entries were validated when accepted; re-derive their index data.
            let Ok(signed) = SignedTransaction::decode(&bytes) else {
                warn!(target: "operator::chain", seq, "dropping an undecodable mempool entry");
                continue;
            };
            let Ok(signers) = signed.recover_signers(&domain) else { continue };
            let hash = signed.transaction.hash();
            let leaf = leaf_hash(&signed.transaction.encode());
            if let Ok(inputs) = signed.transaction.input_positions() {
                for input in inputs {
                    state.mempool_spent.insert(input, hash);
                }
            }
            state.mempool_hashes.insert(hash);
            state.next_seq = state.next_seq.max(seq + 1);
            let (tx, bytes) = (signed.transaction, Bytes::from(bytes));
            state.mempool.push_back(Pending { seq, hash, leaf, tx, bytes, signers });
        }
        info!(
            target: "operator::chain",
            utxos = state.utxos.len(),
            mempool = state.mempool.len(),
            next_child_block = state.next_child_block,
            "state loaded"
        );
        let halt = Mutex::new(load_halt(&store)?);
        let produced = tokio::sync::watch::Sender::new(state.next_child_block);
        Ok(Self {
            store: std::sync::Arc::new(store),
            applier: std::sync::Arc::default(),
            domain,
            fee_recipient,
            max_mempool,
            state: Mutex::new(state),
            writer: Mutex::new(()),
            ingest: crate::ingest::IngestStats::default(),
            recovery: crate::workers::Workers::new(
                "plasma-recover",
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            commits: crate::merged_writes::MergedWrites::default(),
            #[cfg(test)]
            write_hook: Mutex::new(None),
            #[cfg(test)]
            locate_fails: std::sync::atomic::AtomicBool::new(false),
            #[cfg(test)]
            effects_hook: Mutex::new(None),
            halt,
            produced,
        })
    }

    /// Takes `writer` once the last block's effects are written (see [`Applier`]): if the
    /// applier failed, they are written here, and if that fails too the write is refused with
    /// the error, so nothing is ever written on top of a block whose effects are missing.
    fn write_lock(&self) -> Result<parking_lot::MutexGuard<'_, ()>, StoreError> {
        let writer = self.writer.lock();
        self.settle_effects_locked()?;
        Ok(writer)
    }

    /// Waits until the last block's effects are written; writes them again if the applier
    /// failed (the bench, tests; chain writes do this in [`Chain::write_lock`]).
    pub fn settle_effects(&self) -> Result<(), StoreError> {
        let _writer = self.writer.lock();
        self.settle_effects_locked()
    }

    /// [`Chain::settle_effects`], `writer` held. The slot is not held across the store's
    /// round trip: `submit` reads it under the state lock (`Applier::locate`), and a retry on
    /// a slow database must not hold the state lock through it (A21-3). Marked as in flight
    /// meanwhile, so readers that wait for the effects keep waiting.
    fn settle_effects_locked(&self) -> Result<(), StoreError> {
        let mut slot = self.applier.slot.lock();
        while slot.as_ref().is_some_and(|b| b.outcome.is_none()) {
            self.applier.done.wait(&mut slot);
        }
        let Some(behind) = slot.as_mut() else { return Ok(()) };
        let retry = match (&behind.outcome, &behind.batch) {
            (Some(Err(first)), Some(batch)) => Some((first.clone(), batch.clone())),
            _ => None,
        };
        let blknum = behind.blknum;
        let outcome = match retry {
            None => Ok(()),
            Some((first, batch)) => {
                behind.outcome = None;
                drop(slot);
                #[cfg(test)]
                let hook = self.effects_hook.lock().clone();
                #[cfg(test)]
                let outcome = match hook.map(|h| (h.0)()) {
                    Some(Err(e)) => Err(e),
                    _ => self.store.apply(&batch),
                };
                #[cfg(not(test))]
                let outcome = self.store.apply(&batch);
                match &outcome {
                    Ok(()) => {
                        info!(target: "operator::block", blknum, "a block's effects written on a second attempt")
                    }
                    Err(e) => {
                        warn!(target: "operator::block", blknum, first = %first, error = %e, "a block's effects could not be written; chain writes wait for them")
                    }
                }
                slot = self.applier.slot.lock();
                outcome
            }
        };
        // Only `writer`'s holder replaces the slot, and this one holds it: still block `blknum`.
        if let Some(behind) = slot.as_mut().filter(|b| b.blknum == blknum) {
            behind.outcome = Some(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(e.to_string()),
            });
            if outcome.is_ok() {
                behind.batch = None;
            }
        }
        self.applier.done.notify_all();
        outcome
    }

    /// Waits until the applier has an outcome for the last block (tests).
    #[cfg(test)]
    fn await_outcome(&self) {
        let mut slot = self.applier.slot.lock();
        while slot.as_ref().is_some_and(|b| b.outcome.is_none()) {
            self.applier.done.wait(&mut slot);
        }
    }

    /// Hands block `blknum`'s effects, already in the slot, to a thread of their own (see
    /// [`Applier`]), which also frees the block's mempool entries. Called with `writer` held,
    /// after the block is durable and in memory.
    fn apply_behind(&self, blknum: u64, batch: std::sync::Arc<Batch>, gone: VecDeque<Pending>) {
        let (store, applier) = (self.store.clone(), self.applier.clone());
        #[cfg(test)]
        let hook = self.effects_hook.lock().clone();
        let write = move || {
            #[cfg(test)]
            let outcome = match hook.map(|h| (h.0)()) {
                Some(Err(e)) => Err(e),
                _ => store.apply(&batch),
            };
            #[cfg(not(test))]
            let outcome = store.apply(&batch);
            if let Err(e) = &outcome {
                warn!(target: "operator::block", blknum, error = %e, "writing a block's effects failed; the next chain write tries again");
            }
            // Let the store go before telling: a chain dropped once the outcome is known can
            // then be reopened at once (redb opens a file once).
            drop(store);
            let mut slot = applier.slot.lock();
            if let Some(b) = slot.as_mut().filter(|b| b.blknum == blknum) {
                if outcome.is_ok() {
                    b.batch = None;
                }
                b.outcome = Some(outcome.map_err(|e| e.to_string()));
            }
            applier.done.notify_all();
            drop(slot);
            drop(gone);
        };
        if let Err(e) = std::thread::Builder::new().name("effects".into()).spawn(write) {
            // No thread: the slot keeps the batch with a failure, for `write_lock` to write.
            warn!(target: "operator::block", blknum, error = %e, "no thread for a block's effects");
            if let Some(b) = self.applier.slot.lock().as_mut() {
                b.outcome = Some(Err(e.to_string()));
            }
        }
    }

    /// The next child block number, updated once each produced block is stored (OP-3).
    pub fn subscribe_produced(&self) -> tokio::sync::watch::Receiver<u64> {
        self.produced.subscribe()
    }

    /// The store, for what lives beside the chain state (availability headers and receipts).
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The signing domain transactions are checked against.
    pub const fn domain(&self) -> &SigningDomain {
        &self.domain
    }

    /// Where submissions spent their time so far.
    pub fn ingest_stats(&self) -> &crate::ingest::IngestStats {
        &self.ingest
    }

    /// Validates and accepts transactions (OP-1), in order; each gets its own result. Accepted
    /// transactions are durable when this returns, and only then visible (acknowledged, pending,
    /// offered to block production).
    ///
    /// A pipeline of four steps, the state lock held only for the two short in-memory ones:
    /// 1. *Recover*, no lock: decode, recover the signers on all cores, hash, Merkle leaf and
    ///    the stateless checks (TX, payment type).
    /// 2. *Reserve*, under the lock: refuse what is known, conflicting, over the mempool's cap or
    ///    invalid against the UTXO set (LEDGER, exits of OP-7); for each accepted transaction
    ///    take its inputs in `mempool_spent`, its hash in `reserved_hashes` and its `seq`. Then,
    ///    off the lock, each refused transaction is looked up among those blocks include (a
    ///    store read): one found is answered `AlreadyKnown`.
    /// 3. *Persist*, no lock: one store write (fsync) of the group's mempool rows, together with
    ///    those of the groups that queued behind the write in flight (`merged_writes`).
    /// 4. *Publish*, under the lock: on success the entries join the block queue in `seq` order
    ///    and their hashes become pending; on failure the reservations are given back and every
    ///    transaction of the group is answered `StorageFailure`.
    ///
    /// *Why this cannot double-spend or acknowledge what is not durable:*
    /// - An input is taken in `mempool_spent` under the lock in step 2 and only given back under
    ///   the lock (a failed write, a block including or dropping its spender). Every acceptance
    ///   checks `mempool_spent` under the same lock first, so of all transactions spending one
    ///   input — in one group or in concurrent groups — at most one holds it: no input is
    ///   reserved twice, whatever the interleaving of writes.
    /// - Block production takes only `mempool` entries, and an entry joins `mempool` in step 4
    ///   only after its write returned: a block never includes a transaction that is not
    ///   durable, and a reopened chain loads every transaction ever acknowledged. A reserved
    ///   input is not in any block-queue entry, so a block built meanwhile cannot spend it.
    /// - Nothing is answered before step 4: the results are returned after it, `tx_status`
    ///   answers `Pending` only from `mempool_hashes`, published in step 4. A failed write answers
    ///   every transaction of the group with an error and releases only its own reservations
    ///   (an input maps to its reserver's hash). The only visible effect of a reservation that
    ///   then fails is a conflicting spend refused meanwhile (`MempoolConflict`), which its
    ///   sender may send again: liveness, never safety.
    /// - A transaction a block includes is never accepted again, and no look-up is needed for
    ///   that: block production removes its inputs from the UTXO set in the same lock hold in
    ///   which it leaves `mempool_hashes`, so step 2 refuses it (`InputNotFound`, or a mempool
    ///   refusal before it). The stored index is read only for a refusal's wording (step 2b),
    ///   after step 2, so it cannot miss a block that step 2 saw; it never turns a refusal into
    ///   an acceptance.
    /// - Exits (OP-7): step 2 checks the inputs against the exiting outputs under the lock, and
    ///   step 4 again: an exit event applied while the group's write was in flight refuses the
    ///   entries spending an output that started exiting (`OutputExiting`, never acknowledged;
    ///   their rows removed after, and block production drops any row left, as it drops every
    ///   entry spending an exiting output).
    /// - The halt (LEDGER-7) is read before step 1 and again in step 4: a halt stored before the
    ///   group is published refuses the whole group (`OperatorHalted`). A halt stored while step
    ///   4 runs is ordered after that group's acknowledgement; block production stops either way.
    pub fn submit(&self, raw: &[Vec<u8>]) -> Vec<Result<B256, SubmitError>> {
        if let Some(halt) = self.halted() {
            // LEDGER-7: accepting would acknowledge payments that can never be included.
            return raw.iter().map(|_| Err(SubmitError::Halted(halt.clone()))).collect();
        }
        // 1. Recover, off the lock.
        let t = Instant::now();
        let prepared = self.recover(raw);
        self.ingest.recover(raw.len(), t.elapsed());
        let hashes: Vec<Option<B256>> =
            prepared.iter().map(|p| p.as_ref().ok().map(|r| r.hash)).collect();

        // 2. Reserve, under the lock.
        let t = Instant::now();
        let mut state = self.state.lock();
        self.ingest.lock_wait(raw.len(), t.elapsed());
        let t = Instant::now();
        let mut results = Vec::with_capacity(raw.len());
        let mut reserved: Vec<Pending> = Vec::new();
        for (bytes, prep) in raw.iter().zip(prepared) {
            results.push(self.reserve(&mut state, bytes, prep, &mut reserved));
        }
        self.ingest.validate(raw.len(), t.elapsed());
        drop(state);
        // 2b. Refused, off the lock: is it a transaction a block already includes? A block's
        // inputs are spent, so step 2 refuses every included transaction; its sender is told it
        // is known (a resubmit after a lost answer), not why a new spend would fail. Only the
        // refused are looked up: the accepted never pay for a store read.
        self.known_refusals(&mut results, &hashes);
        if reserved.is_empty() {
            return results;
        }

        // A second copy of a transaction in this very group was refused as in flight behind the
        // first; once the group is written it is simply known (below).
        let own: HashSet<B256> = reserved.iter().map(|p| p.hash).collect();

        // 3. Persist, off the lock. Nothing reserved is visible yet.
        let t = Instant::now();
        let batch = Batch {
            mempool_add: reserved.iter().map(|p| (p.seq, p.bytes.to_vec())).collect(),
            ..Batch::default()
        };
        let written = self.write_mempool(batch);
        self.ingest.persist(reserved.len(), t.elapsed());

        // 4. Publish (or undo), under the lock.
        let t = Instant::now();
        let count = reserved.len();
        let mut state = self.state.lock();
        // What happened during the write, under the lock now: a halt (LEDGER-7) refuses the
        // group, an exit event (OP-7) the entries spending an output that started exiting.
        // Their rows are removed after, and the refusal is answered only once that removal is
        // durable: a row left behind would be loaded as pending by a restart or a new leader
        // (and served as pending by a standby), and included if the exit was cancelled by then
        // — a payment its sender was told was refused, and may have made again.
        let halt = written.as_ref().ok().and_then(|()| self.halted());
        let mut late: Vec<(usize, SubmitError)> = Vec::new();
        let mut withdrawn: Vec<u64> = Vec::new();
        if written.is_ok() {
            let mut kept = Vec::with_capacity(reserved.len());
            let mut refused = Vec::new();
            let mut at = 0;
            for p in reserved.drain(..) {
                while results[at].as_ref().ok() != Some(&p.hash) {
                    at += 1;
                }
                // The exits stored, and those being stored now (A21-3: that write holds no
                // lock readers need, so a group can be published while it is in flight).
                let exiting =
                    p.tx.input_positions().unwrap_or_default().into_iter().find_map(|i| {
                        let out = state.utxos.get(&i);
                        let since =
                            state.exiting.forbids_output(i, out, SpendRule::Now).or_else(|| {
                                state.exiting_next.as_ref()?.forbids_output(i, out, SpendRule::Now)
                            })?;
                        Some(LedgerError::OutputExiting { input: i, since })
                    });
                match (&halt, exiting) {
                    (Some(h), _) => late.push((at, SubmitError::Halted(h.clone()))),
                    (None, Some(e)) => late.push((at, SubmitError::Ledger(e))),
                    (None, None) => {
                        kept.push(p);
                        continue;
                    }
                }
                withdrawn.push(p.seq);
                refused.push(p);
            }
            state.unreserve(&refused);
            reserved = kept;
        }
        match written {
            Ok(()) => {
                state.publish(reserved);
                drop(state);
                let removed = if withdrawn.is_empty() {
                    Ok(())
                } else {
                    let rows = Batch { mempool_remove: withdrawn, ..Batch::default() };
                    self.write_mempool(rows)
                };
                for (at, refusal) in late {
                    results[at] = Err(match &removed {
                        Ok(()) => refusal,
                        // Stored, never published here: its outcome is not "refused" for
                        // certain (see above), so it is a storage failure; its status tells.
                        Err(e) => {
                            warn!(target: "operator::chain", error = %e, %refusal, "a refused transaction's stored row could not be removed: answered as a storage failure");
                            SubmitError::Store(StoreError::Corrupt {
                                what: "mempool withdrawal",
                                reason: format!(
                                    "refused ({refusal}), but its stored row could not be removed \
                                     ({e}): it may still be taken up after a restart; ask for its status"
                                ),
                            })
                        }
                    });
                }
            }
            Err(e) => {
                state.unreserve(&reserved);
                drop(state);
                // Nothing was acknowledged: every transaction meant to be accepted fails. A
                // write refused by the fence (OP-HA: another operator leads now) says so, as
                // `NotLeader`, not as a storage fault: the wallet's next URL is the remedy.
                let msg = e.to_string();
                let fenced = match e {
                    StoreError::Fenced { ours, current } => Some((ours, current)),
                    _ => None,
                };
                results = results
                    .into_iter()
                    .map(|r| match r {
                        Ok(_) => Err(SubmitError::Store(match fenced {
                            Some((ours, current)) => StoreError::Fenced { ours, current },
                            None => {
                                StoreError::Corrupt { what: "mempool write", reason: msg.clone() }
                            }
                        })),
                        err => err,
                    })
                    .collect();
            }
        }
        if results.iter().any(|r| matches!(r, Err(SubmitError::InFlight(h)) if own.contains(h))) {
            let state = self.state.lock();
            for r in &mut results {
                if let Err(SubmitError::InFlight(h)) = r
                    && own.contains(h)
                    && state.mempool_hashes.contains(h)
                {
                    *r = Err(SubmitError::AlreadyKnown(*h));
                }
            }
        }
        self.ingest.publish(count, t.elapsed());
        results
    }

    /// Step 1 of [`Chain::submit`]: [`prepare`] on the recovery workers, in runs queued behind
    /// those of the groups before in the group's lane (see `workers`: small groups go first),
    /// results in input order. A group smaller than one run is prepared on this thread.
    fn recover(&self, raw: &[Vec<u8>]) -> Vec<Prepared> {
        use crate::workers::{Lane, RUN_MAX};
        // Sixteen: two of the lanes' eight Keccaks, and enough runs in a group of a hundred
        // for every core; a large group in four runs a core, none longer than `RUN_MAX` (what
        // a small group may wait for).
        let run = raw.len().div_ceil(4 * self.recovery.threads()).clamp(RECOVERY_RUN, RUN_MAX);
        if raw.len() <= RECOVERY_RUN {
            return prepare(raw, &self.domain);
        }
        let domain = self.domain.clone();
        let f = std::sync::Arc::new(move |c: &[Vec<u8>]| prepare(c, &domain));
        let lane = Lane::of(raw.len());
        self.recovery.map_runs(&std::sync::Arc::new(raw.to_vec()), run, lane, &f)
    }

    /// Step 2b of [`Chain::submit`]: each refusal that step 2 gave a transaction which decoded
    /// and recovered becomes `AlreadyKnown` if the stored index holds its hash — all of them in
    /// one store read. A failed read keeps the refusals: the transactions are refused either way.
    fn known_refusals(&self, results: &mut [Result<B256, SubmitError>], hashes: &[Option<B256>]) {
        let refused: Vec<(usize, B256)> = results
            .iter()
            .zip(hashes)
            .enumerate()
            .filter(|(_, (result, _))| {
                !matches!(
                    result,
                    Ok(_) | Err(SubmitError::AlreadyKnown(_) | SubmitError::InFlight(_))
                )
            })
            .filter_map(|(i, (_, hash))| hash.map(|h| (i, h)))
            .collect();
        if refused.is_empty() {
            return;
        }
        let asked: Vec<B256> = refused.iter().map(|(_, h)| *h).collect();
        match self.store.tx_locations(&asked) {
            Ok(found) => {
                for ((i, hash), at) in refused.into_iter().zip(found) {
                    if at.is_some() {
                        results[i] = Err(SubmitError::AlreadyKnown(hash));
                    }
                }
            }
            Err(e) => {
                warn!(target: "operator::chain", refused = asked.len(), error = %e, "included-transaction look-up failed; the refusals stand");
            }
        }
    }

    /// Step 2 of [`Chain::submit`] for one transaction: its checks against the state, and on
    /// success its reservation (inputs, hash, `seq`) pushed to `reserved`.
    fn reserve(
        &self,
        state: &mut State,
        bytes: &[u8],
        prep: Prepared,
        reserved: &mut Vec<Pending>,
    ) -> Result<B256, SubmitError> {
        let Recovered { signed, hash, leaf, inputs, signers } = prep?;
        // Pending, or in the last block: the stored index read in step 2b may not hold the
        // last block yet (see [`Applier`]); this is read under the state lock, so a block
        // whose entries memory has dropped is in it.
        if state.mempool_hashes.contains(&hash) || self.applier.locate(&hash).is_some() {
            return Err(SubmitError::AlreadyKnown(hash));
        }
        if state.reserved_hashes.contains(&hash) {
            return Err(SubmitError::InFlight(hash));
        }
        if state.mempool.len() + state.reserved_hashes.len() >= self.max_mempool {
            return Err(SubmitError::MempoolFull(self.max_mempool));
        }
        for input in &inputs {
            if let Some(spent_by) = state.mempool_spent.get(input) {
                return Err(SubmitError::MempoolConflict { input: *input, spent_by: *spent_by });
            }
        }
        validate_payment(&state.spendable(), &signed.transaction, &inputs, &signers)?;
        for input in inputs {
            state.mempool_spent.insert(input, hash);
        }
        state.reserved_hashes.insert(hash);
        let seq = state.next_seq;
        state.next_seq += 1;
        reserved.push(Pending {
            seq,
            hash,
            leaf,
            tx: signed.transaction,
            bytes: Bytes::copy_from_slice(bytes),
            signers,
        });
        Ok(hash)
    }

    /// The write of step 3 of [`Chain::submit`], with those of the other groups that queued
    /// behind the write in flight (see `merged_writes`).
    fn write_mempool(&self, batch: Batch) -> Result<(), StoreError> {
        self.commits.write(batch, |rows| {
            #[cfg(test)]
            if let Some(hook) = self.write_hook.lock().as_mut() {
                (hook.0)()?;
            }
            self.store.apply(rows)
        })
    }

    /// Number of pending transactions.
    pub fn mempool_len(&self) -> usize {
        self.state.lock().mempool.len()
    }

    /// Produces the next child block from up to `max_txs` pending transactions, with a fee
    /// transaction last, and stores it before anything else sees it (OP-2, OP-3). `None` if the
    /// mempool is empty.
    pub fn produce_block(&self, max_txs: usize) -> Result<Option<BlockRecord>, StoreError> {
        Ok(self.produce(max_txs, false)?.map(|(record, _)| record))
    }

    /// [`Chain::produce_block`], with where its time went (the full-block bench).
    pub fn produce_block_staged(
        &self,
        max_txs: usize,
    ) -> Result<Option<(BlockRecord, ProduceStages)>, StoreError> {
        self.produce(max_txs, false)
    }

    /// Produces the next child block even if the mempool is empty (OP-8): committing it frees
    /// L1's deposit slots before depositors would have to pay the fee of BOND-2.
    pub fn produce_block_for_deposits(
        &self,
        max_txs: usize,
    ) -> Result<Option<BlockRecord>, StoreError> {
        Ok(self.produce(max_txs, true)?.map(|(record, _)| record))
    }

    fn produce(
        &self,
        max_txs: usize,
        allow_empty: bool,
    ) -> Result<Option<(BlockRecord, ProduceStages)>, StoreError> {
        let mut stages = ProduceStages::default();
        let started = Instant::now();
        // The writer first (one block, deposit or exit write at a time), then the state for
        // the in-memory part only: it is let go across the store write below (A21-3).
        let _writer = self.write_lock()?;
        // Under `writer`, as the halt is stored: no block after a stored halt.
        if self.halt.lock().is_some() {
            return Ok(None); // LEDGER-7: a credited deposit is gone; nothing more is built on it
        }
        let state = self.state.lock();
        stages.lock = started.elapsed();
        if state.mempool.is_empty() && !allow_empty {
            return Ok(None);
        }
        let blknum = state.next_child_block;
        let take = state.mempool.len().min(max_txs).min(plasma_spec::MAX_TXS_PER_BLOCK - 1);
        let mut builder = match BlockBuilder::new(state.spendable(), blknum) {
            Ok(b) => b,
            Err(e) => {
                return Err(StoreError::Corrupt {
                    what: "next child block",
                    reason: e.to_string(),
                });
            }
        };
        builder.reserve(take);
        // The candidates are deflated on the other core while the ledger checks them; what
        // the ledger keeps of them in order is used (`DeflateAhead` says why that is exact).
        let ahead =
            DeflateAhead::start(state.mempool.iter().take(take).map(|p| p.bytes.clone()).collect());
        let mut included: Vec<&Pending> = Vec::with_capacity(take);
        let mut dropped = Vec::new();
        // Candidates before the first dropped one: the block's first transactions, unchanged.
        let mut same = 0;
        for pending in state.mempool.iter().take(take) {
            // The hash was computed at submission (`tx.hash()`), off the lock.
            match builder.push_payment_hashed(&pending.tx, pending.hash, &pending.signers) {
                Ok(_) => {
                    same += usize::from(dropped.is_empty());
                    included.push(pending);
                }
                Err(e) => {
                    // Validated at submission; since then an input may have started exiting (OP-7).
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
        stages.ledger = started.elapsed() - stages.lock;
        let t = Instant::now();

        // The signed bytes are shared with the mempool entries, not copied.
        let mut signed_txs: Vec<Bytes> = included.iter().map(|p| p.bytes.clone()).collect();
        let mut leaves: Vec<B256> = included.iter().map(|p| p.leaf).collect();
        let mut index: Vec<(B256, u64, u32)> =
            included.iter().enumerate().map(|(i, p)| (p.hash, blknum, i as u32)).collect();
        if let Some(fee_tx) = fee_tx {
            let signed = SignedTransaction::new(fee_tx, Vec::new());
            index.push((signed.transaction.hash(), blknum, leaves.len() as u32));
            leaves.push(leaf_hash(&signed.transaction.encode()));
            signed_txs.push(Bytes::from(signed.encode()));
        }
        // The outputs the block spends with their owners, for the owner index: each included
        // payment's signer of an input is that input's owner (SIG-4, checked just above by the
        // ledger), so no UTXO look-up is needed.
        let spent_owners: Vec<(UtxoPos, Address)> = included
            .iter()
            .flat_map(|p| {
                p.tx.inputs.iter().zip(&p.signers).filter_map(|(raw, signer)| {
                    UtxoPos::from_u256(*raw).ok().map(|pos| (pos, *signer))
                })
            })
            .collect();
        stages.leaves = t.elapsed();
        let included_seqs: Vec<u64> = included.iter().map(|p| p.seq).collect();
        drop(included);
        // Everything the write needs is owned now: the state is let go for the round trip
        // (A21-3), so `/v1/status`, the UTXO reads and `submit` do not wait on the database.
        // Why that is safe: `writer` keeps every other chain write out until memory is
        // updated below, so the block's base (UTXO set, exits, `next_child_block`) cannot
        // change meanwhile; what `submit` may do meanwhile is reserve and publish *other*
        // entries (the block's inputs stay taken in `mempool_spent` until `drop_pending`, so a
        // conflicting spend is refused as before) — and those are not in this block. Readers
        // see the state before the block until it is durable (OP-3), as before.
        drop(state);
        // OP-3, OP-9: the block is the log. One write transaction stores its wire form and its
        // proof and transaction indexes (made once, on all cores), the next block number, the
        // removal of the entries dropped above, and `EFFECTS_PENDING` = this block: durable
        // before anything can commit the block's root. Its effects on the tables — the UTXO
        // rows, the transaction index, the removal of its entries from the stored mempool,
        // ~330,000 rows for a full block — are written behind it by the applier; every later
        // chain write waits for them first (`write_lock`), and a start replays them from the
        // stored block if they were cut off (`replay_effects`). Why this order is safe is
        // written at [`Applier`].
        let next = blknum + CHILD_BLOCK_INTERVAL;
        let log = Batch {
            mempool_remove: dropped.clone(),
            meta: vec![(NEXT_CHILD_BLOCK, next), (EFFECTS_PENDING, blknum)],
            ..Batch::default()
        };
        let mut encoding = ProduceStages::default();
        // What the memory update needs is made beside the write (whose commit mostly waits on
        // the disk): the block's mempool entries in `seq` order, and its transaction index.
        let (written, (removed, tx_index)) = std::thread::scope(|scope| {
            let prepared = scope.spawn(|| {
                // Both lists are in mempool (`seq`) order: merged, ascending.
                let mut removed = Vec::with_capacity(included_seqs.len() + dropped.len());
                removed.extend(included_seqs.iter().chain(dropped.iter()).copied());
                removed.sort_unstable();
                let tx_index: FastMap<B256, u32> =
                    index.iter().map(|(hash, _, i)| (*hash, *i)).collect();
                (removed, tx_index)
            });
            let written = self.store.apply_with_block(&log, || {
                let t = Instant::now();
                let ahead = ahead.finish(same);
                encoding.ahead = t.elapsed();
                EncodedBlock::new_staged(blknum, &signed_txs, &leaves, ahead, &mut encoding)
            });
            (written, prepared.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
        });
        let (info, rows, commit) = written?;
        (stages.ahead, stages.tree, stages.encode) =
            (encoding.ahead, encoding.tree, encoding.encode);
        (stages.write, stages.commit) = (rows, commit);
        let root = info.root;
        let record = BlockRecord { blknum, root, txs: signed_txs, l1_timestamp: None, l1_tx: None };
        let t = Instant::now();
        let effects = std::sync::Arc::new(Batch {
            spent: diff.spent,
            created: diff.created,
            txs: index,
            mempool_remove: included_seqs,
            meta: vec![(EFFECTS_PENDING, 0)],
            ..Batch::default()
        });
        // Readers that miss the block in memory and in the index wait for the effects from
        // here on (`tx_status`), before memory drops the block's entries.
        *self.applier.slot.lock() =
            Some(Behind { blknum, batch: Some(effects.clone()), outcome: None, index: tx_index });
        // A panic from here until memory holds the block (a thread that cannot be spawned)
        // would leave memory half-updated: a later block could spend this block's inputs
        // again. The process stops instead; the next start replays the stored block.
        let abort = AbortOnUnwind("the in-memory update of a stored block");
        let mut state = self.state.lock();

        // Durable: now change memory. The entries taken are dropped, never copied, and what
        // stays moves to a queue sized to it: a full block's queue is not kept (OP-9).
        let gone = state.apply_block(&removed, &spent_owners, &effects.created);
        state.next_child_block = blknum + CHILD_BLOCK_INTERVAL;
        state.uncommitted.push_back(blknum);
        drop(state);
        std::mem::forget(abort);
        stages.memory = t.elapsed();
        // After memory, so that its update has both cores.
        self.apply_behind(blknum, effects, gone);
        self.produced.send_replace(blknum + CHILD_BLOCK_INTERVAL);
        info!(target: "operator::block", blknum, txs = record.txs.len(), root = %root, "block produced");
        Ok(Some((record, stages)))
    }

    /// The oldest produced block whose root is not committed yet.
    pub fn next_uncommitted(&self) -> Option<u64> {
        self.state.lock().uncommitted.front().copied()
    }

    /// The oldest produced blocks whose roots are not committed yet, oldest first, at most `max`
    /// (the run one `submitBlocks` commits, OP-4).
    pub fn uncommitted_front(&self, max: usize) -> Vec<u64> {
        self.state.lock().uncommitted.iter().take(max).copied().collect()
    }

    /// Records that `blknum`'s root was committed on L1 at `timestamp` by `l1_tx`.
    pub fn mark_committed(
        &self,
        blknum: u64,
        timestamp: u64,
        l1_tx: B256,
    ) -> Result<(), StoreError> {
        self.mark_committed_run(&[(blknum, timestamp, l1_tx)])
    }

    /// Records several commitments, each `(blknum, timestamp, l1_tx)`, in one store write (the
    /// blocks of one `submitBlocks` transaction, OP-4).
    pub fn mark_committed_run(&self, run: &[(u64, u64, B256)]) -> Result<(), StoreError> {
        let _writer = self.write_lock()?;
        let mut infos = Vec::with_capacity(run.len());
        for &(blknum, timestamp, l1_tx) in run {
            let mut info = self.stored_info(blknum)?;
            info.l1_timestamp = Some(timestamp);
            info.l1_tx = Some(l1_tx);
            infos.push(info);
        }
        self.store.apply(&Batch { block_infos: infos, ..Batch::default() })?;
        let mut state = self.state.lock();
        state.uncommitted.retain(|b| !run.iter().any(|(c, _, _)| c == b));
        drop(state);
        for &(blknum, timestamp, _) in run {
            info!(target: "operator::l1", blknum, timestamp, "block committed");
        }
        Ok(())
    }

    /// Credits a deposit seen on L1 (OP-5). Idempotent: a deposit already credited is skipped.
    pub fn credit_deposit(
        &self,
        blknum: u64,
        deposit_tx: &[u8],
        timestamp: u64,
    ) -> Result<bool, StoreError> {
        let _writer = self.write_lock()?;
        if self.store.block_info(blknum)?.is_some() {
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
            blocks: vec![EncodedBlock::from_record(&record)?],
            txs: vec![(tx.hash(), blknum, 0)],
            ..Batch::default()
        };
        self.store.apply(&batch)?;
        let mut state = self.state.lock();
        for (pos, out) in diff.created {
            state.insert_utxo(pos, out);
        }
        state.last_deposit = state.last_deposit.max(blknum);
        info!(target: "operator::deposits", blknum, "deposit credited");
        Ok(true)
    }

    /// Records that deposits up to L1 block `l1_block` were credited.
    pub fn set_deposit_cursor(&self, l1_block: u64) -> Result<(), StoreError> {
        let _writer = self.write_lock()?;
        self.store.apply(&Batch { meta: vec![(DEPOSIT_CURSOR, l1_block)], ..Batch::default() })?;
        self.state.lock().deposit_cursor = l1_block;
        Ok(())
    }

    /// The last L1 block whose deposits were credited.
    pub fn deposit_cursor(&self) -> u64 {
        self.state.lock().deposit_cursor
    }

    // ------------------------------------------------------------------------------------------
    // Following L1 until final (OP-4, OP-5, LEDGER-7): used by the L1 loops in `l1.rs`.

    /// Stops block production for good, durably: a credited deposit vanished or changed on L1
    /// (LEDGER-7). Outputs built on it are backed by nothing; the operator must not go on.
    pub fn halt(&self, halt: crate::l1::Halt) -> Result<(), StoreError> {
        // `halt` is not held across the write (A21-3): `halted()` is asked by every submission
        // and by the L1 loops; `writer` makes the check and the write one step.
        let _writer = self.write_lock()?;
        if self.halt.lock().is_some() {
            return Ok(());
        }
        let (blknum, kind) = halt.persisted();
        self.store.apply(&Batch {
            meta: vec![(HALT_BLKNUM, blknum), (HALT_KIND, kind)],
            ..Batch::default()
        })?;
        tracing::error!(target: "operator::deposits", %halt, "HALTED: block production stopped (LEDGER-7)");
        *self.halt.lock() = Some(halt);
        Ok(())
    }

    /// Why block production stopped, if it did (LEDGER-7).
    pub fn halted(&self) -> Option<crate::l1::Halt> {
        self.halt.lock().clone()
    }

    /// Rewrites the L1 timestamp (and the L1 transaction, if given) of a stored block whose
    /// commitment L1 moved to another block: exit data must carry the timestamp L1 now holds
    /// (MERKLE-6).
    pub fn move_commitment(
        &self,
        blknum: u64,
        timestamp: u64,
        l1_tx: Option<B256>,
    ) -> Result<(), StoreError> {
        let _writer = self.write_lock()?;
        let mut info = self.stored_info(blknum)?;
        info.l1_timestamp = Some(timestamp);
        if l1_tx.is_some() {
            info.l1_tx = l1_tx;
        }
        self.store.apply(&Batch { block_infos: vec![info], ..Batch::default() })?;
        warn!(target: "operator::l1", blknum, timestamp, "commitment moved by an L1 reorg; new timestamp stored");
        Ok(())
    }

    /// A child block whose commitment an L1 reorg dropped: uncommitted again, so the submitter
    /// sends it again, in block order (OP-4).
    pub fn reopen_commitment(&self, blknum: u64) -> Result<(), StoreError> {
        let _writer = self.write_lock()?;
        let mut info = self.stored_info(blknum)?;
        info.l1_timestamp = None;
        info.l1_tx = None;
        self.store.apply(&Batch { block_infos: vec![info], ..Batch::default() })?;
        let mut state = self.state.lock();
        if !state.uncommitted.contains(&blknum) {
            state.uncommitted.push_back(blknum);
            state.uncommitted.make_contiguous().sort_unstable();
        }
        warn!(target: "operator::l1", blknum, "commitment dropped by an L1 reorg; submitting it again");
        Ok(())
    }

    /// Credited deposit blocks numbered above `after`, in order (deposit numbers grow with L1
    /// order, so these are the ones credited since the deposit `after` became final).
    pub fn deposit_blocks_after(&self, after: u64) -> Result<Vec<BlockRecord>, StoreError> {
        let end = self.state.lock().next_child_block;
        let mut found = Vec::new();
        let mut b = after + 1;
        while b < end {
            if b.is_multiple_of(CHILD_BLOCK_INTERVAL) {
                b += 1;
                continue;
            }
            match self.store.block(b)? {
                Some(record) => {
                    found.push(record);
                    b += 1;
                }
                // Deposit numbers are dense after each child block: skip to the next interval.
                None => b = (b / CHILD_BLOCK_INTERVAL + 1) * CHILD_BLOCK_INTERVAL + 1,
            }
        }
        Ok(found)
    }

    /// The highest deposit block known final on L1 (every deposit up to it is final).
    pub fn deposits_final_through(&self) -> Result<u64, StoreError> {
        Ok(self.store.meta(DEPOSITS_FINAL)?.unwrap_or(0))
    }

    /// Records that deposits up to `blknum` are final on L1.
    pub fn set_deposits_final_through(&self, blknum: u64) -> Result<(), StoreError> {
        let _writer = self.write_lock()?;
        self.store.apply(&Batch { meta: vec![(DEPOSITS_FINAL, blknum)], ..Batch::default() })
    }

    // ------------------------------------------------------------------------------------------

    /// Unspent outputs of `owner`, by position.
    pub fn utxos_of(&self, owner: Address) -> BTreeMap<UtxoPos, Output> {
        let state = self.state.lock();
        let Some(positions) = state.by_owner.get(&owner) else { return BTreeMap::new() };
        positions
            .iter()
            .filter_map(|p| state.utxos.get(p).map(|o| (*p, o)))
            .filter(|(p, o)| state.exiting.forbids_output(*p, Some(o), SpendRule::Now).is_none())
            .map(|(p, o)| (p, o.clone()))
            .collect()
    }

    /// One page of `owner`'s unspent outputs in ascending position, after `after` (exclusive),
    /// at most `limit`, and whether more follow. Exiting outputs are left out (OP-7). Reads the
    /// owner index from `after` on: a page costs its own size, not the owner's or the set's.
    pub fn utxos_page(
        &self,
        owner: Address,
        after: Option<UtxoPos>,
        limit: usize,
    ) -> (Vec<(UtxoPos, Output)>, bool) {
        let state = self.state.lock();
        let Some(positions) = state.by_owner.get(&owner) else { return (Vec::new(), false) };
        let from = match after {
            Some(a) => std::ops::Bound::Excluded(a),
            None => std::ops::Bound::Unbounded,
        };
        let mut page: Vec<(UtxoPos, Output)> = positions
            .range((from, std::ops::Bound::Unbounded))
            .filter_map(|p| state.utxos.get(p).map(|o| (*p, o)))
            .filter(|(p, o)| state.exiting.forbids_output(*p, Some(o), SpendRule::Now).is_none())
            .map(|(p, o)| (p, o.clone()))
            .take(limit.saturating_add(1))
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        (page, more)
    }

    /// Deposit slots L1 has used since the last child block the operator produced (OP-8): deposits
    /// are numbered after the last committed child block, 1 to 999 (POS-3, BOND-2).
    pub fn deposit_slots_used(&self) -> u64 {
        let state = self.state.lock();
        let base = state.next_child_block.saturating_sub(CHILD_BLOCK_INTERVAL);
        state.last_deposit.saturating_sub(base)
    }

    /// Whether a produced block still waits for its commitment.
    pub fn has_uncommitted(&self) -> bool {
        !self.state.lock().uncommitted.is_empty()
    }

    /// The last L1 block whose exit-game events were applied (OP-7).
    pub fn exit_cursor(&self) -> u64 {
        self.state.lock().exit_cursor
    }

    /// If `pos` is exiting now, the L1 time it began (LEDGER-9).
    pub fn exiting_since(&self, pos: UtxoPos) -> Option<u64> {
        let state = self.state.lock();
        state.exiting.forbids_output(pos, state.utxos.get(&pos), SpendRule::Now)
    }

    /// Applies exit-game events read from L1 blocks up to `l1_block`, each with its L1 block's
    /// timestamp, durably with the cursor (OP-7, LEDGER-9). Pending transactions that spend an
    /// output now exiting are dropped from the mempool in the same write: they can never be
    /// included. Returns how many were dropped.
    pub fn apply_exit_events(
        &self,
        events: &[(ExitEvent, u64)],
        l1_block: u64,
    ) -> Result<usize, StoreError> {
        // Only exit writes change `exiting`, and they hold `writer`: the look-ups below (store
        // reads) run without the state lock (A21-3).
        let _writer = self.write_lock()?;
        let mut exiting = self.state.lock().exiting.clone();
        // A failed look-up fails the whole write (the cursor stays, the events are applied again
        // next time: they are idempotent). Taken as "not included", the piggyback would wait for
        // an inclusion the operator never reports again, and the piggybacked output would stay
        // spendable for good (review H). The index is complete: `write_lock` settled the last
        // block's effects.
        let mut failed: Option<StoreError> = None;
        for (event, at) in events {
            let locate = |hash: B256, _: &[UtxoPos]| match self.locate_stored(&hash) {
                Ok(found) => found.and_then(|(b, i)| u16::try_from(i).ok().map(|i| (b, i))),
                Err(e) => {
                    failed.get_or_insert(e);
                    None
                }
            };
            exiting.apply(event, *at, locate);
        }
        if let Some(e) = failed {
            warn!(target: "operator::exits", error = %e, "a piggyback's transaction could not be looked up: the events are applied again next time");
            return Err(e);
        }
        let mut state = self.state.lock();
        let dropped: Vec<(u64, B256)> = state
            .mempool
            .iter()
            .filter(|p| {
                p.tx.input_positions().is_ok_and(|inputs| {
                    inputs.iter().any(|i| {
                        exiting.forbids_output(*i, state.utxos.get(i), SpendRule::Now).is_some()
                    })
                })
            })
            .map(|p| (p.seq, p.hash))
            .collect();
        let batch = Batch {
            meta: vec![(EXIT_CURSOR, l1_block)],
            mempool_remove: dropped.iter().map(|(seq, _)| *seq).collect(),
            exiting: (!events.is_empty()).then(|| exiting.clone()),
            ..Batch::default()
        };
        // The write runs without the state lock (A21-3). Meanwhile `submit` may publish a group
        // reserved against the old set: its step 4 checks `exiting_next` too, so no payment
        // spending an output this write records as exiting is acknowledged, and `dropped` above
        // already holds every published entry that spends one.
        if !events.is_empty() {
            state.exiting_next = Some(exiting.clone());
        }
        drop(state);
        let written = self.store.apply(&batch);
        let mut state = self.state.lock();
        state.exiting_next = None;
        written?;
        // Durable: now change memory.
        state.exiting = exiting;
        state.exit_cursor = l1_block;
        for (_, hash) in &dropped {
            warn!(target: "operator::exits", tx = %hash, "dropping a pending transaction: an input started exiting (OP-7)");
        }
        let gone: Vec<u64> = dropped.iter().map(|(seq, _)| *seq).collect(); // in seq order
        state.drop_pending(&gone);
        if !events.is_empty() {
            info!(target: "operator::exits", events = events.len(), l1_block, "exit-game events applied");
        }
        Ok(dropped.len())
    }

    /// Where a stored block holds `hash` (the exit writes' look-up of piggybacked transactions).
    fn locate_stored(&self, hash: &B256) -> Result<Option<(u64, u32)>, StoreError> {
        #[cfg(test)]
        if self.locate_fails.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Corrupt {
                what: "test",
                reason: "injected read failure".into(),
            });
        }
        self.store.tx_location(hash)
    }

    /// An unspent output.
    pub fn utxo(&self, pos: UtxoPos) -> Option<Output> {
        self.state.lock().utxos.get(&pos).cloned()
    }

    /// A stored block, decoded whole (deposit blocks and small child blocks; serve full ones
    /// from [`Chain::wire_chunk`]).
    pub fn block(&self, blknum: u64) -> Result<Option<BlockRecord>, StoreError> {
        self.store.block(blknum)
    }

    /// A stored block's root, size and commitment, without its transactions.
    pub fn block_info(&self, blknum: u64) -> Result<Option<BlockInfo>, StoreError> {
        self.store.block_info(blknum)
    }

    fn stored_info(&self, blknum: u64) -> Result<BlockInfo, StoreError> {
        self.store.block_info(blknum)?.ok_or_else(|| StoreError::Corrupt {
            what: "block",
            reason: format!("{blknum} missing"),
        })
    }

    /// The stored wire bytes of a block from `offset`, one stored row at most (OP-9).
    pub fn wire_chunk(&self, blknum: u64, offset: u64) -> Result<Vec<u8>, StoreError> {
        self.store.wire_chunk(blknum, offset)
    }

    /// A transaction of a stored block with its proof, from the index (OP-9).
    pub fn inclusion(&self, blknum: u64, index: u32) -> Result<Lookup, StoreError> {
        self.store.inclusion(blknum, index)
    }

    /// Where a transaction stands, if known.
    pub fn tx_status(&self, hash: &B256) -> Result<Option<TxStatus>, StoreError> {
        if self.state.lock().mempool_hashes.contains(hash) {
            return Ok(Some(TxStatus::Pending));
        }
        // The last block's index in memory before the stored one, which may not be written
        // yet (see [`Applier`]).
        let location = match self.applier.locate(hash) {
            Some(at) => Some(at),
            None => self.store.tx_location(hash)?,
        };
        let Some((blknum, tx_index)) = location else { return Ok(None) };
        let committed = self.store.block_info(blknum)?.is_some_and(|b| b.l1_timestamp.is_some());
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
            exit_cursor: state.exit_cursor,
            exiting_outputs: state.exiting.exiting_now().count(),
        }
    }
}

/// Meta keys of the L1 follow-up: the halt (LEDGER-7) and the deposits known final.
const HALT_BLKNUM: &str = "halt_deposit_blknum";
const HALT_KIND: &str = "halt_deposit_kind";
const DEPOSITS_FINAL: &str = "deposits_final_through";

fn load_halt(store: &Store) -> Result<Option<crate::l1::Halt>, StoreError> {
    let Some(blknum) = store.meta(HALT_BLKNUM)? else { return Ok(None) };
    let credited = store
        .block(blknum)?
        .and_then(|r| r.txs.first().map(alloy::primitives::keccak256))
        .unwrap_or_default();
    Ok(Some(crate::l1::Halt::restored(blknum, store.meta(HALT_KIND)?.unwrap_or(0), credited)))
}

/// The leaves (unsigned transaction bytes) of a stored block.
#[cfg(test)]
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

/// See `Chain::write_hook`.
#[cfg(test)]
struct WriteHook(Box<dyn FnMut() -> Result<(), StoreError> + Send>);

/// See `Chain::effects_hook`.
#[cfg(test)]
#[derive(Clone)]
struct EffectsHook(std::sync::Arc<dyn Fn() -> Result<(), StoreError> + Send + Sync>);

#[cfg(test)]
impl std::fmt::Debug for EffectsHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EffectsHook")
    }
}

#[cfg(test)]
impl std::fmt::Debug for WriteHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteHook")
    }
}

/// A decoded transaction with what submission derives from it off the state lock: its hash,
/// its Merkle leaf, its inputs (checked: a payment, TX rules) and its recovered signers.
struct Recovered {
    signed: SignedTransaction,
    hash: B256,
    leaf: B256,
    inputs: Vec<UtxoPos>,
    signers: Vec<Address>,
}

type Prepared = Result<Recovered, SubmitError>;

/// Transactions a recovery job takes at least (see [`Chain::recover`]).
const RECOVERY_RUN: usize = 16;

/// Step 1 of [`Chain::submit`] for a run of transactions: everything that needs no state, in
/// input order. The Keccaks of the run go together, eight at a time where the CPU has AVX-512
/// (the signing digests by `SignedTransaction::recover_signers_many`, the leaf and hash read in
/// place by `leaves_and_hashes`): each result is what the transaction alone gives
/// (`prepared_together_is_prepared_alone`), errors in the same order — decoding, then the
/// signatures, then the TX rules, then the type.
fn prepare(raw: &[Vec<u8>], domain: &SigningDomain) -> Vec<Prepared> {
    let decoded: Vec<_> = raw.iter().map(|bytes| SignedTransaction::decode(bytes)).collect();
    let ok: Vec<&SignedTransaction> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
    let mut signers = SignedTransaction::recover_signers_many(&ok, domain).into_iter();
    // One message for both hashes (ENC-5, MERKLE-1), read inside the signed encoding.
    let messages: Vec<Vec<u8>> = raw
        .iter()
        .zip(&decoded)
        .filter_map(|(bytes, d)| Some(leaf_message_of(bytes, &d.as_ref().ok()?.transaction)))
        .collect();
    let mut hashed =
        leaves_and_hashes(&messages.iter().map(Vec::as_slice).collect::<Vec<_>>()).into_iter();
    decoded
        .into_iter()
        .map(|d| {
            let signed = d?;
            let (signers, (leaf, hash)) = signers.next().zip(hashed.next()).ok_or_else(|| {
                SubmitError::Store(StoreError::Corrupt {
                    what: "transaction preparation",
                    reason: "fewer results than transactions".into(),
                })
            })?;
            let signers = signers?;
            let (tx_type, inputs) = signed.transaction.check().map_err(LedgerError::from)?;
            if tx_type != TxType::Payment {
                return Err(SubmitError::NotAPayment(signed.transaction.txType));
            }
            Ok(Recovered { signed, hash, leaf, inputs, signers })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The mempool rules (OP-1) and block production (OP-2, OP-3) on a real store, without L1.

    use super::*;
    use alloy::primitives::U256;
    use plasma_spec::test_utils::{domain, key, pay_eth, pos, sign};

    const FEE_RECIPIENT: Address = Address::repeat_byte(0xfe);

    /// Step 1 over a run is each transaction's step 1 alone, as it was written before the run's
    /// Keccaks went together (decode, recover with its own digest, encode again for the two
    /// hashes, the TX rules, the type): valid payments of 1..=4 inputs, undecodable bytes, a
    /// signature too many, a wrong signer, a malformed signature, a duplicated input (a TX
    /// rule), a deposit, a non-payment type — interleaved, in runs long enough to be split
    /// over the cores and for the lanes' eight.
    #[test]
    fn prepared_together_is_prepared_alone() {
        fn alone(
            bytes: &[u8],
            d: &SigningDomain,
        ) -> Result<(B256, B256, Vec<UtxoPos>, Vec<Address>), String> {
            let signed =
                SignedTransaction::decode(bytes).map_err(|e| SubmitError::from(e).to_string())?;
            let signers =
                signed.recover_signers(d).map_err(|e| SubmitError::from(e).to_string())?;
            let encoded = signed.transaction.encode();
            let (hash, leaf) = (alloy::primitives::keccak256(&encoded), leaf_hash(&encoded));
            let (tx_type, inputs) = signed
                .transaction
                .check()
                .map_err(|e| SubmitError::from(LedgerError::from(e)).to_string())?;
            if tx_type != TxType::Payment {
                return Err(SubmitError::NotAPayment(signed.transaction.txType).to_string());
            }
            Ok((hash, leaf, inputs, signers))
        }
        let summary = |p: Prepared| {
            p.map(|r| (r.hash, r.leaf, r.inputs, r.signers)).map_err(|e| e.to_string())
        };
        let d = domain();
        let keys: Vec<_> = (1..=4).map(key).collect();
        let mut raw = Vec::new();
        for i in 0..300u64 {
            let n_in = 1 + (i % 4) as usize;
            let inputs: Vec<UtxoPos> =
                (0..n_in).map(|j| pos(1000 * (1 + i), j as u16, 0)).collect();
            let tx = Transaction::payment(
                &inputs,
                vec![Output::new(
                    keys[0].address(),
                    Address::ZERO,
                    alloy::primitives::U256::from(i),
                )],
                B256::repeat_byte(i as u8),
            );
            let signers: Vec<&plasma_spec::Signer> = keys[..n_in].iter().collect();
            let mut signed = sign(&d, tx.clone(), &signers);
            match i % 9 {
                1 => raw.push(vec![0xde, 0xad, i as u8]),
                2 => signed.signatures.push(keys[0].sign_tx(&d, &tx)),
                3 => signed.signatures[0] = keys[3].sign_tx(&d, &tx),
                4 => signed.signatures[0] = alloy::primitives::Bytes::from(vec![0u8; 65]),
                5 => {
                    let mut t = tx.clone();
                    t.inputs.push(t.inputs[0]);
                    let more: Vec<_> = (1..=n_in as u64 + 1).map(key).collect();
                    signed = sign(&d, t, &more.iter().collect::<Vec<_>>());
                }
                6 => {
                    let dep = Transaction::deposit(
                        keys[1].address(),
                        Address::ZERO,
                        alloy::primitives::U256::from(i),
                    );
                    signed = SignedTransaction::new(dep, vec![]);
                }
                7 => {
                    let mut t = tx.clone();
                    t.txType = 3;
                    signed = sign(&d, t, &signers);
                }
                _ => {}
            }
            raw.push(signed.encode());
        }
        let want: Vec<_> = raw.iter().map(|b| alone(b, &d)).collect();
        assert!(want.iter().filter(|w| w.is_ok()).count() > 50);
        assert!(want.iter().filter(|w| w.is_err()).count() > 100);
        // On the recovery workers, and on this thread (a group within one run).
        let dir = tempfile::tempdir().unwrap();
        let chain = chain_with(&dir, &[], 1000);
        for run in [0..raw.len(), 0..5, 7..70, 1..2, 64..200, 100..116, 100..117] {
            let got: Vec<_> = chain.recover(&raw[run.clone()]).into_iter().map(summary).collect();
            assert_eq!(got, want[run.clone()]);
            let got: Vec<_> = prepare(&raw[run.clone()], &d).into_iter().map(summary).collect();
            assert_eq!(got, want[run]);
        }
    }

    /// A chain on a fresh store with `deposits` credited as deposit blocks 1, 2, ...
    fn chain_with(
        dir: &tempfile::TempDir,
        deposits: &[(&plasma_spec::Signer, u64)],
        max_mempool: usize,
    ) -> Chain {
        let store = Store::open(&dir.path().join("operator.redb")).unwrap();
        let chain = Chain::open(store, domain(), FEE_RECIPIENT, max_mempool).unwrap();
        for (i, (owner, amount)) in deposits.iter().enumerate() {
            let tx = Transaction::deposit(owner.address(), Address::ZERO, U256::from(*amount));
            assert!(chain.credit_deposit(i as u64 + 1, &tx.encode(), 1_700_000_000).unwrap());
        }
        chain
    }

    fn one(chain: &Chain, tx: &SignedTransaction) -> Result<B256, SubmitError> {
        chain.submit(&[tx.encode()]).pop().unwrap()
    }

    #[test]
    fn accepts_a_valid_payment_durably() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        let tx = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let hash = one(&chain, &tx).unwrap();
        assert_eq!(hash, tx.transaction.hash());
        assert_eq!(chain.tx_status(&hash).unwrap(), Some(TxStatus::Pending));
        drop(chain);

        // Acknowledged means stored: a reopened chain still has it pending, input still taken.
        let store = Store::open(&dir.path().join("operator.redb")).unwrap();
        let chain = Chain::open(store, domain(), FEE_RECIPIENT, 10).unwrap();
        assert_eq!(chain.mempool_len(), 1);
        let again = pay_eth(&domain(), &[pos(1, 0, 0)], &[(alice.address(), 100)], &[&alice]);
        assert!(matches!(one(&chain, &again), Err(SubmitError::MempoolConflict { .. })));
    }

    #[test]
    fn refuses_a_second_spend_of_an_input_in_the_mempool() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        let first = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let second = pay_eth(&domain(), &[pos(1, 0, 0)], &[(alice.address(), 99)], &[&alice]);
        let first_hash = one(&chain, &first).unwrap();
        match one(&chain, &second) {
            Err(e @ SubmitError::MempoolConflict { input, spent_by }) => {
                assert_eq!(input, pos(1, 0, 0));
                assert_eq!(spent_by, first_hash);
                assert_eq!(e.code(), "MempoolConflict");
                assert!(e.is_client_error());
            }
            other => panic!("expected a mempool conflict, got {other:?}"),
        }
        assert_eq!(chain.mempool_len(), 1, "the conflicting spend is refused, not queued");
    }

    #[test]
    fn refuses_conflicting_spends_within_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        let first = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let second = pay_eth(&domain(), &[pos(1, 0, 0)], &[(alice.address(), 100)], &[&alice]);
        let results = chain.submit(&[first.encode(), second.encode()]);
        assert!(results[0].is_ok());
        assert!(matches!(
            results[1],
            Err(SubmitError::MempoolConflict { spent_by, .. }) if spent_by == first.transaction.hash()
        ));
    }

    #[test]
    fn refuses_the_same_transaction_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        let tx = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        one(&chain, &tx).unwrap();
        assert!(
            matches!(one(&chain, &tx), Err(SubmitError::AlreadyKnown(h)) if h == tx.transaction.hash())
        );
        chain.produce_block(10).unwrap().unwrap();
        // Once included it is still known, by its hash in the index.
        assert!(matches!(one(&chain, &tx), Err(SubmitError::AlreadyKnown(_))));
    }

    #[test]
    fn refuses_inputs_that_are_missing_or_already_spent_in_a_block() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        let missing = pay_eth(&domain(), &[pos(7, 0, 0)], &[(bob.address(), 1)], &[&alice]);
        assert_eq!(one(&chain, &missing).unwrap_err().code(), "InputNotFound");

        let spend = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        one(&chain, &spend).unwrap();
        chain.produce_block(10).unwrap().unwrap();
        let respend = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 50)], &[&alice]);
        assert_eq!(one(&chain, &respend).unwrap_err().code(), "InputNotFound");
    }

    /// Step 2b: a transaction of an older block (no longer the last one, whose index memory
    /// keeps) and one resubmitted after a restart are still `AlreadyKnown`, found in the stored
    /// index after step 2 refused them; a new spend of the same input stays `InputNotFound`,
    /// and a refusal that is not about an included transaction keeps its own code.
    #[test]
    fn an_included_transaction_is_known_from_the_stored_index_only_when_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob, carol) = (key(1), key(2), key(3));
        let chain = chain_with(&dir, &[(&alice, 100), (&carol, 50)], 10);
        let first = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let hash = one(&chain, &first).unwrap();
        chain.produce_block(10).unwrap().unwrap();
        // A later block: memory's index of the last block no longer holds `first`.
        let later = pay_eth(&domain(), &[pos(2, 0, 0)], &[(bob.address(), 50)], &[&carol]);
        one(&chain, &later).unwrap();
        chain.produce_block(10).unwrap().unwrap();
        chain.settle_effects().unwrap();
        assert!(chain.applier.locate(&hash).is_none());
        assert!(matches!(one(&chain, &first), Err(SubmitError::AlreadyKnown(h)) if h == hash));
        let respend = pay_eth(&domain(), &[pos(1, 0, 0)], &[(carol.address(), 100)], &[&alice]);
        assert_eq!(one(&chain, &respend).unwrap_err().code(), "InputNotFound");
        // Not known and not spendable: its own refusal.
        let stranger = pay_eth(&domain(), &[pos(9, 0, 0)], &[(carol.address(), 1)], &[&alice]);
        assert_eq!(one(&chain, &stranger).unwrap_err().code(), "InputNotFound");
        drop(chain);

        // After a restart nothing of the blocks is in memory: the stored index answers.
        let store = Store::open(&dir.path().join("operator.redb")).unwrap();
        let chain = Chain::open(store, domain(), FEE_RECIPIENT, 10).unwrap();
        assert!(matches!(one(&chain, &first), Err(SubmitError::AlreadyKnown(h)) if h == hash));
        assert!(matches!(
            chain.submit(&[first.encode(), respend.encode()]).as_slice(),
            [Err(SubmitError::AlreadyKnown(h)), Err(SubmitError::Ledger(LedgerError::InputNotFound { .. }))]
                if *h == hash
        ));
    }

    #[test]
    fn refuses_a_signature_by_someone_other_than_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        let stolen = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&bob]);
        assert!(matches!(
            one(&chain, &stolen),
            Err(SubmitError::Ledger(LedgerError::WrongSigner { owner, signer, .. }))
                if owner == alice.address() && signer == bob.address()
        ));
        // Signed for another chain's domain: recovers someone else, so also refused.
        let other = SigningDomain::new(1, Address::repeat_byte(1));
        let foreign = pay_eth(&other, &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        assert_eq!(one(&chain, &foreign).unwrap_err().code(), "WrongSigner");
        // Garbage signature bytes.
        let mut garbled = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 1)], &[&alice]);
        garbled.signatures[0] = Bytes::from(vec![0u8; 65]);
        assert!(one(&chain, &garbled).is_err());
        assert_eq!(chain.mempool_len(), 0);
    }

    #[test]
    fn refuses_value_creation_per_token() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        let inflate = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 101)], &[&alice]);
        assert_eq!(one(&chain, &inflate).unwrap_err().code(), "ValueCreated");
        // Paying out in a token the inputs do not hold creates value too.
        let token = Address::repeat_byte(0x70);
        let other_token = Transaction::payment(
            &[pos(1, 0, 0)],
            vec![Output::new(bob.address(), token, U256::from(1))],
            B256::ZERO,
        );
        let other_token = sign(&domain(), other_token, &[&alice]);
        assert_eq!(one(&chain, &other_token).unwrap_err().code(), "ValueCreated");
    }

    #[test]
    fn refuses_undecodable_bytes_and_non_payments() {
        let dir = tempfile::tempdir().unwrap();
        let alice = key(1);
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        for bytes in [Vec::new(), vec![0xff; 3], vec![0u8; 64]] {
            assert!(matches!(chain.submit(&[bytes]).pop().unwrap(), Err(SubmitError::Decode(_))));
        }
        let mut trailing =
            pay_eth(&domain(), &[pos(1, 0, 0)], &[(alice.address(), 1)], &[&alice]).encode();
        trailing.push(0);
        assert!(matches!(chain.submit(&[trailing]).pop().unwrap(), Err(SubmitError::Decode(_))));
        let deposit = SignedTransaction::new(
            Transaction::deposit(alice.address(), Address::ZERO, U256::from(5)),
            Vec::new(),
        );
        assert!(one(&chain, &deposit).is_err());
        assert_eq!(chain.mempool_len(), 0);
    }

    #[test]
    fn refuses_when_the_mempool_is_full() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100), (&alice, 100)], 1);
        let a = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let b = pay_eth(&domain(), &[pos(2, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        one(&chain, &a).unwrap();
        let full = one(&chain, &b).unwrap_err();
        assert!(matches!(full, SubmitError::MempoolFull(1)));
        assert!(!full.is_client_error());
    }

    #[test]
    fn batch_results_stay_in_order_across_parallel_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let n = 150;
        let deposits: Vec<_> = (0..n).map(|_| (&alice, 10)).collect();
        let chain = chain_with(&dir, &deposits, 1_000);
        // Every third transaction is signed by the wrong key; large enough to fan out.
        let txs: Vec<SignedTransaction> = (0..n)
            .map(|i| {
                let signer = if i % 3 == 0 { &bob } else { &alice };
                pay_eth(&domain(), &[pos(i as u64 + 1, 0, 0)], &[(bob.address(), 10)], &[signer])
            })
            .collect();
        let raw: Vec<Vec<u8>> = txs.iter().map(SignedTransaction::encode).collect();
        let results = chain.submit(&raw);
        assert_eq!(results.len(), n);
        for (i, (result, tx)) in results.iter().zip(&txs).enumerate() {
            if i % 3 == 0 {
                assert_eq!(result.as_ref().unwrap_err().code(), "WrongSigner", "tx {i}");
            } else {
                assert_eq!(result.as_ref().unwrap(), &tx.transaction.hash(), "tx {i}");
            }
        }
        assert_eq!(chain.mempool_len(), n - n.div_ceil(3));
    }

    #[test]
    fn blocks_take_the_mempool_in_order_with_the_fee_transaction_last() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100), (&alice, 50)], 10);
        let a = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 90)], &[&alice]);
        let b = pay_eth(&domain(), &[pos(2, 0, 0)], &[(bob.address(), 45)], &[&alice]);
        one(&chain, &a).unwrap();
        one(&chain, &b).unwrap();

        let block = chain.produce_block(1).unwrap().unwrap();
        assert_eq!(block.blknum, CHILD_BLOCK_INTERVAL);
        assert_eq!(block.txs.len(), 2, "one payment (max_txs = 1) and the fee tx");
        let fee = SignedTransaction::decode(&block.txs[1]).unwrap().transaction;
        assert_eq!(fee.txType, TxType::Fee as u8);
        assert_eq!(fee.outputs[0].owner, FEE_RECIPIENT);
        assert_eq!(fee.outputs[0].amount, U256::from(10));
        assert_eq!(
            chain.tx_status(&a.transaction.hash()).unwrap(),
            Some(TxStatus::Included {
                blknum: CHILD_BLOCK_INTERVAL,
                tx_index: 0,
                committed: false
            })
        );
        assert_eq!(chain.tx_status(&b.transaction.hash()).unwrap(), Some(TxStatus::Pending));
        // The stored root is the tree over the unsigned transactions.
        let leaves = block_leaves(&block);
        assert_eq!(plasma_spec::BlockTree::from_txs(&leaves).unwrap().root(), block.root);
        // Applied to the UTXO set: bob owns the new output, the fee recipient its fee.
        let new = UtxoPos::new(CHILD_BLOCK_INTERVAL, 0, 0).unwrap();
        assert_eq!(chain.utxo(new).unwrap().owner, bob.address());
        assert!(chain.utxos_of(bob.address()).contains_key(&new));
        assert_eq!(chain.utxos_of(FEE_RECIPIENT).len(), 1);
        assert!(chain.utxo(pos(1, 0, 0)).is_none());
        assert_eq!(chain.next_uncommitted(), Some(CHILD_BLOCK_INTERVAL));

        let second = chain.produce_block(10).unwrap().unwrap();
        assert_eq!(second.blknum, 2 * CHILD_BLOCK_INTERVAL);
        assert!(chain.produce_block(10).unwrap().is_none(), "no empty blocks");
    }

    #[test]
    fn a_block_leaves_the_mempool_holding_what_is_pending_not_its_high_water_mark() {
        // OP-9: the queue and its indexes are sized to what is pending after a block; a full
        // block's worth of capacity is given back, and the block shares the signed bytes.
        let dir = tempfile::tempdir().unwrap();
        let alice = key(1);
        let n = 600;
        let deposits: Vec<_> = (0..n).map(|_| (&alice, 10)).collect();
        let chain = chain_with(&dir, &deposits, 1_000);
        let raw: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let to = [(alice.address(), 10)];
                pay_eth(&domain(), &[pos(i as u64 + 1, 0, 0)], &to, &[&alice]).encode()
            })
            .collect();
        assert!(chain.submit(&raw).iter().all(Result::is_ok));
        let block = chain.produce_block(n - 10).unwrap().unwrap();
        assert_eq!(block.txs.len(), n - 10);
        {
            let state = chain.state.lock();
            assert_eq!(state.mempool.len(), 10);
            assert!(state.mempool.capacity() < 64, "queue: {}", state.mempool.capacity());
            assert!(state.mempool_hashes.capacity() < 64, "{}", state.mempool_hashes.capacity());
            assert!(state.mempool_spent.capacity() < 64, "{}", state.mempool_spent.capacity());
            assert_eq!(state.mempool_spent.len(), 10);
            assert!(state.mempool_hashes.contains(&state.mempool[0].hash));
        }
        let last = chain.produce_block(n).unwrap().unwrap();
        assert_eq!(last.txs.len(), 10);
        assert_eq!(chain.mempool_len(), 0);
    }

    /// A small deterministic generator for the randomized tests; the seed is printed, and
    /// `PLASMA_TEST_SEED` replays one.
    struct Rng(u64);

    impl Rng {
        fn seeded() -> Self {
            let seed = std::env::var("PLASMA_TEST_SEED").ok().and_then(|s| s.parse().ok());
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
            println!("PLASMA_TEST_SEED={seed}");
            Self(seed)
        }

        fn below(&mut self, n: u64) -> u64 {
            // splitmix64
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }
    }

    #[test]
    fn concurrent_conflicting_spends_accept_exactly_one_per_input() {
        // OP-1 under concurrency: many threads submit groups of conflicting spends of the same
        // inputs at once, in random groupings and orders (groups of 64 and more fan out the
        // recovery). Exactly one spend of each input is accepted, every other one is refused
        // as a conflict, and what was acknowledged is exactly what is stored.
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let inputs = 24u64;
        let deposits: Vec<_> = (0..inputs).map(|_| (&alice, 1_000)).collect();
        let chain = chain_with(&dir, &deposits, 10_000);
        let mut rng = Rng::seeded();
        let threads = 6;
        let spends_per_input = 5;
        // Each spend of an input pays a different amount: distinct transactions, same input.
        let mut all: Vec<(u64, SignedTransaction)> = (1..=inputs)
            .flat_map(|d| {
                let alice = &alice;
                let bob = &bob;
                (0..spends_per_input).map(move |k| {
                    let to = [(bob.address(), 1_000 - k)];
                    (d, pay_eth(&domain(), &[pos(d, 0, 0)], &to, &[alice]))
                })
            })
            .collect();
        for i in (1..all.len()).rev() {
            all.swap(i, rng.below(i as u64 + 1) as usize);
        }
        // Deal the spends to the threads, each cutting its share into random groups.
        let mut shares: Vec<Vec<Vec<(u64, SignedTransaction)>>> = vec![Vec::new(); threads];
        let mut current: Vec<Vec<(u64, SignedTransaction)>> = vec![Vec::new(); threads];
        for spend in all {
            let t = rng.below(threads as u64) as usize;
            current[t].push(spend);
            if rng.below(8) == 0 || current[t].len() >= 70 {
                shares[t].push(std::mem::take(&mut current[t]));
            }
        }
        for (t, rest) in current.into_iter().enumerate() {
            if !rest.is_empty() {
                shares[t].push(rest);
            }
        }
        let start = std::sync::Barrier::new(threads);
        let outcomes: Vec<(u64, B256, Result<B256, SubmitError>)> = std::thread::scope(|s| {
            let handles: Vec<_> = shares
                .into_iter()
                .map(|groups| {
                    let (chain, start) = (&chain, &start);
                    s.spawn(move || {
                        start.wait();
                        let mut out = Vec::new();
                        for group in groups {
                            let raw: Vec<Vec<u8>> = group.iter().map(|(_, t)| t.encode()).collect();
                            let results = chain.submit(&raw);
                            assert_eq!(results.len(), group.len());
                            for ((d, tx), r) in group.into_iter().zip(results) {
                                out.push((d, tx.transaction.hash(), r));
                            }
                        }
                        out
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes.len() as u64, inputs * spends_per_input);
        let mut winner: HashMap<u64, B256> = HashMap::new();
        for (d, hash, r) in &outcomes {
            match r {
                Ok(h) => {
                    assert_eq!(h, hash);
                    assert!(winner.insert(*d, *h).is_none(), "input {d} accepted twice");
                }
                Err(SubmitError::MempoolConflict { input, .. }) => {
                    assert_eq!(*input, pos(*d, 0, 0))
                }
                Err(e) => panic!("unexpected refusal {e:?}"),
            }
        }
        assert_eq!(winner.len() as u64, inputs, "every input accepted once");
        // Every refusal names the accepted spend of its input.
        for (d, _, r) in &outcomes {
            if let Err(SubmitError::MempoolConflict { spent_by, .. }) = r {
                assert_eq!(Some(spent_by), winner.get(d));
            }
        }
        assert_eq!(chain.mempool_len() as u64, inputs);
        for h in winner.values() {
            assert_eq!(chain.tx_status(h).unwrap(), Some(TxStatus::Pending));
        }
        {
            let state = chain.state.lock();
            assert!(state.reserved_hashes.is_empty());
            assert!(
                state.mempool.iter().zip(state.mempool.iter().skip(1)).all(|(a, b)| a.seq < b.seq)
            );
        }
        // Acknowledged is stored: a reopened chain has exactly the winners pending.
        drop(chain);
        let store = Store::open(&dir.path().join("operator.redb")).unwrap();
        let chain = Chain::open(store, domain(), FEE_RECIPIENT, 10_000).unwrap();
        assert_eq!(chain.mempool_len() as u64, inputs);
        for h in winner.values() {
            assert_eq!(chain.tx_status(h).unwrap(), Some(TxStatus::Pending));
        }
        let block = chain.produce_block(1_000).unwrap().unwrap();
        assert_eq!(block.txs.len() as u64, inputs + 1, "every winner and the fee transaction");
    }

    /// The same transaction twice in one group: the first accepted, the copy known once the
    /// group is written (not "in flight": the answer comes after the write).
    #[test]
    fn a_copy_in_the_same_group_is_already_known() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        let a = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let hash = a.transaction.hash();
        let results = chain.submit(&[a.encode(), a.encode()]);
        assert_eq!(results[0].as_ref().unwrap(), &hash);
        assert!(
            matches!(&results[1], Err(SubmitError::AlreadyKnown(h)) if *h == hash),
            "{results:?}"
        );
        assert_eq!(chain.mempool_len(), 1);
    }

    /// A write the fence refused (another operator leads, OP-HA) is `NotLeader`, a 5xx the
    /// wallet moves on from, not a "corrupt" storage fault; nothing is acknowledged.
    #[test]
    fn a_fenced_write_is_not_leader_and_acknowledges_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        let a = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        *chain.write_hook.lock() = Some(WriteHook(Box::new(|| {
            Err(StoreError::Fenced { ours: Some(1), current: Some(2) })
        })));
        let results = chain.submit(&[a.encode()]);
        let e = results[0].as_ref().unwrap_err();
        assert_eq!(e.code(), "NotLeader");
        assert!(!e.is_client_error());
        assert!(e.to_string().contains("leader epoch is Some(2)"), "{e}");
        assert_eq!(chain.mempool_len(), 0);
        assert_eq!(chain.tx_status(&a.transaction.hash()).unwrap(), None);
    }

    #[test]
    fn a_failed_write_acknowledges_nothing_and_frees_the_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100), (&alice, 100)], 10);
        let a = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let b = pay_eth(&domain(), &[pos(2, 0, 0)], &[(bob.address(), 90)], &[&alice]);
        let forged = pay_eth(&domain(), &[pos(2, 0, 0)], &[(bob.address(), 80)], &[&bob]);
        *chain.write_hook.lock() = Some(WriteHook(Box::new(|| {
            Err(StoreError::Corrupt { what: "mempool write", reason: "disk full".into() })
        })));
        let results = chain.submit(&[a.encode(), forged.encode(), b.encode()]);
        for i in [0, 2] {
            let e = results[i].as_ref().unwrap_err();
            assert_eq!(e.code(), "StorageFailure", "tx {i}");
            assert!(!e.is_client_error());
        }
        assert_eq!(results[1].as_ref().unwrap_err().code(), "WrongSigner");
        assert_eq!(chain.mempool_len(), 0);
        for tx in [&a, &b] {
            assert_eq!(chain.tx_status(&tx.transaction.hash()).unwrap(), None);
        }
        assert!(chain.produce_block(10).unwrap().is_none(), "nothing to include");
        {
            let state = chain.state.lock();
            assert!(state.mempool_spent.is_empty() && state.reserved_hashes.is_empty());
        }
        // Nothing stored either.
        drop(chain);
        let store = Store::open(&dir.path().join("operator.redb")).unwrap();
        let chain = Chain::open(store, domain(), FEE_RECIPIENT, 10).unwrap();
        assert_eq!(chain.mempool_len(), 0);
        // The inputs are free: the same transactions are accepted once the store works.
        let results = chain.submit(&[a.encode(), b.encode()]);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(chain.mempool_len(), 2);
    }

    /// A store that panics in the middle of a group's write (a bug, an allocation failure)
    /// fails the group like any storage fault: nothing acknowledged, its inputs free again. An
    /// unwind through `submit` would have left them reserved until a restart.
    #[test]
    fn a_panicking_write_fails_its_group_and_frees_the_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        let a = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        *chain.write_hook.lock() = Some(WriteHook(Box::new(|| panic!("injected store panic"))));
        let results = chain.submit(&[a.encode()]);
        let e = results[0].as_ref().unwrap_err();
        assert_eq!(e.code(), "StorageFailure", "{e}");
        assert_eq!(chain.mempool_len(), 0);
        {
            let state = chain.state.lock();
            assert!(state.mempool_spent.is_empty() && state.reserved_hashes.is_empty());
        }
        *chain.write_hook.lock() = None;
        assert_eq!(one(&chain, &a).unwrap(), a.transaction.hash(), "the input is free");
    }

    /// A piggyback whose transaction cannot be looked up (a store read failing) fails the exit
    /// write: the cursor stays and the events are applied again once the store answers. Taken
    /// as "not included" (as before, review H), the piggyback waited for an inclusion the
    /// operator never reports again and the output stayed spendable for good.
    #[test]
    fn a_failed_look_up_of_a_piggybacked_transaction_fails_the_exit_write() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100)], 10);
        let paid = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        one(&chain, &paid).unwrap();
        let block = chain.produce_block(10).unwrap().unwrap();
        let out = pos(block.blknum, 0, 0);
        let exit_id =
            U256::from_be_bytes(alloy::primitives::keccak256(paid.transaction.encode()).0);
        let events = [
            (ExitEvent::InFlightExitStarted { exit_id, tx: paid.transaction }, 100),
            (ExitEvent::OutputPiggybacked { exit_id, index: 0 }, 110),
        ];
        chain.locate_fails.store(true, std::sync::atomic::Ordering::SeqCst);
        let cursor = chain.exit_cursor();
        assert!(chain.apply_exit_events(&events, cursor + 5).is_err(), "the look-up failed");
        assert_eq!(chain.exit_cursor(), cursor, "nothing applied: read again next time");
        assert_eq!(chain.exiting_since(pos(1, 0, 0)), None);
        chain.locate_fails.store(false, std::sync::atomic::Ordering::SeqCst);
        chain.apply_exit_events(&events, cursor + 5).unwrap();
        assert_eq!(chain.exiting_since(out), Some(110), "the piggybacked output is exiting");
        let spend = pay_eth(&domain(), &[out], &[(alice.address(), 100)], &[&bob]);
        assert!(matches!(
            one(&chain, &spend),
            Err(SubmitError::Ledger(LedgerError::OutputExiting { .. }))
        ));
    }

    #[test]
    fn a_group_in_flight_is_invisible_until_durable_but_holds_its_inputs() {
        // Step 3 of `submit` runs without the state lock: while a group's write is held, its
        // transactions are not pending, not offered to block production, and their inputs and
        // hashes are taken.
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = chain_with(&dir, &[(&alice, 100), (&alice, 50)], 10);
        let a = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let again = pay_eth(&domain(), &[pos(1, 0, 0)], &[(alice.address(), 99)], &[&alice]);
        let other = pay_eth(&domain(), &[pos(2, 0, 0)], &[(bob.address(), 50)], &[&alice]);
        let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = std::sync::Mutex::new(released);
        *chain.write_hook.lock() = Some(WriteHook(Box::new(move || {
            entered_tx.send(()).unwrap();
            released.lock().unwrap().recv().unwrap();
            Ok(())
        })));
        std::thread::scope(|s| {
            let writer = s.spawn(|| chain.submit(&[a.encode()]));
            entered.recv().unwrap();
            // The write is in flight, the state lock free.
            let hash = a.transaction.hash();
            assert_eq!(chain.tx_status(&hash).unwrap(), None, "not acknowledged yet");
            assert_eq!(chain.mempool_len(), 0);
            assert!(chain.produce_block(10).unwrap().is_none(), "not offered to a block");
            match one(&chain, &again) {
                Err(SubmitError::MempoolConflict { spent_by, .. }) => assert_eq!(spent_by, hash),
                other => panic!("expected a conflict, got {other:?}"),
            }
            // Not "already known" (a wallet takes that as accepted) while the write may still
            // fail: ask again.
            assert!(matches!(one(&chain, &a), Err(SubmitError::InFlight(h)) if h == hash));
            release.send(()).unwrap();
            assert_eq!(writer.join().unwrap()[0].as_ref().unwrap(), &hash);
            assert_eq!(chain.tx_status(&hash).unwrap(), Some(TxStatus::Pending));
            // The next group goes through the hook too.
            let next = s.spawn(|| one(&chain, &other));
            entered.recv().unwrap();
            release.send(()).unwrap();
            next.join().unwrap().unwrap();
        });
        let block = chain.produce_block(10).unwrap().unwrap();
        assert_eq!(block.txs.len(), 2, "a and the other payment; no fee (none paid)");
    }

    /// A payment refused because its input started exiting while its group was being written
    /// is answered "refused" only once its stored row is gone: a row left behind would come
    /// back as pending after a restart (audit 21c's observation). When that removal fails, the
    /// answer is a storage failure, never a refusal that may not hold.
    #[test]
    fn a_late_refusal_is_answered_only_once_its_row_is_removed() {
        for removal_fails in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (alice, bob) = (key(1), key(2));
            let chain = chain_with(&dir, &[(&alice, 100)], 10);
            let a = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
            let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
            let (release, released) = std::sync::mpsc::channel::<()>();
            let released = std::sync::Mutex::new(released);
            let calls = std::sync::atomic::AtomicUsize::new(0);
            *chain.write_hook.lock() = Some(WriteHook(Box::new(move || {
                if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    entered_tx.send(()).unwrap();
                    released.lock().unwrap().recv().unwrap();
                    Ok(())
                } else if removal_fails {
                    Err(StoreError::Corrupt { what: "test", reason: "injected".into() })
                } else {
                    Ok(())
                }
            })));
            let answer = std::thread::scope(|s| {
                let writer = s.spawn(|| one(&chain, &a));
                entered.recv().unwrap();
                // The group's write is in flight: its input starts exiting.
                let exit = ExitEvent::StandardExitStarted { pos: pos(1, 0, 0) };
                chain.apply_exit_events(&[(exit, 1_700_000_100)], 5).unwrap();
                release.send(()).unwrap();
                writer.join().unwrap()
            });
            drop(chain);
            // What a restart (or a new leader) finds.
            let store = Store::open(&dir.path().join("operator.redb")).unwrap();
            let reopened = Chain::open(store, domain(), FEE_RECIPIENT, 10).unwrap();
            let stored = reopened.mempool_len();
            if removal_fails {
                assert!(
                    matches!(&answer, Err(SubmitError::Store(_))),
                    "a refusal whose row stayed must not be answered as a refusal: {answer:?}"
                );
                assert_eq!(stored, 1, "the row the injected failure kept");
            } else {
                assert!(
                    matches!(&answer, Err(SubmitError::Ledger(LedgerError::OutputExiting { .. }))),
                    "{answer:?}"
                );
                assert_eq!(stored, 0, "refused, and nothing of it comes back after a restart");
            }
        }
    }

    #[test]
    fn groups_published_out_of_order_join_the_queue_in_acceptance_order() {
        let (alice, bob) = (key(1), key(2));
        let tx = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 1)], &[&alice]);
        let entry = |seq: u64| Pending {
            seq,
            hash: B256::with_last_byte(seq as u8),
            leaf: B256::ZERO,
            tx: tx.transaction.clone(),
            bytes: Bytes::new(),
            signers: Vec::new(),
        };
        let mut state = State::default();
        // Groups 0-1, 2-4 and 5 were reserved in that order; their writes end 2-4, 5, 0-1.
        for group in [vec![2, 3, 4], vec![5], vec![0, 1]] {
            for seq in &group {
                state.reserved_hashes.insert(B256::with_last_byte(*seq as u8));
            }
            state.publish(group.into_iter().map(entry).collect());
        }
        let seqs: Vec<u64> = state.mempool.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3, 4, 5]);
        assert!(state.reserved_hashes.is_empty());
        assert_eq!(state.mempool_hashes.len(), 6);
    }

    /// Random valid payments over `spendable` (position, owner's key number, amount): one or
    /// two inputs of any owners, one or two outputs to any of six owners, a fee of 0 to 3.
    /// Spent positions leave `spendable`; the outputs do not join it (the mempool only spends
    /// the UTXO set).
    fn random_payments(
        rng: &mut Rng,
        spendable: &mut Vec<(UtxoPos, u64, u64)>,
        count: usize,
    ) -> Vec<SignedTransaction> {
        let mut txs = Vec::new();
        while txs.len() < count && !spendable.is_empty() {
            let n_in = (1 + rng.below(2) as usize).min(spendable.len());
            let inputs: Vec<(UtxoPos, u64, u64)> = (0..n_in)
                .map(|_| spendable.swap_remove(rng.below(spendable.len() as u64) as usize))
                .collect();
            let total: u64 = inputs.iter().map(|i| i.2).sum();
            let rest = total - rng.below(4).min(total - 1); // no output of 0 (TX rules)
            let mut outputs = vec![(key(1 + rng.below(6)).address(), rest)];
            if rest >= 2 && rng.below(2) == 1 {
                outputs[0].1 = 1 + rng.below(rest - 1);
                outputs.push((key(1 + rng.below(6)).address(), rest - outputs[0].1));
            }
            let keys: Vec<plasma_spec::Signer> = inputs.iter().map(|i| key(i.1)).collect();
            let positions: Vec<UtxoPos> = inputs.iter().map(|i| i.0).collect();
            txs.push(pay_eth(&domain(), &positions, &outputs, &keys.iter().collect::<Vec<_>>()));
        }
        txs
    }

    /// What a store holds, in a form two stores can be compared by.
    fn stored_state(store: &Store) -> (Vec<(UtxoPos, Output)>, Vec<u64>, Option<u64>) {
        let loaded = store.load().unwrap();
        let mut utxos = loaded.utxos;
        utxos.sort_by_key(|(p, _)| *p);
        let seqs = loaded.mempool.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(store.meta(EFFECTS_PENDING).unwrap().unwrap_or(0), 0, "effects left pending");
        (utxos, seqs, loaded.next_child_block)
    }

    #[test]
    fn a_block_whose_effects_were_cut_off_is_written_on_open_to_the_same_state() {
        // Differential: the same deposits and payments on two stores; on one the block's
        // effects are written behind it as usual, on the other they never are (the applier
        // fails, then the chain is dropped: a crash between the two transactions) and the
        // next open writes them from the stored block. The two stores must then agree on
        // every UTXO, the mempool, the index, and the next block.
        // Random runs; a failure prints its `PLASMA_TEST_SEED` to replay it.
        let mut rng = Rng::seeded();
        for seed in 1..=6u64 {
            let deposits: Vec<(plasma_spec::Signer, u64)> =
                (0..30).map(|i| (key(1 + i % 6), 10 + rng.below(1_000))).collect();
            let mut spendable: Vec<(UtxoPos, u64, u64)> = deposits
                .iter()
                .enumerate()
                .map(|(i, (_, amount))| (pos(i as u64 + 1, 0, 0), 1 + (i as u64) % 6, *amount))
                .collect();
            let txs = random_payments(&mut rng, &mut spendable, 20);
            let in_block = 1 + rng.below(txs.len() as u64) as usize; // the rest stays pending
            let deposit_refs: Vec<(&plasma_spec::Signer, u64)> =
                deposits.iter().map(|(k, a)| (k, *a)).collect();
            let run = |crash: bool| {
                let dir = tempfile::tempdir().unwrap();
                let chain = chain_with(&dir, &deposit_refs, 1_000);
                for tx in &txs {
                    one(&chain, tx).unwrap();
                }
                if crash {
                    *chain.effects_hook.lock() = Some(EffectsHook(std::sync::Arc::new(|| {
                        Err(StoreError::Corrupt { what: "test", reason: "a crash".into() })
                    })));
                }
                let block = chain.produce_block(in_block).unwrap().unwrap();
                if crash {
                    // The block is stored, its effects are not.
                    assert!(chain.store.tx_location(&txs[0].transaction.hash()).unwrap().is_none());
                    assert_eq!(chain.store.meta(EFFECTS_PENDING).unwrap(), Some(block.blknum));
                } else {
                    chain.settle_effects().unwrap();
                }
                drop(chain);
                // The next start (which writes cut-off effects first).
                let store = Store::open(&dir.path().join("operator.redb")).unwrap();
                let chain = Chain::open(store, domain(), FEE_RECIPIENT, 1_000).unwrap();
                let state = stored_state(&chain.store);
                let located: Vec<Option<(u64, u32)>> = txs
                    .iter()
                    .map(|t| chain.store.tx_location(&t.transaction.hash()).unwrap())
                    .collect();
                let fee_at = chain.store.tx_location(&block_fee_hash(&block)).unwrap();
                // The next block, on top: the same root from both.
                let next = chain.produce_block(1_000).unwrap().map(|b| b.root);
                (dir, state, located, fee_at, block.root, next)
            };
            let (_a, state_a, located_a, fee_a, root_a, next_a) = run(false);
            let (_b, state_b, located_b, fee_b, root_b, next_b) = run(true);
            assert_eq!(root_a, root_b, "seed {seed}");
            assert_eq!(state_a, state_b, "seed {seed}: stored state");
            assert_eq!(located_a, located_b, "seed {seed}: index");
            assert_eq!(located_a.iter().filter(|l| l.is_some()).count(), in_block, "seed {seed}");
            assert_eq!((fee_a.is_some(), fee_a), (true, fee_b), "seed {seed}: the fee tx");
            assert_eq!(state_a.1.len(), txs.len() - in_block, "seed {seed}: still pending");
            assert_eq!(next_a, next_b, "seed {seed}: the next block");
        }
    }

    /// The hash of `block`'s last transaction (its fee transaction).
    fn block_fee_hash(block: &BlockRecord) -> B256 {
        SignedTransaction::decode(block.txs.last().unwrap()).unwrap().transaction.hash()
    }

    #[test]
    fn a_block_s_transactions_are_known_while_its_effects_are_written_and_writes_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = std::sync::Arc::new(chain_with(&dir, &[(&alice, 100)], 10));
        let tx = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let hash = one(&chain, &tx).unwrap();
        // The applier is held until `release` is sent.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = std::sync::Arc::new(Mutex::new(held));
        *chain.effects_hook.lock() = Some(EffectsHook(std::sync::Arc::new(move || {
            let _ = held.lock().recv();
            Ok(())
        })));
        let block = chain.produce_block(10).unwrap().unwrap();
        // The window is real: the stored index does not have it yet ...
        assert_eq!(chain.store.tx_location(&hash).unwrap(), None);
        // ... and still the transaction is known: in the block, not "unknown", and a copy is
        // "already known", not a spend of a spent input.
        let included = TxStatus::Included { blknum: block.blknum, tx_index: 0, committed: false };
        assert_eq!(chain.tx_status(&hash).unwrap(), Some(included.clone()));
        assert!(matches!(one(&chain, &tx), Err(SubmitError::AlreadyKnown(h)) if h == hash));
        // A chain write waits for the effects: it holds `writer` meanwhile and, once done,
        // finds them stored.
        let writer = {
            let chain = chain.clone();
            std::thread::spawn(move || {
                chain.set_deposit_cursor(7).unwrap();
                chain.store.tx_location(&hash).unwrap()
            })
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while !chain.writer.is_locked() {
            assert!(Instant::now() < deadline, "the write never started");
            std::thread::yield_now();
        }
        assert_eq!(chain.store.meta(EFFECTS_PENDING).unwrap(), Some(block.blknum));
        release.send(()).unwrap();
        assert_eq!(writer.join().unwrap(), Some((block.blknum, 0)));
        assert_eq!(chain.store.meta(EFFECTS_PENDING).unwrap(), Some(0));
        assert_eq!(chain.tx_status(&hash).unwrap(), Some(included));
    }

    #[test]
    fn a_failed_write_of_a_block_s_effects_is_done_by_the_next_chain_write() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (key(1), key(2));
        let chain = std::sync::Arc::new(chain_with(&dir, &[(&alice, 100), (&bob, 50)], 10));
        let tx = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 90)], &[&alice]);
        let hash = one(&chain, &tx).unwrap();
        // The applier's write fails; the retry is held until `release` is sent.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = std::sync::Arc::new(Mutex::new(held));
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        *chain.effects_hook.lock() = Some(EffectsHook(std::sync::Arc::new(move || {
            if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                return Err(StoreError::Corrupt { what: "test", reason: "a full disk".into() });
            }
            let _ = held.lock().recv();
            Ok(())
        })));
        let block = chain.produce_block(10).unwrap().unwrap();
        chain.await_outcome();
        assert_eq!(chain.store.tx_location(&hash).unwrap(), None);
        // The next chain write writes them first ...
        let writer = {
            let chain = chain.clone();
            std::thread::spawn(move || chain.set_deposit_cursor(3))
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while calls.load(std::sync::atomic::Ordering::SeqCst) < 2 {
            assert!(Instant::now() < deadline, "the retry never started");
            std::thread::yield_now();
        }
        // ... and while that retry waits on the store, submissions and reads go on (the state
        // lock is never held across it, A21-3): the block's payment is known, bob's is taken.
        let included = TxStatus::Included { blknum: block.blknum, tx_index: 0, committed: false };
        assert_eq!(chain.tx_status(&hash).unwrap(), Some(included));
        assert!(matches!(one(&chain, &tx), Err(SubmitError::AlreadyKnown(h)) if h == hash));
        let bobs = pay_eth(&domain(), &[pos(2, 0, 0)], &[(alice.address(), 50)], &[&bob]);
        one(&chain, &bobs).unwrap();
        release.send(()).unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(chain.store.tx_location(&hash).unwrap(), Some((block.blknum, 0)));
        assert_eq!(chain.store.meta(EFFECTS_PENDING).unwrap(), Some(0));
        assert_eq!(chain.store.utxo(pos(1, 0, 0)).unwrap(), None);
        assert!(chain.store.utxo(pos(block.blknum, 0, 0)).unwrap().is_some());
        // The fee transaction's output too.
        assert!(chain.store.utxo(pos(block.blknum, 1, 0)).unwrap().is_some());
    }

    #[test]
    fn a_block_s_effects_derived_from_it_are_the_ledger_s_diff_even_with_chains_inside() {
        // `effects_of` (the replay) against the spec's ledger on a block the operator itself
        // never makes but a replay must get right: an output made and spent in the same
        // block, two inputs, and the fee transaction.
        let (alice, bob, carol) = (key(1), key(2), key(3));
        let d = domain();
        let mut base = plasma_spec::UtxoSet::new();
        for (blknum, owner) in [(1, &alice), (2, &bob)] {
            let tx = Transaction::deposit(owner.address(), Address::ZERO, U256::from(100u64));
            base.apply_deposit(blknum, &tx).unwrap();
        }
        let blknum = 1_000;
        let t0 =
            pay_eth(&d, &[pos(1, 0, 0)], &[(bob.address(), 60), (carol.address(), 39)], &[&alice]);
        let t1 = pay_eth(
            &d,
            &[pos(blknum, 0, 0), pos(2, 0, 0)],
            &[(carol.address(), 158)],
            &[&bob, &bob],
        );
        let fee = SignedTransaction::new(
            Transaction::fee(vec![Output::new(FEE_RECIPIENT, Address::ZERO, U256::from(3u64))]),
            Vec::new(),
        );
        let txs = vec![t0, t1, fee];
        let diff = base.clone().apply_child_block(blknum, &txs, &d).unwrap();
        let record = BlockRecord {
            blknum,
            root: B256::ZERO,
            txs: txs.iter().map(|t| Bytes::from(t.encode())).collect(),
            l1_timestamp: None,
            l1_tx: None,
        };
        let effects = effects_of(&record).unwrap();
        assert_eq!(effects.spent, diff.spent);
        let sorted = |mut v: Vec<(UtxoPos, Output)>| {
            v.sort_by_key(|(p, _)| *p);
            v
        };
        assert_eq!(sorted(effects.created.clone()), sorted(diff.created));
        // The chained output is neither spent nor created; the index has all three.
        assert!(!effects.created.iter().any(|(p, _)| *p == pos(blknum, 0, 0)));
        assert!(!effects.spent.contains(&pos(blknum, 0, 0)));
        let index: Vec<u32> = effects.txs.iter().map(|(_, _, i)| *i).collect();
        assert_eq!(index, vec![0, 1, 2]);
        assert_eq!(effects.txs[2].0, txs[2].transaction.hash());
    }

    /// Block production with the candidates deflated ahead (`DeflateAhead`), with a candidate
    /// dropped by the ledger in the middle (its input started exiting): the stored block is the
    /// included transactions in order, never the dropped one, and its wire form, root and
    /// transaction index agree. 1,250 equal-sized candidates, so the worker runs and a group
    /// holding the dropped transaction would have the same length as the block's.
    #[test]
    fn a_block_deflated_ahead_with_a_dropped_candidate_is_the_included_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let alice = key(1);
        let chain = chain_with(&dir, &[(&alice, 1_000_000_000)], 10_000);
        // Fan one deposit out to 1,250 outputs: 1 -> 5 -> 25 -> 125 -> 625 -> 1,250.
        let mut outputs = vec![(pos(1, 0, 0), 1_000_000_000u64)];
        for fan in [5u64, 5, 5, 5, 2] {
            let txs: Vec<SignedTransaction> = outputs
                .iter()
                .map(|(input, amount)| {
                    let each = amount / fan;
                    let outs: Vec<(Address, u64)> =
                        (0..fan).map(|_| (alice.address(), each)).collect();
                    pay_eth(&domain(), &[*input], &outs, &[&alice])
                })
                .collect();
            let encoded: Vec<Vec<u8>> = txs.iter().map(|t| t.encode()).collect();
            assert!(chain.submit(&encoded).iter().all(|r| r.is_ok()));
            let block = chain.produce_block(plasma_spec::MAX_TXS_PER_BLOCK).unwrap().unwrap();
            assert_eq!(block.txs.len(), txs.len());
            outputs = (0..txs.len())
                .flat_map(|t| {
                    let each = outputs[t].1 / fan;
                    (0..fan).map(move |o| (pos(block.blknum, t as u16, o as u8), each))
                })
                .collect();
        }
        assert_eq!(outputs.len(), 1250);
        let candidates: Vec<SignedTransaction> = outputs
            .iter()
            .map(|(input, amount)| {
                pay_eth(&domain(), &[*input], &[(alice.address(), *amount)], &[&alice])
            })
            .collect();
        let encoded: Vec<Vec<u8>> = candidates.iter().map(|t| t.encode()).collect();
        assert!(encoded.iter().all(|e| e.len() == encoded[0].len()));
        assert!(chain.submit(&encoded).iter().all(|r| r.is_ok()));
        // Candidate 700's input starts exiting, marked in memory only so that the pending
        // entry stays (`apply_exit_events` would drop it at once): the ledger drops it at
        // production, the fallback of OP-7.
        let dropped = 700;
        let exit = ExitEvent::StandardExitStarted { pos: outputs[dropped].0 };
        chain.state.lock().exiting.apply(&exit, 1_700_000_100, |_, _| None);
        assert_eq!(chain.mempool_len(), 1250);
        let block = chain.produce_block(plasma_spec::MAX_TXS_PER_BLOCK).unwrap().unwrap();
        let mut expected: Vec<Vec<u8>> = encoded;
        expected.remove(dropped);
        let got: Vec<Vec<u8>> = block.txs.iter().map(|t| t.to_vec()).collect();
        assert!(got == expected, "the produced block is the included transactions in order");
        // What is stored: the wire form decodes to them, under the root of their leaves.
        let stored = chain.block(block.blknum).unwrap().unwrap();
        let stored_txs: Vec<Vec<u8>> = stored.txs.iter().map(|t| t.to_vec()).collect();
        assert!(stored_txs == expected, "the stored wire form holds exactly the included ones");
        let reencoded = EncodedBlock::from_record(&stored).unwrap();
        assert_eq!(reencoded.info.root, block.root);
        let (_, wire) = chain.store.wire(block.blknum).unwrap().unwrap();
        assert!(wire == reencoded.wire, "the stored wire form is the block's own encoding");
        // The transaction index (the deflated groups) serves the ones around the drop.
        for index in [dropped - 1, dropped, expected.len() - 1] {
            match chain.inclusion(block.blknum, index as u32).unwrap() {
                Lookup::Found(found) => {
                    assert_eq!(found.stored, expected[index], "{index}")
                }
                other => panic!("{index}: {other:?}"),
            }
        }
    }

    /// Model test of the mempool's removal (`State::drop_pending_of`), both of its paths: the
    /// block is exactly the front of the queue (the queue is cut), or anything else (entries
    /// spliced in between, seqs no longer pending, an empty list). Against a model that filters:
    /// what stays, in order; what goes, in order; the pending-hash set; and the taken inputs,
    /// which also hold inputs of reservations not in the queue (they must stay).
    #[test]
    fn dropping_pending_entries_matches_a_filtering_model() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let bob = key(2).address();
        let mut fronts = 0;
        for case in 0..300 {
            let len = next(200) as usize;
            let mut mempool: VecDeque<Pending> = VecDeque::new();
            let mut seq = 0u64;
            for i in 0..len {
                seq += 1 + next(3);
                let inputs: Vec<UtxoPos> =
                    (0..1 + next(3)).map(|k| pos(1000 + case, i as u16, k as u8)).collect();
                let tx = Transaction::payment(
                    &inputs,
                    vec![Output::new(bob, Address::ZERO, U256::from(1))],
                    B256::ZERO,
                );
                mempool.push_back(Pending {
                    seq,
                    hash: B256::from(U256::from(seq)),
                    leaf: B256::ZERO,
                    tx,
                    bytes: Bytes::new(),
                    signers: Vec::new(),
                });
            }
            let reserved = (pos(999_000, 1, 0), B256::repeat_byte(0xee));
            let mut spent: FastMap<UtxoPos, B256> = FastMap::default();
            for p in &mempool {
                for input in p.tx.input_positions().unwrap() {
                    spent.insert(input, p.hash);
                }
            }
            spent.insert(reserved.0, reserved.1);
            let mut hashes: FastSet<B256> = mempool.iter().map(|p| p.hash).collect();
            // The seqs to drop: the front k exactly, or a random subset with seqs not pending.
            let seqs: Vec<u64> = if next(2) == 0 {
                fronts += 1;
                mempool.iter().take(next(len as u64 + 1) as usize).map(|p| p.seq).collect()
            } else {
                (1..=seq + 2).filter(|_| next(3) == 0).collect()
            };
            let wanted: BTreeSet<u64> = seqs.iter().copied().collect();
            let expect_stay: Vec<u64> =
                mempool.iter().map(|p| p.seq).filter(|s| !wanted.contains(s)).collect();
            let expect_gone: Vec<u64> =
                mempool.iter().map(|p| p.seq).filter(|s| wanted.contains(s)).collect();
            let mut expect_spent = spent.clone();
            for p in mempool.iter().filter(|p| wanted.contains(&p.seq)) {
                for input in p.tx.input_positions().unwrap() {
                    expect_spent.remove(&input);
                }
            }
            let gone = State::drop_pending_of(&mut mempool, &mut hashes, &mut spent, &seqs);
            let stay: Vec<u64> = mempool.iter().map(|p| p.seq).collect();
            assert_eq!(stay, expect_stay, "case {case}");
            assert_eq!(gone.iter().map(|p| p.seq).collect::<Vec<_>>(), expect_gone, "case {case}");
            let expect_hashes: FastSet<B256> = mempool.iter().map(|p| p.hash).collect();
            assert_eq!(hashes, expect_hashes, "case {case}");
            assert_eq!(spent, expect_spent, "case {case}");
            assert_eq!(spent.get(&reserved.0), Some(&reserved.1));
        }
        assert!(fronts > 100, "the front path ran {fronts} times");
    }
}
