//! The health rules, as data ([`HealthThresholds`]) and pure functions over observed values.
//!
//! Components do not decide their own health: the facade reads each component's counters
//! into an observation struct and calls the matching rule, so every component is judged by
//! the same documented thresholds, and the rules are tested without any component.
//!
//! | rule | degraded when | unhealthy when |
//! |---|---|---|
//! | [`sampling`] | rate below [`min_sampling_rate`](HealthThresholds::min_sampling_rate) (the guide's 1% alert); adaptive sampling pinned at its minimum; rate not a probability | never |
//! | [`export`] | more than [`max_dropped_spans_in_window`](HealthThresholds::max_dropped_spans_in_window) spans dropped in the last window; p99 export latency over [`export_p99_target_ms`](HealthThresholds::export_p99_target_ms); at least [`export_failures_degraded`](HealthThresholds::export_failures_degraded) consecutive failures | at least [`export_failures_unhealthy`](HealthThresholds::export_failures_unhealthy) consecutive failures |
//! | [`metrics`] | more than [`max_dropped_labels`](HealthThresholds::max_dropped_labels) label keys at their limit; total label values over the budget; metric export p99 over [`metrics_export_p99_target_ms`](HealthThresholds::metrics_export_p99_target_ms) | never |
//! | [`storage`] | bytes used at or above [`storage_usage_degraded`](HealthThresholds::storage_usage_degraded) of the byte cap | the store is not writable |
//! | [`config`] | the last reload was rejected (the previous configuration stays in force) | never |
//!
//! ```
//! use tta_health::rules::{self, ExportObservation, HealthThresholds};
//! use tta_health::HealthStatus;
//!
//! let t = HealthThresholds::default();
//! let slow = ExportObservation { p99_latency_ms: Some(250.0), ..Default::default() };
//! let health = rules::export(&slow, &t);
//! assert_eq!(health.status, HealthStatus::Degraded);
//! assert_eq!(health.reason(), "export latency p99 250.0 ms over the 100.0 ms target");
//!
//! let failing = ExportObservation { consecutive_failures: 3, ..Default::default() };
//! assert_eq!(rules::export(&failing, &t).status, HealthStatus::Unhealthy);
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ComponentHealth, HealthError};

/// Thresholds for the health rules. Every field has a default (from the guide where it
/// gives one); in YAML or JSON any subset may be given, and unknown keys are rejected.
///
/// ```
/// use tta_health::rules::HealthThresholds;
///
/// let t: HealthThresholds = serde_json::from_str(r#"{ "export_p99_target_ms": 250.0 }"#)?;
/// assert_eq!(t.export_p99_target_ms, 250.0);
/// assert_eq!(t.min_sampling_rate, 0.01);
/// assert!(serde_json::from_str::<HealthThresholds>(r#"{ "p99": 1 }"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthThresholds {
    /// Sampling is degraded when its current rate is below this. Default `0.01`: the
    /// guide's "Sampling rate very low (<1%)" alert.
    pub min_sampling_rate: f64,
    /// Sampling is degraded when adaptive sampling sits at its configured minimum rate
    /// (overhead stays above target even at the lowest rate). Default `true`.
    pub degrade_when_sampling_pinned: bool,
    /// The window, in seconds, over which dropped spans count (the facade sizes its
    /// [`WindowCounter`](crate::WindowCounter) with it). Default `60`.
    pub window_seconds: f64,
    /// Export is degraded when more spans than this were dropped in the last window.
    /// Default `0`: any drop degrades.
    pub max_dropped_spans_in_window: u64,
    /// Export is degraded when its p99 latency (milliseconds) is above this. Default `100`:
    /// the guide's trace export latency target.
    pub export_p99_target_ms: f64,
    /// Export is degraded after this many consecutive failed exports. Default `1`.
    pub export_failures_degraded: u32,
    /// Export is unhealthy after this many consecutive failed exports (each already retried
    /// with backoff). Default `3`.
    pub export_failures_unhealthy: u32,
    /// Metrics are degraded when more label keys than this have hit their value limit.
    /// Default `0`: the guide alerts on any dropped label.
    pub max_dropped_labels: usize,
    /// Metrics are degraded when metric export p99 latency (milliseconds) is above this.
    /// Default `50`: the guide's metric export latency target.
    pub metrics_export_p99_target_ms: f64,
    /// Storage is degraded when bytes used reach this fraction of its byte cap (when it has
    /// one). Default `0.9`.
    pub storage_usage_degraded: f64,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            min_sampling_rate: 0.01,
            degrade_when_sampling_pinned: true,
            window_seconds: 60.0,
            max_dropped_spans_in_window: 0,
            export_p99_target_ms: 100.0,
            export_failures_degraded: 1,
            export_failures_unhealthy: 3,
            max_dropped_labels: 0,
            metrics_export_p99_target_ms: 50.0,
            storage_usage_degraded: 0.9,
        }
    }
}

