//! [`StoreExporter`]: export into the embedded [`TraceStore`](tta_storage::TraceStore).

use std::sync::Arc;

use tta_core::Span;
use tta_storage::{StorageError, TraceStore};

use crate::{ExportError, Exporter};

/// Appends kept spans to the embedded trace store (the zero-setup default destination).
///
/// The store buffers appended spans into compressed blocks; [`Exporter::flush`] (run by
/// [`SpanPipeline::flush`](crate::SpanPipeline::flush) and at shutdown) makes them durable.
/// The store is shared (`Arc`), so the same handle can serve queries.
///
/// ```
/// use std::sync::Arc;
/// use tta_core::{Span, TraceId};
/// use tta_export::{Exporter, StoreExporter};
/// use tta_storage::{StorageConfig, TraceStore};
///
/// let dir = tempfile::tempdir()?;
/// let store = Arc::new(TraceStore::open(dir.path(), StorageConfig::default())?);
/// let exporter = StoreExporter::new(Arc::clone(&store));
/// let id = TraceId::random();
/// exporter.export(&[Span { trace_id: id, name: "GET /".into(), ..Default::default() }])?;
/// exporter.flush()?;
/// assert_eq!(store.get_trace(&id)?.map(|t| t.len()), Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct StoreExporter {
    store: Arc<TraceStore>,
}

impl StoreExporter {
    /// Exports into `store`.
    pub fn new(store: Arc<TraceStore>) -> Self {
        Self { store }
    }

    /// The store spans go to.
    pub fn store(&self) -> &Arc<TraceStore> {
        &self.store
    }
}

fn store_error(e: StorageError) -> ExportError {
    // An interrupted or timed-out write may succeed when tried again; a read-only, locked
    // or misconfigured store will not.
    let retryable = matches!(&e, StorageError::Io { source, .. }
        if matches!(source.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock));
    ExportError::Store {
        message: e.to_string(),
        retryable,
    }
}

impl Exporter for StoreExporter {
    fn name(&self) -> &str {
        "store"
    }

    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        self.store.append(batch).map_err(store_error)
    }

    fn flush(&self) -> Result<(), ExportError> {
        self.store.flush().map_err(store_error)
    }
}
