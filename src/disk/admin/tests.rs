//! Unit tests of `disk/admin.rs`.

use super::*;
use futures::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};

/// r0 on node a, peer b, both disks UpToDate.
fn status(role: Role, peer_role: Role, connection: ConnState) -> DiskStatus {
    DiskStatus {
        role,
        peer_role,
        connection,
        ..report::tests::status()
    }
}

#[test]
fn role_cstate_dstate_words() {
    let s = status(Role::Primary, Role::Secondary, ConnState::Connected);
    assert_eq!(state_word(&Op::Role, &s), "Primary/Secondary");
    assert_eq!(state_word(&Op::Cstate, &s), "Connected");
    assert_eq!(state_word(&Op::Dstate, &s), "UpToDate/UpToDate");
}

/// A configuration directory with r0 between nodes a and b.
fn conf_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let p = d.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    w(
        "ha.cf",
        "keepalive 200ms\ndeadtime 1\nbcast eth0\nnode a b\n",
        0o644,
    );
    w(
        "authkeys",
        "auth 1\n1 sha256 0123456789abcdef0123456789abcdef\n",
        0o600,
    );
    w(
        "drbd.conf",
        "resource r0 {\n  protocol C;\n  meta-disk internal;\n  device /dev/drbd0;\n  \
         disk /tmp/nonexistent-backing;\n  on a { address 192.0.2.11:7789; }\n  \
         on b { address 192.0.2.12:7789; }\n}\n",
        0o644,
    );
    d
}

type Handler = Box<dyn FnMut(DiskRequest) -> DiskResponse + Send>;

/// A stand-in device on `run_dir`'s socket for r0, answering with
/// `handler`; it records every request.
fn fake_device(run_dir: &Path, mut handler: Handler) -> Arc<Mutex<Vec<DiskRequest>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let path = crate::disk::ctl::socket_path(run_dir, "r0");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let log = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::UnixListener::from_std(listener).unwrap();
            while let Ok((stream, _)) = listener.accept().await {
                let mut conn: crate::ctl::Connection<DiskRequest, DiskResponse> =
                    crate::ctl::frame(stream);
                if let Some(Ok(req)) = conn.next().await {
                    log.lock().unwrap().push(req.clone());
                    let _ = conn.send(handler(req)).await;
                }
            }
        });
    });
    seen
}

/// r0's workflows on node a, devices in `run`.
fn admin(d: &Path, run: &Path, timeout: u64) -> DiskAdmin {
    DiskAdmin::load(
        d,
        "a".into(),
        run.to_path_buf(),
        Duration::from_secs(timeout),
    )
    .unwrap()
}

#[test]
fn down_device_and_refusals() {
    let d = conf_dir();
    let run = d.path().join("run");
    let a = admin(d.path(), &run, 5);
    let r0 = a.chosen("all").unwrap()[0];
    let run_op = |op: Op| a.run(r0, &op);
    let primary = Op::Request(DiskRequest::Primary { force: false });
    // Not up: the queries say Unconfigured, state changes fail.
    assert_eq!(run_op(Op::Role).unwrap(), "Unconfigured\n");
    assert_eq!(run_op(Op::Status).unwrap(), "r0 Unconfigured\n");
    let e = run_op(primary.clone()).unwrap_err();
    assert!(matches!(e, AdminError::NotUp { .. }), "{e:?}");
    assert_eq!(e.to_string(), "r0: not up (hbctl disk up r0)");
    assert_eq!(run_op(Op::Down).unwrap(), "");
    assert_eq!(a.proc_text(), report::proc_lines_with_minors(&[]));
    let e = a.chosen("r9").unwrap_err();
    assert_eq!(e.to_string(), "no resource r9 (resources: r0)");
    // Up: the device's refusals and failures, as drbdsetup says them.
    let s = status(Role::Secondary, Role::Primary, ConnState::Connected);
    let seen = fake_device(
        &run,
        Box::new(move |req| match req {
            DiskRequest::Primary { .. } => DiskResponse::Refused {
                message: "peer is Primary".into(),
                status: Box::new(s.clone()),
            },
            DiskRequest::Verify => DiskResponse::Failed {
                message: "not connected".into(),
            },
            _ => DiskResponse::Done {
                status: Box::new(s.clone()),
                message: None,
            },
        }),
    );
    let e = run_op(primary).unwrap_err();
    assert!(matches!(e, AdminError::Refused { .. }), "{e:?}");
    assert_eq!(e.to_string(), "r0: State change failed: peer is Primary");
    let e = run_op(Op::Request(DiskRequest::Verify)).unwrap_err();
    assert!(matches!(e, AdminError::Failed { .. }), "{e:?}");
    assert_eq!(e.to_string(), "r0: not connected");
    assert_eq!(
        run_op(Op::Request(DiskRequest::Connect {
            discard_my_data: true
        }))
        .unwrap(),
        ""
    );
    let json = a.status_json(&a.chosen("all").unwrap());
    assert_eq!(json.len(), 1);
    assert_eq!(json[0].as_ref().unwrap()["connection"], "Connected");
    assert!(a
        .proc_text()
        .contains(" 0: cs:Connected ro:Secondary/Primary"));
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[
            DiskRequest::Primary { force: false },
            DiskRequest::Verify,
            DiskRequest::Connect {
                discard_my_data: true
            },
            DiskRequest::Status,
            DiskRequest::Status,
        ]
    );
}

