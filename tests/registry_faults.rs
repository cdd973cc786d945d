//! `layerfs pull` against registries that require tokens or misbehave: wrong bytes, wrong
//! lengths, dropped and stalled connections, error statuses, redirects, pulls killed midway,
//! and a full disk. Each fault must give a one-line error naming what failed and leave no
//! partial blob, layer or image record.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::fake_registry::{sha256, FakeRegistry, Fault, Gate, Image, Layer, Reply};
use common::Env;

const REPOSITORY: &str = "library/fake";
/// How long a test waits for a background pull to reach a state before it fails, rather than
/// hanging when the pull broke off early. Nothing is measured against it.
const WAIT_DEADLINE: Duration = Duration::from_secs(120);

/// A store, a fake registry serving a one-layer image as `library/fake:latest`, and the
/// reference that pulls it.
struct Setup {
    env: Env,
    registry: FakeRegistry,
    image: Image,
    reference: String,
}

impl Setup {
    fn new() -> Setup {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let layer = Layer::tar(&[
            ("etc/hello", b"hello\n".as_slice()),
            ("data", data.as_slice()),
        ]);
        let image = Image::new(vec![layer]);
        let registry = FakeRegistry::start();
        registry.serve_image(REPOSITORY, "latest", &image);
        let reference = format!("{}/{REPOSITORY}:latest", registry.host());
        let env = Env::new();
        Setup {
            env,
            registry,
            image,
            reference,
        }
    }

    fn layer(&self) -> &[u8] {
        &self.image.layers[0].blob
    }

    fn layer_digest(&self) -> String {
        self.image.layers[0].digest()
    }

    fn layer_path(&self) -> String {
        FakeRegistry::blob_path(REPOSITORY, &self.layer_digest())
    }

    fn manifest_path(&self) -> String {
        FakeRegistry::manifest_path(REPOSITORY, "latest")
    }

    /// Serves the layer with `fault`.
    fn layer_fault(&self, fault: Fault) {
        let reply = Reply::blob(self.layer()).with_fault(fault);
        self.registry.set(&self.layer_path(), reply);
    }

    fn failed_pull(&self) -> String {
        failed_pull(&self.env, &self.reference)
    }

    /// The unpacked layer's `etc/hello`. The layer is the image's only one, so its chain ID
    /// is its diff ID.
    fn unpacked_hello(&self) -> Vec<u8> {
        let diff_id = &self.image.layers[0].diff_id;
        let hex = diff_id.strip_prefix("sha256:").unwrap();
        let path = self.env.root.join("layers/sha256").join(hex);
        fs::read(path.join("diff/etc/hello")).unwrap()
    }
}

/// Runs a pull that must fail, checks that the store is unchanged and the error is one line,
/// and returns the message.
fn failed_pull(env: &Env, reference: &str) -> String {
    let before = env.store_listing();
    let stderr = env.fails(&["pull", reference]);
    assert_eq!(env.store_listing(), before, "store changed");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.starts_with("layerfs: "), "{stderr}");
    stderr
}

// Bearer-token auth against a real docker-registry.

/// Sends `GET path` without credentials and returns the response head.
fn anonymous_get(host: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(host).unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split("\r\n\r\n").next().unwrap().to_owned()
}

#[test]
fn token_registry_rejects_anonymous_requests() {
    let host = common::token_registry();
    let head = anonymous_get(&host, "/v2/library/busybox/manifests/latest");
    let status = head.lines().next().unwrap();
    assert!(status.contains(" 401 "), "{head}");
    let challenge = head
        .lines()
        .find_map(|line| line.strip_prefix("Www-Authenticate: "))
        .unwrap_or_else(|| panic!("no challenge in {head}"));
    assert!(
        challenge.starts_with("Bearer realm=\"http://"),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"repository:library/busybox:pull\""),
        "{challenge}"
    );
}

