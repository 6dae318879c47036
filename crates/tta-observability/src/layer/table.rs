//! The layer's per-span state, kept in its own table keyed by the registry's span id instead
//! of the registry's span extensions.
//!
//! An extension costs a heap allocation and a type-map insert when the span starts, a
//! lookup of the span in the registry at every callback, and the map's clearing and the
//! allocation's release when the span closes: together about as much as the registry's own
//! work per span. Here a span's state lives in a slot of a table found by hashing its id:
//! the slot is claimed by locking it and finding it empty, its state written there in place
//! (a slot keeps its state value from span to span, so nothing is moved in or out), and the
//! close works on the state in place, releases what it holds and frees the slot. Nothing is
//! allocated per span.
//!
//! The table grows in levels (each twice the size of the one before, allocated when first
//! needed), so it only refuses a span when about 4 million are alive at once: a span goes
//! to the first level with a free slot among the [`PROBE`] slots its id hashes to.
//!
//! Each slot's state sits behind its own spin lock, taken only by callbacks on that one
//! span (its start, close, recorded fields and error events, and its children's closes
//! adding to a local root's trace), so it is almost never contended: a wait is for another
//! thread's callback on the same span, which takes well under a microsecond. A spin lock
//! (`spin::mutex::SpinMutex`) rather than `std::sync::Mutex` because it is released with a
//! plain store: one locked instruction per use instead of two, two per span. No code runs
//! under a slot's lock that could call back into the layer on the same span (field values
//! of recorded fields are visited before the lock is taken). The key word lets a lookup
//! skip other spans' slots without touching their locks.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use spin::mutex::{SpinMutex, SpinMutexGuard};

/// Slots an id may use in each level.
const PROBE: usize = 8;
/// Slots in the first level (a power of two).
const FIRST_LEVEL: usize = 512;
/// Levels: the last holds `FIRST_LEVEL << (LEVELS - 1)` slots, about 4 million in all.
const LEVELS: usize = 13;

/// What a slot's lock guards: the id of the span stored there (0 = free) and its state,
/// which stays in the slot from one span to the next.
type Stored<T> = (u64, T);

/// A state kept in a reused slot.
pub(super) trait SlotState: Default {
    /// Releases what the state of a closed span holds (heap memory, shared strings). The
    /// next span to use the slot sets every field itself.
    fn release(&mut self);
}

/// One slot: the id of the span it holds (0 = free) and that span's state.
struct Slot<T> {
    key: AtomicU64,
    state: SpinMutex<Stored<T>>,
}

impl<T: SlotState> Default for Slot<T> {
    fn default() -> Self {
        Self {
            key: AtomicU64::new(0),
            state: SpinMutex::new((0, T::default())),
        }
    }
}

/// Per-span state by span id (a non-zero `u64`), shared between threads without a global
/// lock and without allocating per span.
pub(super) struct SpanTable<T> {
    levels: [OnceLock<Box<[Slot<T>]>>; LEVELS],
}

impl<T> std::fmt::Debug for SpanTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let allocated = self.levels.iter().filter(|l| l.get().is_some()).count();
        f.debug_struct("SpanTable")
            .field("levels_allocated", &allocated)
            .finish()
    }
}

