use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tta_core::ManualClock;

use super::*;

const SECOND: u64 = 1_000_000_000;

fn sampler(clock: &Arc<ManualClock>) -> AdaptiveSampler {
    AdaptiveSampler::with_clock(
        AdaptiveConfig {
            base_rate: 0.1,
            min_rate: 0.01,
            max_rate: 0.5,
            target_overhead: 0.02,
            adjustment_interval: Duration::from_secs(60),
        },
        clock.clone(),
    )
}

#[test]
fn adjusts_at_most_once_per_interval() {
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let s = sampler(&clock);
    for _ in 0..100 {
        s.should_sample("x", Some(0.08));
    }
    assert_eq!(s.stats().adjustments, 0);
    assert_eq!(s.current_rate(), 0.1);
    clock.advance(Duration::from_secs(60));
    for _ in 0..100 {
        s.should_sample("x", Some(0.08));
    }
    let stats = s.stats();
    assert_eq!(stats.adjustments, 1);
    assert!(
        (stats.current_rate - 0.05).abs() < 1e-12,
        "{}",
        stats.current_rate
    );
    assert_eq!(stats.decisions, 200);
    assert_eq!(stats.sampled + stats.dropped, 200);
    // Decisions without an overhead never adjust.
    clock.advance(Duration::from_secs(600));
    s.should_sample("x", None);
    assert_eq!(s.stats().adjustments, 1);
    s.should_sample("x", Some(0.02));
    assert_eq!(s.stats().adjustments, 2);
}

#[test]
fn one_thread_wins_each_interval() {
    let clock = Arc::new(ManualClock::new(0));
    let s = Arc::new(sampler(&clock));
    for round in 1..=5u64 {
        clock.advance(Duration::from_secs(60));
        std::thread::scope(|scope| {
            for t in 0..4 {
                let s = &s;
                scope.spawn(move || {
                    for i in 0..1000 {
                        s.should_sample(format!("{t}-{i}").as_str(), Some(0.5));
                    }
                });
            }
        });
        assert_eq!(s.stats().adjustments, round);
    }
    // 0.1 halves each round (25x over target, step capped at 2x) and pins at min_rate.
    assert_eq!(s.current_rate(), 0.01);
    assert!(s.stats().at_min_rate);
}

#[test]
fn explicit_adjust_and_rejected_inputs() {
    let clock = Arc::new(ManualClock::new(0));
    let s = sampler(&clock);
    for bad in [f64::NAN, -0.1, 1.5, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(s.adjust(bad), 0.1);
        s.should_sample("x", Some(bad));
    }
    let stats = s.stats();
    assert_eq!(stats.rejected_overhead_inputs, 10);
    assert_eq!(stats.adjustments, 0);
    assert_eq!(stats.last_overhead, None);
    assert_eq!(s.adjust(0.005), 0.2); // 4x under target: double
    assert_eq!(s.stats().last_overhead, Some(0.005));
    assert_eq!(s.adjust(0.0), 0.4);
    assert_eq!(s.adjust(0.0), 0.5);
    assert!(s.stats().at_max_rate);
}

#[test]
fn threshold_follows_rate_within_bounds() {
    let clock = Arc::new(ManualClock::new(0));
    let s = sampler(&clock);
    for o in [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9] {
        s.adjust(o);
        let p = s.threshold().unwrap().probability();
        assert!((0.01..=0.5).contains(&p), "{p}");
        assert!((p - s.current_rate()).abs() / s.current_rate() < 1e-3);
    }
    assert!(s.stats().at_min_rate);
}

#[test]
fn reconfigure_keeps_or_resets_rate() {
    let clock = Arc::new(ManualClock::new(0));
    let s = sampler(&clock);
    s.adjust(0.08); // 0.1 -> 0.05
    let mut c = s.config();
    c.min_rate = 0.07;
    s.reconfigure(c.clone()).unwrap();
    assert_eq!(s.current_rate(), 0.07); // kept, clamped into the new bounds
    c.base_rate = 0.3;
    s.reconfigure(c.clone()).unwrap();
    assert_eq!(s.current_rate(), 0.3); // base changed: restart there
    let bad = AdaptiveConfig { min_rate: 0.0, ..c };
    assert_eq!(
        s.reconfigure(bad).unwrap_err().to_string(),
        "min_rate must be within (0, 1], got 0"
    );
    assert_eq!(s.current_rate(), 0.3);
}

#[test]
fn clock_going_back_does_not_stall_adjustments() {
    let clock = Arc::new(ManualClock::new(10_000 * SECOND));
    let s = sampler(&clock);
    clock.set(SECOND); // far in the past
    s.should_sample("x", Some(0.08));
    assert_eq!(s.stats().adjustments, 1);
    s.should_sample("x", Some(0.08));
    assert_eq!(s.stats().adjustments, 1);
}

#[test]
fn invalid_config_is_sanitized_or_rejected() {
    let bad = AdaptiveConfig {
        base_rate: f64::NAN,
        min_rate: 0.5,
        max_rate: 0.1,
        target_overhead: -1.0,
        adjustment_interval: Duration::ZERO,
    };
    assert!(AdaptiveSampler::try_new(bad.clone()).is_err());
    let s = AdaptiveSampler::new(bad);
    let c = s.config();
    assert_eq!((c.min_rate, c.max_rate), (0.1, 0.5));
    assert!(c.validate().is_ok());
    assert!((0.1..=0.5).contains(&s.current_rate()));
}

proptest! {
    #[test]
    fn next_rate_stays_in_bounds_and_moves_toward_target(
        min in 1e-4..0.5f64, span in 0.0..0.5f64, rate in 0.0..1.0f64,
        target in 1e-4..1.0f64, overhead in 0.0..=1.0f64,
    ) {
        let c = AdaptiveConfig { base_rate: min, min_rate: min, max_rate: min + span, target_overhead: target, ..Default::default() };
        let next = c.next_rate(rate, overhead);
        prop_assert!(next >= c.min_rate && next <= c.max_rate);
        let current = rate.clamp(c.min_rate, c.max_rate);
        if overhead > target {
            prop_assert!(next <= current);
        } else if overhead < target {
            prop_assert!(next >= current);
        }
        prop_assert!(next <= current * AdaptiveConfig::MAX_STEP + 1e-15 || next == c.min_rate);
        prop_assert!(next >= current / AdaptiveConfig::MAX_STEP - 1e-15 || next == c.max_rate);
    }
}
