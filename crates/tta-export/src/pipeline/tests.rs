//! Pipeline mechanics (queue, stage, batcher, workers, failures) with a simple stand-in
//! assembler: a trace is decided when its root span arrives and kept when its id is even.
//! The real sampler stage is exercised in `tests/it`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tta_core::{Span, SpanId, SystemClock, TraceId};

use super::*;
use crate::stage::Assembler;
use crate::{InMemoryExporter, RetryPolicy};

#[derive(Default)]
struct EvenKeeps {
    pending: HashMap<TraceId, Vec<Span>>,
    decided: HashMap<TraceId, bool>,
    buffered: u64,
    dropped: u64,
}

impl EvenKeeps {
    fn decide(&mut self, id: TraceId, out: &mut Vec<Span>) {
        let keep = id.to_u128().is_multiple_of(2);
        self.decided.insert(id, keep);
        let spans = self.pending.remove(&id).unwrap_or_default();
        self.buffered -= spans.len() as u64;
        if keep {
            out.extend(spans);
        } else {
            self.dropped += spans.len() as u64;
        }
    }
}

impl Assembler for EvenKeeps {
    fn add(&mut self, span: Span, _now: u64, out: &mut Vec<Span>) {
        let id = span.trace_id;
        if let Some(keep) = self.decided.get(&id) {
            if *keep {
                out.push(span);
            } else {
                self.dropped += 1;
            }
            return;
        }
        let root = span.is_root();
        self.pending.entry(id).or_default().push(span);
        self.buffered += 1;
        if root {
            self.decide(id, out);
        }
    }
    fn poll(&mut self, _now: u64, _out: &mut Vec<Span>) {}
    fn flush_all(&mut self, out: &mut Vec<Span>) {
        let ids: Vec<TraceId> = self.pending.keys().copied().collect();
        for id in ids {
            self.decide(id, out);
        }
    }
    fn next_deadline(&self) -> Option<u64> {
        None
    }
    fn reconfigure(&mut self, _: &tta_sampling::SamplingConfig) {}
    fn stats(&self) -> tta_sampling::TraceBufferStats {
        tta_sampling::TraceBufferStats {
            buffered_spans: self.buffered as usize,
            spans_dropped: self.dropped,
            ..Default::default()
        }
    }
}

/// `traces` traces of `per_trace` spans; children first, root last. Trace `t` has id `t + 1`.
fn traces(first: u64, traces: u64, per_trace: u64) -> Vec<Span> {
    let mut out = Vec::new();
    for t in first..first + traces {
        let trace_id = TraceId::from_u128(u128::from(t) + 1);
        for s in 0..per_trace {
            out.push(Span {
                trace_id,
                span_id: SpanId::from_u64(t * 1000 + s + 1),
                parent_span_id: (s + 1 < per_trace).then(|| SpanId::from_u64(t * 1000 + per_trace)),
                name: "op".into(),
                ..Default::default()
            });
        }
    }
    out
}

fn kept(spans: &[Span]) -> HashSet<SpanId> {
    spans
        .iter()
        .filter(|s| s.trace_id.to_u128().is_multiple_of(2))
        .map(|s| s.span_id)
        .collect()
}

fn start(config: ExportConfig, exporters: Vec<Box<dyn Exporter>>) -> SpanPipeline {
    SpanPipeline::start_with(
        config,
        EvenKeeps::default(),
        exporters,
        Arc::new(SystemClock),
    )
    .unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        initial_backoff_ms: 1,
        max_backoff_ms: 5,
        max_attempts: 4,
        multiplier: 2.0,
        jitter: 0.5,
    }
}

/// Blocks every export until opened.
#[derive(Clone, Default)]
struct Gate {
    open: Arc<AtomicBool>,
    inner: InMemoryExporter,
}
impl Exporter for Gate {
    fn name(&self) -> &str {
        "gate"
    }
    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        while !self.open.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.inner.export(batch)
    }
}

