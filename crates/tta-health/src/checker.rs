//! [`HealthChecker`]: registered components, the roll-up, and the probe verdicts.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{ComponentHealth, HealthError, HealthStatus, format_rfc3339};

/// The message of a report in which every component is healthy (the guide's wording).
pub const HEALTHY_MESSAGE: &str = "All observability systems operational";

/// Names under which the facade registers its components, which are also the
/// `/health/{section}` paths.
pub mod sections {
    /// Head, tail and adaptive sampling.
    pub const SAMPLING: &str = "sampling";
    /// The metrics collector and its cardinality limiter.
    pub const METRICS: &str = "metrics";
    /// The export pipeline.
    pub const EXPORT: &str = "export";
    /// The embedded trace and metric store.
    pub const STORAGE: &str = "storage";
    /// Configuration and hot reload.
    pub const CONFIG: &str = "config";
    /// All of the above, in the order reports list them.
    pub const ALL: [&str; 5] = [SAMPLING, METRICS, EXPORT, STORAGE, CONFIG];
}

/// Keys a component name may not take: the fixed keys of [`HealthReport::details`], the
/// `health` key of [`HealthChecker::full_status`], and the `full` path.
const RESERVED_NAMES: &[&str] = &[
    "config_loaded",
    "environment",
    "metrics_collector",
    "tracing_available",
    "uptime_seconds",
    "health",
    "full",
];

/// A part of the observability system that reports its health: the facade implements it for
/// sampling, metrics, export, storage and config, usually by reading counters into a
/// [`rules`](crate::rules) observation.
///
/// Both methods are called on every probe, possibly from several threads at once, so they
/// must be cheap (read atomics or a snapshot) and must not block on I/O. A panic in either is
/// caught and reported as an unhealthy component.
///
/// ```
/// use serde_json::{Value, json};
/// use tta_health::{ComponentHealth, HealthComponent};
///
/// struct Sampling { rate: f64 }
///
/// impl HealthComponent for Sampling {
///     fn name(&self) -> &str { "sampling" }
///     fn check(&self) -> ComponentHealth {
///         if self.rate < 0.01 {
///             ComponentHealth::degraded("sampling rate very low (<1%)")
///         } else {
///             ComponentHealth::healthy()
///         }
///     }
///     fn status_document(&self) -> Value {
///         json!({ "enabled": true, "sampling_rate": self.rate })
///     }
/// }
/// ```
pub trait HealthComponent: Send + Sync {
    /// The component's name: the key of its entry in reports and its `/health/{name}` path.
    /// It must be 1 to 64 characters of `a-z`, `0-9`, `_` and `-` (see [`sections`] for the
    /// usual ones). It is read once, at registration.
    fn name(&self) -> &str;
    /// Judges the component now: status, reasons, and the values the verdict is based on.
    fn check(&self) -> ComponentHealth;
    /// The component's full status as JSON (configuration in force and current counters),
    /// returned by [`HealthChecker::section`] and under its name in
    /// [`HealthChecker::full_status`].
    fn status_document(&self) -> Value;
}

/// Whether a component's health decides readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessRole {
    /// The process is not ready while this component is unhealthy.
    #[default]
    Required,
    /// Reported, but never makes the process not ready.
    Informational,
}

/// The fixed facts a [`HealthChecker`] reports in every report's `details`.
///
/// ```
/// use tta_health::CheckerInfo;
///
/// let info = CheckerInfo { environment: "staging".into(), config_loaded: true, ..Default::default() };
/// assert!(info.tracing_available && info.metrics_collector_available);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckerInfo {
    /// The deployment environment (`details.environment`). Default `"production"`, the
    /// preset used when `ENVIRONMENT` is unset.
    pub environment: String,
    /// Whether a configuration was loaded, rather than built-in defaults used
    /// (`details.config_loaded`). Default `false`.
    pub config_loaded: bool,
    /// Whether tracing is wired up (`details.tracing_available`). Default `true`.
    pub tracing_available: bool,
    /// Whether the metrics collector is running (`details.metrics_collector` is
    /// `"available"` or `"unavailable"`). Default `true`.
    pub metrics_collector_available: bool,
}

