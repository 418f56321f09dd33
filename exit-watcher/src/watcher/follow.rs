//! Following L1 (WATCH-1): commitments, deposits and exit-game events read `confirmations` deep,
//! in L1 order, with reorganisations rolled back to the common ancestor and lost actions retaken.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The widest L1 block range read in one step (`eth_getLogs`): hosted RPCs cap it (10,000 blocks
/// on common plans, fewer on some), the operator's deposit follower reads 2,000 at a time too.
const MAX_LOG_RANGE: u64 = 2_000;

impl Watcher {
    /// One step of WATCH-1: at most [`MAX_LOG_RANGE`] blocks read. Returns whether it stopped
    /// short of the confirmed head (more to read: the caller steps again without its poll's wait).
    pub(super) async fn follow_l1(&self) -> Result<bool, WatcherError> {
        let head = self.provider.get_block_number().await.map_err(l1)?;
        let Some(to) = (head + 1).checked_sub(self.settings.confirmations.max(1)) else {
            return Ok(false);
        };
        // A fresh store (cursor 0), or a reorganisation deeper than the kept hashes, reads from
        // the framework's creation block: nothing of the system is older (WATCH-1).
        let from = (*self.cursor.lock() + 1).max(self.deployment_block);
        if from > to {
            // Nothing new to read, but L1 may still have replaced blocks already read.
            self.rewind_on_reorg().await?;
            return Ok(false);
        }
        // At most MAX_LOG_RANGE blocks a step: a watcher far behind (a first start long after the
        // deployment, a restart after days down) reads range after range, one a step, instead of
        // asking for the whole range at once, which hosted RPCs refuse. Its steps then follow
        // each other without the poll's wait (`Watcher::run`), each one still validating,
        // challenging and exiting on what it has read so far.
        let confirmed = to;
        let to = to.min(from + MAX_LOG_RANGE - 1);
        // WATCH-1's order, which the safety of a step rests on:
        // 1. the hash of `to` is read first;
        // 2. then the cursor's stored hash is checked against L1 (rewind_on_reorg);
        // 3. then the logs are read.
        // A reorganisation before (2) is caught by (2). One after (1) leaves `to_hash` the old
        // chain's, which the next step's check catches. Checking before (1) instead left a gap
        // (seen under load in CI): a reorganisation between the check and (1) stored the new
        // chain's hash over a cursor whose blocks had been read from the old chain, so the swap
        // of already-applied deposits went unseen and LEDGER-7 was never raised.
        let Some(to_block) = self.provider.get_block_by_number(to.into()).await.map_err(l1)? else {
            return Ok(false);
        };
        let to_hash = to_block.header.hash;
        if self.rewind_on_reorg().await? {
            // The cursor went back: the next step reads from the common ancestor.
            return Ok(false);
        }
        {
            let mut l1_time = self.l1_time.lock();
            *l1_time = (*l1_time).max(to_block.header.timestamp);
        }
        let deposits = self
            .framework
            .DepositCreated_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        let blocks = self
            .framework
            .BlockSubmitted_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        let exits = self
            .standard
            .ExitStarted_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        // Apply in L1 order: deposits and child blocks interleave by block number.
        let key = |log: &Log| (log.block_number.unwrap_or(0), log.log_index.unwrap_or(0));
        let mut ordered: Vec<((u64, u64), u8, usize)> = Vec::new();
        ordered.extend(deposits.iter().enumerate().map(|(i, (_, l))| (key(l), 0, i)));
        ordered.extend(blocks.iter().enumerate().map(|(i, (_, l))| (key(l), 1, i)));
        ordered.sort();
        for (_, kind, i) in ordered {
            if kind == 0 {
                let ev = &deposits[i].0;
                self.tokens.lock().insert(ev.token);
                let blknum: u64 = ev.blknum.try_into().unwrap_or(u64::MAX);
                // LEDGER-7: a deposit already read that L1 now shows different (a reorganisation
                // swapped it) means outputs were credited on nothing: the chain is unsafe.
                let changed = {
                    let view = self.view.lock();
                    view.tx_bytes(blknum, 0)
                        .map_err(st)?
                        .is_some_and(|l| l.as_ref() != ev.depositTx.as_ref())
                };
                if changed {
                    warn!(target: "watcher::l1", blknum, "a reorganisation changed a deposit the watcher had applied (LEDGER-7)");
                    self.view.lock().withheld(blknum);
                    self.persist_block(blknum)?;
                    self.event(Event::InvalidBlock {
                        blknum,
                        reason: "LEDGER-7: an L1 reorganisation changed this deposit after it was applied".into(),
                    });
                    self.report_exits_from_bad_blocks();
                    continue;
                }
                if self.already_queued(blknum, None, ev.timestamp)? {
                    continue;
                }
                self.pending.lock().push_back(Pending {
                    blknum,
                    root: B256::ZERO,
                    timestamp: ev.timestamp,
                    deposit_tx: Some(ev.depositTx.clone()),
                });
            } else {
                let ev = &blocks[i].0;
                let blknum: u64 = ev.blknum.try_into().unwrap_or(u64::MAX);
                {
                    let mut last = self.last_child_committed.lock();
                    *last = (*last).max(blknum);
                }
                self.da_committed(blknum, ev.root)?;
                if self.already_queued(blknum, Some(ev.root), ev.timestamp)? {
                    continue;
                }
                self.pending.lock().push_back(Pending {
                    blknum,
                    root: ev.root,
                    timestamp: ev.timestamp,
                    deposit_tx: None,
                });
            }
        }
        // LEDGER-9: the exit-game events that take outputs off the child chain, in L1 order.
        let mut exit_events: Vec<(&Log, plasma_spec::ExitEvent)> = Vec::new();
        for (ev, log) in &exits {
            if let Ok(pos) = UtxoPos::from_u256(ev.exitId) {
                exit_events.push((log, plasma_spec::ExitEvent::StandardExitStarted { pos }));
            }
        }
        for (ev, _) in &exits {
            if let Ok(pos) = UtxoPos::from_u256(ev.exitId) {
                self.exits.lock().insert(pos, (ev.owner, ev.exitableAt));
                self.tokens.lock().insert(ev.token);
                let bad_from = self.view.lock().byzantine_from;
                if bad_from.is_some_and(|b| pos.blknum() >= b) {
                    self.event(Event::ExitFromBadBlock { utxo_pos: pos.to_string() });
                }
            }
        }
        let started = self
            .in_flight
            .InFlightExitStarted_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        let guarded: std::collections::BTreeSet<Address> = if started.is_empty() {
            Default::default()
        } else {
            self.guards()?.iter().map(|g| g.owner).collect()
        };
        for (ev, log) in &started {
            if let Ok(tx) = plasma_spec::Transaction::decode(&ev.inFlightTx) {
                // EXIT-6: tell guarded owners when someone else exits their payment in flight,
                // so they piggyback in phase 1 (only owners may, EXIT-8).
                if ev.initiator != self.me {
                    let mut owners: Vec<Address> = {
                        let view = self.view.lock();
                        tx.input_positions()
                            .unwrap_or_default()
                            .iter()
                            .filter_map(|p| plasma_spec::UtxoView::utxo(&view.utxos, *p))
                            .map(|o| o.owner)
                            .chain(tx.outputs.iter().map(|o| o.owner))
                            .filter(|a| guarded.contains(a))
                            .collect()
                    };
                    owners.sort();
                    owners.dedup();
                    if !owners.is_empty() {
                        self.event(Event::InFlightExitOfGuardedPayment {
                            exit_id: tx.hash(),
                            initiator: ev.initiator,
                            owners,
                        });
                    }
                }
                exit_events.push((
                    log,
                    plasma_spec::ExitEvent::InFlightExitStarted {
                        exit_id: ev.exitId,
                        tx: tx.clone(),
                    },
                ));
                let id = B256::from(ev.exitId.to_be_bytes::<32>());
                self.in_flight_exits.lock().insert(
                    id,
                    WatchedInFlight {
                        tx,
                        piggybacked_inputs: Vec::new(),
                        piggybacked_outputs: Vec::new(),
                    },
                );
            }
        }
        let piggybacks = self
            .in_flight
            .InFlightExitPiggybacked_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        for (ev, log) in &piggybacks {
            if ev.isOutput {
                exit_events.push((
                    log,
                    plasma_spec::ExitEvent::OutputPiggybacked {
                        exit_id: ev.exitId,
                        index: ev.index,
                    },
                ));
            }
            let id = B256::from(ev.exitId.to_be_bytes::<32>());
            if let Some(w) = self.in_flight_exits.lock().get_mut(&id) {
                // Read twice after a reorganisation: each piggyback counts once.
                let list = if ev.isOutput {
                    &mut w.piggybacked_outputs
                } else {
                    &mut w.piggybacked_inputs
                };
                if !list.contains(&ev.index) {
                    list.push(ev.index);
                }
            }
        }
        let deleted = self
            .in_flight
            .InFlightExitDeleted_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        for (ev, log) in &deleted {
            exit_events
                .push((log, plasma_spec::ExitEvent::InFlightExitDeleted { exit_id: ev.exitId }));
        }
        let revoked = self
            .standard
            .AuthorizationsRevoked_filter()
            .from_block(from)
            .to_block(to)
            .query()
            .await
            .map_err(l1)?;
        for (ev, _) in &revoked {
            self.drop_revoked_guard(ev.owner, ev.nonce)?;
        }
        // Batch exits (WATCH-16), and their claims for LEDGER-9.
        let batch_events = self.follow_batches(from, to).await?;
        exit_events.extend(batch_events.iter().map(|(log, e)| (log, e.clone())));
        exit_events.sort_by_key(|(log, _)| key(log));
        // One L1 time per block (a batch carries thousands of claims in one log).
        let mut times: std::collections::HashMap<Option<u64>, u64> = Default::default();
        for (log, event) in exit_events {
            let at = match times.get(&log.block_number) {
                Some(t) => *t,
                None => {
                    let t = self.log_time(log).await?;
                    times.insert(log.block_number, t);
                    t
                }
            };
            self.view.lock().apply_exit_event(&event, at);
        }
        *self.cursor.lock() = to;
        self.persist_follow(to, to_hash)?;
        Ok(to < confirmed)
    }

