//! `TraceBuffer`: assembles traces from ended spans for in-process tail sampling.

mod cache;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tta_core::{AttributeValue, SharedStr, Span, SpanStatus, TraceId};

use crate::hash::IdHashBuilder;
use crate::{
    CompositeSampler, Randomness, SamplingConfig, SamplingReason, SamplingResult, Threshold,
};
use cache::{DecisionCache, Remembered};

/// A decided, kept trace: its spans (each with `sampling_threshold` set to the threshold that
/// kept it) and the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DecidedTrace {
    /// The trace.
    pub trace_id: TraceId,
    /// Its spans, in arrival order (one span for a late span of an already kept trace).
    pub spans: Vec<Span>,
    /// The tail decision.
    pub result: SamplingResult,
}

/// Where decided, kept spans go: one [`DecidedTrace`] per kept trace, or straight onto one
/// flat vector (no allocation per trace).
enum Sink<'a> {
    Traces(&'a mut Vec<DecidedTrace>),
    Spans(&'a mut Vec<Span>),
}

/// Counters and gauges of a [`TraceBuffer`].
///
/// Every span received is counted exactly once as kept, dropped or still buffered:
/// `spans_received == spans_kept + spans_dropped + buffered_spans`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TraceBufferStats {
    /// Traces waiting for a decision.
    pub buffered_traces: usize,
    /// Spans waiting for a decision.
    pub buffered_spans: usize,
    /// Bytes the buffer holds besides the decision cache: allocated span slots and trace
    /// entries (including free ones kept for reuse), the trace index's table, and the
    /// attributes and owned strings of buffered spans.
    pub buffered_bytes: usize,
    /// Bytes the decision cache allocated up front (part of the budget).
    pub cache_bytes: usize,
    /// The byte budget (`buffer_max_bytes`).
    pub budget_bytes: usize,
    /// Spans passed to `add`.
    pub spans_received: u64,
    /// Spans emitted in kept traces (including late spans).
    pub spans_kept: u64,
    /// Spans dropped by a decision (including late spans).
    pub spans_dropped: u64,
    /// Traces decided.
    pub traces_decided: u64,
    /// Of which kept.
    pub traces_kept: u64,
    /// Of which dropped.
    pub traces_dropped: u64,
    /// Decided when the root span's straggler delay passed.
    pub decided_on_root: u64,
    /// Decided when `decision_wait_ms` passed without a root span.
    pub decided_on_timeout: u64,
    /// Decided when the trace reached `max_spans_per_trace`.
    pub decided_on_span_limit: u64,
    /// Decided early, oldest first, because the byte budget was exceeded.
    pub decided_early: u64,
    /// Decided by `flush_all`.
    pub decided_on_flush: u64,
    /// Spans that arrived after their trace was kept, emitted at once.
    pub late_spans_kept: u64,
    /// Spans that arrived after their trace was dropped, dropped at once.
    pub late_spans_dropped: u64,
    /// Spans emitted at once without buffering because no tail rule could change their
    /// trace's outcome: the head kept it with probability 1 (threshold 0: the span carries
    /// `sampling_threshold = Some(0)`, or carries none while the current rate is 1). Part
    /// of `spans_kept`. A root passed through counts as a trace decided on its root (the
    /// tail rules see the root alone).
    pub spans_passed_through: u64,
}

#[derive(Clone, Copy)]
enum Cause {
    Root,
    Timeout,
    SpanLimit,
    Pressure,
    Flush,
}

const NIL: u32 = u32::MAX;
const NONE_TIME: u64 = u64::MAX;
const CHUNK_SHIFT: u32 = 6;
const CHUNK: usize = 1 << CHUNK_SHIFT;

/// A vector stored in fixed chunks of `CHUNK` elements: growing never copies or doubles, so
/// what it holds is at most one chunk more than its peak length.
struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: u32,
}

impl<T> Chunked<T> {
    fn new() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Whether the next push allocates a new chunk.
    fn full(&self) -> bool {
        self.chunks.last().is_none_or(|c| c.len() == CHUNK)
    }

    /// Bytes allocated: the chunks and the outer vector.
    fn bytes(&self) -> usize {
        self.chunks.len() * CHUNK * size_of::<T>() + self.chunks.capacity() * size_of::<Vec<T>>()
    }

