//! Unit tests of `config/mod.rs`.

use super::*;
use std::os::unix::fs::PermissionsExt;

use super::hacf::tests::SEED_002 as SEED_002_HA_CF;
const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn write(dir: &Path, name: &str, text: &str, mode: u32) {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A valid seed-002 directory.
fn seed_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "ha.cf", SEED_002_HA_CF, 0o644);
    write(
        d.path(),
        "authkeys",
        &format!("auth 1\n1 sha256 {SECRET}\n"),
        0o600,
    );
    write(d.path(), "haresources", SEED_002_HARESOURCES, 0o644);
    // The seed machine's own scripts (drbd-utils' drbddisk, its init
    // scripts, mon) as heartbeat-style agents.
    std::fs::create_dir(d.path().join("resource.d")).unwrap();
    for name in SEED_002_SCRIPTS {
        write(
            &d.path().join("resource.d"),
            name,
            "#!/bin/sh\nexit 0\n",
            0o755,
        );
    }
    d
}

const SEED_002_HARESOURCES: &str = "l0 IPaddr2::192.168.1.100/24/eth1:0 drbddisk::r0 Filesystem::/dev/drbd0::/mnt/drbd::ext3 mysqld-max linkserv mon\n";
const SEED_002_SCRIPTS: [&str; 3] = ["drbddisk", "mysqld-max", "linkserv"];

/// Without the seed machine's scripts, each missing agent is an error at
/// the group's line; the built-in ones resolve.
#[test]
fn seed_002_unknown_agents() {
    let d = seed_dir();
    std::fs::remove_dir_all(d.path().join("resource.d")).unwrap();
    let e = errors(d.path(), "l0");
    // drbddisk is built in (it shadows drbd-utils' script).
    assert_eq!(e.len(), 2, "{e:?}");
    for (e, name) in e.iter().zip(&SEED_002_SCRIPTS[1..]) {
        assert!(
            e.starts_with(&format!("haresources:1: {name}"))
                && e.contains(&format!("unknown resource agent {name}")),
            "{e}"
        );
    }
}

fn errors(dir: &Path, node: &str) -> Vec<String> {
    load(dir, node)
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string().replace(&format!("{}/", dir.display()), ""))
        .collect()
}

