use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Serialize};
use tta_cardinality::map::{Insert, InsertOnlyMap};
use tta_cardinality::{Admitted, CardinalityLimiter, CardinalityStats};
use tta_core::{Clock, MetricSeries, MetricValue, MetricsSnapshot, SystemClock};
use twox_hash::XxHash3_64;

use crate::histogram::{LogHistogram, exposed_bounds};
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

struct Series {
    /// Raw label keys with their admitted values, in the order first seen (deduplicated).
    labels: Box<[(Arc<str>, Arc<str>)]>,
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
}

struct Family {
    kind: MetricKind,
    /// Sanitized, unique exposed name.
    name: Box<str>,
    series: InsertOnlyMap<Series>,
    overflow: OnceLock<Series>,
    /// Interned label keys, so series of a family share their key strings.
    keys: Mutex<Vec<Arc<str>>>,
}

impl Family {
    fn new(kind: MetricKind, name: String) -> Self {
        Self {
            kind,
            name: name.into(),
            series: InsertOnlyMap::new(16),
            overflow: OnceLock::new(),
            keys: Mutex::new(Vec::new()),
        }
    }

    fn overflow_series(&self) -> &Series {
        self.overflow.get_or_init(|| Series {
            labels: Box::new([(Arc::from(OVERFLOW_LABEL), Arc::from("true"))]),
            value: Value::new(self.kind),
        })
    }

    fn intern(&self, key: &str) -> Arc<str> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(k) = keys.iter().find(|k| ***k == *key) {
            return Arc::clone(k);
        }
        let k: Arc<str> = Arc::from(key);
        if keys.len() < MAX_LABELS * 4 {
            keys.push(Arc::clone(&k));
        }
        k
    }
}

struct FamilyEntry {
    kind: MetricKind,
    raw: Box<str>,
    family: Arc<Family>,
}

