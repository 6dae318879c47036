//! A configuration change reaches every running part in the same operation.

use std::time::Duration;

use tta_observability::{Observability, ObservabilityConfig, TraceId};

use crate::common::wait_for;

#[test]
fn reload_reaches_sampler_limits_pipeline_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let obs = Observability::builder()
        .config(ObservabilityConfig::from_environment("production").unwrap())
        .store_dir(dir.path())
        .build()
        .unwrap();
    obs.update_config(|c| {
        c.tracing.sampling.adaptive_enabled = false;
        c.tracing.sampling.default_rate = 0.5;
        c.tracing.batch_size = 128;
        c.metrics.max_label_values = 7;
        c.health.min_sampling_rate = 0.6;
    })
    .unwrap();
    // All in force when update_config returns: no waiting.
    assert_eq!(obs.sampler().current_rate(), 0.5);
    assert_eq!(obs.metrics().config().max_label_values, 7);
    assert_eq!(obs.pipeline().unwrap().config().batch_size, 128);
    // The health rule reads the new threshold: 0.5 is now "below the minimum".
    let report = obs.health().check_health();
    assert!(report.message.contains("sampling"), "{}", report.message);

    // The limiter applies the new limit to new values at once.
    for i in 0..20 {
        obs.metrics()
            .counter("requests_total", &[("user_id", format!("u{i}").as_str())])
            .increment(1);
    }
    assert_eq!(
        obs.metrics().cardinality_stats().label_cardinality["user_id"],
        7
    );
    obs.shutdown(Duration::from_secs(2));
}

#[test]
fn measured_overhead_is_exposed_in_sampling_status() {
    let mut config = ObservabilityConfig::from_environment("production").unwrap();
    config.tracing.sampling.adaptive_adjustment_interval_seconds = 0.1;
    let obs = Observability::builder()
        .config(config)
        .without_store()
        .build()
        .unwrap();
    // Keep the process busy so its CPU time advances between samples.
    wait_for("an overhead measurement", || {
        let mut x = 0u64;
        for i in 0..200_000u64 {
            x = std::hint::black_box(x.wrapping_add(i * i));
        }
        let _ = obs.head_decision(TraceId::random());
        obs.sampling_status()["measured_overhead"].is_number()
    });
    let overhead = obs.sampling_status()["measured_overhead"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&overhead), "{overhead}");
    obs.shutdown(Duration::from_secs(1));
}
