//! Wiring: opens the state, starts the block producer, the L1 loops and the HTTP server.

use crate::{
    api::{self, ApiContext},
    chain::Chain,
    config::{Config, ConfigError},
    da::Distributor,
    exits,
    l1::{self, L1Health, L1Settings},
    store::{Store, StoreError},
};
use alloy::{network::EthereumWallet, providers::Provider};
use parking_lot::Mutex;
use plasma_spec::SigningDomain;
use std::{net::SocketAddr, sync::Arc};
use tokio::{sync::watch, task::JoinHandle};
use tracing::{error, info};

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// L1 could not be reached at start-up.
    #[error("L1: {0}")]
    L1(String),
    /// The availability distributor could not start.
    #[error("availability: {0}")]
    Da(String),
    /// The store is PostgreSQL: only an elected leader writes it (`HaNode::start`, OP-HA-1).
    #[error(
        "a PostgreSQL store is shared by several operators: start it with HaNode::start, which elects a leader (OP-HA-1)"
    )]
    NeedsElection,
    /// The leader election could not run.
    #[error("leader election: {0}")]
    Election(#[from] crate::leader::LeaseError),
    /// The listen address could not be bound.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// How often every L1 endpoint is asked for its head (the health in `/v1/status`; a failed
/// endpoint is noticed again when it recovers).
const ENDPOINT_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// A running operator.
#[derive(Debug)]
pub struct Node {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The chain state.
    pub chain: Arc<Chain>,
    leading: Leading,
    server: Server,
}

impl Node {
    /// Starts everything; returns once the API is listening. A PostgreSQL store is refused here
    /// ([`NodeError::NeedsElection`]): several processes may share it, so it is only ever written
    /// by the elected leader, through [`crate::HaNode::start`] (OP-HA-1).
    pub async fn start(config: Config) -> Result<Self, NodeError> {
        config.validate()?;
        if config.store.is_postgres() {
            return Err(NodeError::NeedsElection);
        }
        let spec = config.store.spec(&config.data_dir);
        let store = Store::open_with_cache(
            std::path::Path::new(&spec),
            config.store.cache_mb.saturating_mul(1024 * 1024),
        )?;
        let listener = bind(config.listen).await?;
        let addr = listener
            .local_addr()
            .map_err(|source| NodeError::Listen { addr: config.listen, source })?;
        let common =
            api::Common::new(&config, None, crate::config::redact_store_url(&spec), "redb");
        let leading = Leading::start(&config, store, common).await?;
        let server = Server::serve(listener, api::Shared::new(leading.ctx.clone()));
        info!(target: "operator", %addr, chain_id = leading.chain_id, framework = %config.l1.framework, operator = %leading.operator, "operator started");
        Ok(Self { addr, chain: leading.chain.clone(), leading, server })
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        let Self { chain, leading, server, .. } = self;
        server.stop().await;
        drop(chain);
        leading.stop_releasing_chain().await;
    }
}

/// Binds the API's listen address.
pub(crate) async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener, NodeError> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| NodeError::Listen { addr: listen, source })
}

/// The HTTP server: one per process, whatever the role; what it answers is the
/// [`api::Shared`] context of the moment (standby, leader, deposed: OP-HA-4).
#[derive(Debug)]
pub(crate) struct Server {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    pub(crate) fn serve(listener: tokio::net::TcpListener, shared: Arc<api::Shared>) -> Self {
        let (shutdown, mut stop) = watch::channel(false);
        let server = warp::serve(api::routes(shared)).incoming(listener).graceful(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        Self { shutdown, task: tokio::spawn(server.run()) }
    }

