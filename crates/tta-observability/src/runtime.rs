//! The wired runtime: one configuration handle feeding the sampler, the metrics collector,
//! the span pipeline (with the embedded store and other exporters), health and, optionally,
//! a config file watcher and an HTTP server.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tta_config::{ConfigHandle, ConfigWatcher, ObservabilityConfig};
use tta_core::{Clock, SharedStr, Span, SystemClock, TraceId};
use tta_export::{Exporter, ShutdownReport, SpanPipeline};
use tta_health::{CheckerInfo, HealthChecker, WindowCounter};
use tta_metrics::MetricsCollector;
use tta_sampling::{CompositeSampler, SamplingKey, SamplingResult};
use tta_storage::TraceStore;

use crate::components::{
    ConfigComponent, ExportComponent, MetricsComponent, SamplingComponent, StorageComponent,
};
use crate::overhead::sample_period;
use crate::{ObservabilityError, OverheadMeter};

/// Default directory of the embedded store (overridden by `TTA_DATA_DIR` or
/// [`ObservabilityBuilder::store_dir`]).
pub const DEFAULT_DATA_DIR: &str = "./tta-data";

/// How often retention is enforced on the embedded store.
const RETENTION_EVERY: Duration = Duration::from_secs(600);

pub(crate) struct Inner {
    pub(crate) config: ConfigHandle,
    pub(crate) sampler: Arc<CompositeSampler>,
    pub(crate) metrics: Arc<MetricsCollector>,
    pub(crate) health: Arc<HealthChecker>,
    pub(crate) pipeline: Option<Arc<SpanPipeline>>,
    pub(crate) store: Option<Arc<TraceStore>>,
    pub(crate) overhead: Arc<OverheadMeter>,
    pub(crate) service: SharedStr,
    watcher: Mutex<Option<ConfigWatcher>>,
    #[cfg(feature = "http")]
    server: Mutex<Option<tta_health::http::ServerHandle>>,
    stop: Arc<AtomicBool>,
    meter: Mutex<Option<JoinHandle<()>>>,
    shut_down: AtomicBool,
}

/// A running observability stack. Cheap to clone (clones share the same runtime).
///
/// Build one with [`Observability::builder`], or use the global instance through
/// [`init`](crate::init) and the guide's free functions.
#[derive(Clone)]
pub struct Observability {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Observability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observability")
            .field("service", &self.inner.service)
            .field(
                "store",
                &self.inner.store.as_ref().map(|s| s.dir().to_path_buf()),
            )
            .finish_non_exhaustive()
    }
}

/// Configures and starts an [`Observability`] runtime.
pub struct ObservabilityBuilder {
    config: Option<ObservabilityConfig>,
    handle: Option<ConfigHandle>,
    store_dir: Option<PathBuf>,
    store: bool,
    pipeline: bool,
    exporters: Vec<Box<dyn Exporter>>,
    watch: Option<PathBuf>,
    listen: Option<String>,
    otlp_endpoint: Option<String>,
}

impl Default for ObservabilityBuilder {
    fn default() -> Self {
        Self {
            config: None,
            handle: None,
            store_dir: None,
            store: cfg!(feature = "store"),
            pipeline: true,
            exporters: Vec::new(),
            watch: None,
            listen: None,
            otlp_endpoint: None,
        }
    }
}

