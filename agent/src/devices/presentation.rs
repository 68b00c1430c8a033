//! What the customer sees: the two lines of the pole display as a sale goes from its first item to
//! "thank you", and the printed receipt, whose QR code carries the Klarna transaction id that the
//! scanner recognises again when the goods come back. Both are pure functions of the sale, so
//! they are tested without a device; `Shared::show` is the one way to the display, so the API can
//! tell what it shows now.

use kassa_drivers::{CustomerDisplay, DisplayScreen, ReceiptLine, ScreenLabels};

use super::{ReceiptConfig, Shared, lock};
use crate::money::Money;
use crate::payment::AttemptState;
use crate::store::{SaleLine, SaleState, SaleView};
use kassa_core::tender::{TenderKind, TenderState};

fn line_label(line: &SaleLine) -> String {
    if line.quantity > 1 {
        format!("{}x {}", line.quantity, line.name)
    } else {
        line.name.clone()
    }
}

/// Each line's number and quantity: what the display compares with the sale it showed last.
pub fn quantities(sale: &SaleView) -> Vec<(i64, i64)> {
    sale.lines.iter().map(|l| (l.line_no, l.quantity)).collect()
}

/// What the customer display shows for `sale`. `before` is each line's number and quantity when
/// the sale was last shown (`None` if it was not): a new line, or one whose quantity grew (the
/// same product scanned again), shows as the item and its price above the running total;
/// anything else shows the total, the QR prompt, or thank you.
pub fn screen_for(
    labels: &ScreenLabels,
    sale: &SaleView,
    before: Option<&[(i64, i64)]>,
) -> DisplayScreen {
    let total = sale.total_money().to_string();
    let grew = |line: &&SaleLine| {
        before.is_none_or(|b| {
            b.iter()
                .find(|(n, _)| *n == line.line_no)
                .is_none_or(|(_, q)| line.quantity > *q)
        })
    };
    match sale.sale.state {
        SaleState::Paid => DisplayScreen::thank_you(labels),
        SaleState::Abandoned => DisplayScreen::welcome(labels),
        SaleState::Open if sale.live_attempt().is_some() => {
            DisplayScreen::scan_to_pay(labels, &total)
        }
        SaleState::Open => match sale.lines.iter().rev().find(grew) {
            Some(line) => {
                let price = Money::new(line.total_amount, sale.sale.currency).to_string();
                DisplayScreen::item(labels, &line_label(line), &price, &total)
            }
            None => DisplayScreen::total(labels, &total),
        },
    }
}

/// The receipt of a paid sale; the QR code holds the Klarna payment transaction id, which the
/// scanner recognises again when the goods come back.
pub fn receipt_for(
    sale: &SaleView,
    words: &ReceiptConfig,
    store_id: &str,
    terminal_id: &str,
) -> kassa_drivers::Receipt {
    let money = |minor| Money::new(minor, sale.sale.currency).to_string();
    let paid = sale
        .payments
        .iter()
        .rev()
        .find(|a| a.state == AttemptState::Paid);
    let transaction = paid.and_then(|a| a.klarna_transaction_id.clone());
    let when = sale
        .sale
        .closed_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Local))
        .unwrap_or_else(chrono::Local::now);
    let mut header = if words.header.is_empty() {
        vec![store_id.to_string()]
    } else {
        words.header.clone()
    };
    header.push(match sale.sale.receipt_no {
        Some(no) => format!("Receipt {no}  till {terminal_id}"),
        None => format!("Till {terminal_id}"),
    });
    header.push(when.format("%Y-%m-%d %H:%M").to_string());
    // Every tender that paid, in the order taken, then Klarna's part (always the last).
    let mut totals = vec![ReceiptLine::new(&words.total_label, money(sale.total))];
    let mut payment = vec![];
    for t in sale
        .tenders
        .iter()
        .filter(|t| t.state != TenderState::Voided)
    {
        match t.kind {
            TenderKind::Cash => {
                totals.push(ReceiptLine::new("Cash", money(t.given)));
                if t.change > 0 {
                    totals.push(ReceiptLine::new("Change", money(t.change)));
                }
                if t.rounding != 0 {
                    totals.push(ReceiptLine::new("Rounding", money(t.rounding)));
                }
            }
            TenderKind::CardTerminal => {
                totals.push(ReceiptLine::new("Card", money(t.amount)));
                if let Some(r) = &t.reference {
                    payment.push(format!("Card ref {r}"));
                }
            }
        }
    }
    if let Some(a) = paid {
        totals.push(ReceiptLine::new("Klarna", money(a.amount)));
        payment.push("Paid with Klarna".to_string());
    }
    if let Some(tx) = &transaction {
        // The last segment is what Klarna's merchant portal and the customer's app show.
        payment.push(format!("Ref {}", tx.rsplit(':').next().unwrap_or(tx)));
    }
    kassa_drivers::Receipt {
        header,
        lines: sale
            .lines
            .iter()
            .map(|l| ReceiptLine::new(line_label(l), money(l.total_amount)))
            .collect(),
        totals,
        payment,
        // A sale paid (in part) another way comes back by its own receipt code, so the money
        // goes back the way it came; Klarna alone: Klarna's transaction id, as before.
        qr_data: if sale.tenders.iter().any(|t| t.state != TenderState::Voided) {
            Some(format!(
                "{}{}",
                super::codes::KASSA_SALE_PREFIX,
                sale.sale.id
            ))
        } else {
            transaction
        },
        footer: words.footer.clone(),
        ..Default::default()
    }
}

