//! Per-block verdicts (issue 20): what this watcher concluded about every child block it judged,
//! served at `GET /v1/verdicts?from=N&limit=M` so that other watchers and monitors can compare
//! (`--cross-check`, `crate::watcher::crosscheck`).
//!
//! A verdict is a claim others act on, so only what the watcher actually concluded is listed:
//! every child block up to the last one it validated is `valid`; on a byzantine chain the first
//! bad block is `withheld` or `invalid` (with the ledger rule it broke), and nothing after it is
//! listed — a block on top of an unknown state is not judged on its own (WATCH-3), so two honest
//! watchers could only "disagree" there by the accident of which one downloaded it. Deposit
//! blocks are L1's facts, not verdicts, and are not listed either.

// warp hands extracted values to handlers by value.
#![allow(clippy::needless_pass_by_value)]

use crate::watcher::Watcher;
use alloy::primitives::Address;
use plasma_spec::CHILD_BLOCK_INTERVAL;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use warp::{Filter, Rejection, Reply, http::StatusCode, reply::Response};

/// Verdicts per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The most verdicts one page holds (a page stays well under the cross-checker's body cap).
pub const MAX_LIMIT: usize = 1000;
/// The longest reason shown from a peer's verdict: a peer's text lands in our events and logs.
pub const MAX_REASON_CHARS: usize = 300;

/// What a watcher concluded about one child block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum BlockVerdict {
    /// Obtained in full, every transaction valid on top of the validated state.
    Valid,
    /// Not obtainable within the availability timeout of its commitment (WATCH-3).
    Withheld,
    /// Obtained, and it breaks a ledger rule (WATCH-3).
    Invalid {
        /// The broken rule, as the watcher words it.
        reason: String,
    },
}

impl BlockVerdict {
    /// Whether two verdicts agree: same kind. The wording of an invalid block's reason is not
    /// compared — two versions of the watcher may phrase one broken rule differently, and
    /// "invalid" against "invalid" is the same judgement for everyone downstream.
    pub fn agrees_with(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }

    /// The verdict's kind without its words (`valid`, `withheld`, `invalid`): what a
    /// disagreement is deduplicated on, so a peer rewording one lie raises it once.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Withheld => "withheld",
            Self::Invalid { .. } => "invalid",
        }
    }

    /// The verdict with an untrusted reason made safe to log and store: control characters
    /// replaced, at most [`MAX_REASON_CHARS`] characters.
    #[must_use]
    pub fn sanitized(self) -> Self {
        match self {
            Self::Invalid { reason } => Self::Invalid { reason: sanitize(&reason) },
            other => other,
        }
    }
}

impl std::fmt::Display for BlockVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Valid => f.write_str("valid"),
            Self::Withheld => f.write_str("withheld"),
            Self::Invalid { reason } => write!(f, "invalid: {reason}"),
        }
    }
}

/// `text` without control characters (a newline in a peer's reason could forge a log line),
/// cut to [`MAX_REASON_CHARS`].
pub fn sanitize(text: &str) -> String {
    let mut out: String =
        text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_REASON_CHARS).collect();
    if text.chars().count() > MAX_REASON_CHARS {
        out.push('…');
    }
    out
}

/// One judged block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judged {
    /// The child block.
    pub blknum: u64,
    /// What the watcher concluded.
    #[serde(flatten)]
    pub verdict: BlockVerdict,
}

/// `GET /v1/verdicts`: a page of verdicts and where the watcher stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictPage {
    /// The framework the watcher follows: verdicts of another deployment are not comparable.
    pub framework: Address,
    /// L1's chain id.
    pub chain_id: u64,
    /// The highest child block judged (0: none yet).
    pub judged_to: u64,
    /// The first bad block, if the chain is byzantine.
    pub byzantine_from: Option<u64>,
    /// Verdicts of the judged child blocks from `from`, ascending, at most `limit`.
    pub verdicts: Vec<Judged>,
    /// Where the next page starts, if more blocks are judged.
    pub next: Option<u64>,
}

