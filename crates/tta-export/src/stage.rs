//! The sampler stage thread: takes submitted spans, assembles traces and lets the sampler
//! decide (through an [`Assembler`]), and cuts batches of kept spans for the export workers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, select};
use tta_core::{Clock, Span};
use tta_sampling::{CompositeSampler, SamplingConfig, TraceBuffer, TraceBufferStats};

use crate::worker::{Batch, Shared};

/// A trace the caller already decided to keep: a trace of one span travels without a
/// vector of its own (no allocation on the caller's thread, none freed on the stage's).
pub(crate) enum Decided {
    One(Span),
    Many(Vec<Span>),
}

/// What decides which spans are kept: the trace buffer plus the sampler, behind a small seam
/// so the stage loop can be tested on its own.
pub(crate) trait Assembler: Send + 'static {
    /// Takes one span; appends spans of traces that are now decided and kept to `out`.
    fn add(&mut self, span: Span, now_unix_nanos: u64, out: &mut Vec<Span>);
    /// Decides a span that needs no buffering in place: `true` if it is kept as it is (the
    /// caller moves it to the batch), `false` if it must go through [`add`](Self::add).
    fn try_pass(&mut self, _span: &mut Span) -> bool {
        false
    }
    /// Decides traces whose time is up.
    fn poll(&mut self, now_unix_nanos: u64, out: &mut Vec<Span>);
    /// Decides every buffered trace now.
    fn flush_all(&mut self, out: &mut Vec<Span>);
    /// When `poll` next has something to do.
    fn next_deadline(&self) -> Option<u64>;
    /// Applies a new sampling config to the buffer (wait times, budget).
    fn reconfigure(&mut self, sampling: &SamplingConfig);
    /// Buffer counters (spans buffered, kept, dropped).
    fn stats(&self) -> TraceBufferStats;
}

/// The real assembler: a [`TraceBuffer`] deciding with the shared [`CompositeSampler`],
/// emitting kept spans straight onto the caller's vector (no allocation per trace).
pub(crate) struct SamplerStage {
    buffer: TraceBuffer,
    sampler: Arc<CompositeSampler>,
}

impl SamplerStage {
    pub(crate) fn new(sampler: Arc<CompositeSampler>, sampling: &SamplingConfig) -> Self {
        Self {
            buffer: TraceBuffer::new(sampling),
            sampler,
        }
    }
}

impl Assembler for SamplerStage {
    #[inline(always)]
    fn add(&mut self, span: Span, now_unix_nanos: u64, out: &mut Vec<Span>) {
        self.buffer
            .add_flat(span, now_unix_nanos, &self.sampler, out);
    }
    #[inline(always)]
    fn try_pass(&mut self, span: &mut Span) -> bool {
        self.buffer.try_pass_through(span, &self.sampler)
    }
    fn poll(&mut self, now_unix_nanos: u64, out: &mut Vec<Span>) {
        self.buffer.poll_flat(now_unix_nanos, &self.sampler, out);
    }
    fn flush_all(&mut self, out: &mut Vec<Span>) {
        self.buffer.flush_all_flat(&self.sampler, out);
    }
    fn next_deadline(&self) -> Option<u64> {
        self.buffer.next_deadline()
    }
    fn reconfigure(&mut self, sampling: &SamplingConfig) {
        self.buffer.reconfigure(sampling);
    }
    fn stats(&self) -> TraceBufferStats {
        self.buffer.stats()
    }
}

/// Messages from the pipeline handle to the stage.
pub(crate) enum Control {
    /// Decide everything buffered, cut the partial batch, reply with the last batch number.
    Flush(Sender<Option<u64>>),
    /// Re-read the batching config; apply a new sampling config to the buffer if given.
    Reconfigure(Option<Box<SamplingConfig>>),
    /// Drain, decide, cut and exit before the deadline.
    Shutdown(Instant),
}

/// What the stage left behind when it exited.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StageExit {
    pub(crate) left_in_buffer: u64,
    pub(crate) unsent_spans: u64,
}

/// The channels the stage reads.
pub(crate) struct StageInputs {
    /// Ended spans from `submit`.
    pub(crate) spans: Receiver<Span>,
    /// Flush, reconfigure and shutdown requests.
    pub(crate) ctl: Receiver<Control>,
    /// Early wake-ups from producers.
    pub(crate) wake: Receiver<()>,
    /// Traces already decided by the caller.
    pub(crate) decided: Receiver<Decided>,
}

