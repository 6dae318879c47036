//! OpenTelemetry consistent probability sampling: rejection thresholds (`th`) and randomness
//! (`rv` or the trace id's low 56 bits).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tta_core::{MAX_THRESHOLD, RANDOMNESS_BITS, ThString, TraceId, format_th, parse_th};

use crate::SamplingError;

/// The smallest sampling probability OpenTelemetry can express: `2^-56`.
pub const MIN_PROBABILITY: f64 = 1.0 / MAX_THRESHOLD as f64;

/// Hex digits of precision [`Threshold::from_probability`] uses, as the OpenTelemetry
/// specification recommends.
pub const DEFAULT_PRECISION: u32 = 4;

/// Internal sentinel "threshold" that rejects every randomness value (`2^56`). It is never
/// exposed as a [`Threshold`]: `th` cannot express "never sample".
pub(crate) const NEVER: u64 = MAX_THRESHOLD;

fn below_2_56(what: &'static str, value: u64) -> Result<u64, SamplingError> {
    if value < MAX_THRESHOLD {
        Ok(value)
    } else {
        Err(SamplingError::OutOfRange { what, value })
    }
}

/// A 56-bit OpenTelemetry rejection threshold `T`: a trace with randomness `R` is kept iff
/// `R >= T`, so the sampling probability is `(2^56 - T) / 2^56`.
///
/// Its [`Display`](fmt::Display) form is the `th` value of the `ot` tracestate member: up to 14
/// lowercase hex digits with trailing zeros removed (`"0"` keeps everything).
///
/// ```
/// use tta_sampling::{Randomness, Threshold};
///
/// let t = Threshold::from_probability(0.01)?;          // 4 digits of precision by default
/// assert_eq!(t.to_string(), "fd70a");
/// assert_eq!(Threshold::from_probability_with_precision(0.01, 3)?.to_string(), "fd71");
/// assert_eq!(Threshold::parse("fd70a")?, t);
/// assert!((t.probability() - 0.01).abs() < 1e-6);
/// assert!((t.adjusted_count() - 100.0).abs() < 0.01);
/// assert!(t.keeps(Randomness::from_rv(0xffffffffffffff)?));
/// assert!(!t.keeps(Randomness::from_rv(0)?));
/// assert!(Threshold::from_probability(0.0).is_err());
/// # Ok::<(), tta_sampling::SamplingError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Threshold(u64);

impl Threshold {
    /// `th:0`: keeps every trace (probability 1, adjusted count 1).
    pub const ALWAYS: Self = Self(0);
    /// The largest threshold, `2^56 - 1`: probability `2^-56`.
    pub const MAX: Self = Self(MAX_THRESHOLD - 1);

    /// The threshold for probability `p` with [`DEFAULT_PRECISION`] (4) hex digits.
    ///
    /// Errors when `p` is NaN or outside `[2^-56, 1]`.
    pub fn from_probability(p: f64) -> Result<Self, SamplingError> {
        Self::from_probability_with_precision(p, DEFAULT_PRECISION)
    }

    /// The threshold for probability `p`, rounded to nearest at `digits` significant hex
    /// digits (1 to 14).
    ///
    /// As the OpenTelemetry specification's algorithm does, leading `f` digits do not count
    /// toward the precision: it is raised by `floor(-e / 4)` where `p = m * 2^e`,
    /// `0.5 <= m < 1`, and capped at the 14 digits a 56-bit threshold has. The arithmetic is
    /// exact (128-bit integers), so even `p = 2^-56` gives the threshold `ffffffffffffff`.
    /// A value that would round up to `2^56` is capped at the largest value of that precision.
    pub fn from_probability_with_precision(p: f64, digits: u32) -> Result<Self, SamplingError> {
        if !(1..=14).contains(&digits) {
            return Err(SamplingError::Precision(digits));
        }
        if !(MIN_PROBABILITY..=1.0).contains(&p) {
            return Err(SamplingError::Probability(p));
        }
        if p == 1.0 {
            return Ok(Self::ALWAYS);
        }
        let bits = p.to_bits();
        // p is a normal double in [2^-56, 1), so the biased exponent is in [967, 1022].
        let biased = ((bits >> 52) & 0x7ff) as u32;
        // frexp exponent e (p = m * 2^e, m in [0.5, 1)) is biased - 1022, in [-55, 0].
        let extra_digits = (1022 - biased) / 4;
        let precision = (digits + extra_digits).min(14);
        let mantissa = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
        // p * 2^108 = mantissa * 2^(biased - 1075 + 108); the shift is in [0, 55].
        let scaled_p = mantissa << (biased - 967);
        let scaled_rejection = (1u128 << 108) - scaled_p;
        let unit_shift = 108 - 4 * precision;
        let units = (scaled_rejection + (1u128 << (unit_shift - 1))) >> unit_shift;
        let units = units.min((1u128 << (4 * precision)) - 1);
        // units < 2^(4 * precision) <= 2^56, so the cast is lossless.
        Ok(Self((units as u64) << (56 - 4 * precision)))
    }

