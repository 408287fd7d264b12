//! The replication link against a man in the middle (issue 14, findings 2
//! and 5): a relay in n2's network namespace carries every byte between
//! the two `hbd-disk` processes (n1's drbd.conf names the relay as n2's
//! address). It records what crosses, replaces the first connection's
//! `Join` with an `Admin primary --force` of its own, and later injects a
//! `Write` into the established link. Nothing it sends gets through, and
//! the data written to the disk never crosses in the clear.
//! Needs root, /dev/fuse and loop devices.

mod common;

use common::disk::*;
use hbd::disk::ctl::DiskRequest;
use hbd::disk::packet::{self, Frame};
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

const MARK: &[u8] = b"HBD-SECRET-PAYLOAD-WRITTEN-TO-THE-DISK--";
const FORGED: &[u8] = b"RELAY-INJECTED-BLOCK-THAT-MUST-NOT-LAND--";

/// What the relay saw and where it can inject.
#[derive(Default)]
struct Tap {
    seen: Vec<u8>,
    /// The current connection's socket towards n2 (the acceptor).
    to_acceptor: Option<TcpStream>,
    connections: usize,
}

/// A relay in namespace `ns` from `listen` to `to`. The first connection's
/// third frame from the initiator (its `Join`, the first after Hello and
/// Auth) is replaced with `replace_with`.
fn relay(ns: &str, listen: &str, to: &str, replace_with: Vec<u8>) -> Arc<Mutex<Tap>> {
    let tap = Arc::new(Mutex::new(Tap::default()));
    let (ns, listen, to) = (ns.to_string(), listen.to_string(), to.to_string());
    let t = tap.clone();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // A network namespace is per thread: this thread and the ones it
        // starts live in n2's.
        let f = fs::File::open(format!("/run/netns/{ns}")).unwrap();
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let l = TcpListener::bind(&listen).unwrap();
        l.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        let mut replace = Some(replace_with);
        // Until the test drops its Tap: then the listener (and its hold on
        // the namespace) goes.
        while Arc::strong_count(&t) > 1 {
            let a = match l.accept() {
                Ok((a, _)) => a,
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
            };
            a.set_nonblocking(false).unwrap();
            let Ok(b) = TcpStream::connect(&to) else {
                continue;
            };
            {
                let mut g = t.lock().unwrap();
                g.connections += 1;
                g.to_acceptor = b.try_clone().ok();
            }
            let replace = replace.take();
            let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
            let tu = t.clone();
            std::thread::spawn(move || up(a, b, replace, tu));
            let td = t.clone();
            std::thread::spawn(move || pump(b2, a2, td));
        }
    });
    ready.recv().unwrap();
    tap
}

