//! Crash recovery: torn tails, corrupt blocks, half-written segments.

use std::fs;
use std::path::Path;

use tta_core::Span;
use tta_storage::corpus::Corpus;
use tta_storage::{SegmentKind, StorageConfig, TraceQuery, TraceStore};

use crate::sorted;

/// Writes three batches, one block each (flush after each), into one segment; returns the
/// batches. Blocks are big enough that a batch never splits.
fn three_blocks(dir: &Path) -> Vec<Vec<Span>> {
    let mut corpus = Corpus::new(5);
    let batches: Vec<Vec<Span>> = (0..3).map(|_| corpus.spans(15)).collect();
    let store = TraceStore::open(dir, StorageConfig::default()).unwrap();
    for b in &batches {
        store.append(b).unwrap();
        store.flush().unwrap();
    }
    store.close().unwrap();
    batches
}

fn only_segment(store: &TraceStore) -> tta_storage::SegmentInfo {
    let segs = store.segments();
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs.into_iter().next().unwrap()
}

#[test]
fn truncating_the_last_block_at_every_offset_keeps_every_earlier_block() {
    let dir = tempfile::tempdir().unwrap();
    let batches = three_blocks(dir.path());
    let seg = only_segment(&TraceStore::open_read_only(dir.path()).unwrap());
    assert_eq!(seg.blocks.len(), 3);
    let last = seg.blocks[2].clone();
    let pristine = fs::read(&seg.path).unwrap();
    let want = sorted(batches[..2].concat());
    let want_all = sorted(batches.concat());
    // From "the last block not started" to "the last block complete but no footer".
    for cut in 0..=last.len {
        let len = (last.offset + cut) as usize;
        fs::write(&seg.path, &pristine[..len]).unwrap();
        let store = TraceStore::open(dir.path(), StorageConfig::default())
            .unwrap_or_else(|e| panic!("open after cut at {len}: {e}"));
        let report = store.open_report().clone();
        assert_eq!(report.recovered_segments, 1);
        let got = store.query(TraceQuery::default()).unwrap();
        if cut == last.len {
            assert_eq!(got, want_all, "complete last block must be kept");
            assert!(report.torn_tails.is_empty());
        } else {
            assert_eq!(got, want, "cut at {len}");
            if cut > 0 {
                let tail = &report.torn_tails[0];
                assert_eq!(
                    (tail.offset, tail.bytes, tail.truncated),
                    (last.offset, cut, true)
                );
            }
        }
        assert!(report.corrupt_blocks.is_empty(), "cut at {len}: {report:?}");
        store.close().unwrap();
        // The repaired file is sealed and opens cleanly.
        let again = TraceStore::open_read_only(dir.path()).unwrap();
        assert!(again.open_report().torn_tails.is_empty());
        assert!(only_segment(&again).sealed);
    }
}

#[test]
fn a_flipped_byte_in_a_middle_block_is_reported_and_the_rest_read() {
    let dir = tempfile::tempdir().unwrap();
    let batches = three_blocks(dir.path());
    let seg = only_segment(&TraceStore::open_read_only(dir.path()).unwrap());
    let mid = seg.blocks[1].clone();
    let mut bytes = fs::read(&seg.path).unwrap();
    let at = (mid.offset + mid.len / 2) as usize;
    bytes[at] ^= 0x5a;
    fs::write(&seg.path, &bytes).unwrap();

    let store = TraceStore::open(dir.path(), StorageConfig::default()).unwrap();
    let got = store.query(TraceQuery::default()).unwrap();
    assert_eq!(
        got,
        sorted([batches[0].clone(), batches[2].clone()].concat())
    );
    let corrupt = store.stats().corrupt_blocks;
    assert_eq!(corrupt.len(), 1, "{corrupt:?}");
    assert_eq!(
        (corrupt[0].path.as_path(), corrupt[0].offset),
        (seg.path.as_path(), mid.offset)
    );
    let msg = corrupt[0].to_string();
    assert!(
        msg.contains(&seg.path.display().to_string())
            && msg.contains(&format!("offset {}", mid.offset)),
        "{msg}"
    );
    // A trace of the damaged block is gone, one of another block is whole.
    assert_eq!(store.get_trace(&batches[1][0].trace_id).unwrap(), None);
    let t = batches[2][0].trace_id;
    let want = sorted(
        batches[2]
            .iter()
            .filter(|s| s.trace_id == t)
            .cloned()
            .collect(),
    );
    assert_eq!(store.get_trace(&t).unwrap(), Some(want));
    // New writes still work.
    let more = Corpus::new(99).spans(10);
    store.append(&more).unwrap();
    store.flush().unwrap();
    assert_eq!(
        store.get_trace(&more[0].trace_id).unwrap().map(|v| v.len()),
        Some(
            more.iter()
                .filter(|s| s.trace_id == more[0].trace_id)
                .count()
        )
    );
    assert_eq!(store.verify().unwrap().len(), 0, "already reported once");
}

