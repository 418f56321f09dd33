//! L1 endpoints: TLS, several endpoints with failover, a health view, and errors that say why an
//! endpoint cannot be reached (issue #18). The operator, the watcher, the wallet and
//! `plasma-deploy` all reach L1 through [`connect`].
//!
//! - **TLS.** Hosted RPC endpoints are `https://`. [`http_client`] builds a reqwest client on
//!   rustls (no OpenSSL) trusting Mozilla's roots (compiled in: a minimal container without
//!   `ca-certificates` still verifies a hosted endpoint) plus the PEM certificates of
//!   `PLASMA_CA_FILE` (a private CA, a self-signed test node).
//! - **Several endpoints.** A watchtower behind one RPC provider is one outage away from missing a
//!   deadline. [`connect`] takes a list ([`Endpoints`]) and sends each request to one endpoint at a
//!   time: the first healthy one in the configured order, the next on a transport failure (refused,
//!   DNS, TLS, timeout, HTTP 401/429/5xx, a JSON-RPC rate-limit answer). One endpoint at a time,
//!   not a race of all: reads then come from one node's view of the chain while it is healthy (a
//!   lagging node winning a race could answer an older head, nonce or log range), and a
//!   transaction goes to one node after another, never to several at once.
//! - **Reads that name a block.** `eth_getLogs` up to block N and `eth_getBlockByNumber(N)` go
//!   only to an endpoint whose head is at least N (its last known head, else asked); if none has
//!   it the caller gets an error and retries. A node behind N answers such reads without error
//!   but short (the logs up to its head, a `null` block), and a follower that read the head from
//!   another endpoint would skip events or see a reorganisation that is not there (audit18 F1).
//!   Reads by tag (`latest`) or hash are answered from the node's own view or refused. Callers
//!   still must not act irreversibly on one read: the operator confirms a halt on a later poll.
//! - **Health.** [`L1Health`] records per endpoint the last outcome, head, latency and error, from
//!   real traffic and from [`L1Health::spawn_probe`]'s periodic `eth_blockNumber`. An endpoint that
//!   failed, lags the best head by more than [`MAX_LAG`] blocks, or answers another chain id than
//!   the others is unhealthy and tried last (a wrong chain: never). The operator's `/v1/status` and
//!   the watcher's `/status` show [`L1Health::snapshot`] as `l1.endpoints`.
//! - **Secrets.** Hosted endpoints carry API keys in their path, query or userinfo. Nothing here
//!   prints a URL except through [`redact_url`] (`https://host/…`): not logs, not the health
//!   view, not errors; transport errors leave [`connect`]'s provider without their URL.

use alloy::{
    network::EthereumWallet,
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::{
        client::ClientBuilder,
        json_rpc::{Id, Request, RequestPacket, ResponsePacket, ResponsePayload},
    },
    transports::{RpcError, TransportError, TransportErrorKind, TransportFut, http::Http},
};
use serde::Serialize;
use std::{
    error::Error as StdError,
    fmt,
    path::PathBuf,
    sync::{Arc, OnceLock, Weak},
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tracing::{info, warn};

pub use reqwest::Url;

/// The environment variable naming a PEM file of extra trusted certificates (CAs or self-signed
/// server certificates), added to Mozilla's roots.
pub const CA_FILE_ENV: &str = "PLASMA_CA_FILE";

/// Blocks an endpoint may lag the best head seen before it counts as unhealthy: hosted nodes
/// differ by a block or two in normal operation; more means it stopped following the chain.
pub const MAX_LAG: u64 = 4;

/// Default time to open a connection (TCP and TLS) to an endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default time for a whole request. Long enough for a large `eth_getLogs` on a hosted node;
/// beyond it the endpoint is treated as down and the next one is tried.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `std::sync::Mutex` without poisoning: a panic while holding the lock is a bug elsewhere, and
/// the health view should keep working.
#[derive(Debug, Default)]
struct Lock<T>(std::sync::Mutex<T>);

impl<T> Lock<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Why endpoints or the HTTP client could not be set up. URLs in it are redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// No endpoint at all.
    #[error("no L1 endpoint given")]
    Empty,
    /// Not a URL.
    #[error("L1 endpoint {url}: not a URL ({reason})")]
    BadUrl {
        /// The input, redacted.
        url: String,
        /// The parser's reason.
        reason: String,
    },
    /// A scheme other than http or https (`ws://` is not supported).
    #[error("L1 endpoint {url}: scheme {scheme:?} is not http or https")]
    Scheme {
        /// The URL, redacted.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// The same endpoint twice: it would count twice as a fallback.
    #[error("L1 endpoint {url} is listed twice")]
    Duplicate {
        /// The URL, redacted.
        url: String,
    },
    /// The extra CA file could not be used.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The TLS configuration or HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// One or more L1 JSON-RPC endpoints, in order of preference: parsed from `"u1,u2"` or a list;
/// http and https only, no duplicates.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoints(Vec<Url>);

impl Endpoints {
    /// Parses a comma-separated list (spaces around entries and a trailing comma allowed).
    pub fn parse(s: &str) -> Result<Self, EndpointError> {
        Self::from_list(s.split(','))
    }

    /// Parses a list of URLs; each entry may itself be comma-separated.
    pub fn from_list<S: AsRef<str>>(
        items: impl IntoIterator<Item = S>,
    ) -> Result<Self, EndpointError> {
        let mut urls = Vec::new();
        for item in items {
            for piece in item.as_ref().split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let url = Url::parse(piece).map_err(|e| EndpointError::BadUrl {
                    url: redact_str(piece),
                    reason: e.to_string(),
                })?;
                urls.push(url);
            }
        }
        Self::new(urls)
    }

    /// Checks parsed URLs.
    pub fn new(urls: Vec<Url>) -> Result<Self, EndpointError> {
        if urls.is_empty() {
            return Err(EndpointError::Empty);
        }
        for (i, url) in urls.iter().enumerate() {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(EndpointError::Scheme {
                    url: redact_url(url),
                    scheme: url.scheme().to_owned(),
                });
            }
            if url.host().is_none() {
                return Err(EndpointError::BadUrl {
                    url: redact_url(url),
                    reason: "no host".into(),
                });
            }
            if urls[..i].contains(url) {
                return Err(EndpointError::Duplicate { url: redact_url(url) });
            }
        }
        Ok(Self(urls))
    }

    /// The URLs, secrets included: for connecting only, never for printing.
    pub fn urls(&self) -> &[Url] {
        &self.0
    }

    /// The URLs as they may be shown: `scheme://host[:port]`, with `/…` when a path or query
    /// (where API keys live) was cut.
    pub fn redacted(&self) -> Vec<String> {
        self.0.iter().map(redact_url).collect()
    }

    /// Whether every endpoint is on this machine or a private network (alloy then polls for
    /// receipts every 250 ms instead of every 7 s).
    pub fn all_local(&self) -> bool {
        self.0.iter().all(|u| alloy::transports::utils::guess_local_url(u.as_str()))
    }
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.redacted()).finish()
    }
}

impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted().join(", "))
    }
}

impl std::str::FromStr for Endpoints {
    type Err = EndpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// `url` as it may be shown: no userinfo, and a path or query cut to `/…`.
pub fn redact_url(url: &Url) -> String {
    redact_str(url.as_str())
}

/// [`redact_url`] on a string that may not parse.
fn redact_str(s: &str) -> String {
    let Some(at) = s.find("://") else {
        // Not a URL: show only what cannot be a secret.
        return if s.contains(['/', '?', '@']) { "<unparsable URL>".into() } else { s.to_owned() };
    };
    let (scheme, rest) = (&s[..at], &s[at + 3..]);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let tail = &rest[end..];
    let cut = if tail.is_empty() || tail == "/" { "" } else { "/…" };
    format!("{scheme}://{host}{cut}")
}

/// Every `http(s)://` URL in `text` redacted (see [`redact_url`]): for error texts of other
/// libraries that may quote a URL.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = ["https://", "http://"].iter().filter_map(|p| rest.find(p)).min();
        let Some(start) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..start]);
        let token = &rest[start..];
        let mut end = token
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']'))
            .unwrap_or(token.len());
        // A comma-separated list of URLs (`rpc_url = "a,b"`): each one redacted on its own.
        if let Some(comma) =
            [",http://", ",https://"].iter().filter_map(|p| token[..end].find(p)).min()
        {
            end = comma;
        }
        out.push_str(&redact_str(&token[..end]));
        rest = &token[end..];
    }
}

/// How the HTTP client trusts servers and how long it waits.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// PEM files of extra trusted certificates, besides Mozilla's roots.
    pub ca_files: Vec<PathBuf>,
    /// Time to open a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request.
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            ca_files: Vec::new(),
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

impl ClientOptions {
    /// The defaults, trusting `PLASMA_CA_FILE` too when it is set.
    pub fn from_env() -> Self {
        let mut options = Self::default();
        if let Some(path) = std::env::var_os(CA_FILE_ENV).filter(|p| !p.is_empty()) {
            options.ca_files.push(path.into());
        }
        options
    }

    /// Trusts the certificates in `path` too.
    #[must_use]
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }
}

/// The rustls configuration: Mozilla's roots plus `ca_files`.
fn tls_config(ca_files: &[PathBuf]) -> Result<rustls::ClientConfig, EndpointError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in ca_files {
        let ca_err = |reason: String| EndpointError::CaFile { path: path.clone(), reason };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_err("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EndpointError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A reqwest builder with this crate's TLS (rustls, Mozilla's roots plus `options.ca_files`) and
/// nothing else: for HTTP clients with their own timeouts (the operator's tower pushes, the
/// watcher's downloads).
pub fn tls_builder(options: &ClientOptions) -> Result<reqwest::ClientBuilder, EndpointError> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls_config(&options.ca_files)?))
}

/// [`tls_builder`] with `PLASMA_CA_FILE`, for clients that cannot report an error (the SDK's
/// operator client, the watcher's tower and block downloads): an unusable CA file is logged and
/// left out. Use this rather than `reqwest::Client::builder()`: reqwest's own TLS default loads
/// the system's certificates and fails to build at all on a machine without them (a minimal
/// container), where Mozilla's roots compiled in here always verify hosted endpoints.
pub fn client_builder() -> reqwest::ClientBuilder {
    tls_builder(&ClientOptions::from_env()).unwrap_or_else(|e| {
        warn!(target: "l1", error = %e, "extra CA certificates not loaded");
        tls_builder(&ClientOptions::default()).unwrap_or_else(|_| reqwest::Client::builder())
    })
}

