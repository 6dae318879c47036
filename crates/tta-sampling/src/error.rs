use thiserror::Error;

/// Why a sampling value or configuration was rejected.
///
/// Messages are lowercase and name the value or field that was wrong.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SamplingError {
    /// A configuration field is out of range; `problem` says how.
    ///
    /// Displays as e.g. `default_rate must be within [0, 1], got 1.5`.
    #[error("{field} {problem}")]
    Config {
        /// The field name as written in configuration files (`default_rate`, ...).
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A sampling probability outside `[2^-56, 1]`, or NaN.
    #[error("sampling probability must be within [2^-56, 1], got {0}")]
    Probability(f64),
    /// A threshold precision outside `[1, 14]` hex digits.
    #[error("threshold precision must be within [1, 14] hex digits, got {0}")]
    Precision(u32),
    /// A raw threshold or randomness value that does not fit in 56 bits.
    #[error("{what} must be below 2^56, got {value:#x}")]
    OutOfRange {
        /// `threshold` or `randomness`.
        what: &'static str,
        /// The rejected value.
        value: u64,
    },
    /// A `th` or `rv` text value that does not parse.
    #[error("invalid {what} value {text:?}: {reason}")]
    Text {
        /// `th` or `rv`.
        what: &'static str,
        /// The rejected text (truncated to 32 characters).
        text: String,
        /// Why it was rejected.
        reason: String,
    },
}

impl SamplingError {
    pub(crate) fn config(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Config {
            field,
            problem: problem.into(),
        }
    }

    pub(crate) fn text(what: &'static str, text: &str, reason: impl std::fmt::Display) -> Self {
        let shown: String = text.chars().take(32).collect();
        Self::Text {
            what,
            text: shown,
            reason: reason.to_string(),
        }
    }
}
