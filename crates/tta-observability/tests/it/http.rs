use std::time::Duration;

use tta_observability::{Observability, ObservabilityConfig};

#[test]
fn health_and_metrics_over_http() {
    let obs = Observability::builder()
        .config(ObservabilityConfig::from_environment("production").unwrap())
        .without_store()
        .listen("127.0.0.1:0")
        .build()
        .unwrap();
    obs.metrics().record_execution("checkout", 12.0, true);
    let addr = obs.http_addr().unwrap();
    let mut resp = ureq::get(&format!("http://{addr}/health")).call().unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["details"]["environment"], "production");

    let mut resp = ureq::get(&format!("http://{addr}/health/sampling"))
        .call()
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["sampling_rate"], 0.05);

    let mut resp = ureq::get(&format!("http://{addr}/metrics")).call().unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    assert!(text.contains("tta_executions_total"), "{text}");
    assert!(text.contains("checkout"), "{text}");
    obs.shutdown(Duration::from_secs(1));
    assert!(
        ureq::get(&format!("http://{addr}/livez")).call().is_err(),
        "server stopped"
    );
}
