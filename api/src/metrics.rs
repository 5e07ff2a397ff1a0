//! Prometheus metrics, named `vitasync_<subsystem>_<name>_<unit>`, and the middleware that
//! records every request by route pattern (never by raw path, to bound cardinality).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub samples_written: IntCounterVec,
    pub sync_jobs: IntCounterVec,
    pub connection_problems: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "vitasync_http_requests_total",
                "HTTP requests by route pattern, method and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "vitasync_http_request_duration_seconds",
                "HTTP request latency by route pattern.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let samples_written = IntCounterVec::new(
            Opts::new(
                "vitasync_store_samples_written_total",
                "Samples written to the store, by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let sync_jobs = IntCounterVec::new(
            Opts::new(
                "vitasync_sync_jobs_total",
                "Finished sync jobs by provider and outcome (succeeded, failed).",
            ),
            &["provider", "outcome"],
        )
        .expect("valid metric");
        let connection_problems = IntCounterVec::new(
            Opts::new(
                "vitasync_connection_problems_total",
                "Connections that went to error or reauth_required, by provider and status.",
            ),
            &["provider", "status"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(sync_jobs.clone()))
            .expect("register");
        registry
            .register(Box::new(connection_problems.clone()))
            .expect("register");
        registry
            .register(Box::new(http_requests.clone()))
            .expect("register");
        registry
            .register(Box::new(http_duration.clone()))
            .expect("register");
        registry
            .register(Box::new(samples_written.clone()))
            .expect("register");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::new(
                    std::process::id() as i32,
                    "vitasync",
                ),
            ))
            .expect("register");
        Metrics {
            registry,
            http_requests,
            http_duration,
            samples_written,
            sync_jobs,
            connection_problems,
        }
    }

    /// Follows the event bus for the data-in side's counters, so the sync machinery needs no
    /// knowledge of Prometheus.
    pub fn follow(self: std::sync::Arc<Self>, bus: &vitasync_engine::bus::Bus) {
        use vitasync_engine::bus::BusEvent;
        let mut rx = bus.subscribe();
        actix_web::rt::spawn(async move {
            loop {
                let event = match rx.recv().await {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "metrics fell behind the event bus");
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                match event.as_ref() {
                    BusEvent::SyncCompleted {
                        subject,
                        inserted,
                        updated,
                        unchanged,
                        ..
                    } => {
                        self.sync_jobs
                            .with_label_values(&[subject.provider.as_str(), "succeeded"])
                            .inc();
                        self.record_write(*inserted, *updated, *unchanged);
                    }
                    BusEvent::SyncFailed { subject, .. } => self
                        .sync_jobs
                        .with_label_values(&[subject.provider.as_str(), "failed"])
                        .inc(),
                    BusEvent::ConnectionErrored {
                        subject, status, ..
                    } => self
                        .connection_problems
                        .with_label_values(&[subject.provider.as_str(), status.as_str()])
                        .inc(),
                    _ => {}
                }
            }
        });
    }

    pub fn record_write(&self, inserted: u64, updated: u64, unchanged: u64) {
        self.samples_written
            .with_label_values(&["inserted"])
            .inc_by(inserted);
        self.samples_written
            .with_label_values(&["updated"])
            .inc_by(updated);
        self.samples_written
            .with_label_values(&["unchanged"])
            .inc_by(unchanged);
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
