use proptest::prelude::*;

use super::*;

/// The specification's floating-point algorithm (probability -> th text), written here
/// independently of the exact integer one under test, to cross-check it.
fn spec_reference(p: f64, digits: u32) -> Option<String> {
    if p == 1.0 {
        return Some("0".into());
    }
    let exp = ((p.to_bits() >> 52) & 0x7ff) as i32 - 1022;
    let precision = (digits as i32 + (-exp).div_euclid(4)).clamp(1, 12);
    let mut rejection = 2.0 - p;
    rejection += 0.5 * 2f64.powi(-4 * precision);
    let hex = if rejection >= 2.0 {
        "fffffffffffff".to_owned()
    } else {
        format!("{:013x}", rejection.to_bits() & ((1 << 52) - 1))
    };
    let th = hex[..precision as usize].trim_end_matches('0');
    // The reference can only express up to 12 digits.
    (!th.is_empty() && digits as i32 + (-exp).div_euclid(4) <= 12).then(|| th.to_owned())
}

#[test]
fn matches_the_specification_algorithm_on_a_grid() {
    let mut probabilities: Vec<f64> = (1..=1000).map(|k| f64::from(k) / 1000.0).collect();
    probabilities.extend((1..=20_000).map(|n| 1.0 / f64::from(n)));
    probabilities.extend((1..=50).map(|k| 10f64.powf(-f64::from(k) / 5.0)));
    let mut compared = 0;
    for &p in &probabilities {
        for digits in 1..=6 {
            if let Some(expected) = spec_reference(p, digits) {
                let got = Threshold::from_probability_with_precision(p, digits).unwrap();
                assert_eq!(got.to_string(), expected, "p = {p}, digits = {digits}");
                compared += 1;
            }
        }
    }
    assert!(compared > 100_000, "{compared}");
}

#[test]
fn special_values() {
    let th = |p: f64| Threshold::from_probability(p).unwrap().to_string();
    assert_eq!(th(1.0), "0");
    assert_eq!(th(0.5), "8");
    assert_eq!(th(0.25), "c");
    assert_eq!(th(0.05), "f3333"); // one leading f: 5 digits
    assert_eq!(th(MIN_PROBABILITY), "ffffffffffffff");
    assert_eq!(
        Threshold::from_probability(MIN_PROBABILITY).unwrap(),
        Threshold::MAX
    );
    assert_eq!(Threshold::MAX.probability(), MIN_PROBABILITY);
    assert_eq!(Threshold::ALWAYS.probability(), 1.0);
    assert_eq!(Threshold::ALWAYS.adjusted_count(), 1.0);
    assert_eq!(Threshold::parse("8").unwrap().adjusted_count(), 2.0);
    // Close to 1, rounding can reach th:0.
    assert_eq!(th(0.999_999_99), "0");
}

#[test]
fn rejects_out_of_range_probabilities_and_precisions() {
    for p in [
        0.0,
        -0.5,
        1.000_000_1,
        f64::NAN,
        f64::INFINITY,
        MIN_PROBABILITY / 2.0,
    ] {
        assert!(
            matches!(
                Threshold::from_probability(p),
                Err(SamplingError::Probability(_))
            ),
            "{p}"
        );
    }
    assert_eq!(
        Threshold::from_probability_with_precision(0.5, 0),
        Err(SamplingError::Precision(0))
    );
    assert_eq!(
        Threshold::from_probability_with_precision(0.5, 15),
        Err(SamplingError::Precision(15))
    );
    assert_eq!(
        Threshold::from_probability(2.0).unwrap_err().to_string(),
        "sampling probability must be within [2^-56, 1], got 2"
    );
}

#[test]
fn parse_rules() {
    assert_eq!(Threshold::parse("0").unwrap(), Threshold::ALWAYS);
    assert_eq!(Threshold::parse("ffffffffffffff").unwrap(), Threshold::MAX);
    assert_eq!(Threshold::parse("c").unwrap().raw(), 0xc0_0000_0000_0000);
    for bad in ["", "fffffffffffffff", "C", "0x1", "g", " 8", "é"] {
        let err = Threshold::parse(bad).unwrap_err();
        assert!(
            matches!(err, SamplingError::Text { what: "th", .. }),
            "{bad}: {err}"
        );
    }
    assert_eq!(
        Threshold::parse("xyz").unwrap_err().to_string(),
        "invalid th value \"xyz\": tracestate ot member: th must be lowercase hex"
    );
}

#[test]
fn raw_conversions() {
    assert_eq!(Threshold::from_raw(u64::MAX), Threshold::MAX);
    assert_eq!(Threshold::from_raw(5).raw(), 5);
    assert!(Threshold::try_from_raw(1 << 56).is_err());
    assert_eq!(Threshold::try_from_raw((1 << 56) - 1), Ok(Threshold::MAX));
}

#[test]
fn keeps_iff_randomness_at_least_threshold() {
    let t = Threshold::parse("8").unwrap();
    assert!(t.keeps(Randomness::from_rv(0x80_0000_0000_0000).unwrap()));
    assert!(!t.keeps(Randomness::from_rv(0x7f_ffff_ffff_ffff).unwrap()));
    assert!(Threshold::ALWAYS.keeps(Randomness::from_rv(0).unwrap()));
}

