//! `plasma-operator`: runs the child-chain operator.
// The API's warp filter chain is deeper than the default limit of 128 in release builds of
// this binary (E0275 on `pin_project`'s Unpin of the nested `AndFuture`s).
#![recursion_limit = "256"]

use clap::{Parser, Subcommand};
use plasma_operator::{Config, Node};
use std::{path::PathBuf, process::ExitCode};
use tracing_subscriber::EnvFilter;

/// OP-9: glibc's malloc keeps what each thread freed in that thread's arena, so the operator's
/// resident set grew with every thread that ever held a block's worth of transactions (345 →
/// 872 MB over 10 full blocks while the live heap stayed near 100 MB). jemalloc, with its
/// background threads, returns freed pages to the system within seconds.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The plasma child-chain operator.
#[derive(Debug, Parser)]
#[command(name = "plasma-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the operator until Ctrl-C or SIGTERM.
    Run(RunArgs),
    /// Print the effective configuration (file + environment + flags) as TOML-like debug output.
    Config(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// TOML configuration file (defaults run a devnet).
    #[arg(long, env = "PLASMA_OPERATOR_CONFIG")]
    config: Option<PathBuf>,
    /// The L1 JSON-RPC endpoint, or several comma-separated (http or https; failover in this
    /// order). Replaces the file's `l1.rpc_url` and `l1.rpc_urls`.
    #[arg(long = "l1.rpc-url")]
    rpc_url: Option<String>,
    /// The framework contract.
    #[arg(long = "l1.framework")]
    framework: Option<alloy::primitives::Address>,
    /// The HTTP listen address.
    #[arg(long = "api.listen")]
    listen: Option<std::net::SocketAddr>,
    /// The data directory.
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
    /// Block interval in milliseconds.
    #[arg(long = "block.interval-ms")]
    block_interval_ms: Option<u64>,
    /// A local devnet: one L1 confirmation for deposits instead of the mainnet-safe default.
    #[arg(long)]
    devnet: bool,
}

impl RunArgs {
    fn config(&self) -> Result<Config, plasma_operator::ConfigError> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(v) = &self.rpc_url {
            config.l1.set_endpoints(v);
        }
        if let Some(v) = self.framework {
            config.l1.framework = v;
        }
        if let Some(v) = self.listen {
            config.listen = v;
        }
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = self.block_interval_ms {
            config.block.interval_ms = v;
        }
        if self.devnet {
            config.use_devnet_depths();
        }
        config.validate()?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let (Commands::Run(args) | Commands::Config(args)) = &cli.command;
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("plasma-operator: {e}");
            return ExitCode::FAILURE;
        }
    };
    if matches!(cli.command, Commands::Config(_)) {
        // Never print the key itself, nor the API keys in endpoint URLs.
        let mut shown = config;
        shown.l1 = shown.l1.redacted();
        println!("{shown:#?}");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("plasma-operator: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let node = match Node::start(config).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("plasma-operator: {e}");
                return ExitCode::FAILURE;
            }
        };
        shutdown_signal().await;
        node.stop().await;
        ExitCode::SUCCESS
    })
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM: systemd, Docker and Kubernetes stop a service with
/// SIGTERM, and both must take the same graceful path (stop taking work, flush the store).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "no SIGTERM handler; stopping on Ctrl-C only"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["plasma-operator", "run"]).unwrap();
        let Commands::Run(args) = cli.command else { panic!("run") };
        assert!(args.rpc_url.is_none());
    }
}
