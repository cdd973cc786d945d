//! Helpers for container tests: detached containers removed even when a test fails, their
//! recorded state and figures, and waiting for a condition instead of for a time.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::Env;

/// How long [`wait_for`] waits before it gives up. Long, because the suite shares two CPUs
/// with other work; a passing test waits only as long as its condition takes.
const PATIENCE: Duration = Duration::from_secs(90);

/// Polls `condition` until it returns `Some`, and returns that. Panics, naming `what`, if it
/// never does.
pub fn wait_for<T>(what: &str, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        sleep(Duration::from_millis(20));
    }
}

/// A detached container, force-removed when dropped.
pub struct Detached<'a> {
    pub env: &'a Env,
    pub name: String,
    pub id: String,
}

impl Drop for Detached<'_> {
    fn drop(&mut self) {
        let _ = self.env.run(&["rm", "-f", &self.name]);
    }
}

impl Detached<'_> {
    pub fn dir(&self) -> PathBuf {
        self.env.root.join("containers").join(&self.id)
    }

    /// Reads the container's `state.json`.
    pub fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir().join("state.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    pub fn logs(&self) -> String {
        self.env.ok(&["logs", &self.name])
    }

    /// Reads the container's figures once, with `layerfs stats --json`.
    pub fn stats(&self) -> serde_json::Value {
        let line = self.env.ok(&["stats", "--json", &self.name]);
        serde_json::from_str(line.trim()).unwrap()
    }

    /// Returns the host PID of the container's PID 1.
    pub fn init_pid(&self) -> i32 {
        self.state()["init"]["pid"].as_i64().unwrap() as i32
    }

    /// Waits until the log has a line equal to `line`.
    pub fn wait_for_line(&self, line: &str) {
        wait_for(&format!("{line:?} in the log of {}", self.name), || {
            self.logs().lines().any(|l| l == line).then_some(())
        });
    }

    /// Waits until the shim recorded the exit, and returns the exit code.
    pub fn wait_for_exit(&self) -> i64 {
        wait_for(&format!("{} to exit", self.name), || {
            let state = self.state();
            (state["phase"] == "exited").then(|| state["exit_code"].as_i64().unwrap())
        })
    }
}

impl Env {
    /// Starts `layerfs run -d --name NAME ARGS…` and returns the container.
    pub fn detached(&self, name: &str, args: &[&str]) -> Detached<'_> {
        let mut full = vec!["run", "-d", "--name", name];
        full.extend_from_slice(args);
        let id = self.ok(&full).trim().to_owned();
        assert_eq!(id.len(), 64, "run -d printed {id:?}");
        Detached {
            env: self,
            name: name.to_owned(),
            id,
        }
    }

    /// `layerfs run --rm ARGS…`: stdout, stderr and the exit code.
    pub fn run_rm(&self, args: &[&str]) -> (String, String, Option<i32>) {
        let mut full = vec!["run", "--rm"];
        full.extend_from_slice(args);
        let output: Output = self.run(&full);
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            output.status.code(),
        )
    }
}

/// Lists every directory of the container's cgroup that exists, in any v1 or v2 hierarchy.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap() {
        let dir = entry.unwrap().path().join("layerfs").join(id);
        if dir.exists() {
            dirs.push(dir);
        }
    }
    let unified = Path::new("/sys/fs/cgroup/layerfs").join(id);
    if unified.exists() {
        dirs.push(unified);
    }
    dirs
}

/// Reads the file `name` of the container's cgroup in the v1 hierarchy `controller`.
pub fn v1_file(controller: &str, id: &str, name: &str) -> String {
    let path = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("layerfs")
        .join(id)
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
        .trim()
        .to_owned()
}
