//! Challenges and responses (WATCH-4, WATCH-5, WATCH-8): every invalid exit, piggyback and
//! canonicity challenge the judge finds is answered, for anyone's funds.

use super::act::Planned;
#[allow(clippy::wildcard_imports)]
use super::*;

/// The position of transaction `tx_index` of block `blknum` (its output 0, POS-1), as the exit
/// game takes transaction positions.
/// (Spends and blocks in the view come from validated blocks, so the position is always valid.)
/// The spend of `pos` among payments guarded owners handed in (WATCH-4), as a challenge needs it.
pub(super) fn in_flight_spend_of(
    handed_in: &[plasma_spec::SignedTransaction],
    pos: UtxoPos,
) -> Option<crate::judge::Spend> {
    handed_in.iter().find_map(|signed| {
        let inputs = signed.transaction.input_positions().ok()?;
        let input_index = inputs.iter().position(|p| *p == pos)?;
        Some(crate::judge::Spend {
            tx: signed.transaction.encode().into(),
            hash: signed.transaction.hash(),
            input_index,
            signature: signed.signatures.get(input_index)?.clone(),
            blknum: 0,
            tx_index: 0,
        })
    })
}

pub(super) fn tx_position(blknum: u64, tx_index: u16) -> U256 {
    UtxoPos::new(blknum, tx_index, 0).map_or(U256::ZERO, |p| p.to_u256())
}

/// What a challenge that went through means, for the events and the watch lists.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// A standard exit challenged (WATCH-4): stop watching it, check its margin.
    Standard(UtxoPos),
    /// An in-flight exit marked non-canonical (CHAL-1).
    NonCanonical { id: B256, exit_id: U256 },
    /// A piggybacked input challenged (CHAL-3).
    InputSpent { id: B256, index: u8 },
    /// A canonicity challenge answered (CHAL-2).
    Defended { id: B256 },
    /// A piggybacked output challenged (CHAL-4).
    OutputSpent { id: B256, index: u8 },
}

impl Watcher {
    /// Every challenge and response of this step (WATCH-4, WATCH-5, WATCH-8): planned first,
    /// then sent back to back and confirmed together (`act_all`, issue 19), so a burst of
    /// invalid exits started in one L1 block is challenged in the next one, not one block per
    /// exit. Each is decided as before: only for an exit still active and not already answered
    /// by this watcher (its journal), each key once.
    pub(super) async fn challenge_exits(&self) -> Result<(), WatcherError> {
        let mut plan: Vec<(Planned, Then)> = Vec::new();
        self.plan_standard_challenges(&mut plan).await?;
        self.plan_in_flight_challenges(&mut plan).await?;
        if plan.is_empty() {
            return Ok(());
        }
        let planned: Vec<Planned> = plan.iter().map(|(p, _)| p.clone()).collect();
        let results = self.act_all(&planned).await?;
        for ((p, then), hash) in plan.into_iter().zip(results) {
            let Some(hash) = hash else { continue };
            self.challenged(p.key(), then, hash).await?;
        }
        Ok(())
    }

    /// Records what challenge `then` (action `key`, mined in `hash`) achieved.
    async fn challenged(&self, key: &str, then: Then, hash: B256) -> Result<(), WatcherError> {
        match then {
            Then::Standard(pos) => {
                let deadline = self.exits.lock().remove(&pos).map_or(0, |e| e.1);
                self.forget_exit(pos)?;
                self.event(Event::Challenged { utxo_pos: pos.to_string(), l1_tx: hash });
                self.check_margin(key, deadline).await;
            }
            Then::NonCanonical { id, exit_id } => {
                self.event(Event::InFlightExitChallenged { exit_id: id, l1_tx: hash });
                // Canonicity challenges close with the first half period.
                if let Ok(state) = self.in_flight.inFlightExit(exit_id).call().await {
                    let phase_end = state.startedAt + self.min_exit_period / 2;
                    self.check_margin(key, phase_end).await;
                }
            }
            Then::InputSpent { id, index } => self.event(Event::PiggybackChallenged {
                exit_id: id,
                input_index: index,
                l1_tx: hash,
            }),
            Then::Defended { id } => {
                self.event(Event::InFlightExitDefended { exit_id: id, l1_tx: hash });
            }
            Then::OutputSpent { id, index } => self.event(Event::OutputPiggybackChallenged {
                exit_id: id,
                output_index: index,
                l1_tx: hash,
            }),
        }
        Ok(())
    }

