//! `[membership] backend = "corosync"` through the real `hbctl check`:
//! corosync.conf and hbd's files must agree (node names, drbd.conf's hosts
//! and addresses, votequorum's two_node), each disagreement an error naming
//! both files' lines, exit 2.

mod common;

use common::{HBCTL, KEY};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// ha.cf without media: Corosync carries the membership.
const HA: &str = "keepalive 200ms\ndeadtime 2\nnode n1\nnode n2\nauto_failback on\n";
const TOML: &str = "[membership]\nbackend = \"corosync\"\ncorosync_conf = \"corosync.conf\"\n";

fn corosync_conf(nodes: &[(&str, u32, &str)], quorum: &str) -> String {
    let mut s = String::from(
        "totem {\n    version: 2\n    cluster_name: lab\n    transport: knet\n}\n\nnodelist {\n",
    );
    for (name, id, addr) in nodes {
        s += &format!(
            "    node {{\n        name: {name}\n        nodeid: {id}\n        ring0_addr: {addr}\n    }}\n"
        );
    }
    s += &format!("}}\n\nquorum {{\n    provider: corosync_votequorum\n{quorum}}}\n");
    s
}

const TWO: &[(&str, u32, &str)] = &[("n1", 1, "198.51.100.1"), ("n2", 2, "198.51.100.2")];

const DRBD: &str = "resource r0 {\n  protocol C;\n  meta-disk internal;\n\
                    on n1 {\n    device /dev/drbd0;\n    disk /dev/vg/r0;\n    address 198.51.100.1:7788;\n  }\n\
                    on n2 {\n    device /dev/drbd0;\n    disk /dev/vg/r0;\n    address 198.51.100.2:7788;\n  }\n}\n";

struct Dir(tempfile::TempDir);