    pub(crate) async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Everything a leader runs: the chain, the block producer, the L1 loops (root submitter,
/// deposit and exit followers), the availability distributor and the group committer. A
/// redb operator runs one for its life; an elected one from winning the lease until it stops or
/// loses it (OP-HA-3).
#[derive(Debug)]
pub(crate) struct Leading {
    pub(crate) chain: Arc<Chain>,
    /// The full API's context.
    pub(crate) ctx: Arc<ApiContext>,
    pub(crate) chain_id: u64,
    pub(crate) operator: alloy::primitives::Address,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Leading {
    /// Connects to L1, opens the chain on `store` and starts every task; the API context it
    /// returns is the full (leader's) one.
    pub(crate) async fn start(
        config: &Config,
        store: Store,
        common: api::Common,
    ) -> Result<Self, NodeError> {
        let signer = config.signer()?;
        let operator = signer.address();
        // The same key signs availability headers (DA-4): towers check them against L1's
        // `operator()`.
        let da_signer = plasma_spec::Signer::from_bytes(&signer.to_bytes())
            .ok_or_else(|| ConfigError::Key("not a secp256k1 key".into()))?;
        // Several endpoints, TLS, failover and their health (plasma_contracts::l1); errors and
        // logs name endpoints without their path or query (API keys).
        let endpoints = config.l1.endpoints().map_err(ConfigError::from)?;
        let (provider, endpoint_health) = plasma_contracts::l1::connect_with(
            &endpoints,
            EthereumWallet::from(signer),
            &config.l1.client_options(),
        )
        .map_err(|e| NodeError::L1(e.to_string()))?;
        let chain_id = provider.get_chain_id().await.map_err(|e| {
            NodeError::L1(format!("reading the chain id: {}", plasma_contracts::l1::explain(&e)))
        })?;
        // Every endpoint must be on this chain; one that is not is never used (and shown so).
        endpoint_health.pin_chain_id(chain_id);
        endpoint_health.spawn_probe(ENDPOINT_PROBE_INTERVAL);
        info!(target: "operator", endpoints = %endpoints, "L1 endpoints");
        let domain = SigningDomain::new(chain_id, config.l1.framework);
        // Loading reads the whole UTXO set: off the async workers.
        let (fee_recipient, max_mempool) =
            (config.block.fee_recipient.unwrap_or(operator), config.api.max_mempool);
        let open_domain = domain.clone();
        let chain = tokio::task::spawn_blocking(move || {
            Chain::open(store, open_domain, fee_recipient, max_mempool)
        })
        .await
        .map_err(|e| {
            NodeError::Store(StoreError::Corrupt { what: "load", reason: e.to_string() })
        })??;
        let chain = Arc::new(chain);
        let health =
            Arc::new(Mutex::new(L1Health { endpoints: endpoint_health, ..L1Health::default() }));
        let (shutdown, rx) = watch::channel(false);
        let da = match &config.da {
            Some(da) => Some(Arc::new(
                Distributor::new(
                    da,
                    config.devnet,
                    domain,
                    da_signer,
                    chain.clone(),
                    &config.l1.client_options(),
                )
                .await?,
            )),
            None => None,
        };
        // Where the L1 followers start on a fresh store: the framework's creation block (0 for a
        // deployment from before the getter).
        let framework =
            plasma_contracts::PlasmaFramework::new(config.l1.framework, provider.clone());
        let deployment_block =
            plasma_contracts::deployment_block(&framework).await.map_err(|e| {
                NodeError::L1(format!(
                    "reading the framework's deployment block: {}",
                    plasma_contracts::l1::explain(&e)
                ))
            })?;
        let settings = L1Settings {
            deployment_block,
            framework: config.l1.framework,
            operator,
            deposit_confirmations: config.l1.deposit_confirmations,
            commit_confirmations: config.l1.commit_confirmations,
            finality_depth: config.l1.finality_depth,
            poll: config.l1.poll_interval(),
            stuck_after: std::time::Duration::from_millis(config.l1.stuck_after_ms),
            max_tx_fee: config.l1.max_tx_fee_wei.into(),
        };
        let mut tasks = vec![
            tokio::spawn(l1::run_submitter(
                chain.clone(),
                provider.clone(),
                settings.clone(),
                health.clone(),
                da.clone(),
                rx.clone(),
            )),
            tokio::spawn(exits::run_exit_follower(
                chain.clone(),
                provider.clone(),
                settings.clone(),
                health.clone(),
                rx.clone(),
            )),
            tokio::spawn(l1::run_deposit_follower(
                chain.clone(),
                provider,
                settings,
                health.clone(),
                rx.clone(),
            )),
            tokio::spawn(run_producer(chain.clone(), config.block.clone(), rx.clone())),
        ];
        if let Some(da) = &da {
            tasks.push(tokio::spawn(da.clone().run(rx)));
        }
        if !config.faults.withhold.is_empty() {
            tracing::warn!(target: "operator", blocks = ?config.faults.withhold, "devnet fault: these blocks are distributed and committed but never served (BlockWithheld)");
        }
        let (submissions, queue) = tokio::sync::mpsc::channel(65_536);
        tasks.push(tokio::spawn(api::run_group_committer(chain.clone(), queue)));
        let ctx = Arc::new(ApiContext::leader(common, chain.clone(), submissions, health, da));
        Ok(Self { chain, ctx, chain_id, operator, shutdown, tasks })
    }

    /// Stops every task and waits for them, [`STOP_GRACE`] at most. The group committer ends
    /// when the last handle on its queue (the API context) is gone: this one is dropped first,
    /// the server's before.
    ///
    /// The L1 loops and the producer race each step against `shutdown` and end at once. The
    /// group committer can still wait, for a free slot, on submissions whose store write hangs
    /// (a database that went silent, A21-3): past the grace what is left is aborted (at its
    /// `await`; a store call already running ends with its connection, and the fence refuses
    /// it if another operator leads, OP-HA-2), so a deposed leader's stop never waits on the
    /// database.
    pub(crate) async fn stop(self) {
        self.stop_with(false).await;
    }

    /// [`Leading::stop`], then waits (bounded) until the chain and its store are let go: a redb
    /// store is a file opened once, which a restart in the same process opens again.
    pub(crate) async fn stop_releasing_chain(self) {
        self.stop_with(true).await;
    }

    async fn stop_with(self, release_chain: bool) {
        let Self { ctx, shutdown, tasks, chain, .. } = self;
        drop(ctx);
        let _ = shutdown.send(true);
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        let mut left = 0;
        for mut task in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                left += 1;
            }
        }
        if left > 0 {
            tracing::warn!(target: "operator", tasks = left, grace = ?STOP_GRACE, "tasks still waiting (on the store?) when stopping: aborted");
        }
        // The chain, and with it the store (redb opens a file once: a restart in the same
        // process opens it again), is let go before this returns. A task that ended while its
        // call ran on the blocking pool (a block, a deposit write) leaves that call holding the
        // chain: wait for those, bounded. The last drop runs off the async workers, as it
        // waits for a block's effects written behind it (`Chain`'s `Drop`).
        if !release_chain {
            return;
        }
        let deadline = tokio::time::Instant::now() + CHAIN_RELEASE;
        while Arc::strong_count(&chain) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if Arc::strong_count(&chain) > 1 {
            tracing::warn!(target: "operator", wait = ?CHAIN_RELEASE, "the chain is still in use after stopping; its store closes when that call ends");
        }
        let _ = tokio::task::spawn_blocking(move || drop(chain)).await;
    }
}

/// How long [`Leading::stop`] waits for the leader's tasks before aborting what is left.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// How long [`Leading::stop`] then waits for calls still running on the blocking pool to let
/// the chain go.
const CHAIN_RELEASE: std::time::Duration = std::time::Duration::from_secs(5);

/// Deposits after a child block beyond which the operator commits one even without payments
/// (OP-8): half of BOND-2's 500 free slots, so a burst cannot reach the fee before it lands.
pub const DEPOSIT_SLOTS_BEFORE_BLOCK: u64 = 250;

/// Produces a block every interval when there is something to include, or at once when the
/// mempool reaches the configured size.
async fn run_producer(
    chain: Arc<Chain>,
    config: crate::config::BlockConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last = tokio::time::Instant::now();
    let tick = config.interval().min(std::time::Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = shutdown.changed() => return,
        }
        // OP-8: past DEPOSIT_SLOTS_BEFORE_BLOCK deposits since the last child block, commit one
        // (empty if need be) so honest depositors never reach BOND-2's fee; one at a time.
        let for_deposits =
            chain.deposit_slots_used() > DEPOSIT_SLOTS_BEFORE_BLOCK && !chain.has_uncommitted();
        let due = last.elapsed() >= config.interval() || chain.mempool_len() >= config.max_txs;
        if !for_deposits && (!due || chain.mempool_len() == 0) {
            continue;
        }
        let chain2 = chain.clone();
        let max = config.max_txs;
        let produce = move || {
            if for_deposits {
                chain2.produce_block_for_deposits(max)
            } else {
                chain2.produce_block(max)
            }
        };
        // Produced on the blocking pool (a full block's ledger work and its store write), and
        // raced against the stop: a block write waiting on a hung database must not hold up a
        // stop (A21-3). The write itself runs to its end; its effects reach memory only once
        // durable (OP-3), and the fence refuses it if another operator leads (OP-HA-2).
        let produced = tokio::select! {
            r = tokio::task::spawn_blocking(produce) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match produced {
            Ok(Ok(_)) => last = tokio::time::Instant::now(),
            Ok(Err(e)) => error!(target: "operator::block", error = %e, "block production failed"),
            Err(e) => error!(target: "operator::block", error = %e, "block production panicked"),
        }
    }
}
