//! Per-thread shards for spans that need no trace buffering.
//!
//! A span whose trace is certainly kept (its head threshold is 0, or the sampler keeps
//! every trace now: see `CompositeSampler::certainly_keeps`) gains nothing from the sampler
//! stage: the stage would only move it into a batch. Instead the producer appends it to a
//! batch of its own, in one of a few shards chosen by thread, and sends the batch to the
//! export workers when it is full, numbered like the stage's batches. Per span that is
//! one uncontended lock and one move, on the producer's thread, instead of a move through
//! the span queue, a move by the stage into a batch, and the stage's time. While the
//! workers' queue is full, full batches wait in the shard, up to `max_queue_size` spans
//! per shard; past that, spans go the span queue's way (and its full-queue rules).
//!
//! A shard is behind a spin lock taken with `try_lock` only: a producer that finds it held
//! (another thread mapped to the same shard, or the stage taking a partial batch) goes the
//! span queue's way instead, so `submit` still never waits for a lock. The stage takes
//! partial batches that have waited an export interval, and every shard's spans on flush
//! and shutdown; it closes the shards first at shutdown, and a producer checks that under
//! the shard's lock, so no span is left behind in a shard.

use std::sync::atomic::{AtomicU64, AtomicUsize};

use spin::mutex::SpinMutex;
use tta_core::Span;

/// Shards per pipeline; threads map onto them by [`tta_core::thread_stripe`].
pub(crate) const SHARDS: usize = 16;

/// On cache lines of its own (two of them: adjacent lines are fetched together): shards
/// of threads on different cores must not share a line.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Shard {
    pub(crate) spans: SpinMutex<ShardSpans>,
    /// How many spans `spans` holds (written under the lock; read by `stats`).
    pub(crate) queued: AtomicUsize,
    /// When the shard's oldest span arrived, in nanoseconds since the pipeline started
    /// (0 while empty); the stage takes a partial batch once it has waited an export
    /// interval.
    pub(crate) since: AtomicU64,
}

/// A shard's spans: the batch being filled, and full batches waiting for room in the
/// workers' queue (oldest first).
#[derive(Default)]
pub(crate) struct ShardSpans {
    pub(crate) current: Vec<Span>,
    pub(crate) full: std::collections::VecDeque<Vec<Span>>,
    /// Spans in `full`.
    pub(crate) full_spans: usize,
}

impl ShardSpans {
    pub(crate) fn len(&self) -> usize {
        self.current.len() + self.full_spans
    }

    /// Every span, oldest first, leaving the shard empty.
    pub(crate) fn take_all(&mut self) -> Vec<Vec<Span>> {
        self.full_spans = 0;
        let mut all: Vec<Vec<Span>> = self.full.drain(..).collect();
        if !self.current.is_empty() {
            all.push(std::mem::take(&mut self.current));
        }
        all
    }
}

pub(crate) fn shards() -> Box<[Shard]> {
    (0..SHARDS).map(|_| Shard::default()).collect()
}
