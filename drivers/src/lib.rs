//! kassa-drivers: the store terminal's serial peripherals (customer display, barcode scanner,
//! receipt printer, card reader) as bytes-in/bytes-out protocol code plus one port thread per device.
//! This crate knows nothing of Klarna, sales or SQLite: callers hand it already formatted text.
//!
//! The protocol modules (`codepage`, `display`, `scanner`, `gs1`, `printer`, `card`) are pure and
//! do no I/O; `port` and the device handles (`CustomerDisplay`, `BarcodeScanner`, `ReceiptPrinter`,
//! `CardReader`) own the serial ports, survive unplugging, and publish a `DeviceState`.

pub mod card;
pub mod codepage;
pub mod config;
pub mod devices;
pub mod display;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod gs1;
mod port;
pub mod printer;
pub mod scanner;
pub mod state;

pub use card::{CardBrand, CardSwipe, LoyaltyCard, PaymentCard};
pub use config::{
    CardReaderConfig, DataBits, DevicesConfig, DisplayConfig, Parity, PortConfig, PrinterConfig,
    ScannerConfig, StopBits, UsbMatch,
};
pub use devices::{BarcodeScanner, CardReader, CustomerDisplay, ReceiptPrinter};
pub use display::{DisplayCommandSet, DisplayScreen, ScreenLabels};
pub use error::DriverError;
pub use printer::{PrinterStatus, QrErrorCorrection, Receipt, ReceiptLine};
pub use scanner::{Scan, ScanSuffix, Symbology};
pub use state::DeviceState;
