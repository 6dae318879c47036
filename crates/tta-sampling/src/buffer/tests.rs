use std::collections::HashSet;

use proptest::prelude::*;
use tta_core::SpanId;

use super::*;

const MS: u64 = 1_000_000;

fn config() -> SamplingConfig {
    SamplingConfig {
        default_rate: 0.0,
        adaptive_enabled: false,
        decision_wait_ms: 1_000,
        straggler_delay_ms: 100,
        max_spans_per_trace: 5,
        ..Default::default()
    }
}

fn span(trace: u128, parent: Option<u64>, error: bool, duration_ms: u64) -> Span {
    Span {
        trace_id: TraceId::from_u128(trace),
        span_id: SpanId::random(),
        parent_span_id: parent.map(SpanId::from_u64),
        end_unix_nanos: duration_ms * MS,
        status: if error {
            SpanStatus::Error("boom".into())
        } else {
            SpanStatus::Unset
        },
        ..Default::default()
    }
}

fn setup(c: &SamplingConfig) -> (CompositeSampler, TraceBuffer, Vec<DecidedTrace>) {
    (
        CompositeSampler::new(c.clone()),
        TraceBuffer::new(c),
        Vec::new(),
    )
}

#[test]
fn root_plus_straggler_delay_completes_a_trace() {
    let (s, mut b, mut out) = setup(&config());
    b.add(span(1, Some(9), true, 1), 0, &s, &mut out);
    b.add(span(1, None, false, 3), 10 * MS, &s, &mut out);
    assert_eq!(b.next_deadline(), Some(110 * MS));
    b.poll(109 * MS, &s, &mut out);
    assert!(out.is_empty());
    b.add(span(1, Some(9), false, 1), 109 * MS, &s, &mut out); // a straggler in time
    b.poll(110 * MS, &s, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].spans.len(), 3);
    assert_eq!(out[0].result.reason, SamplingReason::Error);
    assert!(out[0].spans.iter().all(|s| s.sampling_threshold == Some(0)));
    let st = b.stats();
    assert_eq!(
        (st.decided_on_root, st.traces_kept, st.spans_kept),
        (1, 1, 3)
    );
    assert_eq!((st.buffered_traces, st.buffered_spans), (0, 0));
    // Slots and entries stay allocated for reuse and count against the budget.
    assert!(st.buffered_bytes > 0 && st.buffered_bytes + st.cache_bytes <= st.budget_bytes);
    assert_eq!(b.next_deadline(), None);
}

#[test]
fn decision_wait_times_out_traces_without_root() {
    let (s, mut b, mut out) = setup(&config());
    b.add(span(1, Some(9), false, 2_000), 0, &s, &mut out); // slow child, no root
    b.add(span(2, Some(9), false, 10), 500 * MS, &s, &mut out);
    assert_eq!(b.next_deadline(), Some(1_000 * MS));
    b.poll(1_000 * MS, &s, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].result.reason, SamplingReason::Slow); // longest span when no root
    assert_eq!(b.next_deadline(), Some(1_500 * MS));
    b.poll(1_500 * MS, &s, &mut out);
    let st = b.stats();
    assert_eq!(
        (st.decided_on_timeout, st.traces_kept, st.traces_dropped),
        (2, 1, 1)
    );
    assert_eq!(st.spans_dropped, 1);
}

#[test]
fn root_duration_decides_slowness() {
    let (s, mut b, mut out) = setup(&config());
    // A slow child under a fast root: the trace's duration is the root's.
    b.add(span(1, Some(9), false, 5_000), 0, &s, &mut out);
    b.add(span(1, None, false, 10), 0, &s, &mut out);
    b.flush_all(&s, &mut out);
    assert!(out.is_empty());
    assert_eq!(b.stats().decided_on_flush, 1);
}

#[test]
fn span_limit_decides_at_once_and_late_spans_follow() {
    // Errors: kept by the tail rules (at rate 1 they would not be buffered at all).
    let (s, mut b, mut out) = setup(&config());
    for _ in 0..5 {
        b.add(span(7, Some(1), true, 1), 0, &s, &mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].spans.len(), 5);
    assert_eq!(out[0].result.threshold, Some(Threshold::ALWAYS));
    b.add(span(7, Some(1), false, 1), 0, &s, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].spans.len(), 1);
    assert_eq!(out[1].result, out[0].result);
    assert_eq!(out[1].spans[0].sampling_threshold, Some(0));
    let st = b.stats();
    assert_eq!(
        (st.decided_on_span_limit, st.late_spans_kept, st.spans_kept),
        (1, 1, 6)
    );
}

