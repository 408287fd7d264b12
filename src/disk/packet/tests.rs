//! Unit tests of `disk/packet.rs`.

use super::*;
use crate::wire::{AuthKeys, AuthMethod, WireError};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn key(secret: &[u8]) -> AuthKey {
    AuthKey {
        id: 1,
        method: AuthMethod::Sha256,
        secret: secret.to_vec(),
    }
}

fn sec(secret: &[u8], tls: bool) -> LinkSecurity {
    LinkSecurity::new(key(secret), tls)
}

/// An acceptor on a free port that authenticates one connection with
/// `s` and then hands the link to `then`.
async fn acceptor<F, Fut, T>(
    s: LinkSecurity,
    then: F,
) -> (SocketAddr, tokio::task::JoinHandle<io::Result<T>>)
where
    F: FnOnce(Link) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = io::Result<T>> + Send,
    T: Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let (st, _) = l.accept().await?;
        let link = accept(st, &s).await?;
        then(link).await
    });
    (addr, h)
}

#[tokio::test]
async fn both_sides_authenticate_and_frames_flow_sealed_or_plain() {
    for tls in [true, false] {
        let (addr, server) = acceptor(sec(b"k", tls), move |mut link| async move {
            assert_eq!(link.codec().sealed(), tls);
            let f = recv(&mut link).await?;
            send(&mut link, &Frame::PingAck).await?;
            Ok(f)
        })
        .await;
        let mut link = connect(addr, &sec(b"k", tls), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(link.codec().sealed(), tls);
        send(&mut link, &Frame::Ping).await.unwrap();
        assert_eq!(recv(&mut link).await.unwrap(), Frame::PingAck);
        assert_eq!(server.await.unwrap().unwrap(), Frame::Ping);
    }
}

#[tokio::test]
async fn a_wrong_key_is_refused_on_both_sides() {
    let (addr, server) = acceptor(sec(b"right", true), |_| async { Ok(()) }).await;
    let e = connect(addr, &sec(b"wrong", true), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    let e = server.await.unwrap().unwrap_err();
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
        ),
        "{e}"
    );
}

/// Issue 14, finding 1: the acceptor answers a stranger's nonce before
/// checking anything. On the old link that answer was
/// HMAC(key, nonce || "acceptor") with the heartbeat key: a nonce
/// shaped as a datagram header and body start made it a valid
/// heartbeat datagram. Now it is a handshake-key MAC over a label,
/// both nonces and the settings: worthless as a datagram.
#[tokio::test]
async fn a_strangers_nonce_never_buys_a_valid_datagram() {
    let k = key(b"cluster secret");
    let keys = AuthKeys {
        active: 1,
        keys: vec![k.clone()],
    };
    let (addr, _server) = acceptor(LinkSecurity::new(k, true), |_| async { Ok(()) }).await;
    // The stranger's nonce: a datagram header (magic, version, key 1,
    // sha256, body of 32 bytes) and the first 24 bytes of a body whose
    // last 8 would be the role the old acceptor appended.
    let mut ni = [0u8; NONCE_LEN];
    ni[..8].copy_from_slice(&[b'h', b'b', b'd', crate::wire::VERSION, 1, 4, 0, 32]);
    // cluster "ha", from "n2", incarnation 2^64-1, seq 0, Body::Groups...
    ni[8..].copy_from_slice(&[
        2, b'h', b'a', 2, b'n', b'2', 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 2,
        1, 0, 0, 0, 0, 1, 2,
    ]);
    let st = TcpStream::connect(addr).await.unwrap();
    let mut link = framed(st);
    send(
        &mut link,
        &Frame::Hello {
            version: PROTOCOL,
            nonce: ni,
            tls: true,
        },
    )
    .await
    .unwrap();
    let Frame::Hello { .. } = recv(&mut link).await.unwrap() else {
        panic!("no Hello")
    };
    let Frame::Auth { mac: tag } = recv(&mut link).await.unwrap() else {
        panic!("no Auth")
    };
    // Whatever the acceptor may have appended to the nonce, its tag
    // signs no datagram.
    for tail in [&b"acceptor"[..], b"acceptor\0", b""] {
        let mut dgram = ni.to_vec();
        dgram.extend_from_slice(tail);
        dgram[7] = (dgram.len() - 8) as u8;
        dgram.extend_from_slice(&tag);
        assert!(
            matches!(crate::wire::decode(&dgram, &keys), Err(WireError::BadMac)),
            "the acceptor's answer verified as a datagram ({tail:?})"
        );
    }
}

