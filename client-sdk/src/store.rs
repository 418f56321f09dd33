//! The wallet's local store of verified outputs: for each output it owns, the transaction, the
//! inclusion proof and the block's L1 timestamp — everything needed to exit without the operator.

use crate::error::SdkError;
use alloy::primitives::{Address, B256, Bytes, U256};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::{
    path::Path,
    sync::OnceLock,
    time::{Duration, Instant},
};

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
/// What the wallet did and saw, by `kind:id` (see [`HistoryEntry`]).
const HISTORY: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("history");
/// A token's `decimals()` and `symbol()` as read from L1 (`token:<address>`), so amounts format
/// without L1.
const TOKEN_PREFIX: &str = "token:";
/// The last exit schedule read from L1, with when (`exits` without L1 shows it).
const EXIT_SCHEDULE: &str = "exitSchedule";

/// How long [`ProofStore::open`] waits for another process to release the store.
pub const LOCK_WAIT: Duration = Duration::from_secs(600);
/// After how long a wait for the store is announced (see [`on_lock_wait`]).
pub const LOCK_NOTICE_AFTER: Duration = Duration::from_secs(1);

static LOCK_NOTICE: OnceLock<fn(&Path)> = OnceLock::new();

/// Sets what to do, once per open, when a store is still held by another process after
/// [`LOCK_NOTICE_AFTER`] (the CLI says so on stderr). Set once per process; later calls are
/// ignored.
pub fn on_lock_wait(notice: fn(&Path)) {
    let _ = LOCK_NOTICE.set(notice);
}

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

/// What kind of event a [`HistoryEntry`] is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HistoryKind {
    /// A deposit from L1 (its output).
    #[default]
    Deposit,
    /// A payment this wallet sent.
    Sent,
    /// A payment to this wallet (an output of someone else's transaction).
    Received,
    /// Standard exits this wallet started (one L1 transaction).
    Exit,
    /// Outputs claimed in batch exits (one L1 transaction).
    BatchExit,
    /// An in-flight exit this wallet started.
    InFlightExit,
    /// A piggyback on an in-flight exit.
    Piggyback,
    /// Exits processed by this wallet (`processExits`).
    Process,
    /// Batch claims paid (`payout`).
    Payout,
    /// A withdrawal of credited funds to L1.
    Withdraw,
}

impl std::fmt::Display for HistoryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = serde_json::to_value(self).ok();
        f.write_str(s.as_ref().and_then(|v| v.as_str()).unwrap_or("?"))
    }
}

/// One line of the wallet's history ([`ProofStore::history`]). JSON: camelCase, amounts and
/// positions as decimal strings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// When (unix seconds): when the wallet did it, or a received output's block timestamp;
    /// `None` when not known.
    pub at: Option<u64>,
    /// What happened.
    pub kind: HistoryKind,
    /// The token (address 0: ETH).
    pub token: Address,
    /// The amount moved (base units; for exits, what the exited outputs hold).
    #[serde(with = "decimal")]
    pub amount: U256,
    /// A fee paid, if any (base units).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "decimal_opt")]
    pub fee: Option<U256>,
    /// A bond locked on L1 (wei), returned when the exit settles unchallenged.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "decimal_opt")]
    pub bond: Option<U256>,
    /// The other side: the recipient of a payment sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<Address>,
    /// Outputs involved (positions).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "decimal_positions")]
    pub positions: Vec<u128>,
    /// The child-chain transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<B256>,
    /// The L1 transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1_tx: Option<B256>,
    /// The child block a payment was committed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blknum: Option<u64>,
}

/// What a token says of itself (`decimals()`, `symbol()`), kept so amounts format without L1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its decimals.
    pub decimals: u8,
    /// Its symbol (may be empty).
    pub symbol: String,
}

