//! Restart time with a large UTXO set: writes N unspent outputs (default 1,000,000) to a fresh
//! store, then times reopening it into a serving `Chain` (load + in-memory indexes).
//!
//! Run: `cargo bench -p plasma-operator --bench restart` (`PLASMA_RESTART_UTXOS=100000` for less;
//! `PLASMA_RESTART_STORE=postgres` on a throwaway local PostgreSQL; `benches/store_backends.rs`
//! runs both side by side).

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs)]

mod common;

use common::Backend;

/// The daemon's allocator (`main.rs`): what is measured is what the daemon runs on.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let n = common::env_usize("PLASMA_RESTART_UTXOS").unwrap_or(1_000_000) as u64;
    let backend = Backend::from_env("PLASMA_RESTART_STORE");
    let r = common::restart(backend, n);
    println!("| Measure ({}) | Result |", backend.name());
    println!("|---|---:|");
    println!("| UTXOs | {n} |");
    println!("| database size | {:.0} MB |", r.size_mb);
    println!("| writing them (100k per commit) | {:.1} s |", r.write.as_secs_f64());
    println!("| restart: open + load into a serving chain | {:.2} s |", r.open.as_secs_f64());
}