/// Fails the first `fail` calls with `err()`, then records.
struct Flaky {
    calls: Arc<AtomicUsize>,
    fail: usize,
    retryable: bool,
    inner: InMemoryExporter,
}
impl Exporter for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail {
            return Err(ExportError::Other {
                exporter: "flaky".into(),
                message: format!("call {n} refused"),
                retryable: self.retryable,
                retry_after: None,
            });
        }
        self.inner.export(batch)
    }
}

#[test]
fn every_kept_span_is_exported_exactly_once_with_two_producers() {
    let mem = InMemoryExporter::new();
    let config = ExportConfig {
        batch_size: 64,
        max_queue_size: 1 << 16,
        ..Default::default()
    };
    let p = Arc::new(start(config, vec![Box::new(mem.clone())]));
    let a = traces(0, 2000, 5);
    let b = traces(2000, 2000, 5);
    let expected: HashSet<SpanId> = kept(&a).union(&kept(&b)).copied().collect();
    let handles: Vec<_> = [a, b]
        .into_iter()
        .map(|spans| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || spans.into_iter().filter(|s| !p.submit(s.clone())).count())
        })
        .collect();
    let refused: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(refused, 0);
    p.flush(Duration::from_secs(20)).unwrap();
    let got = mem.spans();
    let ids: HashSet<SpanId> = got.iter().map(|s| s.span_id).collect();
    assert_eq!(ids.len(), got.len(), "a span was exported twice");
    assert_eq!(ids, expected);
    let s = p.stats();
    assert_eq!(s.submitted, 20_000);
    assert_eq!(s.accepted, 20_000);
    assert_eq!(s.dropped_queue_full, 0);
    assert_eq!(s.exported_spans, expected.len() as u64);
    assert_eq!(s.kept_spans, expected.len() as u64);
    assert_eq!(s.sampled_out, 20_000 - expected.len() as u64);
    assert_eq!(s.buffered_spans, 0);
    assert!(s.exported_batches >= expected.len() as u64 / 64);
    assert!(s.last_success_unix_nanos.is_some());
    assert!(s.export_latency_p99_ms >= s.export_latency_p50_ms);
    assert_eq!(s.exporters[0].name, "in-memory");
    assert!(mem.flushes() >= 1);
}

#[test]
fn a_full_queue_drops_and_counts_exactly_and_loses_nothing_accepted() {
    let gate = Gate::default();
    let config = ExportConfig {
        batch_size: 8,
        max_queue_size: 64,
        max_export_workers: 1,
        ..Default::default()
    };
    let p = start(config, vec![Box::new(gate.clone())]);
    let spans = traces(0, 2000, 5);
    let mut accepted = HashSet::new();
    let mut refused = 0u64;
    for s in &spans {
        if p.submit(s.clone()) {
            accepted.insert(s.span_id);
        } else {
            refused += 1;
        }
    }
    assert!(refused > 0, "the gate should have backed the queue up");
    let s = p.stats();
    assert_eq!(s.dropped_queue_full, refused);
    assert_eq!(s.submitted, spans.len() as u64);
    gate.open.store(true, Ordering::Release);
    p.flush(Duration::from_secs(20)).unwrap();
    let s = p.stats();
    assert_eq!(s.accepted, accepted.len() as u64);
    assert_eq!(s.accepted, s.sampled_out + s.exported_spans);
    let exported: Vec<SpanId> = gate.inner.spans().iter().map(|s| s.span_id).collect();
    let unique: HashSet<SpanId> = exported.iter().copied().collect();
    assert_eq!(unique.len(), exported.len());
    assert!(unique.is_subset(&accepted));
    // Every accepted span of a kept trace whose root was accepted went out.
    let kept_accepted: HashSet<SpanId> = spans
        .iter()
        .filter(|s| accepted.contains(&s.span_id) && s.trace_id.to_u128().is_multiple_of(2))
        .map(|s| s.span_id)
        .collect();
    assert_eq!(unique, kept_accepted);
}

/// [`EvenKeeps`] that takes its time over every span: a stage slower than its producers.
#[derive(Default)]
struct Slow(EvenKeeps);

