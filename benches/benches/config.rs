//! tta-config: lock-free loads (a thread's cached `ConfigReader`, a `load_guard`, an owned
//! `load()`) against a `RwLock` read, and hot-reload latency from a file write to the new
//! configuration being applied.
use std::hint::black_box;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tta_config::{ConfigHandle, ConfigWatcher, EnvSource, ObservabilityConfig, WatcherOptions};

fn load(c: &mut Criterion) {
    let handle = ConfigHandle::new(ObservabilityConfig::default()).expect("valid preset");
    let lock = Arc::new(RwLock::new(Arc::new(ObservabilityConfig::default())));
    let mut g = c.benchmark_group("config/load");
    // The hot-path reader a thread keeps (one relaxed load and a compare per call).
    let mut reader = handle.reader();
    g.bench_function("ours", |b| {
        b.iter(|| black_box(reader.load().tracing.sampling.default_rate))
    });
    g.bench_function("ours-guard", |b| {
        b.iter(|| black_box(handle.load_guard().tracing.sampling.default_rate))
    });
    g.bench_function("ours-arc", |b| {
        b.iter(|| black_box(handle.load().tracing.sampling.default_rate))
    });
    g.bench_function("peer-rwlock", |b| {
        b.iter(|| {
            black_box(
                lock.read()
                    .map(|c| c.tracing.sampling.default_rate)
                    .unwrap_or(0.0),
            )
        })
    });
    g.finish();
}

fn reload_latency(_c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.yaml");
    let write = |rate: f64| {
        std::fs::write(
            &path,
            format!("tracing:\n  sampling:\n    default_rate: {rate}\n"),
        )
        .expect("write config");
    };
    write(0.05);
    let handle = ConfigHandle::new(ObservabilityConfig::from_yaml_file(&path).expect("valid"))
        .expect("valid");
    let options = WatcherOptions {
        poll_interval: Duration::from_secs(3600),
        env: EnvSource::default(),
        ..WatcherOptions::default()
    };
    let _watcher = ConfigWatcher::start_with(&path, handle.clone(), options).expect("watcher");
    let rounds = if std::env::var_os("TTA_BENCH_QUICK").is_some() {
        5
    } else {
        20
    };
    let mut samples = Vec::new();
    for i in 0..rounds {
        let before = handle.version();
        let rate = 0.02 + f64::from(i % 10) / 100.0;
        let start = Instant::now();
        write(rate);
        while handle.version() == before && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    let p50 = samples[samples.len() / 2];
    let max = samples[samples.len() - 1];
    tta_benches::report_figure(
        "config/reload_latency_p50",
        p50,
        "ms",
        None,
        "<= 200 ms",
        p50 <= 200.0,
    );
    tta_benches::report_figure(
        "config/reload_latency_max",
        max,
        "ms",
        None,
        "<= 200 ms",
        max <= 200.0,
    );
}

criterion_group!(benches, load, reload_latency);
criterion_main!(benches);
