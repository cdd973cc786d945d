//! Manifests and indexes in both the OCI image format and Docker's schema 2, which share one
//! JSON shape and differ only in media types. Docker schema 1 (signed JSON with `fsLayers`)
//! is rejected: registries stopped serving it and its layers carry no diff IDs.

use oci_spec::image::{Descriptor as SpecDescriptor, ImageIndex, ImageManifest as SpecManifest};
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::platform::Platform;

/// Media types that layerfs accepts, as sent in the `Accept` header of manifest requests.
pub struct MediaType;

impl MediaType {
    pub const OCI_MANIFEST: &'static str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &'static str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &'static str =
        "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &'static str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_SCHEMA1: &'static str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";

    /// Every manifest media type that [`Manifest::parse`] understands.
    pub const ACCEPTED: [&'static str; 4] = [
        Self::OCI_INDEX,
        Self::OCI_MANIFEST,
        Self::DOCKER_MANIFEST_LIST,
        Self::DOCKER_MANIFEST,
    ];
}

/// A reference to content by digest and size, with the media type that says how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// One entry of an index: a platform-specific manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub descriptor: Descriptor,
    /// `None` for entries without a platform, such as BuildKit's attestation manifests.
    pub platform: Option<Platform>,
}

/// A single-platform image: its config blob and its layers, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A parsed manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(Vec<IndexEntry>),
}

/// How a layer blob is compressed, decided by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Reads the compression from a layer media type (OCI, OCI non-distributable, or Docker).
    pub fn from_media_type(media_type: &str) -> Result<Compression> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar" => Ok(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Ok(Compression::Gzip),
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Ok(Compression::Zstd),
            other => Err(Error::UnsupportedLayer {
                media_type: other.to_owned(),
            }),
        }
    }
}

/// The fields every manifest format has, read first to decide how to parse the rest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Versioned {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
}

impl Manifest {
    /// Parses manifest bytes as fetched from a registry. `digest` names the manifest in
    /// errors.
    pub fn parse(bytes: &[u8], digest: &Digest) -> Result<Manifest> {
        let versioned: Versioned =
            serde_json::from_slice(bytes).map_err(|source| Error::InvalidManifest {
                digest: digest.clone(),
                reason: source.to_string(),
            })?;
        if versioned.schema_version == Some(1) {
            return Err(Error::UnsupportedManifest {
                digest: digest.clone(),
                media_type: MediaType::DOCKER_SCHEMA1.to_owned(),
            });
        }
        if versioned.schema_version != Some(2) {
            return Err(Error::InvalidManifest {
                digest: digest.clone(),
                reason: format!(
                    "schemaVersion is {:?}, expected 2",
                    versioned.schema_version
                ),
            });
        }

        let is_index = match versioned.media_type.as_deref() {
            Some(MediaType::OCI_INDEX | MediaType::DOCKER_MANIFEST_LIST) => true,
            Some(MediaType::OCI_MANIFEST | MediaType::DOCKER_MANIFEST) => false,
            // The OCI spec lets mediaType be absent; tell the kinds apart by their fields.
            None => versioned.manifests.is_some(),
            Some(other) => {
                return Err(Error::UnsupportedManifest {
                    digest: digest.clone(),
                    media_type: other.to_owned(),
                })
            }
        };
        if is_index {
            parse_index(bytes, digest)
        } else {
            let media_type = versioned
                .media_type
                .unwrap_or_else(|| MediaType::OCI_MANIFEST.to_owned());
            parse_image(bytes, digest, media_type)
        }
    }
}

fn parse_image(bytes: &[u8], digest: &Digest, media_type: String) -> Result<Manifest> {
    let spec: SpecManifest =
        serde_json::from_slice(bytes).map_err(|source| Error::InvalidManifest {
            digest: digest.clone(),
            reason: source.to_string(),
        })?;
    let config = convert_descriptor(spec.config(), digest)?;
    let layers = spec
        .layers()
        .iter()
        .map(|layer| convert_descriptor(layer, digest))
        .collect::<Result<Vec<_>>>()?;
    Ok(Manifest::Image(ImageManifest {
        media_type,
        config,
        layers,
    }))
}

