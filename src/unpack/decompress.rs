//! Decompression of layer blobs by media type.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use layerfs_registry::Compression;

/// Wraps `reader` in the decoder for `compression`. Gzip streams of several members (as
/// pigz and some layer builders write) are read to the end of the last member.
pub fn decompress<'a, R: Read + 'a>(
    reader: R,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::Decoder::new(reader)?),
    })
}
