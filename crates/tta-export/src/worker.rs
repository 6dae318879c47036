//! Export execution: one batch to every exporter, each call on a helper ("runner") thread so a
//! panic is caught and a hung call is abandoned at the deadline; retries with backoff.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use tta_core::Span;

use crate::stats::{Counters, ExporterCounters, add, get};
use crate::{ExportConfig, ExportError, Exporter};

/// A cut batch on its way to the exporters.
pub(crate) struct Batch {
    pub(crate) seq: u64,
    pub(crate) spans: Arc<Vec<Span>>,
}

/// One exporter with its counters.
pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) exporter: Box<dyn Exporter>,
    pub(crate) counters: ExporterCounters,
}

/// Everything the stage, the workers and the handle share.
pub(crate) struct Shared {
    pub(crate) config: ArcSwap<ExportConfig>,
    pub(crate) counters: Counters,
    pub(crate) slots: Vec<Arc<Slot>>,
    /// Sequence numbers of batches cut but not yet finished (exported or failed).
    pub(crate) outstanding: Mutex<std::collections::BTreeMap<u64, u64>>,
    pub(crate) outstanding_changed: Condvar,
    /// Set once shutdown starts: no export may wait past it.
    pub(crate) shutdown_deadline: Mutex<Option<Instant>>,
    /// Most abandoned calls per exporter before new ones are refused.
    pub(crate) max_hung: u64,
    /// The trace buffer's counters, published by the stage.
    pub(crate) buffer_stats: ArcSwap<tta_sampling::TraceBufferStats>,
    /// Set while the sampler stage waits between queue drains; producers that find the
    /// queue filling up wake it (see `SpanPipeline::submit`).
    pub(crate) stage_idle: crate::stats::Padded<std::sync::atomic::AtomicBool>,
    /// Set while a full queue must drop at once even with `queue_full_wait_ms`: the stage is
    /// waiting for the export workers, or a producer's wait saw it take nothing. The stage
    /// clears it each time its drain loop runs.
    pub(crate) shedding: std::sync::atomic::AtomicBool,
    /// Producers waiting for room in a full queue (with `queue_full_wait_ms`); the stage
    /// wakes them through `room` once it has drained half the queue.
    pub(crate) room_waiters: std::sync::atomic::AtomicUsize,
    pub(crate) room: (Mutex<()>, Condvar),
    /// Batches of certainly-kept spans being filled by producers (see the `shard` module).
    pub(crate) shards: Box<[crate::shard::Shard]>,
    /// Set when the stage starts its final drain: producers then leave the shards alone.
    pub(crate) shards_closed: std::sync::atomic::AtomicBool,
    /// When the pipeline started (the shards' clock).
    pub(crate) epoch: Instant,
    /// The last batch sequence number handed out (batches are cut by the stage and by
    /// producers filling shards).
    pub(crate) last_seq: std::sync::atomic::AtomicU64,
    /// `batch_size` from the config, for producers filling shards.
    pub(crate) batch_size: std::sync::atomic::AtomicUsize,
    /// Exported batch vectors the workers hand back, spans and all, for the stage or a
    /// producer's shard to empty and fill again: their memory stays in the caches instead of
    /// going back to the allocator (freed on one thread, allocated on another) at every
    /// batch, and the spans are dropped where they were written.
    pub(crate) spare_batches: (
        crossbeam_channel::Sender<Vec<Span>>,
        crossbeam_channel::Receiver<Vec<Span>>,
    ),
}

impl Shared {
    /// Wakes the producers waiting for room, if any (the stage calls this as it drains).
    #[inline]
    pub(crate) fn wake_room_waiters(&self, queued: usize, resume_at: usize) {
        if queued <= resume_at && self.room_waiters.load(Ordering::SeqCst) > 0 {
            self.notify_room();
        }
    }

    /// Nanoseconds since the pipeline started, at least 1.
    pub(crate) fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    #[cold]
    fn notify_room(&self) {
        let _guard = self.room.0.lock().unwrap_or_else(PoisonError::into_inner);
        self.room.1.notify_all();
    }

