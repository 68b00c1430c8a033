//! What the cashier's screen shows for the sale in front of them: which screen (sale, payment,
//! result), the lines and total as text, the payment's live state and time left. Fed with whole
//! snapshots of the sale; never goes backwards when a late answer arrives after a newer one.

use crate::Language;
use crate::amount::{Currency, format_amount};

/// Where the sale stands in the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaleStatus {
    Open,
    Paid,
    Abandoned,
}

/// Where the latest Klarna payment attempt of the sale stands, as the screen tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentPhase {
    /// The till is asking Klarna for a payment request.
    Requested,
    /// The QR code is on screen; nobody has scanned it yet.
    AwaitingCustomer,
    CustomerOpened,
    /// The customer approved; the till is confirming with Klarna.
    Approved,
    Paid,
    Declined,
    Expired,
    Canceled,
    Failed,
    /// Klarna's answer could not be read: the customer may have been charged; a manager decides.
    InDoubt,
}

impl PaymentPhase {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PaymentPhase::Paid
                | PaymentPhase::Declined
                | PaymentPhase::Expired
                | PaymentPhase::Canceled
                | PaymentPhase::Failed
        )
    }

    /// How far along an attempt is; an attempt only ever moves forward.
    fn progress(self) -> u8 {
        match self {
            PaymentPhase::Requested => 0,
            PaymentPhase::AwaitingCustomer => 1,
            PaymentPhase::CustomerOpened => 2,
            PaymentPhase::Approved => 3,
            _ => 4,
        }
    }
}

/// One line of the sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSnapshot {
    /// The line's number in the sale: what an edit names.
    pub line_no: i64,
    pub name: String,
    pub quantity: i64,
    /// Minor units of the sale's currency.
    pub unit_price: i64,
    pub total: i64,
}

/// The latest payment attempt of a sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSnapshot {
    pub attempt_id: String,
    pub phase: PaymentPhase,
    /// What the QR code encodes; absent until Klarna has issued the request.
    pub url: Option<String>,
    /// When the till gives up waiting for the customer, in milliseconds since the Unix epoch.
    pub deadline_unix_ms: Option<i64>,
    /// Klarna's or the till's words on why the attempt ended the way it did.
    pub reason: Option<String>,
}

/// The whole sale as the agent last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleSnapshot {
    pub sale_id: String,
    pub status: SaleStatus,
    pub currency: Currency,
    pub lines: Vec<LineSnapshot>,
    /// Sum of the lines, in minor units.
    pub total: i64,
    /// What is left to pay after the tenders taken.
    pub due: i64,
    /// Cash and card terminal parts, oldest first (voided ones left out).
    pub tenders: Vec<TenderSnapshot>,
    pub receipt_no: Option<i64>,
    /// How many payment attempts the sale has had; orders snapshots of the same sale.
    pub attempts: usize,
    /// How many times the sale's lines changed; orders snapshots of the same sale (a removed
    /// line makes a newer snapshot with fewer lines).
    pub revision: i64,
    pub payment: Option<PaymentSnapshot>,
}

/// How a part of the sale was paid, other than Klarna.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenderKind {
    Cash,
    Card,
}

/// A part of the sale paid in cash or on the card terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenderSnapshot {
    pub kind: TenderKind,
    pub amount: i64,
    pub given: i64,
    pub change: i64,
}

/// What became of a receipt reprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reprint {
    Printing,
    Printed,
    NoPrinter,
    /// The printer's or the agent's words on why.
    Failed(String),
}

/// Why a payment could not even start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Klarna could not be reached (network, outage, timeouts).
    KlarnaOffline,
    /// Klarna is not offered for this purchase (amount, currency, market).
    NotOffered,
    /// Anything else, in the agent's words.
    Refused(String),
}

/// How a payment ended, as the result screen tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Paid,
    Declined,
    Expired,
    Canceled,
    Failed,
    KlarnaOffline,
    NotOffered,
    Refused,
    /// The customer may have been charged: no other payment until a manager decides.
    InDoubt,
}

/// The screen in front of the cashier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Sale,
    /// Cash or the card terminal: the amount given, the keypad.
    Tender,
    /// A new price for one line: the keypad, a reason and (beyond the store's limit) a manager.
    Price,
    Payment,
    Result(Outcome),
}

/// Something the cashier can add by tapping (the demo's catalogue, or quick keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub name: String,
    pub reference: String,
    pub unit_price: i64,
}

/// One line as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineView {
    pub name: String,
    pub quantity: String,
    pub amount: String,
}

/// Most digits the tender keypad takes (a till's largest note count is far below it).
pub const MAX_ENTRY_DIGITS: usize = 9;

