//! A harness for end-to-end tests of the real processes: anvil, the deployed contracts, the
//! `plasma-operator` and `plasma-watcher` binaries on free loopback ports, readiness by their
//! health endpoints, logs kept and printed when a test fails, everything killed when it ends; and
//! a byzantine operator that can commit roots of blocks it withholds.
//!
//! The binaries are taken from the workspace's target directory (`scripts/test` builds them
//! first; `PLASMA_BIN_DIR` overrides).

use alloy::{
    network::EthereumWallet,
    node_bindings::AnvilInstance,
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{BatchExitGame, Deployment, PlasmaFramework, devnet::LocalChain};
use plasma_sdk::{Wallet, WalletConfig};
use plasma_spec::{BlockTree, SignedTransaction, Transaction};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
    time::Duration,
};

mod ha;
mod monitor;
pub mod throttle;
mod towers;
pub use ha::{HaOptions, NodeStatus};
pub use monitor::{Monitor, MonitorOptions, reserve_port};
pub use towers::{block_of, put_chunk, status};

/// Why the harness failed; tests unwrap it.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

fn err(e: impl std::fmt::Display) -> HarnessError {
    HarnessError(e.to_string())
}

/// The challenge period of the test deployments, in seconds.
pub const PERIOD: u64 = 60;

/// What the exit game pays out of bonds (BOND-1), so scenarios check balances to the wei in one
/// place when a rule changes.
pub mod payouts {
    use alloy::primitives::U256;

    /// The processing bounty taken from a settled standard exit's bond: half of it.
    pub fn se_bounty(bond: U256) -> U256 {
        bond / U256::from(2)
    }

    /// What the challenger of a standard exit is credited: half the bond (the rest is burned).
    pub fn se_reward(bond: U256) -> U256 {
        bond / U256::from(2)
    }

    /// A standard exit's bond back to its exitor once settled: the bond minus the bounty.
    pub fn se_back(bond: U256) -> U256 {
        bond - se_bounty(bond)
    }

    /// The processing bounty taken from a settled in-flight exit or piggyback bond: half of it,
    /// as for standard exits (BOND-1).
    pub fn ife_bounty(bond: U256) -> U256 {
        bond / U256::from(2)
    }

    /// What a canonicity challenger standing at settlement, or a piggyback challenger, is
    /// credited: half the defeated bond (the rest is burned, BOND-1).
    pub fn ife_reward(bond: U256) -> U256 {
        bond / U256::from(2)
    }

    /// An in-flight exit or piggyback bond back to its owner (initiator, piggybacker or the
    /// exitor that piggybacked for the owner, EXIT-9) once settled: the bond minus the bounty.
    pub fn ife_back(bond: U256) -> U256 {
        bond - ife_bounty(bond)
    }
}

/// A running system.
pub struct Devnet {
    /// The L1 node.
    pub anvil: AnvilInstance,
    /// A provider for anvil's first account (deployer and operator).
    pub provider: DynProvider,
    /// Contract addresses.
    pub deployment: Deployment,
    /// The operator's API.
    pub operator_url: String,
    /// The watcher's API.
    pub watcher_url: String,
    /// The watcher's address.
    pub watcher: Address,
    dir: tempfile::TempDir,
    deposit_confirmations: u64,
    /// The deployment's challenge period (seconds).
    pub period: u64,
    /// The watcher's `--availability-timeout` (seconds).
    availability_timeout: u64,
    operator: Option<Child>,
    watcher_process: Option<Child>,
    proxy_url: String,
    /// Blocks the byzantine operator publishes through the proxy the watcher reads from.
    published: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, Vec<u8>>>>,
    /// Where the proxy forwards everything else (the real operator's current address).
    upstream: std::sync::Arc<std::sync::Mutex<String>>,
    /// The tower set (issue 17, DA-6), when the devnet has one: tower 0 is the watcher above.
    towers: Option<TowerSet>,
    /// TOML appended to the operator's generated configuration (its `[da]` and `[faults]`).
    operator_extra: String,
    /// How this devnet was set up.
    options: DevnetOptions,
    /// The deployer's and operator's keystore and password file, when deployed through the
    /// `plasma-deploy` binary ([`DevnetOptions::deploy_from_keystore`]).
    operator_keystore: Option<(PathBuf, PathBuf)>,
    /// The highly available operator set (issue #21), when [`DevnetOptions::ha`] asks for one:
    /// then `operator` is `None` and these processes are the operator.
    ha: Option<ha::Cluster>,
}

