//! Tar archives written byte by byte, so that every header field, entry type and entry order
//! is exactly what a case specifies. Header layouts follow POSIX.1-2001 `ustar` and the GNU tar
//! manual ("Basic Tar Format", "GNU Sparse Formats").

/// The mtime of every entry unless a case sets another.
pub const MTIME: i64 = 1_700_000_000;

const BLOCK: usize = 512;

/// Which header layout an entry uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// POSIX `ustar\0` with version `00`, with the name prefix field.
    Ustar,
    /// GNU `ustar  \0`: no prefix field; sparse maps sit where the prefix would be.
    Gnu,
    /// Version 7: no magic, no owner names, no device numbers.
    V7,
}

/// One header's fields.
#[derive(Debug, Clone)]
pub struct Header {
    pub name: Vec<u8>,
    pub prefix: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub typeflag: u8,
    pub linkname: Vec<u8>,
    pub devmajor: u32,
    pub devminor: u32,
    pub format: Format,
    /// GNU sparse fields of an `S` header: up to four (offset, length) pairs, whether
    /// extension blocks follow, and the file's real size.
    pub sparse: Vec<(u64, u64)>,
    pub sparse_extended: bool,
    pub real_size: u64,
}

impl Header {
    pub fn new(name: impl AsRef<[u8]>, typeflag: u8, mode: u32) -> Header {
        Header {
            name: name.as_ref().to_vec(),
            prefix: Vec::new(),
            mode,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: MTIME,
            typeflag,
            linkname: Vec::new(),
            devmajor: 0,
            devminor: 0,
            format: Format::Ustar,
            sparse: Vec::new(),
            sparse_extended: false,
            real_size: 0,
        }
    }

    /// Returns the 512 bytes of the header, checksum included.
    pub fn to_bytes(&self) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        put(&mut block, 0, 100, &self.name);
        octal(&mut block, 100, 8, self.mode as u64);
        octal(&mut block, 108, 8, self.uid);
        octal(&mut block, 116, 8, self.gid);
        octal(&mut block, 124, 12, self.size);
        octal(&mut block, 136, 12, self.mtime as u64);
        block[156] = self.typeflag;
        put(&mut block, 157, 100, &self.linkname);
        match self.format {
            Format::Ustar => {
                put(&mut block, 257, 8, b"ustar\x0000");
                put(&mut block, 345, 155, &self.prefix);
            }
            Format::Gnu => {
                put(&mut block, 257, 8, b"ustar  \x00");
                self.put_gnu_sparse(&mut block);
            }
            Format::V7 => {}
        }
        if self.format != Format::V7 {
            octal(&mut block, 329, 8, self.devmajor as u64);
            octal(&mut block, 337, 8, self.devminor as u64);
        }
        set_checksum(&mut block);
        block
    }

    fn put_gnu_sparse(&self, block: &mut [u8; BLOCK]) {
        if self.typeflag != b'S' {
            return;
        }
        for (index, (offset, length)) in self.sparse.iter().take(4).enumerate() {
            octal(block, 386 + index * 24, 12, *offset);
            octal(block, 398 + index * 24, 12, *length);
        }
        block[482] = self.sparse_extended as u8;
        octal(block, 483, 12, self.real_size);
    }
}

fn put(block: &mut [u8], offset: usize, length: usize, value: &[u8]) {
    assert!(
        value.len() <= length,
        "{value:?} does not fit {length} bytes"
    );
    block[offset..offset + value.len()].copy_from_slice(value);
}

/// Writes a NUL-terminated octal number filling `length` bytes.
fn octal(block: &mut [u8], offset: usize, length: usize, value: u64) {
    let text = format!("{value:0width$o}", width = length - 1);
    put(block, offset, length, text.as_bytes());
}

