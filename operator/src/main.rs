//! `plasma-operator`: runs the child-chain operator.
// The API's warp filter chain is deeper than the default limit of 128 in release builds of
// this binary (E0275 on `pin_project`'s Unpin of the nested `AndFuture`s).
#![recursion_limit = "256"]

use clap::{Parser, Subcommand};
use plasma_operator::{Config, HaNode, Node};
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
    /// Where the state lives: a redb file, or `postgres://user[:password]@host[:port]/db` for a
    /// highly available operator (several processes on one database elect a leader; OP-HA-1).
    /// Default `<data-dir>/operator.redb`. Env: PLASMA_OPERATOR_STORE.
    #[arg(long = "store")]
    store: Option<String>,
    /// PostgreSQL connections the store keeps. Default 8. Env: PLASMA_OPERATOR_STORE_POOL.
    #[arg(long = "store.pool")]
    store_pool: Option<usize>,
    /// How long a PostgreSQL store call may take, in ms, before a write is taken as lost and the
    /// leader steps down. Default 60000. Env: PLASMA_OPERATOR_STORE_CALL_DEADLINE_MS.
    #[arg(long = "store.call-deadline-ms")]
    store_call_deadline_ms: Option<u64>,
    /// The API URL standbys name in `NotLeader` while this process leads. Default
    /// `http://<api.listen>`. Env: PLASMA_OPERATOR_HA_ADVERTISE_URL.
    #[arg(long = "ha.advertise-url")]
    advertise_url: Option<String>,
    /// The leader lease in milliseconds (renewed every fifth). Default 5000. Env:
    /// PLASMA_OPERATOR_HA_LEASE_MS.
    #[arg(long = "ha.lease-ms")]
    lease_ms: Option<u64>,
    /// This process's name in the lease row. Default `<hostname>-<pid>`. Env:
    /// PLASMA_OPERATOR_HA_NODE_ID.
    #[arg(long = "ha.node-id")]
    node_id: Option<String>,
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
        if let Some(v) = &self.store {
            config.store.url = Some(v.clone());
        }
        if let Some(v) = self.store_pool {
            config.store.pool = v;
        }
        if let Some(v) = self.store_call_deadline_ms {
            config.store.call_deadline_ms = v;
        }
        if let Some(v) = &self.advertise_url {
            config.ha.advertise_url = Some(v.clone());
        }
        if let Some(v) = self.lease_ms {
            config.ha.lease_ms = v;
        }
        if let Some(v) = &self.node_id {
            config.ha.node_id = Some(v.clone());
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
        shown.store = shown.store.redacted();
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
    let exit = runtime.block_on(async move {
        if config.store.is_postgres() {
            return run_elected(config).await;
        }
        let node = match Node::start(config).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("plasma-operator: {e}");
                return ExitCode::FAILURE.into();
            }
        };
        shutdown_signal().await;
        node.stop().await;
        ExitCode::SUCCESS.into()
    });
    match exit {
        // Deposed: what a store call still holds on the blocking pool (a database that went
        // silent) must not keep the process: dropping the runtime would wait for it forever.
        // The hard-exit thread bounds this path anyway (`exit_if_not_stopped_within`).
        Exit::Deposed(code) => {
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            code
        }
        // A graceful stop lets a store write in flight finish (the runtime's drop waits for it).
        Exit::Done(code) => code,
    }
}

/// How `run` ended.
enum Exit {
    /// Stopped (a signal) or could not start.
    Done(ExitCode),
    /// Stopped leading (OP-HA-5).
    Deposed(ExitCode),
}

impl From<ExitCode> for Exit {
    fn from(code: ExitCode) -> Self {
        Self::Done(code)
    }
}

/// The code a deposed leader exits with (OP-HA-5): its supervisor restarts it as a standby.
const DEPOSED: u8 = 3;

/// Once deposed (the lease lost, the store poisoned, or leading could not start), the process
/// must end within one more lease, whatever its tasks are waiting on (A21-3): a plain thread —
/// not a tokio task, which needs a free worker and a running timer, exactly what a hung store
/// call can take away — exits the process with [`DEPOSED`] at the deadline, saying why. It is
/// armed at start and woken by the election thread itself ([`HaNode::on_exit`]), not by the
/// supervisor task: with every worker blocked the supervisor never runs, and a deadline armed
/// from it never started (A21b-6). Nothing is lost by exiting hard: a deposed leader's writes are
/// refused by the fence (OP-HA-2), what it acknowledged is durable, and the new leader resumes
/// from the store and L1.
fn arm_hard_exit(node: &HaNode, grace: std::time::Duration) -> std::io::Result<()> {
    node.on_exit(move |why| {
        tracing::error!(target: "operator::ha", reason = %why, ?grace, "stopped leading: the process ends within one lease");
        std::thread::sleep(grace);
        tracing::error!(target: "operator::ha", reason = %why, ?grace, "deposed and still not stopped after one lease (tasks waiting on the store?): exiting hard");
        eprintln!("plasma-operator: deposed ({why}); not stopped within {grace:?}: exiting hard");
        std::process::exit(i32::from(DEPOSED));
    })
}

/// A PostgreSQL store: elect (OP-HA-1). Runs until a signal (a graceful stop, the lease released
/// so a standby takes over at once) or until this process loses the lease it led in: then it
/// exits with an error at once (OP-HA-5), for its supervisor to restart it as a standby.
async fn run_elected(config: Config) -> Exit {
    let lease = config.ha.lease();
    let node = match HaNode::start(config).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("plasma-operator: {e}");
            return ExitCode::FAILURE.into();
        }
    };
    if let Err(e) = arm_hard_exit(&node, lease) {
        // No thread for the deadline: refuse to run rather than risk lingering as a deposed
        // leader later.
        eprintln!("plasma-operator: no thread for the deposed-exit deadline: {e}");
        node.stop().await;
        return ExitCode::FAILURE.into();
    }
    let why = tokio::select! {
        () = shutdown_signal() => {
            node.stop().await;
            return ExitCode::SUCCESS.into();
        }
        why = node.deposed() => why,
    };
    tracing::error!(target: "operator::ha", reason = %why, "stopped leading; exiting so the supervisor restarts this process as a standby");
    eprintln!("plasma-operator: {why}");
    // The supervisor is stopping the leader's tasks; they get one lease (the deadline armed at
    // start is already running), then the process goes whatever they wait on (A21-3, A21b-6).
    // Not `node.stop()`: the lease is lost, not ours to release. `crash` waits for the
    // supervisor, the API and the election thread; nothing of a deposed leader may linger.
    node.crash().await;
    Exit::Deposed(ExitCode::from(DEPOSED))
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
        let cli = Cli::try_parse_from([
            "plasma-operator",
            "run",
            "--store",
            "postgres://op:pw@db/plasma",
            "--store.pool",
            "3",
            "--store.call-deadline-ms",
            "120000",
            "--ha.lease-ms",
            "1000",
            "--ha.node-id",
            "a",
            "--ha.advertise-url",
            "http://a:9656",
        ])
        .unwrap();
        let Commands::Run(args) = cli.command else { panic!("run") };
        let c = args.config().unwrap();
        assert!(c.store.is_postgres());
        assert_eq!((c.store.pool, c.ha.lease_ms, c.ha.node_id.as_deref()), (3, 1000, Some("a")));
        assert_eq!(c.ha.advertise_url.as_deref(), Some("http://a:9656"));
        assert_eq!(c.store.call_deadline_ms, 120_000);
    }
}
