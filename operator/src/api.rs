//! The HTTP API (OP-6): JSON under `/v1`, plus `/health`, `/metrics` and `/openapi.json`.
//! Errors are `{"error": {"code": "...", "message": "..."}}` with a stable code.

// warp hands extracted values to handlers by value; borrowing is not an option there.
#![allow(clippy::needless_pass_by_value)]

use crate::{
    blocks::BlockInfo,
    chain::{Chain, SubmitError, TxStatus},
    ingest::{BATCH_MEDIA_TYPE, FrameError, decode_batch},
    l1::L1Health,
    leader::HaView,
    store::{Inclusion, Lookup, Store, StoreError},
};
use alloy::primitives::{Address, B256};
use parking_lot::Mutex;
use plasma_spec::{
    LedgerError, Output, SignedTransaction, SigningDomain, UtxoPos,
    pages::{RangeAsk, UtxoQuery, parse_range},
    routes::Refusal,
    wire,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::{
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant},
};
use warp::{Filter, Rejection, Reply, http::StatusCode, reply::Response};

/// A single submission waiting for the group committer: its bytes, when it arrived, and where
/// to send its result.
pub(crate) type Submission =
    (Vec<u8>, Instant, tokio::sync::oneshot::Sender<Result<B256, SubmitError>>);

/// Groups of single submissions in `Chain::submit` at once: while one group's write waits on
/// fsync (no lock held), the next one recovers its signatures.
const GROUPS_IN_FLIGHT: usize = 2;

/// Group commit: single-transaction requests that arrive together are validated and made durable
/// in one `Chain::submit` call (one signature-recovery fan-out, one fsync), so throughput does not
/// stop at one disk flush per request. Up to [`GROUPS_IN_FLIGHT`] groups run at once; a request
/// waits at most for the groups in progress.
pub(crate) async fn run_group_committer(
    chain: Arc<Chain>,
    mut rx: tokio::sync::mpsc::Receiver<Submission>,
) {
    const MAX_GROUP: usize = 4_096;
    let slots = Arc::new(tokio::sync::Semaphore::new(GROUPS_IN_FLIGHT));
    loop {
        // A slot first, then the group: what arrives while the slots are busy joins one group.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Some(first) = rx.recv().await else { return };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(s) => group.push(s),
                Err(_) => break,
            }
        }
        let mut raw = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        let mut waited = Duration::ZERO;
        for (bytes, arrived, reply) in group {
            raw.push(bytes);
            waited += arrived.elapsed();
            replies.push(reply);
        }
        chain.ingest_stats().queue_wait(raw.len(), waited);
        let chain = chain.clone();
        tokio::spawn(async move {
            // A panic in validation drops the replies: their requests get an error.
            let results = tokio::task::spawn_blocking(move || chain.submit(&raw)).await;
            drop(slot);
            if let Ok(results) = results {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
        });
    }
}

/// What the API shares whatever the process's role: limits, counters (kept across role
/// changes), the devnet faults and the election's view.
#[derive(Clone, Debug)]
pub(crate) struct Common {
    /// Largest request body.
    pub(crate) max_body_bytes: u64,
    /// Most transactions per batch.
    pub(crate) max_batch: usize,
    /// Counters for `/metrics`.
    pub(crate) metrics: Arc<Metrics>,
    /// Devnet fault: blocks never served (`[faults] withhold`).
    pub(crate) withheld: Arc<std::collections::HashSet<u64>>,
    /// The election, with a PostgreSQL store (OP-HA-1); `None` for redb (always the leader).
    pub(crate) ha: Option<Arc<HaView>>,
    /// Where the state lives, as it may be shown (no password).
    pub(crate) store: String,
    /// `redb` or `postgres`.
    pub(crate) backend: &'static str,
}

impl Common {
    /// From the configuration.
    pub(crate) fn new(
        config: &crate::Config,
        ha: Option<Arc<HaView>>,
        store: String,
        backend: &'static str,
    ) -> Self {
        Self {
            max_body_bytes: config.api.max_body_bytes,
            max_batch: config.api.max_batch,
            metrics: Arc::default(),
            withheld: Arc::new(config.faults.withhold.iter().copied().collect()),
            ha,
            store,
            backend,
        }
    }
}

/// What a leader's handlers have besides [`Common`].
#[derive(Debug)]
pub(crate) struct Leader {
    /// Single submissions go through the group committer.
    pub(crate) submissions: tokio::sync::mpsc::Sender<Submission>,
    /// The chain.
    pub(crate) chain: Arc<Chain>,
    /// L1 health figures.
    pub(crate) l1: Arc<Mutex<L1Health>>,
    /// The availability distributor, when `[da]` is configured.
    pub(crate) da: Option<Arc<crate::da::Distributor>>,
}