    /// The L1 timestamp of the block a log is in (from the log when the node provides it).
    pub(super) async fn log_time(&self, log: &Log) -> Result<u64, WatcherError> {
        if let Some(t) = log.block_timestamp {
            return Ok(t);
        }
        let n = log.block_number.ok_or_else(|| l1("a log without a block number"))?;
        let block = self.provider.get_block_by_number(n.into()).await.map_err(l1)?;
        block.map(|b| b.header.timestamp).ok_or_else(|| l1(format!("L1 block {n} not found")))
    }

    /// Whether commitment `blknum` was already read (L1 logs are read again after a
    /// reorganisation). The new chain may carry it in a block with another timestamp, which is
    /// part of the commitment (MERKLE-6): the view takes the new one, or every exit it starts from
    /// that block would fail the inclusion check. A commitment that changed root under the same
    /// number is reported: the view keeps the block it validated first.
    pub(super) fn already_queued(
        &self,
        blknum: u64,
        root: Option<B256>,
        timestamp: u64,
    ) -> Result<bool, WatcherError> {
        if let Some(p) = self.pending.lock().iter_mut().find(|p| p.blknum == blknum) {
            p.timestamp = timestamp;
            return Ok(true);
        }
        let moved = {
            let mut view = self.view.lock();
            let synced = view.synced_block;
            let Some(known) = view.history.timestamp(blknum).map_err(st)? else {
                return Ok(blknum <= synced);
            };
            if let Some(root) = root
                && view.history.tree(blknum).map_err(st)?.map(|t| t.root()) != Some(root)
            {
                warn!(target: "watcher::l1", blknum, %root, "a reorganisation changed a commitment the watcher had validated");
            }
            let moved = known != timestamp;
            if moved {
                view.history.record_time(blknum, timestamp);
            }
            moved
        };
        if moved {
            info!(target: "watcher::l1", blknum, timestamp, "a reorganisation moved a commitment to another L1 block");
            self.persist_block(blknum)?;
        }
        Ok(true)
    }