/// The HTTP client for L1 endpoints: rustls with Mozilla's roots and `PLASMA_CA_FILE`, the
/// default timeouts.
pub fn http_client() -> Result<reqwest::Client, EndpointError> {
    http_client_with(&ClientOptions::from_env())
}

/// [`http_client`] with explicit options (no environment read).
pub fn http_client_with(options: &ClientOptions) -> Result<reqwest::Client, EndpointError> {
    tls_builder(options)?
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .build()
        .map_err(|e| EndpointError::Client(explain(&e)))
}

/// A provider over `endpoints` signing with `wallet`, with the client of [`http_client`]
/// (`PLASMA_CA_FILE` trusted), and the endpoints' health.
pub fn connect(
    endpoints: &Endpoints,
    wallet: EthereumWallet,
) -> Result<(DynProvider, L1Health), EndpointError> {
    connect_with(endpoints, wallet, &ClientOptions::from_env())
}

/// [`connect`] with explicit client options.
pub fn connect_with(
    endpoints: &Endpoints,
    wallet: EthereumWallet,
    options: &ClientOptions,
) -> Result<(DynProvider, L1Health), EndpointError> {
    let (client, health) = rpc_client(endpoints, options)?;
    Ok((ProviderBuilder::new().wallet(wallet).connect_client(client).erased(), health))
}

/// A provider without a signer (reads only) over `endpoints`.
pub fn connect_reader(
    endpoints: &Endpoints,
    options: &ClientOptions,
) -> Result<(DynProvider, L1Health), EndpointError> {
    let (client, health) = rpc_client(endpoints, options)?;
    Ok((ProviderBuilder::new().connect_client(client).erased(), health))
}

fn rpc_client(
    endpoints: &Endpoints,
    options: &ClientOptions,
) -> Result<(alloy::rpc::client::RpcClient, L1Health), EndpointError> {
    let http = http_client_with(options)?;
    let transports = endpoints.urls().iter().map(|u| Http::with_client(http.clone(), u.clone()));
    let health = L1Health(Arc::new(Inner {
        endpoints: transports
            .zip(endpoints.urls())
            .map(|(transport, url)| Endpoint {
                url: redact_url(url),
                transport,
                state: Lock::default(),
            })
            .collect(),
        pinned_chain: OnceLock::new(),
    }));
    let service = Failover { health: health.clone() };
    Ok((ClientBuilder::default().transport(service, endpoints.all_local()), health))
}

/// What one endpoint's health is, for status pages (`l1.endpoints`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatus {
    /// The endpoint, redacted: no userinfo, path and query shown as `/…`.
    pub url: String,
    /// The last request or probe succeeded, it does not lag and it is on the right chain.
    pub healthy: bool,
    /// Its latest block number, as last seen.
    pub head: Option<u64>,
    /// The last successful request's round trip, in milliseconds.
    pub latency_ms: Option<u64>,
    /// Why it is unhealthy (unreachable and why, lagging, wrong chain), if it is.
    pub last_error: Option<String>,
    /// When it last answered (unix seconds).
    pub last_ok_unix: Option<u64>,
}

/// Per-endpoint health of a [`connect`]ed provider; cheap to clone, shared with the provider.
/// Serializes as [`L1Health::snapshot`].
#[derive(Clone, Default)]
pub struct L1Health(Arc<Inner>);

#[derive(Default)]
struct Inner {
    endpoints: Vec<Endpoint>,
    /// The chain id every endpoint must answer, when the caller knows it; else the one most
    /// endpoints answer (ties: the earliest configured).
    pinned_chain: OnceLock<u64>,
}

struct Endpoint {
    url: String,
    transport: Http<reqwest::Client>,
    state: Lock<State>,
}

#[derive(Default)]
struct State {
    /// `None` until tried.
    ok: Option<bool>,
    head: Option<u64>,
    latency_ms: Option<u64>,
    last_error: Option<String>,
    last_ok_unix: Option<u64>,
    /// Blocks behind the best endpoint at the last probe, when more than [`MAX_LAG`].
    lag: Option<u64>,
    /// Its chain id, once it answered one.
    chain_id: Option<u64>,
}

impl State {
    fn wrong_chain(&self, expected: Option<u64>) -> bool {
        matches!((self.chain_id, expected), (Some(got), Some(want)) if got != want)
    }

    fn healthy(&self, expected: Option<u64>) -> bool {
        matches!(self.ok, Some(true)) && self.lag.is_none() && !self.wrong_chain(expected)
    }
}

impl fmt::Debug for L1Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.snapshot()).finish()
    }
}

