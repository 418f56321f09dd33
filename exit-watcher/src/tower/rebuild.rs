//! Rebuilding a committed block from the towers' chunks (DA spec; WATCH-3's "obtained").
//!
//! A rebuild races the operator download of the same block in the same download task
//! ([`crate::download::Downloader`]): whichever obtains the block first wins, the other is
//! dropped (its requests cancelled). It starts at the download's first failed attempt or
//! `--da.rebuild-after` after the block's commitment, whichever comes first, and goes on until
//! it succeeds or the watcher gives its verdict at the availability deadline (the task is then
//! aborted): fewer than `k` good chunks by then and the block is withheld, as without towers.
//!
//! **Asking.** Every source — this tower's own store and `GET {tower}/v1/da/chunks/{blknum}` of
//! every other tower — is asked at once, and each answer is handled as it arrives. A source is
//! asked again, on its own clock, until it gives a good chunk: `retry` after a failure (no
//! answer, 404, an HTTP error), with a back-off doubling up to `32 · retry` after a bad answer.
//! No source waits for another: one that answers slowly, or trickles its bytes, holds only its
//! own request, and a peer's request is cut when `stall` passes without [`PROGRESS_BYTES`] more
//! of its answer (or its end), then asked again. So towers briefly unreachable at the start are
//! asked again while the slowest source is still answering (DA-10: "again and again until the
//! deadline").
//!
//! **Judging.** A chunk is *good* when its envelope verifies (header signed by the operator,
//! proof against the header's chunk root) and its header's `txRoot` is the root committed on
//! L1. A bad answer is named as a fault of the tower that served it only when the operator
//! signed its header: that is evidence. Bytes that do not decode or whose header nobody (or
//! someone else) signed may be a broken link or proxy as well as the tower (WATCH-3: bad bytes
//! are not a verdict), so they are only logged, and the source is asked again like one that
//! failed. A source is dropped for the block only when it gave a good chunk, or an envelope that
//! verifies under a header whose `txRoot` L1 contradicts (a tower keeps the first header it
//! stored: it will serve that one for ever).
//!
//! **Decoding.** Good chunks are grouped by their signed header; as soon as one group holds `k`,
//! those `k` are decoded with `plasma_da::rebuild` (re-encoded and checked against the chunk
//! root) and the bytes go through [`finish_block`] exactly as downloaded ones do.
//!
//! *Why one subset per header is enough:* a good chunk is, by its proof, exactly the chunk the
//! operator committed at that index. If the `n` committed chunks are one codeword, any `k` of
//! them decode to it; if they are not, no `k` of them re-encode to the committed root. So a
//! `BadEncoding` condemns the header, not the subset.

use super::{Culprit, Evidence, FaultKind, Tower, store::signed_header};
use crate::{
    download::{DownloadProgress, Job, finish_block},
    judge::DecodedBlock,
};
use alloy::primitives::B256;
use parking_lot::Mutex;
use plasma_da::{CHUNK_MEDIA_TYPE, ChunkEnvelope, DaError};
use plasma_spec::wire::BlockDecoder;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::Duration,
};
use tokio::{sync::Notify, time::Instant};
use tracing::{debug, info};

/// One group of chunks: the fields of the signed header they share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct GroupKey {
    chunk_root: B256,
    tx_root: B256,
    data_len: u64,
    k: u16,
    n: u16,
}

impl GroupKey {
    fn of(env: &ChunkEnvelope) -> Self {
        let h = &env.header;
        Self { chunk_root: h.chunk_root, tx_root: h.tx_root, data_len: h.data_len, k: h.k, n: h.n }
    }
}

/// What one source's answer is worth.
enum Answer {
    /// A good chunk.
    Good(Box<ChunkEnvelope>),
    /// Nothing to judge: no chunk (404), unreachable, an HTTP error, a stalled answer.
    Nothing(String),
    /// A bad answer.
    Bad(Bad),
}

/// A bad answer: what is wrong with it and what it proves.
struct Bad {
    kind: FaultKind,
    detail: String,
    /// The operator signed the header: the answer is evidence, named as the source's fault.
    /// Otherwise (bytes that do not decode, a header nobody or someone else signed) it may be
    /// the link's doing as well as the source's: logged, not named.
    evidence: bool,
    /// The answer verifies but L1 contradicts its header: the source holds that envelope and will
    /// serve it again, so it is not asked again for this block.
    settled: bool,
}

