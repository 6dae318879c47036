//! The guide's "Health Monitoring" and "Verification" steps, written in Rust against
//! components shaped like the facade's (each reads its counters and applies a rule).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use insta::assert_json_snapshot;
use serde_json::{Value, json};
use tta_health::rules::{
    self, ConfigObservation, ExportObservation, HealthThresholds, MetricsObservation,
    SamplingObservation, StorageObservation,
};
use tta_health::{
    CheckerInfo, ComponentHealth, HealthChecker, HealthComponent, HealthStatus, WindowCounter,
    sections,
};

/// Sampling as the facade reports it: the live (adaptive) rate and the configured rules.
pub(crate) struct FakeSampling {
    rate_bits: AtomicU64,
    min_rate: f64,
    thresholds: HealthThresholds,
}

impl FakeSampling {
    pub(crate) fn new(rate: f64) -> Arc<Self> {
        Arc::new(Self {
            rate_bits: AtomicU64::new(rate.to_bits()),
            min_rate: 0.001,
            thresholds: HealthThresholds::default(),
        })
    }
    pub(crate) fn set_rate(&self, rate: f64) {
        self.rate_bits.store(rate.to_bits(), Ordering::Relaxed);
    }
    fn rate(&self) -> f64 {
        f64::from_bits(self.rate_bits.load(Ordering::Relaxed))
    }
}

impl HealthComponent for FakeSampling {
    fn name(&self) -> &str {
        sections::SAMPLING
    }
    fn check(&self) -> ComponentHealth {
        let obs = SamplingObservation {
            enabled: true,
            current_rate: self.rate(),
            min_rate: self.min_rate,
            adaptive: true,
        };
        rules::sampling(&obs, &self.thresholds)
    }
    fn status_document(&self) -> Value {
        json!({
            "enabled": true,
            "sampling_rate": self.rate(),
            "always_sample_errors": true,
            "always_sample_slow": true,
            "slow_threshold_ms": 1000.0,
            "adaptive": { "enabled": true, "min_rate": self.min_rate, "max_rate": 0.5 },
        })
    }
}

/// Metrics as the facade reports them: executions and the cardinality stats.
pub(crate) struct FakeMetrics {
    total_executions: AtomicU64,
    dropped_labels: Mutex<Vec<String>>,
    thresholds: HealthThresholds,
}

impl FakeMetrics {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            total_executions: AtomicU64::new(0),
            dropped_labels: Mutex::new(Vec::new()),
            thresholds: HealthThresholds::default(),
        })
    }
    pub(crate) fn record_execution(&self) {
        self.total_executions.fetch_add(1, Ordering::Relaxed);
    }
}

impl HealthComponent for FakeMetrics {
    fn name(&self) -> &str {
        sections::METRICS
    }
    fn check(&self) -> ComponentHealth {
        let dropped = self.dropped_labels.lock().unwrap();
        rules::metrics(
            &MetricsObservation {
                dropped_labels: &dropped,
                total_labels: 12,
                ..Default::default()
            },
            &self.thresholds,
        )
    }
    fn status_document(&self) -> Value {
        json!({
            "total_executions": self.total_executions.load(Ordering::Relaxed),
            "cardinality": {
                "total_labels": 12,
                "dropped_labels": *self.dropped_labels.lock().unwrap(),
                "label_cardinality": { "primitive": 3 },
            },
        })
    }
}

/// Export with a dropped-span counter judged over a window (time is injected).
pub(crate) struct FakeExport {
    dropped_total: AtomicU64,
    now_secs: AtomicU64,
    window: WindowCounter,
    thresholds: HealthThresholds,
}

impl FakeExport {
    pub(crate) fn new() -> Arc<Self> {
        let thresholds = HealthThresholds::default();
        let window = WindowCounter::new(Duration::from_secs_f64(thresholds.window_seconds), 0);
        Arc::new(Self {
            dropped_total: AtomicU64::new(0),
            now_secs: AtomicU64::new(0),
            window,
            thresholds,
        })
    }
}

impl HealthComponent for FakeExport {
    fn name(&self) -> &str {
        sections::EXPORT
    }
    fn check(&self) -> ComponentHealth {
        let now = Duration::from_secs(self.now_secs.load(Ordering::Relaxed));
        let dropped = self
            .window
            .observe(now, self.dropped_total.load(Ordering::Relaxed));
        let obs = ExportObservation {
            dropped_spans_in_window: dropped,
            p99_latency_ms: Some(12.5),
            ..Default::default()
        };
        rules::export(&obs, &self.thresholds)
    }
    fn status_document(&self) -> Value {
        json!({ "spans_dropped": self.dropped_total.load(Ordering::Relaxed), "p99_latency_ms": 12.5 })
    }
}

/// A component judged by a fixed observation (storage, config).
struct Judged {
    name: &'static str,
    check: fn() -> ComponentHealth,
}

impl HealthComponent for Judged {
    fn name(&self) -> &str {
        self.name
    }
    fn check(&self) -> ComponentHealth {
        (self.check)()
    }
    fn status_document(&self) -> Value {
        Value::Object(self.check().observed)
    }
}

