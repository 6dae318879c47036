//! Adaptive sampling: convergence under a simulated load and bounds under adversarial input.

use std::sync::Arc;
use std::time::Duration;

use tta_core::ManualClock;
use tta_sampling::{AdaptiveConfig, AdaptiveSampler, CompositeSampler, SamplingConfig, TraceId};

const INTERVAL: Duration = Duration::from_secs(60);

fn config(base: f64) -> AdaptiveConfig {
    AdaptiveConfig {
        base_rate: base,
        min_rate: 0.01,
        max_rate: 0.5,
        target_overhead: 0.02,
        adjustment_interval: INTERVAL,
    }
}

/// A tiny deterministic generator for measurement noise.
struct Noise(u64);
impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0 // [-1, 1)
    }
}

/// Runs `intervals` adjustment intervals of a service whose overhead is
/// `baseline + cost * rate` (times `1 ± noise`), returning the rate after each interval.
fn simulate(base: f64, baseline: f64, cost: f64, noise: f64, intervals: usize) -> Vec<f64> {
    let clock = Arc::new(ManualClock::new(0));
    let s = AdaptiveSampler::with_clock(config(base), clock.clone());
    let mut rng = Noise(0x2545_f491_4f6c_dd1d);
    let mut rates = Vec::new();
    for _ in 0..intervals {
        clock.advance(INTERVAL);
        // Many requests per interval, each reporting the overhead measured at the current rate.
        for _ in 0..50 {
            let measured = (baseline + cost * s.current_rate()) * (1.0 + noise * rng.next());
            s.should_sample(TraceId::random(), Some(measured));
        }
        rates.push(s.current_rate());
    }
    assert!(s.stats().adjustments <= intervals as u64);
    rates
}

fn direction_changes(rates: &[f64]) -> usize {
    let moves: Vec<f64> = rates
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d != 0.0)
        .collect();
    moves
        .windows(2)
        .filter(|m| m[0].signum() != m[1].signum())
        .count()
}

#[test]
fn converges_without_oscillating_when_overhead_is_proportional_to_rate() {
    // cost per unit rate, ideal rate = 0.02 / cost.
    for (base, cost) in [
        (0.5, 0.4),
        (0.01, 0.4),
        (0.2, 0.1),
        (0.05, 1.0),
        (0.3, 0.07),
    ] {
        let ideal = 0.02 / cost;
        let rates = simulate(base, 0.0, cost, 0.0, 40);
        let last = *rates.last().unwrap();
        assert!(
            (last / ideal - 1.0).abs() <= 0.05 + 1e-9,
            "base {base} cost {cost}: {last} vs {ideal}"
        );
        assert_eq!(
            direction_changes(&rates),
            0,
            "base {base} cost {cost}: {rates:?}"
        );
        // Within 10 intervals, and it stays put once there.
        let settled = rates
            .iter()
            .position(|r| (r / ideal - 1.0).abs() <= 0.05 + 1e-9)
            .unwrap();
        assert!(settled <= 10, "{settled}: {rates:?}");
        assert!(
            rates[settled..].windows(2).all(|w| w[0] == w[1]),
            "{rates:?}"
        );
    }
}

#[test]
fn noise_inside_the_dead_band_does_not_make_it_hunt() {
    let ideal = 0.02 / 0.4;
    let rates = simulate(0.5, 0.0, 0.4, 0.02, 200);
    let tail = &rates[20..];
    assert!(
        tail.iter().all(|r| (r / ideal - 1.0).abs() <= 0.08),
        "{tail:?}"
    );
    assert!(direction_changes(tail) <= 2, "{tail:?}");
}

#[test]
fn pins_at_the_bounds_when_the_target_is_out_of_reach() {
    // A fixed cost above the target: the rate goes to min_rate and stays.
    let rates = simulate(0.2, 0.05, 0.1, 0.0, 20);
    assert_eq!(*rates.last().unwrap(), 0.01);
    // Sampling is nearly free: the rate goes to max_rate and stays.
    let rates = simulate(0.02, 0.0, 0.001, 0.0, 20);
    assert_eq!(*rates.last().unwrap(), 0.5);
    assert_eq!(direction_changes(&rates), 0);
}

#[test]
fn bounds_hold_under_adversarial_overhead_inputs() {
    let clock = Arc::new(ManualClock::new(0));
    let s = AdaptiveSampler::with_clock(config(0.1), clock.clone());
    let inputs = [
        f64::NAN,
        -1.0,
        -0.0,
        0.0,
        1e-300,
        1.0,
        1.0000001,
        1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.02,
        0.5,
        5e-324,
        -f64::NAN,
    ];
    let invalid = |o: f64| !(0.0..=1.0).contains(&o);
    let mut rejected = 0;
    let mut rng = Noise(7);
    for i in 0..20_000usize {
        let o = inputs[i % inputs.len()];
        rejected += 2 * u64::from(invalid(o));
        if rng.next() > 0.0 {
            clock.advance(INTERVAL);
        }
        s.should_sample(TraceId::random(), Some(o));
        s.adjust(o);
        let stats = s.stats();
        assert!((0.01..=0.5).contains(&stats.current_rate), "{stats:?}");
        let p = s.threshold().unwrap().probability();
        assert!((0.01..=0.5).contains(&p), "{p}");
    }
    let stats = s.stats();
    assert_eq!(stats.rejected_overhead_inputs, rejected);
    assert!(
        stats
            .last_overhead
            .is_some_and(|o| (0.0..=1.0).contains(&o))
    );
}

#[test]
fn composite_sampler_uses_the_adaptive_rate_with_its_bounds() {
    let clock = Arc::new(ManualClock::new(0));
    let s = CompositeSampler::with_clock(
        SamplingConfig {
            default_rate: 0.05,
            adaptive_min_rate: 0.01,
            adaptive_max_rate: 0.2,
            adaptive_adjustment_interval_seconds: 60.0,
            ..Default::default()
        },
        clock.clone(),
    );
    for _ in 0..10 {
        clock.advance(INTERVAL);
        s.should_sample_head(TraceId::random(), Some(0.0)); // free: climb to the max
    }
    assert_eq!(s.current_rate(), 0.2);
    for _ in 0..10 {
        clock.advance(INTERVAL);
        s.should_sample_head(TraceId::random(), Some(0.9)); // expensive: fall to the min
    }
    assert_eq!(s.current_rate(), 0.01);
    let stats = s.stats();
    assert_eq!(stats.adaptive.adjustments, 20);
    assert!(stats.adaptive.at_min_rate);
    assert_eq!(stats.head.decisions, 20);
    assert_eq!(
        stats.head.decisions,
        stats.head.sampled_by_reason.adaptive + stats.head.dropped_by_reason.adaptive
    );
}
