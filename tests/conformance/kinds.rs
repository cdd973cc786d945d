//! Entry kinds and header forms: devices and FIFOs, GNU sparse files in all four formats,
//! long names and link targets from PAX and GNU headers, ustar name prefixes, names that are
//! not UTF-8, and one path listed several times (the last entry wins).

use std::process::Command;

use super::expect::Kind;
use super::tar::{gnu_sparse_extension, Format, Header, Tar};
use super::{Case, Layer, Tree};

pub fn cases() -> Vec<Case> {
    let mut cases = vec![devices(), sizes(), old_headers(), duplicates()];
    cases.extend(sparse());
    cases.extend(gnu_tar_sparse());
    cases.extend(long_names());
    cases.extend(non_utf8());
    cases
}

fn devices() -> Case {
    Case::tree(
        "devices_and_fifos",
        &[Tar::new()
            .device("null", b'3', 0o666, 1, 3)
            .device("loop", b'4', 0o660, 7, 0)
            .device("big", b'3', 0o600, 4095, 1_048_575)
            .device("pipe", b'6', 0o644, 0, 0)],
        Tree::new()
            .node("null", Kind::Char(1, 3), 0o666)
            .node("loop", Kind::Block(7, 0), 0o660)
            .node("big", Kind::Char(4095, 1_048_575), 0o600)
            .node("pipe", Kind::Fifo, 0o644),
    )
}

fn sizes() -> Case {
    let block = vec![b'x'; 512];
    let more = vec![b'y'; 513];
    Case::tree(
        "file_sizes_around_blocks",
        &[Tar::new()
            .file("empty", 0o644, b"")
            .file("block", 0o644, &block)
            .file("more", 0o644, &more)
            .file("after", 0o644, b"after\n")],
        Tree::new()
            .file("empty", 0o644, b"")
            .file("block", 0o644, &block)
            .file("more", 0o644, &more)
            .file("after", 0o644, b"after\n"),
    )
}

fn old_headers() -> Case {
    let mut v7 = Header::new("v7", b'\0', 0o644);
    v7.format = Format::V7;
    let mut gnu = Header::new("gnu", b'0', 0o644);
    gnu.format = Format::Gnu;
    let mut global = Tar::new();
    global.push(
        Header::new("pax_global_header", b'g', 0o644),
        &super::tar::pax_record(b"comment", b"made by hand"),
    );
    Case::tree(
        "old_and_rare_headers",
        &[global
            .push(v7, b"v7\n")
            .push(gnu, b"gnu\n")
            .push(Header::new("contiguous", b'7', 0o644), b"7\n")
            .pax(&[("path", b"real/name")])
            .file("short", 0o644, b"pax\n")],
        Tree::new()
            .file("v7", 0o644, b"v7\n")
            .file("gnu", 0o644, b"gnu\n")
            .file("contiguous", 0o644, b"7\n")
            .dir("real", 0o755)
            .any_mtime()
            .file("real/name", 0o644, b"pax\n"),
    )
}

fn duplicates() -> Case {
    let mut f_again = Header::new("f/", b'5', 0o755);
    f_again.mtime = 1_650_000_000;
    Case::tree(
        "duplicate_entries_last_wins",
        &[Tar::new()
            .file("a", 0o644, b"1\n")
            .file("a", 0o600, b"2\n")
            .file("b", 0o644, b"b\n")
            .dir("b", 0o755)
            .file("b/c", 0o644, b"c\n")
            .dir("e", 0o755)
            .file("e/x", 0o644, b"x\n")
            .file("e", 0o644, b"e\n")
            .dir("f", 0o700)
            .file("f/x", 0o644, b"x\n")
            .push(f_again, b"")
            .symlink("g", "t")
            .file("g", 0o644, b"g\n")
            .file("h", 0o644, b"h\n")
            .symlink("h", "t")
            .file("i", 0o644, b"i\n")
            .hardlink("j", "i")
            .file("j", 0o644, b"own\n")
            .file("./k", 0o644, b"first\n")
            .file("k", 0o644, b"second\n")],
        Tree::new()
            .file("a", 0o600, b"2\n")
            .dir("b", 0o755)
            .file("b/c", 0o644, b"c\n")
            .file("e", 0o644, b"e\n")
            .dir("f", 0o755)
            .mtime(1_650_000_000, 0)
            .file("f/x", 0o644, b"x\n")
            .file("g", 0o644, b"g\n")
            .symlink("h", "t")
            .file("i", 0o644, b"i\n")
            .file("j", 0o644, b"own\n")
            .file("k", 0o644, b"second\n"),
    )
}

/// The content of a sparse file: `size` bytes, zeros except for the data segments.
fn sparse_content(size: usize, segments: &[(usize, &[u8])]) -> Vec<u8> {
    let mut content = vec![0u8; size];
    for (offset, data) in segments {
        content[*offset..offset + data.len()].copy_from_slice(data);
    }
    content
}

