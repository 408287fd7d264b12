//! corosync.conf (corosync 3.1), read for the Corosync membership backend
//! (cluster.toml `[membership] backend = "corosync"`): the nodelist (names,
//! nodeids, ring addresses), the totem timings hbd waits on, and the quorum
//! section votequorum reads.
//!
//! The file is the user's; hbd reads it exactly as corosync does and refuses
//! what corosync refuses, with `file:line: key: message`:
//!
//! - the syntax of `exec/coroparse.c` (`parse_section`): one item per line;
//!   a line holding `{` opens a section and must end there (corosync needs
//!   the newline after `{`), a section closes on a line that is only `}`,
//!   `key: value` splits at the first `:`; a comment is a line whose first
//!   non-blank is `#` (a `#` later in a line is part of the value); lines
//!   over 510 bytes are refused; key paths are cmap names (3 to 255 of
//!   `[A-Za-z0-9._/:-]`);
//! - the numbers of `main_config_parser_cb` (each key's integer type and
//!   range) and its fixed words (`ip_version`, `crypto_cipher`...);
//! - `exec/totemconfig.c`: `version: 2`, the transport, a nodelist, knet's
//!   explicit nodeid (1..65535), `ringN_addr` with N < 8, duplicate nodeids,
//!   every node named and on every link with more than one link, one IP
//!   family per link, crypto only with knet, the timings' minimums;
//! - votequorum's start-up refusals (`votequorum_readconfig`): `two_node`
//!   with a quorum device, a device with `last_man_standing`.
//!
//! hbd is stricter where its own use needs it (each an error): every node
//! has a `ring0_addr`, names and ring addresses are unique, one `nodelist`
//! section, a `device` section names its `model`. What only the running
//! corosync knows is not checked here: whether a host name resolves, which
//! node is local (`hbctl check` checks this node's name instead), the
//! authkey file.

use super::{ConfigError, ConfigErrors, ConfigWarning};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// corosync.conf as hbd uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorosyncConf {
    pub path: PathBuf,
    /// `totem.cluster_name`.
    pub cluster_name: Option<String>,
    /// `totem.token` (default 3000 ms as in corosync 3.1; `0` is the default
    /// too, as corosync reads it).
    pub token: Duration,
    /// `totem.token_coefficient` (default 650 ms).
    pub token_coefficient: Duration,
    /// `totem.consensus` as written (`None`: absent or 0, i.e. 1.2 × the
    /// effective token).
    pub consensus: Option<Duration>,
    /// `totem.transport`: `knet` (default), `udpu` or `udp`.
    pub transport: String,
    /// `nodelist { node { ... } }`, in order.
    pub nodes: Vec<CorosyncNode>,
    pub quorum: CorosyncQuorum,
}

/// One `node { }` of the nodelist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorosyncNode {
    pub name: Option<String>,
    pub nodeid: Option<u32>,
    /// `ringN_addr` values: (N, address as written), sorted by N.
    pub addrs: Vec<(u32, String)>,
    /// The line of `node {`.
    pub line: usize,
}

/// `quorum { }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorosyncQuorum {
    pub provider: Option<String>,
    pub two_node: bool,
    /// Default: `two_node`, as votequorum sets it.
    pub wait_for_all: bool,
    pub expected_votes: Option<u32>,
    pub device: Option<CorosyncDevice>,
    /// The line of `quorum {` (0: no quorum section).
    pub line: usize,
}

/// `quorum { device { } }`: corosync-qdevice's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorosyncDevice {
    /// `model` (`net`: corosync-qnetd).
    pub model: String,
    /// `net { host: }`: the qnetd server.
    pub host: Option<String>,
    /// `net { algorithm: }` (`ffsplit`, `lms`).
    pub algorithm: Option<String>,
    /// The line of `device {`.
    pub line: usize,
}

/// corosync's `TOKEN_TIMEOUT`, `TOKEN_COEFFICIENT` (totemconfig.c).
pub const DEFAULT_TOKEN: Duration = Duration::from_millis(3000);
pub const DEFAULT_TOKEN_COEFFICIENT: Duration = Duration::from_millis(650);
/// Where corosync reads its configuration.
pub const DEFAULT_PATH: &str = "/etc/corosync/corosync.conf";

/// totemconfig.c's constants (HZ = 100).
const MINIMUM_TIMEOUT: u64 = 30;
const MINIMUM_TIMEOUT_HOLD: u64 = 14;
const JOIN_TIMEOUT: u64 = 50;
const MERGE_TIMEOUT: u64 = 200;
const DOWNCHECK_TIMEOUT: u64 = 1000;
const MAX_NETWORK_DELAY: u64 = 50;
const TOKEN_RETRANSMITS_BEFORE_LOSS_CONST: u64 = 4;
/// totem.h's `INTERFACE_MAX`: links 0..7.
const INTERFACE_MAX: u32 = 8;
/// libknet's `KNET_MAX_HOST`: knet nodeids are below it.
const KNET_MAX_HOST: u64 = 65536;
/// coroparse.c reads lines into a 512-byte buffer: 510 bytes, `\n`, NUL.
const MAX_LINE: usize = 510;
/// cmap key names (icmap.h).
const KEYNAME_MINLEN: usize = 3;
const KEYNAME_MAXLEN: usize = 255;

