//! The Pacemaker model of configurations like the seeds' (seed 002:
//! heartbeat, DRBD and mon for MySQL) and of each feature alone. The CIB,
//! pcs and crmsh texts are checked by Pacemaker's own tools in tests/export.rs.

use super::*;
use crate::config;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const KEY: &str = "auth 1\n1 sha256 0123456789abcdef0123456789abcdef\n";

fn write(dir: &Path, name: &str, text: &str, mode: u32) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A configuration directory with `files` (name, text), authkeys, and an
/// init.d with the LSB scripts the seed names.
fn load(files: &[(&str, &str)], node: &str) -> Config {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "authkeys", KEY, 0o600);
    for s in ["mysqld-max", "linkserv", "apache2"] {
        write(
            d.path(),
            &format!("init.d/{s}"),
            "#!/bin/sh\nexit 0\n",
            0o755,
        );
    }
    let init = format!(
        "[agents]\ninit_dir = \"{}\"\n",
        d.path().join("init.d").display()
    );
    let mut toml = init.clone();
    for (name, text) in files {
        if *name == "cluster.toml" {
            toml.push_str(text);
        } else {
            write(d.path(), name, text, 0o600);
        }
    }
    write(d.path(), "cluster.toml", &toml, 0o600);
    match config::load(d.path(), node) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// Seed 002's ha.cf, haresources and drbd.conf (addresses moved to the
/// documentation range), with the mon.cf checks as [[check]]s.
const SEED_HA: &str = "keepalive 1\ndeadtime 3\nbcast eth1\nauto_failback on\nnode l0\nnode l1\n";
const SEED_HARES: &str = "l0 IPaddr2::192.0.2.100/24/eth1:0 drbddisk::r0 \
    Filesystem::/dev/drbd0::/mnt/drbd::ext3 mysqld-max linkserv mon\n";
const SEED_DRBD: &str = "global {\n    usage-count no;\n}\ncommon {\n  syncer { rate 10M; }\n}\n\
    resource r0 {\n  protocol        C;\n  startup { wfc-timeout 0; degr-wfc-timeout 120; }\n\
    disk { on-io-error detach; }\n  meta-disk internal;\n  syncer {\n  }\n\
    on l0 {\n    device /dev/drbd0;\n    disk /dev/sda7;\n    address 192.0.2.2:7791;\n  }\n\
    on l1 {\n    device /dev/drbd0;\n    disk /dev/sda7;\n    address 192.0.2.3:7791;\n  }\n}\n";
const SEED_CHECKS: &str = "[[check]]\nname = \"mysql-port\"\ntype = \"tcp\"\nport = 3306\n\
    interval = \"20s\"\n\n[[check]]\nname = \"web\"\ntype = \"http\"\nurl = \"http://127.0.0.1:8080/\"\n\n\
    [[job]]\nname = \"purge\"\nschedule = \"*/15 * * * *\"\ncommand = \"/usr/local/bin/purge\"\n";

fn seed() -> Config {
    load(
        &[
            ("ha.cf", SEED_HA),
            ("haresources", SEED_HARES),
            ("drbd.conf", SEED_DRBD),
            ("cluster.toml", SEED_CHECKS),
        ],
        "l1",
    )
}

fn group(m: &Cib) -> (&str, &[Primitive], &[String]) {
    m.resources
        .iter()
        .find_map(|r| match r {
            Resource::Group { id, members, notes } => {
                Some((id.as_str(), members.as_slice(), notes.as_slice()))
            }
            _ => None,
        })
        .expect("a group")
}

fn param<'a>(p: &'a Primitive, k: &str) -> Option<&'a str> {
    p.params
        .iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
}

