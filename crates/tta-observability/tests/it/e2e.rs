//! End to end: a `tracing` workload through the layer, with 1% errors and 2% slow requests at
//! a 5% head rate. Every error and slow trace must be in the store, the rest near 5%.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tta_observability::core::AttributeValue;
use tta_observability::storage::TraceQuery;
use tta_observability::{HealthStatus, Observability, ObservabilityConfig};

use crate::common::{Switchable, wait_for};

const REQUESTS: i64 = 5_000;

fn config() -> ObservabilityConfig {
    let mut c = ObservabilityConfig::from_environment("production").unwrap();
    c.service_name = "e2e".into();
    let s = &mut c.tracing.sampling;
    s.default_rate = 0.05;
    s.adaptive_enabled = false;
    s.slow_threshold_ms = 5.0;
    s.straggler_delay_ms = 20;
    s.decision_wait_ms = 2_000;
    c.tracing.batch_size = 256;
    c.tracing.export_interval_seconds = 0.2;
    c.tracing.export_timeout_seconds = 2.0;
    c.health.export_failures_degraded = 1;
    c.health.export_failures_unhealthy = 3;
    c
}

#[test]
fn errors_and_slow_traces_are_all_stored_and_health_follows_the_exporter() {
    let dir = tempfile::tempdir().unwrap();
    let switch = Switchable::default();
    let obs = Observability::builder()
        .config(config())
        .store_dir(dir.path())
        .exporter(switch.clone())
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(obs.layer());
    let (mut errors, mut slow) = (HashSet::new(), HashSet::new());
    tracing::subscriber::with_default(subscriber, || {
        for req in 0..REQUESTS {
            let is_error = req % 100 == 7;
            let is_slow = req % 50 == 3;
            let root = tracing::info_span!("GET /api", req, route = "/api");
            let _root = root.enter();
            {
                let _db = tracing::info_span!("SELECT orders", db.system = "postgresql").entered();
                if is_slow {
                    std::thread::sleep(Duration::from_millis(7));
                }
            }
            if is_error {
                tracing::error!("payment declined");
                errors.insert(req);
            }
            if is_slow {
                slow.insert(req);
            }
        }
    });
    obs.flush(Duration::from_secs(20)).unwrap();

    let store = obs.store().unwrap();
    let spans = store
        .query(TraceQuery::default().limit(usize::MAX))
        .unwrap();
    let stored: HashSet<i64> = spans
        .iter()
        .filter(|s| s.is_root())
        .filter_map(|s| match s.attribute("req") {
            Some(AttributeValue::I64(r)) => Some(*r),
            _ => None,
        })
        .collect();
    for req in errors.iter().chain(&slow) {
        assert!(
            stored.contains(req),
            "request {req} (error or slow) is missing from the store"
        );
    }
    // Every stored trace is whole: root plus child.
    assert_eq!(spans.len(), 2 * stored.len());
    let others = stored
        .iter()
        .filter(|r| !errors.contains(r) && !slow.contains(r))
        .count();
    let normal = REQUESTS as usize - errors.union(&slow).count();
    let fraction = others as f64 / normal as f64;
    assert!(
        (0.03..0.07).contains(&fraction),
        "head-sampled fraction {fraction}"
    );
    assert_eq!(
        obs.metrics().metrics("GET /api").unwrap().total_executions,
        REQUESTS as u64
    );
    assert_eq!(
        obs.metrics().metrics("GET /api").unwrap().failures,
        errors.len() as u64
    );
    let report = obs.health().check_health();
    assert_eq!(report.status, HealthStatus::Healthy, "{}", report.message);

    // The backend goes away: health degrades, then turns unhealthy.
    switch.failing.store(true, Ordering::SeqCst);
    let send_batch = || {
        let subscriber = tracing_subscriber::registry().with(obs.layer());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..20 {
                let _s = tracing::info_span!("GET /api").entered();
                tracing::error!("kept by the tail rule");
            }
        });
        obs.flush(Duration::from_secs(10)).unwrap_or(());
    };
    send_batch();
    wait_for("degraded", || {
        obs.health().check_health().status != HealthStatus::Healthy
    });
    let mut rounds = 0;
    while obs.health().check_health().status != HealthStatus::Unhealthy && rounds < 20 {
        send_batch();
        rounds += 1;
    }
    let report = obs.health().check_health();
    assert_eq!(report.status, HealthStatus::Unhealthy, "{}", report.message);
    assert!(report.message.contains("export"), "{}", report.message);
    obs.shutdown(Duration::from_secs(5));
}
