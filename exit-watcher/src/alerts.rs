//! Alerts (issue 20): webhooks to a person, and a stall detector that does not share the loop it
//! watches.
//!
//! A watchtower that stops silently is worse than none: its owners believe they are guarded.
//! OMG's watcher users lost days to a watcher that had stalled without anyone seeing it. So:
//!
//! - **What is alerted.** Byzantine events (a withheld or invalid block, an invalid exit, an exit
//!   from a bad block, a cross-check disagreement), actions that failed or went out with less
//!   than the margin, the tower's balance below what exiting its guarded outputs needs
//!   (`Watcher::funding`), and the watcher itself stalling. Conditions (funding, stall) send a
//!   `resolved` message when they clear.
//! - **Where it runs.** Everything here — delivery and the stall detector — runs on its own OS
//!   thread with its own single-threaded tokio runtime and its own HTTP client. It shares no lock
//!   and no task with the watcher's loop: the loop writes plain atomics ([`Heartbeat`]) and hands
//!   events over with a non-blocking `try_send` on a bounded queue. A loop hung on an L1 call that
//!   never answers, a runtime starved by a long validation, or a deadlock in the watcher cannot
//!   keep this thread from noticing and saying so. (A separate process would also survive a
//!   crash of the watcher, but a crash is already visible: the service manager restarts it and
//!   `/health` stops answering. What nobody sees is a process alive and doing nothing.)
//! - **How it cannot stall or flood.** The loop never waits on a webhook: a full queue drops the
//!   alert and counts it (`plasma_watcher_alerts_dropped_total`). Each webhook has its own worker
//!   and two queues (`Lanes`): critical alerts go first and are never dropped for warnings, and
//!   a person is told how many were dropped once the queues drain. A slow or dead receiver delays
//!   only itself. 5xx, 429 and connection errors are
//!   retried with exponential backoff (honouring a short `Retry-After`); other 4xx are not (the
//!   receiver refused the message; sending it again will not help). Identical alerts (same kind
//!   and subject) are sent once per [`DEDUPE_WINDOW`]; a repeat after the window says how many
//!   were suppressed, so a persistent problem is repeated, but never at the loop's poll rate. A
//!   cross-check peer that flaps pages once (`Flaps`).
//! - **Liveness.** Only the loop's own steps and events ([`in_loop`]) count as the loop alive;
//!   steps that keep failing are a stall (`stepFailing`) even while the cursor moves.
//! - **Secrets.** A Slack or Discord webhook URL is a bearer credential. It is never logged,
//!   shown in errors or in `/status`: only `https://host/…` ([`plasma_contracts::l1::redact_url`]).
//!   Pass webhooks in `PLASMA_WATCHER_ALERT_WEBHOOK` rather than on the command line, where every
//!   local user can read them in `ps`.
//! - **Untrusted text.** Event fields can carry text an attacker chose (an invalid block's reason
//!   quotes the block). Slack bodies escape `&`, `<`, `>` (no `<!channel>` mention or link can be
//!   injected); Discord bodies escape its markdown (no masked link, header or code block) and
//!   disable every mention (`allowed_mentions: {parse: []}`).

use alloy::primitives::{Address, U256};
use plasma_contracts::l1::{Url, redact_text, redact_url};
use serde::Serialize;
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tracing::{error, info, warn};

/// Alerts waiting to be dispatched: the loop's `try_send` fails (and counts a drop) beyond this,
/// rather than wait.
pub const QUEUE: usize = 256;
/// Messages waiting per webhook (one receiver down for a while fills only its own queue).
pub const PER_WEBHOOK_QUEUE: usize = 64;
/// Attempts per message and webhook (the first and four retries: 1 + 2 + 4 + 8 s of backoff).
pub const MAX_ATTEMPTS: u32 = 5;
/// The first retry's delay; doubled at each retry.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// The longest `Retry-After` honoured (a receiver asking for more gets the normal backoff).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// One webhook request's time limit (connection and answer).
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// An identical alert (same kind and subject) is sent at most once in this window.
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(3600);
/// Discord refuses `content` over 2,000 characters; Slack truncates long texts. Summaries are cut
/// below both.
const MAX_TEXT: usize = 1_900;

/// Why the `--alert.*` settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum AlertConfigError {
    /// A webhook is not an http(s) URL (shown redacted: it may be a secret).
    #[error("--alert.webhook {shown}: {reason}")]
    BadWebhook {
        /// The webhook, redacted.
        shown: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--alert.stall-after 0` would call every moment a stall.
    #[error("--alert.stall-after must be at least 1 second")]
    ZeroStallAfter,
    /// The HTTP client could not be built (TLS roots).
    #[error("alert HTTP client: {0}")]
    Client(String),
    /// The alert thread could not be started.
    #[error("alert thread: {0}")]
    Thread(String),
}

/// The body a webhook receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Format {
    /// `{"alert", "severity", "status", "summary", "details", "watcher", "at"}`.
    Generic,
    /// Slack incoming webhook: `{"text": …}`.
    Slack,
    /// Discord webhook: `{"content": …}`.
    Discord,
}

/// One webhook: where and in which format. Its `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The body format.
    pub format: Format,
    url: Url,
}

impl Webhook {
    /// Parses `[generic+|slack+|discord+]http(s)://…` (a plain URL is generic JSON).
    pub fn parse(s: &str) -> Result<Self, AlertConfigError> {
        let s = s.trim();
        let (format, rest) = [("generic+", Format::Generic), ("slack+", Format::Slack)]
            .into_iter()
            .chain([("discord+", Format::Discord)])
            .find_map(|(p, f)| s.strip_prefix(p).map(|rest| (f, rest)))
            .unwrap_or((Format::Generic, s));
        let url = Url::parse(rest).map_err(|e| AlertConfigError::BadWebhook {
            // Nothing of it: an unparsable URL cannot be cut to its host.
            shown: format!("<{} characters>", rest.chars().count()),
            reason: format!("not a URL ({e})"),
        })?;
        let bad = |reason: &str| AlertConfigError::BadWebhook {
            shown: redact_url(&url),
            reason: reason.to_owned(),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(
                "not an http(s) URL (the format prefixes are generic+, slack+ and discord+)",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        Ok(Self { format, url })
    }

    /// The URL as it may be shown: `https://host/…`.
    pub fn redacted(&self) -> String {
        redact_url(&self.url)
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}+{}", self.format, self.redacted())
    }
}

impl std::fmt::Display for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// `--alert.webhook` values: each may itself be a comma-separated list.
pub fn parse_webhooks<S: AsRef<str>>(values: &[S]) -> Result<Vec<Webhook>, AlertConfigError> {
    values
        .iter()
        .flat_map(|v| v.as_ref().split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|s| !s.trim().is_empty())
        .map(|s| Webhook::parse(&s))
        .collect()
}

/// What the alert thread needs.
#[derive(Clone, Debug)]
pub struct AlertSettings {
    /// Where alerts go (none: the stall detector still runs, logs and sets the metric).
    pub webhooks: Vec<Webhook>,
    /// This watcher's name in every message.
    pub name: String,
    /// The watcher's L1 address (the balance read for the funding alert).
    pub watcher: Address,
    /// L1 endpoints the stall detector reads the head from itself (the watcher's, in order).
    pub l1: plasma_contracts::l1::Endpoints,
    /// The watcher's `--l1.confirmations` (how far behind the head its cursor stays when well).
    pub confirmations: u64,
    /// The watcher's availability timeout: a committed block may rightly wait that long.
    pub availability_timeout: Duration,
    /// How long without progress counts as a stall.
    pub stall_after: Duration,
    /// How long an unchanged L1 head counts as L1 stalled (`None`: not checked — a devnet that
    /// mines on demand has no new block for hours).
    pub l1_stall_after: Option<Duration>,
    /// `l1_stall_after` is the default (no `--alert.l1-stall-after`): [`Self::on_chain`] turns
    /// it off on a development chain.
    pub l1_stall_default: bool,
}

impl AlertSettings {
    /// Checks the settings (the webhooks were checked when parsed).
    pub fn check(&self) -> Result<(), AlertConfigError> {
        if self.stall_after.is_zero() {
            return Err(AlertConfigError::ZeroStallAfter);
        }
        Ok(())
    }

    /// The default for `l1_stall_after`: `stall_after`, but off on a development chain (chain
    /// id 31337 — anvil, Hardhat — or 1337 — Ganache, geth --dev), whose node mines on demand:
    /// an idle devnet's head never moves. Decided by the chain, never by where the node is: a
    /// production tower with its own node on 127.0.0.1 is common, and that node stopping to
    /// sync is exactly what this check is for (audit 20, finding 2).
    pub fn default_l1_stall_after(chain_id: u64, stall_after: Duration) -> Option<Duration> {
        if DEV_CHAIN_IDS.contains(&chain_id) { None } else { Some(stall_after) }
    }

    /// The settings for L1 chain `chain_id` (read at start): the default L1 head check follows
    /// [`Self::default_l1_stall_after`]; an explicit `--alert.l1-stall-after` stands.
    #[must_use]
    pub fn on_chain(mut self, chain_id: u64) -> Self {
        if self.l1_stall_default {
            self.l1_stall_after = Self::default_l1_stall_after(chain_id, self.stall_after);
        }
        self
    }
}

/// Chain ids of development chains that mine on demand (anvil and Hardhat: 31337; Ganache and
/// `geth --dev`: 1337).
pub const DEV_CHAIN_IDS: [u64; 2] = [31_337, 1_337];

/// How urgent an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// Funds are at risk now or the watcher cannot protect them: wake someone.
    Critical,
    /// Something a person should look at today.
    Warning,
}

