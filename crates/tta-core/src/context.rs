//! W3C Trace Context (`traceparent`, `tracestate`) and the OpenTelemetry `ot` tracestate member.

use std::fmt;
use std::str::FromStr;

use crate::ids::{decode_hex, hex_val, invalid};
use crate::{MAX_THRESHOLD, ParseError, SpanId, TraceId};

/// A parsed `traceparent` header: `version-traceid-parentid-flags`.
///
/// Version `00` must be exactly 55 characters. Higher versions (except the invalid `ff`) are
/// accepted by their first four fields, as the specification asks, provided anything after
/// them starts with `-`. Only lowercase hex is accepted; all-zero ids are rejected.
///
/// ```
/// use tta_core::TraceParent;
/// let tp = TraceParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03")?;
/// assert!(tp.sampled() && tp.random());
/// assert_eq!(tp.to_string(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03");
/// assert!(TraceParent::parse("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").is_err());
/// # Ok::<(), tta_core::ParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: TraceId,
    parent_id: SpanId,
    flags: u8,
}

impl TraceParent {
    /// Flag bit 0: the caller may have recorded this trace.
    pub const FLAG_SAMPLED: u8 = 0x01;
    /// Flag bit 1 (Trace Context Level 2): the trace id's low 56 bits are random.
    pub const FLAG_RANDOM: u8 = 0x02;

    /// A version-00 traceparent from its parts.
    pub fn new(trace_id: TraceId, parent_id: SpanId, flags: u8) -> Self {
        Self {
            trace_id,
            parent_id,
            flags,
        }
    }

    /// Parses a `traceparent` header value.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let b = s.as_bytes();
        if b.len() < 55 {
            return Err(ParseError::TraceParent("shorter than 55 characters"));
        }
        if let Some(offset) = b[..55].iter().position(|c| !c.is_ascii()) {
            return Err(invalid(s, "traceparent", offset));
        }
        let version = lower_hex_u8(&s[0..2], "version")?;
        if version == 0xff {
            return Err(ParseError::TraceParent("version ff is invalid"));
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(ParseError::TraceParent(
                "fields must be separated by '-' at offsets 2, 35 and 52",
            ));
        }
        if version == 0 && b.len() != 55 {
            return Err(ParseError::TraceParent(
                "version 00 must be exactly 55 characters",
            ));
        }
        if b.len() > 55 && b[55] != b'-' {
            return Err(ParseError::TraceParent(
                "data after the flags of a future version must start with '-'",
            ));
        }
        let trace_hex = &s[3..35];
        check_lower(trace_hex, "trace id")?;
        let trace_id = TraceId::from_bytes(decode_hex::<16>(trace_hex, "trace id")?);
        if !trace_id.is_valid() {
            return Err(ParseError::AllZero { what: "trace id" });
        }
        let parent_hex = &s[36..52];
        check_lower(parent_hex, "parent id")?;
        let parent_id = SpanId::from_bytes(decode_hex::<8>(parent_hex, "parent id")?);
        if !parent_id.is_valid() {
            return Err(ParseError::AllZero { what: "parent id" });
        }
        let flags = lower_hex_u8(&s[53..55], "trace flags")?;
        Ok(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The caller's span id.
    pub fn parent_id(&self) -> SpanId {
        self.parent_id
    }

    /// The raw trace flags.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the sampled flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & Self::FLAG_SAMPLED != 0
    }

    /// Whether the Level 2 random flag is set.
    pub fn random(&self) -> bool {
        self.flags & Self::FLAG_RANDOM != 0
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

impl FromStr for TraceParent {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s)
    }
}

fn check_lower(s: &str, what: &'static str) -> Result<(), ParseError> {
    match s
        .bytes()
        .position(|c| !matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        Some(offset) => Err(invalid(s, what, offset)),
        None => Ok(()),
    }
}

fn lower_hex_u8(s: &str, what: &'static str) -> Result<u8, ParseError> {
    check_lower(s, what)?;
    Ok(decode_hex::<1>(s, what)?[0])
}

/// A parsed `tracestate` header: up to 32 `key=value` list members, in order.
///
/// Members this library does not know are preserved verbatim and in order. The OpenTelemetry
/// member `ot` is available typed through [`TraceState::ot`].
///
/// ```
/// use tta_core::TraceState;
/// let mut ts = TraceState::parse("ot=th:c;rv:0123456789abcd,congo=t61rcWkgMzE")?;
/// let ot = ts.ot()?.unwrap();
/// assert_eq!(ot.th(), Some(0xc0000000000000));
/// assert_eq!(ot.rv(), Some(0x0123456789abcd));
/// assert_eq!(ts.get("congo"), Some("t61rcWkgMzE"));
/// ts.insert("vendor", "x1")?;
/// assert_eq!(ts.to_string(), "vendor=x1,ot=th:c;rv:0123456789abcd,congo=t61rcWkgMzE");
/// # Ok::<(), tta_core::ParseError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceState {
    members: Vec<(String, String)>,
}

/// Most list members a tracestate may carry.
const MAX_MEMBERS: usize = 32;

