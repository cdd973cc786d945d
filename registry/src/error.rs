use std::fmt;
use std::time::Duration;

use crate::digest::Digest;
use crate::hosts::Endpoint;
use crate::platform::Platform;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong talking to a registry or reading what it sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} not found at {endpoint}")]
    NotFound { what: String, endpoint: Endpoint },

    #[error("{endpoint} denied access to {what}: {message}")]
    Denied {
        what: String,
        endpoint: Endpoint,
        message: String,
    },

    #[error("registry {endpoint} is unreachable: {reason}")]
    Unreachable { endpoint: Endpoint, reason: String },

    #[error(
        "registry {endpoint} timed out serving {what}: no data for {} s",
        timeout.as_secs_f64()
    )]
    TimedOut {
        what: String,
        endpoint: Endpoint,
        timeout: Duration,
    },

    #[error("registry {endpoint} broke off the transfer of {what}: {reason}")]
    Interrupted {
        what: String,
        endpoint: Endpoint,
        reason: String,
    },

    #[error("registry {endpoint} failed to serve {what}: {message}")]
    Registry {
        what: String,
        endpoint: Endpoint,
        message: String,
    },

    #[error("{what} has digest {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },

    #[error(
        "manifest {digest} has unsupported media type {media_type}{}",
        schema1_hint(media_type)
    )]
    UnsupportedManifest { digest: Digest, media_type: String },

    #[error("manifest {digest} is invalid: {reason}")]
    InvalidManifest { digest: Digest, reason: String },

    #[error("unsupported layer media type {media_type}")]
    UnsupportedLayer { media_type: String },

    #[error(
        "index {index} has no manifest for platform {wanted}; available: {}",
        list_platforms(available)
    )]
    PlatformNotFound {
        index: Digest,
        wanted: Platform,
        available: Vec<Platform>,
    },

    #[error("invalid registry endpoint {text:?}: {reason}")]
    InvalidEndpoint { text: String, reason: String },

    #[error("{}", Attempts(.0))]
    AllEndpointsFailed(Vec<Error>),
}

impl Error {
    /// Whether the error means the content does not exist, as opposed to a failure to reach or
    /// use the registry.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound { .. } => true,
            Error::AllEndpointsFailed(errors) => errors.iter().all(Error::is_not_found),
            _ => false,
        }
    }
}

fn schema1_hint(media_type: &str) -> &'static str {
    if media_type.contains("manifest.v1") {
        " (Docker schema 1, which is deprecated; push the image again with a current tool)"
    } else {
        ""
    }
}

fn list_platforms(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "none".to_owned();
    }
    let names: Vec<String> = platforms.iter().map(Platform::to_string).collect();
    names.join(", ")
}

/// Joins the errors of each endpoint tried, mirrors first, into one line.
struct Attempts<'a>(&'a [Error]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; then ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}
