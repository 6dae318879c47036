//! Concurrent admissions: limits hold and answers stay stable under races.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Barrier};

use proptest::prelude::*;
use tta_cardinality::{CardinalityLimiter, CardinalityLimits};

fn run_threads(
    limiter: &Arc<CardinalityLimiter>,
    threads: usize,
    values: &Arc<Vec<(String, String)>>,
) -> Vec<Vec<(String, String, String)>> {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let limiter = Arc::clone(limiter);
            let values = Arc::clone(values);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                // Each thread walks the values from a different offset so first admissions race.
                let n = values.len();
                (0..n)
                    .map(|i| {
                        let (k, v) = &values[(i + t * 7) % n];
                        let got = limiter.admit(k, v).to_string();
                        (k.clone(), v.clone(), got)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("thread panicked"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn limits_hold_and_answers_are_stable(
        threads in 2usize..5,
        limit in 1usize..20,
        budget in 1usize..50,
        hash in any::<bool>(),
        raw in proptest::collection::vec((0u8..3, 0u16..60), 1..300),
    ) {
        let limits = CardinalityLimits {
            max_label_values: limit,
            max_total_label_values: budget,
            hash_high_cardinality: hash,
            ..Default::default()
        };
        let limiter = Arc::new(CardinalityLimiter::with_hash_key(limits, 9).expect("valid"));
        let values: Arc<Vec<(String, String)>> =
            Arc::new(raw.iter().map(|(k, v)| (format!("k{k}"), format!("v{v}"))).collect());
        let results = run_threads(&limiter, threads, &values);

        let mut kept: HashMap<String, HashSet<String>> = HashMap::new();
        let mut answer: HashMap<(String, String), String> = HashMap::new();
        for per_thread in results {
            // Within one thread (a real timeline), once a value is kept it stays kept. Across
            // threads answers may differ only during the race of a first admission: a value
            // whose insertion another thread has reserved but not yet published is coarsened
            // for that instant (its count goes to the bucket; totals are kept).
            let mut seen_kept: HashSet<(String, String)> = HashSet::new();
            for (k, v, got) in per_thread {
                if got == v {
                    kept.entry(k.clone()).or_default().insert(v.clone());
                    seen_kept.insert((k.clone(), v.clone()));
                } else {
                    prop_assert!(
                        !seen_kept.contains(&(k.clone(), v.clone())),
                        "a kept value was later coarsened on the same thread: {} = {}",
                        k,
                        v
                    );
                }
                answer.insert((k, v), got);
            }
        }
        let total: usize = kept.values().map(HashSet::len).sum();
        prop_assert!(total <= budget, "kept {} > budget {}", total, budget);
        let stats = limiter.stats();
        prop_assert_eq!(stats.total_labels, total);
        for (k, set) in &kept {
            prop_assert!(set.len() <= limit, "{} kept {} > {}", k, set.len(), limit);
            prop_assert_eq!(stats.label_cardinality[k], set.len());
        }
        // After the race, every kept value is still kept and every other value is coarsened.
        for ((k, v), _) in answer {
            let now = limiter.admit(&k, &v);
            let was_kept = kept.get(&k).is_some_and(|s| s.contains(&v));
            prop_assert_eq!(now.is_kept(), was_kept);
        }
    }
}

#[test]
fn racing_first_admissions_never_exceed_the_limit() {
    let limits = CardinalityLimits {
        max_label_values: 50,
        ..Default::default()
    };
    let limiter = Arc::new(CardinalityLimiter::new(limits).expect("valid"));
    let threads = 4;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let limiter = Arc::clone(&limiter);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                (0..2_000)
                    .filter(|i| limiter.admit("id", &format!("{t}-{i}")).is_kept())
                    .count()
            })
        })
        .collect();
    let kept: usize = handles
        .into_iter()
        .map(|h| h.join().expect("thread panicked"))
        .sum();
    assert_eq!(kept, 50);
    let stats = limiter.stats();
    assert_eq!(stats.label_cardinality["id"], 50);
    assert_eq!(stats.overflow["id"].overflowed_admissions, 4 * 2_000 - 50);
}
