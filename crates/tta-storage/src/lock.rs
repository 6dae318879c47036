//! The writer lock: a `LOCK` file created exclusively, holding the writer's process id.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Result, StorageError};

/// Name of the lock file inside a store directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Store directories (canonical paths) locked by this process, to tell a stale lock left by an
/// earlier process that happened to have our pid from a live lock held by another handle.
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Holds the lock until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    path: PathBuf,
    key: PathBuf,
}

fn held() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether a process with this id is running. Only Linux can tell (through `/proc`); other
/// platforms assume it is, so a stale lock there must be removed by hand.
fn pid_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

impl DirLock {
    /// Takes the lock of `dir`, or fails with [`StorageError::Locked`] naming the holder.
    pub(crate) fn acquire(dir: &Path) -> Result<Self> {
        let key = dir
            .canonicalize()
            .map_err(|e| StorageError::io("resolve", dir, e))?;
        let path = dir.join(LOCK_FILE);
        let me = std::process::id();
        for _ in 0..3 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let mut held = held();
                    f.write_all(format!("{me}\n").as_bytes())
                        .and_then(|()| f.sync_all())
                        .map_err(|e| StorageError::io("write lock file", &path, e))?;
                    held.push(key.clone());
                    return Ok(Self { path, key });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let text = fs::read_to_string(&path).unwrap_or_default();
                    let pid = text.trim().parse::<u32>().ok();
                    let stale = match pid {
                        // Another handle of this process, or a dead process that had our pid.
                        Some(p) if p == me => !held().contains(&key),
                        Some(p) => !pid_alive(p),
                        // Empty: a writer between creating and filling the file.
                        None => false,
                    };
                    if !stale {
                        return Err(StorageError::Locked {
                            dir: dir.to_path_buf(),
                            lock: path,
                            pid: pid.unwrap_or(0),
                        });
                    }
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StorageError::io("remove stale lock file", &path, e)),
                    }
                }
                Err(e) => return Err(StorageError::io("create lock file", &path, e)),
            }
        }
        Err(StorageError::Locked {
            dir: dir.to_path_buf(),
            lock: path,
            pid: 0,
        })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut held = held();
        let _ = fs::remove_file(&self.path);
        held.retain(|k| k != &self.key);
    }
}
