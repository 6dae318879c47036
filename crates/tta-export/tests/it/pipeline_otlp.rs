//! The pipeline exporting over OTLP/HTTP to a loopback receiver.

use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tta_export::{ExportConfig, OtlpConfig, OtlpEncoding, OtlpHttpExporter, RetryPolicy};

use crate::pipeline::{start, traces, wait_until};
use crate::receiver::{Answer, Receiver, closed_port};

fn otlp(endpoint: &str) -> Box<OtlpHttpExporter> {
    let config = OtlpConfig {
        endpoint: Some(endpoint.to_owned()),
        encoding: Some(OtlpEncoding::Protobuf),
        gzip: Some(true),
        timeout_seconds: Some(2.0),
        ..Default::default()
    };
    Box::new(OtlpHttpExporter::with_env(config, |_| None).unwrap())
}

fn fast() -> ExportConfig {
    ExportConfig {
        retry: RetryPolicy {
            initial_backoff_ms: 5,
            max_backoff_ms: 20,
            ..Default::default()
        },
        export_timeout_seconds: 10.0,
        ..Default::default()
    }
}

#[test]
fn a_503_is_retried_then_the_200_counts_and_th_is_carried() {
    let rx = Receiver::start(&[Answer(503, None)]);
    let p = start(fast(), 0.5, vec![otlp(&rx.addr)]);
    let spans = traces(40, 3);
    for s in &spans {
        assert!(p.submit(s.clone()));
    }
    p.flush(Duration::from_secs(30)).unwrap();
    let reqs = rx.wait_for(2);
    assert_eq!(reqs.len(), 2, "one 503 then one 200");
    assert_eq!(reqs[0].body, reqs[1].body, "the retry sends the same batch");
    let req = ExportTraceServiceRequest::decode(&reqs[1].decoded_body()[..]).unwrap();
    let otlp_spans: Vec<_> = req
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let st = p.stats();
    assert_eq!(
        (st.retries, st.exported_spans, st.failed_batches),
        (1, otlp_spans.len() as u64, 0)
    );
    let th = tta_core::format_th(
        tta_sampling::Threshold::from_probability(0.5)
            .unwrap()
            .raw(),
    );
    for s in &otlp_spans {
        assert!(s.trace_state.starts_with("ot=th:"), "{}", s.trace_state);
    }
    assert!(
        otlp_spans
            .iter()
            .any(|s| s.trace_state == format!("ot=th:{th}")),
        "head-kept spans carry th:{th}"
    );
}

#[test]
fn a_400_is_not_retried() {
    let rx = Receiver::start(&[Answer(400, None)]);
    let p = start(fast(), 1.0, vec![otlp(&rx.addr)]);
    for s in traces(3, 2) {
        p.submit(s);
    }
    p.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(rx.wait_for(1).len(), 1);
    let st = p.stats();
    assert_eq!((st.retries, st.failed_batches, st.failed_spans), (0, 1, 6));
    assert!(st.last_error.unwrap().contains("400"));
}

#[test]
fn receiver_down_counts_failures_and_submit_still_returns_at_once() {
    let config = ExportConfig {
        batch_size: 8,
        max_queue_size: 64,
        max_export_workers: 1,
        export_timeout_seconds: 0.5,
        retry: RetryPolicy {
            initial_backoff_ms: 50,
            max_backoff_ms: 200,
            ..Default::default()
        },
        ..Default::default()
    };
    let p = start(config, 1.0, vec![otlp(&closed_port())]);
    let mut slowest = Duration::ZERO;
    let mut refused = 0u64;
    for s in traces(2000, 5) {
        let t = Instant::now();
        refused += u64::from(!p.submit(s));
        slowest = slowest.max(t.elapsed());
    }
    // Each failing batch takes up to the 0.5 s export deadline; submit never waits for it.
    assert!(
        slowest < Duration::from_millis(400),
        "a submit waited {slowest:?}"
    );
    wait_until("failed batches", || p.stats().failed_batches >= 1);
    let st = p.stats();
    assert!(st.retries >= 1);
    assert!(st.consecutive_failures >= 1);
    assert!(
        st.last_error
            .as_deref()
            .unwrap_or("")
            .contains("sending to"),
        "{:?}",
        st.last_error
    );
    assert_eq!(st.dropped_queue_full, refused);
    assert!(refused > 0);
    let report = p.shutdown(Duration::from_millis(300));
    assert!(report.elapsed_ms < 10_000);
}
