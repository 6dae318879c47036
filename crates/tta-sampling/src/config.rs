//! `SamplingConfig`: the sampling section of the configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::SamplingError;
use crate::adaptive::AdaptiveConfig;

/// Sampling configuration: head rate, tail rules, adaptive bounds and the trace buffer's
/// limits. `Default` gives the production values of the deployment guide.
///
/// Deserializing fills missing fields from `Default` and rejects unknown fields.
///
/// ```
/// use tta_sampling::SamplingConfig;
/// let config = SamplingConfig::default();
/// assert_eq!(config.default_rate, 0.05);
/// assert!(config.validate().is_ok());
///
/// let bad = SamplingConfig { default_rate: 1.5, ..Default::default() };
/// assert_eq!(
///     bad.validate().unwrap_err().to_string(),
///     "default_rate must be within [0, 1], got 1.5"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingConfig {
    /// Head sampling probability, `[0, 1]` (0.05). With adaptive sampling on, the starting
    /// rate (clamped into `[adaptive_min_rate, adaptive_max_rate]`).
    pub default_rate: f64,
    /// Tail rule: keep every trace that has an error (true).
    pub always_sample_errors: bool,
    /// Tail rule: keep every trace slower than `slow_threshold_ms` (true).
    pub always_sample_slow: bool,
    /// What counts as slow, in milliseconds (1000.0).
    pub slow_threshold_ms: f64,
    /// Adapt the head rate to measured overhead (true).
    pub adaptive_enabled: bool,
    /// Lowest adaptive rate (0.01).
    pub adaptive_min_rate: f64,
    /// Highest adaptive rate (0.2).
    pub adaptive_max_rate: f64,
    /// Overhead the adaptive sampler steers toward, as a fraction of CPU (0.02).
    pub adaptive_target_overhead: f64,
    /// Seconds between adaptive adjustments (60.0).
    pub adaptive_adjustment_interval_seconds: f64,
    /// Trace buffer: the longest a trace waits for its root span before it is decided,
    /// counted from its first span, in milliseconds (30 000).
    pub decision_wait_ms: u64,
    /// Trace buffer: how long after the root span ends the trace waits for stragglers, in
    /// milliseconds (2 000).
    pub straggler_delay_ms: u64,
    /// Trace buffer: byte budget for buffered spans and the decision cache (64 MiB).
    pub buffer_max_bytes: usize,
    /// Trace buffer: a trace with this many spans is decided at once (10 000).
    pub max_spans_per_trace: usize,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            default_rate: 0.05,
            always_sample_errors: true,
            always_sample_slow: true,
            slow_threshold_ms: 1000.0,
            adaptive_enabled: true,
            adaptive_min_rate: 0.01,
            adaptive_max_rate: 0.2,
            adaptive_target_overhead: 0.02,
            adaptive_adjustment_interval_seconds: 60.0,
            decision_wait_ms: 30_000,
            straggler_delay_ms: 2_000,
            buffer_max_bytes: 64 << 20,
            max_spans_per_trace: 10_000,
        }
    }
}

fn check_unit(errors: &mut Vec<SamplingError>, field: &'static str, v: f64) {
    if !(0.0..=1.0).contains(&v) {
        errors.push(SamplingError::config(
            field,
            format!("must be within [0, 1], got {v}"),
        ));
    }
}