    pub(crate) fn shutdown_deadline(&self) -> Option<Instant> {
        *self
            .shutdown_deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A new batch's sequence number.
    pub(crate) fn next_seq(&self) -> u64 {
        self.last_seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn begin_batch(&self, seq: u64, spans: u64) {
        let mut g = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.insert(seq, spans);
    }

    pub(crate) fn end_batch(&self, seq: u64) {
        let mut g = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.remove(&seq);
        drop(g);
        self.outstanding_changed.notify_all();
    }

    /// Waits until no batch with a sequence number up to `seq` is outstanding.
    pub(crate) fn wait_batches_done(&self, seq: Option<u64>, deadline: Instant) -> bool {
        let Some(seq) = seq else { return true };
        let mut g = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if g.first_key_value().is_none_or(|(first, _)| *first > seq) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self
                .outstanding_changed
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub(crate) fn outstanding_spans(&self) -> u64 {
        let g = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.values().sum()
    }

    fn record_error(&self, slot: &Slot, err: &ExportError) {
        let text = Arc::new(format!("{}: {err}", slot.name));
        slot.counters.last_error.store(Some(Arc::clone(&text)));
        self.counters.last_error.store(Some(text));
    }
}

pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A uniformly random number in `[0, 1)` for jitter.
fn random_unit() -> f64 {
    (tta_core::SpanId::random().to_u64() >> 11) as f64 / (1u64 << 53) as f64
}

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

struct Job {
    slot: Arc<Slot>,
    spans: Arc<Vec<Span>>,
    state: Arc<AtomicU8>,
    reply: Sender<Result<(), ExportError>>,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

fn runner_loop(jobs: Receiver<Job>) {
    for job in jobs {
        let result = match catch_unwind(AssertUnwindSafe(|| job.slot.exporter.export(&job.spans))) {
            Ok(r) => r,
            Err(p) => Err(ExportError::Panicked {
                exporter: job.slot.name.clone(),
                message: panic_message(p.as_ref()),
            }),
        };
        if job
            .state
            .compare_exchange(RUNNING, DONE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // The worker gave up on this call; it counted the call as hung. Uncount it and
            // end this thread: the worker has started a fresh runner.
            job.slot.counters.hung.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let _ = job.reply.send(result);
    }
}

/// Runs exporter calls for one worker (or for `flush` without `async_export`).
pub(crate) struct Exec {
    shared: Arc<Shared>,
    runner: Option<Sender<Job>>,
    name: String,
}

impl Exec {
    pub(crate) fn new(shared: Arc<Shared>, name: String) -> Self {
        Self {
            shared,
            runner: None,
            name,
        }
    }

    fn runner(&mut self) -> Result<&Sender<Job>, ExportError> {
        if self.runner.is_none() {
            let (tx, rx) = unbounded();
            let thread = format!("{}-call", self.name);
            std::thread::Builder::new()
                .name(thread.clone())
                .spawn(move || runner_loop(rx))
                .map_err(|source| ExportError::Spawn { thread, source })?;
            self.runner = Some(tx);
        }
        self.runner.as_ref().ok_or(ExportError::ShutDown)
    }

    /// One call of one exporter, given up at `deadline`.
    fn call(
        &mut self,
        slot: &Arc<Slot>,
        spans: &Arc<Vec<Span>>,
        deadline: Instant,
    ) -> Result<(), ExportError> {
        let hung = get(&slot.counters.hung);
        if hung >= self.shared.max_hung {
            return Err(ExportError::Stuck {
                exporter: slot.name.clone(),
                stuck: hung as usize,
            });
        }
        let started = Instant::now();
        let state = Arc::new(AtomicU8::new(RUNNING));
        let (reply_tx, reply_rx) = bounded(1);
        let job = Job {
            slot: Arc::clone(slot),
            spans: Arc::clone(spans),
            state: Arc::clone(&state),
            reply: reply_tx,
        };
        if self.runner()?.send(job).is_err() {
            self.runner = None;
            return Err(ExportError::ShutDown);
        }
        match reply_rx.recv_deadline(deadline) {
            Ok(r) => r,
            Err(RecvTimeoutError::Disconnected) => {
                self.runner = None;
                Err(ExportError::ShutDown)
            }
            Err(RecvTimeoutError::Timeout) => {
                slot.counters.hung.fetch_add(1, Ordering::AcqRel);
                if state
                    .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    // It returned just now: take its answer after all.
                    slot.counters.hung.fetch_sub(1, Ordering::AcqRel);
                    return reply_rx.recv().unwrap_or(Err(ExportError::ShutDown));
                }
                // The runner ends itself when the call returns; use a new one from now on.
                self.runner = None;
                add(&slot.counters.timeouts, 1);
                add(&self.shared.counters.timeouts, 1);
                Err(ExportError::Timeout {
                    exporter: slot.name.clone(),
                    timeout_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                })
            }
        }
    }

    /// Exports one batch to one exporter with retries; `true` when it was accepted.
    fn export_to(&mut self, slot: &Arc<Slot>, spans: &Arc<Vec<Span>>) -> bool {
        let config = self.shared.config.load_full();
        let start = Instant::now();
        let mut deadline = start + config.export_timeout();
        if let Some(d) = self.shared.shutdown_deadline() {
            deadline = deadline.min(d);
        }
        let n = spans.len() as u64;
        let mut attempt = 1u32;
        loop {
            let result = self.call(slot, spans, deadline);
            let err = match result {
                Ok(()) => {
                    add(&slot.counters.exported_spans, n);
                    add(&slot.counters.exported_batches, 1);
                    slot.counters
                        .consecutive_failures
                        .store(0, Ordering::Relaxed);
                    return true;
                }
                Err(e) => e,
            };
            if matches!(err, ExportError::Panicked { .. }) {
                add(&slot.counters.panics, 1);
                add(&self.shared.counters.panics, 1);
            }
            let mut retry_at = None;
            if err.is_retryable() && attempt < config.retry.max_attempts {
                let backoff = config.retry.backoff_with_jitter(attempt, random_unit());
                let wait = err.retry_after().map_or(backoff, |ra| ra.max(backoff));
                let at = Instant::now() + wait;
                if at < deadline {
                    retry_at = Some(at);
                }
            }
            self.shared.record_error(slot, &err);
            if let Some(at) = retry_at {
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
            }
            // A backoff that overslept into the deadline ends here, so the batch fails with
            // the exporter's own error rather than a call that had no time left.
            if retry_at.is_none() || Instant::now() >= deadline {
                add(&slot.counters.failed_spans, n);
                add(&slot.counters.failed_batches, 1);
                add(&slot.counters.consecutive_failures, 1);
                return false;
            }
            attempt += 1;
            add(&slot.counters.retries, 1);
            add(&self.shared.counters.retries, 1);
        }
    }

    /// Exports one batch to every exporter and records the outcome.
    pub(crate) fn export(&mut self, batch: Batch) {
        let start = Instant::now();
        let slots = self.shared.slots.clone();
        let mut ok = true;
        for slot in &slots {
            ok &= self.export_to(slot, &batch.spans);
        }
        let c = &self.shared.counters;
        c.latency.record(start.elapsed());
        let n = batch.spans.len() as u64;
        if ok {
            add(&c.exported_spans, n);
            add(&c.exported_batches, 1);
            c.consecutive_failures.store(0, Ordering::Relaxed);
            c.last_success_unix_nanos
                .store(unix_nanos(), Ordering::Relaxed);
        } else {
            add(&c.failed_spans, n);
            add(&c.failed_batches, 1);
            add(&c.consecutive_failures, 1);
        }
        self.shared.end_batch(batch.seq);
        // An exporter still running past its timeout may hold the batch; then it is
        // dropped by whoever lets go of it last.
        // The spans are dropped by whoever reuses the vector: they are still in the caches
        // of the thread that wrote them, which is likely the one to fill it again.
        if let Ok(spans) = Arc::try_unwrap(batch.spans) {
            let _ = self.shared.spare_batches.0.try_send(spans);
        }
    }
}

/// Runs `f` on a fresh thread and waits for it until `deadline`; panics are caught.
pub(crate) fn run_bounded(
    what: String,
    deadline: Instant,
    f: impl FnOnce() -> Result<(), ExportError> + Send + 'static,
) -> Result<(), ExportError> {
    let (tx, rx) = bounded(1);
    let name = what.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("tta-export-{what}"))
        .spawn(move || {
            let r = match catch_unwind(AssertUnwindSafe(f)) {
                Ok(r) => r,
                Err(p) => Err(ExportError::Panicked {
                    exporter: name,
                    message: panic_message(p.as_ref()),
                }),
            };
            let _ = tx.send(r);
        });
    if let Err(source) = spawned {
        return Err(ExportError::Spawn {
            thread: format!("tta-export-{what}"),
            source,
        });
    }
    let waited = deadline.saturating_duration_since(Instant::now());
    match rx.recv_deadline(deadline) {
        Ok(r) => r,
        Err(_) => Err(ExportError::Timeout {
            exporter: what,
            timeout_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

/// The body of an export worker thread.
pub(crate) fn worker_loop(mut exec: Exec, batches: Receiver<Batch>) {
    loop {
        let deadline = exec.shared.shutdown_deadline();
        let next = match deadline {
            None => batches.recv_timeout(Duration::from_millis(200)),
            Some(d) if Instant::now() >= d => return,
            Some(d) => batches.recv_deadline(d),
        };
        match next {
            Ok(batch) => exec.export(batch),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
