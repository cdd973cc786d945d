//! Bad input to `layerfs pull`: each fails with a one-line error naming what failed, exits
//! non-zero, and leaves the store as it was.

mod common;

use std::net::TcpListener;

use common::{direct, Env};

/// Runs a pull that must fail, checks the store is unchanged and the error is one line, and
/// returns the message.
fn failed_pull(env: &Env, args: &[&str]) -> String {
    let before = env.store_listing();
    let mut full = vec!["pull"];
    full.extend_from_slice(args);
    let stderr = env.fails(&full);
    assert_eq!(env.store_listing(), before, "store changed by {args:?}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("layerfs: "), "{stderr}");
    stderr
}

#[test]
fn unknown_image_is_not_found() {
    let env = Env::new();
    env.ok(&["pull", "hello-world"]);
    let message = failed_pull(&env, &["no-such-image"]);
    assert!(message.contains("library/no-such-image"), "{message}");
    assert!(message.contains("not found"), "{message}");
}

#[test]
fn unknown_tag_is_not_found() {
    let env = Env::new();
    let message = failed_pull(&env, &["alpine:0.1"]);
    assert!(message.contains("alpine:0.1"), "{message}");
    assert!(message.contains("not found"), "{message}");
}

#[test]
fn registry_down_is_unreachable() {
    let env = Env::new();
    // A port that was free a moment ago and has no listener now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reference = format!("127.0.0.1:{port}/library/busybox");
    let message = failed_pull(&env, &[&reference]);
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("unreachable"), "{message}");
}

#[test]
fn schema1_manifest_is_unsupported() {
    let env = Env::new();
    let message = failed_pull(&env, &["oldschema"]);
    assert!(message.contains("schema 1"), "{message}");
}

#[test]
fn missing_platform_lists_available_ones() {
    let env = Env::new();
    let message = failed_pull(&env, &["--platform", "linux/s390x", "busybox"]);
    assert!(message.contains("linux/s390x"), "{message}");
    assert!(message.contains("linux/amd64, linux/arm64/v8"), "{message}");
}

#[test]
fn platform_of_single_manifest_is_checked() {
    let env = Env::new();
    let message = failed_pull(&env, &["--platform", "linux/arm64", "busybox:musl"]);
    assert!(message.contains("linux/amd64"), "{message}");
}

#[test]
fn wrong_digest_in_reference_is_a_mismatch() {
    let env = Env::new();
    let wrong = format!("busybox@sha256:{}", "0".repeat(64));
    let message = failed_pull(&env, &[&wrong]);
    assert!(
        message.contains("not found") || message.contains("digest"),
        "{message}"
    );
}

#[test]
fn invalid_reference_is_rejected_before_any_work() {
    let env = Env::new();
    let output = env.run(&["pull", "Busy:Box:1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid image reference"), "{stderr}");
}

#[test]
fn direct_unknown_repository_names_the_registry() {
    let env = Env::new();
    let reference = direct("nobody/nothing:1");
    let message = failed_pull(&env, &[&reference]);
    assert!(message.contains(&common::registry()), "{message}");
}

/// A loopback port with no listener: bound, then released.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn down_mirror_falls_back_to_the_next_endpoint() {
    let env = Env::new();
    let registry = common::registry();
    let down = closed_port();
    env.write_config(&format!(
        "[registry.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:{down}\"]\nserver = \"http://{registry}\"\n"
    ));
    let output = env.ok(&["pull", "hello-world"]);
    assert!(
        output.starts_with("Pulled docker.io/library/hello-world:latest"),
        "{output}"
    );
}

#[test]
fn every_endpoint_failing_reports_each() {
    let env = Env::new();
    let registry = common::registry();
    let down = closed_port();
    env.write_config(&format!(
        "[registry.\"docker.io\"]\nmirrors = [\"http://{registry}\"]\nserver = \"http://127.0.0.1:{down}\"\n"
    ));
    let message = failed_pull(&env, &["no-such-image"]);
    assert!(
        message.contains(&format!("not found at http://{registry}")),
        "{message}"
    );
    assert!(
        message.contains(&format!("127.0.0.1:{down} is unreachable")),
        "{message}"
    );
}

#[test]
fn invalid_config_names_file_and_line() {
    let env = Env::new();
    env.write_config("[registry.\"docker.io\"]\nmirrors = [\"ftp://x\"]\n");
    let stderr = env.fails(&["pull", "busybox"]);
    assert!(stderr.contains(env.config.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