impl ObservabilityBuilder {
    /// Uses this configuration (otherwise [`ObservabilityConfig::from_env`]).
    pub fn config(mut self, config: ObservabilityConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Loads the configuration from the environment now (preset, `TTA_*`, `OTEL_*`).
    pub fn from_env(mut self) -> Result<Self, ObservabilityError> {
        self.config = Some(ObservabilityConfig::from_env()?);
        Ok(self)
    }

    /// Shares an existing configuration handle (for example the process-wide one).
    pub fn config_handle(mut self, handle: ConfigHandle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// Directory of the embedded trace store (default `TTA_DATA_DIR` or `./tta-data`).
    pub fn store_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.store_dir = Some(dir.into());
        self.store = true;
        self
    }

    /// Runs without the embedded store (kept spans go only to the other exporters).
    pub fn without_store(mut self) -> Self {
        self.store = false;
        self
    }

    /// Runs without a span pipeline at all: sampling decisions, metrics and health only.
    pub fn without_pipeline(mut self) -> Self {
        self.pipeline = false;
        self.store = false;
        self
    }

    /// Adds an exporter beside the store.
    pub fn exporter(mut self, exporter: impl Exporter + 'static) -> Self {
        self.exporters.push(Box::new(exporter));
        self
    }

    /// Watches a YAML file and applies every valid change (see [`tta_config::ConfigWatcher`]).
    /// When no configuration was given, the file is also the starting configuration.
    pub fn watch_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.watch = Some(path.into());
        self
    }

    /// Serves `/health`, `/health/{section}`, `/livez`, `/readyz` and `/metrics` on this
    /// address (a bare port binds 127.0.0.1).
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some(addr.into());
        self
    }

    /// Also exports kept spans to an OTLP/HTTP endpoint (otherwise `tracing.otlp_endpoint`
    /// or `OTEL_EXPORTER_OTLP_ENDPOINT`).
    #[cfg(feature = "otlp")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp_endpoint = Some(url.into());
        self
    }

    /// Starts everything.
    pub fn build(self) -> Result<Observability, ObservabilityError> {
        let handle = match (self.handle, self.config, &self.watch) {
            (Some(h), Some(c), _) => {
                h.store(c)?;
                h
            }
            (Some(h), None, _) => h,
            (None, Some(c), _) => ConfigHandle::new(c)?,
            (None, None, Some(path)) => ConfigHandle::new(ObservabilityConfig::load(
                Some(path),
                &tta_config::EnvSource::process(),
            )?)?,
            (None, None, None) => ConfigHandle::new(ObservabilityConfig::from_env()?)?,
        };
        let config = handle.load();

        let sampler = Arc::new(CompositeSampler::try_new(config.tracing.sampling.clone())?);
        let metrics = Arc::new(MetricsCollector::new(config.metrics.clone())?);
        let health = Arc::new(HealthChecker::new(CheckerInfo {
            environment: config.environment.as_str().to_owned(),
            config_loaded: true,
            tracing_available: config.tracing.enabled,
            metrics_collector_available: config.metrics.enabled,
        }));
        let overhead = Arc::new(OverheadMeter::new());

        let mut exporters = self.exporters;
        let store = if self.store {
            let dir = self
                .store_dir
                .or_else(|| std::env::var_os("TTA_DATA_DIR").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
            let store = Arc::new(TraceStore::open(&dir, config.storage.clone())?);
            #[cfg(feature = "store")]
            exporters.insert(0, Box::new(tta_export::StoreExporter::new(store.clone())));
            Some(store)
        } else {
            None
        };
        #[cfg(feature = "otlp")]
        if let Some(endpoint) = self
            .otlp_endpoint
            .or_else(|| config.tracing.otlp_endpoint.clone())
        {
            let otlp = tta_export::OtlpHttpExporter::new(tta_export::OtlpConfig {
                endpoint: Some(endpoint),
                ..tta_export::OtlpConfig::default()
            })?;
            exporters.push(Box::new(otlp));
        }
        #[cfg(not(feature = "otlp"))]
        let _ = self.otlp_endpoint;

        let pipeline = if self.pipeline {
            Some(Arc::new(
                SpanPipeline::builder(config.export_config())
                    .sampler(sampler.clone())
                    .sampling(config.tracing.sampling.clone())
                    .exporters(exporters)
                    .start()?,
            ))
        } else {
            None
        };

        health.register(Arc::new(SamplingComponent {
            sampler: sampler.clone(),
            config: handle.clone(),
            overhead: overhead.clone(),
        }))?;
        health.register(Arc::new(MetricsComponent {
            metrics: metrics.clone(),
            config: handle.clone(),
        }))?;
        if let Some(p) = &pipeline {
            health.register(Arc::new(ExportComponent {
                pipeline: p.clone(),
                config: handle.clone(),
                dropped: WindowCounter::new(
                    Duration::from_secs_f64(config.health.window_seconds.max(1.0)),
                    0,
                ),
                started: Instant::now(),
            }))?;
            if let Some(s) = &store {
                health.register(Arc::new(StorageComponent {
                    store: s.clone(),
                    pipeline: p.clone(),
                    config: handle.clone(),
                }))?;
            }
        }
        health.register(Arc::new(ConfigComponent {
            config: handle.clone(),
        }))?;
        let prom_metrics = Arc::downgrade(&metrics);
        health.set_metrics_source(Arc::new(move || {
            prom_metrics
                .upgrade()
                .map(|m| m.render_prometheus())
                .unwrap_or_default()
        }));

        let inner = Arc::new(Inner {
            service: SharedStr::from(config.service_name.clone()),
            config: handle.clone(),
            sampler,
            metrics,
            health,
            pipeline,
            store,
            overhead,
            watcher: Mutex::new(None),
            #[cfg(feature = "http")]
            server: Mutex::new(None),
            stop: Arc::new(AtomicBool::new(false)),
            meter: Mutex::new(None),
            shut_down: AtomicBool::new(false),
        });
        subscribe(&handle, Arc::downgrade(&inner));

        if let Some(path) = self.watch {
            let watcher = ConfigWatcher::start(path, handle.clone())?;
            if let Ok(mut w) = inner.watcher.lock() {
                *w = Some(watcher);
            }
        }
        #[cfg(feature = "http")]
        if let Some(addr) = self.listen {
            let server = tta_health::http::serve(addr.as_str(), inner.health.clone())?;
            if let Ok(mut s) = inner.server.lock() {
                *s = Some(server);
            }
        }
        #[cfg(not(feature = "http"))]
        let _ = self.listen;

        let meter = spawn_meter(Arc::downgrade(&inner), inner.stop.clone())?;
        if let Ok(mut m) = inner.meter.lock() {
            *m = Some(meter);
        }
        Ok(Observability { inner })
    }
}

