//! Accounting figures read from a container's cgroup, and their one-line summary.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a cgroup has used. Each figure is `None` when the hierarchy does not provide it
/// (a controller that is not mounted or enabled, or a kernel too old for the file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// CPU time consumed, in nanoseconds, and its user and system parts.
    pub cpu_usage_ns: Option<u64>,
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    /// CFS bandwidth periods elapsed, periods in which the quota ran out, and the time the
    /// cgroup spent throttled, in nanoseconds.
    pub cpu_periods: Option<u64>,
    pub cpu_throttled_periods: Option<u64>,
    pub cpu_throttled_ns: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub memory_peak_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub pids: Option<u64>,
    pub pids_limit: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    pub oom_kills: Option<u64>,
}

/// Formats a byte count with a binary unit: `512 B`, `1.5 KiB`, `32.0 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_owned())
}

/// The one-line summary `run --stats` prints when a container exits.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = |ns: Option<u64>| ns.map(|ns| format!("{:.2}s", ns as f64 / 1e9));
        write!(
            f,
            "cpu {} (user {}, system {}), memory peak {}, pids {}",
            or_dash(seconds(self.cpu_usage_ns)),
            or_dash(seconds(self.cpu_user_ns)),
            or_dash(seconds(self.cpu_system_ns)),
            or_dash(self.memory_peak_bytes.map(human_bytes)),
            or_dash(self.pids.map(|p| p.to_string())),
        )?;
        if let (Some(read), Some(write)) = (self.io_read_bytes, self.io_write_bytes) {
            write!(
                f,
                ", io read {} write {}",
                human_bytes(read),
                human_bytes(write)
            )?;
        }
        if let Some(throttled) = self.cpu_throttled_periods.filter(|&t| t > 0) {
            write!(f, ", throttled in {throttled} periods")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_table() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (32 << 20, "32.0 MiB"),
            (3 << 30, "3.0 GiB"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(human_bytes(bytes), expected);
        }
    }

    #[test]
    fn summary_shows_dashes_for_missing_figures() {
        let stats = Stats {
            cpu_usage_ns: Some(1_500_000_000),
            memory_peak_bytes: Some(2 << 20),
            ..Stats::default()
        };
        assert_eq!(
            stats.to_string(),
            "cpu 1.50s (user -, system -), memory peak 2.0 MiB, pids -"
        );
    }
}
