//! `plasma-watcher`: runs the watchtower.

use alloy::{
    network::EthereumWallet, primitives::Address, providers::Provider,
    signers::local::PrivateKeySigner,
};
use clap::Parser;
use plasma_contracts::l1::Endpoints;
use plasma_watcher::{DownloadSettings, Settings, TowerSettings, Watcher};
use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};
use tracing_subscriber::EnvFilter;

/// WATCH-15: as the operator (OP-9): glibc's malloc keeps what each thread freed in that thread's
/// arena, so the resident set followed the high-water mark of every thread that ever held a
/// downloaded block; jemalloc's background threads return freed pages to the system.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How often every L1 endpoint is asked for its head (`/status` `l1.endpoints`; a failed endpoint
/// is noticed again when it recovers).
const ENDPOINT_PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// The plasma watchtower: validates every block and acts on L1 by itself.
#[derive(Debug, Parser)]
#[command(name = "plasma-watcher", version)]
struct Cli {
    /// L1 JSON-RPC endpoint, or several comma-separated in order of preference (http or https;
    /// requests fail over to the next; PLASMA_CA_FILE adds trusted certificates).
    #[arg(
        long = "l1.rpc-url",
        env = "PLASMA_WATCHER_L1_RPC_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:8545"
    )]
    rpc_url: String,
    /// The framework contract.
    #[arg(long = "l1.framework", env = "PLASMA_WATCHER_L1_FRAMEWORK")]
    framework: Address,
    /// The watcher's key (pays for challenges and exits) as raw hex: devnets; prefer --l1.keystore.
    #[arg(
        long = "l1.private-key",
        env = "PLASMA_WATCHER_L1_PRIVATE_KEY",
        hide_env_values = true,
        required_unless_present = "keystore",
        conflicts_with = "keystore"
    )]
    private_key: Option<String>,
    /// The watcher's key as a Web3 Secret Storage keystore (what `cast wallet import` writes); the
    /// password comes from --l1.password-file or PLASMA_KEYSTORE_PASSWORD.
    #[arg(long = "l1.keystore", env = "PLASMA_WATCHER_L1_KEYSTORE")]
    keystore: Option<PathBuf>,
    /// A file whose first line is the keystore's password.
    #[arg(long = "l1.password-file", requires = "keystore")]
    password_file: Option<PathBuf>,
    /// Refuse to start unless L1 is this chain (e.g. 11155111 for Sepolia): endpoints of another
    /// chain are never used, and the watcher must not act on a chain it was not meant for.
    #[arg(long = "l1.chain-id", env = "PLASMA_WATCHER_L1_CHAIN_ID")]
    chain_id: Option<u64>,
    /// L1 confirmations before events are acted on.
    #[arg(long = "l1.confirmations", default_value_t = 1)]
    confirmations: u64,
    /// The operator's API.
    #[arg(
        long = "operator.url",
        env = "PLASMA_WATCHER_OPERATOR_URL",
        default_value = "http://127.0.0.1:9656"
    )]
    operator_url: String,
    /// Seconds a committed block may stay unavailable before it counts as withheld.
    #[arg(long = "availability-timeout", default_value_t = 30)]
    availability_timeout: u64,
    /// Seconds without a byte after which a block download is resumed (HTTP range) on a new
    /// connection. Not a limit on the download: the verdict is --availability-timeout's (WATCH-3).
    #[arg(long = "stall-timeout", default_value_t = 15)]
    stall_timeout: u64,
    /// Blocks downloaded ahead of the one being validated (each held in memory until validated).
    #[arg(long = "prefetch", default_value_t = 2)]
    prefetch: usize,
    /// The API's listen address.
    #[arg(long = "api.listen", default_value = "127.0.0.1:9657")]
    listen: SocketAddr,
    /// The data directory.
    #[arg(long = "data-dir", default_value = ".devnet/watcher")]
    data_dir: PathBuf,
    /// Poll interval in milliseconds.
    #[arg(long = "poll-ms", default_value_t = 500)]
    poll_ms: u64,
    /// Call processExits for ETH whenever the queue head is due.
    #[arg(long = "process-exits")]
    process_exits: bool,
    /// Alert when an action goes out with less than this many seconds before its deadline.
    #[arg(long = "deadline-margin", default_value_t = 3600)]
    deadline_margin: u64,
    /// Re-send an action with a higher fee when it is not mined after this many seconds.
    #[arg(long = "stuck-after", default_value_t = 60)]
    stuck_after: u64,
    /// L1's block time in seconds (12 on Ethereum; 1 on a devnet), for the timing check (WATCH-12).
    #[arg(long = "l1.block-time", default_value_t = 12)]
    l1_block_time: u64,
    /// This watcher's index in --da.towers: it stores that chunk of every block and signs
    /// receipts with --l1.private-key. Omit to only rebuild (a reader).
    #[arg(long = "da.index")]
    da_index: Option<u16>,
    /// Chunks that rebuild a block (k of the k-of-n code; n = the number of towers).
    #[arg(long = "da.k")]
    da_k: Option<u16>,
    /// Every tower's API URL in index order, this one's included (comma-separated).
    #[arg(long = "da.towers", value_delimiter = ',')]
    da_towers: Vec<String>,
    /// Seconds after a block's commitment at which a rebuild from the towers starts if the
    /// operator has not served it (sooner at the first failed download). Default: a third of
    /// --availability-timeout.
    #[arg(long = "da.rebuild-after")]
    da_rebuild_after: Option<f64>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread().enable_all().build() else {
        eprintln!("plasma-watcher: no runtime");
        return ExitCode::FAILURE;
    };
    runtime.block_on(async move {
        let key = match load_key(&cli) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("plasma-watcher: {e}");
                return ExitCode::FAILURE;
            }
        };
        let me = key.address();
        let da = match da_settings(&cli) {
            Ok(da) => da,
            Err(e) => {
                eprintln!("plasma-watcher: {e}");
                return ExitCode::FAILURE;
            }
        };
        let receipt_key = plasma_spec::Signer::from_bytes(&key.to_bytes());
        let endpoints = match Endpoints::parse(&cli.rpc_url) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("plasma-watcher: --l1.rpc-url: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (provider, l1_health) =
            match plasma_contracts::l1::connect(&endpoints, EthereumWallet::from(key)) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("plasma-watcher: {e}");
                    return ExitCode::FAILURE;
                }
            };
        tracing::info!(target: "watcher", endpoints = %endpoints, "L1 endpoints");
        // One chain for the watcher's whole life: the endpoints' health check never uses one that
        // answers another chain id (a misconfigured list, a provider's wrong network).
        let chain_id = match provider.get_chain_id().await {
            Ok(id) => id,
            Err(e) => {
                eprintln!("plasma-watcher: L1 chain id: {}", plasma_contracts::l1::explain(&e));
                return ExitCode::FAILURE;
            }
        };
        if let Some(expected) = cli.chain_id
            && expected != chain_id
        {
            eprintln!("plasma-watcher: L1 is chain {chain_id}, not --l1.chain-id {expected}");
            return ExitCode::FAILURE;
        }
        l1_health.pin_chain_id(chain_id);
        l1_health.spawn_probe(ENDPOINT_PROBE_INTERVAL);
        let settings = Settings {
            framework: cli.framework,
            operator_url: cli.operator_url.trim_end_matches('/').to_owned(),
            confirmations: cli.confirmations,
            poll: Duration::from_millis(cli.poll_ms),
            availability_timeout: Duration::from_secs(cli.availability_timeout),
            process_exits: cli.process_exits,
            deadline_margin: Duration::from_secs(cli.deadline_margin),
            stuck_after: Duration::from_secs(cli.stuck_after),
            l1_block_time: Duration::from_secs(cli.l1_block_time),
            download: DownloadSettings {
                stall_timeout: Duration::from_secs(cli.stall_timeout.max(1)),
                prefetch: cli.prefetch,
            },
        };
        let watcher = match Watcher::new(settings, me, provider, &cli.data_dir).await {
            Ok(w) => w.with_l1_health(l1_health),
            Err(e) => {
                eprintln!("plasma-watcher: {e}");
                return ExitCode::FAILURE;
            }
        };
        let watcher = match da {
            None => watcher,
            Some(da) => match watcher.with_tower(da, receipt_key).await {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("plasma-watcher: {e}");
                    return ExitCode::FAILURE;
                }
            },
        };
        let running = match plasma_watcher::start(watcher, cli.listen).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("plasma-watcher: listening on {}: {e}", cli.listen);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(target: "watcher", addr = %running.addr, watcher = %me, "watcher started");
        shutdown_signal().await;
        running.stop().await;
        ExitCode::SUCCESS
    })
}