#[test]
fn pull_through_token_registry() {
    let env = Env::new();
    let reference = format!("{}/library/busybox", common::token_registry());
    let output = env.ok(&["pull", &reference]);
    assert!(
        output.starts_with(&format!("Pulled {reference}:latest")),
        "{output}"
    );
    let image: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", &reference])).unwrap();
    assert_eq!(
        image["manifest"],
        "sha256:1cfa4e2b09e127b9c4ed43578d3f3c18e7d44ea47b9ea98475c0cbe9086525f8"
    );
}

#[test]
fn pull_through_token_mirror() {
    let env = Env::new();
    let mirror = common::token_registry();
    env.write_config(&format!(
        "[registry.\"docker.io\"]\nmirrors = [\"http://{mirror}\"]\nserver = \"http://{mirror}\"\n"
    ));
    let output = env.ok(&["pull", "hello-world"]);
    assert!(
        output.starts_with("Pulled docker.io/library/hello-world:latest"),
        "{output}"
    );
}

#[test]
fn token_without_access_is_denied() {
    let env = Env::new();
    let host = common::token_registry();
    let reference = format!("{host}/private/busybox");
    let message = failed_pull(&env, &reference);
    assert!(
        message.contains(&format!(
            "http://{host} denied access to manifest private/busybox:latest"
        )),
        "{message}"
    );
}

// Faults only a fake registry produces.

#[test]
fn fake_image_pulls_cleanly() {
    let setup = Setup::new();
    let output = setup.env.ok(&["pull", &setup.reference]);
    assert!(output.starts_with("Pulled"), "{output}");
    assert_eq!(setup.unpacked_hello(), b"hello\n");
}

