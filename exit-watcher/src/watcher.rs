//! The watcher's loop: follow L1, download and re-validate every block, judge exits, act.

use crate::judge::{ChainView, Change, Event};
use crate::{
    budget,
    guards::{self, GuardError},
};
use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::Log,
};
use parking_lot::Mutex;
use plasma_contracts::{InFlightExitGame, PlasmaFramework, StandardExitGame};
use plasma_spec::{BlockTree, SigningDomain, UtxoPos};
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, VecDeque},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};
use tracing::{debug, info, warn};

const ACTIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("actions");
const GUARDS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("guards");
/// Payments guarded owners signed and handed in before they were known to be included (WATCH-6):
/// tx hash → signed transaction.
const GUARDED_IN_FLIGHT: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("guarded_in_flight");
/// Every event, in order: the watcher's record of what happened and what it did survives restarts.
const EVENTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("events");
// The validated view and the work in progress, persisted so a restart resumes where it stopped
// (nothing is re-downloaded or re-verified) and a kill -9 loses nothing.
const V_UTXOS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("view_utxos");
const V_SPENDS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("view_spends");
const V_BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("view_blocks");
const V_META: TableDefinition<'_, &str, u64> = TableDefinition::new("view_meta");
const V_PENDING: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("pending_blocks");
const V_EXITS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("watched_exits");
const V_IFES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("watched_in_flight_exits");
/// LEDGER-9's exiting outputs (`plasma_spec::ExitingOutputs` as JSON) under one key.
const V_EXITING: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("view_exiting");
/// Hashes of the L1 blocks the cursor stopped at, to notice a reorganisation under it (WATCH-1).
const L1_HASHES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("l1_hashes");
/// How many cursor hashes are kept: a reorganisation deeper than this rescans from genesis.
const L1_HASHES_KEPT: usize = 256;

/// Gas limit of one challenge or response (the heaviest, an in-flight output challenge with two
/// proofs, uses well under half of this; docs/benchmarks.md).
const ACTION_GAS: u64 = 600_000;
/// Outputs per mass-exit transaction: about 130k gas each (docs/benchmarks.md), so a batch stays
/// near 7M gas, well inside any L1 block, while a hundred owners need two transactions.
const MASS_EXIT_BATCH: usize = 50;
/// Gas limit per output of a mass exit, with room over the measured cost.
const MASS_EXIT_GAS_PER_OUTPUT: u64 = 200_000;
/// Extra gas per input of an in-flight exit start (2 inputs: 346k measured).
const IN_FLIGHT_GAS_PER_INPUT: u64 = 150_000;

/// The position of transaction `tx_index` of block `blknum` (its output 0, POS-1), as the exit
/// game takes transaction positions.
/// (Spends and blocks in the view come from validated blocks, so the position is always valid.)
/// The spend of `pos` among payments guarded owners handed in (WATCH-4), as a challenge needs it.
fn in_flight_spend_of(
    handed_in: &[plasma_spec::SignedTransaction],
    pos: UtxoPos,
) -> Option<crate::judge::Spend> {
    handed_in.iter().find_map(|signed| {
        let inputs = signed.transaction.input_positions().ok()?;
        let input_index = inputs.iter().position(|p| *p == pos)?;
        Some(crate::judge::Spend {
            tx: signed.transaction.encode().into(),
            hash: signed.transaction.hash(),
            input_index,
            signature: signed.signatures.get(input_index)?.clone(),
            blknum: 0,
            tx_index: 0,
        })
    })
}

fn tx_position(blknum: u64, tx_index: u16) -> U256 {
    UtxoPos::new(blknum, tx_index, 0).map_or(U256::ZERO, |p| p.to_u256())
}

/// Writes validated UTXOs straight into a watcher's store, for the restart benchmark.
#[doc(hidden)]
pub fn write_view_utxos(
    data_dir: &Path,
    utxos: &[(UtxoPos, plasma_spec::Output)],
) -> Result<(), WatcherError> {
    std::fs::create_dir_all(data_dir).map_err(st)?;
    let db = Database::create(data_dir.join("watcher.redb")).map_err(st)?;
    let tx = db.begin_write().map_err(st)?;
    {
        let mut table = tx.open_table(V_UTXOS).map_err(st)?;
        for (pos, out) in utxos {
            table.insert(pos.to_u128(), out.to_packed().as_slice()).map_err(st)?;
        }
    }
    tx.commit().map_err(st)
}

/// An owner's exit authorization for this watcher (EXIT-9), given through the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Guard {
    /// The owner whose funds the watcher guards.
    pub owner: Address,
    /// Authorization deadline.
    pub deadline: U256,
    /// Authorization nonce.
    pub nonce: U256,
    /// The owner's EIP-712 signature of `ExitAuthorization(watcher, deadline, nonce)`.
    pub signature: Bytes,
}

/// Settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The framework.
    pub framework: Address,
    /// The operator's API.
    pub operator_url: String,
    /// L1 confirmations before an event is acted on.
    pub confirmations: u64,
    /// Poll interval.
    pub poll: Duration,
    /// How long a committed block may stay unavailable before it counts as withheld.
    pub availability_timeout: Duration,
    /// Call `processExits` for ETH when the queue head is due (WATCH-10).
    pub process_exits: bool,
    /// An action sent with less than this left before its deadline raises an alert (WATCH-11).
    pub deadline_margin: Duration,
    /// An action not mined after this long is re-sent with a higher fee (same nonce).
    pub stuck_after: Duration,
    /// L1's block time (12 s on Ethereum), for the timing condition (WATCH-12).
    pub l1_block_time: Duration,
}

impl Settings {
    /// The longest the watcher may take from a bad block's commitment to its exits' inclusion on
    /// L1 (WATCH-12): the availability timeout, the confirmation depth, one fee bump of a stuck
    /// transaction, and one poll.
    pub fn reaction_time(&self) -> Duration {
        let depth = self
            .l1_block_time
            .saturating_mul(u32::try_from(self.confirmations).unwrap_or(u32::MAX));
        self.availability_timeout
            .saturating_add(depth)
            .saturating_add(self.stuck_after)
            .saturating_add(self.poll)
    }

    /// WATCH-12: refuses settings whose reaction time exceeds half the challenge period
    /// `min_exit_period` (seconds): with them, the exits of a bad block could come first.
    pub fn check_timing(&self, min_exit_period: u64) -> Result<(), WatcherError> {
        let reaction = self.reaction_time();
        if reaction.as_secs_f64() * 2.0 > min_exit_period as f64 {
            return Err(WatcherError::UnsafeTiming {
                availability_timeout: self.availability_timeout.as_secs_f64(),
                confirmations: self.confirmations,
                l1_block_time: self.l1_block_time.as_secs_f64(),
                stuck_after: self.stuck_after.as_secs_f64(),
                poll: self.poll.as_secs_f64(),
                reaction: reaction.as_secs_f64(),
                min_exit_period,
            });
        }
        Ok(())
    }
}

/// Why the watcher failed a step.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// L1 RPC.
    #[error("L1: {0}")]
    L1(String),
    /// Local storage.
    #[error("store: {0}")]
    Store(String),
    /// WATCH-12: the watcher could not react to a bad block in time to protect anyone.
    #[error(
        "unsafe timing (WATCH-12): availability timeout {availability_timeout}s + {confirmations} \
         confirmations x {l1_block_time}s + stuck-after {stuck_after}s + poll {poll}s = {reaction}s, \
         more than half the challenge period ({min_exit_period}s): guarded owners' exits could \
         come after the exits of a withheld or invalid block; lower --availability-timeout or \
         --stuck-after, or deploy a longer period"
    )]
    UnsafeTiming {
        /// Seconds.
        availability_timeout: f64,
        /// Confirmation depth.
        confirmations: u64,
        /// Seconds per L1 block.
        l1_block_time: f64,
        /// Seconds before a fee bump.
        stuck_after: f64,
        /// Seconds between polls.
        poll: f64,
        /// Their sum.
        reaction: f64,
        /// The deployment's `minExitPeriod`.
        min_exit_period: u64,
    },
}

fn l1(e: impl std::fmt::Display) -> WatcherError {
    WatcherError::L1(e.to_string())
}

fn st(e: impl std::fmt::Display) -> WatcherError {
    WatcherError::Store(e.to_string())
}

/// An in-flight exit being watched: its transaction and which inputs are piggybacked.
#[derive(Clone, Debug)]
struct WatchedInFlight {
    tx: plasma_spec::Transaction,
    piggybacked_inputs: Vec<u8>,
    piggybacked_outputs: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct StoredInFlight {
    tx: Bytes,
    inputs: Vec<u8>,
    outputs: Vec<u8>,
}

/// A committed block (or deposit) not yet applied to the view.
struct Pending {
    blknum: u64,
    root: B256,
    timestamp: u64,
    /// Deposit blocks carry their transaction; child blocks are downloaded.
    deposit_tx: Option<Bytes>,
    seen: Instant,
}

#[derive(Serialize, Deserialize)]
struct StoredPending {
    root: B256,
    timestamp: u64,
    deposit_tx: Option<Bytes>,
}

/// Status for `/status`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Last L1 block scanned.
    pub l1_cursor: u64,
    /// Last child-chain block validated.
    pub synced_block: u64,
    /// Whether the chain is safe (no withheld or invalid block).
    pub safe: bool,
    /// The first bad block.
    pub byzantine_from: Option<u64>,
    /// Blocks committed but not yet downloaded.
    pub pending_blocks: usize,
    /// Standard exits being watched.
    pub exits_watched: usize,
    /// Owners guarded.
    pub guarded: usize,
    /// Guarded outputs worth exiting, at the last funding check (WATCH-13).
    pub guarded_outputs: usize,
    /// Of those, how many the balance could not pay to exit at that check.
    pub unaffordable_outputs: usize,
    /// Events so far.
    pub events: usize,
}

