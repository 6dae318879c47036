//! The guide's verification snippet and the collector's basic behaviour.

use tta_metrics::{MetricsCollector, MetricsConfig, QUANTILE_RELATIVE_ERROR};

fn collector() -> MetricsCollector {
    MetricsCollector::new(MetricsConfig::default()).expect("default config is valid")
}

#[test]
fn guide_verification_snippet() {
    let collector = collector();
    collector.record_execution("test_primitive", 100.0, true);
    let metrics = collector.metrics("test_primitive").expect("recorded");
    assert_eq!(metrics.total_executions, 1);
}

#[test]
fn execution_statistics() {
    let collector = collector();
    // 1..=1000 ms, every tenth a failure.
    for i in 1..=1000 {
        assert!(collector.record_execution("load", f64::from(i), i % 10 != 0));
    }
    collector.record_execution("other", 5.0, false);
    let m = collector.metrics("load").expect("recorded");
    assert_eq!(
        (m.total_executions, m.successes, m.failures),
        (1000, 900, 100)
    );
    assert!((m.success_rate - 0.9).abs() < 1e-12);
    assert!((m.mean_duration_ms - 500.5).abs() < 1e-9);
    assert_eq!((m.min_duration_ms, m.max_duration_ms), (1.0, 1000.0));
    for (got, exact) in [
        (m.p50_duration_ms, 500.0),
        (m.p95_duration_ms, 950.0),
        (m.p99_duration_ms, 990.0),
    ] {
        assert!(
            (got - exact).abs() / exact <= QUANTILE_RELATIVE_ERROR,
            "{got} vs {exact}"
        );
    }
    assert_eq!(
        collector.names(),
        vec!["load".to_string(), "other".to_string()]
    );
    let totals = collector.totals();
    assert_eq!(
        (totals.names, totals.total_executions, totals.failures),
        (2, 1001, 101)
    );
    // Failures only: durations come from the failures alone.
    let other = collector.metrics("other").expect("recorded");
    assert_eq!((other.successes, other.failures), (0, 1));
    assert_eq!(
        (
            other.min_duration_ms,
            other.max_duration_ms,
            other.mean_duration_ms
        ),
        (5.0, 5.0, 5.0)
    );
    assert!(collector.metrics("missing").is_none());
    assert_eq!(collector.all_metrics().len(), 2);
}

#[test]
fn bad_durations_are_rejected_and_counted() {
    let collector = collector();
    for d in [f64::NAN, -1.0, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(!collector.record_execution("p", d, true));
    }
    assert!(collector.metrics("p").is_none());
    let h = collector.histogram("h", &[("k", "v")]);
    assert!(!h.record(-0.5));
    assert!(h.record(0.0));
    assert_eq!(collector.totals().rejected_values, 5);
}

#[test]
fn disabled_collector_records_nothing_until_reenabled() {
    let collector = MetricsCollector::new(MetricsConfig {
        enabled: false,
        ..Default::default()
    })
    .expect("valid");
    assert!(!collector.record_execution("p", 1.0, true));
    collector.counter("c", &[("k", "v")]).increment(1);
    assert_eq!(collector.counter("c", &[("k", "v")]).value(), 0);
    collector
        .reconfigure(MetricsConfig::default())
        .expect("valid");
    assert!(collector.record_execution("p", 1.0, true));
    collector.counter("c", &[("k", "v")]).increment(1);
    assert_eq!(collector.counter("c", &[("k", "v")]).value(), 1);
}

#[test]
fn reconfigure_changes_limits_and_keeps_series() {
    let collector = MetricsCollector::new(MetricsConfig {
        max_label_values: 2,
        ..Default::default()
    })
    .expect("valid");
    for u in ["a", "b", "c"] {
        collector.counter("hits", &[("user", u)]).increment(1);
    }
    assert_eq!(
        collector.cardinality_stats().dropped_labels,
        vec!["user".to_string()]
    );
    assert_eq!(collector.cardinality_stats().label_cardinality["user"], 2);
    collector
        .reconfigure(MetricsConfig {
            max_label_values: 3,
            ..Default::default()
        })
        .expect("valid");
    collector.counter("hits", &[("user", "d")]).increment(1);
    assert_eq!(collector.counter("hits", &[("user", "d")]).value(), 1);
    assert_eq!(collector.counter("hits", &[("user", "a")]).value(), 1);
    assert_eq!(collector.cardinality_stats().label_cardinality["user"], 3);
    let err = collector.reconfigure(MetricsConfig {
        export_interval_seconds: 0.0,
        ..Default::default()
    });
    assert!(err.is_err());
    assert_eq!(collector.config().max_label_values, 3);
}

#[test]
fn names_are_sanitized_and_kinds_do_not_clash() {
    let collector = collector();
    collector
        .counter("http.requests", &[("user-agent", "x")])
        .increment(1);
    collector
        .counter("http_requests", &[("user-agent", "x")])
        .increment(2);
    collector.gauge("http.requests", &[("k", "v")]).set(3.0);
    collector
        .counter("tta_executions_total", &[("k", "v")])
        .increment(1);
    let snap = collector.snapshot_at(1);
    let find = |name: &str| {
        snap.series
            .iter()
            .filter(|s| s.name == name)
            .collect::<Vec<_>>()
    };
    let requests = find("http_requests");
    assert_eq!(requests.len(), 1, "aliases share one series");
    assert_eq!(
        requests[0].labels,
        vec![("user_agent".to_string(), "x".to_string())]
    );
    assert_eq!(requests[0].value, tta_core::MetricValue::Counter(3));
    assert_eq!(find("http_requests_gauge").len(), 1);
    assert_eq!(find("tta_executions_total_counter").len(), 1);
}

