//! `drbd.conf` (DRBD 8.3 and 8.4 syntax) for hbd's replicated device.
//!
//! [`parse`] does no I/O: it takes the file's path (for messages) and text and
//! returns the model, every error at once (`file:line: key: message`, like
//! the rest of [`crate::config`]) and warnings for settings that are accepted
//! but have no effect in hbd.
//!
//! Nothing is silently ignored: an option or section hbd does not implement is
//! an error unless it is a pure tuning knob (then a warning). Sections
//! inherit `common` → `resource` → `on`. The syntax (`;`, `{ }`, `#`,
//! `"strings"`) is read by `config::syntax`, shared with `keepalived.conf`.
//!
//! This file holds the model and [`parse`]'s top level (`global`, `common`,
//! each resource and its hosts, the checks across resources); `parse.rs`
//! reads a section's statements.

mod parse;
#[cfg(test)]
mod tests;

pub use super::uuid::{AfterSb0, AfterSb1, AfterSb2};
pub use parse::{parse_rate, RateError};

use crate::config::syntax::{self, Stmt, Word};
use crate::config::{ConfigError, ConfigWarning, Location};
use parse::{DrbdParser, Level, Sect};
use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A whole `drbd.conf`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DrbdConf {
    /// The resources, in file order.
    pub resources: Vec<ResourceConf>,
}

/// The replication protocol. Only C: a write completes when both nodes have
/// it. `protocol A` and `protocol B` are configuration errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    C,
}

/// `on-io-error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnIoError {
    /// `detach` (default): drop the local disk, continue diskless from the peer.
    #[default]
    Detach,
    /// `pass_on`: report the error to the upper layer.
    PassOn,
    /// `call-local-io-error`: run the `local-io-error` handler.
    CallLocalIoError,
}

/// `fencing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fencing {
    #[default]
    DontCare,
    ResourceOnly,
    ResourceAndStonith,
}

/// Where the metadata lives. Only `internal` (external and flexible
/// meta-disks are errors for now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetaDisk {
    #[default]
    Internal,
}

/// One `resource NAME { ... }`, with `common` folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceConf {
    pub name: String,
    pub protocol: Protocol,
    /// Resync rate in bytes per second (`rate 10M` = 10 MiB/s; no unit = KiB/s).
    pub resync_rate: Option<u64>,
    /// `startup { wfc-timeout }`; zero means wait forever (as DRBD).
    pub wfc_timeout: Option<Duration>,
    /// `startup { degr-wfc-timeout }`; zero means wait forever (as DRBD).
    pub degr_wfc_timeout: Option<Duration>,
    pub on_io_error: OnIoError,
    /// `net { timeout }`: how long the peer may take to answer a request
    /// (DRBD's unit: tenths of a second; default 60 = 6 s).
    pub timeout: Duration,
    /// `net { ko-count }`: a peer that leaves a write or flush unanswered for
    /// `timeout` × `ko-count` is dropped; 0 never drops it (default 7).
    pub ko_count: u32,
    pub fencing: Fencing,
    pub after_sb_0pri: AfterSb0,
    pub after_sb_1pri: AfterSb1,
    pub after_sb_2pri: AfterSb2,
    pub shared_secret: Option<String>,
    /// `net { tls yes|no; }` (DRBD 9.2's keyword): seal every replication
    /// frame after the handshake. hbd's default is yes (DRBD's is no); both
    /// nodes must agree.
    pub tls: bool,
    /// Where `shared-secret` was set (its file must be private, see
    /// `config::load`).
    pub shared_secret_at: Option<Location>,
    /// `handlers { name "command"; }`, common's overridden by the resource's.
    pub handlers: BTreeMap<String, String>,
    /// The `on` hosts that have device, disk and address (two when valid).
    pub hosts: Vec<HostConf>,
    /// The `resource` line.
    pub at: Location,
}

/// One `on HOST { ... }`, with the resource's device/disk/meta-disk folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConf {
    pub name: String,
    pub device: PathBuf,
    /// Given with `device ... minor N;` or `device minor N;` (then the device
    /// is `/dev/drbdN`); `None` for a bare `device /dev/drbdN;`.
    pub minor: Option<u32>,
    pub disk: PathBuf,
    pub address: SocketAddrV4,
    pub meta_disk: MetaDisk,
    /// The `on` line.
    pub at: Location,
}

impl DrbdConf {
    pub fn resource(&self, name: &str) -> Option<&ResourceConf> {
        self.resources.iter().find(|r| r.name == name)
    }
}

impl ResourceConf {
    /// This node's `on` section.
    pub fn host(&self, node: &str) -> Option<&HostConf> {
        self.hosts.iter().find(|h| h.name == node)
    }

    /// The other node's `on` section, if `node` is one of the hosts.
    pub fn peer(&self, node: &str) -> Option<&HostConf> {
        self.host(node)?;
        self.hosts.iter().find(|h| h.name != node)
    }
}

/// DRBD 8.4's `timeout` default (drbd_limits.h: 60 tenths of a second) and range.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(6000);
const TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 1..=600;
/// DRBD 8.4's `ko-count` default and range.
pub const DEFAULT_KO_COUNT: u32 = 7;
const KO_COUNT_RANGE: std::ops::RangeInclusive<u32> = 0..=200;

