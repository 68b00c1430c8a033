//! Database schema as forward-only migrations. A released migration is never edited: add a new one.

use rusqlite_migration::{M, Migrations};

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1)])
}

const V1: &str = r#"
CREATE TABLE sales (
    id            TEXT PRIMARY KEY,
    currency      TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'paid', 'abandoned')),
    operator      TEXT NOT NULL,
    opened_at     TEXT NOT NULL,
    closed_at     TEXT,
    receipt_no    INTEGER UNIQUE
) STRICT;

CREATE TABLE sale_lines (
    sale_id       TEXT NOT NULL REFERENCES sales(id),
    line_no       INTEGER NOT NULL,
    name          TEXT NOT NULL,
    reference     TEXT,
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    unit_price    INTEGER NOT NULL CHECK (unit_price >= 0),
    total_amount  INTEGER NOT NULL,
    PRIMARY KEY (sale_id, line_no)
) STRICT;

CREATE TABLE payment_attempts (
    id                  TEXT PRIMARY KEY,
    sale_id             TEXT NOT NULL REFERENCES sales(id),
    state               TEXT NOT NULL,
    amount              INTEGER NOT NULL,
    currency            TEXT NOT NULL,
    correlation_id      TEXT NOT NULL,
    -- Idempotency keys are stored before the request that uses them is sent.
    authorize_key       TEXT NOT NULL UNIQUE,
    finalize_key        TEXT NOT NULL UNIQUE,
    -- The exact authorize body, so a retry after a crash is byte-identical.
    authorize_body      TEXT NOT NULL,
    interop_token       TEXT,
    klarna_request_id   TEXT UNIQUE,
    payment_request_url TEXT,
    expires_at          TEXT,
    deadline_at         TEXT NOT NULL,
    klarna_transaction_id TEXT UNIQUE,
    -- For a canceled attempt: has Klarna confirmed the cancel (or another final state)?
    cancel_confirmed    INTEGER NOT NULL DEFAULT 0,
    reason              TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
) STRICT;

-- A sale has at most one payment attempt that is still in flight.
CREATE UNIQUE INDEX one_live_attempt_per_sale ON payment_attempts(sale_id)
    WHERE state IN ('requested', 'awaiting_customer', 'customer_opened', 'completed');
CREATE INDEX attempts_by_state ON payment_attempts(state);

CREATE TABLE journal (
    seq                   INTEGER PRIMARY KEY,
    at                    TEXT NOT NULL,
    terminal_id           TEXT NOT NULL,
    operator              TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    sale_id               TEXT,
    attempt_id            TEXT,
    amount                INTEGER,
    currency              TEXT,
    klarna_request_id     TEXT,
    klarna_transaction_id TEXT,
    correlation_id        TEXT,
    detail                TEXT NOT NULL,
    prev_hash             TEXT NOT NULL,
    hash                  TEXT NOT NULL
) STRICT;
CREATE INDEX journal_by_sale ON journal(sale_id);

-- The journal is append-only; changing a row needs dropping these, and `journal verify` still
-- finds the change through the hash chain.
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;

-- Webhook event ids already handled, so Klarna's redeliveries have no second effect.
CREATE TABLE webhook_events (
    event_id     TEXT PRIMARY KEY,
    received_at  TEXT NOT NULL
) STRICT;
"#;

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }
}
