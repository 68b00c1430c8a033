//! The outbox's rows, queue and running totals checked against the table itself: counts and
//! sums by hand in SQL after random sends, failures, retries and manager actions (the queue is
//! read from a low-water mark and the totals are kept in memory, so either could drift).

use super::*;
use crate::klarna::wire::LineItem;
use crate::store::Db;
use rand::{Rng, SeedableRng};
use rusqlite::OptionalExtension;
use std::collections::BTreeMap;

#[test]
fn backoff_grows_with_full_jitter_up_to_the_cap() {
    let limits = OutboxLimits {
        backoff_base_ms: 100,
        backoff_cap_ms: 1000,
        ..Default::default()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for attempt in 0..40 {
        let ceiling = (100u64 << attempt.min(30)).min(1000);
        for _ in 0..50 {
            let d = backoff(&limits, attempt, &mut rng).as_millis() as u64;
            assert!(d <= ceiling, "attempt {attempt}: {d} > {ceiling}");
        }
    }
    // Full jitter spreads retries over the whole range, not just near the ceiling.
    let samples: Vec<u64> = (0..200)
        .map(|_| backoff(&limits, 10, &mut rng).as_millis() as u64)
        .collect();
    assert!(samples.iter().any(|d| *d < 300) && samples.iter().any(|d| *d > 700));
}

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("k.db"), "till-1").unwrap();
    (dir, db)
}

fn refund(amount: i64) -> NewOperation {
    NewOperation {
        operation: Operation::Refund,
        transaction_id: "krn:payment:eu1:transaction:t1".into(),
        currency: "SEK".into(),
        amount,
        line_items: vec![LineItem {
            name: "x".into(),
            quantity: 1,
            unit_price: amount,
            total_amount: amount,
            reference: None,
        }],
        reference: "r".into(),
        operator: "ann".into(),
        sale_id: None,
    }
}

#[test]
fn an_operation_over_a_limit_is_refused_and_nothing_queued_is_dropped() {
    let (_d, mut db) = db();
    let limits = OutboxLimits {
        max_count: 3,
        default_max_total: 1000,
        ..Default::default()
    };
    for _ in 0..3 {
        db.enqueue(&refund(100), &limits, None).unwrap();
    }
    let err = db.enqueue(&refund(100), &limits, None).unwrap_err();
    assert!(
        err.to_string().contains("3 operations are already waiting"),
        "{err}"
    );
    let limits = OutboxLimits {
        max_count: 10,
        default_max_total: 350,
        ..Default::default()
    };
    let err = db.enqueue(&refund(100), &limits, None).unwrap_err();
    assert!(err.to_string().contains("400 SEK would wait"), "{err}");
    assert_eq!(
        db.outbox_list(Some(OutboxState::Pending), 0, 100)
            .unwrap()
            .len(),
        3
    );
    let s = db.outbox_summary(&limits).unwrap();
    assert_eq!((s.pending, s.pending_totals["SEK"]), (3, 300));
    assert!(s.alert, "300 of 350 is over 80 %");
    assert_eq!(db.verify_journal().unwrap().first_broken, None);
}

#[test]
fn operations_on_one_transaction_go_one_at_a_time_in_order() {
    let (_d, mut db) = db();
    let limits = OutboxLimits::default();
    let a = db.enqueue(&refund(1), &limits, None).unwrap();
    db.enqueue(&refund(2), &limits, None).unwrap();
    let mut other = refund(3);
    other.transaction_id = "krn:payment:eu1:transaction:t2".into();
    let c = db.enqueue(&other, &limits, None).unwrap();
    let due: Vec<i64> = db
        .outbox_due(Utc::now(), 10)
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(due, vec![a.id, c.id]);
}

#[test]
fn the_running_totals_equal_the_queue_counted_by_hand() {
    let (_d, mut db) = db();
    let limits = OutboxLimits::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut ids = vec![];
    for i in 0..60 {
        let mut op = refund(rng.random_range(1..5_000));
        op.currency = ["SEK", "EUR", "NOK"][i % 3].into();
        op.transaction_id = format!("krn:payment:eu1:transaction:{}", i % 7);
        ids.push(db.enqueue(&op, &limits, None).unwrap());
    }
    // The worker's outcomes and a manager's actions move rows between states.
    let outcomes: Vec<(OutboxRow, Outcome)> = ids
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match i % 4 {
            0 => Some((o.clone(), Outcome::Sent(serde_json::json!({})))),
            1 => Some((
                o.clone(),
                Outcome::Final {
                    code: "X".into(),
                    message: "no".into(),
                },
            )),
            _ => None,
        })
        .collect();
    db.outbox_record(&outcomes, &limits).unwrap();
    db.outbox_resolve(ids[1].id, true, "mia", "try again")
        .unwrap();
    db.outbox_resolve(ids[5].id, false, "mia", "done by phone")
        .unwrap();

    let s = db.outbox_summary(&limits).unwrap();
    let count = |state: &str| -> i64 {
        db.conn
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE state = ?1",
                [state],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(s.pending, count("pending"));
    assert_eq!(s.needs_attention, count("needs_attention"));
    let mut st = db
        .conn
        .prepare(
            "SELECT currency, SUM(amount) FROM outbox WHERE state = 'pending' GROUP BY currency",
        )
        .unwrap();
    let by_hand: BTreeMap<String, i64> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(s.pending_totals, by_hand);
    assert_eq!(s.pending, 60 - 15 - 15 + 1);
}

