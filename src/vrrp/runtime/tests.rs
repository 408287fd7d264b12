//! Unit tests of `vrrp/runtime/`.

use super::nft::nft_script;
use super::*;
use crate::config::Location;

fn argv(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

fn notify(argv: &[&str]) -> Option<conf::Notify> {
    Some(conf::Notify {
        command: conf::Command {
            text: argv.join(" "),
            argv: argv.iter().map(|s| s.to_string()).collect(),
        },
        user: None,
        at: Location {
            file: "k.conf".into(),
            line: 1,
        },
    })
}

#[tokio::test]
async fn notify_scripts_run_in_order_with_keepalived_arguments() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let log = |tag: &str| format!("sleep 0.05; echo {tag} $# \"$@\" >> {}", out.display());
    let (n_all, n_master, n_backup, n_stop) =
        (log("notify"), log("master"), log("backup"), log("stop"));
    let n = conf::Notifies {
        notify: notify(&["/bin/sh", "-c", &n_all, "sh"]),
        master: notify(&["/bin/sh", "-c", &n_master, "sh"]),
        backup: notify(&["/bin/sh", "-c", &n_backup, "sh"]),
        fault: None,
        stop: notify(&["/bin/sh", "-c", &n_stop, "sh"]),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(notifier(Kind::Instance, "DB".into(), n, None, rx));
    for (s, p) in [
        (State::Backup, 100),
        (State::Master, 150),
        (State::Fault, 150),
        (State::Backup, 100),
        (State::Stop, 100),
    ] {
        tx.send((s, p)).unwrap();
    }
    drop(tx);
    task.await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "backup 0\n\
         notify 4 INSTANCE DB BACKUP 100\n\
         master 0\n\
         notify 4 INSTANCE DB MASTER 150\n\
         notify 4 INSTANCE DB FAULT 150\n\
         backup 0\n\
         notify 4 INSTANCE DB BACKUP 100\n\
         stop 0\n\
         notify 4 INSTANCE DB STOP 100\n"
    );
}

#[tokio::test]
async fn a_missing_interface_fails_the_start() {
    let text = "vrrp_instance VI {\n    interface hbdnosuch0\n    virtual_router_id 5\n    virtual_ipaddress {\n        192.0.2.50\n    }\n}\n";
    let (conf, errors, _) = conf::parse(std::path::Path::new("k.conf"), text);
    assert!(errors.is_empty(), "{errors:?}");
    let e = VrrpRuntime::start(conf, VrrpOptions::default())
        .await
        .err()
        .expect("no such interface");
    assert!(
        matches!(&e, StartError::NoInterface { name } if name == "hbdnosuch0"),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "interface hbdnosuch0 not found");
}

#[test]
fn nft_script_drops_the_held_vips_or_removes_the_table() {
    let none = nft_script(&BTreeSet::new());
    assert_eq!(none, "table inet hbd_vrrp {}\ndelete table inet hbd_vrrp\n");
    let two: BTreeSet<Ipv4Addr> = [Ipv4Addr::new(192, 0, 2, 51), Ipv4Addr::new(192, 0, 2, 50)]
        .into_iter()
        .collect();
    let s = nft_script(&two);
    assert!(s.starts_with(&none), "{s}");
    assert!(
        s.contains("type filter hook input priority 0; policy accept;"),
        "{s}"
    );
    assert!(
        s.contains("ip daddr { 192.0.2.50, 192.0.2.51 } drop"),
        "{s}"
    );
}

#[test]
fn drop_reasons() {
    use packet::{DecodeError, Mismatch};
    assert_eq!(Mismatch::Password.reason(), "auth_password");
    assert_eq!(Mismatch::AuthType.reason(), "auth_type");
    assert_eq!(Mismatch::Interval { got: 1, want: 2 }.reason(), "interval");
    assert_eq!(Mismatch::Address(Ipv4Addr::LOCALHOST).reason(), "addresses");
    assert_eq!(DecodeError::Checksum.reason(), "checksum");
    assert_eq!(DecodeError::Truncated(3).reason(), "malformed");
    // Older status documents have no counters.
    let s: VrrpStatus = serde_json::from_str(
        r#"{"name":"DB","vrid":51,"interface":"eth0","state":"MASTER","priority":150,"effective_priority":150,"master":null,"vips":[]}"#,
    )
    .unwrap();
    assert!(s.drops.is_empty());
}

#[test]
fn handle_can_be_shared() {
    fn shared<T: Send + Sync>() {}
    shared::<VrrpHandle>();
}

#[tokio::test]
async fn commands_exit_codes_and_timeouts() {
    assert_eq!(
        run_command(&argv(&["true"]), None, Duration::from_secs(5))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        run_command(&argv(&["sh", "-c", "exit 3"]), None, Duration::from_secs(5))
            .await
            .unwrap(),
        3
    );
    let t = std::time::Instant::now();
    let r = run_command(
        &argv(&["sh", "-c", "trap '' TERM; sleep 30"]),
        None,
        Duration::from_millis(100),
    )
    .await;
    let e = r.unwrap_err();
    assert!(matches!(e, ScriptError::TimedOut { .. }), "{e:?}");
    assert_eq!(e.to_string(), "sh: timed out after 100ms: killed");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        run_command(&argv(&["/nonexistent/x"]), None, Duration::from_secs(1))
            .await
            .is_err()
    );
}

#[test]
fn seed_instances_map_to_the_machine() {
    let text = r#"
vrrp_script chk {
    script "pidof x"
    interval 1
    rise 2
    fall 2
}
vrrp_instance DB {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    nopreempt
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress { 192.0.2.50 }
    track_script { chk }
}
"#;
    let (conf, errors, _) = conf::parse(std::path::Path::new("k.conf"), text);
    assert!(errors.is_empty(), "{errors:?}");
    let i = &conf.instances[0];
    let c = instance_config(
        &conf,
        i,
        Ipv4Addr::new(192, 0, 2, 11),
        &VrrpOptions::default(),
    );
    assert_eq!(c.version, Version::V2);
    assert_eq!(c.priority, 150);
    assert!(c.nopreempt);
    assert_eq!(c.scripts.len(), 1);
    assert_eq!((c.scripts[0].rise, c.scripts[0].fall), (2, 2));
    assert!(conf::unsupported(&conf).is_empty());
}

#[test]
fn error_messages() {
    let e = NoSuchInstance {
        name: "X".into(),
        instances: vec!["DB".into(), "WEB".into()],
    };
    assert_eq!(e.to_string(), "no vrrp_instance `X` (instances: DB, WEB)");
    assert_eq!(
        StartError::NoGateInstance {
            instance: "DB".into()
        }
        .to_string(),
        "failback gate for `DB`: no such vrrp_instance"
    );
    assert_eq!(
        NftError::Failed {
            stderr: "syntax error".into()
        }
        .to_string(),
        "nft: syntax error"
    );
    assert_eq!(
        ScriptError::Killed {
            program: "x".into(),
            signal: 9
        }
        .to_string(),
        "x: killed by signal 9"
    );
}
