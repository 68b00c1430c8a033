//! Sales and their payment attempts (and payment drafts) as rows, their lines in `lines.rs`;
//! each change writes its journal row in the same transaction, so the journal and the tables
//! can never disagree.

use rusqlite::{OptionalExtension, params};

use super::{Db, JournalEntry, JournalKind, StoreError, WriteTx};
use crate::money::Currency;

use kassa_core::sale::check_line_count;
pub use kassa_core::sale::{
    AttemptRow, LineInput, MAX_LINE_TEXT_CHARS, MAX_LINES_PER_SALE, MAX_OPERATOR_CHARS, SaleEvent,
    SaleLine, SaleRow, SaleState, SaleView,
};

/// An operator's name as the journal records it (`kassa_core::sale::validate_operator`).
pub fn validate_operator(operator: &str) -> Result<(), StoreError> {
    Ok(kassa_core::sale::validate_operator(operator)?)
}

pub use crate::payment::AttemptState;

impl WriteTx<'_> {
    pub fn sale_state(&self, sale_id: &str) -> Result<SaleState, StoreError> {
        let s: Option<String> = self
            .tx
            .prepare_cached("SELECT state FROM sales WHERE id = ?1")?
            .query_row([sale_id], |r| r.get(0))
            .optional()?;
        let s = s.ok_or_else(|| StoreError::NotFound(format!("sale {sale_id}")))?;
        Ok(SaleState::parse(&s).ok_or_else(|| super::undecodable(0, "sale state", &s))?)
    }

    /// Sets a sale's state; a sale that becomes paid is given the next receipt number, which
    /// is returned (`None` for every other state).
    pub fn set_sale_state(
        &mut self,
        sale_id: &str,
        state: SaleState,
    ) -> Result<Option<i64>, StoreError> {
        let event = match state {
            SaleState::Paid => SaleEvent::Paid,
            SaleState::Abandoned => SaleEvent::Abandoned,
            SaleState::Open => SaleEvent::Changed,
        };
        self.sale_state(sale_id)?.next(event)?;
        let receipt = if state == SaleState::Paid {
            "(SELECT COALESCE(MAX(receipt_no), 0) + 1 FROM sales)"
        } else {
            "NULL"
        };
        let receipt_no: Option<i64> = self
            .tx
            .query_row(
                &format!(
                    "UPDATE sales SET state = ?2, closed_at = ?3, receipt_no = {receipt}
                     WHERE id = ?1 RETURNING receipt_no"
                ),
                params![sale_id, state.as_str(), crate::now_rfc3339()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("sale {sale_id}")))?;
        if state != SaleState::Open {
            self.put_draft(sale_id, None)?;
        }
        Ok(receipt_no)
    }

    pub fn insert_attempt(&mut self, a: &AttemptRow) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("INSERT INTO payment_attempts (id, sale_id, state, amount, currency, correlation_id,
                 authorize_key, finalize_key, authorize_body, interop_token, deadline_at,
                 created_at, updated_at)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?12)")?.execute(params![
                    a.id,
                    a.sale_id,
                    a.state.as_str(),
                    a.amount,
                    a.currency,
                    a.correlation_id,
                    a.authorize_key,
                    a.finalize_key,
                    a.authorize_body,
                    a.interop_token,
                    a.deadline_at,
                    a.created_at
                ],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::Conflict("the sale already has a payment in progress".into())
                }
                e => e.into(),
            })?;
        Ok(())
    }

    /// Writes the attempt's mutable fields back.
    pub fn update_attempt(&mut self, a: &AttemptRow) -> Result<(), StoreError> {
        self.tx.prepare_cached("UPDATE payment_attempts SET state = ?2, klarna_request_id = ?3, payment_request_url = ?4,
             expires_at = ?5, klarna_transaction_id = ?6, cancel_confirmed = ?7, reason = ?8,
             updated_at = ?9 WHERE id = ?1")?.execute(params![
                a.id,
                a.state.as_str(),
                a.klarna_request_id,
                a.payment_request_url,
                a.expires_at,
                a.klarna_transaction_id,
                a.cancel_confirmed,
                a.reason,
                crate::now_rfc3339()
            ],
        )?;
        Ok(())
    }

    pub fn attempt(&self, id: &str) -> Result<AttemptRow, StoreError> {
        query_attempt(&self.tx, id)
    }

    /// The sale as this transaction sees it.
    pub fn sale(&self, id: &str) -> Result<SaleView, StoreError> {
        query_sale(&self.tx, id)
    }

    /// Stores the payment prepared for the sale as it now stands, or (None) removes it. A draft
    /// that may have been sent (`maybe_sent`) and whose attempt was not just started from it is
    /// retired first (see `retire_draft`); returns whether one was, so the sale gained an attempt.
    pub fn put_draft(
        &mut self,
        sale_id: &str,
        draft: Option<&PaymentDraft>,
    ) -> Result<bool, StoreError> {
        let retired = self.retire_draft(sale_id)?;
        match draft {
            Some(d) => self
                .tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO payment_drafts
                     (sale_id, attempt_id, authorize_key, finalize_key, authorize_body)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    sale_id,
                    d.attempt_id,
                    d.authorize_key,
                    d.finalize_key,
                    d.authorize_body
                ])?,
            None => self
                .tx
                .prepare_cached("DELETE FROM payment_drafts WHERE sale_id = ?1")?
                .execute([sale_id])?,
        };
        Ok(retired)
    }
}

