//! Tests of the datagram codec: golden bytes, round trips, key rollover, every
//! error, and property tests that no input makes `decode` panic.

use super::auth::{mac, verify, Purpose};

const D: Purpose = Purpose::Datagram;
use super::*;
use bincode::Options;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn sample() -> Message {
    Message {
        cluster: "ha".into(),
        from: "alpha".into(),
        incarnation: 7,
        seq: 300,
        body: Body::Keepalive(Keepalive {
            keepalive_ms: 1000,
            deadtime_ms: 10000,
        }),
    }
}

fn sha256_keys() -> AuthKeys {
    AuthKeys::single(1, AuthMethod::Sha256, b"secret")
}

fn body_options() -> impl Options {
    bincode::DefaultOptions::new().with_limit(MAX_DATAGRAM as u64)
}

/// Builds a datagram around arbitrary body bytes, signed correctly, so tests
/// can reach the checks that come after the MAC.
fn sign_raw(body: &[u8], key: &AuthKey) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(VERSION);
    out.push(key.id);
    out.push(key.method.wire_id());
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    let tag = mac(key, Purpose::Datagram, &out);
    out.extend_from_slice(&tag);
    out
}

// The body of `sample()` in bincode varint encoding, byte by byte:
//   02 'h' 'a'                 cluster: length 2, then the bytes
//   05 'a' 'l' 'p' 'h' 'a'     from: length 5
//   07                         incarnation 7 (< 251: one byte)
//   fb 2c 01                   seq 300: marker 251 = u16 follows, little endian
//   00                         Body::Keepalive, variant index 0
//   fb e8 03                   keepalive_ms 1000
//   fb 10 27                   deadtime_ms 10000
// 20 bytes = 0x0014. The MACs were checked against Python's hmac/zlib (HKDF written out
// with hmac: PRK = HMAC("hbd key derivation", secret), key = HMAC(PRK, label || 1)).
const GOLDEN_BODY: &str = "02686105616c70686107fb2c0100fbe803fb1027";

#[test]
fn golden_sha256() {
    let bytes = encode(&sample(), &sha256_keys()).unwrap();
    let expected = hex(&format!(
        "{}{}{}",
        // 'h' 'b' 'd', version 3, key id 1, method 4 (sha256), body length 20
        "6862640301040014",
        GOLDEN_BODY,
        "bfb8d54eaf4a0d23f9e7bb88d7736675c44a45ffe09d61efb97bd3a4bada3929"
    ));
    assert_eq!(bytes, expected);
    assert_eq!(bytes.len(), HEADER_LEN + 20 + 32);
    assert_eq!(decode(&expected, &sha256_keys()).unwrap(), sample());
}

#[test]
fn golden_crc() {
    let keys = AuthKeys::single(2, AuthMethod::Crc, b"");
    let bytes = encode(&sample(), &keys).unwrap();
    // key id 2, method 1 (crc), CRC32 of label + header + body, big endian
    let expected = hex(&format!("6862640302010014{GOLDEN_BODY}f64fa539"));
    assert_eq!(bytes, expected);
    assert_eq!(decode(&expected, &keys).unwrap(), sample());
}

#[test]
fn golden_md5_and_sha1() {
    let keys = AuthKeys::single(3, AuthMethod::Md5, b"secret");
    assert_eq!(
        encode(&sample(), &keys).unwrap(),
        hex(&format!(
            "6862640303020014{GOLDEN_BODY}9d5016816a68b505adea36bb375687ed"
        ))
    );
    let keys = AuthKeys::single(4, AuthMethod::Sha1, b"secret");
    assert_eq!(
        encode(&sample(), &keys).unwrap(),
        hex(&format!(
            "6862640304030014{GOLDEN_BODY}4dbd060053184e065c153494cc845fbd08f886e2"
        ))
    );
}