#[test]
fn checks_jobs_and_notify() {
    let d = seed_dir();
    write(
        d.path(),
        "haresources",
        "l0 IPaddr2::192.168.1.100/24/eth1:0 mysqld::/srv/mysql mon\nl1 10.0.0.9\n",
        0o644,
    );
    let good = "[notify]\ncommand = \"/bin/true\"\n\n\
                [[check]]\ngroup = \"IPaddr2::192.168.1.100/24/eth1:0\"\ntype = \"tcp\"\nport = 3306\n\
                interval = \"1s\"\nfall = 3\naction = \"restart\"\nresource = \"mysqld\"\n\n\
                [[check]]\ngroup = \"10.0.0.9\"\nname = \"web\"\ntype = \"http\"\nurl = \"http://127.0.0.1:8080/\"\n\n\
                [[job]]\nname = \"purge\"\ngroup = \"mysqld::/srv/mysql\"\nschedule = \"*/5 * * * *\"\n\
                command = \"echo hi\"\nmissed = \"skip\"\n";
    write(d.path(), "cluster.toml", good, 0o644);
    let c = load(d.path(), "l0").unwrap();
    assert_eq!(c.checks.len(), 2);
    assert_eq!(c.checks[0].name, "tcp 127.0.0.1:3306");
    assert_eq!(c.checks[0].fall, 3);
    assert_eq!(
        c.checks[0].action,
        crate::monitor::scheduler::Action::Restart {
            resource: 1,
            max: 3,
            window: std::time::Duration::from_secs(600)
        }
    );
    assert_eq!(c.checks[1].group, 1);
    assert_eq!(c.jobs[0].group, 0);
    assert_eq!(c.jobs[0].missed, crate::jobs::Missed::Skip);
    assert_eq!(c.notify.as_ref().unwrap().command, "/bin/true");
    // The second group has no mon: its check is a warning.
    assert!(c
        .warnings
        .iter()
        .any(|w| w.key == "check.group" && w.message.contains("no `mon`")));

    let bad = "[[check]]\ntype = \"smtp\"\n\n[[check]]\ngroup = \"nope\"\ntype = \"tcp\"\n\n\
               [[check]]\ngroup = \"10.0.0.9\"\ntype = \"exec\"\naction = \"restart\"\n\n\
               [[job]]\nname = \"x\"\ngroup = \"10.0.0.9\"\ncommand = \"true\"\n";
    write(d.path(), "cluster.toml", bad, 0o644);
    let e = errors(d.path(), "l0");
    // A missing key is reported at its table's header.
    let want = [
        "cluster.toml:1: check.group: missing: which group?",
        "cluster.toml:2: check.type: unknown check type `smtp`",
        "cluster.toml:4: check.port: missing",
        "cluster.toml:5: check.group: `nope` is not a group",
        "cluster.toml:8: check.command: missing",
        "cluster.toml:8: check.resource: missing",
        "cluster.toml:13: job.schedule: missing",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for w in want {
        assert!(e.iter().any(|x| x.starts_with(w)), "{w} not in {e:#?}");
    }
}

#[test]
fn group_reports_must_fit_in_a_datagram() {
    let d = seed_dir();
    // A long node name travels in every grant.
    let long = "n".repeat(60);
    let ha = SEED_002_HA_CF.replace("node        l1", &format!("node {long}"));
    assert_ne!(ha, SEED_002_HA_CF);
    write(d.path(), "ha.cf", &ha, 0o644);
    let lines: String = (0..8)
        .map(|i| {
            format!(
                "l0 Filesystem::/dev/{}{i}::/mnt/x{i}::ext4\n",
                "d".repeat(90)
            )
        })
        .collect();
    write(d.path(), "haresources", &lines, 0o644);
    let e = errors(d.path(), "l0");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("haresources:8: ") && e[0].contains("more than one datagram"),
        "{e:?}"
    );
    let lines: String = (0..8)
        .map(|i| format!("l0 IPaddr2::192.0.2.{}/24/eth1:{i}\n", 50 + i))
        .collect();
    write(d.path(), "haresources", &lines, 0o644);
    assert_eq!(load(d.path(), "l0").unwrap().groups.len(), 8);
}

#[test]
fn loads_seed_002() {
    let d = seed_dir();
    let c = load(d.path(), "l0").unwrap();
    assert_eq!(c.dir, d.path());
    assert_eq!(c.node, "l0");
    assert_eq!(c.ha.nodes, vec!["l0", "l1"]);
    assert_eq!(c.authkeys.active, 1);
    assert_eq!(c.authkeys.keys[0].secret, SECRET.as_bytes());
    assert_eq!(c.haresources.groups.len(), 1);
    assert_eq!(c.haresources.groups[0].resources.len(), 6);
    assert_eq!(c.groups.len(), 1);
    assert_eq!(c.groups[0].id, "IPaddr2::192.168.1.100/24/eth1:0");
    assert_eq!(c.groups[0].home, "l0");
    assert!(matches!(
        c.groups[0].resources[2].kind,
        crate::agents::AgentKind::Filesystem(_)
    ));
    assert!(matches!(
        c.groups[0].resources[1].kind,
        crate::agents::AgentKind::Drbddisk(_)
    ));
    assert_eq!(c.cluster, ClusterToml::default());
    // hopfudge, and a two-node drbddisk group with no split-brain
    // protection (issue 13's safe defaults).
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].key, "hopfudge");
    assert!(c.warnings[1].message.contains("no split-brain protection"));
    assert_eq!(c.quorum, QuorumSettings::default());
    assert!(!c.tiebreaker.ping);
    assert_eq!(c.tiebreaker.settle, c.ha.deadtime);
    assert_eq!(c.failure_timeout, Some(DEFAULT_FAILURE_TIMEOUT));
    assert_eq!(c.fencing.action, FenceAction::Reboot);
    assert!(!c.builtin_outdater && !c.is_witness);
    // Node names compare ignoring case, as in heartbeat.
    assert_eq!(load(d.path(), "L1").unwrap().node, "l1");
}

