//! The block wire format (spec: OP-9): how a block travels from the operator to watchers and
//! wallets, and how the operator stores it.
//!
//! A full block is 65,536 signed transactions, about 46 MB of ABI words, most of them zero
//! padding. Sent as hex in JSON it was 92.6 MB and had to be held whole on both ends; sent as
//! these frames, deflated once when the block is made, it is a few times smaller, streams
//! (a client decodes as bytes arrive and can resume with an HTTP range after a dropped
//! connection), and says up front how long it is, so a client shows progress and knows what to
//! wait for.
//!
//! ```text
//! header (HEADER_LEN = 65 bytes, integers big-endian)
//!   magic    4  "PLB1"
//!   encoding 1  0 = plain frames, 1 = zlib (RFC 1950) of the frames
//!   blknum   8
//!   root     32 the block's Merkle root as the sender claims it (check it against L1)
//!   count    4  transactions, at most MAX_TXS_PER_BLOCK
//!   raw_len  8  bytes of the frames before compression
//!   body_len 8  bytes after the header, as sent (== raw_len when plain)
//! body: `count` frames, each a u32 length and that many bytes: the signed transaction (ENC-4)
//! of a child block, the deposit transaction (ENC-1) of a deposit block.
//! ```
//!
//! The decoder trusts nothing in the header: its lengths are checked against the limits before
//! anything is allocated, decompression stops at `raw_len`, and every frame is bounded by
//! `MAX_SIGNED_TX_BYTES`, so a hostile sender can make it hold at most one block's worth.

use crate::constants::{MAX_SIGNED_TX_BYTES, MAX_TXS_PER_BLOCK};
use alloy_primitives::{B256, Bytes};

/// The media type of the format (HTTP `Accept` / `Content-Type`).
pub const MEDIA_TYPE: &str = "application/vnd.plasma.block";
/// Bytes of the header.
pub const HEADER_LEN: usize = 4 + 1 + 8 + 32 + 4 + 8 + 8;
/// The first four bytes.
pub const MAGIC: [u8; 4] = *b"PLB1";
/// Bytes of a frame's length prefix.
const FRAME_PREFIX: usize = 4;
/// The largest `raw_len` a block of `count` transactions can have.
const fn max_raw_len(count: u64) -> u64 {
    count * (FRAME_PREFIX + MAX_SIGNED_TX_BYTES) as u64
}

/// How the frames are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Encoding {
    /// As they are.
    Plain = 0,
    /// zlib (RFC 1950). ABI words are mostly zero padding: a block of payments shrinks about
    /// threefold, and the operator compresses each block once, when it makes it.
    Zlib = 1,
}

impl Encoding {
    const fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Plain),
            1 => Some(Self::Zlib),
            _ => None,
        }
    }
}

/// The header of an encoded block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// Body encoding.
    pub encoding: Encoding,
    /// Block number.
    pub blknum: u64,
    /// The root the sender claims.
    pub root: B256,
    /// Transactions.
    pub count: u32,
    /// Bytes of the frames.
    pub raw_len: u64,
    /// Bytes of the body as sent.
    pub body_len: u64,
}

impl BlockHeader {
    /// Bytes of the whole encoded block: header and body.
    pub const fn total_len(&self) -> u64 {
        HEADER_LEN as u64 + self.body_len
    }

    fn parse(b: &[u8; HEADER_LEN]) -> Result<Self, WireError> {
        if b[..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        let encoding = Encoding::from_u8(b[4]).ok_or(WireError::UnknownEncoding(b[4]))?;
        let u64_at = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(w)
        };
        let blknum = u64_at(5);
        let root = B256::from_slice(&b[13..45]);
        let count = u32::from_be_bytes([b[45], b[46], b[47], b[48]]);
        let raw_len = u64_at(49);
        let body_len = u64_at(57);
        if count as usize > MAX_TXS_PER_BLOCK {
            return Err(WireError::TooManyTxs(count));
        }
        let min_raw = u64::from(count) * FRAME_PREFIX as u64;
        if raw_len < min_raw || raw_len > max_raw_len(u64::from(count)) {
            return Err(WireError::LengthMismatch { what: "raw_len", value: raw_len });
        }
        // zlib never grows a stream by more than a small fraction; anything beyond that is not
        // a compressed block of these frames.
        let max_body = match encoding {
            Encoding::Plain => raw_len,
            Encoding::Zlib => raw_len + raw_len / 64 + 1024,
        };
        if (encoding == Encoding::Plain && body_len != raw_len) || body_len > max_body {
            return Err(WireError::LengthMismatch { what: "body_len", value: body_len });
        }
        Ok(Self { encoding, blknum, root, count, raw_len, body_len })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.push(self.encoding as u8);
        out.extend_from_slice(&self.blknum.to_be_bytes());
        out.extend_from_slice(self.root.as_slice());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.raw_len.to_be_bytes());
        out.extend_from_slice(&self.body_len.to_be_bytes());
    }
}

