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
//! Mutual challenge–response before anything else, then every frame sealed
//! (AES-256-GCM) with per-connection, per-direction keys:
//!
//! ```text
//!  Initiator                                Acceptor
//!    Hello{v, ni, tls}  ───────────────────▶
//!              ◀─────────────────────────── Hello{v, na, tls}
//!              ◀─────────────────────────── Auth{mac(Kh, "acceptor" ni na tls tls)}
//!    Auth{mac(Kh, "initiator" ni na tls tls)} ▶  (verified before anything else is read)
//!    ═══════ sealed from here on (unless both say tls no) ═══════
//!    Join{..} | Admin{..} ─────────────────▶
//! ```
//!
//! `Kh` is the secret's handshake key and every MAC input starts with the
//! handshake label ([`crate::wire::auth::Purpose`]): a tag given to a
//! stranger is worth nothing as a heartbeat datagram, and it covers both
//! nonces, so it answers one connection only. The role is inside the MAC so
//! neither side's answer can be reflected back. The session keys are
//! HKDF-SHA256(salt = ni || na, the secret's session key), one per
//! direction, with frame numbers as nonces and a new key every
//! [`REKEY_FRAMES`] frames ([`LinkCodec`]): a relay in the path can neither
//! read the disk's data nor inject, replay, drop-and-continue or reorder a
//! frame.
//!
//! Before authentication a frame is at most [`MAX_HANDSHAKE_FRAME`] bytes
//! and the whole exchange has [`HANDSHAKE_TIMEOUT`]. `Join` turns the
//! connection into the resource's replication link; `Admin` carries one
//! `hbctl` request for the acceptor's device
//! ([`crate::disk::ctl::DiskRequest::Remote`], limited to what split-brain
//! resolution needs) and gets one `AdminReply`. Any malformed, unexpected,
//! unauthenticated or forged frame closes the connection.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Duration;

use bincode::Options;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::bytes::Bytes;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes256Gcm;
use tokio_util::bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::state::Msg;
use crate::wire::auth::{self, mac, verify, Purpose};
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
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest frame before both sides are authenticated (a Hello, an Auth or
/// an Error).
pub const MAX_HANDSHAKE_FRAME: usize = 512;
/// The link protocol's version, in Hello: 3 is the sealed link of issue 14.
pub const PROTOCOL: u8 = 3;
/// Frames per direction under one key; then both sides derive the next key.
pub const REKEY_FRAMES: u64 = 1 << 20;
/// AES-GCM's tag, appended to every sealed frame.
pub const TAG_LEN: usize = 16;
const NONCE_LEN: usize = 32;
const MAX_MAC: usize = 64;
const MAX_MSG: usize = 256;
const MAX_NAME: usize = 255;

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
    #[error(
        "a frame failed its integrity check (forged, replayed or reordered): dropping the link"
    )]
    Forged,
    #[error("the peer speaks link protocol {0}, this node {PROTOCOL}: run the same hbd version on both nodes")]
    Version(u8),
    #[error("the peer has `tls {peer}` in drbd.conf and this node `tls {mine}`: set the same on both nodes")]
    Tls {
        mine: &'static str,
        peer: &'static str,
    },
}

