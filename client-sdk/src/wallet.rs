//! The wallet: keys, deposits, verified outputs, transfers, and exits that need only L1 and the
//! local store.

mod batch;
mod consolidate;
mod in_flight;
mod schedule;

pub use batch::{
    BatchChunk, BatchExitOptions, BatchExitReport, DEFAULT_BATCH_CLAIMS, MAX_BATCH_CLAIMS_PER_TX,
    PayoutChunk, PayoutReport, TX_GAS_CAP,
};
pub use consolidate::{ConsolidateOptions, ConsolidateReport, MergePayment};
pub use in_flight::{PAYMENT_PACKAGE_VERSION, PackageInput, PaymentPackage, RecipientExit};
pub use schedule::ExitTiming;

use crate::{
    client::{BlockData, ExitData, ListedUtxo, OperatorClient},
    error::SdkError,
    sources::{SourceFailure, SourceId, Sources},
    store::{
        ChainIdentity, OutputStatus, ProofStore, SpentSource, StoredOutput, SyncRecord, Touch,
        Verification,
    },
    sync::{Checker, Commitments, SyncOptions, SyncProgress, Verified, unix_now},
};
use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, TxHash, U256, keccak256},
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::{SolEvent, SolValue},
};
use plasma_contracts::{InFlightExitGame, PlasmaFramework, StandardExitGame, TestToken};
use plasma_spec::{
    BlockTree, ExitAuthorization, Output, Proof, SignedTransaction, Signer, SigningDomain,
    Transaction, UtxoPos, is_deposit_block, leaf_hash,
};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    path::PathBuf,
    time::Duration,
};

/// Where the wallet's chain lives.
#[derive(Clone, Debug)]
pub struct WalletConfig {
    /// L1 JSON-RPC endpoint.
    pub l1_rpc_url: String,
    /// The operator's API: one base URL, or several separated by commas (an active operator and
    /// its standbys, e.g. `http://op-a:9656,http://op-b:9656`), as `l1_rpc_url` takes several L1
    /// endpoints. With several, every request fails over between them
    /// ([`crate::FailoverPolicy`]); towers are another list ([`Wallet::with_towers`]).
    pub operator_url: String,
    /// The framework contract.
    pub framework: Address,
    /// The L1 chain id the wallet expects (checked at connect), if pinned.
    pub chain_id: Option<u64>,
    /// The local proof store's file.
    pub store_path: PathBuf,
}

impl WalletConfig {
    /// The operator URLs [`WalletConfig::operator_url`] lists, in order (trimmed, without
    /// trailing slashes, blanks and repeats dropped).
    pub fn operator_urls(&self) -> Vec<String> {
        crate::client::split_urls([self.operator_url.as_str()])
    }

    /// Every operator URL, each checked to be an `http`/`https` URL: a typo is refused before
    /// anything is sent.
    fn checked_operator_urls(&self) -> Result<Vec<String>, SdkError> {
        let urls = self.operator_urls();
        if urls.is_empty() {
            return Err(SdkError::Config("no operator URL given".into()));
        }
        for url in &urls {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => {
                    return Err(SdkError::Config(format!(
                        "operator URL `{}` is not an http(s) URL",
                        crate::client::redact(url)
                    )));
                }
            }
        }
        Ok(urls)
    }
}

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Outputs newly verified and stored.
    pub added: usize,
    /// Outputs already stored.
    pub known: usize,
    /// Outputs the operator listed whose blocks are not committed yet.
    pub pending: usize,
    /// Stored outputs found gone in this sync: spent, exiting or finalized.
    pub gone: usize,
    /// Stored outputs whose creating transaction is invalid (the operator is byzantine).
    pub invalid: usize,
    /// Unspent stored outputs that no tower lists, the operator not answering (positions,
    /// ascending): "not listed by the towers". They stay unspent, since a tower's word is no
    /// evidence (DA-11), but they may be spent: an exit of a spent output is challenged and
    /// loses its bond.
    pub unlisted: Vec<u128>,
    /// Unspent stored outputs that only towers list, the operator not answering (positions,
    /// ascending): see [`RestoreReport::tower_only`].
    pub tower_only: Vec<u128>,
    /// Stored outputs given back to spending because the payment that marked them spent, whose
    /// outcome this wallet never learnt, is unknown to the operator
    /// ([`Wallet::forget_unknown_sends`]).
    pub freed: usize,
}

/// One L1 transaction of a split exit ([`Wallet::start_exits_with`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitChunk {
    /// The L1 transaction.
    pub l1_tx: TxHash,
    /// Positions whose standard exits it started.
    pub started: Vec<u128>,
    /// Positions the contract skipped (EXIT-10: already exiting, finalized, not the owner's),
    /// with the reason; their bonds were credited back.
    pub skipped: Vec<(u128, String)>,
    /// Gas it used.
    pub gas_used: u64,
}

/// What a split exit did: the chunks mined, in order, and what was not sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExitReport {
    /// The L1 transactions mined, in the order sent.
    pub chunks: Vec<ExitChunk>,
    /// Positions not sent (a chunk failed: see `error`).
    pub not_started: Vec<u128>,
    /// Why the positions in `not_started` were not started.
    pub error: Option<String>,
}

impl ExitReport {
    /// Every position whose exit started.
    pub fn started(&self) -> Vec<u128> {
        self.chunks.iter().flat_map(|c| c.started.iter().copied()).collect()
    }
}

/// A wallet.
#[derive(Debug)]
pub struct Wallet {
    key: PrivateKeySigner,
    signer: Signer,
    provider: DynProvider,
    framework: PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    standard: StandardExitGame::StandardExitGameInstance<DynProvider>,
    in_flight: InFlightExitGame::InFlightExitGameInstance<DynProvider>,
    /// The batch exit game (EXIT-12), if the deployment has one.
    batch: Option<batch::Game>,
    domain: SigningDomain,
    /// The operator: submissions and transaction status go only here.
    client: OperatorClient,
    /// Where reads go: the operator, then the towers in order (DA-12).
    sources: Sources,
    store: ProofStore,
    /// The L1 block the deployment was bound in, when known (where L1 scans start).
    deployment_block: Option<u64>,
    /// Watchers whose verdict makes a payment final.
    watchers: Vec<String>,
    /// Page and batch sizes of a sync.
    sync_options: SyncOptions,
}

/// A watcher's verdict, from its `/status`.
#[derive(Clone, Debug)]
struct WatcherView {
    url: String,
    synced_block: u64,
    byzantine_from: Option<u64>,
}

/// What the sources list as this owner's unspent outputs, and what that shows of the outputs it
/// leaves out (LEDGER-9: spent or exiting). The operator's listing speaks for every block: what
/// it leaves out is gone, as far as the wallet can tell. When it fails, the towers list the rest
/// (DA-12); what they list is found (and verified against L1), but what they leave out is not
/// known gone: absence from a listing cannot be verified, and a tower is trusted for nothing
/// (DA-11), however far it says it validated.
#[derive(Clone, Debug, Default)]
struct Listing {
    /// Every listed position (the operator's, then the union of the towers').
    positions: BTreeSet<u128>,
    /// The positions the operator's listing covers: up to this one (`u128::MAX`: all).
    operator_to: Option<u128>,
    /// When the towers listed the rest: the towers that did.
    towers: Option<String>,
}

impl Listing {
    /// The operator's own listing of `positions`, all of it.
    fn operator(positions: BTreeSet<u128>) -> Self {
        Self { positions, operator_to: Some(u128::MAX), towers: None }
    }

    /// Whether the operator's listing speaks for `utxo_pos` (listed or not).
    fn by_operator(&self, utxo_pos: u128) -> bool {
        self.operator_to.is_some_and(|c| utxo_pos <= c)
    }

    /// The evidence that `utxo_pos` is gone (spent or exiting, LEDGER-9), if the listing shows
    /// it: only the operator's own listing can (spec: DA-11, DA-12). One the towers leave out is
    /// [`Listing::unlisted_by_towers`] instead.
    fn gone(&self, utxo_pos: u128) -> Option<String> {
        (!self.positions.contains(&utxo_pos) && self.by_operator(utxo_pos)).then(|| {
            "the operator no longer lists it as unspent; if the operator lies, exit it unchecked \
             (plasma exit --force)"
                .into()
        })
    }

    /// Whether `utxo_pos` is beyond what the operator listed and no tower lists it ("not listed
    /// by the towers"): reported, never taken as spent (spec: DA-11).
    fn unlisted_by_towers(&self, utxo_pos: u128) -> bool {
        self.towers.is_some() && !self.positions.contains(&utxo_pos) && !self.by_operator(utxo_pos)
    }

    /// Whether only towers list `utxo_pos` (the operator's listing does not cover it): a tower
    /// may be behind the chain, so it may be spent (spec: DA-11, labelled).
    fn by_towers_only(&self, utxo_pos: u128) -> bool {
        self.positions.contains(&utxo_pos) && !self.by_operator(utxo_pos)
    }
}

/// What a re-check found (see [`Wallet::recheck`]).
#[derive(Clone, Debug, Default)]
struct Rechecked {
    /// Outputs newly found gone.
    gone: usize,
    /// Unspent outputs no tower lists, the operator not answering, ascending.
    unlisted: Vec<u128>,
    /// Unspent outputs only towers list, the operator not answering, ascending.
    tower_only: Vec<u128>,
}

/// What a re-check makes of one output: its status, the evidence, and who showed a `spent` one.
type Status = (OutputStatus, Option<String>, Option<SpentSource>);

/// What [`Wallet::restore`] did (spec: DA-12).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Per source, in reading order (the operator first): what it listed and served.
    pub sources: Vec<SourceReport>,
    /// Distinct positions listed by any source (the union).
    pub listed: usize,
    /// Outputs verified against L1 and stored.
    pub added: usize,
    /// Listed outputs the store already held.
    pub known: usize,
    /// Listed outputs whose blocks are not committed on L1 yet, or that no source serves: not
    /// stored (a later sync or restore picks them up).
    pub pending: usize,
    /// Listed outputs no source proved against L1 (a source listed what is not this wallet's,
    /// or served only wrong proofs), with why: not stored.
    pub rejected: Vec<(u128, String)>,
    /// Stored outputs the re-check after found gone (spent, exiting, finalized).
    pub gone: usize,
    /// Stored outputs from invalid transactions (not counted).
    pub invalid: usize,
    /// Unspent stored outputs that no tower lists, the operator not answering, ascending (see
    /// [`SyncReport::unlisted`]).
    pub unlisted: Vec<u128>,
    /// Unspent stored outputs that only towers list, the operator's listing having failed
    /// (positions, ascending). A tower lists from its own validated history, which may be behind
    /// the chain (or it may lie by omission of a later spend), so such an output may already be
    /// spent: its standard exit would then be challenged and lose its bond. Each was verified
    /// against L1 (it was created as stored); only whether it is still unspent is unknown.
    pub tower_only: Vec<u128>,
}

/// One source's part in a [`RestoreReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceReport {
    /// The source.
    pub source: SourceId,
    /// How many outputs it listed (`None`: its listing failed, see `error`).
    pub listed: Option<usize>,
    /// How many of them no other source listed.
    pub only_here: usize,
    /// How many of the outputs stored by the restore had their proof from it.
    pub proofs: usize,
    /// Why its listing failed.
    pub error: Option<SourceFailure>,
}

/// L1 blocks the exit-event scan reads again each time: an event in a block a reorg replaced is
/// seen in the new one.
const REORG_MARGIN: u64 = 64;

/// The leaves of a block as served: child blocks carry signed transactions, whose leaves are the
/// unsigned bytes (MERKLE-1).
fn leaves_of(blknum: u64, block: &BlockData) -> Option<Vec<Vec<u8>>> {
    if is_deposit_block(blknum) {
        return Some(block.txs.iter().map(|t| t.to_vec()).collect());
    }
    block
        .txs
        .iter()
        .map(|t| SignedTransaction::decode(t).ok().map(|s| s.transaction.encode()))
        .collect()
}

