//! Capabilities of the container's processes: Docker's default set, and nothing in the
//! ambient or inheritable sets.
//!
//! The bounding set is reduced first, while PID 1 still holds CAP_SETPCAP: afterwards no
//! process of the container can gain a capability outside it, by setuid root or file
//! capabilities alike. A root process keeps the set as its effective and permitted
//! capabilities; a process that switched to another user has lost them with setuid(2).

use std::io;

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

/// Whether this process may raise resource limits above their hard limit.
pub fn has_sys_resource() -> bool {
    capabilities(None).is_ok_and(|sets| sets.effective.contains(CapabilitySet::SYS_RESOURCE))
}