/// Applies every configuration change to the running parts, in the storing thread, so the
/// change is in force when `store` returns.
fn subscribe(handle: &ConfigHandle, weak: Weak<Inner>) {
    handle.subscribe(move |change| {
        let Some(inner) = weak.upgrade() else { return };
        let new = &change.new;
        // The new configuration was validated as a whole; these cannot fail for valid input.
        let _ = inner.sampler.reconfigure(new.tracing.sampling.clone());
        let _ = inner.metrics.reconfigure(new.metrics.clone());
        if let Some(p) = &inner.pipeline {
            let _ = p.reconfigure(&new.export_config(), &new.tracing.sampling);
        }
        inner.health.set_environment(new.environment.as_str());
        inner.health.set_tracing_available(new.tracing.enabled);
        inner
            .health
            .set_metrics_collector_available(new.metrics.enabled);
    });
}

/// The measuring thread: overhead samples per adjustment interval, metric snapshots into the
/// store per metrics interval, and retention.
fn spawn_meter(
    weak: Weak<Inner>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, ObservabilityError> {
    std::thread::Builder::new()
        .name("tta-meter".into())
        .spawn(move || {
            let mut last_sample = Instant::now();
            let mut last_snapshot = Instant::now();
            let mut last_retention: Option<Instant> = None;
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(50));
                let Some(inner) = weak.upgrade() else { return };
                let config = inner.config.load_guard();
                if last_sample.elapsed()
                    >= sample_period(config.tracing.sampling.adaptive_adjustment_interval_seconds)
                {
                    last_sample = Instant::now();
                    inner.overhead.sample();
                }
                if let Some(store) = &inner.store {
                    if config.metrics.enabled
                        && last_snapshot.elapsed().as_secs_f64()
                            >= config.metrics.export_interval_seconds
                    {
                        last_snapshot = Instant::now();
                        let _ = store.append_metrics(&inner.metrics.snapshot());
                    }
                    if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
                        last_retention = Some(Instant::now());
                        let _ = store.enforce_retention(SystemClock.now_unix_nanos());
                    }
                }
            }
        })
        .map_err(|source| ObservabilityError::Thread {
            what: "meter",
            source,
        })
}

