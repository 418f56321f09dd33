//! Batch verification for [`crate::Wallet::sync`] (issue 15): outputs are checked many at a time,
//! with one L1 read per block (cached for the sync) and the creating transactions from the
//! operator's batch inclusion route — never whole blocks. With towers configured (DA-12), what
//! the operator does not serve, or serves wrong, is read from each tower in turn.

use crate::{
    client::{ExitData, Inclusion, InclusionItem, ListedUtxo},
    error::SdkError,
    sources::{SourceAttempt, SourceFailure, Sources},
    store::{OutputStatus, StoredOutput, Verification},
};
use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::DynProvider,
    sol_types::SolValue,
};
use plasma_contracts::PlasmaFramework;
use plasma_spec::{
    Proof, SignedTransaction, SigningDomain, TokenSums, Transaction, TxType, UtxoPos,
    is_deposit_block, leaf_hash,
};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

/// How a sync runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncOptions {
    /// Outputs per `/v1/utxos` page (the operator allows at most 1,000 with proofs).
    pub page_size: usize,
    /// Outputs verified (and stored, in one store transaction) together.
    pub batch_size: usize,
    /// Batches in flight at once.
    pub parallel: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self { page_size: crate::client::DEFAULT_PAGE_SIZE, batch_size: 500, parallel: 4 }
    }
}

/// Progress of a running sync, as reported to the caller's callback.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// Outputs the operator listed so far.
    pub listed: usize,
    /// New outputs found so far (listed, not stored).
    pub new: usize,
    /// New outputs verified and stored so far.
    pub verified: usize,
    /// Whether the listing is complete (the last page was read).
    pub listing_done: bool,
}

fn l1(e: impl std::fmt::Display) -> SdkError {
    SdkError::L1(e.to_string())
}

fn mismatch(pos: u128, reason: impl Into<String>) -> SdkError {
    SdkError::ProofMismatch { utxo_pos: pos.to_string(), reason: reason.into() }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What checking a creating transaction found.
pub(crate) enum TxCheck {
    /// Passed (`proof+tx`).
    Valid,
    /// Could not be checked (no source served or mis-served the data); not a verdict.
    Unchecked(String),
    /// The transaction is invalid: the block is, and the operator is byzantine.
    Invalid(String),
}

/// L1 block commitments read during one sync: one `blockCommitments` call per block, however
/// many outputs it holds. Per sync only: a re-check must see a commitment that changed (a reorg).
#[derive(Clone, Debug, Default)]
pub(crate) struct Commitments(Arc<Mutex<HashMap<u64, B256>>>);

impl Commitments {
    pub(crate) fn get(&self, blknum: u64) -> Option<B256> {
        self.0.lock().ok().and_then(|m| m.get(&blknum).copied())
    }

    /// Reads the commitments of `blknums` not read yet, up to 16 calls at once.
    pub(crate) async fn load(
        &self,
        framework: &PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
        blknums: impl IntoIterator<Item = u64>,
    ) -> Result<(), SdkError> {
        let missing: Vec<u64> = {
            let known = self.0.lock().map_err(|_| SdkError::Store("poisoned cache".into()))?;
            let set: HashSet<u64> =
                blknums.into_iter().filter(|b| !known.contains_key(b)).collect();
            set.into_iter().collect()
        };
        for chunk in missing.chunks(16) {
            let mut set = tokio::task::JoinSet::new();
            for &b in chunk {
                let f = framework.clone();
                set.spawn(async move { (b, f.blockCommitments(U256::from(b)).call().await) });
            }
            while let Some(joined) = set.join_next().await {
                let (b, c) = joined.map_err(|e| SdkError::L1(e.to_string()))?;
                let c = c.map_err(l1)?;
                if let Ok(mut m) = self.0.lock() {
                    m.insert(b, c);
                }
            }
        }
        Ok(())
    }

    /// The commitment of `blknum` (load it first).
    pub(crate) fn of(&self, blknum: u64) -> Result<B256, SdkError> {
        self.get(blknum).ok_or_else(|| SdkError::L1(format!("commitment of {blknum} not read")))
    }
}

/// Everything a batch needs, cloneable into a task.
#[derive(Clone, Debug)]
pub(crate) struct Checker {
    /// Where data is read: the operator, then the towers (DA-12).
    pub(crate) sources: Sources,
    pub(crate) framework: PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    pub(crate) domain: SigningDomain,
    pub(crate) me: Address,
    pub(crate) commitments: Commitments,
    /// Whether the proven output must have the listing's token and amount. A restore (DA-12)
    /// and a single output read for an exit store the proven output's own instead: a source that
    /// lists a wrong amount must not stop the recovery of the real output.
    pub(crate) compare_listing: bool,
    /// Whether an output no source proves is rejected (and reported) rather than failing the
    /// batch: a restore must not let one lying source stop the recovery of everything else.
    pub(crate) reject_unproven: bool,
}

/// What one input of a transaction resolved to.
enum InputData {
    /// Its creating transaction, proven under the L1 commitment of its block.
    Proven(Transaction),
    /// Its block is not committed on L1 at all.
    NotCommitted,
    /// No source served it as committed under L1.
    NotServed,
}

/// What checking one source's answer for one transaction found.
pub(crate) enum Check {
    /// Verified against L1, and complete.
    Full,
    /// Verified against L1 but incomplete (no signed transaction matching it): kept unless a
    /// later source serves it whole.
    Partial,
    /// Its block is not committed on L1: nothing about it can be proven yet.
    NotCommitted,
    /// Does not verify against L1: skipped, and the next source asked.
    Bad(SdkError),
}

/// What the sources served for a set of transactions (`POST /v1/inclusions`), each answer
/// checked; a transaction goes to the next source while no answer for it passed.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// Per transaction: the accepted inclusion, its signed form if served (decoded), and the
    /// index of the source that served it.
    accepted: HashMap<(u64, u16), (Inclusion, Option<SignedTransaction>, usize)>,
    /// Transactions a source (or L1) says are not committed yet.
    not_committed: HashSet<(u64, u16)>,
    /// Transactions some source served data for that failed verification.
    lied: HashSet<(u64, u16)>,
    /// Per transaction not accepted: each source's own failure, with the error itself.
    failures: HashMap<(u64, u16), Vec<(usize, SdkError)>>,
    /// Sources whose whole request failed.
    request_failures: Vec<(usize, SourceFailure)>,
}

