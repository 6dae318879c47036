use std::time::Duration;

use tta_observability::{Observability, ObservabilityConfig, TraceId};

use crate::common::wait_for;

fn sampled_fraction(obs: &Observability) -> f64 {
    let n = 100_000;
    let kept = (0..n)
        .filter(|_| obs.head_decision(TraceId::random()).is_sampled())
        .count();
    kept as f64 / n as f64
}

/// Rewrite the YAML (rename-save) to rate 0.01: the sampled fraction changes.
#[test]
fn rename_save_changes_the_sampled_fraction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("observability.yaml");
    let write = |rate: f64| {
        let tmp = dir.path().join("observability.yaml.tmp");
        std::fs::write(
            &tmp,
            format!(
                "tracing:\n  sampling:\n    default_rate: {rate}\n    adaptive_enabled: false\n"
            ),
        )
        .unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    write(0.2);
    let obs = Observability::builder()
        .config(ObservabilityConfig::from_yaml_file(&path).unwrap())
        .watch_config(&path)
        .without_store()
        .build()
        .unwrap();
    let before = sampled_fraction(&obs);
    assert!((before - 0.2).abs() < 0.01, "{before}");

    write(0.01);
    wait_for("reload", || obs.sampler().config().default_rate == 0.01);
    let after = sampled_fraction(&obs);
    assert!((after - 0.01).abs() < 0.003, "{after}");
    assert_eq!(obs.config_handle().stats().applied, 1);

    // A broken file keeps the last good configuration and degrades config health.
    std::fs::write(&path, "tracing:\n  sampling:\n    default_rate: [oops\n").unwrap();
    wait_for("rejection", || obs.config_handle().stats().rejected == 1);
    assert_eq!(obs.sampler().config().default_rate, 0.01);
    let report = obs.health().check_health();
    assert!(report.message.contains("config"), "{}", report.message);
    obs.shutdown(Duration::from_secs(1));
}
