//! The [`Exporter`] trait and the in-process exporters: [`InMemoryExporter`] and
//! [`JsonLinesExporter`].

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tta_core::Span;

use crate::ExportError;

/// A destination for batches of kept spans.
///
/// Export workers call [`export`](Self::export) from several threads at once (so exporters are
/// `Send + Sync` and take `&self`), each call with one batch. The pipeline retries batches
/// whose error [`is_retryable`](ExportError::is_retryable), catches panics and stops waiting
/// for calls that pass the export deadline, so an exporter should make one attempt per call
/// and may block on I/O.
///
/// ```
/// use tta_core::Span;
/// use tta_export::{ExportError, Exporter};
///
/// /// Counts spans instead of sending them anywhere.
/// #[derive(Default)]
/// struct Counting(std::sync::atomic::AtomicUsize);
///
/// impl Exporter for Counting {
///     fn name(&self) -> &str {
///         "counting"
///     }
///     fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
///         self.0.fetch_add(batch.len(), std::sync::atomic::Ordering::Relaxed);
///         Ok(())
///     }
/// }
///
/// let exporter = Counting::default();
/// exporter.export(&[Span::default(), Span::default()])?;
/// exporter.flush()?;
/// assert_eq!(exporter.0.into_inner(), 2);
/// # Ok::<(), ExportError>(())
/// ```
pub trait Exporter: Send + Sync {
    /// A short name for stats and error messages (`store`, `otlp-http`, `json-lines`, ...).
    fn name(&self) -> &str {
        "exporter"
    }

    /// Sends one batch. One attempt: the pipeline does the retrying.
    fn export(&self, batch: &[Span]) -> Result<(), ExportError>;

    /// Makes everything exported so far durable or visible (flushes buffers).
    fn flush(&self) -> Result<(), ExportError> {
        Ok(())
    }

    /// Releases resources; called once when the pipeline shuts down, after the last export.
    fn shutdown(&self) -> Result<(), ExportError> {
        self.flush()
    }
}

impl<E: Exporter + ?Sized> Exporter for Arc<E> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        (**self).export(batch)
    }
    fn flush(&self) -> Result<(), ExportError> {
        (**self).flush()
    }
    fn shutdown(&self) -> Result<(), ExportError> {
        (**self).shutdown()
    }
}

impl<E: Exporter + ?Sized> Exporter for Box<E> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        (**self).export(batch)
    }
    fn flush(&self) -> Result<(), ExportError> {
        (**self).flush()
    }
    fn shutdown(&self) -> Result<(), ExportError> {
        (**self).shutdown()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind (a Vec or a writer); keep going.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps exported spans in memory, for tests and examples.
///
/// Clones share the same storage, so keep a clone and hand the other to the pipeline.
///
/// ```
/// use tta_core::Span;
/// use tta_export::{Exporter, InMemoryExporter};
/// let exporter = InMemoryExporter::new();
/// let handle = exporter.clone();
/// exporter.export(&[Span { name: "a".into(), ..Default::default() }])?;
/// assert_eq!(handle.spans()[0].name, "a");
/// assert_eq!((handle.len(), handle.batches()), (1, 1));
/// # Ok::<(), tta_export::ExportError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryExporter {
    inner: Arc<Mutex<InMemory>>,
}

#[derive(Debug, Default)]
struct InMemory {
    spans: Vec<Span>,
    batches: usize,
    flushes: usize,
    shut_down: bool,
}

impl InMemoryExporter {
    /// An empty exporter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Clones of every span exported so far, in export order.
    pub fn spans(&self) -> Vec<Span> {
        lock(&self.inner).spans.clone()
    }

    /// Number of spans exported so far.
    pub fn len(&self) -> usize {
        lock(&self.inner).spans.len()
    }

    /// Whether nothing was exported yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of batches exported so far.
    pub fn batches(&self) -> usize {
        lock(&self.inner).batches
    }

    /// Number of times [`Exporter::flush`] was called.
    pub fn flushes(&self) -> usize {
        lock(&self.inner).flushes
    }

    /// Whether [`Exporter::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        lock(&self.inner).shut_down
    }

    /// Forgets everything exported so far.
    pub fn clear(&self) {
        let mut g = lock(&self.inner);
        g.spans.clear();
        g.batches = 0;
    }
}

impl Exporter for InMemoryExporter {
    fn name(&self) -> &str {
        "in-memory"
    }
    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        let mut g = lock(&self.inner);
        g.spans.extend_from_slice(batch);
        g.batches += 1;
        Ok(())
    }
    fn flush(&self) -> Result<(), ExportError> {
        lock(&self.inner).flushes += 1;
        Ok(())
    }
    fn shutdown(&self) -> Result<(), ExportError> {
        lock(&self.inner).shut_down = true;
        Ok(())
    }
}