/// Everything the screens show, as text and flags, ready to copy into the Slint globals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleScreenView {
    pub screen: Screen,
    pub lines: Vec<LineView>,
    pub total: String,
    pub has_sale: bool,
    pub can_pay: bool,
    /// Product buttons as (name, price) text.
    pub products: Vec<(String, String)>,
    pub phase: PaymentPhase,
    /// What the QR code must encode while the payment screen is up.
    pub payment_url: Option<String>,
    pub countdown: String,
    pub receipt_no: String,
    pub reason: String,
    /// What is left to pay, when part of the sale is paid ("" otherwise).
    pub due: String,
    /// The parts paid so far, one text each ("Cash 100,00 kr").
    pub tenders: Vec<String>,
    /// The change to hand back after cash ("" when none).
    pub change: String,
    /// Lines can be changed (an open sale, nothing paid or being paid).
    pub lines_editable: bool,
    /// The tender screen: card terminal (true) or cash, and the amount typed so far.
    pub card_mode: bool,
    pub entry: String,
    /// Why the last tender was refused ("" when it was not).
    pub tender_problem: String,
    /// What became of the last reprint ("" when none was asked for).
    pub notice: String,
    /// The line whose price is being changed: its name and price now ("" when none).
    pub pricing_name: String,
    pub pricing_price: String,
    /// The price screen takes a percentage off the whole sale.
    pub discount_mode: bool,
}

/// The controller of the cashier's sale, payment and result screens.
#[derive(Debug, Clone)]
pub struct SaleScreenModel {
    language: Language,
    /// The till's currency, for the total before the first item.
    currency: Currency,
    products: Vec<Product>,
    sale: Option<SaleSnapshot>,
    /// The attempt whose result the cashier has moved past; its result is not shown again.
    dismissed_attempt: Option<String>,
    /// Set when a payment could not start; cleared by the next attempt or by moving on.
    refusal: Option<Refusal>,
    /// The cashier pressed "Pay" and the agent has not answered yet.
    starting: bool,
    /// The tender screen is up, in card (true) or cash mode.
    tendering: Option<bool>,
    /// Digits typed on the tender keypad, in major units with an optional decimal part.
    entry: String,
    /// Why the last tender was refused, in the agent's words.
    tender_problem: String,
    /// A tender was pressed and the agent has not answered: a second press takes nothing.
    tender_busy: bool,
    /// The line (by number) whose price is being changed.
    pricing: Option<i64>,
    /// The price screen is taking a percentage off the whole sale instead.
    discounting: bool,
    /// What became of the last reprint, for the result screen ("" when none was asked for).
    notice: String,
}

