//! The wallet's local store of verified outputs: for each output it owns, the transaction, the
//! inclusion proof and the block's L1 timestamp — everything needed to exit without the operator.

use crate::error::SdkError;
use alloy::primitives::{Address, B256, Bytes, U256};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;

const OUTPUTS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("outputs");
/// Signed transactions this wallet sent, by hash: what an in-flight exit needs if their block is
/// withheld.
const SENT: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("sent");
/// What chain the store belongs to, and scan cursors.
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const IDENTITY: &str = "identity";
const IFE_CURSOR: &str = "inFlightExitCursor";
/// Every output seen as an input of a started in-flight exit, with the exit's id.
const IFE_INPUTS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("inFlightInputs");
/// What the L1 event scan saw touch this wallet's outputs (a kind byte, then 32 bytes): only
/// these need the per-output L1 reads of a re-check (see `Wallet::recheck`).
const TOUCHED: TableDefinition<'_, &[u8], ()> = TableDefinition::new("touched");
const EXIT_EVENT_CURSOR: &str = "exitEventCursor";
const LAST_SYNC: &str = "lastSync";

/// What an L1 event said of an output (the key space of [`ProofStore::touch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Touch {
    /// A standard exit of the position started (`ExitStarted`, owner this wallet).
    StandardExit = 1,
    /// The output id was finalized (`OutputFinalized`).
    Finalized = 2,
    /// An output of the in-flight exit (the transaction's hash) was piggybacked by this wallet.
    Piggybacked = 3,
    /// A claim of a batch exit was struck (`BatchClaimStruck`; key [`BatchClaimRef::key`]).
    BatchClaimStruck = 4,
}

/// What the last completed sync did, and when: the freshness `balance` and `utxos` report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord {
    /// When it completed (unix seconds).
    pub at: u64,
    /// Outputs the operator listed.
    pub listed: usize,
    /// Outputs newly verified and stored.
    pub added: usize,
    /// Listed outputs already stored.
    pub known: usize,
    /// Listed outputs whose blocks were not committed yet (not stored).
    pub pending: usize,
    /// Stored outputs found gone (spent, exiting, finalized).
    pub gone: usize,
    /// Stored outputs from invalid transactions.
    pub invalid: usize,
    /// The highest child or deposit block among the verified outputs.
    pub highest_block: u64,
    /// How long it took, in milliseconds.
    pub millis: u64,
}

/// The chain a store belongs to: outputs of one deployment mean nothing on another, even with the
/// same chain id and framework address (`scripts/devnet --reset` redeploys at the same address).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainIdentity {
    /// The L1 chain id.
    pub chain_id: u64,
    /// The framework contract.
    pub framework: Address,
    /// The hash of the L1 genesis block.
    pub genesis: B256,
    /// The L1 block (number, hash) that bound the exit games (`ExitGamesBound`): the deployment,
    /// when the node can say.
    pub deployment: Option<(u64, B256)>,
}

impl ChainIdentity {
    /// Whether `other` is certainly another chain or deployment than `self`.
    pub fn differs_from(&self, other: &Self) -> bool {
        self.chain_id != other.chain_id
            || self.framework != other.framework
            || self.genesis != other.genesis
            || matches!((self.deployment, other.deployment), (Some(a), Some(b)) if a != b)
    }
}

impl std::fmt::Display for ChainIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "chain {} (genesis {}), framework {}",
            self.chain_id, self.genesis, self.framework
        )?;
        match self.deployment {
            Some((n, h)) => write!(f, " deployed in L1 block {n} ({h})"),
            None => write!(f, " (deployment block unknown)"),
        }
    }
}

/// Where an output stands, as the wallet last checked it against the operator and L1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutputStatus {
    /// Unspent as far as the wallet can tell: spendable and exitable.
    #[default]
    Unspent,
    /// Spent on the child chain (see `evidence`): neither spendable nor exitable.
    Spent,
    /// Its standard exit started on L1 (LEDGER-9, kind 1).
    Exiting,
    /// An input of a started in-flight exit, or piggybacked as an output of one (LEDGER-9,
    /// kinds 2 and 3).
    InFlight,
    /// A live claim of a batch exit (EXIT-12, see `batch_claim`): a standard exit of it would be
    /// challenged (CHAL-10); its owner is paid by the claim's payout (EXIT-15).
    BatchClaimed,
    /// Finalized on L1 (OUT-2): paid out, gone for good.
    Finalized,
    /// Its block's commitment on L1 is no longer the one it was verified under (an L1 reorg).
    NotOnChain,
    /// The transaction that created it is invalid (see `problem`): the block is invalid, the
    /// operator byzantine. Never counted.
    Invalid,
}

