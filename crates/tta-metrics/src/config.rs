use serde::{Deserialize, Serialize};
use tta_cardinality::{CardinalityLimits, MAX_LABEL_VALUES_CAP};

use crate::MetricsError;

/// The guide's `MetricsConfig`: whether metrics are collected and how label cardinality is
/// limited.
///
/// ```
/// use tta_metrics::MetricsConfig;
/// let config = MetricsConfig { max_label_values: 200, ..Default::default() };
/// config.validate()?;
/// assert_eq!(config.cardinality_limits().max_label_values, 200);
/// let parsed: MetricsConfig = serde_json::from_str(r#"{"hash_high_cardinality": false}"#).unwrap();
/// assert_eq!(parsed.max_label_values, 100);
/// # Ok::<(), tta_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Collect metrics at all (default `true`). When `false`, every record call returns at once.
    pub enabled: bool,
    /// Distinct values kept per label key (default 100).
    pub max_label_values: usize,
    /// Hash values past the limit into stable buckets (default `true`); otherwise they all
    /// become `__overflow__`.
    pub hash_high_cardinality: bool,
    /// How often exporters push metrics, in seconds (default 60). The collector itself does
    /// no I/O; exporters read this value.
    pub export_interval_seconds: f64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_label_values: 100,
            hash_high_cardinality: true,
            export_interval_seconds: 60.0,
        }
    }
}

/// Longest accepted export interval: one day.
pub const MAX_EXPORT_INTERVAL_SECONDS: f64 = 86_400.0;

impl MetricsConfig {
    /// Checks every field; the error names the first one out of range.
    ///
    /// ```
    /// use tta_metrics::{MetricsConfig, MetricsError};
    /// let bad = MetricsConfig { export_interval_seconds: f64::NAN, ..Default::default() };
    /// assert!(matches!(bad.validate(), Err(MetricsError::InvalidConfig { field: "export_interval_seconds", .. })));
    /// ```
    pub fn validate(&self) -> Result<(), MetricsError> {
        if !(1..=MAX_LABEL_VALUES_CAP).contains(&self.max_label_values) {
            return Err(MetricsError::InvalidConfig {
                field: "max_label_values",
                reason: format!(
                    "must be between 1 and {MAX_LABEL_VALUES_CAP}, got {}",
                    self.max_label_values
                ),
            });
        }
        let s = self.export_interval_seconds;
        if !(s.is_finite() && s > 0.0 && s <= MAX_EXPORT_INTERVAL_SECONDS) {
            return Err(MetricsError::InvalidConfig {
                field: "export_interval_seconds",
                reason: format!(
                    "must be a number of seconds above 0 and at most {MAX_EXPORT_INTERVAL_SECONDS}, got {s}"
                ),
            });
        }
        self.cardinality_limits().validate()?;
        Ok(())
    }

    /// The limiter settings this config implies: its `max_label_values` and
    /// `hash_high_cardinality`, and a process-wide budget of ten times the per-key limit
    /// (1000 at the default, the guide's figure); other fields at their defaults.
    pub fn cardinality_limits(&self) -> CardinalityLimits {
        CardinalityLimits {
            max_label_values: self.max_label_values,
            hash_high_cardinality: self.hash_high_cardinality,
            max_total_label_values: self
                .max_label_values
                .saturating_mul(10)
                .clamp(1, tta_cardinality::MAX_TOTAL_LABEL_VALUES_CAP),
            ..CardinalityLimits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_guides() {
        let c = MetricsConfig::default();
        assert!(c.enabled && c.hash_high_cardinality);
        assert_eq!((c.max_label_values, c.export_interval_seconds), (100, 60.0));
        assert_eq!(c.cardinality_limits().max_total_label_values, 1000);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn out_of_range_fields_are_named() {
        for (field, c) in [
            (
                "max_label_values",
                MetricsConfig {
                    max_label_values: 0,
                    ..Default::default()
                },
            ),
            (
                "export_interval_seconds",
                MetricsConfig {
                    export_interval_seconds: -1.0,
                    ..Default::default()
                },
            ),
            (
                "export_interval_seconds",
                MetricsConfig {
                    export_interval_seconds: f64::INFINITY,
                    ..Default::default()
                },
            ),
        ] {
            match c.validate() {
                Err(MetricsError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_str::<MetricsConfig>(r#"{"max_labels": 3}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
