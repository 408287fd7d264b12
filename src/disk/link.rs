//! The connection between the two device processes of one resource.
//!
//! One TCP connection carries everything DRBD's data and meta sockets carry:
//! the state machine's messages, replicated writes and their acks (protocol
//! C), barriers (flushes), the bitmap exchange, resync requests and data,
//! online-verify digests and keepalive pings. Either side may send data: the
//! connection survives role changes.
//!
//! # Wire
//!
//! Length-delimited frames (4-byte big-endian length, at most
//! [`MAX_FRAME`]), each body one [`Frame`] in bincode 1.x with
//! `DefaultOptions::new().with_limit(MAX_FRAME)` (varint, no trailing bytes),
//! so a hostile length prefix never allocates more than one frame, and every
//! variable-length field is checked against its own bound after decoding.
//!
//! Mutual challenge–response with the cluster key before anything else:
//!
//! ```text
//!  Initiator                                Acceptor
//!    Hello{ni}  ───────────────────────────▶
//!              ◀─────────────────────────── Hello{na}
//!              ◀─────────────────────────── Auth{mac(key, ni || "acceptor")}
//!    Auth{mac(key, na || "initiator")} ────▶  (verified before anything else is read)
//!    Join{..} | Admin{..} ─────────────────▶
//! ```
//!
//! The role is inside the MAC so neither side's answer can be reflected
//! back. `Join` turns the connection into the resource's replication link;
//! `Admin` carries one `hbctl` request for the acceptor's device
//! ([`crate::disk::ctl::DiskRequest::Remote`]) and gets one `AdminReply`.
//! Any malformed, unexpected or unauthenticated frame closes the connection.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Duration;

use bincode::Options;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::bytes::Bytes;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::state::Msg;
use crate::wire::auth::{mac, verify};
use crate::wire::AuthKey;

/// Largest data payload of one frame (writes, resync data, bitmap chunks).
pub const MAX_DATA: usize = 1 << 20;
/// Largest frame body.
pub const MAX_FRAME: usize = MAX_DATA + 4096;
/// Digests in one verify request (4 KiB each: 1 MiB of data).
pub const MAX_DIGESTS: usize = MAX_DATA / 4096;
/// Largest admin request or answer (JSON).
pub const MAX_JSON: usize = 256 << 10;
/// Time allowed for the whole authentication exchange.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const NONCE_LEN: usize = 32;
const MAX_MAC: usize = 64;
const MAX_MSG: usize = 256;
const MAX_NAME: usize = 255;
const ROLE_INITIATOR: &[u8] = b"initiator";
const ROLE_ACCEPTOR: &[u8] = b"acceptor";

/// Why a link failed (carried inside an `io::Error`).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("unexpected frame {got}, wanted {want}")]
    Unexpected {
        got: &'static str,
        want: &'static str,
    },
    #[error("peer failed authentication (check the cluster key)")]
    AuthFailed,
    #[error("link closed by peer")]
    Closed,
    #[error("peer reported: {0}")]
    Peer(String),
    #[error("authentication timed out")]
    Timeout,
}