fn set_checksum(block: &mut [u8; BLOCK]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&byte| byte as u32).sum();
    let text = format!("{sum:06o}\x00 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

/// An archive being written.
#[derive(Debug, Clone, Default)]
pub struct Tar {
    bytes: Vec<u8>,
}

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    /// Appends a header and its data, padded to a whole block.
    pub fn push(&mut self, mut header: Header, data: &[u8]) -> &mut Tar {
        if header.typeflag != b'S' {
            header.size = data.len() as u64;
        }
        self.bytes.extend_from_slice(&header.to_bytes());
        self.data(data)
    }

    /// Appends raw bytes padded to a whole block: data, or a GNU sparse extension block.
    pub fn data(&mut self, data: &[u8]) -> &mut Tar {
        self.bytes.extend_from_slice(data);
        let padding = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.bytes.extend(std::iter::repeat_n(0u8, padding));
        self
    }

    /// Appends a PAX extended header (`x`) describing the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Tar {
        let mut data = Vec::new();
        for (key, value) in records {
            data.extend(pax_record(key.as_bytes(), value));
        }
        self.push(Header::new("PaxHeaders/entry", b'x', 0o644), &data)
    }

    /// Appends a GNU long name (`L`) for the next entry.
    pub fn gnu_long_name(&mut self, name: &[u8]) -> &mut Tar {
        let mut data = name.to_vec();
        data.push(0);
        let mut header = Header::new("././@LongLink", b'L', 0o644);
        header.format = Format::Gnu;
        self.push(header, &data)
    }

    /// Appends a GNU long link target (`K`) for the next entry.
    pub fn gnu_long_link(&mut self, target: &[u8]) -> &mut Tar {
        let mut data = target.to_vec();
        data.push(0);
        let mut header = Header::new("././@LongLink", b'K', 0o644);
        header.format = Format::Gnu;
        self.push(header, &data)
    }

    pub fn root(&mut self, mode: u32) -> &mut Tar {
        self.push(Header::new("./", b'5', mode), b"")
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Tar {
        self.push(Header::new(format!("{name}/"), b'5', mode), b"")
    }

    pub fn file(&mut self, name: impl AsRef<[u8]>, mode: u32, data: &[u8]) -> &mut Tar {
        self.push(Header::new(name, b'0', mode), data)
    }

    pub fn symlink(&mut self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> &mut Tar {
        let mut header = Header::new(name, b'2', 0o777);
        header.linkname = target.as_ref().to_vec();
        self.push(header, b"")
    }

    pub fn hardlink(&mut self, name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> &mut Tar {
        let mut header = Header::new(name, b'1', 0o644);
        header.linkname = target.as_ref().to_vec();
        self.push(header, b"")
    }

    /// Appends a whiteout: an empty regular file named `.wh.NAME` in `dir`.
    pub fn whiteout(&mut self, dir: &str, name: &str) -> &mut Tar {
        self.file(join(dir, &format!(".wh.{name}")), 0o644, b"")
    }

    /// Appends an opaque marker: an empty regular file named `.wh..wh..opq` in `dir`.
    pub fn opaque(&mut self, dir: &str) -> &mut Tar {
        self.file(join(dir, ".wh..wh..opq"), 0o644, b"")
    }

    pub fn device(
        &mut self,
        name: &str,
        typeflag: u8,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> &mut Tar {
        let mut header = Header::new(name, typeflag, mode);
        header.devmajor = major;
        header.devminor = minor;
        self.push(header, b"")
    }

    /// Returns the archive with its end-of-archive marker, two zero blocks.
    pub fn finish(&self) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        bytes.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
        bytes
    }
}

fn join(dir: &str, name: &str) -> String {
    match dir {
        "" => name.to_owned(),
        _ => format!("{dir}/{name}"),
    }
}

/// Formats one PAX record, `LENGTH KEY=VALUE\n`, where LENGTH counts the whole record.
pub fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3;
    let mut length = rest + 1;
    while length.to_string().len() + rest != length {
        length += 1;
    }
    let mut record = format!("{length} ").into_bytes();
    record.extend_from_slice(key);
    record.push(b'=');
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// Builds a GNU sparse extension block: up to 21 (offset, length) pairs and whether
/// another extension block follows.
pub fn gnu_sparse_extension(pairs: &[(u64, u64)], more: bool) -> [u8; BLOCK] {
    assert!(pairs.len() <= 21);
    let mut block = [0u8; BLOCK];
    for (index, (offset, length)) in pairs.iter().enumerate() {
        octal(&mut block, index * 24, 12, *offset);
        octal(&mut block, index * 24 + 12, 12, *length);
    }
    block[504] = more as u8;
    block
}
