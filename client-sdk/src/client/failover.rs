//! Failover across a list of operator URLs: an active operator and its standbys (a highly
//! available pair on one PostgreSQL; only the leader takes writes, every one serves reads).
//!
//! Each request goes to the preferred URL (the one that last took a write), then to the others
//! in list order. A URL is left for the next one when it cannot serve at all: a connection
//! error, a timeout, a cut-off body, any HTTP 5xx, and among them a standby's `503 NotLeader`,
//! or a redirect (never followed).
//! A read answered with "I do not know that yet" (`UnknownBlock`, `UnknownTransaction`, …) is
//! asked of the next URL too (a standby may be behind the leader) but is an answer: if no URL
//! knows better, that refusal is returned unchanged. A typed 4xx refusal is an answer and ends
//! the request. When no URL served, the whole list is tried again after a pause (the
//! `Retry-After` a standby sends, capped), for a bounded number of rounds, and the error names
//! every URL's last failure ([`SdkError::OperatorsUnavailable`]).
//!
//! Attacks this keeps out:
//! - A standby (or anything answering on a listed URL) names the leader in `NotLeader`. That name
//!   is only a hint to *order* the list: it is followed only when it is one of the configured
//!   URLs (compared as parsed URLs), never to anywhere else, so a compromised standby cannot send
//!   a wallet's payments or reads to a host of its choosing. HTTP redirects are not followed
//!   either (see `OperatorClient::new`), for the same reason.
//! - A listed URL that lies gains nothing over today's single operator: every read is still
//!   checked against L1 by the wallet, and a write only ever reaches listed URLs.
//! - No flood: a request is tried at most `rounds × URLs` times, with a pause between rounds.
//! - No hang: a URL that accepts connections and never answers (a frozen leader: the kernel
//!   still completes the handshake of a stopped process) costs one attempt's answer timeout,
//!   not the whole call, and every call ends by its deadline
//!   ([`SdkError::OperatorDeadline`], naming every URL and why it failed). The bounds, per URL
//!   and per call, are in [`FailoverPolicy`].
//!
//! Why a submit may be retried on another URL: submits are idempotent by transaction hash. The
//! same signed bytes sent twice are refused by the operator with `AlreadyKnown` (pending,
//! included, or loaded from the shared store by a new leader), never applied twice, so a submit
//! whose answer was lost (a timeout, a leader killed after accepting it) is simply sent again and
//! `AlreadyKnown` is read as "accepted" ([`OperatorClient::submit`]).

use super::OperatorClient;
use crate::{
    error::{OperatorAttempt, SdkError},
    sources::SourceFailure,
};
use std::{future::Future, sync::atomic::Ordering, time::Duration};

/// The longest pause between rounds, whatever `Retry-After` asks for.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// The typed refusals of a read that mean "not known here (yet)": a standby behind the leader
/// answers them for what the leader already has, so the next URL is asked before believing them.
/// `NotFound` is a route this URL does not serve (an older version).
const BEHIND_CODES: [&str; 5] =
    ["UnknownBlock", "UnknownTransaction", "UnknownUtxo", "NotCommitted", "NotFound"];

/// How hard a client with several operator URLs tries before giving up, and how long it may
/// take: per attempt at one URL, and per call.
///
/// With the defaults, a wallet whose first URL is a frozen leader (it accepts connections and
/// never answers) reaches the next URL after the 10 s answer timeout, and every call ends within
/// 30 s whatever the URLs do (a block download excepted: see `deadline`). A URL that refuses
/// connections costs nothing, one that does not complete them 2 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailoverPolicy {
    /// How many times the whole list is tried (at least 1). With one URL there is one attempt,
    /// whatever this says, and its error is returned as it is.
    pub rounds: u32,
    /// The pause between rounds (a `Retry-After` from a refusing URL lengthens it, up to 5 s).
    pub pause: Duration,
    /// How long connecting to one URL may take (TCP). Short: a healthy operator completes a
    /// handshake in milliseconds, and a host that does not is moved on from.
    pub connect_timeout: Duration,
    /// How long one URL may take to answer a request once connected (the whole answer; for a
    /// block download, until its headers arrive: the bytes then have up to 300 s). Long enough
    /// for the largest JSON answer (a page of 1,000 outputs with proofs), short enough that a
    /// frozen leader does not hold a wallet for long.
    pub answer_timeout: Duration,
    /// The most one call may take, over every attempt and pause; past it the call fails with
    /// [`SdkError::OperatorDeadline`] (an incomplete or "not known here" answer already in hand
    /// is returned instead). A block download gets at least 300 s: a full block is megabytes.
    pub deadline: Duration,
}

