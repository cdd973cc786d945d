//! Image records: which manifest a reference pointed to when it was pulled, and the layers
//! that manifest names, so that `mount` and `run` need no registry.

use std::fs;
use std::path::PathBuf;

use layerfs_registry::{Digest, Platform, Reference};
use serde::{Deserialize, Serialize};

use super::{write_file_atomic, ChainId, Error, Result, Store};
use crate::fs_error::{FsContext, FsError};

/// One layer of an image, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerEntry {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub diff_id: Digest,
    pub chain_id: ChainId,
}

/// What `images/<name>.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The reference as pulled, normalized (`docker.io/library/busybox:latest`).
    pub reference: String,
    /// The platform-specific image manifest.
    pub manifest: Digest,
    /// The index the manifest was chosen from, if the reference named one.
    pub index: Option<Digest>,
    pub platform: Platform,
    pub config: Digest,
    pub layers: Vec<LayerEntry>,
    /// Seconds since the Unix epoch.
    pub pulled_at: u64,
}

impl ImageRecord {
    /// The image ID as `docker images` shows it: the config digest.
    pub fn id(&self) -> &Digest {
        &self.config
    }

    pub fn top_chain_id(&self) -> Option<&ChainId> {
        self.layers.last().map(|layer| &layer.chain_id)
    }
}

impl Store {
    fn image_path(&self, reference: &str) -> PathBuf {
        self.root
            .join("images")
            .join(format!("{}.json", escape_file_name(reference)))
    }

    /// Writes the record for `record.reference`, replacing an older one atomically.
    pub fn save_image(&self, record: &ImageRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(record).expect("image records serialize");
        write_file_atomic(&self.image_path(&record.reference), &json)?;
        Ok(())
    }

    /// Finds the image `reference` names: the record pulled under exactly that reference, or
    /// else one of the same repository that matches it. A reference with a digest matches a
    /// record whose manifest or index has that digest, and `NAME:TAG` matches a record pulled
    /// as `NAME:TAG@DIGEST`.
    pub fn find_image(&self, reference: &Reference) -> Result<Option<ImageRecord>> {
        let path = self.image_path(&reference.to_string());
        match fs::read(&path) {
            Ok(bytes) => return parse_record(&path, &bytes).map(Some),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(FsError::new("reading image record", &path, error).into()),
        }
        let records = self.list_images()?;
        Ok(records
            .into_iter()
            .find(|record| matches_record(reference, record)))
    }

    /// Finds the image whose ID (config digest) starts with `prefix`, written with or without
    /// `sha256:`, or whose manifest or index digest is `prefix` in full (the digest `pull`
    /// prints). The prefix must have at least 4 hex digits and match exactly one ID.
    pub fn find_image_by_id(&self, prefix: &str) -> Result<Option<ImageRecord>> {
        let hex = prefix.strip_prefix("sha256:").unwrap_or(prefix);
        let is_hex = hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if hex.len() < 4 || !is_hex {
            return Ok(None);
        }
        let mut matches = self.list_images()?.into_iter().filter(|record| {
            let by_digest = [Some(&record.manifest), record.index.as_ref()]
                .into_iter()
                .flatten()
                .any(|digest| digest.hex() == hex);
            record.config.hex().starts_with(hex) || by_digest
        });
        let first = matches.next();
        let ambiguous =
            matches.any(|other| Some(&other.config) != first.as_ref().map(|f| &f.config));
        Ok(if ambiguous { None } else { first })
    }

    pub fn image(&self, reference: &Reference) -> Result<ImageRecord> {
        self.find_image(reference)?
            .ok_or_else(|| Error::ImageNotFound(reference.to_string()))
    }

    /// Removes the record of `reference` (as recorded, normalized). Layers and blobs stay
    /// until [`Store::collect_garbage`].
    pub fn remove_image(&self, reference: &str) -> Result<()> {
        let path = self.image_path(reference);
        fs::remove_file(&path).at("removing image record", &path)?;
        Ok(())
    }

    /// Every image record, sorted by reference.
    pub fn list_images(&self) -> Result<Vec<ImageRecord>> {
        let dir = self.root.join("images");
        let mut records = Vec::new();
        for entry in fs::read_dir(&dir).at("listing", &dir)? {
            let path = entry.at("listing", &dir)?.path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let bytes = fs::read(&path).at("reading image record", &path)?;
            records.push(parse_record(&path, &bytes)?);
        }
        records.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(records)
    }
}

