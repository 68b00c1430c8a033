//! cargo-fuzz target: scanner bytes in arbitrary chunks and timings through the scan framer.
//! The body and its invariants are `kassa_drivers::fuzzing::scanner_framer`, shared with the stable tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kassa_drivers::fuzzing::scanner_framer(data);
});
