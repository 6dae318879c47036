//! [`SpanPipeline`]: the handle producers submit to, and its threads.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::{
    Receiver, RecvTimeoutError, Sender, TrySendError, bounded, select, unbounded,
};
use tta_core::{Clock, Span, SystemClock};
use tta_sampling::{CompositeSampler, SamplingConfig};

use crate::stage::{Assembler, Control, Decided, SamplerStage, Stage, StageExit, StageInputs};
use crate::stats::{Counters, ExporterCounters, add, get};
use crate::worker::{Batch, Exec, Shared, Slot, run_bounded, worker_loop};
use crate::{
    ExportConfig, ExportError, Exporter, PipelineStats, ReconfigureReport, ShutdownReport,
};

/// How long a producer waiting for room in a full queue waits at most between attempts,
/// once spinning and yielding did not make room (the stage wakes it sooner, when it has
/// drained half the queue).
const FULL_NAP: Duration = Duration::from_millis(1);

/// How long dropping a pipeline that was not shut down waits for it to drain.
pub const DROP_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

struct Threads {
    stage: Option<JoinHandle<StageExit>>,
    workers: Vec<JoinHandle<()>>,
}

/// The span pipeline: non-blocking [`submit`](Self::submit), a sampler stage thread that
/// assembles traces and applies tail sampling, a batcher, and export workers.
///
/// See the [crate docs](crate) for the data flow and an example.
pub struct SpanPipeline {
    spans_tx: Sender<Span>,
    /// Traces decided (and kept) by the caller, which skip the trace buffer.
    decided_tx: Sender<Decided>,
    /// The export workers' batch queue, for whole batches from the producers' shards;
    /// let go of at shutdown, so the queue closes once the stage has exited too.
    batch_tx: arc_swap::ArcSwapOption<Sender<Batch>>,
    /// Wakes the sampler stage early when the queue fills faster than it drains.
    wake_tx: Sender<()>,
    /// Queue depth at which a producer wakes an idle stage.
    wake_at: usize,
    /// Queue depth a producer waiting for room in a full queue waits for before it tries
    /// again (half the queue).
    resume_at: usize,
    ctl_tx: Sender<Control>,
    shared: Arc<Shared>,
    /// Kept to count what is left after shutdown; dropped then, so late submits see a closed
    /// queue.
    spans_rx: Mutex<Option<Receiver<Span>>>,
    batch_rx: Receiver<Batch>,
    /// Runs exports on the caller's thread in `flush` when `async_export` is off.
    sync_exec: Mutex<Exec>,
    threads: Mutex<Threads>,
    report: Mutex<Option<ShutdownReport>>,
    started: ExportConfig,
    capacity: usize,
    sampler: Option<Arc<CompositeSampler>>,
}

