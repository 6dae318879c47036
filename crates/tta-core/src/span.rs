use serde::{Deserialize, Serialize};

use crate::{SharedStr, SpanId, TraceId};

/// What role a span plays, as in OpenTelemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// Internal operation (the default).
    #[default]
    Internal,
    /// Handles an incoming request.
    Server,
    /// Makes an outgoing request.
    Client,
    /// Sends a message.
    Producer,
    /// Receives a message.
    Consumer,
}

impl SpanKind {
    /// Lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// How a span ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanStatus {
    /// Not set by the instrumentation (the default).
    #[default]
    Unset,
    /// Explicitly successful.
    Ok,
    /// Failed, with a message.
    Error(SharedStr),
}

/// The value of a span attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    /// A string.
    Str(SharedStr),
    /// A signed integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl From<&'static str> for AttributeValue {
    fn from(v: &'static str) -> Self {
        Self::Str(v.into())
    }
}
impl From<String> for AttributeValue {
    fn from(v: String) -> Self {
        Self::Str(v.into())
    }
}
impl From<SharedStr> for AttributeValue {
    fn from(v: SharedStr) -> Self {
        Self::Str(v)
    }
}
impl From<i64> for AttributeValue {
    fn from(v: i64) -> Self {
        Self::I64(v)
    }
}
impl From<f64> for AttributeValue {
    fn from(v: f64) -> Self {
        Self::F64(v)
    }
}
impl From<bool> for AttributeValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl std::fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::I64(v) => write!(f, "{v}"),
            Self::F64(v) => write!(f, "{v}"),
            Self::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// One finished span: the record every tta crate passes around.
///
/// Fields are public so any crate or user can build one with a struct literal.
/// String fields are [`SharedStr`]: literals cost no allocation, owned strings are shared.
///
/// ```
/// use tta_core::{Span, SpanId, TraceId, SpanKind};
/// let span = Span {
///     trace_id: TraceId::random(),
///     span_id: SpanId::random(),
///     name: "SELECT orders".into(),
///     service: "orders-db".into(),
///     kind: SpanKind::Client,
///     start_unix_nanos: 0,
///     end_unix_nanos: 1_500_000_000,
///     attributes: vec![("db.system".into(), "postgresql".into()), ("db.rows".into(), 12i64.into())],
///     ..Default::default()
/// };
/// assert!(span.is_root());
/// assert_eq!(span.duration_ms(), 1500.0);
/// assert_eq!(span.attribute("db.rows").map(|v| v.to_string()), Some("12".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Span {
    /// The trace this span belongs to.
    pub trace_id: TraceId,
    /// This span's id.
    pub span_id: SpanId,
    /// The parent span, `None` for a trace root.
    pub parent_span_id: Option<SpanId>,
    /// Operation name.
    pub name: SharedStr,
    /// The service that produced the span.
    pub service: SharedStr,
    /// Role of the span.
    pub kind: SpanKind,
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// How it ended.
    pub status: SpanStatus,
    /// Key/value attributes, in the order they were recorded.
    pub attributes: Vec<(SharedStr, AttributeValue)>,
    /// The OpenTelemetry rejection threshold (56-bit `T`) of the sampling decision that kept
    /// this span, written by exporters as `ot=th:..` in the span's trace state; `None` when
    /// unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_threshold: Option<u64>,
}

impl Span {
    /// Duration in milliseconds (zero if the end precedes the start).
    pub fn duration_ms(&self) -> f64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos) as f64 / 1e6
    }

    /// Duration in nanoseconds (zero if the end precedes the start).
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nanos.saturating_sub(self.start_unix_nanos)
    }

    /// Whether the span ended with an error status.
    pub fn is_error(&self) -> bool {
        matches!(self.status, SpanStatus::Error(_))
    }

    /// Whether the span has no parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }

    /// The first attribute with this key.
    pub fn attribute(&self, key: &str) -> Option<&AttributeValue> {
        self.attributes
            .iter()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    }
}