/// Whether a condition started or cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// It happened or holds.
    Firing,
    /// The condition cleared.
    Resolved,
}

/// One alert, before it is rendered for a webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// The event kind (`blockWithheld`, …) or condition (`stalled`, `underfunded`).
    pub kind: String,
    /// How urgent.
    pub severity: Severity,
    /// Firing or resolved.
    pub state: State,
    /// One sentence for a person.
    pub summary: String,
    /// The event's fields, or the condition's figures.
    pub details: Value,
    /// When it was raised.
    pub at: SystemTime,
    /// Identical alerts share this key and are sent once per [`DEDUPE_WINDOW`]; conditions
    /// (which send a message only when they change) have none.
    pub dedupe: Option<String>,
}

/// A field of an event's JSON as text (strings without their quotes).
fn field(d: &Value, name: &str) -> String {
    match &d[name] {
        Value::String(s) => s.clone(),
        Value::Null => "?".into(),
        v => v.to_string(),
    }
}

/// The alert for a watcher event, if it is one a person must hear of. Matched on the event's
/// serialized `kind`, so that kinds added elsewhere (a cross-check's `verdictDisagreement`) need
/// only a line here.
pub fn from_event(event: &crate::Event) -> Option<Alert> {
    let mut details = serde_json::to_value(event).ok()?;
    let kind = details.as_object_mut()?.remove("kind")?.as_str()?.to_owned();
    let d = &details;
    let (severity, summary, subject) = match kind.as_str() {
        "blockWithheld" => (
            Severity::Critical,
            format!(
                "block {} withheld: its data was not available within the availability timeout. \
                 The chain is byzantine from this block; the watcher exits the owners it guards",
                field(d, "blknum")
            ),
            field(d, "blknum"),
        ),
        "invalidBlock" => (
            Severity::Critical,
            format!(
                "block {} is invalid ({}). The chain is byzantine from this block; the watcher \
                 exits the owners it guards",
                field(d, "blknum"),
                field(d, "reason")
            ),
            field(d, "blknum"),
        ),
        "invalidStandardExit" => (
            Severity::Warning,
            format!(
                "invalid standard exit of {}: the output was spent in {}; the watcher challenges it",
                field(d, "utxo_pos"),
                field(d, "spending_tx")
            ),
            field(d, "utxo_pos"),
        ),
        "exitFromBadBlock" => (
            Severity::Critical,
            format!(
                "exit of {} from a withheld or invalid block: every owner of an older output must \
                 exit before it is processed",
                field(d, "utxo_pos")
            ),
            field(d, "utxo_pos"),
        ),
        "batchRootMismatch" => (
            Severity::Critical,
            format!(
                "batch exit {}: the claims on L1 do not rebuild its root; the watcher cannot \
                 prove anything about it",
                field(d, "batch_id")
            ),
            field(d, "batch_id"),
        ),
        "verdictDisagreement" => (
            Severity::Critical,
            format!(
                "cross-checked watcher {} disagrees on block {}: ours {}, theirs {}. One of the \
                 two is wrong (a bug, a different deployment, or a lie): compare their logs",
                field(d, "peer"),
                field(d, "blknum"),
                d["ours"],
                d["theirs"]
            ),
            format!("{}:{}", field(d, "peer"), field(d, "blknum")),
        ),
        // Reported once per outage by the cross-checker; its return resolves it.
        "crossCheckPeerDown" | "crossCheckPeerUp" => {
            let up = kind == "crossCheckPeerUp";
            let summary = if up {
                format!("cross-checked watcher {} answers again", field(d, "peer"))
            } else {
                format!(
                    "cross-checked watcher {} does not answer ({}): blocks are not cross-checked",
                    field(d, "peer"),
                    field(d, "reason")
                )
            };
            return Some(Alert {
                kind: PEER_DOWN.into(),
                severity: Severity::Warning,
                state: if up { State::Resolved } else { State::Firing },
                summary: redact_text(&summary),
                dedupe: Some(format!("{PEER_DOWN}:{}", field(&details, "peer"))),
                details,
                at: SystemTime::now(),
            });
        }
        "actionFailed" => (
            Severity::Critical,
            format!(
                "action {} failed: {} (retried at every step; a deadline may pass)",
                field(d, "action"),
                field(d, "reason")
            ),
            // The reason changes between attempts (hashes, nonces): one alert per action.
            field(d, "action"),
        ),
        "deadlineTight" => (
            Severity::Critical,
            format!(
                "action {} went out with only {} s left before its deadline (less than the margin)",
                field(d, "action"),
                field(d, "seconds_left")
            ),
            field(d, "action"),
        ),
        "actionLost" => (
            Severity::Warning,
            format!(
                "L1 reorganised away action {} ({}): the watcher judges again and re-sends it",
                field(d, "action"),
                field(d, "l1_tx")
            ),
            field(d, "action"),
        ),
        _ => return None,
    };
    let dedupe = Some(format!("{kind}:{subject}"));
    Some(Alert {
        kind,
        severity,
        state: State::Firing,
        summary: redact_text(&summary),
        details,
        at: SystemTime::now(),
        dedupe,
    })
}

/// `wei` as ETH, exactly (trailing zeros cut).
pub fn fmt_eth(wei: U256) -> String {
    let unit = U256::from(10u64).pow(U256::from(18));
    let (whole, frac) = (wei / unit, wei % unit);
    if frac.is_zero() {
        return format!("{whole} ETH");
    }
    let frac = format!("{frac:0>18}");
    format!("{whole}.{} ETH", frac.trim_end_matches('0'))
}

/// `t` as RFC 3339 in UTC (`2026-12-03T05:40:30Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Slack's three control characters escaped (api.slack.com "Formatting text"): text an attacker
/// chose cannot become a `<!channel>` mention or a link.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `s` cut to at most `max` characters (on a character boundary), marked when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// The one line a chat shows: `[name] CRITICAL blockWithheld: summary` (`RESOLVED` when cleared),
/// whole.
fn chat_text(alert: &Alert, watcher: &str) -> String {
    let level = match (alert.state, alert.severity) {
        (State::Resolved, _) => "RESOLVED",
        (State::Firing, Severity::Critical) => "CRITICAL",
        (State::Firing, Severity::Warning) => "WARNING",
    };
    format!("[{watcher}] {level} {}: {}", alert.kind, alert.summary)
}

/// [`chat_text`] cut below the chats' limits.
fn chat_line(alert: &Alert, watcher: &str) -> String {
    cut(&chat_text(alert, watcher), MAX_TEXT)
}

/// Discord's markdown escaped, cut to [`MAX_TEXT`] characters after escaping (never inside an
/// escape). Text an attacker chose (a peer's reason, an invalid block's) cannot become a masked
/// link `[bank](https://evil)`, a header, a quote, a spoiler or a code block; line breaks become
/// spaces. Mentions are disabled separately (`allowed_mentions`).
fn discord_text(s: &str) -> String {
    let mut out = String::new();
    let mut n = 0;
    for c in s.chars() {
        let c = if matches!(c, '\n' | '\r') { ' ' } else { c };
        let escaped = matches!(
            c,
            '\\' | '*'
                | '_'
                | '~'
                | '`'
                | '|'
                | '>'
                | '<'
                | '['
                | ']'
                | '('
                | ')'
                | '#'
                | '-'
                | '@'
                | ':'
        );
        let width = 1 + usize::from(escaped);
        if n + width > MAX_TEXT {
            out.push('…');
            return out;
        }
        if escaped {
            out.push('\\');
        }
        out.push(c);
        n += width;
    }
    out
}

/// The JSON body `format` sends for `alert` from the watcher named `watcher`.
pub fn body(format: Format, alert: &Alert, watcher: &str) -> Value {
    match format {
        Format::Generic => json!({
            "alert": alert.kind,
            "severity": alert.severity,
            "status": alert.state,
            "summary": alert.summary,
            "details": alert.details,
            "watcher": watcher,
            "at": rfc3339(alert.at),
        }),
        Format::Slack => json!({ "text": slack_escape(&chat_line(alert, watcher)) }),
        Format::Discord => json!({
            "content": discord_text(&chat_text(alert, watcher)),
            // No @everyone, @here, role or user mention, whatever the text says.
            "allowed_mentions": { "parse": [] },
        }),
    }
}

/// What the watcher's loop writes for the stall detector: atomics only, so that writing never
/// waits and reading never takes a lock the loop holds.
#[derive(Debug)]
pub struct Heartbeat {
    base: Instant,
    /// Milliseconds since `base` at the last step that completed without error.
    ok_ms: AtomicU64,
    /// The same moment as Unix seconds (`plasma_watcher_last_step_ok_timestamp_seconds`).
    ok_unix: AtomicU64,
    /// Milliseconds since `base` at the last step that failed (0: none yet).
    fail_ms: AtomicU64,
    /// Steps that failed, in all (`plasma_watcher_step_failures_total`).
    failures: AtomicU64,
    /// Milliseconds since `base` at the last event the loop itself raised (an action mined is
    /// one: a step sending a hundred mass-exit transactions is long, but not stalled). Events of
    /// other tasks (the cross-checker) never write it: they run while the loop hangs.
    event_ms: AtomicU64,
    cursor: AtomicU64,
    synced: AtomicU64,
    pending: AtomicU64,
    /// `needed` of the last funding check in gwei, rounded up (`u64::MAX`: none yet).
    needed_gwei: AtomicU64,
    worth: AtomicU64,
    short: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            ok_ms: AtomicU64::new(0),
            ok_unix: AtomicU64::new(0),
            fail_ms: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            event_ms: AtomicU64::new(0),
            cursor: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            needed_gwei: AtomicU64::new(u64::MAX),
            worth: AtomicU64::new(0),
            short: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    /// A step of the loop completed without error.
    pub fn step_ok(&self) {
        self.ok_ms.store(self.base.elapsed().as_millis() as u64, Relaxed);
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.ok_unix.store(unix, Relaxed);
    }

