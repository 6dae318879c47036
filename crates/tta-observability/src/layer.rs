//! A `tracing_subscriber::Layer` that makes the head decision at the root, times every span,
//! records executions, and submits ended spans to the pipeline for tail sampling and export.

mod clock;
mod table;

use std::cell::Cell;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tta_core::{
    AttributeValue, SharedStr, Span, SpanId, SpanKind, SpanStatus, TraceId, TraceParent, TraceState,
};
use tta_metrics::ExecutionHint;
use tta_sampling::{ParentContext, SamplingDecision, SamplingReason, SamplingResult, Threshold};

use crate::Observability;
use crate::overhead::INLINE_SAMPLE_EVERY;
use clock::{REANCHOR_EVERY, SpanClock};
use table::{SlotState, SpanTable};

/// Feeds `tracing` spans into an [`Observability`] runtime.
///
/// - Root spans get a new trace id and the head decision (consistent, adaptive). A root
///   span with fields `traceparent` (and optionally `tracestate`) continues the caller's
///   W3C trace instead: `info_span!("request", traceparent = %header)`.
/// - Every span is timed; on close `record_execution(name, duration_ms, success)` is called,
///   where a span failed if it has an `error` field (any value but `false`) or an
///   ERROR-level event was recorded inside it.
/// - Finished spans wait in their local root (the first span of the trace in this process)
///   until it ends; then the whole local trace is decided by the tail rules (errors and slow
///   traces always, the rest by the head decision) right there. Kept traces go to the
///   pipeline already decided, so they skip the trace buffer and a trace continued from a
///   remote caller is exported at once; dropped ones cost no queue traffic at all. Spans
///   that end after their root, and traces of more than 512 spans, go through the
///   pipeline's trace buffer instead, which decides them there by the same rules (a span
///   that ends after its root is decided on its own).
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// use tta_observability::{Observability, ObservabilityConfig};
///
/// let obs = Observability::builder()
///     .config(ObservabilityConfig::from_environment("development")?)
///     .without_store()
///     .build()?;
/// let subscriber = tracing_subscriber::registry().with(obs.layer());
/// tracing::subscriber::with_default(subscriber, || {
///     let _span = tracing::info_span!("checkout", order_id = 42).entered();
/// });
/// assert_eq!(obs.metrics().metrics("checkout").unwrap().total_executions, 1);
/// obs.shutdown(std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Span times come from the CPU's time-stamp counter anchored to the wall clock (see the
/// `clock` module): a counter read costs a fraction of `SystemTime::now()`. Each span's
/// state lives in the layer's own table keyed by span id (see the `table` module), not in
/// the registry's span extensions: nothing is allocated per span, and no callback looks
/// the span up in the registry.
#[derive(Debug)]
pub struct TtaLayer {
    obs: Observability,
    clock: Arc<SpanClock>,
    spans: SpanTable<SpanState>,
    /// Where each span name's execution statistics are, by the name's address: spares
    /// `record_execution` hashing and looking up the name at every close.
    exec_hints: Arc<[ExecutionHint]>,
}

/// Execution hints per layer (a power of two). Names sharing a hint still record right.
const EXEC_HINTS: usize = 64;

fn exec_hints() -> Arc<[ExecutionHint]> {
    (0..EXEC_HINTS).map(|_| ExecutionHint::default()).collect()
}

impl TtaLayer {
    /// A layer feeding `obs`. The first layer of a process calibrates the counter clock
    /// against the OS clock, which takes a few milliseconds (at most 200 ms).
    pub fn new(obs: Observability) -> Self {
        Self {
            obs,
            clock: Arc::new(SpanClock::new()),
            spans: SpanTable::new(),
            exec_hints: exec_hints(),
        }
    }
}

/// A clone feeds the same runtime but keeps its own span table: span ids are only unique
/// within one registry, and a clone may be added to another.
impl Clone for TtaLayer {
    fn clone(&self) -> Self {
        Self {
            obs: self.obs.clone(),
            clock: Arc::clone(&self.clock),
            spans: SpanTable::new(),
            exec_hints: Arc::clone(&self.exec_hints),
        }
    }
}

/// Most spans a local trace collects under its root before handing them to the pipeline's
/// trace buffer (which has a byte budget) instead.
const LOCAL_TRACE_MAX_SPANS: usize = 512;

