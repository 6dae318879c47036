use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong opening, writing or reading a store.
///
/// Messages name what failed and where (a path, a file offset, a configuration field).
/// Corruption found while reading is *not* an error: the damaged block is skipped and listed
/// in [`StoreStats::corrupt_blocks`](crate::StoreStats::corrupt_blocks).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A configuration value is out of range.
    #[error("invalid storage config: {field}: {message}")]
    InvalidConfig {
        /// The offending field, as spelled in [`StorageConfig`](crate::StorageConfig).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// An operating-system call failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done (`create directory`, `write block to`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The store path exists but is not a directory.
    #[error("store path {} exists and is not a directory", path.display())]
    NotADirectory {
        /// The path given to `open`.
        path: PathBuf,
    },
    /// A read-only open found no store at the path.
    #[error("no store at {}: the directory does not exist or was never opened for writing", path.display())]
    NoStore {
        /// The path given to `open_read_only`.
        path: PathBuf,
    },
    /// The directory holds files of something else, so it is not used as a store.
    #[error(
        "{} is not empty and is not a tta-storage directory (found foreign file {}); \
         choose an empty or new directory",
        path.display(),
        found.display()
    )]
    ForeignDirectory {
        /// The directory.
        path: PathBuf,
        /// One of the files that do not belong to a store.
        found: PathBuf,
    },
    /// The store was written by a newer, incompatible format version.
    #[error("{} uses storage format version {found}, this build reads version {supported}", path.display())]
    UnsupportedVersion {
        /// The marker or segment file.
        path: PathBuf,
        /// Version found on disk.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },
    /// Another writer holds the store's lock file.
    #[error(
        "store {} is locked by another writer (pid {pid}, lock file {}); \
         open it read-only, or remove the lock file if that process is gone",
        dir.display(),
        lock.display()
    )]
    Locked {
        /// The store directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The process id written in the lock file.
        pid: u32,
    },
    /// A write was attempted on a store opened with `open_read_only`.
    #[error("store {} is open read-only: cannot {op}", dir.display())]
    ReadOnly {
        /// The store directory.
        dir: PathBuf,
        /// The refused operation.
        op: &'static str,
    },
    /// A single span or snapshot encodes to more than a block can hold (4 GiB).
    #[error("a block of {bytes} bytes exceeds the format's 4 GiB block limit")]
    TooLarge {
        /// Encoded size.
        bytes: usize,
    },
    /// Encoding a metrics snapshot failed.
    #[error("cannot encode metrics snapshot: {0}")]
    Encode(#[source] serde_json::Error),
}

impl StorageError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