fn sparse() -> Vec<Case> {
    let a = vec![b'A'; 4096];
    let b = vec![b'B'; 4096];
    let size = 196_608;
    let content = sparse_content(size, &[(0, &a), (131_072, &b)]);
    let data = [a.as_slice(), b.as_slice()].concat();
    let expected = |name: &str| {
        Tree::new()
            .dir("s", 0o755)
            .any_mtime()
            .file(format!("s/{name}"), 0o644, &content)
            .sparse()
    };

    let mut old = Header::new("s/old", b'S', 0o644);
    old.format = Format::Gnu;
    old.size = data.len() as u64;
    old.sparse = vec![(0, 4096), (131_072, 4096), (size as u64, 0)];
    old.real_size = size as u64;

    let mut map = b"2\n0\n4096\n131072\n4096\n".to_vec();
    map.resize(512, 0);
    let pax10 = [map, data.clone()].concat();

    vec![
        Case::tree(
            "gnu_sparse_old_format",
            &[Tar::new().push(old, b"").data(&data)],
            expected("old"),
        ),
        extended_sparse(),
        Case::tree(
            "gnu_sparse_pax_1_0",
            &[Tar::new()
                .pax(&[
                    ("GNU.sparse.major", b"1"),
                    ("GNU.sparse.minor", b"0"),
                    ("GNU.sparse.name", b"s/pax10"),
                    ("GNU.sparse.realsize", b"196608"),
                ])
                .file("s/GNUSparseFile.0/pax10", 0o644, &pax10)],
            expected("pax10"),
        ),
        Case::tree(
            "gnu_sparse_pax_0_1",
            &[Tar::new()
                .pax(&[
                    ("GNU.sparse.size", b"196608"),
                    ("GNU.sparse.numblocks", b"2"),
                    ("GNU.sparse.map", b"0,4096,131072,4096"),
                    ("GNU.sparse.name", b"s/pax01"),
                ])
                .file("s/GNUSparseFile.0/pax01", 0o644, &data)],
            expected("pax01"),
        ),
        Case::tree(
            "gnu_sparse_pax_0_0",
            &[Tar::new()
                .pax(&[
                    ("GNU.sparse.size", b"196608"),
                    ("GNU.sparse.numblocks", b"2"),
                    ("GNU.sparse.offset", b"0"),
                    ("GNU.sparse.numbytes", b"4096"),
                    ("GNU.sparse.offset", b"131072"),
                    ("GNU.sparse.numbytes", b"4096"),
                    ("GNU.sparse.name", b"s/pax00"),
                ])
                .file("s/pax00", 0o644, &data)],
            expected("pax00"),
        ),
        Case::error(
            "gnu_sparse_map_past_file_end",
            &[Tar::new()
                .pax(&[
                    ("GNU.sparse.size", b"100"),
                    ("GNU.sparse.map", b"0,4096,131072,4096"),
                ])
                .file("s/bad", 0o644, &data)],
            "a segment ends past the file size",
        ),
    ]
}

/// An old GNU sparse file with more segments than its header holds: the rest follow in an
/// extension block.
fn extended_sparse() -> Case {
    let letters: Vec<Vec<u8>> = (b'a'..=b'f').map(|letter| vec![letter; 512]).collect();
    let offsets = [0usize, 65_536, 131_072, 196_608, 262_144, 327_680];
    let size = 400_000usize;
    let segments: Vec<(usize, &[u8])> = offsets
        .iter()
        .zip(&letters)
        .map(|(offset, data)| (*offset, data.as_slice()))
        .collect();
    let content = sparse_content(size, &segments);

    let mut header = Header::new("extended", b'S', 0o600);
    header.format = Format::Gnu;
    header.size = 6 * 512;
    header.sparse = offsets[..4]
        .iter()
        .map(|&offset| (offset as u64, 512))
        .collect();
    header.sparse_extended = true;
    header.real_size = size as u64;
    let extension =
        gnu_sparse_extension(&[(262_144, 512), (327_680, 512), (size as u64, 0)], false);
    Case::tree(
        "gnu_sparse_old_format_extended",
        &[Tar::new()
            .push(header, b"")
            .data(&extension)
            .data(&letters.concat())],
        Tree::new().file("extended", 0o600, &content).sparse(),
    )
}