impl From<LinkError> for io::Error {
    fn from(e: LinkError) -> io::Error {
        let kind = match e {
            LinkError::AuthFailed => io::ErrorKind::PermissionDenied,
            LinkError::Closed => io::ErrorKind::UnexpectedEof,
            LinkError::Timeout => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// One frame on the link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    Hello {
        nonce: [u8; NONCE_LEN],
    },
    Auth {
        mac: Vec<u8>,
    },
    /// Make this connection the replication link of resource `resource`.
    Join {
        resource: String,
        node: String,
        /// Size of the sender's data area: both must be equal.
        data_size: u64,
        /// The sender's last application write (unix ms), for split-brain
        /// reports.
        last_write_ms: Option<u64>,
    },
    /// One hbctl request (JSON [`crate::disk::ctl::DiskRequest`]).
    Admin {
        resource: String,
        json: String,
    },
    /// Its answer (JSON [`crate::disk::ctl::DiskResponse`]).
    AdminReply {
        json: String,
    },
    /// A message of the connection state machine.
    Ctrl(Msg),
    /// A replicated application write.
    Write {
        seq: u64,
        offset: u64,
        data: Vec<u8>,
    },
    /// Barrier: closes an epoch; acked once the receiver's disk is flushed.
    Flush {
        seq: u64,
    },
    Ack {
        seq: u64,
    },
    FlushAck {
        seq: u64,
    },
    /// A part of the sender's out-of-sync bitmap (pages, in order).
    Bitmap {
        data: Vec<u8>,
        last: bool,
    },
    /// Mark a range out of sync (DRBD's P_OUT_OF_SYNC).
    OutOfSync {
        offset: u64,
        len: u64,
    },
    /// Resync: the target asks for a range.
    RsReq {
        offset: u64,
        len: u64,
    },
    /// Resync: the source's data for a requested range.
    RsData {
        offset: u64,
        data: Vec<u8>,
    },
    /// Resync: the target has written (and flushed) a range.
    RsAck {
        offset: u64,
        len: u64,
    },
    /// Resync: the target has nothing left to request.
    RsDone,
    /// Online verify: the sender's SHA-256 of each 4 KiB block from `offset`.
    OvReq {
        offset: u64,
        digests: Vec<[u8; 32]>,
    },
    /// Online verify: the blocks (indexes from `offset`) that differ.
    OvReply {
        offset: u64,
        len: u64,
        differing: Vec<u32>,
    },
    Ping,
    PingAck,
    Error {
        msg: String,
    },
}

impl Frame {
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "Hello",
            Frame::Auth { .. } => "Auth",
            Frame::Join { .. } => "Join",
            Frame::Admin { .. } => "Admin",
            Frame::AdminReply { .. } => "AdminReply",
            Frame::Ctrl(_) => "Ctrl",
            Frame::Write { .. } => "Write",
            Frame::Flush { .. } => "Flush",
            Frame::Ack { .. } => "Ack",
            Frame::FlushAck { .. } => "FlushAck",
            Frame::Bitmap { .. } => "Bitmap",
            Frame::OutOfSync { .. } => "OutOfSync",
            Frame::RsReq { .. } => "RsReq",
            Frame::RsData { .. } => "RsData",
            Frame::RsAck { .. } => "RsAck",
            Frame::RsDone => "RsDone",
            Frame::OvReq { .. } => "OvReq",
            Frame::OvReply { .. } => "OvReply",
            Frame::Ping => "Ping",
            Frame::PingAck => "PingAck",
            Frame::Error { .. } => "Error",
        }
    }

    /// An error frame with the message cut to its bound.
    pub fn error(msg: impl Into<String>) -> Frame {
        let mut msg = msg.into();
        if msg.len() > MAX_MSG {
            let mut end = MAX_MSG;
            while !msg.is_char_boundary(end) {
                end -= 1;
            }
            msg.truncate(end);
        }
        Frame::Error { msg }
    }
}

fn opts() -> impl Options {
    bincode::DefaultOptions::new().with_limit(MAX_FRAME as u64)
}

pub fn encode(f: &Frame) -> io::Result<Bytes> {
    opts()
        .serialize(f)
        .map(Bytes::from)
        .map_err(|e| LinkError::Malformed(e.to_string()).into())
}

/// Decode and bound-check one frame body.
pub fn decode(body: &[u8]) -> Result<Frame, LinkError> {
    let f: Frame = opts()
        .deserialize(body)
        .map_err(|e| LinkError::Malformed(e.to_string()))?;
    let bad = |what: &str| Err(LinkError::Malformed(format!("{what} too long")));
    match &f {
        Frame::Auth { mac } if mac.len() > MAX_MAC => bad("MAC"),
        Frame::Write { data, .. } | Frame::RsData { data, .. } | Frame::Bitmap { data, .. }
            if data.len() > MAX_DATA =>
        {
            bad("data")
        }
        Frame::Error { msg } if msg.len() > MAX_MSG => bad("error message"),
        Frame::Join { resource, node, .. }
            if resource.len() > MAX_NAME || node.len() > MAX_NAME =>
        {
            bad("name")
        }
        Frame::Admin { resource, json } if resource.len() > MAX_NAME || json.len() > MAX_JSON => {
            bad("admin request")
        }
        Frame::AdminReply { json } if json.len() > MAX_JSON => bad("admin reply"),
        Frame::OvReq { digests, .. } if digests.len() > MAX_DIGESTS => bad("digest list"),
        Frame::OvReply { differing, .. } if differing.len() > MAX_DIGESTS => bad("block list"),
        Frame::RsReq { len, .. } | Frame::RsAck { len, .. } if *len > MAX_DATA as u64 => {
            bad("range")
        }
        _ => Ok(f),
    }
}

pub type Link = Framed<TcpStream, LengthDelimitedCodec>;

fn framed(stream: TcpStream) -> Link {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec();
    Framed::new(stream, codec)
}

pub async fn send<S>(sink: &mut S, f: &Frame) -> io::Result<()>
where
    S: futures::Sink<Bytes, Error = io::Error> + Unpin,
{
    sink.send(encode(f)?).await
}

