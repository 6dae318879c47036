//! The block payload encodings: varints, the trace-id filter, and the columnar span layout.
//!
//! `docs/storage-format.md` describes every byte; keep it in step with this file.

use std::collections::HashMap;

use tta_core::{AttributeValue, SharedStr, Span, SpanId, SpanKind, SpanStatus, TraceId};
use twox_hash::XxHash3_64;

/// A small multiplicative hasher (the Fx scheme) for in-memory maps keyed by strings and ids:
/// much cheaper than SipHash, and the keys come from our own process, not from an attacker
/// who could force collisions.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(a));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut a = [0u8; 8];
            a[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(a) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FastHasher>>;

/// Why a payload could not be decoded (reported as block corruption).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

type DResult<T> = Result<T, DecodeError>;

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn varint(&mut self) -> DResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(DecodeError("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint longer than 10 bytes"))
    }

    fn usize(&mut self, limit: usize, what: &'static str) -> DResult<usize> {
        let v = self.varint()?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= limit)
            .ok_or(DecodeError(what))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> DResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError("length overflow"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError("truncated field"))?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> DResult<[u8; N]> {
        let s = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> DResult<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn section(&mut self) -> DResult<Reader<'a>> {
        let n = self.usize(self.buf.len(), "section longer than the payload")?;
        Ok(Reader::new(self.bytes(n)?))
    }

    /// Skips `n` varints.
    fn skip_varints(&mut self, mut n: usize) -> DResult<()> {
        while n > 0 {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(DecodeError("truncated varint"))?;
            self.pos += 1;
            if b & 0x80 == 0 {
                n -= 1;
            }
        }
        Ok(())
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
}

// ---------------------------------------------------------------------------------------------
// Trace-id filter (a Bloom filter, k = 7, 16 bits per trace: ~0.07% false positives).

const BLOOM_HASHES: u64 = 7;

fn bloom_positions(id: &TraceId, bits: u64) -> impl Iterator<Item = u64> {
    let h = XxHash3_64::oneshot(&id.to_bytes());
    let h1 = h & 0xffff_ffff;
    let h2 = (h >> 32) | 1;
    (0..BLOOM_HASHES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

/// Filter bits per trace id. Readers take the size from the stored filter, so this can
/// change without a format change. With k = 7: 10 bits give ~0.8% false positives, 16 give
/// ~0.07% (a lookup in a store of a few hundred blocks then decompresses one false block in
/// about ten lookups instead of one or two in every lookup) for 2 bytes per trace.
const BLOOM_BITS_PER_ID: usize = 16;

/// A filter for these trace ids: `ceil(16 * n / 8)` bytes, at least 8.
pub(crate) fn bloom_build(ids: &[TraceId]) -> Vec<u8> {
    let len = (ids.len() * BLOOM_BITS_PER_ID).div_ceil(8).max(8);
    let mut bytes = vec![0u8; len];
    let bits = len as u64 * 8;
    for id in ids {
        for p in bloom_positions(id, bits) {
            bytes[(p / 8) as usize] |= 1 << (p % 8);
        }
    }
    bytes
}

/// Whether the filter may contain `id` (an empty filter contains nothing).
pub(crate) fn bloom_may_contain(filter: &[u8], id: &TraceId) -> bool {
    if filter.is_empty() {
        return false;
    }
    let bits = filter.len() as u64 * 8;
    bloom_positions(id, bits).all(|p| filter[(p / 8) as usize] & (1 << (p % 8)) != 0)
}

// ---------------------------------------------------------------------------------------------
// Span blocks.

/// An encoded span block, before compression.
#[cfg(test)]
pub(crate) struct EncodedSpans {
    pub(crate) payload: Vec<u8>,
    pub(crate) meta: EncodedMeta,
}

/// What [`encode_span_refs_into`] reports besides the payload.
pub(crate) struct EncodedMeta {
    pub(crate) trace_ids: Vec<TraceId>,
    pub(crate) min_start: u64,
    pub(crate) max_start: u64,
}

/// Buffers a writer keeps from block to block, so encoding a block allocates (and faults in)
/// no fresh column or payload memory.
#[derive(Default)]
pub(crate) struct EncodeBuffers {
    /// The encoded payload of the last block.
    pub(crate) payload: Vec<u8>,
    columns: [Vec<u8>; 8],
}

/// A string keyed by its text, hashed with xxh3 in one call (quicker than feeding the text
/// to [`FastHasher`] eight bytes at a time).
#[derive(PartialEq, Eq)]
struct Text<'a>(&'a str);

impl std::hash::Hash for Text<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(XxHash3_64::oneshot(self.0.as_bytes()));
    }
}

