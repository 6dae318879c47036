//! Consistent decisions: independent samplers agree, and lowering the rate only removes.

use tta_sampling::{
    AdaptiveConfig, AdaptiveSampler, CompositeSampler, SamplingConfig, SamplingKey, TraceId,
};

fn fixed(rate: f64) -> CompositeSampler {
    CompositeSampler::new(SamplingConfig {
        default_rate: rate,
        adaptive_enabled: false,
        ..Default::default()
    })
}

#[test]
fn independent_samplers_agree_on_every_id() {
    let a = fixed(0.05);
    let b = fixed(0.05);
    // An adaptive sampler at the same rate decides the same way too.
    let c = AdaptiveSampler::new(AdaptiveConfig {
        base_rate: 0.05,
        ..Default::default()
    });
    for i in 0..200_000u32 {
        let id = TraceId::random();
        let x = a.should_sample_head(id, None);
        let y = b.should_sample_head(id, None);
        assert_eq!(x.decision, y.decision, "{id}");
        assert_eq!(x.threshold, y.threshold);
        assert_eq!(c.should_sample(id, None).decision, x.decision);
        let key = format!("req-{i}");
        assert_eq!(
            a.should_sample_head(key.as_str(), None).decision,
            b.should_sample_head(key.as_bytes(), None).decision
        );
    }
}

#[test]
fn lowering_the_rate_only_removes_traces() {
    let rates = [
        1.0, 0.9, 0.5, 0.3333, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001, 0.0001, 0.0,
    ];
    let samplers: Vec<_> = rates.iter().map(|&r| fixed(r)).collect();
    for _ in 0..100_000 {
        let id = TraceId::random();
        let kept: Vec<bool> = samplers
            .iter()
            .map(|s| s.should_sample_head(id, None).is_sampled())
            .collect();
        // Once dropped at some rate, dropped at every lower rate.
        assert!(kept.windows(2).all(|w| w[0] || !w[1]), "{id} {kept:?}");
        assert!(kept[0] && !kept[rates.len() - 1]);
    }
    // Keys of every kind map into the same 56-bit space.
    assert!("x".randomness().value() < 1 << 56);
}