impl Fetched {
    /// Why no source served `key`: with one source its own error; otherwise
    /// [`SdkError::AllSourcesFailed`] naming each source.
    fn error(&mut self, sources: &Sources, key: (u64, u16), what: String) -> SdkError {
        let mut own = self.failures.remove(&key).unwrap_or_default();
        if sources.len() == 1
            && let Some((_, e)) = own.pop()
        {
            return e;
        }
        let mut attempts: Vec<(usize, SourceFailure)> =
            own.iter().map(|(i, e)| (*i, SourceFailure::from(e))).collect();
        attempts.extend(self.request_failures.iter().cloned());
        attempts.sort_by_key(|(i, _)| *i);
        SdkError::AllSourcesFailed {
            what,
            attempts: attempts
                .into_iter()
                .map(|(i, failure)| SourceAttempt { source: sources.id(i).clone(), failure })
                .collect(),
        }
    }
}

/// What verifying a batch of listed outputs gave.
#[derive(Debug, Default)]
pub(crate) struct Verified {
    /// The verified outputs (to store).
    pub(crate) outputs: Vec<StoredOutput>,
    /// Outputs whose blocks are not committed yet, or that no source serves.
    pub(crate) pending: usize,
    /// Outputs no source proved (with `reject_unproven` only), with why.
    pub(crate) rejected: Vec<(u128, String)>,
    /// Per source (by index): how many of `outputs` it served the proof of.
    pub(crate) served_by: Vec<usize>,
}

