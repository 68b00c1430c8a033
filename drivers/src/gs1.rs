//! GS1 element strings (the data of GS1-128, GS1 DataBar, GS1 DataMatrix and GS1 QR codes) and the
//! GS1 mod-10 check digit. Pure parsing: every input, however broken, yields a value or an error.
//!
//! What each Application Identifier holds is data, `gs1/ais.txt` (every AI GS1 assigns), read by
//! `table`; the syntax tests it names (check digits, dates, ...) are in `lint`. Two readings:
//! `parse_element_string` is strict (the first fault fails it, as GS1 validation does), and
//! `read_element_string` keeps every field it can and reports the rest, so that one AI kassa
//! does not know, or one malformed field, never hides the GTIN of an item a customer wants.

mod lint;
mod table;

pub use lint::{CHECKED as RULES_CHECKED, NOT_CHECKED as RULES_NOT_CHECKED};
pub use table::{
    AiSpec, CharSet, Component, PREDEFINED_LENGTHS, ai_spec, ai_specs, identify, predefined_length,
};

/// FNC1 as scanners transmit it: the ASCII group separator ends a variable-length field.
pub const FNC1: u8 = 0x1d;

/// One application identifier and its value, e.g. `("17", "261231")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gs1Field {
    pub ai: String,
    pub value: String,
}

/// Why an element string (or one field of it) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Gs1Error {
    #[error("empty element string")]
    Empty,
    /// No AI GS1 assigns starts at this byte.
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
    /// A date or time of day that does not exist (30 February, month 13, hour 24, ...).
    #[error("field ({0}) is not a valid date or time")]
    BadDate(String),
    /// A byte outside the field's GS1 character set (82, 39 or 64).
    #[error("field ({0}) contains a byte outside GS1's character set")]
    BadCharacter(String),
    /// Another of GS1's syntax tests, by its GS1 name (`pieceoftotal`, `pcenc`, ...).
    #[error("field ({0}) fails GS1's {1} test")]
    Invalid(String, &'static str),
}

/// A part of an element string that was left out of a reading, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gs1Problem {
    /// Byte offset of the field (its AI) in the element string.
    pub at: usize,
    pub error: Gs1Error,
    /// The field as it came, AI included, control characters removed: for logs and screens.
    pub data: String,
}

/// Everything that could be read from an element string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gs1Reading {
    /// Fields that passed every test, in the order they came.
    pub fields: Vec<Gs1Field>,
    /// What was left out, in order.
    pub problems: Vec<Gs1Problem>,
}

impl Gs1Reading {
    /// The first valid value of `ai`.
    pub fn get(&self, ai: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.ai == ai)
            .map(|f| f.value.as_str())
    }
}

/// Parse a GS1 element string as a scanner sends it (FNC1 as `1D`, AIM prefix already removed).
/// Strict: the first fault is the error. A leading FNC1 and a FNC1 after a predefined-length
/// field are tolerated, as scanners differ.
pub fn parse_element_string(data: &[u8]) -> Result<Vec<Gs1Field>, Gs1Error> {
    let reading = read_element_string(data);
    match reading.problems.into_iter().next() {
        Some(problem) => Err(problem.error),
        None => Ok(reading.fields),
    }
}

/// Read every field that can be read and report the others: an unknown AI is stepped over (by
/// its predefined length where its first two digits have one, else to the next FNC1), a field
/// that fails a test is left out, and reading goes on after either.
pub fn read_element_string(data: &[u8]) -> Gs1Reading {
    use chrono::Datelike;
    read_element_string_in(data, chrono::Local::now().year())
}

/// `read_element_string` as seen in `year` (two-digit years are read in a window around it).
pub fn read_element_string_in(data: &[u8], year: i32) -> Gs1Reading {
    let mut reading = Gs1Reading::default();
    let mut pos = skip_fnc1(data, 0);
    if pos >= data.len() {
        reading.problems.push(Gs1Problem {
            at: 0,
            error: Gs1Error::Empty,
            data: String::new(),
        });
        return reading;
    }
    while pos < data.len() {
        let start = pos;
        let rest = &data[pos..];
        let Some(spec) = table::identify(rest) else {
            let end = match table::predefined_length(rest).filter(|_| two_digits(rest)) {
                Some(n) => (pos + n).min(next_fnc1(data, pos)),
                None => next_fnc1(data, pos),
            };
            reading
                .problems
                .push(problem(data, start, end, Gs1Error::UnknownAi(start)));
            pos = skip_fnc1(data, end);
            continue;
        };
        let value_start = pos + spec.ai.len();
        let value_end = match spec.fixed_length().filter(|_| spec.predefined) {
            // A predefined length ends the field (FNC1 inside it means it was cut short).
            Some(n) => (value_start + n)
                .min(data.len())
                .min(next_fnc1(data, value_start)),
            None => next_fnc1(data, value_start),
        };
        let value = &data[value_start..value_end];
        match check_value(spec, value, year) {
            Ok(()) => reading.fields.push(Gs1Field {
                ai: spec.ai.clone(),
                value: String::from_utf8_lossy(value).into_owned(),
            }),
            Err(error) => reading
                .problems
                .push(problem(data, start, value_end, error)),
        }
        pos = skip_fnc1(data, value_end);
    }
    reading
}