#[test]
fn seed_group_keeps_its_order_and_drbd_becomes_a_promotable_clone() {
    let m = pacemaker(&seed());
    assert_eq!(m.nodes, ["l0", "l1"]);
    let (gid, members, notes) = group(&m);
    let ids: Vec<&str> = members.iter().map(|p| p.id.as_str()).collect();
    // drbddisk and mon leave the group; the rest keep haresources' order.
    assert_eq!(
        ids,
        ["ip-192.0.2.100", "fs-mnt-drbd", "mysqld-max", "linkserv"]
    );
    assert_eq!(gid, "group-ip-192.0.2.100");
    assert_eq!(members[0].agent(), "ocf:heartbeat:IPaddr2");
    assert_eq!(param(&members[0], "ip"), Some("192.0.2.100"));
    assert_eq!(param(&members[0], "cidr_netmask"), Some("24"));
    assert_eq!(param(&members[0], "nic"), Some("eth1"));
    assert_eq!(param(&members[0], "iflabel"), Some("0"));
    assert_eq!(members[1].agent(), "ocf:heartbeat:Filesystem");
    assert_eq!(param(&members[1], "device"), Some("/dev/drbd0"));
    assert_eq!(param(&members[1], "directory"), Some("/mnt/drbd"));
    assert_eq!(param(&members[1], "fstype"), Some("ext3"));
    assert_eq!(members[2].agent(), "lsb:mysqld-max");
    assert_eq!(members[3].agent(), "lsb:linkserv");

    let clone = m
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::Clone {
                id,
                promotable: true,
                child,
                notes,
                ..
            } => Some((id.as_str(), child, notes)),
            _ => None,
        })
        .expect("a promotable clone");
    assert_eq!(clone.0, "drbd-r0-clone");
    assert_eq!(clone.1.agent(), "ocf:linbit:drbd");
    assert_eq!(param(clone.1, "drbd_resource"), Some("r0"));
    assert!(
        clone.2.iter().any(|n| n.contains("DRBD kernel module")),
        "{:?}",
        clone.2
    );

    // The group runs with the Promoted side; the promotion comes before the
    // Filesystem (drbddisk's successor) starts; both prefer l0.
    assert!(m.constraints.contains(&Constraint::Colocation {
        id: "colocation-group-ip-192.0.2.100-with-drbd-r0-clone".into(),
        rsc: gid.into(),
        with: "drbd-r0-clone".into(),
        with_promoted: true,
        score: Score::Infinity,
    }));
    assert!(m.constraints.iter().any(|c| matches!(c,
        Constraint::Order { first, first_action, then, then_action, .. }
            if first == "drbd-r0-clone" && first_action == "promote"
                && then == "fs-mnt-drbd" && then_action == "start")));
    assert!(m.constraints.iter().any(|c| matches!(c,
        Constraint::Location { rsc, node, score: Score::Value(PREFERRED_SCORE), promoted: false, .. }
            if rsc == gid && node == "l0")));
    assert!(m.constraints.iter().any(|c| matches!(c,
        Constraint::Location { rsc, node, promoted: true, .. }
            if rsc == "drbd-r0-clone" && node == "l0")));

    // The tcp check on 3306 watches the MySQL server: a monitor op.
    let mon = members[2]
        .ops
        .iter()
        .find(|o| o.name == "monitor")
        .expect("monitor on mysqld-max");
    assert_eq!(mon.interval, Duration::from_secs(20));
    assert_eq!(
        members[2].meta,
        [("migration-threshold".to_string(), "1".to_string())]
    );
    // The http check watches nothing of the group; the job has no
    // equivalent; mon neither: each named.
    let all = notes.join("\n");
    for want in [
        "[[check]] web",
        "[[job]] purge",
        "crm_resource --locate",
        "mon:",
    ] {
        assert!(all.contains(want), "{want} not in {all}");
    }
    assert!(m
        .rsc_defaults
        .contains(&("resource-stickiness".into(), "0".into())));
    assert!(m
        .properties
        .contains(&("stonith-enabled".into(), "false".into())));
    assert!(m
        .properties
        .contains(&("no-quorum-policy".into(), "stop".into())));
    assert!(m.notes.iter().any(|n| n.contains("two_node: 1")));
}

#[test]
fn auto_failback_off_is_infinite_stickiness() {
    let ha = SEED_HA.replace("auto_failback on", "auto_failback off");
    let c = load(
        &[
            ("ha.cf", &ha),
            ("haresources", "l0 IPaddr2::192.0.2.100/24/eth1\n"),
        ],
        "l0",
    );
    let m = pacemaker(&c);
    assert!(m
        .rsc_defaults
        .contains(&("resource-stickiness".into(), "INFINITY".into())));
}

