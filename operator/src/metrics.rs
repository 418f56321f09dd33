//! `GET /metrics`: the operator's figures in Prometheus' text format (issue 20).
//!
//! Every metric is documented in `docs/operations.md` "Monitoring" (type, meaning, the healthy
//! value) and the alert rules in `docs/monitoring/alerts.yml` use them; `tests/tests/metrics.rs`
//! scrapes a real operator and fails if a metric is exposed but not documented, or named by a
//! rule or a Grafana panel but not exposed.
//!
//! A scrape makes no L1 request, never reads the store (a silent database must not hang the
//! scrape that would show it: A21b-2), and takes each lock only to copy numbers: the figures come
//! from the chain's state, the L1 loops' health record (written by the submitter and the deposit
//! follower at every step) and the shared sender's counters (atomics).
//!
//! Lags are in blocks, measured from the loops' own reads of L1:
//! - deposits: L1's head minus the credit cursor (`deposit_confirmations - 1` when keeping up),
//!   and the deposits L1 shows above the cursor, still waiting for their confirmations. Not "L1's
//!   head minus the newest deposit's block": with no deposits that grows while nothing is wrong
//!   (it is shown as its own gauge, for a dashboard).
//! - roots: produced blocks whose root is not yet committed on L1.

use crate::api::ApiContext;
use std::{
    fmt::Write as _,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

/// Request counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Transactions accepted into the mempool.
    pub(crate) accepted: AtomicU64,
    /// Transactions refused.
    pub(crate) rejected: AtomicU64,
}

/// Prometheus' text format, one family at a time.
#[derive(Default)]
struct Text(String);

impl Text {
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    }
}