impl Observability {
    /// A builder; [`ObservabilityBuilder::build`] starts the runtime.
    pub fn builder() -> ObservabilityBuilder {
        ObservabilityBuilder::default()
    }

    /// The configuration in force (lock-free).
    pub fn config(&self) -> Arc<ObservabilityConfig> {
        self.inner.config.load()
    }

    /// The configuration handle: `store`/`update` apply changes to every part at once.
    pub fn config_handle(&self) -> &ConfigHandle {
        &self.inner.config
    }

    /// Validates and applies an edit of the running configuration (read-copy-update).
    pub fn update_config(
        &self,
        edit: impl FnOnce(&mut ObservabilityConfig),
    ) -> Result<tta_config::ConfigChange, ObservabilityError> {
        Ok(self.inner.config.update(edit)?)
    }

    /// The sampler shared by the head path and the pipeline's tail decisions.
    pub fn sampler(&self) -> &Arc<CompositeSampler> {
        &self.inner.sampler
    }

    /// The head decision for a new trace, with the measured overhead fed to the adaptive
    /// sampler.
    pub fn head_decision(&self, key: impl SamplingKey) -> SamplingResult {
        self.inner
            .sampler
            .should_sample_head(key, self.inner.overhead.current())
    }

    /// The metrics collector.
    pub fn metrics(&self) -> &Arc<MetricsCollector> {
        &self.inner.metrics
    }

    /// The health checker with every component registered.
    pub fn health(&self) -> &Arc<HealthChecker> {
        &self.inner.health
    }

    /// The span pipeline, unless built [`without_pipeline`](ObservabilityBuilder::without_pipeline).
    pub fn pipeline(&self) -> Option<&Arc<SpanPipeline>> {
        self.inner.pipeline.as_ref()
    }

    /// The embedded store, when enabled.
    pub fn store(&self) -> Option<&Arc<TraceStore>> {
        self.inner.store.as_ref()
    }

    /// The overhead meter (its `current()` feeds adaptive sampling).
    pub fn overhead(&self) -> &Arc<OverheadMeter> {
        &self.inner.overhead
    }

    /// The service name spans are reported under.
    pub fn service_name(&self) -> &SharedStr {
        &self.inner.service
    }

    /// Hands an ended span to the pipeline (never blocks; `false` if it was dropped).
    pub fn submit(&self, span: Span) -> bool {
        self.inner.pipeline.as_ref().is_some_and(|p| p.submit(span))
    }

