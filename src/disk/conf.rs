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

pub use super::uuid::{AfterSb0, AfterSb1, AfterSb2};
use crate::config::syntax::{self, Opt, Parser, Stmt, Word};
use crate::config::{ConfigError, ConfigWarning, Location};
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

const NOT_SUPPORTED: &str = "not supported by hbd's replicated device";
const NO_EFFECT: &str = "accepted, no effect in hbd";
const ONLY_C: &str = "only protocol C: a write completes when both nodes have it";
const MAX_SECRET: usize = 64;

/// DRBD 8.4's `timeout` default (drbd_limits.h: 60 tenths of a second) and range.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(6000);
const TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 1..=600;
/// DRBD 8.4's `ko-count` default and range.
pub const DEFAULT_KO_COUNT: u32 = 7;
const KO_COUNT_RANGE: std::ops::RangeInclusive<u32> = 0..=200;

/// Tuning knobs hbd accepts in `startup`, `disk`, `net`, `syncer` with a warning.
const KNOBS: &[&str] = &[
    "outdated-wfc-timeout",
    "al-extents",
    "sndbuf-size",
    "rcvbuf-size",
    "max-buffers",
    "max-epoch-size",
    "connect-int",
    "ping-int",
    "ping-timeout",
    "cram-hmac-alg",
    // DRBD 9.2's TLS certificates: hbd seals with keys derived from the
    // shared secret instead.
    "tls-keyring",
    "tls-privkey",
    "tls-certificate",
];

/// DRBD's handler names.
const HANDLERS: &[&str] = &[
    "pri-on-incon-degr",
    "pri-lost-after-sb",
    "pri-lost",
    "fence-peer",
    "unfence-peer",
    "local-io-error",
    "initial-split-brain",
    "split-brain",
    "before-resync-target",
    "after-resync-target",
    "before-resync-source",
    "out-of-sync",
];

// ---------------------------------------------------------------- model building

/// Settings of one level (common, resource or on); merged child-over-parent.
#[derive(Debug, Clone, Default)]
struct Sect {
    protocol: Opt<Protocol>,
    rate: Opt<u64>,
    wfc: Opt<Duration>,
    degr: Opt<Duration>,
    on_io_error: Opt<OnIoError>,
    timeout: Opt<Duration>,
    ko_count: Opt<u32>,
    fencing: Opt<Fencing>,
    sb0: Opt<AfterSb0>,
    sb1: Opt<AfterSb1>,
    sb2: Opt<AfterSb2>,
    secret: Opt<String>,
    tls: Opt<bool>,
    handlers: BTreeMap<String, (String, usize)>,
    device: Opt<(PathBuf, Option<u32>)>,
    disk: Opt<PathBuf>,
    address: Opt<SocketAddrV4>,
    meta_disk: Opt<MetaDisk>,
}

impl Sect {
    fn over(self, parent: &Sect) -> Sect {
        let mut handlers = parent.handlers.clone();
        handlers.extend(self.handlers);
        Sect {
            protocol: self.protocol.or(parent.protocol),
            rate: self.rate.or(parent.rate),
            wfc: self.wfc.or(parent.wfc),
            degr: self.degr.or(parent.degr),
            on_io_error: self.on_io_error.or(parent.on_io_error),
            timeout: self.timeout.or(parent.timeout),
            ko_count: self.ko_count.or(parent.ko_count),
            fencing: self.fencing.or(parent.fencing),
            sb0: self.sb0.or(parent.sb0),
            sb1: self.sb1.or(parent.sb1),
            sb2: self.sb2.or(parent.sb2),
            secret: self.secret.or_else(|| parent.secret.clone()),
            tls: self.tls.or(parent.tls),
            handlers,
            device: self.device.or_else(|| parent.device.clone()),
            disk: self.disk.or_else(|| parent.disk.clone()),
            address: self.address.or(parent.address),
            meta_disk: self.meta_disk.or(parent.meta_disk),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Global,
    Common,
    Resource,
    Host,
    Startup,
    Disk,
    Net,
    Syncer,
    Handlers,
    Options,
}

/// Marks [`Parser`]'s methods for drbd.conf: its values and sections.
struct Drbd;

type P = Parser<Drbd>;

impl P {
    fn unsupported(&mut self, w: &Word) {
        let msg = format!("`{}`: {NOT_SUPPORTED}", w.text);
        self.err(w.line, &w.text, msg);
    }

    /// The `n` values of a `key v1 .. vn;` statement, or an error.
    fn values<'a>(&mut self, st: &'a Stmt, n: usize) -> Option<Vec<&'a Word>> {
        self.values_range(st, n, n)
    }