    /// The hash of L1 block `n` (`None` if the node does not have it).
    pub(super) async fn l1_hash(&self, n: u64) -> Result<Option<B256>, WatcherError> {
        Ok(self.provider.get_block_by_number(n.into()).await.map_err(l1)?.map(|b| b.header.hash))
    }

    /// WATCH-1: if the block the cursor stopped at is no longer in L1's chain, goes back to the
    /// newest stored cursor block that still is (the common ancestor), so that everything after
    /// it is read again; then takes again every action whose transaction the reorganisation
    /// dropped. The validated child-chain view is not rolled back: deposits and commitments are
    /// read `confirmations` deep, and the view only ever grows by blocks validated in order.
    /// Returns whether it went back.
    pub(super) async fn rewind_on_reorg(&self) -> Result<bool, WatcherError> {
        use redb::ReadableTable;
        let cursor = *self.cursor.lock();
        let stored: Vec<(u64, B256)> = {
            let tx = self.db.begin_read().map_err(st)?;
            let table = tx.open_table(L1_HASHES).map_err(st)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(st)? {
                let (k, v) = entry.map_err(st)?;
                out.push((k.value(), B256::from_slice(v.value())));
            }
            out
        };
        let Some(&(at, hash)) = stored.iter().rev().find(|(n, _)| *n <= cursor) else {
            return Ok(false);
        };
        if self.l1_hash(at).await? == Some(hash) {
            return Ok(false);
        }
        let mut ancestor = 0;
        for &(n, h) in stored.iter().rev().filter(|(n, _)| *n < at) {
            if self.l1_hash(n).await? == Some(h) {
                ancestor = n;
                break;
            }
        }
        warn!(target: "watcher::l1", from = cursor, to = ancestor, "L1 reorganised; reading again from the common ancestor");
        {
            let tx = self.db.begin_write().map_err(st)?;
            {
                let mut hashes = tx.open_table(L1_HASHES).map_err(st)?;
                for (n, _) in stored.iter().filter(|(n, _)| *n > ancestor) {
                    hashes.remove(*n).map_err(st)?;
                }
                tx.open_table(V_META).map_err(st)?.insert("cursor", ancestor).map_err(st)?;
            }
            tx.commit().map_err(st)?;
        }
        *self.cursor.lock() = ancestor;
        self.exit_seen_started.lock().clear();
        self.event(Event::L1Reorg { from: cursor, to: ancestor });
        self.retake_lost_actions().await?;
        Ok(true)
    }

