use std::path::Path;
use std::time::{Duration, Instant};

use tta_config::{ConfigHandle, ConfigWatcher, EnvSource, ObservabilityConfig, WatcherOptions};

fn yaml(rate: f64) -> String {
    format!("environment: production\ntracing:\n  sampling:\n    default_rate: {rate}\n")
}

fn options(poll: Duration) -> WatcherOptions {
    WatcherOptions {
        poll_interval: poll,
        debounce: Duration::from_millis(20),
        env: EnvSource::default(),
    }
}

/// Polls `cond` until it holds or a generous deadline passes (no fixed sleeps).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

fn start(path: &Path, poll: Duration) -> (ConfigHandle, ConfigWatcher) {
    let handle = ConfigHandle::new(ObservabilityConfig::from_yaml_file(path).unwrap()).unwrap();
    let watcher = ConfigWatcher::start_with(path, handle.clone(), options(poll)).unwrap();
    (handle, watcher)
}

fn rate(h: &ConfigHandle) -> f64 {
    h.load().tracing.sampling.default_rate
}

#[test]
fn in_place_write_is_applied_through_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml(0.05)).unwrap();
    // A poll interval far beyond the wait: only file-system events can deliver the change.
    let (h, w) = start(&path, Duration::from_secs(3600));
    assert!(w.stats().events_active);
    std::fs::write(&path, yaml(0.1)).unwrap();
    wait_for("in-place write", || rate(&h) == 0.1);
    assert_eq!(w.stats().reloads_applied, 1);
    assert!(w.stats().last_applied_unix_nanos.is_some());
}

#[test]
fn rename_replace_save_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml(0.05)).unwrap();
    let (h, w) = start(&path, Duration::from_millis(200));
    let tmp = dir.path().join(".config.yaml.swp");
    std::fs::write(&tmp, yaml(0.01)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    wait_for("rename-replace", || rate(&h) == 0.01);
    assert_eq!(w.stats().reloads_rejected, 0);
}

#[test]
fn delete_then_recreate_keeps_the_last_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml(0.05)).unwrap();
    let (h, w) = start(&path, Duration::from_millis(100));
    std::fs::remove_file(&path).unwrap();
    // Give the watcher several polls with the file missing.
    let seen = w.stats().content_hash;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rate(&h), 0.05);
    assert_eq!(w.stats().reloads_rejected, 0);
    assert_eq!(w.stats().content_hash, seen);
    std::fs::write(&path, yaml(0.15)).unwrap();
    wait_for("recreate", || rate(&h) == 0.15);
}

#[test]
fn configmap_symlink_swap_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("..2026_01")).unwrap();
    std::fs::write(d.join("..2026_01/config.yaml"), yaml(0.05)).unwrap();
    std::os::unix::fs::symlink("..2026_01", d.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/config.yaml", d.join("config.yaml")).unwrap();
    let (h, _w) = start(&d.join("config.yaml"), Duration::from_millis(200));

    // Kubernetes' atomic update: new timestamped dir, new ..data link, rename over the old.
    std::fs::create_dir(d.join("..2026_02")).unwrap();
    std::fs::write(d.join("..2026_02/config.yaml"), yaml(0.02)).unwrap();
    std::os::unix::fs::symlink("..2026_02", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    std::fs::remove_dir_all(d.join("..2026_01")).unwrap();
    wait_for("configmap swap", || rate(&h) == 0.02);
}

#[test]
fn invalid_file_keeps_last_good_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml(0.05)).unwrap();
    let (h, w) = start(&path, Duration::from_millis(100));

    std::fs::write(&path, "tracing:\n  sampling:\n    default_rte: 0.3\n").unwrap();
    wait_for("rejection", || w.stats().reloads_rejected == 1);
    assert_eq!(rate(&h), 0.05);
    let err = w.stats().last_error.unwrap();
    assert!(
        err.contains("config.yaml") && err.contains("line 3"),
        "{err}"
    );
    assert!(h.stats().last_rejected);

    std::fs::write(&path, yaml(1.5)).unwrap();
    wait_for("second rejection", || w.stats().reloads_rejected == 2);
    assert!(
        w.stats()
            .last_error
            .unwrap()
            .contains("tracing.sampling.default_rate")
    );
    assert_eq!(rate(&h), 0.05);

    std::fs::write(&path, yaml(0.2)).unwrap();
    wait_for("recovery", || rate(&h) == 0.2);
    assert!(!h.stats().last_rejected);
}

#[test]
fn missing_directory_is_a_clear_error() {
    let h = ConfigHandle::new(ObservabilityConfig::default()).unwrap();
    let err = ConfigWatcher::start_with(
        "/nonexistent-dir-for-tta/config.yaml",
        h,
        options(Duration::from_secs(1)),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent-dir-for-tta"),
        "{err}"
    );
}
