use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Serialize};
use tta_cardinality::map::{Insert, InsertOnlyMap};
use tta_cardinality::{Admitted, CardinalityLimiter, CardinalityStats, KeyId, LabelHash};
use tta_core::{Clock, MetricSeries, MetricValue, MetricsSnapshot, SystemClock};

use crate::histogram::{HistogramRead, LogHistogram, exposed_bounds};
use crate::names::{sanitize_label_name, sanitize_metric_name};
use crate::{MetricsConfig, MetricsError};

/// Most distinct metric names (per kind and raw spelling) the collector tracks; further names
/// are recorded into one overflow metric per kind.
pub const MAX_METRIC_NAMES: usize = 1024;
/// Most labelled series over all metrics; further series of a metric are recorded into that
/// metric's overflow series (label `tta_overflow="true"`).
pub const MAX_SERIES: usize = 10_000;
/// Labels per series beyond this many are ignored.
pub const MAX_LABELS: usize = 16;
/// The label key under which [`MetricsCollector::record_execution`] limits primitive names.
pub const PRIMITIVE_LABEL: &str = "primitive";
/// Label of the per-metric overflow series.
pub const OVERFLOW_LABEL: &str = "tta_overflow";
/// Distinct label keys whose strings the collector shares between series; further keys get
/// a string per series.
const MAX_INTERNED_KEYS: usize = 1024;

/// Gives every collector its own id, so a [`MetricKey`] knows which collector it is bound to.
static NEXT_COLLECTOR_ID: AtomicU64 = AtomicU64::new(1);

/// Exposed name of the executions counter (labels `primitive`, `outcome`).
pub const EXECUTIONS_METRIC: &str = "tta_executions_total";
/// Exposed name of the execution duration histogram (label `primitive`), in milliseconds.
pub const EXECUTION_DURATION_METRIC: &str = "tta_execution_duration_milliseconds";

const REJECTED_METRIC: &str = "tta_metrics_rejected_values_total";
const DROPPED_SERIES_METRIC: &str = "tta_metrics_overflowed_series_total";
const DROPPED_NAMES_METRIC: &str = "tta_metrics_overflowed_names_total";
const CARD_VALUES_METRIC: &str = "tta_cardinality_label_values";
const CARD_OVERFLOW_METRIC: &str = "tta_cardinality_overflowed_admissions_total";
const CARD_BUDGET_METRIC: &str = "tta_cardinality_budget_usage_ratio";

const RESERVED: &[&str] = &[
    EXECUTIONS_METRIC,
    EXECUTION_DURATION_METRIC,
    REJECTED_METRIC,
    DROPPED_SERIES_METRIC,
    DROPPED_NAMES_METRIC,
    CARD_VALUES_METRIC,
    CARD_OVERFLOW_METRIC,
    CARD_BUDGET_METRIC,
];

/// The kind of a labelled instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Monotonic `u64` counter.
    Counter,
    /// Last-value `f64` gauge.
    Gauge,
    /// Log-linear histogram of non-negative values.
    Histogram,
}

impl MetricKind {
    /// `counter`, `gauge` or `histogram`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

enum Value {
    Counter(AtomicU64),
    Gauge(AtomicU64),
    Histogram(Box<LogHistogram>),
}

impl Value {
    fn new(kind: MetricKind) -> Self {
        match kind {
            MetricKind::Counter => Self::Counter(AtomicU64::new(0)),
            MetricKind::Gauge => Self::Gauge(AtomicU64::new(0f64.to_bits())),
            MetricKind::Histogram => Self::Histogram(Box::new(LogHistogram::new())),
        }
    }

    fn read(&self) -> MetricValue {
        match self {
            Self::Counter(c) => MetricValue::Counter(c.load(Ordering::Relaxed)),
            Self::Gauge(g) => MetricValue::Gauge(f64::from_bits(g.load(Ordering::Relaxed))),
            Self::Histogram(h) => {
                let r = h.read();
                MetricValue::Histogram {
                    bounds: exposed_bounds(),
                    counts: r.exposed_counts(),
                    sum: r.sum,
                    count: r.count,
                }
            }
        }
    }
}

/// A label key and its (admitted) value, both shared strings.
type Label = (Arc<str>, Arc<str>);

/// A series' labels: one label inline in the series (no allocation, no pointer to chase),
/// more in a box.
enum Labels {
    One([Label; 1]),
    Many(Box<[Label]>),
}

impl Labels {
    /// One label inline, otherwise a box of exactly `labels.len()`.
    fn from_vec(mut labels: Vec<Label>) -> Self {
        match labels.pop() {
            Some(only) if labels.is_empty() => Self::One([only]),
            Some(last) => {
                labels.push(last);
                Self::Many(labels.into_boxed_slice())
            }
            None => Self::Many(Box::new([])),
        }
    }

    /// Copies of shared labels (pointer clones, no string copies).
    fn from_slice(labels: &[Label]) -> Self {
        match labels {
            [only] => Self::One([only.clone()]),
            many => Self::Many(many.into()),
        }
    }
}

impl std::ops::Deref for Labels {
    type Target = [Label];
    #[inline]
    fn deref(&self) -> &[Label] {
        match self {
            Self::One(one) => one,
            Self::Many(many) => many,
        }
    }
}

struct Series {
    /// Raw label keys with their admitted values, in the order first seen (deduplicated).
    labels: Labels,
    value: Value,
}

impl Series {
    /// Whether the label set equals `pairs` (as sets; `pairs` may be in any order).
    #[inline]
    fn matches<'p>(&self, n: usize, pairs: impl Iterator<Item = (&'p str, &'p str)>) -> bool {
        self.labels.len() == n
            && pairs
                .into_iter()
                .all(|(k, v)| self.labels.iter().any(|(sk, sv)| **sk == *k && **sv == *v))
    }

    /// [`matches`](Self::matches) for shared strings: equal pointers (interned keys, the
    /// limiter's kept values) decide without reading the strings.
    #[inline]
    fn matches_shared(&self, pairs: &[(Arc<str>, Arc<str>)]) -> bool {
        #[inline]
        fn same(a: &Arc<str>, b: &Arc<str>) -> bool {
            Arc::ptr_eq(a, b) || **a == **b
        }
        self.labels.len() == pairs.len()
            && pairs.iter().all(|(k, v)| {
                self.labels
                    .iter()
                    .any(|(sk, sv)| same(sk, k) && same(sv, v))
            })
    }
}

/// Where a record goes: a counter or gauge word (gauges hold `f64` bits), or a histogram.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Scalar(&'a AtomicU64),
    Histogram(&'a LogHistogram),
}

impl Series {
    #[inline]
    fn cell(&self) -> Cell<'_> {
        match &self.value {
            Value::Counter(c) | Value::Gauge(c) => Cell::Scalar(c),
            Value::Histogram(h) => Cell::Histogram(h),
        }
    }
}

/// Ids in the first [`ById`] chunk; chunk `c` holds `BY_ID_FIRST << c` ids.
const BY_ID_FIRST: usize = 16;
/// Chunks of a [`ById`]: room for `BY_ID_FIRST * (2^BY_ID_CHUNKS - 1)` ids, more than
/// [`MAX_SERIES`]; values with higher ids use the series table.
const BY_ID_CHUNKS: usize = 11;
const _: () = assert!(BY_ID_FIRST * ((1 << BY_ID_CHUNKS) - 1) > MAX_SERIES);

/// A family's one-label series for one label key, for the values the limiter keeps,
/// addressed by the limiter's id of the value ([`Admitted::kept_id`]): a counter or gauge is
/// one word of an array (plus a bit saying it exists) instead of a table entry holding the
/// label strings; the strings stay in the limiter alone.
struct ById {
    /// The label key (interned).
    key: Arc<str>,
    /// The limiter's handle for it, so lookups skip the key table.
    limiter_key: Option<KeyId>,
    chunks: [OnceLock<ByIdChunk>; BY_ID_CHUNKS],
}

struct ByIdChunk {
    /// One bit per id: the series exists (it was recorded to, so it is exported).
    present: Box<[AtomicU64]>,
    cells: ByIdCells,
}

enum ByIdCells {
    /// Counter values, or gauge values as `f64` bits (0 is 0.0 for both).
    Scalar(Box<[AtomicU64]>),
    Histogram(Box<[OnceLock<Box<LogHistogram>>]>),
}

/// The chunk and offset of id `id`.
#[inline]
fn by_id_locate(id: usize) -> (usize, usize) {
    let q = id / BY_ID_FIRST + 1;
    let chunk = (usize::BITS - 1 - q.leading_zeros()) as usize;
    (chunk, id - BY_ID_FIRST * ((1 << chunk) - 1))
}

