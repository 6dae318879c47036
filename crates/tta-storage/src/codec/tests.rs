use proptest::prelude::*;

use super::*;
use crate::corpus::Corpus;

#[test]
fn varints_and_zigzag_round_trip_at_the_edges() {
    for v in [
        0,
        1,
        127,
        128,
        300,
        u64::from(u32::MAX),
        u64::MAX - 1,
        u64::MAX,
    ] {
        let mut b = Vec::new();
        put_varint(&mut b, v);
        assert!(b.len() <= 10);
        let mut r = Reader::new(&b);
        assert_eq!(r.varint(), Ok(v));
        assert_eq!(r.remaining(), 0);
    }
    for v in [0i64, 1, -1, i64::MIN, i64::MAX] {
        assert_eq!(unzigzag(zigzag(v)), v);
    }
    assert_eq!(
        Reader::new(&[0x80, 0x80]).varint(),
        Err(DecodeError("truncated varint"))
    );
    assert!(Reader::new(&[0xff; 11]).varint().is_err());
}

#[test]
fn bloom_has_no_false_negatives_and_few_false_positives() {
    let ids: Vec<TraceId> = (1..=2_000u128)
        .map(|i| TraceId::from_u128(i * 7_919))
        .collect();
    let filter = bloom_build(&ids);
    assert!(ids.iter().all(|id| bloom_may_contain(&filter, id)));
    let fp = (1..=20_000u128)
        .map(|i| TraceId::from_u128(i * 7_919 + 3))
        .filter(|id| bloom_may_contain(&filter, id))
        .count();
    // 16 bits per id with k = 7: about 0.07% expected (14 of 20000).
    assert!(fp < 60, "false positive rate too high: {fp} of 20000");
    assert!(!bloom_may_contain(&[], &ids[0]));
}

/// Filters are sized by the writer; a reader takes the size from the stored bytes, so a
/// filter written with the earlier 10 bits per trace still finds every id.
#[test]
fn bloom_filters_of_any_size_are_read() {
    let ids: Vec<TraceId> = (1..=500u128)
        .map(|i| TraceId::from_u128(i * 104_729))
        .collect();
    let len = (ids.len() * 10).div_ceil(8);
    let mut old = vec![0u8; len];
    let bits = len as u64 * 8;
    for id in &ids {
        for p in bloom_positions(id, bits) {
            old[(p / 8) as usize] |= 1 << (p % 8);
        }
    }
    assert!(ids.iter().all(|id| bloom_may_contain(&old, id)));
    let new = bloom_build(&ids);
    assert_eq!(new.len(), ids.len() * 2);
    assert!(ids.iter().all(|id| bloom_may_contain(&new, id)));
}

#[test]
fn corpus_spans_round_trip_grouped_by_trace() {
    let spans = Corpus::new(5).spans(3_000);
    let enc = encode_spans(&spans);
    let mut out = Vec::new();
    let n = decode_spans(&enc.payload, &|_| true, &mut |_| true, &mut out).unwrap();
    assert_eq!(n, spans.len());
    let key = |s: &Span| (s.trace_id, s.start_unix_nanos, s.span_id);
    let mut want = spans.clone();
    want.sort_by_key(key);
    out.sort_by_key(key);
    assert_eq!(out, want);
    assert_eq!(
        enc.meta.min_start,
        spans.iter().map(|s| s.start_unix_nanos).min().unwrap()
    );
    // The encoding is compact before compression: well under the JSON size.
    let json = serde_json::to_vec(&spans).unwrap().len();
    assert!(
        enc.payload.len() * 5 < json,
        "{} vs json {json}",
        enc.payload.len()
    );
}

#[test]
fn skipping_traces_yields_the_same_spans_as_filtering_them() {
    let spans = Corpus::new(12).spans(2_000);
    let enc = encode_spans(&spans);
    for want in spans.iter().step_by(101).map(|s| s.trace_id) {
        let mut skipped = Vec::new();
        decode_spans(&enc.payload, &|t| *t == want, &mut |_| true, &mut skipped).unwrap();
        let mut all = Vec::new();
        decode_spans(&enc.payload, &|_| true, &mut |_| true, &mut all).unwrap();
        let filtered: Vec<Span> = all.into_iter().filter(|s| s.trace_id == want).collect();
        assert!(!skipped.is_empty());
        assert_eq!(skipped, filtered);
    }
}

#[test]
fn every_truncation_of_a_payload_is_an_error_not_a_panic() {
    let spans = Corpus::new(9).spans(30);
    let payload = encode_spans(&spans).payload;
    for cut in 0..payload.len() {
        let mut out = Vec::new();
        assert!(
            decode_spans(&payload[..cut], &|_| true, &mut |_| true, &mut out).is_err(),
            "cut {cut}"
        );
    }
}

#[test]
fn string_ids_follow_first_use_of_the_text_whatever_the_address() {
    // Equal texts in separate allocations share an id; two prefixes of one allocation
    // (same address, other length) do not; thousands of strings overflow the address
    // cache's slots, and ids still come out in first-use order.
    let owned: Vec<String> = (0..5_000).map(|i| format!("value-{}", i % 2_500)).collect();
    let whole = String::from("abcdef");
    let mut t = StringTable::with_capacity(4);
    assert_eq!(t.id(&whole[..3]), 0);
    assert_eq!(t.id(&whole[..6]), 1);
    assert_eq!(t.id(&whole[..3]), 0);
    for (i, s) in owned.iter().enumerate() {
        assert_eq!(t.id(s), 2 + (i % 2_500) as u64, "{s}");
    }
    assert_eq!(t.id("abc"), 0);
    assert_eq!(t.order.len(), 2 + 2_500);
    assert_eq!(t.order[2 + 17], "value-17");
}

#[test]
fn the_payload_does_not_depend_on_how_traces_interleave_in_the_input() {
    // Traces contiguous, reversed, or interleaved span by span: the encoder regroups them
    // the same way (by earliest start, then by span start), so the bytes are equal.
    let spans = Corpus::new(21).spans(3_000);
    let key = |s: &Span| (s.trace_id, s.start_unix_nanos);
    let mut unique = spans.iter().map(key).collect::<Vec<_>>();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), spans.len(), "corpus has no tied starts");
    let reference = encode_spans(&spans).payload;
    let mut reversed = spans.clone();
    reversed.reverse();
    assert_eq!(encode_spans(&reversed).payload, reference);
    let (even, odd): (Vec<_>, Vec<_>) = spans
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let interleaved: Vec<Span> = odd.into_iter().chain(even).map(|(_, s)| s).collect();
    assert_eq!(encode_spans(&interleaved).payload, reference);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut out = Vec::new();
        let _ = decode_spans(&bytes, &|_| true, &mut |_| true, &mut out);
    }

    #[test]
    fn flipped_bytes_never_panic_the_decoder(at in any::<prop::sample::Index>(), x in 1u8..) {
        let spans = Corpus::new(3).spans(40);
        let mut payload = encode_spans(&spans).payload;
        let i = at.index(payload.len());
        payload[i] ^= x;
        let mut out = Vec::new();
        let _ = decode_spans(&payload, &|_| true, &mut |_| true, &mut out);
    }
}
