//! Observing hbd (issue 17): a failover of `drbddisk::r0 Filesystem::...`
//! with `[metrics] listen` on and `hbctl events --json` attached on the
//! node that takes over. The scrape has the metric families, the event
//! stream shows the takeover's phases in order with their durations, the
//! notify hook hears of the death, the takeover and the group's start;
//! `hbctl disk` and `hbctl split-brain` given only `--run-dir` use the
//! daemon's configuration; `nodestatus` and `status --check` exit codes.

mod common;

use common::disk::{DiskLab, MIB, RES};
use common::*;
use hbd::disk::ctl::DiskRequest;
use serde_json::Value;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

const METRICS: &str = "127.0.0.1:9810";

/// `hbctl events --json` of one node, read line by line in a thread; the
/// child is killed (by its pid) on drop.
struct Events {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Events {
    fn attach(lab: &Lab, i: usize) -> Events {
        let mut cmd = Command::new(HBCTL);
        cmd.arg("--run-dir")
            .arg(lab.run_dir(i))
            .args(["events", "--json", "--now"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        die_with_test(&mut cmd);
        let mut child = cmd.spawn().expect("hbctl events");
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        Events { child, lines }
    }

    fn json(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /metrics` from inside node i's namespace (bash's /dev/tcp: no
/// HTTP client needed).
fn scrape(lab: &Lab, i: usize) -> String {
    let (host, port) = METRICS.split_once(':').unwrap();
    let out = lab.exec(
        &format!("n{i}"),
        &[
            "timeout",
            "20",
            "bash",
            "-c",
            &format!(
                "exec 3<>/dev/tcp/{host}/{port}; printf 'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' >&3; cat <&3"
            ),
        ],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_failover_in_metrics_events_and_the_notify_hook() {
    let mut d = DiskLab::with(64 * MIB, "", true);
    d.start(1);
    d.start(2);
    d.wait_connected();
    d.ok(1, DiskRequest::Primary { force: true });
    d.wait_in_sync();
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(d.device(1))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    d.ok(1, DiskRequest::Secondary);

    let mnt = d.lab.dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let line = format!(
        "n1 drbddisk::{RES} Filesystem::{}::{}::ext4\n",
        d.device(1).display(),
        mnt.display()
    );
    let notices = d.lab.dir.path().join("notices");
    for i in 1..=2 {
        d.lab.write(i, "haresources", &line);
        d.lab
            .write(i, "ha.cf", &ha_cf(2, "bcast eth0", "200ms", "2"));
        d.lab.write(
            i,
            "cluster.toml",
            &format!(
                "[metrics]\nlisten = \"{METRICS}\"\n\n[notify]\ncommand = \"echo n{i} $HBD_EVENT g=$HBD_GROUP node=$HBD_NODE phase=$HBD_PHASE ms=$HBD_DURATION_MS >> {}\"\n",
                notices.display()
            ),
        );
    }
    d.lab.start_all();
    let started_on = |d: &DiskLab, i: usize, node: &str| {
        d.lab.status(i).is_some_and(|s| {
            s["groups"][0]["owner"] == node && s["groups"][0]["state"] == "started"
        })
    };
    d.wait_for("the group started on n1", |d| started_on(d, 1, "n1"));
    d.wait_for("n2 sees n1 up", |d| {
        d.lab.node_state(2, "n1").as_deref() == Some("up")
    });

    // Item 3: hbctl disk and split-brain with only --run-dir ask the
    // daemon for its configuration dir and node name.
    for i in 1..=2 {
        let out = d.lab.hbctl(i, &["disk", "status", RES]);
        assert!(out.status.success(), "n{i} disk status: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(RES) && text.contains("Connected"), "{text}");
        let out = d.lab.hbctl(i, &["split-brain"]);
        assert!(out.status.success(), "n{i} split-brain: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "no split brain"
        );
        let out = d.lab.hbctl(i, &["disk", "status", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["schema"], 1, "{v}");
        assert_eq!(v["disks"][0]["name"], RES, "{v}");
    }
    // Every --json output has the schema.
    assert_eq!(d.lab.status(2).unwrap()["schema"], 1);
    let out = d.lab.hbctl(2, &["listnodes", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"schema": 1, "nodes": ["n1", "n2"]}));
    // Exit codes while all is well.
    assert_eq!(d.lab.hbctl(2, &["nodestatus", "n1"]).status.code(), Some(0));
    let out = d.lab.hbctl(2, &["status", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("HBD OK - "),
        "{out:?}"
    );

    // Write something so the disk's latency histograms have data.
    let out = Command::new("nsenter")
        .args(["-t", &d.lab.pid(1).to_string(), "-m", "sh", "-ec"])
        .arg(format!(
            "dd if=/dev/urandom of={}/f bs=1M count=2 status=none; sync",
            mnt.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // The scrape before: the families, over HTTP and hbctl metrics.
    let text = scrape(&d.lab, 1);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    for family in [
        "hbd_node_state{node=\"n2\",state=\"up\"} 1",
        "hbd_link_up{node=\"n2\",medium=\"bcast eth0\"} 1",
        "hbd_heartbeat_gap_seconds_bucket",
        "hbd_datagrams_sent_total",
        "hbd_datagrams_received_total",
        "hbd_group_state{group=\"drbddisk::r0\",state=\"started\"} 1",
        "hbd_group_transitions_total{group=\"drbddisk::r0\",from=\"starting\",to=\"started\"} 1",
        "hbd_disk_role{disk=\"r0\",state=\"Primary\"} 1",
        "hbd_disk_state{disk=\"r0\",state=\"UpToDate\"} 1",
        "hbd_disk_connection_state{disk=\"r0\",state=\"Connected\"} 1",
        "hbd_disk_out_of_sync_bytes{disk=\"r0\"} 0",
        "hbd_disk_resync_rate_bytes_per_second{disk=\"r0\"}",
        "hbd_disk_sent_bytes_total{disk=\"r0\"}",
        "hbd_disk_received_bytes_total{disk=\"r0\"}",
        "hbd_disk_write_latency_seconds_count{disk=\"r0\"}",
        "hbd_disk_replication_ack_latency_seconds_count{disk=\"r0\"}",
        "# EOF",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    let out = d.lab.hbctl(1, &["metrics"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("# TYPE hbd_node_state gauge"), "{text}");

    // The stream on the node that takes over, from before the failover.
    let events = Events::attach(&d.lab, 2);
    d.lab.wait_for("the initial dump", || {
        events.json().iter().any(|e| e["what"] == "now")
    });

    // n1 dies: hbd and its device killed, link cut.
    d.lab.kill(1);
    d.crash(1);
    d.lab.link("n1", 0, false);
    d.wait_for("the group started on n2", |d| started_on(d, 2, "n2"));
    d.lab.wait_for("the takeover's last event", || {
        events
            .json()
            .iter()
            .any(|e| e["kind"] == "takeover" && e["phase"] == "started")
    });
    let all = events.json();
    for e in &all {
        assert_eq!(e["schema"], 1, "{e}");
    }
    assert!(
        all.iter()
            .any(|e| e["kind"] == "node" && e["name"] == "n1" && e["attrs"]["state"] == "dead"),
        "{all:#?}"
    );
    assert!(
        all.iter().any(|e| e["kind"] == "group"
            && e["attrs"]["to"] == "started"
            && e["name"] == "drbddisk::r0"),
        "{all:#?}"
    );
    let phases: Vec<(String, u64)> = all
        .iter()
        .filter(|e| e["kind"] == "takeover")
        .map(|e| {
            (
                e["phase"].as_str().unwrap().to_string(),
                e["duration_ms"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no duration: {e}")),
            )
        })
        .collect();
    let names: Vec<&str> = phases.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["detect", "promote", "mount", "started"], "{all:#?}");
    // The whole counts from n1's last keepalive: at least the detection.
    assert!(phases[3].1 >= phases[0].1, "{phases:?}");

    // The scrape after: n1 dead, the group here.
    d.lab.wait_for("the scrape shows n1 dead", || {
        scrape(&d.lab, 2).contains("hbd_node_state{node=\"n1\",state=\"dead\"} 1")
    });
    let text = scrape(&d.lab, 2);
    assert!(
        text.contains("hbd_group_owned_here{group=\"drbddisk::r0\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("hbd_disk_role{disk=\"r0\",state=\"Primary\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("hbd_events_total{kind=\"takeover\"}"),
        "{text}"
    );

    // The notify hook: node dead, the group's start and the takeover.
    d.lab.wait_for("the notify hook ran", || {
        let n = std::fs::read_to_string(&notices).unwrap_or_default();
        n.contains("n2 node-dead g= node=n1")
            && n.contains("n2 group-started g=drbddisk::r0")
            && n.contains("n2 takeover g=drbddisk::r0 node=n2 phase=started ms=")
    });

    // Exit codes with n1 dead.
    let out = d.lab.hbctl(2, &["nodestatus", "n1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "dead");
    let out = d.lab.hbctl(2, &["status", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.starts_with("HBD WARNING - ") && line.contains("node n1 dead"),
        "{line}"
    );
    // hbd gone: failed.
    d.lab.kill(2);
    let out = d.lab.hbctl(2, &["status", "--check"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// A bad `[metrics] listen` stops hbd with the file, line and key (exit 2).
#[test]
fn a_bad_metrics_listen_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    w("ha.cf", &ha_cf(2, "bcast eth0", "1", "3"), 0o644);
    w("authkeys", KEY, 0o600);
    w("cluster.toml", "[metrics]\nlisten = \"9810\"\n", 0o644);
    let out = Command::new(HBCTL)
        .arg("check")
        .arg("--config")
        .arg(dir.path())
        .args(["--node", "n1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cluster.toml:2: metrics.listen: `9810`: expected ADDRESS:PORT"),
        "{err}"
    );
}
