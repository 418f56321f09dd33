//! What the watcher concludes from what it sees (spec: WATCH-3 … WATCH-7). Pure but for the
//! history of spends and blocks, which lives on disk ([`history`], WATCH-15).

pub(crate) mod history;

use alloy::primitives::{Address, B256, Bytes};
pub use history::{History, HistoryError};
use plasma_spec::{
    BlockBuilder, BlockDiff, BlockError, ExitingOutputs, LedgerError, MAX_TXS_PER_BLOCK, Output,
    SignatureError, SignedTransaction, SigningDomain, SpendRule, TxType, UtxoPos, UtxoSet,
    UtxoView, WithExits,
    batch_verify::{ParsedSignature, PublicKeys, SignatureClaim, recover_batched},
    leaf_message_of, leaves_and_hashes,
};
use serde::{Deserialize, Serialize};

/// A byzantine or noteworthy event, with what was done about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Event {
    /// A committed block's data never became available (WATCH-3).
    BlockWithheld {
        /// The block.
        blknum: u64,
    },
    /// A committed block breaks a ledger rule (WATCH-3).
    InvalidBlock {
        /// The block.
        blknum: u64,
        /// The broken rule.
        reason: String,
    },
    /// A standard exit of an output that was spent (WATCH-4).
    InvalidStandardExit {
        /// The exit (its position).
        utxo_pos: String,
        /// The spend that defeats it.
        spending_tx: B256,
    },
    /// A challenge was sent.
    Challenged {
        /// The exit.
        utxo_pos: String,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// An in-flight exit whose transaction has an older competitor was challenged (CHAL-1).
    InFlightExitChallenged {
        /// The exit id (the transaction hash).
        exit_id: B256,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// A piggybacked input spent elsewhere was challenged (CHAL-3).
    PiggybackChallenged {
        /// The exit id.
        exit_id: B256,
        /// The input.
        input_index: u8,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// A piggybacked output that was spent was challenged (CHAL-4).
    OutputPiggybackChallenged {
        /// The exit id.
        exit_id: B256,
        /// The output.
        output_index: u8,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// A false canonicity challenge was answered with the transaction's inclusion (CHAL-2).
    InFlightExitDefended {
        /// The exit id.
        exit_id: B256,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// A standard exit of an output from a withheld or invalid block: it queues behind every
    /// older exit (EXIT-2); owners of older outputs must exit before it is processed.
    ExitFromBadBlock {
        /// The exit.
        utxo_pos: String,
    },
    /// Due exits were processed (WATCH-10).
    ExitsProcessed {
        /// The token.
        token: Address,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// The oldest debts of a token were paid from its debt pool (EXIT-16, WATCH-10): exits
    /// capped behind a claim that was released since are credited.
    DebtsSettled {
        /// The token.
        token: Address,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// Guarded outputs were exited because the chain became byzantine (WATCH-9).
    MassExit {
        /// How many outputs.
        outputs: usize,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// The watcher started the in-flight exit of a guarded payment caught in flight by a
    /// byzantine chain (WATCH-9); its owners must piggyback what they are owed (EXIT-8).
    GuardedInFlightExitStarted {
        /// The exit id (the transaction hash).
        exit_id: B256,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// The tower piggybacked a guarded owner's input or output of an in-flight exit for it
    /// (WATCH-9, EXIT-9): the owner will be paid it under either verdict without acting.
    GuardedPiggyback {
        /// The exit id (the transaction hash).
        exit_id: B256,
        /// The owner it claimed for.
        owner: Address,
        /// Output (true) or input (false).
        is_output: bool,
        /// Its index.
        index: u8,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// A guarded owner's deposit, made after the first bad block, that a later (unchecked) child
    /// block could have spent: the tower does not exit it (that could cost a bond); the owner
    /// should, if it did not spend it (WATCH-6).
    LateDepositLeftToOwner {
        /// The deposit output.
        utxo_pos: String,
        /// Its owner.
        owner: Address,
    },
    /// Someone other than this tower started the in-flight exit of a payment a guarded owner
    /// is party to (EXIT-6): the owners named should piggyback what they are owed in phase 1.
    InFlightExitOfGuardedPayment {
        /// The exit id (the transaction hash).
        exit_id: B256,
        /// Who started it.
        initiator: Address,
        /// The guarded owners party to it (input owners the watcher knows, and recipients).
        owners: Vec<Address>,
    },
    /// An action went out with less than the configured margin before its deadline (WATCH-11).
    DeadlineTight {
        /// The action.
        action: String,
        /// Seconds that were left.
        seconds_left: u64,
    },
    /// L1 reorganised blocks the watcher had read: it went back to the common ancestor and reads
    /// again from there (WATCH-1).
    L1Reorg {
        /// The cursor before.
        from: u64,
        /// The common ancestor it went back to.
        to: u64,
    },
    /// An action's L1 transaction was dropped by a reorganisation: the watcher will judge again
    /// and, if still needed, act again (WATCH-11).
    ActionLost {
        /// The action.
        action: String,
        /// The transaction that is no longer in the chain.
        l1_tx: B256,
    },
    /// The tower's balance cannot pay for exiting every guarded output worth exiting (WATCH-13):
    /// it exits the most valuable first and leaves these.
    Underfunded {
        /// Guarded outputs worth exiting.
        outputs: usize,
        /// Of which the balance cannot pay for.
        unaffordable: usize,
        /// The balance (wei).
        balance: alloy::primitives::U256,
    },
    /// Guarded outputs worth less than what exiting them costs (WATCH-13) were not exited.
    DustSkipped {
        /// How many.
        outputs: usize,
        /// The amount below which an output is dust (wei, at the gas price of the moment).
        below: alloy::primitives::U256,
    },
    /// A guard was dropped: its owner revoked it on L1 or it expired (EXIT-9).
    GuardDropped {
        /// The owner.
        owner: Address,
        /// Why.
        reason: String,
    },
    /// Guarded outputs were claimed in one batch exit because the chain became byzantine
    /// (WATCH-9, EXIT-12).
    BatchMassExit {
        /// The batch's token.
        token: Address,
        /// How many outputs (claims).
        claims: usize,
        /// How many owners (groups).
        owners: usize,
        /// L1 gas the start used.
        gas_used: u64,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// Claims of the tower's processed batch were paid to their owners (EXIT-15).
    BatchPaidOut {
        /// The batch.
        batch_id: u64,
        /// How many claims.
        claims: usize,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// A batch claim the watcher disproved was struck (WATCH-16: CHAL-6, CHAL-7, CHAL-8), or
    /// released after processing.
    BatchClaimStruck {
        /// The batch.
        batch_id: u64,
        /// The claim's index.
        index: u64,
        /// The rule (`CHAL-6`, `CHAL-7`, `CHAL-8`).
        rule: String,
        /// After processing: the claim's reserve went back to the vault, no reward.
        released: bool,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// The watcher demanded the proof of a claim in a block it does not have (CHAL-9).
    BatchClaimDemanded {
        /// The batch.
        batch_id: u64,
        /// The claim's index.
        index: u64,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// The watcher answered a demand on a claim it can prove (CHAL-9).
    BatchDemandAnswered {
        /// The batch.
        batch_id: u64,
        /// The claim's index.
        index: u64,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// The watcher collected its bond of a demand nobody answered (CHAL-9).
    BatchDemandCollected {
        /// The batch.
        batch_id: u64,
        /// The claim's index.
        index: u64,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// A standard exit of an output a live batch claim already claims was challenged (CHAL-10).
    StandardExitOfClaimChallenged {
        /// The exit (its position).
        utxo_pos: String,
        /// The batch whose claim stands.
        batch_id: u64,
        /// The claim's index.
        index: u64,
        /// The L1 transaction.
        l1_tx: B256,
    },
    /// The claim tree rebuilt from a batch's `BatchExitGroup` events does not have the root its
    /// `BatchExitStarted` gave: the watcher cannot prove anything about the batch.
    BatchRootMismatch {
        /// The batch.
        batch_id: u64,
        /// The root on L1.
        root: B256,
        /// The root rebuilt.
        rebuilt: B256,
    },
    /// An action failed (it is retried).
    ActionFailed {
        /// What.
        action: String,
        /// Why.
        reason: String,
    },
    /// A read-only monitor (`--monitor`, issue 20) would have sent this action; it sent nothing.
    WouldAct {
        /// The action's key (as a guarding watcher journals it).
        action: String,
        /// The contract function it would have called.
        call: String,
        /// The wei it would have sent with it (a bond).
        value: alloy::primitives::U256,
        /// What the action is for.
        reason: String,
    },
    /// A cross-checked watcher (`--cross-check`, issue 20) judged a block both judged differently.
    VerdictDisagreement {
        /// The peer's URL, redacted.
        peer: String,
        /// The child block.
        blknum: u64,
        /// This watcher's verdict.
        ours: crate::verdicts::BlockVerdict,
        /// The peer's.
        theirs: crate::verdicts::BlockVerdict,
    },
    /// A cross-checked peer failed several polls in a row (unreachable, a bad answer, or another
    /// deployment): reported once per outage, never as a disagreement.
    CrossCheckPeerDown {
        /// The peer's URL, redacted.
        peer: String,
        /// Why the last poll failed.
        reason: String,
    },
    /// A cross-checked peer that was down answers again.
    CrossCheckPeerUp {
        /// The peer's URL, redacted.
        peer: String,
    },
}

/// A spend the watcher has seen in a valid block: the transaction and which input spends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// The spending transaction (unsigned bytes).
    pub tx: Bytes,
    /// Its hash.
    pub hash: B256,
    /// Which of its inputs.
    pub input_index: usize,
    /// The owner's signature for that input.
    pub signature: Bytes,
    /// The block it is in.
    pub blknum: u64,
    /// Its index in the block.
    pub tx_index: u16,
}

/// A validated block as the watcher keeps it (WATCH-15): enough to prove any inclusion.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KnownBlock {
    /// Leaf hashes (MERKLE-1) in order.
    pub leaves: Vec<B256>,
    /// L1 timestamp of its commitment.
    pub timestamp: u64,
}

/// `f` over `items` on all cores (contiguous chunks, one thread each), results in order.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    par_chunk_map(items, |chunk| chunk.iter().map(&f).collect())
}

/// A child block's transactions decoded once (#15): the download decodes every signed
/// transaction, hashes the leaves for the root check (MERKLE-6) and the transactions (ENC-5), on
/// all cores, and validation ([`ChainView::apply_decoded_block`]) and the history use the same
/// values instead of decoding and hashing again.
#[derive(Clone, Debug)]
pub struct DecodedBlock {
    /// The signed transactions as served (ENC-4): what the history stores.
    pub signed: Vec<Bytes>,
    /// Each one decoded, in order — or the first that did not decode (its index and why).
    pub txs: Result<Vec<SignedTransaction>, (usize, String)>,
    /// Leaf hashes (MERKLE-1) of the unsigned encodings; of the empty string for a transaction
    /// that did not decode (no committed root has such a leaf but by the operator's choice, and
    /// then the block is invalid, as [`ChainView::apply_decoded_block`] says).
    pub leaves: Vec<B256>,
    /// Transaction hashes (ENC-5), zero for one that did not decode.
    pub hashes: Vec<B256>,
    /// Each payment's EIP-712 digest and its signatures parsed for batch verification (SIG-5),
    /// when the block was decoded with the domain ([`Self::decode_prepared`]): that work then
    /// runs in the download's pipeline, ahead of validation. Empty otherwise.
    pub prepared: Vec<Option<PreparedTx>>,
}

/// A payment's signing digest (SIG-1) and its signatures parsed ahead (SIG-5).
#[derive(Clone, Debug)]
pub struct PreparedTx {
    /// The EIP-712 domain separator `digest` was computed under: a block prepared under another
    /// domain is prepared again (a signature for another deployment is not one for this).
    pub separator: B256,
    /// The EIP-712 digest its inputs' owners signed.
    pub digest: B256,
    /// Its signatures, in input order.
    pub signatures: Vec<ParsedSignature>,
}

/// The digest and parsed signatures of a payment with one signature per input (any other
/// transaction is left to the ledger and recovery).
fn prepare(t: &SignedTransaction, domain: &SigningDomain) -> Option<PreparedTx> {
    preparable(t).then(|| prepared_with(t, domain, domain.tx_digest(&t.transaction)))
}

/// Whether [`prepare`] prepares `t`: a payment with inputs and one signature for each.
fn preparable(t: &SignedTransaction) -> bool {
    matches!(t.transaction.tx_type(), Ok(TxType::Payment))
        && !t.transaction.inputs.is_empty()
        && t.signatures.len() == t.transaction.inputs.len()
}

/// `t`'s signatures parsed against `digest`, its EIP-712 digest.
fn prepared_with(t: &SignedTransaction, domain: &SigningDomain, digest: B256) -> PreparedTx {
    let signatures = t.signatures.iter().map(|s| ParsedSignature::new(digest, s)).collect();
    PreparedTx { separator: domain.separator(), digest, signatures }
}

/// [`prepare`] of each of `txs` (`None` where the decode failed), the digests computed together
/// ([`SigningDomain::tx_digests`]) and the signatures parsed together
/// ([`ParsedSignature::new_many`]: their `R`s' square roots eight at a time).
fn prepare_all(
    txs: &[Result<SignedTransaction, plasma_spec::DecodeError>],
    domain: &SigningDomain,
) -> Vec<Option<PreparedTx>> {
    let payments: Vec<&SignedTransaction> =
        txs.iter().filter_map(|t| t.as_ref().ok()).filter(|t| preparable(t)).collect();
    let refs: Vec<&plasma_spec::Transaction> = payments.iter().map(|t| &t.transaction).collect();
    let digests = domain.tx_digests(&refs);
    let claims: Vec<(B256, &[u8])> = payments
        .iter()
        .zip(&digests)
        .flat_map(|(t, d)| t.signatures.iter().map(|s| (*d, s.as_ref())))
        .collect();
    let mut parsed = ParsedSignature::new_many(&claims).into_iter();
    let mut digests = digests.into_iter();
    txs.iter()
        .map(|t| match t {
            Ok(t) if preparable(t) => {
                let digest = digests.next()?;
                let signatures: Vec<ParsedSignature> =
                    parsed.by_ref().take(t.signatures.len()).collect();
                Some(PreparedTx { separator: domain.separator(), digest, signatures })
            }
            _ => None,
        })
        .collect()
}

/// `f` over `items` in one contiguous chunk per core (or all at once when few), results in
/// order: for work that is cheaper done on many items together (the lanes' Keccak).
pub(crate) fn par_chunk_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || items.len() < 256 {
        return f(items);
    }
    let chunk = items.len().div_ceil(threads).max(1);
    let f = &f;
    // The first chunk on this thread, the others each on a thread of its own.
    std::thread::scope(|s| {
        let mut chunks = items.chunks(chunk);
        let first = chunks.next().unwrap_or_default();
        let handles: Vec<_> = chunks.map(|c| s.spawn(move || f(c))).collect();
        let mut out = Vec::with_capacity(items.len());
        out.extend(f(first));
        for h in handles {
            match h.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// Transactions decoded and hashed together by one thread at a time: enough for the lanes'
/// Keccak to fill its eight lanes, few enough that their copies stay small (~0.5 MB).
const DECODE_SUB_CHUNK: usize = 2048;

/// What [`DecodedBlock`] keeps of one transaction: the decode, its leaf and hash, and its
/// prepared signatures (payments, when a domain is given).
type DecodedTx =
    (Result<SignedTransaction, plasma_spec::DecodeError>, B256, B256, Option<PreparedTx>);

/// Decodes, hashes and (with `domain`) prepares the transactions of `chunk`, the Keccaks of all
/// of them run together (leaves and hashes, then the digests level by level).
fn decode_chunk(chunk: &[Bytes], domain: Option<&SigningDomain>) -> Vec<DecodedTx> {
    let txs: Vec<_> = chunk.iter().map(|bytes| SignedTransaction::decode(bytes)).collect();
    let messages: Vec<Option<Vec<u8>>> = txs
        .iter()
        .zip(chunk)
        .map(|(t, bytes)| {
            let t = t.as_ref().ok()?;
            Some(leaf_message_of(bytes, &t.transaction))
        })
        .collect();
    let prepared = match domain {
        Some(d) => prepare_all(&txs, d),
        None => vec![None; txs.len()],
    };
    let given: Vec<&[u8]> = messages.iter().filter_map(Option::as_deref).collect();
    let mut hashed = leaves_and_hashes(&given).into_iter();
    txs.into_iter()
        .zip(messages)
        .zip(prepared)
        .map(|((t, message), prepared)| {
            let (leaf, hash) = match message.and_then(|_| hashed.next()) {
                Some(both) => both,
                None => (plasma_spec::leaf_hash(&[]), B256::ZERO),
            };
            (t, leaf, hash, prepared)
        })
        .collect()
}

impl DecodedBlock {
    /// Decodes and hashes `signed` on all cores.
    pub fn decode(signed: Vec<Bytes>) -> Self {
        Self::decode_with(signed, None)
    }

    /// [`Self::decode`], also preparing every payment's signatures for batch verification
    /// under `domain` (SIG-5): the download's pipeline does it while earlier blocks are judged.
    pub fn decode_prepared(signed: Vec<Bytes>, domain: &SigningDomain) -> Self {
        Self::decode_with(signed, Some(domain))
    }

    fn decode_with(signed: Vec<Bytes>, domain: Option<&SigningDomain>) -> Self {
        // Sub-chunks bound the copies hashed together (a full block's would be ~17 MB at once).
        let each = par_chunk_map(&signed, |chunk| {
            chunk.chunks(DECODE_SUB_CHUNK).flat_map(|sub| decode_chunk(sub, domain)).collect()
        });
        let mut txs = Ok(Vec::with_capacity(signed.len()));
        let mut leaves = Vec::with_capacity(signed.len());
        let mut hashes = Vec::with_capacity(signed.len());
        let mut prepared = Vec::with_capacity(if domain.is_some() { signed.len() } else { 0 });
        for (i, (t, leaf, hash, p)) in each.into_iter().enumerate() {
            leaves.push(leaf);
            hashes.push(hash);
            if domain.is_some() {
                prepared.push(p);
            }
            match (&mut txs, t) {
                (Ok(txs), Ok(t)) => txs.push(t),
                (Ok(_), Err(e)) => txs = Err((i, e.to_string())),
                (Err(_), _) => {}
            }
        }
        Self { signed, txs, leaves, hashes, prepared }
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.signed.len()
    }

    /// Whether the block has no transaction.
    pub fn is_empty(&self) -> bool {
        self.signed.is_empty()
    }
}

/// [`plasma_spec::validate_child_block`] with the signatures recovered on all cores first: the
/// same rules and errors, at the speed catching up on a long chain needs.
pub fn validate_parallel(
    base: &impl UtxoView,
    blknum: u64,
    txs: &[SignedTransaction],
    domain: &SigningDomain,
) -> Result<BlockDiff, BlockError> {
    validate_hashed(base, blknum, txs, None, domain, None, &[], &mut ApplyTimings::default())
}

/// Where applying child blocks spent its wall-clock time, summed since the view was made: a few
/// clock reads per block, so the catch-up benchmark (and an operator of the watcher) can say
/// which stage bounds re-verification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyTimings {
    /// Child blocks applied (valid or not).
    pub blocks: u64,
    /// Their transactions.
    pub txs: u64,
    /// EIP-712 digests and signature parsing not already done by the download (SIG-1, SIG-5).
    pub prepare: std::time::Duration,
    /// Batch verification against cached keys and recovery of the rest (SIG-5).
    pub signatures: std::time::Duration,
    /// The ledger over the block (LEDGER-*), in order.
    pub ledger: std::time::Duration,
    /// The history record (WATCH-15), the journal and the UTXO set update of a valid block.
    pub record: std::time::Duration,
}

/// [`recover_batched`] of `claims`, learning owners' keys within them: the first signature of
/// each claimed owner without a known key is recovered first and its key filed in `keys`, so the
/// owner's other signatures are batch-verified instead of each recovered (a block of new owners,
/// a catch-up from the chain's start). Every result is still exactly recovery's
/// ([`recover_batched`]'s guarantee for any claims and keys); the order only decides which
/// signatures are batched. Every key recovered on the way is filed (under its own address).
fn learn_and_verify(
    claims: &[SignatureClaim<'_>],
    keys: &mut PublicKeys,
) -> Vec<Result<Address, SignatureError>> {
    // Only owners without a key reach the set: a few per block once the watcher runs.
    let mut seen = std::collections::HashSet::new();
    let (first, rest): (Vec<usize>, Vec<usize>) = (0..claims.len())
        .partition(|&i| claims[i].claimed.is_some_and(|a| !keys.contains(&a) && seen.insert(a)));
    let mut out: Vec<Option<Result<Address, SignatureError>>> = vec![None; claims.len()];
    for part in [first, rest] {
        if part.is_empty() {
            continue;
        }
        let these: Vec<SignatureClaim<'_>> = part.iter().map(|&i| claims[i]).collect();
        let outcome = recover_batched(&these, keys);
        for key in &outcome.learned {
            keys.insert(key);
        }
        for (i, signer) in part.into_iter().zip(outcome.signers) {
            out[i] = Some(signer);
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, s)| s.unwrap_or(Err(SignatureError::RecoveryFailed { index: claims[i].index })))
        .collect()
}

/// The signers of every payment in `txs` (`None` for other types), exactly as
/// [`SignedTransaction::recover_signers`] gives them, with the signatures whose input's owner has
/// a known key confirmed in batches (SIG-5) and the rest recovered; the keys recovered on the way
/// are filed in `keys`. An owner is guessed from `base` or from the outputs of the block itself:
/// a guess only decides which signatures are batched, never a result.
fn batched_signers(
    base: &impl UtxoView,
    blknum: u64,
    txs: &[SignedTransaction],
    domain: &SigningDomain,
    keys: &mut PublicKeys,
    ahead: &[Option<PreparedTx>],
    timings: &mut ApplyTimings,
) -> Vec<Option<Result<Vec<Address>, SignatureError>>> {
    let start = std::time::Instant::now();
    // Digests and parsed signatures: from the download's pipeline if made under this domain,
    // else here on all cores. (A parse is only ever used for the digest and signature it was
    // made of.)
    let computed;
    let under_domain = ahead.iter().flatten().all(|p| p.separator == domain.separator());
    let prepared: &[Option<PreparedTx>] = if ahead.len() == txs.len() && under_domain {
        ahead
    } else {
        computed = par_map(txs, |t| prepare(t, domain));
        &computed
    };
    let prepared_at = std::time::Instant::now();
    timings.prepare += prepared_at - start;
    let owner = |pos: UtxoPos| -> Option<Address> {
        base.utxo(pos).map(|o| o.owner).or_else(|| {
            (pos.blknum() == blknum)
                .then(|| txs.get(usize::from(pos.tx_index())))
                .flatten()
                .and_then(|t| t.transaction.outputs.get(usize::from(pos.output_index())))
                .map(|o| o.owner)
        })
    };
    let mut claims = Vec::new();
    for (t, p) in txs.iter().zip(prepared) {
        let Some(p) = p else { continue };
        let inputs = t.transaction.input_positions().unwrap_or_default();
        for (index, signature) in t.signatures.iter().enumerate() {
            let claimed = inputs.get(index).and_then(|p| owner(*p));
            let parsed = p.signatures.get(index);
            claims.push(SignatureClaim { digest: p.digest, signature, index, claimed, parsed });
        }
    }
    let mut each = learn_and_verify(&claims, keys).into_iter();
    let signers = txs
        .iter()
        .zip(prepared)
        .map(|(t, p)| match (t.transaction.tx_type(), p) {
            (Ok(TxType::Payment), Some(_)) => {
                // Take all of this transaction's results before keeping the first error (a
                // short-circuiting collect would leave some for the next transaction).
                let mine: Vec<_> = each.by_ref().take(t.signatures.len()).collect();
                Some(mine.into_iter().collect())
            }
            // Another count of signatures, or no input: recovery's own answer, no recovery.
            (Ok(TxType::Payment), None) => Some(t.recover_signers(domain)),
            _ => None,
        })
        .collect();
    timings.signatures += prepared_at.elapsed();
    signers
}

/// [`validate_parallel`] with the transactions' hashes (ENC-5) already computed, if given, and
/// the signatures of owners whose key is in `keys` batch-verified (SIG-5), the public keys
/// recovered on the way filed in `keys`.
#[allow(clippy::too_many_arguments)]
fn validate_hashed(
    base: &impl UtxoView,
    blknum: u64,
    txs: &[SignedTransaction],
    hashes: Option<&[B256]>,
    domain: &SigningDomain,
    keys: Option<&mut PublicKeys>,
    prepared: &[Option<PreparedTx>],
    timings: &mut ApplyTimings,
) -> Result<BlockDiff, BlockError> {
    let err = |tx_index, error| BlockError { blknum, tx_index, error };
    if txs.len() > MAX_TXS_PER_BLOCK {
        return Err(err(MAX_TXS_PER_BLOCK, LedgerError::TooManyTxs { count: txs.len() }));
    }
    // Only payments are recovered (or batch-verified) here; the rest go through `push_signed`
    // in order.
    let signers = match keys {
        Some(keys) => batched_signers(base, blknum, txs, domain, keys, prepared, timings),
        None => {
            let start = std::time::Instant::now();
            let signers = par_map(txs, |t| match t.transaction.tx_type() {
                Ok(TxType::Payment) => Some(t.recover_signers(domain)),
                _ => None,
            });
            timings.signatures += start.elapsed();
            signers
        }
    };
    let start = std::time::Instant::now();
    let result = ledger(base, blknum, txs, hashes, domain, signers);
    timings.ledger += start.elapsed();
    result
}

/// The ledger over `txs` in order, payments with their `signers` already found.
fn ledger(
    base: &impl UtxoView,
    blknum: u64,
    txs: &[SignedTransaction],
    hashes: Option<&[B256]>,
    domain: &SigningDomain,
    signers: Vec<Option<Result<Vec<Address>, SignatureError>>>,
) -> Result<BlockDiff, BlockError> {
    let err = |tx_index, error| BlockError { blknum, tx_index, error };
    let mut builder = BlockBuilder::new(base, blknum).map_err(|e| err(0, e))?;
    for (i, (tx, signers)) in txs.iter().zip(signers).enumerate() {
        let result = match (tx.transaction.tx_type(), signers) {
            (Ok(TxType::Payment), Some(signers)) => match tx.transaction.check() {
                Ok(_) => match signers {
                    Ok(signers) => match hashes.and_then(|h| h.get(i)) {
                        Some(hash) => builder.push_payment_hashed(&tx.transaction, *hash, &signers),
                        None => builder.push_payment(&tx.transaction, &signers),
                    }
                    .map(drop),
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e.into()),
            },
            _ => builder.push_signed(tx, domain),
        };
        result.map_err(|e| err(i, e))?;
    }
    Ok(builder.finish())
}

/// One change to the UTXO set, journaled so the watcher can persist each block atomically (the
/// block's spends and leaves wait in the [`History`] for the same transaction).
#[derive(Clone, Debug)]
pub enum Change {
    /// An output became unspent.
    UtxoAdded(UtxoPos, Output),
    /// An output was spent.
    UtxoSpent(UtxoPos),
    /// The chain became byzantine from this block.
    Byzantine(u64),
}

/// The watcher's view of the child chain.
#[derive(Debug)]
pub struct ChainView {
    /// Changes not yet persisted, in order.
    pub journal: Vec<Change>,
    domain: SigningDomain,
    /// The validated UTXO set (in memory: the ledger needs it for every block).
    pub utxos: UtxoSet,
    /// Every spend seen in valid blocks and every validated block's leaves, on disk (WATCH-15).
    pub history: History,
    /// The first withheld or invalid block, once there is one.
    pub byzantine_from: Option<u64>,
    /// The last block applied.
    pub synced_block: u64,
    /// Outputs leaving through the exit game, from L1 (LEDGER-9).
    pub exiting: ExitingOutputs,
    /// The deployment's LEDGER-9 grace (`exit_spend_grace(minExitPeriod)`).
    pub exit_grace: u64,
    /// Owners' public keys, recovered once, for batch verification (SIG-5); in memory only.
    keys: PublicKeys,
    /// Where applying blocks spent its time.
    timings: ApplyTimings,
}

impl ChainView {
    /// An empty view for the chain of `domain`, its history in memory (never persisted: tests,
    /// benchmarks). The watcher uses [`Self::with_history`].
    pub fn new(domain: SigningDomain) -> Self {
        Self::with_history(domain, History::in_memory())
    }

    /// An empty view for the chain of `domain` over the history `history` (on disk).
    pub fn with_history(domain: SigningDomain, history: History) -> Self {
        Self {
            journal: Vec::new(),
            domain,
            utxos: UtxoSet::new(),
            history,
            byzantine_from: None,
            synced_block: 0,
            exiting: ExitingOutputs::new(),
            exit_grace: 0,
            keys: PublicKeys::default(),
            timings: ApplyTimings::default(),
        }
    }

    /// Where applying child blocks spent its time since the view was made.
    pub const fn timings(&self) -> ApplyTimings {
        self.timings
    }

    /// The view with LEDGER-9's grace of the deployment (`exit_spend_grace(minExitPeriod)`).
    #[must_use]
    pub const fn with_exit_grace(mut self, grace: u64) -> Self {
        self.exit_grace = grace;
        self
    }

    /// Writes what was applied since the last write into `tx`, the caller's one atomic
    /// transaction: the UTXO changes into `view_utxos`, the spends and leaf hashes into the
    /// history's tables (WATCH-15). Call [`Self::journal_persisted`] once `tx` committed.
    pub fn write_journal(&self, tx: &redb::WriteTransaction) -> Result<(), HistoryError> {
        let mut utxos = tx.open_table(history::UTXOS).map_err(history::st)?;
        for change in &self.journal {
            match change {
                Change::UtxoAdded(pos, out) => {
                    utxos.insert(pos.to_u128(), out.to_packed().as_slice()).map_err(history::st)?;
                }
                Change::UtxoSpent(pos) => {
                    utxos.remove(pos.to_u128()).map_err(history::st)?;
                }
                Change::Byzantine(_) => {}
            }
        }
        drop(utxos);
        self.history.write(tx)
    }

    /// Forgets the journal [`Self::write_journal`] wrote, once its transaction committed: memory
    /// keeps no block's spends after it is on disk (WATCH-15).
    pub fn journal_persisted(&mut self) {
        self.journal = Vec::new();
        self.history.persisted();
    }

    /// Applies an exit-game event read from an L1 block of timestamp `at` (LEDGER-9). An
    /// in-flight transaction is located through the spends of its inputs.
    pub fn apply_exit_event(&mut self, event: &plasma_spec::ExitEvent, at: u64) {
        let history = &self.history;
        self.exiting.apply(event, at, |hash, inputs| {
            let spend = match history.spend(*inputs.first()?) {
                Ok(s) => s?,
                Err(e) => {
                    tracing::warn!(target: "watcher::history", error = %e, "spend not readable");
                    return None;
                }
            };
            (spend.hash == hash).then_some((spend.blknum, spend.tx_index))
        });
    }

    /// Applies a deposit block (made by the contract: always valid).
    ///
    /// Deposits after the first bad block are applied too: the contract made them, so they are
    /// valid whatever the operator did, and a guarded owner who deposited while the watcher waited
    /// out the availability timeout must be exited too ([`Self::late_deposits_of`]).
    pub fn apply_deposit(&mut self, blknum: u64, deposit_tx: &[u8], timestamp: u64) {
        if let Ok(tx) = plasma_spec::Transaction::decode(deposit_tx)
            && let Ok(diff) = self.utxos.apply_deposit(blknum, &tx)
        {
            for (pos, out) in diff.created {
                self.journal.push(Change::UtxoAdded(pos, out));
            }
            self.history.record_deposit(blknum, deposit_tx);
            self.history.record_block(blknum, vec![plasma_spec::leaf_hash(deposit_tx)], timestamp);
            if self.byzantine_from.is_none() {
                self.synced_block = blknum;
            }
        }
    }

    /// Validates and applies a child block's signed transactions; an invalid block marks the
    /// chain byzantine from it (WATCH-3) and returns the broken rule.
    pub fn apply_child_block(
        &mut self,
        blknum: u64,
        signed: &[Bytes],
        timestamp: u64,
    ) -> Result<(), String> {
        if self.byzantine_from.is_some() {
            return Err("an earlier block is bad".into());
        }
        self.apply_decoded_block(blknum, DecodedBlock::decode(signed.to_vec()), timestamp)
    }

    /// [`Self::apply_child_block`] of a block the download already decoded and hashed (its
    /// root checked against L1): the same rules, without decoding or hashing anything again.
    pub fn apply_decoded_block(
        &mut self,
        blknum: u64,
        block: DecodedBlock,
        timestamp: u64,
    ) -> Result<(), String> {
        if self.byzantine_from.is_some() {
            return Err("an earlier block is bad".into());
        }
        let DecodedBlock { signed, txs, leaves, hashes, prepared } = block;
        let txs = match txs {
            Ok(txs) => txs,
            Err((i, e)) => return self.bad(blknum, format!("transaction {i}: {e}")),
        };
        // spec: LEDGER-9: outputs that began exiting a grace before the commitment are gone.
        let view = WithExits {
            utxos: &self.utxos,
            exiting: &self.exiting,
            rule: SpendRule::CommittedAt { time: timestamp, grace: self.exit_grace },
        };
        let result = validate_hashed(
            &view,
            blknum,
            &txs,
            Some(&hashes),
            &self.domain,
            Some(&mut self.keys),
            &prepared,
            &mut self.timings,
        );
        self.timings.blocks += 1;
        self.timings.txs += txs.len() as u64;
        let start = std::time::Instant::now();
        match result {
            Ok(diff) => {
                if self.exiting.waits_for_inclusions() {
                    for (tx_index, hash) in hashes.iter().enumerate() {
                        self.exiting.transaction_included(hash, blknum, tx_index as u16);
                    }
                }
                for (tx_index, (tx, bytes)) in txs.iter().zip(signed).enumerate() {
                    let inputs = tx.transaction.input_positions().unwrap_or_default();
                    // A valid block holds at most 65,536 transactions.
                    self.history.record_signed_bytes(blknum, tx_index as u16, bytes, &inputs);
                }
                for pos in &diff.spent {
                    self.journal.push(Change::UtxoSpent(*pos));
                }
                for (pos, out) in &diff.created {
                    self.journal.push(Change::UtxoAdded(*pos, out.clone()));
                }
                self.utxos.apply(&diff);
                self.history.record_block(blknum, leaves, timestamp);
                self.synced_block = blknum;
                self.timings.record += start.elapsed();
                Ok(())
            }
            Err(BlockError { tx_index, error, .. }) => {
                self.bad(blknum, format!("transaction {tx_index}: {error}"))
            }
        }
    }

    fn bad(&mut self, blknum: u64, reason: String) -> Result<(), String> {
        self.withheld(blknum);
        Err(reason)
    }

    /// Marks a block withheld (WATCH-3).
    pub fn withheld(&mut self, blknum: u64) {
        if self.byzantine_from.is_none() {
            self.byzantine_from = Some(blknum);
            self.journal.push(Change::Byzantine(blknum));
        }
    }

    /// The inclusion proof of transaction `tx_index` of validated block `blknum`, with the
    /// block's L1 timestamp: what every challenge and response that proves inclusion needs.
    /// Read from the history's leaf hashes (a few built trees are cached).
    pub fn inclusion_proof(
        &self,
        blknum: u64,
        tx_index: u16,
    ) -> Result<Option<(Vec<u8>, u64)>, HistoryError> {
        let Some(timestamp) = self.history.timestamp(blknum)? else { return Ok(None) };
        let Some(tree) = self.history.tree(blknum)? else { return Ok(None) };
        Ok(tree.proof(usize::from(tx_index)).ok().map(|p| (p.to_bytes(), timestamp)))
    }

    /// The bytes of transaction `tx_index` of validated block `blknum` (the leaf's preimage,
    /// unsigned): what an exit of one of its outputs presents.
    pub fn tx_bytes(&self, blknum: u64, tx_index: u16) -> Result<Option<Bytes>, HistoryError> {
        self.history.tx_bytes(blknum, tx_index)
    }

    /// The spend defeating a standard exit of `pos`, if the watcher saw one (WATCH-4).
    pub fn challenge_for(&self, pos: UtxoPos) -> Result<Option<Spend>, HistoryError> {
        self.history.spend(pos)
    }

    /// Deposits of `owner` made after the first bad block that no child block could have spent:
    /// numbered after `last_child_committed`, the highest child block committed on L1 (WATCH-6).
    /// A deposit numbered before a later child block may have been spent in it, which the watcher
    /// cannot check on a byzantine chain: exiting it could cost a bond, so its owner must decide.
    pub fn late_deposits_of(
        &self,
        owner: Address,
        last_child_committed: u64,
    ) -> Vec<(UtxoPos, Output)> {
        self.deposits_after_bad_block(owner, |blknum| blknum > last_child_committed)
    }

    /// `owner`'s unspent deposits numbered after the first bad block whose number passes
    /// `keep`, in position order (none while the chain is not byzantine).
    fn deposits_after_bad_block(
        &self,
        owner: Address,
        keep: impl Fn(u64) -> bool,
    ) -> Vec<(UtxoPos, Output)> {
        let Some(bad) = self.byzantine_from else { return Vec::new() };
        let mut out: Vec<_> = self
            .utxos
            .iter()
            .filter(|(p, o)| {
                o.owner == owner && p.is_deposit() && p.blknum() > bad && keep(p.blknum())
            })
            .map(|(p, o)| (*p, o.clone()))
            .collect();
        out.sort_by_key(|(p, _)| *p);
        out
    }

    /// Deposits of `owner` after the first bad block that a later child block could have spent
    /// (numbered at or below `last_child_committed`): the watcher leaves them to their owner,
    /// who knows whether they spent them (WATCH-6).
    pub fn late_deposits_left_to(&self, owner: Address, last_child_committed: u64) -> Vec<UtxoPos> {
        self.deposits_after_bad_block(owner, |blknum| blknum <= last_child_committed)
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

    /// Unspent outputs of `owner` in blocks before the first bad one (WATCH-6).
    pub fn exitable_outputs_of(&self, owner: Address) -> Vec<(UtxoPos, Output)> {
        let limit = self.byzantine_from.unwrap_or(u64::MAX);
        let mut out: Vec<_> = self
            .utxos
            .iter()
            .filter(|(p, o)| o.owner == owner && p.blknum() < limit)
            .map(|(p, o)| (*p, o.clone()))
            .collect();
        out.sort_by_key(|(p, _)| *p);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;
    use plasma_spec::{Signer, Transaction, test_utils::*};

    /// Every item once, in order, whatever the chunking (below the parallel threshold, at it,
    /// and sizes that leave a short last chunk).
    #[test]
    fn par_map_gives_every_result_in_order() {
        for n in [0usize, 1, 255, 256, 257, 1_000, 10_007] {
            let items: Vec<u64> = (0..n as u64).collect();
            let got = par_map(&items, |x| x * 3 + 1);
            assert_eq!(got, items.iter().map(|x| x * 3 + 1).collect::<Vec<_>>(), "{n} items");
        }
    }

    fn view_with_deposit() -> (ChainView, Signer, Signer) {
        let (alice, bob) = (key(1), key(2));
        let mut view = ChainView::new(domain());
        let dep = Transaction::deposit(alice.address(), Address::ZERO, U256::from(100)).encode();
        view.apply_deposit(1, &dep, 10);
        (view, alice, bob)
    }

    fn signed(tx: &SignedTransaction) -> Bytes {
        tx.encode().into()
    }

    #[test]
    fn a_valid_block_records_its_spends_and_outputs() {
        let (mut view, alice, bob) = view_with_deposit();
        let pay = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        view.apply_child_block(1000, &[signed(&pay)], 20).unwrap();
        assert_eq!(view.challenge_for(pos(1, 0, 0)).unwrap().unwrap().hash, pay.transaction.hash());
        assert_eq!(view.exitable_outputs_of(bob.address()).len(), 1);
        assert!(view.byzantine_from.is_none());
    }

    #[test]
    fn an_invalid_block_makes_the_chain_byzantine_from_it() {
        for bad in ["double spend", "value created", "wrong signer"] {
            let (mut view, alice, bob) = view_with_deposit();
            let txs = match bad {
                "double spend" => vec![
                    pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]),
                    pay_eth(&domain(), &[pos(1, 0, 0)], &[(alice.address(), 100)], &[&alice]),
                ],
                "value created" => {
                    vec![pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 101)], &[&alice])]
                }
                _ => vec![pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&bob])],
            };
            let txs: Vec<Bytes> = txs.iter().map(signed).collect();
            assert!(view.apply_child_block(1000, &txs, 20).is_err(), "{bad}");
            assert_eq!(view.byzantine_from, Some(1000), "{bad}");
            // Later blocks are not applied on top of an unknown state.
            assert!(view.apply_child_block(2000, &[], 30).is_err());
            // alice's deposit, older than the bad block, is still hers to exit.
            assert_eq!(view.exitable_outputs_of(alice.address()).len(), 1, "{bad}");
        }
    }

    /// SIG-5 in the watcher: once owners' keys are known, a block is judged as recovery judges
    /// it — a wrong signer anywhere among batch-verified signatures names its transaction.
    #[test]
    fn batch_verified_blocks_are_judged_as_recovery_judges_them() {
        use rand::Rng;
        let owners = [key(1), key(2), key(3)];
        let mut rng = rand::rng();
        for round in 0..4 {
            let mut view = ChainView::new(domain());
            for d in 1..=300u64 {
                let o = &owners[(d % 3) as usize];
                let dep = Transaction::deposit(o.address(), Address::ZERO, U256::from(5)).encode();
                view.apply_deposit(d, &dep, 10);
            }
            let pay = |d: u64, signer: &Signer| {
                let o = &owners[(d % 3) as usize];
                signed(&pay_eth(&domain(), &[pos(d, 0, 0)], &[(o.address(), 5)], &[signer]))
            };
            // Block 1000 teaches the watcher the three keys (recovered once).
            let first: Vec<Bytes> = (1..=60).map(|d| pay(d, &owners[(d % 3) as usize])).collect();
            view.apply_child_block(1000, &first, 20).unwrap();
            assert_eq!(view.keys.len(), 3);
            // Block 2000, batch-verified: valid, or with one wrong signer at a random place.
            let bad = (round > 0).then(|| rng.random_range(0..240usize));
            let second: Vec<Bytes> = (61..=300u64)
                .map(|d| {
                    let i = (d - 61) as usize;
                    let signer = if Some(i) == bad {
                        &owners[((d + 1) % 3) as usize]
                    } else {
                        &owners[(d % 3) as usize]
                    };
                    pay(d, signer)
                })
                .collect();
            let decoded: Vec<SignedTransaction> =
                second.iter().map(|b| SignedTransaction::decode(b).unwrap()).collect();
            let by_recovery = validate_parallel(&view.utxos, 2000, &decoded, &domain());
            // Prepared ahead (as the download does) in odd rounds, here in even ones.
            let block = if round % 2 == 1 {
                DecodedBlock::decode_prepared(second.clone(), &domain())
            } else {
                DecodedBlock::decode(second.clone())
            };
            let result = view.apply_decoded_block(2000, block, 30);
            match (bad, by_recovery) {
                (None, Ok(_)) => assert!(result.is_ok(), "{result:?}"),
                (Some(i), Err(e)) => {
                    assert_eq!(e.tx_index, i);
                    assert_eq!(result, Err(format!("transaction {i}: {}", e.error)));
                    assert_eq!(view.byzantine_from, Some(2000));
                }
                other => panic!("recovery and the batch disagree: {other:?}"),
            }
        }
    }

    /// A block prepared ahead under another signing domain (another chain id) is not judged by
    /// those digests: its payments, signed for the other deployment, are wrong signers here, as
    /// recovery under this domain says — the same block prepared under this domain is judged
    /// alike. (Taking the other domain's digests would accept a replay from another chain.)
    #[test]
    fn a_block_prepared_under_another_domain_is_judged_under_this_one() {
        let owners = [key(1), key(2), key(3)];
        let other = SigningDomain::new(999, Address::repeat_byte(9));
        for prepared_under in [&other, &domain()] {
            let mut view = ChainView::new(domain());
            for d in 1..=40u64 {
                let o = &owners[(d % 3) as usize];
                let dep = Transaction::deposit(o.address(), Address::ZERO, U256::from(5)).encode();
                view.apply_deposit(d, &dep, 10);
            }
            let pay = |d: u64, domain: &SigningDomain| {
                let o = &owners[(d % 3) as usize];
                signed(&pay_eth(domain, &[pos(d, 0, 0)], &[(o.address(), 5)], &[o]))
            };
            // The keys are known, so the second block's signatures go to the batch.
            let first: Vec<Bytes> = (1..=20).map(|d| pay(d, &domain())).collect();
            view.apply_child_block(1000, &first, 20).unwrap();
            let second: Vec<Bytes> = (21..=40).map(|d| pay(d, &other)).collect();
            let block = DecodedBlock::decode_prepared(second, prepared_under);
            let result = view.apply_decoded_block(2000, block, 30);
            let err = result.expect_err("signed for another chain");
            assert!(err.starts_with("transaction 0: "), "{err}");
            assert!(err.contains("signed by"), "{err}");
            assert_eq!(view.byzantine_from, Some(2000));
        }
    }

    /// A block larger than the sub-chunks each thread hashes together: every transaction's leaf,
    /// hash and digest in its place, whatever chunk it fell in.
    #[test]
    fn a_block_of_many_sub_chunks_keeps_every_hash_in_place() {
        let n = 2 * DECODE_SUB_CHUNK * 2 + 77;
        let d = domain();
        let txs: Vec<SignedTransaction> = (0..n as u64)
            .map(|i| {
                let outputs = (0..=(i % 3) as u8)
                    .map(|o| Output::new(Address::repeat_byte(o), Address::ZERO, U256::from(i)))
                    .collect();
                let tx = Transaction::payment(&[pos(1 + i, 0, 0)], outputs, B256::ZERO);
                SignedTransaction::new(tx, vec![Bytes::from(vec![(i % 251) as u8; 65])])
            })
            .collect();
        let block =
            DecodedBlock::decode_prepared(txs.iter().map(|t| t.encode().into()).collect(), &d);
        for (i, t) in txs.iter().enumerate() {
            assert_eq!(block.leaves[i], plasma_spec::leaf_hash(&t.transaction.encode()), "{i}");
            assert_eq!(block.hashes[i], t.transaction.hash(), "{i}");
            let prepared = block.prepared[i].as_ref().unwrap();
            assert_eq!(prepared.digest, d.tx_digest(&t.transaction), "{i}");
        }
    }

    #[test]
    fn hashes_read_in_place_are_those_of_the_encoded_transaction() {
        // Every shape of payment (1..=5 inputs and outputs, any count of signatures, several
        // tokens, metadata) and a fee and a deposit: the hashes read inside the signed encoding
        // are those of the transaction encoded again.
        use rand::Rng;
        let mut rng = rand::rng();
        let mut all = Vec::new();
        for n_in in 0..=5u16 {
            for n_out in 0..=5u8 {
                for n_sig in [0usize, 1, usize::from(n_in), 5] {
                    let inputs: Vec<UtxoPos> =
                        (0..n_in).map(|i| pos(rng.random_range(1..1u64 << 40), i, 0)).collect();
                    let outputs = (0..n_out)
                        .map(|o| {
                            Output::new(
                                Address::repeat_byte(o + 1),
                                Address::repeat_byte(rng.random()),
                                U256::from(rng.random::<u128>()),
                            )
                        })
                        .collect();
                    let mut tx = Transaction::payment(
                        &inputs,
                        outputs,
                        B256::from(rng.random::<[u8; 32]>()),
                    );
                    for tx_type in [1u8, 2, 3, 9] {
                        tx.txType = tx_type;
                        let sigs = (0..n_sig)
                            .map(|_| {
                                Bytes::from((0..65).map(|_| rng.random()).collect::<Vec<u8>>())
                            })
                            .collect();
                        let st = SignedTransaction::new(tx.clone(), sigs);
                        let bytes = st.encode();
                        let unsigned = tx.encode();
                        all.push((bytes.clone(), unsigned.clone(), tx.hash()));
                        let block = DecodedBlock::decode(vec![bytes.into()]);
                        assert_eq!(block.leaves, vec![plasma_spec::leaf_hash(&unsigned)]);
                        assert_eq!(block.hashes, vec![tx.hash()]);
                    }
                }
            }
        }
        // Together, as a block's download decodes them (the lanes' Keccak, eight at a time
        // where this CPU has AVX-512): the same leaves and hashes, in order.
        let block = DecodedBlock::decode(all.iter().map(|(b, _, _)| b.clone().into()).collect());
        assert!(all.len() > 100);
        let leaves: Vec<B256> = all.iter().map(|(_, u, _)| plasma_spec::leaf_hash(u)).collect();
        let hashes: Vec<B256> = all.iter().map(|(_, _, h)| *h).collect();
        assert_eq!(block.leaves, leaves);
        assert_eq!(block.hashes, hashes);
    }

    /// Keys learnt within a block (its owners' first signatures recovered, the rest batched):
    /// every verdict is recovery's, on valid blocks and on each kind of invalid one — including
    /// a wrong signer on an owner's very first signature, whose recovered key is someone else's.
    #[test]
    fn a_block_of_new_owners_is_judged_as_recovery_judges_it() {
        use rand::Rng;
        let owners: Vec<Signer> = (1..=5).map(key).collect();
        let stranger = key(99);
        let mut rng = rand::rng();
        let kinds = [
            "valid",
            "wrong signer",
            "wrong first signer",
            "malformed signature",
            "double spend",
            "value created",
            "missing input",
            "spent in the block first",
        ];
        for round in 0..3 {
            for kind in kinds {
                let mut view = ChainView::new(domain());
                for d in 1..=400u64 {
                    let o = &owners[(d % 5) as usize];
                    let dep =
                        Transaction::deposit(o.address(), Address::ZERO, U256::from(5)).encode();
                    view.apply_deposit(d, &dep, 10);
                }
                let bad = rng.random_range(0..400usize);
                let mut txs: Vec<SignedTransaction> = (1..=400u64)
                    .map(|d| {
                        let o = &owners[(d % 5) as usize];
                        pay_eth(&domain(), &[pos(d, 0, 0)], &[(o.address(), 5)], &[o])
                    })
                    .collect();
                let d = bad as u64 + 1;
                let o = &owners[(d % 5) as usize];
                match kind {
                    "wrong signer" => {
                        txs[bad] =
                            pay_eth(&domain(), &[pos(d, 0, 0)], &[(o.address(), 5)], &[&stranger]);
                    }
                    // Owner `round`'s first transaction is the one at index `round - 1`.
                    "wrong first signer" => {
                        let i = (round + 4) % 5;
                        let d = i as u64 + 1;
                        let o = &owners[(d % 5) as usize];
                        let other = &owners[((d + 1) % 5) as usize];
                        txs[i] = pay_eth(&domain(), &[pos(d, 0, 0)], &[(o.address(), 5)], &[other]);
                    }
                    "malformed signature" => {
                        let mut sig = txs[bad].signatures[0].to_vec();
                        sig[64] = rng.random_range(0..27);
                        txs[bad].signatures[0] = sig.into();
                    }
                    "double spend" => {
                        let first = rng.random_range(0..bad.max(1));
                        let dd = first as u64 + 1;
                        let oo = &owners[(dd % 5) as usize];
                        txs[bad] = pay_eth(&domain(), &[pos(dd, 0, 0)], &[(o.address(), 5)], &[oo]);
                    }
                    "value created" => {
                        txs[bad] = pay_eth(&domain(), &[pos(d, 0, 0)], &[(o.address(), 6)], &[o]);
                    }
                    "missing input" => {
                        txs[bad] =
                            pay_eth(&domain(), &[pos(d + 5_000, 0, 0)], &[(o.address(), 5)], &[o]);
                    }
                    // A transaction spending an output of the block itself (valid when after it).
                    "spent in the block first" => {
                        let at = rng.random_range(0..400u16);
                        let spender = pay_eth(
                            &domain(),
                            &[pos(1000, at, 0)],
                            &[(o.address(), 5)],
                            &[&owners[((u64::from(at) + 1) % 5) as usize]],
                        );
                        txs[bad] = spender;
                    }
                    _ => {}
                }
                let bytes: Vec<Bytes> = txs.iter().map(signed).collect();
                let by_recovery = validate_parallel(&view.utxos, 1000, &txs, &domain());
                let block = if round % 2 == 0 {
                    DecodedBlock::decode(bytes)
                } else {
                    DecodedBlock::decode_prepared(bytes, &domain())
                };
                let result = view.apply_decoded_block(1000, block, 20);
                match (&by_recovery, &result) {
                    (Ok(_), Ok(())) => {}
                    (Err(e), Err(reason)) => {
                        assert_eq!(reason, &format!("transaction {}: {}", e.tx_index, e.error));
                    }
                    other => panic!("{kind}: recovery and the batch disagree: {other:?}"),
                }
                assert_eq!(result.is_ok(), kind == "valid" || by_recovery.is_ok(), "{kind}");
                if kind == "valid" {
                    // Every owner's key was learnt in the block.
                    assert_eq!(view.keys.len(), 5);
                } else if !matches!(kind, "spent in the block first") {
                    assert!(result.is_err(), "{kind}");
                }
            }
        }
    }

    #[test]
    fn a_decoded_block_is_judged_as_its_bytes_are() {
        // The download decodes and hashes once; validation takes that block as it is.
        let (mut view, alice, bob) = view_with_deposit();
        let pay = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let block = DecodedBlock::decode(vec![signed(&pay)]);
        assert_eq!(block.leaves, vec![plasma_spec::leaf_hash(&pay.transaction.encode())]);
        assert_eq!(block.hashes, vec![pay.transaction.hash()]);
        view.apply_decoded_block(1000, block, 20).unwrap();
        assert_eq!(view.challenge_for(pos(1, 0, 0)).unwrap().unwrap().hash, pay.transaction.hash());
        assert_eq!(view.tx_bytes(1000, 0).unwrap().unwrap(), pay.transaction.encode());
        // A transaction that does not decode makes its block invalid, named by its index.
        let (mut view, alice, bob) = view_with_deposit();
        let pay = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let block = DecodedBlock::decode(vec![signed(&pay), Bytes::from(vec![7u8; 40])]);
        assert_eq!(block.leaves[1], plasma_spec::leaf_hash(&[]));
        let reason = view.apply_decoded_block(1000, block, 20).unwrap_err();
        assert!(reason.starts_with("transaction 1:"), "{reason}");
        assert_eq!(view.byzantine_from, Some(1000));
    }

    #[test]
    fn a_block_spending_an_output_exiting_for_longer_than_the_grace_is_invalid() {
        // spec: LEDGER-9. alice's deposit starts its standard exit at L1 time 100; grace 15.
        for (committed_at, valid) in [(114, true), (115, false), (1_000, false)] {
            let (view, alice, bob) = view_with_deposit();
            let mut view = view.with_exit_grace(15);
            let event = plasma_spec::ExitEvent::StandardExitStarted { pos: pos(1, 0, 0) };
            view.apply_exit_event(&event, 100);
            let pay = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
            let result = view.apply_child_block(1000, &[signed(&pay)], committed_at);
            if valid {
                assert!(result.is_ok(), "inside the grace: {result:?}");
                // The spend is what defeats the exit (EXIT-4).
                assert_eq!(
                    view.challenge_for(pos(1, 0, 0)).unwrap().unwrap().hash,
                    pay.transaction.hash()
                );
            } else {
                let reason = result.unwrap_err();
                assert!(reason.contains("LEDGER-9"), "{reason}");
                assert_eq!(view.byzantine_from, Some(1000));
            }
        }
    }

    #[test]
    fn inputs_of_an_in_flight_exit_are_free_again_once_it_is_deleted() {
        let (view, alice, bob) = view_with_deposit();
        let mut view = view.with_exit_grace(15);
        let ife = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let id = U256::from(7);
        view.apply_exit_event(
            &plasma_spec::ExitEvent::InFlightExitStarted { exit_id: id, tx: ife.transaction },
            100,
        );
        view.apply_exit_event(&plasma_spec::ExitEvent::InFlightExitDeleted { exit_id: id }, 200);
        // Committed after the deletion: the input is spendable again.
        let pay = pay_eth(&domain(), &[pos(1, 0, 0)], &[(alice.address(), 100)], &[&alice]);
        view.apply_child_block(1000, &[signed(&pay)], 201).unwrap();
    }

    #[test]
    fn a_piggybacked_output_placed_after_its_transaction_is_validated() {
        let (view, alice, bob) = view_with_deposit();
        let mut view = view.with_exit_grace(15);
        let ife = pay_eth(&domain(), &[pos(1, 0, 0)], &[(bob.address(), 100)], &[&alice]);
        let id = U256::from(8);
        // The exit and bob's piggyback are read before the block that includes the transaction.
        view.apply_exit_event(
            &plasma_spec::ExitEvent::InFlightExitStarted {
                exit_id: id,
                tx: ife.transaction.clone(),
            },
            100,
        );
        view.apply_exit_event(
            &plasma_spec::ExitEvent::OutputPiggybacked { exit_id: id, index: 0 },
            101,
        );
        view.apply_child_block(1000, &[signed(&ife)], 105).unwrap();
        let bobs = pay_eth(&domain(), &[pos(1000, 0, 0)], &[(alice.address(), 100)], &[&bob]);
        let reason = view.apply_child_block(2000, &[signed(&bobs)], 200).unwrap_err();
        assert!(reason.contains("LEDGER-9"), "{reason}");
    }

    #[test]
    fn deposits_after_a_bad_block_are_exited_unless_a_later_child_block_could_spend_them() {
        let (mut view, alice, _) = view_with_deposit();
        view.withheld(1000);
        let dep = |n| Transaction::deposit(alice.address(), Address::ZERO, U256::from(n)).encode();
        view.apply_deposit(1001, &dep(5), 30); // made while the watcher waited out the timeout
        view.apply_deposit(2001, &dep(7), 40); // made after child block 2000 was committed
        assert_eq!(view.synced_block, 1, "the view's validated part does not move");
        let late: Vec<u64> =
            view.late_deposits_of(alice.address(), 1000).iter().map(|(p, _)| p.blknum()).collect();
        assert_eq!(late, vec![1001, 2001]);
        // Child block 2000 (unchecked on a byzantine chain) may spend deposit 1001.
        let late: Vec<u64> =
            view.late_deposits_of(alice.address(), 2000).iter().map(|(p, _)| p.blknum()).collect();
        assert_eq!(late, vec![2001]);
        let left: Vec<u64> =
            view.late_deposits_left_to(alice.address(), 2000).iter().map(|p| p.blknum()).collect();
        assert_eq!(left, vec![1001], "left to alice, who knows whether she spent it");
        assert!(view.inclusion_proof(2001, 0).unwrap().is_some(), "provable for its exit");
    }

    #[test]
    fn a_withheld_block_keeps_older_outputs_exitable_and_newer_ones_not() {
        let (mut view, alice, bob) = view_with_deposit();
        let pay = pay_eth(
            &domain(),
            &[pos(1, 0, 0)],
            &[(bob.address(), 60), (alice.address(), 40)],
            &[&alice],
        );
        view.apply_child_block(1000, &[signed(&pay)], 20).unwrap();
        view.withheld(2000);
        assert_eq!(
            view.exitable_outputs_of(bob.address()),
            vec![(pos(1000, 0, 0), Output::new(bob.address(), Address::ZERO, U256::from(60)))]
        );
        assert!(
            view.challenge_for(pos(1000, 0, 0)).unwrap().is_none(),
            "an unspent output has no challenge"
        );
    }
}
