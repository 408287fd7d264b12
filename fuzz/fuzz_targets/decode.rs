//! Feeds arbitrary bytes to `wire::decode` and, when they decode, to a
//! `Membership` machine.
//!
//! The first byte picks a mode: even, the rest is a raw datagram (checks the
//! header, lengths and MAC paths); odd, the rest is a body that the target
//! wraps in a correct header and CRC, so the fuzzer reaches bincode and the
//! membership rules instead of stopping at the MAC.
//!
//! Run: `scripts/fuzz decode` (or `cargo +nightly fuzz run decode`).

#![no_main]

use hbd::membership::{MediumId, Membership, MembershipConfig};
use hbd::wire::{self, auth, AuthKey, AuthKeys, AuthMethod, HEADER_LEN, MAGIC, VERSION};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fn keys() -> AuthKeys {
    AuthKeys {
        active: 1,
        keys: vec![
            AuthKey {
                id: 1,
                method: AuthMethod::Crc,
                secret: Vec::new(),
            },
            AuthKey {
                id: 2,
                method: AuthMethod::Sha256,
                secret: b"fuzz".to_vec(),
            },
        ],
    }
}

fn machine() -> Membership {
    let names = ["alpha", "beta", "gamma"].map(String::from).to_vec();
    Membership::new(
        MembershipConfig {
            cluster: "fuzz".into(),
            node: "alpha".into(),
            nodes: names,
            media: vec!["eth0".into(), "eth1".into()],
            keepalive: Duration::from_millis(100),
            deadtime: Duration::from_millis(500),
            warntime: Duration::from_millis(300),
            initdead: Duration::from_millis(1000),
            keys: keys(),
            // Signed with crc: every key is at least as strong anyway.
            accept_weaker_keys: false,
        },
        7,
        Duration::ZERO,
    )
}

fn wrap(body: &[u8], key: &AuthKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + key.method.mac_len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(key.id);
    out.push(key.method.wire_id());
    out.extend_from_slice(&(body.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(body);
    let tag = auth::mac(key, auth::Purpose::Datagram, &out);
    out.extend_from_slice(&tag);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = keys();
    let bytes = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        wrap(rest, &keys.keys[0])
    };
    let decoded = wire::decode(&bytes, &keys);
    if let Ok(msg) = &decoded {
        // What decodes re-encodes to something that decodes the same.
        let again = wire::encode(msg, &keys).expect("a decoded message encodes");
        assert_eq!(wire::decode(&again, &keys).as_ref(), Ok(msg));
    }
    let mut m = machine();
    let now = Duration::from_millis(u64::from(mode >> 1));
    m.tick(now);
    let medium = MediumId(u16::from(mode >> 7));
    let res = m.on_datagram(medium, &bytes, now);
    assert_eq!(
        res.is_ok(),
        decoded
            .as_ref()
            .is_ok_and(|msg| msg.cluster == "fuzz" && (msg.from == "beta" || msg.from == "gamma"))
    );
    m.tick(now + Duration::from_secs(1));
    let _ = m.take_outputs();
    let _ = m.status(now);
});