/// Slots of [`StringTable`]'s address cache (a power of two).
const ADDR_SLOTS: usize = 1024;

/// The block's string table: each distinct text gets the next id, in first-use order.
struct StringTable<'a> {
    index: FastMap<Text<'a>, u64>,
    /// A direct-mapped cache keyed by address and length: span strings are mostly shared
    /// (`&'static` or one `Arc<str>`), so most lookups skip hashing and comparing the text.
    /// A slot holds `(address, length, id)` in 16 bytes; address 0 marks an empty slot (no
    /// `&str` has a null address). Addresses stay valid because every string is borrowed for
    /// the whole encoding, and a collision only costs a lookup by text. Strings or ids beyond
    /// `u32` are simply not cached.
    by_addr: Box<[(usize, u32, u32)]>,
    order: Vec<&'a str>,
    /// Total bytes of the strings in `order`.
    bytes: usize,
}

impl<'a> StringTable<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            index: FastMap::with_capacity_and_hasher(n, Default::default()),
            by_addr: vec![(0, 0, 0); ADDR_SLOTS].into_boxed_slice(),
            order: Vec::with_capacity(n),
            bytes: 0,
        }
    }

    fn id(&mut self, s: &'a str) -> u64 {
        let addr = s.as_ptr() as usize;
        let slot = (addr as u64 ^ s.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            >> (64 - ADDR_SLOTS.trailing_zeros());
        let slot = &mut self.by_addr[slot as usize % ADDR_SLOTS];
        if slot.0 == addr && slot.1 as usize == s.len() {
            return u64::from(slot.2);
        }
        let next = self.order.len() as u64;
        let i = *self.index.entry(Text(s)).or_insert(next);
        if i == next {
            self.order.push(s);
            self.bytes += s.len();
        }
        if let (Ok(len), Ok(id)) = (u32::try_from(s.len()), u32::try_from(i)) {
            *slot = (addr, len, id);
        }
        i
    }
}

fn kind_code(kind: SpanKind) -> u8 {
    match kind {
        SpanKind::Internal => 0,
        SpanKind::Server => 1,
        SpanKind::Client => 2,
        SpanKind::Producer => 3,
        SpanKind::Consumer => 4,
    }
}

fn kind_from(code: u8) -> DResult<SpanKind> {
    Ok(match code {
        0 => SpanKind::Internal,
        1 => SpanKind::Server,
        2 => SpanKind::Client,
        3 => SpanKind::Producer,
        4 => SpanKind::Consumer,
        _ => return Err(DecodeError("unknown span kind")),
    })
}

const TAG_STR: u8 = 0;
const TAG_I64: u8 = 1;
const TAG_F64: u8 = 2;
const TAG_FALSE: u8 = 3;
const TAG_TRUE: u8 = 4;

/// [`encode_span_refs_into`] with fresh buffers, keeping what it reports (for tests).
#[cfg(test)]
pub(crate) fn encode_spans(spans: &[Span]) -> EncodedSpans {
    let refs: Vec<&Span> = spans.iter().collect();
    let mut bufs = EncodeBuffers::default();
    let meta = encode_span_refs_into(&refs, &mut bufs);
    EncodedSpans {
        payload: bufs.payload,
        meta,
    }
}

