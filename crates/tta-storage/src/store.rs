use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tta_core::{MetricsSnapshot, Span, TraceId};

use crate::codec::{
    EncodeBuffers, FastMap, bloom_build, bloom_may_contain, decode_spans, encode_span_refs_into,
};
use crate::format::{
    BLOCK_HEADER_LEN, BlockHeader, CODEC_RAW, CODEC_ZSTD, FORMAT_VERSION, SegmentKind, checksum,
};
use crate::lock::{DirLock, LOCK_FILE};
use crate::segment::{self, Finding, LoadError, Segment, parse_file_name, remove, sync_dir};
use crate::{Result, StorageConfig, StorageError, TraceQuery};

/// Name of the marker file that makes a directory a store.
pub(crate) const MARKER_FILE: &str = "TTA-STORE";

/// A damaged region found in a segment file: skipped, never fatal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The segment file.
    pub path: PathBuf,
    /// Byte offset of the damaged block (or region) in the file.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.path.display(),
            self.offset,
            self.reason
        )
    }
}

/// Bytes after the last intact block of a segment (a write cut short by a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub path: PathBuf,
    /// Where the intact data ends.
    pub offset: u64,
    /// How many bytes followed.
    pub bytes: u64,
    /// Whether they were cut off (writers do; read-only handles leave files alone).
    pub truncated: bool,
}

/// What opening a store found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Segment files in use.
    pub segments: usize,
    /// Blocks indexed across them.
    pub blocks: usize,
    /// Segments that were not sealed (the writer stopped without closing) and were recovered.
    pub recovered_segments: usize,
    /// Torn tails found (and cut off by a writer).
    pub torn_tails: Vec<TornTail>,
    /// Damaged blocks skipped in recovered segments.
    pub corrupt_blocks: Vec<Corruption>,
    /// Segment files left untouched and unused because their header is not readable.
    pub unreadable_segments: Vec<Corruption>,
    /// Segment files removed because they held no block (torn at creation, or empty).
    pub removed_empty: Vec<PathBuf>,
    /// Files in the directory that are not part of the store; left alone.
    pub ignored_files: Vec<PathBuf>,
}

/// Why [`TraceStore::enforce_retention`] deleted a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteReason {
    /// Its newest entry is older than the TTL of its kind.
    Expired,
    /// The store was over `max_disk_bytes`; oldest segments go first.
    OverCap,
}

/// One segment file deleted by retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedSegment {
    /// The deleted file.
    pub path: PathBuf,
    /// Spans or metrics.
    pub kind: SegmentKind,
    /// Why.
    pub reason: DeleteReason,
    /// Its size on disk.
    pub bytes: u64,
    /// Spans or snapshots it held.
    pub items: u64,
    /// Its newest entry (Unix nanoseconds).
    pub newest_unix_nanos: Option<u64>,
}

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Deleted segments, in deletion order.
    pub deleted: Vec<DeletedSegment>,
    /// Bytes of segment files before the pass.
    pub bytes_before: u64,
    /// Bytes of segment files after the pass.
    pub bytes_after: u64,
}

impl RetentionReport {
    /// Bytes freed.
    pub fn bytes_freed(&self) -> u64 {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

/// Layout of one block, as listed by [`TraceStore::segments`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    /// Byte offset of the block header in the segment file.
    pub offset: u64,
    /// Bytes of header plus body.
    pub len: u64,
    /// Spans or snapshots in the block.
    pub items: u32,
    /// Payload bytes before compression.
    pub uncompressed_len: u32,
    /// Whether the body is zstd-compressed (else raw).
    pub compressed: bool,
    /// Earliest span start or snapshot time (Unix nanoseconds).
    pub min_unix_nanos: u64,
    /// Latest span start or snapshot time (Unix nanoseconds).
    pub max_unix_nanos: u64,
}

/// Layout of one segment file, as listed by [`TraceStore::segments`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The file.
    pub path: PathBuf,
    /// Spans or metrics.
    pub kind: SegmentKind,
    /// Start of its time window (Unix seconds).
    pub window_start_secs: u64,
    /// Whether its footer is written (false only for the segment being appended to).
    pub sealed: bool,
    /// Bytes on disk.
    pub bytes: u64,
    /// Its blocks in file order.
    pub blocks: Vec<BlockInfo>,
}

/// Counters of a store, for `tta traces stats`, health checks and estimates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreStats {
    /// Segment files (both kinds).
    pub segments: usize,
    /// Segment files holding spans.
    pub span_segments: usize,
    /// Segment files holding metrics snapshots.
    pub metric_segments: usize,
    /// Blocks (both kinds).
    pub blocks: usize,
    /// Spans written to blocks.
    pub spans: u64,
    /// Traces: distinct trace ids per block, summed (a trace split over blocks counts once
    /// per block, so this is an upper bound).
    pub traces: u64,
    /// Metrics snapshots written to blocks.
    pub metric_snapshots: u64,
    /// Spans appended but not yet in a block (visible to this handle's reads).
    pub pending_spans: usize,
    /// Snapshots appended but not yet in a block.
    pub pending_snapshots: usize,
    /// Bytes of all segment files.
    pub bytes_on_disk: u64,
    /// Bytes of span segment files (headers, filters and footers included).
    pub span_bytes_on_disk: u64,
    /// Span payload bytes before compression (the compact encoding, not JSON).
    pub uncompressed_bytes: u64,
    /// Span block bytes as stored (filters included).
    pub compressed_bytes: u64,
    /// `uncompressed_bytes / compressed_bytes` (0 when empty).
    pub compression_ratio: f64,
    /// `span_bytes_on_disk / spans` (0 when empty).
    pub bytes_per_span: f64,
    /// `uncompressed_bytes / spans` (0 when empty).
    pub uncompressed_bytes_per_span: f64,
    /// Earliest span start stored (Unix nanoseconds).
    pub oldest_unix_nanos: Option<u64>,
    /// Latest span start stored (Unix nanoseconds).
    pub newest_unix_nanos: Option<u64>,
    /// Damaged blocks found so far (at open and by reads); they are skipped.
    pub corrupt_blocks: Vec<Corruption>,
}

