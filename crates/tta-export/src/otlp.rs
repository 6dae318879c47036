//! [`OtlpHttpExporter`]: OTLP/HTTP trace export (protobuf or JSON, optional gzip).

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status, span, status};
use prost::Message;
use serde::{Deserialize, Serialize};
use tta_core::{AttributeValue, Span, SpanKind, SpanStatus};

use crate::ExportError;
use crate::exporter::Exporter;

/// The receiver's default when no endpoint is configured anywhere.
pub const DEFAULT_OTLP_ENDPOINT: &str = "http://localhost:4318/v1/traces";

/// How an OTLP request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtlpEncoding {
    /// `application/x-protobuf` (`http/protobuf`), the OTLP default.
    #[default]
    Protobuf,
    /// `application/json` (`http/json`), OTLP's JSON mapping (hex ids, camelCase keys).
    Json,
}

/// Settings of the OTLP/HTTP exporter. Unset fields fall back to the standard
/// `OTEL_EXPORTER_OTLP_*` environment variables, then to OTLP's defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// Base URL of the receiver (`http://collector:4318`); `/v1/traces` is appended unless
    /// the path already ends with it. Unset: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as
    /// is), then `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces`), then
    /// [`DEFAULT_OTLP_ENDPOINT`].
    pub endpoint: Option<String>,
    /// Extra request headers (authentication, tenant); they override same-named headers
    /// from `OTEL_EXPORTER_OTLP_HEADERS` / `OTEL_EXPORTER_OTLP_TRACES_HEADERS`.
    pub headers: BTreeMap<String, String>,
    /// Body encoding; unset: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`
    /// (`http/protobuf` or `http/json`), then protobuf.
    pub encoding: Option<OtlpEncoding>,
    /// Gzip request bodies; unset: `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION` /
    /// `OTEL_EXPORTER_OTLP_COMPRESSION` (`gzip` or `none`), then no compression.
    pub gzip: Option<bool>,
    /// Timeout of one request in seconds (connect, send and answer); unset:
    /// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds),
    /// then 10 seconds. The pipeline's `export_timeout_seconds` bounds retries on top.
    pub timeout_seconds: Option<f64>,
}

/// Exports spans to an OpenTelemetry Collector (or Tempo, Jaeger, any OTLP receiver) over
/// OTLP/HTTP: one `POST <endpoint>` per batch, spans grouped by service into resource spans.
///
/// Each exported span carries its sampling threshold in its trace state as `ot=th:<hex>`
/// (from [`Span::sampling_threshold`]), so receivers can compute adjusted counts. Status 429,
/// 502, 503 and 504 and transport failures are retryable (honouring `Retry-After`); other
/// statuses, such as 400, are not.
///
/// The exporter speaks plain HTTP (a collector on localhost or in the same pod is the usual
/// setup); `https://` endpoints are rejected when the exporter is built, because this build
/// carries no TLS stack.
///
/// ```no_run
/// use tta_export::{OtlpConfig, OtlpEncoding, OtlpHttpExporter};
/// let exporter = OtlpHttpExporter::new(OtlpConfig {
///     endpoint: Some("http://otel-collector:4318".into()),
///     encoding: Some(OtlpEncoding::Protobuf),
///     gzip: Some(true),
///     ..Default::default()
/// })?;
/// assert_eq!(exporter.endpoint(), "http://otel-collector:4318/v1/traces");
/// # Ok::<(), tta_export::ExportError>(())
/// ```
pub struct OtlpHttpExporter {
    endpoint: String,
    headers: Vec<(String, String)>,
    encoding: OtlpEncoding,
    gzip: bool,
    timeout: Duration,
    agent: ureq::Agent,
}

impl std::fmt::Debug for OtlpHttpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpHttpExporter")
            .field("endpoint", &self.endpoint)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("encoding", &self.encoding)
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn invalid(field: &'static str, message: String) -> ExportError {
    ExportError::InvalidConfig { field, message }
}