impl WriteTx<'_> {
    /// A draft that may have reached Klarna is never just dropped. It "may have" when it survived
    /// a restart (the relaxed commit that recorded its attempt may be the one a power cut lost)
    /// or when that commit failed after the request went out. Replaced by another draft, or
    /// removed without being started, it becomes an attempt owed a cancel: its follower replays
    /// the draft's request under the same key and body to learn what Klarna made of it (a
    /// request that was never sent is then made and cancelled at once), and cancels it. If the
    /// customer approved it meanwhile, that is journaled and it is never finalized. So no request
    /// the till made is ever left for a customer to complete.
    fn retire_draft(&mut self, sale_id: &str) -> Result<bool, StoreError> {
        let old: Option<PaymentDraft> = self
            .tx
            .prepare_cached(
                "SELECT attempt_id, authorize_key, finalize_key, authorize_body
                 FROM payment_drafts d WHERE sale_id = ?1 AND maybe_sent = 1
                   AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.id = d.attempt_id)",
            )?
            .query_row([sale_id], draft_from)
            .optional()?;
        let Some(d) = old else {
            return Ok(false);
        };
        // The amount and currency are the ones in the body Klarna may have received; they only
        // label the attempt, so a body that does not parse still gets its cancel (the replay
        // sends its bytes as they are) rather than leaving the sale impossible to change.
        let body: serde_json::Value = serde_json::from_str(&d.authorize_body).unwrap_or_default();
        let now = crate::now_rfc3339();
        let a = AttemptRow {
            id: d.attempt_id,
            sale_id: sale_id.to_string(),
            state: AttemptState::Canceled,
            amount: body["request_payment_transaction"]["amount"]
                .as_i64()
                .unwrap_or(0),
            currency: body["currency"].as_str().unwrap_or_default().to_string(),
            correlation_id: uuid::Uuid::new_v4().simple().to_string(),
            authorize_key: d.authorize_key,
            finalize_key: d.finalize_key,
            authorize_body: d.authorize_body,
            interop_token: None,
            klarna_request_id: None,
            payment_request_url: None,
            expires_at: None,
            deadline_at: now.clone(),
            klarna_transaction_id: None,
            cancel_confirmed: false,
            reason: Some(
                "may have reached Klarna before the till stopped or failed to record it; canceled there"
                    .into(),
            ),
            created_at: now.clone(),
            updated_at: now,
        };
        self.insert_attempt(&a)?;
        self.update_attempt(&a)?;
        let mut e = JournalEntry::new(JournalKind::PaymentCanceled, "kassa");
        e.sale_id = Some(a.sale_id.clone());
        e.attempt_id = Some(a.id.clone());
        e.amount = Some(a.amount);
        e.currency = Some(a.currency.clone());
        e.correlation_id = Some(a.correlation_id.clone());
        e.detail = serde_json::json!({"reason": a.reason, "idempotency_key": a.authorize_key});
        self.journal(e)?;
        Ok(true)
    }
}