/// The watcher.
pub struct Watcher {
    settings: Settings,
    me: Address,
    provider: DynProvider,
    framework: PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    standard: StandardExitGame::StandardExitGameInstance<DynProvider>,
    in_flight: InFlightExitGame::InFlightExitGameInstance<DynProvider>,
    in_flight_exits: Mutex<BTreeMap<B256, WatchedInFlight>>,
    http: reqwest::Client,
    db: Database,
    domain: SigningDomain,
    view: Mutex<ChainView>,
    pending: Mutex<VecDeque<Pending>>,
    exits: Mutex<BTreeMap<UtxoPos, (Address, u64)>>,
    /// Guarded outputs whose standard exit L1 showed started (a cache; cleared by a reorg).
    exit_seen_started: Mutex<std::collections::BTreeSet<U256>>,
    min_exit_period: u64,
    /// Tokens with exit queues the watcher has seen (ETH always).
    tokens: Mutex<std::collections::BTreeSet<Address>>,
    /// Sends every action (confirmed nonce, fee bumps, attempts per action key).
    sender: plasma_contracts::sender::Sender,
    events: Mutex<Vec<Event>>,
    cursor: Mutex<u64>,
    /// The newest L1 block timestamp read (the availability clock's L1 side, WATCH-3).
    l1_time: Mutex<u64>,
    /// Last funding check (WATCH-13): the synced block it was made at, guarded outputs worth
    /// exiting, and how many of them the balance could not pay for.
    funding: Mutex<(u64, usize, usize)>,
    /// Dust outputs last reported skipped.
    dust_reported: Mutex<usize>,
    /// The highest child block committed on L1 (late deposits below it may be spent, WATCH-6).
    last_child_committed: Mutex<u64>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("me", &self.me).finish_non_exhaustive()
    }
}

impl Watcher {
    /// Opens the watcher's store and binds it to L1.
    pub async fn new(
        settings: Settings,
        me: Address,
        provider: DynProvider,
        data_dir: &Path,
    ) -> Result<Self, WatcherError> {
        std::fs::create_dir_all(data_dir).map_err(st)?;
        let db = Database::create(data_dir.join("watcher.redb")).map_err(st)?;
        let tx = db.begin_write().map_err(st)?;
        tx.open_table(ACTIONS).map_err(st)?;
        tx.open_table(GUARDS).map_err(st)?;
        tx.open_table(EVENTS).map_err(st)?;
        tx.open_table(V_UTXOS).map_err(st)?;
        tx.open_table(V_SPENDS).map_err(st)?;
        tx.open_table(V_BLOCKS).map_err(st)?;
        tx.open_table(V_META).map_err(st)?;
        tx.open_table(V_PENDING).map_err(st)?;
        tx.open_table(V_EXITS).map_err(st)?;
        tx.open_table(V_IFES).map_err(st)?;
        tx.open_table(V_EXITING).map_err(st)?;
        tx.open_table(L1_HASHES).map_err(st)?;
        tx.open_table(GUARDED_IN_FLIGHT).map_err(st)?;
        tx.commit().map_err(st)?;
        let past_events: Vec<Event> = {
            use redb::ReadableTable;
            let tx = db.begin_read().map_err(st)?;
            let table = tx.open_table(EVENTS).map_err(st)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(st)? {
                let (_, v) = entry.map_err(st)?;
                out.push(serde_json::from_slice(v.value()).map_err(st)?);
            }
            out
        };
        let chain_id = provider.get_chain_id().await.map_err(l1)?;
        let framework = PlasmaFramework::new(settings.framework, provider.clone());
        let standard = StandardExitGame::new(
            framework.standardExitGame().call().await.map_err(l1)?,
            provider.clone(),
        );
        let in_flight = InFlightExitGame::new(
            framework.inFlightExitGame().call().await.map_err(l1)?,
            provider.clone(),
        );
        let domain = SigningDomain::new(chain_id, settings.framework);
        let min_exit_period: u64 =
            framework.minExitPeriod().call().await.map_err(l1)?.try_into().unwrap_or(u64::MAX);
        settings.check_timing(min_exit_period)?;
        let sender = plasma_contracts::sender::Sender::new(
            provider.clone(),
            me,
            plasma_contracts::sender::SendPolicy {
                bump_percent: 25,
                stuck_after: settings.stuck_after,
            },
        );
        let watcher = Self {
            view: Mutex::new(
                ChainView::new(domain.clone())
                    .with_exit_grace(plasma_spec::exit_spend_grace(min_exit_period)),
            ),
            domain,
            settings,
            me,
            provider,
            framework,
            standard,
            in_flight,
            in_flight_exits: Mutex::new(BTreeMap::new()),
            min_exit_period,
            sender,
            tokens: Mutex::new(std::collections::BTreeSet::from([Address::ZERO])),
            http: reqwest::Client::new(),
            db,
            pending: Mutex::new(VecDeque::new()),
            exits: Mutex::new(BTreeMap::new()),
            exit_seen_started: Mutex::new(std::collections::BTreeSet::new()),
            events: Mutex::new(past_events),
            cursor: Mutex::new(0),
            l1_time: Mutex::new(0),
            funding: Mutex::new((u64::MAX, 0, 0)),
            dust_reported: Mutex::new(0),
            last_child_committed: Mutex::new(0),
        };
        watcher.restore()?;
        Ok(watcher)
    }

    /// This watcher's L1 address (the `exitor` owners authorize).
    pub const fn address(&self) -> Address {
        self.me
    }

    /// The signing domain.
    pub const fn domain(&self) -> &SigningDomain {
        &self.domain
    }

    fn action_done(&self, key: &str) -> Result<bool, WatcherError> {
        let tx = self.db.begin_read().map_err(st)?;
        Ok(tx.open_table(ACTIONS).map_err(st)?.get(key).map_err(st)?.is_some())
    }

    fn record_action(&self, key: &str, l1_tx: B256) -> Result<(), WatcherError> {
        let tx = self.db.begin_write().map_err(st)?;
        tx.open_table(ACTIONS).map_err(st)?.insert(key, l1_tx.as_slice()).map_err(st)?;
        tx.commit().map_err(st)
    }

    /// Keeps `guard` if it could start an exit today and is not older than the one kept for its
    /// owner (EXIT-9), and if the tower's balance covers one more owner (WATCH-13).
    pub async fn add_guard(&self, guard: &Guard) -> Result<(), GuardError> {
        let auth = plasma_spec::ExitAuthorization {
            exitor: self.me,
            deadline: guard.deadline,
            nonce: guard.nonce,
        };
        let digest = self.domain.exit_authorization_digest(&auth);
        let signer = plasma_spec::recover_signer(digest, &guard.signature, 0)
            .map_err(|e| GuardError::BadSignature { owner: guard.owner, reason: e.to_string() })?;
        let unavailable = |e: WatcherError| GuardError::Unavailable(e.to_string());
        let l1_owner = self.owner_on_l1(guard.owner).await.map_err(unavailable)?;
        let kept = self.guards().map_err(unavailable)?;
        let kept_own = kept.iter().find(|g| g.owner == guard.owner);
        guards::check(guard, signer, l1_owner, kept_own)?;
        if kept_own.is_none() {
            let (balance, costs) = self.exit_costs().await.map_err(unavailable)?;
            let capacity = budget::guard_capacity(balance, &costs);
            let guarded = kept.len() as u64;
            if guarded >= capacity {
                return Err(GuardError::AtCapacity { guards: guarded, capacity, balance });
            }
        }
        let json = serde_json::to_vec(guard).map_err(|e| GuardError::Unavailable(e.to_string()))?;
        let run = || -> Result<(), WatcherError> {
            let tx = self.db.begin_write().map_err(st)?;
            tx.open_table(GUARDS)
                .map_err(st)?
                .insert(guard.owner.as_slice(), json.as_slice())
                .map_err(st)?;
            tx.commit().map_err(st)
        };
        run().map_err(unavailable)
    }

    /// The owner's authorization nonce and L1's latest block time.
    async fn owner_on_l1(&self, owner: Address) -> Result<guards::OwnerOnL1, WatcherError> {
        let nonce = self.standard.authorizationNonce(owner).call().await.map_err(l1)?;
        let latest = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(l1)?
            .ok_or_else(|| l1("no latest L1 block"))?;
        Ok(guards::OwnerOnL1 { nonce, now: latest.header.timestamp })
    }

    /// The tower's balance and what exits cost it now (WATCH-13). The gas price is the current
    /// one with room for two fee bumps of 25 %.
    async fn exit_costs(&self) -> Result<(U256, budget::ExitCosts), WatcherError> {
        let balance = self.provider.get_balance(self.me).await.map_err(l1)?;
        let bond = self.standard.bondSize().call().await.map_err(l1)?;
        let price = self.provider.get_gas_price().await.map_err(l1)?;
        let costs = budget::ExitCosts {
            bond,
            gas_price: price + price / 2 + 1,
            gas_per_batch: ACTION_GAS,
            gas_per_output: MASS_EXIT_GAS_PER_OUTPUT,
        };
        Ok((balance, costs))
    }

