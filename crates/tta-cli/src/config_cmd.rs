//! `tta config show` and `tta config check`.

use std::io::Write;
use std::path::{Path, PathBuf};

use tta_observability::ObservabilityConfig;
use tta_observability::config::{ConfigError, EnvSource};

use crate::{CliError, Outcome};

/// Output format of `tta config show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// YAML, loadable by `config check` and `--config`.
    #[default]
    Yaml,
    /// Pretty-printed JSON (the guide's `config.to_dict()`).
    Json,
}

/// Options of `tta config show`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShowOptions {
    /// Preset to start from (`development`, `staging`, `production`); default: the
    /// `ENVIRONMENT` variable, else production.
    pub env: Option<String>,
    /// A YAML file layered over the preset.
    pub file: Option<PathBuf>,
    /// Output format.
    pub format: Format,
}

/// Prints the effective configuration: preset, then the optional file, then `TTA_*` and
/// `OTEL_*` variables (`--env` takes the place of `ENVIRONMENT`).
pub fn show(options: &ShowOptions, out: &mut dyn Write) -> Result<Outcome, CliError> {
    const COMMAND: &str = "config show";
    let config_error = |source| CliError::Config {
        command: COMMAND,
        source,
    };
    let mut vars: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    if let Some(env) = &options.env {
        // Fail on a bad name even when a file names its own environment.
        let _ = ObservabilityConfig::from_environment(env).map_err(config_error)?;
        vars.retain(|(k, _)| k != "ENVIRONMENT");
        vars.push(("ENVIRONMENT".into(), env.clone()));
    }
    let config = ObservabilityConfig::load(options.file.as_deref(), &EnvSource::from_pairs(vars))
        .map_err(config_error)?;
    let text = match options.format {
        Format::Yaml => config.to_yaml().map_err(config_error)?,
        Format::Json => {
            let mut s =
                serde_json::to_string_pretty(&config.to_dict()).map_err(|e| CliError::Output {
                    command: COMMAND,
                    source: e.into(),
                })?;
            s.push('\n');
            s
        }
    };
    out.write_all(text.as_bytes())
        .map_err(CliError::output(COMMAND))?;
    Ok(Outcome::Ok)
}

/// Checks a YAML file (schema, unknown keys, every validation rule; environment variables
/// are not consulted). Valid: one line on `out`, [`Outcome::Ok`]. Invalid: one line per
/// problem on `err` (`tta: config check: <file>: <key path> <what>[ at line L column C]`),
/// [`Outcome::Failed`]. An unreadable file is an error.
pub fn check(file: &Path, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, CliError> {
    const COMMAND: &str = "config check";
    let name = file.display().to_string();
    match ObservabilityConfig::from_yaml_file(file) {
        Ok(config) => {
            writeln!(
                out,
                "{name}: ok (environment {}, service {}, sampling rate {}, {} adaptive)",
                config.environment,
                config.service_name,
                config.tracing.sampling.default_rate,
                if config.tracing.sampling.adaptive_enabled {
                    "with"
                } else {
                    "without"
                }
            )
            .map_err(CliError::output(COMMAND))?;
            Ok(Outcome::Ok)
        }
        Err(ConfigError::Io { path, source }) => Err(CliError::Io {
            command: COMMAND,
            path,
            source,
        }),
        Err(ConfigError::Invalid { errors }) => {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for e in &errors {
                let at = locate_key(&text, &e.path)
                    .map(|(l, c)| format!(" at line {l} column {c}"))
                    .unwrap_or_default();
                writeln!(err, "tta: {COMMAND}: {name}: {}{at}", e)
                    .map_err(CliError::output(COMMAND))?;
            }
            Ok(Outcome::Failed)
        }
        Err(e) => {
            // Parse errors already name the file, the key path, the line and the column.
            let line = e.to_string().replace('\n', " ");
            writeln!(err, "tta: {COMMAND}: {line}").map_err(CliError::output(COMMAND))?;
            Ok(Outcome::Failed)
        }
    }
}

/// Best-effort position (1-based line and column) of a dotted key path in a block-style YAML
/// document, for validation errors, which carry the path but not the position.
pub fn locate_key(text: &str, dotted: &str) -> Option<(usize, usize)> {
    let parts: Vec<&str> = dotted.split('.').collect();
    // Indentation of each matched level; the next part must be deeper than the last match.
    let mut matched = 0;
    let mut indents: Vec<usize> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') || content.starts_with("---") {
            continue;
        }
        let indent = line.len() - content.len();
        // Leaving a matched mapping: a line at or above its indentation ends it.
        while let Some(&last) = indents.last() {
            if indent <= last {
                indents.pop();
                matched -= 1;
            } else {
                break;
            }
        }
        let Some((key, _)) = content.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
        if matched < parts.len() && key == parts[matched] {
            matched += 1;
            indents.push(indent);
            if matched == parts.len() {
                return Some((n + 1, indent + 1));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locate_key;

    #[test]
    fn locates_nested_keys() {
        let text = "environment: production\ntracing:\n  batch_size: 10\n  sampling:\n    # c\n    default_rate: 3\nmetrics:\n  default_rate: 1\n";
        assert_eq!(
            locate_key(text, "tracing.sampling.default_rate"),
            Some((6, 5))
        );
        assert_eq!(locate_key(text, "tracing.batch_size"), Some((3, 3)));
        assert_eq!(locate_key(text, "metrics.default_rate"), Some((8, 3)));
        assert_eq!(locate_key(text, "storage.trace_ttl_days"), None);
        // A key of the same name under another parent is not a match.
        assert_eq!(locate_key("a:\n  x: 1\nb:\n  y: 2\n", "a.y"), None);
    }
}