impl Bad {
    fn noise(detail: String) -> Self {
        Self { kind: FaultKind::BadChunkProof, detail, evidence: false, settled: false }
    }
}

/// Where a source stands in one rebuild.
#[derive(Clone, Copy, Debug, Default)]
struct SourceState {
    /// Gave a good chunk, or a settled bad one: not asked again.
    done: bool,
    /// A request is running.
    asking: bool,
    /// Not asked again before this (`None`: at once).
    next_ask: Option<Instant>,
    /// Bad answers so far (the back-off doubles with each, up to [`MAX_BACKOFF_DOUBLINGS`]).
    bad: u32,
}

/// A source that answered bad is asked again after `retry · 2^(bad − 1)`, at most
/// `retry · 2^MAX_BACKOFF_DOUBLINGS`: a corrupted answer on a flaky link is asked again soon, a
/// tower that serves junk on every request costs a few downloads per rebuild, not one per retry.
const MAX_BACKOFF_DOUBLINGS: u32 = 5;

/// Bytes of its answer a peer must deliver per `stall` (or its answer's end): a request that
/// brings less is cut and asked again. A link slower than 16 KiB per stall timeout (about 1 KiB/s
/// at the 15 s default) cannot bring a chunk of a real block inside the availability window, so
/// an honest tower is never cut for it, while a peer that trickles a byte now and then holds its
/// request for one stall timeout, not for the block's whole window.
pub(crate) const PROGRESS_BYTES: u64 = 16 << 10;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Bytes a source may send: the envelope limit of `PUT` with room for its framing.
const MAX_ANSWER_BYTES: u64 = super::MAX_ENVELOPE_BYTES + 4096;

/// The chunks a rebuild collected.
struct Collected {
    /// Good chunks by header, by index.
    groups: BTreeMap<GroupKey, BTreeMap<u16, ChunkEnvelope>>,
    /// Headers whose chunks did not rebuild the block: never tried again.
    condemned: HashSet<GroupKey>,
}

impl Tower {
    /// Obtains block `job.blknum` from the towers (see the module docs). Never returns
    /// otherwise: the watcher aborts the task at the verdict.
    pub(crate) async fn rebuild(
        self: Arc<Self>,
        job: Job,
        failed: Arc<Notify>,
        progress: Arc<Mutex<DownloadProgress>>,
        retry: Duration,
    ) -> DecodedBlock {
        let blknum = job.blknum;
        let committed_ms = job.deadline_ms.saturating_sub(millis(self.availability_timeout));
        let start_ms = committed_ms.saturating_add(millis(self.settings.rebuild_after));
        let wait = Duration::from_millis(start_ms.saturating_sub(unix_ms()));
        let reason = tokio::select! {
            () = failed.notified() => "the first download attempt failed",
            () = tokio::time::sleep(wait) => "--da.rebuild-after passed since the commitment",
        };
        info!(target: "watcher::da", blknum, reason, k = self.settings.k(), n = self.settings.n(),
            "rebuilding the block from towers");
        let retry = retry.max(Duration::from_millis(100));
        let mut sources = vec![SourceState::default(); usize::from(self.settings.n())];
        let mut collected = Collected { groups: BTreeMap::new(), condemned: HashSet::new() };
        // One set of requests for the whole rebuild (aborted with it: the tasks hold no part of
        // the tower's store), and which source each task asks.
        let mut asks = tokio::task::JoinSet::new();
        let mut asking: HashMap<tokio::task::Id, usize> = HashMap::new();
        loop {
            let now = Instant::now();
            for (source, st) in sources.iter_mut().enumerate() {
                if st.done || st.asking || st.next_ask.is_some_and(|t| t > now) {
                    continue;
                }
                let ask = self.asker(source, blknum);
                let id = asks.spawn(async move { ask.ask(job).await }).id();
                asking.insert(id, source);
                st.asking = true;
            }
            // The next source due again; with none (every one answered well or is being asked),
            // an answer wakes the loop.
            let next = sources
                .iter()
                .filter(|s| !s.done && !s.asking)
                .filter_map(|s| s.next_ask)
                .min()
                .unwrap_or(now + retry);
            let done = tokio::select! {
                Some(done) = asks.join_next_with_id() => done,
                () = tokio::time::sleep_until(next) => continue,
            };
            let (source, answer) = match done {
                Ok((id, answer)) => (asking.remove(&id), answer),
                Err(e) => (asking.remove(&e.id()), Answer::Nothing(format!("ask task: {e}"))),
            };
            let Some(source) = source else { continue };
            sources[source].asking = false;
            if let Some(block) = self
                .take_answer(
                    job,
                    source,
                    answer,
                    &mut sources[source],
                    &mut collected,
                    &progress,
                    retry,
                )
                .await
            {
                return block;
            }
        }
    }