impl Checker {
    /// Checks data from a source against a loaded L1 commitment; returns what to store (`proof`).
    pub(crate) fn verify_one(
        &self,
        listed: &ListedUtxo,
        data: &ExitData,
    ) -> Result<StoredOutput, SdkError> {
        let pos_u = listed.utxo_pos;
        let pos = UtxoPos::from_u128(pos_u).map_err(|e| mismatch(pos_u, e.to_string()))?;
        let commitment = self.commitments.of(pos.blknum())?;
        if commitment != keccak256((data.root, U256::from(data.block_timestamp)).abi_encode()) {
            return Err(mismatch(pos_u, "root and timestamp are not the block's commitment on L1"));
        }
        let proof = Proof::from_bytes(&data.proof).map_err(|e| mismatch(pos_u, e.to_string()))?;
        if !proof.verify(leaf_hash(&data.tx_bytes), usize::from(pos.tx_index()), data.root) {
            return Err(mismatch(pos_u, "inclusion proof does not verify"));
        }
        let tx = Transaction::decode(&data.tx_bytes).map_err(|e| mismatch(pos_u, e.to_string()))?;
        let out = tx
            .outputs
            .get(usize::from(pos.output_index()))
            .ok_or_else(|| mismatch(pos_u, "the transaction has no such output"))?;
        if out.owner != self.me {
            return Err(mismatch(pos_u, "the proven output is not this wallet's"));
        }
        if self.compare_listing && (out.token != listed.token || out.amount != listed.amount) {
            return Err(mismatch(pos_u, "the proven output is not the listed one"));
        }
        Ok(StoredOutput {
            utxo_pos: pos_u,
            owner: out.owner,
            token: out.token,
            amount: out.amount,
            tx_bytes: data.tx_bytes.clone(),
            proof: data.proof.clone(),
            root: data.root,
            block_timestamp: data.block_timestamp,
            spent_by: None,
            exiting: false,
            batch_claim: None,
            status: OutputStatus::Unspent,
            evidence: None,
            spent_source: None,
            verification: Verification::Proof,
            problem: None,
            checked_at: unix_now(),
        })
    }

    /// Whether `inc` is transaction `key` proven under its block's loaded L1 commitment: root and
    /// timestamp are the commitment, the proof verifies at its index, the bytes decode.
    fn proven(&self, (blknum, index): (u64, u16), inc: &Inclusion) -> Result<(), SdkError> {
        let wrong = |reason: &str| SdkError::ProofMismatch {
            utxo_pos: format!("of transaction {blknum}/{index}"),
            reason: reason.into(),
        };
        if self.commitments.of(blknum)?
            != keccak256((inc.root, U256::from(inc.block_timestamp)).abi_encode())
        {
            return Err(wrong("root and timestamp are not the block's commitment on L1"));
        }
        let proof = Proof::from_bytes(&inc.proof).map_err(|e| wrong(&e.to_string()))?;
        if !proof.verify(leaf_hash(&inc.tx_bytes), usize::from(index), inc.root) {
            return Err(wrong("inclusion proof does not verify"));
        }
        Transaction::decode(&inc.tx_bytes).map_err(|e| wrong(&e.to_string()))?;
        Ok(())
    }

