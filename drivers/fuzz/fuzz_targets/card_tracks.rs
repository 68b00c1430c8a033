//! cargo-fuzz target: magnetic stripe tracks 1 and 2; no card number or part of one may come out.
//! The body and its invariants are `kassa_drivers::fuzzing::card_swipe`, shared with the stable tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kassa_drivers::fuzzing::card_swipe(data);
});
