//! The figures `/metrics` reads (issue 20, `crate::metrics` renders them): every lock is held
//! only to copy a number, one lock at a time, so a scrape never waits on a step in progress for
//! longer than that step holds one of them (and never holds two: no lock order to get wrong).

#[allow(clippy::wildcard_imports)]
use super::*;

/// How long the L1 head read for `/metrics` may take: a hung endpoint must not hang the scrape
/// (Prometheus would then see the watcher down and lose every other figure with it).
const HEAD_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// One copy of the watcher's figures.
#[derive(Clone, Debug, Default)]
pub(crate) struct Gauges {
    /// The last L1 block read.
    pub(crate) cursor: u64,
    /// The newest L1 timestamp read.
    pub(crate) cursor_time: u64,
    /// Confirmations waited for (the cursor's healthy distance to L1's head, plus one).
    pub(crate) confirmations: u64,
    /// The last block (child or deposit) validated.
    pub(crate) synced: u64,
    /// The first withheld or invalid block.
    pub(crate) byzantine_from: Option<u64>,
    /// Blocks committed (or deposited) and not yet validated.
    pub(crate) pending_blocks: usize,
    /// The L1 timestamp of the oldest of those.
    pub(crate) oldest_pending_time: Option<u64>,
    /// The highest child block committed on L1, as far as the cursor read.
    pub(crate) child_committed: u64,
    /// Standard exits watched.
    pub(crate) exits_watched: usize,
    /// In-flight exits watched.
    pub(crate) in_flight_exits_watched: usize,
    /// Owners guarded (`None`: the store could not be read).
    pub(crate) guarded: Option<usize>,
    /// Block downloads in progress (not done).
    pub(crate) downloads: usize,
    /// Of those, the ones whose rate projects past the availability deadline (WATCH-3).
    pub(crate) downloads_late: usize,
    /// The sender's figures (actions sent, fee bumps, outcomes).
    pub(crate) sender: plasma_contracts::sender::SendFigures,
    /// A read-only monitor.
    pub(crate) monitor: bool,
    /// Events so far.
    pub(crate) events: usize,
    /// L1's head as the endpoints' health probe last saw it (the best healthy endpoint's).
    pub(crate) l1_head: Option<u64>,
    /// L1 endpoints configured, and of those healthy.
    pub(crate) l1_endpoints: (usize, usize),
}

impl Watcher {
    /// The figures now (no L1 or operator request).
    pub(crate) fn gauges(&self) -> Gauges {
        let endpoints = self.l1_health.snapshot();
        let l1_head = endpoints.iter().filter(|e| e.healthy).filter_map(|e| e.head).max();
        let healthy = endpoints.iter().filter(|e| e.healthy).count();
        let (synced, byzantine_from) = {
            let view = self.view.lock();
            (view.synced_block, view.byzantine_from)
        };
        let (pending_blocks, oldest_pending_time) = {
            let pending = self.pending.lock();
            (pending.len(), pending.iter().map(|p| p.timestamp).min())
        };
        let downloads = self.downloads.progress();
        Gauges {
            cursor: *self.cursor.lock(),
            cursor_time: *self.l1_time.lock(),
            confirmations: self.settings.confirmations,
            synced,
            byzantine_from,
            pending_blocks,
            oldest_pending_time,
            child_committed: *self.last_child_committed.lock(),
            exits_watched: self.exits.lock().len(),
            in_flight_exits_watched: self.in_flight_exits.lock().len(),
            guarded: self.guards().ok().map(|g| g.len()),
            downloads: downloads.iter().filter(|d| !d.done).count(),
            downloads_late: downloads.iter().filter(|d| !d.done && d.projected_late).count(),
            sender: self.sender.stats().figures(),
            monitor: self.is_monitor(),
            events: self.events.lock().len(),
            l1_head,
            l1_endpoints: (endpoints.len(), healthy),
        }
    }

    /// Calls `f` with every event from index `from` on, under the events lock (no copy of the
    /// whole list per scrape); returns how many events there are.
    pub(crate) fn for_events_from(&self, from: usize, mut f: impl FnMut(&Event)) -> usize {
        let events = self.events.lock();
        for e in events.iter().skip(from) {
            f(e);
        }
        events.len()
    }

    /// L1's latest block number and timestamp, read now (at most [`HEAD_READ_TIMEOUT`]); `None`
    /// when L1 did not answer in time.
    pub(crate) async fn l1_head_block(&self) -> Option<(u64, u64)> {
        let read = self.provider.get_block_by_number(alloy::eips::BlockNumberOrTag::Latest);
        match tokio::time::timeout(HEAD_READ_TIMEOUT, read).await {
            Ok(Ok(Some(block))) => Some((block.header.number, block.header.timestamp)),
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => None,
        }
    }
}
