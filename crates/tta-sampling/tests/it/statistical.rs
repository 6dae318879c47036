//! Over 10^6 random ids the sampled fraction is within 5 sigma of the threshold's probability.

use tta_sampling::{CompositeSampler, SamplingConfig, TraceId};

const N: u64 = 1_000_000;

fn sampler(rate: f64) -> CompositeSampler {
    CompositeSampler::new(SamplingConfig {
        default_rate: rate,
        adaptive_enabled: false,
        ..Default::default()
    })
}

fn check(rate: f64, kept: u64) {
    let n = N as f64;
    let sigma = (n * rate * (1.0 - rate)).sqrt();
    let diff = (kept as f64 - n * rate).abs();
    assert!(
        diff <= 5.0 * sigma,
        "rate {rate}: kept {kept} of {N}, {:.2} sigma",
        diff / sigma
    );
}

#[test]
fn trace_ids_sample_at_the_configured_rate() {
    for rate in [0.5, 0.2, 0.1, 0.05, 0.01, 0.001] {
        let s = sampler(rate);
        let p = s.current_threshold().unwrap().probability();
        let kept = (0..N)
            .filter(|_| s.should_sample_head(TraceId::random(), None).is_sampled())
            .count() as u64;
        check(p, kept);
        assert_eq!(s.stats().head.sampled, kept);
    }
}

#[test]
fn string_ids_sample_at_the_configured_rate() {
    for rate in [0.3, 0.05, 0.01] {
        let s = sampler(rate);
        let p = s.current_threshold().unwrap().probability();
        let mut key = String::new();
        let kept = (0..N)
            .filter(|i| {
                use std::fmt::Write;
                key.clear();
                let _ = write!(key, "trace-{i}");
                s.should_sample_head(key.as_str(), None).is_sampled()
            })
            .count() as u64;
        check(p, kept);
    }
}
