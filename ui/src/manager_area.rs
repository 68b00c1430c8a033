//! The manager area's controllers: the PIN pad's pause after repeated wrong PINs (the agent checks
//! the PIN itself), the transaction log's filters and pages, the X/Z report pane, and the rows of
//! the read-only panes. Plain Rust, no I/O: the agent's `screen` module asks the store and feeds
//! the answers back, tagged so that a late answer to an old question is dropped.

/// Wrong PINs in a row before the PIN pad pauses.
pub const WRONG_PINS_BEFORE_PAUSE: u32 = 5;
/// How long the PIN pad pauses after too many wrong PINs.
pub const PAUSE_MS: i64 = 60_000;

/// What the PIN pad says after a PIN was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinAnswer {
    Opened,
    Wrong,
    /// Too many wrong PINs; no PIN is checked until the pause is over.
    Paused,
    /// The agent is checking the PIN (a deliberately slow hash).
    Checking,
    /// The store has no manager PIN yet; someone must set one on the terminal.
    NoPin,
    /// The PIN could not be checked (the store did not answer); nothing was counted.
    Unavailable,
}

/// One question to the agent about a PIN; an answer to an older one opens nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinCheck(u64);

/// Guards the manager area. The PIN itself is never held here: the agent checks it against the
/// store's hash and this only records the answers, to pause after too many wrong ones.
#[derive(Debug, Clone, Default)]
pub struct ManagerAccess {
    wrong_in_a_row: u32,
    paused_until_ms: Option<i64>,
    unlocked: bool,
    /// The check waiting for the agent's answer, if any.
    checking: Option<u64>,
    last_check: u64,
}

impl ManagerAccess {
    pub fn new() -> Self {
        ManagerAccess::default()
    }

    pub fn is_unlocked(&self) -> bool {
        self.unlocked
    }

    /// Before the agent is asked: a check to ask under, or why not now (paused, or already
    /// checking, so a second tap on Enter does not journal the same PIN twice).
    pub fn begin_check(&mut self, now_ms: i64) -> Result<PinCheck, PinAnswer> {
        if self.paused_until_ms.is_some_and(|until| now_ms < until) {
            return Err(PinAnswer::Paused);
        }
        self.paused_until_ms = None;
        if self.checking.is_some() {
            return Err(PinAnswer::Checking);
        }
        self.last_check += 1;
        self.checking = Some(self.last_check);
        Ok(PinCheck(self.last_check))
    }

    /// The agent's answer to `check`. A right PIN opens the area only if the manager is still
    /// waiting for it (`None` if they left meanwhile); a wrong one always counts towards the pause.
    pub fn record(&mut self, check: PinCheck, matched: bool, now_ms: i64) -> Option<PinAnswer> {
        let current = self.checking == Some(check.0);
        if current {
            self.checking = None;
        }
        if matched {
            if !current {
                return None;
            }
            self.wrong_in_a_row = 0;
            self.unlocked = true;
            return Some(PinAnswer::Opened);
        }
        self.wrong_in_a_row += 1;
        if self.wrong_in_a_row >= WRONG_PINS_BEFORE_PAUSE {
            self.wrong_in_a_row = 0;
            self.paused_until_ms = Some(now_ms.saturating_add(PAUSE_MS));
            return current.then_some(PinAnswer::Paused);
        }
        current.then_some(PinAnswer::Wrong)
    }

    /// The agent could not check the PIN (none is set, or the store failed): it counts for
    /// nothing, and the pad is free for another try.
    pub fn check_failed(&mut self, check: PinCheck) {
        if self.checking == Some(check.0) {
            self.checking = None;
        }
    }

    /// Leaving the manager area locks it again; an answer still on its way opens nothing.
    pub fn lock(&mut self) {
        self.unlocked = false;
        self.checking = None;
    }
}

/// One row of the transaction log, as the log pane shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransactionRow {
    /// "14:02" today, "2026-11-19 14:02" before.
    pub time: String,
    pub amount: String,
    /// What happened and where it stands now ("Receipt issued · paid").
    pub state: String,
}

