use serde_json::Value;

use crate::{stderr, stdout, tta};

/// The demo's tuning with a fixed 5% rate, and an export latency target that tolerates the
/// unoptimized encoder of a debug build (the default target is 100 ms).
const CONFIG: &str = "\
environment: production
service_name: tta-demo-test
tracing:
  export_interval_seconds: 1.0
  max_queue_size: 8192
  sampling:
    default_rate: 0.05
    adaptive_enabled: false
    slow_threshold_ms: 50.0
    straggler_delay_ms: 50
    decision_wait_ms: 5000
metrics:
  export_interval_seconds: 5.0
health:
  max_dropped_labels: 1
  export_p99_target_ms: 5000.0
";

#[test]
fn demo_keeps_every_error_and_slow_trace_and_ends_healthy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("demo.yaml"), CONFIG).unwrap();
    let o = tta(
        dir.path(),
        &[
            "demo",
            "--requests",
            "20000",
            "--concurrency",
            "2",
            "--config",
            "demo.yaml",
            "--data",
            "data",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("serving health at http://127.0.0.1:"),
        "{}",
        stderr(&o)
    );
    let s: Value = serde_json::from_slice(&o.stdout).expect("--json prints one JSON document");
    assert_eq!(s["requests"], 20_000);
    let (errors, slow) = (&s["error_traces"], &s["slow_traces"]);
    // About 1% and 2% of the requests.
    let count = |v: &Value| v["total"].as_u64().unwrap();
    assert!((100..320).contains(&count(errors)), "{errors}");
    assert!((250..560).contains(&count(slow)), "{slow}");
    assert_eq!(
        errors["stored"], errors["total"],
        "every error trace is in the store"
    );
    assert_eq!(
        slow["stored"], slow["total"],
        "every slow trace is in the store"
    );
    assert_eq!(s["ok"], true);
    assert_eq!(s["health"], "healthy", "{}", s["health_message"]);

    // Kept by reason: head sampling keeps about 5% of the rest.
    let kept = &s["kept"];
    let head = kept["head"].as_u64().unwrap();
    assert!((600..1400).contains(&head), "{kept}");
    assert!(kept["error"].as_u64().unwrap() > 0, "{kept}");
    assert!(kept["slow"].as_u64().unwrap() > 0, "{kept}");
    assert_eq!(
        kept["total"].as_u64().unwrap(),
        head + kept["error"].as_u64().unwrap() + kept["slow"].as_u64().unwrap()
    );
    assert_eq!(s["sampling_rate"], 0.05);
    assert_eq!(s["export"]["dropped_queue_full"], 0);
    assert_eq!(s["export"]["exported_spans"], s["store"]["spans"]);

    // The user_id label hit its limit of 100 values; routes did not.
    assert_eq!(
        s["cardinality"]["dropped_labels"],
        serde_json::json!(["user_id"])
    );
    assert_eq!(s["cardinality"]["label_cardinality"]["user_id"], 100);
    assert!(s["store"]["bytes_per_span"].as_f64().unwrap() > 0.0);
    assert!(s["store"]["compression_ratio"].as_f64().unwrap() > 1.0);

    // The store is readable by the trace commands.
    let list = tta(
        dir.path(),
        &[
            "traces", "list", "--data", "data", "--errors", "--limit", "5",
        ],
    );
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    let text = stdout(&list);
    let rows: Vec<&str> = text
        .lines()
        .skip(1)
        .take_while(|l| !l.contains(" traces shown"))
        .collect();
    assert_eq!(rows.len(), 5, "{text}");
    assert!(rows.iter().all(|r| r.contains(" yes ")), "{text}");
    let id = rows[0].split_whitespace().next().unwrap();

    let show = tta(dir.path(), &["traces", "show", id, "--data", "data"]);
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    let tree = stdout(&show);
    assert!(tree.starts_with(&format!("trace {id}: ")), "{tree}");
    let root = tree.lines().nth(1).unwrap();
    assert!(
        root.contains("[frontend]") && root.contains("ERROR"),
        "{tree}"
    );
    assert!(
        tree.lines().skip(2).all(|l| l.starts_with("  ")),
        "children are indented: {tree}"
    );

    let missing = tta(
        dir.path(),
        &[
            "traces",
            "show",
            "0123456789abcdef0123456789abcdef",
            "--data",
            "data",
        ],
    );
    assert_eq!(missing.status.code(), Some(1));

    let stats = tta(dir.path(), &["traces", "stats", "--data", "data"]);
    assert_eq!(stats.status.code(), Some(0), "{}", stderr(&stats));
    let spans_line = format!("spans:              {}", s["store"]["spans"]);
    assert!(stdout(&stats).contains(&spans_line), "{}", stdout(&stats));

    // Nothing is old enough to expire.
    let purge = tta(dir.path(), &["traces", "purge", "--data", "data"]);
    assert_eq!(purge.status.code(), Some(0), "{}", stderr(&purge));
    assert!(
        stdout(&purge).contains(": 0 segment(s) deleted"),
        "{}",
        stdout(&purge)
    );
}

#[test]
fn trace_commands_name_a_missing_store() {
    let dir = tempfile::tempdir().unwrap();
    let o = tta(dir.path(), &["traces", "list", "--data", "nowhere"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        stderr(&o),
        "tta: traces list: nowhere: no store directory here\n"
    );
}

#[test]
fn health_without_a_server_is_a_runtime_error() {
    // Bind and drop a listener so the port is (almost certainly) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let o = tta(
        dir.path(),
        &["health", "--url", &url, "--timeout-seconds", "5"],
    );
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("tta: health: {url}/health: no answer")),
        "{err}"
    );
}
