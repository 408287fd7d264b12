//! `hbctl export pacemaker` on the repository's etc/ examples and seed-like
//! configurations, checked by Pacemaker's own tools (Debian's
//! pacemaker-cli-utils, installed by scripts/setup): `crm_verify
//! --xml-file` finds no error in the CIB, and `crm_simulate --simulate`
//! with every node up places each group's resources on one node (its
//! haresources node), started in haresources order, each DRBD promotion
//! before the resource that followed drbddisk. The pcs script and the
//! crmsh text load with the real pcs and crmsh (offline, into a file) where
//! their agents are installed (not DRBD's: drbd-utils' OCF agent is not
//! installed here). No cluster runs: the tools read the file only.

mod common;

use common::{repo, HBCTL, KEY};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn write(dir: &Path, name: &str, text: &str, mode: u32) {
    let p = dir.join(name);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `hbctl export pacemaker --format FORMAT` of `dir`; must succeed.
fn export(dir: &Path, node: &str, format: &str) -> String {
    let out = Command::new(HBCTL)
        .args(["export", "pacemaker", "--format", format, "--config"])
        .arg(dir)
        .args(["--node", node])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show("hbctl export", &out));
    String::from_utf8(out.stdout).unwrap()
}

fn tool(dir: &Path, args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/setup installs pacemaker-cli-utils)",
                args[0]
            )
        })
}

