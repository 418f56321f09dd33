//! Exits the tower makes (WATCH-9, WATCH-10, WATCH-13): guarded owners' funds on a byzantine
//! chain, within its budget, processing of due exits and settling the debts of capped exits
//! (EXIT-16).

#[allow(clippy::wildcard_imports)]
use super::*;

impl Watcher {
    /// The tower's balance and what exits cost it now (WATCH-13). The gas price is the current
    /// one with room for two fee bumps of 25 %.
    pub(super) async fn exit_costs(&self) -> Result<(U256, budget::ExitCosts), WatcherError> {
        let balance = self.provider.get_balance(self.me).await.map_err(l1)?;
        let bond = self.standard.bondSize().call().await.map_err(l1)?;
        let price = self.provider.get_gas_price().await.map_err(l1)?;
        let costs = budget::ExitCosts {
            bond,
            gas_price: price + price / 2 + 1,
            gas_per_batch: ACTION_GAS,
            gas_per_output: MASS_EXIT_GAS_PER_OUTPUT,
        };
        Ok((balance, costs))
    }

    pub(super) async fn process_due_exits(&self) -> Result<(), WatcherError> {
        /// Exits settled per call, and the gas that many may take: a standard exit ~30–75k, an
        /// in-flight exit or a batch ~110–200k (docs/benchmarks.md); 480k each leaves room, within
        /// the 2^24 cap of one transaction (a call out of gas would revert and its head be retried
        /// only under a new key).
        const PROCESS_PER_CALL: u64 = 25;
        const PROCESS_GAS: u64 = 12_000_000;
        // A node that mines only on demand (a devnet) leaves the latest block's time behind the
        // clock; the next block, the one processExits lands in, will carry the clock's time.
        let latest = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(l1)?
            .map_or(0, |b| b.header.timestamp);
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let now = latest.max(clock);
        let tokens: Vec<Address> = self.tokens.lock().iter().copied().collect();
        for token in tokens {
            let head = self.framework.queueHead(token).call().await.map_err(l1)?.head;
            if head.is_zero() || u64::try_from(head >> 192usize).unwrap_or(u64::MAX) > now {
                continue;
            }
            // Through the one sender (WATCH-11), keyed by the head it means: a processExits sent
            // beside the sender could take a nonce the sender also picks. If someone else
            // processes that head first, the call reverts (the topPriority guard) and the next
            // head is a new action.
            let key = format!("process-exits:{token}:{head}");
            if self.action_done(&key)? {
                continue;
            }
            let call = self.framework.processExits(token, head, U256::from(PROCESS_PER_CALL));
            // Estimated, with a quarter more: a fixed limit of the worst case would ask an
            // underfunded tower for gas money it does not need (WATCH-13).
            let gas = match call.estimate_gas().await {
                Ok(g) => (g + g / 4).min(PROCESS_GAS),
                Err(e) => {
                    debug!(target: "watcher", error = %e, %token, "processExits would revert");
                    continue;
                }
            };
            match self.act(&key, call, U256::ZERO, gas).await {
                Ok(Some(l1_tx)) => self.event(Event::ExitsProcessed { token, l1_tx }),
                Ok(None) => {}
                Err(e) => debug!(target: "watcher", error = %e, %token, "processExits not sent"),
            }
        }
        self.settle_debts().await
    }

