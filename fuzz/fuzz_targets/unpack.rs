//! Fuzzes the unpacker with arbitrary bytes as a layer. Unpacking and resolving against a
//! lower layer must not panic, change the lower layer, change the probe directory beside
//! the layer, or create anything beside the layer directory; each is an assertion here.
//!
//! The first input byte selects the options: bit 0 unpacks as a base layer (no lower
//! layer), bits 1–2 choose the compression (none, gzip, zstd). The rest is the layer. Before
//! unpacking, the checksum of each tar header along the archive is recomputed, so that
//! mutations reach the unpacker rather than stopping at the checksum check.
//!
//! Everything lives under `/tmp/layerfs-fuzz`: `outside/` holds probe files, `lower/` a lower
//! layer whose symlinks point into `outside/`, `upper/` the layer being unpacked. Seeds
//! aim their symlinks at the same absolute paths. fuzz/run-unpack.sh runs this target in a
//! mount namespace where everything but that directory is read-only.

#![no_main]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use layerfs::unpack;
use layerfs_registry::Compression;
use libfuzzer_sys::fuzz_target;
use rustix::fs::{self as rfs, FileType, Mode};
use sha2::{Digest, Sha256};

const BASE: &str = "/tmp/layerfs-fuzz";

struct Sandbox {
    outside: PathBuf,
    lower: PathBuf,
    upper: PathBuf,
    outside_before: BTreeMap<PathBuf, String>,
    lower_before: BTreeMap<PathBuf, String>,
}

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| {
        let base = Path::new(BASE);
        let _ = unpack::remove_tree(base);
        let outside = base.join("outside");
        let lower = base.join("lower");
        let upper = base.join("upper");
        fs::create_dir_all(outside.join("dir")).unwrap();
        fs::write(outside.join("victim"), b"probe\n").unwrap();
        fs::write(outside.join("dir/secret"), b"probe\n").unwrap();
        make_lower(&lower, &outside);
        Sandbox {
            outside_before: fingerprint(&outside),
            lower_before: fingerprint(&lower),
            outside,
            lower,
            upper,
        }
    })
}

/// Creates a lower layer with what a hostile upper layer would use: symlinks into
/// `outside` as parents and hardlink targets, a whiteout, an opaque directory, a FIFO.
fn make_lower(lower: &Path, outside: &Path) {
    fs::create_dir_all(lower.join("d/sub")).unwrap();
    fs::create_dir_all(lower.join("opaque")).unwrap();
    fs::write(lower.join("f"), b"lower file\n").unwrap();
    fs::write(lower.join("d/f"), b"lower d/f\n").unwrap();
    fs::write(lower.join("opaque/x"), b"x\n").unwrap();
    symlink(outside, lower.join("s")).unwrap();
    symlink("../outside", lower.join("rel")).unwrap();
    symlink(outside.join("victim"), lower.join("d/victim")).unwrap();
    symlink(outside.join("dir"), lower.join("d/sub/dir")).unwrap();
    let root = rfs::open(lower, rfs::OFlags::DIRECTORY, Mode::empty()).unwrap();
    let device = rfs::makedev(0, 0);
    rfs::mknodat(&root, "gone", FileType::CharacterDevice, Mode::empty(), device).unwrap();
    rfs::mknodat(&root, "pipe", FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
    rustix::fs::setxattr(
        lower.join("opaque"),
        unpack::OPAQUE_XATTR,
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
}

/// Type, mode, owner, size, mtime, content digest and symlink target of everything below
/// `root`, without following symlinks.
fn fingerprint(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        let detail = if meta.is_file() {
            hex(&Sha256::digest(fs::read(&path).unwrap()))
        } else if meta.file_type().is_symlink() {
            fs::read_link(&path).unwrap().display().to_string()
        } else {
            String::new()
        };
        let line = format!(
            "{:o} {}:{} {} {}.{} {detail}",
            meta.mode(),
            meta.uid(),
            meta.gid(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec()
        );
        if meta.is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        }
        entries.insert(path, line);
    }
    entries
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Recomputes the checksum of each header along the archive's chain of headers.
fn fix_checksums(archive: &mut [u8]) {
    let mut offset = 0usize;
    while offset + 512 <= archive.len() {
        let header = &mut archive[offset..offset + 512];
        if header.iter().all(|&byte| byte == 0) {
            offset += 512;
            continue;
        }
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&byte| byte as u32).sum();
        header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let size = parse_octal(&header[124..136]).unwrap_or(0);
        let blocks = size.div_ceil(512).min(archive.len() as u64 / 512) as usize;
        offset += 512 + blocks * 512;
    }
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    u64::from_str_radix(text, 8).ok()
}

fuzz_target!(|data: &[u8]| {
    let sandbox = sandbox();
    let Some((&flags, layer)) = data.split_first() else {
        return;
    };
    let base_layer = flags & 1 == 1;
    let compression = match (flags >> 1) & 3 {
        1 => Compression::Gzip,
        2 => Compression::Zstd,
        _ => Compression::None,
    };
    let mut layer = layer.to_vec();
    if compression == Compression::None {
        fix_checksums(&mut layer);
    }

    fs::create_dir(&sandbox.upper).unwrap();
    let options = unpack::Options { base_layer };
    if let Ok(reader) = unpack::decompress(layer.as_slice(), compression) {
        if let Ok(summary) = unpack::unpack(reader, &sandbox.upper, &options) {
            let lowers = match base_layer {
                true => Vec::new(),
                false => vec![sandbox.lower.clone()],
            };
            let _ = unpack::resolve_lowers(&sandbox.upper, &summary.lower, &lowers);
        }
    }

    assert!(
        fingerprint(&sandbox.outside) == sandbox.outside_before,
        "the layer changed the probe directory outside it"
    );
    assert!(
        fingerprint(&sandbox.lower) == sandbox.lower_before,
        "the layer changed the lower layer"
    );
    let names: Vec<_> = fs::read_dir(BASE)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().as_bytes().to_vec())
        .collect();
    assert!(names.len() == 3, "the layer created something beside itself: {names:?}");
    unpack::remove_tree(&sandbox.upper).unwrap();
});
