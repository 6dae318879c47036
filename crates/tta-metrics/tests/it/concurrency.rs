//! Several threads recording at once: totals add up and limits hold.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use proptest::prelude::*;
use tta_core::MetricValue;
use tta_metrics::{MetricsCollector, MetricsConfig};

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_records_add_up(
        threads in 2usize..4,
        limit in 1usize..12,
        ops in proptest::collection::vec((0u16..40, 0u8..3, 0.0f64..500.0, any::<bool>()), 1..200),
    ) {
        let config = MetricsConfig { max_label_values: limit, ..Default::default() };
        let collector = Arc::new(MetricsCollector::new(config).expect("valid"));
        let ops = Arc::new(ops);
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (collector, ops, barrier) = (Arc::clone(&collector), Arc::clone(&ops), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    for (user, route, ms, ok) in ops.iter() {
                        let user = format!("u{user}");
                        let route = format!("/r{route}");
                        collector.counter("hits_total", &[("user", user.as_str()), ("route", route.as_str())]).increment(1);
                        collector.histogram("latency_ms", &[("route", route.as_str())]).record(*ms);
                        // One label: kept values by id, the rest in buckets.
                        collector.counter("logins_total", &[("user", user.as_str())]).increment(1);
                        collector.record_execution(&user, *ms, *ok);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread panicked");
        }
        let expected = (threads * ops.len()) as u64;
        let snap = collector.snapshot_at(0);
        let counter_total: u64 = snap.series.iter().filter(|s| s.name == "hits_total").map(|s| match s.value {
            MetricValue::Counter(c) => c,
            _ => 0,
        }).sum();
        prop_assert_eq!(counter_total, expected);
        let logins_total: u64 = snap.series.iter().filter(|s| s.name == "logins_total").map(|s| match s.value {
            MetricValue::Counter(c) => c,
            _ => 0,
        }).sum();
        prop_assert_eq!(logins_total, expected);
        let hist_total: u64 = snap.series.iter().filter(|s| s.name == "latency_ms").map(|s| match &s.value {
            MetricValue::Histogram { count, counts, .. } => {
                assert_eq!(counts.iter().sum::<u64>(), *count);
                *count
            }
            _ => 0,
        }).sum();
        prop_assert_eq!(hist_total, expected);
        prop_assert_eq!(collector.totals().total_executions, expected);
        let stats = collector.cardinality_stats();
        for (key, kept) in &stats.label_cardinality {
            prop_assert!(*kept <= limit, "{} kept {}", key, kept);
        }
        // Distinct recorded user values: at most the limit plus the 16 buckets.
        let users: HashSet<_> = snap.series.iter().filter(|s| s.name == "hits_total")
            .filter_map(|s| s.labels.iter().find(|(k, _)| k == "user").map(|(_, v)| v.clone())).collect();
        prop_assert!(users.len() <= limit + 16);
    }
}