impl Default for CheckerInfo {
    fn default() -> Self {
        Self {
            environment: "production".into(),
            config_loaded: false,
            tracing_available: true,
            metrics_collector_available: true,
        }
    }
}

/// One health report: the guide's `status`, `message`, `details` and `timestamp`.
///
/// `details` always holds `config_loaded`, `environment`, `metrics_collector`,
/// `tracing_available` and `uptime_seconds`, plus one entry per registered component (its
/// `status`, `reasons` and observed values; see [`ComponentHealth::to_details`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The worst status of any component (healthy when none is registered).
    pub status: HealthStatus,
    /// [`HEALTHY_MESSAGE`], or which components are worst and why.
    pub message: String,
    /// Facts and per-component entries, as JSON.
    pub details: Map<String, Value>,
    /// When the report was made, RFC 3339 in UTC with milliseconds.
    pub timestamp: String,
}

impl HealthReport {
    /// The report as a JSON value (what `/health` returns).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The liveness verdict: the process is up and answering. It never depends on a backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Liveness {
    /// Always `"alive"` when there is anyone to answer.
    pub status: String,
    /// Seconds since the checker was created.
    pub uptime_seconds: f64,
}

/// The readiness verdict: ready unless a component registered as
/// [`ReadinessRole::Required`] is unhealthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    /// `"ready"` or `"not ready"`.
    pub status: String,
    /// Whether the process is ready.
    pub ready: bool,
    /// The required components that are unhealthy, with their reasons.
    pub not_ready: Vec<NotReady>,
}

/// One component that keeps the process from being ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotReady {
    /// The component's name.
    pub component: String,
    /// Its status (unhealthy).
    pub status: HealthStatus,
    /// Why.
    pub reason: String,
}

/// A source of Prometheus text for `/metrics`.
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

struct Registered {
    name: String,
    role: ReadinessRole,
    component: Arc<dyn HealthComponent>,
}

/// Holds the metrics source in a sized type so it fits in an `ArcSwapOption`.
struct SourceSlot(MetricsSource);

/// Registers health components and answers health, readiness and liveness questions.
///
/// Probes take no lock: components, environment and flags are read through atomics and
/// `arc-swap`, so `/health` can be polled often from many threads while the facade
/// registers components or updates the environment after a config reload.
///
/// ```
/// use std::sync::Arc;
/// use serde_json::{Value, json};
/// use tta_health::{CheckerInfo, ComponentHealth, HealthChecker, HealthComponent, HealthStatus};
///
/// struct Store { writable: bool }
/// impl HealthComponent for Store {
///     fn name(&self) -> &str { "storage" }
///     fn check(&self) -> ComponentHealth {
///         if self.writable { ComponentHealth::healthy() } else { ComponentHealth::unhealthy("store not writable") }
///     }
///     fn status_document(&self) -> Value { json!({ "writable": self.writable }) }
/// }
///
/// let checker = HealthChecker::new(CheckerInfo { config_loaded: true, ..Default::default() });
/// checker.register(Arc::new(Store { writable: true }))?;
/// let report = checker.check_health();
/// assert_eq!(report.status, HealthStatus::Healthy);
/// assert_eq!(report.message, "All observability systems operational");
/// assert_eq!(report.details["environment"], "production");
/// assert_eq!(checker.full_status()["storage"]["writable"], true);
///
/// checker.unregister("storage");
/// checker.register(Arc::new(Store { writable: false }))?;
/// let report = checker.check_health();
/// assert_eq!(report.status, HealthStatus::Unhealthy);
/// assert_eq!(report.message, "Unhealthy: storage (store not writable)");
/// assert!(!checker.readiness().ready);
/// # Ok::<(), tta_health::HealthError>(())
/// ```
pub struct HealthChecker {
    started: Instant,
    environment: ArcSwap<String>,
    config_loaded: AtomicBool,
    tracing_available: AtomicBool,
    metrics_collector_available: AtomicBool,
    components: ArcSwap<Vec<Arc<Registered>>>,
    metrics_source: ArcSwapOption<SourceSlot>,
    /// Serializes registrations (rare) so duplicate checks see each other; probes never
    /// take it.
    registering: Mutex<()>,
}

