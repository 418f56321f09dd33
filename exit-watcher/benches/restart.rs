//! Restart time of the watcher with a large validated UTXO set: N outputs (default 1,000,000)
//! are written to its store, then a watcher is started on it (store load + L1 handshake).
//!
//! Run: `cargo bench -p plasma-watcher --bench restart` (`PLASMA_RESTART_UTXOS=100000` for less).

#![allow(clippy::unwrap_used, missing_docs)]

use alloy::{
    network::EthereumWallet,
    node_bindings::Anvil,
    primitives::{Address, U256, keccak256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{DeployConfig, deploy};
use plasma_spec::{Output, UtxoPos};
use plasma_watcher::{Settings, Watcher, write_view_utxos};
use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: u64 = std::env::var("PLASMA_RESTART_UTXOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let bin = std::env::var_os("ANVIL_BIN").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/anvil")
    });
    let anvil = Anvil::at(bin).spawn();
    let key: PrivateKeySigner = anvil.keys()[0].clone().into();
    let me = key.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(anvil.endpoint_url())
        .erased();
    let d = deploy(provider.clone(), &DeployConfig::devnet(me, 60)).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let utxos: Vec<(UtxoPos, Output)> = (0..n)
        .map(|i| {
            let blknum = 1000 * (1 + i / (5 * 65_536));
            let pos = UtxoPos::new(blknum, ((i / 5) % 65_536) as u16, (i % 5) as u8).unwrap();
            let owner = Address::from_word(keccak256((i % 10_000).to_be_bytes()));
            (pos, Output::new(owner, Address::ZERO, U256::from(i + 1)))
        })
        .collect();
    let write = Instant::now();
    write_view_utxos(dir.path(), &utxos).unwrap();
    let write = write.elapsed();

    let settings = Settings {
        framework: d.framework,
        operator_url: "http://127.0.0.1:1".into(),
        confirmations: 1,
        poll: Duration::from_millis(500),
        availability_timeout: Duration::from_secs(10),
        process_exits: false,
        deadline_margin: Duration::from_secs(3600),
        stuck_after: Duration::from_secs(10),
        l1_block_time: Duration::from_secs(1),
        download: plasma_watcher::DownloadSettings::default(),
    };
    let start = Instant::now();
    let watcher = Watcher::new(settings, me, provider, dir.path()).await.unwrap();
    let restart = start.elapsed();
    assert_eq!(watcher.status().synced_block, 0);
    println!("| Measure | Result |");
    println!("|---|---:|");
    println!("| validated UTXOs in the store | {n} |");
    println!("| writing them | {:.1} s |", write.as_secs_f64());
    println!(
        "| restart: open the store, load the view, L1 handshake | {:.2} s |",
        restart.as_secs_f64()
    );
}
