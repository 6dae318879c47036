//! Hot reload: watch a YAML file and apply every valid change to a [`ConfigHandle`].

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use notify::{RecursiveMode, Watcher};

use crate::env::{EnvSource, build_tree};
use crate::{ConfigError, ConfigHandle, ObservabilityConfig};

/// How the watcher behaves.
#[derive(Debug, Clone)]
pub struct WatcherOptions {
    /// How often the file is re-read even without a file-system event (the fallback when
    /// events are unavailable or missed, e.g. on network file systems).
    pub poll_interval: Duration,
    /// Quiet time after an event before the file is read, so a burst of writes is one reload.
    pub debounce: Duration,
    /// Variables applied over the file on every reload (precedence as at start-up).
    pub env: EnvSource,
}

impl Default for WatcherOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            debounce: Duration::from_millis(50),
            env: EnvSource::process(),
        }
    }
}

/// Reload counters of one watcher.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatcherStats {
    /// Reloads applied.
    pub reloads_applied: u64,
    /// Reloads rejected; the last good configuration stayed in force.
    pub reloads_rejected: u64,
    /// The last rejection, with file path and line/column where known.
    pub last_error: Option<String>,
    /// When the last reload was applied (Unix nanos).
    pub last_applied_unix_nanos: Option<u64>,
    /// Hash of the file content last read (changes with every edit).
    pub content_hash: u64,
    /// Whether file-system events are in use (otherwise polling only).
    pub events_active: bool,
    /// Keys of the last applied reload that need a restart to take effect.
    pub restart_required: Vec<&'static str>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    applied: AtomicU64,
    rejected: AtomicU64,
    content_hash: AtomicU64,
    events_active: AtomicBool,
    detail: Mutex<(Option<String>, Option<u64>, Vec<&'static str>)>,
}

enum Msg {
    Fs,
    Stop,
}

/// Watches a config file's directory (so editors that save by rename, delete-then-recreate
/// and Kubernetes ConfigMap `..data` symlink swaps are all seen) with a polling fallback.
/// An invalid file keeps the last good configuration and is counted.
///
/// ```no_run
/// use tta_config::{ConfigHandle, ConfigWatcher, ObservabilityConfig};
/// let handle = ConfigHandle::new(ObservabilityConfig::from_yaml_file("config.yaml")?)?;
/// let watcher = ConfigWatcher::start("config.yaml", handle.clone())?;
/// // ... edit config.yaml: handle.load() returns the new values shortly after.
/// println!("{:?}", watcher.stats());
/// # Ok::<(), tta_config::ConfigError>(())
/// ```
pub struct ConfigWatcher {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    _watcher: Option<notify::RecommendedWatcher>,
    path: PathBuf,
}

impl std::fmt::Debug for ConfigWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigWatcher")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ConfigWatcher {
    /// Starts watching `path` with default options.
    pub fn start(path: impl AsRef<Path>, handle: ConfigHandle) -> Result<Self, ConfigError> {
        Self::start_with(path, handle, WatcherOptions::default())
    }

    /// Starts watching `path`. The file's current content is taken as already applied.
    pub fn start_with(
        path: impl AsRef<Path>,
        handle: ConfigHandle,
        options: WatcherOptions,
    ) -> Result<Self, ConfigError> {
        let path = path.as_ref().to_path_buf();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(ConfigError::Io {
                path: dir,
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "directory to watch does not exist",
                ),
            });
        }
        let shared = Arc::new(Shared::default());
        if let Ok(text) = std::fs::read(&path) {
            shared
                .content_hash
                .store(hash_bytes(&text), Ordering::SeqCst);
        }
        let (tx, rx) = channel();
        let events_tx = tx.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if res.is_ok() {
                let _ = events_tx.send(Msg::Fs);
            }
        })
        .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w))
        .ok();
        shared
            .events_active
            .store(watcher.is_some(), Ordering::SeqCst);

        let thread_shared = shared.clone();
        let thread_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("tta-config-watcher".into())
            .spawn(move || run(&thread_path, &handle, &options, &thread_shared, &rx))
            .map_err(|e| {
                ConfigError::Internal(format!("cannot spawn the config watcher thread: {e}"))
            })?;
        Ok(Self {
            shared,
            tx,
            thread: Some(thread),
            _watcher: watcher,
            path,
        })
    }

    /// Reload counters.
    pub fn stats(&self) -> WatcherStats {
        let (last_error, last_applied_unix_nanos, restart_required) = self
            .shared
            .detail
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        WatcherStats {
            reloads_applied: self.shared.applied.load(Ordering::SeqCst),
            reloads_rejected: self.shared.rejected.load(Ordering::SeqCst),
            last_error,
            last_applied_unix_nanos,
            content_hash: self.shared.content_hash.load(Ordering::SeqCst),
            events_active: self.shared.events_active.load(Ordering::SeqCst),
            restart_required,
        }
    }

    /// The watched file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the watcher thread and waits for it.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

fn run(
    path: &Path,
    handle: &ConfigHandle,
    options: &WatcherOptions,
    shared: &Shared,
    rx: &Receiver<Msg>,
) {
    loop {
        match rx.recv_timeout(options.poll_interval) {
            Ok(Msg::Stop) => return,
            Ok(Msg::Fs) => {
                // Debounce: wait until events stop arriving for `debounce`.
                let mut deadline = Instant::now() + options.debounce;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(Msg::Fs) => deadline = Instant::now() + options.debounce,
                        Ok(Msg::Stop) => return,
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        check(path, handle, options, shared);
    }
}

fn check(path: &Path, handle: &ConfigHandle, options: &WatcherOptions, shared: &Shared) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        // Deleted (an editor's delete-then-recreate, or a symlink mid-swap): keep the last
        // good configuration and wait for the file to come back.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(source) => {
            reject(
                handle,
                shared,
                &ConfigError::Io {
                    path: path.to_owned(),
                    source,
                },
            );
            return;
        }
    };
    let hash = hash_bytes(&bytes);
    if shared.content_hash.swap(hash, Ordering::SeqCst) == hash {
        return;
    }
    let result = String::from_utf8(bytes)
        .map_err(|_| ConfigError::Yaml {
            source_name: path.display().to_string(),
            message: "file is not valid UTF-8".into(),
            line: None,
            column: None,
        })
        .and_then(|text| {
            let tree = build_tree(Some((&text, &path.display().to_string())), &options.env)?;
            serde_json::from_value::<ObservabilityConfig>(tree)
                .map_err(|e| ConfigError::Internal(format!("merged configuration: {e}")))
        })
        .and_then(|config| handle.store(config));
    match result {
        Ok(change) => {
            shared.applied.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut d) = shared.detail.lock() {
                d.1 = Some(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                        .unwrap_or(0),
                );
                d.2 = change.restart_required;
            }
        }
        Err(e) => {
            // `store` already counted its own validation rejections on the handle.
            if !matches!(e, ConfigError::Invalid { .. }) {
                handle.record_rejection(&e);
            }
            shared.rejected.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut d) = shared.detail.lock() {
                d.0 = Some(e.to_string());
            }
        }
    }
}

fn reject(handle: &ConfigHandle, shared: &Shared, e: &ConfigError) {
    handle.record_rejection(e);
    shared.rejected.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut d) = shared.detail.lock() {
        d.0 = Some(e.to_string());
    }
}
