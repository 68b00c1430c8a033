//! The log's filters checked against a brute-force answer computed from the generated history
//! itself (not from the database), for many seeded random filters, with small pages.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::generated::{self, History, OPERATORS};
use super::{LogFilter, LogKind};
use crate::store::{Db, JournalEntry};

pub(crate) fn start() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2025-03-01T08:00:00Z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .expect("a valid time")
}

pub(crate) fn db_with_history(seed: u64, sales: usize) -> (tempfile::TempDir, Db, History) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut db = Db::open(&dir.path().join("k.db"), "till-1").expect("db opens");
    let h = generated::load(&mut db, seed, sales, start(), 600, true).expect("history loads");
    (dir, db, h)
}

/// The expected answer, written from the filter's documentation, over the generated rows.
fn expected(h: &History, f: &LogFilter) -> Vec<i64> {
    let kind_of = |e: &JournalEntry| {
        let k = e.kind.as_str();
        let op = e.detail.get("operation").and_then(|v| v.as_str());
        match k {
            _ if k.starts_with("outbox_") && op == Some("refund") => "refund",
            _ if k.starts_with("outbox_") => "outbox",
            "sale_opened" | "line_added" | "line_removed" | "line_changed" | "receipt_issued"
            | "receipt_printed" | "sale_abandoned" => "sale",
            "return_recorded" => "return",
            "manager_action" => "manager",
            _ => "payment",
        }
    };
    let state_of = |e: &JournalEntry| -> Option<String> {
        if let Some(s) = e.kind.as_str().strip_prefix("outbox_") {
            return Some(s.into());
        }
        match (&e.attempt_id, &e.sale_id) {
            (Some(a), _) => h.attempt_state.get(a).cloned(),
            (None, Some(s)) => h.sale_state.get(s).cloned(),
            _ => None,
        }
    };
    let mut out: Vec<i64> = h
        .rows
        .iter()
        .enumerate()
        .filter(|(_, (at, e))| {
            let kind = kind_of(e);
            let ids = [
                e.sale_id.as_deref(),
                e.attempt_id.as_deref(),
                e.klarna_request_id.as_deref(),
                e.klarna_transaction_id.as_deref(),
                e.correlation_id.as_deref(),
            ];
            let detail = e.detail.to_string().to_lowercase();
            f.at_from.as_ref().is_none_or(|x| at >= x)
                && f.at_until.as_ref().is_none_or(|x| at < x)
                && (f.kinds.is_empty()
                    || f.kinds
                        .iter()
                        .any(|k| k.as_str() == kind || (*k == LogKind::Outbox && kind == "refund")))
                && f.state
                    .as_ref()
                    .is_none_or(|s| state_of(e).as_ref() == Some(s))
                && f.min_amount
                    .is_none_or(|m| e.amount.is_some_and(|a| a >= m))
                && f.max_amount
                    .is_none_or(|m| e.amount.is_some_and(|a| a <= m))
                && f.currency
                    .as_ref()
                    .is_none_or(|c| e.currency.as_ref() == Some(c))
                && f.operator.as_ref().is_none_or(|o| e.operator == *o)
                && f.reference
                    .as_ref()
                    .is_none_or(|r| ids.contains(&Some(r.as_str())))
                && f.text.as_ref().is_none_or(|t| {
                    let t = t.to_lowercase();
                    e.operator.to_lowercase().contains(&t)
                        || ids.iter().flatten().any(|i| i.to_lowercase().contains(&t))
                        || detail.contains(&t)
                })
        })
        .map(|(i, _)| h.first_seq + i as i64)
        .collect();
    out.reverse();
    out
}

/// A random filter drawn from values that occur in the history (and some that do not).
fn random_filter(rng: &mut StdRng, h: &History) -> LogFilter {
    let mut f = LogFilter::default();
    let pick = |rng: &mut StdRng| &h.rows[rng.random_range(0..h.rows.len())];
    if rng.random_bool(0.3) {
        let (a, b) = (pick(rng).0.clone(), pick(rng).0.clone());
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        f.at_from = Some(a);
        if rng.random_bool(0.7) {
            f.at_until = Some(b);
        }
    }
    if rng.random_bool(0.4) {
        for _ in 0..rng.random_range(1..=2) {
            f.kinds
                .push(LogKind::ALL[rng.random_range(0..LogKind::ALL.len())]);
        }
    }
    if rng.random_bool(0.25) {
        let states = [
            "paid",
            "abandoned",
            "open",
            "declined",
            "queued",
            "sent",
            "canceled",
            "awaiting_customer",
            "customer_opened",
            "completed",
            "requested",
        ];
        f.state = Some(states[rng.random_range(0..states.len())].into());
    }
    if rng.random_bool(0.3) {
        let lo = rng.random_range(0..60_000);
        f.min_amount = Some(lo);
        if rng.random_bool(0.5) {
            f.max_amount = Some(lo + rng.random_range(0..40_000));
        }
    }
    if rng.random_bool(0.2) {
        f.currency = Some(["SEK", "EUR", "JPY", "NOK"][rng.random_range(0..4)].into());
    }
    if rng.random_bool(0.3) {
        f.operator = Some(OPERATORS[rng.random_range(0..OPERATORS.len())].into());
    }
    if rng.random_bool(0.15) {
        let e = &pick(rng).1;
        f.reference = [
            e.sale_id.clone(),
            e.attempt_id.clone(),
            e.klarna_request_id.clone(),
            e.klarna_transaction_id.clone(),
            e.correlation_id.clone(),
        ]
        .into_iter()
        .flatten()
        .nth(rng.random_range(0..3));
    }
    if rng.random_bool(0.2) {
        let texts = [
            "teapot",
            "WRONG SIZE",
            "sku-12",
            "mu",
            "a",
            "refund",
            "corr-",
            "nope-x",
        ];
        f.text = Some(texts[rng.random_range(0..texts.len())].into());
    }
    f
}