    /// Handles source `source`'s answer: schedules its next ask, names what it proves, and
    /// decodes once a header holds `k` good chunks (the block, if they rebuild it).
    #[allow(clippy::too_many_arguments)]
    async fn take_answer(
        &self,
        job: Job,
        source: usize,
        answer: Answer,
        st: &mut SourceState,
        collected: &mut Collected,
        progress: &Mutex<DownloadProgress>,
        retry: Duration,
    ) -> Option<DecodedBlock> {
        let blknum = job.blknum;
        let env = match answer {
            Answer::Good(env) => *env,
            Answer::Nothing(why) => {
                debug!(target: "watcher::da", blknum, tower = source, why = %why,
                    "no chunk from this tower (asking again)");
                st.next_ask = Some(Instant::now() + retry);
                return None;
            }
            Answer::Bad(bad) => {
                st.bad = st.bad.saturating_add(1);
                let backoff = retry.saturating_mul(1 << (st.bad - 1).min(MAX_BACKOFF_DOUBLINGS));
                st.next_ask = Some(Instant::now() + backoff);
                st.done = bad.settled;
                let culprit = Culprit::Tower(u16::try_from(source).unwrap_or(u16::MAX));
                if bad.evidence {
                    self.fault(blknum, bad.kind, culprit, bad.detail, None);
                } else if st.bad == 1 {
                    info!(target: "watcher::da", blknum, tower = source, why = %bad.detail,
                        "unusable answer (not evidence: a link can corrupt bytes); asking again");
                } else {
                    debug!(target: "watcher::da", blknum, tower = source, why = %bad.detail,
                        backoff_ms = millis(backoff), "unusable answer again");
                }
                return None;
            }
        };
        st.done = true;
        let key = GroupKey::of(&env);
        if let Some((_, other)) = collected.groups.iter().find(|(g, _)| **g != key)
            && let Some(first) = other.values().next()
        {
            self.fault(
                blknum,
                FaultKind::Equivocation,
                Culprit::Tower(u16::try_from(source).unwrap_or(u16::MAX)),
                format_args!(
                    "two operator-signed headers for the committed root: chunk roots {} and {}",
                    first.header.chunk_root, env.header.chunk_root
                ),
                Some(Evidence { first: signed_header(first), second: signed_header(&env) }),
            );
        }
        collected.groups.entry(key).or_default().entry(env.index).or_insert(env);
        let best = collected.groups.values().map(BTreeMap::len).max().unwrap_or(0);
        progress.lock().rebuild_chunks = Some(best);
        {
            let mut b = self.rebuild_best.lock();
            let e = b.entry(blknum).or_default();
            *e = (*e).max(best);
        }
        let k = usize::from(self.settings.k());
        let ready: Vec<GroupKey> = collected
            .groups
            .iter()
            .filter(|(g, c)| c.len() >= k && !collected.condemned.contains(*g))
            .map(|(g, _)| *g)
            .collect();
        for key in ready {
            let chosen: Vec<ChunkEnvelope> =
                collected.groups[&key].values().take(k).cloned().collect();
            match self.decode_group(job, key, chosen, progress).await {
                Ok(block) => return Some(block),
                Err((kind, detail)) => {
                    self.fault(blknum, kind, Culprit::Rebuild, detail, None);
                    collected.condemned.insert(key);
                }
            }
        }
        None
    }