impl ById {
    fn new(key: Arc<str>, limiter_key: Option<KeyId>) -> Self {
        Self {
            key,
            limiter_key,
            chunks: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// The cell of `id` and whether its series exists, creating the chunk if needed
    /// (`None` for ids past the last chunk).
    #[inline]
    fn slot(&self, kind: MetricKind, id: usize) -> Option<(&ByIdChunk, usize)> {
        let (c, off) = by_id_locate(id);
        let chunk = self.chunks.get(c)?.get_or_init(|| {
            let n = BY_ID_FIRST << c;
            ByIdChunk {
                present: (0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
                cells: match kind {
                    MetricKind::Histogram => {
                        ByIdCells::Histogram((0..n).map(|_| OnceLock::new()).collect())
                    }
                    _ => ByIdCells::Scalar((0..n).map(|_| AtomicU64::new(0)).collect()),
                },
            }
        });
        Some((chunk, off))
    }

    /// Every existing series: (id, value).
    fn for_each(&self, mut f: impl FnMut(usize, MetricValue), kind: MetricKind) {
        for (c, chunk) in self.chunks.iter().enumerate() {
            let Some(chunk) = chunk.get() else { continue };
            let start = BY_ID_FIRST * ((1 << c) - 1);
            for (w, word) in chunk.present.iter().enumerate() {
                let mut bits = word.load(Ordering::Acquire);
                while bits != 0 {
                    let off = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let value = match &chunk.cells {
                        ByIdCells::Scalar(v) => {
                            let x = v[off].load(Ordering::Relaxed);
                            if kind == MetricKind::Gauge {
                                MetricValue::Gauge(f64::from_bits(x))
                            } else {
                                MetricValue::Counter(x)
                            }
                        }
                        ByIdCells::Histogram(v) => match v[off].get() {
                            Some(h) => Value::read_hist(h),
                            None => Value::read_hist(&LogHistogram::new()),
                        },
                    };
                    f(start + off, value);
                }
            }
        }
    }
}

/// From this [`Family::over_streak`] on, a family's one-label records ask the limiter first.
const OVER_STREAK: u8 = 8;
/// Highest [`Family::over_streak`]: a coarsened value adds one, a kept one takes away
/// [`KEPT_PENALTY`].
const OVER_STREAK_MAX: u8 = 16;
const KEPT_PENALTY: u8 = 4;

struct Family {
    kind: MetricKind,
    /// Sanitized, unique exposed name.
    name: Box<str>,
    series: InsertOnlyMap<Series>,
    overflow: OnceLock<Series>,
    /// How much the family's recent one-label records that reached the limiter were past
    /// the limit: +1 per coarsened value, -[`KEPT_PENALTY`] per kept one, within
    /// `0..=`[`OVER_STREAK_MAX`]. From [`OVER_STREAK`] on, one-label records skip the lookup
    /// of the raw label (which misses for such values) and admit first; a kept value then
    /// finds its series by the same hash, so only the order of the lookups changes.
    over_streak: AtomicU8,
    /// Where the one-label series of `hash:` buckets are, by bucket index, for the first
    /// label key coarsened in this family; created on the first coarsened value.
    buckets: OnceLock<BucketIds>,
    /// One-label series of kept values, by the limiter's value id, for the first label key
    /// with a kept value in this family (other keys use `series`).
    by_id: OnceLock<ById>,
}

/// Series ids of a family's bucket series for one label key: per bucket index 0 (unknown)
/// or `(id + 1) | bucket string length << 24`. A bucket index and string length name one
/// bucket string, so a hit needs no string comparison of the value.
struct BucketIds {
    key: Box<str>,
    ids: Box<[AtomicU32]>,
}

/// Bucket indexes with a cache slot (the limiter's static bucket strings).
const CACHED_BUCKETS: usize = 256;
/// Series ids below this fit a [`BucketIds`] word beside the string length.
const BUCKET_ID_LIMIT: usize = 1 << 24;
const _: () = assert!(MAX_SERIES < BUCKET_ID_LIMIT);

impl Family {
    fn new(kind: MetricKind, name: String) -> Self {
        Self {
            kind,
            name: name.into(),
            series: InsertOnlyMap::new(16),
            overflow: OnceLock::new(),
            over_streak: AtomicU8::new(0),
            buckets: OnceLock::new(),
            by_id: OnceLock::new(),
        }
    }

    /// The series of bucket `index` (whose string is `len` bytes) for label key `key`, when
    /// cached: one array read instead of a table probe.
    #[inline]
    fn cached_bucket(&self, key: &str, index: usize, len: usize) -> Option<&Series> {
        let cache = self.buckets.get()?;
        if *cache.key != *key {
            return None;
        }
        let w = cache.ids.get(index)?.load(Ordering::Relaxed) as usize;
        if w == 0 || w >> 24 != len {
            return None;
        }
        self.series.get((w & (BUCKET_ID_LIMIT - 1)) - 1)
    }

    /// Remembers that series `id` holds bucket `index` (string of `len` bytes) for `key`;
    /// the cache is sized for `buckets` (the limiter's bucket count when it is created).
    #[cold]
    fn cache_bucket(&self, key: &str, index: usize, len: usize, id: usize, buckets: usize) {
        if index >= CACHED_BUCKETS || id + 1 >= BUCKET_ID_LIMIT || len > 0xff {
            return;
        }
        let cache = self.buckets.get_or_init(|| BucketIds {
            key: key.into(),
            ids: (0..buckets.clamp(index + 1, CACHED_BUCKETS))
                .map(|_| AtomicU32::new(0))
                .collect(),
        });
        if *cache.key == *key
            && let Some(slot) = cache.ids.get(index)
        {
            slot.store(((id + 1) | len << 24) as u32, Ordering::Relaxed);
        }
    }

    fn overflow_series(&self) -> &Series {
        self.overflow.get_or_init(|| Series {
            labels: Labels::One([(Arc::from(OVERFLOW_LABEL), Arc::from("true"))]),
            value: Value::new(self.kind),
        })
    }
}

struct FamilyEntry {
    kind: MetricKind,
    raw: Box<str>,
    family: Arc<Family>,
}

/// Where a primitive's execution statistics are, remembered between calls of
/// [`MetricsCollector::record_execution_hinted`]. Starts empty; shared between threads.
#[derive(Debug, Default)]
pub struct ExecutionHint(AtomicU64);

/// One primitive's executions: durations of successes and of failures in histograms of
/// their own, whose counts are the success and failure counts. Recording one is then two
/// atomic read-modify-writes (a bucket and the sum) rather than three with a separate
/// counter; the failures' histogram is allocated at the first failure.
struct Execution {
    name: Arc<str>,
    ok: LogHistogram,
    failed: OnceLock<Box<LogHistogram>>,
}

impl Execution {
    fn new(name: Arc<str>) -> Self {
        Self {
            name,
            ok: LogHistogram::new(),
            failed: OnceLock::new(),
        }
    }

    fn record(&self, duration_ms: f64, success: bool) {
        if success {
            self.ok.record(duration_ms);
        } else {
            self.failed
                .get_or_init(|| Box::new(LogHistogram::new()))
                .record(duration_ms);
        }
    }

    fn successes(&self) -> u64 {
        self.ok.count()
    }

    fn failures(&self) -> u64 {
        self.failed.get().map_or(0, |h| h.count())
    }
}

/// Execution statistics of one primitive, from [`MetricsCollector::metrics`].
///
/// Percentiles come from a log-linear histogram and are within
/// [`QUANTILE_RELATIVE_ERROR`](crate::QUANTILE_RELATIVE_ERROR) (6.25%) of the exact value for
/// durations between about 0.001 ms and 4.2 million ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionMetrics {
    /// The recorded name (a `hash:` bucket when past the cardinality limit).
    pub name: String,
    /// Successes plus failures.
    pub total_executions: u64,
    /// Executions recorded with `success = true`.
    pub successes: u64,
    /// Executions recorded with `success = false`.
    pub failures: u64,
    /// `successes / total_executions` (0 when there are none).
    pub success_rate: f64,
    /// Mean duration in milliseconds.
    pub mean_duration_ms: f64,
    /// Median duration.
    pub p50_duration_ms: f64,
    /// 95th percentile duration.
    pub p95_duration_ms: f64,
    /// 99th percentile duration.
    pub p99_duration_ms: f64,
    /// Shortest duration (exact).
    pub min_duration_ms: f64,
    /// Longest duration (exact).
    pub max_duration_ms: f64,
}

/// Totals across every primitive, from [`MetricsCollector::totals`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionTotals {
    /// Distinct recorded primitive names.
    pub names: usize,
    /// All executions.
    pub total_executions: u64,
    /// All successes.
    pub successes: u64,
    /// All failures.
    pub failures: u64,
    /// `successes / total_executions` (0 when there are none).
    pub success_rate: f64,
    /// Durations and histogram values refused (NaN, infinite or negative).
    pub rejected_values: u64,
    /// Records that went to a metric's overflow series because [`MAX_SERIES`] was reached.
    pub overflowed_series: u64,
    /// Records that went to an overflow metric because [`MAX_METRIC_NAMES`] was reached.
    pub overflowed_names: u64,
}

/// A metric's name and labels prepared once, for the lock-free one-probe record path
/// ([`MetricsCollector::counter_for`], [`gauge_for`](MetricsCollector::gauge_for),
/// [`histogram_for`](MetricsCollector::histogram_for)).
///
/// The by-name calls (`counter(name, &labels)`) hash the name and every label string on
/// each call. A key is built once (labels past [`MAX_LABELS`] are dropped and a repeated key
/// keeps its first value, as the by-name calls do), and on its first use with a collector it
/// is *bound* to it: its labels go through that collector's cardinality limiter once and the
/// series hash and the metric are cached in the key. Every later use is one probe of the
/// series table with the cached hash, comparing shared pointers: no hashing, no allocation,
/// no lock. Limits still apply: a value past the limit is bound to its `hash:` bucket (or
/// overflow value), exactly the series the by-name call records into at bind time. A key
/// bound while over the limit stays with its bucket if limits are raised later; build a new
/// key to pick the value up as-is.
///
/// A key is cheap to clone (clones keep the binding). Used with a collector other than the
/// one it is bound to, it records correctly through the by-name path.
///
/// ```
/// use tta_metrics::{MetricKey, MetricsCollector, MetricsConfig};
/// let config = MetricsConfig { max_label_values: 1, ..Default::default() };
/// let collector = MetricsCollector::with_hash_key(config, 7)?;
/// let api = MetricKey::new("requests_total", &[("route", "/api")]);
/// let health = MetricKey::new("requests_total", &[("route", "/health")]);
/// collector.counter_for(&api).increment(1);
/// collector.counter_for(&health).increment(1); // past the limit of 1: a hash bucket
/// let stats = collector.cardinality_stats();
/// assert_eq!(stats.label_cardinality["route"], 1);
/// assert_eq!(stats.dropped_labels, vec!["route".to_string()]);
/// let text = collector.render_prometheus();
/// assert!(text.contains("requests_total{route=\"/api\"} 1"));
/// assert!(text.contains("requests_total{route=\"hash:"));
/// # Ok::<(), tta_metrics::MetricsError>(())
/// ```
#[derive(Clone)]
pub struct MetricKey {
    name: Arc<str>,
    /// Raw labels, truncated to [`MAX_LABELS`] and deduplicated by key.
    labels: Box<[(Arc<str>, Arc<str>)]>,
    bound: OnceLock<Bound>,
}

/// What a [`MetricKey`] caches on first use with a collector.
#[derive(Clone)]
struct Bound {
    owner: u64,
    /// Admitted labels (interned keys, the limiter's kept values or a bucket).
    labels: Box<[(Arc<str>, Arc<str>)]>,
    hash: u64,
    /// For one label whose value the limiter kept: the value's id (see [`ById`]).
    kept_id: Option<usize>,
    /// The family per [`MetricKind`], resolved on first use of that kind.
    families: [OnceLock<Arc<Family>>; 3],
}

impl MetricKey {
    /// A key for metric `name` with these labels (not yet bound to a collector).
    ///
    /// ```
    /// let key = tta_metrics::MetricKey::new("jobs_total", &[("queue", "high"), ("queue", "low")]);
    /// assert_eq!(key.name(), "jobs_total");
    /// assert_eq!(key.labels().collect::<Vec<_>>(), vec![("queue", "high")]);
    /// ```
    pub fn new<K: AsRef<str>, V: AsRef<str>>(name: &str, labels: &[(K, V)]) -> Self {
        let labels = &labels[..labels.len().min(MAX_LABELS)];
        let mut kept: Vec<(Arc<str>, Arc<str>)> = Vec::with_capacity(labels.len());
        for (k, v) in labels {
            let k = k.as_ref();
            if !kept.iter().any(|(seen, _)| **seen == *k) {
                kept.push((Arc::from(k), Arc::from(v.as_ref())));
            }
        }
        Self {
            name: Arc::from(name),
            labels: kept.into_boxed_slice(),
            bound: OnceLock::new(),
        }
    }