/// What the process serves now (OP-HA-4).
#[derive(Debug)]
pub(crate) enum Serving {
    /// Everything: the leader (or a redb operator).
    Leader(Leader),
    /// Reads from the store; writes refused with `NotLeader`. A standby, or a leader that lost
    /// its lease and is on its way out.
    Standby {
        /// The shared store (its writes are fenced off: OP-HA-2).
        store: Arc<Store>,
    },
}

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct ApiContext {
    /// Role-independent parts.
    pub(crate) common: Common,
    /// The role's parts.
    pub(crate) serving: Serving,
}

impl ApiContext {
    /// A leader's context.
    pub(crate) fn leader(
        common: Common,
        chain: Arc<Chain>,
        submissions: tokio::sync::mpsc::Sender<Submission>,
        l1: Arc<Mutex<L1Health>>,
        da: Option<Arc<crate::da::Distributor>>,
    ) -> Self {
        Self { common, serving: Serving::Leader(Leader { submissions, chain, l1, da }) }
    }

    /// A standby's context: reads from `store`.
    pub(crate) fn standby(common: Common, store: Arc<Store>) -> Self {
        Self { common, serving: Serving::Standby { store } }
    }

    /// The leader's parts, if this process leads.
    pub(crate) fn leading(&self) -> Option<&Leader> {
        match &self.serving {
            Serving::Leader(l) => Some(l),
            Serving::Standby { .. } => None,
        }
    }

    /// Where reads go: the chain (which reads its store) or, on a standby, the store.
    pub(crate) fn reads(&self) -> Reader {
        match &self.serving {
            Serving::Leader(l) => Reader::Chain(l.chain.clone()),
            Serving::Standby { store } => Reader::Store(store.clone()),
        }
    }

    /// The counters.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.common.metrics
    }

    /// The devnet fault `withhold`: the 404 every read touching `blknum` answers, if withheld.
    fn withheld(&self, blknum: u64) -> Option<Response> {
        self.common.withheld.contains(&blknum).then(|| withheld(blknum))
    }

    /// 503 `NotLeader`, naming the leader's URL if one is known, with `Retry-After: 1`
    /// (OP-HA-4). Wallets try the URL only if it is in their own list (a standby must not be able
    /// to send a wallet anywhere else).
    fn not_leader(&self) -> Response {
        let leader = self.common.ha.as_ref().and_then(|h| h.leader_url());
        let message = match &leader {
            Some(url) => format!("this operator is a standby; the leader is {url}"),
            None => "this operator is a standby and no leader is known right now".to_owned(),
        };
        let mut r = warp::reply::with_status(
            warp::reply::json(
                &json!({"error": {"code": "NotLeader", "message": message, "leader": leader}}),
            ),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .into_response();
        r.headers_mut()
            .insert(warp::http::header::RETRY_AFTER, warp::http::HeaderValue::from_static("1"));
        r
    }
}

/// The API's context of the moment: swapped whole when the role changes, so a request sees one
/// role from start to end (OP-HA-4).
#[derive(Debug)]
pub(crate) struct Shared {
    current: parking_lot::RwLock<Arc<ApiContext>>,
    max_body_bytes: u64,
}

impl Shared {
    /// Serving `ctx`.
    pub(crate) fn new(ctx: Arc<ApiContext>) -> Arc<Self> {
        let max_body_bytes = ctx.common.max_body_bytes;
        Arc::new(Self { current: parking_lot::RwLock::new(ctx), max_body_bytes })
    }

    /// The context now.
    pub(crate) fn current(&self) -> Arc<ApiContext> {
        self.current.read().clone()
    }

    /// Serves `ctx` from the next request on.
    pub(crate) fn set(&self, ctx: Arc<ApiContext>) {
        *self.current.write() = ctx;
    }
}

/// The reads every role serves: through the chain on a leader, from the store on a standby.
#[derive(Clone, Debug)]
pub(crate) enum Reader {
    /// A leader's chain.
    Chain(Arc<Chain>),
    /// A standby's store.
    Store(Arc<Store>),
}

impl Reader {
    fn store(&self) -> &Store {
        match self {
            Self::Chain(c) => c.store(),
            Self::Store(s) => s,
        }
    }

    /// Where a transaction stands. A standby knows only stored blocks: a pending transaction
    /// is in the leader's mempool, and the standby answers `UnknownTransaction` for it.
    fn tx_status(&self, hash: &B256) -> Result<Option<TxStatus>, StoreError> {
        match self {
            Self::Chain(c) => c.tx_status(hash),
            Self::Store(s) => {
                let Some((blknum, tx_index)) = s.tx_location(hash)? else { return Ok(None) };
                let committed = s.block_info(blknum)?.is_some_and(|b| b.l1_timestamp.is_some());
                Ok(Some(TxStatus::Included { blknum, tx_index, committed }))
            }
        }
    }

