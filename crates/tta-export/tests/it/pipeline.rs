//! The pipeline with the real sampler stage (TraceBuffer + CompositeSampler).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tta_core::{Span, SpanId, SpanStatus, TraceId};
use tta_export::{
    ExportConfig, ExportError, Exporter, InMemoryExporter, JsonLinesExporter, RetryPolicy,
    SpanPipeline,
};
use tta_sampling::{CompositeSampler, SamplingConfig};

pub(crate) fn sampling(rate: f64) -> SamplingConfig {
    SamplingConfig {
        default_rate: rate,
        adaptive_enabled: false,
        always_sample_errors: true,
        always_sample_slow: false,
        straggler_delay_ms: 0,
        ..Default::default()
    }
}

/// `n` traces of `per` spans each (children first, root last); every 10th has an error.
pub(crate) fn traces(n: usize, per: u64) -> Vec<Span> {
    let mut out = Vec::new();
    for t in 0..n {
        let trace_id = TraceId::random();
        let root = SpanId::random();
        for s in 0..per {
            let is_root = s + 1 == per;
            out.push(Span {
                trace_id,
                span_id: if is_root { root } else { SpanId::random() },
                parent_span_id: (!is_root).then_some(root),
                name: "op".into(),
                service: "svc".into(),
                start_unix_nanos: 1_000,
                end_unix_nanos: 2_000,
                status: if t % 10 == 0 && s == 0 {
                    SpanStatus::Error("boom".into())
                } else {
                    SpanStatus::Ok
                },
                ..Default::default()
            });
        }
    }
    out
}

pub(crate) fn start(
    config: ExportConfig,
    rate: f64,
    exporters: Vec<Box<dyn Exporter>>,
) -> SpanPipeline {
    let s = sampling(rate);
    SpanPipeline::start(
        config,
        Arc::new(CompositeSampler::new(s.clone())),
        &s,
        exporters,
    )
    .unwrap()
}

pub(crate) fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn every_accepted_span_of_a_kept_trace_is_exported_exactly_once() {
    let mem = InMemoryExporter::new();
    let config = ExportConfig {
        batch_size: 128,
        max_queue_size: 1 << 16,
        ..Default::default()
    };
    let p = Arc::new(start(config, 0.3, vec![Box::new(mem.clone())]));
    let spans = traces(4000, 5);
    let (a, b) = spans.split_at(spans.len() / 2);
    let hs: Vec<_> = [a.to_vec(), b.to_vec()]
        .into_iter()
        .map(|part| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || part.into_iter().filter(|s| !p.submit(s.clone())).count())
        })
        .collect();
    let refused: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(refused, 0);
    p.flush(Duration::from_secs(30)).unwrap();

    let exported = mem.spans();
    let ids: HashSet<SpanId> = exported.iter().map(|s| s.span_id).collect();
    assert_eq!(ids.len(), exported.len(), "a span was exported twice");
    let mut per_trace: HashMap<TraceId, usize> = HashMap::new();
    for s in &exported {
        *per_trace.entry(s.trace_id).or_default() += 1;
        assert!(
            s.sampling_threshold.is_some(),
            "kept spans carry their threshold"
        );
    }
    assert!(
        per_trace.values().all(|n| *n == 5),
        "kept traces are exported whole"
    );
    let error_traces: HashSet<TraceId> = spans
        .iter()
        .filter(|s| s.is_error())
        .map(|s| s.trace_id)
        .collect();
    assert!(
        error_traces.iter().all(|t| per_trace.contains_key(t)),
        "error traces are always kept"
    );
    let kept_traces = per_trace.len();
    assert!(
        kept_traces > error_traces.len() && kept_traces < 4000,
        "{kept_traces}"
    );

    let st = p.stats();
    assert_eq!(
        (st.submitted, st.accepted, st.dropped_queue_full),
        (20_000, 20_000, 0)
    );
    assert_eq!(st.exported_spans, exported.len() as u64);
    assert_eq!(st.sampled_out + st.exported_spans, 20_000);
    assert_eq!(st.trace_buffer.spans_received, 20_000);
    assert_eq!(st.trace_buffer.spans_kept, exported.len() as u64);
    assert_eq!(st.buffered_spans, 0);
    let report = p.shutdown(Duration::from_secs(10));
    assert!(report.completed && report.lost() == 0, "{report:?}");
}

