//! Platforms as `os/architecture[/variant]`, normalized the way containerd's `platforms`
//! package does, so that `linux/arm64` and `linux/arm64/v8` name the same thing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An operating system and CPU architecture, with an optional CPU variant.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// Why a string is not a valid `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/architecture[/variant], e.g. linux/arm64/v8")]
pub struct PlatformParseError(String);

impl Platform {
    /// Builds a platform, normalizing architecture aliases (`x86_64` → `amd64`,
    /// `aarch64` → `arm64`) and the default variants of arm (`v7`) and arm64 (`v8`).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = os.to_ascii_lowercase();
        let (architecture, default_variant) = match architecture.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" | "amd64" => ("amd64".to_owned(), None),
            "aarch64" | "arm64" => ("arm64".to_owned(), Some("v8")),
            "armhf" | "arm" => ("arm".to_owned(), Some("v7")),
            "armel" => ("arm".to_owned(), Some("v6")),
            "i386" | "i686" | "386" => ("386".to_owned(), None),
            other => (other.to_owned(), None),
        };
        let variant = variant
            .filter(|v| !v.is_empty())
            .map(str::to_ascii_lowercase)
            .or(default_variant.map(str::to_owned));
        Platform {
            os,
            architecture,
            variant,
        }
    }

    /// The platform this binary was built for, which is the one it runs on.
    pub fn host() -> Platform {
        Platform::new(std::env::consts::OS, std::env::consts::ARCH, None)
    }

    /// Whether an index entry for `candidate` can run where `self` was requested. A request
    /// without a variant accepts any variant of its architecture.
    pub fn matches(&self, candidate: &Platform) -> bool {
        let candidate = Platform::new(
            &candidate.os,
            &candidate.architecture,
            candidate.variant.as_deref(),
        );
        let variant_ok = match (&self.variant, &candidate.variant) {
            (None, _) => true,
            (Some(wanted), Some(offered)) => wanted == offered,
            (Some(_), None) => false,
        };
        self.os == candidate.os && self.architecture == candidate.architecture && variant_ok
    }
}

impl FromStr for Platform {
    type Err = PlatformParseError;

    fn from_str(text: &str) -> Result<Platform, PlatformParseError> {
        let parts: Vec<&str> = text.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(PlatformParseError(text.to_owned()));
        }
        match parts.as_slice() {
            [os, architecture] => Ok(Platform::new(os, architecture, None)),
            [os, architecture, variant] => Ok(Platform::new(os, architecture, Some(variant))),
            _ => Err(PlatformParseError(text.to_owned())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(text: &str) -> Platform {
        text.parse().unwrap()
    }

    #[test]
    fn platform_parse_table() {
        let cases: &[(&str, &str)] = &[
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/arm64", "linux/arm64/v8"),
            ("linux/aarch64", "linux/arm64/v8"),
            ("linux/arm64/v8", "linux/arm64/v8"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("Linux/AMD64", "linux/amd64"),
            ("windows/amd64", "windows/amd64"),
        ];
        for (input, expected) in cases {
            assert_eq!(platform(input).to_string(), *expected, "input {input:?}");
        }
    }

    #[test]
    fn platform_rejects_malformed() {
        for input in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/arm/v7/x",
            "linux//v7",
        ] {
            assert!(input.parse::<Platform>().is_err(), "input {input:?} parsed");
        }
    }

    #[test]
    fn platform_matching_table() {
        let cases: &[(&str, Platform, bool)] = &[
            ("linux/amd64", Platform::new("linux", "amd64", None), true),
            (
                "linux/amd64",
                Platform::new("linux", "amd64", Some("v3")),
                true,
            ),
            (
                "linux/amd64",
                Platform::new("linux", "arm64", Some("v8")),
                false,
            ),
            ("linux/arm64", Platform::new("linux", "arm64", None), true),
            (
                "linux/arm64/v8",
                Platform::new("linux", "arm64", None),
                true,
            ),
            (
                "linux/arm/v7",
                Platform::new("linux", "arm", Some("v6")),
                false,
            ),
            (
                "linux/amd64",
                Platform::new("windows", "amd64", None),
                false,
            ),
            (
                "linux/amd64",
                Platform::new("unknown", "unknown", None),
                false,
            ),
        ];
        for (wanted, candidate, expected) in cases {
            let result = platform(wanted).matches(candidate);
            assert_eq!(result, *expected, "{wanted} against {candidate}");
        }
    }

    #[test]
    fn host_platform_is_normalized() {
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        assert_ne!(host.architecture, "x86_64");
        assert_ne!(host.architecture, "aarch64");
    }
}
