//! Where to reach each registry: its mirrors, tried in order, then its own endpoint.
//!
//! The model is containerd's `hosts.toml`: mirrors may serve any registry host, and `server`
//! replaces the endpoint of the registry itself. As in Docker, `localhost` and 127.0.0.0/8
//! are reached over plain HTTP unless an endpoint says otherwise.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::error::Error;

/// The endpoint Docker Hub (`docker.io`) is served from.
const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";

/// A registry's base address: scheme and `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub plain_http: bool,
    pub host: String,
}

impl Endpoint {
    /// The default endpoint for a registry named in a reference.
    pub fn for_registry(registry: &str) -> Endpoint {
        let host = if registry == "docker.io" {
            DOCKER_HUB_ENDPOINT
        } else {
            registry
        };
        Endpoint {
            plain_http: is_loopback(host),
            host: host.to_owned(),
        }
    }
}

/// Whether `host[:port]` names this machine: `localhost` or an address in 127.0.0.0/8 or ::1.
fn is_loopback(host: &str) -> bool {
    let name = strip_port(host);
    if name == "localhost" {
        return true;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    /// Parses `http://host[:port]`, `https://host[:port]` or a bare `host[:port]`.
    fn from_str(text: &str) -> Result<Endpoint, Error> {
        let invalid = |reason: &str| Error::InvalidEndpoint {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (plain_http, rest) = if let Some(rest) = text.strip_prefix("http://") {
            (Some(true), rest)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (Some(false), rest)
        } else if text.contains("://") {
            return Err(invalid("the scheme must be http or https"));
        } else {
            (None, text)
        };
        let host = rest.trim_end_matches('/');
        if host.is_empty() {
            return Err(invalid("the host is missing"));
        }
        if host.contains('/') {
            return Err(invalid("a path after the host is not supported"));
        }
        Ok(Endpoint {
            plain_http: plain_http.unwrap_or_else(|| is_loopback(host)),
            host: host.to_owned(),
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.plain_http { "http" } else { "https" };
        write!(f, "{scheme}://{}", self.host)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Endpoint, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Settings for one registry host, the `[registry."HOST"]` table of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Tried in order before the registry's own endpoint.
    #[serde(default)]
    pub mirrors: Vec<Endpoint>,
    /// Replaces the registry's own endpoint (for Docker Hub, `https://registry-1.docker.io`).
    pub server: Option<Endpoint>,
}

/// Host settings keyed by the registry name as references spell it (`docker.io`, `ghcr.io`,
/// `localhost:5000`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct HostsConfig(pub IndexMap<String, HostConfig>);

impl HostsConfig {
    /// The endpoints to try for `registry`, in order: mirrors first, then the registry itself.
    pub fn endpoints(&self, registry: &str) -> Vec<Endpoint> {
        let config = self.0.get(registry);
        let mut endpoints: Vec<Endpoint> = config.map(|c| c.mirrors.clone()).unwrap_or_default();
        let server = config.and_then(|c| c.server.clone());
        endpoints.push(server.unwrap_or_else(|| Endpoint::for_registry(registry)));
        endpoints.dedup();
        endpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_parse_table() {
        let cases: &[(&str, &str)] = &[
            ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
            ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
            ("https://mirror.example", "https://mirror.example"),
            ("mirror.example:443", "https://mirror.example:443"),
            ("localhost:5000", "http://localhost:5000"),
            ("127.1.2.3", "http://127.1.2.3"),
            ("[::1]:5000", "http://[::1]:5000"),
            ("https://localhost:5000", "https://localhost:5000"),
        ];
        for (input, expected) in cases {
            let endpoint: Endpoint = input.parse().unwrap();
            assert_eq!(endpoint.to_string(), *expected, "input {input:?}");
        }
    }

    #[test]
    fn endpoint_rejects_malformed() {
        for input in ["", "http://", "ftp://x", "http://x/v2/path"] {
            assert!(input.parse::<Endpoint>().is_err(), "input {input:?} parsed");
        }
    }

    #[test]
    fn default_endpoints() {
        let hosts = HostsConfig::default();
        let docker = hosts.endpoints("docker.io");
        assert_eq!(
            docker,
            vec!["https://registry-1.docker.io".parse().unwrap()]
        );
        let local = hosts.endpoints("localhost:5000");
        assert_eq!(local, vec!["http://localhost:5000".parse().unwrap()]);
        let remote = hosts.endpoints("10.0.0.1:5000");
        assert_eq!(remote, vec!["https://10.0.0.1:5000".parse().unwrap()]);
    }

    #[test]
    fn mirrors_come_before_server() {
        let json = r#"{
            "docker.io": {
                "mirrors": ["http://127.0.0.1:5000", "https://mirror.example"],
                "server": "http://127.0.0.1:6000"
            }
        }"#;
        let hosts: HostsConfig = serde_json::from_str(json).unwrap();
        let endpoints: Vec<String> = hosts
            .endpoints("docker.io")
            .iter()
            .map(Endpoint::to_string)
            .collect();
        let expected = [
            "http://127.0.0.1:5000",
            "https://mirror.example",
            "http://127.0.0.1:6000",
        ];
        assert_eq!(endpoints, expected);
    }

    #[test]
    fn host_config_rejects_unknown_keys() {
        let json = r#"{"docker.io": {"mirror": ["http://127.0.0.1:5000"]}}"#;
        assert!(serde_json::from_str::<HostsConfig>(json).is_err());
    }
}