/// What showed an output `spent` (spec: DA-11). A re-check keeps a `spent` status against a
/// later listing only when it came from evidence the wallet may hold to: the operator's own
/// listing, L1, or this wallet's spend. A tower's listing is never such evidence: an output it
/// leaves out is unverifiable (a tower is trusted for nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SpentSource {
    /// The operator no longer lists it (LEDGER-9: spent or exiting); it speaks for every block.
    Operator,
    /// L1: its standard exit was challenged with a spend its owner signed.
    L1,
    /// This wallet signed a transaction spending it.
    Wallet,
    /// No tower listed it while the operator was down. Only older versions of the wallet wrote
    /// this (they took a tower's unverifiable `syncedBlock` as evidence); a re-check now treats
    /// such an output as never marked.
    Towers,
}

impl SpentSource {
    /// The source of a `spent` status an older store recorded only as its evidence text.
    fn from_evidence(evidence: &str) -> Option<Self> {
        [
            ("spent by this wallet's transaction", Self::Wallet),
            ("its standard exit was challenged on L1", Self::L1),
            ("the operator no longer lists it", Self::Operator),
            ("the operator did not answer, and no tower", Self::Towers),
        ]
        .into_iter()
        .find_map(|(text, source)| evidence.starts_with(text).then_some(source))
    }
}

/// Which checks a stored output passed (spec: issue 13 item 7; see `Wallet::sync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Verification {
    /// Only its inclusion under the block's L1 commitment (and owner, token, amount).
    #[default]
    #[serde(rename = "proof")]
    Proof,
    /// Also the creating transaction: its type fits its block, its signatures recover to the
    /// owners of the inputs, and it creates no value, given the inputs proven under their blocks.
    #[serde(rename = "proof+tx")]
    ProofTx,
    /// Also a configured watcher validated the chain up to its block and saw nothing bad there or
    /// before: final.
    #[serde(rename = "proof+tx+watcher")]
    ProofTxWatcher,
}

/// Where an output is claimed in a batch exit (EXIT-12): what its payout and a challenge name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchClaimRef {
    /// The batch (`startBatchExit`'s id, from 1).
    pub batch_id: u64,
    /// The claim's index in the batch's claim tree.
    pub index: u32,
    /// The batch's token.
    pub token: Address,
    /// Who started the batch (this wallet, or an exitor it authorized).
    pub exitor: Address,
    /// The L1 transaction that started it.
    pub l1_tx: B256,
    /// The L1 block of that transaction (where the batch's `BatchExitGroup` events are).
    pub l1_block: u64,
    /// When the batch can be processed (`exitableAt`, unix seconds; EXIT-13).
    pub exitable_at: u64,
}

impl BatchClaimRef {
    /// The key of [`Touch::BatchClaimStruck`]: the batch id in the high 128 bits, the index in
    /// the low ones.
    pub fn key(batch_id: u64, index: u64) -> B256 {
        B256::from((U256::from(batch_id) << 128) | U256::from(index))
    }
}

/// A verified output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredOutput {
    /// Packed position (POS-1).
    pub utxo_pos: u128,
    /// Owner.
    pub owner: Address,
    /// Token (address(0) = ETH).
    pub token: Address,
    /// Amount.
    pub amount: U256,
    /// The creating transaction (ENC-1).
    pub tx_bytes: Bytes,
    /// Its inclusion proof (MERKLE-4).
    pub proof: Bytes,
    /// The block's root.
    pub root: B256,
    /// The block's L1 timestamp (MERKLE-6).
    pub block_timestamp: u64,
    /// Spent by a transaction of this wallet (pending or included).
    pub spent_by: Option<B256>,
    /// A standard exit was started for it.
    pub exiting: bool,
    /// The batch exit claiming it, if one does (by this wallet or an exitor it authorized).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_claim: Option<BatchClaimRef>,
    /// Where it stands, as last re-checked (`Wallet::sync`, and before sends and exits).
    #[serde(default)]
    pub status: OutputStatus,
    /// What showed the status, when not `unspent` (e.g. "the operator no longer lists it").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Who showed a `spent` status (none for any other status; see
    /// [`StoredOutput::spent_source`] for stores written before this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_source: Option<SpentSource>,
    /// Which checks it passed.
    #[serde(default)]
    pub verification: Verification,
    /// A check it failed or could not make.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// When (unix seconds) its status was last set by a re-check (the store's last sync says
    /// when every output was last re-checked).
    #[serde(default)]
    pub checked_at: u64,
}

