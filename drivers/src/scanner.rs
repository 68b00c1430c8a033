//! Barcode scanner in serial mode: a pure framer (bytes + time in, scans out) and the classifier
//! that turns one frame into a typed `Scan`: a product (GTIN, with a GS1 code's fields and
//! problems), plain text with its symbology, or a product code that does not read. What a text
//! means to a shop (a receipt, a customer code) is the caller's to decide. No I/O here; the port
//! thread feeds it.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::gs1::{self, FNC1, Gs1Field, Gs1Problem};

/// Longest frame kept; longer input is cut into frames so a jammed scanner cannot eat memory.
pub const MAX_FRAME: usize = 4096;

/// How the scanner ends each scan (its "suffix" setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScanSuffix {
    /// `0D`.
    Cr,
    /// `0D 0A`; a lone CR is data (2D codes may contain one) and `0A 0A` from links that mangle
    /// CR LF counts as one terminator.
    #[default]
    CrLf,
    /// `0A`.
    Lf,
}

/// What a scan means to the till.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// A trade item: EAN-13, EAN-8, UPC-A, ITF-14/GTIN-14 or a GS1 code with AI (01), check digit
    /// verified. `gtin` is normalised to 14 digits (GS1's recommendation for lookups).
    /// Match it with `..`: GS1 codes carry more than the till needs for a sale.
    Product {
        gtin: String,
        /// AI (10) batch/lot, from GS1 codes only.
        batch: Option<String>,
        /// AI (17) expiry date YYMMDD (day 00: end of that month), from GS1 codes only.
        expiry: Option<String>,
        /// AI (21) serial number, from GS1 codes only.
        serial: Option<String>,
        /// The 2- or 5-digit EAN/UPC add-on (a periodical's issue, a book's price), if scanned.
        addon: Option<String>,
        /// Every valid field of a GS1 code, in order, (01) included; empty for EAN/UPC.
        fields: Vec<Gs1Field>,
        /// Parts of a GS1 code left out (an AI kassa does not know, a malformed field): the
        /// GTIN was valid, so the item is sold, and these are for the log and the operator.
        problems: Vec<Gs1Problem>,
    },
    /// Any other code, as text (control characters removed, invalid UTF-8 replaced): a QR code,
    /// Code 128 or Code 39 text, digits that are no valid product code. `symbology` is the AIM
    /// identifier it came with, if the scanner sends them.
    Text {
        text: String,
        symbology: Option<Symbology>,
    },
    /// A code in a product code's symbology (EAN/UPC, a GS1 symbology, or led by FNC1) that names
    /// no product to sell: a wrong check digit, a missing add-on, a GS1 code without (01) such as
    /// a pallet's SSCC. As text, like `Text`.
    Unknown(String),
}

