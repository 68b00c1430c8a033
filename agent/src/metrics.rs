//! Prometheus metrics of the terminal: every Klarna call by operation, SLO category, service
//! class and outcome, with latency. Fed by the Klarna client's call observer.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::klarna::{CallObserver, CallRecord, counts_as_served};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: &'static str,
    slo_category: &'static str,
    service_class: &'static str,
    /// The HTTP status, or "none" when no answer came.
    status: String,
    /// Whether the seed's availability formula counts this as served (2xx, 3xx, 4xx).
    served: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CategoryLabels {
    slo_category: &'static str,
}

/// The terminal's metrics registry; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    calls: Family<CallLabels, Counter>,
    latency: Family<CategoryLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kassa");
        let calls = Family::<CallLabels, Counter>::default();
        let latency = Family::<CategoryLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "klarna_requests",
            "Klarna API calls by outcome",
            calls.clone(),
        );
        registry.register(
            "klarna_request_duration_seconds",
            "Klarna API call latency by SLO category",
            latency.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            calls,
            latency,
        }
    }

    pub fn record(&self, r: &CallRecord) {
        let labels = CallLabels {
            operation: r.operation.name(),
            slo_category: r.category.name(),
            service_class: r.class.name(),
            status: r
                .status
                .map_or_else(|| "none".to_string(), |s| s.to_string()),
            served: if counts_as_served(r.status) {
                "true"
            } else {
                "false"
            },
        };
        self.calls.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&CategoryLabels {
                slo_category: r.category.name(),
            })
            .observe(r.latency.as_secs_f64());
    }

    pub fn observer(&self) -> CallObserver {
        let m = self.clone();
        Arc::new(move |r| m.record(r))
    }

    /// The exposition plus Klarna's SLO figures per category (5-minute and 30-day windows) and
    /// its state, computed from the health model so `/metrics` and `kassa slo` always agree.
    pub fn encode_with_health(&self, health: &crate::health::Health) -> String {
        use std::fmt::Write;
        let mut out = self.encode();
        // The registry's text ends with "# EOF"; health figures go before it.
        if out.ends_with("# EOF\n") {
            out.truncate(out.len() - "# EOF\n".len());
        }
        let now = chrono::Utc::now();
        let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP kassa_{name} {help}\n# TYPE kassa_{name} gauge");
            for (labels, v) in rows {
                let _ = writeln!(out, "kassa_{name}{{{labels}}} {v}");
            }
        };
        let mut avail = vec![];
        let mut reqs = vec![];
        let mut p50 = vec![];
        let mut p99 = vec![];
        for w in [
            crate::health::Window::FiveMinutes,
            crate::health::Window::ThirtyDays,
        ] {
            for f in health.table(w, now) {
                let l = format!("slo_category=\"{}\",window=\"{}\"", f.category, w.label());
                reqs.push((l.clone(), f.requests as f64));
                if let Some(a) = f.availability_percent {
                    avail.push((l.clone(), a));
                }
                if let Some(v) = f.p50_ms {
                    p50.push((l.clone(), v / 1000.0));
                }
                if let Some(v) = f.p99_ms {
                    p99.push((l, v / 1000.0));
                }
            }
        }
        gauge(
            "klarna_slo_requests",
            "Klarna requests in the window (R)",
            reqs,
        );
        gauge(
            "klarna_slo_availability_percent",
            "A = SR / R * 100 (2xx, 3xx and 4xx served)",
            avail,
        );
        gauge(
            "klarna_slo_latency_p50_seconds",
            "median latency in the window",
            p50,
        );
        gauge(
            "klarna_slo_latency_p99_seconds",
            "99th percentile latency in the window",
            p99,
        );
        let state = health.state(now);
        let rows = [
            ("online", crate::health::KlarnaState::Online),
            ("degraded", crate::health::KlarnaState::Degraded),
            ("offline", crate::health::KlarnaState::Offline),
        ]
        .into_iter()
        .map(|(n, s)| (format!("state=\"{n}\""), if s == state { 1.0 } else { 0.0 }))
        .collect();
        gauge("klarna_state", "Klarna as the till sees it", rows);
        out.push_str("# EOF\n");
        out
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        out
    }
}