#[test]
fn a_damaged_header_in_an_unsealed_segment_is_skipped_by_resync() {
    let dir = tempfile::tempdir().unwrap();
    let batches = three_blocks(dir.path());
    let seg = only_segment(&TraceStore::open_read_only(dir.path()).unwrap());
    let end = seg.blocks[2].offset + seg.blocks[2].len;
    let mut bytes = fs::read(&seg.path).unwrap();
    bytes.truncate(end as usize); // no footer: as if the writer crashed
    bytes[seg.blocks[1].offset as usize + 9] ^= 0xff; // the block length field
    fs::write(&seg.path, &bytes).unwrap();

    let store = TraceStore::open(dir.path(), StorageConfig::default()).unwrap();
    let report = store.open_report();
    assert_eq!(report.corrupt_blocks.len(), 1, "{report:?}");
    assert_eq!(report.corrupt_blocks[0].offset, seg.blocks[1].offset);
    assert!(report.torn_tails.is_empty());
    let got = store.query(TraceQuery::default()).unwrap();
    assert_eq!(
        got,
        sorted([batches[0].clone(), batches[2].clone()].concat())
    );
    assert_eq!(store.stats().corrupt_blocks.len(), 1);
}

#[test]
fn a_half_written_segment_never_hides_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        segment_duration_seconds: 60,
        ..StorageConfig::default()
    };
    let mut corpus = Corpus::new(8);
    let early = corpus.spans(50);
    let late: Vec<Span> = corpus
        .spans(50)
        .into_iter()
        .map(|mut s| {
            s.start_unix_nanos += 3_600_000_000_000;
            s.end_unix_nanos += 3_600_000_000_000;
            s
        })
        .collect();
    let store = TraceStore::open(dir.path(), config.clone()).unwrap();
    store.append(&early).unwrap();
    store.flush().unwrap();
    store.append(&late).unwrap();
    store.flush().unwrap();
    let segs = store.segments();
    store.close().unwrap();
    let spans_segs: Vec<_> = segs
        .iter()
        .filter(|s| s.kind == SegmentKind::Spans)
        .collect();
    assert!(spans_segs.len() >= 2, "{segs:?}");
    let newest = spans_segs.last().unwrap();
    let pristine = fs::read(&newest.path).unwrap();
    for keep in [10u64, 40, newest.blocks[0].offset + 70] {
        fs::write(&newest.path, &pristine[..keep as usize]).unwrap();
        let store = TraceStore::open(dir.path(), config.clone()).unwrap();
        if keep < 32 {
            assert_eq!(store.open_report().removed_empty, vec![newest.path.clone()]);
        }
        let got = store
            .query(TraceQuery::default().time_range(0, newest.window_start_secs * 1_000_000_000))
            .unwrap();
        assert_eq!(got, sorted(early.clone()), "keep {keep}");
        store.close().unwrap();
    }
}
