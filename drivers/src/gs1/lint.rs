//! The GS1 syntax tests ("linters") that `ais.txt` names for a component: check digits, dates,
//! times and the small code lists, each a pure check of one component's bytes. Names are GS1's,
//! so the table reads like the General Specifications.

use chrono::NaiveDate;

use super::mod10_valid;
use super::table::CharSet;

/// Why a component failed its test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    CheckDigit,
    /// A date or time of day that does not exist.
    Date,
    /// Another rule, by its GS1 name.
    Rule(&'static str),
}

/// Tests that kassa does not run, with why: each would need a list kassa does not carry (or a
/// look-up service), and none bears on selling the item. The value's format is still checked.
pub const NOT_CHECKED: &[&str] = &[
    // The GS1 Company Prefix's position: needs GS1's table of prefix lengths.
    "gcppos1",
    "gcppos2",
    // Country and currency code lists (ISO 3166, ISO 4217), IBAN country formats.
    "iso3166",
    "iso3166999",
    "iso3166alpha2",
    "iso4217",
    "iban",
    // Code lists of tobacco traceability, freight and North American coupons.
    "importeridx",
    "mediatype",
    "packagetype",
    "couponcode",
    "couponposoffer",
];

/// Every test kassa runs (the others are in `NOT_CHECKED`).
pub const CHECKED: &[&str] = &[
    "csum",
    "csumalpha",
    "yymmd0",
    "yymmdd",
    "yyyymmd0",
    "yyyymmdd",
    "hh",
    "mi",
    "ss",
    "hhmi",
    "yesno",
    "zero",
    "nonzero",
    "nozeroprefix",
    "hasnondigit",
    "winding",
    "hyphen",
    "pieceoftotal",
    "posinseqslash",
    "latitude",
    "longitude",
    "iso5218",
    "pcenc",
];

/// Run test `rule` on one component (already checked against its character set and length).
/// `year` is the current year, for the century of two-digit years.
pub fn check(rule: &'static str, v: &[u8], year: i32) -> Result<(), Failure> {
    let ok = match rule {
        "csum" => {
            return std::str::from_utf8(v)
                .ok()
                .filter(|s| mod10_valid(s))
                .map(|_| ())
                .ok_or(Failure::CheckDigit);
        }
        "csumalpha" => {
            return csumalpha_valid(v).then_some(()).ok_or(Failure::CheckDigit);
        }
        "yymmd0" | "yymmdd" => {
            let yy = number(&v[..2.min(v.len())]).and_then(|n| i32::try_from(n).ok());
            let full = yy.map(|yy| century_of(yy, year) + yy);
            return date_ok(full, &v[2.min(v.len())..], rule == "yymmd0");
        }
        "yyyymmd0" | "yyyymmdd" => {
            let yyyy = number(&v[..4.min(v.len())]).and_then(|n| i32::try_from(n).ok());
            return date_ok(yyyy, &v[4.min(v.len())..], rule == "yyyymmd0");
        }
        "hh" => return time_ok(v, 23),
        "mi" | "ss" => return time_ok(v, 59),
        "hhmi" => {
            return if v.len() == 4 {
                time_ok(&v[..2], 23).and(time_ok(&v[2..], 59))
            } else {
                Err(Failure::Date)
            };
        }
        "yesno" => v == b"0" || v == b"1",
        "zero" => v == b"0",
        "nonzero" => v.iter().any(|&b| b != b'0'),
        "nozeroprefix" => v == b"0" || v.first() != Some(&b'0'),
        "hasnondigit" => !v.iter().all(u8::is_ascii_digit),
        "winding" => matches!(v, b"0" | b"1" | b"9"),
        "hyphen" => v == b"-",
        "iso5218" => matches!(v, b"0" | b"1" | b"2" | b"9"),
        "pieceoftotal" => {
            let (piece, total) = v.split_at(v.len() / 2);
            v.len().is_multiple_of(2)
                && matches!((number(piece), number(total)), (Some(p), Some(t)) if p > 0 && p <= t)
        }
        "posinseqslash" => match v.iter().position(|&b| b == b'/') {
            Some(i) => {
                let (pos, end) = (&v[..i], &v[i + 1..]);
                let plain = |s: &[u8]| s.first().is_some_and(|&b| b != b'0');
                plain(pos)
                    && plain(end)
                    && matches!((number(pos), number(end)), (Some(p), Some(e)) if p <= e)
            }
            None => false,
        },
        "latitude" => v.len() == 10 && number(v).is_some_and(|n| n <= 1_800_000_000),
        "longitude" => v.len() == 10 && number(v).is_some_and(|n| n <= 3_600_000_000),
        "pcenc" => percent_encoding_ok(v),
        other if NOT_CHECKED.contains(&other) => true,
        // The table names only tests in CHECKED or NOT_CHECKED (a test of table.rs holds it).
        _ => true,
    };
    if ok { Ok(()) } else { Err(Failure::Rule(rule)) }
}