    /// A step of the loop failed (it is retried at the next poll).
    pub fn step_failed(&self) {
        // At least 1 ms, so that "no failure yet" (0) stays distinct.
        self.fail_ms.store((self.base.elapsed().as_millis() as u64).max(1), Relaxed);
        self.failures.fetch_add(1, Relaxed);
    }

    /// The L1 cursor (the last L1 block read).
    pub fn cursor(&self, n: u64) {
        self.cursor.store(n, Relaxed);
    }

    /// The last child block validated (written per block, so a long catch-up is progress).
    pub fn synced(&self, n: u64) {
        self.synced.store(n, Relaxed);
    }

    /// Committed blocks (and deposits) not yet applied.
    pub fn pending(&self, n: usize) {
        self.pending.store(n as u64, Relaxed);
    }

    /// The last funding check (WATCH-13): outputs worth exiting, how many the balance could not
    /// pay for, and what exiting them all needs (wei).
    pub fn funding(&self, worth: usize, short: usize, needed: U256) {
        let gwei = U256::from(1_000_000_000u64);
        let needed = needed.div_ceil(gwei);
        self.needed_gwei.store(u64::try_from(needed).unwrap_or(u64::MAX - 1), Relaxed);
        self.worth.store(worth as u64, Relaxed);
        self.short.store(short as u64, Relaxed);
    }

    /// The loop emitted an event (written by [`Alerts::event`] inside [`in_loop`] only).
    pub fn event(&self) {
        self.event_ms.store(self.base.elapsed().as_millis() as u64, Relaxed);
    }

    /// The later of the last successful step and the last event of the loop.
    fn last_ok(&self) -> Instant {
        let ms = self.ok_ms.load(Relaxed).max(self.event_ms.load(Relaxed));
        self.base + Duration::from_millis(ms)
    }

    /// The last step that completed without error.
    fn last_step_ok(&self) -> Instant {
        self.base + Duration::from_millis(self.ok_ms.load(Relaxed))
    }

    /// Whether the loop's latest news is a failed step: a failure after the last good step and
    /// after the last event of the loop (an action mined after a failure shows a step got past
    /// it and is still working).
    fn failing(&self) -> bool {
        let fail = self.fail_ms.load(Relaxed);
        fail > 0 && fail >= self.ok_ms.load(Relaxed).max(self.event_ms.load(Relaxed))
    }
}

tokio::task_local! {
    /// Set while the watcher's loop runs a step ([`in_loop`]).
    static LOOP: ();
}

/// Runs `f` (a step of the watcher's loop) as the loop: only events raised inside it refresh the
/// stall detector's heartbeat. The cross-check task raises events too, and keeps raising them
/// while the loop hangs; had they counted, a hung loop with a chatty peer would never be
/// reported (audit 20, finding 4).
pub async fn in_loop<F: std::future::Future>(f: F) -> F::Output {
    LOOP.scope((), f).await
}

/// Whether the caller runs inside [`in_loop`].
fn is_loop() -> bool {
    LOOP.try_with(|()| ()).is_ok()
}

/// Delivery figures for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    suppressed: AtomicU64,
    retries: AtomicU64,
    stalled: AtomicBool,
    underfunded: AtomicBool,
}

/// The alert handle the watcher holds: hands alerts to the alert thread, carries the heartbeat.
/// Dropping it stops the thread.
#[derive(Debug)]
pub struct Alerts {
    queue: tokio::sync::mpsc::Sender<Alert>,
    heartbeat: Arc<Heartbeat>,
    counters: Arc<Counters>,
    webhooks: usize,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl Alerts {
    /// Starts the alert thread (its own runtime, HTTP clients, stall detector and one delivery
    /// worker per webhook).
    pub fn start(settings: AlertSettings) -> Result<Arc<Self>, AlertConfigError> {
        settings.check()?;
        let webhook_client = plasma_contracts::l1::client_builder()
            .timeout(WEBHOOK_TIMEOUT)
            .connect_timeout(WEBHOOK_TIMEOUT)
            // A receiver cannot bounce the message (and its secret path) elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AlertConfigError::Client(e.to_string()))?;
        let l1_timeout = (settings.stall_after / 2).clamp(Duration::from_secs(1), WEBHOOK_TIMEOUT);
        let l1_client = plasma_contracts::l1::client_builder()
            .timeout(l1_timeout)
            .connect_timeout(l1_timeout)
            .build()
            .map_err(|e| AlertConfigError::Client(e.to_string()))?;
        let (queue, rx) = tokio::sync::mpsc::channel(QUEUE);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let heartbeat = Arc::new(Heartbeat::default());
        heartbeat.step_ok();
        let counters = Arc::new(Counters::default());
        info!(target: "watcher::alerts", webhooks = ?settings.webhooks,
            stall_after = settings.stall_after.as_secs(),
            l1_stall_after = ?settings.l1_stall_after.map(|d| d.as_secs()), "alerts started");
        let webhooks = settings.webhooks.len();
        let thread = Thread {
            settings,
            heartbeat: heartbeat.clone(),
            counters: counters.clone(),
            queue: queue.clone(),
            webhook_client,
            l1_client,
        };
        std::thread::Builder::new()
            .name("plasma-alerts".into())
            .spawn(move || {
                let runtime =
                    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(r) => r,
                        Err(e) => {
                            error!(target: "watcher::alerts", error = %e, "no runtime for alerts: none will be sent");
                            return;
                        }
                    };
                runtime.block_on(thread.run(rx, stop_rx));
            })
            .map_err(|e| AlertConfigError::Thread(e.to_string()))?;
        Ok(Arc::new(Self { queue, heartbeat, counters, webhooks, _stop: stop }))
    }

    /// What the loop writes.
    pub fn heartbeat(&self) -> &Heartbeat {
        &self.heartbeat
    }

    /// Hands a watcher event to the alert thread if it is one to alert on. Never waits.
    pub fn event(&self, event: &crate::Event) {
        if is_loop() {
            self.heartbeat.event();
        }
        if let Some(alert) = from_event(event) {
            self.raise(alert);
        }
    }

    /// Queues `alert`. Never waits: a full queue drops it (counted and logged).
    pub fn raise(&self, alert: Alert) {
        raise(&self.queue, &self.counters, alert);
    }

    /// Whether the stall detector sees the watcher stalled now.
    pub fn stalled(&self) -> bool {
        self.counters.stalled.load(Relaxed)
    }

    /// The alert figures in Prometheus' text format, for `/metrics`.
    pub fn metrics_text(&self) -> String {
        let c = &self.counters;
        let mut out = String::new();
        for (name, kind, help, value) in [
            (
                "plasma_watcher_alerts_sent_total",
                "counter",
                "Alert messages a webhook accepted (one per message and webhook).",
                c.sent.load(Relaxed),
            ),
            (
                "plasma_watcher_alerts_failed_total",
                "counter",
                "Alert messages given up: refused (4xx) or still failing after every retry.",
                c.failed.load(Relaxed),
            ),
            (
                "plasma_watcher_alerts_dropped_total",
                "counter",
                "Alerts dropped because a queue was full (the watcher's loop never waits).",
                c.dropped.load(Relaxed),
            ),
            (
                "plasma_watcher_alerts_suppressed_total",
                "counter",
                "Identical alerts not sent again within the dedupe window.",
                c.suppressed.load(Relaxed),
            ),
            (
                "plasma_watcher_alerts_retries_total",
                "counter",
                "Webhook requests retried after a 5xx, 429 or connection error.",
                c.retries.load(Relaxed),
            ),
            (
                "plasma_watcher_alert_webhooks",
                "gauge",
                "Webhooks configured (--alert.webhook).",
                self.webhooks as u64,
            ),
            (
                "plasma_watcher_stalled",
                "gauge",
                "1 while the stall detector sees the watcher stalled (loop, L1 cursor, child sync or L1 itself).",
                u64::from(c.stalled.load(Relaxed)),
            ),
            (
                "plasma_watcher_underfunded",
                "gauge",
                "1 while the tower's balance is below what exiting every guarded output needs.",
                u64::from(c.underfunded.load(Relaxed)),
            ),
            (
                "plasma_watcher_step_failures_total",
                "counter",
                "Steps of the watcher's loop that failed (each is retried at the next poll).",
                self.heartbeat.failures.load(Relaxed),
            ),
            (
                "plasma_watcher_last_step_ok_timestamp_seconds",
                "gauge",
                "Unix time of the last step that completed without error (the start counts as one).",
                self.heartbeat.ok_unix.load(Relaxed),
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        }
        out
    }
}

fn raise(queue: &tokio::sync::mpsc::Sender<Alert>, counters: &Counters, alert: Alert) {
    if let Err(e) = queue.try_send(alert) {
        counters.dropped.fetch_add(1, Relaxed);
        let alert = match &e {
            tokio::sync::mpsc::error::TrySendError::Full(a)
            | tokio::sync::mpsc::error::TrySendError::Closed(a) => a,
        };
        warn!(target: "watcher::alerts", kind = %alert.kind, summary = %alert.summary,
            "alert queue full or closed: alert dropped");
    }
}

/// Everything the alert thread owns.
struct Thread {
    settings: AlertSettings,
    heartbeat: Arc<Heartbeat>,
    counters: Arc<Counters>,
    /// For the stall detector's own alerts.
    queue: tokio::sync::mpsc::Sender<Alert>,
    webhook_client: reqwest::Client,
    l1_client: reqwest::Client,
}

impl Thread {
    async fn run(
        self,
        mut rx: tokio::sync::mpsc::Receiver<Alert>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let Self { settings, heartbeat, counters, queue, webhook_client, l1_client } = self;
        let workers: Vec<Arc<Lanes>> = settings
            .webhooks
            .iter()
            .map(|hook| {
                let lanes = Arc::new(Lanes::default());
                tokio::spawn(deliver(
                    webhook_client.clone(),
                    hook.clone(),
                    settings.name.clone(),
                    lanes.clone(),
                    counters.clone(),
                ));
                lanes
            })
            .collect();
        let detector = Detector {
            state: StallState::new(Instant::now(), &heartbeat),
            settings: settings.clone(),
            heartbeat,
            counters: counters.clone(),
            queue,
            l1_client,
            underfunded: false,
        };
        tokio::spawn(detector.run(stop.clone()));
        let mut dedupe = Dedupe::default();
        let mut flaps = Flaps::default();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let now = Instant::now();
            let alert = tokio::select! {
                a = rx.recv() => match a { Some(a) => a, None => return },
                _ = tick.tick() => {
                    for held in flaps.due(now) {
                        dispatch(&held, &workers, &counters);
                    }
                    continue;
                }
                _ = stop.changed() => return,
            };
            let admitted = if alert.kind == PEER_DOWN {
                flaps.admit(alert, now, &counters)
            } else {
                dedupe.admit(alert, now, &counters)
            };
            if let Some(alert) = admitted {
                dispatch(&alert, &workers, &counters);
            }
        }
    }
}

