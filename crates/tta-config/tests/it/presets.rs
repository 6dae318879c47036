use tta_config::{ConfigError, Environment, ObservabilityConfig};

#[test]
fn production_preset_is_the_guides_defaults() {
    let c = ObservabilityConfig::from_environment("production").unwrap();
    assert_eq!(c.tracing.sampling.default_rate, 0.05);
    assert!(c.tracing.sampling.adaptive_enabled);
    assert!(c.tracing.sampling.always_sample_errors);
    assert!(c.tracing.sampling.always_sample_slow);
    assert_eq!(c.tracing.sampling.slow_threshold_ms, 1000.0);
    assert_eq!(c.tracing.sampling.adaptive_min_rate, 0.01);
    assert_eq!(c.tracing.sampling.adaptive_max_rate, 0.2);
    assert_eq!(c.tracing.sampling.adaptive_target_overhead, 0.02);
    assert_eq!(c.metrics.max_label_values, 100);
    assert!(c.metrics.hash_high_cardinality);
    assert_eq!(c.storage.trace_ttl_days, 7);
    assert_eq!(c.storage.metric_ttl_days, 30);
    assert!(c.storage.compression_enabled);
    assert_eq!(c.storage.compression_level, 6);
    assert_eq!(c.tracing.batch_size, 512);
    assert_eq!(c.tracing.max_queue_size, 2048);
    assert_eq!(c.tracing.export_interval_seconds, 60.0);
    assert!(c.async_export);
    assert_eq!(c.max_export_workers, 4);
    assert_eq!(c, ObservabilityConfig::default());
}

#[test]
fn rate_table_of_the_guide() {
    for (name, rate) in [("development", 1.0), ("staging", 0.2), ("production", 0.05)] {
        let c = ObservabilityConfig::from_environment(name).unwrap();
        assert_eq!(c.tracing.sampling.default_rate, rate, "{name}");
        c.validate().unwrap();
    }
}

#[test]
fn unknown_environment_lists_valid_ones() {
    let err = ObservabilityConfig::from_environment("prodution").unwrap_err();
    assert!(matches!(err, ConfigError::UnknownEnvironment { .. }));
    assert_eq!(
        err.to_string(),
        "unknown environment \"prodution\"; valid environments are development, staging, production"
    );
}

#[test]
fn presets_as_yaml() {
    for env in Environment::ALL {
        let yaml = ObservabilityConfig::preset(env).to_yaml().unwrap();
        insta::assert_snapshot!(format!("preset_{env}"), yaml);
    }
}

#[test]
fn to_dict_has_every_section() {
    let d = ObservabilityConfig::default().to_dict();
    assert_eq!(d["environment"], "production");
    assert_eq!(d["tracing"]["sampling"]["default_rate"], 0.05);
    assert_eq!(d["metrics"]["max_label_values"], 100);
    assert_eq!(d["storage"]["trace_ttl_days"], 7);
}

#[test]
fn validation_lists_every_error_with_its_path() {
    let mut c = ObservabilityConfig::default();
    c.tracing.sampling.default_rate = 1.5;
    c.tracing.batch_size = 4096;
    c.storage.compression_level = 30;
    c.storage.trace_ttl_days = 0;
    c.max_export_workers = 0;
    let err = c.validate().unwrap_err();
    let paths: Vec<&str> = err.field_errors().iter().map(|e| e.path.as_str()).collect();
    for p in [
        "tracing.sampling.default_rate",
        "tracing.batch_size",
        "storage.compression_level",
        "storage.trace_ttl_days",
        "max_export_workers",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    insta::assert_snapshot!("validation_errors", err.to_string());
}

#[test]
fn adaptive_bounds_must_hold() {
    let mut c = ObservabilityConfig::default();
    c.tracing.sampling.adaptive_min_rate = 0.3;
    c.tracing.sampling.adaptive_max_rate = 0.2;
    let err = c.validate().unwrap_err();
    assert_eq!(
        err.field_errors()[0].path,
        "tracing.sampling.adaptive_min_rate"
    );
}

#[test]
fn queue_full_wait_reaches_the_pipeline_and_is_bounded() {
    let mut c = ObservabilityConfig::default();
    assert_eq!(
        c.export_config().queue_full_wait_ms,
        0.0,
        "drops at once by default"
    );
    c.tracing.queue_full_wait_ms = 10.0;
    assert!(c.validate().is_ok());
    assert_eq!(c.export_config().queue_full_wait_ms, 10.0);
    for bad in [-1.0, f64::NAN, 5_000.0] {
        c.tracing.queue_full_wait_ms = bad;
        let err = c.validate().unwrap_err();
        assert_eq!(
            err.field_errors()[0].path,
            "tracing.queue_full_wait_ms",
            "{bad}: {err}"
        );
    }
}

#[test]
fn reference_doc_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == tta_config::render_reference(),
        "docs/configuration.md is stale: run `cargo xtask codegen`"
    );
}