fn matches_record(reference: &Reference, record: &ImageRecord) -> bool {
    let Ok(pulled) = record.reference.parse::<Reference>() else {
        return false;
    };
    if pulled.name() != reference.name() {
        return false;
    }
    match (reference.digest(), reference.tag()) {
        (Some(digest), _) => record.manifest == *digest || record.index.as_ref() == Some(digest),
        (None, Some(tag)) => pulled.tag() == Some(tag),
        (None, None) => false,
    }
}

fn parse_record(path: &std::path::Path, bytes: &[u8]) -> Result<ImageRecord> {
    serde_json::from_slice(bytes).map_err(|error| Error::Corrupt {
        what: format!("image record {}", path.display()),
        reason: error.to_string(),
    })
}

/// Percent-encodes every byte outside `[A-Za-z0-9._-]`, so a reference becomes one file name
/// and distinct references never collide.
fn escape_file_name(reference: &str) -> String {
    let mut escaped = String::with_capacity(reference.len());
    for byte in reference.bytes() {
        if byte.is_ascii_alphanumeric() || b"._-".contains(&byte) {
            escaped.push(byte as char);
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        reference: &str,
        manifest: &[u8],
        index: Option<&[u8]>,
        config: &[u8],
    ) -> ImageRecord {
        ImageRecord {
            reference: reference.to_owned(),
            manifest: Digest::of(manifest),
            index: index.map(Digest::of),
            platform: Platform::host(),
            config: Digest::of(config),
            layers: Vec::new(),
            pulled_at: 0,
        }
    }

    fn reference(text: &str) -> Reference {
        text.parse().unwrap()
    }

    fn store_with_records() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let records = [
            record(
                "docker.io/library/busybox:latest",
                b"m1",
                Some(b"i1"),
                b"c1",
            ),
            record("docker.io/library/alpine:3.20", b"m2", None, b"c2"),
            record(
                &format!("docker.io/library/alpine:3.19@{}", Digest::of(b"m3")),
                b"m3",
                None,
                b"c3",
            ),
            record("docker.io/library/other:1", b"m4", None, b"c1"),
        ];
        for record in &records {
            store.save_image(record).unwrap();
        }
        (dir, store)
    }

    fn found(store: &Store, text: &str) -> Option<String> {
        store
            .find_image(&reference(text))
            .unwrap()
            .map(|r| r.reference)
    }

    #[test]
    fn find_image_by_reference_table() {
        let (_dir, store) = store_with_records();
        let index = Digest::of(b"i1");
        let manifest = Digest::of(b"m1");
        let m3 = Digest::of(b"m3");
        let cases: Vec<(String, Option<String>)> = vec![
            (
                "busybox".into(),
                Some("docker.io/library/busybox:latest".into()),
            ),
            (
                format!("busybox@{index}"),
                Some("docker.io/library/busybox:latest".into()),
            ),
            (
                format!("busybox@{manifest}"),
                Some("docker.io/library/busybox:latest".into()),
            ),
            (format!("alpine@{manifest}"), None),
            (
                "alpine:3.19".into(),
                Some(format!("docker.io/library/alpine:3.19@{m3}")),
            ),
            (
                format!("alpine@{m3}"),
                Some(format!("docker.io/library/alpine:3.19@{m3}")),
            ),
            ("alpine:3.18".into(), None),
        ];
        for (input, expected) in cases {
            assert_eq!(found(&store, &input), expected, "input {input}");
        }
    }

    #[test]
    fn find_image_by_id_prefix() {
        let (_dir, store) = store_with_records();
        let c2 = Digest::of(b"c2");
        let by_short = store.find_image_by_id(c2.short()).unwrap();
        assert_eq!(by_short.unwrap().reference, "docker.io/library/alpine:3.20");
        let by_full = store.find_image_by_id(&c2.to_string()).unwrap();
        assert_eq!(by_full.unwrap().reference, "docker.io/library/alpine:3.20");
        // Two references to one image (same config) are not ambiguous.
        let c1 = Digest::of(b"c1");
        assert!(store.find_image_by_id(c1.short()).unwrap().is_some());
        assert!(store.find_image_by_id("abc").unwrap().is_none());
        assert!(store.find_image_by_id("not-hex").unwrap().is_none());
    }

    #[test]
    fn escape_reference_table() {
        let cases = [
            (
                "docker.io/library/busybox:latest",
                "docker.io%2Flibrary%2Fbusybox%3Alatest",
            ),
            (
                "localhost:5000/a_b/c-d:1.0",
                "localhost%3A5000%2Fa_b%2Fc-d%3A1.0",
            ),
            ("x/y@sha256:ab", "x%2Fy%40sha256%3Aab"),
        ];
        for (input, expected) in cases {
            assert_eq!(escape_file_name(input), expected);
        }
    }
}
