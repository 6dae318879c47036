use tta_config::{ConfigError, EnvSource, Environment, ObservabilityConfig};

fn load(pairs: &[(&str, &str)]) -> Result<ObservabilityConfig, ConfigError> {
    ObservabilityConfig::from_env_source(&EnvSource::from_pairs(pairs.iter().copied()))
}

#[test]
fn environment_selects_the_preset() {
    assert_eq!(load(&[]).unwrap().environment, Environment::Production);
    let c = load(&[
        ("ENVIRONMENT", "staging"),
        ("SERVICE_NAME", "tta-api"),
        ("SERVICE_VERSION", "1.0.0"),
    ])
    .unwrap();
    assert_eq!(c.environment, Environment::Staging);
    assert_eq!(c.tracing.sampling.default_rate, 0.2);
    assert_eq!(c.service_name, "tta-api");
    assert_eq!(c.service_version, "1.0.0");
    let err = load(&[("ENVIRONMENT", "qa")]).unwrap_err();
    assert!(err.to_string().contains("ENVIRONMENT"), "{err}");
}

#[test]
fn tta_variables_set_any_key() {
    let c = load(&[
        ("TTA_TRACING__SAMPLING__DEFAULT_RATE", "0.01"),
        ("TTA_METRICS__HASH_HIGH_CARDINALITY", "false"),
        ("TTA_STORAGE__MAX_DISK_BYTES", "1000000"),
        ("TTA_LISTEN", "127.0.0.1:9000"),
        ("TTA_TRACING__QUEUE_FULL_WAIT_MS", "2.5"),
    ])
    .unwrap();
    assert_eq!(c.tracing.sampling.default_rate, 0.01);
    assert_eq!(c.tracing.queue_full_wait_ms, 2.5);
    assert!(!c.metrics.hash_high_cardinality);
}

#[test]
fn malformed_values_name_the_variable() {
    let err = load(&[("TTA_TRACING__BATCH_SIZE", "lots")]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::EnvVar { variable, .. } if variable == "TTA_TRACING__BATCH_SIZE"),
        "{err:?}"
    );
    let err = load(&[("TTA_TRACING__SAMPLNG__DEFAULT_RATE", "0.1")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable TTA_TRACING__SAMPLNG__DEFAULT_RATE: no key `samplng` in `tracing`; did you mean `sampling`?"
    );
    let err = load(&[("OTEL_BSP_MAX_QUEUE_SIZE", "-3")]).unwrap_err();
    assert!(err.to_string().contains("OTEL_BSP_MAX_QUEUE_SIZE"), "{err}");
    let err = load(&[
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("OTEL_TRACES_SAMPLER_ARG"), "{err}");
}

#[test]
fn otel_variables_map() {
    let c = load(&[
        ("OTEL_SERVICE_NAME", "checkout"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "4096"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1024"),
        ("OTEL_BSP_SCHEDULE_DELAY", "5000"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
    ])
    .unwrap();
    assert_eq!(c.service_name, "checkout");
    assert_eq!(c.tracing.sampling.default_rate, 0.25);
    assert!(!c.tracing.sampling.adaptive_enabled);
    assert_eq!(c.tracing.max_queue_size, 4096);
    assert_eq!(c.tracing.batch_size, 1024);
    assert_eq!(c.tracing.export_interval_seconds, 5.0);
    assert_eq!(
        c.tracing.otlp_endpoint.as_deref(),
        Some("http://127.0.0.1:4318")
    );
}

/// The precedence table: preset < YAML file < TTA_ < OTEL_.
#[test]
fn precedence() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.yaml");
    std::fs::write(
        &file,
        "environment: staging\nservice_name: from-file\ntracing:\n  batch_size: 256\n",
    )
    .unwrap();
    let env = |pairs: &[(&str, &str)]| EnvSource::from_pairs(pairs.iter().copied());

    // The file beats the preset and names it.
    let c = ObservabilityConfig::load(Some(&file), &env(&[("ENVIRONMENT", "production")])).unwrap();
    assert_eq!(c.environment, Environment::Staging);
    assert_eq!(c.service_name, "from-file");
    assert_eq!(c.tracing.batch_size, 256);
    assert_eq!(c.tracing.max_queue_size, 2048);

    // TTA_ beats the file.
    let c =
        ObservabilityConfig::load(Some(&file), &env(&[("TTA_SERVICE_NAME", "from-tta")])).unwrap();
    assert_eq!(c.service_name, "from-tta");

    // OTEL_ beats TTA_.
    let c = ObservabilityConfig::load(
        Some(&file),
        &env(&[
            ("TTA_SERVICE_NAME", "from-tta"),
            ("OTEL_SERVICE_NAME", "from-otel"),
        ]),
    )
    .unwrap();
    assert_eq!(c.service_name, "from-otel");

    // Explicit code beats everything.
    let mut c = c;
    c.service_name = "from-code".into();
    assert_eq!(c.service_name, "from-code");
}
