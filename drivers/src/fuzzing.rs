//! Fuzz bodies for every parser that reads bytes from a device: one plain function per target,
//! asserting the parser's invariants. `drivers/fuzz` (cargo-fuzz, nightly) calls them with
//! libFuzzer's inputs; the tests below run them on stable over a mutated corpus.
//!
//! Compiled only for tests and with the `fuzzing` feature: this is test code that must share the
//! crate's private view of its parsers, not an API for the agent.

use std::time::{Duration, Instant};

use crate::card::{CardSwipe, parse_swipe};
use crate::codepage::decode_pc858;
use crate::display::{COLUMNS, DisplayCommandSet, DisplayEncoder, DisplayScreen, ROWS};
use crate::gs1::{FNC1, mod10_valid, parse_element_string, read_element_string};
use crate::printer::{PrinterStatus, QrErrorCorrection, StatusQuery, qr_code};
use crate::scanner::{MAX_FRAME, Scan, ScanFramer, ScanSuffix, classify};
use crate::{Receipt, ReceiptLine};

/// Loyalty prefixes the card target configures, so that store cards are exercised too.
const STORE_PREFIX: &str = "99";

/// Shortest digit run that may be (part of) a card number: a PAN has 12 to 19 digits.
const PAN_RUN: usize = 12;

/// Reads fuzz input as a little program: choices, lengths and byte strings, never failing (an
/// exhausted input reads as zeros and empty slices), so every input maps to one scenario.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.byte()).min(max).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

fn digit_runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty())
}

/// Whether a digit string is long enough and in a payment network's number range (ISO/IEC 7812
/// major industry identifiers 3 to 6, and Mastercard's 2221–2720): if the card parser lets such
/// a number through as a loyalty number, it is leaking a (possibly misread) card number.
/// Written independently of `card::brand` on purpose, so that the oracle does not share its bugs.
fn payment_range(digits: &str) -> bool {
    let b = digits.as_bytes();
    if b.len() < PAN_RUN {
        return false;
    }
    let four: u32 = digits.get(..4).and_then(|p| p.parse().ok()).unwrap_or(0);
    matches!(b[0], b'3'..=b'6') || (2221..=2720).contains(&four)
}

/// Scanner framer: bytes in arbitrary chunks at arbitrary times. Frames are never empty, never
/// longer than `MAX_FRAME`, never contain a line feed, a stray control byte or a leading BOM, and
/// after a long silence nothing is left open.
pub fn scanner_framer(data: &[u8]) {
    let mut input = Input { data };
    let suffix = match input.byte() % 3 {
        0 => ScanSuffix::Cr,
        1 => ScanSuffix::CrLf,
        _ => ScanSuffix::Lf,
    };
    let silence = Duration::from_millis(u64::from(input.byte() % 100) + 1);
    let t0 = Instant::now();
    let mut at = Duration::ZERO;
    let mut framer = ScanFramer::new(suffix, silence);
    let check = |frame: &[u8]| {
        assert!(!frame.is_empty() && frame.len() <= MAX_FRAME, "{frame:?}");
        assert!(!frame.contains(&b'\n'), "{frame:?}");
        assert!(!frame.starts_with(&[0xef, 0xbb, 0xbf]), "{frame:?}");
        assert_ne!(frame.last(), Some(&b'\r'), "{frame:?}");
        assert!(
            frame
                .iter()
                .all(|&b| !(b < 0x20 || b == 0x7f) || b == FNC1 || b == b'\r'),
            "{frame:?}"
        );
        if suffix == ScanSuffix::Cr {
            assert!(!frame.contains(&b'\r'), "{frame:?}");
        }
        scan_classifier(frame);
    };
    while !input.is_empty() {
        at += Duration::from_millis(u64::from(input.byte()));
        let chunk = input.bytes(255);
        for frame in framer.push(chunk, t0 + at) {
            check(&frame);
        }
        if let Some(frame) = framer.poll(t0 + at) {
            check(&frame);
        }
    }
    if let Some(frame) = framer.poll(t0 + at + silence) {
        check(&frame);
    }
    assert_eq!(framer.deadline(), None, "a frame stayed open after silence");
}