/// The queue is read from a low-water mark, not through indexes: whatever the worker and
/// the manager do (sends, failures, retries far below the mark), it must read exactly what a
/// scan of the whole table finds.
/// A round of sends with random outcomes: sent, refused for good, to retry, or not tried.
fn random_outcomes(due: Vec<OutboxRow>, rng: &mut impl Rng) -> Vec<(OutboxRow, Outcome)> {
    due.into_iter()
        .filter_map(|o| match rng.random_range(0..4) {
            0 => Some((o, Outcome::Sent(serde_json::json!({})))),
            1 => Some((
                o,
                Outcome::Final {
                    code: "X".into(),
                    message: "no".into(),
                },
            )),
            2 => Some((
                o,
                Outcome::Retry {
                    after: None,
                    maybe_applied: false,
                    error: "5xx".into(),
                },
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn the_queue_read_from_the_low_water_mark_equals_a_full_scan() {
    let (_d, mut db) = db();
    let limits = OutboxLimits {
        max_count: 10_000,
        ..Default::default()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let far = Utc::now() + chrono::Duration::days(400);
    let scan = |db: &Db, sql: &str| -> Vec<i64> {
        let mut st = db.conn.prepare(sql).unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let mut lows = vec![];
    for round in 0..40 {
        for _ in 0..rng.random_range(0..6) {
            let mut op = refund(rng.random_range(1..500));
            op.transaction_id = format!("krn:payment:eu1:transaction:{}", rng.random_range(0..5));
            db.enqueue(&op, &limits, None).unwrap();
        }
        let outcomes = random_outcomes(db.outbox_due(far, 10_000).unwrap(), &mut rng);
        db.outbox_record(&outcomes, &limits).unwrap();
        if round % 5 == 4 {
            // A manager sends an old failure back to the queue, below the mark.
            let stuck = scan(
                &db,
                "SELECT id FROM outbox WHERE state = 'needs_attention' ORDER BY id",
            );
            if let Some(id) = stuck.first() {
                db.outbox_resolve(*id, true, "mia", "again").unwrap();
            }
        }
        let pending = scan(
            &db,
            "SELECT id FROM outbox WHERE state = 'pending' ORDER BY id",
        );
        let listed: Vec<i64> = db
            .outbox_list(Some(OutboxState::Pending), 0, 10_000)
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(listed, pending, "round {round}");
        let heads = scan(
            &db,
            "SELECT MIN(id) FROM outbox WHERE state = 'pending' GROUP BY transaction_id ORDER BY 1",
        );
        let due: Vec<i64> = db
            .outbox_due(far, 10_000)
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(due, heads, "round {round}");
        let next: Option<String> = db
            .conn
            .query_row(
                "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(db.outbox_next_due_at().unwrap(), next, "round {round}");
        let oldest = pending
            .first()
            .map(|id| db.outbox_get(*id).unwrap().created_at);
        let s = db.outbox_summary(&limits).unwrap();
        assert_eq!(s.oldest_pending_at, oldest, "round {round}");
        let low: i64 = db
            .conn
            .query_row("SELECT id FROM outbox_low", [], |r| r.get(0))
            .unwrap();
        lows.push(low);
    }
    // The mark did move both ways, so both were checked.
    assert!(lows.windows(2).any(|w| w[1] > w[0]), "raised: {lows:?}");
    assert!(lows.windows(2).any(|w| w[1] < w[0]), "lowered: {lows:?}");
}

/// The totals every enqueue checks its limits against are kept in memory; after any mix of
/// enqueues (some refused by a limit, so rolled back), sends, failures, manager actions and
/// a write by another connection, they equal a count of the table itself.
#[test]
fn the_totals_kept_in_memory_equal_a_count_of_the_queue() {
    let (dir, mut db) = db();
    let limits = OutboxLimits {
        max_count: 10_000,
        max_total: BTreeMap::from([("EUR".to_string(), 3_000)]),
        ..Default::default()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let far = Utc::now() + chrono::Duration::days(400);
    let counted = |db: &Db| -> (i64, i64, BTreeMap<String, i64>) {
        let q = |sql: &str| -> i64 { db.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        let mut st = db
            .conn
            .prepare("SELECT currency, SUM(amount) FROM outbox WHERE state = 'pending' GROUP BY currency")
            .unwrap();
        let totals = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        (
            q("SELECT COUNT(*) FROM outbox WHERE state = 'pending'"),
            q("SELECT COUNT(*) FROM outbox WHERE state = 'needs_attention'"),
            totals,
        )
    };
    let (mut refused, mut resolved) = (0, 0);
    for round in 0..40 {
        for _ in 0..rng.random_range(0..6) {
            let mut op = refund(rng.random_range(1..900));
            op.currency = ["SEK", "EUR"][rng.random_range(0..2)].into();
            op.transaction_id = format!("krn:payment:eu1:transaction:{}", rng.random_range(0..5));
            match db.enqueue(&op, &limits, None) {
                Ok(_) => {}
                Err(OutboxError::LimitReached(_)) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        let outcomes = random_outcomes(db.outbox_due(far, 10_000).unwrap(), &mut rng);
        db.outbox_record(&outcomes, &limits).unwrap();
        if round % 3 == 2 {
            let stuck: Option<i64> = db
                .conn
                .query_row(
                    "SELECT id FROM outbox WHERE state = 'needs_attention' ORDER BY id",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .unwrap();
            if let Some(id) = stuck {
                db.outbox_resolve(id, round % 2 == 0, "mia", "").unwrap();
                resolved += 1;
            }
            // Resolving what is not waiting for a manager is refused and changes nothing.
            assert!(db.outbox_resolve(1, true, "mia", "").is_err() || round == 2);
        }
        if round == 20 {
            // Another connection (a CLI on the same file) dismisses every failure.
            rusqlite::Connection::open(dir.path().join("k.db"))
                .unwrap()
                .execute(
                    "UPDATE outbox SET state = 'resolved' WHERE state = 'needs_attention'",
                    [],
                )
                .unwrap();
        }
        let s = db.outbox_summary(&limits).unwrap();
        assert_eq!(
            (s.pending, s.needs_attention, s.pending_totals),
            counted(&db),
            "round {round}"
        );
    }
    assert!(
        refused > 0 && resolved > 0,
        "refused {refused}, resolved {resolved}"
    );
}

/// The manager's pane shows what needs them however old it is, then what waits, then the
/// newest sent, never the oldest history (it once showed the first 500 operations ever).
#[test]
fn the_manager_sees_failures_then_the_queue_then_the_newest() {
    let (_d, mut db) = db();
    let limits = OutboxLimits::default();
    let ids: Vec<i64> = (0..60)
        .map(|i| {
            let mut op = refund(100);
            op.transaction_id = format!("krn:payment:eu1:transaction:{i}");
            db.enqueue(&op, &limits, None).unwrap().id
        })
        .collect();
    let far = Utc::now() + chrono::Duration::days(400);
    let outcomes: Vec<(OutboxRow, Outcome)> = db
        .outbox_due(far, 1000)
        .unwrap()
        .into_iter()
        .filter(|o| o.id <= ids[49])
        .map(|o| {
            let outcome = if o.id <= ids[2] {
                Outcome::Final {
                    code: "X".into(),
                    message: "no".into(),
                }
            } else {
                Outcome::Sent(serde_json::json!({}))
            };
            (o, outcome)
        })
        .collect();
    db.outbox_record(&outcomes, &limits).unwrap();
    let shown = |n| -> Vec<i64> {
        db.outbox_for_manager(n)
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect()
    };
    let failed: Vec<i64> = ids[..3].iter().rev().copied().collect();
    let waiting: Vec<i64> = ids[50..].to_vec();
    let newest_sent: Vec<i64> = ids[3..50].iter().rev().copied().collect();
    assert_eq!(shown(10), [&failed[..], &waiting[..7]].concat());
    assert_eq!(
        shown(30),
        [&failed[..], &waiting[..], &newest_sent[..17]].concat()
    );
    // The lists page on from a cursor, in each state through its own index or mark.
    let list = |state, n| -> Vec<i64> {
        let mut all = vec![];
        loop {
            let page = db
                .outbox_list(state, all.last().copied().unwrap_or(0), n)
                .unwrap();
            if page.is_empty() {
                return all;
            }
            all.extend(page.iter().map(|o| o.id));
        }
    };
    assert_eq!(list(None, 7), ids);
    assert_eq!(list(Some(OutboxState::NeedsAttention), 2), ids[..3]);
    assert_eq!(list(Some(OutboxState::Sent), 10), ids[3..50]);
    assert_eq!(list(Some(OutboxState::Pending), 4), ids[50..]);
    assert_eq!(list(Some(OutboxState::Resolved), 4), Vec::<i64>::new());
}