pub async fn recv<S>(stream: &mut S) -> io::Result<Frame>
where
    S: futures::Stream<Item = io::Result<tokio_util::bytes::BytesMut>> + Unpin,
{
    match stream.next().await {
        Some(Ok(body)) => Ok(decode(&body)?),
        Some(Err(e)) => Err(e),
        None => Err(LinkError::Closed.into()),
    }
}

/// An error for an unexpected frame (the peer's own error if it sent one).
pub fn unexpected(f: Frame, want: &'static str) -> io::Error {
    match f {
        Frame::Error { msg } => LinkError::Peer(msg).into(),
        f => LinkError::Unexpected {
            got: f.name(),
            want,
        }
        .into(),
    }
}

fn nonce() -> io::Result<[u8; NONCE_LEN]> {
    let mut n = [0u8; NONCE_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut n)?;
    Ok(n)
}

fn challenge(nonce: &[u8; NONCE_LEN], role: &[u8]) -> Vec<u8> {
    let mut d = nonce.to_vec();
    d.extend_from_slice(role);
    d
}

/// Connect to `addr` and authenticate both ways with `key`.
pub async fn connect(addr: SocketAddr, key: &AuthKey, timeout: Duration) -> io::Result<Link> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    let mut link = framed(stream);
    tokio::time::timeout(HANDSHAKE_TIMEOUT, initiator_handshake(&mut link, key))
        .await
        .map_err(|_| LinkError::Timeout)??;
    Ok(link)
}

async fn initiator_handshake(link: &mut Link, key: &AuthKey) -> io::Result<()> {
    let ni = nonce()?;
    send(link, &Frame::Hello { nonce: ni }).await?;
    let na = match recv(link).await? {
        Frame::Hello { nonce } => nonce,
        f => return Err(unexpected(f, "Hello")),
    };
    match recv(link).await? {
        Frame::Auth { mac: m } if verify(key, &challenge(&ni, ROLE_ACCEPTOR), &m) => {}
        Frame::Auth { .. } => return Err(LinkError::AuthFailed.into()),
        f => return Err(unexpected(f, "Auth")),
    }
    let m = mac(key, &challenge(&na, ROLE_INITIATOR));
    send(link, &Frame::Auth { mac: m }).await
}

/// Authenticate an accepted connection (both ways) with `key`.
pub async fn accept(stream: TcpStream, key: &AuthKey) -> io::Result<Link> {
    stream.set_nodelay(true)?;
    let mut link = framed(stream);
    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor_handshake(&mut link, key))
        .await
        .map_err(|_| LinkError::Timeout)??;
    Ok(link)
}

async fn acceptor_handshake(link: &mut Link, key: &AuthKey) -> io::Result<()> {
    let ni = match recv(link).await? {
        Frame::Hello { nonce } => nonce,
        f => return Err(unexpected(f, "Hello")),
    };
    let na = nonce()?;
    send(link, &Frame::Hello { nonce: na }).await?;
    let m = mac(key, &challenge(&ni, ROLE_ACCEPTOR));
    send(link, &Frame::Auth { mac: m }).await?;
    match recv(link).await? {
        Frame::Auth { mac: m } if verify(key, &challenge(&na, ROLE_INITIATOR), &m) => Ok(()),
        Frame::Auth { .. } => {
            let _ = send(link, &Frame::error("authentication failed")).await;
            Err(LinkError::AuthFailed.into())
        }
        f => Err(unexpected(f, "Auth")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::AuthMethod;
    use proptest::prelude::*;
    use tokio::net::TcpListener;

    fn key(secret: &[u8]) -> AuthKey {
        AuthKey {
            id: 1,
            method: AuthMethod::Sha256,
            secret: secret.to_vec(),
        }
    }

    #[tokio::test]
    async fn both_sides_authenticate_and_frames_flow() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut link = accept(s, &key(b"k")).await.unwrap();
            let f = recv(&mut link).await.unwrap();
            send(&mut link, &Frame::PingAck).await.unwrap();
            f
        });
        let mut link = connect(addr, &key(b"k"), Duration::from_secs(5))
            .await
            .unwrap();
        send(&mut link, &Frame::Ping).await.unwrap();
        assert_eq!(recv(&mut link).await.unwrap(), Frame::PingAck);
        assert_eq!(server.await.unwrap(), Frame::Ping);
    }

    #[tokio::test]
    async fn a_wrong_key_is_refused_on_both_sides() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            accept(s, &key(b"right")).await.map(|_| ())
        });
        let e = connect(addr, &key(b"wrong"), Duration::from_secs(5))
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
    }
}
