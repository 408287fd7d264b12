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
    /// The `on` name, lowercased.
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
    /// Names compare ignoring case, as heartbeat's node names (which it
    /// lowercases) and `uname -n`.
    pub fn host(&self, node: &str) -> Option<&HostConf> {
        self.hosts
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(node))
    }

    /// The other node's `on` section, if `node` is one of the hosts.
    pub fn peer(&self, node: &str) -> Option<&HostConf> {
        self.host(node)?;
        self.hosts
            .iter()
            .find(|h| !h.name.eq_ignore_ascii_case(node))
    }
}

/// DRBD 8.4's `timeout` default (drbd_limits.h: 60 tenths of a second) and range.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(6000);
const TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 1..=600;
/// DRBD 8.4's `ko-count` default and range.
pub const DEFAULT_KO_COUNT: u32 = 7;
const KO_COUNT_RANGE: std::ops::RangeInclusive<u32> = 0..=200;

/// Where `include` statements find their files: [`parse`] has none (it does
/// no I/O), [`parse_files`] reads them through one, [`FsFiles`] from disk.
pub trait Files {
    /// The files a glob pattern names, in order (glob(3)); a pattern without
    /// wildcards names its path whether it exists or not.
    fn glob(&mut self, pattern: &Path) -> Vec<PathBuf>;
    /// A file's text, with the errors of its bytes that are not UTF-8
    /// outside comments; `Err` says why it cannot be read.
    fn read(&mut self, path: &Path) -> Result<(String, Vec<ConfigError>), String>;
}

/// No file can be included.
pub struct NoFiles;

impl Files for NoFiles {
    fn glob(&mut self, pattern: &Path) -> Vec<PathBuf> {
        vec![pattern.to_path_buf()]
    }
    fn read(&mut self, _: &Path) -> Result<(String, Vec<ConfigError>), String> {
        Err("includes are read only when drbd.conf is read from disk".into())
    }
}

/// The files on disk, read as [`crate::config`] reads its own (comments in
/// any encoding).
pub struct FsFiles;

impl Files for FsFiles {
    fn glob(&mut self, pattern: &Path) -> Vec<PathBuf> {
        crate::config::text::glob(pattern)
    }
    fn read(&mut self, path: &Path) -> Result<(String, Vec<ConfigError>), String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        Ok(crate::config::text::decode(
            path,
            &bytes,
            crate::config::text::Comments::Hash,
        ))
    }
}

/// drbdadm's deepest nesting of `include` (drbdadm_scanner.fl: MAX_INCLUDE_DEPTH).
const MAX_INCLUDE_DEPTH: usize = 10;

/// Parses `drbd.conf` text; `path` is only used in messages and locations.
/// An `include` is an error here: see [`parse_files`].
pub fn parse(path: &Path, text: &str) -> (DrbdConf, Vec<ConfigError>, Vec<ConfigWarning>) {
    parse_files(path, text, &mut NoFiles)
}

/// The top-level statements of `text` (the file `path`) with the files
/// its `include`s name read in their place, each with its file, as drbdadm
/// reads them (drbdadm_parser.c, include_stmt): a relative pattern is
/// relative to the including file's directory, a glob that matches nothing
/// is no error (a plain name that does not exist is), a file already read
/// is skipped; `skip { }` sections are dropped.
fn gather(
    p: &mut DrbdParser,
    files: &mut dyn Files,
    path: &Path,
    text: &str,
    depth: usize,
    seen: &mut Vec<PathBuf>,
    out: &mut Vec<(PathBuf, Stmt)>,
) {
    let outer = std::mem::replace(&mut p.file, path.to_path_buf());
    seen.push(path.canonicalize().unwrap_or_else(|_| path.to_path_buf()));
    for st in p.statements(text) {
        let key = st.key();
        match key.text.as_str() {
            "skip" => {}
            "include" => {
                let (line, k) = (key.line, key.text.clone());
                let [pat] = &st.words[1..] else {
                    p.err(line, &k, "expected `include \"PATTERN\";`".into());
                    continue;
                };
                if st.block.is_some() {
                    p.err(line, &k, "expected `include \"PATTERN\";`".into());
                    continue;
                }
                if depth >= MAX_INCLUDE_DEPTH {
                    let msg = format!("includes nested deeper than {MAX_INCLUDE_DEPTH}");
                    p.err(line, &k, msg);
                    continue;
                }
                let pattern = path.parent().unwrap_or(Path::new("")).join(&pat.text);
                let wild = crate::config::text::has_wildcards(&pat.text);
                for f in files.glob(&pattern) {
                    let canon = f.canonicalize().unwrap_or_else(|_| f.clone());
                    if seen.contains(&canon) {
                        continue;
                    }
                    match files.read(&f) {
                        Ok((t, mut e)) => {
                            p.errors.append(&mut e);
                            gather(p, files, &f, &t, depth + 1, seen, out);
                        }
                        Err(_) if wild && !f.exists() => {}
                        Err(e) => {
                            let msg = format!("cannot read `{}`: {e}", f.display());
                            p.err(line, &k, msg);
                        }
                    }
                }
            }
            _ => out.push((path.to_path_buf(), st)),
        }
    }
    p.file = outer;
}

/// [`parse`], reading the files `include` statements name through `files`.
pub fn parse_files(
    path: &Path,
    text: &str,
    files: &mut dyn Files,
) -> (DrbdConf, Vec<ConfigError>, Vec<ConfigWarning>) {
    let mut p = DrbdParser::new(path, &syntax::DRBD);
    let mut stmts = Vec::new();
    gather(&mut p, files, path, text, 0, &mut Vec::new(), &mut stmts);

    let mut common = Sect::default();
    let mut seen_global: Option<usize> = None;
    let mut seen_common: Option<usize> = None;
    let mut resources: Vec<(&Path, &Stmt, &Word, &[Stmt])> = Vec::new();
    for (file, st) in &stmts {
        p.file.clone_from(file);
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
                    resources.push((file, st, &names[0], block));
                }
            }
            _ => p.unsupported(key),
        }
    }

    let mut conf = DrbdConf::default();
    // (host, device/disk/address) → (resource, line) for cross-resource checks.
    let mut used: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
    for (file, st, name, block) in resources {
        p.file = file.to_path_buf();
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
            // Lowercased, as heartbeat lowercases ha.cf's node names: `on
            // Node-A` is node `node-a` everywhere hbd compares names.
            let hname = &Word {
                text: on.words[1].text.to_lowercase(),
                ..on.words[1].clone()
            };
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