/// The payload of a block holding `spans` (see [`encode_span_refs_into`]).
pub(crate) fn encode_payload(spans: &[Span]) -> Vec<u8> {
    let refs: Vec<&Span> = spans.iter().collect();
    let mut bufs = EncodeBuffers::default();
    encode_span_refs_into(&refs, &mut bufs);
    bufs.payload
}

/// Encodes borrowed spans (any order, any number of traces) as one block payload, into
/// `bufs.payload` (previous contents replaced).
///
/// Spans are grouped by trace (traces ordered by their earliest start), and within a trace
/// sorted by start time (stable), so the decoder returns them in that order.
pub(crate) fn encode_span_refs_into(spans: &[&Span], bufs: &mut EncodeBuffers) -> EncodedMeta {
    // Group by trace: order traces by their earliest start (ties by id), spans by start
    // (ties by input position). Spans usually arrive in runs of one trace.
    let mut runs: Vec<(u64, TraceId, usize, usize)> = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match runs.last_mut() {
            Some((min, id, _, end)) if *id == s.trace_id => {
                *min = (*min).min(s.start_unix_nanos);
                *end = i + 1;
            }
            _ => runs.push((s.start_unix_nanos, s.trace_id, i, i + 1)),
        }
    }
    let mut trace_start: FastMap<TraceId, u64> =
        FastMap::with_capacity_and_hasher(runs.len(), Default::default());
    for &(min, id, _, _) in &runs {
        let e = trace_start.entry(id).or_insert(min);
        *e = (*e).min(min);
    }
    let mut order: Vec<usize> = Vec::with_capacity(spans.len());
    if trace_start.len() == runs.len() {
        // Every trace is one run: sort the runs, then the spans within each run.
        if !runs.is_sorted() {
            runs.sort_unstable();
        }
        for &(_, _, start, end) in &runs {
            let from = order.len();
            order.extend(start..end);
            let group = &mut order[from..];
            if !group.is_sorted_by_key(|&i| spans[i].start_unix_nanos) {
                group.sort_by_key(|&i| spans[i].start_unix_nanos);
            }
        }
    } else {
        // A trace in several runs: sort every span by its trace's key. The index breaks
        // ties, so the unstable sort is stable.
        let mut keys: Vec<(u64, TraceId, u64, usize)> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let ts = trace_start.get(&s.trace_id).copied().unwrap_or(0);
                (ts, s.trace_id, s.start_unix_nanos, i)
            })
            .collect();
        keys.sort_unstable();
        order.extend(keys.iter().map(|k| k.3));
    }
    drop(runs);
    let mut traces: Vec<(TraceId, &[usize])> = Vec::with_capacity(trace_start.len());
    let mut rest: &[usize] = &order;
    while let Some(&first) = rest.first() {
        let id = spans[first].trace_id;
        let n = rest
            .iter()
            .take_while(|&&i| spans[i].trace_id == id)
            .count();
        let (group, tail) = rest.split_at(n);
        traces.push((id, group));
        rest = tail;
    }

    let min_start = spans.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0);
    let max_start = spans.iter().map(|s| s.start_unix_nanos).max().unwrap_or(0);

    let mut strings = StringTable::with_capacity(spans.len() / 4 + 64);
    let [
        c_traces,
        c_ids,
        c_parent,
        c_ext,
        c_names,
        c_flags,
        c_times,
        c_attrs,
    ] = &mut bufs.columns;
    for (col, per_span) in [
        (&mut *c_traces, 2),
        (&mut *c_ids, 8),
        (&mut *c_parent, 1),
        (&mut *c_ext, 0),
        (&mut *c_names, 2),
        (&mut *c_flags, 1),
        (&mut *c_times, 6),
        (&mut *c_attrs, 16),
    ] {
        col.clear();
        col.reserve(spans.len() * per_span);
    }

    let mut prev_trace_start = min_start;
    let mut local: FastMap<SpanId, usize> = FastMap::default();
    for &(trace_id, idxs) in &traces {
        c_traces.extend_from_slice(&trace_id.to_bytes());
        put_varint(c_traces, idxs.len() as u64);
        let small = idxs.len() <= 16;
        if !small {
            local.clear();
            for (j, &i) in idxs.iter().enumerate() {
                local.entry(spans[i].span_id).or_insert(j);
            }
        }
        let mut prev = prev_trace_start;
        for (j, &i) in idxs.iter().enumerate() {
            let s = spans[i];
            c_ids.extend_from_slice(&s.span_id.to_bytes());
            match s.parent_span_id {
                None => put_varint(c_parent, 0),
                Some(p) => match if small {
                    idxs.iter().position(|&x| spans[x].span_id == p)
                } else {
                    local.get(&p).copied()
                } {
                    Some(k) => put_varint(c_parent, 2 + k as u64),
                    None => {
                        put_varint(c_parent, 1);
                        c_ext.extend_from_slice(&p.to_bytes());
                    }
                },
            }
            put_varint(c_names, strings.id(&s.name));
            put_varint(c_names, strings.id(&s.service));
            let status = match s.status {
                SpanStatus::Unset => 0,
                SpanStatus::Ok => 1,
                SpanStatus::Error(_) => 2,
            };
            let th = u8::from(s.sampling_threshold.is_some());
            c_flags.push(kind_code(s.kind) | status << 3 | th << 5);
            put_varint(
                c_times,
                zigzag(s.start_unix_nanos.wrapping_sub(prev) as i64),
            );
            put_varint(
                c_times,
                zigzag(s.end_unix_nanos.wrapping_sub(s.start_unix_nanos) as i64),
            );
            prev = s.start_unix_nanos;
            if j == 0 {
                prev_trace_start = s.start_unix_nanos;
            }
            if let SpanStatus::Error(msg) = &s.status {
                put_varint(c_attrs, strings.id(msg));
            }
            if let Some(t) = s.sampling_threshold {
                put_varint(c_attrs, t);
            }
            put_varint(c_attrs, s.attributes.len() as u64);
            for (k, v) in &s.attributes {
                put_varint(c_attrs, strings.id(k));
                match v {
                    AttributeValue::Str(v) => {
                        c_attrs.push(TAG_STR);
                        put_varint(c_attrs, strings.id(v));
                    }
                    AttributeValue::I64(v) => {
                        c_attrs.push(TAG_I64);
                        put_varint(c_attrs, zigzag(*v));
                    }
                    AttributeValue::F64(v) => {
                        c_attrs.push(TAG_F64);
                        c_attrs.extend_from_slice(&v.to_le_bytes());
                    }
                    AttributeValue::Bool(b) => c_attrs.push(if *b { TAG_TRUE } else { TAG_FALSE }),
                }
            }
        }
    }

    let payload = &mut bufs.payload;
    payload.clear();
    payload.reserve(
        64 + strings.bytes
            + 2 * strings.order.len()
            + bufs.columns.iter().map(|c| c.len() + 4).sum::<usize>(),
    );
    put_varint(payload, min_start);
    put_varint(payload, spans.len() as u64);
    put_varint(payload, traces.len() as u64);
    put_varint(payload, strings.order.len() as u64);
    for s in &strings.order {
        put_varint(payload, s.len() as u64);
        payload.extend_from_slice(s.as_bytes());
    }
    for col in &bufs.columns {
        put_varint(payload, col.len() as u64);
        payload.extend_from_slice(col);
    }
    EncodedMeta {
        trace_ids: traces.iter().map(|(id, _)| *id).collect(),
        min_start,
        max_start,
    }
}