    /// Drops guards their owners revoked on L1 (`AuthorizationsRevoked`, EXIT-9): a batch holding
    /// one would skip it anyway, and the owner must hand in a new authorization to stay guarded.
    fn drop_revoked_guard(&self, owner: Address, nonce: U256) -> Result<(), WatcherError> {
        let Some(kept) = self.guards()?.into_iter().find(|g| g.owner == owner) else {
            return Ok(());
        };
        if kept.nonce >= nonce {
            return Ok(()); // already the new one
        }
        let tx = self.db.begin_write().map_err(st)?;
        tx.open_table(GUARDS).map_err(st)?.remove(owner.as_slice()).map_err(st)?;
        tx.commit().map_err(st)?;
        self.event(Event::GuardDropped { owner, reason: format!("revoked on L1 (nonce {nonce})") });
        Ok(())
    }

    /// Takes a payment a guarded owner signed (ENC-4 bytes) and may not see included: if the chain
    /// turns byzantine before it is, the watcher exits it in flight instead of exiting its inputs
    /// (WATCH-6). It must be valid against the watcher's validated UTXO set (every input unspent,
    /// signed by its owner, no value created) and spend a guarded owner's output.
    pub fn add_in_flight(&self, signed_bytes: &[u8]) -> Result<B256, String> {
        let signed =
            plasma_spec::SignedTransaction::decode(signed_bytes).map_err(|e| e.to_string())?;
        let (_, inputs) = signed.transaction.check().map_err(|e| e.to_string())?;
        if inputs.is_empty() {
            return Err("not a payment".into());
        }
        let signers = signed.recover_signers(&self.domain).map_err(|e| e.to_string())?;
        let hash = signed.transaction.hash();
        {
            let view = self.view.lock();
            // Already seen included (the owner handed it in after the operator was quick): its
            // outputs are ordinary outputs now, nothing to keep.
            if inputs.iter().all(|p| view.spends.get(p).is_some_and(|s| s.hash == hash)) {
                return Ok(hash);
            }
            plasma_spec::validate_payment(&view.utxos, &signed.transaction, &inputs, &signers)
                .map_err(|e| e.to_string())?;
        }
        let guarded: std::collections::HashSet<Address> =
            self.guards().map_err(|e| e.to_string())?.into_iter().map(|g| g.owner).collect();
        if !signers.iter().any(|s| guarded.contains(s)) {
            return Err("no input belongs to an owner this watcher guards".into());
        }
        let run = || -> Result<(), WatcherError> {
            let tx = self.db.begin_write().map_err(st)?;
            tx.open_table(GUARDED_IN_FLIGHT)
                .map_err(st)?
                .insert(hash.as_slice(), signed_bytes)
                .map_err(st)?;
            tx.commit().map_err(st)
        };
        run().map_err(|e| e.to_string())?;
        Ok(hash)
    }

    /// The guarded payments not included in any validated block: all their inputs are still
    /// unspent in the view.
    fn guarded_in_flight(&self) -> Result<Vec<plasma_spec::SignedTransaction>, WatcherError> {
        use redb::ReadableTable;
        let tx = self.db.begin_read().map_err(st)?;
        let table = tx.open_table(GUARDED_IN_FLIGHT).map_err(st)?;
        let view = self.view.lock();
        let mut out = Vec::new();
        for entry in table.iter().map_err(st)? {
            let (_, v) = entry.map_err(st)?;
            let signed = plasma_spec::SignedTransaction::decode(v.value()).map_err(st)?;
            let Ok(inputs) = signed.transaction.input_positions() else { continue };
            if inputs.iter().all(|p| plasma_spec::UtxoView::utxo(&view.utxos, *p).is_some()) {
                out.push(signed);
            }
        }
        Ok(out)
    }

    fn guards(&self) -> Result<Vec<Guard>, WatcherError> {
        use redb::ReadableTable;
        let tx = self.db.begin_read().map_err(st)?;
        let table = tx.open_table(GUARDS).map_err(st)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(st)? {
            let (_, v) = entry.map_err(st)?;
            out.push(serde_json::from_slice(v.value()).map_err(st)?);
        }
        Ok(out)
    }

    fn event(&self, e: Event) {
        info!(target: "watcher::event", event = ?e, "event");
        let mut events = self.events.lock();
        let persisted = (|| -> Result<(), WatcherError> {
            let json = serde_json::to_vec(&e).map_err(st)?;
            let tx = self.db.begin_write().map_err(st)?;
            tx.open_table(EVENTS)
                .map_err(st)?
                .insert(events.len() as u64, json.as_slice())
                .map_err(st)?;
            tx.commit().map_err(st)
        })();
        if let Err(err) = persisted {
            warn!(target: "watcher::event", error = %err, "event not persisted");
        }
        events.push(e);
    }

