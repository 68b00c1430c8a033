//! The `returns` table and the refunds of a transaction still waiting in the outbox: the
//! statements behind `returns.rs` (which reads the purchase from Klarna and checks a return
//! against it), with the types those rows are read into, kept with the store's other SQL.

use std::collections::{BTreeSet, HashMap, HashSet};

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Db, StoreError, WriteTx};

/// Refunds of one transaction that Klarna may still apply (see `Db::waiting_refunds`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waiting {
    /// Quantities per line key.
    pub quantities: HashMap<String, i64>,
    pub amount: i64,
    /// The outbox rows counted.
    pub ids: BTreeSet<i64>,
    /// The references left out because Klarna already lists them.
    pub applied: HashSet<String>,
}

/// A recorded return and where its refund stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReturnRecord {
    pub id: String,
    pub transaction_id: String,
    pub currency: String,
    pub amount: i64,
    #[schema(value_type = Object)]
    pub lines: serde_json::Value,
    pub reason: String,
    pub restock: bool,
    pub operator: String,
    pub approved_by: Option<String>,
    pub outbox_id: i64,
    /// pending (refund waiting for Klarna), sent, needs_attention or resolved.
    pub refund_state: String,
    pub created_at: String,
    /// Text for the customer's slip; says "REFUND PENDING" while Klarna has not confirmed it.
    pub receipt: String,
}

/// A return as `WriteTx::insert_return` records it, next to the outbox row of its refund.
pub(crate) struct NewReturn<'a> {
    pub id: &'a str,
    pub transaction_id: &'a str,
    pub currency: &'a str,
    pub amount: i64,
    /// The returned lines as JSON text.
    pub lines: &'a str,
    pub reason: &'a str,
    pub restock: bool,
    pub proof_of_purchase: bool,
    pub operator: &'a str,
    pub approved_by: Option<&'a str>,
    pub outbox_id: i64,
}

/// What identifies a purchase's line across Klarna's lists and the outbox's refund bodies: its
/// reference, else its name.
pub(crate) fn line_key(name: &str, reference: Option<&str>) -> String {
    match reference {
        Some(r) if !r.is_empty() => format!("ref:{r}"),
        _ => format!("name:{name}"),
    }
}

impl Db {
    /// Every refund of this transaction that Klarna may still apply: waiting in the outbox, or
    /// held for a manager who may retry it, unless Klarna already lists its reference (`applied`:
    /// then its amount is in Klarna's refunded amount). Read from the outbox itself, so a refund
    /// queued by any route (a return, the API's `/v1/transactions/{id}/refunds`, the CLI)
    /// counts; a refund without line items counts against the amount only.
    pub(crate) fn waiting_refunds(
        &self,
        transaction_id: &str,
        applied: &HashSet<String>,
    ) -> Result<Waiting, StoreError> {
        // No index by transaction (it would be a page more on every enqueue): the waiting queue
        // is read from its low-water mark, the held ones through their partial index. A return
        // is rare next to an enqueue, and the queue is bounded by the outbox's limits.
        let mut st = self.conn.prepare_cached(
            "SELECT id, reference, body, amount FROM outbox
             WHERE id >= (SELECT id FROM outbox_low) AND state = 'pending'
               AND transaction_id = ?1 AND operation = 'refund'
             UNION ALL
             SELECT id, reference, body, amount FROM outbox INDEXED BY outbox_attention
             WHERE state = 'needs_attention' AND transaction_id = ?1 AND operation = 'refund'",
        )?;
        let rows: Vec<(i64, String, String, i64)> = st
            .query_map([transaction_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut w = Waiting {
            applied: applied.clone(),
            ..Waiting::default()
        };
        for (id, reference, body, a) in rows {
            if applied.contains(&reference) {
                continue;
            }
            w.ids.insert(id);
            w.amount = w.amount.saturating_add(a);
            let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            for l in body["line_items"].as_array().into_iter().flatten() {
                let key = line_key(l["name"].as_str().unwrap_or(""), l["reference"].as_str());
                *w.quantities.entry(key).or_default() += l["quantity"].as_i64().unwrap_or(0);
            }
        }
        Ok(w)
    }

    /// How many returns were recorded against Klarna transaction `transaction_id` by its id
    /// (the return screen's way), as opposed to by a till sale's receipt.
    pub fn returns_by_transaction(&self, transaction_id: &str) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM returns WHERE transaction_id = ?1",
            [transaction_id],
            |r| r.get(0),
        )?)
    }

    pub fn return_record(&self, id: &str) -> Result<ReturnRecord, StoreError> {
        let r = self
            .conn
            .prepare_cached("SELECT r.id, r.transaction_id, r.currency, r.amount, r.lines, r.reason, r.restock, r.operator,
                        r.approved_by, r.outbox_id, o.state, r.created_at
                 FROM returns r JOIN outbox o ON o.id = r.outbox_id WHERE r.id = ?1")?.query_row([id],
                |r| {
                    let lines: String = r.get(4)?;
                    Ok(ReturnRecord {
                        id: r.get(0)?,
                        transaction_id: r.get(1)?,
                        currency: r.get(2)?,
                        amount: r.get(3)?,
                        lines: serde_json::from_str(&lines).unwrap_or_default(),
                        reason: r.get(5)?,
                        restock: r.get(6)?,
                        operator: r.get(7)?,
                        approved_by: r.get(8)?,
                        outbox_id: r.get(9)?,
                        refund_state: r.get(10)?,
                        created_at: r.get(11)?,
                        receipt: String::new(),
                    })
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("return {id}")))?;
        let receipt = return_slip(&r);
        Ok(ReturnRecord { receipt, ..r })
    }
}