/// GS1's century for a two-digit year seen in `year` (General Specifications 7.12): up to 50
/// years ahead is this century, 51 or more ahead is the previous one, 50 or more behind the next.
pub fn century_of(yy: i32, year: i32) -> i32 {
    let century = year.div_euclid(100) * 100;
    match yy - year.rem_euclid(100) {
        d if d >= 51 => century - 100,
        d if d <= -50 => century + 100,
        _ => century,
    }
}

fn number(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `mmdd` after a year: a real day, or day 00 ("end of the month", where the AI allows it).
fn date_ok(year: Option<i32>, mmdd: &[u8], day_zero: bool) -> Result<(), Failure> {
    let (Some(year), true) = (year, mmdd.len() == 4) else {
        return Err(Failure::Date);
    };
    let (Some(month), Some(day)) = (number(&mmdd[..2]), number(&mmdd[2..])) else {
        return Err(Failure::Date);
    };
    let day = if day == 0 && day_zero { 1 } else { day };
    let (Ok(month), Ok(day)) = (u32::try_from(month), u32::try_from(day)) else {
        return Err(Failure::Date);
    };
    NaiveDate::from_ymd_opt(year, month, day)
        .map(|_| ())
        .ok_or(Failure::Date)
}

fn time_ok(v: &[u8], max: i64) -> Result<(), Failure> {
    match number(v) {
        Some(n) if v.len() == 2 && n <= max => Ok(()),
        _ => Err(Failure::Date),
    }
}

/// Every `%` starts a `%XX` escape (two hexadecimal digits).
fn percent_encoding_ok(v: &[u8]) -> bool {
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            if !v
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// GS1's check character pair for alphanumeric keys (General Specifications 7.9.5): each
/// character's position in set 82 times a prime weight (2, 3, 5, ... from the right), summed
/// modulo 1021, written as two characters of set 32.
fn csumalpha_valid(v: &[u8]) -> bool {
    let Some((body, pair)) = v.len().checked_sub(2).map(|n| v.split_at(n)) else {
        return false;
    };
    csumalpha_pair(body).is_some_and(|p| p == pair)
}

/// The check character pair for `body`, if it is in set 82 and not longer than GS1's weights.
pub(crate) fn csumalpha_pair(body: &[u8]) -> Option<[u8; 2]> {
    const PRIMES: [usize; 23] = [
        2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83,
    ];
    const CSET32: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    if body.len() > PRIMES.len() {
        return None;
    }
    let set82 = CharSet::Cset82.characters().as_bytes();
    let mut sum = 0usize;
    for (&b, &weight) in body.iter().rev().zip(PRIMES.iter()) {
        sum += set82.iter().position(|&c| c == b)? * weight;
    }
    let sum = sum % 1021;
    Some([CSET32[sum / 32], CSET32[sum % 32]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_century_slides_with_the_current_year() {
        assert_eq!(century_of(26, 2026) + 26, 2026);
        assert_eq!(century_of(76, 2026) + 76, 2076);
        assert_eq!(century_of(77, 2026) + 77, 1977);
        assert_eq!(century_of(0, 2026), 2000);
        // Late in the century, small years are the next one's: 2100 is no leap year.
        assert_eq!(century_of(0, 2051), 2100);
        assert_eq!(check("yymmdd", b"000229", 2026), Ok(()));
        assert_eq!(check("yymmdd", b"000229", 2051), Err(Failure::Date));
        assert_eq!(century_of(99, 2048) + 99, 1999);
        assert_eq!(century_of(99, 2049) + 99, 2099);
    }

    #[test]
    fn dates_must_exist_and_day_00_only_where_allowed() {
        for ok in [&b"261231"[..], b"280229", b"260131", b"260430"] {
            assert_eq!(check("yymmdd", ok, 2026), Ok(()), "{ok:?}");
        }
        for bad in [
            &b"260230"[..],
            b"270229",
            b"260431",
            b"261301",
            b"260001",
            b"260132",
            b"2612",
        ] {
            assert_eq!(check("yymmdd", bad, 2026), Err(Failure::Date), "{bad:?}");
        }
        assert_eq!(check("yymmd0", b"260200", 2026), Ok(()));
        assert_eq!(check("yymmdd", b"260200", 2026), Err(Failure::Date));
        assert_eq!(check("yymmd0", b"261300", 2026), Err(Failure::Date));
        assert_eq!(check("yyyymmdd", b"20000229", 2026), Ok(()));
        assert_eq!(check("yyyymmdd", b"19000229", 2026), Err(Failure::Date));
    }

    #[test]
    fn times_of_day() {
        assert_eq!(check("hhmi", b"2359", 2026), Ok(()));
        assert_eq!(check("hhmi", b"2400", 2026), Err(Failure::Date));
        assert_eq!(check("hhmi", b"1260", 2026), Err(Failure::Date));
        assert_eq!(check("hh", b"23", 2026), Ok(()));
        assert_eq!(check("hh", b"24", 2026), Err(Failure::Date));
        assert_eq!(check("ss", b"60", 2026), Err(Failure::Date));
    }

    #[test]
    fn small_rules() {
        let ok = |rule, v: &[u8]| check(rule, v, 2026).is_ok();
        assert!(ok("pieceoftotal", b"0102") && !ok("pieceoftotal", b"0201"));
        assert!(!ok("pieceoftotal", b"0002") && !ok("pieceoftotal", b"010"));
        assert!(ok("posinseqslash", b"1/3") && !ok("posinseqslash", b"4/3"));
        assert!(!ok("posinseqslash", b"01/3") && !ok("posinseqslash", b"13"));
        assert!(ok("pcenc", b"A%20B") && !ok("pcenc", b"A%2") && !ok("pcenc", b"%G0"));
        assert!(ok("nonzero", b"0010") && !ok("nonzero", b"0000"));
        assert!(
            ok("nozeroprefix", b"0") && ok("nozeroprefix", b"10") && !ok("nozeroprefix", b"01")
        );
        assert!(ok("latitude", b"1800000000") && !ok("latitude", b"1800000001"));
        assert!(ok("longitude", b"3600000000") && !ok("longitude", b"3600000001"));
        assert!(ok("yesno", b"1") && !ok("yesno", b"2"));
        assert!(ok("winding", b"9") && !ok("winding", b"2"));
        assert!(ok("hasnondigit", b"12A") && !ok("hasnondigit", b"123"));
        assert!(ok("csum", b"4006381333931") && !ok("csum", b"4006381333932"));
    }

    #[test]
    fn alphanumeric_check_character_pair() {
        // The General Specifications' example GMN.
        assert!(csumalpha_valid(b"1987654Ad4X4bL5ttr2310c2K"));
        assert!(!csumalpha_valid(b"1987654Ad4X4bL5ttr2310c2L"));
        assert!(!csumalpha_valid(b"1987654Ad4X4bL5ttr2310cK2"));
        assert!(!csumalpha_valid(b"K"));
    }
}
