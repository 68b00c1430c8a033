//! The terminal's configuration file (TOML) and the secrets it points to. Everything a store or IT
//! may change lives here; anything marked [inferred]/[draft] in klarna-api.md is a value here too.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Currency;

/// Errors that stop the agent from starting; each says which setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid configuration: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}` so the Klarna key stays secret"
    )]
    SecretFileTooOpen { path: PathBuf, mode: u32 },
    #[error(
        "no Klarna API key: set klarna.api_key_file or the KASSA_KLARNA_API_KEY environment variable"
    )]
    MissingApiKey,
}

/// A secret string (API key, bearer token) that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Identifies this till in the journal and to Klarna (`terminal_reference`).
    pub terminal_id: String,
    /// Identifies the store in the journal and, unless `[klarna.point_of_checkout]` says
    /// otherwise, to Klarna (`point_of_checkout.store_reference`).
    pub store_id: String,
    /// Where the SQLite database lives.
    pub data_dir: PathBuf,
    /// A production terminal refuses plain HTTP to Klarna and the sandbox's test controls.
    #[serde(default)]
    pub production: bool,
    /// Currency of new sales when the caller names none.
    pub currency: Currency,
    /// Name recorded as operator when the caller names none.
    #[serde(default = "default_operator")]
    pub default_operator: String,
    /// File present while a sale or payment is open, so `kassa-update` never switches versions
    /// mid-sale (packaged: /run/kassa/busy).
    #[serde(default)]
    pub busy_file: Option<PathBuf>,
    pub klarna: KlarnaConfig,
    #[serde(default)]
    pub payment: PaymentConfig,
    #[serde(default)]
    pub api: ApiConfig,
    /// What may wait in the outbox, and its back-off.
    #[serde(default)]
    pub outbox: OutboxLimits,
    /// Circuit breaker, degraded threshold and announced maintenance windows.
    #[serde(default)]
    pub health: HealthConfig,
    /// When a return needs a manager's approval.
    #[serde(default)]
    pub returns: ReturnsConfig,
    /// How lines are added and edited.
    #[serde(default)]
    pub sale: SaleConfig,
    /// Cash: rounding to the smallest coin per currency.
    #[serde(default)]
    pub cash: CashConfig,
    /// Staff sign-in: idle lock, and whether a change needs someone signed in.
    #[serde(default)]
    pub staff: StaffConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Serial peripherals (`[devices.display]`, `[devices.scanner]`, `[devices.printer]`,
    /// `[devices.card_reader]`); a till without any sells through the API and screens alone.
    #[serde(default)]
    pub devices: kassa_drivers::DevicesConfig,
    /// Products the barcode scanner can sell (`[[catalogue]]`), added to those of `catalogue_file`.
    #[serde(default)]
    pub catalogue: Vec<CatalogueItem>,
    /// CSV of products (`gtin,name,unit_price`, prices in minor units), e.g.
    /// `assets/catalogue.example.csv`; a relative path is taken from the working directory.
    #[serde(default)]
    pub catalogue_file: Option<PathBuf>,
    /// The printed receipt's header and footer lines.
    #[serde(default)]
    pub receipt: ReceiptConfig,
}