impl Assembler for Slow {
    fn add(&mut self, span: Span, now: u64, out: &mut Vec<Span>) {
        let until = Instant::now() + Duration::from_micros(20);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        self.0.add(span, now, out);
    }
    fn poll(&mut self, now: u64, out: &mut Vec<Span>) {
        self.0.poll(now, out);
    }
    fn flush_all(&mut self, out: &mut Vec<Span>) {
        self.0.flush_all(out);
    }
    fn next_deadline(&self) -> Option<u64> {
        self.0.next_deadline()
    }
    fn reconfigure(&mut self, s: &tta_sampling::SamplingConfig) {
        self.0.reconfigure(s);
    }
    fn stats(&self) -> tta_sampling::TraceBufferStats {
        self.0.stats()
    }
}

#[test]
fn with_queue_full_wait_a_slow_stage_slows_producers_instead_of_dropping() {
    let memory = InMemoryExporter::new();
    let config = ExportConfig {
        batch_size: 8,
        max_queue_size: 32,
        queue_full_wait_ms: 500.0,
        ..Default::default()
    };
    let p = Arc::new(
        SpanPipeline::start_with(
            config,
            Slow::default(),
            vec![Box::new(memory.clone())],
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    // Two producers, 1500 spans each, into a queue of 32 drained at 20 µs a span.
    let hs: Vec<_> = (0..2u64)
        .map(|t| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                let spans = traces(t * 1000, 300, 5);
                let n = spans.len();
                let refused = spans.into_iter().filter(|s| !p.submit(s.clone())).count();
                (n, refused)
            })
        })
        .collect();
    let mut total = 0;
    for h in hs {
        let (n, refused) = h.join().unwrap();
        assert_eq!(
            refused, 0,
            "a producer that may wait loses nothing to a slow stage"
        );
        total += n;
    }
    let s = p.stats();
    assert_eq!(s.dropped_queue_full, 0);
    assert!(s.waited_queue_full > 0, "the queue filled up: {s:?}");
    p.flush(Duration::from_secs(20)).unwrap();
    // Counted once the pipeline is quiet: while the stage still drains, the queue's depth
    // and the stage's count are read one after the other (see `PipelineStats`).
    assert_eq!(p.stats().submitted, total as u64);
    let mut all = traces(0, 300, 5);
    all.extend(traces(1000, 300, 5));
    let exported: Vec<SpanId> = memory.spans().iter().map(|s| s.span_id).collect();
    let unique: HashSet<SpanId> = exported.iter().copied().collect();
    assert_eq!(unique.len(), exported.len(), "each span exported once");
    assert_eq!(unique, kept(&all));
}

#[test]
fn with_queue_full_wait_a_stuck_exporter_makes_submit_drop_instead_of_waiting() {
    let gate = Gate::default();
    let config = ExportConfig {
        batch_size: 8,
        max_queue_size: 64,
        max_export_workers: 1,
        queue_full_wait_ms: 50.0,
        ..Default::default()
    };
    let p = start(config, vec![Box::new(gate.clone())]);
    let spans = traces(0, 2000, 5);
    let started = Instant::now();
    let mut accepted = HashSet::new();
    for s in &spans {
        if p.submit(s.clone()) {
            accepted.insert(s.span_id);
        }
    }
    let took = started.elapsed();
    let s = p.stats();
    // The stage is stuck handing batches to the gated worker: at most a wait or two of
    // 50 ms before every later submit drops at once (10,000 waits would take 500 s).
    assert!(
        took < Duration::from_secs(10),
        "submits waited for a stuck exporter: {took:?}"
    );
    assert!(s.dropped_queue_full > 0);
    assert_eq!(
        s.dropped_queue_full + accepted.len() as u64,
        spans.len() as u64
    );
    // Once the exporter is back, everything accepted goes out.
    gate.open.store(true, Ordering::Release);
    p.flush(Duration::from_secs(20)).unwrap();
    let exported: HashSet<SpanId> = gate.inner.spans().iter().map(|s| s.span_id).collect();
    let kept_accepted: HashSet<SpanId> = spans
        .iter()
        .filter(|s| accepted.contains(&s.span_id) && s.trace_id.to_u128().is_multiple_of(2))
        .map(|s| s.span_id)
        .collect();
    assert_eq!(exported, kept_accepted);
}

