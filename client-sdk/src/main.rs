//! `plasma`: a command-line wallet for the plasma child chain. Thin: parses flags and calls
//! `plasma_sdk::Wallet`.

use alloy::{
    primitives::{Address, B256, U256, utils::parse_ether},
    signers::local::PrivateKeySigner,
};
use clap::{Parser, Subcommand};
use plasma_sdk::{SdkError, Wallet, WalletConfig};
use serde_json::json;
use std::{path::PathBuf, process::ExitCode, time::Duration};

/// A wallet for the plasma child chain: deposit, send, keep proofs, exit.
#[derive(Debug, Parser)]
#[command(name = "plasma", version)]
struct Cli {
    /// A TOML file with any of: l1_rpc_url, operator_url, towers, framework, contracts, keystore,
    /// store, watchers. Flags and environment variables override it.
    #[arg(long = "config", env = "PLASMA_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// L1 JSON-RPC endpoint [default: http://127.0.0.1:8545].
    #[arg(long = "l1.rpc-url", env = "PLASMA_L1_RPC_URL", global = true)]
    rpc_url: Option<String>,
    /// The operator's API [default: http://127.0.0.1:9656].
    #[arg(long = "operator.url", env = "PLASMA_OPERATOR_URL", global = true)]
    operator_url: Option<String>,
    /// The framework contract (or read it from --contracts).
    #[arg(long = "framework", env = "PLASMA_FRAMEWORK", global = true)]
    framework: Option<Address>,
    /// A contracts.json written by plasma-deploy (scripts/devnet writes .devnet/contracts.json).
    #[arg(
        long = "contracts",
        env = "PLASMA_CONTRACTS",
        default_value = ".devnet/contracts.json",
        global = true
    )]
    contracts: PathBuf,
    /// Raw private key (devnets); prefer --keystore.
    #[arg(long = "private-key", env = "PLASMA_PRIVATE_KEY", hide_env_values = true, global = true)]
    private_key: Option<String>,
    /// Web3 Secret Storage keystore; the password comes from PLASMA_KEYSTORE_PASSWORD.
    #[arg(long = "keystore", env = "PLASMA_KEYSTORE", global = true)]
    keystore: Option<PathBuf>,
    /// Where the wallet keeps its verified proofs (default: ~/.plasma/<address>.redb).
    #[arg(long = "store", env = "PLASMA_STORE", global = true)]
    store: Option<PathBuf>,
    /// Watchers (base URLs, comma-separated) whose verdict makes a received payment final
    /// (`proof+tx+watcher`); their `/status` is read on every sync.
    #[arg(long = "watchers", env = "PLASMA_WATCHERS", value_delimiter = ',', global = true)]
    watchers: Vec<String>,
    /// Towers (base URLs, comma-separated, in the order to ask them) read when the operator is
    /// down, withholds a block or serves data that does not verify against L1: sync, balance
    /// --sync, restore, exits. Payments are still sent to the operator only.
    #[arg(long = "towers", env = "PLASMA_TOWERS", value_delimiter = ',', global = true)]
    towers: Vec<String>,
    /// If the store belongs to another chain or deployment (e.g. after `scripts/devnet --reset`),
    /// rename it aside and start a fresh one instead of refusing.
    #[arg(long = "fresh-store", global = true)]
    fresh_store: bool,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Deposit ETH (amount in ether) or, with --token, an ERC-20 (amount in base units).
    Deposit {
        /// Amount.
        amount: String,
        /// ERC-20 token address.
        #[arg(long)]
        token: Option<Address>,
    },
    /// Fetch, verify against L1 and store this wallet's outputs (progress on stderr).
    Sync,
    /// Recover the wallet from its key alone: list its outputs from the operator and every
    /// tower (--towers), verify each against L1, store them, and say which source gave what.
    /// Works with the operator down; `plasma exit` then needs only L1 and the store.
    Restore,
    /// Verified balance, from the local store at once, with when it was last synced.
    Balance {
        /// ERC-20 token address (default ETH).
        #[arg(long)]
        token: Option<Address>,
        /// Sync first (and wait for it).
        #[arg(long)]
        sync: bool,
    },
    /// Verified outputs with their state, from the local store, with when it was last synced.
    Utxos {
        /// Sync first (and wait for it).
        #[arg(long)]
        sync: bool,
    },
    /// Send a payment and wait until its block is committed.
    Send {
        /// Recipient.
        to: Address,
        /// Amount (ether for ETH, base units for a token).
        amount: String,
        /// ERC-20 token address (default ETH).
        #[arg(long)]
        token: Option<Address>,
        /// Fee in wei (or base units).
        #[arg(long, default_value = "0")]
        fee: U256,
        /// Also hand the payment to this watcher (POST /v1/guards/in-flight), which then exits it
        /// in flight if the operator withholds its block (you must be guarded there).
        #[arg(long = "watcher.url")]
        watcher_url: Option<String>,
    },
    /// Start exits of stored outputs (all exitable ones with --all or none given), in as many
    /// L1 transactions as the limits need, with progress. Standard exits, or batch exits
    /// (--batch; the default for --all when more than 50 outputs are exitable): claims of 20
    /// bytes each, paid by `plasma payout` once the batch is processed. Works with the operator
    /// down.
    Exit {
        /// Positions to exit.
        positions: Vec<u128>,
        /// Every output a standard exit can still pay (the default when no position is given).
        #[arg(long, conflicts_with = "positions")]
        all: bool,
        /// Exit even outputs the wallet believes doomed (e.g. when you know the operator lies
        /// about a spend); an exit of a spent output loses its bond. Standard exits only.
        #[arg(long, conflicts_with = "batch")]
        force: bool,
        /// Claim the outputs in batch exits (EXIT-12), at most --batch-size claims per L1
        /// transaction.
        #[arg(long, conflicts_with = "standard")]
        batch: bool,
        /// Standard exits even for more than 50 outputs.
        #[arg(long)]
        standard: bool,
        /// Most claims per batch (one L1 transaction each).
        #[arg(long, default_value_t = plasma_sdk::DEFAULT_BATCH_CLAIMS)]
        batch_size: usize,
    },
    /// Pay this wallet's claims in processed batch exits (EXIT-15): they are credited, then
    /// `plasma withdraw` takes them out (withdraw pays them first by itself).
    Payout,
    /// Process due exits of a token.
    Process {
        /// ERC-20 token address (default ETH).
        #[arg(long)]
        token: Option<Address>,
        /// Most exits to process.
        #[arg(long, default_value_t = 100)]
        max: u64,
    },
    /// Withdraw what exits, bonds and bounties credited to this wallet; first pays its claims in
    /// processed batch exits, if it holds any.
    Withdraw {
        /// ERC-20 token address (default ETH).
        #[arg(long)]
        token: Option<Address>,
    },
    /// Stored outputs that are exiting, with the state of their exits on L1 (standard exits and
    /// batch claims).
    Exits,
    /// Start an in-flight exit of a payment this wallet sent (its block withheld or never made).
    InFlightExit {
        /// The payment's hash.
        tx_hash: B256,
        /// Start it even if the wallet believes it useless (the payment's block is committed and
        /// served, but you know it is invalid).
        #[arg(long)]
        force: bool,
    },
    /// Piggyback an input or output of an in-flight exit.
    Piggyback {
        /// The in-flight transaction's hash.
        tx_hash: B256,
        /// Piggyback output N.
        #[arg(long, conflicts_with = "input")]
        output: Option<u8>,
        /// Piggyback input N.
        #[arg(long)]
        input: Option<u8>,
    },
    /// Sign an exit authorization for a watchtower and print it.
    AuthorizeWatchtower {
        /// The watchtower's address.
        exitor: Address,
        /// Valid for this many days.
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// Hand the authorization to this watcher's API (POST /v1/guards) as well.
        #[arg(long = "watcher.url")]
        watcher_url: Option<String>,
    },
}

