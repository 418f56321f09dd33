//! How the read routes of OP-6 are asked (spec: OP-6, DA-11): the `/v1/utxos` page query and the
//! single byte range of a block download. The operator and the towers answer the same routes with
//! the same limits and the same refusals, so both parse them here: a wallet or a watcher that
//! falls back from one to the other (DA-12) must not meet a second dialect.

use crate::UtxoPos;
use alloy_primitives::Address;

/// `/v1/utxos` page size when the query names none.
pub const UTXO_PAGE_DEFAULT: usize = 1_000;
/// The largest `/v1/utxos` page without proofs.
pub const UTXO_PAGE_MAX: usize = 10_000;
/// The largest `/v1/utxos` page with proofs (each carries a 512-byte proof and its transaction).
pub const UTXO_PAGE_MAX_PROOFS: usize = 1_000;

/// `GET /v1/utxos?owner=…&limit=…&after=…&proofs=…`, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtxoQuery {
    /// Whose outputs.
    pub owner: Address,
    /// At most this many, in ascending position.
    pub limit: usize,
    /// Exclusive cursor: the previous page's `next`.
    pub after: Option<UtxoPos>,
    /// Whether each output carries its exit data.
    pub proofs: bool,
}

/// Why a `/v1/utxos` query is refused (HTTP 400, with [`QueryError::code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Not `key=value` pairs of the four known keys, each at most once.
    #[error("{0}")]
    Malformed(String),
    /// `owner` is not an address.
    #[error("owner is not an address")]
    MalformedAddress,
    /// `limit` is not 1 to the page's largest.
    #[error("limit is 1 to {max}{}", if *.proofs { " with proofs" } else { "" })]
    BadLimit {
        /// The largest page for this query.
        max: usize,
        /// Whether proofs were asked for (they lower the largest page).
        proofs: bool,
    },
    /// `after` is not a decimal UTXO position.
    #[error("after is a decimal UTXO position (the previous page's next)")]
    MalformedPosition,
}

impl QueryError {
    /// The JSON error code of the refusal.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "MalformedQuery",
            Self::MalformedAddress => "MalformedAddress",
            Self::BadLimit { .. } => "BadLimit",
            Self::MalformedPosition => "MalformedPosition",
        }
    }
}

impl UtxoQuery {
    /// Parses the raw query string (without the `?`).
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        let malformed = |m: String| QueryError::Malformed(m);
        let (mut owner, mut limit, mut after, mut proofs) = (None, None, None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(malformed("expected key=value pairs".into()));
            };
            let slot = match k {
                "owner" => &mut owner,
                "limit" => &mut limit,
                "after" => &mut after,
                "proofs" => &mut proofs,
                _ => {
                    return Err(malformed(format!(
                        "unknown key {k:?}: expected owner, limit, after, proofs"
                    )));
                }
            };
            if slot.replace(v).is_some() {
                return Err(malformed(format!("{k} given twice")));
            }
        }
        let Some(owner) = owner else {
            return Err(malformed("expected ?owner=0x<address>".into()));
        };
        let owner = owner.parse::<Address>().map_err(|_| QueryError::MalformedAddress)?;
        let proofs = match proofs {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(malformed("proofs is true or false".into())),
        };
        let max = if proofs { UTXO_PAGE_MAX_PROOFS } else { UTXO_PAGE_MAX };
        let limit = match limit {
            None => UTXO_PAGE_DEFAULT.min(max),
            Some(l) => match l.parse::<usize>() {
                Ok(l) if (1..=max).contains(&l) => l,
                _ => return Err(QueryError::BadLimit { max, proofs }),
            },
        };
        let after = match after {
            None => None,
            Some(a) => Some(
                a.parse::<u128>()
                    .ok()
                    .and_then(|p| UtxoPos::from_u128(p).ok())
                    .ok_or(QueryError::MalformedPosition)?,
            ),
        };
        Ok(Self { owner, limit, after, proofs })
    }
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeAsk {
    /// The whole body (no `Range` header).
    Whole,
    /// Bytes `start..end` (end exclusive).
    Part(u64, u64),
    /// Nothing this body can give (416).
    Unsatisfiable,
}

/// Parses one `bytes=a-b`, `bytes=a-` or `bytes=-n` range. Anything else (other units, lists of
/// ranges, garbage) is unsatisfiable: a client resuming a block download asks one range (WATCH-3).
pub fn parse_range(header: Option<&str>, len: u64) -> RangeAsk {
    let Some(h) = header else { return RangeAsk::Whole };
    let Some((a, b)) = h.trim().strip_prefix("bytes=").and_then(|r| r.split_once('-')) else {
        return RangeAsk::Unsatisfiable;
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => match num(b) {
            Some(n) if n > 0 => RangeAsk::Part(len.saturating_sub(n), len),
            _ => RangeAsk::Unsatisfiable,
        },
        (false, true) => match num(a) {
            Some(a) if a < len => RangeAsk::Part(a, len),
            _ => RangeAsk::Unsatisfiable,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b && a < len => RangeAsk::Part(a, b.min(len - 1) + 1),
            _ => RangeAsk::Unsatisfiable,
        },
        (true, true) => RangeAsk::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=3-"), 10), RangeAsk::Part(3, 10));
        assert_eq!(parse_range(Some("bytes=3-4"), 10), RangeAsk::Part(3, 5));
        assert_eq!(parse_range(Some("bytes=3-99"), 10), RangeAsk::Part(3, 10));
        assert_eq!(parse_range(Some("bytes=-4"), 10), RangeAsk::Part(6, 10));
        assert_eq!(parse_range(Some("bytes=-40"), 10), RangeAsk::Part(0, 10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-4"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=1-2,4-5"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("items=1-2"), 10), RangeAsk::Unsatisfiable);
    }

    #[test]
    fn utxo_queries() {
        let owner = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
        let q = UtxoQuery::parse(&format!("owner={owner}")).unwrap();
        assert_eq!((q.limit, q.after, q.proofs), (UTXO_PAGE_DEFAULT, None, false));
        let q = UtxoQuery::parse(&format!("owner={owner}&proofs=true&limit=7&after=1000000000"))
            .unwrap();
        assert_eq!((q.limit, q.proofs), (7, true));
        assert_eq!(q.after.map(|p| p.to_u128()), Some(1_000_000_000));
        let code = |q: &str| UtxoQuery::parse(q).unwrap_err().code();
        assert_eq!(code(""), "MalformedQuery");
        assert_eq!(code("owner"), "MalformedQuery");
        assert_eq!(code(&format!("owner={owner}&owner={owner}")), "MalformedQuery");
        assert_eq!(code(&format!("owner={owner}&colour=red")), "MalformedQuery");
        assert_eq!(code(&format!("owner={owner}&proofs=yes")), "MalformedQuery");
        assert_eq!(code("owner=0x12"), "MalformedAddress");
        assert_eq!(code(&format!("owner={owner}&limit=0")), "BadLimit");
        assert_eq!(code(&format!("owner={owner}&limit=1001&proofs=true")), "BadLimit");
        assert_eq!(code(&format!("owner={owner}&after=x")), "MalformedPosition");
        assert_eq!(
            UtxoQuery::parse(&format!("owner={owner}&limit=1001&proofs=true"))
                .unwrap_err()
                .to_string(),
            "limit is 1 to 1000 with proofs"
        );
    }
}
