//! Amounts as people in each language read them: "SEK 1,234.50" in English, "1 234,50 kr" in
//! Swedish, "1.234,50 €" in German. Integer minor units in, text out; never a float.

use crate::Language;

/// No-break space: keeps "118,00 kr" and digit groups on one line.
const NBSP: char = '\u{a0}';

/// The core's ISO 4217 currency (code and minor-unit digits from `iso_currency`), so a screen can
/// never disagree with the till's arithmetic about how many decimals a currency has.
pub use kassa_core::money::Currency;

struct Style {
    group: char,
    decimal: char,
}

fn style(language: Language) -> Style {
    match language {
        Language::English => Style {
            group: ',',
            decimal: '.',
        },
        Language::Swedish => Style {
            group: NBSP,
            decimal: ',',
        },
        Language::German => Style {
            group: '.',
            decimal: ',',
        },
    }
}

/// The symbol a language writes after (sv, de) or before (en) the number, if it has one.
fn symbol(code: &str, language: Language) -> Option<&'static str> {
    match (language, code) {
        (_, "EUR") => Some("€"),
        (Language::Swedish, "SEK" | "NOK" | "DKK") => Some("kr"),
        (Language::English, "USD") => Some("$"),
        (Language::English, "GBP") => Some("£"),
        _ => None,
    }
}

/// The number alone, grouped and with the currency's decimals: "1 234,50".
pub fn format_number(minor: i64, exponent: u32, language: Language) -> String {
    let s = style(language);
    let abs = minor.unsigned_abs();
    // Exponents above 4 do not exist in ISO 4217; clamping keeps 10^exp inside u64.
    let exponent = exponent.min(4);
    let scale = 10u64.pow(exponent);
    let whole = (abs / scale).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3 + 8);
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(s.group);
        }
        grouped.push(ch);
    }
    if exponent > 0 {
        grouped.push(s.decimal);
        grouped.push_str(&format!(
            "{:0width$}",
            abs % scale,
            width = exponent as usize
        ));
    }
    if minor < 0 {
        grouped.insert(0, '-');
    }
    grouped
}

/// The amount with its currency, the way the language writes money.
pub fn format_amount(minor: i64, currency: &Currency, language: Language) -> String {
    let number = format_number(minor, currency.exponent(), language);
    match (language, symbol(currency.code(), language)) {
        (Language::English, Some(sym)) => match number.strip_prefix('-') {
            Some(positive) => format!("-{sym}{positive}"),
            None => format!("{sym}{number}"),
        },
        (Language::English, None) => format!("{}{NBSP}{number}", currency.code()),
        (_, Some(sym)) => format!("{number}{NBSP}{sym}"),
        (_, None) => format!("{number}{NBSP}{}", currency.code()),
    }
}

/// An amount as a person types it ("1234,50", "1 234.5", "200") in minor units of `currency`;
/// `Ok(None)` for nothing typed, `Err(())` for anything that is not an amount (a sign, letters,
/// more decimals than the currency has, or more than nine whole digits).
#[allow(clippy::result_unit_err)]
pub fn parse_amount(text: &str, currency: &Currency) -> Result<Option<i64>, ()> {
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(*c, ' ' | NBSP | '\u{202f}'))
        .collect();
    if cleaned.is_empty() {
        return Ok(None);
    }
    let exp = currency.exponent().min(4) as usize;
    let (whole, frac) = match cleaned.find([',', '.']) {
        Some(at) => (&cleaned[..at], &cleaned[at + 1..]),
        None => (cleaned.as_str(), ""),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !digits(frac) || whole.len() > 9 || frac.len() > exp {
        return Err(());
    }
    if whole.is_empty() && frac.is_empty() {
        return Err(());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| ())?
    };
    let frac: i64 = format!("{frac:0<exp$}").parse().unwrap_or(0);
    Ok(Some(whole * 10i64.pow(exp as u32) + frac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(language: Language, minor: i64, code: &str, exponent: u32, expected: &str) {
        let currency: Currency = code.parse().unwrap();
        assert_eq!(currency.exponent(), exponent, "{code}");
        let got = format_amount(minor, &currency, language);
        assert_eq!(
            got.replace(NBSP, " "),
            expected,
            "{language} {minor} {code}"
        );
    }

    #[test]
    fn amounts_read_the_way_each_language_writes_money() {
        check(Language::Swedish, 11800, "SEK", 2, "118,00 kr");
        check(Language::German, 11800, "EUR", 2, "118,00 €");
        check(Language::English, 11800, "SEK", 2, "SEK 118.00");
        check(Language::English, 11800, "EUR", 2, "€118.00");
        check(Language::German, 11800, "SEK", 2, "118,00 SEK");
        check(Language::Swedish, 11800, "EUR", 2, "118,00 €");
    }

    #[test]
    fn large_amounts_are_grouped_in_thousands() {
        check(Language::Swedish, 123_456_789, "SEK", 2, "1 234 567,89 kr");
        check(Language::German, 123_456_789, "EUR", 2, "1.234.567,89 €");
        check(Language::English, 123_456_789, "USD", 2, "$1,234,567.89");
        check(Language::English, 100_000, "SEK", 2, "SEK 1,000.00");
        check(Language::English, 99_999, "SEK", 2, "SEK 999.99");
    }

    #[test]
    fn currencies_without_or_with_three_decimals_keep_their_exponent() {
        check(Language::English, 500, "JPY", 0, "JPY 500");
        check(Language::German, 1_234_567, "BHD", 3, "1.234,567 BHD");
        check(Language::Swedish, 5, "SEK", 2, "0,05 kr");
    }

    #[test]
    fn refunds_show_a_minus_sign() {
        check(Language::English, -250, "EUR", 2, "-€2.50");
        check(Language::Swedish, -11800, "SEK", 2, "-118,00 kr");
        check(
            Language::English,
            i64::MIN,
            "SEK",
            2,
            "SEK -92,233,720,368,547,758.08",
        );
    }

    #[test]
    fn swedish_groups_with_a_no_break_space() {
        let got = format_amount(123_400, &"SEK".parse().unwrap(), Language::Swedish);
        assert_eq!(got, "1\u{a0}234,00\u{a0}kr");
    }

    #[test]
    fn typed_amounts_become_minor_units_or_are_refused() {
        let sek = "SEK".parse::<Currency>().unwrap();
        let jpy = "JPY".parse::<Currency>().unwrap();
        for (text, want) in [
            ("", Ok(None)),
            ("  ", Ok(None)),
            ("200", Ok(Some(20_000))),
            ("1 234,50", Ok(Some(123_450))),
            ("1\u{a0}234.5", Ok(Some(123_450))),
            (",5", Ok(Some(50))),
            ("0", Ok(Some(0))),
            ("12,345", Err(())),
            ("-5", Err(())),
            ("5 kr", Err(())),
            ("1,2,3", Err(())),
            (",", Err(())),
            ("1234567890", Err(())),
        ] {
            assert_eq!(parse_amount(text, &sek), want, "{text:?}");
        }
        assert_eq!(parse_amount("500", &jpy), Ok(Some(500)));
        assert_eq!(parse_amount("500,5", &jpy), Err(()));
    }
}
