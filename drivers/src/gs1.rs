//! GS1 element strings (the data of GS1-128, GS1 DataBar, GS1 DataMatrix and GS1 QR codes) and the
//! GS1 mod-10 check digit. Pure parsing: every input, however broken, yields a value or an error.

/// FNC1 as scanners transmit it: the ASCII group separator ends a variable-length field.
pub const FNC1: u8 = 0x1d;

/// One application identifier and its value, e.g. `("17", "261231")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gs1Field {
    pub ai: String,
    pub value: String,
}

/// Why an element string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gs1Error {
    #[error("empty element string")]
    Empty,
    #[error("unknown application identifier at byte {0}")]
    UnknownAi(usize),
    #[error("field ({0}) is cut short")]
    Truncated(String),
    #[error("field ({0}) is too long")]
    TooLong(String),
    #[error("field ({0}) must be digits")]
    NotNumeric(String),
    #[error("field ({0}) has a wrong check digit")]
    CheckDigit(String),
    #[error("field ({0}) is not a valid date")]
    BadDate(String),
    #[error("field ({0}) contains a byte outside GS1's character set")]
    BadCharacter(String),
}

/// AIs whose length is fixed by their first two digits (GS1 General Specifications, "element
/// strings with predefined length"): (prefix, AI length, value length). These need no FNC1.
const PREDEFINED: &[(&str, usize, usize)] = &[
    ("00", 2, 18),
    ("01", 2, 14),
    ("02", 2, 14),
    ("03", 2, 14),
    ("04", 2, 16),
    ("11", 2, 6),
    ("12", 2, 6),
    ("13", 2, 6),
    ("14", 2, 6),
    ("15", 2, 6),
    ("16", 2, 6),
    ("17", 2, 6),
    ("18", 2, 6),
    ("19", 2, 6),
    ("20", 2, 2),
    ("31", 4, 6),
    ("32", 4, 6),
    ("33", 4, 6),
    ("34", 4, 6),
    ("35", 4, 6),
    ("36", 4, 6),
    ("41", 3, 13),
];

/// Variable-length AIs we accept: (AI or AI prefix, AI length, maximum value length, numeric).
/// Values end at FNC1 or at the end of the data.
const VARIABLE: &[(&str, usize, usize, bool)] = &[
    ("10", 2, 20, false),
    ("21", 2, 20, false),
    ("22", 2, 20, false),
    ("235", 3, 28, false),
    ("240", 3, 30, false),
    ("241", 3, 30, false),
    ("242", 3, 6, true),
    ("243", 3, 20, false),
    ("250", 3, 30, false),
    ("251", 3, 30, false),
    ("253", 3, 30, false),
    ("254", 3, 20, false),
    ("255", 3, 25, false),
    ("30", 2, 8, true),
    ("37", 2, 8, true),
    ("390", 4, 15, true),
    ("391", 4, 18, true),
    ("392", 4, 15, true),
    ("393", 4, 18, true),
    ("400", 3, 30, false),
    ("401", 3, 30, false),
    ("403", 3, 30, false),
    ("420", 3, 20, false),
    ("421", 3, 12, false),
    ("422", 3, 3, true),
    ("7003", 4, 10, true),
    ("8003", 4, 30, false),
    ("8004", 4, 30, false),
    ("8020", 4, 25, false),
    ("90", 2, 30, false),
    ("91", 2, 90, false),
    ("92", 2, 90, false),
    ("93", 2, 90, false),
    ("94", 2, 90, false),
    ("95", 2, 90, false),
    ("96", 2, 90, false),
    ("97", 2, 90, false),
    ("98", 2, 90, false),
    ("99", 2, 90, false),
];

/// AIs whose last digit is a GS1 mod-10 check digit.
const CHECKED: &[&str] = &[
    "00", "01", "02", "410", "411", "412", "413", "414", "415", "416", "417",
];

/// AIs that hold a YYMMDD date (day 00 means "end of month").
const DATES: &[&str] = &["11", "12", "13", "15", "16", "17"];

/// Parse a GS1 element string as a scanner sends it (FNC1 as `1D`, AIM prefix already removed).
/// A leading FNC1 and a FNC1 after a fixed-length field are tolerated, as scanners differ.
pub fn parse_element_string(data: &[u8]) -> Result<Vec<Gs1Field>, Gs1Error> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < data.len() && data[pos] == FNC1 {
        pos += 1;
    }
    if pos >= data.len() {
        return Err(Gs1Error::Empty);
    }
    while pos < data.len() {
        let rest = &data[pos..];
        let (ai, value_len) = identify(rest).ok_or(Gs1Error::UnknownAi(pos))?;
        let ai_len = ai.len();
        let value_start = pos + ai_len;
        let value: &[u8] = match value_len {
            Length::Fixed(n) => {
                let end = value_start + n;
                let Some(v) = data.get(value_start..end) else {
                    return Err(Gs1Error::Truncated(ai));
                };
                if v.contains(&FNC1) {
                    return Err(Gs1Error::Truncated(ai));
                }
                pos = end;
                v
            }
            Length::Variable { max, .. } => {
                let tail = data.get(value_start..).unwrap_or_default();
                let n = tail.iter().position(|&b| b == FNC1).unwrap_or(tail.len());
                if n > max {
                    return Err(Gs1Error::TooLong(ai));
                }
                pos = value_start + n;
                &tail[..n]
            }
        };
        // FNC1 ends variable fields and is allowed (though redundant) after fixed ones.
        while pos < data.len() && data[pos] == FNC1 {
            pos += 1;
        }
        let numeric = match value_len {
            Length::Fixed(_) => true,
            Length::Variable { numeric, .. } => numeric,
        };
        if value.is_empty() {
            return Err(Gs1Error::Truncated(ai));
        }
        if numeric && !value.iter().all(u8::is_ascii_digit) {
            return Err(Gs1Error::NotNumeric(ai));
        }
        // GS1's character set 82 is printable ASCII; anything else is noise or a wrong code.
        if !value.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err(Gs1Error::BadCharacter(ai));
        }
        let value = String::from_utf8_lossy(value).into_owned();
        if CHECKED.contains(&ai.as_str()) && !mod10_valid(&value) {
            return Err(Gs1Error::CheckDigit(ai));
        }
        if DATES.contains(&ai.as_str()) && !valid_yymmdd(&value) {
            return Err(Gs1Error::BadDate(ai));
        }
        fields.push(Gs1Field { ai, value });
    }
    Ok(fields)
}

