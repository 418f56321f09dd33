//! The wallet: keys, deposits, verified outputs, transfers, and exits that need only L1 and the
//! local store.

use crate::{
    client::{ExitData, ListedUtxo, OperatorClient},
    error::SdkError,
    store::{ProofStore, StoredOutput},
};
use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, TxHash, U256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
    sol_types::SolValue,
};
use plasma_contracts::{InFlightExitGame, PlasmaFramework, StandardExitGame, TestToken};
use plasma_spec::{
    ExitAuthorization, Output, Proof, SignedTransaction, Signer, SigningDomain, Transaction,
    UtxoPos, leaf_hash,
};
use std::{path::PathBuf, time::Duration};

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
}

fn l1(e: impl std::fmt::Display) -> SdkError {
    SdkError::L1(e.to_string())
}

/// Waits for a sent L1 transaction's receipt; a revert is an error naming `what`.
async fn mined(
    sent: Result<
        alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
        alloy::contract::Error,
    >,
    what: &str,
) -> Result<alloy::rpc::types::TransactionReceipt, SdkError> {
    let receipt = sent.map_err(l1)?.get_receipt().await.map_err(l1)?;
    if receipt.status() {
        Ok(receipt)
    } else {
        Err(SdkError::L1(format!("{what} reverted in {}", receipt.transaction_hash)))
    }
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
        let framework = PlasmaFramework::new(config.framework, provider.clone());
        let standard = StandardExitGame::new(
            framework.standardExitGame().call().await.map_err(l1)?,
            provider.clone(),
        );
        let in_flight = InFlightExitGame::new(
            framework.inFlightExitGame().call().await.map_err(l1)?,
            provider.clone(),
        );
        Ok(Self {
            key,
            signer,
            provider,
            framework,
            standard,
            in_flight,
            domain: SigningDomain::new(chain_id, config.framework),
            client: OperatorClient::new(config.operator_url.clone()),
            store: ProofStore::open(&config.store_path)?,
        })
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
    /// error and nothing of that output is stored.
    pub async fn sync(&self) -> Result<SyncReport, SdkError> {
        let mut report = SyncReport::default();
        for listed in self.client.utxos(self.address()).await? {
            if self.store.get(listed.utxo_pos)?.is_some() {
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
            let stored = self.verify(&listed, &data).await?;
            self.store.put(&stored)?;
            report.added += 1;
        }
        Ok(report)
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
        })
    }

    /// Verified outputs not spent or exiting.
    pub fn spendable(&self, token: Address) -> Result<Vec<StoredOutput>, SdkError> {
        Ok(self
            .store
            .all()?
            .into_iter()
            .filter(|o| o.token == token && o.spent_by.is_none() && !o.exiting)
            .collect())
    }

    /// Verified balance of `token`.
    pub fn balance(&self, token: Address) -> Result<U256, SdkError> {
        Ok(self.spendable(token)?.iter().map(|o| o.amount).fold(U256::ZERO, |a, b| a + b))
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
            match self.sync().await {
                Ok(_) | Err(SdkError::OperatorUnreachable { .. }) => {}
                Err(e) => return Err(e),
            }
            if self.store.get(utxo_pos)?.is_some() {
                return Ok(());
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
    /// neither the operator nor anything but the local store.
    pub async fn start_exits(&self, positions: &[u128]) -> Result<TxHash, SdkError> {
        let outputs: Vec<StoredOutput> =
            positions.iter().map(|p| self.stored(*p)).collect::<Result<_, _>>()?;
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
            self.store.put(&o)?;
        }
        Ok(receipt.transaction_hash)
    }

    /// Starts an in-flight exit of one of this wallet's own payments whose inputs are stored
    /// (for a transaction the operator never included, or whose block is withheld).
    pub async fn start_in_flight_exit(
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