    /// Decodes `k` good chunks of one header into the block's wire bytes and obtains the block
    /// from them as a download does ([`finish_block`]: decoded to the end, the L1 root).
    async fn decode_group(
        &self,
        job: Job,
        key: GroupKey,
        chosen: Vec<ChunkEnvelope>,
        progress: &Mutex<DownloadProgress>,
    ) -> Result<DecodedBlock, (FaultKind, String)> {
        let blknum = job.blknum;
        let indices: Vec<u16> = chosen.iter().map(|e| e.index).collect();
        let params = self.settings.params;
        progress.lock().rebuilding = true;
        let decoded = tokio::task::spawn_blocking(move || {
            let chunks: Vec<(u16, &[u8])> =
                chosen.iter().map(|e| (e.index, e.chunk.as_slice())).collect();
            let wire = plasma_da::rebuild(params, key.data_len, key.chunk_root, &chunks)
                .map_err(|e| (FaultKind::BadEncoding, e.to_string()))?;
            let mut dec = BlockDecoder::new();
            dec.push(&wire)
                .map_err(|e| (FaultKind::ChunkMismatch, format!("the rebuilt bytes: {e}")))?;
            finish_block(dec, blknum, job.root)
                .map_err(|e| (FaultKind::ChunkMismatch, format!("the rebuilt bytes: {e}")))
        })
        .await;
        progress.lock().rebuilding = false;
        let block = match decoded {
            Ok(Ok(block)) => block,
            Ok(Err((kind, e))) => {
                return Err((
                    kind,
                    format!("chunks {indices:?} of chunk root {}: {e}", key.chunk_root),
                ));
            }
            Err(e) => {
                return Err((FaultKind::BadEncoding, format!("decoder task: {e}")));
            }
        };
        self.record_rebuilt(blknum, &indices);
        {
            let mut p = progress.lock();
            p.done = true;
            p.last_error = None;
        }
        info!(target: "watcher::da", blknum, indices = ?indices, chunk_root = %key.chunk_root,
            txs = block.len(), "block rebuilt from towers");
        Ok(block)
    }

    /// How to ask source `source`: this tower's store (read now), or a peer's API.
    fn asker(&self, source: usize, blknum: u64) -> Asker {
        let from = if self.settings.index.map(usize::from) == Some(source) {
            // One chunk, read now: the task that judges it holds no part of the store.
            match self.chunk(blknum) {
                Ok(b) => Source::Own(b),
                Err(e) => Source::Failed(e.to_string()),
            }
        } else {
            match self.settings.towers.get(source) {
                Some(url) => Source::Peer {
                    http: self.http.clone(),
                    url: url.clone(),
                    // No total timeout: a request ends when it stops progressing ([`fetch`]).
                    stall: self.stall,
                },
                None => Source::Failed("no such tower".into()),
            }
        };
        Asker {
            from,
            domain: self.domain.clone(),
            operator: self.operator,
            params: self.settings.params,
        }
    }
}

/// Where a chunk comes from.
enum Source {
    /// This tower's store, already read.
    Own(Option<Vec<u8>>),
    /// A peer tower's `GET /v1/da/chunks/{blknum}`.
    Peer { http: reqwest::Client, url: String, stall: Duration },
    /// Nothing to ask.
    Failed(String),
}

/// One question to one source, with what judging its answer needs.
struct Asker {
    from: Source,
    domain: plasma_spec::SigningDomain,
    operator: alloy::primitives::Address,
    params: plasma_da::Params,
}

impl Asker {
    /// Asks for the chunk of `job.blknum` and judges the answer.
    async fn ask(self, job: Job) -> Answer {
        let bytes = match self.from {
            Source::Own(Some(b)) => b,
            Source::Own(None) => return Answer::Nothing("no chunk in this tower's store".into()),
            Source::Failed(e) => return Answer::Nothing(e),
            Source::Peer { http, url, stall } => {
                match fetch(&http, &url, job.blknum, stall).await {
                    Ok(Some(b)) => b,
                    Ok(None) => return Answer::Nothing("404".into()),
                    Err(e) => return Answer::Nothing(e),
                }
            }
        };
        let (domain, operator, params) = (self.domain, self.operator, self.params);
        tokio::task::spawn_blocking(move || judge(&bytes, job, &domain, operator, params))
            .await
            .unwrap_or_else(|e| Answer::Nothing(format!("judge task: {e}")))
    }
}