/// What a wallet holds of one token, from its stored outputs as last re-checked: the same sums
/// as `Wallet::balance` and its siblings, computable from the store alone (without L1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balances {
    /// Spendable (`proof+tx` at least, unspent, not exiting).
    pub balance: U256,
    /// The part of it a watcher vouched for (`proof+tx+watcher`).
    pub final_balance: U256,
    /// On its way out through the exit game.
    pub exiting: U256,
    /// Unspent outputs checked only against their inclusion (`proof`): not counted.
    pub unverified: U256,
}

impl Balances {
    /// The sums over `outputs` of `token`.
    pub fn of(outputs: &[StoredOutput], token: Address) -> Self {
        let mut b = Self::default();
        for o in outputs.iter().filter(|o| o.token == token) {
            if o.is_spendable() {
                b.balance += o.amount;
                if o.verification == Verification::ProofTxWatcher {
                    b.final_balance += o.amount;
                }
            }
            if o.is_exiting() {
                b.exiting += o.amount;
            }
            if o.status == OutputStatus::Unspent
                && o.spent_by.is_none()
                && !o.exiting
                && o.verification == Verification::Proof
            {
                b.unverified += o.amount;
            }
        }
        b
    }
}

/// `U256` as a decimal string in JSON (alloy writes hex).
mod decimal {
    use alloy::primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &U256, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<U256, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `Option<U256>` as a decimal string in JSON.
mod decimal_opt {
    use alloy::primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer};

