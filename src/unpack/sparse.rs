//! Sparse files: written with holes where the archive stores none of the file's data.
//!
//! GNU tar stores sparse files in four ways (GNU tar manual, "Storing Sparse Files"):
//!
//! - the old GNU format, entry type `S`, whose map sits in the header and in extension
//!   blocks after it. The `tar` crate reads that map itself and returns the file's bytes with
//!   the holes filled with zeros, so those entries are written by skipping zero blocks.
//! - PAX format 0.0: `GNU.sparse.offset` and `GNU.sparse.numbytes` records, repeated.
//! - PAX format 0.1: one `GNU.sparse.map` record, `offset,size,offset,size,…`.
//! - PAX format 1.0: `GNU.sparse.major=1`, `GNU.sparse.minor=0`, and the map at the start of
//!   the entry's data as decimal numbers, one per line (count, then offset and size pairs),
//!   padded with zeros to a 512-byte block.
//!
//! In the three PAX formats the real name is in `GNU.sparse.name` and the real size in
//! `GNU.sparse.size` (0.x) or `GNU.sparse.realsize` (1.0); the entry's data is the file's
//! data segments, one after the other.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use super::pax::PaxRecords;

/// One run of data in a sparse file: everything between runs is a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub length: u64,
}

/// The layout of a sparse entry's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SparseFormat {
    /// PAX 0.0 or 0.1: the map is known from the records.
    Map { segments: Vec<Segment>, size: u64 },
    /// PAX 1.0: the map starts the entry's data.
    MapInData { size: u64 },
}

/// An invalid or unsupported GNU sparse entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SparseError {
    #[error("invalid GNU sparse record {0}")]
    Record(&'static str),
    #[error("unsupported GNU sparse format version {0}")]
    Version(String),
    #[error("invalid GNU sparse map: {0}")]
    Map(&'static str),
}

/// A map has at most this many segments: GNU tar itself writes one per run of data, and a
/// limit keeps a hostile map from taking unbounded memory.
const MAX_SEGMENTS: u64 = 1 << 20;
/// The size of a tar block, to which the PAX 1.0 map is padded.
const BLOCK: u64 = 512;

/// Reads an entry's sparse format from its PAX records. Returns `None` for an ordinary file.
pub fn format(pax: &PaxRecords) -> Result<Option<SparseFormat>, SparseError> {
    if let Some(major) = pax.get_str("GNU.sparse.major") {
        let minor = pax.get_str("GNU.sparse.minor").unwrap_or("");
        if (major, minor) != ("1", "0") {
            return Err(SparseError::Version(format!("{major}.{minor}")));
        }
        let size = number(pax.get_str("GNU.sparse.realsize"), "GNU.sparse.realsize")?;
        return Ok(Some(SparseFormat::MapInData { size }));
    }
    let segments = if let Some(map) = pax.get_str("GNU.sparse.map") {
        map_from_list(map)?
    } else if pax.get("GNU.sparse.offset").is_some() {
        map_from_pairs(pax)?
    } else {
        return Ok(None);
    };
    let size = number(pax.get_str("GNU.sparse.size"), "GNU.sparse.size")?;
    check_map(&segments, size)?;
    Ok(Some(SparseFormat::Map { segments, size }))
}

fn number(text: Option<&str>, record: &'static str) -> Result<u64, SparseError> {
    text.and_then(|text| text.parse().ok())
        .ok_or(SparseError::Record(record))
}

/// PAX 0.1: `GNU.sparse.map=offset,size,offset,size,…`.
fn map_from_list(map: &str) -> Result<Vec<Segment>, SparseError> {
    if map.is_empty() {
        return Ok(Vec::new());
    }
    let numbers: Vec<&str> = map.split(',').collect();
    if numbers.len() % 2 != 0 {
        return Err(SparseError::Record("GNU.sparse.map"));
    }
    numbers
        .chunks(2)
        .map(|pair| {
            Ok(Segment {
                offset: number(Some(pair[0]), "GNU.sparse.map")?,
                length: number(Some(pair[1]), "GNU.sparse.map")?,
            })
        })
        .collect()
}

/// PAX 0.0: each `GNU.sparse.offset` record is followed by its `GNU.sparse.numbytes`.
fn map_from_pairs(pax: &PaxRecords) -> Result<Vec<Segment>, SparseError> {
    let mut segments = Vec::new();
    let mut offset = None;
    for (key, value) in pax.iter() {
        let value = std::str::from_utf8(value).ok();
        match key {
            b"GNU.sparse.offset" => {
                if offset.is_some() {
                    return Err(SparseError::Record("GNU.sparse.offset"));
                }
                offset = Some(number(value, "GNU.sparse.offset")?);
            }
            b"GNU.sparse.numbytes" => {
                let offset = offset
                    .take()
                    .ok_or(SparseError::Record("GNU.sparse.numbytes"))?;
                let length = number(value, "GNU.sparse.numbytes")?;
                segments.push(Segment { offset, length });
            }
            _ => {}
        }
    }
    if offset.is_some() {
        return Err(SparseError::Record("GNU.sparse.offset"));
    }
    Ok(segments)
}

/// Checks that segments are in order, do not overlap and end within the file.
fn check_map(segments: &[Segment], size: u64) -> Result<(), SparseError> {
    if segments.len() as u64 > MAX_SEGMENTS {
        return Err(SparseError::Map("too many segments"));
    }
    let mut end_of_previous = 0;
    for segment in segments {
        if segment.offset < end_of_previous {
            return Err(SparseError::Map("segments overlap or are out of order"));
        }
        end_of_previous = segment
            .offset
            .checked_add(segment.length)
            .ok_or(SparseError::Map("segment end overflows"))?;
    }
    if end_of_previous > size {
        return Err(SparseError::Map("a segment ends past the file size"));
    }
    Ok(())
}

/// Reads the PAX 1.0 map from the start of `data`, consuming its padding too. Returns the
/// segments and the number of bytes the map took.
pub fn read_map_in_data(data: &mut impl Read, size: u64) -> io::Result<(Vec<Segment>, u64)> {
    let mut reader = MapReader { data, consumed: 0 };
    let count = reader.number()?;
    if count > MAX_SEGMENTS {
        return Err(invalid(SparseError::Map("too many segments")));
    }
    let mut segments = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let offset = reader.number()?;
        let length = reader.number()?;
        segments.push(Segment { offset, length });
    }
    check_map(&segments, size).map_err(invalid)?;

    let padding = (BLOCK - reader.consumed % BLOCK) % BLOCK;
    io::copy(&mut (&mut reader.data).take(padding), &mut io::sink())?;
    Ok((segments, reader.consumed + padding))
}

