//! `cargo xtask codegen`: regenerates files derived from the code (the configuration
//! reference). A test in `tta-config` fails when `docs/configuration.md` is stale.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "run",
            "--quiet",
            "-p",
            "tta-config",
            "--example",
            "config_reference",
        ])
        .output()
        .context("running the config_reference example")?;
    if !out.status.success() {
        bail!(
            "config_reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let path = root.join("docs").join("configuration.md");
    std::fs::write(&path, &out.stdout).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
