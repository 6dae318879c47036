//! The `metrics` recorder wrapper.

use std::sync::{Arc, Mutex};

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit,
};
use tta_cardinality::{CardinalityLimits, LimitedRecorder, OVERFLOW_VALUE};

/// Records the keys it is asked to register.
#[derive(Default, Clone)]
struct Capture(Arc<Mutex<Vec<(&'static str, Key)>>>);

impl Capture {
    fn push(&self, kind: &'static str, key: &Key) {
        self.0.lock().expect("lock").push((kind, key.clone()));
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.push("counter", key);
        Counter::noop()
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.push("gauge", key);
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.push("histogram", key);
        Histogram::noop()
    }
}

#[test]
fn every_label_of_every_kind_is_limited() {
    let capture = Capture::default();
    let limits = CardinalityLimits {
        max_label_values: 2,
        hash_high_cardinality: false,
        ..Default::default()
    };
    let recorder = LimitedRecorder::new(capture.clone(), limits).expect("valid");
    let meta = Metadata::new("test", metrics::Level::INFO, None);
    for i in 0..5 {
        let key = Key::from_parts(
            "requests_total",
            vec![
                Label::new("user", format!("u{i}")),
                Label::new("route", "/api"),
            ],
        );
        recorder.register_counter(&key, &meta).increment(1);
        recorder.register_gauge(&key, &meta).set(1.0);
        recorder.register_histogram(&key, &meta).record(1.0);
    }
    let seen = capture.0.lock().expect("lock").clone();
    assert_eq!(seen.len(), 15);
    for (i, chunk) in seen.chunks(3).enumerate() {
        for (kind, key) in chunk {
            assert_eq!(key.name(), "requests_total", "{kind}");
            let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
            let want_user = if i < 2 {
                format!("u{i}")
            } else {
                OVERFLOW_VALUE.to_string()
            };
            assert_eq!(
                labels,
                vec![("user", want_user.as_str()), ("route", "/api")],
                "{kind}"
            );
        }
    }
    let stats = recorder.limiter().stats();
    assert_eq!(stats.dropped_labels, vec!["user".to_string()]);
    assert_eq!(stats.label_cardinality["route"], 1);
}

#[test]
fn unchanged_keys_pass_through() {
    let recorder =
        LimitedRecorder::new(metrics::NoopRecorder, CardinalityLimits::default()).expect("valid");
    let key = Key::from_parts("x", vec![Label::new("a", "b")]);
    assert_eq!(recorder.limit_key(&key), key);
    // A truncated value is a change even though it was kept.
    let long = "x".repeat(500);
    let key = Key::from_parts("x", vec![Label::new("a", long)]);
    let limited = recorder.limit_key(&key);
    assert_eq!(limited.labels().next().map(|l| l.value().len()), Some(128));
}