/// One operation waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboxRow {
    pub operation: String,
    pub state: String,
    pub attempts: String,
}

/// Klarna's health in one SLO category (authorize, capture, refund, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthRow {
    pub category: String,
    pub state: String,
}

/// One device and its state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceRow {
    pub device: String,
    pub state: String,
}

/// The panes of the manager area.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManagerAreaModel {
    /// The log pane's rows (what `LogPane` holds for the current filter).
    pub transactions: Vec<TransactionRow>,
    pub outbox: Vec<OutboxRow>,
    pub health: Vec<HealthRow>,
    pub devices: Vec<DeviceRow>,
    /// The till has no peripherals configured, so the devices pane says so instead of
    /// looking like it is still loading.
    pub no_devices: bool,
}

/// What the log lists, as the manager picks it; the same groups as `kassa log --kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogKindChoice {
    #[default]
    All,
    Sales,
    Payments,
    Returns,
    Refunds,
    Outbox,
    Manager,
}

impl LogKindChoice {
    /// In the order of the buttons on screen.
    pub const ALL: [LogKindChoice; 7] = [
        LogKindChoice::All,
        LogKindChoice::Sales,
        LogKindChoice::Payments,
        LogKindChoice::Returns,
        LogKindChoice::Refunds,
        LogKindChoice::Outbox,
        LogKindChoice::Manager,
    ];

    pub fn index(self) -> i32 {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0) as i32
    }

    pub fn from_index(i: i32) -> Option<Self> {
        usize::try_from(i)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }
}

/// How far back the log goes; "today" and the day counts are the till's local calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogPeriod {
    #[default]
    Today,
    /// Today and the six days before.
    Last7Days,
    /// Today and the 29 days before.
    Last30Days,
    All,
}

impl LogPeriod {
    /// In the order of the buttons on screen.
    pub const ALL: [LogPeriod; 4] = [
        LogPeriod::Today,
        LogPeriod::Last7Days,
        LogPeriod::Last30Days,
        LogPeriod::All,
    ];

    pub fn index(self) -> i32 {
        Self::ALL.iter().position(|p| *p == self).unwrap_or(0) as i32
    }

    pub fn from_index(i: i32) -> Option<Self> {
        usize::try_from(i)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// Calendar days the period covers, counting today; `None` for no limit.
    pub fn days(self) -> Option<u32> {
        match self {
            LogPeriod::Today => Some(1),
            LogPeriod::Last7Days => Some(7),
            LogPeriod::Last30Days => Some(30),
            LogPeriod::All => None,
        }
    }
}

/// A page of the log to read: the filter as picked, and where the page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Hand it back with the answer; only the newest question's answer is shown.
    pub ticket: u64,
    /// The search text, trimmed; `None` when the field is empty.
    pub text: Option<String>,
    pub kind: LogKindChoice,
    pub period: LogPeriod,
    /// `next_before` of the page shown last, for "Show older"; `None` for the newest rows.
    pub before: Option<i64>,
}

/// What the log pane shows besides its rows (those go out with the other panes, in
/// `ManagerAreaModel::transactions`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogPaneView {
    pub text: String,
    pub kind: LogKindChoice,
    pub period: LogPeriod,
    /// Why nothing is listed (a filter the store refused, a failed read); "" otherwise.
    pub problem: String,
    pub can_show_older: bool,
    /// A new search or an older page is on its way.
    pub busy: bool,
}

/// Why the log pane asked the agent for a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// A new filter: the rows shown no longer answer it.
    Filter,
    /// The periodic refresh of the same filter: the rows shown stay meanwhile.
    Refresh,
    /// "Show older": the page goes after the rows shown.
    Older,
}

/// The transaction log pane: the filter, the rows read so far and where the next page starts.
#[derive(Debug, Clone, Default)]
pub struct LogPane {
    text: String,
    kind: LogKindChoice,
    period: LogPeriod,
    rows: Vec<TransactionRow>,
    next_before: Option<i64>,
    /// Older pages were added: the once-a-second refresh would drop them, so it waits.
    paged: bool,
    last_ticket: u64,
    /// The question waiting for an answer.
    waiting: Option<(u64, Asked)>,
    problem: String,
}

