//! Bad input: wrong paths, foreign files, permissions, locks, versions, config.

use std::fs;

use tta_storage::corpus::Corpus;
use tta_storage::{StorageConfig, StorageError, TraceQuery, TraceStore};

#[test]
fn a_path_that_is_a_file_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("traces.db");
    fs::write(&file, b"not a directory").unwrap();
    let err = TraceStore::open(&file, StorageConfig::default()).unwrap_err();
    assert!(
        matches!(err, StorageError::NotADirectory { ref path } if path == &file),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
    // Below a file: the OS refuses, the error names the path.
    let below = file.join("store");
    let err = TraceStore::open(&below, StorageConfig::default()).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&below.display().to_string()),
        "{err}"
    );
    assert_eq!(
        fs::read(&file).unwrap(),
        b"not a directory",
        "nothing overwritten"
    );
}

#[test]
fn a_directory_with_foreign_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("notes.txt");
    fs::write(&foreign, b"mine").unwrap();
    let err = TraceStore::open(dir.path(), StorageConfig::default()).unwrap_err();
    assert!(
        matches!(err, StorageError::ForeignDirectory { ref found, .. } if found == &foreign),
        "{err:?}"
    );
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(fs::read(&foreign).unwrap(), b"mine");
    assert!(!dir.path().join("TTA-STORE").exists());
}

#[test]
fn foreign_files_inside_a_store_are_left_alone_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let spans = Corpus::new(4).spans(100);
    let store = TraceStore::open(dir.path(), StorageConfig::default()).unwrap();
    store.append(&spans).unwrap();
    store.close().unwrap();
    let fake = dir.path().join("spans-000000000077.seg");
    fs::write(&fake, vec![0xabu8; 200]).unwrap();
    let stray = dir.path().join("README");
    fs::write(&stray, b"hello").unwrap();

    let store = TraceStore::open(dir.path(), StorageConfig::default()).unwrap();
    let report = store.open_report();
    assert_eq!(report.unreadable_segments.len(), 1, "{report:?}");
    assert_eq!(report.unreadable_segments[0].path, fake);
    assert_eq!(report.unreadable_segments[0].offset, 0);
    assert!(
        report.unreadable_segments[0]
            .to_string()
            .contains("bad magic")
    );
    assert_eq!(report.ignored_files, vec![stray.clone()]);
    assert_eq!(
        store.query(TraceQuery::default()).unwrap().len(),
        spans.len()
    );
    // New segments do not reuse the foreign file's sequence number.
    store.append(&spans).unwrap();
    store.close().unwrap();
    assert_eq!(fs::read(&fake).unwrap(), vec![0xabu8; 200]);
    assert_eq!(fs::read(&stray).unwrap(), b"hello");
}