/// The payment a "Pay" press would start for an open sale as it stands: ids, idempotency keys
/// and the exact authorize body, committed durably with the write that last changed the sale.
/// Starting the payment can then send the request without first waiting for the disk: its key
/// is already on it (see `Terminal::start_payment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDraft {
    pub attempt_id: String,
    pub authorize_key: String,
    pub finalize_key: String,
    pub authorize_body: String,
}

/// A draft from `SELECT attempt_id, authorize_key, finalize_key, authorize_body`.
fn draft_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<PaymentDraft> {
    Ok(PaymentDraft {
        attempt_id: r.get(0)?,
        authorize_key: r.get(1)?,
        finalize_key: r.get(2)?,
        authorize_body: r.get(3)?,
    })
}

impl PaymentDraft {
    /// Whether `a` would send exactly this draft's request under its keys.
    pub fn matches(&self, a: &AttemptRow) -> bool {
        self.attempt_id == a.id
            && self.authorize_key == a.authorize_key
            && self.finalize_key == a.finalize_key
            && self.authorize_body == a.authorize_body
    }
}

const ATTEMPT_COLUMNS: &str = "id, sale_id, state, amount, currency, correlation_id, authorize_key,
    finalize_key, authorize_body, interop_token, klarna_request_id, payment_request_url, expires_at,
    deadline_at, klarna_transaction_id, cancel_confirmed, reason, created_at, updated_at";

fn attempt_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttemptRow> {
    let state: String = r.get(2)?;
    Ok(AttemptRow {
        id: r.get(0)?,
        sale_id: r.get(1)?,
        state: AttemptState::parse(&state)
            .ok_or_else(|| super::undecodable(2, "payment state", &state))?,
        amount: r.get(3)?,
        currency: r.get(4)?,
        correlation_id: r.get(5)?,
        authorize_key: r.get(6)?,
        finalize_key: r.get(7)?,
        authorize_body: r.get(8)?,
        interop_token: r.get(9)?,
        klarna_request_id: r.get(10)?,
        payment_request_url: r.get(11)?,
        expires_at: r.get(12)?,
        deadline_at: r.get(13)?,
        klarna_transaction_id: r.get(14)?,
        cancel_confirmed: r.get(15)?,
        reason: r.get(16)?,
        created_at: r.get(17)?,
        updated_at: r.get(18)?,
    })
}

fn query_attempt(conn: &rusqlite::Connection, id: &str) -> Result<AttemptRow, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM payment_attempts WHERE id = ?1"
    ))?
    .query_row([id], attempt_from)
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("payment {id}")))
}

