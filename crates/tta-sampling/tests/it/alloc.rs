//! Decisions allocate nothing (counted by the test binary's global allocator).

use std::sync::Arc;
use std::time::Duration;

use tta_core::ManualClock;
use tta_sampling::{
    AdaptiveConfig, AdaptiveSampler, CompositeSampler, ParentContext, Randomness, SamplingConfig,
    Threshold, TraceId,
};

use crate::counting::allocations;

#[test]
fn head_tail_and_adaptive_decisions_do_not_allocate() {
    let clock = Arc::new(ManualClock::new(0));
    let fixed = CompositeSampler::new(SamplingConfig {
        default_rate: 0.05,
        adaptive_enabled: false,
        ..Default::default()
    });
    let adaptive = CompositeSampler::with_clock(SamplingConfig::default(), clock.clone());
    let standalone = AdaptiveSampler::with_clock(AdaptiveConfig::default(), clock.clone());
    let ids: Vec<TraceId> = (0..10_000).map(|_| TraceId::random()).collect();
    let parent = ParentContext {
        sampled: true,
        remote: true,
        threshold: Threshold::from_probability(0.05).ok(),
        randomness: Some(Randomness::from_rv(0xff_ffff_ffff_0000).unwrap()),
    };
    // Warm up thread-locals outside the measured region: counter stripes, and the
    // configuration cell's per-thread slot (its first read on a thread may allocate it once),
    // which an adaptive adjustment reads.
    fixed.should_sample_head(ids[0], None);
    clock.advance(Duration::from_secs(60));
    adaptive.should_sample_head(ids[0], None);
    standalone.should_sample(ids[0], None);

    let before = allocations();
    let mut kept = 0u32;
    for (i, id) in ids.iter().enumerate() {
        let head = fixed.should_sample_head(*id, None);
        kept += u32::from(head.is_sampled());
        let tail = fixed.should_sample_tail(*id, i % 7 == 0, (i % 1500) as f64, &head);
        kept += u32::from(tail.is_sampled());
        kept += u32::from(fixed.should_sample_head("trace-123", None).is_sampled());
        kept += u32::from(
            fixed
                .should_sample_with_parent(id, Some(&parent), None)
                .is_sampled(),
        );
        if i % 1000 == 0 {
            clock.advance(Duration::from_secs(60)); // adjustments happen inside the loop
        }
        kept += u32::from(adaptive.should_sample_head(*id, Some(0.03)).is_sampled());
        kept += u32::from(standalone.should_sample(id, Some(0.01)).is_sampled());
        let th = head.threshold.map(|t| t.to_th()); // formatting th is on the stack
        kept += u32::from(th.is_some());
    }
    assert_eq!(allocations() - before, 0, "decisions allocated");
    assert!(kept > 0);
    assert!(adaptive.stats().adaptive.adjustments >= 9);
    assert!(standalone.stats().adjustments >= 9);
}
