//! cargo-fuzz target: ESC/POS status replies, QR payloads and receipt encoding.
//! The body and its invariants are `kassa_drivers::fuzzing::printer`, shared with the stable tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kassa_drivers::fuzzing::printer(data);
});
