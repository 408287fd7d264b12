//! What each `ha.cf` directive says: [`Seen::directive`] takes one line
//! (its name and values) to the function for its group of directives
//! (timing, media, nodes, logging, ping, respawn, fencing, and the
//! directives heartbeat knows that hbd ignores or refuses), which checks
//! the values, reports errors and warnings at the line, and records what
//! the line says. Checks across lines are in [`Seen::finish`].

use super::*;

/// Directives heartbeat 3.0 knows that have no effect in hbd: accepted, with
/// a warning. (name, value check, why)
pub(super) const INERT: &[(&str, ValueCheck, &str)] = &[
    (
        "coredumps",
        ValueCheck::Bool,
        "hbd leaves core dumps to the system's settings",
    ),
    (
        "coreroot",
        ValueCheck::Any,
        "hbd leaves core dumps to the system's settings",
    ),
    (
        "log_badpack",
        ValueCheck::Bool,
        "hbd's reporting of bad datagrams is not configurable",
    ),
    ("conn_logd_time", ValueCheck::Time, "hbd has no logd"),
    (
        "use_apphbd",
        ValueCheck::Bool,
        "hbd does not register with apphbd",
    ),
    (
        "memreserve",
        ValueCheck::Int,
        "hbd does not preallocate memory",
    ),
    (
        "max_rexmit_delay",
        ValueCheck::Int,
        "hbd does not retransmit messages",
    ),
    (
        "hbgenmethod",
        ValueCheck::Any,
        "hbd keeps its incarnation number in the state directory",
    ),
    ("normalpoll", ValueCheck::Bool, "hbd has its own event loop"),
    ("uuidfrom", ValueCheck::Any, "hbd identifies nodes by name"),
    (
        "record_config_changes",
        ValueCheck::Bool,
        "a CRM setting; hbd has no CRM",
    ),
    (
        "record_pengine_inputs",
        ValueCheck::Bool,
        "a CRM setting; hbd has no CRM",
    ),
    (
        "enable_config_writes",
        ValueCheck::Bool,
        "a CRM setting; hbd has no CRM",
    ),
];

/// Directives heartbeat 3.0 knows that hbd refuses, and why.
pub(super) const UNSUPPORTED: &[(&str, &str)] = &[
    ("serial", "serial links are not supported: hbd heartbeats over UDP only (bcast, mcast, ucast); use a crossover Ethernet link instead"),
    ("baud", "serial links are not supported: hbd heartbeats over UDP only (bcast, mcast, ucast); drop the line"),
    ("compression", "hbd datagrams are small and never compressed; drop the line"),
    ("compression_threshold", "hbd datagrams are small and never compressed; drop the line"),
    ("traditional_compression", "hbd datagrams are small and never compressed; drop the line"),
    ("msgfmt", "hbd has its own datagram format, heartbeat's message formats do not apply; drop the line"),
    ("autojoin", "hbd's membership is the static node list; nodes cannot join at run time (only `autojoin none` is accepted)"),
    ("nice_failback", "obsolete since heartbeat 1.2; write `auto_failback on` or `auto_failback off`"),
    ("cluster", "set the cluster name as `name` in cluster.toml's [cluster]"),
    ("quorum_server", "hbd has no quorum server support; drop the line"),
    ("env", "hbd does not set environment variables for respawned programs; drop the line"),
    ("mcast6", "IPv6 media are not supported; use bcast, mcast or ucast"),
    ("hbaping", "Fibre Channel HBA ping is not supported; use ping"),
];

#[derive(Clone, Copy)]
pub(super) enum ValueCheck {
    Bool,
    Int,
    Time,
    Any,
}