    /// Verifies a batch of listed outputs, their exit data and signed transactions read with one
    /// `POST /v1/inclusions` per distinct transaction (a payment of four outputs to this wallet
    /// is one proof, not four), from the operator first and then each tower for what it did not
    /// serve or served wrong (DA-12). Returns the verified outputs and how many are pending
    /// (their block not committed yet, or served by no source); `None` if no source has the
    /// route (then use [`Checker::verify_by_exit_data`]). An output that one source proves wrong
    /// and no other proves right fails the batch ([`SdkError::ProofMismatch`] without towers,
    /// [`SdkError::AllSourcesFailed`] with them), or is rejected in a restore.
    pub(crate) async fn verify_listed(
        &self,
        listed: Vec<ListedUtxo>,
    ) -> Result<Option<Verified>, SdkError> {
        let mut wanted: Vec<(u64, u16)> = Vec::new();
        let mut by_key: HashMap<(u64, u16), Vec<ListedUtxo>> = HashMap::new();
        for l in listed {
            let pos =
                UtxoPos::from_u128(l.utxo_pos).map_err(|e| mismatch(l.utxo_pos, e.to_string()))?;
            let key = (pos.blknum(), pos.tx_index());
            let entry = by_key.entry(key).or_default();
            if entry.is_empty() {
                wanted.push(key);
            }
            entry.push(l);
        }
        self.commitments.load(&self.framework, wanted.iter().map(|(b, _)| *b)).await?;
        let check = |key: (u64, u16), inc: &Inclusion, signed: Option<&SignedTransaction>| {
            if self.commitments.get(key.0).is_none_or(|c| c == B256::ZERO) {
                return Check::NotCommitted;
            }
            // The source is judged by its proof; whether the proven transaction pays the listed
            // outputs to this wallet is the listing's truth, checked per output below.
            if let Err(e) = self.proven(key, inc) {
                return Check::Bad(e);
            }
            if is_deposit_block(key.0)
                || signed.is_some_and(|s| s.transaction.encode() == inc.tx_bytes.as_ref())
            {
                Check::Full
            } else {
                Check::Partial
            }
        };
        let Some(mut fetched) = self.fetch_checked(&wanted, check).await? else { return Ok(None) };
        let mut done = Verified { served_by: vec![0; self.sources.len()], ..Verified::default() };
        let mut signed = HashMap::new();
        for key in wanted {
            let listed = by_key.remove(&key).unwrap_or_default();
            if let Some((inc, s, source)) = fetched.accepted.get(&key) {
                let data = ExitData {
                    tx_bytes: inc.tx_bytes.clone(),
                    proof: inc.proof.clone(),
                    root: inc.root,
                    block_timestamp: inc.block_timestamp,
                };
                for l in &listed {
                    match self.verify_one(l, &data) {
                        Ok(o) => {
                            done.outputs.push(o);
                            done.served_by[*source] += 1;
                        }
                        Err(e) if self.reject_unproven => {
                            tracing::warn!(utxo_pos = l.utxo_pos, error = %e,
                                "listed output is not what its proven transaction pays: rejected");
                            done.rejected.push((l.utxo_pos, e.to_string()));
                        }
                        Err(e) => return Err(e),
                    }
                }
                if let Some(s) = s {
                    signed.insert(key, s.clone());
                }
                continue;
            }
            let committed = self.commitments.get(key.0).is_some_and(|c| c != B256::ZERO);
            if !committed || fetched.not_committed.contains(&key) || !fetched.lied.contains(&key) {
                // Not committed yet, or no source serves it: not stored, counted as pending.
                if committed && !fetched.not_committed.contains(&key) {
                    tracing::warn!(
                        blknum = key.0,
                        tx_index = key.1,
                        "committed on L1 but no source serves it: left pending"
                    );
                }
                done.pending += listed.len();
                continue;
            }
            let what = format!("the proof of output {}", listed[0].utxo_pos);
            let error = fetched.error(&self.sources, key, what);
            if !self.reject_unproven {
                return Err(error);
            }
            for l in &listed {
                tracing::warn!(utxo_pos = l.utxo_pos, %error, "listed output not proven: rejected");
                done.rejected.push((l.utxo_pos, error.to_string()));
            }
        }
        self.check_creations_with(&mut done.outputs, signed).await?;
        Ok(Some(done))
    }

    /// [`Checker::verify_listed`] for sources without `POST /v1/inclusions`: one exit-data
    /// request per output, from the operator first and then each tower while the answer fails
    /// verification or is refused.
    pub(crate) async fn verify_by_exit_data(
        &self,
        listed: Vec<ListedUtxo>,
    ) -> Result<Verified, SdkError> {
        let blocks: Vec<u64> = listed
            .iter()
            .filter_map(|l| UtxoPos::from_u128(l.utxo_pos).ok())
            .map(|p| p.blknum())
            .collect();
        self.commitments.load(&self.framework, blocks).await?;
        let mut done = Verified { served_by: vec![0; self.sources.len()], ..Verified::default() };
        for l in listed {
            let pos =
                UtxoPos::from_u128(l.utxo_pos).map_err(|e| mismatch(l.utxo_pos, e.to_string()))?;
            let what = format!("the exit data of output {}", l.utxo_pos);
            let mut not_committed = self.commitments.of(pos.blknum())? == B256::ZERO;
            let mut errors = Vec::new();
            let mut found = None;
            for (i, _, client) in self.sources.iter() {
                if not_committed {
                    break;
                }
                let e = match client.exit_data(l.utxo_pos).await {
                    Ok(data) => match self.verify_one(&l, &data) {
                        Ok(o) => {
                            self.sources.note_served(i, &what);
                            found = Some((o, i));
                            break;
                        }
                        Err(e) => e,
                    },
                    Err(SdkError::OperatorRefused { code, .. }) if code == "NotCommitted" => {
                        not_committed = true;
                        continue;
                    }
                    Err(e) => e,
                };
                self.sources.note_failure(i, &what, &e);
                errors.push((i, e));
            }
            match found {
                Some((o, i)) => {
                    done.served_by[i] += 1;
                    done.outputs.push(o);
                }
                None if not_committed => done.pending += 1,
                None if self.reject_unproven => {
                    let error = self.sources.failed(what, errors);
                    done.rejected.push((l.utxo_pos, error.to_string()));
                }
                None => return Err(self.sources.failed(what, errors)),
            }
        }
        self.check_creations(&mut done.outputs).await?;
        Ok(done)
    }

