//! The operator's L1 side: committing block roots (OP-4) and following deposits (OP-5).

use crate::chain::Chain;
use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider},
    rpc::types::BlockNumberOrTag,
};
use plasma_contracts::PlasmaFramework;
use std::{sync::Arc, time::Duration};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

/// L1 failures; all are retried by the loops, which log them.
#[derive(Debug, thiserror::Error)]
pub enum L1Error {
    /// An RPC call failed.
    #[error("L1 RPC: {0}")]
    Rpc(String),
    /// L1 holds a different root for one of our blocks: someone else submitted, or our state is
    /// not the chain's. The submitter stops rather than guess.
    #[error("L1 has root {on_l1} for block {blknum}, ours is {ours}")]
    RootMismatch {
        /// The block.
        blknum: u64,
        /// Root in the L1 event.
        on_l1: alloy::primitives::B256,
        /// Our root.
        ours: alloy::primitives::B256,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn rpc(e: impl std::fmt::Display) -> L1Error {
    L1Error::Rpc(e.to_string())
}

/// Settings of the L1 loops.
#[derive(Clone, Debug)]
pub(crate) struct L1Settings {
    /// The framework contract.
    pub framework: Address,
    /// The operator's address (sender of `submitBlock`).
    pub operator: Address,
    /// Confirmations before a deposit is credited.
    pub deposit_confirmations: u64,
    /// Confirmations before a commitment is recorded.
    pub commit_confirmations: u64,
    /// Polling interval.
    pub poll: Duration,
    /// When an unmined submission gets its fee bumped.
    pub stuck_after: Duration,
}

/// Health of the L1 side, for `/status` and `/metrics`.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct L1Health {
    /// The last L1 head seen.
    pub l1_head: u64,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// Root submissions sent (including fee bumps).
    pub submissions_sent: u64,
}

/// Commits produced blocks' roots in order, exactly once each (OP-4).
pub(crate) async fn run_submitter(
    chain: Arc<Chain>,
    provider: DynProvider,
    settings: L1Settings,
    health: Arc<parking_lot::Mutex<L1Health>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let framework = PlasmaFramework::new(settings.framework, provider.clone());
    let mut attempt = 0u32;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let step =
            submit_step(&chain, &provider, &framework, &settings, &mut attempt, &health).await;
        if step.is_ok() {
            health.lock().last_error = None;
        }
        match step {
            Ok(true) => continue, // progress: look again at once
            Ok(false) => {}
            Err(L1Error::RootMismatch { blknum, on_l1, ours }) => {
                error!(target: "operator::l1", blknum, %on_l1, %ours, "L1 disagrees with our block; submitter stopped");
                health.lock().last_error = Some(format!("root mismatch at block {blknum}"));
                return;
            }
            Err(e) => {
                warn!(target: "operator::l1", error = %e, "root submission step failed; retrying");
                health.lock().last_error = Some(e.to_string());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One step: returns whether a block got committed.
async fn submit_step(
    chain: &Chain,
    provider: &DynProvider,
    framework: &PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    settings: &L1Settings,
    attempt: &mut u32,
    health: &parking_lot::Mutex<L1Health>,
) -> Result<bool, L1Error> {
    let Some(blknum) = chain.next_uncommitted() else { return Ok(false) };
    let Some(record) = chain.block(blknum)? else { return Ok(false) };
    let head = provider.get_block_number().await.map_err(rpc)?;
    health.lock().l1_head = head;
    let on_l1 = framework.nextChildBlock().call().await.map_err(rpc)?;
    if on_l1 > blknum {
        // Already committed (by us, maybe before a restart): find the event, check the root.
        let logs = framework
            .BlockSubmitted_filter()
            .topic1(U256::from(blknum))
            .from_block(0)
            .to_block(BlockNumberOrTag::Latest)
            .query()
            .await
            .map_err(rpc)?;
        let Some((event, log)) = logs.into_iter().next() else {
            return Err(L1Error::Rpc(format!(
                "no BlockSubmitted event for committed block {blknum}"
            )));
        };
        if event.root != record.root {
            return Err(L1Error::RootMismatch { blknum, on_l1: event.root, ours: record.root });
        }
        let mined_at = log.block_number.unwrap_or(head);
        if head.saturating_sub(mined_at) + 1 < settings.commit_confirmations {
            return Ok(false);
        }
        chain.mark_committed(blknum, event.timestamp, log.transaction_hash.unwrap_or_default())?;
        *attempt = 0;
        return Ok(true);
    }
    if on_l1 < blknum {
        return Err(L1Error::Rpc(format!("L1 expects block {on_l1} before our block {blknum}")));
    }
    // on_l1 == blknum: send, always with the confirmed nonce, so a resend replaces (never adds to)
    // a submission still pending from before: at most one can be mined.
    let nonce = provider.get_transaction_count(settings.operator).latest().await.map_err(rpc)?;
    let base = provider.get_gas_price().await.map_err(rpc)?;
    let price = base + base * u128::from(*attempt) / 4 + 1;
    let pending = framework
        .submitBlock(U256::from(blknum), record.root)
        .from(settings.operator)
        .nonce(nonce)
        .gas_price(price)
        .gas(120_000)
        .send()
        .await;
    *attempt += 1;
    health.lock().submissions_sent += 1;
    let pending = match pending {
        Ok(p) => p,
        Err(e) => {
            // "replacement underpriced" or "nonce too low" mean an earlier send is in flight or done.
            debug!(target: "operator::l1", blknum, error = %e, "submission not accepted; will re-check L1");
            return Ok(false);
        }
    };
    info!(target: "operator::l1", blknum, nonce, tx = %pending.tx_hash(), "root submitted");
    match tokio::time::timeout(settings.stuck_after, pending.get_receipt()).await {
        Ok(Ok(receipt)) if receipt.status() => {
            *attempt = 0;
            Ok(false) // the next step finds it on L1 and records it after its confirmations
        }
        Ok(Ok(receipt)) => {
            Err(L1Error::Rpc(format!("submitBlock reverted in {}", receipt.transaction_hash)))
        }
        Ok(Err(e)) => Err(rpc(e)),
        Err(_) => {
            warn!(target: "operator::l1", blknum, attempt = *attempt, "submission stuck; bumping its fee");
            Ok(false)
        }
    }
}

/// Credits deposits once they are `deposit_confirmations` deep (OP-5).
pub(crate) async fn run_deposit_follower(
    chain: Arc<Chain>,
    provider: DynProvider,
    settings: L1Settings,
    health: Arc<parking_lot::Mutex<L1Health>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let framework = PlasmaFramework::new(settings.framework, provider.clone());
    loop {
        if *shutdown.borrow() {
            return;
        }
        match deposit_step(&chain, &provider, &framework, &settings).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => {
                warn!(target: "operator::deposits", error = %e, "deposit scan failed; retrying");
                health.lock().last_error = Some(e.to_string());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.poll) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn deposit_step(
    chain: &Chain,
    provider: &DynProvider,
    framework: &PlasmaFramework::PlasmaFrameworkInstance<DynProvider>,
    settings: &L1Settings,
) -> Result<bool, L1Error> {
    let head = provider.get_block_number().await.map_err(rpc)?;
    // A deposit mined in block b has head - b + 1 confirmations.
    let Some(safe) = (head + 1).checked_sub(settings.deposit_confirmations.max(1)) else {
        return Ok(false);
    };
    let from = chain.deposit_cursor() + 1;
    if from > safe {
        return Ok(false);
    }
    let to = safe.min(from + 1_999);
    let logs = framework
        .DepositCreated_filter()
        .from_block(from)
        .to_block(to)
        .query()
        .await
        .map_err(rpc)?;
    for (event, _) in logs {
        let blknum: u64 = event
            .blknum
            .try_into()
            .map_err(|_| L1Error::Rpc("deposit block number overflows".into()))?;
        chain.credit_deposit(blknum, &event.depositTx, event.timestamp)?;
    }
    chain.set_deposit_cursor(to)?;
    Ok(to < safe)
}
