//! Shared, lock-free configuration: [`ConfigHandle`] and the process-wide instance.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::{ConfigError, ObservabilityConfig};

/// What a subscriber is told about an applied change.
#[derive(Debug, Clone)]
pub struct ConfigChange {
    /// The configuration before.
    pub old: Arc<ObservabilityConfig>,
    /// The configuration now in force.
    pub new: Arc<ObservabilityConfig>,
    /// Keys that changed but only take effect after a restart.
    pub restart_required: Vec<&'static str>,
}

type Subscriber = Box<dyn Fn(&ConfigChange) + Send + Sync>;

/// Counters of applied and rejected changes, for health checks and the watcher.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadStats {
    /// Changes applied.
    pub applied: u64,
    /// Changes rejected (invalid); the previous configuration stayed in force.
    pub rejected: u64,
    /// The last rejection's message.
    pub last_error: Option<String>,
    /// Whether the most recent attempt was rejected.
    pub last_rejected: bool,
    /// When the last change was applied (Unix nanos), if ever.
    pub last_applied_unix_nanos: Option<u64>,
    /// Increments with every applied change.
    pub version: u64,
    /// Keys of the last applied change that need a restart.
    pub restart_required: Vec<&'static str>,
}

struct Inner {
    current: ArcSwap<ObservabilityConfig>,
    subscribers: Mutex<Vec<Subscriber>>,
    stats: Mutex<ReloadStats>,
    version: AtomicU64,
}

/// Derefs to the shared slot, so a [`ConfigReader`]'s cache can keep the handle alive.
#[derive(Clone)]
struct Current(Arc<Inner>);

impl std::ops::Deref for Current {
    type Target = ArcSwap<ObservabilityConfig>;
    fn deref(&self) -> &Self::Target {
        &self.0.current
    }
}

/// A thread's cached view of a [`ConfigHandle`], from [`ConfigHandle::reader`].
///
/// `load` takes `&mut self`, so each thread keeps its own reader (readers are `Send` and
/// `Clone`). The reader holds the configuration it last returned until its next `load`, so an
/// old configuration lives as long as some reader has not looked again.
///
/// ```
/// use tta_config::{ConfigHandle, ObservabilityConfig};
///
/// let handle = ConfigHandle::new(ObservabilityConfig::default())?;
/// let mut reader = handle.reader();
/// assert_eq!(reader.load().tracing.sampling.default_rate, 0.05);
/// handle.update(|c| c.tracing.sampling.default_rate = 0.01)?;
/// assert_eq!(reader.load().tracing.sampling.default_rate, 0.01);
/// # Ok::<(), tta_config::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ConfigReader {
    cache: arc_swap::cache::Cache<Current, Arc<ObservabilityConfig>>,
}

impl ConfigReader {
    /// The configuration in force: lock-free and wait-free; no fence while it is unchanged.
    #[inline]
    pub fn load(&mut self) -> &ObservabilityConfig {
        self.cache.load()
    }
}

impl std::fmt::Debug for ConfigReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigReader").finish_non_exhaustive()
    }
}

