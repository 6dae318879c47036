//! One segment file: loading (with recovery scan), appending blocks, sealing, reading blocks.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::format::{
    BLOCK_HEADER_LEN, BLOCK_MAGIC, BlockHeader, CODEC_RAW, CODEC_ZSTD, FOOTER_MAGIC, HeaderProblem,
    SEGMENT_HEADER_LEN, SegmentHeader, SegmentKind, TRAILER_LEN, checksum, decode_footer,
    decode_trailer, encode_footer, encode_trailer,
};
use crate::{Corruption, Result, StorageError};

/// Index entry of one block.
#[derive(Debug, Clone)]
pub(crate) struct BlockMeta {
    pub(crate) offset: u64,
    pub(crate) header: BlockHeader,
    pub(crate) filter: Vec<u8>,
}

/// A segment file and its in-memory index.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) seq: u64,
    pub(crate) kind: SegmentKind,
    pub(crate) path: PathBuf,
    pub(crate) window_start_secs: u64,
    pub(crate) sealed: bool,
    pub(crate) blocks: Vec<BlockMeta>,
    /// End of the last block: where the next block (or the footer) goes.
    pub(crate) end: u64,
    /// Bytes of the file on disk.
    pub(crate) file_len: u64,
    /// A read handle, opened on first read.
    pub(crate) reader: Option<File>,
}

/// Something found while loading a segment.
#[derive(Debug)]
pub(crate) enum Finding {
    /// An unreadable region in the middle (skipped).
    Corrupt { offset: u64, reason: String },
    /// Bytes after the last intact block that do not form a block.
    Tail { offset: u64, bytes: u64 },
}

/// Why a segment file could not be used at all.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// Shorter than a segment header: torn while being created, holds no block.
    TooShort(u64),
    /// The header is not ours or is damaged.
    Header(HeaderProblem),
    /// The header names another kind than the file name.
    KindMismatch,
    Io(io::Error),
}

impl From<io::Error> for LoadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// File name of a segment.
pub(crate) fn file_name(kind: SegmentKind, seq: u64) -> String {
    format!("{}-{seq:012}.seg", kind.as_str())
}

/// Parses a segment file name into kind and sequence number.
pub(crate) fn parse_file_name(name: &str) -> Option<(SegmentKind, u64)> {
    let stem = name.strip_suffix(".seg")?;
    let (prefix, seq) = stem.split_once('-')?;
    let kind = match prefix {
        "spans" => SegmentKind::Spans,
        "metrics" => SegmentKind::Metrics,
        _ => return None,
    };
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((kind, seq.parse().ok()?))
}