#[test]
fn golden_leaving_body() {
    let msg = Message {
        body: Body::Leaving,
        seq: 1,
        ..sample()
    };
    let bytes = encode(&msg, &sha256_keys()).unwrap();
    // seq 1, then variant index 1 and no fields
    assert_eq!(&bytes[..8], &hex("686264030104000c")[..]);
    assert_eq!(&bytes[8..20], &hex("02686105616c706861070101")[..]);
}

/// A version-2 group report, field by field: the fields issue 13 added
/// (`served`, `witness`, `ping`) sit at the end of their structs.
#[test]
fn golden_group_report_body() {
    let msg = Message {
        body: Body::Groups(GroupReport {
            ready: true,
            leaving: false,
            groups: vec![GroupEntry {
                id: "a".into(),
                state: GroupState::Started,
                claim: 0,
                grant: None,
                pref: Pref::None,
                unhealthy: false,
                served: 300,
            }],
            marks: Vec::new(),
            no: 5,
            heard: Vec::new(),
            witness: true,
            ping: Some(2),
        }),
        ..sample()
    };
    let body = concat!(
        "02686105616c70686107fb2c01", // cluster, from, incarnation, seq
        "02",                         // Body::Groups
        "0100",                       // ready, leaving
        "01",                         // one entry:
        "0161",                       //   id "a"
        "02",                         //   state Started
        "00",                         //   claim 0
        "00",                         //   grant None
        "00",                         //   pref None
        "00",                         //   unhealthy false
        "fb2c01",                     //   served 300
        "00",                         // no marks
        "05",                         // no 5
        "00",                         // heard: none
        "01",                         // witness
        "0102",                       // ping Some(2)
    );
    let bytes = encode(&msg, &sha256_keys()).unwrap();
    assert_eq!(&bytes[..3], b"hbd");
    assert_eq!(bytes[3], 3, "wire version");
    assert_eq!(&bytes[HEADER_LEN..bytes.len() - 32], &hex(body)[..]);
    assert_eq!(decode(&bytes, &sha256_keys()).unwrap(), msg);
    // A version-1 datagram is refused before its MAC is looked at.
    let mut old = bytes.clone();
    old[3] = 1;
    assert!(matches!(
        decode(&old, &sha256_keys()),
        Err(WireError::Malformed(_))
    ));
}

/// Body::Outdate, the built-in outdater's request and answer: variant
/// index 3 after Keepalive, Leaving and Groups.
#[test]
fn golden_outdate_body() {
    let keys = AuthKeys::single(2, AuthMethod::Crc, b"");
    let request = Message {
        body: Body::Outdate(Outdate {
            to: "n2".into(),
            resource: "r0".into(),
            id: 5,
            answer: None,
        }),
        ..sample()
    };
    let body = body_options().serialize(&request).unwrap();
    // ... seq, then 03 (Outdate), "n2", "r0", id 5, 00 (no answer)
    assert_eq!(
        body,
        hex("02686105616c70686107fb2c0103026e3202723005" /* to, resource, id */)
            .into_iter()
            .chain([0x00])
            .collect::<Vec<u8>>()
    );
    let bytes = encode(&request, &keys).unwrap();
    assert_eq!(decode(&bytes, &keys).unwrap(), request);
    let answer = Message {
        body: Body::Outdate(Outdate {
            to: "alpha".into(),
            resource: "r0".into(),
            id: 5,
            answer: Some(OutdateAnswer {
                code: 4,
                message: "ok".into(),
            }),
        }),
        ..sample()
    };
    let body = body_options().serialize(&answer).unwrap();
    assert!(body.ends_with(&hex("050104026f6b")), "{body:02x?}");
    let bytes = encode(&answer, &keys).unwrap();
    assert_eq!(decode(&bytes, &keys).unwrap(), answer);
    // Truncated anywhere (and re-signed): an error, never a panic.
    for cut in 0..body.len() {
        let raw = sign_raw(&body[..cut], &keys.keys[0]);
        assert!(decode(&raw, &keys).is_err(), "cut at {cut}");
    }
    // A message too long for a datagram is refused when encoding.
    let huge = Message {
        body: Body::Outdate(Outdate {
            to: "n2".into(),
            resource: "r".repeat(MAX_DATAGRAM),
            id: 1,
            answer: None,
        }),
        ..sample()
    };
    assert!(matches!(
        encode(&huge, &keys),
        Err(WireError::Oversize { .. })
    ));
}

