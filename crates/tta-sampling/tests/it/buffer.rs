//! TraceBuffer at scale: memory under budget, every span accounted once, late spans follow.

use std::collections::HashMap;

use tta_core::{Span, SpanId, SpanStatus, TraceId};
use tta_sampling::{CompositeSampler, DecidedTrace, SamplingConfig, SamplingResult, TraceBuffer};

use crate::counting::live_bytes;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

fn config(budget: usize) -> SamplingConfig {
    SamplingConfig {
        default_rate: 0.05,
        adaptive_enabled: false,
        decision_wait_ms: 1_000,
        straggler_delay_ms: 100,
        buffer_max_bytes: budget,
        ..Default::default()
    }
}

fn span(trace_id: TraceId, root: bool, error: bool) -> Span {
    Span {
        trace_id,
        span_id: SpanId::random(),
        parent_span_id: (!root).then(|| SpanId::from_u64(1)),
        name: "GET /api/orders".into(),
        service: "checkout".into(),
        start_unix_nanos: 0,
        end_unix_nanos: 3 * MS,
        status: if error {
            SpanStatus::Error("boom".into())
        } else {
            SpanStatus::Unset
        },
        ..Default::default()
    }
}

#[test]
fn a_million_traces_stay_under_the_byte_budget() {
    let budget = 8 << 20;
    let c = config(budget);
    let sampler = CompositeSampler::new(c.clone());
    let mut out: Vec<DecidedTrace> = Vec::new();
    let baseline = live_bytes();
    let mut buffer = TraceBuffer::new(&c);
    let mut now = 0;
    let mut max_held = 0i64;
    let mut spans_sent = 0u64;
    let mut kept_spans = 0u64;
    for t in 0..1_000_000u64 {
        // A burst of 100k traces/s (the buffer overflows), then 5k traces/s (it does not).
        now += if t < 500_000 { 10 * US } else { 200 * US };
        let id = TraceId::random();
        let children = t % 4;
        for _ in 0..children {
            buffer.add(span(id, false, t % 97 == 0), now, &sampler, &mut out);
        }
        spans_sent += children;
        // One trace in five never sends its root (decided by the decision wait or pressure).
        if t % 5 != 0 {
            buffer.add(span(id, true, false), now, &sampler, &mut out);
            spans_sent += 1;
        }
        if t % 16 == 0 {
            buffer.poll(now, &sampler, &mut out);
        }
        kept_spans += out.iter().map(|d| d.spans.len() as u64).sum::<u64>();
        out.clear();
        if t % 1000 == 0 {
            let held =
                live_bytes() - baseline - (out.capacity() * size_of::<DecidedTrace>()) as i64;
            max_held = max_held.max(held);
            assert!(
                held <= budget as i64,
                "trace {t}: buffer holds {held} bytes > budget {budget}"
            );
        }
    }
    let st = buffer.stats();
    assert!(
        st.decided_early > 0,
        "the workload should put the buffer under pressure: {st:?}"
    );
    assert!(
        st.decided_on_root > 0 && st.decided_on_timeout > 0,
        "{st:?}"
    );
    assert_eq!(st.spans_received, spans_sent);
    assert_eq!(
        st.spans_received,
        st.spans_kept + st.spans_dropped + st.buffered_spans as u64
    );
    buffer.flush_all(&sampler, &mut out);
    kept_spans += out.iter().map(|d| d.spans.len() as u64).sum::<u64>();
    let st = buffer.stats();
    assert_eq!(st.buffered_spans, 0);
    assert_eq!(kept_spans, st.spans_kept);
    assert_eq!(st.spans_kept + st.spans_dropped, spans_sent);
    // Traces with t % 20 == 0 send no span at all (no children, no root). The dropped-trace
    // filter mistakes a new trace for a dropped one with probability about 4e-9 per lookup
    // (documented in the cache), so across 950k new traces one such trace in a few hundred
    // runs is counted as late spans of a dropped trace instead of a decision of its own.
    assert!(st.traces_decided <= 950_000, "{st:?}");
    let mistaken = 950_000 - st.traces_decided;
    assert!(
        mistaken <= 2 && st.late_spans_dropped >= mistaken,
        "{} traces decided, expected 950000: {st:?}",
        st.traces_decided
    );
    // Errors (1 in 97 traces with children) and ~5% of the rest are kept.
    let kept_fraction = st.traces_kept as f64 / st.traces_decided as f64;
    assert!((0.05..0.08).contains(&kept_fraction), "{kept_fraction}");
    assert!(
        max_held > (budget / 2) as i64,
        "the test should fill the buffer: {max_held}"
    );
}

#[test]
fn late_spans_follow_the_remembered_decision() {
    let c = config(64 << 20);
    let sampler = CompositeSampler::new(c.clone());
    let mut buffer = TraceBuffer::new(&c);
    let mut out = Vec::new();
    let mut decided: HashMap<TraceId, SamplingResult> = HashMap::new();
    let mut late: Vec<TraceId> = Vec::new();
    let mut now = 0;
    for t in 0..100_000u64 {
        now += 50 * US;
        let id = TraceId::random();
        buffer.add(span(id, false, t % 50 == 0), now, &sampler, &mut out);
        buffer.add(span(id, true, false), now, &sampler, &mut out);
        if t % 10 == 0 {
            late.push(id);
        }
        buffer.poll(now, &sampler, &mut out);
        for d in out.drain(..) {
            assert!(
                decided.insert(d.trace_id, d.result).is_none(),
                "trace emitted twice"
            );
        }
    }
    now += 10_000 * MS;
    buffer.poll(now, &sampler, &mut out);
    for d in out.drain(..) {
        assert!(
            decided.insert(d.trace_id, d.result).is_none(),
            "trace emitted twice"
        );
    }
    assert_eq!(buffer.stats().buffered_traces, 0);
    // Late spans (even errors) follow the decision made without them.
    for id in &late {
        buffer.add(span(*id, false, true), now, &sampler, &mut out);
        match decided.get(id) {
            Some(result) => {
                assert_eq!(out.len(), 1);
                let d = out.remove(0);
                assert_eq!((d.trace_id, d.result), (*id, *result));
                assert_eq!(
                    d.spans[0].sampling_threshold,
                    result.threshold.map(|t| t.raw())
                );
            }
            None => assert!(out.is_empty(), "a dropped trace's late span was emitted"),
        }
    }
    let st = buffer.stats();
    assert_eq!(
        st.late_spans_kept + st.late_spans_dropped,
        late.len() as u64
    );
    assert_eq!(st.buffered_spans, 0);
    assert!(
        st.late_spans_kept > 0 && st.late_spans_dropped > 0,
        "{st:?}"
    );
}
