//! A configuration change reaches every running part in the same operation.

use std::time::Duration;

use tta_observability::{Observability, ObservabilityConfig, TraceId};

use crate::common::wait_for;

#[test]
fn reload_reaches_sampler_limits_pipeline_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let obs = Observability::builder()
        .config(ObservabilityConfig::from_environment("production").unwrap())
        .store_dir(dir.path())
        .build()
        .unwrap();
    obs.update_config(|c| {
        c.tracing.sampling.adaptive_enabled = false;
        c.tracing.sampling.default_rate = 0.5;
        c.tracing.batch_size = 128;
        c.metrics.max_label_values = 7;
        c.health.min_sampling_rate = 0.6;
    })
    .unwrap();
    // All in force when update_config returns: no waiting.
    assert_eq!(obs.sampler().current_rate(), 0.5);
    assert_eq!(obs.metrics().config().max_label_values, 7);
    assert_eq!(obs.pipeline().unwrap().config().batch_size, 128);
    // The health rule reads the new threshold: 0.5 is now "below the minimum".
    let report = obs.health().check_health();
    assert!(report.message.contains("sampling"), "{}", report.message);

    // The limiter applies the new limit to new values at once.
    for i in 0..20 {
        obs.metrics()
            .counter("requests_total", &[("user_id", format!("u{i}").as_str())])
            .increment(1);
    }
    assert_eq!(
        obs.metrics().cardinality_stats().label_cardinality["user_id"],
        7
    );
    obs.shutdown(Duration::from_secs(2));
}

#[test]
fn measured_overhead_is_exposed_in_sampling_status() {
    let mut config = ObservabilityConfig::from_environment("production").unwrap();
    config.tracing.sampling.adaptive_adjustment_interval_seconds = 0.1;
    let obs = Observability::builder()
        .config(config)
        .without_store()
        .build()
        .unwrap();
    // Keep the process busy so its CPU time advances between samples.
    wait_for("an overhead measurement", || {
        let mut x = 0u64;
        for i in 0..200_000u64 {
            x = std::hint::black_box(x.wrapping_add(i * i));
        }
        let _ = obs.head_decision(TraceId::random());
        obs.sampling_status()["measured_overhead"].is_number()
    });
    let overhead = obs.sampling_status()["measured_overhead"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&overhead), "{overhead}");
    obs.shutdown(Duration::from_secs(1));
}

/// Manual instrumentation's local decision: slow and error traces are kept whole with the
/// always-threshold, head-kept ones carry the head's threshold, the rest are only counted.
#[test]
fn local_traces_are_decided_whole_and_accounted() {
    use tta_observability::core::{Span, SpanId, SpanStatus};
    let dir = tempfile::tempdir().unwrap();
    let mut config = ObservabilityConfig::from_environment("production").unwrap();
    config.tracing.sampling.adaptive_enabled = false;
    config.tracing.sampling.default_rate = 0.25;
    config.tracing.export_interval_seconds = 0.1;
    let obs = Observability::builder()
        .config(config)
        .store_dir(dir.path())
        .build()
        .unwrap();
    // Spans of now: the runtime enforces the 7-day trace TTL on the store while it runs.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let trace = |root_ms: u64, error: bool| {
        let trace_id = TraceId::random();
        let root = Span {
            trace_id,
            span_id: SpanId::random(),
            name: "GET /cart".into(),
            start_unix_nanos: start,
            end_unix_nanos: start + root_ms * 1_000_000,
            ..Span::default()
        };
        let child = Span {
            span_id: SpanId::random(),
            parent_span_id: Some(root.span_id),
            name: "SELECT".into(),
            status: if error {
                SpanStatus::Error("boom".into())
            } else {
                SpanStatus::Unset
            },
            ..root.clone()
        };
        (trace_id, vec![child, root])
    };
    let (mut kept, mut dropped_spans) = (Vec::new(), 0u64);
    for i in 0..400u64 {
        let (id, spans) = trace(10, false);
        let (id, spans) = match i % 40 {
            0 => trace(5_000, false), // slow
            1 => trace(10, true),     // an error in a child
            _ => (id, spans),
        };
        let head = obs.head_decision(id);
        let (result, refused) = obs.submit_local_trace(spans, &head);
        assert_eq!(refused, 0);
        if i % 40 < 2 {
            assert!(result.is_sampled(), "trace {i}: {result:?}");
        }
        assert_eq!(
            result.is_sampled() && i % 40 >= 2,
            head.is_sampled() && i % 40 >= 2
        );
        if result.is_sampled() {
            kept.push((id, result));
        } else {
            dropped_spans += 2;
        }
    }
    obs.flush(Duration::from_secs(10)).unwrap();
    let store = obs.store().unwrap();
    for (id, result) in &kept {
        let spans = store.get_trace(id).unwrap().expect("kept trace stored");
        assert_eq!(spans.len(), 2);
        let th = result.threshold.map(|t| t.raw());
        assert!(spans.iter().all(|s| s.sampling_threshold == th));
    }
    let stats = obs.pipeline().unwrap().stats();
    assert_eq!(stats.sampled_out, dropped_spans);
    assert_eq!(stats.exported_spans, 2 * kept.len() as u64);
    assert!(kept.len() >= 20 && kept.len() < 200, "{}", kept.len());
    obs.shutdown(Duration::from_secs(2));
}
