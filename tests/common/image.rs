//! Building test images: an OCI layout copied from the fixture registry with `skopeo`,
//! extended with generated layers, and pushed back.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

fn skopeo_copy(source: &str, destination: &str) {
    let output = Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .args([source, destination])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo copy {source} {destination}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout.join("blobs/sha256").join(&digest["sha256:".len()..])
}

fn read_json(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&fs::read(blob_path(layout, digest)).unwrap()).unwrap()
}

/// Writes `bytes` as a blob and returns its descriptor.
fn write_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256(bytes);
    fs::write(blob_path(layout, &digest), bytes).unwrap();
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// Builds an uncompressed layer that contains the file `layers/<name>` with `<name>\n` in it.
fn file_layer(name: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    builder
        .append_data(&mut dir, "layers/", std::io::empty())
        .unwrap();
    let content = format!("{name}\n");
    let mut file = tar::Header::new_gnu();
    file.set_mode(0o644);
    file.set_size(content.len() as u64);
    let path = format!("layers/{name}");
    builder
        .append_data(&mut file, path, content.as_bytes())
        .unwrap();
    builder.into_inner().unwrap()
}

/// Pushes `base` with `extra` more layers on top as `target`, both references in the
/// registry at `registry`. Layer `i` (from 1) adds the file `/layers/<i, three digits>`.
pub fn push_with_layers(work: &Path, registry: &str, base: &str, target: &str, extra: usize) {
    let layers: Vec<Vec<u8>> = (1..=extra)
        .map(|i| file_layer(&format!("{i:03}")))
        .collect();
    push_modified(work, registry, base, target, &layers, |_| {});
}

/// Builds an uncompressed layer of symlinks, `(path, target)`, with their parent
/// directories.
pub fn symlink_layer(links: &[(&str, &str)]) -> Vec<u8> {
    let header = |kind, mode| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(0);
        header
    };
    let mut builder = tar::Builder::new(Vec::new());
    for (path, target) in links {
        if let Some((parent, _)) = path.rsplit_once('/') {
            let mut dir = header(tar::EntryType::Directory, 0o755);
            builder
                .append_data(&mut dir, format!("{parent}/"), std::io::empty())
                .unwrap();
        }
        let mut link = header(tar::EntryType::Symlink, 0o777);
        builder.append_link(&mut link, path, target).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Pushes `base` as `target`, both references in the registry at `registry`, with the
/// uncompressed `layers` on top and its config changed by `edit_config` (the whole config
/// JSON, with `config.Env`, `config.Cmd` and the rest).
pub fn push_modified(
    work: &Path,
    registry: &str,
    base: &str,
    target: &str,
    layers: &[Vec<u8>],
    edit_config: impl FnOnce(&mut Value),
) {
    fs::create_dir_all(work).unwrap();
    let layout = work.join("layout");
    let oci = format!("oci:{}", layout.display());
    skopeo_copy(&format!("docker://{registry}/{base}"), &oci);

    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let mut manifest = read_json(&layout, &manifest_digest);
    let mut config = read_json(&layout, manifest["config"]["digest"].as_str().unwrap());
    for tar in layers {
        let layer = write_blob(&layout, "application/vnd.oci.image.layer.v1.tar", tar);
        let diff_id = layer["digest"].clone();
        manifest["layers"].as_array_mut().unwrap().push(layer);
        config["rootfs"]["diff_ids"]
            .as_array_mut()
            .unwrap()
            .push(diff_id);
    }
    config.as_object_mut().unwrap().remove("history");
    edit_config(&mut config);

    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_type = "application/vnd.oci.image.config.v1+json";
    manifest["config"] = write_blob(&layout, config_type, &config_bytes);
    let manifest_type = "application/vnd.oci.image.manifest.v1+json";
    manifest["mediaType"] = json!(manifest_type);
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    index["manifests"] = json!([write_blob(&layout, manifest_type, &manifest_bytes)]);
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    skopeo_copy(&oci, &format!("docker://{registry}/{target}"));
}