    /// Checks the transactions that created `outputs` (issue 13 item 7): signatures against the
    /// owners of the inputs and no value created, the signed transactions and the inputs'
    /// creating transactions from `POST /v1/inclusions` (operator first, then towers), each
    /// input proven under its block's L1 commitment. Sets `verification`, `status` and
    /// `problem`.
    pub(crate) async fn check_creations(
        &self,
        outputs: &mut [StoredOutput],
    ) -> Result<(), SdkError> {
        // The signed form of every payment in a child block.
        let mut wanted: Vec<(u64, u16)> = Vec::new();
        let mut tx_of: HashMap<(u64, u16), Bytes> = HashMap::new();
        for o in outputs.iter() {
            if let Ok(pos) = UtxoPos::from_u128(o.utxo_pos)
                && !is_deposit_block(pos.blknum())
                && tx_of.insert((pos.blknum(), pos.tx_index()), o.tx_bytes.clone()).is_none()
            {
                wanted.push((pos.blknum(), pos.tx_index()));
            }
        }
        let check = |key: (u64, u16), _: &Inclusion, signed: Option<&SignedTransaction>| {
            let Some(s) = signed else { return Check::Partial };
            if tx_of.get(&key).is_some_and(|t| s.transaction.encode() == t.as_ref()) {
                Check::Full
            } else {
                Check::Bad(SdkError::ProofMismatch {
                    utxo_pos: format!("of transaction {}/{}", key.0, key.1),
                    reason: "the signed transaction served is not the stored one".into(),
                })
            }
        };
        let Some(served) = self.fetch_checked(&wanted, check).await? else {
            for o in outputs.iter_mut() {
                Self::apply(o, TxCheck::Unchecked(NO_ROUTE.into()));
            }
            return Ok(());
        };
        let signed: HashMap<(u64, u16), SignedTransaction> =
            served.accepted.into_iter().filter_map(|(key, (_, s, _))| Some((key, s?))).collect();
        self.check_creations_with(outputs, signed).await
    }

    /// [`Checker::check_creations`] given the signed transactions of the outputs' own
    /// transactions (by block and index), as a source served them.
    async fn check_creations_with(
        &self,
        outputs: &mut [StoredOutput],
        signed: HashMap<(u64, u16), SignedTransaction>,
    ) -> Result<(), SdkError> {
        // The inputs' creating transactions, proven under L1.
        let mut input_keys: Vec<(u64, u16)> = Vec::new();
        let mut seen = HashSet::new();
        for s in signed.values() {
            for input in s.transaction.input_positions().unwrap_or_default() {
                if seen.insert((input.blknum(), input.tx_index())) {
                    input_keys.push((input.blknum(), input.tx_index()));
                }
            }
        }
        self.commitments.load(&self.framework, input_keys.iter().map(|(b, _)| *b)).await?;
        let check = |key: (u64, u16), inc: &Inclusion, _: Option<&SignedTransaction>| {
            if self.commitments.get(key.0).unwrap_or_default() == B256::ZERO {
                return Check::NotCommitted;
            }
            match self.proven(key, inc) {
                Ok(()) => Check::Full,
                Err(e) => Check::Bad(e),
            }
        };
        let Some(inputs) = self.fetch_checked(&input_keys, check).await? else {
            for o in outputs.iter_mut() {
                Self::apply(o, TxCheck::Unchecked(NO_ROUTE.into()));
            }
            return Ok(());
        };
        let mut resolved: HashMap<(u64, u16), InputData> = HashMap::new();
        for key in &input_keys {
            let data = if self.commitments.of(key.0)? == B256::ZERO {
                InputData::NotCommitted
            } else {
                match inputs.accepted.get(key) {
                    Some((inc, _, _)) => Transaction::decode(&inc.tx_bytes)
                        .map_or(InputData::NotServed, InputData::Proven),
                    None => InputData::NotServed,
                }
            };
            resolved.insert(*key, data);
        }
        for o in outputs.iter_mut() {
            let check = self.check_tx(o, &signed, &resolved);
            Self::apply(o, check);
        }
        Ok(())
    }

