//! Simulated ESC/POS receipt printer: records each receipt (text lines, QR data, cut), counts
//! cash drawer kicks, and answers `10 04 n` status queries with configurable paper/cover state.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::display::pc858;
use super::pty::{Responder, SimPort, lock};

/// One receipt as it came out of the printer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrintedReceipt {
    /// Printed text lines (code page decoded), without formatting.
    pub lines: Vec<String>,
    /// Data of every QR code printed on it.
    pub qr_codes: Vec<String>,
    /// Whether the receipt was cut (a receipt still in progress is not).
    pub cut: bool,
}

#[derive(Debug, Default)]
struct Paper {
    pending: Vec<u8>,
    current: PrintedReceipt,
    line: String,
    receipts: Vec<PrintedReceipt>,
    qr_stored: Option<String>,
    drawer_kicks: usize,
    status_queries: usize,
    paper_out: bool,
    cover_open: bool,
}

/// A receipt printer on a pseudo-terminal.
pub struct SimPrinter {
    port: SimPort,
    paper: Arc<Mutex<Paper>>,
}

impl SimPrinter {
    /// Plug in a printer; returns it and the path to configure the driver with.
    pub fn start() -> io::Result<(Self, PathBuf)> {
        Self::start_at(None)
    }

    /// As `start`, reachable through a stable symlink `link`.
    pub fn start_at(link: Option<&Path>) -> io::Result<(Self, PathBuf)> {
        let paper = Arc::new(Mutex::new(Paper::default()));
        let p = paper.clone();
        let responder: Responder = Arc::new(Mutex::new(move |bytes: &[u8]| lock(&p).feed(bytes)));
        let port = SimPort::open(link, responder)?;
        let path = port.path();
        Ok((Self { port, paper }, path))
    }

    /// Receipts printed and cut so far.
    pub fn receipts(&self) -> Vec<PrintedReceipt> {
        lock(&self.paper).receipts.clone()
    }

    pub fn drawer_kicks(&self) -> usize {
        lock(&self.paper).drawer_kicks
    }

    pub fn status_queries(&self) -> usize {
        lock(&self.paper).status_queries
    }

    /// Take the paper roll out (or put it back).
    pub fn set_paper_out(&self, out: bool) {
        lock(&self.paper).paper_out = out;
    }

    /// Open (or close) the cover.
    pub fn set_cover_open(&self, open: bool) {
        lock(&self.paper).cover_open = open;
    }

    /// The simulated port (path, unplug, replug).
    pub fn port(&mut self) -> &mut SimPort {
        &mut self.port
    }
}

impl Paper {
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(bytes);
        let data = std::mem::take(&mut self.pending);
        let mut answer = Vec::new();
        let mut i = 0;
        while i < data.len() {
            match self.command(&data[i..], &mut answer) {
                Some(n) => i += n,
                None => break,
            }
        }
        self.pending = data[i..].to_vec();
        answer
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        self.current.lines.push(line);
    }

    fn status(&self, n: u8) -> u8 {
        let bit = |on: bool, mask: u8| if on { mask } else { 0 };
        // Bits 1 and 4 are always set in a real-time status byte.
        let fixed = 0x12;
        match n {
            1 => fixed | bit(self.paper_out || self.cover_open, 0x08),
            2 => fixed | bit(self.cover_open, 0x04) | bit(self.paper_out, 0x20),
            4 => fixed | bit(self.paper_out, 0x6c),
            _ => fixed,
        }
    }

    /// Interpret one command at the start of `d`; `None` if it is incomplete.
    fn command(&mut self, d: &[u8], answer: &mut Vec<u8>) -> Option<usize> {
        let need = |n: usize| (d.len() >= n).then_some(n);
        match d[0] {
            0x10 if d.get(1) == Some(&0x04) => {
                let n = *d.get(2)?;
                self.status_queries += 1;
                answer.push(self.status(n));
                Some(3)
            }
            0x1b => match *d.get(1)? {
                0x40 => need(2),
                0x70 => need(5).inspect(|_| self.drawer_kicks += 1),
                0x74 | 0x45 | 0x61 | 0x64 | 0x21 | 0x2d => need(3),
                _ => need(2),
            },
            0x1d => match *d.get(1)? {
                0x56 => {
                    let m = *d.get(2)?;
                    let len = if m == 0x41 || m == 0x42 { need(4)? } else { 3 };
                    if !self.line.is_empty() {
                        self.end_line();
                    }
                    let mut receipt = std::mem::take(&mut self.current);
                    receipt.cut = true;
                    self.receipts.push(receipt);
                    Some(len)
                }
                0x28 => {
                    // GS ( k pL pH cn fn [data]: length-prefixed 2D code commands.
                    let (p_l, p_h) = (*d.get(3)?, *d.get(4)?);
                    let len = usize::from(p_l) + 256 * usize::from(p_h);
                    let body = d.get(5..5 + len)?;
                    if d[2] == 0x6b && body.len() >= 3 && body[0] == 0x31 {
                        match body[1] {
                            0x50 => {
                                self.qr_stored =
                                    Some(String::from_utf8_lossy(&body[3..]).into_owned())
                            }
                            0x51 => {
                                if let Some(qr) = self.qr_stored.take() {
                                    self.current.qr_codes.push(qr);
                                }
                            }
                            _ => {}
                        }
                    }
                    Some(5 + len)
                }
                0x21 => need(3),
                _ => need(2),
            },
            0x0a => {
                self.end_line();
                Some(1)
            }
            b if b >= 0x20 => {
                self.line.push(pc858(b));
                Some(1)
            }
            _ => Some(1),
        }
    }
}