    fn inclusion(&self, blknum: u64, index: u32) -> Result<Lookup, StoreError> {
        self.store().inclusion(blknum, index)
    }

    fn block_info(&self, blknum: u64) -> Result<Option<BlockInfo>, StoreError> {
        self.store().block_info(blknum)
    }

    fn block(&self, blknum: u64) -> Result<Option<crate::store::BlockRecord>, StoreError> {
        self.store().block(blknum)
    }

    fn wire_chunk(&self, blknum: u64, offset: u64) -> Result<Vec<u8>, StoreError> {
        self.store().wire_chunk(blknum, offset)
    }

    /// A page of `owner`'s outputs. A standby reads the store's owner index: it cannot leave
    /// out outputs that are exiting (LEDGER-9, kept in the leader's memory), which the leader
    /// refuses to spend anyway.
    fn utxos_page(
        &self,
        owner: Address,
        after: Option<UtxoPos>,
        limit: usize,
    ) -> Result<(Vec<(UtxoPos, Output)>, bool), StoreError> {
        match self {
            Self::Chain(c) => Ok(c.utxos_page(owner, after, limit)),
            Self::Store(s) => s.utxos_page(owner, after, limit),
        }
    }

    fn utxo(&self, pos: UtxoPos) -> Result<Option<Output>, StoreError> {
        match self {
            Self::Chain(c) => Ok(c.utxo(pos)),
            Self::Store(s) => s.utxo(pos),
        }
    }
}

/// 404 `BlockWithheld` (devnet fault): the SDK falls back to the towers on this code.
fn withheld(blknum: u64) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "BlockWithheld",
        format!("block {blknum} is withheld (devnet fault); ask the availability towers"),
    )
}

/// Request counters (Prometheus, `crate::metrics`).
pub(crate) use crate::metrics::Metrics;

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    warp::reply::with_status(
        warp::reply::json(&json!({"error": {"code": code, "message": message.to_string()}})),
        status,
    )
    .into_response()
}

