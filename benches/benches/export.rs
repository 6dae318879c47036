//! tta-export: span submit throughput through sampler stage + batcher + no-op exporter,
//! beside opentelemetry_sdk's BatchSpanProcessor with a no-op exporter (default sizes), the
//! drops of both (ours with `queue_full_wait_ms` set, and with the default config that
//! drops when the queue is full, unpaced and at the rate the peer's producers reached), and
//! export latency p99 into the trace store at 100k spans/s.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use tta_core::{SharedStr, Span, SpanId, TraceId};
use tta_export::{ExportConfig, ExportError, Exporter, SpanPipeline, StoreExporter};
use tta_sampling::{CompositeSampler, SamplingConfig};

const SPANS_PER_TRACE: u64 = 5;

fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Counts spans and does nothing else.
#[derive(Debug, Clone, Default)]
struct NoopOurs(Arc<AtomicU64>);
impl Exporter for NoopOurs {
    fn name(&self) -> &str {
        "noop"
    }
    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
struct NoopOtel(Arc<AtomicU64>);
impl SpanExporter for NoopOtel {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}

/// Every trace kept (the peer's AlwaysOn), so both sides move every span to the exporter.
fn sampling_all() -> SamplingConfig {
    SamplingConfig {
        default_rate: 1.0,
        adaptive_enabled: false,
        ..Default::default()
    }
}

/// Holds a producer to `rate` spans/s (if given): after each trace, waits (spinning, as an
/// unpaced producer would be busy anyway) until the trace is due.
fn pace(start: Instant, sent: u64, rate: Option<f64>) {
    if let Some(rate) = rate {
        let due = Duration::from_secs_f64(sent as f64 / rate);
        while start.elapsed() < due {
            std::hint::spin_loop();
        }
    }
}

/// How long a full queue may make `submit` wait in the zero-drop configuration.
const FULL_WAIT_MS: f64 = 10.0;

/// Default sizes; `submit` waits up to [`FULL_WAIT_MS`] for room instead of dropping.
fn waiting() -> ExportConfig {
    ExportConfig {
        queue_full_wait_ms: FULL_WAIT_MS,
        ..ExportConfig::default()
    }
}

/// Runs `producers` threads that each create and submit `per_producer` spans (traces of 5),
/// then waits until everything is exported. Returns (elapsed, exported, dropped).
fn run_ours(producers: usize, per_producer: u64) -> (Duration, u64, u64) {
    run_ours_paced(waiting(), producers, per_producer, None)
}

/// [`run_ours`] with the default config: a full queue drops at once.
fn run_ours_dropping(producers: usize, per_producer: u64) -> (Duration, u64, u64) {
    run_ours_paced(ExportConfig::default(), producers, per_producer, None)
}

/// [`run_ours`] with `config` and each producer held to `rate` spans/s.
fn run_ours_paced(
    config: ExportConfig,
    producers: usize,
    per_producer: u64,
    rate: Option<f64>,
) -> (Duration, u64, u64) {
    let exported = Arc::new(AtomicU64::new(0));
    let s = sampling_all();
    let p = Arc::new(
        SpanPipeline::start(
            config,
            Arc::new(CompositeSampler::new(s.clone())),
            &s,
            vec![Box::new(NoopOurs(Arc::clone(&exported)))],
        )
        .expect("valid config"),
    );
    let start = Instant::now();
    let hs: Vec<_> = (0..producers)
        .map(|_| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                let mut i = 0;
                while i < per_producer {
                    pace(start, i, rate);
                    let trace_id = TraceId::random();
                    let root = SpanId::random();
                    for k in 0..SPANS_PER_TRACE {
                        let is_root = k + 1 == SPANS_PER_TRACE;
                        let t = now_nanos();
                        p.submit(Span {
                            trace_id,
                            span_id: if is_root { root } else { SpanId::random() },
                            parent_span_id: (!is_root).then_some(root),
                            name: SharedStr::from_static("op"),
                            service: SharedStr::from_static("bench"),
                            start_unix_nanos: t,
                            end_unix_nanos: t + 1_000,
                            ..Default::default()
                        });
                    }
                    i += SPANS_PER_TRACE;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().expect("producer");
    }
    p.flush(Duration::from_secs(120)).expect("flush");
    let elapsed = start.elapsed();
    let st = p.stats();
    p.shutdown(Duration::from_secs(10));
    (
        elapsed,
        exported.load(Ordering::Relaxed),
        st.dropped_queue_full,
    )
}

/// The peer: the same span count through `BatchSpanProcessor` (default sizes: queue 2048,
/// batch 512). Its drops are the spans its exporter never saw (`on_end` found the queue
/// full). Returns (elapsed, exported, dropped).
fn run_bsp(producers: usize, per_producer: u64) -> (Duration, u64, u64) {
    let (elapsed, got, dropped, _) = run_bsp_timed(producers, per_producer);
    (elapsed, got, dropped)
}

/// [`run_bsp`], also returning how long the producers took (their offered rate).
fn run_bsp_timed(producers: usize, per_producer: u64) -> (Duration, u64, u64, Duration) {
    let exported = Arc::new(AtomicU64::new(0));
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(NoopOtel(Arc::clone(&exported))).build())
        .with_sampler(Sampler::AlwaysOn)
        .build();
    let start = Instant::now();
    let hs: Vec<_> = (0..producers)
        .map(|_| {
            let tracer = provider.tracer("bench");
            std::thread::spawn(move || {
                let mut i = 0;
                while i < per_producer {
                    let root = tracer.start("op");
                    let cx = opentelemetry::Context::new()
                        .with_remote_span_context(root.span_context().clone());
                    for _ in 1..SPANS_PER_TRACE {
                        let mut child = tracer.start_with_context("op", &cx);
                        child.end();
                    }
                    let mut root = root;
                    root.end();
                    i += SPANS_PER_TRACE;
                }
            })
        })
        .collect();
    for h in hs {
        h.join().expect("producer");
    }
    let produced = start.elapsed();
    let _ = provider.force_flush();
    let elapsed = start.elapsed();
    let _ = provider.shutdown();
    let got = exported.load(Ordering::Relaxed);
    let total = per_producer.div_ceil(SPANS_PER_TRACE) * SPANS_PER_TRACE * producers as u64;
    (elapsed, got, total - got, produced)
}

fn submit(c: &mut Criterion) {
    let n: u64 = 200_000;
    for (group, producers) in [("export/submit", 1usize), ("export/submit_2_producers", 2)] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(n));
        g.sample_size(10);
        // Drops in the timed runs too: a side that drops spans skips their work, so the
        // times only compare like with like when both drop (about) nothing.
        let drops = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
        let runs = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
        for (side, id, run) in [
            (
                0usize,
                "ours",
                run_ours as fn(usize, u64) -> (Duration, u64, u64),
            ),
            (1, "ours-drop_when_full", run_ours_dropping),
            (2, "peer-otel-bsp", run_bsp),
        ] {
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let (t, _, dropped) = run(producers, n / producers as u64);
                            drops[side].fetch_add(dropped, Ordering::Relaxed);
                            runs[side].fetch_add(1, Ordering::Relaxed);
                            t
                        })
                        .sum()
                })
            });
        }
        g.finish();
        let share = |side: usize| {
            drops[side].load(Ordering::Relaxed) as f64
                / (runs[side].load(Ordering::Relaxed).max(1) * n) as f64
                * 100.0
        };
        eprintln!(
            "{group}: spans dropped in the timed runs: ours (wait {FULL_WAIT_MS} ms) {:.1}%, ours (drop when full) {:.1}%, bsp {:.1}%",
            share(0),
            share(1),
            share(2)
        );
    }

    // Drops over a longer run, outside the timing. Unpaced, each side's producers run flat
    // out: ours build a `Span` literal (~0.1 µs), the peer's go through the SDK tracer (~0.2
    // µs), so ours face about twice the offered rate. The goal's rows use the zero-drop
    // configuration (`queue_full_wait_ms`, default sizes); the default configuration, which
    // drops at once when the queue is full, is shown beside it unpaced and at the rate the
    // peer's producers reached.
    let total: u64 = if quick() { 400_000 } else { 2_000_000 };
    for producers in [1usize, 2] {
        let per = total / producers as u64;
        let (_, ours_out, ours_dropped) = run_ours(producers, per);
        let (_, bsp_out, bsp_dropped, bsp_produced) = run_bsp_timed(producers, per);
        let suffix = if producers > 1 { "s" } else { "" };
        // Every drop row stands beside BSP's drops in the same run.
        let report = |name: &str, dropped: u64, goal: &str, met: bool| {
            tta_benches::report_figure(
                name,
                dropped as f64,
                "spans",
                Some(("peer-otel-bsp", bsp_dropped as f64)),
                goal,
                met,
            )
        };
        let name = format!("export/drops_{producers}_producer{suffix}");
        report(
            &name,
            ours_dropped,
            "0 drops where BSP drops",
            ours_dropped == 0,
        );
        eprintln!(
            "{name}: ours (wait {FULL_WAIT_MS} ms) exported {ours_out} dropped {ours_dropped}; bsp exported {bsp_out} dropped {bsp_dropped}"
        );
        // The default config beside it: unpaced, then at the rate the peer's producers reached.
        let bsp_rate = (per * producers as u64) as f64 / bsp_produced.as_secs_f64();
        for (pace, tail, goal) in [
            (None, "", "report only (default config)"),
            (
                Some(bsp_rate / producers as f64),
                "_at_bsp_rate",
                "report only (default config, same offered rate)",
            ),
        ] {
            let (_, out, dropped) = run_ours_paced(ExportConfig::default(), producers, per, pace);
            let name = format!("export/drops_{producers}_producer{suffix}_drop_when_full{tail}");
            report(&name, dropped, goal, true);
            let offered = pace.map_or("unpaced".to_owned(), |r| {
                format!("offered {:.2} M spans/s", r * producers as f64 / 1e6)
            });
            eprintln!("{name}: {offered}; ours exported {out} dropped {dropped}");
        }
    }
}