impl Scan {
    /// A plain product scan (no GS1 extras).
    pub fn product(gtin: impl Into<String>) -> Self {
        Scan::Product {
            gtin: gtin.into(),
            batch: None,
            expiry: None,
            serial: None,
            addon: None,
            fields: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// A product scanned with its EAN/UPC add-on.
    pub fn product_with_addon(gtin: impl Into<String>, addon: impl Into<String>) -> Self {
        Scan::Product {
            gtin: gtin.into(),
            batch: None,
            expiry: None,
            serial: None,
            addon: Some(addon.into()),
            fields: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// Cuts a byte stream into scans by suffix and by silence. Time is passed in, so tests and
/// property tests drive it without clocks.
#[derive(Debug, Clone)]
pub struct ScanFramer {
    suffix: ScanSuffix,
    silence: Duration,
    buf: Vec<u8>,
    /// When the last byte arrived; silence is measured from here.
    last_byte: Option<Instant>,
    /// A CR was seen in CR LF mode and is held back until we know whether LF follows.
    pending_cr: bool,
}

impl ScanFramer {
    /// A framer for `suffix` that also ends a frame after `silence` without bytes.
    pub fn new(suffix: ScanSuffix, silence: Duration) -> Self {
        Self {
            suffix,
            silence,
            buf: Vec::new(),
            last_byte: None,
            pending_cr: false,
        }
    }

    /// Feed bytes that arrived at `now`; returns every frame they completed.
    pub fn push(&mut self, bytes: &[u8], now: Instant) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        frames.extend(self.poll(now));
        for &b in bytes {
            let terminator = match self.suffix {
                ScanSuffix::Cr => b == b'\r',
                ScanSuffix::CrLf | ScanSuffix::Lf => b == b'\n',
            };
            if terminator {
                // In CR LF mode the held CR belonged to the suffix; in LF mode a CR before LF too.
                self.pending_cr = false;
                frames.extend(self.take());
                continue;
            }
            if self.pending_cr {
                self.pending_cr = false;
                self.keep(b'\r', &mut frames);
            }
            if b == b'\r' && self.suffix != ScanSuffix::Cr {
                self.pending_cr = true;
                continue;
            }
            self.keep(b, &mut frames);
        }
        if !bytes.is_empty() {
            self.last_byte = Some(now);
        }
        frames
    }

    /// The frame ended by silence, if `now` is `silence` past the last byte.
    pub fn poll(&mut self, now: Instant) -> Option<Vec<u8>> {
        let last = self.last_byte?;
        if now.saturating_duration_since(last) < self.silence {
            return None;
        }
        self.last_byte = None;
        self.pending_cr = false;
        self.take()
    }

    /// When `poll` should next be called, if a frame is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.last_byte.map(|t| t + self.silence)
    }

    /// Drop a half frame (the scanner was unplugged mid-scan).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.pending_cr = false;
        self.last_byte = None;
    }

    fn keep(&mut self, b: u8, frames: &mut Vec<Vec<u8>>) {
        // Stray control bytes (NUL, STX/ETX framing, BEL, ...) are noise; GS is FNC1 and CR may
        // be 2D data, so those stay.
        let control = b < 0x20 || b == 0x7f;
        if control && b != FNC1 && b != b'\r' {
            return;
        }
        self.buf.push(b);
        if self.buf.len() >= MAX_FRAME {
            frames.extend(self.take());
        }
    }

    fn take(&mut self) -> Option<Vec<u8>> {
        let mut frame = std::mem::take(&mut self.buf);
        // A UTF-8 BOM is sent by some scanners at power-up or before each scan.
        while frame.starts_with(&[0xef, 0xbb, 0xbf]) {
            frame.drain(..3);
        }
        while frame.last() == Some(&b'\r') {
            frame.pop();
        }
        (!frame.is_empty()).then_some(frame)
    }
}

/// AIM symbology identifier (ISO/IEC 15424) at the start of a scan, e.g. `]E0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Symbology {
    /// `]E0`: EAN-13, UPC-A or UPC-E, always as 13 digits (never EAN-8).
    Ean13,
    /// `]E1`: a 2-digit EAN/UPC add-on on its own.
    EanAddOn2,
    /// `]E2`: a 5-digit EAN/UPC add-on on its own.
    EanAddOn5,
    /// `]E3`: EAN-13, UPC-A or UPC-E (13 digits) followed by its 2- or 5-digit add-on.
    Ean13WithAddOn,
    /// `]E4`: EAN-8.
    Ean8,
    /// `]I1`: ITF-14.
    Itf14,
    /// `]C1`: GS1-128.
    Gs1_128,
    /// `]e0`: GS1 DataBar.
    Gs1DataBar,
    /// `]d2`: GS1 DataMatrix.
    Gs1DataMatrix,
    /// `]Q1`: QR code.
    Qr,
    /// `]Q3`: GS1 QR code.
    Gs1Qr,
    /// Another AIM identifier; the data is treated as plain text.
    Other([u8; 2]),
}

impl Symbology {
    fn is_gs1(self) -> bool {
        matches!(
            self,
            Self::Gs1_128 | Self::Gs1DataBar | Self::Gs1DataMatrix | Self::Gs1Qr
        )
    }
}

/// Split a leading AIM identifier off a frame.
pub fn split_aim(frame: &[u8]) -> (Option<Symbology>, &[u8]) {
    match frame {
        [b']', code, modifier, rest @ ..]
            if code.is_ascii_alphabetic() && modifier.is_ascii_alphanumeric() =>
        {
            let symbology = match (code, modifier) {
                (b'E', b'0') => Symbology::Ean13,
                (b'E', b'1') => Symbology::EanAddOn2,
                (b'E', b'2') => Symbology::EanAddOn5,
                (b'E', b'3') => Symbology::Ean13WithAddOn,
                (b'E', b'4') => Symbology::Ean8,
                (b'I', b'1') => Symbology::Itf14,
                (b'C', b'1') => Symbology::Gs1_128,
                (b'e', b'0') => Symbology::Gs1DataBar,
                (b'd', b'2') => Symbology::Gs1DataMatrix,
                (b'Q', b'1') => Symbology::Qr,
                (b'Q', b'3') => Symbology::Gs1Qr,
                _ => Symbology::Other([*code, *modifier]),
            };
            (Some(symbology), rest)
        }
        _ => (None, frame),
    }
}

/// What one frame means. Never fails: a frame that is no product is `Scan::Text` (or
/// `Scan::Unknown` if it claimed to be one).
pub fn classify(frame: &[u8]) -> Scan {
    let frame = frame.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(frame);
    let (symbology, data) = split_aim(frame);
    if symbology.is_some_and(Symbology::is_gs1) || data.first() == Some(&FNC1) {
        return gs1_product(data).unwrap_or_else(|| Scan::Unknown(printable(data)));
    }
    if let Some(
        symbology @ (Symbology::Ean13
        | Symbology::Ean13WithAddOn
        | Symbology::Ean8
        | Symbology::EanAddOn2
        | Symbology::EanAddOn5),
    ) = symbology
    {
        return ean_upc(symbology, data).unwrap_or_else(|| Scan::Unknown(printable(data)));
    }
    if let Some(gtin) = retail_gtin(data) {
        return Scan::product(gtin);
    }
    // A scanner with AIM identifiers off sends GS1 element strings bare: GS1 DataBar as `01` and
    // 14 digits, GS1-128 starting with any AI.
    if symbology.is_none()
        && let Some(scan) = bare_gs1_product(data)
    {
        return scan;
    }
    Scan::Text {
        text: printable(data),
        symbology,
    }
}

/// The data of an EAN/UPC AIM packet: `]E0` 13 digits (12 from decoders that pass UPC-A on as
/// printed), `]E4` 8 digits, `]E3` 13 digits then a 2- or 5-digit add-on. Scanners that send
/// the add-on as a second packet put it after the first in one frame: `]E1` + 2 or `]E2` + 5.
fn ean_upc(symbology: Symbology, data: &[u8]) -> Option<Scan> {
    let (main, addon) = match symbology {
        Symbology::Ean13WithAddOn => match data.len() {
            15 | 18 => (&data[..13], Some(&data[13..])),
            _ => return None,
        },
        Symbology::Ean13 | Symbology::Ean8 => match split_addon_packet(data) {
            Some((main, addon)) => (main, Some(addon)),
            None => (data, None),
        },
        // An add-on on its own names no product.
        _ => return None,
    };
    let main_length_ok = match symbology {
        Symbology::Ean8 => main.len() == 8,
        _ => matches!(main.len(), 12 | 13),
    };
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if !main_length_ok || !digits(main) || addon.is_some_and(|a| !digits(a)) {
        return None;
    }
    let main = std::str::from_utf8(main).ok()?;
    if !gs1::mod10_valid(main) {
        return None;
    }
    let gtin = format!("{main:0>14}");
    Some(match addon {
        Some(addon) => Scan::product_with_addon(gtin, String::from_utf8_lossy(addon)),
        None => Scan::product(gtin),
    })
}

/// `<main>]E1<2 digits>` or `<main>]E2<5 digits>` as (main, add-on).
fn split_addon_packet(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = data.windows(2).position(|w| w == b"]E")?;
    let (main, packet) = data.split_at(at);
    match packet {
        [b']', b'E', b'1', addon @ ..] if addon.len() == 2 => Some((main, addon)),
        [b']', b'E', b'2', addon @ ..] if addon.len() == 5 => Some((main, addon)),
        _ => None,
    }
}

/// EAN-8, UPC-A, EAN-13 or GTIN-14 digits with a valid check digit, as a 14-digit GTIN.
fn retail_gtin(data: &[u8]) -> Option<String> {
    if !matches!(data.len(), 8 | 12 | 13 | 14) || !data.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digits = std::str::from_utf8(data).ok()?;
    gs1::mod10_valid(digits).then(|| format!("{digits:0>14}"))
}

fn gs1_product(data: &[u8]) -> Option<Scan> {
    let reading = gs1::read_element_string(data);
    let get = |ai: &str| reading.get(ai).map(str::to_owned);
    let gtin = get("01")?;
    if !reading.problems.is_empty() {
        tracing::warn!(problems = ?reading.problems, "GS1 code: fields left out, the GTIN is sold");
    }
    Some(Scan::Product {
        gtin,
        batch: get("10"),
        expiry: get("17"),
        serial: get("21"),
        addon: None,
        fields: reading.fields,
        problems: reading.problems,
    })
}

/// A GS1 element string without AIM identifier or leading FNC1: only when it is printable, starts
/// with an AI GS1 assigns and holds a valid (01), so that other text is not taken for one.
fn bare_gs1_product(data: &[u8]) -> Option<Scan> {
    let printable = data
        .iter()
        .all(|&b| b == FNC1 || (0x20..=0x7e).contains(&b));
    if !printable || gs1::identify(data).is_none() {
        return None;
    }
    gs1_product(data)
}

fn printable(data: &[u8]) -> String {
    String::from_utf8_lossy(data)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(suffix: ScanSuffix, chunks: &[(&[u8], u64)], end_ms: u64) -> Vec<Vec<u8>> {
        let t0 = Instant::now();
        let mut framer = ScanFramer::new(suffix, Duration::from_millis(50));
        let mut out = Vec::new();
        for (bytes, ms) in chunks {
            out.extend(framer.push(bytes, t0 + Duration::from_millis(*ms)));
        }
        out.extend(framer.poll(t0 + Duration::from_millis(end_ms)));
        out
    }

    fn check_frames(suffix: ScanSuffix, chunks: &[(&[u8], u64)], end_ms: u64, expected: &[&[u8]]) {
        assert_eq!(
            frames(suffix, chunks, end_ms),
            expected.iter().map(|f| f.to_vec()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn suffixes_end_scans() {
        check_frames(
            ScanSuffix::Cr,
            &[(b"4006381333931\r96385074\r", 0)],
            0,
            &[b"4006381333931", b"96385074"],
        );
        check_frames(
            ScanSuffix::CrLf,
            &[(b"4006381333931\r\n", 0)],
            0,
            &[b"4006381333931"],
        );
        check_frames(
            ScanSuffix::Lf,
            &[(b"4006381333931\n", 0)],
            0,
            &[b"4006381333931"],
        );
    }

    #[test]
    fn lf_lf_from_a_mangling_link_is_one_terminator() {
        check_frames(
            ScanSuffix::CrLf,
            &[(b"4006381333931\n\n96385074\n\n", 0)],
            0,
            &[b"4006381333931", b"96385074"],
        );
    }

    #[test]
    fn a_cr_inside_a_2d_code_stays_data_with_cr_lf_suffix() {
        check_frames(
            ScanSuffix::CrLf,
            &[(b"]Q1line1\rline2\r\n", 0)],
            0,
            &[b"]Q1line1\rline2"],
        );
    }

    #[test]
    fn silence_ends_a_scan_without_suffix_and_chunks_join_within_it() {
        check_frames(
            ScanSuffix::CrLf,
            &[(b"40063", 0), (b"81333931", 30)],
            70,
            &[],
        );
        check_frames(
            ScanSuffix::CrLf,
            &[(b"40063", 0), (b"81333931", 30)],
            80,
            &[b"4006381333931"],
        );
        check_frames(
            ScanSuffix::CrLf,
            &[(b"half", 0), (b"96385074\r\n", 200)],
            200,
            &[b"half", b"96385074"],
        );
    }

    #[test]
    fn bom_and_stray_control_bytes_are_dropped() {
        check_frames(
            ScanSuffix::CrLf,
            &[(b"\xef\xbb\xbf\x02400638\x001333931\x03\r\n", 0)],
            0,
            &[b"4006381333931"],
        );
    }

    fn check(frame: &[u8], expected: Scan) {
        assert_eq!(
            classify(frame),
            expected,
            "classifying {:?}",
            String::from_utf8_lossy(frame)
        );
    }

    #[test]
    fn retail_barcodes_become_products_with_14_digit_gtins() {
        check(b"4006381333931", Scan::product("04006381333931"));
        check(b"]E04006381333931", Scan::product("04006381333931"));
        check(b"]E496385074", Scan::product("00000096385074"));
        check(b"036000291452", Scan::product("00036000291452"));
        check(b"]I109506000134352", Scan::product("09506000134352"));
        check(
            b"4006381333932",
            Scan::Text {
                text: "4006381333932".into(),
                symbology: None,
            },
        );
    }

    #[test]
    fn gs1_codes_become_products_with_batch_expiry_and_serial() {
        let expected = Scan::Product {
            gtin: "09506000134352".into(),
            batch: Some("AB12".into()),
            expiry: Some("261231".into()),
            serial: Some("S1".into()),
            addon: None,
            fields: [
                ("01", "09506000134352"),
                ("17", "261231"),
                ("10", "AB12"),
                ("21", "S1"),
            ]
            .map(|(ai, value)| Gs1Field {
                ai: ai.into(),
                value: value.into(),
            })
            .to_vec(),
            problems: Vec::new(),
        };
        check(
            b"]C101095060001343521726123110AB12\x1d21S1",
            expected.clone(),
        );
        check(
            b"]d201095060001343521726123110AB12\x1d21S1",
            expected.clone(),
        );
        check(
            b"]Q3\x1d01095060001343521726123110AB12\x1d21S1",
            expected.clone(),
        );
        check(
            b"]e001095060001343521726123110AB12\x1d21S1",
            expected.clone(),
        );
        check(b"01095060001343521726123110AB12\x1d21S1", expected);
        check(
            b"]C10109506000134353",
            Scan::Unknown("0109506000134353".into()),
        );
    }

    #[test]
    fn other_codes_are_text_with_their_symbology() {
        let text = |text: &str, symbology| Scan::Text {
            text: text.into(),
            symbology,
        };
        check(
            b"]Q1https://example.invalid",
            text("https://example.invalid", Some(Symbology::Qr)),
        );
        check(b"]Q1line1\rline2", text("line1line2", Some(Symbology::Qr)));
        check(
            b"]C0ABC-123",
            text("ABC-123", Some(Symbology::Other(*b"C0"))),
        );
        check(b"LOY12345", text("LOY12345", None));
        // A code that claims a product symbology but names no product is not text to act on.
        check(b"]E0ABC-123", Scan::Unknown("ABC-123".into()));
        check(b"\x1dABC-123", Scan::Unknown("ABC-123".into()));
    }
}
