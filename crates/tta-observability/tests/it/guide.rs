//! The guide's Verification and Deployment snippets, in Rust, on the process-wide runtime.

use tta_observability::{HealthStatus, ObservabilityConfig};

/// Deployment step 2 then Verification 1–3, in order (one test: they share the global).
#[test]
fn deployment_and_verification_steps() {
    // 2. Deployment: load the production config and verify health.
    let mut config = ObservabilityConfig::from_environment("production").unwrap();
    config.service_name = "tta-api".into();
    config.service_version = "1.0.0".into();
    tta_observability::set_observability_config(config).unwrap();
    let health = tta_observability::health_checker();
    let result = health.check_health();
    assert_eq!(result.status, HealthStatus::Healthy, "{}", result.message);

    // Verification 1: the expected /health response.
    assert_eq!(result.status.as_str(), "healthy");
    assert_eq!(result.message, "All observability systems operational");
    assert_eq!(result.details["config_loaded"], true);
    assert_eq!(result.details["environment"], "production");
    assert_eq!(result.details["metrics_collector"], "available");
    assert_eq!(result.details["tracing_available"], true);
    assert!(result.details["uptime_seconds"].as_f64().unwrap() >= 0.0);
    assert!(!result.timestamp.is_empty());

    // Verification 2: sampling.
    let status = tta_observability::sampling_status();
    assert_eq!(status["enabled"], true);
    let rate = status["sampling_rate"].as_f64().unwrap();
    assert!(0.0 < rate && rate <= 1.0);
    assert_eq!(status["always_sample_errors"], true);

    // Verification 3: metrics.
    let collector = tta_observability::metrics_collector();
    collector.record_execution("test_primitive", 100.0, true);
    let metrics = collector.metrics("test_primitive").unwrap();
    assert_eq!(metrics.total_executions, 1);

    // Verification 4 (after load): the full status has sampling and metrics.
    let full = tta_observability::full_status();
    assert_eq!(full["sampling"]["sampling_rate"].as_f64(), Some(rate));
    assert!(full["metrics"]["total_executions"].as_u64().unwrap() >= 1);

    // Monitoring alerts: no dropped labels yet; rate not below 1%.
    let metrics_status = tta_observability::metrics_status();
    assert!(
        metrics_status["cardinality"]["dropped_labels"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Troubleshooting: reduce the sampling rate at runtime; it reaches the sampler at once.
    tta_observability::update_observability_config(|c| c.tracing.sampling.default_rate = 0.01)
        .unwrap();
    assert_eq!(tta_observability::sampler().config().default_rate, 0.01);
    assert_eq!(
        tta_observability::observability_config()
            .tracing
            .sampling
            .default_rate,
        0.01
    );
    // An invalid edit is rejected; nothing changes; health reports the rejection.
    assert!(
        tta_observability::update_observability_config(|c| c.tracing.sampling.default_rate = 7.0)
            .is_err()
    );
    assert_eq!(tta_observability::sampler().config().default_rate, 0.01);
    let report = health.check_health();
    assert_eq!(report.status, HealthStatus::Degraded, "{}", report.message);
    assert!(report.message.contains("config"), "{}", report.message);

    // Cardinality explosion: a user_id label past the limit is reported.
    for i in 0..500 {
        collector
            .counter("requests_total", &[("user_id", format!("u{i}").as_str())])
            .increment(1);
    }
    let stats = collector.cardinality_stats();
    assert!(stats.dropped_labels.contains(&"user_id".to_string()));
    assert!(stats.label_cardinality["user_id"] <= 100);
}
