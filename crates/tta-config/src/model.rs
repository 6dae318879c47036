use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tta_export::ExportConfig;
use tta_health::HealthThresholds;
use tta_metrics::MetricsConfig;
use tta_sampling::SamplingConfig;
use tta_storage::StorageConfig;

use crate::ConfigError;

/// The deployment environment; each has a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Full visibility for debugging: every trace, short retention.
    Development,
    /// Representative sampling (20%).
    Staging,
    /// The guide's production defaults (5%, adaptive, 100 label values, 7-day TTL).
    #[default]
    Production,
}

impl Environment {
    /// Every environment, in preset order.
    pub const ALL: [Environment; 3] = [Self::Development, Self::Staging, Self::Production];

    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = ConfigError;
    /// Accepts the names case-insensitively, plus the short forms `dev`, `stage`, `prod`.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Self::Development),
            "staging" | "stage" => Ok(Self::Staging),
            "production" | "prod" => Ok(Self::Production),
            _ => Err(ConfigError::UnknownEnvironment { name: s.to_owned() }),
        }
    }
}

/// The `tracing` section: sampling and the export pipeline's batching.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// Whether spans are recorded and exported at all.
    pub enabled: bool,
    /// Head, tail and adaptive sampling.
    pub sampling: SamplingConfig,
    /// Longest time a kept span waits before it is exported.
    pub export_interval_seconds: f64,
    /// Spans per export batch.
    pub batch_size: usize,
    /// Capacity of the span queue; a full queue drops and counts.
    pub max_queue_size: usize,
    /// How long a producer waits for room in a full span queue while the sampler stage takes
    /// nothing, before dropping, in milliseconds (`0`: drop at once). See
    /// `tta_export::ExportConfig::queue_full_wait_ms`.
    pub queue_full_wait_ms: f64,
    /// Deadline for one export, retries included.
    pub export_timeout_seconds: f64,
    /// OTLP/HTTP endpoint (e.g. `http://127.0.0.1:4318`); `None` exports to the embedded
    /// store only.
    pub otlp_endpoint: Option<String>,
}

impl Default for TracingConfig {
    fn default() -> Self {
        let export = ExportConfig::default();
        Self {
            enabled: true,
            sampling: SamplingConfig::default(),
            export_interval_seconds: export.export_interval_seconds,
            batch_size: export.batch_size,
            max_queue_size: export.max_queue_size,
            queue_full_wait_ms: export.queue_full_wait_ms,
            export_timeout_seconds: export.export_timeout_seconds,
            otlp_endpoint: None,
        }
    }
}

/// The whole configuration, composed from the section types the domain crates own.
///
/// Struct literals with `..Default::default()` work as in the guide's "Custom
/// Configuration" example; `Default` is the production preset.
///
/// ```
/// use tta_config::{ObservabilityConfig, TracingConfig, SamplingConfig, MetricsConfig, StorageConfig, Environment};
/// let config = ObservabilityConfig {
///     environment: Environment::Production,
///     service_name: "tta-api".into(),
///     service_version: "1.0.0".into(),
///     tracing: TracingConfig {
///         enabled: true,
///         sampling: SamplingConfig {
///             default_rate: 0.05,
///             always_sample_errors: true,
///             always_sample_slow: true,
///             slow_threshold_ms: 1000.0,
///             adaptive_enabled: true,
///             adaptive_min_rate: 0.01,
///             adaptive_max_rate: 0.2,
///             adaptive_target_overhead: 0.02,
///             ..Default::default()
///         },
///         export_interval_seconds: 60.0,
///         batch_size: 512,
///         ..Default::default()
///     },
///     metrics: MetricsConfig {
///         enabled: true,
///         max_label_values: 100,
///         hash_high_cardinality: true,
///         export_interval_seconds: 60.0,
///         ..Default::default()
///     },
///     storage: StorageConfig {
///         trace_ttl_days: 7,
///         compression_enabled: true,
///         compression_level: 6,
///         ..Default::default()
///     },
///     ..Default::default()
/// };
/// config.validate()?;
/// tta_config::set_observability_config(config)?;
/// assert_eq!(tta_config::observability_config().service_name, "tta-api");
/// # Ok::<(), tta_config::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObservabilityConfig {
    /// Which preset the values started from.
    pub environment: Environment,
    /// The service's name (`SERVICE_NAME` / `OTEL_SERVICE_NAME`).
    pub service_name: String,
    /// The service's version (`SERVICE_VERSION`).
    pub service_version: String,
    /// Tracing: sampling and batching.
    pub tracing: TracingConfig,
    /// Metrics: cardinality limits and export interval.
    pub metrics: MetricsConfig,
    /// The embedded store: retention and compression.
    pub storage: StorageConfig,
    /// Health thresholds: when components count as degraded or unhealthy.
    pub health: HealthThresholds,
    /// Export on background workers (`false`: export on the caller's flush).
    pub async_export: bool,
    /// Export worker threads.
    pub max_export_workers: usize,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self::preset(Environment::Production)
    }
}