    /// EXIT-16 (WATCH-10): for each followed token whose debt book shows debts outstanding and a
    /// non-empty pool, pays the oldest debts (`settleDebts(token, 100)`, anyone may). Run after
    /// processing due exits and after the watcher's own releases: a release while debts are
    /// outstanding goes to the pool, and only a settlement hands it to the exits a fake claim
    /// displaced (an honest owner capped behind it is credited then, oldest first). One action
    /// per state of the book (its head, tail and pool), so it is sent once and again only after
    /// the book moved.
    pub(super) async fn settle_debts(&self) -> Result<(), WatcherError> {
        /// Debts paid per call (bounds its gas).
        const MAX_DEBTS: u64 = 100;
        /// Gas per debt paid (a credit, or a batch's top-up through `reserveRepaid`), with room.
        const SETTLE_GAS_PER_DEBT: u64 = 80_000;
        let tokens: Vec<Address> = self.tokens.lock().iter().copied().collect();
        for token in tokens {
            let book = self.framework.debtBook(token).call().await.map_err(l1)?;
            if book.tail <= book.head || book.pool.is_zero() {
                continue;
            }
            let key = format!("settle-debts:{token}:{}:{}:{}", book.head, book.tail, book.pool);
            if self.action_done(&key)? {
                continue;
            }
            let debts = u64::try_from(book.tail - book.head).unwrap_or(u64::MAX).min(MAX_DEBTS);
            let gas = ACTION_GAS + SETTLE_GAS_PER_DEBT * debts;
            let call = self.framework.settleDebts(token, U256::from(MAX_DEBTS));
            if let Some(l1_tx) = self.act(&key, call, U256::ZERO, gas).await? {
                info!(target: "watcher", %token, debts, pool = %book.pool, %l1_tx, "debts settled");
                self.event(Event::DebtsSettled { token, l1_tx });
            }
        }
        Ok(())
    }

