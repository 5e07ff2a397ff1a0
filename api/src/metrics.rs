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
        }
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