/// The top-level sections corosync.conf(5) documents (and `uidgid`, read by
/// coroparse.c).
const KNOWN_SECTIONS: &[&str] = &[
    "totem",
    "logging",
    "quorum",
    "nodelist",
    "system",
    "resources",
    "nozzle",
    "uidgid",
];

impl CorosyncConf {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<CorosyncConf, ConfigErrors> {
        match std::fs::read(path) {
            Ok(bytes) => Self::parse(path, &bytes),
            Err(e) => Err(ConfigErrors(vec![ConfigError::File {
                file: path.to_path_buf(),
                message: if e.kind() == std::io::ErrorKind::NotFound {
                    "missing: the Corosync backend reads the nodelist and quorum from it".into()
                } else {
                    format!("cannot read: {e}")
                },
            }])),
        }
    }

    /// Parses corosync.conf's bytes (`path` names it in errors).
    pub fn parse(path: &Path, text: &[u8]) -> Result<CorosyncConf, ConfigErrors> {
        let (c, errors, _) = parse_full(path, text);
        match c {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// The token timeout corosync runs with: `token + (nodes - 2) ×
    /// token_coefficient` when the nodelist has more than 2 nodes, else
    /// `token` (totemconfig.c, `totem_volatile_config_read`, on the members
    /// of link 0).
    pub fn effective_token(&self) -> Duration {
        effective_token(self.token, self.token_coefficient, self.link0_members())
    }

    /// `consensus`, default 1.2 × the effective token (computed as corosync
    /// does: `(int)(float)(1.2 * token)` ms).
    pub fn effective_consensus(&self) -> Duration {
        self.consensus
            .unwrap_or_else(|| default_consensus(self.effective_token()))
    }

    /// The name of the node with this nodeid, as written.
    pub fn node_name(&self, nodeid: u32) -> Option<&str> {
        self.nodes
            .iter()
            .find(|n| n.nodeid == Some(nodeid))
            .and_then(|n| n.name.as_deref())
    }

    /// The nodeid of the node named `name` (ASCII case ignored, as hbd
    /// compares node names).
    pub fn nodeid(&self, name: &str) -> Option<u32> {
        self.node_by_name(name).and_then(|n| n.nodeid)
    }

    /// The node named `name` (ASCII case ignored).
    pub fn node_by_name(&self, name: &str) -> Option<&CorosyncNode> {
        self.nodes.iter().find(|n| {
            n.name
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(name))
        })
    }

    fn link0_members(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.addrs.iter().any(|(r, _)| *r == 0))
            .count()
    }
}

impl CorosyncNode {
    /// `ringN_addr`.
    pub fn addr(&self, ring: u32) -> Option<&str> {
        self.addrs
            .iter()
            .find(|(r, _)| *r == ring)
            .map(|(_, a)| a.as_str())
    }
}

fn effective_token(token: Duration, coefficient: Duration, members: usize) -> Duration {
    if members > 2 {
        token + coefficient * (members as u32 - 2)
    } else {
        token
    }
}

fn default_consensus(token: Duration) -> Duration {
    // totemconfig.c: (int)(float)(1.2 * totem_config->token_timeout)
    let ms = (1.2f64 * token.as_millis() as f64) as f32;
    Duration::from_millis(ms as u64)
}

/// One `key: value` line.
#[derive(Debug, Clone)]
struct Item {
    key: String,
    value: String,
    line: usize,
}

/// One `name {` ... `}` block.
#[derive(Debug, Clone, Default)]
struct Section {
    name: String,
    line: usize,
    items: Vec<Item>,
    sections: Vec<Section>,
}

impl Section {
    /// The last value of `key` (cmap keeps the last one written).
    fn get(&self, key: &str) -> Option<&Item> {
        self.items.iter().rev().find(|i| i.key == key)
    }
    fn subs<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| s.name == name)
    }
}