#[test]
fn round_trip_every_method() {
    for (method, secret) in [
        (AuthMethod::Crc, &b""[..]),
        (AuthMethod::Md5, b"md5 secret"),
        (AuthMethod::Sha1, b"sha1 secret"),
        (
            AuthMethod::Sha256,
            b"a much longer sha256 secret, longer than a block of sixty-four bytes",
        ),
    ] {
        let keys = AuthKeys::single(9, method, secret);
        for msg in [
            sample(),
            Message {
                body: Body::Leaving,
                incarnation: u64::MAX,
                seq: u64::MAX,
                ..sample()
            },
        ] {
            let bytes = encode(&msg, &keys).unwrap();
            assert_eq!(bytes[5], method.wire_id());
            assert_eq!(
                bytes.len(),
                HEADER_LEN
                    + usize::from(u16::from_be_bytes([bytes[6], bytes[7]]))
                    + method.mac_len()
            );
            assert_eq!(decode(&bytes, &keys).unwrap(), msg, "{method:?}");
        }
    }
}

#[test]
fn mac_lengths_and_verify() {
    for method in [
        AuthMethod::Crc,
        AuthMethod::Md5,
        AuthMethod::Sha1,
        AuthMethod::Sha256,
    ] {
        let key = AuthKey {
            id: 1,
            method,
            secret: b"k".to_vec(),
        };
        let tag = mac(&key, D, b"data");
        assert_eq!(tag.len(), method.mac_len());
        assert!(verify(&key, D, b"data", &tag));
        assert!(!verify(&key, D, b"datb", &tag));
        assert!(!verify(&key, D, b"data", &tag[1..]));
        assert!(!verify(&key, D, b"data", &[]));
        let mut bad = tag.clone();
        bad[0] ^= 1;
        assert!(!verify(&key, D, b"data", &bad));
    }
    // CRC ignores the secret; the HMACs do not.
    let key = |method, secret: &[u8]| AuthKey {
        id: 1,
        method,
        secret: secret.to_vec(),
    };
    assert_eq!(
        mac(&key(AuthMethod::Crc, b"a"), D, b"x"),
        mac(&key(AuthMethod::Crc, b"b"), D, b"x")
    );
    let (a, b) = (key(AuthMethod::Sha256, b"a"), key(AuthMethod::Sha256, b"b"));
    assert_ne!(mac(&a, D, b"x"), mac(&b, D, b"x"));
    // One secret, two purposes: different keys and labels, different tags.
    for method in [AuthMethod::Crc, AuthMethod::Md5, AuthMethod::Sha256] {
        let k = key(method, b"a");
        let tag = mac(&k, D, b"x");
        assert!(
            !verify(&k, Purpose::DiskHandshake, b"x", &tag),
            "{method:?}"
        );
    }
}

#[test]
fn key_rollover() {
    let old = AuthKeys::single(1, AuthMethod::Sha1, b"old");
    let new = AuthKeys::single(2, AuthMethod::Sha256, b"new");
    let both = |active| AuthKeys {
        active,
        keys: vec![old.keys[0].clone(), new.keys[0].clone()],
    };
    // A node in the middle of the rollover accepts either key...
    let from_old = encode(&sample(), &old).unwrap();
    let from_new = encode(&sample(), &new).unwrap();
    assert_eq!(decode(&from_old, &both(1)).unwrap(), sample());
    assert_eq!(decode(&from_new, &both(1)).unwrap(), sample());
    assert_eq!(decode(&from_new, &both(2)).unwrap(), sample());
    // ... and signs with the active one.
    assert_eq!(encode(&sample(), &both(1)).unwrap(), from_old);
    assert_eq!(encode(&sample(), &both(2)).unwrap(), from_new);
    // Nodes not yet (or no longer) holding a key reject it.
    assert_eq!(decode(&from_new, &old), Err(WireError::UnknownKey(2)));
    assert_eq!(decode(&from_old, &new), Err(WireError::UnknownKey(1)));
    // Same id, different secret: forged.
    let other = AuthKeys::single(2, AuthMethod::Sha256, b"not new");
    assert_eq!(decode(&from_new, &other), Err(WireError::BadMac));
}