impl Serialize for L1Health {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.snapshot().serialize(s)
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl L1Health {
    /// Every endpoint's health, in the configured order.
    pub fn snapshot(&self) -> Vec<EndpointStatus> {
        let expected = self.chain_id();
        self.0
            .endpoints
            .iter()
            .map(|e| {
                let s = e.state.lock();
                let last_error = if let (true, Some(got), Some(want)) =
                    (s.wrong_chain(expected), s.chain_id, expected)
                {
                    Some(format!("wrong chain: chain id {got}, expected {want}; not used"))
                } else if let Some(lag) = s.lag {
                    Some(format!("lagging {lag} blocks behind the best endpoint"))
                } else if s.ok == Some(true) {
                    None
                } else {
                    s.last_error.clone()
                };
                EndpointStatus {
                    url: e.url.clone(),
                    healthy: s.healthy(expected),
                    head: s.head,
                    latency_ms: s.latency_ms,
                    last_error,
                    last_ok_unix: s.last_ok_unix,
                }
            })
            .collect()
    }

    /// Whether at least one endpoint is healthy.
    pub fn any_healthy(&self) -> bool {
        let expected = self.chain_id();
        self.0.endpoints.iter().any(|e| e.state.lock().healthy(expected))
    }

    /// The order to try endpoints in: healthy and untried ones in the configured order, then
    /// the unhealthy ones (a failed endpoint may have recovered; a lagging one still answers),
    /// never one on another chain.
    fn order(&self) -> Vec<usize> {
        let expected = self.chain_id();
        let mut first = Vec::new();
        let mut last = Vec::new();
        for (i, e) in self.0.endpoints.iter().enumerate() {
            let s = e.state.lock();
            if s.wrong_chain(expected) {
                continue;
            }
            if s.ok != Some(false) && s.lag.is_none() { first.push(i) } else { last.push(i) }
        }
        first.extend(last);
        first
    }

    fn record_ok(&self, i: usize, latency: Duration, seen: Option<Seen>) {
        let Some(e) = self.0.endpoints.get(i) else { return };
        let mut s = e.state.lock();
        if s.ok == Some(false) {
            info!(target: "l1", endpoint = %e.url, "L1 endpoint answers again");
        }
        s.ok = Some(true);
        s.latency_ms = Some(millis(latency));
        s.last_ok_unix = Some(unix_now());
        match seen {
            Some(Seen::Head(head)) => s.head = Some(head),
            Some(Seen::ChainId(id)) if s.chain_id != Some(id) => {
                s.chain_id = Some(id);
                drop(s);
                if let Some(want) = self.chain_id().filter(|want| *want != id) {
                    warn!(target: "l1", endpoint = %e.url, chain_id = id, expected = want, "L1 endpoint is on another chain: not used");
                }
            }
            _ => {}
        }
    }

    fn record_failure(&self, i: usize, reason: &str) {
        let Some(e) = self.0.endpoints.get(i) else { return };
        let mut s = e.state.lock();
        if s.ok != Some(false) || s.last_error.as_deref() != Some(reason) {
            warn!(target: "l1", endpoint = %e.url, reason, "L1 endpoint failed");
        }
        s.ok = Some(false);
        s.last_error = Some(reason.to_owned());
    }

    /// Asks every endpoint for its chain id (until it answered one) and head, records the
    /// outcomes, then marks endpoints lagging the best head by more than [`MAX_LAG`] blocks.
    /// Needs a tokio runtime (the endpoints are asked concurrently).
    pub async fn probe(&self) {
        let mut probes = tokio::task::JoinSet::new();
        for i in 0..self.0.endpoints.len() {
            let health = self.clone();
            probes.spawn(async move { health.probe_one(i).await });
        }
        while probes.join_next().await.is_some() {}
        let best = self.0.endpoints.iter().filter_map(|e| e.state.lock().head).max();
        for e in &self.0.endpoints {
            let mut s = e.state.lock();
            let lag = match (best, s.head, s.ok) {
                (Some(best), Some(head), Some(true)) => best.saturating_sub(head),
                _ => 0,
            };
            let was = s.lag;
            s.lag = (lag > MAX_LAG).then_some(lag);
            if s.lag.is_some() && was.is_none() {
                warn!(target: "l1", endpoint = %e.url, lag, "L1 endpoint lags the others");
            }
        }
    }

    async fn probe_one(&self, i: usize) {
        let Some(e) = self.0.endpoints.get(i) else { return };
        if e.state.lock().chain_id.is_none() {
            match call::<alloy::primitives::U64>(&e.transport, "eth_chainId").await {
                Ok((id, latency)) => self.record_ok(i, latency, Some(Seen::ChainId(id.to()))),
                Err(err) => return self.record_failure(i, &err),
            }
        }
        match call::<alloy::primitives::U64>(&e.transport, "eth_blockNumber").await {
            Ok((head, latency)) => self.record_ok(i, latency, Some(Seen::Head(head.to()))),
            Err(err) => self.record_failure(i, &err),
        }
    }

    /// Probes every `every` (the first at once) until the provider and every clone of this
    /// handle are dropped. Needs a tokio runtime.
    pub fn spawn_probe(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.0);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                Self(inner).probe().await;
                tokio::time::sleep(every).await;
            }
        })
    }

    /// Fixes the chain id every endpoint must answer (the operator's and the wallet's
    /// configured chain); an endpoint answering another is never used. Without it the chain id
    /// most endpoints answer is expected. `false` if another was pinned before.
    pub fn pin_chain_id(&self, id: u64) -> bool {
        *self.0.pinned_chain.get_or_init(|| id) == id
    }

    /// The chain id expected of every endpoint: the pinned one, else the one most endpoints
    /// answered (ties: the earliest configured), once any answered.
    pub fn chain_id(&self) -> Option<u64> {
        if let Some(id) = self.0.pinned_chain.get() {
            return Some(*id);
        }
        let ids: Vec<u64> =
            self.0.endpoints.iter().filter_map(|e| e.state.lock().chain_id).collect();
        let count = |id: u64| ids.iter().filter(|x| **x == id).count();
        // `max_by_key` keeps the last of equals: scan in reverse so the earliest wins a tie.
        ids.iter().rev().copied().max_by_key(|id| count(*id))
    }
}

