//! On-disk framing: segment header, block header, footer and trailer.
//!
//! `docs/storage-format.md` is the reference; every constant here appears there.

use twox_hash::XxHash3_64;

/// First 8 bytes of every segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"\x89TTASEG\n";
/// First 4 bytes of every block header.
pub(crate) const BLOCK_MAGIC: [u8; 4] = *b"TTAB";
/// First 4 bytes of a footer.
pub(crate) const FOOTER_MAGIC: [u8; 4] = *b"TTAF";
/// Last 8 bytes of a sealed segment.
pub(crate) const TRAILER_MAGIC: [u8; 8] = *b"TTAEND\r\n";
/// The format version written and read by this build.
pub(crate) const FORMAT_VERSION: u16 = 1;

pub(crate) const SEGMENT_HEADER_LEN: usize = 32;
pub(crate) const BLOCK_HEADER_LEN: usize = 64;
pub(crate) const TRAILER_LEN: usize = 32;

/// What a segment (and each of its blocks) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SegmentKind {
    /// Span blocks.
    Spans,
    /// Metrics snapshot blocks.
    Metrics,
}

impl SegmentKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Spans => 1,
            Self::Metrics => 2,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(Self::Spans),
            2 => Some(Self::Metrics),
            _ => None,
        }
    }

    /// The file name prefix: `spans` or `metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spans => "spans",
            Self::Metrics => "metrics",
        }
    }
}

pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    XxHash3_64::oneshot(bytes)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The 32-byte header at offset 0 of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) kind: SegmentKind,
    pub(crate) window_start_secs: u64,
}

/// Why a segment header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderProblem {
    Magic,
    Checksum,
    Version(u16),
    Kind,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[10] = self.kind.code();
        b[16..24].copy_from_slice(&self.window_start_secs.to_le_bytes());
        let c = checksum(&b[0..24]);
        b[24..32].copy_from_slice(&c.to_le_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8; SEGMENT_HEADER_LEN]) -> Result<Self, HeaderProblem> {
        if b[0..8] != SEGMENT_MAGIC {
            return Err(HeaderProblem::Magic);
        }
        if checksum(&b[0..24]) != u64_at(b, 24) {
            return Err(HeaderProblem::Checksum);
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != FORMAT_VERSION {
            return Err(HeaderProblem::Version(version));
        }
        Ok(Self {
            kind: SegmentKind::from_code(b[10]).ok_or(HeaderProblem::Kind)?,
            window_start_secs: u64_at(b, 16),
        })
    }
}

/// Block body encoding.
pub(crate) const CODEC_RAW: u8 = 0;
pub(crate) const CODEC_ZSTD: u8 = 1;

/// The 64-byte header in front of every block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    pub(crate) kind: SegmentKind,
    pub(crate) codec: u8,
    /// Bytes after the header: filter plus stored payload.
    pub(crate) body_len: u32,
    /// Payload bytes before compression.
    pub(crate) raw_len: u32,
    /// Trace-id filter bytes at the start of the body.
    pub(crate) filter_len: u32,
    /// Spans or snapshots in the block.
    pub(crate) count: u32,
    /// Distinct traces in the block (0 for metrics).
    pub(crate) traces: u32,
    /// Earliest span start (or snapshot timestamp), Unix nanoseconds.
    pub(crate) min_time: u64,
    /// Latest span start (or snapshot timestamp), Unix nanoseconds.
    pub(crate) max_time: u64,
    /// xxh3-64 of the body.
    pub(crate) body_checksum: u64,
}

impl BlockHeader {
    pub(crate) fn encode(&self) -> [u8; BLOCK_HEADER_LEN] {
        let mut b = [0u8; BLOCK_HEADER_LEN];
        b[0..4].copy_from_slice(&BLOCK_MAGIC);
        b[4] = FORMAT_VERSION as u8;
        b[5] = self.kind.code();
        b[6] = self.codec;
        b[8..12].copy_from_slice(&self.body_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.filter_len.to_le_bytes());
        b[20..24].copy_from_slice(&self.count.to_le_bytes());
        b[24..28].copy_from_slice(&self.traces.to_le_bytes());
        b[32..40].copy_from_slice(&self.min_time.to_le_bytes());
        b[40..48].copy_from_slice(&self.max_time.to_le_bytes());
        b[48..56].copy_from_slice(&self.body_checksum.to_le_bytes());
        let c = checksum(&b[0..56]);
        b[56..64].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Parses a header; `None` unless magic, version, checksum and fields are all valid.
    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        let b = b.get(..BLOCK_HEADER_LEN)?;
        if b[0..4] != BLOCK_MAGIC || b[4] != FORMAT_VERSION as u8 {
            return None;
        }
        if checksum(&b[0..56]) != u64_at(b, 56) {
            return None;
        }
        let h = Self {
            kind: SegmentKind::from_code(b[5])?,
            codec: b[6],
            body_len: u32_at(b, 8),
            raw_len: u32_at(b, 12),
            filter_len: u32_at(b, 16),
            count: u32_at(b, 20),
            traces: u32_at(b, 24),
            min_time: u64_at(b, 32),
            max_time: u64_at(b, 40),
            body_checksum: u64_at(b, 48),
        };
        if h.codec > CODEC_ZSTD || h.filter_len > h.body_len {
            return None;
        }
        Some(h)
    }

