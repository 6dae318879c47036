use thiserror::Error;

/// Why an id or a piece of trace context could not be parsed.
///
/// Each variant names the part that was wrong, so an HTTP server can log exactly which
/// header field a client got wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A hex id had the wrong number of characters.
    #[error("{what} must be {expected} hex characters, got {got}")]
    Length {
        /// What was being parsed (`trace id`, `span id`, `trace flags`, ...).
        what: &'static str,
        /// Characters expected.
        expected: usize,
        /// Characters found.
        got: usize,
    },
    /// A character that is not a hex digit (or not a lowercase one where lowercase is required).
    #[error("{what} has an invalid character {found:?} at offset {offset}")]
    InvalidChar {
        /// What was being parsed.
        what: &'static str,
        /// The offending character.
        found: char,
        /// Its byte offset within the field.
        offset: usize,
    },
    /// An id made only of zero bytes, which W3C Trace Context forbids.
    #[error("{what} must not be all zeros")]
    AllZero {
        /// What was being parsed.
        what: &'static str,
    },
    /// The `traceparent` header is not `version-traceid-parentid-flags`.
    #[error("traceparent: {0}")]
    TraceParent(&'static str),
    /// A `tracestate` list member is malformed.
    #[error("tracestate member {index}: {reason}")]
    TraceStateMember {
        /// Zero-based position of the member in the header.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More than 32 list members.
    #[error("tracestate has {0} members, at most 32 are allowed")]
    TooManyMembers(usize),
    /// The same key appears twice.
    #[error("tracestate key {0:?} appears more than once")]
    DuplicateKey(String),
    /// The OpenTelemetry `ot` member is malformed.
    #[error("tracestate ot member: {0}")]
    OtMember(&'static str),
}