#[test]
fn retryable_errors_are_retried_then_exported() {
    let mem = InMemoryExporter::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky = Flaky {
        calls: Arc::clone(&calls),
        fail: 2,
        retryable: true,
        inner: mem.clone(),
    };
    let config = ExportConfig {
        retry: fast_retry(),
        ..Default::default()
    };
    let p = start(config, vec![Box::new(flaky)]);
    for s in traces(1, 1, 4) {
        assert!(p.submit(s));
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let s = p.stats();
    assert_eq!((s.retries, s.exported_spans, s.failed_batches), (2, 4, 0));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(mem.len(), 4);
    assert_eq!(s.consecutive_failures, 0);
    assert!(s.last_error.unwrap().contains("call 1 refused"));
}

#[test]
fn permanent_errors_fail_the_batch_without_retry() {
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky = Flaky {
        calls: Arc::clone(&calls),
        fail: usize::MAX,
        retryable: false,
        inner: InMemoryExporter::new(),
    };
    let p = start(
        ExportConfig {
            retry: fast_retry(),
            ..Default::default()
        },
        vec![Box::new(flaky)],
    );
    for s in traces(1, 1, 3) {
        p.submit(s);
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let s = p.stats();
    assert_eq!(
        (
            s.retries,
            s.failed_batches,
            s.failed_spans,
            s.exported_spans
        ),
        (0, 1, 3, 0)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(s.consecutive_failures, 1);
    assert_eq!(s.exporters[0].failed_batches, 1);
}

#[test]
fn retries_stop_at_max_attempts() {
    let calls = Arc::new(AtomicUsize::new(0));
    let flaky = Flaky {
        calls: Arc::clone(&calls),
        fail: usize::MAX,
        retryable: true,
        inner: InMemoryExporter::new(),
    };
    let p = start(
        ExportConfig {
            retry: fast_retry(),
            ..Default::default()
        },
        vec![Box::new(flaky)],
    );
    for s in traces(1, 1, 2) {
        p.submit(s);
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let s = p.stats();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!((s.retries, s.failed_batches), (3, 1));
}

struct Panicky(AtomicUsize, InMemoryExporter);
impl Exporter for Panicky {
    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("exporter bug");
        }
        self.1.export(batch)
    }
}

#[test]
fn a_panicking_exporter_is_caught_counted_and_the_pipeline_goes_on() {
    let mem = InMemoryExporter::new();
    let p = start(
        ExportConfig {
            max_export_workers: 1,
            ..Default::default()
        },
        vec![Box::new(Panicky(AtomicUsize::new(0), mem.clone()))],
    );
    for s in traces(1, 1, 3) {
        p.submit(s);
    }
    p.flush(Duration::from_secs(20)).unwrap();
    for s in traces(11, 1, 3) {
        p.submit(s);
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let s = p.stats();
    assert_eq!((s.panics, s.failed_batches, s.exported_batches), (1, 1, 1));
    assert!(s.last_error.unwrap().contains("exporter bug"));
    assert_eq!(mem.len(), 3);
}

/// Never returns until released.
#[derive(Clone, Default)]
struct Hung(Arc<AtomicBool>);
impl Exporter for Hung {
    fn name(&self) -> &str {
        "hung"
    }
    fn export(&self, _: &[Span]) -> Result<(), ExportError> {
        while !self.0.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

#[test]
fn a_hung_exporter_times_out_is_counted_and_never_blocks_submit() {
    let hung = Hung::default();
    let config = ExportConfig {
        export_timeout_seconds: 0.05,
        max_export_workers: 1,
        batch_size: 4,
        max_queue_size: 16,
        ..Default::default()
    };
    let p = start(config, vec![Box::new(hung.clone())]);
    for s in traces(1, 1, 4) {
        p.submit(s);
    }
    wait_until("a timeout", || p.stats().timeouts >= 1);
    // The queue is small and the exporter is stuck: submits keep returning at once.
    let mut refused = 0;
    for s in traces(100, 400, 5) {
        refused += usize::from(!p.submit(s));
    }
    assert_eq!(p.stats().dropped_queue_full, refused as u64);
    let s = p.stats();
    assert!(s.failed_batches >= 1 && s.exporters[0].timeouts >= 1);
    assert!(s.last_error.unwrap().contains("did not return within"));
    hung.0.store(true, Ordering::Release);
    wait_until("hung calls to return", || {
        p.stats().exporters[0].hung_calls == 0
    });
    p.flush(Duration::from_secs(20)).unwrap();
}

#[test]
fn without_async_export_batches_wait_for_flush() {
    let mem = InMemoryExporter::new();
    let config = ExportConfig {
        async_export: false,
        batch_size: 4,
        max_queue_size: 4096,
        ..Default::default()
    };
    let p = start(config, vec![Box::new(mem.clone())]);
    let spans = traces(0, 20, 5);
    for s in &spans {
        p.submit(s.clone());
    }
    wait_until("the stage to decide", || p.stats().kept_spans == 50);
    assert!(p.stats().pending_batches > 0);
    assert_eq!(mem.len(), 0, "nothing may be exported before flush");
    p.flush(Duration::from_secs(20)).unwrap();
    assert_eq!(mem.len(), 50);
    assert_eq!(p.stats().exported_spans, 50);
    let report = p.shutdown(Duration::from_secs(5));
    assert!(report.completed && mem.is_shut_down());
}

#[test]
fn batches_are_cut_at_batch_size_and_on_the_interval() {
    let mem = InMemoryExporter::new();
    let config = ExportConfig {
        batch_size: 10,
        export_interval_seconds: 0.05,
        ..Default::default()
    };
    let p = start(config, vec![Box::new(mem.clone())]);
    // One kept trace of 35 spans: three full batches at once, the rest on the interval.
    for s in traces(1, 1, 35) {
        p.submit(s);
    }
    wait_until("the interval to cut the partial batch", || mem.len() == 35);
    assert_eq!(mem.batches(), 4);
    wait_until("the counters", || p.stats().exported_batches == 4);
    assert_eq!(p.stats().exported_spans, 35);
}

/// Records the spans of each batch it gets.
#[derive(Clone, Default)]
struct BatchLog(Arc<Mutex<Vec<Vec<SpanId>>>>);

impl Exporter for BatchLog {
    fn name(&self) -> &str {
        "batch-log"
    }
    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        self.0
            .lock()
            .unwrap()
            .push(batch.iter().map(|s| s.span_id).collect());
        Ok(())
    }
}

#[test]
fn traces_straddling_batches_are_split_at_batch_size_exactly_once() {
    // The assembler appends a decided trace to the current batch in one go; traces of 3 spans
    // into batches of 4 must still be cut at 4, with nothing lost or repeated.
    let log = BatchLog::default();
    let config = ExportConfig {
        batch_size: 4,
        ..Default::default()
    };
    let p = start(config, vec![Box::new(log.clone())]);
    let spans = traces(0, 40, 3);
    let expected = kept(&spans);
    for s in spans {
        assert!(p.submit(s));
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let batches = log.0.lock().unwrap().clone();
    assert!(
        batches.iter().all(|b| !b.is_empty() && b.len() <= 4),
        "{batches:?}"
    );
    let full = batches.iter().filter(|b| b.len() == 4).count();
    assert!(full >= expected.len() / 4, "only {full} full batches");
    let exported: Vec<SpanId> = batches.into_iter().flatten().collect();
    let unique: HashSet<SpanId> = exported.iter().copied().collect();
    assert_eq!(unique.len(), exported.len(), "a span was exported twice");
    assert_eq!(unique, expected);
    assert_eq!(p.stats().kept_spans, expected.len() as u64);
}

#[test]
fn reconfigure_applies_live_fields_and_reports_restart_ones() {
    let mem = InMemoryExporter::new();
    let p = start(
        ExportConfig {
            batch_size: 1000,
            ..Default::default()
        },
        vec![Box::new(mem.clone())],
    );
    let mut report = ReconfigureReport::default();
    let next = ExportConfig {
        batch_size: 5,
        max_export_workers: 2,
        export_interval_seconds: 0.02,
        ..Default::default()
    };
    p.reconfigure_export(&next, &mut report).unwrap();
    assert_eq!(report.applied, ["batch_size", "export_interval_seconds"]);
    assert_eq!(report.restart_required, ["max_export_workers"]);
    assert_eq!(p.config().batch_size, 5);
    assert_eq!(
        p.config().max_export_workers,
        4,
        "worker count keeps its running value"
    );
    for s in traces(1, 1, 12) {
        p.submit(s);
    }
    wait_until("export with the new batch size and interval", || {
        mem.len() == 12
    });
    assert_eq!(mem.batches(), 3);
    let bad = ExportConfig {
        batch_size: 0,
        ..Default::default()
    };
    let err = p
        .reconfigure_export(&bad, &mut ReconfigureReport::default())
        .unwrap_err();
    assert!(err.to_string().contains("batch_size"));
    assert_eq!(p.config().batch_size, 5);
}

#[test]
fn shutdown_with_a_full_queue_loses_nothing_within_the_deadline() {
    let gate = Gate::default();
    let config = ExportConfig {
        batch_size: 16,
        max_queue_size: 256,
        max_export_workers: 2,
        ..Default::default()
    };
    let p = start(config, vec![Box::new(gate.clone())]);
    let spans = traces(0, 400, 4);
    let accepted: Vec<&Span> = spans.iter().filter(|s| p.submit((*s).clone())).collect();
    assert!(p.stats().dropped_queue_full > 0);
    assert!(p.stats().queue_depth > 0);
    gate.open.store(true, Ordering::Release);
    let report = p.shutdown(Duration::from_secs(30));
    assert!(report.completed, "{report:?}");
    assert_eq!(report.lost(), 0);
    let accepted_kept = accepted
        .iter()
        .filter(|s| s.trace_id.to_u128().is_multiple_of(2))
        .count();
    assert_eq!(gate.inner.len(), accepted_kept);
    assert_eq!(report.stats.exported_spans, accepted_kept as u64);
    // Closed now: further submits are refused and counted.
    assert!(!p.submit(Span::default()));
    assert_eq!(p.stats().dropped_after_shutdown, 1);
    assert_eq!(p.shutdown(Duration::from_secs(1)), report);
}

#[test]
fn shutdown_reports_what_a_hung_exporter_left_at_the_deadline() {
    let hung = Hung::default();
    let config = ExportConfig {
        batch_size: 4,
        max_export_workers: 1,
        ..Default::default()
    };
    let p = start(config, vec![Box::new(hung.clone())]);
    for s in traces(0, 10, 4) {
        p.submit(s);
    }
    wait_until("an export to start", || p.stats().kept_spans > 0);
    let started = Instant::now();
    let report = p.shutdown(Duration::from_millis(200));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!report.completed);
    assert!(report.lost() > 0, "{report:?}");
    hung.0.store(true, Ordering::Release);
}

#[test]
fn submit_is_lock_free_under_contention_and_counts_are_consistent() {
    let mem = InMemoryExporter::new();
    let p = Arc::new(start(
        ExportConfig {
            batch_size: 512,
            max_queue_size: 1024,
            ..Default::default()
        },
        vec![Box::new(mem.clone())],
    ));
    let refused = Arc::new(Mutex::new(0u64));
    let hs: Vec<_> = (0..4)
        .map(|i| {
            let p = Arc::clone(&p);
            let refused = Arc::clone(&refused);
            std::thread::spawn(move || {
                let mut r = 0;
                for s in traces(i * 1000, 1000, 5) {
                    r += u64::from(!p.submit(s));
                }
                *refused.lock().unwrap() += r;
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    p.flush(Duration::from_secs(20)).unwrap();
    let s = p.stats();
    assert_eq!(s.submitted, 20_000);
    assert_eq!(s.dropped_queue_full, *refused.lock().unwrap());
    assert_eq!(s.accepted + s.dropped_queue_full, 20_000);
    assert_eq!(
        s.accepted,
        s.sampled_out + s.exported_spans + s.buffered_spans
    );
}
