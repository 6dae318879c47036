//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: what `.ci/run` does (fmt, clippy, tests, tidy).
//! - `bench [--quick] [--no-run]`: runs the criterion benches and prints one table.
//! - `codegen`: regenerates `docs/configuration.md` from the code.
//! - `tidy`: checks the workspace rules (crate docs and files, lints, dependency DAG, no ignored tests).

// The xtask is a command-line tool: printing is its job.
#![allow(clippy::print_stdout)]

mod bench;
mod ci;
mod codegen;
mod tidy;

use std::path::PathBuf;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("ci") => ci::run(&root),
        Some("codegen") => codegen::run(&root),
        Some("bench") => bench::run(&root, &args[1..]),
        Some("tidy") => {
            let problems = tidy::check(&root)?;
            if problems.is_empty() {
                println!("tidy: ok");
                Ok(())
            } else {
                for p in &problems {
                    println!("tidy: {p}");
                }
                anyhow::bail!("tidy found {} problem(s)", problems.len())
            }
        }
        _ => {
            println!("usage: cargo xtask <ci | bench [--quick] [--no-run] | tidy | codegen>");
            std::process::exit(2);
        }
    }
}
