//! [`DeviceConfig`]: everything the device needs from the configuration,
//! loaded as hbd loads it, and what it derives from it (link security, the
//! handlers' environment, the state machine's settings, addresses).

use super::*;

/// Why [`DeviceConfig::load`] gives no configuration; `hbd-disk` prints it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The configuration does not load (one error a line).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigErrors),
    #[error("no resource {res} (resources: {})", names.join(", "))]
    NoResource { res: String, names: Vec<String> },
    #[error("{res}: no `on {node}` section")]
    NoHost { res: String, node: String },
    #[error("{res}: no `on` section for a peer of {node}")]
    NoPeer { res: String, node: String },
    /// No `shared-secret` in drbd.conf and no authkeys in `dir`.
    #[error(
        "{res}: the replication link needs a key: set `net {{ shared-secret \"...\"; }}` \
         in drbd.conf or give {} an authkeys",
        dir.display()
    )]
    NoKey { res: String, dir: PathBuf },
    #[error("authkeys has no active key")]
    NoActiveKey,
    /// authkeys' active key is `crc`, which has no secret.
    #[error(
        "{res}: the replication link needs a secret, and authkeys' active key \
         is `crc` (no secret): set `net {{ shared-secret \"...\"; }}` in drbd.conf \
         or use sha256 in authkeys"
    )]
    CrcKey { res: String },
}

/// Everything the device needs from the configuration.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub name: String,
    pub node: String,
    pub peer: String,
    pub config_dir: PathBuf,
    pub run_dir: PathBuf,
    pub res: ResourceConf,
    pub host: HostConf,
    pub peer_host: HostConf,
    pub key: AuthKey,
    pub notify: Option<NotifyConfig>,
    /// This node's `on` section comes first in drbd.conf: it connects, and
    /// wins ties (DRBD's lower node id).
    pub first: bool,
    /// ha.cf respawns heartbeat's dopd: with no `fence-peer` handler the
    /// built-in outdater fences the peer ([`super::super::fence::handler`]).
    pub dopd: bool,
    /// drbd.conf's path (DRBD_CONF of the handlers).
    pub drbd_conf: PathBuf,
}

impl DeviceConfig {
    /// How the replication link authenticates and seals.
    pub fn link_security(&self) -> packet::LinkSecurity {
        packet::LinkSecurity::new(self.key.clone(), self.res.tls)
    }

    /// The environment drbd.conf's handlers run with (DRBD's own).
    pub(super) fn handler_env(&self) -> Vec<(String, String)> {
        super::super::fence::HandlerEnv {
            resource: &self.name,
            peer: &self.peer,
            device: &self.host.device,
            backing: &self.host.disk,
            conf: &self.drbd_conf,
            my_address: self.host.address,
            peer_address: self.peer_host.address,
        }
        .vars()
    }

    /// Load the device's part of `dir`'s configuration
    /// ([`crate::config::load_device`]: drbd.conf, cluster.toml, authkeys,
    /// ha.cf's respawn lines) and pick resource `res`.
    pub fn load(
        dir: &Path,
        node: &str,
        run_dir: &Path,
        res: &str,
    ) -> Result<DeviceConfig, LoadError> {
        let c = crate::config::load_device(dir, node)?;
        let drbd = &c.drbd;
        let r = drbd.resource(res).ok_or_else(|| LoadError::NoResource {
            res: res.to_string(),
            names: drbd.resources.iter().map(|r| r.name.clone()).collect(),
        })?;
        let host = r.host(node).ok_or_else(|| LoadError::NoHost {
            res: res.to_string(),
            node: node.to_string(),
        })?;
        let peer_host = r.peer(node).ok_or_else(|| LoadError::NoPeer {
            res: res.to_string(),
            node: node.to_string(),
        })?;
        let key = match &r.shared_secret {
            Some(s) => AuthKey {
                id: 0,
                method: AuthMethod::Sha256,
                secret: s.as_bytes().to_vec(),
            },
            None => {
                let keys = c.authkeys.as_ref().ok_or_else(|| LoadError::NoKey {
                    res: res.to_string(),
                    dir: dir.to_path_buf(),
                })?;
                keys.keys
                    .iter()
                    .find(|k| k.id == keys.active)
                    .cloned()
                    .ok_or(LoadError::NoActiveKey)?
            }
        };
        if key.method == AuthMethod::Crc {
            return Err(LoadError::CrcKey {
                res: res.to_string(),
            });
        }
        let first = r.hosts.first().is_some_and(|h| h.name == node);
        let dopd = c
            .respawn
            .iter()
            .any(|r| super::super::fence::is_dopd(&r.command));
        let drbd_conf = c.drbd_conf.clone();
        Ok(DeviceConfig {
            name: res.to_string(),
            node: node.to_string(),
            peer: peer_host.name.clone(),
            config_dir: dir.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            res: r.clone(),
            host: host.clone(),
            peer_host: peer_host.clone(),
            key,
            notify: c.notify.clone(),
            first,
            dopd,
            drbd_conf,
        })
    }

    pub fn resync_rate(&self) -> u64 {
        self.res
            .resync_rate
            .filter(|&r| r > 0)
            .unwrap_or(DEFAULT_RESYNC_RATE)
    }

    pub(super) fn machine_config(&self) -> ResourceConfig {
        ResourceConfig {
            policy: SbPolicy {
                after_sb_0pri: self.res.after_sb_0pri,
                after_sb_1pri: self.res.after_sb_1pri,
                after_sb_2pri: self.res.after_sb_2pri,
                always_asbp: false,
            },
            i_am_lower_id: self.first,
            fencing: self.res.fencing != super::super::conf::Fencing::DontCare,
            stonith: self.res.fencing == super::super::conf::Fencing::ResourceAndStonith,
            seed: meta::random_u64(),
        }
    }

    pub(super) fn local_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.host.address)
    }
    pub(super) fn peer_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.peer_host.address)
    }
}
