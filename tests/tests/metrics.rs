//! Monitoring on the real binaries (issue 20): both `/metrics` scraped from a devnet's operator and
//! watcher, against what the documentation promises.
//!
//! - the text parses as Prometheus' exposition format (a small strict parser below: HELP and TYPE
//!   before the samples, valid names and labels, float values, no duplicate series, counters
//!   named `_total`);
//! - every metric either process exposes is documented in docs/operations.md "Monitoring" with
//!   its type, and every alert rule of docs/monitoring/alerts.yml is documented there too;
//! - every metric named by docs/monitoring/alerts.yml and the two Grafana dashboards is really
//!   exposed (a renamed metric would otherwise leave a panel empty and an alert silent), and the
//!   dashboards are importable (the Prometheus datasource an input, every panel on it);
//! - the values are the healthy ones on an honest chain (safe, no lag, an empty mempool after a
//!   block, nothing waiting), and turn when it is not: a withheld block makes `chain_safe` 0, counts
//!   the `blockWithheld` event, and the guarded owner's mass exit shows as an action sent and mined.

// Test code: setup failures should panic with the harness's message.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, B256, U256};
use plasma_e2e::{ByzantineOperator, Devnet};
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    time::Duration,
};

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

fn repo_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// A strict reader of Prometheus' text format (version 0.0.4).

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape: each family's type and every sample.
#[derive(Debug, Default)]
struct Scrape {
    types: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Scrape {
    /// The value of `name` with exactly `labels` (none: the unlabelled series).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> =
            labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.samples.iter().find(|s| s.name == name && s.labels == want).map(|s| s.value)
    }

    /// As [`Scrape::get`], panicking with the whole scrape when absent.
    fn value(&self, name: &str) -> f64 {
        self.get(name, &[]).unwrap_or_else(|| panic!("{name} not exposed: {self:#?}"))
    }

    fn families(&self) -> BTreeSet<String> {
        self.types.keys().cloned().collect()
    }
}

fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// Parses `text`, refusing anything a Prometheus server would refuse or that breaks the
/// conventions this project keeps (every family typed, counters named `_total`).
fn parse(text: &str) -> Result<Scrape, String> {
    let mut out = Scrape::default();
    let mut helped = BTreeSet::new();
    let mut seen = BTreeSet::new();
    if !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    for (i, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (word, name, tail) = (parts.next(), parts.next(), parts.next());
            let name = name.ok_or_else(|| at("comment without a metric name"))?;
            if !valid_name(name) {
                return Err(at("invalid metric name"));
            }
            match word {
                Some("HELP") if !helped.insert(name.to_owned()) => {
                    return Err(at("second HELP"));
                }
                Some("TYPE") => {
                    let kind = tail.ok_or_else(|| at("TYPE without a type"))?;
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at("unknown type"));
                    }
                    if out.samples.iter().any(|s| s.name == name) {
                        return Err(at("TYPE after samples of its family"));
                    }
                    if out.types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(at("second TYPE"));
                    }
                    if kind == "counter" && !name.ends_with("_total") {
                        return Err(at("a counter not named _total"));
                    }
                }
                _ => {}
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value"))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(at("invalid metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(r) = rest.strip_prefix('{') {
            let mut r = r;
            loop {
                if let Some(after) = r.strip_prefix('}') {
                    r = after;
                    break;
                }
                let eq = r.find("=\"").ok_or_else(|| at("label without =\""))?;
                let key = &r[..eq];
                if !valid_name(key) || key.contains(':') {
                    return Err(at("invalid label name"));
                }
                let mut value = String::new();
                let mut chars = r[eq + 2..].char_indices();
                let end = loop {
                    match chars.next() {
                        Some((j, '"')) => break eq + 2 + j + 1,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c @ ('\\' | '"'))) => value.push(c),
                            _ => return Err(at("bad escape in a label value")),
                        },
                        Some((_, c)) => value.push(c),
                        None => return Err(at("unterminated label value")),
                    }
                };
                if labels.insert(key.to_owned(), value).is_some() {
                    return Err(at("label repeated"));
                }
                r = &r[end..];
                r = r.strip_prefix(',').unwrap_or(r);
            }
            rest = r;
        }
        let rest = rest.strip_prefix(' ').ok_or_else(|| at("no space before the value"))?;
        let mut fields = rest.split(' ');
        let raw = fields.next().unwrap_or_default();
        let value = match raw {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse::<f64>().map_err(|_| at("value is not a float"))?,
        };
        if let Some(ts) = fields.next()
            && ts.parse::<i64>().is_err()
        {
            return Err(at("timestamp is not an integer"));
        }
        if fields.next().is_some() {
            return Err(at("trailing fields"));
        }
        if !out.types.contains_key(name) {
            return Err(at("sample without a TYPE"));
        }
        if !seen.insert((name.to_owned(), labels.clone())) {
            return Err(at("duplicate series"));
        }
        out.samples.push(Sample { name: name.to_owned(), labels, value });
    }
    Ok(out)
}

