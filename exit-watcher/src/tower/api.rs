//! The tower's HTTP routes (issue 17): `PUT`/`GET /v1/da/chunks/{blknum}`, `GET /v1/da/faults`,
//! and the operator's read routes over the validated history — `GET /v1/blocks/{blknum}`,
//! `GET /v1/utxos?owner=&proofs=&limit=&after=`, `POST /v1/inclusions`,
//! `GET /v1/utxos/{pos}/exit-data` — with the operator's paths, JSON shapes and codes
//! (operator/src/api.rs), so the SDK reads a tower as it reads the operator.

// warp hands extracted values to handlers by value.
#![allow(clippy::needless_pass_by_value)]

use super::{FAULTS_KEPT, MAX_PUTS_AT_ONCE, PUT_BODY_TIMEOUT, read};
use crate::watcher::Watcher;
use plasma_spec::{
    UtxoPos,
    pages::{RangeAsk, UtxoQuery, parse_range},
    wire,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use warp::{Filter, Rejection, Reply, http::StatusCode, reply::Response};

/// Most transactions a JSON block answer holds (the operator's limit); larger blocks only in the
/// wire form.
pub(crate) const MAX_JSON_BLOCK_TXS: usize = 4_096;
/// Most positions in one `POST /v1/inclusions` (the operator's limit).
pub(crate) const MAX_INCLUSIONS: usize = 1_000;

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    warp::reply::with_status(
        warp::reply::json(&json!({"error": {"code": code, "message": message.to_string()}})),
        status,
    )
    .into_response()
}

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn ok(value: Value) -> Response {
    warp::reply::json(&value).into_response()
}