/// Per-span state, kept in the layer's span table from the span's start to its close.
struct SpanState {
    /// The span's name (from its callsite).
    name: &'static str,
    trace_id: TraceId,
    /// Drawn when first needed (a child starts, or the span is kept): most spans of a
    /// dropped trace never need one.
    span_id: Option<SpanId>,
    parent: Option<SpanId>,
    /// The counter reading at the start (durations are counter deltas; the wall-clock start
    /// is only worked out for spans that are kept).
    start_raw: u64,
    /// The head decision's threshold when the head kept the trace.
    threshold: Option<u64>,
    /// Whether the head kept the trace (a parent-based decision may keep it without `th`).
    head_sampled: bool,
    head_reason: SamplingReason,
    error: bool,
    kind: SpanKind,
    attributes: Fields,
    /// For spans below a local root: the root's id.
    root: Option<u64>,
    /// For a local root: the finished spans of its trace, decided when the root ends.
    local: Option<LocalTrace>,
}

impl Default for SpanState {
    fn default() -> Self {
        Self {
            name: "",
            trace_id: TraceId::default(),
            span_id: None,
            parent: None,
            start_raw: 0,
            threshold: None,
            head_sampled: false,
            head_reason: SamplingReason::HeadRate,
            error: false,
            kind: SpanKind::Internal,
            attributes: Fields::default(),
            root: None,
            local: None,
        }
    }
}

impl SlotState for SpanState {
    fn release(&mut self) {
        self.attributes.clear();
        self.local = None;
    }
}

/// The finished spans of a local trace, held by its root until the root ends.
#[derive(Default)]
struct LocalTrace {
    spans: Vec<Span>,
    error: bool,
    /// Too many spans: they went to the pipeline's trace buffer, which decides the trace.
    spilled: bool,
}

/// Where a finished child span goes.
enum Route {
    Held,
    Submit(Vec<Span>),
}

/// Fields kept in the span's state itself: most spans have that few, and a dropped root
/// then allocates nothing for them.
const INLINE_ATTRIBUTES: usize = 2;

/// Longest string value of an inline field kept as bytes.
const INLINE_STR: usize = 24;

/// `Fields::text_len` of a field whose value is in `Fields::values`.
const NOT_TEXT: u8 = u8::MAX;

/// A span's fields: the first [`INLINE_ATTRIBUTES`] in arrays in the state, the rest in a
/// vector. A kept span's record gets them as a vector of attributes.
///
/// A short string value is copied straight into `text`, in the state's slot, and only a
/// kept span makes a `SharedStr` of it. Building the string value elsewhere and moving it
/// in would write its bytes in parts and read them back in wider words, which stalls the
/// CPU (a failed store-to-load forward): with one string field that was about a tenth of
/// the layer's cost per span.
struct Fields {
    keys: [&'static str; INLINE_ATTRIBUTES],
    text: [[u8; INLINE_STR]; INLINE_ATTRIBUTES],
    /// How many bytes of `text` field `i` holds, or [`NOT_TEXT`].
    text_len: [u8; INLINE_ATTRIBUTES],
    values: [AttributeValue; INLINE_ATTRIBUTES],
    len: usize,
    more: Vec<(&'static str, AttributeValue)>,
}

impl Default for Fields {
    fn default() -> Self {
        Self {
            keys: [""; INLINE_ATTRIBUTES],
            text: [[0; INLINE_STR]; INLINE_ATTRIBUTES],
            text_len: [NOT_TEXT; INLINE_ATTRIBUTES],
            values: std::array::from_fn(|_| AttributeValue::Bool(false)),
            len: 0,
            more: Vec::new(),
        }
    }
}

impl Fields {
    fn push(&mut self, key: &'static str, value: AttributeValue) {
        let i = self.len;
        if i < INLINE_ATTRIBUTES {
            self.keys[i] = key;
            self.text_len[i] = NOT_TEXT;
            self.values[i] = value;
            self.len += 1;
        } else {
            self.more.push((key, value));
        }
    }

    fn push_str(&mut self, key: &'static str, text: &str) {
        let i = self.len;
        if i < INLINE_ATTRIBUTES && text.len() <= INLINE_STR {
            self.keys[i] = key;
            self.text[i][..text.len()].copy_from_slice(text.as_bytes());
            self.text_len[i] = text.len() as u8;
            self.len += 1;
        } else {
            self.push(key, SharedStr::new(text).into());
        }
    }

    /// The value of inline field `i` (`i < len`), taken out.
    fn take_value(&mut self, i: usize) -> AttributeValue {
        match self.text_len[i] {
            NOT_TEXT => std::mem::replace(&mut self.values[i], AttributeValue::Bool(false)),
            // The bytes were a whole `&str`: always valid.
            n => SharedStr::new(&String::from_utf8_lossy(&self.text[i][..usize::from(n)])).into(),
        }
    }

    /// Empties the fields, releasing what their values hold.
    fn clear(&mut self) {
        for i in 0..self.len {
            if self.text_len[i] == NOT_TEXT {
                self.values[i] = AttributeValue::Bool(false);
            }
        }
        self.len = 0;
        self.more.clear();
    }

    /// Moves the fields out as attributes, leaving them empty.
    fn take_attributes(&mut self) -> Vec<(SharedStr, AttributeValue)> {
        let mut out = Vec::with_capacity(self.len + self.more.len());
        for i in 0..self.len {
            out.push((SharedStr::from_static(self.keys[i]), self.take_value(i)));
        }
        out.extend(
            self.more
                .drain(..)
                .map(|(k, v)| (SharedStr::from_static(k), v)),
        );
        self.len = 0;
        out
    }

    /// Adds `other`'s fields after these.
    fn append(&mut self, mut other: Fields) {
        for i in 0..other.len {
            let value = other.take_value(i);
            self.push(other.keys[i], value);
        }
        for (k, v) in other.more {
            self.push(k, v);
        }
    }
}

/// Collects a span's fields into `attributes` (its state's, in its slot, at the start).
struct FieldVisitor<'a> {
    attributes: &'a mut Fields,
    error: bool,
    kind: Option<SpanKind>,
    traceparent: Option<String>,
    tracestate: Option<String>,
}

impl<'a> FieldVisitor<'a> {
    fn new(attributes: &'a mut Fields) -> Self {
        Self {
            attributes,
            error: false,
            kind: None,
            traceparent: None,
            tracestate: None,
        }
    }

