//! `bcast IF` on an interface whose address was added without `brd` and
//! has no subnet broadcast to fall back on (a /32): hbd refuses to start,
//! naming the ha.cf line, instead of sending keepalives nowhere (issue 17).
//! The /24 case (subnet broadcast used) is tests/membership.rs
//! `bcast_on_an_address_without_broadcast`.

mod common;

use common::*;

/// Replaces node i's address on eth0 by the same one without `brd`.
fn readdress_without_brd(lab: &Lab, i: usize, prefix_len: u8) {
    let ns = lab.ns(&format!("n{i}"));
    let addr = format!("192.0.2.{}/{prefix_len}", 10 + i);
    for args in [
        vec!["-n", &ns, "addr", "flush", "dev", "eth0"],
        vec!["-n", &ns, "addr", "add", &addr, "dev", "eth0"],
    ] {
        let out = std::process::Command::new("ip")
            .args(&args)
            .output()
            .expect("ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let shown = lab.exec(
        &format!("n{i}"),
        &["ip", "-4", "-o", "addr", "show", "dev", "eth0"],
    );
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    assert!(shown.contains(&addr), "{shown}");
    assert!(
        !shown.contains(" brd "),
        "address still has a broadcast: {shown}"
    );
}

#[test]
fn bcast_on_a_slash_32_without_broadcast_is_refused_naming_the_line() {
    let mut lab = Lab::new(1, 1);
    readdress_without_brd(&lab, 1, 32);
    lab.configure(&ha_cf(1, "bcast eth0", "100ms", "1"), KEY);
    lab.start(1);
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = lab.exited(1) {
            break s;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "hbd still runs with bcast on a /32:\n{}",
            lab.log(1)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success(), "{status:?}");
    let log = lab.log(1);
    assert!(log.contains("ha.cf:5"), "no file:line in:\n{log}");
    assert!(log.contains("no broadcast address"), "{log}");
}
