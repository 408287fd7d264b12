use super::directives::{ValueCheck, INERT, UNSUPPORTED};
use super::*;

/// Seed 002's ha.cf, as the guide prints it.
pub(crate) const SEED_002: &str = "keepalive 1
deadtime 3
hopfudge 1
bcast        eth1
auto_failback on
debugfile /var/log/ha-debug
logfile        /var/log/ha-log
logfacility        local0
node        l0
node        l1 
";

fn run(text: &str) -> (HaCf, Vec<String>, Vec<String>) {
    let (h, e, w) = parse(Path::new("ha.cf"), text);
    (
        h,
        e.iter().map(ToString::to_string).collect(),
        w.iter().map(ToString::to_string).collect(),
    )
}

/// Errors of a valid two-line base (`bcast eth0`, `node a b`) followed by
/// `extra`, whose first line is line 3.
fn errs(extra: &str) -> Vec<String> {
    run(&format!("bcast eth0\nnode a b\n{extra}")).1
}

fn warns(extra: &str) -> Vec<String> {
    let (_, e, w) = run(&format!("bcast eth0\nnode a b\n{extra}"));
    assert!(e.is_empty(), "{e:?}");
    w
}

fn ok(extra: &str) -> HaCf {
    let (h, e, _) = run(&format!("bcast eth0\nnode a b\n{extra}"));
    assert!(e.is_empty(), "{e:?}");
    h
}

fn one_err(extra: &str) -> String {
    let e = errs(extra);
    assert_eq!(e.len(), 1, "{e:?}");
    e[0].clone()
}

const S: fn(u64) -> Duration = Duration::from_secs;
const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn seed_002() {
    let (h, e, w) = run(SEED_002);
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(h.keepalive, S(1));
    assert_eq!(h.deadtime, S(3));
    assert_eq!(h.warntime, MS(1500));
    assert_eq!(h.initdead, S(12));
    assert_eq!(h.deadping, S(3));
    assert_eq!(h.udpport, 694);
    assert_eq!(
        h.media,
        vec![Medium {
            iface: "eth1".into(),
            port: 694,
            kind: MediumKind::Bcast,
            at: Location {
                file: "ha.cf".into(),
                line: 4
            },
        }]
    );
    assert_eq!(h.media[0].name(), "bcast eth1");
    assert_eq!(h.nodes, vec!["l0", "l1"]);
    assert_eq!(h.auto_failback, AutoFailback::On);
    assert_eq!(h.debugfile, Some(PathBuf::from("/var/log/ha-debug")));
    assert_eq!(h.logfile, Some(PathBuf::from("/var/log/ha-log")));
    assert_eq!(h.logfacility.as_deref(), Some("local0"));
    assert!(!h.use_logd);
    assert_eq!(h.hopfudge, 1);
    assert_eq!(h.debug, 0);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("ha.cf:3: hopfudge: no effect"), "{w:?}");
}

#[test]
fn defaults() {
    let (h, e, w) = run("bcast eth0\nnode a\n");
    assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
    assert_eq!(h.keepalive, S(1));
    assert_eq!(h.deadtime, S(30));
    assert_eq!(h.warntime, S(15));
    assert_eq!(h.initdead, S(30));
    assert_eq!(h.deadping, S(30));
    assert_eq!(h.udpport, 694);
    assert_eq!(h.auto_failback, AutoFailback::Legacy);
    assert_eq!(h.logfacility, None);
    assert_eq!(h.logfile, None);
    assert_eq!(h.debugfile, None);
    assert_eq!(h.hopfudge, 1);
    assert!(h.ping.is_empty() && h.ping_groups.is_empty() && h.respawn.is_empty());
}

#[test]
fn initdead_default_follows_heartbeat() {
    for (dead, init) in [
        (S(30), S(30)),
        (S(11), S(11)),
        (S(10), S(20)),
        (S(8), S(16)),
        (S(6), S(12)),
        (MS(5999), S(12)),
        (S(1), S(12)),
    ] {
        assert_eq!(HaCf::default_initdead(dead), init, "{dead:?}");
    }
    assert_eq!(ok("deadtime 8\n").initdead, S(16));
}