struct Execution {
    name: Arc<str>,
    successes: AtomicU64,
    failures: AtomicU64,
    durations: LogHistogram,
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
    config: Mutex<MetricsConfig>,
    enabled: AtomicBool,
    limiter: CardinalityLimiter,
    seed: u64,
    executions: InsertOnlyMap<Execution>,
    families: InsertOnlyMap<FamilyEntry>,
    overflow_families: [Family; 3],
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
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Ok(Self {
            enabled: AtomicBool::new(config.enabled),
            config: Mutex::new(config),
            limiter,
            seed,
            executions: InsertOnlyMap::new(16),
            families: InsertOnlyMap::new(16),
            overflow_families: [
                Family::new(MetricKind::Counter, "tta_overflow_counter_total".into()),
                Family::new(MetricKind::Gauge, "tta_overflow_gauge".into()),
                Family::new(MetricKind::Histogram, "tta_overflow_histogram".into()),
            ],
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

    #[inline]
    fn hash(&self, s: &str) -> u64 {
        XxHash3_64::oneshot_with_seed(self.seed, s.as_bytes())
    }

    #[inline]
    fn pair_hash(&self, k: &str, v: &str) -> u64 {
        mix(self.hash(k) ^ self.hash(v).rotate_left(23))
    }

    /// Records one execution of primitive `name` that took `duration_ms` milliseconds.
    ///
    /// The name is limited like a label value (key [`PRIMITIVE_LABEL`]). NaN, infinite or
    /// negative durations are rejected: counted in [`ExecutionTotals::rejected_values`], not
    /// recorded. Returns whether the execution was recorded (`false` also when disabled).
    /// Lock-free and allocation-free for a known name.
    pub fn record_execution(&self, name: &str, duration_ms: f64, success: bool) -> bool {
        if !self.enabled() {
            return false;
        }
        if !(duration_ms.is_finite() && duration_ms >= 0.0) {
            self.rejected_values.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let Some(exec) = self.execution(name) else {
            return false;
        };
        exec.durations.record(duration_ms);
        if success {
            exec.successes.fetch_add(1, Ordering::Relaxed);
        } else {
            exec.failures.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    fn execution(&self, name: &str) -> Option<&Execution> {
        if let Some(e) = self.executions.find(self.hash(name), |e| *e.name == *name) {
            return Some(e);
        }
        let admitted = self.limiter.admit(PRIMITIVE_LABEL, name);
        let h = self.hash(&admitted);
        let limits = self.limiter.limits();
        let target = limits.max_label_values + limits.hash_buckets + 1;
        match self.executions.get_or_insert_with(
            h,
            |e| *e.name == *admitted,
            target,
            || {
                Some(Execution {
                    name: admitted.to_shared(),
                    successes: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    durations: LogHistogram::new(),
                })
            },
        ) {
            Insert::Found(e) | Insert::Inserted(e) => Some(e),
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
            ok += e.successes.load(Ordering::Relaxed);
            failed += e.failures.load(Ordering::Relaxed);
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
        match self
            .series(MetricKind::Counter, name, labels)
            .map(|s| &s.value)
        {
            Some(Value::Counter(c)) => Counter(Some(c)),
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
        match self
            .series(MetricKind::Gauge, name, labels)
            .map(|s| &s.value)
        {
            Some(Value::Gauge(g)) => Gauge(Some(g)),
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
        let hist = match self
            .series(MetricKind::Histogram, name, labels)
            .map(|s| &s.value)
        {
            Some(Value::Histogram(h)) => Some(&**h),
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

    /// The series for `name` + `labels`, created (within limits) if new.
    #[inline]
    fn series<K: AsRef<str>, V: AsRef<str>>(
        &self,
        kind: MetricKind,
        name: &str,
        labels: &[(K, V)],
    ) -> Option<&Series> {
        if !self.enabled() {
            return None;
        }
        let family = self.family(kind, name);
        let labels = &labels[..labels.len().min(MAX_LABELS)];
        // Fast path: the raw labels name a series that exists, so admission already happened.
        let raw = || labels.iter().map(|(k, v)| (k.as_ref(), v.as_ref()));
        let h = raw().fold(0u64, |acc, (k, v)| acc.wrapping_add(self.pair_hash(k, v)));
        if let Some(s) = family.series.find(h, |s| s.matches(labels.len(), raw())) {
            return Some(s);
        }
        self.series_slow(family, labels)
    }

    fn series_slow<'a, K: AsRef<str>, V: AsRef<str>>(
        &'a self,
        family: &'a Family,
        labels: &[(K, V)],
    ) -> Option<&'a Series> {
        // Admit every value; duplicate keys keep their first occurrence.
        let mut admitted: [Option<(&str, Admitted<'_>)>; MAX_LABELS] = [None; MAX_LABELS];
        let mut n = 0;
        for (k, v) in labels {
            let k = k.as_ref();
            if admitted[..n].iter().flatten().any(|(seen, _)| *seen == k) {
                continue;
            }
            admitted[n] = Some((k, self.limiter.admit(k, v.as_ref())));
            n += 1;
        }
        let pairs = || {
            admitted[..n]
                .iter()
                .flatten()
                .map(|(k, v)| (*k, v.as_str()))
        };
        let h = pairs().fold(0u64, |acc, (k, v)| acc.wrapping_add(self.pair_hash(k, v)));
        if let Some(s) = family.series.find(h, |s| s.matches(n, pairs())) {
            return Some(s);
        }
        let make = || {
            self.series_count
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                    (c < MAX_SERIES).then_some(c + 1)
                })
                .ok()?;
            let labels: Box<[(Arc<str>, Arc<str>)]> = admitted[..n]
                .iter()
                .flatten()
                .map(|(k, v)| (family.intern(k), v.to_shared()))
                .collect();
            Some(Series {
                labels,
                value: Value::new(family.kind),
            })
        };
        match family
            .series
            .get_or_insert_with(h, |s| s.matches(n, pairs()), MAX_SERIES, make)
        {
            Insert::Found(s) | Insert::Inserted(s) => Some(s),
            Insert::Refused | Insert::Full => {
                self.overflowed_series.fetch_add(1, Ordering::Relaxed);
                Some(family.overflow_series())
            }
        }
    }

    #[inline]
    fn family(&self, kind: MetricKind, name: &str) -> &Family {
        let h = self.hash(name) ^ (kind as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
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
            for (outcome, c) in [("success", &e.successes), ("failure", &e.failures)] {
                let mut labels = p();
                labels.push(("outcome".to_owned(), outcome.to_owned()));
                out.add(
                    EXECUTIONS_METRIC,
                    labels,
                    MetricValue::Counter(c.load(Ordering::Relaxed)),
                );
            }
            out.add(
                EXECUTION_DURATION_METRIC,
                p(),
                Value::read_hist(&e.durations),
            );
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
        let r = h.read();
        MetricValue::Histogram {
            bounds: exposed_bounds(),
            counts: r.exposed_counts(),
            sum: r.sum,
            count: r.count,
        }
    }
}

fn execution_metrics(e: &Execution) -> ExecutionMetrics {
    let r = e.durations.read();
    let successes = e.successes.load(Ordering::Relaxed);
    let failures = e.failures.load(Ordering::Relaxed);
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
