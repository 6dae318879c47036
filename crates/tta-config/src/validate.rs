//! Every rule, each reported with its key path.

use crate::FieldError;
use crate::model::ObservabilityConfig;

struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: &str, message: String) {
        self.0.push(FieldError {
            path: path.to_owned(),
            message,
        });
    }

    fn unit(&mut self, path: &str, v: f64) {
        if !(0.0..=1.0).contains(&v) {
            self.push(path, format!("must be within [0, 1], got {v}"));
        }
    }

    fn positive(&mut self, path: &str, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            self.push(path, format!("must be a positive number, got {v}"));
        }
    }

    fn at_least_one(&mut self, path: &str, v: u64) {
        if v == 0 {
            self.push(path, "must be at least 1, got 0".into());
        }
    }

    fn has(&self, prefix: &str) -> bool {
        self.0.iter().any(|e| e.path.starts_with(prefix))
    }

    /// A section's own `validate()` catches rules this table does not know; it is reported
    /// only when nothing in that section was reported already.
    fn section<E: std::fmt::Display>(&mut self, prefix: &str, result: Result<(), E>) {
        if let Err(e) = result
            && !self.has(prefix)
        {
            self.push(prefix, format!("is invalid: {e}"));
        }
    }
}

pub(crate) fn validate(c: &ObservabilityConfig) -> Vec<FieldError> {
    let mut e = Errors(Vec::new());
    if c.service_name.trim().is_empty() {
        e.push("service_name", "must not be empty".into());
    }

    let s = &c.tracing.sampling;
    e.unit("tracing.sampling.default_rate", s.default_rate);
    e.unit("tracing.sampling.adaptive_min_rate", s.adaptive_min_rate);
    e.unit("tracing.sampling.adaptive_max_rate", s.adaptive_max_rate);
    if !(s.slow_threshold_ms.is_finite() && s.slow_threshold_ms >= 0.0) {
        e.push(
            "tracing.sampling.slow_threshold_ms",
            format!("must be a finite number >= 0, got {}", s.slow_threshold_ms),
        );
    }
    if s.adaptive_enabled {
        if s.adaptive_min_rate > s.adaptive_max_rate {
            e.push(
                "tracing.sampling.adaptive_min_rate",
                format!(
                    "must not exceed adaptive_max_rate ({}), got {}",
                    s.adaptive_max_rate, s.adaptive_min_rate
                ),
            );
        } else if !e.has("tracing.sampling.default_rate")
            && !(s.adaptive_min_rate..=s.adaptive_max_rate).contains(&s.default_rate)
        {
            e.push(
                "tracing.sampling.default_rate",
                format!(
                    "must be within [adaptive_min_rate, adaptive_max_rate] = [{}, {}] while adaptive sampling is enabled, got {}",
                    s.adaptive_min_rate, s.adaptive_max_rate, s.default_rate
                ),
            );
        }
        if !(s.adaptive_target_overhead > 0.0 && s.adaptive_target_overhead < 1.0) {
            e.push(
                "tracing.sampling.adaptive_target_overhead",
                format!("must be within (0, 1), got {}", s.adaptive_target_overhead),
            );
        }
        e.positive(
            "tracing.sampling.adaptive_adjustment_interval_seconds",
            s.adaptive_adjustment_interval_seconds,
        );
    }

    let t = &c.tracing;
    e.at_least_one("tracing.batch_size", t.batch_size as u64);
    e.at_least_one("tracing.max_queue_size", t.max_queue_size as u64);
    if t.batch_size > t.max_queue_size {
        e.push(
            "tracing.batch_size",
            format!(
                "({}) must not exceed tracing.max_queue_size ({})",
                t.batch_size, t.max_queue_size
            ),
        );
    }
    if !(t.queue_full_wait_ms.is_finite()
        && (0.0..=tta_export::MAX_QUEUE_FULL_WAIT_MS).contains(&t.queue_full_wait_ms))
    {
        e.push(
            "tracing.queue_full_wait_ms",
            format!(
                "must be within [0, {}], got {}",
                tta_export::MAX_QUEUE_FULL_WAIT_MS,
                t.queue_full_wait_ms
            ),
        );
    }
    e.positive("tracing.export_interval_seconds", t.export_interval_seconds);
    e.positive("tracing.export_timeout_seconds", t.export_timeout_seconds);
    if let Some(endpoint) = &t.otlp_endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        e.push(
            "tracing.otlp_endpoint",
            format!("must start with http:// or https://, got {endpoint:?}"),
        );
    }

    e.at_least_one(
        "metrics.max_label_values",
        c.metrics.max_label_values as u64,
    );
    e.positive(
        "metrics.export_interval_seconds",
        c.metrics.export_interval_seconds,
    );

    if c.storage.trace_ttl_days == 0 {
        e.push(
            "storage.trace_ttl_days",
            "must be at least 1 day, got 0".into(),
        );
    }
    if c.storage.metric_ttl_days == 0 {
        e.push(
            "storage.metric_ttl_days",
            "must be at least 1 day, got 0".into(),
        );
    }
    if !(1..=22).contains(&c.storage.compression_level) {
        e.push(
            "storage.compression_level",
            format!(
                "must be a zstd level within [1, 22] (1-9 is the useful range), got {}",
                c.storage.compression_level
            ),
        );
    }

    e.at_least_one("max_export_workers", c.max_export_workers as u64);

    e.section("tracing.sampling", s.validate());
    e.section("metrics", c.metrics.validate());
    e.section("storage", c.storage.validate());
    e.section("tracing", c.export_config().validate());
    e.0
}
