//! What the windows show, as pure functions of the agent's data: the sale's snapshot, the
//! status bar, the manager area's panes and log rows. No Slint calls and no I/O here, so each is
//! unit-tested with plain values.

use super::*;
use kassa_ui::words::{tr, trf};

pub(super) fn phase(state: AttemptState) -> PaymentPhase {
    match state {
        AttemptState::Requested => PaymentPhase::Requested,
        AttemptState::AwaitingCustomer => PaymentPhase::AwaitingCustomer,
        AttemptState::CustomerOpened => PaymentPhase::CustomerOpened,
        AttemptState::Completed => PaymentPhase::Approved,
        AttemptState::Paid => PaymentPhase::Paid,
        AttemptState::Declined => PaymentPhase::Declined,
        AttemptState::Expired => PaymentPhase::Expired,
        AttemptState::Canceled => PaymentPhase::Canceled,
        AttemptState::Failed => PaymentPhase::Failed,
        AttemptState::InDoubt => PaymentPhase::InDoubt,
    }
}

/// The terminal's view of a sale, in the screen's terms.
pub fn snapshot(view: &SaleView) -> SaleSnapshot {
    SaleSnapshot {
        sale_id: view.sale.id.clone(),
        status: match view.sale.state {
            SaleState::Open => SaleStatus::Open,
            SaleState::Paid => SaleStatus::Paid,
            SaleState::Abandoned => SaleStatus::Abandoned,
        },
        currency: view.sale.currency,
        lines: view
            .lines
            .iter()
            .map(|l| LineSnapshot {
                line_no: l.line_no,
                name: l.name.clone(),
                quantity: l.quantity,
                unit_price: l.unit_price,
                total: l.total_amount,
            })
            .collect(),
        total: view.total,
        due: view.due,
        tenders: view
            .tenders
            .iter()
            .filter(|t| t.state != kassa_core::tender::TenderState::Voided)
            .map(|t| TenderSnapshot {
                kind: match t.kind {
                    kassa_core::tender::TenderKind::Cash => TenderKind::Cash,
                    kassa_core::tender::TenderKind::CardTerminal => TenderKind::Card,
                },
                amount: t.amount,
                given: t.given,
                change: t.change,
            })
            .collect(),
        revision: view.revision,
        receipt_no: view.sale.receipt_no,
        attempts: view.payments.len(),
        // The payment in flight if there is one (an older attempt may have been written after
        // it, a retired draft), else the last to end.
        payment: view
            .live_attempt()
            .or(view.payments.last())
            .map(|a| PaymentSnapshot {
                attempt_id: a.id.clone(),
                phase: phase(a.state),
                url: a.payment_request_url.clone(),
                deadline_unix_ms: chrono::DateTime::parse_from_rfc3339(&a.deadline_at)
                    .ok()
                    .map(|t| t.timestamp_millis()),
                reason: a.reason.clone(),
            }),
    }
}

/// A device as the till names it to staff ("Receipt printer").
fn device_name(role: &str, language: Language) -> String {
    tr(
        language,
        match role {
            "display" => "Customer display",
            "scanner" => "Scanner",
            "printer" => "Receipt printer",
            _ => "Card reader",
        },
    )
}

/// A device's state in words ("out of paper"); a state this version has no words for is shown
/// as the device reported it.
pub(super) fn device_state(state: &str, language: Language) -> String {
    match state {
        "paper_out" => tr(language, "out of paper"),
        "cover_open" => tr(language, "cover open"),
        "disconnected" => tr(language, "not connected"),
        "connected" => tr(language, "connected"),
        "offline" => tr(language, "not answering"),
        other => other.replace('_', " "),
    }
}

/// "Receipt printer: out of paper", for the status bar; `None` for a device that can do its job.
pub(super) fn device_problem(d: &DeviceStatus, language: Language) -> Option<String> {
    if d.ready {
        return None;
    }
    Some(trf(
        language,
        "{}: {}",
        &[
            &device_name(d.role.as_str(), language),
            &device_state(d.state, language),
        ],
    ))
}

