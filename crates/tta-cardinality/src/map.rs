//! An insert-only hash map whose reads take no lock and allocate nothing.
//!
//! The limiter keeps its label keys and admitted values in it, and `tta-metrics` keeps its
//! metric families and series in it. Entries are never removed, which is what makes lock-free
//! reads possible without `unsafe`: every slot is a [`OnceLock`], written once by the single
//! writer (a mutex taken only to insert) and read with one atomic load.
//!
//! Each chunk keeps its entries' hashes in a dense array of atomics beside the slots, so a
//! probe reads eight hashes per cache line and touches a slot only when its hash matches: a
//! miss costs about one cache line per chunk, which is what lets chunks run three quarters
//! full instead of half.
//!
//! The table is a list of open-addressing chunks (linear probing, at most 3/4 full). A new
//! chunk is added when the others are full; its size doubles the usable capacity so far,
//! clamped to the `target_len` the caller passes, so a map that is expected to hold 100 entries
//! ends with room for about 100, not 128 or 256.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// At most this many chunks; with doubling that is far beyond any `target_len` we accept.
const MAX_CHUNKS: usize = 28;

struct Chunk<V> {
    /// Per slot, the entry's [`tag`] (0 = empty), stored after the slot is set.
    hashes: Box<[AtomicU64]>,
    slots: Box<[OnceLock<V>]>,
    /// Entries this chunk may hold (3/4 of its slots, so probes stay short).
    usable: usize,
    /// Entries it holds; written only under the writer lock.
    len: AtomicUsize,
}

