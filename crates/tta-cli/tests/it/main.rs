//! Integration tests: they run the real `tta` binary.

mod config;
mod demo;
mod estimate;
mod health;

use std::path::Path;
use std::process::{Command, Output};

/// Runs `tta` with these arguments in `dir`, with an empty environment (so no `TTA_*`,
/// `OTEL_*` or `ENVIRONMENT` variable of the machine changes the result).
pub(crate) fn tta(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tta"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .expect("the tta binary runs")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
