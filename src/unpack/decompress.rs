//! Decompression of layer blobs by media type.

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::GzDecoder;
use layerfs_registry::Compression;

/// Input buffer of the decoders: large enough that a read reaches the network buffer, not a
/// syscall per few kilobytes.
const INPUT_BUFFER: usize = 64 * 1024;

/// Wraps `reader` in the decoder for `compression`.
///
/// Gzip streams are read member after member to the end (pigz and some layer builders write
/// several), and zero bytes after the last member are accepted as padding, as GNU gzip
/// does. Zstd streams may hold several frames, skippable frames among them.
///
/// NOTE: the decompressed size is not limited. A small blob that expands to more than the
/// store's free space fills the disk before the pull fails. The failed pull then removes
/// what it staged, so the store is left as it was.
pub fn decompress<'a, R: Read + 'a>(
    reader: R,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(GzipMembers::new(BufReader::with_capacity(
            INPUT_BUFFER,
            reader,
        ))),
        Compression::Zstd => Box::new(zstd::Decoder::new(reader)?),
    })
}

/// Reads the members of a gzip stream one after the other (RFC 1952, section 2.2).
struct GzipMembers<R: BufRead> {
    state: State<R>,
}

enum State<R: BufRead> {
    /// Boxed: the decoder's state is far larger than the other variants.
    Member(Box<GzDecoder<R>>),
    /// Between members: the next bytes decide whether another member follows.
    Between(R),
    Done,
}

impl<R: BufRead> GzipMembers<R> {
    fn new(reader: R) -> GzipMembers<R> {
        GzipMembers {
            state: State::Member(Box::new(GzDecoder::new(reader))),
        }
    }
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return Ok(0),
                State::Member(mut decoder) => match decoder.read(buffer)? {
                    0 => self.state = State::Between((*decoder).into_inner()),
                    count => {
                        self.state = State::Member(decoder);
                        return Ok(count);
                    }
                },
                State::Between(mut reader) => {
                    let next = reader.fill_buf()?;
                    match next.first() {
                        None => return Ok(0),
                        Some(0) => {
                            skip_zero_padding(&mut reader)?;
                            return Ok(0);
                        }
                        Some(_) => self.state = State::Member(Box::new(GzDecoder::new(reader))),
                    }
                }
            }
        }
    }
}

/// Consumes the rest of the input, which must be all zeros.
fn skip_zero_padding(reader: &mut impl BufRead) -> io::Result<()> {
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        if chunk.iter().any(|&byte| byte != 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected data after the zero padding that follows the gzip stream",
            ));
        }
        let length = chunk.len();
        reader.consume(length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn decompressed(input: Vec<u8>, compression: Compression) -> io::Result<Vec<u8>> {
        let mut output = Vec::new();
        decompress(input.as_slice(), compression)?.read_to_end(&mut output)?;
        Ok(output)
    }

    #[test]
    fn gzip_members_are_concatenated() {
        let mut input = gzip(b"first ");
        input.extend(gzip(b"second"));
        let output = decompressed(input, Compression::Gzip).unwrap();
        assert_eq!(output, b"first second");
    }

    #[test]
    fn gzip_zero_padding_is_skipped() {
        let mut input = gzip(b"data");
        input.extend(vec![0u8; 100_000]);
        let output = decompressed(input, Compression::Gzip).unwrap();
        assert_eq!(output, b"data");
    }

    #[test]
    fn gzip_garbage_after_padding_is_an_error() {
        let mut input = gzip(b"data");
        input.extend([0, 0, 7]);
        let error = decompressed(input, Compression::Gzip).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn gzip_garbage_member_is_an_error() {
        let mut input = gzip(b"data");
        input.extend(b"not gzip");
        assert!(decompressed(input, Compression::Gzip).is_err());
    }

    #[test]
    fn zstd_frames_and_skippable_frames() {
        let mut input = zstd::encode_all(&b"one "[..], 1).unwrap();
        // A skippable frame: magic 0x184D2A50 (little-endian), a 32-bit length, then bytes.
        input.extend([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
        input.extend(zstd::encode_all(&b"two"[..], 1).unwrap());
        let output = decompressed(input, Compression::Zstd).unwrap();
        assert_eq!(output, b"one two");
    }
}
