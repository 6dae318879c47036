//! `tta traces list|show|stats|purge`: read (and prune) the embedded store.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use tta_observability::core::{Span, SpanId, SpanStatus, TraceId};
use tta_observability::storage::{StorageConfig, TraceQuery, TraceStore};

use crate::{CliError, Outcome, fmt_bytes, fmt_time};

fn open_read_only(command: &'static str, dir: &Path) -> Result<TraceStore, CliError> {
    if !dir.is_dir() {
        return Err(CliError::Io {
            command,
            path: dir.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no store directory here"),
        });
    }
    TraceStore::open_read_only(dir).map_err(|source| CliError::Store {
        command,
        dir: dir.to_owned(),
        source,
    })
}

/// Options of `tta traces list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListOptions {
    /// Store directory.
    pub data: PathBuf,
    /// Most traces shown (the most recent first).
    pub limit: usize,
    /// Only traces with an error span.
    pub errors: bool,
    /// Only traces with a span of this service.
    pub service: Option<String>,
    /// Only traces lasting at least this long (root span, else the longest span).
    pub min_duration_ms: Option<f64>,
}

/// One trace in a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    /// The trace id.
    pub trace_id: TraceId,
    /// The root span's name (or the earliest span's when the root is missing).
    pub root_name: String,
    /// The root span's service.
    pub service: String,
    /// Start of the trace (Unix nanoseconds).
    pub start_unix_nanos: u64,
    /// The root span's duration (the longest span's when the root is missing), in ms.
    pub duration_ms: f64,
    /// Whether any span failed.
    pub error: bool,
    /// Spans stored.
    pub spans: usize,
    services: Vec<String>,
    has_root: bool,
}

/// Every trace in the store, most recent first.
pub fn summaries(
    store: &TraceStore,
) -> Result<Vec<TraceSummary>, tta_observability::storage::StorageError> {
    let spans = store.query(TraceQuery::default())?;
    let mut by_id: HashMap<TraceId, TraceSummary> = HashMap::new();
    for s in &spans {
        let t = by_id.entry(s.trace_id).or_insert_with(|| TraceSummary {
            trace_id: s.trace_id,
            root_name: s.name.to_string(),
            service: s.service.to_string(),
            start_unix_nanos: s.start_unix_nanos,
            duration_ms: 0.0,
            error: false,
            spans: 0,
            services: Vec::new(),
            has_root: false,
        });
        t.spans += 1;
        t.error |= s.is_error();
        if !t.services.iter().any(|x| x.as_str() == s.service.as_ref()) {
            t.services.push(s.service.to_string());
        }
        t.start_unix_nanos = t.start_unix_nanos.min(s.start_unix_nanos);
        if s.is_root() && !t.has_root {
            t.has_root = true;
            t.root_name = s.name.to_string();
            t.service = s.service.to_string();
            t.duration_ms = s.duration_ms();
        } else if !t.has_root {
            t.duration_ms = t.duration_ms.max(s.duration_ms());
        }
    }
    let mut out: Vec<TraceSummary> = by_id.into_values().collect();
    out.sort_by(|a, b| {
        b.start_unix_nanos
            .cmp(&a.start_unix_nanos)
            .then(a.trace_id.to_u128().cmp(&b.trace_id.to_u128()))
    });
    Ok(out)
}

/// Lists recent traces: id, start, duration, spans, error flag, service, root name.
pub fn list(options: &ListOptions, out: &mut dyn Write) -> Result<Outcome, CliError> {
    const COMMAND: &str = "traces list";
    let store = open_read_only(COMMAND, &options.data)?;
    let all = summaries(&store).map_err(|source| CliError::Store {
        command: COMMAND,
        dir: options.data.clone(),
        source,
    })?;
    let o = CliError::output(COMMAND);
    writeln!(
        out,
        "{:<32}  {:<24}  {:>11}  {:>5}  {:<5}  {:<16}  ROOT",
        "TRACE ID", "START (UTC)", "DURATION", "SPANS", "ERROR", "SERVICE"
    )
    .map_err(o)?;
    let mut shown = 0;
    for t in all.iter().filter(|t| {
        (!options.errors || t.error)
            && options
                .service
                .as_deref()
                .is_none_or(|s| t.services.iter().any(|x| x == s))
            && options.min_duration_ms.is_none_or(|d| t.duration_ms >= d)
    }) {
        if shown == options.limit {
            break;
        }
        shown += 1;
        writeln!(
            out,
            "{:<32}  {:<24}  {:>8.2} ms  {:>5}  {:<5}  {:<16}  {}",
            t.trace_id.to_string(),
            fmt_time(t.start_unix_nanos),
            t.duration_ms,
            t.spans,
            if t.error { "yes" } else { "no" },
            t.service,
            t.root_name
        )
        .map_err(o)?;
    }
    writeln!(out, "{shown} of {} traces shown", all.len()).map_err(o)?;
    Ok(Outcome::Ok)
}

