//! One layer in every compressed form registries serve: uncompressed, gzip with one or
//! several members and with zero padding after them, zstd with several frames and skippable
//! frames. The media type that selects the decoder is checked by pulling (`tests/layers.rs`).

use std::io::Write;

use layerfs_registry::Compression;

use super::tar::Tar;
use super::{Case, Expect, Layer, Tree};

pub fn archive() -> Vec<u8> {
    Tar::new()
        .root(0o755)
        .dir("d", 0o755)
        .file("d/f", 0o644, &vec![b'z'; 70_000])
        .file("d/g", 0o600, b"g\n")
        .finish()
}

pub fn tree() -> Tree {
    Tree::new()
        .root(0o755)
        .dir("d", 0o755)
        .file("d/f", 0o644, &vec![b'z'; 70_000])
        .file("d/g", 0o600, b"g\n")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Gzip members of the archive cut at `cuts`, one after the other.
pub fn gzip_members(data: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut blob = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&data.len())) {
        blob.extend(gzip(&data[start..end]));
        start = end;
    }
    blob
}

/// A zstd skippable frame (RFC 8878, section 3.1.2) with magic `0x184D2A5N`.
fn skippable_frame(nibble: u8, content: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x50 | nibble, 0x2a, 0x4d, 0x18];
    frame.extend((content.len() as u32).to_le_bytes());
    frame.extend_from_slice(content);
    frame
}

fn zstd_frames(data: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut blob = skippable_frame(0, b"leading metadata");
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&data.len())) {
        blob.extend(zstd::encode_all(&data[start..end], 3).unwrap());
        blob.extend(skippable_frame(0xf, b"between"));
        start = end;
    }
    blob
}

fn case(name: &'static str, blob: Vec<u8>, compression: Compression, expect: Expect) -> Case {
    Case {
        name,
        layers: vec![Layer { blob, compression }],
        expect,
    }
}

pub fn cases() -> Vec<Case> {
    let tar = archive();
    let tree = || Expect::Tree(tree());
    let mut padded = gzip(&tar);
    padded.extend(vec![0u8; 10_000]);
    let mut members_padded = gzip_members(&tar, &[1000]);
    members_padded.extend(vec![0u8; 512]);
    let mut garbage = gzip(&tar);
    garbage.extend([0, 0, 0, b'x']);
    let truncated = gzip(&tar)[..200].to_vec();
    vec![
        case("uncompressed", tar.clone(), Compression::None, tree()),
        case("gzip_one_member", gzip(&tar), Compression::Gzip, tree()),
        case(
            "gzip_several_members",
            gzip_members(&tar, &[100, 513, 40_000]),
            Compression::Gzip,
            tree(),
        ),
        case("gzip_zero_padding", padded, Compression::Gzip, tree()),
        case(
            "gzip_members_zero_padding",
            members_padded,
            Compression::Gzip,
            tree(),
        ),
        case(
            "zstd_one_frame",
            zstd::encode_all(tar.as_slice(), 3).unwrap(),
            Compression::Zstd,
            tree(),
        ),
        case(
            "zstd_frames_and_skippable_frames",
            zstd_frames(&tar, &[700, 30_000]),
            Compression::Zstd,
            tree(),
        ),
        case(
            "gzip_garbage_after_padding",
            garbage,
            Compression::Gzip,
            Expect::Error("unexpected data after the zero padding"),
        ),
        case(
            "gzip_truncated",
            truncated,
            Compression::Gzip,
            Expect::Error("reading layer archive"),
        ),
    ]
}
