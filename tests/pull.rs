//! `layerfs pull`, `images` and `inspect` against the fixture registry.

mod common;

use std::process::Command;

use common::tree::{self, Compare};
use common::{direct, Env};
use serde_json::Value;

const BUSYBOX_GLIBC_AMD64: &str =
    "sha256:1cfa4e2b09e127b9c4ed43578d3f3c18e7d44ea47b9ea98475c0cbe9086525f8";

fn images_json(env: &Env) -> Vec<Value> {
    let output = env.ok(&["images", "--json"]);
    serde_json::from_str::<Value>(&output)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn inspect(env: &Env, reference: &str) -> Value {
    serde_json::from_str(&env.ok(&["inspect", reference])).unwrap()
}

#[test]
fn pull_every_fixture_image() {
    let env = Env::new();
    let names = [
        "busybox",
        "busybox:musl",
        "alpine:3.17",
        "alpine:3.18",
        "alpine:3.19",
        "alpine:3.20",
        "hello-world",
        "layerfs-fixtures/whiteouts",
    ];
    for name in names {
        let output = env.ok(&["pull", name]);
        assert!(output.starts_with("Pulled docker.io/"), "{name}: {output}");
    }

    let images = images_json(&env);
    let references: Vec<&str> = images
        .iter()
        .map(|i| i["reference"].as_str().unwrap())
        .collect();
    let expected = [
        "docker.io/layerfs-fixtures/whiteouts:latest",
        "docker.io/library/alpine:3.17",
        "docker.io/library/alpine:3.18",
        "docker.io/library/alpine:3.19",
        "docker.io/library/alpine:3.20",
        "docker.io/library/busybox:latest",
        "docker.io/library/busybox:musl",
        "docker.io/library/hello-world:latest",
    ];
    assert_eq!(references, expected);
    for image in &images {
        assert_eq!(image["platform"], "linux/amd64", "{image}");
        assert!(image["size"].as_u64().unwrap() > 0, "{image}");
    }
}

#[test]
fn pull_docker_schema2_image() {
    let env = Env::new();
    env.ok(&["pull", "busybox:musl"]);
    let image = inspect(&env, "busybox:musl");
    let layers = image["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["media_type"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
}

#[test]
fn pull_by_digest_picks_that_manifest() {
    let env = Env::new();
    let reference = format!("busybox@{BUSYBOX_GLIBC_AMD64}");
    env.ok(&["pull", &reference]);
    let image = inspect(&env, &reference);
    assert_eq!(image["digest"], BUSYBOX_GLIBC_AMD64);
    assert_eq!(image["manifest"], BUSYBOX_GLIBC_AMD64);
    assert_eq!(image["index"], Value::Null);
    assert_eq!(
        image["reference"],
        format!("docker.io/library/busybox@{BUSYBOX_GLIBC_AMD64}")
    );
}

#[test]
fn pull_index_picks_host_platform() {
    let env = Env::new();
    env.ok(&["pull", "busybox"]);
    let image = inspect(&env, "busybox");
    assert_eq!(image["manifest"], BUSYBOX_GLIBC_AMD64);
    assert!(image["index"].is_string());
    assert_eq!(image["digest"], image["index"]);
    assert_eq!(image["platform"], "linux/amd64");
}

#[test]
fn pull_platform_flag_picks_arm64() {
    let env = Env::new();
    env.ok(&["pull", "--platform", "linux/arm64", "alpine:3.20"]);
    let image = inspect(&env, "alpine:3.20");
    assert_eq!(image["platform"], "linux/arm64/v8");
    assert_eq!(image["config"]["architecture"], "arm64");
}

#[test]
fn pull_directly_from_loopback_registry() {
    let env = Env::new();
    let reference = direct("library/hello-world:latest");
    env.ok(&["pull", &reference]);
    let image = inspect(&env, &reference);
    assert_eq!(image["reference"], reference);
}

#[test]
fn second_pull_reuses_layers() {
    let env = Env::new();
    env.ok(&["pull", "alpine:3.19"]);
    let before = env.store_listing();
    env.ok(&["pull", "alpine:3.19"]);
    let after = env.store_listing();
    assert_eq!(before, after);
}

#[test]
fn images_table_lists_tags() {
    let env = Env::new();
    env.ok(&["pull", "hello-world"]);
    let table = env.ok(&["images"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("REPOSITORY"), "{table}");
    assert!(
        lines[1].starts_with("docker.io/library/hello-world  latest"),
        "{table}"
    );
    assert!(lines[1].contains("  linux/amd64  "), "{table}");
}

/// Extracts a layer blob with GNU tar, independently of layerfs.
fn extract_with_tar(blob: &std::path::Path, dest: &std::path::Path) {
    std::fs::create_dir_all(dest).unwrap();
    let status = Command::new("tar")
        .args([
            "--numeric-owner",
            "--same-owner",
            "-p",
            "--xattrs",
            "--xattrs-include=*",
            "-xf",
        ])
        .arg(blob)
        .arg("-C")
        .arg(dest)
        .status()
        .unwrap();
    assert!(status.success());
}

fn assert_mount_matches_tar(name: &str) {
    let env = Env::new();
    env.ok(&["pull", name]);
    let image = inspect(&env, name);
    let layers = image["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{name} is a one-layer image");
    let digest = layers[0]["digest"].as_str().unwrap();
    let blob = env
        .root
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));

    let extracted = env.path("extracted");
    extract_with_tar(&blob, &extracted);
    let mounted = env.path("mounted");
    env.ok(&["mount", name, mounted.to_str().unwrap()]);
    let compare = Compare {
        mtime: true,
        xattrs: true,
        ..Compare::default()
    };
    let expected = tree::snapshot(&extracted, compare);
    let actual = tree::snapshot(&mounted, compare);
    env.ok(&["umount", mounted.to_str().unwrap()]);

    assert!(
        expected.len() > 100,
        "{name}: only {} entries extracted",
        expected.len()
    );
    let differences = tree::differences(&expected, &actual);
    assert!(
        differences.is_empty(),
        "{name}:\n{}",
        differences.join("\n")
    );
}

#[test]
fn mounted_alpine_matches_tar_extraction() {
    for version in ["3.17", "3.18", "3.19", "3.20"] {
        assert_mount_matches_tar(&format!("alpine:{version}"));
    }
}

#[test]
fn mounted_busybox_matches_tar_extraction() {
    assert_mount_matches_tar("busybox");
    assert_mount_matches_tar("busybox:musl");
}

/// Counts the registry's GET requests for blob `digest`, from the access log lines of the log
/// that `fixtures/registry` keeps in `LAYERFS_TEST_REGISTRY_DIR`.
fn blob_fetches(digest: &str) -> usize {
    let dir = std::env::var("LAYERFS_TEST_REGISTRY_DIR")
        .expect("LAYERFS_TEST_REGISTRY_DIR is not set: run the suite with fixtures/test");
    let log = std::fs::read_to_string(std::path::Path::new(&dir).join("registry.log")).unwrap();
    let request = format!("/blobs/{digest} HTTP/1.1\"");
    log.lines()
        .filter(|line| line.contains("\"GET /v2/") && line.contains(&request))
        .count()
}

#[test]
fn concurrent_pulls_fetch_each_layer_once() {
    let scout = Env::new();
    scout.ok(&["pull", "alpine:3.18"]);
    let layer = inspect(&scout, "alpine:3.18")["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = blob_fetches(&layer);

    let env = Env::new();
    let pulls: Vec<_> = (0..2)
        .map(|_| env.command().args(["pull", "alpine:3.18"]).spawn().unwrap())
        .collect();
    for mut pull in pulls {
        assert!(pull.wait().unwrap().success());
    }
    let layers = std::fs::read_dir(env.root.join("layers/sha256"))
        .unwrap()
        .count();
    assert_eq!(layers, 1);
    assert_eq!(blob_fetches(&layer) - before, 1);
    assert!(std::fs::read_dir(env.root.join("tmp"))
        .unwrap()
        .next()
        .is_none());
}