#[test]
fn randomness_sources() {
    let id = TraceId::from_hex("ffffffffffffffffff0123456789abcd").unwrap();
    assert_eq!(Randomness::from_trace_id(id).value(), 0x0123456789abcd);
    assert_eq!(
        Randomness::from_bytes_id(b"trace-123").value(),
        twox_hash::XxHash3_64::oneshot(b"trace-123") >> 8
    );
    assert_eq!(
        Randomness::from_str_id("trace-123"),
        "trace-123".randomness()
    );
    assert!(Randomness::from_str_id("a").value() < MAX_THRESHOLD);
    assert!(Randomness::from_rv(1 << 56).is_err());
    assert_eq!(Randomness::parse_rv("00000000000000").unwrap().value(), 0);
    for bad in [
        "",
        "0123456789abc",
        "0123456789abcde",
        "0123456789ABCD",
        "0123456789abcg",
        "ééééééé",
    ] {
        assert!(Randomness::parse_rv(bad).is_err(), "{bad}");
    }
    assert_eq!(
        Randomness::parse_rv("12").unwrap_err().to_string(),
        "invalid rv value \"12\": must be exactly 14 hex digits, got 2 bytes"
    );
}

#[test]
fn serde_uses_th_text() {
    let t = Threshold::from_probability(0.01).unwrap();
    assert_eq!(serde_json::to_string(&t).unwrap(), "\"fd70a\"");
    assert_eq!(serde_json::from_str::<Threshold>("\"fd70a\"").unwrap(), t);
    assert!(serde_json::from_str::<Threshold>("\"FD70A\"").is_err());
}

#[test]
fn rate_thresholds() {
    assert_eq!(threshold_for_rate(1.0), 0);
    assert_eq!(threshold_for_rate(0.0), NEVER);
    assert_eq!(threshold_for_rate(f64::NAN), NEVER);
    assert_eq!(threshold_for_rate(1e-30), Threshold::MAX.raw());
    assert_eq!(threshold_for_rate(0.5), 1 << 55);
}

proptest! {
    #[test]
    fn rounding_is_to_nearest_at_the_effective_precision(p in MIN_PROBABILITY..1.0f64, digits in 1u32..=14) {
        let t = Threshold::from_probability_with_precision(p, digits).unwrap().raw();
        let exp = ((p.to_bits() >> 52) & 0x7ff) as u32;
        let precision = (digits + (1022 - exp) / 4).min(14);
        let unit = 1u64 << (56 - 4 * precision);
        prop_assert_eq!(t % unit, 0);
        // Compare with (1 - p) * 2^56 in 128-bit fixed point.
        let exact = (1.0 - p) * MAX_THRESHOLD as f64;
        let err = (t as f64 - exact).abs();
        // Half a unit of rounding, or a full unit when capped below 2^56, plus float slack.
        prop_assert!(err <= unit as f64 + exact * 1e-15 + 1.0, "p={} t={:x} err={} unit={}", p, t, err, unit);
        prop_assert!(err <= unit as f64 / 2.0 + exact * 1e-15 + 1.0 || t == MAX_THRESHOLD - unit);
    }

    #[test]
    fn th_text_round_trips(raw in 0u64..MAX_THRESHOLD) {
        let t = Threshold::from_raw(raw);
        prop_assert_eq!(Threshold::parse(&t.to_string()).unwrap(), t);
        let r = Randomness::from_rv(raw).unwrap();
        prop_assert_eq!(Randomness::parse_rv(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn any_text_parses_or_errors(s in "\\PC{0,20}") {
        let _ = Threshold::parse(&s);
        let _ = Randomness::parse_rv(&s);
    }

    #[test]
    fn any_float_converts_or_errors(bits in any::<u64>(), digits in 0u32..20) {
        let p = f64::from_bits(bits);
        match Threshold::from_probability_with_precision(p, digits) {
            Ok(t) => prop_assert!((MIN_PROBABILITY..=1.0).contains(&p) && t.raw() < MAX_THRESHOLD),
            Err(_) => prop_assert!(!(MIN_PROBABILITY..=1.0).contains(&p) || !(1..=14).contains(&digits)),
        }
    }

    #[test]
    fn bounded_thresholds_stay_within_bounds(a in 1e-6..1.0f64, b in 1e-6..1.0f64, rate in 0.0..1.0f64) {
        let (min, max) = if a <= b { (a, b) } else { (b, a) };
        let p = Threshold::from_raw(bounded_threshold(rate, min, max)).probability();
        prop_assert!(p >= min && p <= max, "min={} max={} p={}", min, max, p);
    }

    #[test]
    fn lower_probability_never_lowers_the_threshold(a in MIN_PROBABILITY..=1.0f64, b in MIN_PROBABILITY..=1.0f64) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let t_lo = Threshold::from_probability(lo).unwrap();
        let t_hi = Threshold::from_probability(hi).unwrap();
        prop_assert!(t_lo >= t_hi);
    }
}