fn ok(value: Value) -> Response {
    warp::reply::json(&value).into_response()
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// A refused submission's message: the error, and for `WrongSigner` a hint when the likely cause
/// is a signature made under another signing domain (SIG-4) rather than by the wrong key.
fn submit_message(chain: &Chain, e: &SubmitError, raw: &[u8]) -> String {
    match e {
        SubmitError::Ledger(LedgerError::WrongSigner { input_index, owner, signer }) => {
            match wrong_domain_hint(chain, raw, *input_index, *owner, *signer) {
                Some(hint) => format!("{e}: {hint}"),
                None => e.to_string(),
            }
        }
        _ => e.to_string(),
    }
}

/// Chain ids a wallet is likely to have signed for by mistake: mainnets and testnets in wide use,
/// and the devnets'.
const LIKELY_CHAIN_IDS: [u64; 17] = [
    1, 10, 56, 100, 137, 1337, 8453, 17000, 31337, 42161, 43114, 59144, 80002, 84532, 421_614,
    11_155_111, 11_155_420,
];

/// Why input `index`'s signature recovers `signer`, not `owner`, when that is likely a wrong
/// signing domain: the signature recovers `owner` under a well-known chain id (certain), or
/// `signer` owns nothing on this chain (a digest under another domain recovers an unrelated,
/// empty address; a real wrong key is usually someone's). `None` when `signer` is someone here.
fn wrong_domain_hint(
    chain: &Chain,
    raw: &[u8],
    index: usize,
    owner: Address,
    signer: Address,
) -> Option<String> {
    let ours = chain.domain().domain();
    let chain_id = ours.chain_id.map_or_else(|| "?".to_owned(), |c| c.to_string());
    let contract = ours.verifying_contract.unwrap_or_default();
    let signed = SignedTransaction::decode(raw).ok()?;
    let other = LIKELY_CHAIN_IDS.iter().find(|id| {
        ours.chain_id != Some(alloy::primitives::U256::from(**id))
            && signed
                .recover_signers(&SigningDomain::new(**id, contract))
                .is_ok_and(|s| s.get(index) == Some(&owner))
    });
    if let Some(id) = other {
        return Some(format!(
            "the signature is {owner}'s for chain id {id}; this chain signs under chain id {chain_id}, verifying contract {contract} (EIP-712 domain): sign again for this chain"
        ));
    }
    let (owned, _) = chain.utxos_page(signer, None, 1);
    owned.is_empty().then(|| {
        format!(
            "{signer} owns nothing on this chain: if you signed with {owner}'s key, the signature was likely made for another chain id or verifying contract; this chain signs under chain id {chain_id}, verifying contract {contract} (EIP-712 domain)"
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitOne {
    tx: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBatch {
    txs: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionsRequest {
    txs: Vec<InclusionRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct InclusionRef {
    blknum: u64,
    tx_index: u32,
}

/// The transactions of a JSON batch body, or the response refusing it.
#[allow(clippy::result_large_err)] // the error is the response itself, built once per request
fn json_batch(body: &[u8], max_batch: usize) -> Result<Vec<Vec<u8>>, Response> {
    let req: SubmitBatch = serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "MalformedJson", e))?;
    if req.txs.len() > max_batch {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BatchTooLarge",
            format!("at most {max_batch} transactions"),
        ));
    }
    req.txs
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            parse_hex(tx).ok_or_else(|| {
                error(StatusCode::BAD_REQUEST, "MalformedHex", format!("txs[{i}] is not hex"))
            })
        })
        .collect()
}

/// The batch route's answer: one result per transaction, in request order.
fn batch_reply(
    ctx: &ApiContext,
    chain: &Chain,
    raw: &[Vec<u8>],
    results: &[Result<B256, SubmitError>],
) -> Response {
    let (mut accepted, mut rejected) = (0, 0);
    let results: Vec<Value> = results
        .iter()
        .zip(raw)
        .map(|(r, raw)| match r {
            Ok(hash) => {
                accepted += 1;
                json!({"txHash": hash})
            }
            Err(e) => {
                rejected += 1;
                json!({"error": {"code": e.code(), "message": submit_message(chain, e, raw)}})
            }
        })
        .collect();
    ctx.metrics().accepted.fetch_add(accepted, std::sync::atomic::Ordering::Relaxed);
    ctx.metrics().rejected.fetch_add(rejected, std::sync::atomic::Ordering::Relaxed);
    ok(json!({"results": results}))
}

/// All routes.
#[allow(clippy::result_large_err)] // a lookup's error is the response itself, built once
pub(crate) fn routes(
    shared: Arc<Shared>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let limit = warp::body::content_length_limit(shared.max_body_bytes);
    // Each request takes the context of the moment once, and keeps it to its end.
    let with = warp::any().map(move || shared.current());

    let submit = warp::path!("v1" / "transactions")
        .and(warp::post())
        .and(limit)
        .and(warp::body::bytes())
        .and(with.clone())
        .then(|body: bytes::Bytes, ctx: Arc<ApiContext>| async move {
            let Some(leader) = ctx.leading() else { return ctx.not_leader() };
            let req: SubmitOne = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return error(StatusCode::BAD_REQUEST, "MalformedJson", e),
            };
            let Some(bytes) = parse_hex(&req.tx) else {
                return error(StatusCode::BAD_REQUEST, "MalformedHex", "`tx` is not hex");
            };
            let (reply, result) = tokio::sync::oneshot::channel();
            if leader.submissions.send((bytes, Instant::now(), reply)).await.is_err() {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ShuttingDown",
                    "the operator is stopping",
                );
            }
            match result.await {
                Ok(Ok(hash)) => {
                    ctx.metrics().accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    ok(json!({"txHash": hash}))
                }
                // The fence refused the write: another process leads now (OP-HA-2, OP-HA-5).
                Ok(Err(SubmitError::Store(e))) if e.is_fenced() => {
                    ctx.metrics().rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    ctx.not_leader()
                }
                Ok(Err(e)) => {
                    ctx.metrics().rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let status = if e.is_client_error() {
                        StatusCode::UNPROCESSABLE_ENTITY
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let raw = parse_hex(&req.tx).unwrap_or_default();
                    error(status, e.code(), submit_message(&leader.chain, &e, &raw))
                }
                Err(_) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal",
                    "validation failed unexpectedly",
                ),
            }
        });

    let submit_batch = warp::path!("v1" / "transactions" / "batch")
        .and(warp::post())
        .and(limit)
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::bytes())
        .and(with.clone())
        .then(
            |content_type: Option<String>, body: bytes::Bytes, ctx: Arc<ApiContext>| async move {
                let arrived = Instant::now();
                let Some(leader) = ctx.leading() else { return ctx.not_leader() };
                let binary = content_type.as_deref().is_some_and(|t| {
                    t.split(';')
                        .next()
                        .is_some_and(|m| m.trim().eq_ignore_ascii_case(BATCH_MEDIA_TYPE))
                });
                let raw = if binary {
                    match decode_batch(&body, ctx.common.max_batch) {
                        Ok(raw) => raw,
                        Err(e @ FrameError::TooMany { .. }) => {
                            return error(StatusCode::PAYLOAD_TOO_LARGE, e.code(), e);
                        }
                        Err(e) => return error(StatusCode::BAD_REQUEST, e.code(), e),
                    }
                } else {
                    match json_batch(&body, ctx.common.max_batch) {
                        Ok(raw) => raw,
                        Err(response) => return response,
                    }
                };
                // Recovery fans out over every core and the write waits on fsync: keep both off the
                // async workers that serve the other requests.
                let chain = leader.chain.clone();
                let Ok((raw, results)) = tokio::task::spawn_blocking(move || {
                    chain.ingest_stats().queue_wait(raw.len(), arrived.elapsed());
                    let results = chain.submit(&raw);
                    (raw, results)
                })
                .await
                else {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal",
                        "validation failed unexpectedly",
                    );
                };
                batch_reply(&ctx, &leader.chain, &raw, &results)
            },
        );

    // `batch` is the batch route's, whatever the method: a GET of it is a 405 (`unrouted`), not
    // a malformed hash.
    let hash_segment =
        warp::path!("v1" / "transactions" / String).and_then(|h: String| async move {
            if h == "batch" { Err(warp::reject::not_found()) } else { Ok(h) }
        });
    let tx = hash_segment.and(warp::get()).and(with.clone()).map(
        |hash: String, ctx: Arc<ApiContext>| {
            let Some(hash) =
                parse_hex(&hash).filter(|h| h.len() == 32).map(|h| B256::from_slice(&h))
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "MalformedHash",
                    "expected a 32-byte hex hash",
                );
            };
            let reads = ctx.reads();
            match reads.tx_status(&hash) {
                Ok(None) => error(StatusCode::NOT_FOUND, "UnknownTransaction", hash),
                Ok(Some(TxStatus::Pending)) => ok(json!({"txHash": hash, "status": "pending"})),
                Ok(Some(TxStatus::Included { blknum, tx_index, committed })) => {
                    if let Some(r) = ctx.withheld(blknum) {
                        return r;
                    }
                    match inclusion(&reads, blknum, tx_index) {
                        Ok(inc) => ok(json!({
                            "txHash": hash,
                            "status": if committed { "committed" } else { "included" },
                            "blknum": blknum,
                            "txIndex": tx_index,
                            "txBytes": hex0x(&inc.tx_bytes),
                            "proof": hex0x(&inc.proof),
                            "root": inc.info.root,
                            "blockTimestamp": inc.info.l1_timestamp,
                        })),
                        Err(r) => r,
                    }
                }
                Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e),
            }
        },
    );

    let block =
        warp::path!("v1" / "blocks" / u64)
            .and(warp::get())
            .and(warp::header::optional::<String>("accept"))
            .and(warp::header::optional::<String>("range"))
            .and(with.clone())
            .then(
                |blknum: u64,
                 accept: Option<String>,
                 range: Option<String>,
                 ctx: Arc<ApiContext>| async move {
                    if let Some(r) = ctx.withheld(blknum) {
                        return r;
                    }
                    let reads = ctx.reads();
                    let info = match reads.block_info(blknum) {
                        Ok(Some(info)) => info,
                        Ok(None) => return error(StatusCode::NOT_FOUND, "UnknownBlock", blknum),
                        Err(e) => {
                            return error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e);
                        }
                    };
                    if accept.is_some_and(|a| a.contains(wire::MEDIA_TYPE)) {
                        return block_binary(&reads, info, range.as_deref());
                    }
                    block_json(reads, info).await
                },
            );

    let utxos = warp::path!("v1" / "utxos")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with.clone())
        .then(|query: String, ctx: Arc<ApiContext>| async move {
            let q = match UtxoQuery::parse(&query) {
                Ok(q) => q,
                Err(e) => return error(StatusCode::BAD_REQUEST, e.code(), e),
            };
            let reads = ctx.reads();
            let (page, more) = match reads.utxos_page(q.owner, q.after, q.limit) {
                Ok(page) => page,
                Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e),
            };
            if q.proofs
                && let Some(r) = page.iter().find_map(|(p, _)| ctx.withheld(p.blknum()))
            {
                return r;
            }
            let next = more.then(|| page.last().map(|(p, _)| p.to_u256().to_string())).flatten();
            let proofs = q.proofs;
            let listed = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, Response> {
                page.into_iter()
                    .map(|(pos, o)| {
                        let mut v = json!({"utxoPos": pos.to_u256().to_string(), "owner": o.owner, "token": o.token, "amount": o.amount.to_string()});
                        if proofs {
                            let inc = inclusion(&reads, pos.blknum(), u32::from(pos.tx_index()))?;
                            v["exitData"] = exit_data_json(pos, &inc).unwrap_or(Value::Null);
                        }
                        Ok(v)
                    })
                    .collect()
            })
            .await;
            match listed {
                Ok(Ok(list)) => ok(json!({"utxos": list, "next": next})),
                Ok(Err(r)) => r,
                Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", "lookup failed"),
            }
        });

    let inclusions = warp::path!("v1" / "inclusions")
        .and(warp::post())
        .and(limit)
        .and(warp::body::bytes())
        .and(with.clone())
        .then(|body: bytes::Bytes, ctx: Arc<ApiContext>| async move {
            let req: InclusionsRequest = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return error(StatusCode::BAD_REQUEST, "MalformedJson", e),
            };
            if req.txs.len() > MAX_INCLUSIONS {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "BatchTooLarge",
                    format!("at most {MAX_INCLUSIONS} positions per request"),
                );
            }
            let reads = ctx.reads();
            let held = ctx.clone();
            let items = tokio::task::spawn_blocking(move || {
                req.txs
                    .iter()
                    .map(|t| {
                        if held.common.withheld.contains(&t.blknum) {
                            return json!({"blknum": t.blknum, "txIndex": t.tx_index, "error": {
                                "code": "BlockWithheld",
                                "message": format!("block {} is withheld (devnet fault); ask the availability towers", t.blknum),
                            }});
                        }
                        inclusion_item(&reads, t.blknum, t.tx_index)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            match items {
                Ok(items) => ok(json!({"inclusions": items})),
                Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", "lookup failed"),
            }
        });

    let exit_data = warp::path!("v1" / "utxos" / String / "exit-data")
        .and(warp::get())
        .and(with.clone())
        .map(|pos: String, ctx: Arc<ApiContext>| {
            let Some(pos) = pos.parse::<u128>().ok().and_then(|p| UtxoPos::from_u128(p).ok())
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "MalformedPosition",
                    "expected a decimal UTXO position",
                );
            };
            if let Some(r) = ctx.withheld(pos.blknum()) {
                return r;
            }
            let reads = ctx.reads();
            match reads.utxo(pos) {
                Ok(Some(_)) => {}
                Ok(None) => return error(StatusCode::NOT_FOUND, "UnknownUtxo", pos),
                Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e),
            }
            match inclusion(&reads, pos.blknum(), u32::from(pos.tx_index())) {
                Ok(inc) => match exit_data_json(pos, &inc) {
                    Some(v) => ok(v),
                    None => error(
                        StatusCode::CONFLICT,
                        "NotCommitted",
                        "the block is not committed on L1 yet",
                    ),
                },
                Err(r) => r,
            }
        });

    let status = warp::path!("v1" / "status")
        .and(warp::get())
        .and(with.clone())
        .map(|ctx: Arc<ApiContext>| ok(status_json(&ctx)));

    let availability = warp::path!("v1" / "blocks" / u64 / "availability")
        .and(warp::get())
        .and(with.clone())
        .then(|blknum: u64, ctx: Arc<ApiContext>| async move {
            // The header and receipts are the leader's distributor's; a standby sends the asker
            // on (it could read them from the store too: not needed by any client yet).
            let Some(leader) = ctx.leading() else { return ctx.not_leader() };
            let chain = leader.chain.clone();
            match tokio::task::spawn_blocking(move || crate::da::availability(&chain, blknum)).await
            {
                Ok(Ok(Some(v))) => ok(v),
                Ok(Ok(None)) => error(
                    StatusCode::NOT_FOUND,
                    "NoAvailability",
                    format!(
                        "block {blknum} has no availability header (not distributed: a deposit block, no towers configured, or not encoded yet)"
                    ),
                ),
                Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e),
                Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", "read failed"),
            }
        });

    let health = warp::path!("health").and(warp::get()).map(|| ok(json!({"status": "ok"})));

    // `/metrics` (issue 20): `crate::metrics`, every figure documented in docs/operations.md.
    let metrics = warp::path!("metrics").and(warp::get()).and(with).map(|ctx: Arc<ApiContext>| {
        warp::reply::with_header(
            crate::metrics::render(&ctx),
            "content-type",
            "text/plain; version=0.0.4",
        )
        .into_response()
    });

    let openapi = warp::path!("openapi.json").and(warp::get()).map(|| {
        warp::reply::with_header(crate::openapi::DOCUMENT, "content-type", "application/json")
            .into_response()
    });

    submit_batch
        .or(submit)
        .unify()
        .or(tx)
        .unify()
        .or(block)
        .unify()
        .or(availability)
        .unify()
        .or(exit_data)
        .unify()
        .or(utxos)
        .unify()
        .or(inclusions)
        .unify()
        .or(status)
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
        .or(unrouted())
        .unify()
        .recover(|r: Rejection| async move { Ok::<_, Infallible>(rejection(&r)) })
        .unify()
}

