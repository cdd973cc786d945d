//! `layerfs run`'s command line read the way `docker run` reads it: where the command starts,
//! and which option values are rejected before anything is created.

mod common;

use common::Env;

#[test]
fn options_after_image_go_to_command() {
    let env = Env::new();
    let args = [
        "busybox",
        "sh",
        "-c",
        "echo \"$@\"",
        "sh",
        "--help",
        "--rm",
        "-e",
        "X=1",
    ];
    let (stdout, stderr, code) = env.run_rm(&args);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stdout, "--help --rm -e X=1\n");
}

#[test]
fn help_after_image_is_the_command() {
    let env = Env::new();
    let (stdout, stderr, code) = env.run_rm(&["busybox", "--help"]);
    // busybox has no entrypoint, so `--help` replaces its Cmd and is not found, as in Docker.
    assert_eq!(code, Some(127), "stdout: {stdout}");
    assert!(stderr.contains("--help"), "{stderr}");
    assert!(!stdout.contains("Usage:"), "{stdout}");
}

#[test]
fn help_before_image_is_layerfs_help() {
    let env = Env::new();
    let stdout = env.ok(&["run", "--help"]);
    assert!(
        stdout.contains("Usage: layerfs run [OPTIONS] IMAGE [COMMAND] [ARG...]"),
        "{stdout}"
    );
}

#[test]
fn unknown_option_before_image_is_rejected() {
    let env = Env::new();
    let before = env.store_listing();
    let output = env.run(&["run", "--rm", "--no-such-option", "busybox", "true"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "stderr: {stderr}");
    assert!(
        stderr.starts_with("error: unexpected argument '--no-such-option' found"),
        "{stderr}"
    );
    assert_eq!(env.store_listing(), before);
}

#[test]
fn relative_workdir_is_rejected() {
    let env = Env::new();
    let before = env.store_listing();
    let (stdout, stderr, code) = env.run_rm(&["-w", "work/dir", "busybox", "pwd"]);
    assert_eq!(code, Some(125), "stdout: {stdout}");
    assert_eq!(
        stderr,
        "layerfs: invalid working directory \"work/dir\": it must be an absolute path\n"
    );
    assert_eq!(env.store_listing(), before);
}

#[test]
fn empty_env_name_is_rejected() {
    let env = Env::new();
    let before = env.store_listing();
    for entry in ["=x", ""] {
        let (stdout, stderr, code) = env.run_rm(&["-e", entry, "busybox", "env"]);
        assert_eq!(code, Some(125), "-e {entry:?}: stdout: {stdout}");
        let expected = format!(
            "layerfs: invalid environment variable {entry:?}: the name before = is empty\n"
        );
        assert_eq!(stderr, expected);
    }
    assert_eq!(env.store_listing(), before);
}

#[test]
fn bare_env_name_copies_run_environment() {
    let env = Env::new();
    let output = env
        .command()
        .args(["run", "--rm", "-e", "GREETING", "busybox", "sh", "-c"])
        .arg("echo \"$GREETING\"")
        .env("GREETING", "from layerfs")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "from layerfs\n");
}

#[test]
fn bare_unset_env_name_removes_images() {
    let env = Env::new();
    let image = format!("{}/layerfs-tests/env:latest", common::registry());
    common::image::push_modified(
        &env.path("image"),
        &common::registry(),
        "library/busybox:glibc",
        "layerfs-tests/env:latest",
        &[],
        |config| {
            let vars = config["config"]["Env"].as_array_mut().unwrap();
            vars.push("GREETING=from the image".into());
            vars.push("KEPT=yes".into());
        },
    );
    let output = env
        .command()
        .args(["run", "--rm", "-e", "GREETING", &image, "env"])
        .env_remove("GREETING")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.lines().any(|line| line == "KEPT=yes"), "{stdout}");
    assert!(!stdout.contains("GREETING"), "{stdout}");
}

#[test]
fn cleared_entrypoint_without_command_fails() {
    let env = Env::new();
    let before = env.store_listing();
    let (stdout, stderr, code) = env.run_rm(&["--entrypoint", "", "busybox"]);
    // Docker's daemon rejects the container ("no command specified"), and docker run exits 125.
    assert_eq!(code, Some(125), "stdout: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no command to run"), "{stderr}");
    assert!(
        stderr.contains("give the command after the image"),
        "{stderr}"
    );
    assert!(!stderr.contains("the image sets no"), "{stderr}");
    assert_eq!(env.store_listing(), before);
}

#[test]
fn cleared_entrypoint_runs_given_command() {
    let env = Env::new();
    let (stdout, stderr, code) = env.run_rm(&["--entrypoint", "", "busybox", "echo", "hi"]);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stdout, "hi\n");
}
