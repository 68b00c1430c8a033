//! Byte-exact golden tests of every command kassa sends, against the tables in
//! shared/devices.md. One `check(input, expected)` helper so encoders can be refactored freely.

use kassa_drivers::display::{DisplayCommandSet, DisplayEncoder, DisplayScreen};
use kassa_drivers::printer::{
    self, QrErrorCorrection, Receipt, ReceiptLayout, ReceiptLine, StatusQuery,
};

/// What to encode.
enum Input {
    /// Initialise a display, then render each screen in turn; only the last render is checked.
    DisplayRenders(DisplayCommandSet, Vec<DisplayScreen>),
    DisplayInit(DisplayCommandSet),
    Qr(&'static str, u8, QrErrorCorrection),
    Receipt(Receipt, ReceiptLayout),
    DrawerKick,
    Cut,
    Status(StatusQuery),
}

fn encode(input: Input) -> Vec<u8> {
    match input {
        Input::DisplayInit(set) => DisplayEncoder::new(set).initialize(),
        Input::DisplayRenders(set, screens) => {
            let mut encoder = DisplayEncoder::new(set);
            let mut last = Vec::new();
            for screen in &screens {
                last = encoder.render(screen);
            }
            last
        }
        Input::Qr(data, size, level) => {
            printer::qr_code(data.as_bytes(), size, level).expect("encodable")
        }
        Input::Receipt(receipt, layout) => {
            printer::encode_receipt(&receipt, &layout).expect("encodable")
        }
        Input::DrawerKick => printer::drawer_kick().to_vec(),
        Input::Cut => printer::cut().to_vec(),
        Input::Status(q) => printer::status_query(q).to_vec(),
    }
}

fn check(input: Input, expected: &[u8]) {
    let got = encode(input);
    assert_eq!(hex(&got), hex(expected));
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn screen(upper: &str, lower: &str) -> DisplayScreen {
    DisplayScreen::text(upper, lower)
}

#[test]
fn epson_display_initialises_with_pc858_cursor_off_and_clear() {
    check(
        Input::DisplayInit(DisplayCommandSet::Epson),
        &[
            0x1B, 0x40, 0x1B, 0x74, 19, 0x1F, 0x01, 0x1F, 0x43, 0x00, 0x0C,
        ],
    );
}

#[test]
fn cd5220_display_initialises_with_cursor_off() {
    check(
        Input::DisplayInit(DisplayCommandSet::Cd5220),
        &[0x1B, 0x40, 0x1B, 0x5F, 0x00],
    );
}

#[test]
fn epson_display_of_unknown_contents_is_drawn_whole() {
    check(
        Input::DisplayRenders(DisplayCommandSet::Epson, vec![screen("Kaffe", "Total")]),
        &cat(&[
            &[0x1F, 0x24, 1, 1],
            b"Kaffe               ",
            &[0x1F, 0x24, 1, 2],
            b"Total               ",
        ]),
    );
}

#[test]
fn epson_display_resends_only_changed_cells() {
    // Only the price digits change: one cursor move and the changed run.
    check(
        Input::DisplayRenders(
            DisplayCommandSet::Epson,
            vec![
                screen("Kaffe", "Total      25,00 kr"),
                screen("Kaffe", "Total      37,00 kr"),
            ],
        ),
        &cat(&[&[0x1F, 0x24, 12, 2], b"37"]),
    );
    check(
        Input::DisplayRenders(
            DisplayCommandSet::Epson,
            vec![
                screen("abcdef", ""),
                screen("Xbcdef", ""),
                screen("XbcdeY", ""),
            ],
        ),
        &cat(&[&[0x1F, 0x24, 6, 1], b"Y"]),
    );
    // Changes three unchanged cells apart are cheaper as one run than as two cursor moves.
    check(
        Input::DisplayRenders(
            DisplayCommandSet::Epson,
            vec![screen("abcde", ""), screen("XbcdY", "")],
        ),
        &cat(&[&[0x1F, 0x24, 1, 1], b"XbcdY"]),
    );
    // Four unchanged cells cost as much as a cursor move: two runs.
    check(
        Input::DisplayRenders(
            DisplayCommandSet::Epson,
            vec![screen("abcdef", ""), screen("XbcdeY", "")],
        ),
        &cat(&[&[0x1F, 0x24, 1, 1], b"X", &[0x1F, 0x24, 6, 1], b"Y"]),
    );
    check(
        Input::DisplayRenders(
            DisplayCommandSet::Epson,
            vec![screen("a", "b"), screen("a", "b")],
        ),
        &[],
    );
}

#[test]
fn display_text_goes_out_in_pc858() {
    check(
        Input::DisplayRenders(DisplayCommandSet::Cd5220, vec![screen("Smörgås 12 €", "")]),
        &cat(&[
            &[0x1B, 0x51, 0x41],
            b"Sm\x94rg\x86s 12 \xD5        ",
            &[0x0D, 0x1B, 0x51, 0x42],
            b"                    ",
            &[0x0D],
        ]),
    );
}

#[test]
fn cd5220_display_resends_only_changed_lines() {
    check(
        Input::DisplayRenders(
            DisplayCommandSet::Cd5220,
            vec![
                screen("Kaffe", "Total      25,00 kr"),
                screen("Kaffe", "Total      37,00 kr"),
            ],
        ),
        &cat(&[&[0x1B, 0x51, 0x42], b"Total      37,00 kr ", &[0x0D]]),
    );
}

const TXN: &str = "krn:payment:eu1:transaction:6d1e4b9a-3f8e-4c7b-9a51-2f0c8d7e1a23";

#[test]
fn qr_code_is_model_2_size_error_correction_store_print() {
    let len = TXN.len() + 3; // 67 + 3 = 70
    check(
        Input::Qr(TXN, 6, QrErrorCorrection::M),
        &cat(&[
            &[0x1D, 0x28, 0x6B, 0x04, 0x00, 0x31, 0x41, 0x32, 0x00],
            &[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x43, 6],
            &[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x45, 0x31],
            &[0x1D, 0x28, 0x6B, len as u8, 0x00, 0x31, 0x50, 0x30],
            TXN.as_bytes(),
            &[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30],
        ]),
    );
}

#[test]
fn qr_store_length_uses_the_high_byte_past_255() {
    let data: &'static str = Box::leak("A".repeat(300).into_boxed_str());
    let bytes = encode(Input::Qr(data, 20, QrErrorCorrection::H));
    // Module size is clamped to 16; 300 + 3 = 303 = 0x012F.
    assert_eq!(
        &bytes[9..17],
        &[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x43, 16]
    );
    assert_eq!(
        &bytes[17..25],
        &[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x45, 0x33]
    );
    assert_eq!(
        &bytes[25..33],
        &[0x1D, 0x28, 0x6B, 0x2F, 0x01, 0x31, 0x50, 0x30]
    );
}

#[test]
fn drawer_cut_and_status_commands() {
    check(Input::DrawerKick, &[0x1B, 0x70, 0x00, 0x19, 0xFA]);
    check(Input::Cut, &[0x1D, 0x56, 0x01]);
    check(Input::Status(StatusQuery::Printer), &[0x10, 0x04, 1]);
    check(Input::Status(StatusQuery::OfflineCause), &[0x10, 0x04, 2]);
    check(Input::Status(StatusQuery::ErrorCause), &[0x10, 0x04, 3]);
    check(Input::Status(StatusQuery::PaperSensor), &[0x10, 0x04, 4]);
}

#[test]
fn a_whole_receipt() {
    let receipt = Receipt {
        header: vec!["Kafé Ö".into(), "Storgatan 1".into()],
        lines: vec![ReceiptLine::new("Kaffe", "25,00")],
        totals: vec![ReceiptLine::new("Total", "25,00 kr")],
        payment: vec!["Klarna".into()],
        qr_data: Some("krn:payment:eu1:transaction:x".into()),
        footer: vec!["Tack!".into()],
        ..Default::default()
    };
    let layout = ReceiptLayout {
        width: 16,
        qr_module_size: 4,
        qr_error_correction: QrErrorCorrection::L,
        feed_before_cut: 3,
    };
    check(
        Input::Receipt(receipt, layout),
        &cat(&[
            &[0x1B, 0x40, 0x1B, 0x74, 19],
            &[0x1B, 0x61, 0x01],
            &[0x1B, 0x45, 0x01, 0x1D, 0x21, 0x11],
            b"Kaf\x82 \x99\n",
            &[0x1D, 0x21, 0x00, 0x1B, 0x45, 0x00],
            b"Storgatan 1\n",
            &[0x1B, 0x61, 0x00],
            b"Kaffe      25,00\n",
            b"----------------\n",
            &[0x1B, 0x45, 0x01],
            b"Total   25,00 kr\n",
            &[0x1B, 0x45, 0x00],
            b"Klarna\n",
            &[0x1B, 0x61, 0x01],
            b"\n",
            &[0x1D, 0x28, 0x6B, 0x04, 0x00, 0x31, 0x41, 0x32, 0x00],
            &[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x43, 4],
            &[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x45, 0x30],
            &[0x1D, 0x28, 0x6B, 32, 0x00, 0x31, 0x50, 0x30],
            b"krn:payment:eu1:transaction:x",
            &[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30],
            b"\n",
            b"Tack!\n",
            &[0x1B, 0x61, 0x00],
            &[0x1B, 0x64, 3],
            &[0x1D, 0x56, 0x01],
        ]),
    );
}