    /// WATCH-9: on a byzantine chain, exits every guarded owner's outputs older than the first
    /// bad block. Through batch exits (EXIT-12, `batch.rs`) where it can: one claim of 20 bytes
    /// per output instead of a proven standard exit. By standard exits, many owners per L1
    /// transaction, for the rest: outputs over 2^96 − 1 (a claim cannot carry them), deposits
    /// made after the bad block (in a batch their late block would hold back every older claim,
    /// EXIT-13), outputs with another exit already under way, outputs below a watermark another
    /// exitor of the owner set without claiming them, and those of a batch that reverted. Only
    /// outputs with no exit yet are included in a standard batch (an owner may have exited by
    /// itself: one such output would revert the whole batch). A batch that reverted anyway is
    /// retried one output per transaction, so one bad entry cannot hold the others back.
    pub(super) async fn mass_exit_if_byzantine(&self) -> Result<(), WatcherError> {
        if self.view.lock().byzantine_from.is_none() {
            return Ok(());
        }
        // Inputs of guarded payments still in flight are exited through their in-flight exit:
        // a standard exit of such an input would make the payment non-canonical (EXIT-11) and
        // cost its recipients.
        let in_flight = self.guarded_in_flight()?;
        let spent_in_flight: std::collections::HashSet<UtxoPos> = in_flight
            .iter()
            .filter_map(|t| t.transaction.input_positions().ok())
            .flatten()
            .collect();
        for signed in &in_flight {
            self.start_guarded_in_flight_exit(signed).await?;
        }
        let guards = self.guards()?;
        let by_owner: std::collections::HashMap<Address, Guard> =
            guards.iter().map(|g| (g.owner, g.clone())).collect();
        let mut claims: Vec<batch::Candidate> = Vec::new();
        let mut standard: Vec<batch::Candidate> = Vec::new();
        {
            let view = self.view.lock();
            let last_child = *self.last_child_committed.lock();
            let max_claim = plasma_spec::batch_exit::max_claim_amount();
            for guard in &guards {
                for pos in view.late_deposits_left_to(guard.owner, last_child) {
                    if self.late_reported.lock().insert(pos) {
                        self.event(Event::LateDepositLeftToOwner {
                            utxo_pos: pos.to_string(),
                            owner: guard.owner,
                        });
                    }
                }
                let late = view.late_deposits_of(guard.owner, last_child);
                let older = view.exitable_outputs_of(guard.owner);
                for (is_late, (pos, output)) in
                    late.into_iter().map(|o| (true, o)).chain(older.into_iter().map(|o| (false, o)))
                {
                    if spent_in_flight.contains(&pos) {
                        continue;
                    }
                    let other_exit =
                        view.exiting.marks(pos).iter().any(|m| {
                            !matches!(m.source, plasma_spec::ExitSource::BatchClaim { .. })
                        });
                    let c = batch::Candidate {
                        owner: guard.owner,
                        token: output.token,
                        pos,
                        amount: output.amount,
                    };
                    if is_late || other_exit || output.amount > max_claim {
                        standard.push(c);
                    } else {
                        claims.push(c);
                    }
                }
            }
        }
        let batched = self.batch_mass_exit(claims, &by_owner).await?;
        standard.extend(batched.standard);
        // WATCH-13: every guarded output worth exiting, with its amount, then a plan the balance
        // pays for — richest first, dust never.
        let mut todo: Vec<(U256, (StandardExitGame::StartArgs, StandardExitGame::Authorization))> =
            Vec::new();
        for c in standard {
            let Some(guard) = by_owner.get(&c.owner) else { continue };
            let args = {
                let view = self.view.lock();
                let (pos, b, i) = (c.pos, c.pos.blknum(), c.pos.tx_index());
                let Some((proof, timestamp)) = view.inclusion_proof(b, i).map_err(st)? else {
                    continue;
                };
                let Some(tx) = view.tx_bytes(b, i).map_err(st)? else { continue };
                StandardExitGame::StartArgs {
                    utxoPos: pos.to_u256(),
                    txBytes: tx,
                    inclusionProof: proof.into(),
                    blockTimestamp: timestamp,
                }
            };
            if self.exit_seen_started.lock().contains(&args.utxoPos) {
                continue;
            }
            if self.standard.exits(args.utxoPos).call().await.map_err(l1)?.status != 0 {
                // Started already, by us or by the owner: no need to ask L1 again.
                self.exit_seen_started.lock().insert(args.utxoPos);
                continue;
            }
            let auth = StandardExitGame::Authorization {
                deadline: guard.deadline,
                nonce: guard.nonce,
                signature: guard.signature.clone(),
            };
            todo.push((c.amount, (args, auth)));
        }
        let (balance, costs) = self.exit_costs().await?;
        let worth = todo.len();
        // Older positions first among equal amounts (the plan's sort is stable).
        todo.sort_by_key(|(_, (a, _))| a.utxoPos);
        let plan = budget::plan(todo, balance, &costs, MASS_EXIT_BATCH);
        if worth + batched.worth + batched.dust > 0 {
            let worth = worth - plan.dust.len() + batched.worth;
            let needed = budget::cost_of(&costs, worth, MASS_EXIT_BATCH);
            self.note_plan(worth, plan.unaffordable.len() + batched.unaffordable, balance, needed);
        }
        let dust = plan.dust.len() + batched.dust;
        if dust > 0 && std::mem::replace(&mut *self.dust_reported.lock(), dust) != dust {
            self.event(Event::DustSkipped { outputs: dust, below: costs.dust_below() });
        }
        let bond = costs.bond;
        for chunk in &plan.batches {
            let first = chunk[0].0.utxoPos;
            let key = format!("mass-exit:{first}:{}", chunk.len());
            if !self.action_done(&key)? {
                self.send_mass_exit(&key, chunk, bond).await?;
                continue;
            }
            // This very batch was mined and reverted: try its outputs one by one.
            for one in chunk.chunks(1) {
                let key = format!("mass-exit:{}:1", one[0].0.utxoPos);
                if !self.action_done(&key)? {
                    self.send_mass_exit(&key, one, bond).await?;
                }
            }
        }
        Ok(())
    }

