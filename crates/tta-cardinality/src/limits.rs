use serde::{Deserialize, Serialize};

use crate::CardinalityError;

/// Upper bound accepted for [`CardinalityLimits::max_label_values`].
pub const MAX_LABEL_VALUES_CAP: usize = 1_000_000;
/// Upper bound accepted for [`CardinalityLimits::max_total_label_values`].
pub const MAX_TOTAL_LABEL_VALUES_CAP: usize = 10_000_000;
/// Upper bound accepted for [`CardinalityLimits::hash_buckets`] (buckets print as at most four
/// hex digits).
pub const MAX_HASH_BUCKETS: usize = 65_536;
/// Upper bound accepted for [`CardinalityLimits::max_value_len`].
pub const MAX_VALUE_LEN_CAP: usize = 65_536;
/// Upper bound accepted for [`CardinalityLimits::max_label_keys`].
pub const MAX_LABEL_KEYS_CAP: usize = 65_536;

/// How many distinct label values a [`CardinalityLimiter`](crate::CardinalityLimiter) keeps,
/// and what it does with the rest.
///
/// Defaults follow the guide: 100 values per key, hashing past the limit, a process-wide budget
/// of 1000 kept values (the guide alerts at 80% of it).
///
/// ```
/// use tta_cardinality::CardinalityLimits;
/// let limits = CardinalityLimits { max_label_values: 200, ..Default::default() };
/// assert!(limits.validate().is_ok());
/// assert!(CardinalityLimits { hash_buckets: 0, ..limits }.validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CardinalityLimits {
    /// Distinct values kept as-is per label key (default 100).
    pub max_label_values: usize,
    /// Past the limit, map a value to one of [`hash_buckets`](Self::hash_buckets) stable
    /// buckets (`hash:` + hex) when `true` (default), or to the single
    /// [`OVERFLOW_VALUE`](crate::OVERFLOW_VALUE) when `false`.
    pub hash_high_cardinality: bool,
    /// Number of hash buckets per key past the limit (default 16, at most 65536).
    pub hash_buckets: usize,
    /// Values longer than this many bytes are truncated on a character boundary (default 128).
    pub max_value_len: usize,
    /// Process-wide budget of kept values over all keys (default 1000). When it is spent, new
    /// values of every key are coarsened as if their key were at its limit.
    pub max_total_label_values: usize,
    /// Distinct label keys tracked (default 64). Values of further keys are always coarsened,
    /// so the number of keys cannot grow memory without bound either.
    pub max_label_keys: usize,
}

impl Default for CardinalityLimits {
    fn default() -> Self {
        Self {
            max_label_values: 100,
            hash_high_cardinality: true,
            hash_buckets: 16,
            max_value_len: 128,
            max_total_label_values: 1000,
            max_label_keys: 64,
        }
    }
}

impl CardinalityLimits {
    /// Checks every field and returns the first one out of range.
    ///
    /// ```
    /// use tta_cardinality::{CardinalityError, CardinalityLimits};
    /// let err = CardinalityLimits { max_label_values: 0, ..Default::default() }.validate();
    /// assert!(matches!(err, Err(CardinalityError::InvalidLimit { field: "max_label_values", .. })));
    /// ```
    pub fn validate(&self) -> Result<(), CardinalityError> {
        check(
            "max_label_values",
            self.max_label_values,
            MAX_LABEL_VALUES_CAP,
        )?;
        check("hash_buckets", self.hash_buckets, MAX_HASH_BUCKETS)?;
        check("max_value_len", self.max_value_len, MAX_VALUE_LEN_CAP)?;
        check(
            "max_total_label_values",
            self.max_total_label_values,
            MAX_TOTAL_LABEL_VALUES_CAP,
        )?;
        check("max_label_keys", self.max_label_keys, MAX_LABEL_KEYS_CAP)?;
        Ok(())
    }
}

fn check(field: &'static str, value: usize, max: usize) -> Result<(), CardinalityError> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(CardinalityError::InvalidLimit {
            field,
            reason: format!("must be between 1 and {max}, got {value}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_guide_and_validate() {
        let l = CardinalityLimits::default();
        assert_eq!(
            (
                l.max_label_values,
                l.hash_high_cardinality,
                l.max_total_label_values
            ),
            (100, true, 1000)
        );
        assert_eq!(l.validate(), Ok(()));
    }

    #[test]
    fn every_field_is_range_checked() {
        let base = CardinalityLimits::default();
        let cases = [
            (
                "max_label_values",
                CardinalityLimits {
                    max_label_values: MAX_LABEL_VALUES_CAP + 1,
                    ..base.clone()
                },
            ),
            (
                "hash_buckets",
                CardinalityLimits {
                    hash_buckets: MAX_HASH_BUCKETS + 1,
                    ..base.clone()
                },
            ),
            (
                "max_value_len",
                CardinalityLimits {
                    max_value_len: 0,
                    ..base.clone()
                },
            ),
            (
                "max_total_label_values",
                CardinalityLimits {
                    max_total_label_values: 0,
                    ..base.clone()
                },
            ),
            (
                "max_label_keys",
                CardinalityLimits {
                    max_label_keys: 0,
                    ..base.clone()
                },
            ),
        ];
        for (name, limits) in cases {
            match limits.validate() {
                Err(CardinalityError::InvalidLimit { field, reason }) => {
                    assert_eq!(field, name);
                    assert!(reason.contains("between 1 and"), "{reason}");
                }
                other => panic!("{name}: expected an error, got {other:?}"),
            }
        }
    }
}
