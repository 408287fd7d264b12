use super::*;
use proptest::prelude::*;
use std::path::PathBuf;

/// Seed 000's two files, verbatim (with the guide's `<...>` placeholders).
const SEED_000_SMESQL01: &str =
    include_str!("../../../tests/data/keepalived/seed000_smesql01.conf");
const SEED_000_SMESQL02: &str =
    include_str!("../../../tests/data/keepalived/seed000_smesql02.conf");
/// Seed 001's revision of the same files: the page lost every `}`.
const SEED_001_SMESQL01: &str =
    include_str!("../../../tests/data/keepalived/seed001_smesql01.conf");
const SEED_001_SMESQL02: &str =
    include_str!("../../../tests/data/keepalived/seed001_smesql02.conf");
/// Seed 004's two files (U+00A0 indentation), verbatim.
const SEED_004_SCRIPTS: &str = include_str!("../../../tests/data/keepalived/seed004_scripts.conf");
const SEED_004_BASIC: &str = include_str!("../../../tests/data/keepalived/seed004_basic.conf");
const EXAMPLE_NODE1: &str = include_str!("../../../etc/keepalived/node1/keepalived.conf");
const EXAMPLE_NODE2: &str = include_str!("../../../etc/keepalived/node2/keepalived.conf");

/// Seed 000 with its placeholders filled with the guide's own examples.
fn filled(text: &str) -> String {
    text.replace("<db VIP address - ex: '10.10.10.1'>", "10.10.10.1")
        .replace("<memcached VIP address - ex: '10.10.10.2'>", "10.10.10.2")
        .replace("<8 character password>", "s3cr3t!x")
}

fn run(text: &str) -> (KeepalivedConf, Vec<String>, Vec<String>) {
    let (c, e, w) = parse(Path::new("keepalived.conf"), text);
    (
        c,
        e.iter().map(|e| e.to_string()).collect(),
        w.iter().map(|w| w.to_string()).collect(),
    )
}

fn errs(text: &str) -> Vec<String> {
    run(text).1
}

fn warns(text: &str) -> Vec<String> {
    let (_, e, w) = run(text);
    assert_eq!(e, Vec::<String>::new());
    w
}

