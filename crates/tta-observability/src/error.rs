use thiserror::Error;

/// Why the runtime could not start or an operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ObservabilityError {
    /// The configuration is invalid or could not be loaded.
    #[error(transparent)]
    Config(#[from] tta_config::ConfigError),
    /// The metrics collector rejected its configuration.
    #[error("metrics: {0}")]
    Metrics(#[from] tta_metrics::MetricsError),
    /// The span pipeline could not start.
    #[error("export pipeline: {0}")]
    Export(#[from] tta_export::ExportError),
    /// The trace store could not be opened.
    #[error("trace store: {0}")]
    Storage(#[from] tta_storage::StorageError),
    /// The health checker or its HTTP server failed.
    #[error("health: {0}")]
    Health(#[from] tta_health::HealthError),
    /// The sampler rejected its configuration.
    #[error("sampling: {0}")]
    Sampling(#[from] tta_sampling::SamplingError),
    /// `init` was called twice.
    #[error("the global observability runtime is already initialised")]
    AlreadyInitialized,
    /// A thread could not be spawned.
    #[error("cannot spawn {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