/// Scan classifier: every frame is classified, and what comes out is well-formed: a product has
/// a 14-digit GTIN with a valid check digit, and no text carries control characters into the
/// agent's logs or screens.
pub fn scan_classifier(frame: &[u8]) {
    match classify(frame) {
        Scan::Product {
            gtin,
            addon,
            problems,
            ..
        } => {
            assert!(
                gtin.len() == 14 && gtin.bytes().all(|b| b.is_ascii_digit()),
                "{gtin}"
            );
            assert!(mod10_valid(&gtin), "{gtin}");
            if let Some(addon) = addon {
                assert!(
                    matches!(addon.len(), 2 | 5) && addon.bytes().all(|b| b.is_ascii_digit()),
                    "{addon}"
                );
            }
            for problem in problems {
                assert!(!problem.data.chars().any(char::is_control), "{problem:?}");
            }
        }
        Scan::Text { text, .. } | Scan::Unknown(text) => {
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }
}

/// GS1 element strings: a parse either fails with a reason or yields at least one field, each
/// with a numeric AI and a non-empty value in GS1's printable character set; a GTIN's check
/// digit is valid.
pub fn gs1(data: &[u8]) {
    // The lenient reading keeps only fields that the strict parse would accept on their own.
    let reading = read_element_string(data);
    for field in &reading.fields {
        let alone = format!("{}{}", field.ai, field.value);
        assert_eq!(
            parse_element_string(alone.as_bytes()).as_deref(),
            Ok(std::slice::from_ref(field)),
            "{field:?}"
        );
    }
    let Ok(fields) = parse_element_string(data) else {
        assert!(!reading.problems.is_empty());
        return;
    };
    assert_eq!(fields, reading.fields);
    assert!(!fields.is_empty());
    for field in &fields {
        assert!(
            (2..=4).contains(&field.ai.len()) && field.ai.bytes().all(|b| b.is_ascii_digit()),
            "{field:?}"
        );
        assert!(
            !field.value.is_empty() && field.value.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "{field:?}"
        );
        if field.ai == "01" {
            assert!(
                field.value.len() == 14 && mod10_valid(&field.value),
                "{field:?}"
            );
        }
    }
}

/// Card tracks: the swipe buffer is always zeroed, and the result never carries a card number or
/// part of one. A payment card shows no more than its last four digits; a loyalty number of PAN
/// length passes only when it is the store's own (its prefix) or outside the payment networks'
/// ranges; and no other run of 12 or more digits from the input appears in the result.
pub fn card_swipe(data: &[u8]) {
    let mut raw = data.to_vec();
    let swipe = parse_swipe(&mut raw, &[STORE_PREFIX.to_owned()]);
    assert!(raw.iter().all(|&b| b == 0), "swipe buffer not zeroed");
    let shown = format!("{swipe:?} {swipe:#?}");
    match &swipe {
        CardSwipe::Payment(card) => {
            assert!(
                card.last4().len() == 4 && card.last4().bytes().all(|b| b.is_ascii_digit()),
                "{shown}"
            );
            assert!(digit_runs(&shown).all(|run| run.len() <= 4), "{shown}");
        }
        CardSwipe::Loyalty(card) => {
            let number = card.number.as_str();
            assert!(
                !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()),
                "{shown}"
            );
            assert!(
                number.starts_with(STORE_PREFIX) || !payment_range(number),
                "a card number passed as a loyalty number: {shown}"
            );
            assert!(
                digit_runs(&shown).all(|run| run.len() < PAN_RUN || run == number),
                "{shown}"
            );
        }
        CardSwipe::Unreadable => {
            assert!(digit_runs(&shown).all(|run| run.len() < PAN_RUN), "{shown}");
        }
    }
}

