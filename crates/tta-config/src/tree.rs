//! Operations on configuration trees (`serde_json::Value`): merging layers, setting a key by
//! path, and suggesting the closest real key for a misspelt one.

use serde_json::Value;

/// Merges `over` into `base`: objects merge key by key, anything else replaces.
pub(crate) fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Sets the key at `path` (which must already exist in `tree`, since every key of the
/// schema is present in a serialized config). Returns the closest existing key on a miss.
pub(crate) fn set_path(tree: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let mut node = tree;
    for (i, key) in path.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(format!("{} is not a section", path[..i].join(".")));
        };
        if !map.contains_key(key) {
            let here = path[..i].join(".");
            let hint = closest(key, map.keys().map(String::as_str))
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            let section = if here.is_empty() {
                "the top level".into()
            } else {
                format!("`{here}`")
            };
            return Err(format!("no key `{key}` in {section}{hint}"));
        }
        let Some(next) = map.get_mut(key) else {
            return Err(format!("no key `{key}`"));
        };
        if i + 1 == path.len() {
            *next = value;
            return Ok(());
        }
        node = next;
    }
    Err("empty key path".into())
}

/// The candidate closest to `word` by edit distance, when close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.len() / 3).max(2);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Every leaf key path of a tree, in order, with its value.
pub(crate) fn leaves(tree: &Value) -> Vec<(String, &Value)> {
    fn walk<'a>(prefix: &str, v: &'a Value, out: &mut Vec<(String, &'a Value)>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, child, out);
                }
            }
            _ => out.push((prefix.to_owned(), v)),
        }
    }
    let mut out = Vec::new();
    walk("", tree, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_is_deep() {
        let mut base = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge(&mut base, json!({"a": {"c": 20}, "d": null}));
        assert_eq!(base, json!({"a": {"b": 1, "c": 20}, "d": null}));
    }

    #[test]
    fn set_path_suggests() {
        let mut t = json!({"tracing": {"sampling": {"default_rate": 0.05}}});
        set_path(
            &mut t,
            &["tracing".into(), "sampling".into(), "default_rate".into()],
            json!(0.01),
        )
        .unwrap();
        assert_eq!(t["tracing"]["sampling"]["default_rate"], json!(0.01));
        let err = set_path(&mut t, &["tracing".into(), "samplng".into()], json!(1)).unwrap_err();
        assert_eq!(
            err,
            "no key `samplng` in `tracing`; did you mean `sampling`?"
        );
    }

    #[test]
    fn closest_only_when_close() {
        let keys = ["default_rate", "slow_threshold_ms"];
        assert_eq!(
            closest("default_rte", keys.iter().copied()),
            Some("default_rate")
        );
        assert_eq!(closest("completely_else", keys.iter().copied()), None);
    }
}