struct MapReader<'a, R> {
    data: &'a mut R,
    consumed: u64,
}

impl<R: Read> MapReader<'_, R> {
    /// Reads one decimal number ended by a newline.
    fn number(&mut self) -> io::Result<u64> {
        let mut value: u64 = 0;
        let mut digits = 0;
        loop {
            let mut byte = [0u8];
            self.data.read_exact(&mut byte)?;
            self.consumed += 1;
            match byte[0] {
                b'\n' if digits > 0 => return Ok(value),
                digit @ b'0'..=b'9' if digits < 20 => {
                    value = value
                        .checked_mul(10)
                        .and_then(|value| value.checked_add(u64::from(digit - b'0')))
                        .ok_or_else(|| invalid(SparseError::Map("number too large")))?;
                    digits += 1;
                }
                _ => return Err(invalid(SparseError::Map("not a decimal number"))),
            }
        }
    }
}

fn invalid(error: SparseError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// A failed copy from the archive to a file: reading the archive, or writing the file.
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Writes the segments of `data` at their offsets in `file` and sets its length to `size`,
/// leaving holes between them.
pub fn write_segments(
    file: &mut File,
    data: &mut impl Read,
    segments: &[Segment],
    size: u64,
) -> Result<(), CopyError> {
    let mut buffer = vec![0u8; 32 * HOLE_BLOCK];
    for segment in segments {
        file.seek(SeekFrom::Start(segment.offset))
            .map_err(CopyError::Write)?;
        let mut remaining = segment.length;
        while remaining > 0 {
            let window = buffer.len().min(remaining as usize);
            let count = data.read(&mut buffer[..window]).map_err(CopyError::Read)?;
            if count == 0 {
                return Err(CopyError::Read(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "sparse file data ends before its map does",
                )));
            }
            file.write_all(&buffer[..count]).map_err(CopyError::Write)?;
            remaining -= count as u64;
        }
    }
    file.set_len(size).map_err(CopyError::Write)
}

/// The granularity of holes: a file system block on the common Linux file systems.
const HOLE_BLOCK: usize = 4096;