/// The syntax of coroparse.c's `parse_section`; the first error stops it,
/// as it stops corosync.
fn parse_tree(path: &Path, text: &str) -> Result<Section, ConfigError> {
    let err = |line: usize, key: &str, message: &str| ConfigError::Line {
        file: path.to_path_buf(),
        line,
        key: key.to_string(),
        message: message.to_string(),
    };
    // The stack of open sections; [0] is the file.
    let mut stack: Vec<Section> = vec![Section::default()];
    for (idx, raw) in text.split_inclusive('\n').enumerate() {
        let line = idx + 1;
        let content = raw.strip_suffix('\n').unwrap_or(raw);
        if content.len() > MAX_LINE {
            return Err(err(line, "corosync.conf", "Line too long (over 510 bytes)"));
        }
        let content = content.strip_suffix('\r').unwrap_or(content);
        let l = content.trim_end_matches([' ', '\t']);
        let first = l.trim_start_matches([' ', '\t']);
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        if let Some(brace) = l.find('{') {
            let name = l[..brace]
                .trim_matches([' ', '\t'])
                .trim_end_matches([' ', '\t', ':', '{']);
            let after = l[brace + 1..].trim_matches([' ', '\t']);
            if name.is_empty() {
                return Err(err(
                    line,
                    "{",
                    "Missing section name before opening bracket '{'",
                ));
            }
            if !after.is_empty() {
                return Err(err(
                    line,
                    name,
                    "Extra characters after opening bracket '{' (corosync needs a new line after `{`)",
                ));
            }
            stack.push(Section {
                name: name.to_string(),
                line,
                ..Section::default()
            });
            continue;
        }
        if let Some(colon) = l.find(':') {
            let key = l[..colon].trim_matches([' ', '\t']);
            let value = l[colon + 1..].trim_matches([' ', '\t']);
            if let Some(top) = stack.last_mut() {
                top.items.push(Item {
                    key: key.to_string(),
                    value: value.to_string(),
                    line,
                });
            }
            continue;
        }
        if l.contains('}') {
            if first != "}" {
                return Err(err(
                    line,
                    "}",
                    "Extra characters before or after closing bracket '}'",
                ));
            }
            if stack.len() == 1 {
                return Err(err(line, "}", "Unexpected closing brace"));
            }
            if let Some(done) = stack.pop() {
                if let Some(parent) = stack.last_mut() {
                    parent.sections.push(done);
                }
            }
            continue;
        }
        return Err(err(
            line,
            first.split([' ', '\t']).next().unwrap_or(first),
            "Line is not opening or closing section or key value",
        ));
    }
    if stack.len() > 1 {
        let open = stack.last().map(|s| (s.line, s.name.clone()));
        let (line, name) = open.unwrap_or_default();
        return Err(err(
            line,
            &name,
            "Missing closing brace: this section is never closed",
        ));
    }
    Ok(stack.pop().unwrap_or_default())
}

/// An integer type of coroparse.c (`safe_atoq`'s ranges).
#[derive(Clone, Copy)]
enum Int {
    U8,
    U16,
    U32,
    I32,
    U64,
}

impl Int {
    fn range(self) -> (i128, i128) {
        match self {
            Int::U8 => (0, u8::MAX.into()),
            Int::U16 => (0, u16::MAX.into()),
            Int::U32 => (0, u32::MAX.into()),
            Int::I32 => (i32::MIN.into(), i32::MAX.into()),
            Int::U64 => (0, u64::MAX.into()),
        }
    }
}

/// `strtoll(s, 10)` with nothing after the number, in `t`'s range
/// (coroparse.c's `safe_atoq`; `str_to_ull` for u64, which takes a sign
/// too).
fn atoq(s: &str, t: Int) -> Option<i128> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i128 = digits.parse().ok()?;
    let v = if neg { -v } else { v };
    if let Int::U64 = t {
        // strtoull: a negative value wraps; only overflow is an error.
        return (v.unsigned_abs() <= u64::MAX as u128).then_some(v);
    }
    let (min, max) = t.range();
    (min..=max).contains(&v).then_some(v)
}

/// The integer type coroparse.c gives `path`, if any.
fn int_type(path: &str) -> Option<Int> {
    const TOTEM_U32: &[&str] = &[
        "version",
        "nodeid",
        "threads",
        "token",
        "token_coefficient",
        "token_retransmit",
        "token_warning",
        "hold",
        "token_retransmits_before_loss_const",
        "join",
        "send_join",
        "consensus",
        "merge",
        "downcheck",
        "fail_recv_const",
        "seqno_unchanged_const",
        "rrp_token_expired_timeout",
        "rrp_problem_count_timeout",
        "rrp_problem_count_threshold",
        "rrp_problem_count_mcast_threshold",
        "rrp_autorecovery_check_timeout",
        "heartbeat_failures_allowed",
        "max_network_delay",
        "window_size",
        "max_messages",
        "miss_count_const",
        "knet_pmtud_interval",
        "knet_mtu",
        "knet_compression_threshold",
        "netmtu",
    ];
    if let Some(k) = path.strip_prefix("totem.") {
        if TOTEM_U32.contains(&k) {
            return Some(Int::U32);
        }
        return match k {
            "knet_compression_level" => Some(Int::I32),
            "config_version" => Some(Int::U64),
            "interface.linknumber" | "interface.ttl" | "interface.knet_link_priority" => {
                Some(Int::U8)
            }
            "interface.mcastport" => Some(Int::U16),
            "interface.knet_ping_interval"
            | "interface.knet_ping_timeout"
            | "interface.knet_ping_precision"
            | "interface.knet_pong_count" => Some(Int::U32),
            _ => None,
        };
    }
    match path {
        "quorum.expected_votes"
        | "quorum.votes"
        | "quorum.last_man_standing_window"
        | "quorum.leaving_timeout"
        | "quorum.device.timeout"
        | "quorum.device.sync_timeout"
        | "quorum.device.votes"
        | "nodelist.node.nodeid"
        | "nodelist.node.quorum_votes"
        | "resources.watchdog_timeout"
        | "pload.count"
        | "pload.size" => Some(Int::U32),
        "quorum.two_node"
        | "quorum.expected_votes_tracking"
        | "quorum.allow_downscale"
        | "quorum.wait_for_all"
        | "quorum.auto_tie_breaker"
        | "quorum.last_man_standing"
        | "quorum.device.master_wins" => Some(Int::U8),
        _ => None,
    }
}

