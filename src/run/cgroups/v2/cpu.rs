//! The v2 cpu controller: `cpu.max` (quota and period) and `cpu.weight`. `cpu.stat` exists
//! in every cgroup; its throttling lines appear only when the controller is enabled.

use std::path::Path;

use super::super::files;
use super::super::{Resources, Result, Stats};

pub fn apply(dir: &Path, resources: &Resources) -> Result<()> {
    if let Some(quota) = resources.cpu_quota {
        files::write(
            dir,
            "cpu.max",
            format!("{} {}", quota.quota_us, quota.period_us),
        )?;
    }
    if let Some(weight) = resources.v2_cpu_weight() {
        files::write(dir, "cpu.weight", weight)?;
    }
    Ok(())
}

/// `cpu.stat` counts in microseconds; [`Stats`] in nanoseconds.
pub fn stats(dir: &Path, stats: &mut Stats) -> Result<()> {
    let Some(text) = files::read(dir, "cpu.stat")? else {
        return Ok(());
    };
    let micros = |key| files::keyed_value(&text, key).map(|us| us * 1000);
    stats.cpu_usage_ns = micros("usage_usec");
    stats.cpu_user_ns = micros("user_usec");
    stats.cpu_system_ns = micros("system_usec");
    stats.cpu_throttled_ns = micros("throttled_usec");
    stats.cpu_periods = files::keyed_value(&text, "nr_periods");
    stats.cpu_throttled_periods = files::keyed_value(&text, "nr_throttled");
    Ok(())
}