/// `GET {url}/v1/da/chunks/{blknum}`: `Ok(None)` on 404, the body up to [`MAX_ANSWER_BYTES`].
///
/// There is no total timeout: the answer's head must come within `stall`, and then each `stall`
/// must bring [`PROGRESS_BYTES`] more of the body or its end. A slow honest tower is read to the
/// end; one that trickles is cut after one `stall` and asked again later.
async fn fetch(
    http: &reqwest::Client,
    url: &str,
    blknum: u64,
    stall: Duration,
) -> Result<Option<Vec<u8>>, String> {
    let req = http
        .get(format!("{url}/v1/da/chunks/{blknum}"))
        .header(reqwest::header::ACCEPT, CHUNK_MEDIA_TYPE);
    let mut resp = match tokio::time::timeout(stall, req.send()).await {
        Err(_) => return Err(format!("no answer within {} ms", millis(stall))),
        Ok(r) => r.map_err(|e| e.to_string())?,
    };
    match resp.status().as_u16() {
        200 => {}
        404 => return Ok(None),
        s => return Err(format!("HTTP {s}")),
    }
    if let Some(len) = resp.content_length().filter(|l| *l > MAX_ANSWER_BYTES) {
        return Err(format!("{len} bytes, more than an envelope"));
    }
    let mut body = Vec::new();
    // Bytes read when the current stall window began, and when it ends.
    let (mut mark, mut window_end) = (0u64, Instant::now() + stall);
    loop {
        let c = match tokio::time::timeout_at(window_end, resp.chunk()).await {
            Err(_) => {
                return Err(format!(
                    "stalled: {} bytes in the last {} ms (fewer than {PROGRESS_BYTES}), {} in all",
                    body.len() as u64 - mark,
                    millis(stall),
                    body.len()
                ));
            }
            Ok(c) => c.map_err(|e| e.to_string())?,
        };
        let Some(c) = c else { return Ok(Some(body)) };
        if (body.len() + c.len()) as u64 > MAX_ANSWER_BYTES {
            return Err("more bytes than an envelope".into());
        }
        body.extend_from_slice(&c);
        if body.len() as u64 - mark >= PROGRESS_BYTES {
            (mark, window_end) = (body.len() as u64, Instant::now() + stall);
        }
    }
}

/// Judges one source's envelope of block `job.blknum`: good, or what is wrong with it and
/// whether that is evidence (the operator signed the header).
fn judge(
    bytes: &[u8],
    job: Job,
    domain: &plasma_spec::SigningDomain,
    operator: alloy::primitives::Address,
    params: plasma_da::Params,
) -> Answer {
    let env = match ChunkEnvelope::decode(bytes) {
        Ok(e) => e,
        Err(e) => return Answer::Bad(Bad::noise(format!("not an envelope: {e}"))),
    };
    let h = &env.header;
    // Evidence only under the operator's signature: anyone can make an unsigned header, and a
    // corrupted header no longer recovers to the operator.
    let signed = h.signer(domain, &env.header_sig).is_ok_and(|a| a == operator);
    let bad =
        |kind, detail: String| Answer::Bad(Bad { kind, detail, evidence: signed, settled: false });
    if h.blknum != job.blknum {
        return bad(
            FaultKind::ChunkMismatch,
            format!("served a header of block {} for block {}", h.blknum, job.blknum),
        );
    }
    if h.k != params.k || h.n != params.n {
        return bad(
            FaultKind::BadChunkProof,
            format!("header k={} n={}, the towers use k={} n={}", h.k, h.n, params.k, params.n),
        );
    }
    if let Err(e) = env.verify(domain, operator) {
        let kind = match e {
            DaError::NotOperator { .. } | DaError::BadSignature(_) => FaultKind::NotOperator,
            _ => FaultKind::BadChunkProof,
        };
        return bad(kind, format!("chunk {}: {e}", env.index));
    }
    if h.tx_root != job.root {
        return Answer::Bad(Bad {
            kind: FaultKind::ChunkMismatch,
            detail: format!(
                "chunk {} under a header claiming root {}, L1 committed {}",
                env.index, h.tx_root, job.root
            ),
            evidence: true,
            settled: true,
        });
    }
    Answer::Good(Box::new(env))
}