#[test]
fn comments_blank_lines_crlf() {
    let h = ok("# comment\n\n   \nkeepalive 500ms # trailing\r\ndeadtime 2\r\n\t# indented\n");
    assert_eq!(h.keepalive, MS(500));
    assert_eq!(h.deadtime, S(2));
}

#[test]
fn unknown_directive() {
    assert_eq!(
        one_err("frobnicate 1\n"),
        "ha.cf:3: frobnicate: unknown directive"
    );
    // A comment does not hide the directive, nor does case fold.
    assert_eq!(
        one_err("KEEPALIVE 1\n"),
        "ha.cf:3: KEEPALIVE: unknown directive"
    );
}

#[test]
fn unsupported_directives_say_why() {
    assert_eq!(
        one_err("serial /dev/ttyS0\n"),
        "ha.cf:3: serial: not supported: serial links are not supported: hbd heartbeats \
         over UDP only (bcast, mcast, ucast); use a crossover Ethernet link instead"
    );
    assert!(one_err("stonith_host * null n1\n")
        .starts_with("ha.cf:3: stonith_host: `null`: null reports success without fencing"));
    for (name, _) in UNSUPPORTED {
        let e = one_err(&format!("{name} x\n"));
        assert!(
            e.starts_with(&format!("ha.cf:3: {name}: not supported: ")),
            "{e}"
        );
    }
    assert!(one_err("autojoin any\n").contains("autojoin: not supported: "));
}