#[test]
fn late_spans_of_dropped_traces_are_dropped() {
    let (s, mut b, mut out) = setup(&config());
    b.add(span(3, None, false, 1), 0, &s, &mut out);
    b.poll(100 * MS, &s, &mut out);
    assert_eq!(b.stats().traces_dropped, 1);
    // Even an error arriving late follows the remembered decision.
    b.add(span(3, Some(1), true, 1), 200 * MS, &s, &mut out);
    assert!(out.is_empty());
    let st = b.stats();
    assert_eq!(
        (st.late_spans_dropped, st.spans_dropped, st.buffered_spans),
        (1, 2, 0)
    );
}

#[test]
fn recorded_head_threshold_is_the_head_decision() {
    let (s, mut b, mut out) = setup(&config()); // rate 0: recomputing would drop
    let mut root = span(4, None, false, 1);
    root.sampling_threshold = Some(Threshold::parse("f").unwrap().raw());
    b.add(span(4, Some(1), false, 1), 0, &s, &mut out);
    b.add(root, 0, &s, &mut out);
    b.flush_all(&s, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].result.reason, SamplingReason::HeadRate);
    assert_eq!(out[0].result.threshold, Threshold::parse("f").ok());
    assert!(
        out[0]
            .spans
            .iter()
            .all(|s| s.sampling_threshold == Some(0xf0_0000_0000_0000))
    );
    // Recomputed head decisions are not counted as head decisions.
    assert_eq!(s.stats().head.decisions, 0);
    assert_eq!(s.stats().tail.decisions, 1);
}

#[test]
fn byte_pressure_decides_oldest_first() {
    let c = SamplingConfig {
        buffer_max_bytes: 128 << 10,
        max_spans_per_trace: 10_000,
        ..config()
    };
    let (s, mut b, mut out) = setup(&c);
    let mut t = 0;
    while b.stats().decided_early == 0 {
        t += 1;
        b.add(span(t, Some(1), true, 1), t as u64, &s, &mut out);
        assert!(t < 100_000);
    }
    // The first trace went first, and was kept (it had an error).
    assert_eq!(out[0].trace_id, TraceId::from_u128(1));
    let st = b.stats();
    assert!(
        st.buffered_bytes + st.cache_bytes <= st.budget_bytes,
        "{st:?}"
    );
    assert_eq!(st.buffered_traces as u128, t - st.decided_early as u128);
}

#[test]
fn reconfigure_applies_new_delays() {
    let (s, mut b, mut out) = setup(&config());
    b.add(span(1, None, false, 1), 0, &s, &mut out);
    assert_eq!(b.next_deadline(), Some(100 * MS));
    b.reconfigure(&SamplingConfig {
        straggler_delay_ms: 5,
        ..config()
    });
    assert_eq!(b.next_deadline(), Some(5 * MS));
}

#[derive(Debug, Clone)]
enum Op {
    Add {
        trace: u8,
        root: bool,
        error: bool,
        duration_ms: u16,
        advance_ms: u16,
    },
    Poll {
        advance_ms: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..40, any::<bool>(), prop::bool::weighted(0.1), 0u16..3000, 0u16..200)
            .prop_map(|(trace, root, error, duration_ms, advance_ms)| Op::Add { trace, root, error, duration_ms, advance_ms }),
        1 => (0u16..3000).prop_map(|advance_ms| Op::Poll { advance_ms }),
    ]
}

