//! The scanned codes that are Klarna's, not a scanner's: a receipt's QR code (a Klarna payment
//! transaction id) for a return, and the customer code the Klarna app shows for the next payment.
//! The scanner driver hands them over as plain text; these rules, kept in one place, say which
//! text is which.

/// Prefix that marks a Klarna customer (interoperability) code shown by the Klarna app.
/// Klarna does not publish such a format for serial scanners, so kassa defines one rule in one
/// place: a scan `klarna-interop:<token>` carries `<token>`. Change it here if Klarna's differs.
pub const KLARNA_CUSTOMER_TOKEN_PREFIX: &str = "klarna-interop:";

/// Start of a Klarna payment transaction id, which is also what a kassa receipt's QR code holds:
/// `krn:payment:<region>:transaction:<id>`.
pub const KLARNA_TRANSACTION_PREFIX: &str = "krn:payment:";

/// Start of the QR code on the receipt of a sale paid (in part) in cash or on the card terminal:
/// `kassa:sale:<sale id>`. Such a sale comes back by its receipt, so its money goes back the
/// way it came; a sale Klarna paid alone carries Klarna's transaction id instead.
pub const KASSA_SALE_PREFIX: &str = "kassa:sale:";

/// The sale id in a receipt code `kassa:sale:<uuid>`, if `text` is one.
pub fn sale_code(text: &str) -> Option<&str> {
    let id = text.trim().strip_prefix(KASSA_SALE_PREFIX)?;
    uuid::Uuid::parse_str(id).ok().map(|_| id)
}

/// What a scanned text (`kassa_drivers::Scan::Text`) is to the till.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannedText {
    /// A kassa receipt QR code or a Klarna payment transaction id (`krn:payment:…`), for returns.
    Receipt(String),
    /// A Klarna customer code from the Klarna app (text after `KLARNA_CUSTOMER_TOKEN_PREFIX`).
    KlarnaCustomerToken(String),
    /// Anything else, as scanned.
    Unknown(String),
}

/// What `text`, as the scanner read it, means.
pub fn read(text: String) -> ScannedText {
    if let Some(token) = text.strip_prefix(KLARNA_CUSTOMER_TOKEN_PREFIX)
        && !token.is_empty()
    {
        return ScannedText::KlarnaCustomerToken(token.to_owned());
    }
    if is_klarna_transaction_id(&text) || sale_code(&text).is_some() {
        return ScannedText::Receipt(text);
    }
    ScannedText::Unknown(text)
}

/// `krn:payment:<region>:transaction:<id>` with a lower-case region and a non-empty id of
/// letters, digits and dashes (Klarna uses a UUID there).
pub fn is_klarna_transaction_id(text: &str) -> bool {
    let Some(rest) = text.strip_prefix(KLARNA_TRANSACTION_PREFIX) else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(region), Some(kind), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && kind == "transaction"
        && !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod sale_code_tests {
    use super::*;

    #[test]
    fn a_till_receipt_code_names_its_sale() {
        let id = "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c";
        assert_eq!(sale_code(&format!("kassa:sale:{id}")), Some(id));
        assert_eq!(
            read(format!("kassa:sale:{id}")),
            ScannedText::Receipt(format!("kassa:sale:{id}"))
        );
        assert_eq!(sale_code("kassa:sale:../etc"), None);
        assert_eq!(sale_code("kassa:sale:"), None);
        assert_eq!(sale_code(id), None);
    }
}

#[cfg(test)]
mod tests {
    use kassa_drivers::Scan;
    use kassa_drivers::scanner::classify;
    use proptest::prelude::*;

    use super::*;

    /// A frame as the scanner driver reads it, then as the till reads its text.
    fn check(frame: &[u8], expected: ScannedText) {
        let read = match classify(frame) {
            Scan::Text { text, .. } => read(text),
            other => panic!("{other:?} is no text"),
        };
        assert_eq!(
            read,
            expected,
            "reading {:?}",
            String::from_utf8_lossy(frame)
        );
    }

    #[test]
    fn klarna_ids_and_customer_tokens_are_recognised() {
        let id = "krn:payment:eu1:transaction:6d1e4b9a-3f8e-4c7b-9a51-2f0c8d7e1a23";
        check(id.as_bytes(), ScannedText::Receipt(id.into()));
        check(
            format!("]Q1{id}").as_bytes(),
            ScannedText::Receipt(id.into()),
        );
        check(
            b"]Q1klarna-interop:abc123",
            ScannedText::KlarnaCustomerToken("abc123".into()),
        );
        check(
            b"krn:payment:eu1:order:x",
            ScannedText::Unknown("krn:payment:eu1:order:x".into()),
        );
        check(
            b"]Q1https://example.invalid",
            ScannedText::Unknown("https://example.invalid".into()),
        );
        // The drivers' corpus entry for a customer code (its receipt QR is the case above).
        check(
            b"]Q1klarna-interop:tok_abc123",
            ScannedText::KlarnaCustomerToken("tok_abc123".into()),
        );
        check(
            b"]Q1klarna-interop:",
            ScannedText::Unknown("klarna-interop:".into()),
        );
    }

    #[test]
    fn a_code_that_claims_to_be_a_product_is_never_a_klarna_code() {
        for frame in [
            &b"]C1krn:payment:eu1:transaction:6d1e4b9a"[..],
            b"]E0klarna-interop:abc123",
            b"\x1dkrn:payment:eu1:transaction:6d1e4b9a",
        ] {
            assert!(
                matches!(classify(frame), Scan::Unknown(_)),
                "{}",
                String::from_utf8_lossy(frame)
            );
        }
    }

    proptest! {
        /// What the drivers' fuzz body checked of receipts and customer codes: a receipt is a
        /// Klarna transaction id, a customer code is not empty and carries no control characters.
        #[test]
        fn read_codes_are_always_well_formed(
            head in prop::sample::select(vec![
                "", "krn:payment:eu1:transaction:", "klarna-interop:", "]Q1", "]Q1klarna-interop:",
            ]),
            tail in "[a-z0-9-]{0,24}",
            noise in prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
        ) {
            let mut frame = [head.as_bytes(), tail.as_bytes()].concat();
            frame.extend(noise.unwrap_or_default());
            if let Scan::Text { text, .. } = classify(&frame) {
                match read(text.clone()) {
                    ScannedText::Receipt(code) => {
                        prop_assert!(is_klarna_transaction_id(&code), "{code}");
                        prop_assert_eq!(code, text);
                    }
                    ScannedText::KlarnaCustomerToken(token) => {
                        prop_assert!(!token.is_empty() && !token.chars().any(char::is_control));
                        prop_assert_eq!(format!("{KLARNA_CUSTOMER_TOKEN_PREFIX}{token}"), text);
                    }
                    ScannedText::Unknown(other) => prop_assert_eq!(other, text),
                }
            }
        }
    }
}
