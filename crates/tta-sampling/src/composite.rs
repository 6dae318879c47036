//! `CompositeSampler`: head (rate, adaptive, parent-based) and tail decisions together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use tta_core::{Clock, OtTraceState, Span, SystemClock, TraceParent};

use crate::adaptive::{AdaptiveSampler, AdaptiveStats};
use crate::threshold::threshold_for_rate;
use crate::{
    Randomness, SamplingConfig, SamplingError, SamplingKey, SamplingReason, SamplingResult,
    Threshold,
};
use tta_core::StripedCounters as Counters;

/// What one branch of the parent-based sampler does (OpenTelemetry's `ParentBased` has five
/// branches: root, and remote or local parent that is sampled or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchPolicy {
    /// Take the parent's decision and propagate its threshold (when consistent). At the root,
    /// where there is no parent, this means [`BranchPolicy::Rate`].
    #[default]
    FollowParent,
    /// Make the consistent probability decision at the current (fixed or adaptive) rate,
    /// ignoring the parent's decision.
    Rate,
    /// Always sample, with threshold `th:0`.
    AlwaysSample,
    /// Never sample.
    NeverSample,
}

impl BranchPolicy {
    fn to_bits(self) -> u32 {
        match self {
            Self::FollowParent => 0,
            Self::Rate => 1,
            Self::AlwaysSample => 2,
            Self::NeverSample => 3,
        }
    }

    fn from_bits(bits: u32) -> Self {
        match bits & 3 {
            0 => Self::FollowParent,
            1 => Self::Rate,
            2 => Self::AlwaysSample,
            _ => Self::NeverSample,
        }
    }
}

/// The five branches of parent-based sampling. `Default` is OpenTelemetry's default
/// `ParentBased(root = rate)`: roots get the rate decision, children follow their parent.
///
/// ```
/// use tta_sampling::{BranchPolicy, CompositeSampler, ParentContext, ParentPolicy, SamplingConfig};
/// // Re-decide remote children whose caller dropped them (e.g. at a trust boundary).
/// let policy = ParentPolicy { remote_parent_not_sampled: BranchPolicy::Rate, ..Default::default() };
/// let sampler = CompositeSampler::new(SamplingConfig { default_rate: 1.0, adaptive_enabled: false, ..Default::default() })
///     .with_parent_policy(policy);
/// let r = sampler.should_sample_with_parent("trace-1", Some(&ParentContext::remote(false)), None);
/// assert!(r.is_sampled());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParentPolicy {
    /// No parent (default [`BranchPolicy::Rate`]).
    pub root: BranchPolicy,
    /// Remote parent, sampled (default follow: sample).
    pub remote_parent_sampled: BranchPolicy,
    /// Remote parent, not sampled (default follow: drop).
    pub remote_parent_not_sampled: BranchPolicy,
    /// Local parent, sampled (default follow: sample).
    pub local_parent_sampled: BranchPolicy,
    /// Local parent, not sampled (default follow: drop).
    pub local_parent_not_sampled: BranchPolicy,
}

impl Default for ParentPolicy {
    fn default() -> Self {
        Self {
            root: BranchPolicy::Rate,
            remote_parent_sampled: BranchPolicy::FollowParent,
            remote_parent_not_sampled: BranchPolicy::FollowParent,
            local_parent_sampled: BranchPolicy::FollowParent,
            local_parent_not_sampled: BranchPolicy::FollowParent,
        }
    }
}

impl ParentPolicy {
    fn pack(&self) -> u32 {
        [
            self.root,
            self.remote_parent_sampled,
            self.remote_parent_not_sampled,
            self.local_parent_sampled,
            self.local_parent_not_sampled,
        ]
        .iter()
        .enumerate()
        .fold(0, |acc, (i, b)| acc | (b.to_bits() << (2 * i)))
    }

