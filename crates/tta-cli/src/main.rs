//! The `tta` command: demo workload, config, trace store, storage estimates and health checks.
//!
//! This file only parses the command line and maps results to exit codes; the commands are
//! in the `tta_cli` library. Errors are printed as one line, `tta: <command>: <what and
//! where>`, on stderr.
//!
//! Exit codes: 0 success; 1 a check failed (invalid config file, unhealthy service, trace not
//! found, demo traces missing); 2 usage error (unknown flag, bad value); 3 the command could
//! not run (unreadable file, store error, no HTTP answer).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tta_cli::{CliError, EXIT_ERROR, Outcome, config_cmd, demo, estimate, health, traces};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a check failed: invalid config file, unhealthy service (or degraded with --strict),
     trace not found, demo error/slow traces missing or demo unhealthy
  2  usage error: unknown command or flag, bad value (also a trace id or --rate/--level
     out of range)
  3  the command could not run: unreadable file, store error, no HTTP answer";

/// Production observability controls: run the demo, check configs, read the trace store.
#[derive(Debug, Parser)]
#[command(name = "tta", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive a synthetic service workload through the whole stack and summarize.
    Demo(DemoArgs),
    /// Show or check configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Read or prune the embedded trace store.
    #[command(subcommand)]
    Traces(TracesCommand),
    /// The guide's storage table from measured bytes per span.
    Estimate(EstimateArgs),
    /// Ask a running service's /health endpoint.
    Health(HealthArgs),
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
struct DemoArgs {
    /// Requests to make.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Producer threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// YAML configuration to use instead of the demo's tuned production preset.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the embedded store.
    #[arg(long, value_name = "DIR", default_value = "./tta-data")]
    data: PathBuf,
    /// Address to serve /health, /livez, /readyz and /metrics on ("off" for none).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: String,
    /// Also export kept spans to this OTLP/HTTP endpoint (e.g. http://127.0.0.1:4318).
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// Fixed head sampling rate, 0 to 1 (default: the production 5%).
    #[arg(long, value_name = "R", conflicts_with = "adaptive")]
    rate: Option<f64>,
    /// Let the adaptive sampler steer the rate toward 2% overhead. The synthetic requests do
    /// no work of their own, so it pins itself at its 1% floor and health says degraded.
    #[arg(long)]
    adaptive: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (preset, optional file, TTA_*/OTEL_* variables).
    Show {
        /// Preset: development, staging or production (default: $ENVIRONMENT, else production).
        #[arg(long, value_name = "NAME")]
        env: Option<String>,
        /// A YAML file layered over the preset.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = FormatArg::Yaml)]
        format: FormatArg,
    },
    /// Validate a YAML configuration file; exit 1 listing every problem with its position.
    #[command(after_help = EXIT_CODES)]
    Check {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
struct DataArg {
    /// Directory of the embedded store.
    #[arg(long, value_name = "DIR", default_value = "./tta-data")]
    data: PathBuf,
}

#[derive(Debug, Subcommand)]
enum TracesCommand {
    /// Recent traces: id, start, duration, spans, error flag, service, root span.
    List {
        #[command(flatten)]
        data: DataArg,
        /// Most traces shown.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only traces with an error.
        #[arg(long)]
        errors: bool,
        /// Only traces with a span of this service.
        #[arg(long, value_name = "NAME")]
        service: Option<String>,
        /// Only traces lasting at least this long.
        #[arg(long, value_name = "MS")]
        min_duration_ms: Option<f64>,
    },
    /// The span tree of one trace (exit 1 if the store does not hold it).
    Show {
        /// Trace id, 32 hex digits.
        id: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// Store counters: segments, spans, traces, bytes, compression.
    Stats {
        #[command(flatten)]
        data: DataArg,
    },
    /// Enforce retention now and list what was deleted.
    Purge {
        #[command(flatten)]
        data: DataArg,
        /// Days spans are kept.
        #[arg(long, value_name = "DAYS")]
        ttl_days: Option<u32>,
        /// Days metrics snapshots are kept.
        #[arg(long, value_name = "DAYS")]
        metric_ttl_days: Option<u32>,
        /// Delete the oldest segments while the store is bigger than this.
        #[arg(long, value_name = "BYTES")]
        max_disk_bytes: Option<u64>,
    },
}

#[derive(Debug, Args)]
struct EstimateArgs {
    /// Requests (traces started) per day, for the Custom row.
    #[arg(long, value_name = "N")]
    requests_per_day: u64,
    /// Fraction of traces kept, 0 to 1.
    #[arg(long, value_name = "R", default_value_t = 0.05)]
    rate: f64,
    /// zstd level of the measurement, 1 to 22.
    #[arg(long, value_name = "L", default_value_t = 6)]
    level: i32,
    /// Measure on this store instead of a synthetic sample.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Days retained, for the retained total.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    ttl_days: u32,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 healthy or degraded (degraded fails with --strict), \
1 unhealthy, 2 usage error, 3 no answer or not a health report."
)]
struct HealthArgs {
    /// The service's base URL (/health is appended).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Fail (exit 1) on degraded too.
    #[arg(long)]
    strict: bool,
    /// Print the report as received (JSON).
    #[arg(long)]
    json: bool,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    timeout_seconds: f64,
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let outcome = match cli.command {
        Command::Demo(a) => demo::run(
            &demo::DemoOptions {
                requests: a.requests,
                concurrency: usize::from(a.concurrency),
                config: a.config,
                data: a.data,
                listen: (!a.listen.eq_ignore_ascii_case("off")).then_some(a.listen),
                otlp_endpoint: a.otlp_endpoint,
                rate: a.rate,
                adaptive: a.adaptive,
                json: a.json,
                progress: true,
            },
            &mut out,
        )?,
        Command::Config(ConfigCommand::Show { env, file, format }) => config_cmd::show(
            &config_cmd::ShowOptions {
                env,
                file,
                format: match format {
                    FormatArg::Yaml => config_cmd::Format::Yaml,
                    FormatArg::Json => config_cmd::Format::Json,
                },
            },
            &mut out,
        )?,
        Command::Config(ConfigCommand::Check { file }) => {
            config_cmd::check(&file, &mut out, &mut err)?
        }
        Command::Traces(TracesCommand::List {
            data,
            limit,
            errors,
            service,
            min_duration_ms,
        }) => traces::list(
            &traces::ListOptions {
                data: data.data,
                limit,
                errors,
                service,
                min_duration_ms,
            },
            &mut out,
        )?,
        Command::Traces(TracesCommand::Show { id, data }) => {
            traces::show(&data.data, &id, &mut out, &mut err)?
        }
        Command::Traces(TracesCommand::Stats { data }) => traces::stats(&data.data, &mut out)?,
        Command::Traces(TracesCommand::Purge {
            data,
            ttl_days,
            metric_ttl_days,
            max_disk_bytes,
        }) => traces::purge(
            &traces::PurgeOptions {
                data: data.data,
                ttl_days,
                metric_ttl_days,
                max_disk_bytes,
            },
            &mut out,
        )?,
        Command::Estimate(a) => estimate::run(
            &estimate::EstimateOptions {
                requests_per_day: a.requests_per_day,
                rate: a.rate,
                level: a.level,
                data: a.data,
                ttl_days: a.ttl_days,
            },
            &mut out,
        )?,
        Command::Health(a) => health::run(
            &health::HealthOptions {
                url: a.url,
                strict: a.strict,
                json: a.json,
                timeout: Duration::try_from_secs_f64(a.timeout_seconds)
                    .unwrap_or(Duration::from_secs(10)),
            },
            &mut out,
        )?,
    };
    out.flush()
        .map_err(|e| anyhow::anyhow!("cannot write output: {e}"))?;
    Ok(outcome)
}

fn main() -> ExitCode {
    // Usage errors exit with clap's code 2; --help and --version with 0.
    let cli = Cli::parse();
    match run(cli) {
        Ok(outcome) => ExitCode::from(outcome.exit_code() as u8),
        Err(e) => {
            let line = e.to_string().replace('\n', " ");
            eprintln!("tta: {line}");
            let code = e
                .downcast_ref::<CliError>()
                .map_or(EXIT_ERROR, CliError::exit_code);
            ExitCode::from(code as u8)
        }
    }
}
