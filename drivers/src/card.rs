//! Magnetic stripe card reader: parses track 1/2 in memory and keeps only what the till may keep.
//! A payment card leaves this module as its brand and last four digits; the PAN, name, expiry and
//! discretionary data never do, and the buffers that held them are zeroed. Loyalty and gift cards
//! pass their number through, since the agent looks them up.

use std::fmt;

use zeroize::Zeroize;

/// Card network, from the IIN (first digits of the PAN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardBrand {
    Visa,
    Mastercard,
    Amex,
    Maestro,
    Discover,
    Jcb,
    DinersClub,
    UnionPay,
    /// Luhn-valid but no known IIN range.
    Other,
}

/// What survives of a payment card swipe.
#[derive(Clone, PartialEq, Eq)]
pub struct PaymentCard {
    brand: CardBrand,
    last4: [u8; 4],
}

impl PaymentCard {
    pub fn brand(&self) -> CardBrand {
        self.brand
    }

    /// Last four digits of the card number, e.g. for "Visa •••• 1111" on a screen.
    pub fn last4(&self) -> &str {
        // Only ASCII digits are ever stored, so this cannot fail; "????" keeps it total anyway.
        std::str::from_utf8(&self.last4).unwrap_or("????")
    }
}

// Written by hand so that a future field (say, a hash) cannot leak through a derived Debug.
impl fmt::Debug for PaymentCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentCard")
            .field("brand", &self.brand)
            .field("last4", &self.last4())
            .finish()
    }
}

/// A store loyalty or gift card; its number is not cardholder data and is passed through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoyaltyCard {
    pub number: String,
}

/// Result of one swipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardSwipe {
    Payment(PaymentCard),
    Loyalty(LoyaltyCard),
    /// Nothing usable on the stripe (bad swipe, unknown format): ask the customer to swipe again.
    Unreadable,
}

/// Parse one swipe (all tracks the reader sent, e.g. `%B…?;…?`) and zero `raw` afterwards, whatever
/// the outcome. `loyalty_prefixes` are number prefixes of the store's own cards: such cards are
/// loyalty cards even when their number happens to pass the Luhn check.
pub fn parse_swipe(raw: &mut [u8], loyalty_prefixes: &[String]) -> CardSwipe {
    let result = parse_inner(raw, loyalty_prefixes);
    raw.zeroize();
    result
}

fn parse_inner(raw: &[u8], loyalty_prefixes: &[String]) -> CardSwipe {
    // PAN digits are copied into a fixed array (no reallocation leaves copies behind) and zeroed.
    let mut pan = [0u8; 19];
    let is_store_card = |digits: &[u8]| {
        loyalty_prefixes
            .iter()
            .any(|p| !p.is_empty() && digits.starts_with(p.as_bytes()))
    };
    let Some(mut len) = track2_pan(raw, &mut pan).or_else(|| track1_pan(raw, &mut pan)) else {
        return match non_financial_number(raw) {
            // A half swipe of a payment card (no separator) must not pass its PAN through.
            Some(number)
                if looks_like_pan(number.as_bytes()) && !is_store_card(number.as_bytes()) =>
            {
                CardSwipe::Unreadable
            }
            Some(number) => CardSwipe::Loyalty(LoyaltyCard { number }),
            None => CardSwipe::Unreadable,
        };
    };
    let digits = &pan[..len];
    let is_store_card = is_store_card(digits);
    let result = if !is_store_card && !luhn_valid(digits) && looks_like_pan(digits) {
        // A misread payment card: its digits are most of a PAN, so they are not a loyalty number.
        CardSwipe::Unreadable
    } else if is_store_card || len < 12 || !luhn_valid(digits) {
        CardSwipe::Loyalty(LoyaltyCard {
            number: String::from_utf8_lossy(digits).into_owned(),
        })
    } else {
        let mut last4 = [0u8; 4];
        last4.copy_from_slice(&digits[len - 4..]);
        CardSwipe::Payment(PaymentCard {
            brand: brand(digits),
            last4,
        })
    };
    pan.zeroize();
    len.zeroize();
    result
}

/// Track 2: `;<PAN>=…?`.
fn track2_pan(raw: &[u8], pan: &mut [u8; 19]) -> Option<usize> {
    let start = raw.iter().position(|&b| b == b';')? + 1;
    copy_digits(raw.get(start..)?, b'=', pan)
}

/// Track 1, format B (financial): `%B<PAN>^NAME^…?`.
fn track1_pan(raw: &[u8], pan: &mut [u8; 19]) -> Option<usize> {
    let start = raw.windows(2).position(|w| w == b"%B")? + 2;
    copy_digits(raw.get(start..)?, b'^', pan)
}

/// Digits up to `separator` into `pan` (spaces, which some cards print in track 1, skipped).
fn copy_digits(field: &[u8], separator: u8, pan: &mut [u8; 19]) -> Option<usize> {
    let mut len = 0;
    for &b in field {
        match b {
            b'0'..=b'9' if len < pan.len() => {
                pan[len] = b;
                len += 1;
            }
            b' ' => {}
            _ if b == separator => return (len > 0).then_some(len),
            _ => return None,
        }
    }
    None
}