impl Dir {
    /// A valid Corosync-backend configuration: ha.cf, haresources,
    /// cluster.toml, corosync.conf (no authkeys).
    fn new() -> Dir {
        let d = Dir(tempfile::tempdir().unwrap());
        d.write("ha.cf", HA);
        d.write("haresources", "n1 192.0.2.50\n");
        d.write("cluster.toml", TOML);
        d.write("corosync.conf", &corosync_conf(TWO, "    two_node: 1\n"));
        d
    }
    fn write(&self, name: &str, text: &str) {
        let p = self.0.path().join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn file(&self, name: &str) -> String {
        self.path().join(name).display().to_string()
    }
    fn check(&self, node: &str) -> Output {
        Command::new(HBCTL)
            .args(["check", "--config"])
            .arg(self.path())
            .args(["--node", node])
            .output()
            .unwrap()
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `hbctl check` exits 2 and every `expect` line holds all its parts.
fn refused(d: &Dir, node: &str, expect: &[&[&str]]) {
    let out = d.check(node);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for parts in expect {
        assert!(
            err.lines().any(|l| parts.iter().all(|p| l.contains(p))),
            "no error line with {parts:?}:\n{}",
            show(&out)
        );
    }
}

#[test]
fn agreeing_files_check_clean() {
    let d = Dir::new();
    d.write("drbd.conf", DRBD);
    for node in ["n1", "n2", "N1"] {
        let out = d.check(node);
        assert_eq!(out.status.code(), Some(0), "{node}: {}", show(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("membership: corosync") && stdout.contains("nodeids n1=1, n2=2"),
            "{}",
            show(&out)
        );
        // 198.51.100.x is no address of this machine: a warning, not an error.
        assert!(
            stdout.contains("is not an address of any local interface"),
            "{}",
            show(&out)
        );
    }
    // Names compare ignoring case; a three-node cluster needs no two_node.
    d.write("ha.cf", &HA.replace("node n2\n", "node n2\nnode n3\n"));
    d.write(
        "corosync.conf",
        &corosync_conf(
            &[
                ("N1", 1, "198.51.100.1"),
                ("n2", 2, "198.51.100.2"),
                ("n3", 3, "198.51.100.3"),
            ],
            "",
        ),
    );
    let out = d.check("n1");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // A quorum device instead of two_node.
    d.write("ha.cf", HA);
    d.write(
        "corosync.conf",
        &corosync_conf(TWO, "    device {\n        model: net\n        net {\n            host: 192.0.2.100\n        }\n    }\n"),
    );
    let out = d.check("n1");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn media_and_authkeys_with_corosync() {
    let d = Dir::new();
    // Media are ignored (a warning each); serial ones too.
    d.write("ha.cf", &format!("{HA}bcast eth0\nserial /dev/ttyS0\n"));
    // authkeys, when present, is still checked.
    d.write("authkeys", KEY);
    let out = d.check("n1");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ha = d.file("ha.cf");
    for l in [6, 7] {
        assert!(
            stdout.contains(&format!("warning: {ha}:{l}: ")) && stdout.contains("ignored with"),
            "line {l}: {}",
            show(&out)
        );
    }
    d.write("authkeys", "auth 3\n1 sha256 x\n");
    refused(&d, "n1", &[&[&d.file("authkeys")]]);
    // Without the backend, no media is still an error.
    let d = Dir::new();
    d.write("cluster.toml", "");
    d.write("authkeys", KEY);
    refused(&d, "n1", &[&[&d.file("ha.cf"), "no heartbeat media"]]);
}

#[test]
fn corosync_conf_missing_or_bad() {
    let d = Dir::new();
    fs::remove_file(d.path().join("corosync.conf")).unwrap();
    refused(
        &d,
        "n1",
        &[&[
            &format!("{}:3: membership.corosync_conf: ", d.file("cluster.toml")),
            "corosync.conf: missing",
        ]],
    );
    d.write("corosync.conf", &corosync_conf(TWO, "    two_node: yes\n"));
    refused(
        &d,
        "n1",
        &[&[&format!(
            "{}:22: quorum.two_node: `yes`",
            d.file("corosync.conf")
        )]],
    );
    d.write("cluster.toml", "[membership]\n\nbackend = \"pacemaker\"\n");
    refused(
        &d,
        "n1",
        &[&[&format!(
            "{}:3: membership.backend: unknown variant `pacemaker`",
            d.file("cluster.toml")
        )]],
    );
}

#[test]
fn witness_is_refused_with_corosync() {
    let d = Dir::new();
    d.write(
        "cluster.toml",
        &format!("{TOML}\n[quorum]\nwitness = \"w1\"\n"),
    );
    refused(
        &d,
        "n1",
        &[&[
            &format!("{}:6: quorum.witness: ", d.file("cluster.toml")),
            "votequorum",
        ]],
    );
    let out = Command::new(HBCTL)
        .args(["check", "--witness", "--config"])
        .arg(d.path())
        .args(["--node", "w1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:2: membership.backend: `hbd --witness` runs only with the heartbeat backend",
            d.file("cluster.toml")
        )),
        "{}",
        show(&out)
    );
}

#[test]
fn node_names_disagree() {
    // An ha.cf node missing from the nodelist.
    let d = Dir::new();
    d.write("ha.cf", &HA.replace("node n2\n", "node n2\nnode n3\n"));
    d.write("corosync.conf", &corosync_conf(TWO, "    two_node: 1\n"));
    refused(
        &d,
        "n1",
        &[&[
            &format!(
                "{}:5: node: `n3` is not a node of corosync.conf's nodelist",
                d.file("ha.cf")
            ),
            &format!("{}:8", d.file("corosync.conf")),
        ]],
    );
    // A nodelist name that is no ha.cf node.
    let d = Dir::new();
    d.write(
        "corosync.conf",
        &corosync_conf(
            &[
                ("n1", 1, "198.51.100.1"),
                ("n2", 2, "198.51.100.2"),
                ("n9", 9, "198.51.100.9"),
            ],
            "",
        ),
    );
    refused(
        &d,
        "n1",
        &[&[
            &format!(
                "{}:18: nodelist.node.name: `n9` is not an ha.cf node",
                d.file("corosync.conf")
            ),
            &format!("{}:3", d.file("ha.cf")),
        ]],
    );
    // This node missing from the nodelist (but in ha.cf).
    let d = Dir::new();
    d.write(
        "corosync.conf",
        &corosync_conf(
            &[("n2", 2, "198.51.100.2"), ("n3", 3, "198.51.100.3")],
            "    two_node: 1\n",
        ),
    );
    d.write("ha.cf", &HA.replace("node n2\n", "node n2\nnode n3\n"));
    refused(
        &d,
        "n1",
        &[&[
            &format!(
                "{}:8: nodelist.node.name: this node `n1`",
                d.file("corosync.conf")
            ),
            &format!("ha.cf's node at {}:3", d.file("ha.cf")),
        ]],
    );
    // A node without a name.
    let d = Dir::new();
    d.write(
        "corosync.conf",
        &corosync_conf(TWO, "    two_node: 1\n").replace("        name: n2\n", ""),
    );
    refused(
        &d,
        "n1",
        &[
            &[
                &format!(
                    "{}:13: nodelist.node.name: missing",
                    d.file("corosync.conf")
                ),
                "nodeid 2",
            ],
            &[&format!("{}:4: node: `n2` is not a node", d.file("ha.cf"))],
        ],
    );
}

/// The daemon refuses the same disagreement at start (exit 2), in an
/// empty network namespace so that nothing could be sent should it start.
#[test]
fn hbd_refuses_a_disagreement_too() {
    common::require_root();
    let d = Dir::new();
    d.write("ha.cf", &HA.replace("node n2\n", "node n2\nnode n3\n"));
    let out = Command::new("unshare")
        .args(["--net", "--", common::HBD])
        .arg("--config")
        .arg(d.path())
        .args(["--node", "n1"])
        .arg("--run-dir")
        .arg(d.path().join("run"))
        .arg("--state-dir")
        .arg(d.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:5: node: `n3` is not a node of corosync.conf's nodelist",
            d.file("ha.cf")
        )),
        "{}",
        show(&out)
    );
    assert!(!d.path().join("run").exists(), "hbd created its run dir");
}

#[test]
fn drbd_conf_disagrees() {
    // An `on` host that is no nodelist node.
    let d = Dir::new();
    d.write("drbd.conf", &DRBD.replace("on n2 {", "on n2.example {"));
    refused(
        &d,
        "n1",
        &[&[
            &format!(
                "{}:9: resource r0 on n2.example: `n2.example` is not a node",
                d.file("drbd.conf")
            ),
            &format!("{}:8", d.file("corosync.conf")),
        ]],
    );
    // The addresses of the two `on` sections swapped.
    let d = Dir::new();
    d.write(
        "drbd.conf",
        &DRBD
            .replace("198.51.100.1:7788", "X")
            .replace("198.51.100.2:7788", "198.51.100.1:7788")
            .replace("X", "198.51.100.2:7788"),
    );
    refused(
        &d,
        "n1",
        &[
            &[
                &format!(
                    "{}:4: resource r0 on n1: address 198.51.100.2 is ring0_addr of node `n2`",
                    d.file("drbd.conf")
                ),
                &format!("{}:13", d.file("corosync.conf")),
                "swapped",
            ],
            &[
                &format!(
                    "{}:9: resource r0 on n2: address 198.51.100.1 is ring0_addr of node `n1`",
                    d.file("drbd.conf")
                ),
                &format!("{}:8", d.file("corosync.conf")),
            ],
        ],
    );
}

#[test]
fn quorum_settings_disagree() {
    // Two nodes, no device, no two_node.
    let d = Dir::new();
    d.write("corosync.conf", &corosync_conf(TWO, ""));
    refused(
        &d,
        "n1",
        &[&[
            &format!(
                "{}:20: quorum.two_node: two nodes in the nodelist (n1, n2; ha.cf's at {}:3)",
                d.file("corosync.conf"),
                d.file("ha.cf")
            ),
            "the survivor of a 2-node cluster never has quorum",
            "add `two_node: 1`",
        ]],
    );
    // Another quorum provider, or none.
    d.write(
        "corosync.conf",
        &corosync_conf(TWO, "    two_node: 1\n").replace("corosync_votequorum", "net"),
    );
    refused(
        &d,
        "n1",
        &[&[
            &format!("{}:20: quorum.provider: `net`", d.file("corosync.conf")),
            "votequorum",
        ]],
    );
    let text = corosync_conf(TWO, "");
    let text = &text[..text.find("quorum {").unwrap()];
    d.write("corosync.conf", text);
    refused(
        &d,
        "n1",
        &[
            &[&format!(
                "{}: quorum.provider: missing",
                d.file("corosync.conf")
            )],
            &[&format!(
                "{}: quorum.two_node: two nodes",
                d.file("corosync.conf")
            )],
        ],
    );
}

/// The safe-defaults warning of a two-node cluster sharing a disk: with
/// Corosync it suggests a quorum device (not the witness, an error with this
/// backend), and a quorum device silences it.
#[test]
fn unprotected_disk_warning_with_corosync() {
    let d = Dir::new();
    d.write("drbd.conf", DRBD);
    d.write("haresources", "n1 192.0.2.50 drbddisk::r0\n");
    let out = d.check("n1");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("no split-brain protection")
            && stdout.contains("a quorum device in corosync.conf (corosync-qnetd)")
            && !stdout.contains("[quorum] witness"),
        "{}",
        show(&out)
    );
    d.write(
        "corosync.conf",
        &corosync_conf(
            TWO,
            "    device {\n        model: net\n        net {\n            host: 192.0.2.100\n        }\n    }\n",
        ),
    );
    let out = d.check("n1");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("no split-brain protection"),
        "{}",
        show(&out)
    );
}