/// Initiator → acceptor, frame by frame (4-byte length prefix).
fn up(mut from: TcpStream, mut to: TcpStream, mut replace: Option<Vec<u8>>, tap: Arc<Mutex<Tap>>) {
    let mut n = 0;
    loop {
        let mut len = [0u8; 4];
        if from.read_exact(&mut len).is_err() {
            break;
        }
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        if from.read_exact(&mut body).is_err() {
            break;
        }
        n += 1;
        {
            let mut g = tap.lock().unwrap();
            g.seen.extend_from_slice(&len);
            g.seen.extend_from_slice(&body);
        }
        let out = match (n, replace.take()) {
            (3, Some(forged)) => forged,
            (_, r) => {
                replace = r;
                [&len[..], &body].concat()
            }
        };
        if to.write_all(&out).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

fn pump(mut from: TcpStream, mut to: TcpStream, tap: Arc<Mutex<Tap>>) {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        tap.lock().unwrap().seen.extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

/// One frame as the plain wire carries it.
fn plain(f: &Frame) -> Vec<u8> {
    let body = packet::encode(f).unwrap();
    [&(body.len() as u32).to_be_bytes()[..], &body].concat()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_relay_reads_no_data_and_gets_no_request_or_write_through() {
    let mut d = DiskLab::new(16 * MIB, "");
    // n1 connects (it is first in drbd.conf) to the relay's port on n2's
    // address; n2 listens on its own.
    let conf = fs::read_to_string(d.lab.config_dir(1).join("drbd.conf")).unwrap();
    let conf = conf.replace("192.0.2.12:7788", "192.0.2.12:7799");
    d.lab.write(1, "drbd.conf", &conf);
    let forged_admin = plain(&Frame::Admin {
        resource: RES.into(),
        json: serde_json::to_string(&DiskRequest::Primary { force: true }).unwrap(),
    });
    let tap = relay(
        &d.lab.ns("n2"),
        "192.0.2.12:7799",
        "192.0.2.12:7788",
        forged_admin,
    );

    d.start(2);
    d.start(1);
    d.wait_connected();
    let log2 = d.log(2);
    assert!(
        tap.lock().unwrap().connections >= 2,
        "the relay carried the link"
    );
    assert!(
        log2.contains("integrity check"),
        "n2 did not name the forged frame:\n{log2}"
    );
    assert_eq!(
        d.status(2).role.as_str(),
        "Secondary",
        "the relay's admin request got through"
    );

    // Data written on the Primary crosses the relay sealed.
    d.ok(1, DiskRequest::Primary { force: true });
    d.wait_in_sync();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "yes {} | tr -d '\\n' | head -c 1048576 | dd of={} bs=1M oflag=direct conv=fsync status=none",
            std::str::from_utf8(MARK).unwrap(),
            d.device(1).display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "write: {out:?}");
    d.wait_in_sync();
    assert_eq!(d.data_digest(1), d.data_digest(2));
    assert!(
        contains(&fs::read(d.backing(2)).unwrap(), MARK),
        "the data did not reach n2"
    );
    let seen = tap.lock().unwrap().seen.clone();
    assert!(seen.len() > 1 << 20, "the relay saw {} bytes", seen.len());
    assert!(
        !contains(&seen, MARK),
        "the disk's data crossed in the clear"
    );

    // A Write injected into the established link: dropped with the link.
    let before = tap.lock().unwrap().connections;
    let inject = plain(&Frame::Write {
        seq: 1 << 40,
        offset: 0,
        data: FORGED.repeat(100),
    });
    tap.lock()
        .unwrap()
        .to_acceptor
        .as_mut()
        .expect("a connection")
        .write_all(&inject)
        .unwrap();
    d.wait_for("the link dropped and made again", |d| {
        tap.lock().unwrap().connections > before
            && d.try_status(2)
                .is_some_and(|s| s.connection.as_str() == "Connected")
    });
    d.wait_in_sync();
    assert!(
        !contains(&fs::read(d.backing(2)).unwrap(), FORGED),
        "the relay's write landed on n2's disk"
    );
    assert_eq!(d.data_digest(1), d.data_digest(2));
    assert_eq!(d.status(2).role.as_str(), "Secondary");
}

/// Finding 5: strangers that open connections and say nothing hold at most
/// a few slots, each for the handshake's time, and never keep the peer
/// (which has slots of its own) from connecting.
#[test]
fn strangers_holding_connections_do_not_keep_the_peer_out() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let mut d = DiskLab::new(16 * MIB, "");
    d.start(2);
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicUsize::new(0));
    let ns = d.lab.ns("n2");
    let flood = {
        let (stop, closed) = (stop.clone(), closed.clone());
        std::thread::spawn(move || {
            let f = fs::File::open(format!("/run/netns/{ns}")).unwrap();
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            // From n2's own address: not the peer's.
            let mut held: Vec<TcpStream> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                held.retain_mut(|s| {
                    let mut b = [0u8; 64];
                    match s.read(&mut b) {
                        Ok(0) => {
                            closed.fetch_add(1, Ordering::Relaxed);
                            false
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                        _ => false,
                    }
                });
                while held.len() < 32 {
                    match TcpStream::connect("192.0.2.12:7788") {
                        Ok(s) => {
                            s.set_nonblocking(true).unwrap();
                            held.push(s);
                        }
                        Err(_) => break,
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
    };
    std::thread::sleep(std::time::Duration::from_secs(2));
    d.start(1);
    d.wait_connected();
    let pid = d.pid(2).expect("n2's device runs");
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    assert!(
        closed.load(Ordering::Relaxed) > 32,
        "the strangers' extra connections were not closed"
    );
    assert!(fds < 64, "n2 holds {fds} descriptors under the flood");
}