#[test]
fn drops_are_counted_exactly_when_the_queue_is_full() {
    struct Slow(InMemoryExporter);
    impl Exporter for Slow {
        fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
            std::thread::sleep(Duration::from_millis(20));
            self.0.export(batch)
        }
    }
    let mem = InMemoryExporter::new();
    let config = ExportConfig {
        batch_size: 16,
        max_queue_size: 64,
        max_export_workers: 1,
        ..Default::default()
    };
    let p = start(config, 1.0, vec![Box::new(Slow(mem.clone()))]);
    let spans = traces(2000, 5);
    let mut accepted = HashSet::new();
    let mut refused = 0u64;
    for s in &spans {
        if p.submit(s.clone()) {
            accepted.insert(s.span_id);
        } else {
            refused += 1;
        }
    }
    assert!(refused > 0);
    assert_eq!(p.stats().dropped_queue_full, refused);
    let report = p.shutdown(Duration::from_secs(60));
    assert!(report.completed, "{report:?}");
    let exported: HashSet<SpanId> = mem.spans().iter().map(|s| s.span_id).collect();
    assert_eq!(
        exported, accepted,
        "rate 1.0: every accepted span goes out, once"
    );
    assert_eq!(mem.len(), accepted.len());
    assert_eq!(report.stats.submitted, spans.len() as u64);
    assert_eq!(report.stats.accepted + refused, spans.len() as u64);
}

#[test]
fn shutdown_with_a_full_queue_loses_nothing_within_the_deadline() {
    let mem = InMemoryExporter::new();
    let config = ExportConfig {
        batch_size: 512,
        max_queue_size: 2048,
        ..Default::default()
    };
    let p = start(config, 1.0, vec![Box::new(mem.clone())]);
    let mut accepted = 0;
    for s in traces(1000, 5) {
        accepted += usize::from(p.submit(s));
    }
    let report = p.shutdown(Duration::from_secs(30));
    assert!(report.completed, "{report:?}");
    assert_eq!(report.lost(), 0);
    assert_eq!(mem.len(), accepted);
    assert_eq!(report.stats.exported_spans, accepted as u64);
    assert!(mem.is_shut_down());
    assert!(!p.submit(Span::default()));
    assert_eq!(p.stats().dropped_after_shutdown, 1);
}

#[test]
fn sync_export_happens_on_flush_and_json_lines_get_every_span() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spans.jsonl");
    // Batches of 20: at rate 1 the spans skip the trace buffer and reach the stage in whole
    // batches from this thread's shard, which the stage cuts at once.
    let config = ExportConfig {
        async_export: false,
        batch_size: 20,
        ..Default::default()
    };
    let p = start(
        config,
        1.0,
        vec![Box::new(JsonLinesExporter::to_file(&path).unwrap())],
    );
    let spans = traces(20, 3);
    for s in &spans {
        assert!(p.submit(s.clone()));
    }
    wait_until("the stage to take the spans and cut their batches", || {
        let st = p.stats();
        st.kept_spans == 60 && st.pending_batches == 3
    });
    assert_eq!(std::fs::read_to_string(&path).unwrap_or_default(), "");
    p.flush(Duration::from_secs(30)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let back: Vec<Span> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: HashSet<SpanId> = back.iter().map(|s| s.span_id).collect();
    let want: HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    assert_eq!(got, want);
    assert_eq!(back.len(), 60);
}

#[test]
fn reconfigure_changes_sampling_live_and_reports_restart_fields() {
    let mem = InMemoryExporter::new();
    let p = start(ExportConfig::default(), 1.0, vec![Box::new(mem.clone())]);
    for s in traces(10, 2) {
        p.submit(s);
    }
    p.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(mem.len(), 20);
    let next = SamplingConfig {
        default_rate: 0.0,
        always_sample_errors: false,
        ..sampling(0.0)
    };
    let export = ExportConfig {
        batch_size: 64,
        max_export_workers: 8,
        ..Default::default()
    };
    let report = p.reconfigure(&export, &next).unwrap();
    assert_eq!(report.applied, ["sampling", "batch_size"]);
    assert_eq!(report.restart_required, ["max_export_workers"]);
    assert_eq!(p.sampler().unwrap().config().default_rate, 0.0);
    mem.clear();
    for s in traces(10, 2) {
        p.submit(s);
    }
    p.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(mem.len(), 0, "rate 0 without tail rules keeps nothing");
    assert_eq!(p.stats().sampled_out, 20);

    let bad = SamplingConfig {
        default_rate: 2.0,
        ..Default::default()
    };
    let err = p.reconfigure(&ExportConfig::default(), &bad).unwrap_err();
    assert!(err.to_string().contains("default_rate"), "{err}");
    assert_eq!(
        p.config().batch_size,
        64,
        "a rejected reconfigure changes nothing"
    );
}