    fn unpack(bits: u32) -> Self {
        let b = |i: u32| BranchPolicy::from_bits(bits >> (2 * i));
        Self {
            root: b(0),
            remote_parent_sampled: b(1),
            remote_parent_not_sampled: b(2),
            local_parent_sampled: b(3),
            local_parent_not_sampled: b(4),
        }
    }
}

/// What a child span knows about its parent: its sampled flag, whether it came from another
/// process, and the OpenTelemetry `th`/`rv` it carried.
///
/// ```
/// use tta_core::{OtTraceState, TraceParent};
/// use tta_sampling::{ParentContext, Threshold};
/// let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
/// let ot = OtTraceState::parse("th:c")?;
/// let parent = ParentContext::from_traceparent(&tp, Some(&ot));
/// assert!(parent.sampled && parent.remote);
/// assert_eq!(parent.threshold, Some(Threshold::parse("c")?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ParentContext {
    /// The parent's sampled flag.
    pub sampled: bool,
    /// Whether the parent is in another process (extracted from headers).
    pub remote: bool,
    /// The `th` the parent propagated, if any.
    pub threshold: Option<Threshold>,
    /// The explicit `rv` the parent propagated, if any; it replaces the trace id's randomness.
    pub randomness: Option<Randomness>,
}

impl ParentContext {
    /// A remote parent with this sampled flag and no `th`/`rv`.
    pub fn remote(sampled: bool) -> Self {
        Self {
            sampled,
            remote: true,
            ..Self::default()
        }
    }

    /// A local (same process) parent with this sampled flag and no `th`/`rv`.
    pub fn local(sampled: bool) -> Self {
        Self {
            sampled,
            remote: false,
            ..Self::default()
        }
    }

    /// A remote parent from an incoming `traceparent` and the parsed `ot` tracestate member.
    /// A `th` of 2^56 or more, or an `rv` that does not fit 56 bits, is ignored.
    pub fn from_traceparent(traceparent: &TraceParent, ot: Option<&OtTraceState>) -> Self {
        Self {
            sampled: traceparent.sampled(),
            remote: true,
            threshold: ot
                .and_then(OtTraceState::th)
                .and_then(|t| Threshold::try_from_raw(t).ok()),
            randomness: ot
                .and_then(OtTraceState::rv)
                .and_then(|r| Randomness::from_rv(r).ok()),
        }
    }
}

/// Counts by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReasonCounts {
    /// [`SamplingReason::HeadRate`].
    pub head_rate: u64,
    /// [`SamplingReason::Adaptive`].
    pub adaptive: u64,
    /// [`SamplingReason::ParentSampled`].
    pub parent_sampled: u64,
    /// [`SamplingReason::ParentNotSampled`].
    pub parent_not_sampled: u64,
    /// [`SamplingReason::Policy`].
    pub policy: u64,
    /// [`SamplingReason::Error`].
    pub error: u64,
    /// [`SamplingReason::Slow`].
    pub slow: u64,
}

impl ReasonCounts {
    /// The count for one reason.
    pub fn get(&self, reason: SamplingReason) -> u64 {
        match reason {
            SamplingReason::HeadRate => self.head_rate,
            SamplingReason::Adaptive => self.adaptive,
            SamplingReason::ParentSampled => self.parent_sampled,
            SamplingReason::ParentNotSampled => self.parent_not_sampled,
            SamplingReason::Policy => self.policy,
            SamplingReason::Error => self.error,
            SamplingReason::Slow => self.slow,
        }
    }

    fn from_fn(f: impl Fn(SamplingReason) -> u64) -> Self {
        Self {
            head_rate: f(SamplingReason::HeadRate),
            adaptive: f(SamplingReason::Adaptive),
            parent_sampled: f(SamplingReason::ParentSampled),
            parent_not_sampled: f(SamplingReason::ParentNotSampled),
            policy: f(SamplingReason::Policy),
            error: f(SamplingReason::Error),
            slow: f(SamplingReason::Slow),
        }
    }
}

