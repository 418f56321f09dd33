//! The HTTP API (OP-6): JSON under `/v1`, plus `/health`, `/metrics` and `/openapi.json`.
//! Errors are `{"error": {"code": "...", "message": "..."}}` with a stable code.

// warp hands extracted values to handlers by value; borrowing is not an option there.
#![allow(clippy::needless_pass_by_value)]

use crate::{
    chain::{Chain, SubmitError, TxStatus, block_leaves},
    l1::L1Health,
};
use alloy::primitives::{Address, B256};
use parking_lot::Mutex;
use plasma_spec::{BlockTree, UtxoPos};
use serde::Deserialize;
use serde_json::{Value, json};
use std::{convert::Infallible, sync::Arc};
use warp::{Filter, Rejection, Reply, http::StatusCode, reply::Response};

/// A single submission waiting for the group committer, with where to send its result.
pub(crate) type Submission = (Vec<u8>, tokio::sync::oneshot::Sender<Result<B256, SubmitError>>);

/// Group commit: single-transaction requests that arrive together are validated and made durable
/// in one `Chain::submit` call (one signature-recovery fan-out, one fsync), so throughput does not
/// stop at one disk flush per request. A request waits at most for the group in progress.
pub(crate) async fn run_group_committer(
    chain: Arc<Chain>,
    mut rx: tokio::sync::mpsc::Receiver<Submission>,
) {
    const MAX_GROUP: usize = 4_096;
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(s) => group.push(s),
                Err(_) => break,
            }
        }
        let (raw, replies): (Vec<Vec<u8>>, Vec<_>) = group.into_iter().unzip();
        let chain = chain.clone();
        // A panic in validation drops the replies: their requests get an error, the loop goes on.
        let Ok(results) = tokio::task::spawn_blocking(move || chain.submit(&raw)).await else {
            continue;
        };
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct ApiContext {
    /// Single submissions go through the group committer.
    pub(crate) submissions: tokio::sync::mpsc::Sender<Submission>,
    /// The chain.
    pub chain: Arc<Chain>,
    /// L1 health figures.
    pub l1: Arc<Mutex<L1Health>>,
    /// Largest request body.
    pub max_body_bytes: u64,
    /// Most transactions per batch.
    pub max_batch: usize,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
}

/// Request counters (Prometheus).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    accepted: std::sync::atomic::AtomicU64,
    rejected: std::sync::atomic::AtomicU64,
}

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