    /// Events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().clone()
    }

    /// Status figures.
    pub fn status(&self) -> Status {
        let funding = *self.funding.lock();
        let view = self.view.lock();
        Status {
            l1_cursor: *self.cursor.lock(),
            synced_block: view.synced_block,
            safe: view.byzantine_from.is_none(),
            byzantine_from: view.byzantine_from,
            pending_blocks: self.pending.lock().len(),
            exits_watched: self.exits.lock().len(),
            guarded: self.guards().map_or(0, |g| g.len()),
            guarded_outputs: funding.1,
            unaffordable_outputs: funding.2,
            events: self.events.lock().len(),
        }
    }

    /// Runs until `shutdown` flips.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.step().await {
                warn!(target: "watcher", error = %e, "step failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One round: follow L1, validate blocks, act.
    pub async fn step(&self) -> Result<(), WatcherError> {
        self.follow_l1().await?;
        self.validate_blocks().await?;
        self.challenge_exits().await?;
        self.challenge_in_flight_exits().await?;
        self.mass_exit_if_byzantine().await?;
        self.check_funding().await?;
        if self.settings.process_exits {
            self.process_due_exits().await?;
        }
        Ok(())
    }

    async fn follow_l1(&self) -> Result<(), WatcherError> {
        self.rewind_on_reorg().await?;
        let head = self.provider.get_block_number().await.map_err(l1)?;
        let Some(to) = (head + 1).checked_sub(self.settings.confirmations.max(1)) else {
            return Ok(());
        };
        let from = *self.cursor.lock() + 1;
        if from > to {
            return Ok(());
        }
        // The hash is read before the logs: if L1 reorganises in between, the stored hash is the
        // old one and the next step notices; read after, a reorganisation could go unseen.
        let Some(to_block) = self.provider.get_block_by_number(to.into()).await.map_err(l1)? else {
            return Ok(());
        };
        let to_hash = to_block.header.hash;
        {
            let mut l1_time = self.l1_time.lock();
            *l1_time = (*l1_time).max(to_block.header.timestamp);
        }
        let deposits = self
            .framework
            .DepositCreated_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        let blocks = self
            .framework
            .BlockSubmitted_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        let exits = self
            .standard
            .ExitStarted_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        // Apply in L1 order: deposits and child blocks interleave by block number.
        let key = |log: &Log| (log.block_number.unwrap_or(0), log.log_index.unwrap_or(0));
        let mut ordered: Vec<((u64, u64), u8, usize)> = Vec::new();
        ordered.extend(deposits.iter().enumerate().map(|(i, (_, l))| (key(l), 0, i)));
        ordered.extend(blocks.iter().enumerate().map(|(i, (_, l))| (key(l), 1, i)));
        ordered.sort();
        for (_, kind, i) in ordered {
            if kind == 0 {
                let ev = &deposits[i].0;
                self.tokens.lock().insert(ev.token);
                let blknum: u64 = ev.blknum.try_into().unwrap_or(u64::MAX);
                // LEDGER-7: a deposit already read that L1 now shows different (a reorganisation
                // swapped it) means outputs were credited on nothing: the chain is unsafe.
                let changed = {
                    let view = self.view.lock();
                    view.blocks.get(&blknum).is_some_and(|b| {
                        b.leaves.first().is_some_and(|l| l.as_slice() != ev.depositTx.as_ref())
                    })
                };
                if changed {
                    warn!(target: "watcher::l1", blknum, "a reorganisation changed a deposit the watcher had applied (LEDGER-7)");
                    self.view.lock().withheld(blknum);
                    self.persist_block(blknum)?;
                    self.event(Event::InvalidBlock {
                        blknum,
                        reason: "LEDGER-7: an L1 reorganisation changed this deposit after it was applied".into(),
                    });
                    self.report_exits_from_bad_blocks();
                    continue;
                }
                if self.already_queued(blknum, None, ev.timestamp)? {
                    continue;
                }
                self.pending.lock().push_back(Pending {
                    blknum,
                    root: B256::ZERO,
                    timestamp: ev.timestamp,
                    deposit_tx: Some(ev.depositTx.clone()),
                    seen: Instant::now(),
                });
            } else {
                let ev = &blocks[i].0;
                let blknum: u64 = ev.blknum.try_into().unwrap_or(u64::MAX);
                {
                    let mut last = self.last_child_committed.lock();
                    *last = (*last).max(blknum);
                }
                if self.already_queued(blknum, Some(ev.root), ev.timestamp)? {
                    continue;
                }
                self.pending.lock().push_back(Pending {
                    blknum,
                    root: ev.root,
                    timestamp: ev.timestamp,
                    deposit_tx: None,
                    seen: Instant::now(),
                });
            }
        }
        // LEDGER-9: the exit-game events that take outputs off the child chain, in L1 order.
        let mut exit_events: Vec<(&Log, plasma_spec::ExitEvent)> = Vec::new();
        for (ev, log) in &exits {
            if let Ok(pos) = UtxoPos::from_u256(ev.exitId) {
                exit_events.push((log, plasma_spec::ExitEvent::StandardExitStarted { pos }));
            }
        }
        for (ev, _) in &exits {
            if let Ok(pos) = UtxoPos::from_u256(ev.exitId) {
                self.exits.lock().insert(pos, (ev.owner, ev.exitableAt));
                self.tokens.lock().insert(ev.token);
                let bad_from = self.view.lock().byzantine_from;
                if bad_from.is_some_and(|b| pos.blknum() >= b) {
                    self.event(Event::ExitFromBadBlock { utxo_pos: pos.to_string() });
                }
            }
        }
        let started = self
            .in_flight
            .InFlightExitStarted_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        let guarded: std::collections::BTreeSet<Address> = if started.is_empty() {
            Default::default()
        } else {
            self.guards()?.iter().map(|g| g.owner).collect()
        };
        for (ev, log) in &started {
            if let Ok(tx) = plasma_spec::Transaction::decode(&ev.inFlightTx) {
                // EXIT-6: tell guarded owners when someone else exits their payment in flight,
                // so they piggyback in phase 1 (only owners may, EXIT-8).
                if ev.initiator != self.me {
                    let mut owners: Vec<Address> = {
                        let view = self.view.lock();
                        tx.input_positions()
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|p| plasma_spec::UtxoView::utxo(&view.utxos, *p))
                            .map(|o| o.owner)
                            .chain(tx.outputs.iter().map(|o| o.owner))
                            .filter(|a| guarded.contains(a))
                            .collect()
                    };
                    owners.sort();
                    owners.dedup();
                    if !owners.is_empty() {
                        self.event(Event::InFlightExitOfGuardedPayment {
                            exit_id: tx.hash(),
                            initiator: ev.initiator,
                            owners,
                        });
                    }
                }
                exit_events.push((
                    log,
                    plasma_spec::ExitEvent::InFlightExitStarted {
                        exit_id: ev.exitId,
                        tx: tx.clone(),
                    },
                ));
                let id = B256::from(ev.exitId.to_be_bytes::<32>());
                self.in_flight_exits.lock().insert(
                    id,
                    WatchedInFlight {
                        tx,
                        piggybacked_inputs: Vec::new(),
                        piggybacked_outputs: Vec::new(),
                    },
                );
            }
        }
        let piggybacks = self
            .in_flight
            .InFlightExitPiggybacked_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        for (ev, log) in &piggybacks {
            if ev.isOutput {
                exit_events.push((
                    log,
                    plasma_spec::ExitEvent::OutputPiggybacked {
                        exit_id: ev.exitId,
                        index: ev.index,
                    },
                ));
            }
            let id = B256::from(ev.exitId.to_be_bytes::<32>());
            if let Some(w) = self.in_flight_exits.lock().get_mut(&id) {
                // Read twice after a reorganisation: each piggyback counts once.
                let list = if ev.isOutput {
                    &mut w.piggybacked_outputs
                } else {
                    &mut w.piggybacked_inputs
                };
                if !list.contains(&ev.index) {
                    list.push(ev.index);
                }
            }
        }
        let deleted = self
            .in_flight
            .InFlightExitDeleted_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        for (ev, log) in &deleted {
            exit_events
                .push((log, plasma_spec::ExitEvent::InFlightExitDeleted { exit_id: ev.exitId }));
        }
        let revoked = self
            .standard
            .AuthorizationsRevoked_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        for (ev, _) in &revoked {
            self.drop_revoked_guard(ev.owner, ev.nonce)?;
        }
        exit_events.sort_by_key(|(log, _)| key(log));
        for (log, event) in exit_events {
            let at = self.log_time(log).await?;
            self.view.lock().apply_exit_event(&event, at);
        }
        *self.cursor.lock() = to;
        self.persist_follow(to, to_hash)?;
        Ok(())
    }

    /// The L1 timestamp of the block a log is in (from the log when the node provides it).
    async fn log_time(&self, log: &Log) -> Result<u64, WatcherError> {
        if let Some(t) = log.block_timestamp {
            return Ok(t);
        }
        let n = log.block_number.ok_or_else(|| l1("a log without a block number"))?;
        let block = self.provider.get_block_by_number(n.into()).await.map_err(l1)?;
        block.map(|b| b.header.timestamp).ok_or_else(|| l1(format!("L1 block {n} not found")))
    }

    /// Whether commitment `blknum` was already read (L1 logs are read again after a
    /// reorganisation). The new chain may carry it in a block with another timestamp, which is
    /// part of the commitment (MERKLE-6): the view takes the new one, or every exit it starts from
    /// that block would fail the inclusion check. A commitment that changed root under the same
    /// number is reported: the view keeps the block it validated first.
    fn already_queued(
        &self,
        blknum: u64,
        root: Option<B256>,
        timestamp: u64,
    ) -> Result<bool, WatcherError> {
        if let Some(p) = self.pending.lock().iter_mut().find(|p| p.blknum == blknum) {
            p.timestamp = timestamp;
            return Ok(true);
        }
        let moved = {
            let mut view = self.view.lock();
            let synced = view.synced_block;
            let Some(known) = view.blocks.get_mut(&blknum) else { return Ok(blknum <= synced) };
            if let Some(root) = root
                && BlockTree::from_txs(&known.leaves).map(|t| t.root()).ok() != Some(root)
            {
                warn!(target: "watcher::l1", blknum, %root, "a reorganisation changed a commitment the watcher had validated");
            }
            (known.timestamp != timestamp).then(|| {
                known.timestamp = timestamp;
                known.clone()
            })
        };
        if let Some(block) = moved {
            info!(target: "watcher::l1", blknum, timestamp, "a reorganisation moved a commitment to another L1 block");
            let json = serde_json::to_vec(&block).map_err(st)?;
            let tx = self.db.begin_write().map_err(st)?;
            tx.open_table(V_BLOCKS).map_err(st)?.insert(blknum, json.as_slice()).map_err(st)?;
            tx.commit().map_err(st)?;
        }
        Ok(true)
    }

    /// The hash of L1 block `n` (`None` if the node does not have it).
    async fn l1_hash(&self, n: u64) -> Result<Option<B256>, WatcherError> {
        Ok(self.provider.get_block_by_number(n.into()).await.map_err(l1)?.map(|b| b.header.hash))
    }

    /// WATCH-1: if the block the cursor stopped at is no longer in L1's chain, goes back to the
    /// newest stored cursor block that still is (the common ancestor), so that everything after
    /// it is read again; then takes again every action whose transaction the reorganisation
    /// dropped. The validated child-chain view is not rolled back: deposits and commitments are
    /// read `confirmations` deep, and the view only ever grows by blocks validated in order.
    async fn rewind_on_reorg(&self) -> Result<(), WatcherError> {
        use redb::ReadableTable;
        let cursor = *self.cursor.lock();
        let stored: Vec<(u64, B256)> = {
            let tx = self.db.begin_read().map_err(st)?;
            let table = tx.open_table(L1_HASHES).map_err(st)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(st)? {
                let (k, v) = entry.map_err(st)?;
                out.push((k.value(), B256::from_slice(v.value())));
            }
            out
        };
        let Some(&(at, hash)) = stored.iter().rev().find(|(n, _)| *n <= cursor) else {
            return Ok(());
        };
        if self.l1_hash(at).await? == Some(hash) {
            return Ok(());
        }
        let mut ancestor = 0;
        for &(n, h) in stored.iter().rev().filter(|(n, _)| *n < at) {
            if self.l1_hash(n).await? == Some(h) {
                ancestor = n;
                break;
            }
        }
        warn!(target: "watcher::l1", from = cursor, to = ancestor, "L1 reorganised; reading again from the common ancestor");
        {
            let tx = self.db.begin_write().map_err(st)?;
            {
                let mut hashes = tx.open_table(L1_HASHES).map_err(st)?;
                for (n, _) in stored.iter().filter(|(n, _)| *n > ancestor) {
                    hashes.remove(*n).map_err(st)?;
                }
                tx.open_table(V_META).map_err(st)?.insert("cursor", ancestor).map_err(st)?;
            }
            tx.commit().map_err(st)?;
        }
        *self.cursor.lock() = ancestor;
        self.exit_seen_started.lock().clear();
        self.event(Event::L1Reorg { from: cursor, to: ancestor });
        self.retake_lost_actions().await
    }

    /// Forgets every recorded action whose transaction is no longer in L1's chain, so the next
    /// step judges it again. A standard exit the lost challenge had settled is watched again if
    /// its start is still in the chain.
    async fn retake_lost_actions(&self) -> Result<(), WatcherError> {
        use redb::ReadableTable;
        let recorded: Vec<(String, B256)> = {
            let tx = self.db.begin_read().map_err(st)?;
            let table = tx.open_table(ACTIONS).map_err(st)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(st)? {
                let (k, v) = entry.map_err(st)?;
                out.push((k.value().to_owned(), B256::from_slice(v.value())));
            }
            out
        };
        for (action, l1_tx) in recorded {
            if self.provider.get_transaction_receipt(l1_tx).await.map_err(l1)?.is_some() {
                continue;
            }
            {
                let tx = self.db.begin_write().map_err(st)?;
                tx.open_table(ACTIONS).map_err(st)?.remove(action.as_str()).map_err(st)?;
                tx.commit().map_err(st)?;
            }
            if let Some(pos) = action.strip_prefix("challenge:").and_then(|p| p.parse().ok())
                && let Ok(pos) = UtxoPos::from_u128(pos)
            {
                let started = self
                    .standard
                    .ExitStarted_filter()
                    .topic1(pos.to_u256())
                    .from_block(0)
                    .query()
                    .await
                    .map_err(l1)?;
                if let Some((ev, _)) = started.last() {
                    self.exits.lock().insert(pos, (ev.owner, ev.exitableAt));
                }
            }
            self.event(Event::ActionLost { action, l1_tx });
        }
        Ok(())
    }

    async fn validate_blocks(&self) -> Result<(), WatcherError> {
        loop {
            let Some((blknum, root, timestamp, deposit_tx, seen)) = self
                .pending
                .lock()
                .front()
                .map(|p| (p.blknum, p.root, p.timestamp, p.deposit_tx.clone(), p.seen))
            else {
                return Ok(());
            };
            if let Some(tx) = deposit_tx {
                self.view.lock().apply_deposit(blknum, &tx, timestamp);
                self.pending.lock().pop_front();
                self.persist_block(blknum)?;
                continue;
            }
            match self.fetch_block(blknum).await {
                Some(txs) => {
                    self.pending.lock().pop_front();
                    let leaves: Vec<Vec<u8>> = txs
                        .iter()
                        .map(|t| {
                            plasma_spec::SignedTransaction::decode(t)
                                .map(|s| s.transaction.encode())
                                .unwrap_or_default()
                        })
                        .collect();
                    let served_root =
                        BlockTree::from_txs(&leaves).map(|t| t.root()).unwrap_or_default();
                    let result = if served_root == root {
                        self.view.lock().apply_child_block(blknum, &txs, timestamp)
                    } else {
                        self.view.lock().withheld(blknum);
                        Err(format!("the served block hashes to {served_root}, L1 has {root}"))
                    };
                    self.persist_block(blknum)?;
                    match result {
                        Ok(()) => {
                            info!(target: "watcher::blocks", blknum, txs = txs.len(), "block valid")
                        }
                        Err(reason) => {
                            self.event(Event::InvalidBlock { blknum, reason });
                            self.report_exits_from_bad_blocks();
                        }
                    }
                }
                None if self.availability_expired(timestamp, seen) => {
                    self.pending.lock().pop_front();
                    self.view.lock().withheld(blknum);
                    self.persist_block(blknum)?;
                    self.event(Event::BlockWithheld { blknum });
                    self.report_exits_from_bad_blocks();
                }
                None => return Ok(()), // wait for it, in order
            }
        }
    }

    /// Reports every watched standard exit from the first bad block on, when the verdict comes:
    /// exits started before it (a thief exits at once, well inside the availability timeout)
    /// would otherwise never be reported; exits read after it are reported as they are read.
    fn report_exits_from_bad_blocks(&self) {
        let Some(bad) = self.view.lock().byzantine_from else { return };
        let from_bad: Vec<UtxoPos> =
            self.exits.lock().keys().filter(|p| p.blknum() >= bad).copied().collect();
        for pos in from_bad {
            self.event(Event::ExitFromBadBlock { utxo_pos: pos.to_string() });
        }
    }

    /// WATCH-3: whether a block committed at L1 time `committed_at` and still not obtainable
    /// counts as withheld. The clock is the later of this machine's and the newest L1 block the
    /// watcher read, and the timeout runs from the commitment — not from when this process first
    /// looked — so neither catching up nor restarting gives a withheld block a fresh timeout (and
    /// holds back every later block). Two polls since `seen` (this process's first look) are
    /// always allowed, so a single failed request right after a restart is not a verdict.
    fn availability_expired(&self, committed_at: u64, seen: Instant) -> bool {
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let now_ms = wall_ms.max(self.l1_time.lock().saturating_mul(1000));
        let waited_ms = now_ms.saturating_sub(committed_at.saturating_mul(1000));
        let timeout = self.settings.availability_timeout;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        waited_ms >= timeout_ms && seen.elapsed() >= timeout.min(self.settings.poll * 2)
    }

    /// Persists what applying (or giving up on) `blknum` changed, in one transaction.
    fn persist_block(&self, blknum: u64) -> Result<(), WatcherError> {
        let (journal, synced, byzantine, exiting) = {
            let mut view = self.view.lock();
            let exiting = serde_json::to_vec(&view.exiting).map_err(st)?;
            (std::mem::take(&mut view.journal), view.synced_block, view.byzantine_from, exiting)
        };
        let tx = self.db.begin_write().map_err(st)?;
        {
            let mut utxos = tx.open_table(V_UTXOS).map_err(st)?;
            let mut spends = tx.open_table(V_SPENDS).map_err(st)?;
            let mut blocks = tx.open_table(V_BLOCKS).map_err(st)?;
            for change in journal {
                match change {
                    Change::UtxoAdded(pos, out) => {
                        utxos.insert(pos.to_u128(), out.to_packed().as_slice()).map_err(st)?;
                    }
                    Change::UtxoSpent(pos) => {
                        utxos.remove(pos.to_u128()).map_err(st)?;
                    }
                    Change::Spend(pos, spend) => {
                        let json = serde_json::to_vec(&spend).map_err(st)?;
                        spends.insert(pos.to_u128(), json.as_slice()).map_err(st)?;
                    }
                    Change::Block(n, block) => {
                        let json = serde_json::to_vec(&block).map_err(st)?;
                        blocks.insert(n, json.as_slice()).map_err(st)?;
                    }
                    Change::Byzantine(_) => {}
                }
            }
            let mut meta = tx.open_table(V_META).map_err(st)?;
            meta.insert("synced_block", synced).map_err(st)?;
            if let Some(b) = byzantine {
                meta.insert("byzantine_from", b).map_err(st)?;
            }
            tx.open_table(V_PENDING).map_err(st)?.remove(blknum).map_err(st)?;
            tx.open_table(V_EXITING)
                .map_err(st)?
                .insert("exiting", exiting.as_slice())
                .map_err(st)?;
        }
        tx.commit().map_err(st)
    }

    /// Persists the L1 cursor with everything `follow_l1` queued up to it, in one transaction.
    fn persist_follow(&self, cursor: u64, cursor_hash: B256) -> Result<(), WatcherError> {
        use redb::ReadableTableMetadata;
        let tx = self.db.begin_write().map_err(st)?;
        {
            let mut hashes = tx.open_table(L1_HASHES).map_err(st)?;
            hashes.insert(cursor, cursor_hash.as_slice()).map_err(st)?;
            let excess = hashes.len().map_err(st)?.saturating_sub(L1_HASHES_KEPT as u64);
            for _ in 0..excess {
                hashes.pop_first().map_err(st)?;
            }
            drop(hashes);
            let mut pending = tx.open_table(V_PENDING).map_err(st)?;
            for p in self.pending.lock().iter() {
                let json = serde_json::to_vec(&StoredPending {
                    root: p.root,
                    timestamp: p.timestamp,
                    deposit_tx: p.deposit_tx.clone(),
                })
                .map_err(st)?;
                pending.insert(p.blknum, json.as_slice()).map_err(st)?;
            }
            let mut exits = tx.open_table(V_EXITS).map_err(st)?;
            for (pos, (owner, exitable_at)) in self.exits.lock().iter() {
                let json = serde_json::to_vec(&(owner, exitable_at)).map_err(st)?;
                exits.insert(pos.to_u128(), json.as_slice()).map_err(st)?;
            }
            let mut ifes = tx.open_table(V_IFES).map_err(st)?;
            for (id, w) in self.in_flight_exits.lock().iter() {
                let json = serde_json::to_vec(&StoredInFlight {
                    tx: w.tx.encode().into(),
                    inputs: w.piggybacked_inputs.clone(),
                    outputs: w.piggybacked_outputs.clone(),
                })
                .map_err(st)?;
                ifes.insert(id.as_slice(), json.as_slice()).map_err(st)?;
            }
            let mut meta = tx.open_table(V_META).map_err(st)?;
            meta.insert("cursor", cursor).map_err(st)?;
            meta.insert("last_child_committed", *self.last_child_committed.lock()).map_err(st)?;
            drop(meta);
            let exiting = serde_json::to_vec(&self.view.lock().exiting).map_err(st)?;
            tx.open_table(V_EXITING)
                .map_err(st)?
                .insert("exiting", exiting.as_slice())
                .map_err(st)?;
        }
        tx.commit().map_err(st)
    }

    fn forget_exit(&self, pos: UtxoPos) -> Result<(), WatcherError> {
        let tx = self.db.begin_write().map_err(st)?;
        tx.open_table(V_EXITS).map_err(st)?.remove(pos.to_u128()).map_err(st)?;
        tx.commit().map_err(st)
    }

    /// Rebuilds the view and the work in progress from the store.
    fn restore(&self) -> Result<(), WatcherError> {
        use redb::ReadableTable;
        let tx = self.db.begin_read().map_err(st)?;
        let mut view = self.view.lock();
        let mut created = Vec::new();
        for entry in tx.open_table(V_UTXOS).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            let pos = UtxoPos::from_u128(k.value()).map_err(st)?;
            let out = plasma_spec::Output::from_packed(v.value())
                .ok_or_else(|| WatcherError::Store("corrupt utxo".into()))?;
            self.tokens.lock().insert(out.token);
            created.push((pos, out));
        }
        view.utxos.apply(&plasma_spec::BlockDiff { created, ..plasma_spec::BlockDiff::default() });
        for entry in tx.open_table(V_SPENDS).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            let pos = UtxoPos::from_u128(k.value()).map_err(st)?;
            view.spends.insert(pos, serde_json::from_slice(v.value()).map_err(st)?);
        }
        for entry in tx.open_table(V_BLOCKS).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            view.blocks.insert(k.value(), serde_json::from_slice(v.value()).map_err(st)?);
        }
        if let Some(v) = tx.open_table(V_EXITING).map_err(st)?.get("exiting").map_err(st)? {
            view.exiting = serde_json::from_slice(v.value()).map_err(st)?;
        }
        let meta = tx.open_table(V_META).map_err(st)?;
        view.synced_block = meta.get("synced_block").map_err(st)?.map_or(0, |v| v.value());
        view.byzantine_from = meta.get("byzantine_from").map_err(st)?.map(|v| v.value());
        *self.cursor.lock() = meta.get("cursor").map_err(st)?.map_or(0, |v| v.value());
        *self.last_child_committed.lock() =
            meta.get("last_child_committed").map_err(st)?.map_or(0, |v| v.value());
        drop(view);
        let mut pending = self.pending.lock();
        for entry in tx.open_table(V_PENDING).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            let p: StoredPending = serde_json::from_slice(v.value()).map_err(st)?;
            // The availability clock runs from the commitment's L1 time (WATCH-3), not from now.
            pending.push_back(Pending {
                blknum: k.value(),
                root: p.root,
                timestamp: p.timestamp,
                deposit_tx: p.deposit_tx,
                seen: Instant::now(),
            });
        }
        for entry in tx.open_table(V_EXITS).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            let pos = UtxoPos::from_u128(k.value()).map_err(st)?;
            let (owner, exitable_at): (Address, u64) =
                serde_json::from_slice(v.value()).map_err(st)?;
            self.exits.lock().insert(pos, (owner, exitable_at));
        }
        for entry in tx.open_table(V_IFES).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            let stored: StoredInFlight = serde_json::from_slice(v.value()).map_err(st)?;
            let tx = plasma_spec::Transaction::decode(&stored.tx).map_err(st)?;
            self.in_flight_exits.lock().insert(
                B256::from_slice(k.value()),
                WatchedInFlight {
                    tx,
                    piggybacked_inputs: stored.inputs,
                    piggybacked_outputs: stored.outputs,
                },
            );
        }
        Ok(())
    }

    async fn fetch_block(&self, blknum: u64) -> Option<Vec<Bytes>> {
        let url = format!("{}/v1/blocks/{blknum}", self.settings.operator_url);
        let resp = match self.http.get(&url).timeout(Duration::from_secs(10)).send().await {
            Ok(r) => r,
            Err(e) => {
                debug!(target: "watcher::blocks", blknum, error = ?e, "block not available");
                return None;
            }
        };
        if !resp.status().is_success() {
            debug!(target: "watcher::blocks", blknum, status = %resp.status(), "block not available");
            return None;
        }
        let v: serde_json::Value = match resp.json().await {
            Ok(v) => v,
            Err(e) => {
                warn!(target: "watcher::blocks", blknum, error = %e, "malformed block from the operator");
                return None;
            }
        };
        let txs = v.get("txs")?.as_array()?;
        txs.iter()
            .map(|t| {
                t.as_str()
                    .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
                    .map(Bytes::from)
            })
            .collect()
    }

    async fn challenge_exits(&self) -> Result<(), WatcherError> {
        let watched: Vec<UtxoPos> = self.exits.lock().keys().copied().collect();
        if watched.is_empty() {
            return Ok(());
        }
        // WATCH-4: a spend the watcher has seen included, or one a guarded owner handed in (signed
        // by the owner, in flight): the signature alone defeats the exit (EXIT-4).
        let handed_in = self.guarded_in_flight()?;
        for pos in watched {
            let spend = self
                .view
                .lock()
                .challenge_for(pos)
                .cloned()
                .or_else(|| in_flight_spend_of(&handed_in, pos));
            let Some(spend) = spend else { continue };
            let key = format!("challenge:{}", pos.to_u128());
            let status = self.standard.exits(pos.to_u256()).call().await.map_err(l1)?.status;
            if status != 1 || self.action_done(&key)? {
                // Not active (challenged by someone, or settled) or already ours: stop watching.
                if status != 1
                    && let Some(hash) = self.landed_late(&key).await?
                {
                    self.event(Event::Challenged { utxo_pos: pos.to_string(), l1_tx: hash });
                }
                self.exits.lock().remove(&pos);
                self.forget_exit(pos)?;
                continue;
            }
            self.event(Event::InvalidStandardExit {
                utxo_pos: pos.to_string(),
                spending_tx: spend.hash,
            });
            let call = self.standard.challengeStandardExit(
                pos.to_u256(),
                spend.tx.clone(),
                U256::from(spend.input_index),
                spend.signature.clone(),
            );
            if let Some(hash) = self.act(&key, call, U256::ZERO, ACTION_GAS).await? {
                let deadline = self.exits.lock().remove(&pos).map_or(0, |e| e.1);
                self.forget_exit(pos)?;
                self.event(Event::Challenged { utxo_pos: pos.to_string(), l1_tx: hash });
                self.check_margin(&key, deadline).await;
            }
        }
        Ok(())
    }

    /// CHAL-1 and CHAL-3: an in-flight transaction with a competitor the watcher saw included is
    /// marked non-canonical; a piggybacked input spent by another transaction loses its piggyback.
    async fn challenge_in_flight_exits(&self) -> Result<(), WatcherError> {
        let watched: Vec<(B256, WatchedInFlight)> =
            self.in_flight_exits.lock().iter().map(|(k, v)| (*k, v.clone())).collect();
        for (id, w) in watched {
            let exit_id = U256::from_be_bytes(id.0);
            let Ok(inputs) = w.tx.input_positions() else { continue };
            for (i, input) in inputs.iter().enumerate() {
                let Some(spend) = self.view.lock().challenge_for(*input).cloned() else { continue };
                if spend.hash == id {
                    // The in-flight transaction itself is included: answer any canonicity
                    // challenge with its inclusion (CHAL-2).
                    self.defend_in_flight_exit(id, exit_id, &spend).await?;
                    self.challenge_spent_outputs(id, exit_id, &w, &spend).await?;
                    continue;
                }
                let key = format!("ife-noncanonical:{id}");
                if !self.action_done(&key)? {
                    let proof = self.view.lock().inclusion_proof(spend.blknum, spend.tx_index);
                    if let Some((proof, timestamp)) = proof {
                        let args = InFlightExitGame::CompetitorArgs {
                            exitId: exit_id,
                            inputIndex: i as u8,
                            competingTx: spend.tx.clone(),
                            competitorInputIndex: spend.input_index as u8,
                            competitorSignature: spend.signature.clone(),
                            competitorTxPos: tx_position(spend.blknum, spend.tx_index),
                            competitorProof: proof.into(),
                            competitorBlockTimestamp: timestamp,
                        };
                        let call = self.in_flight.challengeInFlightExitNotCanonical(args);
                        let Some(hash) = self.act(&key, call, U256::ZERO, ACTION_GAS).await? else {
                            continue;
                        };
                        self.event(Event::InFlightExitChallenged { exit_id: id, l1_tx: hash });
                        // Canonicity challenges close with the first half period.
                        if let Ok(state) = self.in_flight.inFlightExit(exit_id).call().await {
                            let phase_end = state.startedAt + self.min_exit_period / 2;
                            self.check_margin(&key, phase_end).await;
                        }
                    }
                }
                let index = i as u8;
                let key = format!("ife-input:{id}:{i}");
                if w.piggybacked_inputs.contains(&index) && !self.action_done(&key)? {
                    let call = self.in_flight.challengeInFlightExitInputSpent(
                        exit_id,
                        index,
                        spend.tx.clone(),
                        spend.input_index as u8,
                        spend.signature.clone(),
                    );
                    let Some(hash) = self.act(&key, call, U256::ZERO, ACTION_GAS).await? else {
                        continue;
                    };
                    self.event(Event::PiggybackChallenged {
                        exit_id: id,
                        input_index: index,
                        l1_tx: hash,
                    });
                }
            }
        }
        Ok(())
    }

    async fn defend_in_flight_exit(
        &self,
        id: B256,
        exit_id: U256,
        spend: &crate::judge::Spend,
    ) -> Result<(), WatcherError> {
        let state = self.in_flight.inFlightExit(exit_id).call().await.map_err(l1)?;
        if !state.nonCanonical || state.verdict != 0 {
            return Ok(());
        }
        let tx_pos = tx_position(spend.blknum, spend.tx_index);
        let key = format!("ife-respond:{id}:{}", state.startedAt);
        if self.action_done(&key)? {
            return Ok(());
        }
        let proof = self.view.lock().inclusion_proof(spend.blknum, spend.tx_index);
        let Some((proof, timestamp)) = proof else { return Ok(()) };
        let call = self.in_flight.respondToNonCanonicalChallenge(
            exit_id,
            spend.tx.clone(),
            tx_pos,
            proof.into(),
            timestamp,
        );
        if let Some(hash) = self.act(&key, call, U256::ZERO, ACTION_GAS).await? {
            self.event(Event::InFlightExitDefended { exit_id: id, l1_tx: hash });
        }
        Ok(())
    }

    /// CHAL-4: the in-flight transaction is included (at `included`), so its outputs have
    /// positions; a piggybacked output the watcher saw spent loses its piggyback.
    async fn challenge_spent_outputs(
        &self,
        id: B256,
        exit_id: U256,
        w: &WatchedInFlight,
        included: &crate::judge::Spend,
    ) -> Result<(), WatcherError> {
        for &index in &w.piggybacked_outputs {
            let Ok(out_pos) = UtxoPos::new(included.blknum, included.tx_index, index) else {
                continue;
            };
            let Some(spend) = self.view.lock().challenge_for(out_pos).cloned() else { continue };
            let key = format!("ife-output:{id}:{index}");
            if self.action_done(&key)? {
                continue;
            }
            let proof = self.view.lock().inclusion_proof(included.blknum, included.tx_index);
            let Some((proof, timestamp)) = proof else { continue };
            let args = InFlightExitGame::OutputSpentArgs {
                exitId: exit_id,
                outputIndex: index,
                inFlightTx: included.tx.clone(),
                inFlightTxPos: tx_position(included.blknum, included.tx_index),
                inclusionProof: proof.into(),
                blockTimestamp: timestamp,
                spendingTx: spend.tx.clone(),
                spendingInputIndex: spend.input_index as u8,
                signature: spend.signature.clone(),
            };
            let call = self.in_flight.challengeInFlightExitOutputSpent(args);
            let Some(hash) = self.act(&key, call, U256::ZERO, ACTION_GAS).await? else { continue };
            self.event(Event::OutputPiggybackChallenged {
                exit_id: id,
                output_index: index,
                l1_tx: hash,
            });
        }
        Ok(())
    }

    /// Nonce and gas price for the next attempt of action `key`: always the confirmed nonce, so a
    /// re-send replaces a stuck one instead of adding to it, and 25% more fee per attempt.
    /// Sends action `key` as the call `call` (with `value` wei) through the shared sender
    /// (`plasma_contracts::sender`: confirmed nonce, 25 % fee bump per stuck attempt, explicit
    /// gas). Returns the hash once mined and successful; a revert is recorded as done too (the
    /// chain's state already moved on) and reported; a refused send is reported as `ActionFailed`
    /// (with the contract's error by name) and retried at the next step.
    async fn act<C: alloy::sol_types::SolCall>(
        &self,
        key: &str,
        call: alloy::contract::SolCallBuilder<&DynProvider, C>,
        value: U256,
        gas: u64,
    ) -> Result<Option<B256>, WatcherError> {
        use plasma_contracts::sender::Outcome;
        match self.sender.send(key, call, value, gas).await.map_err(l1)? {
            Outcome::Mined(receipt) => {
                self.record_action(key, receipt.transaction_hash)?;
                Ok(Some(receipt.transaction_hash))
            }
            Outcome::Reverted { hash, reason } => {
                self.record_action(key, hash)?;
                let reason = reason.map_or_else(
                    || format!("reverted in {hash}"),
                    |r| format!("reverted in {hash}: {r}"),
                );
                self.event(Event::ActionFailed { action: key.to_owned(), reason });
                Ok(None)
            }
            Outcome::Pending { .. } => {
                warn!(target: "watcher::sender", action = key, "action not mined yet; will bump its fee");
                Ok(None)
            }
            Outcome::Refused { reason } => {
                self.event(Event::ActionFailed { action: key.to_owned(), reason });
                Ok(None)
            }
        }
    }

    /// If an earlier, stuck attempt of `key` was mined after all, records it and returns its hash.
    async fn landed_late(&self, key: &str) -> Result<Option<B256>, WatcherError> {
        match self.sender.landed_late(key).await.map_err(l1)? {
            Some(receipt) if receipt.status() => {
                self.record_action(key, receipt.transaction_hash)?;
                Ok(Some(receipt.transaction_hash))
            }
            _ => Ok(None),
        }
    }

    /// WATCH-11: alerts when an action went out with less than the margin left.
    async fn check_margin(&self, action: &str, deadline: u64) {
        let Ok(Some(block)) =
            self.provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest).await
        else {
            return;
        };
        let now = block.header.timestamp;
        let left = deadline.saturating_sub(now);
        if left <= self.settings.deadline_margin.as_secs() {
            self.event(Event::DeadlineTight { action: action.to_owned(), seconds_left: left });
        }
    }

    async fn process_due_exits(&self) -> Result<(), WatcherError> {
        // A node that mines only on demand (a devnet) leaves the latest block's time behind the
        // clock; the next block, the one processExits lands in, will carry the clock's time.
        let latest = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(l1)?
            .map_or(0, |b| b.header.timestamp);
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let now = latest.max(clock);
        let tokens: Vec<Address> = self.tokens.lock().iter().copied().collect();
        for token in tokens {
            let head = self.framework.queueHead(token).call().await.map_err(l1)?.head;
            if head.is_zero() || u64::try_from(head >> 192usize).unwrap_or(u64::MAX) > now {
                continue;
            }
            match self.framework.processExits(token, head, U256::from(100)).send().await {
                Ok(pending) => {
                    let hash = *pending.tx_hash();
                    let _ = tokio::time::timeout(self.settings.stuck_after, pending.get_receipt())
                        .await;
                    self.event(Event::ExitsProcessed { token, l1_tx: hash });
                }
                // Someone else processed the head first (the topPriority guard): fine.
                Err(e) => debug!(target: "watcher", error = %e, %token, "processExits not sent"),
            }
        }
        Ok(())
    }

    /// WATCH-9: on a byzantine chain, starts the standard exits of every guarded owner's outputs
    /// older than the first bad block, many owners per L1 transaction. Only outputs with no exit
    /// yet are included (an owner may have exited by itself: one such output would revert the
    /// whole batch). A batch that reverted anyway is retried one output per transaction, so one
    /// bad entry cannot hold the others back.
    async fn mass_exit_if_byzantine(&self) -> Result<(), WatcherError> {
        if self.view.lock().byzantine_from.is_none() {
            return Ok(());
        }
        // Inputs of guarded payments still in flight are exited through their in-flight exit:
        // a standard exit of such an input would make the payment non-canonical (EXIT-11) and
        // cost its recipients.
        let in_flight = self.guarded_in_flight()?;
        let spent_in_flight: std::collections::HashSet<UtxoPos> = in_flight
            .iter()
            .filter_map(|t| t.transaction.input_positions().ok())
            .flatten()
            .collect();
        for signed in &in_flight {
            self.start_guarded_in_flight_exit(signed).await?;
        }
        // WATCH-13: every guarded output worth exiting, with its amount, then a plan the balance
        // pays for — richest first, dust never.
        let mut todo: Vec<(U256, (StandardExitGame::StartArgs, StandardExitGame::Authorization))> =
            Vec::new();
        for guard in self.guards()? {
            let mut mine = Vec::new();
            {
                let view = self.view.lock();
                let last_child = *self.last_child_committed.lock();
                let mut outputs = view.exitable_outputs_of(guard.owner);
                outputs.extend(view.late_deposits_of(guard.owner, last_child));
                for (pos, output) in outputs {
                    if spent_in_flight.contains(&pos) {
                        continue;
                    }
                    let Some((proof, timestamp)) =
                        view.inclusion_proof(pos.blknum(), pos.tx_index())
                    else {
                        continue;
                    };
                    let Some(tx) = view
                        .blocks
                        .get(&pos.blknum())
                        .and_then(|b| b.leaves.get(usize::from(pos.tx_index())))
                    else {
                        continue;
                    };
                    let args = StandardExitGame::StartArgs {
                        utxoPos: pos.to_u256(),
                        txBytes: tx.clone().into(),
                        inclusionProof: proof.into(),
                        blockTimestamp: timestamp,
                    };
                    mine.push((output.amount, args));
                }
            }
            for (amount, args) in mine {
                if self.exit_seen_started.lock().contains(&args.utxoPos) {
                    continue;
                }
                if self.standard.exits(args.utxoPos).call().await.map_err(l1)?.status != 0 {
                    // Started already, by us or by the owner: no need to ask L1 again.
                    self.exit_seen_started.lock().insert(args.utxoPos);
                    continue;
                }
                let auth = StandardExitGame::Authorization {
                    deadline: guard.deadline,
                    nonce: guard.nonce,
                    signature: guard.signature.clone(),
                };
                todo.push((amount, (args, auth)));
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        // Older positions first among equal amounts (the plan's sort is stable).
        todo.sort_by_key(|(_, (a, _))| a.utxoPos);
        let (balance, costs) = self.exit_costs().await?;
        let worth = todo.len();
        let plan = budget::plan(todo, balance, &costs, MASS_EXIT_BATCH);
        self.note_plan(worth - plan.dust.len(), plan.unaffordable.len(), balance);
        let dust = plan.dust.len();
        if dust > 0 && std::mem::replace(&mut *self.dust_reported.lock(), dust) != dust {
            self.event(Event::DustSkipped { outputs: dust, below: costs.dust_below() });
        }
        let bond = costs.bond;
        for chunk in &plan.batches {
            let first = chunk[0].0.utxoPos;
            let key = format!("mass-exit:{first}:{}", chunk.len());
            if !self.action_done(&key)? {
                self.send_mass_exit(&key, chunk, bond).await?;
                continue;
            }
            // This very batch was mined and reverted: try its outputs one by one.
            for one in chunk.chunks(1) {
                let key = format!("mass-exit:{}:1", one[0].0.utxoPos);
                if !self.action_done(&key)? {
                    self.send_mass_exit(&key, one, bond).await?;
                }
            }
        }
        Ok(())
    }

    /// WATCH-13: after each newly validated block, whether the balance still pays for exiting
    /// every guarded output worth exiting; `underfunded` the moment it does not (once per count).
    async fn check_funding(&self) -> Result<(), WatcherError> {
        let synced = self.view.lock().synced_block;
        if self.funding.lock().0 == synced {
            return Ok(());
        }
        let guards = self.guards()?;
        let amounts: Vec<(U256, ())> = {
            let view = self.view.lock();
            guards
                .iter()
                .flat_map(|g| view.exitable_outputs_of(g.owner))
                .map(|(_, o)| (o.amount, ()))
                .collect()
        };
        let (balance, costs) = self.exit_costs().await?;
        let plan = budget::plan(amounts, balance, &costs, MASS_EXIT_BATCH);
        let worth = plan.batches.iter().map(Vec::len).sum::<usize>() + plan.unaffordable.len();
        let short = plan.unaffordable.len();
        self.note_plan(worth, short, balance);
        self.funding.lock().0 = synced;
        Ok(())
    }

    /// Records a funding figure; reports `underfunded` when the shortfall appears or changes.
    fn note_plan(&self, worth: usize, short: usize, balance: U256) {
        let was_short = {
            let mut f = self.funding.lock();
            let was = f.2;
            (f.1, f.2) = (worth, short);
            was
        };
        if short > 0 && short != was_short {
            warn!(target: "watcher::budget", worth, short, %balance, "the balance cannot exit every guarded output");
            self.event(Event::Underfunded { outputs: worth, unaffordable: short, balance });
        }
    }

    /// WATCH-9 with EXIT-9: exits a guarded payment caught in flight for its owners, who may be
    /// offline. Starts its in-flight exit for a guarded party with that owner's authorization
    /// (`startInFlightExitFor`, the watcher's bond) unless one is open or settled, and again if the
    /// last one was deleted (a deletion frees the payment, EXIT-6); then, in phase 1, piggybacks
    /// with their owners' authorizations every input and output a guarded owner holds that is not
    /// piggybacked yet (EXIT-8): settlement pays the outputs if the payment is canonical and the
    /// inputs if not (EXIT-11), so both are claimed.
    async fn start_guarded_in_flight_exit(
        &self,
        signed: &plasma_spec::SignedTransaction,
    ) -> Result<(), WatcherError> {
        /// `inFlightExit(..).verdict` of an exit deleted unpiggybacked (EXIT-11).
        const DELETED: u8 = 3;
        let hash = signed.transaction.hash();
        let exit_id = U256::from_be_bytes(hash.0);
        let guards: std::collections::HashMap<Address, Guard> =
            self.guards()?.into_iter().map(|g| (g.owner, g)).collect();
        let auth_of = |g: &Guard| InFlightExitGame::Authorization {
            deadline: g.deadline,
            nonce: g.nonce,
            signature: g.signature.clone(),
        };
        let mut state = self.in_flight.inFlightExit(exit_id).call().await.map_err(l1)?;
        if state.startedAt == 0 || state.verdict == DELETED {
            // One key per start: the first, and one per deleted exit (named by its start time).
            let key = if state.startedAt == 0 {
                format!("guard-ife:{hash}")
            } else {
                format!("guard-ife:{hash}:{}", state.startedAt)
            };
            if self.action_done(&key)? {
                return Ok(()); // sent and reverted: nothing more to try for this start
            }
            let Ok(inputs) = signed.transaction.input_positions() else { return Ok(()) };
            let mut input_txs = Vec::new();
            let mut proofs = Vec::new();
            let mut timestamps = Vec::new();
            let mut parties: Vec<Address> =
                signed.transaction.outputs.iter().map(|o| o.owner).collect();
            {
                let view = self.view.lock();
                for p in &inputs {
                    let leaf = view
                        .blocks
                        .get(&p.blknum())
                        .and_then(|b| b.leaves.get(usize::from(p.tx_index())).cloned());
                    let Some(leaf) = leaf else { return Ok(()) };
                    let Some((proof, timestamp)) = view.inclusion_proof(p.blknum(), p.tx_index())
                    else {
                        return Ok(());
                    };
                    if let Some(spent) = plasma_spec::UtxoView::utxo(&view.utxos, *p) {
                        parties.insert(0, spent.owner); // the signers first
                    }
                    input_txs.push(leaf.into());
                    proofs.push(proof.into());
                    timestamps.push(timestamp);
                }
            }
            // EXIT-6: only for a party, here one whose authorization the watcher holds.
            let Some(party) = parties.iter().find_map(|a| guards.get(a)) else { return Ok(()) };
            let args = InFlightExitGame::StartArgs {
                inFlightTx: signed.transaction.encode().into(),
                inputTxs: input_txs,
                inputUtxoPos: inputs.iter().map(UtxoPos::to_u256).collect(),
                inputProofs: proofs,
                inputBlockTimestamps: timestamps,
                signatures: signed.signatures.clone(),
            };
            let bond = self.in_flight.inFlightExitBond().call().await.map_err(l1)?;
            let gas = ACTION_GAS + IN_FLIGHT_GAS_PER_INPUT * inputs.len() as u64;
            let call = self.in_flight.startInFlightExitFor(args, auth_of(party));
            let Some(l1_tx) = self.act(&key, call, bond, gas).await? else { return Ok(()) };
            self.event(Event::GuardedInFlightExitStarted { exit_id: hash, l1_tx });
            state = self.in_flight.inFlightExit(exit_id).call().await.map_err(l1)?;
        }
        if state.verdict != 0 || state.startedAt == 0 {
            return Ok(()); // settled (or the start has not landed): nothing to claim
        }
        // EXIT-8: piggybacks close with phase 1.
        let phase_end = state.startedAt + self.min_exit_period / 2;
        let now = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(l1)?
            .map_or(0, |b| b.header.timestamp);
        if now >= phase_end {
            return Ok(());
        }
        let n_inputs = signed.transaction.inputs.len();
        let mut items: Vec<(bool, u8, Address)> = Vec::new();
        for i in 0..n_inputs {
            let input = self.in_flight.inFlightExitInput(exit_id, U256::from(i)).call().await;
            items.push((false, i as u8, input.map_err(l1)?.owner));
        }
        for (j, o) in signed.transaction.outputs.iter().enumerate() {
            items.push((true, j as u8, o.owner));
        }
        for (is_output, index, owner) in items {
            let bit = if is_output { 5 + u32::from(index) } else { u32::from(index) };
            if state.piggybacks & (1u16 << bit) != 0 {
                continue; // its owner (or someone for it) already claimed it
            }
            let Some(guard) = guards.get(&owner) else { continue };
            let kind = if is_output { "out" } else { "in" };
            let key = format!("guard-pb:{hash}:{}:{kind}{index}", state.startedAt);
            if self.action_done(&key)? {
                continue;
            }
            let bond = state.piggybackBondAmount;
            let call = self.in_flight.piggybackFor(exit_id, is_output, index, auth_of(guard));
            let sent = self.act(&key, call, bond, ACTION_GAS).await?;
            if sent.is_some() {
                info!(target: "watcher::guard", exit = %hash, %owner, is_output, index, "piggybacked for a guarded owner");
                self.check_margin(&key, phase_end).await;
            }
        }
        Ok(())
    }

    async fn send_mass_exit(
        &self,
        key: &str,
        batch: &[(StandardExitGame::StartArgs, StandardExitGame::Authorization)],
        bond: U256,
    ) -> Result<(), WatcherError> {
        let n = batch.len();
        let (args, auths): (Vec<_>, Vec<_>) = batch.iter().cloned().unzip();
        let call = self.standard.startStandardExitsFor(args, auths);
        let gas = ACTION_GAS + MASS_EXIT_GAS_PER_OUTPUT * n as u64;
        if let Some(hash) = self.act(key, call, bond * U256::from(n), gas).await? {
            self.event(Event::MassExit { outputs: n, l1_tx: hash });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(availability: u64, stuck: u64) -> Settings {
        Settings {
            framework: Address::ZERO,
            operator_url: String::new(),
            confirmations: 1,
            poll: Duration::from_millis(500),
            availability_timeout: Duration::from_secs(availability),
            process_exits: false,
            deadline_margin: Duration::from_secs(3600),
            stuck_after: Duration::from_secs(stuck),
            l1_block_time: Duration::from_secs(1),
        }
    }

    #[test]
    fn timing_that_lets_a_bad_block_exit_first_is_refused() {
        // The reproduced theft: p = 20 s with the old fixed 30 s timeout.
        let err = settings(30, 60).check_timing(20).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("WATCH-12") && msg.contains("(20s)") && msg.contains("30s"), "{msg}");
        // What scripts/devnet derives (A = p/6, s = p/10) works at both periods.
        settings(3, 2).check_timing(20).unwrap();
        settings(10, 6).check_timing(60).unwrap();
        // The production defaults against a week.
        settings(30, 60).check_timing(7 * 24 * 3600).unwrap();
        // The boundary: R = 10 + 1 + 3 + 0.5 = 14.5 s needs p >= 29 s.
        assert!(settings(10, 3).check_timing(28).is_err());
        settings(10, 3).check_timing(29).unwrap();
    }
}