fn problem(data: &[u8], start: usize, end: usize, error: Gs1Error) -> Gs1Problem {
    Gs1Problem {
        at: start,
        error,
        data: String::from_utf8_lossy(&data[start..end])
            .chars()
            .filter(|c| !c.is_control())
            .collect(),
    }
}

fn two_digits(data: &[u8]) -> bool {
    data.get(..2)
        .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
}

fn skip_fnc1(data: &[u8], mut pos: usize) -> usize {
    while data.get(pos) == Some(&FNC1) {
        pos += 1;
    }
    pos
}

fn next_fnc1(data: &[u8], from: usize) -> usize {
    data.get(from..)
        .and_then(|rest| rest.iter().position(|&b| b == FNC1))
        .map_or(data.len(), |n| from + n)
}

/// Check one AI's value against its components: length, character set, then GS1's tests.
fn check_value(spec: &AiSpec, value: &[u8], year: i32) -> Result<(), Gs1Error> {
    let ai = || spec.ai.clone();
    let mut rest = value;
    for component in &spec.components {
        if rest.is_empty() && component.optional {
            break;
        }
        let n = if component.min == component.max {
            component.max
        } else {
            rest.len()
        };
        if rest.len() < n || n < component.min {
            return Err(Gs1Error::Truncated(ai()));
        }
        if n > component.max {
            return Err(Gs1Error::TooLong(ai()));
        }
        let (part, tail) = rest.split_at(n);
        check_charset(component.charset, part).map_err(|e| match e {
            CharsetError::NotNumeric => Gs1Error::NotNumeric(ai()),
            CharsetError::Outside => Gs1Error::BadCharacter(ai()),
        })?;
        for &rule in &component.rules {
            lint::check(rule, part, year).map_err(|failure| match failure {
                lint::Failure::CheckDigit => Gs1Error::CheckDigit(ai()),
                lint::Failure::Date => Gs1Error::BadDate(ai()),
                lint::Failure::Rule(rule) => Gs1Error::Invalid(ai(), rule),
            })?;
        }
        rest = tail;
    }
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Gs1Error::TooLong(ai()))
    }
}

enum CharsetError {
    NotNumeric,
    Outside,
}