impl Shared {
    pub(super) fn labels(&self) -> Option<&ScreenLabels> {
        self.display.as_ref().map(CustomerDisplay::labels)
    }

    pub(super) fn show(&self, screen: DisplayScreen) {
        let Some(display) = &self.display else {
            return;
        };
        *lock(&self.shown) = Some(screen.lines());
        if display.show(screen).is_err() {
            tracing::error!("the customer display's thread has stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AttemptRow, SaleRow};

    fn sale(state: SaleState, lines: &[(&str, i64, i64)], paying: bool) -> SaleView {
        let currency = "SEK".parse().expect("SEK");
        let lines: Vec<SaleLine> = lines
            .iter()
            .enumerate()
            .map(|(i, (name, quantity, unit_price))| SaleLine {
                line_no: i as i64 + 1,
                name: name.to_string(),
                reference: None,
                quantity: *quantity,
                unit_price: *unit_price,
                total_amount: quantity * unit_price,
                list_price: *unit_price,
            })
            .collect();
        let total = lines.iter().map(|l| l.total_amount).sum();
        let attempt = |state| AttemptRow {
            id: "a1".into(),
            sale_id: "s1".into(),
            state,
            amount: total,
            currency: "SEK".into(),
            correlation_id: "c".into(),
            authorize_key: String::new(),
            finalize_key: String::new(),
            authorize_body: String::new(),
            interop_token: None,
            klarna_request_id: None,
            payment_request_url: None,
            expires_at: None,
            deadline_at: String::new(),
            klarna_transaction_id: Some("krn:payment:eu1:transaction:6a2f".into()),
            cancel_confirmed: false,
            reason: None,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let payments = match (state, paying) {
            (SaleState::Paid, _) => vec![attempt(AttemptState::Paid)],
            (_, true) => vec![attempt(AttemptState::AwaitingCustomer)],
            _ => vec![],
        };
        SaleView {
            sale: SaleRow {
                id: "s1".into(),
                currency,
                state,
                operator: "cashier".into(),
                opened_at: "2025-05-01T10:00:00Z".into(),
                closed_at: None,
                receipt_no: (state == SaleState::Paid).then_some(42),
            },
            lines,
            total,
            payments,
            tenders: vec![],
            due: total,
            revision: 1,
        }
    }

    fn check(sale: &SaleView, before: Option<&SaleView>, expected: [&str; 2]) {
        let before = before.map(quantities);
        let shown = screen_for(&ScreenLabels::default(), sale, before.as_deref()).lines();
        assert_eq!(
            [shown[0].trim_end(), shown[1].trim_end()],
            expected,
            "{shown:?}"
        );
    }

    #[test]
    fn the_display_follows_the_sale_from_first_item_to_thank_you() {
        let one = sale(SaleState::Open, &[("T-shirt", 1, 11800)], false);
        check(&one, None, ["T-shirt   118.00 SEK", "Total     118.00 SEK"]);
        let two = sale(
            SaleState::Open,
            &[("T-shirt", 1, 11800), ("Socks", 2, 4950)],
            false,
        );
        check(
            &two,
            Some(&one),
            ["2x Socks   99.00 SEK", "Total     217.00 SEK"],
        );
        // The same sale again without a new line (say, a declined payment): the total alone.
        check(&two, Some(&two), ["Total", "          217.00 SEK"]);
        // The socks scanned again: their line grows, and it is the item shown.
        let three = sale(
            SaleState::Open,
            &[("T-shirt", 1, 11800), ("Socks", 3, 4950)],
            false,
        );
        check(
            &three,
            Some(&two),
            ["3x Socks  148.50 SEK", "Total     266.50 SEK"],
        );
        // A quantity lowered by an edit is no new item: the total alone.
        check(&two, Some(&three), ["Total", "          217.00 SEK"]);
        let paying = sale(SaleState::Open, &[("T-shirt", 1, 11800)], true);
        check(
            &paying,
            Some(&one),
            ["  Scan the QR code", "to pay    118.00 SEK"],
        );
        let paid = sale(SaleState::Paid, &[("T-shirt", 1, 11800)], false);
        check(&paid, Some(&one), ["     Thank you!", "    Welcome back"]);
        let gone = sale(SaleState::Abandoned, &[("T-shirt", 1, 11800)], false);
        check(&gone, Some(&one), ["      Welcome", ""]);
    }

    #[test]
    fn the_receipt_carries_the_klarna_transaction_id_as_its_qr_code() {
        let paid = sale(
            SaleState::Paid,
            &[("T-shirt", 1, 11800), ("Socks", 2, 4950)],
            false,
        );
        let r = receipt_for(&paid, &ReceiptConfig::default(), "Store 7", "till-1");
        assert_eq!(r.header[0], "Store 7");
        assert_eq!(r.header[1], "Receipt 42  till till-1");
        assert_eq!(r.lines[1], ReceiptLine::new("2x Socks", "99.00 SEK"));
        // The tender that paid is named with its amount (here Klarna alone).
        assert_eq!(
            r.totals,
            vec![
                ReceiptLine::new("Total", "217.00 SEK"),
                ReceiptLine::new("Klarna", "217.00 SEK")
            ]
        );
        assert_eq!(r.payment, vec!["Paid with Klarna", "Ref 6a2f"]);
        assert_eq!(
            r.qr_data.as_deref(),
            Some("krn:payment:eu1:transaction:6a2f")
        );
    }

    #[test]
    fn a_split_receipt_shows_each_tender_the_change_and_klarnas_rest() {
        let mut paid = sale(SaleState::Paid, &[("T-shirt", 2, 11800)], false);
        let tender = |kind, amount, given, change, rounding, reference: Option<&str>| {
            kassa_core::sale::TenderRow {
                id: "t".into(),
                sale_id: paid.sale.id.clone(),
                kind,
                state: TenderState::Taken,
                amount,
                given,
                change,
                rounding,
                reference: reference.map(str::to_string),
                refunded: 0,
                operator: "cashier".into(),
                created_at: "2025-05-01T10:00:00Z".into(),
            }
        };
        paid.tenders = vec![
            tender(TenderKind::Cash, 10000, 10000, 0, 0, None),
            tender(TenderKind::CardTerminal, 3000, 3000, 0, 0, Some("AUTH 77")),
        ];
        paid.payments[0].amount = 23600 - 13000;
        let r = receipt_for(&paid, &ReceiptConfig::default(), "Store 7", "till-1");
        assert_eq!(
            r.totals,
            vec![
                ReceiptLine::new("Total", "236.00 SEK"),
                ReceiptLine::new("Cash", "100.00 SEK"),
                ReceiptLine::new("Card", "30.00 SEK"),
                ReceiptLine::new("Klarna", "106.00 SEK"),
            ]
        );
        assert_eq!(
            r.payment,
            vec!["Card ref AUTH 77", "Paid with Klarna", "Ref 6a2f"]
        );
        // Cash alone, with change: no Klarna line and no Klarna code.
        let mut cash = sale(SaleState::Paid, &[("T-shirt", 1, 11800)], false);
        cash.payments.clear();
        cash.tenders = vec![tender(TenderKind::Cash, 11800, 20000, 8200, 0, None)];
        let r = receipt_for(&cash, &ReceiptConfig::default(), "Store 7", "till-1");
        assert_eq!(
            r.totals,
            vec![
                ReceiptLine::new("Total", "118.00 SEK"),
                ReceiptLine::new("Cash", "200.00 SEK"),
                ReceiptLine::new("Change", "82.00 SEK"),
            ]
        );
        assert!(r.payment.is_empty());
        assert_eq!(r.qr_data, Some(format!("kassa:sale:{}", cash.sale.id)));
    }
}
