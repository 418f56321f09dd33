//! Read-only monitor mode and cross-checks between watchers (issue 20).
//!
//! **Monitor** (`plasma-watcher --monitor`): the same following, validation and judgement as a
//! guarding watcher, and no L1 transaction ever. Three locks, any one of which is enough:
//! the binary builds a provider with no wallet and no key is loaded at all (clap refuses
//! `--monitor` with a key: see `main.rs`); every action goes through [`Watcher::act`], whose
//! first line hands it here instead of to the sender; and guards, the only reason a tower would
//! move funds for someone, are refused (`MonitorOnly`). What the watcher would have done is
//! recorded once per action as a `wouldAct` event, so a person sees what a guarding watcher
//! would do (and the dashboard lists it).
//!
//! *Why a monitor records each event once:* a guarding watcher emits "invalid exit found" once
//! because its challenge then lands; a monitor's never does, so the same finding would be
//! re-emitted every poll (every 50 ms on a devnet). Identical events are kept once; the peer
//! up/down events are exempt (each outage is its own event, by construction).
//!
//! **Cross-check** (`--cross-check URL,…`, a guarding watcher or a monitor): every interval each
//! peer's `GET /v1/verdicts` is compared with this watcher's verdicts (`crate::verdicts`) on the
//! blocks both judged. A block judged differently is a `verdictDisagreement` event (logged at
//! error, listed in `/status` `crossCheck`), raised once per peer, block and pair of verdict
//! kinds (the peer's words for an invalid block are not part of it).
//!
//! Attacker and 3 a.m. notes:
//! - A peer is untrusted input: its body is capped ([`MAX_BODY`]), its reasons stripped of
//!   control characters and cut ([`crate::verdicts::sanitize`]), a slow peer times out
//!   ([`PEER_TIMEOUT`]) and never touches the watcher's loop (this runs in its own task, taking
//!   the view's lock only to copy two numbers).
//! - A lying peer can raise disagreements (that is the point: a person looks) but cannot make
//!   this watcher change a verdict or act: nothing here feeds back into judgement.
//! - Nor can it flood the event store (audit 20, finding 3). Each event is a database commit,
//!   kept in memory and served by `/events`, so what a peer can add is bounded: a disagreement is
//!   keyed on (peer, block, our verdict's kind, theirs) — never on the peer's free-text reason,
//!   which it could reword at every poll; only the first entry for a block in a page counts
//!   (a page listing one block 200 times is one claim); entries outside the asked range
//!   (`from` to `from` + [`PAGE`] child blocks) are ignored; at most
//!   [`MAX_DISAGREEMENTS_PER_POLL`] are raised per poll. The cursor stops at the first
//!   disagreement, so a liar's claims stay within one page beyond it: per peer at most two
//!   events per block (the two kinds that differ from ours), however long it lies. The "already
//!   raised" check is a set (seeded once from the stored events), not a scan of every event.
//! - The HTTP client follows no redirect (audit 20, finding 7): a peer is the URL a person
//!   configured, and a 3xx to somewhere else (another host, a URL with someone's credentials,
//!   an internal address) is a failed poll, not a page.
//! - A peer that is down is not a disagreement: after [`DOWN_AFTER`] failed polls in a row it is
//!   reported once (`crossCheckPeerDown`), and once when it answers again (`crossCheckPeerUp`).
//!   A peer following another deployment (framework or chain id) counts as down, never as a
//!   disagreement: its verdicts are about other blocks.
//! - Peer URLs may carry credentials: they are shown redacted everywhere (`http://host:port/…`).
//! - Only blocks both judged are compared, so a peer that is behind is not "disagreeing"; the
//!   cursor advances only over agreed, consecutive blocks, so a disagreement is compared again
//!   every poll (it shows in `/status` for as long as it stands) but raised once.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::verdicts::{BlockVerdict, Judged, Judgement, VerdictPage};
use plasma_spec::CHILD_BLOCK_INTERVAL;
use std::collections::HashSet;
use tracing::error;

