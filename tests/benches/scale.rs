//! The scale test of issue #15: full 2^16-transaction blocks on anvil, with the real operator and
//! watcher binaries on loopback, and what a production operator would see:
//!
//! - block bytes on the wire (binary route `application/vnd.plasma.block`, and the JSON one if it
//!   is still served);
//! - download + validate time per watcher, `--watchers` of them at once (L1 commitment → the
//!   watcher's `syncedBlock` reaching the block, polled every 25 ms), plus one watcher behind a
//!   throttled link (`--throttle-mbit`, a TCP proxy paced both ways) that must keep up;
//! - proof latency p50/p99 and proofs/s on one client thread (`/v1/utxos/{pos}/exit-data`, and
//!   `POST /v1/inclusions` in batches of 1,000 when served);
//! - a wallet's sync (`plasma_sdk::Wallet::sync`) of the outputs it got in one full block;
//! - the RSS (`/proc/<pid>/status`) of the operator and each watcher after each block, and their
//!   stores' size on disk.
//!
//! Setup (not measured): one deposit fanned out 1 → 5 per transaction over 200 owners until there
//! is an output per payment, then the operator is restarted to cut blocks only when full; each
//! block is `--tx-per-block - 1` payments (1 input, 2 outputs, 1 wei fee) plus the fee
//! transaction, signed on all cores and submitted through `/v1/transactions/batch`.
//!
//! Exits non-zero if any watcher calls a block of this honest chain withheld or invalid (or never
//! validates it), or if the setup fails. Goals are printed next to the figures; missing them is
//! reported, not a failure.
//!
//! Run: `scripts/bench-scale` (builds the release binaries first), or
//! `cargo bench -p plasma-e2e --bench scale -- [--tx-per-block 65536] [--blocks 2] [--watchers 4]
//! [--throttle-mbit 50] [--wallet-outputs 6000] [--availability-timeout 30] [--sync-timeout 120]`.
//! Short smoke run: `--tx-per-block 4096 --blocks 2 --watchers 2`.

#![allow(
    clippy::unwrap_used,
    missing_docs,
    unreachable_pub,
    clippy::cast_precision_loss,
    clippy::too_many_lines
)]

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::{DynProvider, Provider},
    signers::local::PrivateKeySigner,
};
use plasma_contracts::{Deployment, PlasmaFramework, devnet::LocalChain};
use plasma_e2e::throttle::ThrottledProxy;
use plasma_sdk::{Wallet, WalletConfig};
use plasma_spec::{Output, SignedTransaction, Signer, SigningDomain, Transaction, UtxoPos};
use serde_json::Value;
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode},
    sync::Arc,
    time::{Duration, Instant},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type R<T> = Result<T, BoxError>;

fn fail<T>(msg: impl Into<String>) -> R<T> {
    Err(msg.into().into())
}

const OWNERS: usize = 200;
const BLOCK_MEDIA_TYPE: &str = "application/vnd.plasma.block";

#[derive(Clone, Debug)]
struct Args {
    tx_per_block: usize,
    blocks: usize,
    watchers: usize,
    throttle_mbit: u64,
    wallet_outputs: usize,
    availability_timeout: u64,
    sync_timeout: u64,
    proofs: usize,
    proof_secs: u64,
    keep: bool,
    outputs: usize,
}

impl Args {
    fn parse() -> R<Self> {
        let mut a = Self {
            tx_per_block: plasma_spec::MAX_TXS_PER_BLOCK,
            blocks: 2,
            watchers: 4,
            throttle_mbit: 50,
            wallet_outputs: 6_000,
            availability_timeout: 30,
            sync_timeout: 120,
            proofs: 2_000,
            proof_secs: 20,
            keep: false,
            outputs: 2,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--bench" {
                continue; // cargo bench passes it
            }
            if flag == "--short" {
                // The smoke run: small blocks, two watchers (plus the throttled one).
                (a.tx_per_block, a.blocks, a.watchers) = (4_096, 2, 2);
                continue;
            }
            if flag == "--keep" {
                a.keep = true; // keep the temp dir (stores and logs) for a look afterwards
                continue;
            }
            let mut value = || -> R<u64> {
                it.next()
                    .ok_or_else(|| format!("{flag} needs a value"))?
                    .parse::<u64>()
                    .map_err(|e| format!("{flag}: {e}").into())
            };
            match flag.as_str() {
                "--tx-per-block" => a.tx_per_block = usize::try_from(value()?)?,
                "--blocks" => a.blocks = usize::try_from(value()?)?,
                "--watchers" => a.watchers = usize::try_from(value()?)?,
                "--throttle-mbit" => a.throttle_mbit = value()?,
                "--wallet-outputs" => a.wallet_outputs = usize::try_from(value()?)?,
                // 1: payments 1-in-1-out, so the UTXO set stays the same size (the flat-RSS
                // figure without the UTXO set's own growth); 2 (default): 1-in-2-out.
                "--outputs" => a.outputs = usize::try_from(value()?)?.clamp(1, 2),
                "--availability-timeout" => a.availability_timeout = value()?,
                "--sync-timeout" => a.sync_timeout = value()?,
                "--proofs" => a.proofs = usize::try_from(value()?)?,
                "--proof-secs" => a.proof_secs = value()?,
                other => {
                    return fail(format!(
                        "unknown flag {other} (see the header of tests/benches/scale.rs)"
                    ));
                }
            }
        }
        if !(2..=plasma_spec::MAX_TXS_PER_BLOCK).contains(&a.tx_per_block) {
            return fail("--tx-per-block must be in 2..=65536");
        }
        if a.watchers + usize::from(a.throttle_mbit > 0) > 8 {
            return fail("at most 8 watchers in all (anvil's accounts 2..=9)");
        }
        a.wallet_outputs = a.wallet_outputs.min(a.tx_per_block - 1);
        Ok(a)
    }
}

/// Where the release binaries are (`PLASMA_BIN_DIR`, else the target directory's `release`).
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PLASMA_BIN_DIR") {
        return dir.into();
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from)
        .join("release")
}

