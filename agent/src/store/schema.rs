//! Database schema as forward-only migrations. A released migration is never edited: add a new one.

use rusqlite_migration::{M, Migrations};

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2_MANAGER_LOG),
        M::up(V3_OUTBOX),
        M::up(V4_RETURNS),
        M::up(V5_WRITE_PATH),
        M::up(V6_PAYMENT_DRAFTS).foreign_key_check(),
        M::up(V7_JOURNAL_LOOKUP),
        M::up(V8_OUTBOX_QUEUE).foreign_key_check(),
        M::up(V9_OUTBOX_TOTALS_IN_MEMORY),
        M::up(V10_CANCELS_WAITING),
        M::up(V11_DRAFTS_MAYBE_SENT),
        M::up(V12_IN_DOUBT),
        M::up(V13_LINE_EDITS),
        M::up(V14_TENDERS).foreign_key_check(),
        M::up(V15_STAFF),
    ])
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

/// The manager's log, day closes, the manager PIN and journal archives (issue 7).
const V2_MANAGER_LOG: &str = r#"
-- The log's filters; the index on seq itself serves pages read newest-first.
CREATE INDEX journal_by_kind ON journal(kind, seq);
CREATE INDEX journal_by_operator ON journal(operator, seq);
CREATE INDEX journal_by_at ON journal(at);
CREATE INDEX journal_by_amount ON journal(amount) WHERE amount IS NOT NULL;
CREATE INDEX journal_by_attempt ON journal(attempt_id) WHERE attempt_id IS NOT NULL;
CREATE INDEX journal_by_klarna_request ON journal(klarna_request_id)
    WHERE klarna_request_id IS NOT NULL;
CREATE INDEX journal_by_klarna_transaction ON journal(klarna_transaction_id)
    WHERE klarna_transaction_id IS NOT NULL;
CREATE INDEX journal_by_correlation ON journal(correlation_id) WHERE correlation_id IS NOT NULL;
-- Every log row shows its attempt's or sale's current state: looked up from these alone, without
-- reading the attempt's row (with its stored request body) or the sale's. The log names them
-- (INDEXED BY): without statistics SQLite would take the primary key's index and read the row.
CREATE INDEX attempt_states ON payment_attempts(id, state);
CREATE INDEX sale_states ON sales(id, state);
-- What a report needs of every outbox row (which operation, which outbox entry, how much): the
-- pending refunds at a close are read from this alone instead of a year of scattered journal rows.
-- The expressions must be the report's exactly: SQLite matches them as written, not by meaning.
CREATE INDEX journal_outbox ON journal(kind, seq,
    (CASE WHEN json_valid(detail) THEN json_extract(detail, '$.outbox_id') END),
    (CASE WHEN json_valid(detail) THEN json_extract(detail, '$.operation') END),
    currency, amount) WHERE kind LIKE 'outbox%';

-- Free-text search: a substring of any one of these fields (trigram index). Contentless, so the
-- text is stored once (in the journal); rows leave it only when they are archived.
CREATE VIRTUAL TABLE journal_text USING fts5(
    operator, sale_id, attempt_id, klarna_request_id, klarna_transaction_id, correlation_id, detail,
    content = '', contentless_delete = 1, tokenize = 'trigram'
);
INSERT INTO journal_text (rowid, operator, sale_id, attempt_id, klarna_request_id,
        klarna_transaction_id, correlation_id, detail)
    SELECT seq, operator, sale_id, attempt_id, klarna_request_id, klarna_transaction_id,
        correlation_id, detail FROM journal;
CREATE TRIGGER journal_text_insert AFTER INSERT ON journal BEGIN
    INSERT INTO journal_text (rowid, operator, sale_id, attempt_id, klarna_request_id,
        klarna_transaction_id, correlation_id, detail)
    VALUES (NEW.seq, NEW.operator, NEW.sale_id, NEW.attempt_id, NEW.klarna_request_id,
        NEW.klarna_transaction_id, NEW.correlation_id, NEW.detail);
END;