/// The watcher's judgement at one moment, from which any page is cut (pure, see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// The highest child block with a verdict.
    pub judged_to: u64,
    /// The first bad block and its verdict.
    pub bad: Option<(u64, BlockVerdict)>,
}

impl Judgement {
    /// The verdict of child block `blknum`, if the watcher judged it.
    pub fn verdict(&self, blknum: u64) -> Option<BlockVerdict> {
        if blknum == 0 || !blknum.is_multiple_of(CHILD_BLOCK_INTERVAL) || blknum > self.judged_to {
            return None;
        }
        match &self.bad {
            Some((b, v)) if *b == blknum => Some(v.clone()),
            Some((b, _)) if blknum > *b => None,
            _ => Some(BlockVerdict::Valid),
        }
    }

    /// Verdicts of the judged child blocks from `from` on, at most `limit`, and the next page's
    /// start if there is more.
    pub fn page(&self, from: u64, limit: usize) -> (Vec<Judged>, Option<u64>) {
        let mut blknum =
            from.div_ceil(CHILD_BLOCK_INTERVAL).max(1).saturating_mul(CHILD_BLOCK_INTERVAL);
        let mut out = Vec::new();
        while blknum <= self.judged_to && out.len() < limit {
            let Some(verdict) = self.verdict(blknum) else { break };
            out.push(Judged { blknum, verdict });
            blknum = match blknum.checked_add(CHILD_BLOCK_INTERVAL) {
                Some(b) => b,
                None => return (out, None),
            };
        }
        let next = (blknum <= self.judged_to && self.verdict(blknum).is_some()).then_some(blknum);
        (out, next)
    }
}

/// Why a `/v1/verdicts` query was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerdictQueryError {
    /// `from` is not a block number.
    #[error("from={0:?}: expected a block number (a non-negative integer)")]
    BadFrom(String),
    /// `limit` is not between 1 and [`MAX_LIMIT`].
    #[error("limit={0:?}: expected an integer from 1 to {MAX_LIMIT}")]
    BadLimit(String),
    /// A parameter the route does not take.
    #[error("unknown parameter {0:?} (the route takes from and limit)")]
    Unknown(String),
}

impl VerdictQueryError {
    /// The stable code the API reports (as the other paged routes: `BadLimit`).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::BadLimit(_) => "BadLimit",
            Self::BadFrom(_) | Self::Unknown(_) => "MalformedQuery",
        }
    }
}

/// `from` and `limit` out of the raw query string (`from=N&limit=M`, both optional), checked.
/// Parsed by hand: both are integers, so there is nothing to percent-decode (an encoded digit is
/// refused as not a number).
pub fn parse_query(raw: &str) -> Result<(u64, usize), VerdictQueryError> {
    let (mut from, mut limit) = (0, DEFAULT_LIMIT);
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "from" => {
                from = value
                    .parse::<u64>()
                    .map_err(|_| VerdictQueryError::BadFrom(sanitize(value)))?;
            }
            "limit" => {
                limit = match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => return Err(VerdictQueryError::BadLimit(sanitize(value))),
                };
            }
            other => return Err(VerdictQueryError::Unknown(sanitize(other))),
        }
    }
    Ok((from, limit))
}