fn query_sale(conn: &rusqlite::Connection, id: &str) -> Result<SaleView, StoreError> {
    let sale = conn
        .prepare_cached("SELECT id, currency, state, operator, opened_at, closed_at, receipt_no, revision FROM sales WHERE id = ?1")?.query_row([id],
            |r| {
                let cur: String = r.get(1)?;
                let state: String = r.get(2)?;
                Ok((r.get(0)?, cur, state, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get::<_, i64>(7)?))
            },
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("sale {id}")))?;
    let revision = sale.7;
    let currency: Currency = sale
        .1
        .parse()
        .map_err(|e: crate::money::MoneyError| StoreError::Invalid(e.to_string()))?;
    let sale = SaleRow {
        id: sale.0,
        currency,
        state: SaleState::parse(&sale.2)
            .ok_or_else(|| super::undecodable(2, "sale state", &sale.2))?,
        operator: sale.3,
        opened_at: sale.4,
        closed_at: sale.5,
        receipt_no: sale.6,
    };
    let mut st = conn.prepare_cached(
        "SELECT line_no, name, reference, quantity, unit_price, total_amount,
                COALESCE(list_price, unit_price)
         FROM sale_lines WHERE sale_id = ?1 AND removed = 0 ORDER BY line_no",
    )?;
    let lines: Vec<SaleLine> = st
        .query_map([id], |r| {
            Ok(SaleLine {
                line_no: r.get(0)?,
                name: r.get(1)?,
                reference: r.get(2)?,
                quantity: r.get(3)?,
                unit_price: r.get(4)?,
                total_amount: r.get(5)?,
                list_price: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let total = lines.iter().map(|l| l.total_amount).sum();
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM payment_attempts WHERE sale_id = ?1 ORDER BY created_at, rowid"
    ))?;
    let payments = st
        .query_map([id], attempt_from)?
        .collect::<Result<_, _>>()?;
    let tenders = super::tenders::query_tenders(conn, id)?;
    Ok(SaleView {
        sale,
        lines,
        total,
        payments,
        due: kassa_core::sale::due_after(total, &tenders),
        tenders,
        revision,
    })
}

impl Db {
    /// Opens a sale with its first lines; journals the opening and each line. `draft` prepares
    /// the sale's payment in the same commit (None: nothing to prepare).
    pub fn open_sale(
        &mut self,
        id: &str,
        currency: Currency,
        operator: &str,
        lines: &[LineInput],
        draft: impl FnOnce(&SaleView) -> Option<PaymentDraft>,
    ) -> Result<SaleView, StoreError> {
        validate_operator(operator)?;
        check_line_count(0, lines.len())?;
        self.write(|w| {
            w.tx.prepare_cached("INSERT INTO sales (id, currency, state, operator, opened_at) VALUES (?1, ?2, 'open', ?3, ?4)")?.execute(params![id, currency.code(), operator, crate::now_rfc3339()],
            )?;
            let mut e = JournalEntry::new(JournalKind::SaleOpened, operator);
            e.sale_id = Some(id.into());
            e.currency = Some(currency.code().into());
            w.journal(e)?;
            for l in lines {
                w.insert_line(id, currency, operator, l)?;
            }
            let view = w.sale(id)?;
            w.put_draft(id, draft(&view).as_ref())?;
            Ok(view)
        })
    }

    pub fn sale(&self, id: &str) -> Result<SaleView, StoreError> {
        query_sale(&self.conn, id)
    }

    /// The payment prepared for the sale as it stands, if any (see `PaymentDraft`).
    pub fn payment_draft(&self, sale_id: &str) -> Result<Option<PaymentDraft>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT attempt_id, authorize_key, finalize_key, authorize_body
                 FROM payment_drafts WHERE sale_id = ?1",
            )?
            .query_row([sale_id], draft_from)
            .optional()?)
    }

    pub fn attempt(&self, id: &str) -> Result<AttemptRow, StoreError> {
        query_attempt(&self.conn, id)
    }

    /// An agent run begins: if the last one did not end in order (`end_run`), every draft it
    /// left may have been sent, and is marked so (see `WriteTx::retire_draft`). Returns how
    /// many were marked.
    pub fn begin_run(&mut self) -> Result<usize, StoreError> {
        self.write(|w| {
            let clean: bool =
                w.tx.query_row("SELECT ended_clean FROM agent_run", [], |r| r.get(0))?;
            let marked = if clean {
                0
            } else {
                w.tx.execute("UPDATE payment_drafts SET maybe_sent = 1", [])?
            };
            w.tx.execute("UPDATE agent_run SET ended_clean = 0", [])?;
            Ok(marked)
        })
    }

    /// The agent stops in order: this durable commit also makes every earlier relaxed one
    /// durable, so no draft left now was sent.
    pub fn end_run(&mut self) -> Result<(), StoreError> {
        self.write(|w| {
            w.tx.execute("UPDATE agent_run SET ended_clean = 1", [])?;
            Ok(())
        })
    }

    /// Marks the sale's draft as maybe sent (see `WriteTx::retire_draft`): its attempt's commit
    /// failed after its request went out.
    pub fn mark_draft_maybe_sent(&mut self, sale_id: &str) -> Result<(), StoreError> {
        self.write(|w| {
            w.tx.prepare_cached("UPDATE payment_drafts SET maybe_sent = 1 WHERE sale_id = ?1")?
                .execute([sale_id])?;
            Ok(())
        })
    }

    /// Attempts that still need the till's attention after a restart: in flight, or canceled
    /// locally without Klarna having confirmed it.
    /// The attempt that holds Klarna's transaction `transaction_id`, if any.
    pub fn attempt_by_transaction(
        &self,
        transaction_id: &str,
    ) -> Result<Option<AttemptRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {ATTEMPT_COLUMNS} FROM payment_attempts WHERE klarna_transaction_id = ?1"
            ))?
            .query_row([transaction_id], attempt_from)
            .optional()?)
    }

    /// The id of the attempt that made Klarna's payment request `request_id`, if any.
    pub fn attempt_id_by_request(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT id FROM payment_attempts WHERE klarna_request_id = ?1")?
            .query_row([request_id], |r| r.get(0))
            .optional()?)
    }

    pub fn unsettled_attempts(&self) -> Result<Vec<AttemptRow>, StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM payment_attempts
             WHERE state IN ('requested', 'awaiting_customer', 'customer_opened', 'completed')
                OR (state IN ('canceled', 'expired', 'failed') AND cancel_confirmed = 0)
             ORDER BY created_at"
        ))?;
        let rows = st.query_map([], attempt_from)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// What is still open at a day close: each open sale with lines (oldest first), payments
    /// in flight, and operations waiting for Klarna or a manager.
    pub fn still_open(&self) -> Result<StillOpen, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT s.id, s.currency, s.opened_at, COUNT(*), SUM(l.total_amount)
             FROM sales s JOIN sale_lines l ON l.sale_id = s.id AND l.removed = 0
             WHERE s.state = 'open'
             GROUP BY s.id ORDER BY s.opened_at, s.id LIMIT 20",
        )?;
        let sales = st
            .query_map([], |r| {
                Ok(OpenSale {
                    id: r.get(0)?,
                    currency: r.get(1)?,
                    opened_at: r.get(2)?,
                    lines: r.get(3)?,
                    total: r.get(4)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let (payments, operations) = self.conn.query_row(
            "SELECT
                (SELECT COUNT(*) FROM payment_attempts
                 WHERE state IN ('requested', 'awaiting_customer', 'customer_opened', 'completed')),
                (SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'needs_attention'))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(StillOpen {
            sales,
            payments,
            operations,
        })
    }

    /// Whether a sale is open with lines or a payment is in flight: what an update must not
    /// switch versions under (`service::BusyMarker`).
    pub(crate) fn sale_or_payment_open(&self) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM sales s WHERE s.state = 'open'
                AND EXISTS(SELECT 1 FROM sale_lines l WHERE l.sale_id = s.id AND l.removed = 0))
             OR EXISTS(SELECT 1 FROM payment_attempts
                WHERE state IN ('requested', 'awaiting_customer', 'customer_opened', 'completed'))",
            [],
            |r| r.get::<_, bool>(0),
        )?)
    }

    /// Records a webhook event id; false if it was seen before.
    pub fn remember_webhook_event(&mut self, event_id: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO webhook_events (event_id, received_at) VALUES (?1, ?2)",
            )?
            .execute(params![event_id, crate::now_rfc3339()])?;
        Ok(n == 1)
    }
}

/// A sale left open, as the day close lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSale {
    pub id: String,
    pub currency: String,
    pub opened_at: String,
    pub lines: i64,
    pub total: i64,
}

/// What is still open when a manager closes the day.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StillOpen {
    /// At most 20, oldest first.
    pub sales: Vec<OpenSale>,
    pub payments: i64,
    pub operations: i64,
}