fn default_operator() -> String {
    "cashier".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlarnaConfig {
    /// `https://api-global.test.klarna.com` (test), `https://api-global.klarna.com` (live), or the sandbox.
    pub base_url: String,
    /// The merchant account Klarna calls are made for (`krn:partner:global:account:...`).
    pub partner_account_id: String,
    /// File holding the API key (already base64, as Klarna issues it); must be mode 0600.
    /// `KASSA_KLARNA_API_KEY` in the environment is used when this is absent.
    pub api_key_file: Option<PathBuf>,
    /// PEM CA certificate(s) to trust instead of the system roots (pins a test CA).
    pub ca_file: Option<PathBuf>,
    /// PEM file with a client certificate and its private key, for mutual TLS.
    pub client_identity_file: Option<PathBuf>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Where Klarna sends the customer after approving on their phone.
    #[serde(default = "default_return_url")]
    pub return_url: String,
    /// Locale for eligibility checks, e.g. sv-SE.
    #[serde(default = "default_locale")]
    pub locale: String,
    /// HMAC signing keys for Klarna webhooks, by key id (`Klarna-Signing-Key-Id`).
    #[serde(default)]
    pub webhook_signing_keys: BTreeMap<String, String>,
    /// How the store is named to Klarna in `point_of_checkout` [draft in-store pages].
    #[serde(default)]
    pub point_of_checkout: PointOfCheckoutConfig,
}

/// The store as Klarna's `point_of_checkout` names it: exactly one of an onboarded store's
/// `store_id` (Klarna's id) or `store_reference` (the partner's), or a `store` object for a store
/// not onboarded at Klarna (its fields passed as configured; `type` is `PHYSICAL_STORE`). With
/// none of them, the till's `store_id` is sent as `store_reference`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointOfCheckoutConfig {
    pub store_id: Option<String>,
    pub store_reference: Option<String>,
    pub store: Option<BTreeMap<String, toml::Value>>,
}

/// What `point_of_checkout` carries, after the configuration is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAtKlarna {
    Id(String),
    Reference(String),
    /// A store not onboarded at Klarna: the object to send.
    Store(serde_json::Value),
}

impl PointOfCheckoutConfig {
    /// The store to name to Klarna, or why the configuration cannot name one.
    pub fn resolve(&self, till_store_id: &str) -> Result<StoreAtKlarna, String> {
        let text = |k: &str, v: &str| {
            if v.trim().is_empty() || v.len() > 255 {
                Err(format!(
                    "klarna.point_of_checkout.{k} must be 1 to 255 characters"
                ))
            } else {
                Ok(v.to_string())
            }
        };
        match (&self.store_id, &self.store_reference, &self.store) {
            (Some(id), None, None) => text("store_id", id).map(StoreAtKlarna::Id),
            (None, Some(r), None) => text("store_reference", r).map(StoreAtKlarna::Reference),
            (None, None, Some(store)) => {
                if store.is_empty() {
                    return Err("klarna.point_of_checkout.store names no fields".into());
                }
                let mut v = serde_json::to_value(store)
                    .map_err(|e| format!("klarna.point_of_checkout.store: {e}"))?;
                match v.get("type").map(|t| t.as_str()) {
                    None => v["type"] = serde_json::json!("PHYSICAL_STORE"),
                    Some(Some("PHYSICAL_STORE")) => {}
                    Some(_) => {
                        return Err(
                            "klarna.point_of_checkout.store.type must be PHYSICAL_STORE (a till is in a physical store)".into(),
                        );
                    }
                }
                Ok(StoreAtKlarna::Store(v))
            }
            (None, None, None) => text("store_reference (from store_id)", till_store_id)
                .map(StoreAtKlarna::Reference),
            _ => Err(
                "klarna.point_of_checkout takes exactly one of store_id, store_reference or [klarna.point_of_checkout.store]".into(),
            ),
        }
    }
}

