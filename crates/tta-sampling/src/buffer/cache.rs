//! The decision cache: what was decided for traces that already left the buffer, so their
//! late spans follow the same decision.
//!
//! Kept trace ids are remembered exactly (with the reason and threshold) in two rotating hash
//! maps: inserts go to the current map; when it is full it becomes the previous one and the
//! old previous one is cleared. Dropped trace ids, far more numerous, go to a compact filter:
//! buckets of sixteen 32-bit fingerprints (one cache line), each bucket overwriting its oldest
//! fingerprint when full. That costs 4.06 bytes per remembered trace; a trace never seen is
//! mistaken for a dropped one with probability at most 16 / 2^32 (about 4e-9) per lookup.

use std::collections::HashMap;

use tta_core::TraceId;

use crate::hash::IdHashBuilder;
use crate::{SamplingReason, SamplingResult, Threshold};

/// A remembered decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remembered {
    Kept(SamplingResult),
    Dropped,
}

const HAS_THRESHOLD: u64 = 1 << 56;

fn pack(result: &SamplingResult) -> u64 {
    let t = result.threshold.map_or(0, |t| t.raw() | HAS_THRESHOLD);
    t | ((result.reason.index() as u64) << 57)
}

fn unpack(v: u64) -> SamplingResult {
    let reason = SamplingReason::ALL
        .get((v >> 57) as usize)
        .copied()
        .unwrap_or(SamplingReason::HeadRate);
    let threshold = (v & HAS_THRESHOLD != 0).then(|| Threshold::from_raw(v & (HAS_THRESHOLD - 1)));
    SamplingResult::sample(reason, threshold)
}

/// Bytes of one kept-map bucket: the key, the packed value, and a control byte.
const KEPT_ENTRY_BYTES: usize = size_of::<(TraceId, u64)>() + 1;
/// Bytes per filter bucket: sixteen fingerprints and a cursor.
const BUCKET_BYTES: usize = size_of::<[u32; 16]>() + 1;

pub(crate) struct DecisionCache {
    kept: [HashMap<TraceId, u64, IdHashBuilder>; 2],
    current: usize,
    kept_per_generation: usize,
    buckets: Vec<[u32; 16]>,
    cursors: Vec<u8>,
    hasher: IdHashBuilder,
    bytes: usize,
}

impl DecisionCache {
    /// A cache that allocates about `bytes` up front (never more later): half for kept ids,
    /// half for the dropped filter.
    pub(crate) fn new(bytes: usize) -> Self {
        let hasher = IdHashBuilder::new();
        // A hash map allocates a power-of-two number of buckets at most 7/8 full, so
        // `with_capacity(n)` holds fewer than 16n/7 entries; two generations.
        let kept_per_generation = (bytes / 2 / (2 * KEPT_ENTRY_BYTES * 16 / 7)).max(16);
        let buckets = (bytes / 2 / BUCKET_BYTES).max(1);
        let kept = [
            HashMap::with_capacity_and_hasher(kept_per_generation, hasher.clone()),
            HashMap::with_capacity_and_hasher(kept_per_generation, hasher.clone()),
        ];
        let bytes = kept
            .iter()
            .map(|m| m.capacity() * 8 / 7 * KEPT_ENTRY_BYTES)
            .sum::<usize>()
            + buckets * BUCKET_BYTES;
        Self {
            kept,
            current: 0,
            kept_per_generation,
            buckets: vec![[0; 16]; buckets],
            cursors: vec![0; buckets],
            hasher,
            bytes,
        }
    }

    /// Bytes allocated (estimate of what the allocator holds).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    #[inline]
    fn locate(&self, id: &TraceId) -> (usize, u32) {
        let h = self.hasher.hash_id(id);
        let bucket = ((h & 0xffff_ffff) * self.buckets.len() as u64) >> 32;
        let fingerprint = ((h >> 32) as u32).max(1);
        (bucket as usize, fingerprint)
    }

    /// What was decided for `id`, if it is remembered.
    #[inline]
    pub(crate) fn lookup(&self, id: &TraceId) -> Option<Remembered> {
        let [a, b] = &self.kept;
        if let Some(v) = a.get(id).or_else(|| b.get(id)) {
            return Some(Remembered::Kept(unpack(*v)));
        }
        let (bucket, fingerprint) = self.locate(id);
        self.buckets
            .get(bucket)
            .filter(|b| b.contains(&fingerprint))
            .map(|_| Remembered::Dropped)
    }

    pub(crate) fn remember_kept(&mut self, id: TraceId, result: &SamplingResult) {
        if self.kept[self.current].len() >= self.kept_per_generation {
            self.current ^= 1;
            // Clearing keeps the allocation: the cache never grows past its initial size.
            self.kept[self.current].clear();
        }
        self.kept[self.current].insert(id, pack(result));
    }

    pub(crate) fn remember_dropped(&mut self, id: &TraceId) {
        let (bucket, fingerprint) = self.locate(id);
        if let (Some(slots), Some(cursor)) =
            (self.buckets.get_mut(bucket), self.cursors.get_mut(bucket))
            && !slots.contains(&fingerprint)
        {
            slots[usize::from(*cursor & 15)] = fingerprint;
            *cursor = (*cursor + 1) & 15;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> TraceId {
        TraceId::from_u128(n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) | 1)
    }

    #[test]
    fn kept_results_round_trip_exactly() {
        let mut c = DecisionCache::new(1 << 20);
        let results = [
            SamplingResult::sample(
                SamplingReason::HeadRate,
                Threshold::from_probability(0.05).ok(),
            ),
            SamplingResult::sample(SamplingReason::Error, Some(Threshold::ALWAYS)),
            SamplingResult::sample(SamplingReason::ParentSampled, None),
            SamplingResult::sample(SamplingReason::Slow, Some(Threshold::MAX)),
        ];
        for (i, r) in results.iter().enumerate() {
            c.remember_kept(id(i as u128), r);
        }
        for (i, r) in results.iter().enumerate() {
            assert_eq!(c.lookup(&id(i as u128)), Some(Remembered::Kept(*r)));
        }
        assert_eq!(c.lookup(&id(99)), None);
    }

    #[test]
    fn dropped_ids_are_remembered_with_few_false_positives() {
        let mut c = DecisionCache::new(1 << 20);
        let n = 20_000u128; // well under the ~129k the filter holds: no bucket overflows
        for i in 0..n {
            c.remember_dropped(&id(i));
        }
        assert!((0..n).all(|i| c.lookup(&id(i)) == Some(Remembered::Dropped)));
        let false_positives = (n..n + 200_000)
            .filter(|&i| c.lookup(&id(i)).is_some())
            .count();
        // Expected about 200k * 16 / 2^32 < 0.001.
        assert!(false_positives <= 2, "{false_positives}");
        assert!(c.bytes() <= 1 << 20, "{}", c.bytes());
    }

    #[test]
    fn kept_generations_rotate_within_capacity() {
        let mut c = DecisionCache::new(64 << 10);
        let per_gen = c.kept_per_generation as u128;
        let r = SamplingResult::sample(SamplingReason::HeadRate, Some(Threshold::ALWAYS));
        for i in 0..per_gen * 5 {
            c.remember_kept(id(i), &r);
        }
        // The most recent generation is always remembered; the oldest ones are gone.
        assert!((per_gen * 4..per_gen * 5).all(|i| c.lookup(&id(i)).is_some()));
        assert!(c.lookup(&id(0)).is_none());
        let cap: usize = c.kept.iter().map(HashMap::capacity).sum();
        assert!(cap <= 2 * (per_gen as usize) * 16 / 7 + 2, "{cap}");
    }
}
