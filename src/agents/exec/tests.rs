//! Unit tests of `agents/exec.rs`.

use super::*;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn hb(path: PathBuf, args: &[&str]) -> AgentKind {
    AgentKind::Heartbeat {
        path,
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

const T: Duration = Duration::from_secs(30);

#[test]
fn heartbeat_status_patterns() {
    use super::Running::{Running as R, Stopped as S};
    for (text, want) in [
        ("running", R),
        ("httpd (pid 12) is Running...", R),
        ("OK", R),
        ("ok", S),
        ("stopped", S),
        ("Stopped", S),
        ("not running", S),
        ("NOT currently running", S),
        ("", S),
        ("whatever", S),
    ] {
        assert_eq!(heartbeat_status(text), want, "{text:?}");
    }
}

#[test]
fn instance_names_are_safe_and_distinct() {
    let p = |v: &str| vec![("state".to_string(), v.to_string())];
    assert_eq!(instance_name("Dummy", &p("/tmp/x")), "Dummy_state_tmp_x");
    let a = instance_name("Dummy", &p(&"a".repeat(100)));
    let b = instance_name("Dummy", &p(&format!("{}b", "a".repeat(99))));
    assert!(a.len() <= 64 && a != b, "{a} {b}");
}

#[test]
fn exit_codes() {
    let out = |code| Finished {
        code,
        ..Finished::default()
    };
    assert_eq!(lsb_result(Action::Status, &out(0)), Ok(Running::Running));
    assert_eq!(lsb_result(Action::Status, &out(3)), Ok(Running::Stopped));
    assert_eq!(lsb_result(Action::Status, &out(1)), Ok(Running::Stopped));
    assert!(lsb_result(Action::Status, &out(4)).is_err());
    assert_eq!(lsb_result(Action::Stop, &out(0)), Ok(Running::Stopped));
    let e = lsb_result(Action::Start, &out(5)).unwrap_err().to_string();
    assert!(e.contains("code 5") && e.contains("not installed"), "{e}");
    assert_eq!(ocf_result(Action::Status, &out(7)), Ok(Running::Stopped));
    assert_eq!(ocf_result(Action::Status, &out(8)), Ok(Running::Running));
    assert!(ocf_result(Action::Status, &out(1)).is_err());
    let e = ocf_result(Action::Start, &out(6)).unwrap_err().to_string();
    assert!(e.contains("not configured"), "{e}");
}

#[tokio::test]
async fn heartbeat_args_and_failure_message() {
    let t = tempfile::tempdir().unwrap();
    let rec = t.path().join("argv");
    let p = script(
        t.path(),
        "rec",
        &format!(
            "printf '%s\\n' \"$@\" > {}\nenv >> {}\n[ \"$2\" = start ] && exit 0\nfor i in $(seq 1 20); do echo line$i; done\necho oops >&2\nexit 2",
            rec.display(),
            rec.display()
        ),
    );
    let k = hb(p, &["a b"]);
    assert_eq!(run(&k, Action::Start, T).await, Ok(Running::Running));
    let got = std::fs::read_to_string(&rec).unwrap();
    assert!(got.starts_with("a b\nstart\n"), "{got}");
    assert!(got.contains("PATH=") && !got.contains("HOME="), "{got}");
    match run(&k, Action::Stop, T).await {
        Err(AgentError::Exit {
            code: 2, message, ..
        }) => {
            assert!(
                message.contains("line20") && message.contains("oops"),
                "{message}"
            );
            assert!(!message.contains("line10;"), "{message}");
        }
        r => panic!("{r:?}"),
    }
}

#[tokio::test]
async fn missing_script_and_timeout() {
    let t = tempfile::tempdir().unwrap();
    let e = run(&hb(t.path().join("nope"), &[]), Action::Start, T)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AgentError::Failed(m) if m.contains("nope")),
        "{e}"
    );
    let pidfile = t.path().join("pid");
    let p = script(
        t.path(),
        "hang",
        &format!("sleep 1000 & echo $! > {}\nwait", pidfile.display()),
    );
    let e = run(&hb(p, &[]), Action::Start, Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(matches!(e, AgentError::Timeout { .. }), "{e}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The grandchild was in the group: gone (or a zombie of init's).
    let gone = (0..100).any(|_| {
        let alive =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"));
        if alive {
            std::thread::sleep(Duration::from_millis(50));
        }
        !alive
    });
    assert!(gone, "sleep {pid} survived the timeout");
}

#[tokio::test]
async fn background_child_does_not_block() {
    let t = tempfile::tempdir().unwrap();
    let pidfile = t.path().join("pid");
    let p = script(
        t.path(),
        "bg",
        &format!(
            "sleep 1000 & echo $! > {}\necho started\nexit 0",
            pidfile.display()
        ),
    );
    let r = run(&hb(p, &[]), Action::Start, T).await;
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    assert_eq!(r, Ok(Running::Running));
}

#[tokio::test]
async fn lsb_and_ocf_calls() {
    let t = tempfile::tempdir().unwrap();
    let p = script(
        t.path(),
        "svc",
        "case $1 in status) exit 3;; start) exit 0;; *) exit 1;; esac",
    );
    let k = AgentKind::Lsb { path: p };
    assert_eq!(run(&k, Action::Status, T).await, Ok(Running::Stopped));
    assert_eq!(run(&k, Action::Start, T).await, Ok(Running::Running));
    assert!(matches!(
        run(&k, Action::Stop, T).await,
        Err(AgentError::Exit { code: 1, .. })
    ));
    let p = script(
        t.path(),
        "ra",
        "[ \"$1\" = monitor ] && [ \"$OCF_RESKEY_x\" = 'y z' ] && [ \"$OCF_ROOT\" = /ocf ] && exit 7\nexit 1",
    );
    let k = AgentKind::Ocf {
        path: p,
        ocf_root: "/ocf".into(),
        provider: "test".into(),
        kind: "ra".into(),
        params: vec![("x".into(), "y z".into())],
    };
    assert_eq!(run(&k, Action::Status, T).await, Ok(Running::Stopped));
}

#[tokio::test]
async fn validate_all_answers() {
    let t = tempfile::tempdir().unwrap();
    let code = t.path().join("code");
    let p = script(
        t.path(),
        "ra",
        &format!(
            "[ \"$1\" = validate-all ] && [ \"$OCF_RESKEY_CRM_meta_timeout\" = 20000 ] || exit 1\necho said >&2\nexit $(cat {})",
            code.display()
        ),
    );
    let k = AgentKind::Ocf {
        path: p,
        ocf_root: "/ocf".into(),
        provider: "test".into(),
        kind: "ra".into(),
        params: Vec::new(),
    };
    let v = |c: i32| {
        std::fs::write(&code, c.to_string()).unwrap();
        validate_all(&k, Duration::from_secs(20))
    };
    assert_eq!(v(0).await, Validation::Valid);
    assert_eq!(v(3).await, Validation::Valid);
    match v(6).await {
        Validation::Invalid { code: 6, message } => {
            assert!(
                message.contains("not configured") && message.contains("said"),
                "{message}"
            )
        }
        r => panic!("{r:?}"),
    }
    assert!(matches!(v(1).await, Validation::Unknown { .. }));
    // A heartbeat-style script that never names the action is not asked
    // (this one would have failed); one that names it is.
    let plain = script(t.path(), "plain", "exit 6");
    assert_eq!(
        validate_all(&hb(plain, &[]), Duration::from_secs(20)).await,
        Validation::NotAsked
    );
    let q = script(
        t.path(),
        "hbv",
        "# validate-all\n[ \"$2\" = validate-all ] && exit 5; exit 0",
    );
    assert!(matches!(
        validate_all(&hb(q, &["arg"]), Duration::from_secs(20)).await,
        Validation::Invalid { code: 5, .. }
    ));
}
