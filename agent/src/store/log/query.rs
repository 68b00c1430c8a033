//! The log's filters as a client writes them (API query string, `kassa log` flags, as text) and
//! how they become a `LogFilter`: kept beside the filter, so that what a log query may contain
//! and its limits are said in one place.

use serde::Deserialize;
use utoipa::IntoParams;

use super::{LogError, LogFilter, LogKind, MAX_PAGE};

/// Rows per page when the query does not say.
const DEFAULT_PAGE: usize = 50;

/// The log's filters as query parameters; all optional, all must match.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// A date (2025-03-01, from its start, UTC) or an RFC 3339 time.
    pub from: Option<String>,
    /// A date (through its end) or an RFC 3339 time (exclusive).
    pub to: Option<String>,
    /// Comma-separated: sale, payment, return, refund, outbox, manager, system.
    pub kind: Option<String>,
    /// Current state of the payment (or sale), or an outbox row's state.
    pub state: Option<String>,
    /// Minor units, inclusive.
    pub min_amount: Option<i64>,
    pub max_amount: Option<i64>,
    pub currency: Option<String>,
    pub operator: Option<String>,
    /// A sale id, payment id, Klarna request or transaction id, or correlation id.
    pub reference: Option<String>,
    /// Case-insensitive substring of an id, the operator or the detail.
    pub text: Option<String>,
    /// Page cursor: `next_before` from the previous page.
    pub before: Option<i64>,
    /// Rows per page (default 50, at most 5000).
    pub limit: Option<usize>,
    /// For the export: csv (default) or json.
    pub format: Option<String>,
}

impl LogQuery {
    /// Builds the store's filter; shared with the CLI's flags.
    pub fn filter(&self) -> Result<LogFilter, LogError> {
        let mut f = LogFilter {
            kinds: match &self.kind {
                Some(k) => LogKind::parse_list(k)?,
                None => Vec::new(),
            },
            state: self.state.clone(),
            min_amount: self.min_amount,
            max_amount: self.max_amount,
            currency: self.currency.clone(),
            operator: self.operator.clone(),
            reference: self.reference.clone(),
            text: self.text.clone().filter(|t| !t.is_empty()),
            ..Default::default()
        };
        if let Some(s) = &self.from {
            f = f.from(s)?;
        }
        if let Some(s) = &self.to {
            f = f.to(s)?;
        }
        f.validate()?;
        Ok(f)
    }

    /// Rows per page: `limit`, or 50, within 1 to `MAX_PAGE`.
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
    }
}
