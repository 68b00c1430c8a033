//! The service's background tasks: opening the configured serial devices, following the sale
//! events (display, current sale, printing once paid), and reading the scanner and the card
//! reader. A device that is unplugged never stops the till; each task reports and goes on.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kassa_drivers::{
    BarcodeScanner, CardReader, CardSwipe, CustomerDisplay, DisplayScreen, ReceiptPrinter,
};
use tokio::sync::broadcast;

use super::{
    Catalogue, DeviceEvent, DeviceRole, Devices, DevicesError, ReceiptPrinted, Shared, Tasks,
    port_label, quantities, receipt_for, screen_for,
};
use crate::store::{JournalEntry, JournalKind, SaleState};
use crate::terminal::{SaleEvent, Terminal, TerminalError};

/// How long "thank you" stays on the customer display before it welcomes the next customer.
const THANK_YOU_FOR: Duration = Duration::from_secs(8);

/// How many paid sales the printing task remembers having printed, so that a repeated "paid"
/// event does not print twice; a day of sales fits many times over.
const PRINTED_REMEMBERED: usize = 4096;

impl Devices {
    /// Opens the configured devices and starts following `terminal`'s sales. Devices that are
    /// unplugged do not stop the till; a configuration that cannot work does.
    pub fn start(terminal: Terminal) -> Result<Devices, DevicesError> {
        let cfg = terminal.config().clone();
        let catalogue = Catalogue::load(&cfg.catalogue, cfg.catalogue_file.as_deref())?;
        let open_err = |role| move |source| DevicesError::Device { role, source };
        let mut states = Vec::new();
        let display = cfg
            .devices
            .display
            .as_ref()
            .map(|c| CustomerDisplay::open(c).map_err(open_err(DeviceRole::Display)))
            .transpose()?;
        if let (Some(d), Some(c)) = (&display, &cfg.devices.display) {
            states.push((DeviceRole::Display, port_label(&c.port), d.state()));
        }
        let scanner = cfg
            .devices
            .scanner
            .as_ref()
            .map(|c| BarcodeScanner::open(c).map_err(open_err(DeviceRole::Scanner)))
            .transpose()?;
        if let (Some(s), Some(c)) = (&scanner, &cfg.devices.scanner) {
            states.push((DeviceRole::Scanner, port_label(&c.port), s.state()));
        }
        let printer = cfg
            .devices
            .printer
            .as_ref()
            .map(|c| ReceiptPrinter::open(c).map_err(open_err(DeviceRole::Printer)))
            .transpose()?;
        if let (Some(p), Some(c)) = (&printer, &cfg.devices.printer) {
            states.push((DeviceRole::Printer, port_label(&c.port), p.state()));
        }
        let reader = cfg
            .devices
            .card_reader
            .as_ref()
            .map(|c| CardReader::open(c).map_err(open_err(DeviceRole::CardReader)))
            .transpose()?;
        if let (Some(r), Some(c)) = (&reader, &cfg.devices.card_reader) {
            states.push((DeviceRole::CardReader, port_label(&c.port), r.state()));
        }
        if scanner.is_some() && catalogue.is_empty() {
            tracing::warn!(
                "a barcode scanner is configured but the product catalogue is empty: every product scan will be unknown"
            );
        }
        // Subscribed before any task runs, so no sale change between here and there is missed.
        let sales = terminal.subscribe();
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            terminal,
            display,
            printer,
            states,
            catalogue,
            shown: Mutex::new(None),
            events,
        });
        if let Some(d) = &shared.display {
            shared.show(DisplayScreen::welcome(d.labels()));
        }
        let mut tasks = vec![tokio::spawn(shared.clone().follow_sales(sales)).abort_handle()];
        if let Some(scanner) = scanner {
            tasks.push(tokio::spawn(shared.clone().read_scans(scanner)).abort_handle());
        }
        if let Some(reader) = reader {
            tasks.push(tokio::spawn(shared.clone().read_swipes(reader)).abort_handle());
        }
        tracing::info!(
            devices = shared.states.len(),
            products = shared.catalogue.len(),
            "peripherals started"
        );
        Ok(Devices {
            shared,
            _tasks: Arc::new(Tasks(tasks)),
        })
    }
}

