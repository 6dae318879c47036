use tta_core::Span;

use crate::codec::SpanHead;

/// Which spans [`TraceStore::query`](crate::TraceStore::query) returns.
///
/// Every set field must match; the default matches every span. Results are sorted by start
/// time (ties by span id) and cut to `limit`.
///
/// ```
/// use tta_storage::TraceQuery;
/// let q = TraceQuery::default()
///     .time_range(1_000, 2_000)
///     .service("checkout")
///     .min_duration_nanos(5_000_000)
///     .errors_only()
///     .limit(20);
/// assert_eq!(q.limit, Some(20));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceQuery {
    /// Only spans that start at or after this time (Unix nanoseconds).
    pub start_unix_nanos: Option<u64>,
    /// Only spans that start before this time (Unix nanoseconds, exclusive).
    pub end_unix_nanos: Option<u64>,
    /// Only spans of this service.
    pub service: Option<String>,
    /// Only spans with this name.
    pub span_name: Option<String>,
    /// Only spans lasting at least this long.
    pub min_duration_nanos: Option<u64>,
    /// Only spans with an error status.
    pub errors_only: bool,
    /// At most this many spans (the earliest ones).
    pub limit: Option<usize>,
}

impl TraceQuery {
    /// Spans starting in `[start, end)`.
    pub fn time_range(mut self, start_unix_nanos: u64, end_unix_nanos: u64) -> Self {
        self.start_unix_nanos = Some(start_unix_nanos);
        self.end_unix_nanos = Some(end_unix_nanos);
        self
    }

    /// Spans of one service.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Spans with one name.
    pub fn span_name(mut self, name: impl Into<String>) -> Self {
        self.span_name = Some(name.into());
        self
    }

    /// Spans lasting at least this long.
    pub fn min_duration_nanos(mut self, nanos: u64) -> Self {
        self.min_duration_nanos = Some(nanos);
        self
    }

    /// Error spans only.
    pub fn errors_only(mut self) -> Self {
        self.errors_only = true;
        self
    }

    /// At most `n` spans.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    pub(crate) fn matches_head(&self, h: &SpanHead<'_>) -> bool {
        self.start_unix_nanos.is_none_or(|s| h.start >= s)
            && self.end_unix_nanos.is_none_or(|e| h.start < e)
            && self.service.as_deref().is_none_or(|s| s == h.service)
            && self.span_name.as_deref().is_none_or(|n| n == h.name)
            && self
                .min_duration_nanos
                .is_none_or(|d| h.end.saturating_sub(h.start) >= d)
            && (!self.errors_only || h.is_error)
    }

    pub(crate) fn matches(&self, s: &Span) -> bool {
        self.matches_head(&SpanHead {
            name: &s.name,
            service: &s.service,
            start: s.start_unix_nanos,
            end: s.end_unix_nanos,
            is_error: s.is_error(),
        })
    }

    /// Whether a block whose span starts lie in `[min, max]` can hold a match.
    pub(crate) fn overlaps(&self, min: u64, max: u64) -> bool {
        self.start_unix_nanos.is_none_or(|s| max >= s)
            && self.end_unix_nanos.is_none_or(|e| min < e)
    }
}