pub(crate) struct Stage<A> {
    pub(crate) spans: Receiver<Span>,
    pub(crate) ctl: Receiver<Control>,
    /// Early wake-ups from producers that found the span queue filling up.
    pub(crate) wake: Receiver<()>,
    /// Traces the caller already decided to keep; they skip the assembler.
    pub(crate) decided: Receiver<Decided>,
    pub(crate) batches: Sender<Batch>,
    /// Generic rather than boxed: a span passed by value through a trait object is copied
    /// once more on every call.
    pub(crate) asm: A,
    pub(crate) shared: Arc<Shared>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The batch being filled; the assembler appends kept spans to it directly.
    pub(crate) current: Vec<Span>,
    pub(crate) current_since: Option<Instant>,
    /// Kept spans of bulk decisions (poll, flush, caller-decided traces) before they are cut
    /// into batches.
    pub(crate) kept: Vec<Span>,
    /// `batch_size` from the config, re-read on every tick and reconfigure.
    pub(crate) batch_size: usize,
    /// Queue depth at which producers waiting for room are woken (half the queue).
    pub(crate) resume_at: usize,
    pub(crate) last_sent: Option<u64>,
    pub(crate) unsent_spans: u64,
    pub(crate) published: Option<Instant>,
    /// Spans taken off the queue (this thread is the only writer of the shared counter).
    pub(crate) received: u64,
    /// Kept spans moved into batches (this thread is the only writer of the shared counter).
    pub(crate) kept_count: u64,
}

/// Spans taken from the queue per clock read.
const BURST: usize = 1024;
/// Spans between the stage's looks for producers waiting for room in a full queue.
const ROOM_CHECK: usize = 64;
/// Most spans taken in one pass before the buffer's deadlines are polled.
const MAX_DRAIN: usize = 16 * BURST;
/// Shortest wait between queue drains, right after spans arrived.
const MIN_TICK: Duration = Duration::from_micros(200);
/// Longest wait between queue drains while the queue stays empty.
const MAX_TICK: Duration = Duration::from_millis(2);
/// Longest sleep, so a changed clock or config is noticed.
const MAX_SLEEP: Duration = Duration::from_millis(250);
/// How often a blocked batch hand-over checks the shutdown deadline.
const SEND_SLICE: Duration = Duration::from_millis(10);
/// How often the full trace-buffer stats are published for `stats()`.
const PUBLISH_EVERY: Duration = Duration::from_millis(20);

impl<A: Assembler> Stage<A> {
    pub(crate) fn new(
        StageInputs {
            spans,
            ctl,
            wake,
            decided,
        }: StageInputs,
        batches: Sender<Batch>,
        asm: A,
        shared: Arc<Shared>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let batch_size = shared.config.load().batch_size.max(1);
        let resume_at = spans.capacity().unwrap_or(0) / 2;
        Self {
            resume_at,
            spans,
            ctl,
            wake,
            decided,
            batches,
            asm,
            shared,
            clock,
            current: Vec::new(),
            current_since: None,
            kept: Vec::new(),
            batch_size,
            last_sent: None,
            unsent_spans: 0,
            published: None,
            received: 0,
            kept_count: 0,
        }
    }