fn parse_index(bytes: &[u8], digest: &Digest) -> Result<Manifest> {
    let spec: ImageIndex =
        serde_json::from_slice(bytes).map_err(|source| Error::InvalidManifest {
            digest: digest.clone(),
            reason: source.to_string(),
        })?;
    let entries = spec
        .manifests()
        .iter()
        .map(|entry| {
            let platform = entry.platform().as_ref().map(|p| {
                Platform::new(
                    &p.os().to_string(),
                    &p.architecture().to_string(),
                    p.variant().as_deref(),
                )
            });
            Ok(IndexEntry {
                descriptor: convert_descriptor(entry, digest)?,
                platform,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Manifest::Index(entries))
}

fn convert_descriptor(spec: &SpecDescriptor, manifest: &Digest) -> Result<Descriptor> {
    let digest = spec
        .digest()
        .to_string()
        .parse::<Digest>()
        .map_err(|source| Error::InvalidManifest {
            digest: manifest.clone(),
            reason: source.to_string(),
        })?;
    Ok(Descriptor {
        media_type: spec.media_type().to_string(),
        digest,
        size: spec.size(),
    })
}

/// Picks the manifest for `wanted` from an index, in index order, as Docker does.
pub fn select_platform<'a>(
    entries: &'a [IndexEntry],
    wanted: &Platform,
    index: &Digest,
) -> Result<&'a IndexEntry> {
    let found = entries
        .iter()
        .find(|entry| entry.platform.as_ref().is_some_and(|p| wanted.matches(p)));
    found.ok_or_else(|| Error::PlatformNotFound {
        index: index.clone(),
        wanted: wanted.clone(),
        available: entries.iter().filter_map(|e| e.platform.clone()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYER: &str = "sha256:c6348fa86ba0fb2108c9334f5fe913ddc6d853313e655891f133a0127c30099f";
    const CONFIG: &str = "sha256:b05093807bb0294152bb9cf86d64da722732dddaf7f8882fa1f120477dbc4db3";

    fn manifest_digest() -> Digest {
        Digest::of(b"test manifest")
    }

    fn image_json(media_type: &str, layer_type: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media_type}",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CONFIG}","size":10}},
            "layers":[{{"mediaType":"{layer_type}","digest":"{LAYER}","size":20}}]}}"#
        )
    }

    #[test]
    fn manifest_parses_oci_and_docker_images() {
        let cases = [
            (
                MediaType::OCI_MANIFEST,
                "application/vnd.oci.image.layer.v1.tar+gzip",
            ),
            (
                MediaType::DOCKER_MANIFEST,
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            ),
        ];
        for (media_type, layer_type) in cases {
            let json = image_json(media_type, layer_type);
            let Manifest::Image(image) =
                Manifest::parse(json.as_bytes(), &manifest_digest()).unwrap()
            else {
                panic!("{media_type} parsed as an index");
            };
            assert_eq!(image.media_type, media_type);
            assert_eq!(image.config.digest.to_string(), CONFIG);
            assert_eq!(image.layers.len(), 1);
            assert_eq!(image.layers[0].size, 20);
            assert_eq!(image.layers[0].media_type, layer_type);
        }
    }

    #[test]
    fn manifest_without_media_type_is_told_apart_by_fields() {
        let image = image_json(MediaType::OCI_MANIFEST, "x").replace(
            &format!(r#""mediaType":"{}","#, MediaType::OCI_MANIFEST),
            "",
        );
        let parsed = Manifest::parse(image.as_bytes(), &manifest_digest()).unwrap();
        assert!(matches!(parsed, Manifest::Image(_)));

        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{LAYER}","size":5}}]}}"#,
            MediaType::OCI_MANIFEST
        );
        let parsed = Manifest::parse(index.as_bytes(), &manifest_digest()).unwrap();
        assert!(matches!(parsed, Manifest::Index(_)));
    }

    #[test]
    fn manifest_rejects_schema1() {
        let json = r#"{"schemaVersion":1,"name":"x","tag":"latest","fsLayers":[]}"#;
        let error = Manifest::parse(json.as_bytes(), &manifest_digest()).unwrap_err();
        assert!(
            matches!(error, Error::UnsupportedManifest { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("schema 1"), "{error}");
    }

    #[test]
    fn manifest_rejects_unknown_media_type_and_garbage() {
        let json = r#"{"schemaVersion":2,"mediaType":"application/vnd.cncf.helm.chart"}"#;
        let error = Manifest::parse(json.as_bytes(), &manifest_digest()).unwrap_err();
        assert!(
            matches!(error, Error::UnsupportedManifest { .. }),
            "{error}"
        );

        let error = Manifest::parse(b"not json", &manifest_digest()).unwrap_err();
        assert!(matches!(error, Error::InvalidManifest { .. }), "{error}");
    }

    fn index_entries() -> Vec<IndexEntry> {
        let entry = |arch: &str, variant: Option<&str>, n: u8| IndexEntry {
            descriptor: Descriptor {
                media_type: MediaType::OCI_MANIFEST.to_owned(),
                digest: Digest::of(&[n]),
                size: 1,
            },
            platform: Some(Platform::new("linux", arch, variant)),
        };
        vec![
            entry("amd64", None, 1),
            entry("arm64", Some("v8"), 2),
            IndexEntry {
                platform: None,
                ..entry("amd64", None, 3)
            },
        ]
    }

    #[test]
    fn select_platform_picks_matching_entry() {
        let entries = index_entries();
        let index = manifest_digest();
        let arm = select_platform(&entries, &"linux/arm64".parse().unwrap(), &index).unwrap();
        assert_eq!(arm.descriptor.digest, Digest::of(&[2]));
        let amd = select_platform(&entries, &"linux/amd64".parse().unwrap(), &index).unwrap();
        assert_eq!(amd.descriptor.digest, Digest::of(&[1]));
    }

    #[test]
    fn select_platform_lists_available_on_miss() {
        let entries = index_entries();
        let wanted = "linux/s390x".parse().unwrap();
        let error = select_platform(&entries, &wanted, &manifest_digest()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("linux/s390x"), "{message}");
        assert!(message.contains("linux/amd64, linux/arm64/v8"), "{message}");
    }

    #[test]
    fn compression_by_media_type() {
        let cases = [
            ("application/vnd.oci.image.layer.v1.tar", Compression::None),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                Compression::Gzip,
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                Compression::Zstd,
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Compression::Gzip,
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Compression::Gzip,
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar",
                Compression::None,
            ),
        ];
        for (media_type, expected) in cases {
            assert_eq!(Compression::from_media_type(media_type).unwrap(), expected);
        }
        assert!(Compression::from_media_type("application/octet-stream").is_err());
    }
}