/// Why bytes are not an encoded block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The first four bytes are not `PLB1`.
    #[error("not an encoded block (bad magic)")]
    BadMagic,
    /// An encoding this version does not know.
    #[error("unknown block encoding {0}")]
    UnknownEncoding(u8),
    /// More transactions than a block holds.
    #[error("{0} transactions: more than a block holds")]
    TooManyTxs(u32),
    /// A header length that no block of its count can have.
    #[error("impossible {what} {value}")]
    LengthMismatch {
        /// Which field.
        what: &'static str,
        /// Its value.
        value: u64,
    },
    /// A frame longer than any transaction.
    #[error("transaction {index} is {len} bytes: longer than any transaction")]
    FrameTooLarge {
        /// Its index.
        index: u32,
        /// Its claimed length.
        len: u32,
    },
    /// The stream ended early.
    #[error("truncated: {received} of {expected} bytes")]
    Truncated {
        /// Bytes received.
        received: u64,
        /// Bytes the header announced.
        expected: u64,
    },
    /// Bytes after the announced end.
    #[error("bytes after the end of the block")]
    TrailingBytes,
    /// The frames do not add up to the header's count and length.
    #[error("the frames do not match the header: {0}")]
    CountMismatch(String),
    /// The compressed body does not inflate.
    #[error("the compressed body is corrupt: {0}")]
    Inflate(String),
    /// Encoding refused: a block too large for the format.
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Encodes a block (`txs` in order) in `encoding`; zlib on all cores (see [`DeflatedGroup`]).
pub fn encode_block<T: AsRef<[u8]> + Sync>(
    blknum: u64,
    root: B256,
    txs: &[T],
    encoding: Encoding,
) -> Result<Vec<u8>, WireError> {
    if txs.len() > MAX_TXS_PER_BLOCK {
        return Err(WireError::Encode(format!("{} transactions", txs.len())));
    }
    let raw_len: usize = txs.iter().map(|t| FRAME_PREFIX + t.as_ref().len()).sum();
    if let Some((i, tx)) =
        txs.iter().enumerate().find(|(_, t)| t.as_ref().len() > MAX_SIGNED_TX_BYTES)
    {
        return Err(WireError::Encode(format!("transaction {i} is {} bytes", tx.as_ref().len())));
    }
    // Plain: the frames go straight into the body, a full block never exists twice.
    fn write_frames<T: AsRef<[u8]>>(
        txs: &[T],
        out: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        for tx in txs {
            let tx = tx.as_ref();
            out.write_all(&(tx.len() as u32).to_be_bytes())?;
            out.write_all(tx)?;
        }
        Ok(())
    }
    match encoding {
        Encoding::Plain => {
            let header = BlockHeader {
                encoding,
                blknum,
                root,
                count: txs.len() as u32,
                raw_len: raw_len as u64,
                body_len: raw_len as u64,
            };
            let mut out = Vec::with_capacity(HEADER_LEN + raw_len);
            header.write(&mut out);
            write_frames(txs, &mut out).map_err(|e| WireError::Encode(e.to_string()))?;
            Ok(out)
        }
        Encoding::Zlib => {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            encode_zlib_block(blknum, root, &deflate_groups(txs, threads)?)
        }
    }
}

/// Frames per [`DeflatedGroup`] of a zlib body.
pub const ZLIB_GROUP: usize = 64;

/// Bytes of a zlib (RFC 1950) header without a preset dictionary.
const ZLIB_HEADER: usize = 2;
/// Bytes of its adler32 trailer.
const ZLIB_TRAILER: usize = 4;
/// The empty stored block a sync flush ends with: the deflate data before it ends on a byte.
const SYNC_MARKER: [u8; 4] = [0, 0, 0xff, 0xff];