fn default_connect_timeout_ms() -> u64 {
    2000
}
fn default_request_timeout_ms() -> u64 {
    8000
}
fn default_return_url() -> String {
    "https://kassa.invalid/payment-done".into()
}
fn default_locale() -> String {
    "sv-SE".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentConfig {
    /// The till gives up on a customer who has not paid after this long, and cancels at Klarna.
    pub in_store_timeout_secs: u64,
    /// How often the till asks Klarna whether the customer has paid, at first (see
    /// `poll_fast_secs`); Klarna's pages call webhooks the way to learn it and warn that polling
    /// meets rate limits, so polls then slow down.
    pub poll_interval_ms: u64,
    /// For how long after the QR code appears polls come every `poll_interval_ms`.
    pub poll_fast_secs: u64,
    /// The longest pause between two polls of one payment request (the pause grows by half each
    /// poll after the fast phase, up to this).
    pub poll_max_interval_ms: u64,
    /// While verified webhooks arrive (one in the last 10 minutes), polling is only the fallback:
    /// one poll this often.
    pub webhook_fallback_poll_ms: u64,
    /// `NOW` captures at once (goods handed over in store); `LATER` leaves it to the outbox.
    pub capture: String,
}

impl Default for PaymentConfig {
    fn default() -> Self {
        PaymentConfig {
            in_store_timeout_secs: 300,
            poll_interval_ms: 1000,
            poll_fast_secs: 10,
            poll_max_interval_ms: 5000,
            webhook_fallback_poll_ms: 15000,
            capture: "NOW".into(),
        }
    }
}

impl PaymentConfig {
    pub fn in_store_timeout(&self) -> Duration {
        Duration::from_secs(self.in_store_timeout_secs)
    }
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(50))
    }

    /// The pause before the next poll of a payment request, `elapsed` after the follower started
    /// and `last` after the previous pause; `webhooks_live` when verified webhooks arrive.
    pub fn next_poll(&self, elapsed: Duration, last: Duration, webhooks_live: bool) -> Duration {
        let base = self.poll_interval();
        let max = Duration::from_millis(self.poll_max_interval_ms).max(base);
        if webhooks_live {
            return Duration::from_millis(self.webhook_fallback_poll_ms).max(base);
        }
        if elapsed < Duration::from_secs(self.poll_fast_secs) {
            return base;
        }
        last.mul_f64(1.5).clamp(base, max)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Loopback address of the local control API.
    pub listen: SocketAddr,
    /// File holding the bearer token; `KASSA_API_TOKEN` in the environment is used when absent.
    pub token_file: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7171)),
            token_file: None,
        }
    }
}

/// How long journal rows stay in the live database before `kassa journal archive` moves them to
/// compressed files (which still verify and stay searchable).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Rows older than this many days, and already inside a closed day (Z-report), are archived.
    pub archive_after_days: u32,
    /// Where archive files go; `<data_dir>/archive` when absent.
    pub archive_dir: Option<PathBuf>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            archive_after_days: 90,
            archive_dir: None,
        }
    }
}

/// Keys in `[devices.<role>]` that no device reads. `deny_unknown_fields` cannot see through
/// the sections' flattened port settings, so they are checked against the drivers' key lists:
/// a typo (`widht = 32`) is an error, never a silent default.
fn unknown_device_keys(text: &str) -> Vec<String> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(devices) = table.get("devices").and_then(toml::Value::as_table) else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    for (role, section) in devices {
        let (Some(keys), Some(section)) =
            (kassa_drivers::config::role_keys(role), section.as_table())
        else {
            continue;
        };
        for key in section.keys() {
            let key = key.as_str();
            if !kassa_drivers::config::PORT_KEYS.contains(&key) && !keys.contains(&key) {
                unknown.push(format!("devices.{role}.{key}"));
            }
        }
    }
    unknown
}