#[test]
fn inert_directives_warn() {
    for (name, check, _) in INERT {
        let value = match check {
            ValueCheck::Bool => "on",
            ValueCheck::Int => "5",
            ValueCheck::Time => "60",
            ValueCheck::Any => "file",
        };
        let w = warns(&format!("{name} {value}\n"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(&format!("ha.cf:3: {name}: no effect: ")),
            "{w:?}"
        );
    }
    assert!(warns("realtime on\n").is_empty());
    assert!(ok("").realtime, "heartbeat's default is on");
    assert_eq!(ok("").rtprio, None);
    assert!(!ok("realtime off\n").realtime);
    assert!(ok("realtime yes\n").realtime);
    assert_eq!(ok("rtprio 5\n").rtprio, Some(5));
    assert_eq!(
        one_err("rtprio 0\n"),
        "ha.cf:3: rtprio: expected a number from 1 to 99"
    );
    assert_eq!(
        one_err("realtime maybe\n"),
        "ha.cf:3: realtime: `maybe`: expected yes or no (on/off, true/false, y/n, 1/0)"
    );
    assert_eq!(warns("autojoin none\n").len(), 1);
    assert_eq!(
        one_err("coredumps maybe\n"),
        "ha.cf:3: coredumps: `maybe`: expected yes or no (on/off, true/false, y/n, 1/0)"
    );
    assert_eq!(
        one_err("memreserve lots\n"),
        "ha.cf:3: memreserve: `lots`: expected a number"
    );
}

#[test]
fn bad_and_missing_values() {
    assert_eq!(
        one_err("keepalive abc\n"),
        "ha.cf:3: keepalive: `abc`: not a time; expected seconds (`2`, `0.5`) or a value \
         with a unit (`500ms`, `200000us`, `2s`, `10m`, `1h`)"
    );
    assert_eq!(one_err("deadtime\n"), "ha.cf:3: deadtime: missing value");
    assert_eq!(
        one_err("deadtime 10 20\n"),
        "ha.cf:3: deadtime: takes one value, got 2: `10 20`"
    );
    assert_eq!(
        one_err("keepalive -1\n"),
        "ha.cf:3: keepalive: `-1`: negative time; expected seconds (`2`, `0.5`) or a value \
         with a unit (`500ms`, `200000us`, `2s`, `10m`, `1h`)"
    );
    assert_eq!(
        one_err("keepalive 0\n"),
        "ha.cf:3: keepalive: must be greater than zero"
    );
    assert_eq!(
        one_err("warntime 0ms\n"),
        "ha.cf:3: warntime: must be greater than zero"
    );
    assert_eq!(
        one_err("udpport 70000\n").as_str(),
        "ha.cf:3: udpport: `70000`: not a UDP port (1-65535)"
    );
    assert_eq!(
        one_err("udpport 0\n"),
        "ha.cf:3: udpport: `0`: not a UDP port (1-65535)"
    );
    assert_eq!(
        one_err("hopfudge 256\n"),
        "ha.cf:3: hopfudge: `256`: expected a number from 0 to 255"
    );
    assert_eq!(
        one_err("debug x\n"),
        "ha.cf:3: debug: `x`: expected a number from 0 to 255"
    );
    assert_eq!(ok("debug 3\n").debug, 3);
    assert_eq!(
        one_err("logfile ha-log\n"),
        "ha.cf:3: logfile: `ha-log`: must be an absolute path"
    );
    assert_eq!(
        one_err("node\n"),
        "ha.cf:3: node: missing value: expected `node NAME [NAME...]`"
    );
    assert_eq!(
        one_err("bcast\n"),
        "ha.cf:3: bcast: missing value: expected `bcast IF [IF...]`"
    );
}

#[test]
fn given_twice() {
    assert_eq!(
        one_err("keepalive 1\nkeepalive 2\n"),
        "ha.cf:4: keepalive: given twice (first at line 3); it takes one value"
    );
    for d in [
        "deadtime 5",
        "auto_failback on",
        "logfacility daemon",
        "use_logd no",
        "crm off",
        "logfile /a",
    ] {
        let e = errs(&format!("{d}\n{d}\n"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("given twice (first at line 3)"), "{e:?}");
    }
}

#[test]
fn udpport_twice() {
    let (_, e, _) = run("udpport 694\nudpport 695\nbcast eth0\nnode a\n");
    assert_eq!(
        e,
        vec!["ha.cf:2: udpport: given twice (first at line 1); it takes one value"]
    );
}

#[test]
fn no_media_no_nodes() {
    let (_, e, _) = run("keepalive 1\n");
    assert_eq!(
        e,
        vec![
            "ha.cf: no heartbeat media: add a bcast, mcast or ucast line",
            "ha.cf: no `node` lines: list every cluster node, named as `uname -n` names it",
        ]
    );
    // A wrong media line is reported as itself, not as "no media".
    let (_, e, _) = run("bcast\nnode a\n");
    assert_eq!(
        e,
        vec!["ha.cf:1: bcast: missing value: expected `bcast IF [IF...]`"]
    );
}

#[test]
fn nodes() {
    assert_eq!(
        ok("node c\nnode D e\n").nodes,
        vec!["a", "b", "c", "d", "e"]
    );
    assert_eq!(
        one_err("node a\n"),
        "ha.cf:3: node: `a` is listed twice (first at line 2)"
    );
    assert_eq!(
        one_err("node B\n"),
        "ha.cf:3: node: `b` is listed twice (first at line 2)"
    );
    let long = "x".repeat(65);
    assert_eq!(
        one_err(&format!("node {long}\n")),
        format!("ha.cf:3: node: `{long}`: longer than 64 bytes")
    );
    assert!(errs(&format!("node {}\n", "y".repeat(64))).is_empty());
}

#[test]
fn timing_checks() {
    assert_eq!(
        one_err("keepalive 2\ndeadtime 4\n"),
        "ha.cf:4: deadtime: must be greater than twice keepalive: 4s <= 2 x 2s"
    );
    assert!(errs("keepalive 2\ndeadtime 4.1\n").is_empty());
    assert_eq!(
        one_err("keepalive 20\n"),
        "ha.cf:3: keepalive: must be less than half of deadtime (30s, the default): 2 x 20s >= 30s"
    );
    assert_eq!(
        one_err("deadtime 10\nwarntime 10\n"),
        "ha.cf:4: warntime: must be less than deadtime: warntime 10s >= deadtime 10s"
    );
    assert_eq!(ok("deadtime 10\nwarntime 5\n").warntime, S(5));
    assert_eq!(
        one_err("deadtime 20\ninitdead 15\n"),
        "ha.cf:4: initdead: must be at least deadtime: initdead 15s < deadtime 20s"
    );
    let w = warns("keepalive 200ms\ndeadtime 1\ninitdead 5\n");
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("ha.cf:5: initdead: 5s may be too small"),
        "{w:?}"
    );
    assert_eq!(
        one_err("deadping 2\n"),
        "ha.cf:3: deadping: must be greater than twice keepalive: deadping 2s <= 2 x keepalive 1s"
    );
    assert_eq!(ok("deadping 5\n").deadping, S(5));
    // A bad time skips the cross-checks rather than piling on.
    assert_eq!(errs("keepalive x\ndeadtime 1\n").len(), 1);
    let h = ok("keepalive 200ms\ndeadtime 1\n");
    assert_eq!(
        (h.keepalive, h.deadtime, h.warntime, h.initdead),
        (MS(200), S(1), MS(500), S(12))
    );
}

#[test]
fn udpport_must_come_first() {
    assert_eq!(
        one_err("udpport 695\n"),
        "ha.cf:3: udpport: must come before the bcast/ucast lines it applies to; line 1 \
         (bcast) comes first"
    );
    let (h, e, _) =
        run("udpport 695\nbcast eth0\nucast eth1 10.0.0.2\nmcast eth2 239.1.1.1 700 1 0\nnode a\n");
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(h.udpport, 695);
    let ports: Vec<u16> = h.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, vec![695, 695, 700]);
    // mcast carries its own port: udpport after it is fine.
    let (_, e, _) = run("mcast eth0 239.1.1.1 694 1 0\nudpport 695\nnode a\n");
    assert!(e.is_empty(), "{e:?}");
    let (_, e, _) = run("node a\nucast eth0 10.0.0.2\nudpport 695\n");
    assert_eq!(
        e,
        vec!["ha.cf:3: udpport: must come before the bcast/ucast lines it applies to; line 2 (ucast) comes first"]
    );
}

