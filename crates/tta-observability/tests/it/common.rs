use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tta_observability::core::Span;
use tta_observability::export::{ExportError, Exporter};

/// Polls `cond` until it holds or a generous deadline passes (no fixed sleeps).
pub(crate) fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// An exporter the test can switch to failing, as if the backend went away.
#[derive(Clone, Default)]
pub(crate) struct Switchable {
    pub(crate) failing: Arc<AtomicBool>,
}

impl Exporter for Switchable {
    fn name(&self) -> &str {
        "switchable"
    }

    fn export(&self, _batch: &[Span]) -> Result<(), ExportError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(ExportError::Other {
                exporter: "switchable".into(),
                message: "backend down".into(),
                retryable: false,
                retry_after: None,
            })
        } else {
            Ok(())
        }
    }
}
