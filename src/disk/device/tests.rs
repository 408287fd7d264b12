//! Unit tests of `disk/device/`.

use super::*;
use crate::disk::conf;

/// An `Error` frame with this text makes `on_frame` panic (test builds
/// only): the stand-in for any bug in a frame handler.
pub(super) const INJECT_PANIC: &str = "hbd-test: panic in on_frame";

/// A device on a fresh 8 MiB backing file (never `run`: no sockets).
fn device(dir: &Path, rt: &tokio::runtime::Runtime) -> Arc<Device> {
    let disk = dir.join("backing.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    meta::create(&disk, true).unwrap();
    let text = format!(
        "resource r0 {{\n  protocol C;\n  on n1 {{ device {d}; disk {b}; address 192.0.2.11:7788; meta-disk internal; }}\n  on n2 {{ device {d}; disk {b}; address 192.0.2.12:7788; meta-disk internal; }}\n}}\n",
        d = dir.join("drbd0").display(),
        b = disk.display()
    );
    let (c, errors, _) = conf::parse(Path::new("drbd.conf"), &text);
    assert!(errors.is_empty(), "{errors:?}");
    let res = c.resource("r0").unwrap().clone();
    let cfg = DeviceConfig {
        name: "r0".into(),
        node: "n1".into(),
        peer: "n2".into(),
        config_dir: dir.to_path_buf(),
        run_dir: dir.to_path_buf(),
        host: res.host("n1").unwrap().clone(),
        peer_host: res.peer("n1").unwrap().clone(),
        res,
        key: AuthKey {
            id: 0,
            method: AuthMethod::Sha256,
            secret: b"test".to_vec(),
        },
        notify: None,
        first: true,
        dopd: false,
        drbd_conf: dir.join("drbd.conf"),
    };
    Device::open(cfg, rt.handle().clone()).unwrap()
}

fn framed<T: tokio::io::AsyncRead + tokio::io::AsyncWrite>(io: T) -> Framed<T, packet::LinkCodec> {
    Framed::new(io, packet::LinkCodec::plain())
}

/// Issue 12, finding 8: a panic inside the link task still tears the
/// link down: a writer waiting for the peer's ack is released (with
/// `false`: its range gets marked) and the machine hears TransportLost.
#[test]
fn a_panic_in_the_link_task_releases_waiting_writers() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dev = device(dir.path(), &rt);
    {
        let mut c = dev.core();
        dev.input(&mut c, Input::Connect).unwrap();
    }
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    dev.establish(framed(ours), dev.data_size, None);
    let peer = dev.core().link.clone().expect("established");
    // The fake peer: keeps the link alive with pings and reads
    // everything, until told to panic the device's link task.
    let (sink, mut stream) = framed(theirs).split();
    let sink = Arc::new(tokio::sync::Mutex::new(sink));
    let pinger = {
        let sink = sink.clone();
        rt.spawn(async move {
            loop {
                if packet::send(&mut *sink.lock().await, &Frame::Ping)
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let reader = rt.spawn(async move { while stream.next().await.is_some() {} });
    // A writer waiting on the peer's ack (as a FUSE thread in write_chunk).
    let wait = peer
        .submit(
            |seq| Frame::Write {
                seq,
                offset: 0,
                data: vec![7; 4096],
            },
            Some((0, 4096)),
        )
        .expect("the link is up");
    rt.block_on(async {
        packet::send(
            &mut *sink.lock().await,
            &Frame::Error {
                msg: INJECT_PANIC.into(),
            },
        )
        .await
    })
    .unwrap();
    assert_eq!(
        wait.recv_timeout(Duration::from_secs(30)),
        Ok(false),
        "the waiting writer was not released"
    );
    let start = Instant::now();
    loop {
        {
            let c = dev.core();
            if c.link.is_none() && c.sm.conn() == ConnState::WFConnection {
                // The unacked write's range is out of sync now.
                assert!(c.bits() >= 1);
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no TransportLost"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!peer.live());
    pinger.abort();
    reader.abort();
    dev.shutdown.cancel();
    drop(rt);
}

/// A reader that was held up longer than `LINK_TIMEOUT` (a busy machine,
/// the core lock held by a writer) reads what the peer sent meanwhile
/// before it declares the peer silent. Found with FUSE_ASYNC_DIO under
/// load: an unbiased `select!` picked the elapsed silence timer half the
/// time although the peer's pings had been waiting all along, dropped a
/// healthy link ("the peer sent nothing for 3s") and the failover test
/// saw a split brain. Four stalls: an unbiased reader survives all four
/// one time in sixteen.
#[test]
fn a_stalled_reader_reads_what_arrived_before_declaring_the_peer_silent() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dev = device(dir.path(), &rt);
    {
        let mut c = dev.core();
        dev.input(&mut c, Input::Connect).unwrap();
    }
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    dev.establish(framed(ours), dev.data_size, None);
    let peer = dev.core().link.clone().expect("established");
    // The fake peer: pings every 100 ms and reads everything.
    let (sink, mut stream) = framed(theirs).split();
    let sink = Arc::new(tokio::sync::Mutex::new(sink));
    let pinger = {
        let sink = sink.clone();
        rt.spawn(async move {
            loop {
                if packet::send(&mut *sink.lock().await, &Frame::Ping)
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let reader = rt.spawn(async move { while stream.next().await.is_some() {} });
    for stall in 1..=4 {
        {
            // The core held: the reader blocks in the handler of the
            // next frame that needs it, while the pings pile up.
            let _held = dev.core();
            rt.block_on(async {
                packet::send(
                    &mut *sink.lock().await,
                    &Frame::OutOfSync {
                        offset: 0,
                        len: 4096,
                    },
                )
                .await
            })
            .unwrap();
            std::thread::sleep(LINK_TIMEOUT + Duration::from_millis(1500));
        }
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            peer.live() && dev.core().link.is_some(),
            "stall {stall}: the link was dropped although the peer kept pinging"
        );
    }
    pinger.abort();
    reader.abort();
    dev.shutdown.cancel();
    drop(rt);
}

/// Writes `text` to `dir/name` with `mode`.
fn file(dir: &Path, name: &str, mode: u32, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

const DRBD_CONF: &str = "resource r0 {\n  protocol C;\n  on n1 { device /dev/drbd0; disk /var/tmp/r0.img; address 192.0.2.11:7788; meta-disk internal; }\n  on n2 { device /dev/drbd0; disk /var/tmp/r0.img; address 192.0.2.12:7788; meta-disk internal; }\n}\n";

/// The device reads only its own files: errors in the files only hbd
/// reads (haresources, keepalived.conf, ha.cf's other lines, a
/// `[[check]]`) neither stop it nor its reload; before, `hbd-disk` loaded
/// the whole configuration and refused to start.
#[test]
fn the_device_loads_only_its_own_files() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    file(dir, "drbd.conf", 0o600, DRBD_CONF);
    file(
        dir,
        "authkeys",
        0o600,
        "auth 1\n1 sha256 a-long-enough-secret\n",
    );
    file(
        dir,
        "ha.cf",
        0o644,
        "node n1\nnode n2\nbcast eth0\nfrobnicate yes\nrespawn hacluster /usr/lib/heartbeat/dopd\n",
    );
    file(
        dir,
        "haresources",
        0o644,
        "n1 NoSuchAgent::x drbddisk::r0\n",
    );
    file(dir, "keepalived.conf", 0o644, "vrrp_instance {\n");
    file(
        dir,
        "cluster.toml",
        0o600,
        "[[check]]\nname = \"broken\"\n\n[notify]\ncommand = \"true\"\ntimeout = \"3s\"\n",
    );
    assert!(crate::config::load(dir, "n1").is_err());
    let cfg = DeviceConfig::load(dir, "n1", dir, "r0").unwrap();
    assert_eq!((cfg.peer.as_str(), cfg.dopd, cfg.first), ("n2", true, true));
    assert_eq!(cfg.key.secret, b"a-long-enough-secret");
    assert_eq!(
        cfg.notify.as_ref().map(|n| n.timeout),
        Some(Duration::from_secs(3))
    );
    assert_eq!(cfg.drbd_conf, dir.join("drbd.conf"));
}

/// What the device does read is still checked as `hbctl check` checks it,
/// with `file:line` and the key.
#[test]
fn the_device_refuses_its_own_files_errors() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    // No drbd.conf.
    let e = DeviceConfig::load(dir, "n1", dir, "r0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("drbd.conf: missing"), "{e}");
    // A drbd.conf error.
    file(
        dir,
        "drbd.conf",
        0o600,
        &DRBD_CONF.replace("protocol C;", "protocol Q;"),
    );
    let e = DeviceConfig::load(dir, "n1", dir, "r0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("drbd.conf:2: "), "{e}");
    // No shared-secret and no authkeys: the link has no key.
    file(dir, "drbd.conf", 0o600, DRBD_CONF);
    let e = DeviceConfig::load(dir, "n1", dir, "r0")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("needs a key") && e.contains("shared-secret"),
        "{e}"
    );
    // An authkeys others can read.
    file(
        dir,
        "authkeys",
        0o644,
        "auth 1\n1 sha256 a-long-enough-secret\n",
    );
    let e = DeviceConfig::load(dir, "n1", dir, "r0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("authkeys") && e.contains("chmod 600"), "{e}");
    // A shared-secret needs no authkeys.
    std::fs::remove_file(dir.join("authkeys")).unwrap();
    file(
        dir,
        "drbd.conf",
        0o600,
        &DRBD_CONF.replace(
            "protocol C;",
            "protocol C;\n  net { shared-secret \"s3cret-s3cret\"; }",
        ),
    );
    let cfg = DeviceConfig::load(dir, "n1", dir, "r0").unwrap();
    assert_eq!(cfg.key.secret, b"s3cret-s3cret");
    assert!(!cfg.dopd);
}
