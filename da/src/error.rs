//! The one error type of the crate: every way a chunk, a set of chunks or a signed header can be
//! wrong, each with the values that prove it.

use alloy_primitives::{Address, B256};
use plasma_spec::SignatureError;

/// Why coding, checking or parsing availability data failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DaError {
    /// `k` and `n` are not `1 ≤ k ≤ n ≤ MAX_TOWERS` (spec: DA-1).
    #[error("bad params: need 1 <= k <= n <= 1024, got k = {k}, n = {n}")]
    BadParams {
        /// Chunks needed to rebuild.
        k: u16,
        /// Chunks (towers) in all.
        n: u16,
    },
    /// The data is longer than [`crate::MAX_DATA_LEN`].
    #[error("data of {len} bytes is longer than the {max} bytes allowed")]
    DataTooLong {
        /// The length given.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A chunk is not `params.chunk_len(data_len)` bytes long.
    #[error("chunk {index} is {got} bytes long, expected {expected}")]
    ChunkLength {
        /// The chunk's index.
        index: u16,
        /// The length the header implies.
        expected: u64,
        /// The length received.
        got: u64,
    },
    /// A chunk's Merkle proof does not lead to the header's chunk root (spec: DA-2).
    #[error("chunk {index} does not verify against the chunk root")]
    BadProof {
        /// The chunk's index.
        index: u16,
    },
    /// The header is signed, but not by the operator (spec: DA-3).
    #[error("header signed by {signer}, not by the operator {operator}")]
    NotOperator {
        /// Who signed.
        signer: Address,
        /// Who should have.
        operator: Address,
    },
    /// A signature from which no signer can be recovered (spec: SIG-3).
    #[error("bad signature: {0}")]
    BadSignature(#[from] SignatureError),
    /// Bytes that are not an envelope, or chunks that cannot be read as field elements.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Fewer than `k` distinct chunks to decode from.
    #[error("{have} distinct chunks, need {need}")]
    TooFewChunks {
        /// Distinct chunks given.
        have: usize,
        /// Chunks needed (`k`).
        need: usize,
    },
    /// The same chunk index twice in one set.
    #[error("chunk {0} given twice")]
    DuplicateIndex(u16),
    /// A chunk index `≥ n`.
    #[error("chunk index {index} out of range for n = {n}")]
    IndexOutOfRange {
        /// The index.
        index: u16,
        /// The number of chunks.
        n: u16,
    },
    /// The chunks are not the committed codeword (spec: DA-1, checked decode): re-encoding the
    /// data decoded from them gives another chunk root. Also what a committed "codeword" that
    /// encodes no data (a data symbol `≥ 2^56`, non-zero padding, a value `≥ p`) always gives.
    #[error("chunks are not the committed codeword: root {expected}, rebuilt {rebuilt}")]
    BadEncoding {
        /// The chunk root the chunks were meant to match.
        expected: B256,
        /// The root of the re-encoded chunks.
        rebuilt: B256,
    },
}

impl DaError {
    /// The code string of this error in JSON error bodies and fault lists.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::BadParams { .. } => "BadParams",
            Self::DataTooLong { .. } => "DataTooLong",
            Self::ChunkLength { .. } => "ChunkLength",
            Self::BadProof { .. } => "BadChunkProof",
            Self::NotOperator { .. } => "NotOperator",
            Self::BadSignature(_) => "BadSignature",
            Self::Malformed(_) => "Malformed",
            Self::TooFewChunks { .. } => "TooFewChunks",
            Self::DuplicateIndex(_) => "DuplicateIndex",
            Self::IndexOutOfRange { .. } => "IndexOutOfRange",
            Self::BadEncoding { .. } => "BadEncoding",
        }
    }

    /// Whether the error proves the operator misbehaved (a header it signed names chunks that
    /// are not one codeword of block data), as opposed to a bad sender or a bad request.
    pub const fn is_operator_fault(&self) -> bool {
        matches!(self, Self::BadEncoding { .. })
    }
}
