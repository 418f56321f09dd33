//! `plasma-deploy`: deploys the plasma contracts to a JSON-RPC node and prints (or writes) the
//! addresses as JSON. Used by `scripts/devnet`; works against any node, a public testnet included
//! (docs/deploy.md): the key from a keystore, every transaction's gas estimated and the cost
//! printed before anything is sent (`--dry-run` stops there), each transaction waited for to
//! `--confirmations`.

use alloy::{
    network::EthereumWallet,
    primitives::{Address, U256, utils::format_units},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use clap::Parser;
use plasma_contracts::{
    DeployConfig, DeployOptions, DeployPlan, DeployReport, Fees, Progress, deploy_with,
    l1::{self, Endpoints},
    plan,
};
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

/// Deploy the plasma contracts (framework and exit games) and bind them.
#[derive(Debug, Parser)]
#[command(name = "plasma-deploy", version)]
struct Cli {
    /// The L1 JSON-RPC endpoints, comma-separated (http or https; the next is tried when one
    /// fails). Never printed with their path or query, where hosted RPCs keep API keys.
    #[arg(long = "l1.rpc-url", env = "PLASMA_L1_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc_url: String,
    /// A Web3 Secret Storage keystore holding the deployer's key (`cast wallet import`, geth,
    /// MetaMask export). Its password: --password-file, else PLASMA_KEYSTORE_PASSWORD.
    #[arg(long = "keystore", env = "PLASMA_DEPLOYER_KEYSTORE", conflicts_with = "private_key")]
    keystore: Option<PathBuf>,
    /// A file whose first line is the keystore's password.
    #[arg(long = "password-file", requires = "keystore")]
    password_file: Option<PathBuf>,
    /// The deployer's raw private key (hex): devnets. On a public network use --keystore.
    #[arg(long = "deployer.private-key", env = "PLASMA_DEPLOYER_KEY", hide_env_values = true)]
    private_key: Option<String>,
    /// The operator (block submitter); defaults to the deployer.
    #[arg(long = "operator")]
    operator: Option<Address>,
    /// The challenge period in seconds (a week in production).
    #[arg(long = "exit.min-period", default_value_t = 604_800)]
    min_exit_period: u64,
    /// The standard exit bond in wei (default: sized for a 20 gwei reference gas price).
    #[arg(long = "exit.standard-bond")]
    standard_exit_bond: Option<U256>,
    /// Blocks each transaction must be deep before the next is sent (1 = mined; 2–3 on a public
    /// testnet, more on mainnet).
    #[arg(long = "confirmations", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    confirmations: u64,
    /// Give up on a transaction not mined and confirmed after this many seconds.
    #[arg(long = "tx-timeout", default_value_t = 600)]
    tx_timeout: u64,
    /// `maxFeePerGas` in gwei for every transaction (default: the node's estimate).
    #[arg(long = "max-fee-gwei", requires = "priority_fee_gwei")]
    max_fee_gwei: Option<f64>,
    /// `maxPriorityFeePerGas` (the tip) in gwei, with --max-fee-gwei.
    #[arg(long = "priority-fee-gwei", requires = "max_fee_gwei")]
    priority_fee_gwei: Option<f64>,
    /// Also deploy `TestToken`, an ERC-20 anyone can mint (devnets and testnets only), and
    /// write its address as `testToken`.
    #[arg(long = "test-token")]
    test_token: bool,
    /// Estimate gas and cost, print the plan and the addresses the contracts would get, and send
    /// nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Write the addresses to this file as JSON (default: stdout). An existing file is refused
    /// (it may describe a live deployment) unless --overwrite.
    #[arg(long = "out")]
    out: Option<PathBuf>,
    /// Replace an existing --out file.
    #[arg(long = "overwrite", requires = "out")]
    overwrite: bool,
}

/// Why `plasma-deploy` stopped.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("keystore {path}: {reason}")]
    Keystore { path: PathBuf, reason: String },
    /// `reason` names the endpoint (redacted) and why it could not be reached.
    #[error("L1: {reason}")]
    Unreachable { reason: String },
    #[error(
        "the deployer {deployer} holds {have} ETH; the deployment may cost up to {need} ETH at the \
         current fees: send it at least {missing} ETH more (or lower the fees with --max-fee-gwei)"
    )]
    Underfunded { deployer: Address, have: String, need: String, missing: String },
    #[error(transparent)]
    Deploy(#[from] plasma_contracts::DeployError),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // An RPC error's text can carry the endpoint's URL, API key included: redacted
            // (`Unreachable` is already, by `l1::explain`).
            let text = match e {
                CliError::Unreachable { .. } => e.to_string(),
                _ => l1::redact_text(&e.to_string()),
            };
            eprintln!("plasma-deploy: {text}");
            ExitCode::FAILURE
        }
    }
}