    /// WATCH-4: the standard exits of outputs the watcher knows spent.
    async fn plan_standard_challenges(
        &self,
        plan: &mut Vec<(Planned, Then)>,
    ) -> Result<(), WatcherError> {
        let watched: Vec<UtxoPos> = self.exits.lock().keys().copied().collect();
        if watched.is_empty() {
            return Ok(());
        }
        // WATCH-4: a spend the watcher has seen included, or one a guarded owner handed in (signed
        // by the owner, in flight): the signature alone defeats the exit (EXIT-4).
        let handed_in = self.guarded_in_flight()?;
        for pos in watched {
            let spend = self
                .view
                .lock()
                .challenge_for(pos)
                .map_err(st)?
                .or_else(|| in_flight_spend_of(&handed_in, pos));
            let Some(spend) = spend else { continue };
            let key = format!("challenge:{}", pos.to_u128());
            let status = self.standard.exits(pos.to_u256()).call().await.map_err(l1)?.status;
            if status != 1 || self.action_done(&key)? {
                // Not active (challenged by someone, or settled) or already ours: stop watching.
                if status != 1
                    && let Some(hash) = self.landed_late(&key).await?
                {
                    self.event(Event::Challenged { utxo_pos: pos.to_string(), l1_tx: hash });
                }
                self.exits.lock().remove(&pos);
                self.forget_exit(pos)?;
                continue;
            }
            self.event(Event::InvalidStandardExit {
                utxo_pos: pos.to_string(),
                spending_tx: spend.hash,
            });
            let call = self.standard.challengeStandardExit(
                pos.to_u256(),
                spend.tx.clone(),
                U256::from(spend.input_index),
                spend.signature.clone(),
            );
            plan.push((Planned::new(key, call, U256::ZERO, ACTION_GAS), Then::Standard(pos)));
        }
        Ok(())
    }

    /// CHAL-1 and CHAL-3: an in-flight transaction with a competitor the watcher saw included is
    /// marked non-canonical; a piggybacked input spent by another transaction loses its piggyback.
    async fn plan_in_flight_challenges(
        &self,
        plan: &mut Vec<(Planned, Then)>,
    ) -> Result<(), WatcherError> {
        let watched: Vec<(B256, WatchedInFlight)> =
            self.in_flight_exits.lock().iter().map(|(k, v)| (*k, v.clone())).collect();
        for (id, w) in watched {
            let exit_id = U256::from_be_bytes(id.0);
            let Ok(inputs) = w.tx.input_positions() else { continue };
            for (i, input) in inputs.iter().enumerate() {
                let Some(spend) = self.view.lock().challenge_for(*input).map_err(st)? else {
                    continue;
                };
                if spend.hash == id {
                    // The in-flight transaction itself is included: answer any canonicity
                    // challenge with its inclusion (CHAL-2).
                    self.plan_defence(id, exit_id, &spend, plan).await?;
                    self.plan_spent_outputs(id, exit_id, &w, &spend, plan)?;
                    continue;
                }
                let key = format!("ife-noncanonical:{id}");
                // One competitor is enough: a second input with one plans nothing more.
                let planned = plan.iter().any(|(p, _)| p.key() == key);
                if !planned && !self.action_done(&key)? {
                    let proof = self
                        .view
                        .lock()
                        .inclusion_proof(spend.blknum, spend.tx_index)
                        .map_err(st)?;
                    if let Some((proof, timestamp)) = proof {
                        let args = InFlightExitGame::CompetitorArgs {
                            exitId: exit_id,
                            inputIndex: i as u8,
                            competingTx: spend.tx.clone(),
                            competitorInputIndex: spend.input_index as u8,
                            competitorSignature: spend.signature.clone(),
                            competitorTxPos: tx_position(spend.blknum, spend.tx_index),
                            competitorProof: proof.into(),
                            competitorBlockTimestamp: timestamp,
                        };
                        let call = self.in_flight.challengeInFlightExitNotCanonical(args);
                        plan.push((
                            Planned::new(key, call, U256::ZERO, ACTION_GAS),
                            Then::NonCanonical { id, exit_id },
                        ));
                    }
                }
                let index = i as u8;
                let key = format!("ife-input:{id}:{i}");
                if w.piggybacked_inputs.contains(&index) && !self.action_done(&key)? {
                    let call = self.in_flight.challengeInFlightExitInputSpent(
                        exit_id,
                        index,
                        spend.tx.clone(),
                        spend.input_index as u8,
                        spend.signature.clone(),
                    );
                    plan.push((
                        Planned::new(key, call, U256::ZERO, ACTION_GAS),
                        Then::InputSpent { id, index },
                    ));
                }
            }
        }
        Ok(())
    }

