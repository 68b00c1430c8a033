//! The four peripherals as the agent uses them: `CustomerDisplay`, `BarcodeScanner`,
//! `ReceiptPrinter` and `CardReader`. Each `open` starts the device's port thread and returns at
//! once; an absent device is a `DeviceState::Disconnected`, never an error, so the till starts.

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serialport::SerialPort;
use tokio::sync::{mpsc as tokio_mpsc, oneshot, watch};
use zeroize::Zeroizing;

use crate::DriverError;
use crate::card::{self, CardSwipe};
use crate::config::{CardReaderConfig, DisplayConfig, PrinterConfig, ScannerConfig};
use crate::display::{DisplayEncoder, DisplayScreen, ScreenLabels};
use crate::port::{self, Peripheral, write_all};
use crate::printer::{self, PrinterStatus, Receipt, ReceiptLayout, StatusQuery};
use crate::scanner::{self, Scan, ScanFramer};
use crate::state::DeviceState;

/// Devices that take no commands still need a channel whose closing stops their thread.
pub(crate) enum NoCommand {}

fn start<P: Peripheral>(
    role: &'static str,
    config: &crate::config::PortConfig,
    peripheral: P,
) -> Result<(mpsc::Sender<P::Command>, watch::Receiver<DeviceState>), DriverError> {
    config.validate()?;
    let (commands, commands_rx) = mpsc::channel();
    let (state_tx, state) = watch::channel(DeviceState::disconnected("not opened yet"));
    port::spawn(role, config.clone(), peripheral, commands_rx, state_tx)
        .map_err(|e| DriverError::InvalidConfig(format!("cannot start {role} thread: {e}")))?;
    Ok((commands, state))
}

// ---------------------------------------------------------------- customer display

/// The customer-facing pole display. Cheap to call on every scan: unchanged cells are not re-sent.
pub struct CustomerDisplay {
    /// To the port thread; dropping it stops the thread.
    commands: mpsc::Sender<DisplayCommand>,
    state: watch::Receiver<DeviceState>,
    labels: ScreenLabels,
}

pub(crate) enum DisplayCommand {
    Show(DisplayScreen),
}

struct DisplayPeripheral {
    encoder: DisplayEncoder,
    /// The latest screen asked for; shown again after a reconnect.
    wanted: DisplayScreen,
}

impl Peripheral for DisplayPeripheral {
    type Command = DisplayCommand;

    fn connected(&mut self, port: &mut dyn SerialPort, _now: Instant) -> io::Result<()> {
        let mut bytes = self.encoder.initialize();
        bytes.extend(self.encoder.render(&self.wanted));
        write_all(port, &bytes)
    }

    fn command(&mut self, command: DisplayCommand, port: &mut dyn SerialPort) -> io::Result<()> {
        let DisplayCommand::Show(screen) = command;
        self.wanted = screen;
        let bytes = self.encoder.render(&self.wanted);
        if bytes.is_empty() {
            return Ok(());
        }
        write_all(port, &bytes).inspect_err(|_| self.encoder.forget())
    }

    fn command_offline(&mut self, command: DisplayCommand, _reason: &str) {
        let DisplayCommand::Show(screen) = command;
        self.wanted = screen;
    }

    fn received(&mut self, _bytes: &[u8], _now: Instant) {}

    fn disconnected(&mut self) {
        self.encoder.forget();
    }
}

impl CustomerDisplay {
    /// Start driving the display described by `config`.
    pub fn open(config: &DisplayConfig) -> Result<Self, DriverError> {
        let peripheral = DisplayPeripheral {
            encoder: DisplayEncoder::new(config.command_set),
            wanted: DisplayScreen::welcome(&config.labels),
        };
        let (commands, state) = start("display", &config.port, peripheral)?;
        Ok(Self {
            commands,
            state,
            labels: config.labels.clone(),
        })
    }

    /// Show `screen` now, or as soon as the display is plugged in again.
    pub fn show(&self, screen: DisplayScreen) -> Result<(), DriverError> {
        self.commands
            .send(DisplayCommand::Show(screen))
            .map_err(|_| DriverError::Stopped)
    }

    /// The configured words for `DisplayScreen`'s layouts.
    pub fn labels(&self) -> &ScreenLabels {
        &self.labels
    }