/// Logs `alert` and queues it for every webhook.
fn dispatch(alert: &Alert, workers: &[Arc<Lanes>], counters: &Counters) {
    match (alert.state, alert.severity) {
        (State::Firing, Severity::Critical) => {
            error!(target: "watcher::alerts", kind = %alert.kind, summary = %alert.summary, "alert")
        }
        (State::Firing, Severity::Warning) => {
            warn!(target: "watcher::alerts", kind = %alert.kind, summary = %alert.summary, "alert")
        }
        (State::Resolved, _) => {
            info!(target: "watcher::alerts", kind = %alert.kind, summary = %alert.summary, "alert resolved")
        }
    }
    for lanes in workers {
        if !lanes.push(alert.clone()) {
            counters.dropped.fetch_add(1, Relaxed);
            warn!(target: "watcher::alerts", kind = %alert.kind,
                "a webhook's queue is full (its receiver is slow or down): message dropped");
        }
    }
}

/// One webhook's waiting messages, in two lanes: critical ones (a withheld block, a stall) are
/// sent first and never wait behind, or get dropped for, warnings — a burst of warnings or a
/// receiver answering 429 for a while fills only the warning lane (audit 20, finding 6). What a
/// full lane drops is counted, and once both lanes drain the receiver gets one "N alerts dropped"
/// message, so a person learns that something was missed.
#[derive(Debug, Default)]
struct Lanes {
    state: std::sync::Mutex<LaneState>,
    ready: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct LaneState {
    critical: std::collections::VecDeque<Alert>,
    other: std::collections::VecDeque<Alert>,
    /// Dropped since the last "dropped" summary.
    dropped: u64,
}

impl Lanes {
    /// Queues `alert` in its lane; false when that lane is full (the alert is dropped). The lock
    /// is held for a push or a pop only, on the alert thread: never by the watcher's loop.
    fn push(&self, alert: Alert) -> bool {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let lane =
            if alert.severity == Severity::Critical { &mut st.critical } else { &mut st.other };
        let queued = lane.len() < PER_WEBHOOK_QUEUE;
        if queued {
            lane.push_back(alert);
        } else {
            st.dropped += 1;
        }
        drop(st);
        if queued {
            self.ready.notify_one();
        }
        queued
    }

    /// The next message: critical first, then warnings, then (once both are empty) the summary
    /// of what was dropped.
    fn pop(&self) -> Option<Alert> {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(a) = st.critical.pop_front().or_else(|| st.other.pop_front()) {
            return Some(a);
        }
        let n = std::mem::take(&mut st.dropped);
        (n > 0).then(|| Alert {
            kind: "alertsDropped".into(),
            severity: Severity::Warning,
            state: State::Firing,
            summary: format!(
                "{n} alert message(s) for this webhook were dropped: its queue was full (the \
                 receiver slow, down or rate-limiting). See the watcher's log and \
                 plasma_watcher_alerts_dropped_total"
            ),
            details: json!({ "dropped": n }),
            at: SystemTime::now(),
            dedupe: None,
        })
    }

    /// Waits for the next message.
    async fn next(&self) -> Alert {
        loop {
            if let Some(a) = self.pop() {
                return a;
            }
            self.ready.notified().await;
        }
    }
}

/// The kind of a cross-check peer's outage (its return is the same kind, resolved).
const PEER_DOWN: &str = "crossCheckPeerDown";
/// After a peer's first outage and return, a new outage within [`DEDUPE_WINDOW`] is held this
/// long: sent only if the peer is still down then.
pub const PEER_FLAP_HOLD: Duration = Duration::from_secs(300);

/// A cross-check peer's down/up messages, so that a flapping peer does not page every outage
/// (audit 20, finding 7). The first outage is sent at once and its return too. Another outage
/// within the dedupe window is held: if the peer comes back within [`PEER_FLAP_HOLD`], neither
/// message is sent (counted as suppressed); if it is still down then, the outage is sent, saying
/// how many short ones came before. So a peer that stays down is always reported, at most
/// [`PEER_FLAP_HOLD`] late, and the last message about a peer is never "up" while it is down.
#[derive(Debug, Default)]
struct Flaps {
    peers: HashMap<String, Flap>,
}

#[derive(Debug)]
struct Flap {
    /// An outage was sent and its return not yet.
    open: bool,
    /// When a message about this peer was last sent.
    last_sent: Instant,
    /// An outage held back, and since when.
    held: Option<(Alert, Instant)>,
    /// Outages held back and ended within the hold since the last message.
    flaps: u64,
}

impl Flaps {
    fn admit(&mut self, alert: Alert, now: Instant, counters: &Counters) -> Option<Alert> {
        let key = alert.dedupe.clone().unwrap_or_else(|| alert.summary.clone());
        let Some(f) = self.peers.get_mut(&key) else {
            if alert.state == State::Resolved {
                return None; // a return with no outage sent
            }
            self.peers.insert(key, Flap { open: true, last_sent: now, held: None, flaps: 0 });
            return Some(alert);
        };
        match alert.state {
            State::Firing if f.open || f.held.is_some() => None, // already reported or held
            State::Firing if now.duration_since(f.last_sent) >= DEDUPE_WINDOW => {
                (f.open, f.last_sent) = (true, now);
                Some(with_flaps(alert, std::mem::take(&mut f.flaps)))
            }
            State::Firing => {
                f.held = Some((alert, now));
                None
            }
            State::Resolved if f.held.take().is_some() => {
                f.flaps += 1;
                counters.suppressed.fetch_add(2, Relaxed);
                None
            }
            State::Resolved if f.open => {
                (f.open, f.last_sent) = (false, now);
                Some(alert)
            }
            State::Resolved => None,
        }
    }

