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

/// A family flooded past the limit asks the limiter before looking up the raw label; that
/// changes the order of lookups, never where a record lands: the same records in an order
/// that keeps the family in its raw-first mode give the same series and counts.
#[test]
fn admit_first_mode_records_into_the_same_series() {
    let config = MetricsConfig {
        max_label_values: 10,
        ..Default::default()
    };
    let a = MetricsCollector::with_hash_key(config.clone(), 11).expect("valid");
    let b = MetricsCollector::with_hash_key(config, 11).expect("valid");
    let kept: Vec<String> = (0..10).map(|i| format!("kept-{i}")).collect();
    let over: Vec<String> = (0..2_000).map(|i| format!("over-{i}")).collect();
    for c in [&a, &b] {
        for v in &kept {
            c.counter("logins_total", &[("user_id", v)]).increment(1);
        }
    }
    // `a`: long runs of over-limit values (admit-first mode), then kept values in a burst.
    for _ in 0..3 {
        for v in &over {
            a.counter("logins_total", &[("user_id", v)]).increment(1);
        }
        for v in &kept {
            a.counter("logins_total", &[("user_id", v)]).increment(2);
        }
    }
    // `b`: every over-limit value between two kept ones (the family stays raw-first).
    for round in 0..3 {
        for (i, v) in over.iter().enumerate() {
            b.counter("logins_total", &[("user_id", &kept[(i + round) % 10])])
                .increment(0);
            b.counter("logins_total", &[("user_id", v)]).increment(1);
        }
        for v in &kept {
            b.counter("logins_total", &[("user_id", v)]).increment(2);
        }
    }
    for v in &kept {
        assert_eq!(
            a.counter("logins_total", &[("user_id", v)]).value(),
            7,
            "{v}"
        );
    }
    let series = |c: &MetricsCollector| {
        c.snapshot_at(0)
            .series
            .into_iter()
            .filter(|s| s.name == "logins_total")
            .collect::<Vec<_>>()
    };
    assert_eq!(series(&a), series(&b));
    let total: u64 = series(&a)
        .iter()
        .map(|s| match s.value {
            MetricValue::Counter(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(total, 10 + 3 * (2_000 + 20));
    let (sa, sb) = (a.cardinality_stats(), b.cardinality_stats());
    assert_eq!(sa.label_cardinality, sb.label_cardinality);
    assert_eq!(
        sa.overflow["user_id"].overflowed_admissions,
        sb.overflow["user_id"].overflowed_admissions
    );
}

/// Over-limit records find their bucket series through a per-family cache (by bucket index,
/// for the first label key coarsened). With two one-label keys in one family and the bucket
/// count changed at runtime (so bucket strings change width), every record still lands in
/// the series named by what the limiter admits, and totals are kept.
#[test]
fn cached_bucket_series_follow_the_admitted_bucket() {
    use std::collections::BTreeMap;
    use tta_cardinality::CardinalityLimits;

    let config = MetricsConfig {
        max_label_values: 5,
        ..Default::default()
    };
    let c = MetricsCollector::with_hash_key(config, 3).expect("valid");
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut record = |c: &MetricsCollector, key: &str, value: &str, n: u64| {
        let admitted = c.limiter().admit(key, value).as_str().to_owned();
        *expected.entry((key.to_owned(), admitted)).or_default() += n;
        c.counter("logins_total", &[(key, value)]).increment(n);
    };
    let phase = |c: &MetricsCollector,
                 record: &mut dyn FnMut(&MetricsCollector, &str, &str, u64),
                 tag: &str| {
        for i in 0..3_000u64 {
            record(c, "user_id", &format!("{tag}-user-{i}"), 1 + i % 3);
            record(c, "session", &format!("{tag}-session-{i}"), 1);
        }
    };
    phase(&c, &mut record, "a");
    // 16 -> 256 buckets: bucket strings go from one hex digit to two, and index 5 names
    // `hash:05` instead of `hash:5`.
    let wide = CardinalityLimits {
        hash_buckets: 256,
        ..c.limiter().limits()
    };
    c.limiter().set_limits(wide).expect("valid limits");
    phase(&c, &mut record, "b");
    let narrow = CardinalityLimits {
        hash_buckets: 16,
        ..c.limiter().limits()
    };
    c.limiter().set_limits(narrow).expect("valid limits");
    phase(&c, &mut record, "c");

    let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
    for s in c.snapshot_at(0).series {
        if s.name != "logins_total" {
            continue;
        }
        assert_eq!(s.labels.len(), 1, "{s:?}");
        let (k, v) = s.labels[0].clone();
        let MetricValue::Counter(n) = s.value else {
            panic!("not a counter: {s:?}")
        };
        got.insert((k, v), n);
    }
    assert!(got.keys().any(|(_, v)| v.len() == "hash:".len() + 2));
    assert!(
        got.keys()
            .any(|(k, v)| k == "session" && v.len() == "hash:".len() + 1)
    );
    assert_eq!(got, expected);
}
