//! Encoding, decoding and checked rebuilding of data (spec: DA-1).
//!
//! Everything is organised as "rows × chunks": row `r` of every chunk is one codeword of the
//! `k`-of-`n` code, and rows are independent. The work is done in blocks of [`BLOCK`] rows: the
//! block's source symbols are loaded into a small buffer once (bytes → words, no arithmetic:
//! see `field`), every target chunk's block is computed from it, and the two halves of the rows
//! go to two threads. Coefficients are computed once per call (once per erasure pattern).

use crate::{
    DaError,
    field::{
        F, NARROW_MAX_TERMS, P, Points, bitrev, canonical, dot_narrow, dot_wide, lagrange, raw,
    },
    params::{Params, SYMBOL_DATA_BYTES, SYMBOL_WIRE_BYTES, check_len},
    tree::{ChunkProof, ChunkTree, chunk_root as root_of},
};
use alloy_primitives::B256;
use ark_ff::{FftField, Zero};
use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};

/// Below this many bytes of work, one thread: spawning costs more than it saves.
pub(crate) const PARALLEL_MIN_BYTES: usize = 1 << 16;
/// Rows per block: `sources × BLOCK` words stay in L1/L2 while the targets are computed.
const BLOCK: usize = 256;
/// The 56 bits of a data symbol.
const MASK56: u64 = (1 << 56) - 1;

/// The `n` chunks of some data and their commitment (spec: DA-1, DA-2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The code.
    pub params: Params,
    /// Length of the encoded data in bytes.
    pub data_len: u64,
    /// Chunk `c` at position `c`, each `params.chunk_len(data_len)` bytes.
    pub chunks: Vec<Vec<u8>>,
    tree: ChunkTree,
}

impl Encoded {
    /// The chunk root (spec: DA-2).
    pub fn root(&self) -> B256 {
        self.tree.root()
    }

    /// The proof of chunk `index` (empty, and so verifying nothing, if `index ≥ n` and `n > 1`).
    pub fn proof(&self, index: u16) -> ChunkProof {
        if index >= self.params.n {
            return ChunkProof::default();
        }
        self.tree.proof(usize::from(index))
    }
}

/// Encodes `data` into `params.n` chunks and commits to them, on up to two threads
/// (spec: DA-1, DA-2).
pub fn encode(data: &[u8], params: Params) -> Result<Encoded, DaError> {
    let params = params.validate()?;
    check_len(data.len() as u64)?;
    let chunks = encode_chunks_by(data, params, params.uses_fft());
    let tree = ChunkTree::from_chunks(&chunks);
    tracing::trace!(target: "da::code", k = params.k, n = params.n, len = data.len(), "encoded");
    Ok(Encoded { params, data_len: data.len() as u64, chunks, tree })
}

/// Decodes the data from any `k` distinct chunks (more are fine; data chunks are preferred, and
/// if all `k` data chunks are there decoding is a copy). *Unchecked*: `k` chunks from different
/// codewords decode to something; only [`rebuild`] proves the chunks are the committed codeword.
/// Cheap signs of a non-codeword (a value `≥ p`, a data symbol `≥ 2^56`, non-zero padding) are
/// reported as [`DaError::Malformed`].
pub fn decode(params: Params, data_len: u64, chunks: &[(u16, &[u8])]) -> Result<Vec<u8>, DaError> {
    let params = params.validate()?;
    check_len(data_len)?;
    let selected = select(params, data_len, chunks)?;
    let (mut out, flags) = decode_padded(params, data_len, &selected);
    if flags.noncanonical {
        return Err(DaError::Malformed("a chunk holds a symbol not below p".into()));
    }
    if flags.overflow {
        return Err(DaError::Malformed("not a codeword: a data symbol is not below 2^56".into()));
    }
    let len = data_len as usize;
    if out[len..].iter().any(|&b| b != 0) {
        return Err(DaError::Malformed("not a codeword: non-zero padding".into()));
    }
    out.truncate(len);
    Ok(out)
}

