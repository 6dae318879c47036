//! An insert-only hash map whose reads take no lock and allocate nothing.
//!
//! The limiter keeps its label keys and admitted values in it, and `tta-metrics` keeps its
//! metric families and series in it. Entries are never removed, which is what makes lock-free
//! reads possible without `unsafe`: every entry lives in a [`OnceLock`], written once by the
//! single writer (a mutex taken only to insert) and read with one atomic load.
//!
//! Two parts:
//!
//! - an *arena* of entries in chunks that double in size (the first holds `initial`
//!   entries, the next as many again, then twice that, ...), clamped to the `target_len` the
//!   caller passes, so a map expected to hold 100 entries ends with room for about 100. An
//!   entry's position (its id) never changes.
//! - one *index*: a dense array of atomic words, each packing 32 bits of the entry's hash
//!   with its id, in groups of eight (a cache line), kept at most 3/4 full. A lookup reads
//!   its home word (where most hits are), then scans the home group as a whole and goes on
//!   to the next group only if that one is full; it touches the arena only when the hash
//!   bits match, so a miss costs about one cache line whatever the size of the map. When the index fills up, the writer
//!   builds one twice as large from the old words alone (no entry is touched) and publishes
//!   it; readers switch with one atomic load. Old index arrays stay allocated (readers may
//!   still be probing them) and cost at most as much as the current one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// At most this many arena chunks; with doubling that is far beyond any `target_len` we accept.
const MAX_CHUNKS: usize = 26;
/// At most this many index generations (each at least 1.5 times the previous one).
const MAX_INDEXES: usize = 32;

type Chunk<V> = Box<[OnceLock<V>]>;