impl Shared {
    /// Follows every sale change: the current sale, the display, and printing once paid.
    async fn follow_sales(self: Arc<Self>, mut sales: broadcast::Receiver<SaleEvent>) {
        // The counter as this stream of changes shows it, for the display (the till's own may
        // have moved on while this task catches up).
        let mut counter = kassa_core::counter::Counter::default();
        // (sale id, each line's number and quantity) last shown, to tell a new item (a new
        // line, or a product scanned again) from any other change.
        let mut shown: Option<(String, Vec<(i64, i64)>)> = None;
        let mut welcome_at: Option<tokio::time::Instant> = None;
        // Sales whose receipt this process has already printed (or tried to).
        let mut printed: HashSet<String> = HashSet::new();
        loop {
            let sale = tokio::select! {
                ev = sales.recv() => match ev {
                    Ok(ev) => ev.sale,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        // Every event carries the whole sale: the next one catches up.
                        tracing::warn!(skipped = n, "peripherals fell behind the sale events");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = sleep_until(welcome_at) => {
                    welcome_at = None;
                    shown = None;
                    if let Some(labels) = self.labels() {
                        self.show(DisplayScreen::welcome(labels));
                    }
                    continue;
                }
            };
            let id = sale.sale.id.clone();
            let state = sale.sale.state;
            // A late change to an older sale must not take the display from the customer at
            // the counter now.
            let someone_else = !counter.observe(&id, state == SaleState::Open);
            if let Some(labels) = self.labels()
                && !someone_else
            {
                let before = shown
                    .as_ref()
                    .filter(|(s, _)| *s == id)
                    .map(|(_, q)| q.as_slice());
                self.show(screen_for(labels, &sale, before));
                shown = Some((id.clone(), quantities(&sale)));
                welcome_at =
                    (state == SaleState::Paid).then(|| tokio::time::Instant::now() + THANK_YOU_FOR);
            }
            if state == SaleState::Abandoned && !someone_else {
                // A customer code scanned for this sale must not pay the next customer's.
                self.terminal.keep_customer_token(None);
            }
            if printed.len() > PRINTED_REMEMBERED {
                // Only a repeated event for a just-paid sale can come back; old ids may go.
                printed.clear();
            }
            if state == SaleState::Paid && self.printer.is_some() && printed.insert(id.clone()) {
                let shared = self.clone();
                tokio::spawn(async move {
                    // The outcome is journaled and published inside; nothing more to do here.
                    let _ = shared.print_receipt(&id, None, false).await;
                });
            }
        }
    }

    /// Prints `sale_id`'s receipt and journals whether it came out.
    pub(super) async fn print_receipt(
        &self,
        sale_id: &str,
        operator: Option<String>,
        reprint: bool,
    ) -> Result<ReceiptPrinted, DevicesError> {
        // The automatic print after a payment is the till's own doing: it needs nobody signed in.
        let operator = match (reprint, operator) {
            (false, None) => "kassa".to_string(),
            (_, operator) => self.terminal.operator(operator)?,
        };
        let printer = self.printer.as_ref().ok_or(DevicesError::NoPrinter)?;
        let sale = self.terminal.sale(sale_id).await?;
        if sale.sale.state != SaleState::Paid {
            return Err(TerminalError::Conflict(format!(
                "sale {sale_id} is not paid: only a paid sale has a receipt"
            ))
            .into());
        }
        let cfg = self.terminal.config();
        let receipt = receipt_for(&sale, &cfg.receipt, &cfg.store_id, &cfg.terminal_id);
        let transaction = receipt.qr_data.clone();
        let result = printer.print(receipt).await;
        let mut e = JournalEntry::new(JournalKind::ReceiptPrinted, &operator);
        e.sale_id = Some(sale.sale.id.clone());
        e.amount = Some(sale.total);
        e.currency = Some(sale.sale.currency.code().to_string());
        e.klarna_transaction_id = transaction.clone();
        e.detail = serde_json::json!({
            "receipt_no": sale.sale.receipt_no,
            "printed": result.is_ok(),
            "reprint": reprint,
            "reason": result.as_ref().err().map(ToString::to_string),
        });
        let journaled = self
            .terminal
            .store()
            .call(move |db| db.write(|w| w.journal(e)))
            .await;
        if let Err(err) = journaled {
            tracing::error!(sale = %sale_id, "cannot journal the receipt print: {err}");
        }
        match result {
            Ok(()) => {
                tracing::info!(sale = %sale_id, reprint, "receipt printed");
                self.publish(DeviceEvent::ReceiptPrinted {
                    sale_id: sale_id.to_string(),
                });
                Ok(ReceiptPrinted {
                    sale_id: sale_id.to_string(),
                    receipt_no: sale.sale.receipt_no,
                    klarna_transaction_id: transaction,
                })
            }
            Err(err) => {
                tracing::warn!(sale = %sale_id, "receipt not printed, kept for a reprint: {err}");
                self.publish(DeviceEvent::ReceiptNotPrinted {
                    sale_id: sale_id.to_string(),
                    reason: err.to_string(),
                });
                Err(DevicesError::NotPrinted(err))
            }
        }
    }

    async fn read_scans(self: Arc<Self>, mut scanner: BarcodeScanner) {
        while let Some(scan) = scanner.next_scan().await {
            self.scanned(scan).await;
        }
        tracing::error!("the barcode scanner's thread has stopped; scans are no longer read");
    }

    async fn read_swipes(self: Arc<Self>, mut reader: CardReader) {
        while let Some(swipe) = reader.next_swipe().await {
            match swipe {
                CardSwipe::Payment(card) => {
                    let brand = format!("{:?}", card.brand());
                    let last4 = card.last4().to_string();
                    tracing::info!(%brand, %last4, "payment card swiped; kassa takes payments through Klarna only");
                    self.publish(DeviceEvent::PaymentCardSwiped { brand, last4 });
                }
                CardSwipe::Loyalty(card) => {
                    tracing::info!("loyalty card swiped");
                    self.publish(DeviceEvent::LoyaltyCardSwiped {
                        number: card.number,
                    });
                }
                CardSwipe::Unreadable => {
                    tracing::info!("card swipe unreadable; ask for another swipe");
                    self.publish(DeviceEvent::UnreadableSwipe);
                }
            }
        }
        tracing::error!("the card reader's thread has stopped; swipes are no longer read");
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