proptest! {
    #[test]
    fn every_span_is_emitted_once_or_counted_dropped(ops in prop::collection::vec(op(), 1..300), rate in 0.0..=1.0f64, budget_kib in 64usize..512) {
        let c = SamplingConfig {
            default_rate: rate,
            buffer_max_bytes: budget_kib << 10,
            ..config()
        };
        let (s, mut b, mut out) = setup(&c);
        let mut now = 0;
        let mut sent = HashSet::new();
        for op in ops {
            match op {
                Op::Add { trace, root, error, duration_ms, advance_ms } => {
                    now += u64::from(advance_ms) * MS;
                    let sp = span(u128::from(trace) + 1, (!root).then_some(1), error, u64::from(duration_ms));
                    sent.insert(sp.span_id);
                    b.add(sp, now, &s, &mut out);
                }
                Op::Poll { advance_ms } => {
                    now += u64::from(advance_ms) * MS;
                    b.poll(now, &s, &mut out);
                    if let Some(d) = b.next_deadline() {
                        prop_assert!(d > now, "poll left due work: {} <= {}", d, now);
                    }
                }
            }
            let st = b.stats();
            prop_assert_eq!(st.spans_received, st.spans_kept + st.spans_dropped + st.buffered_spans as u64);
            prop_assert!(st.buffered_bytes + st.cache_bytes <= st.budget_bytes);
        }
        b.flush_all(&s, &mut out);
        let st = b.stats();
        prop_assert_eq!(st.buffered_spans, 0);
        prop_assert_eq!(st.buffered_traces, 0);
        let emitted: Vec<SpanId> = out.iter().flat_map(|t| t.spans.iter().map(|s| s.span_id)).collect();
        let unique: HashSet<SpanId> = emitted.iter().copied().collect();
        prop_assert_eq!(unique.len(), emitted.len(), "a span was emitted twice");
        prop_assert!(unique.is_subset(&sent));
        prop_assert_eq!(emitted.len() as u64, st.spans_kept);
        prop_assert_eq!(st.spans_kept + st.spans_dropped, sent.len() as u64);
        // Every kept span carries the threshold of its trace's decision, errors keep their trace.
        for t in &out {
            prop_assert!(t.spans.iter().all(|s| s.sampling_threshold == t.result.threshold.map(Threshold::raw)));
        }
    }
}

proptest! {
    /// The flat variants emit the same spans, in the same order, with the same thresholds and
    /// stats as the per-trace ones.
    #[test]
    fn flat_output_matches_decided_traces(ops in prop::collection::vec(op(), 1..200), rate in 0.0..=1.0f64, budget_kib in 64usize..256) {
        let c = SamplingConfig {
            default_rate: rate,
            buffer_max_bytes: budget_kib << 10,
            ..config()
        };
        let (s, mut traces_buf, mut traces) = setup(&c);
        let mut flat_buf = TraceBuffer::new(&c);
        // The index's capacity (part of the byte accounting, hence of pressure decisions)
        // depends on where entries hash; give both buffers the same hash seed.
        flat_buf.index = HashMap::with_hasher(traces_buf.index.hasher().clone());
        let mut flat: Vec<Span> = Vec::new();
        let mut now = 0;
        for op in ops {
            match op {
                Op::Add { trace, root, error, duration_ms, advance_ms } => {
                    now += u64::from(advance_ms) * MS;
                    let sp = span(u128::from(trace) + 1, (!root).then_some(1), error, u64::from(duration_ms));
                    traces_buf.add(sp.clone(), now, &s, &mut traces);
                    flat_buf.add_flat(sp, now, &s, &mut flat);
                }
                Op::Poll { advance_ms } => {
                    now += u64::from(advance_ms) * MS;
                    traces_buf.poll(now, &s, &mut traces);
                    flat_buf.poll_flat(now, &s, &mut flat);
                }
            }
        }
        traces_buf.flush_all(&s, &mut traces);
        flat_buf.flush_all_flat(&s, &mut flat);
        let expected: Vec<Span> = traces.into_iter().flat_map(|t| t.spans).collect();
        prop_assert_eq!(flat, expected);
        prop_assert_eq!(flat_buf.stats(), traces_buf.stats());
    }
}

