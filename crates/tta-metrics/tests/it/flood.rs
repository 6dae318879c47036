//! The flood test through the collector: a million distinct `user_id` values.

use std::fmt::Write as _;

use tta_core::MetricValue;
use tta_metrics::{MetricsCollector, MetricsConfig};

use crate::alloc::allocations_in;

#[test]
fn million_distinct_user_ids_keep_totals_and_memory() {
    let collector = MetricsCollector::new(MetricsConfig::default()).expect("valid");
    let n = 1_000_000u64;
    let mut value = String::with_capacity(32);
    let mut allocs_past_limit = 0;
    for i in 0..n {
        value.clear();
        let _ = write!(value, "user-{i}");
        let ((), allocs) = allocations_in(|| {
            collector
                .counter("logins_total", &[("user_id", value.as_str())])
                .increment(1);
        });
        // After the limit and the 16 buckets exist, nothing new is ever allocated.
        if i >= 10_000 {
            allocs_past_limit += allocs;
        }
    }
    assert_eq!(allocs_past_limit, 0, "memory grew past the limit");
    let stats = collector.cardinality_stats();
    assert_eq!(stats.dropped_labels, vec!["user_id".to_string()]);
    assert!(stats.label_cardinality["user_id"] <= 100);
    assert_eq!(stats.overflow["user_id"].overflowed_admissions, n - 100);
    let snap = collector.snapshot_at(0);
    let series: Vec<_> = snap
        .series
        .iter()
        .filter(|s| s.name == "logins_total")
        .collect();
    assert!(series.len() <= 100 + 16, "{} series", series.len());
    let total: u64 = series
        .iter()
        .map(|s| match s.value {
            MetricValue::Counter(c) => c,
            _ => 0,
        })
        .sum();
    assert_eq!(total, n, "totals must equal the number of increments");
}
