//! The plasma watchtower (spec/05-watcher.md): follows L1, downloads every committed block from
//! the operator, re-validates it with the spec's ledger, challenges every exit of a spent output,
//! and when a block is withheld or invalid, exits the outputs of the owners it guards (with their
//! exit authorizations) before any exit the bad block could enable.

pub mod alerts;
mod api;
pub mod budget;
mod dashboard;
pub mod download;
pub mod guards;
mod judge;
mod metrics;
pub mod tower;
pub mod verdicts;
mod watcher;

pub use download::{DownloadError, DownloadProgress, DownloadSettings};
pub use judge::{
    ApplyTimings, ChainView, DecodedBlock, Event, History, HistoryError, KnownBlock, PreparedTx,
    Spend, validate_parallel,
};
pub use tower::{
    DaConfigError, DaStatus, Fault, FaultKind, MAX_PUTS_AT_ONCE, PUT_BODY_TIMEOUT, TowerSettings,
};
/// Monitor mode and cross-checks between watchers (issue 20).
pub use watcher::crosscheck;
/// The dashboard's document (`GET /v1/dashboard`, issue 20).
pub use watcher::overview;
pub use watcher::{Funding, Guard, Settings, Status, Watcher, WatcherError, write_view_utxos};

use std::{net::SocketAddr, sync::Arc};

/// A running watcher with its API.
#[derive(Debug)]
pub struct Running {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The watcher.
    pub watcher: Arc<Watcher>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the watcher loop and its API on `listen`.
pub async fn start(watcher: Watcher, listen: SocketAddr) -> std::io::Result<Running> {
    start_on(watcher, tokio::net::TcpListener::bind(listen).await?).await
}

/// Starts the watcher loop and its API on a bound `listener` (a tower's address must be known
/// before it starts: every tower lists every other's URL).
pub async fn start_on(
    watcher: Watcher,
    listener: tokio::net::TcpListener,
) -> std::io::Result<Running> {
    let watcher = Arc::new(watcher);
    let (shutdown, rx) = tokio::sync::watch::channel(false);
    let addr = listener.local_addr()?;
    let mut stop = rx.clone();
    let server =
        warp::serve(api::routes(watcher.clone())).incoming(listener).graceful(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
    let tasks = vec![
        // The cross-check (issue 20) polls peers in its own task: a slow peer never holds the loop.
        tokio::spawn(watcher.clone().cross_check(rx.clone())),
        tokio::spawn(watcher.clone().run(rx)),
        tokio::spawn(server.run()),
    ];
    Ok(Running { addr, watcher, shutdown, tasks })
}

impl Running {
    /// Stops the loop and the API.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.watcher.stop_downloads().await;
    }
}
