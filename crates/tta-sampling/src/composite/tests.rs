use proptest::prelude::*;

use super::*;
use crate::SamplingDecision::{Drop, Sample};

fn fixed(rate: f64) -> CompositeSampler {
    CompositeSampler::new(SamplingConfig {
        default_rate: rate,
        adaptive_enabled: false,
        ..Default::default()
    })
}

fn rv(v: u64) -> Randomness {
    Randomness::from_rv(v).unwrap()
}

#[test]
fn samplers_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<CompositeSampler>();
    check::<AdaptiveSampler>();
    check::<crate::TraceBuffer>();
}

#[test]
fn root_decisions_carry_the_rate_threshold() {
    let s = fixed(0.5);
    let keep = s.should_sample_head(rv(0x80_0000_0000_0000), None);
    assert_eq!(
        keep,
        SamplingResult::sample(SamplingReason::HeadRate, Threshold::parse("8").ok())
    );
    let drop = s.should_sample_head(rv(0x7f_ffff_ffff_ffff), None);
    assert_eq!(drop, SamplingResult::drop(SamplingReason::HeadRate));
    assert_eq!(s.current_threshold(), Threshold::parse("8").ok());

    let never = fixed(0.0);
    assert_eq!(
        never.should_sample_head(rv((1 << 56) - 1), None).decision,
        Drop
    );
    assert_eq!(never.current_threshold(), None);
    let always = fixed(1.0);
    assert_eq!(
        always.should_sample_head(rv(0), None).threshold,
        Some(Threshold::ALWAYS)
    );
}

#[test]
fn the_five_parent_based_branches() {
    let s = fixed(0.5);
    let th = Threshold::parse("8").ok();
    let high = rv(0xf0_0000_0000_0000); // kept at 0.5
    let low = rv(0x10_0000_0000_0000); // dropped at 0.5
    let with_th = |mut p: ParentContext| {
        p.threshold = th;
        p
    };
    // (parent, key, expected decision, reason, threshold)
    let cases = [
        (None, high, Sample, SamplingReason::HeadRate, th),
        (None, low, Drop, SamplingReason::HeadRate, None),
        (
            Some(ParentContext::remote(true)),
            low,
            Sample,
            SamplingReason::ParentSampled,
            None,
        ),
        (
            Some(with_th(ParentContext::remote(true))),
            high,
            Sample,
            SamplingReason::ParentSampled,
            th,
        ),
        (
            Some(ParentContext::remote(false)),
            high,
            Drop,
            SamplingReason::ParentNotSampled,
            None,
        ),
        (
            Some(ParentContext::local(true)),
            low,
            Sample,
            SamplingReason::ParentSampled,
            None,
        ),
        (
            Some(with_th(ParentContext::local(true))),
            high,
            Sample,
            SamplingReason::ParentSampled,
            th,
        ),
        (
            Some(ParentContext::local(false)),
            high,
            Drop,
            SamplingReason::ParentNotSampled,
            None,
        ),
    ];
    for (parent, key, decision, reason, threshold) in cases {
        let r = s.should_sample_with_parent(key, parent.as_ref(), None);
        assert_eq!(
            r,
            SamplingResult {
                decision,
                reason,
                threshold
            },
            "{parent:?} {key:?}"
        );
    }
    assert_eq!(s.stats().thresholds_erased, 0);
    assert_eq!(s.stats().head.decisions, cases.len() as u64);
}

#[test]
fn inconsistent_parent_thresholds_are_erased() {
    let s = fixed(0.5);
    let parent = ParentContext {
        sampled: true,
        remote: true,
        threshold: Threshold::parse("8").ok(),
        randomness: None,
    };
    // R < T but the parent says sampled: the th is wrong, erase it, keep following the flag.
    let r = s.should_sample_with_parent(rv(0x10_0000_0000_0000), Some(&parent), None);
    assert_eq!(
        r,
        SamplingResult::sample(SamplingReason::ParentSampled, None)
    );
    // The parent's explicit rv takes precedence over the key.
    let with_rv = ParentContext {
        randomness: Some(rv(0xf0_0000_0000_0000)),
        ..parent
    };
    let r = s.should_sample_with_parent(rv(0x10_0000_0000_0000), Some(&with_rv), None);
    assert_eq!(r.threshold, Threshold::parse("8").ok());
    // Not sampled although R >= T: inconsistent too (counted; the result is a drop anyway).
    let unsampled = ParentContext {
        sampled: false,
        ..parent
    };
    let r = s.should_sample_with_parent(rv(0xf0_0000_0000_0000), Some(&unsampled), None);
    assert_eq!(r, SamplingResult::drop(SamplingReason::ParentNotSampled));
    assert_eq!(s.stats().thresholds_erased, 2);
}

