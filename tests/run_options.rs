//! `layerfs run`'s command line read the way `docker run` reads it: where the command starts,
//! which option values are rejected before anything is created, and which image `--platform`
//! runs.

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

/// Returns the platform of the fixture index that is not the host's, and the binfmt_misc
/// entry that would let the host execute its binaries.
fn foreign_platform() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("linux/arm64/v8", "qemu-aarch64"),
        "aarch64" => ("linux/amd64", "qemu-x86_64"),
        other => panic!("the fixture index has images for amd64 and arm64 only, not {other}"),
    }
}

fn stored_platform(env: &Env, image: &str) -> String {
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", image])).unwrap();
    inspect["platform"].as_str().unwrap().to_owned()
}

#[test]
fn platform_pulls_over_the_stored_one() {
    let env = Env::new();
    let (foreign, emulator) = foreign_platform();
    let emulated = std::path::Path::new("/proc/sys/fs/binfmt_misc")
        .join(emulator)
        .exists();
    env.ok(&["pull", "busybox"]);
    assert_ne!(stored_platform(&env, "busybox"), foreign);

    for attempt in ["pulls", "runs the stored image"] {
        let (stdout, stderr, code) = env.run_rm(&["--platform", foreign, "busybox", "true"]);
        assert_eq!(stored_platform(&env, "busybox"), foreign, "{attempt}");
        if emulated {
            assert_eq!(code, Some(0), "{attempt}: stderr: {stderr}");
            continue;
        }
        assert_eq!(code, Some(126), "{attempt}: stdout: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{attempt}: {stderr}");
        let mismatch = format!("the image's platform ({foreign}) does not match the host's");
        assert!(stderr.contains(&mismatch), "{attempt}: {stderr}");
    }
}

#[test]
fn foreign_stored_image_gets_a_warning() {
    let env = Env::new();
    let (foreign, _) = foreign_platform();
    env.ok(&["pull", "--platform", foreign, "busybox"]);
    let (_, stderr, _) = env.run_rm(&["busybox", "true"]);
    let warning =
        format!("layerfs: warning: the image's platform ({foreign}) does not match the host's");
    assert!(stderr.starts_with(&warning), "{stderr}");
}

#[test]
fn platform_mismatch_by_id_is_rejected() {
    let env = Env::new();
    let (foreign, _) = foreign_platform();
    env.ok(&["pull", "busybox"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "busybox"])).unwrap();
    let id = inspect["id"].as_str().unwrap();
    let short_id = &id["sha256:".len().."sha256:".len() + 12];
    let before = env.store_listing();
    let (stdout, stderr, code) = env.run_rm(&["--platform", foreign, short_id, "true"]);
    assert_eq!(code, Some(125), "stdout: {stdout}");
    let expected = format!(
        "layerfs: image {id} is for platform {}, not the requested {foreign}\n",
        inspect["platform"].as_str().unwrap()
    );
    assert_eq!(stderr, expected);
    assert_eq!(env.store_listing(), before);
}