/// The deployer's key: the keystore (password from the file or the environment) or the raw key.
fn signer(cli: &Cli) -> Result<PrivateKeySigner, CliError> {
    match (&cli.keystore, &cli.private_key) {
        (Some(path), _) => {
            let password = match &cli.password_file {
                Some(file) => std::fs::read_to_string(file)
                    .map_err(|e| CliError::Keystore {
                        path: path.clone(),
                        reason: format!("password file {}: {e}", file.display()),
                    })?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                None => {
                    std::env::var("PLASMA_KEYSTORE_PASSWORD").map_err(|_| CliError::Keystore {
                        path: path.clone(),
                        reason: "no password: give --password-file or set PLASMA_KEYSTORE_PASSWORD"
                            .into(),
                    })?
                }
            };
            PrivateKeySigner::decrypt_keystore(path, password).map_err(|e| CliError::Keystore {
                path: path.clone(),
                reason: format!("{e} (a wrong password reads as a MAC mismatch)"),
            })
        }
        (None, Some(key)) => key
            .trim()
            .parse()
            .map_err(|e| CliError::Usage(format!("bad --deployer.private-key: {e}"))),
        (None, None) => Err(CliError::Usage(
            "no deployer key: give --keystore (with --password-file or PLASMA_KEYSTORE_PASSWORD) \
             or, on a devnet, --deployer.private-key"
                .into(),
        )),
    }
}

fn gwei_to_wei(gwei: f64, flag: &str) -> Result<u128, CliError> {
    if !(gwei.is_finite() && (0.0..1e9).contains(&gwei)) {
        return Err(CliError::Usage(format!("{flag} {gwei}: not a fee in gwei")));
    }
    // Rounded to the wei: fee fields are integers.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((gwei * 1e9).round() as u128)
}

/// Ether with at most six decimals (rounded up: a cost is never understated).
fn eth(wei: U256) -> String {
    let micro = U256::from(1_000_000_000_000u64);
    let rounded = wei.div_ceil(micro) * micro;
    format_units(rounded, "ether").map_or_else(|_| format!("{wei} wei"), |s| trim_zeros(&s))
}

fn gwei(wei: u128) -> String {
    format_units(U256::from(wei), "gwei").map_or_else(|_| format!("{wei} wei"), |s| trim_zeros(&s))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.into()
    }
}

/// The plan, on stderr: one line a transaction, the fees and the cost.
fn print_plan(p: &DeployPlan, url: &str) {
    eprintln!(
        "plasma-deploy: chain {} via {url}; deployer {} (nonce {}, balance {} ETH)",
        p.chain_id,
        p.deployer,
        p.nonce,
        eth(p.balance)
    );
    for t in &p.txs {
        let at = t.address.map(|a| format!("  -> {a}")).unwrap_or_default();
        let how = if t.estimated { "" } else { " (bound: the node refused the estimate)" };
        eprintln!("  {:<18} {:>10} gas{how}{at}", t.step.name(), t.gas);
    }
    eprintln!("  {:<18} {:>10} gas", "total", p.total_gas());
    let base = p.base_fee.map(|b| format!("base fee {} gwei, ", gwei(b))).unwrap_or_default();
    eprintln!(
        "  fees (EIP-1559): {base}tip {} gwei, max {} gwei per gas",
        gwei(p.fees.max_priority_fee_per_gas),
        gwei(p.fees.max_fee_per_gas)
    );
    eprintln!(
        "  cost: about {} ETH at the current base fee, at most {} ETH",
        eth(p.likely_cost()),
        eth(p.max_cost())
    );
}

