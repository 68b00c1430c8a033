//! Property tests: the scanner framer, the scan classifier, the GS1 parser and the card parser
//! take arbitrary bytes from outside the process and must never panic on them.

use std::time::{Duration, Instant};

use kassa_drivers::card::parse_swipe;
use kassa_drivers::display::{DisplayScreen, ScreenLabels};
use kassa_drivers::gs1::{mod10_check_digit, parse_element_string};
use kassa_drivers::scanner::{MAX_FRAME, ScanFramer, ScanSuffix, classify};
use proptest::prelude::*;

fn suffix() -> impl Strategy<Value = ScanSuffix> {
    prop_oneof![
        Just(ScanSuffix::Cr),
        Just(ScanSuffix::CrLf),
        Just(ScanSuffix::Lf)
    ]
}

proptest! {
    #[test]
    fn framer_never_panics_and_frames_stay_bounded(
        suffix in suffix(),
        chunks in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..64), 0u64..200), 0..32),
    ) {
        let t0 = Instant::now();
        let mut framer = ScanFramer::new(suffix, Duration::from_millis(50));
        let mut at = 0;
        for (bytes, gap) in chunks {
            at += gap;
            for frame in framer.push(&bytes, t0 + Duration::from_millis(at)) {
                prop_assert!(!frame.is_empty() && frame.len() <= MAX_FRAME);
                prop_assert!(!frame.contains(&b'\n'));
                let _ = classify(&frame);
            }
        }
        let _ = framer.poll(t0 + Duration::from_millis(at + 1000));
        prop_assert_eq!(framer.deadline(), None);
    }

    #[test]
    fn a_scan_split_anywhere_within_the_timeout_is_one_frame(
        code in "[0-9A-Za-z]{1,40}",
        split in 0usize..40,
    ) {
        let t0 = Instant::now();
        let mut framer = ScanFramer::new(ScanSuffix::CrLf, Duration::from_millis(50));
        let mut bytes = code.clone().into_bytes();
        bytes.extend_from_slice(b"\r\n");
        let split = split.min(bytes.len());
        let mut frames = framer.push(&bytes[..split], t0);
        frames.extend(framer.push(&bytes[split..], t0 + Duration::from_millis(10)));
        prop_assert_eq!(frames, vec![code.into_bytes()]);
    }

    #[test]
    fn gs1_parser_never_panics(data in prop::collection::vec(any::<u8>(), 0..128)) {
        let _ = parse_element_string(&data);
        let _ = classify(&data);
    }

    #[test]
    fn gs1_parser_never_panics_on_near_valid_input(
        data in prop::collection::vec(prop_oneof![
            Just(0x1du8), Just(b'0'), Just(b'1'), Just(b'7'), Just(b'2'), Just(b'3'), b'0'..=b'9', b'A'..=b'Z'
        ], 0..64),
    ) {
        if let Ok(fields) = parse_element_string(&data) {
            prop_assert!(!fields.is_empty());
        }
    }

    #[test]
    fn every_gtin_with_its_check_digit_is_a_product(body in "[0-9]{12}") {
        let check = mod10_check_digit(body.as_bytes()).expect("digits");
        let ean13 = format!("{body}{check}");
        prop_assert_eq!(classify(ean13.as_bytes()), kassa_drivers::Scan::product(format!("0{ean13}")));
    }

    #[test]
    fn card_parser_never_panics_and_always_zeroes(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut raw = data;
        let _ = parse_swipe(&mut raw, &["9".into()]);
        prop_assert!(raw.iter().all(|&b| b == 0));
    }

    #[test]
    fn display_lines_are_always_twenty_cells(name in "\\PC{0,40}", price in "\\PC{0,30}") {
        let screen = DisplayScreen::item(&ScreenLabels::default(), &name, &price, &price);
        for line in screen.lines() {
            prop_assert_eq!(line.chars().count(), 20);
        }
    }
}
