use serde::{Deserialize, Serialize};

use crate::StorageError;

/// Settings of a [`TraceStore`](crate::TraceStore): retention, compression and layout.
///
/// Field names and defaults follow the guide's `StorageConfig`; `tta-config` embeds this type
/// as the `storage` section of the observability config. Unknown keys are rejected when
/// deserializing.
///
/// ```
/// use tta_storage::StorageConfig;
/// let config = StorageConfig { trace_ttl_days: 3, max_disk_bytes: Some(10 << 30), ..Default::default() };
/// config.validate()?;
/// assert_eq!(config.compression_level, 6);
/// let bad = StorageConfig { compression_level: 30, ..Default::default() };
/// assert!(bad.validate().unwrap_err().to_string().contains("compression_level"));
/// # Ok::<(), tta_storage::StorageError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Days a trace segment is kept after its newest span started (default 7).
    pub trace_ttl_days: u32,
    /// Days a metrics segment is kept after its newest snapshot (default 30).
    pub metric_ttl_days: u32,
    /// Compress blocks with zstd (default `true`); `false` stores them raw.
    pub compression_enabled: bool,
    /// zstd level, 1 to 22 (default 6). The guide's useful range is 1 (fast) to 9 (smallest);
    /// levels above 9 cost much more CPU for little gain on span data.
    pub compression_level: i32,
    /// Optional cap on the bytes of segment files; retention deletes the oldest segments
    /// while the store is above it (default `None`: no cap).
    pub max_disk_bytes: Option<u64>,
    /// Width of the time window a segment file covers, in seconds (default 3600). Spans are
    /// placed by start time; retention deletes whole segments.
    pub segment_duration_seconds: u64,
    /// A segment is closed and a new one started once it reaches this size (default 64 MiB),
    /// so the byte cap can free space in steps of at most this much.
    pub max_segment_bytes: u64,
    /// Target uncompressed size of one block (default 256 KiB). Bigger blocks compress
    /// better; a trace lookup decompresses one whole block.
    pub block_size_bytes: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            trace_ttl_days: 7,
            metric_ttl_days: 30,
            compression_enabled: true,
            compression_level: 6,
            max_disk_bytes: None,
            segment_duration_seconds: 3600,
            max_segment_bytes: 64 << 20,
            block_size_bytes: 256 << 10,
        }
    }
}

/// Smallest accepted `block_size_bytes`.
pub(crate) const MIN_BLOCK_SIZE: u32 = 1024;
/// Largest accepted `block_size_bytes`.
pub(crate) const MAX_BLOCK_SIZE: u32 = 64 << 20;

impl StorageConfig {
    /// Checks every field; the error names the first field out of range.
    pub fn validate(&self) -> Result<(), StorageError> {
        let bad = |field: &'static str, message: String| {
            Err(StorageError::InvalidConfig { field, message })
        };
        if self.trace_ttl_days == 0 {
            return bad("trace_ttl_days", "must be at least 1 day".into());
        }
        if self.metric_ttl_days == 0 {
            return bad("metric_ttl_days", "must be at least 1 day".into());
        }
        if !(1..=22).contains(&self.compression_level) {
            return bad(
                "compression_level",
                format!(
                    "must be a zstd level between 1 and 22 (1-9 is the useful range), got {}",
                    self.compression_level
                ),
            );
        }
        if self.max_disk_bytes == Some(0) {
            return bad("max_disk_bytes", "must be greater than 0 when set".into());
        }
        if !(1..=366 * 86_400).contains(&self.segment_duration_seconds) {
            return bad(
                "segment_duration_seconds",
                format!(
                    "must be between 1 second and 366 days, got {}",
                    self.segment_duration_seconds
                ),
            );
        }
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&self.block_size_bytes) {
            return bad(
                "block_size_bytes",
                format!(
                    "must be between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE}, got {}",
                    self.block_size_bytes
                ),
            );
        }
        if self.max_segment_bytes < u64::from(self.block_size_bytes) {
            return bad(
                "max_segment_bytes",
                format!(
                    "must be at least block_size_bytes ({}), got {}",
                    self.block_size_bytes, self.max_segment_bytes
                ),
            );
        }
        Ok(())
    }

    /// The trace TTL in nanoseconds.
    pub(crate) fn trace_ttl_nanos(&self) -> u64 {
        u64::from(self.trace_ttl_days).saturating_mul(86_400_000_000_000)
    }

    /// The metrics TTL in nanoseconds.
    pub(crate) fn metric_ttl_nanos(&self) -> u64 {
        u64::from(self.metric_ttl_days).saturating_mul(86_400_000_000_000)
    }

    /// The segment window that holds a timestamp, as its start in Unix seconds.
    pub(crate) fn window_of(&self, unix_nanos: u64) -> u64 {
        let secs = unix_nanos / 1_000_000_000;
        secs - secs % self.segment_duration_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_guide_and_validate() {
        let c = StorageConfig::default();
        assert_eq!((c.trace_ttl_days, c.metric_ttl_days), (7, 30));
        assert!(c.compression_enabled);
        assert_eq!(c.compression_level, 6);
        c.validate().unwrap();
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(&str, StorageConfig)> = vec![
            (
                "trace_ttl_days",
                StorageConfig {
                    trace_ttl_days: 0,
                    ..Default::default()
                },
            ),
            (
                "metric_ttl_days",
                StorageConfig {
                    metric_ttl_days: 0,
                    ..Default::default()
                },
            ),
            (
                "compression_level",
                StorageConfig {
                    compression_level: 0,
                    ..Default::default()
                },
            ),
            (
                "compression_level",
                StorageConfig {
                    compression_level: 23,
                    ..Default::default()
                },
            ),
            (
                "max_disk_bytes",
                StorageConfig {
                    max_disk_bytes: Some(0),
                    ..Default::default()
                },
            ),
            (
                "segment_duration_seconds",
                StorageConfig {
                    segment_duration_seconds: 0,
                    ..Default::default()
                },
            ),
            (
                "block_size_bytes",
                StorageConfig {
                    block_size_bytes: 10,
                    ..Default::default()
                },
            ),
            (
                "max_segment_bytes",
                StorageConfig {
                    max_segment_bytes: 10,
                    ..Default::default()
                },
            ),
        ];
        for (field, config) in cases {
            match config.validate() {
                Err(StorageError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected InvalidConfig, got {other:?}"),
            }
        }
        for level in [1, 9, 22] {
            StorageConfig {
                compression_level: level,
                ..Default::default()
            }
            .validate()
            .unwrap();
        }
    }

    #[test]
    fn serde_defaults_and_rejects_unknown_keys() {
        let c: StorageConfig = serde_json::from_str(r#"{"trace_ttl_days": 3}"#).unwrap();
        assert_eq!(c.trace_ttl_days, 3);
        assert_eq!(c.metric_ttl_days, 30);
        let err = serde_json::from_str::<StorageConfig>(r#"{"ttl": 3}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let back: StorageConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn windows_align_to_the_duration() {
        let c = StorageConfig {
            segment_duration_seconds: 60,
            ..Default::default()
        };
        assert_eq!(c.window_of(125_000_000_000), 120);
        assert_eq!(c.window_of(59_999_999_999), 0);
    }
}
