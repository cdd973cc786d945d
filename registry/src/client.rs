//! Fetching manifests and blobs over the OCI distribution API. `oci-client` handles the
//! anonymous bearer-token exchange that Docker Hub and most registries ask for.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use oci_spec::distribution::Reference as SpecReference;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};
use tokio::sync::Mutex;
use tracing::{debug, warn};

use crate::classify::{convert_error, served_from, status_error, transport_error};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::hosts::{Endpoint, HostsConfig};
use crate::manifest::{Descriptor, MediaType};
use crate::reference::Reference;

const USER_AGENT: &str = concat!("layerfs/", env!("CARGO_PKG_VERSION"));
/// Redirects followed for one request, as reqwest and Go's net/http allow.
const MAX_REDIRECTS: usize = 10;
/// Bytes of an error response read for its message.
const MAX_ERROR_BODY: usize = 64 << 10;
/// Manifests larger than this are rejected before they are read into memory. containerd uses
/// the same limit.
const MAX_MANIFEST: usize = 4 << 20;

/// A registry client that knows each registry's mirrors.
///
/// Manifests and blobs are fetched with plain GETs carrying the token that `oci-client`
/// obtained. One reason is that `oci-client` rejects a manifest whose body does not hash to
/// the registry's `Docker-Content-Digest` before the caller can see why. A Docker schema 1
/// manifest always fails that way, because its registry digest leaves out the signature, and
/// layerfs reports it as the unsupported kind it is. Another is that redirects are followed
/// here, so that an error names the storage host a blob redirect led to when that host fails.
pub struct Client {
    hosts: HostsConfig,
    timeouts: Timeouts,
    https: oci_client::Client,
    http: oci_client::Client,
    plain: reqwest::Client,
    /// Bearer tokens per endpoint and repository, `None` where the registry requires none.
    tokens: Mutex<HashMap<(Endpoint, String), Option<String>>>,
}

/// How long the client waits on the network before a fetch fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time to establish a connection, TLS handshake included.
    pub connect: Duration,
    /// The maximum time without data in the middle of a response. It bounds the wait for the
    /// next bytes, not the whole transfer, so large layers on slow links still succeed.
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(15),
            read: Duration::from_secs(60),
        }
    }
}