impl Default for HealthChecker {
    fn default() -> Self {
        Self::new(CheckerInfo::default())
    }
}

impl fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthChecker")
            .field("environment", &self.environment())
            .field("components", &self.component_names())
            .field("has_metrics_source", &self.metrics_source.load().is_some())
            .finish_non_exhaustive()
    }
}

impl HealthChecker {
    /// A checker with no components; uptime counts from now.
    pub fn new(info: CheckerInfo) -> Self {
        Self {
            started: Instant::now(),
            environment: ArcSwap::from_pointee(info.environment),
            config_loaded: AtomicBool::new(info.config_loaded),
            tracing_available: AtomicBool::new(info.tracing_available),
            metrics_collector_available: AtomicBool::new(info.metrics_collector_available),
            components: ArcSwap::from_pointee(Vec::new()),
            metrics_source: ArcSwapOption::empty(),
            registering: Mutex::new(()),
        }
    }

    /// Registers a component that readiness depends on ([`ReadinessRole::Required`]).
    ///
    /// Fails when the name is invalid or reserved, or already registered.
    pub fn register(&self, component: Arc<dyn HealthComponent>) -> Result<(), HealthError> {
        self.register_with(component, ReadinessRole::Required)
    }

    /// Registers a component with a chosen readiness role. Report messages name components
    /// in registration order.
    pub fn register_with(
        &self,
        component: Arc<dyn HealthComponent>,
        role: ReadinessRole,
    ) -> Result<(), HealthError> {
        let name = component.name().to_owned();
        validate_name(&name)?;
        let _guard = self
            .registering
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.components.load();
        if current.iter().any(|r| r.name == name) {
            return Err(HealthError::DuplicateComponent { name });
        }
        let mut next: Vec<Arc<Registered>> = current.iter().cloned().collect();
        next.push(Arc::new(Registered {
            name,
            role,
            component,
        }));
        self.components.store(Arc::new(next));
        Ok(())
    }

    /// Removes a component; returns whether one was registered under that name.
    pub fn unregister(&self, name: &str) -> bool {
        let _guard = self
            .registering
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.components.load();
        if !current.iter().any(|r| r.name == name) {
            return false;
        }
        let next: Vec<Arc<Registered>> =
            current.iter().filter(|r| r.name != name).cloned().collect();
        self.components.store(Arc::new(next));
        true
    }

    /// The names of the registered components, in registration order.
    pub fn component_names(&self) -> Vec<String> {
        self.components
            .load()
            .iter()
            .map(|r| r.name.clone())
            .collect()
    }

    /// Sets the environment reported in `details.environment` (after a config reload, say).
    pub fn set_environment(&self, environment: impl Into<String>) {
        self.environment.store(Arc::new(environment.into()));
    }

    /// The environment currently reported.
    pub fn environment(&self) -> String {
        self.environment.load().as_ref().clone()
    }

    /// Sets `details.config_loaded`.
    pub fn set_config_loaded(&self, loaded: bool) {
        self.config_loaded.store(loaded, Ordering::Relaxed);
    }

    /// Sets `details.tracing_available`.
    pub fn set_tracing_available(&self, available: bool) {
        self.tracing_available.store(available, Ordering::Relaxed);
    }

    /// Sets whether `details.metrics_collector` reads `"available"` or `"unavailable"`.
    pub fn set_metrics_collector_available(&self, available: bool) {
        self.metrics_collector_available
            .store(available, Ordering::Relaxed);
    }

    /// Sets the source of the Prometheus text served at `/metrics`, replacing any previous
    /// one. It is called on every scrape, so it should render from counters it already has.
    pub fn set_metrics_source(&self, source: MetricsSource) {
        self.metrics_source
            .store(Some(Arc::new(SourceSlot(source))));
    }

    /// Removes the metrics source; `/metrics` then answers 404.
    pub fn clear_metrics_source(&self) {
        self.metrics_source.store(None);
    }

    /// The Prometheus text of the metrics source, or `None` when none is set. A panic in the
    /// source propagates to the caller (the HTTP endpoint turns it into a 500).
    pub fn metrics_text(&self) -> Option<String> {
        self.metrics_source.load_full().map(|slot| (slot.0)())
    }