fn l1(e: impl std::fmt::Display) -> SdkError {
    SdkError::L1(e.to_string())
}

/// Waits for a sent L1 transaction's receipt through the shared sender
/// (`plasma_contracts::sender::mined`): a revert at estimation is named by the contract's custom
/// error, a mined revert names `what` and the transaction.
async fn mined(
    sent: Result<
        alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
        alloy::contract::Error,
    >,
    what: &str,
) -> Result<alloy::rpc::types::TransactionReceipt, SdkError> {
    plasma_contracts::sender::mined(sent, what).await.map_err(l1)
}

/// Whether a submit's error says the operator refused the payment itself (so it holds nothing
/// to include): a typed refusal other than "ask again" or a server-side failure, whose write may
/// still have happened (OP-1: `SubmitInProgress`; a fenced or failed store).
fn refused_outright(e: &SdkError) -> bool {
    matches!(e, SdkError::OperatorRefused { code, .. }
        if !matches!(code.as_str(), "SubmitInProgress" | "NotLeader" | "StorageFailure"
            | "ShuttingDown" | "Internal" | "Unknown"))
}

fn mismatch(pos: u128, reason: impl Into<String>) -> SdkError {
    SdkError::ProofMismatch { utxo_pos: pos.to_string(), reason: reason.into() }
}

impl Wallet {
    /// Connects a key to L1, the operator and the local store; checks the chain id if pinned.
    pub async fn connect(key: PrivateKeySigner, config: &WalletConfig) -> Result<Self, SdkError> {
        let signer = Signer::from_bytes(&B256::from(key.to_bytes()))
            .ok_or_else(|| SdkError::Config("bad key".into()))?;
        let operator_urls = config.checked_operator_urls()?;
        // One endpoint or several (comma-separated, failover), http or https (PLASMA_CA_FILE
        // trusted); errors say why an endpoint cannot be reached, without its API key.
        let endpoints = plasma_contracts::l1::Endpoints::parse(&config.l1_rpc_url)
            .map_err(|e| SdkError::Config(e.to_string()))?;
        let (provider, _endpoint_health) =
            plasma_contracts::l1::connect(&endpoints, EthereumWallet::from(key.clone()))
                .map_err(|e| SdkError::Config(e.to_string()))?;
        let chain_id = provider.get_chain_id().await.map_err(l1)?;
        if let Some(expected) = config.chain_id
            && expected != chain_id
        {
            return Err(SdkError::WrongChain { expected, got: chain_id });
        }
        let plasma_contracts::Contracts { framework, standard, in_flight } =
            plasma_contracts::Contracts::bind(config.framework, provider.clone())
                .await
                .map_err(l1)?;
        let batch = batch::bind(&framework, &provider).await;
        let identity = Self::identity(&provider, chain_id, config.framework).await?;
        let store = ProofStore::open(&config.store_path)?;
        if let Err(stored) = store.bind(&identity)? {
            return Err(SdkError::StoreOfAnotherChain {
                path: config.store_path.display().to_string(),
                stored: stored.to_string(),
                current: identity.to_string(),
            });
        }
        // One client for submissions and reads: its clones share which URL leads.
        let client = OperatorClient::with_urls(operator_urls.iter().map(String::as_str));
        Ok(Self {
            key,
            signer,
            provider,
            framework,
            standard,
            in_flight,
            batch,
            domain: SigningDomain::new(chain_id, config.framework),
            sources: Sources::new(client.clone()),
            client,
            store,
            deployment_block: identity.deployment.map(|(n, _)| n),
            watchers: Vec::new(),
            sync_options: SyncOptions::default(),
        })
    }

    /// The watchers (base URLs) whose `/status` the wallet consults before calling a received
    /// payment final (`proof+tx+watcher`).
    #[must_use]
    pub fn with_watchers(mut self, urls: Vec<String>) -> Self {
        self.watchers = urls.into_iter().map(|u| u.trim_end_matches('/').to_owned()).collect();
        self
    }

    /// How [`Wallet::sync`] pages and batches (the defaults suit any operator following the
    /// API's limits; tests use small pages).
    #[must_use]
    pub fn with_sync_options(mut self, options: SyncOptions) -> Self {
        self.client = self.client.clone().with_page_size(options.page_size);
        self.sources = self.sources.clone().with_page_size(options.page_size);
        self.sync_options = options;
        self
    }

    /// How requests fail over between several operator URLs (the default suits an operator
    /// pair with the default lease; tests use short pauses).
    #[must_use]
    pub fn with_operator_failover(mut self, policy: crate::FailoverPolicy) -> Self {
        self.client = self.client.clone().with_failover(policy);
        self.sources = self.sources.clone().with_operator_failover(policy);
        self
    }

    /// The towers (base URLs, in order) the wallet reads from when the operator fails, refuses
    /// (`BlockWithheld`, …) or serves data that does not verify against L1 (spec: DA-12): sync,
    /// balance refresh, restore, exits, in-flight exits. Replaces any list given before; an empty
    /// list reads from the operator alone. Submissions always go to the operator only.
    #[must_use]
    pub fn with_towers(mut self, urls: Vec<String>) -> Self {
        self.set_towers(urls);
        self
    }

    /// [`Wallet::with_towers`] on a wallet in place.
    pub fn set_towers(&mut self, urls: Vec<String>) {
        self.sources = self.sources.clone().with_towers(urls);
    }

    /// The towers the wallet falls back to, in order (see [`Wallet::with_towers`]).
    pub fn towers(&self) -> Vec<String> {
        self.sources.tower_urls()
    }

    /// Every source the wallet reads from, in order: the operator, then the towers.
    pub fn sources(&self) -> Vec<SourceId> {
        self.sources.iter().map(|(_, id, _)| id.clone()).collect()
    }

