//! Integration tests of tta-storage: round trips, recovery, retention, bad input, queries.

mod bad_input;
mod queries;
mod recovery;
mod retention;
mod roundtrip;

use tta_core::Span;
use tta_storage::StorageConfig;

/// A config with small blocks so tests produce many blocks.
pub(crate) fn small_blocks() -> StorageConfig {
    StorageConfig {
        block_size_bytes: 64 << 10,
        ..StorageConfig::default()
    }
}

/// Sorts spans the way the store returns them.
pub(crate) fn sorted(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| (s.start_unix_nanos, s.span_id));
    spans
}

/// Sum of the sizes of the files in a directory.
pub(crate) fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}