#[test]
fn the_parser_refuses_what_prometheus_refuses() {
    let ok =
        "# HELP a_total h\n# TYPE a_total counter\na_total{k=\"v\\\"\"} 1\n# TYPE g gauge\ng 2.5\n";
    let s = parse(ok).unwrap();
    assert_eq!(s.get("a_total", &[("k", "v\"")]), Some(1.0));
    assert_eq!(s.value("g"), 2.5);
    for bad in [
        "# TYPE g gauge\ng 1",                   // no final newline
        "g 1\n",                                 // untyped sample
        "# TYPE g gauge\ng one\n",               // not a float
        "# TYPE g gauge\ng{k=\"v} 1\n",          // unterminated label
        "# TYPE g gauge\ng 1\ng 2\n",            // duplicate series
        "# TYPE c counter\nc 1\n",               // counter not _total
        "# TYPE g gauge\ng 1\n# TYPE g gauge\n", // TYPE after samples
        "# TYPE 9g gauge\n9g 1\n",               // invalid name
        "# TYPE g gauge\ng{k=\"a\\x\"} 1\n",     // bad escape
        "# TYPE g gauge\ng 1 2 3\n",             // trailing fields
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// What the documentation and the monitoring files name.

/// Every `plasma_watcher_*` / `plasma_operator_*` token in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["plasma_watcher_", "plasma_operator_"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let tail = &rest[i..];
            let end =
                tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
            // Not inside a longer identifier (`xplasma_watcher_…`).
            let before = rest[..i].chars().next_back();
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                out.insert(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    out
}

/// docs/operations.md's "Monitoring" section.
fn monitoring_section() -> String {
    let doc = repo_file("docs/operations.md");
    let start =
        doc.find("\n## Monitoring").expect("docs/operations.md has a `## Monitoring` section");
    let rest = &doc[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].to_owned()
}

/// The rules of docs/monitoring/alerts.yml: (alert name, expression), with the structure each
/// rule must have checked (for, a severity, a summary, a runbook line).
fn alert_rules() -> Vec<(String, String)> {
    let yml = repo_file("docs/monitoring/alerts.yml");
    assert!(yml.contains("groups:"), "alerts.yml: no groups");
    let mut rules = Vec::new();
    let blocks: Vec<&str> = yml.split("- alert: ").skip(1).collect();
    assert!(!blocks.is_empty(), "alerts.yml: no rules");
    for block in blocks {
        let name = block.lines().next().unwrap().trim().to_owned();
        assert!(valid_name(&name), "alert name {name:?}");
        for key in
            ["expr:", "for:", "labels:", "severity:", "annotations:", "summary:", "runbook_url:"]
        {
            assert!(block.contains(key), "alert {name}: no `{key}`");
        }
        let severity = block.split("severity:").nth(1).unwrap().lines().next().unwrap().trim();
        assert!(
            ["page", "warning", "info"].contains(&severity),
            "alert {name}: severity {severity}"
        );
        // The expression: the `expr:` line, or the indented block under `expr: |`.
        let after = block.split("expr:").nth(1).unwrap();
        let mut lines = after.lines();
        let first = lines.next().unwrap().trim();
        let expr = if first == "|" || first == ">" {
            lines
                .take_while(|l| l.starts_with("          ") || l.trim().is_empty())
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            first.to_owned()
        };
        assert!(!expr.trim().is_empty(), "alert {name}: empty expr");
        // Brackets balance (a cheap guard against a truncated expression).
        let mut depth = Vec::new();
        for c in expr.chars() {
            match c {
                '(' | '[' | '{' => depth.push(c),
                ')' | ']' | '}' => {
                    let open = depth.pop();
                    let want = match c {
                        ')' => '(',
                        ']' => '[',
                        _ => '{',
                    };
                    assert_eq!(open, Some(want), "alert {name}: unbalanced {expr}");
                }
                _ => {}
            }
        }
        assert!(depth.is_empty(), "alert {name}: unbalanced {expr}");
        rules.push((name, expr));
    }
    rules
}

/// Every query of a Grafana dashboard, with the importability checks.
fn grafana_exprs(file: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(&repo_file(file)).unwrap();
    let inputs = doc["__inputs"].as_array().unwrap_or_else(|| panic!("{file}: no __inputs"));
    assert!(
        inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS"
            && i["type"] == "datasource"
            && i["pluginId"] == "prometheus"),
        "{file}: the Prometheus datasource is not an input"
    );
    assert!(doc["title"].as_str().is_some_and(|t| !t.is_empty()), "{file}: no title");
    assert!(doc["uid"].as_str().is_some_and(|t| !t.is_empty()), "{file}: no uid");
    let mut panels: Vec<&serde_json::Value> = Vec::new();
    for p in doc["panels"].as_array().unwrap_or_else(|| panic!("{file}: no panels")) {
        panels.push(p);
        if let Some(inner) = p["panels"].as_array() {
            panels.extend(inner);
        }
    }
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for p in panels {
        let id = p["id"].as_u64().unwrap_or_else(|| panic!("{file}: a panel without an id"));
        assert!(ids.insert(id), "{file}: panel id {id} twice");
        assert!(p["gridPos"].is_object(), "{file}: panel {id} has no gridPos");
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{file}: panel {id}'s datasource");
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{file}: panel {id}"));
        assert!(!targets.is_empty(), "{file}: panel {id} has no query");
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or_else(|| panic!("{file}: panel {id}: expr"));
            assert!(!expr.is_empty(), "{file}: panel {id}: empty expr");
            exprs.push(expr.to_owned());
        }
    }
    exprs
}