/// Verdicts asked of a peer per request.
pub const PAGE: usize = 500;
/// Pages read from one peer per poll while everything agrees (catching up a long chain).
pub const PAGES_PER_POLL: usize = 20;
/// The most bytes read from a peer's answer (a page of [`PAGE`] verdicts with the longest
/// reasons is under 200 KiB).
pub const MAX_BODY: usize = 1 << 20;
/// How long a peer has to answer one request.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// Failed polls in a row before a peer is reported down: one timeout is not an outage (and two
/// watchers started one after the other do not report each other down).
pub const DOWN_AFTER: u32 = 3;
/// The most disagreements raised (and listed in `/status`) per peer and poll: the first ones,
/// in block order (the first is the one that matters: the cursor waits there).
pub const MAX_DISAGREEMENTS_PER_POLL: usize = 8;

/// What a raised disagreement is deduplicated on: peer (redacted), block, our verdict's kind,
/// theirs.
type RaisedKey = (String, u64, &'static str, &'static str);

/// Why the cross-check settings were refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CrossCheckError {
    /// A peer that is not an http(s) URL.
    #[error("--cross-check {0}: not an http(s) URL")]
    BadUrl(String),
    /// The same peer twice.
    #[error("--cross-check {0} is listed twice")]
    Duplicate(String),
    /// An interval that is not a positive number of seconds.
    #[error("--cross-check.interval {0}: expected seconds > 0")]
    BadInterval(String),
    /// The HTTP client could not be built (TLS settings).
    #[error("cross-check HTTP client: {0}")]
    Client(String),
}

/// A disagreement with a peer on one block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disagreement {
    /// The child block.
    pub blknum: u64,
    /// This watcher's verdict.
    pub ours: BlockVerdict,
    /// The peer's.
    pub theirs: BlockVerdict,
}

/// One peer as `/status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    /// The peer's URL, redacted.
    pub peer: String,
    /// Whether its last poll succeeded (`None` before the first).
    pub reachable: Option<bool>,
    /// Failed polls in a row.
    pub failures: u32,
    /// Why the last poll failed.
    pub last_error: Option<String>,
    /// Every child block up to this one was judged alike by both (0: none yet).
    pub agreed_to: u64,
    /// The highest block the peer says it judged.
    pub their_judged_to: Option<u64>,
    /// Blocks judged differently, as of the last poll.
    pub disagreements: Vec<Disagreement>,
    /// When it was last polled (unix seconds).
    pub last_poll_unix: Option<u64>,
}

struct Peer {
    /// The full URL (may hold credentials: never shown).
    url: reqwest::Url,
    state: Mutex<PeerStatus>,
}

/// The monitor flag and the cross-check's peers (one field of [`Watcher`]).
#[derive(Default)]
pub(crate) struct Oversight {
    monitor: bool,
    /// Actions already recorded as `wouldAct` by this process.
    would_act: Mutex<HashSet<String>>,
    chain_id: u64,
    peers: Vec<Peer>,
    interval: Duration,
    client: Option<reqwest::Client>,
    /// Digests of the events a monitor recorded, for [`Oversight::repeats`] (`None` until the
    /// first check seeds it from the stored events).
    seen: Mutex<Option<HashSet<B256>>>,
    /// Disagreements already raised (`None` until the first poll seeds it from the stored
    /// events).
    raised: Mutex<Option<HashSet<RaisedKey>>>,
}

impl Oversight {
    pub(crate) fn new(chain_id: u64) -> Self {
        Self { chain_id, ..Self::default() }
    }

    /// Whether `e` repeats an event already recorded (`events`, the store) and a monitor should
    /// not record it again (see the module docs); if not, `e` counts as recorded from now on.
    /// Peer up and down events are never repeats: each outage is one. One hash-set lookup per
    /// event: `events` is read once, to seed the set.
    pub(super) fn repeats(&self, e: &Event, events: &[Event]) -> bool {
        if matches!(e, Event::CrossCheckPeerDown { .. } | Event::CrossCheckPeerUp { .. }) {
            return false;
        }
        let mut seen = self.seen.lock();
        let seen = seen.get_or_insert_with(|| events.iter().map(digest).collect());
        !seen.insert(digest(e))
    }
}

/// An event's digest (of its JSON form: `Event` has no `Hash`, and its JSON is what is stored).
fn digest(e: &Event) -> B256 {
    alloy::primitives::keccak256(serde_json::to_vec(e).unwrap_or_default())
}