/// Parses `k=v,k2=v2` (values percent-decoded), as `OTEL_EXPORTER_OTLP_HEADERS` is written.
fn parse_headers(var: &str, text: &str) -> Result<Vec<(String, String)>, ExportError> {
    let mut out = Vec::new();
    for (i, item) in text.split(',').enumerate() {
        if item.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = item.split_once('=') else {
            return Err(invalid(
                "otlp.headers",
                format!("{var}: entry {i} ({item:?}) is not key=value"),
            ));
        };
        let key = k.trim();
        if key.is_empty() {
            return Err(invalid(
                "otlp.headers",
                format!("{var}: entry {i} has an empty key"),
            ));
        }
        out.push((key.to_owned(), percent_decode(v.trim())));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn traces_url(base: &str) -> String {
    let trimmed = base.trim_end_matches('/');
    if trimmed.ends_with("/v1/traces") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    }
}

impl OtlpHttpExporter {
    /// Builds the exporter from `config` and the process environment.
    pub fn new(config: OtlpConfig) -> Result<Self, ExportError> {
        Self::with_env(config, |k| std::env::var(k).ok())
    }

    /// Builds the exporter from `config` and an environment lookup (for tests and for
    /// callers that resolve variables themselves).
    pub fn with_env(
        config: OtlpConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ExportError> {
        let var = |signal: &str, generic: &str| -> Option<(String, String)> {
            env(signal)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (signal.to_owned(), v))
                .or_else(|| {
                    env(generic)
                        .filter(|v| !v.trim().is_empty())
                        .map(|v| (generic.to_owned(), v))
                })
        };
        let endpoint = match &config.endpoint {
            Some(e) => traces_url(e.trim()),
            None => {
                match env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").filter(|v| !v.trim().is_empty()) {
                    Some(e) => e.trim().to_owned(),
                    None => {
                        match env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.trim().is_empty()) {
                            Some(e) => traces_url(e.trim()),
                            None => DEFAULT_OTLP_ENDPOINT.to_owned(),
                        }
                    }
                }
            }
        };
        if endpoint.starts_with("https://") {
            return Err(invalid(
                "otlp.endpoint",
                format!(
                    "otlp.endpoint ({endpoint}) uses https, but this build of the otlp exporter has no tls support; use an http:// receiver such as a local collector"
                ),
            ));
        }
        if !endpoint.starts_with("http://") || endpoint.len() <= "http://".len() {
            return Err(invalid(
                "otlp.endpoint",
                format!("otlp.endpoint ({endpoint}) must be an http:// url"),
            ));
        }

        let mut headers: Vec<(String, String)> = Vec::new();
        for name in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(text) = env(name) {
                for (k, v) in parse_headers(name, &text)? {
                    headers.retain(|(h, _)| !h.eq_ignore_ascii_case(&k));
                    headers.push((k, v));
                }
            }
        }
        for (k, v) in &config.headers {
            if k.trim().is_empty() {
                return Err(invalid(
                    "otlp.headers",
                    "otlp.headers has an empty header name".into(),
                ));
            }
            headers.retain(|(h, _)| !h.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.clone()));
        }

        let encoding = match config.encoding {
            Some(e) => e,
            None => match var(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ) {
                None => OtlpEncoding::Protobuf,
                Some((_, v)) if v.trim() == "http/protobuf" => OtlpEncoding::Protobuf,
                Some((_, v)) if v.trim() == "http/json" => OtlpEncoding::Json,
                Some((name, v)) => {
                    return Err(invalid(
                        "otlp.encoding",
                        format!("{name} ({v}) is not supported; use http/protobuf or http/json"),
                    ));
                }
            },
        };
        let gzip = match config.gzip {
            Some(g) => g,
            None => match var(
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ) {
                None => false,
                Some((_, v)) if v.trim() == "gzip" => true,
                Some((_, v)) if v.trim() == "none" => false,
                Some((name, v)) => {
                    return Err(invalid(
                        "otlp.gzip",
                        format!("{name} ({v}) must be gzip or none"),
                    ));
                }
            },
        };
        let timeout = match config.timeout_seconds {
            Some(s) if s.is_finite() && s > 0.0 => Duration::from_secs_f64(s),
            Some(s) => {
                return Err(invalid(
                    "otlp.timeout_seconds",
                    format!("otlp.timeout_seconds ({s}) must be a positive number"),
                ));
            }
            None => match var(
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ) {
                None => Duration::from_secs(10),
                Some((name, v)) => match v.trim().parse::<u64>() {
                    Ok(ms) if ms > 0 => Duration::from_millis(ms),
                    _ => {
                        return Err(invalid(
                            "otlp.timeout_seconds",
                            format!("{name} ({v}) must be a positive number of milliseconds"),
                        ));
                    }
                },
            },
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .proxy(None)
            .user_agent(concat!("tta-export/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            endpoint,
            headers,
            encoding,
            gzip,
            timeout,
            agent,
        })
    }

    /// The full URL batches are posted to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The body encoding in use.
    pub fn encoding(&self) -> OtlpEncoding {
        self.encoding
    }

    /// Whether bodies are gzipped.
    pub fn gzip(&self) -> bool {
        self.gzip
    }

    /// Header names sent with each request (values are not exposed).
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Encodes a batch as this exporter would send it (before gzip).
    pub fn encode(&self, batch: &[Span]) -> Result<Vec<u8>, ExportError> {
        let request = to_request(batch);
        match self.encoding {
            OtlpEncoding::Protobuf => Ok(request.encode_to_vec()),
            OtlpEncoding::Json => serde_json::to_vec(&request).map_err(|e| ExportError::Encode {
                exporter: "otlp-http",
                message: e.to_string(),
            }),
        }
    }
}

