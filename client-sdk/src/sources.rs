//! Where a wallet reads (spec: DA-12): the operator first, then each configured tower in order.
//!
//! Towers serve the operator's read routes with the same shapes from their validated history
//! (DA-11), so each source is an [`OperatorClient`]. Nothing a source says is trusted: every proof
//! is checked against L1 by the caller, and data that fails the check sends the read to the next
//! source, never into the store. Submissions never come through here: they go to the operator only.

use crate::{
    client::{OperatorClient, UtxoPage},
    error::SdkError,
};
use alloy::primitives::Address;
use std::{collections::HashMap, time::Duration};

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

/// The wallet's sources in reading order: index 0 is the operator, then the towers.
#[derive(Clone, Debug)]
pub(crate) struct Sources {
    list: Vec<(SourceId, OperatorClient)>,
}

/// How long a tower's `/status` may take (read once per listing it serves).
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

impl Sources {
    /// The operator alone.
    pub(crate) fn new(operator: OperatorClient) -> Self {
        Self { list: vec![(SourceId::Operator { url: operator.url().to_owned() }, operator)] }
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

    /// Records that source `i` failed to serve `what` and that the read moves on.
    pub(crate) fn note_failure(&self, i: usize, what: &str, error: &SdkError) -> SourceAttempt {
        let attempt = SourceAttempt { source: self.id(i).clone(), failure: error.into() };
        if i + 1 < self.len() {
            tracing::warn!(source = %attempt.source, what, failure = %attempt.failure,
                "source failed: asking the next one");
        } else {
            tracing::warn!(source = %attempt.source, what, failure = %attempt.failure,
                "source failed, and it was the last one");
        }
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

    /// One page of `owner`'s listing from the first source that answers, with the source's
    /// index. Before a tower's first page, reads how far it validated into `bounds` (see
    /// [`Sources::synced_block`]): an output it does not list is only known gone up to there.
    pub(crate) async fn utxo_page(
        &self,
        owner: Address,
        after: Option<u128>,
        bounds: &mut HashMap<usize, u64>,
    ) -> Result<(UtxoPage, usize), SdkError> {
        let what = format!("the listing of {owner} after {after:?}");
        let mut errors = Vec::new();
        for (i, _, client) in self.iter() {
            if i > 0 && !bounds.contains_key(&i) {
                bounds.insert(i, self.synced_block(i).await.unwrap_or(0));
            }
            match client.utxo_page(owner, after, client.page_size(), false).await {
                Ok(page) => {
                    self.note_served(i, &what);
                    return Ok((page, i));
                }
                Err(e) => {
                    self.note_failure(i, &what, &e);
                    errors.push((i, e));
                }
            }
        }
        Err(self.failed(what, errors))
    }

    /// The last block tower `i` validated (its `/status` `syncedBlock`), `None` if it does not
    /// say. A tower lists outputs from its validated history (DA-11), so one it does not list is
    /// known spent (or exiting) only in blocks up to this one.
    pub(crate) async fn synced_block(&self, i: usize) -> Option<u64> {
        let url = format!("{}/status", self.id(i).url());
        let answer = reqwest::Client::new().get(&url).timeout(STATUS_TIMEOUT).send().await;
        let v: serde_json::Value = match answer {
            Ok(r) => r.json().await.ok()?,
            Err(e) => {
                tracing::debug!(%url, error = %e, "tower status unreadable");
                return None;
            }
        };
        v["status"]["syncedBlock"].as_u64()
    }
}
