//! The wallet: keys, deposits, verified outputs, transfers, and exits that need only L1 and the
//! local store.

use crate::{
    client::{BlockData, ExitData, ListedUtxo, OperatorClient},
    error::SdkError,
    store::{ChainIdentity, OutputStatus, ProofStore, StoredOutput, Verification},
};
use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, TxHash, U256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::{SolEvent, SolValue},
};
use plasma_contracts::{InFlightExitGame, PlasmaFramework, StandardExitGame, TestToken};
use plasma_spec::{
    BlockTree, ExitAuthorization, Output, Proof, SignedTransaction, Signer, SigningDomain,
    TokenSums, Transaction, TxType, UtxoPos, is_deposit_block, leaf_hash,
};
use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    time::Duration,
};

/// Where the wallet's chain lives.
#[derive(Clone, Debug)]
pub struct WalletConfig {
    /// L1 JSON-RPC endpoint.
    pub l1_rpc_url: String,
    /// The operator's API.
    pub operator_url: String,
    /// The framework contract.
    pub framework: Address,
    /// The L1 chain id the wallet expects (checked at connect), if pinned.
    pub chain_id: Option<u64>,
    /// The local proof store's file.
    pub store_path: PathBuf,
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
    domain: SigningDomain,
    client: OperatorClient,
    store: ProofStore,
    /// The L1 block the deployment was bound in, when known (where L1 scans start).
    deployment_block: Option<u64>,
    /// Watchers whose verdict makes a payment final.
    watchers: Vec<String>,
}

/// A watcher's verdict, from its `/status`.
#[derive(Clone, Debug)]
struct WatcherView {
    url: String,
    synced_block: u64,
    byzantine_from: Option<u64>,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

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

/// What checking a creating transaction found.
enum TxCheck {
    /// Passed (`proof+tx`).
    Valid,
    /// Could not be checked (the operator did not serve or mis-served the data); not a verdict.
    Unchecked(String),
    /// The transaction is invalid: the block is, and the operator is byzantine.
    Invalid(String),
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

fn mismatch(pos: u128, reason: impl Into<String>) -> SdkError {
    SdkError::ProofMismatch { utxo_pos: pos.to_string(), reason: reason.into() }
}

impl Wallet {
    /// Connects a key to L1, the operator and the local store; checks the chain id if pinned.
    pub async fn connect(key: PrivateKeySigner, config: &WalletConfig) -> Result<Self, SdkError> {
        let signer = Signer::from_bytes(&B256::from(key.to_bytes()))
            .ok_or_else(|| SdkError::Config("bad key".into()))?;
        let url =
            config.l1_rpc_url.parse().map_err(|e| SdkError::Config(format!("L1 URL: {e}")))?;
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(key.clone()))
            .connect_http(url)
            .erased();
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
        let identity = Self::identity(&provider, chain_id, config.framework).await?;
        let store = ProofStore::open(&config.store_path)?;
        if let Err(stored) = store.bind(&identity)? {
            return Err(SdkError::StoreOfAnotherChain {
                path: config.store_path.display().to_string(),
                stored: stored.to_string(),
                current: identity.to_string(),
            });
        }
        Ok(Self {
            key,
            signer,
            provider,
            framework,
            standard,
            in_flight,
            domain: SigningDomain::new(chain_id, config.framework),
            client: OperatorClient::new(config.operator_url.clone()),
            store,
            deployment_block: identity.deployment.map(|(n, _)| n),
            watchers: Vec::new(),
        })
    }

