//! `cargo xtask ci`: the same steps as `.ci/run`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let steps: &[&[&str]] = &[
        &["fmt", "--all", "--", "--check"],
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
        &["test", "--workspace", "--all-features"],
    ];
    for step in steps {
        println!("==> cargo {}", step.join(" "));
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(*step)
            .current_dir(root)
            .status()
            .with_context(|| format!("running cargo {}", step.join(" ")))?;
        if !status.success() {
            bail!("cargo {} failed", step.join(" "));
        }
    }
    Ok(())
}
