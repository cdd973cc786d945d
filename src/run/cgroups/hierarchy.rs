//! Which cgroup hierarchies are mounted, read from `/proc/self/mountinfo`, and which version
//! a container uses.
//!
//! A machine is in one of three layouts: unified (only cgroup2, usually at `/sys/fs/cgroup`),
//! legacy (only v1 controller hierarchies) or hybrid (v1 controllers plus a cgroup2 tree,
//! usually at `/sys/fs/cgroup/unified`, that holds no controllers). Like Docker and runc,
//! layerfs uses v2 on a unified machine and v1 otherwise, unless configured otherwise.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::v1::Controller;
use super::{Error, Result};

/// The mounted hierarchies: v1 controllers with their mount points, and the cgroup2 mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchies {
    pub v1: Vec<(Controller, PathBuf)>,
    pub v2: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    V1,
    V2,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// The `cgroup_version` setting: `auto`, `1` or `2`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preference {
    #[default]
    Auto,
    #[serde(rename = "1")]
    V1,
    #[serde(rename = "2")]
    V2,
}

impl Hierarchies {
    /// Reads the current process's mount table.
    pub fn mounted() -> Result<Hierarchies> {
        let path = "/proc/self/mountinfo";
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            action: "reading",
            path: path.into(),
            source,
        })?;
        Ok(Hierarchies::parse(&text))
    }

    /// Parses mountinfo lines (proc(5)): the mount point is field 5, the file system type
    /// follows the ` - ` separator, and the super options after it list v1 controllers.
    pub fn parse(mountinfo: &str) -> Hierarchies {
        let mut hierarchies = Hierarchies::default();
        for line in mountinfo.lines() {
            let Some((fields, rest)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mount_point) = fields.split(' ').nth(4) else {
                continue;
            };
            let mut rest = rest.split(' ');
            let (Some(fs_type), Some(_source), Some(options)) =
                (rest.next(), rest.next(), rest.next())
            else {
                continue;
            };
            let mount_point = PathBuf::from(unescape(mount_point));
            match fs_type {
                "cgroup2" if hierarchies.v2.is_none() => hierarchies.v2 = Some(mount_point),
                "cgroup" => {
                    for controller in options.split(',').filter_map(Controller::from_name) {
                        if !hierarchies.v1.iter().any(|(known, _)| *known == controller) {
                            hierarchies.v1.push((controller, mount_point.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
        hierarchies
    }

    /// The version a new container uses.
    pub fn choose(&self, preference: Preference) -> Result<Version> {
        let unified = self.v2.as_deref() == Some(std::path::Path::new("/sys/fs/cgroup"));
        match preference {
            Preference::V1 if self.v1.is_empty() => Err(Error::VersionNotMounted(Version::V1)),
            Preference::V1 => Ok(Version::V1),
            Preference::V2 if self.v2.is_none() => Err(Error::VersionNotMounted(Version::V2)),
            Preference::V2 => Ok(Version::V2),
            Preference::Auto if unified || (self.v1.is_empty() && self.v2.is_some()) => {
                Ok(Version::V2)
            }
            Preference::Auto if !self.v1.is_empty() => Ok(Version::V1),
            Preference::Auto => Err(Error::NotMounted),
        }
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
35 24 0:30 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
37 35 0:32 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
38 35 0:33 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
39 35 0:34 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 35 0:35 / /sys/fs/cgroup/my\\040pids rw - cgroup cgroup rw,pids
";

    #[test]
    fn hybrid_layout_lists_v1_controllers() {
        let hierarchies = Hierarchies::parse(HYBRID);
        let expected = vec![
            (Controller::Cpu, PathBuf::from("/sys/fs/cgroup/cpu,cpuacct")),
            (
                Controller::Cpuacct,
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
            ),
            (Controller::Memory, PathBuf::from("/sys/fs/cgroup/memory")),
            (Controller::Pids, PathBuf::from("/sys/fs/cgroup/my pids")),
        ];
        assert_eq!(hierarchies.v1, expected);
        assert_eq!(
            hierarchies.v2,
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn version_choice_table() {
        let hybrid = Hierarchies::parse(HYBRID);
        let unified = Hierarchies::parse("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        let none = Hierarchies::default();
        let cases = [
            (&hybrid, Preference::Auto, Some(Version::V1)),
            (&hybrid, Preference::V2, Some(Version::V2)),
            (&hybrid, Preference::V1, Some(Version::V1)),
            (&unified, Preference::Auto, Some(Version::V2)),
            (&unified, Preference::V1, None),
            (&none, Preference::Auto, None),
        ];
        for (hierarchies, preference, expected) in cases {
            let chosen = hierarchies.choose(preference).ok();
            assert_eq!(chosen, expected, "{preference:?} on {hierarchies:?}");
        }
    }

    #[test]
    fn unescape_decodes_octal_only() {
        assert_eq!(unescape("a\\040b"), "a b");
        assert_eq!(unescape("a\\x"), "a\\x");
        assert_eq!(unescape("end\\04"), "end\\04");
    }
}
