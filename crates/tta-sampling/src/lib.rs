//! Head, tail, adaptive and OpenTelemetry-consistent trace sampling, and the trace assembly buffer.
//!
//! Status: scaffolding only; the implementation lands with its issue.
