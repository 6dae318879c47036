use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ParseError;

thread_local! {
    static RNG: RefCell<Xoshiro256PlusPlus> = RefCell::new(seeded_rng());
}

fn seeded_rng() -> Xoshiro256PlusPlus {
    let mut seed = [0u8; 32];
    if getrandom::fill(&mut seed).is_err() {
        // No OS entropy (very unusual sandboxes): fall back to time and address entropy,
        // which still differs between threads and processes.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let local = 0u8;
        let addr = &local as *const u8 as usize as u128;
        seed[..16].copy_from_slice(&nanos.to_le_bytes());
        seed[16..].copy_from_slice(&(addr ^ (u128::from(std::process::id()) << 64)).to_le_bytes());
    }
    Xoshiro256PlusPlus::from_seed(seed)
}

fn next_u64() -> u64 {
    RNG.with(|rng| rng.borrow_mut().next_u64())
}

pub(crate) fn decode_hex<const N: usize>(
    s: &str,
    what: &'static str,
) -> Result<[u8; N], ParseError> {
    let bytes = s.as_bytes();
    if bytes.len() != N * 2 {
        return Err(ParseError::Length {
            what,
            expected: N * 2,
            got: s.len(),
        });
    }
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = hex_val(pair[0]).ok_or_else(|| invalid(s, what, i * 2))?;
        let lo = hex_val(pair[1]).ok_or_else(|| invalid(s, what, i * 2 + 1))?;
        out[i] = (hi << 4) | lo;
    }
    Ok(out)
}

pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn invalid(s: &str, what: &'static str, offset: usize) -> ParseError {
    let start = (0..=offset)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    let found = s[start..].chars().next().unwrap_or('\0');
    ParseError::InvalidChar {
        what,
        found,
        offset,
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let mut buf = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        buf[i * 2] = HEX[usize::from(b >> 4)];
        buf[i * 2 + 1] = HEX[usize::from(b & 0xf)];
    }
    let text = std::str::from_utf8(&buf[..bytes.len() * 2]).map_err(|_| fmt::Error)?;
    f.write_str(text)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $len:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name([u8; $len]);

        impl $name {
            /// The invalid all-zero id.
            pub const INVALID: Self = Self([0; $len]);

            /// Wraps raw bytes (big-endian, as on the wire).
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn to_bytes(self) -> [u8; $len] {
                self.0
            }

            /// Parses exactly
            #[doc = concat!(stringify!($len), " bytes")]
            /// of hex (either case). All-zero ids parse but are not [`is_valid`](Self::is_valid).
            pub fn from_hex(s: &str) -> Result<Self, ParseError> {
                decode_hex::<$len>(s, $what).map(Self)
            }

            /// False for the all-zero id, which W3C Trace Context reserves as invalid.
            pub fn is_valid(&self) -> bool {
                self.0 != [0; $len]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "("))?;
                write_hex(f, &self.0)?;
                f.write_str(")")
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::from_hex(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A 16-byte W3C trace id.
    ///
    /// ```
    /// use tta_core::TraceId;
    /// let id = TraceId::random();
    /// assert!(id.is_valid());
    /// assert_eq!(id.to_string().parse::<TraceId>()?, id);
    /// let fixed = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736")?;
    /// assert_eq!(fixed.randomness(), 0xa3ce929d0e0e4736 & ((1 << 56) - 1));
    /// # Ok::<(), tta_core::ParseError>(())
    /// ```
    TraceId,
    16,
    "trace id"
);

id_type!(
    /// An 8-byte W3C span (parent) id.
    ///
    /// ```
    /// use tta_core::SpanId;
    /// let id = SpanId::random();
    /// assert!(id.is_valid());
    /// assert_eq!(SpanId::from_hex(&id.to_string())?, id);
    /// # Ok::<(), tta_core::ParseError>(())
    /// ```
    SpanId,
    8,
    "span id"
);

impl TraceId {
    /// A random, valid trace id from a fast thread-local xoshiro256++ generator seeded from
    /// OS entropy. All 128 bits are random, so the W3C `random` flag may be set.
    pub fn random() -> Self {
        loop {
            let hi = next_u64();
            let lo = next_u64();
            if hi | lo != 0 {
                return Self::from_u128(u128::from(hi) << 64 | u128::from(lo));
            }
        }
    }

    /// The OpenTelemetry randomness value: the 56 least-significant bits of the id.
    pub fn randomness(&self) -> u64 {
        // One load of the low eight bytes, masked: copying seven bytes into a buffer and
        // reading it back whole stalls the CPU (a failed store-to-load forward).
        (self.to_u128() as u64) & ((1 << crate::RANDOMNESS_BITS) - 1)
    }

    /// The id as a big-endian `u128`.
    pub fn to_u128(self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// An id from a big-endian `u128`.
    pub fn from_u128(v: u128) -> Self {
        Self(v.to_be_bytes())
    }
}

impl SpanId {
    /// A random, valid span id from the thread-local generator.
    pub fn random() -> Self {
        loop {
            let v = next_u64();
            if v != 0 {
                return Self(v.to_be_bytes());
            }
        }
    }

    /// The id as a big-endian `u64`.
    pub fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// An id from a big-endian `u64`.
    pub fn from_u64(v: u64) -> Self {
        Self(v.to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_valid_and_distinct() {
        let a = TraceId::random();
        let b = TraceId::random();
        assert!(a.is_valid() && b.is_valid());
        assert_ne!(a, b);
        assert_ne!(SpanId::random(), SpanId::random());
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let id = TraceId::from_hex("0AF7651916CD43DD8448EB211C80319C").unwrap();
        assert_eq!(id.to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(
            TraceId::from_hex("abc"),
            Err(ParseError::Length {
                what: "trace id",
                expected: 32,
                got: 3
            })
        );
        assert_eq!(
            SpanId::from_hex("00f067aa0ba902bz"),
            Err(ParseError::InvalidChar {
                what: "span id",
                found: 'z',
                offset: 15
            })
        );
        assert!(!TraceId::from_hex(&"0".repeat(32)).unwrap().is_valid());
        // Multi-byte input must give an error, not a panic on a char boundary.
        assert!(SpanId::from_hex("éééééééé").is_err());
    }

    #[test]
    fn randomness_is_low_56_bits() {
        let id = TraceId::from_hex("ffffffffffffffffff0123456789abcd").unwrap();
        assert_eq!(id.randomness(), 0x0123456789abcd);
        assert!(TraceId::random().randomness() < crate::MAX_THRESHOLD);
    }

    #[test]
    fn serde_as_hex_string() {
        let id = SpanId::from_u64(0x00f067aa0ba902b7);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"00f067aa0ba902b7\"");
        assert_eq!(serde_json::from_str::<SpanId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<SpanId>("\"xyz\"").is_err());
    }
}