fn loc(line: usize) -> Location {
    Location {
        file: PathBuf::from("keepalived.conf"),
        line,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const PLACEHOLDER: &str = "is a template placeholder: put the real value here";
const STRICT_PRIO: &str = "< 255: keepalived 2.2.7 installs no_accept firewall rules and the VIP stops answering; hbd keeps the VIP reachable unless `no_accept` is set explicitly";
const STRICT_AUTH: &str = "authentication: keepalived ignores authentication in strict mode: adverts carry none, and neither do hbd's";
const STRICT_MASTER: &str =
    "in strict mode: keepalived starts as BACKUP (MASTER requires priority 255); so does hbd";
const NOPREEMPT_STRICT_MASTER: &str = "nopreempt: `nopreempt` with `state MASTER`: keepalived ignores nopreempt unless the instance starts as BACKUP; here strict mode starts it as BACKUP, so nopreempt holds: write `state BACKUP` to say so";

#[test]
fn seed_000_verbatim_only_the_placeholders_are_errors() {
    let (_, e, w) = run(SEED_000_SMESQL01);
    assert_eq!(
            e,
            strings(&[
                &format!("keepalived.conf:34: virtual_ipaddress: `<db VIP address - ex: '10.10.10.1'>` {PLACEHOLDER}"),
                &format!("keepalived.conf:41: auth_pass: `<8 character password>` {PLACEHOLDER}"),
                &format!("keepalived.conf:53: virtual_ipaddress: `<memcached VIP address - ex: '10.10.10.2'>` {PLACEHOLDER}"),
                &format!("keepalived.conf:60: auth_pass: `<8 character password>` {PLACEHOLDER}"),
            ])
        );
    assert_eq!(w.len(), 6, "{w:#?}");
    let (_, e, _) = run(SEED_000_SMESQL02);
    assert_eq!(
            e,
            strings(&[
                &format!("keepalived.conf:34: virtual_ipaddress: `<db VIP address - ex: '10.10.10.1'>` {PLACEHOLDER}"),
                &format!("keepalived.conf:41: auth_pass: `<8 character password>` {PLACEHOLDER}"),
                &format!("keepalived.conf:52: virtual_ipaddress: `<memcached VIP address - ex: '10.10.10.2'>` {PLACEHOLDER}"),
                &format!("keepalived.conf:59: auth_pass: `<8 character password>` {PLACEHOLDER}"),
            ])
        );
}

#[test]
fn seed_000_smesql01_filled() {
    let (c, e, w) = run(&filled(SEED_000_SMESQL01));
    assert_eq!(e, Vec::<String>::new());
    assert_eq!(
        w,
        strings(&[
            &format!("keepalived.conf:28: state: `state MASTER` with priority 105 {STRICT_MASTER}"),
            &format!("keepalived.conf:31: priority: `vrrp_strict` with priority 105 {STRICT_PRIO}"),
            &format!("keepalived.conf:32: {NOPREEMPT_STRICT_MASTER}"),
            &format!("keepalived.conf:39: {STRICT_AUTH}"),
            &format!("keepalived.conf:47: state: `state MASTER` with priority 105 {STRICT_MASTER}"),
            &format!("keepalived.conf:50: priority: `vrrp_strict` with priority 105 {STRICT_PRIO}"),
            &format!("keepalived.conf:51: {NOPREEMPT_STRICT_MASTER}"),
            &format!("keepalived.conf:58: {STRICT_AUTH}"),
        ])
    );
    let g = &c.global;
    assert!(g.vrrp_strict && g.vrrp_skip_check_adv_addr && g.enable_script_security);
    assert!(g.notification_email.is_empty());
    assert_eq!(g.vrrp_garp_interval, Duration::ZERO);
    assert_eq!(g.vrrp_gna_interval, Duration::ZERO);
    assert_eq!(g.vrrp_version, 2);
    assert_eq!(g.at, Some(loc(3)));
    let s = c.script("chk_mariadb").unwrap();
    assert_eq!(
        *s,
        VrrpScript {
            name: "chk_mariadb".into(),
            command: Command {
                text: "/sbin/pidof mysqld".into(),
                argv: strings(&["/sbin/pidof", "mysqld"]),
            },
            interval: Duration::from_secs(2),
            timeout: None,
            weight: 0,
            weight_reverse: false,
            rise: 5,
            fall: 5,
            init_fail: false,
            user: None,
            at: loc(13),
        }
    );
    assert_eq!(s.effective_timeout(), Duration::from_secs(2));
    assert_eq!(
        c.script("chk_memcache").unwrap().command.argv[1],
        "memcached"
    );
    let db = c.instance("DB").unwrap();
    assert_eq!(db.state, Some(InitialState::Master));
    assert_eq!(db.interface, "eth0");
    assert_eq!((db.vrid, db.priority), (51, Some(105)));
    assert!(db.nopreempt);
    assert_eq!(
        db.vips,
        vec![Vip {
            addr: Ipv4Addr::new(10, 10, 10, 1),
            prefix: 32,
            brd: None,
            dev: None,
            scope: None,
            label: None,
            at: loc(34),
        }]
    );
    assert_eq!(db.track_scripts[0].name, "chk_mariadb");
    assert_eq!(db.track_scripts[0].weight, None);
    assert_eq!(db.auth, Some(Auth::Pass("s3cr3t!x".into())));
    let n = db.notify.notify.as_ref().unwrap();
    assert_eq!(
        n.command.argv,
        strings(&["/usr/libexec/keepalived/keepalived_state.sh"])
    );
    assert_eq!(
        n.user,
        Some(ScriptUser {
            user: "root".into(),
            group: None
        })
    );
    assert_eq!(n.at, loc(43));
    // What keepalived 2.2.7 makes of it in strict mode: BACKUP, nopreempt
    // holds, no authentication on the wire; hbd keeps the VIP reachable.
    assert_eq!(db.initial_state(g), InitialState::Backup);
    assert!(!db.preempt(g));
    assert_eq!(db.effective_auth(g), None);
    assert!(db.accept());
    assert_eq!(db.effective_version(g), 2);
    assert_eq!(db.advert_interval(g), Duration::from_secs(1));
    assert_eq!(db.garp_master_delay(g), Duration::from_secs(5));
    assert_eq!(db.garp_master_repeat(g), 5);
    let mc = c.instance("MEMCACHE").unwrap();
    assert_eq!(
        (mc.vrid, mc.vips[0].addr),
        (61, Ipv4Addr::new(10, 10, 10, 2))
    );
    assert!(c.sync_groups.is_empty());
}

#[test]
fn seed_000_smesql02_filled() {
    let (c, e, w) = run(&filled(SEED_000_SMESQL02));
    assert_eq!(e, Vec::<String>::new());
    assert_eq!(
        w,
        strings(&[
            &format!("keepalived.conf:31: priority: `vrrp_strict` with priority 100 {STRICT_PRIO}"),
            &format!("keepalived.conf:39: {STRICT_AUTH}"),
            &format!("keepalived.conf:49: priority: `vrrp_strict` with priority 100 {STRICT_PRIO}"),
            &format!("keepalived.conf:57: {STRICT_AUTH}"),
        ])
    );
    let db = c.instance("DB").unwrap();
    assert_eq!(db.initial_state(&c.global), InitialState::Backup);
    assert_eq!(db.base_priority(), 100);
    assert!(!db.preempt(&c.global));
    // The tab-indented notify line.
    assert_eq!(db.notify.notify.as_ref().unwrap().at, loc(43));
}

#[test]
fn seed_001_as_published_lost_its_closing_braces() {
    for text in [SEED_001_SMESQL01, SEED_001_SMESQL02] {
        let e = errs(text);
        assert!(
            e.contains(
                &"keepalived.conf:3: global_defs: `{` is never closed: missing `}`".to_string()
            ),
            "{e:#?}"
        );
        assert!(e.iter().filter(|e| e.contains("is never closed")).count() >= 12);
    }
}

#[test]
fn seed_004_verbatim() {
    let (c, e, w) = run(SEED_004_SCRIPTS);
    assert_eq!(e, Vec::<String>::new());
    assert_eq!(
            w,
            strings(&["keepalived.conf:23: auth_pass: the password is 36 bytes: keepalived (and hbd) use only the first 8"])
        );
    let h = c.script("chk_httpd").unwrap();
    assert_eq!(h.command.argv, strings(&["killall", "-0", "httpd"]));
    assert_eq!(
        (h.interval, h.weight, h.rise, h.fall),
        (Duration::from_secs(2), 50, 1, 1)
    );
    let i = c.instance("VI_1").unwrap();
    assert_eq!(
        (i.vrid, i.priority, i.state),
        (1, Some(101), Some(InitialState::Master))
    );
    assert_eq!(i.advert_int, Duration::from_secs(1));
    assert_eq!(i.auth, Some(Auth::Pass("319e49e4".into())));
    assert_eq!(i.effective_auth(&c.global), i.auth.as_ref());
    assert_eq!(i.vips[0].addr, Ipv4Addr::new(1, 2, 3, 4));
    let names: Vec<&str> = i.track_scripts.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["chk_httpd", "chk_mysqld"]);
    assert_eq!(i.initial_state(&c.global), InitialState::Master);
    assert!(i.preempt(&c.global));

    let (c, e, w) = run(SEED_004_BASIC);
    assert_eq!(e, Vec::<String>::new());
    assert_eq!(
            w,
            strings(&["keepalived.conf:9: auth_pass: the password is 36 bytes: keepalived (and hbd) use only the first 8"])
        );
    assert_eq!(c.instances.len(), 1);
    assert!(c.scripts.is_empty());
}

#[test]
fn examples_are_clean_and_differ_only_in_priority() {
    let (a, e, w) = run(EXAMPLE_NODE1);
    assert!(e.is_empty() && w.is_empty(), "{e:#?} {w:#?}");
    let (b, e, w) = run(EXAMPLE_NODE2);
    assert!(e.is_empty() && w.is_empty(), "{e:#?} {w:#?}");
    for (x, y) in a.instances.iter().zip(&b.instances) {
        assert_eq!(
            (x.vrid, x.base_priority(), y.base_priority()),
            (x.vrid, 105, 100)
        );
        assert_eq!(x.vips, y.vips);
        assert_eq!(x.initial_state(&a.global), InitialState::Backup);
        assert!(!x.preempt(&a.global));
        assert_eq!(
            x.effective_auth(&a.global),
            Some(&Auth::Pass("Xq7rT2pw".into()))
        );
        assert!(x.vips[0].addr.octets()[..3] == [192, 0, 2]);
    }
    assert_eq!(a.instances.len(), 2);
}

/// A valid instance around `extra` (line 10); `vrrp_script chk` on line 1.
fn base(extra: &str) -> String {
    format!(
            "vrrp_script chk {{\n script \"/bin/true\"\n}}\nvrrp_instance VI {{\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {{\n  192.0.2.10/24\n }}\n{extra}\n}}\n"
        )
}

fn one(text: &str, want: &str) {
    let e = errs(text);
    assert!(
        e.iter().any(|e| e.starts_with(want)),
        "want `{want}...` in {e:#?}"
    );
}

fn warned(text: &str, want: &str) {
    let w = warns(text);
    assert!(
        w.iter().any(|w| w.starts_with(want)),
        "want `{want}...` in {w:#?}"
    );
}

#[test]
fn defaults() {
    let (c, e, w) = run(&base(""));
    assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
    let g = &c.global;
    assert_eq!(*g, GlobalDefs::default());
    let i = &c.instances[0];
    assert_eq!(i.state, None);
    assert_eq!(i.base_priority(), 100);
    assert_eq!(i.initial_state(g), InitialState::Backup);
    assert_eq!(i.advert_interval(g), Duration::from_secs(1));
    assert!(i.preempt(g) && i.accept() && !i.strict(g));
    assert_eq!(i.effective_version(g), 2);
    assert_eq!(
        i.vips[0],
        Vip {
            addr: Ipv4Addr::new(192, 0, 2, 10),
            prefix: 24,
            brd: None,
            dev: None,
            scope: None,
            label: None,
            at: loc(8),
        }
    );
    assert_eq!(i.at, loc(4));
    let s = &c.scripts[0];
    assert_eq!(
        (s.interval, s.weight, s.rise, s.fall),
        (Duration::from_secs(1), 0, 1, 1)
    );
    assert_eq!(s.effective_timeout(), Duration::from_secs(1));
    assert_eq!(g.vrrp_mcast_group4, Ipv4Addr::new(224, 0, 0, 18));
    assert_eq!(g.vrrp_garp_master_refresh, Duration::ZERO);
    assert_eq!(g.vrrp_garp_master_refresh_repeat, 1);
    // Without a priority, `state MASTER` means the address owner.
    let (c, _, _) = run(&base("state MASTER"));
    assert_eq!(c.instances[0].base_priority(), 255);
    assert_eq!(
        c.instances[0].initial_state(&c.global),
        InitialState::Master
    );
    // Without a state, priority 255 starts as MASTER.
    let (c, _, _) = run(&base("priority 255"));
    assert_eq!(
        c.instances[0].initial_state(&c.global),
        InitialState::Master
    );
}

#[test]
fn full_instance() {
    let text = base(
            "state BACKUP\npriority 90\nadvert_int 0.1\nversion 3\npreempt_delay 30\n\
             virtual_ipaddress_excluded {\n 192.0.2.20/24 brd 192.0.2.255 dev eth1 scope global label eth1:vip\n}\n\
             track_script {\n chk weight -20 reverse\n}\ntrack_interface {\n eth1 weight 10\n eth2\n}\n\
             notify_master \"/etc/hbd/m.sh 'two words' x\\ y\" nobody nogroup\nnotify_backup /etc/hbd/b.sh\n\
             notify_fault /etc/hbd/f.sh\nnotify_stop /etc/hbd/s.sh\n\
             unicast_src_ip 192.0.2.1\nunicast_peer {\n 192.0.2.2\n 192.0.2.3\n}\n\
             garp_master_delay 1\ngarp_master_repeat 3\ngarp_master_refresh 60\ngarp_master_refresh_repeat 2\n\
             use_vmac vrrp.7\nvmac_xmit_base\ndont_track_primary\nno_accept\nskip_check_adv_addr off",
        );
    let (c, e, w) = run(&text);
    assert!(e.is_empty() && w.is_empty(), "{e:#?} {w:#?}");
    let g = &c.global;
    let i = &c.instances[0];
    assert_eq!(i.effective_version(g), 3);
    assert_eq!(i.advert_interval(g), Duration::from_millis(100));
    assert_eq!(i.effective_preempt_delay(g), Duration::from_secs(30));
    assert_eq!(
        i.excluded_vips[0],
        Vip {
            addr: Ipv4Addr::new(192, 0, 2, 20),
            prefix: 24,
            brd: Some(Ipv4Addr::new(192, 0, 2, 255)),
            dev: Some("eth1".into()),
            scope: Some("global".into()),
            label: Some("eth1:vip".into()),
            at: loc(16),
        }
    );
    assert_eq!(
        i.track_scripts[0],
        TrackScript {
            name: "chk".into(),
            weight: Some(-20),
            reverse: true,
            at: loc(19),
        }
    );
    assert_eq!(i.track_interfaces.len(), 2);
    assert_eq!(
        (i.track_interfaces[0].weight, i.track_interfaces[1].weight),
        (10, 0)
    );
    let m = i.notify.master.as_ref().unwrap();
    assert_eq!(
        m.command.argv,
        strings(&["/etc/hbd/m.sh", "two words", "x y"])
    );
    assert_eq!(
        m.user,
        Some(ScriptUser {
            user: "nobody".into(),
            group: Some("nogroup".into())
        })
    );
    assert_eq!(i.notify.all().len(), 4);
    assert_eq!(i.unicast_src_ip, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(i.unicast_peers.len(), 2);
    assert_eq!(i.garp_master_delay(g), Duration::from_secs(1));
    assert_eq!(i.garp_master_repeat(g), 3);
    assert_eq!(i.garp_master_refresh(g), Duration::from_secs(60));
    assert_eq!(i.garp_master_refresh_repeat(g), 2);
    assert!(i.use_vmac && i.vmac_xmit_base && i.dont_track_primary);
    assert_eq!(i.vmac_name.as_deref(), Some("vrrp.7"));
    assert!(!i.accept());
    assert!(!i.skip_check_adv_addr(g));
}

#[test]
fn global_defs_and_sync_group() {
    let text = format!(
            "global_defs {{\n router_id lb1\n vrrp_version 3\n script_user keepalived_script users\n\
             vrrp_garp_master_delay 2\n vrrp_garp_master_repeat 1\n vrrp_garp_master_refresh 30\n\
             vrrp_garp_master_refresh_repeat 4\n vrrp_garp_interval 0.001\n vrrp_mcast_group4 224.0.0.19\n}}\n{}\
             vrrp_sync_group G {{\n group {{\n  VI\n }}\n notify \"/bin/g\"\n}}\n",
            base("")
        );
    let (c, e, w) = run(&text);
    assert!(e.is_empty() && w.is_empty(), "{e:#?} {w:#?}");
    let g = &c.global;
    assert_eq!(g.router_id.as_deref(), Some("lb1"));
    assert_eq!(
        g.script_user,
        Some(ScriptUser {
            user: "keepalived_script".into(),
            group: Some("users".into())
        })
    );
    assert_eq!(g.vrrp_garp_interval, Duration::from_millis(1));
    assert_eq!(g.vrrp_mcast_group4, Ipv4Addr::new(224, 0, 0, 19));
    let i = &c.instances[0];
    assert_eq!(i.effective_version(g), 3);
    assert_eq!(i.garp_master_delay(g), Duration::from_secs(2));
    assert_eq!(i.garp_master_repeat(g), 1);
    assert_eq!(i.garp_master_refresh(g), Duration::from_secs(30));
    assert_eq!(i.garp_master_refresh_repeat(g), 4);
    assert_eq!(c.sync_groups[0].instances, strings(&["VI"]));
    assert_eq!(c.group_of("VI").unwrap().name, "G");
    assert!(c.sync_groups[0].notify.notify.is_some());
}

#[test]
fn syntax_variants() {
    // `{` on the next line, one-line blocks, `#` and `!` comments, CRLF.
    let text = "vrrp_script chk\n{\n script /bin/true # comment\n}\r\nvrrp_instance VI { ! c\n interface eth0\r\n virtual_router_id 7\n virtual_ipaddress { 192.0.2.10 }\n track_script { chk }\n}\n";
    let (c, e, w) = run(text);
    assert!(e.is_empty() && w.is_empty(), "{e:#?} {w:#?}");
    assert_eq!(c.instances[0].vips[0].prefix, 32);
    assert_eq!(c.instances[0].track_scripts[0].name, "chk");
    assert_eq!(c.scripts[0].command.argv, strings(&["/bin/true"]));
}

#[test]
fn error_cases() {
    let k = "keepalived.conf";
    // unknown and unsupported
    one(
        "bogus 1\n",
        &format!("{k}:1: bogus: `bogus`: not supported by hbd (in `keepalived.conf`)"),
    );
    one(
        "virtual_server 192.0.2.1 80 {\n}\n",
        &format!("{k}:1: virtual_server: hbd does not do LVS"),
    );
    one(
        "virtual_server_group G {\n}\n",
        &format!("{k}:1: virtual_server_group: hbd does not do LVS"),
    );
    one(
        "include /etc/keepalived/*.conf\n",
        &format!("{k}:1: include: `include`: not supported by hbd"),
    );
    one(
        "global_defs {\n notify_fifo /run/f\n}\n",
        &format!("{k}:2: notify_fifo: `notify_fifo`: not supported by hbd (in `global_defs`)"),
    );
    one(
        &base("track_file {\n f\n}"),
        &format!("{k}:10: track_file: `track_file`: not supported by hbd (in `vrrp_instance`)"),
    );
    one(
        &base("virtual_routes {\n}"),
        &format!("{k}:10: virtual_routes: `virtual_routes`: not supported"),
    );
    one(
        "vrrp_script s {\n script /bin/true\n foo 1\n}\n",
        &format!("{k}:3: foo: `foo`: not supported by hbd (in `vrrp_script`)"),
    );
    one(
        &base("vrrp_version 3"),
        &format!("{k}:10: vrrp_version: inside `vrrp_instance` the keyword is `version`"),
    );
    // authentication
    one(
        &base("authentication {\n auth_type AH\n auth_pass secret\n}"),
        &format!("{k}:11: auth_type: `AH`: IPsec AH authentication is not supported by hbd"),
    );
    one(
        &base("authentication {\n auth_type XX\n}"),
        &format!("{k}:11: auth_type: `XX`: expected PASS"),
    );
    one(
        &base("authentication {\n auth_pass secret\n}"),
        &format!("{k}:10: authentication: `auth_pass` without `auth_type PASS`"),
    );
    one(
        &base("authentication {\n auth_type PASS\n}"),
        &format!("{k}:10: authentication: `auth_type PASS` without `auth_pass`"),
    );
    one(
        &base("authentication {\n auth_type PASS\n auth_pass \"\"\n}"),
        &format!("{k}:12: auth_pass: empty password"),
    );
    one(
        &base("authentication {\n auth_type PASS\n auth_pass a b\n}"),
        &format!("{k}:12: auth_pass: unexpected `b`"),
    );
    // required settings
    let no_vrid = base("").replace(" virtual_router_id 7\n", "");
    one(
        &no_vrid,
        &format!("{k}:4: vrrp_instance: vrrp_instance `VI` has no `virtual_router_id`"),
    );
    let no_if = base("").replace(" interface eth0\n", "");
    one(
        &no_if,
        &format!("{k}:4: vrrp_instance: vrrp_instance `VI` has no `interface`"),
    );
    let no_vip = base("strict_mode").replace("  192.0.2.10/24\n", "");
    one(&no_vip, &format!("{k}:4: vrrp_instance: vrrp_instance `VI` has no `virtual_ipaddress` (keepalived refuses it in strict mode and with VRRPv3)"));
    one(
        "vrrp_script s {\n interval 1\n}\n",
        &format!("{k}:1: vrrp_script: vrrp_script `s` has no `script`"),
    );
    // references and duplicates
    one(
        &base("track_script {\n nope\n}"),
        &format!("{k}:11: track_script: `nope`: no vrrp_script of that name"),
    );
    let two = format!(
        "{}{}",
        base(""),
        base("")
            .replace("vrrp_script chk", "vrrp_script chk2")
            .replace("VI ", "VJ ")
            .replace(".10/", ".11/")
    );
    one(&two, &format!("{k}:17: virtual_router_id: virtual_router_id 7 on eth0 is already used by vrrp_instance `VI` (line 6)"));
    let same_vip = format!(
        "{}{}",
        base(""),
        base("")
            .replace("vrrp_script chk", "vrrp_script chk2")
            .replace("VI ", "VJ ")
            .replace("id 7", "id 8")
    );
    one(&same_vip, &format!("{k}:19: virtual_ipaddress: `192.0.2.10` is already a VIP of vrrp_instance `VI` (line 8)"));
    let other_if = two.replace(
        "interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  192.0.2.11",
        "interface eth1\n virtual_router_id 7\n virtual_ipaddress {\n  192.0.2.11",
    );
    assert_eq!(errs(&other_if), Vec::<String>::new());
    let twice = format!(
        "{}{}",
        base(""),
        base("").replace("vrrp_script chk", "vrrp_script chk2")
    );
    one(
        &twice,
        &format!("{k}:15: vrrp_instance: vrrp_instance `VI` defined twice (first on line 4)"),
    );
    one(
        &format!("{}vrrp_script chk {{\n script /bin/x\n}}\n", base("")),
        &format!("{k}:12: vrrp_script: vrrp_script `chk` defined twice (first on line 1)"),
    );
    one(
        "global_defs {\n}\nglobal_defs {\n}\n",
        &format!("{k}:3: global_defs: given twice (first on line 1)"),
    );
    one(
        &base("priority 100\npriority 101"),
        &format!("{k}:11: priority: given twice (first on line 10)"),
    );
    one(
        &base("notify /a\nnotify /b"),
        &format!("{k}:11: notify: given twice (first on line 10)"),
    );
    one(
        &base("unicast_peer {\n 192.0.2.2\n 192.0.2.2\n}"),
        &format!("{k}:12: unicast_peer: `192.0.2.2` listed twice"),
    );
    // sync groups
    one(
        &format!(
            "{}vrrp_sync_group G {{\n group {{\n  VI\n  VX\n }}\n}}\n",
            base("")
        ),
        &format!("{k}:12: group: `VX`: no vrrp_instance of that name"),
    );
    one(
        &format!("{}vrrp_sync_group G {{\n}}\n", base("")),
        &format!("{k}:12: vrrp_sync_group: vrrp_sync_group `G` has no `group {{ }}`"),
    );
    one(&format!("{}vrrp_sync_group G {{\n group {{\n  VI\n }}\n}}\nvrrp_sync_group H {{\n group {{\n  VI\n }}\n}}\n", base("")), &format!("{k}:17: group: `VI` is already in vrrp_sync_group `G` (line 12)"));
    one(
        &format!(
            "{}vrrp_sync_group G {{\n group {{\n  VI VI\n }}\n}}\n",
            base("")
        ),
        &format!("{k}:14: group: `VI` listed twice"),
    );
    one(&format!("{}vrrp_sync_group G {{\n global_tracking\n group {{\n  VI\n }}\n}}\n", base("")), &format!("{k}:13: global_tracking: `global_tracking`: not supported by hbd (in `vrrp_sync_group`)"));
    // bad values
    one(
        &base("state MAIN"),
        &format!("{k}:10: state: `MAIN`: expected MASTER or BACKUP"),
    );
    one(
        &base("priority 0"),
        &format!("{k}:10: priority: `0`: expected a whole number from 1 to 255"),
    );
    one(
        &base("priority 256"),
        &format!("{k}:10: priority: `256`: expected a whole number from 1 to 255"),
    );
    one(
        &base("").replace("id 7", "id 0"),
        &format!("{k}:6: virtual_router_id: `0`: expected a whole number from 1 to 255"),
    );
    one(
        &base("advert_int 1s"),
        &format!("{k}:10: advert_int: `1s`: expected seconds like `1` or `0.5`"),
    );
    one(
        &base("advert_int -1"),
        &format!("{k}:10: advert_int: `-1`: expected seconds"),
    );
    one(
        &base("advert_int 0"),
        &format!("{k}:10: advert_int: `0`: must be from 0.001 to 255 seconds"),
    );
    one(
        &base("advert_int 255.5"),
        &format!("{k}:10: advert_int: `255.5`: must be from 0.001 to 255 seconds"),
    );
    one(
        &base("version 3\nadvert_int 41"),
        &format!("{k}:11: advert_int: VRRPv3 advert_int must be less than 40.96 seconds"),
    );
    one(
        &base("version 4"),
        &format!("{k}:10: version: `4`: expected a whole number from 2 to 3"),
    );
    one(
        &base("preempt_delay 1001"),
        &format!("{k}:10: preempt_delay: `1001`: must be from 0 to 1000 seconds"),
    );
    one(
        &base("interface eth1"),
        &format!("{k}:10: interface: given twice (first on line 5)"),
    );
    one(
        &base("").replace("interface eth0", "interface eth0.very-long-name"),
        &format!("{k}:5: interface: `eth0.very-long-name`: not an interface name"),
    );
    one(
        &base("unicast_src_ip 192.0.2.999"),
        &format!("{k}:10: unicast_src_ip: `192.0.2.999`: expected an IPv4 address"),
    );
    one(
        &base("unicast_src_ip fe80::1"),
        &format!("{k}:10: unicast_src_ip: `fe80::1`: IPv6 is not supported by hbd: IPv4 only"),
    );
    one(
        &base("unicast_peer {\n 192.0.2.2 min_ttl 1\n}"),
        &format!("{k}:11: unicast_peer: `min_ttl`: not supported by hbd: one address per line"),
    );
    one(
        &base("strict_mode\nunicast_peer {\n 192.0.2.2\n}"),
        &format!("{k}:11: unicast_peer: unicast peers are not allowed in strict mode"),
    );
    one(
        &base("strict_mode maybe"),
        &format!("{k}:10: strict_mode: `maybe`: expected on/off, true/false or yes/no"),
    );
    one(
        "vrrp_script s {\n script /bin/true\n weight 254\n}\n",
        &format!("{k}:3: weight: `254`: expected a whole number from -253 to 253"),
    );
    one(
        "vrrp_script s {\n script /bin/true\n weight -5 sideways\n}\n",
        &format!("{k}:3: weight: unexpected `sideways`: expected `reverse`"),
    );
    one(
        "vrrp_script s {\n script /bin/true\n rise 0\n}\n",
        &format!("{k}:3: rise: `0`: expected a whole number from 1 to 1000000"),
    );
    one(
        "vrrp_script s {\n script /bin/true\n interval 0\n}\n",
        &format!("{k}:3: interval: `0`: expected a whole number from 1 to 86400"),
    );
    one(
        "vrrp_script s {\n script /bin/true\n timeout 0.5\n}\n",
        &format!("{k}:3: timeout: `0.5`: expected a whole number from 1 to 86400"),
    );
    one(
        "vrrp_script s {\n script \"/bin/x 'unclosed\"\n}\n",
        &format!("{k}:2: script: `/bin/x 'unclosed`: quote not closed"),
    );
    one(
        "vrrp_script s {\n script \"\"\n}\n",
        &format!("{k}:2: script: empty command"),
    );
    one(
            "vrrp_script s {\n script killall -0 httpd\n}\n",
            &format!("{k}:2: script: unexpected `-0`: quote the whole command, e.g. `script \"killall -0\"` (keepalived would run `killall` alone)"),
        );
    one(
        &base("track_script {\n chk weight 300\n}"),
        &format!("{k}:11: track_script: `300`: expected a whole number from -253 to 253"),
    );
    one(
        &base("track_script {\n chk 5\n}"),
        &format!("{k}:11: track_script: unexpected `5`: expected `weight W`"),
    );
    one(
        &base("track_interface {\n eth1 weight\n}"),
        &format!("{k}:11: track_interface: unexpected `weight`: expected `weight W`"),
    );
    one(
        &base("notify /a u g extra"),
        &format!("{k}:10: notify: unexpected `extra`"),
    );
    one(
        "global_defs {\n vrrp_version 1\n}\n",
        &format!("{k}:2: vrrp_version: `1`: expected a whole number from 2 to 3"),
    );
    one(
        "global_defs {\n vrrp_mcast_group4 192.0.2.1\n}\n",
        &format!("{k}:2: vrrp_mcast_group4: `192.0.2.1`: not a multicast address"),
    );
    one(
        "global_defs {\n vrrp_gna_interval 3601\n}\n",
        &format!("{k}:2: vrrp_gna_interval: `3601`: must be from 0 to 3600 seconds"),
    );
    one(
        "global_defs {\n vrrp_strict yes\n}\n",
        &format!("{k}:2: vrrp_strict: unexpected `yes`"),
    );
    // VIPs
    let vip = |line: &str| base("").replace("192.0.2.10/24", line);
    one(
        &vip("192.0.2.300"),
        &format!("{k}:8: virtual_ipaddress: `192.0.2.300`: expected an IPv4 address"),
    );
    one(
        &vip("192.0.2.1/33"),
        &format!("{k}:8: virtual_ipaddress: `192.0.2.1/33`: the prefix length must be 0 to 32"),
    );
    one(
        &vip("fe80::1/64"),
        &format!("{k}:8: virtual_ipaddress: `fe80::1`: IPv6 is not supported"),
    );
    one(
        &vip("192.0.2.1 dev"),
        &format!("{k}:8: virtual_ipaddress: `dev` needs a value"),
    );
    one(&vip("192.0.2.1 no_track"), &format!("{k}:8: virtual_ipaddress: `no_track`: not supported by hbd; expected `brd`, `dev`, `scope` or `label`"));
    one(&vip("192.0.2.1 scope galaxy"), &format!("{k}:8: virtual_ipaddress: `galaxy`: expected global, site, link, host, nowhere or 0..255"));
    one(
        &vip("192.0.2.1 label a-label-that-is-too-long"),
        &format!(
            "{k}:8: virtual_ipaddress: `a-label-that-is-too-long`: a label is at most 15 bytes"
        ),
    );
    one(
        &vip("192.0.2.1 brd 192.0.2"),
        &format!("{k}:8: virtual_ipaddress: `192.0.2`: expected an IPv4 address"),
    );
    one(
        &vip("<your VIP>"),
        &format!("{k}:8: virtual_ipaddress: `<your VIP>` is a template placeholder"),
    );
    one(
        &vip("192.0.2.1 {\n}"),
        &format!("{k}:8: 192.0.2.1: unexpected block in `virtual_ipaddress`"),
    );
    // syntax
    one(
        "global_defs {\n router_id x\n",
        &format!("{k}:1: global_defs: `{{` is never closed: missing `}}`"),
    );
    one("}\n", &format!("{k}:1: }}: `}}` without a matching `{{`"));
    one(
        "{\n}\n",
        &format!("{k}:1: {{: unexpected `{{`: a block starts with its keyword"),
    );
    one(
        "global_defs {\n router_id \"abc\n}\n",
        &format!("{k}:2: \": string not closed on this line"),
    );
    one(
        &base("priority {\n}"),
        &format!("{k}:10: priority: `priority` takes values, not a `{{ }}` block"),
    );
    one(&base("virtual_ipaddress_excluded 192.0.2.9"), &format!("{k}:10: virtual_ipaddress_excluded: `virtual_ipaddress_excluded` is a block: expected `{{`"));
    one(
        "vrrp_instance {\n}\n",
        &format!("{k}:1: vrrp_instance: missing name before `{{`"),
    );
    one(
        "vrrp_instance A B {\n}\n",
        &format!("{k}:1: vrrp_instance: unexpected `B`: expected `{{`"),
    );
    one(
        &base("priority"),
        &format!("{k}:10: priority: missing value"),
    );
    one(
        &base("nopreempt now"),
        &format!("{k}:10: nopreempt: unexpected `now`"),
    );
}

#[test]
fn all_errors_at_once() {
    let e = errs(&base(
        "priority 0\nstate X\nbogus\ntrack_script {\n none\n}",
    ));
    assert_eq!(e.len(), 4, "{e:#?}");
}

#[test]
fn warnings() {
    let k = "keepalived.conf";
    // keepalived's pitfalls
    warned(&base("state MASTER\npriority 100\nnopreempt"), &format!("{k}:12: nopreempt: `nopreempt` with `state MASTER`: keepalived ignores nopreempt unless `state BACKUP`, so this node preempts"));
    warned(
        &base("priority 255\nnopreempt"),
        &format!("{k}:11: nopreempt: `nopreempt` has no effect with priority 255"),
    );
    warned(
        &base("unicast_src_ip 192.0.2.1"),
        &format!("{k}:10: unicast_peer: `unicast_src_ip` without unicast peers"),
    );
    warned(
        &base("unicast_src_ip 192.0.2.1\nunicast_peer {\n}"),
        &format!("{k}:11: unicast_peer: `unicast_src_ip` without unicast peers"),
    );
    warned(
        &base("strict_mode\npriority 90"),
        &format!("{k}:11: priority: `vrrp_strict` with priority 90 {STRICT_PRIO}"),
    );
    warned(
        &base("strict_mode"),
        &format!("{k}:4: priority: `vrrp_strict` with priority 100 < 255"),
    );
    warned(
        &base("strict_mode\naccept"),
        &format!("{k}:4: priority: `vrrp_strict` with priority 100 < 255"),
    );
    assert_eq!(warns(&base("strict_mode\nno_accept")), Vec::<String>::new());
    let (c, _, w) = run(&base("strict_mode\nstate BACKUP\npriority 255"));
    assert_eq!(
            w,
            strings(&["keepalived.conf:11: state: `state BACKUP` with priority 255 in strict mode: keepalived starts the address owner as MASTER; so does hbd"])
        );
    assert_eq!(
        c.instances[0].initial_state(&c.global),
        InitialState::Master
    );
    let (c, _, _) = run(&base("state BACKUP\npriority 255"));
    assert_eq!(
        c.instances[0].initial_state(&c.global),
        InitialState::Backup
    );
    assert_eq!(
        warns(&base("strict_mode\npriority 255")),
        Vec::<String>::new()
    );
    // `mcast_src_ip` sets the source of multicast adverts: no peers needed.
    let (c, e, w) = run(&base("mcast_src_ip 192.0.2.1"));
    assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
    assert_eq!(
        c.instances[0].unicast_src_ip,
        Some(Ipv4Addr::new(192, 0, 2, 1))
    );
    warned(
        &base("authentication {\n auth_type PASS\n auth_pass 123456789\n}"),
        &format!(
            "{k}:12: auth_pass: the password is 9 bytes: keepalived (and hbd) use only the first 8"
        ),
    );
    warned(
        &base("version 3\nauthentication {\n auth_type PASS\n auth_pass 1234\n}"),
        &format!("{k}:11: authentication: VRRPv3 has no authentication"),
    );
    warned(&base("advert_int 1.4"), &format!("{k}:10: advert_int: VRRPv2 carries whole seconds: 1.4 s is rounded to 1 s (as keepalived)"));
    warned(
        &base("version 3\nadvert_int 0.015"),
        &format!("{k}:11: advert_int: VRRPv3 carries units of 10 ms: 0.015 s is rounded to 0.02 s"),
    );
    warned(
        &base("state MASTER\npriority 100\npreempt_delay 5"),
        &format!("{k}:12: preempt_delay: `preempt_delay` has no effect"),
    );
    warned(
        &base("").replace("  192.0.2.10/24\n", ""),
        &format!("{k}:4: vrrp_instance: vrrp_instance `VI` has no `virtual_ipaddress`"),
    );
    // knobs and inert settings
    let w = warns("global_defs {\n notification_email {\n  root@example.org\n }\n notification_email_from a@example.org\n smtp_server 192.0.2.25 25\n smtp_connect_timeout 30\n vrrp_garp_lower_prio_repeat 1\n max_auto_priority 10\n lvs_flush\n vrrp_iptables\n}\n");
    assert_eq!(
            w,
            strings(&[
                "keepalived.conf:2: notification_email: accepted, no effect: hbd sends no mail",
                "keepalived.conf:5: notification_email_from: accepted, no effect: hbd sends no mail",
                "keepalived.conf:6: smtp_server: accepted, no effect: hbd sends no mail",
                "keepalived.conf:7: smtp_connect_timeout: accepted, no effect: hbd sends no mail",
                "keepalived.conf:8: vrrp_garp_lower_prio_repeat: accepted, no effect in hbd",
                "keepalived.conf:9: max_auto_priority: accepted, no effect in hbd",
                "keepalived.conf:10: lvs_flush: accepted, no effect in hbd",
                "keepalived.conf:11: vrrp_iptables: accepted, no effect: hbd installs no firewall rules",
            ])
        );
    let (c, _, _) = run("global_defs {\n notification_email {\n  a@example.org\n  b@example.org\n }\n smtp_connect_timeout 30\n}\n");
    assert_eq!(c.global.notification_email.len(), 2);
    assert_eq!(c.global.smtp_connect_timeout, Some(Duration::from_secs(30)));
    warned(
            &base("notify_master /etc/hbd/m.sh MASTER"),
            &format!("{k}:10: notify_master: `MASTER` is the user the script runs as (keepalived's syntax: COMMAND [USER [GROUP]]); to pass arguments, quote the command"),
        );
    warned(
        &base("garp_lower_prio_repeat 2"),
        &format!("{k}:10: garp_lower_prio_repeat: accepted, no effect in hbd"),
    );
}

#[test]
fn strict_mode_and_versions_resolve_like_keepalived() {
    let g = GlobalDefs::default();
    let (c, _, _) = run(&base("state MASTER\npriority 150\nstrict_mode\nauthentication {\n auth_type PASS\n auth_pass pw\n}"));
    let i = &c.instances[0];
    assert!(i.strict(&g));
    assert_eq!(i.initial_state(&g), InitialState::Backup);
    assert_eq!(i.effective_auth(&g), None);
    assert!(i.accept());
    let (c, _, _) = run(&base("version 2\nadvert_int 2.6"));
    assert_eq!(c.instances[0].advert_interval(&g), Duration::from_secs(3));
    let v3 = GlobalDefs {
        vrrp_version: 3,
        ..GlobalDefs::default()
    };
    let (c, _, _) = run(&base("advert_int 0.01"));
    assert_eq!(c.instances[0].effective_version(&v3), 3);
    assert_eq!(
        c.instances[0].advert_interval(&v3),
        Duration::from_millis(10)
    );
    assert_eq!(c.instances[0].advert_interval(&g), Duration::from_secs(1));
    assert_eq!(
        round_advert(Duration::from_millis(1), 3),
        Duration::from_millis(10)
    );
    assert_eq!(
        round_advert(Duration::from_millis(40_950), 3),
        Duration::from_millis(40_950)
    );
    assert_eq!(
        round_advert(Duration::from_millis(100), 2),
        Duration::from_secs(1)
    );
}

#[test]
fn seconds_and_commands() {
    assert_eq!(parse_seconds("1"), Ok(Duration::from_secs(1)));
    assert_eq!(parse_seconds("0.01"), Ok(Duration::from_millis(10)));
    assert_eq!(parse_seconds(".5"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_seconds("2."), Ok(Duration::from_secs(2)));
    assert_eq!(parse_seconds("0.000001"), Ok(Duration::from_micros(1)));
    for bad in [
        "",
        ".",
        "-1",
        "1e3",
        "1s",
        "0.0000001",
        "1.2.3",
        "9999999999",
        "+1",
    ] {
        assert_eq!(parse_seconds(bad), Err(ValueError::NotSeconds), "{bad}");
    }
    assert_eq!(
        ValueError::NotSeconds.to_string(),
        "expected seconds like `1` or `0.5`"
    );
    assert_eq!(split_command("a  b\tc"), Ok(strings(&["a", "b", "c"])));
    assert_eq!(
        split_command("a 'b c' \"d e\" f\\ g"),
        Ok(strings(&["a", "b c", "d e", "f g"]))
    );
    assert_eq!(split_command("a ''"), Ok(strings(&["a", ""])));
    assert_eq!(split_command("  "), Err(ValueError::EmptyCommand));
    assert_eq!(
        split_command("a 'b").unwrap_err().to_string(),
        "`a 'b`: quote not closed"
    );
}

#[test]
fn load_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keepalived.conf");
    std::fs::write(&path, base("")).unwrap();
    let (c, w) = load(&path).unwrap();
    assert!(w.is_empty());
    assert_eq!(c.instances[0].at.file, path);
    std::fs::write(&path, base("priority 0")).unwrap();
    let e = load(&path).unwrap_err();
    assert!(e[0]
        .to_string()
        .starts_with(&format!("{}:10: priority:", path.display())));
    let e = load(&dir.path().join("missing.conf")).unwrap_err();
    assert!(matches!(e[0], ConfigError::File { .. }), "{e:?}");
}

#[test]
fn lint_scripts_flags_unsafe_paths() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("state.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o775)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let text = base(&format!(
        "notify \"{}\" root\nnotify_master /nonexistent/x.sh",
        script.display()
    ));
    let (c, e, _) = run(&text);
    assert!(e.is_empty(), "{e:?}");
    let w: Vec<String> = lint_scripts(&c).iter().map(|w| w.to_string()).collect();
    // vrrp_script `chk` runs /bin/true: root's, not writable by others.
    let root = nix::unistd::geteuid().is_root();
    if root {
        assert_eq!(
                w,
                vec![format!(
                    "keepalived.conf:10: notify: script `{}` is writable by group or other (mode 0775): they can change what runs as root",
                    script.display()
                )]
            );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(lint_scripts(&c), Vec::new());
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let w = lint_scripts(&c);
        assert_eq!(w.len(), 1);
        assert!(w[0].message.starts_with("directory `"), "{w:?}");
    } else {
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("not root"), "{w:?}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = "a {\n".repeat(100_000);
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
        "{", "}", "\"", "#", "!", "\n", "\u{a0}", " ", "'", "\\", "<", ">", "global_defs",
        "vrrp_strict", "vrrp_version", "3", "vrrp_script", "chk", "script", "/bin/true",
        "weight", "-2", "reverse", "vrrp_instance", "VI", "state", "MASTER", "BACKUP",
        "interface", "eth0", "virtual_router_id", "51", "priority", "255", "advert_int",
        "0.01", "nopreempt", "virtual_ipaddress", "192.0.2.1/24", "dev", "brd", "label",
        "track_script", "authentication", "auth_type", "PASS", "auth_pass", "notify",
        "unicast_src_ip", "unicast_peer", "vrrp_sync_group", "group", "version",
    ]), 0..150)) {
        let text: String = toks.join(" ");
        let (c, errors, warnings) = parse(Path::new("x"), &text);
        for e in errors {
            prop_assert!(e.to_string().starts_with("x:"));
        }
        for w in warnings {
            prop_assert!(w.to_string().starts_with("x:"));
        }
        for i in &c.instances {
            let d = i.advert_interval(&c.global);
            prop_assert!(d >= Duration::from_millis(10) && d <= Duration::from_secs(255));
        }
    }
}