#[test]
fn blob_with_wrong_bytes_is_digest_mismatch() {
    let setup = Setup::new();
    let mut wrong = setup.layer().to_vec();
    let middle = wrong.len() / 2;
    wrong[middle] ^= 0xff;
    setup.registry.set(&setup.layer_path(), Reply::blob(&wrong));
    let message = setup.failed_pull();
    let expected = format!(
        "layer {} has digest {}, expected {}",
        setup.layer_digest(),
        sha256(&wrong),
        setup.layer_digest()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn config_with_wrong_bytes_is_digest_mismatch() {
    let setup = Setup::new();
    let config = setup.image.config_digest();
    let path = FakeRegistry::blob_path(REPOSITORY, &config);
    let mut wrong = setup.image.config.clone();
    wrong[0] = b' ';
    setup.registry.set(&path, Reply::blob(&wrong));
    let message = setup.failed_pull();
    assert!(message.contains(&format!("blob {config}")), "{message}");
    assert!(
        message.contains(&format!("has digest {}, expected {config}", sha256(&wrong))),
        "{message}"
    );
}

#[test]
fn endless_blob_stops_past_descriptor_size() {
    let setup = Setup::new();
    setup.layer_fault(Fault::Endless);
    let message = setup.failed_pull();
    let expected = format!(
        "layer {} is longer than the {} bytes its descriptor gives",
        setup.layer_digest(),
        setup.layer().len()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn endless_config_stops_past_descriptor_size() {
    let setup = Setup::new();
    let config = setup.image.config_digest();
    let path = FakeRegistry::blob_path(REPOSITORY, &config);
    let reply = Reply::blob(&setup.image.config).with_fault(Fault::Endless);
    setup.registry.set(&path, reply);
    let message = setup.failed_pull();
    let expected = format!(
        "blob {config} is longer than the {} bytes its descriptor gives",
        setup.image.config.len()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn short_blob_is_size_mismatch() {
    let setup = Setup::new();
    let short = &setup.layer()[..setup.layer().len() - 1024];
    setup.registry.set(&setup.layer_path(), Reply::blob(short));
    let message = setup.failed_pull();
    let expected = format!(
        "layer {} is {} bytes, expected {}",
        setup.layer_digest(),
        short.len(),
        setup.layer().len()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn connection_dropped_mid_blob_is_reported() {
    let setup = Setup::new();
    setup.layer_fault(Fault::CloseAfter(setup.layer().len() / 2));
    let message = setup.failed_pull();
    let expected = format!(
        "registry {} broke off the transfer of blob {}",
        setup.registry.url(),
        setup.layer_digest()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn manifest_not_matching_reference_digest() {
    let setup = Setup::new();
    let digest = setup.image.manifest_digest();
    let other = Image::new(vec![Layer::tar(&[("other", b"other\n".as_slice())])]);
    // The registry even claims the requested digest for the wrong bytes.
    let reply = Reply::ok(common::fake_registry::OCI_MANIFEST, &other.manifest)
        .with_header("Docker-Content-Digest", &digest);
    let path = FakeRegistry::manifest_path(REPOSITORY, &digest);
    setup.registry.set(&path, reply);
    let reference = format!("{}/{REPOSITORY}@{digest}", setup.registry.host());
    let message = failed_pull(&setup.env, &reference);
    let expected = format!(
        "manifest {REPOSITORY}@{digest} has digest {}, expected {digest}",
        other.manifest_digest()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn manifest_not_matching_digest_header() {
    let setup = Setup::new();
    let wrong = sha256(b"not the manifest");
    let reply = Reply::ok(common::fake_registry::OCI_MANIFEST, &setup.image.manifest)
        .with_header("Docker-Content-Digest", &wrong);
    setup.registry.set(&setup.manifest_path(), reply);
    let message = setup.failed_pull();
    let expected = format!(
        "manifest {REPOSITORY}:latest (digest reported by the registry) has digest {}, expected {wrong}",
        setup.image.manifest_digest()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn manifest_server_error_is_reported() {
    let setup = Setup::new();
    setup
        .registry
        .set(&setup.manifest_path(), Reply::status(500));
    let message = setup.failed_pull();
    let expected = format!(
        "registry {} failed to serve manifest {REPOSITORY}:latest: HTTP 500",
        setup.registry.url()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn blob_server_error_is_reported() {
    let setup = Setup::new();
    setup.registry.set(&setup.layer_path(), Reply::status(500));
    let message = setup.failed_pull();
    let expected = format!(
        "registry {} failed to serve blob {}: HTTP 500",
        setup.registry.url(),
        setup.layer_digest()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn stalled_blob_times_out() {
    let setup = Setup::new();
    setup.layer_fault(Fault::PauseAfter(1000, Gate::new()));
    setup
        .env
        .write_config("[network]\nread_timeout_seconds = 2\n");
    let message = setup.failed_pull();
    let expected = format!(
        "registry {} timed out serving blob {}: no data for 2 s",
        setup.registry.url(),
        setup.layer_digest()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn stalled_manifest_times_out() {
    let setup = Setup::new();
    let reply = Reply::ok(common::fake_registry::OCI_MANIFEST, &setup.image.manifest)
        .with_fault(Fault::PauseAfter(10, Gate::new()));
    setup.registry.set(&setup.manifest_path(), reply);
    setup
        .env
        .write_config("[network]\nread_timeout_seconds = 2\n");
    let message = setup.failed_pull();
    let expected = format!(
        "registry {} timed out serving manifest {REPOSITORY}:latest",
        setup.registry.url()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn failed_layer_cancels_stalled_layer() {
    let lower = Layer::tar(&[("lower", b"lower\n".as_slice())]);
    let upper = Layer::tar(&[("upper", b"upper\n".as_slice())]);
    let image = Image::new(vec![lower.clone(), upper.clone()]);
    let registry = FakeRegistry::start();
    registry.serve_image(REPOSITORY, "latest", &image);
    // The lower layer stalls until the test ends, and the upper one has wrong bytes.
    let stalled = Reply::blob(&lower.blob).with_fault(Fault::PauseAfter(100, Gate::new()));
    registry.set(
        &FakeRegistry::blob_path(REPOSITORY, &lower.digest()),
        stalled,
    );
    let mut wrong = upper.blob.clone();
    wrong[600] ^= 0xff;
    registry.set(
        &FakeRegistry::blob_path(REPOSITORY, &upper.digest()),
        Reply::blob(&wrong),
    );

    let env = Env::new();
    let reference = format!("{}/{REPOSITORY}:latest", registry.host());
    let message = failed_pull(&env, &reference);
    let expected = format!(
        "layer {} has digest {}, expected {}",
        upper.digest(),
        sha256(&wrong),
        upper.digest()
    );
    assert!(message.contains(&expected), "{message}");
}

/// Sets up a registry that requires a token and redirects the layer to a storage host on
/// another loopback address, as registries backed by object storage do.
fn redirect_to_storage(setup: &Setup, storage: &FakeRegistry) -> String {
    setup.registry.require_token("registry-token");
    let object = "/bucket/layer";
    let location = format!("{}{object}?X-Signature=fake", storage.url());
    setup
        .registry
        .set(&setup.layer_path(), Reply::redirect(&location));
    object.to_owned()
}

#[test]
fn blob_redirect_is_followed_without_token() {
    let setup = Setup::new();
    let storage = FakeRegistry::start_on(Ipv4Addr::new(127, 0, 0, 2));
    let object = redirect_to_storage(&setup, &storage);
    storage.set(&object, Reply::blob(setup.layer()));

    setup.env.ok(&["pull", &setup.reference]);
    assert_eq!(setup.unpacked_hello(), b"hello\n");
    let registry_requests = setup.registry.requests_for(&setup.layer_path());
    assert_eq!(registry_requests.len(), 1, "{registry_requests:?}");
    assert_eq!(
        registry_requests[0].authorization.as_deref(),
        Some("Bearer registry-token")
    );
    let storage_requests = storage.requests_for(&object);
    assert_eq!(storage_requests.len(), 1, "{storage_requests:?}");
    // Object stores reject a request that carries a second credential, and the token must
    // not leak to another host.
    assert_eq!(storage_requests[0].authorization, None);
}

#[test]
fn blob_redirect_to_failing_storage() {
    let setup = Setup::new();
    let storage = FakeRegistry::start_on(Ipv4Addr::new(127, 0, 0, 2));
    let object = redirect_to_storage(&setup, &storage);
    storage.set(&object, Reply::status(403));
    let message = setup.failed_pull();
    let expected = format!(
        "denied access to blob {} (from {}): HTTP 403",
        setup.layer_digest(),
        storage.url()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn blob_redirect_to_unreachable_storage() {
    let setup = Setup::new();
    let storage = FakeRegistry::start_on(Ipv4Addr::new(127, 0, 0, 2));
    redirect_to_storage(&setup, &storage);
    let location = storage.url();
    drop(storage);
    let message = setup.failed_pull();
    let expected = format!(
        "registry {} failed to serve blob {}: {location} is unreachable",
        setup.registry.url(),
        setup.layer_digest()
    );
    assert!(message.contains(&expected), "{message}");
}

#[test]
fn expired_token_is_renewed() {
    let setup = Setup::new();
    setup.registry.require_token("first-token");
    let gate = Gate::new();
    let config = FakeRegistry::blob_path(REPOSITORY, &setup.image.config_digest());
    let reply = Reply::blob(&setup.image.config).with_fault(Fault::PauseAfter(10, gate.clone()));
    setup.registry.set(&config, reply);

    let pull = spawn_pull(&setup.env, &setup.reference);
    gate.wait_reached();
    // From now on the registry rejects the first token, as if it had expired.
    setup.registry.require_token("second-token");
    gate.open();

    assert_succeeded(&pull.wait_with_output().unwrap());
    let layer_requests = setup.registry.requests_for(&setup.layer_path());
    let tokens: Vec<Option<&str>> = layer_requests
        .iter()
        .map(|request| request.authorization.as_deref())
        .collect();
    assert_eq!(
        tokens,
        [Some("Bearer first-token"), Some("Bearer second-token")]
    );
}

// Pulls killed midway.

fn spawn_pull(env: &Env, reference: &str) -> Child {
    env.command()
        .args(["pull", reference])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn assert_succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "pull failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Polls `condition` until it holds.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT_DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Lists the store without `tmp/` and `locks/`: what readers can see.
/// The store as readers see it: without locks, staging entries and pins, which a killed pull
/// may leave until the next writer sweeps them.
fn visible_listing(env: &Env) -> Vec<String> {
    common::tree::listing(&env.root, &["locks", "tmp", "pins"])
}

fn tmp_entries(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(env.root.join("tmp"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Bytes in staged blob files under `tmp/`.
fn staged_blob_bytes(env: &Env) -> u64 {
    let tmp = env.root.join("tmp");
    let Ok(entries) = fs::read_dir(tmp) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("blob-"))
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| metadata.len())
        .sum()
}

/// Checks whether process `pid` is blocked waiting for a `flock` on the file at `path`, from
/// `/proc/locks`, whose waiters read `N: -> FLOCK ADVISORY WRITE PID MAJOR:MINOR:INODE 0 EOF`.
fn waits_for_lock(pid: u32, path: &Path) -> bool {
    let Ok(metadata) = fs::metadata(path) else {
        return false;
    };
    let inode = metadata.ino().to_string();
    let pid = pid.to_string();
    let locks = fs::read_to_string("/proc/locks").unwrap();
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"->")
            && fields.get(2) == Some(&"FLOCK")
            && fields.get(5) == Some(&pid.as_str())
            && fields
                .get(6)
                .is_some_and(|id| id.rsplit(':').next() == Some(inode.as_str()))
    })
}

impl Setup {
    /// Serves the layer up to its middle, then pauses until the returned gate opens.
    fn pause_layer(&self) -> Gate {
        let gate = Gate::new();
        self.layer_fault(Fault::PauseAfter(self.layer().len() / 2, gate.clone()));
        gate
    }

    /// Starts a pull that pauses in the middle of the layer, holding its lock, and a second
    /// pull of the same image, and returns once the second waits for that lock.
    fn holder_and_waiter(&self) -> (Gate, Child, Child) {
        let gate = self.pause_layer();
        let holder = spawn_pull(&self.env, &self.reference);
        gate.wait_reached();

        let waiter = spawn_pull(&self.env, &self.reference);
        let waiter_pid = waiter.id();
        wait_until("the second pull waits for the layer lock", || {
            waits_for_lock(waiter_pid, &self.layer_lock())
        });
        (gate, holder, waiter)
    }

    fn layer_lock(&self) -> PathBuf {
        let hex = self.image.layers[0]
            .diff_id
            .strip_prefix("sha256:")
            .unwrap();
        self.env.root.join(format!("locks/layer-{hex}.lock"))
    }
}

#[test]
fn killed_pull_leaves_no_partial_objects() {
    let setup = Setup::new();
    let gate = setup.pause_layer();
    let before = visible_listing(&setup.env);

    let pull = spawn_pull(&setup.env, &setup.reference);
    gate.wait_reached();
    wait_until("the pull has staged part of the layer", || {
        staged_blob_bytes(&setup.env) > 0
    });
    kill(pull);
    assert_eq!(visible_listing(&setup.env), before);
    assert_ne!(
        tmp_entries(&setup.env),
        Vec::<String>::new(),
        "nothing was staged"
    );

    setup
        .registry
        .set(&setup.layer_path(), Reply::blob(setup.layer()));
    setup.env.ok(&["pull", &setup.reference]);
    assert_eq!(tmp_entries(&setup.env), Vec::<String>::new());
    let pins = fs::read_dir(setup.env.root.join("pins")).unwrap().count();
    assert_eq!(pins, 0, "the killed pull's pins were not swept");
    assert_eq!(setup.unpacked_hello(), b"hello\n");
}

#[test]
fn pull_killed_waiting_for_layer_lock() {
    let setup = Setup::new();
    let (gate, holder, waiter) = setup.holder_and_waiter();
    kill(waiter);
    gate.open();

    let output = holder.wait_with_output().unwrap();
    assert_succeeded(&output);
    assert_eq!(tmp_entries(&setup.env), Vec::<String>::new());
    assert_eq!(setup.unpacked_hello(), b"hello\n");
}

#[test]
fn pull_killed_holding_layer_lock() {
    let setup = Setup::new();
    let (gate, holder, waiter) = setup.holder_and_waiter();
    kill(holder);
    // The waiter fetches the layer itself, through the same gate.
    gate.open();

    let output = waiter.wait_with_output().unwrap();
    assert_succeeded(&output);
    assert_eq!(setup.unpacked_hello(), b"hello\n");
    let images = setup.env.ok(&["images"]);
    assert!(images.contains(REPOSITORY), "{images}");

    // The killed pull's staging entries go with the next pull that runs alone.
    setup.env.ok(&["pull", &setup.reference]);
    assert_eq!(tmp_entries(&setup.env), Vec::<String>::new());
}

// A full disk.

/// A tmpfs mounted on a directory, unmounted on drop.
struct SmallFs {
    path: PathBuf,
}

impl SmallFs {
    /// Mounts a tmpfs with `options` (`size=3m`, `nr_inodes=64`) on `path`.
    fn mount(path: PathBuf, options: &str) -> SmallFs {
        use nix::mount::{mount, MsFlags};
        fs::create_dir_all(&path).unwrap();
        mount(
            Some("tmpfs"),
            &path,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options),
        )
        .unwrap();
        SmallFs { path }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Creates an environment whose store is on a small tmpfs. Bound as `(env, _small)`, the
/// tmpfs is dropped first, so it is unmounted before the environment's directory is removed.
fn env_on_small_fs(options: &str) -> (Env, SmallFs) {
    let mut env = Env::new();
    let small = SmallFs::mount(env.path("small"), options);
    env.root = small.path.join("store");
    layerfs::store::Store::open(&env.root).unwrap();
    (env, small)
}

#[test]
fn full_disk_fails_writing_blob() {
    let (env, _small) = env_on_small_fs("size=3m");
    let message = failed_pull(&env, "alpine:3.20");
    let tmp = env.root.join("tmp");
    assert!(
        message.contains(&format!("writing blob {}/blob-", tmp.display())),
        "{message}"
    );
    assert!(message.contains("No space left on device"), "{message}");
    assert_eq!(tmp_entries(&env), Vec::<String>::new());

    let output = env.ok(&["pull", "hello-world"]);
    assert!(output.starts_with("Pulled"), "{output}");
}

#[test]
fn full_inode_table_fails_unpacking() {
    let (env, _small) = env_on_small_fs("nr_inodes=64");
    let message = failed_pull(&env, "alpine:3.20");
    let tmp = env.root.join("tmp");
    assert!(message.contains("unpacking layer sha256:"), "{message}");
    assert!(
        message.contains(&format!(" {}/layer-", tmp.display())),
        "{message}"
    );
    assert!(message.contains("No space left on device"), "{message}");
    assert_eq!(tmp_entries(&env), Vec::<String>::new());
}

#[test]
fn blob_missing_on_mirror_comes_from_server() {
    let setup = Setup::new();
    let mirror = FakeRegistry::start();
    mirror.serve_image(REPOSITORY, "latest", &setup.image);
    mirror.set(&setup.layer_path(), Reply::status(404));
    setup.env.write_config(&format!(
        "[registry.\"fake.example\"]\nmirrors = [\"{}\"]\nserver = \"{}\"\n",
        mirror.url(),
        setup.registry.url()
    ));

    let output = setup
        .env
        .run(&["pull", &format!("fake.example/{REPOSITORY}:latest")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("skipped a failing endpoint"), "{stderr}");
    assert!(stderr.contains(&mirror.url()), "{stderr}");
}

#[test]
fn blob_missing_everywhere_reports_each_endpoint() {
    let setup = Setup::new();
    let mirror = FakeRegistry::start();
    mirror.serve_image(REPOSITORY, "latest", &setup.image);
    mirror.set(&setup.layer_path(), Reply::status(404));
    setup.registry.set(&setup.layer_path(), Reply::status(404));
    setup.env.write_config(&format!(
        "[registry.\"fake.example\"]\nmirrors = [\"{}\"]\nserver = \"{}\"\n",
        mirror.url(),
        setup.registry.url()
    ));

    let before = setup.env.store_listing();
    let stderr = setup
        .env
        .fails(&["pull", &format!("fake.example/{REPOSITORY}:latest")]);
    assert_eq!(setup.env.store_listing(), before);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("not found at {}", mirror.url())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("not found at {}", setup.registry.url())),
        "{stderr}"
    );
}