#[test]
fn kernel_driver_never_starts_the_device() {
    let d = conf_dir();
    std::fs::write(
        d.path().join("cluster.toml"),
        "[disk]\ndriver = \"kernel\"\n",
    )
    .unwrap();
    let run = d.path().join("run");
    let a = admin(d.path(), &run, 5);
    let r0 = a.chosen("r0").unwrap()[0];
    for op in [Op::Up, Op::Adjust] {
        assert!(matches!(
            a.check_driver(&op),
            Err(AdminError::KernelDriver { .. })
        ));
        assert!(matches!(
            a.run(r0, &op),
            Err(AdminError::KernelDriver { .. })
        ));
    }
    assert!(a.check_driver(&Op::Status).is_ok());
    assert!(!crate::disk::ctl::log_path(&run, "r0").exists());
}

/// `resolve` with this node as the survivor: the victim's steps go
/// through Remote, then this node connects and the resync is watched.
#[test]
fn resolve_drives_both_sides() {
    let d = conf_dir();
    let run = d.path().join("run");
    let mut local = status(Role::Primary, Role::Unknown, ConnState::StandAlone);
    local.peer_disk = DiskState::DUnknown;
    local.split_brain = Some(SplitBrainStatus {
        detected_unix_ms: 0,
        peer: "b".into(),
        my_changes_bytes: 8192,
        peer_changes_bytes: 4096,
        my_last_write_unix_ms: None,
        peer_last_write_unix_ms: None,
    });
    let mut peer = status(Role::Primary, Role::Unknown, ConnState::StandAlone);
    peer.node = "b".into();
    let mut polls = 0;
    let seen = fake_device(
        &run,
        Box::new(move |req| {
            let s = match req {
                DiskRequest::Remote { forward } => {
                    match *forward {
                        DiskRequest::Secondary => peer.role = Role::Secondary,
                        DiskRequest::Connect { .. } => peer.connection = ConnState::WFConnection,
                        _ => {}
                    }
                    peer.clone()
                }
                DiskRequest::Connect { .. } => {
                    local.connection = ConnState::WFConnection;
                    local.clone()
                }
                _ => {
                    if local.connection != ConnState::StandAlone {
                        polls += 1;
                        local.split_brain = None;
                        local.peer_role = Role::Secondary;
                        if polls < 3 {
                            local.connection = ConnState::SyncSource;
                            local.peer_disk = DiskState::Inconsistent;
                            local.sync = Some(SyncStatus {
                                source: true,
                                full: false,
                                paused: false,
                                total_bytes: 12288,
                                done_bytes: 4096,
                                percent: 33.3,
                                rate_bytes_per_sec: 4096,
                                limit_bytes_per_sec: 0,
                                eta_secs: Some(2),
                            });
                        } else {
                            local.connection = ConnState::Connected;
                            local.peer_disk = DiskState::UpToDate;
                            local.sync = None;
                        }
                    }
                    local.clone()
                }
            };
            DiskResponse::Done {
                status: Box::new(s),
                message: None,
            }
        }),
    );
    let a = admin(d.path(), &run, 120);
    let mut out = Vec::new();
    a.resolve("r0", "a", Duration::from_secs(30), &mut out)
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(
            "r0: keeping a's data; b's changes since the split (4.0KiB) are discarded\n\
             r0: b: secondary\n\
             r0: b: disconnect\n\
             r0: b: connect --discard-my-data\n\
             r0: a: connect\n\
             r0: resync started: SyncSource 12.0KiB (bitmap resync)\n\
             r0: SyncSource 33.3% (4.0KiB of 12.0KiB), eta 0:00:02\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "r0: resolved: Connected Primary/Secondary UpToDate/UpToDate; \
             resynced 12.0KiB (12288 bytes) in "
        ),
        "{text}"
    );
    assert!(
        text.ends_with("s, bitmap resync, not a full sync\n"),
        "{text}"
    );
    let asked = seen.lock().unwrap().clone();
    let remote = |r: DiskRequest| DiskRequest::Remote {
        forward: Box::new(r),
    };
    assert_eq!(
        &asked[..6],
        &[
            DiskRequest::Status,
            remote(DiskRequest::Status),
            remote(DiskRequest::Secondary),
            remote(DiskRequest::Disconnect),
            remote(DiskRequest::Connect {
                discard_my_data: true
            }),
            DiskRequest::Status,
        ]
    );
    assert_eq!(
        asked[6],
        DiskRequest::Connect {
            discard_my_data: false
        }
    );
    assert!(a.split_brains().is_empty());
    // An unknown survivor is refused before anything is asked.
    let e = a
        .resolve("r0", "c", Duration::from_secs(30), &mut Vec::new())
        .unwrap_err();
    assert!(matches!(e, AdminError::NotANode { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "r0: --survivor c: the nodes of r0 are a and b"
    );
    let e = a
        .resolve("r9", "a", Duration::from_secs(30), &mut Vec::new())
        .unwrap_err();
    assert!(matches!(e, AdminError::NoResource { .. }), "{e:?}");
    assert_eq!(seen.lock().unwrap().len(), asked.len() + 1);
}
