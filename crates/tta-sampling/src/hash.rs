//! A fast, per-instance seeded hasher for trace ids (the buffer's index and decision cache).
//!
//! Trace ids can come from remote callers, so the hash is seeded from the standard library's
//! random `RandomState` to keep adversarial ids from colliding on purpose; it is a
//! multiply-fold mix, far cheaper than SipHash for 16-byte keys.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use tta_core::TraceId;

const K: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// Builds [`IdHasher`]s sharing one random seed.
#[derive(Clone, Debug)]
pub(crate) struct IdHashBuilder {
    seed: u64,
}

impl IdHashBuilder {
    pub(crate) fn new() -> Self {
        Self {
            seed: RandomState::new().hash_one(K) | 1,
        }
    }

    /// A 64-bit hash of a trace id.
    #[inline]
    pub(crate) fn hash_id(&self, id: &TraceId) -> u64 {
        let v = id.to_u128();
        let a = fold_mul((v as u64) ^ self.seed, K);
        fold_mul(a ^ ((v >> 64) as u64), self.seed ^ K)
    }
}

impl BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher { state: self.seed }
    }
}

/// See [`IdHashBuilder`].
pub(crate) struct IdHasher {
    state: u64,
}

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.state = fold_mul(self.state ^ u64::from_le_bytes(b), K);
        }
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.state = fold_mul(self.state ^ i as u64, K);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}
