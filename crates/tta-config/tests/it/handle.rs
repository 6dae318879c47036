use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tta_config::{ConfigHandle, ObservabilityConfig};

#[test]
fn restart_required_fields_are_reported() {
    let handle = ConfigHandle::new(ObservabilityConfig::default()).unwrap();
    let change = handle
        .update(|c| {
            c.max_export_workers = 8;
            c.tracing.batch_size = 256;
        })
        .unwrap();
    assert_eq!(change.restart_required, vec!["max_export_workers"]);
    assert_eq!(handle.stats().restart_required, vec!["max_export_workers"]);
    assert_eq!(handle.version(), 1);
}

/// Readers on two threads during 10^4 swaps only ever see whole, valid configurations: one
/// loads a guard each time, the other keeps a cached [`tta_config::ConfigReader`], which
/// also sees the last configuration once the swaps are over.
#[test]
fn readers_see_whole_configs_during_swaps() {
    let handle = ConfigHandle::new(ObservabilityConfig::default()).unwrap();
    handle
        .update(|c| {
            c.tracing.sampling.adaptive_enabled = false;
            c.tracing.sampling.default_rate = 0.05;
            c.tracing.batch_size = 1000;
            c.service_name = "svc-500".into();
        })
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    // Every writer keeps batch_size == 2 * (rate * 10_000) and the name in step.
    let check = |c: &ObservabilityConfig| {
        let n = (c.tracing.sampling.default_rate * 10_000.0).round() as usize;
        assert_eq!(c.tracing.batch_size, 2 * n);
        assert_eq!(c.service_name, format!("svc-{n}"));
        n
    };
    let readers: Vec<_> = (0..2)
        .map(|t| {
            let (h, stop, reads) = (handle.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                let mut reader = h.reader();
                while !stop.load(Ordering::Relaxed) {
                    if t == 0 {
                        check(&h.load_guard());
                    } else {
                        check(reader.load());
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                check(reader.load())
            })
        })
        .collect();
    for i in 0..10_000usize {
        let n = 1 + i % 1000;
        handle
            .update(|c| {
                c.tracing.sampling.default_rate = n as f64 / 10_000.0;
                c.tracing.batch_size = 2 * n;
                c.service_name = format!("svc-{n}");
            })
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert_eq!(r.join().unwrap(), 1000, "the last configuration written");
    }
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert_eq!(handle.stats().applied, 10_001);
}

#[test]
fn global_set_and_read() {
    let mut c = ObservabilityConfig::from_environment("production").unwrap();
    c.service_name = "global-test".into();
    tta_config::set_observability_config(c).unwrap();
    assert_eq!(
        tta_config::observability_config().service_name,
        "global-test"
    );
    let mut bad = ObservabilityConfig::default();
    bad.tracing.sampling.default_rate = f64::NAN;
    assert!(tta_config::set_observability_config(bad).is_err());
    assert_eq!(
        tta_config::observability_config().service_name,
        "global-test"
    );
}
