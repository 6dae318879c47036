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

/// Times each of `runs` for `calls` calls per round, over `rounds` rounds that take turns, so
/// every closure sees the same machine load; returns the nanoseconds per call, one vector per
/// closure with one entry per round. On a shared, noisy machine the per-round ratios of
/// these are steadier than ratios of separately measured means.
pub fn alternating_rounds(
    rounds: usize,
    calls: u64,
    runs: &mut [&mut dyn FnMut()],
) -> Vec<Vec<f64>> {
    let mut ns = vec![Vec::with_capacity(rounds); runs.len()];
    for _ in 0..rounds {
        for (run, out) in runs.iter_mut().zip(ns.iter_mut()) {
            let start = std::time::Instant::now();
            for _ in 0..calls {
                run();
            }
            out.push(start.elapsed().as_nanos() as f64 / calls as f64);
        }
    }
    ns
}

/// The median of `values` (the upper one of an even count); `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Whether a criterion name filter given on the command line leaves `group` out (then the
/// figures measured beside that group are skipped too).
pub fn filtered_out(group: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    !filters.is_empty() && !filters.iter().any(|f| group.contains(f.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_rounds() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(&[]).is_nan());
        let (mut a, mut b) = (0u64, 0u64);
        let ns = alternating_rounds(3, 10, &mut [&mut || a += 1, &mut || b += 2]);
        assert_eq!((ns.len(), ns[0].len(), ns[1].len()), (2, 3, 3));
        assert_eq!((a, b), (30, 60));
        assert!(ns.iter().flatten().all(|t| t.is_finite() && *t >= 0.0));
    }
}