-- Each Z-report (day close): the period it covers and the chain hash of its last row.
CREATE TABLE day_closes (
    close_no    INTEGER PRIMARY KEY,
    closed_at   TEXT NOT NULL,
    operator    TEXT NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    chain_head  TEXT NOT NULL,
    report      TEXT NOT NULL
) STRICT;
CREATE TRIGGER day_closes_no_update BEFORE UPDATE ON day_closes
    BEGIN SELECT RAISE(ABORT, 'a day close is final'); END;
CREATE TRIGGER day_closes_no_delete BEFORE DELETE ON day_closes
    BEGIN SELECT RAISE(ABORT, 'a day close is final'); END;

-- The manager PIN, only as an Argon2id PHC string.
CREATE TABLE manager_pin (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    phc     TEXT NOT NULL,
    set_at  TEXT NOT NULL
) STRICT;

-- Journal rows moved to compressed files: each file chains from prev_hash and ends on last_hash.
CREATE TABLE journal_archives (
    first_seq    INTEGER PRIMARY KEY,
    last_seq     INTEGER NOT NULL UNIQUE,
    prev_hash    TEXT NOT NULL,
    last_hash    TEXT NOT NULL,
    rows         INTEGER NOT NULL,
    file         TEXT NOT NULL,
    file_sha256  TEXT NOT NULL,
    archived_at  TEXT NOT NULL
) STRICT;

-- Archived rows (and only those) may leave the live table.
DROP TRIGGER journal_no_delete;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
    WHEN OLD.seq > COALESCE((SELECT MAX(last_seq) FROM journal_archives), 0)
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
"#;

/// The durable outbox for refunds, captures and voids (issue 3); moved here unchanged from
/// outbox.rs, so the store owns every statement that shapes the database.
const V3_OUTBOX: &str = r#"
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    operation        TEXT NOT NULL CHECK (operation IN ('refund', 'capture', 'void')),
    transaction_id   TEXT NOT NULL,
    amount           INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    -- The exact request body: every retry sends the same bytes under the same key.
    body             TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL UNIQUE,
    reference        TEXT NOT NULL,
    correlation_id   TEXT NOT NULL,
    operator         TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'needs_attention', 'resolved')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- Whether an earlier attempt may have reached Klarna (answer lost): read before resending late.
    maybe_applied    INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    error_code       TEXT,
    error_message    TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    result           TEXT
) STRICT;
CREATE INDEX outbox_pending ON outbox(state, next_attempt_at);
CREATE INDEX outbox_by_transaction ON outbox(transaction_id, id);
-- The head of each transaction's queue, read by the worker every round.
CREATE INDEX outbox_heads ON outbox(state, transaction_id, id);
CREATE INDEX outbox_by_age ON outbox(state, created_at);
"#;

/// Recorded returns; moved here unchanged from returns.rs.
const V4_RETURNS: &str = r#"
CREATE TABLE returns (
    id                 TEXT PRIMARY KEY,
    transaction_id     TEXT NOT NULL,
    currency           TEXT NOT NULL,
    amount             INTEGER NOT NULL,
    -- [{"index", "name", "reference", "quantity", "unit_price"}] as refunded.
    lines              TEXT NOT NULL,
    reason             TEXT NOT NULL,
    restock            INTEGER NOT NULL,
    proof_of_purchase  INTEGER NOT NULL,
    operator           TEXT NOT NULL,
    approved_by        TEXT,
    outbox_id          INTEGER NOT NULL REFERENCES outbox(id),
    created_at         TEXT NOT NULL
) STRICT;
CREATE INDEX returns_by_transaction ON returns(transaction_id);
"#;

/// Takes work off every write (issues 2 and 3): the trigram index is filled after the commit,
/// and the outbox's limits are read from running totals instead of counting the queue.
const V5_WRITE_PATH: &str = r#"
-- Indexing a row's text cost a third of a journal append's CPU (FTS5 flushes a segment per
-- commit). Rows are now indexed in batches when the database thread is idle, and a text search
-- first indexes whatever is left, so search results stay exact.
DROP TRIGGER journal_text_insert;
CREATE TABLE journal_text_indexed (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    upto  INTEGER NOT NULL
) STRICT;
INSERT INTO journal_text_indexed (id, upto) VALUES (1, COALESCE(
    (SELECT MAX(seq) FROM journal), (SELECT MAX(last_seq) FROM journal_archives), 0));

-- The open sales (a handful), asked after every sale event by the updater's busy marker.
CREATE INDEX open_sales ON sales(state) WHERE state = 'open';

