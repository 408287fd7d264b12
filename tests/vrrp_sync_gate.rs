//! hbd ↔ hbd: `vrrp_sync_group` (a failing check on one member moves every
//! VIP of the group, the group's notify gets `GROUP NAME STATE 0` as keepalived 2.2.7 passes it), the
//! failback gate from cluster.toml (`[vrrp.gate.INSTANCE]`), and `hbctl
//! check` with cluster.toml's `[vrrp]` keys.

mod common;

use common::vrrp::{holders, stays, wait};
use common::{Lab, HBCTL};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const DB_VIP: &str = "192.0.2.50";
const MC_VIP: &str = "192.0.2.51";

/// A notify script appending `$# "$@"` to `dir/notify.log`.
fn notify_script(dir: &Path) -> PathBuf {
    let path = dir.join("notify.sh");
    fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"$# $*\" >> {}/notify.log\n",
            dir.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn notified(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("notify.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn vrrp_dirs(lab: &Lab) -> Vec<PathBuf> {
    (1..=2)
        .map(|i| {
            let d = lab.node_dir(i).join("vrrp");
            fs::create_dir_all(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
            d
        })
        .collect()
}

fn logs(lab: &Lab, dirs: &[PathBuf]) -> String {
    let mut s = String::new();
    for i in 1..=2 {
        s.push_str(&format!(
            "--- hbd n{i} ---\n{}\nnotify n{i}: {:?}\n",
            lab.log(i),
            notified(&dirs[i - 1])
        ));
    }
    s
}

/// Two instances (DB tracks a check that fails while `dir/fail` exists) in
/// the sync group G.
fn sync_conf(prio: u8, dir: &Path, notify: &Path) -> String {
    format!(
        r#"global_defs {{
    router_id n{prio}
    script_user root
    enable_script_security
}}
vrrp_script chk_db {{
    script "/bin/sh -c '! test -e {dir}/fail'"
    interval 1
    rise 1
    fall 1
}}
vrrp_sync_group G {{
    group {{
        DB
        MEMCACHE
    }}
    notify {notify}
}}
vrrp_instance DB {{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority {prio}
    advert_int 1
    virtual_ipaddress {{
        {DB_VIP}
    }}
    track_script {{
        chk_db
    }}
}}
vrrp_instance MEMCACHE {{
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority {prio}
    advert_int 1
    virtual_ipaddress {{
        {MC_VIP}
    }}
}}
"#,
        dir = dir.display(),
        notify = notify.display()
    )
}

#[test]
fn sync_group_moves_every_vip_of_the_group() {
    let mut lab = Lab::new(2, 1);
    let dirs = vrrp_dirs(&lab);
    for i in 1..=2 {
        let prio = if i == 1 { 150 } else { 100 };
        let n = notify_script(&dirs[i - 1]);
        lab.write(i, "keepalived.conf", &sync_conf(prio, &dirs[i - 1], &n));
    }
    let o = check(&lab.config_dir(1));
    assert!(o.status.success(), "hbctl check: {}", text(&o));
    lab.start_all();
    let both = |n: &str| holders(&lab, DB_VIP) == [n] && holders(&lab, MC_VIP) == [n];
    wait("n1 holds both VIPs", || both("n1"), || logs(&lab, &dirs));

    // DB's check fails on n1: the whole group goes FAULT there, both VIPs
    // move to n2.
    fs::write(dirs[0].join("fail"), "").unwrap();
    wait(
        "both VIPs move to n2, the group is FAULT on n1",
        || both("n2") && notified(&dirs[0]).contains(&"4 GROUP G FAULT 0".to_string()),
        || logs(&lab, &dirs),
    );
    stays(
        "both VIPs stay on n2 while DB fails on n1",
        Duration::from_secs(3),
        || both("n2"),
        || logs(&lab, &dirs),
    );
    wait(
        "n2's group is notified MASTER",
        || notified(&dirs[1]).contains(&"4 GROUP G MASTER 0".to_string()),
        || logs(&lab, &dirs),
    );

    // The check passes again: the group leaves FAULT and n1 (higher
    // priority, preempt) takes both back.
    fs::remove_file(dirs[0].join("fail")).unwrap();
    wait(
        "n1 holds both VIPs again",
        || both("n1"),
        || logs(&lab, &dirs),
    );
    // The notify script runs after the addresses are added: wait for it.
    wait(
        "n1's group is notified MASTER after its FAULT",
        || {
            let n1 = notified(&dirs[0]);
            n1.iter()
                .rposition(|l| l == "4 GROUP G FAULT 0")
                .is_some_and(|fault| n1[fault..].contains(&"4 GROUP G MASTER 0".to_string()))
        },
        || logs(&lab, &dirs),
    );
}

#[test]
fn failback_gate_from_cluster_toml_holds_preemption_until_it_opens() {
    let mut lab = Lab::new(2, 1);
    let dirs = vrrp_dirs(&lab);
    let caught_up = dirs[0].join("caught-up");
    for i in 1..=2 {
        let prio = if i == 1 { 150 } else { 100 };
        lab.write(
            i,
            "keepalived.conf",
            &common::vrrp::instance_conf("DB", 51, prio, DB_VIP, "    advert_int 1\n", ""),
        );
    }
    lab.write(
        1,
        "cluster.toml",
        &format!(
            "[vrrp.gate.DB]\ncommand = \"sh -c 'test -e {}'\"\ninterval = \"200ms\"\ntimeout = \"2s\"\n",
            caught_up.display()
        ),
    );
    let o = check(&lab.config_dir(1));
    assert!(o.status.success(), "hbctl check: {}", text(&o));
    // n2 first: it is MASTER when n1 (higher priority) arrives.
    lab.start(2);
    wait(
        "n2 holds the VIP",
        || holders(&lab, DB_VIP) == ["n2"],
        || logs(&lab, &dirs),
    );
    lab.start(1);
    stays(
        "the gate is closed: n1 does not preempt",
        Duration::from_secs(5),
        || holders(&lab, DB_VIP) == ["n2"],
        || logs(&lab, &dirs),
    );
    fs::write(&caught_up, "").unwrap();
    wait(
        "the gate opened: n1 preempts",
        || holders(&lab, DB_VIP) == ["n1"],
        || logs(&lab, &dirs),
    );
}

fn check(dir: &Path) -> Output {
    Command::new(HBCTL)
        .args(["check", "--node", "n1", "--config"])
        .arg(dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const CONF: &str = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    virtual_ipaddress {\n        192.0.2.50\n    }\n}\n";

#[test]
fn check_reads_keepalived_conf_from_cluster_toml() {
    let d = tempfile::tempdir().unwrap();
    let conf_dir = d.path().join("etc-ha.d");
    let k_dir = d.path().join("etc-keepalived");
    fs::create_dir_all(&conf_dir).unwrap();
    fs::create_dir_all(&k_dir).unwrap();
    let k = k_dir.join("keepalived.conf");
    fs::write(
        conf_dir.join("cluster.toml"),
        format!("[vrrp]\nkeepalived_conf = \"{}\"\n", k.display()),
    )
    .unwrap();
    // Named but missing: an error naming it.
    let o = check(&conf_dir);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains(&k.display().to_string()), "{}", text(&o));
    // There: VRRP mode alone, valid.
    fs::write(&k, CONF).unwrap();
    let o = check(&conf_dir);
    assert!(o.status.success(), "{}", text(&o));
    // Its errors are at its own lines.
    fs::write(
        &k,
        CONF.replace("priority 100", "priority 100\n    frobnicate yes"),
    )
    .unwrap();
    let o = check(&conf_dir);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{}:5:", k.display())),
        "{}",
        text(&o)
    );
}

