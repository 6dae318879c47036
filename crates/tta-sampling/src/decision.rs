//! The result of a sampling decision.

use serde::{Deserialize, Serialize};

use crate::Threshold;

/// Keep or drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingDecision {
    /// Record and export the trace.
    Sample,
    /// Do not export the trace.
    Drop,
}

impl SamplingDecision {
    /// `"sample"` or `"drop"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sample => "sample",
            Self::Drop => "drop",
        }
    }

    /// Whether this is [`SamplingDecision::Sample`].
    pub fn is_sample(self) -> bool {
        self == Self::Sample
    }
}

/// Why a decision was made.
///
/// A tail decision that no tail rule changed keeps the head decision's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SamplingReason {
    /// The consistent probability decision at the configured fixed rate.
    HeadRate,
    /// The consistent probability decision at the adaptive sampler's current rate.
    Adaptive,
    /// The parent was sampled and the policy follows the parent.
    ParentSampled,
    /// The parent was not sampled and the policy follows the parent.
    ParentNotSampled,
    /// A parent-based branch configured to always or never sample.
    Policy,
    /// Tail rule: the trace has an error and `always_sample_errors` is on.
    Error,
    /// Tail rule: the trace is slower than `slow_threshold_ms` and `always_sample_slow` is on.
    Slow,
}

impl SamplingReason {
    /// Every reason, in declaration order (the index used by statistics).
    pub const ALL: [Self; 7] = [
        Self::HeadRate,
        Self::Adaptive,
        Self::ParentSampled,
        Self::ParentNotSampled,
        Self::Policy,
        Self::Error,
        Self::Slow,
    ];

    /// Snake-case name (`"head_rate"`, `"error"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HeadRate => "head_rate",
            Self::Adaptive => "adaptive",
            Self::ParentSampled => "parent_sampled",
            Self::ParentNotSampled => "parent_not_sampled",
            Self::Policy => "policy",
            Self::Error => "error",
            Self::Slow => "slow",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A sampling decision, why it was made, and the OpenTelemetry threshold to propagate.
///
/// `threshold` is `Some` for kept traces whose sampling probability is known: the rate's
/// threshold for probability decisions, the parent's (verified) threshold for parent-based
/// ones, and `th:0` ([`Threshold::ALWAYS`]) for error and slow traces, which are kept with
/// probability 1. It is `None` for dropped traces and where the probability is unknown.
///
/// ```
/// use tta_sampling::{CompositeSampler, SamplingConfig, SamplingDecision, SamplingReason};
/// let config = SamplingConfig { default_rate: 1.0, adaptive_enabled: false, ..Default::default() };
/// let sampler = CompositeSampler::new(config);
/// let head = sampler.should_sample_head("trace-123", None);
/// assert_eq!(head.decision, SamplingDecision::Sample);
/// assert_eq!(head.reason, SamplingReason::HeadRate);
/// assert_eq!(head.threshold.map(|t| t.to_string()).as_deref(), Some("0"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SamplingResult {
    /// Keep or drop.
    pub decision: SamplingDecision,
    /// Why.
    pub reason: SamplingReason,
    /// The `th` to propagate with kept spans.
    pub threshold: Option<Threshold>,
}

impl SamplingResult {
    /// Whether the trace is kept.
    pub fn is_sampled(&self) -> bool {
        self.decision == SamplingDecision::Sample
    }

    pub(crate) fn sample(reason: SamplingReason, threshold: Option<Threshold>) -> Self {
        Self {
            decision: SamplingDecision::Sample,
            reason,
            threshold,
        }
    }

    pub(crate) fn drop(reason: SamplingReason) -> Self {
        Self {
            decision: SamplingDecision::Drop,
            reason,
            threshold: None,
        }
    }
}
