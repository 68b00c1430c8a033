//! kassa-ui: the cashier's and the customer's screens. The `.slint` files (compiled by build.rs)
//! only render and raise callbacks; the controllers here decide what they show, as plain Rust
//! tested without a window; `bind` copies a controller's view into the screens' globals.
//!
//! No I/O and no Klarna here: the agent's `screen` module feeds sales in and acts on callbacks.

pub mod amount;
pub mod bind;
pub mod language;
pub mod manager_area;
pub mod qr;
pub mod return_screen;
pub mod sale_screen;
pub mod status_bar;
pub mod words;

/// The Slint components and globals generated from `ui/*.slint`.
pub mod screens {
    slint::include_modules!();
}

pub use language::Language;
pub use sale_screen::{SaleScreenModel, SaleScreenView};
/// The Slint the screens were built with, so the agent drives them with the very same version.
pub use slint;
