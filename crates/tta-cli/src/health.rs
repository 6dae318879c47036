//! `tta health`: asks a running service's `/health` and prints the report.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;
use tta_observability::{HealthReport, HealthStatus};

use crate::{CliError, Outcome};

const COMMAND: &str = "health";

/// Options of `tta health`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthOptions {
    /// The service's base URL (`/health` is appended unless the URL ends with it).
    pub url: String,
    /// Treat `degraded` as a failed check too.
    pub strict: bool,
    /// Print the report as received (JSON).
    pub json: bool,
    /// How long to wait for the answer.
    pub timeout: Duration,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8000".into(),
            strict: false,
            json: false,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The URL asked: `url` itself when it ends with `/health`, else `url` + `/health`.
pub fn health_url(url: &str) -> String {
    let base = url.trim().trim_end_matches('/');
    if base.ends_with("/health") {
        base.to_owned()
    } else {
        format!("{base}/health")
    }
}

/// Whether a status passes: `healthy` always, `degraded` unless `strict` (the same rule as
/// the HTTP status: 200 for both, 503 for unhealthy).
pub fn passes(status: HealthStatus, strict: bool) -> bool {
    match status {
        HealthStatus::Healthy => true,
        HealthStatus::Degraded => !strict,
        _ => false,
    }
}

/// GETs the report and prints it; [`Outcome::Failed`] unless it [`passes`]. No answer, or an
/// answer that is not a health report, is an error.
pub fn run(options: &HealthOptions, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let url = health_url(&options.url);
    let http_error = |message: String| CliError::Http {
        command: COMMAND,
        url: url.clone(),
        message,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(options.timeout))
        .build()
        .into();
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|e| http_error(format!("no answer: {e}")))?;
    let code = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(4 << 20)
        .read_to_string()
        .map_err(|e| http_error(format!("cannot read the answer (HTTP {code}): {e}")))?;
    let report: HealthReport = serde_json::from_str(&body).map_err(|e| {
        let start: String = body.chars().take(80).collect();
        http_error(format!(
            "HTTP {code}: not a health report ({e}): {:?}",
            start.trim()
        ))
    })?;
    let o = CliError::output(COMMAND);
    if options.json {
        writeln!(out, "{}", body.trim_end()).map_err(o)?;
    } else {
        write_report(&report, code, out).map_err(o)?;
    }
    Ok(if passes(report.status, options.strict) {
        Outcome::Ok
    } else {
        Outcome::Failed
    })
}

/// The report as text: status, message, then each component's status and reasons.
pub fn write_report(report: &HealthReport, code: u16, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "status:  {} (HTTP {code})", report.status.as_str())?;
    writeln!(out, "message: {}", report.message)?;
    writeln!(out, "time:    {}", report.timestamp)?;
    for (name, value) in &report.details {
        match value {
            Value::Object(c) if c.contains_key("status") => {
                let status = c.get("status").and_then(Value::as_str).unwrap_or("?");
                writeln!(out, "  {name}: {status}")?;
                if let Some(Value::Array(reasons)) = c.get("reasons") {
                    for r in reasons {
                        writeln!(out, "    - {}", r.as_str().unwrap_or_default())?;
                    }
                }
            }
            Value::Object(_) | Value::Array(_) => {}
            other => writeln!(out, "  {name} = {other}")?,
        }
    }
    Ok(())
}
