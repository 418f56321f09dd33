//! Ingest (OP-1): the compact binary body of `POST /v1/transactions/batch` and the per-stage
//! counters of [`crate::Chain::submit`].
//!
//! The binary body (`Content-Type: application/octet-stream`) is a sequence of frames, each a
//! signed transaction's bytes (ENC) behind their length as a 4-byte big-endian unsigned integer:
//! `len₀ ‖ tx₀ ‖ len₁ ‖ tx₁ ‖ …`, nothing before, between or after. An empty body holds no
//! transaction. The reply is the JSON route's, one result per frame in frame order.

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

/// The media type of the binary batch body.
pub const BATCH_MEDIA_TYPE: &str = "application/octet-stream";

/// Bytes of a frame's length prefix.
pub const FRAME_PREFIX: usize = 4;

/// Why a binary batch body was refused as a whole (nothing in it is submitted).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The body ends inside a length prefix.
    #[error(
        "frame {index} at byte {offset}: {left} byte(s) left, a length prefix takes {FRAME_PREFIX}"
    )]
    TruncatedPrefix {
        /// The frame's index.
        index: usize,
        /// Where its prefix starts.
        offset: usize,
        /// Bytes left in the body.
        left: usize,
    },
    /// A frame announces more bytes than the body still holds.
    #[error("frame {index} at byte {offset} announces {len} bytes, {left} follow")]
    TruncatedTx {
        /// The frame's index.
        index: usize,
        /// Where its prefix starts.
        offset: usize,
        /// The announced length.
        len: u32,
        /// Bytes after the prefix.
        left: usize,
    },
    /// More frames than one batch may hold.
    #[error("more than {max} transactions in one batch")]
    TooMany {
        /// The most a batch holds (`[api] max_batch`).
        max: usize,
    },
}

impl FrameError {
    /// The stable error code the API reports: `MalformedFrame` (400) or `BatchTooLarge` (413).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::TruncatedPrefix { .. } | Self::TruncatedTx { .. } => "MalformedFrame",
            Self::TooMany { .. } => "BatchTooLarge",
        }
    }
}

/// The binary batch body of `txs`.
///
/// # Panics
/// If a transaction is longer than `u32::MAX` bytes (no signed transaction is: ENC bounds them
/// far below).
pub fn encode_batch<T: AsRef<[u8]>>(txs: &[T]) -> Vec<u8> {
    let len = txs.iter().map(|t| FRAME_PREFIX + t.as_ref().len()).sum();
    let mut out = Vec::with_capacity(len);
    for tx in txs {
        let tx = tx.as_ref();
        let n = u32::try_from(tx.len()).unwrap_or_else(|_| panic!("a {} byte frame", tx.len()));
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(tx);
    }
    out
}

/// The transactions of a binary batch body, in order; at most `max` of them.
pub fn decode_batch(body: &[u8], max: usize) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut txs = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let index = txs.len();
        let left = body.len() - at;
        let Some(prefix) = body.get(at..at + FRAME_PREFIX) else {
            return Err(FrameError::TruncatedPrefix { index, offset: at, left });
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let start = at + FRAME_PREFIX;
        let end = start
            .checked_add(len as usize)
            .filter(|e| *e <= body.len())
            .ok_or(FrameError::TruncatedTx { index, offset: at, len, left: body.len() - start })?;
        // Counted once whole: a cut-off frame after `max` whole ones is malformed (400: the
        // sender's framing is wrong), not one too many (413: split the batch).
        if index == max {
            return Err(FrameError::TooMany { max });
        }
        txs.push(body[start..end].to_vec());
        at = end;
    }
    Ok(txs)
}

/// One stage's counter: how many transactions went through it and the time it took.
#[derive(Debug, Default)]
struct Stage {
    txs: AtomicU64,
    nanos: AtomicU64,
    /// Calls (groups) through the stage.
    calls: AtomicU64,
}

impl Stage {
    fn add(&self, txs: usize, took: Duration) {
        self.txs.fetch_add(txs as u64, Relaxed);
        self.nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        self.calls.fetch_add(1, Relaxed);
    }

    fn get(&self) -> StageFigures {
        StageFigures {
            txs: self.txs.load(Relaxed),
            time: Duration::from_nanos(self.nanos.load(Relaxed)),
            calls: self.calls.load(Relaxed),
        }
    }
}

/// Where submissions spend their time, counted since the chain was opened (`/metrics`, the load
/// bench). Relaxed atomics: figures, not synchronisation.
#[derive(Debug, Default)]
pub struct IngestStats {
    queue_wait: Stage,
    recover: Stage,
    lock_wait: Stage,
    validate: Stage,
    persist: Stage,
    publish: Stage,
}

/// One stage's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageFigures {
    /// Transactions through the stage.
    pub txs: u64,
    /// Wall time spent in it, summed over calls (concurrent calls add up).
    pub time: Duration,
    /// Calls (one per group).
    pub calls: u64,
}

impl StageFigures {
    /// Mean time per transaction.
    pub fn per_tx(&self) -> Duration {
        let nanos = u64::try_from(self.time.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(nanos.checked_div(self.txs).unwrap_or(0))
    }
}

/// A snapshot of [`IngestStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestFigures {
    /// From a request's arrival to its group's `submit` starting (the group committer's queue,
    /// the blocking pool).
    pub queue_wait: StageFigures,
    /// Decoding, signature recovery, hashes and the stateless checks, off the state lock, on
    /// all cores (wall time of the fan-out).
    pub recover: StageFigures,
    /// Waiting for the state lock to reserve.
    pub lock_wait: StageFigures,
    /// Checks against the UTXO set and mempool and the reservation, under the state lock.
    pub validate: StageFigures,
    /// The group's redb write and fsync, off the state lock (accepted transactions only).
    pub persist: StageFigures,
    /// Waiting for the lock again and publishing to the block queue (or undoing).
    pub publish: StageFigures,
}

