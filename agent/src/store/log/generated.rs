//! A seeded generator of a store's history (sales, payments, returns, refunds, manager actions)
//! for the log's tests and benchmark: the same seed always gives the same rows.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::params;
use serde_json::json;

use crate::store::journal::{Hashed, chain_hash};
use crate::store::{Db, JournalEntry, JournalKind, StoreError, WriteTx};

/// What was generated, kept so a test can compute the expected answer on its own.
#[derive(Debug, Default)]
pub(crate) struct History {
    /// Journal rows in order: row i has seq `first_seq + i`.
    pub rows: Vec<(String, JournalEntry)>,
    pub first_seq: i64,
    pub sale_state: HashMap<String, String>,
    pub attempt_state: HashMap<String, String>,
}

pub(crate) const OPERATORS: &[&str] = &["ann", "bo", "cecilia", "dragan", "eva"];
const PRODUCTS: &[&str] = &[
    "Coffee", "Bun", "Scarf", "Mittens", "Lamp", "Candle", "Mug", "Teapot",
];

fn hex(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16u32), 16).unwrap_or('0'))
        .collect()
}

/// Writes `sales` generated sales (about 8 journal rows each) starting at `start` (UTC), all in one
/// transaction. With `keep` the rows are returned for checking; without, only the states are.
pub(crate) fn load(
    db: &mut Db,
    seed: u64,
    sales: usize,
    start: chrono::DateTime<chrono::Utc>,
    mean_gap_secs: i64,
    keep: bool,
) -> Result<History, StoreError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut h = History::default();
    let tag = hex(&mut rng, 6);
    // Test data need not survive a power cut, and the indexes (trigram above all) touch pages all
    // over the file: no fsync and a large cache for the load only, then back to kassa's settings.
    db.conn.pragma_update(None, "synchronous", "OFF")?;
    db.conn.pragma_update(None, "cache_size", -512_000)?;
    let loaded = load_rows(db, rng, &tag, sales, start, mean_gap_secs, keep, &mut h);
    db.conn.pragma_update(None, "cache_size", -2_000)?;
    crate::store::configure(&db.conn)?;
    loaded?;
    Ok(h)
}

/// How many of the newest generated sales still have their payment in flight.
const IN_FLIGHT: usize = 8;

