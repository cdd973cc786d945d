//! Fetching manifests and blobs over the OCI distribution API, through `oci-client`, which
//! handles the anonymous bearer-token exchange that Docker Hub and most registries ask for.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use oci_spec::distribution::Reference as SpecReference;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use tokio::sync::Mutex;
use tracing::{debug, warn};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::hosts::{Endpoint, HostsConfig};
use crate::manifest::{Descriptor, MediaType};
use crate::reference::Reference;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a registry may stay silent in the middle of a response before the fetch fails.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const USER_AGENT: &str = concat!("layerfs/", env!("CARGO_PKG_VERSION"));
/// Manifests larger than this are rejected before they are read into memory. containerd uses
/// the same limit.
const MAX_MANIFEST: usize = 4 << 20;

/// A registry client that knows each registry's mirrors.
///
/// Blobs go through `oci-client`. Manifests are fetched with a plain GET carrying the token
/// that `oci-client` obtained. The reason is that `oci-client` rejects a manifest whose body
/// does not hash to the registry's `Docker-Content-Digest` before the caller can see why. A
/// Docker schema 1 manifest always fails that way, because its registry digest leaves out the
/// signature, and layerfs reports it as the unsupported kind it is.
pub struct Client {
    hosts: HostsConfig,
    https: oci_client::Client,
    http: oci_client::Client,
    plain: reqwest::Client,
    /// Bearer tokens per endpoint and repository, `None` where the registry requires none.
    tokens: Mutex<HashMap<(Endpoint, String), Option<String>>>,
}

/// The endpoint and repository a manifest came from. The blobs it names are fetched from the
/// same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub endpoint: Endpoint,
    pub repository: String,
}

/// Manifest bytes exactly as served, with their verified digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    pub digest: Digest,
    pub source: Source,
}

/// A blob body as it arrives. The consumer hashes it: nothing here has been verified yet.
pub struct BlobStream {
    pub content_length: Option<u64>,
    pub chunks: BoxStream<'static, Result<Bytes>>,
}

impl Client {
    pub fn new(hosts: HostsConfig) -> Client {
        let plain = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(USER_AGENT)
            .build()
            .expect("the TLS backend initializes");
        Client {
            hosts,
            https: oci_client::Client::new(client_config(ClientProtocol::Https)),
            http: oci_client::Client::new(client_config(ClientProtocol::Http)),
            plain,
            tokens: Mutex::default(),
        }
    }

    /// Fetches the manifest that `reference` names, trying each endpoint of its registry in
    /// turn. A digest in the reference is verified against the bytes received.
    pub async fn fetch_manifest(&self, reference: &Reference) -> Result<FetchedManifest> {
        let endpoints = self.hosts.endpoints(reference.registry());
        let mut errors = Vec::new();
        for endpoint in endpoints {
            let source = Source {
                endpoint,
                repository: reference.repository().to_owned(),
            };
            let key = reference.manifest_key();
            match self
                .fetch_manifest_at(&source, &key, reference.digest())
                .await
            {
                Ok(manifest) => {
                    // Only now is a failed mirror worth a warning: when every endpoint fails,
                    // the error reports them all.
                    for error in &errors {
                        warn!(%error, "skipped a failing endpoint");
                    }
                    return Ok(manifest);
                }
                Err(error) => {
                    debug!(endpoint = %source.endpoint, %error, "manifest fetch failed");
                    errors.push(error);
                }
            }
        }
        if errors.len() > 1 {
            return Err(Error::AllEndpointsFailed(errors));
        }
        Err(errors
            .pop()
            .expect("HostsConfig::endpoints returns at least one endpoint"))
    }

    /// Fetches the manifest `key` (a tag or a digest) of `source`'s repository. When `expected`
    /// is given, the bytes must hash to it.
    pub async fn fetch_manifest_at(
        &self,
        source: &Source,
        key: &str,
        expected: Option<&Digest>,
    ) -> Result<FetchedManifest> {
        let separator = if key.contains(':') { '@' } else { ':' };
        let what = format!("manifest {}{separator}{key}", source.repository);
        debug!(endpoint = %source.endpoint, %what, "fetching");
        let response = self.get_manifest(source, key, &what).await?;
        let digest = Digest::of(&response.body);
        if let Some(expected) = expected.filter(|expected| **expected != digest) {
            return Err(Error::DigestMismatch {
                what,
                expected: expected.clone(),
                actual: digest,
            });
        }
        let reported = response
            .digest_header
            .as_deref()
            .and_then(|text| text.parse().ok());
        if let Some(reported) = reported.filter(|reported: &Digest| *reported != digest) {
            if response.is_schema1() {
                return Err(Error::UnsupportedManifest {
                    digest: reported,
                    media_type: MediaType::DOCKER_SCHEMA1.to_owned(),
                });
            }
            return Err(Error::DigestMismatch {
                what: format!("{what} (digest reported by the registry)"),
                expected: reported,
                actual: digest,
            });
        }
        Ok(FetchedManifest {
            bytes: response.body,
            digest,
            source: source.clone(),
        })
    }