impl IngestFigures {
    /// `(name, figures)` of every stage, in pipeline order.
    pub const fn stages(&self) -> [(&'static str, StageFigures); 6] {
        [
            ("queue_wait", self.queue_wait),
            ("recover", self.recover),
            ("lock_wait", self.lock_wait),
            ("validate", self.validate),
            ("persist", self.persist),
            ("publish", self.publish),
        ]
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        let d = |a: StageFigures, b: StageFigures| StageFigures {
            txs: a.txs.saturating_sub(b.txs),
            time: a.time.saturating_sub(b.time),
            calls: a.calls.saturating_sub(b.calls),
        };
        Self {
            queue_wait: d(self.queue_wait, earlier.queue_wait),
            recover: d(self.recover, earlier.recover),
            lock_wait: d(self.lock_wait, earlier.lock_wait),
            validate: d(self.validate, earlier.validate),
            persist: d(self.persist, earlier.persist),
            publish: d(self.publish, earlier.publish),
        }
    }

    /// The Prometheus lines of these figures.
    pub fn prometheus(&self) -> String {
        let mut out = String::from(
            "# TYPE plasma_operator_ingest_seconds_total counter\n\
             # TYPE plasma_operator_ingest_txs_total counter\n",
        );
        for (name, f) in self.stages() {
            out.push_str(&format!(
                "plasma_operator_ingest_seconds_total{{stage=\"{name}\"}} {:.6}\n\
                 plasma_operator_ingest_txs_total{{stage=\"{name}\"}} {}\n",
                f.time.as_secs_f64(),
                f.txs
            ));
        }
        out
    }
}

impl IngestStats {
    /// Counts `txs` transactions that waited `took` before their group's submit started.
    pub fn queue_wait(&self, txs: usize, took: Duration) {
        self.queue_wait.add(txs, took);
    }
    pub(crate) fn recover(&self, txs: usize, took: Duration) {
        self.recover.add(txs, took);
    }
    pub(crate) fn lock_wait(&self, txs: usize, took: Duration) {
        self.lock_wait.add(txs, took);
    }
    pub(crate) fn validate(&self, txs: usize, took: Duration) {
        self.validate.add(txs, took);
    }
    pub(crate) fn persist(&self, txs: usize, took: Duration) {
        self.persist.add(txs, took);
    }
    pub(crate) fn publish(&self, txs: usize, took: Duration) {
        self.publish.add(txs, took);
    }

    /// The totals so far.
    pub fn figures(&self) -> IngestFigures {
        IngestFigures {
            queue_wait: self.queue_wait.get(),
            recover: self.recover.get(),
            lock_wait: self.lock_wait.get(),
            validate: self.validate.get(),
            persist: self.persist.get(),
            publish: self.publish.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_order() {
        let txs: Vec<Vec<u8>> = vec![vec![1, 2, 3], Vec::new(), vec![0xff; 300]];
        let body = encode_batch(&txs);
        assert_eq!(&body[..4], &[0, 0, 0, 3]);
        assert_eq!(body.len(), 3 * FRAME_PREFIX + 303);
        assert_eq!(decode_batch(&body, 3).unwrap(), txs);
        assert_eq!(decode_batch(&[], 3).unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn malformed_frames_are_refused_with_where() {
        let body = encode_batch(&[vec![7u8; 10]]);
        // The body ends inside the second prefix.
        let mut short = body.clone();
        short.extend_from_slice(&[0, 0]);
        let e = decode_batch(&short, 10).unwrap_err();
        assert_eq!(e, FrameError::TruncatedPrefix { index: 1, offset: 14, left: 2 });
        assert_eq!(e.code(), "MalformedFrame");
        // A length past the end, including one that would overflow on 32-bit targets.
        for len in [11u32, u32::MAX] {
            let mut bad = len.to_be_bytes().to_vec();
            bad.extend_from_slice(&[7u8; 10]);
            let e = decode_batch(&bad, 10).unwrap_err();
            assert_eq!(e, FrameError::TruncatedTx { index: 0, offset: 0, len, left: 10 });
            assert_eq!(e.code(), "MalformedFrame");
        }
        // Trailing bytes after the last whole frame are a truncated frame, never ignored.
        let mut trailing = body;
        trailing.extend_from_slice(&[0, 0, 0, 5, 1]);
        assert!(matches!(
            decode_batch(&trailing, 10),
            Err(FrameError::TruncatedTx { index: 1, len: 5, left: 1, .. })
        ));
    }

    #[test]
    fn more_frames_than_the_limit_are_refused() {
        let body = encode_batch(&[[1u8], [2], [3]]);
        assert_eq!(decode_batch(&body, 3).unwrap().len(), 3);
        let e = decode_batch(&body, 2).unwrap_err();
        assert_eq!(e, FrameError::TooMany { max: 2 });
        assert_eq!(e.code(), "BatchTooLarge");
    }

    #[test]
    fn stage_figures_subtract_and_divide() {
        let stats = IngestStats::default();
        stats.recover(10, Duration::from_millis(10));
        let before = stats.figures();
        stats.recover(30, Duration::from_millis(60));
        let d = stats.figures().since(&before);
        assert_eq!(d.recover.txs, 30);
        assert_eq!(d.recover.calls, 1);
        assert_eq!(d.recover.per_tx(), Duration::from_millis(2));
        assert_eq!(d.persist.per_tx(), Duration::ZERO);
        assert!(stats.figures().prometheus().contains("stage=\"recover\"} 40"));
    }
}
