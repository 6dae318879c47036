//! Shared helpers for the criterion benches: allocation counting and figure reporting.
//!
//! Benches compare our implementation (`ours`) with an incumbent crate (`peer-<name>`) in the
//! same criterion group; `cargo xtask bench` reads criterion's estimates and prints the ratio.
//! Figures that are not timings (bytes per span, allocations per decision) are appended to
//! `target/tta-bench/figures.jsonl` with [`report_figure`].

use std::io::Write;
use std::path::PathBuf;

pub use tta_testkit::{CountingAlloc, allocated_bytes, allocations};

/// Runs `f` and returns how many allocations it made (counting needs [`CountingAlloc`]
/// installed as the global allocator).
pub fn count_allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = allocations();
    let r = f();
    (r, allocations() - before)
}

/// Where figures go: `$CARGO_TARGET_DIR/tta-bench/figures.jsonl` (default `target/`).
pub fn figures_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("tta-bench").join("figures.jsonl")
}

/// Appends one non-timing figure for `cargo xtask bench` to print.
///
/// `goal` is a human-readable target such as `"<= 200 B"`; `met` whether the figure meets it.
pub fn report_figure(
    name: &str,
    value: f64,
    unit: &str,
    peer: Option<(&str, f64)>,
    goal: &str,
    met: bool,
) {
    let path = figures_path();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let line = serde_json::json!({
        "name": name,
        "value": value,
        "unit": unit,
        "peer": peer.map(|p| p.0),
        "peer_value": peer.map(|p| p.1),
        "goal": goal,
        "met": met,
    });
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = writeln!(f, "{line}");
    }
}