/// Decision counts of one kind (head or tail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DecisionCounts {
    /// Decisions made.
    pub decisions: u64,
    /// Of which sampled.
    pub sampled: u64,
    /// Of which dropped.
    pub dropped: u64,
    /// Sampled decisions by reason.
    pub sampled_by_reason: ReasonCounts,
    /// Dropped decisions by reason.
    pub dropped_by_reason: ReasonCounts,
}

/// A snapshot of a [`CompositeSampler`]'s counters and state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplerStats {
    /// Head decisions ([`CompositeSampler::should_sample_head`] and
    /// [`should_sample_with_parent`](CompositeSampler::should_sample_with_parent)).
    pub head: DecisionCounts,
    /// Tail decisions ([`CompositeSampler::should_sample_tail`]).
    pub tail: DecisionCounts,
    /// The head rate in force now (the adaptive rate when adaptive sampling is on).
    pub current_rate: f64,
    /// Whether adaptive sampling is on.
    pub adaptive_enabled: bool,
    /// The adaptive sampler's state (its `decisions` count only direct use of it; decisions
    /// through the composite sampler are in `head`).
    pub adaptive: AdaptiveStats,
    /// Incoming parent thresholds erased (or ignored) because they contradicted the parent's
    /// sampled flag and randomness.
    pub thresholds_erased: u64,
}

const REASONS: usize = SamplingReason::ALL.len();
const HEAD: usize = 0;
const TAIL: usize = 2 * REASONS;
const ERASED: usize = 4 * REASONS;
const COUNTERS: usize = ERASED + 1;

/// The slow rule's threshold as stored in `CompositeSampler::slow_above_ms`.
fn slow_bits(config: &SamplingConfig) -> u64 {
    if config.always_sample_slow {
        config.slow_threshold_ms.to_bits()
    } else {
        f64::INFINITY.to_bits()
    }
}

fn slot(base: usize, keep: bool, reason: SamplingReason) -> usize {
    base + if keep { 0 } else { REASONS } + reason.index()
}

/// The sampler the guide describes: head decisions at a fixed or adaptive rate with
/// OpenTelemetry-consistent thresholds and parent-based behaviour, and tail rules (errors,
/// slow traces) applied after the trace completes.
///
/// `Send + Sync`; decisions take no lock and allocate nothing. [`reconfigure`](Self::reconfigure)
/// swaps the configuration atomically for hot reload.
///
/// Tail rules, exactly as the guide states them: keep if `has_error` and
/// `always_sample_errors`; keep if `duration_ms > slow_threshold_ms` and
/// `always_sample_slow`; otherwise the head decision. Error and slow traces are kept with
/// probability 1, so they carry `th:0` (adjusted count 1).
///
/// ```
/// use tta_sampling::{CompositeSampler, SamplingConfig, SamplingDecision, SamplingReason};
///
/// let sampler = CompositeSampler::new(SamplingConfig { default_rate: 0.05, ..Default::default() });
/// let head = sampler.should_sample_head("trace-123", Some(0.02));
/// let tail = sampler.should_sample_tail("trace-123", true, 120.0, &head);
/// assert_eq!(tail.decision, SamplingDecision::Sample);
/// assert_eq!(tail.reason, SamplingReason::Error);
/// let slow = sampler.should_sample_tail("trace-123", false, 1500.0, &head);
/// assert_eq!(slow.reason, SamplingReason::Slow);
/// let plain = sampler.should_sample_tail("trace-123", false, 20.0, &head);
/// assert_eq!(plain, head);
/// assert_eq!(sampler.stats().tail.decisions, 3);
/// ```
pub struct CompositeSampler {
    config: ArcSwap<SamplingConfig>,
    fixed_threshold: AtomicU64,
    adaptive_enabled: AtomicBool,
    /// The tail rules, mirrored from `config` so a tail decision reads two atomics:
    /// `always_sample_errors`, and the slow threshold in ms as `f64` bits (infinite when
    /// `always_sample_slow` is off).
    errors_always: AtomicBool,
    slow_above_ms: AtomicU64,
    adaptive: AdaptiveSampler,
    policy: AtomicU32,
    counters: Counters<COUNTERS>,
}

