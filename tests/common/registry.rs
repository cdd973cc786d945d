//! A fixture registry for benchmarks, which run without `fixtures/test` to start one.

use std::path::PathBuf;
use std::process::Command;

/// A fixture registry started here, stopped on drop.
pub struct FixtureRegistry {
    dir: tempfile::TempDir,
}

impl FixtureRegistry {
    /// Starts `fixtures/registry` and exports its address, unless `LAYERFS_TEST_REGISTRY`
    /// already names one.
    pub fn start_unless_running() -> Option<FixtureRegistry> {
        if std::env::var_os("LAYERFS_TEST_REGISTRY").is_some() {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("layerfs-bench-registry-")
            .tempdir()
            .unwrap();
        let output = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let Some(address) = stdout.trim().strip_prefix("LAYERFS_TEST_REGISTRY=") else {
            panic!(
                "fixtures/registry start failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        std::env::set_var("LAYERFS_TEST_REGISTRY", address);
        Some(FixtureRegistry { dir })
    }
}

impl Drop for FixtureRegistry {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry")
}
