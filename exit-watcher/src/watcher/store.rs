//! The watcher's store (redb): the validated view, the work in progress and the action journal,
//! each step written atomically so a restart resumes exactly where it stopped.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Watcher {
    pub(super) fn action_done(&self, key: &str) -> Result<bool, WatcherError> {
        let tx = self.db.begin_read().map_err(st)?;
        Ok(tx.open_table(ACTIONS).map_err(st)?.get(key).map_err(st)?.is_some())
    }

    pub(super) fn record_action(&self, key: &str, l1_tx: B256) -> Result<(), WatcherError> {
        let tx = self.db.begin_write().map_err(st)?;
        tx.open_table(ACTIONS).map_err(st)?.insert(key, l1_tx.as_slice()).map_err(st)?;
        tx.commit().map_err(st)
    }

    /// Persists what applying (or giving up on) `blknum` changed, in one transaction: the UTXO
    /// changes, the block's spends and leaf hashes (WATCH-15) and the view's position. The view
    /// stays locked until the transaction committed, so nothing reads between the journal leaving
    /// memory and reaching the disk; on failure the journal stays and the next call writes it.
    pub(super) fn persist_block(&self, blknum: u64) -> Result<(), WatcherError> {
        let mut view = self.view.lock();
        let exiting = serde_json::to_vec(&view.exiting).map_err(st)?;
        let tx = self.db.begin_write().map_err(st)?;
        {
            view.write_journal(&tx).map_err(st)?;
            let mut meta = tx.open_table(V_META).map_err(st)?;
            meta.insert("synced_block", view.synced_block).map_err(st)?;
            if let Some(b) = view.byzantine_from {
                meta.insert("byzantine_from", b).map_err(st)?;
            }
            tx.open_table(V_PENDING).map_err(st)?.remove(blknum).map_err(st)?;
            tx.open_table(V_EXITING)
                .map_err(st)?
                .insert("exiting", exiting.as_slice())
                .map_err(st)?;
        }
        tx.commit().map_err(st)?;
        view.journal_persisted();
        // Per block, so a long catch-up counts as progress to the stall detector (issue 20).
        if let Some(alerts) = &self.alerts {
            alerts.heartbeat().synced(view.synced_block);
        }
        Ok(())
    }

    /// Persists the L1 cursor with everything `follow_l1` queued up to it, in one transaction.
    pub(super) fn persist_follow(
        &self,
        cursor: u64,
        cursor_hash: B256,
    ) -> Result<(), WatcherError> {
        use redb::ReadableTableMetadata;
        let tx = self.db.begin_write().map_err(st)?;
        {
            let mut hashes = tx.open_table(L1_HASHES).map_err(st)?;
            hashes.insert(cursor, cursor_hash.as_slice()).map_err(st)?;
            let excess = hashes.len().map_err(st)?.saturating_sub(L1_HASHES_KEPT as u64);
            for _ in 0..excess {
                hashes.pop_first().map_err(st)?;
            }
            drop(hashes);
            let mut pending = tx.open_table(V_PENDING).map_err(st)?;
            for p in self.pending.lock().iter() {
                let json = serde_json::to_vec(&StoredPending {
                    root: p.root,
                    timestamp: p.timestamp,
                    deposit_tx: p.deposit_tx.clone(),
                })
                .map_err(st)?;
                pending.insert(p.blknum, json.as_slice()).map_err(st)?;
            }
            let mut exits = tx.open_table(V_EXITS).map_err(st)?;
            for (pos, (owner, exitable_at)) in self.exits.lock().iter() {
                let json = serde_json::to_vec(&(owner, exitable_at)).map_err(st)?;
                exits.insert(pos.to_u128(), json.as_slice()).map_err(st)?;
            }
            let mut ifes = tx.open_table(V_IFES).map_err(st)?;
            for (id, w) in self.in_flight_exits.lock().iter() {
                let json = serde_json::to_vec(&StoredInFlight {
                    tx: w.tx.encode().into(),
                    inputs: w.piggybacked_inputs.clone(),
                    outputs: w.piggybacked_outputs.clone(),
                })
                .map_err(st)?;
                ifes.insert(id.as_slice(), json.as_slice()).map_err(st)?;
            }
            let mut meta = tx.open_table(V_META).map_err(st)?;
            meta.insert("cursor", cursor).map_err(st)?;
            meta.insert("last_child_committed", *self.last_child_committed.lock()).map_err(st)?;
            drop(meta);
            let exiting = serde_json::to_vec(&self.view.lock().exiting).map_err(st)?;
            tx.open_table(V_EXITING)
                .map_err(st)?
                .insert("exiting", exiting.as_slice())
                .map_err(st)?;
        }
        tx.commit().map_err(st)
    }

    pub(super) fn forget_exit(&self, pos: UtxoPos) -> Result<(), WatcherError> {
        let tx = self.db.begin_write().map_err(st)?;
        tx.open_table(V_EXITS).map_err(st)?.remove(pos.to_u128()).map_err(st)?;
        tx.commit().map_err(st)
    }

    /// Rebuilds the view (the UTXO set: the history stays on disk) and the work in progress from
    /// the store.
    pub(super) fn restore(&self) -> Result<(), WatcherError> {
        use redb::ReadableTable;
        let tx = self.db.begin_read().map_err(st)?;
        let mut view = self.view.lock();
        let mut created = Vec::new();
        for entry in tx.open_table(V_UTXOS).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            let pos = UtxoPos::from_u128(k.value()).map_err(st)?;
            let out = plasma_spec::Output::from_packed(v.value())
                .ok_or_else(|| WatcherError::Store("corrupt utxo".into()))?;
            self.tokens.lock().insert(out.token);
            created.push((pos, out));
        }
        view.utxos.apply(&plasma_spec::BlockDiff { created, ..plasma_spec::BlockDiff::default() });
        // Spends and blocks stay on disk, read when needed (WATCH-15).
        if let Some(v) = tx.open_table(V_EXITING).map_err(st)?.get("exiting").map_err(st)? {
            view.exiting = serde_json::from_slice(v.value()).map_err(st)?;
        }
        let meta = tx.open_table(V_META).map_err(st)?;
        view.synced_block = meta.get("synced_block").map_err(st)?.map_or(0, |v| v.value());
        view.byzantine_from = meta.get("byzantine_from").map_err(st)?.map(|v| v.value());
        *self.cursor.lock() = meta.get("cursor").map_err(st)?.map_or(0, |v| v.value());
        *self.last_child_committed.lock() =
            meta.get("last_child_committed").map_err(st)?.map_or(0, |v| v.value());
        drop(view);
        let mut pending = self.pending.lock();
        for entry in tx.open_table(V_PENDING).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            let p: StoredPending = serde_json::from_slice(v.value()).map_err(st)?;
            // The availability clock runs from the commitment's L1 time (WATCH-3), not from now.
            pending.push_back(Pending {
                blknum: k.value(),
                root: p.root,
                timestamp: p.timestamp,
                deposit_tx: p.deposit_tx,
            });
        }
        for entry in tx.open_table(V_EXITS).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            let pos = UtxoPos::from_u128(k.value()).map_err(st)?;
            let (owner, exitable_at): (Address, u64) =
                serde_json::from_slice(v.value()).map_err(st)?;
            self.exits.lock().insert(pos, (owner, exitable_at));
        }
        for entry in tx.open_table(V_IFES).map_err(st)?.iter().map_err(st)? {
            let (k, v) = entry.map_err(st)?;
            let stored: StoredInFlight = serde_json::from_slice(v.value()).map_err(st)?;
            let tx = plasma_spec::Transaction::decode(&stored.tx).map_err(st)?;
            self.in_flight_exits.lock().insert(
                B256::from_slice(k.value()),
                WatchedInFlight {
                    tx,
                    piggybacked_inputs: stored.inputs,
                    piggybacked_outputs: stored.outputs,
                },
            );
        }
        drop(tx);
        self.restore_batches()
    }
}
