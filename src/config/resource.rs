//! One resource resolved outside the daemon (`hbctl resource`, heartbeat's
//! ResourceManager): the agent and settings hbd would run it with.

use super::{agent_lookup, parse_cluster_toml, resource_options, ClusterToml, ConfigErrors};
use crate::agents::{self, Resource};
use std::path::Path;

/// Why a resource could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// cluster.toml is invalid (one error a line).
    #[error("{0}")]
    Config(ConfigErrors),
    /// No agent runs the resource; the message says what was looked for.
    #[error("{spec}: {message}")]
    Agent { spec: String, message: String },
}

/// `spec`, as written in haresources, resolved as the daemon would with
/// `dir`'s resource.d and its cluster.toml (optional).
pub fn load_resource(dir: &Path, spec: &str) -> Result<Resource, ResourceError> {
    let path = dir.join("cluster.toml");
    let cluster = match std::fs::read(&path) {
        Ok(bytes) => {
            // Comments in any encoding, as every configuration file.
            let (text, mut errors) =
                super::text::decode(&path, &bytes, super::text::Comments::Hash);
            let (c, mut e) = parse_cluster_toml(&path, &text);
            errors.append(&mut e);
            if !errors.is_empty() {
                return Err(ResourceError::Config(ConfigErrors(errors)));
            }
            c
        }
        Err(_) => ClusterToml::default(),
    };
    let lookup = agent_lookup(dir, &cluster);
    let kind = agents::resolve(spec, &lookup).map_err(|message| ResourceError::Agent {
        spec: spec.to_string(),
        message: message.to_string(),
    })?;
    let options = resource_options(&cluster, spec);
    Ok(Resource {
        spec: spec.to_string(),
        kind,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_with_cluster_toml() {
        let d = tempfile::tempdir().unwrap();
        let spec = "IPaddr2::192.0.2.100/24/eth0";
        let r = load_resource(d.path(), spec).unwrap();
        assert_eq!(r.spec, spec);
        assert!(matches!(r.kind, agents::AgentKind::IpAddr(_)), "{r:?}");
        assert_eq!(r.options, resource_options(&ClusterToml::default(), spec));
        let e = load_resource(d.path(), "").unwrap_err();
        assert!(matches!(e, ResourceError::Agent { .. }), "{e:?}");
        assert_eq!(e.to_string(), ": empty resource name");
        std::fs::write(d.path().join("cluster.toml"), "[nosuch]\n").unwrap();
        let e = load_resource(d.path(), spec).unwrap_err();
        assert!(matches!(e, ResourceError::Config(_)), "{e:?}");
        assert!(e.to_string().contains("cluster.toml:1"), "{e}");
    }
}
