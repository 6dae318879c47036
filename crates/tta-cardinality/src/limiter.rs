use std::collections::BTreeMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use twox_hash::XxHash3_64;

use crate::map::{Insert, InsertOnlyMap};
use crate::sketch::Sketch;
use crate::stats::{CardinalityStats, KeyOverflow, TOP_OFFENDERS};
use crate::{CardinalityError, CardinalityLimits};

/// The value recorded instead of the real one past the limit when hashing is off.
pub const OVERFLOW_VALUE: &str = "__overflow__";
/// Prefix of hash bucket values (`hash:` + hex).
pub const HASH_PREFIX: &str = "hash:";

/// `hash:` plus up to four hex digits.
const BUCKET_CAP: usize = 9;
/// Bucket counts up to this many (one or two hex digits) have their strings in a static table
/// and their hashes computed once per limiter.
const STATIC_BUCKETS: usize = 256;

/// `hash:0hash:1...hash:f` (`digits` = 1) or `hash:00...hash:ff` (`digits` = 2).
const fn bucket_strings<const N: usize>(digits: usize) -> [u8; N] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let width = HASH_PREFIX.len() + digits;
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N / width {
        let mut p = 0;
        while p < HASH_PREFIX.len() {
            out[i * width + p] = HASH_PREFIX.as_bytes()[p];
            p += 1;
        }
        let mut d = 0;
        while d < digits {
            let shift = 4 * (digits - 1 - d);
            out[i * width + HASH_PREFIX.len() + d] = HEX[(i >> shift) & 0xf];
            d += 1;
        }
        i += 1;
    }
    out
}

const ONE_DIGIT: [u8; 16 * 6] = bucket_strings(1);
const TWO_DIGITS: [u8; 256 * 7] = bucket_strings(2);
/// Every one-digit bucket value, 6 bytes each.
static ONE_DIGIT_BUCKETS: &str = match std::str::from_utf8(&ONE_DIGIT) {
    Ok(s) => s,
    Err(_) => panic!("bucket strings are ASCII"),
};
/// Every two-digit bucket value, 7 bytes each.
static TWO_DIGIT_BUCKETS: &str = match std::str::from_utf8(&TWO_DIGITS) {
    Ok(s) => s,
    Err(_) => panic!("bucket strings are ASCII"),
};

/// The static string of bucket `index` printed with `digits` (1 or 2) hex digits.
#[inline]
fn static_bucket(index: usize, digits: usize) -> &'static str {
    let (table, width) = if digits == 1 {
        (ONE_DIGIT_BUCKETS, 6)
    } else {
        (TWO_DIGIT_BUCKETS, 7)
    };
    table
        .get(index * width..(index + 1) * width)
        .unwrap_or(HASH_PREFIX)
}
/// First chunk size of a key's value table.
const INITIAL_VALUES: usize = 16;
/// First chunk size of the key table.
const INITIAL_KEYS: usize = 8;

/// Per-key admission limits with a process-wide budget; see the crate docs.
///
/// All methods take `&self`; share it with an `Arc`. Admitting a value seen before takes no
/// lock and allocates nothing; a first admission takes the key's insert lock once.
pub struct CardinalityLimiter {
    limits: LiveLimits,
    seed: u64,
    /// Keyed hashes of the static bucket strings: 16 one-digit ones, then 256 two-digit ones.
    bucket_hashes: Box<[u64]>,
    overflow_hash: u64,
    keys: InsertOnlyMap<Box<KeyState>>,
    total_kept: AtomicUsize,
    untracked_key_admissions: AtomicU64,
    truncated_values: AtomicU64,
}

