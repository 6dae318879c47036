use std::path::PathBuf;

use thiserror::Error;

/// One validation failure, with the dotted path of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted key path, e.g. `tracing.sampling.default_rate`.
    pub path: String,
    /// What is wrong, e.g. `must be within [0, 1], got 1.5`.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.path, self.message)
    }
}

/// Everything that can go wrong building, loading or reloading a configuration.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment name that has no preset.
    #[error(
        "unknown environment {name:?}; valid environments are development, staging, production"
    )]
    UnknownEnvironment {
        /// The name given.
        name: String,
    },
    /// The YAML text could not be parsed or does not fit the schema (unknown key, wrong type).
    #[error("{source_name}: {message}")]
    Yaml {
        /// The file path, or `<string>`.
        source_name: String,
        /// The parser's message with the key path, line and column (and a suggestion when a
        /// key is close to a real one).
        message: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
    },
    /// A config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An environment variable has a malformed value or names no config key.
    #[error("environment variable {variable}: {message}")]
    EnvVar {
        /// The variable, e.g. `TTA_TRACING__SAMPLING__DEFAULT_RATE`.
        variable: String,
        /// What is wrong with it.
        message: String,
    },
    /// The configuration parsed but breaks one or more rules; every failure is listed.
    #[error("invalid configuration: {}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// Every failure, each with its path.
        errors: Vec<FieldError>,
    },
    /// The global configuration was already initialised differently.
    #[error("internal: {0}")]
    Internal(String),
}

impl ConfigError {
    /// The validation failures, if this is a validation error.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Self::Invalid { errors } => errors,
            _ => &[],
        }
    }
}