/// Paces 100k spans/s into a pipeline exporting to the embedded store and reports the
/// export latency p99 (batch handed over -> store returned).
fn store_latency(_c: &mut Criterion) {
    let seconds = if quick() { 1.0 } else { 3.0 };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        tta_storage::TraceStore::open(dir.path(), tta_storage::StorageConfig::default())
            .expect("store"),
    );
    let s = SamplingConfig {
        straggler_delay_ms: 0,
        ..sampling_all()
    };
    let p = SpanPipeline::start(
        ExportConfig::default(),
        Arc::new(CompositeSampler::new(s.clone())),
        &s,
        vec![Box::new(StoreExporter::new(Arc::clone(&store)))],
    )
    .expect("valid config");
    let rate = 100_000.0;
    let total = (rate * seconds) as u64;
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while sent < due.min(total) {
            let trace_id = TraceId::random();
            let root = SpanId::random();
            for k in 0..SPANS_PER_TRACE {
                let is_root = k + 1 == SPANS_PER_TRACE;
                let t = now_nanos();
                p.submit(Span {
                    trace_id,
                    span_id: if is_root { root } else { SpanId::random() },
                    parent_span_id: (!is_root).then_some(root),
                    name: SharedStr::from_static("GET /api/orders"),
                    service: SharedStr::from_static("checkout"),
                    start_unix_nanos: t,
                    end_unix_nanos: t + 1_000_000,
                    attributes: vec![("http.status_code".into(), 200i64.into())],
                    ..Default::default()
                });
            }
            sent += SPANS_PER_TRACE;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    p.flush(Duration::from_secs(60)).expect("flush");
    let st = p.stats();
    p.shutdown(Duration::from_secs(10));
    tta_benches::report_figure(
        "export/store_latency_p99_at_100k_spans_per_s",
        st.export_latency_p99_ms,
        "ms",
        None,
        "< 100 ms",
        st.export_latency_p99_ms < 100.0,
    );
    eprintln!(
        "store latency at 100k spans/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, batches {}, dropped {}",
        st.export_latency_p50_ms,
        st.export_latency_p99_ms,
        st.export_latency_max_ms,
        st.exported_batches,
        st.dropped_queue_full
    );
}

criterion_group!(benches, submit, store_latency);
criterion_main!(benches);