/// Checked decode (spec: DA-1): decodes from any `k` chunks, re-encodes all `n` and compares the
/// chunk root. Chunks that are not the codeword committed by `chunk_root` give
/// [`DaError::BadEncoding`] — so two towers rebuilding from different subsets can never get two
/// different blocks. On success every given chunk (used or not) is the committed chunk at its
/// index; one that is not, while `k` others rebuild the committed data, gives
/// [`DaError::BadProof`].
pub fn rebuild(
    params: Params,
    data_len: u64,
    chunk_root: B256,
    chunks: &[(u16, &[u8])],
) -> Result<Vec<u8>, DaError> {
    let params = params.validate()?;
    check_len(data_len)?;
    let selected = select(params, data_len, chunks)?;
    let n = usize::from(params.n);
    let len = data_len as usize;
    let (mut out, flags) = decode_padded(params, data_len, &selected);
    // Clean (no value reduced mod p, no symbol cut to 7 bytes, zero padding): re-encoding the
    // data gives the same polynomials, which pass through the chunks decoded from. Those need
    // no re-encoding; only the others are computed, and every chunk is hashed.
    let clean = !flags.noncanonical && !flags.overflow && out[len..].iter().all(|&b| b == 0);
    out.truncate(len);
    let mut known: Vec<Option<&[u8]>> = vec![None; n];
    if clean {
        for &(c, chunk) in &selected {
            known[c] = Some(chunk);
        }
    }
    let want: Vec<bool> = known.iter().map(Option::is_none).collect();
    let computed = encode_some(&out, params, params.uses_fft(), &want);
    let all: Vec<&[u8]> =
        known.iter().zip(&computed).map(|(k, c)| k.or(c.as_deref()).unwrap_or_default()).collect();
    let rebuilt = root_of(&all);
    if rebuilt != chunk_root {
        tracing::debug!(target: "da::code", %chunk_root, %rebuilt, clean, "chunks are not the committed codeword");
        return Err(DaError::BadEncoding { expected: chunk_root, rebuilt });
    }
    // The root is right, so the data is; a given chunk that differs from the committed one at its
    // index (it could only be non-zero padding or a symbol reduced mod p) fails its proof.
    for &(index, chunk) in chunks {
        if all.get(usize::from(index)).is_none_or(|c| *c != chunk) {
            tracing::debug!(target: "da::code", index, "a given chunk is not the committed one");
            return Err(DaError::BadProof { index });
        }
    }
    tracing::trace!(target: "da::code", k = params.k, n = params.n, len, "rebuilt");
    Ok(out)
}