fn warnings(dir: &Path, node: &str) -> Vec<String> {
    check(dir, node)
        .warnings
        .iter()
        .map(|e| e.to_string().replace(&format!("{}/", dir.display()), ""))
        .collect()
}

#[test]
fn quorum_witness() {
    let d = seed_dir();
    write(
        d.path(),
        "cluster.toml",
        "[cluster]\nname = \"c\"\n\n[quorum]\nwitness = \"W1\"\n",
        0o644,
    );
    let c = load(d.path(), "l0").unwrap();
    assert_eq!(c.quorum.witness.as_deref(), Some("w1"));
    assert!(c.quorum.wait_for_all, "default with a witness");
    assert_eq!(c.members(), ["l0", "l1", "w1"]);
    // A witness is protection: no safe-defaults warning.
    assert!(
        !warnings(d.path(), "l0")
            .iter()
            .any(|w| w.contains("split-brain")),
        "{:?}",
        warnings(d.path(), "l0")
    );
    // The witness itself: same files, its own name, and the agents
    // need not be installed on its machine.
    let scripts = d.path().join("resource.d");
    std::fs::rename(&scripts, d.path().join("elsewhere")).unwrap();
    let w = load_witness(d.path(), "w1").unwrap();
    assert_eq!(w.groups.len(), 1);
    std::fs::rename(d.path().join("elsewhere"), &scripts).unwrap();
    assert!(w.is_witness);
    assert_eq!(w.node, "w1");
    assert_eq!(
        errors_witness(d.path(), "w2"),
        [
            "cluster.toml:5: quorum.witness: the witness is `w1`, but this witness runs as \
          `w2` (--node or `uname -n`)"
        ]
    );
    // A node cannot start as the witness, nor the witness as a node.
    assert!(load_witness(d.path(), "l0").is_err());
    assert!(errors(d.path(), "w1")[0].contains("this node `w1` is not in the node list"));
    // The witness must not be an ha.cf node.
    write(
        d.path(),
        "cluster.toml",
        "[quorum]\nwitness = \"l1\"\n",
        0o644,
    );
    assert_eq!(
        errors(d.path(), "l0"),
        [
            "cluster.toml:2: quorum.witness: `l1` is an ha.cf node: the witness is a third \
          machine running `hbd --witness`, not a node of the cluster"
        ]
    );
    // No witness configured.
    write(
        d.path(),
        "cluster.toml",
        "[quorum]\nwait_for_all = false\n",
        0o644,
    );
    assert_eq!(
        errors_witness(d.path(), "w1"),
        ["cluster.toml: no `[quorum] witness`: name the witness there to run `hbd --witness`"]
    );
    assert!(warnings(d.path(), "l0")
        .contains(&"cluster.toml:2: quorum.wait_for_all: no effect without `witness`".into()));
    write(
        d.path(),
        "cluster.toml",
        "[quorum]\nwitness = \"w1\"\nwait_for_all = false\n",
        0o644,
    );
    assert!(!load(d.path(), "l0").unwrap().quorum.wait_for_all);
}

fn errors_witness(dir: &Path, node: &str) -> Vec<String> {
    load_witness(dir, node)
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string().replace(&format!("{}/", dir.display()), ""))
        .collect()
}

