//! Rebuilding a committed block from the towers' chunks (DA spec; WATCH-3's "obtained").
//!
//! A rebuild races the operator download of the same block in the same download task
//! ([`crate::download::Downloader`]): whichever obtains the block first wins, the other is
//! dropped (its requests cancelled). It starts at the download's first failed attempt or
//! `--da.rebuild-after` after the block's commitment, whichever comes first, and goes on until
//! it succeeds or the watcher gives its verdict at the availability deadline (the task is then
//! aborted): fewer than `k` good chunks by then and the block is withheld, as without towers.
//!
//! Every round asks every source that has not yet given a chunk — this tower's own store
//! and `GET {tower}/v1/da/chunks/{blknum}` of every other tower — in parallel, and looks at each
//! answer as it arrives. A chunk is *good* when its envelope verifies (header signed by the
//! operator, proof against the header's chunk root) and its header's `txRoot` is the root
//! committed on L1; anything else is a named fault of the tower that served it. Good chunks are
//! grouped by their signed header; as soon as one group holds `k`, those `k` are decoded with
//! `plasma_da::rebuild` (re-encoded and checked against the chunk root) and the bytes go
//! through [`finish_block`] exactly as downloaded ones do.
//!
//! *Why one subset per header is enough:* a good chunk is, by its proof, exactly the chunk the
//! operator committed at that index. If the `n` committed chunks are one codeword, any `k` of
//! them decode to it; if they are not, no `k` of them re-encode to the committed root. So a
//! `BadEncoding` condemns the header, not the subset.

