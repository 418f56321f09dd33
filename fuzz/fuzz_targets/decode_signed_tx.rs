//! Signed-transaction decoding of arbitrary bytes: never panics; whatever decodes re-encodes
//! exactly, and signer recovery on it returns a typed result instead of panicking.
#![no_main]

use alloy_primitives::Address;
use libfuzzer_sys::fuzz_target;
use plasma_spec::{SignedTransaction, SigningDomain};

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedTransaction::decode(data) {
        assert_eq!(signed.encode(), data, "decode accepted a non-canonical encoding");
        let domain = SigningDomain::new(31337, Address::repeat_byte(0x5f));
        let _ = signed.recover_signers(&domain);
        let _ = signed.transaction.check();
    }
});
