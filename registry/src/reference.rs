//! Image references as Docker reads them: `busybox` means `docker.io/library/busybox:latest`,
//! a first component with a `.` or `:` or equal to `localhost` is a registry host, and a
//! digest after `@` pins the manifest (the tag, if any, is then only informational).

use std::fmt;
use std::str::FromStr;

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

    /// Parses by hand rather than with the grammar's regular expression (oci-spec's
    /// `Reference` parser), whose compilation took about 70 ms of every command that names an
    /// image on a 2-CPU machine.
    fn from_str(input: &str) -> Result<Reference, ReferenceParseError> {
        let invalid = |reason: &str| ReferenceParseError::Invalid {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (input, None),
        };
        let (name, tag) = split_tag(name_and_tag);
        if let Some(tag) = tag {
            if !is_tag(tag) {
                return Err(invalid("invalid tag"));
            }
        }
        let (registry, repository) = split_registry(name).map_err(invalid)?;
        if name.len() > NAME_MAX {
            return Err(invalid(
                "repository name must not be longer than 255 characters",
            ));
        }
        let digest = match digest {
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
        // `latest` only when neither a tag nor a digest is given, as Docker does.
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

/// The maximum length of a name (registry and repository) in the distribution reference
/// grammar.
const NAME_MAX: usize = 255;

/// Splits `name[:tag]`. A `:` before the last `/` belongs to a registry's port.
fn split_tag(name_and_tag: &str) -> (&str, Option<&str>) {
    let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    match name_and_tag[last_slash..].rfind(':') {
        Some(colon) => {
            let colon = last_slash + colon;
            (&name_and_tag[..colon], Some(&name_and_tag[colon + 1..]))
        }
        None => (name_and_tag, None),
    }
}

/// Splits a name into registry and repository as Docker does: the first component is a
/// registry if the name has more components and it contains a `.` or `:`, is `localhost`,
/// or has an uppercase letter. Docker Hub is `docker.io`, and its one-component names are
/// in `library/`.
fn split_registry(name: &str) -> Result<(String, String), &'static str> {
    let (registry, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => ("docker.io", name),
    };
    if !is_registry(registry) {
        return Err("invalid registry host");
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("repository name must be lowercase");
    }
    if path.is_empty() || !path.split('/').all(is_path_component) {
        return Err("invalid repository name");
    }
    let registry = if registry == "index.docker.io" {
        "docker.io"
    } else {
        registry
    };
    let repository = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    Ok((registry.to_owned(), repository))
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alphanumeric(first) || !alphanumeric(last) {
        return false;
    }
    let mut separator = String::new();
    for &byte in bytes {
        if alphanumeric(&byte) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__")
                && !separator.bytes().all(|b| b == b'-')
            {
                return false;
            }
            separator.clear();
        } else if matches!(byte, b'.' | b'_' | b'-') {
            separator.push(byte as char);
        } else {
            return false;
        }
    }
    true
}

/// Checks for a host name (labels of letters, digits and inner `-`, joined by `.`) or a
/// bracketed IPv6 address, with an optional numeric port.
fn is_registry(registry: &str) -> bool {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => (host, Some(port)),
        _ => (registry, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if let Some(address) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(&bytes[0])
        && bytes.iter().all(|b| word(b) || matches!(b, b'.' | b'-'))
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
            ("a__b/c--d/e.f_g", "docker.io/a__b/c--d/e.f_g:latest"),
            ("[::1]:5000/x:v1.2_rc-3", "[::1]:5000/x:v1.2_rc-3"),
            ("Registry/x", "Registry/x:latest"),
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
        let long = format!("x/{}", "a".repeat(255));
        let cases = [
            "",
            "Busybox",
            "busybox:",
            "busybox@sha256:abc",
            ":tag",
            "a//b",
            &sha512,
            "busybox:-tag",
            "a__-b",
            "-a/b",
            "a-",
            "my host.io/x",
            "host.io:port/x",
            "host.io:5000/x:t:u",
            &long,
        ];
        for input in cases {
            assert!(
                input.parse::<Reference>().is_err(),
                "input {input:?} parsed"
            );
        }
    }
}