impl fmt::Debug for CardinalityLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardinalityLimiter")
            .field("limits", &self.limits())
            .field("total_kept", &self.total_kept.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Limits held in atomics so they can change while admissions run.
struct LiveLimits {
    max_label_values: AtomicUsize,
    hash_high_cardinality: AtomicBool,
    hash_buckets: AtomicUsize,
    max_value_len: AtomicUsize,
    max_total_label_values: AtomicUsize,
    max_label_keys: AtomicUsize,
}

impl LiveLimits {
    fn new(l: &CardinalityLimits) -> Self {
        Self {
            max_label_values: AtomicUsize::new(l.max_label_values),
            hash_high_cardinality: AtomicBool::new(l.hash_high_cardinality),
            hash_buckets: AtomicUsize::new(l.hash_buckets),
            max_value_len: AtomicUsize::new(l.max_value_len),
            max_total_label_values: AtomicUsize::new(l.max_total_label_values),
            max_label_keys: AtomicUsize::new(l.max_label_keys),
        }
    }

    fn store(&self, l: &CardinalityLimits) {
        self.max_label_values
            .store(l.max_label_values, Ordering::Relaxed);
        self.hash_high_cardinality
            .store(l.hash_high_cardinality, Ordering::Relaxed);
        self.hash_buckets.store(l.hash_buckets, Ordering::Relaxed);
        self.max_value_len.store(l.max_value_len, Ordering::Relaxed);
        self.max_total_label_values
            .store(l.max_total_label_values, Ordering::Relaxed);
        self.max_label_keys
            .store(l.max_label_keys, Ordering::Relaxed);
    }
}

/// Words of a key's kept-value filter (1024 bits).
const FILTER_WORDS: usize = 16;

/// A one-word-per-lookup Bloom filter of a key's kept values, so a value that was never kept
/// (every value past the limit) is told apart without probing the value table; about 5% of
/// such values still probe (false positives), never the other way round.
struct KeptFilter([AtomicU64; FILTER_WORDS]);

impl KeptFilter {
    /// Word and two bits of a value hash (low bits: the table index uses the high ones).
    #[inline]
    fn locate(vh: u64) -> (usize, u64) {
        let word = (vh as usize) % FILTER_WORDS;
        let bits = (1u64 << ((vh >> 8) & 63)) | (1u64 << ((vh >> 14) & 63));
        (word, bits)
    }

    /// Marks a value about to be kept (before it is published in the table, so a thread
    /// that has seen it kept finds its bits set from then on).
    fn insert(&self, vh: u64) {
        let (word, bits) = Self::locate(vh);
        self.0[word].fetch_or(bits, Ordering::Release);
    }

    /// `false` when the value was certainly never kept.
    #[inline]
    fn may_contain(&self, vh: u64) -> bool {
        let (word, bits) = Self::locate(vh);
        self.0[word].load(Ordering::Acquire) & bits == bits
    }
}

struct KeyState {
    name: Box<str>,
    values: InsertOnlyMap<Arc<str>>,
    kept: KeptFilter,
    overflowed: AtomicU64,
    budget_overflowed: AtomicU64,
    sketch: Sketch,
}

impl KeyState {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            values: InsertOnlyMap::new(INITIAL_VALUES),
            kept: KeptFilter(std::array::from_fn(|_| AtomicU64::new(0))),
            overflowed: AtomicU64::new(0),
            budget_overflowed: AtomicU64::new(0),
            sketch: Sketch::new(),
        }
    }
}

/// A label string hashed with a limiter's key, from [`CardinalityLimiter::label_hash`].
///
/// Hash a key or value once and pass it to [`CardinalityLimiter::admit_hashed`]; the raw
/// number ([`get`](Self::get)) can key the caller's own tables too.
///
/// `LabelHash::default()` (zero) is a placeholder, not the hash of any particular string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LabelHash(u64);

impl LabelHash {
    /// The 64-bit hash.
    #[inline]
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A label key the limiter tracks, from [`CardinalityLimiter::key_id`]; valid for the
/// limiter that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(usize);

/// How a value was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Admission {
    /// Recorded as-is (possibly truncated).
    Kept,
    /// Past the limit: replaced by a `hash:` bucket.
    Hashed,
    /// Past the limit: replaced by [`OVERFLOW_VALUE`].
    Overflowed,
}

/// The value to record for a label, as returned by [`CardinalityLimiter::admit`].
///
/// It borrows the limiter (kept values point into its table), is `Copy`, and reads as a string
/// through `AsRef<str>`, `Deref` and `Display`. Use [`to_shared`](Self::to_shared) to keep it
/// beyond the borrow.
#[derive(Clone, Copy)]
pub struct Admitted<'a> {
    repr: Repr<'a>,
    /// The limiter's keyed hash of the string.
    hash: u64,
}