/// [`ZLIB_GROUP`] consecutive frames of a block deflated on their own (zlib level 1), as a
/// complete zlib stream that is also a piece of the block's zlib body.
///
/// Each group is compressed by a fresh (reset) compressor and its deflate data ends with a
/// sync flush, so it is byte-aligned, has no final block and refers to nothing before it
/// (RFC 1951 back-references never cross into another group). The block's body is one zlib
/// stream: a header, every group's deflate data up to its flush in order, the last group's
/// final (empty) block and the adler32 of all the frames, combined from the groups' own. So the
/// groups are compressed once, on all cores, and serve both the wire form and the operator's
/// transaction index; any zlib decoder reads either as one ordinary stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflatedGroup {
    zlib: Vec<u8>,
    /// End of the deflate data up to and including the sync flush.
    flushed: usize,
    adler: u32,
    raw_len: u64,
    count: usize,
}

impl DeflatedGroup {
    /// The group as a zlib stream of its own: its frames, each a u32 length and the bytes.
    pub fn zlib(&self) -> &[u8] {
        &self.zlib
    }

    /// Bytes of its frames.
    pub const fn raw_len(&self) -> u64 {
        self.raw_len
    }

    /// Frames in it.
    pub const fn count(&self) -> usize {
        self.count
    }

    /// Where its deflate data up to and including the sync flush ends in [`DeflatedGroup::zlib`]
    /// (what [`encode_zlib_block`] takes of it, after the 2-byte zlib header for all but the
    /// first group).
    pub const fn flushed(&self) -> usize {
        self.flushed
    }
}

/// Deflates `txs` as frames in groups of [`ZLIB_GROUP`] on up to `threads` threads (each takes
/// a contiguous run of groups). The result does not depend on `threads`.
pub fn deflate_groups<T: AsRef<[u8]> + Sync>(
    txs: &[T],
    threads: usize,
) -> Result<Vec<DeflatedGroup>, WireError> {
    let groups = txs.len().div_ceil(ZLIB_GROUP);
    let threads = threads.clamp(1, groups.max(1));
    if threads == 1 {
        return deflate_run(txs);
    }
    // Contiguous runs of whole groups, as even as the group count allows.
    let per = groups.div_ceil(threads) * ZLIB_GROUP;
    let runs: Vec<Result<Vec<DeflatedGroup>, WireError>> = std::thread::scope(|s| {
        let handles: Vec<_> =
            txs.chunks(per).skip(1).map(|run| s.spawn(move || deflate_run(run))).collect();
        let first = deflate_run(&txs[..per.min(txs.len())]);
        std::iter::once(first)
            .chain(handles.into_iter().map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(WireError::Encode("a deflate thread panicked".into())))
            }))
            .collect()
    });
    let mut out = Vec::with_capacity(groups);
    for run in runs {
        out.extend(run?);
    }
    Ok(out)
}

/// The groups of `txs`, one after another on this thread, with one compressor reset between
/// groups.
fn deflate_run<T: AsRef<[u8]>>(txs: &[T]) -> Result<Vec<DeflatedGroup>, WireError> {
    let mut z = flate2::Compress::new(flate2::Compression::fast(), true);
    let mut frames = Vec::new();
    let mut out = Vec::with_capacity(txs.len().div_ceil(ZLIB_GROUP));
    for group in txs.chunks(ZLIB_GROUP) {
        frames.clear();
        for tx in group {
            let tx = tx.as_ref();
            if tx.len() > MAX_SIGNED_TX_BYTES {
                return Err(WireError::Encode(format!("a transaction of {} bytes", tx.len())));
            }
            frames.extend_from_slice(&(tx.len() as u32).to_be_bytes());
            frames.extend_from_slice(tx);
        }
        z.reset();
        let mut zlib = Vec::with_capacity(frames.len() / 3 + 64);
        compress_all(&mut z, &frames, &mut zlib, flate2::FlushCompress::Sync)?;
        let flushed = zlib.len();
        compress_all(&mut z, &[], &mut zlib, flate2::FlushCompress::Finish)?;
        let bad = |what: &str| Err(WireError::Encode(format!("deflate backend: {what}")));
        if flushed < ZLIB_HEADER + SYNC_MARKER.len() || zlib[flushed - 4..flushed] != SYNC_MARKER {
            return bad("a sync flush without its marker");
        }
        if zlib.len() < flushed + ZLIB_TRAILER + 1 || zlib[1] & 0x20 != 0 {
            return bad("not a zlib stream without a dictionary");
        }
        let t = &zlib[zlib.len() - ZLIB_TRAILER..];
        let adler = u32::from_be_bytes([t[0], t[1], t[2], t[3]]);
        out.push(DeflatedGroup {
            zlib,
            flushed,
            adler,
            raw_len: frames.len() as u64,
            count: group.len(),
        });
    }
    Ok(out)
}

