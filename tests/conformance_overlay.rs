//! The layer conformance cases, unpacked with the library and shown through a real kernel
//! overlayfs mount. Each merged tree must be exactly the expected one, and each hostile
//! case must fail or stay inside its layers. The probe files outside must be untouched.

mod conformance;

use std::path::{Path, PathBuf};

use conformance::expect::fingerprint;
use conformance::{Case, Expect, Workspace};
use layerfs::mount::Overlay;
use nix::mount::{umount2, MntFlags};

/// Runs every case of `group` and asserts that none failed, listing all that did.
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
    for case in &cases {
        if let Err(message) = check_case(&workspace, case) {
            failures.push(format!("{}: {message}", case.name));
        }
        if fingerprint(&workspace.outside) != outside_before {
            failures.push(format!(
                "{}: changed the probe directory outside",
                case.name
            ));
        }
        if let Err(message) = check_case_dir(&workspace.case_dir(case)) {
            failures.push(format!("{}: {message}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {group} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn check_case(workspace: &Workspace, case: &Case) -> Result<(), String> {
    let staged = workspace.stage(case);
    let tree = match (&case.expect, staged) {
        (Expect::Error(text), Err(message)) if message.contains(text) => return Ok(()),
        (Expect::Error(text), Err(message)) => {
            return Err(format!(
                "failed with {message:?}, expected an error with {text:?}"
            ))
        }
        (Expect::Error(text), Ok(_)) => {
            return Err(format!("unpacked, expected an error with {text:?}"))
        }
        (Expect::Tree(_), Err(message)) => return Err(format!("failed: {message}")),
        (Expect::Tree(tree), Ok(dirs)) => (tree, dirs),
    };
    let (tree, dirs) = tree;
    let mnt = workspace.case_dir(case).join("mnt");
    mount(&dirs, &mnt);
    let differences = tree.differences(&mnt);
    // Lazily: between fork and exec, a child of another test thread has copies of this
    // thread's descriptors on the mount, and a plain unmount then fails with EBUSY.
    umount2(&mnt, MntFlags::MNT_DETACH).unwrap();
    match differences.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "merged view differs:\n  {}",
            differences.join("\n  ")
        )),
    }
}

/// Mounts the layers, given bottom first, read-only on `target`.
fn mount(layers: &[PathBuf], target: &Path) {
    let mut lowers: Vec<PathBuf> = layers.iter().rev().cloned().collect();
    if lowers.len() == 1 {
        // A read-only overlay needs two lower directories.
        let empty = target.with_file_name("empty");
        std::fs::create_dir_all(&empty).unwrap();
        lowers.push(empty);
    }
    std::fs::create_dir_all(target).unwrap();
    Overlay {
        lowers,
        upper: None,
    }
    .mount(target)
    .unwrap();
}

/// Checks that a case created only its layer directories, the mount point and the empty
/// lower.
fn check_case_dir(dir: &Path) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|error| error.to_string())? {
        let name = entry.unwrap().file_name();
        if !["layers", "mnt", "empty"].contains(&name.to_string_lossy().as_ref()) {
            return Err(format!("created {name:?} beside its layers"));
        }
    }
    Ok(())
}

#[test]
fn overlay_matches_whiteout_cases() {
    check_group("whiteouts");
}

#[test]
fn overlay_matches_type_change_cases() {
    check_group("types");
}

#[test]
fn overlay_matches_hardlink_cases() {
    check_group("hardlinks");
}

#[test]
fn overlay_matches_parent_cases() {
    check_group("parents");
}

#[test]
fn overlay_matches_metadata_cases() {
    check_group("metadata");
}

#[test]
fn overlay_matches_entry_kind_cases() {
    check_group("kinds");
}

#[test]
fn overlay_matches_compression_cases() {
    check_group("compression");
}

#[test]
fn overlay_matches_hostile_cases() {
    check_group("hostile");
}