/// What a successful answer told about the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Head(u64),
    ChainId(u64),
}

/// One JSON-RPC call of `method` without parameters on one transport; the error explained.
async fn call<T: serde::de::DeserializeOwned>(
    transport: &Http<reqwest::Client>,
    method: &'static str,
) -> Result<(T, Duration), String> {
    call_with(transport, method, ()).await
}

/// [`call`] with parameters.
async fn call_with<T: serde::de::DeserializeOwned, P: alloy::rpc::json_rpc::RpcSend>(
    transport: &Http<reqwest::Client>,
    method: &'static str,
    params: P,
) -> Result<(T, Duration), String> {
    use tower::Service;
    let request = Request::new(method, Id::Number(0), params)
        .serialize()
        .map_err(|e| format!("serializing {method}: {e}"))?;
    let started = Instant::now();
    let response = transport
        .clone()
        .call(RequestPacket::Single(request))
        .await
        .map_err(|e| explain(&strip_url(e)))?;
    let latency = started.elapsed();
    let ResponsePacket::Single(response) = response else {
        return Err(format!("{method}: a batch answer to one request"));
    };
    match response.payload {
        ResponsePayload::Success(raw) => serde_json::from_str(raw.get())
            .map(|v| (v, latency))
            .map_err(|e| format!("{method}: malformed answer ({e})")),
        ResponsePayload::Failure(err) => {
            Err(format!("{method}: JSON-RPC error {}: {}", err.code, redact_text(&err.message)))
        }
    }
}

/// The failover transport: one endpoint at a time, in [`L1Health::order`].
#[derive(Clone)]
struct Failover {
    health: L1Health,
}

impl tower::Service<RequestPacket> for Failover {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        let health = self.health.clone();
        Box::pin(async move { health.send(req).await })
    }
}

impl L1Health {
    async fn send(&self, req: RequestPacket) -> Result<ResponsePacket, TransportError> {
        use tower::Service;
        let order = self.order();
        if order.is_empty() {
            return Err(TransportErrorKind::custom(Unreachable {
                attempts: Vec::new(),
                source: None,
            }));
        }
        let query = observed_query(&req);
        let needs = needed_block(&req);
        let sent_tx = raw_transaction_hash(&req);
        // Whether an earlier endpoint may have taken `sent_tx` although it failed (its answer
        // lost after the request went out).
        let mut maybe_delivered = false;
        let mut attempts = Vec::new();
        let mut last_source = None;
        let mut throttled = None;
        for i in order {
            let e = &self.0.endpoints[i];
            // Logs up to a block, and a block by number, are only asked of an endpoint that has
            // that block: a node behind it answers what it has without error (the logs up to its
            // head, `null` for the block), and a follower would move past the missing logs for
            // good or take a missing block for a reorganisation (audit18 F1). No endpoint
            // having it is an error: the caller retries, never gets a short answer.
            if let Some((to, what)) = needs
                && let Err(reason) = self.has_block(i, to, what).await
            {
                attempts.push(Attempt { url: e.url.clone(), reason });
                continue;
            }
            let started = Instant::now();
            match e.transport.clone().call(req.clone()).await {
                Ok(response) => {
                    // A transaction an earlier endpoint took before its answer was lost: this one
                    // answers "already known" or "nonce too low", yet it was sent.
                    if let (Some((id, hash)), true, true) =
                        (&sent_tx, maybe_delivered, response.is_error())
                        && known_transaction(&e.transport, *hash).await
                    {
                        self.record_ok(i, started.elapsed(), None);
                        info!(target: "l1", endpoint = %e.url, %hash, "transaction already taken by an endpoint whose answer was lost");
                        return Ok(sent_response(id.clone(), *hash));
                    }
                    if let Some(why) = rate_limited(&response) {
                        self.record_failure(i, &why);
                        attempts.push(Attempt { url: e.url.clone(), reason: why });
                        throttled = Some(response);
                        continue;
                    }
                    let seen = query.and_then(|q| observe(q, &response));
                    self.record_ok(i, started.elapsed(), seen);
                    if !attempts.is_empty() {
                        info!(target: "l1", endpoint = %e.url, failed = %attempts_text(&attempts), "L1 request answered by a fallback endpoint");
                    }
                    return Ok(response);
                }
                Err(err) => {
                    let err = strip_url(err);
                    maybe_delivered |= sent_tx.is_some() && may_have_reached(&err);
                    let reason = explain(&err);
                    self.record_failure(i, &reason);
                    attempts.push(Attempt { url: e.url.clone(), reason });
                    last_source = Some(err);
                }
            }
        }
        // Every endpoint rate-limits: the caller gets the node's own answer (and retries).
        if let Some(response) = throttled {
            return Ok(response);
        }
        Err(TransportErrorKind::custom(Unreachable {
            attempts,
            source: last_source.map(|e| Box::new(e) as Box<dyn StdError + Send + Sync>),
        }))
    }
}