    /// Parses a `th` value: 1 to 14 lowercase hex digits, implicitly followed by zeros.
    pub fn parse(th: &str) -> Result<Self, SamplingError> {
        parse_th(th)
            .map(Self)
            .map_err(|e| SamplingError::text("th", th, e))
    }

    /// A threshold from its raw 56-bit value; values of `2^56` and above are clamped to
    /// [`Threshold::MAX`] (use [`try_from_raw`](Self::try_from_raw) to reject them).
    pub const fn from_raw(raw: u64) -> Self {
        if raw >= MAX_THRESHOLD {
            Self::MAX
        } else {
            Self(raw)
        }
    }

    /// A threshold from its raw value, rejecting values of `2^56` and above.
    pub fn try_from_raw(raw: u64) -> Result<Self, SamplingError> {
        below_2_56("threshold", raw).map(Self)
    }

    /// The raw 56-bit value `T` (what [`tta_core::Span::sampling_threshold`] holds).
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The sampling probability `(2^56 - T) / 2^56`.
    pub fn probability(self) -> f64 {
        (MAX_THRESHOLD - self.0) as f64 / MAX_THRESHOLD as f64
    }

    /// How many traces each kept trace represents: `1 / probability`.
    pub fn adjusted_count(self) -> f64 {
        MAX_THRESHOLD as f64 / (MAX_THRESHOLD - self.0) as f64
    }

    /// The consistent decision: keep iff `R >= T`.
    #[inline]
    pub fn keeps(self, randomness: Randomness) -> bool {
        randomness.0 >= self.0
    }

    /// The `th` text on the stack (no allocation).
    pub fn to_th(self) -> ThString {
        format_th(self.0)
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_th().as_str())
    }
}

impl fmt::Debug for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Threshold(th:{})", self.to_th())
    }
}

impl FromStr for Threshold {
    type Err = SamplingError;
    fn from_str(s: &str) -> Result<Self, SamplingError> {
        Self::parse(s)
    }
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.to_th().as_str())
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A 56-bit randomness value `R`, compared with a [`Threshold`].
///
/// It comes from a W3C trace id (its 56 least-significant bits, as Trace Context Level 2
/// specifies), from an explicit `rv` value, or from any other id (string or bytes) through
/// xxh3: the top 56 bits of the 64-bit hash.
///
/// ```
/// use tta_sampling::{Randomness, TraceId};
///
/// let id = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736")?;
/// assert_eq!(Randomness::from_trace_id(id).value(), 0xce929d0e0e4736);
/// assert_eq!(Randomness::parse_rv("0123456789abcd")?.value(), 0x0123456789abcd);
/// assert!(Randomness::parse_rv("123").is_err());
/// // Any string id maps to the same randomness everywhere.
/// assert_eq!(Randomness::from_str_id("trace-123"), Randomness::from_str_id("trace-123"));
/// assert_eq!(Randomness::from_rv(0xab)?.to_string(), "000000000000ab");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Randomness(u64);

impl Randomness {
    /// The trace id's 56 least-significant bits.
    #[inline]
    pub fn from_trace_id(id: TraceId) -> Self {
        Self(id.randomness())
    }

    /// An explicit randomness value (`rv`); errors when it does not fit in 56 bits.
    pub fn from_rv(rv: u64) -> Result<Self, SamplingError> {
        below_2_56("randomness", rv).map(Self)
    }

    /// Parses an `rv` value: exactly 14 lowercase hex digits.
    pub fn parse_rv(rv: &str) -> Result<Self, SamplingError> {
        if rv.len() != 14 {
            return Err(SamplingError::text(
                "rv",
                rv,
                format_args!("must be exactly 14 hex digits, got {} bytes", rv.len()),
            ));
        }
        // With exactly 14 digits `th` parsing adds no trailing zeros: the value is the rv.
        parse_th(rv)
            .map(Self)
            .map_err(|_| SamplingError::text("rv", rv, "must be lowercase hex"))
    }