    /// Bytes of header plus body.
    pub(crate) fn total_len(&self) -> u64 {
        BLOCK_HEADER_LEN as u64 + u64::from(self.body_len)
    }
}

/// Encodes the footer (without trailer) for blocks `(offset, header, filter)`.
pub(crate) fn encode_footer<'a>(
    blocks: impl ExactSizeIterator<Item = (u64, &'a BlockHeader, &'a [u8])>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + blocks.len() * (8 + BLOCK_HEADER_LEN + 64));
    out.extend_from_slice(&FOOTER_MAGIC);
    out.extend_from_slice(&(blocks.len() as u32).to_le_bytes());
    for (offset, header, filter) in blocks {
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(filter);
    }
    out
}

/// Encodes the 32-byte trailer that closes a sealed segment.
pub(crate) fn encode_trailer(footer_offset: u64, footer: &[u8]) -> [u8; TRAILER_LEN] {
    let mut b = [0u8; TRAILER_LEN];
    b[0..8].copy_from_slice(&footer_offset.to_le_bytes());
    b[8..16].copy_from_slice(&(footer.len() as u64).to_le_bytes());
    b[16..24].copy_from_slice(&checksum(footer).to_le_bytes());
    b[24..32].copy_from_slice(&TRAILER_MAGIC);
    b
}

/// Parses a trailer: `(footer_offset, footer_len, footer_checksum)`.
pub(crate) fn decode_trailer(b: &[u8]) -> Option<(u64, u64, u64)> {
    let b = b.get(..TRAILER_LEN)?;
    if b[24..32] != TRAILER_MAGIC {
        return None;
    }
    Some((u64_at(b, 0), u64_at(b, 8), u64_at(b, 16)))
}

/// Parses a footer into `(offset, header, filter)` entries.
pub(crate) fn decode_footer(b: &[u8]) -> Option<Vec<(u64, BlockHeader, Vec<u8>)>> {
    if b.get(0..4)? != FOOTER_MAGIC {
        return None;
    }
    let n = u32_at(b.get(0..8)?, 4) as usize;
    let mut pos = 8;
    let mut out = Vec::with_capacity(n.min(b.len() / (8 + BLOCK_HEADER_LEN)));
    for _ in 0..n {
        let offset = u64_at(b.get(pos..pos + 8)?, 0);
        let header = BlockHeader::decode(b.get(pos + 8..pos + 8 + BLOCK_HEADER_LEN)?)?;
        pos += 8 + BLOCK_HEADER_LEN;
        let flen = header.filter_len as usize;
        let filter = b.get(pos..pos + flen)?.to_vec();
        pos += flen;
        out.push((offset, header, filter));
    }
    (pos == b.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BlockHeader {
        BlockHeader {
            kind: SegmentKind::Spans,
            codec: CODEC_ZSTD,
            body_len: 100,
            raw_len: 400,
            filter_len: 8,
            count: 12,
            traces: 2,
            min_time: 5,
            max_time: 9,
            body_checksum: 77,
        }
    }

    #[test]
    fn headers_round_trip_and_reject_any_flipped_byte() {
        let h = header();
        let b = h.encode();
        assert_eq!(BlockHeader::decode(&b), Some(h));
        for i in 0..BLOCK_HEADER_LEN {
            let mut c = b;
            c[i] ^= 1;
            assert_eq!(BlockHeader::decode(&c), None, "byte {i}");
        }
        let s = SegmentHeader {
            kind: SegmentKind::Metrics,
            window_start_secs: 3600,
        };
        let sb = s.encode();
        assert_eq!(SegmentHeader::decode(&sb), Ok(s));
        let mut bad = sb;
        bad[0] = b'X';
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderProblem::Magic));
        let mut bad = sb;
        bad[17] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), Err(HeaderProblem::Checksum));
    }

    #[test]
    fn footers_round_trip_and_reject_truncation() {
        let h = header();
        let filter = vec![0xaa; 8];
        let footer = encode_footer(
            [(32u64, &h, filter.as_slice()), (196, &h, filter.as_slice())].into_iter(),
        );
        let entries = decode_footer(&footer).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1], (196, h, filter.clone()));
        for cut in 0..footer.len() {
            assert!(decode_footer(&footer[..cut]).is_none(), "cut {cut}");
        }
        let trailer = encode_trailer(1_000, &footer);
        assert_eq!(
            decode_trailer(&trailer),
            Some((1_000, footer.len() as u64, checksum(&footer)))
        );
    }
}