/// `GET /v1/verdicts?from=N&limit=M`.
pub(crate) fn route(
    watcher: Arc<Watcher>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("v1" / "verdicts")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(move |query: String| match parse_query(&query) {
            Ok((from, limit)) => warp::reply::json(&watcher.verdicts(from, limit)).into_response(),
            Err(e) => warp::reply::with_status(
                warp::reply::json(&json!({"error": {"code": e.code(), "message": e.to_string()}})),
                StatusCode::BAD_REQUEST,
            )
            .into_response(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judgement(judged_to: u64, bad: Option<(u64, BlockVerdict)>) -> Judgement {
        Judgement { judged_to, bad }
    }

    #[test]
    fn a_safe_chain_lists_every_judged_child_block_as_valid_in_pages() {
        let j = judgement(5000, None);
        let (page, next) = j.page(0, 2);
        assert_eq!(page.iter().map(|v| v.blknum).collect::<Vec<_>>(), [1000, 2000]);
        assert!(page.iter().all(|v| v.verdict == BlockVerdict::Valid));
        assert_eq!(next, Some(3000));
        // A deposit block number starts at the next child block.
        let (page, next) = j.page(3001, 10);
        assert_eq!(page.iter().map(|v| v.blknum).collect::<Vec<_>>(), [4000, 5000]);
        assert_eq!(next, None);
        assert_eq!(j.page(6000, 10), (vec![], None));
        assert_eq!(j.page(u64::MAX, 10), (vec![], None), "no overflow at the end of the range");
        assert_eq!(judgement(0, None).page(0, 10), (vec![], None), "nothing judged yet");
        assert_eq!(j.verdict(2001), None, "a deposit is not a verdict");
    }

    #[test]
    fn a_byzantine_chain_lists_the_first_bad_block_and_nothing_after() {
        let bad = BlockVerdict::Invalid { reason: "double spend".into() };
        let j = judgement(3000, Some((3000, bad.clone())));
        let (page, next) = j.page(0, 10);
        assert_eq!(
            page,
            [
                Judged { blknum: 1000, verdict: BlockVerdict::Valid },
                Judged { blknum: 2000, verdict: BlockVerdict::Valid },
                Judged { blknum: 3000, verdict: bad },
            ]
        );
        assert_eq!(next, None);
        assert_eq!(j.verdict(4000), None, "after the bad block: not judged on its own");
    }

    #[test]
    fn verdicts_agree_by_kind_and_serialize_flat() {
        let a = BlockVerdict::Invalid { reason: "x".into() };
        assert!(a.agrees_with(&BlockVerdict::Invalid { reason: "other words".into() }));
        assert!(!a.agrees_with(&BlockVerdict::Withheld));
        assert!(!BlockVerdict::Valid.agrees_with(&BlockVerdict::Withheld));
        assert_eq!(a.kind(), BlockVerdict::Invalid { reason: "y".into() }.kind());
        assert_eq!(
            [BlockVerdict::Valid.kind(), BlockVerdict::Withheld.kind()],
            ["valid", "withheld"]
        );
        let j = Judged { blknum: 2000, verdict: a };
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(text, r#"{"blknum":2000,"verdict":"invalid","reason":"x"}"#);
        assert_eq!(serde_json::from_str::<Judged>(&text).unwrap(), j);
    }

    #[test]
    fn a_peers_reason_cannot_forge_log_lines_or_grow_without_bound() {
        let v = BlockVerdict::Invalid { reason: format!("a\nERROR forged{}", "x".repeat(1000)) };
        let BlockVerdict::Invalid { reason } = v.sanitized() else { unreachable!() };
        assert!(!reason.contains('\n'));
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS + 1);
    }

    #[test]
    fn bad_queries_are_refused_with_what_was_wrong() {
        let q = parse_query;
        assert_eq!(q(""), Ok((0, DEFAULT_LIMIT)));
        assert_eq!(q("from=2000&limit=5"), Ok((2000, 5)));
        assert!(matches!(q("from=-1"), Err(VerdictQueryError::BadFrom(_))));
        assert!(matches!(q("from="), Err(VerdictQueryError::BadFrom(_))));
        assert!(matches!(q("limit=0"), Err(VerdictQueryError::BadLimit(_))));
        assert!(matches!(q("limit=1001"), Err(VerdictQueryError::BadLimit(_))));
        assert!(matches!(q("x=1"), Err(VerdictQueryError::Unknown(_))));
    }
}
