//! The guide's tail rules, as a table.

use tta_sampling::SamplingDecision::{Drop, Sample};
use tta_sampling::SamplingReason::{Error, HeadRate, Slow};
use tta_sampling::{CompositeSampler, SamplingConfig, SamplingResult, Threshold, TraceId};

#[test]
fn tail_rules_table() {
    let head_keep = SamplingResult {
        decision: Sample,
        reason: HeadRate,
        threshold: Threshold::from_probability(0.05).ok(),
    };
    let head_drop = SamplingResult {
        decision: Drop,
        reason: HeadRate,
        threshold: None,
    };
    let always = Some(Threshold::ALWAYS);
    // (errors rule, slow rule, has_error, duration_ms, head, expected)
    let table = [
        (true, true, true, 10.0, head_drop, (Sample, Error, always)),
        (true, true, true, 5000.0, head_drop, (Sample, Error, always)),
        (true, true, false, 1000.1, head_drop, (Sample, Slow, always)),
        (true, true, false, 1000.0, head_drop, (Drop, HeadRate, None)), // not strictly greater
        (
            true,
            true,
            false,
            10.0,
            head_keep,
            (Sample, HeadRate, head_keep.threshold),
        ),
        (true, true, true, 10.0, head_keep, (Sample, Error, always)),
        (false, true, true, 10.0, head_drop, (Drop, HeadRate, None)),
        (false, true, true, 2000.0, head_drop, (Sample, Slow, always)),
        (
            true,
            false,
            false,
            2000.0,
            head_drop,
            (Drop, HeadRate, None),
        ),
        (
            false,
            false,
            true,
            2000.0,
            head_drop,
            (Drop, HeadRate, None),
        ),
        (
            false,
            false,
            true,
            2000.0,
            head_keep,
            (Sample, HeadRate, head_keep.threshold),
        ),
        (
            true,
            true,
            false,
            f64::NAN,
            head_drop,
            (Drop, HeadRate, None),
        ),
    ];
    for (errors, slow, has_error, duration, head, (decision, reason, threshold)) in table {
        let s = CompositeSampler::new(SamplingConfig {
            always_sample_errors: errors,
            always_sample_slow: slow,
            slow_threshold_ms: 1000.0,
            ..Default::default()
        });
        let r = s.should_sample_tail(TraceId::random(), has_error, duration, &head);
        assert_eq!(
            r,
            SamplingResult {
                decision,
                reason,
                threshold
            },
            "errors={errors} slow={slow} has_error={has_error} duration={duration} head={head:?}"
        );
        let stats = s.stats().tail;
        assert_eq!(stats.decisions, 1);
        let by_reason = if decision == Sample {
            stats.sampled_by_reason
        } else {
            stats.dropped_by_reason
        };
        assert_eq!(by_reason.get(reason), 1);
    }
}

#[test]
fn tail_rules_follow_hot_reload() {
    let s = CompositeSampler::new(SamplingConfig::default());
    let head = s.should_sample_head("trace-1", None);
    let drop_head = SamplingResult {
        decision: Drop,
        ..head
    };
    assert_eq!(
        s.should_sample_tail("trace-1", false, 600.0, &drop_head)
            .decision,
        Drop
    );
    s.reconfigure(SamplingConfig {
        slow_threshold_ms: 500.0,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        s.should_sample_tail("trace-1", false, 600.0, &drop_head)
            .reason,
        Slow
    );
    // Switching both rules off reaches the next decision too.
    s.reconfigure(SamplingConfig {
        slow_threshold_ms: 500.0,
        always_sample_errors: false,
        always_sample_slow: false,
        ..Default::default()
    })
    .unwrap();
    let tail = s.should_sample_tail("trace-1", true, 600.0, &drop_head);
    assert_eq!(tail.decision, Drop);
    assert_eq!(tail.reason, drop_head.reason);
}
