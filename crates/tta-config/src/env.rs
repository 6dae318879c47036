//! Environment variables: `ENVIRONMENT`, `SERVICE_NAME`, `SERVICE_VERSION`, `TTA_*` overrides
//! and the standard `OTEL_*` variables.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::model::{Environment, ObservabilityConfig};
use crate::{ConfigError, tree, yaml};

/// `TTA_` variables that are not config keys (read by the facade and CLI instead).
const RESERVED: &[&str] = &[
    "TTA_CONFIG_FILE",
    "TTA_LISTEN",
    "TTA_DATA_DIR",
    "TTA_BENCH_QUICK",
];

/// The standard OpenTelemetry variables this crate maps, with the key each sets.
pub const OTEL_VARIABLES: &[(&str, &str)] = &[
    ("OTEL_SERVICE_NAME", "service_name"),
    ("OTEL_SDK_DISABLED", "tracing.enabled (inverted)"),
    (
        "OTEL_TRACES_SAMPLER",
        "tracing.sampling.default_rate (and adaptive_enabled = false)",
    ),
    (
        "OTEL_TRACES_SAMPLER_ARG",
        "tracing.sampling.default_rate (ratio samplers)",
    ),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "tracing.max_queue_size"),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "tracing.batch_size"),
    (
        "OTEL_BSP_SCHEDULE_DELAY",
        "tracing.export_interval_seconds (milliseconds)",
    ),
    (
        "OTEL_BSP_EXPORT_TIMEOUT",
        "tracing.export_timeout_seconds (milliseconds)",
    ),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "tracing.otlp_endpoint"),
];

/// A set of environment variables: the process's, or any map (for tests and tools).
///
/// ```
/// use tta_config::{EnvSource, ObservabilityConfig};
/// let env = EnvSource::from_pairs([
///     ("ENVIRONMENT", "staging"),
///     ("TTA_TRACING__SAMPLING__DEFAULT_RATE", "0.3"),
/// ]);
/// let config = ObservabilityConfig::from_env_source(&env)?;
/// assert_eq!(config.tracing.sampling.default_rate, 0.3);
/// # Ok::<(), tta_config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct EnvSource {
    vars: BTreeMap<String, String>,
}

impl EnvSource {
    /// The current process's environment (variables that are not valid UTF-8 are skipped).
    pub fn process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// A source from explicit pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// One variable, when set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl ObservabilityConfig {
    /// Builds the configuration from the process environment (no file): the preset named by
    /// `ENVIRONMENT` (production when unset), then `SERVICE_NAME`, `SERVICE_VERSION`, `TTA_*`
    /// and `OTEL_*` variables.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(None, &EnvSource::process())
    }

    /// [`from_env`](Self::from_env) with an explicit variable set.
    pub fn from_env_source(env: &EnvSource) -> Result<Self, ConfigError> {
        Self::load(None, env)
    }

    /// Builds the configuration from every layer: preset, optional YAML file, variables.
    /// The preset is the one the file's `environment` key names, else `ENVIRONMENT`'s.
    pub fn load(file: Option<&Path>, env: &EnvSource) -> Result<Self, ConfigError> {
        let file_layer = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.to_owned(),
                    source,
                })?;
                Some((text, path.display().to_string()))
            }
            None => None,
        };
        let file_layer = file_layer.as_ref().map(|(t, n)| (t.as_str(), n.as_str()));
        let tree = build_tree(file_layer, env)?;
        let config: ObservabilityConfig = serde_json::from_value(tree)
            .map_err(|e| ConfigError::Internal(format!("merged configuration: {e}")))?;
        config.validate()?;
        Ok(config)
    }
}

/// Preset, then the YAML layer (checked for unknown keys and types with positions), then
/// the variables.
pub(crate) fn build_tree(
    file: Option<(&str, &str)>,
    env: &EnvSource,
) -> Result<Value, ConfigError> {
    let mut environment = match env.get("ENVIRONMENT") {
        Some(name) => name
            .parse::<Environment>()
            .map_err(|_| ConfigError::EnvVar {
                variable: "ENVIRONMENT".into(),
                message: format!(
                    "unknown environment {name:?}; valid: development, staging, production"
                ),
            })?,
        None => Environment::Production,
    };
    let mut file_tree = None;
    if let Some((text, source_name)) = file {
        yaml::check_typed::<ObservabilityConfig>(text, source_name)?;
        let t = yaml::to_tree(text, source_name)?;
        if let Some(name) = t.get("environment").and_then(Value::as_str) {
            environment = name.parse()?;
        }
        file_tree = Some(t);
    }
    let mut tree = serde_json::to_value(ObservabilityConfig::preset(environment))
        .map_err(|e| ConfigError::Internal(e.to_string()))?;
    if let Some(t) = file_tree {
        tree::merge(&mut tree, t);
    }
    apply_env(&mut tree, env)?;
    Ok(tree)
}

