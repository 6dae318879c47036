//! The synthetic service workload behind `tta demo` and the `workload` bench.
//!
//! Each request is one trace of the OpenTelemetry-demo shop taken from
//! [`Corpus`](tta_observability::storage::corpus::Corpus) (a `frontend` route fanning out to
//! catalog, cart, checkout, payment, ...), given a fresh random trace id, fresh span ids with
//! the parent links kept, and timestamps ending now. About `error_rate` of the requests fail
//! (the error propagates to the root span) and `slow_rate` of them are slow: their spans are
//! stretched so the root lasts 1.2 to 3 times `slow_threshold_ms`; other requests are kept
//! under 0.8 times the threshold, so exactly the chosen requests count as slow. Spans are
//! synthetic: nobody sleeps.
//!
//! With an [`Observability`] runtime, each request also does what an instrumented handler
//! does: the head decision at the root (its threshold written on every span when sampled), a
//! `http_requests_total` counter with `route` and a high-cardinality `user_id` label,
//! `record_execution(route, duration_ms, ok)`, and, when the request ends, the local decision
//! the tracing layer makes when a local root ends
//! ([`Observability::submit_local_trace`]): errors and slow requests kept whole, the rest by
//! the head decision; kept traces go to the pipeline already decided, dropped ones are only
//! counted. Without a runtime, the same requests are generated and dropped: the baseline for
//! overhead measurements.
//!
//! ```
//! use tta_cli::workload::{WorkloadConfig, run};
//! let config = WorkloadConfig { requests: 200, concurrency: 2, ..WorkloadConfig::default() };
//! let report = run(&config, None, &|_| {})?;
//! assert_eq!(report.requests, 200);
//! assert!(report.spans >= 200);
//! # Ok::<(), tta_cli::CliError>(())
//! ```

use rand_xoshiro::SplitMix64;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tta_observability::Observability;
use tta_observability::core::{AttributeValue, SharedStr, Span, SpanId, TraceId};
use tta_observability::storage::corpus::{Corpus, CorpusConfig};

use crate::CliError;

/// One in this many requests has its in-line observability cost timed (and scaled up) for the
/// overhead meter, like the tracing layer does.
const INLINE_SAMPLE_EVERY: u64 = 64;
/// Requests between two looks at the span queue when pacing.
const PACE_EVERY: u64 = 16;
/// Requests between two progress reports.
const PROGRESS_EVERY: u64 = 256;

/// Shape of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// Requests in total (traces started).
    pub requests: u64,
    /// Producer threads (at least 1).
    pub concurrency: usize,
    /// Seed of the trace generator (thread `i` uses `seed + i`).
    pub seed: u64,
    /// Fraction of requests that fail, 0 to 1 (default 0.01).
    pub error_rate: f64,
    /// Fraction of requests slower than `slow_threshold_ms`, 0 to 1 (default 0.02).
    pub slow_rate: f64,
    /// What counts as slow, in milliseconds (the sampler's `slow_threshold_ms`).
    pub slow_threshold_ms: f64,
    /// Distinct `user_id` label values drawn from (default 20 000).
    pub users: u64,
    /// Wait while the span queue is more than half full, instead of outrunning the pipeline
    /// (a generator is faster than any real service; default `true`).
    pub pace: bool,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            requests: 100_000,
            concurrency: 2,
            seed: 1,
            error_rate: 0.01,
            slow_rate: 0.02,
            slow_threshold_ms: 50.0,
            users: 20_000,
            pace: true,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkloadReport {
    /// Requests made.
    pub requests: u64,
    /// Spans generated.
    pub spans: u64,
    /// Spans the pipeline refused (queue full or shut down).
    pub dropped_spans: u64,
    /// Requests whose head decision was "sample".
    pub head_sampled: u64,
    /// Trace ids of the failed requests.
    pub error_traces: Vec<TraceId>,
    /// Trace ids of the slow requests.
    pub slow_traces: Vec<TraceId>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Time producers spent waiting for the span queue to drain.
    pub paced: Duration,
}

/// One generated request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Its spans, root first.
    pub spans: Vec<Span>,
    /// The HTTP route (`/api/cart`, ...).
    pub route: SharedStr,
    /// The `user_id` label value's number.
    pub user: u64,
    /// Whether the request failed.
    pub error: bool,
    /// Whether it was made slow.
    pub slow: bool,
    /// The root span's duration in milliseconds.
    pub duration_ms: f64,
}

/// splitmix64, for the choices the corpus does not make (slow requests, users, ids).
#[derive(Debug, Clone)]
struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(SplitMix64::seed_from_u64(seed))
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Generates requests for one producer.
#[derive(Debug, Clone)]
pub struct Generator {
    corpus: Corpus,
    rng: Rng,
    config: WorkloadConfig,
}

impl Generator {
    /// The generator of producer `index`.
    pub fn new(config: &WorkloadConfig, index: u64) -> Self {
        let seed = config.seed.wrapping_add(index);
        Self {
            corpus: Corpus::with_config(CorpusConfig {
                seed,
                error_rate: config.error_rate.clamp(0.0, 1.0),
                ..CorpusConfig::default()
            }),
            rng: Rng::new(seed ^ 0xd1b5_4a32_d192_ed03),
            config: config.clone(),
        }
    }