impl L1Health {
    /// `Ok` if endpoint `i` has block `to` (its last known head, else asked now); else why not
    /// (`what` was requested: "logs", "block").
    async fn has_block(&self, i: usize, to: u64, what: &str) -> Result<(), String> {
        let e = &self.0.endpoints[i];
        if e.state.lock().head.is_some_and(|head| head >= to) {
            return Ok(());
        }
        match call::<alloy::primitives::U64>(&e.transport, "eth_blockNumber").await {
            Ok((head, latency)) => {
                let head: u64 = head.to();
                self.record_ok(i, latency, Some(Seen::Head(head)));
                if head >= to {
                    Ok(())
                } else {
                    Err(format!("behind the requested {what} (its head {head} < block {to})"))
                }
            }
            Err(reason) => {
                self.record_failure(i, &reason);
                Err(reason)
            }
        }
    }
}

/// The block a single request needs its endpoint to have, and what was asked: the numeric
/// `toBlock` of `eth_getLogs` ("logs"), the numeric block of `eth_getBlockByNumber` ("block").
/// Tags (`latest`, …) and block hashes need nothing: a node answers them from its own view or
/// with an error.
fn needed_block(req: &RequestPacket) -> Option<(u64, &'static str)> {
    let RequestPacket::Single(r) = req else { return None };
    let number =
        |v: &serde_json::Value| u64::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok();
    match r.method() {
        "eth_getLogs" => {
            let params: serde_json::Value = serde_json::from_str(r.params()?.get()).ok()?;
            number(params.get(0)?.get("toBlock")?).map(|n| (n, "logs"))
        }
        "eth_getBlockByNumber" => {
            let params: serde_json::Value = serde_json::from_str(r.params()?.get()).ok()?;
            number(params.get(0)?).map(|n| (n, "block"))
        }
        _ => None,
    }
}

/// The id and transaction hash of a single `eth_sendRawTransaction` request.
fn raw_transaction_hash(req: &RequestPacket) -> Option<(Id, alloy::primitives::B256)> {
    let RequestPacket::Single(r) = req else { return None };
    if r.method() != "eth_sendRawTransaction" {
        return None;
    }
    let params: (alloy::primitives::Bytes,) = serde_json::from_str(r.params()?.get()).ok()?;
    Some((r.id().clone(), alloy::primitives::keccak256(&params.0)))
}

/// Whether a failed request may have reached the node (so a transaction in it may be taken):
/// everything but a failure to connect (DNS, refused, TLS handshake).
fn may_have_reached(err: &TransportError) -> bool {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_connect) {
            return false;
        }
        next = e.source();
    }
    true
}

/// Whether the node behind `transport` knows transaction `hash` (pending or mined).
async fn known_transaction(
    transport: &Http<reqwest::Client>,
    hash: alloy::primitives::B256,
) -> bool {
    call_with::<Option<serde_json::Value>, _>(transport, "eth_getTransactionByHash", (hash,))
        .await
        .is_ok_and(|(tx, _)| tx.is_some_and(|t| !t.is_null()))
}

/// The answer `eth_sendRawTransaction` gives for a taken transaction: its hash.
fn sent_response(id: Id, hash: alloy::primitives::B256) -> ResponsePacket {
    let raw = serde_json::value::to_raw_value(&hash).unwrap_or_else(|_| {
        serde_json::value::RawValue::from_string("null".into()).unwrap_or_default()
    });
    ResponsePacket::Single(alloy::rpc::json_rpc::Response {
        id,
        payload: ResponsePayload::Success(raw),
    })
}

/// A request whose answer tells the endpoint's head or chain id.
#[derive(Clone, Copy)]
enum Query {
    BlockNumber,
    LatestBlock,
    ChainId,
}

fn observed_query(req: &RequestPacket) -> Option<Query> {
    let RequestPacket::Single(r) = req else { return None };
    match r.method() {
        "eth_blockNumber" => Some(Query::BlockNumber),
        "eth_chainId" => Some(Query::ChainId),
        "eth_getBlockByNumber"
            if r.params().is_some_and(|p| {
                p.get().trim_start_matches(['[', ' ']).starts_with("\"latest\"")
            }) =>
        {
            Some(Query::LatestBlock)
        }
        _ => None,
    }
}

fn observe(query: Query, response: &ResponsePacket) -> Option<Seen> {
    #[derive(serde::Deserialize)]
    struct Numbered {
        number: alloy::primitives::U64,
    }
    let ResponsePacket::Single(r) = response else { return None };
    let ResponsePayload::Success(raw) = &r.payload else { return None };
    let number = || serde_json::from_str::<alloy::primitives::U64>(raw.get()).ok().map(|n| n.to());
    match query {
        Query::BlockNumber => number().map(Seen::Head),
        Query::ChainId => number().map(Seen::ChainId),
        Query::LatestBlock => {
            serde_json::from_str::<Numbered>(raw.get()).ok().map(|b| Seen::Head(b.number.to()))
        }
    }
}

/// A JSON-RPC answer that is a provider's rate limit (HTTP 200 or 429 with a JSON-RPC error
/// body): worth asking the next endpoint.
fn rate_limited(response: &ResponsePacket) -> Option<String> {
    let err = response.as_error()?;
    let message = err.message.to_ascii_lowercase();
    let limited = err.code == -32005
        || err.code == 429
        || message.contains("rate limit")
        || message.contains("too many requests")
        || message.contains("exceeded") && message.contains("limit");
    limited.then(|| {
        format!("rate limited (JSON-RPC error {}: {})", err.code, redact_text(&err.message))
    })
}

/// One endpoint's failure within a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The endpoint, redacted.
    pub url: String,
    /// Why it failed ([`explain`]).
    pub reason: String,
}