/// Checks a chunk set and picks `k` of them, data chunks first, in index order.
fn select<'a>(
    params: Params,
    data_len: u64,
    chunks: &[(u16, &'a [u8])],
) -> Result<Vec<(usize, &'a [u8])>, DaError> {
    let (k, n) = (usize::from(params.k), params.n);
    let expected = params.chunk_len(data_len);
    let mut given: Vec<Option<&[u8]>> = vec![None; usize::from(n)];
    for &(index, chunk) in chunks {
        let slot =
            given.get_mut(usize::from(index)).ok_or(DaError::IndexOutOfRange { index, n })?;
        if slot.is_some() {
            return Err(DaError::DuplicateIndex(index));
        }
        if chunk.len() != expected {
            return Err(DaError::ChunkLength {
                index,
                expected: expected as u64,
                got: chunk.len() as u64,
            });
        }
        *slot = Some(chunk);
    }
    let selected: Vec<(usize, &[u8])> =
        given.into_iter().enumerate().filter_map(|(i, c)| c.map(|c| (i, c))).take(k).collect();
    if selected.len() < k {
        return Err(DaError::TooFewChunks { have: selected.len(), need: k });
    }
    Ok(selected)
}

/// The chunks of `data` by the FFT or the matrix encoder (both give the same chunks).
fn encode_chunks_by(data: &[u8], params: Params, fft: bool) -> Vec<Vec<u8>> {
    let all = vec![true; usize::from(params.n)];
    encode_some(data, params, fft, &all).into_iter().flatten().collect()
}

/// The chunks `c` of `data` with `want[c]` (the others `None`).
fn encode_some(data: &[u8], params: Params, fft: bool, want: &[bool]) -> Vec<Option<Vec<u8>>> {
    let (k, n) = (usize::from(params.k), usize::from(params.n));
    let m = params.rows(data.len() as u64);
    let mut chunks: Vec<Option<Vec<u8>>> =
        want.iter().map(|&w| w.then(|| vec![0u8; SYMBOL_WIRE_BYTES * m])).collect();
    let srcs: Vec<Src<'_>> =
        (0..k).map(|i| Src::Packed { data, offset: SYMBOL_DATA_BYTES * i * m }).collect();
    let (data_chunks, parity) = chunks.split_at_mut(k);
    if fft {
        let rules: Vec<Rule<'_>> = (0..k).filter(|&i| want[i]).map(Rule::Copy).collect();
        run(&srcs, &rules, wide(data_chunks), m);
        if parity.iter().any(Option::is_some) {
            // The FFT makes every parity chunk at once; keep the wanted ones.
            let mut all: Vec<Vec<u8>> = (k..n).map(|_| vec![0u8; SYMBOL_WIRE_BYTES * m]).collect();
            fft_parity(
                &srcs,
                params,
                all.iter_mut().map(|c| Dst { bytes: c, width: 8 }).collect(),
                m,
            );
            for (slot, chunk) in parity.iter_mut().zip(all) {
                if slot.is_some() {
                    *slot = Some(chunk);
                }
            }
        }
    } else {
        let kk = params.data_domain();
        let targets: Vec<usize> =
            (k..n).filter(|&c| want[c]).map(|c| params.domain_index(c)).collect();
        let live: Vec<usize> = (0..k).collect();
        let zeros: Vec<usize> = (k..kk).collect();
        let coeffs: Vec<u64> = lagrange(&Points::new(params.domain()), &live, &zeros, &targets)
            .into_iter()
            .map(canonical)
            .collect();
        let rules: Vec<Rule<'_>> = (0..k)
            .filter(|&i| want[i])
            .map(Rule::Copy)
            .chain(coeffs.chunks_exact(k).map(Rule::Combine))
            .collect();
        run(&srcs, &rules, wide(&mut chunks), m);
    }
    chunks
}

/// Decodes into the zero-padded `7·k·m` data bytes.
fn decode_padded(params: Params, data_len: u64, selected: &[(usize, &[u8])]) -> (Vec<u8>, Flags) {
    let k = usize::from(params.k);
    let m = params.rows(data_len);
    let mut out = vec![0u8; SYMBOL_DATA_BYTES * k * m];
    let srcs: Vec<Src<'_>> = selected.iter().map(|&(_, c)| Src::Wide(c)).collect();
    let mut position = vec![None; k];
    for (s, &(c, _)) in selected.iter().enumerate() {
        if c < k {
            position[c] = Some(s);
        }
    }
    let missing: Vec<usize> = (0..k).filter(|&i| position[i].is_none()).collect();
    let coeffs = if missing.is_empty() {
        Vec::new()
    } else {
        let live: Vec<usize> = selected.iter().map(|&(c, _)| params.domain_index(c)).collect();
        let zeros: Vec<usize> = (k..params.data_domain()).collect();
        lagrange(&Points::new(params.domain()), &live, &zeros, &missing)
            .into_iter()
            .map(canonical)
            .collect()
    };
    let mut rows = coeffs.chunks_exact(selected.len().max(1));
    let rules: Vec<Rule<'_>> = position
        .iter()
        .map(|p| match p {
            Some(s) => Rule::Copy(*s),
            None => Rule::Combine(rows.next().unwrap_or_default()),
        })
        .collect();
    let dsts = out.chunks_mut(SYMBOL_DATA_BYTES * m).map(|bytes| Dst { bytes, width: 7 }).collect();
    let flags = run(&srcs, &rules, dsts, m);
    (out, flags)
}

/// The wanted chunks as 8-byte-symbol targets, in index order.
fn wide(chunks: &mut [Option<Vec<u8>>]) -> Vec<Dst<'_>> {
    chunks.iter_mut().flatten().map(|c| Dst { bytes: c, width: SYMBOL_WIRE_BYTES }).collect()
}

/// Where a block of source symbols comes from.
#[derive(Clone, Copy, Debug)]
enum Src<'a> {
    /// 7-byte symbols of the data, this chunk's first at byte `offset`; bytes past the end are 0.
    Packed { data: &'a [u8], offset: usize },
    /// 8-byte little-endian symbols of a received chunk.
    Wide(&'a [u8]),
}

impl Src<'_> {
    /// Loads `out.len()` symbols from `row` on, reduced below `p`; true if any was not.
    #[inline]
    fn load(&self, row: usize, out: &mut [u64]) -> bool {
        match *self {
            Src::Packed { data, offset } => {
                let mut off = offset + SYMBOL_DATA_BYTES * row;
                for o in out.iter_mut() {
                    *o = match data.get(off..).and_then(<[u8]>::first_chunk::<8>) {
                        Some(b) => u64::from_le_bytes(*b) & MASK56,
                        None => read_tail(data, off),
                    };
                    off += SYMBOL_DATA_BYTES;
                }
                false
            }
            Src::Wide(chunk) => {
                let bytes = &chunk[SYMBOL_WIRE_BYTES * row..SYMBOL_WIRE_BYTES * (row + out.len())];
                let (words, _) = bytes.as_chunks::<8>();
                let mut bad = false;
                for (o, w) in out.iter_mut().zip(words) {
                    let v = u64::from_le_bytes(*w);
                    let big = v >= P;
                    bad |= big;
                    *o = if big { v - P } else { v };
                }
                bad
            }
        }
    }
}

/// The last symbols of the data, where fewer than 8 bytes are left.
fn read_tail(data: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(rest) = data.get(off..) {
        let take = rest.len().min(SYMBOL_DATA_BYTES);
        b[..take].copy_from_slice(&rest[..take]);
    }
    u64::from_le_bytes(b)
}