/// Writes each span as one line of JSON (the serde form of [`tta_core::Span`]) to a file,
/// stdout or any writer.
///
/// Each batch is written and flushed under one lock, so lines of concurrent batches never
/// interleave.
///
/// ```
/// use tta_core::Span;
/// use tta_export::{Exporter, JsonLinesExporter};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("spans.jsonl");
/// let exporter = JsonLinesExporter::to_file(&path)?;
/// exporter.export(&[Span { name: "GET /".into(), ..Default::default() }])?;
/// exporter.flush()?;
/// let text = std::fs::read_to_string(&path)?;
/// let back: Span = serde_json::from_str(text.lines().next().unwrap())?;
/// assert_eq!(back.name, "GET /");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct JsonLinesExporter {
    what: String,
    out: Mutex<BufWriter<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for JsonLinesExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLinesExporter")
            .field("to", &self.what)
            .finish_non_exhaustive()
    }
}

impl JsonLinesExporter {
    /// Appends to `path`, creating the file if needed.
    pub fn to_file(path: impl AsRef<Path>) -> Result<Self, ExportError> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| ExportError::Io {
                what: path.display().to_string(),
                source,
            })?;
        Ok(Self::to_writer(path.display().to_string(), file))
    }

    /// Writes to the process's standard output.
    pub fn stdout() -> Self {
        Self::to_writer("stdout", std::io::stdout())
    }

    /// Writes to any writer; `what` names it in error messages.
    pub fn to_writer(what: impl Into<String>, writer: impl Write + Send + 'static) -> Self {
        Self {
            what: what.into(),
            out: Mutex::new(BufWriter::new(Box::new(writer))),
        }
    }

    fn io(&self, source: std::io::Error) -> ExportError {
        ExportError::Io {
            what: self.what.clone(),
            source,
        }
    }
}

impl Exporter for JsonLinesExporter {
    fn name(&self) -> &str {
        "json-lines"
    }

    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        let mut out = lock(&self.out);
        for span in batch {
            serde_json::to_writer(&mut *out, span).map_err(|e| match e.io_error_kind() {
                Some(kind) => self.io(std::io::Error::new(kind, e)),
                None => ExportError::Encode {
                    exporter: "json-lines",
                    message: e.to_string(),
                },
            })?;
            out.write_all(b"\n").map_err(|e| self.io(e))?;
        }
        out.flush().map_err(|e| self.io(e))
    }

    fn flush(&self) -> Result<(), ExportError> {
        lock(&self.out).flush().map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tta_core::{SpanId, SpanStatus, TraceId};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Failing;
    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "closed",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "closed",
            ))
        }
    }

    fn span(i: u64) -> Span {
        Span {
            trace_id: TraceId::from_u128(u128::from(i) + 1),
            span_id: SpanId::from_u64(i + 1),
            name: format!("op-{i}").into(),
            status: if i.is_multiple_of(2) {
                SpanStatus::Ok
            } else {
                SpanStatus::Error("bad".into())
            },
            attributes: vec![("n".into(), (i as i64).into())],
            sampling_threshold: Some(i << 40),
            ..Default::default()
        }
    }

    #[test]
    fn json_lines_round_trip_one_span_per_line() {
        let buf = Shared::default();
        let exporter = JsonLinesExporter::to_writer("buffer", buf.clone());
        let spans: Vec<Span> = (0..5).map(span).collect();
        exporter.export(&spans[..2]).unwrap();
        exporter.export(&spans[2..]).unwrap();
        let text = String::from_utf8(lock(&buf.0).clone()).unwrap();
        let back: Vec<Span> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, spans);
    }

    #[test]
    fn json_lines_write_errors_name_the_destination() {
        let exporter = JsonLinesExporter::to_writer("broken pipe", Failing);
        let err = exporter.export(&[span(1)]).unwrap_err();
        assert!(
            err.to_string().starts_with("i/o error on broken pipe"),
            "{err}"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn json_lines_file_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        JsonLinesExporter::to_file(&path)
            .unwrap()
            .export(&[span(1)])
            .unwrap();
        JsonLinesExporter::to_file(&path)
            .unwrap()
            .export(&[span(2)])
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        let missing = dir.path().join("no/such/dir/x.jsonl");
        let err = JsonLinesExporter::to_file(&missing).unwrap_err();
        assert!(err.to_string().contains("no/such/dir"), "{err}");
    }

    #[test]
    fn in_memory_clones_share_and_record_lifecycle() {
        let a = InMemoryExporter::new();
        let b = a.clone();
        a.export(&[span(1), span(2)]).unwrap();
        a.flush().unwrap();
        assert_eq!((b.len(), b.batches(), b.flushes()), (2, 1, 1));
        assert!(!b.is_shut_down());
        let boxed: Box<dyn Exporter> = Box::new(a.clone());
        boxed.shutdown().unwrap();
        assert!(b.is_shut_down());
        b.clear();
        assert!(a.is_empty());
    }
}
