//! Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;

use tta_core::{MetricSeries, MetricValue, MetricsSnapshot};

use crate::MetricsCollector;

/// Content type of [`MetricsCollector::render_prometheus`] output, for an HTTP `/metrics`.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl MetricsCollector {
    /// Every series in the Prometheus text exposition format: one `# HELP` and `# TYPE` per
    /// metric, escaped label values, histograms as cumulative `_bucket{le=..}`, `_sum` and
    /// `_count`, executions as [`EXECUTIONS_METRIC`](crate::EXECUTIONS_METRIC) and
    /// [`EXECUTION_DURATION_METRIC`](crate::EXECUTION_DURATION_METRIC). Output is sorted, so
    /// it is stable for equal contents.
    ///
    /// ```
    /// # let collector = tta_metrics::MetricsCollector::new(Default::default())?;
    /// collector.counter("requests_total", &[("route", "/a\"b")]).increment(1);
    /// let text = collector.render_prometheus();
    /// assert!(text.contains("# TYPE requests_total counter\n"));
    /// assert!(text.contains(r#"requests_total{route="/a\"b"} 1"#));
    /// # Ok::<(), tta_metrics::MetricsError>(())
    /// ```
    pub fn render_prometheus(&self) -> String {
        let snapshot = self.snapshot_at(0);
        render(&snapshot, |name| self.help_for(name))
    }
}

/// Renders a snapshot (for instance one read back from the store) as Prometheus text, with
/// generic HELP lines.
///
/// ```
/// use tta_core::{MetricSeries, MetricValue, MetricsSnapshot};
/// let snap = MetricsSnapshot {
///     timestamp_unix_nanos: 0,
///     series: vec![MetricSeries { name: "up".into(), labels: vec![], value: MetricValue::Gauge(1.0) }],
/// };
/// assert_eq!(tta_metrics::render_snapshot(&snap), "# HELP up up\n# TYPE up gauge\nup 1\n");
/// ```
pub fn render_snapshot(snapshot: &MetricsSnapshot) -> String {
    render(snapshot, |_| None)
}

fn render(snapshot: &MetricsSnapshot, help: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut current: Option<&str> = None;
    for s in &snapshot.series {
        if current != Some(s.name.as_str()) {
            current = Some(&s.name);
            let text = help(&s.name).unwrap_or_else(|| s.name.clone());
            let kind = match s.value {
                MetricValue::Counter(_) => "counter",
                MetricValue::Gauge(_) => "gauge",
                MetricValue::Histogram { .. } => "histogram",
            };
            let _ = writeln!(out, "# HELP {} {}", s.name, escape_help(&text));
            let _ = writeln!(out, "# TYPE {} {kind}", s.name);
        }
        render_series(&mut out, s);
    }
    out
}

fn render_series(out: &mut String, s: &MetricSeries) {
    match &s.value {
        MetricValue::Counter(v) => {
            line(out, &s.name, "", &s.labels, None, &v.to_string());
        }
        MetricValue::Gauge(v) => line(out, &s.name, "", &s.labels, None, &float(*v)),
        MetricValue::Histogram {
            bounds,
            counts,
            sum,
            count,
        } => {
            let mut cumulative = 0u64;
            for (i, b) in bounds.iter().enumerate() {
                cumulative += counts.get(i).copied().unwrap_or(0);
                line(
                    out,
                    &s.name,
                    "_bucket",
                    &s.labels,
                    Some(&float(*b)),
                    &cumulative.to_string(),
                );
            }
            line(
                out,
                &s.name,
                "_bucket",
                &s.labels,
                Some("+Inf"),
                &count.to_string(),
            );
            line(out, &s.name, "_sum", &s.labels, None, &float(*sum));
            line(out, &s.name, "_count", &s.labels, None, &count.to_string());
        }
    }
}

fn line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(String, String)],
    le: Option<&str>,
    value: &str,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let extra = le.map(|le| ("le", le));
        let all = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(extra);
        for (i, (k, v)) in all.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// Escapes `\`, `"` and newlines, as the text format requires in label values.
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes `\` and newlines, as the text format requires in HELP lines.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value: `NaN`, `+Inf`, `-Inf`, or the shortest decimal that reads back exactly.
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut s = String::new();
        escape_label_value(&mut s, "a\\b\"c\nd");
        assert_eq!(s, r#"a\\b\"c\nd"#);
        assert_eq!(escape_help("x\\y\nz"), r"x\\y\nz");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(0.25), "0.25");
    }
}
