//! Following the exit games (OP-7): the outputs LEDGER-9 takes off the child chain.
//!
//! Read at the deposit confirmation depth, in L1 order, with each event's L1 block timestamp;
//! applied with the cursor in one write, so a restart re-reads from the cursor and an event read
//! twice changes nothing (`ExitingOutputs` is idempotent).

use crate::{
    chain::Chain,
    l1::{L1Error, L1Health, L1Settings, off_workers, stopped},
};
use alloy::{
    primitives::Address,
    providers::{DynProvider, Provider},
    rpc::types::Log,
};
use plasma_contracts::{
    BatchExitGame, Contracts, InFlightExitGame, PlasmaFramework, StandardExitGame,
};
use plasma_spec::{ExitEvent, Transaction, UtxoPos};
use std::{collections::HashMap, sync::Arc};
use tokio::sync::watch;
use tracing::{info, warn};

fn rpc(e: impl std::fmt::Display) -> L1Error {
    L1Error::Rpc(e.to_string())
}

/// The L1 blocks read per step.
const STEP_BLOCKS: u64 = 2_000;

/// Follows the exit games until `shutdown` flips (OP-7).
pub(crate) async fn run_exit_follower(
    chain: Arc<Chain>,
    provider: DynProvider,
    settings: L1Settings,
    health: Arc<parking_lot::Mutex<L1Health>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut games: Option<(Address, Address, Address)> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let step = async {
            let (standard, in_flight, batch) = match games {
                Some(g) => g,
                None => {
                    let bound =
                        Contracts::bind(settings.framework, provider.clone()).await.map_err(rpc)?;
                    let batch = bound.batch().await.map_err(rpc)?;
                    let g =
                        (*bound.standard.address(), *bound.in_flight.address(), *batch.address());
                    check_grace(&provider, &bound.framework, settings.deposit_confirmations).await;
                    games = Some(g);
                    g
                }
            };
            exit_step(&chain, &provider, [standard, in_flight, batch], &settings).await
        };
        // A step waiting on the store (a hung database) must not hold up a stop (A21-3).
        let step = tokio::select! {
            step = step => step,
            () = stopped(&mut shutdown) => return,
        };
        match step {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                warn!(target: "operator::exits", error = %e, "exit scan failed; retrying");
                health.lock().last_error = Some(e.to_string());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Warns when the confirmation depth, at L1's recent block time, does not fit well inside the
/// grace of LEDGER-9: blocks built meanwhile could spend an output whose exit began more than
/// the grace before their commitment, and watchers would call them invalid.
async fn check_grace(
    provider: &DynProvider,
    framework: &PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    confirmations: u64,
) {
    let Ok(period) = framework.minExitPeriod().call().await else { return };
    let grace = plasma_spec::exit_spend_grace(period.try_into().unwrap_or(u64::MAX));
    let Ok(head) = provider.get_block_number().await else { return };
    let back = head.min(100);
    let (Ok(Some(now)), Ok(Some(then))) = (
        provider.get_block_by_number(head.into()).await,
        provider.get_block_by_number((head - back).into()).await,
    ) else {
        return;
    };
    let block_time = (now.header.timestamp - then.header.timestamp) / back.max(1);
    let delay = confirmations.max(1) * block_time.max(1);
    if delay * 2 > grace {
        warn!(
            target: "operator::exits",
            confirmations, block_time, grace,
            "the confirmation depth takes more than half of LEDGER-9's grace: blocks may spend outputs \
             watchers already treat as exiting; lower the depth or deploy a longer exit period"
        );
    } else {
        info!(target: "operator::exits", confirmations, block_time, grace, "following exits");
    }
}

async fn exit_step(
    chain: &Arc<Chain>,
    provider: &DynProvider,
    [standard, in_flight, batch]: [Address; 3],
    settings: &L1Settings,
) -> Result<bool, L1Error> {
    let head = provider.get_block_number().await.map_err(rpc)?;
    let Some(safe) = (head + 1).checked_sub(settings.deposit_confirmations.max(1)) else {
        return Ok(false);
    };
    let from = (chain.exit_cursor() + 1).max(settings.deployment_block);
    if from > safe {
        return Ok(false);
    }
    let to = safe.min(from + STEP_BLOCKS - 1);
    let standard = StandardExitGame::new(standard, provider.clone());
    let in_flight = InFlightExitGame::new(in_flight, provider.clone());
    let mut events: Vec<((u64, u64), ExitEvent, Option<u64>)> = Vec::new();
    let key = |log: &Log| (log.block_number.unwrap_or(0), log.log_index.unwrap_or(0));
    for (ev, log) in
        standard.ExitStarted_filter().from_block(from).to_block(to).query().await.map_err(rpc)?
    {
        if let Ok(pos) = UtxoPos::from_u256(ev.exitId) {
            events.push((key(&log), ExitEvent::StandardExitStarted { pos }, block_time(&log)));
        }
    }
    for (ev, log) in in_flight
        .InFlightExitStarted_filter()
        .from_block(from)
        .to_block(to)
        .query()
        .await
        .map_err(rpc)?
    {
        if let Ok(tx) = Transaction::decode(&ev.inFlightTx) {
            let event = ExitEvent::InFlightExitStarted { exit_id: ev.exitId, tx };
            events.push((key(&log), event, block_time(&log)));
        }
    }
    for (ev, log) in in_flight
        .InFlightExitPiggybacked_filter()
        .from_block(from)
        .to_block(to)
        .query()
        .await
        .map_err(rpc)?
    {
        if ev.isOutput {
            let event = ExitEvent::OutputPiggybacked { exit_id: ev.exitId, index: ev.index };
            events.push((key(&log), event, block_time(&log)));
        }
    }
    for (ev, log) in in_flight
        .InFlightExitDeleted_filter()
        .from_block(from)
        .to_block(to)
        .query()
        .await
        .map_err(rpc)?
    {
        let event = ExitEvent::InFlightExitDeleted { exit_id: ev.exitId };
        events.push((key(&log), event, block_time(&log)));
    }
    // Batch claims (EXIT-12): each claim of a group, with its batch's token (the start event is
    // in the same L1 transaction as the batch's groups, so it is in this range too).
    let batch = BatchExitGame::new(batch, provider.clone());
    let tokens: HashMap<_, _> = batch
        .BatchExitStarted_filter()
        .from_block(from)
        .to_block(to)
        .query()
        .await
        .map_err(rpc)?
        .into_iter()
        .map(|(ev, _)| (ev.batchId, ev.token))
        .collect();
    for (ev, log) in
        batch.BatchExitGroup_filter().from_block(from).to_block(to).query().await.map_err(rpc)?
    {
        let token = match tokens.get(&ev.batchId) {
            Some(t) => *t,
            None => batch.batchToken(ev.batchId).call().await.map_err(rpc)?,
        };
        // The contract accepted these records: a malformed one cannot be on L1.
        let Ok(claims) = plasma_spec::batch_exit::decode_claims(&ev.claims) else { continue };
        for (pos, amount) in claims {
            let event = ExitEvent::BatchClaimed { pos, owner: ev.owner, token, amount };
            events.push((key(&log), event, block_time(&log)));
        }
    }
    events.sort_by_key(|e| e.0);
    // Nodes that do not put the block's timestamp in logs: read it from the header.
    let mut times: HashMap<u64, u64> = HashMap::new();
    let mut timed = Vec::with_capacity(events.len());
    for ((block, _), event, time) in events {
        let time = match time {
            Some(t) => t,
            None => match times.get(&block) {
                Some(t) => *t,
                None => {
                    let header = provider
                        .get_block_by_number(block.into())
                        .await
                        .map_err(rpc)?
                        .ok_or_else(|| L1Error::Rpc(format!("L1 block {block} not found")))?;
                    times.insert(block, header.header.timestamp);
                    header.header.timestamp
                }
            },
        };
        timed.push((event, time));
    }
    // The events' look-ups and the write are store round trips: off the async workers (A21-3).
    let dropped = off_workers(chain, move |c| Ok(c.apply_exit_events(&timed, to)?)).await?;
    if dropped > 0 {
        info!(target: "operator::exits", dropped, "pending transactions spending exiting outputs dropped");
    }
    Ok(to < safe)
}

fn block_time(log: &Log) -> Option<u64> {
    log.block_timestamp
}