#[test]
fn tiebreaker_and_builtin_helpers() {
    let d = seed_dir();
    // ping nodes turn the tiebreaker on; settle defaults to deadtime.
    let ha = format!("{SEED_002_HA_CF}ping 192.0.2.1\n");
    write(d.path(), "ha.cf", &ha, 0o644);
    let c = load(d.path(), "l0").unwrap();
    assert!(c.tiebreaker.ping);
    assert_eq!(c.tiebreaker.settle, std::time::Duration::from_secs(3));
    assert!(!warnings(d.path(), "l0")
        .iter()
        .any(|w| w.contains("split-brain")));
    write(
        d.path(),
        "cluster.toml",
        "[tiebreaker]\nping = false\n\n[groups]\nfailure_timeout = \"0\"\n",
        0o644,
    );
    let c = load(d.path(), "l0").unwrap();
    assert!(!c.tiebreaker.ping);
    assert_eq!(c.failure_timeout, None);
    // ipfail (not installed here) is accepted, built in, and warns when
    // the tiebreaker is off.
    write(
        d.path(),
        "ha.cf",
        &format!("{ha}respawn hacluster /usr/lib/heartbeat/ipfail\n"),
        0o644,
    );
    assert!(warnings(d.path(), "l0").contains(
        &"ha.cf:12: respawn: ipfail: the ping tiebreaker is off (cluster.toml `[tiebreaker] \
          ping = false`)"
            .into()
    ));
    // ping = true without ping nodes is an error at its line.
    write(d.path(), "ha.cf", SEED_002_HA_CF, 0o644);
    write(
        d.path(),
        "cluster.toml",
        "[tiebreaker]\nsettle = \"2s\"\nping = true\n",
        0o644,
    );
    assert_eq!(
        errors(d.path(), "l0"),
        [
            "cluster.toml:3: tiebreaker.ping: no `ping` or `ping_group` nodes in ha.cf: the \
          tiebreaker needs addresses to reach (a router both nodes use)"
        ]
    );
    // dopd selects the built-in outdater; ipfail without ping nodes warns.
    std::fs::remove_file(d.path().join("cluster.toml")).unwrap();
    write(
        d.path(),
        "ha.cf",
        &format!(
            "{SEED_002_HA_CF}respawn hacluster /usr/lib/heartbeat/dopd\n\
             respawn hacluster /usr/lib/heartbeat/ipfail\n"
        ),
        0o644,
    );
    let c = load(d.path(), "l0").unwrap();
    assert!(c.builtin_outdater);
    assert!(!c.tiebreaker.ping);
    assert!(warnings(d.path(), "l0")
        .iter()
        .any(|w| w.starts_with("ha.cf:12: respawn: ipfail is built into hbd")));
}

#[test]
fn optional_files() {
    let d = seed_dir();
    std::fs::remove_file(d.path().join("haresources")).unwrap();
    let c = load(d.path(), "l1").unwrap();
    assert!(c.haresources.groups.is_empty());
    write(
        d.path(),
        "cluster.toml",
        "[cluster]\nname = \"db\"\n",
        0o644,
    );
    assert_eq!(load(d.path(), "l1").unwrap().cluster.cluster.name, "db");
}

