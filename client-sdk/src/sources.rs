//! Where a wallet reads (spec: DA-12): the operator first, then each configured tower in order.
//!
//! Towers serve the operator's read routes with the same shapes from their validated history
//! (DA-11), so each source is an [`OperatorClient`]. Nothing a source says is trusted: every proof
//! is checked against L1 by the caller, and data that fails the check sends the read to the next
//! source, never into the store. Submissions never come through here: they go to the operator only.

use crate::{
    client::{ListedUtxo, OperatorClient},
    error::SdkError,
};
use alloy::primitives::Address;
use std::collections::BTreeMap;

/// Which source served (or failed) a read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SourceId {
    /// The operator.
    Operator {
        /// Its base URL.
        url: String,
    },
    /// A tower (a watcher keeping chunks, DA-6), by its place in the wallet's tower list.
    Tower {
        /// Its place in the wallet's list, from 0 (not its DA chunk index).
        index: usize,
        /// Its base URL.
        url: String,
    },
}

impl SourceId {
    /// Its base URL.
    pub fn url(&self) -> &str {
        match self {
            Self::Operator { url } | Self::Tower { url, .. } => url,
        }
    }

    /// Whether it is the operator.
    pub const fn is_operator(&self) -> bool {
        matches!(self, Self::Operator { .. })
    }
}

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Operator { url } => write!(f, "operator {url}"),
            Self::Tower { index, url } => write!(f, "tower {index} {url}"),
        }
    }
}

/// Why one source could not serve a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceFailure {
    /// Not reachable (connection refused, timed out, cut off).
    Unreachable(String),
    /// A typed refusal (`BlockWithheld`, `BlockUnknown`, `StorageFailure`, …).
    Refused {
        /// Its error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// A malformed answer (an HTTP error without a typed body, bad JSON, a broken cursor).
    Malformed(String),
    /// Data that does not verify against L1: the source lies or is broken.
    Mismatch(String),
    /// Anything else (an L1 read failing while checking it, …).
    Other(String),
}

impl From<&SdkError> for SourceFailure {
    fn from(e: &SdkError) -> Self {
        match e {
            SdkError::OperatorUnreachable { reason, .. } => Self::Unreachable(reason.clone()),
            // Every operator URL down or refusing: the operator, as one source, is unreachable.
            e @ (SdkError::OperatorsUnavailable { .. } | SdkError::OperatorDeadline { .. }) => {
                Self::Unreachable(e.to_string())
            }
            SdkError::OperatorRefused { code, message } => {
                Self::Refused { code: code.clone(), message: message.clone() }
            }
            SdkError::BadOperatorResponse(m) => Self::Malformed(m.clone()),
            SdkError::ProofMismatch { utxo_pos, reason } => {
                Self::Mismatch(format!("output {utxo_pos}: {reason}"))
            }
            other => Self::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(r) => write!(f, "unreachable: {r}"),
            Self::Refused { code, message } => write!(f, "refused: {code}: {message}"),
            Self::Malformed(m) => write!(f, "malformed answer: {m}"),
            Self::Mismatch(m) => write!(f, "does not match L1: {m}"),
            Self::Other(m) => f.write_str(m),
        }
    }
}

/// One source's failure to serve a read (see [`SdkError::AllSourcesFailed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceAttempt {
    /// The source.
    pub source: SourceId,
    /// What went wrong.
    pub failure: SourceFailure,
}

impl std::fmt::Display for SourceAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.failure)
    }
}

/// Every tower's listing of an owner (the operator having failed), as [`Sources::tower_listings`]
/// read them.
///
/// A listing proves what it lists (each output is then verified against L1), never what it
/// leaves out: a tower may omit an output, lag behind, or lie about how far it validated, and
/// none of that is verifiable. So what no tower lists is reported, never taken as spent
/// (DA-11: a tower is trusted for nothing).
#[derive(Debug, Default)]
pub(crate) struct TowerListings {
    /// Per tower (source index, ascending): its listing or why it failed.
    pub(crate) each: Vec<(usize, Result<Vec<ListedUtxo>, SdkError>)>,
}

impl TowerListings {
    /// Whether any tower listed.
    pub(crate) fn any_answered(&self) -> bool {
        self.each.iter().any(|(_, l)| l.is_ok())
    }

    /// What any tower lists, by position, ascending (a source can leave outputs out undetected:
    /// one that lists an output is enough to find it); an entry as the first tower listed it.
    pub(crate) fn union(&self) -> Vec<ListedUtxo> {
        let mut all = BTreeMap::new();
        for (_, listed) in &self.each {
            for l in listed.iter().flatten() {
                all.entry(l.utxo_pos).or_insert_with(|| l.clone());
            }
        }
        all.into_values().collect()
    }