impl std::fmt::Debug for SpanPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanPipeline")
            .field("config", &self.started)
            .field(
                "exporters",
                &self
                    .shared
                    .slots
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values stay consistent across a panic (handles and plain data).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SpanPipeline {
    /// Starts the pipeline: validates both configs, then starts the sampler stage (which owns
    /// a [`TraceBuffer`](tta_sampling::TraceBuffer) built from `sampling` and decides with
    /// `sampler`, the same sampler the application uses for head decisions) and, with
    /// `async_export`, `max_export_workers` export workers.
    pub fn start(
        config: ExportConfig,
        sampler: Arc<CompositeSampler>,
        sampling: &SamplingConfig,
        exporters: Vec<Box<dyn Exporter>>,
    ) -> Result<Self, ExportError> {
        PipelineBuilder::new(config)
            .sampler(sampler)
            .sampling(sampling.clone())
            .exporters(exporters)
            .start()
    }

    /// A builder, for a custom clock or adding exporters one by one.
    pub fn builder(config: ExportConfig) -> PipelineBuilder {
        PipelineBuilder::new(config)
    }

    /// The sampler the stage decides with (share it for head decisions).
    pub fn sampler(&self) -> Option<&Arc<CompositeSampler>> {
        self.sampler.as_ref()
    }

    /// Applies what can change while running: `batch_size`, `export_interval_seconds`,
    /// `export_timeout_seconds`, `retry` and the whole sampling config (sampler and trace
    /// buffer). Changes to `max_queue_size`, `max_export_workers` and `async_export` are
    /// listed in [`ReconfigureReport::restart_required`] and keep their running values.
    ///
    /// Both configs are validated first; on an error nothing changes.
    pub fn reconfigure(
        &self,
        export: &ExportConfig,
        sampling: &SamplingConfig,
    ) -> Result<ReconfigureReport, ExportError> {
        export.validate()?;
        sampling
            .validate()
            .map_err(|e| ExportError::InvalidSamplingConfig {
                message: e.to_string(),
            })?;
        let mut report = ReconfigureReport::default();
        if let Some(sampler) = &self.sampler {
            let changed = *sampler.config() != *sampling;
            sampler.reconfigure(sampling.clone()).map_err(|e| {
                ExportError::InvalidSamplingConfig {
                    message: e.to_string(),
                }
            })?;
            if changed {
                report.applied.push("sampling");
            }
        }
        self.reconfigure_export(export, &mut report)?;
        let _ = self
            .ctl_tx
            .send(Control::Reconfigure(Some(Box::new(sampling.clone()))));
        Ok(report)
    }

    pub(crate) fn start_with<A: Assembler>(
        config: ExportConfig,
        asm: A,
        exporters: Vec<Box<dyn Exporter>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ExportError> {
        config.validate()?;
        let slots: Vec<Arc<Slot>> = exporters
            .into_iter()
            .map(|exporter| {
                Arc::new(Slot {
                    name: exporter.name().to_owned(),
                    exporter,
                    counters: ExporterCounters::default(),
                })
            })
            .collect();
        // Enough exported batch vectors to keep for reuse to cover the batches in flight.
        let spare_batches = bounded(
            2 * config
                .max_queue_size
                .div_ceil(config.batch_size.max(1))
                .max(2)
                + config.max_export_workers,
        );
        let shared = Arc::new(Shared {
            config: ArcSwap::from_pointee(config.clone()),
            counters: Counters::new(),
            slots,
            outstanding: Mutex::new(Default::default()),
            outstanding_changed: Condvar::new(),
            shutdown_deadline: Mutex::new(None),
            buffer_stats: ArcSwap::from_pointee(Default::default()),
            stage_idle: crate::stats::Padded(std::sync::atomic::AtomicBool::new(false)),
            shedding: std::sync::atomic::AtomicBool::new(false),
            room_waiters: std::sync::atomic::AtomicUsize::new(0),
            room: (Mutex::new(()), Condvar::new()),
            shards: crate::shard::shards(),
            shards_closed: std::sync::atomic::AtomicBool::new(false),
            epoch: Instant::now(),
            batch_size: std::sync::atomic::AtomicUsize::new(config.batch_size.max(1)),
            last_seq: std::sync::atomic::AtomicU64::new(0),
            spare_batches,
            max_hung: (config.max_export_workers as u64 * 2).max(4),
        });
        let capacity = config.max_queue_size;
        let (spans_tx, spans_rx) = bounded(capacity);
        let (ctl_tx, ctl_rx) = unbounded();
        let (wake_tx, wake_rx) = bounded(1);
        // Caller-decided traces: a quarter of the span queue's size in traces (many are a
        // single span, the tracing layer's kept requests).
        let (decided_tx, decided_rx) = bounded((capacity / 4).max(16));
        let batch_capacity = capacity.div_ceil(config.batch_size.max(1)).max(2);

        let (batch_tx, batch_rx) = bounded(batch_capacity);
        let shard_batch_tx = batch_tx.clone();

        let stage = Stage::new(
            StageInputs {
                spans: spans_rx.clone(),
                ctl: ctl_rx,
                wake: wake_rx,
                decided: decided_rx,
            },
            batch_tx,
            asm,
            Arc::clone(&shared),
            clock,
        );
        let stage = spawn("tta-export-stage".into(), move || stage.run())?;
        let mut threads = Threads {
            stage: Some(stage),
            workers: Vec::new(),
        };
        if config.async_export {
            for i in 0..config.max_export_workers {
                let name = format!("tta-export-worker-{i}");
                let exec = Exec::new(Arc::clone(&shared), name.clone());
                let rx = batch_rx.clone();
                match spawn(name, move || worker_loop(exec, rx)) {
                    Ok(h) => threads.workers.push(h),
                    Err(e) => {
                        // Stop what was started before reporting the error.
                        *lock(&shared.shutdown_deadline) = Some(Instant::now());
                        let _ = ctl_tx.send(Control::Shutdown(Instant::now()));
                        return Err(e);
                    }
                }
            }
        }
        let sync_exec = Mutex::new(Exec::new(Arc::clone(&shared), "tta-export-flush".into()));
        Ok(Self {
            decided_tx,
            batch_tx: arc_swap::ArcSwapOption::from_pointee(shard_batch_tx),
            wake_at: (capacity / 32).max(1),
            resume_at: capacity / 2,
            wake_tx,
            spans_tx,
            ctl_tx,
            shared,
            spans_rx: Mutex::new(Some(spans_rx)),
            batch_rx,
            sync_exec,
            threads: Mutex::new(threads),
            report: Mutex::new(None),
            started: config,
            capacity,
            sampler: None,
        })
    }

    /// Hands a finished span to the pipeline: `true` if it was queued, `false` if the queue
    /// was full or the pipeline is shut down (counted in
    /// [`PipelineStats::dropped_queue_full`] / [`PipelineStats::dropped_after_shutdown`]).
    ///
    /// Never waits for a lock and allocates nothing per span. A span of a trace that is
    /// certainly kept (threshold 0, or the sampler keeps every trace now) is appended to a
    /// batch of this thread's shard (one attempt at an uncontended lock; the vector is
    /// reused from an exported batch) and reaches the stage with its batch; any other span
    /// takes one attempt on a bounded lock-free queue. With
    /// the default `queue_full_wait_ms = 0` it never waits; otherwise a full queue makes it
    /// wait for the sampler stage to make room, giving up after that long without progress
    /// (counted in [`PipelineStats::waited_queue_full`]), and never while the stage itself
    /// waits for the exporters (see [`ExportConfig::queue_full_wait_ms`]).
    #[inline]
    pub fn submit(&self, span: Span) -> bool {
        // A span of a trace that is certainly kept skips the stage (see the `shard` module).
        let span = match &self.sampler {
            Some(sampler) if sampler.certainly_keeps(&span) => match self.pass(span, sampler) {
                Ok(()) => return true,
                Err(span) => span,
            },
            _ => span,
        };
        self.enqueue(span)
    }

    /// Appends a certainly-kept span to this thread's shard; gives it back when the shard
    /// is taken, closed or full.
    // The span comes back by value to take the queue's way: boxing it would allocate.
    #[allow(clippy::result_large_err)]
    #[inline]
    fn pass(&self, mut span: Span, sampler: &CompositeSampler) -> Result<(), Span> {
        use std::sync::atomic::Ordering::{Acquire, Relaxed};
        let shared = &*self.shared;
        let shard = &shared.shards[tta_core::thread_stripe() % crate::shard::SHARDS];
        let mut yielded = false;
        let mut spans = loop {
            let Some(mut spans) = shard.spans.try_lock() else {
                return Err(span);
            };
            // Checked under the shard's lock: the stage closes the shards and then empties
            // each under its lock, so a span added here is never left behind.
            if shared.shards_closed.load(Acquire) {
                return Err(span);
            }
            let batch_size = shared.batch_size.load(Relaxed);
            if spans.current.len() < batch_size || self.shelve(&mut spans) {
                break spans;
            }
            // As many spans wait here as the queue holds: the workers are behind. Let them
            // have the CPU for a moment (not holding the shard), then send what fits; if
            // still nothing fits, this span takes the queue's way.
            if yielded {
                return Err(span);
            }
            drop(spans);
            std::thread::yield_now();
            yielded = true;
            if let Some(mut spans) = shard.spans.try_lock() {
                self.send_full(&mut spans, usize::MAX);
            }
        };
        let batch_size = shared.batch_size.load(Relaxed);
        if spans.current.is_empty() {
            self.open_batch(&mut spans, shard, batch_size);
        }
        sampler.record_passed(&mut span);
        spans.current.push(span);
        if spans.current.len() >= batch_size || !spans.full.is_empty() {
            self.send_full(&mut spans, batch_size);
        }
        shard.queued.store(spans.len(), Relaxed);
        if spans.len() == 0 {
            shard.since.store(0, Relaxed);
        }
        Ok(())
    }

    /// Starts a batch in a shard (in a vector a worker handed back when there is one) and,
    /// if the shard was empty, notes when its first span came.
    #[cold]
    fn open_batch(
        &self,
        spans: &mut crate::shard::ShardSpans,
        shard: &crate::shard::Shard,
        batch_size: usize,
    ) {
        let shared = &*self.shared;
        if spans.current.capacity() == 0
            && let Ok(mut spare) = shared.spare_batches.1.try_recv()
        {
            spare.clear();
            spans.current = spare;
        }
        spans.current.reserve(batch_size);
        if spans.full.is_empty() {
            shard
                .since
                .store(shared.now_nanos(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Moves a shard's full current batch to its waiting ones; `false` when as many spans
    /// as the queue holds already wait there.
    #[cold]
    fn shelve(&self, spans: &mut crate::shard::ShardSpans) -> bool {
        if spans.len() >= self.capacity {
            return false;
        }
        let full = std::mem::take(&mut spans.current);
        spans.full_spans += full.len();
        spans.full.push_back(full);
        true
    }

    /// Sends a shard's full batches (the waiting ones first) to the export workers while
    /// their queue has room.
    #[cold]
    fn send_full(&self, spans: &mut crate::shard::ShardSpans, batch_size: usize) {
        if spans.current.len() >= batch_size {
            self.shelve(spans);
        }
        let batch_tx = self.batch_tx.load();
        let Some(batch_tx) = batch_tx.as_deref() else {
            return;
        };
        let shared = &*self.shared;
        while !batch_tx.is_full() {
            let Some(full) = spans.full.pop_front() else {
                return;
            };
            let n = full.len();
            // Numbered and outstanding before it is sent, so a flush waits for it.
            let seq = shared.next_seq();
            shared.begin_batch(seq, n as u64);
            let batch = Batch {
                seq,
                spans: Arc::new(full),
            };
            match batch_tx.try_send(batch) {
                Ok(()) => {
                    spans.full_spans -= n;
                    shared.counters.add_passed(n as u64);
                }
                Err(e) => {
                    shared.end_batch(seq);
                    if let Ok(back) = Arc::try_unwrap(e.into_inner().spans) {
                        spans.full.push_front(back);
                    }
                    return;
                }
            }
        }
    }

    /// The span queue's way into the pipeline (see [`submit`](Self::submit)).
    #[inline]
    fn enqueue(&self, span: Span) -> bool {
        match self.spans_tx.try_send(span) {
            Ok(()) => {
                // The stage drains on a short tick instead of parking on the queue, so a
                // send costs no wake-up; only when the queue fills up is it woken at once.
                if self
                    .shared
                    .stage_idle
                    .load(std::sync::atomic::Ordering::Relaxed)
                    && self.spans_tx.len() >= self.wake_at
                {
                    let _ = self.wake_tx.try_send(());
                }
                true
            }
            Err(TrySendError::Full(span)) => self.submit_full(span),
            Err(TrySendError::Disconnected(_)) => {
                add(&self.shared.counters.dropped_after_shutdown, 1);
                false
            }
        }
    }

    /// The queue was full: wake the stage, wait for room if `queue_full_wait_ms` allows it,
    /// otherwise drop and count.
    #[cold]
    #[inline(never)]
    fn submit_full(&self, span: Span) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        // A full queue must never leave the stage asleep until its next tick.
        if self.shared.stage_idle.load(Relaxed) {
            let _ = self.wake_tx.try_send(());
        }
        if !self.shared.shedding.load(Relaxed)
            && let Some(wait) = self.shared.config.load().queue_full_wait()
        {
            // Not a blocking send: a producer parked on the queue would make every read of
            // the stage pay for waking it. Spin briefly, then yield the CPU (on a busy
            // machine the stage may be waiting for it), then nap, until the stage has
            // drained half the queue: a producer retrying at every freed slot would go in
            // lock-step with the stage, both working on the same slot's cache lines, at a
            // fraction of the rate either reaches alone.
            let mut deadline = Instant::now() + wait;
            let mut taken = get(&self.shared.counters.received);
            let mut span = span;
            let mut round = 0u32;
            loop {
                if round < 5 {
                    for _ in 0..1u32 << round {
                        std::hint::spin_loop();
                    }
                } else if round < 8 {
                    std::thread::yield_now();
                } else {
                    self.wait_for_room(FULL_NAP);
                }
                round += 1;
                if self.spans_tx.len() <= self.resume_at {
                    match self.spans_tx.try_send(span) {
                        Ok(()) => {
                            add(&self.shared.counters.waited_full, 1);
                            return true;
                        }
                        Err(TrySendError::Full(s)) => span = s,
                        Err(TrySendError::Disconnected(_)) => {
                            add(&self.shared.counters.dropped_after_shutdown, 1);
                            return false;
                        }
                    }
                }
                if self.shared.stage_idle.load(Relaxed) {
                    let _ = self.wake_tx.try_send(());
                }
                let now = Instant::now();
                let progress = get(&self.shared.counters.received);
                if progress != taken {
                    // The stage is taking spans, only slower than they come: keep waiting.
                    taken = progress;
                    deadline = now + wait;
                }
                if now >= deadline || self.shared.shedding.load(Relaxed) {
                    // The stage took nothing for the whole wait: stop waiting until it runs again.
                    self.shared.shedding.store(true, Relaxed);
                    break;
                }
            }
        }
        add(&self.shared.counters.dropped_queue_full, 1);
        false
    }

    /// Waits until the queue is at most half full, the stage says so, or `limit` passed.
    fn wait_for_room(&self, limit: Duration) {
        use std::sync::atomic::Ordering::SeqCst;
        let (lock, room) = &self.shared.room;
        let until = Instant::now() + limit;
        let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.shared.room_waiters.fetch_add(1, SeqCst);
        while self.spans_tx.len() > self.resume_at {
            let now = Instant::now();
            if now >= until {
                break;
            }
            guard = room
                .wait_timeout(guard, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        self.shared.room_waiters.fetch_sub(1, SeqCst);
    }

    /// Hands over the spans of a trace whose sampling decision the caller already made and
    /// which it keeps (the tracing layer decides a local trace when its root ends), straight
    /// to the batcher: they skip the trace buffer. Spans should carry the keeping
    /// threshold in `sampling_threshold`. Never blocks; a full queue drops them and counts.
    pub fn submit_decided(&self, spans: Vec<Span>) -> bool {
        let n = spans.len() as u64;
        self.send_decided(Decided::Many(spans), n)
    }

    /// [`submit_decided`](Self::submit_decided) for a trace of one span: it travels
    /// without a vector, so the caller allocates nothing for it.
    pub fn submit_decided_span(&self, span: Span) -> bool {
        self.send_decided(Decided::One(span), 1)
    }

    fn send_decided(&self, trace: Decided, n: u64) -> bool {
        match self.decided_tx.try_send(trace) {
            Ok(()) => {
                if self
                    .shared
                    .stage_idle
                    .load(std::sync::atomic::Ordering::Relaxed)
                    && self.decided_tx.len() * 8 >= self.decided_tx.capacity().unwrap_or(8)
                {
                    let _ = self.wake_tx.try_send(());
                }
                true
            }
            Err(TrySendError::Full(_)) => {
                add(&self.shared.counters.dropped_queue_full, n);
                false
            }
            Err(TrySendError::Disconnected(_)) => {
                add(&self.shared.counters.dropped_after_shutdown, n);
                false
            }
        }
    }

    /// Counts spans of traces the caller decided to drop without submitting them, so
    /// `stats().submitted` and `sampled_out` still account for every span.
    pub fn record_sampled_out(&self, spans: u64) {
        self.shared.counters.decided_out.add(0, spans);
    }

    /// Decides every buffered trace now, cuts the partial batch, exports everything accepted
    /// before this call (on this thread when `async_export` is off) and flushes the exporters;
    /// gives up with [`ExportError::FlushTimeout`] after `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), ExportError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let timed_out = || ExportError::FlushTimeout {
            waited_ms: start.elapsed().as_millis() as u64,
        };
        let (tx, rx) = bounded(1);
        self.ctl_tx
            .send(Control::Flush(tx))
            .map_err(|_| ExportError::ShutDown)?;
        let target = if self.started.async_export {
            match rx.recv_deadline(deadline) {
                Ok(t) => t,
                Err(RecvTimeoutError::Timeout) => return Err(timed_out()),
                Err(RecvTimeoutError::Disconnected) => return Err(ExportError::ShutDown),
            }
        } else {
            let mut exec = lock(&self.sync_exec);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                select! {
                    recv(rx) -> t => match t {
                        Ok(t) => break t,
                        Err(_) => return Err(ExportError::ShutDown),
                    },
                    recv(self.batch_rx) -> b => if let Ok(b) = b { exec.export(b) },
                    default(left) => return Err(timed_out()),
                }
            }
        };
        if !self.started.async_export {
            let mut exec = lock(&self.sync_exec);
            while !self.shared.wait_batches_done(target, Instant::now()) {
                match self.batch_rx.recv_deadline(deadline) {
                    Ok(b) => exec.export(b),
                    Err(_) => break,
                }
            }
        }
        if !self.shared.wait_batches_done(target, deadline) {
            return Err(timed_out());
        }
        for slot in &self.shared.slots {
            let s = Arc::clone(slot);
            run_bounded(format!("flush-{}", slot.name), deadline, move || {
                s.exporter.flush()
            })?;
        }
        Ok(())
    }

    /// A snapshot of the counters (see [`PipelineStats`]).
    pub fn stats(&self) -> PipelineStats {
        let c = &self.shared.counters;
        let queue_depth = self.spans_tx.len();
        let batching_spans = self
            .shared
            .shards
            .iter()
            .map(|s| s.queued.load(std::sync::atomic::Ordering::Relaxed))
            .sum::<usize>();
        let dropped_queue_full = get(&c.dropped_queue_full);
        let dropped_after_shutdown = get(&c.dropped_after_shutdown);
        let passed = get(&c.passed);
        let accepted = get(&c.received) + passed + (queue_depth + batching_spans) as u64;
        let last_success = get(&c.last_success_unix_nanos);
        let decided_out = c.decided_out.get(0);
        PipelineStats {
            submitted: accepted + dropped_queue_full + dropped_after_shutdown + decided_out,
            accepted,
            dropped_queue_full,
            dropped_after_shutdown,
            waited_queue_full: get(&c.waited_full),
            sampled_out: get(&c.sampled_out) + decided_out,
            kept_spans: get(&c.kept_spans) + passed,
            buffered_spans: get(&c.buffered_spans),
            exported_spans: get(&c.exported_spans),
            exported_batches: get(&c.exported_batches),
            failed_spans: get(&c.failed_spans),
            failed_batches: get(&c.failed_batches),
            retries: get(&c.retries),
            timeouts: get(&c.timeouts),
            panics: get(&c.panics),
            queue_depth,
            batching_spans,
            queue_capacity: self.capacity,
            pending_batches: self.batch_rx.len(),
            export_latency_p50_ms: c.latency.quantile_ms(0.5),
            export_latency_p99_ms: c.latency.quantile_ms(0.99),
            export_latency_max_ms: c.latency.max_ms(),
            last_error: c.last_error.load_full().map(|s| (*s).clone()),
            last_success_unix_nanos: (last_success != 0).then_some(last_success),
            consecutive_failures: get(&c.consecutive_failures),
            exporters: self
                .shared
                .slots
                .iter()
                .map(|s| s.counters.snapshot(&s.name))
                .collect(),
            trace_buffer: (**self.shared.buffer_stats.load()).clone(),
        }
    }

    /// The export config in effect now.
    pub fn config(&self) -> ExportConfig {
        (**self.shared.config.load()).clone()
    }

    pub(crate) fn reconfigure_export(
        &self,
        config: &ExportConfig,
        report: &mut ReconfigureReport,
    ) -> Result<(), ExportError> {
        config.validate()?;
        let old = self.shared.config.load_full();
        let live: [(&'static str, bool); 5] = [
            ("batch_size", old.batch_size != config.batch_size),
            (
                "export_interval_seconds",
                old.export_interval_seconds != config.export_interval_seconds,
            ),
            (
                "export_timeout_seconds",
                old.export_timeout_seconds != config.export_timeout_seconds,
            ),
            ("retry", old.retry != config.retry),
            (
                "queue_full_wait_ms",
                old.queue_full_wait_ms != config.queue_full_wait_ms,
            ),
        ];
        let restart: [(&'static str, bool); 3] = [
            (
                "max_queue_size",
                self.started.max_queue_size != config.max_queue_size,
            ),
            (
                "max_export_workers",
                self.started.max_export_workers != config.max_export_workers,
            ),
            (
                "async_export",
                self.started.async_export != config.async_export,
            ),
        ];
        report
            .applied
            .extend(live.iter().filter(|(_, changed)| *changed).map(|(f, _)| *f));
        report.restart_required.extend(
            restart
                .iter()
                .filter(|(_, changed)| *changed)
                .map(|(f, _)| *f),
        );
        // Fields that need a restart keep their running values.
        let mut next = config.clone();
        next.max_queue_size = self.started.max_queue_size;
        next.max_export_workers = self.started.max_export_workers;
        next.async_export = self.started.async_export;
        self.shared
            .batch_size
            .store(next.batch_size.max(1), std::sync::atomic::Ordering::Relaxed);
        self.shared.config.store(Arc::new(next));
        // Wake the stage so a shorter interval or smaller batch takes effect now.
        let _ = self.ctl_tx.send(Control::Reconfigure(None));
        Ok(())
    }

    /// Stops accepting spans, decides and exports everything accepted, shuts the exporters
    /// down, and reports what could not be finished before `deadline` (a duration from now).
    ///
    /// Calling it again returns the first report.
    pub fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let mut report_slot = lock(&self.report);
        if let Some(r) = report_slot.as_ref() {
            return r.clone();
        }
        let start = Instant::now();
        let deadline = start + deadline;
        *lock(&self.shared.shutdown_deadline) = Some(deadline);
        // Producers stop sending whole batches from their shards; the workers' queue closes
        // when the stage lets go of it.
        self.batch_tx.store(None);
        let _ = self.ctl_tx.send(Control::Shutdown(deadline));
        let mut threads = lock(&self.threads);

        if !self.started.async_export {
            // Export on this thread while the stage drains.
            let mut exec = lock(&self.sync_exec);
            while let Ok(b) = self.batch_rx.recv_deadline(deadline) {
                exec.export(b);
            }
        }
        let mut handles: Vec<JoinHandle<()>> = std::mem::take(&mut threads.workers);
        wait_finished(&mut handles, deadline);
        let stage_exit = match threads.stage.take() {
            Some(h) => {
                let mut hs = vec![h];
                wait_finished(&mut hs, deadline + Duration::from_millis(50));
                hs.pop()
                    .and_then(|h| if h.is_finished() { h.join().ok() } else { None })
            }
            None => None,
        };
        // Close the queue: later submits fail fast and are counted. Spans the stage did not
        // take from the shards (it ran out of time) are left in the queue too.
        self.shared
            .shards_closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let left_in_shards: u64 = self
            .shared
            .shards
            .iter()
            .map(|shard| {
                let mut spans = shard.spans.lock();
                shard.queued.store(0, std::sync::atomic::Ordering::Relaxed);
                let n = spans.len() as u64;
                spans.take_all();
                n
            })
            .sum();
        let left_in_queue = left_in_shards
            + match lock(&self.spans_rx).take() {
                Some(rx) => rx.len() as u64,
                None => 0,
            };
        let mut left_in_batches = 0;
        while let Ok(b) = self.batch_rx.try_recv() {
            left_in_batches += b.spans.len() as u64;
            self.shared.end_batch(b.seq);
        }
        let (left_in_buffer, unsent) = match stage_exit {
            Some(e) => (e.left_in_buffer, e.unsent_spans),
            None => (get(&self.shared.counters.buffered_spans), 0),
        };
        let in_flight = self.shared.outstanding_spans();
        let mut exporter_errors = Vec::new();
        let finish_by = deadline.max(Instant::now() + Duration::from_millis(100));
        for slot in &self.shared.slots {
            let s = Arc::clone(slot);
            if let Err(e) = run_bounded(format!("shutdown-{}", slot.name), finish_by, move || {
                s.exporter.shutdown()
            }) {
                exporter_errors.push(format!("{}: {e}", slot.name));
            }
        }
        let stats = self.stats();
        let report = ShutdownReport {
            completed: left_in_queue + left_in_buffer + left_in_batches + unsent + in_flight == 0,
            elapsed_ms: start.elapsed().as_millis() as u64,
            left_in_queue,
            left_in_buffer,
            left_in_batches: left_in_batches + unsent,
            in_flight,
            exporter_errors,
            stats,
        };
        *report_slot = Some(report.clone());
        report
    }

    /// Whether [`shutdown`](Self::shutdown) has run.
    pub fn is_shut_down(&self) -> bool {
        lock(&self.report).is_some()
    }
}

impl Drop for SpanPipeline {
    fn drop(&mut self) {
        if !self.is_shut_down() {
            let _ = self.shutdown(DROP_SHUTDOWN_DEADLINE);
        }
    }
}

/// Builds a [`SpanPipeline`].
///
/// ```
/// use std::time::Duration;
/// use tta_export::{ExportConfig, InMemoryExporter, SpanPipeline};
/// use tta_sampling::SamplingConfig;
///
/// let exporter = InMemoryExporter::new();
/// let pipeline = SpanPipeline::builder(ExportConfig::default())
///     .sampling(SamplingConfig { default_rate: 1.0, adaptive_enabled: false, ..Default::default() })
///     .exporter(exporter.clone())
///     .start()?;
/// pipeline.submit(tta_core::Span { trace_id: tta_core::TraceId::random(), ..Default::default() });
/// pipeline.flush(Duration::from_secs(10))?;
/// assert_eq!(exporter.len(), 1);
/// # Ok::<(), tta_export::ExportError>(())
/// ```
pub struct PipelineBuilder {
    config: ExportConfig,
    sampler: Option<Arc<CompositeSampler>>,
    sampling: Option<SamplingConfig>,
    exporters: Vec<Box<dyn Exporter>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PipelineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("config", &self.config)
            .field("sampling", &self.sampling)
            .field(
                "exporters",
                &self
                    .exporters
                    .iter()
                    .map(|e| e.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl PipelineBuilder {
    /// A builder with `config`, no exporters, the system clock and, unless set, a sampler
    /// built from the sampling config.
    pub fn new(config: ExportConfig) -> Self {
        Self {
            config,
            sampler: None,
            sampling: None,
            exporters: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The sampler to decide with (shared with the application's head decisions). Default: a
    /// new one from the sampling config.
    pub fn sampler(mut self, sampler: Arc<CompositeSampler>) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// The trace buffer's config (wait times, byte budget). Default: the sampler's config.
    pub fn sampling(mut self, sampling: SamplingConfig) -> Self {
        self.sampling = Some(sampling);
        self
    }

    /// Adds an exporter; every batch goes to every exporter, in order.
    pub fn exporter(mut self, exporter: impl Exporter + 'static) -> Self {
        self.exporters.push(Box::new(exporter));
        self
    }

    /// Adds several exporters.
    pub fn exporters(mut self, exporters: Vec<Box<dyn Exporter>>) -> Self {
        self.exporters.extend(exporters);
        self
    }

    /// The clock the trace buffer's deadlines are measured with (default: system time).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validates the configs and starts the threads.
    pub fn start(self) -> Result<SpanPipeline, ExportError> {
        let sampling = match (&self.sampling, &self.sampler) {
            (Some(s), _) => s.clone(),
            (None, Some(sampler)) => (*sampler.config()).clone(),
            (None, None) => SamplingConfig::default(),
        };
        sampling
            .validate()
            .map_err(|e| ExportError::InvalidSamplingConfig {
                message: e.to_string(),
            })?;
        let sampler = match self.sampler {
            Some(s) => s,
            None => Arc::new(CompositeSampler::new(sampling.clone())),
        };
        let asm = SamplerStage::new(Arc::clone(&sampler), &sampling);
        let mut pipeline = SpanPipeline::start_with(self.config, asm, self.exporters, self.clock)?;
        pipeline.sampler = Some(sampler);
        Ok(pipeline)
    }
}

fn spawn<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, ExportError> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(f)
        .map_err(|source| ExportError::Spawn {
            thread: name,
            source,
        })
}

/// Joins the threads that finish before `deadline`; the rest are left running (detached).
fn wait_finished<T>(handles: &mut [JoinHandle<T>], deadline: Instant) {
    let mut sleep = Duration::from_micros(100);
    loop {
        if handles.iter().all(JoinHandle::is_finished) || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(sleep.min(deadline.saturating_duration_since(Instant::now())));
        sleep = (sleep * 2).min(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests;
