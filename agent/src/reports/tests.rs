//! Z- and X-report totals checked against sums computed straight from the generated history,
//! and the close's chain hash against the journal row it closed on.

use std::collections::{BTreeMap, HashSet};

use crate::store::log::generated::{self, History};
use crate::store::log::tests::{db_with_history, start};
use crate::store::{JournalEntry, JournalKind};

use super::*;

/// Per currency: (sales, returns, refunds sent, refunds pending, declined) as (count, amount).
type Sums = BTreeMap<String, [(i64, i64); 5]>;

fn sums(h: &History, upto_row: usize) -> Sums {
    let mut s: Sums = BTreeMap::new();
    let rows = &h.rows[..upto_row];
    let op = |e: &JournalEntry| {
        e.detail
            .get("operation")
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let id = |e: &JournalEntry| {
        e.detail
            .get("outbox_id")
            .and_then(|v| v.as_i64())
            .map(|n| n.to_string())
    };
    let done: HashSet<String> = rows
        .iter()
        .filter(|(_, e)| {
            matches!(
                e.kind,
                JournalKind::OutboxSent | JournalKind::OutboxResolved
            )
        })
        .filter_map(|(_, e)| id(e))
        .collect();
    for (_, e) in rows {
        let Some(cur) = &e.currency else { continue };
        let a = e.amount.unwrap_or(0);
        let slot = match e.kind {
            JournalKind::Finalized => 0,
            JournalKind::ReturnRecorded => 1,
            JournalKind::OutboxSent if op(e).as_deref() == Some("refund") => 2,
            JournalKind::OutboxQueued
                if op(e).as_deref() == Some("refund")
                    && id(e).is_some_and(|i| !done.contains(&i)) =>
            {
                3
            }
            JournalKind::PaymentDeclined => 4,
            _ => continue,
        };
        let t = &mut s.entry(cur.clone()).or_default()[slot];
        t.0 += 1;
        t.1 += a;
    }
    s
}

fn of(r: &DayReport) -> Sums {
    r.currencies
        .iter()
        .map(|c| {
            let t = |t: &Tally| (t.count, t.amount);
            (
                c.currency.clone(),
                [
                    t(&c.sales),
                    t(&c.returns),
                    t(&c.refunds_sent),
                    t(&c.refunds_pending),
                    t(&c.attempts.declined),
                ],
            )
        })
        .filter(|(_, v)| v.iter().any(|t| t.0 != 0))
        .collect()
}

#[test]
fn z_report_totals_equal_the_sums_of_the_day() {
    let (_dir, mut db, h) = db_with_history(21, 300);
    let x = db.x_report().expect("x-report");
    let z = db.close_day("mia").expect("day closes");
    assert_eq!(of(&z), sums(&h, h.rows.len()));
    assert_eq!(
        x.currencies, z.currencies,
        "an X-report says what a close would"
    );
    assert_eq!(z.close_no, Some(1));
    assert_eq!((z.first_seq, z.last_seq), (1, h.rows.len() as i64));
    let last = db.journal_rows(z.last_seq - 1, 1).expect("row");
    assert_eq!(z.chain_head, last[0].hash);

    // The next day covers only what came after the close (and the close's own row).
    let more = generated::load(
        &mut db,
        22,
        50,
        start() + chrono::Duration::days(30),
        600,
        true,
    )
    .expect("more history");
    let z2 = db.close_day("mia").expect("second close");
    assert_eq!(z2.close_no, Some(2));
    assert_eq!(z2.first_seq, z.last_seq + 1);
    assert_eq!(z2.rows, more.rows.len() as i64 + 1);
    // Pending refunds look at everything queued so far; the rest at the new day only.
    let mut both = History::default();
    both.rows.extend(h.rows.iter().cloned());
    both.rows.extend(more.rows.iter().cloned());
    let all = sums(&both, both.rows.len());
    let day2 = sums(&more, more.rows.len());
    for c in &z2.currencies {
        let d = day2.get(&c.currency).copied().unwrap_or_default();
        assert_eq!((c.sales.count, c.sales.amount), d[0], "{}", c.currency);
        assert_eq!((c.returns.count, c.returns.amount), d[1]);
        let p = all.get(&c.currency).copied().unwrap_or_default();
        assert_eq!((c.refunds_pending.count, c.refunds_pending.amount), p[3]);
    }
    let closes = db.day_closes().expect("closes");
    assert_eq!(closes.len(), 2);
    let audit = db.audit_journal().expect("audit");
    assert_eq!(audit.first_broken, None);
    assert_eq!(audit.day_closes_checked, 2);
}

#[test]
fn the_printed_report_fits_the_receipt_printer() {
    let (_dir, mut db, _h) = db_with_history(4, 60);
    let z = db.close_day("mia").expect("day closes");
    let text = z.to_text();
    assert!(text.contains("Z-REPORT (DAY CLOSE) #1"), "{text}");
    assert!(text.contains("SEK"));
    assert!(text.contains(&z.chain_head[..20]));
    for l in text.lines() {
        assert!(l.chars().count() <= WIDTH, "too wide: {l:?}");
    }
    // A day with no sales still closes (refunds pending from before still show).
    let empty = db.close_day("mia").expect("an empty day closes too");
    assert!(empty.currencies.iter().all(|c| c.sales.count == 0));
    assert!(empty.to_text().contains("#2"));
}

/// In Swedish and German every label fits whole beside its figures: none is cut to make room.
#[cfg(feature = "ui")]
#[test]
fn a_report_in_swedish_or_german_keeps_every_label_whole() {
    use kassa_ui::Language;
    let (_dir, mut db, _h) = db_with_history(4, 60);
    let mut z = db.close_day("mia").expect("day closes");
    for c in &mut z.currencies {
        // Counted cash, so that the counted and difference lines are there too.
        c.drawer.counted = Some(c.drawer.expected + 100);
        c.drawer.difference = Some(100);
    }
    let english = z.to_text();
    for language in [Language::Swedish, Language::German] {
        // Every label the report asks for, as it asked.
        let asked = std::cell::RefCell::new(Vec::<String>::new());
        let say = |en: &str| {
            asked.borrow_mut().push(en.to_owned());
            kassa_ui::words::tr(language, en)
        };
        let text = z.to_text_in(WIDTH, &say);
        assert_ne!(text, english, "{language}: the labels are translated");
        for l in text.lines() {
            assert!(l.chars().count() <= WIDTH, "{language}: too wide: {l:?}");
        }
        let asked = asked.into_inner();
        assert!(asked.len() > 30, "{asked:?}");
        for label in asked {
            let said = kassa_ui::words::tr(language, &label);
            assert!(
                kassa_ui::words::english_texts().any(|en| en == label),
                "{label:?} is not in the catalogue"
            );
            assert!(
                text.contains(&said),
                "{language}: {label:?} is not whole as {said:?} in\n{text}"
            );
        }
    }
}