/// The key from --l1.private-key or --l1.keystore (clap makes them exclusive and one required).
fn load_key(cli: &Cli) -> Result<PrivateKeySigner, String> {
    if let Some(path) = &cli.keystore {
        let password = match &cli.password_file {
            Some(file) => std::fs::read_to_string(file)
                .map_err(|e| format!("--l1.password-file {}: {e}", file.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            None => std::env::var("PLASMA_KEYSTORE_PASSWORD").map_err(|_| {
                "--l1.keystore needs --l1.password-file or PLASMA_KEYSTORE_PASSWORD".to_owned()
            })?,
        };
        return PrivateKeySigner::decrypt_keystore(path, password)
            .map_err(|e| format!("--l1.keystore {}: {e}", path.display()));
    }
    let raw = cli.private_key.as_deref().unwrap_or_default();
    raw.trim().parse().map_err(|e| format!("private key: {e}"))
}

/// The `--da.*` flags, checked (issue 17).
fn da_settings(cli: &Cli) -> Result<Option<TowerSettings>, String> {
    let rebuild_after = match cli.da_rebuild_after {
        Some(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => return Err(format!("--da.rebuild-after {s}: expected seconds >= 0")),
        None => None,
    };
    TowerSettings::new(
        cli.da_index,
        cli.da_k,
        &cli.da_towers,
        rebuild_after,
        Duration::from_secs(cli.availability_timeout),
    )
    .map_err(|e| e.to_string())
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
    }

    #[test]
    fn a_key_comes_from_exactly_one_of_raw_hex_and_a_keystore() {
        let base =
            ["plasma-watcher", "--l1.framework", "0x0000000000000000000000000000000000000001"];
        let parse = |extra: &[&str]| Cli::try_parse_from(base.iter().chain(extra));
        assert!(parse(&[]).is_err(), "no key at all");
        assert!(parse(&["--l1.private-key", "0x01", "--l1.keystore", "k.json"]).is_err(), "both");
        assert!(parse(&["--l1.password-file", "p"]).is_err(), "a password without a keystore");
        let cli = parse(&["--l1.keystore", "/nonexistent/k.json", "--l1.password-file", "/x"])
            .expect("a keystore alone");
        let err = load_key(&cli).expect_err("an unreadable password file is named");
        assert!(err.contains("--l1.password-file /x"), "{err}");
        let raw = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
        let cli = parse(&["--l1.private-key", raw]).expect("a raw key alone");
        assert!(load_key(&cli).is_ok());
    }

    fn parse(args: &[&str]) -> Cli {
        let mut all = vec![
            "plasma-watcher",
            "--l1.framework",
            "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "--l1.private-key",
            "0x01",
        ];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn da_flags() {
        assert_eq!(da_settings(&parse(&[])).unwrap(), None);
        let s = da_settings(&parse(&[
            "--da.index",
            "1",
            "--da.k",
            "2",
            "--da.towers",
            "http://a:1,http://b:2/,http://c:3",
            "--availability-timeout",
            "30",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.index, Some(1));
        assert_eq!((s.k(), s.n()), (2, 3));
        assert_eq!(s.towers, vec!["http://a:1", "http://b:2", "http://c:3"]);
        assert_eq!(s.rebuild_after, Duration::from_secs(10), "a third of the timeout");
        let s = da_settings(&parse(&[
            "--da.k",
            "1",
            "--da.towers",
            "http://a:1",
            "--da.rebuild-after",
            "0.5",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((s.index, s.rebuild_after), (None, Duration::from_millis(500)));
        for (args, want) in [
            (vec!["--da.k", "2"], "need --da.towers"),
            (vec!["--da.towers", "http://a:1"], "needs --da.k"),
            (vec!["--da.k", "3", "--da.towers", "http://a:1,http://b:1"], "--da.k 3 with 2 towers"),
            (
                vec!["--da.k", "1", "--da.index", "2", "--da.towers", "http://a:1,http://b:1"],
                "not one of the 2 towers",
            ),
            (vec!["--da.k", "1", "--da.towers", "ftp://a:1"], "not an http(s) URL"),
            (vec!["--da.k", "1", "--da.towers", "http://a:1,http://a:1/"], "twice"),
            (
                vec!["--da.k", "1", "--da.towers", "http://a:1", "--da.rebuild-after", "30"],
                "not below --availability-timeout",
            ),
            (
                vec!["--da.k", "1", "--da.towers", "http://a:1", "--da.rebuild-after=-1"],
                "seconds >= 0",
            ),
        ] {
            let err = da_settings(&parse(&args)).unwrap_err();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }
}