    pub(crate) fn run(mut self) -> StageExit {
        // The stage never blocks on the span queue: a receiver parked on it would make every
        // `submit` pay for a wake-up (a mutex and a futex system call). Instead it drains
        // the queue, then waits on the control channel for a short tick that grows while the
        // queue stays empty and shrinks as soon as spans arrive.
        let mut tick = MIN_TICK;
        loop {
            self.batch_size = self.shared.config.load().batch_size.max(1);
            let mut took = self.drain_decided();
            match self.drain_spans(MAX_DRAIN) {
                Some(n) => took += n,
                None => return self.exit(None),
            }
            took += self.collect_shards(false);
            // The stage is draining again (not stuck handing a batch to the workers), so
            // producers may wait for room again.
            if self.shared.shedding.load(Ordering::Relaxed) {
                self.shared.shedding.store(false, Ordering::Relaxed);
            }
            tick = if took > 0 {
                MIN_TICK
            } else {
                (tick * 2).min(MAX_TICK)
            };
            let timeout = if took >= MAX_DRAIN {
                Duration::ZERO
            } else {
                self.sleep_for().min(tick)
            };
            self.shared
                .stage_idle
                .store(true, std::sync::atomic::Ordering::Relaxed);
            select! {
                recv(self.wake) -> _ => {}
                recv(self.ctl) -> msg => match msg {
                    Ok(Control::Flush(reply)) => {
                        self.drain_decided();
                        self.drain_queue(None);
                        self.collect_shards(true);
                        self.asm.flush_all(&mut self.kept);
                        self.absorb();
                        self.cut();
                        self.publish_all();
                        // Batches producers cut from their shards before this flush are
                        // numbered up to here.
                        let last = self.shared.last_seq.load(Ordering::SeqCst);
                        let _ = reply.send((last > 0).then_some(last).max(self.last_sent));
                        continue;
                    }
                    Ok(Control::Reconfigure(sampling)) => {
                        if let Some(sampling) = sampling {
                            self.asm.reconfigure(&sampling);
                        }
                        self.batch_size = self.shared.config.load().batch_size.max(1);
                    }
                    Ok(Control::Shutdown(deadline)) => return self.shutdown(deadline),
                    Err(_) => return self.exit(None),
                },
                default(timeout) => {}
            }
            self.shared
                .stage_idle
                .store(false, std::sync::atomic::Ordering::Relaxed);
            let now = self.clock.now_unix_nanos();
            self.asm.poll(now, &mut self.kept);
            self.absorb();
            if self.current.len() >= self.batch_size
                || self.current_since.is_some_and(|since| {
                    since.elapsed() >= self.shared.config.load().export_interval()
                })
            {
                self.cut();
            }
            self.publish();
        }
    }

    /// Takes up to `limit` queued spans into the assembler; the number taken, or `None` once
    /// the queue is closed and empty.
    fn drain_spans(&mut self, limit: usize) -> Option<usize> {
        let mut took = 0;
        let mut now = 0;
        while took < limit {
            // The span is decided where `try_recv` put it and moved once, into the batch:
            // each move of its ~170 bytes shows in the stage's time.
            let mut msg = self.spans.try_recv();
            let span = match &mut msg {
                Ok(span) => span,
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
            };
            if took.is_multiple_of(BURST) {
                // One clock read per burst; each span is counted as it leaves the queue, so
                // `stats()` never misses one.
                now = self.clock.now_unix_nanos();
            }
            took += 1;
            if took.is_multiple_of(ROOM_CHECK) {
                self.shared
                    .wake_room_waiters(self.spans.len(), self.resume_at);
            }
            self.count_received();
            let passed = self.asm.try_pass(span);
            if let Ok(span) = msg {
                if passed {
                    self.push_kept(span);
                } else {
                    self.take(span, now);
                }
            }
        }
        self.shared
            .wake_room_waiters(self.spans.len(), self.resume_at);
        Some(took)
    }

    fn sleep_for(&self) -> Duration {
        let mut sleep = MAX_SLEEP;
        if let Some(deadline) = self.asm.next_deadline() {
            let now = self.clock.now_unix_nanos();
            sleep = sleep.min(Duration::from_nanos(deadline.saturating_sub(now)));
        }
        if let Some(since) = self.current_since {
            let interval = self.shared.config.load().export_interval();
            sleep = sleep.min(interval.saturating_sub(since.elapsed()));
        }
        sleep
    }

    fn count_received(&mut self) {
        self.count_received_n(1);
    }

    fn count_received_n(&mut self, n: u64) {
        self.received += n;
        // Single writer: a plain store is enough and cheaper than an atomic add.
        self.shared
            .counters
            .received
            .store(self.received, std::sync::atomic::Ordering::Relaxed);
    }

    fn count_kept(&mut self, n: u64) {
        self.kept_count += n;
        // Single writer, as for `received`: a store instead of an atomic add.
        self.shared
            .counters
            .kept_spans
            .store(self.kept_count, Ordering::Relaxed);
    }