    /// Held outages that lasted [`PEER_FLAP_HOLD`]: sent now.
    fn due(&mut self, now: Instant) -> Vec<Alert> {
        let mut out = Vec::new();
        for f in self.peers.values_mut() {
            if f.held.as_ref().is_some_and(|(_, at)| now.duration_since(*at) >= PEER_FLAP_HOLD)
                && let Some((alert, _)) = f.held.take()
            {
                (f.open, f.last_sent) = (true, now);
                out.push(with_flaps(alert, std::mem::take(&mut f.flaps)));
            }
        }
        out
    }
}

/// `alert` saying how many short outages were not sent before it.
fn with_flaps(mut alert: Alert, flaps: u64) -> Alert {
    if flaps > 0 {
        alert.summary.push_str(&format!(
            " (after {flaps} shorter outage(s) not sent since the last message: it flaps)"
        ));
        if let Some(d) = alert.details.as_object_mut() {
            d.insert("flaps".into(), json!(flaps));
        }
    }
    alert
}

/// Sends identical alerts once per [`DEDUPE_WINDOW`].
#[derive(Debug, Default)]
struct Dedupe {
    /// Key → when last sent, and how many were suppressed since.
    seen: HashMap<String, (Instant, u64)>,
}

impl Dedupe {
    fn admit(&mut self, mut alert: Alert, now: Instant, counters: &Counters) -> Option<Alert> {
        let Some(key) = alert.dedupe.clone() else { return Some(alert) };
        if self.seen.len() > 4096 {
            self.seen.retain(|_, (at, _)| now.duration_since(*at) < DEDUPE_WINDOW);
        }
        match self.seen.get_mut(&key) {
            Some((at, suppressed)) if now.duration_since(*at) < DEDUPE_WINDOW => {
                *suppressed += 1;
                counters.suppressed.fetch_add(1, Relaxed);
                None
            }
            Some((at, suppressed)) => {
                if *suppressed > 0 {
                    alert.summary.push_str(&format!(
                        " (and {suppressed} more like it since the last message)"
                    ));
                    if let Some(d) = alert.details.as_object_mut() {
                        d.insert("repeated".into(), json!(*suppressed));
                    }
                }
                (*at, *suppressed) = (now, 0);
                Some(alert)
            }
            None => {
                self.seen.insert(key, (now, 0));
                Some(alert)
            }
        }
    }
}

/// Delivers one webhook's messages in order, retrying what may succeed later.
async fn deliver(
    client: reqwest::Client,
    hook: Webhook,
    name: String,
    lanes: Arc<Lanes>,
    counters: Arc<Counters>,
) {
    loop {
        let alert = lanes.next().await;
        let Ok(body) = serde_json::to_vec(&body(hook.format, &alert, &name)) else { continue };
        let body = bytes::Bytes::from(body);
        let mut delay = BACKOFF_START;
        for attempt in 1..=MAX_ATTEMPTS {
            let sent = client
                .post(hook.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let (retry, why, retry_after) = match sent {
                Ok(r) if r.status().is_success() => {
                    counters.sent.fetch_add(1, Relaxed);
                    info!(target: "watcher::alerts", webhook = %hook, attempt, "alert delivered");
                    break;
                }
                Ok(r) => {
                    let status = r.status();
                    let retry_after = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs)
                        .filter(|d| *d <= MAX_RETRY_AFTER);
                    let retry = status.is_server_error()
                        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                        || status == reqwest::StatusCode::REQUEST_TIMEOUT;
                    (retry, format!("HTTP {status}"), retry_after)
                }
                // The error's text names the URL: never shown.
                Err(e) => (true, redact_text(&e.without_url().to_string()), None),
            };
            if !retry || attempt == MAX_ATTEMPTS {
                counters.failed.fetch_add(1, Relaxed);
                error!(target: "watcher::alerts", webhook = %hook, attempts = attempt, error = %why,
                    "alert not delivered");
                break;
            }
            counters.retries.fetch_add(1, Relaxed);
            let wait = retry_after.unwrap_or(delay);
            warn!(target: "watcher::alerts", webhook = %hook, attempt, error = %why,
                retry_in_ms = wait.as_millis() as u64, "alert delivery failed; retrying");
            tokio::time::sleep(wait).await;
            delay = delay.saturating_mul(2);
        }
    }
}

/// Why the watcher counts as stalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Cause {
    /// No step of the loop completed without error, no block was read or validated and no
    /// event (an action mined) came: the loop hangs (an L1 call that never answers) or fails at
    /// every step.
    Loop,
    /// Steps keep failing: no step completed for the stall time, even if the cursor moves (a
    /// step follows L1 first and stops at its first error).
    StepFailing,
    /// L1 has blocks the watcher should have read, and its cursor has not moved.
    L1Cursor,
    /// Committed blocks wait, and the synced block has not moved for longer than the
    /// availability timeout allows.
    ChildSync,
    /// The detector's own reads of L1 fail.
    L1Unreachable,
    /// L1 answers, but its head has not moved.
    L1Head,
}

impl Cause {
    fn describe(self) -> &'static str {
        match self {
            Self::Loop => {
                "the watcher's loop has completed no step and made no progress: it hangs or fails \
                 at every step (see its log)"
            }
            Self::StepFailing => {
                "every step of the watcher's loop fails: challenges, exits and processing after \
                 the failing stage do not run, even if it follows L1 (see its log: \"step failed\")"
            }
            Self::L1Cursor => "L1 has new blocks but the watcher's L1 cursor does not advance",
            Self::ChildSync => {
                "committed child blocks wait but the watcher's synced block does not advance"
            }
            Self::L1Unreachable => "L1 does not answer the stall detector's own requests",
            Self::L1Head => "L1's head does not advance (the node or the endpoint is stuck)",
        }
    }
}

/// What the detector saw at one tick.
#[derive(Clone, Debug)]
struct Observation {
    now: Instant,
    /// L1's head read by the detector, or why it could not be read.
    head: Result<u64, String>,
    /// The last successful step or event of the loop.
    last_ok: Instant,
    /// The last step that completed without error.
    last_step_ok: Instant,
    /// Whether the loop's latest news is a failed step.
    failing: bool,
    cursor: u64,
    synced: u64,
    pending: u64,
}

/// The stall detector's memory between ticks: since when each condition holds. Pure: the clock
/// comes in the observation, so every rule is tested without waiting.
#[derive(Debug)]
struct StallState {
    /// Cursor and synced block last seen, and when either last moved.
    progress: (u64, u64, Instant),
    /// The cursor value L1 was first seen to be ahead of, and when.
    behind_since: Option<(u64, Instant)>,
    /// The synced block committed blocks were first seen waiting behind, and when.
    waiting_since: Option<(u64, Instant)>,
    /// The last head read and when it last changed.
    head: Option<(u64, Instant)>,
    /// Since when the detector's reads fail.
    unreachable_since: Option<Instant>,
    /// The causes that hold (sent as firing, not yet resolved), with when they started.
    firing: std::collections::BTreeMap<Cause, Instant>,
}

/// A change the detector reports.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Change {
    cause: Cause,
    firing: bool,
    /// How long the condition held (firing: so far; resolved: in all).
    held: Duration,
}

impl StallState {
    fn new(now: Instant, hb: &Heartbeat) -> Self {
        Self {
            progress: (hb.cursor.load(Relaxed), hb.synced.load(Relaxed), now),
            behind_since: None,
            waiting_since: None,
            head: None,
            unreachable_since: None,
            firing: Default::default(),
        }
    }

    /// Takes one observation; returns the causes that started or cleared.
    fn observe(&mut self, o: &Observation, s: &AlertSettings) -> Vec<Change> {
        let now = o.now;
        if (o.cursor, o.synced) != (self.progress.0, self.progress.1) {
            self.progress = (o.cursor, o.synced, now);
        }
        let mut holds: Vec<(Cause, Instant, Duration)> = Vec::new();
        // The loop: a successful step or progress within stall_after.
        let alive = o.last_ok.max(self.progress.2);
        holds.push((Cause::Loop, alive, s.stall_after));
        // Steps fail, whatever the cursor does: following L1 and validating blocks come first in
        // a step, so the cursor moves while everything after the failing stage (challenges, mass
        // exit, funding, processing) never runs (audit 20, finding 1).
        if o.failing {
            holds.push((Cause::StepFailing, o.last_step_ok, s.stall_after));
        }
        // The child chain: blocks waiting, the synced block unmoved.
        if o.pending > 0 {
            if self.waiting_since.is_none_or(|(s, _)| s != o.synced) {
                self.waiting_since = Some((o.synced, now));
            }
        } else {
            self.waiting_since = None;
        }
        if let Some((_, since)) = self.waiting_since {
            holds.push((Cause::ChildSync, since, s.stall_after + s.availability_timeout));
        }
        match &o.head {
            Ok(head) => {
                self.unreachable_since = None;
                if self.head.is_none_or(|(h, _)| h != *head) {
                    self.head = Some((*head, now));
                }
                if *head >= o.cursor.saturating_add(s.confirmations.max(1)) {
                    if self.behind_since.is_none_or(|(c, _)| c != o.cursor) {
                        self.behind_since = Some((o.cursor, now));
                    }
                } else {
                    self.behind_since = None;
                }
            }
            Err(_) => {
                self.unreachable_since.get_or_insert(now);
            }
        }
        if let Some(since) = self.unreachable_since {
            holds.push((Cause::L1Unreachable, since, s.stall_after));
        }
        // While L1 cannot be read, what depends on its head neither starts nor clears.
        if o.head.is_ok() {
            if let Some((_, since)) = self.behind_since {
                holds.push((Cause::L1Cursor, since, s.stall_after));
            }
            if let (Some(limit), Some((_, since))) = (s.l1_stall_after, self.head) {
                holds.push((Cause::L1Head, since, limit));
            }
        }
        let now_holding: std::collections::BTreeMap<Cause, Instant> = holds
            .into_iter()
            .filter(|(_, since, limit)| now.saturating_duration_since(*since) >= *limit)
            .map(|(c, since, _)| (c, since))
            .collect();
        let mut changes = Vec::new();
        let unknown = |c: &Cause| o.head.is_err() && matches!(c, Cause::L1Cursor | Cause::L1Head);
        for (cause, since) in &self.firing {
            if !now_holding.contains_key(cause) && !unknown(cause) {
                changes.push(Change {
                    cause: *cause,
                    firing: false,
                    held: now.saturating_duration_since(*since),
                });
            }
        }
        for (cause, since) in &now_holding {
            if !self.firing.contains_key(cause) {
                changes.push(Change {
                    cause: *cause,
                    firing: true,
                    held: now.saturating_duration_since(*since),
                });
            }
        }
        for c in &changes {
            if c.firing {
                self.firing.insert(c.cause, now - c.held);
            } else {
                self.firing.remove(&c.cause);
            }
        }
        changes
    }
}

/// The stall and funding detector: runs on the alert thread, reads L1 with its own client.
struct Detector {
    state: StallState,
    settings: AlertSettings,
    heartbeat: Arc<Heartbeat>,
    counters: Arc<Counters>,
    queue: tokio::sync::mpsc::Sender<Alert>,
    l1_client: reqwest::Client,
    underfunded: bool,
}

