//! Retention by age (explicit `now`) and by byte cap; files really go away.

use tta_core::{MetricsSnapshot, Span};
use tta_storage::corpus::{Corpus, CorpusConfig};
use tta_storage::{DeleteReason, SegmentKind, StorageConfig, TraceQuery, TraceStore};

use crate::dir_bytes;

const DAY: u64 = 86_400_000_000_000;
const T0: u64 = 1_704_067_200_000_000_000;

fn batch(seed: u64, start: u64, n: usize) -> Vec<Span> {
    Corpus::with_config(CorpusConfig {
        seed,
        start_unix_nanos: start,
        ..CorpusConfig::default()
    })
    .spans(n)
}

#[test]
fn segments_past_the_ttl_are_deleted_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(dir.path(), StorageConfig::default()).unwrap();
    let day0 = batch(1, T0, 300);
    let day3 = batch(2, T0 + 3 * DAY, 300);
    let day8 = batch(3, T0 + 8 * DAY, 300);
    for b in [&day0, &day3, &day8] {
        store.append(b).unwrap();
        store.flush().unwrap();
    }
    store
        .append_metrics(&MetricsSnapshot {
            timestamp_unix_nanos: T0,
            series: vec![],
        })
        .unwrap();
    store.flush().unwrap();
    let paths_before: Vec<_> = store.segments().into_iter().map(|s| s.path).collect();
    let bytes_before = dir_bytes(dir.path());

    // Day 10: day 0 and day 3 are past the 7-day trace TTL, metrics (30 days) are not.
    let newest_day3 = day3.iter().map(|s| s.start_unix_nanos).max().unwrap();
    let report = store.enforce_retention(newest_day3 + 7 * DAY).unwrap();
    assert_eq!(report.deleted.len(), 2, "{report:?}");
    assert!(
        report
            .deleted
            .iter()
            .all(|d| d.reason == DeleteReason::Expired && d.kind == SegmentKind::Spans)
    );
    assert_eq!(
        report.deleted.iter().map(|d| d.items).sum::<u64>(),
        (day0.len() + day3.len()) as u64
    );
    for d in &report.deleted {
        assert!(!d.path.exists(), "{} still on disk", d.path.display());
        assert!(paths_before.contains(&d.path));
    }
    assert_eq!(dir_bytes(dir.path()), bytes_before - report.bytes_freed());
    assert!(report.bytes_freed() > 0);
    assert_eq!(store.get_trace(&day0[0].trace_id).unwrap(), None);
    assert_eq!(store.get_trace(&day3[0].trace_id).unwrap(), None);
    assert!(store.get_trace(&day8[0].trace_id).unwrap().is_some());
    assert_eq!(store.query_metrics(0..u64::MAX).unwrap().len(), 1);

    // One nanosecond short of the TTL keeps a segment.
    let newest_day8 = day8.iter().map(|s| s.start_unix_nanos).max().unwrap();
    assert!(
        store
            .enforce_retention(newest_day8 + 7 * DAY - 1)
            .unwrap()
            .deleted
            .is_empty()
    );

    // Day 31: the metrics TTL passes too.
    let report = store.enforce_retention(T0 + 31 * DAY).unwrap();
    assert!(
        report
            .deleted
            .iter()
            .any(|d| d.kind == SegmentKind::Metrics)
    );
    assert!(store.query_metrics(0..u64::MAX).unwrap().is_empty());
    assert!(store.query(TraceQuery::default()).unwrap().is_empty());
    assert_eq!(store.stats().segments, 0);
    // Writing after everything was deleted starts a new segment.
    store.append(&day8).unwrap();
    store.flush().unwrap();
    assert_eq!(store.stats().spans, day8.len() as u64);
}

#[test]
fn the_byte_cap_deletes_oldest_segments_first() {
    let dir = tempfile::tempdir().unwrap();
    let hours: Vec<Vec<Span>> = (0..5)
        .map(|h| batch(10 + h, T0 + h * 3_600_000_000_000, 2_000))
        .collect();
    let store = TraceStore::open(dir.path(), StorageConfig::default()).unwrap();
    for b in &hours {
        store.append(b).unwrap();
    }
    store.close().unwrap();
    let total = dir_bytes(dir.path());
    let cap = total * 2 / 5;
    let config = StorageConfig {
        max_disk_bytes: Some(cap),
        ..StorageConfig::default()
    };
    let store = TraceStore::open(dir.path(), config).unwrap();
    let segs = store.segments();
    assert_eq!(segs.len(), 5, "one segment per hour window");
    let report = store.enforce_retention(T0 + 5 * 3_600_000_000_000).unwrap();
    assert!(
        report
            .deleted
            .iter()
            .all(|d| d.reason == DeleteReason::OverCap)
    );
    let deleted: Vec<_> = report.deleted.iter().map(|d| d.path.clone()).collect();
    let oldest: Vec<_> = segs
        .iter()
        .take(deleted.len())
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(deleted, oldest, "oldest first");
    assert!(report.bytes_after <= cap, "{report:?}");
    assert!(
        dir_bytes(dir.path()) <= cap + 64,
        "marker and lock files aside"
    );
    for d in &deleted {
        assert!(!d.exists());
    }
    assert!(store.get_trace(&hours[0][0].trace_id).unwrap().is_none());
    assert!(store.get_trace(&hours[4][0].trace_id).unwrap().is_some());
    // Deleting the segment being written to is allowed; writing continues in a new one.
    let tiny_dir = tempfile::tempdir().unwrap();
    let tiny = TraceStore::open(
        tiny_dir.path(),
        StorageConfig {
            max_disk_bytes: Some(1),
            ..StorageConfig::default()
        },
    )
    .unwrap();
    tiny.append(&hours[0]).unwrap();
    tiny.flush().unwrap();
    assert_eq!(tiny.enforce_retention(T0).unwrap().deleted.len(), 1);
    tiny.append(&hours[1]).unwrap();
    tiny.flush().unwrap();
    assert_eq!(tiny.stats().spans, hours[1].len() as u64);
}
