//! Maps what a registry returned, or how the connection failed, to an [`Error`] that names
//! what was being fetched and from where.

use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};
use reqwest::{StatusCode, Url};

use crate::error::Error;
use crate::hosts::Endpoint;

/// Maps a non-200 response to an error, reading the registry's error envelope if it sent one.
pub(crate) fn status_error(
    status: StatusCode,
    body: &[u8],
    what: &str,
    endpoint: &Endpoint,
) -> Error {
    let what = what.to_owned();
    let endpoint = endpoint.clone();
    if let Ok(envelope) = serde_json::from_slice::<OciEnvelope>(body) {
        if !envelope.errors.is_empty() {
            return envelope_error(envelope, what, endpoint);
        }
    }
    match status {
        StatusCode::NOT_FOUND => Error::NotFound { what, endpoint },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Denied {
            what,
            endpoint,
            message: format!("HTTP {status}"),
        },
        _ => Error::Registry {
            what,
            endpoint,
            message: format!(
                "HTTP {status} {}",
                first_line(&String::from_utf8_lossy(body))
            ),
        },
    }
}

/// Maps an `oci-client` error to one that names what was fetched and from where.
pub(crate) fn convert_error(
    error: OciDistributionError,
    what: &str,
    endpoint: &Endpoint,
    read_timeout: Duration,
) -> Error {
    let what = what.to_owned();
    let endpoint = endpoint.clone();
    match error {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope_error(envelope, what, endpoint)
        }
        OciDistributionError::ImageManifestNotFoundError(_) => Error::NotFound { what, endpoint },
        OciDistributionError::ServerError { code: 404, .. } => Error::NotFound { what, endpoint },
        OciDistributionError::ServerError { code, message, .. } => Error::Registry {
            what,
            endpoint,
            message: format!("HTTP {code} {}", first_line(&message)),
        },
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => Error::Denied {
            what,
            endpoint,
            message: "authentication failed (only anonymous pulls are supported)".to_owned(),
        },
        OciDistributionError::RequestError(error) => {
            transport_error(&error, &what, &endpoint, None, read_timeout)
        }
        OciDistributionError::DigestError(error) => Error::Registry {
            what,
            endpoint,
            message: error.to_string(),
        },
        other => Error::Registry {
            what,
            endpoint,
            message: other.to_string(),
        },
    }
}

/// Maps a failed request or response body: no connection, a timeout, or a transfer that broke
/// off. `url` is the URL requested, when it may differ from `error`'s because of a redirect.
pub(crate) fn transport_error(
    error: &reqwest::Error,
    what: &str,
    endpoint: &Endpoint,
    url: Option<&Url>,
    read_timeout: Duration,
) -> Error {
    let url = url.or(error.url());
    // reqwest reports a connect timeout as both: the host is unreachable.
    if error.is_connect() {
        let reason = innermost_message(error);
        return match url.and_then(|url| other_origin(url, endpoint)) {
            // A redirect target or a token realm failed, not the registry itself.
            Some(origin) => Error::Registry {
                what: what.to_owned(),
                endpoint: endpoint.clone(),
                message: format!("{origin} is unreachable: {reason}"),
            },
            None => Error::Unreachable {
                endpoint: endpoint.clone(),
                reason,
            },
        };
    }
    let what = match url {
        Some(url) => served_from(what, endpoint, url),
        None => what.to_owned(),
    };
    let endpoint = endpoint.clone();
    if error.is_timeout() {
        return Error::TimedOut {
            what,
            endpoint,
            timeout: read_timeout,
        };
    }
    Error::Interrupted {
        what,
        endpoint,
        reason: innermost_message(error),
    }
}

/// Names `what` as served from `url`: with the origin added when a redirect led away from
/// `endpoint`.
pub(crate) fn served_from(what: &str, endpoint: &Endpoint, url: &Url) -> String {
    match other_origin(url, endpoint) {
        Some(origin) => format!("{what} (from {origin})"),
        None => what.to_owned(),
    }
}

/// The origin (`scheme://host[:port]`) of `url`, if it is not `endpoint`'s.
fn other_origin(url: &Url, endpoint: &Endpoint) -> Option<String> {
    let endpoint_origin = Url::parse(&endpoint.to_string()).ok()?.origin();
    let origin = url.origin();
    (origin != endpoint_origin).then(|| origin.ascii_serialization())
}

/// Classifies the error codes of a registry's error envelope.
fn envelope_error(envelope: OciEnvelope, what: String, endpoint: Endpoint) -> Error {
    let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
    let message = envelope
        .errors
        .iter()
        .map(|e| e.message.clone())
        .collect::<Vec<_>>()
        .join("; ");
    let not_found = codes.iter().any(|code| {
        matches!(
            code,
            OciErrorCode::ManifestUnknown
                | OciErrorCode::NameUnknown
                | OciErrorCode::BlobUnknown
                | OciErrorCode::NotFound
        )
    });
    let denied = codes
        .iter()
        .any(|code| matches!(code, OciErrorCode::Unauthorized | OciErrorCode::Denied));
    if not_found {
        Error::NotFound { what, endpoint }
    } else if denied {
        Error::Denied {
            what,
            endpoint,
            message,
        }
    } else {
        Error::Registry {
            what,
            endpoint,
            message,
        }
    }
}

/// Returns the most specific message in an error's source chain ("Connection refused (os error 111)"
/// rather than "error sending request for url …").
pub(crate) fn innermost_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    first_line(&current.to_string()).to_owned()
}

pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}