fn free_port() -> R<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process, killed when dropped.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    url: String,
    data: PathBuf,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_healthy(p: &mut Proc) -> R<()> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if http.get(format!("{}/health", p.url)).send().await.is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            return fail(format!("{} exited ({status}):\n{}", p.name, p.log_tail(40)));
        }
        if Instant::now() > deadline {
            return fail(format!("{} not healthy in time:\n{}", p.name, p.log_tail(40)));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn key_hex(chain: &LocalChain, i: usize) -> String {
    format!("0x{}", hex::encode(chain.anvil.keys()[i].to_bytes()))
}

/// Starts the operator on `port` (data in `dir/operator-data`) cutting blocks every `interval_ms`
/// or at `max_txs` pending transactions.
async fn start_operator(
    dir: &Path,
    chain: &LocalChain,
    port: u16,
    interval_ms: u64,
    max_txs: usize,
) -> R<Proc> {
    let data = dir.join("operator-data");
    let log = dir.join("operator.log");
    let config = dir.join("operator.toml");
    std::fs::write(
        &config,
        format!(
            "devnet = true\ndata_dir = {data:?}\nlisten = \"127.0.0.1:{port}\"\n\
             [l1]\nrpc_url = \"{}\"\nframework = \"{}\"\npoll_interval_ms = 50\ndeposit_confirmations = 1\n\
             [block]\ninterval_ms = {interval_ms}\nmax_txs = {max_txs}\n\
             [api]\nmax_batch = 4096\nmax_body_bytes = 33554432\nmax_mempool = 300000\n",
            chain.anvil.endpoint(),
            chain.deployment.framework,
        ),
    )?;
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
    let child = Command::new(bin_dir().join("plasma-operator"))
        .args(["run", "--config"])
        .arg(&config)
        .env("PLASMA_OPERATOR_L1_PRIVATE_KEY", key_hex(chain, 0))
        .env("RUST_LOG", "info")
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .map_err(|e| format!("plasma-operator in {}: {e} (build it first)", bin_dir().display()))?;
    let mut p =
        Proc { name: "operator".into(), child, log, url: format!("http://127.0.0.1:{port}"), data };
    wait_healthy(&mut p).await?;
    Ok(p)
}

async fn start_watcher(
    dir: &Path,
    chain: &LocalChain,
    name: &str,
    key: usize,
    operator_url: &str,
    availability_timeout: u64,
) -> R<Proc> {
    let port = free_port()?;
    let data = dir.join(format!("{name}-data"));
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log)?;
    let child = Command::new(bin_dir().join("plasma-watcher"))
        .args(["--l1.rpc-url", &chain.anvil.endpoint()])
        .args(["--l1.framework", &chain.deployment.framework.to_string()])
        .args(["--operator.url", operator_url, "--api.listen", &format!("127.0.0.1:{port}")])
        .args(["--availability-timeout", &availability_timeout.to_string()])
        .args(["--stuck-after", "5", "--l1.block-time", "1", "--poll-ms", "50", "--data-dir"])
        .arg(&data)
        .env("PLASMA_WATCHER_L1_PRIVATE_KEY", key_hex(chain, key))
        // `block obtained` (download done) is a debug line: it splits download from validation.
        .env("RUST_LOG", "info,watcher::download=debug")
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .map_err(|e| format!("plasma-watcher in {}: {e} (build it first)", bin_dir().display()))?;
    let mut p =
        Proc { name: name.into(), child, log, url: format!("http://127.0.0.1:{port}"), data };
    wait_healthy(&mut p).await?;
    Ok(p)
}

/// `(VmRSS, VmHWM)` in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds (user + system) a process used so far.
fn cpu_secs(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name's closing parenthesis: state is field 3, utime 14, stime 15.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (tick(11) + tick(12)) / 100.0 // USER_HZ is 100 on Linux
}

fn unix_ms(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Unix milliseconds of a log line's RFC 3339 timestamp (`2026-12-02T06:22:37.988753Z`, ANSI
/// colours stripped), if it has one.
fn log_line_ms(line: &str) -> Option<f64> {
    let mut plain = String::with_capacity(line.len());
    let mut esc = false;
    for ch in line.chars() {
        match (esc, ch) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => plain.push(c),
        }
    }
    let ts = plain.split_whitespace().next()?;
    let (date, time) = ts.strip_suffix('Z')?.split_once('T')?;
    let d: Vec<i64> = date.split('-').map(str::parse).collect::<Result<_, _>>().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(str::parse).collect::<Result<_, _>>().ok()?;
    let (y, m, day) = (*d.first()?, *d.get(1)?, *d.get(2)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + t.first()? * 3_600 + t.get(1)? * 60 + t.get(2)?;
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    Some((secs as f64 + frac) * 1e3)
}

/// When the watcher's log says block `blknum` was obtained (downloaded and decoded) and found
/// valid, unix milliseconds.
fn log_times(log: &Path, blknum: u64) -> (Option<f64>, Option<f64>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tag = format!("blknum\u{1b}[0m\u{1b}[2m=\u{1b}[0m{blknum} ");
    let plain_tag = format!("blknum={blknum} ");
    let find = |what: &str| {
        text.lines()
            .filter(|l| l.contains(what) && (l.contains(&tag) || l.contains(&plain_tag)))
            .find_map(log_line_ms)
    };
    (find("block obtained"), find("block valid"))
}

fn dir_mb(path: &Path) -> f64 {
    fn walk(p: &Path) -> u64 {
        let Ok(rd) = std::fs::read_dir(p) else { return 0 };
        rd.flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => std::os::unix::fs::MetadataExt::blocks(&m) * 512, // allocated, not apparent
                Err(_) => 0,
            })
            .sum()
    }
    walk(path) as f64 / 1e6
}

/// Anvil account 0 also owns the deposit the fan-out starts from.
fn signer_of(key: &B256) -> Signer {
    Signer::from_bytes(key).unwrap()
}

fn owner_key(i: usize) -> B256 {
    keccak256(format!("scale owner {i}"))
}

/// An output the bench can spend: position, owner (index into the signers), amount.
#[derive(Clone, Copy, Debug)]
struct Coin {
    pos: u128,
    owner: usize,
    amount: U256,
}

