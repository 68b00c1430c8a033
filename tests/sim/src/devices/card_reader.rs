//! Simulated keyboard-less serial magnetic stripe reader: "swipes" track 1 and/or track 2 data
//! into the pseudo-terminal, as a reader does when a card passes its head.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::pty::{Responder, SimPort};

/// A card reader on a pseudo-terminal.
pub struct SimCardReader {
    port: SimPort,
}

impl SimCardReader {
    pub fn start() -> io::Result<(Self, PathBuf)> {
        Self::start_at(None)
    }

    /// As `start`, reachable through a stable symlink `link`.
    pub fn start_at(link: Option<&Path>) -> io::Result<(Self, PathBuf)> {
        let responder: Responder = Arc::new(Mutex::new(|_: &[u8]| Vec::new()));
        let port = SimPort::open(link, responder)?;
        let path = port.path();
        Ok((Self { port }, path))
    }

    /// Swipe a card whose stripe holds these tracks (complete with sentinels, e.g.
    /// `"%B4111…^DOE/J^2912…?"` and `";4111…=2912…?"`), followed by CR as most readers send.
    pub fn swipe(&self, track1: Option<&str>, track2: Option<&str>) -> io::Result<()> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(track1.unwrap_or_default().as_bytes());
        bytes.extend_from_slice(track2.unwrap_or_default().as_bytes());
        bytes.push(b'\r');
        self.port.send(&bytes)
    }

    pub fn port(&mut self) -> &mut SimPort {
        &mut self.port
    }
}
