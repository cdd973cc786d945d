//! The image configuration blob: the diff IDs that verify unpacked layers, and the process
//! settings (`Env`, `Entrypoint`, `Cmd`, `WorkingDir`, `User`) that `run` honours.

use layerfs_registry::{Digest, Platform};
use oci_spec::image::ImageConfiguration;

#[derive(Debug, thiserror::Error)]
#[error("image config {digest} is invalid: {reason}")]
pub struct InvalidConfig {
    pub digest: Digest,
    pub reason: String,
}

/// A parsed image configuration (OCI, or Docker's, which has the same fields).
#[derive(Debug, Clone)]
pub struct ImageConfig {
    inner: ImageConfiguration,
    digest: Digest,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8], digest: &Digest) -> Result<ImageConfig, InvalidConfig> {
        let inner: ImageConfiguration =
            serde_json::from_slice(bytes).map_err(|error| InvalidConfig {
                digest: digest.clone(),
                reason: error.to_string(),
            })?;
        Ok(ImageConfig {
            inner,
            digest: digest.clone(),
        })
    }

    /// The digests of the uncompressed layers, bottom first.
    pub fn diff_ids(&self) -> Result<Vec<Digest>, InvalidConfig> {
        let rootfs = self.inner.rootfs();
        if rootfs.typ() != "layers" {
            return Err(self.invalid(format!(
                "rootfs type is {:?}, expected \"layers\"",
                rootfs.typ()
            )));
        }
        rootfs
            .diff_ids()
            .iter()
            .map(|text| {
                text.parse()
                    .map_err(|error| self.invalid(format!("{error}")))
            })
            .collect()
    }

    pub fn platform(&self) -> Platform {
        Platform::new(
            &self.inner.os().to_string(),
            &self.inner.architecture().to_string(),
            self.inner.variant().as_deref(),
        )
    }

    pub fn created(&self) -> Option<&str> {
        self.inner.created().as_deref()
    }

    pub fn env(&self) -> Vec<String> {
        self.process_field(|c| c.env().clone())
    }

    pub fn entrypoint(&self) -> Vec<String> {
        self.process_field(|c| c.entrypoint().clone())
    }

    pub fn cmd(&self) -> Vec<String> {
        self.process_field(|c| c.cmd().clone())
    }

    pub fn working_dir(&self) -> Option<String> {
        self.inner
            .config()
            .as_ref()
            .and_then(|c| c.working_dir().clone())
            .filter(|dir| !dir.is_empty())
    }

    pub fn user(&self) -> Option<String> {
        self.inner
            .config()
            .as_ref()
            .and_then(|c| c.user().clone())
            .filter(|user| !user.is_empty())
    }

    /// The configuration as JSON, for `inspect`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.inner).expect("image configs serialize")
    }

    fn process_field(
        &self,
        field: impl Fn(&oci_spec::image::Config) -> Option<Vec<String>>,
    ) -> Vec<String> {
        self.inner
            .config()
            .as_ref()
            .and_then(field)
            .unwrap_or_default()
    }

    fn invalid(&self, reason: String) -> InvalidConfig {
        InvalidConfig {
            digest: self.digest.clone(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF_ID: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn config(json: &str) -> Result<ImageConfig, InvalidConfig> {
        ImageConfig::parse(json.as_bytes(), &Digest::of(json.as_bytes()))
    }

    #[test]
    fn image_config_fields() {
        let json = format!(
            r#"{{"architecture":"arm64","variant":"v8","os":"linux",
            "config":{{"Env":["PATH=/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/srv","User":"1000:1000"}},
            "rootfs":{{"type":"layers","diff_ids":["{DIFF_ID}"]}}}}"#
        );
        let config = config(&json).unwrap();
        assert_eq!(config.platform().to_string(), "linux/arm64/v8");
        assert_eq!(config.env(), ["PATH=/bin"]);
        assert_eq!(config.cmd(), ["/bin/sh"]);
        assert!(config.entrypoint().is_empty());
        assert_eq!(config.working_dir().as_deref(), Some("/srv"));
        assert_eq!(config.user().as_deref(), Some("1000:1000"));
        assert_eq!(config.diff_ids().unwrap()[0].to_string(), DIFF_ID);
    }

    #[test]
    fn image_config_rejects_bad_diff_ids() {
        let json = r#"{"architecture":"amd64","os":"linux",
            "rootfs":{"type":"layers","diff_ids":["sha256:abc"]}}"#;
        let error = config(json).unwrap().diff_ids().unwrap_err();
        assert!(error.to_string().contains("sha256:abc"), "{error}");
    }
}