impl LogPane {
    pub fn new() -> Self {
        LogPane::default()
    }

    fn ask(&mut self, asked: Asked, before: Option<i64>) -> LogQuery {
        self.last_ticket += 1;
        self.waiting = Some((self.last_ticket, asked));
        let text = self.text.trim();
        LogQuery {
            ticket: self.last_ticket,
            text: (!text.is_empty()).then(|| text.to_owned()),
            kind: self.kind,
            period: self.period,
            before,
        }
    }

    /// A new filter starts again from the newest rows.
    fn refilter(&mut self) -> LogQuery {
        self.paged = false;
        self.next_before = None;
        self.ask(Asked::Filter, None)
    }

    /// The newest rows for the current filter (when the area opens).
    pub fn first_page(&mut self) -> LogQuery {
        self.refilter()
    }

    /// The search field changed; `None` if it did not change what is searched for.
    pub fn set_text(&mut self, text: &str) -> Option<LogQuery> {
        if text == self.text {
            return None;
        }
        let same = text.trim() == self.text.trim();
        self.text = text.to_owned();
        (!same).then(|| self.refilter())
    }

    pub fn choose_kind(&mut self, kind: LogKindChoice) -> Option<LogQuery> {
        if kind == self.kind {
            return None;
        }
        self.kind = kind;
        Some(self.refilter())
    }

    pub fn choose_period(&mut self, period: LogPeriod) -> Option<LogQuery> {
        if period == self.period {
            return None;
        }
        self.period = period;
        Some(self.refilter())
    }

    /// "Show older": the next page after the rows shown, if the last page said there is one.
    /// A refresh on its way is dropped for it (the rows shown still answer the filter).
    pub fn older(&mut self) -> Option<LogQuery> {
        let before = self.next_before?;
        if self.older_waiting() {
            return None;
        }
        Some(self.ask(Asked::Older, Some(before)))
    }

    fn older_waiting(&self) -> bool {
        matches!(self.waiting, Some((_, Asked::Older)))
    }

    /// The periodic refresh: the newest rows again, unless the manager is reading older pages
    /// or an answer is still on its way.
    pub fn refresh(&mut self) -> Option<LogQuery> {
        if self.paged || self.waiting.is_some() {
            return None;
        }
        Some(self.ask(Asked::Refresh, None))
    }

    /// The agent's page for `ticket`; an answer to an older question changes nothing. Returns
    /// whether the pane changed.
    pub fn page_read(
        &mut self,
        ticket: u64,
        rows: Vec<TransactionRow>,
        next_before: Option<i64>,
    ) -> bool {
        let Some((waiting, asked)) = self.waiting else {
            return false;
        };
        if waiting != ticket {
            return false;
        }
        self.waiting = None;
        self.problem.clear();
        if asked == Asked::Older {
            self.rows.extend(rows);
            self.paged = true;
        } else {
            self.rows = rows;
        }
        self.next_before = next_before;
        true
    }

    /// The agent could not read the page; `message` says why (a filter it refused, a failed read).
    pub fn page_failed(&mut self, ticket: u64, message: impl Into<String>) -> bool {
        if self.waiting.map(|(t, _)| t) != Some(ticket) {
            return false;
        }
        self.waiting = None;
        self.rows.clear();
        self.next_before = None;
        self.problem = message.into();
        true
    }

    pub fn rows(&self) -> &[TransactionRow] {
        &self.rows
    }

    pub fn view(&self) -> LogPaneView {
        LogPaneView {
            text: self.text.clone(),
            kind: self.kind,
            period: self.period,
            problem: self.problem.clone(),
            can_show_older: self.next_before.is_some() && !self.older_waiting(),
            // The refresh is not worth a word; a new search or page may take a moment.
            busy: matches!(self.waiting, Some((_, Asked::Filter | Asked::Older))),
        }
    }