// ---------------------------------------------------------------------------------------------
// The devnet.

async fn scrape(url: &str) -> Scrape {
    let r = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "content type {ct}");
    let text = r.text().await.unwrap();
    parse(&text).unwrap_or_else(|e| panic!("{url}/metrics does not parse: {e}\n{text}"))
}

/// Scrapes `url` until `check` holds (it returns why not), for at most 30 s.
async fn scrape_until(
    net: &Devnet,
    url: &str,
    check: impl Fn(&Scrape) -> Result<(), String>,
) -> Scrape {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = scrape(url).await;
        match check(&s) {
            Ok(()) => return s,
            Err(why) if tokio::time::Instant::now() > deadline => {
                panic!("{url}/metrics: {why}\n{s:#?}\n{}", net.logs())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn expect(
    s: &Scrape,
    name: &str,
    labels: &[(&str, &str)],
    ok: impl Fn(f64) -> bool,
) -> Result<(), String> {
    match s.get(name, labels) {
        Some(v) if ok(v) => Ok(()),
        Some(v) => Err(format!("{name}{labels:?} = {v}")),
        None => Err(format!("{name}{labels:?} not exposed")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_metrics_endpoints_are_documented_dashboarded_and_sane() {
    let mut net = Devnet::start().await.unwrap();
    let (alice, bob) = (net.wallet(1).await.unwrap(), net.wallet(2).await.unwrap());
    let deposit = alice.deposit_eth(eth(2)).await.unwrap();
    alice.wait_for_output(deposit, Duration::from_secs(30)).await.unwrap();
    net.guard(&alice).await.unwrap();
    alice.sync().await.unwrap();
    let paid = alice.send(bob.address(), Address::ZERO, eth(1), U256::ZERO).await.unwrap();
    let blknum = alice.wait_for_commit(paid, Duration::from_secs(30)).await.unwrap();

    // Honest chain, settled: both processes show the healthy values.
    let operator = scrape_until(&net, &net.operator_url, |s| {
        expect(s, "plasma_operator_mempool_size", &[], |v| v == 0.0)?;
        expect(s, "plasma_operator_uncommitted_blocks", &[], |v| v == 0.0)?;
        expect(s, "plasma_operator_blocks_produced_total", &[], |v| v >= 1.0)?;
        expect(s, "plasma_operator_txs_accepted_total", &[], |v| v >= 1.0)?;
        expect(s, "plasma_operator_root_submissions_total", &[], |v| v >= 1.0)?;
        expect(s, "plasma_operator_submitter_mined_total", &[], |v| v >= 1.0)?;
        expect(s, "plasma_operator_submitter_failed_total", &[], |v| v == 0.0)?;
        expect(s, "plasma_operator_submitter_nonce", &[], |_| true)?;
        expect(s, "plasma_operator_halted", &[], |v| v == 0.0)?;
        // The devnet credits deposits at 1 confirmation: the cursor is L1's head.
        expect(s, "plasma_operator_deposits_lag_blocks", &[], |v| v <= 1.0)?;
        expect(s, "plasma_operator_deposits_uncredited", &[], |v| v == 0.0)?;
        expect(s, "plasma_operator_deposit_newest_l1_block", &[], |v| v >= 1.0)?;
        expect(s, "plasma_operator_l1_head", &[], |v| v >= 1.0)
    })
    .await;
    let watcher = scrape_until(&net, &net.watcher_url, |s| {
        expect(s, "plasma_watcher_chain_safe", &[], |v| v == 1.0)?;
        expect(s, "plasma_watcher_synced_block", &[], |v| v >= blknum as f64)?;
        expect(s, "plasma_watcher_child_head", &[], |v| v >= blknum as f64)?;
        expect(s, "plasma_watcher_child_lag_blocks", &[], |v| v == 0.0)?;
        expect(s, "plasma_watcher_child_lag_seconds", &[], |v| v == 0.0)?;
        expect(s, "plasma_watcher_pending_blocks", &[], |v| v == 0.0)?;
        expect(s, "plasma_watcher_l1_lag_blocks", &[], |v| v <= 2.0)?;
        expect(s, "plasma_watcher_l1_lag_seconds", &[], |v| v <= 5.0)?;
        expect(s, "plasma_watcher_stalled", &[], |v| v == 0.0)?;
        expect(s, "plasma_watcher_guarded_owners", &[], |v| v == 1.0)?;
        expect(s, "plasma_watcher_guarded_outputs", &[], |v| v >= 1.0)?;
        expect(s, "plasma_watcher_funding_needed_wei", &[], |v| v > 0.0)?;
        expect(s, "plasma_watcher_balance_wei", &[], |v| v > 1e18)?;
        expect(s, "plasma_watcher_underfunded", &[], |v| v == 0.0)?;
        expect(s, "plasma_watcher_events_by_kind_total", &[("kind", "blockWithheld")], |v| {
            v == 0.0
        })?;
        expect(s, "plasma_watcher_actions_failed_total", &[], |v| v == 0.0)
    })
    .await;
    assert_eq!(watcher.value("plasma_watcher_monitor"), 0.0);
    assert!(watcher.value("plasma_watcher_l1_head") >= watcher.value("plasma_watcher_l1_cursor"));

    // Every exposed metric is documented, with its type.
    let section = monitoring_section();
    for (scrape, who) in [(&operator, "operator"), (&watcher, "watcher")] {
        for (name, kind) in &scrape.types {
            let row = section
                .lines()
                .find(|l| l.starts_with('|') && l.contains(&format!("`{name}`")))
                .unwrap_or_else(|| {
                    panic!("the {who}'s {name} is not in docs/operations.md's Monitoring table")
                });
            assert!(row.contains(kind.as_str()), "{name} is a {kind}; the table says: {row}");
        }
    }

    // Every metric the alert rules and the dashboards use is exposed (conditional ones — a
    // tower's `da_*` — are documented but never named there).
    let exposed: BTreeSet<String> =
        operator.families().union(&watcher.families()).cloned().collect();
    let rules = alert_rules();
    let mut used = BTreeSet::new();
    for (name, expr) in &rules {
        assert!(section.contains(&format!("`{name}`")), "alert {name} is not documented");
        let names = metric_names(expr);
        // Only the `up` rules (the process is down) use Prometheus' own series.
        assert!(
            !names.is_empty() || expr.starts_with("up{job=\"plasma-"),
            "alert {name} uses no plasma metric: {expr}"
        );
        used.extend(names);
    }
    for file in ["docs/monitoring/grafana-watcher.json", "docs/monitoring/grafana-operator.json"] {
        let exprs = grafana_exprs(file);
        assert!(exprs.len() >= 8, "{file}: only {} queries", exprs.len());
        for e in exprs {
            used.extend(metric_names(&e));
        }
    }
    let missing: Vec<&String> = used.difference(&exposed).collect();
    assert!(missing.is_empty(), "named in alerts.yml or a dashboard, not exposed: {missing:?}");
    // The files as a whole name nothing else (a legend or description naming a gone metric).
    for file in [
        "docs/monitoring/alerts.yml",
        "docs/monitoring/grafana-watcher.json",
        "docs/monitoring/grafana-operator.json",
    ] {
        let gone: Vec<String> =
            metric_names(&repo_file(file)).difference(&exposed).cloned().collect();
        assert!(gone.is_empty(), "{file} names metrics not exposed: {gone:?}");
    }

    // The operator turns: it withholds a block. The watcher's figures say so, and its mass exit
    // of the guarded owner is an action sent and mined.
    net.kill_operator();
    let thief = plasma_spec::Signer::from_bytes(&B256::from_slice(&net.anvil.keys()[0].to_bytes()))
        .unwrap();
    let theft = ByzantineOperator::steal(deposit, eth(2), &thief, alice.domain()).unwrap();
    let bad = net.byzantine_operator().commit_withheld(vec![theft]).await.unwrap();
    let after = scrape_until(&net, &net.watcher_url, |s| {
        expect(s, "plasma_watcher_chain_safe", &[], |v| v == 0.0)?;
        expect(s, "plasma_watcher_byzantine_from", &[], |v| v == bad.blknum as f64)?;
        expect(s, "plasma_watcher_events_by_kind_total", &[("kind", "blockWithheld")], |v| {
            v == 1.0
        })?;
        // A mass exit of standard exits or, where the deployment has the batch game, a batch.
        let exits = ["massExit", "batchMassExit"]
            .iter()
            .filter_map(|k| s.get("plasma_watcher_events_by_kind_total", &[("kind", k)]))
            .sum::<f64>();
        if exits < 1.0 {
            return Err("no massExit or batchMassExit event counted".into());
        }
        expect(s, "plasma_watcher_actions_sent_total", &[], |v| v >= 1.0)?;
        expect(s, "plasma_watcher_actions_mined_total", &[], |v| v >= 1.0)
    })
    .await;
    assert!(
        after.value("plasma_watcher_events_total") > watcher.value("plasma_watcher_events_total")
    );
    assert!(after.value("plasma_watcher_sender_nonce") >= 0.0);
    drop(net);
}
