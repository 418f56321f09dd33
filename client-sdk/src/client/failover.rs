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

/// How hard a client with several operator URLs tries before giving up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailoverPolicy {
    /// How many times the whole list is tried (at least 1). With one URL there is one attempt,
    /// whatever this says, and its error is returned as it is.
    pub rounds: u32,
    /// The pause between rounds (a `Retry-After` from a refusing URL lengthens it, up to 5 s).
    pub pause: Duration,
}

impl Default for FailoverPolicy {
    /// 8 rounds a second apart: a standby takes over within about one lease after the leader
    /// dies (5 s by default), so a payment sent meanwhile is accepted by the new leader rather
    /// than refused; a list that is all down fails in about 7 s.
    fn default() -> Self {
        Self { rounds: 8, pause: Duration::from_secs(1) }
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
    /// Runs `op` against the URLs in failover order until one serves (see the module docs).
    /// `missing` scores an answer (0: complete; more: that many items the URL did not know, as
    /// a standby behind the leader); an incomplete answer is kept while the other URLs are
    /// asked, and the most complete one is returned.
    pub(crate) async fn failover<'s, T, F, Fut>(
        &'s self,
        what: &str,
        access: Access,
        mut op: F,
        missing: impl Fn(&T) -> usize,
    ) -> Result<T, SdkError>
    where
        F: FnMut(&'s str) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let n = self.urls.len();
        if n == 1 {
            // One URL: one attempt and its own error, exactly as before failover existed.
            return op(&self.urls[0]).await.map_err(|f| *f.error);
        }
        let rounds = self.policy.rounds.max(1);
        let mut last: Vec<Option<SdkError>> = (0..n).map(|_| None).collect();
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
                let failure = match op(url).await {
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
                tokio::time::sleep(pause).await;
            }
        }
        Err(SdkError::OperatorsUnavailable {
            what: what.to_owned(),
            rounds,
            attempts: self
                .urls
                .iter()
                .zip(last)
                .map(|(url, e)| OperatorAttempt {
                    url: redact(url),
                    failure: e.as_ref().map_or_else(
                        || SourceFailure::Other("not asked".into()),
                        SourceFailure::from,
                    ),
                })
                .collect(),
        })
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
    }
}
