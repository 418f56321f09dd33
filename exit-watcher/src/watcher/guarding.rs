//! What the tower guards (EXIT-9, WATCH-6, WATCH-14): exit authorizations, refused when they
//! could not start an exit today and dropped when revoked, and the in-flight payments owners hand in.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Watcher {
    /// Keeps `guard` if it could start an exit today and is not older than the one kept for its
    /// owner (EXIT-9), and if the tower's balance covers one more owner (WATCH-13).
    pub async fn add_guard(&self, guard: &Guard) -> Result<(), GuardError> {
        if self.is_monitor() {
            return Err(GuardError::MonitorOnly);
        }
        let auth = plasma_spec::ExitAuthorization {
            exitor: self.me,
            deadline: guard.deadline,
            nonce: guard.nonce,
        };
        let digest = self.domain.exit_authorization_digest(&auth);
        let signer = plasma_spec::recover_signer(digest, &guard.signature, 0)
            .map_err(|e| GuardError::BadSignature { owner: guard.owner, reason: e.to_string() })?;
        let unavailable = |e: WatcherError| GuardError::Unavailable(e.to_string());
        let l1_owner = self.owner_on_l1(guard.owner).await.map_err(unavailable)?;
        let kept = self.guards().map_err(unavailable)?;
        let kept_own = kept.iter().find(|g| g.owner == guard.owner);
        guards::check(guard, signer, l1_owner, kept_own)?;
        if kept_own.is_none() {
            let (balance, costs) = self.exit_costs().await.map_err(unavailable)?;
            let capacity = budget::guard_capacity(balance, &costs);
            let guarded = kept.len() as u64;
            if guarded >= capacity {
                return Err(GuardError::AtCapacity { guards: guarded, capacity, balance });
            }
        }
        let json = serde_json::to_vec(guard).map_err(|e| GuardError::Unavailable(e.to_string()))?;
        let run = || -> Result<(), WatcherError> {
            let tx = self.db.begin_write().map_err(st)?;
            tx.open_table(GUARDS)
                .map_err(st)?
                .insert(guard.owner.as_slice(), json.as_slice())
                .map_err(st)?;
            tx.commit().map_err(st)
        };
        run().map_err(unavailable)
    }

    /// The owner's authorization nonce and L1's latest block time.
    pub(super) async fn owner_on_l1(
        &self,
        owner: Address,
    ) -> Result<guards::OwnerOnL1, WatcherError> {
        let nonce = self.standard.authorizationNonce(owner).call().await.map_err(l1)?;
        let latest = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(l1)?
            .ok_or_else(|| l1("no latest L1 block"))?;
        Ok(guards::OwnerOnL1 { nonce, now: latest.header.timestamp })
    }

    /// Drops guards their owners revoked on L1 (`AuthorizationsRevoked`, EXIT-9): a batch holding
    /// one would skip it anyway, and the owner must hand in a new authorization to stay guarded.
    pub(super) fn drop_revoked_guard(
        &self,
        owner: Address,
        nonce: U256,
    ) -> Result<(), WatcherError> {
        let Some(kept) = self.guards()?.into_iter().find(|g| g.owner == owner) else {
            return Ok(());
        };
        if kept.nonce >= nonce {
            return Ok(()); // already the new one
        }
        let tx = self.db.begin_write().map_err(st)?;
        tx.open_table(GUARDS).map_err(st)?.remove(owner.as_slice()).map_err(st)?;
        tx.commit().map_err(st)?;
        self.event(Event::GuardDropped { owner, reason: format!("revoked on L1 (nonce {nonce})") });
        Ok(())
    }

    /// Takes a payment a guarded owner signed (ENC-4 bytes) and may not see included: if the chain
    /// turns byzantine before it is, the watcher exits it in flight instead of exiting its inputs
    /// (WATCH-6). It must be valid against the watcher's validated UTXO set (every input unspent,
    /// signed by its owner, no value created) and spend a guarded owner's output.
    pub fn add_in_flight(&self, signed_bytes: &[u8]) -> Result<B256, String> {
        let signed =
            plasma_spec::SignedTransaction::decode(signed_bytes).map_err(|e| e.to_string())?;
        let (_, inputs) = signed.transaction.check().map_err(|e| e.to_string())?;
        if inputs.is_empty() {
            return Err("not a payment".into());
        }
        let signers = signed.recover_signers(&self.domain).map_err(|e| e.to_string())?;
        let hash = signed.transaction.hash();
        {
            let view = self.view.lock();
            // Already seen included (the owner handed it in after the operator was quick): its
            // outputs are ordinary outputs now, nothing to keep.
            let mut included = true;
            for p in &inputs {
                let spend = view.challenge_for(*p).map_err(|e| e.to_string())?;
                included &= spend.is_some_and(|s| s.hash == hash);
            }
            if included {
                return Ok(hash);
            }
            plasma_spec::validate_payment(&view.utxos, &signed.transaction, &inputs, &signers)
                .map_err(|e| e.to_string())?;
        }
        let guarded: std::collections::HashSet<Address> =
            self.guards().map_err(|e| e.to_string())?.into_iter().map(|g| g.owner).collect();
        if !signers.iter().any(|s| guarded.contains(s)) {
            return Err("no input belongs to an owner this watcher guards".into());
        }
        let run = || -> Result<(), WatcherError> {
            let tx = self.db.begin_write().map_err(st)?;
            tx.open_table(GUARDED_IN_FLIGHT)
                .map_err(st)?
                .insert(hash.as_slice(), signed_bytes)
                .map_err(st)?;
            tx.commit().map_err(st)
        };
        run().map_err(|e| e.to_string())?;
        Ok(hash)
    }

    /// The guarded payments not included in any validated block: all their inputs are still
    /// unspent in the view.
    pub(super) fn guarded_in_flight(
        &self,
    ) -> Result<Vec<plasma_spec::SignedTransaction>, WatcherError> {
        use redb::ReadableTable;
        let tx = self.db.begin_read().map_err(st)?;
        let table = tx.open_table(GUARDED_IN_FLIGHT).map_err(st)?;
        let view = self.view.lock();
        let mut out = Vec::new();
        for entry in table.iter().map_err(st)? {
            let (_, v) = entry.map_err(st)?;
            let signed = plasma_spec::SignedTransaction::decode(v.value()).map_err(st)?;
            let Ok(inputs) = signed.transaction.input_positions() else { continue };
            if inputs.iter().all(|p| plasma_spec::UtxoView::utxo(&view.utxos, *p).is_some()) {
                out.push(signed);
            }
        }
        Ok(out)
    }

    pub(super) fn guards(&self) -> Result<Vec<Guard>, WatcherError> {
        use redb::ReadableTable;
        let tx = self.db.begin_read().map_err(st)?;
        let table = tx.open_table(GUARDS).map_err(st)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(st)? {
            let (_, v) = entry.map_err(st)?;
            out.push(serde_json::from_slice(v.value()).map_err(st)?);
        }
        Ok(out)
    }
}
