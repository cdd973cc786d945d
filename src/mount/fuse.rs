//! The FUSE driver's daemon: a background `layerfs fuse-daemon DIR` process per mount (or
//! per container of `layerfs run --driver fuse`) that serves the merged view of the layers
//! listed in `DIR/fuse.json`.
//!
//! Start-up: the parent spawns the daemon with a pipe as its stdout and waits for the line
//! `ready`, which the daemon prints once the mount is live, so `layerfs mount` returns only
//! then. The daemon logs to `DIR/daemon.log` and holds an exclusive `flock(2)` on
//! `DIR/daemon.lock` while it runs: `umount` takes that lock to know it has exited, even
//! if it crashed.
//!
//! Shutdown: SIGTERM, SIGINT or SIGHUP makes the daemon unmount, lazily if the mount is
//! busy. An unmount by anyone, lazy or not, ends the kernel connection once no process uses
//! the mount, and the daemon then exits with status 0.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use layerfs_fuse::{Layers, OpenMode, Options, UpperDirs};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{SigSet, Signal};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::{Error, Result};
use crate::fs_error::{FsContext, FsError};
use crate::store;

const CONFIG: &str = "fuse.json";
const LOG: &str = "daemon.log";
const LOCK: &str = "daemon.lock";

/// How long `umount` waits for the daemon to exit after the unmount.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The mount a daemon serves, as written to `DIR/fuse.json`.
#[derive(Debug, Serialize, Deserialize)]
struct DaemonConfig {
    target: PathBuf,
    /// Lower layer directories, topmost first.
    lowers: Vec<PathBuf>,
    upper: Option<PathBuf>,
    work: Option<PathBuf>,
    /// Serve opens with passthrough backing files rather than without requests.
    #[serde(default)]
    passthrough: bool,
}

/// Starts the daemon for the mount directory `dir` and returns its process ID once the
/// mount on `target` is live.
pub fn start(dir: &Path, target: &Path, layers: &Layers, open: OpenMode) -> Result<u32> {
    let config = DaemonConfig {
        target: target.to_path_buf(),
        lowers: layers.lowers.clone(),
        upper: layers.upper.as_ref().map(|dirs| dirs.upper.clone()),
        work: layers.upper.as_ref().map(|dirs| dirs.work.clone()),
        passthrough: open == OpenMode::Passthrough,
    };
    let json = serde_json::to_vec_pretty(&config).expect("daemon configs serialize");
    store::write_file_atomic(&dir.join(CONFIG), &json)?;

    let log_path = dir.join(LOG);
    let log = File::create(&log_path).at("creating", &log_path)?;
    let program = std::env::current_exe().at("locating", "/proc/self/exe")?;
    let mut child = Command::new(&program)
        .arg("fuse-daemon")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .at("starting FUSE daemon", &program)?;
    debug!(pid = child.id(), dir = %dir.display(), "started FUSE daemon");

    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    if line.trim_end() == "ready" {
        return Ok(child.id());
    }
    let _ = child.wait();
    let log = fs::read_to_string(&log_path).unwrap_or_default();
    Err(Error::DaemonFailed {
        log: log_path,
        message: last_line(&log),
    })
}

fn last_line(log: &str) -> String {
    let line = log.lines().rev().find(|line| !line.trim().is_empty());
    line.unwrap_or("it exited without a message")
        .trim()
        .to_owned()
}

/// Unmounts the FUSE mount on `target` served by the daemon of directory `dir`, and waits
/// for the daemon to exit.
pub fn stop(dir: &Path, target: &Path) -> Result<()> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL) => {}
        Err(Errno::EBUSY) => return Err(Error::Busy(target.to_path_buf())),
        Err(errno) => return Err(FsError::new("unmounting", target, errno.into()).into()),
    }
    wait_for_exit(dir)
}

/// Waits until the daemon of mount directory `dir` has exited, after its mount is gone.
pub fn wait_for_exit(dir: &Path) -> Result<()> {
    let path = dir.join(LOCK);
    let deadline = Instant::now() + EXIT_TIMEOUT;
    loop {
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(FsError::new("opening", &path, error).into()),
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(_) => return Ok(()),
            Err((_, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err((_, Errno::EWOULDBLOCK)) => return Err(Error::DaemonStuck(dir.to_path_buf())),
            Err((_, errno)) => return Err(FsError::new("locking", &path, errno.into()).into()),
        }
    }
}

/// Serves the mount described in `dir` until it is unmounted: the daemon itself.
pub fn run_daemon(dir: &Path) -> Result<()> {
    let config_path = dir.join(CONFIG);
    let bytes = fs::read(&config_path).at("reading", &config_path)?;
    let config: DaemonConfig =
        serde_json::from_slice(&bytes).map_err(|error| store::Error::Corrupt {
            what: format!("FUSE daemon config {}", config_path.display()),
            reason: error.to_string(),
        })?;
    let layers = Layers {
        lowers: config.lowers,
        upper: match (config.upper, config.work) {
            (Some(upper), Some(work)) => Some(UpperDirs { upper, work }),
            _ => None,
        },
    };

    // Block the shutdown signals before fuser starts its threads, so that they inherit the
    // mask and only the signal thread below receives them.
    let signals = shutdown_signals();
    signals
        .thread_block()
        .map_err(std::io::Error::from)
        .at("blocking signals in", dir)?;
    let _ = rustix::process::setsid();
    let lock_path = dir.join(LOCK);
    let lock_file = File::create(&lock_path).at("creating", &lock_path)?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, errno)| FsError::new("locking", &lock_path, errno.into()))?;

    let options = Options {
        open: match config.passthrough {
            true => OpenMode::Passthrough,
            false => OpenMode::Cached,
        },
        ..Options::default()
    };
    let mount = layerfs_fuse::mount(&layers, &config.target, options)?;
    info!(target = %config.target.display(), "FUSE file system mounted");
    announce_ready()?;
    let target = config.target.clone();
    std::thread::spawn(move || unmount_on_signal(signals, &target));
    mount.run()?;
    info!(target = %config.target.display(), "FUSE file system unmounted; exiting");
    Ok(())
}

fn shutdown_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGHUP);
    signals
}

/// Prints `ready` on stdout, the pipe the parent waits on, then closes it.
fn announce_ready() -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready")
        .and_then(|()| stdout.flush())
        .at("announcing readiness on", "stdout")?;
    let null = File::open("/dev/null").at("opening", "/dev/null")?;
    rustix::stdio::dup2_stdout(&null)
        .map_err(std::io::Error::from)
        .at("closing", "stdout")?;
    Ok(())
}

fn unmount_on_signal(signals: SigSet, target: &Path) {
    let signal = match signals.wait() {
        Ok(signal) => signal,
        Err(errno) => {
            warn!(%errno, "waiting for signals failed; the daemon exits only on unmount");
            return;
        }
    };
    info!(?signal, target = %target.display(), "unmounting on signal");
    match umount2(target, MntFlags::empty()) {
        Ok(()) | Err(Errno::EINVAL) => {}
        Err(Errno::EBUSY) => {
            warn!(target = %target.display(), "mount is busy; detaching it lazily");
            if let Err(errno) = umount2(target, MntFlags::MNT_DETACH) {
                warn!(%errno, target = %target.display(), "lazy unmount failed");
            }
        }
        Err(errno) => warn!(%errno, target = %target.display(), "unmount failed"),
    }
}
