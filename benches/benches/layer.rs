//! Per-request overhead of tracing instrumentation at 5% sampling on a ~2 µs request:
//! no instrumentation (`baseline`), the bare `tracing` registry (`peer-registry`), our layer
//! (`ours`), and `tracing-opentelemetry` over `opentelemetry_sdk` with
//! ParentBased(TraceIdRatioBased(0.05)), a BatchSpanProcessor and a no-op exporter
//! (`peer-tracing-opentelemetry`). `cargo xtask bench` reports the ratio of added costs
//! (time minus `baseline`).
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
};
use tracing_subscriber::layer::SubscriberExt;
use tta_observability::{Observability, ObservabilityConfig};

#[derive(Debug)]
struct NoopExporter;

impl SpanExporter for NoopExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        black_box(batch);
        std::future::ready(Ok(()))
    }
}

/// About 2 µs of work.
fn work() -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..1_400u64 {
        x = black_box(x.rotate_left(7) ^ i).wrapping_mul(0x2545_f491_4f6c_dd1d);
    }
    x
}

fn request() -> u64 {
    let _span = tracing::info_span!("GET /api/endpoint", route = "/api/endpoint").entered();
    work()
}

fn layer(c: &mut Criterion) {
    let mut config = ObservabilityConfig::from_environment("production").expect("preset");
    config.tracing.sampling.default_rate = 0.05;
    config.tracing.sampling.adaptive_enabled = false;
    config.tracing.sampling.straggler_delay_ms = 10;
    let obs = Observability::builder()
        .config(config)
        .without_store()
        .build()
        .expect("runtime starts");

    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            0.05,
        ))))
        .with_span_processor(BatchSpanProcessor::builder(NoopExporter).build())
        .build();
    let otel_layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));

    let mut g = c.benchmark_group("layer/request_overhead");
    g.measurement_time(Duration::from_secs(4));
    g.bench_function("baseline", |b| b.iter(work));
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        g.bench_function("peer-registry", |b| b.iter(request));
    });
    tracing::subscriber::with_default(tracing_subscriber::registry().with(obs.layer()), || {
        g.bench_function("ours", |b| b.iter(request));
    });
    tracing::subscriber::with_default(tracing_subscriber::registry().with(otel_layer), || {
        g.bench_function("peer-tracing-opentelemetry", |b| b.iter(request));
    });
    g.finish();

    let stats = obs.pipeline().map(|p| p.stats());
    if let Some(s) = stats {
        tta_benches::report_figure(
            "layer/spans_dropped_queue_full",
            s.dropped_queue_full as f64,
            "spans",
            None,
            "report only",
            true,
        );
    }
    obs.shutdown(Duration::from_secs(5));
    let _ = provider.shutdown();
}

criterion_group!(benches, layer);
criterion_main!(benches);
