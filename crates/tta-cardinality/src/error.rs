use thiserror::Error;

/// What went wrong in this crate: only invalid limits can fail; admission never does.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CardinalityError {
    /// A field of [`CardinalityLimits`](crate::CardinalityLimits) is out of range.
    #[error("invalid cardinality limit `{field}`: {reason}")]
    InvalidLimit {
        /// The field name, as in the configuration (`max_label_values`, ...).
        field: &'static str,
        /// Why it is invalid, with the accepted range.
        reason: String,
    },
}