#[test]
fn invalid_configs_are_rejected_at_start() {
    let s = sampling(0.1);
    let sampler = Arc::new(CompositeSampler::new(s.clone()));
    let err = SpanPipeline::start(
        ExportConfig {
            batch_size: 4096,
            ..Default::default()
        },
        Arc::clone(&sampler),
        &s,
        vec![],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid export config: batch_size (4096) must not exceed max_queue_size (2048)"
    );
    let bad = SamplingConfig {
        default_rate: -1.0,
        ..Default::default()
    };
    let err = SpanPipeline::start(ExportConfig::default(), sampler, &bad, vec![]).unwrap_err();
    assert!(
        matches!(err, ExportError::InvalidSamplingConfig { .. }),
        "{err}"
    );
}

#[test]
fn retry_policy_honours_the_deadline() {
    struct Busy;
    impl Exporter for Busy {
        fn export(&self, _: &[Span]) -> Result<(), ExportError> {
            Err(ExportError::Other {
                exporter: "busy".into(),
                message: "try later".into(),
                retryable: true,
                retry_after: Some(Duration::from_secs(3600)),
            })
        }
    }
    // Retry-After beyond the deadline: no retry, the batch fails at once.
    let config = ExportConfig {
        retry: RetryPolicy {
            max_attempts: 10,
            ..Default::default()
        },
        ..Default::default()
    };
    let p = start(config, 1.0, vec![Box::new(Busy)]);
    for s in traces(1, 2) {
        p.submit(s);
    }
    p.flush(Duration::from_secs(30)).unwrap();
    let st = p.stats();
    assert_eq!((st.retries, st.failed_batches, st.failed_spans), (0, 1, 2));
}

/// Traces the caller already decided skip the trace buffer: a kept trace whose root has a
/// remote parent (which the buffer would hold until its decision wait) is exported at once,
/// and spans the caller dropped are still accounted for.
#[test]
fn caller_decided_traces_skip_the_buffer_and_are_counted() {
    let exporter = Arc::new(InMemoryExporter::new());
    let config = ExportConfig {
        export_interval_seconds: 0.05,
        ..ExportConfig::default()
    };
    let mut s = sampling(0.0);
    s.decision_wait_ms = 600_000;
    let pipeline = SpanPipeline::start(
        config,
        Arc::new(CompositeSampler::new(s.clone())),
        &s,
        vec![Box::new(Arc::clone(&exporter))],
    )
    .unwrap();
    let mut trace = traces(1, 3);
    for span in &mut trace {
        if span.parent_span_id.is_none() {
            span.parent_span_id = Some(SpanId::random()); // a remote caller's span
        }
        span.sampling_threshold = Some(0);
    }
    // Traces of one span, handed over without a vector, between the two.
    let singles: Vec<Span> = traces(2, 1);
    let mut ids: HashSet<SpanId> = trace.iter().chain(&singles).map(|s| s.span_id).collect();
    let mut singles = singles.into_iter();
    assert!(pipeline.submit_decided_span(singles.next().unwrap()));
    assert!(pipeline.submit_decided(trace));
    assert!(pipeline.submit_decided_span(singles.next().unwrap()));
    pipeline.record_sampled_out(5);
    // The exporter holds the spans before the worker counts them as exported.
    wait_until("decided spans exported", || {
        exporter.len() == 5 && pipeline.stats().exported_spans == 5
    });
    let exported: Vec<SpanId> = exporter.spans().iter().map(|s| s.span_id).collect();
    assert_eq!(exported.len(), 5, "each exported once");
    for id in exported {
        assert!(ids.remove(&id), "{id:?} exported once, and was submitted");
    }
    let stats = pipeline.stats();
    assert_eq!(stats.submitted, 10);
    assert_eq!(stats.sampled_out, 5);
    assert_eq!(stats.exported_spans, 5);
    assert_eq!(stats.buffered_spans, 0);
    let report = pipeline.shutdown(Duration::from_secs(5));
    assert_eq!(report.lost(), 0);
}