impl WriteTx<'_> {
    /// Records a return in the transaction that queues its refund (`Db::enqueue_with`).
    pub(crate) fn insert_return(&mut self, r: &NewReturn<'_>) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO returns (id, transaction_id, currency, amount, lines, reason, restock,
                 proof_of_purchase, operator, approved_by, outbox_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                r.id,
                r.transaction_id,
                r.currency,
                r.amount,
                r.lines,
                r.reason,
                r.restock,
                r.proof_of_purchase,
                r.operator,
                r.approved_by,
                r.outbox_id,
                crate::now_rfc3339()
            ])?;
        Ok(())
    }
}

/// The customer's slip for a return (plain text, 40 columns, for the receipt printer). Here, not
/// in `returns.rs`, because every read of a record (`Db::return_record`) comes with its slip.
fn return_slip(r: &ReturnRecord) -> String {
    let money = |minor: i64, currency: &str| match currency.parse::<crate::money::Currency>() {
        Ok(c) => crate::money::Money::new(minor, c).to_string(),
        Err(_) => format!("{minor} {currency}"),
    };
    return_slip_in(r, &|en| en.to_owned(), &money)
}

/// `text` broken between words into lines of at most `width` characters (a longer word keeps its
/// own line), each ending in a newline: the slip's sentences on a 40-column printer.
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// As the record's slip, with every label put through `say` (English in, the till's language
/// out) and amounts through `money` (minor units and currency in, the till's format out); names
/// and ids stay as they are.
pub fn return_slip_in(
    r: &ReturnRecord,
    say: &dyn Fn(&str) -> String,
    money: &dyn Fn(i64, &str) -> String,
) -> String {
    let money = |minor: i64| money(minor, &r.currency);
    let mut s = format!("{}\n", say("RETURN"));
    for l in r.lines.as_array().into_iter().flatten() {
        let q = l["quantity"].as_i64().unwrap_or(0);
        let total = q.saturating_mul(l["unit_price"].as_i64().unwrap_or(0));
        s.push_str(&format!(
            "{:>3} x {:<20} {:>12}\n",
            q,
            l["name"].as_str().unwrap_or("?"),
            money(-total)
        ));
    }
    s.push_str(&format!(
        "{:<26} {:>12}\n",
        say("REFUND TO KLARNA"),
        money(-r.amount)
    ));
    s.push_str(&wrap(
        &say(match r.refund_state.as_str() {
            "sent" => "Refund sent to Klarna.",
            "pending" => {
                "REFUND PENDING: it reaches your Klarna account as soon as the store is online."
            }
            _ => "Refund needs a manager's attention.",
        }),
        40,
    ));
    // Each id on a line of its own: a Klarna id is longer than the paper is wide.
    s.push_str(&format!(
        "{}:\n{}\n{}:\n{}\n",
        say("Return"),
        r.id,
        say("Order"),
        r.transaction_id
    ));
    s
}

#[cfg(all(test, feature = "ui"))]
mod tests {
    use super::*;
    use kassa_ui::Language;

    fn record(state: &str) -> ReturnRecord {
        ReturnRecord {
            id: "ret-1".into(),
            transaction_id: "krn:payment:eu1:transaction:1".into(),
            currency: "SEK".into(),
            amount: 19_900,
            lines: serde_json::json!([{"name": "Scarf", "quantity": 1, "unit_price": 19_900}]),
            reason: "Wrong colour".into(),
            restock: true,
            operator: "ann".into(),
            approved_by: None,
            outbox_id: 1,
            refund_state: state.into(),
            created_at: "2026-12-08T10:00:00Z".into(),
            receipt: String::new(),
        }
    }

    #[test]
    fn a_return_slip_speaks_the_tills_language_and_fits_the_printer() {
        for state in ["pending", "sent", "needs_attention"] {
            let english = return_slip(&record(state));
            for language in [Language::Swedish, Language::German] {
                let slip = return_slip_in(
                    &record(state),
                    &|en| kassa_ui::words::tr(language, en),
                    &|minor, _| {
                        kassa_ui::amount::format_amount(minor, &"SEK".parse().unwrap(), language)
                    },
                );
                assert_ne!(slip, english, "{language} {state}");
                for en in [
                    "RETURN",
                    "REFUND TO KLARNA",
                    "Order",
                    "PENDING",
                    "sent to Klarna",
                ] {
                    assert!(!slip.contains(en), "{language} {state}: {en:?} in\n{slip}");
                }
                assert!(slip.contains("Scarf") && slip.contains("ret-1"), "{slip}");
                for line in slip.lines().filter(|l| !l.starts_with("krn:")) {
                    assert!(line.chars().count() <= 40, "{language}: too wide: {line:?}");
                }
            }
        }
        assert!(return_slip(&record("pending")).contains("REFUND PENDING"));
    }
}