    /// Watch the device's state.
    pub fn state(&self) -> watch::Receiver<DeviceState> {
        self.state.clone()
    }
}

// ---------------------------------------------------------------- barcode scanner

/// The barcode scanner; scans arrive in the order scanned.
pub struct BarcodeScanner {
    /// Kept only so that dropping the scanner stops its thread.
    _commands: mpsc::Sender<NoCommand>,
    scans: tokio_mpsc::UnboundedReceiver<Scan>,
    state: watch::Receiver<DeviceState>,
}

struct ScannerPeripheral {
    framer: ScanFramer,
    scans: tokio_mpsc::UnboundedSender<Scan>,
}

impl ScannerPeripheral {
    fn emit(&self, frame: Vec<u8>) {
        let scan = scanner::classify(&frame);
        tracing::debug!(?scan, "scan");
        // The receiver is gone only while the scanner is being dropped.
        let _ = self.scans.send(scan);
    }
}

impl Peripheral for ScannerPeripheral {
    type Command = NoCommand;

    fn connected(&mut self, _port: &mut dyn SerialPort, _now: Instant) -> io::Result<()> {
        self.framer.reset();
        Ok(())
    }

    fn command(&mut self, command: NoCommand, _port: &mut dyn SerialPort) -> io::Result<()> {
        match command {}
    }

    fn command_offline(&mut self, command: NoCommand, _reason: &str) {
        match command {}
    }

    fn received(&mut self, bytes: &[u8], now: Instant) {
        for frame in self.framer.push(bytes, now) {
            self.emit(frame);
        }
    }

    fn tick(&mut self, _port: &mut dyn SerialPort, now: Instant) -> io::Result<()> {
        if let Some(frame) = self.framer.poll(now) {
            self.emit(frame);
        }
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        self.framer.deadline()
    }

    fn disconnected(&mut self) {
        // A half frame from the moment of unplugging is noise, not a scan.
        self.framer.reset();
    }
}

impl BarcodeScanner {
    /// Start reading the scanner described by `config`.
    pub fn open(config: &ScannerConfig) -> Result<Self, DriverError> {
        let (tx, scans) = tokio_mpsc::unbounded_channel();
        let peripheral = ScannerPeripheral {
            framer: ScanFramer::new(
                config.suffix,
                Duration::from_millis(config.timeout_ms.max(1)),
            ),
            scans: tx,
        };
        let (commands, state) = start("scanner", &config.port, peripheral)?;
        Ok(Self {
            _commands: commands,
            scans,
            state,
        })
    }

    /// The next scan; `None` only if the port thread has died.
    pub async fn next_scan(&mut self) -> Option<Scan> {
        self.scans.recv().await
    }

    /// A scan if one is waiting (for polling loops and tests).
    pub fn try_next_scan(&mut self) -> Option<Scan> {
        self.scans.try_recv().ok()
    }

    pub fn state(&self) -> watch::Receiver<DeviceState> {
        self.state.clone()
    }
}

// ---------------------------------------------------------------- receipt printer

/// The ESC/POS receipt printer. `print` reports failure so that the agent can keep the receipt
/// in its journal for a reprint.
pub struct ReceiptPrinter {
    commands: mpsc::Sender<PrinterCommand>,
    state: watch::Receiver<DeviceState>,
}

pub(crate) enum PrinterCommand {
    Print(Box<Receipt>, oneshot::Sender<Result<(), DriverError>>),
    OpenDrawer(oneshot::Sender<Result<(), DriverError>>),
}

struct PrinterPeripheral {
    layout: ReceiptLayout,
    status: PrinterStatus,
    /// Status queries sent and not yet answered, oldest first (replies come in order).
    outstanding: VecDeque<(StatusQuery, Instant)>,
    next_poll: Instant,
    interval: Duration,
    reply_timeout: Duration,
    /// The printer stopped answering status queries.
    silent: bool,
}

const POLLED: [StatusQuery; 3] = [
    StatusQuery::Printer,
    StatusQuery::OfflineCause,
    StatusQuery::PaperSensor,
];

impl PrinterPeripheral {
    fn refusal(&self) -> Option<DriverError> {
        match self.state() {
            DeviceState::PaperOut => Some(DriverError::PaperOut),
            DeviceState::CoverOpen => Some(DriverError::CoverOpen),
            DeviceState::Offline => Some(DriverError::Offline),
            _ => None,
        }
    }

