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
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Starts everything; returns once the API is listening.
    pub async fn start(config: Config) -> Result<Self, NodeError> {
        config.validate()?;
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
        let store = Store::open_with_cache(
            &config.data_dir.join("operator.redb"),
            config.store.cache_mb.saturating_mul(1024 * 1024),
        )?;
        let chain = Arc::new(Chain::open(
            store,
            domain.clone(),
            config.block.fee_recipient.unwrap_or(operator),
            config.api.max_mempool,
        )?);
        let health =
            Arc::new(Mutex::new(L1Health { endpoints: endpoint_health, ..L1Health::default() }));
        let (shutdown, rx) = watch::channel(false);
        let da = match &config.da {
            Some(da) => Some(Arc::new(Distributor::new(
                da,
                config.devnet,
                domain,
                da_signer,
                chain.clone(),
                &config.l1.client_options(),
            )?)),
            None => None,
        };
        let settings = L1Settings {
            framework: config.l1.framework,
            operator,
            deposit_confirmations: config.l1.deposit_confirmations,
            commit_confirmations: config.l1.commit_confirmations,
            finality_depth: config.l1.finality_depth,
            poll: config.l1.poll_interval(),
            stuck_after: std::time::Duration::from_millis(config.l1.stuck_after_ms),
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
            tasks.push(tokio::spawn(da.clone().run(rx.clone())));
        }
        if !config.faults.withhold.is_empty() {
            tracing::warn!(target: "operator", blocks = ?config.faults.withhold, "devnet fault: these blocks are distributed and committed but never served (BlockWithheld)");
        }

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| NodeError::Listen { addr: config.listen, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| NodeError::Listen { addr: config.listen, source })?;
        let (submissions, queue) = tokio::sync::mpsc::channel(65_536);
        tasks.push(tokio::spawn(api::run_group_committer(chain.clone(), queue)));
        let ctx = Arc::new(ApiContext {
            submissions,
            chain: chain.clone(),
            l1: health,
            max_body_bytes: config.api.max_body_bytes,
            max_batch: config.api.max_batch,
            metrics: api::Metrics::default(),
            da,
            withheld: config.faults.withhold.iter().copied().collect(),
        });
        let mut stop = rx;
        let server = warp::serve(api::routes(ctx)).incoming(listener).graceful(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        tasks.push(tokio::spawn(server.run()));
        info!(target: "operator", %addr, chain_id, framework = %config.l1.framework, %operator, "operator started");
        Ok(Self { addr, chain, shutdown, tasks })
    }

    /// Stops every task and waits for them.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

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
        match tokio::task::spawn_blocking(produce).await {
            Ok(Ok(_)) => last = tokio::time::Instant::now(),
            Ok(Err(e)) => error!(target: "operator::block", error = %e, "block production failed"),
            Err(e) => error!(target: "operator::block", error = %e, "block production panicked"),
        }
    }
}