#[test]
fn source_address_under_both_names_last_wins() {
    let k = "keepalived.conf";
    let (c, e, w) = run(&base(
        "mcast_src_ip 192.0.2.1\nunicast_src_ip 192.0.2.5\nunicast_peer {\n 192.0.2.2\n}",
    ));
    assert!(e.is_empty(), "{e:?}");
    assert_eq!(
        c.instances[0].unicast_src_ip,
        Some(Ipv4Addr::new(192, 0, 2, 5))
    );
    assert!(
        w.iter().any(|w| w.starts_with(&format!(
            "{k}:11: unicast_src_ip: replaces `mcast_src_ip 192.0.2.1` (line 10)"
        ))),
        "{w:#?}"
    );
    // The same address under both names: nothing to say.
    let (c, e, w) = run(&base(
        "unicast_src_ip 192.0.2.1\nmcast_src_ip 192.0.2.1\nunicast_peer {\n 192.0.2.2\n}",
    ));
    assert!(e.is_empty(), "{e:?}");
    assert!(!w.iter().any(|w| w.contains("replaces")), "{w:#?}");
    assert_eq!(
        c.instances[0].unicast_src_ip,
        Some(Ipv4Addr::new(192, 0, 2, 1))
    );
    // One name twice is still a slip.
    one(
        &base("mcast_src_ip 192.0.2.1\nmcast_src_ip 192.0.2.3"),
        &format!("{k}:11: mcast_src_ip: given twice (first on line 10)"),
    );
}