/// What `contracts.json` holds: the addresses as before, plus the chain, the deployment block and
/// every transaction's hash.
fn contracts_json(
    report: &DeployReport,
    config: &DeployConfig,
    chain_id: u64,
    deployer: Address,
    confirmations: u64,
) -> serde_json::Value {
    let d = report.deployment;
    let txs: serde_json::Map<String, serde_json::Value> =
        report.txs.iter().map(|t| (t.step.name().to_owned(), t.hash.to_string().into())).collect();
    let mut json = serde_json::json!({
        "chainId": chain_id,
        "framework": d.framework,
        "standardExitGame": d.standard_exit_game,
        "inFlightExitGame": d.in_flight_exit_game,
        "batchExitGame": d.batch_exit_game,
        "operator": config.operator,
        "deployer": deployer,
        "deployBlock": report.deploy_block(),
        "confirmations": confirmations,
        "minExitPeriod": config.min_exit_period,
        "standardExitBond": config.standard_exit_bond.to_string(),
        "inFlightExitBond": config.in_flight_exit_bond.to_string(),
        "piggybackBond": config.piggyback_bond.to_string(),
        "batchExitBond": config.batch_exit_bond.to_string(),
        "claimBond": config.claim_bond.to_string(),
        "demandBond": config.demand_bond.to_string(),
        "transactions": txs,
    });
    if let Some(token) = report.test_token {
        json["testToken"] = serde_json::json!(token);
    }
    json
}

/// Writes `text` to `path` through a temporary file and a rename, so a crash never leaves half a
/// contracts.json.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