-- No query reads the outbox by transaction alone (the worker's heads index covers its order):
-- one page less to write per enqueue.
DROP INDEX outbox_by_transaction;

-- Count and total per (state, currency), kept by triggers so an enqueue's limit check reads a
-- few rows whatever the length of the queue.
CREATE TABLE outbox_totals (
    state     TEXT NOT NULL,
    currency  TEXT NOT NULL,
    count     INTEGER NOT NULL,
    total     INTEGER NOT NULL,
    PRIMARY KEY (state, currency)
) STRICT, WITHOUT ROWID;
INSERT INTO outbox_totals (state, currency, count, total)
    SELECT state, currency, COUNT(*), SUM(amount) FROM outbox GROUP BY state, currency;
CREATE TRIGGER outbox_totals_insert AFTER INSERT ON outbox BEGIN
    INSERT INTO outbox_totals (state, currency, count, total)
        VALUES (NEW.state, NEW.currency, 1, NEW.amount)
        ON CONFLICT (state, currency) DO UPDATE SET count = count + 1, total = total + NEW.amount;
END;
CREATE TRIGGER outbox_totals_update AFTER UPDATE OF state, currency, amount ON outbox BEGIN
    UPDATE outbox_totals SET count = count - 1, total = total - OLD.amount
        WHERE state = OLD.state AND currency = OLD.currency;
    INSERT INTO outbox_totals (state, currency, count, total)
        VALUES (NEW.state, NEW.currency, 1, NEW.amount)
        ON CONFLICT (state, currency) DO UPDATE SET count = count + 1, total = total + NEW.amount;
END;
CREATE TRIGGER outbox_totals_delete AFTER DELETE ON outbox BEGIN
    UPDATE outbox_totals SET count = count - 1, total = total - OLD.amount
        WHERE state = OLD.state AND currency = OLD.currency;
END;
"#;

/// A payment prepared for each open sale in the same durable commit as the sale's lines, so
/// starting the payment need not wait for the disk before the request leaves; and the attempts
/// table without the indexes nothing reads, with the one a sale's view reads (issue 2).
const V6_PAYMENT_DRAFTS: &str = r#"
-- The attempt a "Pay" press would start now: its id, its idempotency keys and the exact
-- authorize body. Starting the payment moves it into payment_attempts in a commit that does not
-- wait for the disk; if a power cut loses that commit, the draft is still here, so the next
-- press sends the same key and body and Klarna answers with the request it already made.
CREATE TABLE payment_drafts (
    sale_id         TEXT PRIMARY KEY REFERENCES sales(id),
    attempt_id      TEXT NOT NULL,
    authorize_key   TEXT NOT NULL,
    finalize_key    TEXT NOT NULL,
    authorize_body  TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Every index is a page to write in each commit that starts or moves a payment. The keys are
-- derived from the attempt's (unique) id, so their own unique indexes checked nothing; Klarna's
-- ids are unique where present, and absent until Klarna answers. A sale's view reads its
-- attempts by sale, which no index served (it scanned every attempt the till ever made).
CREATE TABLE payment_attempts_v6 (
    id                  TEXT PRIMARY KEY,
    sale_id             TEXT NOT NULL REFERENCES sales(id),
    state               TEXT NOT NULL,
    amount              INTEGER NOT NULL,
    currency            TEXT NOT NULL,
    correlation_id      TEXT NOT NULL,
    -- Idempotency keys are stored before the request that uses them is sent (here, or in the
    -- sale's draft).
    authorize_key       TEXT NOT NULL,
    finalize_key        TEXT NOT NULL,
    -- The exact authorize body, so a retry after a crash is byte-identical.
    authorize_body      TEXT NOT NULL,
    interop_token       TEXT,
    klarna_request_id   TEXT,
    payment_request_url TEXT,
    expires_at          TEXT,
    deadline_at         TEXT NOT NULL,
    klarna_transaction_id TEXT,
    -- For a canceled attempt: has Klarna confirmed the cancel (or another final state)?
    cancel_confirmed    INTEGER NOT NULL DEFAULT 0,
    reason              TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
) STRICT;
INSERT INTO payment_attempts_v6 (id, sale_id, state, amount, currency, correlation_id,
        authorize_key, finalize_key, authorize_body, interop_token, klarna_request_id,
        payment_request_url, expires_at, deadline_at, klarna_transaction_id, cancel_confirmed,
        reason, created_at, updated_at)
    SELECT id, sale_id, state, amount, currency, correlation_id, authorize_key, finalize_key,
        authorize_body, interop_token, klarna_request_id, payment_request_url, expires_at,
        deadline_at, klarna_transaction_id, cancel_confirmed, reason, created_at, updated_at
    FROM payment_attempts ORDER BY rowid;
DROP TABLE payment_attempts;
ALTER TABLE payment_attempts_v6 RENAME TO payment_attempts;
CREATE UNIQUE INDEX one_live_attempt_per_sale ON payment_attempts(sale_id)
    WHERE state IN ('requested', 'awaiting_customer', 'customer_opened', 'completed');
CREATE INDEX attempts_by_state ON payment_attempts(state);
CREATE INDEX attempts_by_sale ON payment_attempts(sale_id);
CREATE INDEX attempt_states ON payment_attempts(id, state);
CREATE UNIQUE INDEX attempts_by_klarna_request ON payment_attempts(klarna_request_id)
    WHERE klarna_request_id IS NOT NULL;
CREATE UNIQUE INDEX attempts_by_klarna_transaction ON payment_attempts(klarna_transaction_id)
    WHERE klarna_transaction_id IS NOT NULL;
"#;

/// Payments in doubt (issue 15): an attempt in doubt is live (its sale takes no other payment,
/// which the one-live-attempt index now enforces too), and a failed attempt may owe Klarna a
/// cancel (a request it made but could not show; a doubt a manager resolved as not paid).
/// Line edits (issue 17): a removed line stays as a row marked `removed`, so its number is never
/// given to another product (an edit names a line by number); `list_price` is the unit price the
/// line was added at, against which a price cut is measured (NULL on older rows: their price).
/// Staff accounts (issue 17): each cashier and manager signs in with their own id and PIN (an
/// Argon2id hash, as the store PIN was). The store PIN becomes the account `manager`, so a
/// store that had one keeps it, now as a named manager.
const V15_STAFF: &str = r#"
CREATE TABLE staff (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('cashier', 'manager')),
    phc         TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at  TEXT NOT NULL
) STRICT;
INSERT INTO staff (id, name, role, phc, created_at)
    SELECT 'manager', 'Store manager', 'manager', phc, set_at FROM manager_pin WHERE id = 1;
"#;

/// Tenders (issue 17): parts of a sale paid in cash or on the store's card terminal. A tender
/// is never deleted: a voided one stays (the cash went back), and `refunded` grows with returns
/// up to `amount`. The journal holds each change as well; reports count from the journal.
const V14_TENDERS: &str = r#"
CREATE TABLE sale_tenders (
    id          TEXT PRIMARY KEY,
    sale_id     TEXT NOT NULL REFERENCES sales(id),
    kind        TEXT NOT NULL CHECK (kind IN ('cash', 'card_terminal')),
    state       TEXT NOT NULL CHECK (state IN ('taken', 'voided', 'refunded')),
    amount      INTEGER NOT NULL CHECK (amount > 0),
    given       INTEGER NOT NULL CHECK (given >= 0),
    change      INTEGER NOT NULL CHECK (change >= 0),
    rounding    INTEGER NOT NULL,
    reference   TEXT,
    refunded    INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
    operator    TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX sale_tenders_by_sale ON sale_tenders(sale_id);
CREATE TRIGGER sale_tenders_no_delete BEFORE DELETE ON sale_tenders
    BEGIN SELECT RAISE(ABORT, 'a tender is never deleted'); END;
-- Returns of a sale made at this till, by its receipt: the lines that came back (so no line
-- comes back twice) and how the money went back (each tender's share, Klarna's through the
-- outbox row named).
CREATE TABLE sale_returns (
    id            TEXT PRIMARY KEY,
    sale_id       TEXT NOT NULL REFERENCES sales(id),
    currency      TEXT NOT NULL,
    amount        INTEGER NOT NULL CHECK (amount > 0),
    klarna_amount INTEGER NOT NULL CHECK (klarna_amount >= 0),
    outbox_id     INTEGER,
    shares        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    restock       INTEGER NOT NULL CHECK (restock IN (0, 1)),
    operator      TEXT NOT NULL,
    approved_by   TEXT,
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX sale_returns_by_sale ON sale_returns(sale_id);
CREATE TABLE sale_return_lines (
    return_id  TEXT NOT NULL REFERENCES sale_returns(id),
    sale_id    TEXT NOT NULL,
    line_no    INTEGER NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (return_id, line_no)
) STRICT;
CREATE INDEX sale_return_lines_by_sale ON sale_return_lines(sale_id, line_no);
-- How many times a sale's lines changed: orders two states of one sale (a removed line makes
-- the newer state the shorter one), so a screen never takes a late answer for news.
ALTER TABLE sales ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER sale_lines_revision_insert AFTER INSERT ON sale_lines
    BEGIN UPDATE sales SET revision = revision + 1 WHERE id = NEW.sale_id; END;
CREATE TRIGGER sale_lines_revision_update AFTER UPDATE ON sale_lines
    BEGIN UPDATE sales SET revision = revision + 1 WHERE id = NEW.sale_id; END;
"#;

const V13_LINE_EDITS: &str = r#"
ALTER TABLE sale_lines ADD COLUMN removed INTEGER NOT NULL DEFAULT 0 CHECK (removed IN (0, 1));
ALTER TABLE sale_lines ADD COLUMN list_price INTEGER CHECK (list_price >= 0);
"#;

const V12_IN_DOUBT: &str = r#"
DROP INDEX one_live_attempt_per_sale;
CREATE UNIQUE INDEX one_live_attempt_per_sale ON payment_attempts(sale_id)
    WHERE state IN ('requested', 'awaiting_customer', 'customer_opened', 'completed', 'in_doubt');
DROP INDEX attempts_cancel_waiting;
CREATE INDEX attempts_cancel_waiting ON payment_attempts(updated_at)
    WHERE state IN ('canceled', 'expired', 'failed') AND cancel_confirmed = 0;
"#;

/// The journal's lookup indexes leave the write path (issues 2 and 3): each was a page to write
/// in every commit that journals anything (ten of them: a journal row cost six to ten pages,
/// an outbox enqueue sixteen). Like the trigram index, they now live on a copy of the columns
/// they index, filled in batches after the commit; readers take the rows past the watermark
/// from the journal itself, so nothing is ever missing from a result.
const V7_JOURNAL_LOOKUP: &str = r#"
ALTER TABLE journal_text_indexed RENAME TO journal_indexed;

-- What the log, the reports and the receipts look journal rows up by; `outbox_id` and
-- `operation` are an outbox row's, read from its detail once here.
CREATE TABLE journal_lookup (
    seq                   INTEGER PRIMARY KEY,
    at                    TEXT NOT NULL,
    operator              TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    sale_id               TEXT,
    attempt_id            TEXT,
    amount                INTEGER,
    currency              TEXT,
    klarna_request_id     TEXT,
    klarna_transaction_id TEXT,
    correlation_id        TEXT,
    outbox_id             ANY,
    operation             TEXT
) STRICT;
INSERT INTO journal_lookup (seq, at, operator, kind, sale_id, attempt_id, amount, currency,
        klarna_request_id, klarna_transaction_id, correlation_id, outbox_id, operation)
    SELECT seq, at, operator, kind, sale_id, attempt_id, amount, currency, klarna_request_id,
        klarna_transaction_id, correlation_id,
        CASE WHEN kind LIKE 'outbox%' AND json_valid(detail) THEN json_extract(detail, '$.outbox_id') END,
        CASE WHEN kind LIKE 'outbox%' AND json_valid(detail) THEN json_extract(detail, '$.operation') END
    FROM journal WHERE seq <= (SELECT upto FROM journal_indexed);

DROP INDEX journal_by_sale;
DROP INDEX journal_by_kind;
DROP INDEX journal_by_operator;
DROP INDEX journal_by_at;
DROP INDEX journal_by_amount;
DROP INDEX journal_by_attempt;
DROP INDEX journal_by_klarna_request;
DROP INDEX journal_by_klarna_transaction;
DROP INDEX journal_by_correlation;
DROP INDEX journal_outbox;

CREATE INDEX journal_by_sale ON journal_lookup(sale_id) WHERE sale_id IS NOT NULL;
CREATE INDEX journal_by_kind ON journal_lookup(kind, seq);
CREATE INDEX journal_by_operator ON journal_lookup(operator, seq);
CREATE INDEX journal_by_at ON journal_lookup(at);
CREATE INDEX journal_by_amount ON journal_lookup(amount) WHERE amount IS NOT NULL;
CREATE INDEX journal_by_attempt ON journal_lookup(attempt_id) WHERE attempt_id IS NOT NULL;
CREATE INDEX journal_by_klarna_request ON journal_lookup(klarna_request_id)
    WHERE klarna_request_id IS NOT NULL;
CREATE INDEX journal_by_klarna_transaction ON journal_lookup(klarna_transaction_id)
    WHERE klarna_transaction_id IS NOT NULL;
CREATE INDEX journal_by_correlation ON journal_lookup(correlation_id)
    WHERE correlation_id IS NOT NULL;
-- What a report needs of every outbox row, from this index alone.
CREATE INDEX journal_outbox ON journal_lookup(kind, seq, outbox_id, operation, currency, amount)
    WHERE kind LIKE 'outbox%';
"#;

/// The outbox read as a queue in id order from a low-water mark instead of through three
/// indexes that every enqueue had to write (issue 3): an enqueue is now the outbox row, its
/// running totals and its journal row.
const V8_OUTBOX_QUEUE: &str = r#"
-- Rebuilt without the unique index on the idempotency key, a page every enqueue wrote: the key
-- is a fresh random UUID made in the enqueue's own transaction, unique by construction, and
-- nothing looks rows up by it. (Run with foreign keys off, as SQLite prescribes for rebuilding
-- a table others reference; `Db::open` checks them afterwards.)
CREATE TABLE outbox_v8 (
    id               INTEGER PRIMARY KEY,
    operation        TEXT NOT NULL CHECK (operation IN ('refund', 'capture', 'void')),
    transaction_id   TEXT NOT NULL,
    amount           INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    -- The exact request body: every retry sends the same bytes under the same key.
    body             TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    reference        TEXT NOT NULL,
    correlation_id   TEXT NOT NULL,
    operator         TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'needs_attention', 'resolved')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- Whether an earlier attempt may have reached Klarna (answer lost): read before resending late.
    maybe_applied    INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    error_code       TEXT,
    error_message    TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT,
    result           TEXT
) STRICT;
INSERT INTO outbox_v8 SELECT id, operation, transaction_id, amount, currency, body, idempotency_key,
    reference, correlation_id, operator, state, attempts, maybe_applied, next_attempt_at,
    error_code, error_message, created_at, sent_at, result FROM outbox ORDER BY id;
DROP TABLE outbox;
ALTER TABLE outbox_v8 RENAME TO outbox;
-- The running totals' triggers went with the old table.
CREATE TRIGGER outbox_totals_insert AFTER INSERT ON outbox BEGIN
    INSERT INTO outbox_totals (state, currency, count, total)
        VALUES (NEW.state, NEW.currency, 1, NEW.amount)
        ON CONFLICT (state, currency) DO UPDATE SET count = count + 1, total = total + NEW.amount;
END;
CREATE TRIGGER outbox_totals_update AFTER UPDATE OF state, currency, amount ON outbox BEGIN
    UPDATE outbox_totals SET count = count - 1, total = total - OLD.amount
        WHERE state = OLD.state AND currency = OLD.currency;
    INSERT INTO outbox_totals (state, currency, count, total)
        VALUES (NEW.state, NEW.currency, 1, NEW.amount)
        ON CONFLICT (state, currency) DO UPDATE SET count = count + 1, total = total + NEW.amount;
END;
CREATE TRIGGER outbox_totals_delete AFTER DELETE ON outbox BEGIN
    UPDATE outbox_totals SET count = count - 1, total = total - OLD.amount
        WHERE state = OLD.state AND currency = OLD.currency;
END;

-- No pending operation has an id below `id`. Enqueued rows are appended (ids only grow: outbox
-- rows are never deleted), so an enqueue leaves it alone; a retry below it lowers it (trigger),
-- and the worker raises it past the operations it finished. Readers of the queue scan from it.
CREATE TABLE outbox_low (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    id   INTEGER NOT NULL
) STRICT;
INSERT INTO outbox_low (one, id) VALUES (1, COALESCE(
    (SELECT MIN(id) FROM outbox WHERE state = 'pending'), (SELECT MAX(id) + 1 FROM outbox), 1));
CREATE TRIGGER outbox_low_insert AFTER INSERT ON outbox WHEN NEW.state = 'pending' BEGIN
    UPDATE outbox_low SET id = NEW.id WHERE id > NEW.id;
END;
CREATE TRIGGER outbox_low_pending AFTER UPDATE OF state ON outbox WHEN NEW.state = 'pending' BEGIN
    UPDATE outbox_low SET id = NEW.id WHERE id > NEW.id;
END;
-- outbox_pending, outbox_heads and outbox_by_age went with the old table and are not made again.
"#;

/// The outbox's running totals move into the database thread's memory (`outbox::Totals`): the
/// table they were kept in was a third page every enqueue wrote to the WAL (issue 3).
const V9_OUTBOX_TOTALS_IN_MEMORY: &str = r#"
DROP TRIGGER outbox_totals_insert;
DROP TRIGGER outbox_totals_update;
DROP TRIGGER outbox_totals_delete;
DROP TABLE outbox_totals;
-- Counting the operations that wait for a manager (when the totals are counted anew) reads
-- these few rows, not the whole outbox; an enqueue (state 'pending') never writes this index.
CREATE INDEX outbox_attention ON outbox(state) WHERE state = 'needs_attention';
"#;

/// The abandoned payment requests whose cancel Klarna has not confirmed, counted for staff with
/// the outbox (`OutboxSummary::cancels_waiting`). Partial: an attempt enters it only when the till
/// abandons it, never on the payment path.
const V10_CANCELS_WAITING: &str = r#"
CREATE INDEX attempts_cancel_waiting ON payment_attempts(updated_at)
    WHERE state IN ('canceled', 'expired') AND cancel_confirmed = 0;
"#;

/// A payment draft that may have reached Klarna (the last run did not end in order) is retired
/// into an attempt owed a cancel when it is replaced, never just dropped
/// (`WriteTx::retire_draft`).
const V11_DRAFTS_MAYBE_SENT: &str = r#"
ALTER TABLE payment_drafts ADD COLUMN maybe_sent INTEGER NOT NULL DEFAULT 0;
-- Whether the last agent run ended in order, with a durable last commit: only then is every
-- draft still here one that was never sent (a start sent early is committed before the end).
CREATE TABLE agent_run (
    one          INTEGER PRIMARY KEY CHECK (one = 1),
    ended_clean  INTEGER NOT NULL
) STRICT;
INSERT INTO agent_run (one, ended_clean) VALUES (1, 0);
"#;

#[cfg(test)]
mod tests {
    /// A till's database as a release at schema version 5 left it (before the table rebuilds).
    fn till_at_version_5() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        crate::store::configure(&conn).unwrap();
        super::migrations().to_version(&mut conn, 5).unwrap();
        (dir, path)
    }

    /// A till that had a store PIN before staff accounts (schema 14) keeps it as the account
    /// `manager`, with the same hash, so the same PIN signs in and approves.
    #[test]
    fn the_store_pin_becomes_the_manager_account() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            crate::store::configure(&conn).unwrap();
            super::migrations().to_version(&mut conn, 14).unwrap();
            conn.execute(
                "INSERT INTO manager_pin (id, phc, set_at) VALUES (1, '$argon2id$x', '2026-01-01T00:00:00Z')",
                [],
            )
            .unwrap();
        }
        let db = crate::store::Db::open(&path, "till-1").unwrap();
        let (row, phc) = db.staff_member("manager").unwrap().expect("migrated");
        assert_eq!(phc, "$argon2id$x");
        assert_eq!(row.role, kassa_core::staff::Role::Manager);
        assert!(row.active);
        // A till without a store PIN gets no account it never had.
        let empty = tempfile::tempdir().unwrap();
        let db = crate::store::Db::open(&empty.path().join("k.db"), "till-1").unwrap();
        assert!(db.staff().unwrap().is_empty());
    }

    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }

    /// A rebuild that would leave a reference dangling is refused whole: the database stays at
    /// the version before it, and opening it says why.
    #[test]
    fn an_upgrade_over_a_broken_reference_is_refused_and_changes_nothing() {
        let (_dir, path) = till_at_version_5();
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
            conn.execute(
                "INSERT INTO payment_attempts (id, sale_id, state, amount, currency,
                     correlation_id, authorize_key, finalize_key, authorize_body, deadline_at,
                     created_at, updated_at)
                 VALUES ('a1', 'no-such-sale', 'failed', 100, 'SEK', 'c', 'k1', 'k2', '{}',
                     'x', 'x', 'x')",
                [],
            )
            .unwrap();
        }
        let err = crate::store::Db::open(&path, "till-1").err().unwrap();
        assert!(
            err.to_string().to_lowercase().contains("foreign key"),
            "{err}"
        );
        let conn = rusqlite::Connection::open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 5);
        let attempts: i64 = conn
            .query_row("SELECT COUNT(*) FROM payment_attempts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(attempts, 1);
    }

    /// A till upgraded with a queue, a return that points into it and a sale being paid keeps
    /// all of it through the table rebuilds (V6, V8), references intact.
    #[test]
    fn an_upgrade_keeps_the_queue_the_returns_and_the_attempts() {
        let (_dir, path) = till_at_version_5();
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "INSERT INTO sales (id, currency, state, operator, opened_at)
                     VALUES ('s1', 'SEK', 'open', 'ann', '2026-01-01T00:00:00Z');
                 INSERT INTO payment_attempts (id, sale_id, state, amount, currency,
                     correlation_id, authorize_key, finalize_key, authorize_body, deadline_at,
                     created_at, updated_at)
                     VALUES ('a1', 's1', 'awaiting_customer', 100, 'SEK', 'c', 'k1', 'k2', '{}',
                     'x', 'x', 'x');
                 INSERT INTO outbox (operation, transaction_id, amount, currency, body,
                     idempotency_key, reference, correlation_id, operator, state,
                     next_attempt_at, created_at)
                     VALUES ('refund', 't1', 500, 'SEK', '{}', 'key-1', 'r', 'c', 'ann', 'sent', 'x', 'x'),
                            ('refund', 't1', 700, 'SEK', '{}', 'key-2', 'r', 'c', 'ann', 'pending', 'x', 'x');
                 INSERT INTO returns (id, transaction_id, currency, amount, lines, reason, restock,
                     proof_of_purchase, operator, outbox_id, created_at)
                     VALUES ('ret-1', 't1', 'SEK', 700, '[]', 'size', 1, 1, 'ann', 2, 'x');",
            )
            .unwrap();
        }
        let db = crate::store::Db::open(&path, "till-1").unwrap();
        let q = |sql: &str| -> i64 { db.conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(q("SELECT COUNT(*) FROM outbox"), 2);
        assert_eq!(
            q("SELECT id FROM outbox_low"),
            2,
            "the first pending operation"
        );
        assert_eq!(q("SELECT outbox_id FROM returns WHERE id = 'ret-1'"), 2);
        let limits = crate::outbox::OutboxLimits::default();
        let s = db.outbox_summary(&limits).unwrap();
        assert_eq!((s.pending, s.pending_totals["SEK"]), (1, 700));
        assert_eq!(
            q("SELECT COUNT(*) FROM payment_attempts WHERE sale_id = 's1'"),
            1
        );
        assert_eq!(q("PRAGMA foreign_keys"), 1, "references are enforced again");
        // A row written by another connection (a CLI on the same file) is counted: the
        // in-memory totals notice that commit.
        let other = rusqlite::Connection::open(&path).unwrap();
        other
            .execute(
                "INSERT INTO outbox (operation, transaction_id, amount, currency, body,
                     idempotency_key, reference, correlation_id, operator, state,
                     next_attempt_at, created_at)
                 VALUES ('refund', 't2', 50, 'SEK', '{}', 'key-3', 'r', 'c', 'ann', 'pending', 'x', 'x')",
                [],
            )
            .unwrap();
        let s = db.outbox_summary(&limits).unwrap();
        assert_eq!((s.pending, s.pending_totals["SEK"]), (2, 750));
    }
}