/// A target chunk (or this thread's rows of it): `width` bytes per symbol (8 chunk, 7 data).
#[derive(Debug)]
struct Dst<'a> {
    bytes: &'a mut [u8],
    width: usize,
}

impl Dst<'_> {
    /// Stores symbols from `row` on; true if a 7-byte symbol did not fit (value `≥ 2^56`).
    #[inline]
    fn store(&mut self, row: usize, vals: &[u64]) -> bool {
        let out = &mut self.bytes[self.width * row..self.width * (row + vals.len())];
        if self.width == SYMBOL_WIRE_BYTES {
            let (words, _) = out.as_chunks_mut::<8>();
            for (w, v) in words.iter_mut().zip(vals) {
                *w = v.to_le_bytes();
            }
            false
        } else {
            let mut high = 0;
            for (w, v) in out.chunks_exact_mut(SYMBOL_DATA_BYTES).zip(vals) {
                w.copy_from_slice(&v.to_le_bytes()[..SYMBOL_DATA_BYTES]);
                high |= v >> 56;
            }
            high != 0
        }
    }

    fn split(self, row: usize) -> (Self, Self) {
        let (a, b) = self.bytes.split_at_mut(self.width * row);
        (Dst { bytes: a, width: self.width }, Dst { bytes: b, width: self.width })
    }
}

/// How a target chunk is made from the sources.
#[derive(Clone, Copy, Debug)]
enum Rule<'a> {
    /// A copy of source `s` (no arithmetic).
    Copy(usize),
    /// `Σ_s c_s · source_s mod p`, coefficients in standard form.
    Combine(&'a [u64]),
}

/// What went wrong in the symbols (never in the code: these are properties of the input).
#[derive(Clone, Copy, Debug, Default)]
struct Flags {
    /// A source symbol was not below `p`.
    noncanonical: bool,
    /// A 7-byte target symbol was not below `2^56`.
    overflow: bool,
}

impl core::ops::BitOr for Flags {
    type Output = Self;
    fn bitor(self, o: Self) -> Self {
        Self {
            noncanonical: self.noncanonical | o.noncanonical,
            overflow: self.overflow | o.overflow,
        }
    }
}

