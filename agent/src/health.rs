//! Klarna's health as the service-level seed defines it: per SLO category, over rolling windows,
//! request count, p50/p99 latency and availability A = SR / R × 100 (2xx, 3xx and 4xx served;
//! timeouts and connection failures not), plus a circuit breaker and maintenance windows.

pub use crate::config::{HealthConfig, Maintenance};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::klarna::{CallRecord, SloCategory, counts_as_served};
use crate::store::InvalidParam;

/// The longest window kept (reports); older samples are dropped.
const KEEP: Duration = Duration::from_secs(30 * 24 * 3600);

/// Rolling windows the CLI and API offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Window {
    #[serde(rename = "5m")]
    FiveMinutes,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "24h")]
    OneDay,
    #[serde(rename = "30d")]
    ThirtyDays,
}

impl Window {
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Window::FiveMinutes => 300,
            Window::OneHour => 3600,
            Window::OneDay => 86_400,
            Window::ThirtyDays => 30 * 86_400,
        })
    }
    pub fn parse(s: &str) -> Option<Window> {
        match s {
            "5m" => Some(Window::FiveMinutes),
            "1h" => Some(Window::OneHour),
            "24h" => Some(Window::OneDay),
            "30d" => Some(Window::ThirtyDays),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Window::FiveMinutes => "5m",
            Window::OneHour => "1h",
            Window::OneDay => "24h",
            Window::ThirtyDays => "30d",
        }
    }
}

/// How a client asks for the SLO table: the window its figures cover (5 minutes when absent).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct SloQuery {
    #[param(nullable = false)]
    pub window: Option<String>,
}

impl SloQuery {
    pub fn window(&self) -> Result<Window, InvalidParam> {
        match self.window.as_deref() {
            None => Ok(Window::FiveMinutes),
            Some(w) => Window::parse(w)
                .ok_or_else(|| InvalidParam::new("window", "window is one of 5m, 1h, 24h, 30d")),
        }
    }
}

/// What the till tells the cashier about Klarna.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KlarnaState {
    Online,
    Degraded,
    Offline,
}

/// The circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Breaker {
    Closed,
    Open,
    /// The cool-down passed: one probe may go through.
    HalfOpen,
}

/// One row of the per-category table.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CategoryFigures {
    pub category: String,
    pub requests: u64,
    pub served: u64,
    /// A = SR / R × 100; None with no requests.
    pub availability_percent: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: DateTime<Utc>,
    served: bool,
    latency: Duration,
}

#[derive(Debug)]
struct Inner {
    samples: BTreeMap<SloCategory, VecDeque<Sample>>,
    consecutive_failures: u32,
    breaker: Breaker,
    opened_at: Option<DateTime<Utc>>,
}