/// Runs `z` over all of `input` with `flush`, growing `out` as needed.
fn compress_all(
    z: &mut flate2::Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: flate2::FlushCompress,
) -> Result<(), WireError> {
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let before = z.total_in();
        let status =
            z.compress_vec(input, out, flush).map_err(|e| WireError::Encode(e.to_string()))?;
        input = &input[(z.total_in() - before) as usize..];
        // A flush is complete when all the input is taken and the output was not filled.
        let done = match flush {
            flate2::FlushCompress::Finish => status == flate2::Status::StreamEnd,
            _ => input.is_empty() && out.len() < out.capacity(),
        };
        if done {
            return Ok(());
        }
    }
}

/// adler32 of `a ‖ b` from `adler32(a)`, `adler32(b)` and `b`'s length (zlib's
/// `adler32_combine`).
const fn adler32_combine(a: u32, b: u32, len_b: u64) -> u32 {
    const BASE: u64 = 65_521;
    let rem = len_b % BASE;
    let a1 = (a & 0xffff) as u64;
    let a2 = (a >> 16) as u64;
    let b1 = (b & 0xffff) as u64;
    let b2 = (b >> 16) as u64;
    let sum1 = (a1 + b1 + BASE - 1) % BASE;
    let sum2 = (rem * a1 % BASE + a2 + b2 + BASE - rem) % BASE;
    (sum1 | (sum2 << 16)) as u32
}