    /// Seconds since the checker was created, with millisecond precision.
    pub fn uptime_seconds(&self) -> f64 {
        let millis = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Exact for any uptime below 2^53 ms (285 000 years).
        millis as f64 / 1000.0
    }

    /// Checks every component and rolls the results up: the worst status wins, the message
    /// names the worst components and why, and `details` holds the fixed facts plus one
    /// entry per component.
    pub fn check_health(&self) -> HealthReport {
        let results = self.check_all();
        let status = results
            .iter()
            .fold(HealthStatus::Healthy, |acc, (_, h)| acc.worst(h.status));
        let message = roll_up_message(status, &results);
        let mut details = self.base_details();
        for (name, health) in &results {
            details.insert(name.clone(), health.to_details());
        }
        HealthReport {
            status,
            message,
            details,
            timestamp: format_rfc3339(SystemTime::now()),
        }
    }

    /// Every component's status document keyed by its name, plus the current report under
    /// `"health"`: `full_status()["sampling"]["sampling_rate"]`.
    pub fn full_status(&self) -> Value {
        self.full_status_with_report().1
    }

    /// [`full_status`](Self::full_status) and the report it embeds.
    pub(crate) fn full_status_with_report(&self) -> (HealthReport, Value) {
        let report = self.check_health();
        let mut out = Map::new();
        out.insert("health".into(), report.to_json());
        for r in self.components.load().iter() {
            out.insert(r.name.clone(), document(&r.component));
        }
        (report, Value::Object(out))
    }

    /// The status document of one component, or `None` when no component has that name.
    pub fn section(&self, name: &str) -> Option<Value> {
        let components = self.components.load();
        components
            .iter()
            .find(|r| r.name == name)
            .map(|r| document(&r.component))
    }

    /// The check result of one component, or `None` when no component has that name.
    pub fn component_health(&self, name: &str) -> Option<ComponentHealth> {
        let components = self.components.load();
        components
            .iter()
            .find(|r| r.name == name)
            .map(|r| check(&r.component))
    }

    /// The sampling status document (`Value::Null` when no `sampling` component is
    /// registered), as in the guide's `get_sampling_status()`.
    pub fn sampling_status(&self) -> Value {
        self.section(sections::SAMPLING).unwrap_or(Value::Null)
    }

    /// The metrics status document (`Value::Null` when none), as in the guide's
    /// `get_metrics_status()`.
    pub fn metrics_status(&self) -> Value {
        self.section(sections::METRICS).unwrap_or(Value::Null)
    }

    /// The export status document (`Value::Null` when none).
    pub fn export_status(&self) -> Value {
        self.section(sections::EXPORT).unwrap_or(Value::Null)
    }

    /// The storage status document (`Value::Null` when none).
    pub fn storage_status(&self) -> Value {
        self.section(sections::STORAGE).unwrap_or(Value::Null)
    }

    /// The config status document (`Value::Null` when none).
    pub fn config_status(&self) -> Value {
        self.section(sections::CONFIG).unwrap_or(Value::Null)
    }

    /// The liveness verdict: always alive. It checks no component, so a hung or failing
    /// backend never gets a healthy process restarted.
    pub fn liveness(&self) -> Liveness {
        Liveness {
            status: "alive".into(),
            uptime_seconds: self.uptime_seconds(),
        }
    }

    /// The readiness verdict: ready unless a [`ReadinessRole::Required`] component is
    /// unhealthy. Degraded components (and informational ones) never make it not ready.
    pub fn readiness(&self) -> Readiness {
        let not_ready: Vec<NotReady> = self
            .components
            .load()
            .iter()
            .filter(|r| r.role == ReadinessRole::Required)
            .filter_map(|r| {
                let health = check(&r.component);
                (health.status == HealthStatus::Unhealthy).then(|| NotReady {
                    component: r.name.clone(),
                    status: health.status,
                    reason: reason_or_default(&health),
                })
            })
            .collect();
        let ready = not_ready.is_empty();
        Readiness {
            status: if ready { "ready" } else { "not ready" }.into(),
            ready,
            not_ready,
        }
    }