/// Store cards often use track 1 with another format code (`%A…`, `%<digits>`) or a track 2
/// without a separator; take the digits between the start sentinel and `?` or `=`.
fn non_financial_number(raw: &[u8]) -> Option<String> {
    let start = raw.iter().position(|&b| b == b'%' || b == b';')? + 1;
    let body = raw.get(start..)?;
    let end = body
        .iter()
        .position(|&b| matches!(b, b'?' | b'=' | b'^'))
        .unwrap_or(body.len());
    let number: String = body[..end]
        .iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(|&b| char::from(b))
        .collect();
    let number = number
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .to_owned();
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then_some(number)
}

/// Long enough to be a PAN and in a payment network's range (ISO/IEC 7812 major industry
/// identifiers 3 to 6, and Mastercard's 2221–2720). Such a number that did not parse as a valid
/// payment card is a half swipe or misread of one: passing it on as a loyalty number would leak
/// (part of) a card number, so it is unreadable unless it has one of the store's own prefixes.
fn looks_like_pan(digits: &[u8]) -> bool {
    if digits.len() < 12 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let four = digits
        .iter()
        .take(4)
        .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'));
    matches!(digits[0], b'3'..=b'6') || (2221..=2720).contains(&four)
}

/// Luhn (mod 10, ISO/IEC 7812) over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.len() < 2 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn brand(pan: &[u8]) -> CardBrand {
    let prefix = |n: usize| -> u32 {
        pan.iter()
            .take(n)
            .fold(0, |acc, &b| acc * 10 + u32::from(b - b'0'))
    };
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    match () {
        _ if p2 == 34 || p2 == 37 => CardBrand::Amex,
        _ if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) => CardBrand::Mastercard,
        _ if p4 == 6011
            || (644..=649).contains(&p3)
            || p2 == 65
            || (622126..=622925).contains(&p6) =>
        {
            CardBrand::Discover
        }
        _ if p2 == 62 => CardBrand::UnionPay,
        _ if (3528..=3589).contains(&p4) => CardBrand::Jcb,
        _ if p2 == 36 || p2 == 38 || p2 == 39 || (300..=305).contains(&p3) => CardBrand::DinersClub,
        _ if p2 == 50 || (56..=69).contains(&p2) => CardBrand::Maestro,
        _ if p1 == 4 => CardBrand::Visa,
        _ => CardBrand::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(swipe: &str, expected: CardSwipe) {
        let mut raw = swipe.as_bytes().to_vec();
        assert_eq!(
            parse_swipe(&mut raw, &["99".into()]),
            expected,
            "swipe {swipe}"
        );
        assert!(raw.iter().all(|&b| b == 0), "buffer zeroed");
    }

    fn payment(brand: CardBrand, last4: &str) -> CardSwipe {
        let mut l = [0u8; 4];
        l.copy_from_slice(last4.as_bytes());
        CardSwipe::Payment(PaymentCard { brand, last4: l })
    }

    #[test]
    fn payment_cards_keep_only_brand_and_last_four() {
        check(
            "%B4111111111111111^DOE/JOHN^29121010000000000000?;4111111111111111=29121010000000000000?",
            payment(CardBrand::Visa, "1111"),
        );
        check(
            ";5555555555554444=2912101?",
            payment(CardBrand::Mastercard, "4444"),
        );
        check(
            "%B378282246310005^DOE/J^2912101?",
            payment(CardBrand::Amex, "0005"),
        );
        check(
            ";6011111111111117=2912?",
            payment(CardBrand::Discover, "1117"),
        );
        check(
            ";2223003122003222=2912?",
            payment(CardBrand::Mastercard, "3222"),
        );
    }

    #[test]
    fn loyalty_and_gift_cards_pass_their_number() {
        check(
            ";1234567890123=0000?",
            CardSwipe::Loyalty(LoyaltyCard {
                number: "1234567890123".into(),
            }),
        );
        // Luhn-valid, but in the store's own prefix list.
        check(
            ";9900000000000009=0?",
            CardSwipe::Loyalty(LoyaltyCard {
                number: "9900000000000009".into(),
            }),
        );
        check(
            "%A7001234^MEMBER?",
            CardSwipe::Loyalty(LoyaltyCard {
                number: "7001234".into(),
            }),
        );
    }

    #[test]
    fn bad_swipes_are_unreadable() {
        check("", CardSwipe::Unreadable);
        check("%E?", CardSwipe::Unreadable);
        check(";E?", CardSwipe::Unreadable);
    }

    #[test]
    fn debug_output_never_contains_the_pan() {
        let mut raw = b";4111111111111111=2912101?".to_vec();
        let swipe = parse_swipe(&mut raw, &[]);
        let shown = format!("{swipe:?} {swipe:#?}");
        assert!(!shown.contains("4111111111111111"), "{shown}");
        assert!(!shown.contains("411111"), "{shown}");
        assert!(shown.contains("1111") && shown.contains("Visa"), "{shown}");
    }
}
