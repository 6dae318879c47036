//! An `opentelemetry_sdk` sampler that makes our consistent decision and writes the
//! OpenTelemetry `ot=th:<threshold>` member into the span's trace state, so downstream
//! collectors can compute adjusted counts and every service sampling the same trace at the
//! same rate agrees.

use std::sync::Arc;

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};
use tta_core::OtTraceState;
use tta_sampling::{CompositeSampler, ParentContext, Randomness, SamplingConfig, Threshold};

/// `opentelemetry_sdk::trace::ShouldSample` backed by a [`CompositeSampler`].
///
/// ```
/// use opentelemetry::trace::{Tracer, TracerProvider};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use tta_observability::otel::TtaSampler;
/// use tta_observability::sampling::SamplingConfig;
///
/// let provider = SdkTracerProvider::builder()
///     .with_sampler(TtaSampler::new(SamplingConfig { default_rate: 1.0, adaptive_enabled: false, ..Default::default() }))
///     .build();
/// let tracer = provider.tracer("docs");
/// tracer.in_span("op", |cx| {
///     use opentelemetry::trace::TraceContextExt;
///     let sc = cx.span().span_context().clone();
///     assert!(sc.is_sampled());
///     assert_eq!(sc.trace_state().get("ot"), Some("th:0"));
/// });
/// ```
#[derive(Clone, Debug)]
pub struct TtaSampler {
    sampler: Arc<CompositeSampler>,
}

impl TtaSampler {
    /// A sampler with its own [`CompositeSampler`].
    pub fn new(config: SamplingConfig) -> Self {
        Self {
            sampler: Arc::new(CompositeSampler::new(config)),
        }
    }

    /// A sampler sharing an existing [`CompositeSampler`] (for example the runtime's, so
    /// reloads apply to both).
    pub fn from_sampler(sampler: Arc<CompositeSampler>) -> Self {
        Self { sampler }
    }

    /// The underlying sampler.
    pub fn sampler(&self) -> &Arc<CompositeSampler> {
        &self.sampler
    }
}

fn to_ours(id: TraceId) -> tta_core::TraceId {
    tta_core::TraceId::from_bytes(id.to_bytes())
}

impl ShouldSample for TtaSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context
            .filter(|cx| cx.has_active_span())
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid());
        let parent_state = parent
            .as_ref()
            .map(|sc| sc.trace_state().clone())
            .unwrap_or_default();
        let mut ot = parent_state
            .get("ot")
            .and_then(|v| OtTraceState::parse(v).ok())
            .unwrap_or_default();
        let result = match &parent {
            Some(sc) => {
                let pc = if sc.is_remote() {
                    ParentContext::remote(sc.is_sampled())
                } else {
                    ParentContext::local(sc.is_sampled())
                };
                let pc = ParentContext {
                    threshold: ot.th().and_then(|t| Threshold::try_from_raw(t).ok()),
                    randomness: ot.rv().and_then(|r| Randomness::from_rv(r).ok()),
                    ..pc
                };
                self.sampler
                    .should_sample_with_parent(to_ours(trace_id), Some(&pc), None)
            }
            None => self.sampler.should_sample_head(to_ours(trace_id), None),
        };
        let sampled = result.is_sampled();
        ot.set_th(if sampled {
            result.threshold.map(|t| t.raw())
        } else {
            None
        });
        let trace_state = if ot.is_empty() {
            parent_state.delete("ot").unwrap_or(parent_state)
        } else {
            let value = ot.to_string();
            parent_state
                .insert("ot", value)
                .unwrap_or_else(|_| TraceState::default())
        };
        SamplingResult {
            decision: if sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state,
        }
    }
}