/// What [`InsertOnlyMap::get_or_insert_with`] did.
#[derive(Debug)]
pub enum Insert<'a, V> {
    /// The entry was already there.
    Found(&'a V),
    /// The entry was created by this call.
    Inserted(&'a V),
    /// The constructor declined (returned `None`); nothing was inserted.
    Refused,
    /// The map already holds `target_len` entries (or its chunk list is exhausted).
    Full,
}

/// An insert-only map from a caller-computed 64-bit hash plus an equality test to a value.
///
/// Lookups ([`find`](Self::find)) are lock-free and allocation-free; inserts take a mutex.
/// The map never shrinks: callers bound it with the `target_len` they pass on insert.
///
/// ```
/// use tta_cardinality::map::{Insert, InsertOnlyMap};
/// let map: InsertOnlyMap<(String, u32)> = InsertOnlyMap::new(4);
/// let h = 42; // any hash of the key; equal keys must have equal hashes
/// let r = map.get_or_insert_with(h, |v| v.0 == "a", 10, || Some(("a".to_owned(), 1)));
/// assert!(matches!(r, Insert::Inserted(_)));
/// assert_eq!(map.find(h, |v| v.0 == "a").map(|v| v.1), Some(1));
/// assert!(map.find(h, |v| v.0 == "b").is_none());
/// assert_eq!(map.len(), 1);
/// ```
pub struct InsertOnlyMap<V> {
    chunks: Box<[OnceLock<Box<Chunk<V>>>]>,
    len: AtomicUsize,
    initial: usize,
    writer: Mutex<()>,
}

impl<V> std::fmt::Debug for InsertOnlyMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InsertOnlyMap")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The non-zero form of a hash stored in a chunk's hash array (0 marks an empty slot).
#[inline]
fn tag(hash: u64) -> u64 {
    hash.max(1)
}

/// Slots of a chunk that may hold `usable` entries at a 3/4 load.
fn slots_for(usable: usize) -> usize {
    (usable * 4).div_ceil(3).max(usable + 1)
}

/// Maps a hash onto `0..n` without a division (Lemire's multiply-shift).
#[inline]
fn reduce(hash: u64, n: usize) -> usize {
    // The product's high half is < n, so it fits in usize.
    ((u128::from(hash) * n as u128) >> 64) as usize
}

impl<V> InsertOnlyMap<V> {
    /// An empty map whose first chunk will hold `initial` entries (allocated on first insert).
    pub fn new(initial: usize) -> Self {
        Self {
            chunks: (0..MAX_CHUNKS).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
            initial: initial.max(1),
            writer: Mutex::new(()),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Finds the entry with this hash for which `eq` holds. Lock-free and allocation-free.
    #[inline]
    pub fn find(&self, hash: u64, mut eq: impl FnMut(&V) -> bool) -> Option<&V> {
        for chunk in self.chunks.iter() {
            let chunk = chunk.get()?;
            if let Some(v) = probe(chunk, hash, &mut eq) {
                return Some(v);
            }
        }
        None
    }

    /// Returns the entry for `hash`/`eq`, creating it with `make` if absent.
    ///
    /// Takes the writer lock. `make` runs under that lock, at most once, and only when there is
    /// room (`len() < target_len`); returning `None` declines the insert. Equal keys must have
    /// equal hashes and `eq` must match the value `make` builds.
    pub fn get_or_insert_with(
        &self,
        hash: u64,
        mut eq: impl FnMut(&V) -> bool,
        target_len: usize,
        make: impl FnOnce() -> Option<V>,
    ) -> Insert<'_, V> {
        // A poisoned lock only means another writer panicked mid-insert; slots are written
        // atomically, so the map is still consistent.
        let _guard = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(v) = self.find(hash, &mut eq) {
            return Insert::Found(v);
        }
        if self.len() >= target_len {
            return Insert::Full;
        }
        let Some(chunk) = self.chunk_with_room(target_len) else {
            return Insert::Full;
        };
        let Some(value) = make() else {
            return Insert::Refused;
        };
        let n = chunk.slots.len();
        let mut i = reduce(hash, n);
        loop {
            let slot = &chunk.slots[i];
            if chunk.hashes[i].load(Ordering::Relaxed) == 0 {
                // We hold the writer lock and the slot is empty, so this `set` succeeds. The
                // hash is published after the value: a reader that sees it sees the value.
                let _ = slot.set(value);
                chunk.hashes[i].store(tag(hash), Ordering::Release);
                chunk.len.fetch_add(1, Ordering::Relaxed);
                self.len.fetch_add(1, Ordering::Release);
                return match slot.get() {
                    Some(v) => Insert::Inserted(v),
                    None => Insert::Full,
                };
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// The chunk new entries go to, allocating one if every chunk is at its usable size.
    fn chunk_with_room(&self, target_len: usize) -> Option<&Chunk<V>> {
        let mut usable_so_far = 0usize;
        for cell in self.chunks.iter() {
            match cell.get() {
                Some(c) => {
                    if c.len.load(Ordering::Relaxed) < c.usable {
                        return Some(c);
                    }
                    usable_so_far += c.usable;
                }
                None => {
                    let want = usable_so_far.max(self.initial);
                    let remaining = target_len.saturating_sub(usable_so_far).max(1);
                    let usable = want.min(remaining);
                    let n = slots_for(usable);
                    let _ = cell.set(Box::new(Chunk {
                        hashes: (0..n).map(|_| AtomicU64::new(0)).collect(),
                        slots: (0..n).map(|_| OnceLock::new()).collect(),
                        usable,
                        len: AtomicUsize::new(0),
                    }));
                    return cell.get().map(|c| &**c);
                }
            }
        }
        None
    }

    /// Visits every entry (in no particular order). Lock-free; entries inserted meanwhile may
    /// or may not be seen.
    pub fn for_each(&self, mut f: impl FnMut(&V)) {
        for chunk in self.chunks.iter() {
            let Some(chunk) = chunk.get() else { break };
            for slot in chunk.slots.iter() {
                if let Some(v) = slot.get() {
                    f(v);
                }
            }
        }
    }

    /// Heap bytes held by the table itself (slots), not counting what values point to.
    pub fn table_bytes(&self) -> usize {
        let mut bytes = 0;
        for chunk in self.chunks.iter() {
            let Some(chunk) = chunk.get() else { break };
            bytes += chunk.slots.len()
                * (std::mem::size_of::<OnceLock<V>>() + std::mem::size_of::<AtomicU64>());
            bytes += std::mem::size_of::<Chunk<V>>();
        }
        bytes + self.chunks.len() * std::mem::size_of::<OnceLock<Box<Chunk<V>>>>()
    }
}

#[inline]
fn probe<'a, V>(chunk: &'a Chunk<V>, hash: u64, eq: &mut impl FnMut(&V) -> bool) -> Option<&'a V> {
    let n = chunk.slots.len();
    let want = tag(hash);
    let mut i = reduce(hash, n);
    for _ in 0..n {
        let t = chunk.hashes[i].load(Ordering::Acquire);
        if t == 0 {
            return None;
        }
        if t == want
            && let Some(v) = chunk.slots[i].get()
            && eq(v)
        {
            return Some(v);
        }
        i += 1;
        if i == n {
            i = 0;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> u64 {
        twox_hash::XxHash3_64::oneshot(s.as_bytes())
    }

    #[test]
    fn inserts_then_finds_across_chunks() {
        let map: InsertOnlyMap<String> = InsertOnlyMap::new(2);
        for i in 0..100 {
            let k = format!("k{i}");
            let r = map.get_or_insert_with(h(&k), |v| *v == k, 100, || Some(k.clone()));
            assert!(matches!(r, Insert::Inserted(v) if *v == k));
        }
        assert_eq!(map.len(), 100);
        for i in 0..100 {
            let k = format!("k{i}");
            assert_eq!(map.find(h(&k), |v| *v == k), Some(&k));
        }
        assert!(map.find(h("k100"), |v| v == "k100").is_none());
        let r = map.get_or_insert_with(h("x"), |v| v == "x", 100, || Some("x".to_owned()));
        assert!(matches!(r, Insert::Full));
        let mut seen = 0;
        map.for_each(|_| seen += 1);
        assert_eq!(seen, 100);
    }

    #[test]
    fn found_and_refused() {
        let map: InsertOnlyMap<u32> = InsertOnlyMap::new(4);
        assert!(matches!(
            map.get_or_insert_with(1, |v| *v == 7, 10, || Some(7)),
            Insert::Inserted(7)
        ));
        assert!(matches!(
            map.get_or_insert_with(1, |v| *v == 7, 10, || Some(7)),
            Insert::Found(7)
        ));
        assert!(matches!(
            map.get_or_insert_with(2, |v| *v == 8, 10, || None),
            Insert::Refused
        ));
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn find_takes_no_lock() {
        // `make` runs while the insert holds the writer lock: a `find` that took that lock
        // (std's mutex is not reentrant) would never return here.
        let map: InsertOnlyMap<u32> = InsertOnlyMap::new(4);
        map.get_or_insert_with(1, |v| *v == 1, 10, || Some(1));
        let mut seen = None;
        map.get_or_insert_with(
            2,
            |v| *v == 2,
            10,
            || {
                seen = map.find(1, |v| *v == 1).copied();
                Some(2)
            },
        );
        assert_eq!(seen, Some(1));
        assert_eq!(map.find(2, |v| *v == 2), Some(&2));
    }

    #[test]
    fn colliding_hashes_are_told_apart_by_eq() {
        let map: InsertOnlyMap<u32> = InsertOnlyMap::new(4);
        for v in 0..4 {
            map.get_or_insert_with(5, |x| *x == v, 10, || Some(v));
        }
        for v in 0..4 {
            assert_eq!(map.find(5, |x| *x == v), Some(&v));
        }
    }

    #[test]
    fn last_chunk_is_clamped_to_target() {
        let map: InsertOnlyMap<u64> = InsertOnlyMap::new(16);
        for v in 0..100u64 {
            map.get_or_insert_with(h(&v.to_string()), |x| *x == v, 100, || Some(v));
        }
        // Usable sizes 16, 16, 32, 36: 22 + 22 + 43 + 48 = 135 slots in all.
        let slot = std::mem::size_of::<OnceLock<u64>>() + std::mem::size_of::<AtomicU64>();
        let bytes = map.table_bytes()
            - MAX_CHUNKS * std::mem::size_of::<OnceLock<Box<Chunk<u64>>>>()
            - 4 * std::mem::size_of::<Chunk<u64>>();
        assert_eq!(bytes, 135 * slot);
    }
}