    fn push(&mut self, field: &Field, value: AttributeValue) {
        self.attributes.push(field.name(), value);
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "error" {
            self.error |= value;
        }
        self.push(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, i64::try_from(value).unwrap_or(i64::MAX).into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "traceparent" => self.traceparent = Some(value.to_owned()),
            "tracestate" => self.tracestate = Some(value.to_owned()),
            "otel.kind" | "span.kind" => self.kind = parse_kind(value),
            name => {
                if name == "error" {
                    self.error = true;
                }
                // Short values are stored inline: no allocation.
                self.attributes.push_str(field.name(), value);
            }
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.error = true;
        self.push(field, value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "traceparent" => self.traceparent = Some(text),
            "tracestate" => self.tracestate = Some(text),
            "otel.kind" | "span.kind" => self.kind = parse_kind(&text),
            name => {
                if name == "error" {
                    self.error = true;
                }
                self.push(field, text.into());
            }
        }
    }
}

fn parse_kind(s: &str) -> Option<SpanKind> {
    match s.trim_matches('"').to_ascii_lowercase().as_str() {
        "server" => Some(SpanKind::Server),
        "client" => Some(SpanKind::Client),
        "producer" => Some(SpanKind::Producer),
        "consumer" => Some(SpanKind::Consumer),
        "internal" => Some(SpanKind::Internal),
        _ => None,
    }
}

thread_local! {
    static TICK: Cell<u64> = const { Cell::new(0) };
}

/// Counts this thread's layer calls.
#[inline]
fn tick() -> u64 {
    TICK.with(|t| {
        let n = t.get().wrapping_add(1);
        t.set(n);
        n
    })
}

impl TtaLayer {
    /// Adds a timed call's cost (scaled by the sampling) to the in-line overhead estimate.
    #[cold]
    fn add_overhead(&self, start_raw: u64) {
        let nanos = self.clock.elapsed_nanos(start_raw, self.clock.raw());
        self.obs
            .inner
            .overhead
            .add_inline_nanos(nanos.saturating_mul(INLINE_SAMPLE_EVERY));
    }
}

/// The span a new span or an event belongs to, as the registry sees it: the explicit
/// parent, or (for a contextual one) the current span of this thread.
fn enclosing<S>(explicit: Option<&Id>, contextual: bool, ctx: &Context<'_, S>) -> Option<u64>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match explicit {
        Some(p) => Some(p.into_u64()),
        None if contextual => ctx.current_span().id().map(Id::into_u64),
        None => None,
    }
}

impl<S> tracing_subscriber::Layer<S> for TtaLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let start_raw = self.clock.raw();
        let n = tick();
        if n.is_multiple_of(REANCHOR_EVERY) {
            self.clock.reanchor(start_raw);
        }
        let parent_id = enclosing(attrs.parent(), attrs.is_contextual(), &ctx);
        // The state is set in its slot: nothing is built elsewhere and moved in.
        self.spans.insert_with(id.into_u64(), |state| {
            self.start(state, attrs, parent_id, start_raw)
        });
        if n.is_multiple_of(INLINE_SAMPLE_EVERY) {
            self.add_overhead(start_raw);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        // Visited before the span's slot is locked: a field's `Debug` may emit events.
        let mut fields = Fields::default();
        let mut visitor = FieldVisitor::new(&mut fields);
        values.record(&mut visitor);
        let (error, kind) = (visitor.error, visitor.kind);
        self.spans.with(id.into_u64(), |state| {
            state.error |= error;
            state.attributes.append(fields);
            if let Some(kind) = kind {
                state.kind = kind;
            }
        });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        if let Some(span) = enclosing(event.parent(), event.is_contextual(), &ctx) {
            self.spans.with(span, |state| state.error = true);
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let end_raw = self.clock.raw();
        let n = tick();
        // The state is worked on in its slot (moving it out would copy ~250 bytes) and
        // released there (the slot keeps the value for its next span).
        self.spans
            .take_with(id.into_u64(), |state| self.close(state, end_raw));
        if n.is_multiple_of(INLINE_SAMPLE_EVERY) {
            self.add_overhead(end_raw);
        }
    }
}

impl TtaLayer {
    /// Sets the state of a new span, in its slot: every field, from its fields, its parent
    /// in this process (`parent_id`) or else the head decision.
    fn start(
        &self,
        state: &mut SpanState,
        attrs: &Attributes<'_>,
        parent_id: Option<u64>,
        start_raw: u64,
    ) {
        // Named one by one, so a new field cannot be left unset.
        let SpanState {
            name,
            trace_id,
            span_id,
            parent,
            start_raw: start,
            threshold,
            head_sampled,
            head_reason,
            error,
            kind,
            attributes,
            root,
            local,
        } = state;
        attributes.clear();
        let mut visitor = FieldVisitor::new(attributes);
        attrs.record(&mut visitor);
        // The new span's slot is locked and not yet published, and a parent never locks a
        // child's slot: locking the parent's here cannot deadlock.
        let inherited = parent_id.and_then(|p| {
            self.spans.with(p, |s| {
                (
                    s.trace_id,
                    *s.span_id.get_or_insert_with(SpanId::random),
                    s.threshold,
                    (s.head_sampled, s.head_reason),
                    s.root.unwrap_or(p),
                )
            })
        });
        let (head, local_root) = match inherited {
            Some((tid, parent_span, th, reason, root_id)) => {
                ((tid, Some(parent_span), th, reason), Some(root_id))
            }
            None => (
                self.head_decision(
                    visitor.traceparent.as_deref(),
                    visitor.tracestate.as_deref(),
                ),
                None,
            ),
        };
        *name = attrs.metadata().name();
        (
            *trace_id,
            *parent,
            *threshold,
            (*head_sampled, *head_reason),
        ) = head;
        *span_id = None;
        *start = start_raw;
        *error = visitor.error;
        *kind = visitor.kind.unwrap_or(if local_root.is_none() {
            SpanKind::Server
        } else {
            SpanKind::Internal
        });
        *local = local_root.is_none().then(LocalTrace::default);
        *root = local_root;
    }