impl std::fmt::Debug for CompositeSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompositeSampler")
            .field("config", &self.config.load())
            .field("policy", &self.parent_policy())
            .field("stats", &self.stats())
            .finish()
    }
}

impl CompositeSampler {
    /// A sampler for `config` on the system clock. It never fails: invalid fields are replaced
    /// by their defaults ([`SamplingConfig::sanitized`]); validate first, or use
    /// [`try_new`](Self::try_new), to reject them instead.
    pub fn new(config: SamplingConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A sampler for `config`, rejecting an invalid configuration.
    pub fn try_new(config: SamplingConfig) -> Result<Self, SamplingError> {
        config.validate()?;
        Ok(Self::new(config))
    }

    /// A sampler whose adaptive adjustments read time from `clock`.
    pub fn with_clock(config: SamplingConfig, clock: Arc<dyn Clock>) -> Self {
        let config = config.sanitized();
        Self {
            fixed_threshold: AtomicU64::new(threshold_for_rate(config.default_rate)),
            adaptive_enabled: AtomicBool::new(config.adaptive_enabled),
            errors_always: AtomicBool::new(config.always_sample_errors),
            slow_above_ms: AtomicU64::new(slow_bits(&config)),
            adaptive: AdaptiveSampler::with_clock(config.adaptive_config(), clock),
            policy: AtomicU32::new(ParentPolicy::default().pack()),
            counters: Counters::new(),
            config: ArcSwap::from_pointee(config),
        }
    }

    /// Sets the parent-based policy (builder style).
    pub fn with_parent_policy(self, policy: ParentPolicy) -> Self {
        self.set_parent_policy(policy);
        self
    }

    /// Replaces the parent-based policy (atomically; takes effect for the next decision).
    pub fn set_parent_policy(&self, policy: ParentPolicy) {
        self.policy.store(policy.pack(), Ordering::Relaxed);
    }

    /// The parent-based policy in force.
    pub fn parent_policy(&self) -> ParentPolicy {
        ParentPolicy::unpack(self.policy.load(Ordering::Relaxed))
    }

    /// The head decision for a trace root (no parent): the consistent probability decision at
    /// the current rate, adaptive when enabled (a valid `current_overhead` feeds it).
    #[inline]
    pub fn should_sample_head(
        &self,
        key: impl SamplingKey,
        current_overhead: Option<f64>,
    ) -> SamplingResult {
        self.should_sample_with_parent(key, None, current_overhead)
    }

    /// The head decision for a span with an optional parent, per the parent-based policy.
    ///
    /// A sampled parent's `th` is propagated only if it is consistent (`R >= T`, with `R` the
    /// parent's `rv` or else the key's randomness); an inconsistent one is erased, as the
    /// OpenTelemetry specification requires, and counted in
    /// [`SamplerStats::thresholds_erased`]. A sampled parent without `th` gives a sampled
    /// result without threshold (probability unknown).
    #[inline]
    pub fn should_sample_with_parent(
        &self,
        key: impl SamplingKey,
        parent: Option<&ParentContext>,
        current_overhead: Option<f64>,
    ) -> SamplingResult {
        let policy = self.policy.load(Ordering::Relaxed);
        let (branch, parent) = match parent {
            None => (BranchPolicy::from_bits(policy), None),
            Some(p) => {
                let index = 1 + 2 * u32::from(!p.remote) + u32::from(!p.sampled);
                (BranchPolicy::from_bits(policy >> (2 * index)), Some(p))
            }
        };
        let randomness = || match parent.and_then(|p| p.randomness) {
            Some(r) => r,
            None => key.randomness(),
        };
        let result = match (branch, parent) {
            (BranchPolicy::Rate, _) | (BranchPolicy::FollowParent, None) => {
                self.rate_decision(randomness(), current_overhead, true)
            }
            (BranchPolicy::AlwaysSample, _) => {
                SamplingResult::sample(SamplingReason::Policy, Some(Threshold::ALWAYS))
            }
            (BranchPolicy::NeverSample, _) => SamplingResult::drop(SamplingReason::Policy),
            (BranchPolicy::FollowParent, Some(p)) => {
                let consistent = p.threshold.map(|t| t.keeps(randomness()));
                if p.sampled {
                    if consistent == Some(false) {
                        self.counters.incr(ERASED);
                    }
                    let threshold = p.threshold.filter(|_| consistent == Some(true));
                    SamplingResult::sample(SamplingReason::ParentSampled, threshold)
                } else {
                    if consistent == Some(true) {
                        self.counters.incr(ERASED);
                    }
                    SamplingResult::drop(SamplingReason::ParentNotSampled)
                }
            }
        };
        self.counters
            .incr(slot(HEAD, result.is_sampled(), result.reason));
        result
    }

    /// The tail decision once the trace is complete: the guide's rules (see the type docs).
    pub fn should_sample_tail(
        &self,
        _key: impl SamplingKey,
        has_error: bool,
        duration_ms: f64,
        head: &SamplingResult,
    ) -> SamplingResult {
        let result = if has_error && self.errors_always.load(Ordering::Relaxed) {
            SamplingResult::sample(SamplingReason::Error, Some(Threshold::ALWAYS))
        } else if duration_ms > f64::from_bits(self.slow_above_ms.load(Ordering::Relaxed)) {
            SamplingResult::sample(SamplingReason::Slow, Some(Threshold::ALWAYS))
        } else {
            *head
        };
        self.counters
            .incr(slot(TAIL, result.is_sampled(), result.reason));
        result
    }

    /// Whether `span`'s trace is certainly kept whatever else arrives: its recorded head
    /// decision is a keep with threshold 0, or it records none and the head keeps every
    /// trace now (tail rules only ever keep more). Such a span needs no trace buffering;
    /// hand it on after [`record_passed`](Self::record_passed).
    #[inline]
    pub fn certainly_keeps(&self, span: &Span) -> bool {
        match span.sampling_threshold {
            Some(t) => t == Threshold::ALWAYS.raw(),
            None => self.keeps_everything(),
        }
    }

    /// Records a span [`certainly_keeps`](Self::certainly_keeps) found kept, as the trace
    /// buffer would have: a root's trace counts as decided by the tail rules (for the
    /// decision statistics), and the span carries threshold 0.
    #[inline]
    pub fn record_passed(&self, span: &mut Span) {
        let _ = self.passed_decision(span);
        span.sampling_threshold = Some(Threshold::ALWAYS.raw());
    }

    /// The decision for a certainly-kept span: a root's is the tail rules' (counted), a
    /// child's the head's keep.
    #[inline]
    pub(crate) fn passed_decision(&self, span: &Span) -> SamplingResult {
        let head = SamplingResult::sample(SamplingReason::HeadRate, Some(Threshold::ALWAYS));
        if span.parent_span_id.is_some() {
            return head;
        }
        self.should_sample_tail(
            span.trace_id,
            span.is_error(),
            span.duration_nanos() as f64 / 1e6,
            &head,
        )
    }

    /// Whether the head keeps every trace now (rate 1, so threshold 0): then a trace's
    /// outcome cannot depend on its randomness or on the tail rules.
    #[inline]
    pub(crate) fn keeps_everything(&self) -> bool {
        let threshold = if self.adaptive_enabled.load(Ordering::Relaxed) {
            self.adaptive.raw_threshold()
        } else {
            self.fixed_threshold.load(Ordering::Relaxed)
        };
        threshold == Threshold::ALWAYS.raw()
    }

    /// The head decision a root with this key got (or would get) at the current rate,
    /// without counting it or feeding the adaptive sampler; the trace buffer uses it to
    /// recompute head decisions.
    pub(crate) fn recompute_head(&self, randomness: Randomness) -> SamplingResult {
        self.rate_decision(randomness, None, false)
    }

    #[inline]
    fn rate_decision(
        &self,
        randomness: Randomness,
        current_overhead: Option<f64>,
        observe: bool,
    ) -> SamplingResult {
        let (threshold, reason) = if self.adaptive_enabled.load(Ordering::Relaxed) {
            if observe {
                self.adaptive.observe(current_overhead);
            }
            (self.adaptive.raw_threshold(), SamplingReason::Adaptive)
        } else {
            (
                self.fixed_threshold.load(Ordering::Relaxed),
                SamplingReason::HeadRate,
            )
        };
        if randomness.value() >= threshold {
            SamplingResult::sample(reason, Some(Threshold::from_raw(threshold)))
        } else {
            SamplingResult::drop(reason)
        }
    }

    /// Validates `config` and swaps it in without blocking decisions. The adaptive rate is
    /// kept (clamped into the new bounds) unless `default_rate` changed. On error nothing
    /// changes.
    pub fn reconfigure(&self, config: SamplingConfig) -> Result<(), SamplingError> {
        config.validate()?;
        self.adaptive.reconfigure(config.adaptive_config())?;
        self.fixed_threshold
            .store(threshold_for_rate(config.default_rate), Ordering::Relaxed);
        self.adaptive_enabled
            .store(config.adaptive_enabled, Ordering::Relaxed);
        self.errors_always
            .store(config.always_sample_errors, Ordering::Relaxed);
        self.slow_above_ms
            .store(slow_bits(&config), Ordering::Relaxed);
        self.config.store(Arc::new(config));
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<SamplingConfig> {
        self.config.load_full()
    }

    /// The head rate in force now: the adaptive rate when adaptive sampling is on, else
    /// `default_rate`.
    pub fn current_rate(&self) -> f64 {
        if self.adaptive_enabled.load(Ordering::Relaxed) {
            self.adaptive.current_rate()
        } else {
            self.config.load().default_rate
        }
    }

    /// The threshold root decisions use now (`None` when the rate is 0).
    pub fn current_threshold(&self) -> Option<Threshold> {
        let raw = if self.adaptive_enabled.load(Ordering::Relaxed) {
            self.adaptive.raw_threshold()
        } else {
            self.fixed_threshold.load(Ordering::Relaxed)
        };
        Threshold::try_from_raw(raw).ok()
    }

    /// The adaptive sampler inside (its rate is used when `adaptive_enabled`); tests and
    /// benches call [`AdaptiveSampler::adjust`] on it.
    pub fn adaptive(&self) -> &AdaptiveSampler {
        &self.adaptive
    }

    /// Counters and current state.
    pub fn stats(&self) -> SamplerStats {
        let counts = |base: usize| {
            let sampled_by_reason =
                ReasonCounts::from_fn(|r| self.counters.get(slot(base, true, r)));
            let dropped_by_reason =
                ReasonCounts::from_fn(|r| self.counters.get(slot(base, false, r)));
            let sum = |c: &ReasonCounts| SamplingReason::ALL.iter().map(|&r| c.get(r)).sum::<u64>();
            let sampled = sum(&sampled_by_reason);
            let dropped = sum(&dropped_by_reason);
            DecisionCounts {
                decisions: sampled + dropped,
                sampled,
                dropped,
                sampled_by_reason,
                dropped_by_reason,
            }
        };
        SamplerStats {
            head: counts(HEAD),
            tail: counts(TAIL),
            current_rate: self.current_rate(),
            adaptive_enabled: self.adaptive_enabled.load(Ordering::Relaxed),
            adaptive: self.adaptive.stats(),
            thresholds_erased: self.counters.get(ERASED),
        }
    }
}

#[cfg(test)]
#[path = "composite/tests.rs"]
mod tests;
