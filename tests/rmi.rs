//! `layerfs rmi` and `layerfs prune`: removing images, and the layers and blobs that nothing
//! uses any more, without touching what other images, mounts, containers or running pulls use.

mod common;

use std::fs;

use common::fake_registry::{FakeRegistry, Fault, Gate, Image, Layer, Reply};
use common::Env;
use serde_json::Value;

fn inspect(env: &Env, reference: &str) -> Value {
    serde_json::from_str(&env.ok(&["inspect", reference])).unwrap()
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn layer_dirs(env: &Env) -> Vec<String> {
    names(&env.root.join("layers/sha256"))
}

fn blobs(env: &Env) -> Vec<String> {
    names(&env.root.join("blobs/sha256"))
}

fn hex(digest: &Value) -> String {
    digest
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned()
}

#[test]
fn rmi_removes_only_what_the_image_alone_used() {
    let env = Env::new();
    env.ok(&["pull", "alpine:3.20"]);
    env.ok(&["pull", "hello-world"]);
    let hello_blobs = blobs(&env);
    let alpine = inspect(&env, "alpine:3.20");

    let output = env.ok(&["rmi", "alpine:3.20"]);
    assert!(
        output.contains("Untagged: docker.io/library/alpine:3.20"),
        "{output}"
    );

    let hello = inspect(&env, "hello-world");
    assert_eq!(layer_dirs(&env), [hex(&hello["layers"][0]["chain_id"])]);
    let remaining = blobs(&env);
    for key in ["manifest", "id", "index"] {
        assert!(
            !remaining.contains(&hex(&alpine[key])),
            "{key} blob of alpine remains"
        );
        assert!(
            remaining.contains(&hex(&hello[key])),
            "{key} blob of hello-world is gone"
        );
    }
    assert!(!remaining.contains(&hex(&alpine["layers"][0]["digest"])));
    assert!(hello_blobs.len() > remaining.len());
    let target = env.path("hello");
    env.ok(&["mount", "hello-world", target.to_str().unwrap()]);
    env.ok(&["umount", target.to_str().unwrap()]);
}

#[test]
fn rmi_keeps_layers_another_reference_uses() {
    let env = Env::new();
    env.ok(&["pull", "busybox:glibc"]);
    env.ok(&["pull", "busybox:1.38.0-glibc"]);
    let layers = layer_dirs(&env);

    env.ok(&["rmi", "busybox:glibc"]);
    assert_eq!(layer_dirs(&env), layers);
    env.ok(&["rmi", "busybox:1.38.0-glibc"]);
    assert!(layer_dirs(&env).is_empty());
    assert!(blobs(&env).is_empty());
}

#[test]
fn rmi_by_shared_id_needs_force() {
    let env = Env::new();
    env.ok(&["pull", "busybox:glibc"]);
    env.ok(&["pull", "busybox:1.38.0-glibc"]);
    let id = inspect(&env, "busybox:glibc")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let short = &id["sha256:".len().."sha256:".len() + 12];

    let stderr = env.fails(&["rmi", short]);
    assert!(stderr.contains("several references"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        env.ok(&["images", "--json"])
            .matches("\"reference\"")
            .count(),
        2
    );

    env.ok(&["rmi", "--force", short]);
    assert_eq!(env.ok(&["images", "--json"]).trim(), "[]");
}

#[test]
fn rmi_refuses_a_mounted_image() {
    let env = Env::new();
    env.ok(&["pull", "hello-world"]);
    let target = env.path("m");
    env.ok(&["mount", "hello-world", target.to_str().unwrap()]);
    let before = env.store_listing();

    let stderr = env.fails(&["rmi", "hello-world"]);
    assert!(stderr.contains("is mounted on"), "{stderr}");
    assert_eq!(env.store_listing(), before);
    env.ok(&["umount", target.to_str().unwrap()]);
    env.ok(&["rmi", "hello-world"]);
}

#[test]
fn rmi_refuses_an_image_a_container_uses() {
    let env = Env::new();
    env.ok(&["run", "busybox", "true"]);
    let stderr = env.fails(&["rmi", "busybox"]);
    assert!(stderr.contains("is used by container"), "{stderr}");
    assert!(!layer_dirs(&env).is_empty());
}

#[test]
fn rmi_unknown_image_changes_nothing() {
    let env = Env::new();
    env.ok(&["pull", "hello-world"]);
    let before = env.store_listing();
    let stderr = env.fails(&["rmi", "hello-world", "no-such-image"]);
    assert!(stderr.contains("no-such-image"), "{stderr}");
    assert_eq!(env.store_listing(), before);
}

#[test]
fn prune_removes_layers_of_a_replaced_platform() {
    let env = Env::new();
    env.ok(&["pull", "--platform", "linux/arm64", "alpine:3.20"]);
    env.ok(&["pull", "alpine:3.20"]);
    assert_eq!(layer_dirs(&env).len(), 2);

    let output = env.ok(&["prune"]);
    assert!(output.contains("Removed 1 layers"), "{output}");
    let amd64 = inspect(&env, "alpine:3.20");
    assert_eq!(layer_dirs(&env), [hex(&amd64["layers"][0]["chain_id"])]);
}

#[test]
fn prune_keeps_what_a_running_pull_pinned() {
    let base = Layer::tar(&[("base", b"lower layer\n".as_slice())]);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let top = Layer::tar(&[("data", data.as_slice())]);
    let small = Image::new(vec![base.clone()]);
    let large = Image::new(vec![base.clone(), top.clone()]);
    let registry = FakeRegistry::start();
    registry.serve_image("library/layers", "small", &small);
    registry.serve_image("library/layers", "large", &large);
    let gate = Gate::new();
    let paused = Reply::blob(&top.blob).with_fault(Fault::PauseAfter(1000, gate.clone()));
    registry.set(
        &FakeRegistry::blob_path("library/layers", &top.digest()),
        paused,
    );

    // The base layer is in the store but no image lists it any more.
    let env = Env::new();
    let small_ref = format!("{}/library/layers:small", registry.host());
    env.ok(&["pull", &small_ref]);
    let base_chain = hex(&inspect(&env, &small_ref)["layers"][0]["chain_id"]);
    fs::remove_file(
        fs::read_dir(env.root.join("images"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();

    let large_ref = format!("{}/library/layers:large", registry.host());
    let pull = env.command().args(["pull", &large_ref]).spawn().unwrap();
    gate.wait_reached();
    env.ok(&["prune"]);
    assert!(
        layer_dirs(&env).contains(&base_chain),
        "prune removed a pinned layer"
    );
    gate.open();
    let status = pull.wait_with_output().unwrap().status;
    assert!(status.success());

    let target = env.path("large");
    env.ok(&["mount", &large_ref, target.to_str().unwrap()]);
    let content = fs::read_to_string(target.join("base")).unwrap();
    env.ok(&["umount", target.to_str().unwrap()]);
    assert_eq!(content, "lower layer\n");
}
