//! kassa-ui: placeholder crate; see ARCHITECTURE.md.
