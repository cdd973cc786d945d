//! The v1 devices controller: what device nodes the container may open. Docker's default
//! list is applied: any node may be created (`m`), but only these may be read or written.

use std::path::Path;

use super::super::files;
use super::super::Result;

const ALLOWED: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",   // null
    "c 1:5 rwm",   // zero
    "c 1:7 rwm",   // full
    "c 1:8 rwm",   // random
    "c 1:9 rwm",   // urandom
    "c 5:0 rwm",   // tty
    "c 5:1 rwm",   // console
    "c 5:2 rwm",   // ptmx
    "c 136:* rwm", // pseudo-terminal secondaries
];

pub fn apply(dir: &Path) -> Result<()> {
    files::write(dir, "devices.deny", "a")?;
    for rule in ALLOWED {
        files::write(dir, "devices.allow", rule)?;
    }
    Ok(())
}
