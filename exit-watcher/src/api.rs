//! The watcher's HTTP API: `/status`, `/events`, `/v1/guards`, `/v1/guards/in-flight`, `/health`,
//! `/metrics`, `/openapi.json`, and the tower's routes (issue 17, `crate::tower::api`):
//! `/v1/da/chunks/{blknum}`, `/v1/da/faults` and the operator-shaped read routes.

// warp hands extracted values to handlers by value.
#![allow(clippy::needless_pass_by_value)]

use crate::watcher::{Guard, Watcher};
use serde_json::json;
use std::{convert::Infallible, sync::Arc};
use warp::{Filter, Rejection, Reply, http::StatusCode, reply::Response};

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    warp::reply::with_status(
        warp::reply::json(&json!({"error": {"code": code, "message": message.to_string()}})),
        status,
    )
    .into_response()
}

const OPENAPI: &str = r#"{"openapi":"3.0.3","info":{"title":"plasma-watcher","version":"1"},"paths":{
"/status":{"get":{"summary":"Sync heights, whether the chain is safe, the first bad block","responses":{"200":{"description":"status"}}}},
"/events":{"get":{"summary":"Byzantine events and what was done about each","responses":{"200":{"description":"events"}}}},
"/v1/guards":{"post":{"summary":"Give the watcher an exit authorization (owner, deadline, nonce, signature) so it can exit the owner's funds","responses":{"200":{"description":"guarded"},"400":{"description":"malformed"},"422":{"description":"bad signature"}}}},
"/v1/guards/in-flight":{"post":{"summary":"Hand in a payment a guarded owner signed ({\"tx\": \"0x…\"}, ENC-4) so that, if the chain turns byzantine before it is included, the watcher exits it in flight instead of exiting its inputs","responses":{"200":{"description":"kept"},"400":{"description":"malformed"},"422":{"description":"invalid against the validated UTXO set, or no guarded owner"}}}},
"/health":{"get":{"summary":"Liveness","responses":{"200":{"description":"ok"}}}},
"/metrics":{"get":{"summary":"Prometheus metrics (plasma_watcher_*)","responses":{"200":{"description":"text"}}}},
"/v1/da/chunks/{blknum}":{"parameters":[{"name":"blknum","in":"path","required":true,"schema":{"type":"integer"}}],
"put":{"summary":"A tower stores its chunk of a block (body: the chunk envelope, application/vnd.plasma.chunk, at most 64 MiB) on disk and answers a signed receipt (DA-3): {\"receipt\":{\"blknum\",\"chunkRoot\",\"index\",\"tower\",\"signature\"}}. The same header again gets the same receipt","requestBody":{"required":true,"content":{"application/vnd.plasma.chunk":{"schema":{"type":"string","format":"binary"}}}},"responses":{"200":{"description":"stored; the receipt"},"400":{"description":"Malformed, NotAChildBlock, WrongIndex, BadParams, ChunkLength, BadChunkProof, NotOperator"},"404":{"description":"NotATower"},"503":{"description":"TooFarAhead (more than 64 child blocks past the last one committed on L1, as this watcher read it: retry later), TooBusy (4 chunks are being received at once: retry later) or StorageFailure"},"408":{"description":"BodyTimeout (the body did not arrive within 30 s)"},"409":{"description":"Equivocation (another header is stored; the new one kept as evidence) or ChunkMismatch (the block is committed on L1 with another root)"},"413":{"description":"BodyTooLarge"}}},
"get":{"summary":"The stored chunk envelope of a block (what a rebuilding watcher fetches)","responses":{"200":{"description":"the envelope","content":{"application/vnd.plasma.chunk":{"schema":{"type":"string","format":"binary"}}}},"404":{"description":"NoChunk"}}}},
"/v1/da/faults":{"get":{"summary":"Availability faults noticed: {\"faults\":[{\"blknum\",\"kind\":\"BadChunkProof|NotOperator|Equivocation|ChunkMismatch|BadEncoding|TooFewChunks\",\"detail\",\"at\",\"evidence\"?}]}; evidence (two signed headers) only for an equivocation. The newest 100 are also in /status as daFaults","responses":{"200":{"description":"faults"}}}},
"/v1/blocks/{blknum}":{"get":{"summary":"A block this watcher validated (downloaded or rebuilt from towers, before the first bad block), as the operator serves it: the wire form with Accept: application/vnd.plasma.block (ranges, x-plasma-root, x-plasma-tx-count, x-plasma-l1-timestamp), else JSON {blknum, root, l1Timestamp, l1Tx: null, txs} up to 4,096 transactions","parameters":[{"name":"blknum","in":"path","required":true,"schema":{"type":"integer"}}],"responses":{"200":{"description":"the block"},"206":{"description":"a range of the wire form"},"404":{"description":"BlockUnknown"},"413":{"description":"BlockTooLargeForJson"},"416":{"description":"RangeNotSatisfiable"}}}},
"/v1/utxos":{"get":{"summary":"Unspent outputs of an owner in validated blocks, ascending position, as the operator pages them: {\"utxos\":[{utxoPos, owner, token, amount, exitData?}], \"next\"}","parameters":[{"name":"owner","in":"query","required":true,"schema":{"type":"string"}},{"name":"limit","in":"query","schema":{"type":"integer","default":1000,"maximum":10000}},{"name":"after","in":"query","schema":{"type":"string"}},{"name":"proofs","in":"query","schema":{"type":"boolean"}}],"responses":{"200":{"description":"a page"},"400":{"description":"MalformedQuery, MalformedAddress, BadLimit, MalformedPosition"}}}},
"/v1/utxos/{pos}/exit-data":{"get":{"summary":"Exit data of an unspent output of a validated block: {utxoPos, blknum, txBytes, inclusionProof, root, blockTimestamp}","parameters":[{"name":"pos","in":"path","required":true,"schema":{"type":"string"}}],"responses":{"200":{"description":"exit data"},"400":{"description":"MalformedPosition"},"404":{"description":"UnknownUtxo, BlockUnknown"}}}},
"/v1/inclusions":{"post":{"summary":"Inclusion proofs of up to 1,000 transactions of validated blocks ({\"txs\":[{blknum, txIndex}]}), as the operator answers: {\"inclusions\":[{blknum, txIndex, signedTx, txBytes, proof, root, blockTimestamp} or {blknum, txIndex, error}]}","responses":{"200":{"description":"one item per request, in order"},"400":{"description":"MalformedJson"},"413":{"description":"BatchTooLarge"}}}}}}"#;