/// Klarna's health as seen from this till; fed by every Klarna call.
#[derive(Debug)]
pub struct Health {
    cfg: HealthConfig,
    inner: Mutex<Inner>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

impl Health {
    pub fn new(cfg: HealthConfig) -> Self {
        Health {
            cfg,
            inner: Mutex::new(Inner {
                samples: BTreeMap::new(),
                consecutive_failures: 0,
                breaker: Breaker::Closed,
                opened_at: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn in_maintenance(&self, at: DateTime<Utc>) -> Option<&Maintenance> {
        self.cfg
            .maintenance
            .iter()
            .find(|m| m.start <= at && at < m.end)
    }

    /// The next maintenance window that the cashier should be told about (current or announced).
    pub fn upcoming_maintenance(&self, now: DateTime<Utc>) -> Option<&Maintenance> {
        let horizon = now + chrono::Duration::days(self.cfg.announce_days);
        self.cfg
            .maintenance
            .iter()
            .filter(|m| m.end > now && m.start <= horizon)
            .min_by_key(|m| m.start)
    }

    /// Records one call's outcome (at the time it was made).
    pub fn record_at(
        &self,
        category: SloCategory,
        status: Option<u16>,
        latency: Duration,
        at: DateTime<Utc>,
    ) {
        let served = counts_as_served(status);
        let mut g = self.lock();
        // Calls during announced maintenance are excluded from availability, as the seed says.
        if self.in_maintenance(at).is_none() {
            let q = g.samples.entry(category).or_default();
            q.push_back(Sample {
                at,
                served,
                latency,
            });
            let keep = chrono::Duration::from_std(KEEP).unwrap_or_default();
            while q.front().is_some_and(|s| at - s.at > keep) {
                q.pop_front();
            }
        }
        // The breaker counts "Klarna did not answer properly": no answer, or a server error.
        let failed = status.is_none_or(|s| s >= 500);
        if failed {
            g.consecutive_failures += 1;
            if g.breaker == Breaker::HalfOpen
                || (g.breaker == Breaker::Closed
                    && g.consecutive_failures >= self.cfg.breaker_failures)
            {
                g.breaker = Breaker::Open;
                g.opened_at = Some(at);
            }
        } else {
            g.consecutive_failures = 0;
            g.breaker = Breaker::Closed;
            g.opened_at = None;
        }
    }

    pub fn record(&self, r: &CallRecord) {
        self.record_at(r.category, r.status, r.latency, Utc::now());
    }

    /// The breaker's state now (an open breaker becomes half-open after the cool-down).
    pub fn breaker(&self, now: DateTime<Utc>) -> Breaker {
        self.breaker_locked(&mut self.lock(), now)
    }

    fn breaker_locked(&self, g: &mut Inner, now: DateTime<Utc>) -> Breaker {
        if g.breaker == Breaker::Open
            && g.opened_at.is_some_and(|t| {
                now - t >= chrono::Duration::milliseconds(self.cfg.breaker_cooldown_ms as i64)
            })
        {
            g.breaker = Breaker::HalfOpen;
        }
        g.breaker
    }

    /// Figures for one category over `window` ending at `now`.
    pub fn figures(
        &self,
        category: SloCategory,
        window: Window,
        now: DateTime<Utc>,
    ) -> CategoryFigures {
        figures_locked(&self.lock(), category, window, now)
    }

    pub fn table(&self, window: Window, now: DateTime<Utc>) -> Vec<CategoryFigures> {
        let g = self.lock();
        SloCategory::ALL
            .iter()
            .map(|c| figures_locked(&g, *c, window, now))
            .collect()
    }

    /// Online, degraded or offline, from the breaker and the last minute's figures.
    pub fn state(&self, now: DateTime<Utc>) -> KlarnaState {
        self.reading(now).0
    }

    /// Klarna's state and the breaker read together, under one lock: read one after the other,
    /// a probe landing between them could report "offline" beside a closed breaker.
    pub fn reading(&self, now: DateTime<Utc>) -> (KlarnaState, Breaker) {
        let mut g = self.lock();
        let breaker = self.breaker_locked(&mut g, now);
        if breaker != Breaker::Closed || self.in_maintenance(now).is_some() {
            return (KlarnaState::Offline, breaker);
        }
        let (mut r, mut sr) = (0, 0);
        for c in SloCategory::ALL {
            let f = figures_over(&g, c, LIVE_WINDOW, now);
            r += f.requests;
            sr += f.served;
        }
        let state = if r > 0 && (sr as f64 / r as f64 * 100.0) < self.cfg.degraded_below_percent {
            KlarnaState::Degraded
        } else {
            KlarnaState::Online
        };
        (state, breaker)
    }
}

/// Figures for one category from samples already locked.
fn figures_locked(
    g: &Inner,
    category: SloCategory,
    window: Window,
    now: DateTime<Utc>,
) -> CategoryFigures {
    figures_over(g, category, window.duration(), now)
}

/// The till's own state looks back this far only: availability over 5 minutes and more is a
/// report, while the cashier needs to know whether Klarna answers now. A minute after Klarna
/// answers again, the failures before it no longer make the till say "slow".
const LIVE_WINDOW: Duration = Duration::from_secs(60);

fn figures_over(
    g: &Inner,
    category: SloCategory,
    span: Duration,
    now: DateTime<Utc>,
) -> CategoryFigures {
    let since = now - chrono::Duration::from_std(span).unwrap_or_default();
    let samples: Vec<Sample> = g
        .samples
        .get(&category)
        .map(|q| {
            q.iter()
                .filter(|s| s.at > since && s.at <= now)
                .copied()
                .collect()
        })
        .unwrap_or_default();
    let requests = samples.len() as u64;
    let served = samples.iter().filter(|s| s.served).count() as u64;
    let mut lat: Vec<f64> = samples
        .iter()
        .map(|s| s.latency.as_secs_f64() * 1000.0)
        .collect();
    lat.sort_by(f64::total_cmp);
    CategoryFigures {
        category: category.name().to_string(),
        requests,
        served,
        availability_percent: (requests > 0).then(|| served as f64 / requests as f64 * 100.0),
        p50_ms: percentile(&lat, 50.0),
        p99_ms: percentile(&lat, 99.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn availability_counts_4xx_as_served_and_timeouts_as_not() {
        let h = Health::new(HealthConfig::default());
        let c = SloCategory::PaymentRequest;
        // 10 calls: 6 × 200, 1 × 302, 1 × 404, 1 × 503, 1 timeout.
        let statuses = [
            Some(200),
            Some(200),
            Some(200),
            Some(200),
            Some(200),
            Some(200),
            Some(302),
            Some(404),
            Some(503),
            None,
        ];
        for (i, s) in statuses.iter().enumerate() {
            h.record_at(c, *s, ms(10 * (i as u64 + 1)), t(i as i64));
        }
        let f = h.figures(c, Window::FiveMinutes, t(10));
        assert_eq!((f.requests, f.served), (10, 8));
        assert_eq!(f.availability_percent, Some(80.0));
        // Latencies 10..=100 ms: nearest-rank p50 is the 5th (50 ms), p99 the 10th (100 ms).
        assert_eq!(f.p50_ms, Some(50.0));
        assert_eq!(f.p99_ms, Some(100.0));
        // Other categories saw nothing.
        assert_eq!(
            h.figures(SloCategory::PaymentConfirmation, Window::FiveMinutes, t(10))
                .availability_percent,
            None
        );
    }

    #[test]
    fn windows_only_see_their_own_span() {
        let h = Health::new(HealthConfig::default());
        let c = SloCategory::PaymentTransactionGeneral;
        h.record_at(c, None, ms(1), t(0));
        h.record_at(c, Some(200), ms(1), t(3600));
        let now = t(3601);
        assert_eq!(
            h.figures(c, Window::FiveMinutes, now).availability_percent,
            Some(100.0)
        );
        assert_eq!(
            h.figures(c, Window::OneDay, now).availability_percent,
            Some(50.0)
        );
    }

    #[test]
    fn calls_during_maintenance_are_excluded() {
        let cfg = HealthConfig {
            maintenance: vec![Maintenance {
                start: t(100),
                end: t(200),
                note: "planned".into(),
            }],
            ..Default::default()
        };
        let h = Health::new(cfg);
        let c = SloCategory::PaymentRequest;
        h.record_at(c, None, ms(1), t(150));
        h.record_at(c, Some(200), ms(1), t(250));
        assert_eq!(h.figures(c, Window::FiveMinutes, t(260)).requests, 1);
        assert_eq!(h.state(t(150)), KlarnaState::Offline);
        assert!(h.upcoming_maintenance(t(0)).is_some());
        assert!(h.upcoming_maintenance(t(300)).is_none());
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_closes_after_a_good_probe() {
        let cfg = HealthConfig {
            breaker_failures: 3,
            breaker_cooldown_ms: 1000,
            ..Default::default()
        };
        let h = Health::new(cfg);
        let c = SloCategory::PaymentRequest;
        h.record_at(c, None, ms(1), t(0));
        h.record_at(c, Some(503), ms(1), t(0));
        assert_eq!(h.breaker(t(0)), Breaker::Closed);
        h.record_at(c, None, ms(1), t(0));
        assert_eq!(h.breaker(t(0)), Breaker::Open);
        assert_eq!(h.state(t(0)), KlarnaState::Offline);
        assert_eq!(h.breaker(t(2)), Breaker::HalfOpen);
        // A failed probe opens it again; a good one closes it.
        h.record_at(c, None, ms(1), t(2));
        assert_eq!(h.breaker(t(2)), Breaker::Open);
        h.record_at(c, Some(404), ms(1), t(4));
        assert_eq!(h.breaker(t(4)), Breaker::Closed);
    }

    #[test]
    fn low_availability_is_degraded() {
        let h = Health::new(HealthConfig::default());
        let c = SloCategory::PaymentRequest;
        for i in 0..10 {
            h.record_at(c, if i == 0 { Some(500) } else { Some(200) }, ms(1), t(i));
        }
        assert_eq!(h.state(t(10)), KlarnaState::Degraded);
    }

    #[test]
    fn the_till_is_online_again_within_a_minute_of_klarna_answering() {
        let h = Health::new(HealthConfig::default());
        let c = SloCategory::PaymentRequest;
        // A bad minute: half the calls fail (not enough in a row to open the breaker).
        for i in 0..30 {
            h.record_at(
                c,
                if i % 2 == 0 { Some(500) } else { Some(200) },
                ms(1),
                t(i),
            );
        }
        assert_eq!(h.state(t(30)), KlarnaState::Degraded);
        // Klarna answers again, once every two seconds.
        for i in (31..200).step_by(2) {
            h.record_at(c, Some(200), ms(1), t(i));
        }
        assert_eq!(
            h.state(t(91)),
            KlarnaState::Online,
            "a minute after recovery"
        );
        // The five-minute report still shows the bad minute.
        let f = h.figures(c, Window::FiveMinutes, t(91));
        assert!(f.served < f.requests, "{f:?}");
    }
}