    /// WATCH-13: after each newly validated block, whether the balance still pays for exiting
    /// every guarded output worth exiting; `underfunded` the moment it does not (once per count).
    pub(super) async fn check_funding(&self) -> Result<(), WatcherError> {
        let synced = self.view.lock().synced_block;
        if self.funding.lock().synced_block == synced {
            return Ok(());
        }
        let guards = self.guards()?;
        let amounts: Vec<(U256, ())> = {
            let view = self.view.lock();
            guards
                .iter()
                .flat_map(|g| view.exitable_outputs_of(g.owner))
                .map(|(_, o)| (o.amount, ()))
                .collect()
        };
        let (balance, costs) = self.exit_costs().await?;
        let plan = budget::plan(amounts, balance, &costs, MASS_EXIT_BATCH);
        let worth = plan.batches.iter().map(Vec::len).sum::<usize>() + plan.unaffordable.len();
        let short = plan.unaffordable.len();
        self.note_plan(worth, short, balance, budget::cost_of(&costs, worth, MASS_EXIT_BATCH));
        self.funding.lock().synced_block = synced;
        Ok(())
    }

    /// Records a funding figure; reports `underfunded` when the shortfall appears or changes.
    pub(super) fn note_plan(&self, worth: usize, short: usize, balance: U256, needed: U256) {
        let was_short = {
            let mut f = self.funding.lock();
            let was = f.short;
            (f.worth, f.short, f.balance, f.needed) = (worth, short, balance, needed);
            f.at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if f.synced_block == u64::MAX {
                f.synced_block = self.view.lock().synced_block;
            }
            was
        };
        if short > 0 && short != was_short {
            warn!(target: "watcher::budget", worth, short, %balance, "the balance cannot exit every guarded output");
            self.event(Event::Underfunded { outputs: worth, unaffordable: short, balance });
        }
    }