    /// The towers that listed, for the logs and reports.
    pub(crate) fn who(&self, sources: &Sources) -> String {
        self.each
            .iter()
            .filter(|(_, l)| l.is_ok())
            .map(|(i, _)| sources.id(*i).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The towers' failures.
    pub(crate) fn into_errors(self) -> Vec<(usize, SdkError)> {
        self.each.into_iter().filter_map(|(i, l)| l.err().map(|e| (i, e))).collect()
    }
}

/// The wallet's sources in reading order: index 0 is the operator, then the towers.
#[derive(Clone, Debug)]
pub(crate) struct Sources {
    list: Vec<(SourceId, OperatorClient)>,
}

impl Sources {
    /// The operator alone. With several operator URLs it is still one source (its client fails
    /// over between them), named by all of them.
    pub(crate) fn new(operator: OperatorClient) -> Self {
        let url = operator.urls().join(",");
        Self { list: vec![(SourceId::Operator { url }, operator)] }
    }

    /// The operator's client failing over by `policy`.
    #[must_use]
    pub(crate) fn with_operator_failover(mut self, policy: crate::FailoverPolicy) -> Self {
        self.list[0].1 = self.list[0].1.clone().with_failover(policy);
        self
    }

    /// The operator, then `towers` in order (base URLs; trailing slashes and blanks dropped),
    /// each asking for pages of the operator client's size.
    #[must_use]
    pub(crate) fn with_towers(mut self, towers: impl IntoIterator<Item = String>) -> Self {
        let page = self.list[0].1.page_size();
        self.list.truncate(1);
        for url in towers {
            let url = url.trim().trim_end_matches('/');
            if url.is_empty() {
                continue;
            }
            let index = self.list.len() - 1;
            self.list.push((
                SourceId::Tower { index, url: url.to_owned() },
                OperatorClient::new(url).with_page_size(page),
            ));
        }
        self
    }

    /// Every client asking for pages of `size` outputs.
    #[must_use]
    pub(crate) fn with_page_size(mut self, size: usize) -> Self {
        for (_, c) in &mut self.list {
            *c = c.clone().with_page_size(size);
        }
        self
    }

    /// The towers' URLs, in order.
    pub(crate) fn tower_urls(&self) -> Vec<String> {
        self.list.iter().skip(1).map(|(id, _)| id.url().to_owned()).collect()
    }

    /// How many sources there are (the operator included).
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Source `i`.
    pub(crate) fn id(&self, i: usize) -> &SourceId {
        &self.list[i].0
    }

    /// Source `i`'s client.
    pub(crate) fn client(&self, i: usize) -> &OperatorClient {
        &self.list[i].1
    }

    /// The sources in reading order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &SourceId, &OperatorClient)> {
        self.list.iter().enumerate().map(|(i, (id, c))| (i, id, c))
    }

    /// Logs that source `i` failed to serve `what` (the read then moves on to the next source,
    /// if any).
    pub(crate) fn note_failure(&self, i: usize, what: &str, error: &SdkError) -> SourceAttempt {
        let attempt = SourceAttempt { source: self.id(i).clone(), failure: error.into() };
        tracing::warn!(source = %attempt.source, what, failure = %attempt.failure,
            more_sources = i + 1 < self.len(), "source failed");
        attempt
    }

    /// Logs which source served `what`: the operator at `debug`, a tower (a fallback) at `info`.
    pub(crate) fn note_served(&self, i: usize, what: &str) {
        if i == 0 {
            tracing::debug!(source = %self.id(i), what, "served");
        } else {
            tracing::info!(source = %self.id(i), what, "served by a tower");
        }
    }

    /// The error of a read that no source served: with one source (no towers) its own error,
    /// unchanged; otherwise [`SdkError::AllSourcesFailed`] naming each.
    pub(crate) fn failed(
        &self,
        what: impl Into<String>,
        mut errors: Vec<(usize, SdkError)>,
    ) -> SdkError {
        if self.len() == 1
            && errors.len() == 1
            && let Some((_, e)) = errors.pop()
        {
            return e;
        }
        SdkError::AllSourcesFailed {
            what: what.into(),
            attempts: errors
                .iter()
                .map(|(i, e)| SourceAttempt { source: self.id(*i).clone(), failure: e.into() })
                .collect(),
        }
    }

    /// Every tower's listing of `owner` after position `after` (exclusive), all at once (the
    /// operator failed).
    pub(crate) async fn tower_listings(
        &self,
        owner: Address,
        after: Option<u128>,
    ) -> TowerListings {
        let mut set = tokio::task::JoinSet::new();
        for i in 1..self.len() {
            let sources = self.clone();
            set.spawn(async move { (i, sources.client(i).utxos_after(owner, after).await) });
        }
        let mut read: Vec<Option<Result<Vec<ListedUtxo>, SdkError>>> =
            (0..self.len()).map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, listed)) => read[i] = Some(listed),
                Err(e) => tracing::warn!(error = %e, "a tower listing task failed"),
            }
        }
        // One entry per tower, in order, whatever happened to its task.
        let each: Vec<_> = read
            .into_iter()
            .enumerate()
            .skip(1)
            .map(|(i, r)| {
                (i, r.unwrap_or_else(|| Err(SdkError::Store("the listing task failed".into()))))
            })
            .collect();
        for (i, listed) in &each {
            let what = format!("the listing of {owner}");
            match listed {
                Ok(list) => self.note_served(*i, &format!("{what} ({} outputs)", list.len())),
                Err(e) => {
                    self.note_failure(*i, &what, e);
                }
            }
        }
        TowerListings { each }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources() -> Sources {
        Sources::new(OperatorClient::new("http://op:1/")).with_towers(vec![
            "http://t0:2/".into(),
            " ".into(),
            "http://t1:3".into(),
        ])
    }

    fn listed(pos: u128) -> ListedUtxo {
        ListedUtxo {
            utxo_pos: pos,
            owner: Address::ZERO,
            token: Address::ZERO,
            amount: alloy::primitives::U256::from(pos),
        }
    }

    #[test]
    fn towers_are_ordered_trimmed_and_named() {
        let s = sources();
        assert_eq!(s.len(), 3);
        assert_eq!(s.tower_urls(), ["http://t0:2", "http://t1:3"]);
        assert_eq!(s.id(0), &SourceId::Operator { url: "http://op:1".into() });
        assert_eq!(s.id(2), &SourceId::Tower { index: 1, url: "http://t1:3".into() });
        assert_eq!(s.id(2).to_string(), "tower 1 http://t1:3");
        // Setting the towers again replaces them.
        assert_eq!(s.with_towers(Vec::new()).len(), 1);
    }

    #[test]
    fn without_towers_the_operators_own_error_comes_back_unchanged() {
        let alone = Sources::new(OperatorClient::new("http://op:1"));
        let e = alone.failed(
            "x",
            vec![(
                0,
                SdkError::OperatorRefused { code: "BlockWithheld".into(), message: "".into() },
            )],
        );
        assert!(matches!(e, SdkError::OperatorRefused { code, .. } if code == "BlockWithheld"));
    }

    #[test]
    fn with_towers_every_failure_is_named() {
        let s = sources();
        let e = s.failed(
            "the proof of output 7",
            vec![
                (
                    0,
                    SdkError::OperatorRefused { code: "BlockWithheld".into(), message: "m".into() },
                ),
                (
                    1,
                    SdkError::OperatorUnreachable {
                        url: "http://t0:2".into(),
                        reason: "refused".into(),
                    },
                ),
                (2, SdkError::ProofMismatch { utxo_pos: "7".into(), reason: "bad proof".into() }),
            ],
        );
        let text = e.to_string();
        assert!(text.contains("the proof of output 7"), "{text}");
        assert!(text.contains("operator http://op:1: refused: BlockWithheld: m"), "{text}");
        assert!(text.contains("tower 0 http://t0:2: unreachable: refused"), "{text}");
        assert!(
            text.contains("tower 1 http://t1:3: does not match L1: output 7: bad proof"),
            "{text}"
        );
        let SdkError::AllSourcesFailed { attempts, .. } = e else { panic!("{text}") };
        assert_eq!(attempts.len(), 3);
        assert!(matches!(attempts[2].failure, SourceFailure::Mismatch(_)));
    }

    #[test]
    fn tower_listings_take_the_union_and_name_who_listed() {
        let towers = TowerListings {
            each: vec![
                (1, Ok(vec![listed(3), listed(1)])),
                (2, Err(SdkError::BadOperatorResponse("HTTP 503".into()))),
                (3, Ok(vec![listed(2), listed(3)])),
            ],
        };
        assert!(towers.any_answered());
        assert_eq!(towers.union().iter().map(|l| l.utxo_pos).collect::<Vec<_>>(), [1, 2, 3]);
        // The failing tower is not among those that listed.
        let three = Sources::new(OperatorClient::new("http://op:1")).with_towers(vec![
            "http://a:1".into(),
            "http://b:2".into(),
            "http://c:3".into(),
        ]);
        assert_eq!(towers.who(&three), "tower 0 http://a:1, tower 2 http://c:3");
        assert_eq!(towers.into_errors().len(), 1);
        assert!(!TowerListings::default().any_answered());
    }
}