/// "m:ss" until the deadline (rounded up, so "0:00" means the time is really up).
pub fn countdown_text(deadline_unix_ms: i64, now_unix_ms: i64) -> String {
    let left_ms = deadline_unix_ms.saturating_sub(now_unix_ms).max(0);
    let secs = left_ms.saturating_add(999) / 1000;
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

impl SaleScreenModel {
    pub fn new(language: Language, currency: Currency) -> Self {
        SaleScreenModel {
            language,
            currency,
            products: Vec::new(),
            sale: None,
            dismissed_attempt: None,
            refusal: None,
            starting: false,
            tendering: None,
            entry: String::new(),
            tender_problem: String::new(),
            tender_busy: false,
            pricing: None,
            discounting: false,
            notice: String::new(),
        }
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn set_language(&mut self, language: Language) {
        self.language = language;
    }

    pub fn set_products(&mut self, products: Vec<Product>) {
        self.products = products;
    }

    pub fn product(&self, index: usize) -> Option<&Product> {
        self.products.get(index)
    }

    pub fn sale(&self) -> Option<&SaleSnapshot> {
        self.sale.as_ref()
    }

    /// The sale the screen follows; events about other sales are not for this till's screen.
    pub fn sale_id(&self) -> Option<&str> {
        self.sale.as_ref().map(|s| s.sale_id.as_str())
    }

    /// A state of the sale from the agent. A snapshot older than the one shown (a slow answer
    /// overtaken by an event) is ignored; returns whether the screen changed.
    pub fn sale_changed(&mut self, snapshot: SaleSnapshot) -> bool {
        if let Some(current) = &self.sale
            && current.sale_id == snapshot.sale_id
            && is_older(&snapshot, current)
        {
            return false;
        }
        let new_attempt = snapshot.payment.as_ref().is_some_and(|p| {
            self.sale
                .as_ref()
                .and_then(|s| s.payment.as_ref())
                .is_none_or(|old| old.attempt_id != p.attempt_id)
        });
        if new_attempt {
            self.starting = false;
            self.refusal = None;
        }
        if self.sale_id() != Some(snapshot.sale_id.as_str()) {
            self.dismissed_attempt = None;
            self.refusal = None;
            self.starting = false;
            // Nothing typed for another sale carries over to this one.
            self.pricing = None;
            self.discounting = false;
            self.tendering = None;
            self.entry.clear();
            self.tender_busy = false;
            self.tender_problem.clear();
            self.notice.clear();
        }
        if self.sale.as_ref() == Some(&snapshot) {
            return false;
        }
        self.sale = Some(snapshot);
        true
    }

    /// Whether "Pay with Klarna" can be pressed now.
    pub fn can_pay(&self) -> bool {
        let Some(sale) = &self.sale else { return false };
        sale.status == SaleStatus::Open
            && sale.due > 0
            && !self.starting
            && sale.payment.as_ref().is_none_or(|p| p.phase.is_final())
    }

    /// The cashier pressed "Pay with Klarna" or "Try again"; false when there is nothing to pay.
    pub fn payment_starting(&mut self) -> bool {
        if !self.can_pay() {
            return false;
        }
        self.dismiss_result();
        self.starting = true;
        true
    }

    /// The agent said no before any QR code was shown.
    pub fn payment_refused(&mut self, refusal: Refusal) {
        self.starting = false;
        self.refusal = Some(refusal);
    }

    /// The agent accepted the payment; its state arrives with the next snapshot.
    pub fn payment_started(&mut self) {
        self.starting = false;
    }

    /// "Back to sale" or "Other payment method": the result is dealt with.
    /// What became of a reprint the cashier asked for, said on the result screen.
    pub fn reprint_done(&mut self, outcome: Reprint) {
        self.notice = match outcome {
            Reprint::Printing => crate::words::tr(self.language, "Printing the receipt…"),
            Reprint::Printed => crate::words::tr(self.language, "Receipt printed"),
            Reprint::NoPrinter => {
                crate::words::tr(self.language, "This till has no receipt printer")
            }
            Reprint::Failed(why) => {
                crate::words::trf(self.language, "The receipt was not printed: {}", &[&why])
            }
        };
    }

    pub fn dismiss_result(&mut self) {
        self.refusal = None;
        self.notice.clear();
        self.dismissed_attempt = self
            .sale
            .as_ref()
            .and_then(|s| s.payment.as_ref())
            .map(|p| p.attempt_id.clone());
    }

    /// The sale is over (paid and done, or voided): the next item starts a new one.
    pub fn sale_closed(&mut self) {
        self.notice.clear();
        self.pricing = None;
        self.discounting = false;
        self.tender_busy = false;
        self.tender_problem.clear();
        self.sale = None;
        self.refusal = None;
        self.dismissed_attempt = None;
        self.starting = false;
        self.tendering = None;
        self.entry.clear();
    }

    /// Whether the sale's lines can change now: open, nothing paid, nothing being paid.
    pub fn lines_editable(&self) -> bool {
        self.sale.as_ref().is_some_and(|s| {
            s.status == SaleStatus::Open
                && s.due == s.total
                && !self.starting
                && s.payment.as_ref().is_none_or(|p| p.phase.is_final())
        })
    }

    /// The line at `index` on screen, by its number in the sale.
    pub fn line(&self, index: usize) -> Option<&LineSnapshot> {
        self.sale.as_ref()?.lines.get(index)
    }

    /// "Price" on the line at `index`: the price screen opens for it (while lines can change).
    pub fn open_price(&mut self, index: usize) -> bool {
        if !self.lines_editable() {
            return false;
        }
        let Some(line) = self.line(index) else {
            return false;
        };
        self.pricing = Some(line.line_no);
        self.entry.clear();
        self.tender_problem.clear();
        true
    }

    /// The line whose price is being changed.
    pub fn pricing(&self) -> Option<&LineSnapshot> {
        let no = self.pricing?;
        self.sale.as_ref()?.lines.iter().find(|l| l.line_no == no)
    }

    /// "Discount": the price screen opens for a percentage off the whole sale.
    pub fn open_discount(&mut self) -> bool {
        if !self.lines_editable() || self.sale.as_ref().is_none_or(|s| s.lines.is_empty()) {
            return false;
        }
        self.pricing = None;
        self.discounting = true;
        self.entry.clear();
        self.tender_problem.clear();
        true
    }

    /// Whether the price screen takes a percentage off the whole sale.
    pub fn discounting(&self) -> bool {
        self.discounting
    }

    /// The keypad's whole percentage, 1 to 100 (`None` for anything else).
    pub fn entry_percent(&self) -> Option<u32> {
        let p: u32 = self.entry.parse().ok()?;
        (1..=100).contains(&p).then_some(p)
    }

    /// Back from the price screen (or the price was set).
    pub fn close_price(&mut self) {
        self.discounting = false;
        self.pricing = None;
        self.entry.clear();
        self.tender_problem.clear();
    }

    /// The agent took the new price or discount: the price screen closes.
    pub fn price_set(&mut self) {
        self.close_price();
        self.tender_busy = false;
    }

    /// "Cash or card": the tender screen opens (when there is something to pay another way).
    pub fn open_tender(&mut self) -> bool {
        if !self.can_pay() {
            return false;
        }
        self.dismiss_result();
        self.tendering = Some(false);
        self.entry.clear();
        true
    }

    /// Back from the tender screen without taking anything.
    pub fn close_tender(&mut self) {
        self.tendering = None;
        self.entry.clear();
        self.tender_problem.clear();
    }

    /// Cash (false) or card terminal (true) on the tender screen.
    pub fn set_card_mode(&mut self, card: bool) {
        if self.tendering.is_some() {
            self.tendering = Some(card);
            self.entry.clear();
        }
    }

    /// A key of the tender keypad: a digit, "," (decimals), "C" (clear) or "<" (erase one).
    pub fn keypad(&mut self, key: &str) {
        self.tender_problem.clear();
        let decimals = self
            .sale
            .as_ref()
            .map_or(self.currency, |s| s.currency)
            .exponent() as usize;
        match key {
            "C" => self.entry.clear(),
            "<" => {
                self.entry.pop();
            }
            "," if decimals > 0 && !self.entry.contains(',') => {
                if self.entry.is_empty() {
                    self.entry.push('0');
                }
                self.entry.push(',');
            }
            d if d.len() == 1 && d.as_bytes()[0].is_ascii_digit() => {
                let digits = self.entry.chars().filter(char::is_ascii_digit).count();
                let after_comma = self.entry.split_once(',').map_or(0, |(_, f)| f.len());
                if digits < MAX_ENTRY_DIGITS
                    && (!self.entry.contains(',') || after_comma < decimals)
                    && !(self.entry == "0" && d == "0")
                {
                    if self.entry == "0" {
                        self.entry.clear();
                    }
                    self.entry.push_str(d);
                }
            }
            _ => {}
        }
    }

    /// The keypad's amount in minor units, `None` while nothing is typed.
    pub fn entry_minor(&self) -> Option<i64> {
        if self.entry.is_empty() {
            return None;
        }
        let exp = self
            .sale
            .as_ref()
            .map_or(self.currency, |s| s.currency)
            .exponent();
        let (whole, frac) = self.entry.split_once(',').unwrap_or((&self.entry, ""));
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut frac = frac.to_string();
        while frac.len() < exp as usize {
            frac.push('0');
        }
        let frac: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        whole
            .checked_mul(10i64.checked_pow(exp)?)?
            .checked_add(frac)
    }

    /// "Take cash", "Exact amount" or "Card paid" was pressed: true if it may go to the agent
    /// (false while the last press is still being answered, so a double tap takes one tender).
    pub fn tender_pressed(&mut self) -> bool {
        if self.tender_busy
            || (self.tendering.is_none() && self.pricing.is_none() && !self.discounting)
        {
            return false;
        }
        self.tender_busy = true;
        true
    }

    /// A tender was taken: the screen goes back to the sale (or on to its receipt).
    pub fn tender_taken(&mut self) {
        self.tender_busy = false;
        self.tendering = None;
        self.entry.clear();
        self.tender_problem.clear();
    }

    /// A tender was refused: the tender screen stays, saying why.
    pub fn tender_refused(&mut self, why: String) {
        self.tender_busy = false;
        self.tender_problem = why;
    }

    pub fn screen(&self) -> Screen {
        let Some(sale) = &self.sale else {
            return Screen::Sale;
        };
        match sale.status {
            SaleStatus::Paid => return Screen::Result(Outcome::Paid),
            SaleStatus::Abandoned => return Screen::Sale,
            SaleStatus::Open => {}
        }
        if let Some(p) = &sale.payment {
            // In doubt: said until the cashier has read it; the sale screen then offers no Pay.
            if p.phase == PaymentPhase::InDoubt {
                if self.dismissed_attempt.as_deref() != Some(p.attempt_id.as_str()) {
                    return Screen::Result(Outcome::InDoubt);
                }
                return Screen::Sale;
            }
            if !p.phase.is_final() {
                return Screen::Payment;
            }
        }
        if self.lines_editable() && (self.discounting || self.pricing().is_some()) {
            return Screen::Price;
        }
        if self.tendering.is_some() && sale.payment.as_ref().is_none_or(|p| p.phase.is_final()) {
            return Screen::Tender;
        }
        if let Some(r) = &self.refusal {
            return Screen::Result(match r {
                Refusal::KlarnaOffline => Outcome::KlarnaOffline,
                Refusal::NotOffered => Outcome::NotOffered,
                Refusal::Refused(_) => Outcome::Refused,
            });
        }
        if self.starting {
            return Screen::Payment;
        }
        match &sale.payment {
            Some(p) if self.dismissed_attempt.as_deref() != Some(p.attempt_id.as_str()) => {
                Screen::Result(match p.phase {
                    PaymentPhase::Paid => Outcome::Paid,
                    PaymentPhase::Declined => Outcome::Declined,
                    PaymentPhase::Expired => Outcome::Expired,
                    PaymentPhase::Canceled => Outcome::Canceled,
                    _ => Outcome::Failed,
                })
            }
            _ => Screen::Sale,
        }
    }

    /// The payment link the QR code shows, while the payment screen is up.
    pub fn payment_url(&self) -> Option<&str> {
        if self.screen() != Screen::Payment {
            return None;
        }
        self.sale.as_ref()?.payment.as_ref()?.url.as_deref()
    }

    /// The time left to the in-store timeout, or "" when no payment is waiting.
    pub fn countdown(&self, now_unix_ms: i64) -> String {
        if self.screen() != Screen::Payment {
            return String::new();
        }
        self.sale
            .as_ref()
            .and_then(|s| s.payment.as_ref())
            .and_then(|p| p.deadline_unix_ms)
            .map(|d| countdown_text(d, now_unix_ms))
            .unwrap_or_default()
    }

    pub fn view(&self, now_unix_ms: i64) -> SaleScreenView {
        let currency = self.sale.as_ref().map_or(&self.currency, |s| &s.currency);
        let money = |minor: i64| format_amount(minor, currency, self.language);
        let screen = self.screen();
        let lines = self.sale.as_ref().map_or_else(Vec::new, |s| {
            s.lines
                .iter()
                .map(|l| LineView {
                    name: l.name.clone(),
                    quantity: format!("{} ×", l.quantity),
                    amount: money(l.total),
                })
                .collect()
        });
        let payment = self.sale.as_ref().and_then(|s| s.payment.as_ref());
        let phase = match (screen, payment) {
            (Screen::Payment, Some(p)) if !p.phase.is_final() => p.phase,
            (Screen::Payment, _) => PaymentPhase::Requested,
            (_, Some(p)) => p.phase,
            (_, None) => PaymentPhase::Requested,
        };
        let reason = match (&self.refusal, screen) {
            (Some(Refusal::Refused(why)), Screen::Result(_)) => why.clone(),
            (None, Screen::Result(o)) if o != Outcome::Paid => payment
                .and_then(|p| p.reason.as_deref())
                .map(|r| crate::words::tr(self.language, r))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let sale = self.sale.as_ref();
        let tenders: Vec<String> = sale.map_or_else(Vec::new, |s| {
            s.tenders
                .iter()
                .map(|t| match t.kind {
                    TenderKind::Cash => format!("{} {}", tr_cash(self.language), money(t.given)),
                    TenderKind::Card => format!("{} {}", tr_card(self.language), money(t.amount)),
                })
                .collect()
        });
        let due = match sale {
            Some(s) if s.status == SaleStatus::Open && s.due != s.total => money(s.due),
            _ => String::new(),
        };
        let change = sale
            .and_then(|s| s.tenders.iter().rev().find(|t| t.kind == TenderKind::Cash))
            .filter(|t| t.change > 0)
            .map(|t| money(t.change))
            .unwrap_or_default();
        SaleScreenView {
            due,
            tenders,
            change,
            lines_editable: self.lines_editable(),
            card_mode: self.tendering == Some(true),
            entry: self.entry.clone(),
            tender_problem: self.tender_problem.clone(),
            notice: self.notice.clone(),
            discount_mode: self.discounting,
            pricing_name: self.pricing().map(|l| l.name.clone()).unwrap_or_default(),
            pricing_price: self
                .pricing()
                .map(|l| money(l.unit_price))
                .unwrap_or_default(),
            screen,
            lines,
            total: money(self.sale.as_ref().map_or(0, |s| s.total)),
            has_sale: self
                .sale
                .as_ref()
                .is_some_and(|s| s.status == SaleStatus::Open),
            can_pay: self.can_pay(),
            products: self
                .products
                .iter()
                .map(|p| {
                    (
                        p.name.clone(),
                        format_amount(p.unit_price, &self.currency, self.language),
                    )
                })
                .collect(),
            phase,
            payment_url: self.payment_url().map(str::to_owned),
            countdown: self.countdown(now_unix_ms),
            receipt_no: self
                .sale
                .as_ref()
                .and_then(|s| s.receipt_no)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            reason,
        }
    }
}

fn tr_cash(language: Language) -> &'static str {
    match language {
        Language::English => "Cash",
        Language::Swedish => "Kontant",
        Language::German => "Bar",
    }
}

fn tr_card(language: Language) -> &'static str {
    match language {
        Language::English => "Card",
        Language::Swedish => "Kort",
        Language::German => "Karte",
    }
}

/// Whether `new` is a state of the same sale from before `current` (a late, stale answer).
fn is_older(new: &SaleSnapshot, current: &SaleSnapshot) -> bool {
    // A sale only ever leaves "open": ended elsewhere (abandoned through the API), it is news.
    if current.status == SaleStatus::Open && new.status != SaleStatus::Open {
        return false;
    }
    if current.status != SaleStatus::Open && new.status == SaleStatus::Open {
        return true;
    }
    if new.revision < current.revision
        || new.attempts < current.attempts
        || new.tenders.len() < current.tenders.len()
    {
        return true;
    }
    match (&new.payment, &current.payment) {
        (None, Some(_)) => true,
        (Some(n), Some(c)) if n.attempt_id == c.attempt_id => {
            n.phase.progress() < c.phase.progress()
        }
        _ => false,
    }
}

#[cfg(test)]
mod reprint_tests {
    use super::*;

    #[test]
    fn a_reprint_is_answered_on_the_screen_and_forgotten_with_the_sale() {
        let mut m = SaleScreenModel::new(Language::Swedish, "SEK".parse().unwrap());
        m.reprint_done(Reprint::Printing);
        assert_eq!(m.view(0).notice, "Skriver ut kvittot…");
        m.reprint_done(Reprint::Failed("out of paper".into()));
        assert_eq!(m.view(0).notice, "Kvittot skrevs inte ut: out of paper");
        m.reprint_done(Reprint::Printed);
        assert_eq!(m.view(0).notice, "Kvitto utskrivet");
        m.sale_closed();
        assert_eq!(m.view(0).notice, "", "the next sale starts without it");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn sek() -> Currency {
        "SEK".parse::<Currency>().unwrap()
    }

    fn model() -> SaleScreenModel {
        SaleScreenModel::new(Language::Swedish, sek())
    }

    fn sale(attempts: usize, payment: Option<(&str, PaymentPhase)>) -> SaleSnapshot {
        SaleSnapshot {
            sale_id: "sale-1".into(),
            status: if payment.is_some_and(|p| p.1 == PaymentPhase::Paid) {
                SaleStatus::Paid
            } else {
                SaleStatus::Open
            },
            currency: sek(),
            lines: vec![
                LineSnapshot {
                    line_no: 1,
                    name: "T-shirt".into(),
                    quantity: 1,
                    unit_price: 11800,
                    total: 11800,
                },
                LineSnapshot {
                    line_no: 2,
                    name: "Socks".into(),
                    quantity: 2,
                    unit_price: 4950,
                    total: 9900,
                },
            ],
            total: 21700,
            due: if payment.is_some_and(|p| p.1 == PaymentPhase::Paid) {
                0
            } else {
                21700
            },
            tenders: vec![],
            revision: 2,
            receipt_no: payment
                .is_some_and(|p| p.1 == PaymentPhase::Paid)
                .then_some(42),
            attempts,
            payment: payment.map(|(id, phase)| PaymentSnapshot {
                attempt_id: id.into(),
                phase,
                url: (phase != PaymentPhase::Requested)
                    .then(|| format!("https://pay.example/{id}")),
                deadline_unix_ms: Some(NOW + 300_000),
                reason: (phase == PaymentPhase::Declined).then(|| "declined by customer".into()),
            }),
        }
    }

    #[test]
    fn an_empty_till_shows_the_sale_screen_and_cannot_pay() {
        let m = model();
        let v = m.view(NOW);
        assert_eq!(v.screen, Screen::Sale);
        assert!(!v.can_pay && !v.has_sale);
        assert_eq!(v.total, "0,00\u{a0}kr");
    }

    #[test]
    fn the_sale_screen_lists_lines_and_the_running_total() {
        let mut m = model();
        m.sale_changed(sale(0, None));
        let v = m.view(NOW);
        assert_eq!(v.screen, Screen::Sale);
        assert!(v.can_pay);
        assert_eq!(v.lines[1].quantity, "2 ×");
        assert_eq!(v.lines[1].amount, "99,00\u{a0}kr");
        assert_eq!(v.total, "217,00\u{a0}kr");
    }

    #[test]
    fn pressing_pay_shows_the_payment_screen_until_the_qr_code_arrives() {
        let mut m = model();
        m.sale_changed(sale(0, None));
        assert!(m.payment_starting());
        assert_eq!(m.screen(), Screen::Payment);
        assert!(
            !m.can_pay(),
            "a second press must not start a second payment"
        );
        assert!(!m.payment_starting());
        assert_eq!(m.view(NOW).payment_url, None);
        m.sale_changed(sale(1, Some(("a1", PaymentPhase::AwaitingCustomer))));
        let v = m.view(NOW);
        assert_eq!(v.screen, Screen::Payment);
        assert_eq!(v.phase, PaymentPhase::AwaitingCustomer);
        assert_eq!(v.payment_url.as_deref(), Some("https://pay.example/a1"));
        assert_eq!(v.countdown, "5:00");
        assert_eq!(m.countdown(NOW + 61_500), "3:59");
    }

    #[test]
    fn each_way_a_payment_ends_has_its_result() {
        for (phase, outcome) in [
            (PaymentPhase::Paid, Outcome::Paid),
            (PaymentPhase::Declined, Outcome::Declined),
            (PaymentPhase::Expired, Outcome::Expired),
            (PaymentPhase::Canceled, Outcome::Canceled),
            (PaymentPhase::Failed, Outcome::Failed),
        ] {
            let mut m = model();
            m.sale_changed(sale(1, Some(("a1", PaymentPhase::CustomerOpened))));
            m.sale_changed(sale(1, Some(("a1", phase))));
            let v = m.view(NOW);
            assert_eq!(v.screen, Screen::Result(outcome), "{phase:?}");
            assert_eq!(v.payment_url, None, "no QR code once {phase:?}");
            assert_eq!(v.countdown, "");
        }
    }

    #[test]
    fn a_payment_in_doubt_is_said_and_no_second_payment_is_offered() {
        let mut m = model();
        m.sale_changed(sale(1, Some(("a1", PaymentPhase::Approved))));
        m.sale_changed(sale(1, Some(("a1", PaymentPhase::InDoubt))));
        let v = m.view(NOW);
        assert_eq!(v.screen, Screen::Result(Outcome::InDoubt));
        assert_eq!(v.payment_url, None);
        assert!(
            !v.can_pay,
            "no second payment while one may have gone through"
        );
        assert!(!m.payment_starting());
        m.dismiss_result();
        assert_eq!(m.screen(), Screen::Sale);
        assert!(!m.can_pay());
    }

    #[test]
    fn a_paid_sale_shows_its_receipt_number() {
        let mut m = model();
        m.sale_changed(sale(1, Some(("a1", PaymentPhase::Paid))));
        let v = m.view(NOW);
        assert_eq!(v.receipt_no, "42");
        assert!(!v.can_pay && !v.has_sale);
    }

    #[test]
    fn a_declined_payment_offers_a_retry_that_starts_a_new_attempt() {
        let mut m = model();
        m.sale_changed(sale(1, Some(("a1", PaymentPhase::Declined))));
        let v = m.view(NOW);
        assert_eq!(v.screen, Screen::Result(Outcome::Declined));
        assert_eq!(v.reason, "declined by customer");
        assert!(v.can_pay, "try again is allowed");
        assert!(m.payment_starting());
        assert_eq!(m.screen(), Screen::Payment);
        m.sale_changed(sale(2, Some(("a2", PaymentPhase::AwaitingCustomer))));
        assert_eq!(m.screen(), Screen::Payment);
        assert_eq!(m.payment_url(), Some("https://pay.example/a2"));
    }

    #[test]
    fn back_to_sale_leaves_the_result_behind() {
        let mut m = model();
        m.sale_changed(sale(1, Some(("a1", PaymentPhase::Expired))));
        m.dismiss_result();
        assert_eq!(m.screen(), Screen::Sale);
        // The same state reported again does not bring the result back.
        m.sale_changed(sale(1, Some(("a1", PaymentPhase::Expired))));
        assert_eq!(m.screen(), Screen::Sale);
    }

    #[test]
    fn klarna_offline_is_said_plainly_and_retry_is_possible() {
        let mut m = model();
        m.sale_changed(sale(0, None));
        assert!(m.payment_starting());
        m.payment_refused(Refusal::KlarnaOffline);
        assert_eq!(m.screen(), Screen::Result(Outcome::KlarnaOffline));
        assert!(m.can_pay());
        m.payment_refused(Refusal::Refused("amount too large".into()));
        let v = m.view(NOW);
        assert_eq!(v.screen, Screen::Result(Outcome::Refused));
        assert_eq!(v.reason, "amount too large");
        m.dismiss_result();
        assert_eq!(m.screen(), Screen::Sale);
    }

    #[test]
    fn a_late_answer_never_takes_the_screen_back() {
        let mut m = model();
        m.sale_changed(sale(1, Some(("a1", PaymentPhase::CustomerOpened))));
        assert!(!m.sale_changed(sale(1, Some(("a1", PaymentPhase::AwaitingCustomer)))));
        assert!(!m.sale_changed(sale(0, None)));
        assert_eq!(m.view(NOW).phase, PaymentPhase::CustomerOpened);
        m.sale_changed(sale(1, Some(("a1", PaymentPhase::Paid))));
        assert!(!m.sale_changed(sale(1, Some(("a1", PaymentPhase::Approved)))));
        assert_eq!(m.screen(), Screen::Result(Outcome::Paid));
    }

    #[test]
    fn a_new_sale_starts_clean() {
        let mut m = model();
        m.sale_changed(sale(1, Some(("a1", PaymentPhase::Paid))));
        m.sale_closed();
        assert_eq!(m.screen(), Screen::Sale);
        assert_eq!(m.sale_id(), None);
        assert!(m.view(NOW).lines.is_empty());
    }

    #[test]
    fn a_removed_line_is_a_newer_sale_not_a_late_answer() {
        let mut m = model();
        m.sale_changed(sale(0, None));
        let mut fewer = sale(0, None);
        fewer.lines.remove(0);
        fewer.total = 9900;
        fewer.due = 9900;
        fewer.revision = 3;
        assert!(m.sale_changed(fewer));
        assert_eq!(m.view(NOW).lines.len(), 1);
        assert!(m.lines_editable());
        // The same removal seen again from an older answer changes nothing back.
        assert!(!m.sale_changed(sale(0, None)));
    }

    #[test]
    fn the_tender_keypad_types_an_amount_in_kronor_and_ore() {
        let mut m = model();
        m.sale_changed(sale(0, None));
        assert!(m.open_tender());
        assert_eq!(m.screen(), Screen::Tender);
        for k in ["2", "0", "0"] {
            m.keypad(k);
        }
        assert_eq!(m.entry_minor(), Some(20_000));
        for k in [",", "5", "0", "7"] {
            m.keypad(k);
        }
        // Two decimals at most for SEK.
        assert_eq!(m.view(NOW).entry, "200,50");
        assert_eq!(m.entry_minor(), Some(20_050));
        m.keypad("<");
        m.keypad("<");
        m.keypad("<");
        assert_eq!(m.entry_minor(), Some(20_000));
        m.keypad("C");
        assert_eq!(m.entry_minor(), None);
        for _ in 0..20 {
            m.keypad("9");
        }
        assert_eq!(
            m.entry_minor(),
            Some(999_999_999 * 100),
            "at most nine digits"
        );
        m.set_card_mode(true);
        assert!(m.view(NOW).card_mode);
        assert_eq!(m.entry_minor(), None, "a new mode starts empty");
        m.close_tender();
        assert_eq!(m.screen(), Screen::Sale);
    }

    #[test]
    fn a_part_paid_in_cash_shows_what_is_left_and_locks_the_lines() {
        let mut m = model();
        m.sale_changed(sale(0, None));
        assert!(m.open_tender());
        let mut part = sale(0, None);
        part.due = 11_700;
        part.tenders = vec![TenderSnapshot {
            kind: TenderKind::Cash,
            amount: 10_000,
            given: 10_000,
            change: 0,
        }];
        assert!(m.sale_changed(part.clone()));
        assert!(m.tender_pressed());
        assert!(!m.tender_pressed(), "a double tap takes one tender");
        m.tender_taken();
        let v = m.view(NOW);
        assert_eq!(v.screen, Screen::Sale);
        assert_eq!(v.due, "117,00\u{a0}kr");
        assert_eq!(v.tenders, vec!["Kontant 100,00\u{a0}kr"]);
        assert!(!v.lines_editable);
        assert!(v.can_pay, "the rest can still be paid");
        // Paid in full with change: the receipt screen says how much goes back.
        let mut paid = part;
        paid.status = SaleStatus::Paid;
        paid.due = 0;
        paid.receipt_no = Some(7);
        paid.tenders.push(TenderSnapshot {
            kind: TenderKind::Cash,
            amount: 11_700,
            given: 20_000,
            change: 8_300,
        });
        assert!(m.sale_changed(paid));
        let v = m.view(NOW);
        assert_eq!(v.screen, Screen::Result(Outcome::Paid));
        assert_eq!(v.change, "83,00\u{a0}kr");
    }

    #[test]
    fn a_new_price_is_typed_for_the_tapped_line() {
        let mut m = model();
        m.sale_changed(sale(0, None));
        assert!(m.open_price(1));
        assert_eq!(m.screen(), Screen::Price);
        let v = m.view(NOW);
        assert_eq!(
            (v.pricing_name.as_str(), v.pricing_price.as_str()),
            ("Socks", "49,50\u{a0}kr")
        );
        for k in ["3", "9", ",", "5"] {
            m.keypad(k);
        }
        assert_eq!(m.entry_minor(), Some(3_950));
        assert!(m.tender_pressed());
        m.tender_refused("this price cut needs a manager's approval".into());
        assert_eq!(m.screen(), Screen::Price, "a refusal stays, saying why");
        // Pressed again, then Back before the answer: the next press waits for that answer.
        assert!(m.tender_pressed());
        m.close_price();
        assert!(m.open_price(1));
        assert!(!m.tender_pressed(), "one price change at a time");
        m.price_set();
        assert!(m.open_price(1));
        assert!(m.tender_pressed());
        m.price_set();
        assert_eq!(m.screen(), Screen::Sale);
        assert!(!m.open_price(7), "no such line");
    }

    #[test]
    fn a_discount_on_the_sale_is_a_whole_percentage() {
        let mut m = model();
        m.sale_changed(sale(0, None));
        assert!(m.open_discount());
        assert_eq!(m.screen(), Screen::Price);
        assert!(m.view(NOW).discount_mode);
        m.keypad("1");
        m.keypad("5");
        assert_eq!(m.entry_percent(), Some(15));
        m.keypad("0");
        assert_eq!(m.entry_percent(), None, "150 % is no discount");
        m.keypad("C");
        m.keypad("0");
        assert_eq!(m.entry_percent(), None);
        m.close_price();
        assert_eq!(m.screen(), Screen::Sale);
        assert!(!m.view(NOW).discount_mode);
    }

    #[test]
    fn nothing_typed_for_one_sale_carries_over_to_the_next() {
        let mut m = model();
        m.sale_changed(sale(0, None));
        assert!(m.open_discount());
        m.keypad("5");
        let mut next = sale(0, None);
        next.sale_id = "sale-2".into();
        m.sale_changed(next);
        assert_eq!(m.screen(), Screen::Sale);
        assert!(!m.view(NOW).discount_mode);
        assert_eq!(m.view(NOW).entry, "");
    }

    #[test]
    fn a_part_paid_sale_abandoned_elsewhere_leaves_the_screen() {
        let mut m = model();
        let mut part = sale(0, None);
        part.due = 11_700;
        part.tenders = vec![TenderSnapshot {
            kind: TenderKind::Cash,
            amount: 10_000,
            given: 10_000,
            change: 0,
        }];
        m.sale_changed(part.clone());
        // Abandoned through the API: its tender is handed back (voided, so not listed).
        let mut gone = part;
        gone.status = SaleStatus::Abandoned;
        gone.tenders.clear();
        assert!(m.sale_changed(gone));
        assert_eq!(m.screen(), Screen::Sale);
        assert!(!m.view(NOW).has_sale);
    }

    #[test]
    fn countdown_rounds_up_and_stops_at_zero() {
        assert_eq!(countdown_text(NOW + 300_000, NOW), "5:00");
        assert_eq!(countdown_text(NOW + 1, NOW), "0:01");
        assert_eq!(countdown_text(NOW, NOW), "0:00");
        assert_eq!(countdown_text(NOW - 5_000, NOW), "0:00");
        assert_eq!(countdown_text(NOW + 3_725_000, NOW), "1:02:05");
        // Nonsense clocks give a long countdown, not a panic.
        assert!(countdown_text(i64::MAX, i64::MIN).len() > 4);
    }

    #[test]
    fn product_buttons_show_prices_in_the_till_language() {
        let mut m = SaleScreenModel::new(Language::English, sek());
        m.set_products(vec![Product {
            name: "T-shirt".into(),
            reference: "SKU-1".into(),
            unit_price: 11800,
        }]);
        assert_eq!(
            m.view(NOW).products,
            vec![("T-shirt".to_string(), "SEK\u{a0}118.00".to_string())]
        );
        assert_eq!(m.product(0).map(|p| p.reference.as_str()), Some("SKU-1"));
        assert_eq!(m.product(1), None);
    }
}