impl TraceState {
    /// An empty trace state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a `tracestate` header value. Empty list members (`a=1,,b=2`) are skipped, as the
    /// specification allows; surrounding spaces and tabs are ignored.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut members: Vec<(String, String)> = Vec::new();
        for (index, raw) in s.split(',').enumerate() {
            let member = raw.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (key, value) = member.split_once('=').ok_or(ParseError::TraceStateMember {
                index,
                reason: "missing '='",
            })?;
            validate_key(key).map_err(|reason| ParseError::TraceStateMember { index, reason })?;
            validate_value(value)
                .map_err(|reason| ParseError::TraceStateMember { index, reason })?;
            if members.iter().any(|(k, _)| k == key) {
                return Err(ParseError::DuplicateKey(key.to_owned()));
            }
            members.push((key.to_owned(), value.to_owned()));
        }
        if members.len() > MAX_MEMBERS {
            return Err(ParseError::TooManyMembers(members.len()));
        }
        Ok(Self { members })
    }

    /// The value of a member.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Members in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sets `key` to `value` and moves it to the front, as a vendor updating its own member
    /// must. When that would exceed 32 members, the last member is dropped.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), ParseError> {
        validate_key(key).map_err(|reason| ParseError::TraceStateMember { index: 0, reason })?;
        validate_value(value)
            .map_err(|reason| ParseError::TraceStateMember { index: 0, reason })?;
        self.members.retain(|(k, _)| k != key);
        self.members.insert(0, (key.to_owned(), value.to_owned()));
        self.members.truncate(MAX_MEMBERS);
        Ok(())
    }

    /// Removes a member, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let pos = self.members.iter().position(|(k, _)| k == key)?;
        Some(self.members.remove(pos).1)
    }

    /// The OpenTelemetry member, parsed; `Ok(None)` when absent.
    pub fn ot(&self) -> Result<Option<OtTraceState>, ParseError> {
        self.get("ot").map(OtTraceState::parse).transpose()
    }

    /// Replaces the OpenTelemetry member (removes it when `ot` is empty).
    pub fn set_ot(&mut self, ot: &OtTraceState) -> Result<(), ParseError> {
        if ot.is_empty() {
            self.remove("ot");
            Ok(())
        } else {
            self.insert("ot", &ot.to_string())
        }
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

impl FromStr for TraceState {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::parse(s)
    }
}

fn is_key_char(c: u8) -> bool {
    matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

fn validate_key(key: &str) -> Result<(), &'static str> {
    let b = key.as_bytes();
    if b.is_empty() {
        return Err("empty key");
    }
    if b.len() > 256 {
        return Err("key longer than 256 characters");
    }
    match key.split_once('@') {
        None => {
            if !b[0].is_ascii_lowercase() {
                return Err("key must start with a lowercase letter");
            }
            if !b.iter().all(|&c| is_key_char(c)) {
                return Err("key has a character outside [a-z0-9_-*/]");
            }
        }
        Some((tenant, system)) => {
            let (t, sy) = (tenant.as_bytes(), system.as_bytes());
            if t.is_empty() || t.len() > 241 {
                return Err("tenant id must be 1 to 241 characters");
            }
            if !(t[0].is_ascii_lowercase() || t[0].is_ascii_digit()) {
                return Err("tenant id must start with a lowercase letter or digit");
            }
            if sy.is_empty() || sy.len() > 14 {
                return Err("system id must be 1 to 14 characters");
            }
            if !sy[0].is_ascii_lowercase() {
                return Err("system id must start with a lowercase letter");
            }
            if !t.iter().chain(sy).all(|&c| is_key_char(c)) {
                return Err("key has a character outside [a-z0-9_-*/]");
            }
        }
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), &'static str> {
    let b = value.as_bytes();
    if b.is_empty() {
        return Err("empty value");
    }
    if b.len() > 256 {
        return Err("value longer than 256 characters");
    }
    if b.last() == Some(&b' ') {
        return Err("value must not end with a space");
    }
    if !b
        .iter()
        .all(|&c| c == b' ' || (0x21..=0x7e).contains(&c) && c != b',' && c != b'=')
    {
        return Err("value has a character outside printable ASCII or a ',' or '='");
    }
    Ok(())
}

/// The OpenTelemetry tracestate member `ot`: `th` (rejection threshold), `rv` (explicit
/// randomness) and any other sub-keys, preserved in order.
///
/// ```
/// use tta_core::OtTraceState;
/// let mut ot = OtTraceState::parse("th:fd70a;x:y")?;
/// assert_eq!(ot.th(), Some(0xfd70a000000000));
/// ot.set_rv(Some(0xabcdef));
/// assert_eq!(ot.to_string(), "th:fd70a;rv:00000000abcdef;x:y");
/// # Ok::<(), tta_core::ParseError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtTraceState {
    th: Option<u64>,
    rv: Option<u64>,
    other: Vec<(String, String)>,
}