impl HealthThresholds {
    /// Checks the thresholds and lists every problem, each naming its field.
    ///
    /// ```
    /// use tta_health::rules::HealthThresholds;
    ///
    /// let t = HealthThresholds { min_sampling_rate: 2.0, window_seconds: 0.0, ..Default::default() };
    /// let err = t.validate().unwrap_err().to_string();
    /// assert!(err.contains("min_sampling_rate"), "{err}");
    /// assert!(err.contains("window_seconds"), "{err}");
    /// ```
    pub fn validate(&self) -> Result<(), HealthError> {
        let mut problems = Vec::new();
        if !(0.0..=1.0).contains(&self.min_sampling_rate) {
            problems.push(format!(
                "min_sampling_rate must be within [0, 1], got {}",
                self.min_sampling_rate
            ));
        }
        if !(self.window_seconds.is_finite() && self.window_seconds > 0.0) {
            problems.push(format!(
                "window_seconds must be positive, got {}",
                self.window_seconds
            ));
        }
        for (name, v) in [
            ("export_p99_target_ms", self.export_p99_target_ms),
            (
                "metrics_export_p99_target_ms",
                self.metrics_export_p99_target_ms,
            ),
        ] {
            if !(v.is_finite() && v > 0.0) {
                problems.push(format!("{name} must be positive, got {v}"));
            }
        }
        if self.export_failures_degraded == 0 {
            problems.push("export_failures_degraded must be at least 1".into());
        }
        if self.export_failures_unhealthy < self.export_failures_degraded {
            problems.push(format!(
                "export_failures_unhealthy ({}) must be at least export_failures_degraded ({})",
                self.export_failures_unhealthy, self.export_failures_degraded
            ));
        }
        if !(self.storage_usage_degraded > 0.0 && self.storage_usage_degraded <= 1.0) {
            problems.push(format!(
                "storage_usage_degraded must be within (0, 1], got {}",
                self.storage_usage_degraded
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(HealthError::InvalidThresholds { problems })
        }
    }
}

/// What the sampling rule looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingObservation {
    /// Whether tracing and sampling are enabled; a disabled sampler is healthy (it is off
    /// on purpose) and reported as such.
    pub enabled: bool,
    /// The head sampling rate in force now (the adaptive rate when adaptive sampling is on).
    pub current_rate: f64,
    /// The lowest rate adaptive sampling may choose.
    pub min_rate: f64,
    /// Whether adaptive sampling is on (only then can the rate be "pinned" at its minimum).
    pub adaptive: bool,
}

/// Judges sampling: degraded below [`HealthThresholds::min_sampling_rate`], when adaptive
/// sampling is pinned at its minimum, or when the rate is not a probability.
///
/// ```
/// use tta_health::rules::{self, HealthThresholds, SamplingObservation};
/// use tta_health::HealthStatus;
///
/// let t = HealthThresholds::default();
/// let pinned = SamplingObservation { enabled: true, current_rate: 0.02, min_rate: 0.02, adaptive: true };
/// let health = rules::sampling(&pinned, &t);
/// assert_eq!(health.status, HealthStatus::Degraded);
/// assert_eq!(health.reason(), "adaptive sampling pinned at its minimum rate 0.02 (overhead above target)");
/// assert_eq!(health.observed["sampling_rate"], 0.02);
/// ```
pub fn sampling(obs: &SamplingObservation, t: &HealthThresholds) -> ComponentHealth {
    let rate = obs.current_rate;
    let mut health = ComponentHealth::healthy()
        .with_observed("enabled", obs.enabled)
        .with_observed("sampling_rate", number(rate))
        .with_observed("min_rate", number(obs.min_rate))
        .with_observed("adaptive", obs.adaptive);
    if !obs.enabled {
        return health;
    }
    if !(0.0..=1.0).contains(&rate) {
        health.degrade(format!(
            "sampling rate {rate} is not a probability in [0, 1]"
        ));
        return health;
    }
    if rate < t.min_sampling_rate {
        health.degrade(format!(
            "sampling rate {rate} below {} (very low sampling)",
            t.min_sampling_rate
        ));
    }
    if t.degrade_when_sampling_pinned && obs.adaptive && rate <= obs.min_rate {
        health.degrade(format!(
            "adaptive sampling pinned at its minimum rate {} (overhead above target)",
            obs.min_rate
        ));
    }
    health
}

/// What the export rule looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportObservation {
    /// Spans dropped (queue full, shutdown, failed export) over the last
    /// [`window_seconds`](HealthThresholds::window_seconds), e.g. from a
    /// [`WindowCounter`](crate::WindowCounter).
    pub dropped_spans_in_window: u64,
    /// p99 export latency in milliseconds, `None` before the first export.
    pub p99_latency_ms: Option<f64>,
    /// Exports that failed (after retries) since the last success.
    pub consecutive_failures: u32,
    /// The last export error, if any, for the report.
    pub last_error: Option<String>,
}