#[test]
fn lowering_the_budget_releases_memory() {
    let big = SamplingConfig {
        buffer_max_bytes: 8 << 20,
        max_spans_per_trace: 10_000,
        ..config()
    };
    let (s, mut b, mut out) = setup(&big);
    for i in 0..20_000u128 {
        b.add(span(i % 2_000 + 1, Some(1), false, 1), 0, &s, &mut out);
    }
    let before = b.stats();
    assert_eq!(before.buffered_spans, 20_000);
    assert!(before.buffered_bytes > 2 << 20, "{before:?}");
    b.reconfigure(&SamplingConfig {
        buffer_max_bytes: 256 << 10,
        ..big
    });
    b.poll(0, &s, &mut out);
    let after = b.stats();
    assert!(
        after.buffered_bytes + after.cache_bytes <= after.budget_bytes,
        "{after:?}"
    );
    assert_eq!(after.decided_early, 2_000);
    assert_eq!(after.spans_dropped, 20_000);
    // It keeps working within the new budget.
    b.add(span(5_000, None, true, 1), 0, &s, &mut out);
    b.poll(100 * MS, &s, &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn traces_kept_with_probability_one_pass_through_unbuffered() {
    let c = SamplingConfig {
        default_rate: 1.0,
        ..config()
    };
    let (s, mut b, mut out) = setup(&c);
    // Rate 1: no tail rule can change the outcome, so nothing waits.
    b.add(span(1, Some(9), false, 1), 0, &s, &mut out);
    b.add(span(1, None, true, 1), 0, &s, &mut out);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|d| d.spans[0].sampling_threshold == Some(0)));
    assert_eq!(
        out[1].result.reason,
        SamplingReason::Error,
        "the root is seen by the tail rules"
    );
    let st = b.stats();
    assert_eq!(st.buffered_spans, 0);
    assert_eq!((st.spans_passed_through, st.spans_kept), (2, 2));
    assert_eq!(
        (st.traces_decided, st.traces_kept, st.decided_on_root),
        (1, 1, 1)
    );

    // At rate 0, a span whose recorded head decision is th:0 passes through too; one with
    // another threshold waits (an error would change its threshold to 0).
    let (s, mut b, mut out) = setup(&config());
    let mut th0 = span(2, Some(9), false, 1);
    th0.sampling_threshold = Some(0);
    b.add(th0, 0, &s, &mut out);
    let mut th4 = span(3, Some(9), false, 1);
    th4.sampling_threshold = Some(Threshold::from_probability(0.75).unwrap().raw());
    b.add(th4, 0, &s, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].trace_id, TraceId::from_u128(2));
    let st = b.stats();
    assert_eq!((st.buffered_spans, st.spans_passed_through), (1, 1));
    assert_eq!(
        st.spans_received,
        st.spans_kept + st.spans_dropped + st.buffered_spans as u64
    );
}

/// The in-place pass-through only applies while nothing is buffered: once a trace waits in
/// the buffer, even a sampler that keeps everything sends spans through `add_flat`, which
/// joins a buffered trace's span to it and still passes other traces' spans through.
#[test]
fn pass_through_in_place_only_while_nothing_is_buffered() {
    let c = config();
    let (s, mut b, _) = setup(&c);
    let keep_all = CompositeSampler::new(SamplingConfig {
        default_rate: 1.0,
        ..c.clone()
    });
    let mut flat = Vec::new();
    // Nothing buffered: decided in place, counted, marked th:0.
    let mut free = span(1, None, false, 1);
    assert!(b.try_pass_through(&mut free, &keep_all));
    assert_eq!(free.sampling_threshold, Some(0));
    assert_eq!(
        (b.stats().spans_received, b.stats().spans_passed_through),
        (1, 1)
    );
    // A trace waits in the buffer (rate 0, not yet decided).
    b.add_flat(span(2, Some(7), false, 1), 0, &s, &mut flat);
    assert_eq!(b.stats().buffered_spans, 1);
    let mut joining = span(2, None, true, 1);
    assert!(!b.try_pass_through(&mut joining, &keep_all));
    assert_eq!(joining.sampling_threshold, None, "unchanged when refused");
    let mut other = span(3, None, false, 1);
    assert!(!b.try_pass_through(&mut other, &keep_all));
    b.add_flat(joining, 0, &keep_all, &mut flat);
    b.add_flat(other, 0, &keep_all, &mut flat);
    // The other trace passed through; the joining root waits with its trace.
    assert_eq!(flat.len(), 1);
    assert_eq!(flat[0].trace_id, TraceId::from_u128(3));
    assert_eq!(b.stats().buffered_spans, 2);
    b.flush_all_flat(&keep_all, &mut flat);
    assert_eq!(flat.len(), 3);
    assert_eq!(b.stats().spans_received, 4);
}
