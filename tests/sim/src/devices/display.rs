//! Simulated 20×2 customer pole display: interprets the Epson ESC/POS or CD5220 bytes it receives
//! (from devices.md, independently of kassa-drivers) into the two lines a customer would read.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::pty::{Responder, SimPort, lock};

const COLS: usize = 20;

/// Which command set the simulated display understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimDisplayCommandSet {
    Epson,
    Cd5220,
}

#[derive(Debug)]
struct Screen {
    set: SimDisplayCommandSet,
    cells: [[char; COLS]; 2],
    col: usize,
    row: usize,
    /// Bytes not yet interpreted (a command split across reads).
    pending: Vec<u8>,
    bytes_received: usize,
    code_table: Option<u8>,
}

/// A customer display on a pseudo-terminal.
pub struct SimDisplay {
    port: SimPort,
    screen: Arc<Mutex<Screen>>,
}

impl SimDisplay {
    /// Plug in a display; returns it and the path to configure the driver with.
    pub fn start(set: SimDisplayCommandSet) -> io::Result<(Self, PathBuf)> {
        Self::start_at(set, None)
    }

    /// As `start`, reachable through a stable symlink `link` (for unplug/replug tests).
    pub fn start_at(set: SimDisplayCommandSet, link: Option<&Path>) -> io::Result<(Self, PathBuf)> {
        let screen = Arc::new(Mutex::new(Screen {
            set,
            cells: [[' '; COLS]; 2],
            col: 0,
            row: 0,
            pending: Vec::new(),
            bytes_received: 0,
            code_table: None,
        }));
        let s = screen.clone();
        let responder: Responder = Arc::new(Mutex::new(move |bytes: &[u8]| {
            lock(&s).feed(bytes);
            Vec::new()
        }));
        let port = SimPort::open(link, responder)?;
        let path = port.path();
        Ok((Self { port, screen }, path))
    }

    /// The two lines as shown now.
    pub fn screen(&self) -> [String; 2] {
        let s = lock(&self.screen);
        [s.cells[0].iter().collect(), s.cells[1].iter().collect()]
    }

    /// Bytes received since start, to check that unchanged screens are not re-sent.
    pub fn bytes_received(&self) -> usize {
        lock(&self.screen).bytes_received
    }

    /// The code table selected with `ESC t n`, if any.
    pub fn code_table(&self) -> Option<u8> {
        lock(&self.screen).code_table
    }

    /// The simulated port (path, unplug, replug).
    pub fn port(&mut self) -> &mut SimPort {
        &mut self.port
    }
}

impl Screen {
    fn feed(&mut self, bytes: &[u8]) {
        self.bytes_received += bytes.len();
        self.pending.extend_from_slice(bytes);
        let data = std::mem::take(&mut self.pending);
        let mut i = 0;
        while i < data.len() {
            let used = match self.set {
                SimDisplayCommandSet::Epson => self.epson(&data[i..]),
                SimDisplayCommandSet::Cd5220 => self.cd5220(&data[i..]),
            };
            match used {
                Some(n) => i += n,
                None => break,
            }
        }
        self.pending = data[i..].to_vec();
    }

    fn clear(&mut self) {
        self.cells = [[' '; COLS]; 2];
        self.col = 0;
        self.row = 0;
    }

    fn put(&mut self, byte: u8) {
        self.cells[self.row][self.col] = pc858(byte);
        self.col += 1;
        if self.col == COLS {
            self.col = 0;
            self.row = (self.row + 1) % 2;
        }
    }

    /// Interpret one Epson command at the start of `d`; `None` if it is incomplete.
    fn epson(&mut self, d: &[u8]) -> Option<usize> {
        let need = |n: usize| (d.len() >= n).then_some(n);
        match d[0] {
            0x1b => match *d.get(1)? {
                0x40 => {
                    self.clear();
                    need(2)
                }
                0x74 => {
                    self.code_table = Some(*d.get(2)?);
                    need(3)
                }
                _ => need(2),
            },
            0x1f => match *d.get(1)? {
                0x24 => {
                    let (x, y) = (*d.get(2)?, *d.get(3)?);
                    self.col = usize::from(x.clamp(1, COLS as u8) - 1);
                    self.row = usize::from(y.clamp(1, 2) - 1);
                    need(4)
                }
                0x43 | 0x58 | 0x45 | 0x72 => need(3),
                _ => need(2),
            },
            0x0c => {
                self.clear();
                Some(1)
            }
            0x18 => {
                self.cells[self.row] = [' '; COLS];
                self.col = 0;
                Some(1)
            }
            0x0b => {
                self.col = 0;
                self.row = 0;
                Some(1)
            }
            0x0d => {
                self.col = 0;
                Some(1)
            }
            0x0a => {
                self.row = (self.row + 1).min(1);
                Some(1)
            }
            0x08 => {
                self.col = self.col.saturating_sub(1);
                Some(1)
            }
            0x09 => {
                self.col = (self.col + 1).min(COLS - 1);
                Some(1)
            }
            b if b >= 0x20 => {
                self.put(b);
                Some(1)
            }
            _ => Some(1),
        }
    }

    /// Interpret one CD5220 command at the start of `d`; `None` if it is incomplete.
    fn cd5220(&mut self, d: &[u8]) -> Option<usize> {
        match d[0] {
            0x1b => match *d.get(1)? {
                0x40 => {
                    self.clear();
                    Some(2)
                }
                0x51 => {
                    let row = match *d.get(2)? {
                        0x41 => 0,
                        _ => 1,
                    };
                    let end = d[3..].iter().position(|&b| b == 0x0d)? + 3;
                    let mut line = [' '; COLS];
                    for (cell, &b) in line.iter_mut().zip(&d[3..end]) {
                        *cell = pc858(b);
                    }
                    self.cells[row] = line;
                    Some(end + 1)
                }
                0x6c => {
                    let (x, y) = (*d.get(2)?, *d.get(3)?);
                    self.col = usize::from(x.clamp(1, COLS as u8) - 1);
                    self.row = usize::from(y.clamp(1, 2) - 1);
                    Some(4)
                }
                0x5f | 0x2a => d.get(2).map(|_| 3),
                _ => Some(2),
            },
            0x0c => {
                self.clear();
                Some(1)
            }
            b if b >= 0x20 => {
                self.put(b);
                Some(1)
            }
            _ => Some(1),
        }
    }
}

/// The characters of PC858 a Nordic store uses; anything else shows as '¿' so a wrong mapping
/// is visible in test failures.
pub(crate) fn pc858(byte: u8) -> char {
    match byte {
        0x20..=0x7e => char::from(byte),
        0x81 => 'ü',
        0x82 => 'é',
        0x84 => 'ä',
        0x86 => 'å',
        0x8e => 'Ä',
        0x8f => 'Å',
        0x90 => 'É',
        0x94 => 'ö',
        0x99 => 'Ö',
        0x9a => 'Ü',
        0xa2 => 'ó',
        0xd5 => '€',
        _ => '¿',
    }
}