/// Judges export: degraded on spans dropped in the window, p99 over target or a few
/// failures; unhealthy on persistent failure.
pub fn export(obs: &ExportObservation, t: &HealthThresholds) -> ComponentHealth {
    let mut health = ComponentHealth::healthy()
        .with_observed("dropped_spans_in_window", obs.dropped_spans_in_window)
        .with_observed("window_seconds", number(t.window_seconds))
        .with_observed(
            "p99_latency_ms",
            obs.p99_latency_ms.map_or(Value::Null, number),
        )
        .with_observed("consecutive_failures", obs.consecutive_failures);
    if let Some(err) = &obs.last_error {
        health
            .observed
            .insert("last_error".into(), Value::from(err.as_str()));
    }
    let failures = obs.consecutive_failures;
    let failure_detail = obs
        .last_error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    if failures >= t.export_failures_unhealthy.max(1) {
        health.fail(format!(
            "export failing: {failures} consecutive failures{failure_detail}"
        ));
    } else if failures >= t.export_failures_degraded.max(1) {
        health.degrade(format!(
            "{failures} consecutive export failures{failure_detail}"
        ));
    }
    if obs.dropped_spans_in_window > t.max_dropped_spans_in_window {
        health.degrade(format!(
            "{} spans dropped in the last {} s",
            obs.dropped_spans_in_window, t.window_seconds
        ));
    }
    if let Some(p99) = obs.p99_latency_ms
        && (p99.is_nan() || p99 > t.export_p99_target_ms)
    {
        health.degrade(format!(
            "export latency p99 {p99:.1} ms over the {:.1} ms target",
            t.export_p99_target_ms
        ));
    }
    health
}

/// What the metrics rule looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsObservation<'a> {
    /// Label keys that hit their value limit (their new values are hashed or folded into
    /// an overflow value).
    pub dropped_labels: &'a [String],
    /// Distinct label values held across all keys.
    pub total_labels: usize,
    /// A budget for `total_labels`, if one is configured.
    pub label_budget: Option<usize>,
    /// p99 metric export latency in milliseconds, if metrics are exported.
    pub export_p99_ms: Option<f64>,
}

/// Judges metrics: degraded on dropped labels, total labels over the budget, or metric
/// export p99 over target.
///
/// ```
/// use tta_health::rules::{self, HealthThresholds, MetricsObservation};
/// use tta_health::HealthStatus;
///
/// let dropped = vec!["user_id".to_string()];
/// let obs = MetricsObservation { dropped_labels: &dropped, total_labels: 250, ..Default::default() };
/// let health = rules::metrics(&obs, &HealthThresholds::default());
/// assert_eq!(health.status, HealthStatus::Degraded);
/// assert_eq!(health.reason(), "cardinality limit reached for labels: user_id");
/// ```
pub fn metrics(obs: &MetricsObservation<'_>, t: &HealthThresholds) -> ComponentHealth {
    let mut health = ComponentHealth::healthy()
        .with_observed(
            "dropped_labels",
            Value::Array(
                obs.dropped_labels
                    .iter()
                    .map(|l| Value::from(l.as_str()))
                    .collect(),
            ),
        )
        .with_observed("total_labels", obs.total_labels);
    if let Some(budget) = obs.label_budget {
        health
            .observed
            .insert("label_budget".into(), Value::from(budget));
    }
    if let Some(p99) = obs.export_p99_ms {
        health.observed.insert("export_p99_ms".into(), number(p99));
    }
    if obs.dropped_labels.len() > t.max_dropped_labels {
        health.degrade(format!(
            "cardinality limit reached for labels: {}",
            obs.dropped_labels.join(", ")
        ));
    }
    if let Some(budget) = obs.label_budget
        && obs.total_labels > budget
    {
        health.degrade(format!(
            "{} label values over the budget of {budget}",
            obs.total_labels
        ));
    }
    if let Some(p99) = obs.export_p99_ms
        && (p99.is_nan() || p99 > t.metrics_export_p99_target_ms)
    {
        health.degrade(format!(
            "metric export latency p99 {p99:.1} ms over the {:.1} ms target",
            t.metrics_export_p99_target_ms
        ));
    }
    health
}