    /// The metric name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The labels as given (after truncation to [`MAX_LABELS`] and deduplication).
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels.iter().map(|(k, v)| (&**k, &**v))
    }
}

impl std::fmt::Debug for MetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricKey")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .field("bound", &self.bound.get().is_some())
            .finish()
    }
}

/// A counter handle from [`MetricsCollector::counter`]; a no-op when metrics are disabled.
#[derive(Debug, Clone, Copy)]
pub struct Counter<'a>(Option<&'a AtomicU64>);

impl Counter<'_> {
    /// Adds `n`. Lock-free.
    #[inline]
    pub fn increment(&self, n: u64) {
        if let Some(c) = self.0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The current value (0 for a no-op handle).
    pub fn value(&self) -> u64 {
        self.0.map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// A gauge handle from [`MetricsCollector::gauge`]; a no-op when metrics are disabled.
#[derive(Debug, Clone, Copy)]
pub struct Gauge<'a>(Option<&'a AtomicU64>);

impl Gauge<'_> {
    /// Sets the value (any `f64`, NaN and infinities included, as Prometheus allows).
    #[inline]
    pub fn set(&self, v: f64) {
        if let Some(g) = self.0 {
            g.store(v.to_bits(), Ordering::Relaxed);
        }
    }

    /// Adds `d` (lock-free compare-and-swap loop).
    pub fn increment(&self, d: f64) {
        if let Some(g) = self.0 {
            let _ = g.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + d).to_bits())
            });
        }
    }

    /// Subtracts `d`.
    pub fn decrement(&self, d: f64) {
        self.increment(-d);
    }

    /// The current value (0 for a no-op handle).
    pub fn value(&self) -> f64 {
        self.0
            .map_or(0.0, |g| f64::from_bits(g.load(Ordering::Relaxed)))
    }
}

/// A histogram handle from [`MetricsCollector::histogram`]; a no-op when metrics are disabled.
#[derive(Clone, Copy)]
pub struct Histogram<'a> {
    hist: Option<&'a LogHistogram>,
    rejected: &'a AtomicU64,
}

impl std::fmt::Debug for Histogram<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("enabled", &self.hist.is_some())
            .finish()
    }
}

impl Histogram<'_> {
    /// Records a non-negative finite value; NaN, infinite or negative values are counted as
    /// rejected and not recorded. Returns whether it was recorded.
    #[inline]
    pub fn record(&self, v: f64) -> bool {
        let Some(h) = self.hist else { return false };
        if v.is_finite() && v >= 0.0 {
            h.record(v);
            true
        } else {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// Collects executions and labelled counters, gauges and histograms, with every label value
/// and primitive name passed through a [`CardinalityLimiter`].
///
/// All methods take `&self`; share it with an `Arc` (the facade holds a process-wide one).
/// Recording into a known series takes no lock and allocates nothing.
///
/// ```
/// use tta_metrics::{MetricsCollector, MetricsConfig};
/// let collector = MetricsCollector::new(MetricsConfig::default())?;
/// collector.record_execution("test_primitive", 100.0, true);
/// assert_eq!(collector.metrics("test_primitive").unwrap().total_executions, 1);
/// collector.counter("requests_total", &[("route", "/api")]).increment(1);
/// assert!(collector.render_prometheus().contains("requests_total{route=\"/api\"} 1"));
/// # Ok::<(), tta_metrics::MetricsError>(())
/// ```
pub struct MetricsCollector {
    id: u64,
    config: Mutex<MetricsConfig>,
    enabled: AtomicBool,
    limiter: CardinalityLimiter,
    executions: InsertOnlyMap<Execution>,
    families: InsertOnlyMap<FamilyEntry>,
    overflow_families: [Arc<Family>; 3],
    /// Label key strings shared by every series (and by bound [`MetricKey`]s).
    label_keys: InsertOnlyMap<Arc<str>>,
    help: Mutex<BTreeMap<String, String>>,
    series_count: AtomicUsize,
    rejected_values: AtomicU64,
    overflowed_series: AtomicU64,
    overflowed_names: AtomicU64,
}

impl std::fmt::Debug for MetricsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsCollector")
            .field("config", &self.config())
            .field("executions", &self.executions.len())
            .field("metrics", &self.families.len())
            .finish_non_exhaustive()
    }
}

