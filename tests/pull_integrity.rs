//! Layers that do not match what the manifest and config promise, in images of more than
//! one layer: the pull fails with a one-line error before any layer becomes visible in the
//! store, even the layers that were fine. `tests/registry_faults.rs` covers each kind of
//! blob mismatch on one layer.

mod common;
mod conformance;

use common::fake_registry::{FakeRegistry, Image, Layer, Reply};
use common::push::{push_image, sha256, Format, PushLayer};
use common::{direct, Env};
use conformance::compression;

const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const REPOSITORY: &str = "fault/stack";

/// Pulls `reference`, which must fail, and returns the one-line error. Asserts that the
/// store is as it was.
fn failed_pull(env: &Env, reference: &str) -> String {
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

/// A gzip layer of the compression cases' archive.
fn gzip_layer() -> Layer {
    let tar = compression::archive();
    Layer {
        media_type: GZIP_LAYER.to_owned(),
        blob: compression::gzip(&tar),
        diff_id: sha256(&tar),
    }
}

#[test]
fn corrupt_upper_layer_commits_nothing() {
    let registry = FakeRegistry::start();
    let image = Image::new(vec![Layer::tar(&[("lower", b"lower\n")]), gzip_layer()]);
    registry.serve_image(REPOSITORY, "latest", &image);
    let upper = &image.layers[1];
    let mut wrong = upper.blob.clone();
    wrong[20] ^= 0xff;
    registry.set(
        &FakeRegistry::blob_path(REPOSITORY, &upper.digest()),
        Reply::blob(&wrong),
    );

    let env = Env::new();
    let message = failed_pull(&env, &format!("{}/{REPOSITORY}:latest", registry.host()));
    let committed = std::fs::read_dir(env.root.join("layers/sha256"))
        .unwrap()
        .count();

    assert!(message.contains(&upper.digest()), "{message}");
    assert!(message.contains("has digest"), "{message}");
    assert_eq!(committed, 0, "a layer was committed");
}

#[test]
fn wrong_diff_id_is_rejected() {
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