impl From<LinkError> for io::Error {
    fn from(e: LinkError) -> io::Error {
        let kind = match e {
            LinkError::AuthFailed | LinkError::Forged => io::ErrorKind::PermissionDenied,
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
        /// [`PROTOCOL`].
        version: u8,
        nonce: [u8; NONCE_LEN],
        /// The sender seals the link (drbd.conf `net { tls yes; }`, the
        /// default): both sides must agree.
        tls: bool,
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
        #[serde(with = "raw_bytes")]
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
        #[serde(with = "raw_bytes")]
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
        #[serde(with = "raw_bytes")]
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

/// Data fields as one byte string instead of a sequence of `u8`s: the
/// same bytes on the wire with bincode (a `u64` length, then the bytes),
/// but one copy instead of a call per byte (issue 15: the per-byte
/// serializer and deserializer were a large part of a write's CPU time).
mod raw_bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(b) = seq.next_element()? {
                    v.push(b);
                }
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
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

pub type Link = Framed<TcpStream, LinkCodec>;

/// One direction's AES-256-GCM state: the key, and the frame number that is
/// the next nonce (never reused: the key changes every [`REKEY_FRAMES`]).
struct Seal {
    key: [u8; 32],
    aead: Aes256Gcm,
    frame: u64,
    rekey_every: u64,
}

impl Seal {
    fn new(key: [u8; 32], rekey_every: u64) -> Seal {
        Seal {
            aead: Aes256Gcm::new(&key.into()),
            key,
            frame: 0,
            rekey_every: rekey_every.max(1),
        }
    }

    fn nonce(&self) -> aes_gcm::Nonce<aes_gcm::aead::consts::U12> {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&self.frame.to_be_bytes());
        n.into()
    }

    /// Past one frame: the next nonce, and the next key when it is due.
    fn advance(&mut self) {
        self.frame += 1;
        if self.frame.is_multiple_of(self.rekey_every) {
            let mut next = [0u8; 32];
            hkdf::Hkdf::<sha2::Sha256>::from_prk(&self.key)
                .expect("a 32-byte key is a valid PRK")
                .expand(b"hbd v3 disk rekey", &mut next)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            *self = Seal {
                frame: self.frame,
                ..Seal::new(next, self.rekey_every)
            };
        }
    }
}

/// The link's codec: length-delimited frames, sealed in each direction once
/// [`LinkCodec::seal`] has run (after the handshake). Until then a frame is
/// at most [`MAX_HANDSHAKE_FRAME`] bytes.
pub struct LinkCodec {
    frames: LengthDelimitedCodec,
    tx: Option<Seal>,
    rx: Option<Seal>,
}

impl LinkCodec {
    /// A codec before authentication: plain and small.
    pub fn handshake() -> LinkCodec {
        LinkCodec {
            frames: LengthDelimitedCodec::builder()
                .max_frame_length(MAX_HANDSHAKE_FRAME)
                .new_codec(),
            tx: None,
            rx: None,
        }
    }

    /// A plain codec for authenticated frames (`tls no`; tests).
    pub fn plain() -> LinkCodec {
        let mut c = LinkCodec::handshake();
        c.frames.set_max_frame_length(MAX_FRAME + TAG_LEN);
        c
    }

    /// Authenticated: full-size frames, sealed with `tx` and `rx` when
    /// given.
    fn open(&mut self, keys: Option<([u8; 32], [u8; 32])>, rekey_every: u64) {
        self.frames.set_max_frame_length(MAX_FRAME + TAG_LEN);
        if let Some((tx, rx)) = keys {
            self.tx = Some(Seal::new(tx, rekey_every));
            self.rx = Some(Seal::new(rx, rekey_every));
        }
    }

    /// Two ends of a sealed link without a handshake (`tx` of the first
    /// is `rx` of the second): for the fuzz targets and tests.
    #[doc(hidden)]
    pub fn sealed_pair(a2b: [u8; 32], b2a: [u8; 32], rekey_every: u64) -> (LinkCodec, LinkCodec) {
        let (mut a, mut b) = (LinkCodec::handshake(), LinkCodec::handshake());
        a.open(Some((a2b, b2a)), rekey_every);
        b.open(Some((b2a, a2b)), rekey_every);
        (a, b)
    }

    /// Frames are sealed both ways.
    pub fn sealed(&self) -> bool {
        self.tx.is_some() && self.rx.is_some()
    }
}

impl std::fmt::Debug for LinkCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("LinkCodec")
            .field("sealed", &self.sealed())
            .finish_non_exhaustive()
    }
}