    fn push(&mut self, value: T) -> u32 {
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.push(value);
        }
        self.len += 1;
        self.len - 1
    }

    #[inline]
    fn get(&self, i: u32) -> &T {
        &self.chunks[(i >> CHUNK_SHIFT) as usize][i as usize & (CHUNK - 1)]
    }

    #[inline]
    fn get_mut(&mut self, i: u32) -> &mut T {
        &mut self.chunks[(i >> CHUNK_SHIFT) as usize][i as usize & (CHUNK - 1)]
    }
}

/// One buffered span in a singly linked list per trace (or the free list).
struct Slot {
    span: Option<Span>,
    next: u32,
}

/// One buffered trace: its span list and its places in the arrival and root lists.
struct Entry {
    first_span: u32,
    last_span: u32,
    spans: u32,
    bytes: usize,
    arrived_at: u64,
    root_at: u64,
    arrival: Links,
    root: Links,
}

#[derive(Clone, Copy)]
struct Links {
    prev: u32,
    next: u32,
}

const UNLINKED: Links = Links {
    prev: NIL,
    next: NIL,
};

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY: List = List {
    head: NIL,
    tail: NIL,
};

/// Bytes of one bucket of the trace index: key, value and control byte.
const INDEX_BUCKET_BYTES: usize = size_of::<(TraceId, u32)>() + 1;

/// Bytes of a hash table with this `capacity()` (power-of-two buckets, at most 7/8 full).
fn table_bytes(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        capacity + 1
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    buckets * INDEX_BUCKET_BYTES + 32
}

/// Estimated heap bytes of a span beyond its slot: attributes and string values that are
/// likely owned (error message, string attribute values). Shared names are not counted.
fn span_extra_bytes(span: &Span) -> usize {
    let attributes = span.attributes.capacity() * size_of::<(SharedStr, AttributeValue)>()
        + span
            .attributes
            .iter()
            .map(|(_, v)| match v {
                AttributeValue::Str(s) => s.len(),
                _ => 0,
            })
            .sum::<usize>();
    let status = match &span.status {
        SpanStatus::Error(m) => m.len(),
        _ => 0,
    };
    attributes + status
}

