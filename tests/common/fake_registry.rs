//! A registry that misbehaves on request, for the faults a real registry cannot produce:
//! bytes that do not match their digest, bodies longer or shorter than declared, dropped
//! connections, stalls, error statuses and redirects.
//!
//! It speaks just enough HTTP/1.1 for `layerfs pull`, over plain TCP on a free loopback port,
//! one thread per connection. [`Image`] builds a small valid image, [`FakeRegistry::serve_image`]
//! registers its manifest and blobs under a repository, and [`FakeRegistry::set`] replaces the
//! reply of any path, which is how a test injects its fault:
//!
//! ```ignore
//! let registry = FakeRegistry::start();
//! let image = Image::new(vec![Layer::tar(&[("hello", b"hello\n")])]);
//! registry.serve_image("library/fake", "latest", &image);
//! let path = FakeRegistry::blob_path("library/fake", &image.layers[0].digest());
//! registry.set(&path, Reply::status(500));
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// How long a test waits for the server to reach a [`Gate`] before it fails, rather than
/// hanging when the pull broke off early.
const GATE_DEADLINE: Duration = Duration::from_secs(120);

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A layer blob and the diff ID that the image config lists for it.
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: String,
    pub blob: Vec<u8>,
    pub diff_id: String,
}

impl Layer {
    /// An uncompressed tar layer of regular files (path, content), mode 0644, owned by root.
    /// Its diff ID is its digest.
    pub fn tar(files: &[(&str, &[u8])]) -> Layer {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1_700_000_000);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, *content).unwrap();
        }
        let blob = builder.into_inner().unwrap();
        let diff_id = sha256(&blob);
        Layer {
            media_type: OCI_LAYER_TAR.to_owned(),
            blob,
            diff_id,
        }
    }

    pub fn digest(&self) -> String {
        sha256(&self.blob)
    }
}

/// A linux/amd64 OCI image: its layers, config and manifest bytes.
#[derive(Debug, Clone)]
pub struct Image {
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl Image {
    /// An image of `layers`, bottom first, whose config lists each layer's `diff_id`.
    pub fn new(layers: Vec<Layer>) -> Image {
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = serde_json::to_vec(&config).unwrap();
        let descriptors: Vec<serde_json::Value> = layers
            .iter()
            .map(|layer| {
                serde_json::json!({
                    "mediaType": layer.media_type,
                    "digest": layer.digest(),
                    "size": layer.blob.len(),
                })
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
            "layers": descriptors,
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        Image {
            layers,
            config,
            manifest,
        }
    }

    pub fn manifest_digest(&self) -> String {
        sha256(&self.manifest)
    }

    pub fn config_digest(&self) -> String {
        sha256(&self.config)
    }
}

/// What the server does with one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub fault: Fault,
}

/// How the body of a [`Reply`] deviates from a well-formed response.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The body, exactly as its Content-Length declares.
    None,
    /// Declares the whole body's length, sends its first `n` bytes, then closes the connection.
    CloseAfter(usize),
    /// Sends the first `n` bytes, then waits until the gate opens before sending the rest.
    PauseAfter(usize, Gate),
    /// Sends the body without a Content-Length, then zeros until the client goes away.
    Endless,
}

impl Reply {
    pub fn ok(content_type: &str, body: &[u8]) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.to_vec(),
            fault: Fault::None,
        }
    }

    /// A blob reply with the headers a registry sends.
    pub fn blob(body: &[u8]) -> Reply {
        Reply::ok("application/octet-stream", body)
            .with_header("Docker-Content-Digest", &sha256(body))
    }

    /// An error status with a plain-text body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".to_owned(), "text/plain".to_owned())],
            body: format!("fake registry error {status}\n").into_bytes(),
            fault: Fault::None,
        }
    }

    /// A 307 redirect to `location`, as registries backed by object storage send for blobs.
    pub fn redirect(location: &str) -> Reply {
        Reply::status(307).with_header("Location", location)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_fault(mut self, fault: Fault) -> Reply {
        self.fault = fault;
        self
    }
}

/// A point in a response where the server waits for the test. The test learns that the server
/// got there with [`Gate::wait_reached`] and lets it go on with [`Gate::open`].
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<(Mutex<GateState>, Condvar)>);

#[derive(Debug, Default)]
struct GateState {
    reached: bool,
    open: bool,
}

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    pub fn open(&self) {
        let (state, changed) = &*self.0;
        state.lock().unwrap().open = true;
        changed.notify_all();
    }

    /// Blocks until a response has reached this gate. Panics after a generous deadline, so
    /// that a pull that failed before getting here fails the test instead of hanging it.
    pub fn wait_reached(&self) {
        let (state, changed) = &*self.0;
        let deadline = Instant::now() + GATE_DEADLINE;
        let mut guard = state.lock().unwrap();
        while !guard.reached {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no response reached the gate");
            guard = changed.wait_timeout(guard, left).unwrap().0;
        }
    }

    fn pass(&self) {
        let (state, changed) = &*self.0;
        let mut guard = state.lock().unwrap();
        guard.reached = true;
        changed.notify_all();
        while !guard.open {
            guard = changed.wait(guard).unwrap();
        }
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub authorization: Option<String>,
}

struct State {
    address: SocketAddr,
    routes: HashMap<String, Reply>,
    requests: Vec<Request>,
    /// When set, every path but `/token` requires `Authorization: Bearer <token>`.
    token: Option<String>,
    gates: Vec<Gate>,
}

/// The running server. Dropping it closes the listening socket, so that new connections are
/// refused, and opens every gate.
pub struct FakeRegistry {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    stopping: Arc<AtomicBool>,
    accepting: Option<thread::JoinHandle<()>>,
}

