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
        required_unless_present_any = ["keystore", "monitor"],
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
    // --- Monitor mode and cross-checks (issue 20, `plasma_watcher` `watcher/crosscheck.rs`). ---
    /// Read-only monitor: follows L1, validates every block and judges exactly as a watcher,
    /// and never sends an L1 transaction (no key is loaded, the provider has no wallet; what it
    /// would have done is recorded as `wouldAct` events; guards are refused). A key given with
    /// it (flag or environment) is refused, not ignored: a process holding a key is expected to
    /// guard, and one that silently does not is the failure this mode must never create.
    #[arg(long = "monitor", conflicts_with_all = ["private_key", "keystore", "password_file", "da_index"])]
    monitor: bool,
    /// Other watchers or monitors whose block verdicts to compare with this one's (their API
    /// base URLs, comma-separated; shown redacted): a block judged differently is a
    /// `verdictDisagreement` event, a peer that stops answering a `crossCheckPeerDown`.
    #[arg(
        long = "cross-check",
        env = "PLASMA_WATCHER_CROSS_CHECK",
        hide_env_values = true,
        value_delimiter = ','
    )]
    cross_check: Vec<String>,
    /// Seconds between two cross-check polls of every peer.
    #[arg(long = "cross-check.interval", default_value_t = 10.0)]
    cross_check_interval: f64,
    // --- Alerts (issue 20): webhooks and the stall detector (`plasma_watcher::alerts`). ---
    /// Alert webhook(s), repeatable or comma-separated: `https://…` (generic JSON),
    /// `slack+https://…`, `discord+https://…`, `generic+https://…`. The URL is a secret: prefer
    /// the environment variable (the command line is visible in `ps`); it is only ever logged as
    /// `https://host/…`.
    #[arg(
        long = "alert.webhook",
        env = "PLASMA_WATCHER_ALERT_WEBHOOK",
        hide_env_values = true,
        value_delimiter = ','
    )]
    alert_webhooks: Vec<String>,
    /// Seconds without progress that count as the watcher stalling: no step completed, the L1
    /// cursor behind L1's head, or committed blocks waiting (plus --availability-timeout).
    #[arg(long = "alert.stall-after", default_value_t = 300)]
    alert_stall_after: u64,
    /// Seconds an unchanged L1 head counts as L1 stalled; 0 turns the check off. Default:
    /// --alert.stall-after, or off on a development chain (chain id 31337 or 1337: a devnet
    /// mining on demand has no new block while idle). Decided by the chain id, not by the
    /// endpoint's host: a tower's own node on 127.0.0.1 is checked.
    #[arg(long = "alert.l1-stall-after")]
    alert_l1_stall_after: Option<u64>,
    /// This watcher's name in alert messages (default: `watcher <its address>`).
    #[arg(long = "alert.name")]
    alert_name: Option<String>,
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
        // A monitor (issue 20) loads no key at all: clap refuses one with --monitor.
        let key = if cli.monitor {
            None
        } else {
            match load_key(&cli) {
                Ok(k) => Some(k),
                Err(e) => {
                    eprintln!("plasma-watcher: {e}");
                    return ExitCode::FAILURE;
                }
            }
        };
        let me = key.as_ref().map_or(Address::ZERO, PrivateKeySigner::address);
        let cross_check_interval = match cross_check_interval(&cli) {
            // The peers are checked here too, before anything connects.
            Ok(i) => match plasma_watcher::crosscheck::parse_peers(&cli.cross_check) {
                Ok(_) => i,
                Err(e) => {
                    eprintln!("plasma-watcher: {e}");
                    return ExitCode::FAILURE;
                }
            },
            Err(e) => {
                eprintln!("plasma-watcher: {e}");
                return ExitCode::FAILURE;
            }
        };
        let da = match da_settings(&cli) {
            Ok(da) => da,
            Err(e) => {
                eprintln!("plasma-watcher: {e}");
                return ExitCode::FAILURE;
            }
        };
        let receipt_key = key.as_ref().and_then(|k| plasma_spec::Signer::from_bytes(&k.to_bytes()));
        let endpoints = match Endpoints::parse(&cli.rpc_url) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("plasma-watcher: --l1.rpc-url: {e}");
                return ExitCode::FAILURE;
            }
        };
        let alert_settings = match alert_settings(&cli, me, &endpoints) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("plasma-watcher: {e}");
                return ExitCode::FAILURE;
            }
        };
        let connected = match key {
            Some(key) => plasma_contracts::l1::connect(&endpoints, EthereumWallet::from(key)),
            // No wallet: nothing this process builds can sign (issue 20).
            None => plasma_contracts::l1::connect_reader(
                &endpoints,
                &plasma_contracts::l1::ClientOptions::from_env(),
            ),
        };
        let (provider, l1_health) = match connected {
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
        let watcher = if cli.monitor {
            tracing::info!(target: "watcher", "read-only monitor: no key, no L1 transaction");
            watcher.with_monitor()
        } else {
            watcher
        };
        let watcher = match watcher.with_cross_check(&cli.cross_check, cross_check_interval) {
            Ok(w) => w,
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
        // The L1 head check's default depends on the chain (a devnet mines on demand).
        let alert_settings = alert_settings.on_chain(chain_id);
        let watcher = match plasma_watcher::alerts::Alerts::start(alert_settings) {
            Ok(alerts) => watcher.with_alerts(alerts),
            Err(e) => {
                eprintln!("plasma-watcher: {e}");
                return ExitCode::FAILURE;
            }
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

/// `--cross-check.interval`, checked (issue 20).
fn cross_check_interval(cli: &Cli) -> Result<Duration, String> {
    Duration::try_from_secs_f64(cli.cross_check_interval).ok().filter(|d| !d.is_zero()).ok_or_else(
        || format!("--cross-check.interval {}: expected seconds > 0", cli.cross_check_interval),
    )
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

/// The `--alert.*` flags, checked (issue 20).
fn alert_settings(
    cli: &Cli,
    me: Address,
    l1: &Endpoints,
) -> Result<plasma_watcher::alerts::AlertSettings, String> {
    use plasma_watcher::alerts::{AlertSettings, parse_webhooks};
    let webhooks = parse_webhooks(&cli.alert_webhooks).map_err(|e| e.to_string())?;
    let stall_after = Duration::from_secs(cli.alert_stall_after);
    // The default is settled by `AlertSettings::on_chain` once L1's chain id is known.
    let l1_stall_after = match cli.alert_l1_stall_after {
        Some(0) => None,
        Some(s) => Some(Duration::from_secs(s)),
        None => Some(stall_after),
    };
    let name = match &cli.alert_name {
        Some(n) if n.trim().is_empty() => return Err("--alert.name is empty".into()),
        Some(n) => n.trim().to_owned(),
        // A monitor (no key) has no address of its own.
        None if me.is_zero() => "monitor".into(),
        None => format!("watcher {me}"),
    };
    let settings = AlertSettings {
        webhooks,
        name,
        watcher: me,
        l1: l1.clone(),
        confirmations: cli.confirmations,
        availability_timeout: Duration::from_secs(cli.availability_timeout),
        stall_after,
        l1_stall_after,
        l1_stall_default: cli.alert_l1_stall_after.is_none(),
    };
    settings.check().map_err(|e| e.to_string())?;
    Ok(settings)
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

    #[test]
    fn a_monitor_needs_no_key_and_refuses_one() {
        let base =
            ["plasma-watcher", "--l1.framework", "0x0000000000000000000000000000000000000001"];
        let parse = |extra: &[&str]| Cli::try_parse_from(base.iter().chain(extra));
        let cli = parse(&["--monitor"]).expect("a monitor without a key");
        assert!(cli.monitor);
        for refused in [
            &["--monitor", "--l1.private-key", "0x01"][..],
            &["--monitor", "--l1.keystore", "k.json"],
            &["--monitor", "--da.index", "0", "--da.k", "1", "--da.towers", "http://a:1"],
        ] {
            let err = parse(refused).expect_err("a key, or a tower that signs, with --monitor");
            assert!(err.to_string().contains("--monitor"), "{refused:?}: {err}");
        }
        // A monitor may read from the towers (a reader signs nothing).
        let cli = parse(&["--monitor", "--da.k", "1", "--da.towers", "http://a:1"]).unwrap();
        assert_eq!(da_settings(&cli).unwrap().unwrap().index, None);
        let cli = parse(&["--monitor", "--cross-check", "http://a:1,https://u:p@b/x"]).unwrap();
        assert_eq!(cli.cross_check, ["http://a:1", "https://u:p@b/x"]);
        assert_eq!(cross_check_interval(&cli).unwrap(), Duration::from_secs(10));
        for bad in ["0", "-1", "NaN", "inf"] {
            let flag = format!("--cross-check.interval={bad}");
            let cli = parse(&["--monitor", &flag]).unwrap();
            assert!(cross_check_interval(&cli).is_err(), "{bad}");
        }
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
    fn alert_flags() {
        let me = Address::repeat_byte(7);
        let local = Endpoints::parse("http://127.0.0.1:8545").unwrap();
        let remote = Endpoints::parse("https://eth.example/v3/secret-key").unwrap();
        let s = alert_settings(&parse(&[]), me, &local).unwrap();
        assert!(s.webhooks.is_empty());
        assert_eq!(s.stall_after, Duration::from_secs(300));
        // The L1 head check follows the chain, not the host: a tower's own node on loopback is
        // checked, a devnet (31337) is not.
        assert_eq!(s.clone().on_chain(1).l1_stall_after, Some(Duration::from_secs(300)));
        assert_eq!(s.on_chain(31_337).l1_stall_after, None, "a devnet mining on demand");
        assert_eq!(alert_settings(&parse(&[]), me, &local).unwrap().name, format!("watcher {me}"));
        let s = alert_settings(&parse(&[]), me, &remote).unwrap();
        assert_eq!(s.on_chain(1).l1_stall_after, Some(Duration::from_secs(300)));
        let s = alert_settings(
            &parse(&[
                "--alert.webhook",
                "slack+https://hooks.slack.com/services/T/B/secret,https://a.example/x",
                "--alert.webhook=discord+https://discord.com/api/webhooks/1/secret",
                "--alert.stall-after",
                "20",
                "--alert.l1-stall-after",
                "0",
                "--alert.name",
                "tower-eu",
            ]),
            me,
            &remote,
        )
        .unwrap();
        let formats: Vec<_> = s.webhooks.iter().map(|w| w.format).collect();
        use plasma_watcher::alerts::Format;
        assert_eq!(formats, [Format::Slack, Format::Generic, Format::Discord]);
        assert_eq!((s.stall_after, s.l1_stall_after), (Duration::from_secs(20), None));
        assert_eq!(s.name, "tower-eu");
        for (args, want) in [
            (vec!["--alert.webhook", "ftp://x/secret"], "not an http(s) URL"),
            (vec!["--alert.webhook", "teams+https://x/secret"], "not an http(s) URL"),
            (vec!["--alert.webhook", "https://[secret"], "not a URL"),
            (vec!["--alert.stall-after", "0"], "at least 1 second"),
            (vec!["--alert.name", " "], "empty"),
        ] {
            let err = alert_settings(&parse(&args), me, &remote).unwrap_err();
            assert!(err.contains(want), "{args:?}: {err}");
            assert!(!err.contains("secret"), "a webhook is never shown in full: {err}");
        }
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