enum Length {
    Fixed(usize),
    Variable { max: usize, numeric: bool },
}

fn identify(rest: &[u8]) -> Option<(String, Length)> {
    let digits = |n: usize| -> Option<&str> {
        let s = rest.get(..n)?;
        if s.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(s).ok()
        } else {
            None
        }
    };
    let two = digits(2)?;
    if let Some(&(_, ai_len, n)) = PREDEFINED.iter().find(|(p, _, _)| *p == two) {
        return Some((digits(ai_len)?.to_owned(), Length::Fixed(n)));
    }
    VARIABLE.iter().find_map(|&(prefix, ai_len, max, numeric)| {
        let ai = digits(ai_len)?;
        ai.starts_with(prefix)
            .then(|| (ai.to_owned(), Length::Variable { max, numeric }))
    })
}

/// True when `digits` is all ASCII digits, at least two long, and its last digit is the GS1
/// mod-10 check digit of the others (weights 3,1,3,… from the right of the body).
pub fn mod10_valid(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    match bytes.split_last() {
        Some((&last, body)) if !body.is_empty() && last.is_ascii_digit() => {
            mod10_check_digit(body) == Some(last - b'0')
        }
        _ => false,
    }
}

/// The GS1 check digit for `body`, or `None` if it is not all digits.
pub fn mod10_check_digit(body: &[u8]) -> Option<u8> {
    let mut sum = 0u32;
    for (i, &b) in body.iter().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = u32::from(b - b'0');
        sum += if i % 2 == 0 { d * 3 } else { d };
    }
    u8::try_from((10 - sum % 10) % 10).ok()
}

fn valid_yymmdd(value: &str) -> bool {
    let b = value.as_bytes();
    if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let month = (b[2] - b'0') * 10 + (b[3] - b'0');
    let day = (b[4] - b'0') * 10 + (b[5] - b'0');
    (1..=12).contains(&month) && day <= 31
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], expected: Result<&[(&str, &str)], Gs1Error>) {
        let got = parse_element_string(input);
        let expected = expected.map(|fields| {
            fields
                .iter()
                .map(|(ai, value)| Gs1Field {
                    ai: (*ai).into(),
                    value: (*value).into(),
                })
                .collect::<Vec<_>>()
        });
        assert_eq!(
            got,
            expected,
            "parsing {:?}",
            String::from_utf8_lossy(input)
        );
    }

    #[test]
    fn gtin_expiry_batch_and_serial_are_split_at_fnc1() {
        check(
            b"0109506000134352172612311012AB\x1d21XYZ9",
            Ok(&[
                ("01", "09506000134352"),
                ("17", "261231"),
                ("10", "12AB"),
                ("21", "XYZ9"),
            ]),
        );
        check(
            b"\x1d010950600013435210BATCH\x1d17261200",
            Ok(&[("01", "09506000134352"), ("10", "BATCH"), ("17", "261200")]),
        );
        check(b"3103000250", Ok(&[("3103", "000250")]));
    }

    #[test]
    fn broken_element_strings_are_rejected_with_a_reason() {
        check(b"0109506000134353", Err(Gs1Error::CheckDigit("01".into())));
        check(b"01095060001343", Err(Gs1Error::Truncated("01".into())));
        check(b"17261332", Err(Gs1Error::BadDate("17".into())));
        check(b"88123", Err(Gs1Error::UnknownAi(0)));
        check(b"10", Err(Gs1Error::Truncated("10".into())));
        check(b"", Err(Gs1Error::Empty));
        check(
            b"10ABCDEFGHIJKLMNOPQRSTU",
            Err(Gs1Error::TooLong("10".into())),
        );
    }

    #[test]
    fn check_digits_follow_gs1_mod10() {
        assert!(mod10_valid("4006381333931"));
        assert!(mod10_valid("96385074"));
        assert!(mod10_valid("036000291452"));
        assert!(!mod10_valid("4006381333932"));
        assert!(!mod10_valid("4"));
        assert!(!mod10_valid("40063813339x1"));
    }
}
