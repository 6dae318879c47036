//! Predictable sanitizing of metric and label names to the Prometheus grammar.

/// Whether `name` matches `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_' | b':'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// A metric name made valid: every character outside `[a-zA-Z0-9_:]` becomes `_`, a leading
/// digit gets a `_` prefix, and the empty name becomes `_`.
///
/// ```
/// assert_eq!(tta_metrics::sanitize_metric_name("http.requests-total"), "http_requests_total");
/// assert_eq!(tta_metrics::sanitize_metric_name("5xx"), "_5xx");
/// assert_eq!(tta_metrics::sanitize_metric_name("ok:name"), "ok:name");
/// ```
pub fn sanitize_metric_name(name: &str) -> String {
    if is_valid_metric_name(name) {
        return name.to_owned();
    }
    sanitize(name, true)
}

/// A label name made valid: characters outside `[a-zA-Z0-9_]` become `_`, a leading digit
/// gets a `_` prefix, the empty name becomes `_`, and names starting with the reserved `__`
/// get a `label` prefix.
///
/// ```
/// assert_eq!(tta_metrics::sanitize_label_name("user-id"), "user_id");
/// assert_eq!(tta_metrics::sanitize_label_name("__name__"), "label__name__");
/// assert_eq!(tta_metrics::sanitize_label_name("1st"), "_1st");
/// ```
pub fn sanitize_label_name(name: &str) -> String {
    let mut out = sanitize(name, false);
    if out.starts_with("__") {
        out.insert_str(0, "label");
    }
    out
}

fn sanitize(name: &str, colon: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for c in name.chars() {
        let ok = c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':');
        out.push(if ok { c } else { '_' });
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sanitized_names_are_valid_and_stable(name in ".{0,20}") {
            let m = sanitize_metric_name(&name);
            prop_assert!(is_valid_metric_name(&m), "{:?} -> {:?}", name, m);
            prop_assert_eq!(sanitize_metric_name(&m), m.clone());
            let l = sanitize_label_name(&name);
            prop_assert!(is_valid_metric_name(&l) && !l.contains(':') && !l.starts_with("__"), "{:?} -> {:?}", name, l);
        }
    }

    #[test]
    fn valid_names_are_unchanged() {
        assert_eq!(sanitize_metric_name("requests_total"), "requests_total");
        assert_eq!(sanitize_label_name("route"), "route");
        assert_eq!(sanitize_metric_name(""), "_");
        assert_eq!(sanitize_label_name("a:b"), "a_b");
    }
}