/// Assembles traces from ended spans and applies the tail decision when each is complete.
///
/// A trace completes when its root span ended plus `straggler_delay_ms`, when
/// `decision_wait_ms` passed since its first span (no root arrived), or at once when it
/// reaches `max_spans_per_trace`. Only kept traces are emitted (to the `out` vector); dropped
/// spans are counted. Time is passed in; the buffer has no threads and is owned by one
/// thread (the pipeline's sampler stage).
///
/// **Memory.** What the buffer holds stays within `buffer_max_bytes`: a decision cache that
/// takes 1/8 of the budget up front, span slots and trace entries allocated in chunks of 64
/// (and reused, never returned to the allocator), the trace index's hash table, and the
/// attributes and owned strings of buffered spans (estimated from their lengths). Before a span
/// would need memory beyond the budget, the oldest traces are decided early (freeing slots
/// for reuse) and counted in [`TraceBufferStats::decided_early`]. Two transient excesses are
/// not counted: the index's old table while it is being grown or shrunk, and a budget too
/// small to hold even one chunk (the minimum `buffer_max_bytes` of 64 KiB avoids it).
///
/// **Decisions.** The head decision is the one the application recorded (any span with
/// `sampling_threshold = Some(t)` means the root was sampled with threshold `t`), or else the
/// consistent decision recomputed from the trace id at the sampler's current rate (the same
/// answer, without counting it twice). The tail decision then uses `has_error` = any span is
/// an error and `duration_ms` = the root span's duration (the longest span's when no root
/// arrived). Late spans of decided traces follow the remembered decision: kept ones are
/// emitted at once as a one-span [`DecidedTrace`], dropped ones are counted. Kept trace ids
/// are remembered exactly; dropped ones in a compact filter (about 4 bytes per trace; a new
/// trace is mistaken for a dropped one with probability about 4e-9). A trace forgotten by the
/// cache is buffered and decided again from its late spans.
///
/// **Pass-through.** A span of a trace that is not buffered and that the head kept with
/// probability 1 (it carries `sampling_threshold = Some(0)`, or none while the current rate
/// is 1) is emitted at once: tail rules only ever keep more, with threshold 0, so waiting
/// could not change the outcome. A passed-through root is counted as its trace's decision,
/// with the tail rules applied to the root alone (this only affects the reason counted). If
/// the rate drops below 1 while such a trace is still sending spans, its later spans are
/// buffered and decided from the trace id at the new rate.
///
/// **Time.** Deadlines are kept in arrival order; if the `now` passed in goes backwards,
/// traces that arrived later wait for the earlier ones' deadlines.
///
/// ```
/// use tta_core::{Span, SpanId, SpanStatus, TraceId};
/// use tta_sampling::{CompositeSampler, SamplingConfig, TraceBuffer};
///
/// let config = SamplingConfig { default_rate: 0.0, straggler_delay_ms: 100, ..Default::default() };
/// let sampler = CompositeSampler::new(SamplingConfig { adaptive_enabled: false, ..config.clone() });
/// let mut buffer = TraceBuffer::new(&config);
/// let mut out = Vec::new();
///
/// let trace_id = TraceId::random();
/// let root = SpanId::random();
/// let ms = 1_000_000;
/// let child = Span {
///     trace_id, span_id: SpanId::random(), parent_span_id: Some(root),
///     status: SpanStatus::Error("timeout".into()), ..Default::default()
/// };
/// buffer.add(child, 0, &sampler, &mut out);
/// buffer.add(Span { trace_id, span_id: root, end_unix_nanos: 5 * ms, ..Default::default() }, ms, &sampler, &mut out);
/// assert_eq!(buffer.next_deadline(), Some(101 * ms));
/// buffer.poll(101 * ms, &sampler, &mut out);
/// assert_eq!(out.len(), 1); // kept by the error rule although the head rate is 0
/// assert_eq!(out[0].spans.len(), 2);
/// assert_eq!(out[0].spans[0].sampling_threshold, Some(0)); // th:0
///
/// // A late span follows the remembered decision.
/// let late = Span { trace_id, span_id: SpanId::random(), parent_span_id: Some(root), ..Default::default() };
/// buffer.add(late, 200 * ms, &sampler, &mut out);
/// assert_eq!(out.len(), 2);
/// assert_eq!(buffer.stats().late_spans_kept, 1);
/// ```
pub struct TraceBuffer {
    index: HashMap<TraceId, u32, IdHashBuilder>,
    entries: Chunked<Entry>,
    free_entry: u32,
    slots: Chunked<Slot>,
    free_slot: u32,
    arrivals: List,
    roots: List,
    cache: DecisionCache,
    budget: usize,
    /// What the buffer may hold besides the cache.
    limit: usize,
    /// Attributes and owned strings of buffered spans.
    extra_bytes: usize,
    wait_nanos: u64,
    straggler_nanos: u64,
    max_spans: u32,
    stats: TraceBufferStats,
}

impl std::fmt::Debug for TraceBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceBuffer")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn ms_to_nanos(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

impl TraceBuffer {
    /// A buffer with `config`'s limits (invalid values are replaced by defaults).
    pub fn new(config: &SamplingConfig) -> Self {
        let config = config.sanitized();
        let cache = DecisionCache::new(config.buffer_max_bytes / 8);
        let mut buffer = Self {
            index: HashMap::with_hasher(IdHashBuilder::new()),
            entries: Chunked::new(),
            free_entry: NIL,
            slots: Chunked::new(),
            free_slot: NIL,
            arrivals: EMPTY,
            roots: EMPTY,
            cache,
            budget: 0,
            limit: 0,
            extra_bytes: 0,
            wait_nanos: 0,
            straggler_nanos: 0,
            max_spans: 0,
            stats: TraceBufferStats::default(),
        };
        buffer.apply(&config);
        buffer
    }

    fn apply(&mut self, config: &SamplingConfig) {
        self.budget = config.buffer_max_bytes;
        self.limit = self.budget.saturating_sub(self.cache.bytes());
        self.wait_nanos = ms_to_nanos(config.decision_wait_ms);
        self.straggler_nanos = ms_to_nanos(config.straggler_delay_ms);
        self.max_spans = u32::try_from(config.max_spans_per_trace).unwrap_or(u32::MAX);
    }

