//! The commands of the `tta` binary as a library: the demo workload, configuration dumps and
//! checks, trace-store queries, storage estimates and health checks.
//!
//! The binary (`src/main.rs`) only parses arguments and maps results to exit codes; the
//! commands live here so benches and tests can drive them. Use the `tta-observability` facade
//! to instrument a service; use this crate to look at what it stored, to check a
//! configuration before deploying it, or to run the [`workload`] the benches measure.
//!
//! Every command writes to the writers it is given and returns an [`Outcome`]
//! ([`Outcome::Failed`] for a failed check: an invalid config file, an unhealthy service, a
//! missing trace) or a [`CliError`] naming the command, what failed and where.
//!
//! ```
//! use tta_cli::estimate::{EstimateOptions, run};
//! let mut out = Vec::new();
//! let outcome = run(&EstimateOptions { requests_per_day: 2_000_000, ..Default::default() }, &mut out)?;
//! assert_eq!(outcome, tta_cli::Outcome::Ok);
//! let text = String::from_utf8(out).unwrap();
//! assert!(text.contains("| Very High | 10,000,000 |"));
//! assert!(text.contains("| Custom | 2,000,000 |"));
//! # Ok::<(), tta_cli::CliError>(())
//! ```
//!
//! # Features
//!
//! None; the crate enables the facade's `store`, `http` and `otlp` features.

pub mod config_cmd;
pub mod demo;
mod error;
pub mod estimate;
pub mod health;
pub mod traces;
pub mod workload;

pub use error::CliError;

/// How a command ended when it did not fail with a [`CliError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; exit code 0.
    Ok,
    /// A check failed (invalid config, unhealthy, trace not found, demo traces missing);
    /// exit code 1. The command already said why.
    Failed,
}

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: a check failed (invalid configuration, unhealthy service, missing trace).
pub const EXIT_FAILED: i32 = 1;
/// Exit code: the command line was not understood (clap's usage errors).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the command could not run (unreadable file, store error, no HTTP answer).
pub const EXIT_ERROR: i32 = 3;

impl Outcome {
    /// The process exit code: [`EXIT_OK`] or [`EXIT_FAILED`].
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Ok => EXIT_OK,
            Self::Failed => EXIT_FAILED,
        }
    }
}

/// Bytes in decimal units with three significant digits (`1.23 GB`).
///
/// ```
/// assert_eq!(tta_cli::fmt_bytes(0.0), "0 B");
/// assert_eq!(tta_cli::fmt_bytes(999.0), "999 B");
/// assert_eq!(tta_cli::fmt_bytes(40_000_000.0), "40.0 MB");
/// assert_eq!(tta_cli::fmt_bytes(1_234_000_000.0), "1.23 GB");
/// ```
pub fn fmt_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = bytes.max(0.0);
    let mut unit = 0;
    while v >= 999.5 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} B")
    } else if v >= 99.95 {
        format!("{v:.0} {}", UNITS[unit])
    } else if v >= 9.995 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// A count rounded to an integer with thousands separators (`1,234,567`).
///
/// ```
/// assert_eq!(tta_cli::fmt_count(1_234_567.4), "1,234,567");
/// assert_eq!(tta_cli::fmt_count(12.0), "12");
/// ```
pub fn fmt_count(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Unix nanoseconds as RFC 3339 UTC with milliseconds.
///
/// ```
/// assert_eq!(tta_cli::fmt_time(1_704_067_200_123_000_000), "2024-01-01T00:00:00.123Z");
/// ```
pub fn fmt_time(unix_nanos: u64) -> String {
    let secs = unix_nanos / 1_000_000_000;
    let millis = (unix_nanos / 1_000_000) % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}