    async fn get_manifest(
        &self,
        source: &Source,
        key: &str,
        what: &str,
    ) -> Result<ManifestResponse> {
        let token = self.token(source).await?;
        let url = format!(
            "{}/v2/{}/manifests/{key}",
            source.endpoint, source.repository
        );
        let mut request = self
            .plain
            .get(&url)
            .header(ACCEPT, MediaType::ACCEPTED.join(", "));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let unreachable = |error: reqwest::Error| Error::Unreachable {
            endpoint: source.endpoint.clone(),
            reason: innermost_message(&error),
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let header = |name: &str| {
            let value = response.headers().get(name)?;
            value.to_str().ok().map(str::to_owned)
        };
        let content_type = header(CONTENT_TYPE.as_str());
        let digest_header = header("Docker-Content-Digest");

        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_MANIFEST {
                return Err(Error::Registry {
                    what: what.to_owned(),
                    endpoint: source.endpoint.clone(),
                    message: format!("the manifest is larger than {MAX_MANIFEST} bytes"),
                });
            }
        }
        if status != StatusCode::OK {
            return Err(status_error(status, &body, what, &source.endpoint));
        }
        Ok(ManifestResponse {
            body: Bytes::from(body),
            content_type,
            digest_header,
        })
    }

    /// Gets the anonymous pull token the registry requires, once per endpoint and repository,
    /// through `oci-client`'s challenge handling.
    async fn token(&self, source: &Source) -> Result<Option<String>> {
        let key = (source.endpoint.clone(), source.repository.clone());
        let mut tokens = self.tokens.lock().await;
        if let Some(token) = tokens.get(&key) {
            return Ok(token.clone());
        }
        let reference = spec_reference(source, "latest");
        let client = self.client_for(&source.endpoint);
        let token = client
            .auth(
                &reference,
                &RegistryAuth::Anonymous,
                RegistryOperation::Pull,
            )
            .await
            .map_err(|error| convert_error(error, "a pull token", &source.endpoint))?;
        tokens.insert(key, token.clone());
        Ok(token)
    }

    /// Starts fetching the blob `descriptor` names from `source`.
    pub async fn fetch_blob(&self, source: &Source, descriptor: &Descriptor) -> Result<BlobStream> {
        let what = format!("blob {}", descriptor.digest);
        debug!(endpoint = %source.endpoint, %what, "fetching");
        let reference = spec_reference(source, &descriptor.digest.to_string());
        let oci_descriptor = OciDescriptor {
            media_type: descriptor.media_type.clone(),
            digest: descriptor.digest.to_string(),
            size: descriptor.size as i64,
            ..OciDescriptor::default()
        };
        let client = self.client_for(&source.endpoint);
        let sized = client
            .pull_blob_stream(&reference, &oci_descriptor)
            .await
            .map_err(|error| convert_error(error, &what, &source.endpoint))?;

        let endpoint = source.endpoint.clone();
        let chunks = sized.stream.map(move |chunk| {
            chunk.map_err(|error| Error::Unreachable {
                endpoint: endpoint.clone(),
                reason: format!("reading {what}: {}", innermost_message(&error)),
            })
        });
        Ok(BlobStream {
            content_length: sized.content_length,
            chunks: chunks.boxed(),
        })
    }

    fn client_for(&self, endpoint: &Endpoint) -> &oci_client::Client {
        if endpoint.plain_http {
            &self.http
        } else {
            &self.https
        }
    }
}

/// A manifest response as received.
struct ManifestResponse {
    body: Bytes,
    content_type: Option<String>,
    digest_header: Option<String>,
}

impl ManifestResponse {
    fn is_schema1(&self) -> bool {
        let by_type = self
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/vnd.docker.distribution.manifest.v1"));
        let by_body = serde_json::from_slice::<serde_json::Value>(&self.body)
            .is_ok_and(|value| value["schemaVersion"] == 1);
        by_type || by_body
    }
}

/// Maps a non-200 response to an error, reading the registry's error envelope if it sent one.
fn status_error(status: StatusCode, body: &[u8], what: &str, endpoint: &Endpoint) -> Error {
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

fn client_config(protocol: ClientProtocol) -> ClientConfig {
    ClientConfig {
        protocol,
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        user_agent: USER_AGENT,
        // layerfs picks platforms itself, from the raw index.
        platform_resolver: None,
        ..ClientConfig::default()
    }
}

fn spec_reference(source: &Source, key: &str) -> SpecReference {
    let host = source.endpoint.host.clone();
    let repository = source.repository.clone();
    if key.contains(':') {
        SpecReference::with_digest(host, repository, key.to_owned())
    } else {
        SpecReference::with_tag(host, repository, key.to_owned())
    }
}

/// Maps an `oci-client` error to one that names what was fetched and from where.
fn convert_error(error: OciDistributionError, what: &str, endpoint: &Endpoint) -> Error {
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
        OciDistributionError::RequestError(error) => Error::Unreachable {
            endpoint,
            reason: innermost_message(&error),
        },
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
fn innermost_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    first_line(&current.to_string()).to_owned()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}
