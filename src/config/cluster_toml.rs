//! `cluster.toml`: hbd's own settings, for what heartbeat's files cannot say.
//! Unknown keys are errors (`deny_unknown_fields`).

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterToml {
    #[serde(default)]
    pub cluster: ClusterSection,
    #[serde(default)]
    pub control: ControlSection,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Carried in every datagram; traffic of another cluster name is dropped.
    #[serde(default = "default_cluster_name")]
    pub name: String,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            name: default_cluster_name(),
        }
    }
}

fn default_cluster_name() -> String {
    "hbd".to_string()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// Members of this group may use the control socket besides root
    /// (heartbeat's `haclient`).
    #[serde(default)]
    pub group: Option<String>,
}