#[inline]
fn mix(h: u64) -> u64 {
    let h = (h ^ (h >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    h ^ (h >> 32)
}

/// Hash of one label pair; a label set's hash is the wrapping sum, so order does not matter.
#[inline]
fn pair_hash(key_hash: u64, value_hash: u64) -> u64 {
    mix(key_hash ^ value_hash.rotate_left(23))
}

/// Key of a metric family in the families table: the name's hash, separated by kind.
#[inline]
fn family_hash(name_hash: u64, kind: MetricKind) -> u64 {
    name_hash ^ (kind as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl MetricsCollector {
    /// A collector with this config (validated first) and a random hash key for the limiter's
    /// buckets.
    pub fn new(config: MetricsConfig) -> Result<Self, MetricsError> {
        let key = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self::with_hash_key(config, key)
    }

    /// A collector whose `hash:` buckets are fixed by `key`, so the same raw value lands in the
    /// same bucket across restarts and instances sharing the key (and in tests).
    ///
    /// ```
    /// use tta_metrics::{MetricsCollector, MetricsConfig};
    /// let config = MetricsConfig { max_label_values: 1, ..Default::default() };
    /// let a = MetricsCollector::with_hash_key(config.clone(), 42)?;
    /// let b = MetricsCollector::with_hash_key(config, 42)?;
    /// for c in [&a, &b] {
    ///     c.record_execution("first", 1.0, true);
    ///     c.record_execution("second", 1.0, true);
    /// }
    /// assert_eq!(a.names(), b.names());
    /// assert!(a.names().iter().any(|n| n.starts_with("hash:")));
    /// # Ok::<(), tta_metrics::MetricsError>(())
    /// ```
    pub fn with_hash_key(config: MetricsConfig, key: u64) -> Result<Self, MetricsError> {
        config.validate()?;
        let limiter = CardinalityLimiter::with_hash_key(config.cardinality_limits(), key)?;
        Ok(Self {
            id: NEXT_COLLECTOR_ID.fetch_add(1, Ordering::Relaxed),
            enabled: AtomicBool::new(config.enabled),
            config: Mutex::new(config),
            limiter,
            executions: InsertOnlyMap::new(16),
            families: InsertOnlyMap::new(16),
            overflow_families: [
                Arc::new(Family::new(
                    MetricKind::Counter,
                    "tta_overflow_counter_total".into(),
                )),
                Arc::new(Family::new(MetricKind::Gauge, "tta_overflow_gauge".into())),
                Arc::new(Family::new(
                    MetricKind::Histogram,
                    "tta_overflow_histogram".into(),
                )),
            ],
            label_keys: InsertOnlyMap::new(16),
            help: Mutex::new(BTreeMap::new()),
            series_count: AtomicUsize::new(0),
            rejected_values: AtomicU64::new(0),
            overflowed_series: AtomicU64::new(0),
            overflowed_names: AtomicU64::new(0),
        })
    }

    /// The config in force.
    pub fn config(&self) -> MetricsConfig {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies a new config (hot reload): validated first; on error nothing changes.
    ///
    /// Limits change in place: values already kept stay kept, recorded series keep their
    /// values, a lower limit stops new admissions and a higher one lets more in.
    ///
    /// ```
    /// use tta_metrics::{MetricsCollector, MetricsConfig};
    /// let collector = MetricsCollector::new(MetricsConfig::default())?;
    /// collector.reconfigure(MetricsConfig { max_label_values: 10, ..Default::default() })?;
    /// assert_eq!(collector.cardinality_stats().max_label_values, 10);
    /// assert!(collector.reconfigure(MetricsConfig { max_label_values: 0, ..Default::default() }).is_err());
    /// assert_eq!(collector.config().max_label_values, 10);
    /// # Ok::<(), tta_metrics::MetricsError>(())
    /// ```
    pub fn reconfigure(&self, config: MetricsConfig) -> Result<(), MetricsError> {
        config.validate()?;
        let mut current = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        self.limiter.set_limits(config.cardinality_limits())?;
        self.enabled.store(config.enabled, Ordering::Relaxed);
        *current = config;
        Ok(())
    }

    /// Whether recording is on.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The limiter's keyed hash: one hash per string serves both the collector's tables and
    /// the limiter.
    #[inline]
    fn hash(&self, s: &str) -> u64 {
        self.limiter.label_hash(s).get()
    }

    /// Records one execution of primitive `name` that took `duration_ms` milliseconds.
    ///
    /// The name is limited like a label value (key [`PRIMITIVE_LABEL`]). NaN, infinite or
    /// negative durations are rejected: counted in [`ExecutionTotals::rejected_values`], not
    /// recorded. Returns whether the execution was recorded (`false` also when disabled).
    /// Lock-free and allocation-free for a known name.
    pub fn record_execution(&self, name: &str, duration_ms: f64, success: bool) -> bool {
        self.record_execution_with(None, name, duration_ms, success)
    }

    /// [`record_execution`](Self::record_execution) for a caller that records the same name
    /// again and again: `hint` remembers where the name's statistics are, so later calls skip
    /// hashing and looking up the name. Any hint works with any name and collector (a hint
    /// pointing elsewhere, e.g. shared by two names, is checked against the name, and
    /// updated); the result is always the same as `record_execution`'s.
    ///
    /// ```
    /// use tta_metrics::{ExecutionHint, MetricsCollector, MetricsConfig};
    /// let collector = MetricsCollector::new(MetricsConfig::default())?;
    /// let hint = ExecutionHint::default();
    /// for _ in 0..3 {
    ///     collector.record_execution_hinted(&hint, "checkout", 1.5, true);
    /// }
    /// collector.record_execution_hinted(&hint, "login", 0.5, false);
    /// assert_eq!(collector.metrics("checkout").unwrap().total_executions, 3);
    /// assert_eq!(collector.metrics("login").unwrap().failures, 1);
    /// # Ok::<(), tta_metrics::MetricsError>(())
    /// ```
    #[inline]
    pub fn record_execution_hinted(
        &self,
        hint: &ExecutionHint,
        name: &str,
        duration_ms: f64,
        success: bool,
    ) -> bool {
        self.record_execution_with(Some(hint), name, duration_ms, success)
    }

    fn record_execution_with(
        &self,
        hint: Option<&ExecutionHint>,
        name: &str,
        duration_ms: f64,
        success: bool,
    ) -> bool {
        if !self.enabled() {
            return false;
        }
        if !(duration_ms.is_finite() && duration_ms >= 0.0) {
            self.rejected_values.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let hinted = hint.and_then(|h| {
            let id = h.0.load(Ordering::Relaxed).checked_sub(1)?;
            self.executions
                .get(id as usize)
                .filter(|e| *e.name == *name)
        });
        let exec = match hinted {
            Some(e) => e,
            None => {
                let Some((id, e)) = self.execution(name) else {
                    return false;
                };
                // Only an entry under the name itself is remembered: one under a `hash:`
                // bucket is found through the limiter each time, as without a hint.
                if let Some(h) = hint
                    && *e.name == *name
                {
                    h.0.store(id as u64 + 1, Ordering::Relaxed);
                }
                e
            }
        };
        exec.record(duration_ms, success);
        true
    }

    fn execution(&self, name: &str) -> Option<(usize, &Execution)> {
        let hv = self.limiter.label_hash(name);
        if let Some(found) = self.executions.find_with_id(hv.get(), |e| *e.name == *name) {
            return Some(found);
        }
        let admitted = self.limiter.admit_hashed(
            PRIMITIVE_LABEL,
            self.limiter.label_hash(PRIMITIVE_LABEL),
            name,
            hv,
        );
        let h = admitted.label_hash().get();
        let limits = self.limiter.limits();
        let target = limits.max_label_values + limits.hash_buckets + 1;
        match self.executions.get_or_insert_with(
            h,
            |e| *e.name == *admitted,
            target,
            || Some(Execution::new(admitted.to_shared())),
        ) {
            // The entry's id (only this slower path pays for the second probe).
            Insert::Found(e) | Insert::Inserted(e) => {
                self.executions.find_with_id(h, |x| std::ptr::eq(x, e))
            }
            // Only after the limit was lowered below what is recorded; count it as rejected.
            Insert::Refused | Insert::Full => {
                self.rejected_values.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Statistics of one primitive, by the name it was recorded under.
    ///
    /// Names past the cardinality limit are recorded under their `hash:` bucket (see
    /// [`names`](Self::names)); looking up the raw name then returns `None`.
    pub fn metrics(&self, name: &str) -> Option<ExecutionMetrics> {
        self.executions
            .find(self.hash(name), |e| *e.name == *name)
            .map(execution_metrics)
    }

    /// Every recorded primitive name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::with_capacity(self.executions.len());
        self.executions.for_each(|e| names.push(e.name.to_string()));
        names.sort();
        names
    }

    /// Statistics of every primitive, sorted by name.
    pub fn all_metrics(&self) -> Vec<ExecutionMetrics> {
        let mut all = Vec::with_capacity(self.executions.len());
        self.executions.for_each(|e| all.push(execution_metrics(e)));
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Totals across every primitive (the guide's `total_executions`, among others).
    pub fn totals(&self) -> ExecutionTotals {
        let (mut names, mut ok, mut failed) = (0, 0, 0);
        self.executions.for_each(|e| {
            names += 1;
            ok += e.successes();
            failed += e.failures();
        });
        let total = ok + failed;
        ExecutionTotals {
            names,
            total_executions: total,
            successes: ok,
            failures: failed,
            success_rate: if total == 0 {
                0.0
            } else {
                ok as f64 / total as f64
            },
            rejected_values: self.rejected_values.load(Ordering::Relaxed),
            overflowed_series: self.overflowed_series.load(Ordering::Relaxed),
            overflowed_names: self.overflowed_names.load(Ordering::Relaxed),
        }
    }

    /// The counter `name` with these labels (values limited per key).
    ///
    /// ```
    /// # let collector = tta_metrics::MetricsCollector::new(Default::default())?;
    /// let requests = collector.counter("requests_total", &[("route", "/api"), ("method", "GET")]);
    /// requests.increment(2);
    /// // Label order does not matter.
    /// assert_eq!(collector.counter("requests_total", &[("method", "GET"), ("route", "/api")]).value(), 2);
    /// # Ok::<(), tta_metrics::MetricsError>(())
    /// ```
    #[inline]
    pub fn counter<K: AsRef<str>, V: AsRef<str>>(
        &self,
        name: &str,
        labels: &[(K, V)],
    ) -> Counter<'_> {
        match self.series(MetricKind::Counter, name, labels) {
            Some(Cell::Scalar(c)) => Counter(Some(c)),
            _ => Counter(None),
        }
    }

    /// The gauge `name` with these labels.
    ///
    /// ```
    /// # let collector = tta_metrics::MetricsCollector::new(Default::default())?;
    /// collector.gauge("queue_depth", &[("queue", "spans")]).set(42.0);
    /// assert_eq!(collector.gauge("queue_depth", &[("queue", "spans")]).value(), 42.0);
    /// # Ok::<(), tta_metrics::MetricsError>(())
    /// ```
    #[inline]
    pub fn gauge<K: AsRef<str>, V: AsRef<str>>(&self, name: &str, labels: &[(K, V)]) -> Gauge<'_> {
        match self.series(MetricKind::Gauge, name, labels) {
            Some(Cell::Scalar(c)) => Gauge(Some(c)),
            _ => Gauge(None),
        }
    }

    /// The histogram `name` with these labels (log-linear buckets; exposed with the bounds of
    /// [`exposed_bounds`](crate::exposed_bounds)).
    ///
    /// ```
    /// # let collector = tta_metrics::MetricsCollector::new(Default::default())?;
    /// let h = collector.histogram("payload_bytes", &[("route", "/api")]);
    /// assert!(h.record(512.0));
    /// assert!(!h.record(f64::NAN)); // rejected and counted
    /// assert_eq!(collector.totals().rejected_values, 1);
    /// # Ok::<(), tta_metrics::MetricsError>(())
    /// ```
    #[inline]
    pub fn histogram<K: AsRef<str>, V: AsRef<str>>(
        &self,
        name: &str,
        labels: &[(K, V)],
    ) -> Histogram<'_> {
        let hist = match self.series(MetricKind::Histogram, name, labels) {
            Some(Cell::Histogram(h)) => Some(h),
            _ => None,
        };
        Histogram {
            hist,
            rejected: &self.rejected_values,
        }
    }

    /// Sets the `# HELP` text of the metric exposed as `name` (sanitized). At most
    /// [`MAX_METRIC_NAMES`] descriptions are kept.
    pub fn describe(&self, name: &str, help: &str) {
        let mut map = self.help.lock().unwrap_or_else(PoisonError::into_inner);
        let name = sanitize_metric_name(name);
        if map.len() < MAX_METRIC_NAMES || map.contains_key(&name) {
            map.insert(name, help.to_owned());
        }
    }

    /// The counter for a prepared [`MetricKey`]: one lock-free probe of the series table
    /// with the hash the key cached, no hashing, no allocation, no lock.
    ///
    /// The key's labels go through the limiter once, on its first use with this collector
    /// (see [`MetricKey`]); the handle borrows both the collector and the key.
    ///
    /// ```
    /// use tta_metrics::{MetricKey, MetricsCollector, MetricsConfig};
    /// let collector = MetricsCollector::new(MetricsConfig::default())?;
    /// let key = MetricKey::new("requests_total", &[("route", "/api")]);
    /// for _ in 0..3 {
    ///     collector.counter_for(&key).increment(1);
    /// }
    /// // The same series as the by-name path.
    /// assert_eq!(collector.counter("requests_total", &[("route", "/api")]).value(), 3);
    /// # Ok::<(), tta_metrics::MetricsError>(())
    /// ```
    #[inline]
    pub fn counter_for<'a>(&'a self, key: &'a MetricKey) -> Counter<'a> {
        match self.series_for(MetricKind::Counter, key) {
            Some(Cell::Scalar(c)) => Counter(Some(c)),
            _ => Counter(None),
        }
    }

    /// The gauge for a prepared [`MetricKey`] (see [`counter_for`](Self::counter_for)).
    ///
    /// ```
    /// # let collector = tta_metrics::MetricsCollector::new(Default::default())?;
    /// let key = tta_metrics::MetricKey::new("queue_depth", &[("queue", "spans")]);
    /// collector.gauge_for(&key).set(7.0);
    /// assert_eq!(collector.gauge("queue_depth", &[("queue", "spans")]).value(), 7.0);
    /// # Ok::<(), tta_metrics::MetricsError>(())
    /// ```
    #[inline]
    pub fn gauge_for<'a>(&'a self, key: &'a MetricKey) -> Gauge<'a> {
        match self.series_for(MetricKind::Gauge, key) {
            Some(Cell::Scalar(g)) => Gauge(Some(g)),
            _ => Gauge(None),
        }
    }

    /// The histogram for a prepared [`MetricKey`] (see [`counter_for`](Self::counter_for)).
    ///
    /// ```
    /// # let collector = tta_metrics::MetricsCollector::new(Default::default())?;
    /// let key = tta_metrics::MetricKey::new("latency_ms", &[("route", "/api")]);
    /// assert!(collector.histogram_for(&key).record(3.5));
    /// assert!(collector.render_prometheus().contains("latency_ms_count{route=\"/api\"} 1"));
    /// # Ok::<(), tta_metrics::MetricsError>(())
    /// ```
    #[inline]
    pub fn histogram_for<'a>(&'a self, key: &'a MetricKey) -> Histogram<'a> {
        let hist = match self.series_for(MetricKind::Histogram, key) {
            Some(Cell::Histogram(h)) => Some(h),
            _ => None,
        };
        Histogram {
            hist,
            rejected: &self.rejected_values,
        }
    }

    /// The series of a prepared key: bound to this collector on first use (labels admitted,
    /// hash computed), then one probe with the cached hash and pointer comparisons.
    #[inline]
    fn series_for<'a>(&'a self, kind: MetricKind, key: &'a MetricKey) -> Option<Cell<'a>> {
        if !self.enabled() {
            return None;
        }
        let bound = key.bound.get_or_init(|| self.bind(key));
        if bound.owner != self.id {
            // Bound to another collector: take the by-name path (correct, just slower).
            return self.series(kind, &key.name, &key.labels);
        }
        let family =
            bound.families[kind.index()].get_or_init(|| Arc::clone(self.family(kind, &key.name)));
        if let (Some(id), [(k, _)]) = (bound.kept_id, &*bound.labels)
            && let Some(c) = self.by_id_cell(family, k, id)
        {
            return Some(c);
        }
        if let Some(s) = family
            .series
            .find(bound.hash, |s| s.matches_shared(&bound.labels))
        {
            return Some(s.cell());
        }
        self.insert_series(
            family,
            bound.hash,
            |s| s.matches_shared(&bound.labels),
            || Labels::from_slice(&bound.labels),
        )
        .map(Series::cell)
    }

    /// Admits a key's labels and computes its series hash, for this collector.
    #[cold]
    fn bind(&self, key: &MetricKey) -> Bound {
        let mut hash = 0u64;
        let mut kept_id = None;
        let labels: Box<[(Arc<str>, Arc<str>)]> = key
            .labels
            .iter()
            .map(|(k, v)| {
                let hk = self.limiter.label_hash(k);
                let admitted = self
                    .limiter
                    .admit_hashed(k, hk, v, self.limiter.label_hash(v));
                hash = hash.wrapping_add(pair_hash(hk.get(), admitted.label_hash().get()));
                kept_id = admitted.kept_id();
                (self.intern_key(k), admitted.to_shared())
            })
            .collect();
        Bound {
            owner: self.id,
            kept_id: kept_id.filter(|_| labels.len() == 1),
            labels,
            hash,
            families: Default::default(),
        }
    }

    /// The series for `name` + `labels`, created (within limits) if new.
    #[inline]
    fn series<K: AsRef<str>, V: AsRef<str>>(
        &self,
        kind: MetricKind,
        name: &str,
        labels: &[(K, V)],
    ) -> Option<Cell<'_>> {
        if !self.enabled() {
            return None;
        }
        let family = self.family(kind, name);
        let labels = &labels[..labels.len().min(MAX_LABELS)];
        if let [(k, v)] = labels {
            return self.series_one(family, k.as_ref(), v.as_ref());
        }
        // Each key and value is hashed once: the hashes key the series table here and the
        // limiter's tables on the slow path.
        let mut hashes = [(LabelHash::default(), LabelHash::default()); MAX_LABELS];
        let mut h = 0u64;
        for ((k, v), slot) in labels.iter().zip(hashes.iter_mut()) {
            *slot = (
                self.limiter.label_hash(k.as_ref()),
                self.limiter.label_hash(v.as_ref()),
            );
            h = h.wrapping_add(pair_hash(slot.0.get(), slot.1.get()));
        }
        // Fast path: the raw labels name a series that exists, so admission already happened.
        let raw = || labels.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
        if let Some(s) = family.series.find(h, |s| s.matches(labels.len(), raw())) {
            return Some(s.cell());
        }
        self.series_slow(family, labels, &hashes).map(Series::cell)
    }

    /// [`series`](Self::series) for one label, the usual case.
    #[inline]
    fn series_one<'a>(&'a self, family: &'a Family, k: &str, v: &str) -> Option<Cell<'a>> {
        let hv = self.limiter.label_hash(v);
        // A family whose values are mostly past the limit admits first: the lookups of the
        // raw value below would miss.
        let over = family.over_streak.load(Ordering::Relaxed) >= OVER_STREAK;
        // Fast path: a value the limiter already keeps has its series by id (no key hash).
        if !over
            && let Some(by) = family.by_id.get()
            && let Some(lk) = by.limiter_key
            && *by.key == *k
            && let Some(id) = self.limiter.kept_id(lk, v, hv)
            && let Some(c) = self.by_id_slot(family, by, id)
        {
            return Some(c);
        }
        if over
            && let Some(by) = family.by_id.get()
            && let Some(lk) = by.limiter_key
            && *by.key == *k
        {
            // The by-id key past its limit (the usual flood): admit by key id, no key hash.
            let a = self.limiter.admit_key_id(lk, v, hv);
            return self.series_admitted_one(family, k, || self.limiter.label_hash(k), a);
        }
        let hk = self.limiter.label_hash(k);
        if !over {
            // Another key's series, or a bucket series found by the raw bucket string.
            let h = pair_hash(hk.get(), hv.get());
            if let Some(s) = family
                .series
                .find(h, |s| s.matches(1, std::iter::once((k, v))))
            {
                return Some(s.cell());
            }
        }
        self.series_slow_one(family, k, hk, v, hv)
    }

    /// The by-id cell of kept value `id` of label key `key` in `family` (binding the
    /// family's by-id series to `key` if it has none yet), created within [`MAX_SERIES`];
    /// `None` when the family's by-id series are for another key or `id` is past them.
    #[inline]
    fn by_id_cell<'a>(&'a self, family: &'a Family, key: &str, id: usize) -> Option<Cell<'a>> {
        let by = match family.by_id.get() {
            Some(by) => by,
            None => family
                .by_id
                .get_or_init(|| ById::new(self.intern_key(key), self.limiter.key_id(key))),
        };
        if *by.key != *key {
            return None;
        }
        self.by_id_slot(family, by, id)
    }

    /// The cell of kept value `id` in `by` (a family's by-id series), created within
    /// [`MAX_SERIES`]; `None` when `id` is past the by-id range.
    #[inline]
    fn by_id_slot<'a>(&'a self, family: &'a Family, by: &'a ById, id: usize) -> Option<Cell<'a>> {
        let (chunk, off) = by.slot(family.kind, id)?;
        let (word, bit) = (&chunk.present[off / 64], 1u64 << (off % 64));
        if word.load(Ordering::Acquire) & bit == 0 && !self.create_by_id(word, bit) {
            self.overflowed_series.fetch_add(1, Ordering::Relaxed);
            return Some(family.overflow_series().cell());
        }
        Some(match &chunk.cells {
            ByIdCells::Scalar(v) => Cell::Scalar(&v[off]),
            ByIdCells::Histogram(v) => {
                Cell::Histogram(v[off].get_or_init(|| Box::new(LogHistogram::new())))
            }
        })
    }

    /// Marks a by-id series as existing, counted within [`MAX_SERIES`]; `false` when the
    /// series limit is reached.
    #[cold]
    fn create_by_id(&self, word: &AtomicU64, bit: u64) -> bool {
        if self
            .series_count
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                (c < MAX_SERIES).then_some(c + 1)
            })
            .is_err()
        {
            return false;
        }
        if word.fetch_or(bit, Ordering::AcqRel) & bit != 0 {
            // Another thread created it first: give the count back.
            self.series_count.fetch_sub(1, Ordering::AcqRel);
        }
        true
    }

    /// [`series_slow`](Self::series_slow) for one label (the usual over-limit case): no
    /// label arrays to set up.
    #[inline]
    fn series_slow_one<'a>(
        &'a self,
        family: &'a Family,
        k: &str,
        hk: LabelHash,
        v: &str,
        hv: LabelHash,
    ) -> Option<Cell<'a>> {
        let a = self.limiter.admit_hashed(k, hk, v, hv);
        self.series_admitted_one(family, k, || hk, a)
    }

    /// The series of one label `k` whose value the limiter admitted as `a`; `hk` gives the
    /// key's hash when the series table has to be searched.
    #[inline]
    fn series_admitted_one<'a>(
        &'a self,
        family: &'a Family,
        k: &str,
        hk: impl FnOnce() -> LabelHash,
        a: Admitted<'a>,
    ) -> Option<Cell<'a>> {
        // Written only when it changes, so a family that stays past the limit (or below it)
        // does not bounce the cache line between threads.
        let streak = family.over_streak.load(Ordering::Relaxed);
        let next = if a.is_kept() {
            streak.saturating_sub(KEPT_PENALTY)
        } else {
            (streak + 1).min(OVER_STREAK_MAX)
        };
        if next != streak {
            family.over_streak.store(next, Ordering::Relaxed);
        }
        if let Some(id) = a.kept_id()
            && let Some(c) = self.by_id_cell(family, k, id)
        {
            return Some(c);
        }
        let bucket = a.bucket_index();
        if let Some(b) = bucket
            && let Some(s) = family.cached_bucket(k, b, a.as_str().len())
        {
            return Some(s.cell());
        }
        let h = pair_hash(hk().get(), a.label_hash().get());
        let eq = |s: &Series| s.matches(1, std::iter::once((k, a.as_str())));
        if let Some((id, s)) = family.series.find_with_id(h, eq) {
            if let Some(b) = bucket {
                let buckets = self.limiter.limits().hash_buckets;
                family.cache_bucket(k, b, a.as_str().len(), id, buckets);
            }
            return Some(s.cell());
        }
        let s = self.insert_series(family, h, eq, || {
            Labels::One([(self.intern_key(k), a.to_shared())])
        });
        // A new bucket series (not the overflow series) goes into the cache too.
        if let Some(b) = bucket
            && let Some((id, _)) = family.series.find_with_id(h, eq)
        {
            let buckets = self.limiter.limits().hash_buckets;
            family.cache_bucket(k, b, a.as_str().len(), id, buckets);
        }
        s.map(Series::cell)
    }

    /// A value the series table does not know as-is: admit it (reusing its hashes), then
    /// look up the admitted label set.
    fn series_slow<'a, K: AsRef<str>, V: AsRef<str>>(
        &'a self,
        family: &'a Family,
        labels: &[(K, V)],
        hashes: &[(LabelHash, LabelHash)],
    ) -> Option<&'a Series> {
        // Admit every value; duplicate keys keep their first occurrence.
        let mut admitted: [Option<(&str, Admitted<'_>)>; MAX_LABELS] = [None; MAX_LABELS];
        let mut n = 0;
        let mut h = 0u64;
        for ((k, v), &(hk, hv)) in labels.iter().zip(hashes) {
            let (k, v) = (k.as_ref(), v.as_ref());
            if admitted[..n].iter().flatten().any(|(seen, _)| *seen == k) {
                continue;
            }
            let a = self.limiter.admit_hashed(k, hk, v, hv);
            // The limiter knows the admitted string's hash (the value's own, or the bucket's).
            h = h.wrapping_add(pair_hash(hk.get(), a.label_hash().get()));
            admitted[n] = Some((k, a));
            n += 1;
        }
        let pairs = || {
            admitted[..n]
                .iter()
                .flatten()
                .map(|(k, v)| (*k, v.as_str()))
        };
        if let Some(s) = family.series.find(h, |s| s.matches(n, pairs())) {
            return Some(s);
        }
        self.insert_series(
            family,
            h,
            |s| s.matches(n, pairs()),
            || {
                // Sized exactly: no spare capacity is allocated (or kept) per series.
                let mut labels = Vec::with_capacity(n);
                for (k, v) in admitted[..n].iter().flatten() {
                    labels.push((self.intern_key(k), v.to_shared()));
                }
                Labels::from_vec(labels)
            },
        )
    }

    /// Creates a series (within [`MAX_SERIES`]) or falls back to the family's overflow series.
    fn insert_series<'a>(
        &'a self,
        family: &'a Family,
        h: u64,
        eq: impl FnMut(&Series) -> bool,
        labels: impl FnOnce() -> Labels,
    ) -> Option<&'a Series> {
        // Series are never removed, so a full count means no insert can succeed: skip the lock.
        if self.series_count.load(Ordering::Relaxed) < MAX_SERIES {
            let make = || {
                self.series_count
                    .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                        (c < MAX_SERIES).then_some(c + 1)
                    })
                    .ok()?;
                Some(Series {
                    labels: labels(),
                    value: Value::new(family.kind),
                })
            };
            if let Insert::Found(s) | Insert::Inserted(s) =
                family.series.get_or_insert_with(h, eq, MAX_SERIES, make)
            {
                return Some(s);
            }
        }
        self.overflowed_series.fetch_add(1, Ordering::Relaxed);
        Some(family.overflow_series())
    }

    /// The shared string for label key `key` (one per distinct key, up to a bound).
    fn intern_key(&self, key: &str) -> Arc<str> {
        let h = self.hash(key);
        if let Some(k) = self.label_keys.find(h, |k| **k == *key) {
            return Arc::clone(k);
        }
        match self.label_keys.get_or_insert_with(
            h,
            |k| **k == *key,
            MAX_INTERNED_KEYS,
            || Some(Arc::from(key)),
        ) {
            Insert::Found(k) | Insert::Inserted(k) => Arc::clone(k),
            Insert::Refused | Insert::Full => Arc::from(key),
        }
    }

    #[inline]
    fn family(&self, kind: MetricKind, name: &str) -> &Arc<Family> {
        let h = family_hash(self.hash(name), kind);
        if let Some(e) = self.families.find(h, |e| e.kind == kind && *e.raw == *name) {
            return &e.family;
        }
        let make = || {
            Some(FamilyEntry {
                kind,
                raw: name.into(),
                family: self.resolve_family(kind, name),
            })
        };
        match self.families.get_or_insert_with(
            h,
            |e| e.kind == kind && *e.raw == *name,
            MAX_METRIC_NAMES,
            make,
        ) {
            Insert::Found(e) | Insert::Inserted(e) => &e.family,
            Insert::Refused | Insert::Full => {
                self.overflowed_names.fetch_add(1, Ordering::Relaxed);
                let family = &self.overflow_families[kind.index()];
                // Make sure the overflow family has its single series to record into.
                family.overflow_series();
                family
            }
        }
    }

    /// Picks the exposed family for a new (kind, raw name): the existing one with the same
    /// sanitized name and kind, or a new one whose name is unique (`_<kind>` and then a number
    /// are appended on a clash with another kind or a reserved name).
    fn resolve_family(&self, kind: MetricKind, raw: &str) -> Arc<Family> {
        let base = sanitize_metric_name(raw);
        let mut existing: Vec<(MetricKind, Arc<Family>)> = Vec::new();
        self.families
            .for_each(|e| existing.push((e.family.kind, Arc::clone(&e.family))));
        let candidates = std::iter::once(base.clone())
            .chain(std::iter::once(format!("{base}_{}", kind.as_str())))
            .chain((2..).map(|i| format!("{base}_{}_{i}", kind.as_str())));
        for candidate in candidates {
            let reserved = RESERVED.contains(&candidate.as_str())
                || self.overflow_families.iter().any(|f| *f.name == *candidate);
            match existing.iter().find(|(_, f)| *f.name == *candidate) {
                Some((k, f)) if *k == kind && !reserved => return Arc::clone(f),
                Some(_) => continue,
                None if reserved => continue,
                None => return Arc::new(Family::new(kind, candidate)),
            }
        }
        unreachable!("the numbered candidates never run out")
    }

    /// The cardinality limiter's counters (the guide's `get_cardinality_stats()`).
    pub fn cardinality_stats(&self) -> CardinalityStats {
        self.limiter.stats()
    }

    /// The limiter every label value goes through.
    pub fn limiter(&self) -> &CardinalityLimiter {
        &self.limiter
    }

    /// Every series as plain data, stamped with the system clock.
    pub fn snapshot(&self) -> MetricsSnapshot {
        self.snapshot_at(SystemClock.now_unix_nanos())
    }

    /// Every series as plain data, stamped `timestamp_unix_nanos`.
    ///
    /// Series are sorted by name and then labels; label keys are sanitized and sorted;
    /// executions appear as [`EXECUTIONS_METRIC`] and [`EXECUTION_DURATION_METRIC`], and the
    /// collector's own counters and the limiter's stats as `tta_metrics_*` and
    /// `tta_cardinality_*` series. Series whose sanitized identity coincides are merged.
    ///
    /// ```
    /// use tta_core::MetricValue;
    /// # let collector = tta_metrics::MetricsCollector::new(Default::default())?;
    /// collector.counter("jobs_total", &[("queue", "high")]).increment(3);
    /// let snap = collector.snapshot_at(7);
    /// let jobs = snap.series.iter().find(|s| s.name == "jobs_total").unwrap();
    /// assert_eq!(jobs.value, MetricValue::Counter(3));
    /// assert_eq!(snap.timestamp_unix_nanos, 7);
    /// # Ok::<(), tta_metrics::MetricsError>(())
    /// ```
    pub fn snapshot_at(&self, timestamp_unix_nanos: u64) -> MetricsSnapshot {
        let mut out = SeriesSet::default();
        self.executions.for_each(|e| {
            let p = || vec![(PRIMITIVE_LABEL.to_owned(), e.name.to_string())];
            let ok = e.ok.read();
            let failed = e.failed.get().map(|f| f.read());
            let failures = failed.as_ref().map_or(0, |f| f.count);
            for (outcome, n) in [("success", ok.count), ("failure", failures)] {
                let mut labels = p();
                labels.push(("outcome".to_owned(), outcome.to_owned()));
                out.add(EXECUTIONS_METRIC, labels, MetricValue::Counter(n));
            }
            let mut durations = ok;
            if let Some(f) = &failed {
                durations.merge(f);
            }
            out.add(EXECUTION_DURATION_METRIC, p(), Value::hist(&durations));
        });
        let mut add_family = |f: &Family| {
            let mut each = |s: &Series| {
                let labels = s
                    .labels
                    .iter()
                    .map(|(k, v)| {
                        let mut key = sanitize_label_name(k);
                        if f.kind == MetricKind::Histogram && key == "le" {
                            key.push('_');
                        }
                        (key, v.to_string())
                    })
                    .collect();
                out.add(&f.name, labels, s.value.read());
            };
            f.series.for_each(&mut each);
            if let Some(s) = f.overflow.get() {
                each(s);
            }
            if let Some(by) = f.by_id.get() {
                let mut key = sanitize_label_name(&by.key);
                if f.kind == MetricKind::Histogram && key == "le" {
                    key.push('_');
                }
                let limiter_key = by.limiter_key.or_else(|| self.limiter.key_id(&by.key));
                by.for_each(
                    |id, value| {
                        if let Some(v) = limiter_key.and_then(|k| self.limiter.kept_value(k, id)) {
                            out.add(&f.name, vec![(key.clone(), v.to_string())], value);
                        }
                    },
                    f.kind,
                );
            }
        };
        let mut seen: Vec<*const Family> = Vec::new();
        self.families.for_each(|e| {
            // Aliases share a family; visit it once.
            let ptr = Arc::as_ptr(&e.family);
            if !seen.contains(&ptr) {
                seen.push(ptr);
                add_family(&e.family);
            }
        });
        for f in &self.overflow_families {
            add_family(f);
        }
        let totals = self.totals();
        out.add(
            REJECTED_METRIC,
            vec![],
            MetricValue::Counter(totals.rejected_values),
        );
        out.add(
            DROPPED_SERIES_METRIC,
            vec![],
            MetricValue::Counter(totals.overflowed_series),
        );
        out.add(
            DROPPED_NAMES_METRIC,
            vec![],
            MetricValue::Counter(totals.overflowed_names),
        );
        let stats = self.limiter.stats();
        for (key, n) in &stats.label_cardinality {
            let labels = vec![("key".to_owned(), key.clone())];
            out.add(CARD_VALUES_METRIC, labels, MetricValue::Gauge(*n as f64));
        }
        for (key, o) in &stats.overflow {
            let labels = vec![("key".to_owned(), key.clone())];
            out.add(
                CARD_OVERFLOW_METRIC,
                labels,
                MetricValue::Counter(o.overflowed_admissions),
            );
        }
        out.add(
            CARD_BUDGET_METRIC,
            vec![],
            MetricValue::Gauge(stats.budget_usage),
        );
        MetricsSnapshot {
            timestamp_unix_nanos,
            series: out.into_series(),
        }
    }

    /// HELP texts set with [`describe`](Self::describe), plus built-in ones.
    pub(crate) fn help_for(&self, name: &str) -> Option<String> {
        let builtin = match name {
            EXECUTIONS_METRIC => {
                Some("Executions recorded with record_execution, by primitive and outcome.")
            }
            EXECUTION_DURATION_METRIC => Some("Execution durations in milliseconds, by primitive."),
            REJECTED_METRIC => {
                Some("Durations and histogram values rejected as NaN, infinite or negative.")
            }
            DROPPED_SERIES_METRIC => Some(
                "Records sent to a metric's overflow series because the series limit was reached.",
            ),
            DROPPED_NAMES_METRIC => Some(
                "Records sent to an overflow metric because the metric name limit was reached.",
            ),
            CARD_VALUES_METRIC => Some("Distinct label values kept, by label key."),
            CARD_OVERFLOW_METRIC => Some(
                "Label admissions past the cardinality limit (hashed or overflowed), by label key.",
            ),
            CARD_BUDGET_METRIC => {
                Some("Kept label values over the process-wide budget (alert at 0.8).")
            }
            _ => None,
        };
        builtin.map(str::to_owned).or_else(|| {
            self.help
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(name)
                .cloned()
        })
    }
}

