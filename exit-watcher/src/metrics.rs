//! `GET /metrics`: the watcher's figures in Prometheus' text format (issue 20).
//!
//! Every metric is documented in `docs/operations.md` "Monitoring" (type, meaning, the healthy
//! value) and the alert rules in `docs/monitoring/alerts.yml` use them; `tests/tests/metrics.rs`
//! scrapes a real watcher and fails if a metric is exposed but not documented, or named by a rule
//! or a Grafana panel but not exposed.
//!
//! What a scrape costs and what it cannot do:
//! - It reads the watcher's state through `Watcher::gauges` (each lock held to copy a number) and
//!   L1's latest block once per [`HEAD_CACHE`] with a short timeout: a hung L1 endpoint delays a
//!   scrape by at most that timeout and never hangs it, so the figures that say "L1 is down"
//!   (`plasma_watcher_l1_endpoints_healthy`, `plasma_watcher_stalled`) still arrive.
//! - Nothing here is a secret: L1 endpoints and webhooks are counted, never named; event kinds
//!   are the watcher's own names (an attacker cannot choose a label value, so a flood of odd
//!   events cannot blow up the series count).
//! - The lags are measured against L1, not this machine's clock: `l1_lag_seconds` is L1's head
//!   timestamp minus the cursor's, so a chain that mines on demand (a devnet) or pauses does not
//!   look like a stalled watcher. A stalled watcher shows in `plasma_watcher_stalled`, which the
//!   alert thread computes on its own (`crate::alerts`).

// warp hands extracted values to handlers by value.
#![allow(clippy::needless_pass_by_value)]

use crate::{judge::Event, watcher::Watcher};
use alloy::primitives::U256;
use parking_lot::Mutex;
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};
use warp::{Filter, Rejection, Reply, reply::Response};

/// How long one read of L1's latest block serves scrapes (a dashboard and Prometheus scraping
/// together ask L1 once).
const HEAD_CACHE: Duration = Duration::from_secs(2);
/// An L1 head read older than this is not used for the lag in seconds (it would understate it).
const HEAD_STALE: Duration = Duration::from_secs(30);

/// Event kinds shown from the first scrape on, at 0 until one happens: a rule on
/// `increase(plasma_watcher_events_by_kind_total{kind="blockWithheld"}[…])` needs the series to
/// exist before the first event, or it misses that event (Prometheus sees a series appear at 1,
/// not an increase). Other kinds appear when they first happen.
pub(crate) const KINDS_SHOWN_AT_ZERO: &[&str] = &[
    "blockWithheld",
    "invalidBlock",
    "invalidStandardExit",
    "exitFromBadBlock",
    "challenged",
    "inFlightExitChallenged",
    "massExit",
    "batchMassExit",
    "actionFailed",
    "actionLost",
    "deadlineTight",
    "underfunded",
    "batchRootMismatch",
    "wouldAct",
    "verdictDisagreement",
];

/// What the route keeps between scrapes.
#[derive(Debug, Default)]
struct State {
    /// Events counted so far (the list only grows) and the counts by kind.
    kinds: Mutex<(usize, BTreeMap<String, u64>)>,
    /// The last L1 head read: when, its number and timestamp.
    head: tokio::sync::Mutex<Option<(Instant, u64, u64)>>,
}

/// `GET /metrics`.
pub(crate) fn route(
    watcher: Arc<Watcher>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let state = Arc::new(State::default());
    let with = warp::any().map(move || (watcher.clone(), state.clone()));
    warp::path!("metrics").and(warp::get()).and(with).then(
        |(w, state): (Arc<Watcher>, Arc<State>)| async move {
            let head = state.l1_head(&w).await;
            let body = render(&w, &state, head);
            warp::reply::with_header(body, "content-type", "text/plain; version=0.0.4")
                .into_response()
        },
    )
}