    /// A span ended: record its execution and route it (see the type's docs).
    fn close(&self, state: &mut SpanState, end_raw: u64) {
        let duration_nanos = self.clock.elapsed_nanos(state.start_raw, end_raw);
        let inner = &self.obs.inner;
        // A multiplication: a division's latency showed in the close.
        let duration_ms = duration_nanos as f64 * 1e-6;
        let hint = &self.exec_hints[(state.name.as_ptr() as usize >> 3) & (EXEC_HINTS - 1)];
        inner
            .metrics
            .record_execution_hinted(hint, state.name, duration_ms, !state.error);
        let Some(pipeline) = &inner.pipeline else {
            return;
        };
        match (state.local.take(), state.root) {
            // A local root: decide the whole local trace now, by the tail rules. The root's
            // span record is only built when the trace is kept.
            (Some(local), _) => {
                self.finish_local_trace(pipeline, local, state, duration_nanos, duration_ms)
            }
            // A child: held by its root until the root ends (the root's slot is locked
            // while this one is; a root never locks a child's, so the order is fixed).
            (None, Some(root_id)) => {
                let finished = self.span_record(state, duration_nanos);
                match self.hold(root_id, finished) {
                    Route::Held => {}
                    Route::Submit(spans) => {
                        for s in spans {
                            pipeline.submit(s);
                        }
                    }
                }
            }
            (None, None) => {
                pipeline.submit(self.span_record(state, duration_nanos));
            }
        }
    }
}

impl TtaLayer {
    /// The span record of a finished span that lasted `duration_nanos` (its attributes are
    /// moved out of `state`).
    fn span_record(&self, state: &mut SpanState, duration_nanos: u64) -> Span {
        let start = self.clock.unix_nanos(state.start_raw);
        Span {
            trace_id: state.trace_id,
            span_id: *state.span_id.get_or_insert_with(SpanId::random),
            parent_span_id: state.parent,
            name: SharedStr::from_static(state.name),
            service: self.obs.inner.service.clone(),
            kind: state.kind,
            start_unix_nanos: start,
            end_unix_nanos: start.saturating_add(duration_nanos),
            status: if state.error {
                SpanStatus::Error(SharedStr::from_static("error"))
            } else {
                SpanStatus::Unset
            },
            attributes: state.attributes.take_attributes(),
            sampling_threshold: state.threshold,
        }
    }

