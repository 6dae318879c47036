//! ObservabilityConfig: environment presets, YAML, environment overrides, validation and lock-free hot reload.
//!
//! Status: scaffolding only; the implementation lands with its issue.
