//! Head, tail, adaptive and OpenTelemetry-consistent trace sampling, and the trace assembly
//! buffer for in-process tail sampling.
//!
//! Depend on this crate alone when a service only needs sampling decisions; depend on the
//! `tta-observability` facade (which re-exports it as `tta_observability::sampling`) for the
//! wired pipeline, metrics, storage and health endpoints.
//!
//! - [`Threshold`] and [`Randomness`]: the OpenTelemetry consistent probability scheme. A
//!   probability `p` becomes a rejection threshold `T = (1 - p) * 2^56`, written as the
//!   tracestate value `ot=th:<hex>`; a trace is kept iff its 56-bit randomness `R >= T`, so
//!   every service sampling the same trace at the same rate agrees without coordination.
//! - [`CompositeSampler`]: the guide's sampler. Head decisions at a fixed or adaptive rate,
//!   parent-based per OpenTelemetry's five branches ([`ParentPolicy`]), tail rules (errors,
//!   slow traces), lock-free hot reload, and [`SamplerStats`].
//! - [`AdaptiveSampler`]: moves the rate toward a target overhead within bounds.
//! - [`TraceBuffer`]: assembles ended spans into traces within a byte budget and applies the
//!   tail decision when each trace completes.
//!
//! Decisions are lock-free and allocation-free. The crate does no I/O and starts no
//! threads; time is passed in or read from an injected [`tta_core::Clock`].
//!
//! ```
//! use tta_sampling::{CompositeSampler, SamplingConfig, SamplingDecision, TraceId};
//!
//! let sampler = CompositeSampler::new(SamplingConfig { default_rate: 0.05, ..Default::default() });
//! let trace_id = TraceId::random();
//! let head = sampler.should_sample_head(trace_id, Some(0.02));
//! if head.decision == SamplingDecision::Sample {
//!     // Record the trace; propagate `ot=th:<threshold>` downstream.
//!     let th = head.threshold.expect("kept by rate").to_string();
//!     assert_eq!(th, "f3333");
//! }
//! // After the request: errors and slow requests are kept whatever the head said.
//! let tail = sampler.should_sample_tail(trace_id, true, 12.0, &head);
//! assert_eq!(tail.decision, SamplingDecision::Sample);
//! assert!(sampler.stats().current_rate > 0.0);
//! ```
//!
//! This crate has no optional features.

mod adaptive;
mod buffer;
mod composite;
mod config;
mod decision;
mod error;
mod hash;
mod threshold;

pub use adaptive::{AdaptiveConfig, AdaptiveSampler, AdaptiveStats};
pub use buffer::{DecidedTrace, TraceBuffer, TraceBufferStats};
pub use composite::{
    BranchPolicy, CompositeSampler, DecisionCounts, ParentContext, ParentPolicy, ReasonCounts,
    SamplerStats,
};
pub use config::SamplingConfig;
pub use decision::{SamplingDecision, SamplingReason, SamplingResult};
pub use error::SamplingError;
pub use threshold::{DEFAULT_PRECISION, MIN_PROBABILITY, Randomness, SamplingKey, Threshold};
pub use tta_core::{
    Clock, ManualClock, OtTraceState, Span, SpanId, SpanStatus, SystemClock, TraceId, TraceParent,
};
