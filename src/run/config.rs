//! The `[run]` section of the configuration file:
//!
//! ```toml
//! [run]
//! cgroup_version = "auto"   # "1" or "2" to choose a hierarchy on a hybrid machine
//! cgroup_parent = "layerfs" # containers get <cgroup_parent>/<id> in each hierarchy
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use super::cgroups::Preference;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub cgroup_version: Preference,
    pub cgroup_parent: PathBuf,
}

impl Default for RunConfig {
    fn default() -> RunConfig {
        RunConfig {
            cgroup_version: Preference::Auto,
            cgroup_parent: PathBuf::from("layerfs"),
        }
    }
}
