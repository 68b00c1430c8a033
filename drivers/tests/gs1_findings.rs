//! One test per finding of the independent check of kassa's scan reading against a GS1 parser
//! (411 scans): each failed on the code before the fix. They use only the API the agent had
//! then (`classify`, `parse_element_string`, `Scan::Product { gtin, .. }`), so they also show
//! that the agent's use of it still compiles and means the same.

use kassa_drivers::Scan;
use kassa_drivers::gs1::{Gs1Error, parse_element_string};
use kassa_drivers::scanner::classify;

/// A GTIN-14 with a valid check digit.
const GTIN: &str = "09506000134352";

fn gtin_of(frame: &[u8]) -> Option<String> {
    match classify(frame) {
        Scan::Product { gtin, .. } => Some(gtin),
        _ => None,
    }
}

#[track_caller]
fn sells(frame: &[u8], gtin: &str) {
    assert_eq!(
        gtin_of(frame).as_deref(),
        Some(gtin),
        "{:?} must sell {gtin}, got {:?}",
        String::from_utf8_lossy(frame),
        classify(frame)
    );
}

#[test]
fn ais_kassa_did_not_know_no_longer_reject_the_scan() {
    // The AIs the check named, each in a real-world-style element string after (01).
    let fields: &[&str] = &[
        "8008261231134500",      // production date and time
        "4300ACME%20Corp",       // ship-to company (percent-encoded)
        "7240PROTO-7",           // protocol id
        "714PZ12345",            // NHRN AIM (Portugal)
        "7102345678",            // NHRN PZN (Germany)
        "8200http://ex.com/p/1", // product URL
        "43211",                 // dangerous goods flag
        "3953001234",            // price per unit of measure, 3 decimals
        "7006261120",            // first freeze date
        "7007261101261105",      // harvest date range
        "8012V2.1",              // software version
        "70112612311200",        // test-by date and time
    ];
    for field in fields {
        for symbology in ["]C1", "]d2", "]Q3"] {
            let frame = format!("{symbology}01{GTIN}{field}\x1d10LOT1");
            sells(frame.as_bytes(), GTIN);
        }
        // And in front of (01), which a kassa that skips unknown fields must still find.
        let frame = format!("]d2{field}\x1d01{GTIN}");
        sells(frame.as_bytes(), GTIN);
    }
}

#[test]
fn a_bare_01_gtin_from_databar_without_aim_is_a_product() {
    sells(format!("01{GTIN}").as_bytes(), GTIN);
    sells(b"0110012345678902", "10012345678902");
}

#[test]
fn an_element_string_not_starting_with_01_without_aim_is_a_product() {
    sells(format!("1726123101{GTIN}").as_bytes(), GTIN);
    sells(format!("10LOT42\x1d01{GTIN}").as_bytes(), GTIN);
    sells(format!("3103000250\x1d01{GTIN}").as_bytes(), GTIN);
}

#[test]
fn february_30_is_not_an_expiry_date() {
    assert_eq!(
        parse_element_string(b"17260230"),
        Err(Gs1Error::BadDate("17".into()))
    );
    assert_eq!(
        parse_element_string(b"17250229"),
        Err(Gs1Error::BadDate("17".into()))
    );
    assert_eq!(
        parse_element_string(b"17260431"),
        Err(Gs1Error::BadDate("17".into()))
    );
    // 2028 is a leap year; day 00 means the end of the month for (17).
    assert!(parse_element_string(b"17280229").is_ok());
    assert!(parse_element_string(b"17260200").is_ok());
}

#[test]
fn the_unassigned_ai_14_is_refused() {
    assert_eq!(
        parse_element_string(b"14261231"),
        Err(Gs1Error::UnknownAi(0))
    );
    assert_eq!(
        parse_element_string(format!("01{GTIN}14261231").as_bytes()),
        Err(Gs1Error::UnknownAi(16))
    );
}

#[test]
fn characters_outside_set_82_are_refused() {
    assert_eq!(
        parse_element_string(b"10AB#1"),
        Err(Gs1Error::BadCharacter("10".into()))
    );
    assert_eq!(
        parse_element_string(b"91A~B"),
        Err(Gs1Error::BadCharacter("91".into()))
    );
    for c in [
        b' ', b'#', b'$', b'@', b'[', b'\\', b']', b'^', b'`', b'{', b'|', b'}', b'~',
    ] {
        let mut data = b"21X".to_vec();
        data.push(c);
        assert_eq!(
            parse_element_string(&data),
            Err(Gs1Error::BadCharacter("21".into())),
            "{:?}",
            c as char
        );
    }
}

#[test]
fn an_ean13_with_an_add_on_keeps_the_ean13() {
    sells(b"]E3400638133393112", "04006381333931");
    sells(b"]E3400638133393190000", "04006381333931");
    sells(b"]E3006099201118712", "00060992011187");
    // The same as two packets in one transmission, as several scanners send it.
    sells(b"]E00060992011187]E112", "00060992011187");
    sells(b"]E04006381333931]E252495", "04006381333931");
    sells(b"]E400210126]E112", "00000000210126");
}

#[test]
fn e0_never_carries_an_ean8() {
    assert_eq!(gtin_of(b"]E096385074"), None);
    assert_eq!(gtin_of(b"]E496385074").as_deref(), Some("00000096385074"));
}