/// How a [`Devnet`] is set up; the defaults are [`Devnet::start`]'s (anvil's chain 31337 mining
/// on every transaction, the contracts deployed in-process by account 0, the operator with a devnet's
/// shallow L1 depths). The other settings are those of a public network, so that a scenario can
/// check nothing assumes the devnet.
#[derive(Clone, Debug)]
pub struct DevnetOptions {
    /// anvil's `--chain-id` (default: anvil's 31337).
    pub chain_id: Option<u64>,
    /// anvil's `--block-time` in seconds (default: a block on every transaction).
    pub block_time: Option<u64>,
    /// The challenge period in seconds.
    pub period: u64,
    /// The watcher's `--availability-timeout` in seconds.
    pub availability_timeout: u64,
    /// L1 confirmations before the operator credits a deposit (LEDGER-7).
    pub deposit_confirmations: u64,
    /// Deploy with the `plasma-deploy` binary from a keystore of a fresh key (funded by anvil
    /// account 0), with this many confirmations per transaction; the operator then signs with the
    /// same keystore. `None`: `plasma_contracts::deploy` in-process by account 0, the operator
    /// with account 0's raw key.
    pub deploy_from_keystore: Option<u64>,
    /// `devnet = true` in the operator's configuration (a raw key allowed, shallow L1 depths).
    pub operator_devnet: bool,
    /// The watcher processes due ETH exits (`--process-exits`).
    pub watcher_processes_exits: bool,
    /// More arguments for the watcher (alerts, `--monitor` peers, …), after the harness's own.
    pub watcher_args: Vec<String>,
    /// Run the operator highly available (issue #21): this many operator processes with the same
    /// key on one throwaway PostgreSQL, one leading (see `Devnet::wait_leader`). `None`: one
    /// operator on its embedded redb store.
    pub ha: Option<HaOptions>,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        Self {
            chain_id: None,
            block_time: None,
            period: PERIOD,
            availability_timeout: 1,
            deposit_confirmations: 1,
            deploy_from_keystore: None,
            operator_devnet: true,
            watcher_processes_exits: true,
            watcher_args: Vec::new(),
            ha: None,
        }
    }
}

/// The towers of a devnet: `n` watchers keeping chunks of every block, `k` of which rebuild it.
struct TowerSet {
    k: u16,
    /// Every tower's API port, in index order (fixed up front: each tower and the operator are
    /// configured with all of them).
    ports: Vec<u16>,
    /// Every tower's key (tower 0's is the watcher's, anvil account 9).
    keys: Vec<PrivateKeySigner>,
    /// Towers 1 … n−1 (tower 0 is `watcher_process`).
    procs: Vec<Option<Child>>,
}

impl TowerSet {
    fn urls(&self) -> Vec<String> {
        self.ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect()
    }

    /// The watcher flags that make watcher `index` a tower of this set.
    fn args(&self, index: usize) -> Vec<String> {
        vec![
            "--da.index".into(),
            index.to_string(),
            "--da.k".into(),
            self.k.to_string(),
            "--da.towers".into(),
            self.urls().join(","),
        ]
    }
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devnet").field("operator_url", &self.operator_url).finish_non_exhaustive()
    }
}

/// Where the workspace's binaries are (`PLASMA_BIN_DIR`, else the target directory's `debug`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PLASMA_BIN_DIR") {
        return dir.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from);
    target.join("debug")
}

/// A loopback port free now, for a process started later. The kernel may hand a released port
/// out again at once, so ports this test process already handed out are never handed out twice
/// (two processes of one test told the same port would fail in a way that depends on timing).
fn free_port() -> Result<u16, HarnessError> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..64 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(err)?;
        let port = l.local_addr().map_err(err)?.port();
        let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
    Err(err("no loopback port left that this test process has not handed out already"))
}

fn key_hex(anvil: &AnvilInstance, i: usize) -> String {
    format!("0x{}", hex::encode(anvil.keys()[i].to_bytes()))
}

