//! The watcher's HTTP API: `/status`, `/events`, `/v1/guards`, `/v1/guards/in-flight`, `/health`,
//! `/metrics`, `/openapi.json`, and the tower's routes (issue 17, `crate::tower::api`):
//! `/v1/da/chunks/{blknum}`, `/v1/da/faults` and the operator-shaped read routes; the dashboard
//! (issue 20, `crate::dashboard`): `/`, `/assets/{file}`, `/v1/dashboard`.

// warp hands extracted values to handlers by value.
#![allow(clippy::needless_pass_by_value)]

use crate::watcher::{Guard, Watcher};
use plasma_spec::routes::{Refusal, RouteTable};
use serde_json::json;
use std::{
    convert::Infallible,
    sync::{Arc, LazyLock},
};
use warp::{Filter, Rejection, Reply, http::StatusCode, reply::Response};

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    warp::reply::with_status(
        warp::reply::json(&json!({"error": {"code": code, "message": message.to_string()}})),
        status,
    )
    .into_response()
}

/// The OpenAPI document (`exit-watcher/openapi.json`), served at `/openapi.json`.
pub(crate) const OPENAPI: &str = include_str!("../openapi.json");

/// The routes of [`OPENAPI`]: `405` answers list exactly its methods in `Allow`, and a path number
/// that is not one is a `400` (`scripts/schemathesis` checks the document against the server).
static ROUTES: LazyLock<RouteTable> = LazyLock::new(|| {
    // The document is a constant checked by the tests below: it always parses.
    RouteTable::from_openapi(OPENAPI).unwrap_or_else(|e| panic!("exit-watcher/openapi.json: {e}"))
});

/// `POST /v1/guards/in-flight`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InFlightRequest {
    tx: String,
}

/// All routes.
pub(crate) fn routes(
    watcher: Arc<Watcher>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let watcher_for_tower = watcher.clone();
    let with = warp::any().map(move || watcher.clone());
    let status = warp::path!("status").and(warp::get()).and(with.clone()).map(|w: Arc<Watcher>| {
        let l1 = json!({"endpoints": w.l1_endpoints()});
        warp::reply::json(&json!({"watcher": w.address(), "l1": l1, "status": w.status()}))
            .into_response()
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
                // A monitor guards no one (issue 20): a conflict with what this server is.
                Err(e @ crate::guards::GuardError::MonitorOnly) => {
                    error(StatusCode::CONFLICT, e.code(), e)
                }
                Err(e @ crate::guards::GuardError::BadSignature { .. }) => error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    e.code(),
                    format!(
                        "{e}; if the owner signed it, check that it names this watcher ({}) as exitor and was signed for this chain's id and framework (the EIP-712 verifying contract)",
                        w.address()
                    ),
                ),
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
        .and(with)
        .map(|body: bytes::Bytes, w: Arc<Watcher>| {
            let tx = serde_json::from_slice::<InFlightRequest>(&body)
                .ok()
                .and_then(|r| hex::decode(r.tx.strip_prefix("0x").unwrap_or(&r.tx)).ok());
            let Some(tx) = tx else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "MalformedJson",
                    "expected {\"tx\": \"0x…\"} (hex, no other field)",
                );
            };
            if w.is_monitor() {
                let e = crate::guards::GuardError::MonitorOnly;
                return error(StatusCode::CONFLICT, e.code(), e);
            }
            match w.add_in_flight(&tx) {
                Ok(hash) => warp::reply::json(&json!({"kept": hash})).into_response(),
                // SIG-4's refusal ("… is owned by X but signed by Y"): a signature made under
                // another signing domain recovers an unrelated address.
                Err(e) if e.contains(" but signed by ") => error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "InvalidInFlight",
                    format!(
                        "{e}: if the owner signed it, the signature was likely made for another chain id or verifying contract than this watcher's framework"
                    ),
                ),
                Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, "InvalidInFlight", e),
            }
        });
    let health = warp::path!("health")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"status": "ok"})).into_response());
    // `/metrics` (issue 20): `crate::metrics`, every figure documented in docs/operations.md.
    let metrics = crate::metrics::route(watcher_for_tower.clone());
    let openapi = warp::path!("openapi.json").and(warp::get()).map(|| {
        warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response()
    });
    let dashboard = crate::dashboard::routes(watcher_for_tower.clone());
    let watcher_for_verdicts = watcher_for_tower.clone();
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
        .or(crate::verdicts::route(watcher_for_verdicts))
        .unify()
        .or(dashboard)
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
            ROUTES
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

/// A refusal of warp's own, typed (never a Rust `Debug` string).
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
        tracing::debug!(target: "watcher::api", rejection = ?r, "request refused");
        error(StatusCode::BAD_REQUEST, "BadRequest", "the request could not be read")
    }
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
            "/events",
            "/v1/guards/in-flight",
            "/health",
            "/metrics",
            "/openapi.json",
            "/v1/guards",
            "/v1/da/chunks/{blknum}",
            "/v1/da/faults",
            "/v1/blocks/{blknum}",
            "/v1/utxos",
            "/v1/utxos/{pos}/exit-data",
            "/v1/inclusions",
            "/",
            "/assets/{file}",
            "/v1/dashboard",
            "/v1/verdicts",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        assert!(paths["/v1/da/chunks/{blknum}"]["put"]["responses"]["409"].is_object());
        // Every JSON request body is closed (additionalProperties: false), every operation that
        // takes input documents its 400.
        let schemas = &doc["components"]["schemas"];
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap().iter().filter(|(m, _)| *m != "parameters")
            {
                let mut body = &op["requestBody"]["content"]["application/json"]["schema"];
                if let Some(name) = body["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
                    body = &schemas[name];
                }
                if !body.is_null() {
                    assert_eq!(body["additionalProperties"], false, "{method} {path}");
                }
                let takes_input = !op["requestBody"].is_null()
                    || op["parameters"].is_array()
                    || item["parameters"].is_array();
                if takes_input {
                    assert!(op["responses"]["400"].is_object(), "{method} {path}: no 400");
                }
            }
        }
    }

    #[test]
    fn the_route_table_answers_from_the_document() {
        use plasma_spec::routes::RouteMatch;
        let t = &*super::ROUTES;
        assert_eq!(
            t.find("DELETE", "/v1/da/chunks/7"),
            RouteMatch::MethodNotAllowed { allow: "GET, PUT".into() }
        );
        assert!(matches!(t.find("GET", "/v1/blocks/abc"), RouteMatch::MalformedParameter { .. }));
        assert_eq!(t.find("GET", "/status"), RouteMatch::Route);
        assert_eq!(t.find("GET", "/nothing"), RouteMatch::NoRoute);
    }
}