fn check_charset(charset: CharSet, part: &[u8]) -> Result<(), CharsetError> {
    let body = if charset == CharSet::Cset64 {
        // Base64 padding: at most two `=` at the end, and only on a length divisible by three
        // (GS1's reading of padded set-64 data).
        let pads = part.iter().rev().take_while(|&&b| b == b'=').count();
        if pads > 2 || (pads > 0 && !part.len().is_multiple_of(3)) {
            return Err(CharsetError::Outside);
        }
        &part[..part.len() - pads]
    } else {
        part
    };
    if body.iter().all(|&b| charset.contains(b)) {
        Ok(())
    } else if charset == CharSet::Numeric {
        Err(CharsetError::NotNumeric)
    } else {
        Err(CharsetError::Outside)
    }
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

    #[test]
    fn a_reading_keeps_the_good_fields_and_reports_the_rest() {
        let r = read_element_string_in(
            b"0109506000134352172602301410101088 99X\x1d10AB#\x1d21S1",
            2026,
        );
        assert_eq!(r.get("01"), Some("09506000134352"));
        assert_eq!(r.get("21"), Some("S1"));
        assert_eq!(r.get("17"), None);
        let errors: Vec<_> = r.problems.iter().map(|p| (p.at, p.error.clone())).collect();
        assert_eq!(
            errors,
            [
                (16, Gs1Error::BadDate("17".into())),
                (24, Gs1Error::UnknownAi(24)),
                (32, Gs1Error::UnknownAi(32)),
                (39, Gs1Error::BadCharacter("10".into())),
            ]
        );
        // (14) has a predefined length, so it is stepped over exactly; (88) runs to FNC1.
        assert_eq!(r.problems[1].data, "14101010");
        assert_eq!(r.problems[2].data, "88 99X");
    }

    #[test]
    fn fields_with_several_components() {
        let ok = |s: &[u8]| read_element_string_in(s, 2026).problems.is_empty();
        // (8008) production time: date, hour, then optional minutes and seconds.
        assert!(ok(b"800826123113"));
        assert!(ok(b"80082612311345"));
        assert!(ok(b"8008261231134559"));
        assert!(!ok(b"800826123113455"));
        assert!(!ok(b"800826123124"));
        // (7007) harvest date or range of dates.
        assert!(ok(b"7007261101") && ok(b"7007261101261105"));
        assert!(!ok(b"7007261101261131"));
        // (8006) ITIP: GTIN and piece of total.
        assert!(ok(b"8006095060001343520102"));
        assert!(!ok(b"8006095060001343520201"));
        // (4309) ship-to geolocation.
        assert!(ok(b"430918000000003600000000"));
        assert!(!ok(b"430918000000013600000000"));
        // (3103) is predefined: no FNC1 needed before (10).
        assert!(ok(b"310300025010AB"));
        // (8005) is fixed length but not predefined: without FNC1 its value runs on.
        assert!(!ok(b"800512345610AB"));
        assert!(ok(b"8005123456\x1d10AB"));
        // (8030) digital signature: set 64 with padding.
        assert!(ok(b"8030AbC-_9") && ok(b"8030AbC-_=") && !ok(b"8030Ab+"));
        // (8010) component id: set 39.
        assert!(ok(b"8010AB#-/12") && !ok(b"8010ab12"));
    }
    /// A valid value for one component, built from its character set and GS1 tests.
    fn example_component(c: &Component) -> String {
        let n = if c.min == c.max { c.max } else { c.max.min(6) };
        let fill = |chars: &str| chars.chars().cycle().take(n).collect::<String>();
        let digits_then_check = |n: usize| {
            let body: String = "950600013435".chars().cycle().take(n - 1).collect();
            let check = mod10_check_digit(body.as_bytes()).expect("digits");
            format!("{body}{check}")
        };
        let by_rule = c.rules.iter().find_map(|&rule| {
            Some(match rule {
                "csum" => digits_then_check(n),
                "csumalpha" => {
                    let body = b"1987654Ad4X4bL5ttr2310c";
                    let pair = lint::csumalpha_pair(body).expect("set 82");
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(body),
                        String::from_utf8_lossy(&pair)
                    )
                }
                "yymmd0" | "yymmdd" => "261231".into(),
                "yyyymmd0" | "yyyymmdd" => "20261231".into(),
                "hh" => "23".into(),
                "mi" | "ss" => "59".into(),
                "hhmi" => "2359".into(),
                "yesno" | "iso5218" => "1".into(),
                "zero" => "0".into(),
                "winding" => "9".into(),
                "hyphen" => "-".into(),
                "nonzero" => format!("{}1", "0".repeat(n - 1)),
                "nozeroprefix" => "1".into(),
                "pieceoftotal" => format!(
                    "{}{}",
                    "0".repeat(n / 2 - 1) + "1",
                    "0".repeat(n / 2 - 1) + "2"
                ),
                "posinseqslash" => "1/2".into(),
                "latitude" => "0900000000".into(),
                "longitude" => "1800000000".into(),
                "pcenc" => "A%20B".into(),
                "iso3166" | "iso3166999" | "iso4217" => "752".into(),
                "iso3166alpha2" => "SE".into(),
                "mediatype" => "01".into(),
                _ => return None,
            })
        });
        by_rule.unwrap_or_else(|| match c.charset {
            CharSet::Numeric => fill("1234567890"),
            CharSet::Cset82 => fill("Ab1-/."),
            CharSet::Cset39 => fill("AB1#-/"),
            CharSet::Cset64 => fill("Ab1-_"),
        })
    }

    /// A valid value for `spec`, its optional components included.
    fn example(spec: &AiSpec) -> String {
        spec.components.iter().map(example_component).collect()
    }

    fn errors(data: &str) -> Vec<Gs1Error> {
        read_element_string_in(data.as_bytes(), 2026)
            .problems
            .into_iter()
            .map(|p| p.error)
            .collect()
    }

    /// The test per AI: every AI in the table reads its example (alone, after (01), before
    /// another field with or without FNC1 as its kind needs) and refuses the example spoilt in
    /// each way its format allows: too long, too short, a character outside its set, a wrong
    /// check digit, a date that does not exist.
    #[test]
    fn every_ai_reads_a_valid_value_and_refuses_broken_ones() {
        let gtin = "0109506000134352";
        for spec in ai_specs() {
            let ai = spec.ai.as_str();
            let value = example(spec);
            let field = format!("{ai}{value}");
            let ok = |data: &str| {
                let r = read_element_string_in(data.as_bytes(), 2026);
                assert!(r.problems.is_empty(), "({ai}) {data:?}: {:?}", r.problems);
                r.fields
            };
            assert_eq!(
                ok(&field),
                [Gs1Field {
                    ai: ai.into(),
                    value: value.clone()
                }],
                "({ai})"
            );
            let after = ok(&format!("{gtin}{field}"));
            assert_eq!(after.len(), 2, "({ai}) after (01)");
            let separator = if spec.predefined { "" } else { "\x1d" };
            let before = ok(&format!("{field}{separator}{gtin}"));
            assert_eq!(before[1].value, "09506000134352", "({ai}) before (01)");

            // One character too many: for a predefined length it starts a field of its own.
            let last = spec.components.last().expect("components");
            let extra = match last.charset {
                CharSet::Numeric => "0",
                _ => "A",
            };
            if !spec.predefined {
                let long = if last.min == last.max {
                    format!("{field}{extra}")
                } else {
                    let mut v: String = spec.components[..spec.components.len() - 1]
                        .iter()
                        .map(example_component)
                        .collect();
                    v.extend(std::iter::repeat_n(extra, last.max + 1));
                    format!("{ai}{v}")
                };
                assert!(!errors(&long).is_empty(), "({ai}) too long: {long:?}");
            }
            // One character too few, where a mandatory component has a fixed length.
            let mandatory: usize = spec
                .components
                .iter()
                .filter(|c| !c.optional && c.min == c.max)
                .map(|c| c.max)
                .sum();
            if mandatory > 0 {
                let short = format!("{ai}{}", &value[..mandatory - 1]);
                assert!(!errors(&short).is_empty(), "({ai}) too short: {short:?}");
            }
            // A character outside the first component's set.
            let first = &spec.components[0];
            let (bad, want) = match first.charset {
                CharSet::Numeric => ("A", Gs1Error::NotNumeric(ai.into())),
                CharSet::Cset82 => ("~", Gs1Error::BadCharacter(ai.into())),
                CharSet::Cset39 => ("a", Gs1Error::BadCharacter(ai.into())),
                CharSet::Cset64 => ("+", Gs1Error::BadCharacter(ai.into())),
            };
            let spoilt = format!("{ai}{bad}{}", &value[1..]);
            assert_eq!(errors(&spoilt).first(), Some(&want), "({ai}) {spoilt:?}");
            // The first component's own tests.
            if first.rules.contains(&"csum") {
                let n = first.max;
                let wrong = (value.as_bytes()[n - 1] - b'0' + 1) % 10;
                let spoilt = format!("{ai}{}{wrong}{}", &value[..n - 1], &value[n..]);
                assert_eq!(
                    errors(&spoilt).first(),
                    Some(&Gs1Error::CheckDigit(ai.into())),
                    "({ai}) {spoilt:?}"
                );
            }
            if first
                .rules
                .iter()
                .any(|r| r.starts_with("yymmd") || r.starts_with("yyyymmd"))
            {
                let at = if first.rules.iter().any(|r| r.starts_with("yyyy")) {
                    4
                } else {
                    2
                };
                // 30 February.
                let spoilt = format!("{ai}{}0230{}", &value[..at], &value[at + 4..]);
                assert_eq!(
                    errors(&spoilt).first(),
                    Some(&Gs1Error::BadDate(ai.into())),
                    "({ai}) {spoilt:?}"
                );
            }
        }
    }

    #[test]
    fn every_test_the_table_names_is_run_or_listed_as_not_run() {
        for spec in ai_specs() {
            for c in &spec.components {
                for rule in &c.rules {
                    assert!(
                        RULES_CHECKED.contains(rule) != RULES_NOT_CHECKED.contains(rule),
                        "({}) names {rule}, which is in neither list (or both)",
                        spec.ai
                    );
                }
            }
        }
    }
}