/// What the storage rule looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageObservation {
    /// Whether the last write (or a probe write) succeeded.
    pub writable: bool,
    /// The last write error, if any, for the report.
    pub last_error: Option<String>,
    /// Bytes the store holds on disk.
    pub bytes_used: u64,
    /// The byte cap, if one is configured.
    pub byte_cap: Option<u64>,
}

/// Judges storage: unhealthy when not writable; degraded near its byte cap.
///
/// ```
/// use tta_health::rules::{self, HealthThresholds, StorageObservation};
/// use tta_health::HealthStatus;
///
/// let obs = StorageObservation { writable: false, last_error: Some("disk full".into()), ..Default::default() };
/// let health = rules::storage(&obs, &HealthThresholds::default());
/// assert_eq!(health.status, HealthStatus::Unhealthy);
/// assert_eq!(health.reason(), "store not writable: disk full");
/// ```
pub fn storage(obs: &StorageObservation, t: &HealthThresholds) -> ComponentHealth {
    let mut health = ComponentHealth::healthy()
        .with_observed("writable", obs.writable)
        .with_observed("bytes_used", obs.bytes_used);
    if let Some(cap) = obs.byte_cap {
        health.observed.insert("byte_cap".into(), Value::from(cap));
    }
    if let Some(err) = &obs.last_error {
        health
            .observed
            .insert("last_error".into(), Value::from(err.as_str()));
    }
    if !obs.writable {
        let detail = obs
            .last_error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        health.fail(format!("store not writable{detail}"));
    }
    if let Some(cap) = obs.byte_cap.filter(|&c| c > 0) {
        // Precision loss only matters beyond 2^53 bytes, far past any real store.
        let used = obs.bytes_used as f64 / cap as f64;
        if used >= t.storage_usage_degraded {
            health.degrade(format!(
                "store at {:.0}% of its {cap}-byte cap",
                used * 100.0
            ));
        }
    }
    health
}

/// What the config rule looks at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigObservation {
    /// Whether the most recent reload attempt was rejected (the previous configuration stays
    /// in force).
    pub last_reload_rejected: bool,
    /// Why it was rejected, for the report.
    pub last_error: Option<String>,
    /// Reloads applied since start.
    pub reloads_applied: u64,
    /// Reloads rejected since start.
    pub reloads_rejected: u64,
}

/// Judges configuration: degraded when the last reload was rejected.
///
/// ```
/// use tta_health::rules::{self, ConfigObservation, HealthThresholds};
/// use tta_health::HealthStatus;
///
/// let obs = ConfigObservation { last_reload_rejected: true, reloads_rejected: 1, ..Default::default() };
/// let health = rules::config(&obs, &HealthThresholds::default());
/// assert_eq!(health.status, HealthStatus::Degraded);
/// assert_eq!(health.reason(), "last config reload rejected, previous config kept");
/// ```
pub fn config(obs: &ConfigObservation, _t: &HealthThresholds) -> ComponentHealth {
    let mut health = ComponentHealth::healthy()
        .with_observed("last_reload_rejected", obs.last_reload_rejected)
        .with_observed("reloads_applied", obs.reloads_applied)
        .with_observed("reloads_rejected", obs.reloads_rejected);
    if let Some(err) = &obs.last_error {
        health
            .observed
            .insert("last_error".into(), Value::from(err.as_str()));
    }
    if obs.last_reload_rejected {
        let detail = obs
            .last_error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        health.degrade(format!(
            "last config reload rejected, previous config kept{detail}"
        ));
    }
    health
}

