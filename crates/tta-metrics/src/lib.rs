//! Metrics collector: executions, labelled counters, gauges and histograms behind cardinality limits, with Prometheus text output.
//!
//! Status: scaffolding only; the implementation lands with its issue.