pub(crate) struct System {
    pub(crate) checker: Arc<HealthChecker>,
    pub(crate) sampling: Arc<FakeSampling>,
    pub(crate) metrics: Arc<FakeMetrics>,
    pub(crate) export: Arc<FakeExport>,
}

/// "Load production config; set_observability_config(config)": the facade's wiring.
pub(crate) fn production_system() -> System {
    let checker = Arc::new(HealthChecker::new(CheckerInfo::default()));
    let sampling = FakeSampling::new(0.05);
    let metrics = FakeMetrics::new();
    let export = FakeExport::new();
    checker.register(sampling.clone()).unwrap();
    checker.register(metrics.clone()).unwrap();
    checker.register(export.clone()).unwrap();
    checker
        .register(Arc::new(Judged {
            name: sections::STORAGE,
            check: || {
                rules::storage(
                    &StorageObservation {
                        writable: true,
                        bytes_used: 4096,
                        ..Default::default()
                    },
                    &HealthThresholds::default(),
                )
            },
        }))
        .unwrap();
    checker
        .register(Arc::new(Judged {
            name: sections::CONFIG,
            check: || rules::config(&ConfigObservation::default(), &HealthThresholds::default()),
        }))
        .unwrap();
    // set_observability_config(config): the environment and the loaded flag.
    checker.set_environment("production");
    checker.set_config_loaded(true);
    System {
        checker,
        sampling,
        metrics,
        export,
    }
}

#[test]
fn deployment_step_health_is_healthy() {
    // Deployment Steps, 2: "if result.status != HealthStatus.HEALTHY: raise".
    let system = production_system();
    let result = system.checker.check_health();
    assert_eq!(
        result.status,
        HealthStatus::Healthy,
        "Observability unhealthy: {}",
        result.message
    );
}

#[test]
fn verification_1_health_check_fields() {
    let system = production_system();
    let result = system.checker.check_health();
    let body = result.to_json();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["message"], "All observability systems operational");
    let details = &body["details"];
    assert_eq!(details["config_loaded"], true);
    assert_eq!(details["environment"], "production");
    assert_eq!(details["metrics_collector"], "available");
    assert_eq!(details["tracing_available"], true);
    assert!(details["uptime_seconds"].as_f64().is_some_and(|u| u >= 0.0));
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_json_snapshot!("guide_health_check", body, {
        ".timestamp" => "[timestamp]",
        ".details.uptime_seconds" => "[uptime]",
    });
}

#[test]
fn verification_2_sampling() {
    let system = production_system();
    let health = &system.checker;
    let status = health.sampling_status();
    assert_eq!(status["enabled"], true);
    let rate = status["sampling_rate"].as_f64().unwrap();
    assert!(0.0 < rate && rate <= 1.0);
    assert_eq!(status["always_sample_errors"], true);
}

#[test]
fn verification_4_full_status_after_load() {
    let system = production_system();
    for _ in 0..3 {
        system.metrics.record_execution();
    }
    let status = system.checker.full_status();
    assert_eq!(status["sampling"]["sampling_rate"], 0.05);
    assert_eq!(status["metrics"]["total_executions"], 3);
    assert_eq!(status["health"]["status"], "healthy");
}

#[test]
fn monitoring_alerts() {
    let system = production_system();
    let health = &system.checker;

    // 2. High cardinality: `metrics_status['cardinality']['dropped_labels']` non-empty.
    system
        .metrics
        .dropped_labels
        .lock()
        .unwrap()
        .push("user_id".into());
    assert_eq!(
        health.metrics_status()["cardinality"]["dropped_labels"][0],
        "user_id"
    );
    let result = health.check_health();
    assert_eq!(result.status, HealthStatus::Degraded);
    assert_eq!(
        result.message,
        "Degraded: metrics (cardinality limit reached for labels: user_id)"
    );
    system.metrics.dropped_labels.lock().unwrap().clear();

    // 3. Low sampling rate: `sampling_status['sampling_rate'] < 0.01`.
    system.sampling.set_rate(0.005);
    assert!(health.sampling_status()["sampling_rate"].as_f64().unwrap() < 0.01);
    let result = health.check_health();
    assert_eq!(result.status, HealthStatus::Degraded);
    assert!(
        result
            .message
            .starts_with("Degraded: sampling (sampling rate 0.005 below 0.01"),
        "{}",
        result.message
    );
    system.sampling.set_rate(0.05);
    assert_eq!(health.check_health().status, HealthStatus::Healthy);

    // Spans dropped: degraded for the window, healthy again once it has passed.
    system.export.now_secs.store(10, Ordering::Relaxed);
    assert_eq!(health.check_health().status, HealthStatus::Healthy);
    system.export.dropped_total.store(4, Ordering::Relaxed);
    system.export.now_secs.store(20, Ordering::Relaxed);
    let result = health.check_health();
    assert_eq!(
        result.message,
        "Degraded: export (4 spans dropped in the last 60 s)"
    );
    assert_eq!(result.details["export"]["dropped_spans_in_window"], 4);
    system.export.now_secs.store(200, Ordering::Relaxed);
    assert_eq!(health.check_health().status, HealthStatus::Healthy);
}