/// What no route took, answered from the document's route table: 405 with `Allow` (the
/// documented methods), 400 for a path number that is not one, 404 for an undocumented path. A
/// documented route rejects on (the routes' own refusal, e.g. 411 or 413, stands).
fn unrouted() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::method().and(warp::path::full()).and_then(
        |method: warp::http::Method, path: warp::path::FullPath| async move {
            crate::openapi::ROUTES
                .find(method.as_str(), path.as_str())
                .refusal()
                .map(refused)
                .ok_or_else(warp::reject::not_found)
        },
    )
}

/// A [`Refusal`] as the response.
fn refused(r: Refusal) -> Response {
    let mut response =
        error(StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST), r.code, r.message);
    if let Some(allow) = r.allow.and_then(|a| warp::http::HeaderValue::from_str(&a).ok()) {
        response.headers_mut().insert(warp::http::header::ALLOW, allow);
    }
    response
}

/// Most transactions a JSON block answer may hold; larger blocks are served only in the wire
/// form (a full block as hex in JSON was 92.6 MB, built whole per request: issue #15).
pub(crate) const MAX_JSON_BLOCK_TXS: u32 = 4_096;
/// Most positions in one `POST /v1/inclusions`.
pub(crate) const MAX_INCLUSIONS: usize = 1_000;
/// A transaction and its proof from the index (OP-9); or the error response to send.
#[allow(clippy::result_large_err)] // the error is the response itself, built once per request
fn inclusion(reads: &Reader, blknum: u64, index: u32) -> Result<Inclusion, Response> {
    match reads.inclusion(blknum, index) {
        Ok(Lookup::Found(inc)) => Ok(*inc),
        Ok(Lookup::UnknownBlock) => Err(error(StatusCode::NOT_FOUND, "UnknownBlock", blknum)),
        Ok(Lookup::OutOfRange { tx_count }) => Err(error(
            StatusCode::NOT_FOUND,
            "TxIndexOutOfRange",
            format!("block {blknum} has {tx_count} transactions"),
        )),
        Err(e) => Err(error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e)),
    }
}

