//! kassa-sim: simulators of everything outside the terminal, for tests and the demo.
//! `sandbox` plays Klarna (klarna-api.md §1–§7); `devices` plays the serial peripherals.

pub mod devices;
pub mod sandbox;