/// The fixed words coroparse.c accepts for `path`, if it checks them.
fn words(path: &str) -> Option<&'static [&'static str]> {
    Some(match path {
        "totem.ip_version" => &["ipv4", "ipv6", "ipv6-4", "ipv4-6"],
        "totem.crypto_cipher" => &["none", "aes256", "aes192", "aes128"],
        "totem.crypto_hash" => &["none", "md5", "sha1", "sha256", "sha384", "sha512"],
        "system.qb_ipc_type" => &["native", "shm", "socket"],
        "system.sched_rr" | "system.allow_knet_handle_fallback" => &["yes", "no"],
        "system.move_to_root_cgroup" => &["yes", "no", "auto"],
        _ => return None,
    })
}

fn valid_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':')
}

/// What one reading found: the value when the syntax was right, every
/// error and warning.
pub(crate) fn parse_full(
    path: &Path,
    bytes: &[u8],
) -> (Option<CorosyncConf>, Vec<ConfigError>, Vec<ConfigWarning>) {
    let (text, mut errors) = super::text::decode(path, bytes, super::text::Comments::Hash);
    let root = match parse_tree(path, &text) {
        Ok(r) => r,
        Err(e) => {
            errors.push(e);
            return (None, errors, Vec::new());
        }
    };
    let mut r = Reader {
        path,
        errors,
        warnings: Vec::new(),
    };
    let conf = r.read(&root);
    r.errors.sort_by_key(ConfigError::line);
    r.warnings.sort_by_key(|w| w.line);
    (Some(conf), r.errors, r.warnings)
}

struct Reader<'a> {
    path: &'a Path,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
}

