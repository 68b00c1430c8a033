//! Simulated serial barcode scanner: types scans into the pseudo-terminal with a configurable
//! suffix, optional AIM identifier, and optional noise (BOM, stray control bytes).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::pty::{Responder, SimPort};

/// How the simulated scanner is set up (its programming barcodes, in real life).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimScannerSettings {
    /// Bytes after each scan, e.g. `b"\r\n"`; empty for none.
    pub suffix: Vec<u8>,
    /// Send a UTF-8 BOM and stray control bytes around each scan.
    pub noise: bool,
}

impl Default for SimScannerSettings {
    fn default() -> Self {
        Self {
            suffix: b"\r\n".to_vec(),
            noise: false,
        }
    }
}

/// A barcode scanner on a pseudo-terminal.
pub struct SimScanner {
    port: SimPort,
    settings: SimScannerSettings,
}

impl SimScanner {
    pub fn start(settings: SimScannerSettings) -> io::Result<(Self, PathBuf)> {
        Self::start_at(settings, None)
    }

    /// As `start`, reachable through a stable symlink `link`.
    pub fn start_at(
        settings: SimScannerSettings,
        link: Option<&Path>,
    ) -> io::Result<(Self, PathBuf)> {
        let responder: Responder = Arc::new(Mutex::new(|_: &[u8]| Vec::new()));
        let port = SimPort::open(link, responder)?;
        let path = port.path();
        Ok((Self { port, settings }, path))
    }

    /// Scan `code` with AIM identifiers off.
    pub fn scan(&self, code: &[u8]) -> io::Result<()> {
        self.scan_with_aim(None, code)
    }

    /// Scan `code`, prefixed with an AIM identifier such as `"]E0"` when given.
    pub fn scan_with_aim(&self, aim: Option<&str>, code: &[u8]) -> io::Result<()> {
        let mut bytes = Vec::new();
        if self.settings.noise {
            bytes.extend_from_slice(&[0xef, 0xbb, 0xbf, 0x00, 0x02]);
        }
        if let Some(aim) = aim {
            bytes.extend_from_slice(aim.as_bytes());
        }
        bytes.extend_from_slice(code);
        if self.settings.noise {
            bytes.push(0x03);
        }
        bytes.extend_from_slice(&self.settings.suffix);
        self.port.send(&bytes)
    }

    /// Raw bytes, for half frames and line noise.
    pub fn send_raw(&self, bytes: &[u8]) -> io::Result<()> {
        self.port.send(bytes)
    }

    pub fn port(&mut self) -> &mut SimPort {
        &mut self.port
    }
}
