//! The OpenTelemetry specification's probability -> `th` table, reproduced exactly.

use std::path::PathBuf;

use tta_sampling::Threshold;

fn vectors() -> Vec<(f64, [String; 3])> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/otel-threshold-vectors.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 4, "bad row {l:?}");
            let p: f64 = cols[0].parse().expect("probability column");
            (p, [cols[1].into(), cols[2].into(), cols[3].into()])
        })
        .collect()
}

#[test]
fn reproduces_the_specification_table_at_precisions_3_4_5() {
    let rows = vectors();
    assert_eq!(rows.len(), 13);
    for (p, expected) in &rows {
        for (digits, th) in [3, 4, 5].into_iter().zip(expected) {
            let t = Threshold::from_probability_with_precision(*p, digits).unwrap();
            assert_eq!(&t.to_string(), th, "p = {p}, precision {digits}");
            assert_eq!(Threshold::parse(th).unwrap(), t);
            // The effective probability is close to the requested one.
            let rel = (t.probability() - p).abs() / p;
            assert!(rel < 1e-2, "p = {p}: {rel}");
        }
        // Default precision is 4.
        assert_eq!(
            Threshold::from_probability(*p).unwrap().to_string(),
            expected[1]
        );
    }
}

#[test]
fn adjusted_counts_match_the_table() {
    // Spot values from the specification's "exact adjusted count" column.
    let cases = [
        (0.1, 4, 9.99938968568813),
        (0.01, 5, 100.00009536752259),
        (0.3333333333333333, 3, 3.0007326007326007),
    ];
    for (p, digits, count) in cases {
        let t = Threshold::from_probability_with_precision(p, digits).unwrap();
        assert!(
            (t.adjusted_count() - count).abs() < 1e-9,
            "{p}: {}",
            t.adjusted_count()
        );
    }
}