#[test]
fn refuses_readable_authkeys() {
    let d = seed_dir();
    std::fs::set_permissions(
        d.path().join("authkeys"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert_eq!(
        errors(d.path(), "l0"),
        vec!["authkeys: readable by group/other (mode 0644); chmod 600 it"]
    );
    std::fs::set_permissions(
        d.path().join("authkeys"),
        std::fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    assert!(load(d.path(), "l0").is_ok());
}

/// Issue 14, finding 3: drbd.conf's shared-secret and cluster.toml's
/// check passwords are secrets too; their files must be private.
#[test]
fn refuses_readable_files_with_secrets() {
    let d = seed_dir();
    let drbd = "resource r0 {\n  protocol C;\n  net { shared-secret \"s3cret\"; }\n  \
                on l0 { device /dev/drbd0; disk /dev/loop7; address 192.0.2.1:7788; meta-disk internal; }\n  \
                on l1 { device /dev/drbd0; disk /dev/loop7; address 192.0.2.2:7788; meta-disk internal; }\n}\n";
    write(d.path(), "drbd.conf", drbd, 0o644);
    let e = errors(d.path(), "l0");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("drbd.conf:3: shared-secret: ")
            && e[0].ends_with("is readable by group/other (mode 0644) and holds the replication link's secret; chmod 600 it"),
        "{e:?}"
    );
    write(d.path(), "drbd.conf", drbd, 0o600);
    assert!(load(d.path(), "l0").is_ok());
    // Without a secret the file may stay readable (drbdadm's default).
    write(
        d.path(),
        "drbd.conf",
        &drbd.replace("net { shared-secret \"s3cret\"; }", ""),
        0o644,
    );
    assert!(load(d.path(), "l0").is_ok());

    let toml = "[cluster]\nname = \"db\"\n\n[[check]]\nname = \"db\"\ntype = \"mysql\"\nuser = \"mon\"\npassword = \"pw\"\n";
    write(d.path(), "cluster.toml", toml, 0o644);
    let e = errors(d.path(), "l0");
    assert!(
        e.iter().any(|e| e == "cluster.toml:8: check.password: cluster.toml is readable by group/other (mode 0644) and holds a check's password; chmod 600 it"),
        "{e:?}"
    );
    write(d.path(), "cluster.toml", toml, 0o600);
    let e = errors(d.path(), "l0");
    assert!(!e.iter().any(|e| e.contains("check.password")), "{e:?}");

    // A fence password in a readable ha.cf: warned at its line.
    let hacf = std::fs::read_to_string(d.path().join("ha.cf")).unwrap();
    let with_fence = format!("{hacf}stonith_host * external/ipmi l1 192.0.2.12 admin pw lanplus\n");
    write(d.path(), "ha.cf", &with_fence, 0o644);
    let w: Vec<String> = check(d.path(), "l0")
        .warnings
        .iter()
        .map(|w| w.to_string())
        .collect();
    assert!(
        w.iter().any(|w| w.contains("stonith_host: ha.cf is readable by group/other (mode 0644) and holds a fence device's password")),
        "{w:?}"
    );
    write(d.path(), "ha.cf", &with_fence, 0o600);
    let w: Vec<String> = check(d.path(), "l0")
        .warnings
        .iter()
        .map(|w| w.to_string())
        .collect();
    assert!(
        !w.iter().any(|w| w.contains("fence device's password")),
        "{w:?}"
    );
}

/// The example configuration in etc/ha.d loads, once its placeholder
/// secret is replaced and authkeys is chmod 600 (git keeps no modes).
#[test]
fn example_configuration_loads() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/ha.d");
    let d = tempfile::tempdir().unwrap();
    for name in ["ha.cf", "haresources", "cluster.toml"] {
        let text = std::fs::read_to_string(src.join(name)).unwrap();
        write(d.path(), name, &text, 0o644);
    }
    let keys = std::fs::read_to_string(src.join("authkeys")).unwrap();
    write(d.path(), "authkeys", &keys, 0o600);
    assert_eq!(
        errors(d.path(), "n1"),
        vec!["authkeys:13: key 1: the example's placeholder secret: generate one with `openssl rand -hex 32`"]
    );
    let keys = keys.replace(authkeys::PLACEHOLDER_SECRET, SECRET);
    write(d.path(), "authkeys", &keys, 0o600);
    let c = load(d.path(), "n2").unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.ha.keepalive, std::time::Duration::from_millis(200));
    assert_eq!(c.ha.nodes, vec!["n1", "n2"]);
    assert_eq!(c.ha.auto_failback, AutoFailback::On);
    assert_eq!(c.haresources.groups[0].resources.len(), 3);
    assert_eq!(c.cluster, ClusterToml::default());
}

#[test]
fn node_must_be_listed() {
    let d = seed_dir();
    assert_eq!(
        errors(d.path(), "zz"),
        vec!["ha.cf:9: node: this node `zz` is not in the node list (l0, l1); hbd names this node by --node or `uname -n`"]
    );
}

#[test]
fn missing_files() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(
        errors(d.path(), "l0"),
        vec![
            "authkeys: missing: hbd needs it (heartbeat's authkeys: the keys that sign and check every datagram)",
            "ha.cf: missing: hbd needs it (heartbeat's ha.cf: the nodes, the media and the timings)",
        ]
    );
}

#[test]
fn every_error_sorted_by_file_then_line() {
    let d = seed_dir();
    write(
        d.path(),
        "ha.cf",
        &format!("frobnicate\n{SEED_002_HA_CF}serial /dev/ttyS0\n"),
        0o644,
    );
    write(d.path(), "authkeys", "auth 2\n1 sha256 x\n", 0o640);
    write(d.path(), "haresources", "l0 192.0.2.5\nl7 b\n", 0o644);
    write(d.path(), "cluster.toml", "[cluster]\nnom = 1\n", 0o644);
    assert_eq!(
        errors(d.path(), "l0"),
        vec![
            "authkeys: readable by group/other (mode 0640); chmod 600 it",
            "authkeys:1: auth: key 2 is not listed in this file (keys: 1)",
            "cluster.toml:2: cluster.nom: unknown field `nom`, expected `name` or `accept_weaker_keys`",
            "ha.cf:1: frobnicate: unknown directive",
            "ha.cf:12: serial: not supported: serial links are not supported: hbd heartbeats over UDP only (bcast, mcast, ucast); use a crossover Ethernet link instead",
            "haresources:2: l7: not a node of ha.cf (nodes: l0, l1); a line starts with its preferred node",
        ]
    );
    let r = check(d.path(), "l0");
    assert!(r.config.is_none());
    assert_eq!(r.errors.len(), 6);
    // Warnings are still reported: hopfudge, and the short secret.
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
}

