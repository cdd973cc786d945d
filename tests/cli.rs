//! Command-line behaviour that is not about one subsystem: output to closed pipes, commands
//! that only read the store, and finding images by digest or ID.

mod common;

use std::fs;
use std::io::Read;
use std::process::Stdio;

use common::Env;
use serde_json::Value;

#[test]
fn closed_stdout_is_not_an_error() {
    let env = Env::new();
    env.ok(&["pull", "hello-world"]);
    let mut child = env
        .command()
        .args(["inspect", "hello-world"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read nothing and close the pipe, as `| head -0` would.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn images_on_a_missing_store_is_empty() {
    let env = Env::new();
    let missing = env.path("missing");
    let root = missing.to_str().unwrap();
    let table = env.ok(&["--root", root, "images"]);
    assert_eq!(
        table.trim_end(),
        "REPOSITORY  TAG  IMAGE ID  PLATFORM  CREATED  SIZE"
    );
    assert_eq!(env.ok(&["--root", root, "images", "--json"]).trim(), "[]");
    assert!(!missing.exists(), "images created the store");
}

#[test]
fn read_commands_ignore_a_broken_config() {
    let env = Env::new();
    env.ok(&["pull", "hello-world"]);
    env.write_config("this is not toml");
    env.ok(&["images"]);
    env.ok(&["inspect", "hello-world"]);
    let stderr = env.fails(&["pull", "hello-world"]);
    assert!(stderr.contains("invalid config file"), "{stderr}");
}

#[test]
fn inspect_accepts_digests_and_ids() {
    let env = Env::new();
    env.ok(&["pull", "busybox"]);
    let image: Value = serde_json::from_str(&env.ok(&["inspect", "busybox"])).unwrap();
    let digest = image["digest"].as_str().unwrap();
    let manifest = image["manifest"].as_str().unwrap();
    let id = image["id"].as_str().unwrap();
    let short_id = &id["sha256:".len().."sha256:".len() + 12];

    let by_index = format!("busybox@{digest}");
    let by_manifest = format!("busybox@{manifest}");
    let references = [
        by_index.as_str(),
        by_manifest.as_str(),
        digest,
        manifest,
        short_id,
        id,
    ];
    for reference in references {
        let found: Value = serde_json::from_str(&env.ok(&["inspect", reference])).unwrap();
        assert_eq!(
            found["reference"], "docker.io/library/busybox:latest",
            "{reference}"
        );
    }
}

#[test]
fn run_with_broken_config_exits_125() {
    let env = Env::new();
    fs::write(&env.config, "[run]\ncgroup_version = \"3\"\n").unwrap();
    let output = env.run(&["run", "--rm", "busybox", "true"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("invalid config file"), "{stderr}");
}
