//! What a container may use: the values of `--memory`, `--cpus`, `--pids` and friends,
//! parsed once from the command line and checked against each other, and the conversions
//! between the v1 and v2 scales.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The CFS period used with `--cpus`, in microseconds, as in Docker.
pub const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// `--memory`, in bytes.
    pub memory: Option<u64>,
    /// `--memory-swap`: memory plus swap. Unset means twice `memory`, as in Docker.
    pub memory_swap: Option<SwapLimit>,
    /// `--cpus`.
    pub cpu_quota: Option<CpuQuota>,
    /// `--cpuset-cpus`, in the kernel's list format (`0-2,4`).
    pub cpuset_cpus: Option<String>,
    /// `--pids`: the maximum number of processes and threads.
    pub pids: Option<u64>,
    /// `--cpu-shares`, on the v1 scale 2–262144.
    pub cpu_shares: Option<u64>,
    /// `--cpu-weight`, on the v2 scale 1–10000.
    pub cpu_weight: Option<u64>,
    /// `--blkio-weight`, on the v1 scale 10–1000.
    pub blkio_weight: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SwapLimit {
    Unlimited,
    /// Memory plus swap, in bytes.
    Total(u64),
}

/// CFS bandwidth: `quota_us` of CPU time per `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidResources {
    #[error("invalid size {0:?}: expected a number with an optional unit b, k, m, g or t")]
    Size(String),
    #[error("invalid --cpus value {0:?}: expected a number of CPUs such as 0.5 or 2")]
    Cpus(String),
    #[error("--cpus {requested} is out of range: this machine has {online} CPUs, and the minimum is 0.01")]
    CpusRange { requested: String, online: usize },
    #[error("invalid CPU list {0:?}: expected numbers and ranges such as 0-2,4")]
    CpuList(String),
    #[error("--cpuset-cpus {list:?} names CPU {cpu}, but this machine's CPUs are 0-{last}")]
    CpuNotOnline { list: String, cpu: u32, last: usize },
    #[error("{option} {value} is out of range {min}–{max}")]
    Range {
        option: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("--memory {0} is below the minimum of 6 MiB")]
    MemoryTooSmall(u64),
    #[error("--memory-swap needs --memory")]
    SwapWithoutMemory,
    #[error("--memory-swap {swap} is smaller than --memory {memory}; it counts memory plus swap")]
    SwapBelowMemory { swap: u64, memory: u64 },
    #[error("--cpu-shares and --cpu-weight set the same thing; give one")]
    SharesAndWeight,
}

/// Parses a size as Docker does: a number and an optional binary unit (`b`, `k`, `m`, `g`,
/// `t`, `p`, each optionally followed by `b` or `ib`, any case). `32m` is 32 MiB.
pub fn parse_size(text: &str) -> Result<u64, InvalidResources> {
    let invalid = || InvalidResources::Size(text.to_owned());
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let unit = unit.trim_start();
    let prefix = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let shift = match prefix {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(invalid()),
    };
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as u64)
}

impl FromStr for SwapLimit {
    type Err = InvalidResources;

    fn from_str(text: &str) -> Result<SwapLimit, InvalidResources> {
        if text.trim() == "-1" {
            return Ok(SwapLimit::Unlimited);
        }
        parse_size(text).map(SwapLimit::Total)
    }
}

impl FromStr for CpuQuota {
    type Err = InvalidResources;

    /// Parses `--cpus`: a positive decimal number of CPUs.
    fn from_str(text: &str) -> Result<CpuQuota, InvalidResources> {
        let cpus: f64 = text
            .trim()
            .parse()
            .map_err(|_| InvalidResources::Cpus(text.to_owned()))?;
        if !cpus.is_finite() || cpus < 0.01 {
            return Err(InvalidResources::Cpus(text.to_owned()));
        }
        Ok(CpuQuota {
            quota_us: (cpus * CPU_PERIOD_US as f64).round() as u64,
            period_us: CPU_PERIOD_US,
        })
    }
}

impl fmt::Display for CpuQuota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.quota_us as f64 / self.period_us as f64)
    }
}

