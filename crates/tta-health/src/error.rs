//! [`HealthError`], the one error type of this crate.

use std::io;
use std::net::SocketAddr;

/// Everything that can go wrong in `tta-health`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// A component name is empty, uses characters other than `a-z`, `0-9`, `_` and `-`, is
    /// longer than 64 bytes, or is reserved (it would clash with a report key or a path).
    #[error("invalid health component name {name:?}: {why}")]
    InvalidComponentName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A component with this name is already registered.
    #[error("health component {name:?} is already registered")]
    DuplicateComponent {
        /// The name given.
        name: String,
    },
    /// Health thresholds failed validation; every problem names its field.
    #[error("invalid health thresholds: {}", problems.join("; "))]
    InvalidThresholds {
        /// One entry per problem.
        problems: Vec<String>,
    },
    /// The address for the HTTP server could not be parsed or resolved.
    #[error("invalid health server address {addr:?}: {why}")]
    InvalidAddress {
        /// The address given.
        addr: String,
        /// What is wrong with it.
        why: String,
    },
    /// The HTTP server could not bind its address.
    #[error("cannot bind health server to {addr}")]
    Bind {
        /// The address it tried.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The HTTP server's runtime or thread could not be started.
    #[error("cannot start health server: {what}")]
    Server {
        /// Which step failed.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The HTTP server thread panicked.
    #[error("health server thread panicked")]
    ServerPanicked,
}
