//! `plasma status`: is the operator reachable, is L1, and is the chain safe as far as the
//! configured watchers can tell. Needs none of them up: each is asked on its own, with a timeout,
//! and what does not answer is named with why.

use super::output::Report;
use alloy::providers::Provider;
use plasma_contracts::l1;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long each party gets to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Hosted RPC URLs carry API keys in their path or query: show scheme, host and port only.
pub(crate) fn redact(url: &str) -> String {
    match url.parse::<reqwest::Url>() {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let more = u.path() != "/" || u.query().is_some();
            format!("{}://{host}{port}{}", u.scheme(), if more { "/…" } else { "" })
        }
        Err(_) => "(unparseable URL)".into(),
    }
}

/// `text` with every URL in it redacted as [`redact`] does: errors from HTTP clients name the
/// URL they failed on, and a hosted RPC URL carries its API key.
pub(crate) fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("http://").into_iter().chain(rest.find("https://")).min() {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | ',' | ';' | '>'))
            .map_or(rest.len(), |e| at + e);
        // "at http://host:1: refused": the punctuation after a URL is not part of it.
        let url = rest[at..end].trim_end_matches([':', '.']);
        out.push_str(&redact(url));
        rest = &rest[at + url.len()..];
    }
    out.push_str(rest);
    out
}