/// Parses `drbd.conf` text; `path` is only used in messages and locations.
pub fn parse(path: &Path, text: &str) -> (DrbdConf, Vec<ConfigError>, Vec<ConfigWarning>) {
    let mut p = DrbdParser::new(path, &syntax::DRBD);
    let stmts = p.statements(text);

    let mut common = Sect::default();
    let mut seen_global: Option<usize> = None;
    let mut seen_common: Option<usize> = None;
    let mut resources: Vec<(&Stmt, &Word, &[Stmt])> = Vec::new();
    for st in &stmts {
        let key = st.key();
        match key.text.as_str() {
            k @ ("global" | "common") => {
                let seen = if k == "global" {
                    &mut seen_global
                } else {
                    &mut seen_common
                };
                if let Some(first) = *seen {
                    let msg = format!("given twice (first on line {first})");
                    p.err(key.line, k, msg);
                    continue;
                }
                *seen = Some(key.line);
                if let Some((_, block)) = p.section(st, 0) {
                    let level = if k == "global" {
                        Level::Global
                    } else {
                        Level::Common
                    };
                    p.body(block, level, &mut common, &mut Vec::new());
                }
            }
            "resource" => {
                if let Some((names, block)) = p.section(st, 1) {
                    resources.push((st, &names[0], block));
                }
            }
            _ => p.unsupported(key),
        }
    }

    let mut conf = DrbdConf::default();
    // (host, device/disk/address) → (resource, line) for cross-resource checks.
    let mut used: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
    for (st, name, block) in resources {
        let line = st.key().line;
        if let Some(r) = conf.resource(&name.text) {
            let msg = format!(
                "resource `{}` defined twice (first on line {})",
                name.text, r.at.line
            );
            p.err(line, "resource", msg);
            continue;
        }
        let mut own = Sect::default();
        let mut ons = Vec::new();
        p.body(block, Level::Resource, &mut own, &mut ons);
        let rs = own.over(&common);
        let mut hosts: Vec<HostConf> = Vec::new();
        let mut host_names: BTreeMap<String, usize> = BTreeMap::new();
        for on in &ons {
            let hname = &on.words[1];
            let on_line = on.key().line;
            if let Some(first) = host_names.get(&hname.text) {
                let msg = format!("host `{}` given twice (first on line {first})", hname.text);
                p.err(on_line, "on", msg);
                continue;
            }
            host_names.insert(hname.text.clone(), on_line);
            let mut hs = Sect::default();
            p.body(
                on.block.as_deref().unwrap_or(&[]),
                Level::Host,
                &mut hs,
                &mut Vec::new(),
            );
            let hs = hs.over(&rs);
            let mut missing = Vec::new();
            if hs.device.is_none() {
                missing.push("device");
            }
            if hs.disk.is_none() {
                missing.push("disk");
            }
            if hs.address.is_none() {
                missing.push("address");
            }
            if !missing.is_empty() {
                let msg = format!("host `{}` has no {}", hname.text, missing.join(", "));
                p.err(on_line, "on", msg);
                continue;
            }
            let ((device, minor), dev_line) = hs.device.unwrap();
            let (disk, disk_line) = hs.disk.unwrap();
            let (address, addr_line) = hs.address.unwrap();
            for (what, val, vline) in [
                ("device", device.display().to_string(), dev_line),
                ("disk", disk.display().to_string(), disk_line),
                ("address", address.to_string(), addr_line),
            ] {
                let k = if what == "address" {
                    (String::new(), val.clone())
                } else {
                    (hname.text.clone(), format!("{what} {val}"))
                };
                if let Some((other, oline)) = used.get(&k) {
                    let msg =
                        format!("`{val}` is already used by resource `{other}` (line {oline})");
                    p.err(vline, what, msg);
                } else {
                    used.insert(k, (name.text.clone(), vline));
                }
            }
            hosts.push(HostConf {
                name: hname.text.clone(),
                device,
                minor,
                disk,
                address,
                meta_disk: hs.meta_disk.map(|m| m.0).unwrap_or_default(),
                at: p.at(on_line),
            });
        }
        if ons.len() != 2 {
            let msg = format!(
                "resource `{}` needs exactly two `on` hosts, found {}",
                name.text,
                ons.len()
            );
            p.err(line, "resource", msg);
        }
        conf.resources.push(ResourceConf {
            name: name.text.clone(),
            protocol: rs.protocol.map(|v| v.0).unwrap_or_default(),
            resync_rate: rs.rate.map(|v| v.0),
            wfc_timeout: rs.wfc.map(|v| v.0),
            degr_wfc_timeout: rs.degr.map(|v| v.0),
            on_io_error: rs.on_io_error.map(|v| v.0).unwrap_or_default(),
            timeout: rs.timeout.map_or(DEFAULT_TIMEOUT, |v| v.0),
            ko_count: rs.ko_count.map_or(DEFAULT_KO_COUNT, |v| v.0),
            fencing: rs.fencing.map(|v| v.0).unwrap_or_default(),
            after_sb_0pri: rs.sb0.map(|v| v.0).unwrap_or_default(),
            after_sb_1pri: rs.sb1.map(|v| v.0).unwrap_or_default(),
            after_sb_2pri: rs.sb2.map(|v| v.0).unwrap_or_default(),
            tls: rs.tls.is_none_or(|v| v.0),
            shared_secret_at: rs.secret.as_ref().map(|v| p.at(v.1)),
            shared_secret: rs.secret.map(|v| v.0),
            handlers: rs.handlers.into_iter().map(|(k, v)| (k, v.0)).collect(),
            hosts,
            at: p.at(line),
        });
    }
    (conf, p.errors, p.warnings)
}