async fn run(cli: Cli) -> Result<(), CliError> {
    if let Some(out) = &cli.out
        && out.exists()
        && !cli.overwrite
        && !cli.dry_run
    {
        return Err(CliError::Usage(format!(
            "{} exists (it may describe a live deployment); move it away or give --overwrite",
            out.display()
        )));
    }
    let fees = match (cli.max_fee_gwei, cli.priority_fee_gwei) {
        (Some(max), Some(tip)) => {
            let fees = Fees {
                max_fee_per_gas: gwei_to_wei(max, "--max-fee-gwei")?,
                max_priority_fee_per_gas: gwei_to_wei(tip, "--priority-fee-gwei")?,
            };
            if fees.max_priority_fee_per_gas > fees.max_fee_per_gas {
                return Err(CliError::Usage("--priority-fee-gwei above --max-fee-gwei".into()));
            }
            Some(fees)
        }
        _ => None,
    };
    let signer = signer(&cli)?;
    let deployer = signer.address();
    let endpoints = Endpoints::parse(&cli.rpc_url)
        .map_err(|e| CliError::Usage(format!("--l1.rpc-url: {e}")))?;
    // Redacted: hosted RPC URLs carry API keys in their path or query.
    let shown = endpoints.redacted().join(",");
    // TLS (rustls, PLASMA_CA_FILE trusted too) and failover across the endpoints.
    let (provider, _health) = l1::connect(&endpoints, EthereumWallet::from(signer))
        .map_err(|e| CliError::Unreachable { reason: l1::explain(&e) })?;
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| CliError::Unreachable { reason: l1::explain(&e) })?;

    let mut config = DeployConfig::devnet(cli.operator.unwrap_or(deployer), cli.min_exit_period);
    if let Some(bond) = cli.standard_exit_bond {
        config.standard_exit_bond = bond;
    }
    let mut plan = plan(&provider, deployer, &config, cli.test_token).await?;
    if let Some(fees) = fees {
        plan.fees = fees;
    }
    print_plan(&plan, &shown);
    if cli.dry_run {
        eprintln!("dry run: nothing sent");
        return Ok(());
    }
    if plan.balance < plan.max_cost() {
        return Err(CliError::Underfunded {
            deployer,
            have: eth(plan.balance),
            need: eth(plan.max_cost()),
            missing: eth(plan.max_cost() - plan.balance),
        });
    }
    let options = DeployOptions {
        confirmations: cli.confirmations,
        test_token: cli.test_token,
        fees,
        timeout: Duration::from_secs(cli.tx_timeout),
    };
    let confirmations = cli.confirmations;
    let report = deploy_with(provider, &config, &options, |p| match p {
        Progress::Sent { step, hash } => {
            let depth = if confirmations > 1 {
                format!(" and {confirmations} blocks deep")
            } else {
                String::new()
            };
            eprintln!("  {step}: sent {hash}; waiting until mined{depth} …");
        }
        Progress::Confirmed(t) => {
            let at = t.address.map(|a| format!(" at {a}")).unwrap_or_default();
            eprintln!(
                "  {}: block {}{at}, {} gas at {} gwei",
                t.step,
                t.block,
                t.gas_used,
                gwei(t.effective_gas_price)
            );
        }
    })
    .await?;
    eprintln!("deployed in block {}; paid {} ETH", report.deploy_block(), eth(report.cost()));
    let json = contracts_json(&report, &config, chain_id, deployer, cli.confirmations);
    let text = serde_json::to_string_pretty(&json).unwrap_or_else(|_| json.to_string());
    match cli.out {
        Some(path) => {
            if let Err(source) = write_atomically(&path, &(text.clone() + "\n")) {
                // The contracts exist: never lose their addresses.
                println!("{text}");
                return Err(CliError::Write { path, source });
            }
            eprintln!("addresses written to {}", path.display());
        }
        None => println!("{text}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed_and_defaults_to_a_local_node() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["plasma-deploy", "--deployer.private-key", "0x01"]).unwrap();
        assert_eq!(cli.rpc_url, "http://127.0.0.1:8545");
        assert_eq!(cli.min_exit_period, 604_800);
        assert_eq!(cli.confirmations, 1);
        assert!(cli.operator.is_none());
    }

    #[test]
    fn a_keystore_excludes_a_raw_key_and_confirmations_start_at_one() {
        let both = Cli::try_parse_from([
            "plasma-deploy",
            "--keystore",
            "k.json",
            "--deployer.private-key",
            "0x01",
        ]);
        assert!(both.is_err(), "a keystore and a raw key together are refused");
        assert!(
            Cli::try_parse_from(["plasma-deploy", "--keystore", "k", "--confirmations", "0"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["plasma-deploy", "--password-file", "p"]).is_err());
        let cli = Cli::try_parse_from(["plasma-deploy", "--keystore", "k"]).unwrap();
        // No password anywhere: a typed refusal naming both ways to give one.
        if std::env::var_os("PLASMA_KEYSTORE_PASSWORD").is_none() {
            let e = signer(&cli).unwrap_err().to_string();
            assert!(e.contains("--password-file") && e.contains("PLASMA_KEYSTORE_PASSWORD"), "{e}");
        }
    }

    /// A keystore `cast wallet import` wrote (password "s3cret") for the key 0x0123…cdef.
    const KEYSTORE: &str = r#"{"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"276fcb1d8f5e3be5261f9919e45668eb"},"ciphertext":"70898c55fd079ba7a2ded3307ce5c7a6c211cb0131b78a44f6a029d8c95c612e","kdf":"scrypt","kdfparams":{"dklen":32,"n":8192,"p":1,"r":8,"salt":"91e53f6c03b1c4f47f121b4da0a29e8788f9d744006a4f9be4149ca0f5ed3c3a"},"mac":"66081d1c74e0cd4d75e939784f1d2cf4c4839e276b6b0e6052f9a49908eadc1c"},"id":"5630bbef-c27a-45e2-af1f-41cd58e11254","version":3}"#;

    #[test]
    fn a_keystore_decrypts_with_the_password_from_a_file_and_refuses_a_wrong_one() {
        let dir = std::env::temp_dir().join(format!("plasma-deploy-ks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ks, pw) = (dir.join("deployer.json"), dir.join("password"));
        std::fs::write(&ks, KEYSTORE).unwrap();
        std::fs::write(&pw, "s3cret\n").unwrap();
        let cli = Cli::try_parse_from([
            "plasma-deploy",
            "--keystore",
            ks.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ])
        .unwrap();
        let expected: Address = "0xFCAd0B19bB29D4674531d6f115237E16AfCE377c".parse().unwrap();
        assert_eq!(signer(&cli).unwrap().address(), expected);
        std::fs::write(&pw, "wrong\n").unwrap();
        let e = signer(&cli).unwrap_err();
        assert!(matches!(e, CliError::Keystore { .. }), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fees_in_gwei_become_wei_and_nonsense_is_refused() {
        assert_eq!(gwei_to_wei(1.5, "--x").unwrap(), 1_500_000_000);
        assert!(gwei_to_wei(-1.0, "--x").is_err());
        assert!(gwei_to_wei(f64::NAN, "--x").is_err());
        assert_eq!(trim_zeros("1.500000"), "1.5");
        assert_eq!(trim_zeros("2.000"), "2");
    }
}