/// The start and end of a maintenance window in the till's local time ("2026-04-12 22:00–23:30"):
/// numbers only, which read the same in every language.
pub(super) fn maintenance_text(m: &crate::health::Maintenance) -> String {
    let (start, end) = (
        m.start.with_timezone(&chrono::Local),
        m.end.with_timezone(&chrono::Local),
    );
    let end = if end.date_naive() == start.date_naive() {
        end.format("%H:%M").to_string()
    } else {
        end.format("%Y-%m-%d %H:%M").to_string()
    };
    let mut text = format!("{}–{end}", start.format("%Y-%m-%d %H:%M"));
    if !m.note.is_empty() {
        text.push_str(&format!(" ({})", m.note));
    }
    text
}

/// What the status bar shows, from the agent's Klarna status and the devices' states.
pub fn status_bar(
    status: &KlarnaStatus,
    devices: &[DeviceStatus],
    language: Language,
) -> StatusBarModel {
    StatusBarModel {
        klarna: match status.klarna {
            KlarnaState::Online => KlarnaHealth::Online,
            KlarnaState::Degraded => KlarnaHealth::Degraded,
            KlarnaState::Offline => KlarnaHealth::Offline,
        },
        // A cancel Klarna has yet to confirm waits to be sent as much as a queued refund.
        pending_operations: u32::try_from(status.outbox.pending + status.outbox.cancels_waiting)
            .unwrap_or(0),
        operations_need_attention: u32::try_from(status.outbox.needs_attention).unwrap_or(0),
        device_problems: devices
            .iter()
            .filter_map(|d| device_problem(d, language))
            .collect(),
        maintenance_window: status.maintenance.as_ref().map(maintenance_text),
    }
}

pub(super) fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// An amount read back from the journal, with its currency's ISO 4217 exponent; a code kassa
/// does not know (a row no version of kassa wrote) is shown as it is, in minor units.
pub(super) fn money(minor: i64, currency: &str, language: Language) -> String {
    match currency.parse::<Currency>() {
        Ok(c) => format_amount(minor, &c, language),
        Err(_) => format!("{minor} {currency}"),
    }
}

/// "14:02" for a time today, "2026-11-19 14:02" before, in the till's local time (numbers only,
/// which read the same in every language).
pub(super) fn log_time(rfc3339: &str, now: chrono::DateTime<chrono::Local>) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => {
            let t = t.with_timezone(&chrono::Local);
            if t.date_naive() == now.date_naive() {
                t.format("%H:%M").to_string()
            } else {
                t.format("%Y-%m-%d %H:%M").to_string()
            }
        }
        Err(_) => rfc3339.to_owned(),
    }
}

/// What a journal event is called on the log pane, in English (the key of `kassa_ui::words`);
/// `None` for a kind this version does not know.
pub fn log_event_name(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "sale_opened" => "Sale opened",
        "line_added" => "Line added",
        "line_removed" => "Line removed",
        "line_changed" => "Line changed",
        "payment_requested" => "Payment requested",
        "qr_shown" => "QR code shown",
        "customer_opened" => "Customer opened the link",
        "payment_completed" => "Payment completed",
        "payment_declined" => "Payment declined",
        "payment_expired" => "Payment expired",
        "payment_canceled" => "Payment canceled",
        "payment_failed" => "Payment failed",
        "finalized" => "Finalized",
        "receipt_issued" => "Receipt issued",
        "receipt_printed" => "Receipt printed",
        "sale_abandoned" => "Sale canceled",
        "cancel_confirmed" => "Cancel confirmed",
        "completed_after_abandon" => "Paid after the sale was canceled",
        "charged_after_abandon" => "Charged after the sale was canceled",
        "payment_in_doubt" => "Payment in doubt",
        "payment_doubt_resolved" => "Doubt resolved",
        "webhook_received" => "Klarna notification",
        "outbox_queued" => "Queued to send",
        "outbox_sent" => "Sent to Klarna",
        "outbox_needs_attention" => "Needs a manager",
        "outbox_resolved" => "Resolved",
        "tender_taken" => "Tender taken",
        "tender_voided" => "Tender voided",
        "tender_refunded" => "Tender refunded",
        "cash_movement" => "Cash movement",
        "staff_session" => "Staff session",
        "return_recorded" => "Return recorded",
        "manager_action" => "Manager action",
        "journal_archived" => "Journal archived",
        _ => return None,
    })
}