impl Detector {
    /// How often the detector looks: a quarter of the stall time, between 0.25 s and 5 s.
    fn tick(&self) -> Duration {
        (self.settings.stall_after / 4).clamp(Duration::from_millis(250), Duration::from_secs(5))
    }

    async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.tick()) => {}
                _ = stop.changed() => return,
            }
            let head = self.rpc("eth_blockNumber", json!([])).await.and_then(|v| quantity(&v));
            let hb = &self.heartbeat;
            let o = Observation {
                now: Instant::now(),
                head: head.clone(),
                last_ok: hb.last_ok(),
                last_step_ok: hb.last_step_ok(),
                failing: hb.failing(),
                cursor: hb.cursor.load(Relaxed),
                synced: hb.synced.load(Relaxed),
                pending: hb.pending.load(Relaxed),
            };
            for change in self.state.observe(&o, &self.settings) {
                self.report(&change, &o);
            }
            self.counters.stalled.store(!self.state.firing.is_empty(), Relaxed);
            if head.is_ok() {
                self.check_funding().await;
            }
        }
    }

    fn report(&self, c: &Change, o: &Observation) {
        let secs = c.held.as_secs();
        let mut details = json!({
            "cause": c.cause,
            "seconds": secs,
            "l1Cursor": o.cursor,
            "syncedBlock": o.synced,
            "pendingBlocks": o.pending,
        });
        match &o.head {
            Ok(h) => details["l1Head"] = json!(h),
            Err(e) => details["error"] = json!(e),
        }
        let (state, summary) = if c.firing {
            (State::Firing, format!("watcher stalled for {secs} s: {}", c.cause.describe()))
        } else {
            (State::Resolved, format!("cleared after {secs} s: {}", c.cause.describe()))
        };
        raise(
            &self.queue,
            &self.counters,
            Alert {
                kind: "stalled".into(),
                severity: Severity::Critical,
                state,
                summary,
                details,
                at: SystemTime::now(),
                dedupe: None,
            },
        );
    }

    /// Compares the tower's balance, read now, with what the last funding check said exiting
    /// every guarded output needs; alerts when it falls below and when it covers it again.
    async fn check_funding(&mut self) {
        let needed_gwei = self.heartbeat.needed_gwei.load(Relaxed);
        if needed_gwei == u64::MAX {
            return; // no funding check yet
        }
        let needed = U256::from(needed_gwei) * U256::from(1_000_000_000u64);
        let Ok(balance) = self
            .rpc("eth_getBalance", json!([self.settings.watcher, "latest"]))
            .await
            .and_then(|v| {
                let s = v.as_str().ok_or("balance not a string")?;
                U256::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| e.to_string())
            })
        else {
            return; // unknown: the last verdict stands
        };
        let short = balance < needed;
        if short == self.underfunded {
            return;
        }
        self.underfunded = short;
        self.counters.underfunded.store(short, Relaxed);
        let worth = self.heartbeat.worth.load(Relaxed);
        let unaffordable = self.heartbeat.short.load(Relaxed);
        let details = json!({
            "balance": balance.to_string(),
            "needed": needed.to_string(),
            "outputs": worth,
            "unaffordable": unaffordable,
            "address": self.settings.watcher,
        });
        let (state, summary) = if short {
            (
                State::Firing,
                format!(
                    "the tower's balance {} is below the {} exiting its {worth} guarded outputs \
                     needs: fund {}",
                    fmt_eth(balance),
                    fmt_eth(needed),
                    self.settings.watcher
                ),
            )
        } else {
            (
                State::Resolved,
                format!(
                    "the tower's balance {} covers the {} its guarded outputs need again",
                    fmt_eth(balance),
                    fmt_eth(needed)
                ),
            )
        };
        raise(
            &self.queue,
            &self.counters,
            Alert {
                kind: "underfunded".into(),
                severity: Severity::Critical,
                state,
                summary,
                details,
                at: SystemTime::now(),
                dedupe: None,
            },
        );
    }

    /// One JSON-RPC call, endpoints tried in order; errors redacted.
    async fn rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let request = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let mut last = String::from("no L1 endpoint");
        for url in self.settings.l1.urls() {
            let answer = match self.l1_client.post(url.clone()).json(&request).send().await {
                Ok(r) => r.json::<Value>().await.map_err(|e| e.without_url().to_string()),
                Err(e) => Err(e.without_url().to_string()),
            };
            match answer {
                Ok(v) if !v["result"].is_null() => return Ok(v["result"].clone()),
                Ok(v) => {
                    last = format!("{}: {}", redact_url(url), redact_text(&v["error"].to_string()))
                }
                Err(e) => last = format!("{}: {}", redact_url(url), redact_text(&e)),
            }
        }
        Err(last)
    }
}