async fn get_json(url: &str) -> Result<Value, String> {
    // Trusts PLASMA_CA_FILE as the wallet's L1 client does (https operators and watchers).
    let client = l1::http_client().map_err(|e| e.to_string())?;
    let resp = client.get(url).timeout(TIMEOUT).send().await.map_err(explain)?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    // Read within bounds: a hostile or broken server cannot make the CLI hold more.
    let mut resp = resp;
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(explain)? {
        if body.len() + chunk.len() > plasma_sdk::MAX_JSON_ANSWER {
            return Err(format!("an answer longer than {} bytes", plasma_sdk::MAX_JSON_ANSWER));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
}

/// Why a request failed, without the URL (named separately, redacted).
fn explain(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        let mut last = String::from("cannot connect");
        while let Some(s) = source {
            last = s.to_string();
            source = s.source();
        }
        format!("cannot connect ({last})")
    } else {
        e.without_url().to_string()
    }
}

/// One operator URL's `/v1/status`: reachable, its role (`leader`/`standby`, when it runs as
/// one of a highly available pair) and its chain view.
async fn operator_status(operator_url: &str) -> Value {
    let started = Instant::now();
    match get_json(&format!("{operator_url}/v1/status")).await {
        Ok(v) => json!({
            "url": redact(operator_url),
            "reachable": true,
            "latencyMs": started.elapsed().as_millis() as u64,
            "role": v["role"],
            "chain": v["chain"],
        }),
        Err(e) => {
            json!({"url": redact(operator_url), "reachable": false, "error": redact_urls(&e)})
        }
    }
}

/// Asks the operator (each of its URLs, when several are configured), L1 and each watcher; the
/// chain is called safe only if every watcher that answered says so and at least one answered.
pub(crate) async fn status(operator_url: &str, rpc_url: &str, watchers: &[String]) -> Report {
    let urls: Vec<&str> = operator_url
        .split(',')
        .map(|u| u.trim().trim_end_matches('/'))
        .filter(|u| !u.is_empty())
        .collect();
    let mut each = Vec::with_capacity(urls.len());
    for url in &urls {
        each.push(operator_status(url).await);
    }
    // The one shown as "operator": the leader when one says so, else the first that answered.
    let op = each
        .iter()
        .find(|v| v["role"] == "leader")
        .or_else(|| each.iter().find(|v| v["reachable"] == true))
        .or_else(|| each.first())
        .cloned()
        .unwrap_or_else(|| json!({"url": null, "reachable": false, "error": "no operator URL"}));
    let l1 = {
        let l1_url = l1::Endpoints::parse(rpc_url)
            .map_or_else(|_| redact(rpc_url), |e| e.redacted().join(","));
        let started = Instant::now();
        // One endpoint or several ("a,b"), as the wallet reaches them; each one's health shown.
        let mut health = None;
        let read = async {
            let endpoints = l1::Endpoints::parse(rpc_url).map_err(|e| e.to_string())?;
            let (provider, h) = l1::connect_reader(&endpoints, &l1::ClientOptions::from_env())
                .map_err(|e| e.to_string())?;
            health = Some(h);
            let chain_id = provider.get_chain_id().await.map_err(|e| l1::explain(&e))?;
            let head = provider.get_block_number().await.map_err(|e| l1::explain(&e))?;
            Ok::<_, String>((chain_id, head))
        };
        let answer = tokio::time::timeout(TIMEOUT, read).await;
        let endpoints = health.map(|h| h.snapshot());
        match answer {
            Ok(Ok((chain_id, head))) => json!({
                "url": l1_url,
                "reachable": true,
                "chainId": chain_id,
                "head": head,
                "latencyMs": started.elapsed().as_millis() as u64,
                "endpoints": endpoints,
            }),
            Ok(Err(e)) => {
                json!({"url": l1_url, "reachable": false, "error": redact_urls(&e)})
            }
            Err(_) => json!({"url": l1_url, "reachable": false, "error": "timed out"}),
        }
    };
    let mut views = Vec::new();
    for w in watchers {
        let w = w.trim_end_matches('/');
        views.push(match get_json(&format!("{w}/status")).await {
            Ok(v) => {
                let s = &v["status"];
                json!({
                    "url": redact(w),
                    "reachable": true,
                    "safe": s["safe"].as_bool(),
                    "syncedBlock": s["syncedBlock"],
                    "byzantineFrom": s["byzantineFrom"],
                })
            }
            Err(e) => json!({"url": redact(w), "reachable": false, "error": redact_urls(&e)}),
        });
    }
    let answered: Vec<&Value> = views.iter().filter(|v| v["reachable"] == true).collect();
    let safe = if answered.is_empty() {
        Value::Null
    } else {
        Value::Bool(answered.iter().all(|v| v["safe"] == true))
    };
    let mut text = String::new();
    let line = |v: &Value, what: &str| -> String {
        if v["reachable"] == true {
            format!("{what} {}: reachable", v["url"].as_str().unwrap_or("?"))
        } else {
            format!(
                "{what} {}: UNREACHABLE ({})",
                v["url"].as_str().unwrap_or("?"),
                v["error"].as_str().unwrap_or("?")
            )
        }
    };
    for v in if each.len() > 1 { &each[..] } else { std::slice::from_ref(&op) } {
        text.push_str(&line(v, "operator"));
        if let Some(role) = v["role"].as_str() {
            text.push_str(&format!(", {role}"));
        }
        if let Some(n) = v["chain"]["nextChildBlock"].as_u64() {
            text.push_str(&format!(" (next child block {n})"));
        }
        text.push('\n');
    }
    text.push_str(&line(&l1, "L1"));
    if l1["reachable"] == true {
        text.push_str(&format!(" (chain {}, block {})", l1["chainId"], l1["head"]));
    }
    text.push('\n');
    for v in &views {
        text.push_str(&line(v, "watcher"));
        match v["safe"].as_bool() {
            Some(true) => {
                text.push_str(&format!(", chain safe (validated to block {})", v["syncedBlock"]));
            }
            Some(false) => text.push_str(&format!(
                ", CHAIN UNSAFE from block {}: exit your outputs (plasma exit)",
                v["byzantineFrom"]
            )),
            None => {}
        }
        text.push('\n');
    }
    text.push_str(match safe {
        Value::Bool(true) => "chain safe: every watcher that answered says so",
        Value::Bool(false) => "CHAIN UNSAFE per a watcher: exit now (plasma exit)",
        _ if watchers.is_empty() => "chain safety unknown: no watcher configured (--watchers)",
        _ => "chain safety unknown: no watcher answered",
    });
    let mut report = json!({"operator": op, "l1": l1, "watchers": views, "safe": safe});
    if each.len() > 1 {
        report["operators"] = Value::Array(each);
    }
    Report::new(report, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_urls_are_not_shown() {
        assert_eq!(redact("https://eth.example.com/v2/SECRETKEY"), "https://eth.example.com/…");
        assert_eq!(
            redact("https://u:p@rpc.example.com:8443/?key=abc"),
            "https://rpc.example.com:8443/…"
        );
        assert_eq!(redact("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        assert_eq!(redact("not a url"), "(unparseable URL)");
        assert_eq!(
            redact_urls("L1: error sending request for url (https://x.io/v2/KEY): refused"),
            "L1: error sending request for url (https://x.io/…): refused"
        );
        assert_eq!(
            redact_urls("at http://127.0.0.1:9656 and https://a.b/?k=1"),
            "at http://127.0.0.1:9656 and https://a.b/…"
        );
        assert_eq!(
            redact_urls("operator unreachable at http://127.0.0.1:9656: refused."),
            "operator unreachable at http://127.0.0.1:9656: refused."
        );
    }
}