/// Checks the syntax of a CPU list and returns the CPUs it names, in order.
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, InvalidResources> {
    let invalid = || InvalidResources::CpuList(text.to_owned());
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (first, last),
            None => (part, part),
        };
        let first: u32 = first.trim().parse().map_err(|_| invalid())?;
        let last: u32 = last.trim().parse().map_err(|_| invalid())?;
        if first > last {
            return Err(invalid());
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

impl Resources {
    /// Checks ranges and combinations, given the number of online CPUs.
    pub fn validate(&self, online_cpus: usize) -> Result<(), InvalidResources> {
        check_range("--cpu-shares", self.cpu_shares, 2, 262_144)?;
        check_range("--cpu-weight", self.cpu_weight, 1, 10_000)?;
        check_range("--blkio-weight", self.blkio_weight, 10, 1000)?;
        check_range("--pids", self.pids, 1, i64::MAX as u64)?;
        if self.cpu_shares.is_some() && self.cpu_weight.is_some() {
            return Err(InvalidResources::SharesAndWeight);
        }
        if let Some(memory) = self.memory.filter(|&m| m < 6 << 20) {
            return Err(InvalidResources::MemoryTooSmall(memory));
        }
        self.swap_total()?;
        if let Some(quota) = self.cpu_quota {
            if quota.quota_us > online_cpus as u64 * quota.period_us {
                return Err(InvalidResources::CpusRange {
                    requested: quota.to_string(),
                    online: online_cpus,
                });
            }
        }
        if let Some(list) = &self.cpuset_cpus {
            let cpus = parse_cpu_list(list)?;
            if let Some(&cpu) = cpus.iter().find(|&&cpu| cpu as usize >= online_cpus) {
                return Err(InvalidResources::CpuNotOnline {
                    list: list.clone(),
                    cpu,
                    last: online_cpus.saturating_sub(1),
                });
            }
        }
        Ok(())
    }

    /// Memory plus swap in bytes: `None` when memory is unlimited, `Some(None)` when swap is
    /// unlimited.
    pub fn swap_total(&self) -> Result<Option<Option<u64>>, InvalidResources> {
        match (self.memory, self.memory_swap) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(InvalidResources::SwapWithoutMemory),
            (Some(memory), None) => Ok(Some(Some(memory.saturating_mul(2)))),
            (Some(_), Some(SwapLimit::Unlimited)) => Ok(Some(None)),
            (Some(memory), Some(SwapLimit::Total(swap))) if swap < memory => {
                Err(InvalidResources::SwapBelowMemory { swap, memory })
            }
            (Some(_), Some(SwapLimit::Total(swap))) => Ok(Some(Some(swap))),
        }
    }

    /// Returns the CPU weight on the v2 scale, from `--cpu-weight` or converted from `--cpu-shares`.
    pub fn v2_cpu_weight(&self) -> Option<u64> {
        self.cpu_weight
            .or_else(|| self.cpu_shares.map(shares_to_weight))
    }

    /// Returns the CPU shares on the v1 scale, from `--cpu-shares` or converted from `--cpu-weight`.
    pub fn v1_cpu_shares(&self) -> Option<u64> {
        self.cpu_shares
            .or_else(|| self.cpu_weight.map(weight_to_shares))
    }
}

fn check_range(
    option: &'static str,
    value: Option<u64>,
    min: u64,
    max: u64,
) -> Result<(), InvalidResources> {
    match value {
        Some(value) if value < min || value > max => Err(InvalidResources::Range {
            option,
            value,
            min,
            max,
        }),
        _ => Ok(()),
    }
}

/// Maps v1 shares (2–262144) linearly onto v2 weights (1–10000), as runc does, so that the
/// default 1024 shares become weight 39 and the extremes meet.
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// Converts a v2 CPU weight to v1 shares, the inverse of [`shares_to_weight`].
pub fn weight_to_shares(weight: u64) -> u64 {
    2 + (weight.clamp(1, 10_000) - 1) * 262_142 / 9999
}

