//! Reading and writing cgroup control files, with errors that name the file and the value.

use std::fmt::Display;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use super::{Error, Result};

/// Writes `value` to the control file `dir/name`.
pub fn write(dir: &Path, name: &str, value: impl Display) -> Result<()> {
    let path = dir.join(name);
    let value = value.to_string();
    fs::write(&path, &value).map_err(|source| Error::Write {
        path,
        value,
        source,
    })
}

/// Reads the trimmed content of `dir/name`, or `None` if the file does not exist.
pub fn read(dir: &Path, name: &str) -> Result<Option<String>> {
    let path = dir.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            action: "reading",
            path,
            source,
        }),
    }
}

/// Reads a file that contains one number, or `max` (returned as `None`, like a missing file).
pub fn read_u64(dir: &Path, name: &str) -> Result<Option<u64>> {
    let Some(text) = read(dir, name)? else {
        return Ok(None);
    };
    if text == "max" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| Error::Parse {
        path: dir.join(name),
        text,
    })
}

/// Reads the value of `key` from a file of `key value` lines (`cpu.stat`, `memory.events`…).
pub fn read_keyed(dir: &Path, name: &str, key: &str) -> Result<Option<u64>> {
    let Some(text) = read(dir, name)? else {
        return Ok(None);
    };
    Ok(keyed_value(&text, key))
}

pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(name, _)| *name == key)
        .and_then(|(_, value)| value.trim().parse().ok())
}

pub fn exists(dir: &Path, name: &str) -> bool {
    dir.join(name).exists()
}

/// Creates `dir` if needed; returns whether this call created it.
pub fn create_dir(dir: &Path) -> Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(Error::Io {
            action: "creating cgroup",
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Removes the cgroup directory `dir`. The kernel refuses (EBUSY) while exiting processes
/// are still being released, which takes a moment after the last of them was reaped, so
/// this retries for up to about two seconds.
pub fn remove_dir(dir: &Path) -> Result<()> {
    let mut attempts = 0;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
            Err(error) if error.raw_os_error() == Some(libc::EBUSY) && attempts < 200 => {
                attempts += 1;
                sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(Error::Io {
                    action: "removing cgroup",
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Polls `read_state` until it returns `expected`, for up to about ten seconds: freezing
/// waits for every task to reach the refrigerator, which a task in an uninterruptible sleep
/// delays.
pub fn wait_for_state(
    path: &Path,
    expected: &'static str,
    mut read_state: impl FnMut() -> Result<String>,
) -> Result<()> {
    let mut actual = String::new();
    for _ in 0..1000 {
        actual = read_state()?;
        if actual == expected {
            return Ok(());
        }
        sleep(Duration::from_millis(10));
    }
    Err(Error::FreezeTimedOut {
        path: path.to_path_buf(),
        expected,
        actual,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_value_finds_exact_key() {
        let text = "nr_periods 10\nnr_throttled 3\nthrottled_time 500\n";
        assert_eq!(keyed_value(text, "nr_throttled"), Some(3));
        assert_eq!(keyed_value(text, "nr_periods"), Some(10));
        assert_eq!(keyed_value(text, "throttled"), None);
    }

    #[test]
    fn read_u64_treats_max_as_none() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("pids.max"), "max\n").unwrap();
        fs::write(dir.path().join("pids.current"), "7\n").unwrap();
        assert_eq!(read_u64(dir.path(), "pids.max").unwrap(), None);
        assert_eq!(read_u64(dir.path(), "pids.current").unwrap(), Some(7));
        assert_eq!(read_u64(dir.path(), "missing").unwrap(), None);
    }
}