impl FailoverPolicy {
    /// The defaults ([`FailoverPolicy::default`]), for `..FailoverPolicy::DEFAULT` in constants.
    pub const DEFAULT: Self = Self {
        rounds: 8,
        pause: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(2),
        answer_timeout: Duration::from_secs(10),
        deadline: Duration::from_secs(30),
    };
}

impl Default for FailoverPolicy {
    /// 8 rounds a second apart: a standby takes over within about one lease after the leader
    /// dies (5 s by default), so a payment sent meanwhile is accepted by the new leader rather
    /// than refused; a list that is all down fails in about 7 s. A 2 s connect timeout, a 10 s
    /// answer timeout per attempt and a 30 s deadline per call.
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What one URL's attempt at a request came to, when it did not simply answer.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The error as a one-URL client returns it (boxed: failures travel in `Result`s).
    pub(crate) error: Box<SdkError>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// An answer (a typed refusal, a malformed body): returned as it is.
    Final,
    /// This URL could not serve: try the next.
    Failover {
        /// The leader a `NotLeader` named.
        leader: Option<String>,
        /// The `Retry-After` it sent.
        retry_after: Option<Duration>,
    },
    /// "Not known here": ask the next URL, but it stands if none knows better.
    Behind,
}

impl From<SdkError> for Failure {
    fn from(error: SdkError) -> Self {
        let kind = match &error {
            SdkError::OperatorUnreachable { .. } => {
                Kind::Failover { leader: None, retry_after: None }
            }
            _ => Kind::Final,
        };
        Self { error: Box::new(error), kind }
    }
}

impl Failure {
    /// A request that got no answer from `url`.
    pub(crate) fn unreachable(url: &str, e: &reqwest::Error) -> Self {
        SdkError::OperatorUnreachable { url: url.to_owned(), reason: explain(e) }.into()
    }

    /// A request `url` did not start answering within `timeout`.
    pub(crate) fn timed_out(url: &str, timeout: Duration) -> Self {
        SdkError::OperatorUnreachable {
            url: url.to_owned(),
            reason: format!("timed out: no answer within {timeout:?}"),
        }
        .into()
    }

    /// A non-success answer with HTTP `status`: `error` as a one-URL client reports it, `leader`
    /// what a `NotLeader` body names.
    pub(crate) fn answered(
        status: reqwest::StatusCode,
        error: SdkError,
        leader: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        // A redirect is not followed (see the module docs): that URL cannot serve, like a 5xx.
        let kind = if status.is_server_error() || status.is_redirection() {
            Kind::Failover { leader, retry_after }
        } else if matches!(&error, SdkError::OperatorRefused { code, .. } if BEHIND_CODES.contains(&code.as_str()))
        {
            Kind::Behind
        } else {
            Kind::Final
        };
        Self { error: Box::new(error), kind }
    }

    /// The typed refusal's code, if it is one.
    pub(crate) fn code(&self) -> Option<&str> {
        match &*self.error {
            SdkError::OperatorRefused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Why a request failed, without its URL (named separately, and possibly carrying a key): the
/// error and its causes ("error sending request: … : Connection refused (os error 111)").
fn explain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    if e.is_timeout() {
        parts.push("timed out".to_owned());
    }
    // reqwest's own message names the URL: leave it out.
    let mut own = e.to_string();
    if let Some(at) = own.find(" for url (") {
        own.truncate(at);
    }
    parts.push(own);
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The seconds of a `Retry-After` header (the HTTP-date form is not used by the operator).
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

/// Scheme, host and port of `url` only: a hosted operator's path or query may carry an API key,
/// and errors end up in logs and bug reports.
pub(crate) fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let more = u.path() != "/" || u.query().is_some() || !u.username().is_empty();
            format!("{}://{host}{port}{}", u.scheme(), if more { "/…" } else { "" })
        }
        Err(_) => "(unparseable URL)".into(),
    }
}

/// Whether two base URLs name the same operator: parsed (scheme and host case, default ports),
/// the path without its trailing slash. Unparseable never matches.
pub(crate) fn same_url(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a.trim()), reqwest::Url::parse(b.trim())) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host() == b.host()
                && a.port_or_known_default() == b.port_or_known_default()
                && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
                && a.query() == b.query()
        }
        _ => false,
    }
}

/// Whether a request changes state: a write's answer moves the preferred URL (the leader), a
/// read's only when the preferred URL could not serve it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