    /// The head decision for a span with no parent in this process: a new trace, or one
    /// continued from a W3C `traceparent` field. Returns the trace id, the remote parent,
    /// the kept threshold and (sampled, reason).
    fn head_decision(
        &self,
        traceparent: Option<&str>,
        tracestate: Option<&str>,
    ) -> (TraceId, Option<SpanId>, Option<u64>, (bool, SamplingReason)) {
        let inner = &self.obs.inner;
        let remote = traceparent.and_then(|h| TraceParent::parse(h.trim()).ok());
        let (trace_id, parent, result) = match remote {
            Some(tp) => {
                let ot = tracestate
                    .and_then(|s| TraceState::parse(s).ok())
                    .and_then(|ts| ts.ot().ok().flatten());
                let parent_ctx = ParentContext::from_traceparent(&tp, ot.as_ref());
                let result = inner.sampler.should_sample_with_parent(
                    tp.trace_id(),
                    Some(&parent_ctx),
                    inner.overhead.current(),
                );
                (tp.trace_id(), Some(tp.parent_id()), result)
            }
            None => {
                let trace_id = TraceId::random();
                let result = inner
                    .sampler
                    .should_sample_head(trace_id, inner.overhead.current());
                (trace_id, None, result)
            }
        };
        let th = result
            .is_sampled()
            .then(|| result.threshold.map(|t| t.raw()))
            .flatten();
        (trace_id, parent, th, (result.is_sampled(), result.reason))
    }

    /// Puts a finished child span into its local root's trace, or says where it must go
    /// instead: the root already ended (a late span) or the trace spilled to the trace
    /// buffer.
    fn hold(&self, root_id: u64, span: Span) -> Route {
        let mut span = Some(span);
        let route = self.spans.with(root_id, |root| {
            let local = root.local.as_mut()?;
            if local.spilled {
                return None;
            }
            let span = span.take()?;
            local.error |= span.is_error();
            local.spans.push(span);
            if local.spans.len() >= LOCAL_TRACE_MAX_SPANS {
                local.spilled = true;
                return Some(Route::Submit(std::mem::take(&mut local.spans)));
            }
            Some(Route::Held)
        });
        match (route.flatten(), span) {
            (Some(route), _) => route,
            (None, Some(span)) => Route::Submit(vec![span]),
            // Unreachable: the span is only taken when a route is returned.
            (None, None) => Route::Held,
        }
    }

    /// The local root ended: apply the tail rules to the whole local trace. Kept traces go
    /// to the pipeline already decided (no trace-buffer work); dropped ones are only counted.
    fn finish_local_trace(
        &self,
        pipeline: &tta_export::SpanPipeline,
        local: LocalTrace,
        root: &mut SpanState,
        duration_nanos: u64,
        duration_ms: f64,
    ) {
        if local.spilled {
            // The trace buffer holds the rest of this trace and decides it.
            pipeline.submit(self.span_record(root, duration_nanos));
            return;
        }
        let head = SamplingResult {
            decision: if root.head_sampled {
                SamplingDecision::Sample
            } else {
                SamplingDecision::Drop
            },
            reason: root.head_reason,
            threshold: root.threshold.map(Threshold::from_raw),
        };
        let result = self.obs.inner.sampler.should_sample_tail(
            root.trace_id,
            local.error || root.error,
            duration_ms,
            &head,
        );
        if !result.is_sampled() {
            pipeline.record_sampled_out(local.spans.len() as u64 + 1);
            return;
        }
        let th = result.threshold.map(|t| t.raw());
        let mut record = self.span_record(root, duration_nanos);
        record.sampling_threshold = th;
        if local.spans.is_empty() {
            // A trace of one span goes without a vector.
            pipeline.submit_decided_span(record);
            return;
        }
        let mut spans = local.spans;
        spans.push(record);
        for s in &mut spans {
            s.sampling_threshold = th;
        }
        pipeline.submit_decided(spans);
    }
}
