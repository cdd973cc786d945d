//! Image references as Docker reads them: `busybox` means `docker.io/library/busybox:latest`,
//! a first component with a `.` or `:` or equal to `localhost` is a registry host, and a
//! digest after `@` pins the manifest (the tag, if any, is then only informational).

use std::fmt;
use std::str::FromStr;

use oci_spec::distribution::Reference as SpecReference;

use crate::digest::{Digest, DigestParseError};

/// A normalized image reference: registry host, repository, and a tag, a digest or both.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceParseError {
    #[error("invalid image reference {input:?}: {reason}")]
    Invalid { input: String, reason: String },
    #[error("invalid image reference {input:?}: {error}")]
    Digest {
        input: String,
        error: DigestParseError,
    },
}

impl Reference {
    /// Builds a reference to `repository` at `digest` on `registry`.
    pub fn with_digest(registry: &str, repository: &str, digest: Digest) -> Reference {
        Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// Registry host as written in the reference, with `docker.io` for Docker Hub.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path, `library/busybox` for an official Docker Hub image.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The manifest to request: the digest when there is one, otherwise the tag.
    pub fn manifest_key(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceParseError;

    fn from_str(input: &str) -> Result<Reference, ReferenceParseError> {
        let parsed =
            SpecReference::from_str(input).map_err(|error| ReferenceParseError::Invalid {
                input: input.to_owned(),
                reason: error.to_string(),
            })?;
        let digest = match parsed.digest() {
            None => None,
            Some(text) => {
                Some(
                    text.parse::<Digest>()
                        .map_err(|error| ReferenceParseError::Digest {
                            input: input.to_owned(),
                            error,
                        })?,
                )
            }
        };
        // oci-spec fills in `latest` only when neither a tag nor a digest is given, which is
        // what Docker does too.
        Ok(Reference {
            registry: parsed.registry().to_owned(),
            repository: parsed.repository().to_owned(),
            tag: parsed.tag().map(str::to_owned),
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:1cfa4e2b09e127b9c4ed43578d3f3c18e7d44ea47b9ea98475c0cbe9086525f8";

    #[test]
    fn reference_normalization_table() {
        let at_digest = format!("busybox@{DIGEST}");
        let tag_and_digest = format!("ghcr.io/org/app:1@{DIGEST}");
        let cases: &[(&str, &str)] = &[
            ("busybox", "docker.io/library/busybox:latest"),
            ("alpine:3.20", "docker.io/library/alpine:3.20"),
            ("ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
            (
                "docker.io/library/ubuntu:22.04",
                "docker.io/library/ubuntu:22.04",
            ),
            (
                "index.docker.io/library/ubuntu",
                "docker.io/library/ubuntu:latest",
            ),
            ("myuser/app", "docker.io/myuser/app:latest"),
            ("ghcr.io/org/app:1", "ghcr.io/org/app:1"),
            ("localhost:5000/x/y:tag", "localhost:5000/x/y:tag"),
            ("localhost/x", "localhost/x:latest"),
            (
                "127.0.0.1:41234/library/busybox",
                "127.0.0.1:41234/library/busybox:latest",
            ),
            (&at_digest, &format!("docker.io/library/busybox@{DIGEST}")),
            (&tag_and_digest, &tag_and_digest),
        ];
        for (input, expected) in cases {
            let reference: Reference = input.parse().unwrap();
            assert_eq!(reference.to_string(), *expected, "input {input:?}");
        }
    }

    #[test]
    fn reference_parts() {
        let reference: Reference = "localhost:5000/x/y:tag".parse().unwrap();
        assert_eq!(reference.registry(), "localhost:5000");
        assert_eq!(reference.repository(), "x/y");
        assert_eq!(reference.tag(), Some("tag"));
        assert_eq!(reference.digest(), None);
        assert_eq!(reference.manifest_key(), "tag");
    }

    #[test]
    fn digest_wins_over_tag_as_manifest_key() {
        let reference: Reference = format!("ghcr.io/org/app:1@{DIGEST}").parse().unwrap();
        assert_eq!(reference.manifest_key(), DIGEST);
    }

    #[test]
    fn reference_rejects_invalid_input() {
        let sha512 = format!("busybox@sha512:{}", "a".repeat(128));
        let cases = [
            "",
            "Busybox",
            "busybox:",
            "busybox@sha256:abc",
            ":tag",
            "a//b",
            &sha512,
        ];
        for input in cases {
            assert!(
                input.parse::<Reference>().is_err(),
                "input {input:?} parsed"
            );
        }
    }
}
