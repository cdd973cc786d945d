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

    pub fn find_image(&self, reference: &Reference) -> Result<Option<ImageRecord>> {
        let path = self.image_path(&reference.to_string());
        match fs::read(&path) {
            Ok(bytes) => parse_record(&path, &bytes).map(Some),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(FsError::new("reading image record", &path, error).into()),
        }
    }

    pub fn image(&self, reference: &Reference) -> Result<ImageRecord> {
        self.find_image(reference)?
            .ok_or_else(|| Error::ImageNotFound(reference.to_string()))
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
