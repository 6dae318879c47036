//! The roll-up: component statuses to the overall status, message and readiness.

use std::sync::Arc;
use std::thread;

use insta::assert_json_snapshot;
use tta_health::{
    CheckerInfo, ComponentHealth, HEALTHY_MESSAGE, HealthChecker, HealthStatus, ReadinessRole,
};

use crate::support::Fake;

fn h() -> ComponentHealth {
    ComponentHealth::healthy()
}
fn d(reason: &str) -> ComponentHealth {
    ComponentHealth::degraded(reason)
}
fn u(reason: &str) -> ComponentHealth {
    ComponentHealth::unhealthy(reason)
}

/// Components (name, health) -> overall status, message, ready.
type Case = (
    Vec<(&'static str, ComponentHealth)>,
    HealthStatus,
    &'static str,
    bool,
);

#[test]
fn roll_up_table() {
    use HealthStatus::*;
    let two_reasons = d("3 spans dropped in the last 60 s")
        .merge(d("export latency p99 250.0 ms over the 100.0 ms target"));
    let silent = ComponentHealth {
        status: Degraded,
        ..Default::default()
    };
    let cases: Vec<Case> = vec![
        (vec![], Healthy, HEALTHY_MESSAGE, true),
        (
            vec![("sampling", h()), ("metrics", h()), ("export", h())],
            Healthy,
            HEALTHY_MESSAGE,
            true,
        ),
        (
            vec![
                ("sampling", h()),
                ("export", d("3 spans dropped in the last 60 s")),
            ],
            Degraded,
            "Degraded: export (3 spans dropped in the last 60 s)",
            true,
        ),
        (
            vec![
                (
                    "metrics",
                    d("cardinality limit reached for labels: user_id"),
                ),
                ("export", two_reasons),
            ],
            Degraded,
            "Degraded: metrics (cardinality limit reached for labels: user_id), export (3 spans \
             dropped in the last 60 s; export latency p99 250.0 ms over the 100.0 ms target)",
            true,
        ),
        (
            vec![
                ("sampling", h()),
                ("export", d("slow")),
                ("storage", u("store not writable")),
                ("config", d("reload rejected")),
            ],
            Unhealthy,
            "Unhealthy: storage (store not writable); also degraded: export, config",
            false,
        ),
        (
            vec![
                ("storage", u("store not writable")),
                ("export", u("export failing: 3 consecutive failures")),
            ],
            Unhealthy,
            "Unhealthy: storage (store not writable), export (export failing: 3 consecutive failures)",
            false,
        ),
        (
            vec![("config", silent)],
            Degraded,
            "Degraded: config (no reason given)",
            true,
        ),
    ];
    for (components, status, message, ready) in cases {
        let checker = HealthChecker::default();
        let names: Vec<&str> = components.iter().map(|(n, _)| *n).collect();
        for (name, health) in components {
            checker.register(Fake::new(name, health.clone())).unwrap();
        }
        let report = checker.check_health();
        assert_eq!(report.status, status, "{names:?}");
        assert_eq!(report.message, message, "{names:?}");
        assert_eq!(checker.readiness().ready, ready, "{names:?}");
        for name in &names {
            let entry = &report.details[*name];
            assert_eq!(
                entry["status"],
                checker.component_health(name).unwrap().status.as_str()
            );
        }
    }
}

#[test]
fn informational_components_never_block_readiness() {
    let checker = HealthChecker::default();
    let storage = Fake::new("storage", u("store not writable"));
    checker
        .register_with(storage.clone(), ReadinessRole::Informational)
        .unwrap();
    let export = Fake::new("export", h());
    checker.register(export.clone()).unwrap();
    assert_eq!(checker.check_health().status, HealthStatus::Unhealthy);
    assert!(checker.readiness().ready);
    export.set(u("export failing: 5 consecutive failures"));
    let readiness = checker.readiness();
    assert!(!readiness.ready);
    assert_eq!(readiness.not_ready.len(), 1);
    assert_eq!(readiness.not_ready[0].component, "export");
    assert_json_snapshot!("readiness_not_ready", readiness);
    storage.set(h());
    export.set(d("slow"));
    assert!(checker.readiness().ready, "degraded is ready");
}

#[test]
fn reports_snapshot() {
    let checker = HealthChecker::new(CheckerInfo {
        environment: "staging".into(),
        config_loaded: true,
        ..Default::default()
    });
    let sampling = Fake::new("sampling", h().with_observed("sampling_rate", 0.05));
    let export = Fake::new(
        "export",
        d("3 spans dropped in the last 60 s").with_observed("dropped_spans_in_window", 3),
    );
    checker.register(sampling).unwrap();
    checker.register(export.clone()).unwrap();
    let redact = |report: &tta_health::HealthReport| {
        assert!(
            report.timestamp.ends_with('Z') && report.timestamp.len() == 24,
            "{}",
            report.timestamp
        );
        report.to_json()
    };
    assert_json_snapshot!("report_degraded", redact(&checker.check_health()), {
        ".timestamp" => "[timestamp]",
        ".details.uptime_seconds" => "[uptime]",
    });
    export.set(u("export failing: 3 consecutive failures"));
    assert_json_snapshot!("full_status_unhealthy", checker.full_status(), {
        ".health.timestamp" => "[timestamp]",
        ".health.details.uptime_seconds" => "[uptime]",
    });
}

#[test]
fn probes_run_while_components_change() {
    let checker = Arc::new(HealthChecker::default());
    checker.register(Fake::new("sampling", h())).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probes: Vec<_> = (0..3)
        .map(|_| {
            let checker = Arc::clone(&checker);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut n = 0_u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || n == 0 {
                    let report = checker.check_health();
                    // The export component comes and goes; sampling is always there.
                    assert_eq!(report.details["sampling"]["status"], "healthy");
                    assert!(matches!(
                        report.status,
                        HealthStatus::Healthy | HealthStatus::Degraded
                    ));
                    n += 1;
                }
                n
            })
        })
        .collect();
    for i in 0..200 {
        checker.register(Fake::new("export", d("slow"))).unwrap();
        checker.set_environment(format!("env-{i}"));
        assert!(checker.unregister("export"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in probes {
        assert!(p.join().unwrap() > 0);
    }
    assert_eq!(checker.environment(), "env-199");
    assert_eq!(checker.component_names(), ["sampling"]);
}