impl State {
    /// L1's head (number, timestamp), read at most every [`HEAD_CACHE`]; `None` when no read
    /// younger than [`HEAD_STALE`] succeeded.
    async fn l1_head(&self, w: &Watcher) -> Option<(u64, u64)> {
        let mut head = self.head.lock().await;
        if head.is_none_or(|(at, _, _)| at.elapsed() >= HEAD_CACHE)
            && let Some((number, time)) = w.l1_head_block().await
        {
            *head = Some((Instant::now(), number, time));
        }
        head.filter(|(at, _, _)| at.elapsed() < HEAD_STALE).map(|(_, n, t)| (n, t))
    }

    /// The events by kind, counting only those added since the last scrape.
    fn kinds(&self, w: &Watcher) -> BTreeMap<String, u64> {
        let mut kinds = self.kinds.lock();
        let (counted, by_kind) = &mut *kinds;
        let total = w.for_events_from(*counted, |e| {
            *by_kind.entry(kind(e)).or_default() += 1;
        });
        *counted = total;
        for k in KINDS_SHOWN_AT_ZERO {
            by_kind.entry((*k).to_owned()).or_default();
        }
        by_kind.clone()
    }
}

/// An event's kind, as `/events` names it (its serde tag).
fn kind(e: &Event) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Prometheus' text format, written one family at a time.
#[derive(Default)]
struct Text(String);

impl Text {
    /// A family without labels.
    fn one(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    }

    /// A family with one label.
    fn labelled<V: std::fmt::Display>(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label: &str,
        series: impl IntoIterator<Item = (String, V)>,
    ) {
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for (value_of_label, v) in series {
            let _ = writeln!(self.0, "{name}{{{label}=\"{}\"}} {v}", escape(&value_of_label));
        }
    }
}

/// A label value escaped as the text format requires.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Wei as the float Prometheus stores (exact to 53 bits: about 0.009 ETH of precision at 100,000
/// ETH, plenty for a balance against a need).
fn wei(v: U256) -> f64 {
    v.to_string().parse().unwrap_or(f64::MAX)
}

