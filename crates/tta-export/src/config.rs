//! [`ExportConfig`]: the pipeline's queue, batching, worker and retry settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ExportError;

/// Settings of the span pipeline: queue capacity, batching, export workers, deadline and
/// retries (the guide's "Performance Tuning" section).
///
/// Deserializes with defaults for missing keys and rejects unknown keys.
///
/// ```
/// use tta_export::ExportConfig;
/// let config = ExportConfig { batch_size: 1024, max_queue_size: 8192, ..Default::default() };
/// config.validate()?;
///
/// let too_big = ExportConfig { batch_size: 4096, ..Default::default() };
/// let err = too_big.validate().unwrap_err();
/// assert_eq!(err.to_string(), "invalid export config: batch_size (4096) must not exceed max_queue_size (2048)");
/// # Ok::<(), tta_export::ExportError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Most spans per export batch; a batch is cut as soon as it holds this many.
    pub batch_size: usize,
    /// Capacity of the submit queue in spans; `submit` drops (and counts) when it is full
    /// (after waiting for room, if `queue_full_wait_ms` is set).
    pub max_queue_size: usize,
    /// How long `submit` waits for room in a full queue while the sampler stage takes no
    /// span, in milliseconds, before it drops the span; `0` (the default) drops at once, so
    /// `submit` never waits. When set, a producer that outruns the stage waits for it
    /// instead of losing spans (backpressure; the wait starts over whenever the stage has
    /// taken spans meanwhile), but not for the exporters: once a batch hand-over has waited
    /// 10 ms for a busy or hung exporter, or a wait saw the stage take nothing for this long,
    /// a full queue drops at once until the stage's drain loop runs again.
    pub queue_full_wait_ms: f64,
    /// Longest time a kept span waits in a partial batch before the batch is cut anyway.
    pub export_interval_seconds: f64,
    /// Export on background worker threads (`true`), or only when the caller runs
    /// [`SpanPipeline::flush`](crate::SpanPipeline::flush) (`false`, for tests and
    /// short-lived tools).
    pub async_export: bool,
    /// Number of export worker threads (with `async_export`).
    pub max_export_workers: usize,
    /// Deadline for exporting one batch to one exporter, retries included; an exporter that
    /// has not returned by then is abandoned and the batch counts as failed.
    pub export_timeout_seconds: f64,
    /// How failed exports are retried within the deadline.
    pub retry: RetryPolicy,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            batch_size: 512,
            max_queue_size: 2048,
            queue_full_wait_ms: 0.0,
            export_interval_seconds: 60.0,
            async_export: true,
            max_export_workers: 4,
            export_timeout_seconds: 30.0,
            retry: RetryPolicy::default(),
        }
    }
}

/// Exponential backoff with jitter for retryable export failures.
///
/// Attempt `n` (counting from 1) that fails with a retryable error waits
/// `min(initial_backoff_ms * multiplier^(n-1), max_backoff_ms)`, reduced by a random share of
/// up to `jitter` of itself, or the exporter's `Retry-After` if that is longer, and only if the
/// wait still ends before the export deadline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Wait before the first retry, in milliseconds.
    pub initial_backoff_ms: u64,
    /// Longest wait between two attempts, in milliseconds.
    pub max_backoff_ms: u64,
    /// Most attempts per batch and exporter, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Growth factor of the wait after each failed attempt (at least 1).
    pub multiplier: f64,
    /// Share of each wait (0 to 1) that is randomly taken off, so that many pipelines do not
    /// retry in lockstep.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff_ms: 100,
            max_backoff_ms: 5_000,
            max_attempts: 5,
            multiplier: 2.0,
            jitter: 0.5,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based) before jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// let retry = tta_export::RetryPolicy { initial_backoff_ms: 100, max_backoff_ms: 1000, ..Default::default() };
    /// assert_eq!(retry.backoff(1), Duration::from_millis(100));
    /// assert_eq!(retry.backoff(3), Duration::from_millis(400));
    /// assert_eq!(retry.backoff(10), Duration::from_millis(1000));
    /// ```
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let ms = self.initial_backoff_ms as f64 * self.multiplier.max(1.0).powi(exp);
        let capped = ms.min(self.max_backoff_ms as f64).max(0.0);
        Duration::from_micros((capped * 1000.0) as u64)
    }

    /// [`backoff`](Self::backoff) with jitter applied: `random` in `[0, 1)` takes off up to
    /// `jitter` of the wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// let retry = tta_export::RetryPolicy { initial_backoff_ms: 100, jitter: 0.5, ..Default::default() };
    /// assert_eq!(retry.backoff_with_jitter(1, 0.0), Duration::from_millis(100));
    /// assert_eq!(retry.backoff_with_jitter(1, 0.5), Duration::from_millis(75));
    /// ```
    pub fn backoff_with_jitter(&self, attempt: u32, random: f64) -> Duration {
        let base = self.backoff(attempt);
        let share = (self.jitter.clamp(0.0, 1.0) * random.clamp(0.0, 1.0)).clamp(0.0, 1.0);
        base.mul_f64(1.0 - share)
    }
}

