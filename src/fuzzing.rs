//! The fuzz targets' entry points (`fuzz/`, `scripts/fuzz`): every decoder
//! and parser of bytes that come from a network or a local user, called as
//! the daemon calls them. Each takes arbitrary bytes and must return
//! without panicking, hanging or allocating more than its bound.
//!
//! Where a check would stop a fuzzer at the door (a MAC, an AEAD tag), the
//! target signs or seals its input first with a fixed key, so the bytes
//! reach the decoder behind it: an authenticated but hostile or broken
//! peer is fuzzed too.

use std::net::Ipv4Addr;
use std::path::Path;

use tokio_util::bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::disk::packet::{self, LinkCodec};
use crate::wire::auth::{self, Purpose};
use crate::wire::{AuthKeys, AuthMethod};

/// A fuzz target: bytes in, nothing out, no panic.
pub type Target = fn(&[u8]);

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: &[(&str, Target)] = &[
    ("datagram", datagram),
    ("link_frames", link_frames),
    ("vrrp_packet", vrrp_packet),
    ("control", control),
    ("ha_cf", ha_cf),
    ("authkeys", authkeys),
    ("haresources", haresources),
    ("cluster_toml", cluster_toml),
    ("drbd_conf", drbd_conf),
    ("keepalived_conf", keepalived_conf),
];

/// A heartbeat datagram: as received (MAC first), and signed by a key the
/// receiver holds, so the header and body checks behind the MAC are
/// reached.
pub fn datagram(data: &[u8]) {
    let keys = AuthKeys::single(1, AuthMethod::Sha256, b"fuzz");
    let _ = crate::wire::decode(data, &keys);
    if data.len() >= crate::wire::HEADER_LEN {
        let key = keys.signing().expect("one key");
        let mut signed = data.to_vec();
        signed.extend_from_slice(&auth::mac(key, Purpose::Datagram, data));
        let _ = crate::wire::decode(&signed, &keys);
    }
}

/// The replication link's receive path: before authentication (the
/// handshake codec's small frames, then the frame decoder), and after it
/// (frames sealed by a peer that holds the keys, through the sealed codec
/// and the decoder). The first byte picks the split of the input into
/// frames.
pub fn link_frames(data: &[u8]) {
    let mut plain = LinkCodec::handshake();
    let mut src = BytesMut::from(data);
    while let Ok(Some(body)) = plain.decode(&mut src) {
        let _ = packet::decode(&body);
    }
    let _ = packet::decode(data);

    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let (mut tx, mut rx) = link_pair();
    let mut wire = BytesMut::new();
    for chunk in rest.chunks(usize::from(step).max(1) * 4) {
        if tx.encode(Bytes::copy_from_slice(chunk), &mut wire).is_err() {
            return;
        }
    }
    loop {
        match rx.decode(&mut wire) {
            Ok(Some(body)) => {
                let _ = packet::decode(&body);
            }
            Ok(None) => break,
            Err(e) => panic!("a frame sealed with the right key failed: {e}"),
        }
    }
    // The same bytes as a forger sends them: refused, never decoded.
    let mut forged = BytesMut::new();
    forged.put_u32(rest.len() as u32);
    forged.extend_from_slice(rest);
    let (_, mut rx) = link_pair();
    assert!(rx.decode(&mut forged).map_or(true, |f| f.is_none()));
}

fn link_pair() -> (LinkCodec, LinkCodec) {
    LinkCodec::sealed_pair([3; 32], [4; 32], 7)
}

/// A VRRP packet with its IP header, as the raw socket delivers it.
pub fn vrrp_packet(data: &[u8]) {
    use crate::vrrp::packet::{Packet, V3Checksum};
    for v3 in [V3Checksum::PseudoHeader, V3Checksum::NoPseudoHeader] {
        let _ = Packet::decode_with(data, v3, false);
        let _ = Packet::decode_with(data, v3, true);
        let _ = crate::vrrp::packet::Advert::decode(
            data,
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(224, 0, 0, 18),
            v3,
        );
    }
}

/// A request on hbd's control socket or a device's socket (JSON).
pub fn control(data: &[u8]) {
    let _ = serde_json::from_slice::<crate::ctl::Request>(data);
    let _ = serde_json::from_slice::<crate::disk::ctl::DiskRequest>(data);
}

fn text(data: &[u8]) -> String {
    // Config files may be Latin-1: the loaders read them lossily too.
    String::from_utf8_lossy(data).into_owned()
}

pub fn ha_cf(data: &[u8]) {
    let _ = crate::config::parse_ha_cf(Path::new("ha.cf"), &text(data));
}

pub fn authkeys(data: &[u8]) {
    let _ = crate::config::parse_authkeys(Path::new("authkeys"), &text(data));
}

pub fn haresources(data: &[u8]) {
    let nodes = ["n1".to_string(), "n2".to_string()];
    let _ = crate::config::parse_haresources(Path::new("haresources"), &text(data), &nodes);
}

pub fn cluster_toml(data: &[u8]) {
    let _ = crate::config::parse_cluster_toml(Path::new("cluster.toml"), &text(data));
}

pub fn drbd_conf(data: &[u8]) {
    let _ = crate::disk::conf::parse(Path::new("drbd.conf"), &text(data));
}