impl Encoder<Bytes> for LinkCodec {
    type Error = io::Error;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        let Some(seal) = self.tx.as_mut() else {
            return self.frames.encode(item, dst);
        };
        let len = item.len() + TAG_LEN;
        if len > self.frames.max_frame_length() {
            return Err(LinkError::Malformed(format!("frame of {len} bytes too long")).into());
        }
        dst.reserve(4 + len);
        dst.put_u32(len as u32);
        let start = dst.len();
        dst.extend_from_slice(&item);
        let tag = seal
            .aead
            .encrypt_inout_detached(&seal.nonce(), &[], (&mut dst[start..]).into())
            .map_err(|_| LinkError::Malformed("frame too long to seal".into()))?;
        dst.extend_from_slice(&tag);
        seal.advance();
        Ok(())
    }
}

impl Decoder for LinkCodec {
    type Item = BytesMut;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<BytesMut>> {
        let Some(mut frame) = self.frames.decode(src)? else {
            return Ok(None);
        };
        let Some(seal) = self.rx.as_mut() else {
            return Ok(Some(frame));
        };
        let Some(body_len) = frame.len().checked_sub(TAG_LEN) else {
            return Err(LinkError::Forged.into());
        };
        let tag = frame.split_off(body_len);
        let tag = aes_gcm::Tag::<aes_gcm::aead::consts::U16>::try_from(&tag[..])
            .map_err(|_| LinkError::Forged)?;
        seal.aead
            .decrypt_inout_detached(&seal.nonce(), &[], (&mut frame[..]).into(), &tag)
            .map_err(|_| LinkError::Forged)?;
        seal.advance();
        Ok(Some(frame))
    }
}

fn framed(stream: TcpStream) -> Link {
    Framed::new(stream, LinkCodec::handshake())
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

/// What one handshake binds: both nonces and both `tls` settings, in the
/// initiator's order.
struct Transcript {
    ni: [u8; NONCE_LEN],
    na: [u8; NONCE_LEN],
    tls_i: bool,
    tls_a: bool,
}

const ROLE_INITIATOR: &[u8] = b"initiator\0";
const ROLE_ACCEPTOR: &[u8] = b"acceptor\0";

impl Transcript {
    /// The MAC input of `role`'s Auth (after the handshake label, which
    /// [`mac`] puts first): role, protocol, both nonces, both settings.
    fn input(&self, role: &[u8]) -> Vec<u8> {
        let mut d = role.to_vec();
        d.push(PROTOCOL);
        d.extend_from_slice(&self.ni);
        d.extend_from_slice(&self.na);
        d.push(self.tls_i as u8);
        d.push(self.tls_a as u8);
        d
    }

    /// The two directions' session keys (initiator→acceptor,
    /// acceptor→initiator), or `None` when the link stays plain.
    fn session_keys(&self, key: &AuthKey) -> Option<([u8; 32], [u8; 32])> {
        if !(self.tls_i && self.tls_a) {
            return None;
        }
        let base = auth::derive(key, Purpose::DiskSession);
        let mut salt = self.ni.to_vec();
        salt.extend_from_slice(&self.na);
        let kdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &base);
        let (mut i2a, mut a2i) = ([0u8; 32], [0u8; 32]);
        kdf.expand(b"hbd v3 disk initiator to acceptor", &mut i2a)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        kdf.expand(b"hbd v3 disk acceptor to initiator", &mut a2i)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Some((i2a, a2i))
    }

    /// Both sides said the same `tls` (`initiator`: this side's role).
    fn agree(&self, initiator: bool) -> Result<(), LinkError> {
        let word = |b: bool| if b { "yes" } else { "no" };
        let (mine, peer) = if initiator {
            (self.tls_i, self.tls_a)
        } else {
            (self.tls_a, self.tls_i)
        };
        if mine != peer {
            return Err(LinkError::Tls {
                mine: word(mine),
                peer: word(peer),
            });
        }
        Ok(())
    }
}

/// How a link authenticates and seals.
#[derive(Debug, Clone)]
pub struct LinkSecurity {
    pub key: AuthKey,
    /// Seal every frame after the handshake (drbd.conf `tls`, default yes).
    pub tls: bool,
    /// Frames per key ([`REKEY_FRAMES`]; smaller in tests).
    pub rekey_every: u64,
}