impl ExportConfig {
    /// The export interval as a [`Duration`] (invalid values are clamped to at least 1 ms).
    pub fn export_interval(&self) -> Duration {
        seconds_to_duration(self.export_interval_seconds)
    }

    /// How long a full queue makes `submit` wait (`None`: drop at once).
    pub fn queue_full_wait(&self) -> Option<Duration> {
        (self.queue_full_wait_ms.is_finite() && self.queue_full_wait_ms > 0.0).then(|| {
            Duration::from_secs_f64(self.queue_full_wait_ms.min(MAX_QUEUE_FULL_WAIT_MS) / 1000.0)
        })
    }

    /// The export deadline as a [`Duration`] (invalid values are clamped to at least 1 ms).
    pub fn export_timeout(&self) -> Duration {
        seconds_to_duration(self.export_timeout_seconds)
    }

    /// Checks every field; the error names the first field that is wrong and why.
    pub fn validate(&self) -> Result<(), ExportError> {
        match self.problems().into_iter().next() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Every problem with this config (empty when valid), each an
    /// [`ExportError::InvalidConfig`] naming its field, for tools that list all errors.
    ///
    /// ```
    /// use tta_export::{ExportConfig, ExportError};
    /// let config = ExportConfig { batch_size: 0, max_export_workers: 0, ..Default::default() };
    /// let fields: Vec<&str> = config
    ///     .problems()
    ///     .iter()
    ///     .filter_map(|e| match e { ExportError::InvalidConfig { field, .. } => Some(*field), _ => None })
    ///     .collect();
    /// assert_eq!(fields, ["batch_size", "max_export_workers"]);
    /// ```
    pub fn problems(&self) -> Vec<ExportError> {
        let mut out = Vec::new();
        let mut bad = |field: &'static str, message: String| {
            out.push(ExportError::InvalidConfig { field, message });
        };
        if self.batch_size == 0 {
            bad("batch_size", "batch_size must be at least 1".into());
        } else if self.batch_size > self.max_queue_size {
            bad(
                "batch_size",
                format!(
                    "batch_size ({}) must not exceed max_queue_size ({})",
                    self.batch_size, self.max_queue_size
                ),
            );
        }
        if self.max_queue_size == 0 {
            bad("max_queue_size", "max_queue_size must be at least 1".into());
        } else if self.max_queue_size > MAX_QUEUE_SIZE {
            bad(
                "max_queue_size",
                format!(
                    "max_queue_size ({}) must not exceed {MAX_QUEUE_SIZE}",
                    self.max_queue_size
                ),
            );
        }
        if !(self.queue_full_wait_ms.is_finite()
            && (0.0..=MAX_QUEUE_FULL_WAIT_MS).contains(&self.queue_full_wait_ms))
        {
            bad(
                "queue_full_wait_ms",
                format!(
                    "queue_full_wait_ms ({}) must be between 0 and {MAX_QUEUE_FULL_WAIT_MS}",
                    self.queue_full_wait_ms
                ),
            );
        }
        if !(self.export_interval_seconds.is_finite() && self.export_interval_seconds >= 0.001) {
            bad(
                "export_interval_seconds",
                format!(
                    "export_interval_seconds ({}) must be a finite number of at least 0.001",
                    self.export_interval_seconds
                ),
            );
        }
        if self.max_export_workers == 0 || self.max_export_workers > MAX_WORKERS {
            bad(
                "max_export_workers",
                format!(
                    "max_export_workers ({}) must be between 1 and {MAX_WORKERS}",
                    self.max_export_workers
                ),
            );
        }
        if !(self.export_timeout_seconds.is_finite() && self.export_timeout_seconds >= 0.001) {
            bad(
                "export_timeout_seconds",
                format!(
                    "export_timeout_seconds ({}) must be a finite number of at least 0.001",
                    self.export_timeout_seconds
                ),
            );
        }
        let r = &self.retry;
        if r.max_attempts == 0 {
            bad(
                "retry.max_attempts",
                "retry.max_attempts must be at least 1 (1 disables retries)".into(),
            );
        }
        if r.initial_backoff_ms > r.max_backoff_ms {
            bad(
                "retry.initial_backoff_ms",
                format!(
                    "retry.initial_backoff_ms ({}) must not exceed retry.max_backoff_ms ({})",
                    r.initial_backoff_ms, r.max_backoff_ms
                ),
            );
        }
        if !(r.multiplier.is_finite() && r.multiplier >= 1.0) {
            bad(
                "retry.multiplier",
                format!(
                    "retry.multiplier ({}) must be a finite number of at least 1",
                    r.multiplier
                ),
            );
        }
        if !(r.jitter.is_finite() && (0.0..=1.0).contains(&r.jitter)) {
            bad(
                "retry.jitter",
                format!("retry.jitter ({}) must be between 0 and 1", r.jitter),
            );
        }
        out
    }
}