fn attempts_text(attempts: &[Attempt]) -> String {
    attempts.iter().map(|a| format!("{}: {}", a.url, a.reason)).collect::<Vec<_>>().join("; ")
}

/// No endpoint answered a request: each is named with why. What [`connect`]'s provider returns as
/// a transport error (`TransportErrorKind::Custom`).
#[derive(Debug)]
pub struct Unreachable {
    /// Every endpoint tried, in order.
    pub attempts: Vec<Attempt>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.attempts.as_slice() {
            [] => f.write_str("no usable L1 endpoint (every one is on another chain)"),
            [one] => write!(f, "cannot reach {}: {}", one.url, one.reason),
            many => write!(f, "no L1 endpoint answered: {}", attempts_text(many)),
        }
    }
}

impl StdError for Unreachable {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

/// The same transport error without the endpoint's URL (reqwest quotes it, API key included).
fn strip_url(err: TransportError) -> TransportError {
    match err {
        RpcError::Transport(TransportErrorKind::Custom(inner)) => {
            match inner.downcast::<reqwest::Error>() {
                Ok(e) => TransportErrorKind::custom(e.without_url()),
                Err(other) => RpcError::Transport(TransportErrorKind::Custom(other)),
            }
        }
        other => other,
    }
}

/// Why a request failed, in words, with no URL secret: `cannot reach https://host/…: DNS lookup
/// failed`, `connection refused`, `TLS: certificate not trusted (…)`, `timed out`,
/// `HTTP 401 Unauthorized …`, or the innermost cause (URLs in it redacted).
pub fn explain(err: &(dyn StdError + 'static)) -> String {
    let mut url = None;
    let mut chain: Vec<&(dyn StdError + 'static)> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(u) = e.downcast_ref::<Unreachable>() {
            return u.to_string();
        }
        if let Some(r) = e.downcast_ref::<reqwest::Error>()
            && url.is_none()
        {
            url = r.url().map(redact_url);
        }
        chain.push(e);
        // io::Error's `source` skips its payload (often another io::Error around the real
        // cause, as hyper wraps tokio-rustls's): look at the payloads themselves.
        let mut payload = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        while let Some(inner) = payload {
            let inner: &(dyn StdError + 'static) = inner;
            chain.push(inner);
            payload = inner.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        }
        next = e.source();
    }
    let reason = reason(&chain);
    match url {
        Some(url) => format!("cannot reach {url}: {reason}"),
        None => reason,
    }
}

fn reason(chain: &[&(dyn StdError + 'static)]) -> String {
    // TLS first: a certificate problem is the most specific thing to say.
    if let Some(tls) = chain.iter().find_map(|e| e.downcast_ref::<rustls::Error>()) {
        return tls_reason(tls);
    }
    for e in chain {
        if let Some(t) = e.downcast_ref::<TransportError>() {
            match t {
                RpcError::Transport(kind) => {
                    if let Some(http) = kind.as_http_error() {
                        return http_reason(http.status, &http.body);
                    }
                }
                RpcError::DeserError { text, .. } => {
                    return format!("the answer is not JSON-RPC: {}", snippet(text));
                }
                _ => {}
            }
        }
        if let Some(http) = e.downcast_ref::<alloy::transports::HttpError>() {
            return http_reason(http.status, &http.body);
        }
    }
    let timed_out = chain.iter().any(|e| {
        e.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_timeout)
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    });
    let connecting = chain
        .iter()
        .any(|e| e.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_connect));
    if timed_out {
        return if connecting { "timed out connecting".into() } else { "timed out".into() };
    }
    if chain.iter().any(|e| e.to_string().starts_with("dns error")) {
        return "DNS lookup failed (no such host, or no DNS)".into();
    }
    for e in chain {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            let said = match io.kind() {
                K::ConnectionRefused => "connection refused (nothing listens on that port)",
                K::ConnectionReset => "connection reset by the server",
                K::ConnectionAborted => "connection aborted",
                K::NotConnected | K::BrokenPipe => "the connection was closed",
                K::HostUnreachable => "host unreachable",
                K::NetworkUnreachable => "network unreachable",
                K::UnexpectedEof => "the server closed the connection",
                K::AddrNotAvailable => "address not available",
                _ => continue,
            };
            return said.into();
        }
    }
    let innermost = chain.last().map(ToString::to_string).unwrap_or_default();
    let text = redact_text(&innermost);
    if connecting { format!("could not connect: {text}") } else { text }
}

fn tls_reason(e: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "TLS: certificate not trusted (unknown issuer: a self-signed \
                certificate or a private CA; trust it with PLASMA_CA_FILE)"
                .into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "TLS: certificate not valid for this host name".into()
            }
            C::Expired | C::ExpiredContext { .. } => "TLS: certificate expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "TLS: certificate not valid yet (check this machine's clock)".into()
            }
            C::Revoked => "TLS: certificate revoked".into(),
            C::BadSignature => "TLS: certificate has a bad signature".into(),
            other => format!("TLS: certificate rejected ({other:?})"),
        },
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
            "TLS handshake failed: the server does not speak TLS there (an http:// endpoint?)"
                .into()
        }
        E::AlertReceived(alert) => format!("TLS: the server refused the handshake ({alert:?})"),
        E::NoCertificatesPresented => "TLS: the server presented no certificate".into(),
        other => format!("TLS: {other}"),
    }
}

