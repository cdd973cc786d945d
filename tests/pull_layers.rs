//! Layers through the whole pipeline: images built by the test are pushed to the fixture
//! registry, pulled with `layerfs pull` (concurrent streaming, then the resolve step in
//! bottom-first order) and mounted with `layerfs mount`. Covers every layer media type of
//! OCI and Docker, and the conformance cases where pulling adds to the overlay test: layer
//! stacks, errors and compressed layers.

mod common;
mod conformance;

use std::io::Write;
use std::process::{Command, Stdio};

use common::push::{push_image, sha256, Format, PushLayer};
use common::{direct, Env};
use conformance::expect::fingerprint;
use conformance::{compression, Case, Expect, Workspace};
use layerfs_registry::Compression;

/// Pulls `reference` into `env` and compares the mounted image with `tree`.
fn assert_pulled_tree(env: &Env, reference: &str, tree: &conformance::Tree) -> Vec<String> {
    let output = env.run(&["pull", reference]);
    if !output.status.success() {
        return vec![format!(
            "pull failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )];
    }
    let mnt = env.path(&format!(
        "mnt-{}",
        sha256(reference.as_bytes())[7..19].to_owned()
    ));
    env.ok(&["mount", reference, mnt.to_str().unwrap()]);
    let differences = tree.differences(&mnt);
    env.ok(&["umount", mnt.to_str().unwrap()]);
    differences
}

#[test]
fn pull_every_layer_media_type() {
    let tar = compression::archive();
    let gzip = compression::gzip(&tar);
    let zstd = zstd::encode_all(tar.as_slice(), 3).unwrap();
    let media_types = [
        (
            "oci-tar",
            "application/vnd.oci.image.layer.v1.tar",
            &tar,
            Format::Oci,
        ),
        (
            "oci-gzip",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &gzip,
            Format::Oci,
        ),
        (
            "oci-zstd",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            &zstd,
            Format::Oci,
        ),
        (
            "oci-nondistributable-tar",
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            &tar,
            Format::Oci,
        ),
        (
            "oci-nondistributable-gzip",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            &gzip,
            Format::Oci,
        ),
        (
            "oci-nondistributable-zstd",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
            &zstd,
            Format::Oci,
        ),
        (
            "docker-tar",
            "application/vnd.docker.image.rootfs.diff.tar",
            &tar,
            Format::Docker,
        ),
        (
            "docker-gzip",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            &gzip,
            Format::Docker,
        ),
        (
            "docker-zstd",
            "application/vnd.docker.image.rootfs.diff.tar.zstd",
            &zstd,
            Format::Docker,
        ),
    ];
    let env = Env::new();
    let mut failures = Vec::new();
    for (name, media_type, blob, format) in media_types {
        let layer = PushLayer {
            media_type: media_type.to_owned(),
            blob: blob.clone(),
            diff_id: sha256(&tar),
        };
        let repository = format!("layerfs-media/{name}");
        push_image(&repository, "latest", &[layer], format);
        let differences = assert_pulled_tree(
            &env,
            &direct(&format!("{repository}:latest")),
            &compression::tree(),
        );
        if !differences.is_empty() {
            failures.push(format!("{media_type}:\n  {}", differences.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Returns the OCI media type of a conformance layer with this compression.
fn media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// Computes a layer's diff ID, decompressing with GNU gzip or the zstd tool rather than
/// with layerfs. A blob they cannot decompress gets the digest of what they produced,
/// because those cases fail before the diff ID is checked.
fn diff_id(blob: &[u8], compression: Compression) -> String {
    let tool = match compression {
        Compression::None => return sha256(blob),
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    };
    let mut child = Command::new(tool)
        .args(["-d", "-c", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = blob.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    sha256(&output.stdout)
}

/// Pushes `case` as an image and returns its reference.
fn push_case(group: &str, case: &Case) -> String {
    let layers: Vec<PushLayer> = case
        .layers
        .iter()
        .map(|layer| PushLayer {
            media_type: media_type(layer.compression).to_owned(),
            blob: layer.blob.clone(),
            diff_id: diff_id(&layer.blob, layer.compression),
        })
        .collect();
    let repository = format!("conformance/{group}/{}", case.name);
    push_image(&repository, "latest", &layers, Format::Oci);
    direct(&format!("{repository}:latest"))
}

/// Pushes `case` as an image, pulls it and returns what went wrong. Each case gets a store
/// of its own, because cases share layers and a layer already present is not fetched.
fn check_case(group: &str, case: &Case) -> Vec<String> {
    let env = &Env::new();
    let reference = push_case(group, case);
    match &case.expect {
        Expect::Tree(tree) => assert_pulled_tree(env, &reference, tree),
        Expect::Error(text) => {
            let before = env.store_listing();
            let output = env.run(&["pull", &reference]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let mut problems = Vec::new();
            if output.status.success() {
                problems.push(format!("pull succeeded, expected an error with {text:?}"));
            } else if !stderr.contains(text) {
                problems.push(format!("failed with {stderr:?}, expected {text:?}"));
            }
            if env.store_listing() != before {
                problems.push("the failed pull changed the store".to_owned());
            }
            problems
        }
    }
}

/// Tells whether pulling `case` checks more than `tests/conformance_overlay.rs` does: a
/// stack of layers (resolved bottom first after a concurrent unpack), an error (the store
/// must stay as it was), or a compressed layer (decoded while its digests are computed). A
/// single uncompressed layer unpacks the same way both paths.
fn needs_pull(group: &str, case: &Case) -> bool {
    case.layers.len() > 1 || matches!(case.expect, Expect::Error(_)) || group == "compression"
}

/// Pulls the cases of `group` that [`needs_pull`] selects and asserts that none failed,
/// listing all that did.
fn check_group(group: &str) {
    let workspace = Workspace::new();
    let outside_before = fingerprint(&workspace.outside);
    let cases = conformance::all(&workspace.outside)
        .into_iter()
        .find(|(name, _)| *name == group)
        .expect("the group exists")
        .1;
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for case in cases.iter().filter(|case| needs_pull(group, case)) {
        let problems = check_case(group, case);
        if !problems.is_empty() {
            failures.push(format!("{}:\n  {}", case.name, problems.join("\n  ")));
        }
    }
    assert_eq!(fingerprint(&workspace.outside), outside_before);
    assert!(
        failures.is_empty(),
        "{} of {} {group} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn pull_matches_whiteout_cases() {
    check_group("whiteouts");
}

#[test]
fn pull_matches_type_change_cases() {
    check_group("types");
}

#[test]
fn pull_matches_hardlink_cases() {
    check_group("hardlinks");
}

#[test]
fn pull_matches_parent_cases() {
    check_group("parents");
}

#[test]
fn pull_matches_metadata_cases() {
    check_group("metadata");
}

#[test]
fn pull_matches_entry_kind_cases() {
    check_group("kinds");
}

#[test]
fn pull_matches_compression_cases() {
    check_group("compression");
}

#[test]
fn pull_matches_hostile_cases() {
    check_group("hostile");
}

#[test]
fn pull_resolves_against_stored_lower_layer() {
    let workspace = Workspace::new();
    let cases = conformance::all(&workspace.outside)
        .into_iter()
        .find(|(name, _)| *name == "hardlinks")
        .expect("the group exists")
        .1;
    let case = |name: &str| cases.iter().find(|case| case.name == name).unwrap();
    // Both stacks share their bottom layer, so the second pull finds it in the store and
    // resolves its upper layer against the stored directory.
    let first = case("hardlink_to_lower_file");
    let second = case("hardlink_to_lower_fifo");
    assert_eq!(first.layers[0].blob, second.layers[0].blob);
    let Expect::Tree(tree) = &second.expect else {
        panic!("{} expects a tree", second.name);
    };

    let env = Env::new();
    env.ok(&["pull", &push_case("hardlinks", first)]);
    let differences = assert_pulled_tree(&env, &push_case("hardlinks", second), tree);
    let layers = std::fs::read_dir(env.root.join("layers/sha256"))
        .unwrap()
        .count();

    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert_eq!(layers, 3, "the shared bottom layer was stored twice");
}