/// A state of a sale, payment or outbox operation in words.
pub fn log_state_name(state: &str, language: Language) -> String {
    let english = match state {
        "open" => "open",
        "paid" => "paid",
        "abandoned" => "canceled",
        "queued" | "pending" => "waiting",
        "sent" => "sent",
        "needs_attention" => "needs a manager",
        "resolved" => "resolved",
        other => return other.replace('_', " "),
    };
    tr(language, english)
}

/// One log row as the manager reads it: when, what happened (with the receipt number, the item
/// or the manager's action where the event has one, and where it stands now), and the amount.
pub(super) fn log_row(
    e: &LogEntry,
    now: chrono::DateTime<chrono::Local>,
    language: Language,
) -> TransactionRow {
    let r = &e.row;
    let detail = |key: &str| r.detail.get(key).and_then(|v| v.as_str());
    let mut text = match r.kind.as_str() {
        // A manager action says which action (and whether it was refused).
        "manager_action" => {
            let action = capitalised(
                &detail("action")
                    .unwrap_or("manager action")
                    .replace('_', " "),
            );
            match detail("outcome") {
                Some(outcome) => format!("{action} · {}", tr(language, outcome)),
                None => action,
            }
        }
        // An outbox row says which operation.
        k if k.starts_with("outbox_") => {
            let event = tr(language, log_event_name(k).unwrap_or("Queued to send"));
            match detail("operation") {
                Some(op) => format!("{event}: {}", tr(language, &capitalised(op))),
                None => event,
            }
        }
        k => match log_event_name(k) {
            Some(name) => tr(language, name),
            None => capitalised(&k.replace('_', " ")),
        },
    };
    // What the event was about, where the row says: the receipt, the item.
    if let Some(no) = r
        .detail
        .get("receipt_no")
        .and_then(serde_json::Value::as_i64)
    {
        text.push_str(" · ");
        text.push_str(&trf(language, "Receipt {}", &[&no.to_string()]));
    } else if let Some(name) = detail("name") {
        text.push_str(" · ");
        text.push_str(name);
    }
    if let Some(state) = &e.state {
        text.push_str(" · ");
        text.push_str(&log_state_name(state, language));
    }
    TransactionRow {
        time: log_time(&r.at, now),
        amount: match (r.amount, r.currency.as_deref()) {
            (Some(a), Some(c)) => money(a, c, language),
            _ => String::new(),
        },
        state: text,
    }
}

pub(super) fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The store's filter for what the log pane asks, exactly as `kassa log` would build it from
/// `--kind`, `--text` and `--from` (the start of the period's first local day).
pub(super) fn log_filter(
    query: &LogQuery,
    now: chrono::DateTime<chrono::Local>,
) -> Result<LogFilter, LogError> {
    use kassa_ui::manager_area::LogKindChoice as K;
    let kind = match query.kind {
        K::All => None,
        K::Sales => Some(LogKind::Sale),
        K::Payments => Some(LogKind::Payment),
        K::Returns => Some(LogKind::Return),
        K::Refunds => Some(LogKind::Refund),
        K::Outbox => Some(LogKind::Outbox),
        K::Manager => Some(LogKind::Manager),
    };
    let mut filter = LogFilter {
        kinds: kind.into_iter().collect(),
        text: query.text.clone().filter(|t| !t.is_empty()),
        ..Default::default()
    };
    if let Some(days) = query.period.days() {
        filter = filter.from(&period_start(now, days).to_rfc3339())?;
    }
    filter.validate()?;
    Ok(filter)
}

/// Local midnight `days - 1` days before `now`'s day: the start of "today" or "the last 7 days".
pub(super) fn period_start(
    now: chrono::DateTime<chrono::Local>,
    days: u32,
) -> chrono::DateTime<chrono::FixedOffset> {
    let day = now
        .date_naive()
        .checked_sub_days(chrono::Days::new(u64::from(days.saturating_sub(1))))
        .unwrap_or(chrono::NaiveDate::MIN);
    day.and_time(chrono::NaiveTime::MIN)
        .and_local_timezone(chrono::Local)
        // A day that starts in a daylight-saving gap starts at the gap's end.
        .earliest()
        .unwrap_or_else(|| now - chrono::Duration::days(i64::from(days)))
        .fixed_offset()
}