#[allow(clippy::too_many_arguments)]
fn load_rows(
    db: &mut Db,
    mut rng: StdRng,
    tag: &str,
    sales: usize,
    start: chrono::DateTime<chrono::Utc>,
    mean_gap_secs: i64,
    keep: bool,
    h: &mut History,
) -> Result<(), StoreError> {
    let mut t = start;
    db.write(|w| {
        h.first_seq = super::super::journal::tail(&w.tx)?.map_or(0, |t| t.0) + 1;
        let mut batch: Vec<(String, JournalEntry)> = Vec::new();
        for n in 0..sales {
            let at = |t: chrono::DateTime<chrono::Utc>| {
                t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            };
            let mut push = |t: &mut chrono::DateTime<chrono::Utc>,
                            rng: &mut StdRng,
                            e: JournalEntry| {
                *t += chrono::Duration::microseconds(rng.random_range(1_000..20_000_000));
                batch.push((at(*t), e));
            };
            t += chrono::Duration::seconds(rng.random_range(0..2 * mean_gap_secs.max(1)));
            let op = OPERATORS[rng.random_range(0..OPERATORS.len())];
            let currency = match rng.random_range(0..20) {
                0..14 => "SEK",
                14..18 => "EUR",
                18 => "NOK",
                _ => "JPY",
            };
            let sale_id = format!("sale-{tag}-{n:07}");
            let mut e = JournalEntry::new(JournalKind::SaleOpened, op);
            e.sale_id = Some(sale_id.clone());
            e.currency = Some(currency.into());
            push(&mut t, &mut rng, e);
            let mut total = 0i64;
            for line_no in 1..=rng.random_range(1..=4) {
                let qty = rng.random_range(1..=3);
                let price = rng.random_range(1..=50_000);
                total += qty * price;
                let mut e = JournalEntry::new(JournalKind::LineAdded, op);
                e.sale_id = Some(sale_id.clone());
                e.amount = Some(qty * price);
                e.currency = Some(currency.into());
                e.detail = json!({"line_no": line_no,
                    "name": PRODUCTS[rng.random_range(0..PRODUCTS.len())],
                    "reference": format!("SKU-{}", rng.random_range(100..999)),
                    "quantity": qty, "unit_price": price});
                push(&mut t, &mut rng, e);
            }
            let attempt_id = format!("pay-{tag}-{n:07}");
            let request_id = format!("krn:payment:eu1:request:{}", hex(&mut rng, 16));
            let correlation = format!("corr-{}", hex(&mut rng, 12));
            let attempt = |kind: JournalKind, tx: Option<&str>| {
                let mut e = JournalEntry::new(kind, op);
                e.sale_id = Some(sale_id.clone());
                e.attempt_id = Some(attempt_id.clone());
                e.amount = Some(total);
                e.currency = Some(currency.into());
                e.klarna_request_id = Some(request_id.clone());
                e.klarna_transaction_id = tx.map(str::to_string);
                e.correlation_id = Some(correlation.clone());
                e
            };
            push(&mut t, &mut rng, attempt(JournalKind::PaymentRequested, None));
            // Only the newest sales are still being paid (a till has at most a few payments in
            // flight at once): those end in one of the four live states, the rest in a final one.
            let outcome = if n + IN_FLIGHT >= sales {
                [94, 96, 98, 99][n % 4]
            } else {
                rng.random_range(0..94)
            };
            if outcome != 99 {
                push(&mut t, &mut rng, attempt(JournalKind::QrShown, None));
            }
            let (sale_state, attempt_state, tx_id) = match outcome {
                0..66 => {
                    let tx = format!("krn:payment:eu1:transaction:{}", hex(&mut rng, 16));
                    push(&mut t, &mut rng, attempt(JournalKind::PaymentCompleted, None));
                    push(&mut t, &mut rng, attempt(JournalKind::Finalized, Some(&tx)));
                    let mut e = attempt(JournalKind::ReceiptIssued, Some(&tx));
                    e.detail = json!({"receipt_no": n + 1});
                    push(&mut t, &mut rng, e);
                    ("paid", "paid", Some(tx))
                }
                66..74 => {
                    push(&mut t, &mut rng, attempt(JournalKind::PaymentDeclined, None));
                    ("open", "declined", None)
                }
                74..80 => {
                    push(&mut t, &mut rng, attempt(JournalKind::PaymentExpired, None));
                    ("abandoned", "expired", None)
                }
                80..90 => {
                    let mut e = attempt(JournalKind::PaymentCanceled, None);
                    e.detail = json!({"reason": "customer changed their mind"});
                    push(&mut t, &mut rng, e);
                    let mut e = JournalEntry::new(JournalKind::SaleAbandoned, op);
                    e.sale_id = Some(sale_id.clone());
                    push(&mut t, &mut rng, e);
                    ("abandoned", "canceled", None)
                }
                // In flight: the QR on screen, the customer looking at it, approved but not yet
                // finalized, or the request on its way to Klarna.
                94..96 => ("open", "awaiting_customer", None),
                96..98 => {
                    push(&mut t, &mut rng, attempt(JournalKind::CustomerOpened, None));
                    ("open", "customer_opened", None)
                }
                98 => {
                    push(&mut t, &mut rng, attempt(JournalKind::PaymentCompleted, None));
                    ("open", "completed", None)
                }
                99 => ("open", "requested", None),
                _ => {
                    let mut e = attempt(JournalKind::PaymentFailed, None);
                    e.detail = json!({"reason": "Klarna refused: UNSUPPORTED_CURRENCY"});
                    push(&mut t, &mut rng, e);
                    ("abandoned", "failed", None)
                }
            };
            if let Some(tx) = &tx_id {
                // Some paid sales come back: a return, and a refund through the outbox.
                if rng.random_range(0..100) < 6 {
                    let back = rng.random_range(1..=total);
                    let mut e = JournalEntry::new(JournalKind::ReturnRecorded, op);
                    e.sale_id = Some(sale_id.clone());
                    e.amount = Some(back);
                    e.currency = Some(currency.into());
                    e.detail = json!({"reason": "wrong size"});
                    push(&mut t, &mut rng, e);
                    // Integers, as the real outbox journals them; unique across loads.
                    let outbox_id = h.first_seq * 10_000_000 + n as i64;
                    let outbox = |kind: JournalKind, operation: &str| {
                        let mut e = JournalEntry::new(kind, op);
                        e.sale_id = Some(sale_id.clone());
                        e.amount = Some(back);
                        e.currency = Some(currency.into());
                        e.klarna_transaction_id = Some(tx.clone());
                        e.detail = json!({"operation": operation, "outbox_id": outbox_id,
                            "idempotency_key": format!("idem-{tag}-{outbox_id}")});
                        e
                    };
                    push(&mut t, &mut rng, outbox(JournalKind::OutboxQueued, "refund"));
                    match rng.random_range(0..10) {
                        0..7 => push(&mut t, &mut rng, outbox(JournalKind::OutboxSent, "refund")),
                        7 => {
                            push(
                                &mut t,
                                &mut rng,
                                outbox(JournalKind::OutboxNeedsAttention, "refund"),
                            );
                            push(&mut t, &mut rng, outbox(JournalKind::OutboxResolved, "refund"));
                        }
                        _ => {} // still pending
                    }
                } else if rng.random_range(0..100) < 2 {
                    let mut e = JournalEntry::new(JournalKind::OutboxQueued, op);
                    e.sale_id = Some(sale_id.clone());
                    e.amount = Some(total);
                    e.currency = Some(currency.into());
                    e.detail = json!({"operation": "capture",
                        "outbox_id": h.first_seq * 10_000_000 + n as i64,
                        "idempotency_key": format!("idem-c-{n}")});
                    push(&mut t, &mut rng, e);
                }
            }
            if rng.random_range(0..100) < 2 {
                let mut e = JournalEntry::new(JournalKind::ManagerAction, "manager");
                e.detail = json!({"action": "x_report"});
                push(&mut t, &mut rng, e);
            }
            w.tx.prepare_cached(
                "INSERT INTO sales (id, currency, state, operator, opened_at) VALUES (?1,?2,?3,?4,?5)",
            )?
            .execute(params![sale_id, currency, sale_state, op, at(t)])?;
            w.tx.prepare_cached(
                "INSERT INTO payment_attempts (id, sale_id, state, amount, currency, correlation_id,
                 authorize_key, finalize_key, authorize_body, klarna_request_id, deadline_at,
                 klarna_transaction_id, created_at, updated_at)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,'{}',?9,?10,?11,?10,?10)",
            )?
            .execute(params![
                    attempt_id,
                    sale_id,
                    attempt_state,
                    total,
                    currency,
                    correlation,
                    format!("a-{attempt_id}"),
                    format!("f-{attempt_id}"),
                    request_id,
                    at(t),
                    tx_id
                ])?;
            h.sale_state.insert(sale_id, sale_state.into());
            h.attempt_state.insert(attempt_id, attempt_state.into());
            if batch.len() >= 10_000 || n + 1 == sales {
                if keep {
                    h.rows.extend(batch.iter().cloned());
                }
                w.journal_bulk(batch.drain(..))?;
            }
        }
        // The trigram index fills in one INSERT ... SELECT, as the idle indexer fills it.
        w.index_journal(None)?;
        Ok(())
    })
}