fn read_at(f: &mut File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

/// Whether a valid, complete block with an intact body starts at `pos`.
fn block_at(data: &[u8], pos: usize, kind: SegmentKind) -> Option<(BlockHeader, bool)> {
    let h = BlockHeader::decode(data.get(pos..)?)?;
    if h.kind != kind {
        return None;
    }
    let body_start = pos + BLOCK_HEADER_LEN;
    let body = data.get(body_start..body_start.checked_add(h.body_len as usize)?)?;
    Some((h, checksum(body) == h.body_checksum))
}

/// Scans the blocks of an unsealed segment held in memory.
fn scan(data: &[u8], kind: SegmentKind) -> (Vec<BlockMeta>, u64, Vec<Finding>) {
    let mut blocks = Vec::new();
    let mut findings = Vec::new();
    let mut pos = SEGMENT_HEADER_LEN;
    while pos < data.len() {
        if let Some(h) = BlockHeader::decode(&data[pos..]).filter(|h| h.kind == kind) {
            let body_start = pos + BLOCK_HEADER_LEN;
            let body_end = body_start + h.body_len as usize;
            let Some(body) = data.get(body_start..body_end) else {
                break; // torn: the body was not fully written
            };
            if checksum(body) == h.body_checksum {
                blocks.push(BlockMeta {
                    offset: pos as u64,
                    header: h,
                    filter: body[..h.filter_len as usize].to_vec(),
                });
            } else {
                findings.push(Finding::Corrupt {
                    offset: pos as u64,
                    reason: "block body checksum mismatch; block skipped".into(),
                });
            }
            pos = body_end;
            continue;
        }
        if data[pos..].starts_with(&FOOTER_MAGIC) {
            break; // the footer of a segment whose trailer was lost; rewritten on seal
        }
        // A damaged header: look for the next intact block.
        let next = (pos + 1..data.len().saturating_sub(BLOCK_HEADER_LEN - 1)).find(|&q| {
            data[q..].starts_with(&BLOCK_MAGIC) && block_at(data, q, kind).is_some_and(|(_, ok)| ok)
        });
        match next {
            Some(q) => {
                findings.push(Finding::Corrupt {
                    offset: pos as u64,
                    reason: format!("unreadable block header; {} bytes skipped", q - pos),
                });
                pos = q;
            }
            None => break,
        }
    }
    if pos < data.len() {
        findings.push(Finding::Tail {
            offset: pos as u64,
            bytes: (data.len() - pos) as u64,
        });
    }
    (blocks, pos as u64, findings)
}

impl Segment {
    /// Loads a segment: from its footer when sealed, else by scanning every block.
    pub(crate) fn load(
        path: &Path,
        kind: SegmentKind,
        seq: u64,
    ) -> Result<(Self, Vec<Finding>), LoadError> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        if len < SEGMENT_HEADER_LEN as u64 {
            return Err(LoadError::TooShort(len));
        }
        let mut hb = [0u8; SEGMENT_HEADER_LEN];
        read_at(&mut f, 0, &mut hb)?;
        let header = SegmentHeader::decode(&hb).map_err(LoadError::Header)?;
        if header.kind != kind {
            return Err(LoadError::KindMismatch);
        }
        let mut seg = Self {
            seq,
            kind,
            path: path.to_path_buf(),
            window_start_secs: header.window_start_secs,
            sealed: false,
            blocks: Vec::new(),
            end: SEGMENT_HEADER_LEN as u64,
            file_len: len,
            reader: None,
        };
        if let Some(blocks) = Self::read_footer(&mut f, len, kind)? {
            seg.end = blocks.last().map_or(SEGMENT_HEADER_LEN as u64, |b| {
                b.offset + b.header.total_len()
            });
            seg.blocks = blocks;
            seg.sealed = true;
            return Ok((seg, Vec::new()));
        }
        let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        f.seek(SeekFrom::Start(0))?;
        f.read_to_end(&mut data)?;
        let (blocks, end, findings) = scan(&data, kind);
        seg.blocks = blocks;
        seg.end = end;
        seg.file_len = data.len() as u64;
        Ok((seg, findings))
    }

    fn read_footer(
        f: &mut File,
        len: u64,
        kind: SegmentKind,
    ) -> io::Result<Option<Vec<BlockMeta>>> {
        let min = (SEGMENT_HEADER_LEN + TRAILER_LEN + 8) as u64;
        if len < min {
            return Ok(None);
        }
        let mut tb = [0u8; TRAILER_LEN];
        read_at(f, len - TRAILER_LEN as u64, &mut tb)?;
        let Some((offset, flen, sum)) = decode_trailer(&tb) else {
            return Ok(None);
        };
        let fits = offset >= SEGMENT_HEADER_LEN as u64
            && offset
                .checked_add(flen)
                .and_then(|e| e.checked_add(TRAILER_LEN as u64))
                == Some(len);
        if !fits {
            return Ok(None);
        }
        let mut fb = vec![0u8; usize::try_from(flen).unwrap_or(0)];
        read_at(f, offset, &mut fb)?;
        if checksum(&fb) != sum {
            return Ok(None);
        }
        let Some(entries) = decode_footer(&fb) else {
            return Ok(None);
        };
        let mut blocks = Vec::with_capacity(entries.len());
        let mut prev_end = SEGMENT_HEADER_LEN as u64;
        for (off, header, filter) in entries {
            if off < prev_end || off + header.total_len() > offset || header.kind != kind {
                return Ok(None);
            }
            prev_end = off + header.total_len();
            blocks.push(BlockMeta {
                offset: off,
                header,
                filter,
            });
        }
        Ok(Some(blocks))
    }

    /// Creates a new, empty segment file (header written, not yet synced).
    pub(crate) fn create(
        dir: &Path,
        kind: SegmentKind,
        seq: u64,
        window_start_secs: u64,
    ) -> Result<(Self, File)> {
        let path = dir.join(file_name(kind, seq));
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| StorageError::io("create segment", &path, e))?;
        let header = SegmentHeader {
            kind,
            window_start_secs,
        }
        .encode();
        f.write_all(&header)
            .map_err(|e| StorageError::io("write segment header to", &path, e))?;
        let seg = Self {
            seq,
            kind,
            path,
            window_start_secs,
            sealed: false,
            blocks: Vec::new(),
            end: SEGMENT_HEADER_LEN as u64,
            file_len: SEGMENT_HEADER_LEN as u64,
            reader: None,
        };
        Ok((seg, f))
    }

    /// Opens an existing unsealed segment for appending.
    pub(crate) fn open_writer(&self) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| StorageError::io("open segment for writing", &self.path, e))
    }

    /// Appends one block at the end of the valid data: `block` holds the encoded `header`
    /// followed by the body.
    pub(crate) fn append_block(
        &mut self,
        f: &mut File,
        header: BlockHeader,
        block: &[u8],
    ) -> Result<()> {
        debug_assert_eq!(block.len() as u64, header.total_len());
        let res = f
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| f.write_all(block));
        if let Err(e) = res {
            // Drop a partial block so the file ends on a block boundary again.
            let _ = f.set_len(self.end);
            return Err(StorageError::io("write block to", &self.path, e));
        }
        let filter_end = BLOCK_HEADER_LEN + header.filter_len as usize;
        self.blocks.push(BlockMeta {
            offset: self.end,
            header,
            filter: block
                .get(BLOCK_HEADER_LEN..filter_end)
                .unwrap_or_default()
                .to_vec(),
        });
        self.end += block.len() as u64;
        self.file_len = self.file_len.max(self.end);
        Ok(())
    }

    /// Cuts off everything after the last intact block.
    pub(crate) fn truncate_tail(&mut self, f: &File) -> Result<()> {
        f.set_len(self.end)
            .and_then(|()| f.sync_all())
            .map_err(|e| StorageError::io("truncate torn tail of", &self.path, e))?;
        self.file_len = self.end;
        Ok(())
    }

    /// Writes footer and trailer after the last block and syncs the file.
    pub(crate) fn seal(&mut self, f: &mut File) -> Result<()> {
        let footer = encode_footer(
            self.blocks
                .iter()
                .map(|b| (b.offset, &b.header, b.filter.as_slice())),
        );
        let trailer = encode_trailer(self.end, &footer);
        let mut buf = footer;
        buf.extend_from_slice(&trailer);
        let total = self.end + buf.len() as u64;
        f.seek(SeekFrom::Start(self.end))
            .and_then(|_| f.write_all(&buf))
            .and_then(|()| f.set_len(total))
            .and_then(|()| f.sync_all())
            .map_err(|e| StorageError::io("write footer to", &self.path, e))?;
        self.sealed = true;
        self.file_len = total;
        Ok(())
    }

    /// Newest timestamp of any block.
    pub(crate) fn newest(&self) -> Option<u64> {
        self.blocks.iter().map(|b| b.header.max_time).max()
    }

    /// Oldest timestamp of any block.
    pub(crate) fn oldest(&self) -> Option<u64> {
        self.blocks.iter().map(|b| b.header.min_time).min()
    }

    /// Reads, verifies and decompresses block `i`.
    ///
    /// `Ok(None)`: the file is gone (deleted by retention in another process).
    /// `Err(corruption)` in the inner result: the block is damaged and must be skipped.
    pub(crate) fn read_payload(&mut self, i: usize) -> Result<Option<Result<Vec<u8>, Corruption>>> {
        let meta = &self.blocks[i];
        let offset = meta.offset;
        let corrupt = |reason: String| Corruption {
            path: self.path.clone(),
            offset,
            reason,
        };
        if self.reader.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.reader = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(StorageError::io("open segment", &self.path, e)),
            }
        }
        let Some(f) = self.reader.as_mut() else {
            return Ok(None);
        };
        let mut buf = vec![0u8; usize::try_from(meta.header.total_len()).unwrap_or(0)];
        match read_at(f, offset, &mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(Some(Err(corrupt(
                    "block extends past the end of the file".into(),
                ))));
            }
            Err(e) => return Err(StorageError::io("read block from", &self.path, e)),
        }
        if BlockHeader::decode(&buf) != Some(meta.header) {
            return Ok(Some(Err(corrupt(
                "block header does not match the index".into(),
            ))));
        }
        let body = &buf[BLOCK_HEADER_LEN..];
        if checksum(body) != meta.header.body_checksum {
            return Ok(Some(Err(corrupt("block body checksum mismatch".into()))));
        }
        let stored = &body[meta.header.filter_len as usize..];
        let raw_len = meta.header.raw_len as usize;
        let payload = match meta.header.codec {
            CODEC_RAW => stored.to_vec(),
            CODEC_ZSTD => match zstd::bulk::decompress(stored, raw_len) {
                Ok(p) => p,
                Err(e) => return Ok(Some(Err(corrupt(format!("zstd: {e}"))))),
            },
            c => return Ok(Some(Err(corrupt(format!("unknown codec {c}"))))),
        };
        if payload.len() != raw_len {
            return Ok(Some(Err(corrupt(
                "decompressed size differs from the header".into(),
            ))));
        }
        Ok(Some(Ok(payload)))
    }
}

/// Syncs a directory so created, renamed and removed entries survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StorageError::io("sync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes a file; a file already gone counts as removed.
pub(crate) fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path, e)),
    }
}