#[derive(Clone, Copy)]
enum Repr<'a> {
    /// A kept value and its id in its key's table (see [`Admitted::kept_id`]).
    Kept(&'a Arc<str>, u32),
    /// A bucket of at most [`STATIC_BUCKETS`] (a static string), and its index.
    StaticBucket(&'static str, u16),
    /// A bucket with three or four hex digits.
    Bucket {
        buf: [u8; BUCKET_CAP],
        len: u8,
    },
    Overflow,
}

impl<'a> Admitted<'a> {
    /// The value as a string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.repr {
            Repr::Kept(s, _) => s,
            Repr::StaticBucket(s, _) => s,
            Repr::Bucket { buf, len } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or(HASH_PREFIX)
            }
            Repr::Overflow => OVERFLOW_VALUE,
        }
    }

    /// Whether the value was kept, hashed or overflowed.
    pub fn admission(&self) -> Admission {
        match self.repr {
            Repr::Kept(..) => Admission::Kept,
            Repr::StaticBucket(..) | Repr::Bucket { .. } => Admission::Hashed,
            Repr::Overflow => Admission::Overflowed,
        }
    }

    /// Whether the value is recorded as-is (possibly truncated).
    pub fn is_kept(&self) -> bool {
        matches!(self.repr, Repr::Kept(..))
    }

    /// For a kept value, its id: the values a key keeps are numbered from 0 in the order
    /// they were first kept, an id never changes, and
    /// [`CardinalityLimiter::kept_value`] gives the value back. Callers can keep what they
    /// hold per value in an array indexed by it instead of a table keyed by the string.
    ///
    /// ```
    /// use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
    /// let limits = CardinalityLimits { max_label_values: 2, hash_buckets: 16, ..Default::default() };
    /// let limiter = CardinalityLimiter::new(limits)?;
    /// assert_eq!(limiter.admit("route", "/a").kept_id(), Some(0));
    /// assert_eq!(limiter.admit("route", "/b").kept_id(), Some(1));
    /// assert_eq!(limiter.admit("route", "/a").kept_id(), Some(0));
    /// assert_eq!(limiter.admit("route", "/c").kept_id(), None); // past the limit: a bucket
    /// let route = limiter.key_id("route").expect("a tracked key");
    /// assert_eq!(limiter.kept_value(route, 1).as_deref(), Some("/b"));
    /// # Ok::<(), tta_cardinality::CardinalityError>(())
    /// ```
    #[inline]
    pub fn kept_id(&self) -> Option<usize> {
        match self.repr {
            Repr::Kept(_, id) => Some(id as usize),
            _ => None,
        }
    }

    /// For a `hash:` bucket of a limiter with at most 256 buckets, the bucket's index: the
    /// same index and [`as_str`](Self::as_str) length always name the same bucket string, so
    /// callers can cache what they keep per bucket in a small array.
    ///
    /// ```
    /// use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
    /// let limits = CardinalityLimits { max_label_values: 1, ..Default::default() };
    /// let limiter = CardinalityLimiter::new(limits)?;
    /// assert_eq!(limiter.admit("user_id", "kept").bucket_index(), None);
    /// let hashed = limiter.admit("user_id", "hashed");
    /// let i = hashed.bucket_index().expect("a bucket");
    /// assert_eq!(hashed.as_str(), format!("hash:{i:x}"));
    /// # Ok::<(), tta_cardinality::CardinalityError>(())
    /// ```
    #[inline]
    pub fn bucket_index(&self) -> Option<usize> {
        match self.repr {
            Repr::StaticBucket(_, i) => Some(usize::from(i)),
            _ => None,
        }
    }

    /// The limiter's keyed hash of [`as_str`](Self::as_str), as
    /// [`label_hash`](CardinalityLimiter::label_hash) would compute it; known without hashing
    /// again (kept values reuse the value's hash, bucket hashes are computed once).
    ///
    /// ```
    /// use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
    /// let limits = CardinalityLimits { max_label_values: 1, ..Default::default() };
    /// let limiter = CardinalityLimiter::new(limits)?;
    /// for v in ["kept", "hashed"] {
    ///     let a = limiter.admit("user_id", v);
    ///     assert_eq!(a.label_hash(), limiter.label_hash(&a));
    /// }
    /// # Ok::<(), tta_cardinality::CardinalityError>(())
    /// ```
    #[inline]
    pub fn label_hash(&self) -> LabelHash {
        LabelHash(self.hash)
    }

    /// An owned copy; for kept values this clones the limiter's `Arc` (no allocation).
    pub fn to_shared(&self) -> Arc<str> {
        match self.repr {
            Repr::Kept(s, _) => Arc::clone(s),
            _ => Arc::from(self.as_str()),
        }
    }

    /// Bucket `index` of `buckets`, printed with [`hex_digits`]`(buckets)` digits, and its
    /// hash (computed here unless `static_hash` has it).
    fn bucket(index: usize, buckets: usize, hash: impl FnOnce(&str) -> u64) -> Self {
        let digits = hex_digits(buckets);
        if digits <= 2 {
            let s = static_bucket(index, digits);
            return Self {
                repr: Repr::StaticBucket(s, index as u16),
                hash: hash(s),
            };
        }
        let mut buf = [0u8; BUCKET_CAP];
        buf[..HASH_PREFIX.len()].copy_from_slice(HASH_PREFIX.as_bytes());
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for d in 0..digits {
            let shift = 4 * (digits - 1 - d);
            buf[HASH_PREFIX.len() + d] = HEX[(index >> shift) & 0xf];
        }
        let mut a = Self {
            repr: Repr::Bucket {
                buf,
                len: (HASH_PREFIX.len() + digits) as u8,
            },
            hash: 0,
        };
        a.hash = hash(a.as_str());
        a
    }
}

/// Hex digits needed to print every index below `buckets` (at least one, at most four).
fn hex_digits(buckets: usize) -> usize {
    let max = buckets.saturating_sub(1).max(1);
    let bits = usize::BITS - max.leading_zeros();
    (bits as usize).div_ceil(4).clamp(1, 4)
}

impl AsRef<str> for Admitted<'_> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::ops::Deref for Admitted<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Admitted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Admitted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Admitted")
            .field(&self.admission())
            .field(&self.as_str())
            .finish()
    }
}

impl PartialEq for Admitted<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Admitted<'_> {}

