//! `plasma`: a command-line wallet for the plasma child chain. Thin: parses flags strictly
//! (amounts with units, checksummed addresses: `plasma_sdk::units`), calls `plasma_sdk::Wallet`,
//! and answers in JSON for scripts or text for people (`cli::output`).

mod cli;

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use clap::{Parser, Subcommand};
use cli::output::{self, Format, Report, Tokens, duration, unix_now, when};
use plasma_sdk::{
    HistoryEntry, HistoryKind, SdkError, Wallet, WalletConfig,
    units::{self, Unit},
};
use serde_json::json;
use std::{path::PathBuf, process::ExitCode, time::Duration};

/// An address argument: `0x` and 40 hex digits, EIP-55 checked when in mixed case.
fn address(s: &str) -> Result<Address, units::AddressError> {
    units::parse_address(s)
}

/// A wallet for the plasma child chain: deposit, send, keep proofs, exit.
#[derive(Debug, Parser)]
#[command(name = "plasma", version)]
struct Cli {
    /// A TOML file with any of: l1_rpc_url, operator_url (or operator_urls = [...]), towers,
    /// framework, contracts, keystore, store, watchers. Flags and environment variables override
    /// it.
    #[arg(long = "config", env = "PLASMA_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// L1 JSON-RPC endpoint [default: http://127.0.0.1:8545].
    #[arg(long = "l1.rpc-url", env = "PLASMA_L1_RPC_URL", global = true)]
    rpc_url: Option<String>,
    /// The operator's API [default: http://127.0.0.1:9656]. Several (comma-separated, or the
    /// flag repeated): an active operator and its standbys; each request goes to the one that
    /// leads and moves on from one that is down, answers 5xx or is a standby (NotLeader) —
    /// never to a URL outside this list.
    #[arg(
        long = "operator.url",
        visible_alias = "operator-url",
        env = "PLASMA_OPERATOR_URL",
        value_delimiter = ',',
        global = true
    )]
    operator_url: Vec<String>,
    /// The framework contract (or read it from --contracts).
    #[arg(long = "framework", env = "PLASMA_FRAMEWORK", global = true, value_parser = address)]
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
    /// Print JSON (one line) instead of text. Without --json or --human, text on a terminal and
    /// indented JSON when stdout is a pipe or file.
    #[arg(long, global = true, conflicts_with = "human")]
    json: bool,
    /// Print text for people even when stdout is not a terminal.
    #[arg(long, global = true)]
    human: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Deposit ETH or, with --token, an ERC-20; waits until the operator credits it.
    Deposit {
        /// Amount: ether by default, or with a unit (`1.5`, `1.5eth`, `20gwei`, `7wei`); for a
        /// token, in the token's units (its decimals() read from the token).
        amount: String,
        /// ERC-20 token address.
        #[arg(long, value_parser = address)]
        token: Option<Address>,
        /// Seconds to wait for the operator to credit the deposit (it is safe on L1 either way).
        #[arg(long, default_value_t = 120)]
        timeout: u64,
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
        #[arg(long, value_parser = address)]
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
        /// Recipient (EIP-55 checked when in mixed case).
        #[arg(value_parser = address)]
        to: Address,
        /// Amount: ether by default, or with a unit (`0.5`, `20gwei`, `7wei`); for a token, in
        /// the token's units (its decimals() read from the token). Negative, zero, over-precise
        /// and too large amounts are refused before anything is sent.
        amount: String,
        /// ERC-20 token address (default ETH).
        #[arg(long, value_parser = address)]
        token: Option<Address>,
        /// Fee, in the same units as the amount (`0.001`, `20gwei`; token units for a token).
        #[arg(long, default_value = "0")]
        fee: String,
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
        #[arg(long, value_parser = address)]
        token: Option<Address>,
        /// Most exits to process.
        #[arg(long, default_value_t = 100)]
        max: u64,
    },
    /// Withdraw what exits, bonds and bounties credited to this wallet; first pays its claims in
    /// processed batch exits, if it holds any.
    Withdraw {
        /// ERC-20 token address (default ETH).
        #[arg(long, value_parser = address)]
        token: Option<Address>,
    },
    /// Stored outputs that are exiting, with the state of their exits on L1 (standard exits and
    /// batch claims).
    Exits,
    /// Start an in-flight exit of a payment this wallet sent (its block withheld or never made),
    /// or, with --package, of a payment to this wallet from its sender's package.
    InFlightExit {
        /// The payment's hash (a payment this wallet sent).
        #[arg(required_unless_present = "package", conflicts_with = "package")]
        tx_hash: Option<B256>,
        /// A payment package from its sender (`plasma payment-package`): checked against L1,
        /// the exit started and this wallet's outputs piggybacked.
        #[arg(long)]
        package: Option<PathBuf>,
        /// Start it even if the wallet believes it useless (the payment's block is committed and
        /// served, but you know it is invalid).
        #[arg(long)]
        force: bool,
    },
    /// Print (or --out FILE) what the recipient of a payment this wallet sent needs to exit it
    /// in flight: the signed payment and its inputs' proofs (no secret).
    PaymentPackage {
        /// The payment's hash.
        tx_hash: B256,
        /// Write it to this file instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Merge every spendable output of a token into one (as many merge payments as the input
    /// limit needs, each committed before the next round).
    Consolidate {
        /// ERC-20 token address (ETH if absent).
        #[arg(long, value_parser = address)]
        token: Option<Address>,
        /// The fee of each merge payment, in the same units as amounts.
        #[arg(long, default_value = "0")]
        fee: String,
        /// Seconds to wait for each round's payments to be committed.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
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
    /// This wallet's address (needs neither L1 nor the operator).
    Address,
    /// What this wallet sent, received, deposited and exited, from the store (works without L1).
    History,
    /// Whether the operator and L1 answer, and whether the chain is safe per --watchers.
    Status,
    /// Sign an exit authorization for a watchtower and print it.
    AuthorizeWatchtower {
        /// The watchtower's address.
        #[arg(value_parser = address)]
        exitor: Address,
        /// Valid for this many days.
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// Hand the authorization to this watcher's API (POST /v1/guards) as well.
        #[arg(long = "watcher.url")]
        watcher_url: Option<String>,
    },
}

/// Refuses what no unit makes sendable (a sign, malformed text, zero), before connecting:
/// an ETH amount completely, a token amount (whose decimals only the token knows) as far as can
/// be told without them. The exact parse follows once the token's decimals are read.
fn precheck(command: &Command) -> Result<(), SdkError> {
    // Whether a token amount overflows depends on its decimals: only the token can tell.
    fn token(r: Result<U256, units::AmountError>) -> Result<(), units::AmountError> {
        match r {
            Ok(_) | Err(units::AmountError::Overflow(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
    // No token has more than 77 decimals that fit 2^256.
    const ANY_TOKEN: Unit = Unit::Token { decimals: 77 };
    match command {
        Command::Deposit { amount, token: None, .. } => {
            units::parse_amount(amount, Unit::Ether)?;
        }
        Command::Deposit { amount, token: Some(_), .. } => {
            token(units::parse_amount(amount, ANY_TOKEN))?;
        }
        Command::Send { amount, token: None, fee, .. } => {
            units::parse_amount(amount, Unit::Ether)?;
            units::parse_value(fee, Unit::Ether)
                .map_err(|e| SdkError::Config(format!("--fee: {e}")))?;
        }
        Command::Send { amount, token: Some(_), fee, .. } => {
            token(units::parse_amount(amount, ANY_TOKEN))?;
            token(units::parse_value(fee, ANY_TOKEN))
                .map_err(|e| SdkError::Config(format!("--fee: {e}")))?;
        }
        _ => {}
    }
    Ok(())
}

/// The optional configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    l1_rpc_url: Option<String>,
    operator_url: Option<String>,
    /// Several operator URLs (an active operator and its standbys), in order.
    operator_urls: Option<Vec<String>>,
    framework: Option<String>,
    contracts: Option<PathBuf>,
    keystore: Option<PathBuf>,
    store: Option<PathBuf>,
    watchers: Option<Vec<String>>,
    towers: Option<Vec<String>>,
}

/// Whether an error says L1 could not be reached (so a store-only answer is the best there is).
const fn l1_down(e: &SdkError) -> bool {
    matches!(e, SdkError::L1(_) | SdkError::Timeout(_))
}

/// Records what a command did in the wallet's history; a failure to record is logged, never
/// fatal (the funds already moved).
fn record(wallet: &Wallet, key: &str, entry: &HistoryEntry) {
    if let Err(e) = wallet.store().record(key, entry) {
        tracing::warn!(key, error = %e, "history not recorded");
        eprintln!("warning: could not record {key} in the history: {e}");
    }
}

/// The unit amounts of `token` are written in: ether, or the token's decimals (read from it).
async fn unit_of(
    wallet: &Wallet,
    tokens: &mut Tokens,
    token: Option<Address>,
) -> Result<Unit, SdkError> {
    match token {
        None => Ok(Unit::Ether),
        Some(t) => Ok(Unit::Token { decimals: tokens.learn(wallet, t).await?.decimals }),
    }
}

/// The L1 transaction that made deposit output `pos` (its `DepositCreated` event), if the node
/// still serves the logs.
async fn deposit_tx(wallet: &Wallet, pos: u128) -> Option<B256> {
    use alloy::{providers::Provider, rpc::types::Filter, sol_types::SolEvent};
    let provider = wallet.provider();
    let head = provider.get_block_number().await.ok()?;
    let filter = Filter::new()
        .address(wallet.domain().domain().verifying_contract?)
        .event_signature(plasma_contracts::PlasmaFramework::DepositCreated::SIGNATURE_HASH)
        .topic1(B256::left_padding_from(wallet.address().as_slice()))
        .topic2(B256::from(U256::from(pos / 1_000_000_000)))
        .from_block(head.saturating_sub(1_000));
    provider.get_logs(&filter).await.ok()?.last()?.transaction_hash
}

/// What a `processExits` transaction did: how many exits it processed (`ExitsProcessed`) and
/// every credit it capped (`CreditShortfall`: account, token, amount short). Read from its
/// receipt; `(None, [])` if the node does not serve it.
async fn process_receipt(
    wallet: &Wallet,
    l1_tx: B256,
) -> (Option<u64>, Vec<(Address, Address, U256)>) {
    use alloy::providers::Provider;
    use plasma_contracts::PlasmaFramework::{CreditShortfall, ExitsProcessed};
    let Ok(Some(receipt)) = wallet.provider().get_transaction_receipt(l1_tx).await else {
        return (None, Vec::new());
    };
    let logs = receipt.inner.logs();
    let processed = logs
        .iter()
        .filter_map(|l| l.log_decode::<ExitsProcessed>().ok())
        .map(|e| u64::try_from(e.inner.count).unwrap_or(u64::MAX))
        .reduce(u64::saturating_add);
    let shortfalls = logs
        .iter()
        .filter_map(|l| l.log_decode::<CreditShortfall>().ok())
        .map(|e| (e.inner.account, e.inner.token, e.inner.shortfall))
        .collect();
    (processed, shortfalls)
}

/// The exit schedule from L1 (`Wallet::exit_schedule`), kept in the store for `exits` without
/// L1; `None` (logged) when L1 cannot give it.
async fn schedule(wallet: &Wallet) -> Option<Vec<plasma_sdk::ExitTiming>> {
    match wallet.exit_schedule().await {
        Ok(s) => {
            if let Ok(v) = serde_json::to_value(&s)
                && let Err(e) = wallet.store().put_exit_schedule(unix_now(), &v)
            {
                tracing::warn!(error = %e, "exit schedule not kept");
            }
            Some(s)
        }
        Err(e) => {
            tracing::warn!(error = %e, "exit schedule unavailable");
            None
        }
    }
}

/// One line about when an exit can be processed, for people.
fn timing_text(t: &plasma_sdk::ExitTiming, now: u64) -> String {
    let mut s = match (t.exitable_at, t.ready) {
        (_, true) => "ready: `plasma process` settles it now".to_owned(),
        (Some(at), false) => format!("processable from {}", when(at, now)),
        (None, false) => "processable: not known yet".to_owned(),
    };
    if let Some(b) = &t.blocked_by {
        s.push_str(&format!("; {b}"));
    }
    s
}

async fn run(mut cli: Cli) -> Result<Report, SdkError> {
    if let Some(path) = &cli.config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SdkError::Config(format!("{}: {e}", path.display())))?;
        let file: FileConfig = toml::from_str(&text)
            .map_err(|e| SdkError::Config(format!("{}: {e}", path.display())))?;
        cli.rpc_url = cli.rpc_url.or(file.l1_rpc_url);
        if cli.operator_url.is_empty() {
            cli.operator_url = match (file.operator_url, file.operator_urls) {
                (Some(_), Some(_)) => {
                    return Err(SdkError::Config(format!(
                        "{}: give operator_url or operator_urls, not both",
                        path.display()
                    )));
                }
                (Some(one), None) => vec![one],
                (None, Some(list)) => list,
                (None, None) => Vec::new(),
            };
        }
        if cli.framework.is_none()
            && let Some(f) = &file.framework
        {
            cli.framework =
                Some(units::parse_address(f).map_err(|e| {
                    SdkError::Config(format!("{}: framework: {e}", path.display()))
                })?);
        }
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
    let operator_urls: Vec<&str> =
        cli.operator_url.iter().map(|u| u.trim()).filter(|u| !u.is_empty()).collect();
    let operator_url = if operator_urls.is_empty() {
        "http://127.0.0.1:9656".to_owned()
    } else {
        operator_urls.join(",")
    };
    if let Command::Status = cli.command {
        return Ok(cli::status::status(&operator_url, &rpc_url, &cli.watchers).await);
    }
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
    let me = key.address();
    if let Command::Address = cli.command {
        return Ok(Report::new(json!({"address": me.to_checksum(None)}), me.to_string()));
    }
    // Amounts are refused before anything is signed, sent, or even connected.
    precheck(&cli.command)?;
    let framework = match cli.framework {
        Some(f) => f,
        None => {
            let text = std::fs::read_to_string(&cli.contracts).map_err(|e| {
                SdkError::Config(format!("{} ({e}); give --framework", cli.contracts.display()))
            })?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| SdkError::Config(e.to_string()))?;
            let f = v["framework"]
                .as_str()
                .ok_or_else(|| SdkError::Config("no framework in contracts file".into()))?;
            units::parse_address(f).map_err(|e| {
                SdkError::Config(format!("{}: framework: {e}", cli.contracts.display()))
            })?
        }
    };
    let store_path = cli.store.clone().unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
        home.join(".plasma").join(format!("{me}.redb"))
    });
    let config =
        WalletConfig { l1_rpc_url: rpc_url, operator_url, framework, chain_id: None, store_path };
    // Answers the store alone can give, when L1 is down.
    let store_only = matches!(
        cli.command,
        Command::Balance { sync: false, .. }
            | Command::Utxos { sync: false }
            | Command::Exits
            | Command::History
    );
    let connected =
        match tokio::time::timeout(Duration::from_secs(30), Wallet::connect(key.clone(), &config))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(SdkError::L1("timed out after 30s".into())),
        };
    let wallet = match connected {
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
        Err(e) if store_only && l1_down(&e) => {
            return offline(&cli.command, &config.store_path, me, &e);
        }
        other => other?,
    };
    let mut watchers = cli.watchers.clone();
    if let Command::Send { watcher_url: Some(url), .. } = &cli.command {
        watchers.push(url.clone());
    }
    let wallet = wallet.with_watchers(watchers).with_towers(cli.towers.clone());
    let eth = Address::ZERO;
    let mut tokens = Tokens::new();
    let now = unix_now;
    // Each arm answers a `Report`: `Report::new(json, text)`, or `json!(…).into()` for an
    // answer whose text is its indented JSON.
    Ok(match cli.command {
        Command::Deposit { amount: a, token, timeout } => {
            let unit = unit_of(&wallet, &mut tokens, token).await?;
            let value = units::parse_amount(&a, unit)?;
            let t = token.unwrap_or(eth);
            let pos = match token {
                None => wallet.deposit_eth(value).await?,
                Some(t) => wallet.deposit_erc20(t, value).await?,
            };
            let l1_tx = deposit_tx(&wallet, pos).await;
            let l1_text = l1_tx.map_or_else(|| "(L1 tx unknown)".to_owned(), |h| h.to_string());
            record(
                &wallet,
                &format!("deposit:{pos}"),
                &HistoryEntry {
                    at: Some(now()),
                    kind: HistoryKind::Deposit,
                    token: t,
                    amount: value,
                    positions: vec![pos],
                    l1_tx,
                    ..HistoryEntry::default()
                },
            );
            eprintln!(
                "deposit of {} on L1 in {l1_text} (output {pos}): waiting to be credited by the \
                 operator …",
                tokens.fmt(t, value)
            );
            let started = std::time::Instant::now();
            let limit = Duration::from_secs(timeout);
            loop {
                let left = limit.saturating_sub(started.elapsed());
                let reason =
                    match wallet.wait_for_output(pos, left.min(Duration::from_secs(10))).await {
                        Ok(()) => break,
                        Err(SdkError::UnknownOutput(_)) => "not credited yet".to_owned(),
                        Err(e) => {
                            // Not the timeout: do not spin on an error that answers at once.
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            cli::status::redact_urls(&e.to_string())
                        }
                    };
                if started.elapsed() >= limit {
                    return Err(SdkError::DepositNotCredited {
                        l1_tx: l1_text,
                        utxo_pos: pos.to_string(),
                        waited_secs: started.elapsed().as_secs(),
                        reason,
                    });
                }
                eprintln!(
                    "on L1, waiting to be credited ({} so far, up to {}s; {reason}) …",
                    duration(started.elapsed().as_secs()),
                    timeout
                );
            }
            Report::new(
                json!({"utxoPos": pos.to_string(), "amount": value.to_string(), "token": t, "l1Tx": l1_tx}),
                format!(
                    "deposited {} to {me}\n  L1 tx   {l1_text}\n  output  {pos} (credited and verified)",
                    tokens.fmt(t, value)
                ),
            )
        }
        Command::Sync => {
            let r = sync_with_progress(&wallet).await?;
            warn_invalid(r.invalid);
            warn_unlisted(&r.unlisted);
            warn_tower_only(&r.tower_only);
            if r.freed > 0 {
                eprintln!(
                    "sync: {} output(s) spendable again: the operator does not know the payment \
                     that was sending them (its answer never came); a standard exit of them \
                     still needs --force while that payment is kept",
                    r.freed
                );
            }
            let text = format!(
                "synced: {} new output(s) verified, {} known, {} pending commitment, {} gone; \
                 balance {}",
                r.added,
                r.known,
                r.pending,
                r.gone,
                tokens.fmt(eth, wallet.balance(eth)?)
            );
            Report::new(
                json!({"added": r.added, "known": r.known, "pending": r.pending, "gone": r.gone, "invalid": r.invalid, "freed": r.freed, "unlisted": strings(&r.unlisted), "towerOnly": strings(&r.tower_only), "lastSync": wallet.last_sync()?}),
                text,
            )
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
            let balance = wallet.balance(eth)?;
            Report::new(
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
                    "balance": balance.to_string(),
                    "lastSync": wallet.last_sync()?,
                }),
                format!(
                    "restored: {} output(s) listed, {} new, {} known; balance {}",
                    r.listed,
                    r.added,
                    r.known,
                    tokens.fmt(eth, balance)
                ),
            )
        }
        Command::Balance { token, sync } => {
            // From the store at once: the stored, re-checked proofs are the balance, as of the
            // last sync (stated); --sync waits for a fresh one.
            if sync {
                sync_with_progress(&wallet).await?;
            }
            let t = token.unwrap_or(eth);
            tokens.learn_all(&wallet, [t]).await;
            let outputs = wallet.outputs()?;
            cli::views::balance(&tokens, me, t, &outputs, wallet.last_sync()?.as_ref(), sync, None)
        }
        Command::Utxos { sync } => {
            if sync {
                sync_with_progress(&wallet).await?;
            }
            let outputs = wallet.outputs()?;
            tokens.learn_all(&wallet, outputs.iter().map(|o| o.token)).await;
            cli::views::utxos(&tokens, &outputs, wallet.last_sync()?.as_ref(), sync, None)
        }
        Command::History => {
            let entries = wallet.store().history(me)?;
            tokens.learn_all(&wallet, entries.iter().map(|e| e.token)).await;
            cli::views::history(&tokens, &entries)
        }
        Command::Send { to, amount: a, token, fee, watcher_url } => {
            let t = token.unwrap_or(eth);
            let unit = unit_of(&wallet, &mut tokens, token).await?;
            let value = units::parse_amount(&a, unit)?;
            let fee = units::parse_value(&fee, unit)
                .map_err(|e| SdkError::Config(format!("--fee: {e}")))?;
            if value.checked_add(fee).is_none() {
                return Err(units::AmountError::Overflow(format!("{a} + fee")).into());
            }
            wallet.sync().await?;
            let hash = wallet.send(to, t, value, fee).await?;
            if let Some(url) = watcher_url {
                wallet.hand_in_flight_to_watchtower(&url, &wallet.sent_transaction(hash)?).await?;
                eprintln!("the watcher at {url} holds the payment until it is seen included");
            }
            let mut entry = HistoryEntry {
                at: Some(now()),
                kind: HistoryKind::Sent,
                token: t,
                amount: value,
                fee: Some(fee),
                counterparty: Some(to),
                tx_hash: Some(hash),
                ..HistoryEntry::default()
            };
            record(&wallet, &format!("sent:{hash}"), &entry);
            eprintln!("sent {hash}; waiting for its block to be committed …");
            let blknum = wallet.wait_for_commit(hash, Duration::from_secs(120)).await?;
            entry.blknum = Some(blknum);
            record(&wallet, &format!("sent:{hash}"), &entry);
            // The change is this wallet's once committed: store it, so `balance` counts it.
            if let Err(e) = wallet.sync().await {
                eprintln!("warning: the change is not stored yet ({e}); `plasma sync` later");
            }
            Report::new(
                json!({"txHash": hash, "blknum": blknum, "amount": value.to_string(), "fee": fee.to_string(), "token": t, "to": to}),
                format!(
                    "sent {} to {to} (fee {})\n  payment {hash}\n  committed in child block {blknum}",
                    tokens.fmt(t, value),
                    tokens.fmt(t, fee)
                ),
            )
        }
        Command::Exit { positions, all, force, batch, standard, batch_size } => {
            let every = positions.is_empty() || all;
            if batch || (every && !standard && !force) {
                wallet.refresh().await?;
                let exitable = wallet.exitable()?.len();
                if batch || (exitable > BATCH_BY_DEFAULT_ABOVE && wallet.has_batch_exit_game()) {
                    return batch_exit(
                        &wallet,
                        &mut tokens,
                        (!every).then_some(positions.as_slice()),
                        batch_size,
                    )
                    .await;
                }
            }
            let positions = if every {
                // Only what a standard exit can still pay, as re-checked now.
                wallet.refresh().await?;
                if !force {
                    for (o, why) in wallet.signed_away()? {
                        eprintln!("exit: output {} left out: {why}", o.utxo_pos);
                    }
                }
                let exitable = if force {
                    let mut all = wallet.exitable()?;
                    all.extend(wallet.signed_away()?.into_iter().map(|(o, _)| o));
                    all
                } else {
                    wallet.exitable()?
                };
                exitable.iter().map(|o| o.utxo_pos).collect()
            } else {
                positions
            };
            if positions.is_empty() {
                return Err(SdkError::UnknownOutput("nothing to exit".into()));
            }
            let contracts = plasma_contracts::Contracts::bind(framework, wallet.provider().clone())
                .await
                .map_err(|e| SdkError::L1(e.to_string()))?;
            let bond = contracts
                .standard
                .bondSize()
                .call()
                .await
                .map_err(|e| SdkError::L1(e.to_string()))?;
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
            let outputs: std::collections::HashMap<u128, plasma_sdk::StoredOutput> =
                wallet.outputs()?.into_iter().map(|o| (o.utxo_pos, o)).collect();
            tokens.learn_all(&wallet, outputs.values().map(|o| o.token)).await;
            for c in &report.chunks {
                let mine: Vec<&plasma_sdk::StoredOutput> =
                    c.started.iter().filter_map(|p| outputs.get(p)).collect();
                let Some(first) = mine.first() else { continue };
                record(
                    &wallet,
                    &format!("exit:{}", c.l1_tx),
                    &HistoryEntry {
                        at: Some(now()),
                        kind: HistoryKind::Exit,
                        token: first.token,
                        amount: mine
                            .iter()
                            .filter(|o| o.token == first.token)
                            .map(|o| o.amount)
                            .sum(),
                        bond: Some(bond * U256::from(c.started.len())),
                        positions: c.started.clone(),
                        l1_tx: Some(c.l1_tx),
                        ..HistoryEntry::default()
                    },
                );
            }
            let timings = schedule(&wallet).await.unwrap_or_default();
            let clock = now();
            let mut text = format!(
                "started {} standard exit(s); bond locked: {} ({} each, returned when an exit \
                 settles unchallenged)\n",
                started.len(),
                tokens.fmt(eth, bond * U256::from(started.len())),
                tokens.fmt(eth, bond)
            );
            for c in &report.chunks {
                text.push_str(&format!("  L1 tx {}\n", c.l1_tx));
                for p in &c.started {
                    let amount =
                        outputs.get(p).map_or_else(String::new, |o| tokens.fmt(o.token, o.amount));
                    let timing = timings
                        .iter()
                        .find(|t| t.kind == "standard" && t.utxo_pos == p.to_string())
                        .map_or_else(
                            || "processable: see `plasma exits`".to_owned(),
                            |t| timing_text(t, clock),
                        );
                    text.push_str(&format!("    output {p}  {amount}  {timing}\n"));
                }
                for (p, why) in &c.skipped {
                    text.push_str(&format!("    output {p} skipped by the contract: {why}\n"));
                }
            }
            if let Some(e) = &report.error {
                text.push_str(&format!(
                    "NOT started: {} ({e})\n",
                    strings(&report.not_started).join(", ")
                ));
            }
            Report::new(
                json!({
                    "l1Tx": report.chunks.last().map(|c| c.l1_tx),
                    "exits": strings(&started),
                    "bond": (bond * U256::from(started.len())).to_string(),
                    "transactions": report.chunks.iter().map(|c| json!({
                        "l1Tx": c.l1_tx,
                        "gasUsed": c.gas_used,
                        "started": strings(&c.started),
                        "skipped": c.skipped.iter().map(|(p, why)| json!({"utxoPos": p.to_string(), "reason": why})).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "schedule": timings.iter().filter(|t| t.kind == "standard" && started.iter().any(|p| p.to_string() == t.utxo_pos)).collect::<Vec<_>>(),
                    "notStarted": strings(&report.not_started),
                    "error": report.error,
                }),
                text,
            )
        }
        Command::Process { token, max } => {
            let t = token.unwrap_or(eth);
            let l1_tx = wallet.process_exits(t, max).await?;
            tokens.learn_all(&wallet, [t]).await;
            record(
                &wallet,
                &format!("process:{l1_tx}"),
                &HistoryEntry {
                    at: Some(now()),
                    kind: HistoryKind::Process,
                    token: t,
                    l1_tx: Some(l1_tx),
                    ..HistoryEntry::default()
                },
            );
            let (processed, shortfalls) = process_receipt(&wallet, l1_tx).await;
            let mut text = format!(
                "processed {} exit(s) of {} in L1 tx {l1_tx}; credits are taken out with \
                 `plasma withdraw`",
                processed.map_or_else(|| format!("up to {max}"), |n| n.to_string()),
                tokens.name(t)
            );
            for (account, token, short) in &shortfalls {
                text.push_str(&format!(
                    "\nCreditShortfall: {account} was credited {} less than its exit was due: \
                     the vault holds less of this token than its exits claim (exits of an invalid \
                     block were paid first); the rest is a debt paid when funds return \
                     (settleDebts){}",
                    tokens.fmt(*token, *short),
                    if *account == me { " — THIS WALLET" } else { "" }
                ));
            }
            Report::new(
                json!({
                    "l1Tx": l1_tx,
                    "processed": processed,
                    "shortfalls": shortfalls.iter().map(|(a, t, v)| json!({"account": a, "token": t, "shortfall": v.to_string()})).collect::<Vec<_>>(),
                }),
                text,
            )
        }
        Command::Payout => payout(&wallet).await?,
        Command::Withdraw { token } => {
            let t = token.unwrap_or(eth);
            let claims = wallet.outputs()?.iter().any(|o| {
                o.status == plasma_sdk::OutputStatus::BatchClaimed
                    && o.batch_claim.as_ref().is_some_and(|c| c.token == t)
            });
            let paid = if claims { Some(payout(&wallet).await?) } else { None };
            tokens.learn_all(&wallet, [t]).await;
            let amount = wallet.withdrawable(t).await?;
            // Sent here rather than through `Wallet::withdraw` to show its L1 transaction.
            let contracts = plasma_contracts::Contracts::bind(framework, wallet.provider().clone())
                .await
                .map_err(|e| SdkError::L1(e.to_string()))?;
            let receipt = plasma_contracts::sender::mined(
                contracts.framework.withdraw(t).send().await,
                "withdraw",
            )
            .await
            .map_err(|e| SdkError::L1(e.to_string()))?;
            let l1_tx = receipt.transaction_hash;
            record(
                &wallet,
                &format!("withdraw:{l1_tx}"),
                &HistoryEntry {
                    at: Some(now()),
                    kind: HistoryKind::Withdraw,
                    token: t,
                    amount,
                    l1_tx: Some(l1_tx),
                    ..HistoryEntry::default()
                },
            );
            Report::new(
                json!({"withdrawn": amount.to_string(), "l1Tx": l1_tx, "payout": paid.as_ref().map(|p| &p.json)}),
                format!("withdrew {} to {me} in L1 tx {l1_tx}", tokens.fmt(t, amount)),
            )
        }
        Command::Exits => exits(&wallet, &mut tokens).await?,
        Command::InFlightExit { package: Some(file), force, .. } => {
            cli::sdk_extra::in_flight_exit_from(&wallet, &mut tokens, &file, force).await?
        }
        Command::InFlightExit { tx_hash: None, .. } => {
            return Err(SdkError::Config("give the payment's hash or --package FILE".into()));
        }
        Command::PaymentPackage { tx_hash, out } => {
            cli::sdk_extra::payment_package(&wallet, tx_hash, out.as_deref())?
        }
        Command::Consolidate { token, fee, timeout } => {
            cli::sdk_extra::consolidate(&wallet, &mut tokens, token, &fee, timeout).await?
        }
        Command::InFlightExit { tx_hash: Some(tx_hash), force, package: None } => {
            let signed = wallet.sent_transaction(tx_hash)?;
            let contracts = plasma_contracts::Contracts::bind(framework, wallet.provider().clone())
                .await
                .map_err(|e| SdkError::L1(e.to_string()))?;
            let bond = contracts
                .in_flight
                .inFlightExitBond()
                .call()
                .await
                .map_err(|e| SdkError::L1(e.to_string()))?;
            let l1_tx = if force {
                wallet.start_in_flight_exit_unchecked(&signed).await?
            } else {
                wallet.start_in_flight_exit(&signed).await?
            };
            record(
                &wallet,
                &format!("inFlightExit:{tx_hash}"),
                &HistoryEntry {
                    at: Some(now()),
                    kind: HistoryKind::InFlightExit,
                    bond: Some(bond),
                    tx_hash: Some(tx_hash),
                    l1_tx: Some(l1_tx),
                    ..HistoryEntry::default()
                },
            );
            let timings = schedule(&wallet).await.unwrap_or_default();
            let mine: Vec<_> = timings
                .iter()
                .filter(|t| t.kind == "inFlight" && t.exit_id == tx_hash.to_string())
                .collect();
            let clock = now();
            let mut text = format!(
                "started the in-flight exit of payment {tx_hash}\n  L1 tx  {l1_tx}\n  bond locked: \
                 {} (returned if the exit is not challenged successfully)\n  piggyback the \
                 outputs and inputs you want paid: `plasma piggyback {tx_hash} --output N`\n",
                tokens.fmt(eth, bond)
            );
            for t in &mine {
                text.push_str(&format!("  {}: {}\n", tokens.name(t.token), timing_text(t, clock)));
            }
            Report::new(
                json!({"l1Tx": l1_tx, "exitId": tx_hash, "bond": bond.to_string(), "schedule": mine}),
                text,
            )
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
            let l1_tx = wallet.piggyback(tx_hash, is_output, index).await?;
            record(
                &wallet,
                &format!("piggyback:{l1_tx}"),
                &HistoryEntry {
                    at: Some(now()),
                    kind: HistoryKind::Piggyback,
                    tx_hash: Some(tx_hash),
                    l1_tx: Some(l1_tx),
                    ..HistoryEntry::default()
                },
            );
            Report::new(
                json!({"l1Tx": l1_tx}),
                format!(
                    "piggybacked {} {index} of {tx_hash} in L1 tx {l1_tx}",
                    if is_output { "output" } else { "input" }
                ),
            )
        }
        Command::Address | Command::Status => unreachable!("answered before connecting"),
        Command::AuthorizeWatchtower { exitor, days, watcher_url } => {
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                + days * 86_400;
            let (auth, sig) = wallet.authorize_watchtower(exitor, deadline).await?;
            let guard = json!({"owner": wallet.address(), "deadline": auth.deadline, "nonce": auth.nonce, "signature": sig});
            if let Some(url) = watcher_url {
                let http = plasma_contracts::l1::client_builder()
                    .build()
                    .map_err(|e| SdkError::Config(format!("HTTP client: {e}")))?;
                let resp = http
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
            json!({"exitor": auth.exitor, "guard": guard, "digest": B256::from(wallet.domain().exit_authorization_digest(&auth))}).into()
        }
    })
}

/// The answers the store gives without L1 (`l1` says why L1 was not asked).
fn offline(
    command: &Command,
    path: &std::path::Path,
    me: Address,
    l1: &SdkError,
) -> Result<Report, SdkError> {
    let store = cli::views::open_offline(path, l1)?;
    let why = cli::status::redact_urls(&l1.to_string());
    let mut tokens = Tokens::new();
    let outputs = store.all()?;
    for o in &outputs {
        tokens.learn_offline(&store, o.token);
    }
    Ok(match command {
        Command::Balance { token, .. } => {
            let t = token.unwrap_or(Address::ZERO);
            tokens.learn_offline(&store, t);
            cli::views::balance(
                &tokens,
                me,
                t,
                &outputs,
                store.last_sync()?.as_ref(),
                false,
                Some(&why),
            )
        }
        Command::Utxos { .. } => {
            cli::views::utxos(&tokens, &outputs, store.last_sync()?.as_ref(), false, Some(&why))
        }
        Command::History => {
            let entries = store.history(me)?;
            for e in &entries {
                tokens.learn_offline(&store, e.token);
            }
            cli::views::history(&tokens, &entries)
        }
        Command::Exits => cli::views::exits_offline(&tokens, &store, &why)?,
        _ => return Err(SdkError::L1(why)),
    })
}

/// `plasma exits`: the store's exiting outputs and claims with their state on L1, and when each
/// exit can be processed (`Wallet::exit_schedule`, which also finds exits a watchtower started).
async fn exits(wallet: &Wallet, tokens: &mut Tokens) -> Result<Report, SdkError> {
    let mut list = Vec::new();
    let mut processed: std::collections::HashMap<u64, bool> = Default::default();
    let outputs = wallet.outputs()?;
    for o in &outputs {
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
    for o in outputs.iter().filter(|o| o.exiting) {
        let state = match wallet.exit_status(o.utxo_pos).await? {
            1 => "active",
            2 => "challenged",
            3 => "settled",
            _ => "none",
        };
        list.push(json!({"kind": "standard", "utxoPos": o.utxo_pos.to_string(), "token": o.token, "amount": o.amount.to_string(), "state": state}));
    }
    let timings = schedule(wallet).await;
    let all = timings.clone().unwrap_or_default();
    for e in &mut list {
        let kind = if e["kind"] == "batch" { "batchClaim" } else { "standard" };
        if let Some(t) = all.iter().find(|t| t.kind == kind && e["utxoPos"] == t.utxo_pos) {
            if e["exitableAt"].is_null() {
                e["exitableAt"] = json!(t.exitable_at);
            }
            e["ready"] = json!(t.ready);
            e["blockedBy"] = json!(t.blocked_by);
        }
    }
    let now = unix_now();
    let mut text = String::new();
    let mut token_set: Vec<Address> = all.iter().map(|t| t.token).collect();
    token_set.extend(outputs.iter().map(|o| o.token));
    tokens.learn_all(wallet, token_set).await;
    for t in &all {
        let amount = t.amount.parse().map_or_else(|_| t.amount.clone(), |a| tokens.fmt(t.token, a));
        let what = match t.kind.as_str() {
            "standard" => format!("standard exit of output {}", t.utxo_pos),
            "inFlight" => format!("in-flight exit {}", t.exit_id),
            "batchClaim" => format!("batch {} claim of output {}", t.exit_id, t.utxo_pos),
            other => format!("{other} exit {}", t.exit_id),
        };
        text.push_str(&format!("{what}: {amount}, {}; {}\n", t.state, timing_text(t, now)));
    }
    if timings.is_none() {
        for e in &list {
            text.push_str(&format!(
                "{} exit of output {}: {}, {}\n",
                e["kind"].as_str().unwrap_or("?"),
                e["utxoPos"].as_str().unwrap_or("?"),
                e["amount"].as_str().unwrap_or("?"),
                e["state"].as_str().unwrap_or("?")
            ));
        }
        text.push_str(
            "(when each can be processed: unavailable, the L1 schedule could not be read)\n",
        );
    }
    if text.is_empty() {
        text.push_str("no exits\n");
    }
    Ok(Report::new(json!({"exits": list, "schedule": timings, "now": now}), text))
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
    tokens: &mut Tokens,
    positions: Option<&[u128]>,
    batch_size: usize,
) -> Result<Report, SdkError> {
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
    let now = unix_now();
    let mut text = format!(
        "claimed {} output(s) in {} batch exit(s); bonds locked: {} (returned when the claims \
         settle unchallenged)\n",
        report.claimed().len(),
        report.batches.iter().filter(|b| b.batch_id != 0).count(),
        tokens.fmt(Address::ZERO, report.bonds())
    );
    for b in report.batches.iter().filter(|b| b.batch_id != 0) {
        tokens.learn_all(wallet, [b.token]).await;
        text.push_str(&format!(
            "  batch {}: {} claim(s) of {} in L1 tx {}; processable from {}, then `plasma \
             process` and `plasma payout`\n",
            b.batch_id,
            b.claims.len(),
            tokens.name(b.token),
            b.l1_tx,
            when(b.exitable_at, now)
        ));
        record(
            wallet,
            &format!("batchExit:{}", b.l1_tx),
            &HistoryEntry {
                at: Some(now),
                kind: HistoryKind::BatchExit,
                token: b.token,
                bond: Some(b.bond),
                positions: b.claims.clone(),
                l1_tx: Some(b.l1_tx),
                ..HistoryEntry::default()
            },
        );
    }
    if let Some(e) = &report.error {
        text.push_str(&format!("NOT started: {} ({e})\n", strings(&report.not_started).join(", ")));
    }
    let json = json!({
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
    });
    Ok(Report::new(json, text))
}

/// `plasma payout`: pays the wallet's claims in processed batches.
async fn payout(wallet: &Wallet) -> Result<Report, SdkError> {
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
    let mut text = String::new();
    for c in &r.chunks {
        text.push_str(&format!(
            "paid {} claim(s) ({} void) in L1 tx {}\n",
            c.paid.len(),
            c.void.len(),
            c.l1_tx
        ));
        let amount = c.paid.iter().map(|(_, _, v)| *v).sum::<U256>();
        record(
            wallet,
            &format!("payout:{}", c.l1_tx),
            &HistoryEntry {
                at: Some(unix_now()),
                kind: HistoryKind::Payout,
                amount,
                positions: c.paid.iter().map(|(p, _, _)| *p).collect(),
                l1_tx: Some(c.l1_tx),
                ..HistoryEntry::default()
            },
        );
    }
    text.push_str(&format!(
        "credited: {} (base units; take it out with `plasma withdraw`)",
        r.credited()
    ));
    let json = json!({
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
    });
    Ok(Report::new(json, text))
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Scripts asking for JSON get a refused argument (a bad checksum, say) as JSON too.
        Err(e)
            if std::env::args().any(|a| a == "--json")
                && !matches!(
                    e.kind(),
                    clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
                ) =>
        {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
            println!("{}", json!({"error": first}));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let format = output::choose(cli.json, cli.human);
    // Two commands on one wallet: the second waits for the store, and says so.
    plasma_sdk::on_lock_wait(|path| {
        eprintln!(
            "waiting for another plasma command to finish with the store {} …",
            path.display()
        );
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("plasma: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(report) => {
            output::print(&report, format);
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Errors of HTTP clients name their URL; a hosted RPC URL carries its API key.
            let e = cli::status::redact_urls(&e.to_string());
            if format == Format::Human {
                eprintln!("plasma: {e}");
            } else {
                println!("{}", json!({"error": e}));
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

    #[test]
    fn operator_urls_come_comma_separated_repeated_or_from_the_file() {
        if std::env::var_os("PLASMA_OPERATOR_URL").is_none() {
            assert!(Cli::try_parse_from(["plasma", "balance"]).unwrap().operator_url.is_empty());
        }
        let cli = Cli::try_parse_from([
            "plasma",
            "--operator-url",
            "http://a:1,http://b:2",
            "--operator.url",
            "http://c:3",
            "balance",
        ])
        .unwrap();
        assert_eq!(cli.operator_url, ["http://a:1", "http://b:2", "http://c:3"]);
        let file: FileConfig =
            toml::from_str("operator_urls = [\"http://a:1\", \"http://b:2\"]").unwrap();
        assert_eq!(file.operator_urls.unwrap(), ["http://a:1", "http://b:2"]);
        let file: FileConfig = toml::from_str("operator_url = \"http://a:1\"").unwrap();
        assert_eq!(file.operator_url.unwrap(), "http://a:1");
    }
}