/// The `/metrics` body. A standby (OP-HA-4) has no chain in memory and runs no L1 loop: it
/// exposes the counters, the election's figures and the store's head only.
pub(crate) fn render(ctx: &ApiContext) -> String {
    let mut t = Text::default();
    let _ = write!(
        t.0,
        "# HELP plasma_operator_info Always 1; label: version.\n\
         # TYPE plasma_operator_info gauge\n\
         plasma_operator_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );

    // Transactions and blocks.
    t.one(
        "plasma_operator_txs_accepted_total",
        "counter",
        "Transactions accepted into the mempool.",
        ctx.metrics().accepted.load(Relaxed),
    );
    t.one(
        "plasma_operator_txs_rejected_total",
        "counter",
        "Transactions refused (invalid, double spend, mempool full).",
        ctx.metrics().rejected.load(Relaxed),
    );

    // The election (OP-HA-1..6): a redb operator is always the leader, in epoch 0.
    let ha = ctx.common.ha.as_ref().map(|h| h.snapshot());
    t.one(
        "plasma_operator_ha_role",
        "gauge",
        "1 while this process leads (accepts transactions, builds blocks, sends roots), 0 on a standby.",
        u8::from(ha.as_ref().is_none_or(|s| s.role == "leader")),
    );
    t.one(
        "plasma_operator_ha_epoch",
        "gauge",
        "The lease epoch this process leads in, or the current leader's as a standby sees it (0: none known; redb: 0).",
        ha.as_ref().map_or(0, |s| s.epoch.or_else(|| s.leader.as_ref().map(|l| l.epoch)).unwrap_or(0)),
    );
    t.one(
        "plasma_operator_ha_transitions_total",
        "counter",
        "Role changes of this process: standby to leader, and leader to deposed.",
        ha.as_ref().map_or(0, |s| s.transitions),
    );
    t.one(
        "plasma_operator_store_poisoned",
        "gauge",
        "1 once the leader's PostgreSQL store refuses every write until reloaded (the process then stops leading and exits 3).",
        u8::from(ha.as_ref().is_some_and(|s| s.store_poisoned.is_some())),
    );

    let crate::api::Serving::Leader(leader) = &ctx.serving else {
        return t.0;
    };
    let s = leader.chain.status();
    let l1 = leader.l1.lock().clone();
    t.one(
        "plasma_operator_mempool_size",
        "gauge",
        "Transactions waiting for a block.",
        s.mempool_size,
    );
    t.one("plasma_operator_utxos", "gauge", "Unspent outputs.", s.utxo_count);
    t.one(
        "plasma_operator_next_child_block",
        "gauge",
        "The number the next child block will get.",
        s.next_child_block,
    );
    t.one(
        "plasma_operator_blocks_produced_total",
        "counter",
        "Child blocks produced since genesis (kept across restarts).",
        (s.next_child_block / 1000).saturating_sub(1),
    );
    t.one(
        "plasma_operator_exiting_outputs",
        "gauge",
        "Outputs leaving through the exit game that the operator refuses to spend (LEDGER-9).",
        s.exiting_outputs,
    );

    // Root submission (OP-4).
    t.one(
        "plasma_operator_uncommitted_blocks",
        "gauge",
        "Produced blocks whose root is not yet committed on L1 (the root submission lag).",
        s.uncommitted_blocks.len(),
    );
    t.one(
        "plasma_operator_root_submissions_total",
        "counter",
        "Root transactions the L1 node took (submitBlock, or submitBlocks for a run), fee bumps included; refused sends are not counted.",
        l1.submissions_sent,
    );
    let sent = l1.submitter.figures();
    t.one(
        "plasma_operator_submitter_fee_bumps_total",
        "counter",
        "Root submissions re-sent at a higher fee (stuck, or an underpriced replacement).",
        sent.fee_bumps,
    );
    t.one(
        "plasma_operator_submitter_mined_total",
        "counter",
        "Root submissions mined and successful.",
        sent.mined,
    );
    t.one(
        "plasma_operator_submitter_failed_total",
        "counter",
        "Root submissions mined and reverted, or refused by the node.",
        sent.reverted + sent.refused,
    );
    t.one(
        "plasma_operator_submitter_stuck_total",
        "counter",
        "Root submissions not mined within stuck_after_ms.",
        sent.stuck,
    );
    if let Some(nonce) = sent.last_nonce {
        t.one(
            "plasma_operator_submitter_nonce",
            "gauge",
            "The nonce of the last root submission sent.",
            nonce,
        );
    }

    // L1 and deposits (OP-5).
    let head = l1.l1_head.max(l1.deposits.head);
    t.one("plasma_operator_l1_head", "gauge", "The last L1 head the L1 loops read.", head);
    let endpoints = l1.endpoints.snapshot();
    t.one("plasma_operator_l1_endpoints", "gauge", "L1 endpoints configured.", endpoints.len());
    t.one(
        "plasma_operator_l1_endpoints_healthy",
        "gauge",
        "L1 endpoints answering, on the right chain and not lagging.",
        endpoints.iter().filter(|e| e.healthy).count(),
    );
    t.one(
        "plasma_operator_l1_error",
        "gauge",
        "1 while the last step of an L1 loop failed (its error is in /v1/status).",
        u8::from(l1.last_error.is_some()),
    );
    t.one(
        "plasma_operator_halted",
        "gauge",
        "1 once block production stopped because a credited deposit is not on L1 (LEDGER-7).",
        u8::from(l1.halt.is_some()),
    );
    t.one(
        "plasma_operator_deposit_cursor",
        "gauge",
        "The last L1 block whose deposits were credited.",
        s.deposit_cursor,
    );
    t.one(
        "plasma_operator_deposits_lag_blocks",
        "gauge",
        "L1 head minus the deposit cursor (deposit_confirmations - 1 when keeping up).",
        head.saturating_sub(s.deposit_cursor),
    );
    if let Some(n) = l1.deposits.uncredited {
        t.one(
            "plasma_operator_deposits_uncredited",
            "gauge",
            "Deposits mined on L1 and not yet credited (waiting for confirmations).",
            n,
        );
    }
    if let Some(b) = l1.deposits.newest_credited_l1_block {
        t.one(
            "plasma_operator_deposit_newest_l1_block",
            "gauge",
            "The L1 block of the newest deposit credited since the operator started.",
            b,
        );
    }
    t.one(
        "plasma_operator_exit_cursor",
        "gauge",
        "The last L1 block whose exit-game events were applied (OP-7).",
        s.exit_cursor,
    );

    let mut body = t.0;
    body.push_str(&leader.chain.ingest_stats().figures().prometheus());
    if let Some(da) = &leader.da {
        body.push_str(&da.metrics());
    }
    body
}
