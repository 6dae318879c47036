//! The guide's "Performance Benchmarks" table, measured on the `tta demo` workload.
//!
//! For head rates 1%, 5%, 10% and 20% (fixed, compression on, batch size 512, the demo's
//! tuning otherwise), the same synthetic requests run twice: once generated and dropped (the
//! application alone), once through the whole stack (head decision, metrics with a
//! high-cardinality label, span pipeline with tail sampling, embedded store). Reported with
//! `tta_benches::report_figure`:
//!
//! - `guide/cpu_overhead_rate_<r>`: extra process CPU time of the full run over the CPU time
//!   of the application alone, in percent. The application here only generates spans (about
//!   2 µs of CPU per request), far less than a real handler, so this is a worst case; the
//!   absolute cost per request is printed beside it.
//! - `guide/obs_cpu_per_request_rate_<r>`: that extra CPU per request in µs, with the
//!   application CPU per request at which it would be within the guide's percentage.
//! - `guide/memory_overhead_rate_<r>`: peak resident set (`VmHWM`) of the full run over the
//!   peak of the application-alone run, in percent of the latter. Each run is its own process
//!   (the bench re-runs itself), so no run inherits another's peak. The application alone is
//!   a few MB, so the percentage says more about the tiny baseline than about the stack; the
//!   absolute peaks are printed beside it.
//! - `guide/storage_per_day_1m_rate_<r>`: bytes on disk per request times 10^6, in MB.
//!
//! Usage: `cargo bench -p tta-benches --bench workload [-- --quick]`; `--quick` or
//! `TTA_BENCH_QUICK` runs 2×10^4 requests per rate instead of 10^5. Other arguments (such as
//! criterion's `--bench`) are accepted and ignored.
#![allow(clippy::print_stdout)] // a bench's job is to print its table

use std::time::Duration;

use tta_cli::demo::demo_config;
use tta_cli::workload::{self, WorkloadConfig};
use tta_observability::Observability;

/// (rate, CPU goal %, memory goal %, storage goal MB) from the guide's table.
const GUIDE: [(f64, f64, f64, f64); 4] = [
    (0.01, 0.5, 0.2, 400.0),
    (0.05, 1.0, 0.5, 2_000.0),
    (0.10, 1.5, 0.8, 4_000.0),
    (0.20, 2.0, 1.0, 8_000.0),
];

fn quick() -> bool {
    std::env::var_os("TTA_BENCH_QUICK").is_some() || std::env::args().any(|a| a == "--quick")
}

/// Environment variable that makes the bench binary run one measurement as a child process.
const CHILD: &str = "TTA_WORKLOAD_BENCH_CHILD";

/// One measurement, in a fresh process so that peak RSS is not inherited from earlier runs.
#[derive(Debug, Clone, Copy)]
struct Measurement {
    cpu: Duration,
    peak_rss: u64,
    bytes_on_disk: u64,
}

/// Runs the workload (`rate` `None`: the application alone) and prints the measurement.
fn child(spec: &str, config: &WorkloadConfig) {
    let rate: Option<f64> = (spec != "app").then(|| spec.parse().expect("a rate"));
    let cpu0 = workload::process_cpu_time().expect("/proc/self/stat is readable");
    let bytes = match rate {
        None => {
            let report = workload::run(config, None, &|_| {}).expect("the workload runs");
            assert_eq!(report.requests, config.requests);
            0
        }
        Some(rate) => full_run(config, rate),
    };
    let cpu = workload::process_cpu_time()
        .expect("/proc/self/stat is readable")
        .saturating_sub(cpu0);
    let (_, peak) = workload::memory_usage().expect("/proc/self/status is readable");
    println!("{} {peak} {bytes}", cpu.as_nanos());
}

