//! `cargo xtask bench`: run the criterion benches, then print one table of our figures beside
//! the peer crates' figures from the same run, with the ratio and the goal.
//!
//! Convention (see `benches/src/lib.rs`): in each criterion group, the function `ours` is our
//! implementation and each `peer-<name>` the same work done by an incumbent crate. Non-timing
//! figures come from `target/tta-bench/figures.jsonl`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, bail};

/// Goals for timing groups: the largest acceptable `ours / peer` ratio, per group and peer
/// (`"*"` = any peer), with the text printed in the table.
const GOALS: &[(&str, &str, f64, &str)] = &[
    (
        "sampling/head_decision",
        "peer-otel-ratio",
        1.0,
        "<= 1.0x otel TraceIdRatioBased",
    ),
    (
        "metrics/counter_known_series",
        "peer-metrics-util",
        1.0,
        "<= 1.0x metrics-util",
    ),
    ("config/load", "peer-rwlock", 1.0, "<= RwLock read"),
    (
        "layer/request_overhead",
        "peer-tracing-opentelemetry",
        0.25,
        "added cost <= 1/4",
    ),
    ("export/submit", "*", 0.5, ">= 2x spans/s (time <= 0.5x)"),
    (
        "storage/write",
        "peer-zstd-raw",
        2.0,
        ">= 0.5x raw zstd throughput",
    ),
];

struct Row {
    group: String,
    ours_ns: Option<f64>,
    peers: Vec<(String, f64)>,
}

pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let quick = args.iter().any(|a| a == "--quick");
    let no_run = args.iter().any(|a| a == "--no-run");
    let target = target_dir(root);
    let figures = target.join("tta-bench").join("figures.jsonl");
    let _ = fs::remove_file(&figures);
    let started = SystemTime::now();

    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root).args(["bench", "-p", "tta-benches"]);
    if no_run {
        cmd.arg("--no-run");
    } else if quick {
        cmd.env("TTA_BENCH_QUICK", "1");
        cmd.args([
            "--",
            "--quick",
            "--warm-up-time",
            "0.5",
            "--measurement-time",
            "1",
        ]);
    }
    println!("==> {cmd:?}");
    let status = cmd.status().context("running cargo bench")?;
    if !status.success() {
        bail!("cargo bench failed");
    }
    if no_run {
        return Ok(());
    }

    let rows = collect_criterion(&target.join("criterion"), started)?;
    let table = render(&rows, &read_figures(&figures));
    println!("\n{table}");
    let out = root.join("target").join("tta-bench").join("table.md");
    if let Some(d) = out.parent() {
        fs::create_dir_all(d)?;
    }
    fs::write(&out, &table)?;
    println!("(table written to {})", out.display());
    Ok(())
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn collect_criterion(dir: &Path, since: SystemTime) -> anyhow::Result<Vec<Row>> {
    let mut by_group: BTreeMap<String, Row> = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") {
                    if let Some((group, func, ns)) = read_estimate(&p, since) {
                        let row = by_group.entry(group.clone()).or_insert(Row {
                            group,
                            ours_ns: None,
                            peers: Vec::new(),
                        });
                        if func == "ours" {
                            row.ours_ns = Some(ns);
                        } else {
                            row.peers.push((func, ns));
                        }
                    }
                } else {
                    stack.push(p);
                }
            }
        }
    }
    let mut rows: Vec<Row> = by_group.into_values().collect();
    for r in &mut rows {
        r.peers.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(rows)
}

fn read_estimate(new_dir: &Path, since: SystemTime) -> Option<(String, String, f64)> {
    let est_path = new_dir.join("estimates.json");
    let modified = fs::metadata(&est_path).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let bench: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(new_dir.join("benchmark.json")).ok()?).ok()?;
    let est: serde_json::Value = serde_json::from_str(&fs::read_to_string(&est_path).ok()?).ok()?;
    let group = bench.get("group_id")?.as_str()?.to_owned();
    let mut func = bench.get("function_id")?.as_str()?.to_owned();
    if let Some(v) = bench.get("value_str").and_then(|v| v.as_str()) {
        func = format!("{func}/{v}");
    }
    let ns = est.get("median")?.get("point_estimate")?.as_f64()?;
    Some((group, func, ns))
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn goal_for(group: &str, peer: &str) -> Option<(f64, &'static str)> {
    GOALS
        .iter()
        .find(|(g, p, _, _)| *g == group && (*p == peer || *p == "*"))
        .map(|(_, _, max, text)| (*max, *text))
}

fn read_figures(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn render(rows: &[Row], figures: &[serde_json::Value]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| bench | ours | peer | peer time | ratio | goal | met? |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for r in rows {
        let ours = r.ours_ns.map(fmt_ns).unwrap_or_else(|| "-".into());
        if r.peers.is_empty() {
            let _ = writeln!(out, "| {} | {ours} | - | - | - | - | - |", r.group);
        }
        for (peer, ns) in &r.peers {
            let ratio = r.ours_ns.map(|o| o / ns);
            let (goal, met) = match (goal_for(&r.group, peer), ratio) {
                (Some((max, text)), Some(ratio)) => (
                    text.to_owned(),
                    if ratio <= max { "yes" } else { "no" }.to_owned(),
                ),
                _ => ("-".into(), "-".into()),
            };
            let ratio = ratio
                .map(|x| format!("{x:.2}x"))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "| {} | {ours} | {peer} | {} | {ratio} | {goal} | {met} |",
                r.group,
                fmt_ns(*ns)
            );
        }
    }
    if !figures.is_empty() {
        let _ = writeln!(
            out,
            "\n| figure | ours | peer | peer value | ratio | goal | met? |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for f in figures {
            let name = f.get("name").and_then(|v| v.as_str()).unwrap_or("?");
            let value = f.get("value").and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
            let unit = f.get("unit").and_then(|v| v.as_str()).unwrap_or("");
            let peer = f.get("peer").and_then(|v| v.as_str()).unwrap_or("-");
            let peer_value = f.get("peer_value").and_then(|v| v.as_f64());
            let goal = f.get("goal").and_then(|v| v.as_str()).unwrap_or("-");
            let met = match f.get("met").and_then(|v| v.as_bool()) {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            let (pv, ratio) = match peer_value {
                Some(p) => (format!("{p:.3} {unit}"), format!("{:.2}x", value / p)),
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                out,
                "| {name} | {value:.3} {unit} | {peer} | {pv} | {ratio} | {goal} | {met} |"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_ratio_and_goal() {
        let rows = vec![Row {
            group: "sampling/head_decision".into(),
            ours_ns: Some(5.0),
            peers: vec![("peer-otel-ratio".into(), 10.0)],
        }];
        let figures = vec![
            serde_json::json!({"name": "bytes/span", "value": 40.0, "unit": "B",
            "peer": "otlp", "peer_value": 400.0, "goal": "<= 50 B", "met": true}),
        ];
        let t = render(&rows, &figures);
        assert!(t.contains("| sampling/head_decision | 5.0 ns | peer-otel-ratio | 10.0 ns | 0.50x | <= 1.0x otel TraceIdRatioBased | yes |"), "{t}");
        assert!(
            t.contains("| bytes/span | 40.000 B | otlp | 400.000 B | 0.10x | <= 50 B | yes |"),
            "{t}"
        );
    }
}
