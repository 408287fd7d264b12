//! Unit tests of `process/`: real programs, run as hbd runs them.

use super::lookup::lookup_within;
use super::output::LineSplitter;
use super::*;
use std::os::fd::AsRawFd;

const T: Duration = Duration::from_secs(30);
/// A call still running after this is hung (a generous bound, not a timing).
const HANG: Duration = Duration::from_secs(120);

fn read_pid(path: &std::path::Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn sh(command: &str) -> Command {
    Command::shell(command).timeout(T)
}

/// A lookup that hangs (a stalled LDAP or sssd) neither blocks the
/// thread the caller runs on nor keeps the caller waiting past its limit.
#[tokio::test]
async fn a_stalled_lookup_never_blocks_the_loop() {
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            t.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let (release, stalled) = std::sync::mpsc::channel::<()>();
    let r = lookup_within(
        "looking up user `x`",
        Duration::from_millis(300),
        move || {
            let _ = stalled.recv();
            7
        },
    )
    .await;
    let _ = release.send(());
    ticker.abort();
    let e = r.unwrap_err();
    assert!(matches!(e, LookupError::TimedOut { .. }), "{e}");
    assert!(e.to_string().contains("no answer within 300ms"), "{e}");
    assert!(ticks.load(std::sync::atomic::Ordering::SeqCst) > 1);
    assert_eq!(lookup("root", || 1).await, Ok(1));
    assert_eq!(
        user_by_name("no-such-user-hbd").await.unwrap_err(),
        LookupError::NoUser("no-such-user-hbd".into())
    );
}

#[test]
fn line_splitter_bounds_lines() {
    let mut s = LineSplitter::default();
    assert_eq!(s.push(b"a\nb"), vec!["a"]);
    assert_eq!(s.push(b"c\n\n"), vec!["bc", ""]);
    let long = vec![b'x'; MAX_LINE * 3];
    assert!(s.push(&long).is_empty());
    let l = s.push(b"yy\nz");
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].len(), MAX_LINE + '…'.len_utf8());
    assert_eq!(s.finish().as_deref(), Some("z"));
    assert_eq!(s.finish(), None);
}

#[tokio::test]
async fn exit_codes_signals_and_output() {
    let f = run(&sh("echo out; echo err >&2; exit 3")).await.unwrap();
    assert_eq!((f.code, f.signal), (3, None));
    assert!(!f.success());
    assert_eq!(f.stdout, "out\n");
    assert!(f.tail.contains(&(true, "err".to_string())), "{:?}", f.tail);
    let f = run(&sh("kill -TERM $$")).await.unwrap();
    assert_eq!((f.code, f.signal), (143, Some(15)));
    assert_eq!(f.message(), "killed by signal 15");
    assert!(run(&sh("true")).await.unwrap().success());
}

/// One pipe for both streams: the last line is the last one written,
/// whichever stream it went to.
#[tokio::test]
async fn merged_output_keeps_the_order_written() {
    for (cmd, last) in [
        ("echo a >&2; echo b", "b"),
        ("echo a; echo b >&2", "b"),
        ("echo a; echo b >&2; echo c; echo; echo '  '", "c"),
    ] {
        let f = run(&sh(cmd).output(Output::Merged)).await.unwrap();
        assert_eq!(f.last_line(), Some(last), "{cmd}");
    }
}

#[tokio::test]
async fn input_environment_and_discard() {
    let f = run(&Command::new("cat").input("a=1\nb=2\n").timeout(T))
        .await
        .unwrap();
    assert_eq!(f.stdout, "a=1\nb=2\n");
    let f = run(&sh("echo \"$PATH|$X|${HOME:-none}\"").envs(&[("X".into(), "y".into())]))
        .await
        .unwrap();
    assert_eq!(f.stdout, format!("{PATH}|y|none\n"));
    let f = run(&sh("echo lost; exit 4").output(Output::Discard))
        .await
        .unwrap();
    assert_eq!((f.code, f.stdout.as_str(), f.tail.len()), (4, "", 0));
}