/// A shared configuration that readers load without a lock and writers replace atomically
/// after validation. Cloning the handle shares the same configuration.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicU64, Ordering}};
/// use tta_config::{ConfigHandle, ObservabilityConfig};
///
/// let handle = ConfigHandle::new(ObservabilityConfig::default())?;
/// let seen = Arc::new(AtomicU64::new(0));
/// let s = seen.clone();
/// handle.subscribe(move |change| {
///     s.store((change.new.tracing.sampling.default_rate * 100.0) as u64, Ordering::SeqCst);
/// });
/// handle.update(|c| c.tracing.sampling.default_rate = 0.01)?;
/// assert_eq!(handle.load().tracing.sampling.default_rate, 0.01);
/// assert_eq!(seen.load(Ordering::SeqCst), 1);
///
/// // An invalid change is rejected and the last good configuration stays.
/// assert!(handle.update(|c| c.tracing.sampling.default_rate = 1.5).is_err());
/// assert_eq!(handle.load().tracing.sampling.default_rate, 0.01);
/// assert_eq!(handle.stats().rejected, 1);
/// # Ok::<(), tta_config::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ConfigHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ConfigHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigHandle")
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl ConfigHandle {
    /// A handle holding `config`, which must be valid.
    pub fn new(config: ObservabilityConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                current: ArcSwap::from_pointee(config),
                subscribers: Mutex::new(Vec::new()),
                stats: Mutex::new(ReloadStats::default()),
                version: AtomicU64::new(0),
            }),
        })
    }

    /// The configuration in force: lock-free, wait-free for readers.
    pub fn load(&self) -> Arc<ObservabilityConfig> {
        self.inner.current.load_full()
    }

    /// A cheap guard for very hot paths (no reference-count traffic in the common case).
    pub fn load_guard(&self) -> arc_swap::Guard<Arc<ObservabilityConfig>> {
        self.inner.current.load()
    }

    /// A reader for one thread's hot path: [`ConfigReader::load`] costs one relaxed atomic
    /// load and a compare while the configuration is unchanged (no fence, no reference-count
    /// traffic), and picks up a new configuration on the first call after it was applied.
    pub fn reader(&self) -> ConfigReader {
        ConfigReader {
            cache: arc_swap::cache::Cache::new(Current(Arc::clone(&self.inner))),
        }
    }

    /// Increments with every applied change; a cheap way to notice a change.
    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    /// Validates `config`, swaps it in atomically and notifies subscribers. On error the
    /// previous configuration stays in force and the rejection is counted.
    pub fn store(&self, config: ObservabilityConfig) -> Result<ConfigChange, ConfigError> {
        if let Err(e) = config.validate() {
            self.record_rejection(&e);
            return Err(e);
        }
        let new = Arc::new(config);
        let old = self.inner.current.swap(new.clone());
        let change = ConfigChange {
            restart_required: old.restart_required(&new),
            old,
            new,
        };
        let version = self.inner.version.fetch_add(1, Ordering::AcqRel) + 1;
        if let Ok(mut stats) = self.inner.stats.lock() {
            stats.applied += 1;
            stats.last_rejected = false;
            stats.last_applied_unix_nanos = Some(now_nanos());
            stats.version = version;
            stats.restart_required = change.restart_required.clone();
        }
        if let Ok(subs) = self.inner.subscribers.lock() {
            for s in subs.iter() {
                s(&change);
            }
        }
        Ok(change)
    }

    /// Read-copy-update: applies `edit` to a copy of the current configuration and stores
    /// it (validated like a reload).
    pub fn update(
        &self,
        edit: impl FnOnce(&mut ObservabilityConfig),
    ) -> Result<ConfigChange, ConfigError> {
        let mut copy = (*self.load()).clone();
        edit(&mut copy);
        self.store(copy)
    }

    /// Counts a rejected change that never reached [`store`](Self::store) (for example a
    /// file that failed to parse).
    pub fn record_rejection(&self, error: &ConfigError) {
        if let Ok(mut stats) = self.inner.stats.lock() {
            stats.rejected += 1;
            stats.last_rejected = true;
            stats.last_error = Some(error.to_string());
        }
    }

    /// Runs `callback` after every applied change, with the old and new configuration.
    pub fn subscribe(&self, callback: impl Fn(&ConfigChange) + Send + Sync + 'static) {
        if let Ok(mut subs) = self.inner.subscribers.lock() {
            subs.push(Box::new(callback));
        }
    }

    /// Applied and rejected counts, last error and time.
    pub fn stats(&self) -> ReloadStats {
        self.inner
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }
}

static GLOBAL: OnceLock<ConfigHandle> = OnceLock::new();

/// The process-wide handle, created from `ObservabilityConfig::from_env()` (or the
/// production preset when the environment is invalid) on first use.
pub fn global_handle() -> &'static ConfigHandle {
    GLOBAL.get_or_init(|| {
        let config = ObservabilityConfig::from_env().unwrap_or_default();
        ConfigHandle::new(config).unwrap_or_else(|_| {
            ConfigHandle::new(ObservabilityConfig::default())
                .expect("the production preset is valid (tested)")
        })
    })
}

/// Installs `config` as the process-wide configuration (validated; subscribers of the global
/// handle are notified). The guide's `set_observability_config`.
pub fn set_observability_config(config: ObservabilityConfig) -> Result<(), ConfigError> {
    global_handle().store(config).map(|_| ())
}

/// The process-wide configuration, read without a lock.
pub fn observability_config() -> Arc<ObservabilityConfig> {
    global_handle().load()
}