#[test]
fn metric_names_and_series_are_bounded() {
    let collector = collector();
    let n = tta_metrics::MAX_METRIC_NAMES + 10;
    for i in 0..n {
        collector
            .counter(&format!("metric_{i}"), &[("k", "v")])
            .increment(1);
    }
    let totals = collector.totals();
    assert_eq!(totals.overflowed_names, 10);
    let snap = collector.snapshot_at(0);
    let overflow = snap
        .series
        .iter()
        .find(|s| s.name == "tta_overflow_counter_total")
        .expect("overflow metric");
    assert_eq!(overflow.value, tta_core::MetricValue::Counter(10));
    let total: u64 = snap
        .series
        .iter()
        .filter(|s| s.name.starts_with("metric_") || s.name == "tta_overflow_counter_total")
        .map(|s| match s.value {
            tta_core::MetricValue::Counter(c) => c,
            _ => 0,
        })
        .sum();
    assert_eq!(total, n as u64);
}

#[test]
fn too_many_series_go_to_the_overflow_series() {
    // Two keys of 100 values each make 10 000 combinations: exactly the series bound.
    let collector = MetricsCollector::new(MetricsConfig {
        max_label_values: 101,
        ..Default::default()
    })
    .expect("valid");
    let mut n = 0u64;
    for a in 0..101 {
        for b in 0..100 {
            collector
                .counter("pairs", &[("a", a.to_string()), ("b", b.to_string())])
                .increment(1);
            n += 1;
        }
    }
    let totals = collector.totals();
    assert_eq!(totals.overflowed_series, 100);
    let snap = collector.snapshot_at(0);
    let pairs: Vec<_> = snap.series.iter().filter(|s| s.name == "pairs").collect();
    assert_eq!(pairs.len(), tta_metrics::MAX_SERIES + 1);
    let sum: u64 = pairs
        .iter()
        .map(|s| match s.value {
            tta_core::MetricValue::Counter(c) => c,
            _ => 0,
        })
        .sum();
    assert_eq!(sum, n);
    let overflow = pairs
        .iter()
        .find(|s| s.labels == vec![("tta_overflow".to_string(), "true".to_string())]);
    assert_eq!(
        overflow.map(|s| s.value.clone()),
        Some(tta_core::MetricValue::Counter(100))
    );
}

/// A hint only saves the name lookup: shared between names, reused across collectors, or
/// pointing at a name past the limit, every call records exactly what `record_execution`
/// would have.
#[test]
fn hinted_executions_record_like_plain_ones() {
    use tta_metrics::ExecutionHint;

    let config = MetricsConfig {
        max_label_values: 2,
        ..MetricsConfig::default()
    };
    let hinted = MetricsCollector::new(config.clone()).unwrap();
    let plain = MetricsCollector::new(config).unwrap();
    let other = collector();
    let shared = ExecutionHint::default();
    // Five names through one hint, alternating, past a limit of two names.
    let names = ["a", "b", "c", "d", "a", "e", "b", "b", "a"];
    for (i, name) in names.iter().cycle().take(90).enumerate() {
        let ok = i % 3 != 0;
        let ms = i as f64;
        assert_eq!(
            hinted.record_execution_hinted(&shared, name, ms, ok),
            plain.record_execution(name, ms, ok)
        );
        // The same hint, used with another collector in between.
        assert!(other.record_execution_hinted(&shared, "z", 1.0, true));
    }
    assert!(!hinted.record_execution_hinted(&shared, "a", f64::NAN, true));
    assert!(!plain.record_execution("a", f64::NAN, true));
    // Names past the limit land in `hash:` buckets keyed per collector: compare the kept
    // names one by one and the rest through the totals.
    let kept = |c: &MetricsCollector| {
        c.names()
            .into_iter()
            .filter(|n| !n.starts_with("hash:"))
            .collect::<Vec<_>>()
    };
    assert_eq!(kept(&hinted), ["a", "b"]);
    assert_eq!(kept(&plain), ["a", "b"]);
    for name in kept(&hinted) {
        let (h, p) = (
            hinted.metrics(&name).unwrap(),
            plain.metrics(&name).unwrap(),
        );
        assert_eq!(
            (
                h.total_executions,
                h.successes,
                h.failures,
                h.max_duration_ms
            ),
            (
                p.total_executions,
                p.successes,
                p.failures,
                p.max_duration_ms
            ),
            "{name}"
        );
    }
    // Totals match too, except the number of names: the three names past the limit share
    // `hash:` buckets chosen by each collector's random key (two or three buckets).
    let (h, p) = (hinted.totals(), plain.totals());
    assert_eq!(
        (
            h.total_executions,
            h.successes,
            h.failures,
            h.rejected_values
        ),
        (
            p.total_executions,
            p.successes,
            p.failures,
            p.rejected_values
        )
    );
    assert_eq!(other.metrics("z").unwrap().total_executions, 90);
}
