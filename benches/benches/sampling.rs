//! tta-sampling: head decisions beside the OpenTelemetry SDK samplers, and the trace buffer's
//! add + complete + decide throughput and memory.
//!
//! Figures (through `report_figure`): allocations per head decision (ours and the SDK's),
//! trace-buffer spans/s and bytes per buffered span. `TTA_BENCH_QUICK=1` (set by
//! `cargo xtask bench --quick`) shrinks the figure workloads.
use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry::Context;
use opentelemetry::trace::{
    SpanContext, SpanId as OtelSpanId, SpanKind as OtelSpanKind, TraceContextExt, TraceFlags,
    TraceId as OtelTraceId, TraceState as OtelTraceState,
};
use opentelemetry_sdk::trace::{Sampler, ShouldSample};
use tta_core::{Span, SpanId, SpanStatus, TraceId};
use tta_sampling::{
    CompositeSampler, DecidedTrace, ParentContext, SamplingConfig, Threshold, TraceBuffer,
};

#[global_allocator]
static A: tta_benches::CountingAlloc = tta_benches::CountingAlloc;

const RATE: f64 = 0.05;
const IDS: usize = 4096;
/// Spans per trace in the buffer workload: a root and seven children.
const SPANS_PER_TRACE: usize = 8;
const MS: u64 = 1_000_000;

fn quick() -> bool {
    std::env::var_os("TTA_BENCH_QUICK").is_some()
}

fn head_sampler() -> CompositeSampler {
    CompositeSampler::try_new(SamplingConfig {
        default_rate: RATE,
        adaptive_enabled: false,
        ..Default::default()
    })
    .expect("valid config")
}

fn ids() -> (Vec<TraceId>, Vec<OtelTraceId>) {
    let ours: Vec<TraceId> = (0..IDS).map(|_| TraceId::random()).collect();
    let theirs = ours
        .iter()
        .map(|id| OtelTraceId::from_bytes(id.to_bytes()))
        .collect();
    (ours, theirs)
}

fn otel_decide(sampler: &Sampler, parent: Option<&Context>, id: OtelTraceId) -> bool {
    let r = sampler.should_sample(parent, id, "GET /api", &OtelSpanKind::Server, &[], &[]);
    matches!(
        r.decision,
        opentelemetry_sdk::trace::SamplingDecision::RecordAndSample
    )
}

fn head_decision(c: &mut Criterion) {
    let (ours_ids, otel_ids) = ids();
    let sampler = head_sampler();
    let ratio = Sampler::TraceIdRatioBased(RATE);
    let parent_based = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(RATE)));

    // Root spans: ours computes the decision and the `th` threshold to propagate.
    let mut g = c.benchmark_group("sampling/head_decision");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("ours", |b| {
        b.iter(|| {
            i = (i + 1) & (IDS - 1);
            // The result carries the decision and the threshold to propagate as `th`.
            sampler.should_sample_head(black_box(ours_ids[i]), None)
        })
    });
    let mut i = 0;
    g.bench_function("peer-otel-ratio", |b| {
        b.iter(|| {
            i = (i + 1) & (IDS - 1);
            otel_decide(&ratio, None, black_box(otel_ids[i]))
        })
    });
    let mut i = 0;
    g.bench_function("peer-otel-parentbased", |b| {
        b.iter(|| {
            i = (i + 1) & (IDS - 1);
            otel_decide(&parent_based, None, black_box(otel_ids[i]))
        })
    });
    g.finish();

    // Child spans of a sampled remote parent: follow it (ours also checks the parent's th).
    let mut g = c.benchmark_group("sampling/parent_decision");
    g.throughput(Throughput::Elements(1));
    let parent = ParentContext {
        sampled: true,
        remote: true,
        threshold: Threshold::from_probability(RATE).ok(),
        randomness: None,
    };
    let mut i = 0;
    g.bench_function("ours", |b| {
        b.iter(|| {
            i = (i + 1) & (IDS - 1);
            sampler.should_sample_with_parent(black_box(ours_ids[i]), Some(&parent), None)
        })
    });
    let cx = Context::new().with_remote_span_context(SpanContext::new(
        otel_ids[0],
        OtelSpanId::from_bytes([1; 8]),
        TraceFlags::SAMPLED,
        true,
        OtelTraceState::default(),
    ));
    let mut i = 0;
    g.bench_function("peer-otel-parentbased", |b| {
        b.iter(|| {
            i = (i + 1) & (IDS - 1);
            otel_decide(&parent_based, Some(&cx), black_box(otel_ids[i]))
        })
    });
    g.finish();

    // Allocations per decision, counted over many decisions.
    let n = if quick() { 10_000 } else { 1_000_000 };
    let per = |allocs: u64| allocs as f64 / n as f64;
    let (_, ours) = tta_benches::count_allocations(|| {
        for k in 0..n {
            black_box(sampler.should_sample_head(ours_ids[k & (IDS - 1)], None));
        }
    });
    let (_, peer) = tta_benches::count_allocations(|| {
        for k in 0..n {
            black_box(otel_decide(&ratio, None, otel_ids[k & (IDS - 1)]));
        }
    });
    tta_benches::report_figure(
        "sampling/head_decision allocations per decision",
        per(ours),
        "allocs",
        Some(("peer-otel-ratio", per(peer))),
        "0",
        ours == 0,
    );
}