    /// Decides a whole local trace at once, as the tracing layer does when a local root
    /// ends: the tail rules (any error span, or the root lasting over `slow_threshold_ms`)
    /// on top of `head` (the decision [`head_decision`](Self::head_decision) gave its root).
    /// A kept trace goes to the pipeline already decided, each span carrying the keeping
    /// threshold, and skips the trace buffer; a dropped one is only counted (as sampled
    /// out). For manual instrumentation that has a request's spans in hand when it ends.
    ///
    /// The duration is the root's (the span without a parent), or the longest span's when
    /// no span is a root. Returns what was decided and how many spans the full queue
    /// refused (0 or all of them).
    ///
    /// ```
    /// use tta_observability::core::{Span, SpanId, SpanStatus, TraceId};
    /// use tta_observability::{Observability, ObservabilityConfig};
    ///
    /// let mut config = ObservabilityConfig::from_environment("production")?;
    /// config.tracing.sampling.default_rate = 0.0; // the head keeps nothing
    /// config.tracing.sampling.adaptive_enabled = false;
    /// let obs = Observability::builder().config(config).without_store().build()?;
    /// let trace_id = TraceId::random();
    /// let head = obs.head_decision(trace_id);
    /// let root = Span {
    ///     trace_id,
    ///     span_id: SpanId::random(),
    ///     name: "GET /cart".into(),
    ///     status: SpanStatus::Error("timeout".into()),
    ///     ..Span::default()
    /// };
    /// let (decision, refused) = obs.submit_local_trace(vec![root], &head);
    /// assert!(decision.is_sampled()); // errors are always kept
    /// assert_eq!(refused, 0);
    /// obs.shutdown(std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn submit_local_trace(
        &self,
        mut spans: Vec<Span>,
        head: &SamplingResult,
    ) -> (SamplingResult, u64) {
        let Some(first) = spans.first() else {
            return (*head, 0);
        };
        let trace_id = first.trace_id;
        let has_error = spans.iter().any(Span::is_error);
        let duration = |s: &Span| s.end_unix_nanos.saturating_sub(s.start_unix_nanos);
        let nanos = spans
            .iter()
            .find(|s| s.parent_span_id.is_none())
            .map(duration)
            .or_else(|| spans.iter().map(duration).max())
            .unwrap_or(0);
        let result =
            self.inner
                .sampler
                .should_sample_tail(trace_id, has_error, nanos as f64 / 1e6, head);
        let n = spans.len() as u64;
        let Some(pipeline) = &self.inner.pipeline else {
            return (result, 0);
        };
        if !result.is_sampled() {
            pipeline.record_sampled_out(n);
            return (result, 0);
        }
        let th = result.threshold.map(|t| t.raw());
        for s in &mut spans {
            s.sampling_threshold = th;
        }
        let refused = if pipeline.submit_decided(spans) { 0 } else { n };
        (result, refused)
    }

    /// A new random trace id.
    pub fn new_trace_id(&self) -> TraceId {
        TraceId::random()
    }

    /// The guide's `get_sampling_status()`.
    pub fn sampling_status(&self) -> Value {
        self.inner.health.sampling_status()
    }

    /// The guide's `get_metrics_status()`.
    pub fn metrics_status(&self) -> Value {
        self.inner.health.metrics_status()
    }

    /// The guide's `get_full_status()`.
    pub fn full_status(&self) -> Value {
        self.inner.health.full_status()
    }

    /// The address the HTTP server is bound to, when listening.
    #[cfg(feature = "http")]
    #[cfg_attr(docsrs, doc(cfg(feature = "http")))]
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner
            .server
            .lock()
            .ok()?
            .as_ref()
            .map(|s| s.local_addr())
    }

    /// The tracing layer feeding this runtime.
    #[cfg(feature = "tracing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
    pub fn layer(&self) -> crate::TtaLayer {
        crate::TtaLayer::new(self.clone())
    }

    /// Decides and exports everything buffered now, waiting up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), ObservabilityError> {
        if let Some(p) = &self.inner.pipeline {
            p.flush(timeout)?;
        }
        if let Some(s) = &self.inner.store {
            s.flush()?;
        }
        Ok(())
    }

    /// Stops the watcher, the HTTP server and the meter, drains the pipeline within
    /// `deadline` and flushes the store. Safe to call more than once.
    pub fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        self.inner.stop.store(true, Ordering::Release);
        if let Ok(mut w) = self.inner.watcher.lock() {
            w.take();
        }
        #[cfg(feature = "http")]
        if let Ok(mut s) = self.inner.server.lock()
            && let Some(server) = s.take()
        {
            let _ = server.shutdown();
        }
        if let Ok(mut m) = self.inner.meter.lock()
            && let Some(t) = m.take()
        {
            let _ = t.join();
        }
        let report = match &self.inner.pipeline {
            Some(p) if !self.inner.shut_down.swap(true, Ordering::AcqRel) => p.shutdown(deadline),
            _ => ShutdownReport::default(),
        };
        if let Some(s) = &self.inner.store {
            if self.inner.config.load_guard().metrics.enabled {
                let _ = s.append_metrics(&self.inner.metrics.snapshot());
            }
            let _ = s.flush();
        }
        report
    }
}
