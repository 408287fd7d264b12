//! What a device process (`hbd-disk`) reads of the configuration directory:
//! drbd.conf, cluster.toml (for `[disk] drbd_conf` and `[notify]`), authkeys
//! (the link's key when a resource has no `shared-secret`) and ha.cf's
//! `respawn` lines (dopd). Nothing else: an error in a file only hbd reads
//! (haresources, keepalived.conf, a `[[check]]`) is for hbd to refuse, and
//! must not keep the disk under a running database from starting or from
//! reloading.

use super::{
    check::notify_of, cluster_toml, drbd_conf_path, hacf, read, read_authkeys, read_drbd,
    ConfigError, ConfigErrors, NotifyConfig, Respawn,
};
use crate::disk::conf::DrbdConf;
use crate::wire::AuthKeys;
use std::path::{Path, PathBuf};

/// The device process's part of the configuration.
#[derive(Debug, Clone)]
pub struct DeviceFiles {
    /// drbd.conf, checked as `hbctl check` checks it.
    pub drbd: DrbdConf,
    /// Where it was read from.
    pub drbd_conf: PathBuf,
    /// authkeys, when the directory has one.
    pub authkeys: Option<AuthKeys>,
    /// cluster.toml's `[notify]` hook.
    pub notify: Option<NotifyConfig>,
    /// ha.cf's `respawn` lines (none without an ha.cf).
    pub respawn: Vec<Respawn>,
}

/// Reads the device process's files in `dir` for `node`; errors name
/// `file:line` and the key, as [`super::load`]'s do.
pub fn load_device(dir: &Path, node: &str) -> Result<DeviceFiles, ConfigErrors> {
    let mut errors = Vec::new();
    // Warnings are `hbctl check`'s and hbd's to print.
    let mut warnings = Vec::new();
    let toml_path = dir.join("cluster.toml");
    let cluster = read(&toml_path, "", &mut errors)
        .map(|text| {
            let (c, mut e) = cluster_toml::parse(&toml_path, &text);
            errors.append(&mut e);
            c
        })
        .unwrap_or_default();
    let drbd_conf = drbd_conf_path(dir, &cluster);
    let drbd = read_drbd(
        &drbd_conf,
        "the replicated disks' resources",
        &node.to_lowercase(),
        false,
        &mut errors,
        &mut warnings,
    );
    let authkeys = read_authkeys(&dir.join("authkeys"), "", &mut errors, &mut warnings);
    // Only the respawn lines matter here; ha.cf's own errors are hbd's.
    let hacf_path = dir.join("ha.cf");
    let respawn = std::fs::read(&hacf_path)
        .map(|bytes| {
            let text = String::from_utf8_lossy(&bytes);
            hacf::parse_full(&hacf_path, &text).ha.respawn
        })
        .unwrap_or_default();
    errors.sort_by(|a: &ConfigError, b| (a.file(), a.line()).cmp(&(b.file(), b.line())));
    match drbd {
        Some(drbd) if errors.is_empty() => Ok(DeviceFiles {
            drbd,
            drbd_conf,
            authkeys,
            notify: notify_of(&cluster),
            respawn,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}
