//! drbd.conf's statements into the model: [`DrbdParser`]'s methods read each
//! section's statements (values, sub-sections, `on` hosts) into a [`Sect`],
//! merged child-over-parent by [`Sect::over`]; [`parse_rate`] reads a rate.

use super::{
    AfterSb0, AfterSb1, AfterSb2, Fencing, MetaDisk, OnIoError, Protocol, KO_COUNT_RANGE,
    TIMEOUT_RANGE,
};
use crate::config::syntax::{Opt, Parser, Stmt, Word};
use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

const NOT_SUPPORTED: &str = "not supported by hbd's replicated device";
const NO_EFFECT: &str = "accepted, no effect in hbd";
const ONLY_C: &str = "only protocol C: a write completes when both nodes have it";
const MAX_SECRET: usize = 64;

/// How a DRBD option's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// No value: 8.3's flags (`no-disk-flushes;`).
    Flag,
    /// `yes` or `no`, or nothing (8.4: a boolean alone means yes).
    Bool,
    /// A number, with drbdadm's unit letter allowed (`1M`, `512k`, `10s`).
    Num,
    /// One word (an algorithm, a CPU mask, a resource name).
    Word,
}

/// Tuning options (DRBD 8.3, 8.4 and 9; drbdsetup(8)): how DRBD buffers,
/// throttles, flushes, checksums or verifies, none of which changes what a
/// write means. hbd's device has its own, so they are accepted with a
/// warning in any option section (`disk`, `net`, `syncer`, `startup`,
/// `options`): 8.3 had several of them in `syncer` that 8.4 moved, and
/// published files mix both.
const TUNING: &[(&str, Shape)] = &[
    // startup
    ("outdated-wfc-timeout", Shape::Num),
    ("wait-after-sb", Shape::Bool),
    ("stacked-timeouts", Shape::Flag),
    // disk (8.4) / syncer (8.3)
    ("al-extents", Shape::Num),
    ("al-updates", Shape::Bool),
    ("disk-barrier", Shape::Bool),
    ("disk-flushes", Shape::Bool),
    ("disk-drain", Shape::Bool),
    ("md-flushes", Shape::Bool),
    ("no-disk-barrier", Shape::Flag),
    ("no-disk-flushes", Shape::Flag),
    ("no-md-flushes", Shape::Flag),
    ("no-disk-drain", Shape::Flag),
    ("max-bio-bvecs", Shape::Num),
    ("use-bmbv", Shape::Flag),
    ("c-plan-ahead", Shape::Num),
    ("c-delay-target", Shape::Num),
    ("c-fill-target", Shape::Num),
    ("c-max-rate", Shape::Num),
    ("c-min-rate", Shape::Num),
    ("delay-probe-volume", Shape::Num),
    ("delay-probe-interval", Shape::Num),
    ("throttle-threshold", Shape::Num),
    ("hold-off-threshold", Shape::Num),
    ("resync-after", Shape::Word),
    ("after", Shape::Word),
    ("discard-zeroes-if-aligned", Shape::Bool),
    ("rs-discard-granularity", Shape::Num),
    ("disable-write-same", Shape::Bool),
    ("verify-alg", Shape::Word),
    ("csums-alg", Shape::Word),
    ("csums-after-crash-only", Shape::Bool),
    ("use-rle", Shape::Bool),
    ("cpu-mask", Shape::Word),
    // net
    ("sndbuf-size", Shape::Num),
    ("rcvbuf-size", Shape::Num),
    ("max-buffers", Shape::Num),
    ("max-epoch-size", Shape::Num),
    ("unplug-watermark", Shape::Num),
    ("connect-int", Shape::Num),
    ("ping-int", Shape::Num),
    ("ping-timeout", Shape::Num),
    ("socket-check-timeout", Shape::Num),
    ("tcp-cork", Shape::Bool),
    ("no-tcp-cork", Shape::Flag),
    ("congestion-fill", Shape::Num),
    ("congestion-extents", Shape::Num),
    ("cram-hmac-alg", Shape::Word),
    ("data-integrity-alg", Shape::Word),
    // DRBD 9.2's TLS certificates: hbd seals with keys derived from the
    // shared secret instead.
    ("tls-keyring", Shape::Word),
    ("tls-privkey", Shape::Word),
    ("tls-certificate", Shape::Word),
    // options (DRBD 9): only matters with `quorum`, which is off.
    ("on-no-quorum", Shape::Word),
];