pub fn keepalived_conf(data: &[u8]) {
    let _ = crate::vrrp::conf::parse(Path::new("keepalived.conf"), &text(data));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The suite's short stand-in for `scripts/fuzz`: garbage into
        /// every target, no panic.
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            for (_, target) in TARGETS {
                target(&data);
            }
        }
    }

    /// The seed corpus (`fuzz/corpus/`) goes through every target.
    #[test]
    fn the_seed_corpus_passes() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        let mut n = 0;
        for (name, target) in TARGETS {
            let Ok(entries) = std::fs::read_dir(dir.join(name)) else {
                continue;
            };
            for e in entries.flatten() {
                target(&std::fs::read(e.path()).unwrap());
                n += 1;
            }
        }
        assert!(n > 0 || !dir.exists(), "an empty corpus");
    }

    /// Writes the seed corpus from the repository's examples, test data
    /// and encoders: `cargo test --lib fuzzing -- --ignored`.
    #[test]
    #[ignore]
    fn write_seed_corpus() {
        use crate::wire::{Body, Keepalive, Message};
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = root.join("fuzz/corpus");
        let put = |target: &str, name: &str, bytes: &[u8]| {
            let d = out.join(target);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name), bytes).unwrap();
        };
        let file = |p: &str| std::fs::read(root.join(p)).unwrap();
        put("ha_cf", "example", &file("etc/ha.d/ha.cf"));
        put("authkeys", "example", &file("etc/ha.d/authkeys"));
        put("haresources", "example", &file("etc/ha.d/haresources"));
        put("cluster_toml", "example", &file("etc/ha.d/cluster.toml"));
        for e in std::fs::read_dir(root.join("tests/data/keepalived")).unwrap() {
            let e = e.unwrap();
            put(
                "keepalived_conf",
                &e.file_name().to_string_lossy(),
                &std::fs::read(e.path()).unwrap(),
            );
        }
        for e in std::fs::read_dir(root.join("tests/data/vrrp")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".hex") {
                let text = std::fs::read_to_string(e.path()).unwrap();
                for (i, line) in text
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.is_empty())
                    .enumerate()
                {
                    let bytes: Vec<u8> = (0..line.len() / 2)
                        .map(|k| u8::from_str_radix(&line[2 * k..2 * k + 2], 16).unwrap())
                        .collect();
                    put("vrrp_packet", &format!("{stem}-{i}"), &bytes);
                }
            } else if let Some(stem) = name.strip_suffix(".conf") {
                put("keepalived_conf", stem, &std::fs::read(e.path()).unwrap());
            }
        }
        put(
            "drbd_conf",
            "two-hosts",
            b"resource r0 {\n  protocol C;\n  disk { fencing resource-only; }\n  net { shared-secret \"s\"; after-sb-0pri discard-zero-changes; tls yes; }\n  syncer { rate 10M; }\n  on n1 { device /dev/drbd0; disk /dev/sda7; address 192.0.2.1:7788; meta-disk internal; }\n  on n2 { device /dev/drbd0; disk /dev/sda7; address 192.0.2.2:7788; meta-disk internal; }\n}\n",
        );
        let keys = AuthKeys::single(1, AuthMethod::Sha256, b"fuzz");
        let msg = Message {
            cluster: "ha".into(),
            from: "n1".into(),
            incarnation: 7,
            seq: 300,
            body: Body::Keepalive(Keepalive {
                keepalive_ms: 1000,
                deadtime_ms: 10000,
            }),
        };
        put(
            "datagram",
            "keepalive",
            &crate::wire::encode(&msg, &keys).unwrap(),
        );
        let leaving = Message {
            body: Body::Leaving,
            ..msg.clone()
        };
        put(
            "datagram",
            "leaving",
            &crate::wire::encode(&leaving, &keys).unwrap(),
        );
        // fuzz/fuzz_targets/decode.rs: a mode byte, then (even) a whole
        // datagram or (odd) a body it signs with its crc key.
        let mut raw = vec![0u8];
        raw.extend_from_slice(&crate::wire::encode(&leaving, &keys).unwrap());
        put("decode", "leaving", &raw);
        let crc = AuthKeys::single(1, AuthMethod::Crc, b"");
        let whole = crate::wire::encode(&msg, &crc).unwrap();
        let body = &whole[crate::wire::HEADER_LEN..whole.len() - AuthMethod::Crc.mac_len()];
        put("decode", "keepalive-body", &[&[1u8][..], body].concat());
        use packet::Frame;
        for (name, f) in [
            (
                "hello",
                Frame::Hello {
                    version: packet::PROTOCOL,
                    nonce: [1; 32],
                    tls: true,
                },
            ),
            (
                "write",
                Frame::Write {
                    seq: 1,
                    offset: 4096,
                    data: vec![7; 64],
                },
            ),
            (
                "rsreq",
                Frame::RsReq {
                    offset: 0,
                    len: 4096,
                },
            ),
            (
                "ovreq",
                Frame::OvReq {
                    offset: 0,
                    digests: vec![[1; 32]; 2],
                },
            ),
            (
                "admin",
                Frame::Admin {
                    resource: "r0".into(),
                    json: r#"{"request":"status"}"#.into(),
                },
            ),
        ] {
            let body = packet::encode(&f).unwrap();
            let mut framed = (body.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(&body);
            put("link_frames", name, &framed);
        }
        for (name, json) in [
            ("status", r#"{"request":"status"}"#),
            (
                "standby",
                r#"{"request":"standby","scope":"all","wait_ms":null}"#,
            ),
            (
                "disk-connect",
                r#"{"request":"connect","discard_my_data":true}"#,
            ),
        ] {
            put("control", name, json.as_bytes());
        }
    }
}