impl PartialEq<str> for Admitted<'_> {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Admitted<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
#[inline]
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl CardinalityLimiter {
    /// A limiter with these limits and a random per-limiter hash key, so bucket membership
    /// cannot be predicted from outside the process.
    ///
    /// Invalid limits are rejected with the field that is wrong.
    ///
    /// ```
    /// use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
    /// let limiter = CardinalityLimiter::new(CardinalityLimits::default())?;
    /// assert_eq!(limiter.admit("route", "/api"), "/api");
    /// # Ok::<(), tta_cardinality::CardinalityError>(())
    /// ```
    pub fn new(limits: CardinalityLimits) -> Result<Self, CardinalityError> {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self::with_hash_key(limits, seed)
    }

    /// A limiter with a fixed hash key: buckets are the same across restarts and instances
    /// that share the key (and in tests). Keep the key secret if raw values are sensitive.
    pub fn with_hash_key(limits: CardinalityLimits, key: u64) -> Result<Self, CardinalityError> {
        limits.validate()?;
        let hash = |s: &str| XxHash3_64::oneshot_with_seed(key, s.as_bytes());
        let bucket_hashes = (0..16)
            .map(|i| static_bucket(i, 1))
            .chain((0..STATIC_BUCKETS).map(|i| static_bucket(i, 2)))
            .map(hash)
            .collect();
        Ok(Self {
            limits: LiveLimits::new(&limits),
            seed: key,
            bucket_hashes,
            overflow_hash: hash(OVERFLOW_VALUE),
            keys: InsertOnlyMap::new(INITIAL_KEYS),
            total_kept: AtomicUsize::new(0),
            untracked_key_admissions: AtomicU64::new(0),
            truncated_values: AtomicU64::new(0),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> CardinalityLimits {
        let l = &self.limits;
        CardinalityLimits {
            max_label_values: l.max_label_values.load(Ordering::Relaxed),
            hash_high_cardinality: l.hash_high_cardinality.load(Ordering::Relaxed),
            hash_buckets: l.hash_buckets.load(Ordering::Relaxed),
            max_value_len: l.max_value_len.load(Ordering::Relaxed),
            max_total_label_values: l.max_total_label_values.load(Ordering::Relaxed),
            max_label_keys: l.max_label_keys.load(Ordering::Relaxed),
        }
    }

    /// Changes the limits in place (hot reload). Values already kept stay kept; a lower limit
    /// stops new admissions, a higher one lets more in. Nothing is forgotten.
    ///
    /// ```
    /// use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
    /// let limiter = CardinalityLimiter::new(CardinalityLimits { max_label_values: 1, ..Default::default() })?;
    /// limiter.admit("k", "a");
    /// assert!(!limiter.admit("k", "b").is_kept());
    /// limiter.set_limits(CardinalityLimits { max_label_values: 2, ..Default::default() })?;
    /// assert!(limiter.admit("k", "b").is_kept());
    /// # Ok::<(), tta_cardinality::CardinalityError>(())
    /// ```
    pub fn set_limits(&self, limits: CardinalityLimits) -> Result<(), CardinalityError> {
        limits.validate()?;
        self.limits.store(&limits);
        Ok(())
    }

    #[inline]
    fn hash(&self, s: &str) -> u64 {
        XxHash3_64::oneshot_with_seed(self.seed, s.as_bytes())
    }

    /// The limiter's keyed hash of `s`, for [`admit_hashed`](Self::admit_hashed).
    ///
    /// Callers that also hash labels for their own tables (as `tta-metrics` does for its
    /// series) hash each key and value once with this and hand the hashes to the limiter,
    /// instead of hashing every string twice. The hash is keyed like the buckets, so it is
    /// stable only within this limiter (or limiters built with the same
    /// [`with_hash_key`](Self::with_hash_key)).
    ///
    /// ```
    /// use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
    /// let limiter = CardinalityLimiter::with_hash_key(CardinalityLimits::default(), 7)?;
    /// let other = CardinalityLimiter::with_hash_key(CardinalityLimits::default(), 7)?;
    /// assert_eq!(limiter.label_hash("route"), other.label_hash("route"));
    /// assert_ne!(limiter.label_hash("route"), limiter.label_hash("method"));
    /// # Ok::<(), tta_cardinality::CardinalityError>(())
    /// ```
    #[inline]
    pub fn label_hash(&self, s: &str) -> LabelHash {
        LabelHash(self.hash(s))
    }

    /// Returns the value to record for label `key` = `value`.
    ///
    /// The value itself while `key` has fewer than `max_label_values` kept values (and the
    /// process-wide budget has room), or when it was kept before; otherwise a stable
    /// `hash:`-bucket or [`OVERFLOW_VALUE`]. Values longer than `max_value_len` bytes are
    /// truncated first. Never fails and never grows memory past the limits.
    ///
    /// ```
    /// use tta_cardinality::{Admission, CardinalityLimiter, CardinalityLimits};
    /// let limits = CardinalityLimits { max_label_values: 2, ..Default::default() };
    /// let limiter = CardinalityLimiter::with_hash_key(limits, 7)?;
    /// assert_eq!(limiter.admit("user_id", "u1"), "u1");
    /// assert_eq!(limiter.admit("user_id", "u2"), "u2");
    /// let third = limiter.admit("user_id", "u3");
    /// assert_eq!(third.admission(), Admission::Hashed);
    /// assert!(third.starts_with("hash:"));
    /// assert_eq!(limiter.admit("user_id", "u3"), third); // stable
    /// assert_eq!(limiter.admit("user_id", "u1"), "u1"); // kept before: still kept
    /// # Ok::<(), tta_cardinality::CardinalityError>(())
    /// ```
    #[inline]
    pub fn admit(&self, key: &str, value: &str) -> Admitted<'_> {
        self.admit_inner(key, self.hash(key), value, None)
    }

    /// [`admit`](Self::admit) with the key's and value's hashes already computed by
    /// [`label_hash`](Self::label_hash) on this limiter, so neither string is hashed again
    /// (an over-long value is still truncated and then rehashed).
    ///
    /// Same result as `admit(key, value)` when the hashes are this limiter's; hashes from
    /// elsewhere give wrong (though still bounded) admissions.
    ///
    /// ```
    /// use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
    /// let limits = CardinalityLimits { max_label_values: 1, ..Default::default() };
    /// let limiter = CardinalityLimiter::with_hash_key(limits, 7)?;
    /// let admit = |k: &str, v: &str| {
    ///     limiter.admit_hashed(k, limiter.label_hash(k), v, limiter.label_hash(v)).to_shared()
    /// };
    /// assert_eq!(&*admit("user_id", "u1"), "u1");
    /// let bucket = admit("user_id", "u2");
    /// assert!(bucket.starts_with("hash:"));
    /// assert_eq!(limiter.admit("user_id", "u2"), &*bucket); // same as `admit`
    /// # Ok::<(), tta_cardinality::CardinalityError>(())
    /// ```
    #[inline]
    pub fn admit_hashed(
        &self,
        key: &str,
        key_hash: LabelHash,
        value: &str,
        value_hash: LabelHash,
    ) -> Admitted<'_> {
        self.admit_inner(key, key_hash.0, value, Some(value_hash.0))
    }

    #[inline]
    fn admit_inner(&self, key: &str, kh: u64, value: &str, vh: Option<u64>) -> Admitted<'_> {
        let (value, vh) = self.fit(value, vh);
        let Some(ks) = self.key_state(kh, key) else {
            self.untracked_key_admissions
                .fetch_add(1, Ordering::Relaxed);
            return self.coarsen(vh);
        };
        self.admit_in(ks, value, vh)
    }

    /// [`admit_hashed`](Self::admit_hashed) for a key given by its [`KeyId`]: no key hash,
    /// no key lookup.
    ///
    /// ```
    /// use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
    /// let limits = CardinalityLimits { max_label_values: 1, ..Default::default() };
    /// let limiter = CardinalityLimiter::new(limits)?;
    /// limiter.admit("user_id", "u1");
    /// let key = limiter.key_id("user_id").expect("a tracked key");
    /// let a = limiter.admit_key_id(key, "u2", limiter.label_hash("u2"));
    /// assert_eq!(a, limiter.admit("user_id", "u2")); // the same bucket
    /// assert_eq!(limiter.admit_key_id(key, "u1", limiter.label_hash("u1")).kept_id(), Some(0));
    /// # Ok::<(), tta_cardinality::CardinalityError>(())
    /// ```
    #[inline]
    pub fn admit_key_id(&self, key: KeyId, value: &str, value_hash: LabelHash) -> Admitted<'_> {
        let (value, vh) = self.fit(value, Some(value_hash.0));
        match self.keys.get(key.0) {
            Some(ks) => self.admit_in(ks, value, vh),
            None => self.coarsen(vh),
        }
    }

    /// `value` cut to `max_value_len` (counted) with its hash: `vh` when it was not cut and
    /// is known.
    #[inline]
    fn fit<'v>(&self, value: &'v str, vh: Option<u64>) -> (&'v str, u64) {
        let max_len = self.limits.max_value_len.load(Ordering::Relaxed);
        if value.len() > max_len {
            self.truncated_values.fetch_add(1, Ordering::Relaxed);
            let value = truncate(value, max_len);
            (value, self.hash(value))
        } else {
            (value, vh.unwrap_or_else(|| self.hash(value)))
        }
    }

    /// Admission of `value` (already truncated, hashed `vh`) for the key of `ks`.
    #[inline]
    fn admit_in<'a>(&'a self, ks: &'a KeyState, value: &str, vh: u64) -> Admitted<'a> {
        if ks.kept.may_contain(vh)
            && let Some((id, v)) = ks.values.find_with_id(vh, |v| **v == *value)
        {
            return Admitted {
                repr: Repr::Kept(v, id as u32),
                hash: vh,
            };
        }
        // Lock-free refusals first, the usual one (a key at its limit) inline: the
        // over-limit path never takes the insert lock.
        let limit = self.limits.max_label_values.load(Ordering::Relaxed);
        if ks.values.len() >= limit {
            return self.overflow(ks, vh, false);
        }
        self.admit_new(ks, vh, value, limit)
    }

    /// The slow path: a value this key has not kept, below the key's `limit` when checked.
    fn admit_new<'a>(
        &'a self,
        ks: &'a KeyState,
        vh: u64,
        value: &str,
        limit: usize,
    ) -> Admitted<'a> {
        let budget = self.limits.max_total_label_values.load(Ordering::Relaxed);
        if self.total_kept.load(Ordering::Relaxed) >= budget {
            return self.overflow(ks, vh, true);
        }
        let reserve = || {
            self.total_kept
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |t| {
                    (t < budget).then_some(t + 1)
                })
                .ok()
                .map(|_| {
                    ks.kept.insert(vh);
                    Arc::<str>::from(value)
                })
        };
        match ks
            .values
            .get_or_insert_with(vh, |v| **v == *value, limit, reserve)
        {
            Insert::Found(_) | Insert::Inserted(_) => {
                // Look it up again for its id (entries never move); only new values get here.
                match ks.values.find_with_id(vh, |v| **v == *value) {
                    Some((id, v)) => Admitted {
                        repr: Repr::Kept(v, id as u32),
                        hash: vh,
                    },
                    None => self.overflow(ks, vh, false),
                }
            }
            Insert::Refused => self.overflow(ks, vh, true),
            Insert::Full => self.overflow(ks, vh, false),
        }
    }

    #[inline]
    fn overflow<'a>(&'a self, ks: &KeyState, vh: u64, budget: bool) -> Admitted<'a> {
        ks.overflowed.fetch_add(1, Ordering::Relaxed);
        if budget {
            ks.budget_overflowed.fetch_add(1, Ordering::Relaxed);
        }
        ks.sketch.insert(vh);
        self.coarsen(vh)
    }

    #[inline]
    fn coarsen<'a>(&self, vh: u64) -> Admitted<'a> {
        if self.limits.hash_high_cardinality.load(Ordering::Relaxed) {
            let buckets = self.limits.hash_buckets.load(Ordering::Relaxed).max(1);
            // Use the high half remixed, so buckets do not follow the table index.
            let mixed = vh.rotate_left(32).wrapping_mul(0xD6E8_FEB8_6659_FD93);
            let index = ((u128::from(mixed) * buckets as u128) >> 64) as usize;
            let digits = hex_digits(buckets);
            let at = if digits == 1 { index } else { 16 + index };
            match self.bucket_hashes.get(at) {
                Some(&hash) if digits <= 2 => Admitted {
                    repr: Repr::StaticBucket(static_bucket(index, digits), index as u16),
                    hash,
                },
                _ => Admitted::bucket(index, buckets, |s| self.hash(s)),
            }
        } else {
            Admitted {
                repr: Repr::Overflow,
                hash: self.overflow_hash,
            }
        }
    }

    #[inline]
    fn key_state(&self, kh: u64, key: &str) -> Option<&KeyState> {
        if let Some(ks) = self.keys.find(kh, |k| *k.name == *key) {
            return Some(ks);
        }
        let max_keys = self.limits.max_label_keys.load(Ordering::Relaxed);
        if self.keys.len() >= max_keys {
            return None;
        }
        match self.keys.get_or_insert_with(
            kh,
            |k| *k.name == *key,
            max_keys,
            || Some(Box::new(KeyState::new(key))),
        ) {
            Insert::Found(k) | Insert::Inserted(k) => Some(k),
            Insert::Refused | Insert::Full => None,
        }
    }

    /// The limiter's handle for label key `key`, once the key has been admitted at least
    /// once: with it, [`kept_id`](Self::kept_id) and [`kept_value`](Self::kept_value) skip
    /// the key lookup.
    pub fn key_id(&self, key: &str) -> Option<KeyId> {
        self.keys
            .find_with_id(self.hash(key), |k| *k.name == *key)
            .map(|(id, _)| KeyId(id))
    }

    /// The id of `value` if the key already keeps it (see [`Admitted::kept_id`]): a
    /// lock-free lookup that admits nothing and counts nothing. `None` for a value not kept
    /// (yet), and for one longer than `max_value_len` (admitting it counts the truncation).
    ///
    /// ```
    /// use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
    /// let limiter = CardinalityLimiter::new(CardinalityLimits::default())?;
    /// let id = limiter.admit("route", "/api").kept_id();
    /// let key = limiter.key_id("route").expect("admitted before");
    /// assert_eq!(limiter.kept_id(key, "/api", limiter.label_hash("/api")), id);
    /// assert_eq!(limiter.kept_id(key, "/new", limiter.label_hash("/new")), None);
    /// # Ok::<(), tta_cardinality::CardinalityError>(())
    /// ```
    #[inline]
    pub fn kept_id(&self, key: KeyId, value: &str, value_hash: LabelHash) -> Option<usize> {
        if value.len() > self.limits.max_value_len.load(Ordering::Relaxed) {
            return None;
        }
        // No kept-filter check: callers ask for values they expect to be kept, and for those
        // the filter is one more cache line to read.
        self.keys
            .get(key.0)?
            .values
            .find_with_id(value_hash.0, |v| **v == *value)
            .map(|(id, _)| id)
    }

    /// The value the key keeps under `id` (see [`Admitted::kept_id`]).
    pub fn kept_value(&self, key: KeyId, id: usize) -> Option<Arc<str>> {
        self.keys.get(key.0)?.values.get(id).cloned()
    }

    /// Distinct values kept over all keys (what the budget counts).
    pub fn total_labels(&self) -> usize {
        self.total_kept.load(Ordering::Relaxed)
    }

    /// Whether any key has had a value coarsened (the guide's alert condition).
    pub fn has_dropped_labels(&self) -> bool {
        let mut any = false;
        self.keys
            .for_each(|k| any |= k.overflowed.load(Ordering::Relaxed) > 0);
        any || self.untracked_key_admissions.load(Ordering::Relaxed) > 0
    }

    /// Approximate heap bytes held: tables, kept value strings and per-key state.
    ///
    /// Bounded by the limits whatever arrives (values are at most `max_value_len` bytes, at
    /// most `max_total_label_values` of them, over at most `max_label_keys` keys).
    pub fn heap_bytes(&self) -> usize {
        let mut bytes = self.keys.table_bytes();
        self.keys.for_each(|k| {
            bytes += std::mem::size_of::<KeyState>() + k.name.len() + k.values.table_bytes();
            k.values
                .for_each(|v| bytes += 2 * std::mem::size_of::<usize>() + v.len());
        });
        bytes
    }

    /// A consistent-enough copy of the counters (each number is read atomically; numbers are
    /// not read at one instant while admissions run).
    ///
    /// ```
    /// use tta_cardinality::{CardinalityLimiter, CardinalityLimits};
    /// let limits = CardinalityLimits { max_label_values: 10, ..Default::default() };
    /// let limiter = CardinalityLimiter::new(limits)?;
    /// for i in 0..1000 {
    ///     limiter.admit("user_id", &format!("user-{i}"));
    /// }
    /// limiter.admit("route", "/api");
    /// let stats = limiter.stats();
    /// assert_eq!(stats.total_labels, 11);
    /// assert_eq!(stats.dropped_labels, vec!["user_id".to_string()]);
    /// assert_eq!(stats.label_cardinality["user_id"], 10);
    /// assert_eq!(stats.overflow["user_id"].overflowed_admissions, 990);
    /// # Ok::<(), tta_cardinality::CardinalityError>(())
    /// ```
    pub fn stats(&self) -> CardinalityStats {
        let limits = self.limits();
        let mut label_cardinality = BTreeMap::new();
        let mut overflow = BTreeMap::new();
        self.keys.for_each(|k| {
            label_cardinality.insert(k.name.to_string(), k.values.len());
            let overflowed = k.overflowed.load(Ordering::Relaxed);
            if overflowed > 0 {
                overflow.insert(
                    k.name.to_string(),
                    KeyOverflow {
                        key: k.name.to_string(),
                        overflowed_admissions: overflowed,
                        budget_overflowed_admissions: k.budget_overflowed.load(Ordering::Relaxed),
                        distinct_overflow_estimate: k.sketch.estimate(),
                    },
                );
            }
        });
        let mut top: Vec<KeyOverflow> = overflow.values().cloned().collect();
        top.sort_by(|a, b| {
            b.distinct_overflow_estimate
                .cmp(&a.distinct_overflow_estimate)
                .then(b.overflowed_admissions.cmp(&a.overflowed_admissions))
                .then(a.key.cmp(&b.key))
        });
        top.truncate(TOP_OFFENDERS);
        let total = self.total_kept.load(Ordering::Relaxed);
        CardinalityStats {
            total_labels: total,
            dropped_labels: overflow.keys().cloned().collect(),
            label_cardinality,
            overflow,
            top_offenders: top,
            max_label_values: limits.max_label_values,
            max_total_label_values: limits.max_total_label_values,
            budget_usage: total as f64 / limits.max_total_label_values as f64,
            tracked_keys: self.keys.len(),
            max_label_keys: limits.max_label_keys,
            untracked_key_admissions: self.untracked_key_admissions.load(Ordering::Relaxed),
            truncated_values: self.truncated_values.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max: usize, hash: bool) -> CardinalityLimiter {
        let limits = CardinalityLimits {
            max_label_values: max,
            hash_high_cardinality: hash,
            ..Default::default()
        };
        CardinalityLimiter::with_hash_key(limits, 1).expect("valid limits")
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
        let l = CardinalityLimiter::with_hash_key(
            CardinalityLimits {
                max_value_len: 3,
                ..Default::default()
            },
            1,
        )
        .expect("valid");
        assert_eq!(l.admit("k", "aéz"), "aé");
        assert_eq!(l.admit("k", "abcdef"), "abc");
        assert_eq!(l.admit("k", "abcxyz"), "abc");
        assert_eq!(l.stats().truncated_values, 3);
        assert_eq!(l.stats().label_cardinality["k"], 2);
    }

    #[test]
    fn bucket_width_follows_bucket_count() {
        assert_eq!(hex_digits(1), 1);
        assert_eq!(hex_digits(16), 1);
        assert_eq!(hex_digits(17), 2);
        assert_eq!(hex_digits(256), 2);
        assert_eq!(hex_digits(65_536), 4);
        assert_eq!(Admitted::bucket(0xab, 256, |_| 0).as_str(), "hash:ab");
        assert_eq!(Admitted::bucket(0x3, 4096, |_| 0).as_str(), "hash:003");
        for i in 0..16 {
            assert_eq!(static_bucket(i, 1), format!("hash:{i:x}"));
        }
        for i in 0..256 {
            assert_eq!(static_bucket(i, 2), format!("hash:{i:02x}"));
        }
    }

    #[test]
    fn admitted_hashes_match_label_hash_for_every_kind() {
        for (buckets, hash) in [
            (16, true),
            (200, true),
            (4096, true),
            (65_536, true),
            (16, false),
        ] {
            let limits = CardinalityLimits {
                max_label_values: 2,
                max_value_len: 8,
                hash_buckets: buckets,
                hash_high_cardinality: hash,
                ..Default::default()
            };
            let l = CardinalityLimiter::with_hash_key(limits, 3).expect("valid");
            for i in 0..300 {
                let v = format!("value-{i}-long");
                let a = l.admit("k", &v);
                assert_eq!(a.label_hash(), l.label_hash(&a), "{buckets} buckets, {a:?}");
            }
        }
    }

    #[test]
    fn kept_filter_has_no_false_negatives_and_few_false_positives() {
        let l = limiter(100, true);
        for i in 0..100 {
            assert!(l.admit("k", &format!("kept-{i}")).is_kept());
        }
        let ks = l.keys.find(l.hash("k"), |k| *k.name == *"k").expect("key");
        for i in 0..100 {
            assert!(ks.kept.may_contain(l.hash(&format!("kept-{i}"))));
        }
        let positives = (0..10_000)
            .filter(|i| ks.kept.may_contain(l.hash(&format!("other-{i}"))))
            .count();
        assert!(
            positives < 1_500,
            "{positives} of 10000 never-kept values pass the filter"
        );
    }

    #[test]
    fn overflow_value_without_hashing() {
        let l = limiter(1, false);
        assert_eq!(l.admit("k", "a"), "a");
        let b = l.admit("k", "b");
        assert_eq!(b, OVERFLOW_VALUE);
        assert_eq!(b.admission(), Admission::Overflowed);
        assert_eq!(&*b.to_shared(), OVERFLOW_VALUE);
    }

    #[test]
    fn budget_is_shared_by_keys() {
        let limits = CardinalityLimits {
            max_total_label_values: 3,
            ..Default::default()
        };
        let l = CardinalityLimiter::with_hash_key(limits, 1).expect("valid");
        assert!(l.admit("a", "1").is_kept());
        assert!(l.admit("a", "2").is_kept());
        assert!(l.admit("b", "1").is_kept());
        assert!(!l.admit("b", "2").is_kept());
        let s = l.stats();
        assert_eq!(s.total_labels, 3);
        assert_eq!(s.budget_usage, 1.0);
        assert_eq!(s.overflow["b"].budget_overflowed_admissions, 1);
        assert_eq!(s.dropped_labels, vec!["b".to_string()]);
    }

    #[test]
    fn keys_are_bounded() {
        let limits = CardinalityLimits {
            max_label_keys: 2,
            ..Default::default()
        };
        let l = CardinalityLimiter::with_hash_key(limits, 1).expect("valid");
        assert!(l.admit("a", "1").is_kept());
        assert!(l.admit("b", "1").is_kept());
        let c = l.admit("c", "1");
        assert_eq!(c.admission(), Admission::Hashed);
        let s = l.stats();
        assert_eq!(s.tracked_keys, 2);
        assert_eq!(s.untracked_key_admissions, 1);
        assert!(l.has_dropped_labels());
    }

    #[test]
    fn different_hash_keys_give_different_buckets() {
        let limits = CardinalityLimits {
            max_label_values: 1,
            hash_buckets: 4096,
            ..Default::default()
        };
        let a = CardinalityLimiter::with_hash_key(limits.clone(), 1).expect("valid");
        let b = CardinalityLimiter::with_hash_key(limits, 2).expect("valid");
        a.admit("k", "x");
        b.admit("k", "x");
        let differ = (0..50)
            .filter(|i| {
                let v = format!("v{i}");
                a.admit("k", &v).as_str() != b.admit("k", &v).as_str()
            })
            .count();
        assert!(
            differ > 40,
            "only {differ} of 50 buckets differ between keys"
        );
    }
}