    fn values_range<'a>(&mut self, st: &'a Stmt, min: usize, max: usize) -> Option<Vec<&'a Word>> {
        let key = st.key();
        let vals = &st.words[1..];
        if st.block.is_some() {
            if vals.len() > max {
                let prev = if max == 0 { key } else { &vals[max - 1] };
                let msg = format!("missing `;` after `{}`", prev.text);
                self.err(prev.line, &key.text, msg);
            } else {
                let msg = format!(
                    "`{}` takes a value and `;`, not a `{{ }}` section",
                    key.text
                );
                self.err(key.line, &key.text, msg);
            }
            return None;
        }
        if vals.len() < min {
            let msg = if min == 1 {
                "missing value".to_string()
            } else {
                format!("expected {min} values, found {}", vals.len())
            };
            self.err(key.line, &key.text, msg);
            return None;
        }
        if vals.len() > max {
            let prev = if max == 0 { key } else { &vals[max - 1] };
            let extra = &vals[max];
            let msg = if extra.line > prev.line {
                format!("missing `;` after `{}`", prev.text)
            } else {
                format!("unexpected `{}`: expected `;`", extra.text)
            };
            self.err(extra.line, &key.text, msg);
            return None;
        }
        Some(vals.iter().collect())
    }

    /// One value from a fixed list.
    fn choice<T: Copy>(&mut self, st: &Stmt, table: &[(&str, T)]) -> Option<T> {
        let v = self.values(st, 1)?[0];
        if let Some((_, t)) = table.iter().find(|(n, _)| *n == v.text) {
            return Some(*t);
        }
        let names: Vec<String> = table.iter().map(|(n, _)| format!("`{n}`")).collect();
        let msg = format!(
            "`{}`: not supported by hbd; expected {}",
            v.text,
            names.join(", ")
        );
        self.err(v.line, &st.key().text, msg);
        None
    }

    /// Statements of a section at `level` into `s`; `on` sections go to `ons`.
    fn body<'a>(&mut self, stmts: &'a [Stmt], level: Level, s: &mut Sect, ons: &mut Vec<&'a Stmt>) {
        for st in stmts {
            self.stmt(st, level, s, ons);
        }
    }

    fn stmt<'a>(&mut self, st: &'a Stmt, level: Level, s: &mut Sect, ons: &mut Vec<&'a Stmt>) {
        use Level::*;
        let key = st.key();
        let k = key.text.as_str();
        let block = st.block.is_some();
        match (level, k) {
            (Global, "usage-count") => {
                self.choice(st, &[("yes", ()), ("no", ()), ("ask", ())]);
                self.warn(key.line, k, NO_EFFECT.into());
            }
            (Global, "disable-ip-verification") => {
                if self.values(st, 0).is_some() {
                    self.warn(key.line, k, NO_EFFECT.into());
                }
            }
            (Global, "minor-count" | "dialog-refresh") => {
                if let Some(v) = self.values(st, 1) {
                    if v[0].text.parse::<u32>().is_err() {
                        let msg = format!("`{}`: not a number", v[0].text);
                        self.err(v[0].line, k, msg);
                    } else {
                        self.warn(key.line, k, NO_EFFECT.into());
                    }
                }
            }
            (Common | Resource | Net, "protocol") => {
                let v = self.values(st, 1).map(|v| v[0]);
                let p = match v.map(|w| w.text.as_str()) {
                    None => None,
                    Some("C") => Some(Protocol::C),
                    Some("A" | "B") => {
                        self.err(v.unwrap().line, k, ONLY_C.into());
                        None
                    }
                    Some(other) => {
                        let msg = format!("`{other}`: expected C (A and B are not supported)");
                        self.err(v.unwrap().line, k, msg);
                        None
                    }
                };
                self.set(&mut s.protocol, key, p);
            }
            (Common | Resource, "startup") => self.sub(st, Startup, s),
            (Common, "disk") | (Resource, "disk") if block || level == Common => {
                self.sub(st, Disk, s)
            }
            (Common | Resource, "net") => self.sub(st, Net, s),
            (Common | Resource, "syncer") => self.sub(st, Syncer, s),
            (Common | Resource, "handlers") => self.sub(st, Handlers, s),
            (Common | Resource, "options") => self.sub(st, Options, s),
            (Resource, "on") => {
                if self.section(st, 1).is_some() {
                    ons.push(st);
                }
            }
            (Resource | Host, "device") => {
                let Some(v) = self.values_range(st, 1, 3) else {
                    return;
                };
                let d = self.device(key, &v);
                self.set(&mut s.device, key, d);
            }
            (Resource | Host, "disk") => {
                let Some(v) = self.values(st, 1) else { return };
                let d = match v[0].text.as_str() {
                    "none" => {
                        let msg =
                            "`none`: diskless nodes are not supported by hbd's replicated device";
                        self.err(v[0].line, k, msg.into());
                        None
                    }
                    t if t.starts_with('/') => Some(PathBuf::from(t)),
                    t => {
                        let msg = format!("`{t}`: expected an absolute path to a block device");
                        self.err(v[0].line, k, msg);
                        None
                    }
                };
                self.set(&mut s.disk, key, d);
            }
            (Host, "address") => {
                let Some(v) = self.values_range(st, 1, 2) else {
                    return;
                };
                let a = self.address(key, &v);
                self.set(&mut s.address, key, a);
            }
            (Resource | Host, "meta-disk") => {
                let Some(v) = self.values_range(st, 1, 2) else {
                    return;
                };
                let m = if v.len() == 1 && v[0].text == "internal" {
                    Some(MetaDisk::Internal)
                } else {
                    let msg = format!(
                        "`{}`: external meta-data is not supported; use `meta-disk internal;`",
                        v[0].text
                    );
                    self.err(v[0].line, k, msg);
                    None
                };
                self.set(&mut s.meta_disk, key, m);
            }
            (Resource | Host, "flexible-meta-disk") => {
                let msg =
                    "flexible (external) meta-data is not supported; use `meta-disk internal;`";
                self.err(key.line, k, msg.into());
            }
            (Resource | Host, "volume") => {
                let msg = "`volume`: not supported by hbd's replicated device (one volume per resource: put device, disk and meta-disk directly in `on`)";
                self.err(key.line, k, msg.into());
            }
            (Common | Resource, "address") | (Common, "device" | "meta-disk") => {
                let msg = format!("`{k}` belongs inside an `on HOST {{ }}` section");
                self.err(key.line, k, msg);
            }
            (Startup, "wfc-timeout") => {
                let t = self.seconds(st);
                self.set(&mut s.wfc, key, t);
            }
            (Startup, "degr-wfc-timeout") => {
                let t = self.seconds(st);
                self.set(&mut s.degr, key, t);
            }
            (Syncer, "rate") | (Disk, "resync-rate") => {
                let Some(v) = self.values(st, 1) else { return };
                let r = match parse_rate(&v[0].text) {
                    Ok(r) => Some(r),
                    Err(m) => {
                        self.err(v[0].line, k, m);
                        None
                    }
                };
                self.set(&mut s.rate, key, r);
            }
            (Disk, "on-io-error") => {
                let v = self.choice(
                    st,
                    &[
                        ("detach", OnIoError::Detach),
                        ("pass_on", OnIoError::PassOn),
                        ("call-local-io-error", OnIoError::CallLocalIoError),
                    ],
                );
                self.set(&mut s.on_io_error, key, v);
            }
            (Net, "timeout") => {
                let t = self.ranged(st, TIMEOUT_RANGE, "tenths of a second");
                let t = t.map(|n| Duration::from_millis(u64::from(n) * 100));
                self.set(&mut s.timeout, key, t);
            }
            (Net, "ko-count") => {
                let n = self.ranged(st, KO_COUNT_RANGE, "a count");
                self.set(&mut s.ko_count, key, n);
            }
            (Disk | Net, "fencing") => {
                let v = self.choice(
                    st,
                    &[
                        ("dont-care", Fencing::DontCare),
                        ("resource-only", Fencing::ResourceOnly),
                        ("resource-and-stonith", Fencing::ResourceAndStonith),
                    ],
                );
                self.set(&mut s.fencing, key, v);
            }
            (Net, "after-sb-0pri") => {
                let v = self.choice(
                    st,
                    &[
                        ("disconnect", AfterSb0::Disconnect),
                        ("discard-zero-changes", AfterSb0::DiscardZeroChanges),
                        ("discard-least-changes", AfterSb0::DiscardLeastChanges),
                        ("discard-younger-primary", AfterSb0::DiscardYoungerPrimary),
                        ("discard-older-primary", AfterSb0::DiscardOlderPrimary),
                    ],
                );
                self.set(&mut s.sb0, key, v);
            }
            (Net, "after-sb-1pri") => {
                let v = self.choice(
                    st,
                    &[
                        ("disconnect", AfterSb1::Disconnect),
                        ("consensus", AfterSb1::Consensus),
                        ("discard-secondary", AfterSb1::DiscardSecondary),
                    ],
                );
                self.set(&mut s.sb1, key, v);
            }
            (Net, "after-sb-2pri") => {
                let v = self.choice(st, &[("disconnect", AfterSb2::Disconnect)]);
                self.set(&mut s.sb2, key, v);
            }
            (Net, "tls") => {
                let v = self.choice(st, &[("yes", true), ("no", false)]);
                self.set(&mut s.tls, key, v);
            }
            (Net, "shared-secret") => {
                let Some(v) = self.values(st, 1) else { return };
                let t = &v[0].text;
                let sec = if t.is_empty() || t.len() > MAX_SECRET {
                    let msg = format!("must be 1 to {MAX_SECRET} bytes, not {}", t.len());
                    self.err(v[0].line, k, msg);
                    None
                } else {
                    Some(t.clone())
                };
                self.set(&mut s.secret, key, sec);
            }
            (Handlers, h) if HANDLERS.contains(&h) => {
                let Some(v) = self.values(st, 1) else { return };
                if let Some((_, first)) = s.handlers.get(h) {
                    let msg = format!("given twice (first on line {first})");
                    self.err(key.line, k, msg);
                } else {
                    s.handlers
                        .insert(h.to_string(), (v[0].text.clone(), key.line));
                }
            }
            (Startup | Disk | Net | Syncer, knob) if KNOBS.contains(&knob) => {
                if self.values(st, 1).is_some() {
                    self.warn(key.line, k, NO_EFFECT.into());
                }
            }
            _ => self.unsupported(key),
        }
    }

    fn sub(&mut self, st: &Stmt, level: Level, s: &mut Sect) {
        if let Some((_, block)) = self.section(st, 0) {
            self.body(block, level, s, &mut Vec::new());
        }
    }

    /// One whole number in `range` (`what` names the unit in the error).
    fn ranged(
        &mut self,
        st: &Stmt,
        range: std::ops::RangeInclusive<u32>,
        what: &str,
    ) -> Option<u32> {
        let v = self.values(st, 1)?[0];
        match v.text.parse::<u32>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                let msg = format!(
                    "`{}`: expected {what}, {} to {}",
                    v.text,
                    range.start(),
                    range.end()
                );
                self.err(v.line, &st.key().text, msg);
                None
            }
        }
    }

    fn seconds(&mut self, st: &Stmt) -> Option<Duration> {
        let v = self.values(st, 1)?[0];
        match v.text.parse::<u32>() {
            Ok(n) => Some(Duration::from_secs(n.into())),
            Err(_) => {
                let msg = format!("`{}`: expected whole seconds (0 = wait forever)", v.text);
                self.err(v.line, &st.key().text, msg);
                None
            }
        }
    }

    fn device(&mut self, key: &Word, v: &[&Word]) -> Option<(PathBuf, Option<u32>)> {
        let texts: Vec<&str> = v.iter().map(|w| w.text.as_str()).collect();
        let (path, minor) = match texts.as_slice() {
            [p] => (Some(*p), None),
            [p, "minor", m] => (Some(*p), Some((*m, v[2].line))),
            ["minor", m] => (None, Some((*m, v[1].line))),
            _ => {
                let msg = "expected `device /dev/drbdN;`, `device /dev/drbdN minor N;` or `device minor N;`";
                self.err(key.line, &key.text, msg.into());
                return None;
            }
        };
        let minor = match minor {
            None => None,
            Some((m, line)) => match m.parse::<u32>() {
                Ok(n) if n < 1 << 20 => Some(n),
                _ => {
                    let msg = format!("`{m}`: not a device minor number");
                    self.err(line, &key.text, msg);
                    return None;
                }
            },
        };
        let path = match path {
            Some(p) if p.starts_with('/') => PathBuf::from(p),
            Some(p) => {
                let msg = format!("`{p}`: expected an absolute device path like `/dev/drbd0`");
                self.err(key.line, &key.text, msg);
                return None;
            }
            None => PathBuf::from(format!("/dev/drbd{}", minor.unwrap_or(0))),
        };
        Some((path, minor))
    }

    fn address(&mut self, key: &Word, v: &[&Word]) -> Option<SocketAddrV4> {
        let a = if v.len() == 2 {
            if v[0].text != "ipv4" {
                let msg = format!(
                    "`{}`: only ipv4 addresses are supported by hbd's replicated device",
                    v[0].text
                );
                self.err(v[0].line, &key.text, msg);
                return None;
            }
            v[1]
        } else {
            v[0]
        };
        match a.text.parse::<SocketAddrV4>() {
            Ok(sa) if sa.port() != 0 && !sa.ip().is_unspecified() => Some(sa),
            Ok(_) => {
                let msg = format!("`{}`: needs a real address and a non-zero port", a.text);
                self.err(a.line, &key.text, msg);
                None
            }
            Err(_) => {
                let msg = format!(
                    "`{}`: expected IPv4ADDRESS:PORT like `192.168.1.2:7789`",
                    a.text
                );
                self.err(a.line, &key.text, msg);
                None
            }
        }
    }
}