#[tokio::test]
async fn not_executable_and_missing_programs() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plain");
    std::fs::write(&p, "#!/bin/sh\n").unwrap();
    let e = run(&Command::new(&p).require_executable())
        .await
        .unwrap_err();
    assert!(matches!(e, RunError::NotExecutable(_)), "{e}");
    assert_eq!(
        e.to_string(),
        format!("{}: not an executable file", p.display())
    );
    let e = run(&Command::new("/nonexistent/x")).await.unwrap_err();
    assert!(matches!(e, RunError::Spawn { .. }), "{e}");
    assert!(e.to_string().starts_with("/nonexistent/x: "), "{e}");
}

/// At the timeout the whole process group goes, the shell's background
/// children too; with a grace, TERM comes first and a program that obeys
/// it ends there.
#[tokio::test]
async fn timeouts_kill_the_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("child.pid");
    let c = sh(&format!("sleep 1000 & echo $! > {}; wait", pid.display()))
        .timeout(Duration::from_secs(1));
    let e = run(&c).await.unwrap_err();
    assert_eq!(e.to_string(), "timed out after 1s: killed");
    let child = read_pid(&pid);
    assert!(gone(child).await, "the shell's child {child} still runs");

    let flag = dir.path().join("termed");
    let c = sh(&format!(
        "trap 'touch {}; exit 0' TERM; while :; do sleep 0.05; done",
        flag.display()
    ))
    .timeout(Duration::from_millis(300))
    .term_first(Duration::from_secs(5));
    assert!(run(&c).await.is_err());
    assert!(flag.exists(), "TERM did not come first");

    // A program that ignores TERM is KILLed after the grace.
    let shell = dir.path().join("sh.pid");
    let c = sh(&format!(
        "trap '' TERM; echo $$ > {}; sleep 1000",
        shell.display()
    ))
    .timeout(Duration::from_secs(1))
    .term_first(Duration::from_millis(200));
    assert!(run(&c).await.is_err());
    let p = read_pid(&shell);
    assert!(gone(p).await, "the shell {p} that ignores TERM still runs");
}

/// A call dropped before the program exited (its caller's own timeout)
/// KILLs the group.
#[tokio::test]
async fn a_dropped_call_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("sh.pid");
    let c = sh(&format!("echo $$ > {}; exec sleep 1000", pid.display()));
    let r = tokio::time::timeout(Duration::from_millis(500), run(&c)).await;
    assert!(r.is_err());
    let p = read_pid(&pid);
    assert!(gone(p).await, "{p} still runs");
}

/// A daemon started by the program keeps its output open: the call ends at
/// the program's exit all the same (were it waiting for EOF, it would wait
/// for the daemon's 1000 s: the hang guard below fails first).
#[tokio::test]
async fn a_started_daemon_does_not_hold_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let pid = dir.path().join("group.pid");
    let c = sh(&format!(
        "(sleep 1000; echo late) & echo $$ > {}; echo started",
        pid.display()
    ));
    for mode in [Output::Log, Output::Merged] {
        let f = tokio::time::timeout(HANG, run(&c.clone().output(mode))).await;
        // The daemon is in the shell's process group: gone with it.
        let _ = nix::sys::signal::killpg(Pid::from_raw(read_pid(&pid)), Signal::SIGKILL);
        let f = f.expect("the call waited for the daemon").unwrap();
        assert_eq!(f.last_line(), Some("started"));
    }
}

/// Only 0, 1 and 2 reach the program, even a descriptor hbd inherited
/// without close-on-exec.
#[tokio::test]
async fn no_descriptor_of_hbds_reaches_the_program() {
    let f = std::fs::File::open("/dev/null").unwrap();
    let fd = f.as_raw_fd();
    nix::fcntl::fcntl(
        &f,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .unwrap();
    let out = run(&sh(&format!(
        "if [ -e /proc/$$/fd/{fd} ]; then echo open; else echo closed; fi"
    )))
    .await
    .unwrap();
    assert_eq!(out.stdout, "closed\n");
    drop(f);
}

async fn gone(pid: i32) -> bool {
    for _ in 0..200 {
        if nix::sys::signal::kill(Pid::from_raw(pid), None).is_err() {
            return true;
        }
        // A zombie of an orphan is reaped by init; it no longer runs.
        if std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        }) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
