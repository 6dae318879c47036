//! The OTLP/HTTP exporter against a real HTTP receiver on 127.0.0.1.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tta_core::{Span, SpanId, SpanKind, SpanStatus, TraceId};
use tta_export::{ExportError, Exporter, OtlpConfig, OtlpEncoding, OtlpHttpExporter};

use crate::receiver::{Answer, Receiver, closed_port};

fn no_env(_: &str) -> Option<String> {
    None
}

pub(crate) fn sample_spans() -> Vec<Span> {
    let trace_id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    vec![
        Span {
            trace_id,
            span_id: SpanId::from_u64(1),
            name: "GET /api".into(),
            service: "checkout".into(),
            kind: SpanKind::Server,
            start_unix_nanos: 1_000,
            end_unix_nanos: 5_000,
            status: SpanStatus::Error("timeout".into()),
            attributes: vec![
                ("http.status_code".into(), 504i64.into()),
                ("retry".into(), true.into()),
                ("ratio".into(), 0.5f64.into()),
                ("route".into(), "/api".into()),
            ],
            sampling_threshold: Some(0xfd70a400000000),
            ..Default::default()
        },
        Span {
            trace_id,
            span_id: SpanId::from_u64(2),
            parent_span_id: Some(SpanId::from_u64(1)),
            name: "SELECT".into(),
            service: "db".into(),
            kind: SpanKind::Client,
            start_unix_nanos: 2_000,
            end_unix_nanos: 3_000,
            status: SpanStatus::Ok,
            sampling_threshold: None,
            ..Default::default()
        },
    ]
}

fn exporter(endpoint: &str, encoding: OtlpEncoding, gzip: bool) -> OtlpHttpExporter {
    OtlpHttpExporter::with_env(
        OtlpConfig {
            endpoint: Some(endpoint.to_owned()),
            headers: BTreeMap::from([("x-tenant".to_owned(), "acme".to_owned())]),
            encoding: Some(encoding),
            gzip: Some(gzip),
            timeout_seconds: Some(5.0),
        },
        no_env,
    )
    .unwrap()
}

/// Checks a decoded request against `sample_spans`.
pub(crate) fn check_request(req: &ExportTraceServiceRequest) {
    assert_eq!(req.resource_spans.len(), 2, "one resource per service");
    let mut services = Vec::new();
    for rs in &req.resource_spans {
        let attrs = &rs.resource.as_ref().unwrap().attributes;
        let name = attrs.iter().find(|kv| kv.key == "service.name").unwrap();
        let svc = match name.value.as_ref().unwrap().value.as_ref().unwrap() {
            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) => s.clone(),
            other => panic!("service.name is {other:?}"),
        };
        let span = &rs.scope_spans[0].spans[0];
        assert_eq!(span.trace_id, hex("4bf92f3577b34da6a3ce929d0e0e4736"));
        if svc == "checkout" {
            assert_eq!(span.name, "GET /api");
            assert_eq!(span.trace_state, "ot=th:fd70a4");
            assert_eq!(span.kind, 2);
            assert_eq!(span.status.as_ref().unwrap().code, 2);
            assert_eq!(span.status.as_ref().unwrap().message, "timeout");
            assert_eq!(
                (span.start_time_unix_nano, span.end_time_unix_nano),
                (1_000, 5_000)
            );
            assert_eq!(span.attributes.len(), 4);
            assert!(span.parent_span_id.is_empty());
        } else {
            assert_eq!(span.trace_state, "");
            assert_eq!(span.parent_span_id, 1u64.to_be_bytes().to_vec());
            assert_eq!(span.kind, 3);
        }
        services.push(svc);
    }
    services.sort();
    assert_eq!(services, ["checkout", "db"]);
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn protobuf_gzip_payload_decodes_with_opentelemetry_proto() {
    let rx = Receiver::start(&[]);
    let e = exporter(&rx.addr, OtlpEncoding::Protobuf, true);
    e.export(&sample_spans()).unwrap();
    let reqs = rx.wait_for(1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/traces"));
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("x-tenant"), Some("acme"));
    let req = ExportTraceServiceRequest::decode(&r.decoded_body()[..]).unwrap();
    check_request(&req);
}

#[test]
fn json_payload_decodes_with_opentelemetry_proto() {
    let rx = Receiver::start(&[]);
    let e = exporter(&rx.addr, OtlpEncoding::Json, false);
    e.export(&sample_spans()).unwrap();
    let r = &rx.wait_for(1)[0];
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-encoding"), None);
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(
        text.contains("\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\""),
        "{text}"
    );
    let req: ExportTraceServiceRequest = serde_json::from_str(&text).unwrap();
    check_request(&req);
}