/// The pcs script and the crmsh text of `dir` (as node `node`) loaded by
/// the real pcs (0.11, offline: `pcs -f` on a file) and crmsh (4.4,
/// `CIB_file`), each into an empty CIB that crm_verify then accepts. Both
/// tools check every agent's meta-data: they run in a private mount
/// namespace whose /usr/lib/ocf/resource.d also holds hbd's agents (the
/// package installs them there as provider hbd). The pcs script's first
/// and last commands (read and push the live CIB) become `cibadmin
/// --empty` and crm_verify.
fn load_with_pcs_and_crmsh(dir: &Path, node: &str) {
    let ocf = dir.join("ocf");
    fs::create_dir_all(ocf.join("hbd")).unwrap();
    for provider in ["heartbeat", "pacemaker"] {
        let out = tool(
            dir,
            &[
                "cp",
                "-a",
                &format!("/usr/lib/ocf/resource.d/{provider}"),
                ocf.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", show("cp", &out));
    }
    for agent in ["mysqld", "daemon"] {
        fs::copy(
            repo().join("resources").join(agent),
            ocf.join("hbd").join(agent),
        )
        .unwrap();
    }
    let script = export(dir, node, "pcs")
        .replace(
            "pcs cluster cib \"$cib\"\n",
            "cibadmin --empty > \"$cib\"\n",
        )
        .replace(
            "pcs cluster cib-push \"$cib\" --config\n",
            "crm_verify --xml-file \"$cib\"\n",
        );
    assert!(script.contains("cibadmin --empty") && script.contains("crm_verify --xml-file"));
    fs::write(dir.join("pcs-offline.sh"), &script).unwrap();
    fs::write(dir.join("crm.txt"), export(dir, node, "crmsh")).unwrap();
    let run = format!(
        "set -e\nmount --bind {ocf} /usr/lib/ocf/resource.d\n\
         sh {d}/pcs-offline.sh\n\
         cibadmin --empty > {d}/crm-cib.xml\n\
         CIB_file={d}/crm-cib.xml crm -F configure load update {d}/crm.txt\n\
         crm_verify --xml-file {d}/crm-cib.xml\n",
        ocf = ocf.display(),
        d = dir.display()
    );
    let out = tool(
        dir,
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &run,
        ],
    );
    assert!(
        out.status.success(),
        "{}\npcs script:\n{script}\ncrmsh:\n{}",
        show("pcs and crmsh (scripts/setup installs them)", &out),
        fs::read_to_string(dir.join("crm.txt")).unwrap()
    );
}

/// crm_verify finds no error. Warnings are allowed: with fencing on and an
/// empty status section it warns that the nodes (never seen) are unclean
/// and there is no quorum, and exits 78 with "Warnings found"; errors say
/// "error" (schema, unknown references, bad values). The agents need not be
/// installed: crm_verify does not look them up.
fn verify(dir: &Path, xml: &str) {
    let file = dir.join("cib.xml");
    fs::write(&file, xml).unwrap();
    let out = tool(dir, &["crm_verify", "--xml-file", "cib.xml", "-V"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .to_lowercase();
    let ok =
        out.status.success() || (out.status.code() == Some(78) && text.contains("warnings found"));
    assert!(
        ok && !text.contains("error"),
        "{}\n{xml}",
        show("crm_verify", &out)
    );
}

/// What crm_simulate did with every node online and member, with quorum
/// (corosync's two_node keeps it) and the ping clone's `pingd` attribute at
/// `pingd` on every node: the actions in order (`start ID on NODE`,
/// `promote ID on NODE`). The exported status section is empty (the
/// cluster fills it); the simulation's copy gets one `node_state` per node.
fn simulate(dir: &Path, xml: &str, nodes: &[&str], pingd: u32) -> Vec<(String, String, String)> {
    let mut status = String::from("<status>");
    for (i, n) in nodes.iter().enumerate() {
        let id = i + 1;
        status.push_str(&format!(
            "<node_state id=\"{id}\" uname=\"{n}\" in_ccm=\"true\" crmd=\"online\" \
             join=\"member\" expected=\"member\"><transient_attributes id=\"{id}\">\
             <instance_attributes id=\"status-{id}\"><nvpair id=\"status-{id}-pingd\" \
             name=\"pingd\" value=\"{pingd}\"/></instance_attributes></transient_attributes>\
             </node_state>"
        ));
    }
    status.push_str("</status>");
    assert!(xml.contains("<status/>") && xml.contains("<cib "), "{xml}");
    let sim = xml
        .replace("<status/>", &status)
        .replacen("<cib ", "<cib have-quorum=\"1\" ", 1);
    fs::write(dir.join("sim.xml"), &sim).unwrap();
    let out = tool(
        dir,
        &["crm_simulate", "--xml-file", "sim.xml", "--simulate"],
    );
    assert!(out.status.success(), "{}", show("crm_simulate", &out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut actions = Vec::new();
    for line in text.lines() {
        // `  * Resource action: ip-192.0.2.100  start on n1`
        let Some(rest) = line.trim().strip_prefix("* Resource action:") else {
            continue;
        };
        let w: Vec<&str> = rest.split_whitespace().collect();
        if let [id, action, "on", node] = w[..] {
            if action == "start" || action == "promote" {
                // Clone instances are `drbd-r0:0`.
                let id = id.split(':').next().unwrap().to_string();
                actions.push((action.to_string(), id, node.to_string()));
            }
        }
    }
    assert!(!actions.is_empty(), "crm_simulate started nothing:\n{text}");
    actions
}

/// Each group (`members` in haresources order) starts on `node` in that
/// order; `promote` (the DRBD clone's child, the member it comes before).
fn assert_placed(
    actions: &[(String, String, String)],
    members: &[&str],
    node: &str,
    promote: Option<(&str, &str)>,
) {
    let at = |action: &str, id: &str| {
        actions
            .iter()
            .position(|(a, i, n)| a == action && i == id && n == node)
            .unwrap_or_else(|| panic!("no `{action} {id} on {node}` in {actions:?}"))
    };
    let starts: Vec<usize> = members.iter().map(|m| at("start", m)).collect();
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "{members:?} not started in order on {node}: {actions:?}"
    );
    for m in members {
        assert_eq!(
            actions
                .iter()
                .filter(|(a, i, _)| a == "start" && i == m)
                .count(),
            1,
            "{m} started more than once: {actions:?}"
        );
    }
    if let Some((drbd, before)) = promote {
        assert!(
            at("promote", drbd) < at("start", before),
            "{drbd} not promoted on {node} before {before} starts: {actions:?}"
        );
    }
}

/// The repository's etc/ha.d, as installed (with a real key).
#[test]
fn repo_example_passes_crm_verify_and_runs_on_its_node() {
    let d = tempfile::tempdir().unwrap();
    for f in ["ha.cf", "haresources", "cluster.toml"] {
        let text = fs::read_to_string(repo().join("etc/ha.d").join(f)).unwrap();
        write(d.path(), f, &text, 0o644);
    }
    write(d.path(), "authkeys", KEY, 0o600);
    let xml = export(d.path(), "n1", "cib");
    verify(d.path(), &xml);
    let actions = simulate(d.path(), &xml, &["n1", "n2"], 0);
    assert_placed(
        &actions,
        &["ip-192.0.2.100", "fs-srv", "mysqld"],
        "n1",
        None,
    );
    assert!(xml.contains("provider=\"hbd\" type=\"mysqld\""), "{xml}");
    load_with_pcs_and_crmsh(d.path(), "n1");
}

/// Seed 002 (AggreGate: heartbeat + DRBD + mon): `l0 IPaddr2 drbddisk::r0
/// Filesystem mysqld-max linkserv mon`, its drbd.conf, the mon.cf port
/// checks as [[check]]s, a job, and keepalived.conf beside it.
#[test]
fn seed_002_drbd_group_is_promoted_then_started_in_order() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(
        p,
        "ha.cf",
        "keepalive 1\ndeadtime 3\nbcast eth1\nauto_failback on\nnode l0\nnode l1\n",
        0o644,
    );
    write(p, "authkeys", KEY, 0o600);
    write(
        p,
        "haresources",
        "l0 IPaddr2::192.0.2.100/24/eth1:0 drbddisk::r0 \\\n   \
         Filesystem::/dev/drbd0::/mnt/drbd::ext3 mysqld-max linkserv mon\n",
        0o644,
    );
    write(
        p,
        "drbd.conf",
        "global {\n    usage-count no;\n}\ncommon {\n  syncer { rate 10M; }\n}\n\
         resource r0 {\n  protocol        C;\n  startup { wfc-timeout 0; degr-wfc-timeout 120; }\n\
         disk { on-io-error detach; }\n  meta-disk internal;\n  syncer {\n  }\n\
         on l0 {\n    device /dev/drbd0;\n    disk /dev/sda7;\n    address 192.0.2.2:7791;\n  }\n\
         on l1 {\n    device /dev/drbd0;\n    disk /dev/sda7;\n    address 192.0.2.3:7791;\n  }\n}\n",
        0o644,
    );
    for s in ["mysqld-max", "linkserv"] {
        write(p, &format!("init.d/{s}"), "#!/bin/sh\nexit 0\n", 0o755);
    }
    write(
        p,
        "cluster.toml",
        &format!(
            "[agents]\ninit_dir = \"{}\"\n\n\
             [[check]]\nname = \"mysql-port\"\ntype = \"tcp\"\nport = 3306\ninterval = \"20s\"\n\
             action = \"restart\"\nresource = \"mysqld-max\"\nrestarts = 1\n\n\
             [[check]]\nname = \"linkserv-port\"\ntype = \"tcp\"\nport = 6460\n\n\
             [[job]]\nname = \"backup\"\nschedule = \"@daily\"\ncommand = \"/usr/local/bin/backup\"\n",
            p.join("init.d").display()
        ),
        0o600,
    );
    let vrrp = fs::read_to_string(repo().join("etc/keepalived/node1/keepalived.conf")).unwrap();
    write(p, "keepalived.conf", &vrrp, 0o644);

    let xml = export(p, "l1", "cib");
    verify(p, &xml);
    let actions = simulate(p, &xml, &["l0", "l1"], 0);
    assert_placed(
        &actions,
        &["ip-192.0.2.100", "fs-mnt-drbd", "mysqld-max", "linkserv"],
        "l0",
        Some(("drbd-r0", "fs-mnt-drbd")),
    );
    // What does not carry over is named.
    for want in [
        "[[job]] backup",
        "DRBD kernel module",
        "vrrp_instance DB",
        "vrrp_instance MEMCACHE",
        "[[check]] linkserv-port",
    ] {
        assert!(xml.contains(want), "no {want:?} in\n{xml}");
    }
    // The restart check is mysqld-max's monitor.
    assert!(
        xml.contains(
            "<op id=\"mysqld-max-monitor-interval-20s\" name=\"monitor\" interval=\"20s\""
        ),
        "{xml}"
    );

    // pcs: a valid shell script; crmsh: every resource and constraint.
    let script = export(p, "l1", "pcs");
    let f = p.join("export.sh");
    fs::write(&f, &script).unwrap();
    let out = tool(p, &["sh", "-n", "export.sh"]);
    assert!(out.status.success(), "{}\n{script}", show("sh -n", &out));
    assert!(
        script.contains("pcs -f \"$cib\" resource create drbd-r0 ocf:linbit:drbd"),
        "{script}"
    );
    assert!(
        script.contains("pcs cluster cib-push \"$cib\" --config"),
        "{script}"
    );
    let crm = export(p, "l1", "crmsh");
    for want in [
        "primitive drbd-r0 ocf:linbit:drbd",
        "clone drbd-r0-clone drbd-r0",
        "group group-ip-192.0.2.100 ip-192.0.2.100 fs-mnt-drbd mysqld-max linkserv",
        "colocation colocation-group-ip-192.0.2.100-with-drbd-r0-clone INFINITY: group-ip-192.0.2.100 drbd-r0-clone:Promoted",
        "order order-drbd-r0-clone-then-fs-mnt-drbd Mandatory: drbd-r0-clone:promote fs-mnt-drbd:start",
        "[[job]] backup",
    ] {
        assert!(crm.contains(want), "no {want:?} in\n{crm}");
    }
}

/// Two groups with different home nodes, ping nodes, fencing, and
/// auto_failback off: each group runs on its own node.
#[test]
fn two_groups_with_ping_and_fencing_run_on_their_nodes() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(
        p,
        "ha.cf",
        "keepalive 1\ndeadtime 10\nucast eth0 192.0.2.1\nucast eth0 192.0.2.2\nauto_failback off\n\
         node n1 n2\nping 192.0.2.254\nping_group up 192.0.2.252 192.0.2.253\n\
         stonith_host n1 fence_ipmilan ip=192.0.2.112 username=admin password=p<&>\"w lanplus=1 nodes=n2\n\
         stonith_host n2 fence_ipmilan ip=192.0.2.111 username=admin password=p<&>\"w lanplus=1 nodes=n1\n",
        0o600,
    );
    write(p, "authkeys", KEY, 0o600);
    write(
        p,
        "haresources",
        "n1 IPaddr2::192.0.2.50/24/eth0 daemon::--port=8080::/run/app.pid::/usr/bin/app\n\
         n2 192.0.2.51/24/eth0 ocf:heartbeat:Dummy::state=/run/dummy.state\n",
        0o644,
    );
    write(
        p,
        "cluster.toml",
        "[quorum]\n\n[fencing]\naction = \"off\"\n",
        0o600,
    );
    let xml = export(p, "n2", "cib");
    verify(p, &xml);
    assert!(xml.contains("value=\"p&lt;&amp;&gt;&quot;w\""), "{xml}");
    let actions = simulate(p, &xml, &["n1", "n2"], 2000);
    assert_placed(&actions, &["ip-192.0.2.50", "daemon"], "n1", None);
    assert_placed(&actions, &["ip-192.0.2.51", "Dummy"], "n2", None);
    // Each fence device runs on its stonith_host node.
    assert!(actions.contains(&("start".into(), "fence-fence_ipmilan-1".into(), "n1".into())));
    assert!(actions.contains(&("start".into(), "fence-fence_ipmilan-2".into(), "n2".into())));
    // No node reaches a ping node: no group starts anywhere.
    let cut = simulate(p, &xml, &["n1", "n2"], 0);
    assert!(
        !cut.iter()
            .any(|(_, id, _)| id.starts_with("ip-") || id == "daemon" || id == "Dummy"),
        "a group started without connectivity: {cut:?}"
    );
    for want in [
        "name=\"resource-stickiness\" value=\"INFINITY\"",
        "name=\"stonith-enabled\" value=\"true\"",
        "name=\"stonith-action\" value=\"off\"",
        "type=\"ping\"",
        "attribute=\"pingd\" operation=\"not_defined\"",
    ] {
        assert!(xml.contains(want), "no {want:?} in\n{xml}");
    }
    // pcs and crmsh check the fence agent's meta-data too, and
    // fence-agents is not installed here: they load the configuration
    // without the stonith_host lines.
    let ha_cf = fs::read_to_string(p.join("ha.cf")).unwrap();
    let without: String = ha_cf
        .lines()
        .filter(|l| !l.starts_with("stonith_host"))
        .map(|l| format!("{l}\n"))
        .collect();
    write(p, "ha.cf", &without, 0o600);
    write(p, "cluster.toml", "[quorum]\n", 0o600);
    load_with_pcs_and_crmsh(p, "n2");
}

/// A configuration with errors is refused as `hbctl check` refuses it.
#[test]
fn a_bad_configuration_exits_2_naming_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "ha.cf",
        "keepalive 1\ndeadtime 10\nbcast eth0\nnode n1 n2\nbogus 1\n",
        0o644,
    );
    write(d.path(), "authkeys", KEY, 0o600);
    let out = Command::new(HBCTL)
        .args(["export", "pacemaker", "--config"])
        .arg(d.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", show("hbctl export", &out));
    assert!(err.contains("ha.cf:5: bogus"), "{err}");
    assert!(out.stdout.is_empty());

    // VRRP mode alone (the File Fabric seeds): nothing for Pacemaker.
    let v = tempfile::tempdir().unwrap();
    let conf = fs::read_to_string(repo().join("etc/keepalived/node1/keepalived.conf")).unwrap();
    write(v.path(), "keepalived.conf", &conf, 0o644);
    let out = Command::new(HBCTL)
        .args(["export", "pacemaker", "--config"])
        .arg(v.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show("hbctl export", &out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keepalived"));
}