const KEEPALIVED: &str = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n        192.0.2.50\n    }\n}\n";

#[test]
fn keepalived_conf_alone_is_vrrp_mode() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "keepalived.conf", KEEPALIVED, 0o644);
    let r = check(d.path(), "n1");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let c = r.config.expect("valid");
    assert!(c.vrrp_only);
    assert_eq!(c.keepalived.expect("parsed").instances.len(), 1);
}

#[test]
fn keepalived_conf_next_to_heartbeat() {
    let d = seed_dir();
    write(d.path(), "keepalived.conf", KEEPALIVED, 0o644);
    let r = check(d.path(), "l0");
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let c = r.config.expect("valid");
    assert!(!c.vrrp_only);
    assert!(c.keepalived.is_some());
    assert!(!c.ha.nodes.is_empty());
}

#[test]
fn keepalived_conf_errors_are_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "keepalived.conf",
        &KEEPALIVED.replace("virtual_router_id 51", "virtual_router_id 300"),
        0o644,
    );
    let r = check(d.path(), "n1");
    assert!(r.config.is_none());
    assert!(
        r.errors
            .iter()
            .any(|e| e.line() == 3 && e.file().ends_with("keepalived.conf")),
        "{:?}",
        r.errors
    );
}

/// `[membership]` resolved into `Config`: defaults (heartbeat, no
/// corosync.conf read), and with the corosync backend corosync.conf loaded,
/// a relative `corosync_conf` taken from the configuration directory, no
/// authkeys needed.
#[test]
fn membership_settings_resolve() {
    let d = seed_dir();
    let c = load(d.path(), "l0").unwrap();
    assert_eq!(
        c.membership,
        MembershipSettings {
            backend: MembershipBackend::Heartbeat,
            corosync_conf: PathBuf::from("/etc/corosync/corosync.conf"),
            cpg_group: "hbd".into(),
            stop_margin: None,
        }
    );
    assert_eq!(c.corosync, None);

    std::fs::remove_file(d.path().join("authkeys")).unwrap();
    write(
        d.path(),
        "cluster.toml",
        "[membership]\nbackend = \"corosync\"\ncorosync_conf = \"cs/corosync.conf\"\ncpg_group = \"db\"\nstop_margin = \"1500ms\"\n",
        0o600,
    );
    std::fs::create_dir(d.path().join("cs")).unwrap();
    write(
        &d.path().join("cs"),
        "corosync.conf",
        "totem {\n version: 2\n}\nnodelist {\n node {\n  name: l0\n  nodeid: 1\n  ring0_addr: 192.168.1.2\n }\n node {\n  name: L1\n  nodeid: 2\n  ring0_addr: 192.168.1.3\n }\n}\nquorum {\n provider: corosync_votequorum\n two_node: 1\n}\n",
        0o644,
    );
    let c = match load(d.path(), "l0") {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(c.membership.backend, MembershipBackend::Corosync);
    assert_eq!(
        c.membership.corosync_conf,
        d.path().join("cs/corosync.conf")
    );
    assert_eq!(c.membership.cpg_group, "db");
    assert_eq!(
        c.membership.stop_margin,
        Some(std::time::Duration::from_millis(1500))
    );
    let cs = c.corosync.as_ref().unwrap();
    assert_eq!(cs.nodeid("l1"), Some(2));
    assert_eq!(cs.node_name(1), Some("l0"));
    assert!(c.authkeys.keys.is_empty());
    // seed 002's ha.cf has media: ignored, a warning each.
    assert!(
        c.warnings
            .iter()
            .any(|w| w.message.starts_with("ignored with `[membership] backend")),
        "{:?}",
        c.warnings
    );
    assert!(c.ha.media.is_empty());
}
