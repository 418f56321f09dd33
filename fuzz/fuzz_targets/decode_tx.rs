//! Strict transaction decoding of arbitrary bytes: never panics; whatever decodes re-encodes to
//! exactly the input (spec: ENC-2), and the stateless checks never panic on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plasma_spec::Transaction;

fuzz_target!(|data: &[u8]| {
    if let Ok(tx) = Transaction::decode(data) {
        assert_eq!(tx.encode(), data, "decode accepted a non-canonical encoding");
        let _ = tx.check();
        let _ = tx.output_sums();
        let _ = tx.hash();
    }
});
