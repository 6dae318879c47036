//! Spans of certainly-kept traces skip the sampler stage: producers fill batches in their
//! threads' shards and send them to the workers whole. Nothing may be lost or doubled on
//! that path: full batches, partial ones taken on the export interval, flush and shutdown,
//! and a workers' queue with no room.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use tta_core::{Span, SpanId};
use tta_export::{ExportConfig, ExportError, Exporter, InMemoryExporter};

use crate::pipeline::{start, traces, wait_until};

/// Eight threads at rate 1 (every span certainly kept), batches of 64: every span is
/// exported exactly once, the counters add up, and nothing waits anywhere after the flush.
#[test]
fn many_threads_through_their_shards_export_every_span_once() {
    let mem = InMemoryExporter::new();
    let config = ExportConfig {
        batch_size: 64,
        max_queue_size: 256,
        queue_full_wait_ms: 1_000.0,
        ..Default::default()
    };
    let p = Arc::new(start(config, 1.0, vec![Box::new(mem.clone())]));
    let all = traces(1_600, 5);
    let want: HashSet<SpanId> = all.iter().map(|s| s.span_id).collect();
    let barrier = Arc::new(Barrier::new(8));
    let hs: Vec<_> = all
        .chunks(1_000)
        .map(|part| {
            let (p, b, part) = (Arc::clone(&p), Arc::clone(&barrier), part.to_vec());
            std::thread::spawn(move || {
                b.wait();
                part.into_iter().filter(|s| !p.submit(s.clone())).count()
            })
        })
        .collect();
    let refused: usize = hs.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(refused, 0);
    p.flush(Duration::from_secs(30)).unwrap();
    let got: Vec<SpanId> = mem.spans().iter().map(|s| s.span_id).collect();
    assert_eq!(got.len(), want.len(), "each span exported once");
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), want);
    let st = p.stats();
    assert_eq!(
        (st.submitted, st.accepted, st.kept_spans, st.exported_spans),
        (8_000, 8_000, 8_000, 8_000)
    );
    assert_eq!(
        (st.queue_depth, st.batching_spans, st.dropped_queue_full),
        (0, 0, 0)
    );
    assert!(mem.spans().iter().all(|s| s.sampling_threshold == Some(0)));
    assert_eq!(p.shutdown(Duration::from_secs(5)).lost(), 0);
}

/// A partial batch in a shard goes out on the export interval, without a flush.
#[test]
fn a_partial_batch_in_a_shard_is_exported_on_the_interval() {
    let mem = InMemoryExporter::new();
    let config = ExportConfig {
        batch_size: 512,
        // Long enough that the stage cannot take the batch before the counts are read.
        export_interval_seconds: 0.5,
        ..Default::default()
    };
    let p = start(config, 1.0, vec![Box::new(mem.clone())]);
    for s in traces(3, 2) {
        assert!(p.submit(s));
    }
    let st = p.stats();
    assert_eq!(
        (st.queue_depth, st.batching_spans),
        (0, 6),
        "waiting in the shard"
    );
    assert_eq!(st.accepted, 6);
    wait_until("the interval's batch", || mem.len() == 6);
    assert_eq!(p.stats().batching_spans, 0);
    assert_eq!(p.shutdown(Duration::from_secs(5)).lost(), 0);
}

/// Shutdown takes what producers left in their shards (partial batches, from threads that
/// are gone) and exports it; later submits are refused and counted.
#[test]
fn shutdown_exports_what_the_shards_hold() {
    let mem = InMemoryExporter::new();
    let config = ExportConfig {
        batch_size: 100,
        ..Default::default()
    };
    let p = Arc::new(start(config, 1.0, vec![Box::new(mem.clone())]));
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let p = Arc::clone(&p);
            // 250 spans each: two whole batches and a partial one per thread.
            std::thread::spawn(move || traces(50, 5).into_iter().all(|s| p.submit(s)))
        })
        .collect();
    for h in hs {
        assert!(h.join().unwrap());
    }
    let report = p.shutdown(Duration::from_secs(10));
    assert!(report.completed, "{report:?}");
    assert_eq!(report.lost(), 0);
    assert_eq!(mem.len(), 750);
    assert_eq!(report.stats.exported_spans, 750);
    assert!(!p.submit(Span::default()));
    assert_eq!(p.stats().dropped_after_shutdown, 1);
}

/// An exporter that holds every batch until released.
#[derive(Debug, Clone)]
struct Gate {
    open: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    inner: InMemoryExporter,
}

impl Exporter for Gate {
    fn name(&self) -> &str {
        "gate"
    }
    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        let (lock, cv) = &*self.open;
        let mut open = lock.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
        self.inner.export(batch)
    }
}

/// With the workers stuck and their queue full, full batches wait in the shard (up to
/// `max_queue_size` spans), then spans take the span queue's way and its full-queue rule
/// (drop, counted); once the workers go on, everything accepted is exported exactly once.
#[test]
fn full_batches_wait_in_the_shard_while_the_workers_are_behind() {
    let gate = Gate {
        open: Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new())),
        inner: InMemoryExporter::new(),
    };
    let config = ExportConfig {
        batch_size: 10,
        max_queue_size: 40,
        max_export_workers: 1,
        export_timeout_seconds: 60.0,
        ..Default::default()
    };
    let p = start(config, 1.0, vec![Box::new(gate.clone())]);
    let spans = traces(200, 5);
    let accepted: Vec<SpanId> = spans
        .iter()
        .filter(|s| p.submit((*s).clone()))
        .map(|s| s.span_id)
        .collect();
    let st = p.stats();
    assert!(st.dropped_queue_full > 0, "{st:?}");
    assert_eq!(accepted.len() as u64 + st.dropped_queue_full, 1_000);
    {
        let (lock, cv) = &*gate.open;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
    p.flush(Duration::from_secs(30)).unwrap();
    let got: Vec<SpanId> = gate.inner.spans().iter().map(|s| s.span_id).collect();
    assert_eq!(
        got.len(),
        accepted.len(),
        "each accepted span exported once"
    );
    assert_eq!(
        got.into_iter().collect::<HashSet<_>>(),
        accepted.into_iter().collect::<HashSet<_>>()
    );
    assert_eq!(p.shutdown(Duration::from_secs(5)).lost(), 0);
}