/// A JSON number, or null for NaN and infinities (which JSON cannot hold).
fn number(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HealthStatus::{self, *};

    fn t() -> HealthThresholds {
        HealthThresholds::default()
    }

    #[test]
    fn defaults_validate_and_round_trip() {
        let d = t();
        d.validate().unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<HealthThresholds>(&json).unwrap(), d);
        assert_eq!(serde_json::from_str::<HealthThresholds>("{}").unwrap(), d);
    }

    #[test]
    fn validate_names_each_bad_field() {
        let bad = HealthThresholds {
            min_sampling_rate: f64::NAN,
            export_p99_target_ms: -1.0,
            metrics_export_p99_target_ms: f64::INFINITY,
            export_failures_degraded: 0,
            storage_usage_degraded: 0.0,
            ..t()
        };
        let Err(HealthError::InvalidThresholds { problems }) = bad.validate() else {
            panic!("expected invalid thresholds");
        };
        let all = problems.join("\n");
        for field in [
            "min_sampling_rate",
            "export_p99_target_ms",
            "metrics_export_p99_target_ms",
            "export_failures_degraded",
            "storage_usage_degraded",
        ] {
            assert!(all.contains(field), "{field} missing from:\n{all}");
        }
        let order = HealthThresholds {
            export_failures_degraded: 5,
            ..t()
        };
        assert!(
            order
                .validate()
                .unwrap_err()
                .to_string()
                .contains("export_failures_unhealthy")
        );
    }

    fn sampling_case(enabled: bool, rate: f64, min: f64, adaptive: bool) -> (HealthStatus, String) {
        let h = sampling(
            &SamplingObservation {
                enabled,
                current_rate: rate,
                min_rate: min,
                adaptive,
            },
            &t(),
        );
        (h.status, h.reason())
    }

    #[test]
    fn sampling_rule_table() {
        let cases: &[(bool, f64, f64, bool, HealthStatus, &str)] = &[
            (true, 0.05, 0.01, true, Healthy, ""),
            (true, 0.01, 0.01, false, Healthy, ""), // at 1% exactly, fixed rate: no alert
            (
                true,
                0.009,
                0.001,
                false,
                Degraded,
                "sampling rate 0.009 below 0.01",
            ),
            (
                true,
                0.02,
                0.02,
                true,
                Degraded,
                "pinned at its minimum rate 0.02",
            ),
            (
                true,
                0.005,
                0.005,
                true,
                Degraded,
                "below 0.01 (very low sampling); adaptive",
            ),
            (true, f64::NAN, 0.01, true, Degraded, "not a probability"),
            (true, 1.5, 0.01, false, Degraded, "not a probability"),
            (false, 0.0, 0.0, true, Healthy, ""),
        ];
        for &(enabled, rate, min, adaptive, status, reason) in cases {
            let (s, r) = sampling_case(enabled, rate, min, adaptive);
            assert_eq!(s, status, "rate {rate} min {min} adaptive {adaptive}: {r}");
            assert!(r.contains(reason), "{r:?} lacks {reason:?}");
            assert_eq!(r.is_empty(), reason.is_empty(), "{r:?}");
        }
        let off = HealthThresholds {
            degrade_when_sampling_pinned: false,
            ..t()
        };
        let pinned = SamplingObservation {
            enabled: true,
            current_rate: 0.02,
            min_rate: 0.02,
            adaptive: true,
        };
        assert_eq!(sampling(&pinned, &off).status, Healthy);
        assert_eq!(sampling(&pinned, &t()).observed["sampling_rate"], 0.02);
    }

    #[test]
    fn export_rule_table() {
        let obs = |dropped, p99, failures| ExportObservation {
            dropped_spans_in_window: dropped,
            p99_latency_ms: p99,
            consecutive_failures: failures,
            last_error: (failures > 0).then(|| "connection refused".to_string()),
        };
        let cases = [
            (obs(0, None, 0), Healthy, ""),
            (obs(0, Some(100.0), 0), Healthy, ""),
            (
                obs(0, Some(100.5), 0),
                Degraded,
                "p99 100.5 ms over the 100.0 ms target",
            ),
            (obs(0, Some(f64::NAN), 0), Degraded, "p99 NaN ms"),
            (
                obs(4, Some(10.0), 0),
                Degraded,
                "4 spans dropped in the last 60 s",
            ),
            (
                obs(0, None, 1),
                Degraded,
                "1 consecutive export failures: connection refused",
            ),
            (obs(0, None, 2), Degraded, "2 consecutive"),
            (
                obs(0, None, 3),
                Unhealthy,
                "export failing: 3 consecutive failures: connection refused",
            ),
            (
                obs(7, Some(500.0), 9),
                Unhealthy,
                "failures: connection refused; 7 spans dropped",
            ),
        ];
        for (o, status, reason) in cases {
            let h = export(&o, &t());
            assert_eq!(h.status, status, "{o:?}: {}", h.reason());
            assert!(
                h.reason().contains(reason),
                "{:?} lacks {reason:?}",
                h.reason()
            );
            assert_eq!(h.reason().is_empty(), reason.is_empty());
            assert_eq!(h.observed["consecutive_failures"], o.consecutive_failures);
        }
        let tolerant = HealthThresholds {
            max_dropped_spans_in_window: 10,
            ..t()
        };
        assert_eq!(export(&obs(10, None, 0), &tolerant).status, Healthy);
        assert_eq!(export(&obs(11, None, 0), &tolerant).status, Degraded);
    }

    #[test]
    fn metrics_rule_table() {
        let dropped = vec!["user_id".to_string(), "path".to_string()];
        let none: Vec<String> = Vec::new();
        let h = metrics(
            &MetricsObservation {
                dropped_labels: &none,
                total_labels: 10,
                ..Default::default()
            },
            &t(),
        );
        assert_eq!((h.status, h.reason()), (Healthy, String::new()));
        let h = metrics(
            &MetricsObservation {
                dropped_labels: &dropped,
                total_labels: 300,
                ..Default::default()
            },
            &t(),
        );
        assert_eq!(h.status, Degraded);
        assert_eq!(
            h.reason(),
            "cardinality limit reached for labels: user_id, path"
        );
        assert_eq!(h.observed["dropped_labels"][1], "path");
        let h = metrics(
            &MetricsObservation {
                dropped_labels: &none,
                total_labels: 11,
                label_budget: Some(10),
                export_p99_ms: Some(51.0),
            },
            &t(),
        );
        assert_eq!(h.status, Degraded);
        assert_eq!(h.reasons.len(), 2, "{:?}", h.reasons);
        let tolerant = HealthThresholds {
            max_dropped_labels: 2,
            ..t()
        };
        let h = metrics(
            &MetricsObservation {
                dropped_labels: &dropped,
                ..Default::default()
            },
            &tolerant,
        );
        assert_eq!(h.status, Healthy);
    }

    #[test]
    fn storage_rule_table() {
        let ok = StorageObservation {
            writable: true,
            bytes_used: 10,
            byte_cap: Some(100),
            last_error: None,
        };
        assert_eq!(storage(&ok, &t()).status, Healthy);
        let full = StorageObservation {
            bytes_used: 95,
            ..ok.clone()
        };
        assert_eq!(
            storage(&full, &t()).reason(),
            "store at 95% of its 100-byte cap"
        );
        let broken = StorageObservation {
            writable: false,
            last_error: Some("read-only file system".into()),
            ..full
        };
        let h = storage(&broken, &t());
        assert_eq!(h.status, Unhealthy);
        assert_eq!(h.reasons[0], "store not writable: read-only file system");
        let zero_cap = StorageObservation {
            writable: true,
            bytes_used: 5,
            byte_cap: Some(0),
            last_error: None,
        };
        assert_eq!(storage(&zero_cap, &t()).status, Healthy);
    }

    #[test]
    fn config_rule_table() {
        let ok = ConfigObservation {
            reloads_applied: 2,
            ..Default::default()
        };
        assert_eq!(config(&ok, &t()).status, Healthy);
        let rejected = ConfigObservation {
            last_reload_rejected: true,
            last_error: Some("tracing.sampling.default_rate: must be within [0, 1]".into()),
            reloads_applied: 2,
            reloads_rejected: 1,
        };
        let h = config(&rejected, &t());
        assert_eq!(h.status, Degraded);
        assert!(
            h.reason()
                .starts_with("last config reload rejected, previous config kept: tracing")
        );
        assert_eq!(h.observed["reloads_rejected"], 1);
    }
}