impl LinkSecurity {
    pub fn new(key: AuthKey, tls: bool) -> LinkSecurity {
        LinkSecurity {
            key,
            tls,
            rekey_every: REKEY_FRAMES,
        }
    }
}

/// Connect to `addr` and authenticate both ways.
pub async fn connect(addr: SocketAddr, sec: &LinkSecurity, timeout: Duration) -> io::Result<Link> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    let mut link = framed(stream);
    tokio::time::timeout(HANDSHAKE_TIMEOUT, initiator_handshake(&mut link, sec))
        .await
        .map_err(|_| LinkError::Timeout)??;
    Ok(link)
}

fn hello(frame: Frame) -> io::Result<([u8; NONCE_LEN], bool)> {
    match frame {
        Frame::Hello {
            version: PROTOCOL,
            nonce,
            tls,
        } => Ok((nonce, tls)),
        Frame::Hello { version, .. } => Err(LinkError::Version(version).into()),
        f => Err(unexpected(f, "Hello")),
    }
}

async fn initiator_handshake(link: &mut Link, sec: &LinkSecurity) -> io::Result<()> {
    let ni = nonce()?;
    let hi = Frame::Hello {
        version: PROTOCOL,
        nonce: ni,
        tls: sec.tls,
    };
    send(link, &hi).await?;
    let (na, tls_a) = hello(recv(link).await?)?;
    let t = Transcript {
        ni,
        na,
        tls_i: sec.tls,
        tls_a,
    };
    let key = &sec.key;
    match recv(link).await? {
        Frame::Auth { mac: m }
            if verify(key, Purpose::DiskHandshake, &t.input(ROLE_ACCEPTOR), &m) => {}
        Frame::Auth { .. } => return Err(LinkError::AuthFailed.into()),
        f => return Err(unexpected(f, "Auth")),
    }
    let m = mac(key, Purpose::DiskHandshake, &t.input(ROLE_INITIATOR));
    send(link, &Frame::Auth { mac: m }).await?;
    // Both authenticated; a settings mismatch is said in the clear.
    t.agree(true)?;
    link.codec_mut().open(t.session_keys(key), sec.rekey_every);
    Ok(())
}

/// Authenticate an accepted connection (both ways).
pub async fn accept(stream: TcpStream, sec: &LinkSecurity) -> io::Result<Link> {
    stream.set_nodelay(true)?;
    let mut link = framed(stream);
    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor_handshake(&mut link, sec))
        .await
        .map_err(|_| LinkError::Timeout)??;
    Ok(link)
}

async fn acceptor_handshake(link: &mut Link, sec: &LinkSecurity) -> io::Result<()> {
    let (ni, tls_i) = match hello(recv(link).await?) {
        Ok(x) => x,
        Err(e) => {
            let _ = send(link, &Frame::error(e.to_string())).await;
            return Err(e);
        }
    };
    let na = nonce()?;
    let ha = Frame::Hello {
        version: PROTOCOL,
        nonce: na,
        tls: sec.tls,
    };
    send(link, &ha).await?;
    let t = Transcript {
        ni,
        na,
        tls_i,
        tls_a: sec.tls,
    };
    let key = &sec.key;
    let m = mac(key, Purpose::DiskHandshake, &t.input(ROLE_ACCEPTOR));
    send(link, &Frame::Auth { mac: m }).await?;
    match recv(link).await? {
        Frame::Auth { mac: m }
            if verify(key, Purpose::DiskHandshake, &t.input(ROLE_INITIATOR), &m) => {}
        Frame::Auth { .. } => {
            let _ = send(link, &Frame::error("authentication failed")).await;
            return Err(LinkError::AuthFailed.into());
        }
        f => return Err(unexpected(f, "Auth")),
    }
    if let Err(e) = t.agree(false) {
        let _ = send(link, &Frame::error(e.to_string())).await;
        return Err(e.into());
    }
    let keys = t.session_keys(key).map(|(i2a, a2i)| (a2i, i2a));
    link.codec_mut().open(keys, sec.rekey_every);
    Ok(())
}

#[cfg(test)]
mod tests;