    /// WATCH-9 with EXIT-9: exits a guarded payment caught in flight for its owners, who may be
    /// offline. Starts its in-flight exit for a guarded party with that owner's authorization
    /// (`startInFlightExitFor`, the watcher's bond) unless one is open or settled, and again if the
    /// last one was deleted (a deletion frees the payment, EXIT-6); then, in phase 1, piggybacks
    /// with their owners' authorizations every input and output a guarded owner holds that is not
    /// piggybacked yet (EXIT-8): settlement pays the outputs if the payment is canonical and the
    /// inputs if not (EXIT-11), so both are claimed.
    pub(super) async fn start_guarded_in_flight_exit(
        &self,
        signed: &plasma_spec::SignedTransaction,
    ) -> Result<(), WatcherError> {
        /// `inFlightExit(..).verdict` of an exit deleted unpiggybacked (EXIT-11).
        const DELETED: u8 = 3;
        let hash = signed.transaction.hash();
        let exit_id = U256::from_be_bytes(hash.0);
        let guards: std::collections::HashMap<Address, Guard> =
            self.guards()?.into_iter().map(|g| (g.owner, g)).collect();
        let auth_of = |g: &Guard| InFlightExitGame::Authorization {
            deadline: g.deadline,
            nonce: g.nonce,
            signature: g.signature.clone(),
        };
        let mut state = self.in_flight.inFlightExit(exit_id).call().await.map_err(l1)?;
        if state.startedAt == 0 || state.verdict == DELETED {
            // One key per start: the first, and one per deleted exit (named by its start time).
            let key = if state.startedAt == 0 {
                format!("guard-ife:{hash}")
            } else {
                format!("guard-ife:{hash}:{}", state.startedAt)
            };
            if self.action_done(&key)? {
                return Ok(()); // sent and reverted: nothing more to try for this start
            }
            let Ok(inputs) = signed.transaction.input_positions() else { return Ok(()) };
            let mut input_txs = Vec::new();
            let mut proofs = Vec::new();
            let mut timestamps = Vec::new();
            let mut parties: Vec<Address> =
                signed.transaction.outputs.iter().map(|o| o.owner).collect();
            {
                let view = self.view.lock();
                for p in &inputs {
                    let leaf = view.tx_bytes(p.blknum(), p.tx_index()).map_err(st)?;
                    let Some(leaf) = leaf else { return Ok(()) };
                    let Some((proof, timestamp)) =
                        view.inclusion_proof(p.blknum(), p.tx_index()).map_err(st)?
                    else {
                        return Ok(());
                    };
                    if let Some(spent) = plasma_spec::UtxoView::utxo(&view.utxos, *p) {
                        parties.insert(0, spent.owner); // the signers first
                    }
                    input_txs.push(leaf);
                    proofs.push(proof.into());
                    timestamps.push(timestamp);
                }
            }
            // EXIT-6: only for a party, here one whose authorization the watcher holds.
            let Some(party) = parties.iter().find_map(|a| guards.get(a)) else { return Ok(()) };
            let args = InFlightExitGame::StartArgs {
                inFlightTx: signed.transaction.encode().into(),
                inputTxs: input_txs,
                inputUtxoPos: inputs.iter().map(UtxoPos::to_u256).collect(),
                inputProofs: proofs,
                inputBlockTimestamps: timestamps,
                signatures: signed.signatures.clone(),
            };
            let bond = self.in_flight.inFlightExitBond().call().await.map_err(l1)?;
            let gas = ACTION_GAS + IN_FLIGHT_GAS_PER_INPUT * inputs.len() as u64;
            let call = self.in_flight.startInFlightExitFor(args, auth_of(party));
            let Some(l1_tx) = self.act(&key, call, bond, gas).await? else { return Ok(()) };
            self.event(Event::GuardedInFlightExitStarted { exit_id: hash, l1_tx });
            state = self.in_flight.inFlightExit(exit_id).call().await.map_err(l1)?;
        }
        if state.verdict != 0 || state.startedAt == 0 {
            return Ok(()); // settled (or the start has not landed): nothing to claim
        }
        // EXIT-8: piggybacks close with phase 1.
        let phase_end = state.startedAt + self.min_exit_period / 2;
        let now = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(l1)?
            .map_or(0, |b| b.header.timestamp);
        if now >= phase_end {
            return Ok(());
        }
        let n_inputs = signed.transaction.inputs.len();
        let mut items: Vec<(bool, u8, Address)> = Vec::new();
        for i in 0..n_inputs {
            let input = self.in_flight.inFlightExitInput(exit_id, U256::from(i)).call().await;
            items.push((false, i as u8, input.map_err(l1)?.owner));
        }
        for (j, o) in signed.transaction.outputs.iter().enumerate() {
            items.push((true, j as u8, o.owner));
        }
        for (is_output, index, owner) in items {
            let bit = if is_output { 5 + u32::from(index) } else { u32::from(index) };
            if state.piggybacks & (1u16 << bit) != 0 {
                continue; // its owner (or someone for it) already claimed it
            }
            let Some(guard) = guards.get(&owner) else { continue };
            let kind = if is_output { "out" } else { "in" };
            let key = format!("guard-pb:{hash}:{}:{kind}{index}", state.startedAt);
            if self.action_done(&key)? {
                continue;
            }
            let bond = state.piggybackBondAmount;
            let call = self.in_flight.piggybackFor(exit_id, is_output, index, auth_of(guard));
            let sent = self.act(&key, call, bond, ACTION_GAS).await?;
            if let Some(l1_tx) = sent {
                info!(target: "watcher::guard", exit = %hash, %owner, is_output, index, "piggybacked for a guarded owner");
                self.event(Event::GuardedPiggyback {
                    exit_id: hash,
                    owner,
                    is_output,
                    index,
                    l1_tx,
                });
                self.check_margin(&key, phase_end).await;
            }
        }
        Ok(())
    }

    pub(super) async fn send_mass_exit(
        &self,
        key: &str,
        batch: &[(StandardExitGame::StartArgs, StandardExitGame::Authorization)],
        bond: U256,
    ) -> Result<(), WatcherError> {
        let n = batch.len();
        let (args, auths): (Vec<_>, Vec<_>) = batch.iter().cloned().unzip();
        let call = self.standard.startStandardExitsFor(args, auths);
        let gas = ACTION_GAS + MASS_EXIT_GAS_PER_OUTPUT * n as u64;
        if let Some(hash) = self.act(key, call, bond * U256::from(n), gas).await? {
            self.event(Event::MassExit { outputs: n, l1_tx: hash });
        }
        Ok(())
    }
}