/// Options whose other values change what the device does, which hbd does
/// not implement: accepted at DRBD's default value (what hbd does anyway,
/// drbd_limits.h / drbdsetup(8)), an error at any other. Compared ignoring
/// case, as drbdadm compares keywords.
const AT_DEFAULT: &[(&str, &str)] = &[
    ("allow-two-primaries", "no"),
    ("always-asbp", "no"),
    ("rr-conflict", "disconnect"),
    ("on-congestion", "block"),
    ("on-no-data-accessible", "io-error"),
    ("read-balancing", "prefer-local"),
    ("disk-timeout", "0"),
    ("quorum", "off"),
    ("two-primaries", "no"),
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

/// DRBD 8.3's name of `fence-peer` (drbd.conf(5) of 8.3: `outdate-peer`).
const OUTDATE_PEER: &str = "outdate-peer";

/// Settings of one level (common, resource or on); merged child-over-parent.
#[derive(Debug, Clone, Default)]
pub(super) struct Sect {
    pub(super) protocol: Opt<Protocol>,
    pub(super) rate: Opt<u64>,
    pub(super) wfc: Opt<Duration>,
    pub(super) degr: Opt<Duration>,
    pub(super) on_io_error: Opt<OnIoError>,
    pub(super) timeout: Opt<Duration>,
    pub(super) ko_count: Opt<u32>,
    pub(super) fencing: Opt<Fencing>,
    pub(super) sb0: Opt<AfterSb0>,
    pub(super) sb1: Opt<AfterSb1>,
    pub(super) sb2: Opt<AfterSb2>,
    pub(super) secret: Opt<String>,
    pub(super) tls: Opt<bool>,
    pub(super) handlers: BTreeMap<String, (String, usize)>,
    pub(super) device: Opt<(PathBuf, Option<u32>)>,
    pub(super) disk: Opt<PathBuf>,
    pub(super) address: Opt<SocketAddrV4>,
    pub(super) meta_disk: Opt<MetaDisk>,
}

impl Sect {
    pub(super) fn over(self, parent: &Sect) -> Sect {
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
pub(super) enum Level {
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
pub(super) struct Drbd;

pub(super) type DrbdParser = Parser<Drbd>;

impl DrbdParser {
    pub(super) fn unsupported(&mut self, w: &Word) {
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
        if self.too_few(st, min) {
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
        // drbdadm compares keywords ignoring case (config_flags.c: strcasecmp).
        if let Some((_, t)) = table.iter().find(|(n, _)| n.eq_ignore_ascii_case(&v.text)) {
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
    pub(super) fn body<'a>(
        &mut self,
        stmts: &'a [Stmt],
        level: Level,
        s: &mut Sect,
        ons: &mut Vec<&'a Stmt>,
    ) {
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
            (Global, "udev-always-use-vnr") => {
                if self.values(st, 0).is_some() {
                    self.warn(key.line, k, NO_EFFECT.into());
                }
            }
            (Global, "minor-count" | "dialog-refresh")
            | (Global, "cmd-timeout-short" | "cmd-timeout-medium" | "cmd-timeout-long") => {
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
                        self.err(v[0].line, k, m.to_string());
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
            (Handlers, h) if HANDLERS.contains(&h) || h == OUTDATE_PEER => {
                let Some(v) = self.values(st, 1) else { return };
                let h = if h == OUTDATE_PEER { "fence-peer" } else { h };
                if let Some((_, first)) = s.handlers.get(h) {
                    let msg = format!("given twice (first on line {first})");
                    self.err(key.line, k, msg);
                } else {
                    s.handlers
                        .insert(h.to_string(), (v[0].text.clone(), key.line));
                }
            }
            (Startup | Disk | Net | Syncer | Options, o) if TUNING.iter().any(|(n, _)| *n == o) => {
                let shape = TUNING.iter().find(|(n, _)| *n == o).map(|(_, s)| *s);
                if self.shaped(st, shape.unwrap_or(Shape::Word)) {
                    self.warn(key.line, k, NO_EFFECT.into());
                }
            }
            (Startup | Disk | Net | Syncer | Options, o)
                if AT_DEFAULT.iter().any(|(n, _)| *n == o) =>
            {
                let default = AT_DEFAULT.iter().find(|(n, _)| *n == o).map_or("", |d| d.1);
                // A boolean alone means yes (8.4).
                let v = match st.words.get(1) {
                    None if st.block.is_none() => "yes".to_string(),
                    _ => match self.values(st, 1) {
                        Some(v) => v[0].text.clone(),
                        None => return,
                    },
                };
                if !v.eq_ignore_ascii_case(default) {
                    let msg = format!(
                        "`{v}`: {NOT_SUPPORTED}; only DRBD's default `{k} {default};` (or leaving it out)"
                    );
                    self.err(key.line, k, msg);
                }
            }
            _ => self.unsupported(key),
        }
    }

    /// Whether a tuning option's value has its shape (an error if not).
    fn shaped(&mut self, st: &Stmt, shape: Shape) -> bool {
        let key = &st.key().text;
        let v = match shape {
            Shape::Flag => return self.values(st, 0).is_some(),
            Shape::Bool => match self.values_range(st, 0, 1) {
                None => return false,
                Some(v) if v.is_empty() => return true,
                Some(v) => v[0],
            },
            Shape::Num | Shape::Word => match self.values(st, 1) {
                None => return false,
                Some(v) => v[0],
            },
        };
        let t = v.text.as_str();
        let ok = match shape {
            Shape::Bool => ["yes", "no"].iter().any(|b| b.eq_ignore_ascii_case(t)),
            Shape::Num => {
                let digits = t.strip_prefix('-').unwrap_or(t);
                let n = digits.trim_end_matches(|c: char| "kKmMgGs".contains(c));
                !n.is_empty()
                    && n.len() + 1 >= digits.len()
                    && n.chars().all(|c| c.is_ascii_digit())
            }
            _ => true,
        };
        if !ok {
            let want = if shape == Shape::Bool {
                "expected yes or no"
            } else {
                "expected a number"
            };
            self.err(v.line, key, format!("`{t}`: {want}"));
        }
        ok
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

/// Why [`parse_rate`] refuses a rate (`0`: the value as written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// Not a number with an optional K, M or G.
    #[error("`{0}`: {RATE_HINT}")]
    NotARate(String),
    #[error("`{0}`: a resync rate must be more than zero")]
    Zero(String),
    /// More than `u64::MAX` bytes per second.
    #[error("`{0}`: rate too large")]
    TooLarge(String),
}

const RATE_HINT: &str = "expected a rate like `10M` (K, M, G; no unit = KiB/s)";

/// A DRBD rate: a number with an optional `K`, `M` or `G` suffix (binary, any
/// case); no suffix means KiB. Returns bytes per second.
pub fn parse_rate(s: &str) -> Result<u64, RateError> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let mult: u64 = match unit {
        "" | "k" | "K" => 1 << 10,
        "m" | "M" => 1 << 20,
        "g" | "G" => 1 << 30,
        _ => return Err(RateError::NotARate(s.to_string())),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| RateError::NotARate(s.to_string()))?;
    if n == 0 {
        return Err(RateError::Zero(s.to_string()));
    }
    n.checked_mul(mult)
        .ok_or_else(|| RateError::TooLarge(s.to_string()))
}