/// The zlib wire form of a block from its [`deflate_groups`] (see [`DeflatedGroup`]).
pub fn encode_zlib_block(
    blknum: u64,
    root: B256,
    groups: &[DeflatedGroup],
) -> Result<Vec<u8>, WireError> {
    let count: usize = groups.iter().map(|g| g.count).sum();
    if count > MAX_TXS_PER_BLOCK {
        return Err(WireError::Encode(format!("{count} transactions")));
    }
    let raw_len: u64 = groups.iter().map(|g| g.raw_len).sum();
    let body = match groups {
        [] => {
            // No frames: an empty zlib stream.
            let z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.finish().map_err(|e| WireError::Encode(e.to_string()))?
        }
        [first, .., last] | [first @ last] => {
            let len: usize = groups.iter().map(|g| g.flushed - ZLIB_HEADER).sum::<usize>()
                + ZLIB_HEADER
                + (last.zlib.len() - last.flushed);
            let mut body = Vec::with_capacity(len);
            body.extend_from_slice(&first.zlib[..ZLIB_HEADER]);
            let mut adler = 1u32; // adler32 of nothing
            for g in groups {
                body.extend_from_slice(&g.zlib[ZLIB_HEADER..g.flushed]);
                adler = adler32_combine(adler, g.adler, g.raw_len);
            }
            body.extend_from_slice(&last.zlib[last.flushed..last.zlib.len() - ZLIB_TRAILER]);
            body.extend_from_slice(&adler.to_be_bytes());
            body
        }
    };
    let header = BlockHeader {
        encoding: Encoding::Zlib,
        blknum,
        root,
        count: count as u32,
        raw_len,
        body_len: body.len() as u64,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    header.write(&mut out);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes an encoded block fed in order, in chunks of any size (a download as it arrives; after
/// a dropped connection, go on pushing from byte [`BlockDecoder::received`]).
pub struct BlockDecoder {
    header_buf: Vec<u8>,
    header: Option<BlockHeader>,
    inflate: Option<flate2::Decompress>,
    /// Frame bytes not yet split into transactions.
    pending: Vec<u8>,
    txs: Vec<Bytes>,
    received: u64,
    raw_seen: u64,
}

impl core::fmt::Debug for BlockDecoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlockDecoder")
            .field("header", &self.header)
            .field("received", &self.received)
            .field("txs", &self.txs.len())
            .finish()
    }
}

impl Default for BlockDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockDecoder {
    /// A decoder waiting for the first byte.
    pub fn new() -> Self {
        Self {
            header_buf: Vec::with_capacity(HEADER_LEN),
            header: None,
            inflate: None,
            pending: Vec::new(),
            txs: Vec::new(),
            received: 0,
            raw_seen: 0,
        }
    }

    /// The header, once its bytes arrived.
    pub const fn header(&self) -> Option<&BlockHeader> {
        self.header.as_ref()
    }

    /// Bytes pushed so far: where a resumed download starts.
    pub const fn received(&self) -> u64 {
        self.received
    }

    /// Bytes of the whole block, once the header arrived.
    pub fn expected_len(&self) -> Option<u64> {
        self.header.map(|h| h.total_len())
    }

    /// Transactions decoded so far.
    pub fn decoded(&self) -> usize {
        self.txs.len()
    }

    /// Feeds the next bytes.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<(), WireError> {
        if self.header.is_none() {
            let take = (HEADER_LEN - self.header_buf.len()).min(chunk.len());
            self.header_buf.extend_from_slice(&chunk[..take]);
            self.received += take as u64;
            chunk = &chunk[take..];
            let Ok(bytes) = <&[u8; HEADER_LEN]>::try_from(self.header_buf.as_slice()) else {
                return Ok(());
            };
            let header = BlockHeader::parse(bytes)?;
            if header.encoding == Encoding::Zlib {
                self.inflate = Some(flate2::Decompress::new(true));
            }
            self.txs.reserve_exact(header.count as usize);
            self.header = Some(header);
        }
        let Some(header) = self.header else { return Ok(()) };
        if chunk.is_empty() {
            return Ok(());
        }
        if self.received + chunk.len() as u64 > header.total_len() {
            return Err(WireError::TrailingBytes);
        }
        self.received += chunk.len() as u64;
        match self.inflate.as_mut() {
            None => {
                self.raw_seen += chunk.len() as u64;
                self.pending.extend_from_slice(chunk);
            }
            Some(z) => {
                let mut input = chunk;
                let mut out = [0u8; 64 * 1024];
                while !input.is_empty() {
                    let (in_before, out_before) = (z.total_in(), z.total_out());
                    z.decompress(input, &mut out, flate2::FlushDecompress::None)
                        .map_err(|e| WireError::Inflate(e.to_string()))?;
                    let used = (z.total_in() - in_before) as usize;
                    let made = (z.total_out() - out_before) as usize;
                    input = &input[used..];
                    self.raw_seen += made as u64;
                    if self.raw_seen > header.raw_len {
                        return Err(WireError::LengthMismatch {
                            what: "inflated body",
                            value: self.raw_seen,
                        });
                    }
                    self.pending.extend_from_slice(&out[..made]);
                    if used == 0 && made == 0 {
                        // The stream ended with input left over.
                        return Err(WireError::Inflate("data after the end of the stream".into()));
                    }
                }
                // Drain what the inflater still holds for this input.
                loop {
                    let out_before = z.total_out();
                    z.decompress(&[], &mut out, flate2::FlushDecompress::None)
                        .map_err(|e| WireError::Inflate(e.to_string()))?;
                    let made = (z.total_out() - out_before) as usize;
                    if made == 0 {
                        break;
                    }
                    self.raw_seen += made as u64;
                    if self.raw_seen > header.raw_len {
                        return Err(WireError::LengthMismatch {
                            what: "inflated body",
                            value: self.raw_seen,
                        });
                    }
                    self.pending.extend_from_slice(&out[..made]);
                }
            }
        }
        self.split_frames(&header)
    }

    fn split_frames(&mut self, header: &BlockHeader) -> Result<(), WireError> {
        let mut at = 0;
        while self.pending.len() - at >= FRAME_PREFIX {
            let p = &self.pending[at..at + FRAME_PREFIX];
            let len = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
            let index = self.txs.len() as u32;
            if len as usize > MAX_SIGNED_TX_BYTES {
                return Err(WireError::FrameTooLarge { index, len });
            }
            if index >= header.count {
                return Err(WireError::CountMismatch(format!(
                    "more than the {} transactions announced",
                    header.count
                )));
            }
            let end = at + FRAME_PREFIX + len as usize;
            if self.pending.len() < end {
                break;
            }
            self.txs.push(Bytes::copy_from_slice(&self.pending[at + FRAME_PREFIX..end]));
            at = end;
        }
        self.pending.drain(..at);
        Ok(())
    }

    /// The block, once every announced byte arrived and the frames add up.
    pub fn finish(self) -> Result<(BlockHeader, Vec<Bytes>), WireError> {
        let Some(header) = self.header else {
            return Err(WireError::Truncated {
                received: self.received,
                expected: HEADER_LEN as u64,
            });
        };
        if self.received < header.total_len() {
            return Err(WireError::Truncated {
                received: self.received,
                expected: header.total_len(),
            });
        }
        if let Some(z) = &self.inflate
            && z.total_out() != header.raw_len
        {
            return Err(WireError::LengthMismatch { what: "inflated body", value: z.total_out() });
        }
        if !self.pending.is_empty() {
            return Err(WireError::CountMismatch(format!(
                "{} bytes of an unfinished frame",
                self.pending.len()
            )));
        }
        if self.txs.len() != header.count as usize || self.raw_seen != header.raw_len {
            return Err(WireError::CountMismatch(format!(
                "{} transactions in {} bytes, {} in {} announced",
                self.txs.len(),
                self.raw_seen,
                header.count,
                header.raw_len
            )));
        }
        Ok((header, self.txs))
    }
}

