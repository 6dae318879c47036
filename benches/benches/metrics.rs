//! tta-metrics / tta-cardinality: labelled counter increments with cardinality limits on,
//! beside metrics-util's Registry, prometheus-client's Family and the OpenTelemetry SDK counter
//! with a cardinality limit; plus memory figures.
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{
    Instrument, PeriodicReader, SdkMeterProvider, Stream, Temporality,
};
use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
use tta_metrics::{MetricKey, MetricsCollector, MetricsConfig};

#[global_allocator]
static A: tta_benches::CountingAlloc = tta_benches::CountingAlloc;

const LIMIT: usize = 100;

/// An exporter that drops everything: the SDK needs a reader for its aggregation to run, and
/// the periodic reader's hourly interval never fires during a bench.
struct NullExporter;

impl PushMetricExporter for NullExporter {
    async fn export(&self, _: &ResourceMetrics) -> OTelSdkResult {
        Ok(())
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: std::time::Duration) -> OTelSdkResult {
        Ok(())
    }
    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

fn otel_counter() -> (SdkMeterProvider, opentelemetry::metrics::Counter<u64>) {
    let provider = SdkMeterProvider::builder()
        .with_reader(
            PeriodicReader::builder(NullExporter)
                .with_interval(std::time::Duration::from_secs(3600))
                .build(),
        )
        .with_view(|_: &Instrument| Stream::builder().with_cardinality_limit(LIMIT).build().ok())
        .build();
    let counter = provider
        .meter("bench")
        .u64_counter("requests_total")
        .build();
    (provider, counter)
}

fn known_series(c: &mut Criterion) {
    let mut g = c.benchmark_group("metrics/counter_known_series");

    let collector = MetricsCollector::new(MetricsConfig::default()).expect("valid config");
    collector
        .counter("requests_total", &[("route", "/api")])
        .increment(1);
    // The fair peer of metrics-util's pre-hashed static `Key`: a key prepared once (labels
    // admitted through the limiter on first use, hash cached), then one probe per increment.
    let key = MetricKey::new("requests_total", &[("route", "/api")]);
    collector.counter_for(&key).increment(1);
    g.bench_function("ours", |b| {
        b.iter(|| collector.counter_for(black_box(&key)).increment(1))
    });
    // A handle kept by the caller: the increment alone.
    let handle = collector.counter("requests_total", &[("route", "/api")]);
    g.bench_function("ours-handle", |b| {
        b.iter(|| black_box(&handle).increment(1))
    });
    // By name and label strings, hashed on every call.
    g.bench_function("ours-dynamic", |b| {
        b.iter(|| {
            collector
                .counter(
                    black_box("requests_total"),
                    &[(black_box("route"), black_box("/api"))],
                )
                .increment(1)
        })
    });

    // The `counter!("requests_total", "route" => "/api")` macro path: a static key with its
    // hash computed once, looked up in the registry.
    static LABELS: [metrics::Label; 1] = [metrics::Label::from_static_parts("route", "/api")];
    static KEY: metrics::Key = metrics::Key::from_static_parts("requests_total", &LABELS);
    let registry = metrics_util::registry::Registry::atomic();
    g.bench_function("peer-metrics-util", |b| {
        b.iter(|| {
            registry.get_or_create_counter(black_box(&KEY), |c| c.fetch_add(1, Ordering::Relaxed))
        })
    });

    let family: prometheus_client::metrics::family::Family<
        Vec<(&'static str, &'static str)>,
        prometheus_client::metrics::counter::Counter,
    > = Default::default();
    let labels = vec![("route", "/api")];
    g.bench_function("peer-prometheus-client", |b| {
        b.iter(|| family.get_or_create(black_box(&labels)).inc())
    });

    let (_provider, counter) = otel_counter();
    let attrs = [KeyValue::new("route", "/api")];
    g.bench_function("peer-otel", |b| {
        b.iter(|| counter.add(1, black_box(&attrs)))
    });
    g.finish();
}

/// 10 000 values: the first 100 are kept, and the stream visits them so that 99 of every 100
/// increments carry a value past the limit.
fn over_limit_values() -> Vec<Arc<str>> {
    (0..10_000)
        .map(|i| {
            let id = if i % 100 == 0 { i / 100 } else { LIMIT + i };
            Arc::from(format!("user-{id}"))
        })
        .collect()
}

fn over_limit(c: &mut Criterion) {
    let values = over_limit_values();
    let mut g = c.benchmark_group("metrics/over_limit_99pct");

    let collector = MetricsCollector::new(MetricsConfig::default()).expect("valid config");
    for v in &values {
        collector
            .counter("logins_total", &[("user_id", &**v)])
            .increment(1);
    }
    let mut i = 0;
    g.bench_function("ours", |b| {
        b.iter(|| {
            i = (i + 1) % values.len();
            collector
                .counter("logins_total", &[("user_id", &*values[i])])
                .increment(1)
        })
    });
    // The goal's baseline, like for like: the same by-name call on a known (kept) series.
    let kept = Arc::clone(&values[0]);
    g.bench_function("ours-known-series-by-name", |b| {
        b.iter(|| {
            collector
                .counter(
                    black_box("logins_total"),
                    &[(black_box("user_id"), black_box(&*kept))],
                )
                .increment(1)
        })
    });
    over_limit_ratio(&collector, &values);

    let (_provider, counter) = otel_counter();
    let attrs: Vec<[KeyValue; 1]> = values
        .iter()
        .map(|v| [KeyValue::new("user_id", Arc::clone(v))])
        .collect();
    for a in &attrs {
        counter.add(1, a);
    }
    let mut i = 0;
    g.bench_function("peer-otel", |b| {
        b.iter(|| {
            i = (i + 1) % attrs.len();
            counter.add(1, &attrs[i])
        })
    });
    g.finish();
}

/// The over-limit by-name call against the known-series by-name call, timed in alternating
/// rounds in this process (so both see the same machine load); the median ratio is the goal's
/// figure.
fn over_limit_ratio(collector: &MetricsCollector, values: &[Arc<str>]) {
    if tta_benches::filtered_out("metrics/over_limit_99pct") {
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, per_round) = if quick { (7, 200_000) } else { (15, 1_000_000) };
    let kept = &*values[0];
    let mut i = 0;
    let ns = tta_benches::alternating_rounds(
        rounds,
        per_round,
        &mut [
            &mut || {
                i = (i + 1) % values.len();
                collector
                    .counter("logins_total", &[("user_id", &*values[i])])
                    .increment(1);
            },
            &mut || {
                collector
                    .counter(
                        black_box("logins_total"),
                        &[(black_box("user_id"), black_box(kept))],
                    )
                    .increment(1);
            },
        ],
    );
    let ratios: Vec<f64> = ns[0].iter().zip(&ns[1]).map(|(o, k)| o / k).collect();
    let ratio = tta_benches::median(&ratios);
    eprintln!(
        "metrics/over_limit_99pct: over-limit {:.1} ns, known series {:.1} ns by name (medians of {rounds} rounds)",
        tta_benches::median(&ns[0]),
        tta_benches::median(&ns[1])
    );
    tta_benches::report_figure(
        "metrics/over_limit_vs_known_by_name",
        ratio,
        "x",
        None,
        "<= 1.5x the by-name known-series call",
        ratio <= 1.5,
    );
}

fn memory_figures() {
    // Heap bytes per admitted (kept) label value in the limiter, value strings included.
    let values: Vec<String> = (0..LIMIT).map(|i| format!("user-{i:05}")).collect();
    let limiter = CardinalityLimiter::new(CardinalityLimits::default()).expect("valid limits");
    limiter.admit("user_id", "warm-up"); // the key's own state is not per-value
    let before = tta_benches::allocated_bytes();
    for v in &values[..LIMIT - 1] {
        black_box(limiter.admit("user_id", v));
    }
    let per_value = (tta_benches::allocated_bytes() - before) as f64 / (LIMIT - 1) as f64;
    tta_benches::report_figure(
        "metrics/limiter_heap_bytes_per_kept_value",
        per_value,
        "B",
        None,
        "<= 100 B",
        per_value <= 100.0,
    );

    // Heap bytes per new labelled counter series in the collector (limiter included), beside
    // metrics-util's Registry holding the same keys.
    let collector = MetricsCollector::new(MetricsConfig::default()).expect("valid config");
    collector
        .counter("requests_total", &[("route", "warm-up")])
        .increment(1);
    let before = tta_benches::allocated_bytes();
    for v in &values[..LIMIT - 1] {
        collector
            .counter("requests_total", &[("route", v.as_str())])
            .increment(1);
    }
    let ours = (tta_benches::allocated_bytes() - before) as f64 / (LIMIT - 1) as f64;
    let keys: Vec<metrics::Key> = values
        .iter()
        .map(|v| {
            metrics::Key::from_parts(
                "requests_total",
                vec![metrics::Label::new("route", v.clone())],
            )
        })
        .collect();
    let registry = metrics_util::registry::Registry::atomic();
    registry.get_or_create_counter(&keys[0], |c| c.fetch_add(1, Ordering::Relaxed));
    let before = tta_benches::allocated_bytes();
    for k in &keys[1..] {
        registry.get_or_create_counter(k, |c| c.fetch_add(1, Ordering::Relaxed));
    }
    // The registry clones the caller's key; count that copy as the series' memory.
    let peer = (tta_benches::allocated_bytes() - before) as f64 / (LIMIT - 1) as f64;
    tta_benches::report_figure(
        "metrics/collector_heap_bytes_per_series",
        ours,
        "B",
        Some(("peer-metrics-util", peer)),
        "<= 100 B",
        ours <= 100.0,
    );

    // Total heap held after 10^6 distinct user_id values through one labelled counter.
    let before = tta_benches::allocated_bytes();
    let collector = MetricsCollector::new(MetricsConfig::default()).expect("valid config");
    let mut value = String::with_capacity(32);
    let mut after_limit = 0;
    for i in 0..1_000_000u32 {
        use std::fmt::Write as _;
        value.clear();
        let _ = write!(value, "user-{i}");
        collector
            .counter("logins_total", &[("user_id", value.as_str())])
            .increment(1);
        if i == 10_000 {
            after_limit = tta_benches::allocated_bytes() - before;
        }
    }
    let total = (tta_benches::allocated_bytes() - before) as f64;
    let kib = total / 1024.0;
    tta_benches::report_figure(
        "metrics/heap_after_1e6_distinct_values",
        kib,
        "KiB",
        None,
        "constant past the limit",
        total as u64 == after_limit,
    );
}

fn benches(c: &mut Criterion) {
    memory_figures();
    known_series(c);
    over_limit(c);
}

criterion_group!(metrics_benches, benches);
criterion_main!(metrics_benches);