impl Seen<'_> {
    /// One directive line: `key` and its values `args`; `content` is the
    /// line without its comment (`respawn` keeps its command as written).
    pub(super) fn directive(&mut self, line: usize, key: &str, args: &[&str], content: &str) {
        match key {
            "keepalive" => self.keepalive = self.positive_timer(line, key, args),
            "deadtime" => self.deadtime = self.timer(line, key, args),
            "warntime" => self.warntime = self.positive_timer(line, key, args),
            "initdead" => self.initdead = self.timer(line, key, args),
            "deadping" => self.deadping = self.timer(line, key, args),
            "udpport" => self.udp_port(line, key, args),
            "bcast" => self.bcast(line, key, args),
            "mcast" => self.mcast(line, key, args),
            "ucast" => self.ucast(line, key, args),
            "node" => self.node(line, key, args),
            "auto_failback" => self.failback(line, key, args),
            "logfile" => self.logfile = self.p.path(line, key, args).or(self.logfile.take()),
            "debugfile" => self.debugfile = self.p.path(line, key, args).or(self.debugfile.take()),
            "logfacility" => self.facility(line, key, args),
            "use_logd" => self.logd(line, key, args),
            "hopfudge" => self.hops(line, key, args),
            "debug" => {
                if let Some(n) = self.p.int(line, key, args, 255) {
                    self.debug = n;
                }
            }
            "realtime" => {
                if let Some(b) = self.p.bool(line, key, args) {
                    self.realtime = b;
                }
            }
            "rtprio" => self.priority(line, key, args),
            "ping" => self.ping_nodes(line, key, args),
            "ping_group" => self.ping_group(line, key, args),
            "respawn" => self.respawn_program(line, key, args, content),
            "stonith_host" => self.stonith_host(line, key, args),
            "stonith" => self.p.err(
                line,
                key,
                "heartbeat's device-file form is not supported: write the device on a \
                 `stonith_host` line (`stonith_host * TYPE PARAMS...`, TYPE a fence-agents \
                 program such as fence_ipmilan with key=value options)",
            ),
            "watchdog" => {
                self.watchdog = self
                    .p
                    .path(line, key, args)
                    .map(|d| (d, self.p.loc(line)))
                    .or(self.watchdog.take());
            }
            // heartbeat 3.0.4's name for `crm` (config.c: KEY_PACEMAKER).
            "crm" | "pacemaker" => self.crm(line, key, args),
            "apiauth" => self.apiauth(line, key, args),
            "autojoin" if args.len() == 1 && args[0].eq_ignore_ascii_case("none") => {
                if self.p.once(line, key) {
                    self.p
                        .warn(line, key, "no effect: `none` is what hbd always does");
                }
            }
            _ => self.other(line, key, args),
        }
    }

    /// A timing directive (deadtime, initdead, deadping): its value and
    /// line. A wrong one skips the checks between timings (`times_ok`).
    fn timer(&mut self, line: usize, key: &str, args: &[&str]) -> Option<(Duration, usize)> {
        let t = self.p.time(line, key, args);
        self.times_ok &= t.is_some();
        t
    }

    /// keepalive and warntime: a timing that must not be zero.
    fn positive_timer(
        &mut self,
        line: usize,
        key: &str,
        args: &[&str],
    ) -> Option<(Duration, usize)> {
        let mut t = self.p.time(line, key, args);
        if let Some((d, _)) = t {
            if d.is_zero() {
                self.p.err(line, key, "must be greater than zero");
                t = None;
            }
        }
        self.times_ok &= t.is_some();
        t
    }

    /// `udpport N`: the port of the bcast and ucast lines after it.
    fn udp_port(&mut self, line: usize, key: &str, args: &[&str]) {
        let p = &mut self.p;
        if !p.once(line, key) {
            return;
        }
        let Some(v) = p.one(line, key, args) else {
            return;
        };
        match v.parse::<u16>() {
            Ok(n) if n > 0 => {
                if let (Some((l, what)), true) = (self.first_udp_medium, n == self.udpport) {
                    // The port the media before it already use (heartbeat's
                    // default, 694): heartbeat says nothing; a note.
                    p.warn(
                        line,
                        key,
                        format!(
                            "no effect: the bcast/ucast lines before it (line {l}, {what}) \
                             already use port {n}; udpport applies to the lines after it"
                        ),
                    );
                } else if let Some((l, what)) = self.first_udp_medium {
                    p.err(
                        line,
                        key,
                        format!(
                            "must come before the bcast/ucast lines it applies to; \
                             line {l} ({what}) comes first"
                        ),
                    );
                } else {
                    self.udpport = n;
                }
            }
            _ => p.err(line, key, format!("`{v}`: not a UDP port (1-65535)")),
        }
    }

    /// `bcast IF [IF...]`: a medium per interface.
    fn bcast(&mut self, line: usize, key: &str, args: &[&str]) {
        let p = &mut self.p;
        self.saw_media_line = true;
        if args.is_empty() {
            p.err(line, key, "missing value: expected `bcast IF [IF...]`");
            return;
        }
        self.first_udp_medium.get_or_insert((line, "bcast"));
        for iface in args {
            if !p.iface(line, key, iface) {
                continue;
            }
            let dup = self
                .media
                .iter()
                .find(|m| m.kind == MediumKind::Bcast && m.iface == *iface)
                .map(|m| m.at.line);
            if let Some(first) = dup {
                p.err(
                    line,
                    key,
                    format!("`{iface}` already has a bcast medium (line {first})"),
                );
                continue;
            }
            self.media.push(Medium {
                iface: iface.to_string(),
                port: self.udpport,
                kind: MediumKind::Bcast,
                at: p.loc(line),
            });
        }
    }

    /// `mcast IF GROUP PORT TTL LOOP`: one medium.
    fn mcast(&mut self, line: usize, key: &str, args: &[&str]) {
        let p = &mut self.p;
        self.saw_media_line = true;
        const SYNTAX: &str = "expected `mcast IF GROUP PORT TTL LOOP`";
        let [iface, group, port, ttl, lp] = args[..] else {
            if args.len() < 5 {
                p.err(line, key, format!("missing value: {SYNTAX}"));
            } else {
                p.err(line, key, format!("too many values: {SYNTAX}"));
            }
            return;
        };
        let mut ok = p.iface(line, key, iface);
        let group = p.ipv4(line, key, group).and_then(|g| {
            if g.is_multicast() {
                Some(g)
            } else {
                p.err(
                    line,
                    key,
                    format!("`{g}` is not a multicast group (224.0.0.0/4)"),
                );
                None
            }
        });
        let port = match port.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                p.err(line, key, format!("`{port}`: not a UDP port (1-65535)"));
                None
            }
        };
        let ttl = match ttl.parse::<u8>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                p.err(line, key, format!("`{ttl}`: TTL must be from 1 to 255"));
                None
            }
        };
        let loop_ = match lp {
            "0" => Some(false),
            "1" => Some(true),
            _ => {
                p.err(line, key, format!("`{lp}`: loop must be 0 or 1"));
                None
            }
        };
        let (Some(group), Some(port), Some(ttl), Some(loop_)) = (group, port, ttl, loop_) else {
            return;
        };
        let dup = self
            .media
            .iter()
            .find(|m| {
                m.iface == iface
                    && m.port == port
                    && matches!(m.kind, MediumKind::Mcast { group: g, .. } if g == group)
            })
            .map(|m| m.at.line);
        if let Some(first) = dup {
            p.err(
                line,
                key,
                format!("`{iface} {group} {port}` is already a medium (line {first})"),
            );
            ok = false;
        }
        if ok {
            self.media.push(Medium {
                iface: iface.to_string(),
                port,
                kind: MediumKind::Mcast { group, ttl, loop_ },
                at: p.loc(line),
            });
        }
    }

    /// `ucast IF PEER`: a peer of the interface's one ucast medium.
    fn ucast(&mut self, line: usize, key: &str, args: &[&str]) {
        let p = &mut self.p;
        self.saw_media_line = true;
        const SYNTAX: &str = "expected `ucast IF PEER-ADDRESS`";
        let [iface, peer] = args[..] else {
            if args.len() < 2 {
                p.err(line, key, format!("missing value: {SYNTAX}"));
            } else {
                p.err(line, key, format!("too many values: {SYNTAX}"));
            }
            return;
        };
        self.first_udp_medium.get_or_insert((line, "ucast"));
        let ok = p.iface(line, key, iface);
        let Some(peer) = p.ipv4(line, key, peer) else {
            return;
        };
        if !ok {
            return;
        }
        if let Some(first) = self.ucast_peer_lines.get(&(iface.to_string(), peer)) {
            let first = *first;
            p.err(
                line,
                key,
                format!("`{iface} {peer}` is already listed (line {first})"),
            );
            return;
        }
        self.ucast_peer_lines
            .insert((iface.to_string(), peer), line);
        let existing = self.media.iter_mut().find(|m| {
            m.iface == iface && m.port == self.udpport && matches!(m.kind, MediumKind::Ucast { .. })
        });
        match existing {
            Some(Medium {
                kind: MediumKind::Ucast { peers },
                ..
            }) => peers.push(peer),
            _ => self.media.push(Medium {
                iface: iface.to_string(),
                port: self.udpport,
                kind: MediumKind::Ucast { peers: vec![peer] },
                at: p.loc(line),
            }),
        }
    }

    /// `node NAME [NAME...]`.
    fn node(&mut self, line: usize, key: &str, args: &[&str]) {
        let p = &mut self.p;
        if args.is_empty() {
            p.err(line, key, "missing value: expected `node NAME [NAME...]`");
            return;
        }
        self.first_node_line.get_or_insert(line);
        for name in args {
            // heartbeat lowercases node names (add_node: g_strdown).
            let name = name.to_lowercase();
            if name.len() > MAX_NODE_NAME {
                p.err(
                    line,
                    key,
                    format!("`{name}`: longer than {MAX_NODE_NAME} bytes"),
                );
                continue;
            }
            if let Some(first) = self.node_lines.get(&name) {
                let first = *first;
                p.err(
                    line,
                    key,
                    format!("`{name}` is listed twice (first at line {first})"),
                );
                continue;
            }
            self.node_lines.insert(name.clone(), line);
            self.nodes.push(name);
        }
    }

    /// `auto_failback on|off|legacy`.
    fn failback(&mut self, line: usize, key: &str, args: &[&str]) {
        let p = &mut self.p;
        if !p.once(line, key) {
            return;
        }
        let Some(v) = p.one(line, key, args) else {
            return;
        };
        if v.eq_ignore_ascii_case("legacy") {
            self.auto_failback = AutoFailback::Legacy;
            p.warn(
                line,
                key,
                "legacy is deprecated (heartbeat warns too): it fails back unless a \
                 peer runs with off; write on or off",
            );
        } else {
            match parse_bool(v) {
                Some(true) => self.auto_failback = AutoFailback::On,
                Some(false) => self.auto_failback = AutoFailback::Off,
                None => p.err(line, key, format!("`{v}`: expected on, off or legacy")),
            }
        }
    }

    /// `logfacility NAME|none`.
    fn facility(&mut self, line: usize, key: &str, args: &[&str]) {
        let p = &mut self.p;
        if !p.once(line, key) {
            return;
        }
        let Some(v) = p.one(line, key, args) else {
            return;
        };
        let f = v.to_ascii_lowercase();
        if f == "none" {
            self.logfacility = None;
        } else if syslog_facility_code(&f).is_some() {
            self.logfacility = Some(f);
        } else {
            p.err(
                line,
                key,
                format!(
                    "`{v}`: not a syslog facility (auth, authpriv, cron, daemon, ftp, \
                     kern, lpr, mail, news, syslog, user, uucp, local0..local7, or none)"
                ),
            );
        }
    }

    /// `use_logd BOOL`: accepted; hbd has no logd.
    fn logd(&mut self, line: usize, key: &str, args: &[&str]) {
        if let Some(b) = self.p.bool(line, key, args) {
            self.use_logd = b;
            if b {
                self.p.warn(
                    line,
                    key,
                    "hbd has no logd; it logs to syslog (logfacility), logfile and \
                     debugfile instead",
                );
            }
        }
    }

    /// `hopfudge N`: accepted, without effect.
    fn hops(&mut self, line: usize, key: &str, args: &[&str]) {
        if let Some(n) = self.p.int(line, key, args, 255) {
            self.hopfudge = n;
            self.p.warn(
                line,
                key,
                "no effect: hbd does not forward heartbeats between nodes \
                 (hopfudge only mattered for heartbeat's serial rings)",
            );
        }
    }

    /// `rtprio N`: the realtime priority, 1 to 99.
    fn priority(&mut self, line: usize, key: &str, args: &[&str]) {
        if let Some(n) = self.p.int(line, key, args, 99) {
            if n == 0 {
                self.p.err(line, key, "expected a number from 1 to 99");
            } else {
                self.rtprio = Some(n);
            }
        }
    }

    /// `ping ADDRESS [ADDRESS...]`: a ping node each.
    fn ping_nodes(&mut self, line: usize, key: &str, args: &[&str]) {
        let p = &mut self.p;
        if args.is_empty() {
            p.err(
                line,
                key,
                "missing value: expected `ping ADDRESS [ADDRESS...]`",
            );
            return;
        }
        for a in args {
            let Some(addr) = p.ipv4(line, key, a) else {
                continue;
            };
            if let Some((_, at)) = self.ping.iter().find(|(x, _)| *x == addr) {
                let first = at.line;
                p.err(
                    line,
                    key,
                    format!("`{addr}` is listed twice (first at line {first})"),
                );
                continue;
            }
            self.ping.push((addr, p.loc(line)));
        }
    }

    /// `ping_group NAME ADDRESS [ADDRESS...]`: one ping node, reached when
    /// any of its addresses answers.
    fn ping_group(&mut self, line: usize, key: &str, args: &[&str]) {
        let p = &mut self.p;
        let Some((name, addrs)) = args.split_first() else {
            p.err(
                line,
                key,
                "missing value: expected `ping_group NAME ADDRESS [ADDRESS...]`",
            );
            return;
        };
        if addrs.is_empty() {
            p.err(
                line,
                key,
                format!("`{name}`: missing value: expected `ping_group NAME ADDRESS [ADDRESS...]`"),
            );
            return;
        }
        if let Some(g) = self.ping_groups.iter().find(|g| g.name == *name) {
            let first = g.at.line;
            p.err(
                line,
                key,
                format!("`{name}` is defined twice (first at line {first})"),
            );
            return;
        }
        let mut list = Vec::new();
        let mut ok = true;
        for a in addrs {
            match p.ipv4(line, key, a) {
                Some(addr) if !list.contains(&addr) => list.push(addr),
                Some(addr) => {
                    p.err(line, key, format!("`{addr}` is listed twice"));
                    ok = false;
                }
                None => ok = false,
            }
        }
        if ok {
            self.ping_groups.push(PingGroup {
                name: name.to_string(),
                addrs: list,
                at: p.loc(line),
            });
        }
    }

    /// `respawn USER /path/to/program [ARGS...]`.
    fn respawn_program(&mut self, line: usize, key: &str, args: &[&str], content: &str) {
        let p = &mut self.p;
        let [user, program, ..] = args[..] else {
            p.err(
                line,
                key,
                "missing value: expected `respawn USER /path/to/program [ARGS...]`",
            );
            return;
        };
        // ipfail, dopd, ifcheckd: built in, never spawned, so neither
        // the user nor the program need exist on this machine.
        if let Some(builtin) = BuiltinHelper::of_program(program) {
            p.warn(
                line,
                key,
                format!(
                    "{}: {}; nothing is started",
                    builtin.name(),
                    builtin.instead()
                ),
            );
            let rest = content.trim_start()[key.len()..].trim_start();
            self.respawn.push(Respawn {
                user: user.to_string(),
                command: rest[user.len()..].trim().to_string(),
                at: p.loc(line),
                builtin: Some(builtin),
            });
            return;
        }
        let mut ok = true;
        match nix::unistd::User::from_name(user) {
            Ok(Some(_)) => {}
            Ok(None) => {
                p.err(line, key, format!("user `{user}` does not exist"));
                ok = false;
            }
            Err(e) => {
                p.err(line, key, format!("cannot look up user `{user}`: {e}"));
                ok = false;
            }
        }
        if !program.starts_with('/') {
            p.err(
                line,
                key,
                format!("`{program}`: the program must be an absolute path"),
            );
            ok = false;
        } else if let Err(e) = nix::unistd::access(program, nix::unistd::AccessFlags::X_OK) {
            // heartbeat checks this too (add_client_child).
            p.err(
                line,
                key,
                format!("`{program}` is not executable: {}", e.desc()),
            );
            ok = false;
        }
        if ok {
            // The command as written: everything after the user.
            let rest = content.trim_start()[key.len()..].trim_start();
            let command = rest[user.len()..].trim().to_string();
            self.respawn.push(Respawn {
                user: user.to_string(),
                command,
                at: p.loc(line),
                builtin: None,
            });
        }
    }

    /// `stonith_host FROM TYPE PARAMS...`: a fence-agents device.
    fn stonith_host(&mut self, line: usize, key: &str, args: &[&str]) {
        match crate::fence::parse_stonith_host(args) {
            Ok(d) => {
                let dirs = crate::fence::run::agent_dirs(&crate::agents::default_resources_dirs());
                if crate::fence::run::find_agent(&d.agent, &dirs).is_none() {
                    self.p.warn(
                        line,
                        key,
                        format!(
                            "`{}` not found (PATH, /usr/sbin, hbd's resources/fence): \
                             install fence-agents; fencing through this line fails until then",
                            d.agent
                        ),
                    );
                }
                self.stonith_hosts.push((d, self.p.loc(line)));
            }
            Err(e) => self.p.err(line, key, e.to_string()),
        }
    }

    /// `apiauth CLIENT uid=.. gid=..`: who may use heartbeat's API. hbd has
    /// no such API: accepted with what replaces the client.
    fn apiauth(&mut self, line: usize, key: &str, args: &[&str]) {
        let Some(client) = args.first() else {
            self.p.err(
                line,
                key,
                "missing value: expected `apiauth CLIENT uid=USER gid=GROUP`",
            );
            return;
        };
        let msg = match BuiltinHelper::of_client(client) {
            Some(b) => format!("no effect: `{client}` is {}", b.instead()),
            None => format!(
                "no effect: hbd has no heartbeat API clients (`{client}`); control-socket \
                 access is granted by `group` in cluster.toml's [control]"
            ),
        };
        self.p.warn(line, key, msg);
    }

    /// `crm`: only `crm off` is accepted.
    fn crm(&mut self, line: usize, key: &str, args: &[&str]) {
        let p = &mut self.p;
        if !p.once(line, key) {
            return;
        }
        let Some(v) = p.one(line, key, args) else {
            return;
        };
        let crm_on = if key == "pacemaker" {
            "hbd is not Pacemaker: it runs the haresources resource groups itself (its own \
             CRM, with mon and keepalived built in); write `pacemaker off` or drop the line, \
             and describe the resources in haresources (see docs/CONFIG.md)"
        } else {
            "hbd runs haresources resource groups, not the CRM (Pacemaker); drop the line"
        };
        match parse_bool(v) {
            Some(false) => {}
            Some(true) => p.err(line, key, format!("`{v}`: {crm_on}")),
            None if ["respawn", "manual", "valgrind"]
                .contains(&v.to_ascii_lowercase().as_str()) =>
            {
                p.err(line, key, format!("`{v}`: {crm_on}"))
            }
            None => p.err(line, key, format!("`{v}`: only `{key} off` is accepted")),
        }
    }

    /// Any other directive: inert ones warn, unsupported ones say why,
    /// anything else is unknown.
    fn other(&mut self, line: usize, key: &str, args: &[&str]) {
        let p = &mut self.p;
        if let Some((_, check, why)) = INERT.iter().find(|(n, _, _)| *n == key) {
            if !p.once(line, key) {
                return;
            }
            let Some(v) = p.one(line, key, args) else {
                return;
            };
            let bad = match check {
                ValueCheck::Bool => parse_bool(v).is_none().then_some(BOOL_HINT),
                ValueCheck::Int => v.parse::<i64>().is_err().then_some("expected a number"),
                ValueCheck::Time => parse_duration(v).is_err().then_some("expected a time"),
                ValueCheck::Any => None,
            };
            match bad {
                Some(hint) => p.err(line, key, format!("`{v}`: {hint}")),
                None => p.warn(line, key, format!("no effect: {why}")),
            }
        } else if let Some((_, why)) = UNSUPPORTED.iter().find(|(n, _)| *n == key) {
            p.err(line, key, format!("not supported: {why}"));
        } else {
            p.err(line, key, "unknown directive");
        }
    }
}