/// Prints the span tree of one trace. An id the store does not hold is a failed check.
pub fn show(
    data: &Path,
    id: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, CliError> {
    const COMMAND: &str = "traces show";
    let trace_id = TraceId::from_hex(id.trim()).map_err(|e| CliError::InvalidArgument {
        command: COMMAND,
        argument: "ID",
        message: format!("{id:?} is not a trace id: {e}"),
    })?;
    let store = open_read_only(COMMAND, data)?;
    let spans = store
        .get_trace(&trace_id)
        .map_err(|source| CliError::Store {
            command: COMMAND,
            dir: data.to_owned(),
            source,
        })?;
    let o = CliError::output(COMMAND);
    let Some(spans) = spans else {
        writeln!(
            err,
            "tta: {COMMAND}: trace {trace_id} is not in the store at {}",
            data.display()
        )
        .map_err(o)?;
        return Ok(Outcome::Failed);
    };
    write_tree(&spans, out).map_err(o)?;
    Ok(Outcome::Ok)
}

/// Writes spans (of one trace) as an indented tree: children under their parent, by start.
pub fn write_tree(spans: &[Span], out: &mut dyn Write) -> std::io::Result<()> {
    let ids: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: HashMap<Option<SpanId>, Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        // Spans whose parent is missing are shown at the top level.
        let parent = s.parent_span_id.filter(|p| ids.contains_key(p));
        children.entry(parent).or_default().push(i);
    }
    for list in children.values_mut() {
        list.sort_by_key(|&i| (spans[i].start_unix_nanos, spans[i].span_id.to_u64()));
    }
    let Some(first) = spans.iter().map(|s| s.start_unix_nanos).min() else {
        return Ok(());
    };
    let errors = spans.iter().filter(|s| s.is_error()).count();
    writeln!(
        out,
        "trace {}: {} spans, {} error(s), started {}",
        spans[0].trace_id,
        spans.len(),
        errors,
        fmt_time(first)
    )?;
    let mut stack: Vec<(usize, usize)> = children
        .get(&None)
        .map(|v| v.iter().rev().map(|&i| (i, 0)).collect())
        .unwrap_or_default();
    while let Some((i, depth)) = stack.pop() {
        let s = &spans[i];
        let status = match &s.status {
            SpanStatus::Error(m) if m.is_empty() => " ERROR".to_owned(),
            SpanStatus::Error(m) => format!(" ERROR: {m}"),
            _ => String::new(),
        };
        writeln!(
            out,
            "{:indent$}{} [{}] {:.3} ms (+{:.3} ms){status}",
            "",
            s.name,
            s.service,
            s.duration_ms(),
            (s.start_unix_nanos - first) as f64 / 1e6,
            indent = depth * 2
        )?;
        if let Some(kids) = children.get(&Some(s.span_id)) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    Ok(())
}

/// Prints the store's counters.
pub fn stats(data: &Path, out: &mut dyn Write) -> Result<Outcome, CliError> {
    const COMMAND: &str = "traces stats";
    let store = open_read_only(COMMAND, data)?;
    let s = store.stats();
    let o = CliError::output(COMMAND);
    let time = |t: Option<u64>| t.map(fmt_time).unwrap_or_else(|| "-".into());
    writeln!(out, "store:              {}", data.display()).map_err(o)?;
    writeln!(
        out,
        "segments:           {} ({} span, {} metrics), {} blocks",
        s.segments, s.span_segments, s.metric_segments, s.blocks
    )
    .map_err(o)?;
    writeln!(out, "spans:              {}", s.spans).map_err(o)?;
    writeln!(out, "traces:             {}", s.traces).map_err(o)?;
    writeln!(out, "metric snapshots:   {}", s.metric_snapshots).map_err(o)?;
    writeln!(
        out,
        "bytes on disk:      {} ({} spans)",
        fmt_bytes(s.bytes_on_disk as f64),
        fmt_bytes(s.span_bytes_on_disk as f64)
    )
    .map_err(o)?;
    writeln!(
        out,
        "compression:        {:.2}x ({} encoded -> {} compressed)",
        s.compression_ratio,
        fmt_bytes(s.uncompressed_bytes as f64),
        fmt_bytes(s.compressed_bytes as f64)
    )
    .map_err(o)?;
    writeln!(
        out,
        "bytes per span:     {:.1} on disk, {:.1} encoded",
        s.bytes_per_span, s.uncompressed_bytes_per_span
    )
    .map_err(o)?;
    writeln!(
        out,
        "time range:         {} .. {}",
        time(s.oldest_unix_nanos),
        time(s.newest_unix_nanos)
    )
    .map_err(o)?;
    writeln!(out, "corrupt blocks:     {}", s.corrupt_blocks.len()).map_err(o)?;
    for c in &s.corrupt_blocks {
        writeln!(
            out,
            "  {} at offset {}: {}",
            c.path.display(),
            c.offset,
            c.reason
        )
        .map_err(o)?;
    }
    Ok(Outcome::Ok)
}

/// Options of `tta traces purge`.
#[derive(Debug, Clone, PartialEq)]
pub struct PurgeOptions {
    /// Store directory.
    pub data: PathBuf,
    /// Days spans are kept (default: the production preset's 7).
    pub ttl_days: Option<u32>,
    /// Days metrics snapshots are kept (default 30).
    pub metric_ttl_days: Option<u32>,
    /// Cap on the bytes of segment files.
    pub max_disk_bytes: Option<u64>,
}

/// Enforces retention now and reports every deleted segment.
pub fn purge(options: &PurgeOptions, out: &mut dyn Write) -> Result<Outcome, CliError> {
    const COMMAND: &str = "traces purge";
    let dir = &options.data;
    if !dir.is_dir() {
        return Err(CliError::Io {
            command: COMMAND,
            path: dir.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no store directory here"),
        });
    }
    let mut config = StorageConfig::default();
    if let Some(d) = options.ttl_days {
        config.trace_ttl_days = d;
    }
    if let Some(d) = options.metric_ttl_days {
        config.metric_ttl_days = d;
    }
    config.max_disk_bytes = options.max_disk_bytes;
    let store_error = |source| CliError::Store {
        command: COMMAND,
        dir: dir.clone(),
        source,
    };
    config.validate().map_err(store_error)?;
    let store = TraceStore::open(dir, config.clone()).map_err(store_error)?;
    let report = store
        .enforce_retention(crate::workload::now_unix_nanos())
        .map_err(store_error)?;
    let o = CliError::output(COMMAND);
    for d in &report.deleted {
        writeln!(
            out,
            "deleted {} ({:?}, {:?}): {} items, {}, newest {}",
            d.path.display(),
            d.kind,
            d.reason,
            d.items,
            fmt_bytes(d.bytes as f64),
            d.newest_unix_nanos
                .map(fmt_time)
                .unwrap_or_else(|| "-".into())
        )
        .map_err(o)?;
    }
    writeln!(
        out,
        "retention (spans {} d, metrics {} d{}): {} segment(s) deleted, {} freed, {} left",
        config.trace_ttl_days,
        config.metric_ttl_days,
        config
            .max_disk_bytes
            .map(|b| format!(", cap {}", fmt_bytes(b as f64)))
            .unwrap_or_default(),
        report.deleted.len(),
        fmt_bytes(report.bytes_freed() as f64),
        fmt_bytes(report.bytes_after as f64)
    )
    .map_err(o)?;
    store.close().map_err(store_error)?;
    Ok(Outcome::Ok)
}