fn render(w: &Watcher, state: &State, head: Option<(u64, u64)>) -> String {
    let g = w.gauges();
    let mut t = Text::default();
    let _ = write!(
        t.0,
        "# HELP plasma_watcher_info Always 1; labels: version, watcher address, monitor.\n\
         # TYPE plasma_watcher_info gauge\n\
         plasma_watcher_info{{version=\"{}\",watcher=\"{}\",monitor=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION"),
        w.address(),
        g.monitor
    );
    t.one(
        "plasma_watcher_monitor",
        "gauge",
        "1 for a read-only monitor (--monitor).",
        u8::from(g.monitor),
    );

    // L1.
    let head_number = match (g.l1_head, head) {
        (Some(a), Some((b, _))) => Some(a.max(b)),
        (a, b) => a.or(b.map(|h| h.0)),
    };
    t.one("plasma_watcher_l1_cursor", "gauge", "The last L1 block the watcher read.", g.cursor);
    t.one(
        "plasma_watcher_l1_cursor_timestamp_seconds",
        "gauge",
        "The L1 timestamp of the newest block read (unix seconds).",
        g.cursor_time,
    );
    if let Some(h) = head_number {
        t.one(
            "plasma_watcher_l1_head",
            "gauge",
            "L1's latest block (endpoint health probe or a read).",
            h,
        );
        t.one(
            "plasma_watcher_l1_lag_blocks",
            "gauge",
            "L1 head minus the cursor (confirmations - 1 when keeping up).",
            h.saturating_sub(g.cursor),
        );
    }
    if let Some((_, head_time)) = head {
        t.one(
            "plasma_watcher_l1_lag_seconds",
            "gauge",
            "L1 head timestamp minus the cursor's (L1 time).",
            head_time.saturating_sub(g.cursor_time),
        );
    }
    t.one(
        "plasma_watcher_l1_confirmations",
        "gauge",
        "Confirmations waited for (--confirmations).",
        g.confirmations,
    );
    t.one("plasma_watcher_l1_endpoints", "gauge", "L1 endpoints configured.", g.l1_endpoints.0);
    t.one(
        "plasma_watcher_l1_endpoints_healthy",
        "gauge",
        "L1 endpoints answering, on the right chain and not lagging.",
        g.l1_endpoints.1,
    );

    // The child chain.
    t.one(
        "plasma_watcher_child_head",
        "gauge",
        "The highest child block committed on L1, as far as the cursor read.",
        g.child_committed,
    );
    t.one(
        "plasma_watcher_synced_block",
        "gauge",
        "The last block (child or deposit) the watcher validated.",
        g.synced,
    );
    t.one(
        "plasma_watcher_child_lag_blocks",
        "gauge",
        "Child blocks committed on L1 and not yet validated.",
        g.child_committed.saturating_sub(g.synced).div_ceil(1000),
    );
    let now_l1 = head.map_or(g.cursor_time, |(_, time)| time.max(g.cursor_time));
    t.one(
        "plasma_watcher_child_lag_seconds",
        "gauge",
        "How long the oldest commitment not yet validated has waited (L1 time); 0 when none.",
        g.oldest_pending_time.map_or(0, |since| now_l1.saturating_sub(since)),
    );
    t.one(
        "plasma_watcher_pending_blocks",
        "gauge",
        "Blocks (child and deposit) read from L1 and not yet validated.",
        g.pending_blocks,
    );
    t.one(
        "plasma_watcher_downloads_in_flight",
        "gauge",
        "Block downloads in progress.",
        g.downloads,
    );
    t.one(
        "plasma_watcher_downloads_projected_late",
        "gauge",
        "Downloads whose rate projects past the availability deadline (WATCH-3).",
        g.downloads_late,
    );

    // Safety.
    t.one(
        "plasma_watcher_chain_safe",
        "gauge",
        "1 while no committed block was withheld or invalid; 0 from the first bad block on.",
        u8::from(g.byzantine_from.is_none()),
    );
    t.one(
        "plasma_watcher_byzantine_from",
        "gauge",
        "The first withheld or invalid block; 0 while the chain is safe.",
        g.byzantine_from.unwrap_or(0),
    );

    // Exits and guards.
    t.one("plasma_watcher_exits_watched", "gauge", "Standard exits watched.", g.exits_watched);
    t.one(
        "plasma_watcher_in_flight_exits_watched",
        "gauge",
        "In-flight exits watched.",
        g.in_flight_exits_watched,
    );
    if let Some(n) = g.guarded {
        t.one("plasma_watcher_guarded_owners", "gauge", "Owners guarded.", n);
    }

    // Funding (WATCH-13).
    let s = w.status();
    t.one(
        "plasma_watcher_guarded_outputs",
        "gauge",
        "Guarded outputs worth exiting, at the last funding check.",
        s.guarded_outputs,
    );
    t.one(
        "plasma_watcher_unaffordable_outputs",
        "gauge",
        "Of those, how many the balance could not pay to exit.",
        s.unaffordable_outputs,
    );
    if let Some(f) = w.funding() {
        t.one(
            "plasma_watcher_balance_wei",
            "gauge",
            "The tower's L1 balance (wei).",
            wei(f.balance),
        );
        t.one(
            "plasma_watcher_funding_needed_wei",
            "gauge",
            "What exiting every guarded output worth exiting would cost now (bonds and gas, wei).",
            wei(f.needed),
        );
        t.one(
            "plasma_watcher_funding_checked_timestamp_seconds",
            "gauge",
            "When the last funding check ran (unix seconds).",
            f.at,
        );
    }

    // Actions (WATCH-11), through the shared sender.
    let a = g.sender;
    t.one(
        "plasma_watcher_actions_sent_total",
        "counter",
        "L1 transactions sent (every attempt).",
        a.sent,
    );
    t.one(
        "plasma_watcher_actions_fee_bumps_total",
        "counter",
        "Re-sends of a stuck action at a higher fee.",
        a.fee_bumps,
    );
    t.one(
        "plasma_watcher_actions_mined_total",
        "counter",
        "Attempts mined and successful.",
        a.mined,
    );
    t.one(
        "plasma_watcher_actions_failed_total",
        "counter",
        "Attempts mined and reverted, or refused by the node.",
        a.reverted + a.refused,
    );
    t.one(
        "plasma_watcher_actions_stuck_total",
        "counter",
        "Attempts not mined within --stuck-after.",
        a.stuck,
    );
    if let Some(n) = a.last_nonce {
        t.one("plasma_watcher_sender_nonce", "gauge", "The nonce of the last transaction sent.", n);
    }

    // Events.
    t.one("plasma_watcher_events_total", "counter", "Events recorded (all kinds).", g.events);
    t.labelled(
        "plasma_watcher_events_by_kind_total",
        "counter",
        "Events recorded, by kind (as /events names them).",
        "kind",
        state.kinds(w),
    );
    let tight = {
        let kinds = state.kinds.lock();
        kinds.1.get("deadlineTight").copied().unwrap_or(0)
    };
    t.one(
        "plasma_watcher_deadline_alerts_total",
        "counter",
        "Actions sent with less than the margin left (deadlineTight events).",
        tight,
    );

    // Cross-checks (issue 20).
    let peers = s.cross_check;
    t.one(
        "plasma_watcher_cross_check_peers",
        "gauge",
        "Peers cross-checked (--cross-check).",
        peers.len(),
    );
    t.one(
        "plasma_watcher_cross_check_peers_unreachable",
        "gauge",
        "Peers whose last poll failed.",
        peers.iter().filter(|p| p.reachable == Some(false)).count(),
    );
    t.one(
        "plasma_watcher_cross_check_disagreements",
        "gauge",
        "Blocks a peer judged differently, as of the last polls.",
        peers.iter().map(|p| p.disagreements.len()).sum::<usize>(),
    );

    // The tower (issue 17).
    if let Some(d) = s.da {
        t.one(
            "plasma_watcher_da_chunks_stored",
            "gauge",
            "Availability chunks stored.",
            d.chunks_stored,
        );
        t.one(
            "plasma_watcher_da_rebuilt_blocks_total",
            "counter",
            "Blocks rebuilt from the towers' chunks.",
            d.rebuilt_total,
        );
        t.one(
            "plasma_watcher_da_faults_total",
            "counter",
            "Availability faults seen.",
            d.faults_total,
        );
    }

    // Alerts (crate::alerts): delivery and the stall detector.
    let mut out = t.0;
    if let Some(alerts) = w.alerts() {
        out.push_str(&alerts.metrics_text());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_shown_at_zero_is_an_event_kind() {
        // The enum's variants, camelCased as serde names them.
        let src = include_str!("judge.rs");
        let body = src.split("pub enum Event {").nth(1).and_then(|b| b.split("\n}\n").next());
        let body = body.expect("judge.rs defines `pub enum Event`");
        let variants: Vec<String> = body
            .lines()
            .filter_map(|l| l.strip_prefix("    "))
            .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
            .filter_map(|l| l.split([' ', '{', ',', '(']).next())
            .map(|v| {
                let mut c = v.chars();
                c.next()
                    .map_or_else(String::new, |f| f.to_ascii_lowercase().to_string() + c.as_str())
            })
            .collect();
        for k in KINDS_SHOWN_AT_ZERO {
            assert!(variants.iter().any(|v| v == k), "{k} is not an Event kind: {variants:?}");
        }
    }

    #[test]
    fn an_event_kind_is_its_serde_tag() {
        assert_eq!(kind(&Event::BlockWithheld { blknum: 7 }), "blockWithheld");
        assert_eq!(
            kind(&Event::DeadlineTight { action: "challenge:1".into(), seconds_left: 3 }),
            "deadlineTight"
        );
    }

    #[test]
    fn label_values_are_escaped_and_wei_is_a_float() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(wei(U256::from(10u64).pow(U256::from(21u64))), 1e21);
        let mut t = Text::default();
        t.labelled("x_total", "counter", "h", "kind", [("a".to_owned(), 1u64)]);
        assert_eq!(t.0, "# HELP x_total h\n# TYPE x_total counter\nx_total{kind=\"a\"} 1\n");
    }
}
