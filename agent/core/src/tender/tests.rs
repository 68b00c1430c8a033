//! The tender rules as tables: every state against every event, cash with change and rounding,
//! card limits, and refunds shared over split tenders.

use super::*;

#[test]
fn every_state_and_event() {
    use TenderEvent::*;
    use TenderState::*;
    // (state, event, what the tender still holds, expected next state or None for refused)
    let table: &[(TenderState, TenderEvent, i64, Option<TenderState>)] = &[
        (Taken, Void, 500, Some(Voided)),
        (Taken, Refund(200), 500, Some(Taken)),
        (Taken, Refund(500), 500, Some(Refunded)),
        (Taken, Refund(501), 500, None),
        (Taken, Refund(0), 500, None),
        (Taken, Refund(-1), 500, None),
        (Voided, Void, 0, None),
        (Voided, Refund(1), 0, None),
        (Refunded, Void, 0, None),
        (Refunded, Refund(1), 0, None),
    ];
    for state in TenderState::ALL {
        assert!(
            table.iter().any(|r| r.0 == state),
            "{state:?} has no row in the table"
        );
        assert_eq!(TenderState::parse(state.as_str()), Some(state));
    }
    for (state, event, left, want) in table {
        assert_eq!(
            state.next(*event, *left).ok(),
            *want,
            "{state:?} + {event} (holding {left})"
        );
    }
}

#[test]
fn cash_pays_the_rest_with_change_and_rounding() {
    // (due, given, step) -> (amount, change, rounding, drawer)
    type Row = (i64, i64, i64, (i64, i64, i64, i64));
    let table: &[Row] = &[
        // Exact cash, no rounding configured.
        (14900, 14900, 1, (14900, 0, 0, 14900)),
        // A 200 note for 149: 51 back.
        (14900, 20000, 1, (14900, 5100, 0, 14900)),
        // Swedish cash rounding to whole kronor: 149.49 is paid with 149, 149.50 with 150.
        (14949, 14900, 100, (14949, 0, -49, 14900)),
        (14950, 20000, 100, (14950, 5000, 50, 15000)),
        // Less than the rest: a part paid, the rest still due, no change.
        (14900, 5000, 1, (5000, 0, 0, 5000)),
        (14949, 14800, 100, (14800, 0, 0, 14800)),
        // 0.30 left rounds to nothing: the customer owes no coin.
        (30, 0, 100, (30, 0, -30, 0)),
        // Between the rest and its rounding (10.50 rounds to 11, 10.60 given): all of it is
        // paid, nothing back, the drawer keeps 0.10 of rounding; never more than the total.
        (1050, 1060, 100, (1050, 0, 10, 1060)),
    ];
    for (due, given, step, (amount, change, rounding, drawer)) in table {
        let s = settle(*due, &TenderInput::Cash { given: *given }, *step).unwrap();
        assert_eq!(
            (s.amount, s.change, s.rounding, s.drawer(TenderKind::Cash)),
            (*amount, *change, *rounding, *drawer),
            "due {due}, given {given}, step {step}"
        );
    }
    assert!(settle(14900, &TenderInput::Cash { given: 0 }, 1).is_err());
    assert!(settle(14900, &TenderInput::Cash { given: -5 }, 1).is_err());
    assert!(settle(0, &TenderInput::Cash { given: 100 }, 1).is_err());
    assert!(settle(100, &TenderInput::Cash { given: i64::MAX }, 1).is_err());
}

#[test]
fn rounding_goes_to_the_nearest_coin() {
    for (due, step, want) in [
        (14949, 100, 14900),
        (14950, 100, 15000),
        (14951, 100, 15000),
        (14925, 50, 14950),
        (14924, 50, 14900),
        (7, 5, 5),
        (8, 5, 10),
        (14949, 1, 14949),
        (14949, 0, 14949),
    ] {
        assert_eq!(round_cash(due, step), want, "{due} to {step}");
    }
}

#[test]
fn a_card_terminal_pays_at_most_what_is_due_under_its_reference() {
    let card = |amount, reference: &str| TenderInput::CardTerminal {
        amount,
        reference: reference.into(),
    };
    let s = settle(10000, &card(4000, "AUTH 123456"), 100).unwrap();
    assert_eq!((s.amount, s.change, s.rounding), (4000, 0, 0));
    assert_eq!(s.drawer(TenderKind::CardTerminal), 0);
    assert!(settle(10000, &card(10001, "A1"), 1).is_err());
    assert!(settle(10000, &card(0, "A1"), 1).is_err());
    assert!(settle(10000, &card(100, " "), 1).is_err());
    assert!(settle(10000, &card(100, "a\nb"), 1).is_err());
    assert!(settle(10000, &card(100, &"x".repeat(65)), 1).is_err());
}

#[test]
fn refunds_are_shared_in_proportion_to_what_each_tender_holds() {
    let t = |key: &'static str, left| Refundable { key, left };
    // Half cash, half Klarna: an item of 99.99 goes back 50.00 + 49.99 (the odd unit to the first).
    assert_eq!(
        share_refund(9999, &[t("cash", 5000), t("klarna", 5000)]).unwrap(),
        vec![("cash", 5000), ("klarna", 4999)]
    );
    // One tender: all of it.
    assert_eq!(
        share_refund(300, &[t("klarna", 1000)]).unwrap(),
        vec![("klarna", 300)]
    );
    // A tender already refunded in full takes nothing.
    assert_eq!(
        share_refund(100, &[t("cash", 0), t("klarna", 1000)]).unwrap(),
        vec![("klarna", 100)]
    );
    // All that is left, exactly.
    assert_eq!(
        share_refund(1500, &[t("a", 1000), t("b", 500)]).unwrap(),
        vec![("a", 1000), ("b", 500)]
    );
    // The shares always add up and never exceed a tender's holding.
    for amount in 1..=1500 {
        let s = share_refund(amount, &[t("a", 1000), t("b", 499), t("c", 1)]).unwrap();
        assert_eq!(s.iter().map(|x| x.1).sum::<i64>(), amount);
        assert!(s.iter().all(|x| {
            x.1 <= [("a", 1000), ("b", 499), ("c", 1)]
                .iter()
                .find(|y| y.0 == x.0)
                .unwrap()
                .1
        }));
    }
    assert!(share_refund(1501, &[t("a", 1000), t("b", 500)]).is_err());
    assert!(share_refund(0, &[t("a", 1000)]).is_err());
}
