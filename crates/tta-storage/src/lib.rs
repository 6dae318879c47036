//! Embedded trace and metric store: append-only segment files of checksummed, zstd-compressed
//! blocks, with retention by age and size, crash recovery and queries.
//!
//! This is the zero-setup default destination for kept traces. Use it directly when you
//! want only the store (a collector, a CLI, a test harness); services that want sampling,
//! export and storage wired together use the `tta-observability` facade, which re-exports
//! this crate as `tta_observability::storage`.
//!
//! ```
//! use tta_core::MetricsSnapshot;
//! use tta_storage::corpus::Corpus;
//! use tta_storage::{StorageConfig, TraceQuery, TraceStore};
//!
//! let dir = tempfile::tempdir()?;
//! let store = TraceStore::open(dir.path(), StorageConfig::default())?;
//! let spans = Corpus::new(1).spans(2_000);
//! store.append(&spans)?;
//! store.flush()?;
//!
//! let trace = store.get_trace(&spans[0].trace_id)?.expect("stored");
//! assert_eq!(trace[0], spans[0]);
//! let errors = store.query(TraceQuery::default().errors_only().limit(10))?;
//! assert!(errors.iter().all(|s| s.is_error()));
//!
//! store.append_metrics(&MetricsSnapshot { timestamp_unix_nanos: 5, series: vec![] })?;
//! assert_eq!(store.query_metrics(0..10)?.len(), 1);
//!
//! let stats = store.stats();
//! assert_eq!(stats.spans, spans.len() as u64);
//! assert!(stats.compression_ratio > 1.0);
//! // Seven days after the newest span, retention deletes every span segment.
//! let now = stats.newest_unix_nanos.unwrap() + 7 * 86_400 * 1_000_000_000;
//! let report = store.enforce_retention(now)?;
//! assert!(report.bytes_freed() > 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The on-disk format is specified in `docs/storage-format.md`.
//!
//! # Feature flags
//!
//! This crate has no optional features; the synthetic trace generator ([`corpus`]) needs no
//! extra dependency and is always built.

mod codec;
mod config;
pub mod corpus;
mod error;
mod estimate;
mod format;
mod lock;
mod query;
mod segment;
mod store;

pub use config::StorageConfig;
pub use error::{Result, StorageError};
pub use estimate::{EstimateParams, EstimateRow, estimate, estimate_table};
pub use format::SegmentKind;
pub use query::TraceQuery;
pub use store::{
    BlockInfo, Corruption, DeleteReason, DeletedSegment, OpenReport, RetentionReport, SegmentInfo,
    StoreStats, TornTail, TraceStore,
};

/// The uncompressed payload of a span block holding `spans`: the compact columnar encoding
/// described in `docs/storage-format.md` (string table, trace groups, delta timestamps), before
/// zstd. Exposed for format tooling and for benchmarks that compare our write path with raw
/// zstd compression of the same bytes.
///
/// ```
/// let spans = tta_storage::corpus::Corpus::new(1).spans(100);
/// let payload = tta_storage::encode_span_payload(&spans);
/// let json = serde_json::to_vec(&spans)?;
/// assert!(payload.len() * 4 < json.len());
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn encode_span_payload(spans: &[tta_core::Span]) -> Vec<u8> {
    codec::encode_payload(spans)
}

/// The storage format version this build writes and reads (see `docs/storage-format.md`).
pub const FORMAT_VERSION: u16 = format::FORMAT_VERSION;