    fn check_all(&self) -> Vec<(String, ComponentHealth)> {
        self.components
            .load()
            .iter()
            .map(|r| (r.name.clone(), check(&r.component)))
            .collect()
    }

    fn base_details(&self) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert(
            "config_loaded".into(),
            Value::from(self.config_loaded.load(Ordering::Relaxed)),
        );
        d.insert("environment".into(), Value::from(self.environment()));
        let collector = if self.metrics_collector_available.load(Ordering::Relaxed) {
            "available"
        } else {
            "unavailable"
        };
        d.insert("metrics_collector".into(), Value::from(collector));
        d.insert(
            "tracing_available".into(),
            Value::from(self.tracing_available.load(Ordering::Relaxed)),
        );
        d.insert(
            "uptime_seconds".into(),
            serde_json::Number::from_f64(self.uptime_seconds()).map_or(Value::Null, Value::Number),
        );
        d
    }
}

/// Runs a component's check, turning a panic into an unhealthy result.
fn check(component: &Arc<dyn HealthComponent>) -> ComponentHealth {
    catch_unwind(AssertUnwindSafe(|| component.check()))
        .unwrap_or_else(|_| ComponentHealth::unhealthy("health check panicked"))
}

/// Builds a component's status document, turning a panic into an error document.
fn document(component: &Arc<dyn HealthComponent>) -> Value {
    catch_unwind(AssertUnwindSafe(|| component.status_document()))
        .unwrap_or_else(|_| serde_json::json!({ "error": "status document panicked" }))
}

fn reason_or_default(health: &ComponentHealth) -> String {
    if health.reasons.is_empty() {
        "no reason given".into()
    } else {
        health.reason()
    }
}

/// The report message: the guide's healthy message, or the worst components with reasons,
/// then the names of the merely degraded ones when something is unhealthy.
fn roll_up_message(status: HealthStatus, results: &[(String, ComponentHealth)]) -> String {
    if status == HealthStatus::Healthy {
        return HEALTHY_MESSAGE.to_owned();
    }
    let worst: Vec<String> = results
        .iter()
        .filter(|(_, h)| h.status == status)
        .map(|(name, h)| format!("{name} ({})", reason_or_default(h)))
        .collect();
    let label = if status == HealthStatus::Unhealthy {
        "Unhealthy"
    } else {
        "Degraded"
    };
    let mut message = format!("{label}: {}", worst.join(", "));
    if status == HealthStatus::Unhealthy {
        let degraded: Vec<&str> = results
            .iter()
            .filter(|(_, h)| h.status == HealthStatus::Degraded)
            .map(|(name, _)| name.as_str())
            .collect();
        if !degraded.is_empty() {
            message.push_str("; also degraded: ");
            message.push_str(&degraded.join(", "));
        }
    }
    message
}

