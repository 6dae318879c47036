//! The process-wide instance and the guide's free functions.
//!
//! [`init`] starts the full runtime (pipeline and embedded store) on the process-wide
//! configuration. Without it, the first call to any accessor here starts a light runtime on
//! the same configuration: sampling, metrics and health, but no pipeline or store, so the
//! guide's calls (`metrics_collector()`, `health_checker()`, ...) work anywhere without
//! touching the disk. Call `init` first if you want spans stored.

use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tta_config::{ConfigChange, ObservabilityConfig};
use tta_health::HealthChecker;
use tta_metrics::MetricsCollector;
use tta_sampling::CompositeSampler;

use crate::{Observability, ObservabilityError};

static GLOBAL: OnceLock<Observability> = OnceLock::new();

/// Starts the process-wide runtime with `config` (pipeline and embedded store under
/// `TTA_DATA_DIR` or `./tta-data`). Fails if a global runtime exists already.
pub fn init(config: ObservabilityConfig) -> Result<&'static Observability, ObservabilityError> {
    let handle = tta_config::global_handle().clone();
    handle.store(config)?;
    let mut built = None;
    let mut error = None;
    let obs = GLOBAL.get_or_init(|| {
        match Observability::builder()
            .config_handle(handle.clone())
            .build()
        {
            Ok(o) => {
                built = Some(());
                o
            }
            Err(e) => {
                error = Some(e);
                light(handle.clone())
            }
        }
    });
    match (built, error) {
        (Some(()), _) => Ok(obs),
        (None, Some(e)) => Err(e),
        (None, None) => Err(ObservabilityError::AlreadyInitialized),
    }
}

/// [`init`] with [`ObservabilityConfig::from_env`].
pub fn init_from_env() -> Result<&'static Observability, ObservabilityError> {
    init(ObservabilityConfig::from_env()?)
}

fn light(handle: tta_config::ConfigHandle) -> Observability {
    Observability::builder()
        .config_handle(handle)
        .without_pipeline()
        .build()
        .or_else(|_| {
            Observability::builder()
                .config(ObservabilityConfig::default())
                .without_pipeline()
                .build()
        })
        .expect("a runtime without pipeline or store over the production preset always starts")
}

fn global() -> &'static Observability {
    GLOBAL.get_or_init(|| light(tta_config::global_handle().clone()))
}

/// The process-wide runtime (started light on first use when [`init`] was not called).
pub fn global_observability() -> &'static Observability {
    global()
}

/// The guide's `set_observability_config(config)`: validates and applies the configuration
/// to the process-wide runtime at once (sampler, limits, pipeline, health thresholds).
pub fn set_observability_config(config: ObservabilityConfig) -> Result<(), ObservabilityError> {
    let _ = global();
    tta_config::set_observability_config(config)?;
    Ok(())
}

/// The process-wide configuration, read without a lock.
pub fn observability_config() -> Arc<ObservabilityConfig> {
    tta_config::observability_config()
}

/// The guide's troubleshooting edits at runtime, e.g.
/// `update_observability_config(|c| c.tracing.sampling.default_rate = 0.01)`: validated and
/// applied like a reload; an invalid edit is rejected and nothing changes.
pub fn update_observability_config(
    edit: impl FnOnce(&mut ObservabilityConfig),
) -> Result<ConfigChange, ObservabilityError> {
    let _ = global();
    Ok(tta_config::global_handle().update(edit)?)
}

/// The guide's `get_metrics_collector()`.
pub fn metrics_collector() -> &'static Arc<MetricsCollector> {
    global().metrics()
}

/// The guide's `get_health_checker()`.
pub fn health_checker() -> &'static Arc<HealthChecker> {
    global().health()
}

/// The process-wide sampler.
pub fn sampler() -> &'static Arc<CompositeSampler> {
    global().sampler()
}

/// The guide's `get_sampling_status()`: `enabled`, `sampling_rate`, `always_sample_errors`, ...
pub fn sampling_status() -> Value {
    global().sampling_status()
}

/// The guide's `get_metrics_status()`: `total_executions`, `cardinality.dropped_labels`, ...
pub fn metrics_status() -> Value {
    global().metrics_status()
}

/// The guide's `get_full_status()`: every component's status document by name.
pub fn full_status() -> Value {
    global().full_status()
}