#[test]
fn bcast_media() {
    let h = ok("bcast eth1 eth2\n");
    let names: Vec<String> = h.media.iter().map(Medium::name).collect();
    assert_eq!(names, vec!["bcast eth0", "bcast eth1", "bcast eth2"]);
    assert_eq!(h.media[2].at.line, 3);
    assert_eq!(
        one_err("bcast eth0\n"),
        "ha.cf:3: bcast: `eth0` already has a bcast medium (line 1)"
    );
    assert_eq!(
        one_err("bcast averyveryverylongname\n"),
        "ha.cf:3: bcast: `averyveryverylongname`: not an interface name (at most 15 bytes, no `/`)"
    );
    let w = warns("udp eth1\n");
    assert_eq!(
        w,
        vec!["ha.cf:3: udp: heartbeat's old name for bcast; write `bcast`"]
    );
}

#[test]
fn mcast_media() {
    let h = ok("mcast eth1 239.0.0.1 694 1 0\n");
    assert_eq!(
        h.media[1].kind,
        MediumKind::Mcast {
            group: Ipv4Addr::new(239, 0, 0, 1),
            ttl: 1,
            loop_: false
        }
    );
    assert_eq!(h.media[1].name(), "mcast eth1 239.0.0.1");
    assert_eq!(
        one_err("mcast eth1 10.0.0.1 694 1 0\n"),
        "ha.cf:3: mcast: `10.0.0.1` is not a multicast group (224.0.0.0/4)"
    );
    assert_eq!(
        one_err("mcast eth1 239.0.0.1 694 0 0\n"),
        "ha.cf:3: mcast: `0`: TTL must be from 1 to 255"
    );
    assert_eq!(
        one_err("mcast eth1 239.0.0.1 694 256 0\n"),
        "ha.cf:3: mcast: `256`: TTL must be from 1 to 255"
    );
    assert_eq!(
        one_err("mcast eth1 239.0.0.1 694 1 2\n"),
        "ha.cf:3: mcast: `2`: loop must be 0 or 1"
    );
    assert_eq!(
        one_err("mcast eth1 239.0.0.1 0 1 1\n"),
        "ha.cf:3: mcast: `0`: not a UDP port (1-65535)"
    );
    assert_eq!(
        one_err("mcast eth1 239.0.0.1 694 1\n"),
        "ha.cf:3: mcast: missing value: expected `mcast IF GROUP PORT TTL LOOP`"
    );
    assert_eq!(
        one_err("mcast eth1 239.0.0.1 694 1 0 x\n"),
        "ha.cf:3: mcast: too many values: expected `mcast IF GROUP PORT TTL LOOP`"
    );
    // Several bad fields: every one is reported.
    assert_eq!(errs("mcast eth1 10.0.0.1 694 0 7\n").len(), 3);
    assert_eq!(
        one_err("mcast eth1 239.0.0.1 694 1 0\nmcast eth1 239.0.0.1 694 2 1\n"),
        "ha.cf:4: mcast: `eth1 239.0.0.1 694` is already a medium (line 3)"
    );
}