/// Sparse files archived by GNU tar itself in each of its formats, as a check on the
/// hand-written ones.
fn gnu_tar_sparse() -> Vec<Case> {
    let size = 1_048_576;
    let content = sparse_content(size, &[(8192, b"start"), (700_000, b"middle")]);
    let formats: [(&'static str, &[&str]); 4] = [
        ("gnu_tar_sparse_gnu", &["--format=gnu"]),
        (
            "gnu_tar_sparse_pax_1_0",
            &["--format=posix", "--sparse-version=1.0"],
        ),
        (
            "gnu_tar_sparse_pax_0_1",
            &["--format=posix", "--sparse-version=0.1"],
        ),
        (
            "gnu_tar_sparse_pax_0_0",
            &["--format=posix", "--sparse-version=0.0"],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("holes")).unwrap();
    file.set_len(size as u64).unwrap();
    std::os::unix::fs::FileExt::write_at(&file, b"start", 8192).unwrap();
    std::os::unix::fs::FileExt::write_at(&file, b"middle", 700_000).unwrap();
    drop(file);

    let mut cases = Vec::new();
    for (name, flags) in formats {
        let output = Command::new("tar")
            .args(["--sparse", "--numeric-owner", "--owner=0", "--group=0"])
            .args(["--mtime=@1700000000", "--mode=0640", "-cf", "-", "-C"])
            .arg(dir.path())
            .args(flags)
            .arg("holes")
            .output()
            .unwrap();
        assert!(output.status.success(), "GNU tar {flags:?} failed");
        cases.push(Case {
            name,
            layers: vec![Layer {
                blob: output.stdout,
                compression: layerfs_registry::Compression::None,
            }],
            expect: super::Expect::Tree(Tree::new().file("holes", 0o640, &content).sparse()),
        });
    }
    cases
}

fn long_names() -> Vec<Case> {
    let a = "a".repeat(120);
    let long_dir = format!("long/{a}");
    let long_file = format!("{long_dir}/{}", "b".repeat(130));
    let long_target = format!("/target/{}", "t".repeat(200));
    let gnu_name = format!("gnu/{}", "c".repeat(150));
    let prefix = format!("prefixdir/{}", "p".repeat(90));
    let name = "n".repeat(80);

    let mut long_symlink = Header::new("sl", b'2', 0o777);
    long_symlink.linkname = b"truncated".to_vec();
    let mut long_hardlink = Header::new("hl", b'1', 0o644);
    long_hardlink.linkname = b"truncated".to_vec();
    let mut gnu_symlink = Header::new("gnu-sl", b'2', 0o777);
    gnu_symlink.format = Format::Gnu;
    let mut prefixed = Header::new(&name, b'0', 0o644);
    prefixed.prefix = prefix.as_bytes().to_vec();

    vec![Case::tree(
        "long_names_and_targets",
        &[Tar::new()
            .dir("long", 0o755)
            .pax(&[("path", long_dir.as_bytes())])
            .dir("truncated-dir", 0o755)
            .pax(&[("path", long_file.as_bytes())])
            .file("truncated-file", 0o644, b"long\n")
            .pax(&[("linkpath", long_target.as_bytes())])
            .push(long_symlink, b"")
            .pax(&[("linkpath", long_file.as_bytes())])
            .push(long_hardlink, b"")
            .gnu_long_name(gnu_name.as_bytes())
            .file(&gnu_name[..100], 0o644, b"gnu\n")
            .gnu_long_link(long_target.as_bytes())
            .push(gnu_symlink, b"")
            .gnu_long_name(format!("gnu/{}", "h".repeat(120)).as_bytes())
            .gnu_long_link(gnu_name.as_bytes())
            .hardlink("gnu-hl", "x")
            .push(prefixed, b"prefixed\n")],
        Tree::new()
            .dir("long", 0o755)
            .dir(&long_dir, 0o755)
            .file(&long_file, 0o644, b"long\n")
            .symlink("sl", &long_target)
            .file("hl", 0o644, b"long\n")
            .same_inode(&[long_file.as_str(), "hl"])
            .dir("gnu", 0o755)
            .any_mtime()
            .file(&gnu_name, 0o644, b"gnu\n")
            .symlink("gnu-sl", &long_target)
            .file(format!("gnu/{}", "h".repeat(120)), 0o644, b"gnu\n")
            .same_inode(&[gnu_name.clone(), format!("gnu/{}", "h".repeat(120))])
            .dir("prefixdir", 0o755)
            .any_mtime()
            .dir(&prefix, 0o755)
            .any_mtime()
            .file(format!("{prefix}/{name}"), 0o644, b"prefixed\n"),
    )]
}

fn non_utf8() -> Vec<Case> {
    vec![
        Case::tree(
            "names_not_utf8",
            &[Tar::new()
                .file(b"caf\xe9", 0o644, b"latin-1\n")
                .push(Header::new(b"\xff\xfe/", b'5', 0o755), b"")
                .file(b"\xff\xfe/x", 0o644, b"x\n")
                .symlink("s", b"\xe9t\xe9")
                .hardlink("h", b"caf\xe9")
                .pax(&[("path", b"pax-\xe9")])
                .file("pax-name", 0o644, b"pax\n")],
            Tree::new()
                .file(b"caf\xe9", 0o644, b"latin-1\n")
                .dir(b"\xff\xfe", 0o755)
                .file(b"\xff\xfe/x", 0o644, b"x\n")
                .symlink("s", b"\xe9t\xe9")
                .file("h", 0o644, b"latin-1\n")
                .same_inode(&[&b"caf\xe9"[..], b"h"])
                .file(b"pax-\xe9", 0o644, b"pax\n"),
        ),
        Case::tree(
            "whiteout_of_name_not_utf8",
            &[
                Tar::new()
                    .root(0o755)
                    .file(b"\xfa", 0o644, b"gone\n")
                    .file(b"\xfb", 0o644, b"stays\n"),
                Tar::new().file(b".wh.\xfa", 0o644, b""),
            ],
            Tree::new().file(b"\xfb", 0o644, b"stays\n"),
        ),
    ]
}
