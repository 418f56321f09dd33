//! Code parameters and the layout they imply (spec: DA-1).

use crate::{DaError, MAX_DATA_LEN, MAX_TOWERS};

/// Bytes of data in one symbol: 7, so every symbol is below `2^56 < p`.
pub const SYMBOL_DATA_BYTES: usize = 7;
/// Bytes of one symbol in a chunk on the wire: 8, little-endian (parity symbols need 64 bits).
pub const SYMBOL_WIRE_BYTES: usize = 8;

/// A `k`-of-`n` code: any `k` of the `n` chunks rebuild the data (spec: DA-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Params {
    /// Chunks needed to rebuild.
    pub k: u16,
    /// Chunks in all, one per tower.
    pub n: u16,
}

impl Params {
    /// Checks `1 ≤ k ≤ n ≤ MAX_TOWERS`.
    pub const fn new(k: u16, n: u16) -> Result<Self, DaError> {
        if k == 0 || k > n || n > MAX_TOWERS {
            return Err(DaError::BadParams { k, n });
        }
        Ok(Self { k, n })
    }

    /// Re-checks params built with the public fields.
    pub const fn validate(self) -> Result<Self, DaError> {
        Self::new(self.k, self.n)
    }

    /// Symbols per chunk, `m = max(1, ceil(data_len / (7·k)))`.
    pub const fn rows(&self, data_len: u64) -> usize {
        let per_row = SYMBOL_DATA_BYTES as u64 * self.k as u64;
        let m = data_len.div_ceil(if per_row == 0 { 1 } else { per_row });
        if m == 0 { 1 } else { m as usize }
    }

    /// Bytes of every chunk on the wire, `8·m`.
    pub const fn chunk_len(&self, data_len: u64) -> usize {
        SYMBOL_WIRE_BYTES * self.rows(data_len)
    }

    /// `K = next_pow2(k)`: the data subgroup's size (chunks `k ≤ i < K` are virtual zeros).
    pub const fn data_domain(&self) -> usize {
        (self.k as usize).next_power_of_two()
    }

    /// `N = next_pow2(n + K − k)`: the evaluation domain's size.
    pub const fn domain(&self) -> usize {
        (self.n as usize + self.data_domain() - self.k as usize).next_power_of_two()
    }

    /// The domain index of chunk `c`: `c` for data chunks, `c + K − k` for parity (spec: DA-1).
    pub const fn domain_index(&self, c: usize) -> usize {
        if c < self.k as usize { c } else { c + self.data_domain() - self.k as usize }
    }

    /// Whether encoding takes the FFT path (`n > 32`); both paths give the same chunks.
    pub const fn uses_fft(&self) -> bool {
        self.n > FFT_THRESHOLD
    }
}

/// Beyond this many chunks the encoder uses FFTs instead of the Lagrange matrix.
pub const FFT_THRESHOLD: u16 = 32;

/// Checks a data length against [`MAX_DATA_LEN`].
pub(crate) const fn check_len(len: u64) -> Result<(), DaError> {
    if len > MAX_DATA_LEN {
        return Err(DaError::DataTooLong { len, max: MAX_DATA_LEN });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_params() {
        assert!(Params::new(0, 1).is_err());
        assert!(Params::new(3, 2).is_err());
        assert!(Params::new(1, 1025).is_err());
        assert!(Params::new(1024, 1024).is_ok());
    }

    #[test]
    fn layout() {
        let p = Params::new(3, 5).unwrap();
        assert_eq!((p.data_domain(), p.domain()), (4, 8));
        assert_eq!((0..5).map(|c| p.domain_index(c)).collect::<Vec<_>>(), vec![0, 1, 2, 4, 5]);
        assert_eq!(p.rows(0), 1);
        assert_eq!(p.rows(21), 1);
        assert_eq!(p.rows(22), 2);
        assert_eq!(p.chunk_len(22), 16);
        let p = Params::new(16, 32).unwrap();
        assert_eq!((p.data_domain(), p.domain()), (16, 32));
    }
}