    /// The current batch's length before spans are added, with room for a whole batch
    /// reserved when it is new.
    #[inline(always)]
    fn batch_len(&mut self) -> usize {
        let before = self.current.len();
        if before == 0 && self.current.capacity() == 0 {
            self.new_batch();
        }
        before
    }

    /// Room for a whole batch in the (empty) current batch: a vector a worker handed back
    /// when there is one.
    #[cold]
    fn new_batch(&mut self) {
        if self.current.capacity() == 0
            && let Ok(mut spare) = self.shared.spare_batches.1.try_recv()
        {
            spare.clear();
            self.current = spare;
        }
        self.current.reserve(self.batch_size);
    }

    /// Moves a span the assembler kept in place into the current batch.
    #[inline(always)]
    fn push_kept(&mut self, span: Span) {
        let before = self.batch_len();
        self.current.push(span);
        self.added(before);
    }

    /// Hands one span to the assembler, which appends kept spans straight to the current
    /// batch (the caller counts the span in `received`). In line, like the assembler's
    /// `add`, so the span is not copied once more per call.
    #[inline(always)]
    fn take(&mut self, span: Span, now: u64) {
        let before = self.batch_len();
        self.asm.add(span, now, &mut self.current);
        if self.current.len() != before {
            self.added(before);
        }
    }

    /// Accounts for kept spans the assembler appended to the current batch (which held
    /// `before` spans) and cuts full batches.
    fn added(&mut self, before: usize) {
        self.count_kept((self.current.len() - before) as u64);
        if before == 0 {
            self.current_since = Some(Instant::now());
        }
        while self.current.len() >= self.batch_size {
            if self.current.len() == self.batch_size {
                self.cut();
                break;
            }
            // More than a batch: cut the first `batch_size` spans, keep the rest.
            let mut rest =
                Vec::with_capacity(self.batch_size.max(self.current.len() - self.batch_size));
            rest.extend(self.current.drain(self.batch_size..));
            self.cut();
            self.current = rest;
            if !self.current.is_empty() {
                self.current_since = Some(Instant::now());
            }
        }
    }

    /// Moves decided, kept spans from `kept` into the current batch, cutting full batches.
    fn absorb(&mut self) {
        if self.kept.is_empty() {
            return;
        }
        let kept = std::mem::take(&mut self.kept);
        self.kept = self.absorb_from(kept);
    }

    /// Moves `spans` (decided and kept) into the current batch, cutting full batches;
    /// returns the emptied vector for reuse.
    fn absorb_from(&mut self, mut spans: Vec<Span>) -> Vec<Span> {
        self.count_kept(spans.len() as u64);
        if self.current.is_empty() && spans.len() == self.batch_size {
            // A whole batch (a producer's shard): sent as it is.
            self.current = spans;
            self.cut();
            return Vec::new();
        }
        let mut rest = spans.drain(..);
        while rest.len() > 0 {
            if self.current.len() >= self.batch_size {
                self.cut();
            }
            if self.current.is_empty() {
                self.current_since = Some(Instant::now());
                self.new_batch();
            }
            let room = self.batch_size - self.current.len();
            self.current.extend(rest.by_ref().take(room));
        }
        drop(rest);
        if self.current.len() >= self.batch_size {
            self.cut();
        }
        spans
    }

    /// Hands the current batch to the workers (blocking while they are busy, but never past
    /// the shutdown deadline).
    fn cut(&mut self) {
        self.current_since = None;
        if self.current.is_empty() {
            return;
        }
        let spans = std::mem::take(&mut self.current);
        let n = spans.len() as u64;
        let seq = self.shared.next_seq();
        self.shared.begin_batch(seq, n);
        let mut batch = Batch {
            seq,
            spans: Arc::new(spans),
        };
        loop {
            match self.batches.send_timeout(batch, SEND_SLICE) {
                Ok(()) => {
                    self.last_sent = Some(seq);
                    return;
                }
                Err(SendTimeoutError::Timeout(b)) => {
                    // The workers have been behind for a whole slice: producers must not
                    // wait for exporters (see `ExportConfig::queue_full_wait_ms`), so a full
                    // queue drops until the stage catches up.
                    self.shared.shedding.store(true, Ordering::Relaxed);
                    let late = self
                        .shared
                        .shutdown_deadline()
                        .is_some_and(|d| Instant::now() >= d);
                    if !late {
                        batch = b;
                        continue;
                    }
                }
                Err(SendTimeoutError::Disconnected(_)) => {}
            }
            self.unsent_spans += n;
            self.shared.end_batch(seq);
            return;
        }
    }