/// The manager area's read-only panes (outbox, Klarna's health, devices) from what the agent
/// holds; the log's rows come from the log pane.
pub(super) fn manager_panes(
    outbox: &[crate::outbox::OutboxRow],
    health: &[CategoryFigures],
    devices: Option<&[DeviceStatus]>,
    language: Language,
) -> ManagerAreaModel {
    ManagerAreaModel {
        transactions: Vec::new(),
        outbox: outbox
            .iter()
            // The pane lists what still needs sending or a manager's decision.
            .filter(|o| matches!(o.state, OutboxState::Pending | OutboxState::NeedsAttention))
            .map(|o| OutboxRow {
                operation: format!(
                    "{} {}",
                    tr(language, &capitalised(o.operation.as_str())),
                    money(o.amount, &o.currency, language)
                ),
                state: match o.state {
                    // Klarna's own words on why, as Klarna gave them.
                    OutboxState::NeedsAttention => trf(
                        language,
                        "needs a manager: {}",
                        &[&o.error_message
                            .clone()
                            .unwrap_or_else(|| tr(language, "refused"))],
                    ),
                    _ => trf(
                        language,
                        "waiting, next try {}",
                        &[&local_time(&o.next_attempt_at)],
                    ),
                },
                attempts: trf(language, "{} tries", &[&o.attempts.to_string()]),
            })
            .collect(),
        health: health
            .iter()
            .map(|f| HealthRow {
                category: tr(language, &f.category),
                state: match (f.availability_percent, f.p99_ms) {
                    (None, _) => tr(language, "no calls in the last 5 minutes"),
                    (Some(a), Some(p99)) => trf(
                        language,
                        "{} % of {} calls answered, slowest 1 % over {} ms",
                        &[
                            &percent(a, language),
                            &f.requests.to_string(),
                            &format!("{p99:.0}"),
                        ],
                    ),
                    (Some(a), None) => trf(
                        language,
                        "{} % of {} calls answered",
                        &[&percent(a, language), &f.requests.to_string()],
                    ),
                },
            })
            .collect(),
        devices: devices
            .unwrap_or_default()
            .iter()
            .map(|d| DeviceRow {
                device: format!("{} ({})", device_name(d.role.as_str(), language), d.port),
                state: match &d.reason {
                    // The operating system's words on why, as it gave them.
                    Some(reason) => format!("{}: {reason}", device_state(d.state, language)),
                    None if d.ready => tr(language, "ready"),
                    None => device_state(d.state, language),
                },
            })
            .collect(),
        no_devices: devices.is_none_or(<[DeviceStatus]>::is_empty),
    }
}

/// Why the till refused what the cashier asked, in the screen's language. English keeps the
/// agent's own words (they carry the detail: which line, which limit); Swedish and German say
/// what happened and what to do, and keep a detail only where the catalogue knows its words.
pub(super) fn screen_error(e: &TerminalError, language: Language) -> String {
    use crate::manager::ManagerError as M;
    if language == Language::English {
        return e.to_string();
    }
    let known = |m: &str| {
        let said = tr(language, m);
        (said != m).then_some(said)
    };
    match e {
        TerminalError::NotFound(_) => tr(language, "Not found: check the id or the receipt code"),
        TerminalError::Invalid(m) | TerminalError::Conflict(m) => known(m)
            .map(|m| trf(language, "Refused: {}", &[&m]))
            .unwrap_or_else(|| tr(language, "The till refused this: check what was typed")),
        TerminalError::KlarnaUnavailable(_) => tr(
            language,
            "Klarna cannot be reached right now; take another payment method",
        ),
        TerminalError::NotEligible => tr(
            language,
            "Klarna is not offered for this purchase; take another payment method",
        ),
        TerminalError::KlarnaRefused { code, .. } => trf(language, "Klarna refused ({})", &[code]),
        TerminalError::Forbidden(_) => tr(language, "This needs a manager's approval"),
        TerminalError::Internal(_) => tr(language, "The till ran into an error; try again"),
        TerminalError::OtherOperator(who) => trf(
            language,
            "Signed in as {}: sign out first to act as someone else",
            &[who],
        ),
        TerminalError::SignIn => tr(language, "Sign in first (staff id and PIN)"),
        TerminalError::Manager(M::WrongPin | M::PinMissing | M::BadPin) => {
            tr(language, "Wrong manager PIN")
        }
        TerminalError::Manager(M::LockedOut { .. }) => {
            tr(language, "Too many wrong PINs; wait a minute")
        }
        TerminalError::Manager(_) => tr(language, "The manager PIN could not be checked"),
    }
}

