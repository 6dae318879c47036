//! The configuration reference (`docs/configuration.md`), generated from the presets so it
//! cannot drift from the code. `cargo xtask codegen` writes it; a test fails when it is stale.

use std::fmt::Write as _;

use serde_json::Value;

use crate::env::OTEL_VARIABLES;
use crate::model::{Environment, ObservabilityConfig};
use crate::tree::leaves;

/// What each key means (keys not listed here are described in their crate's docs).
const DESCRIPTIONS: &[(&str, &str)] = &[
    ("environment", "Preset the values started from"),
    ("service_name", "Service name reported with every span"),
    ("service_version", "Service version"),
    (
        "async_export",
        "Export on background workers (false: on flush)",
    ),
    (
        "max_export_workers",
        "Export worker threads (restart to change)",
    ),
    ("tracing.enabled", "Record and export spans at all"),
    (
        "tracing.export_interval_seconds",
        "Longest wait before a kept span is exported",
    ),
    ("tracing.batch_size", "Spans per export batch"),
    (
        "tracing.max_queue_size",
        "Span queue capacity; full drops and counts (restart to change)",
    ),
    (
        "tracing.queue_full_wait_ms",
        "Wait for room in a full queue while the stage makes no progress (0: drop at once)",
    ),
    (
        "tracing.export_timeout_seconds",
        "Deadline for one export, retries included",
    ),
    (
        "tracing.otlp_endpoint",
        "OTLP/HTTP endpoint; unset exports to the embedded store only",
    ),
    ("tracing.sampling.default_rate", "Head sampling probability"),
    (
        "tracing.sampling.always_sample_errors",
        "Keep every trace with an error",
    ),
    (
        "tracing.sampling.always_sample_slow",
        "Keep every trace slower than slow_threshold_ms",
    ),
    (
        "tracing.sampling.slow_threshold_ms",
        "Duration above which a trace is slow",
    ),
    (
        "tracing.sampling.adaptive_enabled",
        "Adjust the rate toward the overhead target",
    ),
    ("tracing.sampling.adaptive_min_rate", "Adaptive rate floor"),
    (
        "tracing.sampling.adaptive_max_rate",
        "Adaptive rate ceiling",
    ),
    (
        "tracing.sampling.adaptive_target_overhead",
        "Overhead (fraction of CPU) to aim for",
    ),
    (
        "tracing.sampling.adaptive_adjustment_interval_seconds",
        "Time between rate adjustments",
    ),
    (
        "tracing.sampling.decision_wait_ms",
        "Longest a trace waits in the buffer for its root",
    ),
    (
        "tracing.sampling.straggler_delay_ms",
        "Wait after the root ends for late child spans",
    ),
    (
        "tracing.sampling.buffer_max_bytes",
        "Byte budget of the tail-sampling buffer",
    ),
    (
        "tracing.sampling.max_spans_per_trace",
        "Spans after which a trace is decided at once",
    ),
    ("metrics.enabled", "Collect metrics"),
    (
        "metrics.max_label_values",
        "Distinct values kept per label key",
    ),
    (
        "metrics.hash_high_cardinality",
        "Hash values past the limit into buckets (else one overflow value)",
    ),
    (
        "metrics.export_interval_seconds",
        "Metric snapshot interval",
    ),
    ("storage.trace_ttl_days", "Days traces are kept"),
    ("storage.metric_ttl_days", "Days metric snapshots are kept"),
    ("storage.compression_enabled", "zstd-compress stored blocks"),
    (
        "storage.compression_level",
        "zstd level (1 fast .. 9 best; up to 22)",
    ),
    (
        "storage.max_disk_bytes",
        "Optional cap; oldest segments deleted first",
    ),
];

fn type_name(values: &[&Value]) -> &'static str {
    let mut kind = "optional";
    for v in values {
        kind = match v {
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_f64() => "number",
            Value::Number(_) if kind == "number" => "number",
            Value::Number(_) => "integer",
            Value::String(_) => "string",
            Value::Array(_) => "list",
            Value::Object(_) => "map",
            Value::Null => continue,
        };
    }
    kind
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "unset".into(),
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

/// Renders the configuration reference: every key with its type, default in each preset,
/// and the environment variable that sets it.
///
/// ```
/// let doc = tta_config::render_reference();
/// assert!(doc.contains("| `tracing.sampling.default_rate` |"));
/// assert!(doc.contains("TTA_TRACING__SAMPLING__DEFAULT_RATE"));
/// ```
pub fn render_reference() -> String {
    let presets: Vec<Value> = Environment::ALL
        .iter()
        .map(|e| serde_json::to_value(ObservabilityConfig::preset(*e)).unwrap_or(Value::Null))
        .collect();
    let per_preset: Vec<Vec<(String, &Value)>> = presets.iter().map(leaves).collect();
    let mut out = String::new();
    out.push_str("# Configuration reference\n\n");
    out.push_str(
        "Generated by `cargo xtask codegen` from `tta-config`; a test fails when this file is stale.\n\n\
         Precedence, lowest to highest: the preset for the environment (`ENVIRONMENT`, production when\n\
         unset, or the YAML file's `environment` key), the YAML file, `TTA_` variables (path in capitals with\n\
         `__` between levels), the standard `OTEL_*` variables below, explicit code. Unknown keys are\n\
         rejected with their path, line and column. `SERVICE_NAME` and `SERVICE_VERSION` set the service\n\
         identity as in the guide.\n\n",
    );
    out.push_str("| key | type | development | staging | production | variable | meaning |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for (i, (path, _)) in per_preset[2].iter().enumerate() {
        let values: Vec<&Value> = per_preset
            .iter()
            .filter_map(|p| p.get(i).map(|(_, v)| *v))
            .collect();
        let var = format!("TTA_{}", path.to_ascii_uppercase().replace('.', "__"));
        let meaning = DESCRIPTIONS
            .iter()
            .find(|(k, _)| k == path)
            .map(|(_, d)| *d)
            .unwrap_or("see the section's crate docs");
        let _ = writeln!(
            out,
            "| `{path}` | {} | {} | {} | {} | `{var}` | {meaning} |",
            type_name(&values),
            values.first().map(|v| cell(v)).unwrap_or_default(),
            values.get(1).map(|v| cell(v)).unwrap_or_default(),
            values.get(2).map(|v| cell(v)).unwrap_or_default(),
        );
    }
    out.push_str("\n## Standard OpenTelemetry variables\n\n| variable | sets |\n|---|---|\n");
    for (var, key) in OTEL_VARIABLES {
        let _ = writeln!(out, "| `{var}` | {key} |");
    }
    out.push_str(
        "\n## Hot reload\n\nKeys that only take effect after a restart (a reload reports them instead of\n\
         silently ignoring them): `max_export_workers`, `async_export`, `tracing.max_queue_size`,\n\
         `tracing.otlp_endpoint`, `service_name`, `storage.compression_*`.\n",
    );
    out
}