/// Decodes a whole encoded block at once.
pub fn decode_block(bytes: &[u8]) -> Result<(BlockHeader, Vec<Bytes>), WireError> {
    let mut d = BlockDecoder::new();
    d.push(bytes)?;
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut t = vec![0u8; 32 * (5 + i % 7)];
                t[31] = i as u8;
                t[63] = (i >> 8) as u8;
                t
            })
            .collect()
    }

    #[test]
    fn round_trips_in_any_chunking_both_encodings() {
        let txs = sample(300);
        for enc in [Encoding::Plain, Encoding::Zlib] {
            let bytes = encode_block(7000, B256::repeat_byte(3), &txs, enc).unwrap();
            for chunk in [1, 7, 64, 4096, bytes.len()] {
                let mut d = BlockDecoder::new();
                for c in bytes.chunks(chunk) {
                    d.push(c).unwrap();
                }
                assert_eq!(d.expected_len(), Some(bytes.len() as u64));
                let (h, got) = d.finish().unwrap();
                assert_eq!((h.blknum, h.root, h.count), (7000, B256::repeat_byte(3), 300));
                assert_eq!(got.len(), txs.len());
                assert!(got.iter().zip(&txs).all(|(a, b)| a.as_ref() == b.as_slice()));
            }
        }
        let plain = encode_block(1, B256::ZERO, &txs, Encoding::Plain).unwrap();
        let zlib = encode_block(1, B256::ZERO, &txs, Encoding::Zlib).unwrap();
        assert!(zlib.len() * 2 < plain.len(), "zero-padded words compress");
    }

    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u64, 0u64);
        for &x in data {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        (a | (b << 16)) as u32
    }

    fn inflate(zlib: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(zlib), &mut out).unwrap();
        out
    }

    fn frames(txs: &[Vec<u8>]) -> Vec<u8> {
        txs.iter()
            .flat_map(|t| (t.len() as u32).to_be_bytes().into_iter().chain(t.clone()))
            .collect()
    }

    #[test]
    fn adler32_combines() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for cut in [0, 1, 5_552, 65_521, 65_522, 100_000, 200_000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(adler32_combine(adler32(a), adler32(b), b.len() as u64), adler32(&data));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// The body deflated in groups on any number of threads is the same bytes as on one,
        /// inflates (adler32 checked) to the frames, and each group inflates to its own frames.
        #[test]
        fn grouped_deflate_is_the_same_on_any_threads_and_decodes(
            sizes in proptest::collection::vec(0usize..600, 0..700),
            seed in proptest::prelude::any::<u64>(),
            threads in 2usize..6,
        ) {
            let mut x = seed | 1;
            let txs: Vec<Vec<u8>> = sizes
                .iter()
                .map(|&n| {
                    (0..n)
                        .map(|i| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            // ABI-like: mostly zero words, some random bytes.
                            if i % 32 > 24 { x as u8 } else { 0 }
                        })
                        .collect()
                })
                .collect();
            let one = deflate_groups(&txs, 1).unwrap();
            let many = deflate_groups(&txs, threads).unwrap();
            proptest::prop_assert_eq!(&one, &many);
            let root = B256::repeat_byte(seed as u8);
            let bytes = encode_block(9000, root, &txs, Encoding::Zlib).unwrap();
            proptest::prop_assert_eq!(&bytes, &encode_zlib_block(9000, root, &one).unwrap());
            let (h, got) = decode_block(&bytes).unwrap();
            proptest::prop_assert_eq!((h.blknum, h.root, h.count as usize), (9000, root, txs.len()));
            proptest::prop_assert!(got.iter().zip(&txs).all(|(a, b)| a.as_ref() == b.as_slice()));
            proptest::prop_assert_eq!(got.len(), txs.len());
            for (g, chunk) in one.iter().zip(txs.chunks(ZLIB_GROUP)) {
                proptest::prop_assert_eq!(inflate(g.zlib()), frames(chunk));
                proptest::prop_assert_eq!(g.count(), chunk.len());
            }
            // The body is one zlib stream whose adler32 covers every frame.
            proptest::prop_assert_eq!(inflate(&bytes[HEADER_LEN..]), frames(&txs));
        }
    }

    #[test]
    fn a_wrong_checksum_is_refused() {
        let txs = sample(200);
        let mut bytes = encode_block(2000, B256::ZERO, &txs, Encoding::Zlib).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(decode_block(&bytes), Err(WireError::Inflate(_))));
    }

    #[test]
    fn an_empty_block_round_trips() {
        let bytes = encode_block::<Vec<u8>>(1000, B256::ZERO, &[], Encoding::Zlib).unwrap();
        let (h, txs) = decode_block(&bytes).unwrap();
        assert_eq!((h.count, txs.len()), (0, 0));
    }

    #[test]
    fn refuses_truncation_trailing_bytes_and_lies_in_the_header() {
        let txs = sample(20);
        for enc in [Encoding::Plain, Encoding::Zlib] {
            let bytes = encode_block(2000, B256::ZERO, &txs, enc).unwrap();
            assert!(matches!(
                decode_block(&bytes[..bytes.len() - 1]),
                Err(WireError::Truncated { .. })
            ));
            assert!(matches!(decode_block(&bytes[..10]), Err(WireError::Truncated { .. })));
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(decode_block(&long), Err(WireError::TrailingBytes));
            // One transaction fewer announced than sent.
            let mut fewer = bytes.clone();
            fewer[48] -= 1;
            assert!(decode_block(&fewer).is_err());
        }
        let mut bad = encode_block(2000, B256::ZERO, &txs, Encoding::Plain).unwrap();
        bad[0] = b'X';
        assert_eq!(decode_block(&bad), Err(WireError::BadMagic));
        bad[0] = b'P';
        bad[4] = 9;
        assert_eq!(decode_block(&bad), Err(WireError::UnknownEncoding(9)));
    }

    #[test]
    fn a_header_cannot_make_the_decoder_allocate_or_inflate_beyond_a_block() {
        // 2^32-1 transactions.
        let mut h = encode_block::<Vec<u8>>(1000, B256::ZERO, &[], Encoding::Plain).unwrap();
        h[45..49].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode_block(&h), Err(WireError::TooManyTxs(u32::MAX)));
        // A frame longer than any transaction.
        let mut f = encode_block(1000, B256::ZERO, &[vec![0u8; 8]], Encoding::Plain).unwrap();
        f[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_block(&f).is_err());
        // A zlib bomb: a megabyte of zeros announced as a short body.
        let zeros = vec![vec![0u8; MAX_SIGNED_TX_BYTES]; 1000];
        let mut bomb = encode_block(1000, B256::ZERO, &zeros, Encoding::Zlib).unwrap();
        bomb[45..49].copy_from_slice(&1u32.to_be_bytes());
        assert!(decode_block(&bomb).is_err());
    }
}