#[test]
fn branches_are_configurable() {
    let policy = ParentPolicy {
        root: BranchPolicy::NeverSample,
        remote_parent_sampled: BranchPolicy::Rate,
        remote_parent_not_sampled: BranchPolicy::AlwaysSample,
        local_parent_sampled: BranchPolicy::NeverSample,
        local_parent_not_sampled: BranchPolicy::Rate,
    };
    let s = fixed(0.5).with_parent_policy(policy);
    assert_eq!(s.parent_policy(), policy);
    let low = rv(0x10_0000_0000_0000);
    let high = rv(0xf0_0000_0000_0000);
    let at = |p: Option<ParentContext>, k| s.should_sample_with_parent(k, p.as_ref(), None);
    assert_eq!(at(None, high), SamplingResult::drop(SamplingReason::Policy));
    assert_eq!(at(Some(ParentContext::remote(true)), low).decision, Drop);
    assert_eq!(
        at(Some(ParentContext::remote(true)), high).reason,
        SamplingReason::HeadRate
    );
    assert_eq!(
        at(Some(ParentContext::remote(false)), low),
        SamplingResult::sample(SamplingReason::Policy, Some(Threshold::ALWAYS))
    );
    assert_eq!(at(Some(ParentContext::local(true)), high).decision, Drop);
    assert_eq!(at(Some(ParentContext::local(false)), high).decision, Sample);
    let stats = s.stats();
    assert_eq!(stats.head.sampled_by_reason.policy, 1);
    assert_eq!(stats.head.dropped_by_reason.policy, 2);
    assert_eq!(stats.head.sampled_by_reason.head_rate, 2);
}

#[test]
fn parent_from_traceparent() {
    let tp =
        tta_core::TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
            .unwrap();
    let ot = OtTraceState::parse("th:8;rv:ffffffffffffff").unwrap();
    let p = ParentContext::from_traceparent(&tp, Some(&ot));
    assert!(!p.sampled && p.remote);
    assert_eq!(p.randomness, Some(rv((1 << 56) - 1)));
    assert_eq!(
        ParentContext::from_traceparent(&tp, None),
        ParentContext::remote(false)
    );
}

#[test]
fn reconfigure_swaps_atomically_and_rejects_invalid() {
    let s = fixed(0.5);
    assert_eq!(s.current_rate(), 0.5);
    let bad = SamplingConfig {
        default_rate: 7.0,
        ..Default::default()
    };
    assert_eq!(
        s.reconfigure(bad).unwrap_err().to_string(),
        "default_rate must be within [0, 1], got 7"
    );
    assert_eq!(s.config().default_rate, 0.5);
    s.reconfigure(SamplingConfig {
        default_rate: 0.25,
        adaptive_enabled: false,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.current_threshold(), Threshold::parse("c").ok());
    s.reconfigure(SamplingConfig::default()).unwrap();
    let stats = s.stats();
    assert!(stats.adaptive_enabled);
    assert_eq!(stats.current_rate, 0.05);
    assert_eq!(
        s.should_sample_head(rv((1 << 56) - 1), None).reason,
        SamplingReason::Adaptive
    );
}

#[test]
fn adaptive_rate_drives_head_decisions() {
    let s = CompositeSampler::new(SamplingConfig::default());
    assert_eq!(s.current_rate(), 0.05);
    s.adaptive().adjust(0.08); // 4x over target: halve
    assert_eq!(s.current_rate(), 0.025);
    let t = s.current_threshold().unwrap();
    assert!((t.probability() - 0.025).abs() < 1e-5);
    s.should_sample_head("k", Some(f64::NAN));
    assert_eq!(s.stats().adaptive.rejected_overhead_inputs, 1);
}

#[test]
fn invalid_config_never_panics() {
    let s = CompositeSampler::new(SamplingConfig {
        default_rate: f64::NAN,
        adaptive_min_rate: -3.0,
        adaptive_max_rate: f64::INFINITY,
        slow_threshold_ms: f64::NAN,
        ..Default::default()
    });
    assert!(s.config().validate().is_ok());
    assert!(
        CompositeSampler::try_new(SamplingConfig {
            default_rate: -1.0,
            ..Default::default()
        })
        .is_err()
    );
}

proptest! {
    #[test]
    fn policy_packing_round_trips(bits in 0u32..1024) {
        let p = ParentPolicy::unpack(bits);
        prop_assert_eq!(ParentPolicy::unpack(p.pack()), p);
        prop_assert_eq!(p.pack(), bits);
    }

    #[test]
    fn any_config_gives_a_working_sampler(
        rate in prop::num::f64::ANY, min in prop::num::f64::ANY, max in prop::num::f64::ANY,
        slow in prop::num::f64::ANY, overhead in prop::option::of(prop::num::f64::ANY),
        key in any::<u128>(), adaptive in any::<bool>(), duration in prop::num::f64::ANY,
    ) {
        let s = CompositeSampler::new(SamplingConfig {
            default_rate: rate, adaptive_min_rate: min, adaptive_max_rate: max,
            slow_threshold_ms: slow, adaptive_enabled: adaptive, ..Default::default()
        });
        let head = s.should_sample_head(tta_core::TraceId::from_u128(key), overhead);
        s.adaptive().adjust(overhead.unwrap_or(0.5));
        let tail = s.should_sample_tail(tta_core::TraceId::from_u128(key), false, duration, &head);
        let r = s.current_rate();
        prop_assert!((0.0..=1.0).contains(&r));
        prop_assert!(tail.decision == head.decision || tail.reason == SamplingReason::Slow);
    }
}
