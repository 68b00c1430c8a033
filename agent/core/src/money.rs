//! Money as integer minor units of an ISO 4217 currency: the only representation of an amount
//! anywhere in kassa. Floats never appear; the exponent comes from the ISO table, not from us.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What can go wrong when an amount is built or combined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency code {0:?}: use an ISO 4217 code such as SEK, EUR or USD")]
    UnknownCurrency(String),
    #[error("amount overflows the largest amount kassa handles")]
    Overflow,
    #[error("cannot combine {0} with {1}: a sale has one currency")]
    CurrencyMismatch(Currency, Currency),
}

/// An ISO 4217 currency with a known number of minor-unit digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Number of decimal digits of the minor unit (SEK 2, JPY 0, BHD 3); funds and metals,
    /// which have no exponent in the table, are refused at parse time instead.
    pub fn exponent(self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(0))
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let c = iso_currency::Currency::from_code(s)
            .ok_or_else(|| MoneyError::UnknownCurrency(s.chars().take(8).collect()))?;
        // A currency without minor units in the table (XAU, XDR, ...) cannot be sold in.
        if c.exponent().is_none() {
            return Err(MoneyError::UnknownCurrency(s.to_string()));
        }
        Ok(Currency(c))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Largest amount Klarna accepts in one request (klarna-api.md §1: int64 1..2147483647).
pub const KLARNA_MAX_AMOUNT: i64 = 2_147_483_647;

/// An amount in minor units of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// Unit price times quantity, as a line total.
    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        let minor = self
            .minor
            .checked_mul(quantity)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// The amount as a plain decimal in the currency's exponent ("118.00", "-0.05", "500"),
    /// for CSV, receipts and people; never parsed back into arithmetic.
    pub fn decimal(self) -> String {
        let exp = self.currency.exponent();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exp == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(exp);
        format!(
            "{sign}{}.{:0width$}",
            abs / scale,
            abs % scale,
            width = exp as usize
        )
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(minor: i64, code: &str, expected: &str) {
        let m = Money::new(minor, code.parse().unwrap());
        assert_eq!(m.to_string(), expected);
    }

    #[test]
    fn formats_in_the_currency_exponent() {
        check(11800, "SEK", "118.00 SEK");
        check(5, "EUR", "0.05 EUR");
        check(-5, "EUR", "-0.05 EUR");
        check(500, "JPY", "500 JPY");
        check(1234, "BHD", "1.234 BHD");
        check(i64::MIN, "SEK", "-92233720368547758.08 SEK");
    }

    #[test]
    fn unknown_and_unit_less_currencies_are_refused() {
        assert!("XYZ".parse::<Currency>().is_err());
        assert!("sek".parse::<Currency>().is_err());
        assert!("XAU".parse::<Currency>().is_err());
        assert_eq!("SEK".parse::<Currency>().unwrap().exponent(), 2);
    }

    #[test]
    fn arithmetic_refuses_overflow_and_mixed_currencies() {
        let sek: Currency = "SEK".parse().unwrap();
        let eur: Currency = "EUR".parse().unwrap();
        assert_eq!(
            Money::new(i64::MAX, sek).checked_add(Money::new(1, sek)),
            Err(MoneyError::Overflow)
        );
        assert!(matches!(
            Money::new(1, sek).checked_add(Money::new(1, eur)),
            Err(MoneyError::CurrencyMismatch(..))
        ));
        assert_eq!(
            Money::new(i64::MAX / 2 + 1, sek).checked_mul(2),
            Err(MoneyError::Overflow)
        );
        assert_eq!(Money::new(250, sek).checked_mul(3).unwrap().minor, 750);
    }
}
