use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How many keys [`CardinalityStats::top_offenders`] lists.
pub const TOP_OFFENDERS: usize = 5;

/// The budget share at which the guide says to alert (80% of `max_total_label_values`).
pub const BUDGET_ALERT_RATIO: f64 = 0.8;

/// A copy of a limiter's counters, from [`CardinalityLimiter::stats`](crate::CardinalityLimiter::stats).
///
/// The first three fields are the guide's `get_cardinality_stats()` keys.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CardinalityStats {
    /// Distinct values kept as-is over all keys (what `max_total_label_values` budgets).
    pub total_labels: usize,
    /// Keys that had at least one value coarsened (hashed or overflowed), sorted.
    pub dropped_labels: Vec<String>,
    /// Distinct values kept per key.
    pub label_cardinality: BTreeMap<String, usize>,
    /// Per dropped key: how many admissions were coarsened and how many distinct values that
    /// was (estimated).
    pub overflow: BTreeMap<String, KeyOverflow>,
    /// The worst keys first (by estimated distinct values past the limit), at most
    /// [`TOP_OFFENDERS`].
    pub top_offenders: Vec<KeyOverflow>,
    /// The per-key limit in force.
    pub max_label_values: usize,
    /// The process-wide budget in force.
    pub max_total_label_values: usize,
    /// `total_labels / max_total_label_values` (alert at [`BUDGET_ALERT_RATIO`]).
    pub budget_usage: f64,
    /// Label keys tracked.
    pub tracked_keys: usize,
    /// The key limit in force.
    pub max_label_keys: usize,
    /// Admissions for keys beyond `max_label_keys` (always coarsened).
    pub untracked_key_admissions: u64,
    /// Admissions whose value was longer than `max_value_len` and got truncated.
    pub truncated_values: u64,
}

impl CardinalityStats {
    /// Whether kept values reached [`BUDGET_ALERT_RATIO`] of the budget.
    ///
    /// ```
    /// use tta_cardinality::CardinalityStats;
    /// let stats = CardinalityStats { budget_usage: 0.85, ..Default::default() };
    /// assert!(stats.approaching_budget());
    /// ```
    pub fn approaching_budget(&self) -> bool {
        self.budget_usage >= BUDGET_ALERT_RATIO
    }
}

/// How badly one key went past its limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyOverflow {
    /// The label key.
    pub key: String,
    /// Admissions that were hashed or overflowed.
    pub overflowed_admissions: u64,
    /// Of those, how many were refused because the process-wide budget was spent (the rest
    /// hit the per-key limit).
    pub budget_overflowed_admissions: u64,
    /// Estimated distinct values among them (HyperLogLog, about 6.5% standard error).
    pub distinct_overflow_estimate: u64,
}