fn submit_error(e: &SubmitError) -> Value {
    json!({"code": e.code(), "message": e.to_string()})
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
struct OwnerQuery {
    owner: String,
}

/// All routes.
pub(crate) fn routes(
    ctx: Arc<ApiContext>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let with = {
        let ctx = ctx.clone();
        warp::any().map(move || ctx.clone())
    };
    let limit = warp::body::content_length_limit(ctx.max_body_bytes);

    let submit = warp::path!("v1" / "transactions")
        .and(warp::post())
        .and(limit)
        .and(warp::body::bytes())
        .and(with.clone())
        .then(|body: bytes::Bytes, ctx: Arc<ApiContext>| async move {
            let req: SubmitOne = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return error(StatusCode::BAD_REQUEST, "MalformedJson", e),
            };
            let Some(bytes) = parse_hex(&req.tx) else {
                return error(StatusCode::BAD_REQUEST, "MalformedHex", "`tx` is not hex");
            };
            let (reply, result) = tokio::sync::oneshot::channel();
            if ctx.submissions.send((bytes, reply)).await.is_err() {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ShuttingDown",
                    "the operator is stopping",
                );
            }
            match result.await {
                Ok(Ok(hash)) => {
                    ctx.metrics.accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    ok(json!({"txHash": hash}))
                }
                Ok(Err(e)) => {
                    ctx.metrics.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let status = if e.is_client_error() {
                        StatusCode::UNPROCESSABLE_ENTITY
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    error(status, e.code(), e)
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
        .and(warp::body::bytes())
        .and(with.clone())
        .then(|body: bytes::Bytes, ctx: Arc<ApiContext>| async move {
            let req: SubmitBatch = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return error(StatusCode::BAD_REQUEST, "MalformedJson", e),
            };
            if req.txs.len() > ctx.max_batch {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "BatchTooLarge",
                    format!("at most {} transactions", ctx.max_batch),
                );
            }
            let mut raw = Vec::with_capacity(req.txs.len());
            for (i, tx) in req.txs.iter().enumerate() {
                match parse_hex(tx) {
                    Some(b) => raw.push(b),
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "MalformedHex",
                            format!("txs[{i}] is not hex"),
                        );
                    }
                }
            }
            // Recovery fans out over every core and the write waits on fsync: keep both off the
            // async workers that serve the other requests.
            let chain = ctx.chain.clone();
            let Ok(results) = tokio::task::spawn_blocking(move || chain.submit(&raw)).await else {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal",
                    "validation failed unexpectedly",
                );
            };
            let results: Vec<Value> = results
                .iter()
                .map(|r| match r {
                    Ok(hash) => {
                        ctx.metrics.accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        json!({"txHash": hash})
                    }
                    Err(e) => {
                        ctx.metrics.rejected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        json!({"error": submit_error(e)})
                    }
                })
                .collect();
            ok(json!({"results": results}))
        });

    let tx = warp::path!("v1" / "transactions" / String).and(warp::get()).and(with.clone()).map(
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
            match ctx.chain.tx_status(&hash) {
                Ok(None) => error(StatusCode::NOT_FOUND, "UnknownTransaction", hash),
                Ok(Some(TxStatus::Pending)) => ok(json!({"txHash": hash, "status": "pending"})),
                Ok(Some(TxStatus::Included { blknum, tx_index, committed })) => {
                    match inclusion(&ctx.chain, blknum, tx_index as usize) {
                        Ok((tx_bytes, proof, record)) => ok(json!({
                            "txHash": hash,
                            "status": if committed { "committed" } else { "included" },
                            "blknum": blknum,
                            "txIndex": tx_index,
                            "txBytes": hex0x(&tx_bytes),
                            "proof": hex0x(&proof),
                            "root": record.root,
                            "blockTimestamp": record.l1_timestamp,
                        })),
                        Err(r) => r,
                    }
                }
                Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e),
            }
        },
    );

    let block = warp::path!("v1" / "blocks" / u64).and(warp::get()).and(with.clone()).map(
        |blknum: u64, ctx: Arc<ApiContext>| match ctx.chain.block(blknum) {
            Ok(Some(b)) => ok(json!({
                "blknum": b.blknum,
                "root": b.root,
                "l1Timestamp": b.l1_timestamp,
                "l1Tx": b.l1_tx,
                "txs": b.txs.iter().map(|t| hex0x(t)).collect::<Vec<_>>(),
            })),
            Ok(None) => error(StatusCode::NOT_FOUND, "UnknownBlock", blknum),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e),
        },
    );

    let utxos = warp::path!("v1" / "utxos").and(warp::get()).and(warp::query::raw().or(warp::any().map(String::new)).unify()).and(with.clone()).map(
        |query: String, ctx: Arc<ApiContext>| {
            let q: OwnerQuery = match serde_urlencoded_owner(&query) {
                Some(q) => q,
                None => return error(StatusCode::BAD_REQUEST, "MalformedQuery", "expected ?owner=0x<address>"),
            };
            let Ok(owner) = q.owner.parse::<Address>() else {
                return error(StatusCode::BAD_REQUEST, "MalformedAddress", "owner is not an address");
            };
            let list: Vec<Value> = ctx
                .chain
                .utxos_of(owner)
                .into_iter()
                .map(|(pos, o)| json!({"utxoPos": pos.to_u256().to_string(), "owner": o.owner, "token": o.token, "amount": o.amount.to_string()}))
                .collect();
            ok(json!({"utxos": list}))
        },
    );

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
            if ctx.chain.utxo(pos).is_none() {
                return error(StatusCode::NOT_FOUND, "UnknownUtxo", pos);
            }
            match inclusion(&ctx.chain, pos.blknum(), pos.tx_index() as usize) {
                Ok((tx_bytes, proof, record)) => match record.l1_timestamp {
                    Some(ts) => ok(json!({
                        "utxoPos": pos.to_u256().to_string(),
                        "blknum": pos.blknum(),
                        "txBytes": hex0x(&tx_bytes),
                        "inclusionProof": hex0x(&proof),
                        "root": record.root,
                        "blockTimestamp": ts,
                    })),
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
        .map(|ctx: Arc<ApiContext>| ok(json!({"chain": ctx.chain.status(), "l1": *ctx.l1.lock()})));

    let health = warp::path!("health").and(warp::get()).map(|| ok(json!({"status": "ok"})));

    let metrics = warp::path!("metrics").and(warp::get()).and(with).map(|ctx: Arc<ApiContext>| {
        let s = ctx.chain.status();
        let l1 = ctx.l1.lock().clone();
        let body = format!(
            "# TYPE plasma_operator_txs_accepted_total counter\nplasma_operator_txs_accepted_total {}\n\
             # TYPE plasma_operator_txs_rejected_total counter\nplasma_operator_txs_rejected_total {}\n\
             # TYPE plasma_operator_mempool_size gauge\nplasma_operator_mempool_size {}\n\
             # TYPE plasma_operator_utxos gauge\nplasma_operator_utxos {}\n\
             # TYPE plasma_operator_next_child_block gauge\nplasma_operator_next_child_block {}\n\
             # TYPE plasma_operator_uncommitted_blocks gauge\nplasma_operator_uncommitted_blocks {}\n\
             # TYPE plasma_operator_l1_head gauge\nplasma_operator_l1_head {}\n\
             # TYPE plasma_operator_root_submissions_total counter\nplasma_operator_root_submissions_total {}\n",
            ctx.metrics.accepted.load(std::sync::atomic::Ordering::Relaxed),
            ctx.metrics.rejected.load(std::sync::atomic::Ordering::Relaxed),
            s.mempool_size,
            s.utxo_count,
            s.next_child_block,
            s.uncommitted_blocks.len(),
            l1.l1_head,
            l1.submissions_sent,
        );
        warp::reply::with_header(body, "content-type", "text/plain; version=0.0.4").into_response()
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
        .or(exit_data)
        .unify()
        .or(utxos)
        .unify()
        .or(status)
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
        .recover(|r: Rejection| async move { Ok::<_, Infallible>(rejection(&r)) })
        .unify()
}

fn serde_urlencoded_owner(query: &str) -> Option<OwnerQuery> {
    let mut owner = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        match k {
            "owner" => owner = Some(v.to_owned()),
            _ => return None,
        }
    }
    owner.map(|owner| OwnerQuery { owner })
}

/// A transaction's bytes, its proof, and its block; or the error response to send.
#[allow(clippy::result_large_err)] // the error is the response itself, built once per request
fn inclusion(
    chain: &Chain,
    blknum: u64,
    index: usize,
) -> Result<(Vec<u8>, Vec<u8>, crate::store::BlockRecord), Response> {
    let record = match chain.block(blknum) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(error(StatusCode::NOT_FOUND, "UnknownBlock", blknum)),
        Err(e) => return Err(error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e)),
    };
    let leaves = block_leaves(&record);
    let (Some(tx_bytes), Ok(tree)) = (leaves.get(index).cloned(), BlockTree::from_txs(&leaves))
    else {
        return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "CorruptBlock", blknum));
    };
    let proof = tree
        .proof(index)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "CorruptBlock", e))?;
    Ok((tx_bytes, proof.to_bytes(), record))
}

fn rejection(r: &Rejection) -> Response {
    if r.is_not_found() {
        error(StatusCode::NOT_FOUND, "NotFound", "no such route")
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        error(StatusCode::PAYLOAD_TOO_LARGE, "BodyTooLarge", "request body too large")
    } else if r.find::<warp::reject::LengthRequired>().is_some() {
        error(StatusCode::LENGTH_REQUIRED, "LengthRequired", "send a Content-Length")
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "method not allowed")
    } else {
        error(StatusCode::BAD_REQUEST, "BadRequest", format!("{r:?}"))
    }
}