impl Reader<'_> {
    fn err(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError::Line {
            file: self.path.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }
    fn warn(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            file: self.path.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// The checks coroparse.c makes on every item as it stores it in cmap:
    /// the key's name, integers, fixed words, the items a section allows.
    fn check_items(&mut self, s: &Section, prefix: &str) {
        let path = if prefix.is_empty() {
            s.name.clone()
        } else {
            format!("{prefix}.{}", s.name)
        };
        // logger_subsys/logging_daemon items are stored under the subsys
        // name, uidgid under uid/gid: their keys are not cmap names as such.
        let special = matches!(
            path.as_str(),
            "logging.logger_subsys"
                | "logging.logging_daemon"
                | "uidgid"
                | "totem.interface.member"
        );
        for i in &s.items {
            let full = if path.is_empty() {
                i.key.clone()
            } else {
                format!("{path}.{}", i.key)
            };
            if !special
                && (full.len() < KEYNAME_MINLEN
                    || full.len() > KEYNAME_MAXLEN
                    || !full.chars().all(valid_key_char))
            {
                self.err(
                    i.line,
                    &full,
                    format!(
                        "not a valid corosync key name (cmap: {KEYNAME_MINLEN} to {KEYNAME_MAXLEN} \
                         of letters, digits and . _ - / :)"
                    ),
                );
                continue;
            }
            if let Some(t) = int_type(&full) {
                if atoq(&i.value, t).is_none() {
                    let (min, max) = t.range();
                    self.err(
                        i.line,
                        &full,
                        format!("`{}`: expected an integer in range ({min}..{max})", i.value),
                    );
                }
            }
            if let Some(w) = words(&full) {
                if !w.contains(&i.value.as_str()) {
                    self.err(
                        i.line,
                        &full,
                        format!("`{}`: expected {}", i.value, w.join(", ")),
                    );
                }
            }
            match path.as_str() {
                "uidgid" if i.key != "uid" && i.key != "gid" => {
                    self.err(i.line, &full, "uidgid: only uid and gid are allowed items");
                }
                "totem.interface.member" if i.key != "memberaddr" => {
                    self.err(
                        i.line,
                        &full,
                        "only memberaddr is allowed in a member section",
                    );
                }
                _ => {}
            }
        }
        match path.as_str() {
            "logging.logger_subsys" if s.get("subsys").is_none() => {
                self.err(s.line, &path, "No subsys key in logger_subsys directive");
            }
            "logging.logging_daemon" if s.get("name").is_none() => {
                self.err(s.line, &path, "No name key in logging_daemon directive");
            }
            _ => {}
        }
        // nodelist.node's items are cmap's nodelist.node.N.KEY: checked as
        // nodelist.node.KEY (the same types).
        for sub in &s.sections {
            if path == "uidgid" {
                self.err(
                    sub.line,
                    &format!("uidgid.{}", sub.name),
                    "uidgid: Can't add subsection different than uidgid",
                );
            }
            self.check_items(sub, &path);
        }
    }

    fn read(&mut self, root: &Section) -> CorosyncConf {
        for i in &root.items {
            // A key outside any section: cmap takes it (if its name is
            // valid), nothing reads it.
            if i.key.len() >= KEYNAME_MINLEN && i.key.chars().all(valid_key_char) {
                self.warn(i.line, &i.key, "outside any section: corosync ignores it");
            }
        }
        let root_items = Section {
            items: root.items.clone(),
            ..Section::default()
        };
        self.check_items(&root_items, "");
        for s in &root.sections {
            if !KNOWN_SECTIONS.contains(&s.name.as_str()) {
                self.warn(
                    s.line,
                    &s.name,
                    format!(
                        "unknown section: corosync ignores it (sections: {})",
                        KNOWN_SECTIONS.join(", ")
                    ),
                );
            }
            self.check_items(s, "");
        }

        // totem: the sections merge, the last value of a key wins.
        let totem = merged(root, "totem");
        let item = |k: &str| totem.get(k).cloned();
        let ms = |it: &Option<Item>, default: u64| -> u64 {
            it.as_ref()
                .and_then(|i| atoq(&i.value, Int::U32))
                .map_or(default, |v| v as u64)
        };
        let version = item("version");
        match &version {
            None => self.err(
                totem_line(root),
                "totem.version",
                "missing: corosync 3 needs `version: 2` in totem { }",
            ),
            // A value that is not a number is already an error.
            Some(v) => {
                if atoq(&v.value, Int::U32).is_some_and(|n| n != 2) {
                    self.err(
                        v.line,
                        "totem.version",
                        format!(
                            "`{}`: this corosync parses only version 2 configurations",
                            v.value
                        ),
                    );
                }
            }
        }
        let transport = item("transport");
        let transport_name = transport
            .as_ref()
            .map_or("knet".to_string(), |t| t.value.clone());
        if let Some(t) = &transport {
            if !["knet", "udpu", "udp"].contains(&t.value.as_str()) {
                self.err(
                    t.line,
                    "totem.transport",
                    format!(
                        "`{}`: invalid transport type, expected knet, udpu or udp",
                        t.value
                    ),
                );
            }
        }
        let knet = transport_name == "knet";
        if let Some(lm) = item("link_mode") {
            if !["active", "passive", "rr"].contains(&lm.value.as_str()) {
                self.err(
                    lm.line,
                    "totem.link_mode",
                    format!("`{}`: expected active, passive or rr", lm.value),
                );
            }
        }
        self.crypto(&totem, knet);
        let ip_version = item("ip_version").map_or_else(
            || {
                if transport_name == "udp" {
                    "ipv4"
                } else {
                    "ipv6-4"
                }
                .to_string()
            },
            |i| i.value,
        );

        // nodelist
        let nodelists: Vec<&Section> = root.subs("nodelist").collect();
        if let Some(second) = nodelists.get(1) {
            self.err(
                second.line,
                "nodelist",
                format!(
                    "a second nodelist section (the first is at line {}): corosync numbers \
                     the nodes of each from 0 and the second overwrites the first's; \
                     write one nodelist",
                    nodelists[0].line
                ),
            );
        }
        let mut nodes = Vec::new();
        for nl in &nodelists {
            for n in nl.subs("node") {
                nodes.push(self.node(n, knet, &ip_version));
            }
        }
        if nodes.is_empty() {
            match nodelists.first() {
                Some(nl) => self.err(
                    nl.line,
                    "nodelist",
                    "no node { } sections: corosync has no interface to run on",
                ),
                None => self.errors.push(ConfigError::File {
                    file: self.path.to_path_buf(),
                    message: "no nodelist { node { ... } }: hbd's Corosync backend needs the \
                              nodelist (names, nodeids, ring0_addr)"
                        .into(),
                }),
            }
        }
        self.across_nodes(&nodes, knet);

        // Timings (totemconfig.c: totem_volatile_config_read and _validate),
        // on the effective token; a 0 means the default.
        let nonzero = |v: u64, d: u64| if v == 0 { d } else { v };
        let token_ms = nonzero(ms(&item("token"), 3000), 3000);
        let coefficient_ms = ms(&item("token_coefficient"), 650);
        let members = nodes
            .iter()
            .filter(|n: &&CorosyncNode| n.addr(0).is_some())
            .count();
        let eff_token = effective_token(
            Duration::from_millis(token_ms),
            Duration::from_millis(coefficient_ms),
            members,
        )
        .as_millis() as u64;
        self.timings(&totem, eff_token, totem_line(root));
        let consensus_ms = ms(&item("consensus"), 0);

        let quorum = self.quorum(root);

        CorosyncConf {
            path: self.path.to_path_buf(),
            cluster_name: item("cluster_name").map(|i| i.value),
            token: Duration::from_millis(token_ms),
            token_coefficient: Duration::from_millis(coefficient_ms),
            consensus: (consensus_ms != 0).then(|| Duration::from_millis(consensus_ms)),
            transport: transport_name,
            nodes,
            quorum,
        }
    }

    /// totemconfig.c's `totem_get_crypto` and the knet-only rule.
    fn crypto(&mut self, totem: &Section, knet: bool) {
        let secauth = totem.get("secauth").is_some_and(|i| i.value == "on");
        let word = |k: &str, d: &str| totem.get(k).map_or(d.to_string(), |i| i.value.clone());
        let (dc, dh) = if secauth {
            ("aes256", "sha256")
        } else {
            ("none", "none")
        };
        let cipher = word("crypto_cipher", dc);
        let hash = word("crypto_hash", dh);
        let line = totem
            .get("crypto_cipher")
            .or(totem.get("secauth"))
            .or(totem.get("crypto_hash"))
            .map_or(totem.line, |i| i.line);
        if cipher != "none" && hash == "none" {
            self.err(
                line,
                "totem.crypto_cipher",
                "crypto_cipher requires crypto_hash with value other than none",
            );
        }
        if !knet && (cipher != "none" || hash != "none") {
            self.err(
                line,
                "totem.crypto_cipher",
                "crypto_cipher & crypto_hash are only valid for the Knet transport",
            );
        }
    }

    /// The minimums of `totem_volatile_config_validate`, on the values
    /// corosync computes from the token.
    fn timings(&mut self, totem: &Section, eff_token: u64, totem_line: usize) {
        let get = |k: &str| {
            totem
                .get(k)
                .and_then(|i| atoq(&i.value, Int::U32).map(|v| (v as u64, i.line)))
        };
        // A 0 (or an absent key) is the default.
        let val = |k: &str, d: u64| match get(k) {
            Some((v, l)) if v != 0 => (v, l, true),
            _ => (d, get(k).map_or(totem_line, |(_, l)| l), false),
        };
        let (trbl, _, _) = val(
            "token_retransmits_before_loss_const",
            TOKEN_RETRANSMITS_BEFORE_LOSS_CONST,
        );
        let (mnd, l, _) = val("max_network_delay", MAX_NETWORK_DELAY);
        if mnd < MINIMUM_TIMEOUT {
            self.err(
                l,
                "totem.max_network_delay",
                format!("{mnd} ms: may not be less than {MINIMUM_TIMEOUT} ms"),
            );
        }
        let token_line = get("token").map_or(totem_line, |(_, l)| l);
        if eff_token < MINIMUM_TIMEOUT {
            self.err(
                token_line,
                "totem.token",
                format!("{eff_token} ms: may not be less than {MINIMUM_TIMEOUT} ms"),
            );
        }
        if let Some((w, l)) = get("token_warning") {
            if w > 100 {
                self.err(
                    l,
                    "totem.token_warning",
                    format!("{w}%: must be between 0 (disabled) and 100"),
                );
            }
        }
        let retransmit_default = (eff_token as f64 / (trbl as f64 + 0.2)) as u64;
        let (retransmit, l, explicit) = val("token_retransmit", retransmit_default);
        if retransmit < MINIMUM_TIMEOUT {
            if explicit {
                self.err(
                    l,
                    "totem.token_retransmit",
                    format!("{retransmit} ms: may not be less than {MINIMUM_TIMEOUT} ms"),
                );
            } else {
                self.err(
                    token_line,
                    "totem.token",
                    format!(
                        "{eff_token} ms is too small for token_retransmits_before_loss_const \
                         {trbl}: the token retransmit timeout, token / ({trbl} + 0.2) = \
                         {retransmit} ms, may not be less than {MINIMUM_TIMEOUT} ms"
                    ),
                );
                // corosync's hold check would fail on the same cause.
                return;
            }
        }
        let hold_default = (retransmit as f64 * 0.8 - 10.0).max(0.0) as u64;
        let (hold, l, _) = val("hold", hold_default);
        if hold < MINIMUM_TIMEOUT_HOLD {
            self.err(
                l,
                "totem.hold",
                format!("{hold} ms: may not be less than {MINIMUM_TIMEOUT_HOLD} ms"),
            );
        }
        let (join, jl, _) = val("join", JOIN_TIMEOUT);
        if join < MINIMUM_TIMEOUT {
            self.err(
                jl,
                "totem.join",
                format!("{join} ms: may not be less than {MINIMUM_TIMEOUT} ms"),
            );
        }
        let consensus_default = default_consensus(Duration::from_millis(eff_token)).as_millis();
        let (consensus, l, _) = val("consensus", consensus_default as u64);
        if consensus < MINIMUM_TIMEOUT {
            self.err(
                l,
                "totem.consensus",
                format!("{consensus} ms: may not be less than {MINIMUM_TIMEOUT} ms"),
            );
        } else if consensus < join {
            self.err(
                l,
                "totem.consensus",
                format!("{consensus} ms: may not be less than join ({join} ms)"),
            );
        }
        for (k, d) in [("merge", MERGE_TIMEOUT), ("downcheck", DOWNCHECK_TIMEOUT)] {
            let (v, l, _) = val(k, d);
            if v < MINIMUM_TIMEOUT {
                self.err(
                    l,
                    &format!("totem.{k}"),
                    format!("{v} ms: may not be less than {MINIMUM_TIMEOUT} ms"),
                );
            }
        }
    }

    /// One `node { }`.
    fn node(&mut self, n: &Section, knet: bool, ip_version: &str) -> CorosyncNode {
        let name = n.get("name").map(|i| i.value.clone());
        let nodeid_item = n.get("nodeid");
        let nodeid = nodeid_item.and_then(|i| atoq(&i.value, Int::U32).map(|v| v as u32));
        let mut addrs: Vec<(u32, String)> = Vec::new();
        for i in &n.items {
            let Some(ring) = i
                .key
                .strip_prefix("ring")
                .and_then(|r| r.strip_suffix("_addr"))
            else {
                continue;
            };
            let Ok(ring) = ring.parse::<u32>() else {
                continue;
            };
            if ring >= INTERFACE_MAX {
                self.err(
                    i.line,
                    &format!("nodelist.node.{}", i.key),
                    format!(
                        "ring number {ring} is bigger than the allowed maximum {}",
                        INTERFACE_MAX - 1
                    ),
                );
                continue;
            }
            if let Some(problem) = address_problem(&i.value, ip_version) {
                self.err(i.line, &format!("nodelist.node.{}", i.key), problem);
            }
            // cmap keeps the last value of a key.
            addrs.retain(|(r, _)| *r != ring);
            addrs.push((ring, i.value.clone()));
        }
        addrs.sort_by_key(|(r, _)| *r);
        let what = name.as_deref().map_or_else(
            || format!("the node at line {}", n.line),
            |m| format!("node `{m}`"),
        );
        if addrs.iter().all(|(r, _)| *r != 0) {
            self.err(
                n.line,
                "nodelist.node.ring0_addr",
                format!(
                    "{what} has no ring0_addr: every node needs its address on link 0 (hbd \
                     checks it against ha.cf and drbd.conf)"
                ),
            );
        }
        if knet && !addrs.is_empty() {
            match (nodeid_item, nodeid) {
                (None, _) | (Some(_), Some(0)) => self.err(
                    nodeid_item.map_or(n.line, |i| i.line),
                    "nodelist.node.nodeid",
                    format!(
                        "{what}: knet requires an explicit nodeid (1 to {}) for every node",
                        KNET_MAX_HOST - 1
                    ),
                ),
                (Some(i), Some(id)) if u64::from(id) >= KNET_MAX_HOST => self.err(
                    i.line,
                    "nodelist.node.nodeid",
                    format!("{id}: knet requires a nodeid less than {KNET_MAX_HOST} ({what})"),
                ),
                _ => {}
            }
        }
        CorosyncNode {
            name,
            nodeid,
            addrs,
            line: n.line,
        }
    }

    /// The checks between nodes: corosync's (duplicate nodeids, names and
    /// links with more than one link, one family per link) and hbd's
    /// (unique names and addresses).
    fn across_nodes(&mut self, nodes: &[CorosyncNode], knet: bool) {
        for (i, n) in nodes.iter().enumerate() {
            for m in &nodes[..i] {
                if let (Some(a), Some(b)) = (n.nodeid, m.nodeid) {
                    if a == b && a != 0 {
                        self.err(
                            n.line,
                            "nodelist.node.nodeid",
                            format!(
                                "nodeid {a} is also the nodeid of the node at line {}",
                                m.line
                            ),
                        );
                    }
                }
                if let (Some(a), Some(b)) = (&n.name, &m.name) {
                    if a.eq_ignore_ascii_case(b) {
                        self.err(
                            n.line,
                            "nodelist.node.name",
                            format!(
                                "`{a}` is also the name of the node at line {} (hbd compares \
                                 names ignoring case)",
                                m.line
                            ),
                        );
                    }
                }
                for (ring, addr) in &n.addrs {
                    if m.addr(*ring).is_some_and(|b| same_addr(addr, b)) {
                        self.err(
                            n.line,
                            &format!("nodelist.node.ring{ring}_addr"),
                            format!(
                                "{addr} is also ring{ring}_addr of the node at line {}",
                                m.line
                            ),
                        );
                    }
                }
            }
        }
        let links: std::collections::BTreeSet<u32> = nodes
            .iter()
            .flat_map(|n| n.addrs.iter().map(|(r, _)| *r))
            .collect();
        if knet && links.len() > 1 {
            for n in nodes {
                if n.name.is_none() {
                    self.err(
                        n.line,
                        "nodelist.node.name",
                        "for a multi-link configuration, all nodes must have a 'name' attribute",
                    );
                }
                for l in &links {
                    if n.addr(*l).is_none() {
                        self.err(
                            n.line,
                            &format!("nodelist.node.ring{l}_addr"),
                            format!(
                                "not all nodes have the same number of links: this node has \
                                 no ring{l}_addr"
                            ),
                        );
                    }
                }
            }
        }
        for l in &links {
            let mut first: Option<(&CorosyncNode, IpAddr)> = None;
            for n in nodes {
                let Some(ip) = n.addr(*l).and_then(|a| a.parse::<IpAddr>().ok()) else {
                    continue;
                };
                match first {
                    None => first = Some((n, ip)),
                    Some((f, fip)) if fip.is_ipv4() != ip.is_ipv4() => self.err(
                        n.line,
                        &format!("nodelist.node.ring{l}_addr"),
                        format!(
                            "nodes for link {l} have different IP families ({ip} here, {fip} \
                             at line {})",
                            f.line
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    /// `quorum { }`, with votequorum's start-up refusals.
    fn quorum(&mut self, root: &Section) -> CorosyncQuorum {
        let Some(first) = root.subs("quorum").next() else {
            return CorosyncQuorum::default();
        };
        let q = merged(root, "quorum");
        let flag = |k: &str| {
            q.get(k)
                .and_then(|i| atoq(&i.value, Int::U8))
                .map(|v| v != 0)
        };
        let two_node = flag("two_node").unwrap_or(false);
        let wait_for_all = flag("wait_for_all").unwrap_or(two_node);
        let expected_votes = q
            .get("expected_votes")
            .and_then(|i| atoq(&i.value, Int::U32))
            .map(|v| v as u32);
        let dev = q.subs("device").last().cloned();
        let device = dev.and_then(|d| {
            let net = d.subs("net").last();
            match d.get("model") {
                Some(m) if !m.value.is_empty() => Some(CorosyncDevice {
                    model: m.value.clone(),
                    host: net.and_then(|n| n.get("host")).map(|i| i.value.clone()),
                    algorithm: net
                        .and_then(|n| n.get("algorithm"))
                        .map(|i| i.value.clone()),
                    line: d.line,
                }),
                _ => {
                    self.err(
                        d.line,
                        "quorum.device.model",
                        "missing: a quorum device names its model (`model: net` for \
                         corosync-qnetd)",
                    );
                    None
                }
            }
        });
        if let Some(d) = &device {
            if d.model == "net" && d.host.is_none() {
                self.err(
                    d.line,
                    "quorum.device.net.host",
                    "missing: model net needs net { host: QNETD-ADDRESS }",
                );
            }
            if two_node {
                let line = q.get("two_node").map_or(first.line, |i| i.line);
                self.err(
                    line,
                    "quorum.two_node",
                    format!(
                        "two_node and quorum device (line {}) cannot be configured at the same \
                         time (votequorum refuses to start): the device is the third vote",
                        d.line
                    ),
                );
            }
            if flag("last_man_standing") == Some(true) {
                let line = q.get("last_man_standing").map_or(first.line, |i| i.line);
                self.err(
                    line,
                    "quorum.last_man_standing",
                    "quorum.device is not compatible with last_man_standing (votequorum \
                     refuses to start)",
                );
            }
        }
        CorosyncQuorum {
            provider: q.get("provider").map(|i| i.value.clone()),
            two_node,
            wait_for_all,
            expected_votes,
            device,
            line: first.line,
        }
    }
}

/// The sections named `name` at the top, merged in order (cmap holds one
/// value per key: the last written).
fn merged(root: &Section, name: &str) -> Section {
    let mut out = Section::default();
    for s in root.subs(name) {
        if out.line == 0 {
            out.line = s.line;
            out.name = s.name.clone();
        }
        out.items.extend(s.items.iter().cloned());
        out.sections.extend(s.sections.iter().cloned());
    }
    out
}

fn totem_line(root: &Section) -> usize {
    root.subs("totem").next().map_or(1, |s| s.line)
}

/// Why corosync could not use `addr` as a ring address (`totemip_parse`):
/// an IP literal of the wrong family for `ip_version`, or a word that
/// cannot be a host name. A host name is taken as it is (corosync resolves
/// it at start).
fn address_problem(addr: &str, ip_version: &str) -> Option<String> {
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) if ip_version == "ipv6" => Some(format!(
            "`{addr}`: an IPv4 address, but totem.ip_version is ipv6"
        )),
        Ok(IpAddr::V6(_)) if ip_version == "ipv4" => Some(format!(
            "`{addr}`: an IPv6 address, but totem.ip_version is ipv4"
        )),
        Ok(_) => None,
        Err(_) => {
            let host_like = !addr.is_empty()
                && addr.len() <= 253
                && addr
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
            (!host_like).then(|| format!("`{addr}`: not an IP address or a host name"))
        }
    }
}

/// Two ring addresses are one: equal IPs, or the same name.
fn same_addr(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

#[cfg(test)]
mod tests;