impl ObservabilityConfig {
    /// The preset for an environment. Production is exactly the guide's defaults; the
    /// others follow its rate table (development 100%, staging 20%); see
    /// `docs/configuration.md` for every value.
    pub fn preset(environment: Environment) -> Self {
        let export = ExportConfig::default();
        let base = Self {
            environment,
            service_name: "unknown_service".into(),
            service_version: "0.0.0".into(),
            tracing: TracingConfig::default(),
            metrics: MetricsConfig::default(),
            storage: StorageConfig::default(),
            health: HealthThresholds::default(),
            async_export: export.async_export,
            max_export_workers: export.max_export_workers,
        };
        match environment {
            Environment::Production => Self {
                tracing: TracingConfig {
                    sampling: SamplingConfig {
                        default_rate: 0.05,
                        always_sample_errors: true,
                        always_sample_slow: true,
                        slow_threshold_ms: 1000.0,
                        adaptive_enabled: true,
                        adaptive_min_rate: 0.01,
                        adaptive_max_rate: 0.2,
                        adaptive_target_overhead: 0.02,
                        ..base.tracing.sampling.clone()
                    },
                    export_interval_seconds: 60.0,
                    batch_size: 512,
                    max_queue_size: 2048,
                    ..base.tracing.clone()
                },
                metrics: MetricsConfig {
                    enabled: true,
                    max_label_values: 100,
                    hash_high_cardinality: true,
                    export_interval_seconds: 60.0,
                },
                storage: StorageConfig {
                    trace_ttl_days: 7,
                    metric_ttl_days: 30,
                    compression_enabled: true,
                    compression_level: 6,
                    ..base.storage.clone()
                },
                async_export: true,
                max_export_workers: 4,
                ..base
            },
            Environment::Staging => Self {
                tracing: TracingConfig {
                    sampling: SamplingConfig {
                        default_rate: 0.2,
                        adaptive_enabled: true,
                        adaptive_min_rate: 0.05,
                        adaptive_max_rate: 0.5,
                        adaptive_target_overhead: 0.03,
                        ..base.tracing.sampling.clone()
                    },
                    export_interval_seconds: 30.0,
                    batch_size: 512,
                    max_queue_size: 2048,
                    ..base.tracing.clone()
                },
                metrics: MetricsConfig {
                    max_label_values: 200,
                    ..base.metrics.clone()
                },
                storage: StorageConfig {
                    trace_ttl_days: 3,
                    metric_ttl_days: 14,
                    compression_enabled: true,
                    compression_level: 3,
                    ..base.storage.clone()
                },
                max_export_workers: 2,
                ..base
            },
            Environment::Development => Self {
                tracing: TracingConfig {
                    sampling: SamplingConfig {
                        default_rate: 1.0,
                        adaptive_enabled: false,
                        adaptive_min_rate: 0.01,
                        adaptive_max_rate: 1.0,
                        ..base.tracing.sampling.clone()
                    },
                    export_interval_seconds: 5.0,
                    batch_size: 256,
                    max_queue_size: 4096,
                    ..base.tracing.clone()
                },
                metrics: MetricsConfig {
                    max_label_values: 1000,
                    ..base.metrics.clone()
                },
                storage: StorageConfig {
                    trace_ttl_days: 1,
                    metric_ttl_days: 3,
                    compression_enabled: true,
                    compression_level: 1,
                    ..base.storage.clone()
                },
                max_export_workers: 1,
                ..base
            },
        }
    }

    /// The preset for an environment named by a string (`"production"`, `"staging"`,
    /// `"development"`); an unknown name is an error listing the valid ones.
    pub fn from_environment(name: &str) -> Result<Self, ConfigError> {
        Ok(Self::preset(name.parse()?))
    }

    /// The export pipeline's settings, from `tracing.*`, `async_export` and
    /// `max_export_workers`.
    pub fn export_config(&self) -> ExportConfig {
        ExportConfig {
            batch_size: self.tracing.batch_size,
            max_queue_size: self.tracing.max_queue_size,
            queue_full_wait_ms: self.tracing.queue_full_wait_ms,
            export_interval_seconds: self.tracing.export_interval_seconds,
            async_export: self.async_export,
            max_export_workers: self.max_export_workers,
            export_timeout_seconds: self.tracing.export_timeout_seconds,
            ..ExportConfig::default()
        }
    }

    /// The configuration as a JSON value (the guide's `config.to_dict()`).
    pub fn to_dict(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Checks every rule and returns every failure at once, each with its key path.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let errors = crate::validate::validate(self);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { errors })
        }
    }

    /// Key paths whose change between `self` and `new` needs a restart to take effect
    /// (they size threads or queues that exist once).
    pub fn restart_required(&self, new: &Self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.max_export_workers != new.max_export_workers {
            out.push("max_export_workers");
        }
        if self.async_export != new.async_export {
            out.push("async_export");
        }
        if self.tracing.max_queue_size != new.tracing.max_queue_size {
            out.push("tracing.max_queue_size");
        }
        if self.tracing.otlp_endpoint != new.tracing.otlp_endpoint {
            out.push("tracing.otlp_endpoint");
        }
        if self.service_name != new.service_name {
            out.push("service_name");
        }
        if self.storage.compression_enabled != new.storage.compression_enabled
            || self.storage.compression_level != new.storage.compression_level
        {
            out.push("storage.compression");
        }
        out
    }
}
