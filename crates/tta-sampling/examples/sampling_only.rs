//! Depending on `tta-sampling` alone: consistent head sampling, the guide's tail rules and an
//! adaptive sampler, with no runtime, threads or I/O.
//!
//! ```sh
//! cargo run -p tta-sampling --example sampling_only
//! ```

// An example program reports what it does on stdout.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use tta_sampling::{
    AdaptiveConfig, AdaptiveSampler, CompositeSampler, SamplingConfig, SamplingDecision, TraceId,
};

fn main() {
    let sampler = CompositeSampler::new(SamplingConfig {
        default_rate: 0.05,
        adaptive_enabled: false,
        ..Default::default()
    });

    // Head: a W3C trace id or any string id (the guide's correlation ids).
    let head = sampler.should_sample_head("trace-123", Some(0.02));
    println!(
        "head decision for \"trace-123\": {:?} ({})",
        head.decision,
        head.reason.as_str()
    );
    let kept = (0..100_000)
        .filter(|_| {
            sampler
                .should_sample_head(TraceId::random(), None)
                .is_sampled()
        })
        .count();
    println!("head-sampled {kept} of 100000 random trace ids at 5%");
    if let Some(th) = sampler.current_threshold() {
        println!("tracestate to propagate: ot=th:{th}");
    }

    // Tail: errors and slow requests are always kept, otherwise the head decision stands.
    for (has_error, duration_ms) in [(true, 12.0), (false, 1500.0), (false, 12.0)] {
        let tail = sampler.should_sample_tail("trace-123", has_error, duration_ms, &head);
        println!(
            "tail: error={has_error} duration={duration_ms}ms -> {} ({})",
            if tail.decision == SamplingDecision::Sample {
                "SAMPLE"
            } else {
                "DROP"
            },
            tail.reason.as_str()
        );
    }

    // Adaptive: the rate moves toward the overhead target, within its bounds.
    let adaptive = AdaptiveSampler::new(AdaptiveConfig {
        base_rate: 0.1,
        min_rate: 0.01,
        max_rate: 0.5,
        target_overhead: 0.02,
        adjustment_interval: Duration::from_secs(60),
    });
    for _ in 0..5 {
        // Simulated load: overhead proportional to the rate.
        let overhead = adaptive.current_rate() * 0.35;
        adaptive.adjust(overhead);
    }
    println!(
        "adaptive rate after 5 adjustments: {:.4}",
        adaptive.stats().current_rate
    );
}