#[test]
fn encode_errors() {
    let long = "x".repeat(MAX_NAME + 1);
    let exact = "x".repeat(MAX_NAME);
    let keys = sha256_keys();
    let m = Message {
        cluster: long.clone(),
        ..sample()
    };
    assert_eq!(encode(&m, &keys), Err(WireError::NameTooLong));
    let m = Message {
        from: long,
        ..sample()
    };
    assert_eq!(encode(&m, &keys), Err(WireError::NameTooLong));
    let m = Message {
        from: exact.clone(),
        cluster: exact,
        ..sample()
    };
    assert_eq!(decode(&encode(&m, &keys).unwrap(), &keys).unwrap(), m);
    // No signing key.
    let broken = AuthKeys {
        active: 5,
        keys: keys.keys.clone(),
    };
    assert_eq!(encode(&sample(), &broken), Err(WireError::UnknownKey(5)));
}

#[test]
fn decode_errors() {
    let keys = sha256_keys();
    let good = encode(&sample(), &keys).unwrap();

    let big = vec![0u8; MAX_DATAGRAM + 1];
    assert_eq!(
        decode(&big, &keys),
        Err(WireError::Oversize {
            len: MAX_DATAGRAM + 1,
            max: MAX_DATAGRAM
        })
    );
    assert!(matches!(decode(&[], &keys), Err(WireError::Malformed(_))));
    assert!(matches!(
        decode(&good[..7], &keys),
        Err(WireError::Malformed(_))
    ));

    let mut bad = good.clone();
    bad[0] = b'H';
    assert_eq!(decode(&bad, &keys), Err(WireError::Malformed("bad magic")));
    let mut bad = good.clone();
    bad[3] = VERSION + 1;
    assert_eq!(
        decode(&bad, &keys),
        Err(WireError::Malformed("unsupported version"))
    );
    let mut bad = good.clone();
    bad[4] = 7;
    assert_eq!(decode(&bad, &keys), Err(WireError::UnknownKey(7)));
    let mut bad = good.clone();
    bad[5] = AuthMethod::Md5.wire_id();
    assert_eq!(
        decode(&bad, &keys),
        Err(WireError::MethodMismatch {
            id: 1,
            expected: AuthMethod::Sha256,
            got: 2
        })
    );
    // Lengths that do not add up: truncated, extended, body length off by one.
    assert!(matches!(
        decode(&good[..good.len() - 1], &keys),
        Err(WireError::Malformed(_))
    ));
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(
        decode(&longer, &keys),
        Err(WireError::Malformed(_))
    ));
    let mut bad = good.clone();
    bad[7] += 1;
    assert!(matches!(decode(&bad, &keys), Err(WireError::Malformed(_))));
    // A flipped bit anywhere in the body or the MAC.
    for i in HEADER_LEN..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x40;
        assert_eq!(decode(&bad, &keys), Err(WireError::BadMac), "byte {i}");
    }

    // Past the MAC: bodies bincode refuses.
    let key = &keys.keys[0];
    let mut body = body_options().serialize(&sample()).unwrap();
    body.push(0); // trailing byte
    assert!(matches!(
        decode(&sign_raw(&body, key), &keys),
        Err(WireError::Body(_))
    ));
    assert!(matches!(
        decode(&sign_raw(&[], key), &keys),
        Err(WireError::Body(_))
    ));
    // A string length far past the datagram must not allocate it.
    let mut body = vec![0xfd];
    body.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        decode(&sign_raw(&body, key), &keys),
        Err(WireError::Body(_))
    ));
    // Unknown Body variant.
    let mut body = body_options().serialize(&sample()).unwrap();
    body.truncate(12);
    body[11] = 9; // seq 1 fits in one byte; then variant 9
    body[10] = 1;
    let body = &body[..12];
    assert!(matches!(
        decode(&sign_raw(body, key), &keys),
        Err(WireError::Body(_))
    ));
    // Invalid UTF-8 in a name.
    let mut body = body_options().serialize(&sample()).unwrap();
    body[1] = 0xff;
    assert!(matches!(
        decode(&sign_raw(&body, key), &keys),
        Err(WireError::Body(_))
    ));
    // A name too long, well signed: bincode accepts it, decode does not.
    let m = Message {
        from: "y".repeat(MAX_NAME + 1),
        ..sample()
    };
    let body = body_options().serialize(&m).unwrap();
    assert_eq!(
        decode(&sign_raw(&body, key), &keys),
        Err(WireError::NameTooLong)
    );
}