fn measure(spec: &str) -> Measurement {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let mut cmd = std::process::Command::new(exe);
    cmd.env(CHILD, spec);
    if quick() {
        cmd.env("TTA_BENCH_QUICK", "1");
    }
    let out = cmd.output().expect("the child measurement runs");
    assert!(
        out.status.success(),
        "child {spec} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<u64> = text
        .split_whitespace()
        .map(|f| f.parse().expect("a number"))
        .collect();
    assert_eq!(fields.len(), 3, "{text}");
    Measurement {
        cpu: Duration::from_nanos(fields[0]),
        peak_rss: fields[1],
        bytes_on_disk: fields[2],
    }
}

fn full_run(config: &WorkloadConfig, rate: f64) -> u64 {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let obs_config = demo_config(None, Some(rate), false).expect("the demo config is valid");
    assert!(obs_config.storage.compression_enabled);
    assert_eq!(obs_config.tracing.batch_size, 512);
    let obs = Observability::builder()
        .config(obs_config)
        .store_dir(dir.path())
        .build()
        .expect("the runtime starts");
    let report = workload::run(config, Some(&obs), &|_| {}).expect("the workload runs");
    assert_eq!(report.requests, config.requests);
    obs.flush(Duration::from_secs(60)).expect("flush");
    obs.shutdown(Duration::from_secs(60));
    obs.store().map(|s| s.stats().bytes_on_disk).unwrap_or(0)
}

fn main() {
    let requests = if quick() { 20_000 } else { 100_000 };
    let config = WorkloadConfig {
        requests,
        concurrency: 2,
        slow_threshold_ms: 50.0,
        ..WorkloadConfig::default()
    };
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec, &config);
        return;
    }
    println!("workload: {requests} requests on 2 producer threads per run, one process per run");
    println!(
        "| rate | CPU app alone | CPU full | CPU overhead | obs CPU/request | peak RSS app | peak RSS full | memory overhead | bytes on disk | storage/day (1M req) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (rate, cpu_goal, mem_goal, storage_goal) in GUIDE {
        // The application alone, measured next to each full run so drift affects both; the
        // smaller of two runs is the baseline.
        let (a, b) = (measure("app"), measure("app"));
        let (cpu_base, rss_base) = (a.cpu.min(b.cpu), a.peak_rss.min(b.peak_rss));
        let full = measure(&rate.to_string());
        let extra_cpu = (full.cpu.as_secs_f64() - cpu_base.as_secs_f64()).max(0.0);
        let cpu_overhead = extra_cpu / cpu_base.as_secs_f64().max(1e-9);
        let per_request_us = extra_cpu * 1e6 / requests as f64;
        let mem_overhead = full.peak_rss.saturating_sub(rss_base) as f64 / rss_base.max(1) as f64;
        let storage_mb = full.bytes_on_disk as f64 / requests as f64 * 1e6 / 1e6;
        println!(
            "| {:.0}% | {:.2} s | {:.2} s | {:.1}% | {per_request_us:.1} µs | {:.1} MB | {:.1} MB | {:.1}% | {:.2} MB | {storage_mb:.1} MB |",
            rate * 100.0,
            cpu_base.as_secs_f64(),
            full.cpu.as_secs_f64(),
            cpu_overhead * 100.0,
            rss_base as f64 / 1e6,
            full.peak_rss as f64 / 1e6,
            mem_overhead * 100.0,
            full.bytes_on_disk as f64 / 1e6,
        );
        tta_benches::report_figure(
            &format!("guide/cpu_overhead_rate_{rate:.2}"),
            cpu_overhead * 100.0,
            "%",
            None,
            &format!("< {cpu_goal}%"),
            cpu_overhead * 100.0 < cpu_goal,
        );
        // The application CPU per request at which this run's cost per request would meet
        // the guide's percentage: a real handler's CPU time is what the guide's table assumes.
        let break_even_us = per_request_us / (cpu_goal / 100.0);
        tta_benches::report_figure(
            &format!("guide/obs_cpu_per_request_rate_{rate:.2}"),
            per_request_us,
            "µs",
            None,
            &format!("report only: < {cpu_goal}% for requests of >= {break_even_us:.0} µs CPU"),
            true,
        );
        tta_benches::report_figure(
            &format!("guide/memory_overhead_rate_{rate:.2}"),
            mem_overhead * 100.0,
            "%",
            None,
            &format!("< {mem_goal}%"),
            mem_overhead * 100.0 < mem_goal,
        );
        tta_benches::report_figure(
            &format!("guide/storage_per_day_1m_rate_{rate:.2}"),
            storage_mb,
            "MB",
            None,
            &format!("<= {storage_goal} MB"),
            storage_mb <= storage_goal,
        );
    }
}