#[test]
fn statuses_map_to_retryable_errors_with_retry_after() {
    let rx = Receiver::start(&[
        Answer(503, Some(2)),
        Answer(429, None),
        Answer(400, None),
        Answer(502, None),
        Answer(504, None),
    ]);
    let e = exporter(&rx.addr, OtlpEncoding::Protobuf, false);
    let spans = sample_spans();
    let expect = [
        (503, true, Some(2)),
        (429, true, None),
        (400, false, None),
        (502, true, None),
        (504, true, None),
    ];
    for (status, retryable, after) in expect {
        match e.export(&spans).unwrap_err() {
            err @ ExportError::HttpStatus { .. } => {
                assert!(err.to_string().contains(&status.to_string()), "{err}");
                assert_eq!(err.is_retryable(), retryable, "{status}");
                assert_eq!(
                    err.retry_after(),
                    after.map(std::time::Duration::from_secs),
                    "{status}"
                );
            }
            other => panic!("{status}: {other}"),
        }
    }
    e.export(&spans).unwrap();
    assert_eq!(rx.wait_for(6).len(), 6);
}

#[test]
fn receiver_down_is_a_retryable_transport_error() {
    let e = exporter(&closed_port(), OtlpEncoding::Protobuf, false);
    let err = e.export(&sample_spans()).unwrap_err();
    assert!(matches!(err, ExportError::Transport { .. }), "{err}");
    assert!(err.is_retryable());
}

#[test]
fn endpoint_headers_and_protocol_come_from_the_environment() {
    let env = |k: &str| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318/".to_owned()),
        "OTEL_EXPORTER_OTLP_HEADERS" => Some("api-key=se%20cret, x-a = 1".to_owned()),
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS" => Some("x-a=2".to_owned()),
        "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/json".to_owned()),
        "OTEL_EXPORTER_OTLP_COMPRESSION" => Some("gzip".to_owned()),
        "OTEL_EXPORTER_OTLP_TIMEOUT" => Some("2500".to_owned()),
        _ => None,
    };
    let e = OtlpHttpExporter::with_env(OtlpConfig::default(), env).unwrap();
    assert_eq!(e.endpoint(), "http://collector:4318/v1/traces");
    assert_eq!(e.header_names(), ["api-key", "x-a"]);
    assert_eq!(e.encoding(), OtlpEncoding::Json);
    assert!(e.gzip());
    assert_eq!(e.timeout(), std::time::Duration::from_millis(2500));

    // The signal-specific endpoint is used as is and beats the generic one.
    let env2 = |k: &str| match k {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" => Some("http://tempo:4318/custom/path".to_owned()),
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".to_owned()),
        _ => None,
    };
    assert_eq!(
        OtlpHttpExporter::with_env(OtlpConfig::default(), env2)
            .unwrap()
            .endpoint(),
        "http://tempo:4318/custom/path"
    );
    // Explicit config beats the environment.
    let explicit = OtlpConfig {
        endpoint: Some("http://127.0.0.1:9/v1/traces".into()),
        ..Default::default()
    };
    assert_eq!(
        OtlpHttpExporter::with_env(explicit, env2)
            .unwrap()
            .endpoint(),
        "http://127.0.0.1:9/v1/traces"
    );
    assert_eq!(
        OtlpHttpExporter::with_env(OtlpConfig::default(), no_env)
            .unwrap()
            .endpoint(),
        tta_export::DEFAULT_OTLP_ENDPOINT
    );
}

#[test]
fn bad_otlp_settings_are_rejected_with_the_setting_named() {
    type Case = (
        OtlpConfig,
        Option<(&'static str, &'static str)>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            OtlpConfig {
                endpoint: Some("ftp://x".into()),
                ..Default::default()
            },
            None,
            "otlp.endpoint",
        ),
        (
            OtlpConfig {
                endpoint: Some("https://x".into()),
                ..Default::default()
            },
            None,
            "tls",
        ),
        (
            OtlpConfig::default(),
            Some(("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")),
            "OTEL_EXPORTER_OTLP_PROTOCOL (grpc)",
        ),
        (
            OtlpConfig::default(),
            Some(("OTEL_EXPORTER_OTLP_HEADERS", "novalue")),
            "OTEL_EXPORTER_OTLP_HEADERS: entry 0",
        ),
        (
            OtlpConfig::default(),
            Some(("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")),
            "OTEL_EXPORTER_OTLP_TIMEOUT (soon)",
        ),
        (
            OtlpConfig::default(),
            Some(("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")),
            "OTEL_EXPORTER_OTLP_COMPRESSION (zstd)",
        ),
        (
            OtlpConfig {
                timeout_seconds: Some(-1.0),
                ..Default::default()
            },
            None,
            "otlp.timeout_seconds",
        ),
    ];
    for (config, var, needle) in cases {
        let env = move |k: &str| {
            var.filter(|(name, _)| *name == k)
                .map(|(_, v)| v.to_owned())
        };
        let err = OtlpHttpExporter::with_env(config, env).unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
}
