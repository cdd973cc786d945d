//! The v1 `cpu` controller (CFS quota and shares) and `cpuacct` (CPU time accounting).

use std::path::Path;

use super::super::files;
use super::super::{Resources, Result, Stats};

pub fn apply(dir: &Path, resources: &Resources) -> Result<()> {
    if let Some(quota) = resources.cpu_quota {
        files::write(dir, "cpu.cfs_period_us", quota.period_us)?;
        files::write(dir, "cpu.cfs_quota_us", quota.quota_us)?;
    }
    if let Some(shares) = resources.v1_cpu_shares() {
        files::write(dir, "cpu.shares", shares)?;
    }
    Ok(())
}

/// Total CPU time from `cpuacct.usage` (nanoseconds), and its user and system parts from
/// `cpuacct.stat` (in USER_HZ ticks).
pub fn accounting_stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    stats.cpu_usage_ns = files::read_u64(dir, "cpuacct.usage")?;
    let ns_per_tick = 1_000_000_000 / clock_ticks_per_second();
    let ticks = |key| files::read_keyed(dir, "cpuacct.stat", key);
    stats.cpu_user_ns = ticks("user")?.map(|t| t * ns_per_tick);
    stats.cpu_system_ns = ticks("system")?.map(|t| t * ns_per_tick);
    Ok(())
}

/// Throttling counters from `cpu.stat`; `throttled_time` is in nanoseconds.
pub fn bandwidth_stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    let Some(text) = files::read(dir, "cpu.stat")? else {
        return Ok(());
    };
    stats.cpu_periods = files::keyed_value(&text, "nr_periods");
    stats.cpu_throttled_periods = files::keyed_value(&text, "nr_throttled");
    stats.cpu_throttled_ns = files::keyed_value(&text, "throttled_time");
    Ok(())
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}