#[derive(Clone)]
struct Operator {
    http: reqwest::Client,
    url: String,
}

impl Operator {
    async fn get(&self, path: &str) -> R<(u16, Value)> {
        let r = self.http.get(format!("{}{path}", self.url)).send().await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    async fn status(&self) -> R<Value> {
        Ok(self.get("/v1/status").await?.1)
    }

    /// Every unspent output of `owner`, following `next` when the route pages.
    async fn utxos(&self, owner: Address) -> R<Vec<(u128, U256)>> {
        let mut out = Vec::new();
        let (status, first) = self.get(&format!("/v1/utxos?owner={owner}&limit=10000")).await?;
        let mut page = if status == 400 {
            self.get(&format!("/v1/utxos?owner={owner}")).await?.1 // not paginated yet
        } else {
            first
        };
        loop {
            let Some(list) = page["utxos"].as_array() else {
                return fail(format!("/v1/utxos: {page}"));
            };
            for u in list {
                let pos: u128 = u["utxoPos"].as_str().unwrap_or("").parse()?;
                let amount: U256 = u["amount"].as_str().unwrap_or("").parse()?;
                out.push((pos, amount));
            }
            match page.get("next").and_then(Value::as_str) {
                Some(next) => {
                    page = self
                        .get(&format!("/v1/utxos?owner={owner}&limit=10000&after={next}"))
                        .await?
                        .1;
                }
                None => return Ok(out),
            }
        }
    }

    /// Submits `txs` (0x-hex signed transactions) in order, in batches; all must be accepted.
    async fn submit_all(&self, txs: &[String], batch: usize) -> R<()> {
        for chunk in txs.chunks(batch) {
            let mut body = String::with_capacity(chunk.len() * (chunk[0].len() + 3) + 16);
            body.push_str("{\"txs\":[");
            for (i, t) in chunk.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                body.push('"');
                body.push_str(t);
                body.push('"');
            }
            body.push_str("]}");
            let r = self
                .http
                .post(format!("{}/v1/transactions/batch", self.url))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            let status = r.status();
            let v: Value = r.json().await?;
            if !status.is_success() {
                return fail(format!("batch refused ({status}): {v}"));
            }
            let results = v["results"].as_array().ok_or("no results")?;
            if let Some(e) = results.iter().find(|r| r.get("error").is_some()) {
                return fail(format!("a transaction was refused: {e}"));
            }
        }
        Ok(())
    }