    async fn plan_defence(
        &self,
        id: B256,
        exit_id: U256,
        spend: &crate::judge::Spend,
        plan: &mut Vec<(Planned, Then)>,
    ) -> Result<(), WatcherError> {
        let state = self.in_flight.inFlightExit(exit_id).call().await.map_err(l1)?;
        if !state.nonCanonical || state.verdict != 0 {
            return Ok(());
        }
        let tx_pos = tx_position(spend.blknum, spend.tx_index);
        let key = format!("ife-respond:{id}:{}", state.startedAt);
        if self.action_done(&key)? || plan.iter().any(|(p, _)| p.key() == key) {
            return Ok(());
        }
        let proof = self.view.lock().inclusion_proof(spend.blknum, spend.tx_index).map_err(st)?;
        let Some((proof, timestamp)) = proof else { return Ok(()) };
        let call = self.in_flight.respondToNonCanonicalChallenge(
            exit_id,
            spend.tx.clone(),
            tx_pos,
            proof.into(),
            timestamp,
        );
        plan.push((Planned::new(key, call, U256::ZERO, ACTION_GAS), Then::Defended { id }));
        Ok(())
    }

    /// CHAL-4: the in-flight transaction is included (at `included`), so its outputs have
    /// positions; a piggybacked output the watcher saw spent loses its piggyback.
    fn plan_spent_outputs(
        &self,
        id: B256,
        exit_id: U256,
        w: &WatchedInFlight,
        included: &crate::judge::Spend,
        plan: &mut Vec<(Planned, Then)>,
    ) -> Result<(), WatcherError> {
        for &index in &w.piggybacked_outputs {
            let Ok(out_pos) = UtxoPos::new(included.blknum, included.tx_index, index) else {
                continue;
            };
            let Some(spend) = self.view.lock().challenge_for(out_pos).map_err(st)? else {
                continue;
            };
            let key = format!("ife-output:{id}:{index}");
            if self.action_done(&key)? || plan.iter().any(|(p, _)| p.key() == key) {
                continue;
            }
            let proof =
                self.view.lock().inclusion_proof(included.blknum, included.tx_index).map_err(st)?;
            let Some((proof, timestamp)) = proof else { continue };
            let args = InFlightExitGame::OutputSpentArgs {
                exitId: exit_id,
                outputIndex: index,
                inFlightTx: included.tx.clone(),
                inFlightTxPos: tx_position(included.blknum, included.tx_index),
                inclusionProof: proof.into(),
                blockTimestamp: timestamp,
                spendingTx: spend.tx.clone(),
                spendingInputIndex: spend.input_index as u8,
                signature: spend.signature.clone(),
            };
            let call = self.in_flight.challengeInFlightExitOutputSpent(args);
            plan.push((
                Planned::new(key, call, U256::ZERO, ACTION_GAS),
                Then::OutputSpent { id, index },
            ));
        }
        Ok(())
    }
}