impl OperatorClient {
    /// Runs `op` against the URLs in failover order until one serves (see the module docs),
    /// within the policy's deadline. `missing` scores an answer (0: complete; more: that many
    /// items the URL did not know, as a standby behind the leader); an incomplete answer is
    /// kept while the other URLs are asked, and the most complete one is returned.
    pub(crate) async fn failover<'s, T, F, Fut>(
        &'s self,
        what: &str,
        access: Access,
        op: F,
        missing: impl Fn(&T) -> usize,
    ) -> Result<T, SdkError>
    where
        F: FnMut(&'s str) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.failover_within(what, access, self.policy.deadline, op, missing).await
    }

    /// [`OperatorClient::failover`] with the call's deadline `deadline` from now.
    pub(crate) async fn failover_within<'s, T, F, Fut>(
        &'s self,
        what: &str,
        access: Access,
        deadline: Duration,
        mut op: F,
        missing: impl Fn(&T) -> usize,
    ) -> Result<T, SdkError>
    where
        F: FnMut(&'s str) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let started = tokio::time::Instant::now();
        let until = started + deadline;
        let n = self.urls.len();
        let mut last: Vec<Option<SdkError>> = (0..n).map(|_| None).collect();
        let cut_off = |last: &mut Vec<Option<SdkError>>, i: usize| {
            let url = &self.urls[i];
            tracing::warn!(target: "sdk::operator", url = %redact(url), what, ?deadline,
                "the call's deadline ran out while this operator URL had not answered");
            last[i] = Some(SdkError::OperatorUnreachable {
                url: url.clone(),
                reason: format!(
                    "no answer before the call's deadline ({deadline:?}, {:?} after the call began)",
                    started.elapsed()
                ),
            });
        };
        if n == 1 {
            // One URL: one attempt and its own error, exactly as before failover existed, but
            // never past the deadline.
            return match tokio::time::timeout_at(until, op(&self.urls[0])).await {
                Ok(result) => result.map_err(|f| *f.error),
                Err(_) => {
                    cut_off(&mut last, 0);
                    Err(self.deadline_error(what, deadline, last))
                }
            };
        }
        let rounds = self.policy.rounds.max(1);
        for round in 1..=rounds {
            let start = self.preferred.load(Ordering::Relaxed).min(n - 1);
            let mut tried = vec![false; n];
            let mut hint: Option<usize> = None;
            let mut pause = self.policy.pause;
            let mut best: Option<(usize, usize, T)> = None;
            let mut behind: Option<(usize, SdkError)> = None;
            let mut preferred_failed = false;
            let mut order = (0..n).map(|k| (start + k) % n);
            loop {
                let i = match hint.take().filter(|&h| !tried[h]) {
                    Some(h) => h,
                    None => match order.by_ref().find(|&i| !tried[i]) {
                        Some(i) => i,
                        None => break,
                    },
                };
                tried[i] = true;
                let url = &self.urls[i];
                let Ok(attempt) = tokio::time::timeout_at(until, op(url)).await else {
                    cut_off(&mut last, i);
                    // What some URL did answer stands; otherwise the deadline's error.
                    if let Some((i, _, v)) = best {
                        self.served(i, access, preferred_failed);
                        return Ok(v);
                    }
                    if let Some((i, e)) = behind {
                        self.served(i, access, preferred_failed);
                        return Err(e);
                    }
                    return Err(self.deadline_error(what, deadline, last));
                };
                let failure = match attempt {
                    Ok(v) => {
                        let score = missing(&v);
                        if score == 0 {
                            self.served(i, access, preferred_failed || i == start);
                            return Ok(v);
                        }
                        tracing::info!(target: "sdk::operator", url = %redact(url), what,
                            missing = score, "incomplete answer: asking the next operator URL");
                        if best.as_ref().is_none_or(|(_, s, _)| score < *s) {
                            best = Some((i, score, v));
                        }
                        continue;
                    }
                    Err(f) => f,
                };
                match failure.kind {
                    Kind::Final => {
                        self.served(i, access, preferred_failed || i == start);
                        return Err(*failure.error);
                    }
                    Kind::Behind => {
                        tracing::info!(target: "sdk::operator", url = %redact(url), what,
                            answer = %failure.error, "not known here: asking the next operator URL");
                        behind.get_or_insert((i, *failure.error));
                    }
                    Kind::Failover { leader, retry_after } => {
                        preferred_failed |= i == start;
                        tracing::warn!(target: "sdk::operator", url = %redact(url), what, round,
                            error = %failure.error, "operator URL failed: trying the next");
                        if let Some(l) = leader {
                            match self.urls.iter().position(|u| same_url(u, &l)) {
                                Some(j) => hint = Some(j),
                                // Never followed: a standby must not steer a wallet off its list.
                                None => tracing::warn!(target: "sdk::operator",
                                    url = %redact(url), leader = %redact(&l),
                                    "ignoring a leader that is not in the operator URL list"),
                            }
                        }
                        if let Some(r) = retry_after {
                            pause = pause.max(r.min(MAX_PAUSE));
                        }
                        last[i] = Some(*failure.error);
                    }
                }
            }
            // Some URL answered this round: that answer stands, no more rounds.
            if let Some((i, _, v)) = best {
                self.served(i, access, preferred_failed);
                return Ok(v);
            }
            if let Some((i, e)) = behind {
                self.served(i, access, preferred_failed);
                return Err(e);
            }
            if round < rounds {
                if tokio::time::Instant::now() + pause >= until {
                    // No time for another round: say so now rather than sleep into the deadline.
                    return Err(self.deadline_error(what, deadline, last));
                }
                tokio::time::sleep(pause).await;
            }
        }
        Err(SdkError::OperatorsUnavailable {
            what: what.to_owned(),
            rounds,
            attempts: self.attempts(last),
        })
    }

    /// [`SdkError::OperatorDeadline`] for `what`, with each URL's last failure.
    fn deadline_error(
        &self,
        what: &str,
        deadline: Duration,
        last: Vec<Option<SdkError>>,
    ) -> SdkError {
        SdkError::OperatorDeadline {
            what: what.to_owned(),
            deadline,
            attempts: self.attempts(last),
        }
    }

    /// Each URL (redacted) with its last failure, in list order.
    fn attempts(&self, last: Vec<Option<SdkError>>) -> Vec<OperatorAttempt> {
        self.urls
            .iter()
            .zip(last)
            .map(|(url, e)| OperatorAttempt {
                url: redact(url),
                failure: e
                    .as_ref()
                    .map_or_else(|| SourceFailure::Other("not asked".into()), SourceFailure::from),
            })
            .collect()
    }

    /// URL `i` answered: a write's answer makes it the preferred URL (it leads); a read's only
    /// when the preferred URL could not serve (it is down or no longer leads).
    fn served(&self, i: usize, access: Access, preferred_failed: bool) {
        if access == Access::Write || preferred_failed {
            let before = self.preferred.swap(i, Ordering::Relaxed);
            if before != i {
                tracing::info!(target: "sdk::operator", url = %redact(&self.urls[i]),
                    "now preferring this operator URL");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_url_compares_parsed_urls() {
        assert!(same_url("http://127.0.0.1:9656", "http://127.0.0.1:9656/"));
        assert!(same_url("HTTP://Op.Example:80/", "http://op.example"));
        assert!(same_url("https://op.example/api/", "https://op.example:443/api"));
        assert!(!same_url("http://127.0.0.1:9656", "http://127.0.0.1:9657"));
        assert!(!same_url("http://op.example", "https://op.example"));
        assert!(!same_url("http://op.example/a", "http://op.example/b"));
        assert!(!same_url("not a url", "not a url"));
    }

    #[test]
    fn redacts_paths_and_credentials() {
        assert_eq!(redact("http://127.0.0.1:9656"), "http://127.0.0.1:9656");
        assert_eq!(redact("https://op.example/v2/KEY"), "https://op.example/…");
        assert_eq!(redact("https://user:pw@op.example"), "https://op.example/…");
        assert_eq!(redact("nonsense"), "(unparseable URL)");
    }

    #[test]
    fn classifies_answers() {
        use reqwest::StatusCode;
        let refused =
            |code: &str| SdkError::OperatorRefused { code: code.into(), message: "m".into() };
        let f = Failure::answered(
            StatusCode::SERVICE_UNAVAILABLE,
            refused("NotLeader"),
            Some("http://a".into()),
            Some(Duration::from_secs(1)),
        );
        assert!(matches!(f.kind, Kind::Failover { leader: Some(_), retry_after: Some(_) }));
        let f = Failure::answered(StatusCode::NOT_FOUND, refused("UnknownBlock"), None, None);
        assert!(matches!(f.kind, Kind::Behind));
        let f =
            Failure::answered(StatusCode::UNPROCESSABLE_ENTITY, refused("InputSpent"), None, None);
        assert!(matches!(f.kind, Kind::Final));
        let f = Failure::answered(
            StatusCode::BAD_GATEWAY,
            SdkError::BadOperatorResponse("HTTP 502".into()),
            None,
            None,
        );
        assert!(matches!(f.kind, Kind::Failover { .. }));
        let f: Failure =
            SdkError::OperatorUnreachable { url: "u".into(), reason: "r".into() }.into();
        assert!(matches!(f.kind, Kind::Failover { .. }));
    }

    #[test]
    fn the_default_policy_is_bounded() {
        let p = FailoverPolicy::default();
        assert!(p.rounds >= 1 && p.rounds <= 10);
        assert!(p.pause <= MAX_PAUSE);
        assert!(p.connect_timeout < p.answer_timeout && p.answer_timeout < p.deadline);
        assert!(p.deadline <= Duration::from_secs(60), "a call ends within a minute");
    }
}