    /// The watchers (base URLs) whose `/status` the wallet consults before calling a received
    /// payment final (`proof+tx+watcher`).
    #[must_use]
    pub fn with_watchers(mut self, urls: Vec<String>) -> Self {
        self.watchers = urls.into_iter().map(|u| u.trim_end_matches('/').to_owned()).collect();
        self
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
        let filter = Filter::new()
            .address(framework)
            .event_signature(PlasmaFramework::ExitGamesBound::SIGNATURE_HASH)
            .from_block(0);
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
    /// error and nothing of that output is stored. Each new output's creating transaction is then
    /// checked (`proof+tx`, or `invalid`), every stored output is re-checked against the operator
    /// and L1 (spent, exiting, finalized: [`Wallet::recheck`]), and the configured watchers are
    /// consulted (`proof+tx+watcher`).
    pub async fn sync(&self) -> Result<SyncReport, SdkError> {
        let (mut report, listed) = self.fetch_new().await?;
        report.gone = self.recheck(Some(&listed)).await?;
        self.consult_watchers().await?;
        report.invalid =
            self.store.all()?.iter().filter(|o| o.status == OutputStatus::Invalid).count();
        Ok(report)
    }

    /// The first half of [`Wallet::sync`]: verifies and stores what the operator newly lists;
    /// returns what it lists.
    async fn fetch_new(&self) -> Result<(SyncReport, BTreeSet<u128>), SdkError> {
        let mut report = SyncReport::default();
        let listed_all = self.client.utxos(self.address()).await?;
        for listed in &listed_all {
            if let Some(o) = self.store.get(listed.utxo_pos)?
                && o.status != OutputStatus::NotOnChain
            {
                report.known += 1;
                continue;
            }
            let data = match self.client.exit_data(listed.utxo_pos).await {
                Ok(d) => d,
                Err(SdkError::OperatorRefused { code, .. }) if code == "NotCommitted" => {
                    report.pending += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut stored = self.verify(listed, &data).await?;
            self.check_creation(&mut stored).await?;
            if stored.status == OutputStatus::Invalid {
                tracing::warn!(
                    utxo_pos = stored.utxo_pos,
                    problem = stored.problem.as_deref().unwrap_or_default(),
                    "an output paid to this wallet comes from an invalid transaction: the operator \
                     is byzantine; exit your older outputs"
                );
            }
            self.store.put(&stored)?;
            report.added += 1;
        }
        Ok((report, listed_all.iter().map(|u| u.utxo_pos).collect()))
    }

    /// Re-checks what the wallet may no longer trust: every stored output against the operator
    /// (when reachable; it is then also asked for outputs it no longer lists) and L1. Returns how
    /// many outputs it found gone (spent, exiting or finalized) since the last check.
    pub async fn refresh(&self) -> Result<usize, SdkError> {
        let listed = match self.client.utxos(self.address()).await {
            Ok(list) => Some(list.into_iter().map(|u| u.utxo_pos).collect::<BTreeSet<_>>()),
            Err(e @ (SdkError::OperatorUnreachable { .. } | SdkError::BadOperatorResponse(_))) => {
                tracing::warn!(error = %e, "operator unavailable: re-checking against L1 only");
                None
            }
            Err(e) => return Err(e),
        };
        self.recheck(listed.as_ref()).await
    }

    /// Marks spent what the operator no longer lists (the L1 part of [`Wallet::recheck`] skipped).
    async fn mark_unlisted(&self) -> Result<(), SdkError> {
        let listed: BTreeSet<u128> =
            self.client.utxos(self.address()).await?.into_iter().map(|u| u.utxo_pos).collect();
        for mut o in self.store.all()? {
            if o.status == OutputStatus::Unspent && !listed.contains(&o.utxo_pos) {
                o.status = OutputStatus::Spent;
                o.evidence = Some("the operator no longer lists it as unspent".into());
                o.checked_at = unix_now();
                self.store.put(&o)?;
            }
        }
        Ok(())
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

    /// Re-checks every stored output that is not gone for good against L1 — its block commitment
    /// (a reorg), `isOutputFinalized` (OUT-1 id), its standard exit, in-flight exits that spend
    /// it or piggyback it — and, given `listed` (what the operator lists now), against the
    /// operator: an output it no longer lists is spent on the child chain (or exiting, LEDGER-9).
    /// Returns how many outputs it newly found gone.
    pub async fn recheck(&self, listed: Option<&BTreeSet<u128>>) -> Result<usize, SdkError> {
        self.scan_in_flight_exits().await?;
        let mut gone = 0;
        let mut commitments: HashMap<u64, B256> = HashMap::new();
        for mut o in self.store.all()? {
            if matches!(o.status, OutputStatus::Finalized | OutputStatus::Invalid) {
                continue;
            }
            if o.verification == Verification::Proof && o.problem.is_none() && listed.is_some() {
                // Stored before transactions were checked (an older store): check it now.
                self.check_creation(&mut o).await?;
                if o.status == OutputStatus::Invalid {
                    self.store.put(&o)?;
                    continue;
                }
            }
            let before = o.status;
            let (status, evidence) = self.status_of(&o, listed, &mut commitments).await?;
            if status == OutputStatus::Exiting {
                o.exiting = true;
            }
            if status != OutputStatus::Unspent && before == OutputStatus::Unspent {
                gone += 1;
            }
            o.status = status;
            o.evidence = evidence;
            o.checked_at = unix_now();
            self.store.put(&o)?;
        }
        Ok(gone)
    }

    async fn status_of(
        &self,
        o: &StoredOutput,
        listed: Option<&BTreeSet<u128>>,
        commitments: &mut HashMap<u64, B256>,
    ) -> Result<(OutputStatus, Option<String>), SdkError> {
        let pos = UtxoPos::from_u128(o.utxo_pos).map_err(|e| SdkError::Store(e.to_string()))?;
        let commitment = match commitments.get(&pos.blknum()) {
            Some(c) => *c,
            None => {
                let c = self
                    .framework
                    .blockCommitments(U256::from(pos.blknum()))
                    .call()
                    .await
                    .map_err(l1)?;
                commitments.insert(pos.blknum(), c);
                c
            }
        };
        if commitment != keccak256((o.root, U256::from(o.block_timestamp)).abi_encode()) {
            return Ok((
                OutputStatus::NotOnChain,
                Some(format!(
                    "block {}'s commitment on L1 is no longer the verified one",
                    pos.blknum()
                )),
            ));
        }
        let tx = Transaction::decode(&o.tx_bytes).map_err(|e| SdkError::Store(e.to_string()))?;
        let id = tx.output_id(pos.output_index(), pos);
        if self.framework.isOutputFinalized(id).call().await.map_err(l1)? {
            return Ok((OutputStatus::Finalized, Some(format!("isOutputFinalized({id})"))));
        }
        match self.standard.exits(U256::from(o.utxo_pos)).call().await.map_err(l1)?.status {
            0 => {}
            1 => {
                return Ok((
                    OutputStatus::Exiting,
                    Some("its standard exit is active on L1".into()),
                ));
            }
            2 => {
                return Ok((
                    OutputStatus::Spent,
                    Some(
                        "its standard exit was challenged on L1 with a spend its owner signed"
                            .into(),
                    ),
                ));
            }
            _ => {
                return Ok((
                    OutputStatus::Finalized,
                    Some("its standard exit was processed".into()),
                ));
            }
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
                ));
            }
        }
        if !tx.inputs.is_empty() {
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
                ));
            }
        }
        if let Some(hash) = o.spent_by {
            return Ok((
                OutputStatus::Spent,
                Some(format!("spent by this wallet's transaction {hash}")),
            ));
        }
        match listed {
            Some(list) if !list.contains(&o.utxo_pos) => Ok((
                OutputStatus::Spent,
                Some(
                    "the operator no longer lists it as unspent; if the operator lies, exit it \
                     unchecked (plasma exit --force)"
                        .into(),
                ),
            )),
            Some(_) => Ok((OutputStatus::Unspent, None)),
            // The operator was not asked: keep what it said last.
            None if o.status == OutputStatus::Spent => Ok((o.status, o.evidence.clone())),
            None => Ok((OutputStatus::Unspent, None)),
        }
    }

    /// Checks the transaction that created a freshly verified output (issue 13, item 7): what a
    /// wallet can check itself, with the inputs' data from the operator proven under L1.
    async fn check_creation(&self, o: &mut StoredOutput) -> Result<(), SdkError> {
        match self.check_tx(o).await? {
            TxCheck::Valid => o.verification = Verification::ProofTx,
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
        Ok(())
    }

    /// A block from the operator, its root checked against its L1 commitment; `None` if the
    /// operator does not serve it or serves something else.
    async fn proven_block(&self, blknum: u64) -> Result<Option<Vec<Vec<u8>>>, SdkError> {
        let Ok(block) = self.client.block(blknum).await else { return Ok(None) };
        let Some(ts) = block.l1_timestamp else { return Ok(None) };
        let commitment =
            self.framework.blockCommitments(U256::from(blknum)).call().await.map_err(l1)?;
        if commitment != keccak256((block.root, U256::from(ts)).abi_encode()) {
            return Ok(None);
        }
        let Some(leaves) = leaves_of(blknum, &block) else { return Ok(None) };
        match BlockTree::from_txs(&leaves) {
            Ok(tree) if tree.root() == block.root => Ok(Some(leaves)),
            _ => Ok(None),
        }
    }

    async fn check_tx(&self, o: &StoredOutput) -> Result<TxCheck, SdkError> {
        let pos = UtxoPos::from_u128(o.utxo_pos).map_err(|e| SdkError::Store(e.to_string()))?;
        let tx =
            Transaction::decode(&o.tx_bytes).map_err(|e| mismatch(o.utxo_pos, e.to_string()))?;
        let kind = match tx.check() {
            Ok((kind, _)) => kind,
            Err(e) => return Ok(TxCheck::Invalid(format!("malformed transaction: {e}"))),
        };
        if is_deposit_block(pos.blknum()) {
            // The contract itself built the deposit block from the L1 deposit.
            return Ok(if kind == TxType::Deposit {
                TxCheck::Valid
            } else {
                TxCheck::Invalid("a non-deposit transaction in a deposit block".into())
            });
        }
        match kind {
            TxType::Payment => {}
            TxType::Deposit => {
                return Ok(TxCheck::Invalid(format!(
                    "a deposit-type transaction inside child block {}: it can never be exited \
                     (EXIT-1, ExitGameWrongBlockKind)",
                    pos.blknum()
                )));
            }
            TxType::Fee => {
                return Ok(TxCheck::Unchecked(
                    "a fee transaction: its value is the block's fees, which only a watcher checks"
                        .into(),
                ));
            }
        }
        // The signed form, from the block (the root was verified under L1 already).
        let Ok(block) = self.client.block(pos.blknum()).await else {
            return Ok(TxCheck::Unchecked(format!(
                "the operator did not serve block {}",
                pos.blknum()
            )));
        };
        let signed = match (
            leaves_of(pos.blknum(), &block).and_then(|l| BlockTree::from_txs(&l).ok()),
            block
                .txs
                .get(usize::from(pos.tx_index()))
                .and_then(|t| SignedTransaction::decode(t).ok()),
        ) {
            (Some(tree), Some(signed)) if tree.root() == o.root && signed.transaction == tx => {
                signed
            }
            _ => {
                return Ok(TxCheck::Unchecked(format!(
                    "the operator served block {} that does not match its L1 commitment",
                    pos.blknum()
                )));
            }
        };
        let signers = match signed.recover_signers(&self.domain) {
            Ok(s) => s,
            Err(e) => return Ok(TxCheck::Invalid(format!("bad signature: {e}"))),
        };
        let mut inputs = TokenSums::default();
        let mut blocks: HashMap<u64, Option<Vec<Vec<u8>>>> = HashMap::new();
        for (i, input) in tx.input_positions().unwrap_or_default().iter().enumerate() {
            if input.blknum() >= pos.blknum() {
                return Ok(TxCheck::Invalid(format!("input {i} is not older than its spend")));
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = blocks.entry(input.blknum()) {
                slot.insert(self.proven_block(input.blknum()).await?);
            }
            let spent = match blocks.get(&input.blknum()) {
                Some(Some(leaves)) => leaves
                    .get(usize::from(input.tx_index()))
                    .and_then(|t| Transaction::decode(t).ok())
                    .and_then(|t| t.outputs.get(usize::from(input.output_index())).cloned()),
                _ => {
                    let committed = self
                        .framework
                        .blockCommitments(U256::from(input.blknum()))
                        .call()
                        .await
                        .map_err(l1)?;
                    if committed == B256::ZERO {
                        return Ok(TxCheck::Invalid(format!(
                            "input {i} spends block {}, which is not committed on L1",
                            input.blknum()
                        )));
                    }
                    return Ok(TxCheck::Unchecked(format!(
                        "the operator did not serve block {} (input {i}) as committed on L1",
                        input.blknum()
                    )));
                }
            };
            let Some(spent) = spent else {
                return Ok(TxCheck::Invalid(format!(
                    "input {i} spends an output that does not exist"
                )));
            };
            if signers.get(i) != Some(&spent.owner) {
                return Ok(TxCheck::Invalid(format!(
                    "input {i} is signed by {}, not by its owner {}",
                    signers.get(i).copied().unwrap_or_default(),
                    spent.owner
                )));
            }
            if inputs.add(spent.token, spent.amount).is_err() {
                return Ok(TxCheck::Invalid("input sums overflow".into()));
            }
        }
        let outputs = match tx.output_sums() {
            Ok(s) => s,
            Err(e) => return Ok(TxCheck::Invalid(e.to_string())),
        };
        for (token, out) in outputs.iter() {
            if out > inputs.get(token) {
                return Ok(TxCheck::Invalid(format!(
                    "it creates value in token {token}: inputs {}, outputs {out}",
                    inputs.get(token)
                )));
            }
        }
        Ok(TxCheck::Valid)
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
        let v: serde_json::Value = reqwest::Client::new()
            .get(format!("{url}/status"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| err(e.to_string()))?
            .json()
            .await
            .map_err(|e| err(e.to_string()))?;
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

    /// Checks operator data against L1; returns what to store.
    pub async fn verify(
        &self,
        listed: &ListedUtxo,
        data: &ExitData,
    ) -> Result<StoredOutput, SdkError> {
        let pos_u = listed.utxo_pos;
        let pos = UtxoPos::from_u128(pos_u).map_err(|e| mismatch(pos_u, e.to_string()))?;
        let commitment =
            self.framework.blockCommitments(U256::from(pos.blknum())).call().await.map_err(l1)?;
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
        if out.owner != self.address() || out.token != listed.token || out.amount != listed.amount {
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
            status: OutputStatus::Unspent,
            evidence: None,
            verification: Verification::Proof,
            problem: None,
            checked_at: unix_now(),
        })
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
        Ok(self.store.all()?.into_iter().filter(|o| Self::doomed(o).is_none()).collect())
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
            match self.fetch_new().await {
                Ok(_) | Err(SdkError::OperatorUnreachable { .. }) => {}
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
        let mut coins = self.spendable(token)?;
        coins.sort_by_key(|c| std::cmp::Reverse(c.amount));
        let needed = amount + fee;
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
        // Kept before it is sent: if the operator takes it and withholds its block, this is what
        // an in-flight exit needs.
        let hash = signed.transaction.hash();
        self.store.put_sent(hash, &signed.encode())?;
        let accepted = self.client.submit(&signed.encode()).await?;
        if accepted != hash {
            return Err(SdkError::BadOperatorResponse(format!(
                "operator reported hash {accepted}, expected {hash}"
            )));
        }
        for pos in
            signed.transaction.input_positions().map_err(|e| SdkError::Store(e.to_string()))?
        {
            if let Some(mut o) = self.store.get(pos.to_u128())? {
                o.spent_by = Some(hash);
                self.store.put(&o)?;
            }
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

    /// Starts standard exits of stored outputs (one L1 transaction, batched when several); needs
    /// nothing but L1 and the local store. First re-checks the outputs (against L1, and against
    /// the operator if it answers) and refuses, before any bond is paid, an exit the wallet can
    /// tell is doomed: of an output spent ([`SdkError::OutputSpent`]), already exiting
    /// ([`SdkError::OutputExiting`]), finalized ([`SdkError::OutputFinalized`]), from an invalid
    /// transaction ([`SdkError::OutputInvalid`]) or no longer under its L1 commitment.
    pub async fn start_exits(&self, positions: &[u128]) -> Result<TxHash, SdkError> {
        self.refresh().await?;
        let outputs: Vec<StoredOutput> =
            positions.iter().map(|p| self.stored(*p)).collect::<Result<_, _>>()?;
        if let Some(e) = outputs.iter().find_map(Self::doomed) {
            return Err(e);
        }
        self.exit_outputs(outputs).await
    }

    /// [`Wallet::start_exits`] without any check: for an owner who knows better than the wallet
    /// (the operator lies about a spend) — and for tests of cheaters. An exit of a spent output
    /// is challenged and its bond lost.
    pub async fn start_exits_unchecked(&self, positions: &[u128]) -> Result<TxHash, SdkError> {
        let outputs: Vec<StoredOutput> =
            positions.iter().map(|p| self.stored(*p)).collect::<Result<_, _>>()?;
        self.exit_outputs(outputs).await
    }

    async fn exit_outputs(&self, outputs: Vec<StoredOutput>) -> Result<TxHash, SdkError> {
        let bond = self.standard.bondSize().call().await.map_err(l1)?;
        let call = if outputs.len() == 1 {
            self.standard.startStandardExit(Self::exit_args(&outputs[0])).value(bond).send().await
        } else {
            let args = outputs.iter().map(Self::exit_args).collect();
            self.standard
                .startStandardExits(args)
                .value(bond * U256::from(outputs.len()))
                .send()
                .await
        };
        let receipt = mined(call, "exit").await?;
        for mut o in outputs {
            o.exiting = true;
            o.status = OutputStatus::Exiting;
            o.evidence = Some(format!(
                "this wallet started its standard exit in {}",
                receipt.transaction_hash
            ));
            self.store.put(&o)?;
        }
        Ok(receipt.transaction_hash)
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
        let Ok(Some(inc)) = self.client.tx_inclusion(tx.hash()).await else { return Ok(None) };
        if inc.tx_bytes.as_ref() != bytes.as_slice() {
            return Ok(None);
        }
        let commitment =
            self.framework.blockCommitments(U256::from(inc.blknum)).call().await.map_err(l1)?;
        let proven = commitment
            == keccak256((inc.root, U256::from(inc.block_timestamp)).abi_encode())
            && Proof::from_bytes(&inc.proof)
                .is_ok_and(|p| p.verify(leaf_hash(&bytes), usize::from(inc.tx_index), inc.root));
        Ok(proven.then_some((inc.blknum, inc.tx_index)))
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
        let resp = reqwest::Client::new()
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| SdkError::Watchtower { url: url.clone(), reason: e.to_string() })?;
        if resp.status().is_success() {
            return Ok(());
        }
        let v: serde_json::Value = resp.json().await.unwrap_or_default();
        let reason = format!(
            "{}: {}",
            v["error"]["code"].as_str().unwrap_or("Unknown"),
            v["error"]["message"].as_str().unwrap_or_default()
        );
        Err(SdkError::Watchtower { url, reason })
    }
}
