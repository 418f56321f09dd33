//! Block availability from a tower quorum (issue #17, spec: `spec/07-availability.md`, DA-1 …).
//!
//! The operator cuts a block's wire bytes (OP-9) into `n` chunks of a `k`-of-`n` Reed-Solomon
//! code, commits to them with a Merkle root, signs a header binding that root to the block's L1
//! root, and hands one chunk to each of `n` towers (watchers). Any `k` towers can then rebuild the
//! block when the operator withholds it — and because [`rebuild`] re-encodes and checks the root,
//! no two towers can ever rebuild two different blocks from one signed header.
//!
//! - Coding ([`encode`], [`decode`], [`rebuild`]) is over the Goldilocks field
//!   `p = 2^64 − 2^32 + 1` with ark-ff's native-word `SmallFp` backend (see `field.rs` for why
//!   this field and backend). Data is cut into 7-byte symbols; chunks carry 8-byte symbols.
//!   Two encoders give the same chunks: a Lagrange matrix for `n ≤ 32` and radix-2 FFTs
//!   (ark-poly) beyond. At most two threads are used (`std::thread::scope`).
//! - Commitment ([`chunk_leaf`], [`verify_chunk`], [`Encoded::root`], [`Encoded::proof`]):
//!   keccak tree with leaf/node prefixes `0x02`/`0x03` (DA-2).
//! - Signed data ([`DaHeader`], [`Receipt`]): EIP-712 in the deployment's
//!   [`plasma_spec::SigningDomain`] (DA-3).
//! - Transport ([`ChunkEnvelope`], [`envelopes`]): the flat bytes a tower receives, parsed with
//!   bounds so hostile input never panics or over-allocates.
//!
//! Vectors: `cargo run -p plasma-da --bin gen-da-vectors` writes `spec/vectors/availability.json`;
//! `cargo test -p plasma-da` checks it.

mod code;
mod envelope;
mod error;
mod field;
mod header;
mod params;
mod tree;
pub mod vectors;

pub use code::{Encoded, decode, encode, rebuild};
pub use envelope::{ChunkEnvelope, ENVELOPE_MAGIC, MAX_CHUNK_LEN, MAX_PROOF_LEN, envelopes};
pub use error::DaError;
pub use header::{DaHeader, Receipt};
pub use params::{FFT_THRESHOLD, Params, SYMBOL_DATA_BYTES, SYMBOL_WIRE_BYTES};
pub use tree::{ChunkProof, chunk_leaf, chunk_node, chunk_root, tree_depth, verify_chunk};

/// The media type of a chunk envelope on HTTP.
pub const CHUNK_MEDIA_TYPE: &str = "application/vnd.plasma.chunk";
/// The most chunks (towers) a code may have.
pub const MAX_TOWERS: u16 = 1024;
/// The longest data that may be coded: 128 MiB, so a plain (uncompressed) full block fits.
pub const MAX_DATA_LEN: u64 = 1 << 27;