    fn apply(o: &mut StoredOutput, check: TxCheck) {
        match check {
            TxCheck::Valid => {
                o.verification = Verification::ProofTx;
                o.problem = None;
            }
            TxCheck::Unchecked(why) => {
                o.verification = Verification::Proof;
                o.problem = Some(why);
            }
            TxCheck::Invalid(why) => {
                o.verification = Verification::Proof;
                o.status = OutputStatus::Invalid;
                o.problem = Some(why);
            }
        }
    }

    /// `POST /v1/inclusions` of `keys`: the operator first, then each tower for the
    /// transactions no source served yet in a form `check` accepts (DA-12). `None` if no source
    /// has the route; an error if no source answered at all (with one source, its own error).
    pub(crate) async fn fetch_checked(
        &self,
        keys: &[(u64, u16)],
        check: impl Fn((u64, u16), &Inclusion, Option<&SignedTransaction>) -> Check,
    ) -> Result<Option<Fetched>, SdkError> {
        let mut out = Fetched::default();
        if keys.is_empty() {
            return Ok(Some(out));
        }
        let what = format!("{} inclusion(s), the first in block {}", keys.len(), keys[0].0);
        let mut open: Vec<(u64, u16)> = keys.to_vec();
        let mut partial: HashMap<(u64, u16), (Inclusion, Option<SignedTransaction>, usize)> =
            HashMap::new();
        let mut answered = false;
        let mut request_errors = Vec::new();
        let mut no_route = 0;
        for (i, source, client) in self.sources.iter() {
            if open.is_empty() {
                break;
            }
            let items = match client.inclusions(&open).await {
                Ok(items) => items,
                Err(e) => {
                    if matches!(&e, SdkError::OperatorRefused { code, .. } if code == "NotFound") {
                        no_route += 1;
                    }
                    self.sources.note_failure(i, &what, &e);
                    out.request_failures.push((i, SourceFailure::from(&e)));
                    request_errors.push((i, e));
                    continue;
                }
            };
            answered = true;
            let mut still = Vec::new();
            let mut served = 0usize;
            for (key, item) in open.iter().copied().zip(items) {
                let failure = match item {
                    InclusionItem::Found { inclusion, signed_tx, committed: true } => {
                        let signed =
                            signed_tx.as_ref().and_then(|s| SignedTransaction::decode(s).ok());
                        match check(key, &inclusion, signed.as_ref()) {
                            Check::Full => {
                                served += 1;
                                partial.remove(&key);
                                out.accepted.insert(key, (inclusion, signed, i));
                                continue;
                            }
                            Check::Partial => {
                                partial.entry(key).or_insert((inclusion, signed, i));
                                SdkError::OperatorRefused {
                                    code: "Incomplete".into(),
                                    message: "no signed transaction matching the proven one".into(),
                                }
                            }
                            Check::NotCommitted => {
                                out.not_committed.insert(key);
                                SdkError::OperatorRefused {
                                    code: "NotCommitted".into(),
                                    message: format!("block {} is not committed on L1", key.0),
                                }
                            }
                            Check::Bad(e) => {
                                tracing::warn!(%source, blknum = key.0, tx_index = key.1,
                                    error = %e, "served data that does not verify against L1: \
                                    skipped");
                                out.lied.insert(key);
                                e
                            }
                        }
                    }
                    InclusionItem::Found { committed: false, .. } => {
                        out.not_committed.insert(key);
                        SdkError::OperatorRefused {
                            code: "NotCommitted".into(),
                            message: format!("block {} is not committed yet", key.0),
                        }
                    }
                    InclusionItem::Refused { code, message } => {
                        if code == "NotCommitted" {
                            out.not_committed.insert(key);
                        }
                        SdkError::OperatorRefused { code, message }
                    }
                };
                out.failures.entry(key).or_default().push((i, failure));
                still.push(key);
            }
            if served > 0 {
                self.sources.note_served(i, &format!("{served} of {what}"));
            }
            open = still;
        }
        if !answered {
            if no_route == request_errors.len() {
                return Ok(None);
            }
            return Err(self.sources.failed(what, request_errors));
        }
        for (key, p) in partial {
            out.accepted.entry(key).or_insert(p);
        }
        Ok(Some(out))
    }