    /// The next request, ending at `now_unix_nanos`, with a fresh trace id and span ids.
    pub fn next_request(&mut self, now_unix_nanos: u64) -> Request {
        let mut spans = self.corpus.next_trace();
        let trace_id = TraceId::random();
        // Fresh span ids with parent links kept: xor every id with one random mask.
        let mut mask = SpanId::random().to_u64();
        while spans.iter().any(|s| s.span_id.to_u64() == mask) {
            mask = SpanId::random().to_u64();
        }
        let error = spans.iter().any(Span::is_error);
        let slow = self.rng.f64() < self.config.slow_rate;
        let user = self.rng.next_u64() % self.config.users.max(1);

        let (t0, root_nanos) = spans
            .first()
            .map(|r| (r.start_unix_nanos, r.duration_nanos().max(1)))
            .unwrap_or((0, 1));
        let threshold_nanos = self.config.slow_threshold_ms.max(0.0) * 1e6;
        let target_nanos = if slow && threshold_nanos > 0.0 {
            threshold_nanos * (1.2 + 1.8 * self.rng.f64())
        } else if threshold_nanos > 0.0 && root_nanos as f64 > 0.8 * threshold_nanos {
            0.8 * threshold_nanos * (0.5 + 0.5 * self.rng.f64())
        } else {
            root_nanos as f64
        };
        let scale = target_nanos / root_nanos as f64;
        let duration = target_nanos as u64;
        let base = now_unix_nanos.saturating_sub(duration);
        let retime = |t: u64| base + (t.saturating_sub(t0) as f64 * scale) as u64;
        for span in &mut spans {
            span.trace_id = trace_id;
            span.span_id = SpanId::from_u64(span.span_id.to_u64() ^ mask);
            span.parent_span_id = span
                .parent_span_id
                .map(|p| SpanId::from_u64(p.to_u64() ^ mask));
            span.start_unix_nanos = retime(span.start_unix_nanos);
            span.end_unix_nanos = retime(span.end_unix_nanos).max(span.start_unix_nanos);
        }
        let route = spans
            .first()
            .and_then(|r| match r.attribute("http.route") {
                Some(AttributeValue::Str(s)) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_else(|| SharedStr::from_static("/"));
        Request {
            duration_ms: spans.first().map(Span::duration_ms).unwrap_or(0.0),
            spans,
            route,
            user,
            error,
            slow,
        }
    }
}

/// Wall-clock time in Unix nanoseconds.
pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Does one request's observability work: head decision, metrics, submit. Returns whether
/// the head sampled it and how many spans were refused.
fn observe(obs: &Observability, request: Request, user_label: &mut String) -> (bool, u64) {
    let Request {
        spans,
        route,
        user,
        error,
        duration_ms,
        ..
    } = request;
    let Some(trace_id) = spans.first().map(|s| s.trace_id) else {
        return (false, 0);
    };
    let head = obs.head_decision(trace_id);
    let sampled = head.is_sampled();
    user_label.clear();
    {
        use std::fmt::Write as _;
        let _ = write!(user_label, "user-{user}");
    }
    let metrics = obs.metrics();
    metrics
        .counter(
            "http_requests_total",
            &[("route", route.as_ref()), ("user_id", user_label.as_str())],
        )
        .increment(1);
    metrics.record_execution(&route, duration_ms, !error);
    let (_, dropped) = obs.submit_local_trace(spans, &head);
    (sampled, dropped)
}

/// Waits while the span queue is more than half full.
fn pace(obs: &Observability) -> Duration {
    let Some(pipeline) = obs.pipeline() else {
        return Duration::ZERO;
    };
    let start = Instant::now();
    loop {
        let stats = pipeline.stats();
        if stats.queue_depth * 2 <= stats.queue_capacity {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

#[derive(Default)]
struct Part {
    report: WorkloadReport,
}

fn producer(
    config: &WorkloadConfig,
    index: u64,
    count: u64,
    obs: Option<&Observability>,
    progress: &(dyn Fn(u64) + Sync),
    stop: &AtomicBool,
) -> Part {
    let mut generator = Generator::new(config, index);
    let mut part = Part::default();
    let r = &mut part.report;
    let mut user_label = String::with_capacity(24);
    let mut unreported = 0;
    for i in 0..count {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(obs) = obs
            && config.pace
            && i % PACE_EVERY == 0
        {
            r.paced += pace(obs);
        }
        let request = generator.next_request(now_unix_nanos());
        r.requests += 1;
        r.spans += request.spans.len() as u64;
        let trace_id = request.spans.first().map(|s| s.trace_id);
        if let Some(id) = trace_id {
            if request.error {
                r.error_traces.push(id);
            }
            if request.slow {
                r.slow_traces.push(id);
            }
        }
        match obs {
            Some(obs) => {
                let timed = (i % INLINE_SAMPLE_EVERY == 0).then(Instant::now);
                let (sampled, dropped) = observe(obs, request, &mut user_label);
                if let Some(t) = timed {
                    let nanos = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    obs.overhead()
                        .add_inline_nanos(nanos.saturating_mul(INLINE_SAMPLE_EVERY));
                }
                r.head_sampled += u64::from(sampled);
                r.dropped_spans += dropped;
            }
            None => drop(std::hint::black_box(request)),
        }
        unreported += 1;
        if unreported == PROGRESS_EVERY {
            progress(unreported);
            unreported = 0;
        }
    }
    if unreported > 0 {
        progress(unreported);
    }
    part
}

/// Runs the workload on `config.concurrency` threads named `demo-worker-<i>` (not `tta-*`,
/// so the overhead meter counts them as the application). `progress` receives request
/// counts as they complete.
pub fn run(
    config: &WorkloadConfig,
    obs: Option<&Observability>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<WorkloadReport, CliError> {
    let threads = config.concurrency.max(1) as u64;
    let start = Instant::now();
    let stop = AtomicBool::new(false);
    let parts = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(threads as usize);
        for index in 0..threads {
            let count = config.requests / threads + u64::from(index < config.requests % threads);
            let stop = &stop;
            let spawned = std::thread::Builder::new()
                .name(format!("demo-worker-{index}"))
                .spawn_scoped(scope, move || {
                    producer(config, index, count, obs, progress, stop)
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(CliError::Thread {
                        command: "workload",
                        message: format!("cannot start producer thread {index}: {e}"),
                    });
                }
            }
        }
        let mut parts = Vec::with_capacity(handles.len());
        for h in handles {
            match h.join() {
                Ok(p) => parts.push(p),
                Err(_) => {
                    return Err(CliError::Thread {
                        command: "workload",
                        message: "a producer thread panicked".into(),
                    });
                }
            }
        }
        Ok(parts)
    })?;
    let mut report = WorkloadReport {
        elapsed: start.elapsed(),
        ..WorkloadReport::default()
    };
    for Part { report: p } in parts {
        report.requests += p.requests;
        report.spans += p.spans;
        report.dropped_spans += p.dropped_spans;
        report.head_sampled += p.head_sampled;
        report.error_traces.extend(p.error_traces);
        report.slow_traces.extend(p.slow_traces);
        report.paced = report.paced.max(p.paced);
    }
    Ok(report)
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat`; `None` where
/// `/proc` is unavailable.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    stat_cpu_time(&stat)
}

/// CPU time of this process's threads whose name starts with `prefix` (for example `tta-`,
/// the observability runtime's threads), from `/proc/self/task/*/stat`.
pub fn threads_cpu_time(prefix: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = entry.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if comm.starts_with(prefix)
            && let Some(t) = std::fs::read_to_string(dir.join("stat"))
                .ok()
                .as_deref()
                .and_then(stat_cpu_time)
        {
            total += t;
        }
    }
    Some(total)
}

/// Resident set size now and its peak (`VmRSS`, `VmHWM`), in bytes, from
/// `/proc/self/status`.
pub fn memory_usage() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// utime + stime (fields 14 and 15) of a `/proc/.../stat` line.
fn stat_cpu_time(stat: &str) -> Option<Duration> {
    // The command name (field 2) may contain spaces; the fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Clock ticks are 1/100 s (USER_HZ) on every Linux ABI.
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_consistent_and_shaped_as_configured() {
        let config = WorkloadConfig {
            slow_threshold_ms: 50.0,
            slow_rate: 0.1,
            error_rate: 0.1,
            ..WorkloadConfig::default()
        };
        let mut g = Generator::new(&config, 0);
        let now = now_unix_nanos();
        let (mut slow, mut errors) = (0, 0);
        for _ in 0..2_000 {
            let r = g.next_request(now);
            let root = &r.spans[0];
            assert!(root.is_root());
            assert!(
                root.end_unix_nanos.abs_diff(now) <= 1_000,
                "the request ends now"
            );
            assert!(r.spans.iter().all(|s| s.trace_id == root.trace_id));
            for s in &r.spans[1..] {
                let parent = s.parent_span_id.expect("child has a parent");
                assert!(
                    r.spans.iter().any(|p| p.span_id == parent),
                    "parent link kept"
                );
                assert!(s.start_unix_nanos >= root.start_unix_nanos);
            }
            assert_eq!(r.slow, r.duration_ms > 50.0, "{}", r.duration_ms);
            assert_eq!(r.error, root.is_error());
            slow += u32::from(r.slow);
            errors += u32::from(r.error);
        }
        assert!((120..290).contains(&slow), "{slow}");
        assert!((120..290).contains(&errors), "{errors}");
    }

    #[test]
    fn parses_proc_stat() {
        let line = "1 (a b) S 1 1 1 0 -1 0 0 0 0 0 250 50 0 0 20 0 4 0 1000 0 0";
        assert_eq!(stat_cpu_time(line), Some(Duration::from_secs(3)));
        assert_eq!(stat_cpu_time("garbage"), None);
    }
}