impl Config {
    /// Where archived journal files live.
    pub fn archive_dir(&self) -> PathBuf {
        self.retention
            .archive_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("archive"))
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            path: path.into(),
            message,
        };
        let cfg: Config = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        let unknown = unknown_device_keys(text);
        if !unknown.is_empty() {
            return Err(parse_err(format!("unknown key(s): {}", unknown.join(", "))));
        }
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.terminal_id.trim().is_empty() || self.store_id.trim().is_empty() {
            return invalid("terminal_id and store_id must not be empty".into());
        }
        let url = &self.klarna.base_url;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return invalid(format!("klarna.base_url {url:?} must be an http(s) URL"));
        }
        if self.production && !url.starts_with("https://") {
            return invalid(format!(
                "klarna.base_url {url:?} is plain HTTP, which a production terminal refuses: use https://"
            ));
        }
        if let Err(m) = self.klarna.point_of_checkout.resolve(&self.store_id) {
            return invalid(m);
        }
        if self.terminal_id.len() > 255 {
            return invalid("terminal_id (point_of_transaction.terminal_reference) must be at most 255 characters".into());
        }
        if !matches!(self.payment.capture.as_str(), "NOW" | "LATER") {
            return invalid("payment.capture must be NOW or LATER".into());
        }
        if self.payment.in_store_timeout_secs == 0 {
            return invalid("payment.in_store_timeout_secs must be at least 1".into());
        }
        if !(10..=86_400).contains(&self.staff.idle_lock_secs) {
            return invalid(format!(
                "staff.idle_lock_secs is {}: give 10 to 86400 seconds",
                self.staff.idle_lock_secs
            ));
        }
        if self.sale.price_cut_without_manager_percent > 100 {
            return invalid(format!(
                "sale.price_cut_without_manager_percent is {}, above 100: a price cannot fall by more than all of it",
                self.sale.price_cut_without_manager_percent
            ));
        }
        for (code, step) in &self.cash.rounding {
            if code.parse::<crate::money::Currency>().is_err() {
                return invalid(format!(
                    "cash.rounding names {code:?}, which is not an ISO 4217 currency"
                ));
            }
            if !(1..=100_000).contains(step) {
                return invalid(format!(
                    "cash.rounding.{code} is {step}: give the smallest coin in minor units (1 to 100000)"
                ));
            }
        }
        if !self.api.listen.ip().is_loopback() {
            return invalid(format!(
                "api.listen {} is not a loopback address; the control API must stay on this terminal",
                self.api.listen
            ));
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("kassa.db")
    }

    /// The Klarna API key, from its file (mode 0600 enforced) or the environment.
    pub fn klarna_api_key(&self) -> Result<Secret, ConfigError> {
        match &self.klarna.api_key_file {
            Some(path) => read_secret_file(path),
            None => std::env::var("KASSA_KLARNA_API_KEY")
                .ok()
                .filter(|s| !s.trim().is_empty())
                .map(|s| Secret::new(s.trim()))
                .ok_or(ConfigError::MissingApiKey),
        }
    }

    /// The local API's bearer token, from its file or the environment.
    pub fn api_token(&self) -> Result<Secret, ConfigError> {
        match &self.api.token_file {
            Some(path) => read_secret_file(path),
            None => std::env::var("KASSA_API_TOKEN")
                .ok()
                .filter(|s| !s.trim().is_empty())
                .map(|s| Secret::new(s.trim()))
                .ok_or_else(|| {
                    ConfigError::Invalid(
                        "no API token: set api.token_file or KASSA_API_TOKEN".into(),
                    )
                }),
        }
    }
}

/// Reads a secret from a file that only its owner may read.
pub fn read_secret_file(path: &Path) -> Result<Secret, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::SecretFileTooOpen {
            path: path.into(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    let s = text.trim();
    if s.is_empty() {
        return Err(ConfigError::Invalid(format!("{} is empty", path.display())));
    }
    Ok(Secret::new(s))
}

// ---------------------------------------------------------------- sections kept by their owners
// Defined here so that config is a leaf of the module graph (issue 16): the modules that use a
// section import it from here (and re-export it under their own name).

/// What may wait in the outbox (defaults from Stripe's and Adyen's store-and-forward).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxLimits {
    /// Oldest an operation may be while waiting; past it, new operations are refused.
    pub max_age_hours: i64,
    pub max_count: i64,
    /// Largest total waiting per currency, in minor units; currencies not named use `default_max_total`.
    pub max_total: BTreeMap<String, i64>,
    pub default_max_total: i64,
    /// Percent of any limit at which managers are alerted.
    pub alert_percent: i64,
    /// Exponential back-off: first delay and cap.
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        OutboxLimits {
            max_age_hours: 24,
            max_count: 10_000,
            max_total: BTreeMap::new(),
            default_max_total: 10_000_000,
            alert_percent: 80,
            backoff_base_ms: 500,
            backoff_cap_ms: 300_000,
        }
    }
}

