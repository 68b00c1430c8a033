//! The sale's rules as tables: every state × event, and the limits a line must keep.

use super::*;

#[test]
fn only_an_open_sale_changes_and_paid_and_abandoned_are_final() {
    use SaleEvent as E;
    use SaleState as S;
    let table = [
        (S::Open, E::LinesAdded, Some(S::Open)),
        (S::Open, E::Paid, Some(S::Paid)),
        (S::Open, E::Abandoned, Some(S::Abandoned)),
        (S::Paid, E::LinesAdded, None),
        (S::Paid, E::Paid, None),
        (S::Paid, E::Abandoned, None),
        (S::Abandoned, E::LinesAdded, None),
        (S::Abandoned, E::Paid, None),
        (S::Abandoned, E::Abandoned, None),
    ];
    for (state, event, expected) in table {
        assert_eq!(state.next(event).ok(), expected, "{state:?} × {event:?}");
    }
    assert_eq!(
        table.len(),
        SaleState::ALL.len() * 3,
        "every pair is in the table"
    );
    for s in SaleState::ALL {
        assert_eq!(SaleState::parse(s.as_str()), Some(s));
    }
    assert_eq!(SaleState::parse("settled_by_a_newer_kassa"), None);
}

#[test]
fn a_refused_change_says_what_the_sale_is() {
    let e = SaleState::Paid.next(SaleEvent::LinesAdded).unwrap_err();
    assert_eq!(e.to_string(), "sale is Paid, so it cannot be changed");
}

fn line(name: &str, quantity: i64, unit_price: i64) -> LineInput {
    LineInput {
        name: name.into(),
        reference: None,
        quantity,
        unit_price,
    }
}

#[test]
fn a_line_keeps_its_limits_and_its_total_fits_what_klarna_accepts() {
    let sek: Currency = "SEK".parse().unwrap();
    assert_eq!(
        validate_line(&line("Socks", 2, 4950), sek).unwrap().minor,
        9900
    );
    let refused = [
        line("", 1, 100),
        line("   ", 1, 100),
        line(&"x".repeat(MAX_LINE_TEXT_CHARS + 1), 1, 100),
        line("Tab\there", 1, 100),
        line("Socks", 0, 100),
        line("Socks", 100_001, 100),
        line("Socks", 1, -1),
        line("Socks", 1, KLARNA_MAX_AMOUNT + 1),
        line("Socks", 2, KLARNA_MAX_AMOUNT),
    ];
    for l in refused {
        assert!(
            matches!(validate_line(&l, sek), Err(SaleError::Invalid(_))),
            "{l:?}"
        );
    }
    assert!(validate_line(&line(&"x".repeat(MAX_LINE_TEXT_CHARS), 1, 0), sek).is_ok());
    assert!(check_line_count(MAX_LINES_PER_SALE - 1, 1).is_ok());
    assert!(check_line_count(MAX_LINES_PER_SALE, 1).is_err());
    assert!(check_line_count(usize::MAX, 1).is_err());
    assert!(validate_operator("ann").is_ok());
    for bad in ["", "  ", "a\nb", &"x".repeat(MAX_OPERATOR_CHARS + 1)] {
        assert!(validate_operator(bad).is_err(), "{bad:?}");
    }
}