impl SamplingConfig {
    /// Checks every field; the error names the first field out of range.
    pub fn validate(&self) -> Result<(), SamplingError> {
        match self.errors().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Every problem, in field order (empty when valid), for reports that list them all.
    pub fn errors(&self) -> Vec<SamplingError> {
        let mut errors = Vec::new();
        check_unit(&mut errors, "default_rate", self.default_rate);
        if !(self.slow_threshold_ms >= 0.0 && self.slow_threshold_ms.is_finite()) {
            errors.push(SamplingError::config(
                "slow_threshold_ms",
                format!(
                    "must be a finite number >= 0, got {}",
                    self.slow_threshold_ms
                ),
            ));
        }
        if !(self.adaptive_min_rate > 0.0 && self.adaptive_min_rate <= 1.0) {
            errors.push(SamplingError::config(
                "adaptive_min_rate",
                format!("must be within (0, 1], got {}", self.adaptive_min_rate),
            ));
        }
        check_unit(&mut errors, "adaptive_max_rate", self.adaptive_max_rate);
        if self.adaptive_min_rate > self.adaptive_max_rate {
            errors.push(SamplingError::config(
                "adaptive_max_rate",
                format!(
                    "must be >= adaptive_min_rate ({}), got {}",
                    self.adaptive_min_rate, self.adaptive_max_rate
                ),
            ));
        }
        if !(self.adaptive_target_overhead > 0.0 && self.adaptive_target_overhead <= 1.0) {
            errors.push(SamplingError::config(
                "adaptive_target_overhead",
                format!(
                    "must be within (0, 1], got {}",
                    self.adaptive_target_overhead
                ),
            ));
        }
        let interval = self.adaptive_adjustment_interval_seconds;
        if !(interval > 0.0 && interval <= 86_400.0 * 365.0) {
            errors.push(SamplingError::config(
                "adaptive_adjustment_interval_seconds",
                format!("must be > 0 and at most a year, got {interval}"),
            ));
        }
        if self.decision_wait_ms == 0 {
            errors.push(SamplingError::config(
                "decision_wait_ms",
                "must be > 0, got 0",
            ));
        }
        if self.buffer_max_bytes < 4096 {
            errors.push(SamplingError::config(
                "buffer_max_bytes",
                format!("must be at least 4096, got {}", self.buffer_max_bytes),
            ));
        }
        if self.max_spans_per_trace == 0 {
            errors.push(SamplingError::config(
                "max_spans_per_trace",
                "must be >= 1, got 0",
            ));
        }
        errors
    }

    /// A copy with every invalid field replaced by its default (and the adaptive bounds put
    /// in order), so a sampler built from unchecked input never panics or misbehaves.
    pub fn sanitized(&self) -> Self {
        let d = Self::default();
        let mut c = self.clone();
        let unit = |v: f64, default: f64| if (0.0..=1.0).contains(&v) { v } else { default };
        c.default_rate = unit(c.default_rate, d.default_rate);
        if !(c.slow_threshold_ms >= 0.0 && c.slow_threshold_ms.is_finite()) {
            c.slow_threshold_ms = d.slow_threshold_ms;
        }
        if !(c.adaptive_min_rate > 0.0 && c.adaptive_min_rate <= 1.0) {
            c.adaptive_min_rate = d.adaptive_min_rate.min(unit(c.adaptive_max_rate, 1.0));
        }
        c.adaptive_max_rate = unit(c.adaptive_max_rate, d.adaptive_max_rate);
        if c.adaptive_min_rate > c.adaptive_max_rate {
            std::mem::swap(&mut c.adaptive_min_rate, &mut c.adaptive_max_rate);
        }
        if !(c.adaptive_target_overhead > 0.0 && c.adaptive_target_overhead <= 1.0) {
            c.adaptive_target_overhead = d.adaptive_target_overhead;
        }
        let interval = c.adaptive_adjustment_interval_seconds;
        if !(interval > 0.0 && interval <= 86_400.0 * 365.0) {
            c.adaptive_adjustment_interval_seconds = d.adaptive_adjustment_interval_seconds;
        }
        if c.decision_wait_ms == 0 {
            c.decision_wait_ms = d.decision_wait_ms;
        }
        c.buffer_max_bytes = c.buffer_max_bytes.max(4096);
        c.max_spans_per_trace = c.max_spans_per_trace.max(1);
        c
    }

    /// The adaptive sampler's settings this configuration implies: base rate
    /// `default_rate`, bounds `adaptive_min_rate`/`adaptive_max_rate`.
    pub fn adaptive_config(&self) -> AdaptiveConfig {
        AdaptiveConfig {
            base_rate: self.default_rate,
            min_rate: self.adaptive_min_rate,
            max_rate: self.adaptive_max_rate,
            target_overhead: self.adaptive_target_overhead,
            adjustment_interval: Duration::try_from_secs_f64(
                self.adaptive_adjustment_interval_seconds,
            )
            .unwrap_or(Duration::from_secs(60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_production_values_and_valid() {
        let c = SamplingConfig::default();
        assert_eq!(c.default_rate, 0.05);
        assert!(c.always_sample_errors && c.always_sample_slow && c.adaptive_enabled);
        assert_eq!(c.slow_threshold_ms, 1000.0);
        assert_eq!((c.adaptive_min_rate, c.adaptive_max_rate), (0.01, 0.2));
        assert_eq!(c.adaptive_target_overhead, 0.02);
        assert_eq!(c.adaptive_adjustment_interval_seconds, 60.0);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.sanitized(), c);
    }

    #[test]
    fn each_error_names_its_field() {
        let cases: Vec<(SamplingConfig, &str)> = vec![
            (
                SamplingConfig {
                    default_rate: f64::NAN,
                    ..Default::default()
                },
                "default_rate must be within [0, 1], got NaN",
            ),
            (
                SamplingConfig {
                    slow_threshold_ms: -1.0,
                    ..Default::default()
                },
                "slow_threshold_ms must be a finite number >= 0, got -1",
            ),
            (
                SamplingConfig {
                    adaptive_min_rate: 0.0,
                    ..Default::default()
                },
                "adaptive_min_rate must be within (0, 1], got 0",
            ),
            (
                SamplingConfig {
                    adaptive_max_rate: 2.0,
                    ..Default::default()
                },
                "adaptive_max_rate must be within [0, 1], got 2",
            ),
            (
                SamplingConfig {
                    adaptive_min_rate: 0.5,
                    ..Default::default()
                },
                "adaptive_max_rate must be >= adaptive_min_rate (0.5), got 0.2",
            ),
            (
                SamplingConfig {
                    adaptive_target_overhead: 0.0,
                    ..Default::default()
                },
                "adaptive_target_overhead must be within (0, 1], got 0",
            ),
            (
                SamplingConfig {
                    adaptive_adjustment_interval_seconds: f64::INFINITY,
                    ..Default::default()
                },
                "adaptive_adjustment_interval_seconds must be > 0 and at most a year, got inf",
            ),
            (
                SamplingConfig {
                    decision_wait_ms: 0,
                    ..Default::default()
                },
                "decision_wait_ms must be > 0, got 0",
            ),
            (
                SamplingConfig {
                    buffer_max_bytes: 10,
                    ..Default::default()
                },
                "buffer_max_bytes must be at least 4096, got 10",
            ),
            (
                SamplingConfig {
                    max_spans_per_trace: 0,
                    ..Default::default()
                },
                "max_spans_per_trace must be >= 1, got 0",
            ),
        ];
        for (config, message) in cases {
            assert_eq!(
                config.validate().map_err(|e| e.to_string()),
                Err(message.to_owned())
            );
            assert_eq!(config.errors().len(), 1, "{message}");
            assert_eq!(config.sanitized().validate(), Ok(()), "{message}");
        }
    }

    #[test]
    fn errors_lists_every_problem() {
        let c = SamplingConfig {
            default_rate: -1.0,
            max_spans_per_trace: 0,
            ..Default::default()
        };
        let fields: Vec<_> = c
            .errors()
            .into_iter()
            .map(|e| match e {
                SamplingError::Config { field, .. } => field,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(fields, ["default_rate", "max_spans_per_trace"]);
    }

    #[test]
    fn serde_fills_defaults_and_rejects_unknown_fields() {
        let c: SamplingConfig = serde_json::from_str(r#"{"default_rate": 0.1}"#).unwrap();
        assert_eq!(c.default_rate, 0.1);
        assert_eq!(c.adaptive_max_rate, 0.2);
        let err = serde_json::from_str::<SamplingConfig>(r#"{"default_rat": 0.1}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `default_rat`"),
            "{err}"
        );
        let back: SamplingConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn adaptive_config_maps_fields() {
        let a = SamplingConfig::default().adaptive_config();
        assert_eq!(a.base_rate, 0.05);
        assert_eq!(
            (a.min_rate, a.max_rate, a.target_overhead),
            (0.01, 0.2, 0.02)
        );
        assert_eq!(a.adjustment_interval, Duration::from_secs(60));
    }
}
