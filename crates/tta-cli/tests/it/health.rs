use tta_observability::{Observability, ObservabilityConfig};

use crate::{stderr, stdout, tta};

#[test]
fn health_reads_a_running_server_and_exits_by_status() {
    let mut config = ObservabilityConfig::from_environment("production").unwrap();
    config.service_name = "health-test".into();
    let obs = Observability::builder()
        .config(config)
        .without_pipeline()
        .listen("127.0.0.1:0")
        .build()
        .unwrap();
    let url = format!("http://{}", obs.http_addr().expect("listening"));
    let dir = tempfile::tempdir().unwrap();

    let o = tta(dir.path(), &["health", "--url", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("status:  healthy (HTTP 200)"), "{text}");
    assert!(text.contains("  sampling: healthy"), "{text}");

    // A rate below the health threshold degrades sampling: still exit 0, but 1 with --strict.
    obs.update_config(|c| {
        c.tracing.sampling.adaptive_enabled = false;
        c.tracing.sampling.default_rate = 0.001;
    })
    .unwrap();
    let o = tta(dir.path(), &["health", "--url", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("status:  degraded"),
        "{}",
        stdout(&o)
    );
    let o = tta(dir.path(), &["health", "--url", &url, "--strict", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["status"], "degraded");

    // Something that is not a health report is a runtime error.
    let o = tta(dir.path(), &["health", "--url", &format!("{url}/livez")]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stderr(&o).starts_with("tta: health: "), "{}", stderr(&o));
    obs.shutdown(std::time::Duration::from_secs(5));
}