fn check(db: &Db, h: &History, f: &LogFilter, page: usize) {
    let mut got = Vec::new();
    let mut before = None;
    loop {
        let p = db.log_page(f, before, page).expect("query runs");
        assert!(p.entries.len() <= page);
        got.extend(p.entries.iter().map(|e| e.row.seq));
        match p.next_before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(got, expected(h, f), "filter {f:?}");
}

/// Takes the rows after `seq` out of the derived indexes, as if the idle indexer had not yet
/// reached them: the log must then read them from the journal itself.
fn unindex_after(db: &Db, seq: i64) {
    db.conn
        .execute_batch(&format!(
            "DELETE FROM journal_text WHERE rowid > {seq};
             DELETE FROM journal_lookup WHERE seq > {seq};
             UPDATE journal_indexed SET upto = {seq};"
        ))
        .expect("unindexed");
    assert!(db.journal_index_behind().expect("reads"));
}

#[test]
fn filters_return_exactly_the_rows_that_match() {
    let (_dir, db, h) = db_with_history(7, 400);
    assert!(h.rows.len() > 2500, "{} rows", h.rows.len());
    let mut rng = StdRng::seed_from_u64(42);
    let mut matched_some = 0;
    for round in 0..2 {
        if round == 1 {
            // The same again with the newest third not yet indexed.
            unindex_after(&db, h.rows.len() as i64 * 2 / 3);
        }
        for _ in 0..150 {
            let f = random_filter(&mut rng, &h);
            if !expected(&h, &f).is_empty() {
                matched_some += 1;
            }
            check(&db, &h, &f, rng.random_range(1..200));
        }
    }
    // The generator must produce filters that find something, or the check proves little.
    assert!(
        matched_some > 120,
        "only {matched_some} filters matched rows"
    );
    // Payments still in flight show their live state, and the state filter finds them.
    for state in [
        "requested",
        "awaiting_customer",
        "customer_opened",
        "completed",
    ] {
        let f = LogFilter {
            state: Some(state.into()),
            ..Default::default()
        };
        assert!(!expected(&h, &f).is_empty(), "no {state} payment generated");
        check(&db, &h, &f, 7);
    }
}

#[test]
fn each_kind_of_filter_finds_its_rows() {
    let (_dir, db, h) = db_with_history(11, 200);
    let refund = LogFilter {
        kinds: vec![LogKind::Refund],
        ..Default::default()
    };
    let page = db.log_page(&refund, None, 1000).expect("query runs");
    assert!(!page.entries.is_empty());
    assert!(page.entries.iter().all(|e| e.kind == LogKind::Refund));
    for f in [
        refund,
        LogFilter::default()
            .from("2025-03-02")
            .and_then(|f| f.to("2025-03-02"))
            .expect("dates"),
        LogFilter {
            text: Some("Teapot".into()),
            operator: Some("ann".into()),
            ..Default::default()
        },
        LogFilter {
            kinds: vec![LogKind::Manager, LogKind::Return],
            ..Default::default()
        },
        LogFilter {
            state: Some("needs_attention".into()),
            ..Default::default()
        },
    ] {
        check(&db, &h, &f, 50);
    }
}

#[test]
fn bad_filters_are_named() {
    let (_dir, db, _h) = db_with_history(1, 5);
    let bad_state = LogFilter {
        state: Some("lost".into()),
        ..Default::default()
    };
    let err = db.log_page(&bad_state, None, 10).expect_err("refused");
    assert!(err.to_string().starts_with("state:"), "{err}");
    assert!(LogFilter::default().from("yesterday").is_err());
    assert!(LogKind::parse_list("sale,refunds").is_err());
    assert_eq!(
        LogKind::parse_list("sale, refund").expect("valid"),
        vec![LogKind::Sale, LogKind::Refund]
    );
}