    /// Applies new limits; delays apply to buffered traces too.
    ///
    /// A changed byte budget rebuilds the decision cache (forgetting remembered decisions). A
    /// lower budget takes effect at the next `add` or `poll`: the oldest traces are decided
    /// early, and if the memory kept for reuse still exceeds the new budget, every buffered
    /// trace is decided and that memory is released.
    pub fn reconfigure(&mut self, config: &SamplingConfig) {
        let config = config.sanitized();
        if config.buffer_max_bytes != self.budget {
            self.cache = DecisionCache::new(config.buffer_max_bytes / 8);
        }
        self.apply(&config);
    }

    /// Adds an ended span received at `now_unix_nanos`.
    ///
    /// A span of an already decided trace follows the remembered decision at once (kept: pushed
    /// to `out` as a [`DecidedTrace`] holding just that span; dropped: counted). A trace that
    /// reaches `max_spans_per_trace` is decided at once, and if the byte budget is exceeded the
    /// oldest traces are decided early; kept ones go to `out`.
    pub fn add(
        &mut self,
        span: Span,
        now_unix_nanos: u64,
        sampler: &CompositeSampler,
        out: &mut Vec<DecidedTrace>,
    ) {
        self.add_to(span, now_unix_nanos, sampler, &mut Sink::Traces(out));
    }

    /// Like [`add`](Self::add), but the spans of kept traces are appended to `out` directly
    /// (each carrying its trace's threshold in `sampling_threshold`) instead of one
    /// [`DecidedTrace`] per trace: no allocation per decided trace. For a consumer, such as
    /// the export pipeline, that needs only the spans.
    ///
    /// ```
    /// use tta_core::{Span, SpanId, SpanStatus, TraceId};
    /// use tta_sampling::{CompositeSampler, SamplingConfig, TraceBuffer};
    ///
    /// let config = SamplingConfig { default_rate: 0.0, adaptive_enabled: false, ..Default::default() };
    /// let sampler = CompositeSampler::new(config.clone());
    /// let mut buffer = TraceBuffer::new(&config);
    /// let mut out: Vec<Span> = Vec::new();
    /// let trace_id = TraceId::random();
    /// let root = SpanId::random();
    /// let status = SpanStatus::Error("timeout".into());
    /// let child = Span { trace_id, span_id: SpanId::random(), parent_span_id: Some(root), status, ..Default::default() };
    /// buffer.add_flat(child, 0, &sampler, &mut out);
    /// buffer.add_flat(Span { trace_id, span_id: root, ..Default::default() }, 0, &sampler, &mut out);
    /// assert!(out.is_empty()); // waiting for stragglers
    /// buffer.flush_all_flat(&sampler, &mut out);
    /// assert_eq!(out.len(), 2);
    /// assert_eq!(out[0].sampling_threshold, Some(0)); // kept for its error: th:0
    /// ```
    #[inline(always)]
    pub fn add_flat(
        &mut self,
        span: Span,
        now_unix_nanos: u64,
        sampler: &CompositeSampler,
        out: &mut Vec<Span>,
    ) {
        let mut span = span;
        if self.try_pass_through(&mut span, sampler) {
            out.push(span);
            return;
        }
        self.add_to(span, now_unix_nanos, sampler, &mut Sink::Spans(out));
    }

