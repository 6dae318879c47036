use crate::{stderr, stdout, tta};

/// Replaces the measured byte figures (they follow the storage codec, not this command) with
/// placeholders, after checking each is a size with a unit.
fn redact_sizes(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let redacted = if line.contains(" B/span on disk, ") {
            let spans_per_trace = line.split(',').next().unwrap_or_default();
            format!("{spans_per_trace}, <bytes> B/span on disk, <bytes> B/span encoded (<ratio>)")
        } else if line.starts_with("| ") && !line.starts_with("| Volume") {
            let cells: Vec<&str> = line.split('|').collect();
            // | volume | daily | kept | spans | uncompressed | compressed | retained |
            assert_eq!(cells.len(), 9, "{line}");
            for size in &cells[5..8] {
                let unit = size.trim().rsplit(' ').next().unwrap();
                assert!(["B", "kB", "MB", "GB", "TB"].contains(&unit), "{line}");
            }
            format!(
                "|{}|{}|{}|{}| <size> | <size> | <size> |",
                cells[1], cells[2], cells[3], cells[4]
            )
        } else {
            line.to_owned()
        };
        out.push_str(&redacted);
        out.push('\n');
    }
    out
}

#[test]
fn estimate_prints_the_guide_table_from_a_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let o = tta(dir.path(), &["estimate", "--requests-per-day", "2500000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    // The measurement line: bytes per span on disk below the encoded size.
    let figures: Vec<f64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(figures.len() >= 3 && figures[1] < figures[2], "{text}");
    insta::assert_snapshot!("estimate_rate_5_level_6", redact_sizes(&text));
}

#[test]
fn estimate_scales_with_the_rate_and_rejects_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let row = |rate: &str| -> String {
        let o = tta(
            dir.path(),
            &["estimate", "--requests-per-day", "1000", "--rate", rate],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o)
            .lines()
            .find(|l| l.starts_with("| Custom |"))
            .expect("a Custom row")
            .to_owned()
    };
    assert!(
        row("0.1").starts_with("| Custom | 1,000 | 100 |"),
        "{}",
        row("0.1")
    );
    assert!(
        row("1").starts_with("| Custom | 1,000 | 1,000 |"),
        "{}",
        row("1")
    );
    let o = tta(
        dir.path(),
        &["estimate", "--requests-per-day", "1", "--level", "40"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with("tta: estimate: --level: "),
        "{}",
        stderr(&o)
    );
}