    // serde's `with` hands the field by reference.
    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(v: &Option<U256>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<U256>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Positions (`u128`) as decimal strings in JSON (numbers would lose precision in JavaScript).
mod decimal_positions {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

    pub(super) fn serialize<S: Serializer>(v: &[u128], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for p in v {
            seq.serialize_element(&p.to_string())?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u128>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

/// The store.
#[derive(Debug)]
pub struct ProofStore {
    db: Database,
}

impl ProofStore {
    /// Opens (or creates) the store at `path`. If another process (another `plasma` command on
    /// the same wallet) holds it, waits up to [`LOCK_WAIT`] for it instead of failing: the
    /// commands of one wallet run one after another.
    pub fn open(path: &Path) -> Result<Self, SdkError> {
        Self::open_waiting(path, LOCK_WAIT)
    }

    /// [`ProofStore::open`], waiting at most `max_wait` for another process to release the store
    /// ([`SdkError::StoreLocked`] after that).
    pub fn open_waiting(path: &Path, max_wait: Duration) -> Result<Self, SdkError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SdkError::Store(e.to_string()))?;
        }
        let started = Instant::now();
        let mut noticed = false;
        let db = loop {
            match Database::create(path) {
                Ok(db) => break db,
                // redb holds an OS file lock for as long as a process has the database open;
                // nothing signals its release, so the lock is tried again every 100 ms.
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    let waited = started.elapsed();
                    if waited >= max_wait {
                        return Err(SdkError::StoreLocked {
                            path: path.display().to_string(),
                            waited_secs: waited.as_secs(),
                        });
                    }
                    if !noticed && waited >= LOCK_NOTICE_AFTER {
                        noticed = true;
                        tracing::info!(path = %path.display(), "store in use: waiting for it");
                        if let Some(notice) = LOCK_NOTICE.get() {
                            notice(path);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        };
        if noticed {
            tracing::info!(path = %path.display(), waited_ms = started.elapsed().as_millis() as u64, "store free");
        }
        let tx = db.begin_write()?;
        tx.open_table(OUTPUTS)?;
        tx.open_table(SENT)?;
        tx.open_table(META)?;
        tx.open_table(IFE_INPUTS)?;
        tx.open_table(TOUCHED)?;
        tx.open_table(HISTORY)?;
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

    /// Remembers a signed transaction this wallet is about to send and marks the stored outputs
    /// it spends as spent by it, in one store transaction: all or none. Written before the
    /// transaction leaves the wallet, so no crash or lost answer leaves a signed spend whose
    /// inputs look unspent (an exit of one would be challenged with it, EXIT-4).
    pub fn put_sent_spending(
        &self,
        hash: B256,
        signed_tx: &[u8],
        spends: &[u128],
    ) -> Result<(), SdkError> {
        let tx = self.db.begin_write()?;
        {
            tx.open_table(SENT)?.insert(hash.as_slice(), signed_tx)?;
            let mut table = tx.open_table(OUTPUTS)?;
            for pos in spends {
                let Some(mut o) = table
                    .get(*pos)?
                    .map(|v| serde_json::from_slice::<StoredOutput>(v.value()))
                    .transpose()
                    .map_err(|e| SdkError::Store(e.to_string()))?
                else {
                    continue;
                };
                o.spent_by = Some(hash);
                let json = serde_json::to_vec(&o).map_err(|e| SdkError::Store(e.to_string()))?;
                table.insert(*pos, json.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Takes back [`ProofStore::put_sent_spending`]'s marks of `hash` on `spends` (the operator
    /// refused the transaction: its inputs were not spent), in one store transaction.
    pub fn unmark_spent_by(&self, hash: B256, spends: &[u128]) -> Result<(), SdkError> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(OUTPUTS)?;
            for pos in spends {
                let Some(mut o) = table
                    .get(*pos)?
                    .map(|v| serde_json::from_slice::<StoredOutput>(v.value()))
                    .transpose()
                    .map_err(|e| SdkError::Store(e.to_string()))?
                else {
                    continue;
                };
                if o.spent_by == Some(hash) {
                    o.spent_by = None;
                    // A `spent` status whose only evidence was this mark goes with it; the next
                    // re-check sets it from the chain again.
                    if o.spent_source() == Some(SpentSource::Wallet) {
                        o.status = OutputStatus::Unspent;
                        o.evidence = None;
                        o.spent_source = None;
                    }
                    let json =
                        serde_json::to_vec(&o).map_err(|e| SdkError::Store(e.to_string()))?;
                    table.insert(*pos, json.as_slice())?;
                }
            }
        }
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

    /// Records `entry` under `key` (`kind:id`, e.g. `sent:<hash>`), replacing what was recorded
    /// there: the wallet's own account of what it did, for `plasma history`.
    pub fn record(&self, key: &str, entry: &HistoryEntry) -> Result<(), SdkError> {
        let json = serde_json::to_vec(entry).map_err(|e| SdkError::Store(e.to_string()))?;
        let tx = self.db.begin_write()?;
        tx.open_table(HISTORY)?.insert(key, json.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Everything [`ProofStore::record`] recorded, by key.
    pub fn recorded(&self) -> Result<Vec<(String, HistoryEntry)>, SdkError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(HISTORY)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let e =
                serde_json::from_slice(v.value()).map_err(|e| SdkError::Store(e.to_string()))?;
            out.push((k.value().to_owned(), e));
        }
        Ok(out)
    }

    /// Every signed transaction this wallet sent, by hash.
    pub fn all_sent(&self) -> Result<Vec<(B256, Vec<u8>)>, SdkError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(SENT)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.push((B256::from_slice(k.value()), v.value().to_vec()));
        }
        Ok(out)
    }

    /// The wallet's history, oldest first: what it recorded (sends, deposits, exits, withdrawals
    /// …) and what its stored outputs and sent transactions show that it did not record itself
    /// (payments received, deposits and sends made by other programs on this store). Received
    /// payments are dated by their block's L1 timestamp; entries without a known time come last.
    pub fn history(&self, me: Address) -> Result<Vec<HistoryEntry>, SdkError> {
        let recorded = self.recorded()?;
        let keys: std::collections::HashSet<&str> =
            recorded.iter().map(|(k, _)| k.as_str()).collect();
        let sent = self.all_sent()?;
        let sent_hashes: std::collections::HashSet<B256> = sent.iter().map(|(h, _)| *h).collect();
        let mut out: Vec<HistoryEntry> = recorded.iter().map(|(_, e)| e.clone()).collect();
        for o in self.all()? {
            let Ok(tx) = plasma_spec::Transaction::decode(&o.tx_bytes) else { continue };
            let deposit = tx.tx_type() == Ok(plasma_spec::TxType::Deposit);
            let key = format!("{}:{}", if deposit { "deposit" } else { "received" }, o.utxo_pos);
            if keys.contains(key.as_str()) || (!deposit && sent_hashes.contains(&tx.hash())) {
                continue; // recorded, or the change of one of this wallet's payments
            }
            out.push(HistoryEntry {
                at: Some(o.block_timestamp),
                kind: if deposit { HistoryKind::Deposit } else { HistoryKind::Received },
                token: o.token,
                amount: o.amount,
                positions: vec![o.utxo_pos],
                tx_hash: (!deposit).then(|| tx.hash()),
                ..HistoryEntry::default()
            });
        }
        for (hash, bytes) in sent {
            if keys.contains(format!("sent:{hash}").as_str()) {
                continue;
            }
            let Ok(signed) = plasma_spec::SignedTransaction::decode(&bytes) else { continue };
            let paid: Vec<&plasma_spec::Output> =
                signed.transaction.outputs.iter().filter(|o| o.owner != me).collect();
            let Some(first) = paid.first() else { continue };
            out.push(HistoryEntry {
                kind: HistoryKind::Sent,
                token: first.token,
                amount: paid.iter().filter(|o| o.token == first.token).map(|o| o.amount).sum(),
                counterparty: Some(first.owner),
                tx_hash: Some(hash),
                ..HistoryEntry::default()
            });
        }
        out.sort_by_key(|e| e.at.unwrap_or(u64::MAX));
        Ok(out)
    }

    /// The `decimals()` and `symbol()` read from `token` before, if any.
    pub fn token_info(&self, token: Address) -> Result<Option<TokenInfo>, SdkError> {
        self.meta(&format!("{TOKEN_PREFIX}{token}"))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| SdkError::Store(e.to_string())))
            .transpose()
    }

    /// Keeps what `token` answered to `decimals()` and `symbol()`.
    pub fn put_token_info(&self, token: Address, info: &TokenInfo) -> Result<(), SdkError> {
        let json = serde_json::to_vec(info).map_err(|e| SdkError::Store(e.to_string()))?;
        self.put_meta(&format!("{TOKEN_PREFIX}{token}"), &json)
    }

    /// The last exit schedule read from L1 (a JSON list) and when (unix seconds).
    pub fn exit_schedule(&self) -> Result<Option<(u64, serde_json::Value)>, SdkError> {
        self.meta(EXIT_SCHEDULE)?
            .map(|v| serde_json::from_slice(&v).map_err(|e| SdkError::Store(e.to_string())))
            .transpose()
    }

    /// Keeps an exit schedule read from L1 at `at` (unix seconds).
    pub fn put_exit_schedule(&self, at: u64, schedule: &serde_json::Value) -> Result<(), SdkError> {
        let json =
            serde_json::to_vec(&(at, schedule)).map_err(|e| SdkError::Store(e.to_string()))?;
        self.put_meta(EXIT_SCHEDULE, &json)
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

#[cfg(test)]
mod tests {
    use super::*;
    use plasma_spec::{Output, SignedTransaction, Transaction, UtxoPos};

    fn output(pos: u128, owner: Address, tx: &Transaction, at: u64) -> StoredOutput {
        StoredOutput {
            utxo_pos: pos,
            owner,
            token: Address::ZERO,
            amount: tx.outputs[0].amount,
            tx_bytes: tx.encode().into(),
            proof: Bytes::new(),
            root: B256::ZERO,
            block_timestamp: at,
            spent_by: None,
            exiting: false,
            batch_claim: None,
            status: OutputStatus::Unspent,
            evidence: None,
            spent_source: None,
            verification: Verification::ProofTx,
            problem: None,
            checked_at: at,
        }
    }

    #[test]
    fn a_held_store_is_waited_for_then_refused_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.redb");
        let held = ProofStore::open(&path).unwrap();
        let started = Instant::now();
        match ProofStore::open_waiting(&path, Duration::from_millis(300)) {
            Err(SdkError::StoreLocked { path: p, .. }) => assert!(p.ends_with("w.redb")),
            other => panic!("expected StoreLocked, got {other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(300), "it waited");
        drop(held);
        ProofStore::open_waiting(&path, Duration::from_millis(300)).unwrap();
    }

    #[test]
    fn history_records_and_derives_what_the_store_shows() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProofStore::open(&dir.path().join("w.redb")).unwrap();
        let (me, bob) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let one = U256::from(10).pow(U256::from(18));
        // A deposit, a payment received, and a payment this wallet sent to bob
        // (with its change to itself).
        let deposit = Transaction::deposit(me, Address::ZERO, one);
        let input = UtxoPos::from_u128(1_000_000_000).unwrap();
        let received = Transaction::payment(
            &[UtxoPos::from_u128(2_000_000_000).unwrap()],
            vec![Output::new(me, Address::ZERO, one * U256::from(2))],
            B256::ZERO,
        );
        let sent = Transaction::payment(
            &[input],
            vec![
                Output::new(bob, Address::ZERO, one / U256::from(4)),
                Output::new(me, Address::ZERO, one / U256::from(2)),
            ],
            B256::ZERO,
        );
        store.put(&output(1_000_000_000, me, &deposit, 100)).unwrap();
        store.put(&output(1_000_000_000_000, me, &received, 200)).unwrap();
        let mut change = output(2_000_000_010_001, me, &sent, 300);
        change.amount = one / U256::from(2);
        store.put(&change).unwrap();
        store
            .put_sent(sent.hash(), &SignedTransaction::new(sent.clone(), vec![]).encode())
            .unwrap();

        let h = store.history(me).unwrap();
        let kinds: Vec<HistoryKind> = h.iter().map(|e| e.kind).collect();
        // Oldest first; the sent one has no time (recorded by no one) and comes last; the change
        // of the payment is not a receipt.
        assert_eq!(kinds, [HistoryKind::Deposit, HistoryKind::Received, HistoryKind::Sent]);
        assert_eq!(h[1].amount, one * U256::from(2));
        assert_eq!(h[2].amount, one / U256::from(4));
        assert_eq!(h[2].counterparty, Some(bob));

        // What the wallet recorded replaces the derived line (same key), with its time.
        let recorded = HistoryEntry {
            at: Some(250),
            kind: HistoryKind::Sent,
            amount: one / U256::from(4),
            fee: Some(U256::from(7)),
            counterparty: Some(bob),
            tx_hash: Some(sent.hash()),
            ..HistoryEntry::default()
        };
        store.record(&format!("sent:{}", sent.hash()), &recorded).unwrap();
        let h = store.history(me).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h[2], recorded);
        let json = serde_json::to_value(&h[2]).unwrap();
        assert_eq!(json["amount"], "250000000000000000", "decimal strings: {json}");
        assert_eq!(json["fee"], "7");
        assert_eq!(json["kind"], "sent");
    }

    #[test]
    fn balances_from_the_store_alone() {
        let me = Address::repeat_byte(1);
        let tx = Transaction::deposit(me, Address::ZERO, U256::from(5));
        let mut exiting = output(1, me, &tx, 1);
        exiting.status = OutputStatus::Exiting;
        let mut unverified = output(2, me, &tx, 1);
        unverified.verification = Verification::Proof;
        let mut final_ = output(3, me, &tx, 1);
        final_.verification = Verification::ProofTxWatcher;
        let plain = output(4, me, &tx, 1);
        let b = Balances::of(&[exiting, unverified, final_, plain], Address::ZERO);
        assert_eq!(b.balance, U256::from(10));
        assert_eq!(b.final_balance, U256::from(5));
        assert_eq!(b.exiting, U256::from(5));
        assert_eq!(b.unverified, U256::from(5));
        assert_eq!(Balances::of(&[], Address::ZERO), Balances::default());
    }
}