    fn job(
        &self,
        port: &mut dyn SerialPort,
        bytes: &[u8],
    ) -> (Result<(), DriverError>, io::Result<()>) {
        if let Some(refusal) = self.refusal() {
            return (Err(refusal), Ok(()));
        }
        match write_all(port, bytes) {
            Ok(()) => (Ok(()), Ok(())),
            Err(e) => (Err(DriverError::Disconnected(e.to_string())), Err(e)),
        }
    }
}

impl Peripheral for PrinterPeripheral {
    type Command = PrinterCommand;

    fn connected(&mut self, _port: &mut dyn SerialPort, now: Instant) -> io::Result<()> {
        self.status = PrinterStatus::default();
        self.outstanding.clear();
        self.silent = false;
        self.next_poll = now;
        Ok(())
    }

    fn command(&mut self, command: PrinterCommand, port: &mut dyn SerialPort) -> io::Result<()> {
        match command {
            PrinterCommand::Print(receipt, reply) => {
                let bytes = match printer::encode_receipt(&receipt, &self.layout) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return Ok(());
                    }
                };
                let (result, io) = self.job(port, &bytes);
                let _ = reply.send(result);
                io
            }
            PrinterCommand::OpenDrawer(reply) => {
                let (result, io) = self.job(port, &printer::drawer_kick());
                let _ = reply.send(result);
                io
            }
        }
    }

    fn command_offline(&mut self, command: PrinterCommand, reason: &str) {
        let reply = match command {
            PrinterCommand::Print(_, reply) | PrinterCommand::OpenDrawer(reply) => reply,
        };
        let _ = reply.send(Err(DriverError::Disconnected(reason.to_owned())));
    }

    fn received(&mut self, bytes: &[u8], _now: Instant) {
        for &b in bytes {
            // Bytes nobody asked for (noise, automatic status back) are ignored.
            if let Some((query, _)) = self.outstanding.pop_front()
                && self.status.apply(query, b)
            {
                self.silent = false;
            }
        }
    }

    fn tick(&mut self, port: &mut dyn SerialPort, now: Instant) -> io::Result<()> {
        if let Some(&(_, asked)) = self.outstanding.front()
            && now.saturating_duration_since(asked) > self.reply_timeout
        {
            self.outstanding.clear();
            self.silent = true;
        }
        if self.outstanding.is_empty() && now >= self.next_poll {
            self.next_poll = now + self.interval;
            let mut bytes = Vec::with_capacity(9);
            for query in POLLED {
                bytes.extend_from_slice(&printer::status_query(query));
                self.outstanding.push_back((query, now));
            }
            write_all(port, &bytes)?;
        }
        Ok(())
    }

    fn state(&self) -> DeviceState {
        let s = &self.status;
        if self.silent {
            DeviceState::Offline
        } else if s.paper_out {
            DeviceState::PaperOut
        } else if s.cover_open {
            DeviceState::CoverOpen
        } else if s.offline || s.error {
            DeviceState::Offline
        } else {
            DeviceState::Connected
        }
    }
}

impl ReceiptPrinter {
    /// Start driving the printer described by `config`.
    pub fn open(config: &PrinterConfig) -> Result<Self, DriverError> {
        let peripheral = PrinterPeripheral {
            layout: config.layout(),
            status: PrinterStatus::default(),
            outstanding: VecDeque::new(),
            next_poll: Instant::now(),
            interval: Duration::from_millis(config.status_interval_ms.max(10)),
            reply_timeout: Duration::from_millis(config.status_timeout_ms.max(10)),
            silent: false,
        };
        let (commands, state) = start("printer", &config.port, peripheral)?;
        Ok(Self { commands, state })
    }

    /// Print `receipt` and cut. Fails with `PaperOut`, `CoverOpen`, `Offline` or `Disconnected`
    /// when it was not (completely) printed: keep it for a reprint.
    pub async fn print(&self, receipt: Receipt) -> Result<(), DriverError> {
        let (reply, result) = oneshot::channel();
        self.commands
            .send(PrinterCommand::Print(Box::new(receipt), reply))
            .map_err(|_| DriverError::Stopped)?;
        result.await.map_err(|_| DriverError::Stopped)?
    }