async fn wait_healthy(url: &str, child: &mut Child, log: &Path) -> Result<(), HarnessError> {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if http.get(format!("{url}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(HarnessError(format!(
                "process exited ({status}) before it was healthy:\n{text}"
            )));
        }
        if tokio::time::Instant::now() > deadline {
            return Err(HarnessError(format!("{url} not healthy in time")));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An anvil launcher (on `port`, or a free one) keeping its chain in `state`: it loads the file if
/// there is one and writes it when stopped gracefully, so a restart continues the same chain.
fn anvil_keeping(port: Option<u16>, state: &Path) -> plasma_contracts::devnet::Anvil {
    let mut anvil =
        plasma_contracts::devnet::anvil().arg("--state").arg(state.display().to_string());
    if let Some(port) = port {
        anvil = anvil.port(port);
    }
    anvil
}

/// Deploys as on a public network: a fresh key (funded with 10 ETH by anvil account 0, as a
/// faucet would) in a keystore written by `cast wallet import` (docs/deploy.md), the
/// `plasma-deploy` binary reading it with `--password-file` and waiting `confirmations` blocks
/// per transaction; the addresses come from the contracts.json it writes. Returns them and the
/// keystore and password file (the operator signs with the same key).
async fn deploy_from_keystore(
    anvil: &AnvilInstance,
    provider: &DynProvider,
    dir: &Path,
    options: &DevnetOptions,
    confirmations: u64,
) -> Result<(Deployment, (PathBuf, PathBuf)), HarnessError> {
    use alloy::{network::TransactionBuilder, rpc::types::TransactionRequest};
    let key = PrivateKeySigner::from_bytes(&alloy::primitives::keccak256(format!(
        "plasma testnet deployer {}",
        anvil.port()
    )))
    .map_err(err)?;
    let eth = U256::from(10u64).pow(U256::from(18));
    let funding =
        TransactionRequest::default().with_to(key.address()).with_value(eth * U256::from(10));
    let receipt =
        provider.send_transaction(funding).await.map_err(err)?.get_receipt().await.map_err(err)?;
    if !receipt.status() {
        return Err(HarnessError("funding the deployer reverted".into()));
    }
    let keystores = dir.join("keystores");
    std::fs::create_dir_all(&keystores).map_err(err)?;
    let password = dir.join("deployer.password");
    std::fs::write(&password, "correct horse battery staple\n").map_err(err)?;
    let cast = plasma_contracts::devnet::anvil_binary().with_file_name("cast");
    let out = Command::new(&cast)
        .args(["wallet", "import", "deployer", "--private-key"])
        .arg(format!("0x{}", hex::encode(key.to_bytes())))
        .arg("--unsafe-password")
        .arg("correct horse battery staple")
        .arg("--keystore-dir")
        .arg(&keystores)
        .output()
        .map_err(|e| HarnessError(format!("{}: {e}", cast.display())))?;
    if !out.status.success() {
        return Err(HarnessError(format!(
            "cast wallet import: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let keystore = keystores.join("deployer");
    let contracts = dir.join("contracts.json");
    let out = Command::new(bin_dir().join("plasma-deploy"))
        .args(["--l1.rpc-url", &anvil.endpoint(), "--keystore"])
        .arg(&keystore)
        .arg("--password-file")
        .arg(&password)
        .args(["--exit.min-period", &options.period.to_string()])
        .args(["--confirmations", &confirmations.to_string(), "--out"])
        .arg(&contracts)
        .env_remove("PLASMA_DEPLOYER_KEY")
        .env_remove("PLASMA_KEYSTORE_PASSWORD")
        .output()
        .map_err(|e| {
            HarnessError(format!(
                "plasma-deploy from {}: {e} (build it first)",
                bin_dir().display()
            ))
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(HarnessError(format!("plasma-deploy failed:\n{stderr}")));
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&contracts).map_err(err)?).map_err(err)?;
    let address = |name: &str| -> Result<Address, HarnessError> {
        json[name]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| HarnessError(format!("contracts.json has no {name}: {json}")))
    };
    let deployment = Deployment {
        framework: address("framework")?,
        standard_exit_game: address("standardExitGame")?,
        in_flight_exit_game: address("inFlightExitGame")?,
        batch_exit_game: address("batchExitGame")?,
    };
    // What the file records must be what L1 holds.
    if json["chainId"].as_u64() != Some(anvil.chain_id())
        || address("operator")? != key.address()
        || address("deployer")? != key.address()
    {
        return Err(HarnessError(format!("contracts.json does not match the chain: {json}")));
    }
    let framework = PlasmaFramework::new(deployment.framework, provider.clone());
    if framework.batchExitGame().call().await.map_err(err)? != deployment.batch_exit_game {
        return Err(HarnessError("the deployed framework is not bound to its games".into()));
    }
    Ok((deployment, (keystore, password)))
}

impl Devnet {
    /// Starts anvil, deploys, and starts the operator and the watcher binaries.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::start_with_deposit_confirmations(1).await
    }

    /// As [`Devnet::start`], with the operator crediting deposits only `depth` L1 blocks deep
    /// (LEDGER-7), as a production operator does.
    pub async fn start_with_deposit_confirmations(depth: u64) -> Result<Self, HarnessError> {
        Self::start_with_options(depth, PERIOD, 1).await
    }

    /// As [`Devnet::start`], with challenge period `period` and the watcher's availability
    /// timeout `availability_timeout` (seconds), as `scripts/devnet --exit-period` derives it.
    pub async fn start_with_period(
        period: u64,
        availability_timeout: u64,
    ) -> Result<Self, HarnessError> {
        Self::start_with_options(1, period, availability_timeout).await
    }

    async fn start_with_options(
        depth: u64,
        period: u64,
        availability_timeout: u64,
    ) -> Result<Self, HarnessError> {
        Self::start_with(DevnetOptions {
            deposit_confirmations: depth,
            period,
            availability_timeout,
            ..DevnetOptions::default()
        })
        .await
    }

    /// Starts a devnet set up by `options`.
    pub async fn start_with(options: DevnetOptions) -> Result<Self, HarnessError> {
        let dir = tempfile::tempdir().map_err(err)?;
        let mut launcher = anvil_keeping(None, &dir.path().join("anvil-state.json"));
        if let Some(id) = options.chain_id {
            launcher = launcher.chain_id(id);
        }
        if let Some(seconds) = options.block_time {
            launcher = launcher.block_time(seconds);
        }
        let (anvil, provider, deployment, operator_keystore) = match options.deploy_from_keystore {
            None => {
                let LocalChain { anvil, provider, deployment } =
                    LocalChain::start_with(launcher, options.period).await.map_err(err)?;
                (anvil, provider, deployment, None)
            }
            Some(confirmations) => {
                let anvil = launcher.try_spawn().map_err(err)?;
                let key0: PrivateKeySigner = anvil.keys()[0].clone().into();
                let provider = ProviderBuilder::new()
                    .wallet(EthereumWallet::from(key0))
                    .connect_http(anvil.endpoint_url())
                    .erased();
                let (deployment, keystore) =
                    deploy_from_keystore(&anvil, &provider, dir.path(), &options, confirmations)
                        .await?;
                (anvil, provider, deployment, Some(keystore))
            }
        };
        let watcher: PrivateKeySigner = anvil.keys()[9].clone().into();
        let published =
            std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let upstream = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut net = Self {
            deposit_confirmations: options.deposit_confirmations,
            period: options.period,
            availability_timeout: options.availability_timeout,
            published,
            upstream,
            proxy_url: String::new(),
            operator_url: String::new(),
            watcher_url: String::new(),
            watcher: watcher.address(),
            anvil,
            provider,
            deployment,
            dir,
            operator: None,
            watcher_process: None,
            towers: None,
            operator_extra: String::new(),
            options,
            operator_keystore,
            ha: None,
        };
        match net.options.ha.clone() {
            Some(ha) => net.start_ha(&ha).await?,
            None => net.start_operator().await?,
        }
        let proxy = net.start_proxy().await?;
        net.start_watcher_at(&proxy).await?;
        Ok(net)
    }

    /// The operator's L1 address (the deployer's: anvil account 0, or the keystore's key).
    pub fn operator_address(&self) -> Result<Address, HarnessError> {
        match &self.operator_keystore {
            None => Ok(PrivateKeySigner::from(self.anvil.keys()[0].clone()).address()),
            Some((keystore, password)) => {
                let pw = std::fs::read_to_string(password).map_err(err)?;
                PrivateKeySigner::decrypt_keystore(keystore, pw.trim_end())
                    .map(|k| k.address())
                    .map_err(err)
            }
        }
    }

    /// The operator's configuration file: listening on loopback `port`, its files in `data_dir`.
    fn operator_config(&self, port: u16, data_dir: &Path) -> String {
        // The key: a keystore off the devnet, else account 0's raw key (from the environment,
        // see `operator_command`).
        let key = match &self.operator_keystore {
            Some((keystore, password)) => {
                format!("keystore = {keystore:?}\nkeystore_password_file = {password:?}\n")
            }
            None => String::new(),
        };
        format!(
            "devnet = {}\ndata_dir = {:?}\nlisten = \"127.0.0.1:{port}\"\n[l1]\nrpc_url = \"{}\"\nframework = \"{}\"\npoll_interval_ms = 50\ndeposit_confirmations = {}\n{key}[block]\ninterval_ms = 100\n",
            self.options.operator_devnet,
            data_dir,
            self.anvil.endpoint(),
            self.deployment.framework,
            self.deposit_confirmations
        ) + &self.operator_extra
    }

    /// `plasma-operator run --config <config>` with the devnet's key and logs at `info`.
    fn operator_command(&self, config: &Path) -> Command {
        let mut command = Command::new(bin_dir().join("plasma-operator"));
        if self.operator_keystore.is_none() {
            command.env("PLASMA_OPERATOR_L1_PRIVATE_KEY", key_hex(&self.anvil, 0));
        }
        command.args(["run", "--config"]).arg(config).env("RUST_LOG", "info");
        command
    }

    /// Starts (or restarts, on the same data) the operator binary.
    pub async fn start_operator(&mut self) -> Result<(), HarnessError> {
        // A restart reuses the port, so wallets and the watcher keep talking to the same URL.
        let port = match self.operator_url.rsplit(':').next().and_then(|p| p.parse().ok()) {
            Some(p) => p,
            None => free_port()?,
        };
        let log = self.dir.path().join("operator.log");
        let config = self.dir.path().join("operator.toml");
        std::fs::write(&config, self.operator_config(port, &self.dir.path().join("operator-data")))
            .map_err(err)?;
        let mut child = self
            .operator_command(&config)
            .stdout(std::fs::File::create(&log).map_err(err)?)
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).map_err(err)?)
            .spawn()
            .map_err(|e| {
                HarnessError(format!(
                    "plasma-operator from {}: {e} (build it first)",
                    bin_dir().display()
                ))
            })?;
        self.operator_url = format!("http://127.0.0.1:{port}");
        wait_healthy(&self.operator_url, &mut child, &log).await?;
        self.operator = Some(child);
        if let Ok(mut u) = self.upstream.lock() {
            u.clone_from(&self.operator_url);
        }
        Ok(())
    }

    /// The watcher reads blocks through this proxy: it forwards to the real operator, except for
    /// blocks the byzantine operator published (see [`Devnet::publish_block`]).
    async fn start_proxy(&self) -> Result<String, HarnessError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(err)?;
        let addr = listener.local_addr().map_err(err)?;
        let (published, upstream) = (self.published.clone(), self.upstream.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let (http, published, upstream) =
                    (http.clone(), published.clone(), upstream.clone());
                tokio::spawn(async move {
                    // Read the whole request head before answering: closing a socket with unread
                    // bytes resets the connection under the client.
                    let mut request_bytes = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !request_bytes.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => request_bytes.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let request = String::from_utf8_lossy(&request_bytes).to_string();
                    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    // The headers a block download depends on (OP-9: the wire format, ranges).
                    let header = |name: &str| {
                        request.lines().find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                        })
                    };
                    let injected = path
                        .strip_prefix("/v1/blocks/")
                        .and_then(|b| b.parse::<u64>().ok())
                        .and_then(|b| published.lock().ok()?.get(&b).cloned());
                    let (status, content_type, extra, body): (u16, String, String, Vec<u8>) =
                        match injected {
                            Some(wire) => {
                                (200, plasma_spec::wire::MEDIA_TYPE.to_owned(), String::new(), wire)
                            }
                            None => {
                                let base = upstream.lock().map(|u| u.clone()).unwrap_or_default();
                                let mut req = http.get(format!("{base}{path}"));
                                for name in ["accept", "range"] {
                                    if let Some(v) = header(name) {
                                        req = req.header(name, v);
                                    }
                                }
                                match req.send().await {
                                    Ok(r) => {
                                        let status = r.status().as_u16();
                                        let get = |n: &str| {
                                            r.headers()
                                                .get(n)
                                                .and_then(|v| v.to_str().ok())
                                                .map(str::to_owned)
                                        };
                                        let content_type = get("content-type")
                                            .unwrap_or_else(|| "application/json".to_owned());
                                        let extra = get("content-range")
                                            .map(|v| format!("content-range: {v}\r\n"))
                                            .unwrap_or_default();
                                        let body =
                                            r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                                        (status, content_type, extra, body)
                                    }
                                    Err(_) => (
                                        502,
                                        "application/json".to_owned(),
                                        String::new(),
                                        b"{\"error\":{\"code\":\"Upstream\",\"message\":\"operator down\"}}".to_vec(),
                                    ),
                                }
                            }
                        };
                    let mut response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    response.extend_from_slice(&body);
                    let _ = sock.write_all(&response).await;
                });
            }
        });
        Ok(format!("http://{addr}"))
    }

    /// The URL the watcher reads the operator through.
    pub fn watcher_operator_url(&self) -> &str {
        &self.proxy_url
    }

    /// Makes a committed block available to the watcher, as a byzantine operator would serve it.
    pub fn publish_block(&self, blknum: u64, signed_txs: &[SignedTransaction]) {
        // Served in the wire format (OP-9) with the root the transactions hash to: what a
        // byzantine operator that committed this block would serve.
        let txs: Vec<Vec<u8>> = signed_txs.iter().map(SignedTransaction::encode).collect();
        let leaves: Vec<Vec<u8>> = signed_txs.iter().map(|t| t.transaction.encode()).collect();
        let root = plasma_spec::BlockTree::from_txs(&leaves).map(|t| t.root()).unwrap_or_default();
        let Ok(wire) =
            plasma_spec::wire::encode_block(blknum, root, &txs, plasma_spec::wire::Encoding::Plain)
        else {
            return;
        };
        if let Ok(mut p) = self.published.lock() {
            p.insert(blknum, wire);
        }
    }

    /// Replaces the watcher's extra arguments ([`DevnetOptions::watcher_args`]); they take effect
    /// at the next [`Self::restart_watcher`].
    pub fn set_watcher_args(&mut self, args: Vec<String>) {
        self.options.watcher_args = args;
    }

    /// SIGKILLs the watcher (its state stays on disk) and starts it again.
    pub async fn restart_watcher(&mut self) -> Result<(), HarnessError> {
        if let Some(mut c) = self.watcher_process.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let proxy = self.proxy_url.clone();
        self.start_watcher_at(&proxy).await
    }

    async fn start_watcher_at(&mut self, operator_url: &str) -> Result<(), HarnessError> {
        self.proxy_url = operator_url.to_owned();
        // A tower keeps its port (the operator and its peers know it); a plain watcher takes any.
        let port = match &self.towers {
            Some(t) => t.ports[0],
            None => free_port()?,
        };
        let da_args = self.towers.as_ref().map(|t| t.args(0)).unwrap_or_default();
        let log = self.dir.path().join("watcher.log");
        let mut child = Command::new(bin_dir().join("plasma-watcher"))
            .args([
                "--l1.rpc-url",
                &self.anvil.endpoint(),
                "--l1.framework",
                &self.deployment.framework.to_string(),
            ])
            .args(["--operator.url", operator_url, "--api.listen", &format!("127.0.0.1:{port}")])
            .args([
                "--availability-timeout",
                &self.availability_timeout.to_string(),
                "--stuck-after",
                &(self.period / 10).clamp(1, 5).to_string(),
                "--l1.block-time",
                &self.options.block_time.unwrap_or(1).to_string(),
                "--poll-ms",
                "50",
                "--data-dir",
            ])
            .arg(self.dir.path().join("watcher-data"))
            .args(&da_args)
            .args(self.options.watcher_processes_exits.then_some("--process-exits"))
            .args(&self.options.watcher_args)
            .env("PLASMA_WATCHER_L1_PRIVATE_KEY", key_hex(&self.anvil, 9))
            .env("RUST_LOG", "info")
            .stdout(std::fs::File::create(&log).map_err(err)?)
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).map_err(err)?)
            .spawn()
            .map_err(|e| {
                HarnessError(format!(
                    "plasma-watcher from {}: {e} (build it first)",
                    bin_dir().display()
                ))
            })?;
        self.watcher_url = format!("http://127.0.0.1:{port}");
        wait_healthy(&self.watcher_url, &mut child, &log).await?;
        self.watcher_process = Some(child);
        Ok(())
    }

    /// SIGKILLs the operator (its state stays on disk).
    pub fn kill_operator(&mut self) {
        if let Some(mut c) = self.operator.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the L1 node gracefully (it writes its chain to disk) and returns the time of its
    /// last block. The operator and the watcher keep running and see L1 unreachable.
    pub async fn stop_anvil(&mut self) -> Result<u64, HarnessError> {
        let last = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(err)?
            .ok_or_else(|| HarnessError("no latest block".into()))?
            .header
            .timestamp;
        let pid = self.anvil.child().id();
        let status =
            Command::new("kill").args(["-TERM", &pid.to_string()]).status().map_err(err)?;
        if !status.success() {
            return Err(HarnessError(format!("kill -TERM {pid} failed")));
        }
        self.anvil.child_mut().wait().map_err(err)?;
        Ok(last)
    }

    /// Starts the L1 node again on the same port from the chain it wrote when stopped. Its clock
    /// is set past `last_timestamp` (what [`Devnet::stop_anvil`] returned) first: anvil forgets
    /// time jumps across a restart, and L1 time never goes backwards.
    pub async fn restart_anvil(&mut self, last_timestamp: u64) -> Result<(), HarnessError> {
        self.anvil =
            anvil_keeping(Some(self.anvil.port()), &self.dir.path().join("anvil-state.json"))
                .try_spawn()
                .map_err(err)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(err)?
            .as_secs();
        if last_timestamp >= now {
            self.provider
                .raw_request::<_, serde_json::Value>(
                    "evm_increaseTime".into(),
                    (last_timestamp + 1 - now,),
                )
                .await
                .map_err(err)?;
        }
        Ok(())
    }

    /// What `account` paid in L1 transaction fees in blocks `from_block..` (to the wei), so tests
    /// can check L1 balances exactly.
    pub async fn fees_paid(&self, account: Address, from_block: u64) -> Result<U256, HarnessError> {
        let head = self.provider.get_block_number().await.map_err(err)?;
        let mut paid = U256::ZERO;
        for n in from_block..=head {
            let receipts =
                self.provider.get_block_receipts(n.into()).await.map_err(err)?.unwrap_or_default();
            for r in receipts.iter().filter(|r| r.from == account) {
                paid += U256::from(r.gas_used) * U256::from(r.effective_gas_price);
            }
        }
        Ok(paid)
    }

    /// The signed bytes of L1 transaction `hash`, to include it again in a reorganised chain.
    pub async fn raw_transaction(
        &self,
        hash: B256,
    ) -> Result<alloy::primitives::Bytes, HarnessError> {
        self.provider.raw_request("eth_getRawTransactionByHash".into(), (hash,)).await.map_err(err)
    }

    /// Replaces L1's last `depth` blocks by as many new ones; the new first block holds `replay`
    /// (signed transactions, in order) and nothing else is carried over.
    pub async fn reorg(
        &self,
        depth: u64,
        replay: &[alloy::primitives::Bytes],
    ) -> Result<(), HarnessError> {
        let pairs: Vec<serde_json::Value> =
            replay.iter().map(|raw| serde_json::json!([raw, 0])).collect();
        self.provider
            .raw_request::<_, serde_json::Value>("anvil_reorg".into(), (depth, pairs))
            .await
            .map_err(err)?;
        Ok(())
    }

    /// The chain id a wallet is configured with: anvil's on a default devnet; none (read from L1,
    /// as the `plasma` CLI does) on one with its own chain id.
    fn wallet_chain_id(&self) -> Option<u64> {
        self.options.chain_id.is_none().then(|| self.anvil.chain_id())
    }

    /// A wallet for anvil account `i`.
    pub async fn wallet(&self, i: usize) -> Result<Wallet, HarnessError> {
        let config = WalletConfig {
            l1_rpc_url: self.anvil.endpoint(),
            operator_url: self.operator_url.clone(),
            framework: self.deployment.framework,
            chain_id: self.wallet_chain_id(),
            store_path: self.dir.path().join(format!("wallet-{i}.redb")),
        };
        Wallet::connect(self.anvil.keys()[i].clone().into(), &config).await.map_err(err)
    }

    /// A wallet for anvil account `i` configured with several operator URLs (a highly available
    /// operator's: see [`Devnet::operator_urls`]), which it fails over between.
    pub async fn wallet_on(
        &self,
        i: usize,
        operator_urls: &[String],
    ) -> Result<Wallet, HarnessError> {
        let config = WalletConfig {
            l1_rpc_url: self.anvil.endpoint(),
            // The SDK's list form: URLs separated by commas, asked in this order.
            operator_url: operator_urls.join(","),
            framework: self.deployment.framework,
            chain_id: self.wallet_chain_id(),
            store_path: self.dir.path().join(format!("wallet-{i}.redb")),
        };
        Wallet::connect(self.anvil.keys()[i].clone().into(), &config).await.map_err(err)
    }

    /// A wallet for an arbitrary key (its L1 ETH must come from somewhere, see `fund`).
    pub async fn wallet_for(
        &self,
        key: PrivateKeySigner,
        name: &str,
    ) -> Result<Wallet, HarnessError> {
        let config = WalletConfig {
            l1_rpc_url: self.anvil.endpoint(),
            operator_url: self.operator_url.clone(),
            framework: self.deployment.framework,
            chain_id: self.wallet_chain_id(),
            store_path: self.dir.path().join(format!("wallet-{name}.redb")),
        };
        Wallet::connect(key, &config).await.map_err(err)
    }

    /// Sends `amount` wei of L1 ETH from anvil's account 8 to `to`.
    pub async fn fund(&self, to: Address, amount: U256) -> Result<(), HarnessError> {
        use alloy::{network::TransactionBuilder, rpc::types::TransactionRequest};
        let tx = TransactionRequest::default().with_to(to).with_value(amount);
        let receipt = self
            .provider_for(8)
            .send_transaction(tx)
            .await
            .map_err(err)?
            .get_receipt()
            .await
            .map_err(err)?;
        if receipt.status() { Ok(()) } else { Err(HarnessError("funding reverted".into())) }
    }

    /// A provider signing as anvil account `i`.
    pub fn provider_for(&self, i: usize) -> DynProvider {
        let key: PrivateKeySigner = self.anvil.keys()[i].clone().into();
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(key))
            .connect_http(self.anvil.endpoint_url())
            .erased()
    }

    /// Moves L1 time forward and mines a block.
    pub async fn advance(&self, seconds: u64) -> Result<(), HarnessError> {
        self.provider
            .raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (seconds,))
            .await
            .map_err(err)?;
        self.provider
            .raw_request::<_, serde_json::Value>("anvil_mine".into(), (1u64,))
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Hands the watcher `owner`'s exit authorization (EXIT-9), so it exits for them on a
    /// byzantine chain.
    pub async fn guard(&self, owner: &Wallet) -> Result<(), HarnessError> {
        let (auth, sig) =
            owner.authorize_watchtower(self.watcher, 4_000_000_000).await.map_err(err)?;
        let body = serde_json::json!({
            "owner": owner.address(), "deadline": auth.deadline, "nonce": auth.nonce, "signature": sig
        });
        let r = reqwest::Client::new()
            .post(format!("{}/v1/guards", self.watcher_url))
            .json(&body)
            .send()
            .await
            .map_err(err)?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(HarnessError(format!("guard refused: {}", r.text().await.unwrap_or_default())))
        }
    }

    /// Waits until the watcher has paid out every claim of its processed batch exits (EXIT-15):
    /// no claim of them is still live on L1.
    pub async fn wait_batch_payouts(&self) -> Result<(), HarnessError> {
        let batch = BatchExitGame::new(self.deployment.batch_exit_game, self.provider.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let processed: std::collections::HashSet<U256> = batch
                .BatchExitProcessed_filter()
                .from_block(0)
                .query()
                .await
                .map_err(err)?
                .into_iter()
                .map(|(e, _)| e.batchId)
                .collect();
            let mut live = 0usize;
            for (e, _) in
                batch.BatchExitStarted_filter().from_block(0).query().await.map_err(err)?
            {
                if e.exitor != self.watcher || !processed.contains(&e.batchId) {
                    continue;
                }
                let count = u64::try_from(e.count).map_err(err)?;
                for i in 0..count {
                    if batch.claimState(e.batchId, U256::from(i)).call().await.map_err(err)? == 0 {
                        live += 1;
                    }
                }
            }
            if live == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(HarnessError(format!("{live} claims never paid out\n{}", self.logs())));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Moves L1 time past every exit's period and waits until the watcher has emptied `token`'s
    /// exit queue and paid out its processed batch exits.
    pub async fn process_all_exits(&self, token: Address) -> Result<(), HarnessError> {
        self.advance(3 * self.period).await?;
        let framework = PlasmaFramework::new(self.deployment.framework, self.provider.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !framework.queueHead(token).call().await.map_err(err)?.head.is_zero() {
            if tokio::time::Instant::now() > deadline {
                return Err(HarnessError(format!("queue not drained\n{}", self.logs())));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.wait_batch_payouts().await
    }

    /// Checks that L1 holds one commitment per child block number, in sequence, and no root
    /// twice; returns the next child block number.
    pub async fn assert_committed_once(&self) -> Result<u64, HarnessError> {
        let framework = PlasmaFramework::new(self.deployment.framework, self.provider.clone());
        let next = framework.nextChildBlock().call().await.map_err(err)?;
        let submitted =
            framework.BlockSubmitted_filter().from_block(0).query().await.map_err(err)?;
        if submitted.len() as u64 != (next - 1000) / 1000 {
            return Err(HarnessError(format!(
                "{} commitments for {} block numbers",
                submitted.len(),
                (next - 1000) / 1000
            )));
        }
        let mut roots: Vec<B256> = submitted.iter().map(|(e, _)| e.root).collect();
        roots.sort();
        roots.dedup();
        if roots.len() != submitted.len() {
            return Err(HarnessError("a root was submitted twice".into()));
        }
        Ok(next)
    }

    /// Mines `n` empty L1 blocks (deposits become `n` blocks deeper).
    pub async fn mine(&self, n: u64) -> Result<(), HarnessError> {
        self.provider
            .raw_request::<_, serde_json::Value>("anvil_mine".into(), (n,))
            .await
            .map_err(err)?;
        Ok(())
    }

    /// The watcher's `/status` and `/events`.
    pub async fn watcher_state(
        &self,
    ) -> Result<(serde_json::Value, serde_json::Value), HarnessError> {
        let status = reqwest::get(format!("{}/status", self.watcher_url))
            .await
            .map_err(err)?
            .json()
            .await
            .map_err(err)?;
        let events = reqwest::get(format!("{}/events", self.watcher_url))
            .await
            .map_err(err)?
            .json()
            .await
            .map_err(err)?;
        Ok((status, events))
    }

    /// Polls the watcher until `check` holds on its (status, events).
    pub async fn wait_watcher(
        &self,
        what: &str,
        check: impl Fn(&serde_json::Value, &serde_json::Value) -> bool,
    ) -> Result<(), HarnessError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (s, e) = self.watcher_state().await?;
            if check(&s, &e) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(HarnessError(format!(
                    "watcher never reached `{what}`: {s} {e}\n{}",
                    self.logs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Both processes' logs.
    pub fn logs(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        let mut logs = format!(
            "--- operator.log\n{}\n--- watcher.log\n{}",
            read("operator.log"),
            read("watcher.log")
        );
        for i in 1..self.towers.as_ref().map_or(0, |t| t.ports.len()) {
            let name = format!("tower-{i}.log");
            logs.push_str(&format!("\n--- {name}\n{}", read(&name)));
        }
        if let Some(ha) = &self.ha {
            logs.push_str(&ha.logs());
        }
        logs
    }

    /// A byzantine operator using the operator's L1 key.
    pub fn byzantine_operator(&self) -> ByzantineOperator {
        ByzantineOperator {
            framework: PlasmaFramework::new(self.deployment.framework, self.provider_for(0)),
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        self.kill_operator();
        if let Some(mut c) = self.watcher_process.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for i in 1..self.towers.as_ref().map_or(0, |t| t.ports.len()) {
            self.kill_tower(i);
        }
    }
}

/// The chaos tests' small deterministic generator (xorshift): the seed is printed, and
/// `PLASMA_CHAOS_SEED` replays a run.
#[derive(Debug)]
pub struct Chaos(u64);

impl Chaos {
    /// Seeded from `PLASMA_CHAOS_SEED`, else the clock; prints the seed.
    pub fn from_env() -> Self {
        let seed = std::env::var("PLASMA_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("chaos seed {seed} (PLASMA_CHAOS_SEED={seed} replays this run)");
        Self(seed | 1)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// What a malicious operator can do on L1 with its key.
#[derive(Debug)]
pub struct ByzantineOperator {
    framework: PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
}

/// A block the byzantine operator committed: its transactions (which it withholds from everyone
/// else), root and L1 timestamp.
#[derive(Clone, Debug)]
pub struct CommittedBlock {
    /// The block number.
    pub blknum: u64,
    /// Its transactions (leaves).
    pub txs: Vec<Vec<u8>>,
    /// The L1 timestamp of the commitment.
    pub timestamp: u64,
}

impl ByzantineOperator {
    /// Commits the root of a block of `txs` (valid or not) without serving it to anyone.
    pub async fn commit_withheld(
        &self,
        txs: Vec<SignedTransaction>,
    ) -> Result<CommittedBlock, HarnessError> {
        let leaves: Vec<Vec<u8>> = txs.iter().map(|t| t.transaction.encode()).collect();
        let root = BlockTree::from_txs(&leaves).map_err(err)?.root();
        let blknum = self.framework.nextChildBlock().call().await.map_err(err)?;
        let receipt = self
            .framework
            .submitBlock(U256::from(blknum), root)
            .send()
            .await
            .map_err(err)?
            .get_receipt()
            .await
            .map_err(err)?;
        let ev = receipt
            .decoded_log::<PlasmaFramework::BlockSubmitted>()
            .ok_or_else(|| HarnessError("no BlockSubmitted".into()))?;
        Ok(CommittedBlock {
            blknum: ev.blknum.try_into().map_err(err)?,
            txs: leaves,
            timestamp: ev.timestamp,
        })
    }

    /// A payment the operator fabricates: it spends `victim_pos` to the thief without the
    /// owner's signature (signed by the thief's own key instead), so the block is invalid.
    pub fn steal(
        victim_pos: u128,
        amount: U256,
        thief: &plasma_spec::Signer,
        domain: &plasma_spec::SigningDomain,
    ) -> Result<SignedTransaction, HarnessError> {
        let pos = plasma_spec::UtxoPos::from_u128(victim_pos).map_err(err)?;
        let tx = Transaction::payment(
            &[pos],
            vec![plasma_spec::Output::new(thief.address(), Address::ZERO, amount)],
            B256::ZERO,
        );
        let sig = thief.sign_tx(domain, &tx);
        Ok(SignedTransaction::new(tx, vec![sig]))
    }
}