    /// Leaving the manager area: nothing of the log stays, and the filter starts afresh.
    pub fn clear(&mut self) {
        let last_ticket = self.last_ticket;
        *self = LogPane {
            last_ticket,
            ..LogPane::default()
        };
    }
}

/// What the report pane is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ReportStage {
    #[default]
    Idle,
    Reading,
    /// "Close day" was tapped; waiting for the manager to confirm.
    Confirming,
    Closing,
    Printing,
}

/// What the report pane shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportPaneView {
    /// The report as the printer prints it; "" before one is asked for.
    pub text: String,
    pub confirming: bool,
    pub busy: bool,
    pub can_ask: bool,
    pub has_printer: bool,
    pub can_print: bool,
    /// The report shown was printed.
    pub printed: bool,
    /// What went wrong, when `problem`.
    pub message: String,
    pub problem: bool,
    /// While a day close waits for its confirmation: what is still open, one line each ("" when
    /// nothing is, or before the till has looked).
    pub still_open: String,
}

/// The X/Z report pane: ask for a report, confirm a day close, print what is shown.
#[derive(Debug, Clone, Default)]
pub struct ReportPane {
    stage: ReportStage,
    text: String,
    still_open: Vec<String>,
    has_printer: bool,
    printed: bool,
    message: String,
    problem: bool,
}

impl ReportPane {
    pub fn new() -> Self {
        ReportPane::default()
    }

    fn free(&self) -> bool {
        matches!(self.stage, ReportStage::Idle | ReportStage::Confirming)
    }

    /// Whether the till has a receipt printer to print reports on.
    pub fn set_printer(&mut self, has_printer: bool) {
        self.has_printer = has_printer;
    }

    /// The X-report was asked for; `false` if something else is under way.
    pub fn x_report(&mut self) -> bool {
        if !self.free() {
            return false;
        }
        self.stage = ReportStage::Reading;
        self.say("", false);
        true
    }

    /// "Close day" was tapped: nothing happens until the manager confirms.
    pub fn ask_close_day(&mut self) {
        if self.stage == ReportStage::Idle {
            self.stage = ReportStage::Confirming;
            self.say("", false);
        }
    }

    pub fn cancel_close_day(&mut self) {
        if self.stage == ReportStage::Confirming {
            self.stage = ReportStage::Idle;
        }
        self.still_open.clear();
    }

    /// What the till found still open for the day close being confirmed (ignored once the
    /// question is gone).
    pub fn still_open(&mut self, items: Vec<String>) {
        if self.stage == ReportStage::Confirming {
            self.still_open = items;
        }
    }

    /// The manager confirmed the day close; `true` means: close it now.
    pub fn confirm_close_day(&mut self) -> bool {
        if self.stage != ReportStage::Confirming {
            return false;
        }
        self.stage = ReportStage::Closing;
        self.still_open.clear();
        true
    }

    fn say(&mut self, message: impl Into<String>, problem: bool) {
        self.message = message.into();
        self.problem = problem;
        self.printed = false;
    }

    pub fn report_shown(&mut self, text: impl Into<String>) {
        self.stage = ReportStage::Idle;
        self.text = text.into();
    }

    pub fn report_failed(&mut self, message: impl Into<String>) {
        self.stage = ReportStage::Idle;
        self.say(message, true);
    }

    /// "Print" was tapped; `true` means: print the report shown.
    pub fn print(&mut self) -> bool {
        if !self.can_print() {
            return false;
        }
        self.stage = ReportStage::Printing;
        self.say("", false);
        true
    }

    pub fn printed(&mut self) {
        self.stage = ReportStage::Idle;
        self.printed = true;
    }

    pub fn print_failed(&mut self, message: impl Into<String>) {
        self.report_failed(message);
    }

    fn can_print(&self) -> bool {
        self.has_printer && !self.text.is_empty() && self.stage == ReportStage::Idle
    }