/// Exit data of the output at `pos`, once its block is committed.
fn exit_data_json(pos: UtxoPos, inc: &Inclusion) -> Option<Value> {
    let ts = inc.info.l1_timestamp?;
    Some(json!({
        "utxoPos": pos.to_u256().to_string(),
        "blknum": pos.blknum(),
        "txBytes": hex0x(&inc.tx_bytes),
        "inclusionProof": hex0x(&inc.proof),
        "root": inc.info.root,
        "blockTimestamp": ts,
    }))
}

/// One item of `POST /v1/inclusions`.
fn inclusion_item(reads: &Reader, blknum: u64, index: u32) -> Value {
    let fail = |code: &str, message: String| json!({"blknum": blknum, "txIndex": index, "error": {"code": code, "message": message}});
    match reads.inclusion(blknum, index) {
        Ok(Lookup::Found(inc)) => json!({
            "blknum": blknum,
            "txIndex": index,
            "signedTx": (!plasma_spec::is_deposit_block(blknum)).then(|| hex0x(&inc.stored)),
            "txBytes": hex0x(&inc.tx_bytes),
            "proof": hex0x(&inc.proof),
            "root": inc.info.root,
            "blockTimestamp": inc.info.l1_timestamp,
        }),
        Ok(Lookup::UnknownBlock) => fail("UnknownBlock", format!("no block {blknum}")),
        Ok(Lookup::OutOfRange { tx_count }) => {
            fail("TxIndexOutOfRange", format!("block {blknum} has {tx_count} transactions"))
        }
        Err(e) => fail("StorageFailure", e.to_string()),
    }
}