    fn add_to(
        &mut self,
        span: Span,
        now_unix_nanos: u64,
        sampler: &CompositeSampler,
        out: &mut Sink<'_>,
    ) {
        self.stats.spans_received += 1;
        let trace_id = span.trace_id;
        let extra = span_extra_bytes(&span);
        // The span itself is moved only once, into its slot (or to `out`). While nothing is
        // buffered (everything kept passes straight through), no lookup is needed.
        let mut entry = if self.index.is_empty() {
            None
        } else {
            self.index.get(&trace_id).copied()
        };
        if entry.is_none() && sampler.certainly_keeps(&span) {
            self.pass_through(span, sampler, out);
            return;
        }
        if entry.is_none()
            && let Some(remembered) = self.cache.lookup(&trace_id)
        {
            self.follow(remembered, span, out);
            return;
        }
        if self.needs_room(entry.is_none(), extra) {
            let known = entry.is_some();
            self.make_room(!known, extra, sampler, out);
            // Making room may have decided this very trace: then the span follows that decision.
            if known {
                entry = self.index.get(&trace_id).copied();
                if entry.is_none()
                    && let Some(remembered) = self.cache.lookup(&trace_id)
                {
                    self.follow(remembered, span, out);
                    return;
                }
            }
        }
        let entry = match entry {
            Some(e) => e,
            None => self.new_entry(trace_id, now_unix_nanos),
        };
        let bytes = extra;
        let is_root = span.parent_span_id.is_none();
        let slot = self.alloc_slot(span);
        let e = self.entries.get_mut(entry);
        if e.last_span == NIL {
            e.first_span = slot;
        } else {
            let last = e.last_span;
            self.slots.get_mut(last).next = slot;
        }
        let e = self.entries.get_mut(entry);
        e.last_span = slot;
        e.spans += 1;
        e.bytes += bytes;
        let full = e.spans >= self.max_spans;
        let first_root = is_root && e.root_at == NONE_TIME;
        if first_root {
            e.root_at = now_unix_nanos;
        }
        self.stats.buffered_spans += 1;
        self.extra_bytes += bytes;
        if first_root {
            self.link(entry, true);
        }
        if full {
            self.decide(entry, Cause::SpanLimit, sampler, out);
        }
    }

    /// Emits a span of a trace the head kept with probability 1 (see [`CompositeSampler::certainly_keeps`]):
    /// whatever the tail rules say, the trace is kept with threshold 0, so it is not
    /// buffered. A root counts as its trace's decision (the tail rules see the root alone,
    /// which only changes the reason counted).
    /// The common case, decided in place: nothing is buffered and `span` is certainly kept
    /// (the sampler keeps everything, or the span carries `th:0`). Then the span is counted,
    /// marked kept (`th:0`) and `true` returned: the caller moves it to its output as it
    /// would a span [`add_flat`](Self::add_flat) emits. Otherwise nothing changes and the
    /// span must go through `add_flat`. Working on the span in place spares copying its ~170
    /// bytes through every call on the way.
    ///
    /// ```
    /// use tta_core::{Span, TraceId};
    /// use tta_sampling::{CompositeSampler, SamplingConfig, TraceBuffer};
    ///
    /// let all = SamplingConfig { default_rate: 1.0, adaptive_enabled: false, ..Default::default() };
    /// let mut buffer = TraceBuffer::new(&all);
    /// let mut span = Span { trace_id: TraceId::random(), ..Default::default() };
    /// assert!(buffer.try_pass_through(&mut span, &CompositeSampler::new(all.clone())));
    /// assert_eq!(span.sampling_threshold, Some(0));
    ///
    /// let some = SamplingConfig { default_rate: 0.5, ..all };
    /// let mut span = Span { trace_id: TraceId::random(), ..Default::default() };
    /// assert!(!buffer.try_pass_through(&mut span, &CompositeSampler::new(some)));
    /// ```
    #[inline(always)]
    pub fn try_pass_through(&mut self, span: &mut Span, sampler: &CompositeSampler) -> bool {
        if !(self.index.is_empty() && sampler.certainly_keeps(span)) {
            return false;
        }
        self.stats.spans_received += 1;
        let _ = self.pass_decision(span, sampler);
        span.sampling_threshold = Some(Threshold::ALWAYS.raw());
        true
    }

    /// The decision for a span passed straight through (see [`CompositeSampler::certainly_keeps`]), with the
    /// buffer's counters updated; a root also counts as its trace decided.
    #[inline]
    fn pass_decision(&mut self, span: &Span, sampler: &CompositeSampler) -> SamplingResult {
        let result = sampler.passed_decision(span);
        if span.parent_span_id.is_none() {
            let s = &mut self.stats;
            s.traces_decided += 1;
            s.traces_kept += 1;
            s.decided_on_root += 1;
        }
        self.stats.spans_kept += 1;
        self.stats.spans_passed_through += 1;
        result
    }

    fn pass_through(&mut self, span: Span, sampler: &CompositeSampler, out: &mut Sink<'_>) {
        let mut span = span;
        let result = self.pass_decision(&span, sampler);
        span.sampling_threshold = Some(Threshold::ALWAYS.raw());
        match out {
            Sink::Traces(out) => out.push(DecidedTrace {
                trace_id: span.trace_id,
                spans: vec![span],
                result,
            }),
            Sink::Spans(out) => out.push(span),
        }
    }