/// Copies `data` into `file`, seeking over every aligned block of zeros instead of writing
/// it, so that holes the archive filled with zeros become holes again.
///
/// NOTE: a block of zeros that was data in the original file becomes a hole too. The content
/// reads the same; only the allocation differs.
pub fn copy_with_holes(file: &mut File, data: &mut impl Read) -> Result<(), CopyError> {
    let mut buffer = vec![0u8; 32 * HOLE_BLOCK];
    let mut total = 0u64;
    loop {
        let filled = fill(data, &mut buffer).map_err(CopyError::Read)?;
        if filled == 0 {
            break;
        }
        for block in buffer[..filled].chunks(HOLE_BLOCK) {
            let written = if block.iter().all(|&byte| byte == 0) {
                file.seek(SeekFrom::Current(block.len() as i64)).map(drop)
            } else {
                file.write_all(block)
            };
            written.map_err(CopyError::Write)?;
        }
        total += filled as u64;
    }
    file.set_len(total).map_err(CopyError::Write)
}

/// Reads until `buffer` is full or `data` ends, so that blocks stay aligned to the file.
fn fill(data: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match data.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(pairs: &[(u64, u64)]) -> Vec<Segment> {
        pairs
            .iter()
            .map(|&(offset, length)| Segment { offset, length })
            .collect()
    }

    /// PAX records and the format they describe.
    type FormatCase<'a> = (
        &'a [(&'a str, &'a str)],
        Result<Option<SparseFormat>, SparseError>,
    );

    #[test]
    fn sparse_format_table() {
        let cases: &[FormatCase] = &[
            (&[("path", "a")], Ok(None)),
            (
                &[
                    ("GNU.sparse.major", "1"),
                    ("GNU.sparse.minor", "0"),
                    ("GNU.sparse.realsize", "9000"),
                ],
                Ok(Some(SparseFormat::MapInData { size: 9000 })),
            ),
            (
                &[("GNU.sparse.major", "2"), ("GNU.sparse.minor", "0")],
                Err(SparseError::Version("2.0".into())),
            ),
            (
                &[
                    ("GNU.sparse.size", "10000"),
                    ("GNU.sparse.map", "0,10,8192,100"),
                ],
                Ok(Some(SparseFormat::Map {
                    segments: segments(&[(0, 10), (8192, 100)]),
                    size: 10000,
                })),
            ),
            (
                &[
                    ("GNU.sparse.size", "10000"),
                    ("GNU.sparse.offset", "4096"),
                    ("GNU.sparse.numbytes", "5"),
                    ("GNU.sparse.offset", "9000"),
                    ("GNU.sparse.numbytes", "7"),
                ],
                Ok(Some(SparseFormat::Map {
                    segments: segments(&[(4096, 5), (9000, 7)]),
                    size: 10000,
                })),
            ),
            (
                &[("GNU.sparse.size", "10"), ("GNU.sparse.map", "0,10,5,1")],
                Err(SparseError::Map("segments overlap or are out of order")),
            ),
            (
                &[("GNU.sparse.size", "10"), ("GNU.sparse.map", "8,10")],
                Err(SparseError::Map("a segment ends past the file size")),
            ),
            (
                &[("GNU.sparse.size", "10"), ("GNU.sparse.map", "1,2,3")],
                Err(SparseError::Record("GNU.sparse.map")),
            ),
            (
                &[("GNU.sparse.map", "0,1")],
                Err(SparseError::Record("GNU.sparse.size")),
            ),
            (
                &[("GNU.sparse.size", "10"), ("GNU.sparse.numbytes", "1")],
                Ok(None),
            ),
            (
                &[
                    ("GNU.sparse.size", "10"),
                    ("GNU.sparse.offset", "1"),
                    ("GNU.sparse.offset", "2"),
                ],
                Err(SparseError::Record("GNU.sparse.offset")),
            ),
        ];
        for (records, expected) in cases {
            let pax = PaxRecords::from_pairs(records);
            assert_eq!(&format(&pax), expected, "records {records:?}");
        }
    }

    #[test]
    fn map_in_data_reads_map_and_padding() {
        let mut data = b"2\n0\n3\n4096\n2\n".to_vec();
        data.resize(512, 0);
        data.extend_from_slice(b"abcde");
        let mut reader = data.as_slice();
        let (map, consumed) = read_map_in_data(&mut reader, 8192).unwrap();
        assert_eq!(map, segments(&[(0, 3), (4096, 2)]));
        assert_eq!(consumed, 512);
        assert_eq!(reader, b"abcde");
    }

    #[test]
    fn map_in_data_rejects_garbage() {
        for data in [&b"x\n"[..], b"1\n5\n", b"1\n0\n99\n", b"\n"] {
            let result = read_map_in_data(&mut &data[..], 10);
            assert!(
                result.is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(data)
            );
        }
    }
}