fn raised_key(peer: &str, blknum: u64, ours: &BlockVerdict, theirs: &BlockVerdict) -> RaisedKey {
    (peer.to_owned(), blknum, ours.kind(), theirs.kind())
}

/// What one comparison found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// The new cursor: every child block up to it agreed.
    pub agreed_to: u64,
    /// Blocks judged differently.
    pub disagreements: Vec<Disagreement>,
    /// Whether the page agreed all the way (the next page may be read at once).
    pub clean: bool,
}

/// Compares a peer's page of verdicts, asked from `from` with `limit`, with `ours` (pure). Only
/// blocks both judged are compared; the cursor moves over consecutive agreed blocks from
/// `agreed_to` and stops at the first block that disagrees, is missing from the page, or that
/// this watcher has not judged yet. Entries outside what was asked (below `from`, beyond `limit`
/// child blocks from it, not a child block) are ignored, and so is every entry for a block after
/// the page's first (a peer listing one block many times makes one claim). At most
/// [`MAX_DISAGREEMENTS_PER_POLL`] disagreements are returned, the lowest blocks first.
pub fn compare(
    ours: &Judgement,
    from: u64,
    limit: usize,
    agreed_to: u64,
    theirs: &[Judged],
) -> Comparison {
    let first = from.div_ceil(CHILD_BLOCK_INTERVAL).max(1).saturating_mul(CHILD_BLOCK_INTERVAL);
    let last = first.saturating_add(
        u64::try_from(limit.saturating_sub(1))
            .unwrap_or(u64::MAX)
            .saturating_mul(CHILD_BLOCK_INTERVAL),
    );
    let mut sorted: Vec<&Judged> = theirs
        .iter()
        .filter(|j| {
            (first..=last).contains(&j.blknum)
                && limit > 0
                && j.blknum.is_multiple_of(CHILD_BLOCK_INTERVAL)
        })
        .collect();
    // Stable: of the entries for one block, the page's first stays first and is the one kept.
    sorted.sort_by_key(|j| j.blknum);
    sorted.dedup_by_key(|j| j.blknum);
    let mut out = Comparison { agreed_to, clean: true, ..Comparison::default() };
    let mut expected = first;
    let mut contiguous = true;
    for j in sorted {
        let Some(o) = ours.verdict(j.blknum) else {
            contiguous = false;
            continue;
        };
        if !o.agrees_with(&j.verdict) {
            if out.disagreements.len() < MAX_DISAGREEMENTS_PER_POLL {
                let d = Disagreement { blknum: j.blknum, ours: o, theirs: j.verdict.clone() };
                out.disagreements.push(d);
            }
            contiguous = false;
            out.clean = false;
        } else if contiguous && j.blknum == expected {
            out.agreed_to = j.blknum;
            expected = expected.saturating_add(CHILD_BLOCK_INTERVAL);
        } else if j.blknum != expected.saturating_sub(CHILD_BLOCK_INTERVAL) {
            // A gap (or a duplicate of an agreed block is fine): stop here.
            contiguous = false;
        }
    }
    out.clean &= contiguous;
    out
}

/// The `--cross-check` URLs, checked: http(s) with a host, each once (errors show them
/// redacted).
pub fn parse_peers(peers: &[String]) -> Result<Vec<reqwest::Url>, CrossCheckError> {
    let mut out: Vec<reqwest::Url> = Vec::new();
    for raw in peers.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        // Shown redacted whatever the scheme; an unparsable one not at all (it may hold a secret).
        let url = match reqwest::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            Ok(u) => return Err(CrossCheckError::BadUrl(plasma_contracts::l1::redact_url(&u))),
            Err(_) => return Err(CrossCheckError::BadUrl("(an unparsable URL)".into())),
        };
        if out.contains(&url) {
            return Err(CrossCheckError::Duplicate(plasma_contracts::l1::redact_url(&url)));
        }
        out.push(url);
    }
    Ok(out)
}