fn apply_env(tree: &mut Value, env: &EnvSource) -> Result<(), ConfigError> {
    let set = |tree: &mut Value, variable: &str, path: &str, value: Value| {
        let path: Vec<String> = path.split('.').map(str::to_owned).collect();
        tree::set_path(tree, &path, value).map_err(|message| ConfigError::EnvVar {
            variable: variable.to_owned(),
            message,
        })?;
        // Type-check now so the error names the variable, not a merged tree.
        serde_json::from_value::<ObservabilityConfig>(tree.clone()).map_err(|e| {
            ConfigError::EnvVar {
                variable: variable.to_owned(),
                message: e.to_string(),
            }
        })?;
        Ok::<(), ConfigError>(())
    };

    if let Some(v) = env.get("SERVICE_NAME") {
        set(tree, "SERVICE_NAME", "service_name", json!(v))?;
    }
    if let Some(v) = env.get("SERVICE_VERSION") {
        set(tree, "SERVICE_VERSION", "service_version", json!(v))?;
    }
    for (key, value) in &env.vars {
        let Some(rest) = key.strip_prefix("TTA_") else {
            continue;
        };
        if RESERVED.contains(&key.as_str()) || value.is_empty() {
            continue;
        }
        let path = rest.to_ascii_lowercase().replace("__", ".");
        set(tree, key, &path, yaml::scalar(value))?;
    }

    if let Some(v) = env.get("OTEL_SERVICE_NAME") {
        set(tree, "OTEL_SERVICE_NAME", "service_name", json!(v))?;
    }
    if let Some(v) = env.get("OTEL_SDK_DISABLED") {
        let disabled = parse_bool(v).ok_or_else(|| ConfigError::EnvVar {
            variable: "OTEL_SDK_DISABLED".into(),
            message: format!("expected true or false, got {v:?}"),
        })?;
        set(
            tree,
            "OTEL_SDK_DISABLED",
            "tracing.enabled",
            json!(!disabled),
        )?;
    }
    if let Some(sampler) = env.get("OTEL_TRACES_SAMPLER") {
        let ratio = || -> Result<f64, ConfigError> {
            match env.get("OTEL_TRACES_SAMPLER_ARG") {
                None => Ok(1.0),
                Some(arg) => arg
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| ConfigError::EnvVar {
                        variable: "OTEL_TRACES_SAMPLER_ARG".into(),
                        message: format!("expected a probability within [0, 1], got {arg:?}"),
                    }),
            }
        };
        let rate = match sampler.trim() {
            "always_on" | "parentbased_always_on" => 1.0,
            "always_off" | "parentbased_always_off" => 0.0,
            "traceidratio" | "parentbased_traceidratio" => ratio()?,
            other => {
                return Err(ConfigError::EnvVar {
                    variable: "OTEL_TRACES_SAMPLER".into(),
                    message: format!(
                        "unsupported sampler {other:?}; supported: always_on, always_off, traceidratio, \
                         parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
                    ),
                });
            }
        };
        set(
            tree,
            "OTEL_TRACES_SAMPLER",
            "tracing.sampling.adaptive_enabled",
            json!(false),
        )?;
        set(
            tree,
            "OTEL_TRACES_SAMPLER",
            "tracing.sampling.default_rate",
            json!(rate),
        )?;
    }
    for (var, path) in [
        ("OTEL_BSP_MAX_QUEUE_SIZE", "tracing.max_queue_size"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "tracing.batch_size"),
    ] {
        if let Some(v) = env.get(var) {
            let n: u64 = v.trim().parse().map_err(|_| ConfigError::EnvVar {
                variable: var.into(),
                message: format!("expected a whole number, got {v:?}"),
            })?;
            set(tree, var, path, json!(n))?;
        }
    }
    for (var, path) in [
        ("OTEL_BSP_SCHEDULE_DELAY", "tracing.export_interval_seconds"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "tracing.export_timeout_seconds"),
    ] {
        if let Some(v) = env.get(var) {
            let ms: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|ms: &f64| ms.is_finite() && *ms >= 0.0)
                .ok_or_else(|| ConfigError::EnvVar {
                    variable: var.into(),
                    message: format!("expected milliseconds, got {v:?}"),
                })?;
            set(tree, var, path, json!(ms / 1000.0))?;
        }
    }
    if let Some(v) = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        set(
            tree,
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "tracing.otlp_endpoint",
            json!(v),
        )?;
    }
    Ok(())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

impl ObservabilityConfig {
    /// Parses a YAML document over the preset its `environment` key names (production when
    /// absent). Environment variables are not consulted.
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_yaml_named(text, "<string>")
    }

    /// Reads and parses a YAML file; errors name the file, key path, line and column.
    /// Environment variables are not consulted (use [`load`](Self::load) for every layer).
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::load(Some(path.as_ref()), &EnvSource::default())
    }

    pub(crate) fn from_yaml_named(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let tree = build_tree(Some((text, source_name)), &EnvSource::default())?;
        let config: ObservabilityConfig = serde_json::from_value(tree)
            .map_err(|e| ConfigError::Internal(format!("merged configuration: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// The whole configuration as YAML (every key), loadable by
    /// [`from_yaml_str`](Self::from_yaml_str).
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        yaml::to_string(self)
    }
}
