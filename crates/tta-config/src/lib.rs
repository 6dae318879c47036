//! `ObservabilityConfig`: environment presets, YAML files, environment-variable overrides,
//! validation that lists every error with its path, and lock-free hot reload.
//!
//! This is the only tta crate that knows YAML, environment variables and config files. Each
//! domain crate owns its section type (`SamplingConfig` in `tta-sampling`, `StorageConfig` in
//! `tta-storage`, ...); this crate composes them. Most services use it through the facade
//! (`tta_observability::config`), which also wires reloads into the running components.
//!
//! Precedence, lowest to highest: the preset for the environment (`ENVIRONMENT`, production
//! when unset, or the `environment` key of the YAML file), the YAML file, `TTA_`-prefixed
//! variables with `__` between levels, the standard `OTEL_*` variables, explicit code.
//!
//! ```
//! use tta_config::{Environment, ObservabilityConfig};
//!
//! let config = ObservabilityConfig::from_environment("production")?;
//! assert_eq!(config.environment, Environment::Production);
//! assert_eq!(config.tracing.sampling.default_rate, 0.05);
//! assert_eq!(config.metrics.max_label_values, 100);
//! assert_eq!(config.storage.trace_ttl_days, 7);
//!
//! // A file may set only some keys; the rest come from the preset it names.
//! let config = ObservabilityConfig::from_yaml_str(
//!     "environment: staging\ntracing:\n  sampling:\n    default_rate: 0.1\n",
//! )?;
//! assert_eq!(config.tracing.sampling.default_rate, 0.1);
//! assert_eq!(config.environment, Environment::Staging);
//!
//! // Unknown keys are rejected with their path, line and column, and a suggestion.
//! let err = ObservabilityConfig::from_yaml_str("tracing:\n  sampling:\n    default_rte: 0.1\n")
//!     .unwrap_err();
//! assert!(err.to_string().contains("did you mean `default_rate`"), "{err}");
//! # Ok::<(), tta_config::ConfigError>(())
//! ```
//!
//! This crate has no optional features.

mod env;
mod error;
mod handle;
mod model;
mod reference;
mod tree;
mod validate;
mod watcher;
mod yaml;

pub use env::{EnvSource, OTEL_VARIABLES};
pub use error::{ConfigError, FieldError};
pub use handle::{
    ConfigChange, ConfigHandle, ConfigReader, ReloadStats, global_handle, observability_config,
    set_observability_config,
};
pub use model::{Environment, ObservabilityConfig, TracingConfig};
pub use reference::render_reference;
pub use watcher::{ConfigWatcher, WatcherOptions, WatcherStats};

pub use tta_export::ExportConfig;
pub use tta_health::HealthThresholds;
pub use tta_metrics::MetricsConfig;
pub use tta_sampling::SamplingConfig;
pub use tta_storage::StorageConfig;
