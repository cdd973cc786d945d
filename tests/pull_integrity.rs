//! Content that does not match what the manifest and config promise: every mismatch fails
//! the pull with a one-line error before anything becomes visible in the store. A real
//! registry checks digests on upload, so wrong blobs come from a fake registry. A wrong
//! diff ID passes a real registry's checks and is pushed there.

mod common;
mod conformance;

use std::collections::HashMap;

use common::fake_registry::{FakeRegistry, Route};
use common::push::{push_image, sha256, Format, PushLayer, OCI_CONFIG, OCI_MANIFEST};
use common::{direct, Env};
use conformance::compression;

const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One layer as the manifest describes it and as the server sends it.
struct ServedLayer {
    /// The blob the descriptor's digest and size are computed from.
    described: Vec<u8>,
    /// The bytes the server sends for that digest.
    served: Vec<u8>,
    diff_id: String,
}

impl ServedLayer {
    fn honest(tar: &[u8]) -> ServedLayer {
        let blob = compression::gzip(tar);
        ServedLayer {
            described: blob.clone(),
            served: blob,
            diff_id: sha256(tar),
        }
    }
}

/// Starts a fake registry serving `fault/image:latest` with these layers, bottom first, and
/// returns the reference to pull.
fn serve_image(layers: Vec<ServedLayer>) -> (FakeRegistry, String) {
    let diff_ids: Vec<&str> = layers.iter().map(|layer| layer.diff_id.as_str()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();

    let mut routes = HashMap::new();
    let mut blob_route = |digest: String, body: Vec<u8>| {
        let route = Route {
            content_type: "application/octet-stream".to_owned(),
            digest: None,
            body,
        };
        routes.insert(format!("/v2/fault/image/blobs/{digest}"), route);
    };
    blob_route(sha256(&config), config.clone());

    let mut descriptors = Vec::new();
    for layer in &layers {
        blob_route(sha256(&layer.described), layer.served.clone());
        descriptors.push(serde_json::json!({
            "mediaType": GZIP_LAYER,
            "digest": sha256(&layer.described),
            "size": layer.described.len(),
        }));
    }

    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    let manifest_route = Route {
        content_type: OCI_MANIFEST.to_owned(),
        digest: Some(sha256(&manifest)),
        body: manifest,
    };
    routes.insert(
        "/v2/fault/image/manifests/latest".to_owned(),
        manifest_route,
    );

    let server = FakeRegistry::start(routes);
    let reference = format!("{}/fault/image:latest", server.address);
    (server, reference)
}

/// Pulls `reference`, which must fail, and returns the one-line error. Asserts that the
/// store is as it was.
fn failed_pull(env: &Env, reference: &str) -> String {
    env.ok(&["images"]);
    let before = env.store_listing();
    let stderr = env.fails(&["pull", reference]);
    assert_eq!(
        env.store_listing(),
        before,
        "the failed pull changed the store"
    );
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    stderr
}

fn lower_tar() -> Vec<u8> {
    conformance::tar::Tar::new()
        .root(0o755)
        .file("lower", 0o644, b"lower\n")
        .finish()
}

#[test]
fn pull_fake_registry_serves_valid_image() {
    let (_server, reference) = serve_image(vec![
        ServedLayer::honest(&lower_tar()),
        ServedLayer::honest(&compression::archive()),
    ]);
    let env = Env::new();
    env.ok(&["pull", &reference]);
    let images = env.ok(&["images"]);
    assert!(images.contains("fault/image"), "{images}");
}

#[test]
fn pull_rejects_blob_with_wrong_digest() {
    let mut layer = ServedLayer::honest(&compression::archive());
    let last = layer.served.len() - 1;
    layer.served[last] ^= 0xff;
    let (_server, reference) = serve_image(vec![layer]);
    let message = failed_pull(&Env::new(), &reference);
    assert!(message.contains("has digest"), "{message}");
    assert!(message.contains("expected sha256:"), "{message}");
}

#[test]
fn pull_rejects_blob_longer_than_descriptor() {
    let mut layer = ServedLayer::honest(&compression::archive());
    layer
        .served
        .extend_from_slice(b"more bytes than the descriptor says");
    let (_server, reference) = serve_image(vec![layer]);
    let message = failed_pull(&Env::new(), &reference);
    assert!(message.contains("bytes, expected"), "{message}");
}

#[test]
fn pull_rejects_blob_shorter_than_descriptor() {
    let mut layer = ServedLayer::honest(&compression::archive());
    layer.served.truncate(layer.served.len() / 2);
    let described = sha256(&layer.described);
    let (_server, reference) = serve_image(vec![layer]);
    let message = failed_pull(&Env::new(), &reference);
    assert!(message.contains(&described), "{message}");
    assert!(message.contains("expected"), "{message}");
}

#[test]
fn corrupt_upper_layer_commits_nothing() {
    let mut upper = ServedLayer::honest(&compression::archive());
    upper.served[20] ^= 0xff;
    let (_server, reference) = serve_image(vec![ServedLayer::honest(&lower_tar()), upper]);
    let env = Env::new();
    let message = failed_pull(&env, &reference);
    assert!(message.contains("digest"), "{message}");
    let layers = env.root.join("layers/sha256");
    let committed = std::fs::read_dir(&layers).unwrap().count();
    assert_eq!(committed, 0, "a layer was committed");
}

#[test]
fn pull_rejects_wrong_diff_id() {
    let tar = compression::archive();
    let layer = PushLayer {
        media_type: GZIP_LAYER.to_owned(),
        blob: compression::gzip(&tar),
        diff_id: sha256(b"not the uncompressed layer"),
    };
    push_image("layerfs-faults/diff-id", "latest", &[layer], Format::Oci);
    let message = failed_pull(&Env::new(), &direct("layerfs-faults/diff-id:latest"));
    assert!(message.contains("unpacks to diff ID"), "{message}");
    assert!(message.contains(&sha256(&tar)), "{message}");
}