/// Printer status replies: a byte with wrong fixed bits is refused and changes nothing; a status
/// reply always changes only what its query is about. QR payloads and receipts of any text encode
/// or fail cleanly, and the QR length field matches the data.
pub fn printer(data: &[u8]) {
    let mut input = Input { data };
    let mut status = PrinterStatus::default();
    for _ in 0..input.byte() % 16 {
        let query = match input.byte() % 4 {
            0 => StatusQuery::Printer,
            1 => StatusQuery::OfflineCause,
            2 => StatusQuery::ErrorCause,
            _ => StatusQuery::PaperSensor,
        };
        let byte = input.byte();
        let before = status;
        let accepted = status.apply(query, byte);
        assert_eq!(accepted, byte & 0x93 == 0x12, "byte {byte:#04x}");
        if !accepted {
            assert_eq!(status, before);
        }
        if query == StatusQuery::Printer {
            assert_eq!(
                (status.cover_open, status.paper_out, status.paper_near_end),
                (before.cover_open, before.paper_out, before.paper_near_end)
            );
        }
    }
    let qr = input.bytes(255);
    match qr_code(qr, input.byte(), QrErrorCorrection::M) {
        Ok(bytes) => {
            // Model, module size and error correction take 25 bytes; then `1D 28 6B pL pH`.
            let stored = usize::from(bytes[28]) + 256 * usize::from(bytes[29]);
            assert_eq!(stored, qr.len() + 3);
            assert_eq!(&bytes[33..33 + qr.len()], qr);
        }
        Err(_) => assert!(qr.is_empty()),
    }
    let receipt = Receipt {
        header: vec![input.text(64)],
        text: vec![input.text(64)],
        lines: vec![ReceiptLine::new(input.text(64), input.text(32))],
        totals: vec![ReceiptLine::new(input.text(32), input.text(64))],
        payment: vec![input.text(64)],
        qr_data: Some(input.text(64)).filter(|q| !q.is_empty()),
        footer: vec![input.text(64)],
    };
    let layout = crate::printer::ReceiptLayout {
        width: usize::from(input.byte() % 64) + 1,
        ..Default::default()
    };
    if let Ok(bytes) = crate::printer::encode_receipt(&receipt, &layout) {
        assert!(bytes.ends_with(&crate::printer::cut()));
    }
}

/// Customer display: any sequence of screens (any text) renders to bytes that, applied by a
/// display that follows devices.md, show exactly the new screen; only printable code-page bytes
/// are sent as text; re-sending an unchanged screen sends nothing; an update never costs more than
/// a full redraw. Returns the bytes sent per update, for the benchmark's figures.
pub fn display(data: &[u8]) -> Vec<usize> {
    let mut input = Input { data };
    let set = if input.byte().is_multiple_of(2) {
        DisplayCommandSet::Epson
    } else {
        DisplayCommandSet::Cd5220
    };
    let mut encoder = DisplayEncoder::new(set);
    let mut model = DisplayModel::new(set);
    let mut sizes = Vec::new();
    if input.byte().is_multiple_of(2) {
        model.apply(&encoder.initialize());
    }
    let full = match set {
        DisplayCommandSet::Epson => ROWS * (4 + COLUMNS),
        DisplayCommandSet::Cd5220 => ROWS * (3 + COLUMNS + 1),
    };
    while !input.is_empty() {
        let screen = match input.byte() % 3 {
            0 => DisplayScreen::text(&input.text(40), &input.text(40)),
            1 => DisplayScreen::item(
                &Default::default(),
                &input.text(40),
                &input.text(30),
                &input.text(30),
            ),
            _ => DisplayScreen::blank(),
        };
        if input.byte().is_multiple_of(8) {
            encoder.forget();
            model = DisplayModel::new(set);
        }
        let bytes = encoder.render(&screen);
        assert!(bytes.len() <= full, "{} bytes for one update", bytes.len());
        model.apply(&bytes);
        let expected = screen.lines().map(|line| {
            line.chars()
                .map(|c| {
                    let b = crate::codepage::encode_char(c);
                    assert!(decode_pc858(b).is_some(), "{c:?} sent as {b:#04x}");
                    b
                })
                .collect::<Vec<u8>>()
        });
        assert_eq!(
            model.rows.map(Vec::from),
            expected,
            "after {bytes:02x?} for {screen:?}"
        );
        assert!(
            encoder.render(&screen).is_empty(),
            "an unchanged screen is re-sent"
        );
        sizes.push(bytes.len());
    }
    sizes
}

