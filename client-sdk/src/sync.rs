//! Batch verification for [`crate::Wallet::sync`] (issue 15): outputs are checked many at a time,
//! with one L1 read per block (cached for the sync) and the creating transactions from the
//! operator's batch inclusion route — never whole blocks.

use crate::{
    client::{ExitData, InclusionItem, ListedUtxo, OperatorClient},
    error::SdkError,
    store::{OutputStatus, StoredOutput, Verification},
};
use alloy::{
    primitives::{Address, B256, U256, keccak256},
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
    /// Could not be checked (the operator did not serve or mis-served the data); not a verdict.
    Unchecked(String),
    /// The transaction is invalid: the block is, and the operator is byzantine.
    Invalid(String),
}

/// L1 block commitments read during one sync: one `blockCommitments` call per block, however
/// many outputs it holds. Per sync only: a re-check must see a commitment that changed (a reorg).
#[derive(Clone, Debug, Default)]
pub(crate) struct Commitments(Arc<Mutex<HashMap<u64, B256>>>);

impl Commitments {
    fn get(&self, blknum: u64) -> Option<B256> {
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
    pub(crate) client: OperatorClient,
    pub(crate) framework: PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    pub(crate) domain: SigningDomain,
    pub(crate) me: Address,
    pub(crate) commitments: Commitments,
}

/// What one input of a transaction resolved to.
enum InputData {
    /// Its creating transaction, proven under the L1 commitment of its block.
    Proven(Transaction),
    /// Its block is not committed on L1 at all.
    NotCommitted,
    /// The operator did not serve it as committed under L1.
    NotServed,
}

impl Checker {
    /// Checks operator data against a loaded L1 commitment; returns what to store (`proof`).
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
        if out.owner != self.me || out.token != listed.token || out.amount != listed.amount {
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
            verification: Verification::Proof,
            problem: None,
            checked_at: unix_now(),
        })
    }

    /// Verifies a batch of listed outputs, their exit data and signed transactions read with one
    /// `POST /v1/inclusions` per distinct transaction (a payment of four outputs to this wallet
    /// is one proof, not four). Returns the verified outputs and how many are pending (their
    /// block not committed yet); `None` if the operator has no such route (then use
    /// [`Checker::verify_batch`] with per-output exit data).
    pub(crate) async fn verify_listed(
        &self,
        listed: Vec<ListedUtxo>,
    ) -> Result<Option<(Vec<StoredOutput>, usize)>, SdkError> {
        let mut wanted: Vec<(u64, u16)> = Vec::new();
        let mut seen = HashSet::new();
        for l in &listed {
            let pos =
                UtxoPos::from_u128(l.utxo_pos).map_err(|e| mismatch(l.utxo_pos, e.to_string()))?;
            if seen.insert((pos.blknum(), pos.tx_index())) {
                wanted.push((pos.blknum(), pos.tx_index()));
            }
        }
        let Some(served) = self.fetch(&wanted).await? else { return Ok(None) };
        let mut by_tx = HashMap::new();
        let mut signed = HashMap::new();
        for (key, item) in wanted.iter().zip(served) {
            if let InclusionItem::Found { inclusion, signed_tx, committed: true } = item {
                if let Some(s) = signed_tx.as_ref().and_then(|s| SignedTransaction::decode(s).ok())
                {
                    signed.insert(*key, s);
                }
                by_tx.insert(*key, inclusion);
            }
        }
        let mut items = Vec::new();
        let mut pending = 0;
        for l in listed {
            let pos =
                UtxoPos::from_u128(l.utxo_pos).map_err(|e| mismatch(l.utxo_pos, e.to_string()))?;
            match by_tx.get(&(pos.blknum(), pos.tx_index())) {
                Some(inc) => items.push((
                    l,
                    ExitData {
                        tx_bytes: inc.tx_bytes.clone(),
                        proof: inc.proof.clone(),
                        root: inc.root,
                        block_timestamp: inc.block_timestamp,
                    },
                )),
                // Not committed yet, or not served: not stored, counted as pending.
                None => pending += 1,
            }
        }
        let blocks = items.iter().filter_map(|(l, _)| UtxoPos::from_u128(l.utxo_pos).ok());
        self.commitments.load(&self.framework, blocks.map(|p| p.blknum())).await?;
        let mut outputs =
            items.iter().map(|(l, d)| self.verify_one(l, d)).collect::<Result<Vec<_>, _>>()?;
        self.check_creations_with(&mut outputs, signed).await?;
        Ok(Some((outputs, pending)))
    }

    /// Verifies a batch of listed outputs with their exit data: each proof under its block's L1
    /// commitment, then each creating transaction (see [`Checker::check_creations`]). A mismatch
    /// fails the batch: nothing of it is stored.
    pub(crate) async fn verify_batch(
        &self,
        items: Vec<(ListedUtxo, ExitData)>,
    ) -> Result<Vec<StoredOutput>, SdkError> {
        let blocks = items.iter().filter_map(|(l, _)| UtxoPos::from_u128(l.utxo_pos).ok());
        self.commitments.load(&self.framework, blocks.map(|p| p.blknum())).await?;
        let mut outputs =
            items.iter().map(|(l, d)| self.verify_one(l, d)).collect::<Result<Vec<_>, _>>()?;
        self.check_creations(&mut outputs).await?;
        Ok(outputs)
    }

    /// Checks the transactions that created `outputs` (issue 13 item 7): signatures against the
    /// owners of the inputs and no value created, the signed transactions and the inputs'
    /// creating transactions from `POST /v1/inclusions`, each input proven under its block's L1
    /// commitment. Sets `verification`, `status` and `problem`.
    pub(crate) async fn check_creations(
        &self,
        outputs: &mut [StoredOutput],
    ) -> Result<(), SdkError> {
        // The signed form of every payment in a child block.
        let mut wanted: Vec<(u64, u16)> = Vec::new();
        let mut seen = HashSet::new();
        for o in outputs.iter() {
            if let Ok(pos) = UtxoPos::from_u128(o.utxo_pos)
                && !is_deposit_block(pos.blknum())
                && seen.insert((pos.blknum(), pos.tx_index()))
            {
                wanted.push((pos.blknum(), pos.tx_index()));
            }
        }
        let Some(served) = self.fetch(&wanted).await? else {
            for o in outputs.iter_mut() {
                Self::apply(o, TxCheck::Unchecked(NO_ROUTE.into()));
            }
            return Ok(());
        };
        let mut signed: HashMap<(u64, u16), SignedTransaction> = HashMap::new();
        for (key, item) in wanted.iter().zip(&served) {
            if let InclusionItem::Found { signed_tx: Some(s), .. } = item
                && let Ok(s) = SignedTransaction::decode(s)
            {
                signed.insert(*key, s);
            }
        }
        self.check_creations_with(outputs, signed).await
    }

    /// [`Checker::check_creations`] given the signed transactions of the outputs' own
    /// transactions (by block and index), as the operator served them.
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
        let Some(inputs) = self.fetch(&input_keys).await? else {
            for o in outputs.iter_mut() {
                Self::apply(o, TxCheck::Unchecked(NO_ROUTE.into()));
            }
            return Ok(());
        };
        let mut resolved: HashMap<(u64, u16), InputData> = HashMap::new();
        for ((blknum, index), item) in input_keys.iter().zip(inputs) {
            let commitment = self.commitments.of(*blknum)?;
            let data = if commitment == B256::ZERO {
                InputData::NotCommitted
            } else {
                match item {
                    InclusionItem::Found { inclusion: inc, committed: true, .. }
                        if commitment
                            == keccak256(
                                (inc.root, U256::from(inc.block_timestamp)).abi_encode(),
                            )
                            && Proof::from_bytes(&inc.proof).is_ok_and(|p| {
                                p.verify(leaf_hash(&inc.tx_bytes), usize::from(*index), inc.root)
                            }) =>
                    {
                        Transaction::decode(&inc.tx_bytes)
                            .map_or(InputData::NotServed, InputData::Proven)
                    }
                    _ => InputData::NotServed,
                }
            };
            resolved.insert((*blknum, *index), data);
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

    /// `POST /v1/inclusions` of `keys`, or `None` if the operator does not have the route.
    async fn fetch(&self, keys: &[(u64, u16)]) -> Result<Option<Vec<InclusionItem>>, SdkError> {
        if keys.is_empty() {
            return Ok(Some(Vec::new()));
        }
        match self.client.inclusions(keys).await {
            Ok(v) => Ok(Some(v)),
            Err(SdkError::OperatorRefused { code, .. }) if code == "NotFound" => Ok(None),
            Err(e) => Err(e),
        }
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
                    "the operator did not serve the signed transaction {}/{} matching its L1 \
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
                        "the operator did not serve block {} (input {i}) as committed on L1",
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