/// The parts of a span a query can decide on before its attributes are materialized.
pub(crate) struct SpanHead<'a> {
    pub(crate) name: &'a str,
    pub(crate) service: &'a str,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) is_error: bool,
}

struct Strings<'a> {
    raw: Vec<&'a str>,
    shared: Vec<Option<SharedStr>>,
}

impl<'a> Strings<'a> {
    fn get(&self, i: u64) -> DResult<&'a str> {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.raw.get(i).copied())
            .ok_or(DecodeError("string index out of range"))
    }

    fn shared(&mut self, i: u64) -> DResult<SharedStr> {
        let s = self.get(i)?;
        let slot = &mut self.shared[i as usize];
        Ok(slot
            .get_or_insert_with(|| SharedStr::from(s.to_owned()))
            .clone())
    }
}

enum RawValue {
    Str(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
}

/// Decodes a span block payload, pushing the spans for which `keep` is true onto `out`.
/// Traces for which `want_trace` is false are stepped over without decoding their spans.
/// Returns how many spans the block holds.
pub(crate) fn decode_spans(
    payload: &[u8],
    want_trace: &dyn Fn(&TraceId) -> bool,
    keep: &mut dyn FnMut(&SpanHead<'_>) -> bool,
    out: &mut Vec<Span>,
) -> DResult<usize> {
    let mut r = Reader::new(payload);
    let base = r.varint()?;
    let n_spans = r.usize(payload.len(), "span count larger than the payload")?;
    let n_traces = r.usize(n_spans, "more traces than spans")?;
    let n_strings = r.usize(payload.len(), "string count larger than the payload")?;
    let mut raw = Vec::with_capacity(n_strings);
    for _ in 0..n_strings {
        let len = r.usize(payload.len(), "string longer than the payload")?;
        let s =
            std::str::from_utf8(r.bytes(len)?).map_err(|_| DecodeError("string is not utf-8"))?;
        raw.push(s);
    }
    let mut strings = Strings {
        shared: vec![None; raw.len()],
        raw,
    };
    let mut c_traces = r.section()?;
    let mut c_ids = r.section()?;
    let mut c_parent = r.section()?;
    let mut c_ext = r.section()?;
    let mut c_names = r.section()?;
    let mut c_flags = r.section()?;
    let mut c_times = r.section()?;
    let mut c_attrs = r.section()?;
    if r.remaining() != 0 {
        return Err(DecodeError("trailing bytes after the last column"));
    }

    let mut seen = 0usize;
    let mut prev_trace_start = base;
    let mut attrs: Vec<(u64, RawValue)> = Vec::new();
    for _ in 0..n_traces {
        let trace_id = TraceId::from_bytes(c_traces.array::<16>()?);
        let count = c_traces.usize(n_spans - seen, "trace span count exceeds the block")?;
        seen += count;
        // Span ids are fixed width, so the whole trace's ids are read up front: a parent
        // reference may point at a span that comes later in start order.
        let ids = c_ids.bytes(count * 8)?;
        let span_id_at = |k: usize| -> DResult<SpanId> {
            let b = ids
                .get(k * 8..k * 8 + 8)
                .ok_or(DecodeError("parent index out of range"))?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(SpanId::from_bytes(a))
        };
        if !want_trace(&trace_id) {
            skip_trace(
                count,
                [
                    &mut c_parent,
                    &mut c_ext,
                    &mut c_names,
                    &mut c_flags,
                    &mut c_times,
                    &mut c_attrs,
                ],
                &mut prev_trace_start,
            )?;
            continue;
        }
        let mut prev = prev_trace_start;
        for j in 0..count {
            let span_id = span_id_at(j)?;
            let parent_span_id = match c_parent.varint()? {
                0 => None,
                1 => Some(SpanId::from_bytes(c_ext.array::<8>()?)),
                k => Some(span_id_at(usize::try_from(k - 2).unwrap_or(usize::MAX))?),
            };
            let name_i = c_names.varint()?;
            let service_i = c_names.varint()?;
            let flags = c_flags.u8()?;
            let start = prev.wrapping_add(unzigzag(c_times.varint()?) as u64);
            let end = start.wrapping_add(unzigzag(c_times.varint()?) as u64);
            prev = start;
            if j == 0 {
                prev_trace_start = start;
            }
            let kind = kind_from(flags & 0x7)?;
            let status_code = (flags >> 3) & 0x3;
            let err_msg = if status_code == 2 {
                Some(c_attrs.varint()?)
            } else {
                None
            };
            let threshold = if flags & 0x20 != 0 {
                Some(c_attrs.varint()?)
            } else {
                None
            };
            let n_attrs =
                c_attrs.usize(payload.len(), "attribute count larger than the payload")?;
            attrs.clear();
            for _ in 0..n_attrs {
                let key = c_attrs.varint()?;
                let v = match c_attrs.u8()? {
                    TAG_STR => RawValue::Str(c_attrs.varint()?),
                    TAG_I64 => RawValue::I64(unzigzag(c_attrs.varint()?)),
                    TAG_F64 => RawValue::F64(f64::from_le_bytes(c_attrs.array::<8>()?)),
                    TAG_FALSE => RawValue::Bool(false),
                    TAG_TRUE => RawValue::Bool(true),
                    _ => return Err(DecodeError("unknown attribute tag")),
                };
                attrs.push((key, v));
            }
            let head = SpanHead {
                name: strings.get(name_i)?,
                service: strings.get(service_i)?,
                start,
                end,
                is_error: status_code == 2,
            };
            if !keep(&head) {
                continue;
            }
            let status = match (status_code, err_msg) {
                (0, _) => SpanStatus::Unset,
                (1, _) => SpanStatus::Ok,
                (2, Some(m)) => SpanStatus::Error(strings.shared(m)?),
                _ => return Err(DecodeError("unknown status code")),
            };
            let mut attributes = Vec::with_capacity(attrs.len());
            for (k, v) in &attrs {
                let value = match v {
                    RawValue::Str(i) => AttributeValue::Str(strings.shared(*i)?),
                    RawValue::I64(v) => AttributeValue::I64(*v),
                    RawValue::F64(v) => AttributeValue::F64(*v),
                    RawValue::Bool(v) => AttributeValue::Bool(*v),
                };
                attributes.push((strings.shared(*k)?, value));
            }
            out.push(Span {
                trace_id,
                span_id,
                parent_span_id,
                name: strings.shared(name_i)?,
                service: strings.shared(service_i)?,
                kind,
                start_unix_nanos: start,
                end_unix_nanos: end,
                status,
                attributes,
                sampling_threshold: threshold,
            });
        }
    }
    if seen != n_spans {
        return Err(DecodeError(
            "trace span counts do not add up to the span count",
        ));
    }
    Ok(n_spans)
}

/// Steps the column cursors over the `count` spans of one trace.
fn skip_trace(count: usize, cols: [&mut Reader<'_>; 6], prev_trace_start: &mut u64) -> DResult<()> {
    let [parent, ext, names, flags, times, attrs] = cols;
    if count == 0 {
        return Ok(());
    }
    for _ in 0..count {
        if parent.varint()? == 1 {
            ext.bytes(8)?;
        }
    }
    names.skip_varints(2 * count)?;
    *prev_trace_start = prev_trace_start.wrapping_add(unzigzag(times.varint()?) as u64);
    times.skip_varints(2 * count - 1)?;
    for &f in flags.bytes(count)? {
        let mut skip = usize::from((f >> 3) & 0x3 == 2) + usize::from(f & 0x20 != 0);
        attrs.skip_varints(skip)?;
        let n = attrs.usize(attrs.buf.len(), "attribute count larger than the payload")?;
        for _ in 0..n {
            attrs.skip_varints(1)?;
            skip = match attrs.u8()? {
                TAG_STR | TAG_I64 => 1,
                TAG_F64 => {
                    attrs.bytes(8)?;
                    0
                }
                TAG_FALSE | TAG_TRUE => 0,
                _ => return Err(DecodeError("unknown attribute tag")),
            };
            attrs.skip_varints(skip)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
