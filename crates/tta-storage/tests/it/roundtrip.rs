//! Property test: any sequence of appends, flushes and reopens returns exactly what was written.

use std::collections::BTreeSet;

use proptest::prelude::*;
use tta_core::{
    AttributeValue, MetricSeries, MetricValue, MetricsSnapshot, Span, SpanId, SpanKind, SpanStatus,
    TraceId,
};
use tta_storage::{StorageConfig, TraceQuery, TraceStore};

use crate::sorted;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Span>),
    Metrics(u64),
    Flush,
    /// Close the writer cleanly and open it again.
    Reopen,
    /// Drop the writer (best-effort close) and open it again.
    DropReopen,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("GET /api/cart".to_owned()),
        Just("checkout".to_owned()),
        "[a-z]{1,6}",
        "\\PC{0,12}",
    ]
}

fn value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        text().prop_map(AttributeValue::from),
        any::<i64>().prop_map(AttributeValue::I64),
        (-1e12f64..1e12).prop_map(AttributeValue::F64),
        any::<bool>().prop_map(AttributeValue::Bool),
    ]
}

fn span() -> impl Strategy<Value = Span> {
    let time = prop_oneof![9 => 1_700_000_000_000_000_000u64..1_700_000_010_000_000_000, 1 => any::<u64>()];
    (
        (
            0u128..5,
            any::<u64>(),
            prop::option::of(any::<u64>()),
            text(),
            text(),
        ),
        (0usize..5, time, any::<u64>(), 0u8..3, text()),
        (
            prop::collection::vec((text(), value()), 0..4),
            prop::option::of(any::<u64>()),
        ),
    )
        .prop_map(
            |((t, sid, parent, name, service), (kind, start, dur, st, msg), (attrs, th))| Span {
                trace_id: TraceId::from_u128(t + 1),
                span_id: SpanId::from_u64(sid),
                parent_span_id: parent.map(SpanId::from_u64),
                name: name.into(),
                service: service.into(),
                kind: [
                    SpanKind::Internal,
                    SpanKind::Server,
                    SpanKind::Client,
                    SpanKind::Producer,
                    SpanKind::Consumer,
                ][kind],
                start_unix_nanos: start,
                end_unix_nanos: if dur % 7 == 0 {
                    dur
                } else {
                    start.wrapping_add(dur % 5_000_000_000)
                },
                status: match st {
                    0 => SpanStatus::Unset,
                    1 => SpanStatus::Ok,
                    _ => SpanStatus::Error(msg.into()),
                },
                attributes: attrs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
                sampling_threshold: th,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(span(), 0..25).prop_map(Op::Append),
        1 => (0u64..10_000_000_000).prop_map(Op::Metrics),
        2 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => Just(Op::DropReopen),
    ]
}

fn config() -> StorageConfig {
    StorageConfig {
        block_size_bytes: 1024,
        max_segment_bytes: 4096,
        segment_duration_seconds: 2,
        ..StorageConfig::default()
    }
}

fn check(store: &TraceStore, model: &[Span], metrics: &[MetricsSnapshot]) {
    let all = sorted(model.to_vec());
    assert_eq!(store.query(TraceQuery::default()).unwrap(), all);
    let ids: BTreeSet<TraceId> = model.iter().map(|s| s.trace_id).collect();
    for id in ids {
        let want = sorted(model.iter().filter(|s| s.trace_id == id).cloned().collect());
        assert_eq!(store.get_trace(&id).unwrap(), Some(want));
    }
    assert_eq!(store.get_trace(&TraceId::from_u128(999)).unwrap(), None);
    let mut want_metrics = metrics.to_vec();
    want_metrics.sort_by_key(|m| m.timestamp_unix_nanos);
    assert_eq!(store.query_metrics(0..u64::MAX).unwrap(), want_metrics);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn appends_flushes_and_reopens_return_what_was_written(ops in prop::collection::vec(op(), 1..24)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Some(TraceStore::open(dir.path(), config()).unwrap());
        let mut model: Vec<Span> = Vec::new();
        let mut metrics: Vec<MetricsSnapshot> = Vec::new();
        let mut next_id = 1u64;
        for op in ops {
            let s = store.as_ref().unwrap();
            match op {
                Op::Append(mut spans) => {
                    // Unique span ids keep the (start, span id) order total.
                    for sp in &mut spans {
                        sp.span_id = SpanId::from_u64(next_id);
                        next_id += 1;
                    }
                    s.append(&spans).unwrap();
                    model.extend(spans);
                }
                Op::Metrics(ts) => {
                    let snap = MetricsSnapshot {
                        timestamp_unix_nanos: 1_700_000_000_000_000_000 + ts,
                        series: vec![MetricSeries {
                            name: "requests_total".into(),
                            labels: vec![("route".into(), format!("/r{}", ts % 3))],
                            value: MetricValue::Counter(ts),
                        }],
                    };
                    s.append_metrics(&snap).unwrap();
                    metrics.push(snap);
                }
                Op::Flush => s.flush().unwrap(),
                Op::Reopen => {
                    store.take().unwrap().close().unwrap();
                    store = Some(TraceStore::open(dir.path(), config()).unwrap());
                }
                Op::DropReopen => {
                    drop(store.take());
                    store = Some(TraceStore::open(dir.path(), config()).unwrap());
                }
            }
            check(store.as_ref().unwrap(), &model, &metrics);
        }
        let s = store.take().unwrap();
        let stats = s.stats();
        prop_assert_eq!(stats.spans + stats.pending_spans as u64, model.len() as u64);
        prop_assert!(stats.corrupt_blocks.is_empty());
        s.close().unwrap();
        let reader = TraceStore::open_read_only(dir.path()).unwrap();
        check(&reader, &model, &metrics);
        prop_assert!(reader.open_report().torn_tails.is_empty());
        prop_assert!(reader.verify().unwrap().is_empty());
    }
}

#[test]
fn a_large_append_writes_whole_blocks_at_once_and_buffers_only_the_remainder() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        block_size_bytes: 16 << 10,
        ..StorageConfig::default()
    };
    let store = TraceStore::open(dir.path(), config).unwrap();
    let spans = tta_storage::corpus::Corpus::new(4).spans(5_000);
    store.append(&spans).unwrap();
    let stats = store.stats();
    assert!(stats.blocks >= 5, "{} blocks", stats.blocks);
    assert_eq!(stats.spans + stats.pending_spans as u64, spans.len() as u64);
    assert!(
        stats.pending_spans < spans.len() / stats.blocks + 200,
        "{} spans buffered after {} blocks",
        stats.pending_spans,
        stats.blocks
    );
    // Reads see written and buffered spans alike, before and after the flush.
    let last = spans.last().unwrap().trace_id;
    let want = sorted(
        spans
            .iter()
            .filter(|s| s.trace_id == last)
            .cloned()
            .collect(),
    );
    assert_eq!(store.get_trace(&last).unwrap(), Some(want.clone()));
    assert_eq!(
        store.query(TraceQuery::default()).unwrap(),
        sorted(spans.clone())
    );
    store.close().unwrap();
    let reader = TraceStore::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.get_trace(&last).unwrap(), Some(want));
    assert_eq!(reader.query(TraceQuery::default()).unwrap(), sorted(spans));
}
