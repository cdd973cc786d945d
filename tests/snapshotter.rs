//! `layerfs snapshotter` under a real containerd (Debian's 1.6), driven with `ctr`.

mod common;

use common::containerd::{Containerd, Setup, WHITEOUTS_OUTPUT, WHITEOUTS_SCRIPT};
use common::{direct, Env};

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

    assert_eq!(containerd.layers_applied(), 2);
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

/// Returns the layer blob digests that `layerfs inspect` lists for `image`.
fn layer_blobs(env: &Env, image: &str) -> Vec<String> {
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", image])).unwrap();
    let layers = inspect["layers"].as_array().unwrap();
    layers
        .iter()
        .map(|layer| layer["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn cri_pull_reuses_layerfs_layers() {
    let env = Env::new();
    let busybox = direct("library/busybox:latest");
    let whiteouts = direct("layerfs-fixtures/whiteouts:latest");
    env.ok(&["pull", &busybox]);
    env.ok(&["pull", &whiteouts]);
    let store_before = env.store_listing();

    let containerd = Containerd::start(
        &env,
        Setup {
            cri: Some("layerfs"),
            ..Setup::default()
        },
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for image in [&busybox, &whiteouts] {
        runtime.block_on(common::grpc::cri_pull(&containerd.socket, image));
    }

    assert_eq!(containerd.layers_applied(), 0, "containerd applied layers");
    let store_after: Vec<String> = env
        .store_listing()
        .into_iter()
        .filter(|line| !line.starts_with("snapshots"))
        .collect();
    assert_eq!(
        store_after, store_before,
        "the store changed outside snapshots/"
    );
    let content = containerd.ctr_ok("k8s.io", &["content", "ls", "--quiet"]);
    for blob in layer_blobs(&env, &busybox)
        .iter()
        .chain(&layer_blobs(&env, &whiteouts))
    {
        assert!(
            !content.contains(blob.as_str()),
            "containerd fetched layer {blob}"
        );
    }
    let snapshots = containerd.snapshots("k8s.io");
    assert_eq!(snapshots.len(), 3, "{snapshots:?}");
    assert!(
        snapshots.iter().all(|(_, _, kind)| kind == "Committed"),
        "{snapshots:?}"
    );

    let output = containerd.run("k8s.io", &whiteouts, &["sh", "-c", WHITEOUTS_SCRIPT]);
    assert_eq!(output, WHITEOUTS_OUTPUT);

    let images = containerd.ctr_ok("k8s.io", &["images", "ls", "--quiet"]);
    let mut args = vec!["images", "rm", "--sync"];
    args.extend(images.lines());
    containerd.ctr_ok("k8s.io", &args);
    assert_eq!(containerd.snapshots("k8s.io"), []);
    assert_eq!(containerd.snapshot_dirs(), Vec::<String>::new());
    let store_after: Vec<String> = env
        .store_listing()
        .into_iter()
        .filter(|line| !line.starts_with("snapshots"))
        .collect();
    assert_eq!(store_after, store_before, "layerfs's layers were removed");
}

/// Layers on top of busybox: enough that the absolute `lowerdir` paths pass a page.
const LONG_CHAIN_EXTRA_LAYERS: usize = 150;

#[test]
fn long_chain_mounts_through_containerd() {
    let env = Env::new();
    let target = format!("layerfs-test/long-chain:{}", std::process::id());
    let registry = common::registry();
    common::image::push_with_layers(
        env.dir.path(),
        &registry,
        "library/busybox:glibc",
        &target,
        LONG_CHAIN_EXTRA_LAYERS,
    );
    let image = direct(&target);
    let containerd = Containerd::start(&env, Setup::default());
    pull(&containerd, &image);

    let script = "ls /layers | wc -l; cat /layers/001 /layers/150";
    let output = containerd.run("default", &image, &["sh", "-c", script]);
    assert_eq!(
        output.split_whitespace().collect::<Vec<_>>(),
        ["150", "001", "150"]
    );

    let snapshots = containerd.snapshots("default");
    let parents: Vec<&str> = snapshots
        .iter()
        .map(|(_, parent, _)| parent.as_str())
        .collect();
    let (top, _, _) = snapshots
        .iter()
        .find(|(key, _, _)| !parents.contains(&key.as_str()))
        .unwrap();
    containerd.ctr(&[
        "snapshots",
        "--snapshotter",
        "layerfs",
        "prepare",
        "probe",
        top,
    ]);
    let mounts = containerd.ctr(&[
        "snapshots",
        "--snapshotter",
        "layerfs",
        "mounts",
        "/mnt",
        "probe",
    ]);
    containerd.ctr(&["snapshots", "--snapshotter", "layerfs", "rm", "probe"]);
    let lowerdir = mounts
        .split(',')
        .find(|o| o.starts_with("lowerdir="))
        .unwrap();
    assert_eq!(lowerdir.matches(':').count(), LONG_CHAIN_EXTRA_LAYERS);
    assert!(
        lowerdir.len() > 4096,
        "lowerdir is only {} bytes",
        lowerdir.len()
    );
}