impl Value {
    fn read_hist(h: &LogHistogram) -> MetricValue {
        Self::hist(&h.read())
    }

    fn hist(r: &HistogramRead) -> MetricValue {
        MetricValue::Histogram {
            bounds: exposed_bounds(),
            counts: r.exposed_counts(),
            sum: r.sum,
            count: r.count,
        }
    }
}

fn execution_metrics(e: &Execution) -> ExecutionMetrics {
    let ok = e.ok.read();
    let successes = ok.count;
    let mut r = ok;
    let mut failures = 0;
    if let Some(f) = e.failed.get() {
        let f = f.read();
        failures = f.count;
        r.merge(&f);
    }
    let total = successes + failures;
    let has = r.count > 0;
    ExecutionMetrics {
        name: e.name.to_string(),
        total_executions: total,
        successes,
        failures,
        success_rate: if total == 0 {
            0.0
        } else {
            successes as f64 / total as f64
        },
        mean_duration_ms: if has { r.sum / r.count as f64 } else { 0.0 },
        p50_duration_ms: r.quantile(0.50),
        p95_duration_ms: r.quantile(0.95),
        p99_duration_ms: r.quantile(0.99),
        min_duration_ms: if has { r.min } else { 0.0 },
        max_duration_ms: if has { r.max } else { 0.0 },
    }
}