    /// A span of a trace that is not buffered but was decided: it follows that decision.
    fn follow(&mut self, remembered: Remembered, span: Span, out: &mut Sink<'_>) {
        match remembered {
            Remembered::Kept(result) => {
                let mut span = span;
                span.sampling_threshold = result.threshold.map(Threshold::raw);
                match out {
                    Sink::Traces(out) => out.push(DecidedTrace {
                        trace_id: span.trace_id,
                        spans: vec![span],
                        result,
                    }),
                    Sink::Spans(out) => out.push(span),
                }
                self.stats.late_spans_kept += 1;
                self.stats.spans_kept += 1;
            }
            Remembered::Dropped => {
                self.stats.late_spans_dropped += 1;
                self.stats.spans_dropped += 1;
            }
        }
    }

    /// Bytes held besides the cache (see [`TraceBufferStats::buffered_bytes`]).
    fn held_bytes(&self) -> usize {
        self.slots.bytes()
            + self.entries.bytes()
            + table_bytes(self.index.capacity())
            + self.extra_bytes
    }

    /// Whether adding a span with `extra` heap bytes (to a new trace if `new_trace`) would
    /// take the buffer past its limit.
    fn needs_room(&self, new_trace: bool, extra: usize) -> bool {
        let mut grow = extra;
        if self.free_slot == NIL && self.slots.full() {
            grow += CHUNK * size_of::<Slot>() + size_of::<Vec<Slot>>();
        }
        if new_trace {
            if self.free_entry == NIL && self.entries.full() {
                grow += CHUNK * size_of::<Entry>() + size_of::<Vec<Entry>>();
            }
            let capacity = self.index.capacity();
            if self.index.len() >= capacity {
                grow += table_bytes((capacity + 1) * 2) - table_bytes(capacity);
            }
        }
        self.held_bytes() + grow > self.limit
    }

    /// Decides the oldest traces until the span fits (or nothing is left to decide).
    fn make_room(
        &mut self,
        new_trace: bool,
        extra: usize,
        sampler: &CompositeSampler,
        out: &mut Sink<'_>,
    ) {
        while self.needs_room(new_trace, extra) {
            if self.arrivals.head == NIL {
                // Nothing buffered: memory kept for reuse from a larger budget goes back.
                self.release_storage();
                break;
            }
            self.decide(self.arrivals.head, Cause::Pressure, sampler, out);
        }
    }

    /// Frees the slots, entries and index of an empty buffer.
    fn release_storage(&mut self) {
        debug_assert!(self.index.is_empty());
        self.slots = Chunked::new();
        self.entries = Chunked::new();
        self.free_slot = NIL;
        self.free_entry = NIL;
        self.index = HashMap::with_hasher(self.index.hasher().clone());
    }

    /// Decides every trace whose time has come: root ended plus the straggler delay, or the
    /// decision wait passed. Also enforces a budget lowered by `reconfigure`.
    pub fn poll(
        &mut self,
        now_unix_nanos: u64,
        sampler: &CompositeSampler,
        out: &mut Vec<DecidedTrace>,
    ) {
        self.poll_to(now_unix_nanos, sampler, &mut Sink::Traces(out));
    }

    /// Like [`poll`](Self::poll), with kept spans appended to `out` directly (see
    /// [`add_flat`](Self::add_flat)).
    pub fn poll_flat(
        &mut self,
        now_unix_nanos: u64,
        sampler: &CompositeSampler,
        out: &mut Vec<Span>,
    ) {
        self.poll_to(now_unix_nanos, sampler, &mut Sink::Spans(out));
    }

    fn poll_to(&mut self, now_unix_nanos: u64, sampler: &CompositeSampler, out: &mut Sink<'_>) {
        while self.roots.head != NIL {
            let e = self.entries.get(self.roots.head);
            if e.root_at.saturating_add(self.straggler_nanos) > now_unix_nanos {
                break;
            }
            self.decide(self.roots.head, Cause::Root, sampler, out);
        }
        while self.arrivals.head != NIL {
            let e = self.entries.get(self.arrivals.head);
            if e.arrived_at.saturating_add(self.wait_nanos) > now_unix_nanos {
                break;
            }
            self.decide(self.arrivals.head, Cause::Timeout, sampler, out);
        }
        if self.held_bytes() > self.limit {
            self.make_room(false, 0, sampler, out);
        }
        // Give back index capacity after a burst (amortized: only when mostly empty).
        if self.index.capacity() > 4096 && self.index.len() * 4 < self.index.capacity() {
            self.index.shrink_to(self.index.len() * 2);
        }
    }