    /// Takes the spans producers left in their shards (see the `shard` module): those that
    /// have waited an export interval, or all of them with `all` (flush, shutdown). Returns
    /// the number of spans taken.
    fn collect_shards(&mut self, all: bool) -> usize {
        let interval = u64::try_from(self.shared.config.load().export_interval().as_nanos())
            .unwrap_or(u64::MAX);
        let now = self.shared.now_nanos();
        let mut took = 0;
        for i in 0..self.shared.shards.len() {
            let shard = &self.shared.shards[i];
            let since = shard.since.load(Ordering::Relaxed);
            if !all && (since == 0 || now.saturating_sub(since) < interval) {
                continue;
            }
            let batches = {
                let mut spans = shard.spans.lock();
                shard.queued.store(0, Ordering::Relaxed);
                shard.since.store(0, Ordering::Relaxed);
                spans.take_all()
            };
            for spans in batches {
                took += spans.len();
                self.count_received_n(spans.len() as u64);
                self.absorb_from(spans);
            }
            if !all {
                // These spans have waited a whole export interval already.
                self.cut();
            }
        }
        took
    }

    /// Moves every trace the caller already decided into the current batch; returns the
    /// number of spans taken.
    fn drain_decided(&mut self) -> usize {
        let mut took = 0;
        while let Ok(trace) = self.decided.try_recv() {
            match trace {
                Decided::One(span) => {
                    took += 1;
                    self.count_received_n(1);
                    self.push_kept(span);
                }
                Decided::Many(spans) => {
                    took += spans.len();
                    self.count_received_n(spans.len() as u64);
                    self.absorb_from(spans);
                }
            }
        }
        took
    }

    /// Takes what is queued now (not what arrives meanwhile) into the assembler.
    fn drain_queue(&mut self, deadline: Option<Instant>) {
        let queued = self.spans.len();
        let mut now = 0;
        for i in 0..queued {
            if i % BURST == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            match self.spans.try_recv() {
                Ok(span) => {
                    if i % BURST == 0 {
                        now = self.clock.now_unix_nanos();
                    }
                    self.count_received();
                    self.take(span, now);
                }
                Err(_) => return,
            }
        }
    }

    fn shutdown(mut self, deadline: Instant) -> StageExit {
        // From now on producers use the span queue only; what is in the shards is taken
        // below.
        self.close_shards();
        // Keep draining while producers still add: spans accepted before the handle closed
        // the queue count as accepted and must go out.
        while (!self.spans.is_empty() || !self.decided.is_empty()) && Instant::now() < deadline {
            self.drain_decided();
            self.drain_queue(Some(deadline));
        }
        self.exit(Some(deadline))
    }

    fn close_shards(&mut self) {
        self.shared.shards_closed.store(true, Ordering::SeqCst);
        self.collect_shards(true);
    }

    fn exit(mut self, deadline: Option<Instant>) -> StageExit {
        self.close_shards();
        self.drain_decided();
        let in_time = deadline.is_none_or(|d| Instant::now() < d);
        if in_time {
            self.asm.flush_all(&mut self.kept);
            self.absorb();
            self.cut();
        }
        self.publish_all();
        let buffered = self.asm.stats().buffered_spans as u64;
        StageExit {
            left_in_buffer: buffered + self.kept.len() as u64,
            unsent_spans: self.unsent_spans + self.current.len() as u64,
        }
    }

    /// Updates the counters the handle reads; the full buffer stats at most every
    /// [`PUBLISH_EVERY`].
    fn publish(&mut self) {
        let stats = self.asm.stats();
        let c = &self.shared.counters;
        c.buffered_spans.store(
            stats.buffered_spans as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        c.sampled_out
            .store(stats.spans_dropped, std::sync::atomic::Ordering::Relaxed);
        if self
            .published
            .is_none_or(|at| at.elapsed() >= PUBLISH_EVERY)
        {
            self.shared.buffer_stats.store(Arc::new(stats));
            self.published = Some(Instant::now());
        }
    }

    fn publish_all(&mut self) {
        self.published = None;
        self.publish();
    }
}
