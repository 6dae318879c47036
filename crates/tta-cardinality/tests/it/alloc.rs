//! Proves the hot paths allocate nothing, with a per-thread counting allocator.

#[global_allocator]
static GLOBAL: tta_testkit::CountingAlloc = tta_testkit::CountingAlloc;

pub(crate) use tta_testkit::allocations_in;

use tta_cardinality::{CardinalityLimiter, CardinalityLimits};

#[test]
fn known_values_admit_without_allocating() {
    let limiter = CardinalityLimiter::new(CardinalityLimits::default()).expect("valid");
    let values: Vec<String> = (0..100).map(|i| format!("route-{i}")).collect();
    for v in &values {
        assert!(limiter.admit("route", v).is_kept());
    }
    let (kept, allocs) = allocations_in(|| {
        let mut kept = 0;
        for _ in 0..10 {
            for v in &values {
                kept += usize::from(limiter.admit("route", v).is_kept());
            }
        }
        kept
    });
    assert_eq!(kept, 1000);
    assert_eq!(allocs, 0, "known-value admissions allocated");
}

#[test]
fn over_limit_values_admit_without_allocating() {
    let limits = CardinalityLimits {
        max_label_values: 10,
        ..Default::default()
    };
    let limiter = CardinalityLimiter::new(limits).expect("valid");
    let values: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    limiter.admit("user_id", "warm"); // creates the key
    let (hashed, allocs) = allocations_in(|| {
        values
            .iter()
            .filter(|v| limiter.admit("user_id", v).starts_with("hash:"))
            .count()
    });
    // The first 9 new values were kept: admitting them allocated (their strings and a chunk).
    assert_eq!(hashed, 991);
    let (_, allocs_after) = allocations_in(|| {
        for v in &values {
            limiter.admit("user_id", v);
        }
    });
    assert!(allocs > 0, "first admissions must allocate their strings");
    assert_eq!(allocs_after, 0, "known and over-limit admissions allocated");
}
