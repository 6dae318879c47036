//! Proves the hot paths allocate nothing, with a per-thread counting allocator.

#[global_allocator]
static GLOBAL: tta_testkit::CountingAlloc = tta_testkit::CountingAlloc;

pub(crate) use tta_testkit::allocations_in;

use tta_metrics::{MetricsCollector, MetricsConfig};

#[test]
fn known_series_record_without_allocating() {
    let collector = MetricsCollector::new(MetricsConfig::default()).expect("valid");
    let labels = [("route", "/api"), ("method", "GET")];
    // First use creates the series (allocates), and a primitive's first failure its
    // failures' histogram.
    collector.counter("requests_total", &labels).increment(1);
    collector.gauge("queue_depth", &labels).set(1.0);
    collector.histogram("latency_ms", &labels).record(1.0);
    collector.record_execution("primitive_a", 1.0, true);
    collector.record_execution("primitive_a", 1.0, false);
    let hint = tta_metrics::ExecutionHint::default();
    collector.record_execution_hinted(&hint, "primitive_a", 1.0, true);
    let ((), allocs) = allocations_in(|| {
        for i in 0..1_000 {
            collector.counter("requests_total", &labels).increment(1);
            collector
                .counter("requests_total", &[("method", "GET"), ("route", "/api")])
                .increment(1);
            collector.gauge("queue_depth", &labels).set(f64::from(i));
            collector
                .histogram("latency_ms", &labels)
                .record(f64::from(i));
            collector.record_execution("primitive_a", f64::from(i), i % 2 == 0);
            collector.record_execution_hinted(&hint, "primitive_a", 1.0, true);
        }
    });
    assert_eq!(allocs, 0, "known-series records allocated");
    assert_eq!(collector.counter("requests_total", &labels).value(), 2_001);
    assert_eq!(
        collector
            .metrics("primitive_a")
            .expect("recorded")
            .total_executions,
        2_003
    );
}

#[test]
fn prepared_keys_and_handles_record_without_allocating() {
    use tta_metrics::MetricKey;
    let config = MetricsConfig {
        max_label_values: 1,
        ..Default::default()
    };
    let collector = MetricsCollector::new(config).expect("valid");
    let kept = MetricKey::new("requests_total", &[("route", "/api"), ("method", "GET")]);
    // Past the limit of 1 per key: bound to bucket values, still a known series afterwards.
    let hashed = MetricKey::new("requests_total", &[("route", "/b"), ("method", "PUT")]);
    let gauge = MetricKey::new("queue_depth", &[("queue", "spans")]);
    let hist = MetricKey::new("latency_ms", &[("queue", "spans")]);
    // First use binds the keys and creates the series (allocates).
    collector.counter_for(&kept).increment(1);
    collector.counter_for(&hashed).increment(1);
    collector.gauge_for(&gauge).set(1.0);
    collector.histogram_for(&hist).record(1.0);
    let handle = collector.counter_for(&kept);
    let ((), allocs) = allocations_in(|| {
        for i in 0..1_000 {
            collector.counter_for(&kept).increment(1);
            collector.counter_for(&hashed).increment(1);
            collector.gauge_for(&gauge).set(f64::from(i));
            collector.histogram_for(&hist).record(f64::from(i));
            handle.increment(1);
        }
    });
    assert_eq!(allocs, 0, "prepared-key records allocated");
    assert_eq!(collector.counter_for(&kept).value(), 2_001);
    assert_eq!(collector.counter_for(&hashed).value(), 1_001);
    assert_eq!(
        collector
            .counter("requests_total", &[("method", "GET"), ("route", "/api")])
            .value(),
        2_001
    );
}

#[test]
fn over_limit_records_allocate_nothing_once_buckets_exist() {
    let config = MetricsConfig {
        max_label_values: 10,
        ..Default::default()
    };
    let collector = MetricsCollector::new(config).expect("valid");
    let values: Vec<String> = (0..2_000).map(|i| format!("user-{i}")).collect();
    for v in &values {
        collector
            .counter("logins_total", &[("user_id", v)])
            .increment(1);
    }
    let ((), allocs) = allocations_in(|| {
        for v in &values {
            collector
                .counter("logins_total", &[("user_id", v)])
                .increment(1);
        }
    });
    assert_eq!(allocs, 0, "over-limit records allocated");
    let stats = collector.cardinality_stats();
    assert_eq!(stats.label_cardinality["user_id"], 10);
}