/// A small block as JSON, as before #15; larger ones are refused (413).
async fn block_json(reads: Reader, info: BlockInfo) -> Response {
    if info.tx_count > MAX_JSON_BLOCK_TXS {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BlockTooLargeForJson",
            format!(
                "block {} has {} transactions; JSON is served up to {MAX_JSON_BLOCK_TXS}: ask with Accept: {}",
                info.blknum,
                info.tx_count,
                wire::MEDIA_TYPE
            ),
        );
    }
    let blknum = info.blknum;
    match tokio::task::spawn_blocking(move || reads.block(blknum)).await {
        Ok(Ok(Some(b))) => ok(json!({
            "blknum": b.blknum,
            "root": b.root,
            "l1Timestamp": b.l1_timestamp,
            "l1Tx": b.l1_tx,
            "txs": b.txs.iter().map(|t| hex0x(t)).collect::<Vec<_>>(),
        })),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "UnknownBlock", blknum),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", "read failed"),
    }
}

/// The body of a streamed block: chunks read from the store by a task, at most two ahead of the
/// socket, so a download holds about two stored rows in memory whatever the block's size.
struct ChunkStream(tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>);

impl warp::Stream for ChunkStream {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// `GET /v1/blocks/{n}` in the wire form: the stored bytes as they are, streamed, with ranges.
fn block_binary(reads: &Reader, info: BlockInfo, range: Option<&str>) -> Response {
    use warp::http::header::{HeaderName, HeaderValue};
    let len = info.wire_len;
    let (status, start, end) = match parse_range(range, len) {
        RangeAsk::Whole => (StatusCode::OK, 0, len),
        RangeAsk::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        RangeAsk::Unsatisfiable => {
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RangeNotSatisfiable",
                format!("the block is {len} bytes; ask one range, bytes=<from>-[<to>]"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(warp::http::header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let reads = reads.clone();
    let blknum = info.blknum;
    tokio::spawn(async move {
        let mut at = start;
        while at < end {
            let c = reads.clone();
            let read = tokio::task::spawn_blocking(move || c.wire_chunk(blknum, at)).await;
            let mut chunk = match read {
                Ok(Ok(chunk)) if !chunk.is_empty() => chunk,
                failed => {
                    tracing::error!(target: "operator::api", blknum, at, ?failed, "block read failed mid-stream");
                    let _ = tx.send(Err(std::io::Error::other("storage failure"))).await;
                    return;
                }
            };
            chunk.truncate(usize::try_from(end - at).unwrap_or(usize::MAX));
            at += chunk.len() as u64;
            if tx.send(Ok(bytes::Bytes::from(chunk))).await.is_err() {
                return; // the client went away
            }
        }
    });
    let mut r = warp::reply::stream(ChunkStream(rx)).into_response();
    *r.status_mut() = status;
    let h = r.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set("content-type", wire::MEDIA_TYPE.to_owned());
    set("content-length", (end - start).to_string());
    set("accept-ranges", "bytes".to_owned());
    set("x-plasma-root", info.root.to_string());
    set("x-plasma-tx-count", info.tx_count.to_string());
    if let Some(ts) = info.l1_timestamp {
        set("x-plasma-l1-timestamp", ts.to_string());
    }
    if status == StatusCode::PARTIAL_CONTENT {
        set("content-range", format!("bytes {start}-{}/{len}", end - 1));
    }
    r
}

/// `/v1/status`: the leader's chain, L1 and availability figures; a standby's store head. With
/// an election, `role` (`leader`, `standby`), the `epoch` this process leads in and the lease
/// row's `leader` (OP-HA-4). A redb operator is always `leader`, epoch 0.
fn status_json(ctx: &ApiContext) -> Value {
    let ha = ctx.common.ha.as_ref().map(|h| h.snapshot());
    let (role, epoch, leader) = match &ha {
        Some(s) => (
            s.role,
            s.epoch,
            s.leader.as_ref().map(|l| serde_json::to_value(l).unwrap_or(Value::Null)),
        ),
        None => ("leader", Some(0), None),
    };
    let mut v = json!({
        "role": role,
        "epoch": epoch,
        "leader": leader,
        "node": ha.as_ref().map(|s| s.node_id.clone()),
        "store": {"backend": ctx.common.backend, "url": ctx.common.store},
    });
    match &ctx.serving {
        Serving::Leader(l) => {
            v["chain"] = serde_json::to_value(l.chain.status()).unwrap_or(Value::Null);
            v["l1"] = serde_json::to_value(&*l.l1.lock()).unwrap_or(Value::Null);
            v["da"] = l.da.as_ref().map_or(Value::Null, |d| d.status());
        }
        Serving::Standby { store } => {
            v["standby"] = match store.head() {
                Ok(head) => json!({"storeHead": head}),
                Err(e) => json!({"storeHead": null, "storeError": e.to_string()}),
            };
        }
    }
    v
}

fn rejection(r: &Rejection) -> Response {
    if r.is_not_found() {
        error(StatusCode::NOT_FOUND, "NotFound", "no such route")
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        error(StatusCode::PAYLOAD_TOO_LARGE, "BodyTooLarge", "request body too large")
    } else if r.find::<warp::reject::LengthRequired>().is_some() {
        error(StatusCode::LENGTH_REQUIRED, "LengthRequired", "send a Content-Length")
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        // `unrouted` answers these with Allow; this is only a fallback.
        error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "method not allowed")
    } else if let Some(e) = r.find::<warp::reject::InvalidHeader>() {
        error(StatusCode::BAD_REQUEST, "MalformedHeader", e)
    } else if let Some(e) = r.find::<warp::reject::InvalidQuery>() {
        error(StatusCode::BAD_REQUEST, "MalformedQuery", e)
    } else {
        tracing::debug!(target: "operator::api", rejection = ?r, "request refused");
        error(StatusCode::BAD_REQUEST, "BadRequest", "the request could not be read")
    }
}