#[test]
fn check_reports_bad_gates_at_their_lines() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("keepalived.conf"), CONF).unwrap();
    fs::write(
        d.path().join("cluster.toml"),
        "[vrrp.gate.VI_1]\ncommand = \"true\"\ninterval = \"soon\"\n\n[vrrp.gate.NOPE]\ncommand = \"true\"\n",
    )
    .unwrap();
    let o = check(d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("cluster.toml:3:"), "bad interval at line 3: {t}");
    assert!(
        t.contains("cluster.toml:6:") && t.contains("NOPE"),
        "unknown instance at line 6: {t}"
    );
}

fn nft_table(lab: &Lab, host: &str) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns(host),
            "nft",
            "list",
            "table",
            "inet",
            "hbd_vrrp",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `no_accept`: the MASTER holds the VIP but drops what is addressed to it
/// (an nftables table in its namespace only); the table goes with the VIP.
#[test]
fn no_accept_drops_traffic_to_the_vips_while_master() {
    common::vrrp::ensure_nft();
    let mut lab = Lab::new(2, 1);
    let dirs = vrrp_dirs(&lab);
    for i in 1..=2 {
        let prio = if i == 1 { 150 } else { 100 };
        let extra = if i == 1 {
            "    advert_int 1\n    no_accept\n"
        } else {
            "    advert_int 1\n"
        };
        lab.write(
            i,
            "keepalived.conf",
            &common::vrrp::instance_conf("DB", 51, prio, DB_VIP, extra, ""),
        );
    }
    lab.start_all();
    wait(
        "n1 holds the VIP with its drop rule",
        || holders(&lab, DB_VIP) == ["n1"] && nft_table(&lab, "n1").contains(DB_VIP),
        || logs(&lab, &dirs),
    );
    stays(
        "the VIP does not answer on n1",
        Duration::from_secs(3),
        || !common::vrrp::client_reaches(&lab, DB_VIP, "n1"),
        || logs(&lab, &dirs),
    );
    assert!(nft_table(&lab, "n2").is_empty(), "{}", logs(&lab, &dirs));
    // A clean stop: the rule goes with the VIP; n2 (accept) answers.
    assert!(lab.stop(1).success(), "{}", logs(&lab, &dirs));
    assert!(nft_table(&lab, "n1").is_empty(), "{}", logs(&lab, &dirs));
    wait(
        "n2 holds the VIP and answers",
        || holders(&lab, DB_VIP) == ["n2"] && common::vrrp::client_reaches(&lab, DB_VIP, "n2"),
        || logs(&lab, &dirs),
    );
}