    pub fn view(&self) -> ReportPaneView {
        ReportPaneView {
            text: self.text.clone(),
            confirming: self.stage == ReportStage::Confirming,
            busy: !self.free(),
            can_ask: self.stage == ReportStage::Idle,
            has_printer: self.has_printer,
            can_print: self.can_print(),
            printed: self.printed,
            message: self.message.clone(),
            still_open: if self.stage == ReportStage::Confirming {
                self.still_open.join("\n")
            } else {
                String::new()
            },
            problem: self.problem,
        }
    }

    /// Leaving the manager area: no report stays on screen.
    pub fn clear(&mut self) {
        *self = ReportPane {
            has_printer: self.has_printer,
            ..ReportPane::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(time: &str) -> TransactionRow {
        TransactionRow {
            time: time.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_agents_yes_opens_and_leaving_locks_again() {
        let mut access = ManagerAccess::new();
        let check = access.begin_check(0).expect("may check");
        assert_eq!(access.record(check, false, 0), Some(PinAnswer::Wrong));
        assert!(!access.is_unlocked());
        let check = access.begin_check(0).expect("may check");
        assert_eq!(access.record(check, true, 0), Some(PinAnswer::Opened));
        assert!(access.is_unlocked());
        access.lock();
        assert!(!access.is_unlocked());
    }

    #[test]
    fn one_pin_is_checked_at_a_time() {
        let mut access = ManagerAccess::new();
        let _check = access.begin_check(0).expect("may check");
        assert_eq!(access.begin_check(0), Err(PinAnswer::Checking));
    }

    #[test]
    fn a_right_pin_answered_after_the_manager_left_opens_nothing() {
        let mut access = ManagerAccess::new();
        let check = access.begin_check(0).expect("may check");
        access.lock();
        assert_eq!(access.record(check, true, 0), None);
        assert!(!access.is_unlocked());
        // The pad is free for the next manager.
        assert!(access.begin_check(0).is_ok());
    }

    #[test]
    fn a_pin_that_could_not_be_checked_counts_for_nothing() {
        let mut access = ManagerAccess::new();
        for _ in 0..WRONG_PINS_BEFORE_PAUSE + 2 {
            let check = access.begin_check(0).expect("never paused");
            access.check_failed(check);
        }
        assert!(!access.is_unlocked());
    }

    #[test]
    fn five_wrong_pins_pause_the_pad_for_a_minute() {
        let mut access = ManagerAccess::new();
        for _ in 1..WRONG_PINS_BEFORE_PAUSE {
            let check = access.begin_check(0).expect("may check");
            assert_eq!(access.record(check, false, 0), Some(PinAnswer::Wrong));
        }
        let check = access.begin_check(0).expect("may check");
        assert_eq!(access.record(check, false, 0), Some(PinAnswer::Paused));
        assert_eq!(
            access.begin_check(PAUSE_MS - 1),
            Err(PinAnswer::Paused),
            "not even the right PIN is asked about"
        );
        let check = access.begin_check(PAUSE_MS).expect("the pause is over");
        assert_eq!(
            access.record(check, true, PAUSE_MS),
            Some(PinAnswer::Opened)
        );
    }

    #[test]
    fn a_new_filter_asks_for_the_newest_rows_and_drops_older_answers() {
        let mut log = LogPane::new();
        let first = log.first_page();
        assert_eq!(first.kind, LogKindChoice::All);
        assert_eq!(first.period, LogPeriod::Today);
        assert_eq!((first.text.as_deref(), first.before), (None, None));
        let typed = log.set_text(" mug ").expect("a new search");
        assert_eq!(typed.text.as_deref(), Some("mug"), "trimmed");
        assert!(log.set_text("mug").is_none(), "the same search");
        // The answer to the first question arrives late: it is not shown.
        assert!(!log.page_read(first.ticket, vec![row("old")], None));
        assert!(log.view().busy);
        assert!(log.page_read(typed.ticket, vec![row("12:00")], Some(7)));
        assert_eq!(log.rows(), [row("12:00")]);
        let view = log.view();
        assert!(view.can_show_older && !view.busy);
        let sales = log.choose_kind(LogKindChoice::Sales).expect("a new kind");
        assert_eq!(
            (sales.kind, sales.text.as_deref(), sales.before),
            (LogKindChoice::Sales, Some("mug"), None)
        );
        assert!(log.choose_kind(LogKindChoice::Sales).is_none());
        let week = log.choose_period(LogPeriod::Last7Days).expect("a period");
        assert_eq!(week.period.days(), Some(7));
    }

    #[test]
    fn show_older_adds_the_next_page_and_stops_the_refresh() {
        let mut log = LogPane::new();
        let first = log.first_page();
        log.page_read(first.ticket, vec![row("12:00"), row("11:00")], Some(41));
        let refresh = log.refresh().expect("the newest rows again");
        assert!(
            log.view().can_show_older,
            "a refresh does not hold up the next page"
        );
        let older = log.older().expect("there are older rows");
        assert_eq!(older.before, Some(41));
        assert!(!log.page_read(refresh.ticket, vec![], None), "superseded");
        assert!(log.older().is_none(), "one page at a time");
        assert!(!log.view().can_show_older);
        assert!(log.refresh().is_none(), "not while a page is on its way");
        log.page_read(older.ticket, vec![row("10:00")], None);
        assert_eq!(log.rows().len(), 3);
        assert!(!log.view().can_show_older, "that was the last page");
        assert!(log.older().is_none());
        assert!(log.refresh().is_none(), "the manager is reading older rows");
        // A new filter starts from the newest rows again, and so does the refresh.
        let today = log.choose_period(LogPeriod::All).expect("new period");
        log.page_read(today.ticket, vec![row("12:00")], None);
        assert!(log.refresh().is_some());
    }

    #[test]
    fn a_refused_filter_is_said_plainly_and_the_rows_go() {
        let mut log = LogPane::new();
        let first = log.first_page();
        log.page_read(first.ticket, vec![row("12:00")], None);
        let q = log.set_text("x").expect("new text");
        assert!(log.page_failed(q.ticket, "text: too short"));
        assert!(log.rows().is_empty());
        assert_eq!(log.view().problem, "text: too short");
        let q = log.set_text("").expect("cleared");
        assert_eq!(q.text, None);
        log.page_read(q.ticket, vec![row("12:00")], None);
        assert_eq!(log.view().problem, "");
        log.clear();
        assert_eq!(log.view(), LogPaneView::default());
    }

    #[test]
    fn a_day_close_needs_confirming_and_a_report_prints_only_on_a_printer() {
        let mut reports = ReportPane::new();
        assert!(!reports.view().can_print, "nothing to print yet");
        reports.ask_close_day();
        assert!(reports.view().confirming);
        // What is still open stands beside the question, and goes with it.
        reports.still_open(vec!["Sale opened 14:02 · lines: 3 · 167,50 kr".into()]);
        assert_eq!(
            reports.view().still_open,
            "Sale opened 14:02 · lines: 3 · 167,50 kr"
        );
        reports.cancel_close_day();
        assert!(!reports.view().confirming);
        assert_eq!(reports.view().still_open, "");
        reports.still_open(vec!["late".into()]);
        assert_eq!(reports.view().still_open, "", "a late answer is not shown");
        assert!(!reports.confirm_close_day(), "not without asking first");
        reports.ask_close_day();
        assert!(reports.confirm_close_day());
        assert!(reports.view().busy);
        assert!(!reports.x_report(), "one thing at a time");
        reports.report_shown("Z-REPORT");
        let view = reports.view();
        assert_eq!(view.text, "Z-REPORT");
        assert!(!view.can_print, "no printer");
        assert!(!reports.print());
        reports.set_printer(true);
        assert!(reports.print());
        reports.print_failed("the report was not printed: out of paper");
        let view = reports.view();
        assert!(view.problem && view.message.contains("out of paper"));
        assert!(view.can_print, "it can be printed again");
        assert!(reports.print());
        reports.printed();
        let view = reports.view();
        assert!(view.printed && !view.problem);
        reports.clear();
        assert_eq!(reports.view().text, "");
        assert!(reports.view().has_printer);
    }
}
