//! cargo-fuzz target: sequences of customer display screens through the diffing encoder, checked
//! by a reference display. The body is `kassa_drivers::fuzzing::display`, shared with stable tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kassa_drivers::fuzzing::display(data);
});
