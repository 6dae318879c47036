use tta_config::{ConfigError, Environment, ObservabilityConfig};

#[test]
fn partial_yaml_merges_over_the_preset_it_names() {
    let c = ObservabilityConfig::from_yaml_str(
        "environment: development\nservice_name: api\nstorage:\n  trace_ttl_days: 2\n",
    )
    .unwrap();
    let dev = ObservabilityConfig::preset(Environment::Development);
    assert_eq!(c.service_name, "api");
    assert_eq!(c.storage.trace_ttl_days, 2);
    assert_eq!(
        c.tracing.sampling.default_rate,
        dev.tracing.sampling.default_rate
    );
    assert_eq!(c.storage.compression_level, dev.storage.compression_level);
}

#[test]
fn empty_yaml_is_the_production_preset() {
    assert_eq!(
        ObservabilityConfig::from_yaml_str("").unwrap(),
        ObservabilityConfig::default()
    );
}

#[test]
fn round_trip() {
    for env in Environment::ALL {
        let mut c = ObservabilityConfig::preset(env);
        c.service_name = "round-trip".into();
        c.tracing.otlp_endpoint = Some("http://127.0.0.1:4318".into());
        let back = ObservabilityConfig::from_yaml_str(&c.to_yaml().unwrap()).unwrap();
        assert_eq!(back, c);
    }
}

fn yaml_err(text: &str) -> ConfigError {
    ObservabilityConfig::from_yaml_str(text).unwrap_err()
}

#[test]
fn unknown_key_has_path_line_column_and_suggestion() {
    let err = yaml_err("environment: production\ntracing:\n  sampling:\n    default_rte: 0.1\n");
    match &err {
        ConfigError::Yaml {
            line,
            column,
            message,
            ..
        } => {
            assert_eq!(*line, Some(4));
            assert_eq!(*column, Some(5));
            assert!(message.contains("tracing.sampling"), "{message}");
            assert!(message.contains("did you mean `default_rate`"), "{message}");
        }
        other => panic!("expected a YAML error, got {other:?}"),
    }
    insta::assert_snapshot!("unknown_key", err.to_string());
}

#[test]
fn wrong_type_names_the_key() {
    let err = yaml_err("tracing:\n  batch_size: lots\n");
    insta::assert_snapshot!("wrong_type", err.to_string());
    assert!(err.to_string().contains("tracing"), "{err}");
}

#[test]
fn invalid_values_in_yaml_list_every_error() {
    let err = yaml_err("tracing:\n  batch_size: 5000\n  sampling:\n    default_rate: 1.5\n");
    let paths: Vec<&str> = err.field_errors().iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"tracing.batch_size"), "{paths:?}");
    assert!(
        paths.contains(&"tracing.sampling.default_rate"),
        "{paths:?}"
    );
}

#[test]
fn malformed_yaml_is_an_error_not_a_panic() {
    for text in ["tracing: [1, 2", "\t- x", "environment: nowhere", ": :"] {
        assert!(
            ObservabilityConfig::from_yaml_str(text).is_err(),
            "{text:?}"
        );
    }
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "metrics:\n  max_labels: 5\n").unwrap();
    let err = ObservabilityConfig::from_yaml_file(&path).unwrap_err();
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );
    let missing = ObservabilityConfig::from_yaml_file(dir.path().join("nope.yaml")).unwrap_err();
    assert!(matches!(missing, ConfigError::Io { .. }), "{missing:?}");
}
