//! `cargo xtask tidy`: workspace rules that a reviewer would otherwise check by hand.
//!
//! Also run by `cargo test` (see the tests below), so a broken rule fails CI.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The dependency DAG of DESIGN.md §1: for each library crate, the tta crates its
/// `[dependencies]` may name. Anything not listed here is a new crate and must be added.
const ALLOWED: &[(&str, &[&str])] = &[
    ("tta-core", &[]),
    ("tta-sampling", &["tta-core"]),
    ("tta-cardinality", &[]),
    ("tta-metrics", &["tta-core", "tta-cardinality"]),
    ("tta-storage", &["tta-core"]),
    ("tta-export", &["tta-core", "tta-sampling", "tta-storage"]),
    ("tta-health", &[]),
    (
        "tta-config",
        &[
            "tta-core",
            "tta-sampling",
            "tta-cardinality",
            "tta-metrics",
            "tta-storage",
            "tta-export",
            "tta-health",
        ],
    ),
    (
        "tta-observability",
        &[
            "tta-core",
            "tta-sampling",
            "tta-cardinality",
            "tta-metrics",
            "tta-storage",
            "tta-export",
            "tta-health",
            "tta-config",
        ],
    ),
    ("tta-cli", &["tta-observability"]),
    // Test support, used only as a dev-dependency.
    ("tta-testkit", &[]),
];

/// Packages (outside `crates/`) allowed to depend on the facade.
const FACADE_USERS: &[&str] = &["tta-cli", "tta-benches"];

/// Checks every rule and returns the problems found (empty when tidy).
pub(crate) fn check(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let crates_dir = root.join("crates");
    let mut crate_dirs: Vec<PathBuf> = fs::read_dir(&crates_dir)
        .with_context(|| format!("reading {}", crates_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    crate_dirs.sort();

    for dir in &crate_dirs {
        check_crate(dir, &mut problems)?;
    }
    for extra in ["benches", "xtask"] {
        let manifest = root.join(extra).join("Cargo.toml");
        if manifest.is_file() {
            let (name, deps) = manifest_deps(&manifest)?;
            if deps.iter().any(|d| d == "tta-observability")
                && !FACADE_USERS.contains(&name.as_str())
            {
                problems.push(format!(
                    "{name}: must not depend on the facade tta-observability"
                ));
            }
        }
    }
    let ignore_attr = concat!("#[", "ignore");
    for dir in ["crates", "benches", "xtask"] {
        for file in rust_files(&root.join(dir)) {
            let text = fs::read_to_string(&file).unwrap_or_default();
            for (i, line) in text.lines().enumerate() {
                if line.trim_start().starts_with(ignore_attr) {
                    problems.push(format!("{}:{}: ignored test", rel(root, &file), i + 1));
                }
            }
        }
    }
    Ok(problems)
}

fn check_crate(dir: &Path, problems: &mut Vec<String>) -> anyhow::Result<()> {
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)?;
    let doc: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", manifest.display()))?;
    let name = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("?")
        .to_owned();
    for file in ["README.md", "CHANGELOG.md"] {
        if !dir.join(file).is_file() {
            problems.push(format!("{name}: missing {file}"));
        }
    }
    let lints_ok = doc
        .get("lints")
        .and_then(|l| l.get("workspace"))
        .and_then(|w| w.as_bool())
        == Some(true);
    if !lints_ok {
        problems.push(format!(
            "{name}: Cargo.toml lacks `[lints] workspace = true`"
        ));
    }
    let root_src = ["src/lib.rs", "src/main.rs"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file());
    match root_src {
        None => problems.push(format!("{name}: no src/lib.rs or src/main.rs")),
        Some(src) => {
            let text = fs::read_to_string(&src)?;
            if !text.trim_start().starts_with("//!") {
                problems.push(format!(
                    "{name}: crate docs (//!) missing at the top of {}",
                    src.display()
                ));
            }
        }
    }
    let (_, deps) = manifest_deps(&manifest)?;
    match ALLOWED.iter().find(|(n, _)| *n == name) {
        None => problems.push(format!(
            "{name}: not in the dependency DAG of xtask tidy; add it"
        )),
        Some((_, allowed)) => {
            for dep in deps.iter().filter(|d| d.starts_with("tta-")) {
                if !allowed.contains(&dep.as_str()) {
                    problems.push(format!(
                        "{name}: depends on {dep}, which the dependency DAG does not allow"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The package name and the names in `[dependencies]` of a manifest.
fn manifest_deps(manifest: &Path) -> anyhow::Result<(String, Vec<String>)> {
    let text = fs::read_to_string(manifest)?;
    let doc: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", manifest.display()))?;
    let name = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .unwrap_or("?")
        .to_owned();
    let deps = doc
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    Ok((name, deps))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_is_tidy() {
        let problems = check(&crate::workspace_root()).unwrap();
        assert!(
            problems.is_empty(),
            "tidy problems:\n{}",
            problems.join("\n")
        );
    }

    fn write(root: &Path, path: &str, text: &str) {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn good_crate(root: &Path, name: &str, deps: &str) {
        write(
            root,
            &format!("crates/{name}/Cargo.toml"),
            &format!(
                "[package]\nname = \"{name}\"\n\n[dependencies]\n{deps}\n[lints]\nworkspace = true\n"
            ),
        );
        write(root, &format!("crates/{name}/README.md"), "# x\n");
        write(root, &format!("crates/{name}/CHANGELOG.md"), "# x\n");
        write(root, &format!("crates/{name}/src/lib.rs"), "//! Docs.\n");
    }

    #[test]
    fn tidy_reports_each_broken_rule() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        good_crate(root, "tta-core", "");
        good_crate(root, "tta-sampling", "tta-core = \"0.1\"\n");
        assert_eq!(check(root).unwrap(), Vec::<String>::new());

        // The DAG: tta-sampling may depend on tta-core only.
        good_crate(
            root,
            "tta-sampling",
            "tta-core = \"0.1\"\ntta-storage = \"0.1\"\n",
        );
        // A missing CHANGELOG and missing crate docs.
        fs::remove_file(root.join("crates/tta-core/CHANGELOG.md")).unwrap();
        write(root, "crates/tta-core/src/lib.rs", "pub fn f() {}\n");
        // Nothing but the CLI and benches may depend on the facade.
        write(
            root,
            "xtask/Cargo.toml",
            "[package]\nname = \"xtask\"\n[dependencies]\ntta-observability = \"0.1\"\n",
        );
        // An ignored test.
        write(
            root,
            "crates/tta-core/src/t.rs",
            &format!("{}]\nfn t() {{}}\n", concat!("#[", "ignore")),
        );
        // Lints not inherited.
        write(
            root,
            "crates/tta-health/Cargo.toml",
            "[package]\nname = \"tta-health\"\n",
        );
        write(root, "crates/tta-health/README.md", "x");
        write(root, "crates/tta-health/CHANGELOG.md", "x");
        write(root, "crates/tta-health/src/lib.rs", "//! x\n");

        let problems = check(root).unwrap().join("\n");
        for expected in [
            "tta-sampling: depends on tta-storage",
            "tta-core: missing CHANGELOG.md",
            "tta-core: crate docs (//!) missing",
            "xtask: must not depend on the facade",
            "crates/tta-core/src/t.rs:1: ignored test",
            "tta-health: Cargo.toml lacks `[lints] workspace = true`",
        ] {
            assert!(
                problems.contains(expected),
                "expected {expected:?} in:\n{problems}"
            );
        }
    }
}