#[test]
fn a_vip_listed_twice_is_ignored_as_keepalived_does() {
    let k = "keepalived.conf";
    let (c, e, w) = run(&base(
        "virtual_ipaddress_excluded {\n 198.51.100.7/24 dev eth1\n 198.51.100.7/24 dev eth1 label eth1:9\n 198.51.100.7/24 dev eth2\n}",
    )
    .replace(
        "  192.0.2.10/24\n",
        "  192.0.2.10/24 dev eth0 label eth0:1\n  192.0.2.10/24 dev eth0 label eth0:2\n  192.0.2.11/24\n",
    ));
    assert!(e.is_empty(), "{e:?}");
    let i = &c.instances[0];
    let vips: Vec<(String, Option<String>)> = i
        .vips
        .iter()
        .map(|v| (v.addr.to_string(), v.label.clone()))
        .collect();
    assert_eq!(
        vips,
        [
            ("192.0.2.10".to_string(), Some("eth0:1".to_string())),
            ("192.0.2.11".to_string(), None)
        ]
    );
    assert_eq!(i.excluded_vips.len(), 2);
    assert!(
        w.iter().any(|w| w.starts_with(&format!(
            "{k}:9: virtual_ipaddress: `192.0.2.10` duplicates the VIP of line 8: ignored, as keepalived does"
        ))),
        "{w:#?}"
    );
    assert!(
        w.iter().any(|w| w.starts_with(&format!(
            "{k}:14: virtual_ipaddress_excluded: `198.51.100.7` duplicates the VIP of line 13"
        ))),
        "{w:#?}"
    );
}