/// A JSON-RPC quantity (`"0x1a"`).
fn quantity(v: &Value) -> Result<u64, String> {
    let s = v.as_str().ok_or_else(|| format!("not a quantity: {v}"))?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{s}: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Event;

    fn withheld() -> Alert {
        from_event(&Event::BlockWithheld { blknum: 3000 }).unwrap()
    }

    #[test]
    fn webhooks_parse_with_their_format_and_never_show_their_secret() {
        let hooks = parse_webhooks(&[
            "https://a.example/hook/secret1,slack+https://hooks.slack.com/services/T/B/secret2",
            "discord+https://discord.com/api/webhooks/1/secret3",
            "generic+http://127.0.0.1:9/secret4",
        ])
        .unwrap();
        let formats: Vec<Format> = hooks.iter().map(|h| h.format).collect();
        assert_eq!(formats, [Format::Generic, Format::Slack, Format::Discord, Format::Generic]);
        for h in &hooks {
            let shown = format!("{h:?} {h}");
            assert!(!shown.contains("secret"), "{shown}");
            assert!(shown.contains("/…"), "{shown}");
        }
        assert_eq!(hooks[1].redacted(), "https://hooks.slack.com/…");
        for bad in ["ftp://x/secret", "slack+ftp://x/secret", "https://[secret", "secret"] {
            let err = Webhook::parse(bad).unwrap_err().to_string();
            assert!(!err.contains("secret"), "{bad}: {err}");
        }
        let user = Webhook::parse("https://user:secret@h.example/").unwrap();
        assert!(!format!("{user:?}").contains("secret"));
    }

    #[test]
    fn generic_slack_and_discord_bodies() {
        let mut alert = withheld();
        alert.at = UNIX_EPOCH + Duration::from_secs(1_796_276_430);
        let generic = body(Format::Generic, &alert, "tower-eu");
        assert_eq!(generic["alert"], "blockWithheld");
        assert_eq!(generic["severity"], "critical");
        assert_eq!(generic["status"], "firing");
        assert_eq!(generic["details"], json!({ "blknum": 3000 }));
        assert_eq!(generic["watcher"], "tower-eu");
        assert_eq!(generic["at"], "2026-12-03T05:40:30Z");
        assert!(generic["summary"].as_str().unwrap().contains("block 3000 withheld"));
        let slack = body(Format::Slack, &alert, "tower-eu");
        let text = slack["text"].as_str().unwrap();
        assert!(
            text.starts_with("[tower-eu] CRITICAL blockWithheld: block 3000 withheld"),
            "{text}"
        );
        assert_eq!(slack.as_object().unwrap().len(), 1);
        let discord = body(Format::Discord, &alert, "tower-eu");
        assert_eq!(discord["content"].as_str().unwrap(), discord_text(text));
        assert!(discord["content"].as_str().unwrap().starts_with(r"\[tower\-eu\] CRITICAL"));
        assert_eq!(discord["allowed_mentions"], json!({ "parse": [] }));
        alert.state = State::Resolved;
        let resolved = body(Format::Slack, &alert, "tower-eu");
        assert!(resolved["text"].as_str().unwrap().starts_with("[tower-eu] RESOLVED "));
        assert_eq!(body(Format::Generic, &alert, "x")["status"], "resolved");
    }

    #[test]
    fn attacker_text_cannot_mention_link_or_overflow() {
        let reason =
            format!("<!channel> <https://evil.example|click> & @everyone {}", "x".repeat(5000));
        let alert =
            from_event(&Event::InvalidBlock { blknum: 7000, reason: reason.clone() }).unwrap();
        let slack = body(Format::Slack, &alert, "w")["text"].as_str().unwrap().to_owned();
        assert!(!slack.contains('<') && !slack.contains('>'), "{}", &slack[..200]);
        assert!(slack.contains("&lt;!channel&gt;") && slack.contains("&amp;"));
        let discord = body(Format::Discord, &alert, "w");
        let content = discord["content"].as_str().unwrap();
        assert!(content.chars().count() <= MAX_TEXT + 1, "under Discord's 2,000");
        assert!(content.ends_with('…'));
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
        // The generic body keeps the event's fields whole, for machines.
        assert_eq!(body(Format::Generic, &alert, "w")["details"]["reason"], json!(reason));
    }

    #[test]
    fn the_alerted_events_and_the_rest() {
        let b = alloy::primitives::B256::repeat_byte(1);
        let alerted = [
            Event::BlockWithheld { blknum: 1000 },
            Event::InvalidBlock { blknum: 1000, reason: "r".into() },
            Event::InvalidStandardExit { utxo_pos: "1".into(), spending_tx: b },
            Event::ExitFromBadBlock { utxo_pos: "2".into() },
            Event::ActionFailed { action: "challenge:1".into(), reason: "nonce".into() },
            Event::DeadlineTight { action: "challenge:1".into(), seconds_left: 5 },
            Event::BatchRootMismatch { batch_id: 1, root: b, rebuilt: b },
            Event::ActionLost { action: "a".into(), l1_tx: b },
        ];
        for e in &alerted {
            assert!(from_event(e).is_some(), "{e:?}");
        }
        // Routine work and conditions handled as conditions (underfunded: with its resolution).
        for e in [
            Event::Challenged { utxo_pos: "1".into(), l1_tx: b },
            Event::ExitsProcessed { token: Address::ZERO, l1_tx: b },
            Event::Underfunded { outputs: 1, unaffordable: 1, balance: U256::ZERO },
        ] {
            assert!(from_event(&e).is_none(), "{e:?}");
        }
        let failed = from_event(&Event::ActionFailed { action: "x".into(), reason: "a".into() });
        let again = from_event(&Event::ActionFailed { action: "x".into(), reason: "b".into() });
        assert_eq!(failed.unwrap().dedupe, again.unwrap().dedupe, "one per action");
    }

    #[test]
    fn a_cross_check_peer_down_fires_and_its_return_resolves() {
        let down = from_event(&Event::CrossCheckPeerDown {
            peer: "http://10.0.0.2:9657".into(),
            reason: "connection refused".into(),
        })
        .unwrap();
        let up =
            from_event(&Event::CrossCheckPeerUp { peer: "http://10.0.0.2:9657".into() }).unwrap();
        assert_eq!((down.kind.as_str(), down.state), ("crossCheckPeerDown", State::Firing));
        assert_eq!((up.kind.as_str(), up.state), ("crossCheckPeerDown", State::Resolved));
        assert!(down.summary.contains("http://10.0.0.2:9657"));
        // One key per peer for both messages: a flapping peer is held back (`Flaps`).
        assert_eq!(down.dedupe.as_deref(), Some("crossCheckPeerDown:http://10.0.0.2:9657"));
        assert_eq!(up.dedupe, down.dedupe);
    }

    #[test]
    fn identical_alerts_are_sent_once_per_window_then_with_a_count() {
        let counters = Counters::default();
        let mut d = Dedupe::default();
        let t0 = Instant::now();
        assert!(d.admit(withheld(), t0, &counters).is_some());
        assert!(d.admit(withheld(), t0 + Duration::from_secs(1), &counters).is_none());
        assert!(d.admit(withheld(), t0 + Duration::from_secs(2), &counters).is_none());
        let other = from_event(&Event::BlockWithheld { blknum: 4000 }).unwrap();
        assert!(d.admit(other, t0 + Duration::from_secs(2), &counters).is_some());
        assert_eq!(counters.suppressed.load(Relaxed), 2);
        let later = d.admit(withheld(), t0 + DEDUPE_WINDOW + Duration::from_secs(3), &counters);
        let later = later.unwrap();
        assert!(later.summary.ends_with("(and 2 more like it since the last message)"));
        assert_eq!(later.details["repeated"], 2);
        // Conditions are never deduplicated: each message is a change.
        let mut stall = withheld();
        stall.dedupe = None;
        assert!(d.admit(stall.clone(), t0, &counters).is_some());
        assert!(d.admit(stall, t0, &counters).is_some());
    }

    #[test]
    fn eth_and_time_formats() {
        assert_eq!(fmt_eth(U256::ZERO), "0 ETH");
        assert_eq!(fmt_eth(U256::from(100_000_000_000_000_000u64)), "0.1 ETH");
        assert_eq!(fmt_eth(U256::from(1_000_000_000_000_000_001u64)), "1.000000000000000001 ETH");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    }

    fn settings() -> AlertSettings {
        AlertSettings {
            webhooks: Vec::new(),
            name: "w".into(),
            watcher: Address::ZERO,
            l1: plasma_contracts::l1::Endpoints::parse("http://127.0.0.1:8545").unwrap(),
            confirmations: 1,
            availability_timeout: Duration::from_secs(30),
            stall_after: Duration::from_secs(300),
            l1_stall_after: Some(Duration::from_secs(300)),
            l1_stall_default: false,
        }
    }

    /// Drives the detector with a fake clock: `at(s)` is `s` seconds after the start.
    struct Clock(Instant);
    impl Clock {
        fn at(&self, s: u64) -> Instant {
            self.0 + Duration::from_secs(s)
        }
    }

    fn obs(
        now: Instant,
        head: Result<u64, String>,
        ok: Instant,
        cursor: u64,
        synced: u64,
        pending: u64,
    ) -> Observation {
        Observation {
            now,
            head,
            last_ok: ok,
            last_step_ok: ok,
            failing: false,
            cursor,
            synced,
            pending,
        }
    }

    fn fired(changes: &[Change]) -> Vec<(Cause, bool)> {
        changes.iter().map(|c| (c.cause, c.firing)).collect()
    }

    #[test]
    fn a_healthy_watcher_never_stalls() {
        let s = settings();
        let c = Clock(Instant::now());
        let mut st = StallState::new(c.at(0), &Heartbeat::default());
        for t in (0..3000).step_by(5) {
            // L1 moves every 12 s, the cursor follows one block behind, steps complete.
            let head = 100 + t / 12;
            let o = obs(c.at(t), Ok(head), c.at(t), head, t / 12, u64::from(t % 2 == 0));
            assert!(st.observe(&o, &s).is_empty(), "at {t}");
        }
    }

    #[test]
    fn a_hung_loop_and_an_unreachable_l1_fire_and_resolve() {
        let s = settings();
        let c = Clock(Instant::now());
        let mut st = StallState::new(c.at(0), &Heartbeat::default());
        assert!(st.observe(&obs(c.at(0), Ok(10), c.at(0), 10, 0, 0), &s).is_empty());
        // L1 stops answering and the loop hangs on it at t = 10.
        let down = |t| obs(c.at(t), Err("timeout".into()), c.at(10), 10, 0, 0);
        assert!(st.observe(&down(20), &s).is_empty());
        assert!(st.observe(&down(309), &s).is_empty());
        assert_eq!(fired(&st.observe(&down(310), &s)), [(Cause::Loop, true)]);
        assert_eq!(fired(&st.observe(&down(320), &s)), [(Cause::L1Unreachable, true)]);
        assert!(st.observe(&down(400), &s).is_empty(), "each cause fires once");
        // Back: the next step completes.
        let changes = st.observe(&obs(c.at(405), Ok(12), c.at(404), 12, 0, 0), &s);
        assert_eq!(fired(&changes), [(Cause::Loop, false), (Cause::L1Unreachable, false)]);
        assert_eq!(changes[1].held, Duration::from_secs(385));
        assert!(st.firing.is_empty());
    }

    #[test]
    fn a_cursor_that_stops_while_l1_moves_fires() {
        let s = settings();
        let c = Clock(Instant::now());
        let mut st = StallState::new(c.at(0), &Heartbeat::default());
        // Steps "complete" (e.g. a follow that silently reads nothing) but the cursor stays at 50.
        for t in (0..300).step_by(10) {
            assert!(st.observe(&obs(c.at(t), Ok(51 + t), c.at(t), 50, 5, 0), &s).is_empty());
        }
        assert_eq!(
            fired(&st.observe(&obs(c.at(300), Ok(351), c.at(300), 50, 5, 0), &s)),
            [(Cause::L1Cursor, true)]
        );
        // L1 unreachable meanwhile: the verdict that needs the head stands.
        assert!(st.observe(&obs(c.at(305), Err("x".into()), c.at(305), 50, 5, 0), &s).is_empty());
        let back = st.observe(&obs(c.at(310), Ok(352), c.at(310), 351, 5, 0), &s);
        assert_eq!(fired(&back), [(Cause::L1Cursor, false)]);
    }

    #[test]
    fn blocks_waiting_longer_than_the_availability_timeout_allows_fire() {
        let s = settings();
        let c = Clock(Instant::now());
        let mut st = StallState::new(c.at(0), &Heartbeat::default());
        // The cursor moves (L1 read fine), but block validation stays at 7 with blocks waiting.
        for t in (0..330).step_by(10) {
            assert!(
                st.observe(&obs(c.at(t), Ok(100 + t), c.at(t), 100 + t, 7, 3), &s).is_empty(),
                "{t}"
            );
        }
        assert_eq!(
            fired(&st.observe(&obs(c.at(330), Ok(430), c.at(330), 430, 7, 3), &s)),
            [(Cause::ChildSync, true)]
        );
        assert_eq!(
            fired(&st.observe(&obs(c.at(340), Ok(440), c.at(340), 440, 8, 0), &s)),
            [(Cause::ChildSync, false)]
        );
    }

    #[test]
    fn steps_failing_while_the_cursor_moves_fire_step_failing() {
        let s = settings();
        let c = Clock(Instant::now());
        let mut st = StallState::new(c.at(0), &Heartbeat::default());
        // The last good step at t = 0; from then on every step fails after following L1: the
        // cursor follows the head, blocks are validated, nothing after the failing stage runs.
        let failing = |t: u64| Observation {
            now: c.at(t),
            head: Ok(100 + t),
            last_ok: c.at(0),
            last_step_ok: c.at(0),
            failing: true,
            cursor: 99 + t,
            synced: t,
            pending: 0,
        };
        for t in (0..300).step_by(5) {
            assert!(st.observe(&failing(t), &s).is_empty(), "at {t}");
        }
        assert_eq!(fired(&st.observe(&failing(300), &s)), [(Cause::StepFailing, true)]);
        assert!(st.observe(&failing(400), &s).is_empty(), "fires once");
        // A step completes: resolved.
        let ok = obs(c.at(405), Ok(505), c.at(405), 504, 405, 0);
        assert_eq!(fired(&st.observe(&ok, &s)), [(Cause::StepFailing, false)]);
    }

    #[test]
    fn the_heartbeat_knows_failing_steps_and_counts_them() {
        let hb = Heartbeat::default();
        assert!(!hb.failing(), "no failure yet");
        hb.step_failed();
        hb.step_failed();
        assert!(hb.failing());
        assert_eq!(hb.failures.load(Relaxed), 2);
        std::thread::sleep(Duration::from_millis(2));
        hb.step_ok();
        assert!(!hb.failing(), "a good step after the failures");
        assert!(hb.ok_unix.load(Relaxed) > 1_700_000_000);
    }

    #[tokio::test]
    async fn only_the_loops_events_refresh_the_heartbeat() {
        let alerts = Alerts::start(settings()).unwrap();
        let hb = alerts.heartbeat();
        let e = Event::CrossCheckPeerUp { peer: "http://p".into() };
        std::thread::sleep(Duration::from_millis(5));
        alerts.event(&e); // the cross-check task: not the loop
        assert_eq!(hb.event_ms.load(Relaxed), 0, "a task beside the loop never refreshes it");
        in_loop(async { alerts.event(&e) }).await;
        assert!(hb.event_ms.load(Relaxed) > 0, "the loop's own events do");
    }

    fn alert(severity: Severity, n: u64) -> Alert {
        let mut a = withheld();
        a.severity = severity;
        a.summary = format!("n{n}");
        a
    }

    #[test]
    fn critical_alerts_are_never_dropped_behind_warnings_and_drops_are_summarised() {
        let lanes = Lanes::default();
        for i in 0..PER_WEBHOOK_QUEUE as u64 {
            assert!(lanes.push(alert(Severity::Warning, i)));
        }
        // The warning lane is full: more warnings are dropped, a critical one is not.
        assert!(!lanes.push(alert(Severity::Warning, 999)));
        assert!(!lanes.push(alert(Severity::Warning, 1000)));
        assert!(lanes.push(alert(Severity::Critical, 7)));
        // The critical one goes first.
        let first = lanes.pop().unwrap();
        assert_eq!((first.severity, first.summary.as_str()), (Severity::Critical, "n7"));
        for i in 0..PER_WEBHOOK_QUEUE as u64 {
            assert_eq!(lanes.pop().unwrap().summary, format!("n{i}"));
        }
        // Drained: one summary of what was dropped, then nothing.
        let summary = lanes.pop().unwrap();
        assert_eq!(summary.kind, "alertsDropped");
        assert_eq!(summary.details["dropped"], 2);
        assert!(summary.summary.starts_with("2 alert message(s)"), "{}", summary.summary);
        assert!(lanes.pop().is_none());
    }

    fn peer(up: bool) -> Alert {
        let p = "http://10.0.0.2:9657".to_owned();
        from_event(&if up {
            Event::CrossCheckPeerUp { peer: p }
        } else {
            Event::CrossCheckPeerDown { peer: p, reason: "refused".into() }
        })
        .unwrap()
    }

    #[test]
    fn a_flapping_peer_pages_once_and_a_peer_left_down_is_still_reported() {
        let counters = Counters::default();
        let mut f = Flaps::default();
        let c = Clock(Instant::now());
        // The first outage and its return: both sent.
        assert!(f.admit(peer(false), c.at(0), &counters).is_some());
        assert!(f.admit(peer(true), c.at(10), &counters).is_some());
        // Ten short outages within the window: nothing sent.
        for i in 0..10 {
            let t = 20 + i * 20;
            assert!(f.admit(peer(false), c.at(t), &counters).is_none(), "{t}");
            assert!(f.due(c.at(t + 5)).is_empty());
            assert!(f.admit(peer(true), c.at(t + 10), &counters).is_none(), "{t}");
        }
        assert_eq!(counters.suppressed.load(Relaxed), 20);
        // It goes down and stays down: reported once the hold passes, with the flaps counted.
        assert!(f.admit(peer(false), c.at(300), &counters).is_none());
        assert!(f.due(c.at(300) + PEER_FLAP_HOLD - Duration::from_secs(1)).is_empty());
        let sent = f.due(c.at(300) + PEER_FLAP_HOLD);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].state, State::Firing);
        assert_eq!(sent[0].details["flaps"], 10);
        // Its return is then sent (the last message never says "up" while it is down).
        let up = f.admit(peer(true), c.at(1000), &counters).unwrap();
        assert_eq!(up.state, State::Resolved);
        // After the window, an outage is sent at once again.
        let later = c.at(1000) + DEDUPE_WINDOW;
        assert!(f.admit(peer(false), later, &counters).is_some());
        // A different peer is its own.
        let other = from_event(&Event::CrossCheckPeerDown {
            peer: "http://10.0.0.3:9657".into(),
            reason: "x".into(),
        })
        .unwrap();
        assert!(f.admit(other, c.at(30), &counters).is_some());
    }

    #[test]
    fn discord_markdown_is_escaped() {
        let reason = "[your bank](https://evil.example) **urgent** `x` # h > q ||s|| @everyone";
        let alert =
            from_event(&Event::InvalidBlock { blknum: 7000, reason: reason.into() }).unwrap();
        let content = body(Format::Discord, &alert, "w")["content"].as_str().unwrap().to_owned();
        assert!(content.contains(r"\[your bank\]\(https\:"), "{content}");
        for raw in ["[your bank](", "**", "`x`", "||s||"] {
            assert!(!content.contains(raw), "{raw} in {content}");
        }
        // Every markdown character is preceded by a backslash.
        let chars: Vec<char> = content.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            if matches!(c, '[' | ']' | '(' | ')' | '*' | '`' | '|' | '#' | '>') {
                assert_eq!(chars[i - 1], '\\', "unescaped {c} at {i}: {content}");
            }
        }
        let long = discord_text(&"*".repeat(5000));
        assert!(
            long.chars().count() <= MAX_TEXT + 1 && long.ends_with("\\*…"),
            "never cut inside an escape"
        );
        assert_eq!(discord_text("a\nb"), "a b");
    }

    #[test]
    fn an_l1_head_that_stops_fires_only_when_checked() {
        let mut s = settings();
        let c = Clock(Instant::now());
        let mut st = StallState::new(c.at(0), &Heartbeat::default());
        for t in (0..300).step_by(10) {
            assert!(st.observe(&obs(c.at(t), Ok(100), c.at(t), 100, 1, 0), &s).is_empty());
        }
        assert_eq!(
            fired(&st.observe(&obs(c.at(300), Ok(100), c.at(300), 100, 1, 0), &s)),
            [(Cause::L1Head, true)]
        );
        assert_eq!(
            fired(&st.observe(&obs(c.at(301), Ok(101), c.at(301), 101, 1, 0), &s)),
            [(Cause::L1Head, false)]
        );
        // A devnet mining on demand: off.
        s.l1_stall_after = None;
        let mut st = StallState::new(c.at(0), &Heartbeat::default());
        for t in (0..3000).step_by(10) {
            assert!(st.observe(&obs(c.at(t), Ok(100), c.at(t), 100, 1, 0), &s).is_empty());
        }
    }

    #[test]
    fn a_dev_chain_turns_the_head_check_off_by_default_wherever_its_node_is() {
        let d = Duration::from_secs(300);
        for dev in [31_337, 1_337] {
            assert_eq!(AlertSettings::default_l1_stall_after(dev, d), None, "{dev}");
        }
        for real in [1, 11_155_111, 17_000, 8_453] {
            assert_eq!(AlertSettings::default_l1_stall_after(real, d), Some(d), "{real}");
        }
        // A production tower with its own node on loopback keeps the check (the default is
        // decided by the chain, not the host).
        let mut s = settings();
        s.l1_stall_default = true;
        assert_eq!(s.clone().on_chain(1).l1_stall_after, Some(d));
        assert_eq!(s.clone().on_chain(31_337).l1_stall_after, None);
        // An explicit value stands, even on a devnet.
        s.l1_stall_default = false;
        assert_eq!(s.on_chain(31_337).l1_stall_after, Some(d));
    }

    #[test]
    fn the_heartbeat_rounds_needed_up_to_the_gwei() {
        let hb = Heartbeat::default();
        assert_eq!(hb.needed_gwei.load(Relaxed), u64::MAX, "unknown before the first check");
        hb.funding(3, 1, U256::from(1_000_000_001u64));
        assert_eq!(hb.needed_gwei.load(Relaxed), 2);
        hb.funding(3, 0, U256::ZERO);
        assert_eq!(hb.needed_gwei.load(Relaxed), 0);
    }

    #[test]
    fn metrics_text_names_every_figure() {
        let alerts = Alerts::start(settings()).unwrap();
        let text = alerts.metrics_text();
        for name in [
            "plasma_watcher_alerts_sent_total 0",
            "plasma_watcher_alerts_failed_total 0",
            "plasma_watcher_alerts_dropped_total 0",
            "plasma_watcher_alerts_suppressed_total 0",
            "plasma_watcher_alerts_retries_total 0",
            "plasma_watcher_alert_webhooks 0",
            "plasma_watcher_stalled 0",
            "plasma_watcher_underfunded 0",
        ] {
            assert!(text.contains(&format!("\n{name}\n")), "{name}: {text}");
        }
    }
}