    /// Which chain and deployment L1 is: chain id, genesis hash, framework, and the L1 block that
    /// bound the exit games (`ExitGamesBound`) if the node answers the log query.
    async fn identity(
        provider: &DynProvider,
        chain_id: u64,
        framework: Address,
    ) -> Result<ChainIdentity, SdkError> {
        if provider.get_code_at(framework).await.map_err(l1)?.is_empty() {
            return Err(SdkError::Config(format!("no contract at framework address {framework}")));
        }
        let genesis = provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Number(0))
            .await
            .map_err(l1)?
            .ok_or_else(|| SdkError::L1("no genesis block".into()))?
            .header
            .hash;
        // The games were bound after the framework was created: the search starts there (one
        // call), not at genesis, a range hosted providers refuse on a public chain (WATCH-1).
        let created =
            plasma_contracts::deployment_block(&PlasmaFramework::new(framework, provider.clone()))
                .await
                .unwrap_or(0);
        let filter = Filter::new()
            .address(framework)
            .event_signature(PlasmaFramework::ExitGamesBound::SIGNATURE_HASH)
            .from_block(created);
        let deployment = provider
            .get_logs(&filter)
            .await
            .ok()
            .and_then(|logs| logs.first().and_then(|l| Some((l.block_number?, l.block_hash?))));
        Ok(ChainIdentity { chain_id, framework, genesis, deployment })
    }

    /// The chain and deployment the wallet (and its store) is bound to.
    pub async fn chain_identity(&self) -> Result<ChainIdentity, SdkError> {
        Self::identity(&self.provider, self.domain_chain_id(), *self.framework.address()).await
    }

    fn domain_chain_id(&self) -> u64 {
        self.domain.domain().chain_id.map_or(0, |c| c.to::<u64>())
    }

    /// Loads a key from a Web3 Secret Storage keystore (what geth and `cast wallet` write).
    pub fn key_from_keystore(
        path: &std::path::Path,
        password: &str,
    ) -> Result<PrivateKeySigner, SdkError> {
        PrivateKeySigner::decrypt_keystore(path, password)
            .map_err(|e| SdkError::Config(format!("keystore: {e}")))
    }

    /// The wallet's address.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    /// The signing domain (chain id and framework).
    pub const fn domain(&self) -> &SigningDomain {
        &self.domain
    }

    /// The operator client.
    pub const fn operator(&self) -> &OperatorClient {
        &self.client
    }

    /// The local store (history, token metadata; the CLI records what it did there).
    pub const fn store(&self) -> &ProofStore {
        &self.store
    }

    /// The L1 provider the wallet signs with (reads of bonds and token metadata).
    pub const fn provider(&self) -> &DynProvider {
        &self.provider
    }

    // ---------------------------------------------------------------- deposits

    /// Deposits ETH; returns the deposit output's position once L1 mined it.
    pub async fn deposit_eth(&self, amount: U256) -> Result<u128, SdkError> {
        let tx = Transaction::deposit(self.address(), Address::ZERO, amount).encode();
        let receipt =
            mined(self.framework.depositEth(tx.into()).value(amount).send().await, "deposit")
                .await?;
        Self::deposit_position(&receipt)
    }

    /// Approves and deposits an ERC-20 token; returns the deposit output's position.
    pub async fn deposit_erc20(&self, token: Address, amount: U256) -> Result<u128, SdkError> {
        let erc20 = TestToken::new(token, self.provider.clone());
        mined(erc20.approve(*self.framework.address(), amount).send().await, "approve").await?;
        let tx = Transaction::deposit(self.address(), token, amount).encode();
        let receipt = mined(self.framework.depositErc20(tx.into()).send().await, "deposit").await?;
        Self::deposit_position(&receipt)
    }

    fn deposit_position(receipt: &alloy::rpc::types::TransactionReceipt) -> Result<u128, SdkError> {
        if !receipt.status() {
            return Err(SdkError::L1(format!("deposit reverted in {}", receipt.transaction_hash)));
        }
        let event = receipt
            .decoded_log::<PlasmaFramework::DepositCreated>()
            .ok_or_else(|| SdkError::L1("no DepositCreated event".into()))?;
        let blknum: u64 =
            event.blknum.try_into().map_err(|_| SdkError::L1("block number overflows".into()))?;
        Ok(u128::from(blknum) * 1_000_000_000)
    }

    // ---------------------------------------------------------------- verified outputs

    /// Fetches the outputs the operator lists for this wallet, verifies each against L1 (block
    /// commitment, inclusion proof, the output itself) and stores the proofs. A mismatch is an
    /// error and nothing of that batch is stored. Each new output's creating transaction is
    /// checked too (`proof+tx`, or `invalid`), every stored output is re-checked against the
    /// operator and L1 (spent, exiting, finalized: [`Wallet::recheck`]), and the configured
    /// watchers are consulted (`proof+tx+watcher`). The outputs are read page by page and
    /// verified in parallel batches (see [`SyncOptions`]); nothing downloads a whole block.
    pub async fn sync(&self) -> Result<SyncReport, SdkError> {
        self.sync_with(&mut |_| {}).await
    }

    /// [`Wallet::sync`], reporting its progress to `progress` after every page and batch.
    pub async fn sync_with(
        &self,
        progress: &mut (dyn FnMut(&SyncProgress) + Send),
    ) -> Result<SyncReport, SdkError> {
        let started = std::time::Instant::now();
        let commitments = Commitments::default();
        let (mut report, listed) = self.fetch_new(&commitments, progress).await?;
        let rechecked = self.recheck_with(Some(&listed), &commitments).await?;
        (report.gone, report.unlisted, report.tower_only) =
            (rechecked.gone, rechecked.unlisted, rechecked.tower_only);
        let listed = listed.positions;
        report.freed = self.forget_unknown_sends().await?;
        self.consult_watchers().await?;
        let all = self.store.all()?;
        report.invalid = all.iter().filter(|o| o.status == OutputStatus::Invalid).count();
        let highest_block = all
            .iter()
            .filter_map(|o| UtxoPos::from_u128(o.utxo_pos).ok().map(|p| p.blknum()))
            .max()
            .unwrap_or_default();
        self.store.set_last_sync(&SyncRecord {
            at: unix_now(),
            listed: listed.len(),
            added: report.added,
            known: report.known,
            pending: report.pending,
            gone: report.gone,
            invalid: report.invalid,
            highest_block,
            millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })?;
        Ok(report)
    }

    /// Recovers the wallet from its key alone (spec: DA-12), into an empty store (lost, or never
    /// synced) or one that already holds some outputs:
    /// 1. lists the owner's unspent outputs from every source, the operator and each tower, at
    ///    once (a source can leave outputs out undetected; one honest source that lists an
    ///    output is enough);
    /// 2. takes the union by position;
    /// 3. verifies each output it does not hold against L1 exactly as [`Wallet::sync`] does
    ///    (commitment, inclusion proof, owner, then the creating transaction), the proofs read
    ///    from the operator first and then from each tower while a source fails or serves data
    ///    that does not verify; an output no source proves is rejected and reported, never
    ///    stored;
    /// 4. re-checks the store against L1 and the operator's listing, or the towers' union when it
    ///    failed, as a sync does.
    ///
    /// Works with the operator down, from the towers alone; [`Wallet::start_exits`] then needs
    /// nothing more than L1 and the store. Fails only if no source lists anything. With the
    /// operator down, what only towers list may already be spent (a tower may be behind):
    /// [`RestoreReport::tower_only`] names those outputs.
    pub async fn restore(&self) -> Result<RestoreReport, SdkError> {
        let started = std::time::Instant::now();
        let owner = self.address();
        let (operator, towers) =
            tokio::join!(self.client.utxos(owner), self.sources.tower_listings(owner, None));
        let mut report = RestoreReport::default();
        let mut union: BTreeMap<u128, (ListedUtxo, Vec<usize>)> = BTreeMap::new();
        let mut add = |i: usize, list: &[ListedUtxo]| {
            for l in list {
                union.entry(l.utxo_pos).or_insert_with(|| (l.clone(), Vec::new())).1.push(i);
            }
        };
        let mut report_of = |source: SourceId, listed: &Result<Vec<ListedUtxo>, SdkError>| {
            let (count, error) = match listed {
                Ok(list) => (Some(list.len()), None),
                Err(e) => (None, Some(SourceFailure::from(e))),
            };
            match &error {
                None => tracing::info!(%source, listed = count, "restore: listing read"),
                Some(failure) => tracing::warn!(%source, %failure, "restore: listing failed"),
            }
            report.sources.push(SourceReport {
                source,
                listed: count,
                only_here: 0,
                proofs: 0,
                error,
            });
        };
        report_of(self.sources.id(0).clone(), &operator);
        for (i, listed) in &towers.each {
            report_of(self.sources.id(*i).clone(), listed);
        }
        // The re-check's listing is the one a sync would use: the operator's, else the towers'.
        let primary = match operator {
            Ok(list) => {
                add(0, &list);
                Listing::operator(list.iter().map(|l| l.utxo_pos).collect())
            }
            Err(e) if !towers.any_answered() => {
                let mut errors = vec![(0, e)];
                errors.extend(towers.into_errors());
                return Err(self.sources.failed(format!("the listing of {owner}"), errors));
            }
            Err(_) => Listing {
                positions: towers.union().iter().map(|l| l.utxo_pos).collect(),
                operator_to: None,
                towers: Some(towers.who(&self.sources)),
            },
        };
        for (i, listed) in &towers.each {
            if let Ok(list) = listed {
                add(*i, list);
            }
        }
        for (_, by) in union.values() {
            if let [only] = by.as_slice()
                && let Some(r) = report.sources.get_mut(*only)
            {
                r.only_here += 1;
            }
        }
        report.listed = union.len();
        let stored: HashMap<u128, OutputStatus> =
            self.store.all()?.into_iter().map(|o| (o.utxo_pos, o.status)).collect();
        let mut fresh = Vec::new();
        for (pos, (listed, _)) in union {
            if stored.get(&pos).is_some_and(|s| *s != OutputStatus::NotOnChain) {
                report.known += 1;
            } else {
                fresh.push(listed);
            }
        }
        let commitments = Commitments::default();
        let checker =
            Checker { compare_listing: false, reject_unproven: true, ..self.checker(&commitments) };
        let opts = self.sync_options;
        let mut batches = fresh.chunks(opts.batch_size.max(1)).map(<[ListedUtxo]>::to_vec);
        let mut tasks: tokio::task::JoinSet<Result<Verified, SdkError>> =
            tokio::task::JoinSet::new();
        loop {
            while tasks.len() < opts.parallel.max(1)
                && let Some(batch) = batches.next()
            {
                let checker = checker.clone();
                tasks.spawn(async move {
                    match checker.verify_listed(batch.clone()).await? {
                        Some(done) => Ok(done),
                        None => checker.verify_by_exit_data(batch).await,
                    }
                });
            }
            let Some(joined) = tasks.join_next().await else { break };
            let done =
                joined.map_err(|e| SdkError::Store(format!("a restore task failed: {e}")))??;
            self.store.put_many(&done.outputs)?;
            report.added += done.outputs.len();
            report.pending += done.pending;
            report.rejected.extend(done.rejected);
            for (i, count) in done.served_by.iter().enumerate() {
                if let Some(r) = report.sources.get_mut(i) {
                    r.proofs += count;
                }
            }
        }
        report.rejected.sort();
        // What stands unspent on the towers' word alone is named (with the operator answering,
        // its listing shows what they list and it does not gone).
        let rechecked = self.recheck_with(Some(&primary), &commitments).await?;
        (report.gone, report.unlisted, report.tower_only) =
            (rechecked.gone, rechecked.unlisted, rechecked.tower_only);
        self.consult_watchers().await?;
        let all = self.store.all()?;
        report.invalid = all.iter().filter(|o| o.status == OutputStatus::Invalid).count();
        self.store.set_last_sync(&SyncRecord {
            at: unix_now(),
            listed: report.listed,
            added: report.added,
            known: report.known,
            pending: report.pending,
            gone: report.gone,
            invalid: report.invalid,
            highest_block: all
                .iter()
                .filter_map(|o| UtxoPos::from_u128(o.utxo_pos).ok().map(|p| p.blknum()))
                .max()
                .unwrap_or_default(),
            millis: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })?;
        tracing::info!(
            listed = report.listed,
            added = report.added,
            known = report.known,
            pending = report.pending,
            rejected = report.rejected.len(),
            tower_only = report.tower_only.len(),
            unlisted = report.unlisted.len(),
            "restore done"
        );
        Ok(report)
    }

    /// What the last completed sync did and when (`None` before the first): the freshness of
    /// [`Wallet::balance`] and [`Wallet::outputs`], which answer from the store at once.
    pub fn last_sync(&self) -> Result<Option<SyncRecord>, SdkError> {
        self.store.last_sync()
    }

    fn checker(&self, commitments: &Commitments) -> Checker {
        Checker {
            sources: self.sources.clone(),
            framework: self.framework.clone(),
            domain: self.domain.clone(),
            me: self.address(),
            commitments: commitments.clone(),
            compare_listing: true,
            reject_unproven: false,
        }
    }

    /// The first half of [`Wallet::sync`]: verifies and stores what the operator newly lists,
    /// page by page, up to `parallel` batches in flight, one store transaction per batch;
    /// returns what it lists. When the operator fails (at any page), the rest is what any tower
    /// lists (DA-12: every tower is asked, the union taken).
    async fn fetch_new(
        &self,
        commitments: &Commitments,
        progress: &mut (dyn FnMut(&SyncProgress) + Send),
    ) -> Result<(SyncReport, Listing), SdkError> {
        let mut report = SyncReport::default();
        let mut listing = Listing::default();
        let stored: HashMap<u128, OutputStatus> =
            self.store.all()?.into_iter().map(|o| (o.utxo_pos, o.status)).collect();
        let checker = self.checker(commitments);
        let opts = self.sync_options;
        let mut tasks: tokio::task::JoinSet<Result<Verified, SdkError>> =
            tokio::task::JoinSet::new();
        let mut state = SyncProgress::default();
        let mut after = None;
        let mut failure = None;
        // What the towers listed once the operator failed, a page's worth at a time.
        let mut from_towers: Option<std::collections::VecDeque<Vec<ListedUtxo>>> = None;
        // The listing carries no proofs: a known output costs the source nothing, and a new
        // one's proof comes with its transaction's inclusion (one per transaction).
        loop {
            let (utxos, next) = if let Some(queue) = from_towers.as_mut() {
                let Some(utxos) = queue.pop_front() else { break };
                (utxos, None)
            } else {
                match self.client.utxo_page(self.address(), after, opts.page_size, false).await {
                    Ok(page) => (page.utxos, page.next),
                    Err(e) => match self.towers_after(after, e).await {
                        Ok((rest, towers)) => {
                            listing.towers = Some(towers);
                            from_towers = Some(
                                rest.chunks(opts.page_size.max(1)).map(<[_]>::to_vec).collect(),
                            );
                            continue;
                        }
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    },
                }
            };
            let mut fresh = Vec::new();
            for listed in utxos {
                listing.positions.insert(listed.utxo_pos);
                if stored.get(&listed.utxo_pos).is_some_and(|s| *s != OutputStatus::NotOnChain) {
                    report.known += 1;
                    continue;
                }
                fresh.push(listed);
            }
            state.listed = listing.positions.len();
            state.new += fresh.len();
            for batch in fresh.chunks(opts.batch_size.max(1)) {
                while tasks.len() >= opts.parallel.max(1) && failure.is_none() {
                    failure = self.store_batch(&mut tasks, &mut report, &mut state).await.err();
                }
                if failure.is_some() {
                    break;
                }
                let (checker, batch) = (checker.clone(), batch.to_vec());
                tasks.spawn(async move {
                    if let Some(done) = checker.verify_listed(batch.clone()).await? {
                        return Ok(done);
                    }
                    // Sources without POST /v1/inclusions: one exit-data request per output.
                    checker.verify_by_exit_data(batch).await
                });
            }
            progress(&state);
            match next {
                _ if failure.is_some() => break,
                // Towers' pages: on to the next one queued.
                None if from_towers.is_some() => {}
                Some(n) if after.is_none_or(|a| n > a) => {
                    after = Some(n);
                    listing.operator_to = Some(n);
                }
                Some(_) => {
                    failure = Some(SdkError::BadOperatorResponse("`next` does not advance".into()));
                    break;
                }
                None => {
                    listing.operator_to = Some(u128::MAX);
                    break;
                }
            }
        }
        state.listing_done = failure.is_none();
        while !tasks.is_empty() {
            if let Err(e) = self.store_batch(&mut tasks, &mut report, &mut state).await {
                failure.get_or_insert(e);
            }
            progress(&state);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok((report, listing)),
        }
    }

    /// The operator failed to list after `after` with `error`: what every tower lists after it
    /// (the union, DA-12), and which towers answered. Without towers, or if none answers, the
    /// error (naming each source).
    async fn towers_after(
        &self,
        after: Option<u128>,
        error: SdkError,
    ) -> Result<(Vec<ListedUtxo>, String), SdkError> {
        let what = format!("the listing of {}", self.address());
        if self.sources.len() == 1 {
            return Err(error);
        }
        self.sources.note_failure(0, &what, &error);
        let towers = self.sources.tower_listings(self.address(), after).await;
        if !towers.any_answered() {
            let mut errors = vec![(0, error)];
            errors.extend(towers.into_errors());
            return Err(self.sources.failed(what, errors));
        }
        Ok((towers.union(), towers.who(&self.sources)))
    }

    /// The owner's whole listing: the operator's, and what the towers list when it fails.
    async fn list_all(&self) -> Result<Listing, SdkError> {
        let mut listing = Listing::default();
        let mut after = None;
        loop {
            let page = match self
                .client
                .utxo_page(self.address(), after, self.client.page_size(), false)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    let (rest, towers) = self.towers_after(after, e).await?;
                    listing.positions.extend(rest.iter().map(|u| u.utxo_pos));
                    listing.towers = Some(towers);
                    return Ok(listing);
                }
            };
            listing.positions.extend(page.utxos.iter().map(|u| u.utxo_pos));
            match page.next {
                // A cursor that does not move on would loop for ever: a broken source.
                Some(n) if after.is_none_or(|a| n > a) => {
                    after = Some(n);
                    listing.operator_to = Some(n);
                }
                Some(_) => {
                    return Err(SdkError::BadOperatorResponse("`next` does not advance".into()));
                }
                None => {
                    listing.operator_to = Some(u128::MAX);
                    return Ok(listing);
                }
            }
        }
    }

    /// Waits for one verified batch and stores it in one store transaction.
    async fn store_batch(
        &self,
        tasks: &mut tokio::task::JoinSet<Result<Verified, SdkError>>,
        report: &mut SyncReport,
        state: &mut SyncProgress,
    ) -> Result<(), SdkError> {
        let Some(joined) = tasks.join_next().await else { return Ok(()) };
        let Verified { outputs, pending, .. } =
            joined.map_err(|e| SdkError::Store(format!("a sync task failed: {e}")))??;
        report.pending += pending;
        state.new -= pending;
        for o in outputs.iter().filter(|o| o.status == OutputStatus::Invalid) {
            tracing::warn!(
                utxo_pos = o.utxo_pos,
                problem = o.problem.as_deref().unwrap_or_default(),
                "an output paid to this wallet comes from an invalid transaction: the operator \
                 is byzantine; exit your older outputs"
            );
        }
        self.store.put_many(&outputs)?;
        report.added += outputs.len();
        state.verified += outputs.len();
        Ok(())
    }

    /// Re-checks what the wallet may no longer trust: every stored output against the operator
    /// (when reachable, else the first tower that answers, DA-12; it is then also asked for
    /// outputs it no longer lists) and L1. Returns how many outputs it found gone (spent,
    /// exiting or finalized) since the last check.
    pub async fn refresh(&self) -> Result<usize, SdkError> {
        let listed = match self.list_all().await {
            Ok(list) => Some(list),
            Err(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "no source lists outputs: re-checking against L1 only");
                None
            }
            Err(e) => return Err(e),
        };
        Ok(self.recheck_with(listed.as_ref(), &Commitments::default()).await?.gone)
    }

    /// Gives back to spending the stored outputs marked spent by a payment of this wallet that
    /// the operator does not know. A payment's inputs are marked before it is sent and stay marked
    /// whatever the answer, unless the operator refused it outright (WALLET-1): after a lost
    /// answer, a 5xx or the operator unreachable, the wallet cannot tell whether it arrived. Once
    /// the operator answers that it does not know the payment (`UnknownTransaction`, every URL
    /// asked), that is the same word an outright refusal is, and the marks go: the inputs can be
    /// spent again (a kept payment that arrives after all conflicts with that spend, and the
    /// operator includes one of the two), while their standard exit still needs `--force`
    /// ([`Wallet::signed_away`]). Outputs shown spent by anything but the mark (the operator
    /// stopped listing them: [`Wallet::recheck`] runs first) are left alone. At most 64 payments are asked about
    /// per call. Returns how many outputs were given back.
    pub async fn forget_unknown_sends(&self) -> Result<usize, SdkError> {
        let mut marked: BTreeMap<B256, Vec<u128>> = BTreeMap::new();
        for o in self.store.all()? {
            // Spent by nothing but the mark (a re-check shows a marked output spent by this
            // wallet's transaction); not exiting.
            let marked_only =
                o.status == OutputStatus::Unspent || o.spent_source() == Some(SpentSource::Wallet);
            if marked_only
                && !o.exiting
                && let Some(hash) = o.spent_by
            {
                marked.entry(hash).or_default().push(o.utxo_pos);
            }
        }
        let mut freed = 0;
        for (hash, positions) in marked.into_iter().take(64) {
            match self.client.tx_status(hash).await {
                Err(SdkError::OperatorRefused { code, .. }) if code == "UnknownTransaction" => {
                    tracing::info!(tx = %hash, outputs = positions.len(), "the operator does not \
                        know this payment: its inputs can be spent again");
                    self.store.unmark_spent_by(hash, &positions)?;
                    freed += positions.len();
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(tx = %hash, error = %e, "payment's outcome still unknown");
                }
            }
        }
        Ok(freed)
    }

    /// Marks spent what the listing no longer holds (the L1 part of [`Wallet::recheck`] skipped).
    async fn mark_unlisted(&self) -> Result<(), SdkError> {
        let listed = self.list_all().await?;
        let mut changed = Vec::new();
        for mut o in self.store.all()? {
            if o.status == OutputStatus::Unspent
                && let Some(evidence) = listed.gone(o.utxo_pos)
            {
                o.status = OutputStatus::Spent;
                o.evidence = Some(evidence);
                o.spent_source = Some(SpentSource::Operator);
                o.checked_at = unix_now();
                changed.push(o);
            }
        }
        self.store.put_many(&changed)
    }

    /// Reads the in-flight exits started since the last scan and records their inputs.
    async fn scan_in_flight_exits(&self) -> Result<(), SdkError> {
        let head = self.provider.get_block_number().await.map_err(l1)?;
        let mut from = match self.store.in_flight_cursor()? {
            Some(c) => c,
            None => self.deployment_block.unwrap_or(0),
        };
        while from <= head {
            let to = head.min(from + 50_000);
            let filter = Filter::new()
                .address(*self.in_flight.address())
                .event_signature(InFlightExitGame::InFlightExitStarted::SIGNATURE_HASH)
                .from_block(from)
                .to_block(to);
            for log in self.provider.get_logs(&filter).await.map_err(l1)? {
                let Ok(event) = log.log_decode::<InFlightExitGame::InFlightExitStarted>() else {
                    continue;
                };
                let exit_id = B256::from(event.inner.exitId.to_be_bytes());
                if let Ok(tx) = Transaction::decode(&event.inner.inFlightTx)
                    && let Ok(inputs) = tx.input_positions()
                {
                    for pos in inputs {
                        self.store.put_in_flight_input(pos.to_u128(), exit_id)?;
                    }
                }
            }
            self.store.set_in_flight_cursor(to + 1)?;
            from = to + 1;
        }
        Ok(())
    }

    /// Scans L1 (from the last scan, minus [`REORG_MARGIN`] blocks) for the events that can
    /// change a stored output's state on L1 other than its block commitment: standard exits
    /// started for this owner (`ExitStarted`, the owner indexed, whoever started it), outputs
    /// finalized (`OutputFinalized`, by any exit game) and outputs this owner piggybacked
    /// (`InFlightExitPiggybacked`, the owner indexed). In-flight inputs come from
    /// [`Wallet::scan_in_flight_exits`]. What they name is recorded for good: a re-check reads L1
    /// per output only for those (a few), not for every stored output.
    async fn scan_exit_events(&self) -> Result<(), SdkError> {
        let head = self.provider.get_block_number().await.map_err(l1)?;
        let start = self.deployment_block.unwrap_or(0);
        let mut from = match self.store.exit_event_cursor()? {
            Some(c) => c.saturating_sub(REORG_MARGIN).max(start),
            None => start,
        };
        let owner = B256::left_padding_from(self.address().as_slice());
        while from <= head {
            let to = head.min(from + 50_000);
            let started = Filter::new()
                .address(*self.standard.address())
                .event_signature(StandardExitGame::ExitStarted::SIGNATURE_HASH)
                .topic2(owner)
                .from_block(from)
                .to_block(to);
            let piggybacked = Filter::new()
                .address(*self.in_flight.address())
                .event_signature(InFlightExitGame::InFlightExitPiggybacked::SIGNATURE_HASH)
                .topic2(owner)
                .from_block(from)
                .to_block(to);
            let finalized = Filter::new()
                .address(*self.framework.address())
                .event_signature(PlasmaFramework::OutputFinalized::SIGNATURE_HASH)
                .from_block(from)
                .to_block(to);
            let mut touched = Vec::new();
            for log in self.provider.get_logs(&started).await.map_err(l1)? {
                if let Ok(e) = log.log_decode::<StandardExitGame::ExitStarted>() {
                    touched.push((Touch::StandardExit, B256::from(e.inner.exitId.to_be_bytes())));
                }
            }
            for log in self.provider.get_logs(&piggybacked).await.map_err(l1)? {
                if let Ok(e) = log.log_decode::<InFlightExitGame::InFlightExitPiggybacked>()
                    && e.inner.isOutput
                {
                    touched.push((Touch::Piggybacked, B256::from(e.inner.exitId.to_be_bytes())));
                }
            }
            for log in self.provider.get_logs(&finalized).await.map_err(l1)? {
                if let Ok(e) = log.log_decode::<PlasmaFramework::OutputFinalized>() {
                    touched.push((Touch::Finalized, e.inner.outputId));
                }
            }
            self.scan_batch_events(from, to, &mut touched).await?;
            self.store.touch(&touched)?;
            self.store.set_exit_event_cursor(to + 1)?;
            from = to + 1;
        }
        Ok(())
    }

    /// Re-checks every stored output that is not gone for good against L1 — its block commitment
    /// (a reorg), `isOutputFinalized` (OUT-1 id), its standard exit, in-flight exits that spend
    /// it or piggyback it — and, given `listed` (what the operator lists now), against the
    /// operator: an output it no longer lists is spent on the child chain (or exiting, LEDGER-9).
    /// Returns how many outputs it newly found gone. A `spent` status older versions took from
    /// towers' listings alone is no evidence (DA-11): the output is re-checked as if unmarked.
    ///
    /// Its L1 cost does not grow with the outputs: one `blockCommitments` read per block, one
    /// event scan since the last one ([`Wallet::scan_exit_events`]), and the per-output reads
    /// (finalized, standard exit, in-flight exit) only for outputs an event named.
    pub async fn recheck(&self, listed: Option<&BTreeSet<u128>>) -> Result<usize, SdkError> {
        let listed = listed.map(|l| Listing::operator(l.clone()));
        Ok(self.recheck_with(listed.as_ref(), &Commitments::default()).await?.gone)
    }

    async fn recheck_with(
        &self,
        listed: Option<&Listing>,
        commitments: &Commitments,
    ) -> Result<Rechecked, SdkError> {
        self.scan_in_flight_exits().await?;
        self.scan_exit_events().await?;
        let touched = self.store.touched()?;
        let mut outputs: Vec<StoredOutput> = self
            .store
            .all()?
            .into_iter()
            .filter(|o| !matches!(o.status, OutputStatus::Finalized | OutputStatus::Invalid))
            .collect();
        if listed.is_some() {
            // Stored before transactions were checked (an older store): check them now.
            let mut old: Vec<StoredOutput> = outputs
                .iter()
                .filter(|o| o.verification == Verification::Proof && o.problem.is_none())
                .cloned()
                .collect();
            if !old.is_empty() {
                for chunk in old.chunks_mut(self.sync_options.batch_size.max(1)) {
                    self.checker(commitments).check_creations(chunk).await?;
                }
                self.store.put_many(&old)?;
                let checked: HashMap<u128, StoredOutput> =
                    old.into_iter().map(|o| (o.utxo_pos, o)).collect();
                for o in &mut outputs {
                    if let Some(c) = checked.get(&o.utxo_pos) {
                        *o = c.clone();
                    }
                }
                outputs.retain(|o| o.status != OutputStatus::Invalid);
            }
        }
        commitments
            .load(
                &self.framework,
                outputs
                    .iter()
                    .filter_map(|o| UtxoPos::from_u128(o.utxo_pos).ok().map(|p| p.blknum())),
            )
            .await?;
        let mut done = Rechecked::default();
        let mut changed = Vec::new();
        for mut o in outputs {
            let before = o.status;
            let (status, evidence, source) =
                self.status_of(&o, listed, commitments, &touched).await?;
            if status != OutputStatus::Unspent && before == OutputStatus::Unspent {
                done.gone += 1;
            }
            if status == OutputStatus::Unspent {
                if before == OutputStatus::Spent {
                    tracing::info!(
                        utxo_pos = o.utxo_pos,
                        was = o.evidence.as_deref().unwrap_or_default(),
                        "an output marked spent is unspent again"
                    );
                }
                if listed.is_some_and(|l| l.unlisted_by_towers(o.utxo_pos)) {
                    done.unlisted.push(o.utxo_pos);
                }
                if listed.is_some_and(|l| l.by_towers_only(o.utxo_pos)) {
                    done.tower_only.push(o.utxo_pos);
                }
            }
            // Only what changed is written: the sync record says when everything was checked.
            if (status, &evidence, source) != (o.status, &o.evidence, o.spent_source)
                || (status == OutputStatus::Exiting && !o.exiting)
            {
                o.exiting |= status == OutputStatus::Exiting;
                o.status = status;
                o.evidence = evidence;
                o.spent_source = source;
                o.checked_at = unix_now();
                changed.push(o);
            }
        }
        self.store.put_many(&changed)?;
        done.unlisted.sort_unstable();
        done.tower_only.sort_unstable();
        if !done.tower_only.is_empty() {
            tracing::warn!(outputs = ?done.tower_only, "the operator did not answer and only \
                towers list these outputs: a tower may be behind, so they may already be spent, \
                and an exit of a spent output loses its bond");
        }
        if !done.unlisted.is_empty() {
            tracing::warn!(outputs = ?done.unlisted, towers = listed
                .and_then(|l| l.towers.as_deref()).unwrap_or_default(), "the operator did not \
                answer and no tower lists these outputs: kept unspent (a tower's word is no \
                evidence), but they may be spent, and an exit of a spent output loses its bond");
        }
        Ok(done)
    }

    async fn status_of(
        &self,
        o: &StoredOutput,
        listed: Option<&Listing>,
        commitments: &Commitments,
        touched: &HashSet<(u8, B256)>,
    ) -> Result<Status, SdkError> {
        let pos = UtxoPos::from_u128(o.utxo_pos).map_err(|e| SdkError::Store(e.to_string()))?;
        let commitment = commitments.of(pos.blknum())?;
        if commitment != keccak256((o.root, U256::from(o.block_timestamp)).abi_encode()) {
            return Ok((
                OutputStatus::NotOnChain,
                Some(format!(
                    "block {}'s commitment on L1 is no longer the verified one",
                    pos.blknum()
                )),
                None,
            ));
        }
        let tx = Transaction::decode(&o.tx_bytes).map_err(|e| SdkError::Store(e.to_string()))?;
        let id = tx.output_id(pos.output_index(), pos);
        let is = |kind: Touch, key: B256| touched.contains(&(kind as u8, key));
        let pos_key = B256::from(U256::from(o.utxo_pos).to_be_bytes());
        if is(Touch::Finalized, id)
            && self.framework.isOutputFinalized(id).call().await.map_err(l1)?
        {
            return Ok((OutputStatus::Finalized, Some(format!("isOutputFinalized({id})")), None));
        }
        let standard = if is(Touch::StandardExit, pos_key) {
            self.standard.exits(U256::from(o.utxo_pos)).call().await.map_err(l1)?.status
        } else {
            0
        };
        match standard {
            0 => {}
            1 => {
                return Ok((
                    OutputStatus::Exiting,
                    Some("its standard exit is active on L1".into()),
                    None,
                ));
            }
            2 => {
                return Ok((
                    OutputStatus::Spent,
                    Some(
                        "its standard exit was challenged on L1 with a spend its owner signed"
                            .into(),
                    ),
                    Some(SpentSource::L1),
                ));
            }
            _ => {
                return Ok((
                    OutputStatus::Finalized,
                    Some("its standard exit was processed".into()),
                    None,
                ));
            }
        }
        if let Some(c) = &o.batch_claim
            && let Some((status, evidence)) = self.batch_claim_status(c, touched).await?
        {
            return Ok((status, evidence, None));
        }
        if let Some(exit_id) = self.store.in_flight_input(o.utxo_pos)? {
            let e = self
                .in_flight
                .inFlightExit(U256::from_be_bytes(exit_id.0))
                .call()
                .await
                .map_err(l1)?;
            if e.verdict != 3 {
                return Ok((
                    OutputStatus::InFlight,
                    Some(format!("an input of the in-flight exit {exit_id}")),
                    None,
                ));
            }
        }
        if !tx.inputs.is_empty() && is(Touch::Piggybacked, tx.hash()) {
            let exit_id = tx.hash();
            let e = self
                .in_flight
                .inFlightExit(U256::from_be_bytes(exit_id.0))
                .call()
                .await
                .map_err(l1)?;
            if e.piggybacks & (1 << (5 + u16::from(pos.output_index()))) != 0 {
                return Ok((
                    OutputStatus::InFlight,
                    Some(format!("piggybacked as an output of the in-flight exit {exit_id}")),
                    None,
                ));
            }
        }
        if let Some(hash) = o.spent_by {
            return Ok((
                OutputStatus::Spent,
                Some(format!("spent by this wallet's transaction {hash}")),
                Some(SpentSource::Wallet),
            ));
        }
        // spec: DA-11, DA-12. Spent as the operator (or L1) showed before; not when only towers'
        // listings "showed" it (an older version of this wallet): no evidence, as if never marked.
        let spent = o.is_spent_on_evidence();
        match listed {
            Some(list) if let Some(evidence) = list.gone(o.utxo_pos) => {
                Ok((OutputStatus::Spent, Some(evidence), Some(SpentSource::Operator)))
            }
            // Listed by the operator, or listed by a tower and not known spent: a tower's
            // listing lags, so it does not undo a spend seen before.
            Some(list)
                if list.positions.contains(&o.utxo_pos)
                    && (list.by_operator(o.utxo_pos) || !spent) =>
            {
                Ok((OutputStatus::Unspent, None, None))
            }
            // Not asked, or a listing that cannot tell (the towers leave it out, or list it
            // though the operator showed it spent): keep what was shown last.
            _ if spent => Ok((o.status, o.evidence.clone(), o.spent_source())),
            _ => Ok((OutputStatus::Unspent, None, None)),
        }
    }

    /// A block (binary wire format) from the operator, or else from the first tower that serves
    /// it right (DA-12), its root checked against its L1 commitment; `None` if no source serves
    /// it or every one serves something else. Only for the one block an in-flight exit is
    /// about: sync never downloads blocks.
    async fn proven_block(&self, blknum: u64) -> Result<Option<Vec<Vec<u8>>>, SdkError> {
        let commitment =
            self.framework.blockCommitments(U256::from(blknum)).call().await.map_err(l1)?;
        if commitment == B256::ZERO {
            return Ok(None);
        }
        let what = format!("block {blknum}");
        for (i, _, client) in self.sources.iter() {
            let wrong = |reason: &str| SdkError::ProofMismatch {
                utxo_pos: format!("of block {blknum}"),
                reason: reason.into(),
            };
            let error = match client.block(blknum).await {
                Err(e) => e,
                Ok(block) => {
                    let root_ok = block.l1_timestamp.is_some_and(|ts| {
                        commitment == keccak256((block.root, U256::from(ts)).abi_encode())
                    });
                    match leaves_of(blknum, &block) {
                        _ if !root_ok => wrong("root and timestamp are not its L1 commitment"),
                        Some(leaves)
                            if BlockTree::from_txs(&leaves)
                                .is_ok_and(|t| t.root() == block.root) =>
                        {
                            self.sources.note_served(i, &what);
                            return Ok(Some(leaves));
                        }
                        _ => wrong("its transactions do not hash to its root"),
                    }
                }
            };
            self.sources.note_failure(i, &what, &error);
        }
        Ok(None)
    }

    /// Asks the configured watchers; an output whose creating transaction was checked becomes
    /// final (`proof+tx+watcher`) when a watcher has validated its block and no watcher saw a bad
    /// block at or before it. A watcher that later reports a bad block takes finality back.
    async fn consult_watchers(&self) -> Result<(), SdkError> {
        if self.watchers.is_empty() {
            return Ok(());
        }
        let mut views = Vec::new();
        for url in &self.watchers {
            match Self::watcher_view(url).await {
                Ok(v) => views.push(v),
                Err(e) => tracing::warn!(error = %e, "watcher not consulted"),
            }
        }
        for mut o in self.store.all()? {
            if o.verification < Verification::ProofTx || o.status == OutputStatus::Invalid {
                continue;
            }
            let blknum = UtxoPos::from_u128(o.utxo_pos)
                .map_err(|e| SdkError::Store(e.to_string()))?
                .blknum();
            let bad = views.iter().find(|v| v.byzantine_from.is_some_and(|b| b <= blknum));
            let vouched = views.iter().any(|v| v.synced_block >= blknum);
            let (verification, problem) = match bad {
                Some(v) => (
                    Verification::ProofTx,
                    Some(format!(
                        "the watcher at {} reports the chain byzantine from block {}",
                        v.url,
                        v.byzantine_from.unwrap_or_default()
                    )),
                ),
                None if vouched => (Verification::ProofTxWatcher, None),
                None => (Verification::ProofTx, o.problem.clone()),
            };
            if (verification, &problem) != (o.verification, &o.problem) {
                o.verification = verification;
                o.problem = problem;
                self.store.put(&o)?;
            }
        }
        Ok(())
    }

    async fn watcher_view(url: &str) -> Result<WatcherView, SdkError> {
        let err = |reason: String| SdkError::Watchtower { url: url.to_owned(), reason };
        let mut resp = crate::client::http_client()
            .get(format!("{url}/status"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| err(e.to_string()))?;
        // Read within bounds: a hostile or broken tower cannot make the wallet hold more.
        let body = crate::client::read_bounded(&mut resp, crate::client::MAX_JSON_ANSWER)
            .await
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| {
                err(format!("a /status longer than {} bytes", crate::client::MAX_JSON_ANSWER))
            })?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| err(format!("/status is not JSON: {e}")))?;
        let status = &v["status"];
        Ok(WatcherView {
            url: url.to_owned(),
            synced_block: status["syncedBlock"]
                .as_u64()
                .ok_or_else(|| err("no syncedBlock in /status".into()))?,
            byzantine_from: status["byzantineFrom"].as_u64().or_else(|| {
                // A watcher that says unsafe without a block: treat every block as suspect.
                (status["safe"].as_bool() == Some(false)).then_some(0)
            }),
        })
    }

    /// Checks operator data against L1 (block commitment, inclusion proof, the output itself);
    /// returns what to store. A mismatch is [`SdkError::ProofMismatch`].
    pub async fn verify(
        &self,
        listed: &ListedUtxo,
        data: &ExitData,
    ) -> Result<StoredOutput, SdkError> {
        let commitments = Commitments::default();
        let pos = UtxoPos::from_u128(listed.utxo_pos)
            .map_err(|e| mismatch(listed.utxo_pos, e.to_string()))?;
        commitments.load(&self.framework, [pos.blknum()]).await?;
        self.checker(&commitments).verify_one(listed, data)
    }

    /// Verified outputs (`proof+tx` at least) not spent, exiting or finalized as of the last
    /// re-check.
    pub fn spendable(&self, token: Address) -> Result<Vec<StoredOutput>, SdkError> {
        Ok(self.store.all()?.into_iter().filter(|o| o.token == token && o.is_spendable()).collect())
    }

    fn sum(&self, token: Address, f: impl Fn(&StoredOutput) -> bool) -> Result<U256, SdkError> {
        Ok(self
            .store
            .all()?
            .iter()
            .filter(|o| o.token == token && f(o))
            .fold(U256::ZERO, |a, o| a + o.amount))
    }

    /// Verified balance of `token`: what [`Wallet::spendable`] counts.
    pub fn balance(&self, token: Address) -> Result<U256, SdkError> {
        self.sum(token, StoredOutput::is_spendable)
    }

    /// The part of the balance a watcher has also vouched for (`proof+tx+watcher`): final.
    pub fn final_balance(&self, token: Address) -> Result<U256, SdkError> {
        self.sum(token, |o| o.is_spendable() && o.verification == Verification::ProofTxWatcher)
    }

    /// What is on its way out through the exit game (standard exits, in-flight exits).
    pub fn exiting_balance(&self, token: Address) -> Result<U256, SdkError> {
        self.sum(token, StoredOutput::is_exiting)
    }

    /// Unspent outputs the wallet could not check beyond their inclusion (`proof` only): not
    /// counted in the balance.
    pub fn unverified_balance(&self, token: Address) -> Result<U256, SdkError> {
        self.sum(token, |o| {
            o.status == OutputStatus::Unspent
                && o.spent_by.is_none()
                && !o.exiting
                && o.verification == Verification::Proof
        })
    }

    /// Stored outputs a standard exit can still pay, as of the last re-check (what `plasma exit`
    /// with no arguments exits).
    pub fn exitable(&self) -> Result<Vec<StoredOutput>, SdkError> {
        let signed = self.signed_spends()?;
        Ok(self
            .store
            .all()?
            .into_iter()
            .filter(|o| Self::doomed(o).is_none() && !signed.contains_key(&o.utxo_pos))
            .collect())
    }

    /// The outputs that a payment this wallet signed and kept spends, by position: every payment
    /// it sent, whatever the operator answered. An output left unmarked by one of them was
    /// refused — by the operator's word only: an operator that answered a refusal and kept the
    /// payment could challenge the output's standard exit with it (EXIT-4), so such an exit is
    /// refused without `--force` (the payment itself can be exited in flight, WALLET-3).
    fn signed_spends(&self) -> Result<HashMap<u128, B256>, SdkError> {
        let mut spends = HashMap::new();
        for (hash, bytes) in self.store.all_sent()? {
            let Ok(signed) = SignedTransaction::decode(&bytes) else { continue };
            for pos in signed.transaction.input_positions().unwrap_or_default() {
                spends.insert(pos.to_u128(), hash);
            }
        }
        Ok(spends)
    }

    /// Outputs a standard exit could pay by what the chain shows, left out of
    /// [`Wallet::exitable`] because a payment this wallet signed spends them (see
    /// [`Wallet::signed_spends`]), each with why.
    pub fn signed_away(&self) -> Result<Vec<(StoredOutput, SdkError)>, SdkError> {
        let spends = self.signed_spends()?;
        Ok(self
            .store
            .all()?
            .into_iter()
            .filter(|o| Self::doomed(o).is_none())
            .filter_map(|o| Self::signed_away_why(&o, &spends).map(|e| (o, e)))
            .collect())
    }

    /// Why a standard exit of `o` would be challenged with a payment this wallet signed (see
    /// [`Wallet::signed_spends`]), if it would.
    fn signed_away_why(o: &StoredOutput, spends: &HashMap<u128, B256>) -> Option<SdkError> {
        let hash = spends.get(&o.utxo_pos)?;
        Some(SdkError::OutputSpent {
            utxo_pos: o.utxo_pos.to_string(),
            evidence: format!(
                "a payment this wallet signed spends it ({hash}): the operator answered that it \
                 refused it, but if it kept it, a standard exit would be challenged with it. Exit \
                 that payment in flight if its block is withheld, or spend the output again; \
                 `--force` exits it anyway"
            ),
        })
    }

    /// Why a standard exit of `o` cannot pay (and would lose its bond or its gas), if it cannot.
    fn doomed(o: &StoredOutput) -> Option<SdkError> {
        let pos = o.utxo_pos.to_string();
        let evidence = || o.evidence.clone().unwrap_or_default();
        match o.status {
            OutputStatus::Spent => {
                Some(SdkError::OutputSpent { utxo_pos: pos, evidence: evidence() })
            }
            OutputStatus::Exiting | OutputStatus::InFlight => {
                Some(SdkError::OutputExiting { utxo_pos: pos, evidence: evidence() })
            }
            OutputStatus::BatchClaimed => Some(match &o.batch_claim {
                Some(c) => SdkError::OutputBatchClaimed {
                    utxo_pos: pos,
                    batch_id: c.batch_id,
                    index: c.index,
                },
                None => SdkError::OutputExiting { utxo_pos: pos, evidence: evidence() },
            }),
            OutputStatus::Finalized => Some(SdkError::OutputFinalized(pos)),
            OutputStatus::NotOnChain => Some(mismatch(o.utxo_pos, evidence())),
            OutputStatus::Invalid => Some(SdkError::OutputInvalid {
                utxo_pos: pos,
                problem: o.problem.clone().unwrap_or_default(),
            }),
            OutputStatus::Unspent => match o.spent_by {
                Some(hash) => Some(SdkError::OutputSpent {
                    utxo_pos: pos,
                    evidence: format!(
                        "by this wallet's transaction {hash}; if its block is withheld, exit that \
                         transaction in flight"
                    ),
                }),
                None if o.exiting => Some(SdkError::OutputExiting {
                    utxo_pos: pos,
                    evidence: "this wallet started its standard exit".into(),
                }),
                None => None,
            },
        }
    }

    /// Every stored output.
    pub fn outputs(&self) -> Result<Vec<StoredOutput>, SdkError> {
        self.store.all()
    }

    /// Waits until `utxo_pos` is verified and stored (deposits: after the operator credits them
    /// and their block commitment is on L1).
    pub async fn wait_for_output(&self, utxo_pos: u128, timeout: Duration) -> Result<(), SdkError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.fetch_new(&Commitments::default(), &mut |_| {}).await {
                Ok(_)
                | Err(
                    SdkError::OperatorUnreachable { .. }
                    | SdkError::OperatorsUnavailable { .. }
                    | SdkError::OperatorDeadline { .. },
                ) => {}
                Err(e @ SdkError::AllSourcesFailed { .. }) if e.is_retryable() => {}
                Err(e) => return Err(e),
            }
            if self.store.get(utxo_pos)?.is_some() {
                return self.consult_watchers().await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SdkError::UnknownOutput(utxo_pos.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // ---------------------------------------------------------------- transfers

    /// Builds and signs a payment of `amount` of `token` to `to` with `fee`, choosing inputs
    /// largest first (at most 5) and returning change to this wallet.
    pub fn build_payment(
        &self,
        to: Address,
        token: Address,
        amount: U256,
        fee: U256,
    ) -> Result<SignedTransaction, SdkError> {
        // `+` wraps: an amount and fee summing past 2^256 would "need" a few wei and sign a
        // payment creating value — invalid, yet signed, so it could challenge the inputs' exits.
        let needed = amount
            .checked_add(fee)
            .ok_or_else(|| SdkError::Config(format!("amount {amount} + fee {fee} overflows")))?;
        let mut coins = self.spendable(token)?;
        coins.sort_by_key(|c| std::cmp::Reverse(c.amount));
        let mut inputs = Vec::new();
        let mut total = U256::ZERO;
        for coin in coins.iter().take(plasma_spec::MAX_INPUTS) {
            if total >= needed {
                break;
            }
            total += coin.amount;
            inputs.push(
                UtxoPos::from_u128(coin.utxo_pos).map_err(|e| SdkError::Store(e.to_string()))?,
            );
        }
        if total < needed {
            return Err(SdkError::InsufficientFunds {
                token,
                needed,
                available: self.balance(token)?,
            });
        }
        let mut outputs = vec![Output::new(to, token, amount)];
        if total > needed {
            outputs.push(Output::new(self.address(), token, total - needed));
        }
        let tx = Transaction::payment(&inputs, outputs, B256::ZERO);
        let sig = self.signer.sign_tx(&self.domain, &tx);
        Ok(SignedTransaction::new(tx, vec![sig; inputs.len()]))
    }

    /// Sends a payment; returns its hash. The spent outputs are marked in the store.
    pub async fn send(
        &self,
        to: Address,
        token: Address,
        amount: U256,
        fee: U256,
    ) -> Result<B256, SdkError> {
        // The store must not pick an input that is gone since the last look. The operator needs
        // no L1 to take a payment: with L1 unreachable, its listing alone is re-checked.
        match self.refresh().await {
            Ok(_) => {}
            Err(SdkError::L1(e)) => {
                tracing::warn!(error = %e, "L1 unreachable: re-checking against the operator only");
                self.mark_unlisted().await?;
            }
            Err(e) => return Err(e),
        }
        let signed = self.build_payment(to, token, amount, fee)?;
        self.submit(&signed).await
    }

    /// Submits a payment this wallet signed to the operator; marks its inputs spent by it.
    ///
    /// The payment is kept and its inputs marked spent by it (one store write) *before* it is
    /// sent: once it has left the wallet the operator may hold it, whatever answer comes back
    /// (a lost answer, a 5xx after the write, a crash here, a lie), and include it in a withheld
    /// block — then the inputs' standard exits would be challenged with it (EXIT-4) and a second
    /// payment of them would be a double spend of the wallet's own; what the wallet needs is the
    /// payment's in-flight exit. The marks are taken back only when the operator refuses the
    /// payment outright (a typed refusal of the payment itself: nothing was accepted).
    pub(crate) async fn submit(&self, signed: &SignedTransaction) -> Result<B256, SdkError> {
        let hash = signed.transaction.hash();
        let spends: Vec<u128> = signed
            .transaction
            .input_positions()
            .map_err(|e| SdkError::Store(e.to_string()))?
            .iter()
            .map(UtxoPos::to_u128)
            .collect();
        self.store.put_sent_spending(hash, &signed.encode(), &spends)?;
        let accepted = match self.client.submit(&signed.encode()).await {
            Ok(accepted) => accepted,
            Err(e) => {
                if refused_outright(&e) {
                    self.store.unmark_spent_by(hash, &spends)?;
                } else {
                    tracing::warn!(tx = %hash, error = %e, "the payment may have reached the \
                        operator: its inputs stay marked spent by it (if its block is withheld, \
                        exit it in flight)");
                }
                return Err(e);
            }
        };
        if accepted != hash {
            return Err(SdkError::BadOperatorResponse(format!(
                "operator reported hash {accepted}, expected {hash}"
            )));
        }
        Ok(hash)
    }

    /// Waits until a transaction's block is committed on L1; returns the block number.
    pub async fn wait_for_commit(&self, hash: B256, timeout: Duration) -> Result<u64, SdkError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok((status, blknum)) = self.client.tx_status(hash).await
                && status == "committed"
                && let Some(b) = blknum
            {
                return Ok(b);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SdkError::Timeout(hash));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // ---------------------------------------------------------------- exits (L1 and the store only)

    fn exit_args(o: &StoredOutput) -> StandardExitGame::StartArgs {
        StandardExitGame::StartArgs {
            utxoPos: U256::from(o.utxo_pos),
            txBytes: o.tx_bytes.clone(),
            inclusionProof: o.proof.clone(),
            blockTimestamp: o.block_timestamp,
        }
    }

    fn stored(&self, utxo_pos: u128) -> Result<StoredOutput, SdkError> {
        self.store.get(utxo_pos)?.ok_or_else(|| SdkError::UnknownOutput(utxo_pos.to_string()))
    }

    /// Reads an output of this wallet the store does not hold: its exit data from the operator,
    /// else from each tower in turn (DA-12), verified against L1 exactly as a sync verifies
    /// (commitment, inclusion proof, owner; then its creating transaction), and stores it. For
    /// an exit of an output the wallet never synced. [`SdkError::UnknownOutput`] if its block is
    /// not committed yet; the sources' errors if none proves it.
    pub async fn fetch_output(&self, utxo_pos: u128) -> Result<StoredOutput, SdkError> {
        let commitments = Commitments::default();
        let checker = Checker { compare_listing: false, ..self.checker(&commitments) };
        let listed = ListedUtxo {
            utxo_pos,
            owner: self.address(),
            token: Address::ZERO,
            amount: U256::ZERO,
        };
        let mut done = checker.verify_by_exit_data(vec![listed]).await?;
        let Some(o) = done.outputs.pop() else {
            return Err(SdkError::UnknownOutput(format!(
                "{utxo_pos} (its block is not committed on L1 yet)"
            )));
        };
        self.store.put(&o)?;
        tracing::info!(utxo_pos, verification = ?o.verification, "output read from the sources and stored");
        Ok(o)
    }

    /// [`Wallet::fetch_output`] of each of `positions` the store does not hold.
    pub(crate) async fn fetch_missing(&self, positions: &[u128]) -> Result<(), SdkError> {
        for &p in positions {
            if self.store.get(p)?.is_none() {
                self.fetch_output(p).await?;
            }
        }
        Ok(())
    }

    /// Starts standard exits of stored outputs, as many L1 transactions as the block gas limit
    /// needs (see [`Wallet::start_exits_with`]); needs nothing but L1 and the local store. First
    /// re-checks the outputs (against L1, and against the operator if it answers) and refuses,
    /// before any bond is paid, an exit the wallet can tell is doomed: of an output spent
    /// ([`SdkError::OutputSpent`]), already exiting ([`SdkError::OutputExiting`]), finalized
    /// ([`SdkError::OutputFinalized`]), from an invalid transaction ([`SdkError::OutputInvalid`])
    /// or no longer under its L1 commitment.
    pub async fn start_exits(&self, positions: &[u128]) -> Result<ExitReport, SdkError> {
        self.start_exits_with(positions, false, &mut |_| {}).await
    }

    /// [`Wallet::start_exits`] without any check, for one L1 transaction's worth of outputs:
    /// for an owner who knows better than the wallet (the operator lies about a spend) — and for
    /// tests of cheaters. An exit of a spent output is challenged and its bond lost. Returns the
    /// last L1 transaction; an error if any position did not start (use
    /// [`Wallet::start_exits_with`] for the full report).
    pub async fn start_exits_unchecked(&self, positions: &[u128]) -> Result<TxHash, SdkError> {
        let report = self.start_exits_with(positions, true, &mut |_| {}).await?;
        match (&report.error, report.chunks.last()) {
            (None, Some(last)) => Ok(last.l1_tx),
            (Some(e), _) => Err(SdkError::L1(e.clone())),
            (None, None) => Err(SdkError::UnknownOutput("nothing to exit".into())),
        }
    }

    /// Starts standard exits of `positions` (checked as [`Wallet::start_exits`] unless `force`),
    /// split into L1 transactions that fit the block gas limit: the latest block's gas limit,
    /// 90% of it as the budget, chunks sized by the gas one exit was estimated to take, each
    /// chunk estimated before it is sent and halved while it does not fit. The chunks are sent
    /// one after another, in position order, each reported to `progress` once mined. Every
    /// started exit is recorded in the store as soon as its transaction is mined, so a failure
    /// after some chunks leaves those recorded; the report says which positions started in which
    /// L1 transaction, which the contract skipped (EXIT-10) and which were not sent, and why.
    /// Fails (nothing started) only if the first chunk cannot be sent.
    pub async fn start_exits_with(
        &self,
        positions: &[u128],
        force: bool,
        progress: &mut (dyn FnMut(&ExitChunk) + Send),
    ) -> Result<ExitReport, SdkError> {
        self.fetch_missing(positions).await?;
        if !force {
            self.refresh().await?;
        }
        let mut outputs: Vec<StoredOutput> =
            positions.iter().map(|p| self.stored(*p)).collect::<Result<_, _>>()?;
        if !force && let Some(e) = outputs.iter().find_map(Self::doomed) {
            return Err(e);
        }
        if !force {
            let spends = self.signed_spends()?;
            if let Some(e) = outputs.iter().find_map(|o| Self::signed_away_why(o, &spends)) {
                return Err(e);
            }
        }
        outputs.sort_by_key(|o| o.utxo_pos);
        outputs.dedup_by_key(|o| o.utxo_pos);
        let bond = self.standard.bondSize().call().await.map_err(l1)?;
        if let [one] = outputs.as_slice() {
            let call = self.standard.startStandardExit(Self::exit_args(one)).value(bond);
            let receipt = mined(call.send().await, "exit").await?;
            let chunk = ExitChunk {
                l1_tx: receipt.transaction_hash,
                started: vec![one.utxo_pos],
                skipped: Vec::new(),
                gas_used: receipt.gas_used,
            };
            self.mark_exiting(&chunk, &outputs)?;
            progress(&chunk);
            return Ok(ExitReport { chunks: vec![chunk], not_started: Vec::new(), error: None });
        }
        let gas_limit = self.latest_header().await?.gas_limit;
        let budget = gas_limit / 10 * 9;
        let mut report = ExitReport::default();
        let mut rest: &[StoredOutput] = &outputs;
        // Until measured, a probe of a few.
        let mut size = rest.len().min(8);
        while !rest.is_empty() {
            size = size.clamp(1, rest.len());
            let chunk = &rest[..size];
            let args: Vec<_> = chunk.iter().map(Self::exit_args).collect();
            let call = self.standard.startStandardExits(args).value(bond * U256::from(size));
            let estimate = match call.estimate_gas().await {
                Ok(g) if g <= budget => g,
                result if size > 1 => {
                    tracing::debug!(size, ?result, budget, "exit chunk does not fit: halving");
                    size /= 2;
                    continue;
                }
                result => {
                    let why = match result {
                        Ok(g) => format!("one exit needs {g} gas, over the budget {budget}"),
                        Err(e) => plasma_contracts::sender::describe(&e),
                    };
                    if report.chunks.is_empty() {
                        return Err(SdkError::L1(why));
                    }
                    report.error = Some(why);
                    break;
                }
            };
            let gas = (estimate + estimate / 5).min(gas_limit);
            let receipt = match mined(call.gas(gas).send().await, "exit").await {
                Ok(r) if r.status() => r,
                Ok(r) => {
                    report.error = Some(format!("exit chunk reverted in {}", r.transaction_hash));
                    break;
                }
                Err(e) if report.chunks.is_empty() => return Err(e),
                Err(e) => {
                    report.error = Some(e.to_string());
                    break;
                }
            };
            let skipped: Vec<(u128, String)> = receipt
                .inner
                .logs()
                .iter()
                .filter_map(|l| l.log_decode::<StandardExitGame::ExitStartSkipped>().ok())
                .map(|e| (e.inner.utxoPos.to::<u128>(), format!("{:?}", e.inner.reason)))
                .collect();
            let done = ExitChunk {
                l1_tx: receipt.transaction_hash,
                started: chunk
                    .iter()
                    .map(|o| o.utxo_pos)
                    .filter(|p| !skipped.iter().any(|(s, _)| s == p))
                    .collect(),
                skipped,
                gas_used: receipt.gas_used,
            };
            self.mark_exiting(&done, chunk)?;
            progress(&done);
            report.chunks.push(done);
            rest = &rest[size..];
            // Size the next chunks from what this one was estimated to take.
            let per_exit = (estimate / size as u64).max(1);
            size = usize::try_from(budget / per_exit).unwrap_or(usize::MAX).max(1);
        }
        let started: HashSet<u128> = report
            .chunks
            .iter()
            .flat_map(|c| c.started.iter().chain(c.skipped.iter().map(|(p, _)| p)))
            .copied()
            .collect();
        report.not_started =
            outputs.iter().map(|o| o.utxo_pos).filter(|p| !started.contains(p)).collect();
        Ok(report)
    }

    /// Records the exits a mined chunk started (one store transaction).
    fn mark_exiting(&self, chunk: &ExitChunk, outputs: &[StoredOutput]) -> Result<(), SdkError> {
        let mut changed = Vec::new();
        for o in outputs.iter().filter(|o| chunk.started.contains(&o.utxo_pos)) {
            let mut o = o.clone();
            o.exiting = true;
            o.status = OutputStatus::Exiting;
            o.evidence = Some(format!("this wallet started its standard exit in {}", chunk.l1_tx));
            changed.push(o);
        }
        self.store.put_many(&changed)
    }

    /// Where `tx` is included, if the wallet can prove it under an L1 commitment: from an output
    /// of it in the store, or from the operator's inclusion data checked against L1.
    pub async fn proven_inclusion(&self, tx: &Transaction) -> Result<Option<(u64, u16)>, SdkError> {
        let bytes = tx.encode();
        for o in self.store.all()? {
            if o.tx_bytes.as_ref() == bytes.as_slice() && o.status != OutputStatus::NotOnChain {
                let pos =
                    UtxoPos::from_u128(o.utxo_pos).map_err(|e| SdkError::Store(e.to_string()))?;
                return Ok(Some((pos.blknum(), pos.tx_index())));
            }
        }
        let what = format!("the inclusion of {}", tx.hash());
        for (i, _, client) in self.sources.iter() {
            let inc = match client.tx_inclusion(tx.hash()).await {
                Ok(Some(inc)) if inc.tx_bytes.as_ref() == bytes.as_slice() => inc,
                Ok(_) => continue,
                Err(e) => {
                    self.sources.note_failure(i, &what, &e);
                    continue;
                }
            };
            let commitment =
                self.framework.blockCommitments(U256::from(inc.blknum)).call().await.map_err(l1)?;
            let proven = commitment
                == keccak256((inc.root, U256::from(inc.block_timestamp)).abi_encode())
                && Proof::from_bytes(&inc.proof).is_ok_and(|p| {
                    p.verify(leaf_hash(&bytes), usize::from(inc.tx_index), inc.root)
                });
            if proven {
                self.sources.note_served(i, &what);
                return Ok(Some((inc.blknum, inc.tx_index)));
            }
            let e = SdkError::ProofMismatch {
                utxo_pos: format!("of transaction {}", tx.hash()),
                reason: "its inclusion is not proven under L1".into(),
            };
            self.sources.note_failure(i, &what, &e);
        }
        Ok(None)
    }

    /// Whether block `blknum` is out in the open and nobody saw anything wrong with it: the
    /// operator serves all of it, matching its L1 commitment, and no configured watcher reports
    /// the chain byzantine at or before it. Only then is an in-flight exit of a payment in it
    /// useless; a withheld or invalid block is exactly when one is needed (its priority is its
    /// youngest input's, older than anything in the block).
    async fn block_is_available_and_unsuspected(&self, blknum: u64) -> Result<bool, SdkError> {
        for url in &self.watchers {
            if let Ok(v) = Self::watcher_view(url).await
                && v.byzantine_from.is_some_and(|b| b <= blknum)
            {
                return Ok(false);
            }
        }
        Ok(self.proven_block(blknum).await?.is_some())
    }

    /// Starts an in-flight exit of one of this wallet's own payments whose inputs are stored
    /// (for a transaction the operator never included, or whose block is withheld). Refuses one
    /// that is doomed or useless: already started ([`SdkError::InFlightExitExists`]), of a
    /// payment the wallet can prove committed in a block the operator serves whole and no
    /// configured watcher suspects ([`SdkError::PaymentCommitted`]: its outputs exit by standard
    /// exits), or with an input finalized or standard-exiting on L1.
    pub async fn start_in_flight_exit(
        &self,
        signed: &SignedTransaction,
    ) -> Result<TxHash, SdkError> {
        let hash = signed.transaction.hash();
        let existing =
            self.in_flight.inFlightExit(U256::from_be_bytes(hash.0)).call().await.map_err(l1)?;
        if existing.initiator != Address::ZERO {
            return Err(SdkError::InFlightExitExists(hash));
        }
        if let Some((blknum, tx_index)) = self.proven_inclusion(&signed.transaction).await?
            && self.block_is_available_and_unsuspected(blknum).await?
        {
            return Err(SdkError::PaymentCommitted { tx_hash: hash, blknum, tx_index });
        }
        let inputs =
            signed.transaction.input_positions().map_err(|e| SdkError::Store(e.to_string()))?;
        self.fetch_missing(&inputs.iter().map(|p| p.to_u128()).collect::<Vec<_>>()).await?;
        self.refresh().await?;
        for pos in
            signed.transaction.input_positions().map_err(|e| SdkError::Store(e.to_string()))?
        {
            let o = self.stored(pos.to_u128())?;
            let evidence = o.evidence.clone().unwrap_or_default();
            match o.status {
                OutputStatus::Finalized => {
                    return Err(SdkError::OutputFinalized(o.utxo_pos.to_string()));
                }
                OutputStatus::Exiting => {
                    return Err(SdkError::OutputExiting {
                        utxo_pos: o.utxo_pos.to_string(),
                        evidence,
                    });
                }
                OutputStatus::BatchClaimed => {
                    if let Some(e) = Self::doomed(&o) {
                        return Err(e);
                    }
                }
                OutputStatus::NotOnChain => return Err(mismatch(o.utxo_pos, evidence)),
                _ => {}
            }
        }
        self.start_in_flight_exit_unchecked(signed).await
    }

    /// [`Wallet::start_in_flight_exit`] without any check (tests of cheaters, experts).
    pub async fn start_in_flight_exit_unchecked(
        &self,
        signed: &SignedTransaction,
    ) -> Result<TxHash, SdkError> {
        let inputs =
            signed.transaction.input_positions().map_err(|e| SdkError::Store(e.to_string()))?;
        self.fetch_missing(&inputs.iter().map(|p| p.to_u128()).collect::<Vec<_>>()).await?;
        let stored: Vec<StoredOutput> =
            inputs.iter().map(|p| self.stored(p.to_u128())).collect::<Result<_, _>>()?;
        let args = InFlightExitGame::StartArgs {
            inFlightTx: signed.transaction.encode().into(),
            inputTxs: stored.iter().map(|o| o.tx_bytes.clone()).collect(),
            inputUtxoPos: inputs.iter().map(|p| p.to_u256()).collect(),
            inputProofs: stored.iter().map(|o| o.proof.clone()).collect(),
            inputBlockTimestamps: stored.iter().map(|o| o.block_timestamp).collect(),
            signatures: signed.signatures.clone(),
        };
        let bond = self.in_flight.inFlightExitBond().call().await.map_err(l1)?;
        let sent = self.in_flight.startInFlightExit(args).value(bond).send().await;
        Ok(mined(sent, "startInFlightExit").await?.transaction_hash)
    }

    /// A payment this wallet sent, as signed.
    pub fn sent_transaction(&self, hash: B256) -> Result<SignedTransaction, SdkError> {
        let bytes = self
            .store
            .sent(hash)?
            .ok_or_else(|| SdkError::UnknownOutput(format!("sent transaction {hash}")))?;
        SignedTransaction::decode(&bytes).map_err(|e| SdkError::Store(e.to_string()))
    }

    /// The L1 state of the standard exit of `utxo_pos`: 0 none, 1 active, 2 challenged, 3 settled.
    pub async fn exit_status(&self, utxo_pos: u128) -> Result<u8, SdkError> {
        Ok(self.standard.exits(U256::from(utxo_pos)).call().await.map_err(l1)?.status)
    }

    /// Piggybacks an input (`output == false`) or output of an in-flight exit.
    pub async fn piggyback(
        &self,
        tx_hash: B256,
        output: bool,
        index: u8,
    ) -> Result<TxHash, SdkError> {
        let exit_id = U256::from_be_bytes(tx_hash.0);
        let bond =
            self.in_flight.inFlightExit(exit_id).call().await.map_err(l1)?.piggybackBondAmount;
        let call = if output {
            self.in_flight.piggybackOutput(exit_id, index).value(bond).send().await
        } else {
            self.in_flight.piggybackInput(exit_id, index).value(bond).send().await
        };
        Ok(mined(call, "piggyback").await?.transaction_hash)
    }

    /// Processes up to `max` due exits of `token` (anyone may; pays a bounty to the caller).
    pub async fn process_exits(&self, token: Address, max: u64) -> Result<TxHash, SdkError> {
        let sent = self.framework.processExits(token, U256::ZERO, U256::from(max)).send().await;
        Ok(mined(sent, "processExits").await?.transaction_hash)
    }

    /// What this wallet can withdraw from the framework in `token`.
    pub async fn withdrawable(&self, token: Address) -> Result<U256, SdkError> {
        self.framework.withdrawable(self.address(), token).call().await.map_err(l1)
    }

    /// Withdraws everything credited in `token`; returns the amount.
    pub async fn withdraw(&self, token: Address) -> Result<U256, SdkError> {
        let amount = self.withdrawable(token).await?;
        mined(self.framework.withdraw(token).send().await, "withdraw").await?;
        Ok(amount)
    }

    /// Signs an exit authorization for a watchtower (EXIT-9) with the current L1 nonce.
    pub async fn authorize_watchtower(
        &self,
        exitor: Address,
        deadline: u64,
    ) -> Result<(ExitAuthorization, Bytes), SdkError> {
        let nonce = self.standard.authorizationNonce(self.address()).call().await.map_err(l1)?;
        let auth = ExitAuthorization { exitor, deadline: U256::from(deadline), nonce };
        let sig = self.signer.sign_digest(self.domain.exit_authorization_digest(&auth));
        Ok((auth, sig))
    }

    /// Hands a payment this wallet signed (see [`Wallet::sent_transaction`]) to the watchtower at
    /// `watcher_url`, so that if the chain turns byzantine before the payment is seen included,
    /// the watchtower exits it in flight rather than exiting its inputs (WATCH-6). The owner must
    /// be guarded there.
    pub async fn hand_in_flight_to_watchtower(
        &self,
        watcher_url: &str,
        signed: &SignedTransaction,
    ) -> Result<(), SdkError> {
        let url = format!("{}/v1/guards/in-flight", watcher_url.trim_end_matches('/'));
        let body = serde_json::json!({"tx": format!("0x{}", hex::encode(signed.encode()))});
        let resp = crate::client::http_client()
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| SdkError::Watchtower { url: url.clone(), reason: e.to_string() })?;
        if resp.status().is_success() {
            return Ok(());
        }
        let mut resp = resp;
        let v: serde_json::Value =
            match crate::client::read_bounded(&mut resp, crate::client::MAX_JSON_ANSWER).await {
                Ok(Some(body)) => serde_json::from_slice(&body).unwrap_or_default(),
                _ => serde_json::Value::Null,
            };
        let reason = format!(
            "{}: {}",
            v["error"]["code"].as_str().unwrap_or("Unknown"),
            v["error"]["message"].as_str().unwrap_or_default()
        );
        Err(SdkError::Watchtower { url, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: u128 = 1_000_000_000;

    /// A tower's `/status` is read within bounds: one that streams without end is cut off at
    /// `MAX_JSON_ANSWER` (review E: it was read whole for up to its 10 s timeout).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_towers_endless_status_is_cut_off_not_held() {
        use std::sync::atomic::{AtomicU64, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let written = std::sync::Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 4096];
            let _ = sock.read(&mut head).await;
            let start = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         connection: close\r\n\r\n{\"status\": ";
            if sock.write_all(start.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b' '; 1 << 20];
            for _ in 0..256 {
                if sock.write_all(&chunk).await.is_err() {
                    break;
                }
                counter.fetch_add(1 << 20, Ordering::SeqCst);
            }
        });
        let r = Wallet::watcher_view(&format!("http://{addr}")).await;
        assert!(
            matches!(&r, Err(SdkError::Watchtower { reason, .. }) if reason.contains("longer than")),
            "{r:?}"
        );
        let read = written.load(Ordering::SeqCst);
        assert!(read < (crate::client::MAX_JSON_ANSWER as u64) + (16 << 20), "read {read} bytes");
    }

    #[test]
    fn the_operators_listing_speaks_for_every_block() {
        let l = Listing::operator([1000 * B].into());
        assert!(l.gone(1000 * B).is_none());
        assert!(l.gone(2000 * B).unwrap().starts_with("the operator no longer lists it"));
        assert!(l.by_operator(u128::MAX));
    }

    #[test]
    fn what_the_towers_leave_out_is_unlisted_never_gone() {
        // The operator listed up to position 1000·B, then failed; the towers listed the rest.
        let l = Listing {
            positions: [1000 * B, 3000 * B].into(),
            operator_to: Some(1000 * B),
            towers: Some("tower 0 http://t".into()),
        };
        assert!(l.gone(B).unwrap().starts_with("the operator"));
        assert!(!l.unlisted_by_towers(B), "the operator's word");
        for pos in [2000 * B, 4000 * B] {
            assert!(l.gone(pos).is_none(), "{pos}: only towers could say");
            assert!(l.unlisted_by_towers(pos), "{pos}");
        }
        assert!(l.gone(3000 * B).is_none() && !l.unlisted_by_towers(3000 * B), "listed");
        assert!(!l.by_operator(3000 * B));
        // What the towers alone list is labelled; what the operator listed is not.
        assert!(l.by_towers_only(3000 * B));
        assert!(!l.by_towers_only(1000 * B) && !l.by_towers_only(2000 * B));
        // Nobody listed at all: nothing is known gone, nothing reported unlisted.
        assert!(Listing::default().gone(B).is_none());
        assert!(!Listing::default().unlisted_by_towers(B));
        assert!(!Listing::operator([B].into()).unlisted_by_towers(2 * B));
    }

    fn spent(evidence: &str, source: Option<SpentSource>) -> StoredOutput {
        StoredOutput {
            utxo_pos: 1000 * B,
            owner: Address::ZERO,
            token: Address::ZERO,
            amount: U256::from(1),
            tx_bytes: Bytes::new(),
            proof: Bytes::new(),
            root: B256::ZERO,
            block_timestamp: 0,
            spent_by: None,
            exiting: false,
            batch_claim: None,
            status: OutputStatus::Spent,
            evidence: Some(evidence.into()),
            spent_source: source,
            verification: Verification::ProofTx,
            problem: None,
            checked_at: 0,
        }
    }

    #[test]
    fn only_a_spent_status_shown_by_towers_alone_is_no_evidence() {
        // Written by an older version: the source is read from the evidence text.
        let by_towers = spent(
            "the operator did not answer, and no tower that did (tower 0 http://t) lists it as \
             unspent though one validated its block (to block 1000000000000); if they lie, exit \
             it unchecked (plasma exit --force)",
            None,
        );
        assert_eq!(by_towers.spent_source(), Some(SpentSource::Towers));
        assert!(!by_towers.is_spent_on_evidence());
        let by_operator = spent(&Listing::operator(BTreeSet::new()).gone(B).unwrap(), None);
        assert_eq!(by_operator.spent_source(), Some(SpentSource::Operator));
        assert!(by_operator.is_spent_on_evidence());
        let challenged =
            spent("its standard exit was challenged on L1 with a spend its owner signed", None);
        assert_eq!(challenged.spent_source(), Some(SpentSource::L1));
        let mine = spent(&format!("spent by this wallet's transaction {}", B256::ZERO), None);
        assert_eq!(mine.spent_source(), Some(SpentSource::Wallet));
        // An unknown text is kept (not known to be towers' word); a recorded source wins.
        assert!(spent("something else", None).is_spent_on_evidence());
        assert!(!spent("something else", Some(SpentSource::Towers)).is_spent_on_evidence());
        // Not spent: no source.
        let unspent = StoredOutput { status: OutputStatus::Unspent, ..by_operator };
        assert_eq!(unspent.spent_source(), None);
        assert!(!unspent.is_spent_on_evidence());
    }
}