/// The endpoint and repository a manifest came from. The blobs it names are fetched from the
/// same place first, then from the registry's other endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub endpoint: Endpoint,
    pub repository: String,
    /// The registry as the reference names it, whose other endpoints serve as fallbacks.
    pub registry: String,
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
    pub fn new(hosts: HostsConfig, timeouts: Timeouts) -> Client {
        let plain = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .user_agent(USER_AGENT)
            .build()
            .expect("the TLS backend initializes");
        Client {
            hosts,
            timeouts,
            https: oci_client::Client::new(client_config(ClientProtocol::Https, timeouts)),
            http: oci_client::Client::new(client_config(ClientProtocol::Http, timeouts)),
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
                registry: reference.registry().to_owned(),
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
        let path = format!("/v2/{}/manifests/{key}", source.repository);
        let accept = MediaType::ACCEPTED.join(", ");
        let mut response = self.get(source, &path, Some(&accept), what).await?;
        let status = response.status();
        let header = |name: &str| {
            let value = response.headers().get(name)?;
            value.to_str().ok().map(str::to_owned)
        };
        let content_type = header(CONTENT_TYPE.as_str());
        let digest_header = header("Docker-Content-Digest");

        let url = response.url().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| {
            transport_error(
                &error,
                what,
                &source.endpoint,
                Some(&url),
                self.timeouts.read,
            )
        })? {
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
            let what = served_from(what, &source.endpoint, &url);
            return Err(status_error(status, &body, &what, &source.endpoint));
        }
        Ok(ManifestResponse {
            body: Bytes::from(body),
            content_type,
            digest_header,
        })
    }

    /// Sends a GET for `path` to `source`'s endpoint with its pull token. A 401 to a request
    /// that carried a token is retried once with a new token, because tokens expire (after the
    /// `expires_in` of the token response) and a long pull can outlive the one it started with.
    async fn get(
        &self,
        source: &Source,
        path: &str,
        accept: Option<&str>,
        what: &str,
    ) -> Result<reqwest::Response> {
        let token = self.token(source, None).await?;
        let response = self
            .send(source, path, accept, token.as_deref(), what)
            .await?;
        let Some(stale) = token.filter(|_| response.status() == StatusCode::UNAUTHORIZED) else {
            return Ok(response);
        };
        debug!(endpoint = %source.endpoint, %what, "token rejected, fetching a new one");
        let token = self.token(source, Some(&stale)).await?;
        self.send(source, path, accept, token.as_deref(), what)
            .await
    }

    /// Sends one GET and follows redirects itself, so that the token only ever goes to the
    /// endpoint, never to a storage host that a redirect names, and so that a failure names
    /// the host that failed.
    async fn send(
        &self,
        source: &Source,
        path: &str,
        accept: Option<&str>,
        token: Option<&str>,
        what: &str,
    ) -> Result<reqwest::Response> {
        let endpoint = &source.endpoint;
        let mut url =
            Url::parse(&format!("{endpoint}{path}")).map_err(|error| Error::InvalidEndpoint {
                text: endpoint.to_string(),
                reason: error.to_string(),
            })?;
        let origin = url.origin();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = self.plain.get(url.clone());
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some(token) = token.filter(|_| url.origin() == origin) {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.map_err(|error| {
                transport_error(&error, what, endpoint, Some(&url), self.timeouts.read)
            })?;
            let status = response.status();
            if !is_redirect(status) {
                return Ok(response);
            }
            let location = response.headers().get(LOCATION);
            let next = location
                .and_then(|value| value.to_str().ok())
                .and_then(|location| url.join(location).ok());
            url = next.ok_or_else(|| Error::Registry {
                what: what.to_owned(),
                endpoint: endpoint.clone(),
                message: format!("HTTP {status} without a valid Location header"),
            })?;
            debug!(%url, "following redirect");
        }
        Err(Error::Registry {
            what: what.to_owned(),
            endpoint: endpoint.clone(),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// Gets the anonymous pull token the registry requires, once per endpoint and repository,
    /// through `oci-client`'s challenge handling. A new one replaces `stale` unless another
    /// task has replaced it already.
    async fn token(&self, source: &Source, stale: Option<&str>) -> Result<Option<String>> {
        let key = (source.endpoint.clone(), source.repository.clone());
        let mut tokens = self.tokens.lock().await;
        if let Some(token) = tokens.get(&key) {
            if stale.is_none() || token.as_deref() != stale {
                return Ok(token.clone());
            }
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
            .map_err(|error| {
                convert_error(
                    error,
                    "the /v2/ auth check",
                    &source.endpoint,
                    self.timeouts.read,
                )
            })?;
        tokens.insert(key, token.clone());
        Ok(token)
    }

    /// Starts fetching the blob `descriptor` names from `source`, or, when that endpoint fails
    /// before sending any of it, from the registry's other endpoints in order. A failure in
    /// the middle of the body is the caller's to report: the bytes already consumed cannot
    /// be taken back.
    pub async fn fetch_blob(&self, source: &Source, descriptor: &Descriptor) -> Result<BlobStream> {
        let mut errors = Vec::new();
        let fallbacks = self.hosts.endpoints(&source.registry);
        let others = fallbacks.into_iter().filter(|e| *e != source.endpoint);
        let candidates = std::iter::once(source.endpoint.clone()).chain(others);
        for endpoint in candidates {
            let attempt = Source {
                endpoint,
                ..source.clone()
            };
            match self.fetch_blob_at(&attempt, descriptor).await {
                Ok(blob) => {
                    for error in &errors {
                        warn!(%error, "skipped a failing endpoint");
                    }
                    return Ok(blob);
                }
                Err(error) => errors.push(error),
            }
        }
        if errors.len() > 1 {
            return Err(Error::AllEndpointsFailed(errors));
        }
        Err(errors
            .pop()
            .expect("at least the source endpoint was tried"))
    }

    /// Starts fetching a blob from `source`'s endpoint only.
    async fn fetch_blob_at(&self, source: &Source, descriptor: &Descriptor) -> Result<BlobStream> {
        let what = format!("blob {}", descriptor.digest);
        debug!(endpoint = %source.endpoint, %what, "fetching");
        let path = format!("/v2/{}/blobs/{}", source.repository, descriptor.digest);
        let response = self.get(source, &path, None, &what).await?;
        let status = response.status();
        if status != StatusCode::OK {
            let what = served_from(&what, &source.endpoint, response.url());
            let body = read_error_body(response).await;
            return Err(status_error(status, &body, &what, &source.endpoint));
        }

        let content_length = response.content_length();
        let endpoint = source.endpoint.clone();
        let url = response.url().clone();
        let read_timeout = self.timeouts.read;
        let chunks = response.bytes_stream().map(move |chunk| {
            chunk.map_err(|error| {
                transport_error(&error, &what, &endpoint, Some(&url), read_timeout)
            })
        });
        Ok(BlobStream {
            content_length,
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

/// Whether `status` redirects to its Location header (RFC 9110, section 15.4).
fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Reads the start of an error response, enough for the registry's error envelope.
async fn read_error_body(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ERROR_BODY {
            break;
        }
    }
    body
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

fn client_config(protocol: ClientProtocol, timeouts: Timeouts) -> ClientConfig {
    ClientConfig {
        protocol,
        connect_timeout: Some(timeouts.connect),
        read_timeout: Some(timeouts.read),
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