    /// Forgets every recorded action whose transaction is no longer in L1's chain, so the next
    /// step judges it again. A standard exit the lost challenge had settled is watched again if
    /// its start is still in the chain.
    pub(super) async fn retake_lost_actions(&self) -> Result<(), WatcherError> {
        use redb::ReadableTable;
        let recorded: Vec<(String, B256)> = {
            let tx = self.db.begin_read().map_err(st)?;
            let table = tx.open_table(ACTIONS).map_err(st)?;
            let mut out = Vec::new();
            for entry in table.iter().map_err(st)? {
                let (k, v) = entry.map_err(st)?;
                out.push((k.value().to_owned(), B256::from_slice(v.value())));
            }
            out
        };
        for (action, l1_tx) in recorded {
            if self.provider.get_transaction_receipt(l1_tx).await.map_err(l1)?.is_some() {
                continue;
            }
            {
                let tx = self.db.begin_write().map_err(st)?;
                tx.open_table(ACTIONS).map_err(st)?.remove(action.as_str()).map_err(st)?;
                tx.commit().map_err(st)?;
            }
            if let Some(pos) = action.strip_prefix("challenge:").and_then(|p| p.parse().ok())
                && let Ok(pos) = UtxoPos::from_u128(pos)
            {
                let started = self
                    .standard
                    .ExitStarted_filter()
                    .topic1(pos.to_u256())
                    .from_block(self.deployment_block)
                    .query()
                    .await
                    .map_err(l1)?;
                if let Some((ev, _)) = started.last() {
                    self.exits.lock().insert(pos, (ev.owner, ev.exitableAt));
                }
            }
            self.event(Event::ActionLost { action, l1_tx });
        }
        Ok(())
    }
}
