//! The one seam between this crate and the YAML library: every use of `serde_yaml` is here,
//! so swapping it (its upstream is archived) touches one file.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ConfigError;
use crate::tree::closest;

/// Parses YAML text into a generic tree. An empty document is an empty map.
pub(crate) fn to_tree(text: &str, source_name: &str) -> Result<serde_json::Value, ConfigError> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_yaml::from_str::<serde_json::Value>(text).map_err(|e| yaml_error(&e, source_name))
}

/// Deserializes YAML text straight into a typed value, so unknown keys and type errors are
/// reported with the key path, line and column.
pub(crate) fn check_typed<T: DeserializeOwned>(
    text: &str,
    source_name: &str,
) -> Result<T, ConfigError> {
    serde_yaml::from_str::<T>(text).map_err(|e| yaml_error(&e, source_name))
}

/// Parses one scalar as YAML would (numbers, booleans, null, strings), for environment
/// variables.
pub(crate) fn scalar(text: &str) -> serde_json::Value {
    match serde_yaml::from_str::<serde_json::Value>(text) {
        Ok(
            v @ (serde_json::Value::Number(_)
            | serde_json::Value::Bool(_)
            | serde_json::Value::Null),
        ) if !text.trim().is_empty() => v,
        _ => serde_json::Value::String(text.to_owned()),
    }
}

/// Serializes a value as YAML.
pub(crate) fn to_string<T: Serialize>(value: &T) -> Result<String, ConfigError> {
    serde_yaml::to_string(value)
        .map_err(|e| ConfigError::Internal(format!("yaml serialization: {e}")))
}

fn yaml_error(e: &serde_yaml::Error, source_name: &str) -> ConfigError {
    let mut message = e.to_string();
    if let Some(hint) = unknown_field_hint(&message) {
        message.push_str(&hint);
    }
    let loc = e.location();
    ConfigError::Yaml {
        source_name: source_name.to_owned(),
        message,
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
    }
}

/// For "unknown field `x`, expected one of `a`, `b`" adds "; did you mean `a`?" when close.
fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.split("expected ").nth(1)?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    closest(field, candidates.into_iter()).map(|c| format!("; did you mean `{c}`?"))
}
