//! Per-label admission with limits, stable hash buckets and overflow, so metric cardinality
//! stays bounded without losing totals.
//!
//! Use this crate directly to put limits in front of your own metrics code or of any
//! `metrics`-crate recorder (feature `metrics`). Services that want the whole control plane
//! (collector, exporters, health, config) depend on the `tta-observability` facade instead,
//! which re-exports this crate as `tta_observability::cardinality`.
//!
//! A [`CardinalityLimiter`] keeps, per label key, at most
//! [`max_label_values`](CardinalityLimits::max_label_values) distinct values as-is. Past that,
//! a value becomes a stable bucket (`hash:` + hex, one of
//! [`hash_buckets`](CardinalityLimits::hash_buckets), keyed by a per-limiter secret so raw ids
//! cannot be guessed from their bucket) or the single [`OVERFLOW_VALUE`]. Increments still
//! land somewhere, so totals are never lost, only coarsened. A process-wide budget
//! ([`max_total_label_values`](CardinalityLimits::max_total_label_values)) caps kept values
//! over all keys, and the number of keys is capped too, so memory stays bounded whatever
//! arrives.
//!
//! ```
//! use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
//!
//! let limiter = CardinalityLimiter::new(CardinalityLimits { max_label_values: 100, ..Default::default() })?;
//! for i in 0..10_000 {
//!     let value = limiter.admit("user_id", &format!("user-{i}"));
//!     assert!(i >= 100 || value == format!("user-{i}").as_str());
//!     assert!(i < 100 || value.starts_with("hash:"));
//! }
//! let stats = limiter.stats();
//! assert_eq!(stats.label_cardinality["user_id"], 100);
//! assert_eq!(stats.dropped_labels, vec!["user_id".to_string()]);
//! let estimate = stats.overflow["user_id"].distinct_overflow_estimate as f64;
//! assert!((estimate - 9_900.0).abs() < 9_900.0 * 0.5); // a sketch, not an exact count
//! # Ok::<(), tta_cardinality::CardinalityError>(())
//! ```
//!
//! # Performance and guarantees
//!
//! - Admitting a value kept before takes no lock and allocates nothing: keys and values live
//!   in an [insert-only table](map::InsertOnlyMap) read with atomic loads.
//! - The over-limit path takes no lock either; only a value about to be kept takes its key's
//!   insert lock, once. Concurrent first admissions never exceed the per-key limit (checked
//!   under that lock) nor the budget (reserved with a compare-and-swap).
//! - Past the limit a value usually costs no table probe: a 128-byte filter per key tells
//!   most never-kept values apart in one load. Bucket strings for up to 256 buckets are
//!   static and their hashes computed once per limiter, so [`Admitted::label_hash`] gives
//!   callers the admitted string's hash without hashing it.
//! - Memory: about 45 bytes of table per kept value (an arena slot plus index words kept at
//!   most 3/4 full, earlier index generations included) plus the value string, 256 bytes of
//!   sketch and 128 bytes of filter per key, and nothing per value past the limit.
//! - Callers that hash labels for their own tables can hash each string once with
//!   [`CardinalityLimiter::label_hash`] and admit with
//!   [`CardinalityLimiter::admit_hashed`], as `tta-metrics` does.
//!
//! # What it does not do
//!
//! - Kept values are never evicted: a key that filled its limit with early values keeps
//!   them for the limiter's lifetime (raise the limit with
//!   [`set_limits`](CardinalityLimiter::set_limits), or build a new limiter).
//! - The bucket hash (seeded xxh3) hides raw values from casual inspection; it is not a
//!   cryptographic MAC.
//! - Buckets differ between processes unless they share a key
//!   ([`CardinalityLimiter::with_hash_key`]).
//!
//! # Features
//!
//! - `metrics` (off by default): [`LimitedRecorder`], a `metrics` 0.24 `Recorder` wrapper that
//!   applies a limiter to every label of an inner recorder.

mod error;
mod limiter;
mod limits;
pub mod map;
#[cfg(feature = "metrics")]
mod recorder;
mod sketch;
mod stats;

pub use error::CardinalityError;
pub use limiter::{
    Admission, Admitted, CardinalityLimiter, HASH_PREFIX, KeyId, LabelHash, OVERFLOW_VALUE,
};
pub use limits::{
    CardinalityLimits, MAX_HASH_BUCKETS, MAX_LABEL_KEYS_CAP, MAX_LABEL_VALUES_CAP,
    MAX_TOTAL_LABEL_VALUES_CAP, MAX_VALUE_LEN_CAP,
};
#[cfg(feature = "metrics")]
pub use recorder::LimitedRecorder;
pub use stats::{BUDGET_ALERT_RATIO, CardinalityStats, KeyOverflow, TOP_OFFENDERS};
