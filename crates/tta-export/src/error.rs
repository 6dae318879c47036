//! [`ExportError`]: the crate's one error type.

use std::time::Duration;

use thiserror::Error;

/// Everything that can go wrong in this crate: a bad config, a failed export attempt, a
/// pipeline that is shut down.
///
/// Exporters return it from [`Exporter::export`](crate::Exporter::export); the pipeline reads
/// [`is_retryable`](Self::is_retryable) and [`retry_after`](Self::retry_after) to decide
/// whether and when to try again.
///
/// ```
/// use std::time::Duration;
/// use tta_export::ExportError;
/// let busy = ExportError::HttpStatus {
///     endpoint: "http://127.0.0.1:4318/v1/traces".into(),
///     status: 503,
///     retry_after: Some(Duration::from_secs(2)),
/// };
/// assert!(busy.is_retryable());
/// assert_eq!(busy.retry_after(), Some(Duration::from_secs(2)));
/// let bad = ExportError::HttpStatus { endpoint: "http://127.0.0.1:4318/v1/traces".into(), status: 400, retry_after: None };
/// assert!(!bad.is_retryable());
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A config field is out of range; `message` names the field and the value.
    #[error("invalid export config: {message}")]
    InvalidConfig {
        /// The field, as written in the config (`batch_size`, `retry.max_attempts`, ...).
        field: &'static str,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The sampling config handed to the pipeline was rejected.
    #[error("invalid sampling config: {message}")]
    InvalidSamplingConfig {
        /// What the sampler said.
        message: String,
    },
    /// A file or stream could not be written or flushed.
    #[error("i/o error on {what}: {source}")]
    Io {
        /// The file or stream (a path, `stdout`).
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Spans could not be encoded for an exporter.
    #[error("encoding spans for {exporter} failed: {message}")]
    Encode {
        /// The exporter.
        exporter: &'static str,
        /// What failed.
        message: String,
    },
    /// An HTTP receiver answered with a non-success status. 429, 502, 503 and 504 are
    /// retryable; `retry_after` carries the receiver's `Retry-After` when it sent one.
    #[error("{endpoint} answered http status {status}")]
    HttpStatus {
        /// The URL that was posted to.
        endpoint: String,
        /// The status code.
        status: u16,
        /// The receiver's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The request could not be sent or the answer not read (connection refused, reset,
    /// timed out); retryable.
    #[error("sending to {endpoint} failed: {message}")]
    Transport {
        /// The URL.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// The embedded trace store refused the spans.
    #[error("trace store export failed: {message}")]
    Store {
        /// What the store said.
        message: String,
        /// Whether trying again may help.
        retryable: bool,
    },
    /// A user-defined exporter failed; it says itself whether a retry may help.
    #[error("exporter {exporter} failed: {message}")]
    Other {
        /// The exporter's name.
        exporter: String,
        /// What went wrong.
        message: String,
        /// Whether trying again may help.
        retryable: bool,
        /// Earliest time to try again, if the exporter knows it.
        retry_after: Option<Duration>,
    },
    /// An exporter did not return before the export deadline and was abandoned.
    #[error("exporter {exporter} did not return within {timeout_ms} ms")]
    Timeout {
        /// The exporter's name.
        exporter: String,
        /// The deadline that passed, in milliseconds.
        timeout_ms: u64,
    },
    /// An exporter panicked; the panic was caught and the batch counted as failed.
    #[error("exporter {exporter} panicked: {message}")]
    Panicked {
        /// The exporter's name.
        exporter: String,
        /// The panic payload, when it was a string.
        message: String,
    },
    /// Too many earlier exports to this exporter are still hung, so no new one is started.
    #[error("exporter {exporter} has {stuck} exports still hung; not starting another")]
    Stuck {
        /// The exporter's name.
        exporter: String,
        /// Abandoned exports still running.
        stuck: usize,
    },
    /// `flush` did not finish before its deadline.
    #[error("flush did not finish within {waited_ms} ms")]
    FlushTimeout {
        /// How long the caller waited, in milliseconds.
        waited_ms: u64,
    },
    /// The pipeline is shut down (or its threads are gone).
    #[error("the span pipeline is shut down")]
    ShutDown,
    /// A pipeline thread could not be started.
    #[error("starting pipeline thread {thread} failed: {source}")]
    Spawn {
        /// The thread's name.
        thread: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl ExportError {
    /// Whether trying the same batch again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::HttpStatus { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            Self::Transport { .. } => true,
            Self::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
            ),
            Self::Store { retryable, .. } | Self::Other { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// The earliest time to try again that the receiver asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::HttpStatus { retry_after, .. } | Self::Other { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses_are_exactly_the_otlp_ones() {
        for status in [
            200u16, 400, 401, 403, 404, 413, 429, 500, 501, 502, 503, 504,
        ] {
            let e = ExportError::HttpStatus {
                endpoint: "x".into(),
                status,
                retry_after: None,
            };
            assert_eq!(
                e.is_retryable(),
                matches!(status, 429 | 502 | 503 | 504),
                "{status}"
            );
        }
        assert!(
            ExportError::Transport {
                endpoint: "x".into(),
                message: "refused".into()
            }
            .is_retryable()
        );
        assert!(
            !ExportError::Panicked {
                exporter: "x".into(),
                message: "boom".into()
            }
            .is_retryable()
        );
        assert!(
            !ExportError::Timeout {
                exporter: "x".into(),
                timeout_ms: 1
            }
            .is_retryable()
        );
    }

    #[test]
    fn messages_are_lowercase_and_name_the_part() {
        let e = ExportError::Timeout {
            exporter: "otlp-http".into(),
            timeout_ms: 250,
        };
        assert_eq!(
            e.to_string(),
            "exporter otlp-http did not return within 250 ms"
        );
        let e = ExportError::Other {
            exporter: "mine".into(),
            message: "quota".into(),
            retryable: true,
            retry_after: Some(Duration::from_millis(5)),
        };
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_millis(5)));
        assert_eq!(e.to_string(), "exporter mine failed: quota");
    }
}
