//! Shared vocabulary of tta-observability: trace and span ids, W3C Trace Context, the span
//! record and clocks.
//!
//! Every other tta crate speaks in these types. Depend on `tta-core` directly only when you
//! build spans or parse trace context yourself; most services depend on the
//! `tta-observability` facade, which re-exports this crate as `tta_observability::core`.
//!
//! ```
//! use tta_core::{Span, SpanStatus, TraceId, TraceParent};
//!
//! let parent: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?;
//! assert!(parent.sampled());
//! let span = Span {
//!     trace_id: parent.trace_id(),
//!     name: "GET /api".into(),
//!     service: "checkout".into(),
//!     start_unix_nanos: 1_000_000,
//!     end_unix_nanos: 3_500_000,
//!     status: SpanStatus::Error("timeout".into()),
//!     ..Default::default()
//! };
//! assert_eq!(span.duration_ms(), 2.5);
//! assert!(span.is_error());
//! assert_eq!(TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736")?, span.trace_id);
//! # Ok::<(), tta_core::ParseError>(())
//! ```
//!
//! This crate has no optional features.

mod clock;
mod context;
mod error;
mod ids;
mod snapshot;
mod span;
mod string;
mod striped;

pub use clock::{Clock, ManualClock, SystemClock};
pub use context::{OtTraceState, ThString, TraceParent, TraceState, format_th, parse_th};
pub use error::ParseError;
pub use ids::{SpanId, TraceId};
pub use snapshot::{MetricSeries, MetricValue, MetricsSnapshot};
pub use span::{AttributeValue, Span, SpanKind, SpanStatus};
pub use string::SharedStr;
pub use striped::{StripedCounters, thread_stripe};

/// Number of bits of randomness in an OpenTelemetry trace id or `rv` value.
pub const RANDOMNESS_BITS: u32 = 56;
/// `2^56`: the exclusive upper bound of randomness and thresholds.
pub const MAX_THRESHOLD: u64 = 1 << RANDOMNESS_BITS;