impl OtTraceState {
    /// Parses the value of the `ot` member (`key:value` pairs separated by `;`).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.len() > 256 {
            return Err(ParseError::OtMember("longer than 256 characters"));
        }
        let mut out = Self::default();
        for field in s.split(';') {
            let (key, value) = field
                .split_once(':')
                .ok_or(ParseError::OtMember("sub-key without ':'"))?;
            let kb = key.as_bytes();
            if kb.is_empty()
                || !kb[0].is_ascii_lowercase()
                || !kb
                    .iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            {
                return Err(ParseError::OtMember("sub-key must match [a-z][a-z0-9]*"));
            }
            if !value
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
            {
                return Err(ParseError::OtMember("sub-value must match [a-zA-Z0-9._-]*"));
            }
            match key {
                "th" => out.th = Some(parse_th(value)?),
                "rv" => out.rv = Some(parse_rv(value)?),
                _ => out.other.push((key.to_owned(), value.to_owned())),
            }
        }
        Ok(out)
    }

    /// The rejection threshold `T` (56-bit) carried as `th`.
    pub fn th(&self) -> Option<u64> {
        self.th
    }

    /// Sets or clears `th`; values above `2^56 - 1` are clamped to it.
    pub fn set_th(&mut self, threshold: Option<u64>) {
        self.th = threshold.map(|t| t.min(MAX_THRESHOLD - 1));
    }

    /// The explicit randomness value carried as `rv`.
    pub fn rv(&self) -> Option<u64> {
        self.rv
    }

    /// Sets or clears `rv` (the low 56 bits are kept).
    pub fn set_rv(&mut self, rv: Option<u64>) {
        self.rv = rv.map(|r| r & (MAX_THRESHOLD - 1));
    }

    /// Sub-keys other than `th` and `rv`, in order.
    pub fn other(&self) -> impl Iterator<Item = (&str, &str)> {
        self.other.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether nothing would be written.
    pub fn is_empty(&self) -> bool {
        self.th.is_none() && self.rv.is_none() && self.other.is_empty()
    }
}

impl fmt::Display for OtTraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(th) = self.th {
            write!(f, "th:{}", ThDisplay(th))?;
            sep = ";";
        }
        if let Some(rv) = self.rv {
            write!(f, "{sep}rv:{rv:014x}")?;
            sep = ";";
        }
        for (k, v) in &self.other {
            write!(f, "{sep}{k}:{v}")?;
            sep = ";";
        }
        Ok(())
    }
}

/// Parses a `th` value (1 to 14 lowercase hex digits, implicitly extended with trailing
/// zeros to 14 digits) into the 56-bit rejection threshold `T`.
///
/// ```
/// assert_eq!(tta_core::parse_th("8").unwrap(), 1 << 55);
/// assert!(tta_core::parse_th("").is_err());
/// assert!(tta_core::parse_th("ABC").is_err());
/// ```
pub fn parse_th(s: &str) -> Result<u64, ParseError> {
    if s.is_empty() || s.len() > 14 {
        return Err(ParseError::OtMember("th must be 1 to 14 hex digits"));
    }
    let mut t: u64 = 0;
    for c in s.bytes() {
        if !matches!(c, b'0'..=b'9' | b'a'..=b'f') {
            return Err(ParseError::OtMember("th must be lowercase hex"));
        }
        t = (t << 4) | u64::from(hex_val(c).unwrap_or(0));
    }
    Ok(t << (4 * (14 - s.len())))
}

fn parse_rv(s: &str) -> Result<u64, ParseError> {
    if s.len() != 14 {
        return Err(ParseError::OtMember("rv must be exactly 14 hex digits"));
    }
    let mut r: u64 = 0;
    for c in s.bytes() {
        if !matches!(c, b'0'..=b'9' | b'a'..=b'f') {
            return Err(ParseError::OtMember("rv must be lowercase hex"));
        }
        r = (r << 4) | u64::from(hex_val(c).unwrap_or(0));
    }
    Ok(r)
}

/// Formats a 56-bit threshold as a `th` value: 14 hex digits with trailing zeros removed
/// (`"0"` for a threshold of zero, which keeps everything). Writes into a stack buffer.
///
/// ```
/// assert_eq!(tta_core::format_th(0xfd70a400000000).as_str(), "fd70a4");
/// assert_eq!(tta_core::format_th(0).as_str(), "0");
/// ```
pub fn format_th(threshold: u64) -> ThString {
    let mut buf = [0u8; 14];
    let t = threshold.min(MAX_THRESHOLD - 1);
    for (i, slot) in buf.iter_mut().enumerate() {
        let nibble = (t >> (4 * (13 - i))) & 0xf;
        *slot = b"0123456789abcdef"[nibble as usize];
    }
    let mut len = 14;
    while len > 1 && buf[len - 1] == b'0' {
        len -= 1;
    }
    ThString {
        buf,
        len: len as u8,
    }
}

/// A formatted `th` value held on the stack (see [`format_th`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ThString {
    buf: [u8; 14],
    len: u8,
}

impl ThString {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into the buffer.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("0")
    }
}

impl fmt::Display for ThString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ThString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

struct ThDisplay(u64);
impl fmt::Display for ThDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(format_th(self.0).as_str())
    }
}

#[cfg(test)]
#[path = "context/tests.rs"]
mod tests;
