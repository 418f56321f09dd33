//! A typed client of the operator's HTTP API. Every answer is parsed defensively: a malformed one
//! is an error, never a panic, and nothing it says is trusted before `Wallet` checks it against L1.
//!
//! One client may hold several URLs of one chain's operator (an active operator and its
//! standbys): requests fail over between them ([`FailoverPolicy`], `client/failover.rs`).

mod failover;

pub use failover::FailoverPolicy;
pub(crate) use failover::redact;

use crate::error::SdkError;
use alloy::primitives::{Address, B256, Bytes, U256};
use failover::{Access, Failure};
use serde_json::{Value, json};
use std::sync::{Arc, atomic::AtomicUsize};

/// The operator client: one operator URL, or several (failover between them). Clones share which
/// URL is preferred (the one that last took a write: the leader).
#[derive(Clone, Debug)]
pub struct OperatorClient {
    /// The base URLs, in the configured order, without trailing slashes; never empty.
    urls: Arc<[String]>,
    /// The index in `urls` requests start at.
    preferred: Arc<AtomicUsize>,
    policy: FailoverPolicy,
    http: reqwest::Client,
    page_size: usize,
}

/// The most `(blknum, txIndex)` items one `POST /v1/inclusions` may carry.
pub const MAX_INCLUSIONS: usize = 1_000;
/// How long connecting to a source may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long downloading one block may take once its answer started (a full block is megabytes).
const BLOCK_DOWNLOAD: std::time::Duration = std::time::Duration::from_secs(300);
/// The page size the client asks `/v1/utxos` for (the operator's maximum with proofs).
pub const DEFAULT_PAGE_SIZE: usize = 1_000;
/// The most bytes a JSON answer may have: the largest honest one (a page of 1,000 outputs with
/// proofs, or 1,000 inclusions with signed transactions) is a few MB. A source sending more is
/// cut off there instead of being held in memory until the answer timeout (gigabytes over a fast
/// link: a hostile operator could crash the wallet before every exit or in-flight exit check).
pub const MAX_JSON_ANSWER: usize = 32 << 20;
/// The most bytes of a block answered as JSON (operators older than the wire format): a full
/// block is 92.6 MB of hex. A block in the wire format is bounded by its decoder instead.
const MAX_JSON_BLOCK: usize = 128 << 20;

/// An unspent output as the operator lists it (unverified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedUtxo {
    /// Position.
    pub utxo_pos: u128,
    /// Owner.
    pub owner: Address,
    /// Token.
    pub token: Address,
    /// Amount.
    pub amount: U256,
}

/// Exit data as the operator serves it (unverified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitData {
    /// The creating transaction.
    pub tx_bytes: Bytes,
    /// Inclusion proof.
    pub proof: Bytes,
    /// Block root.
    pub root: B256,
    /// Block L1 timestamp.
    pub block_timestamp: u64,
}

/// A block as the operator serves it (unverified): child blocks carry signed transactions
/// (ENC-4), deposit blocks the deposit transaction (ENC-1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockData {
    /// Its root.
    pub root: B256,
    /// The L1 timestamp of its commitment, once committed.
    pub l1_timestamp: Option<u64>,
    /// Its transactions.
    pub txs: Vec<Bytes>,
}

/// One page of `/v1/utxos` (unverified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UtxoPage {
    /// The outputs, in ascending position.
    pub utxos: Vec<ListedUtxo>,
    /// With `proofs=true`, per entry: `Some(Some(..))` the exit data, `Some(None)` its block is
    /// not committed yet; `None` when the page carries no proofs (not asked, or an operator older
    /// than the batch routes).
    pub exit_data: Vec<Option<Option<ExitData>>>,
    /// The cursor of the next page (`after=`), `None` on the last page.
    pub next: Option<u128>,
}

/// What `POST /v1/inclusions` says of one requested transaction (unverified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InclusionItem {
    /// Where and how it is included.
    Found {
        /// The inclusion (its `block_timestamp` is 0 until the block is committed).
        inclusion: Inclusion,
        /// The signed transaction (ENC-4), for child blocks.
        signed_tx: Option<Bytes>,
        /// Whether the block is committed on L1 (`blockTimestamp` not null).
        committed: bool,
    },
    /// The operator's typed error for this item (e.g. `UnknownBlock`).
    Refused {
        /// Its code.
        code: String,
        /// Its message.
        message: String,
    },
}

