//! `layerfs snapshotter` under a real containerd (Debian's 1.6), driven with `ctr`.

mod common;

use common::containerd::{Containerd, Setup};
use common::{direct, Env};

/// Prints what the whiteouts image's upper layer changed, one line per check.
const WHITEOUTS_SCRIPT: &str = "cat /etc/hostname /etc/layerfs-added; ls /etc/apk/keys; \
    for p in /etc/motd /usr/share/udhcpc; do if [ -e $p ]; then echo present $p; \
    else echo absent $p; fi; done";

const WHITEOUTS_OUTPUT: &str = "layerfs-whiteouts\nadded by the upper layer\n\
    layerfs-fixture.txt\nabsent /etc/motd\nabsent /usr/share/udhcpc\n";

fn pull(containerd: &Containerd, image: &str) {
    let args = [
        "images",
        "pull",
        "--plain-http",
        "--snapshotter",
        "layerfs",
        image,
    ];
    containerd.ctr(&args);
}

#[test]
fn containerd_runs_whiteouts_image() {
    let env = Env::new();
    let mut containerd = Containerd::start(&env, Setup::default());
    let image = direct("layerfs-fixtures/whiteouts:latest");
    pull(&containerd, &image);

    let snapshots = containerd.snapshots("default");
    assert_eq!(snapshots.len(), 2, "{snapshots:?}");
    let base = snapshots
        .iter()
        .find(|(_, parent, _)| parent.is_empty())
        .unwrap();
    let top = snapshots
        .iter()
        .find(|(_, parent, _)| parent == &base.0)
        .unwrap();
    assert_eq!(base.2, "Committed");
    assert_eq!(top.2, "Committed");
    assert_eq!(
        containerd.layer_dirs().len(),
        2,
        "both layers move into the store"
    );

    let output = containerd.run("default", &image, &["sh", "-c", WHITEOUTS_SCRIPT]);
    assert_eq!(output, WHITEOUTS_OUTPUT);

    containerd.stop_snapshotter();
    containerd.start_snapshotter();
    assert_eq!(containerd.snapshots("default"), snapshots);
    let output = containerd.run("default", &image, &["sh", "-c", WHITEOUTS_SCRIPT]);
    assert_eq!(output, WHITEOUTS_OUTPUT);

    containerd.ctr(&["images", "rm", "--sync", &image]);
    assert_eq!(containerd.snapshots("default"), []);
    assert_eq!(containerd.snapshot_dirs(), Vec::<String>::new());
    assert_eq!(containerd.layer_dirs(), Vec::<String>::new());
}

#[test]
fn containerd_layers_serve_layerfs_mount() {
    let env = Env::new();
    let containerd = Containerd::start(&env, Setup::default());
    let image = direct("library/busybox:latest");
    pull(&containerd, &image);
    let output = containerd.run("default", &image, &["echo", "hello from busybox"]);
    assert_eq!(output, "hello from busybox\n");
    let layers = containerd.layer_dirs();
    assert_eq!(layers.len(), 1);

    env.ok(&["pull", &image]);
    assert_eq!(
        containerd.layer_dirs(),
        layers,
        "layerfs pull reused the layer"
    );
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", &image])).unwrap();
    let blob = inspect["layers"][0]["digest"].as_str().unwrap();
    let blob_path = env.root.join("blobs/sha256").join(&blob["sha256:".len()..]);
    assert!(
        !blob_path.exists(),
        "layerfs pull fetched layer blob {blob}"
    );

    let target = env.path("mnt");
    env.ok(&["mount", &image, target.to_str().unwrap()]);
    let busybox = target.join("bin/busybox").is_file();
    env.ok(&["umount", target.to_str().unwrap()]);
    assert!(busybox, "the mount lacks /bin/busybox");

    containerd.ctr(&["images", "rm", "--sync", &image]);
    assert_eq!(containerd.snapshots("default"), []);
    assert_eq!(containerd.snapshot_dirs(), Vec::<String>::new());
    assert_eq!(
        containerd.layer_dirs(),
        layers,
        "layerfs's image keeps its layer"
    );
}
