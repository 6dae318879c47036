use crate::{stderr, stdout, tta};

#[test]
fn config_show_prints_the_production_preset_as_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let o = tta(dir.path(), &["config", "show", "--env", "production"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("config_show_production_yaml", stdout(&o));
}

#[test]
fn config_show_prints_json_and_honours_env_and_variables() {
    let dir = tempfile::tempdir().unwrap();
    let o = tta(
        dir.path(),
        &["config", "show", "--env", "development", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("config_show_development_json", stdout(&o));

    let o = std::process::Command::new(env!("CARGO_BIN_EXE_tta"))
        .args(["config", "show", "--format", "json"])
        .env_clear()
        .env("ENVIRONMENT", "staging")
        .env("TTA_TRACING__SAMPLING__DEFAULT_RATE", "0.3")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["environment"], "staging");
    assert_eq!(v["tracing"]["sampling"]["default_rate"], 0.3);
}

#[test]
fn config_show_rejects_an_unknown_environment() {
    let dir = tempfile::tempdir().unwrap();
    let o = tta(dir.path(), &["config", "show", "--env", "prodution"]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("tta: config show: unknown environment \"prodution\""),
        "{err}"
    );
}

#[test]
fn config_check_accepts_what_config_show_prints() {
    let dir = tempfile::tempdir().unwrap();
    let shown = tta(dir.path(), &["config", "show", "--env", "staging"]);
    std::fs::write(dir.path().join("deploy.yaml"), &shown.stdout).unwrap();
    let o = tta(dir.path(), &["config", "check", "deploy.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("deploy.yaml: ok (environment staging"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn config_check_reports_an_unknown_key_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deploy.yaml"),
        "environment: production\ntracing:\n  batch_size: 512\n  sampling:\n    default_rat: 0.1\n",
    )
    .unwrap();
    let o = tta(dir.path(), &["config", "check", "deploy.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "tta: config check: deploy.yaml: tracing.sampling: unknown field `default_rat`"
        ),
        "{err}"
    );
    assert!(err.contains("at line 5 column 5"), "{err}");
}

#[test]
fn config_check_lists_every_invalid_value_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deploy.yaml"),
        "environment: production\ntracing:\n  sampling:\n    default_rate: 1.5\n    slow_threshold_ms: -3\n",
    )
    .unwrap();
    let o = tta(dir.path(), &["config", "check", "deploy.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].starts_with("tta: config check: deploy.yaml: tracing.sampling.default_rate"),
        "{err}"
    );
    assert!(lines[0].ends_with("at line 4 column 5"), "{err}");
    assert!(
        lines[1].contains("tracing.sampling.slow_threshold_ms"),
        "{err}"
    );
    assert!(lines[1].ends_with("at line 5 column 5"), "{err}");
}

#[test]
fn config_check_of_a_missing_file_is_a_runtime_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = tta(dir.path(), &["config", "check", "missing.yaml"]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("tta: config check: missing.yaml: "),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_with_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(tta(dir.path(), &["demo", "--rate"]).status.code(), Some(2));
    assert_eq!(tta(dir.path(), &["frobnicate"]).status.code(), Some(2));
    let o = tta(dir.path(), &["traces", "show", "not-an-id"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("tta: traces show: ID: \"not-an-id\" is not a trace id"),
        "{}",
        stderr(&o)
    );
    let help = tta(dir.path(), &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("Exit codes:"), "{}", stdout(&help));
}