impl StoredOutput {
    /// Whether it can be spent and counted: unspent as far as the wallet knows, and its creating
    /// transaction checked (`proof+tx` at least).
    pub fn is_spendable(&self) -> bool {
        self.status == OutputStatus::Unspent
            && self.spent_by.is_none()
            && !self.exiting
            && self.verification >= Verification::ProofTx
    }

    /// Who showed its `spent` status: the recorded source, or for a store written before it was
    /// recorded, the source its evidence text names. `None` when not `spent`, or unknown.
    pub fn spent_source(&self) -> Option<SpentSource> {
        if self.status != OutputStatus::Spent {
            return None;
        }
        self.spent_source.or_else(|| self.evidence.as_deref().and_then(SpentSource::from_evidence))
    }

    /// Whether its `spent` status holds against a later listing that shows it unspent from a
    /// source other than the operator: any `spent` status but one shown by towers alone
    /// (DA-11: a tower's word is no evidence).
    pub fn is_spent_on_evidence(&self) -> bool {
        self.status == OutputStatus::Spent && self.spent_source() != Some(SpentSource::Towers)
    }

    /// Whether it is on its way out through the exit game (ours or someone's).
    pub fn is_exiting(&self) -> bool {
        matches!(
            self.status,
            OutputStatus::Exiting | OutputStatus::InFlight | OutputStatus::BatchClaimed
        ) || (self.exiting && self.status == OutputStatus::Unspent)
    }
}

/// The store.
#[derive(Debug)]
pub struct ProofStore {
    db: Database,
}

