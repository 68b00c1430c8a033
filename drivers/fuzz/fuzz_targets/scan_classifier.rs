//! cargo-fuzz target: one scanned frame into a typed scan (product, text, unknown code).
//! The body and its invariants are `kassa_drivers::fuzzing::scan_classifier`, shared with the stable tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kassa_drivers::fuzzing::scan_classifier(data);
});