fn http_reason(status: u16, body: &str) -> String {
    let name =
        reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    let hint = match status {
        401 | 403 => "the endpoint refused the credentials: check the API key in the URL",
        404 => "no JSON-RPC service at this path",
        429 => "rate limited by the provider",
        500..=599 => "the server failed",
        _ => "",
    };
    let mut out = format!("HTTP {status} {name}").trim_end().to_owned();
    if !hint.is_empty() {
        out.push_str(": ");
        out.push_str(hint);
    }
    let body = snippet(body);
    if !body.is_empty() {
        out.push_str(&format!(" ({body})"));
    }
    out
}

/// The start of a body, on one line, URLs redacted.
fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = one_line.chars().take(120).collect();
    let cut = if cut.len() < one_line.len() { format!("{cut}…") } else { cut };
    redact_text(&cut)
}

/// Reads the chain id through `provider` (for a start-up check with the reason when it fails).
pub async fn chain_id(provider: &DynProvider) -> Result<u64, String> {
    provider.get_chain_id().await.map_err(|e| explain(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoints_parse_and_refuse_by_name() {
        let e = Endpoints::parse("http://127.0.0.1:8545, https://eth.example/v2/KEY,").unwrap();
        assert_eq!(e.urls().len(), 2);
        assert_eq!(e.redacted(), ["http://127.0.0.1:8545", "https://eth.example/…"]);
        assert!(!format!("{e:?}{e}").contains("KEY"));
        assert_eq!(Endpoints::parse(" , "), Err(EndpointError::Empty));
        assert!(matches!(
            Endpoints::parse("ws://a:1"),
            Err(EndpointError::Scheme { scheme, .. }) if scheme == "ws"
        ));
        assert!(matches!(
            Endpoints::parse("http://a:1/x,http://a:1/x"),
            Err(EndpointError::Duplicate { .. })
        ));
        let bad = Endpoints::parse("https://h:99999/SECRET").unwrap_err();
        assert!(matches!(bad, EndpointError::BadUrl { .. }));
        assert!(!bad.to_string().contains("SECRET"), "{bad}");
        let list = Endpoints::from_list(["http://a:1", "http://b:2,http://c:3"]).unwrap();
        assert_eq!(list.urls().len(), 3);
        assert!(Endpoints::parse("http://127.0.0.1:1").unwrap().all_local());
        assert!(!Endpoints::parse("https://rpc.example.org").unwrap().all_local());
    }

    #[test]
    fn redaction_hides_paths_queries_and_userinfo() {
        let r = |s: &str| redact_url(&Url::parse(s).unwrap());
        assert_eq!(
            r("https://eth-mainnet.g.alchemy.com/v2/abc123"),
            "https://eth-mainnet.g.alchemy.com/…"
        );
        assert_eq!(r("https://rpc.example?apikey=abc"), "https://rpc.example/…");
        assert_eq!(r("https://user:pw@rpc.example:8443/"), "https://rpc.example:8443");
        assert_eq!(r("http://127.0.0.1:8545"), "http://127.0.0.1:8545");
        let text =
            "error sending request for url (https://u:p@x.io/v3/KEY?x=1): boom; and http://a:1/";
        let red = redact_text(text);
        assert_eq!(red, "error sending request for url (https://x.io/…): boom; and http://a:1");
        assert_eq!(redact_text("no url here"), "no url here");
        assert_eq!(
            redact_text("https://a:1/K1,http://b.io/v2/K2,https://c/K3"),
            "https://a:1/…,http://b.io/…,https://c/…"
        );
    }

    #[test]
    fn reads_that_name_a_block_are_recognised() {
        let req = |method: &'static str, params: serde_json::Value| {
            RequestPacket::Single(Request::new(method, Id::Number(1), params).serialize().unwrap())
        };
        let logs = |filter: serde_json::Value| needed_block(&req("eth_getLogs", json!([filter])));
        assert_eq!(logs(json!({"fromBlock": "0x1", "toBlock": "0x10"})), Some((16, "logs")));
        assert_eq!(logs(json!({"fromBlock": "0x1", "toBlock": "latest"})), None);
        assert_eq!(logs(json!({"blockHash": format!("0x{}", "ab".repeat(32))})), None);
        let block = |tag: &str| needed_block(&req("eth_getBlockByNumber", json!([tag, false])));
        assert_eq!(block("0x2a"), Some((42, "block")));
        assert_eq!(block("latest"), None);
        assert_eq!(needed_block(&req("eth_blockNumber", json!([]))), None);
    }

    #[test]
    fn http_statuses_are_named_with_a_hint() {
        assert_eq!(
            http_reason(401, ""),
            "HTTP 401 Unauthorized: the endpoint refused the credentials: check the API key in the URL"
        );
        assert!(
            http_reason(429, "{\"error\":\"slow down\"}")
                .starts_with("HTTP 429 Too Many Requests: rate limited")
        );
        assert!(http_reason(502, "").contains("the server failed"));
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = http_client_with(&ClientOptions::default().with_ca_file(&missing)).unwrap_err();
        assert!(matches!(&err, EndpointError::CaFile { path, .. } if *path == missing), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = http_client_with(&ClientOptions::default().with_ca_file(&empty)).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        http_client_with(&ClientOptions::default()).unwrap();
    }
}