struct PendingSnapshot {
    snapshot: MetricsSnapshot,
    json: Vec<u8>,
}

struct Active {
    seq: u64,
    file: File,
}

struct Inner {
    dir: PathBuf,
    config: StorageConfig,
    segments: Vec<Segment>,
    next_seq: u64,
    active_spans: Option<Active>,
    active_metrics: Option<Active>,
    pending_spans: Vec<Span>,
    /// `span_size_estimate` of each pending span (parallel to `pending_spans`).
    pending_span_sizes: Vec<usize>,
    pending_span_bytes: usize,
    /// Scratch for the size estimates of the spans being appended.
    incoming_sizes: Vec<usize>,
    /// Column and payload buffers reused by every span block.
    encode_bufs: EncodeBuffers,
    /// Header, filter and stored payload of the block being written, reused.
    block_buf: Vec<u8>,
    pending_metrics: Vec<PendingSnapshot>,
    pending_metric_bytes: usize,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    corrupt: Vec<Corruption>,
    corrupt_seen: HashSet<(PathBuf, u64)>,
    unsynced: bool,
    dir_dirty: bool,
    closed: bool,
    /// Encoded bytes per estimated byte, learned from the last span block, so blocks come
    /// out close to `block_size_bytes` of encoded payload.
    span_size_ratio: f64,
}

/// The embedded trace and metric store: a directory of append-only segment files.
///
/// One writer per directory ([`open`](Self::open) takes a lock file), any number of readers
/// ([`open_read_only`](Self::open_read_only)). All methods take `&self`; a handle is
/// `Send + Sync` and can be shared across export workers behind an `Arc`.
///
/// ```
/// use tta_core::{Span, SpanId, TraceId};
/// use tta_storage::{StorageConfig, TraceQuery, TraceStore};
///
/// let dir = tempfile::tempdir()?;
/// let store = TraceStore::open(dir.path(), StorageConfig::default())?;
/// let trace = TraceId::random();
/// let span = Span {
///     trace_id: trace,
///     span_id: SpanId::random(),
///     name: "GET /cart".into(),
///     service: "frontend".into(),
///     start_unix_nanos: 1_700_000_000_000_000_000,
///     end_unix_nanos: 1_700_000_000_020_000_000,
///     ..Default::default()
/// };
/// store.append(&[span.clone()])?;
/// store.flush()?; // durable from here on
/// assert_eq!(store.get_trace(&trace)?, Some(vec![span]));
/// assert_eq!(store.query(TraceQuery::default().service("frontend"))?.len(), 1);
/// store.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TraceStore {
    dir: PathBuf,
    read_only: bool,
    report: OpenReport,
    inner: Mutex<Inner>,
    // Declared last so it is released after `inner` is dropped.
    _lock: Option<DirLock>,
}

impl fmt::Debug for TraceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceStore")
            .field("dir", &self.dir)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

fn span_size_estimate(s: &Span) -> usize {
    let attrs: usize = s
        .attributes
        .iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    tta_core::AttributeValue::Str(v) => v.len(),
                    _ => 8,
                }
        })
        .sum();
    48 + s.name.len() + s.service.len() + attrs
}

impl TraceStore {
    /// Opens the store in `dir` for writing, creating the directory if needed.
    ///
    /// Recovery: segments the previous writer did not close are scanned block by block; a
    /// torn tail is cut off, damaged blocks are skipped and listed in
    /// [`open_report`](Self::open_report), and the segment is sealed. Nothing intact is lost.
    ///
    /// Errors: invalid config, the path is a file, the directory holds foreign files, another
    /// writer holds the lock, or the file system refuses.
    pub fn open(dir: impl AsRef<Path>, config: StorageConfig) -> Result<Self> {
        Self::open_impl(dir.as_ref(), config, false)
    }

