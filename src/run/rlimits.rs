//! `--ulimit NAME=SOFT[:HARD]`: resource limits for the container's processes.
//!
//! Raising a hard limit needs CAP_SYS_RESOURCE. Without it, setrlimit(2) would fail inside
//! the container after everything else was set up, so `run` checks every limit against the
//! current hard limit first and rejects the container with a message naming the limit.

use std::fmt;
use std::str::FromStr;

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
use serde::{Deserialize, Serialize};

use super::capabilities::has_sys_resource;

/// The names `--ulimit` accepts, as in Docker and `ulimit(1)`.
const NAMES: [(&str, Resource); 15] = [
    ("as", Resource::RLIMIT_AS),
    ("core", Resource::RLIMIT_CORE),
    ("cpu", Resource::RLIMIT_CPU),
    ("data", Resource::RLIMIT_DATA),
    ("fsize", Resource::RLIMIT_FSIZE),
    ("locks", Resource::RLIMIT_LOCKS),
    ("memlock", Resource::RLIMIT_MEMLOCK),
    ("msgqueue", Resource::RLIMIT_MSGQUEUE),
    ("nice", Resource::RLIMIT_NICE),
    ("nofile", Resource::RLIMIT_NOFILE),
    ("nproc", Resource::RLIMIT_NPROC),
    ("rss", Resource::RLIMIT_RSS),
    ("rtprio", Resource::RLIMIT_RTPRIO),
    ("sigpending", Resource::RLIMIT_SIGPENDING),
    ("stack", Resource::RLIMIT_STACK),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUlimit {
    #[error("invalid --ulimit {0:?}: expected NAME=SOFT[:HARD], such as nofile=1024:2048")]
    Syntax(String),
    #[error("unknown --ulimit name {0:?}; known names: {names}", names = known_names())]
    UnknownName(String),
    #[error("--ulimit {0}: the soft limit is above the hard limit")]
    SoftAboveHard(String),
    #[error(
        "--ulimit {name}: hard limit {requested} is above the current hard limit {current}, \
         and raising it needs CAP_SYS_RESOURCE"
    )]
    AboveHardLimit {
        name: String,
        requested: String,
        current: String,
    },
}

fn known_names() -> String {
    NAMES.map(|(name, _)| name).join(", ")
}

fn parse_value(text: &str) -> Option<u64> {
    match text {
        "unlimited" | "-1" => Some(RLIM_INFINITY),
        _ => text.parse().ok(),
    }
}

fn show(value: u64) -> String {
    if value == RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        value.to_string()
    }
}

impl FromStr for Ulimit {
    type Err = InvalidUlimit;

    fn from_str(text: &str) -> Result<Ulimit, InvalidUlimit> {
        let syntax = || InvalidUlimit::Syntax(text.to_owned());
        let (name, values) = text.split_once('=').ok_or_else(syntax)?;
        if !NAMES.iter().any(|(known, _)| *known == name) {
            return Err(InvalidUlimit::UnknownName(name.to_owned()));
        }
        let (soft, hard) = match values.split_once(':') {
            Some((soft, hard)) => (soft, hard),
            None => (values, values),
        };
        let soft = parse_value(soft).ok_or_else(syntax)?;
        let hard = parse_value(hard).ok_or_else(syntax)?;
        if soft > hard {
            return Err(InvalidUlimit::SoftAboveHard(text.to_owned()));
        }
        Ok(Ulimit {
            name: name.to_owned(),
            soft,
            hard,
        })
    }
}

impl fmt::Display for Ulimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}:{}", self.name, show(self.soft), show(self.hard))
    }
}

impl Ulimit {
    fn resource(&self) -> Resource {
        NAMES
            .iter()
            .find(|(name, _)| *name == self.name)
            .map(|(_, resource)| *resource)
            .expect("names are checked when parsed")
    }
}

/// Rejects a limit whose hard value is above this process's, unless it may raise it.
pub fn check(ulimits: &[Ulimit]) -> Result<(), InvalidUlimit> {
    if has_sys_resource() {
        return Ok(());
    }
    for ulimit in ulimits {
        let (_, current) = getrlimit(ulimit.resource()).unwrap_or((RLIM_INFINITY, RLIM_INFINITY));
        if ulimit.hard > current {
            return Err(InvalidUlimit::AboveHardLimit {
                name: ulimit.name.clone(),
                requested: show(ulimit.hard),
                current: show(current),
            });
        }
    }
    Ok(())
}

/// Sets the limits on the calling process; its children inherit them.
pub fn apply(ulimits: &[Ulimit]) -> nix::Result<()> {
    for ulimit in ulimits {
        setrlimit(ulimit.resource(), ulimit.soft, ulimit.hard)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimit_parsing_table() {
        let limit = |name: &str, soft, hard| Ulimit {
            name: name.to_owned(),
            soft,
            hard,
        };
        let cases = [
            ("nofile=1024:2048", Ok(limit("nofile", 1024, 2048))),
            ("nproc=64", Ok(limit("nproc", 64, 64))),
            ("core=0:unlimited", Ok(limit("core", 0, RLIM_INFINITY))),
            ("stack=-1", Ok(limit("stack", RLIM_INFINITY, RLIM_INFINITY))),
            ("nofile", Err(InvalidUlimit::Syntax("nofile".into()))),
            ("nofile=x", Err(InvalidUlimit::Syntax("nofile=x".into()))),
            ("files=1", Err(InvalidUlimit::UnknownName("files".into()))),
            (
                "nofile=9:8",
                Err(InvalidUlimit::SoftAboveHard("nofile=9:8".into())),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Ulimit>(), expected, "{text}");
        }
    }

    #[test]
    fn current_hard_limit_passes_the_check() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let same = Ulimit {
            name: "nofile".to_owned(),
            soft: hard.min(1024),
            hard,
        };
        assert_eq!(check(&[same]), Ok(()));
    }
}
