//! kassa's domain core, without I/O: money as integer minor units, the in-store payment attempt
//! as a pure state machine, and what Klarna's answers mean for the till. The agent does the
//! talking (HTTP, SQLite, screens) and asks this crate what follows; every decision here is a
//! pure function tested through tables.

pub mod counter;
pub mod decide;
pub mod klarna_answer;
pub mod money;
pub mod payment;
pub mod pin;
pub mod sale;
pub mod staff;
pub mod tender;