fn validate_name(name: &str) -> Result<(), HealthError> {
    let why = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > 64 {
        Some("must be at most 64 bytes")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        Some("must use only a-z, 0-9, '_' and '-'")
    } else if RESERVED_NAMES.contains(&name) {
        Some("is reserved for a report key or path")
    } else {
        None
    };
    match why {
        Some(why) => Err(HealthError::InvalidComponentName {
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed {
        name: &'static str,
        health: ComponentHealth,
    }

    impl HealthComponent for Fixed {
        fn name(&self) -> &str {
            self.name
        }
        fn check(&self) -> ComponentHealth {
            self.health.clone()
        }
        fn status_document(&self) -> Value {
            json!({ "name": self.name })
        }
    }

    struct Panics;

    impl HealthComponent for Panics {
        fn name(&self) -> &str {
            "flaky"
        }
        fn check(&self) -> ComponentHealth {
            panic!("check blew up")
        }
        fn status_document(&self) -> Value {
            panic!("document blew up")
        }
    }

    fn fixed(name: &'static str, health: ComponentHealth) -> Arc<dyn HealthComponent> {
        Arc::new(Fixed { name, health })
    }

    #[test]
    fn names_are_validated() {
        let c = HealthChecker::default();
        for (bad, why) in [
            ("", "empty"),
            ("Sampling", "only a-z"),
            ("a b", "only a-z"),
            ("full", "reserved"),
            ("uptime_seconds", "reserved"),
            ("health", "reserved"),
        ] {
            let err = c
                .register(fixed(bad, ComponentHealth::healthy()))
                .unwrap_err();
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
        let long: &'static str = Box::leak("x".repeat(65).into_boxed_str());
        assert!(c.register(fixed(long, ComponentHealth::healthy())).is_err());
        c.register(fixed("export-2", ComponentHealth::healthy()))
            .unwrap();
        let err = c
            .register(fixed("export-2", ComponentHealth::healthy()))
            .unwrap_err();
        assert!(matches!(err, HealthError::DuplicateComponent { ref name } if name == "export-2"));
        assert_eq!(
            err.to_string(),
            "health component \"export-2\" is already registered"
        );
        assert_eq!(c.component_names(), ["export-2"]);
        assert!(c.unregister("export-2"));
        assert!(!c.unregister("export-2"));
        assert!(c.component_names().is_empty());
    }

    #[test]
    fn empty_checker_is_healthy_and_has_the_fixed_details() {
        let c = HealthChecker::new(CheckerInfo {
            environment: "staging".into(),
            config_loaded: true,
            tracing_available: false,
            metrics_collector_available: false,
        });
        let r = c.check_health();
        assert_eq!(r.status, HealthStatus::Healthy);
        assert_eq!(r.message, HEALTHY_MESSAGE);
        assert_eq!(r.details["environment"], "staging");
        assert_eq!(r.details["config_loaded"], true);
        assert_eq!(r.details["tracing_available"], false);
        assert_eq!(r.details["metrics_collector"], "unavailable");
        assert!(
            r.details["uptime_seconds"]
                .as_f64()
                .is_some_and(|u| u >= 0.0)
        );
        c.set_environment("production");
        c.set_config_loaded(false);
        c.set_tracing_available(true);
        c.set_metrics_collector_available(true);
        let r = c.check_health();
        assert_eq!(r.details["environment"], "production");
        assert_eq!(r.details["config_loaded"], false);
        assert_eq!(r.details["tracing_available"], true);
        assert_eq!(r.details["metrics_collector"], "available");
        assert!(format!("{c:?}").contains("production"));
    }

    #[test]
    fn panicking_component_is_unhealthy_not_fatal() {
        let c = HealthChecker::default();
        c.register(Arc::new(Panics)).unwrap();
        let r = c.check_health();
        assert_eq!(r.status, HealthStatus::Unhealthy);
        assert_eq!(r.message, "Unhealthy: flaky (health check panicked)");
        assert_eq!(
            c.section("flaky").unwrap()["error"],
            "status document panicked"
        );
        assert!(!c.readiness().ready);
    }

    #[test]
    fn readiness_respects_roles() {
        let c = HealthChecker::default();
        c.register_with(
            fixed("storage", ComponentHealth::unhealthy("disk gone")),
            ReadinessRole::Informational,
        )
        .unwrap();
        c.register(fixed("export", ComponentHealth::degraded("slow")))
            .unwrap();
        let r = c.readiness();
        assert!(r.ready, "{r:?}");
        assert_eq!(r.status, "ready");
        c.register(fixed(
            "config",
            ComponentHealth {
                status: HealthStatus::Unhealthy,
                ..Default::default()
            },
        ))
        .unwrap();
        let r = c.readiness();
        assert!(!r.ready);
        assert_eq!(r.status, "not ready");
        assert_eq!(r.not_ready.len(), 1);
        assert_eq!(r.not_ready[0].component, "config");
        assert_eq!(r.not_ready[0].reason, "no reason given");
        assert_eq!(c.liveness().status, "alive");
    }

    #[test]
    fn metrics_source_can_be_set_and_cleared() {
        let c = HealthChecker::default();
        assert_eq!(c.metrics_text(), None);
        c.set_metrics_source(Arc::new(|| "up 1\n".to_string()));
        assert_eq!(c.metrics_text().as_deref(), Some("up 1\n"));
        c.clear_metrics_source();
        assert_eq!(c.metrics_text(), None);
    }

    #[test]
    fn uptime_grows() {
        let c = HealthChecker::default();
        let first = c.uptime_seconds();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while c.uptime_seconds() <= first && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(c.uptime_seconds() > first);
    }
}