/// A relay between two authenticated ends: records what crosses and
/// lets a test inject bytes towards the acceptor.
struct Relay {
    addr: SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    inject: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
}

async fn relay(to: SocketAddr) -> Relay {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (inject, mut injected) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let s = seen.clone();
    tokio::spawn(async move {
        let (a, _) = l.accept().await.unwrap();
        let b = TcpStream::connect(to).await.unwrap();
        let (mut ar, mut aw) = a.into_split();
        let (mut br, mut bw) = b.into_split();
        let s2 = s.clone();
        let up = async move {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                tokio::select! {
                    n = ar.read(&mut buf) => {
                        let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                        s.lock().unwrap().extend_from_slice(&buf[..n]);
                        if bw.write_all(&buf[..n]).await.is_err() { return }
                    }
                    Some(bytes) = injected.recv() => {
                        if bw.write_all(&bytes).await.is_err() { return }
                    }
                }
            }
        };
        let down = async move {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = match br.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                s2.lock().unwrap().extend_from_slice(&buf[..n]);
                if aw.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        };
        tokio::join!(up, down);
    });
    Relay { addr, seen, inject }
}

fn frame_bytes(f: &Frame) -> Vec<u8> {
    let body = encode(f).unwrap();
    let mut v = (body.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&body);
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Issue 14, finding 2: after the handshake a relay saw every frame in
/// the clear and could inject its own (an Admin request, a Write).
/// Sealed: the data never shows, and an injected or replayed frame
/// drops the link before it is decoded.
#[tokio::test]
async fn a_relay_reads_nothing_and_injects_nothing() {
    const MARK: &[u8] = b"THE-DATA-WRITTEN-TO-THE-DISK";
    for tls in [false, true] {
        let (addr, server) = acceptor(sec(b"k", tls), |mut link| async move {
            let mut got = Vec::new();
            loop {
                match recv(&mut link).await {
                    Ok(f) => got.push(f),
                    Err(e) => return Ok((got, e)),
                }
            }
        })
        .await;
        let r = relay(addr).await;
        let mut link = connect(r.addr, &sec(b"k", tls), Duration::from_secs(5))
            .await
            .unwrap();
        let write = Frame::Write {
            seq: 1,
            offset: 0,
            data: MARK.repeat(8),
        };
        send(&mut link, &write).await.unwrap();
        send(&mut link, &Frame::Ping).await.unwrap();
        // The relay's own frame, and a replay of everything it saw.
        let forged = Frame::Admin {
            resource: "r0".into(),
            json: r#"{"request":"primary","force":true}"#.into(),
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        r.inject.send(frame_bytes(&forged)).unwrap();
        let seen = r.seen.lock().unwrap().clone();
        r.inject.send(seen.clone()).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(link);
        let (got, err) = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the acceptor ended")
            .unwrap()
            .unwrap();
        assert_eq!(
            contains(&seen, MARK),
            !tls,
            "tls {tls}: the data in the clear?"
        );
        assert_eq!(got[..2], [write.clone(), Frame::Ping], "tls {tls}");
        if tls {
            assert_eq!(
                got.len(),
                2,
                "an injected frame got through: {:?}",
                &got[2..]
            );
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        } else {
            assert!(
                got.contains(&forged),
                "the plain link takes injected frames"
            );
        }
    }
}

#[tokio::test]
async fn keys_roll_over_in_step_on_both_sides() {
    let mut s = sec(b"k", true);
    s.rekey_every = 3;
    let s2 = s.clone();
    let (addr, server) = acceptor(s2, |mut link| async move {
        for i in 0..20u64 {
            assert_eq!(recv(&mut link).await?, Frame::Ack { seq: i });
            send(&mut link, &Frame::FlushAck { seq: i }).await?;
        }
        Ok(())
    })
    .await;
    let mut link = connect(addr, &s, Duration::from_secs(5)).await.unwrap();
    for i in 0..20u64 {
        send(&mut link, &Frame::Ack { seq: i }).await.unwrap();
        assert_eq!(recv(&mut link).await.unwrap(), Frame::FlushAck { seq: i });
    }
    server.await.unwrap().unwrap();
    // Keys actually change: frame 3 under the rolled key is not frame 3
    // under the first one.
    let mut a = Seal::new([7; 32], 3);
    let mut b = Seal::new([7; 32], u64::MAX);
    for _ in 0..3 {
        a.advance();
        b.advance();
    }
    assert_ne!(a.key, b.key);
    assert_eq!(a.nonce(), b.nonce());
}

#[tokio::test]
async fn different_tls_settings_are_named_on_both_sides() {
    let (addr, server) = acceptor(sec(b"k", true), |_| async { Ok(()) }).await;
    let e = connect(addr, &sec(b"k", false), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("`tls yes`") && e.to_string().contains("this node `tls no`"),
        "{e}"
    );
    let e = server.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("the peer has `tls no`"), "{e}");
}

/// Issue 14, finding 5: before authentication a frame may not be
/// larger than a handshake frame, and a silent stranger is dropped
/// after HANDSHAKE_TIMEOUT.
#[tokio::test]
async fn strangers_get_small_frames_and_little_time() {
    let (addr, server) = acceptor(sec(b"k", true), |_| async { Ok(()) }).await;
    let mut st = TcpStream::connect(addr).await.unwrap();
    st.write_all(&((MAX_FRAME as u32).to_be_bytes()))
        .await
        .unwrap();
    st.write_all(&[0u8; 1024]).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("a long frame before authentication is refused at once")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");

    let (addr, server) = acceptor(sec(b"k", true), |_| async { Ok(()) }).await;
    let _st = TcpStream::connect(addr).await.unwrap();
    let e = server.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
}

#[tokio::test]
async fn another_protocol_version_is_named() {
    let (addr, server) = acceptor(sec(b"k", true), |_| async { Ok(()) }).await;
    let mut link = framed(TcpStream::connect(addr).await.unwrap());
    send(
        &mut link,
        &Frame::Hello {
            version: 2,
            nonce: [0; NONCE_LEN],
            tls: true,
        },
    )
    .await
    .unwrap();
    let e = server.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("link protocol 2"), "{e}");
    match recv(&mut link).await.unwrap() {
        Frame::Error { msg } => assert!(msg.contains("same hbd version"), "{msg}"),
        f => panic!("{f:?}"),
    }
}