#[test]
fn ucast_media_merge() {
    let (h, e, _) = run(
        "ucast eth1 10.0.0.1\nucast eth1 10.0.0.2\nucast eth2 10.0.0.1\nbcast eth0\nnode a b\n",
    );
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(h.media.len(), 3);
    assert_eq!(h.media[0].name(), "ucast eth1");
    assert_eq!(
        h.media[0].kind,
        MediumKind::Ucast {
            peers: vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
        }
    );
    assert_eq!(h.media[0].at.line, 1);
    assert_eq!(
        h.media[1].kind,
        MediumKind::Ucast {
            peers: vec![Ipv4Addr::new(10, 0, 0, 1)]
        }
    );
    assert_eq!(h.media[2].kind, MediumKind::Bcast);
    assert_eq!(
        one_err("ucast eth1 10.0.0.1\nucast eth1 10.0.0.1\n"),
        "ha.cf:4: ucast: `eth1 10.0.0.1` is already listed (line 3)"
    );
}

#[test]
fn ucast_refuses_host_names() {
    assert_eq!(
        one_err("ucast eth1 peer2\n"),
        "ha.cf:3: ucast: `peer2` is a host name, not an IPv4 address: hbd does not resolve \
         names at start-up, so a DNS outage cannot block a failover; write the address"
    );
    assert_eq!(
        one_err("ucast eth1 peer2.example.com\n"),
        "ha.cf:3: ucast: `peer2.example.com` is a host name, not an IPv4 address: hbd does \
         not resolve names at start-up, so a DNS outage cannot block a failover; write the address"
    );
    assert_eq!(
        one_err("ucast eth1 fe80::1\n"),
        "ha.cf:3: ucast: `fe80::1`: IPv6 addresses are not supported; write an IPv4 address"
    );
    assert_eq!(
        one_err("ucast eth1 10.0.0.300\n"),
        "ha.cf:3: ucast: `10.0.0.300`: not an IPv4 address"
    );
    assert_eq!(
        one_err("ucast eth1\n"),
        "ha.cf:3: ucast: missing value: expected `ucast IF PEER-ADDRESS`"
    );
}

#[test]
fn auto_failback_values() {
    assert_eq!(ok("auto_failback on\n").auto_failback, AutoFailback::On);
    assert_eq!(ok("auto_failback yes\n").auto_failback, AutoFailback::On);
    assert_eq!(ok("auto_failback off\n").auto_failback, AutoFailback::Off);
    assert_eq!(
        ok("auto_failback legacy\n").auto_failback,
        AutoFailback::Legacy
    );
    assert!(warns("auto_failback legacy\n")[0]
        .starts_with("ha.cf:3: auto_failback: legacy is deprecated"));
    assert_eq!(
        one_err("auto_failback sometimes\n"),
        "ha.cf:3: auto_failback: `sometimes`: expected on, off or legacy"
    );
}

