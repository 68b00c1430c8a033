//! Simulated serial peripherals on pseudo-terminals (customer display, scanner, printer, card
//! reader). The code under test opens the slave path exactly as it would open /dev/ttyUSB0; each
//! sim plays the device on the master side. Decoders here are written from devices.md, not shared.

mod card_reader;
mod display;
mod printer;
mod pty;
mod scanner;

pub use card_reader::SimCardReader;
pub use display::{SimDisplay, SimDisplayCommandSet};
pub use printer::{PrintedReceipt, SimPrinter};
pub use pty::{SimPort, wait_until};
pub use scanner::{SimScanner, SimScannerSettings};
