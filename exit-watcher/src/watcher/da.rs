//! The watcher's side of the tower (issue 17, `crate::tower`): turning it on, telling it what L1
//! committed, and what the read routes may see of the watcher.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::tower::{DaConfigError, Tower, TowerSettings, read::ReadCache};

impl Watcher {
    /// Makes this watcher a tower (`settings.index` set: it stores its chunk of every block and
    /// signs receipts with `key`, which must be its L1 key) or a reader (no index: it only
    /// rebuilds), and races every block download with a rebuild from the towers. The operator,
    /// whose key signs chunk headers, is read once from the framework's `operator()`.
    pub async fn with_tower(
        mut self,
        settings: TowerSettings,
        key: Option<plasma_spec::Signer>,
    ) -> Result<Self, WatcherError> {
        let signer = match (settings.index, key) {
            (None, _) => None,
            (Some(_), None) => return Err(DaConfigError::NoKey.into()),
            (Some(_), Some(k)) if k.address() != self.me => {
                return Err(
                    DaConfigError::KeyMismatch { key: k.address(), watcher: self.me }.into()
                );
            }
            (Some(_), Some(k)) => Some(k),
        };
        let operator = self.framework.operator().call().await.map_err(l1)?;
        let tower = Arc::new(
            Tower::open(
                settings,
                signer,
                operator,
                self.domain.clone(),
                self.db.clone(),
                self.settings.availability_timeout,
                self.settings.download.stall_timeout,
            )
            .map_err(st)?,
        );
        info!(target: "watcher::da", index = ?tower.settings.index, k = tower.settings.k(),
            n = tower.settings.n(), operator = %operator,
            rebuild_after_ms = u64::try_from(tower.settings.rebuild_after.as_millis()).unwrap_or(u64::MAX),
            "availability: {}", if tower.settings.index.is_some() { "tower" } else { "reader" });
        self.downloads.set_rebuilder(tower.clone());
        self.tower = Some(tower);
        Ok(self)
    }

    /// Stops every block download and rebuild and waits until they are gone.
    pub(crate) async fn stop_downloads(&self) {
        self.downloads.stop_all().await;
    }

    /// The tower, if `--da.*` made this watcher one (or a reader).
    pub(crate) fn tower(&self) -> Option<&Arc<Tower>> {
        self.tower.as_ref()
    }

    /// The store (the read routes read validated blocks from it directly).
    pub(crate) const fn db(&self) -> &Arc<Database> {
        &self.db
    }

    /// The validated view.
    pub(crate) const fn view(&self) -> &Mutex<ChainView> {
        &self.view
    }

    /// The first bad block as persisted with the blocks in `tx` (the read routes judge a block
    /// against the same snapshot of the store they read it from, without the view's lock).
    pub(crate) fn stored_byzantine_from(
        tx: &redb::ReadTransaction,
    ) -> Result<Option<u64>, WatcherError> {
        let meta = tx.open_table(V_META).map_err(st)?;
        Ok(meta.get("byzantine_from").map_err(st)?.map(|v| v.value()))
    }

    /// Whether `pos` is an unspent output of the validated view as persisted in `tx`.
    pub(crate) fn stored_unspent(
        tx: &redb::ReadTransaction,
        pos: UtxoPos,
    ) -> Result<bool, WatcherError> {
        let utxos = tx.open_table(V_UTXOS).map_err(st)?;
        Ok(utxos.get(pos.to_u128()).map_err(st)?.is_some())
    }

    /// The highest child block L1 committed, as read so far (WATCH-1).
    pub(crate) fn last_child_committed(&self) -> u64 {
        *self.last_child_committed.lock()
    }

    /// The read routes' caches.
    pub(crate) const fn read_cache(&self) -> &ReadCache {
        &self.reads
    }

    /// The tower's status (issue 17), if it is one.
    pub fn da_status(&self) -> Option<crate::tower::DaStatus> {
        self.tower.as_ref().map(|t| t.status())
    }

    /// Every availability fault noticed (the newest [`crate::tower::FAULTS_KEPT`]).
    pub fn da_faults(&self) -> Vec<crate::tower::Fault> {
        self.tower.as_ref().map(|t| t.faults(crate::tower::FAULTS_KEPT)).unwrap_or_default()
    }

    /// L1 committed child block `blknum` with `root` (WATCH-1): the tower remembers the root and
    /// names a stored header that claims another (`ChunkMismatch`).
    pub(super) fn da_committed(&self, blknum: u64, root: B256) -> Result<(), WatcherError> {
        match &self.tower {
            Some(t) => t.on_commit(blknum, root).map_err(st),
            None => Ok(()),
        }
    }

    /// The verdict on child block `blknum`: withheld (a rebuild could not gather `k` good chunks
    /// either: named `TooFewChunks`) or not.
    pub(super) fn da_verdict(&self, blknum: u64, withheld: bool) {
        if let Some(t) = &self.tower {
            if withheld {
                t.withheld(blknum);
            } else {
                t.forget(blknum);
            }
        }
    }
}