    /// Opens an existing store for reading only: no lock is taken, no file is changed, and
    /// any number of readers may run beside the writer. The handle sees the segments that
    /// existed when it was opened (open again to see newer data); a torn tail left by a
    /// writer in progress is ignored.
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_impl(dir.as_ref(), StorageConfig::default(), true)
    }

    fn open_impl(dir: &Path, config: StorageConfig, read_only: bool) -> Result<Self> {
        config.validate()?;
        match fs::metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(StorageError::NotADirectory {
                    path: dir.to_path_buf(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && read_only => {
                return Err(StorageError::NoStore {
                    path: dir.to_path_buf(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(dir)
                    .map_err(|e| StorageError::io("create directory", dir, e))?;
            }
            Err(e) => return Err(StorageError::io("inspect", dir, e)),
        }
        check_marker(dir, read_only)?;
        let lock = if read_only {
            None
        } else {
            Some(DirLock::acquire(dir)?)
        };

        let mut report = OpenReport::default();
        let mut corrupt = Vec::new();
        let mut segments = Vec::new();
        let mut max_seq = 0u64;
        let mut dir_dirty = false;
        let mut entries: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|e| StorageError::io("list", dir, e))?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .map_err(|e| StorageError::io("list", dir, e))?;
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name == MARKER_FILE || name == LOCK_FILE {
                continue;
            }
            let Some((kind, seq)) = parse_file_name(name).filter(|_| path.is_file()) else {
                report.ignored_files.push(path);
                continue;
            };
            max_seq = max_seq.max(seq);
            match Segment::load(&path, kind, seq) {
                Ok((mut seg, findings)) => {
                    let recovered = !seg.sealed;
                    for f in findings {
                        match f {
                            Finding::Corrupt { offset, reason } => {
                                let c = Corruption {
                                    path: path.clone(),
                                    offset,
                                    reason,
                                };
                                report.corrupt_blocks.push(c.clone());
                                corrupt.push(c);
                            }
                            Finding::Tail { offset, bytes } => report.torn_tails.push(TornTail {
                                path: path.clone(),
                                offset,
                                bytes,
                                truncated: !read_only,
                            }),
                        }
                    }
                    if recovered && !read_only {
                        report.recovered_segments += 1;
                        if seg.blocks.is_empty() {
                            remove(&path)?;
                            report.removed_empty.push(path);
                            dir_dirty = true;
                            continue;
                        }
                        let mut f = seg.open_writer()?;
                        if seg.file_len > seg.end {
                            seg.truncate_tail(&f)?;
                        }
                        seg.seal(&mut f)?;
                    }
                    segments.push(seg);
                }
                Err(LoadError::TooShort(len)) => {
                    if read_only {
                        report.unreadable_segments.push(Corruption {
                            path,
                            offset: len,
                            reason: "shorter than a segment header (being created?)".into(),
                        });
                    } else {
                        remove(&path)?;
                        report.removed_empty.push(path);
                        dir_dirty = true;
                    }
                }
                Err(LoadError::Header(p)) => report.unreadable_segments.push(Corruption {
                    path,
                    offset: 0,
                    reason: match p {
                        crate::format::HeaderProblem::Magic => {
                            "not a tta-storage segment (bad magic)".into()
                        }
                        crate::format::HeaderProblem::Checksum => {
                            "segment header checksum mismatch".into()
                        }
                        crate::format::HeaderProblem::Version(v) => format!(
                            "segment format version {v}, this build reads version {FORMAT_VERSION}"
                        ),
                        crate::format::HeaderProblem::Kind => "unknown segment kind".into(),
                    },
                }),
                Err(LoadError::KindMismatch) => report.unreadable_segments.push(Corruption {
                    path,
                    offset: 0,
                    reason: "segment kind differs from its file name".into(),
                }),
                Err(LoadError::Io(e)) => return Err(StorageError::io("read segment", path, e)),
            }
        }
        if dir_dirty || report.recovered_segments > 0 {
            sync_dir(dir)?;
        }
        segments.sort_by_key(|s| s.seq);
        report.segments = segments.len();
        report.blocks = segments.iter().map(|s| s.blocks.len()).sum();
        let corrupt_seen = corrupt.iter().map(|c| (c.path.clone(), c.offset)).collect();
        // A writer compresses for its whole life: build the zstd context once, up front.
        let compressor = if read_only || !config.compression_enabled {
            None
        } else {
            Some(
                zstd::bulk::Compressor::new(config.compression_level)
                    .map_err(|e| StorageError::io("create zstd compressor for", dir, e))?,
            )
        };
        let inner = Inner {
            dir: dir.to_path_buf(),
            config,
            segments,
            next_seq: max_seq + 1,
            active_spans: None,
            active_metrics: None,
            pending_spans: Vec::new(),
            pending_span_sizes: Vec::new(),
            pending_span_bytes: 0,
            incoming_sizes: Vec::new(),
            encode_bufs: EncodeBuffers::default(),
            block_buf: Vec::new(),
            pending_metrics: Vec::new(),
            pending_metric_bytes: 0,
            compressor,
            corrupt,
            corrupt_seen,
            unsynced: false,
            dir_dirty: false,
            closed: read_only,
            span_size_ratio: 0.25,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            read_only,
            report,
            inner: Mutex::new(inner),
            _lock: lock,
        })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this handle was opened with [`open_read_only`](Self::open_read_only).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// What opening found and repaired.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn writable(&self, op: &'static str) -> Result<()> {
        if self.read_only {
            return Err(StorageError::ReadOnly {
                dir: self.dir.clone(),
                op,
            });
        }
        Ok(())
    }

    /// Buffers spans; full blocks are written as they fill (not yet synced). Buffered spans
    /// are visible to this handle's reads at once; call [`flush`](Self::flush) to make them
    /// durable.
    pub fn append(&self, spans: &[Span]) -> Result<()> {
        self.writable("append spans")?;
        let mut inner = self.inner();
        // Estimate until a block's worth is known to be there; the rest is estimated when
        // its block is cut.
        let mut sizes = std::mem::take(&mut inner.incoming_sizes);
        sizes.clear();
        let target = inner.span_target();
        let mut incoming = 0;
        for s in spans {
            if inner.pending_span_bytes + incoming >= target {
                break;
            }
            let sz = span_size_estimate(s);
            incoming += sz;
            sizes.push(sz);
        }
        let result = if inner.pending_span_bytes + incoming >= target {
            // Full blocks are encoded straight from the caller's spans; only the remainder
            // that stays buffered is cloned.
            inner.write_span_blocks(false, spans, &sizes)
        } else {
            inner.pending_span_bytes += incoming;
            inner.pending_spans.extend_from_slice(spans);
            inner.pending_span_sizes.extend_from_slice(&sizes);
            Ok(())
        };
        inner.incoming_sizes = sizes;
        result
    }

    /// Buffers one metrics snapshot (stored as JSON inside compressed metrics blocks).
    pub fn append_metrics(&self, snapshot: &MetricsSnapshot) -> Result<()> {
        self.writable("append metrics")?;
        let json = serde_json::to_vec(snapshot).map_err(StorageError::Encode)?;
        let mut inner = self.inner();
        inner.pending_metric_bytes += json.len() + 1;
        inner.pending_metrics.push(PendingSnapshot {
            snapshot: snapshot.clone(),
            json,
        });
        if inner.pending_metric_bytes >= inner.config.block_size_bytes as usize {
            inner.write_metric_blocks(false)?;
        }
        Ok(())
    }

    /// Writes every buffered span and snapshot as blocks, then syncs the data (`fdatasync`)
    /// and, when files were created, sealed or removed, the directory. When `flush` returns,
    /// everything appended before it survives a crash or power loss.
    ///
    /// Each flush ends the current block, so flushing after every few spans makes small
    /// blocks that compress worse: flush at durability points (the export interval), not per
    /// span.
    pub fn flush(&self) -> Result<()> {
        self.writable("flush")?;
        self.inner().flush()
    }

    /// Flushes, seals the open segments (writes their footers) and releases the lock.
    /// Dropping a writer does the same but ignores errors.
    pub fn close(self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let mut inner = self.inner();
        let r = inner.close();
        inner.closed = true;
        r
    }

    /// Every span of a trace, sorted by start time (ties by span id); `None` if the store
    /// holds no span of it. Touches only blocks whose trace-id filter matches.
    pub fn get_trace(&self, trace_id: &TraceId) -> Result<Option<Vec<Span>>> {
        let mut inner = self.inner();
        let mut out = Vec::new();
        let id = *trace_id;
        inner.scan_spans(
            |b| bloom_may_contain(&b.filter, &id),
            &|t| *t == id,
            &mut |_| true,
            &mut out,
        )?;
        out.extend(
            inner
                .pending_spans
                .iter()
                .filter(|s| s.trace_id == id)
                .cloned(),
        );
        if out.is_empty() {
            return Ok(None);
        }
        sort_spans(&mut out);
        Ok(Some(out))
    }

    /// Spans matching a query, sorted by start time (ties by span id), at most `limit`.
    /// Blocks outside the time range are not read.
    pub fn query(&self, query: TraceQuery) -> Result<Vec<Span>> {
        let mut inner = self.inner();
        let mut out = Vec::new();
        inner.scan_spans(
            |b| query.overlaps(b.header.min_time, b.header.max_time),
            &|_| true,
            &mut |h| query.matches_head(h),
            &mut out,
        )?;
        out.extend(
            inner
                .pending_spans
                .iter()
                .filter(|s| query.matches(s))
                .cloned(),
        );
        sort_spans(&mut out);
        if let Some(limit) = query.limit {
            out.truncate(limit);
        }
        Ok(out)
    }

    /// Metrics snapshots whose timestamp lies in `range` (Unix nanoseconds, end exclusive),
    /// sorted by timestamp.
    pub fn query_metrics(&self, range: Range<u64>) -> Result<Vec<MetricsSnapshot>> {
        let mut inner = self.inner();
        let mut out = Vec::new();
        let Inner {
            segments,
            corrupt,
            corrupt_seen,
            ..
        } = &mut *inner;
        for seg in segments
            .iter_mut()
            .filter(|s| s.kind == SegmentKind::Metrics)
        {
            for i in 0..seg.blocks.len() {
                let h = seg.blocks[i].header;
                if h.max_time < range.start || h.min_time >= range.end {
                    continue;
                }
                let Some(payload) = read_block(seg, i, corrupt, corrupt_seen)? else {
                    continue;
                };
                match serde_json::from_slice::<Vec<MetricsSnapshot>>(&payload) {
                    Ok(snaps) => out.extend(
                        snaps
                            .into_iter()
                            .filter(|s| range.contains(&s.timestamp_unix_nanos)),
                    ),
                    Err(e) => record(
                        corrupt,
                        corrupt_seen,
                        Corruption {
                            path: seg.path.clone(),
                            offset: seg.blocks[i].offset,
                            reason: format!("metrics payload does not decode: {e}"),
                        },
                    ),
                }
            }
        }
        out.extend(
            inner
                .pending_metrics
                .iter()
                .filter(|p| range.contains(&p.snapshot.timestamp_unix_nanos))
                .map(|p| p.snapshot.clone()),
        );
        out.sort_by_key(|s| s.timestamp_unix_nanos);
        Ok(out)
    }

    /// Deletes whole segments whose newest entry is at least `trace_ttl_days` (spans) or
    /// `metric_ttl_days` (metrics) older than `now_unix_nanos`, then, while the segment files
    /// exceed `max_disk_bytes`, the segments with the oldest newest entry first (the open
    /// segment included). Files are removed and the directory synced before returning.
    ///
    /// Buffered (unflushed) data is not counted and not deleted.
    pub fn enforce_retention(&self, now_unix_nanos: u64) -> Result<RetentionReport> {
        self.writable("enforce retention")?;
        self.inner().enforce_retention(now_unix_nanos)
    }

    /// Counters: segments, spans, traces, bytes, compression ratio, time range, corruption.
    pub fn stats(&self) -> StoreStats {
        let inner = self.inner();
        let mut st = StoreStats {
            pending_spans: inner.pending_spans.len(),
            pending_snapshots: inner.pending_metrics.len(),
            corrupt_blocks: inner.corrupt.clone(),
            ..Default::default()
        };
        for seg in &inner.segments {
            st.segments += 1;
            st.blocks += seg.blocks.len();
            st.bytes_on_disk += seg.file_len;
            match seg.kind {
                SegmentKind::Spans => {
                    st.span_segments += 1;
                    st.span_bytes_on_disk += seg.file_len;
                    for b in &seg.blocks {
                        st.spans += u64::from(b.header.count);
                        st.traces += u64::from(b.header.traces);
                        st.uncompressed_bytes += u64::from(b.header.raw_len);
                        st.compressed_bytes += u64::from(b.header.body_len);
                    }
                    if let Some(o) = seg.oldest() {
                        st.oldest_unix_nanos = Some(st.oldest_unix_nanos.map_or(o, |x| x.min(o)));
                    }
                    if let Some(n) = seg.newest() {
                        st.newest_unix_nanos = Some(st.newest_unix_nanos.map_or(n, |x| x.max(n)));
                    }
                }
                SegmentKind::Metrics => {
                    st.metric_segments += 1;
                    st.metric_snapshots += seg
                        .blocks
                        .iter()
                        .map(|b| u64::from(b.header.count))
                        .sum::<u64>();
                }
            }
        }
        if st.compressed_bytes > 0 {
            st.compression_ratio = st.uncompressed_bytes as f64 / st.compressed_bytes as f64;
        }
        if st.spans > 0 {
            st.bytes_per_span = st.span_bytes_on_disk as f64 / st.spans as f64;
            st.uncompressed_bytes_per_span = st.uncompressed_bytes as f64 / st.spans as f64;
        }
        st
    }

    /// Every segment file with its blocks, oldest first: for `tta traces stats`, debugging and
    /// tests.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.inner()
            .segments
            .iter()
            .map(|s| SegmentInfo {
                path: s.path.clone(),
                kind: s.kind,
                window_start_secs: s.window_start_secs,
                sealed: s.sealed,
                bytes: s.file_len,
                blocks: s
                    .blocks
                    .iter()
                    .map(|b| BlockInfo {
                        offset: b.offset,
                        len: b.header.total_len(),
                        items: b.header.count,
                        uncompressed_len: b.header.raw_len,
                        compressed: b.header.codec == CODEC_ZSTD,
                        min_unix_nanos: b.header.min_time,
                        max_unix_nanos: b.header.max_time,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Reads and decodes every block, returning the damaged ones (also recorded in
    /// [`stats`](Self::stats)). Use it for a full check; normal reads verify only the blocks
    /// they touch.
    pub fn verify(&self) -> Result<Vec<Corruption>> {
        let mut inner = self.inner();
        let before = inner.corrupt.len();
        let mut sink = Vec::new();
        inner.scan_spans(|_| true, &|_| true, &mut |_| false, &mut sink)?;
        drop(inner);
        self.query_metrics(0..u64::MAX)?;
        Ok(self.inner().corrupt[before..].to_vec())
    }
}

impl Drop for TraceStore {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !inner.closed {
            let _ = inner.close();
            inner.closed = true;
        }
    }
}

fn sort_spans(spans: &mut [Span]) {
    spans.sort_by_key(|s| (s.start_unix_nanos, s.span_id));
}

fn check_marker(dir: &Path, read_only: bool) -> Result<()> {
    let marker = dir.join(MARKER_FILE);
    match fs::read_to_string(&marker) {
        Ok(text) => {
            let version = text
                .trim()
                .strip_prefix("tta-storage format ")
                .and_then(|v| v.parse::<u32>().ok());
            match version {
                Some(v) if v == u32::from(FORMAT_VERSION) => Ok(()),
                Some(v) => Err(StorageError::UnsupportedVersion {
                    path: marker,
                    found: v,
                    supported: u32::from(FORMAT_VERSION),
                }),
                None => Err(StorageError::ForeignDirectory {
                    path: dir.to_path_buf(),
                    found: marker,
                }),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut entries: Vec<PathBuf> = fs::read_dir(dir)
                .map_err(|e| StorageError::io("list", dir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            if let Some(found) = entries.into_iter().next() {
                return Err(StorageError::ForeignDirectory {
                    path: dir.to_path_buf(),
                    found,
                });
            }
            if read_only {
                return Err(StorageError::NoStore {
                    path: dir.to_path_buf(),
                });
            }
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&marker)
                .map_err(|e| StorageError::io("create marker file", &marker, e))?;
            f.write_all(format!("tta-storage format {FORMAT_VERSION}\n").as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| StorageError::io("write marker file", &marker, e))?;
            sync_dir(dir)
        }
        Err(e) => Err(StorageError::io("read marker file", &marker, e)),
    }
}

fn record(corrupt: &mut Vec<Corruption>, seen: &mut HashSet<(PathBuf, u64)>, c: Corruption) {
    if seen.insert((c.path.clone(), c.offset)) {
        corrupt.push(c);
    }
}

/// Reads block `i` of `seg`; damage is recorded and yields `None`.
fn read_block(
    seg: &mut Segment,
    i: usize,
    corrupt: &mut Vec<Corruption>,
    seen: &mut HashSet<(PathBuf, u64)>,
) -> Result<Option<Vec<u8>>> {
    match seg.read_payload(i)? {
        None => Ok(None),
        Some(Ok(p)) => Ok(Some(p)),
        Some(Err(c)) => {
            record(corrupt, seen, c);
            Ok(None)
        }
    }
}

impl Inner {
    fn scan_spans(
        &mut self,
        block_filter: impl Fn(&segment::BlockMeta) -> bool,
        want_trace: &dyn Fn(&TraceId) -> bool,
        keep: &mut dyn FnMut(&crate::codec::SpanHead<'_>) -> bool,
        out: &mut Vec<Span>,
    ) -> Result<()> {
        let Self {
            segments,
            corrupt,
            corrupt_seen,
            ..
        } = self;
        for seg in segments.iter_mut().filter(|s| s.kind == SegmentKind::Spans) {
            for i in 0..seg.blocks.len() {
                if !block_filter(&seg.blocks[i]) {
                    continue;
                }
                let Some(payload) = read_block(seg, i, corrupt, corrupt_seen)? else {
                    continue;
                };
                let mark = out.len();
                if let Err(e) = decode_spans(&payload, want_trace, keep, out) {
                    out.truncate(mark);
                    record(
                        corrupt,
                        corrupt_seen,
                        Corruption {
                            path: seg.path.clone(),
                            offset: seg.blocks[i].offset,
                            reason: format!("span payload does not decode: {}", e.0),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Appends `payload` to `out`, zstd-compressed when that is enabled and makes it
    /// smaller, else raw; returns the codec used.
    fn compress_into(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<u8> {
        let mark = out.len();
        if self.config.compression_enabled {
            if self.compressor.is_none() {
                let c = zstd::bulk::Compressor::new(self.config.compression_level)
                    .map_err(|e| StorageError::io("create zstd compressor for", &self.dir, e))?;
                self.compressor = Some(c);
            }
            if let Some(c) = self.compressor.as_mut() {
                // Compressed straight behind what `out` holds: no intermediate buffer.
                out.reserve(zstd::zstd_safe::compress_bound(payload.len()));
                let mut cursor = io::Cursor::new(&mut *out);
                cursor.set_position(mark as u64);
                let n = c
                    .compress_to_buffer(payload, &mut cursor)
                    .map_err(|e| StorageError::io("compress block for", &self.dir, e))?;
                if n < payload.len() && out.len() == mark + n {
                    return Ok(CODEC_ZSTD);
                }
                out.truncate(mark);
            }
        }
        out.extend_from_slice(payload);
        Ok(CODEC_RAW)
    }

    /// Writes one block into the open segment of `kind` for `window`, rolling segments as
    /// needed.
    fn write_block(
        &mut self,
        kind: SegmentKind,
        window: u64,
        header: BlockHeader,
        filter: &[u8],
        payload: &[u8],
    ) -> Result<()> {
        // One buffer, kept from block to block, holds header, filter and stored payload.
        let mut buf = std::mem::take(&mut self.block_buf);
        let result = self.write_block_with(kind, window, header, filter, payload, &mut buf);
        self.block_buf = buf;
        result
    }

    fn write_block_with(
        &mut self,
        kind: SegmentKind,
        window: u64,
        mut header: BlockHeader,
        filter: &[u8],
        payload: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        buf.clear();
        buf.resize(BLOCK_HEADER_LEN, 0);
        buf.extend_from_slice(filter);
        let codec = self.compress_into(payload, buf)?;
        let body = &buf[BLOCK_HEADER_LEN..];
        let raw_len = payload.len();
        let too_large = |bytes| StorageError::TooLarge { bytes };
        header.codec = codec;
        header.raw_len = u32::try_from(raw_len).map_err(|_| too_large(raw_len))?;
        header.body_len = u32::try_from(body.len()).map_err(|_| too_large(body.len()))?;
        header.filter_len = u32::try_from(filter.len()).map_err(|_| too_large(filter.len()))?;
        header.body_checksum = checksum(body);
        buf[..BLOCK_HEADER_LEN].copy_from_slice(&header.encode());

        let total = header.total_len();
        let max = self.config.max_segment_bytes;
        let slot_has = |slot: &Option<Active>, segs: &[Segment]| {
            slot.as_ref().and_then(|a| {
                segs.iter().position(|s| s.seq == a.seq).filter(|&i| {
                    segs[i].window_start_secs == window
                        && (segs[i].blocks.is_empty() || segs[i].end + total <= max)
                })
            })
        };
        let slot = match kind {
            SegmentKind::Spans => &self.active_spans,
            SegmentKind::Metrics => &self.active_metrics,
        };
        let idx = match slot_has(slot, &self.segments) {
            Some(i) => i,
            None => {
                self.seal_active(kind)?;
                let seq = self.next_seq;
                self.next_seq += 1;
                let (seg, file) = Segment::create(&self.dir, kind, seq, window)?;
                self.segments.push(seg);
                self.dir_dirty = true;
                let active = Some(Active { seq, file });
                match kind {
                    SegmentKind::Spans => self.active_spans = active,
                    SegmentKind::Metrics => self.active_metrics = active,
                }
                self.segments.len() - 1
            }
        };
        let slot = match kind {
            SegmentKind::Spans => &mut self.active_spans,
            SegmentKind::Metrics => &mut self.active_metrics,
        };
        let Some(active) = slot.as_mut() else {
            return Ok(());
        };
        self.segments[idx].append_block(&mut active.file, header, buf)?;
        self.unsynced = true;
        Ok(())
    }

    fn seal_active(&mut self, kind: SegmentKind) -> Result<()> {
        let slot = match kind {
            SegmentKind::Spans => &mut self.active_spans,
            SegmentKind::Metrics => &mut self.active_metrics,
        };
        let Some(mut a) = slot.take() else {
            return Ok(());
        };
        if let Some(seg) = self.segments.iter_mut().find(|s| s.seq == a.seq) {
            if let Err(e) = seg.seal(&mut a.file) {
                *slot = Some(a);
                return Err(e);
            }
            seg.reader = None;
            self.dir_dirty = true;
        }
        Ok(())
    }

    /// Cuts buffered spans, then `incoming` (borrowed, not yet buffered), into blocks.
    /// Without `force`, only full blocks are written and the remainder stays buffered
    /// (incoming spans are cloned only then). Blocks never split a trace within one window.
    ///
    /// `incoming_sizes` holds `span_size_estimate` of a prefix of `incoming` (possibly
    /// empty); the others are estimated here, just before their block is encoded, while
    /// their memory is warm.
    fn write_span_blocks(
        &mut self,
        force: bool,
        incoming: &[Span],
        incoming_sizes: &[usize],
    ) -> Result<()> {
        if self.pending_spans.is_empty() && incoming.is_empty() {
            return Ok(());
        }
        let target = self.span_target();
        let owned = std::mem::take(&mut self.pending_spans);
        // Known estimates: the buffered spans', then a prefix of the incoming ones; the rest
        // are computed as their block is cut (and again for the few that stay buffered).
        let mut sizes = std::mem::take(&mut self.pending_span_sizes);
        let n_owned = owned.len();
        let total = n_owned + incoming.len();
        sizes.extend_from_slice(incoming_sizes);
        self.pending_span_bytes = 0;
        let span_at = |i: usize| -> &Span {
            match i.checked_sub(n_owned) {
                None => &owned[i],
                Some(j) => &incoming[j],
            }
        };
        // Key: (window, first-seen rank of the trace in that window); a stable sort keeps
        // append order within a trace. Spans mostly come in runs of one trace, so the map is
        // consulted once per run.
        let mut rank: FastMap<(u64, TraceId), usize> = FastMap::default();
        let mut last: Option<(u64, TraceId, usize)> = None;
        let mut keys: Vec<(u64, usize)> = Vec::with_capacity(total);
        // The window of the previous span, as [lo, hi) in nanoseconds: most spans fall in
        // it, which spares a division per span.
        let (mut lo, mut hi, mut w) = (1u64, 0u64, 0u64);
        for s in owned.iter().chain(incoming) {
            let t = s.start_unix_nanos;
            if !(lo..hi).contains(&t) {
                w = self.config.window_of(t);
                lo = w.saturating_mul(1_000_000_000);
                hi = lo.saturating_add(
                    self.config
                        .segment_duration_seconds
                        .saturating_mul(1_000_000_000),
                );
            }
            let r = match last {
                Some((lw, id, r)) if lw == w && id == s.trace_id => r,
                _ => {
                    let n = rank.len();
                    let r = *rank.entry((w, s.trace_id)).or_insert(n);
                    last = Some((w, s.trace_id, r));
                    r
                }
            };
            keys.push((w, r));
        }
        drop(rank);
        // Positions in cut order; `None` when that is the input order (the common case), so
        // no index list is built.
        let sorted: Option<Vec<usize>> = (!keys.is_sorted()).then(|| {
            let mut tagged: Vec<(u64, usize, usize)> = keys
                .iter()
                .enumerate()
                .map(|(i, &(w, r))| (w, r, i))
                .collect();
            tagged.sort_unstable();
            tagged.into_iter().map(|t| t.2).collect()
        });
        let at = |p: usize| sorted.as_ref().map_or(p, |o| o[p]);
        // Cut and write in one pass: each block is encoded right after its spans were sized.
        let mut keep = vec![false; total];
        let mut result = Ok(());
        let mut refs: Vec<&Span> = Vec::new();
        let (mut start, mut size) = (0usize, 0usize);
        for p in 0..total {
            let i = at(p);
            size += match sizes.get(i) {
                Some(&sz) => sz,
                None => span_size_estimate(span_at(i)),
            };
            let key = keys[i];
            let next = (p + 1 < total).then(|| keys[at(p + 1)]);
            let trace_ends = next != Some(key);
            let window_ends = next.is_none_or(|k| k.0 != key.0);
            if trace_ends && (size >= target || window_ends) {
                if size >= target || force {
                    refs.clear();
                    refs.extend((start..=p).map(|q| span_at(at(q))));
                    if let Err(e) = self.write_span_chunk(key.0, &refs, size) {
                        // Nothing is lost: unwritten spans go back to the buffer.
                        for q in start..total {
                            keep[at(q)] = true;
                        }
                        result = Err(e);
                        break;
                    }
                } else {
                    for q in start..=p {
                        keep[at(q)] = true;
                    }
                }
                start = p + 1;
                size = 0;
            }
        }
        drop(refs);
        for ((s, &k), &sz) in owned.into_iter().zip(&keep).zip(&sizes) {
            if k {
                self.pending_span_bytes += sz;
                self.pending_span_sizes.push(sz);
                self.pending_spans.push(s);
            }
        }
        for (j, (s, &k)) in incoming.iter().zip(&keep[n_owned..]).enumerate() {
            if k {
                let sz = sizes
                    .get(n_owned + j)
                    .copied()
                    .unwrap_or_else(|| span_size_estimate(s));
                self.pending_span_bytes += sz;
                self.pending_span_sizes.push(sz);
                self.pending_spans.push(s.clone());
            }
        }
        result
    }

    /// Estimated (unencoded) bytes that make one block of `block_size_bytes` encoded.
    fn span_target(&self) -> usize {
        (f64::from(self.config.block_size_bytes) / self.span_size_ratio) as usize
    }

    /// Writes one block of `chunk`, whose estimated size is `estimated`.
    fn write_span_chunk(&mut self, window: u64, chunk: &[&Span], estimated: usize) -> Result<()> {
        let mut bufs = std::mem::take(&mut self.encode_bufs);
        let result = self.write_span_chunk_with(window, chunk, estimated, &mut bufs);
        self.encode_bufs = bufs;
        result
    }

    fn write_span_chunk_with(
        &mut self,
        window: u64,
        chunk: &[&Span],
        estimated: usize,
        bufs: &mut EncodeBuffers,
    ) -> Result<()> {
        let enc = encode_span_refs_into(chunk, bufs);
        if estimated > 0 {
            let r = bufs.payload.len() as f64 / estimated as f64;
            self.span_size_ratio = r.clamp(0.02, 1.0);
        }
        let filter = bloom_build(&enc.trace_ids);
        let header = BlockHeader {
            kind: SegmentKind::Spans,
            codec: CODEC_RAW,
            body_len: 0,
            raw_len: 0,
            filter_len: 0,
            count: u32::try_from(chunk.len())
                .map_err(|_| StorageError::TooLarge { bytes: chunk.len() })?,
            traces: enc.trace_ids.len() as u32,
            min_time: enc.min_start,
            max_time: enc.max_start,
            body_checksum: 0,
        };
        self.write_block(SegmentKind::Spans, window, header, &filter, &bufs.payload)
    }

    fn write_metric_blocks(&mut self, force: bool) -> Result<()> {
        if self.pending_metrics.is_empty() {
            return Ok(());
        }
        let target = self.config.block_size_bytes as usize;
        let pending = std::mem::take(&mut self.pending_metrics);
        self.pending_metric_bytes = 0;
        let mut windows: BTreeMap<u64, Vec<PendingSnapshot>> = BTreeMap::new();
        for p in pending {
            windows
                .entry(self.config.window_of(p.snapshot.timestamp_unix_nanos))
                .or_default()
                .push(p);
        }
        let mut chunks: Vec<(u64, Vec<PendingSnapshot>)> = Vec::new();
        for (w, snaps) in windows {
            let mut chunk = Vec::new();
            let mut size = 0;
            for p in snaps {
                size += p.json.len() + 1;
                chunk.push(p);
                if size >= target {
                    chunks.push((w, std::mem::take(&mut chunk)));
                    size = 0;
                }
            }
            if !chunk.is_empty() {
                if force {
                    chunks.push((w, chunk));
                } else {
                    for p in chunk {
                        self.pending_metric_bytes += p.json.len() + 1;
                        self.pending_metrics.push(p);
                    }
                }
            }
        }
        let mut chunks = chunks.into_iter();
        while let Some((w, chunk)) = chunks.next() {
            if let Err(e) = self.write_metric_chunk(w, &chunk) {
                for p in chunk.into_iter().chain(chunks.flat_map(|(_, c)| c)) {
                    self.pending_metric_bytes += p.json.len() + 1;
                    self.pending_metrics.push(p);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn write_metric_chunk(&mut self, window: u64, chunk: &[PendingSnapshot]) -> Result<()> {
        let mut payload =
            Vec::with_capacity(chunk.iter().map(|p| p.json.len() + 1).sum::<usize>() + 2);
        payload.push(b'[');
        for (i, p) in chunk.iter().enumerate() {
            if i > 0 {
                payload.push(b',');
            }
            payload.extend_from_slice(&p.json);
        }
        payload.push(b']');
        let ts = chunk.iter().map(|p| p.snapshot.timestamp_unix_nanos);
        let header = BlockHeader {
            kind: SegmentKind::Metrics,
            codec: CODEC_RAW,
            body_len: 0,
            raw_len: 0,
            filter_len: 0,
            count: u32::try_from(chunk.len())
                .map_err(|_| StorageError::TooLarge { bytes: chunk.len() })?,
            traces: 0,
            min_time: ts.clone().min().unwrap_or(0),
            max_time: ts.max().unwrap_or(0),
            body_checksum: 0,
        };
        self.write_block(SegmentKind::Metrics, window, header, &[], &payload)
    }

    fn flush(&mut self) -> Result<()> {
        self.write_span_blocks(true, &[], &[])?;
        self.write_metric_blocks(true)?;
        if self.unsynced {
            for (a, seq) in [&self.active_spans, &self.active_metrics]
                .into_iter()
                .flatten()
                .map(|a| (a, a.seq))
            {
                let path = self
                    .segments
                    .iter()
                    .find(|s| s.seq == seq)
                    .map(|s| s.path.clone());
                a.file.sync_data().map_err(|e| {
                    StorageError::io("sync", path.unwrap_or_else(|| self.dir.clone()), e)
                })?;
            }
            self.unsynced = false;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.flush()?;
        self.seal_active(SegmentKind::Spans)?;
        self.seal_active(SegmentKind::Metrics)?;
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    fn enforce_retention(&mut self, now: u64) -> Result<RetentionReport> {
        let mut report = RetentionReport {
            bytes_before: self.segments.iter().map(|s| s.file_len).sum(),
            ..Default::default()
        };
        let trace_ttl = self.config.trace_ttl_nanos();
        let metric_ttl = self.config.metric_ttl_nanos();
        let expired: Vec<u64> = self
            .segments
            .iter()
            .filter(|s| {
                let ttl = match s.kind {
                    SegmentKind::Spans => trace_ttl,
                    SegmentKind::Metrics => metric_ttl,
                };
                s.newest()
                    .is_some_and(|n| now.saturating_sub(n) >= ttl && now >= n)
            })
            .map(|s| s.seq)
            .collect();
        let mut result = Ok(());
        for seq in expired {
            if let Err(e) = self.delete_segment(seq, DeleteReason::Expired, &mut report) {
                result = Err(e);
                break;
            }
        }
        if let (Ok(()), Some(cap)) = (&result, self.config.max_disk_bytes) {
            let mut order: Vec<(u64, u64)> = self
                .segments
                .iter()
                .map(|s| (s.newest().unwrap_or(0), s.seq))
                .collect();
            order.sort_unstable();
            let mut total: u64 = self.segments.iter().map(|s| s.file_len).sum();
            for (_, seq) in order {
                if total <= cap {
                    break;
                }
                let before = self
                    .segments
                    .iter()
                    .find(|s| s.seq == seq)
                    .map_or(0, |s| s.file_len);
                if let Err(e) = self.delete_segment(seq, DeleteReason::OverCap, &mut report) {
                    result = Err(e);
                    break;
                }
                total = total.saturating_sub(before);
            }
        }
        if !report.deleted.is_empty() {
            sync_dir(&self.dir)?;
        }
        result?;
        report.bytes_after = self.segments.iter().map(|s| s.file_len).sum();
        Ok(report)
    }

    fn delete_segment(
        &mut self,
        seq: u64,
        reason: DeleteReason,
        report: &mut RetentionReport,
    ) -> Result<()> {
        let Some(i) = self.segments.iter().position(|s| s.seq == seq) else {
            return Ok(());
        };
        for slot in [&mut self.active_spans, &mut self.active_metrics] {
            if slot.as_ref().is_some_and(|a| a.seq == seq) {
                *slot = None;
            }
        }
        remove(&self.segments[i].path)?;
        let seg = self.segments.remove(i);
        self.corrupt.retain(|c| c.path != seg.path);
        report.deleted.push(DeletedSegment {
            items: seg.blocks.iter().map(|b| u64::from(b.header.count)).sum(),
            newest_unix_nanos: seg.newest(),
            path: seg.path,
            kind: seg.kind,
            reason,
            bytes: seg.file_len,
        });
        Ok(())
    }
}
