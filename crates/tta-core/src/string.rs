use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smol_str::SmolStr;

/// A cheap-to-clone string: a `&'static str` or a short string stored inline (no allocation
/// at all), or a shared `Arc<str>` (clones share it).
///
/// Span names, service names and attribute keys are mostly literals, and attribute values
/// mostly short; this type keeps them allocation-free on the hot path while still accepting
/// owned strings of any length. Strings of up to 23 bytes are stored inline (the
/// representation is `smol_str`'s).
///
/// ```
/// use tta_core::SharedStr;
/// let a: SharedStr = "GET /api".into();
/// let b: SharedStr = String::from("GET /api").into();
/// assert_eq!(a, b);
/// assert_eq!(&*a, "GET /api");
/// ```
#[derive(Clone)]
pub struct SharedStr(SmolStr);

impl SharedStr {
    /// A string that borrows a literal; never allocates.
    pub const fn from_static(s: &'static str) -> Self {
        Self(SmolStr::new_static(s))
    }

    /// A copy of `s`: inline when short (no allocation), else one shared allocation.
    pub fn new(s: &str) -> Self {
        Self(SmolStr::new(s))
    }

    /// The string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Whether this string holds a heap allocation (long owned strings only).
    pub fn is_heap_allocated(&self) -> bool {
        self.0.is_heap_allocated()
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        Self::from_static("")
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for SharedStr {
    fn from(s: &'static str) -> Self {
        Self::from_static(s)
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        Self(SmolStr::from(s))
    }
}

impl From<Arc<str>> for SharedStr {
    fn from(s: Arc<str>) -> Self {
        Self(SmolStr::from(s))
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for SharedStr {}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for SharedStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_inline_and_long_ones_shared() {
        let short = SharedStr::new("/api/endpoint");
        assert!(!short.is_heap_allocated());
        assert!(!SharedStr::from("x".repeat(23)).is_heap_allocated());
        let long = SharedStr::new(&"y".repeat(24));
        assert!(long.is_heap_allocated());
        assert!(
            !SharedStr::from_static("a literal that is longer than 23 bytes").is_heap_allocated()
        );
        let copy = long.clone();
        assert_eq!(copy, long);
        assert_eq!(
            copy.as_str().as_ptr(),
            long.as_str().as_ptr(),
            "clones share"
        );
        for s in [&short, &long] {
            assert_eq!(SharedStr::from(Arc::<str>::from(s.as_str())), *s);
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(serde_json::from_str::<SharedStr>(&json).unwrap(), *s);
        }
    }
}
