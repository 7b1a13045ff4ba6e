//! Prometheus metrics: requests by route, method and status; latency by route; the database
//! pool; property writes and deletes; the journal's size; refusals by the server's own rules;
//! the build; the process. And the middleware that counts them.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use super::error::Refusal;
use super::layers::Around;
use super::{AppState, RequestContext};
use crate::store::Store;

/// Counts every answered request, and the property writes and deletes among them.
#[derive(Debug, Clone)]
pub struct Count(pub AppState);

impl Around for Count {
    type Memo = (Method, Option<MatchedPath>, Option<Arc<RequestContext>>);

    fn before(&self, request: &mut Request) -> Self::Memo {
        let method = request.method().clone();
        let matched = request.extensions().get::<MatchedPath>().cloned();
        let context = request.extensions().get::<Arc<RequestContext>>().cloned();
        (method, matched, context)
    }

    fn after(&self, (method, matched, context): Self::Memo, response: &mut Response) {
        let route = matched.as_ref().map_or("(unmatched)", MatchedPath::as_str);
        let status = response.status();
        let latency = context.map_or(0.0, |context| context.started.elapsed().as_secs_f64());
        let metrics = &self.0.metrics;
        metrics.observe(route, method.as_str(), status, latency);
        match response.extensions().get::<Refusal>() {
            Some(Refusal::RateLimited) => metrics.rate_limited.inc(),
            Some(Refusal::InjectedFault) => metrics.injected_faults.inc(),
            Some(Refusal::LoginRefused) => metrics.refused_logins.inc(),
            None => {}
        }
        if route.ends_with("/user/properties/{*key}") {
            match (method, status) {
                (Method::PUT, StatusCode::OK | StatusCode::CREATED) => metrics.writes.inc(),
                (Method::DELETE, StatusCode::NO_CONTENT) => metrics.deletes.inc(),
                _ => {}
            }
        }
    }

    /// Counted as status 499, as nginx counts a request whose client closed the connection.
    fn cancelled(&self, (method, matched, context): Self::Memo) {
        let route = matched.as_ref().map_or("(unmatched)", MatchedPath::as_str);
        let latency = context.map_or(0.0, |context| context.started.elapsed().as_secs_f64());
        if let Ok(status) = StatusCode::from_u16(499) {
            let metrics = &self.0.metrics;
            metrics.observe(route, method.as_str(), status, latency);
        }
    }
}

/// The metrics of one server, in a registry of its own.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Properties created or replaced.
    writes: IntCounter,
    /// Properties deleted.
    deletes: IntCounter,
    pool: IntGaugeVec,
    calls_in_flight: IntGauge,
    journal: IntGaugeVec,
    rate_limited: IntCounter,
    injected_faults: IntCounter,
    refused_logins: IntCounter,
    /// The process's own metrics, under their standard unprefixed names (`process_*`).
    process: Registry,
}

impl Metrics {
    /// A fresh set of metrics, for a server over the `backend` named.
    pub fn new(backend: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("jira_userprops".to_owned()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "Requests answered, by route template, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer, by route template.",
            )
            // Up to past the request timeout's default (30 s), which injected delays can reach.
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ]),
            &["route"],
        )?;
        let writes = IntCounter::new("property_writes_total", "Properties created or replaced.")?;
        let deletes = IntCounter::new("property_deletes_total", "Properties deleted.")?;
        let pool = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database connections, by state (in_use, idle).",
            ),
            &["state"],
        )?;
        let calls_in_flight = IntGauge::new(
            "db_calls_in_flight",
            "PostgreSQL: database calls holding or waiting for a connection (at most \
             --db-pool-size plus --db-max-waiting).",
        )?;
        let journal = IntGaugeVec::new(
            Opts::new("journal_entries", "Requests held in the journal."),
            &[],
        )?;
        let rate_limited = IntCounter::new(
            "rate_limited_total",
            "Requests refused with 429 by the rate limit.",
        )?;
        let injected_faults = IntCounter::new(
            "injected_faults_total",
            "Requests answered with an injected fault's status.",
        )?;
        let refused_logins = IntCounter::new(
            "refused_logins_total",
            "Logins refused unchecked after too many failures from the client.",
        )?;
        let build = IntGaugeVec::new(
            Opts::new(
                "build_info",
                "The build: version, commit and storage backend.",
            ),
            &["version", "commit", "backend"],
        )?;
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                env!("JIRA_USERPROPS_COMMIT"),
                backend,
            ])
            .set(1);
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(injected_faults.clone()))?;
        registry.register(Box::new(refused_logins.clone()))?;
        registry.register(Box::new(build))?;
        let process = Registry::new();
        #[cfg(target_os = "linux")]
        process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(writes.clone()))?;
        registry.register(Box::new(deletes.clone()))?;
        registry.register(Box::new(pool.clone()))?;
        if backend == "postgres" {
            registry.register(Box::new(calls_in_flight.clone()))?;
        }
        registry.register(Box::new(journal.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            writes,
            deletes,
            pool,
            calls_in_flight,
            journal,
            rate_limited,
            injected_faults,
            refused_logins,
            process,
        })
    }

    /// Counts one answered request.
    pub fn observe(&self, route: &str, method: &str, status: StatusCode, seconds: f64) {
        // Clients can send any token as a method; unknown ones share one series.
        let known = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"];
        let method = if known.contains(&method) {
            method
        } else {
            "OTHER"
        };
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.latency.with_label_values(&[route]).observe(seconds);
    }

    /// The text exposition, with the gauges read now.
    pub fn render(&self, store: &Store, journal_entries: usize) -> String {
        let (in_use, idle) = store.pool_usage();
        self.pool
            .with_label_values(&["in_use"])
            .set(i64::from(in_use));
        self.pool.with_label_values(&["idle"]).set(i64::from(idle));
        if let Some(calls) = store.calls_in_flight() {
            self.calls_in_flight.set(i64::from(calls));
        }
        self.journal
            .with_label_values(&[] as &[&str])
            .set(i64::try_from(journal_entries).unwrap_or(i64::MAX));
        let mut text = Vec::new();
        // Encoding into memory cannot fail for well-formed metrics; an empty page says so.
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        let _ = TextEncoder::new().encode(&families, &mut text);
        String::from_utf8(text).unwrap_or_default()
    }
}
