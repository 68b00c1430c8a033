//! Shared helpers for kassa's end-to-end tests.
