//! Block availability and validity (WATCH-2, WATCH-3): every committed block downloaded and
//! re-validated in order; a block not served within the availability timeout of its commitment is
//! withheld, one that breaks a ledger rule is invalid.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Watcher {
    pub(super) async fn validate_blocks(&self) -> Result<(), WatcherError> {
        loop {
            let Some((blknum, root, timestamp, deposit_tx, seen)) = self
                .pending
                .lock()
                .front()
                .map(|p| (p.blknum, p.root, p.timestamp, p.deposit_tx.clone(), p.seen))
            else {
                return Ok(());
            };
            if let Some(tx) = deposit_tx {
                self.view.lock().apply_deposit(blknum, &tx, timestamp);
                self.pending.lock().pop_front();
                self.persist_block(blknum)?;
                continue;
            }
            match self.fetch_block(blknum).await {
                Some(txs) => {
                    self.pending.lock().pop_front();
                    let leaves: Vec<Vec<u8>> = txs
                        .iter()
                        .map(|t| {
                            plasma_spec::SignedTransaction::decode(t)
                                .map(|s| s.transaction.encode())
                                .unwrap_or_default()
                        })
                        .collect();
                    let served_root =
                        BlockTree::from_txs(&leaves).map(|t| t.root()).unwrap_or_default();
                    let result = if served_root == root {
                        self.view.lock().apply_child_block(blknum, &txs, timestamp)
                    } else {
                        self.view.lock().withheld(blknum);
                        Err(format!("the served block hashes to {served_root}, L1 has {root}"))
                    };
                    self.persist_block(blknum)?;
                    match result {
                        Ok(()) => {
                            info!(target: "watcher::blocks", blknum, txs = txs.len(), "block valid")
                        }
                        Err(reason) => {
                            self.event(Event::InvalidBlock { blknum, reason });
                            self.report_exits_from_bad_blocks();
                        }
                    }
                }
                None if self.availability_expired(timestamp, seen) => {
                    self.pending.lock().pop_front();
                    self.view.lock().withheld(blknum);
                    self.persist_block(blknum)?;
                    self.event(Event::BlockWithheld { blknum });
                    self.report_exits_from_bad_blocks();
                }
                None => return Ok(()), // wait for it, in order
            }
        }
    }

    /// Reports every watched standard exit from the first bad block on, when the verdict comes:
    /// exits started before it (a thief exits at once, well inside the availability timeout)
    /// would otherwise never be reported; exits read after it are reported as they are read.
    pub(super) fn report_exits_from_bad_blocks(&self) {
        let Some(bad) = self.view.lock().byzantine_from else { return };
        let from_bad: Vec<UtxoPos> =
            self.exits.lock().keys().filter(|p| p.blknum() >= bad).copied().collect();
        for pos in from_bad {
            self.event(Event::ExitFromBadBlock { utxo_pos: pos.to_string() });
        }
    }

    /// WATCH-3: whether a block committed at L1 time `committed_at` and still not obtainable
    /// counts as withheld. The clock is the later of this machine's and the newest L1 block the
    /// watcher read, and the timeout runs from the commitment — not from when this process first
    /// looked — so neither catching up nor restarting gives a withheld block a fresh timeout (and
    /// holds back every later block). Two polls since `seen` (this process's first look) are
    /// always allowed, so a single failed request right after a restart is not a verdict.
    pub(super) fn availability_expired(&self, committed_at: u64, seen: Instant) -> bool {
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let now_ms = wall_ms.max(self.l1_time.lock().saturating_mul(1000));
        let waited_ms = now_ms.saturating_sub(committed_at.saturating_mul(1000));
        let timeout = self.settings.availability_timeout;
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        waited_ms >= timeout_ms && seen.elapsed() >= timeout.min(self.settings.poll * 2)
    }

    pub(super) async fn fetch_block(&self, blknum: u64) -> Option<Vec<Bytes>> {
        let url = format!("{}/v1/blocks/{blknum}", self.settings.operator_url);
        let resp = match self.http.get(&url).timeout(Duration::from_secs(10)).send().await {
            Ok(r) => r,
            Err(e) => {
                debug!(target: "watcher::blocks", blknum, error = ?e, "block not available");
                return None;
            }
        };
        if !resp.status().is_success() {
            debug!(target: "watcher::blocks", blknum, status = %resp.status(), "block not available");
            return None;
        }
        let v: serde_json::Value = match resp.json().await {
            Ok(v) => v,
            Err(e) => {
                warn!(target: "watcher::blocks", blknum, error = %e, "malformed block from the operator");
                return None;
            }
        };
        let txs = v.get("txs")?.as_array()?;
        txs.iter()
            .map(|t| {
                t.as_str()
                    .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
                    .map(Bytes::from)
            })
            .collect()
    }
}
