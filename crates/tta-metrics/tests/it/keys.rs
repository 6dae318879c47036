//! Prepared keys (`MetricKey`): the same series as the by-name calls, limits applied,
//! concurrent first use, and keys used with another collector.

use std::sync::{Arc, Barrier};

use proptest::prelude::*;
use tta_core::MetricValue;
use tta_metrics::{MetricKey, MetricsCollector, MetricsConfig};

fn collector(limit: usize) -> MetricsCollector {
    let config = MetricsConfig {
        max_label_values: limit,
        ..Default::default()
    };
    MetricsCollector::with_hash_key(config, 11).expect("valid")
}

fn counter_values(c: &MetricsCollector, name: &str) -> Vec<(Vec<(String, String)>, u64)> {
    c.snapshot_at(0)
        .series
        .into_iter()
        .filter(|s| s.name == name)
        .map(|s| match s.value {
            MetricValue::Counter(v) => (s.labels, v),
            other => panic!("not a counter: {other:?}"),
        })
        .collect()
}

#[test]
fn key_and_by_name_calls_share_series() {
    let c = collector(100);
    let key = MetricKey::new("hits_total", &[("route", "/a"), ("method", "GET")]);
    c.counter_for(&key).increment(2);
    c.counter("hits_total", &[("method", "GET"), ("route", "/a")])
        .increment(3);
    assert_eq!(c.counter_for(&key).value(), 5);
    assert_eq!(
        counter_values(&c, "hits_total"),
        vec![(
            vec![
                ("method".to_owned(), "GET".to_owned()),
                ("route".to_owned(), "/a".to_owned())
            ],
            5
        )]
    );
    // Kinds are separate metrics even with the same key.
    c.gauge_for(&key).set(1.5);
    assert_eq!(
        c.gauge("hits_total", &[("route", "/a"), ("method", "GET")])
            .value(),
        1.5
    );
    assert_eq!(c.counter_for(&key).value(), 5);
}

#[test]
fn keys_are_limited_like_by_name_calls() {
    let c = collector(2);
    let keys: Vec<MetricKey> = (0..50)
        .map(|i| MetricKey::new("logins_total", &[("user_id", format!("u{i}"))]))
        .collect();
    for k in &keys {
        c.counter_for(k).increment(1);
    }
    for k in &keys {
        c.counter_for(k).increment(1);
    }
    let stats = c.cardinality_stats();
    assert_eq!(stats.label_cardinality["user_id"], 2);
    assert_eq!(stats.dropped_labels, vec!["user_id".to_string()]);
    let series = counter_values(&c, "logins_total");
    assert_eq!(series.iter().map(|(_, v)| v).sum::<u64>(), 100);
    assert!(series.len() <= 2 + 16, "{} series", series.len());
    // A hashed key records into the same bucket series as the by-name call.
    let before: u64 = c.counter_for(&keys[40]).value();
    c.counter("logins_total", &[("user_id", "u40")])
        .increment(1);
    assert_eq!(c.counter_for(&keys[40]).value(), before + 1);
}

#[test]
fn disabled_collector_ignores_keys_without_binding() {
    let config = MetricsConfig {
        enabled: false,
        ..Default::default()
    };
    let c = MetricsCollector::new(config).expect("valid");
    let key = MetricKey::new("jobs_total", &[("queue", "q")]);
    c.counter_for(&key).increment(1);
    assert_eq!(c.counter_for(&key).value(), 0);
    assert_eq!(c.cardinality_stats().total_labels, 0);
    c.reconfigure(MetricsConfig::default()).expect("valid");
    c.counter_for(&key).increment(1);
    assert_eq!(c.counter("jobs_total", &[("queue", "q")]).value(), 1);
}

#[test]
fn key_bound_to_another_collector_still_records_correctly() {
    let a = collector(100);
    let b = collector(100);
    let key = MetricKey::new("jobs_total", &[("queue", "high")]);
    a.counter_for(&key).increment(1);
    b.counter_for(&key).increment(4);
    let copy = key.clone();
    b.counter_for(&copy).increment(1);
    assert_eq!(a.counter("jobs_total", &[("queue", "high")]).value(), 1);
    assert_eq!(b.counter("jobs_total", &[("queue", "high")]).value(), 5);
}

#[test]
fn concurrent_first_use_of_one_key_makes_one_series() {
    let c = Arc::new(collector(100));
    let key = Arc::new(MetricKey::new("hits_total", &[("route", "/a")]));
    let threads = 4;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (c, key, barrier) = (Arc::clone(&c), Arc::clone(&key), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..1_000 {
                    c.counter_for(&key).increment(1);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread panicked");
    }
    assert_eq!(counter_values(&c, "hits_total").len(), 1);
    assert_eq!(c.counter_for(&key).value(), 4_000);
    assert_eq!(c.cardinality_stats().label_cardinality["route"], 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Threads mixing prepared keys and by-name calls: every increment lands, limits hold.
    #[test]
    fn concurrent_keys_and_names_add_up(
        threads in 2usize..4,
        limit in 1usize..8,
        ops in proptest::collection::vec((0u16..30, any::<bool>()), 1..150),
    ) {
        let c = Arc::new(collector(limit));
        let keys: Arc<Vec<MetricKey>> = Arc::new(
            (0..30).map(|u| MetricKey::new("hits_total", &[("user", format!("u{u}"))])).collect(),
        );
        let ops = Arc::new(ops);
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (c, keys, ops, barrier) =
                    (Arc::clone(&c), Arc::clone(&keys), Arc::clone(&ops), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    for (user, by_key) in ops.iter() {
                        if *by_key {
                            c.counter_for(&keys[usize::from(*user)]).increment(1);
                        } else {
                            c.counter("hits_total", &[("user", format!("u{user}"))]).increment(1);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread panicked");
        }
        let series = counter_values(&c, "hits_total");
        prop_assert_eq!(series.iter().map(|(_, v)| v).sum::<u64>(), (threads * ops.len()) as u64);
        prop_assert!(c.cardinality_stats().label_cardinality["user"] <= limit);
        prop_assert!(series.len() <= limit + 16);
    }
}