    /// Waits until the mempool is empty and every produced block is committed.
    async fn wait_settled(&self, timeout: Duration) -> R<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status().await?;
            let c = &s["chain"];
            if c["mempoolSize"].as_u64() == Some(0)
                && c["uncommittedBlocks"].as_array().is_some_and(Vec::is_empty)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return fail(format!("operator not settled: {s}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Signs one payment per coin on all cores: `(input, [to, change], 1 wei fee)`; the recipient of
/// coin `i` is `recipient(i, coin)`. Returns 0x-hex signed transactions.
fn sign_payments(
    coins: &[Coin],
    signers: &[Signer],
    domain: &SigningDomain,
    recipient: &(dyn Fn(usize, &Coin) -> Address + Sync),
    outputs: usize,
) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let per = coins.len().div_ceil(threads).max(1);
    let mut out = vec![String::new(); coins.len()];
    std::thread::scope(|s| {
        for (chunk_i, (cs, os)) in coins.chunks(per).zip(out.chunks_mut(per)).enumerate() {
            s.spawn(move || {
                for (j, (c, o)) in cs.iter().zip(os.iter_mut()).enumerate() {
                    let i = chunk_i * per + j;
                    let half = c.amount / U256::from(2);
                    let change = c.amount - half - U256::from(1);
                    let tx = Transaction::payment(
                        &[UtxoPos::from_u128(c.pos).unwrap()],
                        if outputs == 1 {
                            vec![Output::new(
                                recipient(i, c),
                                Address::ZERO,
                                c.amount - U256::from(1),
                            )]
                        } else {
                            vec![
                                Output::new(recipient(i, c), Address::ZERO, half),
                                Output::new(signers[c.owner].address(), Address::ZERO, change),
                            ]
                        },
                        B256::ZERO,
                    );
                    let sig = signers[c.owner].sign_tx(domain, &tx);
                    *o = format!(
                        "0x{}",
                        hex::encode(SignedTransaction::new(tx, vec![sig]).encode())
                    );
                }
            });
        }
    });
    out
}

/// Signs the fan-out: each coin split in 5 equal outputs to the next owners in turn (no fee).
fn sign_fanout(
    coins: &[Coin],
    signers: &[Signer],
    domain: &SigningDomain,
    next_owner: &mut usize,
) -> Vec<String> {
    coins
        .iter()
        .map(|c| {
            let part = c.amount / U256::from(5);
            let outputs = (0..5)
                .map(|_| {
                    let o = *next_owner % OWNERS;
                    *next_owner += 1;
                    Output::new(signers[o].address(), Address::ZERO, part)
                })
                .collect();
            let tx =
                Transaction::payment(&[UtxoPos::from_u128(c.pos).unwrap()], outputs, B256::ZERO);
            let sig = signers[c.owner].sign_tx(domain, &tx);
            format!("0x{}", hex::encode(SignedTransaction::new(tx, vec![sig]).encode()))
        })
        .collect()
}

/// Every output of the bench's owners (signers `0..=OWNERS`) the operator lists, by position.
async fn pool(op: &Operator, signers: &[Signer]) -> R<Vec<Coin>> {
    let mut coins = Vec::new();
    for (owner, s) in signers.iter().enumerate() {
        for (pos, amount) in op.utxos(s.address()).await? {
            coins.push(Coin { pos, owner, amount });
        }
    }
    coins.sort_by_key(|c| c.pos);
    Ok(coins)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// What one watcher did with one block.
#[derive(Clone, Debug)]
enum Verdict {
    /// Validated this long after the L1 commitment.
    Valid(Duration),
    /// Reported the block (or an earlier one) bad: its events.
    Bad(String),
    /// Never validated it within the wait.
    TimedOut,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Valid(d) => write!(f, "{:.2} s", d.as_secs_f64()),
            Self::Bad(_) => f.write_str("BYZANTINE"),
            Self::TimedOut => f.write_str("timeout"),
        }
    }
}

async fn watcher_state(http: &reqwest::Client, url: &str) -> R<(Value, Value)> {
    let s: Value = http.get(format!("{url}/status")).send().await?.json().await?;
    let e: Value = http.get(format!("{url}/events")).send().await?.json().await?;
    Ok((s, e))
}

fn bad_events(events: &Value) -> Vec<Value> {
    events["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| matches!(e["kind"].as_str(), Some("blockWithheld" | "invalidBlock")))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Polls a watcher until it validated `blknum`, reported something bad, or `wait` ran out.
async fn await_watcher(url: String, blknum: u64, committed: Instant, wait: Duration) -> Verdict {
    let http = reqwest::Client::new();
    loop {
        if let Ok((s, e)) = watcher_state(&http, &url).await {
            let bad = bad_events(&e);
            if !bad.is_empty() || s["status"]["safe"] == Value::Bool(false) {
                return Verdict::Bad(format!("{} {}", s["status"], Value::Array(bad)));
            }
            if s["status"]["syncedBlock"].as_u64().is_some_and(|b| b >= blknum) {
                return Verdict::Valid(committed.elapsed());
            }
        }
        if committed.elapsed() > wait {
            return Verdict::TimedOut;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One full block's row.
struct BlockRow {
    blknum: u64,
    txs: usize,
    sign: Duration,
    submit: Duration,
    to_l1: Duration,
    verdicts: Vec<Verdict>,
    /// Per watcher: (download ms, validate ms) from its log, and CPU seconds used for the block.
    split: Vec<(Option<f64>, Option<f64>, f64)>,
    operator_rss: f64,
    utxos: u64,
    watcher_rss: Vec<f64>,
    operator_disk: f64,
    watcher_disk: f64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args).await {
        Ok(failures) if failures.is_empty() => ExitCode::SUCCESS,
        Ok(failures) => {
            eprintln!("\nFAILED — an honest chain was judged byzantine or not followed:");
            for f in failures {
                eprintln!("- {f}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("scale bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn step(t0: Instant, what: &str) {
    eprintln!("[{:7.1} s] {what}", t0.elapsed().as_secs_f64());
}

async fn run(args: &Args) -> R<Vec<String>> {
    let t0 = Instant::now();
    let started_at = std::time::SystemTime::now();
    let dir = tempfile::Builder::new().prefix("plasma-scale-").tempdir()?;
    step(t0, &format!("{args:?}, data in {}", dir.path().display()));
    // A challenge period long enough for any availability timeout the flags ask for (WATCH-12:
    // the watcher refuses timings over half the period); no exit is started here.
    let period = 3_600.max(4 * (args.availability_timeout + 10));
    let chain = LocalChain::start_with(plasma_contracts::devnet::anvil(), period).await?;
    let Deployment { framework: framework_addr, .. } = chain.deployment;
    let provider: DynProvider = chain.provider.clone();
    let framework = PlasmaFramework::new(framework_addr, provider.clone());
    let domain = SigningDomain::new(chain.anvil.chain_id(), framework_addr);

    // Signers: the 200 owners, then the depositor (anvil account 0), then the wallet.
    let mut signers: Vec<Signer> = (0..OWNERS).map(|i| signer_of(&owner_key(i))).collect();
    signers.push(signer_of(&B256::from_slice(&chain.anvil.keys()[0].to_bytes())));
    let depositor = OWNERS;
    let wallet_key = keccak256("scale wallet");
    let wallet_address = signer_of(&wallet_key).address();
    let signers = Arc::new(signers);

    let port = free_port()?;
    let mut operator = start_operator(dir.path(), &chain, port, 100, 65_535).await?;
    let op = Operator { http: reqwest::Client::new(), url: operator.url.clone() };

    // Watchers: `--watchers` on loopback, then one behind the throttled link.
    let mut watchers = Vec::new();
    for i in 0..args.watchers {
        watchers.push(
            start_watcher(
                dir.path(),
                &chain,
                &format!("watcher-{}", i + 1),
                9 - i,
                &operator.url,
                args.availability_timeout,
            )
            .await?,
        );
    }
    let _proxy = if args.throttle_mbit > 0 {
        let proxy = ThrottledProxy::start(
            format!("127.0.0.1:{port}").parse()?,
            args.throttle_mbit * 1_000_000,
        )
        .await?;
        watchers.push(
            start_watcher(
                dir.path(),
                &chain,
                &format!("watcher-{}mbit", args.throttle_mbit),
                9 - args.watchers,
                &proxy.url(),
                args.availability_timeout,
            )
            .await?,
        );
        Some(proxy)
    } else {
        None
    };
    step(t0, &format!("anvil, operator and {} watchers up", watchers.len()));

    // Fund: one deposit, fanned out until there is an output per payment of the first block.
    let payments = args.tx_per_block - 1;
    let per_output = U256::from(1u64) << 44; // halves at every block: room for 40 blocks
    let mut levels = 0u32;
    while 5usize.pow(levels) < payments {
        levels += 1;
    }
    let total = per_output * U256::from(5u64.pow(levels));
    let deposit = Transaction::deposit(signers[depositor].address(), Address::ZERO, total).encode();
    framework.depositEth(deposit.into()).value(total).send().await?.get_receipt().await?;
    let mut coins = Vec::new();
    for _ in 0..200 {
        provider.raw_request::<_, Value>("anvil_mine".into(), (1u64,)).await?;
        coins = pool(&op, &signers).await?;
        if !coins.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if coins.is_empty() {
        return fail("the deposit was never credited");
    }
    let fan_start = Instant::now();
    let mut next_owner = 0;
    let mut fan_txs = 0;
    // With one output per payment the wallet's outputs leave the pool for good: fan out more.
    let needed = payments + if args.outputs == 1 { args.wallet_outputs } else { 0 };
    while coins.len() < needed {
        let m = coins.len().min((needed - coins.len()).div_ceil(4));
        let txs = sign_fanout(&coins[..m], &signers, &domain, &mut next_owner);
        fan_txs += txs.len();
        op.submit_all(&txs, 4096).await?;
        op.wait_settled(Duration::from_secs(300)).await?;
        coins = pool(&op, &signers).await?;
    }
    step(
        t0,
        &format!(
            "fan-out: {} outputs over {OWNERS} owners from {fan_txs} transactions in {:.1} s",
            coins.len(),
            fan_start.elapsed().as_secs_f64()
        ),
    );

    // From now on the operator cuts a block only when it is full.
    drop(operator);
    operator = start_operator(dir.path(), &chain, port, 3_600_000, payments).await?;
    let rss_before: Vec<(f64, f64)> =
        std::iter::once(operator.pid()).chain(watchers.iter().map(Proc::pid)).map(rss_mb).collect();

    // Full blocks.
    let mut rows: Vec<BlockRow> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut failed_watchers = vec![false; watchers.len()];
    let mut wallet_block = None;
    for b in 0..args.blocks {
        if coins.len() < payments {
            return fail(format!("only {} spendable outputs for {payments} payments", coins.len()));
        }
        let spent: Vec<Coin> = coins.drain(..payments).collect();
        let cpu_before: Vec<f64> = watchers.iter().map(|w| cpu_secs(w.pid())).collect();
        let sign_start = Instant::now();
        let wallet_outputs = if b == 0 { args.wallet_outputs } else { 0 };
        let s2 = signers.clone();
        let recipient = move |i: usize, c: &Coin| {
            if i < wallet_outputs { wallet_address } else { s2[(c.owner + 1) % OWNERS].address() }
        };
        let txs = {
            let (spent, signers, domain) = (spent.clone(), signers.clone(), domain.clone());
            let outputs = args.outputs;
            tokio::task::spawn_blocking(move || {
                sign_payments(&spent, &signers, &domain, &recipient, outputs)
            })
            .await?
        };
        let sign = sign_start.elapsed();
        let blknum =
            op.status().await?["chain"]["nextChildBlock"].as_u64().ok_or("no nextChildBlock")?;
        step(
            t0,
            &format!("block {blknum}: {payments} payments signed in {:.1} s", sign.as_secs_f64()),
        );
        let submit_start = Instant::now();
        op.submit_all(&txs, 4096).await?;
        drop(txs);
        let submit = submit_start.elapsed();
        // The L1 commitment: the framework's next child block moves past ours.
        let deadline = Instant::now() + Duration::from_secs(600);
        while framework.nextChildBlock().call().await? <= blknum {
            if Instant::now() > deadline {
                return fail(format!("block {blknum} never committed:\n{}", operator.log_tail(30)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let committed = Instant::now();
        let committed_ms = unix_ms(std::time::SystemTime::now());
        let to_l1 = committed - submit_start - submit;
        step(
            t0,
            &format!(
                "block {blknum}: submitted in {:.1} s, root on L1 {:.1} s after the last submit",
                submit.as_secs_f64(),
                to_l1.as_secs_f64()
            ),
        );
        let wait = Duration::from_secs(args.availability_timeout + 120);
        let tasks: Vec<_> = watchers
            .iter()
            .zip(&failed_watchers)
            .map(|(w, failed)| {
                let (url, failed) = (w.url.clone(), *failed);
                tokio::spawn(async move {
                    if failed {
                        Verdict::TimedOut
                    } else {
                        await_watcher(url, blknum, committed, wait).await
                    }
                })
            })
            .collect();
        let mut verdicts = Vec::new();
        for t in tasks {
            verdicts.push(t.await?);
        }
        for (i, v) in verdicts.iter().enumerate() {
            if failed_watchers[i] {
                continue;
            }
            match v {
                Verdict::Valid(_) => {}
                Verdict::Bad(why) => {
                    failed_watchers[i] = true;
                    failures.push(format!(
                        "{} judged honest block {blknum} bad: {why}\n{}",
                        watchers[i].name,
                        watchers[i].log_tail(15)
                    ));
                }
                Verdict::TimedOut => {
                    failed_watchers[i] = true;
                    failures.push(format!(
                        "{} did not validate block {blknum} within {} s\n{}",
                        watchers[i].name,
                        wait.as_secs(),
                        watchers[i].log_tail(15)
                    ));
                }
            }
        }
        step(
            t0,
            &format!(
                "block {blknum}: watchers {}",
                verdicts.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            ),
        );
        rows.push(BlockRow {
            blknum,
            txs: payments + 1,
            sign,
            submit,
            to_l1,
            verdicts,
            operator_rss: rss_mb(operator.pid()).0,
            split: watchers
                .iter()
                .zip(&cpu_before)
                .map(|(w, before)| {
                    let (obtained, valid) = log_times(&w.log, blknum);
                    (
                        obtained.map(|o| o - committed_ms),
                        obtained.zip(valid).map(|(o, v)| v - o),
                        cpu_secs(w.pid()) - before,
                    )
                })
                .collect(),
            watcher_rss: watchers.iter().map(|w| rss_mb(w.pid()).0).collect(),
            operator_disk: dir_mb(&operator.data),
            utxos: op.status().await?["chain"]["utxoCount"].as_u64().unwrap_or(0),
            watcher_disk: watchers.iter().map(|w| dir_mb(&w.data)).sum::<f64>()
                / watchers.len().max(1) as f64,
        });
        if b == 0 {
            wallet_block = Some(blknum);
        }
        // The outputs of this block, in submission order (one batch stream into an empty
        // mempool, so transaction i is at index i): the recipients' then the change.
        let mut created = Vec::with_capacity(2 * payments);
        for (i, c) in spent.iter().enumerate() {
            let half = c.amount / U256::from(2);
            if args.outputs == 1 {
                if i >= wallet_outputs {
                    created.push(Coin {
                        pos: UtxoPos::new(blknum, u16::try_from(i)?, 0)?.to_u128(),
                        owner: (c.owner + 1) % OWNERS,
                        amount: c.amount - U256::from(1),
                    });
                }
                continue;
            }
            if i >= wallet_outputs {
                created.push(Coin {
                    pos: UtxoPos::new(blknum, u16::try_from(i)?, 0)?.to_u128(),
                    owner: (c.owner + 1) % OWNERS,
                    amount: half,
                });
            }
            created.push(Coin {
                pos: UtxoPos::new(blknum, u16::try_from(i)?, 1)?.to_u128(),
                owner: c.owner,
                amount: c.amount - half - U256::from(1),
            });
        }
        coins.extend(created);
    }
    // Check the prediction of positions once, against the operator's list for one owner.
    let listed: std::collections::BTreeSet<u128> =
        op.utxos(signers[0].address()).await?.into_iter().map(|(p, _)| p).collect();
    let predicted: std::collections::BTreeSet<u128> =
        coins.iter().filter(|c| c.owner == 0).map(|c| c.pos).collect();
    if listed != predicted {
        return fail(format!(
            "the operator lists {} outputs of owner 0, the bench predicted {}",
            listed.len(),
            predicted.len()
        ));
    }
    let last = rows.last().map(|r| r.blknum).ok_or("no blocks")?;

    // Block bytes on the wire.
    step(t0, "wire sizes");
    let wire = wire_sizes(&op, last).await?;

    // Proofs, one client thread.
    step(t0, "proofs");
    let change: Vec<u128> = (0..payments)
        .step_by((payments / args.proofs.max(1)).max(1))
        .take(args.proofs)
        .map(|i| {
            UtxoPos::new(last, u16::try_from(i).unwrap_or(0), if args.outputs == 1 { 0 } else { 1 })
                .map(|p| p.to_u128())
        })
        .collect::<Result<_, _>>()?;
    let proofs = proof_latency(&op, &change, Duration::from_secs(args.proof_secs)).await?;
    let batch = inclusions(&op, last, payments, Duration::from_secs(args.proof_secs)).await?;

    // Wallet sync.
    step(t0, "wallet sync");
    let sync = if let Some(blk) = wallet_block.filter(|_| args.wallet_outputs > 0) {
        Some(wallet_sync(&chain, &operator.url, dir.path(), wallet_key, blk, args).await?)
    } else {
        None
    };

    // Final verdicts from every watcher.
    let http = reqwest::Client::new();
    for (i, w) in watchers.iter().enumerate() {
        let (s, e) = watcher_state(&http, &w.url).await?;
        let bad = bad_events(&e);
        if !failed_watchers[i] && (!bad.is_empty() || s["status"]["safe"] == Value::Bool(false)) {
            failures.push(format!("{}: {} {}", w.name, s["status"], Value::Array(bad)));
        }
    }

    let report = report(
        args,
        &rows,
        &rss_before,
        &watchers,
        &wire,
        &proofs,
        &batch,
        sync.as_ref(),
        fan_txs,
        coins.len(),
        t0.elapsed(),
        started_at,
    );
    println!("{report}");
    if args.keep {
        drop((watchers, operator));
        eprintln!("kept {}", dir.keep().display());
    }
    Ok(failures)
}

struct Wire {
    binary: Option<(u64, Duration, String)>,
    json: Option<(u64, Duration)>,
    json_refused: Option<u16>,
}

async fn wire_sizes(op: &Operator, blknum: u64) -> R<Wire> {
    let url = format!("{}/v1/blocks/{blknum}", op.url);
    let start = Instant::now();
    let mut r = op.http.get(&url).header("accept", BLOCK_MEDIA_TYPE).send().await?;
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let is_binary = ctype.starts_with(BLOCK_MEDIA_TYPE);
    let encoding = r
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_owned();
    let mut bytes = 0u64;
    let mut head = Vec::with_capacity(65);
    while let Some(chunk) = r.chunk().await? {
        bytes += chunk.len() as u64;
        if head.len() < 65 {
            head.extend_from_slice(&chunk[..chunk.len().min(65 - head.len())]);
        }
    }
    let first = (bytes, start.elapsed());
    // The wire header (contract §1): magic 4, encoding 1, blknum 8, root 32, count 4, raw_len 8,
    // body_len 8, big-endian.
    let described = if is_binary && head.len() == 65 && &head[..4] == b"PLB1" {
        let be =
            |r: std::ops::Range<usize>| head[r].iter().fold(0u64, |a, b| a << 8 | u64::from(*b));
        format!(
            "{}, {} txs, frames {:.1} MB → body {:.1} MB, HTTP content-encoding {encoding}",
            match head[4] {
                0 => "plain".to_owned(),
                1 => "zlib".to_owned(),
                e => format!("encoding {e}"),
            },
            be(45..49),
            be(49..57) as f64 / 1e6,
            be(57..65) as f64 / 1e6,
        )
    } else {
        format!("HTTP content-encoding {encoding}")
    };
    let binary = if is_binary { Some((first.0, first.1, described)) } else { None };
    // The JSON form, when still served (a binary-less operator answered JSON above already).
    let (json, json_refused) = if is_binary {
        let start = Instant::now();
        let mut r = op.http.get(&url).send().await?;
        if r.status().is_success() {
            let mut bytes = 0u64;
            while let Some(chunk) = r.chunk().await? {
                bytes += chunk.len() as u64;
            }
            (Some((bytes, start.elapsed())), None)
        } else {
            (None, Some(r.status().as_u16()))
        }
    } else {
        (Some(first), None)
    };
    Ok(Wire { binary, json, json_refused })
}

struct Proofs {
    n: usize,
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

async fn proof_latency(op: &Operator, positions: &[u128], budget: Duration) -> R<Proofs> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
    let mut lat = Vec::new();
    let start = Instant::now();
    for pos in positions {
        let t = Instant::now();
        let r = http.get(format!("{}/v1/utxos/{pos}/exit-data", op.url)).send().await?;
        let status = r.status();
        let body = r.bytes().await?;
        if !status.is_success() {
            return fail(format!("exit-data {pos}: {status} {}", String::from_utf8_lossy(&body)));
        }
        lat.push(t.elapsed());
        if start.elapsed() > budget {
            break;
        }
    }
    let total = start.elapsed();
    lat.sort();
    Ok(Proofs {
        n: lat.len(),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        per_sec: lat.len() as f64 / total.as_secs_f64(),
    })
}

/// `POST /v1/inclusions`, 1,000 transactions a call, one client thread; `None` if not served.
async fn inclusions(op: &Operator, blknum: u64, txs: usize, budget: Duration) -> R<Option<Proofs>> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(1).build()?;
    let mut lat = Vec::new();
    let mut items = 0;
    let start = Instant::now();
    for first in (0..txs).step_by(1_000) {
        let body = serde_json::json!({
            "txs": (first..(first + 1_000).min(txs))
                .map(|i| serde_json::json!({"blknum": blknum, "txIndex": i}))
                .collect::<Vec<_>>()
        });
        let t = Instant::now();
        let r = http.post(format!("{}/v1/inclusions", op.url)).json(&body).send().await?;
        let status = r.status();
        if status.as_u16() == 404 || status.as_u16() == 405 {
            return Ok(None);
        }
        let v: Value = r.json().await?;
        if !status.is_success() {
            return fail(format!("inclusions: {status} {v}"));
        }
        let got = v["inclusions"].as_array().map_or(0, Vec::len);
        if let Some(e) =
            v["inclusions"].as_array().and_then(|a| a.iter().find(|i| i.get("error").is_some()))
        {
            return fail(format!("inclusions: an item failed: {e}"));
        }
        items += got;
        lat.push(t.elapsed());
        if start.elapsed() > budget {
            break;
        }
    }
    let total = start.elapsed();
    lat.sort();
    Ok(Some(Proofs {
        n: items,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        per_sec: items as f64 / total.as_secs_f64(),
    }))
}

struct SyncRun {
    expected: usize,
    stored: usize,
    took: Duration,
    finished: bool,
    report: String,
}

async fn wallet_sync(
    chain: &LocalChain,
    operator_url: &str,
    dir: &Path,
    key: B256,
    blknum: u64,
    args: &Args,
) -> R<SyncRun> {
    let config = WalletConfig {
        l1_rpc_url: chain.anvil.endpoint(),
        operator_url: operator_url.to_owned(),
        framework: chain.deployment.framework,
        chain_id: Some(chain.anvil.chain_id()),
        store_path: dir.join("wallet.redb"),
    };
    let signer = PrivateKeySigner::from_bytes(&key)?;
    let wallet = Arc::new(Wallet::connect(signer, &config).await?);
    let start = Instant::now();
    let w = wallet.clone();
    let task = tokio::spawn(async move { w.sync().await });
    let (finished, report) =
        match tokio::time::timeout(Duration::from_secs(args.sync_timeout), task).await {
            Ok(Ok(Ok(r))) => (true, format!("{r:?}")),
            Ok(Ok(Err(e))) => return fail(format!("wallet sync: {e}")),
            Ok(Err(e)) => return fail(format!("wallet sync panicked: {e}")),
            Err(_) => (false, "stopped at the timeout".into()),
        };
    let took = start.elapsed();
    let stored = wallet
        .outputs()?
        .iter()
        .filter(|o| UtxoPos::from_u128(o.utxo_pos).is_ok_and(|p| p.blknum() == blknum))
        .count();
    Ok(SyncRun { expected: args.wallet_outputs, stored, took, finished, report })
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

#[allow(clippy::too_many_arguments)]
fn report(
    args: &Args,
    rows: &[BlockRow],
    rss_before: &[(f64, f64)],
    watchers: &[Proc],
    wire: &Wire,
    proofs: &Proofs,
    batch: &Option<Proofs>,
    sync: Option<&SyncRun>,
    fan_txs: usize,
    coins_left: usize,
    total: Duration,
    started_at: std::time::SystemTime,
) -> String {
    let mut s = String::new();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let date = started_at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let _ = writeln!(
        s,
        "\n## scale bench: {} blocks of {} transactions (1-in-{}-out payments), {} watchers on loopback{} ({cores} cores, unix time {date}, {:.0} s in all)\n",
        rows.len(),
        args.tx_per_block,
        args.outputs,
        args.watchers,
        if args.throttle_mbit > 0 {
            format!(" + 1 behind {} Mbit/s", args.throttle_mbit)
        } else {
            String::new()
        },
        total.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "Setup: {fan_txs} fan-out transactions; {coins_left} spendable outputs left.\n"
    );
    // Per block.
    let names: Vec<&str> = watchers.iter().map(|w| w.name.as_str()).collect();
    let _ = writeln!(
        s,
        "| block | txs | UTXOs after | sign | submit (tx/s) | last submit → root on L1 | {} | operator RSS | watcher RSS (each) | operator disk | watcher disk (avg) |",
        names.join(" | ")
    );
    let _ = writeln!(s, "|{}", "---:|".repeat(10 + names.len()));
    let _ = writeln!(
        s,
        "| before | | | | | | {} | {:.0} MB | {} | | |",
        vec![""; names.len()].join(" | "),
        rss_before[0].0,
        rss_before[1..].iter().map(|r| format!("{:.0}", r.0)).collect::<Vec<_>>().join(" / ")
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} s | {:.1} s ({:.0}) | {:.1} s | {} | {:.0} MB | {} MB | {:.0} MB | {:.0} MB |",
            r.blknum,
            r.txs,
            r.utxos,
            r.sign.as_secs_f64(),
            r.submit.as_secs_f64(),
            (r.txs - 1) as f64 / r.submit.as_secs_f64(),
            r.to_l1.as_secs_f64(),
            r.verdicts
                .iter()
                .zip(&r.split)
                .map(|(v, (dl, val, cpu))| match (v, dl, val) {
                    (Verdict::Valid(_), Some(dl), Some(val)) =>
                        format!("{v} (dl {:.1} + val {:.1}; cpu {cpu:.1} s)", dl / 1e3, val / 1e3),
                    _ => format!("{v} (cpu {cpu:.1} s)"),
                })
                .collect::<Vec<_>>()
                .join(" | "),
            r.operator_rss,
            r.watcher_rss.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(" / "),
            r.operator_disk,
            r.watcher_disk,
        );
    }
    // Summary against the goals.
    let _ = writeln!(s, "\n| Measure | Result | Goal | |\n|---|---:|---|---|");
    match &wire.binary {
        Some((bytes, took, enc)) => {
            let _ = writeln!(
                s,
                "| full block on the wire, binary (`{BLOCK_MEDIA_TYPE}`: {enc}) | {:.1} MB, {:.2} s on loopback | | |",
                *bytes as f64 / 1e6,
                took.as_secs_f64()
            );
        }
        None => {
            let _ = writeln!(s, "| full block on the wire, binary | not served yet | | |");
        }
    }
    match (&wire.json, wire.json_refused) {
        (Some((bytes, took)), _) => {
            let ratio = wire
                .binary
                .as_ref()
                .map(|(b, _, _)| format!(", {:.1}× the binary", *bytes as f64 / *b as f64))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "| full block on the wire, JSON | {:.1} MB, {:.2} s on loopback{ratio} | | |",
                *bytes as f64 / 1e6,
                took.as_secs_f64()
            );
        }
        (None, Some(code)) => {
            let _ = writeln!(s, "| full block on the wire, JSON | refused ({code}) | | |");
        }
        (None, None) => {}
    }
    let loopback: Vec<Duration> = rows
        .iter()
        .flat_map(|r| r.verdicts.iter().take(args.watchers))
        .filter_map(|v| if let Verdict::Valid(d) = v { Some(*d) } else { None })
        .collect();
    let all_valid = rows
        .iter()
        .all(|r| r.verdicts.iter().take(args.watchers).all(|v| matches!(v, Verdict::Valid(_))));
    let mut sorted = loopback;
    sorted.sort();
    let worst = sorted.last().copied().unwrap_or_default();
    let _ = writeln!(
        s,
        "| download + validate, commitment → valid, {} watchers at once (median / worst) | {} / {} | < 3 s | {} |",
        args.watchers,
        ms(percentile(&sorted, 0.5)),
        ms(worst),
        verdict(all_valid && worst < Duration::from_secs(3))
    );
    if args.throttle_mbit > 0 {
        let throttled: Vec<&Verdict> =
            rows.iter().filter_map(|r| r.verdicts.get(args.watchers)).collect();
        let ok = throttled.iter().all(|v| matches!(v, Verdict::Valid(_)));
        let _ = writeln!(
            s,
            "| watcher behind {} Mbit/s, commitment → valid per block | {} | keeps up, never byzantine | {} |",
            args.throttle_mbit,
            throttled.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            verdict(ok)
        );
    }
    let _ = writeln!(
        s,
        "| proof `/v1/utxos/{{pos}}/exit-data`, one client thread ({} proofs) | p50 {} / p99 {}, {:.0} proofs/s | < 5 ms, ≥ 1,000/s | {} |",
        proofs.n,
        ms(proofs.p50),
        ms(proofs.p99),
        proofs.per_sec,
        verdict(proofs.p50 < Duration::from_millis(5) && proofs.per_sec >= 1_000.0)
    );
    match batch {
        Some(b) => {
            let _ = writeln!(
                s,
                "| proofs `POST /v1/inclusions`, 1,000 a call ({} proofs) | p50 {} / p99 {} a call, {:.0} proofs/s | ≥ 1,000/s | {} |",
                b.n,
                ms(b.p50),
                ms(b.p99),
                b.per_sec,
                verdict(b.per_sec >= 1_000.0)
            );
        }
        None => {
            let _ = writeln!(s, "| proofs `POST /v1/inclusions` | not served yet | | |");
        }
    }
    if let Some(y) = sync {
        let rate = y.stored as f64 / y.took.as_secs_f64();
        let _ = writeln!(
            s,
            "| wallet sync (`Wallet::sync`) of {} outputs from one full block | {}{:.1} s, {} stored ({:.1} outputs/s){} | < 10 s | {} |",
            y.expected,
            if y.finished { "" } else { "stopped after " },
            y.took.as_secs_f64(),
            y.stored,
            rate,
            if y.finished {
                String::new()
            } else {
                format!(", ~{:.0} s for all at that rate", y.expected as f64 / rate.max(1e-9))
            },
            verdict(y.finished && y.stored == y.expected && y.took < Duration::from_secs(10))
        );
        let _ = writeln!(s, "| (sync report) | {} | | |", y.report);
    }
    let first = rows.first();
    for (i, w) in watchers.iter().enumerate() {
        let series: Vec<f64> = rows.iter().filter_map(|r| r.watcher_rss.get(i).copied()).collect();
        let (Some(first), Some(b)) = (series.first(), series.last()) else { continue };
        // Flat: from block 2 on (block 1 fills the store's page cache and the allocator), at most
        // +10% + 20 MB by the last block.
        let a = series.get(1).unwrap_or(first);
        let growth = if series.len() > 2 { (b - a) / (series.len() - 2) as f64 } else { f64::NAN };
        let flat = series.len() > 2 && *b <= a * 1.10 + 20.0;
        let _ = writeln!(
            s,
            "| {} RSS after block 1 / 2 → after block {} | {:.0} / {:.0} → {:.0} MB ({:+.0} MB/block from block 2) | flat from block 2 (≤ +10% + 20 MB) | {} |",
            w.name,
            series.len(),
            first,
            a,
            b,
            growth,
            if series.len() > 2 { verdict(flat) } else { "n/a (< 3 blocks)" }
        );
    }
    // What the watchers' logs say about their downloads (a slow link shows here first).
    for w in watchers {
        let log = std::fs::read_to_string(&w.log).unwrap_or_default();
        let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
        let _ = writeln!(
            s,
            "| {} log: resumed / no progress / projected late / not available / malformed | {} / {} / {} / {} / {} | | |",
            w.name,
            count("resuming the block download"),
            count("no progress"),
            count("projected to finish after"),
            count("block not available"),
            count("malformed"),
        );
    }
    if let (Some(f), Some(l)) = (first, rows.last()) {
        let _ = writeln!(
            s,
            "| operator RSS after block 1 → after block {} | {:.0} → {:.0} MB | | |",
            rows.len(),
            f.operator_rss,
            l.operator_rss
        );
    }
    s
}
