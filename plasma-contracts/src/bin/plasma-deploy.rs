//! `plasma-deploy`: deploys the plasma contracts to a JSON-RPC node and prints (or writes) the
//! addresses as JSON. Used by `scripts/devnet`; works against any node.

use alloy::{
    network::EthereumWallet,
    primitives::{Address, U256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use clap::Parser;
use plasma_contracts::{DeployConfig, deploy};
use std::{path::PathBuf, process::ExitCode};

/// Deploy the plasma contracts (framework and exit games) and bind them.
#[derive(Debug, Parser)]
#[command(name = "plasma-deploy", version)]
struct Cli {
    /// The L1 JSON-RPC endpoint.
    #[arg(long = "l1.rpc-url", env = "PLASMA_L1_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc_url: String,
    /// The deployer's private key (hex). Devnets only: production deployments sign elsewhere.
    #[arg(long = "deployer.private-key", env = "PLASMA_DEPLOYER_KEY", hide_env_values = true)]
    private_key: String,
    /// The operator (block submitter); defaults to the deployer.
    #[arg(long = "operator")]
    operator: Option<Address>,
    /// The challenge period in seconds (a week in production).
    #[arg(long = "exit.min-period", default_value_t = 604_800)]
    min_exit_period: u64,
    /// The standard exit bond in wei (default: sized for a 20 gwei reference gas price).
    #[arg(long = "exit.standard-bond")]
    standard_exit_bond: Option<U256>,
    /// Write the addresses to this file as JSON (default: stdout).
    #[arg(long = "out")]
    out: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plasma-deploy: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let signer: PrivateKeySigner =
        cli.private_key.trim().parse().map_err(|e| format!("bad --deployer.private-key: {e}"))?;
    let deployer = signer.address();
    let url = cli.rpc_url.parse().map_err(|e| format!("bad --l1.rpc-url: {e}"))?;
    let provider = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url);
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| format!("L1 unreachable at {}: {e}", cli.rpc_url))?;

    let mut config = DeployConfig::devnet(cli.operator.unwrap_or(deployer), cli.min_exit_period);
    if let Some(bond) = cli.standard_exit_bond {
        config.standard_exit_bond = bond;
    }
    let d = deploy(provider, &config).await.map_err(|e| e.to_string())?;
    let json = serde_json::json!({
        "chainId": chain_id,
        "framework": d.framework,
        "standardExitGame": d.standard_exit_game,
        "inFlightExitGame": d.in_flight_exit_game,
        "batchExitGame": d.batch_exit_game,
        "operator": config.operator,
        "minExitPeriod": config.min_exit_period,
        "standardExitBond": config.standard_exit_bond.to_string(),
        "inFlightExitBond": config.in_flight_exit_bond.to_string(),
        "piggybackBond": config.piggyback_bond.to_string(),
        "batchExitBond": config.batch_exit_bond.to_string(),
        "claimBond": config.claim_bond.to_string(),
        "demandBond": config.demand_bond.to_string(),
    });
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    match cli.out {
        Some(path) => std::fs::write(&path, text + "\n")
            .map_err(|e| format!("writing {}: {e}", path.display()))?,
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
        assert!(cli.operator.is_none());
    }
}