/// A generation of the index: per slot `hash bits << 32 | (id + 1)`, 0 when empty.
struct Index {
    words: Box<[AtomicU64]>,
    /// Entries this index may hold (3/4 of its slots, so probes stay short).
    usable: usize,
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
/// let h = 42 << 32; // any hash of the key; equal keys must have equal hashes
/// let r = map.get_or_insert_with(h, |v| v.0 == "a", 10, || Some(("a".to_owned(), 1)));
/// assert!(matches!(r, Insert::Inserted(_)));
/// assert_eq!(map.find(h, |v| v.0 == "a").map(|v| v.1), Some(1));
/// assert!(map.find(h, |v| v.0 == "b").is_none());
/// assert_eq!(map.len(), 1);
/// ```
pub struct InsertOnlyMap<V> {
    chunks: [OnceLock<Chunk<V>>; MAX_CHUNKS],
    indexes: [OnceLock<Index>; MAX_INDEXES],
    /// The newest published index, plus one (0: none yet).
    current: AtomicUsize,
    len: AtomicUsize,
    /// `log2` of the first chunk's size.
    shift: u32,
    /// The next id to hand out; guarded by the writer lock.
    writer: Mutex<usize>,
}

impl<V> std::fmt::Debug for InsertOnlyMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InsertOnlyMap")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The hash bits an index word keeps (the high half, which also picks the slot).
#[inline]
fn tag(hash: u64) -> u64 {
    hash >> 32
}

/// Index words per group: one cache line, scanned as a whole.
const GROUP: usize = 8;

/// Slots of an index that may hold `usable` entries at a 3/4 load, in whole groups.
fn slots_for(usable: usize) -> usize {
    (usable * 4)
        .div_ceil(3)
        .max(usable + 1)
        .next_multiple_of(GROUP)
}

/// Maps 32 hash bits onto `0..n` without a division (Lemire's multiply-shift).
#[inline]
fn reduce(tag: u64, n: usize) -> usize {
    // `tag < 2^32` and `n < 2^32`, so the product fits and its high half is < n.
    ((tag * n as u64) >> 32) as usize
}

impl<V> InsertOnlyMap<V> {
    /// An empty map whose first chunk will hold `initial` entries (rounded up to a power of
    /// two; allocated on first insert).
    pub fn new(initial: usize) -> Self {
        Self {
            chunks: std::array::from_fn(|_| OnceLock::new()),
            indexes: std::array::from_fn(|_| OnceLock::new()),
            current: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            shift: initial.max(1).next_power_of_two().trailing_zeros(),
            writer: Mutex::new(0),
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

    /// The chunk and offset of entry `id`.
    #[inline]
    fn locate(&self, id: usize) -> (usize, usize) {
        let high = id >> self.shift;
        if high == 0 {
            (0, id)
        } else {
            let k = (usize::BITS - 1 - high.leading_zeros()) as usize;
            (k + 1, id - (1 << (k + self.shift as usize)))
        }
    }

    /// First id of chunk `c`, and how many ids it spans.
    fn chunk_range(&self, c: usize) -> (usize, usize) {
        if c == 0 {
            (0, 1 << self.shift)
        } else {
            let size = 1usize << (c - 1 + self.shift as usize);
            (size, size)
        }
    }

    #[inline]
    fn entry(&self, id: usize) -> Option<&V> {
        let (c, off) = self.locate(id);
        self.chunks.get(c)?.get()?.get(off)?.get()
    }

    #[inline]
    fn index(&self) -> Option<&Index> {
        let cur = self.current.load(Ordering::Acquire);
        self.indexes.get(cur.checked_sub(1)?)?.get()
    }

    /// Finds the entry with this hash for which `eq` holds. Lock-free and allocation-free.
    #[inline]
    pub fn find(&self, hash: u64, eq: impl FnMut(&V) -> bool) -> Option<&V> {
        self.find_with_id(hash, eq).map(|(_, v)| v)
    }

    /// The entry with id `id` (ids count insertions from 0 and never change).
    ///
    /// ```
    /// use tta_cardinality::map::InsertOnlyMap;
    /// let map: InsertOnlyMap<&str> = InsertOnlyMap::new(4);
    /// map.get_or_insert_with(7, |v| *v == "a", 10, || Some("a"));
    /// let (id, v) = map.find_with_id(7, |v| *v == "a").unwrap();
    /// assert_eq!((id, *v), (0, "a"));
    /// assert_eq!(map.get(id), Some(&"a"));
    /// assert_eq!(map.get(1), None);
    /// ```
    #[inline]
    pub fn get(&self, id: usize) -> Option<&V> {
        self.entry(id)
    }

    /// [`find`](Self::find), with the entry's id (see [`get`](Self::get)).
    #[inline]
    pub fn find_with_id(&self, hash: u64, mut eq: impl FnMut(&V) -> bool) -> Option<(usize, &V)> {
        let index = self.index()?;
        let words = &index.words;
        let n = words.len();
        let want = tag(hash);
        let home = reduce(want, n);
        // The home word first: most hits are there, and an empty home word means no entry
        // with this hash was ever placed (it would have taken it).
        let w = words.get(home)?.load(Ordering::Acquire);
        if w == 0 {
            return None;
        }
        let id = (w as u32 as usize).wrapping_sub(1);
        if w >> 32 == want
            && let Some(v) = self.entry(id)
            && eq(v)
        {
            return Some((id, v));
        }
        let mut g = home / GROUP;
        let mut skip = 1u32 << (home % GROUP);
        for _ in 0..n / GROUP {
            let group = words.get(g * GROUP..(g + 1) * GROUP)?;
            // Scan the whole group without early exits (one cache line, no mispredicted loop
            // ends); entries go to the first group with room, so a group with an empty word
            // ends the search.
            let mut matches = 0u32;
            let mut empty = false;
            for (j, w) in group.iter().enumerate() {
                let w = w.load(Ordering::Acquire);
                empty |= w == 0;
                matches |= u32::from(w != 0 && w >> 32 == want) << j;
            }
            matches &= !skip;
            while matches != 0 {
                let j = matches.trailing_zeros() as usize;
                matches &= matches - 1;
                let w = group[j].load(Ordering::Relaxed);
                let id = (w as u32 as usize).wrapping_sub(1);
                if let Some(v) = self.entry(id)
                    && eq(v)
                {
                    return Some((id, v));
                }
            }
            if empty {
                return None;
            }
            skip = 0;
            g += 1;
            if g * GROUP == n {
                g = 0;
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
        // A poisoned lock only means another writer panicked mid-insert; entries and index
        // words are written atomically, so the map is still consistent.
        let mut next_id = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(v) = self.find(hash, &mut eq) {
            return Insert::Found(v);
        }
        let len = self.len();
        if len >= target_len {
            return Insert::Full;
        }
        let Some(index) = self.index_with_room(len, target_len) else {
            return Insert::Full;
        };
        let Some((id, slot)) = self.free_slot(&mut next_id, len, target_len) else {
            return Insert::Full;
        };
        let Ok(id32) = u32::try_from(id + 1) else {
            return Insert::Full;
        };
        let Some(value) = make() else {
            return Insert::Refused;
        };
        // We hold the writer lock and the slot is fresh, so this `set` succeeds. The index
        // word is published after the entry: a reader that sees it sees the entry.
        let _ = slot.set(value);
        *next_id = id + 1;
        place(&index.words, tag(hash) << 32 | u64::from(id32));
        self.len.fetch_add(1, Ordering::Release);
        match slot.get() {
            Some(v) => Insert::Inserted(v),
            None => Insert::Full,
        }
    }

    /// The arena slot for the next entry, allocating its chunk (clamped to `target_len`) if
    /// needed. Runs under the writer lock.
    fn free_slot(
        &self,
        next_id: &mut usize,
        len: usize,
        target_len: usize,
    ) -> Option<(usize, &OnceLock<V>)> {
        loop {
            let (c, off) = self.locate(*next_id);
            let cell = self.chunks.get(c)?;
            let chunk = match cell.get() {
                Some(chunk) => chunk,
                None => {
                    let (_, span) = self.chunk_range(c);
                    // Clamped to the room left, but never below half the span: a target
                    // raised step by step must not use up the chunks.
                    let room = target_len.saturating_sub(len).max(span / 2).max(1);
                    let size = span.min(room);
                    let _ = cell.set((0..size).map(|_| OnceLock::new()).collect());
                    cell.get()?
                }
            };
            match chunk.get(off) {
                Some(slot) => return Some((*next_id, slot)),
                // A chunk clamped to an earlier, lower target: go on with the next one.
                None => *next_id = self.chunk_range(c + 1).0,
            }
        }
    }

    /// The index to add an entry to, growing it when it is at its usable size. Runs under the
    /// writer lock.
    fn index_with_room(&self, len: usize, target_len: usize) -> Option<&Index> {
        let cur = self.current.load(Ordering::Relaxed);
        let old = cur.checked_sub(1).and_then(|c| self.indexes[c].get());
        if let Some(index) = old
            && len < index.usable
        {
            return Some(index);
        }
        let old_usable = old.map_or(0, |i| i.usable);
        let initial = 1usize << self.shift;
        // Double (at least the first chunk's size), clamped to the target unless that would
        // grow by less than half: a target raised step by step must not use up the
        // generations.
        let doubled = (old_usable * 2).max(initial);
        let floor = (old_usable + old_usable / 2).max(len + 1);
        let usable = doubled.min(target_len.max(floor));
        let n = slots_for(usable);
        let words: Box<[AtomicU64]> = (0..n).map(|_| AtomicU64::new(0)).collect();
        if let Some(old) = old {
            for w in old.words.iter() {
                let w = w.load(Ordering::Relaxed);
                if w != 0 {
                    place(&words, w);
                }
            }
        }
        let cell = self.indexes.get(cur)?;
        let _ = cell.set(Index { words, usable });
        self.current.store(cur + 1, Ordering::Release);
        cell.get()
    }

    /// Visits every entry in insertion order. Lock-free; entries inserted meanwhile may or
    /// may not be seen.
    pub fn for_each(&self, mut f: impl FnMut(&V)) {
        for chunk in self.chunks.iter() {
            let Some(chunk) = chunk.get() else { break };
            for slot in chunk.iter() {
                if let Some(v) = slot.get() {
                    f(v);
                }
            }
        }
    }

    /// Heap bytes held by the map itself (arena slots and index words, old index generations
    /// included), not counting what values point to.
    pub fn table_bytes(&self) -> usize {
        let mut bytes = 0;
        for chunk in self.chunks.iter() {
            let Some(chunk) = chunk.get() else { break };
            bytes += chunk.len() * std::mem::size_of::<OnceLock<V>>();
        }
        for index in self.indexes.iter() {
            let Some(index) = index.get() else { break };
            bytes += index.words.len() * std::mem::size_of::<AtomicU64>();
        }
        bytes
    }
}

/// Stores an index word in the first empty slot from its home slot (writer lock held).
///
/// The home word if empty, else the first empty word of the home group (from the home word
/// on, wrapping inside the group), else of the next groups in turn: the layout
/// [`InsertOnlyMap::find`] relies on.
fn place(words: &[AtomicU64], word: u64) {
    let n = words.len();
    let home = reduce(word >> 32, n);
    let mut g = home / GROUP;
    for step in 0..n / GROUP {
        for j in 0..GROUP {
            let at = if step == 0 {
                g * GROUP + (home % GROUP + j) % GROUP
            } else {
                g * GROUP + j
            };
            if words[at].load(Ordering::Relaxed) == 0 {
                words[at].store(word, Ordering::Release);
                return;
            }
        }
        g += 1;
        if g * GROUP == n {
            g = 0;
        }
    }
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
    fn last_chunk_and_index_are_clamped_to_target() {
        let map: InsertOnlyMap<u64> = InsertOnlyMap::new(16);
        for v in 0..100u64 {
            map.get_or_insert_with(h(&v.to_string()), |x| *x == v, 100, || Some(v));
        }
        // Chunks of 16, 16, 32 and 36 (clamped) entries; index generations for 16, 32, 64
        // and 100 entries: 24 + 48 + 88 + 136 words (3/4 full, rounded up to whole groups).
        let slot = std::mem::size_of::<OnceLock<u64>>();
        let word = std::mem::size_of::<AtomicU64>();
        assert_eq!(map.table_bytes(), 100 * slot + (24 + 48 + 88 + 136) * word);
        for v in 0..100u64 {
            assert_eq!(map.find(h(&v.to_string()), |x| *x == v), Some(&v));
        }
        let mut order = Vec::new();
        map.for_each(|v| order.push(*v));
        assert_eq!(order, (0..100).collect::<Vec<_>>(), "insertion order");
    }

    #[test]
    fn a_target_raised_after_a_clamped_chunk_skips_to_the_next_chunk() {
        let map: InsertOnlyMap<u32> = InsertOnlyMap::new(4);
        // Chunk 1 (ids 4..8) is clamped to 2 entries by the target of 6.
        for v in 0..6 {
            map.get_or_insert_with(u64::from(v) << 40, |x| *x == v, 6, || Some(v));
        }
        assert!(matches!(
            map.get_or_insert_with(99 << 40, |x| *x == 99, 6, || Some(99)),
            Insert::Full
        ));
        // A raised target fills chunk 2 onward; everything stays findable.
        for v in 6..40 {
            let r = map.get_or_insert_with(u64::from(v) << 40, |x| *x == v, 1000, || Some(v));
            assert!(matches!(r, Insert::Inserted(x) if *x == v));
        }
        for v in 0..40 {
            assert_eq!(map.find(u64::from(v) << 40, |x| *x == v), Some(&v));
        }
        assert_eq!(map.len(), 40);
    }

    #[test]
    fn a_target_raised_one_at_a_time_does_not_exhaust_the_index() {
        let map: InsertOnlyMap<u32> = InsertOnlyMap::new(1);
        for v in 0..5_000u32 {
            let hash = twox_hash::XxHash3_64::oneshot(&v.to_le_bytes());
            let r = map.get_or_insert_with(hash, |x| *x == v, v as usize + 1, || Some(v));
            assert!(matches!(r, Insert::Inserted(_)), "insert {v}");
        }
        assert_eq!(map.len(), 5_000);
    }

    #[test]
    fn readers_find_every_published_entry_while_the_index_grows() {
        use std::sync::atomic::AtomicUsize;
        const N: usize = 20_000;
        let hash = |k: usize| twox_hash::XxHash3_64::oneshot(&k.to_le_bytes());
        let map: InsertOnlyMap<usize> = InsertOnlyMap::new(1);
        let done = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut checks = 0u64;
                let mut probe = 0usize;
                loop {
                    let d = done.load(Ordering::Acquire);
                    if d > 0 {
                        // The newest entry and a walk over the older ones must all be found.
                        for k in [d - 1, probe % d] {
                            assert_eq!(map.find(hash(k), |v| *v == k), Some(&k), "entry {k}");
                        }
                        probe = probe.wrapping_add(7_919);
                        checks += 1;
                    }
                    if d == N {
                        return checks;
                    }
                }
            });
            for k in 0..N {
                map.get_or_insert_with(hash(k), |v| *v == k, N, || Some(k));
                done.store(k + 1, Ordering::Release);
            }
            assert!(reader.join().expect("reader") > 0);
        });
        assert_eq!(map.len(), N);
    }

    proptest::proptest! {
        /// Whatever the hashes (here squeezed onto a few tags, so groups overflow into their
        /// neighbours and index generations are rebuilt), every inserted entry is found and
        /// nothing else is.
        #[test]
        fn finds_exactly_what_was_inserted(
            keys in proptest::collection::hash_set(0u32..2_000, 0..300),
            tag_bits in 1u32..12,
            initial in 1usize..40,
        ) {
            let hash = |k: u32| (u64::from(k) % (1 << tag_bits)) << 32 | u64::from(k);
            let map: InsertOnlyMap<u32> = InsertOnlyMap::new(initial);
            for &k in &keys {
                let r = map.get_or_insert_with(hash(k), |v| *v == k, 10_000, || Some(k));
                proptest::prop_assert!(matches!(r, Insert::Inserted(v) if *v == k));
            }
            proptest::prop_assert_eq!(map.len(), keys.len());
            for k in 0..2_000u32 {
                let found = map.find(hash(k), |v| *v == k).copied();
                proptest::prop_assert_eq!(found, keys.contains(&k).then_some(k));
            }
            let mut seen = 0;
            map.for_each(|v| seen += usize::from(keys.contains(v)));
            proptest::prop_assert_eq!(seen, keys.len());
        }
    }
}