fn parse_retry_after(v: &str) -> Option<Duration> {
    // Only the delay-seconds form; an HTTP date falls back to the pipeline's backoff.
    v.trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

impl Exporter for OtlpHttpExporter {
    fn name(&self) -> &str {
        "otlp-http"
    }

    fn export(&self, batch: &[Span]) -> Result<(), ExportError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut body = self.encode(batch)?;
        if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            let done = gz.write_all(&body).and_then(|()| gz.finish());
            body = done.map_err(|e| ExportError::Encode {
                exporter: "otlp-http",
                message: format!("gzip: {e}"),
            })?;
        }
        let content_type = match self.encoding {
            OtlpEncoding::Protobuf => "application/x-protobuf",
            OtlpEncoding::Json => "application/json",
        };
        let mut req = self
            .agent
            .post(&self.endpoint)
            .header("content-type", content_type);
        if self.gzip {
            req = req.header("content-encoding", "gzip");
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let transport = |e: ureq::Error| ExportError::Transport {
            endpoint: self.endpoint.clone(),
            message: e.to_string(),
        };
        let mut response = req.send(&body[..]).map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Read the (small) answer so the connection can be reused.
        let _ = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(ExportError::HttpStatus {
                endpoint: self.endpoint.clone(),
                status,
                retry_after,
            })
        }
    }
}

fn any(v: &AttributeValue) -> AnyValue {
    let value = match v {
        AttributeValue::Str(s) => any_value::Value::StringValue(s.as_str().to_owned()),
        AttributeValue::I64(i) => any_value::Value::IntValue(*i),
        AttributeValue::F64(f) => any_value::Value::DoubleValue(*f),
        AttributeValue::Bool(b) => any_value::Value::BoolValue(*b),
    };
    AnyValue { value: Some(value) }
}

fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(value),
        ..Default::default()
    }
}

/// Converts one span to its OTLP form (trace state carries `ot=th:<hex>` when known).
pub(crate) fn to_otlp_span(s: &Span) -> opentelemetry_proto::tonic::trace::v1::Span {
    let kind = match s.kind {
        SpanKind::Internal => span::SpanKind::Internal,
        SpanKind::Server => span::SpanKind::Server,
        SpanKind::Client => span::SpanKind::Client,
        SpanKind::Producer => span::SpanKind::Producer,
        SpanKind::Consumer => span::SpanKind::Consumer,
    };
    let status = match &s.status {
        SpanStatus::Unset => None,
        SpanStatus::Ok => Some(Status {
            code: status::StatusCode::Ok as i32,
            message: String::new(),
        }),
        SpanStatus::Error(m) => Some(Status {
            code: status::StatusCode::Error as i32,
            message: m.as_str().to_owned(),
        }),
    };
    opentelemetry_proto::tonic::trace::v1::Span {
        trace_id: s.trace_id.to_bytes().to_vec(),
        span_id: s.span_id.to_bytes().to_vec(),
        trace_state: s
            .sampling_threshold
            .map(|t| format!("ot=th:{}", tta_core::format_th(t)))
            .unwrap_or_default(),
        parent_span_id: s
            .parent_span_id
            .map(|p| p.to_bytes().to_vec())
            .unwrap_or_default(),
        // W3C trace flags in the low byte: exported spans belong to sampled traces.
        flags: 1,
        name: s.name.as_str().to_owned(),
        kind: kind as i32,
        start_time_unix_nano: s.start_unix_nanos,
        end_time_unix_nano: s.end_unix_nanos,
        attributes: s
            .attributes
            .iter()
            .map(|(k, v)| kv(k.as_str(), any(v)))
            .collect(),
        status,
        ..Default::default()
    }
}

/// Builds the OTLP request for a batch: one resource per service (`service.name`), one scope.
pub(crate) fn to_request(batch: &[Span]) -> ExportTraceServiceRequest {
    let mut by_service: BTreeMap<&str, Vec<opentelemetry_proto::tonic::trace::v1::Span>> =
        BTreeMap::new();
    for s in batch {
        by_service
            .entry(s.service.as_str())
            .or_default()
            .push(to_otlp_span(s));
    }
    let resource_spans = by_service
        .into_iter()
        .map(|(service, spans)| {
            let mut attributes = Vec::new();
            if !service.is_empty() {
                attributes.push(kv(
                    "service.name",
                    AnyValue {
                        value: Some(any_value::Value::StringValue(service.to_owned())),
                    },
                ));
            }
            ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "tta-observability".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}