#[test]
fn ping_nodes_are_a_ping_clone_with_a_rule_per_group() {
    let ha = format!("{SEED_HA}ping 192.0.2.254\nping_group up 192.0.2.252 192.0.2.253\n");
    let c = load(
        &[
            ("ha.cf", &ha),
            (
                "haresources",
                "l0 IPaddr2::192.0.2.100/24/eth1\nl1 IPaddr2::192.0.2.101/24/eth1\n",
            ),
        ],
        "l0",
    );
    let m = pacemaker(&c);
    let ping = m
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::Clone {
                promotable: false,
                child,
                ..
            } => Some(child),
            _ => None,
        })
        .expect("ping clone");
    assert_eq!(ping.agent(), "ocf:pacemaker:ping");
    assert_eq!(
        param(ping, "host_list"),
        Some("192.0.2.254 192.0.2.252 192.0.2.253")
    );
    let rules: Vec<&str> = m
        .constraints
        .iter()
        .filter_map(|c| match c {
            Constraint::Rule {
                rsc,
                score: Score::MinusInfinity,
                any,
                ..
            } if any.contains(&Expr::NotDefined("pingd".into()))
                && any.contains(&Expr::Lte("pingd".into(), 0)) =>
            {
                Some(rsc.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(rules, ["group-ip-192.0.2.100", "group-ip-192.0.2.101"]);
}

#[test]
fn stonith_hosts_are_fence_resources_and_enable_stonith() {
    let ha = format!(
        "{SEED_HA}stonith_host l0 fence_ipmilan ip=192.0.2.112 username=admin password=s&cret lanplus=1 nodes=l1\n\
         stonith_host l1 external/ipmi l0 192.0.2.111 admin secret lanplus\n"
    );
    let c = load(
        &[
            ("ha.cf", &ha),
            ("haresources", "l0 IPaddr2::192.0.2.100/24/eth1\n"),
            ("cluster.toml", "[fencing]\naction = \"off\"\n"),
        ],
        "l0",
    );
    let m = pacemaker(&c);
    let fences: Vec<&Primitive> = m
        .resources
        .iter()
        .filter_map(|r| match r {
            Resource::Primitive(p) if p.class == "stonith" => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(fences.len(), 2);
    assert_eq!(fences[0].agent(), "stonith:fence_ipmilan");
    assert_eq!(param(fences[0], "ip"), Some("192.0.2.112"));
    assert_eq!(param(fences[0], "password"), Some("s&cret"));
    assert_eq!(param(fences[0], "pcmk_host_list"), Some("l1"));
    assert_eq!(param(fences[1], "pcmk_host_list"), Some("l0"));
    assert_eq!(param(fences[1], "lanplus"), Some("1"));
    for (k, v) in [
        ("stonith-enabled", "true"),
        ("stonith-action", "off"),
        ("stonith-timeout", "60s"),
    ] {
        assert!(m.properties.contains(&(k.into(), v.into())), "{k}");
    }
    // Each device runs only on its stonith_host FROM node.
    assert!(m.constraints.iter().any(|c| matches!(c,
        Constraint::Location { rsc, node, score: Score::MinusInfinity, .. }
            if *rsc == fences[0].id && node == "l1")));
    // The password is escaped in the CIB, quoted in pcs.
    let xml = cib::render(&m);
    assert!(xml.contains("value=\"s&amp;cret\""), "{xml}");
    let script = pcs::render(&m);
    assert!(script.contains(" 'password=s&cret' "), "{script}");
    // pcs would read `-INFINITY` as an option.
    assert!(
        script.contains("constraint location fence-fence_ipmilan-1 avoids l1\n"),
        "{script}"
    );
    assert!(!script.contains(" -INFINITY"), "{script}");
}

#[test]
fn hbd_agents_become_ocf_hbd_with_named_parameters() {
    let c = load(
        &[
            ("ha.cf", SEED_HA),
            (
                "haresources",
                "l0 IPaddr2::192.0.2.100/24/eth1 mysqld::/srv/mysql::bind_address=192.0.2.100 \
                 daemon::--port=8080::/run/app.pid::/usr/bin/app::--name::a apache2\n",
            ),
            (
                "cluster.toml",
                "[[check]]\ntype = \"mysql\"\nsocket = \"/srv/mysql/mysqld.sock\"\n\
                 action = \"restart\"\nresource = \"mysqld\"\nrestarts = 2\nrestart_window = \"10m\"\n\n\
                 [[check]]\ntype = \"process\"\nprocess = \"app\"\naction = \"notify\"\n",
            ),
        ],
        "l0",
    );
    let m = pacemaker(&c);
    let (_, members, _) = group(&m);
    let db = &members[1];
    assert_eq!(db.agent(), "ocf:hbd:mysqld");
    assert_eq!(param(db, "datadir"), Some("/srv/mysql"));
    assert_eq!(param(db, "bind_address"), Some("192.0.2.100"));
    // The restart check: restarts 2 then move = a third failure moves.
    assert!(db
        .meta
        .contains(&("migration-threshold".into(), "3".into())));
    assert!(db.meta.contains(&("failure-timeout".into(), "600s".into())));
    // cluster.toml's timeouts of mysqld are the start/stop op timeouts.
    assert!(db
        .ops
        .iter()
        .any(|o| o.name == "start" && o.timeout == Duration::from_secs(630)));
    let app = &members[2];
    assert_eq!(app.agent(), "ocf:hbd:daemon");
    assert_eq!(param(app, "pidfile"), Some("/run/app.pid"));
    assert_eq!(param(app, "port"), Some("8080"));
    assert!(param(app, "command")
        .unwrap()
        .starts_with("/usr/bin/app --name"));
    let mon = app.ops.iter().find(|o| o.name == "monitor").unwrap();
    assert_eq!(mon.on_fail.as_deref(), Some("ignore"));
    assert_eq!(members[3].agent(), "lsb:apache2");
}

#[test]
fn ids_are_valid_xml_ids_and_unique() {
    assert_eq!(xml_id("fs-/mnt/drbd"), "fs-mnt-drbd");
    assert_eq!(xml_id("ip-192.0.2.1"), "ip-192.0.2.1");
    assert_eq!(xml_id("9lives"), "r-9lives");
    assert_eq!(xml_id("ünï code"), "n-code");
    assert_eq!(xml_id("---"), "r-");
    let mut ids = Ids::default();
    assert_eq!(ids.make("a b"), "a-b");
    assert_eq!(ids.make("a/b"), "a-b-2");
    assert_eq!(ids.make("a-b"), "a-b-3");
    // Every id= of a whole document is unique.
    let xml = cib::render(&pacemaker(&seed()));
    let mut seen = std::collections::BTreeSet::new();
    for (at, _) in xml.match_indices(" id=\"") {
        let rest = &xml[at + 5..];
        let id = &rest[..rest.find('"').unwrap()];
        assert!(seen.insert(id.to_string()), "duplicate id {id}");
        // A node's id is corosync's nodeid (text in the schema, not an ID).
        if !xml[..at].ends_with("<node") {
            assert_eq!(xml_id(id), id, "not an XML ID: {id}");
        }
    }
}

#[test]
fn values_are_escaped_and_comments_stay_comments() {
    assert_eq!(cib::esc("a<b>&\"c'\n"), "a&lt;b&gt;&amp;&quot;c&apos;&#10;");
    assert_eq!(pcs::sh("it's"), "'it'\\''s'");
    assert_eq!(crmsh::quote("a \"b\""), "\"a \\\"b\\\"\"");
    let mut m = pacemaker(&seed());
    m.notes.push("a -- b -".into());
    let xml = cib::render(&m);
    for c in xml.split("<!--").skip(1) {
        let body = &c[..c.find("-->").unwrap()];
        assert!(!body.contains("--"), "{body}");
    }
}

#[test]
fn the_three_formats_name_every_resource() {
    let c = seed();
    let m = pacemaker(&c);
    let texts = [
        export(&c, Format::Cib),
        export(&c, Format::Pcs),
        export(&c, Format::Crmsh),
    ];
    for t in &texts {
        for id in ["ip-192.0.2.100", "fs-mnt-drbd", "drbd-r0-clone", "linkserv"] {
            assert!(t.contains(id), "{id} missing:\n{t}");
        }
        assert!(t.contains("[[job]] purge"), "{t}");
    }
    assert!(texts[0].starts_with("<?xml"));
    assert!(texts[0].contains(&format!("validate-with=\"{VALIDATE_WITH}\"")));
    assert!(
        texts[1].contains("pcs -f \"$cib\" resource create fs-mnt-drbd ocf:heartbeat:Filesystem")
    );
    assert!(texts[1].contains("--group group-ip-192.0.2.100"));
    assert!(texts[1].contains(
        "constraint colocation add group-ip-192.0.2.100 with Promoted drbd-r0-clone INFINITY"
    ));
    assert!(texts[2]
        .contains("group group-ip-192.0.2.100 ip-192.0.2.100 fs-mnt-drbd mysqld-max linkserv"));
    assert!(texts[2].contains("order order-drbd-r0-clone-then-fs-mnt-drbd Mandatory: drbd-r0-clone:promote fs-mnt-drbd:start"));
    assert_eq!(m.nodes.len(), 2);
}

#[test]
fn drbddisk_last_orders_the_promotion_before_the_group_and_a_witness_is_named() {
    let c = load(
        &[
            ("ha.cf", SEED_HA),
            (
                "haresources",
                "l1 IPaddr2::192.0.2.100/24/eth1 drbddisk::r0\n",
            ),
            ("drbd.conf", SEED_DRBD),
            ("cluster.toml", "[quorum]\nwitness = \"w1\"\n"),
        ],
        "l0",
    );
    let m = pacemaker(&c);
    let (gid, members, _) = group(&m);
    assert_eq!(members.len(), 1);
    assert!(m.constraints.iter().any(|c| matches!(c,
        Constraint::Order { first, first_action, then, then_action, .. }
            if first == "drbd-r0-clone" && first_action == "promote"
                && then == gid && then_action == "start")));
    assert!(m.constraints.iter().any(|c| matches!(c,
        Constraint::Location { rsc, node, promoted: true, .. }
            if rsc == "drbd-r0-clone" && node == "l1")));
    assert!(
        m.notes.iter().any(|n| n.contains("corosync-qnetd on w1")),
        "{:?}",
        m.notes
    );
    assert!(!m.notes.iter().any(|n| n.contains("two_node")));
}