#[test]
fn logging() {
    assert_eq!(ok("logfacility none\n").logfacility, None);
    assert_eq!(
        ok("logfacility LOCAL7\n").logfacility.as_deref(),
        Some("local7")
    );
    for (f, _) in SYSLOG_FACILITIES {
        assert_eq!(
            ok(&format!("logfacility {f}\n")).logfacility.as_deref(),
            Some(*f)
        );
    }
    assert!(one_err("logfacility local8\n")
        .starts_with("ha.cf:3: logfacility: `local8`: not a syslog facility"));
    assert_eq!(
        warns("use_logd yes\n"),
        vec!["ha.cf:3: use_logd: hbd has no logd; it logs to syslog (logfacility), logfile and debugfile instead"]
    );
    assert!(ok("use_logd true\n").use_logd);
    assert!(warns("use_logd off\n").is_empty());
    for b in [
        "yes", "no", "on", "off", "true", "false", "y", "n", "1", "0", "YES",
    ] {
        assert!(errs(&format!("use_logd {b}\n")).is_empty(), "{b}");
    }
    assert_eq!(
        one_err("use_logd maybe\n"),
        "ha.cf:3: use_logd: `maybe`: expected yes or no (on/off, true/false, y/n, 1/0)"
    );
}

#[test]
fn ping_and_ping_group() {
    let h = ok("ping 10.0.0.254 10.0.0.253\nping_group gw 10.1.0.1 10.1.0.2\n");
    let addrs: Vec<Ipv4Addr> = h.ping.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        addrs,
        vec![Ipv4Addr::new(10, 0, 0, 254), Ipv4Addr::new(10, 0, 0, 253)]
    );
    assert_eq!(h.ping[0].1.line, 3);
    assert_eq!(h.ping_groups.len(), 1);
    assert_eq!(h.ping_groups[0].name, "gw");
    assert_eq!(h.ping_groups[0].addrs.len(), 2);
    assert_eq!(h.ping_groups[0].at.line, 4);
    assert!(one_err("ping router\n").starts_with("ha.cf:3: ping: `router` is a host name"));
    assert_eq!(
        one_err("ping\n"),
        "ha.cf:3: ping: missing value: expected `ping ADDRESS [ADDRESS...]`"
    );
    assert_eq!(
        one_err("ping 10.0.0.1\nping 10.0.0.1\n"),
        "ha.cf:4: ping: `10.0.0.1` is listed twice (first at line 3)"
    );
    assert_eq!(
        one_err("ping_group gw\n"),
        "ha.cf:3: ping_group: `gw`: missing value: expected `ping_group NAME ADDRESS [ADDRESS...]`"
    );
    assert_eq!(
        one_err("ping_group a 10.0.0.1\n"),
        "ha.cf:3: ping_group: `a` is also a node name (line 2)"
    );
    assert_eq!(
        one_err("ping_group g 10.0.0.1\nping_group g 10.0.0.2\n"),
        "ha.cf:4: ping_group: `g` is defined twice (first at line 3)"
    );
}

#[test]
fn respawn() {
    let h = ok("respawn root /bin/sh -c 'exit 0'   # comment\n");
    assert_eq!(
        h.respawn,
        vec![Respawn {
            user: "root".into(),
            command: "/bin/sh -c 'exit 0'".into(),
            at: Location {
                file: "ha.cf".into(),
                line: 3
            },
            builtin: None,
        }]
    );
    // heartbeat's helpers: built in, accepted even when not installed.
    let h = ok("respawn hacluster /usr/lib/heartbeat/ipfail\n\
                respawn hacluster /usr/lib64/heartbeat/dopd\n\
                respawn root /usr/lib/heartbeat/ifcheckd -x\n");
    let b: Vec<_> = h.respawn.iter().map(|r| r.builtin).collect();
    assert_eq!(
        b,
        [
            Some(BuiltinHelper::Ipfail),
            Some(BuiltinHelper::Dopd),
            Some(BuiltinHelper::Ifcheckd)
        ]
    );
    assert_eq!(h.respawn[2].command, "/usr/lib/heartbeat/ifcheckd -x");
    assert_eq!(
        one_err("respawn no_such_user_hbd /bin/sh\n"),
        "ha.cf:3: respawn: user `no_such_user_hbd` does not exist"
    );
    assert_eq!(
        one_err("respawn root bin/sh\n"),
        "ha.cf:3: respawn: `bin/sh`: the program must be an absolute path"
    );
    assert!(one_err("respawn root /etc/passwd\n")
        .starts_with("ha.cf:3: respawn: `/etc/passwd` is not executable"));
    assert_eq!(
        one_err("respawn root\n"),
        "ha.cf:3: respawn: missing value: expected `respawn USER /path/to/program [ARGS...]`"
    );
}