/// A display that understands only what the encoder may send (devices.md), as PC858 bytes. A
/// command it does not know fails the target: the encoder must never send one.
struct DisplayModel {
    set: DisplayCommandSet,
    /// Cells as code-page bytes; `None`-like zeros mean "unknown" after a forget.
    rows: [[u8; COLUMNS]; ROWS],
}

impl DisplayModel {
    fn new(set: DisplayCommandSet) -> Self {
        Self {
            set,
            rows: [[0; COLUMNS]; ROWS],
        }
    }

    fn apply(&mut self, bytes: &[u8]) {
        let (mut row, mut col) = (0usize, 0usize);
        let mut i = 0;
        while i < bytes.len() {
            match (self.set, &bytes[i..]) {
                (_, [0x1b, 0x40, ..]) => {
                    self.rows = [[b' '; COLUMNS]; ROWS];
                    i += 2;
                }
                (DisplayCommandSet::Epson, [0x1b, 0x74, _, ..]) => i += 3,
                (DisplayCommandSet::Epson, [0x1f, 0x01, ..]) => i += 2,
                (DisplayCommandSet::Epson, [0x1f, 0x43, _, ..]) => i += 3,
                (DisplayCommandSet::Epson, [0x0c, ..]) => {
                    self.rows = [[b' '; COLUMNS]; ROWS];
                    i += 1;
                }
                (DisplayCommandSet::Epson, [0x1f, 0x24, x, y, ..]) => {
                    assert!((1..=COLUMNS as u8).contains(x) && (1..=ROWS as u8).contains(y));
                    (col, row) = (usize::from(*x) - 1, usize::from(*y) - 1);
                    i += 4;
                }
                (DisplayCommandSet::Cd5220, [0x1b, 0x5f, _, ..]) => i += 3,
                (DisplayCommandSet::Cd5220, [0x1b, 0x51, line @ (0x41 | 0x42), rest @ ..]) => {
                    let end = rest
                        .iter()
                        .position(|&b| b == 0x0d)
                        .expect("CR ends a line");
                    assert_eq!(end, COLUMNS, "a CD5220 line is exactly 20 cells");
                    self.rows[usize::from(line - 0x41)].copy_from_slice(&rest[..end]);
                    i += 3 + end + 1;
                }
                (DisplayCommandSet::Epson, [b, ..]) if decode_pc858(*b).is_some() => {
                    assert!(col < COLUMNS, "text past the end of the line");
                    self.rows[row][col] = *b;
                    col += 1;
                    i += 1;
                }
                (_, rest) => panic!("the display does not understand {rest:02x?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The fuzz bodies on stable: each runs over its seeds and a few thousand mutations of them
    //! (insertions of protocol tokens, bit flips, truncations, splices), from a fixed seed so that
    //! a failure reproduces. `cargo fuzz` explores far more; this keeps the invariants in CI.

    use super::*;

    const RUNS: usize = 4000;

    /// xorshift64*: deterministic, dependency-free randomness for the mutator.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
        }
    }

    /// Fragments of the protocols, so mutations reach past the first sentinel check.
    const TOKENS: &[&[u8]] = &[
        b"%B",
        b"%A",
        b"%",
        b";",
        b"=",
        b"^",
        b"?",
        b" ",
        b"4111111111111111",
        b"5555555555554444",
        b"378282246310005",
        b"9900000000000009",
        b"1234567890123",
        b"0000",
        b"]E0",
        b"]C1",
        b"]Q1",
        b"]d2",
        b"\x1d",
        b"01",
        b"17",
        b"10",
        b"21",
        b"3103",
        b"09506000134352",
        b"\r",
        b"\n",
        b"\r\n",
        b"\xef\xbb\xbf",
        b"\x00",
        b"\x02",
        b"\x03",
        b"krn:payment:eu1:transaction:",
        b"klarna-interop:",
        b"\xc3\xa5",
        b"\xe2\x82\xac",
        b"\xff",
    ];

    fn mutate(rng: &mut Rng, seeds: &[&[u8]], max_len: usize) -> Vec<u8> {
        let mut data = seeds[rng.below(seeds.len())].to_vec();
        for _ in 0..=rng.below(8) {
            let at = rng.below(data.len() + 1);
            match rng.below(6) {
                0 => {
                    let token = TOKENS[rng.below(TOKENS.len())];
                    data.splice(at..at, token.iter().copied());
                }
                1 if !data.is_empty() => {
                    let i = rng.below(data.len());
                    data[i] ^= 1 << rng.below(8);
                }
                2 => data.truncate(at),
                3 if at < data.len() => {
                    data.remove(at);
                }
                4 => {
                    let other = seeds[rng.below(seeds.len())];
                    let from = rng.below(other.len() + 1);
                    data.splice(at..at, other[from..].iter().copied());
                }
                _ => data.insert(at, u8::try_from(rng.next() & 0xff).unwrap_or(0)),
            }
        }
        data.truncate(max_len);
        data
    }

    fn check(seeds: &[&[u8]], target: impl Fn(&[u8])) {
        let mut rng = Rng(0x006b_6173_7361_u64);
        for seed in seeds {
            target(seed);
        }
        for _ in 0..RUNS {
            let data = mutate(&mut rng, seeds, 512);
            let panicked =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&data))).is_err();
            assert!(!panicked, "fuzz body failed on input {data:?}");
        }
    }

    #[test]
    fn no_card_number_or_part_of_one_ever_leaves_the_card_parser() {
        check(
            &[
                b"%B4111111111111111^DOE/JOHN^29121010000000000000?;4111111111111111=2912101?",
                b";5555555555554444=2912101?",
                b"%B378282246310005^DOE/J^2912101?",
                b";9900000000000009=0?",
                b";1234567890123=0000?",
                b"%A7001234^MEMBER?",
                b"",
            ],
            card_swipe,
        );
    }

    #[test]
    fn a_half_swipe_of_a_payment_card_is_unreadable_not_a_loyalty_card() {
        for swipe in [
            &b";4111111111111111?"[..],
            b"%B4111111111111111?",
            b";411111111111",
            b";4111111111111112=2912?",
        ] {
            let mut raw = swipe.to_vec();
            assert_eq!(
                parse_swipe(&mut raw, &[]),
                CardSwipe::Unreadable,
                "{}",
                String::from_utf8_lossy(swipe)
            );
        }
    }

    #[test]
    fn framed_scans_are_always_well_formed() {
        check(
            &[
                b"\x01\x32\x00\x0f4006381333931\r\n\x3c\x05]Q1ab",
                b"\x00\x00\x00\x1a\xef\xbb\xbf\x024006381333931\x03\r\x05\x04half",
                b"\x02\x10\x00\x20]C10109506000134352\x1d10AB\n\n",
            ],
            scanner_framer,
        );
    }

    #[test]
    fn classified_scans_are_always_well_formed() {
        check(
            &[
                b"4006381333931",
                b"]E496385074",
                b"]C10109506000134352172612311012AB\x1d21XYZ9",
                b"krn:payment:eu1:transaction:6f1c1d4e-0000-4000-8000-000000000001",
                b"klarna-interop:abc",
            ],
            scan_classifier,
        );
    }

    #[test]
    fn gs1_fields_are_always_well_formed() {
        check(
            &[
                b"0109506000134352172612311012AB\x1d21XYZ9",
                b"\x1d010950600013435210BATCH\x1d17261200",
                b"3103000250",
            ],
            gs1,
        );
    }

    #[test]
    fn printer_status_and_encoding_never_fail_on_any_input() {
        check(
            &[
                b"\x04\x00\x16\x01\x16\x03\x7e\x00\xff\x05krn:p\x06Store",
                b"\x02\x02\x12\x02\x32",
            ],
            printer,
        );
    }

    #[test]
    fn the_display_always_shows_exactly_the_rendered_screen() {
        check(
            &[
                b"\x00\x00\x01\x07T-shirt\x0a118.00 SEK\x0a118.00 SEK\x01",
                b"\x01\x01\x00\x05K\xc3\xa4se\x03\xe2\x82\xac 1\x01\x02\x01",
                b"\x00\x01\x02\x01",
            ],
            |data| {
                display(data);
            },
        );
    }
}