    /// Randomness of any byte-string id: the top 56 bits of its xxh3-64 hash.
    #[inline]
    pub fn from_bytes_id(id: &[u8]) -> Self {
        Self(twox_hash::XxHash3_64::oneshot(id) >> (64 - RANDOMNESS_BITS))
    }

    /// Randomness of a string id (such as a correlation id `"trace-123"`): the top 56 bits of
    /// the xxh3-64 hash of its UTF-8 bytes.
    #[inline]
    pub fn from_str_id(id: &str) -> Self {
        Self::from_bytes_id(id.as_bytes())
    }

    /// The 56-bit value.
    pub const fn value(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Randomness {
    /// The `rv` form: 14 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:014x}", self.0)
    }
}

impl fmt::Debug for Randomness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Randomness(rv:{:014x})", self.0)
    }
}

/// Anything a sampler can decide on: a [`TraceId`], a string or byte-string id, or an
/// explicit [`Randomness`]. References to any of these work too.
///
/// ```
/// use tta_sampling::{Randomness, SamplingKey, TraceId};
/// let id = TraceId::random();
/// // `TraceId` also has an inherent `randomness() -> u64`; the trait gives the typed value.
/// assert_eq!(SamplingKey::randomness(&id), Randomness::from_trace_id(id));
/// assert_eq!("trace-1".randomness(), String::from("trace-1").randomness());
/// assert_eq!(b"trace-1".randomness(), "trace-1".randomness());
/// ```
pub trait SamplingKey {
    /// The 56-bit randomness the consistent decision compares with the threshold.
    fn randomness(&self) -> Randomness;
}

impl SamplingKey for TraceId {
    #[inline]
    fn randomness(&self) -> Randomness {
        Randomness::from_trace_id(*self)
    }
}

impl SamplingKey for Randomness {
    #[inline]
    fn randomness(&self) -> Randomness {
        *self
    }
}

impl SamplingKey for str {
    #[inline]
    fn randomness(&self) -> Randomness {
        Randomness::from_str_id(self)
    }
}

impl SamplingKey for String {
    #[inline]
    fn randomness(&self) -> Randomness {
        Randomness::from_str_id(self)
    }
}

impl SamplingKey for [u8] {
    #[inline]
    fn randomness(&self) -> Randomness {
        Randomness::from_bytes_id(self)
    }
}

impl<const N: usize> SamplingKey for [u8; N] {
    #[inline]
    fn randomness(&self) -> Randomness {
        Randomness::from_bytes_id(self)
    }
}

impl SamplingKey for Vec<u8> {
    #[inline]
    fn randomness(&self) -> Randomness {
        Randomness::from_bytes_id(self)
    }
}

impl<T: SamplingKey + ?Sized> SamplingKey for &T {
    #[inline]
    fn randomness(&self) -> Randomness {
        (**self).randomness()
    }
}

/// The internal threshold for a rate in `[0, 1]`: `NEVER` below `2^-56` (including 0 and NaN),
/// otherwise the default-precision threshold.
pub(crate) fn threshold_for_rate(rate: f64) -> u64 {
    if rate >= 1.0 {
        0
    } else if rate >= MIN_PROBABILITY {
        Threshold::from_probability(rate).map_or(NEVER, Threshold::raw)
    } else if rate > 0.0 {
        Threshold::MAX.raw()
    } else {
        NEVER
    }
}

/// The threshold for `rate` whose effective probability stays within `[min, max]`: default
/// precision first, more digits when rounding would cross a bound.
pub(crate) fn bounded_threshold(rate: f64, min: f64, max: f64) -> u64 {
    let rate = rate.clamp(min, max);
    if rate < MIN_PROBABILITY {
        return threshold_for_rate(rate);
    }
    let within = |t: u64| {
        let p = Threshold(t).probability();
        p >= min && p <= max
    };
    for digits in DEFAULT_PRECISION..=14 {
        if let Ok(t) = Threshold::from_probability_with_precision(rate, digits)
            && within(t.0)
        {
            return t.0;
        }
    }
    // At 14 digits the threshold is within one unit of exact; step one unit inward.
    let t = Threshold::from_probability_with_precision(rate, 14).map_or(NEVER, Threshold::raw);
    if Threshold(t).probability() < min {
        t.saturating_sub(1)
    } else {
        (t + 1).min(MAX_THRESHOLD - 1)
    }
}

#[cfg(test)]
#[path = "threshold/tests.rs"]
mod tests;
