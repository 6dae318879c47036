//! The pipeline exporting into the embedded trace store.

use std::sync::Arc;
use std::time::Duration;

use tta_export::{ExportConfig, StoreExporter};
use tta_storage::{StorageConfig, TraceStore};

use crate::pipeline::{start, traces};

#[test]
fn kept_traces_land_in_the_store_and_are_durable_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(TraceStore::open(dir.path(), StorageConfig::default()).unwrap());
    let p = start(
        ExportConfig::default(),
        1.0,
        vec![Box::new(StoreExporter::new(Arc::clone(&store)))],
    );
    let spans = traces(50, 4);
    for s in &spans {
        assert!(p.submit(s.clone()));
    }
    p.flush(Duration::from_secs(30)).unwrap();
    for id in spans
        .iter()
        .map(|s| s.trace_id)
        .collect::<std::collections::HashSet<_>>()
    {
        assert_eq!(store.get_trace(&id).unwrap().map(|t| t.len()), Some(4));
    }
    let report = p.shutdown(Duration::from_secs(10));
    assert!(report.completed);
    assert_eq!(report.stats.exporters[0].name, "store");
    assert_eq!(report.stats.exporters[0].exported_spans, 200);
}