#[test]
fn drop_reasons() {
    assert_eq!(
        WireError::Oversize { len: 0, max: 0 }.drop_reason(),
        DropReason::Oversize
    );
    assert_eq!(
        WireError::Malformed("x").drop_reason(),
        DropReason::Malformed
    );
    assert_eq!(
        WireError::Body("x".into()).drop_reason(),
        DropReason::Malformed
    );
    assert_eq!(WireError::NameTooLong.drop_reason(), DropReason::Malformed);
    assert_eq!(WireError::UnknownKey(1).drop_reason(), DropReason::Forged);
    assert_eq!(WireError::BadMac.drop_reason(), DropReason::Forged);
}

fn any_method() -> impl Strategy<Value = AuthMethod> {
    prop_oneof![
        Just(AuthMethod::Crc),
        Just(AuthMethod::Md5),
        Just(AuthMethod::Sha1),
        Just(AuthMethod::Sha256),
    ]
}

fn any_report() -> impl Strategy<Value = GroupReport> {
    let state = prop_oneof![
        Just(GroupState::Stopped),
        Just(GroupState::Starting),
        Just(GroupState::Started),
        Just(GroupState::Stopping),
        Just(GroupState::Failed),
        Just(GroupState::StopFailed),
    ];
    let pref = prop_oneof![
        Just(Pref::None),
        any::<u32>().prop_map(Pref::Refuse),
        any::<u32>().prop_map(Pref::Want),
    ];
    let grant = proptest::option::of(("[a-z0-9]{1,16}", any::<u64>(), any::<u32>()).prop_map(
        |(node, incarnation, claim)| Grant {
            node,
            incarnation,
            claim,
        },
    ));
    let entry = (
        "[ -~]{1,40}",
        state,
        any::<u32>(),
        grant,
        pref,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(id, state, claim, grant, pref, unhealthy, served)| GroupEntry {
                id,
                state,
                claim,
                grant,
                pref,
                unhealthy,
                served,
            },
        );
    let mark = ("[a-z]{1,12}", any::<i64>()).prop_map(|(job, last)| JobMark { job, last });
    (
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(entry, 0..4),
        proptest::collection::vec(mark, 0..3),
        any::<bool>(),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(
            |(ready, leaving, groups, marks, witness, ping)| GroupReport {
                ready,
                leaving,
                groups,
                marks,
                no: 7,
                heard: vec![Heard {
                    node: "n2".into(),
                    incarnation: 3,
                    no: 9,
                }],
                witness,
                ping,
            },
        )
}

fn any_message() -> impl Strategy<Value = Message> {
    (
        prop_oneof!["[a-z0-9._-]{0,64}", "\\PC{0,16}"],
        prop_oneof!["[a-z0-9._-]{0,64}", "\\PC{0,16}"],
        any::<u64>(),
        any::<u64>(),
        prop_oneof![
            (any::<u32>(), any::<u32>()).prop_map(|(k, d)| Body::Keepalive(Keepalive {
                keepalive_ms: k,
                deadtime_ms: d
            })),
            Just(Body::Leaving),
            any_report().prop_map(Body::Groups),
            (
                "[a-z0-9]{0,12}",
                "[a-z0-9]{0,12}",
                any::<u64>(),
                proptest::option::of((any::<u8>(), "[ -~]{0,40}")),
            )
                .prop_map(|(to, resource, id, answer)| Body::Outdate(Outdate {
                    to,
                    resource,
                    id,
                    answer: answer.map(|(code, message)| OutdateAnswer { code, message }),
                })),
        ],
    )
        .prop_map(|(cluster, from, incarnation, seq, body)| Message {
            cluster,
            from,
            incarnation,
            seq,
            body,
        })
}

/// Mutations of a valid datagram.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Extend(Vec<u8>),
}