impl ProofStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, SdkError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SdkError::Store(e.to_string()))?;
        }
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(OUTPUTS)?;
        tx.open_table(SENT)?;
        tx.open_table(META)?;
        tx.open_table(IFE_INPUTS)?;
        tx.open_table(TOUCHED)?;
        tx.commit()?;
        Ok(Self { db })
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, SdkError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(META)?.get(key)?.map(|v| v.value().to_vec()))
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), SdkError> {
        let tx = self.db.begin_write()?;
        tx.open_table(META)?.insert(key, value)?;
        tx.commit()?;
        Ok(())
    }

    /// The chain the store was written for (none for a new store or one older than this field).
    pub fn identity(&self) -> Result<Option<ChainIdentity>, SdkError> {
        self.meta(IDENTITY)?
            .map(|v| serde_json::from_slice(&v).map_err(|e| SdkError::Store(e.to_string())))
            .transpose()
    }

    /// Binds the store to `current`: refuses (`Err(Some(..))`) if it was written for another
    /// chain or deployment; records `current` otherwise.
    pub fn bind(&self, current: &ChainIdentity) -> Result<Result<(), ChainIdentity>, SdkError> {
        if let Some(stored) = self.identity()? {
            if stored.differs_from(current) {
                return Ok(Err(stored));
            }
            if stored == *current || current.deployment.is_none() {
                return Ok(Ok(()));
            }
        }
        let json = serde_json::to_vec(current).map_err(|e| SdkError::Store(e.to_string()))?;
        self.put_meta(IDENTITY, &json)?;
        Ok(Ok(()))
    }

    /// The next L1 block to scan for in-flight exits.
    pub fn in_flight_cursor(&self) -> Result<Option<u64>, SdkError> {
        Ok(self.meta(IFE_CURSOR)?.and_then(|v| v.try_into().ok()).map(u64::from_be_bytes))
    }

    /// Records that `pos` is an input of the in-flight exit `exit_id`.
    pub fn put_in_flight_input(&self, pos: u128, exit_id: B256) -> Result<(), SdkError> {
        let tx = self.db.begin_write()?;
        tx.open_table(IFE_INPUTS)?.insert(pos, exit_id.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// The in-flight exit `pos` is an input of, if one was seen.
    pub fn in_flight_input(&self, pos: u128) -> Result<Option<B256>, SdkError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(IFE_INPUTS)?.get(pos)?.map(|v| B256::from_slice(v.value())))
    }

    /// Records the next L1 block to scan for in-flight exits.
    pub fn set_in_flight_cursor(&self, block: u64) -> Result<(), SdkError> {
        self.put_meta(IFE_CURSOR, &block.to_be_bytes())
    }

    /// Records what an L1 event said of an output (idempotent).
    pub fn touch(&self, items: &[(Touch, B256)]) -> Result<(), SdkError> {
        if items.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(TOUCHED)?;
            for (kind, id) in items {
                let mut key = [0u8; 33];
                key[0] = *kind as u8;
                key[1..].copy_from_slice(id.as_slice());
                table.insert(key.as_slice(), ())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Everything [`ProofStore::touch`] recorded.
    pub fn touched(&self) -> Result<std::collections::HashSet<(u8, B256)>, SdkError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TOUCHED)?;
        let mut out = std::collections::HashSet::new();
        for entry in table.iter()? {
            let (k, _) = entry?;
            let k = k.value();
            if k.len() == 33 {
                out.insert((k[0], B256::from_slice(&k[1..])));
            }
        }
        Ok(out)
    }

    /// The next L1 block to scan for exit events.
    pub fn exit_event_cursor(&self) -> Result<Option<u64>, SdkError> {
        Ok(self.meta(EXIT_EVENT_CURSOR)?.and_then(|v| v.try_into().ok()).map(u64::from_be_bytes))
    }

    /// Records the next L1 block to scan for exit events.
    pub fn set_exit_event_cursor(&self, block: u64) -> Result<(), SdkError> {
        self.put_meta(EXIT_EVENT_CURSOR, &block.to_be_bytes())
    }

    /// What the last completed sync did.
    pub fn last_sync(&self) -> Result<Option<SyncRecord>, SdkError> {
        self.meta(LAST_SYNC)?
            .map(|v| serde_json::from_slice(&v).map_err(|e| SdkError::Store(e.to_string())))
            .transpose()
    }

    /// Records a completed sync.
    pub fn set_last_sync(&self, record: &SyncRecord) -> Result<(), SdkError> {
        let json = serde_json::to_vec(record).map_err(|e| SdkError::Store(e.to_string()))?;
        self.put_meta(LAST_SYNC, &json)
    }

    /// Stores (or replaces) many outputs in one store transaction: all or none.
    pub fn put_many(&self, outputs: &[StoredOutput]) -> Result<(), SdkError> {
        if outputs.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(OUTPUTS)?;
            for o in outputs {
                let json = serde_json::to_vec(o).map_err(|e| SdkError::Store(e.to_string()))?;
                table.insert(o.utxo_pos, json.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores (or replaces) an output.
    pub fn put(&self, output: &StoredOutput) -> Result<(), SdkError> {
        let json = serde_json::to_vec(output).map_err(|e| SdkError::Store(e.to_string()))?;
        let tx = self.db.begin_write()?;
        tx.open_table(OUTPUTS)?.insert(output.utxo_pos, json.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Remembers a signed transaction this wallet sent (ENC-4 bytes).
    pub fn put_sent(&self, hash: B256, signed_tx: &[u8]) -> Result<(), SdkError> {
        let tx = self.db.begin_write()?;
        tx.open_table(SENT)?.insert(hash.as_slice(), signed_tx)?;
        tx.commit()?;
        Ok(())
    }

    /// A signed transaction this wallet sent.
    pub fn sent(&self, hash: B256) -> Result<Option<Vec<u8>>, SdkError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(SENT)?.get(hash.as_slice())?.map(|v| v.value().to_vec()))
    }

    /// One output.
    pub fn get(&self, utxo_pos: u128) -> Result<Option<StoredOutput>, SdkError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(OUTPUTS)?;
        match table.get(utxo_pos)? {
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|e| SdkError::Store(e.to_string())),
            None => Ok(None),
        }
    }

    /// Every stored output.
    pub fn all(&self) -> Result<Vec<StoredOutput>, SdkError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(OUTPUTS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, v) = entry?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|e| SdkError::Store(e.to_string()))?,
            );
        }
        Ok(out)
    }
}
