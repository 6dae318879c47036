//! The JSON-lines exporter writing a file.

use tta_core::{Span, SpanId, TraceId};
use tta_export::{Exporter, JsonLinesExporter};

#[test]
fn concurrent_batches_never_interleave_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spans.jsonl");
    let exporter = std::sync::Arc::new(JsonLinesExporter::to_file(&path).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let e = std::sync::Arc::clone(&exporter);
            std::thread::spawn(move || {
                for b in 0..25u64 {
                    let batch: Vec<Span> = (0..8u64)
                        .map(|i| Span {
                            trace_id: TraceId::from_u128(u128::from(t * 1000 + b + 1)),
                            span_id: SpanId::from_u64(t * 10_000 + b * 10 + i + 1),
                            name: "x".repeat(200).into(),
                            ..Default::default()
                        })
                        .collect();
                    e.export(&batch).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    exporter.flush().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let spans: Vec<Span> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(spans.len(), 4 * 25 * 8);
    let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.span_id).collect();
    assert_eq!(ids.len(), spans.len());
}