fn any_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Extend),
    ]
}

proptest! {
    #[test]
    fn round_trip(msg in any_message(), method in any_method(), id in any::<u8>(),
                  secret in proptest::collection::vec(any::<u8>(), 0..100)) {
        let keys = AuthKeys::single(id, method, &secret);
        let bytes = encode(&msg, &keys).unwrap();
        prop_assert!(bytes.len() <= MAX_DATAGRAM);
        prop_assert_eq!(decode(&bytes, &keys).unwrap(), msg);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = decode(&bytes, &sha256_keys());
        let _ = decode(&bytes, &AuthKeys::single(0, AuthMethod::Crc, b""));
    }

    #[test]
    fn garbage_with_a_valid_header_never_panics(
        key_id in 0u8..3, method in 0u8..6, len in any::<u16>(),
        rest in proptest::collection::vec(any::<u8>(), 0..200)
    ) {
        let mut bytes = vec![b'h', b'b', b'd', VERSION, key_id, method];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&rest);
        let _ = decode(&bytes, &AuthKeys::single(1, AuthMethod::Crc, b""));
    }

    #[test]
    fn signed_garbage_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        // Reaches bincode: with CRC anyone can sign.
        let keys = AuthKeys::single(1, AuthMethod::Crc, b"");
        let bytes = sign_raw(&body, &keys.keys[0]);
        if let Ok(msg) = decode(&bytes, &keys) {
            // Whatever decodes re-encodes and decodes to itself.
            let again = encode(&msg, &keys).unwrap();
            prop_assert_eq!(decode(&again, &keys).unwrap(), msg);
        }
    }

    #[test]
    fn mutated_datagrams_are_rejected(
        msg in any_message(), method in any_method(),
        mutations in proptest::collection::vec(any_mutation(), 1..4)
    ) {
        let keys = AuthKeys::single(3, method, b"proptest secret");
        let good = encode(&msg, &keys).unwrap();
        let mut bytes = good.clone();
        for m in mutations {
            match m {
                Mutation::Flip(i, x) => {
                    if !bytes.is_empty() {
                        let i = i % bytes.len();
                        bytes[i] ^= x;
                    }
                }
                Mutation::Truncate(n) => {
                    let n = n % (bytes.len() + 1);
                    bytes.truncate(n);
                }
                Mutation::Extend(tail) => bytes.extend_from_slice(&tail),
            }
        }
        match decode(&bytes, &keys) {
            // Mutations can cancel out (flip twice, truncate then extend back).
            Ok(decoded) => {
                prop_assert_eq!(&bytes, &good);
                prop_assert_eq!(decoded, msg);
            }
            Err(e) => prop_assert!(bytes != good, "{e}"),
        }
    }
}

proptest! {
    #[test]
    fn signed_mutated_bodies_never_panic(
        msg in any_message(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        // Near-valid bodies, correctly signed, exercise bincode's error paths.
        let keys = AuthKeys::single(1, AuthMethod::Crc, b"");
        let mut body = body_options().serialize(&msg).unwrap();
        for (i, x) in flips {
            let i = i % body.len();
            body[i] ^= x;
        }
        body.truncate(body.len() - cut % 3);
        if let Ok(decoded) = decode(&sign_raw(&body, &keys.keys[0]), &keys) {
            let again = encode(&decoded, &keys).unwrap();
            prop_assert_eq!(decode(&again, &keys).unwrap(), decoded);
        }
    }
}