#[test]
fn crm() {
    assert!(errs("crm off\n").is_empty());
    assert!(errs("crm no\n").is_empty());
    for v in ["on", "yes", "respawn", "true"] {
        assert_eq!(
            one_err(&format!("crm {v}\n")),
            format!("ha.cf:3: crm: `{v}`: hbd runs haresources resource groups, not the CRM (Pacemaker); drop the line")
        );
    }
    assert_eq!(
        one_err("crm bogus\n"),
        "ha.cf:3: crm: `bogus`: only `crm off` is accepted"
    );
}

#[test]
fn every_error_is_collected() {
    let (_, e, _) = run(
        "keepalive x\nfrobnicate\nserial /dev/ttyS0\nucast eth0 peer\nnode a\nnode a\nauto_failback maybe\n",
    );
    let lines: Vec<&str> = e.iter().map(|s| &s[..s.find(": ").unwrap()]).collect();
    assert_eq!(
        lines,
        vec!["ha.cf:1", "ha.cf:2", "ha.cf:3", "ha.cf:4", "ha.cf:6", "ha.cf:7"]
    );
}

#[test]
fn stonith_host_and_watchdog() {
    let h = ok("stonith_host * fence_hbd_lab lab=x\n\
                stonith_host a external/ipmi b 192.0.2.12 admin pw lanplus\n\
                watchdog /dev/watchdog\n");
    assert_eq!(h.stonith_hosts.len(), 2);
    assert_eq!(h.stonith_hosts[0].0.agent, "fence_hbd_lab");
    assert_eq!(h.stonith_hosts[0].1.line, 3);
    assert_eq!(h.stonith_hosts[1].0.agent, "fence_ipmilan");
    assert_eq!(h.stonith_hosts[1].0.from.as_deref(), Some("a"));
    let (dev, at) = h.watchdog.unwrap();
    assert_eq!(dev, PathBuf::from("/dev/watchdog"));
    assert_eq!(at.line, 5);
    assert_eq!(ok("").watchdog, None);
    let w = warns("stonith_host * fence_hbd_no_such_agent a=b\n");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with(
        "ha.cf:3: stonith_host: `fence_hbd_no_such_agent` not found (PATH, /usr/sbin, \
         hbd's resources/fence): install fence-agents"
    ));

    assert_eq!(
        one_err("stonith_host * external/ssh a b\n"),
        "ha.cf:3: stonith_host: `external/ssh`: ssh is not fencing: a hung or cut-off \
         node does not answer ssh, which is exactly when fencing is needed; use a power \
         or management-board agent (fence_ipmilan, fence_apc_snmp, fence_virsh...) or \
         the `watchdog` directive"
    );
    assert_eq!(
        one_err("stonith_host c fence_x a=b\n"),
        "ha.cf:3: stonith_host: `c` is not a node (node lines: a b)"
    );
    assert_eq!(
        one_err("stonith_host a external/ipmi z 192.0.2.1 u p\n"),
        "ha.cf:3: stonith_host: `z` is not a node (node lines: a b)"
    );
    assert!(one_err("stonith /etc/ha.d/stonith.cfg\n").starts_with(
        "ha.cf:3: stonith: heartbeat's device-file form is not supported: \
                      write the device on a `stonith_host` line"
    ));
    assert_eq!(
        one_err("watchdog dev/watchdog\n"),
        "ha.cf:3: watchdog: `dev/watchdog`: must be an absolute path"
    );
    assert!(
        one_err("watchdog /dev/a\nwatchdog /dev/b\n").starts_with("ha.cf:4: watchdog: given twice")
    );
    // Exit 2 follows from any error (config::load); the full load is
    // tested in tests/config.rs.
}

