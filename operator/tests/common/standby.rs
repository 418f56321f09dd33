//! What the HA audit files (`audit21b.rs`, `audit21c.rs`) share for processes that run without
//! L1: the operator key a standby must have, test logging, a throwaway PostgreSQL, and a standby's
//! configuration.

// Test set-up panics on failure by design.
#![allow(clippy::unwrap_used, dead_code)]

use plasma_operator::Config;
use plasma_test_postgres::TempPostgres;

/// The lease the audit tests run with.
pub(crate) const LEASE_MS: u64 = 1_000;

/// anvil's first well-known key: a standby must have a signer, and never uses it here.
pub(crate) const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// The operator's logs in the test's output (`RUST_LOG` for more).
pub(crate) fn tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("operator=info")),
        )
        .try_init();
}

/// A throwaway PostgreSQL, with the logs on (blocking: from async code, `spawn_blocking` it).
pub(crate) fn postgres() -> TempPostgres {
    tracing();
    TempPostgres::start().unwrap()
}

/// A standby's configuration on `store_url`; its L1 endpoint is a closed port, so a process that
/// takes the lease cannot start leading (a takeover is observed without L1).
pub(crate) fn standby_config(node: &str, store_url: &str) -> Config {
    let mut c = Config::devnet();
    c.data_dir = std::env::temp_dir().join("unused-with-postgres");
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.store.url = Some(store_url.to_owned());
    c.store.pool = 2;
    c.ha.lease_ms = LEASE_MS;
    c.ha.node_id = Some(node.to_owned());
    c.l1.rpc_url = "http://127.0.0.1:9".into();
    c.l1.private_key = Some(KEY.to_owned());
    c
}
