//! The OpenTelemetry SDK adapter: decisions equal ours, `th` in exported span contexts.

use std::sync::{Arc, Mutex};

use opentelemetry::trace::{SpanId, TraceId, Tracer, TracerProvider};
use opentelemetry_sdk::trace::{
    IdGenerator, InMemorySpanExporter, RandomIdGenerator, SdkTracerProvider,
};
use tta_observability::otel::TtaSampler;
use tta_observability::sampling::{CompositeSampler, SamplingConfig, Threshold};

#[derive(Debug, Clone, Default)]
struct Recording {
    ids: Arc<Mutex<Vec<TraceId>>>,
}

impl IdGenerator for Recording {
    fn new_trace_id(&self) -> TraceId {
        let id = RandomIdGenerator::default().new_trace_id();
        self.ids.lock().unwrap().push(id);
        id
    }
    fn new_span_id(&self) -> SpanId {
        RandomIdGenerator::default().new_span_id()
    }
}

#[test]
fn decisions_equal_ours_and_th_is_in_the_trace_state() {
    let config = SamplingConfig {
        default_rate: 0.25,
        adaptive_enabled: false,
        ..Default::default()
    };
    let exporter = InMemorySpanExporter::default();
    let ids = Recording::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(TtaSampler::new(config.clone()))
        .with_id_generator(ids.clone())
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("adapter-test");
    for _ in 0..2_000 {
        tracer.in_span("op", |_| {});
    }
    let exported = exporter.get_finished_spans().unwrap();
    let ours = CompositeSampler::new(config);
    let expected: Vec<TraceId> = ids
        .ids
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|id| {
            ours.should_sample_head(tta_observability::TraceId::from_bytes(id.to_bytes()), None)
                .is_sampled()
        })
        .collect();
    let got: Vec<TraceId> = exported.iter().map(|s| s.span_context.trace_id()).collect();
    assert_eq!(got, expected);
    assert!((300..700).contains(&got.len()), "{}", got.len());
    let th = Threshold::from_probability(0.25).unwrap().to_string();
    for span in &exported {
        assert_eq!(
            span.span_context.trace_state().get("ot"),
            Some(format!("th:{th}").as_str())
        );
    }
}