/// What a day close finds still open, one line each.
pub(super) fn still_open_lines(
    found: &crate::store::StillOpen,
    now: chrono::DateTime<chrono::Local>,
    language: Language,
) -> Vec<String> {
    let mut lines: Vec<String> = found
        .sales
        .iter()
        .map(|s| {
            trf(
                language,
                "Sale opened {} · lines: {} · {}",
                &[
                    &log_time(&s.opened_at, now),
                    &s.lines.to_string(),
                    &money(s.total, &s.currency, language),
                ],
            )
        })
        .collect();
    if found.payments > 0 {
        lines.push(trf(
            language,
            "Payments still in progress: {}",
            &[&found.payments.to_string()],
        ));
    }
    if found.operations > 0 {
        lines.push(trf(
            language,
            "Operations waiting for Klarna or a manager: {}",
            &[&found.operations.to_string()],
        ));
    }
    lines
}

/// "99.5" in English, "99,5" in Swedish and German.
fn percent(value: f64, language: Language) -> String {
    let text = format!("{value:.1}");
    match language {
        Language::English => text,
        _ => text.replace('.', ","),
    }
}

/// The agent's purchase in the return screen's terms; a currency that is not ISO 4217 (as
/// Klarna reported it) cannot be shown or refunded here.
pub(super) fn purchase_snapshot(p: &Purchase) -> Result<PurchaseSnapshot, String> {
    let currency = p.currency.parse::<Currency>().map_err(|_| {
        format!(
            "Klarna reports this purchase in {:?}, which is not a currency kassa knows",
            p.currency
        )
    })?;
    Ok(PurchaseSnapshot {
        transaction_id: p.transaction_id.clone(),
        currency,
        refundable_amount: p.refundable_amount,
        lines: p
            .lines
            .iter()
            .map(|l| PurchaseLineSnapshot {
                index: l.index,
                name: l.name.clone(),
                unit_price: l.unit_price,
                returnable: l.returnable_quantity,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::DeviceRole;
    use crate::health::{Breaker, Maintenance};
    use crate::outbox::OutboxSummary;
    use kassa_ui::manager_area::LogPeriod;

    fn klarna(state: KlarnaState, pending: i64, needs_attention: i64) -> KlarnaStatus {
        KlarnaStatus {
            klarna: state,
            breaker: Breaker::Closed,
            maintenance: None,
            outbox: OutboxSummary {
                pending,
                needs_attention,
                oldest_pending_at: None,
                oldest_pending_age_secs: None,
                pending_totals: Default::default(),
                fullest_limit_percent: 0,
                alert: false,
                cancels_waiting: 0,
            },
        }
    }

    fn device(role: DeviceRole, state: &'static str, ready: bool) -> DeviceStatus {
        DeviceStatus {
            role,
            port: "/dev/ttyUSB0".into(),
            state,
            ready,
            since: None,
            reason: None,
        }
    }

    #[test]
    fn the_status_bar_shows_klarna_the_outbox_and_only_devices_with_a_problem() {
        let devices = [
            device(DeviceRole::Printer, "paper_out", false),
            device(DeviceRole::Scanner, "connected", true),
        ];
        let bar = status_bar(
            &klarna(KlarnaState::Offline, 2, 1),
            &devices,
            Language::English,
        );
        assert_eq!(bar.klarna, KlarnaHealth::Offline);
        assert_eq!(bar.pending_operations, 2);
        assert_eq!(bar.operations_need_attention, 1);
        // A payment request's cancel that Klarna has not confirmed also waits to be sent.
        let mut status = klarna(KlarnaState::Offline, 2, 1);
        status.outbox.cancels_waiting = 1;
        assert_eq!(
            status_bar(&status, &[], Language::English).pending_operations,
            3
        );
        assert_eq!(
            bar.device_problems,
            vec!["Receipt printer: out of paper".to_string()]
        );
        // A Swedish or German till says it in its own language.
        let status = klarna(KlarnaState::Offline, 2, 1);
        assert_eq!(
            status_bar(&status, &devices, Language::Swedish).device_problems,
            vec!["Kvittoskrivare: slut på papper".to_string()]
        );
        assert_eq!(
            status_bar(&status, &devices, Language::German).device_problems,
            vec!["Belegdrucker: kein Papier".to_string()]
        );
        assert_eq!(bar.maintenance_window, None);
    }

    #[test]
    fn an_upcoming_maintenance_window_is_shown_with_its_note() {
        let start = chrono::Utc::now() + chrono::Duration::days(1);
        let mut status = klarna(KlarnaState::Online, 0, 0);
        status.maintenance = Some(Maintenance {
            start,
            end: start + chrono::Duration::minutes(30),
            note: "Klarna upgrade".into(),
        });
        let text = status_bar(&status, &[], Language::English)
            .maintenance_window
            .expect("the window is shown");
        let local = start.with_timezone(&chrono::Local);
        assert!(
            text.starts_with(&local.format("%Y-%m-%d %H:%M").to_string()),
            "{text}"
        );
        assert!(text.ends_with("(Klarna upgrade)"), "{text}");
    }

    fn query(kind: LogKindChoice, period: LogPeriod, text: Option<&str>) -> LogQuery {
        LogQuery {
            ticket: 1,
            text: text.map(str::to_string),
            kind,
            period,
            before: None,
        }
    }

    #[test]
    fn the_log_panes_filters_are_the_ones_kassa_log_builds() {
        let now = chrono::Local::now();
        let midnight = now
            .date_naive()
            .and_time(chrono::NaiveTime::MIN)
            .and_local_timezone(chrono::Local)
            .earliest()
            .expect("today has a start");
        let cli = |from: Option<String>, kind: Option<&str>, text: Option<&str>| {
            crate::store::LogQuery {
                from,
                kind: kind.map(str::to_string),
                text: text.map(str::to_string),
                ..Default::default()
            }
            .filter()
            .expect("a valid filter")
        };
        assert_eq!(
            log_filter(
                &query(LogKindChoice::Sales, LogPeriod::Today, Some("mug")),
                now
            )
            .expect("valid"),
            cli(Some(midnight.to_rfc3339()), Some("sale"), Some("mug"))
        );
        let week = midnight.date_naive() - chrono::Days::new(6);
        assert_eq!(
            period_start(now, 7).date_naive(),
            week,
            "today and the six days before"
        );
        for (choice, kind) in [
            (LogKindChoice::Payments, "payment"),
            (LogKindChoice::Returns, "return"),
            (LogKindChoice::Refunds, "refund"),
            (LogKindChoice::Outbox, "outbox"),
            (LogKindChoice::Manager, "manager"),
        ] {
            assert_eq!(
                log_filter(&query(choice, LogPeriod::All, None), now).expect("valid"),
                cli(None, Some(kind), None)
            );
        }
        assert_eq!(
            log_filter(&query(LogKindChoice::All, LogPeriod::All, None), now).expect("valid"),
            LogFilter::default(),
            "everything, like `kassa log` without flags"
        );
    }

    fn entry(kind: &str, at: &str, amount: Option<i64>, detail: serde_json::Value) -> LogEntry {
        let row = crate::store::JournalRow {
            seq: 1,
            at: at.into(),
            terminal_id: "till-1".into(),
            operator: "manager".into(),
            kind: kind.into(),
            sale_id: None,
            attempt_id: None,
            amount,
            currency: amount.map(|_| "SEK".into()),
            klarna_request_id: None,
            klarna_transaction_id: None,
            correlation_id: None,
            detail: detail.clone(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        LogEntry::new(row, detail.to_string(), None)
    }

    #[test]
    fn a_log_row_says_what_happened_when_and_how_much() {
        let now = chrono::Local::now();
        let today = now.with_timezone(&chrono::Utc).to_rfc3339();
        let mut sale = entry(
            "receipt_issued",
            &today,
            Some(14_900),
            serde_json::json!({"receipt_no": 1042}),
        );
        sale.state = Some("paid".into());
        let row = log_row(&sale, now, Language::English);
        assert_eq!(
            row.time,
            now.format("%H:%M").to_string(),
            "today: the time alone"
        );
        assert_eq!(row.state, "Receipt issued · Receipt 1042 · paid");
        assert_eq!(row.amount, "SEK\u{a0}149.00");
        let row = log_row(&sale, now, Language::Swedish);
        assert_eq!(row.state, "Kvitto utfärdat · Kvitto 1042 · betalt");
        assert_eq!(row.amount, "149,00\u{a0}kr");
        let line = entry(
            "line_added",
            &today,
            Some(4_950),
            serde_json::json!({"name": "Socks"}),
        );
        assert_eq!(
            log_row(&line, now, Language::German).state,
            "Zeile hinzugefügt · Socks",
            "the item the line is about"
        );

        let refused = entry(
            "manager_action",
            "2020-02-03T12:00:00Z",
            None,
            serde_json::json!({"action": "open_manager_area", "outcome": "refused"}),
        );
        let row = log_row(&refused, now, Language::English);
        assert_eq!(row.state, "Open manager area · refused");
        assert_eq!(row.amount, "");
        let then = chrono::DateTime::parse_from_rfc3339("2020-02-03T12:00:00Z")
            .expect("a time")
            .with_timezone(&chrono::Local);
        assert_eq!(
            row.time,
            then.format("%Y-%m-%d %H:%M").to_string(),
            "another day: the date too"
        );

        let mut refund = entry(
            "outbox_queued",
            &today,
            Some(12_000),
            serde_json::json!({"operation": "refund", "outbox_id": 3}),
        );
        refund.state = Some("queued".into());
        assert_eq!(
            log_row(&refund, now, Language::English).state,
            "Queued to send: Refund · waiting"
        );
        assert_eq!(
            log_row(&refund, now, Language::Swedish).state,
            "Köad för att skickas: Återbetalning · väntar"
        );
    }

    #[test]
    fn a_refusal_is_said_in_the_screens_language() {
        let e = TerminalError::NotEligible;
        assert_eq!(screen_error(&e, Language::English), e.to_string());
        assert_eq!(
            screen_error(&e, Language::Swedish),
            "Klarna erbjuds inte för det här köpet; ta ett annat betalsätt"
        );
        let invalid = TerminalError::Invalid("amount too large".into());
        assert_eq!(
            screen_error(&invalid, Language::German),
            "Abgelehnt: Betrag zu groß"
        );
        // A detail the catalogue has no words for stays out of a Swedish sentence.
        let odd = TerminalError::Invalid("line 3 has quantity 0".into());
        assert_eq!(
            screen_error(&odd, Language::Swedish),
            "Kassan nekade: kontrollera det som skrevs"
        );
        let pin = TerminalError::Manager(crate::manager::ManagerError::WrongPin);
        assert_eq!(screen_error(&pin, Language::German), "Falsche Leitungs-PIN");
    }

    #[test]
    fn a_till_without_devices_says_so_in_the_manager_area() {
        let panes = manager_panes(&[], &[], None, Language::English);
        assert!(panes.no_devices);
        let panes = manager_panes(
            &[],
            &[],
            Some(&[device(DeviceRole::Printer, "cover_open", false)]),
            Language::English,
        );
        assert!(!panes.no_devices);
        assert_eq!(panes.devices[0].state, "cover open");
        let panes = manager_panes(
            &[],
            &[],
            Some(&[device(DeviceRole::Printer, "cover_open", false)]),
            Language::Swedish,
        );
        assert_eq!(panes.devices[0].state, "luckan öppen");
        assert!(panes.devices[0].device.starts_with("Kvittoskrivare"));
    }
}
