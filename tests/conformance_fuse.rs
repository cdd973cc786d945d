//! The layer conformance cases shown through layerfs's FUSE file system. For every case
//! that unpacks, the merged view must be exactly the expected tree, the one kernel
//! overlayfs shows in `tests/conformance_overlay.rs`.

mod common;
mod conformance;

use std::path::PathBuf;

use common::overlay::FuseMount;
use conformance::{Case, Expect, Workspace};

fn check_case(workspace: &Workspace, case: &Case) -> Result<(), String> {
    let Expect::Tree(tree) = &case.expect else {
        return Ok(());
    };
    let dirs = workspace
        .stage(case)
        .map_err(|message| format!("failed: {message}"))?;
    let lowers: Vec<PathBuf> = dirs.iter().rev().cloned().collect();
    let mnt = workspace.case_dir(case).join("fuse");
    let mount = FuseMount::new(&lowers, None, &mnt);
    let differences = tree.differences(&mount.target);
    drop(mount);
    match differences.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "merged view differs:\n  {}",
            differences.join("\n  ")
        )),
    }
}

/// Runs every case of `group` that expects a tree and asserts that none failed.
fn check_group(group: &str) {
    let workspace = Workspace::new();
    let cases = conformance::all(&workspace.outside)
        .into_iter()
        .find(|(name, _)| *name == group)
        .expect("the group exists")
        .1;
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            check_case(&workspace, case)
                .err()
                .map(|e| format!("{}: {e}", case.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} {group} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn fuse_matches_whiteout_cases() {
    check_group("whiteouts");
}

#[test]
fn fuse_matches_type_change_cases() {
    check_group("types");
}

#[test]
fn fuse_matches_hardlink_cases() {
    check_group("hardlinks");
}

#[test]
fn fuse_matches_parent_cases() {
    check_group("parents");
}

#[test]
fn fuse_matches_metadata_cases() {
    check_group("metadata");
}

#[test]
fn fuse_matches_entry_kind_cases() {
    check_group("kinds");
}

#[test]
fn fuse_matches_compression_cases() {
    check_group("compression");
}

#[test]
fn fuse_matches_hostile_cases() {
    check_group("hostile");
}