    /// Decides everything still buffered, oldest first (for shutdown).
    pub fn flush_all(&mut self, sampler: &CompositeSampler, out: &mut Vec<DecidedTrace>) {
        self.flush_all_to(sampler, &mut Sink::Traces(out));
    }

    /// Like [`flush_all`](Self::flush_all), with kept spans appended to `out` directly (see
    /// [`add_flat`](Self::add_flat)).
    pub fn flush_all_flat(&mut self, sampler: &CompositeSampler, out: &mut Vec<Span>) {
        self.flush_all_to(sampler, &mut Sink::Spans(out));
    }

    fn flush_all_to(&mut self, sampler: &CompositeSampler, out: &mut Sink<'_>) {
        while self.arrivals.head != NIL {
            self.decide(self.arrivals.head, Cause::Flush, sampler, out);
        }
    }

    /// The earliest time at which [`poll`](Self::poll) will have work, if anything is
    /// buffered, so the caller can sleep until then.
    pub fn next_deadline(&self) -> Option<u64> {
        let root = (self.roots.head != NIL).then(|| {
            self.entries
                .get(self.roots.head)
                .root_at
                .saturating_add(self.straggler_nanos)
        });
        let wait = (self.arrivals.head != NIL).then(|| {
            self.entries
                .get(self.arrivals.head)
                .arrived_at
                .saturating_add(self.wait_nanos)
        });
        match (root, wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Counters and gauges.
    pub fn stats(&self) -> TraceBufferStats {
        TraceBufferStats {
            buffered_traces: self.index.len(),
            buffered_bytes: self.held_bytes(),
            cache_bytes: self.cache.bytes(),
            budget_bytes: self.budget,
            ..self.stats.clone()
        }
    }

    fn new_entry(&mut self, trace_id: TraceId, now: u64) -> u32 {
        let entry = Entry {
            first_span: NIL,
            last_span: NIL,
            spans: 0,
            bytes: 0,
            arrived_at: now,
            root_at: NONE_TIME,
            arrival: UNLINKED,
            root: UNLINKED,
        };
        let idx = if self.free_entry == NIL {
            self.entries.push(entry)
        } else {
            let idx = self.free_entry;
            let e = self.entries.get_mut(idx);
            self.free_entry = e.arrival.next;
            *e = entry;
            idx
        };
        self.index.insert(trace_id, idx);
        self.link(idx, false);
        idx
    }

    fn alloc_slot(&mut self, span: Span) -> u32 {
        if self.free_slot == NIL {
            self.slots.push(Slot {
                span: Some(span),
                next: NIL,
            })
        } else {
            let idx = self.free_slot;
            let s = self.slots.get_mut(idx);
            self.free_slot = s.next;
            s.span = Some(span);
            s.next = NIL;
            idx
        }
    }

    fn links(&mut self, idx: u32, root: bool) -> &mut Links {
        let e = self.entries.get_mut(idx);
        if root { &mut e.root } else { &mut e.arrival }
    }

    fn list(&mut self, root: bool) -> &mut List {
        if root {
            &mut self.roots
        } else {
            &mut self.arrivals
        }
    }

    /// Appends `idx` to the root list or the arrival list.
    fn link(&mut self, idx: u32, root: bool) {
        let tail = self.list(root).tail;
        *self.links(idx, root) = Links {
            prev: tail,
            next: NIL,
        };
        if tail == NIL {
            self.list(root).head = idx;
        } else {
            self.links(tail, root).next = idx;
        }
        self.list(root).tail = idx;
    }

    fn unlink(&mut self, idx: u32, root: bool) {
        let Links { prev, next } = *self.links(idx, root);
        if prev == NIL {
            if self.list(root).head != idx {
                return; // not linked
            }
            self.list(root).head = next;
        } else {
            self.links(prev, root).next = next;
        }
        if next == NIL {
            self.list(root).tail = prev;
        } else {
            self.links(next, root).prev = prev;
        }
        *self.links(idx, root) = UNLINKED;
    }

    /// Frees the slots of the span list starting at `first`; with `keep`, moves the spans to
    /// its vector, each with its `sampling_threshold` set.
    fn release_spans(&mut self, first: u32, mut keep: Option<(&mut Vec<Span>, Option<u64>)>) {
        let mut cursor = first;
        while cursor != NIL {
            let slot = self.slots.get_mut(cursor);
            let next = slot.next;
            if let Some((out, threshold)) = keep.as_mut() {
                if let Some(span) = slot.span.as_mut() {
                    span.sampling_threshold = *threshold;
                }
                if let Some(span) = slot.span.take() {
                    out.push(span);
                }
            } else {
                slot.span = None;
            }
            slot.next = self.free_slot;
            self.free_slot = cursor;
            cursor = next;
        }
    }

    fn decide(&mut self, idx: u32, cause: Cause, sampler: &CompositeSampler, out: &mut Sink<'_>) {
        self.unlink(idx, false);
        self.unlink(idx, true);
        let (first, count, bytes) = {
            let e = self.entries.get(idx);
            (e.first_span, e.spans, e.bytes)
        };
        // Free the entry.
        self.entries.get_mut(idx).arrival.next = self.free_entry;
        self.free_entry = idx;

        // Summarize the spans.
        let mut has_error = false;
        let mut root_nanos = None;
        let mut longest = 0u64;
        let mut recorded = None;
        let mut trace_id = None;
        let mut cursor = first;
        while cursor != NIL {
            let slot = self.slots.get(cursor);
            if let Some(span) = &slot.span {
                trace_id.get_or_insert(span.trace_id);
                has_error |= span.is_error();
                let d = span.duration_nanos();
                longest = longest.max(d);
                if span.parent_span_id.is_none() && root_nanos.is_none() {
                    root_nanos = Some(d);
                }
                if recorded.is_none() {
                    recorded = span.sampling_threshold;
                }
            }
            cursor = slot.next;
        }
        let Some(trace_id) = trace_id else {
            // An entry always holds at least one span; nothing to decide otherwise.
            return;
        };
        self.index.remove(&trace_id);

        let head = match recorded {
            Some(t) => {
                SamplingResult::sample(SamplingReason::HeadRate, Some(Threshold::from_raw(t)))
            }
            None => sampler.recompute_head(Randomness::from_trace_id(trace_id)),
        };
        let duration_ms = root_nanos.unwrap_or(longest) as f64 / 1e6;
        let result = sampler.should_sample_tail(trace_id, has_error, duration_ms, &head);
        let keep = result.is_sampled();
        let threshold = result.threshold.map(Threshold::raw);
        let mut spans = Vec::new();
        match (keep, &mut *out) {
            (false, _) => self.release_spans(first, None),
            (true, Sink::Traces(_)) => {
                spans.reserve_exact(count as usize);
                self.release_spans(first, Some((&mut spans, threshold)));
            }
            (true, Sink::Spans(out)) => {
                out.reserve(count as usize);
                self.release_spans(first, Some((out, threshold)));
            }
        }

        let s = &mut self.stats;
        s.buffered_spans -= count as usize;
        self.extra_bytes -= bytes;
        s.traces_decided += 1;
        match cause {
            Cause::Root => s.decided_on_root += 1,
            Cause::Timeout => s.decided_on_timeout += 1,
            Cause::SpanLimit => s.decided_on_span_limit += 1,
            Cause::Pressure => s.decided_early += 1,
            Cause::Flush => s.decided_on_flush += 1,
        }
        if keep {
            s.traces_kept += 1;
            s.spans_kept += u64::from(count);
            self.cache.remember_kept(trace_id, &result);
            if let Sink::Traces(out) = out {
                out.push(DecidedTrace {
                    trace_id,
                    spans,
                    result,
                });
            }
        } else {
            s.traces_dropped += 1;
            s.spans_dropped += u64::from(count);
            self.cache.remember_dropped(&trace_id);
        }
    }
}

#[cfg(test)]
#[path = "buffer/tests.rs"]
mod tests;
