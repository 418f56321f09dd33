//! What the HA tests share (issue #21): a real PostgreSQL (`plasma-test-postgres`, a throwaway
//! server), a real anvil with the real contracts, and operators on them as in-process `HaNode`s.
//!
//! Include it with `#[path = "common/ha.rs"] mod ha_env;` (not through `common/mod.rs`: the
//! tests without PostgreSQL then carry none of it).

// Test helpers panic on setup failures by design; not every test uses every helper.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default, dead_code)]

use alloy::{node_bindings::AnvilInstance, providers::DynProvider};
use plasma_contracts::Deployment;
use plasma_operator::{Config, HaNode};
use plasma_spec::{Signer, SigningDomain};
use plasma_test_postgres::TempPostgres;
use std::time::Duration;

// Its own copy: the PostgreSQL tests include this file without `common/mod.rs`; those that
// include both get the small file twice, which is harmless.
#[allow(clippy::duplicate_mod)]
#[path = "devnet.rs"]
mod devnet;

/// The lease the tests run with: short, so a takeover takes about a second.
pub(crate) const LEASE_MS: u64 = 1_000;

/// One anvil with the contracts deployed, one PostgreSQL, two funded users.
pub(crate) struct Env {
    pub(crate) anvil: AnvilInstance,
    /// Signs with anvil's first three keys (the operator's, alice's, bob's).
    pub(crate) provider: DynProvider,
    pub(crate) deployment: Deployment,
    pub(crate) domain: SigningDomain,
    pub(crate) alice: Signer,
    pub(crate) bob: Signer,
    pub(crate) pg: TempPostgres,
}

/// Starts the environment; the election's transitions go to the test's output
/// (`RUST_LOG=operator::ha=debug` for more).
pub(crate) async fn env() -> Env {
    env_with(TempPostgres::start).await
}

/// [`env`] on a PostgreSQL started by `start` (e.g. with TLS on).
pub(crate) async fn env_with(
    start: impl FnOnce() -> Result<TempPostgres, plasma_test_postgres::Error> + Send + 'static,
) -> Env {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("operator::ha=info")),
        )
        .try_init();
    let pg = tokio::task::spawn_blocking(start).await.unwrap().unwrap();
    let devnet::Chain { anvil, provider, deployment, domain, alice, bob, .. } =
        devnet::chain().await;
    Env { alice, bob, anvil, provider, deployment, domain, pg }
}

/// An operator named `node` on the environment's database, with the one operator key.
pub(crate) fn config(env: &Env, node: &str) -> Config {
    config_at(env, node, env.pg.url())
}

/// [`config`] with another store URL (a proxy in front of the database, TLS options).
pub(crate) fn config_at(env: &Env, node: &str, store_url: &str) -> Config {
    let unused = std::env::temp_dir().join("unused-with-postgres");
    let mut c = devnet::devnet_config(&env.anvil, env.deployment.framework, &unused);
    c.store.url = Some(store_url.to_owned());
    c.store.pool = 2;
    c.ha.lease_ms = LEASE_MS;
    c.ha.node_id = Some(node.to_owned());
    c
}

/// Starts an operator and waits (20 s at most) until it leads.
pub(crate) async fn leader(env: &Env, name: &str) -> HaNode {
    let node = HaNode::start(config(env, name)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), node.leading()).await.expect("never led");
    node
}