impl FakeRegistry {
    /// Starts a server on a free port of 127.0.0.1 that serves `/v2/` and nothing else yet.
    pub fn start() -> FakeRegistry {
        FakeRegistry::start_on(Ipv4Addr::LOCALHOST)
    }

    /// Starts a server on a free port of `ip`, any address of 127.0.0.0/8.
    pub fn start_on(ip: Ipv4Addr) -> FakeRegistry {
        let listener = TcpListener::bind((IpAddr::V4(ip), 0)).unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            address,
            routes: HashMap::new(),
            requests: Vec::new(),
            token: None,
            gates: Vec::new(),
        }));
        let stopping = Arc::new(AtomicBool::new(false));
        let (accept_state, accept_stopping) = (state.clone(), stopping.clone());
        let accepting = thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = accept_state.clone();
                thread::spawn(move || serve_connection(stream, &state));
            }
        });
        let registry = FakeRegistry {
            address,
            state,
            stopping,
            accepting: Some(accepting),
        };
        registry.set("/v2/", Reply::ok("application/json", b"{}"));
        registry
    }

    /// `host:port`, the registry part of a reference.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn manifest_path(repository: &str, key: &str) -> String {
        format!("/v2/{repository}/manifests/{key}")
    }

    pub fn blob_path(repository: &str, digest: &str) -> String {
        format!("/v2/{repository}/blobs/{digest}")
    }

    /// Replaces the reply for `path` (without query string).
    pub fn set(&self, path: &str, reply: Reply) {
        let mut state = self.state.lock().unwrap();
        if let Fault::PauseAfter(_, gate) = &reply.fault {
            state.gates.push(gate.clone());
        }
        state.routes.insert(path.to_owned(), reply);
    }

    /// Serves `image` as `repository:tag` and by manifest digest, with its config and layers.
    pub fn serve_image(&self, repository: &str, tag: &str, image: &Image) {
        let manifest = Reply::ok(OCI_MANIFEST, &image.manifest)
            .with_header("Docker-Content-Digest", &image.manifest_digest());
        self.set(&Self::manifest_path(repository, tag), manifest.clone());
        self.set(
            &Self::manifest_path(repository, &image.manifest_digest()),
            manifest,
        );
        self.set(
            &Self::blob_path(repository, &image.config_digest()),
            Reply::blob(&image.config),
        );
        for layer in &image.layers {
            self.set(
                &Self::blob_path(repository, &layer.digest()),
                Reply::blob(&layer.blob),
            );
        }
    }

    /// Requires the bearer token `token` on every path from now on. `/v2/` returns 401 with a
    /// challenge whose realm is this server's `/token`, which hands out `token` to anyone, as
    /// Docker Hub does for anonymous pulls.
    pub fn require_token(&self, token: &str) {
        let body = serde_json::to_vec(&serde_json::json!({"token": token})).unwrap();
        self.set("/token", Reply::ok("application/json", &body));
        self.state.lock().unwrap().token = Some(token.to_owned());
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests received for `path`.
    pub fn requests_for(&self, path: &str) -> Vec<Request> {
        let requests = self.requests();
        requests.into_iter().filter(|r| r.path == path).collect()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let gates = std::mem::take(&mut self.state.lock().unwrap().gates);
        for gate in gates {
            gate.open();
        }
        // Wakes the accept loop so that it reads `stopping`, and waits until the listener is
        // closed.
        let _ = TcpStream::connect(self.address);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

/// Serves requests on one connection until the client closes it or a fault ends it.
fn serve_connection(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    while let Some(request) = read_request(&mut reader) {
        let reply = route(state, request);
        let keep_open = write_reply(&mut writer, &reply).is_ok();
        if !keep_open || !matches!(reply.fault, Fault::None) {
            return;
        }
    }
}

/// Reads a request head. Returns `None` at the end of the connection. Requests with a body
/// are not expected: a pull only sends GETs.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|&n| n > 0)?;
    let target = line.split_whitespace().nth(1)?.to_owned();
    let path = target.split('?').next().unwrap_or("").to_owned();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok().filter(|&n| n > 0)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_owned());
            }
        }
    }
    Some(Request {
        path,
        authorization,
    })
}

fn route(state: &Mutex<State>, request: Request) -> Reply {
    let mut state = state.lock().unwrap();
    state.requests.push(request.clone());
    if let Some(token) = &state.token {
        let authorized = request.authorization.as_deref() == Some(&format!("Bearer {token}"));
        if !authorized && request.path != "/token" {
            let realm = format!("http://{}/token", state.address);
            let challenge = format!("Bearer realm=\"{realm}\",service=\"fake\"");
            return Reply::status(401).with_header("WWW-Authenticate", &challenge);
        }
    }
    match state.routes.get(&request.path) {
        Some(reply) => reply.clone(),
        None => Reply::status(404),
    }
}

fn write_reply(writer: &mut TcpStream, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !matches!(reply.fault, Fault::Endless) {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    // The connection ends with a faulty reply. Saying so keeps the client from reusing it for
    // its next request, which would then fail for a reason the test did not set up.
    if !matches!(reply.fault, Fault::None) {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;

    match &reply.fault {
        Fault::None => writer.write_all(&reply.body)?,
        Fault::CloseAfter(count) => {
            writer.write_all(&reply.body[..*count])?;
            writer.flush()?;
            writer.shutdown(std::net::Shutdown::Both)?;
        }
        Fault::PauseAfter(count, gate) => {
            writer.write_all(&reply.body[..*count])?;
            writer.flush()?;
            gate.pass();
            writer.write_all(&reply.body[*count..])?;
        }
        Fault::Endless => {
            writer.write_all(&reply.body)?;
            let zeros = [0u8; 64 << 10];
            loop {
                writer.write_all(&zeros)?;
            }
        }
    }
    writer.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    }
}
