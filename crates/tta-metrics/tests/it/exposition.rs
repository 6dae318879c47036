//! Prometheus text output: snapshots, and a real third-party parser reading it back.

use std::collections::HashMap;

use prometheus_parse::{Scrape, Value};
use tta_core::MetricValue;
use tta_metrics::{MetricsCollector, MetricsConfig};

/// A metric name with its sorted label pairs.
type Identity = (String, Vec<(String, String)>);

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("exposition must parse")
}

/// A collector with a bit of everything, with a fixed hash key so buckets are stable.
fn sample() -> MetricsCollector {
    let config = MetricsConfig {
        max_label_values: 2,
        ..Default::default()
    };
    let c = MetricsCollector::with_hash_key(config, 7).expect("valid");
    c.describe("requests_total", "HTTP requests served.\nBy route.");
    c.counter("requests_total", &[("route", "/api"), ("method", "GET")])
        .increment(3);
    c.counter(
        "requests_total",
        &[("route", "/quote\"back\\slash\nline"), ("method", "POST")],
    )
    .increment(1);
    c.counter("requests_total", &[("route", "/third"), ("method", "GET")])
        .increment(1);
    c.gauge("queue-depth", &[("queue", "spans")]).set(12.5);
    c.gauge("temperature", &[] as &[(&str, &str)])
        .set(f64::NEG_INFINITY);
    let h = c.histogram("response_ms", &[("le", "user-label")]);
    for v in [0.5, 1.0, 3.0, 40.0, 5e6] {
        h.record(v);
    }
    c.record_execution("checkout", 100.0, true);
    c.record_execution("checkout", 250.0, false);
    c.record_execution(&"x".repeat(300), 1.0, true);
    c.record_execution("bad", f64::NAN, true);
    c
}

#[test]
fn exposition_snapshot() {
    insta::assert_snapshot!("exposition", sample().render_prometheus());
}

#[test]
fn snapshot_json_snapshot() {
    let snap = sample().snapshot_at(1_700_000_000_000_000_000);
    insta::assert_json_snapshot!("snapshot", snap);
}

#[test]
fn a_real_parser_reads_back_every_value() {
    let collector = sample();
    let text = collector.render_prometheus();
    let scrape = parse(&text);
    let snap = collector.snapshot_at(0);
    // Every counter and gauge sample of the snapshot is in the scrape with the same value.
    let mut by_identity: HashMap<Identity, &Value> = HashMap::new();
    for s in &scrape.samples {
        let mut labels: Vec<(String, String)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.sort();
        by_identity.insert((s.metric.clone(), labels), &s.value);
    }
    let mut checked = 0;
    for s in &snap.series {
        // prometheus-parse does not unescape label values: compare with the escaped form.
        let mut escaped: Vec<(String, String)> = s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), escape(v)))
            .collect();
        escaped.sort();
        let parsed = by_identity.get(&(s.name.clone(), escaped));
        match (&s.value, parsed) {
            (MetricValue::Counter(c), Some(Value::Counter(p))) => {
                assert_eq!(*c as f64, *p, "{}", s.name)
            }
            (MetricValue::Gauge(g), Some(Value::Gauge(p))) => {
                assert!(
                    g == p || (g.is_nan() && p.is_nan()),
                    "{}: {g} vs {p}",
                    s.name
                )
            }
            (MetricValue::Histogram { count, sum, .. }, Some(Value::Histogram(buckets))) => {
                let inf = buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .expect("+Inf bucket");
                assert_eq!(inf.count, *count as f64);
                let sum_sample = scrape
                    .samples
                    .iter()
                    .find(|x| {
                        x.metric == format!("{}_sum", s.name) && labels_eq(&x.labels, &s.labels)
                    })
                    .expect("_sum sample");
                assert!(matches!(sum_sample.value, Value::Untyped(v) if (v - sum).abs() < 1e-9));
                // Cumulative buckets never decrease.
                let mut sorted: Vec<_> = buckets.iter().collect();
                sorted.sort_by(|a, b| a.less_than.total_cmp(&b.less_than));
                assert!(sorted.windows(2).all(|w| w[0].count <= w[1].count));
            }
            other => panic!(
                "{} {:?}: not read back as the same type: {other:?}",
                s.name, s.labels
            ),
        }
        checked += 1;
    }
    assert!(checked >= 10);
    // The escaped label value is on one line and reads back (still escaped, see above).
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.labels.get("route") == Some(r#"/quote\"back\\slash\nline"#))
    );
    assert_eq!(
        scrape.docs.get("requests_total").map(String::as_str),
        Some("HTTP requests served.\\nBy route.")
    );
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels_eq(parsed: &prometheus_parse::Labels, want: &[(String, String)]) -> bool {
    want.iter()
        .all(|(k, v)| parsed.get(k) == Some(escape(v).as_str()))
}

#[test]
fn every_line_is_well_formed() {
    let text = sample().render_prometheus();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().expect("name");
            assert!(typed.insert(name.to_owned()), "TYPE twice for {name}");
        } else if !line.starts_with("# HELP ") {
            let name_end = line.find(['{', ' ']).expect("sample line");
            let name = &line[..name_end];
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
                "bad name in {line}"
            );
            assert!(
                typed.iter().any(|t| name.starts_with(t.as_str())),
                "sample before its TYPE: {line}"
            );
        }
    }
}