/// Largest accepted `max_queue_size` (the queue's slots are allocated up front).
pub const MAX_QUEUE_SIZE: usize = 1 << 24;
/// Largest accepted `queue_full_wait_ms`: a producer never waits longer than this per span.
pub const MAX_QUEUE_FULL_WAIT_MS: f64 = 1000.0;
/// Largest accepted `max_export_workers`.
pub const MAX_WORKERS: usize = 256;

pub(crate) fn seconds_to_duration(seconds: f64) -> Duration {
    if seconds.is_finite() && seconds > 0.001 {
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    } else {
        Duration::from_millis(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(config: &ExportConfig) -> Vec<&'static str> {
        config
            .problems()
            .iter()
            .filter_map(|e| match e {
                ExportError::InvalidConfig { field, .. } => Some(*field),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn defaults_follow_the_guide_and_are_valid() {
        let c = ExportConfig::default();
        assert_eq!((c.batch_size, c.max_queue_size), (512, 2048));
        assert_eq!(c.export_interval_seconds, 60.0);
        assert!(c.async_export);
        assert_eq!(c.max_export_workers, 4);
        assert!(c.validate().is_ok());
        assert_eq!(c.export_interval(), Duration::from_secs(60));
        assert_eq!(c.export_timeout(), Duration::from_secs(30));
        assert_eq!(
            c.queue_full_wait(),
            None,
            "a full queue drops at once by default"
        );
        let waiting = ExportConfig {
            queue_full_wait_ms: 2.5,
            ..Default::default()
        };
        assert_eq!(waiting.queue_full_wait(), Some(Duration::from_micros(2500)));
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(ExportConfig, &str)> = vec![
            (
                ExportConfig {
                    batch_size: 0,
                    ..Default::default()
                },
                "batch_size",
            ),
            (
                ExportConfig {
                    batch_size: 4096,
                    ..Default::default()
                },
                "batch_size",
            ),
            (
                ExportConfig {
                    max_queue_size: 0,
                    batch_size: 0,
                    ..Default::default()
                },
                "max_queue_size",
            ),
            (
                ExportConfig {
                    export_interval_seconds: f64::NAN,
                    ..Default::default()
                },
                "export_interval_seconds",
            ),
            (
                ExportConfig {
                    export_interval_seconds: -1.0,
                    ..Default::default()
                },
                "export_interval_seconds",
            ),
            (
                ExportConfig {
                    queue_full_wait_ms: -1.0,
                    ..Default::default()
                },
                "queue_full_wait_ms",
            ),
            (
                ExportConfig {
                    queue_full_wait_ms: f64::NAN,
                    ..Default::default()
                },
                "queue_full_wait_ms",
            ),
            (
                ExportConfig {
                    queue_full_wait_ms: MAX_QUEUE_FULL_WAIT_MS + 1.0,
                    ..Default::default()
                },
                "queue_full_wait_ms",
            ),
            (
                ExportConfig {
                    max_export_workers: 0,
                    ..Default::default()
                },
                "max_export_workers",
            ),
            (
                ExportConfig {
                    max_export_workers: 10_000,
                    ..Default::default()
                },
                "max_export_workers",
            ),
            (
                ExportConfig {
                    export_timeout_seconds: f64::INFINITY,
                    ..Default::default()
                },
                "export_timeout_seconds",
            ),
            (
                ExportConfig {
                    retry: RetryPolicy {
                        max_attempts: 0,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "retry.max_attempts",
            ),
            (
                ExportConfig {
                    retry: RetryPolicy {
                        initial_backoff_ms: 10,
                        max_backoff_ms: 5,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "retry.initial_backoff_ms",
            ),
            (
                ExportConfig {
                    retry: RetryPolicy {
                        multiplier: 0.5,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "retry.multiplier",
            ),
            (
                ExportConfig {
                    retry: RetryPolicy {
                        jitter: 1.5,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "retry.jitter",
            ),
        ];
        for (config, field) in cases {
            assert!(
                fields(&config).contains(&field),
                "{field}: {:?}",
                config.problems()
            );
            let err = config.validate().unwrap_err().to_string();
            assert!(err.starts_with("invalid export config: "), "{err}");
        }
    }

    #[test]
    fn batch_size_message_names_both_fields() {
        let err = ExportConfig {
            batch_size: 4096,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid export config: batch_size (4096) must not exceed max_queue_size (2048)"
        );
    }

    #[test]
    fn serde_defaults_missing_keys_and_rejects_unknown_ones() {
        let c: ExportConfig =
            serde_json::from_str(r#"{"batch_size": 100, "retry": {"max_attempts": 2}}"#).unwrap();
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.retry.max_attempts, 2);
        assert_eq!(
            c.retry.initial_backoff_ms,
            RetryPolicy::default().initial_backoff_ms
        );
        assert_eq!(c.max_queue_size, 2048);
        let err = serde_json::from_str::<ExportConfig>(r#"{"batch_sise": 100}"#).unwrap_err();
        assert!(err.to_string().contains("batch_sise"), "{err}");
        let err = serde_json::from_str::<ExportConfig>(r#"{"retry": {"tries": 1}}"#).unwrap_err();
        assert!(err.to_string().contains("tries"), "{err}");
        let round: ExportConfig =
            serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(round, c);
    }

    #[test]
    fn backoff_grows_caps_and_jitters_down() {
        let r = RetryPolicy {
            initial_backoff_ms: 10,
            max_backoff_ms: 50,
            multiplier: 2.0,
            jitter: 0.5,
            max_attempts: 9,
        };
        let waits: Vec<u64> = (1..=5).map(|a| r.backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [10, 20, 40, 50, 50]);
        for a in 1..=5 {
            for i in 0..10 {
                let rnd = f64::from(i) / 10.0;
                let w = r.backoff_with_jitter(a, rnd);
                assert!(
                    w <= r.backoff(a) && w >= r.backoff(a).mul_f64(0.5),
                    "{a} {rnd} {w:?}"
                );
            }
        }
    }
}
