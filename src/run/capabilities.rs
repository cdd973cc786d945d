//! Capabilities of the container's processes: Docker's default set, and nothing in the
//! ambient or inheritable sets.
//!
//! The bounding set is reduced first, while PID 1 still has CAP_SETPCAP. Afterwards no
//! process of the container can gain a capability outside it, by setuid root or file
//! capabilities alike. A root process keeps the set as its effective and permitted
//! capabilities; a process that switched to another user has lost them with setuid(2).

use std::io;
use std::str::FromStr;

use rustix::thread::{capabilities, set_capabilities, CapabilitySet, CapabilitySets};

/// Docker's default capabilities (moby's `oci/caps/defaults.go`).
pub const DEFAULT: CapabilitySet = CapabilitySet::CHOWN
    .union(CapabilitySet::DAC_OVERRIDE)
    .union(CapabilitySet::FSETID)
    .union(CapabilitySet::FOWNER)
    .union(CapabilitySet::MKNOD)
    .union(CapabilitySet::NET_RAW)
    .union(CapabilitySet::SETGID)
    .union(CapabilitySet::SETUID)
    .union(CapabilitySet::SETFCAP)
    .union(CapabilitySet::SETPCAP)
    .union(CapabilitySet::NET_BIND_SERVICE)
    .union(CapabilitySet::SYS_CHROOT)
    .union(CapabilitySet::KILL)
    .union(CapabilitySet::AUDIT_WRITE);

/// A `--cap-add` or `--cap-drop` value: one capability, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilityArg {
    All,
    One(CapabilitySet),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {0:?}: give a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL")]
pub struct UnknownCapability(pub String);

impl FromStr for CapabilityArg {
    type Err = UnknownCapability;

    /// Accepts Docker's spellings: `SYS_ADMIN`, `CAP_SYS_ADMIN`, in any case, and `ALL`.
    fn from_str(text: &str) -> Result<CapabilityArg, UnknownCapability> {
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if name == "ALL" {
            return Ok(CapabilityArg::All);
        }
        CapabilitySet::from_name(name)
            .map(CapabilityArg::One)
            .ok_or_else(|| UnknownCapability(text.to_owned()))
    }
}

/// Returns the container's capabilities: Docker's default set with `add` and without
/// `drop`. As in Docker, `--cap-drop ALL` keeps only what is added, and `--cap-add ALL` all
/// but what is dropped.
pub fn resolve(add: &[CapabilityArg], drop: &[CapabilityArg]) -> CapabilitySet {
    let union = |args: &[CapabilityArg]| {
        args.iter()
            .fold(CapabilitySet::empty(), |set, arg| match arg {
                CapabilityArg::All => CapabilitySet::all(),
                CapabilityArg::One(cap) => set | *cap,
            })
    };
    let (added, dropped) = (union(add), union(drop));
    if add.contains(&CapabilityArg::All) {
        return CapabilitySet::all() - dropped;
    }
    if drop.contains(&CapabilityArg::All) {
        return added;
    }
    (DEFAULT - dropped) | added
}

/// Removes every capability outside `keep` from the bounding set.
pub fn limit_bounding_set(keep: CapabilitySet) -> io::Result<()> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")?;
    let last: u32 = last.trim().parse().unwrap_or(40);
    for cap in 0..=last {
        if keep.contains(CapabilitySet::from_bits_retain(1 << cap)) {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes the capability number and touches no memory.
        let result = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Keeps at most `keep` in the effective and permitted sets, and clears the inheritable and
/// ambient sets.
pub fn restrict(keep: CapabilitySet) -> io::Result<()> {
    let current = capabilities(None)?;
    let permitted = current.permitted & keep;
    set_capabilities(
        None,
        CapabilitySets {
            effective: permitted,
            permitted,
            inheritable: CapabilitySet::empty(),
        },
    )?;
    rustix::thread::clear_ambient_capability_set()?;
    Ok(())
}

/// Returns whether this process may raise resource limits above their hard limit.
pub fn has_sys_resource() -> bool {
    capabilities(None).is_ok_and(|sets| sets.effective.contains(CapabilitySet::SYS_RESOURCE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_table() {
        let cases = [
            (
                "SYS_ADMIN",
                Some(CapabilityArg::One(CapabilitySet::SYS_ADMIN)),
            ),
            (
                "cap_net_admin",
                Some(CapabilityArg::One(CapabilitySet::NET_ADMIN)),
            ),
            ("all", Some(CapabilityArg::All)),
            ("NOT_A_CAP", None),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<CapabilityArg>().ok(), expected, "{text}");
        }
    }

    #[test]
    fn resolve_follows_docker() {
        let one = |cap| CapabilityArg::One(cap);
        assert_eq!(resolve(&[], &[]), DEFAULT);
        let added = resolve(
            &[one(CapabilitySet::SYS_ADMIN)],
            &[one(CapabilitySet::CHOWN)],
        );
        assert!(added.contains(CapabilitySet::SYS_ADMIN));
        assert!(!added.contains(CapabilitySet::CHOWN));
        assert!(added.contains(CapabilitySet::KILL));
        let only = resolve(
            &[one(CapabilitySet::NET_BIND_SERVICE)],
            &[CapabilityArg::All],
        );
        assert_eq!(only, CapabilitySet::NET_BIND_SERVICE);
        let all_but = resolve(&[CapabilityArg::All], &[one(CapabilitySet::SYS_ADMIN)]);
        assert_eq!(all_but, CapabilitySet::all() - CapabilitySet::SYS_ADMIN);
    }
}
