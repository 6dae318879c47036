//! Integration tests of the facade: the guide's snippets, end to end through the tracing
//! layer into the store, hot reload, the OpenTelemetry adapter and HTTP.

mod common;
mod e2e;
mod guide;
mod hot_reload;
mod http;
mod layer;
mod otel;
mod wiring;