#[test]
fn no_permission_gives_an_io_error_naming_the_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("ro");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();
    // Root ignores mode bits; detect that and use a path the kernel refuses even to root
    // (sysfs is read-only). If neither refuses, this environment cannot express the case.
    let privileged = fs::write(locked.join("probe"), b"").is_ok();
    let target = if !privileged {
        locked.join("store")
    } else if fs::create_dir("/sys/tta-storage-permission-probe").is_err() {
        std::path::PathBuf::from("/sys/tta-storage-permission-probe/store")
    } else {
        let _ = fs::remove_dir("/sys/tta-storage-permission-probe");
        eprintln!("skipped: running privileged and no read-only location refuses writes");
        return;
    };
    let err = TraceStore::open(&target, StorageConfig::default()).unwrap_err();
    match &err {
        StorageError::Io { path, source, .. } => {
            assert!(
                target.starts_with(path) || path.starts_with(&target),
                "{err}"
            );
            assert!(
                matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::ReadOnlyFilesystem
                        | std::io::ErrorKind::NotFound
                ),
                "{err:?}"
            );
        }
        other => panic!("expected an io error, got {other:?}"),
    }
    assert!(err.to_string().contains("cannot create directory"), "{err}");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn a_second_writer_is_refused_and_readers_may_open() {
    let dir = tempfile::tempdir().unwrap();
    let spans = Corpus::new(6).spans(50);
    let writer = TraceStore::open(dir.path(), StorageConfig::default()).unwrap();
    writer.append(&spans).unwrap();
    writer.flush().unwrap();
    let err = TraceStore::open(dir.path(), StorageConfig::default()).unwrap_err();
    match &err {
        StorageError::Locked { pid, lock, .. } => {
            assert_eq!(*pid, std::process::id());
            assert!(lock.ends_with("LOCK"));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(
        err.to_string().contains("locked by another writer"),
        "{err}"
    );
    let reader = TraceStore::open_read_only(dir.path()).unwrap();
    assert_eq!(
        reader.query(TraceQuery::default()).unwrap().len(),
        spans.len()
    );
    let refused = reader.append(&spans).unwrap_err();
    assert!(
        matches!(refused, StorageError::ReadOnly { .. }),
        "{refused:?}"
    );
    assert!(matches!(
        reader.enforce_retention(0).unwrap_err(),
        StorageError::ReadOnly { .. }
    ));
    let reader2 = TraceStore::open_read_only(dir.path()).unwrap();
    assert_eq!(reader2.stats().spans, spans.len() as u64);
    drop(writer);
    let again = TraceStore::open(dir.path(), StorageConfig::default()).unwrap();
    assert_eq!(again.stats().spans, spans.len() as u64);
}

#[test]
fn a_stale_lock_of_a_dead_process_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    TraceStore::open(dir.path(), StorageConfig::default())
        .unwrap()
        .close()
        .unwrap();
    // No Linux process has this id (pid_max is at most 2^22).
    fs::write(dir.path().join("LOCK"), b"999999999\n").unwrap();
    if cfg!(target_os = "linux") {
        let store = TraceStore::open(dir.path(), StorageConfig::default()).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("LOCK")).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(store);
        assert!(!dir.path().join("LOCK").exists(), "released on drop");
    } else {
        let err = TraceStore::open(dir.path(), StorageConfig::default()).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Locked {
                    pid: 999_999_999,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn read_only_needs_an_existing_store_and_newer_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let err = TraceStore::open_read_only(&missing).unwrap_err();
    assert!(matches!(err, StorageError::NoStore { .. }), "{err:?}");
    assert!(!missing.exists(), "read-only open creates nothing");

    TraceStore::open(dir.path(), StorageConfig::default())
        .unwrap()
        .close()
        .unwrap();
    fs::write(dir.path().join("TTA-STORE"), b"tta-storage format 9\n").unwrap();
    let err = TraceStore::open(dir.path(), StorageConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::UnsupportedVersion {
                found: 9,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn invalid_config_is_refused_before_touching_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let config = StorageConfig {
        compression_level: 0,
        ..StorageConfig::default()
    };
    let err = TraceStore::open(&path, config).unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::InvalidConfig {
                field: "compression_level",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!path.exists());
}

#[test]
fn metrics_round_trip_across_reopen() {
    use tta_core::{MetricSeries, MetricValue, MetricsSnapshot};
    let dir = tempfile::tempdir().unwrap();
    let snaps: Vec<MetricsSnapshot> = (0..50u64)
        .map(|i| MetricsSnapshot {
            timestamp_unix_nanos: 1_704_067_200_000_000_000 + i * 60_000_000_000,
            series: vec![
                MetricSeries {
                    name: "executions_total".into(),
                    labels: vec![("primitive".into(), "p".into())],
                    value: MetricValue::Counter(i),
                },
                MetricSeries {
                    name: "latency_ms".into(),
                    labels: vec![],
                    value: MetricValue::Histogram {
                        bounds: vec![1.0, 10.0],
                        counts: vec![i, 1, 0],
                        sum: 3.5,
                        count: i + 1,
                    },
                },
            ],
        })
        .collect();
    let store = TraceStore::open(dir.path(), StorageConfig::default()).unwrap();
    for s in &snaps[..30] {
        store.append_metrics(s).unwrap();
    }
    store.flush().unwrap();
    for s in &snaps[30..] {
        store.append_metrics(s).unwrap();
    }
    let range = snaps[10].timestamp_unix_nanos..snaps[40].timestamp_unix_nanos;
    assert_eq!(
        store.query_metrics(range.clone()).unwrap(),
        snaps[10..40].to_vec()
    );
    store.close().unwrap();
    let store = TraceStore::open_read_only(dir.path()).unwrap();
    assert_eq!(store.query_metrics(range).unwrap(), snaps[10..40].to_vec());
    assert_eq!(store.stats().metric_snapshots, 50);
    assert_eq!(store.stats().spans, 0);
}