/// The data fields' byte-string encoding is the one a `Vec<u8>` had
/// (wire unchanged, no protocol bump), and it round-trips.
#[test]
fn data_fields_encode_as_a_plain_byte_sequence() {
    #[derive(Serialize)]
    enum Old {
        #[allow(dead_code)]
        Hello,
        #[allow(dead_code)]
        Auth,
        #[allow(dead_code)]
        Join,
        #[allow(dead_code)]
        Admin,
        #[allow(dead_code)]
        AdminReply,
        #[allow(dead_code)]
        Ctrl,
        Write {
            seq: u64,
            offset: u64,
            data: Vec<u8>,
        },
    }
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let new = Frame::Write {
        seq: 9,
        offset: 4096,
        data: data.clone(),
    };
    let old = Old::Write {
        seq: 9,
        offset: 4096,
        data,
    };
    let a = encode(&new).unwrap();
    assert_eq!(&a[..], &opts().serialize(&old).unwrap()[..]);
    assert_eq!(decode(&a).unwrap(), new);
    for f in [
        Frame::RsData {
            offset: 1,
            data: vec![1, 2, 3],
        },
        Frame::Bitmap {
            data: vec![],
            last: true,
        },
    ] {
        assert_eq!(decode(&encode(&f).unwrap()).unwrap(), f);
    }
}

#[test]
fn oversized_fields_are_refused_after_decode() {
    let f = Frame::OvReq {
        offset: 0,
        digests: vec![[0; 32]; MAX_DIGESTS + 1],
    };
    let body = opts().serialize(&f).unwrap();
    assert!(decode(&body).is_err());
    let f = Frame::RsReq {
        offset: 0,
        len: MAX_DATA as u64 + 1,
    };
    assert!(decode(&encode(&f).unwrap()).is_err());
    let f = Frame::RsReq {
        offset: 0,
        len: MAX_DATA as u64,
    };
    assert_eq!(decode(&encode(&f).unwrap()).unwrap(), f);
}

proptest! {
    #[test]
    fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&body);
    }

    /// Garbage into a sealed codec: an error, never a panic or a frame.
    #[test]
    fn sealed_decode_never_panics_nor_accepts(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut c = LinkCodec::handshake();
        c.open(Some(([1; 32], [2; 32])), REKEY_FRAMES);
        let mut src = BytesMut::new();
        src.put_u32(body.len() as u32);
        src.extend_from_slice(&body);
        prop_assert!(c.decode(&mut src).is_err());
    }
}