/// Series keyed by name and sorted labels; identical identities are merged.
#[derive(Default)]
struct SeriesSet(BTreeMap<String, BTreeMap<Vec<(String, String)>, MetricValue>>);

impl SeriesSet {
    fn add(&mut self, name: &str, mut labels: Vec<(String, String)>, value: MetricValue) {
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        let family = self.0.entry(name.to_owned()).or_default();
        match family.get_mut(&labels) {
            None => {
                family.insert(labels, value);
            }
            Some(existing) => merge(existing, value),
        }
    }

    fn into_series(self) -> Vec<MetricSeries> {
        self.0
            .into_iter()
            .flat_map(|(name, family)| {
                family.into_iter().map(move |(labels, value)| MetricSeries {
                    name: name.clone(),
                    labels,
                    value,
                })
            })
            .collect()
    }
}

fn merge(into: &mut MetricValue, from: MetricValue) {
    match (into, from) {
        (MetricValue::Counter(a), MetricValue::Counter(b)) => *a += b,
        (
            MetricValue::Histogram {
                counts, sum, count, ..
            },
            MetricValue::Histogram {
                counts: c2,
                sum: s2,
                count: n2,
                ..
            },
        ) => {
            for (a, b) in counts.iter_mut().zip(c2) {
                *a += b;
            }
            *sum += s2;
            *count += n2;
        }
        (into, from) => *into = from,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(k: &str, v: &str) -> Label {
        (Arc::from(k), Arc::from(v))
    }

    #[test]
    fn one_label_is_inline_and_more_are_boxed_at_their_size() {
        let one = Labels::from_vec(vec![label("route", "/api")]);
        assert!(matches!(one, Labels::One(_)));
        assert_eq!(&*one[0].1, "/api");
        let two = Labels::from_vec(vec![label("a", "1"), label("b", "2")]);
        assert!(matches!(&two, Labels::Many(b) if b.len() == 2));
        assert_eq!(
            two.iter().map(|(k, _)| &**k).collect::<Vec<_>>(),
            vec!["a", "b"],
            "order kept"
        );
        assert!(Labels::from_vec(Vec::new()).is_empty());
        let shared = [label("route", "/api")];
        match Labels::from_slice(&shared) {
            Labels::One([(k, v)]) => {
                assert!(Arc::ptr_eq(&k, &shared[0].0) && Arc::ptr_eq(&v, &shared[0].1));
            }
            Labels::Many(_) => panic!("one label must be inline"),
        }
        // The inline form costs no more room in a series than a box and a pointer pair.
        assert!(std::mem::size_of::<Labels>() <= std::mem::size_of::<Label>() + 8);
    }

    #[test]
    fn by_id_chunks_cover_every_id_once() {
        let mut next = 0;
        for c in 0..4 {
            for off in 0..BY_ID_FIRST << c {
                assert_eq!(by_id_locate(next), (c, off), "id {next}");
                next += 1;
            }
        }
    }

    #[test]
    fn kept_one_label_values_live_by_id_and_everything_is_exported() {
        let config = MetricsConfig {
            max_label_values: 3,
            ..Default::default()
        };
        let c = MetricsCollector::with_hash_key(config, 7).unwrap();
        let family = |kind, name| Arc::clone(c.family(kind, name));
        // Kept values of the first key go by id, through the by-name and the prepared path.
        for route in ["/a", "/b", "/a"] {
            c.counter("requests_total", &[("route", route)])
                .increment(1);
        }
        let key = MetricKey::new("requests_total", &[("route", "/b")]);
        c.counter_for(&key).increment(10);
        let requests = family(MetricKind::Counter, "requests_total");
        let by = requests.by_id.get().expect("bound to the first kept key");
        assert_eq!(&*by.key, "route");
        assert_eq!(requests.series.len(), 0, "no table entry for by-id series");
        assert_eq!(c.counter("requests_total", &[("route", "/a")]).value(), 2);
        assert_eq!(c.counter("requests_total", &[("route", "/b")]).value(), 11);
        // Another key, two labels, and values past the limit use the table.
        c.counter("requests_total", &[("method", "GET")])
            .increment(3);
        c.counter("requests_total", &[("route", "/a"), ("method", "GET")])
            .increment(4);
        for route in ["/c", "/d", "/e", "/f"] {
            c.counter("requests_total", &[("route", route)])
                .increment(1);
        }
        assert!(requests.series.len() >= 3);
        // Gauges and histograms by id.
        c.gauge("depth", &[("queue", "q1")]).set(2.5);
        assert_eq!(c.gauge("depth", &[("queue", "q1")]).value(), 2.5);
        assert!(c.histogram("latency", &[("le", "x")]).record(4.0));
        assert!(family(MetricKind::Gauge, "depth").by_id.get().is_some());
        assert!(
            family(MetricKind::Histogram, "latency")
                .by_id
                .get()
                .is_some()
        );

        let snap = c.snapshot_at(1);
        let find = |name: &str, labels: &[(&str, &str)]| {
            snap.series
                .iter()
                .find(|s| {
                    s.name == name
                        && s.labels.len() == labels.len()
                        && labels
                            .iter()
                            .all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
                })
                .map(|s| s.value.clone())
        };
        assert_eq!(
            find("requests_total", &[("route", "/a")]),
            Some(MetricValue::Counter(2))
        );
        assert_eq!(
            find("requests_total", &[("route", "/b")]),
            Some(MetricValue::Counter(11))
        );
        assert_eq!(
            find("requests_total", &[("method", "GET")]),
            Some(MetricValue::Counter(3))
        );
        assert_eq!(
            find("requests_total", &[("route", "/a"), ("method", "GET")]),
            Some(MetricValue::Counter(4))
        );
        assert_eq!(
            find("depth", &[("queue", "q1")]),
            Some(MetricValue::Gauge(2.5))
        );
        match find("latency", &[("le_", "x")]) {
            Some(MetricValue::Histogram { count, .. }) => assert_eq!(count, 1),
            other => panic!("histogram by id missing: {other:?}"),
        }
        // Every increment is somewhere: 2 + 11 + 3 + 4 + 4 over-limit ones.
        let total: u64 = snap
            .series
            .iter()
            .filter(|s| s.name == "requests_total")
            .map(|s| match s.value {
                MetricValue::Counter(n) => n,
                _ => 0,
            })
            .sum();
        assert_eq!(total, 24);
    }
}