impl WriteTx<'_> {
    /// Appends many rows with given times in this transaction, chaining as `journal` does: for
    /// loading generated history (benchmarks, tests) at a million rows a minute.
    pub(crate) fn journal_bulk(
        &mut self,
        rows: impl IntoIterator<Item = (String, JournalEntry)>,
    ) -> Result<i64, StoreError> {
        let (mut seq, mut prev) = crate::store::journal::tail(&self.tx)?
            .unwrap_or_else(|| (0, crate::store::journal::GENESIS_HASH.to_string()));
        let mut st = self.tx.prepare_cached(
            "INSERT INTO journal (seq, at, terminal_id, operator, kind, sale_id, attempt_id,
             amount, currency, klarna_request_id, klarna_transaction_id, correlation_id,
             detail, prev_hash, hash) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)",
        )?;
        for (at, e) in rows {
            seq += 1;
            let detail = e.detail.to_string();
            let hash = chain_hash(&prev, &Hashed::of(seq, &at, self.terminal_id, &e, &detail));
            st.execute(params![
                seq,
                at,
                self.terminal_id,
                e.operator,
                e.kind.as_str(),
                e.sale_id,
                e.attempt_id,
                e.amount,
                e.currency,
                e.klarna_request_id,
                e.klarna_transaction_id,
                e.correlation_id,
                detail,
                prev,
                hash
            ])?;
            prev = hash;
        }
        Ok(seq)
    }
}