/// What the action behind key `key` (its prefix, as `challenge.rs`, `exits.rs` and `batch.rs`
/// name them) is for, in words.
pub fn reason_for(key: &str) -> &'static str {
    match key.split(':').next().unwrap_or_default() {
        "challenge" => "challenge a standard exit of a spent output (WATCH-4, EXIT-4)",
        "ife-noncanonical" => {
            "challenge an in-flight exit whose transaction has an older competitor (CHAL-1)"
        }
        "ife-input" => "challenge a piggybacked input spent elsewhere (CHAL-3)",
        "ife-respond" => {
            "answer a false canonicity challenge with the transaction's inclusion (CHAL-2)"
        }
        "ife-output" => "challenge a piggybacked output that was spent (CHAL-4)",
        "process-exits" => "process due exits (WATCH-10)",
        "settle-debts" => "settle capped exits from the token's debt pool (EXIT-16, WATCH-10)",
        "mass-exit" | "batch-exit" => "exit guarded owners' outputs on a byzantine chain (WATCH-9)",
        "guard-ife" | "guard-pb" => "exit a guarded owner's in-flight payment (WATCH-9, EXIT-9)",
        "batch-strike" | "batch-release" | "batch-demand" | "batch-answer"
        | "batch-claimed-exit" => "audit a batch exit's claims (WATCH-16)",
        "batch-collect" | "batch-payout" => "collect or pay out a batch exit (EXIT-15)",
        _ => "an action of the watcher (WATCH-11)",
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Watcher {
    /// Makes this watcher a read-only monitor: it judges as always and sends nothing (see the
    /// module docs). Build it with a provider that has no wallet and `me` = `Address::ZERO`.
    #[must_use]
    pub fn with_monitor(mut self) -> Self {
        self.oversight.monitor = true;
        self
    }

    /// Whether this is a read-only monitor (`--monitor`).
    pub fn is_monitor(&self) -> bool {
        self.oversight.monitor
    }

    /// Compares this watcher's verdicts with those of `peers` (watcher API base URLs) every
    /// `interval` (issue 20), once [`crate::start`] runs it.
    pub fn with_cross_check(
        mut self,
        peers: &[String],
        interval: Duration,
    ) -> Result<Self, CrossCheckError> {
        if interval.is_zero() {
            return Err(CrossCheckError::BadInterval(format!("{}", interval.as_secs_f64())));
        }
        let parsed: Vec<Peer> = parse_peers(peers)?
            .into_iter()
            .map(|url| {
                let shown = plasma_contracts::l1::redact_url(&url);
                Peer { url, state: Mutex::new(PeerStatus { peer: shown, ..PeerStatus::default() }) }
            })
            .collect();
        if !parsed.is_empty() {
            self.oversight.client = Some(peer_client()?);
        }
        self.oversight.peers = parsed;
        self.oversight.interval = interval;
        Ok(self)
    }

    /// The cross-checked peers as `/status` shows them (empty without `--cross-check`).
    pub fn cross_check_status(&self) -> Vec<PeerStatus> {
        self.oversight.peers.iter().map(|p| p.state.lock().clone()).collect()
    }

    /// This watcher's judgement now: the highest child block judged and the first bad block with
    /// its verdict (from its event). A bad block whose event was lost (a crash between the two
    /// writes) is not claimed: the page then ends before it.
    pub fn judgement(&self) -> Judgement {
        let (synced, byzantine) = {
            let view = self.view.lock();
            (view.synced_block, view.byzantine_from)
        };
        let Some(b) = byzantine else {
            return Judgement {
                judged_to: synced / CHILD_BLOCK_INTERVAL * CHILD_BLOCK_INTERVAL,
                bad: None,
            };
        };
        let verdict = self.events.lock().iter().rev().find_map(|e| match e {
            Event::BlockWithheld { blknum } if *blknum == b => Some(BlockVerdict::Withheld),
            Event::InvalidBlock { blknum, reason } if *blknum == b => {
                Some(BlockVerdict::Invalid { reason: reason.clone() })
            }
            _ => None,
        });
        match verdict {
            Some(v) => Judgement { judged_to: b, bad: Some((b, v)) },
            None => Judgement { judged_to: b.saturating_sub(CHILD_BLOCK_INTERVAL), bad: None },
        }
    }

    /// `GET /v1/verdicts?from=N&limit=M` (see `crate::verdicts`).
    pub fn verdicts(&self, from: u64, limit: usize) -> VerdictPage {
        let judgement = self.judgement();
        let (verdicts, next) = judgement.page(from, limit);
        VerdictPage {
            framework: self.settings.framework,
            chain_id: self.oversight.chain_id,
            judged_to: judgement.judged_to,
            byzantine_from: self.view.lock().byzantine_from,
            verdicts,
            next,
        }
    }

    /// The monitor's side of [`Watcher::act`]: records what it would have sent, once per action.
    pub(super) fn would_act(&self, key: &str, call: &str, value: U256) {
        if !self.oversight.would_act.lock().insert(key.to_owned()) {
            return;
        }
        let reason = reason_for(key);
        let call = call.split('(').next().unwrap_or(call).to_owned();
        info!(target: "watcher::monitor", action = key, call, %value, reason,
            "monitor: would act (nothing sent)");
        self.dashboard.record(key, "wouldAct", None, Some(reason.to_owned()));
        self.event(Event::WouldAct {
            action: key.to_owned(),
            call,
            value,
            reason: reason.to_owned(),
        });
    }

    /// Runs the cross-check until `shutdown` flips (returns at once without peers).
    pub async fn cross_check(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        if self.oversight.peers.is_empty() {
            return;
        }
        info!(target: "watcher::crosscheck",
            peers = ?self.cross_check_status().iter().map(|p| p.peer.clone()).collect::<Vec<_>>(),
            interval_ms = u64::try_from(self.oversight.interval.as_millis()).unwrap_or(u64::MAX),
            "cross-checking verdicts");
        loop {
            if *shutdown.borrow() {
                return;
            }
            for i in 0..self.oversight.peers.len() {
                self.poll_peer(i).await;
            }
            tokio::select! {
                () = tokio::time::sleep(self.oversight.interval) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One poll of peer `i`: pages from its cursor while everything agrees.
    async fn poll_peer(&self, i: usize) {
        let peer = &self.oversight.peers[i];
        let mut agreed_to = peer.state.lock().agreed_to;
        let mut disagreements = Vec::new();
        let mut their_judged_to = None;
        for _ in 0..PAGES_PER_POLL {
            let from = agreed_to.saturating_add(1);
            let page = match self.fetch(peer, from).await {
                Ok(p) => p,
                Err(reason) => return self.peer_failed(peer, reason),
            };
            their_judged_to = Some(page.judged_to);
            let ours = self.judgement();
            let c = compare(&ours, from, PAGE, agreed_to, &page.verdicts);
            disagreements.extend(c.disagreements);
            disagreements.truncate(MAX_DISAGREEMENTS_PER_POLL);
            let moved = c.agreed_to > agreed_to;
            agreed_to = c.agreed_to;
            if !(c.clean && moved && page.next.is_some() && ours.judged_to > agreed_to) {
                break;
            }
        }
        let (shown, was_down) = {
            let mut s = peer.state.lock();
            let was_down = s.reachable == Some(false);
            s.reachable = Some(true);
            s.failures = 0;
            s.last_error = None;
            s.agreed_to = agreed_to;
            s.their_judged_to = their_judged_to;
            s.disagreements.clone_from(&disagreements);
            s.last_poll_unix = Some(now_unix());
            (s.peer.clone(), was_down)
        };
        if was_down {
            info!(target: "watcher::crosscheck", peer = %shown, "cross-check peer answers again");
            self.event(Event::CrossCheckPeerUp { peer: shown.clone() });
        }
        for d in disagreements {
            // Once per peer, block and pair of verdict kinds, across restarts too.
            if !self.first_raise(&shown, &d) {
                continue;
            }
            let e = Event::VerdictDisagreement {
                peer: shown.clone(),
                blknum: d.blknum,
                ours: d.ours.clone(),
                theirs: d.theirs.clone(),
            };
            error!(target: "watcher::crosscheck", peer = %shown, blknum = d.blknum,
                ours = %d.ours, theirs = %d.theirs,
                "verdict disagreement: a cross-checked watcher judged this block differently");
            self.event(e);
        }
    }

    /// Whether disagreement `d` with `peer` is raised for the first time (and counts as raised
    /// from now on). The set is seeded once from the stored events (lock order: `raised`, then
    /// `events`; nothing takes them the other way round).
    fn first_raise(&self, peer: &str, d: &Disagreement) -> bool {
        let mut raised = self.oversight.raised.lock();
        let raised = raised.get_or_insert_with(|| {
            self.events
                .lock()
                .iter()
                .filter_map(|e| match e {
                    Event::VerdictDisagreement { peer, blknum, ours, theirs } => {
                        Some(raised_key(peer, *blknum, ours, theirs))
                    }
                    _ => None,
                })
                .collect()
        });
        raised.insert(raised_key(peer, d.blknum, &d.ours, &d.theirs))
    }

    fn peer_failed(&self, peer: &Peer, reason: String) {
        let (shown, report) = {
            let mut s = peer.state.lock();
            s.failures = s.failures.saturating_add(1);
            s.last_error = Some(reason.clone());
            s.last_poll_unix = Some(now_unix());
            let report = s.failures >= DOWN_AFTER && s.reachable != Some(false);
            if s.failures >= DOWN_AFTER {
                s.reachable = Some(false);
            }
            (s.peer.clone(), report)
        };
        if report {
            warn!(target: "watcher::crosscheck", peer = %shown, reason = %reason,
                "cross-check peer down (not a disagreement)");
            self.event(Event::CrossCheckPeerDown { peer: shown, reason });
        } else {
            debug!(target: "watcher::crosscheck", peer = %shown, reason = %reason, "cross-check poll failed");
        }
    }

    /// One page of the peer's verdicts from `from`, of this deployment; the error is a sentence
    /// without secrets.
    async fn fetch(&self, peer: &Peer, from: u64) -> Result<VerdictPage, String> {
        let Some(client) = &self.oversight.client else { return Err("no HTTP client".into()) };
        let page = fetch_page(client, &peer.url, from).await?;
        if page.framework != self.settings.framework || page.chain_id != self.oversight.chain_id {
            return Err(format!(
                "follows framework {} on chain {}, not this watcher's {} on chain {}: its verdicts \
                 are about other blocks",
                page.framework, page.chain_id, self.settings.framework, self.oversight.chain_id
            ));
        }
        Ok(page)
    }
}

/// The cross-check's HTTP client: this crate's TLS (`PLASMA_CA_FILE` trusted), [`PEER_TIMEOUT`]
/// per request, and no redirect followed (see the module docs).
pub fn peer_client() -> Result<reqwest::Client, CrossCheckError> {
    let options = plasma_contracts::l1::ClientOptions::from_env();
    plasma_contracts::l1::tls_builder(&options)
        .map_err(|e| CrossCheckError::Client(e.to_string()))?
        .connect_timeout(options.connect_timeout.min(PEER_TIMEOUT))
        .timeout(PEER_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CrossCheckError::Client(plasma_contracts::l1::redact_text(&e.to_string())))
}

/// `GET {base}/v1/verdicts?from=…&limit=PAGE`: the body capped at [`MAX_BODY`], anything but a
/// 2xx (a redirect included) refused, reasons sanitized. The error is a sentence without
/// secrets.
pub async fn fetch_page(
    client: &reqwest::Client,
    base: &reqwest::Url,
    from: u64,
) -> Result<VerdictPage, String> {
    let mut url = base.clone();
    url.set_path(&format!("{}/v1/verdicts", base.path().trim_end_matches('/')));
    url.query_pairs_mut()
        .append_pair("from", &from.to_string())
        .append_pair("limit", &PAGE.to_string());
    let redact = |e: &dyn std::fmt::Display| plasma_contracts::l1::redact_text(&e.to_string());
    let body = tokio::time::timeout(PEER_TIMEOUT, async {
        let mut resp = client.get(url).send().await.map_err(|e| redact(&e))?;
        let status = resp.status();
        if status.is_redirection() {
            // Where it points is not shown: a Location may carry credentials.
            return Err(format!("answered {status} (redirects are not followed)"));
        }
        if !status.is_success() {
            return Err(format!("answered {status}"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| redact(&e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("answer larger than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    })
    .await
    .map_err(|_| format!("no answer within {}s", PEER_TIMEOUT.as_secs()))??;
    let page: VerdictPage = serde_json::from_slice(&body)
        .map_err(|e| crate::verdicts::sanitize(&format!("not a verdicts page: {e}")))?;
    Ok(VerdictPage {
        verdicts: page
            .verdicts
            .into_iter()
            .map(|j| Judged { blknum: j.blknum, verdict: j.verdict.sanitized() })
            .collect(),
        ..page
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(blknum: u64) -> Judged {
        Judged { blknum, verdict: BlockVerdict::Valid }
    }

    #[test]
    fn agreeing_pages_move_the_cursor_over_consecutive_blocks_both_judged() {
        let ours = Judgement { judged_to: 3000, bad: None };
        let c = compare(&ours, 1, PAGE, 0, &[valid(1000), valid(2000), valid(3000), valid(4000)]);
        assert_eq!(c.agreed_to, 3000, "4000: not judged here yet, not compared");
        assert!(c.disagreements.is_empty());
        assert!(!c.clean, "the peer is ahead: stop paging");
        let c = compare(&ours, 1, PAGE, 0, &[valid(1000), valid(3000)]);
        assert_eq!(c.agreed_to, 1000, "a gap stops the cursor");
        let c = compare(&ours, 2001, PAGE, 2000, &[valid(3000)]);
        assert_eq!((c.agreed_to, c.clean), (3000, true));
    }

    #[test]
    fn a_different_verdict_on_a_block_both_judged_is_a_disagreement_and_holds_the_cursor() {
        let ours = Judgement { judged_to: 3000, bad: None };
        let lie = Judged { blknum: 2000, verdict: BlockVerdict::Withheld };
        let c = compare(&ours, 1, PAGE, 0, &[valid(1000), lie.clone(), valid(3000), lie]);
        assert_eq!(c.agreed_to, 1000);
        assert_eq!(
            c.disagreements,
            [Disagreement {
                blknum: 2000,
                ours: BlockVerdict::Valid,
                theirs: BlockVerdict::Withheld
            }],
            "reported once however often the page repeats it"
        );
        // Invalid against invalid agrees whatever the words.
        let bad = |r: &str| BlockVerdict::Invalid { reason: r.into() };
        let ours = Judgement { judged_to: 2000, bad: Some((2000, bad("double spend"))) };
        let c =
            compare(&ours, 1, PAGE, 0, &[valid(1000), Judged { blknum: 2000, verdict: bad("x") }]);
        assert!(c.disagreements.is_empty());
        assert_eq!(c.agreed_to, 2000);
        // Ignored: below what was asked, not a child block.
        let c = compare(
            &ours,
            2000,
            PAGE,
            1000,
            &[
                Judged { blknum: 1000, verdict: BlockVerdict::Withheld },
                Judged { blknum: 1500, verdict: BlockVerdict::Withheld },
            ],
        );
        assert!(c.disagreements.is_empty());
    }

    #[test]
    fn peer_urls_are_checked_and_never_shown_with_their_secrets() {
        let urls = |l: &[&str]| parse_peers(&l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(urls(&["http://a:1", " https://u:p@b/x ", ""]).unwrap().len(), 2);
        for (bad, want) in [
            (vec!["ftp://u:secret@a/"], "not an http(s) URL"),
            (vec!["not a url"], "not an http(s) URL"),
            (vec!["http://u:secret@a:1/p", "http://u:secret@a:1/p"], "twice"),
        ] {
            let err = urls(&bad).unwrap_err().to_string();
            assert!(err.contains(want) && !err.contains("secret"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn every_action_key_has_a_reason_and_repeats_are_recognised() {
        assert!(reason_for("challenge:1000000000").contains("WATCH-4"));
        assert!(reason_for("process-exits:0x00:5").contains("WATCH-10"));
        assert!(reason_for("batch-strike:1:2").contains("WATCH-16"));
        assert!(reason_for("something-new").contains("WATCH-11"));
        let e = Event::BlockWithheld { blknum: 1000 };
        // Seeded from the store on the first check.
        assert!(Oversight::default().repeats(&e, std::slice::from_ref(&e)));
        let o = Oversight::default();
        assert!(!o.repeats(&e, &[]), "new: recorded");
        assert!(o.repeats(&e, &[]), "recorded once, then a repeat (without scanning the store)");
        assert!(!o.repeats(&Event::BlockWithheld { blknum: 2000 }, &[]));
        let down = Event::CrossCheckPeerDown { peer: "http://a:1".into(), reason: "x".into() };
        assert!(!o.repeats(&down, &[]));
        assert!(!o.repeats(&down, std::slice::from_ref(&down)), "each outage is its own event");
    }

    /// Audit 20, finding 3: what a lying peer can add per poll is bounded, whatever it sends.
    #[test]
    fn a_lying_peer_makes_one_claim_per_block_within_the_asked_range_and_few_per_poll() {
        let ours = Judgement { judged_to: 3000, bad: None };
        let lie = |blknum: u64, i: usize| Judged {
            blknum,
            verdict: BlockVerdict::Invalid { reason: format!("lie {i}") },
        };
        // One block listed 200 times, each with other words, then as withheld: the first counts.
        let mut page: Vec<Judged> = (0..200).map(|i| lie(2000, i)).collect();
        page.push(Judged { blknum: 2000, verdict: BlockVerdict::Withheld });
        page.insert(0, valid(1000));
        let c = compare(&ours, 1, PAGE, 0, &page);
        assert_eq!(c.agreed_to, 1000);
        assert_eq!(
            c.disagreements,
            [Disagreement {
                blknum: 2000,
                ours: BlockVerdict::Valid,
                theirs: lie(2000, 0).verdict
            }]
        );
        // Beyond the asked range (limit 2 from 1: blocks 1000 and 2000) or below it: ignored.
        let c = compare(&ours, 1, 2, 0, &[valid(1000), valid(2000), lie(3000, 0)]);
        assert_eq!((c.agreed_to, c.disagreements.len()), (2000, 0));
        let c = compare(&ours, 1001, PAGE, 1000, &[lie(1000, 0), valid(2000)]);
        assert_eq!((c.agreed_to, c.disagreements.len()), (2000, 0));
        assert!(compare(&ours, 1, 0, 0, &[lie(1000, 0)]).disagreements.is_empty());
        // A lie about every block both judged: at most MAX_DISAGREEMENTS_PER_POLL, lowest first.
        let ours = Judgement { judged_to: 100_000, bad: None };
        let page: Vec<Judged> = (1..=100).map(|b| lie(b * 1000, 0)).collect();
        let c = compare(&ours, 1, PAGE, 0, &page);
        assert_eq!(c.disagreements.len(), MAX_DISAGREEMENTS_PER_POLL);
        assert_eq!(c.disagreements[0].blknum, 1000);
        assert!(!c.clean && c.agreed_to == 0);
        // Raised once per peer, block and pair of kinds: rewording the lie is the same key.
        let (o, a, b) = (BlockVerdict::Valid, lie(2000, 1).verdict, lie(2000, 2).verdict);
        assert_eq!(raised_key("p", 2000, &o, &a), raised_key("p", 2000, &o, &b));
        assert_ne!(
            raised_key("p", 2000, &o, &a),
            raised_key("p", 2000, &o, &BlockVerdict::Withheld)
        );
        assert_ne!(raised_key("p", 2000, &o, &a), raised_key("q", 2000, &o, &a));
    }

    /// Audit 20, finding 7: a peer's redirect is a failed poll, never followed.
    #[tokio::test]
    async fn a_peer_that_redirects_is_not_followed() {
        use warp::Filter;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let followed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hit = followed.clone();
        let moved = warp::path!("v1" / "verdicts").map(|| {
            warp::http::Response::builder()
                .status(302)
                .header("location", "/elsewhere/v1/verdicts?token=secret")
                .body(String::new())
                .unwrap()
        });
        let elsewhere = warp::path!("elsewhere" / "v1" / "verdicts").map(move || {
            hit.store(true, std::sync::atomic::Ordering::SeqCst);
            warp::reply::json(&VerdictPage {
                framework: Address::ZERO,
                chain_id: 1,
                judged_to: 0,
                byzantine_from: None,
                verdicts: vec![],
                next: None,
            })
        });
        tokio::spawn(warp::serve(moved.or(elsewhere)).incoming(listener).run());
        let base = reqwest::Url::parse(&format!("http://{addr}")).unwrap();
        let client = peer_client().unwrap();
        let err = fetch_page(&client, &base, 1).await.unwrap_err();
        assert!(err.contains("302") && err.contains("not followed"), "{err}");
        assert!(!err.contains("secret"), "the Location is not shown: {err}");
        assert!(!followed.load(std::sync::atomic::Ordering::SeqCst), "the redirect was followed");
        // The same server's page, asked where it is, is read (the client works at all).
        let page = fetch_page(&client, &base.join("/elsewhere").unwrap(), 1).await.unwrap();
        assert_eq!(page.chain_id, 1);
    }
}