#[test]
fn real_world_forms() {
    // udpport at the port the media before it already use: a note, as
    // heartbeat says nothing of it; another port after them stays an error.
    let w = warns("udpport 694\n");
    assert_eq!(
        w,
        [
            "ha.cf:3: udpport: no effect: the bcast/ucast lines before it (line 1, bcast) \
          already use port 694; udpport applies to the lines after it"
        ]
    );
    // Values separated by commas and/or blanks.
    let h = ok("bcast eth1, eth2,eth3\nping 192.0.2.1,192.0.2.2\n");
    let ifs: Vec<&str> = h.media.iter().map(|m| m.iface.as_str()).collect();
    assert_eq!(ifs, ["eth0", "eth1", "eth2", "eth3"]);
    assert_eq!(h.ping.len(), 2);
    let (h, e, _) = run("bcast eth0\nnode Node-A, node-b\n");
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(h.nodes, ["node-a", "node-b"]);
    // pacemaker: crm's other name.
    assert!(errs("pacemaker off\n").is_empty());
    let e = one_err("pacemaker on\n");
    assert!(
        e.starts_with("ha.cf:3: pacemaker: `on`: hbd is not Pacemaker: it runs the haresources"),
        "{e}"
    );
    assert!(e.contains("write `pacemaker off` or drop the line"), "{e}");
    assert_eq!(
        one_err("pacemaker maybe\n"),
        "ha.cf:3: pacemaker: `maybe`: only `pacemaker off` is accepted"
    );
}

#[test]
fn heartbeat_helpers_say_what_replaces_them() {
    let (h, e, w) = run("bcast eth0\nnode a b\n\
         respawn hacluster /usr/lib/heartbeat/ipfail\n\
         apiauth ipfail gid=haclient uid=hacluster\n\
         respawn hacluster /usr/lib/heartbeat/dopd\n\
         apiauth dopd gid=haclient uid=hacluster\n\
         respawn root /usr/lib64/heartbeat/pingd -m 100 -d 5s\n\
         apiauth mgmtd uid=root\n\
         apiauth default gid=haclient\n\
         respawn hacluster /usr/lib/heartbeat/ccm\n");
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(h.respawn.len(), 4);
    assert!(h.respawn.iter().all(|r| r.builtin.is_some()));
    assert_eq!(w.len(), 8, "{w:#?}");
    assert!(
        w[0].starts_with(
            "ha.cf:3: respawn: ipfail: built into hbd: the `ping` and `ping_group` nodes"
        ),
        "{w:?}"
    );
    assert!(w[0].ends_with("; nothing is started"), "{w:?}");
    assert!(
        w[1].starts_with("ha.cf:4: apiauth: no effect: `ipfail` is built into hbd"),
        "{w:?}"
    );
    assert!(
        w[2].contains("dopd: built into hbd: the disk's fence-peer"),
        "{w:?}"
    );
    assert!(w[4].contains("pingd: built into hbd"), "{w:?}");
    assert!(
        w[5].starts_with("ha.cf:8: apiauth: no effect: `mgmtd` is not needed"),
        "{w:?}"
    );
    assert!(
        w[6].starts_with(
            "ha.cf:9: apiauth: no effect: hbd has no heartbeat API clients (`default`)"
        ),
        "{w:?}"
    );
    assert!(
        w[7].contains("ccm: built into hbd: its membership"),
        "{w:?}"
    );
    // Other programs keep the checks.
    let e = one_err("respawn root /nonexistent/hbd-helper\n");
    assert!(e.contains("is not executable"), "{e}");
    assert_eq!(
        one_err("apiauth\n"),
        "ha.cf:3: apiauth: missing value: expected `apiauth CLIENT uid=USER gid=GROUP`"
    );
}
