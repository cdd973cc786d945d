//! Pushing images that a test builds to the fixture registry, with the distribution API's
//! two-step blob upload (`POST` then `PUT ?digest=`) and a manifest `PUT`, over plain HTTP
//! on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;

use sha2::{Digest, Sha256};

use super::registry;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// One layer: its blob as served, and the media type that names its compression.
pub struct PushLayer {
    pub media_type: String,
    pub blob: Vec<u8>,
    /// Digest of the uncompressed archive, `sha256:…`.
    pub diff_id: String,
}

/// The manifest and config formats of an image.
#[derive(Clone, Copy)]
pub enum Format {
    Oci,
    Docker,
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Pushes an amd64 image with `layers` (bottom first) as `repository:tag` and returns the
/// manifest digest.
pub fn push_image(repository: &str, tag: &str, layers: &[PushLayer], format: Format) -> String {
    let diff_ids: Vec<&str> = layers.iter().map(|layer| layer.diff_id.as_str()).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).unwrap();

    let (manifest_type, config_type) = match format {
        Format::Oci => (OCI_MANIFEST, OCI_CONFIG),
        Format::Docker => (DOCKER_MANIFEST, DOCKER_CONFIG),
    };
    upload_blob(repository, &config);

    let mut descriptors = Vec::new();
    for layer in layers {
        upload_blob(repository, &layer.blob);
        descriptors.push(serde_json::json!({
            "mediaType": layer.media_type,
            "digest": sha256(&layer.blob),
            "size": layer.blob.len(),
        }));
    }

    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": sha256(&config), "size": config.len()},
        "layers": descriptors,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let path = format!("/v2/{repository}/manifests/{tag}");
    let response = request("PUT", &path, &[("Content-Type", manifest_type)], &manifest);
    assert_eq!(
        response.status, 201,
        "pushing manifest {repository}:{tag}: {response:?}"
    );
    sha256(&manifest)
}

fn upload_blob(repository: &str, blob: &[u8]) {
    let started = request(
        "POST",
        &format!("/v2/{repository}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(
        started.status, 202,
        "starting upload to {repository}: {started:?}"
    );
    let location = started.header("location").expect("an upload location");
    let path = match location.find("/v2/") {
        Some(start) => &location[start..],
        None => location,
    };
    let separator = if path.contains('?') { '&' } else { '?' };
    let path = format!("{path}{separator}digest={}", sha256(blob));
    let headers = [("Content-Type", "application/octet-stream")];
    let finished = request("PUT", &path, &headers, blob);
    assert_eq!(
        finished.status, 201,
        "uploading to {repository}: {finished:?}"
    );
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// One HTTP/1.1 request to the fixture registry, on its own connection.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let address = registry();
    let mut stream = TcpStream::connect(&address).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}