/// How a sale's lines are added and edited (`[sale]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaleConfig {
    /// A product added again (scanned or tapped twice) raises its line's quantity instead of
    /// adding a second line.
    pub merge_repeated: bool,
    /// A price change that lowers a line's unit price by more than this share (percent) needs a
    /// manager's PIN; 0: every reduction does.
    pub price_cut_without_manager_percent: u32,
}

impl Default for SaleConfig {
    fn default() -> Self {
        SaleConfig {
            merge_repeated: true,
            price_cut_without_manager_percent: 10,
        }
    }
}

/// Staff at the till (`[staff]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaffConfig {
    /// A signed-in session locks after this many seconds without use.
    pub idle_lock_secs: u64,
    /// Every change (a sale, a tender, a return) must come from a signed-in member of staff;
    /// off, a request may name its operator (or get `default_operator`), as before accounts.
    pub require_sign_in: bool,
}

impl Default for StaffConfig {
    fn default() -> Self {
        StaffConfig {
            idle_lock_secs: 300,
            require_sign_in: false,
        }
    }
}

/// How cash is taken (`[cash]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CashConfig {
    /// The smallest coin per currency, in minor units: what is left to pay in cash is rounded to
    /// it (Sweden: `SEK = 100`, whole kronor). A currency not named is not rounded.
    pub rounding: std::collections::BTreeMap<String, i64>,
}

impl CashConfig {
    /// The rounding step for `currency` (1: none).
    pub fn step(&self, currency: &str) -> i64 {
        self.rounding.get(currency).copied().unwrap_or(1).max(1)
    }
}

/// When a return needs a manager's PIN.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReturnsConfig {
    /// Returns above this amount (minor units, any currency) need a manager.
    pub approval_above: i64,
    /// Returns without proof of purchase (no receipt or order confirmation) need a manager.
    pub approval_without_proof: bool,
}

impl Default for ReturnsConfig {
    fn default() -> Self {
        ReturnsConfig {
            approval_above: 100_000,
            approval_without_proof: true,
        }
    }
}

/// A maintenance window Klarna announced (at most 5 a year, 15 h a year, 7 days ahead).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    #[schema(value_type = String)]
    pub start: DateTime<Utc>,
    #[schema(value_type = String)]
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Consecutive failed calls (no answer or 5xx) that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker waits before a half-open probe.
    pub breaker_cooldown_ms: u64,
    /// Availability over 5 minutes below this (percent) makes Klarna "degraded".
    pub degraded_below_percent: f64,
    /// How far ahead an announced maintenance window is shown to the cashier.
    pub announce_days: i64,
    pub maintenance: Vec<Maintenance>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            breaker_failures: 5,
            breaker_cooldown_ms: 10_000,
            degraded_below_percent: 99.0,
            announce_days: 7,
            maintenance: vec![],
        }
    }
}

/// One product the scanner can sell (`[[catalogue]]` entry or CSV row).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueItem {
    /// EAN-8, UPC-A, EAN-13 or GTIN-14 as printed under the barcode (check digit included).
    pub gtin: String,
    /// Shown on the display and the receipt, and sent to Klarna.
    pub name: String,
    /// Minor units of the till's currency (öre, cent).
    pub unit_price: i64,
}

/// The printed receipt's own words; the sale fills in the rest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiptConfig {
    /// Centred lines at the top, the first printed large (the store's name); `store_id` when empty.
    pub header: Vec<String>,
    /// Centred lines at the bottom.
    pub footer: Vec<String>,
    /// Label of the total line.
    pub total_label: String,
}

