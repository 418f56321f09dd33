//! The dashboard (issue 20): `GET /` serves a single page, `GET /assets/{file}` its script and
//! style, `GET /v1/dashboard` the one document the page polls every 2 s
//! ([`crate::overview::Overview`]).
//!
//! The page is built by Vite from `exit-watcher/web/` and its output, `web/dist/`, is committed
//! with fixed file names (`scripts/test` rebuilds it and fails if it differs): the binary embeds
//! those files, so a watcher needs no Node, no CDN and no file beside it at run time, and what is
//! served is exactly what was reviewed.
//!
//! The page shows strings an attacker can influence (an event's `reason` carries what a block or
//! an L1 revert said). It writes every value with `textContent`, never as HTML, and the
//! `Content-Security-Policy` sent here allows scripts and styles from this origin only, so even a
//! mistake there could not run an injected script.

// warp hands extracted values to handlers by value.
#![allow(clippy::needless_pass_by_value)]

use crate::watcher::Watcher;
use std::sync::Arc;
use warp::{Filter, Rejection, Reply, http::StatusCode, reply::Response};

/// The page.
const INDEX: &[u8] = include_bytes!("../web/dist/index.html");

/// The page's assets: name, content type, bytes (the names are fixed by `web/vite.config.ts`).
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/dist/assets/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_bytes!("../web/dist/assets/dashboard.css"),
    ),
];

/// Scripts, styles and requests from this origin only; no framing, no plugins, no inline code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn with_headers(body: Vec<u8>, content_type: &str, cache: &str) -> Response {
    let mut r = Response::new(body.into());
    let h = r.headers_mut();
    for (name, value) in [
        ("content-type", content_type),
        ("cache-control", cache),
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        if let Ok(v) = warp::http::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    r
}

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message.to_string()}});
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// The asset named exactly `file` (a fixed table: no path is ever built from the request).
fn asset(file: &str) -> Option<&'static (&'static str, &'static str, &'static [u8])> {
    ASSETS.iter().find(|(name, _, _)| *name == file)
}

/// The dashboard's routes.
pub(crate) fn routes(
    watcher: Arc<Watcher>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let page = warp::path::end()
        .and(warp::get())
        .map(|| with_headers(INDEX.to_vec(), "text/html; charset=utf-8", "no-cache"));
    let assets =
        warp::path!("assets" / String).and(warp::get()).map(|file: String| match asset(&file) {
            Some((_, content_type, bytes)) => {
                with_headers(bytes.to_vec(), content_type, "no-cache")
            }
            None => error(StatusCode::NOT_FOUND, "AssetUnknown", "no such dashboard asset"),
        });
    let with = warp::any().map(move || watcher.clone());
    let doc = warp::path!("v1" / "dashboard").and(warp::get()).and(with).then(
        |w: Arc<Watcher>| async move {
            match w.overview().await {
                Ok(doc) => {
                    let mut r = warp::reply::json(&*doc).into_response();
                    r.headers_mut()
                        .insert("cache-control", warp::http::HeaderValue::from_static("no-store"));
                    r
                }
                // L1 or the store could not be read: the page says the watcher cannot see, it
                // does not show stale figures as current. The error itself stays in the log
                // (written once per build, not per caller): an L1 client's error can carry the
                // endpoint's URL, and with it an API key.
                Err(e) => {
                    let what = match e.as_ref() {
                        crate::WatcherError::Store(_) => "the watcher's store could not be read",
                        _ => "L1 could not be read",
                    };
                    error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Unavailable",
                        format!("{what} (the watcher's log says why)"),
                    )
                }
            }
        },
    );
    page.or(assets).unify().or(doc).unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded page refers to exactly the assets served (a rebuild that renamed a file would
    /// otherwise serve a page whose script is a 404).
    #[test]
    fn the_page_loads_only_the_embedded_assets_and_no_inline_code() {
        let page = std::str::from_utf8(INDEX).unwrap();
        for (name, _, bytes) in ASSETS {
            assert!(page.contains(&format!("assets/{name}")), "index.html loads {name}");
            assert!(!bytes.is_empty());
        }
        // CSP 'self' only: an inline script or style would be blocked, and nothing may come
        // from elsewhere.
        assert!(!page.contains("<script>") && !page.contains("<style"), "no inline code");
        assert!(!page.contains("http://") && !page.contains("https://"), "no CDN");
        let js = std::str::from_utf8(ASSETS[0].2).unwrap();
        assert!(
            !js.contains("innerHTML") && !js.contains("insertAdjacentHTML"),
            "textContent only"
        );
    }

    #[test]
    fn only_the_named_assets_are_served() {
        assert!(asset("dashboard.js").is_some() && asset("dashboard.css").is_some());
        for bad in ["../Cargo.toml", "..%2fCargo.toml", "index.html", "", "dashboard.js/"] {
            assert!(asset(bad).is_none(), "{bad}");
        }
    }
}
