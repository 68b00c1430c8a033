//! cargo-fuzz target: GS1 element strings (application identifiers, FNC1, check digits).
//! The body and its invariants are `kassa_drivers::fuzzing::gs1`, shared with the stable tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kassa_drivers::fuzzing::gs1(data);
});