fn read_error(e: &read::ReadError) -> Response {
    error(status_of(e.status()), e.code(), e)
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

/// The tower's routes and the read routes.
pub(crate) fn routes(
    watcher: Arc<Watcher>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let with = warp::any().map(move || watcher.clone());

    let put_chunk = warp::path!("v1" / "da" / "chunks" / u64)
        .and(warp::put())
        .and(warp::body::content_length_limit(super::MAX_ENVELOPE_BYTES))
        .and(warp::body::stream())
        .and(with.clone())
        .then(|blknum: u64, body, w: Arc<Watcher>| async move {
            let Some(tower) = w.tower().cloned() else {
                return error(
                    StatusCode::NOT_FOUND,
                    "NotATower",
                    "this watcher is not a tower (no --da.index)",
                );
            };
            // A slot before a byte of the body is read: at most MAX_PUTS_AT_ONCE bodies (64 MiB
            // each) in memory whoever sends them; the operator's pusher retries a 503.
            let Ok(_slot) = tower.put_slots.clone().try_acquire_owned() else {
                tracing::debug!(target: "watcher::da", blknum, "PUT refused: every slot busy");
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "TooBusy",
                    format!("{MAX_PUTS_AT_ONCE} chunks are being received: retry later"),
                );
            };
            let body = match read_body(body, super::MAX_ENVELOPE_BYTES, PUT_BODY_TIMEOUT).await {
                Ok(b) => b,
                Err(refused) => return refused,
            };
            let last = w.last_child_committed();
            match tokio::task::spawn_blocking(move || tower.put_chunk(blknum, &body, last)).await {
                Ok(Ok(r)) => ok(json!({"receipt": {
                    "blknum": r.receipt.blknum,
                    "chunkRoot": r.receipt.chunk_root,
                    "index": r.receipt.index,
                    "tower": r.tower,
                    "signature": r.signature,
                }})),
                Ok(Err(e)) => error(status_of(e.status()), e.code(), e),
                Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", "store task failed"),
            }
        });

    let get_chunk = warp::path!("v1" / "da" / "chunks" / u64)
        .and(warp::get())
        .and(with.clone())
        .then(|blknum: u64, w: Arc<Watcher>| async move {
            let Some(tower) = w.tower().cloned() else {
                return error(StatusCode::NOT_FOUND, "NoChunk", "this watcher is not a tower");
            };
            match tokio::task::spawn_blocking(move || tower.chunk(blknum)).await {
                Ok(Ok(Some(bytes))) => {
                    warp::reply::with_header(bytes, "content-type", plasma_da::CHUNK_MEDIA_TYPE)
                        .into_response()
                }
                Ok(Ok(None)) => {
                    error(StatusCode::NOT_FOUND, "NoChunk", format!("no chunk of block {blknum}"))
                }
                Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, "StorageFailure", e),
                Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", "store task failed"),
            }
        });

    let faults = warp::path!("v1" / "da" / "faults").and(warp::get()).and(with.clone()).map(
        |w: Arc<Watcher>| {
            let faults = w.tower().map(|t| t.faults(FAULTS_KEPT)).unwrap_or_default();
            ok(json!({"faults": faults}))
        },
    );

    let block = warp::path!("v1" / "blocks" / u64)
        .and(warp::get())
        .and(warp::header::optional::<String>("accept"))
        .and(warp::header::optional::<String>("range"))
        .and(with.clone())
        .then(|blknum: u64, accept: Option<String>, range: Option<String>, w: Arc<Watcher>| async move {
            if accept.is_some_and(|a| a.contains(wire::MEDIA_TYPE)) {
                let read = tokio::task::spawn_blocking(move || w.block_wire(blknum)).await;
                return match read {
                    Ok(Ok((served, bytes))) => block_binary(&served, &bytes, range.as_deref()),
                    Ok(Err(e)) => read_error(&e),
                    Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", "read failed"),
                };
            }
            let read = tokio::task::spawn_blocking(move || w.block_txs(blknum)).await;
            match read {
                Ok(Ok((served, txs))) if txs.len() > MAX_JSON_BLOCK_TXS => error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "BlockTooLargeForJson",
                    format!(
                        "block {} has {} transactions; JSON is served up to {MAX_JSON_BLOCK_TXS}: ask with Accept: {}",
                        served.blknum,
                        txs.len(),
                        wire::MEDIA_TYPE
                    ),
                ),
                Ok(Ok((served, txs))) => ok(json!({
                    "blknum": served.blknum,
                    "root": served.tree.root(),
                    "l1Timestamp": served.timestamp,
                    "l1Tx": Value::Null,
                    "txs": txs.iter().map(|t| format!("0x{}", hex::encode(t))).collect::<Vec<_>>(),
                })),
                Ok(Err(e)) => read_error(&e),
                Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", "read failed"),
            }
        });

    let utxos = warp::path!("v1" / "utxos")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(with.clone())
        .then(|query: String, w: Arc<Watcher>| async move {
            let q = match UtxoQuery::parse(&query) {
                Ok(q) => q,
                Err(e) => return error(StatusCode::BAD_REQUEST, e.code(), e),
            };
            let listed = tokio::task::spawn_blocking(move || -> Result<Value, read::ReadError> {
                let (page, more) = w.utxo_page(q.owner, q.after, q.limit);
                let next =
                    more.then(|| page.last().map(|(p, _)| p.to_u256().to_string())).flatten();
                let list = page
                    .into_iter()
                    .map(|(pos, o)| {
                        let mut v = json!({"utxoPos": pos.to_u256().to_string(), "owner": o.owner, "token": o.token, "amount": o.amount.to_string()});
                        if q.proofs {
                            let inc = w.included(pos.blknum(), u32::from(pos.tx_index()))?;
                            v["exitData"] = read::exit_data_json(pos, &inc);
                        }
                        Ok(v)
                    })
                    .collect::<Result<Vec<_>, read::ReadError>>()?;
                Ok(json!({"utxos": list, "next": next}))
            })
            .await;
            match listed {
                Ok(Ok(v)) => ok(v),
                Ok(Err(e)) => read_error(&e),
                Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", "lookup failed"),
            }
        });

    let inclusions = warp::path!("v1" / "inclusions")
        .and(warp::post())
        .and(warp::body::content_length_limit(1 << 20))
        .and(warp::body::bytes())
        .and(with.clone())
        .then(|body: bytes::Bytes, w: Arc<Watcher>| async move {
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
            let items = tokio::task::spawn_blocking(move || {
                req.txs
                    .iter()
                    .map(|t| read::inclusion_item(&w, t.blknum, t.tx_index))
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
        .and(with)
        .then(|pos: String, w: Arc<Watcher>| async move {
            let Some(pos) = pos.parse::<u128>().ok().and_then(|p| UtxoPos::from_u128(p).ok())
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "MalformedPosition",
                    "expected a decimal UTXO position",
                );
            };
            match tokio::task::spawn_blocking(move || w.exit_data(pos)).await {
                Ok(Ok(v)) => ok(v),
                Ok(Err(e)) => read_error(&e),
                Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", "lookup failed"),
            }
        });

    put_chunk
        .or(get_chunk)
        .unify()
        .or(faults)
        .unify()
        .or(block)
        .unify()
        .or(exit_data)
        .unify()
        .or(utxos)
        .unify()
        .or(inclusions)
        .unify()
}

/// Reads a request body of at most `limit` bytes that arrives within `within` (a sender that
/// trickles it holds its slot no longer); the refusal as the answer otherwise.
async fn read_body<B: warp::Buf>(
    body: impl warp::Stream<Item = Result<B, warp::Error>>,
    limit: u64,
    within: std::time::Duration,
) -> Result<Vec<u8>, Response> {
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    let read = async {
        while let Some(part) = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await {
            let mut part = part.map_err(|e| {
                error(StatusCode::BAD_REQUEST, "Malformed", format!("reading the body: {e}"))
            })?;
            if (out.len() + part.remaining()) as u64 > limit {
                return Err(error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "BodyTooLarge",
                    "request body too large",
                ));
            }
            while part.has_remaining() {
                let chunk = part.chunk();
                out.extend_from_slice(chunk);
                let len = chunk.len();
                part.advance(len);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(within, read).await {
        Ok(Ok(())) => Ok(out),
        Ok(Err(refused)) => Err(refused),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "BodyTimeout",
            format!("the body did not arrive within {} s", within.as_secs()),
        )),
    }
}

/// `GET /v1/blocks/{n}` in the wire form, with ranges and the operator's `x-plasma-*` headers.
fn block_binary(served: &read::Served, bytes: &[u8], range: Option<&str>) -> Response {
    use warp::http::header::{HeaderName, HeaderValue};
    let len = bytes.len() as u64;
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
    let (s, e) = (usize::try_from(start).unwrap_or(0), usize::try_from(end).unwrap_or(0));
    let body = bytes.get(s..e).map(<[u8]>::to_vec).unwrap_or_default();
    let mut r = warp::reply::Response::new(body.into());
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
    set("x-plasma-root", served.tree.root().to_string());
    set("x-plasma-tx-count", served.tree.len().to_string());
    set("x-plasma-l1-timestamp", served.timestamp.to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        set("content-range", format!("bytes {start}-{}/{len}", end - 1));
    }
    r
}