/// The same sync group in keepalived 2.2.7 (n1, higher priority) and hbd
/// (n2): keepalived's group FAULT moves both VIPs to hbd, its recovery
/// brings them back; both daemons' group notify arguments are the same.
#[test]
fn sync_group_with_keepalived() {
    let mut lab = Lab::new(2, 1);
    let dirs = vrrp_dirs(&lab);
    let kdir = lab.dir.path().join("k-vrrp");
    fs::create_dir_all(&kdir).unwrap();
    fs::set_permissions(&kdir, fs::Permissions::from_mode(0o755)).unwrap();
    let kn = notify_script(&kdir);
    let k = common::vrrp::Keepalived::start(&lab, "n1", &sync_conf(150, &kdir, &kn));
    let n = notify_script(&dirs[1]);
    lab.write(2, "keepalived.conf", &sync_conf(100, &dirs[1], &n));
    lab.start(2);
    let all_logs = || {
        format!(
            "--- keepalived ---\n{}\nnotify keepalived: {:?}\n--- hbd n2 ---\n{}\nnotify hbd: {:?}",
            k.log(),
            notified(&kdir),
            lab.log(2),
            notified(&dirs[1])
        )
    };
    let both = |n: &str| holders(&lab, DB_VIP) == [n] && holders(&lab, MC_VIP) == [n];
    wait("keepalived (n1) holds both VIPs", || both("n1"), all_logs);
    fs::write(kdir.join("fail"), "").unwrap();
    wait(
        "keepalived's group is FAULT, hbd holds both VIPs",
        || both("n2") && notified(&kdir).iter().any(|l| l.contains("GROUP G FAULT")),
        all_logs,
    );
    fs::remove_file(kdir.join("fail")).unwrap();
    wait("keepalived takes both back", || both("n1"), all_logs);
    wait(
        "hbd's group is BACKUP again",
        || {
            notified(&dirs[1])
                .last()
                .is_some_and(|l| l.contains("GROUP G BACKUP"))
        },
        all_logs,
    );
    // The group lines keepalived wrote have the form hbd writes.
    let group_lines = |d: &Path| -> Vec<String> {
        notified(d)
            .into_iter()
            .filter(|l| l.contains(" GROUP "))
            .collect()
    };
    let kl = group_lines(&kdir);
    assert!(
        kl.contains(&"4 GROUP G FAULT 0".to_string()),
        "{}",
        all_logs()
    );
    let hl = group_lines(&dirs[1]);
    assert!(
        hl.contains(&"4 GROUP G MASTER 0".to_string()),
        "{}",
        all_logs()
    );
}