/// Maps a block-I/O weight (10–1000) onto the v2 `io.weight` scale (1–10000), as runc does.
pub fn blkio_to_io_weight(weight: u64) -> u64 {
    1 + (weight.clamp(10, 1000) - 10) * 9999 / 990
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_parsing_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("1024", Some(1024)),
            ("32m", Some(32 << 20)),
            ("32M", Some(32 << 20)),
            ("32mb", Some(32 << 20)),
            ("32MiB", Some(32 << 20)),
            ("1.5g", Some(3 << 29)),
            ("512k", Some(512 << 10)),
            ("10b", Some(10)),
            ("2t", Some(2 << 40)),
            ("", None),
            ("m", None),
            ("12x", None),
            ("-5m", None),
            ("3mbb", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_size(text).ok(), *expected, "{text:?}");
        }
    }

    #[test]
    fn cpus_become_quota_over_period() {
        let quota: CpuQuota = "0.2".parse().unwrap();
        assert_eq!(quota.quota_us, 20_000);
        assert_eq!(quota.period_us, 100_000);
        assert_eq!("1.5".parse::<CpuQuota>().unwrap().quota_us, 150_000);
        assert!("0".parse::<CpuQuota>().is_err());
        assert!("two".parse::<CpuQuota>().is_err());
    }

    #[test]
    fn cpu_list_parsing_table() {
        let cases: &[(&str, Option<&[u32]>)] = &[
            ("0", Some(&[0])),
            ("0-2,4", Some(&[0, 1, 2, 4])),
            ("3,1,1", Some(&[1, 3])),
            ("2-1", None),
            ("a", None),
            ("1,", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_cpu_list(text).ok().as_deref(), *expected, "{text:?}");
        }
    }

    #[test]
    fn swap_total_follows_docker() {
        let with = |memory, memory_swap| Resources {
            memory,
            memory_swap,
            ..Resources::default()
        };
        let mib = 1 << 20;
        assert_eq!(with(None, None).swap_total(), Ok(None));
        assert_eq!(
            with(Some(32 * mib), None).swap_total(),
            Ok(Some(Some(64 * mib)))
        );
        let unlimited = with(Some(32 * mib), Some(SwapLimit::Unlimited));
        assert_eq!(unlimited.swap_total(), Ok(Some(None)));
        let equal = with(Some(32 * mib), Some(SwapLimit::Total(32 * mib)));
        assert_eq!(equal.swap_total(), Ok(Some(Some(32 * mib))));
        let below = with(Some(32 * mib), Some(SwapLimit::Total(mib)));
        assert!(below.swap_total().is_err());
        assert!(with(None, Some(SwapLimit::Unlimited)).swap_total().is_err());
    }

    #[test]
    fn validation_rejects_out_of_range() {
        let cases = [
            Resources {
                cpu_shares: Some(1),
                ..Resources::default()
            },
            Resources {
                cpu_weight: Some(10_001),
                ..Resources::default()
            },
            Resources {
                blkio_weight: Some(5),
                ..Resources::default()
            },
            Resources {
                pids: Some(0),
                ..Resources::default()
            },
            Resources {
                memory: Some(1 << 20),
                ..Resources::default()
            },
            Resources {
                cpu_quota: Some("3".parse().unwrap()),
                ..Resources::default()
            },
            Resources {
                cpuset_cpus: Some("0-2".to_owned()),
                ..Resources::default()
            },
            Resources {
                cpu_shares: Some(512),
                cpu_weight: Some(100),
                ..Resources::default()
            },
        ];
        for resources in cases {
            assert!(resources.validate(2).is_err(), "{resources:?}");
        }
        let fine = Resources {
            memory: Some(32 << 20),
            cpu_quota: Some("0.5".parse().unwrap()),
            cpuset_cpus: Some("0-1".to_owned()),
            pids: Some(10),
            cpu_shares: Some(512),
            blkio_weight: Some(500),
            ..Resources::default()
        };
        assert_eq!(fine.validate(2), Ok(()));
    }

    #[test]
    fn weight_conversions_match_endpoints() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10_000), 262_144);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }
}
