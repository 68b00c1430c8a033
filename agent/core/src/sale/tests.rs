//! The sale's rules as tables: every state × event, and the limits a line must keep.

use super::*;

#[test]
fn only_an_open_sale_changes_and_paid_and_abandoned_are_final() {
    use SaleEvent as E;
    use SaleState as S;
    let table = [
        (S::Open, E::Changed, Some(S::Open)),
        (S::Open, E::Tendered, Some(S::Open)),
        (S::Open, E::Paid, Some(S::Paid)),
        (S::Open, E::Abandoned, Some(S::Abandoned)),
        (S::Paid, E::Changed, None),
        (S::Paid, E::Tendered, None),
        (S::Paid, E::Paid, None),
        (S::Paid, E::Abandoned, None),
        (S::Abandoned, E::Changed, None),
        (S::Abandoned, E::Tendered, None),
        (S::Abandoned, E::Paid, None),
        (S::Abandoned, E::Abandoned, None),
    ];
    for (state, event, expected) in table {
        assert_eq!(state.next(event).ok(), expected, "{state:?} × {event:?}");
    }
    assert_eq!(
        table.len(),
        SaleState::ALL.len() * 4,
        "every pair is in the table"
    );
    for s in SaleState::ALL {
        assert_eq!(SaleState::parse(s.as_str()), Some(s));
    }
    assert_eq!(SaleState::parse("settled_by_a_newer_kassa"), None);
}

#[test]
fn a_refused_change_says_what_the_sale_is() {
    let e = SaleState::Paid.next(SaleEvent::Changed).unwrap_err();
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

fn sale_line(quantity: i64, unit_price: i64) -> SaleLine {
    SaleLine {
        line_no: 3,
        name: "Socks".into(),
        reference: Some("SKU-7".into()),
        quantity,
        unit_price,
        total_amount: quantity * unit_price,
        list_price: unit_price,
    }
}

#[test]
fn an_edit_keeps_the_limits_a_new_line_keeps() {
    let sek: Currency = "SEK".parse().unwrap();
    let l = sale_line(2, 4950);
    let edited = |q, p| {
        Some(Edited {
            quantity: q,
            unit_price: p,
            total: q * p,
        })
    };
    let price = |p: i64, r: &str| LineEdit::Price {
        unit_price: p,
        reason: r.into(),
    };
    let table: Vec<(LineEdit, Result<Option<Edited>, ()>)> = vec![
        (LineEdit::Remove, Ok(None)),
        (LineEdit::Quantity(3), Ok(edited(3, 4950))),
        (LineEdit::Quantity(0), Err(())),
        (LineEdit::Quantity(-1), Err(())),
        (LineEdit::Quantity(100_001), Err(())),
        (price(3960, "damaged box"), Ok(edited(2, 3960))),
        (price(0, "gift"), Ok(edited(2, 0))),
        (price(-1, "negative"), Err(())),
        (price(KLARNA_MAX_AMOUNT, "too much for two"), Err(())),
        (price(3960, ""), Err(())),
        (price(3960, "  "), Err(())),
        (price(3960, "line\nbreak"), Err(())),
        (price(3960, &"x".repeat(256)), Err(())),
    ];
    for (edit, expected) in table {
        assert_eq!(
            edit_line(&l, &edit, sek).map_err(|_| ()),
            expected,
            "{edit:?}"
        );
    }
}

#[test]
fn only_a_cut_beyond_the_free_share_needs_a_manager() {
    let table = [
        // (before, after, free %, needs a manager)
        (10_000, 10_000, 10, false),
        (10_000, 12_000, 0, false),
        (10_000, 9_000, 10, false),
        (10_000, 8_999, 10, true),
        (10_000, 9_999, 0, true),
        (10_000, 0, 100, false),
        (i64::MAX, 0, 99, true),
    ];
    for (before, after, free, needs) in table {
        assert_eq!(
            price_needs_manager(before, after, free),
            needs,
            "{before} -> {after} with {free} % free"
        );
    }
}

#[test]
fn a_repeated_product_merges_only_into_the_same_product_at_the_same_price() {
    let lines = vec![sale_line(1, 4950)];
    let new = |name: &str, reference: Option<&str>, unit_price| LineInput {
        name: name.into(),
        reference: reference.map(Into::into),
        quantity: 1,
        unit_price,
    };
    assert_eq!(
        merge_target(&lines, &new("Socks", Some("SKU-7"), 4950)).map(|l| l.line_no),
        Some(3)
    );
    assert!(merge_target(&lines, &new("Socks", Some("SKU-8"), 4950)).is_none());
    assert!(merge_target(&lines, &new("Socks", Some("SKU-7"), 3960)).is_none());
    assert!(merge_target(&lines, &new("Sock", Some("SKU-7"), 4950)).is_none());
    let unreferenced = vec![SaleLine {
        reference: None,
        ..sale_line(1, 4950)
    }];
    assert!(merge_target(&unreferenced, &new("Socks", None, 4950)).is_none());
}

#[test]
fn a_sale_discount_becomes_each_lines_price_rounded_to_the_nearest_unit() {
    for (price, percent, want) in [
        (11_800, 10, 10_620),
        (4_950, 10, 4_455),
        (4_950, 15, 4_208), // 742.5 off: 742, never more than the percentage
        (999, 33, 670),
        (1_999, 10, 1_800),
        (100, 100, 0),
        (0, 50, 0),
        (1, 50, 1), // half an öre off is nothing off
    ] {
        assert_eq!(discounted(price, percent), want, "{price} less {percent} %");
    }
    // A discount within the store's free limit needs no manager, on any price; beyond it, it does.
    for price in [11_800, 1_999, 4_995, 1, 7] {
        assert!(
            !price_needs_manager(price, discounted(price, 10), 10),
            "{price}"
        );
    }
    assert!(!price_needs_manager(11_800, discounted(11_800, 10), 10));
    assert!(price_needs_manager(11_800, discounted(11_800, 11), 10));
}