use super::{Evidence, FaultKind, Tower, store::signed_header};
use crate::{
    download::{DownloadProgress, Job, finish_block},
    judge::DecodedBlock,
};
use alloy::primitives::B256;
use parking_lot::Mutex;
use plasma_da::{CHUNK_MEDIA_TYPE, ChunkEnvelope, DaError};
use plasma_spec::wire::BlockDecoder;
use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    sync::Arc,
    time::Duration,
};
use tokio::sync::Notify;
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
    /// Nothing to judge: no chunk (404), unreachable, an HTTP error.
    Nothing(String),
    /// A named fault of the source.
    Bad(FaultKind, String),
}

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
        let n = usize::from(self.settings.n());
        let k = usize::from(self.settings.k());
        let mut groups: BTreeMap<GroupKey, BTreeMap<u16, ChunkEnvelope>> = BTreeMap::new();
        // Sources (tower indices) that gave a chunk, good or bad: not asked again (a block's chunk
        // never changes; one that was bad stays bad). Those with nothing yet are asked each round.
        let mut answered: BTreeSet<usize> = BTreeSet::new();
        // Headers whose chunks did not rebuild the block: never tried again.
        let mut condemned: HashSet<GroupKey> = HashSet::new();
        loop {
            let mut asks = tokio::task::JoinSet::new();
            for source in (0..n).filter(|s| !answered.contains(s)) {
                // The tasks hold no part of the tower (its store): aborting the rebuild leaves
                // nothing open behind it.
                let ask = self.asker(source, blknum);
                asks.spawn(async move { (source, ask.ask(job).await) });
            }
            while let Some(done) = asks.join_next().await {
                let Ok((source, answer)) = done else { continue };
                let env = match answer {
                    Answer::Good(env) => *env,
                    Answer::Nothing(why) => {
                        debug!(target: "watcher::da", blknum, tower = source, why = %why,
                            "no chunk from this tower");
                        continue;
                    }
                    Answer::Bad(kind, detail) => {
                        self.fault(blknum, kind, format!("tower {source}: {detail}"), None);
                        answered.insert(source);
                        continue;
                    }
                };
                answered.insert(source);
                let key = GroupKey::of(&env);
                if let Some((_, other)) = groups.iter().find(|(g, _)| **g != key)
                    && let Some(first) = other.values().next()
                {
                    self.fault(
                        blknum,
                        FaultKind::Equivocation,
                        format!(
                            "two operator-signed headers for the committed root: chunk roots {} \
                             and {} (tower {source})",
                            first.header.chunk_root, env.header.chunk_root
                        ),
                        Some(Evidence { first: signed_header(first), second: signed_header(&env) }),
                    );
                }
                groups.entry(key).or_default().entry(env.index).or_insert(env);
                let best = groups.values().map(BTreeMap::len).max().unwrap_or(0);
                progress.lock().rebuild_chunks = Some(best);
                {
                    let mut b = self.rebuild_best.lock();
                    let e = b.entry(blknum).or_default();
                    *e = (*e).max(best);
                }
                let ready: Vec<GroupKey> = groups
                    .iter()
                    .filter(|(g, c)| c.len() >= k && !condemned.contains(*g))
                    .map(|(g, _)| *g)
                    .collect();
                for key in ready {
                    let chosen: Vec<ChunkEnvelope> =
                        groups[&key].values().take(k).cloned().collect();
                    match self.decode_group(job, key, chosen, &progress).await {
                        Ok(block) => return block,
                        Err((kind, detail)) => {
                            self.fault(blknum, kind, detail, None);
                            condemned.insert(key);
                        }
                    }
                }
            }
            tokio::time::sleep(retry.max(Duration::from_millis(100))).await;
        }
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
                    // Never longer than the block's whole availability window; stalls end sooner
                    // (the client's read timeout).
                    timeout: self.availability_timeout.max(self.stall),
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
    Peer { http: reqwest::Client, url: String, timeout: Duration },
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
            Source::Peer { http, url, timeout } => {
                match fetch(&http, &url, job.blknum, timeout).await {
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
async fn fetch(
    http: &reqwest::Client,
    url: &str,
    blknum: u64,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, String> {
    let req = http
        .get(format!("{url}/v1/da/chunks/{blknum}"))
        .header(reqwest::header::ACCEPT, CHUNK_MEDIA_TYPE)
        .timeout(timeout);
    let mut resp = req.send().await.map_err(|e| e.to_string())?;
    match resp.status().as_u16() {
        200 => {}
        404 => return Ok(None),
        s => return Err(format!("HTTP {s}")),
    }
    if let Some(len) = resp.content_length().filter(|l| *l > MAX_ANSWER_BYTES) {
        return Err(format!("{len} bytes, more than an envelope"));
    }
    let mut body = Vec::new();
    while let Some(c) = resp.chunk().await.map_err(|e| e.to_string())? {
        if (body.len() + c.len()) as u64 > MAX_ANSWER_BYTES {
            return Err("more bytes than an envelope".into());
        }
        body.extend_from_slice(&c);
    }
    Ok(Some(body))
}

/// Judges one source's envelope of block `job.blknum`: good, or which fault.
fn judge(
    bytes: &[u8],
    job: Job,
    domain: &plasma_spec::SigningDomain,
    operator: alloy::primitives::Address,
    params: plasma_da::Params,
) -> Answer {
    let env = match ChunkEnvelope::decode(bytes) {
        Ok(e) => e,
        Err(e) => return Answer::Bad(FaultKind::BadChunkProof, format!("not an envelope: {e}")),
    };
    let h = &env.header;
    if h.blknum != job.blknum {
        return Answer::Bad(
            FaultKind::ChunkMismatch,
            format!("served a header of block {} for block {}", h.blknum, job.blknum),
        );
    }
    if h.k != params.k || h.n != params.n {
        return Answer::Bad(
            FaultKind::BadChunkProof,
            format!("header k={} n={}, the towers use k={} n={}", h.k, h.n, params.k, params.n),
        );
    }
    if let Err(e) = env.verify(domain, operator) {
        let kind = match e {
            DaError::NotOperator { .. } | DaError::BadSignature(_) => FaultKind::NotOperator,
            _ => FaultKind::BadChunkProof,
        };
        return Answer::Bad(kind, format!("chunk {}: {e}", env.index));
    }
    if h.tx_root != job.root {
        return Answer::Bad(
            FaultKind::ChunkMismatch,
            format!(
                "chunk {} under a header claiming root {}, L1 committed {}",
                env.index, h.tx_root, job.root
            ),
        );
    }
    Answer::Good(Box::new(env))
}