fn amount(s: &str, token: Option<Address>) -> Result<U256, SdkError> {
    match token {
        None => parse_ether(s).map_err(|e| SdkError::Config(format!("amount `{s}`: {e}"))),
        Some(_) => s.parse().map_err(|e| SdkError::Config(format!("amount `{s}`: {e}"))),
    }
}

/// The optional configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    l1_rpc_url: Option<String>,
    operator_url: Option<String>,
    framework: Option<Address>,
    contracts: Option<PathBuf>,
    keystore: Option<PathBuf>,
    store: Option<PathBuf>,
    watchers: Option<Vec<String>>,
    towers: Option<Vec<String>>,
}

async fn run(mut cli: Cli) -> Result<serde_json::Value, SdkError> {
    if let Some(path) = &cli.config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SdkError::Config(format!("{}: {e}", path.display())))?;
        let file: FileConfig = toml::from_str(&text)
            .map_err(|e| SdkError::Config(format!("{}: {e}", path.display())))?;
        cli.rpc_url = cli.rpc_url.or(file.l1_rpc_url);
        cli.operator_url = cli.operator_url.or(file.operator_url);
        cli.framework = cli.framework.or(file.framework);
        cli.keystore = cli.keystore.or(file.keystore);
        cli.store = cli.store.or(file.store);
        if cli.watchers.is_empty() {
            cli.watchers = file.watchers.unwrap_or_default();
        }
        if cli.towers.is_empty() {
            cli.towers = file.towers.unwrap_or_default();
        }
        if let Some(c) = file.contracts {
            cli.contracts = c;
        }
    }
    let rpc_url = cli.rpc_url.clone().unwrap_or_else(|| "http://127.0.0.1:8545".into());
    let operator_url = cli.operator_url.clone().unwrap_or_else(|| "http://127.0.0.1:9656".into());
    let key: PrivateKeySigner = match (&cli.keystore, &cli.private_key) {
        (Some(path), _) => {
            let pw = std::env::var("PLASMA_KEYSTORE_PASSWORD").map_err(|_| {
                SdkError::Config("set PLASMA_KEYSTORE_PASSWORD for --keystore".into())
            })?;
            Wallet::key_from_keystore(path, &pw)?
        }
        (None, Some(k)) => {
            k.trim().parse().map_err(|e| SdkError::Config(format!("private key: {e}")))?
        }
        (None, None) => return Err(SdkError::Config("give --keystore or --private-key".into())),
    };
    let framework = match cli.framework {
        Some(f) => f,
        None => {
            let text = std::fs::read_to_string(&cli.contracts).map_err(|e| {
                SdkError::Config(format!("{} ({e}); give --framework", cli.contracts.display()))
            })?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| SdkError::Config(e.to_string()))?;
            v["framework"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| SdkError::Config("no framework in contracts file".into()))?
        }
    };
    let store_path = cli.store.clone().unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".plasma").join(format!("{}.redb", key.address()))
    });
    let config =
        WalletConfig { l1_rpc_url: rpc_url, operator_url, framework, chain_id: None, store_path };
    let wallet = match Wallet::connect(key.clone(), &config).await {
        Err(e @ SdkError::StoreOfAnotherChain { .. }) if cli.fresh_store => {
            let aside = config.store_path.with_extension(format!("redb.stale-{}", unix_now()));
            std::fs::rename(&config.store_path, &aside)
                .map_err(|io| SdkError::Store(format!("{e}; renaming it failed: {io}")))?;
            eprintln!(
                "{e}\nthe old store was renamed to {}; starting a fresh one",
                aside.display()
            );
            Wallet::connect(key, &config).await?
        }
        other => other?,
    };
    let mut watchers = cli.watchers.clone();
    if let Command::Send { watcher_url: Some(url), .. } = &cli.command {
        watchers.push(url.clone());
    }
    let wallet = wallet.with_watchers(watchers).with_towers(cli.towers.clone());
    let eth = Address::ZERO;
    Ok(match cli.command {
        Command::Deposit { amount: a, token } => {
            let value = amount(&a, token)?;
            let pos = match token {
                None => wallet.deposit_eth(value).await?,
                Some(t) => wallet.deposit_erc20(t, value).await?,
            };
            eprintln!("deposited; waiting for the operator to credit output {pos} …");
            wallet.wait_for_output(pos, Duration::from_secs(120)).await?;
            json!({"utxoPos": pos.to_string(), "amount": value.to_string()})
        }
        Command::Sync => {
            let r = sync_with_progress(&wallet).await?;
            warn_invalid(r.invalid);
            warn_unlisted(&r.unlisted);
            warn_tower_only(&r.tower_only);
            json!({"added": r.added, "known": r.known, "pending": r.pending, "gone": r.gone, "invalid": r.invalid, "unlisted": strings(&r.unlisted), "towerOnly": strings(&r.tower_only), "lastSync": wallet.last_sync()?})
        }
        Command::Restore => {
            let r = wallet.restore().await?;
            for s in &r.sources {
                match (&s.listed, &s.error) {
                    (Some(n), _) => eprintln!(
                        "restore: {} listed {n} output(s) ({} listed by no other source) and \
                         served {} proof(s)",
                        s.source, s.only_here, s.proofs
                    ),
                    (None, Some(e)) => eprintln!("restore: {} failed: {e}", s.source),
                    (None, None) => {}
                }
            }
            for (pos, why) in &r.rejected {
                eprintln!("restore: output {pos} rejected: {why}");
            }
            warn_invalid(r.invalid);
            warn_unlisted(&r.unlisted);
            warn_tower_only(&r.tower_only);
            json!({
                "listed": r.listed,
                "added": r.added,
                "known": r.known,
                "pending": r.pending,
                "gone": r.gone,
                "invalid": r.invalid,
                "unlisted": strings(&r.unlisted),
                "towerOnly": strings(&r.tower_only),
                "rejected": r.rejected.iter().map(|(p, why)| json!({"utxoPos": p.to_string(), "reason": why})).collect::<Vec<_>>(),
                "sources": r.sources.iter().map(|s| json!({
                    "source": s.source.to_string(),
                    "url": s.source.url(),
                    "operator": s.source.is_operator(),
                    "listed": s.listed,
                    "onlyHere": s.only_here,
                    "proofs": s.proofs,
                    "error": s.error.as_ref().map(ToString::to_string),
                })).collect::<Vec<_>>(),
                "balance": wallet.balance(eth)?.to_string(),
                "lastSync": wallet.last_sync()?,
            })
        }
        Command::Balance { token, sync } => {
            // From the store at once: the stored, re-checked proofs are the balance, as of the
            // last sync (stated); --sync waits for a fresh one.
            if sync {
                sync_with_progress(&wallet).await?;
            }
            let t = token.unwrap_or(eth);
            let last = wallet.last_sync()?;
            warn_stale(last.as_ref(), sync);
            json!({
                "token": t,
                "balance": wallet.balance(t)?.to_string(),
                "final": wallet.final_balance(t)?.to_string(),
                "exiting": wallet.exiting_balance(t)?.to_string(),
                "unverified": wallet.unverified_balance(t)?.to_string(),
                "lastSync": last,
            })
        }
        Command::Utxos { sync } => {
            if sync {
                sync_with_progress(&wallet).await?;
            }
            let last = wallet.last_sync()?;
            warn_stale(last.as_ref(), sync);
            json!({"utxos": wallet.outputs()?, "lastSync": last})
        }
        Command::Send { to, amount: a, token, fee, watcher_url } => {
            wallet.sync().await?;
            let value = amount(&a, token)?;
            let hash = wallet.send(to, token.unwrap_or(eth), value, fee).await?;
            if let Some(url) = watcher_url {
                wallet.hand_in_flight_to_watchtower(&url, &wallet.sent_transaction(hash)?).await?;
                eprintln!("the watcher at {url} holds the payment until it is seen included");
            }
            eprintln!("sent {hash}; waiting for its block to be committed …");
            let blknum = wallet.wait_for_commit(hash, Duration::from_secs(120)).await?;
            json!({"txHash": hash, "blknum": blknum})
        }
        Command::Exit { positions, all, force, batch, standard, batch_size } => {
            let every = positions.is_empty() || all;
            if batch || (every && !standard && !force) {
                wallet.refresh().await?;
                let exitable = wallet.exitable()?.len();
                if batch || (exitable > BATCH_BY_DEFAULT_ABOVE && wallet.has_batch_exit_game()) {
                    return batch_exit(
                        &wallet,
                        (!every).then_some(positions.as_slice()),
                        batch_size,
                    )
                    .await;
                }
            }
            let positions = if every {
                // Only what a standard exit can still pay, as re-checked now.
                wallet.refresh().await?;
                wallet.exitable()?.iter().map(|o| o.utxo_pos).collect()
            } else {
                positions
            };
            if positions.is_empty() {
                return Err(SdkError::UnknownOutput("nothing to exit".into()));
            }
            let total = positions.len();
            let mut done = 0;
            let report = wallet
                .start_exits_with(&positions, force, &mut |c| {
                    done += c.started.len() + c.skipped.len();
                    eprintln!(
                        "exit: {done}/{total} sent; {} started in {} ({} gas){}",
                        c.started.len(),
                        c.l1_tx,
                        c.gas_used,
                        if c.skipped.is_empty() {
                            String::new()
                        } else {
                            format!(", {} skipped by the contract", c.skipped.len())
                        }
                    );
                })
                .await?;
            if let Some(e) = &report.error {
                eprintln!(
                    "exit: {} position(s) NOT started ({e}); the started ones are recorded",
                    report.not_started.len()
                );
            }
            let started = report.started();
            json!({
                "l1Tx": report.chunks.last().map(|c| c.l1_tx),
                "exits": started.iter().map(u128::to_string).collect::<Vec<_>>(),
                "transactions": report.chunks.iter().map(|c| json!({
                    "l1Tx": c.l1_tx,
                    "gasUsed": c.gas_used,
                    "started": c.started.iter().map(u128::to_string).collect::<Vec<_>>(),
                    "skipped": c.skipped.iter().map(|(p, why)| json!({"utxoPos": p.to_string(), "reason": why})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "notStarted": report.not_started.iter().map(u128::to_string).collect::<Vec<_>>(),
                "error": report.error,
            })
        }
        Command::Process { token, max } => {
            json!({"l1Tx": wallet.process_exits(token.unwrap_or(eth), max).await?})
        }
        Command::Payout => payout(&wallet).await?,
        Command::Withdraw { token } => {
            let t = token.unwrap_or(eth);
            let claims = wallet.outputs()?.iter().any(|o| {
                o.status == plasma_sdk::OutputStatus::BatchClaimed
                    && o.batch_claim.as_ref().is_some_and(|c| c.token == t)
            });
            let paid = if claims { Some(payout(&wallet).await?) } else { None };
            json!({"withdrawn": wallet.withdraw(t).await?.to_string(), "payout": paid})
        }
        Command::Exits => {
            let mut list = Vec::new();
            let mut processed: std::collections::HashMap<u64, bool> = Default::default();
            for o in wallet.outputs()? {
                let Some(c) = &o.batch_claim else { continue };
                let state = match wallet.claim_state(c.batch_id, c.index).await? {
                    0 => "live",
                    1 => "demanded",
                    2 => "struck",
                    _ => "paid",
                };
                let processed = match processed.get(&c.batch_id) {
                    Some(p) => *p,
                    None => {
                        let p = wallet.batch_processed(c.batch_id, c.l1_block).await?;
                        *processed.entry(c.batch_id).or_insert(p)
                    }
                };
                list.push(json!({"kind": "batch", "utxoPos": o.utxo_pos.to_string(), "token": o.token, "amount": o.amount.to_string(), "state": state, "batchId": c.batch_id, "claimIndex": c.index, "exitor": c.exitor, "l1Tx": c.l1_tx, "exitableAt": c.exitable_at, "processed": processed}));
            }
            for o in wallet.outputs()?.into_iter().filter(|o| o.exiting) {
                let state = match wallet.exit_status(o.utxo_pos).await? {
                    1 => "active",
                    2 => "challenged",
                    3 => "settled",
                    _ => "none",
                };
                list.push(json!({"kind": "standard", "utxoPos": o.utxo_pos.to_string(), "token": o.token, "amount": o.amount.to_string(), "state": state}));
            }
            json!({"exits": list})
        }
        Command::InFlightExit { tx_hash, force } => {
            let signed = wallet.sent_transaction(tx_hash)?;
            let l1_tx = if force {
                wallet.start_in_flight_exit_unchecked(&signed).await?
            } else {
                wallet.start_in_flight_exit(&signed).await?
            };
            json!({"l1Tx": l1_tx, "exitId": tx_hash})
        }
        Command::Piggyback { tx_hash, output, input } => {
            let (is_output, index) = match (output, input) {
                (Some(i), None) => (true, i),
                (None, Some(i)) => (false, i),
                _ => {
                    return Err(SdkError::Config(
                        "give exactly one of --output N or --input N".into(),
                    ));
                }
            };
            json!({"l1Tx": wallet.piggyback(tx_hash, is_output, index).await?})
        }
        Command::AuthorizeWatchtower { exitor, days, watcher_url } => {
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                + days * 86_400;
            let (auth, sig) = wallet.authorize_watchtower(exitor, deadline).await?;
            let guard = json!({"owner": wallet.address(), "deadline": auth.deadline, "nonce": auth.nonce, "signature": sig});
            if let Some(url) = watcher_url {
                let resp = reqwest::Client::new()
                    .post(format!("{}/v1/guards", url.trim_end_matches('/')))
                    .json(&guard)
                    .send()
                    .await
                    .map_err(|e| SdkError::Config(format!("watcher at {url}: {e}")))?;
                if !resp.status().is_success() {
                    let text = resp.text().await.unwrap_or_default();
                    return Err(SdkError::Config(format!(
                        "the watcher refused the authorization: {text}"
                    )));
                }
                eprintln!("the watcher at {url} now guards {}", wallet.address());
            }
            json!({"exitor": auth.exitor, "guard": guard, "digest": B256::from(wallet.domain().exit_authorization_digest(&auth))})
        }
    })
}

/// `plasma exit --all` claims in batches when more outputs than this are exitable. Below it the
/// standard path is affordable (about 129k gas an output to start: 6.5M for 50, a fifth of a
/// 30M-gas block), gives each output its own priority (a batch waits for its youngest claim,
/// EXIT-13) and needs no payout step. Above it, starting standard exits takes whole L1 blocks when
/// every output must start within one period, while a batch claims an output for 1–2k gas; the
/// payout that follows, without a deadline, measured about 80k gas an output (client-sdk
/// `tests/batch_exit.rs`), still less than a standard exit's start and processing together.
const BATCH_BY_DEFAULT_ABOVE: usize = 50;

/// `plasma exit --batch`: claims the outputs, printing each batch as it is mined.
async fn batch_exit(
    wallet: &Wallet,
    positions: Option<&[u128]>,
    batch_size: usize,
) -> Result<serde_json::Value, SdkError> {
    let options = plasma_sdk::BatchExitOptions { max_claims: batch_size };
    let report = wallet
        .start_batch_exit_with(positions, options, &mut |b| {
            if b.batch_id == 0 {
                eprintln!(
                    "batch exit: {} claims skipped by the contract in {} ({})",
                    b.skipped.len(),
                    b.l1_tx,
                    b.skipped.first().map(|s| s.1.as_str()).unwrap_or_default()
                );
                return;
            }
            eprintln!(
                "batch exit: batch {} claims {} outputs in {} (bonds {} wei, {} gas); \
                 processable from {} (in {}s), then `plasma payout`",
                b.batch_id,
                b.claims.len(),
                b.l1_tx,
                b.bond,
                b.gas_used,
                b.exitable_at,
                b.exitable_at.saturating_sub(unix_now())
            );
        })
        .await?;
    if !report.standard.is_empty() {
        eprintln!(
            "batch exit: {} output(s) exited by standard exits instead",
            report.standard.len()
        );
    }
    if let Some(e) = &report.error {
        eprintln!(
            "batch exit: {} position(s) NOT started ({e}); the claimed ones are recorded",
            report.not_started.len()
        );
    }
    Ok(json!({
        "batches": report.batches.iter().map(|b| json!({
            "batchId": b.batch_id,
            "token": b.token,
            "l1Tx": b.l1_tx,
            "gasUsed": b.gas_used,
            "bond": b.bond.to_string(),
            "firstIndex": b.first_index,
            "claims": strings(&b.claims),
            "skipped": b.skipped.iter().map(|(p, why)| json!({"utxoPos": p.to_string(), "reason": why})).collect::<Vec<_>>(),
            "exitableAt": b.exitable_at,
        })).collect::<Vec<_>>(),
        "claimed": report.claimed().len(),
        "bonds": report.bonds().to_string(),
        "gasUsed": report.gas_used(),
        "standard": report.standard.iter().map(|(p, why)| json!({"utxoPos": p.to_string(), "reason": why})).collect::<Vec<_>>(),
        "standardExits": report.standard_report.as_ref().map(|r| strings(&r.started())),
        "notStarted": strings(&report.not_started),
        "error": report.error,
    }))
}

/// `plasma payout`: pays the wallet's claims in processed batches.
async fn payout(wallet: &Wallet) -> Result<serde_json::Value, SdkError> {
    let r = wallet.payout_batch_claims().await?;
    for c in &r.chunks {
        eprintln!(
            "payout: {} claim(s) paid, {} void, in {} ({} gas)",
            c.paid.len(),
            c.void.len(),
            c.l1_tx,
            c.gas_used
        );
    }
    if !r.waiting.is_empty() {
        let next = r.waiting.iter().map(|w| w.2).min().unwrap_or_default();
        eprintln!(
            "payout: {} claim(s) wait for their batch to be processed (the first from {next}, in \
             {}s; then `plasma process`)",
            r.waiting.len(),
            next.saturating_sub(unix_now())
        );
    }
    Ok(json!({
        "credited": r.credited().to_string(),
        "gasUsed": r.gas_used(),
        "transactions": r.chunks.iter().map(|c| json!({
            "l1Tx": c.l1_tx,
            "gasUsed": c.gas_used,
            "paid": c.paid.iter().map(|(p, b, v)| json!({"utxoPos": p.to_string(), "batchId": b, "amount": v.to_string()})).collect::<Vec<_>>(),
            "void": c.void.iter().map(u128::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "waiting": r.waiting.iter().map(|(p, b, at)| json!({"utxoPos": p.to_string(), "batchId": b, "exitableAt": at})).collect::<Vec<_>>(),
        "lost": r.lost.iter().map(|(p, why)| json!({"utxoPos": p.to_string(), "reason": why})).collect::<Vec<_>>(),
        "error": r.error,
    }))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Syncs, printing progress on stderr.
async fn sync_with_progress(wallet: &Wallet) -> Result<plasma_sdk::SyncReport, SdkError> {
    let mut last = std::time::Instant::now();
    wallet
        .sync_with(&mut |p| {
            if p.listing_done && p.verified == p.new || last.elapsed().as_millis() >= 500 {
                last = std::time::Instant::now();
                eprintln!(
                    "sync: {} listed{}, {} of {} new verified",
                    p.listed,
                    if p.listing_done { "" } else { " so far" },
                    p.verified,
                    p.new
                );
            }
        })
        .await
}

/// Says how fresh an answer from the store is.
fn warn_stale(last: Option<&plasma_sdk::SyncRecord>, just_synced: bool) {
    if just_synced {
        return;
    }
    match last {
        None => eprintln!("(never synced: run `plasma sync` or give --sync)"),
        Some(r) => eprintln!(
            "(from the store, as of the sync {}s ago: {} outputs listed, {} verified then)",
            unix_now().saturating_sub(r.at),
            r.listed,
            r.added
        ),
    }
}

/// Positions as decimal strings (JSON numbers would lose `u128` precision).
fn strings(positions: &[u128]) -> Vec<String> {
    positions.iter().map(u128::to_string).collect()
}

/// Names the unspent outputs no tower lists while the operator is down: kept (a tower's word is
/// no evidence, DA-11), but an exit of one that is spent loses its bond.
fn warn_unlisted(unlisted: &[u128]) {
    if !unlisted.is_empty() {
        eprintln!(
            "WARNING: the operator did not answer and no tower lists {} output(s) as unspent: {}. \
             They are kept as unspent (a tower's word proves nothing), but they may be spent: an \
             exit of a spent output is challenged and loses its bond.",
            unlisted.len(),
            strings(unlisted).join(", ")
        );
    }
}

/// Names the unspent outputs only towers list while the operator is down (spec: DA-11): a tower
/// may be behind the chain, so they may be spent, and an exit of a spent one loses its bond.
fn warn_tower_only(tower_only: &[u128]) {
    if !tower_only.is_empty() {
        eprintln!(
            "WARNING: the operator did not answer; {} output(s) are listed only by towers: {}. A \
             tower lists from what it validated, which may be behind the chain, so they may \
             already be spent. An exit of a spent output is challenged and LOSES ITS BOND: exit \
             them only if you know they are unspent, or sync again once the operator answers.",
            tower_only.len(),
            strings(tower_only).join(", ")
        );
    }
}

fn warn_invalid(invalid: usize) {
    if invalid > 0 {
        eprintln!(
            "WARNING: {invalid} output(s) paid to this wallet come from invalid transactions: the \
             operator is byzantine. They are not counted; exit your other outputs now (plasma exit)."
        );
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let as_json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("plasma: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(v) => {
            if as_json {
                println!("{v}");
            } else {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string()));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if as_json {
                println!("{}", json!({"error": e.to_string()}));
            } else {
                eprintln!("plasma: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["plasma", "balance"]).unwrap();
        assert!(cli.rpc_url.is_none() || std::env::var_os("PLASMA_L1_RPC_URL").is_some());
        assert!(matches!(cli.command, Command::Balance { token: None, sync: false }));
        let cli = Cli::try_parse_from(["plasma", "exit", "--all", "--batch", "--batch-size", "64"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Command::Exit { all: true, batch: true, standard: false, batch_size: 64, .. }
        ));
        let cli = Cli::try_parse_from(["plasma", "exit", "--all"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Exit { batch: false, batch_size: plasma_sdk::DEFAULT_BATCH_CLAIMS, .. }
        ));
        assert!(Cli::try_parse_from(["plasma", "exit", "--batch", "--standard"]).is_err());
        assert!(Cli::try_parse_from(["plasma", "exit", "--batch", "--force"]).is_err());
        assert!(matches!(
            Cli::try_parse_from(["plasma", "payout"]).unwrap().command,
            Command::Payout
        ));
        let cli = Cli::try_parse_from(["plasma", "restore", "--towers", "http://a:1,http://b:2/"])
            .unwrap();
        assert!(matches!(cli.command, Command::Restore));
        assert_eq!(cli.towers, ["http://a:1", "http://b:2/"]);
        let file: FileConfig = toml::from_str("towers = [\"http://t:9701\"]").unwrap();
        assert_eq!(file.towers.unwrap(), ["http://t:9701"]);
    }
}