impl<T: SlotState> SpanTable<T> {
    pub(super) fn new() -> Self {
        Self {
            levels: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    fn level(&self, i: usize) -> &[Slot<T>] {
        self.levels[i].get_or_init(|| {
            (0..FIRST_LEVEL << i)
                .map(|_| Slot::default())
                .collect::<Vec<_>>()
                .into_boxed_slice()
        })
    }

    /// The slots `id` may use in `level` (of `len` slots, a power of two).
    fn probe(id: u64, len: usize) -> impl Iterator<Item = usize> {
        let h = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let start = (h >> 32) as usize;
        (0..PROBE).map(move |i| (start + i) & (len - 1))
    }

    /// Stores the state of a new span: `init` sets it, in its slot (with the slot locked;
    /// it may look up other spans). `id` must not be 0 nor already stored. Returns whether
    /// a slot was found (`init` ran).
    pub(super) fn insert_with(&self, id: u64, init: impl FnOnce(&mut T)) -> bool {
        debug_assert_ne!(id, 0);
        for i in 0..LEVELS {
            let slots = self.level(i);
            for s in Self::probe(id, slots.len()) {
                let slot = &slots[s];
                if slot.key.load(Ordering::Relaxed) != 0 {
                    continue;
                }
                // A slot is claimed by locking it and finding it empty; one held by another
                // thread is passed over rather than waited for.
                let Some(mut guard) = slot.state.try_lock() else {
                    continue;
                };
                if guard.0 == 0 {
                    guard.0 = id;
                    init(&mut guard.1);
                    // Published once set: a lookup that finds the key then waits for the lock.
                    slot.key.store(id, Ordering::Release);
                    return true;
                }
            }
        }
        // Every probed slot of every level is taken (millions of live spans): the span is
        // not tracked; its callbacks find nothing and do nothing.
        false
    }

    /// The slot holding `id`, locked, if the span is stored.
    fn find(&self, id: u64) -> Option<(&Slot<T>, SpinMutexGuard<'_, Stored<T>>)> {
        for level in &self.levels {
            let Some(slots) = level.get() else { break };
            for s in Self::probe(id, slots.len()) {
                let slot = &slots[s];
                if slot.key.load(Ordering::Acquire) == id {
                    let guard = slot.state.lock();
                    // The span may have closed (and the slot been reused) since the key read.
                    if guard.0 == id {
                        return Some((slot, guard));
                    }
                }
            }
        }
        None
    }

    /// Runs `f` on the state of span `id`, if stored.
    pub(super) fn with<R>(&self, id: u64, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let (_, mut guard) = self.find(id)?;
        Some(f(&mut guard.1))
    }

    /// Runs `f` on the state of span `id`, if stored, then releases the state in place and
    /// frees the slot.
    pub(super) fn take_with<R>(&self, id: u64, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let (slot, mut guard) = self.find(id)?;
        let result = f(&mut guard.1);
        guard.1.release();
        guard.0 = 0;
        // Freed while still locked: an insert that then finds the slot unlocked and empty
        // sets the key after this store, never before it.
        slot.key.store(0, Ordering::Release);
        Some(result)
    }

    /// Stores `state` for span `id` (see [`insert_with`](Self::insert_with)).
    #[cfg(test)]
    fn insert(&self, id: u64, state: T) -> bool {
        self.insert_with(id, |s| *s = state)
    }

    /// Removes and returns the state of span `id`, freeing its slot.
    #[cfg(test)]
    fn take(&self, id: u64) -> Option<T> {
        self.take_with(id, std::mem::take)
    }

    /// Spans stored (walks the whole table; for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.levels
            .iter()
            .filter_map(OnceLock::get)
            .flat_map(|slots| slots.iter())
            .filter(|s| s.key.load(Ordering::Acquire) != 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    impl SlotState for String {
        fn release(&mut self) {
            self.clear();
        }
    }

    impl SlotState for u64 {
        fn release(&mut self) {
            *self = 0;
        }
    }

    #[test]
    fn insert_with_take_round_trip() {
        let t = SpanTable::new();
        t.insert(7, String::from("a"));
        t.insert(9, String::from("b"));
        assert_eq!(t.with(7, |s| s.push('x')), Some(()));
        assert_eq!(t.take(7).as_deref(), Some("ax"));
        assert_eq!(t.take(7), None, "taken once");
        assert_eq!(t.with(7, |_| ()), None);
        assert_eq!(t.take(9).as_deref(), Some("b"));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn colliding_ids_spill_into_further_levels_and_are_all_found() {
        let t = SpanTable::new();
        // Far more live spans than the first level holds, so probes collide and spill.
        let n = (FIRST_LEVEL * 6) as u64;
        for id in 1..=n {
            t.insert(id, id * 10);
        }
        assert_eq!(t.len(), n as usize);
        assert!(t.levels[1].get().is_some(), "a second level was needed");
        for id in 1..=n {
            assert_eq!(t.with(id, |v| *v), Some(id * 10), "id {id}");
        }
        for id in (1..=n).step_by(2) {
            assert_eq!(t.take(id), Some(id * 10));
        }
        // Freed slots are reused.
        for id in (n + 1)..=(n + n / 2) {
            t.insert(id, id * 10);
        }
        for id in (2..=n).step_by(2).chain((n + 1)..=(n + n / 2)) {
            assert_eq!(t.take(id), Some(id * 10), "id {id}");
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn threads_insert_update_and_take_their_own_spans() {
        let t = Arc::new(SpanTable::new());
        let handles: Vec<_> = (0..4u64)
            .map(|th| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    let mut sum = 0;
                    for round in 0..2_000u64 {
                        let ids: Vec<u64> = (0..8)
                            .map(|i| (th << 40) | (round << 8) | (i + 1))
                            .collect();
                        for &id in &ids {
                            t.insert(id, 1u64);
                        }
                        for &id in &ids {
                            t.with(id, |v| *v += id).expect("stored");
                        }
                        for &id in &ids {
                            sum += t.take(id).expect("stored") - 1 - id;
                        }
                    }
                    sum
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().expect("no panic"), 0);
        }
        assert_eq!(t.len(), 0);
    }
}