/// All routes.
pub(crate) fn routes(
    watcher: Arc<Watcher>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let watcher_for_tower = watcher.clone();
    let with = warp::any().map(move || watcher.clone());
    let status = warp::path!("status").and(warp::get()).and(with.clone()).map(|w: Arc<Watcher>| {
        warp::reply::json(&json!({"watcher": w.address(), "status": w.status()})).into_response()
    });
    let events = warp::path!("events")
        .and(warp::get())
        .and(with.clone())
        .map(|w: Arc<Watcher>| warp::reply::json(&json!({"events": w.events()})).into_response());
    let guards = warp::path!("v1" / "guards")
        .and(warp::post())
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .and(with.clone())
        .then(|body: bytes::Bytes, w: Arc<Watcher>| async move {
            let guard: Guard = match serde_json::from_slice(&body) {
                Ok(g) => g,
                Err(e) => return error(StatusCode::BAD_REQUEST, "MalformedJson", e),
            };
            match w.add_guard(&guard).await {
                Ok(()) => warp::reply::json(&json!({"guarded": guard.owner})).into_response(),
                Err(e) if e.is_client_error() => {
                    error(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e)
                }
                Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.code(), e),
            }
        });
    let in_flight = warp::path!("v1" / "guards" / "in-flight")
        .and(warp::post())
        .and(warp::body::content_length_limit(64 * 1024))
        .and(warp::body::bytes())
        .and(with.clone())
        .map(|body: bytes::Bytes, w: Arc<Watcher>| {
            let tx = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("tx")?.as_str().map(str::to_owned))
                .and_then(|t| hex::decode(t.trim_start_matches("0x")).ok());
            let Some(tx) = tx else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "MalformedJson",
                    "expected {\"tx\": \"0x…\"}",
                );
            };
            match w.add_in_flight(&tx) {
                Ok(hash) => warp::reply::json(&json!({"kept": hash})).into_response(),
                Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, "InvalidInFlight", e),
            }
        });
    let health = warp::path!("health")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"status": "ok"})).into_response());
    let metrics = warp::path!("metrics").and(warp::get()).and(with).map(|w: Arc<Watcher>| {
        let s = w.status();
        let da = s.da.clone().map(|d| {
            format!(
                "# TYPE plasma_watcher_da_chunks_stored gauge\nplasma_watcher_da_chunks_stored {}\n\
                 # TYPE plasma_watcher_da_rebuilt_blocks_total counter\nplasma_watcher_da_rebuilt_blocks_total {}\n\
                 # TYPE plasma_watcher_da_faults_total counter\nplasma_watcher_da_faults_total {}\n",
                d.chunks_stored, d.rebuilt_total, d.faults_total
            )
        });
        let body = format!(
            "# TYPE plasma_watcher_l1_cursor gauge\nplasma_watcher_l1_cursor {}\n\
             # TYPE plasma_watcher_synced_block gauge\nplasma_watcher_synced_block {}\n\
             # TYPE plasma_watcher_chain_safe gauge\nplasma_watcher_chain_safe {}\n\
             # TYPE plasma_watcher_pending_blocks gauge\nplasma_watcher_pending_blocks {}\n\
             # TYPE plasma_watcher_events_total counter\nplasma_watcher_events_total {}\n\
             # TYPE plasma_watcher_deadline_alerts_total counter\nplasma_watcher_deadline_alerts_total {}\n",
            s.l1_cursor,
            s.synced_block,
            u8::from(s.safe),
            s.pending_blocks,
            s.events,
            w.events().iter().filter(|e| matches!(e, crate::judge::Event::DeadlineTight { .. })).count()
        ) + &da.unwrap_or_default();
        warp::reply::with_header(body, "content-type", "text/plain; version=0.0.4").into_response()
    });
    let openapi = warp::path!("openapi.json").and(warp::get()).map(|| {
        warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response()
    });
    let tower = crate::tower::api::routes(watcher_for_tower);
    status
        .or(events)
        .unify()
        .or(guards)
        .unify()
        .or(in_flight)
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
        .or(tower)
        .unify()
        .recover(|r: Rejection| async move {
            Ok::<_, Infallible>(if r.is_not_found() {
                error(StatusCode::NOT_FOUND, "NotFound", "no such route")
            } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
                error(StatusCode::PAYLOAD_TOO_LARGE, "BodyTooLarge", "request body too large")
            } else if r.find::<warp::reject::LengthRequired>().is_some() {
                error(StatusCode::LENGTH_REQUIRED, "LengthRequired", "send a Content-Length")
            } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
                error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "method not allowed")
            } else {
                error(StatusCode::BAD_REQUEST, "BadRequest", format!("{r:?}"))
            })
        })
        .unify()
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;

    #[test]
    fn the_openapi_document_is_json_and_names_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/status",
            "/v1/guards",
            "/v1/da/chunks/{blknum}",
            "/v1/da/faults",
            "/v1/blocks/{blknum}",
            "/v1/utxos",
            "/v1/utxos/{pos}/exit-data",
            "/v1/inclusions",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        assert!(paths["/v1/da/chunks/{blknum}"]["put"]["responses"]["409"].is_object());
    }
}