    fn check_tx(
        &self,
        o: &StoredOutput,
        signed: &HashMap<(u64, u16), SignedTransaction>,
        inputs_data: &HashMap<(u64, u16), InputData>,
    ) -> TxCheck {
        let Ok(pos) = UtxoPos::from_u128(o.utxo_pos) else {
            return TxCheck::Unchecked("bad position".into());
        };
        let Ok(tx) = Transaction::decode(&o.tx_bytes) else {
            return TxCheck::Invalid("malformed transaction".into());
        };
        let kind = match tx.check() {
            Ok((kind, _)) => kind,
            Err(e) => return TxCheck::Invalid(format!("malformed transaction: {e}")),
        };
        if is_deposit_block(pos.blknum()) {
            // The contract itself built the deposit block from the L1 deposit.
            return if kind == TxType::Deposit {
                TxCheck::Valid
            } else {
                TxCheck::Invalid("a non-deposit transaction in a deposit block".into())
            };
        }
        match kind {
            TxType::Payment => {}
            TxType::Deposit => {
                return TxCheck::Invalid(format!(
                    "a deposit-type transaction inside child block {}: it can never be exited \
                     (EXIT-1, ExitGameWrongBlockKind)",
                    pos.blknum()
                ));
            }
            TxType::Fee => {
                return TxCheck::Unchecked(
                    "a fee transaction: its value is the block's fees, which only a watcher checks"
                        .into(),
                );
            }
        }
        // The signed form: its transaction must be the one proven under L1.
        let signed = match signed.get(&(pos.blknum(), pos.tx_index())) {
            Some(s) if s.transaction == tx => s,
            _ => {
                return TxCheck::Unchecked(format!(
                    "no source served the signed transaction {}/{} matching its L1 \
                     commitment",
                    pos.blknum(),
                    pos.tx_index()
                ));
            }
        };
        let signers = match signed.recover_signers(&self.domain) {
            Ok(s) => s,
            Err(e) => return TxCheck::Invalid(format!("bad signature: {e}")),
        };
        let mut inputs = TokenSums::default();
        for (i, input) in tx.input_positions().unwrap_or_default().iter().enumerate() {
            if input.blknum() >= pos.blknum() {
                return TxCheck::Invalid(format!("input {i} is not older than its spend"));
            }
            let spent = match inputs_data.get(&(input.blknum(), input.tx_index())) {
                Some(InputData::Proven(t)) => t.outputs.get(usize::from(input.output_index())),
                Some(InputData::NotCommitted) => {
                    return TxCheck::Invalid(format!(
                        "input {i} spends block {}, which is not committed on L1",
                        input.blknum()
                    ));
                }
                _ => {
                    return TxCheck::Unchecked(format!(
                        "no source served block {} (input {i}) as committed on L1",
                        input.blknum()
                    ));
                }
            };
            let Some(spent) = spent else {
                return TxCheck::Invalid(format!("input {i} spends an output that does not exist"));
            };
            if signers.get(i) != Some(&spent.owner) {
                return TxCheck::Invalid(format!(
                    "input {i} is signed by {}, not by its owner {}",
                    signers.get(i).copied().unwrap_or_default(),
                    spent.owner
                ));
            }
            if inputs.add(spent.token, spent.amount).is_err() {
                return TxCheck::Invalid("input sums overflow".into());
            }
        }
        let outputs = match tx.output_sums() {
            Ok(s) => s,
            Err(e) => return TxCheck::Invalid(e.to_string()),
        };
        for (token, out) in outputs.iter() {
            if out > inputs.get(token) {
                return TxCheck::Invalid(format!(
                    "it creates value in token {token}: inputs {}, outputs {out}",
                    inputs.get(token)
                ));
            }
        }
        TxCheck::Valid
    }
}

const NO_ROUTE: &str =
    "the operator does not serve POST /v1/inclusions: the creating transaction was not checked";