/// A DRBD rate: a number with an optional `K`, `M` or `G` suffix (binary, any
/// case); no suffix means KiB. Returns bytes per second.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    const HINT: &str = "expected a rate like `10M` (K, M, G; no unit = KiB/s)";
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mult: u64 = match unit {
        "" | "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        _ => return Err(format!("`{s}`: {HINT}")),
    };
    let n: u64 = num.parse().map_err(|_| format!("`{s}`: {HINT}"))?;
    if n == 0 {
        return Err(format!("`{s}`: a resync rate must be more than zero"));
    }
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}`: rate too large"))
}

/// Parses `drbd.conf` text; `path` is only used in messages and locations.
pub fn parse(path: &Path, text: &str) -> (DrbdConf, Vec<ConfigError>, Vec<ConfigWarning>) {
    let mut p = P::new(path, &syntax::DRBD);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Seed 002's `/etc/drbd.conf` (lines 143-199, verbatim: U+00A0 blanks,
    /// comments). The page lost the resource's closing `}`; [`SEED_002_FULL`]
    /// adds it.
    const SEED_002: &str = "global {

    # You might disable one of drbdadm's sanity check.

    # disable-ip-verification;

 

    usage-count no;

}

 

common {

  syncer { rate 10M; }

}

 

resource r0 {

  protocol        C;

 

  startup { wfc-timeout        0; degr-wfc-timeout        120; }

  disk { on-io-error detach; }

  meta-disk        internal;

  syncer {

  }

  on l0 {

    device        /dev/drbd0;

    disk        /dev/sda7;

    address        192.168.1.2:7791;

  }

  on l1 {

    device        /dev/drbd0;

    disk        /dev/sda7;

    address        192.168.1.3:7791;

  }
";

    fn seed_full() -> String {
        format!("{SEED_002}}}\n")
    }

    fn run(text: &str) -> (DrbdConf, Vec<String>, Vec<String>) {
        let (c, e, w) = parse(Path::new("drbd.conf"), text);
        (
            c,
            e.iter().map(|e| e.to_string()).collect(),
            w.iter().map(|w| w.to_string()).collect(),
        )
    }

    fn errs(text: &str) -> Vec<String> {
        run(text).1
    }

    fn loc(line: usize) -> Location {
        Location {
            file: PathBuf::from("drbd.conf"),
            line,
        }
    }

    /// A valid resource wrapped around `body` (hosts on lines 3-4 of the body).
    fn res(extra: &str) -> String {
        format!(
            "resource r0 {{\n{extra}\n on a {{ device /dev/drbd0; disk /dev/sda7; address 10.0.0.1:7789; }}\n on b {{ device /dev/drbd0; disk /dev/sda7; address 10.0.0.2:7789; }}\n}}\n"
        )
    }

    #[test]
    fn seed_002_verbatim() {
        let (c, e, w) = run(&seed_full());
        assert_eq!(e, Vec::<String>::new());
        assert_eq!(
            w,
            vec!["drbd.conf:9: usage-count: accepted, no effect in hbd".to_string()]
        );
        let host = |name: &str, ip: [u8; 4], line| HostConf {
            name: name.into(),
            device: "/dev/drbd0".into(),
            minor: None,
            disk: "/dev/sda7".into(),
            address: SocketAddrV4::new(ip.into(), 7791),
            meta_disk: MetaDisk::Internal,
            at: loc(line),
        };
        let want = ResourceConf {
            name: "r0".into(),
            protocol: Protocol::C,
            resync_rate: Some(10 << 20),
            wfc_timeout: Some(Duration::ZERO),
            degr_wfc_timeout: Some(Duration::from_secs(120)),
            on_io_error: OnIoError::Detach,
            timeout: DEFAULT_TIMEOUT,
            ko_count: DEFAULT_KO_COUNT,
            fencing: Fencing::DontCare,
            after_sb_0pri: AfterSb0::Disconnect,
            after_sb_1pri: AfterSb1::Disconnect,
            after_sb_2pri: AfterSb2::Disconnect,
            shared_secret: None,
            tls: true,
            shared_secret_at: None,
            handlers: BTreeMap::new(),
            hosts: vec![
                host("l0", [192, 168, 1, 2], 39),
                host("l1", [192, 168, 1, 3], 49),
            ],
            at: loc(23),
        };
        assert_eq!(
            c,
            DrbdConf {
                resources: vec![want]
            }
        );
        let r = c.resource("r0").unwrap();
        assert_eq!(
            r.host("l0").unwrap().address.to_string(),
            "192.168.1.2:7791"
        );
        assert_eq!(r.peer("l0").unwrap().name, "l1");
        assert_eq!(r.peer("l1").unwrap().name, "l0");
        assert!(r.peer("l2").is_none());
        assert!(c.resource("r1").is_none());
    }

    #[test]
    fn seed_002_as_published_lacks_the_closing_brace() {
        let (c, e, _) = run(SEED_002);
        assert_eq!(
            e,
            vec!["drbd.conf:23: resource: `{` is never closed: missing `}`".to_string()]
        );
        assert_eq!(c.resources[0].hosts.len(), 2);
    }

    const DRBD84: &str = r#"# 8.4 style
global { usage-count no; disable-ip-verification; minor-count 8; }
common {
  net { protocol C; after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary;
        after-sb-2pri disconnect; cram-hmac-alg sha1; shared-secret "se cr\"et"; }
  disk { resync-rate 40M; fencing resource-only; }
  handlers { split-brain "/usr/lib/drbd/notify-split-brain.sh root"; fence-peer "/bin/fence"; }
  options { }
}
resource data {
  disk { on-io-error call-local-io-error; }
  startup { wfc-timeout 30; }
  handlers { fence-peer "/bin/other-fence"; }
  meta-disk internal;
  on alpha {
    device /dev/drbd1 minor 1;
    disk /dev/vg/data;
    address ipv4 10.1.1.1:7789;
    meta-disk internal;
  }
  on beta {
    device minor 1;
    disk "/dev/vg/data";
    address 10.1.1.2:7789;
  }
}
"#;

    #[test]
    fn drbd_84_style_and_inheritance() {
        let (c, e, w) = run(DRBD84);
        assert_eq!(e, Vec::<String>::new());
        assert_eq!(
            w,
            vec![
                "drbd.conf:2: usage-count: accepted, no effect in hbd".to_string(),
                "drbd.conf:2: disable-ip-verification: accepted, no effect in hbd".to_string(),
                "drbd.conf:2: minor-count: accepted, no effect in hbd".to_string(),
                "drbd.conf:5: cram-hmac-alg: accepted, no effect in hbd".to_string(),
            ]
        );
        let r = c.resource("data").unwrap();
        assert_eq!(r.protocol, Protocol::C);
        assert_eq!(r.resync_rate, Some(40 << 20));
        assert_eq!(r.fencing, Fencing::ResourceOnly);
        assert_eq!(r.on_io_error, OnIoError::CallLocalIoError);
        assert_eq!(r.after_sb_0pri, AfterSb0::DiscardZeroChanges);
        assert_eq!(r.after_sb_1pri, AfterSb1::DiscardSecondary);
        assert_eq!(r.after_sb_2pri, AfterSb2::Disconnect);
        assert_eq!(r.shared_secret.as_deref(), Some("se cr\"et"));
        assert_eq!(r.wfc_timeout, Some(Duration::from_secs(30)));
        assert_eq!(r.degr_wfc_timeout, None);
        assert_eq!(
            r.handlers,
            BTreeMap::from([
                ("fence-peer".to_string(), "/bin/other-fence".to_string()),
                (
                    "split-brain".to_string(),
                    "/usr/lib/drbd/notify-split-brain.sh root".to_string()
                ),
            ])
        );
        let a = r.host("alpha").unwrap();
        assert_eq!(
            (a.device.as_path(), a.minor),
            (Path::new("/dev/drbd1"), Some(1))
        );
        assert_eq!(a.address.to_string(), "10.1.1.1:7789");
        assert_eq!(a.at, loc(15));
        let b = r.host("beta").unwrap();
        assert_eq!(
            (b.device.as_path(), b.minor),
            (Path::new("/dev/drbd1"), Some(1))
        );
        assert_eq!(b.disk, PathBuf::from("/dev/vg/data"));
        assert_eq!(b.meta_disk, MetaDisk::Internal);
    }

    #[test]
    fn resource_overrides_common_and_hosts_inherit_resource() {
        let text = "common { protocol C; syncer { rate 1M; } net { after-sb-0pri discard-older-primary; } }\n\
            resource r { syncer { rate 2M; } device /dev/drbd3; disk /dev/sdb1;\n\
            on a { address 10.0.0.1:7000; }\n\
            on b { address 10.0.0.2:7000; disk /dev/sdc1; }\n}\n\
            resource s { on a { device /dev/drbd4; disk /dev/sdb2; address 10.0.0.1:7001; }\n\
            on b { device /dev/drbd4; disk /dev/sdb2; address 10.0.0.2:7001; } }\n";
        let (c, e, _) = run(text);
        assert_eq!(e, Vec::<String>::new());
        let r = c.resource("r").unwrap();
        assert_eq!(r.resync_rate, Some(2 << 20));
        assert_eq!(r.after_sb_0pri, AfterSb0::DiscardOlderPrimary);
        assert_eq!(r.host("a").unwrap().device, PathBuf::from("/dev/drbd3"));
        assert_eq!(r.host("a").unwrap().disk, PathBuf::from("/dev/sdb1"));
        assert_eq!(r.host("b").unwrap().disk, PathBuf::from("/dev/sdc1"));
        let s = c.resource("s").unwrap();
        assert_eq!(s.resync_rate, Some(1 << 20));
        assert_eq!(s.after_sb_0pri, AfterSb0::DiscardOlderPrimary);
    }

    #[test]
    fn rate_units() {
        assert_eq!(parse_rate("100"), Ok(100 * 1024));
        assert_eq!(parse_rate("100K"), Ok(100 * 1024));
        assert_eq!(parse_rate("100k"), Ok(100 * 1024));
        assert_eq!(parse_rate("10M"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_rate("10m"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_rate("1G"), Ok(1 << 30));
        assert!(parse_rate("10MB").is_err());
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("").is_err());
        assert!(parse_rate("M").is_err());
        assert!(parse_rate("-1M").is_err());
        assert!(parse_rate("99999999999999999999G").is_err());
        let (c, e, _) = run(&res("syncer { rate 100; }"));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.resources[0].resync_rate, Some(102_400));
    }

    #[test]
    fn valid_template_is_valid() {
        let (c, e, w) = run(&res(""));
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        assert_eq!(c.resources[0].hosts.len(), 2);
    }

    fn one(text: &str, want: &str) {
        let e = errs(text);
        assert!(
            e.iter().any(|e| e.starts_with(want)),
            "want `{want}...` in {e:#?}"
        );
    }

    #[test]
    fn error_cases() {
        // unknown option and section, everywhere
        one(&res("become-primary-on a;"), "drbd.conf:2: become-primary-on: `become-primary-on`: not supported by hbd's replicated device");
        one(
            &res("startup { become-primary-on a; }"),
            "drbd.conf:2: become-primary-on: `become-primary-on`: not supported",
        );
        one(
            &res("net { allow-two-primaries; }"),
            "drbd.conf:2: allow-two-primaries: `allow-two-primaries`: not supported",
        );
        one(
            &res("options { cpu-mask 1; }"),
            "drbd.conf:2: cpu-mask: `cpu-mask`: not supported",
        );
        one(
            &res("syncer { verify-alg sha1; }"),
            "drbd.conf:2: verify-alg: `verify-alg`: not supported",
        );
        one(
            &res("handlers { bogus \"x\"; }"),
            "drbd.conf:2: bogus: `bogus`: not supported",
        );
        one(
            "include \"/etc/drbd.d/*.res\";\n",
            "drbd.conf:1: include: `include`: not supported",
        );
        one("skip { }\n", "drbd.conf:1: skip: `skip`: not supported");
        one(
            "global { udev-always-use-vnr; }\n",
            "drbd.conf:1: udev-always-use-vnr: `udev-always-use-vnr`: not supported",
        );
        one(
            "common { device /dev/drbd0; }\n",
            "drbd.conf:1: device: `device` belongs inside an `on HOST { }` section",
        );
        one(
            &res("address 10.0.0.1:7789;"),
            "drbd.conf:2: address: `address` belongs inside an `on HOST { }` section",
        );
        one(
            "global { disable-ip-verification x { } }\n",
            "drbd.conf:1: disable-ip-verification: missing `;` after `disable-ip-verification`",
        );
        one(
            "common { on a { } }\n",
            "drbd.conf:1: on: `on`: not supported",
        );
        // syntax
        one(
            &res("protocol C\nstartup { wfc-timeout 1; }"),
            "drbd.conf:2: protocol: missing `;` after `C`",
        );
        one(
            &res("syncer { rate 10M }"),
            "drbd.conf:2: rate: missing `;` after `10M`",
        );
        one(
            "global { usage-count no;\n",
            "drbd.conf:1: global: `{` is never closed: missing `}`",
        );
        one(
            &format!("{}}}\n", res("")),
            "drbd.conf:6: }: `}` without a matching `{`",
        );
        one(
            &res("protocol C C;"),
            "drbd.conf:2: protocol: unexpected `C`: expected `;`",
        );
        one(&res("{ }"), "drbd.conf:2: {: unexpected `{`");
        one(&res(";"), "drbd.conf:2: ;: unexpected `;`");
        one(
            &res("net { shared-secret \"abc; }"),
            "drbd.conf:2: \": string not closed on this line",
        );
        one(
            &res("syncer;"),
            "drbd.conf:2: syncer: `syncer` is a section: expected `{`",
        );
        one(
            &res("protocol { }"),
            "drbd.conf:2: protocol: `protocol` takes a value and `;`, not a `{ }` section",
        );
        one(
            "resource { }\n",
            "drbd.conf:1: resource: missing name before `{`",
        );
        one(&res("syncer { rate; }"), "drbd.conf:2: rate: missing value");
        one(
            "resource\n",
            "drbd.conf:1: resource: missing `;` after `resource`",
        );
        // bad values
        one(
            &res("syncer { rate 10X; }"),
            "drbd.conf:2: rate: `10X`: expected a rate",
        );
        one(
            &res("disk { resync-rate 0; }"),
            "drbd.conf:2: resync-rate: `0`: a resync rate must be more than zero",
        );
        one(
            &res("startup { wfc-timeout 1.5; }"),
            "drbd.conf:2: wfc-timeout: `1.5`: expected whole seconds",
        );
        one(
            &res("startup { degr-wfc-timeout -1; }"),
            "drbd.conf:2: degr-wfc-timeout: `-1`: expected whole seconds",
        );
        one(&res("disk { on-io-error panic; }"), "drbd.conf:2: on-io-error: `panic`: not supported by hbd; expected `detach`, `pass_on`, `call-local-io-error`");
        one(
            &res("disk { fencing stonith; }"),
            "drbd.conf:2: fencing: `stonith`",
        );
        one(
            &res("net { after-sb-0pri discard-node-a; }"),
            "drbd.conf:2: after-sb-0pri: `discard-node-a`",
        );
        one(
            &res("net { after-sb-1pri call-pri-lost-after-sb; }"),
            "drbd.conf:2: after-sb-1pri: `call-pri-lost-after-sb`",
        );
        one(
            &res("net { after-sb-2pri violently-as0p; }"),
            "drbd.conf:2: after-sb-2pri: `violently-as0p`",
        );
        one(
            &res("net { shared-secret \"\"; }"),
            "drbd.conf:2: shared-secret: must be 1 to 64 bytes",
        );
        one(
            "global { usage-count maybe; }\n",
            "drbd.conf:1: usage-count: `maybe`",
        );
        one(
            "global { minor-count lots; }\n",
            "drbd.conf:1: minor-count: `lots`: not a number",
        );
        let host = |body: &str| {
            format!("resource r {{ on a {{ {body} }}\n on b {{ device /dev/drbd0; disk /dev/sda7; address 10.0.0.2:7789; }} }}\n")
        };
        one(
            &host("device /dev/drbd0; disk /dev/sda7; address 10.0.0.1;"),
            "drbd.conf:1: address: `10.0.0.1`: expected IPv4ADDRESS:PORT",
        );
        one(
            &host("device /dev/drbd0; disk /dev/sda7; address node1:7789;"),
            "drbd.conf:1: address: `node1:7789`: expected IPv4ADDRESS:PORT",
        );
        one(
            &host("device /dev/drbd0; disk /dev/sda7; address 10.0.0.1:0;"),
            "drbd.conf:1: address: `10.0.0.1:0`: needs a real address and a non-zero port",
        );
        one(
            &host("device /dev/drbd0; disk /dev/sda7; address ipv6 [fd00::1]:7789;"),
            "drbd.conf:1: address: `ipv6`: only ipv4 addresses are supported",
        );
        one(
            &host("device /dev/drbd0 minor x; disk /dev/sda7; address 10.0.0.1:7789;"),
            "drbd.conf:1: device: `x`: not a device minor number",
        );
        one(
            &host("device drbd0; disk /dev/sda7; address 10.0.0.1:7789;"),
            "drbd.conf:1: device: `drbd0`: expected an absolute device path",
        );
        one(
            &host("device /dev/drbd0 major 1; disk /dev/sda7; address 10.0.0.1:7789;"),
            "drbd.conf:1: device: expected `device /dev/drbdN;`",
        );
        one(
            &host("device /dev/drbd0; disk none; address 10.0.0.1:7789;"),
            "drbd.conf:1: disk: `none`: diskless nodes are not supported",
        );
        one(
            &host("device /dev/drbd0; disk sda7; address 10.0.0.1:7789;"),
            "drbd.conf:1: disk: `sda7`: expected an absolute path",
        );
        // protocol A/B
        one(
            &res("protocol A;"),
            "drbd.conf:2: protocol: only protocol C: a write completes when both nodes have it",
        );
        one(
            &res("net { protocol B; }"),
            "drbd.conf:2: protocol: only protocol C: a write completes when both nodes have it",
        );
        one(
            "common { protocol A; }\n",
            "drbd.conf:1: protocol: only protocol C",
        );
        one(
            &res("protocol D;"),
            "drbd.conf:2: protocol: `D`: expected C",
        );
        // duplicates within a resource
        one(
            &res("protocol C;\nnet { protocol C; }"),
            "drbd.conf:3: protocol: given twice (first on line 2)",
        );
        one(
            &res("handlers { split-brain a; split-brain b; }"),
            "drbd.conf:2: split-brain: given twice (first on line 2)",
        );
        one(
            "global { }\nglobal { }\n",
            "drbd.conf:2: global: given twice (first on line 1)",
        );
        // hosts
        one("resource r {\n on a { device /dev/drbd0; disk /dev/sda7; address 10.0.0.1:7789; }\n}\n", "drbd.conf:1: resource: resource `r` needs exactly two `on` hosts, found 1");
        one(
            &res("on c { device /dev/drbd0; disk /dev/sda7; address 10.0.0.3:7789; }"),
            "drbd.conf:1: resource: resource `r0` needs exactly two `on` hosts, found 3",
        );
        one(
            &res("on a { device /dev/drbd0; disk /dev/sda7; address 10.0.0.3:7789; }"),
            "drbd.conf:3: on: host `a` given twice (first on line 2)",
        );
        one(
            &host("disk /dev/sda7;"),
            "drbd.conf:1: on: host `a` has no device, address",
        );
        one(
            "resource r { on { } on b c { } }\n",
            "drbd.conf:1: on: missing name before `{`",
        );
        // resources
        let two = format!("{}{}", res(""), res(""));
        one(
            &two,
            "drbd.conf:6: resource: resource `r0` defined twice (first on line 1)",
        );
        let same_dev = format!(
            "{}{}",
            res(""),
            res("").replace("r0", "r1").replace(":7789", ":7790")
        );
        one(
            &same_dev,
            "drbd.conf:8: device: `/dev/drbd0` is already used by resource `r0` (line 3)",
        );
        one(
            &same_dev,
            "drbd.conf:8: disk: `/dev/sda7` is already used by resource `r0` (line 3)",
        );
        let same_port = format!(
            "{}{}",
            res(""),
            res("")
                .replace("r0", "r1")
                .replace("drbd0", "drbd1")
                .replace("sda7", "sda8")
        );
        one(
            &same_port,
            "drbd.conf:8: address: `10.0.0.1:7789` is already used by resource `r0` (line 3)",
        );
        one(
            &same_port,
            "drbd.conf:9: address: `10.0.0.2:7789` is already used by resource `r0` (line 4)",
        );
        // volume, meta-disk
        one(
            &res("volume 0 { device /dev/drbd1; disk /dev/sdb; meta-disk internal; }"),
            "drbd.conf:2: volume: `volume`: not supported by hbd's replicated device",
        );
        one(
            &host("volume 0 { } device /dev/drbd0; disk /dev/sda7; address 10.0.0.1:7789;"),
            "drbd.conf:1: volume: `volume`: not supported",
        );
        one(&res("meta-disk /dev/sdb1 0;"), "drbd.conf:2: meta-disk: `/dev/sdb1`: external meta-data is not supported; use `meta-disk internal;`");
        one(
            &res("meta-disk /dev/sdb1[0];"),
            "drbd.conf:2: meta-disk: `/dev/sdb1[0]`: external meta-data is not supported",
        );
        one(
            &res("flexible-meta-disk /dev/sdb1;"),
            "drbd.conf:2: flexible-meta-disk: flexible (external) meta-data is not supported",
        );
    }

    #[test]
    fn all_errors_at_once_in_file_order_of_discovery() {
        let e = errs(&res("protocol A;\nsyncer { rate x; }\nbogus;"));
        assert_eq!(e.len(), 3, "{e:#?}");
    }

    #[test]
    fn timeout_and_ko_count() {
        // DRBD 8.4: timeout in tenths of a second (1..=600, default 60 =
        // 6 s), ko-count 0..=200 (default 7, 0 = never drop the peer).
        let (c, e, w) = run(&res("net { timeout 5; ko-count 2; }"));
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        assert_eq!(c.resources[0].timeout, Duration::from_millis(500));
        assert_eq!(c.resources[0].ko_count, 2);
        let (c, _, _) = run(&res(""));
        assert_eq!(c.resources[0].timeout, Duration::from_secs(6));
        assert_eq!(c.resources[0].ko_count, 7);
        let (c, _, _) = run(&format!("common {{ net {{ ko-count 0; }} }}\n{}", res("")));
        assert_eq!(c.resources[0].ko_count, 0);
        assert_eq!(
            errs(&res("net { timeout 0; }")),
            vec!["drbd.conf:2: timeout: `0`: expected tenths of a second, 1 to 600"]
        );
        assert_eq!(
            errs(&res("net { ko-count 201; }")),
            vec!["drbd.conf:2: ko-count: `201`: expected a count, 0 to 200"]
        );
        assert_eq!(errs(&res("disk { timeout 5; }")).len(), 1);
    }

    /// DRBD 9.2's `tls`: hbd seals the link unless both say `tls no`.
    #[test]
    fn tls_is_on_unless_turned_off() {
        let (c, e, w) = run(&res(""));
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        assert!(c.resources[0].tls);
        let (c, e, _) = run(&format!("common {{ net {{ tls no; }} }}\n{}", res("")));
        assert!(e.is_empty(), "{e:?}");
        assert!(!c.resources[0].tls);
        let (c, _, _) = run(&format!(
            "common {{ net {{ tls no; }} }}\n{}",
            res("net { tls yes; }")
        ));
        assert!(c.resources[0].tls);
        assert_eq!(
            errs(&res("net { tls maybe; }")),
            vec!["drbd.conf:2: tls: `maybe`: not supported by hbd; expected `yes`, `no`"]
        );
        let (_, e, w) = run(&res("net { tls-privkey /etc/k; tls-certificate /etc/c; }"));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn knobs_are_warnings() {
        let (_, e, w) = run(&res(
            "startup { outdated-wfc-timeout 1; degr-wfc-timeout 60; }\n\
             net { sndbuf-size 0; rcvbuf-size 0; max-buffers 8000; max-epoch-size 8000; connect-int 10; ping-int 10; ping-timeout 5; }\n\
             disk { al-extents 257; }\nsyncer { al-extents 257; }",
        ));
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(w.len(), 10, "{w:#?}");
        assert!(w[0].starts_with("drbd.conf:2: outdated-wfc-timeout: accepted, no effect in hbd"));
        assert!(w
            .iter()
            .all(|w| w.ends_with(": accepted, no effect in hbd")));
    }

    #[test]
    fn tokenizer_blanks_comments_strings() {
        let text = "resource\u{a0}r0\u{feff}{#c { ;\n on a { device /dev/drbd0;disk \"/dev/s\\\\d#a\"; address 10.0.0.1:7789; }\r\n on b { device /dev/drbd0; disk /dev/sda; address 10.0.0.2:7789; }}";
        let (c, e, _) = run(text);
        assert!(e.is_empty(), "{e:?}");
        let r = c.resource("r0").unwrap();
        assert_eq!(r.host("a").unwrap().disk, PathBuf::from("/dev/s\\d#a"));
        assert_eq!(r.host("b").unwrap().at, loc(3));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "a {".repeat(100_000);
        let e = errs(&text);
        assert!(e.iter().any(|e| e.contains("nested too deep")), "{e:?}");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(s in "\\PC{0,300}") {
            let _ = parse(Path::new("x"), &s);
        }

        #[test]
        fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(vec![
            "{", "}", ";", "\"", "#", "\n", "\u{a0}", " ", "resource", "r0", "on", "a", "b",
            "device", "/dev/drbd0", "minor", "0", "disk", "/dev/sda", "address", "ipv4",
            "10.0.0.1:7789", "net", "protocol", "C", "A", "syncer", "rate", "10M", "common",
            "global", "startup", "wfc-timeout", "handlers", "split-brain", "meta-disk",
            "internal", "volume", "options",
        ]), 0..120)) {
            let text: String = toks.join(" ");
            let (_, errors, _) = parse(Path::new("x"), &text);
            for e in errors {
                prop_assert!(e.to_string().starts_with("x:"));
            }
        }
    }
}
