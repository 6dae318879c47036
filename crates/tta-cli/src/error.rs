//! The library's error type: every variant names the command, what failed and where.

use std::path::PathBuf;

use thiserror::Error;

/// Everything a `tta` command can fail with at run time (exit code 3). Failed checks are not
/// errors: commands report them through [`Outcome::Failed`](crate::Outcome::Failed).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CliError {
    /// A configuration could not be loaded.
    #[error("{command}: {source}")]
    Config {
        /// The command, e.g. `config show`.
        command: &'static str,
        /// Why.
        #[source]
        source: tta_observability::config::ConfigError,
    },
    /// The trace store could not be opened or read.
    #[error("{command}: store {}: {source}", dir.display())]
    Store {
        /// The command, e.g. `traces list`.
        command: &'static str,
        /// The store directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: tta_observability::storage::StorageError,
    },
    /// The observability runtime could not start or stop.
    #[error("{command}: {source}")]
    Runtime {
        /// The command.
        command: &'static str,
        /// Why.
        #[source]
        source: tta_observability::ObservabilityError,
    },
    /// A file or directory operation failed.
    #[error("{command}: {}: {source}", path.display())]
    Io {
        /// The command.
        command: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing the command's output failed (for example a closed pipe).
    #[error("{command}: cannot write output: {source}")]
    Output {
        /// The command.
        command: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An HTTP request failed or its answer was not what was expected.
    #[error("{command}: {url}: {message}")]
    Http {
        /// The command.
        command: &'static str,
        /// The URL asked.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// An argument has a value the command cannot use (beyond what the parser checks).
    #[error("{command}: {argument}: {message}")]
    InvalidArgument {
        /// The command.
        command: &'static str,
        /// The argument, e.g. `--rate`.
        argument: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A worker thread could not be started or panicked.
    #[error("{command}: {message}")]
    Thread {
        /// The command.
        command: &'static str,
        /// What happened.
        message: String,
    },
}

impl CliError {
    /// The process exit code: [`EXIT_USAGE`](crate::EXIT_USAGE) for an argument the command
    /// cannot use, [`EXIT_ERROR`](crate::EXIT_ERROR) for everything else.
    ///
    /// ```
    /// let e = tta_cli::CliError::InvalidArgument { command: "demo", argument: "--rate", message: "too big".into() };
    /// assert_eq!(e.exit_code(), tta_cli::EXIT_USAGE);
    /// assert_eq!(e.to_string(), "demo: --rate: too big");
    /// ```
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::InvalidArgument { .. } => crate::EXIT_USAGE,
            _ => crate::EXIT_ERROR,
        }
    }

    pub(crate) fn output(command: &'static str) -> impl Fn(std::io::Error) -> Self + Copy {
        move |source| Self::Output { command, source }
    }
}