/// `traces` traces of `SPANS_PER_TRACE` spans (children first, root last), 1 % with an error.
fn workload(traces: usize) -> Vec<Span> {
    let mut spans = Vec::with_capacity(traces * SPANS_PER_TRACE);
    for t in 0..traces {
        let trace_id = TraceId::random();
        let root = SpanId::random();
        for k in 0..SPANS_PER_TRACE {
            let is_root = k == SPANS_PER_TRACE - 1;
            spans.push(Span {
                trace_id,
                span_id: if is_root { root } else { SpanId::random() },
                parent_span_id: (!is_root).then_some(root),
                name: "GET /api/orders".into(),
                service: "checkout".into(),
                start_unix_nanos: 0,
                end_unix_nanos: 12 * MS,
                status: if t % 100 == 0 && k == 0 {
                    SpanStatus::Error("timeout".into())
                } else {
                    SpanStatus::Unset
                },
                ..Default::default()
            });
        }
    }
    spans
}

fn buffer_config() -> SamplingConfig {
    SamplingConfig {
        default_rate: RATE,
        adaptive_enabled: false,
        straggler_delay_ms: 2,
        ..Default::default()
    }
}

/// Feeds `spans` through the buffer, one trace every 10 µs of simulated time, polling after
/// each trace so traces complete (root + straggler delay) and are decided as the run goes.
fn run(
    buffer: &mut TraceBuffer,
    sampler: &CompositeSampler,
    spans: Vec<Span>,
    now: &mut u64,
    out: &mut Vec<DecidedTrace>,
) -> usize {
    let mut kept = 0;
    for (k, span) in spans.into_iter().enumerate() {
        buffer.add(span, *now, sampler, out);
        if (k + 1) % SPANS_PER_TRACE == 0 {
            *now += 10_000;
            buffer.poll(*now, sampler, out);
            kept += out.len();
            out.clear();
        }
    }
    kept
}

fn trace_buffer(c: &mut Criterion) {
    let sampler = head_sampler();
    let config = buffer_config();
    let traces = 1024;

    let mut g = c.benchmark_group("sampling/trace_buffer");
    g.throughput(Throughput::Elements((traces * SPANS_PER_TRACE) as u64));
    let mut buffer = TraceBuffer::new(&config);
    let mut out = Vec::new();
    let mut now = 0;
    g.bench_function("ours", |b| {
        b.iter_batched(
            || workload(traces),
            |spans| run(&mut buffer, &sampler, spans, &mut now, &mut out),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // Spans per second, single thread, span construction excluded.
    let rounds = if quick() { 20 } else { 200 };
    let mut buffer = TraceBuffer::new(&config);
    let mut now = 0;
    let mut elapsed = 0.0;
    let mut total = 0usize;
    for _ in 0..rounds {
        let spans = workload(traces);
        total += spans.len();
        let start = Instant::now();
        black_box(run(&mut buffer, &sampler, spans, &mut now, &mut out));
        elapsed += start.elapsed().as_secs_f64();
    }
    let rate = total as f64 / elapsed;
    tta_benches::report_figure(
        "sampling/trace_buffer spans per second (add + complete + decide)",
        rate / 1e6,
        "M spans/s",
        None,
        ">= 3 M spans/s",
        rate >= 3e6,
    );

    // Bytes allocated per buffered span: fill a fresh buffer (no decision due) and divide
    // what it allocated by the spans it holds. An upper bound of what it holds: index tables
    // outgrown on the way are counted although freed.
    let traces = if quick() { 10_000 } else { 100_000 };
    let spans = workload(traces);
    let mut buffer = TraceBuffer::new(&SamplingConfig {
        buffer_max_bytes: 1 << 30,
        ..config
    });
    let before = tta_benches::allocated_bytes();
    for span in spans {
        buffer.add(span, 0, &sampler, &mut out);
    }
    let bytes = (tta_benches::allocated_bytes() - before) as f64;
    let held = buffer.stats();
    assert_eq!(held.buffered_spans, traces * SPANS_PER_TRACE);
    let per_span = bytes / held.buffered_spans as f64;
    tta_benches::report_figure(
        "sampling/trace_buffer bytes per buffered span",
        per_span,
        "B",
        None,
        "<= 200 B",
        per_span <= 200.0,
    );
}

criterion_group!(benches, head_decision, trace_buffer);
criterion_main!(benches);