/// Where the operator says a transaction was included (unverified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// Block.
    pub blknum: u64,
    /// Index in the block.
    pub tx_index: u16,
    /// The transaction (ENC-1).
    pub tx_bytes: Bytes,
    /// Inclusion proof.
    pub proof: Bytes,
    /// Block root.
    pub root: B256,
    /// Block L1 timestamp.
    pub block_timestamp: u64,
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, SdkError> {
    v.get(name).ok_or_else(|| SdkError::BadOperatorResponse(format!("missing `{name}`")))
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, SdkError> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| SdkError::BadOperatorResponse(format!("`{name}` is not a string")))
}

fn parse<T: std::str::FromStr>(v: &Value, name: &str) -> Result<T, SdkError> {
    str_field(v, name)?
        .parse()
        .map_err(|_| SdkError::BadOperatorResponse(format!("`{name}` does not parse")))
}

fn hex_field(v: &Value, name: &str) -> Result<Bytes, SdkError> {
    let s = str_field(v, name)?;
    hex::decode(s.strip_prefix("0x").unwrap_or(s))
        .map(Bytes::from)
        .map_err(|_| SdkError::BadOperatorResponse(format!("`{name}` is not hex")))
}

/// [`checked`], the failure classified for failover: a 5xx moves on to the next URL (with the
/// leader a `NotLeader` names, and the `Retry-After` sent).
fn checked_failover(
    status: reqwest::StatusCode,
    body: Value,
    retry_after: Option<std::time::Duration>,
) -> Result<Value, Failure> {
    let leader = body
        .get("error")
        .filter(|e| e.get("code").and_then(Value::as_str) == Some("NotLeader"))
        .and_then(|e| e.get("leader"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    checked(status, body).map_err(|error| Failure::answered(status, error, leader, retry_after))
}

/// An answer's body, or the operator's typed error.
fn checked(status: reqwest::StatusCode, body: Value) -> Result<Value, SdkError> {
    if let Some(err) = body.get("error") {
        return Err(SdkError::OperatorRefused {
            code: err.get("code").and_then(Value::as_str).unwrap_or("Unknown").to_owned(),
            message: err.get("message").and_then(Value::as_str).unwrap_or_default().to_owned(),
        });
    }
    if !status.is_success() {
        return Err(SdkError::BadOperatorResponse(format!("HTTP {status}")));
    }
    Ok(body)
}

/// The URLs in `list`: comma-separated, trimmed, without trailing slashes, blanks and repeats
/// dropped, in order.
pub(crate) fn split_urls<'a>(list: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut urls: Vec<String> = Vec::new();
    for url in list.into_iter().flat_map(|l| l.split(',')) {
        let url = url.trim().trim_end_matches('/');
        if !url.is_empty() && !urls.iter().any(|u| u == url) {
            urls.push(url.to_owned());
        }
    }
    urls
}

impl OperatorClient {
    /// A client of the operator at `base` (e.g. `http://127.0.0.1:9656`), or at several URLs
    /// separated by commas (`http://a:9656,http://b:9656`: an active operator and its
    /// standbys, tried in that order, see [`FailoverPolicy`]).
    pub fn new(base: impl Into<String>) -> Self {
        Self::with_urls([base.into().as_str()])
    }

    /// A client of the operator at each of `urls` (each may itself be a comma-separated list),
    /// asked in this order; blanks and repeats are dropped.
    pub fn with_urls<'a>(urls: impl IntoIterator<Item = &'a str>) -> Self {
        let mut urls = split_urls(urls);
        if urls.is_empty() {
            // Fails at the first request, as an empty single URL always did.
            urls.push(String::new());
        }
        Self {
            urls: urls.into(),
            preferred: Arc::new(AtomicUsize::new(0)),
            policy: FailoverPolicy::default(),
            http: operator_http(FailoverPolicy::default().connect_timeout),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// The same client failing over by `policy` (with several URLs), within its timeouts and
    /// deadline (with one URL too).
    #[must_use]
    pub fn with_failover(mut self, policy: FailoverPolicy) -> Self {
        if policy.connect_timeout != self.policy.connect_timeout {
            self.http = operator_http(policy.connect_timeout);
        }
        self.policy = policy;
        self
    }

    /// How it fails over.
    pub const fn failover_policy(&self) -> FailoverPolicy {
        self.policy
    }

    /// Every URL, in the configured order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The same client asking for pages of `size` outputs (at least 1).
    #[must_use]
    pub fn with_page_size(mut self, size: usize) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// The page size it asks for.
    pub const fn page_size(&self) -> usize {
        self.page_size
    }

    /// The operator's base URL: the preferred one (the one that last took a write) when there
    /// are several.
    pub fn url(&self) -> &str {
        let i = self.preferred.load(std::sync::atomic::Ordering::Relaxed);
        self.urls.get(i).unwrap_or(&self.urls[0])
    }

    /// Sends `req` (to `url`) and reads its JSON answer, within the policy's answer timeout.
    async fn call(&self, url: &str, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let resp = req
            .timeout(self.policy.answer_timeout)
            .send()
            .await
            .map_err(|e| Failure::unreachable(url, &e))?;
        Self::json_answer(url, resp).await
    }

    /// A response's JSON body, or why there is none (classified for failover).
    async fn json_answer(url: &str, resp: reqwest::Response) -> Result<Value, Failure> {
        Self::json_answer_within(url, resp, MAX_JSON_ANSWER).await
    }

    /// [`OperatorClient::json_answer`] of a body of at most `limit` bytes: a longer one is a bad
    /// answer, read no further.
    async fn json_answer_within(
        url: &str,
        mut resp: reqwest::Response,
        limit: usize,
    ) -> Result<Value, Failure> {
        let status = resp.status();
        let retry_after = failover::retry_after(resp.headers());
        // Cut off, or too slow, while the body came: nothing was answered.
        let bytes = read_bounded(&mut resp, limit)
            .await
            .map_err(|e| Failure::unreachable(url, &e))?
            .ok_or_else(|| {
                SdkError::BadOperatorResponse(format!("an answer longer than {limit} bytes"))
            })?;
        let body: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            // A proxy's or a crashed server's error page: say the status, not the JSON error.
            Err(_) if !status.is_success() => {
                return Err(Failure::answered(
                    status,
                    SdkError::BadOperatorResponse(format!("HTTP {status}")),
                    None,
                    retry_after,
                ));
            }
            Err(e) => return Err(SdkError::BadOperatorResponse(e.to_string()).into()),
        };
        checked_failover(status, body, retry_after)
    }

    /// GETs `path` (from the base URL on) from the URLs in failover order.
    async fn get(&self, path: &str) -> Result<Value, SdkError> {
        let what = format!("GET {}", path.split('?').next().unwrap_or(path));
        self.failover(
            &what,
            Access::Read,
            |base| self.call(base, self.http.get(format!("{base}{path}"))),
            |_| 0,
        )
        .await
    }

    /// Submits a signed transaction (ENC-4 bytes); returns its hash.
    ///
    /// An operator that already has it (pending, or included) refuses it with `AlreadyKnown`:
    /// that is success, and its hash (computed here, from the bytes sent) is returned. So a
    /// submit is safe to send again, to the same URL or another (a lost answer, a leader that
    /// died after accepting it): the operator applies a transaction once, by its hash.
    pub async fn submit(&self, signed_tx: &[u8]) -> Result<B256, SdkError> {
        let ours = plasma_spec::SignedTransaction::decode(signed_tx).ok().map(|s| s.hash());
        let body = json!({"tx": format!("0x{}", hex::encode(signed_tx))});
        let body = &body;
        self.failover(
            "POST /v1/transactions",
            Access::Write,
            |base| {
                let req = self.http.post(format!("{base}/v1/transactions")).json(body);
                async move {
                    match self.call(base, req).await {
                        Ok(v) => Ok(parse(&v, "txHash")?),
                        Err(f) if f.code() == Some("AlreadyKnown") && ours.is_some() => {
                            tracing::info!(target: "sdk::operator",
                                url = %failover::redact(base), tx = ?ours,
                                "the operator already has this transaction: accepted");
                            Ok(ours.unwrap_or_default())
                        }
                        Err(f) => Err(f),
                    }
                }
            },
            |_| 0,
        )
        .await
    }

    /// A transaction's status: `pending`, `included` or `committed` (with block and index).
    pub async fn tx_status(&self, hash: B256) -> Result<(String, Option<u64>), SdkError> {
        let v = self.get(&format!("/v1/transactions/{hash}")).await?;
        Ok((str_field(&v, "status")?.to_owned(), v.get("blknum").and_then(Value::as_u64)))
    }

    /// Where a transaction was included, if the operator says its block is committed.
    pub async fn tx_inclusion(&self, hash: B256) -> Result<Option<Inclusion>, SdkError> {
        let v = self.get(&format!("/v1/transactions/{hash}")).await?;
        if str_field(&v, "status")? != "committed" {
            return Ok(None);
        }
        let num = |name: &str| {
            field(&v, name)?
                .as_u64()
                .ok_or_else(|| SdkError::BadOperatorResponse(format!("`{name}` is not a number")))
        };
        Ok(Some(Inclusion {
            blknum: num("blknum")?,
            tx_index: u16::try_from(num("txIndex")?)
                .map_err(|_| SdkError::BadOperatorResponse("`txIndex` overflows".into()))?,
            tx_bytes: hex_field(&v, "txBytes")?,
            proof: hex_field(&v, "proof")?,
            root: parse(&v, "root")?,
            block_timestamp: num("blockTimestamp")?,
        }))
    }

    /// A block's transactions, fetched in the binary wire format (OP-9, `Accept:
    /// application/vnd.plasma.block`); an operator that answers JSON anyway is read as JSON.
    pub async fn block(&self, blknum: u64) -> Result<BlockData, SdkError> {
        self.failover_within(
            &format!("GET /v1/blocks/{blknum}"),
            Access::Read,
            self.policy.deadline.max(BLOCK_DOWNLOAD),
            |base| self.block_at(base, blknum),
            |_| 0,
        )
        .await
    }

    /// [`OperatorClient::block`] from the operator at `base`.
    async fn block_at(&self, base: &str, blknum: u64) -> Result<BlockData, Failure> {
        // The answer must start within the answer timeout (a frozen operator is left at once);
        // the bytes of a full block then have up to `BLOCK_DOWNLOAD`.
        let send = self
            .http
            .get(format!("{base}/v1/blocks/{blknum}"))
            .header(reqwest::header::ACCEPT, plasma_spec::wire::MEDIA_TYPE)
            .timeout(BLOCK_DOWNLOAD)
            .send();
        let resp = tokio::time::timeout(self.policy.answer_timeout, send)
            .await
            .map_err(|_| Failure::timed_out(base, self.policy.answer_timeout))?
            .map_err(|e| Failure::unreachable(base, &e))?;
        let is_wire = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(plasma_spec::wire::MEDIA_TYPE));
        if !is_wire {
            return Ok(Self::json_block(
                &Self::json_answer_within(base, resp, MAX_JSON_BLOCK).await?,
            )?);
        }
        let status = resp.status();
        if !status.is_success() {
            return Err(Failure::answered(
                status,
                SdkError::BadOperatorResponse(format!("HTTP {status}")),
                None,
                failover::retry_after(resp.headers()),
            ));
        }
        let l1_timestamp = resp
            .headers()
            .get("x-plasma-l1-timestamp")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        // Decoded as it arrives: the decoder refuses a byte past the length its header announces
        // (itself bounded by a full block), so a hostile source cannot make the wallet hold more.
        let bad = |e: plasma_spec::wire::WireError| {
            SdkError::BadOperatorResponse(format!("block {blknum}: {e}"))
        };
        let mut resp = resp;
        let mut decoder = plasma_spec::wire::BlockDecoder::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| Failure::unreachable(base, &e))? {
            decoder.push(&chunk).map_err(bad)?;
        }
        let (header, txs) = decoder.finish().map_err(bad)?;
        if header.blknum != blknum {
            return Err(SdkError::BadOperatorResponse(format!(
                "asked for block {blknum}, got block {}",
                header.blknum
            ))
            .into());
        }
        Ok(BlockData { root: header.root, l1_timestamp, txs })
    }

    fn json_block(v: &Value) -> Result<BlockData, SdkError> {
        let txs = field(v, "txs")?
            .as_array()
            .ok_or_else(|| SdkError::BadOperatorResponse("`txs` is not a list".into()))?
            .iter()
            .map(|t| {
                let s = t
                    .as_str()
                    .ok_or_else(|| SdkError::BadOperatorResponse("a tx is not a string".into()))?;
                hex::decode(s.strip_prefix("0x").unwrap_or(s))
                    .map(Bytes::from)
                    .map_err(|_| SdkError::BadOperatorResponse("a tx is not hex".into()))
            })
            .collect::<Result<_, _>>()?;
        Ok(BlockData {
            root: parse(v, "root")?,
            l1_timestamp: v.get("l1Timestamp").and_then(Value::as_u64),
            txs,
        })
    }

    /// Every unspent output the operator lists for `owner`, following `next` page by page.
    pub async fn utxos(&self, owner: Address) -> Result<Vec<ListedUtxo>, SdkError> {
        self.utxos_after(owner, None).await
    }

    /// Every unspent output listed for `owner` after position `after` (exclusive), page by page.
    pub async fn utxos_after(
        &self,
        owner: Address,
        mut after: Option<u128>,
    ) -> Result<Vec<ListedUtxo>, SdkError> {
        let mut all = Vec::new();
        loop {
            let page = self.utxo_page(owner, after, self.page_size, false).await?;
            all.extend(page.utxos);
            match page.next {
                // A cursor that does not move on would loop for ever: a broken operator.
                Some(n) if after.is_none_or(|a| n > a) => after = Some(n),
                Some(_) => {
                    return Err(SdkError::BadOperatorResponse("`next` does not advance".into()));
                }
                None => return Ok(all),
            }
        }
    }

    /// One page of `/v1/utxos` after position `after` (exclusive), at most `limit` entries, with
    /// each entry's exit data when `proofs`. An operator older than paging (it refuses the query
    /// keys with `MalformedQuery`) is asked the old way: everything, on one page, no proofs.
    pub async fn utxo_page(
        &self,
        owner: Address,
        after: Option<u128>,
        limit: usize,
        proofs: bool,
    ) -> Result<UtxoPage, SdkError> {
        let mut path = format!("/v1/utxos?owner={owner}&limit={limit}");
        if let Some(a) = after {
            path.push_str(&format!("&after={a}"));
        }
        if proofs {
            path.push_str("&proofs=true");
        }
        let path = &path;
        let v = self
            .failover(
                "GET /v1/utxos",
                Access::Read,
                |base| async move {
                    match self.call(base, self.http.get(format!("{base}{path}"))).await {
                        Err(f) if f.code() == Some("MalformedQuery") && after.is_none() => {
                            let old = format!("{base}/v1/utxos?owner={owner}");
                            self.call(base, self.http.get(old)).await
                        }
                        other => other,
                    }
                },
                |_| 0,
            )
            .await?;
        let list = field(&v, "utxos")?
            .as_array()
            .ok_or_else(|| SdkError::BadOperatorResponse("`utxos` is not a list".into()))?;
        let mut utxos = Vec::with_capacity(list.len());
        let mut exit_data = Vec::with_capacity(list.len());
        for u in list {
            let listed = ListedUtxo {
                utxo_pos: parse(u, "utxoPos")?,
                owner: parse(u, "owner")?,
                token: parse(u, "token")?,
                amount: parse(u, "amount")?,
            };
            if utxos.last().is_some_and(|l: &ListedUtxo| l.utxo_pos >= listed.utxo_pos) {
                return Err(SdkError::BadOperatorResponse(
                    "`utxos` is not in ascending position".into(),
                ));
            }
            exit_data.push(match u.get("exitData") {
                None => None,
                Some(Value::Null) => Some(None),
                Some(d) => Some(Some(Self::exit_data_of(d)?)),
            });
            utxos.push(listed);
        }
        let next = match v.get("next") {
            None | Some(Value::Null) => None,
            Some(n) => Some(
                n.as_str()
                    .and_then(|s| s.parse().ok())
                    .or_else(|| n.as_u64().map(u128::from))
                    .ok_or_else(|| SdkError::BadOperatorResponse("`next` does not parse".into()))?,
            ),
        };
        Ok(UtxoPage { utxos, exit_data, next })
    }

    /// Where the operator says each `(blknum, tx_index)` is included, with the signed transaction
    /// of child blocks (`POST /v1/inclusions`, at most [`MAX_INCLUSIONS`] per request: more are
    /// sent as several requests). The answer is in request order.
    pub async fn inclusions(&self, txs: &[(u64, u16)]) -> Result<Vec<InclusionItem>, SdkError> {
        let mut out = Vec::with_capacity(txs.len());
        for chunk in txs.chunks(MAX_INCLUSIONS) {
            let body = json!({"txs": chunk.iter().map(|(b, i)| json!({"blknum": b, "txIndex": i})).collect::<Vec<_>>()});
            let body = &body;
            // A standby behind the leader answers `UnknownBlock` for the newest blocks: the
            // other URLs are asked, and the answer knowing the most items is taken.
            let items = self
                .failover(
                    "POST /v1/inclusions",
                    Access::Read,
                    |base| async move {
                        let req = self.http.post(format!("{base}/v1/inclusions")).json(body);
                        let v = self.call(base, req).await?;
                        Ok(Self::inclusion_list(chunk, &v)?)
                    },
                    |items| {
                        items
                            .iter()
                            .filter(|i| {
                                matches!(i, InclusionItem::Refused { code, .. } if code == "UnknownBlock")
                            })
                            .count()
                    },
                )
                .await?;
            out.extend(items);
        }
        Ok(out)
    }

    /// The items of a `POST /v1/inclusions` answer to `chunk`, in its order.
    fn inclusion_list(chunk: &[(u64, u16)], v: &Value) -> Result<Vec<InclusionItem>, SdkError> {
        let list = field(v, "inclusions")?
            .as_array()
            .ok_or_else(|| SdkError::BadOperatorResponse("`inclusions` is not a list".into()))?;
        if list.len() != chunk.len() {
            return Err(SdkError::BadOperatorResponse(format!(
                "asked for {} inclusions, got {}",
                chunk.len(),
                list.len()
            )));
        }
        chunk
            .iter()
            .zip(list)
            .map(|((blknum, tx_index), item)| Self::inclusion_item(*blknum, *tx_index, item))
            .collect()
    }

    fn inclusion_item(blknum: u64, tx_index: u16, v: &Value) -> Result<InclusionItem, SdkError> {
        if v.get("blknum").and_then(Value::as_u64) != Some(blknum)
            || v.get("txIndex").and_then(Value::as_u64) != Some(u64::from(tx_index))
        {
            return Err(SdkError::BadOperatorResponse(format!(
                "inclusion answer out of order (expected {blknum}/{tx_index})"
            )));
        }
        if let Some(err) = v.get("error") {
            return Ok(InclusionItem::Refused {
                code: err.get("code").and_then(Value::as_str).unwrap_or("Unknown").to_owned(),
                message: err.get("message").and_then(Value::as_str).unwrap_or_default().to_owned(),
            });
        }
        let ts = field(v, "blockTimestamp")?;
        let signed_tx = match v.get("signedTx") {
            None | Some(Value::Null) => None,
            Some(_) => Some(hex_field(v, "signedTx")?),
        };
        Ok(InclusionItem::Found {
            inclusion: Inclusion {
                blknum,
                tx_index,
                tx_bytes: hex_field(v, "txBytes")?,
                proof: hex_field(v, "proof")?,
                root: parse(v, "root")?,
                block_timestamp: ts.as_u64().unwrap_or_default(),
            },
            signed_tx,
            committed: match ts {
                Value::Null => false,
                t => {
                    t.as_u64().ok_or_else(|| {
                        SdkError::BadOperatorResponse("`blockTimestamp` is not a number".into())
                    })?;
                    true
                }
            },
        })
    }

    fn exit_data_of(v: &Value) -> Result<ExitData, SdkError> {
        Ok(ExitData {
            tx_bytes: hex_field(v, "txBytes")?,
            proof: hex_field(v, "inclusionProof")?,
            root: parse(v, "root")?,
            block_timestamp: field(v, "blockTimestamp")?.as_u64().ok_or_else(|| {
                SdkError::BadOperatorResponse("`blockTimestamp` is not a number".into())
            })?,
        })
    }

    /// The exit data of an output.
    pub async fn exit_data(&self, utxo_pos: u128) -> Result<ExitData, SdkError> {
        let v = self.get(&format!("/v1/utxos/{utxo_pos}/exit-data")).await?;
        Self::exit_data_of(&v)
    }
}

/// The body of `resp`, read chunk by chunk; `None` once it passes `limit` bytes (announced or
/// sent), read no further.
pub(crate) async fn read_bounded(
    resp: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The operator client's HTTP client: connecting bounded by `connect` (a host that does not
/// complete the handshake fails in seconds, not at the request timeout: a wallet with towers
/// then asks the next source, DA-12). TLS as for L1 (Mozilla's roots + PLASMA_CA_FILE): an https
/// operator or tower. Redirects are never followed: only the configured URLs are ever asked (a
/// standby or a proxy must not steer a wallet's payments elsewhere).
fn operator_http(connect: std::time::Duration) -> reqwest::Client {
    plasma_contracts::l1::client_builder()
        .connect_timeout(connect)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// A client for one-off calls to watchers: the same TLS as every other client (rustls, Mozilla's
/// roots and `PLASMA_CA_FILE`), never reqwest's default, which needs the system's CA store.
pub(crate) fn http_client() -> reqwest::Client {
    plasma_contracts::l1::client_builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .unwrap_or_default()
}