/// Runs `part(dsts, first_row, rows)` over `rows` rows, split in two halves on two threads when
/// the work is big enough.
fn split_rows(
    dsts: Vec<Dst<'_>>,
    rows: usize,
    bytes: usize,
    part: impl Fn(&mut [Dst<'_>], usize, usize) -> Flags + Sync,
) -> Flags {
    let mut dsts = dsts;
    if rows < 2 * BLOCK || bytes < PARALLEL_MIN_BYTES {
        return part(&mut dsts, 0, rows);
    }
    let mid = rows / 2;
    let (mut lo, mut hi): (Vec<_>, Vec<_>) = dsts.into_iter().map(|d| d.split(mid)).unzip();
    std::thread::scope(|s| {
        let part = &part;
        let other = s.spawn(move || part(&mut hi, mid, rows - mid));
        let here = part(&mut lo, 0, mid);
        match other.join() {
            Ok(there) => here | there,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Applies one rule per target over all rows.
fn run(srcs: &[Src<'_>], rules: &[Rule<'_>], dsts: Vec<Dst<'_>>, rows: usize) -> Flags {
    let bytes = rows * SYMBOL_WIRE_BYTES * (srcs.len() + rules.len());
    split_rows(dsts, rows, bytes, |dsts, row0, rows| run_part(srcs, rules, dsts, row0, rows))
}

fn run_part(
    srcs: &[Src<'_>],
    rules: &[Rule<'_>],
    dsts: &mut [Dst<'_>],
    row0: usize,
    rows: usize,
) -> Flags {
    let ns = srcs.len();
    // Data symbols are below 2^56: one 128-bit accumulator per output then suffices.
    let narrow = ns <= NARROW_MAX_TERMS && srcs.iter().all(|s| matches!(s, Src::Packed { .. }));
    let mut flags = Flags::default();
    let mut col = vec![0u64; BLOCK];
    // Row-major: the `ns` source words of one row are contiguous for the dot products.
    let mut buf = vec![0u64; ns * BLOCK];
    // Target-major: each target's block is stored in one sweep.
    let mut out = vec![0u64; rules.len() * BLOCK];
    for b0 in (0..rows).step_by(BLOCK) {
        let len = BLOCK.min(rows - b0);
        for (s, src) in srcs.iter().enumerate() {
            flags.noncanonical |= src.load(row0 + b0, &mut col[..len]);
            for (r, &v) in col[..len].iter().enumerate() {
                buf[r * ns + s] = v;
            }
        }
        for (r, row) in buf.chunks_exact(ns.max(1)).take(len).enumerate() {
            for (t, rule) in rules.iter().enumerate() {
                out[t * BLOCK + r] = match *rule {
                    Rule::Copy(s) => row[s],
                    Rule::Combine(coeffs) if narrow => dot_narrow(row, coeffs),
                    Rule::Combine(coeffs) => dot_wide(row, coeffs),
                };
            }
        }
        for (dst, vals) in dsts.iter_mut().zip(out.chunks_exact(BLOCK)) {
            flags.overflow |= dst.store(b0, &vals[..len]);
        }
    }
    flags
}

/// Rows the FFT path transforms at once: ark-poly's butterflies run over [`Lanes`] of this many
/// rows, so its per-call set-up (twiddles, reordering) is paid once per `LANES` rows.
const LANES: usize = 16;

/// `LANES` rows' values at one point: the coefficient type ark-poly's FFTs run over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lanes([F; LANES]);

impl core::ops::Add for Lanes {
    type Output = Self;
    #[inline(always)]
    fn add(mut self, o: Self) -> Self {
        self += o;
        self
    }
}

impl core::ops::Sub for Lanes {
    type Output = Self;
    #[inline(always)]
    fn sub(mut self, o: Self) -> Self {
        self -= o;
        self
    }
}

impl core::ops::AddAssign for Lanes {
    #[inline(always)]
    fn add_assign(&mut self, o: Self) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
}

impl core::ops::SubAssign for Lanes {
    #[inline(always)]
    fn sub_assign(&mut self, o: Self) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a -= b;
        }
    }
}

impl core::ops::MulAssign<F> for Lanes {
    #[inline(always)]
    fn mul_assign(&mut self, c: F) {
        for a in &mut self.0 {
            *a *= c;
        }
    }
}

impl Zero for Lanes {
    fn zero() -> Self {
        Self([F::zero(); LANES])
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(Zero::is_zero)
    }
}

/// Parity chunks by FFT (spec: DA-1): per row, the data's coefficients by an inverse FFT over
/// the size-`K` subgroup, then one coset FFT per coset of it that holds parity points. Coset `s`
/// (domain indices `sK … sK+K−1`) is `ω^{bitrev_{N/K}(s)}·H`, and domain index `sK + u` is its
/// point `bitrev_K(u)`.
fn fft_parity(srcs: &[Src<'_>], params: Params, dsts: Vec<Dst<'_>>, rows: usize) {
    let (k, n) = (usize::from(params.k), usize::from(params.n));
    let (kk, nn) = (params.data_domain(), params.domain());
    let (log_k, log_cosets) = (kk.trailing_zeros(), (nn / kk).trailing_zeros());
    let end = n + kk - k; // one past the last parity domain index
    let Some(subgroup) = Radix2EvaluationDomain::<F>::new(kk) else {
        unreachable!("radix-2 domains exist up to 2^32, asked {kk}")
    };
    let omega = F::get_root_of_unity(nn as u64)
        .unwrap_or_else(|| unreachable!("roots of unity exist up to 2^32, asked {nn}"));
    let cosets: Vec<(usize, Radix2EvaluationDomain<F>)> = (1..end.div_ceil(kk))
        .filter_map(|s| {
            let offset = ark_ff::Field::pow(&omega, [bitrev(s, log_cosets) as u64]);
            subgroup.get_coset(offset).map(|d| (s, d))
        })
        .collect();
    let bytes = rows * SYMBOL_WIRE_BYTES * n;
    split_rows(dsts, rows, bytes, |dsts, row0, rows| {
        let mut buf = vec![0u64; k * BLOCK];
        let mut coeffs: Vec<Lanes> = Vec::with_capacity(kk);
        let mut evals: Vec<Lanes> = Vec::with_capacity(kk);
        let mut out = [0u64; LANES];
        for b0 in (0..rows).step_by(BLOCK) {
            let len = BLOCK.min(rows - b0);
            for (src, col) in srcs.iter().zip(buf.chunks_exact_mut(BLOCK)) {
                col[len..].fill(0);
                src.load(row0 + b0, &mut col[..len]);
            }
            for r0 in (0..len).step_by(LANES) {
                let lanes = LANES.min(len - r0);
                // Natural order t holds the data symbol at ω_K^t, i.e. chunk bitrev_K(t).
                coeffs.clear();
                coeffs.extend((0..kk).map(|t| {
                    let i = bitrev(t, log_k);
                    let mut l = Lanes::zero();
                    if i < k {
                        for (x, &v) in l.0.iter_mut().zip(&buf[i * BLOCK + r0..]) {
                            *x = raw(v);
                        }
                    }
                    l
                }));
                subgroup.ifft_in_place(&mut coeffs);
                for (s, coset) in &cosets {
                    evals.clone_from(&coeffs);
                    coset.fft_in_place(&mut evals);
                    for u in 0..kk {
                        let j = s * kk + u;
                        if j < end {
                            let parity = j - kk; // chunk j − (K − k), minus the k data chunks
                            for (o, x) in out.iter_mut().zip(&evals[bitrev(u, log_k)].0) {
                                *o = x.value;
                            }
                            dsts[parity].store(b0 + r0, &out[..lanes]);
                        }
                    }
                }
            }
        }
        Flags::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::verify_chunk;
    use ark_ff::{One, PrimeField};
    use proptest::prelude::*;

    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
    }

    fn symbols(chunk: &[u8]) -> Vec<u64> {
        chunk.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap())).collect()
    }

    /// The chunks by the definition: P_r through (x_i, d_{i,r}) for i < K (zeros past k),
    /// evaluated at every chunk's point, all in standard form.
    fn naive(data: &[u8], params: Params) -> Vec<Vec<u64>> {
        let (k, n, kk) = (params.k as usize, params.n as usize, params.data_domain());
        let m = params.rows(data.len() as u64);
        let pts = Points::new(params.domain());
        let xs: Vec<F> = (0..kk).map(|j| pts.point(j)).collect();
        let mut out = vec![vec![0u64; m]; n];
        for r in 0..m {
            let d: Vec<F> = (0..kk)
                .map(|i| {
                    if i >= k {
                        return F::zero();
                    }
                    let mut b = [0u8; 8];
                    for (t, byte) in b.iter_mut().take(7).enumerate() {
                        *byte = data.get(7 * (i * m + r) + t).copied().unwrap_or(0);
                    }
                    F::from(u64::from_le_bytes(b))
                })
                .collect();
            for (c, col) in out.iter_mut().enumerate() {
                let x = pts.point(params.domain_index(c));
                let mut v = F::zero();
                for (i, &xi) in xs.iter().enumerate() {
                    let mut l = F::one();
                    for (j, &xj) in xs.iter().enumerate() {
                        if i != j {
                            l *= (x - xj) / (xi - xj);
                        }
                    }
                    v += l * d[i];
                }
                col[r] = v.into_bigint().0[0];
            }
        }
        out
    }

    #[test]
    fn chunks_are_the_polynomials_evaluations() {
        for (k, n, len) in [(1, 1, 5), (1, 3, 20), (2, 3, 30), (3, 5, 100), (4, 7, 57), (5, 9, 300)]
        {
            let params = Params::new(k, n).unwrap();
            let data = bytes(len, 7);
            let enc = encode(&data, params).unwrap();
            let expected = naive(&data, params);
            for (c, (chunk, want)) in enc.chunks.iter().zip(&expected).enumerate() {
                assert_eq!(&symbols(chunk), want, "k={k} n={n} chunk {c}");
            }
        }
    }

    #[test]
    fn fft_and_matrix_encoders_agree() {
        for (k, n, len) in
            [(3, 40, 1000), (32, 64, 5000), (1, 33, 10), (20, 100, 20_000), (64, 128, 70_000)]
        {
            let params = Params::new(k, n).unwrap();
            let data = bytes(len, 3);
            assert_eq!(
                encode_chunks_by(&data, params, true),
                encode_chunks_by(&data, params, false),
                "k={k} n={n}"
            );
        }
    }

    #[test]
    fn fft_matches_the_definition() {
        let params = Params::new(3, 40).unwrap();
        let data = bytes(200, 9);
        let chunks = encode_chunks_by(&data, params, true);
        let expected = naive(&data, params);
        for (c, (chunk, want)) in chunks.iter().zip(&expected).enumerate() {
            assert_eq!(&symbols(chunk), want, "chunk {c}");
        }
    }

    #[test]
    fn big_inputs_use_both_threads_and_round_trip() {
        // Big enough to split rows over two threads and span many blocks.
        let params = Params::new(3, 5).unwrap();
        let data = bytes(1 << 20, 1);
        let enc = encode(&data, params).unwrap();
        let set: Vec<(u16, &[u8])> =
            vec![(1, &enc.chunks[1]), (3, &enc.chunks[3]), (4, &enc.chunks[4])];
        assert_eq!(decode(params, data.len() as u64, &set).unwrap(), data);
        assert_eq!(rebuild(params, data.len() as u64, enc.root(), &set).unwrap(), data);
    }

    #[test]
    fn fft_params_rebuild_from_any_subset() {
        for (k, n, len) in [(5u16, 40u16, 3000usize), (20, 70, 9000), (33, 66, 5000)] {
            let params = Params::new(k, n).unwrap();
            let data = bytes(len, 11);
            let enc = encode(&data, params).unwrap();
            for shift in [0u16, 1, n / 3, n - k] {
                // Every other index from `shift`, wrapping, until k are taken.
                let idx: Vec<u16> = (0..n).map(|i| (shift + 2 * i) % n).collect();
                let mut seen = Vec::new();
                for i in idx.into_iter().chain(0..n) {
                    if !seen.contains(&i) && seen.len() < usize::from(k) {
                        seen.push(i);
                    }
                }
                let set: Vec<(u16, &[u8])> =
                    seen.iter().map(|&c| (c, enc.chunks[usize::from(c)].as_slice())).collect();
                assert_eq!(rebuild(params, len as u64, enc.root(), &set).unwrap(), data);
                assert_eq!(decode(params, len as u64, &set).unwrap(), data);
            }
        }
    }

    #[test]
    fn all_data_chunks_decode_by_copy() {
        let params = Params::new(4, 6).unwrap();
        let data = bytes(999, 2);
        let enc = encode(&data, params).unwrap();
        let set: Vec<(u16, &[u8])> =
            (0..6).rev().map(|c| (c, enc.chunks[c as usize].as_slice())).collect();
        assert_eq!(decode(params, 999, &set).unwrap(), data);
    }

    #[test]
    fn rejects_bad_chunk_sets() {
        let params = Params::new(2, 4).unwrap();
        let data = bytes(100, 0);
        let enc = encode(&data, params).unwrap();
        let c = |i: usize| enc.chunks[i].as_slice();
        assert_eq!(
            decode(params, 100, &[(0, c(0))]),
            Err(DaError::TooFewChunks { have: 1, need: 2 })
        );
        assert_eq!(decode(params, 100, &[(0, c(0)), (0, c(0))]), Err(DaError::DuplicateIndex(0)));
        assert_eq!(
            decode(params, 100, &[(4, c(0))]),
            Err(DaError::IndexOutOfRange { index: 4, n: 4 })
        );
        assert_eq!(
            decode(params, 100, &[(1, &c(1)[1..]), (0, c(0))]),
            Err(DaError::ChunkLength { index: 1, expected: 64, got: 63 })
        );
        assert!(matches!(decode(params, 1 << 28, &[]), Err(DaError::DataTooLong { .. })));
        assert!(matches!(decode(Params { k: 3, n: 2 }, 1, &[]), Err(DaError::BadParams { .. })));
        // A parity symbol of all ones is not below p.
        let mut bad = c(3).to_vec();
        bad[..8].fill(0xff);
        assert!(matches!(decode(params, 100, &[(1, c(1)), (3, &bad)]), Err(DaError::Malformed(_))));
    }

    #[test]
    fn a_tampered_chunk_fails_its_proof() {
        let params = Params::new(3, 5).unwrap();
        let enc = encode(&bytes(500, 4), params).unwrap();
        for i in 0..5u16 {
            let mut chunk = enc.chunks[i as usize].clone();
            assert!(verify_chunk(enc.root(), 5, i, &chunk, &enc.proof(i)));
            chunk[7] ^= 1;
            assert!(!verify_chunk(enc.root(), 5, i, &chunk, &enc.proof(i)));
            assert!(!verify_chunk(
                enc.root(),
                5,
                (i + 1) % 5,
                &enc.chunks[i as usize],
                &enc.proof(i)
            ));
        }
    }

    #[test]
    fn mixed_codewords_give_bad_encoding() {
        let params = Params::new(3, 5).unwrap();
        let (a, b) = (bytes(300, 1), bytes(300, 2));
        let (ea, eb) = (encode(&a, params).unwrap(), encode(&b, params).unwrap());
        // Two of a's chunks and one of b's: decodes to something, but not to a's root.
        let set: Vec<(u16, &[u8])> =
            vec![(0, &ea.chunks[0]), (2, &ea.chunks[2]), (4, &eb.chunks[4])];
        let err = rebuild(params, 300, ea.root(), &set).unwrap_err();
        assert!(matches!(err, DaError::BadEncoding { expected, .. } if expected == ea.root()));
        assert_eq!(err.code(), "BadEncoding");
        // A tampered parity chunk the same.
        let mut t = ea.chunks[3].clone();
        t[0] ^= 1;
        let set: Vec<(u16, &[u8])> = vec![(0, &ea.chunks[0]), (3, &t), (4, &ea.chunks[4])];
        assert!(matches!(rebuild(params, 300, ea.root(), &set), Err(DaError::BadEncoding { .. })));
        // Non-zero padding in a data chunk's last symbol: not any data's codeword.
        let mut p = ea.chunks[2].clone();
        let last = p.len() - 2;
        p[last] = 1;
        let set: Vec<(u16, &[u8])> = vec![(0, &ea.chunks[0]), (1, &ea.chunks[1]), (2, &p)];
        assert_eq!(rebuild(params, 300, ea.root(), &set), Err(DaError::BadProof { index: 2 }));
        assert!(matches!(decode(params, 300, &set), Err(DaError::Malformed(_))));
        // An extra chunk that is not the committed one is caught even though k others suffice.
        let set: Vec<(u16, &[u8])> =
            vec![(0, &ea.chunks[0]), (1, &ea.chunks[1]), (2, &ea.chunks[2]), (3, &t)];
        assert_eq!(rebuild(params, 300, ea.root(), &set), Err(DaError::BadProof { index: 3 }));
    }

    #[test]
    fn a_non_canonical_codeword_is_refused_even_under_its_own_root() {
        // An operator commits to chunks whose data symbol is ≥ 2^56 (not data of any block):
        // every tower that rebuilds gets BadEncoding, whatever k chunks it has.
        let params = Params::new(2, 3).unwrap();
        let mut chunks = encode_chunks_by(&bytes(14, 5), params, false);
        chunks[0][7] = 1; // data symbol 0 of chunk 0 becomes ≥ 2^56 ...
        // ... and the parity recomputed so the three chunks are one codeword.
        let d0 = F::from(u64::from_le_bytes(chunks[0][..8].try_into().unwrap()));
        let d1 = F::from(u64::from_le_bytes(chunks[1][..8].try_into().unwrap()));
        let pts = Points::new(params.domain());
        let (x0, x1, x2) = (pts.point(0), pts.point(1), pts.point(params.domain_index(2)));
        let v = d0 * (x2 - x1) / (x0 - x1) + d1 * (x2 - x0) / (x1 - x0);
        chunks[2][..8].copy_from_slice(&v.into_bigint().0[0].to_le_bytes());
        let root = ChunkTree::from_chunks(&chunks).root();
        for pair in [[0usize, 1], [0, 2], [1, 2]] {
            let set: Vec<(u16, &[u8])> =
                pair.iter().map(|&c| (c as u16, chunks[c].as_slice())).collect();
            assert!(
                matches!(rebuild(params, 14, root, &set), Err(DaError::BadEncoding { .. })),
                "{pair:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn hostile_chunk_sets_never_panic(
            k in 1u16..6,
            extra in 0u16..5,
            len in 0u64..300,
            picks in proptest::collection::vec((any::<u16>(), any::<u64>()), 0..10),
            root in any::<[u8; 32]>(),
        ) {
            let n = k + extra;
            let params = Params::new(k, n).unwrap();
            let size = params.chunk_len(len);
            // Arbitrary indices (some out of range or repeated) and arbitrary words, many ≥ p.
            let owned: Vec<(u16, Vec<u8>)> = picks
                .iter()
                .map(|&(i, seed)| {
                    let words = (0..size / 8).map(|j| seed.rotate_left(j as u32) ^ (j as u64));
                    (i % (n + 2), words.flat_map(u64::to_le_bytes).collect())
                })
                .collect();
            let set: Vec<(u16, &[u8])> = owned.iter().map(|(i, c)| (*i, c.as_slice())).collect();
            let _ = decode(params, len, &set);
            if let Ok(data) = rebuild(params, len, B256::from(root), &set) {
                prop_assert_eq!(encode(&data, params).unwrap().root(), B256::from(root));
            }
        }

        #[test]
        fn any_k_of_n_chunks_rebuild(
            n in 1u16..12,
            k_frac in 0.0f64..1.0,
            len in 0usize..2000,
            seed in any::<u8>(),
            pick in any::<u64>(),
        ) {
            let k = 1 + ((f64::from(n) * k_frac) as u16).min(n - 1);
            let params = Params::new(k, n).unwrap();
            let data = bytes(len, seed);
            let enc = encode(&data, params).unwrap();
            // A pseudo-random subset of k indices, in a shuffled order.
            let mut idx: Vec<u16> = (0..n).collect();
            let mut state = pick | 1;
            for i in (1..idx.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                idx.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let set: Vec<(u16, &[u8])> = idx[..k as usize].iter().map(|&c| (c, enc.chunks[c as usize].as_slice())).collect();
            prop_assert_eq!(&decode(params, len as u64, &set).unwrap(), &data);
            prop_assert_eq!(rebuild(params, len as u64, enc.root(), &set).unwrap(), data);
        }
    }
}
