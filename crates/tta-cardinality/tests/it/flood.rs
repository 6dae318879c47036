//! The flood test: a million distinct values for one key.

use std::collections::HashMap;
use std::fmt::Write as _;

use tta_cardinality::{CardinalityLimiter, CardinalityLimits};

use crate::alloc::allocations_in;

#[test]
fn million_distinct_user_ids_stay_bounded() {
    let limits = CardinalityLimits {
        max_label_values: 100,
        ..Default::default()
    };
    let buckets = limits.hash_buckets;
    let limiter = CardinalityLimiter::new(limits).expect("valid");
    let mut recorded: HashMap<String, u64> = HashMap::new();
    let mut value = String::with_capacity(32);
    let mut bytes_at_limit = 0;
    let n = 1_000_000u64;
    let mut over_limit_allocs = 0;
    for i in 0..n {
        value.clear();
        let _ = write!(value, "user-{i}");
        let (admitted, allocs) = allocations_in(|| limiter.admit("user_id", &value));
        if i >= 100 {
            over_limit_allocs += allocs;
        }
        // Count what would be recorded, the way a counter per value would.
        match recorded.get_mut(admitted.as_str()) {
            Some(c) => *c += 1,
            None => {
                recorded.insert(admitted.to_string(), 1);
            }
        }
        if i == 1_000 {
            bytes_at_limit = limiter.heap_bytes();
        }
    }
    assert_eq!(over_limit_allocs, 0);
    assert_eq!(recorded.values().sum::<u64>(), n, "totals must not be lost");
    assert!(
        recorded.len() <= 100 + buckets,
        "{} distinct recorded values",
        recorded.len()
    );
    let stats = limiter.stats();
    assert_eq!(stats.dropped_labels, vec!["user_id".to_string()]);
    assert_eq!(stats.label_cardinality["user_id"], 100);
    assert_eq!(stats.total_labels, 100);
    let overflow = &stats.overflow["user_id"];
    assert_eq!(overflow.overflowed_admissions, n - 100);
    let est = overflow.distinct_overflow_estimate as f64;
    let exact = (n - 100) as f64;
    assert!(
        (est - exact).abs() < exact * 0.5,
        "estimate {est} vs {exact}"
    );
    assert_eq!(stats.top_offenders[0].key, "user_id");
    // Memory did not move after the limit was reached.
    assert!(bytes_at_limit > 0);
    assert_eq!(limiter.heap_bytes(), bytes_at_limit);
}