impl Default for ReceiptConfig {
    fn default() -> Self {
        Self {
            header: Vec::new(),
            footer: vec!["Thank you!".into(), "Keep the receipt for returns".into()],
            total_label: "Total".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
terminal_id = "till-1"
store_id = "store-1"
data_dir = "/tmp/kassa"
currency = "SEK"
[klarna]
base_url = "http://127.0.0.1:9"
partner_account_id = "krn:partner:global:account:test:X"
"#;

    #[test]
    fn minimal_config_gets_sensible_defaults() {
        let cfg = Config::parse(MINIMAL, Path::new("t.toml")).unwrap();
        assert_eq!(cfg.payment.in_store_timeout_secs, 300);
        assert_eq!(cfg.api.listen.port(), 7171);
    }

    #[test]
    fn the_store_is_named_to_klarna_as_configured_and_checked_at_start() {
        let parse = |extra: &str| Config::parse(&format!("{MINIMAL}{extra}"), Path::new("t.toml"));
        let cfg = parse("").unwrap();
        assert_eq!(
            cfg.klarna.point_of_checkout.resolve(&cfg.store_id),
            Ok(StoreAtKlarna::Reference("store-1".into()))
        );
        let cfg = parse("[klarna.point_of_checkout]\nstore_id = \"krn:store:1\"\n").unwrap();
        assert_eq!(
            cfg.klarna.point_of_checkout.resolve(&cfg.store_id),
            Ok(StoreAtKlarna::Id("krn:store:1".into()))
        );
        let cfg = parse("[klarna.point_of_checkout.store]\nname = \"Store 42\"\n").unwrap();
        assert_eq!(
            cfg.klarna.point_of_checkout.resolve(&cfg.store_id),
            Ok(StoreAtKlarna::Store(
                serde_json::json!({"name": "Store 42", "type": "PHYSICAL_STORE"})
            ))
        );
        for (bad, why) in [
            (
                "[klarna.point_of_checkout]\nstore_id = \"a\"\nstore_reference = \"b\"\n",
                "exactly one",
            ),
            (
                "[klarna.point_of_checkout]\nstore_reference = \" \"\n",
                "1 to 255",
            ),
            (
                "[klarna.point_of_checkout.store]\ntype = \"WEBSITE\"\n",
                "PHYSICAL_STORE",
            ),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn polls_slow_down_after_the_fast_phase_and_while_webhooks_arrive() {
        let p = PaymentConfig::default();
        let s = Duration::from_secs;
        assert_eq!(p.next_poll(s(3), s(1), false), s(1));
        assert_eq!(p.next_poll(s(11), s(1), false), Duration::from_millis(1500));
        assert_eq!(p.next_poll(s(40), s(4), false), s(5));
        assert_eq!(p.next_poll(s(1), s(1), true), s(15));
    }

    #[test]
    fn production_refuses_plain_http() {
        let text = format!("production = true\n{MINIMAL}");
        let err = Config::parse(&text, Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("plain HTTP"), "{err}");
    }

    #[test]
    fn unknown_keys_and_currencies_are_named() {
        let err =
            Config::parse(&format!("colour = 1\n{MINIMAL}"), Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err = Config::parse(&MINIMAL.replace("SEK", "XXY"), Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("XXY"), "{err}");
        // Device sections flatten their port settings, which serde's own check cannot see into.
        let printer = format!("{MINIMAL}\n[devices.printer]\npath = \"/dev/ttyS0\"\nwidht = 32\n");
        let err = Config::parse(&printer, Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("devices.printer.widht"), "{err}");
        let fine = printer.replace("widht", "width");
        let cfg = Config::parse(&fine, Path::new("t.toml")).unwrap();
        assert_eq!(cfg.devices.printer.map(|p| p.width), Some(32));
        let err = Config::parse(
            &fine.replace("[devices.printer]", "[devices.printr]"),
            Path::new("t.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("printr"), "{err}");
    }

    #[test]
    fn a_world_readable_key_file_is_refused_and_secrets_never_print() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "c2VjcmV0\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read_secret_file(&path),
            Err(ConfigError::SecretFileTooOpen { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let key = read_secret_file(&path).unwrap();
        assert_eq!(key.expose(), "c2VjcmV0");
        assert!(!format!("{key:?}").contains("c2VjcmV0"));
    }
}

#[cfg(test)]
mod example_tests {
    #[test]
    fn the_shipped_example_configuration_is_valid() {
        let path = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../assets/kassa.example.toml"
        ));
        super::Config::load(path).unwrap();
    }
}