    /// Kick the cash drawer connected to the printer.
    pub async fn open_drawer(&self) -> Result<(), DriverError> {
        let (reply, result) = oneshot::channel();
        self.commands
            .send(PrinterCommand::OpenDrawer(reply))
            .map_err(|_| DriverError::Stopped)?;
        result.await.map_err(|_| DriverError::Stopped)?
    }

    pub fn state(&self) -> watch::Receiver<DeviceState> {
        self.state.clone()
    }
}

// ---------------------------------------------------------------- card reader

/// Magnetic stripe reader. Swipes arrive parsed: payment cards as brand + last four only.
pub struct CardReader {
    /// Kept only so that dropping the reader stops its thread.
    _commands: mpsc::Sender<NoCommand>,
    swipes: tokio_mpsc::UnboundedReceiver<CardSwipe>,
    state: watch::Receiver<DeviceState>,
}

/// Longest swipe kept: three tracks are under 250 bytes. The buffer never grows past this, so no
/// reallocation leaves a copy of track data in freed memory.
const SWIPE_CAPACITY: usize = 512;

struct CardPeripheral {
    /// Track data of the swipe in progress; zeroed after parsing and on drop.
    buf: Zeroizing<Vec<u8>>,
    last_byte: Option<Instant>,
    silence: Duration,
    loyalty_prefixes: Vec<String>,
    swipes: tokio_mpsc::UnboundedSender<CardSwipe>,
}

impl CardPeripheral {
    fn finish(&mut self) {
        self.last_byte = None;
        let swipe = card::parse_swipe(&mut self.buf, &self.loyalty_prefixes);
        self.buf.clear();
        let _ = self.swipes.send(swipe);
    }

    fn discard(&mut self) {
        // `clear` alone would leave the bytes in the allocation.
        self.buf.iter_mut().for_each(|b| *b = 0);
        self.buf.clear();
        self.last_byte = None;
    }
}

impl Peripheral for CardPeripheral {
    type Command = NoCommand;

    fn connected(&mut self, _port: &mut dyn SerialPort, _now: Instant) -> io::Result<()> {
        self.discard();
        Ok(())
    }

    fn command(&mut self, command: NoCommand, _port: &mut dyn SerialPort) -> io::Result<()> {
        match command {}
    }

    fn command_offline(&mut self, command: NoCommand, _reason: &str) {
        match command {}
    }

    fn received(&mut self, bytes: &[u8], now: Instant) {
        let room = SWIPE_CAPACITY - self.buf.len();
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.last_byte = Some(now);
    }

    fn tick(&mut self, _port: &mut dyn SerialPort, now: Instant) -> io::Result<()> {
        // A swipe ends with silence: readers differ in whether and where they put CR.
        if self
            .last_byte
            .is_some_and(|t| now.saturating_duration_since(t) >= self.silence)
        {
            self.finish();
        }
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        self.last_byte.map(|t| t + self.silence)
    }

    fn disconnected(&mut self) {
        self.discard();
    }
}

impl CardReader {
    /// Start reading the card reader described by `config`.
    pub fn open(config: &CardReaderConfig) -> Result<Self, DriverError> {
        let (tx, swipes) = tokio_mpsc::unbounded_channel();
        let peripheral = CardPeripheral {
            buf: Zeroizing::new(Vec::with_capacity(SWIPE_CAPACITY)),
            last_byte: None,
            silence: Duration::from_millis(config.timeout_ms.max(1)),
            loyalty_prefixes: config.loyalty_prefixes.clone(),
            swipes: tx,
        };
        let (commands, state) = start("card-reader", &config.port, peripheral)?;
        Ok(Self {
            _commands: commands,
            swipes,
            state,
        })
    }

    /// The next swipe; `None` only if the port thread has died.
    pub async fn next_swipe(&mut self) -> Option<CardSwipe> {
        self.swipes.recv().await
    }

    /// A swipe if one is waiting.
    pub fn try_next_swipe(&mut self) -> Option<CardSwipe> {
        self.swipes.try_recv().ok()
    }

    pub fn state(&self) -> watch::Receiver<DeviceState> {
        self.state.clone()
    }
}
