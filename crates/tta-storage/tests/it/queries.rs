//! Queries against a naive filter of the corpus, before and after flush and reopen.

use tta_core::Span;
use tta_storage::corpus::Corpus;
use tta_storage::{TraceQuery, TraceStore};

use crate::{small_blocks, sorted};

fn naive(spans: &[Span], q: &TraceQuery) -> Vec<Span> {
    let mut out: Vec<Span> = spans
        .iter()
        .filter(|s| {
            q.start_unix_nanos.is_none_or(|t| s.start_unix_nanos >= t)
                && q.end_unix_nanos.is_none_or(|t| s.start_unix_nanos < t)
                && q.service.as_deref().is_none_or(|v| s.service == v)
                && q.span_name.as_deref().is_none_or(|v| s.name == v)
                && q.min_duration_nanos.is_none_or(|d| s.duration_nanos() >= d)
                && (!q.errors_only || s.is_error())
        })
        .cloned()
        .collect();
    out = sorted(out);
    if let Some(n) = q.limit {
        out.truncate(n);
    }
    out
}

#[test]
fn queries_match_a_naive_filter_in_every_state() {
    let spans = Corpus::new(11).spans(20_000);
    let t0 = spans[0].start_unix_nanos;
    let t_mid = spans[spans.len() / 2].start_unix_nanos;
    let queries = [
        TraceQuery::default(),
        TraceQuery::default().time_range(t0 + 1_000_000_000, t_mid),
        TraceQuery::default().service("payment"),
        TraceQuery::default()
            .span_name("oteldemo.CartService/GetCart")
            .limit(17),
        TraceQuery::default().min_duration_nanos(20_000_000),
        TraceQuery::default().errors_only(),
        TraceQuery::default()
            .errors_only()
            .service("frontend")
            .time_range(t0, t_mid),
        TraceQuery::default().limit(5),
        TraceQuery::default().service("no-such-service"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let store = TraceStore::open(dir.path(), small_blocks()).unwrap();
    let (first, second) = spans.split_at(12_345);
    store.append(first).unwrap();
    store.flush().unwrap();
    store.append(second).unwrap(); // partly buffered: reads must still see it
    assert!(store.stats().pending_spans > 0);
    for q in &queries {
        assert_eq!(store.query(q.clone()).unwrap(), naive(&spans, q), "{q:?}");
    }
    assert!(!naive(&spans, &queries[5]).is_empty(), "corpus has errors");
    store.close().unwrap();
    let store = TraceStore::open_read_only(dir.path()).unwrap();
    for q in &queries {
        assert_eq!(store.query(q.clone()).unwrap(), naive(&spans, q), "{q:?}");
    }
    // Every trace comes back whole.
    for root in spans.iter().filter(|s| s.is_root()).step_by(37) {
        let want = sorted(
            spans
                .iter()
                .filter(|s| s.trace_id == root.trace_id)
                .cloned()
                .collect(),
        );
        assert_eq!(store.get_trace(&root.trace_id).unwrap(), Some(want));
    }
    let stats = store.stats();
    assert_eq!(stats.spans, spans.len() as u64);
    assert!(stats.blocks > 3, "small blocks: {}", stats.blocks);
    assert!(stats.compression_ratio > 1.2, "{stats:?}");
    assert!(stats.bytes_per_span > 0.0 && stats.bytes_per_span < stats.uncompressed_bytes_per_span);
    assert_eq!(
        stats.oldest_unix_nanos,
        spans.iter().map(|s| s.start_unix_nanos).min()
    );
    assert_eq!(
        stats.newest_unix_nanos,
        spans.iter().map(|s| s.start_unix_nanos).max()
    );
}

#[test]
fn compression_off_stores_raw_blocks_that_read_back() {
    let spans = Corpus::new(2).spans(3_000);
    let dir = tempfile::tempdir().unwrap();
    let config = tta_storage::StorageConfig {
        compression_enabled: false,
        ..small_blocks()
    };
    let store = TraceStore::open(dir.path(), config).unwrap();
    store.append(&spans).unwrap();
    store.flush().unwrap();
    assert!(
        store
            .segments()
            .iter()
            .flat_map(|s| &s.blocks)
            .all(|b| !b.compressed)
    );
    assert_eq!(
        store.query(TraceQuery::default()).unwrap(),
        sorted(spans.clone())
    );
    let stats = store.stats();
    assert!(stats.compression_ratio < 1.01, "raw blocks: {stats:?}");
}
